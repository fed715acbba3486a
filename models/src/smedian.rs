//! Seasonal median forecaster: the median of the same phase over the last few seasons, a
//! seasonal naive that one burst cannot move.

use crate::forecast::{check_series, FittedForecaster, Forecaster, Propagation, Ring, Uncertainty};
use crate::stats::quantile_sorted;
use crate::ModelError;
use serde::{Deserialize, Serialize};

/// Seasons the median spans by default: the median of five ignores up to two bursts.
pub const DEFAULT_SEASONS: usize = 5;

/// Trailing points whose one-step residuals calibrate the uncertainty.
const CALIBRATION_WINDOW: usize = 4000;

/// Most seasons a median spans (the window lives on the stack).
pub const MAX_SEASONS: usize = 15;

/// Seasonal median: `ŷ[t] = median(y[t − j·m])` over the `seasons` most recent seasons whose
/// value at that phase is known. Timer-driven serverless functions repeat their pattern every
/// season but see occasional bursts; the seasonal naive repeats a burst a season later, the
/// median does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeasonalMedian {
    /// Season length in bins (1 = median of the last `seasons` values).
    pub season: usize,
    /// Number of past seasons in the median (at most as many as the series holds, and at most
    /// [`MAX_SEASONS`]).
    pub seasons: usize,
}

impl SeasonalMedian {
    /// The seasonal median over [`DEFAULT_SEASONS`] seasons.
    pub fn new(season: usize) -> Self {
        Self {
            season,
            seasons: DEFAULT_SEASONS,
        }
    }
}

/// Fitted seasonal median: the last `seasons · season` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedSeasonalMedian {
    season: usize,
    seasons: usize,
    last: Ring,
    unc: Uncertainty,
}

/// Median of a small slice (at most [`MAX_SEASONS`] values), sorted in place by insertion: no
/// allocation and no comparator call on the update path.
fn median(v: &mut [f64]) -> f64 {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
    quantile_sorted(v, 0.5)
}

impl Forecaster for SeasonalMedian {
    type Fitted = FittedSeasonalMedian;
    fn fit(&self, y: &[f64]) -> Result<FittedSeasonalMedian, ModelError> {
        let mut fitted = self.fit_point(y)?;
        let (m, k) = (fitted.season, fitted.seasons);
        let mut buf = [0.0; MAX_SEASONS];
        // residuals of a trailing window calibrate the uncertainty (as Holt–Winters does)
        let from = m.max(y.len().saturating_sub(CALIBRATION_WINDOW));
        let res: Vec<f64> = (from..y.len())
            .map(|t| {
                // the seasons before t that the series holds
                let seen = k.min(t / m);
                for (j, slot) in buf[..seen].iter_mut().enumerate() {
                    *slot = y[t - (j + 1) * m];
                }
                y[t] - median(&mut buf[..seen])
            })
            .collect();
        // an error moves the median of its phase by at most itself a season later; as a
        // mean of k seasons would, count 1/k of it
        fitted.unc = Uncertainty::calibrate(&y[from..], &res).with_propagation(Propagation {
            seasonal: 1.0 / k as f64,
            season: m,
            ..Propagation::NONE
        });
        Ok(fitted)
    }
    fn fit_point(&self, y: &[f64]) -> Result<FittedSeasonalMedian, ModelError> {
        let m = self.season.max(1);
        check_series(y, m + 1)?;
        // a short series gets as many seasons as it holds
        let k = self.seasons.clamp(1, MAX_SEASONS).min(y.len() / m);
        Ok(FittedSeasonalMedian {
            season: m,
            seasons: k,
            last: Ring::from_tail(y, k * m),
            unc: Uncertainty::uncalibrated(),
        })
    }
}

impl FittedSeasonalMedian {
    /// Seasons in the median (guarded: the state may come from a file).
    #[inline]
    fn k(&self) -> usize {
        self.seasons.clamp(1, MAX_SEASONS)
    }
    /// The forecast `i` bins after the next one (0-based), from the stored seasons.
    #[inline]
    fn at(&self, i: usize, buf: &mut [f64]) -> f64 {
        let m = self.season.max(1);
        // seasons back from the forecast bin that are already observed
        let j0 = i / m + 1;
        for (s, slot) in buf.iter_mut().enumerate() {
            *slot = self.last.ago((j0 + s) * m - i);
        }
        median(buf)
    }
}

impl FittedForecaster for FittedSeasonalMedian {
    fn name(&self) -> &'static str {
        "seasonal-median"
    }
    #[inline]
    fn update(&mut self, y: f64) {
        let mut buf = [0.0; MAX_SEASONS];
        let f = self.at(0, &mut buf[..self.k()]);
        self.unc.observe(y - f);
        self.last.push(y);
    }
    fn forecast(&self, h: usize) -> Vec<f64> {
        let mut buf = [0.0; MAX_SEASONS];
        (0..h).map(|i| self.at(i, &mut buf[..self.k()])).collect()
    }
    fn uncertainty(&self) -> &Uncertainty {
        &self.unc
    }
    /// The forecasts themselves: medians of the values the series took at the same phase,
    /// already the medians this model estimates.
    fn median(&self, h: usize) -> Vec<f64> {
        self.forecast(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_a_burst_that_the_seasonal_naive_repeats() {
        // a timer: 30 per bin with a 4-bin season; one burst in the last season
        let mut y = vec![30.0; 40];
        y[38] = 300.0;
        let f = SeasonalMedian::new(4).fit(&y).unwrap();
        assert_eq!(f.forecast(8), vec![30.0; 8]);
        let sn = crate::snaive::SeasonalNaive { season: 4 }.fit(&y).unwrap();
        assert_eq!(sn.forecast(4)[2], 300.0);
    }

    #[test]
    fn follows_a_seasonal_shape_and_updates_online() {
        let shape = [1.0, 5.0, 9.0, 2.0];
        let y: Vec<f64> = (0..40).map(|t| shape[t % 4]).collect();
        let mut f = SeasonalMedian::new(4).fit(&y).unwrap();
        assert_eq!(f.forecast(6), vec![1.0, 5.0, 9.0, 2.0, 1.0, 5.0]);
        // a new level for three seasons becomes the median
        for t in 40..52 {
            f.update(shape[t % 4] + 10.0);
        }
        assert_eq!(f.forecast(4), vec![11.0, 15.0, 19.0, 12.0]);
    }

    #[test]
    fn point_only_fit_forecasts_as_the_full_fit() {
        let y: Vec<f64> = (0..200)
            .map(|t| ((t * 37) % 11) as f64 + (t % 4) as f64)
            .collect();
        let spec = SeasonalMedian::new(4);
        let (mut full, mut point) = (spec.fit(&y).unwrap(), spec.fit_point(&y).unwrap());
        let naive = crate::snaive::SeasonalNaive { season: 4 };
        let (mut nf, mut np) = (naive.fit(&y).unwrap(), naive.fit_point(&y).unwrap());
        for v in [3.0, 9.0, 1.0, 4.0, 4.0] {
            assert_eq!(point.forecast(9), full.forecast(9));
            assert_eq!(np.forecast(9), nf.forecast(9));
            for m in [&mut full, &mut point] {
                m.update(v);
            }
            for m in [&mut nf, &mut np] {
                m.update(v);
            }
        }
        // the full fit calibrated its intervals on the residuals; the point-only fit did not
        assert!(full.uncertainty().count && !point.uncertainty().count);
    }

    #[test]
    fn short_series_use_the_seasons_they_have() {
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let f = SeasonalMedian::new(3).fit(&y).unwrap();
        // two full seasons: the median of two is their mean (5 and 2, 6 and 3, 7 and 4)
        assert_eq!(f.forecast(3), vec![3.5, 4.5, 5.5]);
        assert!(SeasonalMedian::new(10).fit(&y).is_err());
    }
}
