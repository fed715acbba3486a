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
            max_evals: 120,
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

struct State {
    level: f64,
    trend: f64,
    seasonal: Ring,
}

fn init_state(y: &[f64], m: usize) -> State {
    if m <= 1 {
        let k = y.len().min(10);
        let level = y[..k].iter().sum::<f64>() / k as f64;
        return State {
            level,
            trend: 0.0,
            seasonal: Ring::from_tail(&[0.0], 1),
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
        seasonal: Ring::from_tail(&s, m),
    }
}

/// Runs the filter over `y`; returns SSE (after a one-season burn-in) and pushes residuals.
fn run(y: &[f64], m: usize, p: &EtsParams, st: &mut State, res: Option<&mut Vec<f64>>) -> f64 {
    let mm = st.seasonal.len();
    let mut sse = 0.0;
    let mut out = res;
    for (t, &v) in y.iter().enumerate() {
        let s_old = if m > 1 { st.seasonal.ago(mm) } else { 0.0 };
        let pred = st.level + p.phi * st.trend + s_old;
        let e = v - pred;
        st.level += p.phi * st.trend + p.alpha * e;
        st.trend = p.phi * st.trend + p.beta * e;
        if m > 1 {
            st.seasonal.push(s_old + p.gamma * e);
        }
        if t >= m {
            sse += e * e;
            if let Some(r) = out.as_deref_mut() {
                r.push(e);
            }
        }
    }
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
        let (u, _) = nelder_mead(
            |u| {
                let p = decode(u, seasonal);
                let mut st = init_state(win, m);
                run(win, m, &p, &mut st, None)
            },
            &x0[..dims],
            1.0,
            self.max_evals,
        );
        let params = decode(&u, seasonal);
        let mut st = init_state(win, m);
        let mut res = Vec::with_capacity(w);
        run(win, m, &params, &mut st, Some(&mut res));
        Ok(FittedEts {
            params,
            level: st.level,
            trend: st.trend,
            seasonal: st.seasonal,
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
