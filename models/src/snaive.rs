//! Seasonal naive forecaster: the value one season ago (the MASE baseline).

use crate::forecast::{check_series, FittedForecaster, Forecaster, Propagation, Ring, Uncertainty};
use crate::ModelError;
use serde::{Deserialize, Serialize};

/// Seasonal naive: `ŷ[t+h] = y[t+h-m·k]`. With `season <= 1` it is the plain naive forecast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeasonalNaive {
    /// Season length in bins (1 = naive).
    pub season: usize,
}

/// Fitted seasonal naive: the last season of values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedSeasonalNaive {
    last: Ring,
    unc: Uncertainty,
}

impl Forecaster for SeasonalNaive {
    type Fitted = FittedSeasonalNaive;
    fn fit(&self, y: &[f64]) -> Result<FittedSeasonalNaive, ModelError> {
        let mut fitted = self.fit_point(y)?;
        let m = fitted.last.len();
        let res: Vec<f64> = (m..y.len()).map(|t| y[t] - y[t - m]).collect();
        // a seasonal random walk: an error returns whole one season later
        fitted.unc = Uncertainty::calibrate(y, &res).with_propagation(Propagation {
            seasonal: 1.0,
            season: m,
            ..Propagation::NONE
        });
        Ok(fitted)
    }
    fn fit_point(&self, y: &[f64]) -> Result<FittedSeasonalNaive, ModelError> {
        let m = self.season.max(1);
        check_series(y, m + 1)?;
        Ok(FittedSeasonalNaive {
            last: Ring::from_tail(y, m),
            unc: Uncertainty::uncalibrated(),
        })
    }
}

impl FittedForecaster for FittedSeasonalNaive {
    fn name(&self) -> &'static str {
        "seasonal-naive"
    }
    #[inline]
    fn update(&mut self, y: f64) {
        let m = self.last.len();
        self.unc.observe(y - self.last.ago(m));
        self.last.push(y);
    }
    fn forecast(&self, h: usize) -> Vec<f64> {
        let m = self.last.len();
        (0..h).map(|i| self.last.ago(m - (i % m))).collect()
    }
    fn uncertainty(&self) -> &Uncertainty {
        &self.unc
    }
    /// The forecasts themselves: values the series took one season ago, each already the
    /// median of this model's predictive distribution (a seasonal random walk).
    fn median(&self, h: usize) -> Vec<f64> {
        self.forecast(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_last_season() {
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let mut f = SeasonalNaive { season: 3 }.fit(&y).unwrap();
        assert_eq!(f.forecast(4), vec![5.0, 6.0, 7.0, 5.0]);
        f.update(8.0);
        assert_eq!(f.forecast(3), vec![6.0, 7.0, 8.0]);
        assert!(SeasonalNaive { season: 10 }.fit(&y).is_err());
    }
}
