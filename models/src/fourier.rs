//! FFT harmonics + trend (as IceBreaker, ASPLOS'22, does): the top-k harmonics of the
//! detrended recent window extrapolated forward, with a level that tracks the residuals online.

use crate::forecast::{check_series, FittedForecaster, Forecaster, Uncertainty};
use crate::optim::solve;
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Harmonic {
    amp: f64,
    cos: f64,
    sin: f64,
    step_cos: f64,
    step_sin: f64,
}

impl Harmonic {
    #[inline]
    fn value(&self) -> f64 {
        self.amp * self.cos
    }
    #[inline]
    fn advance(&mut self) {
        let c = self.cos * self.step_cos - self.sin * self.step_sin;
        let s = self.sin * self.step_cos + self.cos * self.step_sin;
        self.cos = c;
        self.sin = s;
    }
}

/// Fitted FFT-harmonics model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedFourier {
    harmonics: Vec<Harmonic>,
    /// Trend value at the next bin.
    base: f64,
    /// Trend slope per bin, damped after the fit window.
    slope: f64,
    /// Online level correction (EWMA of residuals).
    level: f64,
    level_rate: f64,
    unc: Uncertainty,
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
        FftPlanner::new().plan_fft_forward(w).process(&mut buf);
        let mut idx: Vec<usize> = (1..w.div_ceil(2)).collect();
        idx.sort_by(|&a, &b| buf[b].norm_sqr().total_cmp(&buf[a].norm_sqr()));
        idx.truncate(self.k);
        let two_pi = 2.0 * std::f64::consts::PI;
        let omegas: Vec<f64> = idx.iter().map(|&j| two_pi * j as f64 / n).collect();
        // joint least squares of level, slope and the chosen harmonics
        let k = 2 + 2 * omegas.len();
        let mut xtx = vec![0.0; k * k];
        let mut xty = vec![0.0; k];
        let mut row = vec![0.0; k];
        for (t, v) in win.iter().enumerate() {
            row[0] = 1.0;
            row[1] = (t as f64 - tm) / n;
            for (j, om) in omegas.iter().enumerate() {
                let (s, c) = (om * t as f64).sin_cos();
                row[2 + 2 * j] = c;
                row[3 + 2 * j] = s;
            }
            for a in 0..k {
                xty[a] += row[a] * v;
                for b in a..k {
                    xtx[a * k + b] += row[a] * row[b];
                }
            }
        }
        for a in 0..k {
            for b in 0..a {
                xtx[a * k + b] = xtx[b * k + a];
            }
        }
        let beta = solve(&mut xtx, &mut xty, k)
            .ok_or_else(|| ModelError::FitFailed("singular harmonic design".into()))?;
        let (ym, slope) = (beta[0], beta[1] / n);
        let mut harmonics: Vec<Harmonic> = omegas
            .iter()
            .enumerate()
            .map(|(j, &om)| {
                let (a, b) = (beta[2 + 2 * j], beta[3 + 2 * j]);
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
        // walk through the window to collect in-sample residuals; phasors end at bin w
        let mut res = Vec::with_capacity(w);
        let mut level = 0.0;
        for (t, v) in win.iter().enumerate() {
            let seas: f64 = harmonics.iter().map(Harmonic::value).sum();
            let pred = ym + slope * (t as f64 - tm) + seas + level;
            let e = v - pred;
            res.push(e);
            level += self.level_rate * e;
            for h in harmonics.iter_mut() {
                h.advance();
            }
        }
        Ok(FittedFourier {
            harmonics,
            base: ym + slope * (n - tm),
            slope,
            level,
            level_rate: self.level_rate,
            unc: Uncertainty::calibrate(win, &res),
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
        let seas: f64 = self.harmonics.iter().map(Harmonic::value).sum();
        let e = y - (self.base + self.level + seas);
        self.unc.observe(e);
        self.level += self.level_rate * e;
        self.slope *= SLOPE_DAMP;
        self.base += self.slope;
        for h in self.harmonics.iter_mut() {
            h.advance();
        }
    }
    fn forecast(&self, h: usize) -> Vec<f64> {
        let mut hs = self.harmonics.clone();
        let mut base = self.base;
        let mut slope = self.slope;
        let mut out = Vec::with_capacity(h);
        for _ in 0..h {
            let seas: f64 = hs.iter().map(Harmonic::value).sum();
            out.push(self.unc.clamp(base + self.level + seas));
            slope *= SLOPE_DAMP;
            base += slope;
            for x in hs.iter_mut() {
                x.advance();
            }
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
