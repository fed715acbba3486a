//! The `hybrid-histogram` baseline of Shahrad et al. (ATC'20, "Serverless in the Wild"):
//! a per-function idle-time histogram decides a pre-warm window and a keep-alive window.
//!
//! Rules (constants are the paper's defaults, all configurable):
//! - idle time (IT) = time from the end of the function's last execution to the next arrival,
//!   recorded when an invocation arrives while no invocation of the function is in flight;
//! - histogram of ITs in 1-minute bins over `range` (4 h); ITs beyond it are out-of-bounds (OOB);
//! - if OOB ITs are at least `oob_threshold` (50 %) of the samples, forecast the next IT with
//!   ARIMA on the IT history and use a ±15 % window around it;
//! - else if there are fewer than `min_samples` ITs or the bin-count coefficient of variation is
//!   below `cv_threshold` (2), fall back to no pre-warm and a keep-alive of `range`;
//! - else pre-warm at 0.9 × the 5th-percentile bin's lower edge and keep alive until 1.1 × the
//!   99th-percentile bin's upper edge, both measured from the moment the instance became idle;
//!   a pre-warm window of zero keeps the instance loaded instead of unloading it.
//!
//! In prewarm's platform model the unit of loading is the function (each function's share of
//! its app's memory), so the histogram is kept per function; on traces where each function is
//! its own app (the shared Azure sample) this is exactly the paper's per-app histogram.

use super::{
    Decision, Explain, FunctionPolicy, FunctionSpec, IdleAction, Millis, Observation,
    PolicyFactory, PoolView, Reason,
};
use prewarm_models::arima::Arima;

/// Hybrid-histogram parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridConfig {
    /// Histogram range (and the fallback keep-alive), ms.
    pub range_ms: Millis,
    /// Bin width, ms.
    pub bin_ms: Millis,
    /// Minimum bin-count coefficient of variation for the histogram to be trusted.
    pub cv_threshold: f64,
    /// Fraction of out-of-bounds idle times from which ARIMA takes over.
    pub oob_threshold: f64,
    /// Minimum idle-time samples before the histogram is trusted.
    pub min_samples: usize,
    /// Head percentile (pre-warm).
    pub head_pct: f64,
    /// Tail percentile (keep-alive).
    pub tail_pct: f64,
    /// Margin applied to the head (multiplied) and tail (multiplied).
    pub head_margin: f64,
    /// Margin applied to the tail.
    pub tail_margin: f64,
    /// ARIMA window half-width as a fraction of the forecast idle time.
    pub arima_margin: f64,
    /// Idle times kept for the ARIMA fit.
    pub arima_history: usize,
}

impl Default for HybridConfig {
    fn default() -> Self {
        Self {
            range_ms: 4 * 3_600_000,
            bin_ms: 60_000,
            cv_threshold: 2.0,
            oob_threshold: 0.5,
            min_samples: 5,
            head_pct: 0.05,
            tail_pct: 0.99,
            head_margin: 0.9,
            tail_margin: 1.1,
            arima_margin: 0.15,
            arima_history: 64,
        }
    }
}

/// Factory for the hybrid-histogram policy.
#[derive(Debug, Clone)]
pub struct HybridHistogram {
    label: String,
    cfg: HybridConfig,
}

impl HybridHistogram {
    /// A hybrid-histogram policy with `cfg`.
    pub fn new(label: &str, cfg: HybridConfig) -> Self {
        Self {
            label: label.to_string(),
            cfg,
        }
    }
}

impl PolicyFactory for HybridHistogram {
    fn label(&self) -> &str {
        &self.label
    }
    fn build(&self, _spec: &FunctionSpec) -> Box<dyn FunctionPolicy> {
        Box::new(HybridState::new(self.cfg))
    }
}

/// The windows the policy derives from its history (exposed for tests and timelines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Delay after idling before the pre-warm load starts (0 = keep loaded).
    pub prewarm_ms: Millis,
    /// Time after idling when the instance is unloaded.
    pub keep_until_ms: Millis,
    /// Which rule produced them.
    pub reason: Reason,
}

/// Per-function state of the hybrid-histogram policy.
#[derive(Debug, Clone)]
pub struct HybridState {
    cfg: HybridConfig,
    bins: Vec<u32>,
    in_bounds: u64,
    oob: u64,
    recent: std::collections::VecDeque<f64>,
    last_end: Option<Millis>,
    in_flight: u32,
    /// Windows computed since the last recorded idle time (they only change with the history).
    cache: Option<Windows>,
}

impl HybridState {
    /// Fresh state.
    pub fn new(cfg: HybridConfig) -> Self {
        let nbins = cfg.range_ms.div_ceil(cfg.bin_ms).max(1) as usize;
        Self {
            cfg,
            bins: vec![0; nbins],
            in_bounds: 0,
            oob: 0,
            recent: std::collections::VecDeque::new(),
            last_end: None,
            in_flight: 0,
            cache: None,
        }
    }

    /// Records one idle time.
    pub fn record_idle_time(&mut self, it_ms: Millis) {
        self.cache = None;
        let bin = (it_ms / self.cfg.bin_ms) as usize;
        if bin < self.bins.len() {
            self.bins[bin] += 1;
            self.in_bounds += 1;
        } else {
            self.oob += 1;
        }
        if self.recent.len() == self.cfg.arima_history {
            self.recent.pop_front();
        }
        self.recent.push_back(it_ms as f64 / self.cfg.bin_ms as f64);
    }

    fn percentile_bin(&self, pct: f64) -> usize {
        let want = ((self.in_bounds as f64) * pct).ceil().max(1.0) as u64;
        let mut acc = 0u64;
        for (i, &c) in self.bins.iter().enumerate() {
            acc += c as u64;
            if acc >= want {
                return i;
            }
        }
        self.bins.len() - 1
    }

    fn bin_cv(&self) -> f64 {
        let n = self.bins.len() as f64;
        let mean = self.in_bounds as f64 / n;
        if mean == 0.0 {
            return 0.0;
        }
        let var = self
            .bins
            .iter()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        var.sqrt() / mean
    }

    /// The windows the policy would use now.
    pub fn windows(&self) -> Windows {
        let c = &self.cfg;
        let total = self.in_bounds + self.oob;
        let fallback = Windows {
            prewarm_ms: 0,
            keep_until_ms: c.range_ms,
            reason: Reason::Warmup,
        };
        if total == 0 {
            return fallback;
        }
        if self.oob as f64 >= c.oob_threshold * total as f64 {
            let series: Vec<f64> = self.recent.iter().copied().collect();
            if let Ok(m) = Arima::default().fit(&series) {
                let pred = m.forecast_one() * c.bin_ms as f64;
                if pred.is_finite() && pred > 0.0 {
                    return Windows {
                        prewarm_ms: ((1.0 - c.arima_margin) * pred) as Millis,
                        keep_until_ms: ((1.0 + c.arima_margin) * pred - 1e-6).ceil() as Millis,
                        reason: Reason::IdleForecast,
                    };
                }
            }
            return fallback;
        }
        if (self.in_bounds as usize) < c.min_samples || self.bin_cv() < c.cv_threshold {
            return fallback;
        }
        let head = self.percentile_bin(c.head_pct) as f64 * c.bin_ms as f64;
        let tail = (self.percentile_bin(c.tail_pct) + 1) as f64 * c.bin_ms as f64;
        Windows {
            prewarm_ms: (c.head_margin * head).floor() as Millis,
            keep_until_ms: (c.tail_margin * tail - 1e-6).ceil() as Millis,
            reason: Reason::IdleHistogram,
        }
    }
}

impl FunctionPolicy for HybridState {
    fn on_arrival(&mut self, now: Millis, pool: &PoolView) -> Option<Millis> {
        if pool.in_flight == 0 && self.in_flight == 0 {
            if let Some(end) = self.last_end {
                self.record_idle_time(now.saturating_sub(end));
            }
        }
        self.in_flight += 1;
        None
    }

    fn on_idle(&mut self, now: Millis, pool: &PoolView) -> IdleAction {
        // A pre-warmed instance finishing its load is not the end of an execution.
        if pool.in_flight < self.in_flight {
            self.in_flight = pool.in_flight;
            self.last_end = Some(now);
        }
        let w = match self.cache {
            Some(w) => w,
            None => {
                let w = self.windows();
                self.cache = Some(w);
                w
            }
        };
        if w.prewarm_ms == 0 {
            IdleAction::KeepUntil(now.saturating_add(w.keep_until_ms))
        } else {
            IdleAction::UnloadThenPrewarm {
                prewarm_at: now.saturating_add(w.prewarm_ms),
                keep_until: now.saturating_add(w.keep_until_ms.max(w.prewarm_ms)),
            }
        }
    }

    fn on_tick(&mut self, _now: Millis, _obs: &Observation) -> Decision {
        Decision {
            target: None,
            next_tick: None,
            explain: Explain::reason(self.windows().reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn min(m: u64) -> Millis {
        m * 60_000
    }

    #[test]
    fn few_samples_fall_back_to_range_keep_alive() {
        let mut s = HybridState::new(HybridConfig::default());
        for _ in 0..4 {
            s.record_idle_time(min(20));
        }
        let w = s.windows();
        assert_eq!(w.reason, Reason::Warmup);
        assert_eq!((w.prewarm_ms, w.keep_until_ms), (0, min(240)));
    }

    #[test]
    fn concentrated_histogram_gives_head_and_tail_windows() {
        // 20 idle times: 19 in the 20-minute bin, 1 in the 30-minute bin.
        let mut s = HybridState::new(HybridConfig::default());
        for _ in 0..19 {
            s.record_idle_time(min(20) + 15_000);
        }
        s.record_idle_time(min(30) + 1);
        let w = s.windows();
        assert_eq!(w.reason, Reason::IdleHistogram);
        // p5 = bin 20 -> head 20 min -> pre-warm at 0.9 * 20 = 18 min.
        assert_eq!(w.prewarm_ms, min(18));
        // p99 = bin 30 (20th of 20 samples) -> tail 31 min -> 1.1 * 31 = 34.1 min.
        assert_eq!(w.keep_until_ms, 2_046_000);
    }

    #[test]
    fn spread_histogram_has_low_cv_and_falls_back() {
        let mut s = HybridState::new(HybridConfig::default());
        for i in 0..240 {
            s.record_idle_time(min(i));
        }
        assert!(s.bin_cv() < 2.0);
        assert_eq!(s.windows().reason, Reason::Warmup);
    }

    #[test]
    fn out_of_bounds_idle_times_use_arima_window() {
        let mut s = HybridState::new(HybridConfig::default());
        for _ in 0..10 {
            s.record_idle_time(min(300));
        }
        let w = s.windows();
        assert_eq!(w.reason, Reason::IdleForecast);
        assert_eq!(w.prewarm_ms, min(255)); // 0.85 * 300 min
        assert_eq!(w.keep_until_ms, min(345)); // 1.15 * 300 min
    }

    #[test]
    fn records_idle_time_from_last_end_to_next_arrival() {
        let mut s = HybridState::new(HybridConfig::default());
        let busy = PoolView {
            busy: 1,
            in_flight: 1,
            ..Default::default()
        };
        let idle = PoolView {
            idle: 1,
            ..Default::default()
        };
        s.on_arrival(0, &PoolView::default());
        s.on_idle(1_000, &idle);
        s.on_arrival(min(5) + 1_000, &idle);
        assert_eq!(s.in_bounds, 1);
        assert_eq!(s.bins[5], 1);
        // An arrival while another invocation is in flight is not an idle time.
        s.on_arrival(min(5) + 2_000, &busy);
        assert_eq!(s.in_bounds, 1);
    }
}
