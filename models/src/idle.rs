//! Idle-time (inter-arrival) model for sparse functions: a bounded histogram of idle times
//! with percentiles and hazard-style window probabilities, plus a light predictor of the next
//! idle time from the most recent ones.

use serde::{Deserialize, Serialize};

/// Number of recent idle times the next-idle predictor looks at.
const RECENT: usize = 8;

/// Online idle-time histogram (fixed-width bins up to a range, plus an overflow count).
///
/// Memory is bounded: `range / bin` counters and a few words. Counts are halved when their
/// total reaches `cap`, so old behaviour fades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleTimeModel {
    bin_ms: u64,
    counts: Vec<u32>,
    overflow: u32,
    total: u32,
    cap: u32,
    seen: u64,
    recent: Vec<u64>,
    recent_head: usize,
}

impl Default for IdleTimeModel {
    /// One-minute bins over four hours (the hybrid-histogram policy's layout).
    fn default() -> Self {
        Self::new(60_000, 4 * 3_600_000)
    }
}

/// A predicted window for the next idle time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IdlePrediction {
    /// Point prediction (ms).
    pub expected_ms: u64,
    /// Start of the window (ms).
    pub lo_ms: u64,
    /// End of the window (ms).
    pub hi_ms: u64,
}

impl IdleTimeModel {
    /// A model with bins of `bin_ms` up to `range_ms` (at least one bin).
    pub fn new(bin_ms: u64, range_ms: u64) -> Self {
        let bin_ms = bin_ms.max(1);
        let n = (range_ms / bin_ms).max(1) as usize;
        Self {
            bin_ms,
            counts: vec![0; n],
            overflow: 0,
            total: 0,
            cap: 1 << 16,
            seen: 0,
            recent: Vec::with_capacity(RECENT),
            recent_head: 0,
        }
    }

    /// Histogram range in ms.
    pub fn range_ms(&self) -> u64 {
        self.bin_ms * self.counts.len() as u64
    }

    /// Records one observed idle time.
    pub fn observe(&mut self, idle_ms: u64) {
        let b = (idle_ms / self.bin_ms) as usize;
        if b < self.counts.len() {
            self.counts[b] += 1;
        } else {
            self.overflow += 1;
        }
        self.total += 1;
        self.seen += 1;
        if self.total >= self.cap {
            for c in self.counts.iter_mut() {
                *c /= 2;
            }
            self.overflow /= 2;
            self.total = self.counts.iter().sum::<u32>() + self.overflow;
        }
        if self.recent.len() < RECENT {
            self.recent.push(idle_ms);
        } else {
            self.recent[self.recent_head] = idle_ms;
            self.recent_head = (self.recent_head + 1) % RECENT;
        }
    }

    /// Idle times observed so far (not decayed).
    pub fn samples(&self) -> u64 {
        self.seen
    }

    /// Share of the (decayed) mass beyond the histogram range.
    pub fn out_of_bounds_share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.overflow as f64 / self.total as f64
        }
    }

    /// Coefficient of variation of the bin counts (the hybrid-histogram "is it predictable" test).
    pub fn bin_cv(&self) -> f64 {
        let n = self.counts.len() as f64;
        let mean = self.counts.iter().map(|&c| c as f64).sum::<f64>() / n;
        if mean <= 0.0 {
            return 0.0;
        }
        let var = self
            .counts
            .iter()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        var.sqrt() / mean
    }

    /// Histogram mass below `t` ms (uniform within a bin; overflow beyond the range).
    fn mass_below(&self, t: u64) -> f64 {
        let b = (t / self.bin_ms) as usize;
        if b >= self.counts.len() {
            return (self.total - self.overflow) as f64;
        }
        let full: u32 = self.counts[..b].iter().sum();
        let frac = (t % self.bin_ms) as f64 / self.bin_ms as f64;
        full as f64 + frac * self.counts[b] as f64
    }

    /// Probability that the next arrival comes within `[t, t + w)` ms of the idle start, given
    /// it has not come before `t`. 0 when nothing is known beyond `t`.
    pub fn prob_within(&self, t_ms: u64, w_ms: u64) -> f64 {
        let total = self.total as f64;
        let below_t = self.mass_below(t_ms);
        let survive = total - below_t;
        if survive <= 1e-12 {
            return 0.0;
        }
        let end = t_ms.saturating_add(w_ms);
        let inside = if end >= self.range_ms() {
            // the overflow mass is spread beyond the range: count all of it once w is unbounded
            if w_ms == u64::MAX {
                survive
            } else {
                self.mass_below(self.range_ms()) - below_t
            }
        } else {
            self.mass_below(end) - below_t
        };
        (inside / survive).clamp(0.0, 1.0)
    }

    /// The `q`-quantile of the idle time in ms (bin-interpolated); `None` without samples.
    /// Quantiles falling in the overflow return the range.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let target = q.clamp(0.0, 1.0) * self.total as f64;
        let mut acc = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            let c = c as f64;
            if c > 0.0 && acc + c >= target {
                let frac = ((target - acc) / c).clamp(0.0, 1.0);
                return Some(i as u64 * self.bin_ms + (frac * self.bin_ms as f64) as u64);
            }
            acc += c;
        }
        Some(self.range_ms())
    }

    /// Predicts the next idle time from the most recent ones: their median, and a window from
    /// the smallest to the largest widened by 15 % (at least one bin). `None` with fewer than
    /// three samples.
    pub fn predict_next(&self) -> Option<IdlePrediction> {
        if self.recent.len() < 3 {
            return None;
        }
        let mut v = self.recent.clone();
        v.sort_unstable();
        let med = v[v.len() / 2];
        // drop the single most extreme value on each side when there are enough samples
        let (lo, hi) = if v.len() >= 6 {
            (v[1], v[v.len() - 2])
        } else {
            (v[0], v[v.len() - 1])
        };
        let lo = ((lo as f64) * 0.85) as u64;
        let hi = ((hi as f64) * 1.15) as u64;
        Some(IdlePrediction {
            expected_ms: med,
            lo_ms: lo.min(med.saturating_sub(self.bin_ms / 2)),
            hi_ms: hi.max(med + self.bin_ms / 2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_like_function_predicts_next_window() {
        let mut m = IdleTimeModel::default();
        // a 10-minute timer with a few seconds of jitter
        for i in 0..60u64 {
            m.observe(600_000 + (i * 7919 % 9) * 1000);
        }
        let p50 = m.quantile(0.5).unwrap_or(0);
        // one-minute bins: the median lies in the 10-minute bin
        assert!((600_000..660_000).contains(&p50), "{p50}");
        let pred = m.predict_next().unwrap();
        assert!(
            pred.lo_ms <= 600_000 && pred.hi_ms >= 608_000 && pred.hi_ms < 720_000,
            "{pred:?}"
        );
        // having waited 9 minutes, the arrival is almost surely in the next 2 minutes
        assert!(m.prob_within(540_000, 120_000) > 0.99);
        // and not in the next 30 s after 1 minute
        assert!(m.prob_within(60_000, 30_000) < 0.01);
        assert_eq!(m.samples(), 60);
        let s = serde_json::to_string(&m).unwrap();
        let back: IdleTimeModel = serde_json::from_str(&s).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn empty_and_overflow() {
        let mut m = IdleTimeModel::new(1000, 10_000);
        assert_eq!(m.quantile(0.5), None);
        assert_eq!(m.prob_within(0, 1000), 0.0);
        m.observe(50_000);
        m.observe(500);
        assert_eq!(m.quantile(0.99), Some(10_000));
        assert!((m.out_of_bounds_share() - 0.5).abs() < 1e-12);
        assert!((m.prob_within(0, 1000) - 0.5).abs() < 1e-12);
    }
}
