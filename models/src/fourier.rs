//! FFT harmonics + trend (as IceBreaker, ASPLOS'22, does): the top-k harmonics of the
//! detrended recent window extrapolated forward, with a level that tracks the residuals online.

use crate::forecast::{check_series, FittedForecaster, Forecaster, Propagation, Uncertainty};
use crate::ModelError;
use rustfft::{num_complex::Complex, FftPlanner};
use serde::{Deserialize, Serialize};

/// Unfitted FFT-harmonics model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fourier {
    /// Season length in bins; the window is a whole number of seasons when `> 1`.
    pub season: usize,
    /// Number of harmonics kept.
    pub k: usize,
    /// Largest window (bins) the FFT looks at.
    pub window: usize,
    /// Weight of the newest residual in the online level correction.
    pub level_rate: f64,
}

impl Fourier {
    /// Default settings for a season length.
    pub fn new(season: usize) -> Self {
        Self {
            season,
            k: 12,
            window: 8 * season.max(256),
            level_rate: 0.1,
        }
    }
}

/// One harmonic: amplitude and the current phasor (cos, sin of its phase at the next bin).
/// This is the serialised layout (kept from earlier versions so saved states still load).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Harmonic {
    amp: f64,
    cos: f64,
    sin: f64,
    step_cos: f64,
    step_sin: f64,
}

/// Harmonics per block of the in-memory bank.
const LANES: usize = 4;

/// `LANES` harmonics stored field by field, so the per-bin loop runs on whole vectors.
/// Unused lanes have amplitude and phasor 0 and stay 0.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Block {
    amp: [f64; LANES],
    cos: [f64; LANES],
    sin: [f64; LANES],
    step_cos: [f64; LANES],
    step_sin: [f64; LANES],
}

/// The harmonics, struct-of-arrays in blocks of `LANES`.
#[derive(Debug, Clone, PartialEq)]
struct Bank {
    blocks: Vec<Block>,
    /// Number of real harmonics (the rest of the last block is padding).
    len: usize,
}

impl Bank {
    fn new(hs: &[Harmonic]) -> Self {
        let blocks = hs
            .chunks(LANES)
            .map(|ch| {
                let mut b = Block {
                    amp: [0.0; LANES],
                    cos: [0.0; LANES],
                    sin: [0.0; LANES],
                    step_cos: [1.0; LANES],
                    step_sin: [0.0; LANES],
                };
                for (l, h) in ch.iter().enumerate() {
                    b.amp[l] = h.amp;
                    b.cos[l] = h.cos;
                    b.sin[l] = h.sin;
                    b.step_cos[l] = h.step_cos;
                    b.step_sin[l] = h.step_sin;
                }
                b
            })
            .collect();
        Self {
            blocks,
            len: hs.len(),
        }
    }

    fn harmonics(&self) -> Vec<Harmonic> {
        self.blocks
            .iter()
            .flat_map(|b| {
                (0..LANES).map(move |l| Harmonic {
                    amp: b.amp[l],
                    cos: b.cos[l],
                    sin: b.sin[l],
                    step_cos: b.step_cos[l],
                    step_sin: b.step_sin[l],
                })
            })
            .take(self.len)
            .collect()
    }

    /// The seasonal value at the current bin, then every phasor advanced by one bin (one pass).
    // indexing lanes of five arrays at once reads plainer than five zipped iterators
    #[allow(clippy::needless_range_loop)]
    #[inline]
    fn value_then_advance(&mut self) -> f64 {
        let mut acc = [0.0; LANES];
        for b in self.blocks.iter_mut() {
            for l in 0..LANES {
                let (c, s) = (b.cos[l], b.sin[l]);
                acc[l] += b.amp[l] * c;
                b.cos[l] = c * b.step_cos[l] - s * b.step_sin[l];
                b.sin[l] = s * b.step_cos[l] + c * b.step_sin[l];
            }
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }
}

/// Serialised form of [`FittedFourier`] (the field layout of earlier versions).
#[derive(Serialize, Deserialize)]
struct FittedFourierState {
    harmonics: Vec<Harmonic>,
    base: f64,
    slope: f64,
    level: f64,
    level_rate: f64,
    unc: Uncertainty,
}

/// Fitted FFT-harmonics model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "FittedFourierState", into = "FittedFourierState")]
pub struct FittedFourier {
    bank: Bank,
    /// Trend value at the next bin.
    base: f64,
    /// Trend slope per bin, damped after the fit window.
    slope: f64,
    /// Online level correction (EWMA of residuals).
    level: f64,
    level_rate: f64,
    unc: Uncertainty,
}

impl From<FittedFourierState> for FittedFourier {
    fn from(s: FittedFourierState) -> Self {
        Self {
            bank: Bank::new(&s.harmonics),
            base: s.base,
            slope: s.slope,
            level: s.level,
            level_rate: s.level_rate,
            unc: s.unc,
        }
    }
}

impl From<FittedFourier> for FittedFourierState {
    fn from(f: FittedFourier) -> Self {
        Self {
            harmonics: f.bank.harmonics(),
            base: f.base,
            slope: f.slope,
            level: f.level,
            level_rate: f.level_rate,
            unc: f.unc,
        }
    }
}

thread_local! {
    /// FFT plans are reused across fits on a thread (a refit sweep uses one window length).
    static PLANNER: std::cell::RefCell<FftPlanner<f64>> = std::cell::RefCell::new(FftPlanner::new());
}

impl Forecaster for Fourier {
    type Fitted = FittedFourier;
    fn fit(&self, y: &[f64]) -> Result<FittedFourier, ModelError> {
        let m = self.season.max(1);
        let need = if m > 1 { 2 * m } else { 16 };
        check_series(y, need)?;
        let mut w = y.len().min(self.window.max(need));
        if m > 1 {
            w = (w / m) * m;
        }
        let win = &y[y.len() - w..];
        let n = w as f64;
        // least-squares line
        let tm = (n - 1.0) / 2.0;
        let mean = win.iter().sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (t, v) in win.iter().enumerate() {
            let dt = t as f64 - tm;
            sxy += dt * (v - mean);
            sxx += dt * dt;
        }
        let slope0 = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let mut buf: Vec<Complex<f64>> = win
            .iter()
            .enumerate()
            .map(|(t, v)| Complex::new(v - mean - slope0 * (t as f64 - tm), 0.0))
            .collect();
        let fft = PLANNER.with(|p| p.borrow_mut().plan_fft_forward(w));
        fft.process(&mut buf);
        // the k strongest bins, strongest first (ties: lower bin first)
        let stronger = |a: &usize, b: &usize| {
            buf[*b]
                .norm_sqr()
                .total_cmp(&buf[*a].norm_sqr())
                .then(a.cmp(b))
        };
        let mut idx: Vec<usize> = (1..w.div_ceil(2)).collect();
        if self.k < idx.len() {
            if self.k > 0 {
                idx.select_nth_unstable_by(self.k - 1, stronger);
            }
            idx.truncate(self.k);
        }
        idx.sort_unstable_by(stronger);
        let two_pi = 2.0 * std::f64::consts::PI;
        // Joint least squares of level, slope and the chosen harmonics. Over the whole window
        // the harmonics at 2πj/n are orthogonal to each other and to the constant, and their
        // products with the centred trend column (t - tm)/n have closed forms:
        //   Σ (t - tm)/n · cos(ωt) = -1/2,   Σ (t - tm)/n · sin(ωt) = -cot(ω/2)/2,
        // so the normal equations are solved by one Schur complement on the slope; the
        // right-hand sides come from the FFT of the detrended window. The same tiny ridge as
        // `optim::solve` is added to the diagonal.
        let ridge = |d: f64| d + 1e-9 * (1.0 + d.abs());
        let d_h = ridge(n / 2.0);
        let d_t = ridge(sxx / (n * n));
        let ym = (mean * n) / ridge(n);
        let r_t = sxy / n;
        // per harmonic: (ω, g_cos, g_sin, Σ y cos, Σ y sin)
        let cols: Vec<(f64, f64, f64, f64, f64)> = idx
            .iter()
            .map(|&j| {
                let om = two_pi * j as f64 / n;
                let cot = 1.0 / (om / 2.0).tan();
                let (gc, gs) = (-0.5, -0.5 * cot);
                let yc = buf[j].re - slope0 * n / 2.0;
                let ys = -buf[j].im - slope0 * n / 2.0 * cot;
                (om, gc, gs, yc, ys)
            })
            .collect();
        let (mut schur, mut rhs) = (d_t, r_t);
        for &(_, gc, gs, yc, ys) in &cols {
            schur -= (gc * gc + gs * gs) / d_h;
            rhs -= (gc * yc + gs * ys) / d_h;
        }
        if schur.is_nan() || schur.abs() <= 1e-12 || !d_h.is_finite() {
            return Err(ModelError::FitFailed("singular harmonic design".into()));
        }
        let b_t = rhs / schur;
        let slope = b_t / n;
        let harmonics: Vec<Harmonic> = cols
            .iter()
            .map(|&(om, gc, gs, yc, ys)| {
                let (a, b) = ((yc - gc * b_t) / d_h, (ys - gs * b_t) / d_h);
                let ph = (-b).atan2(a);
                Harmonic {
                    amp: a.hypot(b),
                    cos: ph.cos(),
                    sin: ph.sin(),
                    step_cos: om.cos(),
                    step_sin: om.sin(),
                }
            })
            .collect();
        let mut bank = Bank::new(&harmonics);
        // walk through the window to collect in-sample residuals; phasors end at bin w
        let mut res = Vec::with_capacity(w);
        let mut level = 0.0;
        for (t, v) in win.iter().enumerate() {
            let seas = bank.value_then_advance();
            let pred = ym + slope * (t as f64 - tm) + seas + level;
            let e = v - pred;
            res.push(e);
            level += self.level_rate * e;
        }
        Ok(FittedFourier {
            bank,
            base: ym + slope * (n - tm),
            slope,
            level,
            level_rate: self.level_rate,
            // only the level correction adapts: it keeps `level_rate` of every error
            unc: Uncertainty::calibrate(win, &res).with_propagation(Propagation {
                level: self.level_rate,
                ..Propagation::NONE
            }),
        })
    }
}

/// Per-bin damping of the trend slope after the fit window.
const SLOPE_DAMP: f64 = 0.999;

impl FittedForecaster for FittedFourier {
    fn name(&self) -> &'static str {
        "fourier"
    }
    #[inline]
    fn update(&mut self, y: f64) {
        let seas = self.bank.value_then_advance();
        let e = y - (self.base + self.level + seas);
        self.unc.observe(e);
        self.level += self.level_rate * e;
        self.slope *= SLOPE_DAMP;
        self.base += self.slope;
    }
    fn forecast(&self, h: usize) -> Vec<f64> {
        let mut bank = self.bank.clone();
        let mut base = self.base;
        let mut slope = self.slope;
        let mut out = Vec::with_capacity(h);
        for _ in 0..h {
            let seas = bank.value_then_advance();
            out.push(self.unc.clamp(base + self.level + seas));
            slope *= SLOPE_DAMP;
            base += slope;
        }
        out
    }
    fn uncertainty(&self) -> &Uncertainty {
        &self.unc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_sine_is_extrapolated() {
        let m = 60;
        let f =
            |t: usize| 20.0 + 5.0 * (2.0 * std::f64::consts::PI * t as f64 / m as f64 + 0.3).sin();
        let y: Vec<f64> = (0..m * 8).map(f).collect();
        let mut model = Fourier::new(m).fit(&y).unwrap();
        let fc = model.forecast(2 * m);
        for (i, v) in fc.iter().enumerate() {
            assert!(
                (v - f(y.len() + i)).abs() < 0.05,
                "step {i}: {v} vs {}",
                f(y.len() + i)
            );
        }
        for t in y.len()..y.len() + 30 {
            model.update(f(t));
        }
        let v = model.forecast(1)[0];
        assert!((v - f(y.len() + 30)).abs() < 0.05);
    }
}
