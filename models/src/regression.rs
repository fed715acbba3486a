//! Regression forecasters on lag and calendar features: ordinary least squares with linfa
//! (elastic net when OLS is singular) and a smartcore random forest. Multi-step forecasts feed
//! predictions back as lags.

use crate::forecast::{check_series, FittedForecaster, Forecaster, Ring, Uncertainty};
use crate::ModelError;
use linfa::prelude::*;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

/// Which learner a [`Regression`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Learner {
    /// linfa ordinary least squares (elastic net fallback).
    Linear,
    /// smartcore random forest.
    RandomForest,
}

/// Unfitted lag/calendar regression model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// Season length in bins (`<= 1`: no seasonal lag or calendar terms).
    pub season: usize,
    /// Learner.
    pub learner: Learner,
    /// Most recent training rows used.
    pub max_rows: usize,
}

impl Regression {
    /// Linear regression with defaults.
    pub fn linear(season: usize) -> Self {
        Self {
            season,
            learner: Learner::Linear,
            max_rows: 6000,
        }
    }
    /// Random forest with defaults.
    pub fn forest(season: usize) -> Self {
        Self {
            season,
            learner: Learner::RandomForest,
            max_rows: 1500,
        }
    }
}

type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// The fitted learner.
#[derive(Debug, Serialize, Deserialize)]
enum Fitted {
    Linear { coef: Vec<f64>, intercept: f64 },
    Forest(Box<Forest>),
}

/// Fitted regression forecaster.
#[derive(Debug, Serialize, Deserialize)]
pub struct FittedRegression {
    model: Fitted,
    season: usize,
    /// Index of the next bin (for calendar features).
    t: u64,
    history: Ring,
    unc: Uncertainty,
}

const LAGS: usize = 3;

fn n_features(m: usize) -> usize {
    if m > 1 {
        LAGS + 2 + 4
    } else {
        LAGS + 3
    }
}

/// Features for the bin with index `t`, from a history where `ago(1)` is bin `t-1`.
fn features(h: &Ring, m: usize, t: u64, out: &mut Vec<f64>) {
    out.clear();
    for k in 1..=LAGS {
        out.push(h.ago(k));
    }
    if m > 1 {
        out.push(h.ago(m));
        out.push(h.ago(m - 1));
        let ph = 2.0 * std::f64::consts::PI * (t % m as u64) as f64 / m as f64;
        out.extend_from_slice(&[ph.sin(), ph.cos(), (2.0 * ph).sin(), (2.0 * ph).cos()]);
    } else {
        let w = 12.min(h.len());
        out.push((1..=w).map(|k| h.ago(k)).sum::<f64>() / w as f64);
        out.push(h.ago(4));
        out.push(h.ago(6.min(h.len())));
    }
}

impl Fitted {
    fn predict(&self, x: &[f64]) -> f64 {
        match self {
            Fitted::Linear { coef, intercept } => {
                intercept + coef.iter().zip(x).map(|(c, v)| c * v).sum::<f64>()
            }
            Fitted::Forest(f) => DenseMatrix::from_2d_vec(&vec![x.to_vec()])
                .ok()
                .and_then(|m| f.predict(&m).ok())
                .and_then(|v| v.first().copied())
                .unwrap_or(x[0]),
        }
    }
}

impl Forecaster for Regression {
    type Fitted = FittedRegression;
    fn fit(&self, y: &[f64]) -> Result<FittedRegression, ModelError> {
        let m = self.season.max(1);
        let lookback = m.max(12);
        let need = lookback + 20;
        check_series(y, need)?;
        let start = lookback.max(y.len().saturating_sub(self.max_rows));
        let rows = y.len() - start;
        let p = n_features(m);
        let mut hist = Ring::from_tail(&y[..start], lookback + 1);
        let mut x = Array2::<f64>::zeros((rows, p));
        let mut row = Vec::with_capacity(p);
        for (r, t) in (start..y.len()).enumerate() {
            features(&hist, m, t as u64, &mut row);
            for (j, v) in row.iter().enumerate() {
                x[[r, j]] = *v;
            }
            hist.push(y[t]);
        }
        let target = Array1::from(y[start..].to_vec());
        let model = match self.learner {
            Learner::Linear => {
                let ds = Dataset::new(x.clone(), target.clone());
                match linfa_linear::LinearRegression::new().fit(&ds) {
                    Ok(f) if f.params().iter().all(|c| c.is_finite()) => Fitted::Linear {
                        coef: f.params().to_vec(),
                        intercept: f.intercept(),
                    },
                    _ => {
                        let f = linfa_elasticnet::ElasticNet::params()
                            .penalty(0.01)
                            .l1_ratio(0.1)
                            .fit(&ds)
                            .map_err(|e| ModelError::FitFailed(e.to_string()))?;
                        Fitted::Linear {
                            coef: f.hyperplane().to_vec(),
                            intercept: f.intercept(),
                        }
                    }
                }
            }
            Learner::RandomForest => {
                let rows_v: Vec<Vec<f64>> = x.outer_iter().map(|r| r.to_vec()).collect();
                let dm = DenseMatrix::from_2d_vec(&rows_v)
                    .map_err(|e| ModelError::FitFailed(e.to_string()))?;
                let params = RandomForestRegressorParameters::default()
                    .with_n_trees(25)
                    .with_max_depth(8)
                    .with_min_samples_leaf(5)
                    .with_seed(7);
                let f = Forest::fit(&dm, &target.to_vec(), params)
                    .map_err(|e| ModelError::FitFailed(e.to_string()))?;
                Fitted::Forest(Box::new(f))
            }
        };
        // in-sample residuals
        let mut hist = Ring::from_tail(&y[..start], lookback + 1);
        let mut res = Vec::with_capacity(rows);
        for (t, &v) in y.iter().enumerate().skip(start) {
            features(&hist, m, t as u64, &mut row);
            res.push(v - model.predict(&row));
            hist.push(v);
        }
        Ok(FittedRegression {
            model,
            season: m,
            t: y.len() as u64,
            history: hist,
            unc: Uncertainty::calibrate(&y[start..], &res),
        })
    }
}

impl FittedForecaster for FittedRegression {
    fn name(&self) -> &'static str {
        match self.model {
            Fitted::Linear { .. } => "linear",
            Fitted::Forest(_) => "random-forest",
        }
    }
    fn update(&mut self, y: f64) {
        let mut row = Vec::with_capacity(n_features(self.season));
        features(&self.history, self.season, self.t, &mut row);
        self.unc
            .observe(y - self.unc.clamp(self.model.predict(&row)));
        self.history.push(y);
        self.t += 1;
    }
    fn forecast(&self, h: usize) -> Vec<f64> {
        let mut hist = self.history.clone();
        let mut row = Vec::with_capacity(n_features(self.season));
        (0..h)
            .map(|i| {
                features(&hist, self.season, self.t + i as u64, &mut row);
                let v = self.unc.clamp(self.model.predict(&row));
                hist.push(v);
                v
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
    fn linear_learns_seasonal_pattern() {
        let m = 24;
        let f = |t: usize| 30.0 + 8.0 * (2.0 * std::f64::consts::PI * t as f64 / m as f64).sin();
        let y: Vec<f64> = (0..m * 20).map(f).collect();
        let model = Regression::linear(m).fit(&y).unwrap();
        let fc = model.forecast(m);
        for (i, v) in fc.iter().enumerate() {
            assert!((v - f(y.len() + i)).abs() < 0.5, "step {i}: {v}");
        }
    }

    #[test]
    fn forest_fits_and_serialises() {
        let m = 12;
        let y: Vec<f64> = (0..m * 30).map(|t| ((t % m) * 3) as f64).collect();
        let model = Regression::forest(m).fit(&y).unwrap();
        let fc = model.forecast(m);
        let err: f64 = fc
            .iter()
            .enumerate()
            .map(|(i, v)| (v - (((y.len() + i) % m) * 3) as f64).abs())
            .sum::<f64>()
            / m as f64;
        assert!(err < 3.0, "{fc:?}");
        let s = serde_json::to_string(&model).unwrap();
        let back: FittedRegression = serde_json::from_str(&s).unwrap();
        assert_eq!(back.forecast(3), model.forecast(3));
    }
}
