//! The `reactive` baseline: a Knative-KPA-like autoscaler driven by observed concurrency.
//!
//! Every tick (2 s): desired = ceil(avg concurrency / (target × utilisation)), averaged over the
//! stable window (60 s); in panic mode (entered when the panic-window (6 s) desire reaches 200 %
//! of the ready instances) the panic-window average is used and the pool never shrinks; panic
//! ends after a stable window without panic. Scale-down is limited to a factor of 2 per tick and
//! the last instance stays for the scale-to-zero grace period (30 s) after the desire hits zero.

use super::{
    Decision, Explain, FunctionPolicy, FunctionSpec, IdleAction, Millis, Observation,
    PolicyFactory, PoolView, Reason,
};
use std::collections::VecDeque;

/// KPA parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReactiveConfig {
    /// Target concurrency per instance.
    pub target: f64,
    /// Target utilisation (Knative's 70 %).
    pub utilization: f64,
    /// Stable window, ms.
    pub stable_ms: Millis,
    /// Panic window, ms.
    pub panic_ms: Millis,
    /// Panic threshold as a ratio of desired to ready instances.
    pub panic_threshold: f64,
    /// Maximum scale-down rate per tick.
    pub max_scale_down_rate: f64,
    /// Scale-to-zero grace period, ms.
    pub grace_ms: Millis,
    /// Tick period, ms.
    pub tick_ms: Millis,
}

impl Default for ReactiveConfig {
    fn default() -> Self {
        Self {
            target: 1.0,
            utilization: 0.7,
            stable_ms: 60_000,
            panic_ms: 6_000,
            panic_threshold: 2.0,
            max_scale_down_rate: 2.0,
            grace_ms: 30_000,
            tick_ms: 2_000,
        }
    }
}

/// Factory for the reactive policy.
#[derive(Debug, Clone)]
pub struct ReactiveKpa {
    label: String,
    cfg: ReactiveConfig,
}

impl ReactiveKpa {
    /// A reactive policy with `cfg`.
    pub fn new(label: &str, cfg: ReactiveConfig) -> Self {
        Self {
            label: label.to_string(),
            cfg,
        }
    }
}

impl PolicyFactory for ReactiveKpa {
    fn label(&self) -> &str {
        &self.label
    }
    fn build(&self, _spec: &FunctionSpec) -> Box<dyn FunctionPolicy> {
        Box::new(ReactiveState::new(self.cfg))
    }
}

/// Per-function KPA state.
#[derive(Debug, Clone)]
pub struct ReactiveState {
    cfg: ReactiveConfig,
    /// (tick time, concurrency integral over the tick window) for the last stable window.
    samples: VecDeque<(Millis, f64)>,
    ticking: bool,
    panic_until: Option<Millis>,
    zero_since: Option<Millis>,
}

impl ReactiveState {
    /// Fresh state.
    pub fn new(cfg: ReactiveConfig) -> Self {
        Self {
            cfg,
            samples: VecDeque::new(),
            ticking: false,
            panic_until: None,
            zero_since: None,
        }
    }

    fn window_avg(&self, now: Millis, window: Millis) -> f64 {
        let from = now.saturating_sub(window);
        let sum: f64 = self
            .samples
            .iter()
            .filter(|(t, _)| *t > from)
            .map(|(_, c)| *c)
            .sum();
        sum / window as f64
    }

    fn desired(&self, conc: f64) -> u32 {
        (conc / (self.cfg.target * self.cfg.utilization) - 1e-9)
            .ceil()
            .max(0.0) as u32
    }

    /// The KPA rule for one tick; pure function of the state and the observation.
    pub fn decide(&mut self, now: Millis, obs: &Observation) -> Decision {
        let c = self.cfg;
        // A window longer than the stable window (ticking resumed after a pause) only
        // contributes what fell inside the stable window.
        self.samples.push_back((now, obs.concurrency_ms));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| *t + c.stable_ms <= now)
        {
            self.samples.pop_front();
        }
        let stable = self.desired(self.window_avg(now, c.stable_ms));
        let panic = self.desired(self.window_avg(now, c.panic_ms));
        let ready = (obs.pool.busy + obs.pool.idle).max(1);
        if panic as f64 / ready as f64 >= c.panic_threshold {
            self.panic_until = Some(now + c.stable_ms);
        }
        let in_panic = self.panic_until.is_some_and(|t| now < t);
        let current = obs.pool.loaded();
        let (mut want, reason) = if in_panic {
            (panic.max(stable).max(current), Reason::ReactivePanic)
        } else {
            (stable, Reason::ReactiveStable)
        };
        let floor = (current as f64 / c.max_scale_down_rate).floor() as u32;
        want = want.max(floor.min(current));
        let mut reason = reason;
        if want == 0 {
            let since = *self.zero_since.get_or_insert(now);
            if now < since + c.grace_ms && current > 0 {
                want = 1;
            } else {
                reason = Reason::ScaleToZero;
            }
        } else {
            self.zero_since = None;
        }
        let idle_now = want == 0 && current == 0 && obs.pool.in_flight == 0;
        self.ticking = !idle_now;
        Decision {
            target: Some(want),
            next_tick: (!idle_now).then_some(now + c.tick_ms),
            explain: Explain {
                reason,
                model: "kpa",
                forecast: self.window_avg(now, c.stable_ms),
                quantile: 0.0,
                lead_ms: 0,
                unclipped: want,
            },
        }
    }
}

impl FunctionPolicy for ReactiveState {
    fn on_arrival(&mut self, now: Millis, _pool: &PoolView) -> Option<Millis> {
        if self.ticking {
            None
        } else {
            self.ticking = true;
            // Next point on the tick grid.
            Some((now / self.cfg.tick_ms + 1) * self.cfg.tick_ms)
        }
    }

    fn on_idle(&mut self, _now: Millis, _pool: &PoolView) -> IdleAction {
        IdleAction::KeepUntil(Millis::MAX)
    }

    fn on_tick(&mut self, now: Millis, obs: &Observation) -> Decision {
        self.decide(now, obs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(conc: f64, busy: u32, idle: u32) -> Observation {
        Observation {
            pool: PoolView {
                busy,
                idle,
                loading: 0,
                in_flight: busy,
            },
            window_ms: 2_000,
            arrivals: 0,
            concurrency_ms: conc * 2_000.0,
        }
    }

    #[test]
    fn stable_desire_is_ceil_of_concurrency_over_target_times_utilisation() {
        let mut s = ReactiveState::new(ReactiveConfig::default());
        // 30 ticks of concurrency 1.4 fill the 60 s stable window: 1.4 / 0.7 = 2.
        let mut d = None;
        for i in 1..=30 {
            d = Some(s.decide(i * 2_000, &obs(1.4, 2, 0)));
        }
        assert_eq!(d.map(|d| d.target), Some(Some(2)));
    }

    #[test]
    fn burst_triggers_panic_and_no_scale_down() {
        let mut s = ReactiveState::new(ReactiveConfig::default());
        let d = s.decide(2_000, &obs(10.0, 1, 0));
        // Panic window: 10 * 2 s / 6 s = 3.33 -> /0.7 -> 5 >= 2 x 1 ready.
        assert_eq!(d.explain.reason, Reason::ReactivePanic);
        assert_eq!(d.target, Some(5));
        // Load drops, but panic holds the pool for a stable window.
        let d = s.decide(4_000, &obs(0.0, 0, 5));
        assert_eq!(d.target, Some(5));
    }

    #[test]
    fn scale_down_rate_and_grace_to_zero() {
        let cfg = ReactiveConfig::default();
        let mut s = ReactiveState::new(cfg);
        // Idle pool of 8, no load: halve per tick at most.
        let d = s.decide(100_000, &obs(0.0, 0, 8));
        assert_eq!(d.target, Some(4));
        let d = s.decide(102_000, &obs(0.0, 0, 1));
        assert_eq!(d.target, Some(1)); // grace starts at 102 s (desire first hit 0 there)
        let d = s.decide(130_000, &obs(0.0, 0, 1));
        assert_eq!(d.target, Some(1));
        let d = s.decide(132_000, &obs(0.0, 0, 1));
        assert_eq!(d.target, Some(0));
        assert_eq!(d.explain.reason, Reason::ScaleToZero);
        let d = s.decide(134_000, &obs(0.0, 0, 0));
        assert_eq!(d.next_tick, None, "stops ticking once empty");
    }
}
