//! Anomaly detectors on rates: robust residual z-scores (median/MAD) on forecast residuals,
//! seasonal ESD (Twitter's S-ESD with robust statistics), and an online isolation forest.
//! Each reports anomalies with a score and a reason; the online ones also give a per-point
//! score in [0, 1] for NAB-style threshold sweeps.

use crate::stats::{mad_sigma, median};
use serde::{Deserialize, Serialize};

/// One detected anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Index of the point in the series (the caller maps it to a timestamp).
    pub index: usize,
    /// Observed value.
    pub value: f64,
    /// What the detector expected.
    pub expected: f64,
    /// Strength in [0, 1].
    pub score: f64,
    /// Human-readable reason.
    pub reason: String,
}

/// An online detector that scores each new point in [0, 1] (higher = more anomalous).
pub trait OnlineDetector: Send {
    /// Detector name.
    fn name(&self) -> &'static str;
    /// Scores the next value of the series.
    fn step(&mut self, y: f64) -> f64;
}

/// Fixed-size window of recent values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Window {
    buf: Vec<f64>,
    head: usize,
    cap: usize,
}

impl Window {
    fn new(cap: usize) -> Self {
        Self {
            buf: Vec::with_capacity(cap),
            head: 0,
            cap: cap.max(1),
        }
    }
    fn push(&mut self, v: f64) {
        if self.buf.len() < self.cap {
            self.buf.push(v);
        } else {
            self.buf[self.head] = v;
            self.head = (self.head + 1) % self.cap;
        }
    }
    fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Maps a robust z-score to a [0, 1) score, monotone in |z| and never saturating:
/// `|z| / (|z| + 5)` (0.5 at five robust sigmas).
fn z_to_score(z: f64) -> f64 {
    let a = z.abs();
    if a.is_finite() {
        a / (a + 5.0)
    } else {
        1.0
    }
}

/// Robust residual z-scores: `(r - median) / (1.4826 · MAD)` over a trailing window of forecast
/// residuals `r = y - forecast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MadDetector {
    /// |z| above which a point is reported.
    pub threshold: f64,
    residuals: Window,
    index: usize,
    last_score: f64,
    scratch: Vec<f64>,
}

impl MadDetector {
    /// A detector over the last `window` residuals reporting |z| > `threshold`.
    pub fn new(window: usize, threshold: f64) -> Self {
        Self {
            threshold,
            residuals: Window::new(window.max(8)),
            index: 0,
            last_score: 0.0,
            scratch: Vec::new(),
        }
    }

    /// The robust z-score of a residual against the window (0 while warming up).
    fn z(&mut self, r: f64) -> f64 {
        if self.residuals.len() < 8 {
            return 0.0;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.residuals.buf);
        let n = self.scratch.len();
        let mid = n / 2;
        self.scratch.select_nth_unstable_by(mid, f64::total_cmp);
        let med = self.scratch[mid];
        for v in self.scratch.iter_mut() {
            *v = (*v - med).abs();
        }
        self.scratch.select_nth_unstable_by(mid, f64::total_cmp);
        // robust scale, floored by a fraction of the mean absolute deviation so that windows
        // of mostly-identical residuals (flat stretches) do not turn every change into a
        // many-sigma event
        let mean_abs = self.scratch.iter().sum::<f64>() / n as f64 * 1.2533;
        let mut s = (1.4826 * self.scratch[mid]).max(0.5 * mean_abs);
        if s <= 1e-12 {
            s = 1e-6 * (1.0 + med.abs());
        }
        (r - med) / s
    }

    /// Observes a value and the forecast made for it; reports it when |z| > threshold.
    pub fn observe(&mut self, y: f64, forecast: f64) -> Option<Anomaly> {
        let r = y - forecast;
        let z = self.z(r);
        self.residuals.push(r);
        let idx = self.index;
        self.index += 1;
        self.last_score = z_to_score(z);
        (z.abs() > self.threshold).then(|| Anomaly {
            index: idx,
            value: y,
            expected: forecast,
            score: self.last_score,
            reason: format!(
                "residual {:.1} robust sigmas {} forecast",
                z.abs(),
                if z > 0.0 { "above" } else { "below" }
            ),
        })
    }

    /// Score in [0, 1] of the last observed point.
    pub fn last_score(&self) -> f64 {
        self.last_score
    }
}

/// Online MAD detector with its own forecaster: exponentially smoothed level with a
/// seasonal-naive correction when a season is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastMad {
    mad: MadDetector,
    level: Option<f64>,
    alpha: f64,
}

impl ForecastMad {
    /// Detector with level smoothing `alpha` and a residual window of `window`.
    pub fn new(alpha: f64, window: usize) -> Self {
        Self {
            mad: MadDetector::new(window, 5.0),
            level: None,
            alpha,
        }
    }
}

impl OnlineDetector for ForecastMad {
    fn name(&self) -> &'static str {
        "mad-residual"
    }
    fn step(&mut self, y: f64) -> f64 {
        let f = self.level.unwrap_or(y);
        self.mad.observe(y, f);
        self.level = Some(f + self.alpha * (y - f));
        self.mad.last_score()
    }
}

/// Seasonal ESD (S-H-ESD): remove the per-phase median (season) and the overall median,
/// then run the generalised ESD test with median/MAD statistics. Batch; returns anomalies.
pub fn seasonal_esd(y: &[f64], season: usize, max_share: f64, alpha: f64) -> Vec<Anomaly> {
    let n = y.len();
    if n < 8 {
        return Vec::new();
    }
    let m = season.max(1);
    let mut seasonal = vec![0.0; m];
    if m > 1 && n >= 2 * m {
        for (p, s) in seasonal.iter_mut().enumerate() {
            let vals: Vec<f64> = y.iter().skip(p).step_by(m).copied().collect();
            *s = median(&vals).unwrap_or(0.0);
        }
    }
    let resid: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(t, v)| v - seasonal[t % m])
        .collect();
    let center = median(&resid).unwrap_or(0.0);
    let mut r: Vec<(usize, f64)> = resid.iter().map(|v| v - center).enumerate().collect();
    let k_max = ((n as f64 * max_share) as usize).max(1);
    let mut out = Vec::new();
    let mut found = 0;
    let mut candidates = Vec::new();
    for i in 1..=k_max {
        if r.len() < 3 {
            break;
        }
        let vals: Vec<f64> = r.iter().map(|p| p.1).collect();
        let med = median(&vals).unwrap_or(0.0);
        let s = mad_sigma(&vals).unwrap_or(0.0).max(1e-9);
        let (pos, &(idx, v)) = match r
            .iter()
            .enumerate()
            .max_by(|a, b| (a.1 .1 - med).abs().total_cmp(&(b.1 .1 - med).abs()))
        {
            Some(x) => x,
            None => break,
        };
        let stat = (v - med).abs() / s;
        let nn = (n - i + 1) as f64;
        let p = 1.0 - alpha / (2.0 * nn);
        let t = student_t_inv(p, nn - 2.0);
        let lambda = (nn - 1.0) * t / ((nn - 2.0 + t * t) * nn).sqrt();
        candidates.push((idx, stat));
        if stat > lambda {
            found = i;
        }
        r.swap_remove(pos);
    }
    for &(idx, stat) in candidates.iter().take(found) {
        out.push(Anomaly {
            index: idx,
            value: y[idx],
            expected: seasonal[idx % m] + center,
            score: z_to_score(stat),
            reason: format!("seasonal ESD: {stat:.1} robust sigmas from the seasonal median"),
        });
    }
    out.sort_by_key(|a| a.index);
    out
}

/// Student-t quantile by the Cornish–Fisher expansion around the normal (good for df > 5,
/// adequate for the ESD critical values).
fn student_t_inv(p: f64, df: f64) -> f64 {
    let z = crate::stats::norm_inv(p);
    let df = df.max(1.0);
    let z3 = z * z * z;
    let z5 = z3 * z * z;
    z + (z3 + z) / (4.0 * df) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df)
}

/// Online seasonal-ESD-style detector: robust z of the value against the trailing window
/// after removing the value one season ago (or the previous value without a season).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonalMad {
    season: usize,
    history: Window,
    mad: MadDetector,
}

impl SeasonalMad {
    /// Detector for a season length (`<= 1`: differences from the previous value).
    pub fn new(season: usize, window: usize) -> Self {
        let m = season.max(1);
        Self {
            season: m,
            history: Window::new(m),
            mad: MadDetector::new(window, 5.0),
        }
    }
}

impl OnlineDetector for SeasonalMad {
    fn name(&self) -> &'static str {
        "seasonal-esd"
    }
    fn step(&mut self, y: f64) -> f64 {
        // the oldest value in a full window is exactly one season ago
        let f = if self.history.len() == self.season {
            self.history.buf[self.history.head % self.season]
        } else {
            y
        };
        self.history.push(y);
        self.mad.observe(y, f);
        self.mad.last_score()
    }
}

/// Online isolation forest: every `refit` points the forest is rebuilt on the trailing
/// window of feature vectors (value, first difference, deviation from the short mean); each
/// point is scored by its average isolation depth, `2^(-E[h]/c(n))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationDetector {
    trees: Vec<Vec<Node>>,
    feats: Vec<[f64; 3]>,
    head: usize,
    window: usize,
    refit: usize,
    n_trees: usize,
    sample: usize,
    since_fit: usize,
    prev: Option<f64>,
    short: Window,
    rng: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Node {
    Split {
        f: u8,
        at: f64,
        lo: f64,
        hi: f64,
        left: u32,
        right: u32,
    },
    Leaf {
        size: u32,
    },
}

fn c_factor(n: f64) -> f64 {
    if n <= 1.0 {
        0.0
    } else {
        2.0 * ((n - 1.0).ln() + 0.577_215_664_9) - 2.0 * (n - 1.0) / n
    }
}

impl IsolationDetector {
    /// Default: 256-point window, rebuilt every 64 points, 32 trees of 64 samples.
    pub fn new() -> Self {
        Self {
            trees: Vec::new(),
            feats: Vec::new(),
            head: 0,
            window: 256,
            refit: 64,
            n_trees: 32,
            sample: 64,
            since_fit: 0,
            prev: None,
            short: Window::new(8),
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn build(
        &mut self,
        idx: &mut [usize],
        depth: usize,
        limit: usize,
        tree: &mut Vec<Node>,
    ) -> u32 {
        let id = tree.len() as u32;
        if idx.len() <= 1 || depth >= limit {
            tree.push(Node::Leaf {
                size: idx.len() as u32,
            });
            return id;
        }
        let f = (self.rand() % 3) as usize;
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for &i in idx.iter() {
            lo = lo.min(self.feats[i][f]);
            hi = hi.max(self.feats[i][f]);
        }
        if hi - lo <= 1e-12 {
            tree.push(Node::Leaf {
                size: idx.len() as u32,
            });
            return id;
        }
        let at = lo + (hi - lo) * ((self.rand() >> 11) as f64 / (1u64 << 53) as f64);
        tree.push(Node::Leaf { size: 0 });
        let mut k = 0;
        for j in 0..idx.len() {
            if self.feats[idx[j]][f] < at {
                idx.swap(j, k);
                k += 1;
            }
        }
        let (l, r) = idx.split_at_mut(k);
        let left = self.build(l, depth + 1, limit, tree);
        let right = self.build(r, depth + 1, limit, tree);
        tree[id as usize] = Node::Split {
            f: f as u8,
            at,
            lo,
            hi,
            left,
            right,
        };
        id
    }

    fn fit(&mut self) {
        let n = self.feats.len();
        let s = self.sample.min(n);
        let limit = (s as f64).log2().ceil() as usize;
        let mut trees = Vec::with_capacity(self.n_trees);
        for _ in 0..self.n_trees {
            let mut idx: Vec<usize> = (0..s).map(|_| (self.rand() % n as u64) as usize).collect();
            let mut tree = Vec::new();
            self.build(&mut idx, 0, limit, &mut tree);
            trees.push(tree);
        }
        self.trees = trees;
    }

    fn depth(tree: &[Node], x: &[f64; 3]) -> f64 {
        let mut node = 0usize;
        let mut d = 0.0;
        loop {
            match tree.get(node) {
                Some(Node::Split {
                    f,
                    at,
                    lo,
                    hi,
                    left,
                    right,
                }) => {
                    let v = x[*f as usize];
                    if v < *lo || v > *hi {
                        // outside everything this node saw: isolated by the next cut
                        return d + 1.0;
                    }
                    node = if x[*f as usize] < *at {
                        *left as usize
                    } else {
                        *right as usize
                    };
                    d += 1.0;
                }
                Some(Node::Leaf { size }) => return d + c_factor(*size as f64),
                None => return d,
            }
        }
    }
}

impl Default for IsolationDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl OnlineDetector for IsolationDetector {
    fn name(&self) -> &'static str {
        "isolation-forest"
    }
    fn step(&mut self, y: f64) -> f64 {
        let d = y - self.prev.unwrap_or(y);
        let sm = if self.short.len() == 0 {
            y
        } else {
            self.short.buf.iter().sum::<f64>() / self.short.len() as f64
        };
        let x = [y, d, y - sm];
        self.prev = Some(y);
        self.short.push(y);
        let score = if self.trees.is_empty() {
            0.0
        } else {
            let e: f64 = self.trees.iter().map(|t| Self::depth(t, &x)).sum::<f64>()
                / self.trees.len() as f64;
            2f64.powf(-e / c_factor(self.sample.min(self.feats.len()) as f64))
        };
        if self.feats.len() < self.window {
            self.feats.push(x);
        } else {
            self.feats[self.head] = x;
            self.head = (self.head + 1) % self.window;
        }
        self.since_fit += 1;
        if self.feats.len() >= 32 && (self.trees.is_empty() || self.since_fit >= self.refit) {
            self.fit();
            self.since_fit = 0;
        }
        score
    }
}

/// Anomaly likelihood post-processing (as Numenta's detectors do): the short-term mean of an
/// inner detector's raw scores compared with the distribution of its raw scores over a long
/// trailing window; the output is `1 - tail probability`, spread onto [0, 1] as
/// `-log10(tail) / 10`.
pub struct Likelihood {
    inner: Box<dyn OnlineDetector>,
    long: Window,
    short: Window,
    name: &'static str,
}

impl Likelihood {
    /// Wraps `inner` with a long window of `long` points and a short mean of `short`.
    pub fn new(
        inner: Box<dyn OnlineDetector>,
        long: usize,
        short: usize,
        name: &'static str,
    ) -> Self {
        Self {
            inner,
            long: Window::new(long),
            short: Window::new(short),
            name,
        }
    }
}

impl OnlineDetector for Likelihood {
    fn name(&self) -> &'static str {
        self.name
    }
    fn step(&mut self, y: f64) -> f64 {
        let raw = self.inner.step(y);
        self.short.push(raw);
        let n = self.long.len();
        let out = if n < 32 {
            0.0
        } else {
            let mean = self.long.buf.iter().sum::<f64>() / n as f64;
            let var = self
                .long
                .buf
                .iter()
                .map(|v| (v - mean).powi(2))
                .sum::<f64>()
                / n as f64;
            let sd = var.sqrt().max(1e-4);
            let sm = self.short.buf.iter().sum::<f64>() / self.short.len() as f64;
            let tail = (1.0 - crate::stats::norm_cdf((sm - mean) / sd)).max(1e-12);
            (-tail.log10() / 12.0).clamp(0.0, 1.0)
        };
        self.long.push(raw);
        out
    }
}

/// Mean of several online detectors' scores (each already in [0, 1]).
pub struct Ensemble {
    parts: Vec<Box<dyn OnlineDetector>>,
    name: &'static str,
}

impl Ensemble {
    /// Averages `parts`.
    pub fn new(parts: Vec<Box<dyn OnlineDetector>>, name: &'static str) -> Self {
        Self { parts, name }
    }
}

impl OnlineDetector for Ensemble {
    fn name(&self) -> &'static str {
        self.name
    }
    fn step(&mut self, y: f64) -> f64 {
        let n = self.parts.len().max(1) as f64;
        self.parts.iter_mut().map(|d| d.step(y)).sum::<f64>() / n
    }
}

/// Suppresses repeats: after a point scores `s`, the next `hold` points are reported at most
/// at `s` times a decay that returns to 1 linearly, so one event yields one leading detection.
pub struct Suppress {
    inner: Box<dyn OnlineDetector>,
    hold: usize,
    peak: f64,
    since: usize,
}

impl Suppress {
    /// Wraps `inner` with a hold of `hold` points.
    pub fn new(inner: Box<dyn OnlineDetector>, hold: usize) -> Self {
        Self {
            inner,
            hold: hold.max(1),
            peak: 0.0,
            since: usize::MAX,
        }
    }
}

impl OnlineDetector for Suppress {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn step(&mut self, y: f64) -> f64 {
        let raw = self.inner.step(y);
        self.since = self.since.saturating_add(1);
        let out = if self.since <= self.hold {
            raw.min(self.peak * 0.9)
        } else {
            raw
        };
        // A new peak (scores are non-negative) or the end of the hold restarts suppression.
        if raw > self.peak || self.since > self.hold {
            self.peak = raw;
            self.since = 0;
        }
        out
    }
}

/// Runs an online detector over a series, returning one score per point.
pub fn score_series(det: &mut dyn OnlineDetector, y: &[f64]) -> Vec<f64> {
    y.iter().map(|&v| det.step(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy_level_shift() -> Vec<f64> {
        let mut s: u64 = 17;
        (0..800)
            .map(|t| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let noise = ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0;
                (if t >= 500 { 30.0 } else { 10.0 }) + noise
            })
            .collect()
    }

    #[test]
    fn level_shift_is_flagged_by_mad() {
        let y = noisy_level_shift();
        let mut det = ForecastMad::new(0.3, 128);
        let scores = score_series(&mut det, &y);
        let first = scores.iter().position(|&s| s > 0.5);
        assert_eq!(first, Some(500));
        // MadDetector::observe reports it with a reason
        let mut mad = MadDetector::new(64, 5.0);
        let flagged: Vec<Anomaly> = y
            .iter()
            .enumerate()
            .filter_map(|(t, &v)| mad.observe(v, if t > 0 { y[t - 1] } else { v }))
            .collect();
        assert!(flagged.iter().any(|a| a.index == 500), "{flagged:?}");
        assert!(flagged.len() <= 3, "{flagged:?}");
    }

    #[test]
    fn seasonal_esd_finds_spike_not_season() {
        let m = 24;
        let mut y: Vec<f64> = (0..m * 10)
            .map(|t| {
                100.0
                    + 20.0 * (2.0 * std::f64::consts::PI * t as f64 / m as f64).sin()
                    + (t % 3) as f64
            })
            .collect();
        y[130] += 60.0;
        let a = seasonal_esd(&y, m, 0.02, 0.05);
        assert_eq!(a.iter().map(|x| x.index).collect::<Vec<_>>(), vec![130]);
    }

    #[test]
    fn isolation_scores_outlier_high() {
        let mut y = noisy_level_shift();
        y.truncate(400);
        y[300] = 60.0;
        let scores = score_series(&mut IsolationDetector::new(), &y);
        let max_else = scores
            .iter()
            .enumerate()
            .filter(|(i, _)| !(300..310).contains(i) && *i > 50)
            .map(|p| *p.1)
            .fold(0.0, f64::max);
        assert!(scores[300] > max_else, "{} vs {max_else}", scores[300]);
    }
}
