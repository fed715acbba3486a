//! Holt–Winters / ETS(A, Ad, A): additive errors, additive damped trend, additive season,
//! smoothing parameters chosen by Nelder–Mead on the one-step squared error.

use crate::forecast::{check_series, FittedForecaster, Forecaster, Ring, Uncertainty};
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
    /// Default settings for a season length.
    pub fn new(season: usize) -> Self {
        Self {
            season,
            window: 4000,
            max_evals: 60,
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

fn init_state(y: &[f64], m: usize) -> State {
    if m <= 1 {
        let k = y.len().min(10);
        let level = y[..k].iter().sum::<f64>() / k as f64;
        return State {
            level,
            trend: 0.0,
            seasonal: Vec::new(),
        };
    }
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
    let k = p.alpha + phi * beta;
    let q = 1.0 - k;
    let s2 = phi * phi * beta;
    let (ca, cb, cc0, cc1) = (q + phi, -(phi * q + s2), k, s2 - phi * k);
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

fn decode(u: &[f64], seasonal: bool) -> EtsParams {
    let alpha = 0.001 + 0.998 * sigmoid(u[0]);
    let beta = alpha * 0.5 * sigmoid(u[1]);
    let phi = 0.8 + 0.18 * sigmoid(u[2]);
    let gamma = if seasonal {
        (1.0 - alpha) * sigmoid(u[3])
    } else {
        0.0
    };
    EtsParams {
        alpha,
        beta,
        gamma,
        phi,
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
        let x0 = [logit(0.2), logit(0.1), logit(0.5), logit(0.1)];
        let dims = if seasonal { 4 } else { 3 };
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
        let (u, _) = nelder_mead(
            |u| {
                reset(&mut st);
                run(win, &decode(u, seasonal), &mut st, None)
            },
            &x0[..dims],
            1.0,
            self.max_evals,
        );
        let params = decode(&u, seasonal);
        reset(&mut st);
        let mut res = Vec::with_capacity(w);
        run(win, &params, &mut st, Some(&mut res));
        let seasonal_terms = if seasonal { st.seasonal } else { vec![0.0] };
        Ok(FittedEts {
            params,
            level: st.level,
            trend: st.trend,
            seasonal: Ring::from_tail(&seasonal_terms, seasonal_terms.len()),
            seasonal_on: seasonal,
            unc: Uncertainty::calibrate(win, &res),
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
    fn tracks_a_trend_without_season() {
        let y: Vec<f64> = (0..200).map(|t| 5.0 + 0.5 * t as f64).collect();
        let model = Ets::new(1).fit(&y).unwrap();
        let fc = model.forecast(3);
        assert!((fc[0] - 105.0).abs() < 1.0, "{fc:?}");
        assert!(Ets::new(50).fit(&y[..60]).is_err());
    }
}
