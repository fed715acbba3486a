//! Holt–Winters / ETS(A, Ad, A): additive errors, additive damped trend, additive season,
//! smoothing parameters chosen by Nelder–Mead on the one-step squared error.

use crate::forecast::{check_series, FittedForecaster, Forecaster, Propagation, Ring, Uncertainty};
use crate::optim::{logit, nelder_mead, sigmoid};
use crate::ModelError;
use serde::{Deserialize, Serialize};

/// Unfitted Holt–Winters additive damped-trend model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ets {
    /// Season length in bins (`<= 1`: no seasonal component).
    pub season: usize,
    /// Largest number of trailing points used to choose the parameters (at least 2 seasons are
    /// always used).
    pub window: usize,
    /// Objective evaluations allowed to the optimiser.
    pub max_evals: usize,
}

impl Ets {
    /// Default settings for a season length. With a season: a 4000-point window (at least 3
    /// seasons are used) and 60 evaluations, where refits of 10k functions stay within
    /// seconds. Without: the last 2000 points (a level and a damped trend need no more; older
    /// points describe an older regime) and 80 evaluations of the damped model (its search
    /// starts from the simple-smoothing fit, which takes a third of that).
    pub fn new(season: usize) -> Self {
        if season > 1 {
            Self {
                season,
                window: 4000,
                max_evals: 60,
            }
        } else {
            Self {
                season,
                window: 2000,
                max_evals: 80,
            }
        }
    }
}

/// Smoothing parameters of a fitted ETS model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EtsParams {
    /// Level smoothing.
    pub alpha: f64,
    /// Trend smoothing.
    pub beta: f64,
    /// Season smoothing.
    pub gamma: f64,
    /// Trend damping.
    pub phi: f64,
    /// The errors are relative to the forecast (ETS(M, ·, ·)): the likelihood that chose the
    /// model weighed each error by the forecast's size. The state updates and point forecasts
    /// are the additive ones.
    #[serde(default)]
    pub multiplicative_errors: bool,
}

/// Fitted ETS model: parameters and state (level, trend, last season of seasonal terms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedEts {
    /// Smoothing parameters.
    pub params: EtsParams,
    level: f64,
    trend: f64,
    seasonal: Ring,
    seasonal_on: bool,
    unc: Uncertainty,
}

/// Initial state at the start of a window: level, trend and one season of seasonal terms
/// (phase 0 first; empty without a season).
struct State {
    level: f64,
    trend: f64,
    seasonal: Vec<f64>,
}

/// The seasonal model's first-guess state: season means of up to 3 seasons of `y` (the
/// non-seasonal model estimates its start in [`profiled_sse`]).
fn init_state(y: &[f64], m: usize) -> State {
    let m = m.max(1);
    let k = (y.len() / m).clamp(1, 3);
    let means: Vec<f64> = (0..k)
        .map(|j| y[j * m..(j + 1) * m].iter().sum::<f64>() / m as f64)
        .collect();
    let mut s = vec![0.0; m];
    for (j, mean) in means.iter().enumerate() {
        for i in 0..m {
            s[i] += (y[j * m + i] - mean) / k as f64;
        }
    }
    let trend = if k >= 2 {
        (means[k - 1] - means[0]) / ((k - 1) * m) as f64
    } else {
        0.0
    };
    // state at the start of the series: level of season 0
    State {
        level: means[0] - trend * (m as f64 - 1.0) / 2.0,
        trend,
        seasonal: s,
    }
}

/// Coefficients of the forecast's second-order recursion (see [`run`]):
/// `(k, q, ca, cb, cc0, cc1)` with `k = α + φβ`, `q = 1 − k` and
/// `a[t+1] = ca·a[t] + cb·a[t−1] + cc0·c[t] + cc1·c[t−1]`.
fn recursion(p: &EtsParams) -> (f64, f64, f64, f64, f64, f64) {
    let (phi, beta) = (p.phi, p.beta);
    let k = p.alpha + phi * beta;
    let q = 1.0 - k;
    let s2 = phi * phi * beta;
    (k, q, q + phi, -(phi * q + s2), k, s2 - phi * k)
}

/// Runs the filter over `y` from `st` (left at the end state, its seasonal terms rotated so
/// that the next phase is first); returns the SSE after a one-season burn-in and pushes the
/// residuals after it to `res`.
///
/// This loop is the whole cost of a fit, and its speed is set by the loop-carried dependency
/// chain, so the recursion is rewritten exactly. With `a = level + φ·trend` (the one-step
/// forecast before the season), `c = y − season` and `e = c − a`, the textbook updates give
/// `a' = (1 − k)·a + k·c + φ²·trend` with `k = α + φβ`, and eliminating the trend,
/// `a[t+1] = (1 − k + φ)·a[t] − (φ(1 − k) + φ²β)·a[t−1] + k·c[t] + (φ²β − φk)·c[t−1]`:
/// one multiply and one add on the chain instead of three dependent multiply–adds. The
/// level and trend are recovered from the last two steps at the end.
fn run(y: &[f64], p: &EtsParams, st: &mut State, mut res: Option<&mut Vec<f64>>) -> f64 {
    let m = st.seasonal.len();
    let burn = m.max(1);
    let (phi, beta, gamma) = (p.phi, p.beta, p.gamma);
    let (k, q, ca, cb, cc0, cc1) = recursion(p);
    let mut a = st.level + phi * st.trend;
    let (mut a_prev, mut c_prev) = (a, 0.0);
    let mut sse = 0.0;
    let mut j = 0;
    for (t, &v) in y.iter().enumerate() {
        let c = if m > 0 { v - st.seasonal[j] } else { v };
        let e = c - a;
        if m > 0 {
            st.seasonal[j] += gamma * e;
            j += 1;
            if j == m {
                j = 0;
            }
        }
        let next = if t == 0 {
            q * a + (k * c + phi * phi * st.trend)
        } else {
            ca * a + (cb * a_prev + cc0 * c + cc1 * c_prev)
        };
        a_prev = a;
        c_prev = c;
        a = next;
        if t >= burn {
            sse += e * e;
            if let Some(r) = res.as_deref_mut() {
                r.push(e);
            }
        }
    }
    if !y.is_empty() {
        // φ²·trend before the last step, then the last trend update
        let trend_prev = (a - q * a_prev - k * c_prev) / (phi * phi);
        st.trend = phi * trend_prev + beta * (c_prev - a_prev);
    }
    st.level = a - phi * st.trend;
    st.seasonal.rotate_left(j);
    sse
}

/// One-step SSE of the non-seasonal model over `y` with the initial level and trend chosen
/// by least squares (as AutoETS estimates them): the errors are affine in the initial state,
/// so the filter runs once from a zero state alongside the error responses to a unit initial
/// level and trend, and the 2 × 2 normal equations give the best state. `trend`: false for
/// simple exponential smoothing (no trend, one initial value). Returns (SSE, level, trend).
fn profiled_sse(y: &[f64], p: &EtsParams, trend: bool) -> (f64, f64, f64) {
    if !trend {
        return profiled_sse_level(y, p.alpha);
    }
    // the one-step forecast `a = level + φ·trend` follows the second-order recursion of
    // [`run`]; so do the responses `g` (unit initial level) and `h` (unit initial trend) of
    // the forecast, with no data term. Errors: e = y − a, and a shifted start moves them by
    // −(δl·g + δb·h).
    let phi = p.phi;
    let (k, q, ca, cb, cc0, cc1) = recursion(p);
    let (mut a, mut a_prev, mut c_prev) = (0.0, 0.0, 0.0);
    let (mut g, mut g_prev) = (1.0, 0.0);
    let (mut h, mut h_prev) = (phi, 0.0);
    let (mut see, mut sep, mut seq, mut spp, mut spq, mut sqq) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut rest = y.len();
    for (t, &c) in y.iter().enumerate() {
        let e = c - a;
        see += e * e;
        sep += e * g;
        seq += e * h;
        spp += g * g;
        spq += g * h;
        sqq += h * h;
        if t % 64 == 63 && g * g + h * h <= 1e-24 * (spp + sqq) {
            // the start no longer matters: the rest is the plain filter
            rest = t + 1;
            let an = ca * a + (cb * a_prev + cc0 * c + cc1 * c_prev);
            (a_prev, c_prev, a) = (a, c, an);
            break;
        }
        let (an, gn, hn) = if t == 0 {
            (k * c, q, q * phi + phi * phi)
        } else {
            (
                ca * a + (cb * a_prev + cc0 * c + cc1 * c_prev),
                ca * g + cb * g_prev,
                ca * h + cb * h_prev,
            )
        };
        (a_prev, g_prev, h_prev, c_prev) = (a, g, h, c);
        (a, g, h) = (an, gn, hn);
    }
    for &c in &y[rest..] {
        let e = c - a;
        see += e * e;
        let an = ca * a + (cb * a_prev + cc0 * c + cc1 * c_prev);
        (a_prev, c_prev, a) = (a, c, an);
    }
    let det = spp * sqq - spq * spq;
    if trend && det > 1e-9 * spp * sqq {
        let dl = (sep * sqq - seq * spq) / det;
        let db = (seq * spp - sep * spq) / det;
        (see - dl * sep - db * seq, dl, db)
    } else if spp > 0.0 {
        let dl = sep / spp;
        (see - dl * sep, dl, 0.0)
    } else {
        (see, 0.0, 0.0)
    }
}

/// [`profiled_sse`] of simple exponential smoothing: only the initial level is estimated
/// (its error response decays as `(1 − α)^t`).
fn profiled_sse_level(y: &[f64], alpha: f64) -> (f64, f64, f64) {
    let (mut l, mut g) = (0.0, 1.0);
    let (mut see, mut seg, mut sgg) = (0.0, 0.0, 0.0);
    for &v in y {
        let e = v - l;
        see += e * e;
        seg += e * g;
        sgg += g * g;
        l += alpha * e;
        g *= 1.0 - alpha;
    }
    if sgg > 0.0 {
        let dl = seg / sgg;
        (see - dl * seg, dl, 0.0)
    } else {
        (see, 0.0, 0.0)
    }
}

/// Akaike's information criterion, corrected for small samples, of a Gaussian model with `k`
/// estimated parameters and residual sum of squares `sse` over `n` points.
fn aicc(sse: f64, n: usize, k: usize) -> f64 {
    if sse <= 0.0 {
        return f64::INFINITY;
    }
    aicc_of_lik(n as f64 * (sse / n as f64).ln(), n, k)
}

/// AICc from −2 log-likelihood (up to a constant shared by the compared models) `lik` with
/// `k` estimated parameters over `n` points.
fn aicc_of_lik(lik: f64, n: usize, k: usize) -> f64 {
    let (n, k) = (n as f64, k as f64);
    if n <= k + 1.0 || !lik.is_finite() {
        return f64::INFINITY;
    }
    lik + 2.0 * k + 2.0 * k * (k + 1.0) / (n - k - 1.0)
}

/// −2 log-likelihood, up to a constant shared with the additive models' `n·ln(SSE/n)`, of the
/// multiplicative-error model ETS(M, Ad, N) (ETS(M, N, N) with `β = 0`) from the initial
/// level and trend: `n·ln(Σε²/n) + 2·Σ ln ŷ` with relative errors `ε = (y − ŷ)/ŷ`. Its state
/// updates are the additive ones (`ℓ' = ŷ + α·(y − ŷ)`, `b' = φb + β·(y − ŷ)`): only the
/// likelihood differs, which weighs each error by the forecast's size. Infinite when a
/// forecast is not positive (the model is defined for positive series only).
fn mult_lik(y: &[f64], p: &EtsParams, level: f64, trend: f64) -> f64 {
    // the forecast follows [`run`]'s second-order recursion (one multiply–add on the
    // loop-carried chain)
    let phi = p.phi;
    let (k, q, ca, cb, cc0, cc1) = recursion(p);
    let mut a = level + phi * trend;
    let (mut a_prev, mut c_prev) = (a, 0.0);
    let (mut see, mut logs, mut prod) = (0.0, 0.0, 1.0);
    for (t, &v) in y.iter().enumerate() {
        if a.is_nan() || a <= 0.0 {
            return f64::INFINITY;
        }
        let e = v - a;
        let r = e / a;
        see += r * r;
        // one logarithm per run of products instead of one per point
        prod *= a;
        if !(1e-100..=1e100).contains(&prod) {
            logs += prod.ln();
            prod = 1.0;
        }
        let next = if t == 0 {
            q * a + (k * v + phi * phi * trend)
        } else {
            ca * a + (cb * a_prev + cc0 * v + cc1 * c_prev)
        };
        a_prev = a;
        c_prev = v;
        a = next;
    }
    let n = y.len() as f64;
    if see <= 0.0 || n == 0.0 {
        return f64::INFINITY;
    }
    n * (see / n).ln() + 2.0 * (logs + prod.ln())
}

/// Refines an additive fit `(params, level, trend)` for multiplicative errors: Nelder–Mead
/// over the smoothing parameters (through `decode`) and the initial state, from the additive
/// optimum `u0` (one coordinate for simple smoothing, three for the damped trend, whose
/// initial trend is then searched too). The initial state moves in steps of the series' noise
/// scale `scale`.
/// Returns (−2 log-likelihood as in [`mult_lik`], parameters, level, trend).
fn fit_mult<D: Fn(&[f64]) -> EtsParams>(
    win: &[f64],
    decode: D,
    u0: &[f64],
    start: (f64, f64),
    scale: f64,
    max_evals: usize,
) -> (f64, EtsParams, f64, f64) {
    let d = u0.len();
    let trend = d > 1;
    let state = |u: &[f64]| {
        let level = start.0 + scale * u[d];
        let b = if trend {
            start.1 + 0.05 * scale * u[d + 1]
        } else {
            0.0
        };
        (level, b)
    };
    let mut x0 = u0.to_vec();
    x0.push(0.0);
    if trend {
        x0.push(0.0);
    }
    let (u, lik) = nelder_mead(
        |u| {
            let (l, b) = state(u);
            mult_lik(win, &decode(u), l, b)
        },
        &x0,
        1.0,
        max_evals,
    );
    let (l, b) = state(&u);
    let params = EtsParams {
        multiplicative_errors: true,
        ..decode(&u)
    };
    (lik, params, l, b)
}

/// Fits the non-seasonal model to `win`: simple exponential smoothing and the damped-trend
/// model, each with its initial state by least squares, and on a positive series also both
/// with multiplicative errors; keeps the one with the lowest AICc (AutoETS's choice within
/// its non-seasonal family without a multiplicative trend). Returns the parameters and the
/// initial state.
fn fit_nonseasonal(win: &[f64], max_evals: usize) -> (EtsParams, f64, f64) {
    let alpha_of = |u0: f64| 1e-4 + (0.9999 - 1e-4) * sigmoid(u0);
    let ses = |u: &[f64]| EtsParams {
        alpha: alpha_of(u[0]),
        beta: 0.0,
        gamma: 0.0,
        phi: 0.98,
        multiplicative_errors: false,
    };
    let damped = |u: &[f64]| {
        let alpha = alpha_of(u[0]);
        EtsParams {
            alpha,
            beta: alpha_of(u[1]),
            gamma: 0.0,
            phi: 0.8 + 0.18 * sigmoid(u[2]),
            multiplicative_errors: false,
        }
    };
    let (u1, sse1) = nelder_mead(
        |u| profiled_sse_level(win, ses(u).alpha).0,
        &[logit(0.2)],
        1.0,
        (max_evals / 3).max(10),
    );
    // the damped model starts from the level smoothing SES found, and a trend smoothing
    // below it (AutoETS's start; the optimiser may take β above α, as AutoETS's does)
    let beta0 = logit(((ses(&u1).alpha / 2.0).min(0.1) - 1e-4).max(1e-6) / (0.9999 - 1e-4));
    let (u2, sse2) = nelder_mead(
        |u| profiled_sse(win, &damped(u), true).0,
        &[u1[0], beta0, logit(0.5)],
        1.0,
        max_evals,
    );
    let n = win.len();
    let (p1, p2) = (ses(&u1), damped(&u2));
    let (_, l1, _) = profiled_sse(win, &p1, false);
    let (_, l2, b2) = profiled_sse(win, &p2, true);
    // (AICc, parameters, level, trend)
    let mut fits = vec![
        (aicc(sse1, n, 2), p1, l1, 0.0),
        (aicc(sse2, n, 5), p2, l2, b2),
    ];
    let additive = fits[0].0.min(fits[1].0);
    // multiplicative errors (positive series only) share the filter and differ in the
    // likelihood; their search is paid for only where it already fits better at the additive
    // optima (one filter pass each), which counts with noise growing slower than the level
    // (synthetic Poisson-like series) do not
    let promising = win.iter().all(|&v| v > 0.0) && {
        let ses_at = aicc_of_lik(mult_lik(win, &p1, l1, 0.0), n, 2);
        let damped_at = aicc_of_lik(mult_lik(win, &p2, l2, b2), n, 5);
        ses_at.min(damped_at) < additive
    };
    if promising {
        let scale = win.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / n as f64;
        let scale = scale.max(1e-9 * win.iter().sum::<f64>() / n as f64);
        let (lik, p, l, b) = fit_mult(win, ses, &u1, (l1, 0.0), scale, max_evals / 3);
        fits.push((aicc_of_lik(lik, n, 2), p, l, b));
        let (lik, p, l, b) = fit_mult(win, damped, &u2, (l2, b2), scale, 3 * max_evals / 2);
        fits.push((aicc_of_lik(lik, n, 5), p, l, b));
    }
    // the first of equals: the simpler model
    let best = fits
        .into_iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((0.0, p1, l1, 0.0));
    (best.1, best.2, best.3)
}

/// The seasonal model's parameters from the optimiser's unbounded coordinates.
fn decode(u: &[f64]) -> EtsParams {
    let alpha = 0.001 + 0.998 * sigmoid(u[0]);
    let beta = alpha * 0.5 * sigmoid(u[1]);
    let phi = 0.8 + 0.18 * sigmoid(u[2]);
    let gamma = (1.0 - alpha) * sigmoid(u[3]);
    EtsParams {
        alpha,
        beta,
        gamma,
        phi,
        multiplicative_errors: false,
    }
}

impl Forecaster for Ets {
    type Fitted = FittedEts;
    fn fit(&self, y: &[f64]) -> Result<FittedEts, ModelError> {
        let m = self.season.max(1);
        let seasonal = m > 1;
        let need = if seasonal { 2 * m } else { 4 };
        check_series(y, need)?;
        let w = y
            .len()
            .min(self.window.max(need).max(if seasonal { 3 * m } else { 0 }));
        let win = &y[y.len() - w..];
        // parameters and the state at the start of the window
        let (params, mut st) = if seasonal {
            let init = init_state(win, m);
            let mut st = State {
                level: 0.0,
                trend: 0.0,
                seasonal: Vec::with_capacity(init.seasonal.len()),
            };
            let reset = |st: &mut State| {
                st.level = init.level;
                st.trend = init.trend;
                st.seasonal.clear();
                st.seasonal.extend_from_slice(&init.seasonal);
            };
            let x0 = [logit(0.2), logit(0.1), logit(0.5), logit(0.1)];
            let (u, _) = nelder_mead(
                |u| {
                    reset(&mut st);
                    run(win, &decode(u), &mut st, None)
                },
                &x0,
                1.0,
                self.max_evals,
            );
            reset(&mut st);
            (decode(&u), st)
        } else {
            let (params, level, trend) = fit_nonseasonal(win, self.max_evals);
            let st = State {
                level,
                trend,
                seasonal: Vec::new(),
            };
            (params, st)
        };
        let mut res = Vec::with_capacity(w);
        run(win, &params, &mut st, Some(&mut res));
        let seasonal_terms = if seasonal { st.seasonal } else { vec![0.0] };
        Ok(FittedEts {
            params,
            level: st.level,
            trend: st.trend,
            seasonal: Ring::from_tail(&seasonal_terms, seasonal_terms.len()),
            seasonal_on: seasonal,
            // the state updates are the additive ones for both error forms
            unc: Uncertainty::calibrate(win, &res).with_propagation(Propagation {
                level: params.alpha,
                trend: params.beta,
                phi: params.phi,
                seasonal: params.gamma,
                season: if seasonal { m } else { 0 },
            }),
        })
    }
}

impl FittedForecaster for FittedEts {
    fn name(&self) -> &'static str {
        if self.seasonal_on {
            "ets"
        } else {
            "holt-damped"
        }
    }
    #[inline]
    fn update(&mut self, y: f64) {
        let p = &self.params;
        let m = self.seasonal.len();
        let s_old = if self.seasonal_on {
            self.seasonal.ago(m)
        } else {
            0.0
        };
        let e = y - (self.level + p.phi * self.trend + s_old);
        self.level += p.phi * self.trend + p.alpha * e;
        self.trend = p.phi * self.trend + p.beta * e;
        if self.seasonal_on {
            self.seasonal.push(s_old + p.gamma * e);
        }
        self.unc.observe(e);
    }
    fn forecast(&self, h: usize) -> Vec<f64> {
        let m = self.seasonal.len();
        let mut damp = 0.0;
        let mut pk = 1.0;
        (1..=h)
            .map(|i| {
                pk *= self.params.phi;
                damp += pk;
                let s = if self.seasonal_on {
                    self.seasonal.ago(m - ((i - 1) % m))
                } else {
                    0.0
                };
                self.unc.clamp(self.level + damp * self.trend + s)
            })
            .collect()
    }
    fn uncertainty(&self) -> &Uncertainty {
        &self.unc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_forecast_within_tolerance() {
        let m = 24;
        let f = |t: usize| 50.0 + 10.0 * (2.0 * std::f64::consts::PI * t as f64 / m as f64).sin();
        let y: Vec<f64> = (0..m * 10).map(f).collect();
        let model = Ets::new(m).fit(&y).unwrap();
        let fc = model.forecast(m);
        for (i, v) in fc.iter().enumerate() {
            assert!((v - f(y.len() + i)).abs() < 0.5, "step {i}: {v}");
        }
    }

    #[test]
    fn initial_state_is_estimated_not_guessed() {
        // a level of 7 after a first value of 100: the first-values guess would be far off,
        // least squares finds the level (SSE of the one outlier only, spread by alpha)
        let mut y = vec![7.0; 300];
        y[0] = 100.0;
        let p = EtsParams {
            alpha: 0.01,
            beta: 0.0,
            gamma: 0.0,
            phi: 0.98,
            multiplicative_errors: false,
        };
        let (sse, l0, _) = profiled_sse(&y, &p, false);
        assert!((l0 - 7.0).abs() < 1.0, "{l0}");
        assert!(sse < 93.0 * 93.0, "{sse}");
        // with an undamped trend the state before the first point of a line is recovered
        // exactly (level 3 − 0.25, slope 0.25)
        let line: Vec<f64> = (0..100).map(|t| 3.0 + 0.25 * t as f64).collect();
        let p = EtsParams {
            beta: 0.001,
            phi: 1.0,
            ..p
        };
        let (sse, l0, b0) = profiled_sse(&line, &p, true);
        assert!(sse < 1e-9, "{sse} {l0} {b0}");
        assert!(
            (l0 - 2.75).abs() < 1e-6 && (b0 - 0.25).abs() < 1e-6,
            "{l0} {b0}"
        );
    }

    #[test]
    fn profiled_sse_matches_the_textbook_filter() {
        // the recursion in `profiled_sse` against the plain level / trend updates run from
        // the initial state it returns
        let y: Vec<f64> = (0..500)
            .map(|t| 20.0 + 0.03 * t as f64 + ((t * 7919 % 101) as f64 - 50.0) / 8.0)
            .collect();
        let p = EtsParams {
            alpha: 0.3,
            beta: 0.05,
            gamma: 0.0,
            phi: 0.9,
            multiplicative_errors: false,
        };
        let plain_sse = |mut l: f64, mut b: f64| {
            let mut sse = 0.0;
            for &v in &y {
                let e = v - (l + p.phi * b);
                sse += e * e;
                l += p.phi * b + p.alpha * e;
                b = p.phi * b + p.beta * e;
            }
            sse
        };
        let (sse, l0, b0) = profiled_sse(&y, &p, true);
        let plain = plain_sse(l0, b0);
        assert!((sse - plain).abs() <= 1e-9 * plain, "{sse} vs {plain}");
        // and no other start does better
        for (dl, db) in [(0.5, 0.0), (-0.5, 0.0), (0.0, 0.05), (0.0, -0.05)] {
            let other = plain_sse(l0 + dl, b0 + db);
            assert!(other > plain, "{dl} {db}: {other} vs {plain}");
        }
    }

    #[test]
    fn aicc_picks_ses_on_a_noisy_level_and_the_trend_on_a_ramp() {
        // deterministic noise around a constant: no trend to find
        let noise = |t: usize| ((t * 7919 % 101) as f64 - 50.0) / 10.0;
        let flat: Vec<f64> = (0..600).map(|t| 40.0 + noise(t)).collect();
        let (p, _, b0) = fit_nonseasonal(&flat, 150);
        assert_eq!((p.beta, b0), (0.0, 0.0), "{p:?}");
        let ramp: Vec<f64> = (0..600).map(|t| 40.0 + 0.5 * t as f64 + noise(t)).collect();
        let (p, _, b0) = fit_nonseasonal(&ramp, 150);
        assert!(p.beta > 0.0 || b0 > 0.1, "{p:?} {b0}");
        let fc = Ets::new(1).fit(&ramp).unwrap().forecast(1);
        assert!((fc[0] - (40.0 + 0.5 * 600.0)).abs() < 6.0, "{fc:?}");
    }

    #[test]
    fn mult_lik_is_the_relative_error_likelihood_of_the_plain_filter() {
        let y: Vec<f64> = (0..400)
            .map(|t| 30.0 + 10.0 * (t as f64 / 40.0).sin() + (t * 7919 % 13) as f64)
            .collect();
        let p = EtsParams {
            alpha: 0.2,
            beta: 0.02,
            gamma: 0.0,
            phi: 0.95,
            multiplicative_errors: true,
        };
        let (mut l, mut b, mut see, mut logs) = (25.0, 0.1, 0.0, 0.0);
        for &v in &y {
            let f = l + p.phi * b;
            see += ((v - f) / f).powi(2);
            logs += f.ln();
            // ETS(M, Ad, N) as written: ℓ = ŷ(1 + αε), b = φb + βŷε
            let eps = (v - f) / f;
            l = f * (1.0 + p.alpha * eps);
            b = p.phi * b + p.beta * f * eps;
        }
        let n = y.len() as f64;
        let want = n * (see / n).ln() + 2.0 * logs;
        let got = mult_lik(&y, &p, 25.0, 0.1);
        assert!((got - want).abs() < 1e-9 * want.abs(), "{got} vs {want}");
        // a forecast at or below zero has no multiplicative likelihood
        assert_eq!(mult_lik(&y, &p, -40.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn aicc_picks_multiplicative_errors_where_noise_scales_with_the_level() {
        // a level wandering between 10 and 190 with ±30 % noise: the relative errors are
        // homoscedastic, the absolute ones are not
        let u = |t: usize| ((t * 7919 % 101) as f64 - 50.0) / 50.0;
        let level = |t: usize| 100.0 + 90.0 * (t as f64 / 150.0).sin();
        let rel: Vec<f64> = (0..1500).map(|t| level(t) * (1.0 + 0.3 * u(t))).collect();
        let fitted = Ets::new(1).fit(&rel).unwrap();
        assert!(fitted.params.multiplicative_errors, "{:?}", fitted.params);
        // the same level with noise of a constant size (±15) keeps additive errors
        let abs: Vec<f64> = (0..1500).map(|t| level(t) + 15.0 * u(t)).collect();
        let fitted = Ets::new(1).fit(&abs).unwrap();
        assert!(!fitted.params.multiplicative_errors, "{:?}", fitted.params);
        // and a series with a zero never gets them
        let mut zero = rel.clone();
        zero[700] = 0.0;
        let fitted = Ets::new(1).fit(&zero).unwrap();
        assert!(!fitted.params.multiplicative_errors, "{:?}", fitted.params);
    }

    #[test]
    fn tracks_a_trend_without_season() {
        let y: Vec<f64> = (0..200).map(|t| 5.0 + 0.5 * t as f64).collect();
        let model = Ets::new(1).fit(&y).unwrap();
        let fc = model.forecast(3);
        assert!((fc[0] - 105.0).abs() < 1.0, "{fc:?}");
        assert!(Ets::new(50).fit(&y[..60]).is_err());
    }
}
