//! Small ARIMA(p, d, 0) models fitted by least squares, used to forecast the next idle time of
//! a function (the hybrid-histogram policy's out-of-bounds fallback).

use crate::optim::eliminate;
use crate::ModelError;
use serde::{Deserialize, Serialize};

/// An unfitted ARIMA(p, d, 0) specification. With `p = None` the order is chosen by AIC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Arima {
    /// Autoregressive order; `None` selects 0..=`max_p` by AIC.
    pub p: Option<usize>,
    /// Largest order considered when `p` is `None`.
    pub max_p: usize,
    /// Differencing order (0 or 1).
    pub d: usize,
}

impl Default for Arima {
    fn default() -> Self {
        Self {
            p: None,
            max_p: 3,
            d: 0,
        }
    }
}

/// A fitted ARIMA(p, d, 0) model holding the tail of the series it needs to forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedArima {
    /// Intercept of the AR equation on the (differenced) series.
    pub intercept: f64,
    /// AR coefficients, `coef[0]` multiplies the most recent value.
    pub coef: Vec<f64>,
    /// Differencing order.
    pub d: usize,
    /// Residual variance of the fit.
    pub sigma2: f64,
    /// Last `p` values of the differenced series, most recent last.
    tail: Vec<f64>,
    /// Last value of the undifferenced series (used when `d = 1`).
    last_level: f64,
}

impl Arima {
    /// Fits the model to `y`. Needs at least `p + d + 2` finite points.
    pub fn fit(&self, y: &[f64]) -> Result<FittedArima, ModelError> {
        if self.d > 1 {
            return Err(ModelError::InvalidParameter {
                name: "d",
                reason: "only d = 0 or 1 is supported".into(),
            });
        }
        if let Some(index) = y.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite { index });
        }
        let z: Vec<f64> = if self.d == 1 {
            y.windows(2).map(|w| w[1] - w[0]).collect()
        } else {
            y.to_vec()
        };
        let orders: Vec<usize> = match self.p {
            Some(p) => vec![p],
            None => (0..=self.max_p).collect(),
        };
        let need = orders.iter().copied().min().unwrap_or(0) + self.d + 2;
        if y.len() < need {
            return Err(ModelError::TooShort { got: y.len(), need });
        }
        let mut best: Option<(f64, Vec<f64>, f64, f64)> = None;
        for p in orders {
            if z.len() < p + 2 {
                continue;
            }
            let Some((beta, sigma2)) = ols_ar(&z, p) else {
                continue;
            };
            let n = (z.len() - p) as f64;
            let aic = n * sigma2.max(1e-12).ln() + 2.0 * (p as f64 + 1.0);
            if best.as_ref().is_none_or(|b| aic < b.0) {
                best = Some((aic, beta, sigma2, n));
            }
        }
        let Some((_, beta, sigma2, _)) = best else {
            return Err(ModelError::FitFailed("no AR order could be fitted".into()));
        };
        let p = beta.len() - 1;
        let tail = z[z.len() - p..].to_vec();
        Ok(FittedArima {
            intercept: beta[0],
            coef: beta[1..].to_vec(),
            d: self.d,
            sigma2,
            tail,
            last_level: y.last().copied().unwrap_or(0.0),
        })
    }
}

impl FittedArima {
    /// One-step-ahead point forecast of the original (undifferenced) series.
    pub fn forecast_one(&self) -> f64 {
        let p = self.coef.len();
        let mut z = self.intercept;
        for (i, c) in self.coef.iter().enumerate() {
            z += c * self.tail[p - 1 - i];
        }
        if self.d == 1 {
            self.last_level + z
        } else {
            z
        }
    }
}

/// Ordinary least squares of z[t] on (1, z[t-1], ..., z[t-p]); returns (beta, residual variance).
fn ols_ar(z: &[f64], p: usize) -> Option<(Vec<f64>, f64)> {
    let k = p + 1;
    let mut xtx = vec![0.0; k * k];
    let mut xty = vec![0.0; k];
    let mut row = vec![0.0; k];
    for t in p..z.len() {
        row[0] = 1.0;
        for j in 1..=p {
            row[j] = z[t - j];
        }
        for a in 0..k {
            xty[a] += row[a] * z[t];
            for b in 0..k {
                xtx[a * k + b] += row[a] * row[b];
            }
        }
    }
    // Small ridge term keeps constant series solvable.
    for a in 1..k {
        xtx[a * k + a] += 1e-9 * (1.0 + xtx[a * k + a]);
    }
    let beta = eliminate(&mut xtx, &mut xty, k)?;
    let mut sse = 0.0;
    for t in p..z.len() {
        let mut pred = beta[0];
        for j in 1..=p {
            pred += beta[j] * z[t - j];
        }
        sse += (z[t] - pred).powi(2);
    }
    Some((beta, sse / (z.len() - p) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar1_recovers_coefficient_and_forecasts() {
        // z[t] = 2 + 0.5 z[t-1], started at 10: converges to 4.
        let mut y = vec![10.0];
        for _ in 0..50 {
            let last = *y.last().unwrap_or(&0.0);
            y.push(2.0 + 0.5 * last);
        }
        let m = Arima {
            p: Some(1),
            max_p: 1,
            d: 0,
        }
        .fit(&y)
        .unwrap();
        assert!((m.coef[0] - 0.5).abs() < 1e-6, "{:?}", m.coef);
        assert!((m.forecast_one() - 4.0).abs() < 1e-6);
    }

    #[test]
    fn constant_series_forecasts_the_constant() {
        let y = vec![600.0; 12];
        let m = Arima::default().fit(&y).unwrap();
        assert!((m.forecast_one() - 600.0).abs() < 1e-6);
    }

    #[test]
    fn rejects_short_and_non_finite() {
        assert!(matches!(
            Arima::default().fit(&[1.0]),
            Err(ModelError::TooShort { .. })
        ));
        assert!(matches!(
            Arima::default().fit(&[1.0, f64::NAN, 2.0]),
            Err(ModelError::NonFinite { index: 1 })
        ));
    }
}
