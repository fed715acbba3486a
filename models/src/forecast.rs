//! The forecaster traits shared by every rate model, the calibrated uncertainty they carry
//! (conformal residual quantiles or a Poisson / negative-binomial count distribution), and a
//! small ring buffer for seasonal state.

use crate::stats::{count_intervals_hold, count_quantile, norm_inv, quantiles_unsorted};
use crate::ModelError;
use serde::{Deserialize, Serialize};

/// An unfitted rate model: a configuration that `fit`s on a series of counts per bin.
pub trait Forecaster {
    /// The fitted model type.
    type Fitted: FittedForecaster + 'static;
    /// Fits the model to `y` (one value per bin, oldest first).
    fn fit(&self, y: &[f64]) -> Result<Self::Fitted, ModelError>;
    /// Fits for point forecasts only: the same point forecasts and updates as [`fit`]'s, but a
    /// model whose interval calibration costs more than its point model (a pass over the
    /// training residuals) may skip it and keep uncalibrated normal intervals. This is the
    /// work a point-forecast tool does, so backtests time it against theirs; the default fits
    /// fully.
    ///
    /// [`fit`]: Forecaster::fit
    fn fit_point(&self, y: &[f64]) -> Result<Self::Fitted, ModelError> {
        self.fit(y)
    }
    /// Fits and boxes the result, for callers that hold heterogeneous models.
    fn fit_boxed(&self, y: &[f64]) -> Result<Box<dyn FittedForecaster>, ModelError> {
        Ok(Box::new(self.fit(y)?))
    }
}

/// A fitted rate model: O(1) online update per bin, point and quantile forecasts.
pub trait FittedForecaster: Send + Sync + std::fmt::Debug {
    /// Stable model name, e.g. `"ets"`, `"seasonal-naive"`.
    fn name(&self) -> &'static str;
    /// Feeds the value observed in the next bin.
    fn update(&mut self, y: f64);
    /// Point forecasts for the next `h` bins.
    fn forecast(&self, h: usize) -> Vec<f64>;
    /// The calibrated uncertainty of the model's one-step errors.
    fn uncertainty(&self) -> &Uncertainty;
    /// Per-bin `q`-quantile forecasts for the next `h` bins.
    fn quantile(&self, h: usize, q: f64) -> Vec<f64> {
        self.uncertainty().quantiles(&self.forecast(h), q)
    }
    /// The `q`-quantile of the SUM of the next `h` bins.
    fn sum_quantile(&self, h: usize, q: f64) -> f64 {
        let f = self.forecast(h);
        self.uncertainty().sum_quantile(&f, q)
    }
    /// Point forecasts under absolute error for the next `h` bins: predictive medians, which
    /// minimise the expected absolute error as [`forecast`]'s means minimise the squared one.
    /// MASE and the selector score these; RMSE scores [`forecast`]. The default is
    /// [`Uncertainty::medians`] of [`forecast`]: the mean shifted by the median of the
    /// standardised in-sample residuals and, on counts, made an integer. A model whose point
    /// forecast is already a median of past values (the seasonal naive and median) returns it.
    ///
    /// [`forecast`]: FittedForecaster::forecast
    fn median(&self, h: usize) -> Vec<f64> {
        self.uncertainty().medians(&self.forecast(h))
    }
}

impl FittedForecaster for Box<dyn FittedForecaster> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn update(&mut self, y: f64) {
        (**self).update(y)
    }
    fn forecast(&self, h: usize) -> Vec<f64> {
        (**self).forecast(h)
    }
    fn uncertainty(&self) -> &Uncertainty {
        (**self).uncertainty()
    }
    fn quantile(&self, h: usize, q: f64) -> Vec<f64> {
        (**self).quantile(h, q)
    }
    fn sum_quantile(&self, h: usize, q: f64) -> f64 {
        (**self).sum_quantile(h, q)
    }
    fn median(&self, h: usize) -> Vec<f64> {
        (**self).median(h)
    }
}

/// Probability levels at which standardised residual quantiles are stored.
const LEVELS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995,
];

/// Weight of the newest squared residual in the running variance.
const VAR_DECAY: f64 = 0.02;

/// Most recent in-sample residuals on which calibration checks a count distribution.
const COUNT_CHECK: usize = 400;

/// Fewest over-dispersed residuals that can reject a count distribution.
const COUNT_CHECK_MIN: usize = 30;

/// Calibrated one-step error model shared by all forecasters.
///
/// The running variance `var` is an exponentially weighted mean of squared one-step residuals
/// (updated online). For integer, non-negative series whose error variance is at least the
/// forecast (Poisson-like or over-dispersed) the predictive distribution is a Poisson /
/// negative binomial with the point forecast as mean and `var` as variance, provided that
/// distribution's intervals held on the training residuals (`count_dist`); otherwise it is the
/// point forecast plus `sqrt(var)` times the conformal quantiles of standardised in-sample
/// residuals (`table`). Multi-step errors propagate as
/// the model's `propagation` says, with one-step errors of lag-one autocorrelation `rho`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uncertainty {
    /// The series is integer-valued and non-negative: use a count distribution.
    pub count: bool,
    /// The series is non-negative: clamp forecasts and quantiles at 0.
    pub nonneg: bool,
    /// The Poisson / negative binomial held on the training residuals (its central 80 % and
    /// 95 % intervals covered them at their nominal rates, within sampling error), so
    /// over-dispersed counts use it; when false they use the conformal table. A variance
    /// inflated by rare bursts makes a negative binomial pile its mass on 0, and its intervals
    /// then miss the ordinary values. State saved before this field keeps the distribution.
    #[serde(default = "yes")]
    pub count_dist: bool,
    /// Running variance of one-step residuals.
    pub var: f64,
    /// Lag-one autocorrelation of the residuals, in [−0.9, 0.9] (the AR(1) fallback of
    /// models without a `propagation` uses it only when positive).
    pub rho: f64,
    /// Standardised residual quantiles at the fixed probability levels.
    pub table: Vec<f64>,
    /// How the model carries one-step errors into later forecasts; `None` (models without a
    /// linear error form, and state saved before this field) treats multi-step errors as
    /// AR(1) forecast errors, `var·(1 − ρ^{2h}) / (1 − ρ²)`.
    #[serde(default)]
    pub propagation: Option<Propagation>,
}

/// Where a model's intervals come from (reported by backtests, so that users see which rule
/// their series got).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum IntervalFamily {
    /// Not a count series: conformal quantiles of the standardised residuals.
    Conformal,
    /// Counts: Poisson / negative binomial where at least Poisson-dispersed, conformal where
    /// under-dispersed.
    Count,
    /// Counts whose Poisson / negative binomial failed on the training residuals: conformal
    /// throughout.
    CountRejected,
}

impl IntervalFamily {
    /// Every family.
    pub const ALL: [IntervalFamily; 3] = [
        IntervalFamily::Conformal,
        IntervalFamily::Count,
        IntervalFamily::CountRejected,
    ];

    /// The name in JSON (serde uses it) and in tables.
    pub fn name(self) -> &'static str {
        match self {
            IntervalFamily::Conformal => "conformal",
            IntervalFamily::Count => "count",
            IntervalFamily::CountRejected => "count-rejected",
        }
    }
}

impl From<IntervalFamily> for &'static str {
    fn from(f: IntervalFamily) -> Self {
        f.name()
    }
}

impl TryFrom<String> for IntervalFamily {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown interval family {s:?}"))
    }
}

/// How a model's forecast errors grow over the horizon, in the form of the linear innovations
/// state-space models (Hyndman et al., *Forecasting with Exponential Smoothing*, 2008, §6.1):
/// the error `h` bins ahead is `Σ_{j<h} ψ_j·ε_{t+h−j}` over the coming one-step errors ε,
/// with `ψ_0 = 1` and `ψ_j = level + trend·(φ + … + φ^j) + seasonal·[j is a multiple of
/// season]`: what the model's state absorbs of each error (α, β, φ, γ for Holt–Winters).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Propagation {
    /// Share of an error the level keeps (α; a level correction's rate).
    pub level: f64,
    /// Share of an error the trend keeps (β).
    pub trend: f64,
    /// Trend damping φ.
    pub phi: f64,
    /// Share of an error the seasonal term of its phase keeps (γ; 1 for the seasonal naive).
    pub seasonal: f64,
    /// Season length in bins (the seasonal share applies every `season` bins; 0 = none).
    pub season: usize,
}

impl Propagation {
    /// No error is kept: every weight after the first is 0 (a base to update from).
    pub const NONE: Propagation = Propagation {
        level: 0.0,
        trend: 0.0,
        phi: 0.0,
        seasonal: 0.0,
        season: 0,
    };

    /// The weights ψ_0 … ψ_{h−1}.
    fn weights(&self, h: usize) -> impl Iterator<Item = f64> + '_ {
        let (mut phi_pow, mut phi_sum) = (1.0, 0.0);
        (0..h).map(move |j| {
            if j == 0 {
                return 1.0;
            }
            phi_pow *= self.phi;
            phi_sum += phi_pow;
            let seasonal = if self.season > 0 && j % self.season == 0 {
                self.seasonal
            } else {
                0.0
            };
            self.level + self.trend * phi_sum + seasonal
        })
    }
}

/// The standard normal quantiles at [`LEVELS`]: the table of uncalibrated intervals.
fn normal_table() -> Vec<f64> {
    LEVELS.iter().map(|&p| norm_inv(p)).collect()
}

/// The running values of `Σ_{i,j≤k} w_i·w_j·ρ^{|i−j|}` for k = 0, 1, …: the variance of
/// `Σ w_i·ε_i` for unit-variance errors with AR(1) correlation ρ, one O(1) step per weight.
fn ar1_quadratic(w: impl Iterator<Item = f64>, rho: f64) -> impl Iterator<Item = f64> {
    // s = Σ_{i<k} w_i·ρ^{k−i}
    let (mut v, mut s) = (0.0, 0.0);
    w.map(move |x| {
        v += x * x + 2.0 * x * s;
        s = rho * (s + x);
        v
    })
}

impl Uncertainty {
    /// Calibrates from the training series `y` and aligned one-step in-sample residuals.
    pub fn calibrate(y: &[f64], residuals: &[f64]) -> Self {
        // one branch-free pass; `v as i64` truncates without a libm call, and every f64 at or
        // above 2^53 is an integer
        let (mut nonneg, mut integral) = (true, true);
        for &v in y {
            nonneg &= v >= 0.0;
            integral &= v >= 9.007_199_254_740_992e15 || (v as i64) as f64 == v;
        }
        let count = !y.is_empty() && nonneg && integral;
        let finite: Vec<f64>;
        let res = if residuals.iter().all(|e| e.is_finite()) {
            residuals
        } else {
            finite = residuals
                .iter()
                .copied()
                .filter(|e| e.is_finite())
                .collect();
            &finite
        };
        let warm = res.len().min(50);
        let mut var = if warm > 0 {
            res[..warm].iter().map(|e| e * e).sum::<f64>() / warm as f64
        } else {
            0.0
        };
        // the count distribution is checked where forecasts would use it: on the recent
        // over-dispersed residuals, each with the running variance of its own forecast
        let check_from = if count && res.len() == residuals.len() && res.len() <= y.len() {
            res.len().saturating_sub(COUNT_CHECK)
        } else {
            res.len()
        };
        let offset = y.len() - res.len().min(y.len());
        let mut tally = CoverageTally::default();
        let mut z = Vec::with_capacity(res.len());
        for (i, &e) in res.iter().enumerate() {
            if var > 1e-12 {
                z.push(e / var.sqrt());
            }
            if i >= check_from {
                let v = y[offset + i];
                let mean = v - e;
                if var >= mean {
                    tally.add(mean, var, v);
                }
            }
            var = (1.0 - VAR_DECAY) * var + VAR_DECAY * e * e;
        }
        let table = if z.len() >= 30 {
            quantiles_unsorted(&mut z, &LEVELS)
        } else {
            normal_table()
        };
        let rho = lag1(res).clamp(-0.9, 0.9);
        let var = if var.is_finite() { var } else { 0.0 };
        Self {
            count,
            nonneg,
            count_dist: tally.holds(),
            var,
            rho,
            table,
            propagation: None,
        }
    }

    /// Which predictive distribution the intervals come from.
    pub fn family(&self) -> IntervalFamily {
        match (self.count, self.count_dist) {
            (false, _) => IntervalFamily::Conformal,
            (true, true) => IntervalFamily::Count,
            (true, false) => IntervalFamily::CountRejected,
        }
    }

    /// The same calibration, with multi-step errors propagating as `propagation` says.
    pub fn with_propagation(self, propagation: Propagation) -> Self {
        Self {
            propagation: Some(propagation),
            ..self
        }
    }

    /// No calibration: zero variance until residuals are observed, normal quantiles, no count
    /// distribution and no clamping (for point-forecast-only fits).
    pub fn uncalibrated() -> Self {
        Self {
            count: false,
            nonneg: false,
            count_dist: true,
            var: 0.0,
            rho: 0.0,
            table: normal_table(),
            propagation: None,
        }
    }

    /// Online update with a new one-step residual. O(1).
    #[inline]
    pub fn observe(&mut self, residual: f64) {
        if residual.is_finite() {
            self.var = (1.0 - VAR_DECAY) * self.var + VAR_DECAY * residual * residual;
        }
    }

    /// Standardised residual quantile at probability `q` (interpolated in the table, normal
    /// tails beyond it).
    pub fn z(&self, q: f64) -> f64 {
        let q = q.clamp(1e-6, 1.0 - 1e-6);
        if self.table.len() != LEVELS.len() {
            return norm_inv(q);
        }
        if q <= LEVELS[0] {
            return self.table[0] + norm_inv(q) - norm_inv(LEVELS[0]);
        }
        if q >= LEVELS[LEVELS.len() - 1] {
            let last = LEVELS.len() - 1;
            return self.table[last] + norm_inv(q) - norm_inv(LEVELS[last]);
        }
        let i = LEVELS
            .iter()
            .position(|&l| l >= q)
            .unwrap_or(LEVELS.len() - 1);
        let (l0, l1) = (LEVELS[i - 1], LEVELS[i]);
        let f = (q - l0) / (l1 - l0);
        self.table[i - 1] * (1.0 - f) + self.table[i] * f
    }

    /// Variance of the error `step` bins ahead (1-based).
    pub fn var_at(&self, step: usize) -> f64 {
        self.var_path(step).last().copied().unwrap_or(self.var)
    }

    /// Variances of the errors 1, 2, …, `h` bins ahead (O(h)).
    pub fn var_path(&self, h: usize) -> Vec<f64> {
        match &self.propagation {
            Some(p) => ar1_quadratic(p.weights(h), self.rho)
                .map(|g| self.var * g)
                .collect(),
            None => {
                let rho = self.rho.max(0.0);
                let r2 = rho * rho;
                (1..=h)
                    .map(|step| {
                        let g = if r2 < 1e-12 {
                            1.0
                        } else {
                            (1.0 - r2.powi(step as i32)) / (1.0 - r2)
                        };
                        self.var * g
                    })
                    .collect()
            }
        }
    }

    /// Per-bin `q`-quantiles of the bins whose point forecasts are `points` (the next ones).
    pub fn quantiles(&self, points: &[f64], q: f64) -> Vec<f64> {
        points
            .iter()
            .zip(self.var_path(points.len()))
            .map(|(&f, v)| self.predictive_quantile(f, v, q))
            .collect()
    }

    /// The `q`-quantile of the value `step` bins ahead given its point forecast.
    pub fn quantile_at(&self, point: f64, step: usize, q: f64) -> f64 {
        self.predictive_quantile(point, self.var_at(step), q)
    }

    /// The `q`-quantile of a value with mean `mean` and error variance `v`. Counts at least as
    /// dispersed as Poisson: Poisson / negative binomial. Otherwise (and for under-dispersed
    /// counts: timers, steady rates) the conformal residual quantile; for counts it is made an
    /// integer with the continuity correction (the smallest k with P(X ≤ k + ½) ≥ q), since a
    /// count's quantiles are integers and a timer's interval must hold its value.
    fn predictive_quantile(&self, mean: f64, v: f64, q: f64) -> f64 {
        if self.count && self.count_dist && v >= mean {
            count_quantile(mean.max(0.0), v, q)
        } else {
            self.conformal_quantile(mean, v, q)
        }
    }

    /// The conformal `q`-quantile of a value with mean `mean` and error variance `v`: the
    /// mean plus `sqrt(v)` times the standardised residual quantile; on counts the integer
    /// the continuity correction gives, and clamped to the series' support.
    fn conformal_quantile(&self, mean: f64, v: f64, q: f64) -> f64 {
        let x = mean + v.sqrt() * self.z(q);
        let x = if self.count { (x - 0.5).ceil() } else { x };
        if self.nonneg {
            x.max(0.0)
        } else {
            x
        }
    }

    /// Medians of the bins whose point forecasts are `points` (the next ones), for point
    /// forecasts under absolute error: each mean shifted by the median standardised in-sample
    /// residual times its step's error spread, an integer on counts (the conformal median).
    /// Where the count distribution gives the intervals its median is not used: its skew
    /// models count noise around a known rate, while a forecast's error is mostly the rate's
    /// own, which the residuals describe (on NASA's request counts the distribution's median
    /// scored a worse absolute error than the mean, the residuals' median a better one).
    pub fn medians(&self, points: &[f64]) -> Vec<f64> {
        points
            .iter()
            .zip(self.var_path(points.len()))
            .map(|(&f, v)| self.conformal_quantile(f, v, 0.5))
            .collect()
    }

    /// The `q`-quantile of the sum of the bins whose point forecasts are `points`.
    pub fn sum_quantile(&self, points: &[f64], q: f64) -> f64 {
        let h = points.len();
        if h == 0 {
            return 0.0;
        }
        let s: f64 = points
            .iter()
            .map(|p| if self.nonneg { p.max(0.0) } else { *p })
            .sum();
        self.predictive_quantile(s, self.sum_var(h), q)
    }

    /// Variance of the error of the sum of the next `h` bins.
    pub fn sum_var(&self, h: usize) -> f64 {
        let acc = match &self.propagation {
            // the sum's error is Σ_u Ψ_{h−u}·ε_{t+u} with Ψ_n = ψ_0 + … + ψ_n
            Some(p) => {
                let mut cum = 0.0;
                let partial = p.weights(h).map(|w| {
                    cum += w;
                    cum
                });
                ar1_quadratic(partial, self.rho).last().unwrap_or(0.0)
            }
            // Var of a sum of AR(1) errors: var * (h + 2 Σ_{k<h} (h-k) rho^k).
            None => {
                let mut acc = h as f64;
                let mut rk = 1.0;
                for k in 1..h {
                    rk *= self.rho.max(0.0);
                    if rk < 1e-9 {
                        break;
                    }
                    acc += 2.0 * (h - k) as f64 * rk;
                }
                acc
            }
        };
        self.var * acc
    }

    /// Clamps a point forecast to the series' support.
    #[inline]
    pub fn clamp(&self, x: f64) -> f64 {
        if self.nonneg {
            x.max(0.0)
        } else {
            x
        }
    }
}

/// The serde default of flags that were implicitly true before they existed.
fn yes() -> bool {
    true
}

/// Hits of a count distribution's central 80 % and 95 % intervals on in-sample values, with
/// and without the intervals' ends.
#[derive(Debug, Default)]
struct CoverageTally {
    n: usize,
    /// Closed and open hits, 80 % then 95 %.
    hits: [[usize; 2]; 2],
}

impl CoverageTally {
    /// The central intervals checked, 80 % then 95 %: (lower, upper) quantile.
    const BOUNDS: [(f64, f64); 2] = [(0.1, 0.9), (0.025, 0.975)];
    /// Their nominal rates.
    const NOMINAL: [f64; 2] = [0.8, 0.95];

    /// Counts whether `y` falls inside the intervals of the distribution with this mean and
    /// variance.
    fn add(&mut self, mean: f64, var: f64, y: f64) {
        self.n += 1;
        let inside = count_intervals_hold(mean, var, y, Self::BOUNDS);
        for (hits, (closed, open)) in self.hits.iter_mut().zip(inside) {
            hits[0] += usize::from(closed);
            hits[1] += usize::from(open);
        }
    }

    /// Whether the intervals were calibrated: at each level the nominal rate lies between the
    /// open and the closed share (an integer interval's grain), each widened by three binomial
    /// standard errors. Too few values to tell keep the distribution.
    fn holds(&self) -> bool {
        if self.n < COUNT_CHECK_MIN {
            return true;
        }
        let n = self.n as f64;
        self.hits.iter().zip(Self::NOMINAL).all(|(hits, nominal)| {
            let slack = 3.0 * (nominal * (1.0 - nominal) / n).sqrt();
            hits[0] as f64 / n >= nominal - slack && hits[1] as f64 / n <= nominal + slack
        })
    }
}

/// Lag-one autocorrelation of a series (0 when too short or constant).
pub fn lag1(x: &[f64]) -> f64 {
    if x.len() < 3 {
        return 0.0;
    }
    let m = x.iter().sum::<f64>() / x.len() as f64;
    // one pass for both sums around the mean
    let mut prev = x[0] - m;
    let (mut den, mut num) = (prev * prev, 0.0);
    for &v in &x[1..] {
        let d = v - m;
        den += d * d;
        num += prev * d;
        prev = d;
    }
    if den < 1e-12 {
        return 0.0;
    }
    num / den
}

/// Fixed-capacity ring buffer of the most recent values (oldest overwritten).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ring {
    buf: Vec<f64>,
    /// Index of the oldest value (the next to be overwritten).
    head: usize,
}

impl Ring {
    /// A ring holding the last `cap` values of `init` (zero-padded in front when shorter).
    pub fn from_tail(init: &[f64], cap: usize) -> Self {
        let cap = cap.max(1);
        let mut buf = vec![0.0; cap];
        let take = init.len().min(cap);
        buf[cap - take..].copy_from_slice(&init[init.len() - take..]);
        Self { buf, head: 0 }
    }
    /// Capacity.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// Always false: a ring has at least one slot.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// Pushes a value, dropping the oldest.
    #[inline]
    pub fn push(&mut self, v: f64) {
        self.buf[self.head] = v;
        self.head += 1;
        if self.head == self.buf.len() {
            self.head = 0;
        }
    }
    /// The value `k` steps back: `ago(1)` is the newest, `ago(len)` the oldest.
    #[inline]
    pub fn ago(&self, k: usize) -> f64 {
        let n = self.buf.len();
        let k = k.clamp(1, n);
        self.buf[(self.head + n - k) % n]
    }
    /// Replaces the value `k` steps back.
    #[inline]
    pub fn set_ago(&mut self, k: usize, v: f64) {
        let n = self.buf.len();
        let k = k.clamp(1, n);
        self.buf[(self.head + n - k) % n] = v;
    }
}

/// Validates a training series: non-empty, finite, at least `need` points.
pub fn check_series(y: &[f64], need: usize) -> Result<(), ModelError> {
    if let Some(index) = y.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::NonFinite { index });
    }
    if y.len() < need.max(1) {
        return Err(ModelError::TooShort {
            got: y.len(),
            need: need.max(1),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_last_values() {
        let mut r = Ring::from_tail(&[1.0, 2.0, 3.0, 4.0], 3);
        assert_eq!((r.ago(1), r.ago(3)), (4.0, 2.0));
        r.push(5.0);
        assert_eq!((r.ago(1), r.ago(2), r.ago(3)), (5.0, 4.0, 3.0));
    }

    #[test]
    fn gaussian_residuals_give_normal_table() {
        // deterministic pseudo-normal residuals via inverse CDF of a low-discrepancy sequence
        let res: Vec<f64> = (0..2000)
            .map(|i| norm_inv(((i as f64 * 0.618_034) % 1.0).clamp(1e-4, 1.0 - 1e-4)))
            .collect();
        let y: Vec<f64> = res.iter().map(|e| 10.0 + e).collect();
        let u = Uncertainty::calibrate(&y, &res);
        assert!(!u.count);
        assert!((u.z(0.9) - 1.2816).abs() < 0.15, "{}", u.z(0.9));
        assert!((u.var - 1.0).abs() < 0.4, "{}", u.var);
    }

    #[test]
    fn interval_families_serialise_by_their_names() {
        for f in IntervalFamily::ALL {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.name()));
            assert_eq!(serde_json::from_str::<IntervalFamily>(&json).unwrap(), f);
        }
        assert!(serde_json::from_str::<IntervalFamily>("\"gaussian\"").is_err());
    }

    #[test]
    fn errors_propagate_as_the_state_space_forms_say() {
        let unit = |rho: f64, p: Propagation| Uncertainty {
            count: false,
            nonneg: false,
            count_dist: true,
            var: 1.0,
            rho,
            table: normal_table(),
            propagation: Some(p),
        };
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        let none = Propagation::NONE;
        // simple exponential smoothing: 1 + (h − 1)·α²
        let ses = unit(0.0, Propagation { level: 0.5, ..none });
        assert!(close(&ses.var_path(3), &[1.0, 1.25, 1.5]));
        // the sum of two bins: (1 + α)²·ε₁ + ε₂
        assert!((ses.sum_var(2) - (1.5f64.powi(2) + 1.0)).abs() < 1e-12);
        // damped trend: ψ₁ = α + βφ, ψ₂ = α + β(φ + φ²)
        let d = unit(
            0.0,
            Propagation {
                level: 0.2,
                trend: 0.1,
                phi: 0.5,
                ..none
            },
        );
        let (p1, p2) = (0.2 + 0.1 * 0.5, 0.2 + 0.1 * 0.75);
        assert!(close(
            &d.var_path(3),
            &[1.0, 1.0 + p1 * p1, 1.0 + p1 * p1 + p2 * p2]
        ));
        // the seasonal naive repeats the residual of the forecast bin's phase: no growth
        // within a season, whatever the residuals' correlation; one error more after it
        let sn = unit(
            0.5,
            Propagation {
                seasonal: 1.0,
                season: 3,
                ..none
            },
        );
        assert!(close(&sn.var_path(4), &[1.0, 1.0, 1.0, 2.0 + 2.0 * 0.125]));
        // correlated errors: Var(ε₁ + ε₂) = 2 + 2ρ
        let level1 = unit(0.3, Propagation { level: 1.0, ..none });
        assert!((level1.var_path(2)[1] - 2.6).abs() < 1e-12);
    }

    #[test]
    fn count_series_are_non_negative_integers_of_any_size() {
        let res = [0.0; 40];
        let flags = |y: &[f64]| {
            let u = Uncertainty::calibrate(y, &res);
            (u.count, u.nonneg)
        };
        assert_eq!(flags(&[0.0, 3.0, 12.0]), (true, true));
        // above 2^63 the integer cast saturates; such values are still integers
        assert_eq!(flags(&[1.0, 1e19, 3.0e300]), (true, true));
        assert_eq!(flags(&[1.0, 2.5]), (false, true));
        assert_eq!(flags(&[1.0, -2.0]), (false, false));
        assert_eq!(flags(&[]), (false, true));
    }
}
