//! Model specifications, a serialisable wrapper over every fitted forecaster, the
//! rolling-origin backtest (MASE, RMSE, interval coverage) and the per-series selector.

use crate::ets::{Ets, FittedEts};
use crate::forecast::{FittedForecaster, Forecaster, IntervalFamily, Uncertainty};
use crate::fourier::{FittedFourier, Fourier};
use crate::regression::{FittedRegression, Regression};
use crate::season::detect_season;
use crate::smedian::{FittedSeasonalMedian, SeasonalMedian};
use crate::snaive::{FittedSeasonalNaive, SeasonalNaive};
use crate::ModelError;
use serde::{Deserialize, Serialize};

/// An unfitted model of any kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ModelSpec {
    /// Seasonal naive.
    SeasonalNaive(SeasonalNaive),
    /// Seasonal median.
    SeasonalMedian(SeasonalMedian),
    /// Holt–Winters additive damped.
    Ets(Ets),
    /// FFT harmonics + trend.
    Fourier(Fourier),
    /// Lag/calendar regression (linear or random forest).
    Regression(Regression),
}

impl ModelSpec {
    /// Stable name of the model this spec fits.
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::SeasonalNaive(_) => "seasonal-naive",
            ModelSpec::SeasonalMedian(_) => "seasonal-median",
            ModelSpec::Ets(e) if e.season > 1 => "ets",
            ModelSpec::Ets(_) => "holt-damped",
            ModelSpec::Fourier(_) => "fourier",
            ModelSpec::Regression(r) => match r.learner {
                crate::regression::Learner::Linear => "linear",
                crate::regression::Learner::RandomForest => "random-forest",
            },
        }
    }
    /// Fits the spec.
    pub fn fit(&self, y: &[f64]) -> Result<AnyFitted, ModelError> {
        self.fit_as(y, false)
    }
    /// Fits the spec fully, or with `point_only` as [`Forecaster::fit_point`] does.
    fn fit_as(&self, y: &[f64], point_only: bool) -> Result<AnyFitted, ModelError> {
        fn go<F: Forecaster>(f: &F, y: &[f64], point_only: bool) -> Result<F::Fitted, ModelError> {
            if point_only {
                f.fit_point(y)
            } else {
                f.fit(y)
            }
        }
        Ok(match self {
            ModelSpec::SeasonalNaive(s) => AnyFitted::SeasonalNaive(go(s, y, point_only)?),
            ModelSpec::SeasonalMedian(s) => AnyFitted::SeasonalMedian(go(s, y, point_only)?),
            ModelSpec::Ets(s) => AnyFitted::Ets(go(s, y, point_only)?),
            ModelSpec::Fourier(s) => AnyFitted::Fourier(go(s, y, point_only)?),
            ModelSpec::Regression(s) => AnyFitted::Regression(Box::new(go(s, y, point_only)?)),
        })
    }
}

impl Forecaster for ModelSpec {
    type Fitted = AnyFitted;
    fn fit(&self, y: &[f64]) -> Result<AnyFitted, ModelError> {
        self.fit_as(y, false)
    }
    fn fit_point(&self, y: &[f64]) -> Result<AnyFitted, ModelError> {
        self.fit_as(y, true)
    }
}

/// The standard candidate models for a season length, simplest first (the order the
/// selector's one-standard-error rule prefers): seasonal median, seasonal naive, the
/// non-seasonal damped Holt model (when `season > 1`), Holt–Winters, FFT harmonics, linear
/// regression, and the random forest only when `with_forest` (it is the slowest to fit).
///
/// The two parameter-free models are equally simple; of the two the median of five seasons is
/// listed first because it is the lower-variance estimate of the same seasonal profile (the
/// seasonal naive copies a one-off burst into the next season). They tie exactly on a
/// validation slice that a timer function repeats without a burst, and there the first listed
/// is kept.
pub fn candidates(season: usize, with_forest: bool) -> Vec<ModelSpec> {
    let mut v = vec![
        ModelSpec::SeasonalMedian(SeasonalMedian::new(season)),
        ModelSpec::SeasonalNaive(SeasonalNaive { season }),
        ModelSpec::Ets(Ets::new(season)),
        ModelSpec::Fourier(Fourier::new(season)),
        ModelSpec::Regression(Regression::linear(season)),
    ];
    if season > 1 {
        v.insert(2, ModelSpec::Ets(Ets::new(1)));
    }
    if with_forest {
        v.push(ModelSpec::Regression(Regression::forest(season)));
    }
    v
}

/// Any fitted forecaster; serialisable, so a selected model can be persisted and restored.
#[derive(Debug, Serialize, Deserialize)]
pub enum AnyFitted {
    /// Seasonal naive.
    SeasonalNaive(FittedSeasonalNaive),
    /// Seasonal median.
    SeasonalMedian(FittedSeasonalMedian),
    /// Holt–Winters.
    Ets(FittedEts),
    /// FFT harmonics.
    Fourier(FittedFourier),
    /// Regression.
    Regression(Box<FittedRegression>),
}

impl AnyFitted {
    fn inner(&self) -> &dyn FittedForecaster {
        match self {
            AnyFitted::SeasonalNaive(m) => m,
            AnyFitted::SeasonalMedian(m) => m,
            AnyFitted::Ets(m) => m,
            AnyFitted::Fourier(m) => m,
            AnyFitted::Regression(m) => m.as_ref(),
        }
    }
}

impl FittedForecaster for AnyFitted {
    fn name(&self) -> &'static str {
        self.inner().name()
    }
    #[inline]
    fn update(&mut self, y: f64) {
        match self {
            AnyFitted::SeasonalNaive(m) => m.update(y),
            AnyFitted::SeasonalMedian(m) => m.update(y),
            AnyFitted::Ets(m) => m.update(y),
            AnyFitted::Fourier(m) => m.update(y),
            AnyFitted::Regression(m) => m.update(y),
        }
    }
    fn forecast(&self, h: usize) -> Vec<f64> {
        self.inner().forecast(h)
    }
    fn uncertainty(&self) -> &Uncertainty {
        self.inner().uncertainty()
    }
    fn median(&self, h: usize) -> Vec<f64> {
        self.inner().median(h)
    }
}

/// Accuracy of one model under the rolling-origin protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestScore {
    /// Model name.
    pub model: String,
    /// Mean absolute error over all origins and steps, of the median forecasts
    /// ([`FittedForecaster::median`]: the point forecasts under absolute error).
    pub mae: f64,
    /// Root mean squared error of the mean forecasts ([`FittedForecaster::forecast`]).
    pub rmse: f64,
    /// MASE: `mae` divided by the in-sample seasonal-naive scale.
    pub mase: f64,
    /// MASE of the mean forecasts, for comparison with tools that score their means.
    #[serde(default)]
    pub mase_mean: f64,
    /// Share of actuals inside the central 80 % interval.
    pub coverage80: f64,
    /// Share of actuals inside the central 95 % interval.
    pub coverage95: f64,
    /// Share of actuals strictly inside the central 80 % interval (its ends excluded). On
    /// integer counts an interval's ends are values the series takes, so `coverage80` counts
    /// every actual on an end and this counts none: a calibrated interval's nominal 0.8 lies
    /// between the two (on continuous values they are equal). Above 0.8, the interval is too
    /// wide; `coverage80` below 0.8, too narrow.
    #[serde(default)]
    pub coverage80_open: f64,
    /// Share of actuals strictly inside the central 95 % interval (as `coverage80_open`).
    #[serde(default)]
    pub coverage95_open: f64,
    /// Where the intervals came from, as calibrated on the training part (`None` when the
    /// model was fitted for point forecasts only).
    #[serde(default)]
    pub intervals: Option<IntervalFamily>,
    /// Number of forecast origins.
    pub origins: usize,
    /// Number of forecast points scored.
    pub points: usize,
}

/// Mean of `|y[t] - y[t-m]|` over `y`: the MASE scale. `None` when undefined or zero.
pub fn mase_scale(y: &[f64], m: usize) -> Option<f64> {
    let m = m.max(1);
    if y.len() <= m {
        return None;
    }
    let s = (m..y.len()).map(|t| (y[t] - y[t - m]).abs()).sum::<f64>() / (y.len() - m) as f64;
    (s > 0.0).then_some(s)
}

/// Rolling-origin backtest: fit on `y[..train_end]`, then at origins `train_end`,
/// `train_end + h`, … forecast the next `h` points (fewer at the end), score them, and feed
/// the actuals to the model with `update`. `scale` is the MASE denominator.
pub fn rolling_origin(
    y: &[f64],
    spec: &ModelSpec,
    train_end: usize,
    h: usize,
    scale: f64,
) -> Result<BacktestScore, ModelError> {
    rolling_origin_by_origin(y, spec, train_end, h, scale).map(|(s, _)| s)
}

/// The rolling-origin replay shared by the backtests: fit `spec` on `y[..train_end]`, then at
/// origins `train_end`, `train_end + h`, … call `at_origin(model, actuals)` with the next `h`
/// actuals (fewer at the end) and feed them to the model with `update`. Returns the number of
/// origins.
fn replay(
    y: &[f64],
    spec: &ModelSpec,
    train_end: usize,
    h: usize,
    point_only: bool,
    mut at_origin: impl FnMut(&AnyFitted, &[f64]),
) -> Result<usize, ModelError> {
    if train_end >= y.len() {
        return Err(ModelError::TooShort {
            got: y.len(),
            need: train_end + 1,
        });
    }
    let mut model = spec.fit_as(&y[..train_end], point_only)?;
    let mut origins = 0;
    for actual in y[train_end..].chunks(h.max(1)) {
        at_origin(&model, actual);
        for &v in actual {
            model.update(v);
        }
        origins += 1;
    }
    Ok(origins)
}

/// The work of a [`rolling_origin`] backtest without the scoring and the intervals: the
/// point-only fit ([`Forecaster::fit_point`]), and at every origin the point forecasts MASE
/// scores (the medians) and the updates. This is what a point-forecast tool's backtest does,
/// so its time compares with theirs (the interval calibration costs more than the point model
/// for the cheapest models).
/// Returns the sum of all forecasts, which keeps the work observable.
pub fn replay_point_forecasts(
    y: &[f64],
    spec: &ModelSpec,
    train_end: usize,
    h: usize,
) -> Result<f64, ModelError> {
    let mut sum = 0.0;
    replay(y, spec, train_end, h, true, |model, actual| {
        sum += model.median(actual.len()).iter().sum::<f64>();
    })?;
    Ok(sum)
}

/// What a model forecast at one origin of a rolling-origin backtest: the mean and median
/// point forecasts and the central 80 % and 95 % intervals of the next bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginForecast {
    /// Index of the first forecast bin in the series.
    pub origin: usize,
    /// Mean forecasts ([`FittedForecaster::forecast`]).
    pub mean: Vec<f64>,
    /// Median forecasts ([`FittedForecaster::median`]).
    pub median: Vec<f64>,
    /// 10 % quantiles.
    pub lo80: Vec<f64>,
    /// 90 % quantiles.
    pub hi80: Vec<f64>,
    /// 2.5 % quantiles.
    pub lo95: Vec<f64>,
    /// 97.5 % quantiles.
    pub hi95: Vec<f64>,
}

impl OriginForecast {
    /// The forecasts of `model` for the next `steps` bins, the first of which is `origin`.
    fn of(model: &AnyFitted, origin: usize, steps: usize) -> Self {
        Self {
            origin,
            mean: model.forecast(steps),
            median: model.median(steps),
            lo80: model.quantile(steps, 0.1),
            hi80: model.quantile(steps, 0.9),
            lo95: model.quantile(steps, 0.025),
            hi95: model.quantile(steps, 0.975),
        }
    }
}

/// The forecasts a [`rolling_origin`] backtest of `spec` scores, one per origin (for plots
/// and for users who score them their own way).
pub fn origin_forecasts(
    y: &[f64],
    spec: &ModelSpec,
    train_end: usize,
    h: usize,
) -> Result<Vec<OriginForecast>, ModelError> {
    let mut out = Vec::new();
    let mut origin = train_end;
    replay(y, spec, train_end, h, false, |model, actual| {
        out.push(OriginForecast::of(model, origin, actual.len()));
        origin += actual.len();
    })?;
    Ok(out)
}

/// [`rolling_origin`], also returning the mean absolute error of each origin's forecasts.
fn rolling_origin_by_origin(
    y: &[f64],
    spec: &ModelSpec,
    train_end: usize,
    h: usize,
    scale: f64,
) -> Result<(BacktestScore, Vec<f64>), ModelError> {
    let (mut abs, mut abs_mean, mut sq, mut n) = (0.0, 0.0, 0.0, 0usize);
    // closed and open (ends excluded) interval hits, 80 % then 95 %
    let (mut c80, mut c95, mut o80, mut o95) = (0, 0, 0, 0);
    let mut per_origin = Vec::new();
    let mut intervals = None;
    let origins = replay(y, spec, train_end, h, false, |model, actual| {
        intervals.get_or_insert_with(|| model.uncertainty().family());
        let steps = actual.len();
        let abs_before = abs;
        let f = OriginForecast::of(model, train_end + n, steps);
        for (i, &a) in actual.iter().enumerate() {
            abs += (a - f.median[i]).abs();
            let e = a - f.mean[i];
            abs_mean += e.abs();
            sq += e * e;
            c80 += usize::from(a >= f.lo80[i] && a <= f.hi80[i]);
            c95 += usize::from(a >= f.lo95[i] && a <= f.hi95[i]);
            o80 += usize::from(a > f.lo80[i] && a < f.hi80[i]);
            o95 += usize::from(a > f.lo95[i] && a < f.hi95[i]);
            n += 1;
        }
        per_origin.push((abs - abs_before) / steps as f64);
    })?;
    let nf = n.max(1) as f64;
    let score = BacktestScore {
        model: spec.name().to_string(),
        mae: abs / nf,
        rmse: (sq / nf).sqrt(),
        mase: abs / nf / scale,
        mase_mean: abs_mean / nf / scale,
        coverage80: c80 as f64 / nf,
        coverage95: c95 as f64 / nf,
        coverage80_open: o80 as f64 / nf,
        coverage95_open: o95 as f64 / nf,
        intervals,
        origins,
        points: n,
    };
    Ok((score, per_origin))
}

/// The one-standard-error rule over candidates listed simplest first, each with its error per
/// validation origin (the same origins for all): the simplest candidate whose mean error
/// exceeds the best candidate's by at most one standard error of their paired per-origin
/// differences. Differences within that are noise of the validation slice, so the simpler
/// model is preferred. `None` when `errors` is empty.
pub fn one_se_pick(errors: &[Vec<f64>]) -> Option<usize> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let best = (0..errors.len())
        .filter(|&i| mean(&errors[i]).is_finite())
        .min_by(|&a, &b| mean(&errors[a]).total_cmp(&mean(&errors[b])))?;
    (0..errors.len()).find(|&i| {
        if i == best {
            return true;
        }
        if errors[i].len() != errors[best].len() || errors[i].len() < 2 {
            return false;
        }
        let d: Vec<f64> = errors[i]
            .iter()
            .zip(&errors[best])
            .map(|(a, b)| a - b)
            .collect();
        let n = d.len() as f64;
        let md = mean(&d);
        let var = d.iter().map(|x| (x - md).powi(2)).sum::<f64>() / (n - 1.0);
        md.is_finite() && md <= (var / n).sqrt()
    })
}

/// A model chosen by [`select_model`], with the validation error of every candidate.
#[derive(Debug, Serialize, Deserialize)]
pub struct Selection {
    /// The winning model, refitted on the whole series.
    pub model: AnyFitted,
    /// Season length used.
    pub season: usize,
    /// Validation MAE per candidate name (candidates that failed to fit are absent).
    pub scores: Vec<(String, f64)>,
}

/// Resolves a season: `Some(m)` as given, `None` detected (1 when no clear season).
pub fn resolve_season(y: &[f64], season: Option<usize>) -> usize {
    season
        .unwrap_or_else(|| detect_season(y, 10080).unwrap_or(1))
        .max(1)
}

/// Chooses among `specs` (listed simplest first) by a rolling-origin backtest on the last
/// 20 % of `y` (horizon `horizon`) with the one-standard-error rule ([`one_se_pick`]), then
/// refits the winner on all of `y`.
pub fn select_from(
    y: &[f64],
    specs: &[ModelSpec],
    horizon: usize,
) -> Result<(AnyFitted, Vec<(String, f64)>), ModelError> {
    let n = y.len();
    let train_end = n - n / 5;
    let mut scores = Vec::new();
    let mut valid = Vec::new();
    let mut errors = Vec::new();
    for spec in specs {
        if let Ok((s, per_origin)) = rolling_origin_by_origin(y, spec, train_end, horizon, 1.0) {
            if s.mae.is_finite() {
                scores.push((spec.name().to_string(), s.mae));
                valid.push(spec);
                errors.push(per_origin);
            }
        }
    }
    let best = one_se_pick(&errors).map(|i| valid[i]);
    // fall back to whatever fits on the whole series (a short series may fail validation)
    let order: Vec<&ModelSpec> = best.into_iter().chain(specs.iter()).collect();
    let mut last_err = ModelError::TooShort { got: n, need: 2 };
    for spec in order {
        match spec.fit(y) {
            Ok(m) => return Ok((m, scores)),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// Selects a forecaster for `y` (`season`: `None` = detect) by rolling-origin backtest of
/// the standard candidates at the given horizon.
pub fn select_model(
    y: &[f64],
    season: Option<usize>,
    horizon: usize,
) -> Result<Selection, ModelError> {
    let m = resolve_season(y, season);
    let mut specs = candidates(m, false);
    if m > 1 {
        // a series too short for its season can still get a non-seasonal model
        specs.push(ModelSpec::SeasonalNaive(SeasonalNaive { season: 1 }));
        specs.push(ModelSpec::Regression(Regression::linear(1)));
    }
    let (model, scores) = select_from(y, &specs, horizon)?;
    Ok(Selection {
        model,
        season: m,
        scores,
    })
}

/// Convenience: the selected model as a trait object.
pub fn select_boxed(
    y: &[f64],
    season: Option<usize>,
    horizon: usize,
) -> Result<Box<dyn FittedForecaster>, ModelError> {
    Ok(Box::new(select_model(y, season, horizon)?.model))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poisson(lambda: f64, seed: &mut u64) -> f64 {
        // Knuth's method with a xorshift generator
        let l = (-lambda).exp();
        let mut k = 0.0;
        let mut p = 1.0;
        loop {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            p *= (*seed >> 11) as f64 / (1u64 << 53) as f64;
            if p <= l {
                return k;
            }
            k += 1.0;
        }
    }

    #[test]
    fn poisson_intervals_cover_near_nominal() {
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        let y: Vec<f64> = (0..3000).map(|_| poisson(6.0, &mut seed)).collect();
        let scale = mase_scale(&y[..2400], 1).unwrap_or(1.0);
        for spec in [
            ModelSpec::Ets(Ets::new(1)),
            ModelSpec::SeasonalNaive(SeasonalNaive { season: 1 }),
        ] {
            let s = rolling_origin(&y, &spec, 2400, 5, scale).unwrap();
            assert!(
                (0.76..=0.92).contains(&s.coverage80),
                "{}: {s:?}",
                spec.name()
            );
            assert!(
                (0.92..=0.995).contains(&s.coverage95),
                "{}: {s:?}",
                spec.name()
            );
            // integer counts land on the interval's ends: the share strictly inside is lower,
            // and the nominal rate lies between the two (within 2.5 standard errors of a share
            // of 600 points)
            assert!(s.coverage80_open < s.coverage80 - 0.05, "{s:?}");
            assert!(
                s.coverage80_open <= 0.84 && s.coverage95_open <= 0.97,
                "{s:?}"
            );
        }
    }

    #[test]
    fn median_forecasts_of_counts_are_integers_and_score_the_lower_absolute_error() {
        // i.i.d. Poisson(2.4): damped Holt's mean forecast sits near 2.4, and the expected
        // absolute error is least at the median, 2 (lower by about 0.4 × (P(Y ≤ 2) − P(Y ≥ 3))
        // = 0.056 per point, ~4 %); squared error is least at the mean
        let mut seed = 0x2545_F491_4F6C_DD1D;
        let y: Vec<f64> = (0..3000).map(|_| poisson(2.4, &mut seed)).collect();
        let spec = ModelSpec::Ets(Ets::new(1));
        let fitted = spec.fit(&y[..2400]).unwrap();
        let mean = fitted.forecast(5);
        assert!((2.2..2.6).contains(&mean[0]), "{mean:?}");
        assert_eq!(fitted.median(5), vec![2.0; 5]);
        let s = rolling_origin(&y, &spec, 2400, 5, 1.0).unwrap();
        assert!(s.mase < 0.98 * s.mase_mean, "{s:?}");
        // the parameter-free models forecast values the series took: their own medians
        let naive = ModelSpec::SeasonalNaive(SeasonalNaive { season: 1 })
            .fit(&y[..2400])
            .unwrap();
        assert_eq!(naive.median(3), naive.forecast(3));
    }

    #[test]
    fn rare_bursts_do_not_push_a_counts_interval_onto_zero() {
        // Poisson(6) counts with a burst of 400 in every 37th bin: the bursts inflate the
        // running variance to thousands, and a negative binomial with that variance has the
        // shape of neither the ordinary counts nor the bursts (with it, damped Holt's 80 %
        // interval held 0.97 of the test values). Calibration sees that on the training
        // residuals and uses the conformal table.
        let mut seed = 0x51_7CC1_B727_220A;
        let y: Vec<f64> = (0..3000)
            .map(|t| poisson(6.0, &mut seed) + if t % 37 == 0 { 400.0 } else { 0.0 })
            .collect();
        let scale = mase_scale(&y[..2400], 1).unwrap_or(1.0);
        for spec in [
            ModelSpec::Ets(Ets::new(1)),
            ModelSpec::SeasonalNaive(SeasonalNaive { season: 1 }),
        ] {
            let fitted = spec.fit(&y[..2400]).unwrap();
            assert!(!fitted.uncertainty().count_dist, "{}", spec.name());
            let s = rolling_origin(&y, &spec, 2400, 5, scale).unwrap();
            assert_eq!(s.intervals, Some(IntervalFamily::CountRejected));
            // the bursts (2.7 % of bins) fall outside the 80 % interval and the ordinary
            // counts inside it
            assert!(
                (0.72..=0.93).contains(&s.coverage80),
                "{}: {s:?}",
                spec.name()
            );
            assert!(s.coverage95 >= 0.9, "{}: {s:?}", spec.name());
        }
        // on plain Poisson counts the count distribution holds and is kept
        let y: Vec<f64> = (0..2400).map(|_| poisson(6.0, &mut seed)).collect();
        let fitted = ModelSpec::Ets(Ets::new(1)).fit(&y).unwrap();
        assert!(fitted.uncertainty().count_dist);
        assert_eq!(fitted.uncertainty().family(), IntervalFamily::Count);
    }

    #[test]
    fn local_level_intervals_widen_with_the_horizon_as_they_should() {
        // y = ℓ + e, ℓ' = ℓ + α·e with α = 0.6 and Gaussian e: the h-step error variance is
        // σ²·(1 + (h − 1)·α²), 4.2σ² at h = 10; one-step-sized intervals would cover ~0.6
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut unif = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut level = 100.0;
        let y: Vec<f64> = (0..4000)
            .map(|_| {
                let e = (-2.0 * unif().ln()).sqrt() * (2.0 * std::f64::consts::PI * unif()).cos();
                let v = level + e;
                level += 0.6 * e;
                v
            })
            .collect();
        let scale = mase_scale(&y[..3200], 1).unwrap_or(1.0);
        let s = rolling_origin(&y, &ModelSpec::Ets(Ets::new(1)), 3200, 10, scale).unwrap();
        assert!((0.74..=0.86).contains(&s.coverage80), "{s:?}");
        assert!((0.91..=0.98).contains(&s.coverage95), "{s:?}");
        // continuous values never land on an end: open and closed shares agree
        assert_eq!(s.coverage80_open, s.coverage80);
        assert_eq!(s.coverage95_open, s.coverage95);
    }

    #[test]
    fn a_timers_intervals_are_integers_that_hold_its_value() {
        // a timer at 30 per bin, one bin in 12 at 31: under-dispersed counts, so the conformal
        // quantiles apply; they must be integers, and the 80 % interval must hold 30 (a
        // continuous interval around a smoothed level of ~30.08 would miss every 30)
        let y: Vec<f64> = (0..1200)
            .map(|t| if t % 12 == 5 { 31.0 } else { 30.0 })
            .collect();
        let scale = 1.0;
        let spec = ModelSpec::Ets(Ets::new(1));
        let s = rolling_origin(&y, &spec, 960, 6, scale).unwrap();
        assert!(s.coverage80 >= 0.9, "{s:?}");
        // every 30 sits on an end of its interval: none is strictly inside, so the high
        // closed share is the counts' discreteness, not an interval too wide
        assert!(s.coverage80_open <= 0.1, "{s:?}");
        let f = spec.fit(&y).unwrap();
        for q in [0.1, 0.5, 0.9, 0.975] {
            let x = f.quantile(6, q);
            assert!(x.iter().all(|v| v.fract() == 0.0), "{q}: {x:?}");
            assert!(x.iter().all(|v| (29.0..=32.0).contains(v)), "{q}: {x:?}");
        }
        assert_eq!(f.quantile(1, 0.1)[0], 30.0);
        assert!(f.sum_quantile(6, 0.9).fract() == 0.0);
    }

    #[test]
    fn a_timer_whose_validation_repeats_exactly_keeps_the_seasonal_median() {
        // a timer at 6 per bin with a season of 12; early seasons see one-off bursts of 7,
        // the validation slice (the last 20 %) none: both parameter-free models forecast it
        // without error, and the selector keeps the median, which will not copy the next burst
        let m = 12;
        let mut y = vec![6.0; m * 40];
        for t in [17, 70, 101, 150, 233, 301] {
            y[t] = 7.0;
        }
        let (model, scores) = select_from(&y, &candidates(m, false), 6).unwrap();
        let mae = |name: &str| scores.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(mae("seasonal-naive"), 0.0);
        assert_eq!(mae("seasonal-median"), 0.0);
        assert_eq!(model.name(), "seasonal-median");
        // a burst in the last season: the seasonal naive repeats it a season later
        y.push(7.0);
        y.extend([6.0; 11]);
        let mut naive = ModelSpec::SeasonalNaive(SeasonalNaive { season: m })
            .fit(&y)
            .unwrap();
        let median = ModelSpec::SeasonalMedian(SeasonalMedian::new(m))
            .fit(&y)
            .unwrap();
        assert_eq!(median.forecast(m), vec![6.0; m]);
        assert_eq!(naive.forecast(1), vec![7.0]);
        naive.update(6.0);
        assert_eq!(naive.forecast(m - 1), vec![6.0; m - 1]);
    }

    #[test]
    fn selector_prefers_a_seasonal_model_on_seasonal_data() {
        let m = 24;
        let y: Vec<f64> = (0..m * 30)
            .map(|t| {
                (20.0 + 10.0 * (2.0 * std::f64::consts::PI * t as f64 / m as f64).sin()).round()
            })
            .collect();
        let sel = select_model(&y, None, 6).unwrap();
        assert_eq!(sel.season, m);
        // the winner is a seasonal candidate whose validation error is close to the best
        let best = sel.scores.iter().map(|s| s.1).fold(f64::MAX, f64::min);
        let (_, won) = sel
            .scores
            .iter()
            .find(|(n, _)| n == sel.model.name())
            .unwrap();
        assert!(*won <= best * 1.5 + 0.1, "{:?}", sel.scores);
        let f = sel.model.forecast(m);
        let err: f64 = f
            .iter()
            .enumerate()
            .map(|(i, v)| (v - y[y.len() - m + i]).abs())
            .sum::<f64>()
            / m as f64;
        assert!(err < 1.0, "{} {err}", sel.model.name());
        let json = serde_json::to_string(&sel).unwrap();
        let back: Selection = serde_json::from_str(&json).unwrap();
        assert_eq!(back.model.forecast(3), sel.model.forecast(3));
    }

    #[test]
    fn origin_forecasts_are_what_the_backtest_scores() {
        let mut seed = 0x2545_F491_4F6C_DD1D;
        let y: Vec<f64> = (0..500)
            .map(|t| poisson(8.0 + 4.0 * (t as f64 / 4.0).sin(), &mut seed))
            .collect();
        let (train_end, h) = (400, 12);
        for spec in candidates(25, false) {
            let f = origin_forecasts(&y, &spec, train_end, h).unwrap();
            // origins every h bins from the training end, the last one short
            let origins: Vec<usize> = f.iter().map(|o| o.origin).collect();
            let want: Vec<usize> = (train_end..y.len()).step_by(h).collect();
            assert_eq!(origins, want, "{}", spec.name());
            assert_eq!(f.last().unwrap().mean.len(), (y.len() - train_end) % h);
            let (mut abs, mut abs_mean, mut n, mut inside) = (0.0, 0.0, 0, 0);
            for o in &f {
                for (i, &m) in o.mean.iter().enumerate() {
                    let a = y[o.origin + i];
                    abs += (a - o.median[i]).abs();
                    abs_mean += (a - m).abs();
                    // the median is an integer inside the 80 % interval
                    assert_eq!(o.median[i].fract(), 0.0, "{}", spec.name());
                    assert!(o.lo80[i] <= o.median[i] && o.median[i] <= o.hi80[i]);
                    inside += usize::from(a >= o.lo80[i] && a <= o.hi80[i]);
                    n += 1;
                    assert!(o.lo95[i] <= o.lo80[i] && o.lo80[i] <= o.hi80[i]);
                    assert!(o.hi80[i] <= o.hi95[i]);
                }
            }
            let s = rolling_origin(&y, &spec, train_end, h, 1.0).unwrap();
            assert_eq!(n, s.points);
            assert!((abs / n as f64 - s.mae).abs() < 1e-9, "{}", spec.name());
            assert!((abs_mean / n as f64 - s.mase_mean).abs() < 1e-9);
            assert!((inside as f64 / n as f64 - s.coverage80).abs() < 1e-12);
        }
    }

    #[test]
    fn one_se_rule_prefers_the_simpler_of_near_ties() {
        // candidate 1 is best by 0.1 on average, but its per-origin lead swings by ±1: noise,
        // so the simpler candidate 0 is kept
        let simple = vec![5.0, 5.0, 5.0, 5.0, 5.0, 5.0];
        let noisy = vec![4.0, 6.0, 4.0, 5.8, 4.0, 5.6];
        assert_eq!(one_se_pick(&[simple.clone(), noisy]), Some(0));
        // a steady lead of 0.5 at every origin is not noise: the complex candidate wins
        let steady = vec![4.5, 4.4, 4.6, 4.5, 4.5, 4.4];
        assert_eq!(one_se_pick(&[simple.clone(), steady.clone()]), Some(1));
        // the simplest within one SE wins, not the first within it after the best
        let worse = vec![9.0; 6];
        assert_eq!(one_se_pick(&[worse, steady.clone(), simple]), Some(1));
        // the best alone, non-finite errors skipped, nothing at all
        assert_eq!(one_se_pick(std::slice::from_ref(&steady)), Some(0));
        assert_eq!(one_se_pick(&[vec![f64::NAN; 6], steady]), Some(1));
        assert_eq!(one_se_pick(&[]), None);
    }

    #[test]
    fn every_fitted_model_round_trips_through_serde() {
        let m = 24;
        let y: Vec<f64> = (0..m * 12)
            .map(|t| {
                (10.0 + 4.0 * (2.0 * std::f64::consts::PI * t as f64 / m as f64).sin()).round()
            })
            .collect();
        let (train, rest) = y.split_at(m * 10);
        for spec in candidates(m, true) {
            let mut a = spec.fit(train).unwrap();
            let json = serde_json::to_string(&a).unwrap();
            let mut b: AnyFitted = serde_json::from_str(&json).unwrap();
            assert_eq!(b.name(), a.name());
            // the restored model continues exactly like the original
            for &v in rest {
                a.update(v);
                b.update(v);
            }
            assert_eq!(a.forecast(6), b.forecast(6), "{}", spec.name());
            assert_eq!(a.quantile(6, 0.9), b.quantile(6, 0.9), "{}", spec.name());
        }
    }
}
