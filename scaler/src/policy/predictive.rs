//! The `predictive` policy: keeps instances warm ahead of predicted demand, trading cold starts
//! against idle memory with one knob, `cost` (GB·s of idle memory one cold start is worth).
//!
//! Two mechanisms, both priced with the same knob:
//! - **Idle windows** (sparse functions, and the gaps between bursts of any function): when the
//!   function goes fully idle, the recent idle times (end of activity → next arrival) give an
//!   empirical distribution; the policy picks the warm window [a, b) after the idle start that
//!   minimises `memory × E[idle time held] + cost × P(cold)`: keep the instance (a = 0), unload
//!   it and pre-warm it to be ready at a, or unload it for good. It pre-warms as many instances
//!   as past activations needed at their peak while each one is worth its memory.
//! - **Rate target** (busy functions): every tick, arrival rate λ (EWMA, fast and slow) and time
//!   in system W (Little's law on observed concurrency) give the concurrency forecast
//!   Poisson(λW); the target is its quantile q = 1 − memory × tick / cost (the newsvendor
//!   point: one more instance for one tick is worth it while P(needed) × cost exceeds its
//!   memory cost).
//!
//! Guardrails: min/max instances, max step up/down per tick, never below observed in-flight
//! demand; scale-in happens only through each idle instance's own deadline (its window, or the
//! break-even time cost / memory: the ski-rental rule), never on a forecast alone, which also
//! gives hysteresis; and a reactive fallback (KPA rule on observed concurrency) for a while after the
//! observed arrivals leave the forecast's bounds.

use super::budget::{HoldId, MemoryBudget};
use super::{
    Decision, Explain, FunctionPolicy, FunctionSpec, IdleAction, IdleExplain, Millis, Observation,
    PolicyFactory, PoolView, Reason,
};
use std::collections::VecDeque;
use std::sync::Arc;

/// Predictive policy parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictiveConfig {
    /// GB·s of idle memory one avoided cold start is worth (the knob).
    pub cost_gb_s: f64,
    /// Tick period, ms.
    pub tick_ms: Millis,
    /// Extra actuation delay before a decision takes effect (0 in the simulator; minutes for
    /// Lambda provisioned concurrency), ms.
    pub actuation_ms: Millis,
    /// Idle times remembered per function.
    pub history: usize,
    /// Relative margin added around the sample-based window.
    pub margin: f64,
    /// Idle times needed before windows replace the warm-up keep-alive.
    pub min_samples: usize,
    /// Longest warm-up keep-alive, ms (the break-even time cost / memory, capped).
    pub max_keep_ms: Millis,
    /// Time constant of the fast rate estimate, ms.
    pub fast_tau_ms: Millis,
    /// Time constant of the slow rate estimate, ms.
    pub slow_tau_ms: Millis,
    /// Minimum instances kept loaded.
    pub min_instances: u32,
    /// Maximum instances.
    pub max_instances: u32,
    /// Max instances added per tick.
    pub max_step_up: u32,
    /// Max instances removed per tick.
    pub max_step_down: u32,
    /// Arrivals beyond forecast + `anomaly_z` standard deviations trigger the fallback.
    pub anomaly_z: f64,
    /// How long the reactive fallback lasts, ms.
    pub fallback_ms: Millis,
    /// Idle memory all functions of this policy may hold at once, GB (`None`: unlimited).
    pub budget_gb: Option<f64>,
}

impl Default for PredictiveConfig {
    fn default() -> Self {
        Self {
            cost_gb_s: 125.0,
            tick_ms: 10_000,
            actuation_ms: 0,
            history: 24,
            margin: 0.05,
            min_samples: 2,
            max_keep_ms: 4 * 3_600_000,
            fast_tau_ms: 60_000,
            slow_tau_ms: 600_000,
            min_instances: 0,
            max_instances: 10_000,
            max_step_up: 1_000,
            max_step_down: 1_000,
            anomaly_z: 6.0,
            fallback_ms: 120_000,
            budget_gb: None,
        }
    }
}

/// Factory of the predictive policy.
#[derive(Debug, Clone)]
pub struct Predictive {
    label: String,
    cfg: PredictiveConfig,
    budget: Option<Arc<MemoryBudget>>,
}

impl Predictive {
    /// A predictive policy with `cfg`.
    pub fn new(label: &str, cfg: PredictiveConfig) -> Self {
        Self {
            label: label.to_string(),
            cfg,
            budget: cfg.budget_gb.map(|b| Arc::new(MemoryBudget::new(b))),
        }
    }

    /// The memory budget its functions share, if one is configured.
    pub fn budget(&self) -> Option<&MemoryBudget> {
        self.budget.as_deref()
    }
}

impl PolicyFactory for Predictive {
    fn label(&self) -> &str {
        &self.label
    }
    fn build(&self, spec: &FunctionSpec) -> Box<dyn FunctionPolicy> {
        let mut state = PredictiveState::new(self.cfg, spec);
        state.budget = self.budget.clone();
        Box::new(state)
    }
    fn coupled(&self) -> bool {
        self.budget.is_some()
    }
}

/// A warm window planned at the start of an idle period (absolute times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// When the pre-warm load starts (`ready` − cold start), or the idle start when kept.
    pub load_at: Millis,
    /// When the instances are ready.
    pub ready: Millis,
    /// When they are unloaded if unused.
    pub until: Millis,
    /// Instances wanted in the window.
    pub instances: u32,
    /// Which rule made it.
    pub reason: Reason,
}

/// The relative window chosen from the idle-time samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Warm from (ms after the idle start; 0 = keep loaded).
    pub from_ms: Millis,
    /// Warm until (ms after the idle start).
    pub until_ms: Millis,
    /// Expected idle memory time held per instance, s.
    pub expected_idle_s: f64,
    /// Estimated probability that the next arrival misses the window.
    pub p_cold: f64,
}

/// Per-function state of the predictive policy.
#[derive(Debug, Clone)]
pub struct PredictiveState {
    cfg: PredictiveConfig,
    mem_gb: f64,
    /// Memory cost per instance: `mem_gb` times the budget's price (1 without a budget).
    priced_gb: f64,
    budget: Option<Arc<MemoryBudget>>,
    /// This function's registered idle holds (deadline, id), most recent last.
    holds: Vec<(Millis, HoldId)>,
    cold_start_ms: Millis,
    concurrency: u32,
    idle_times: VecDeque<Millis>,
    peaks: VecDeque<u32>,
    in_flight: u32,
    cur_peak: u32,
    last_end: Option<Millis>,
    plan: Option<Plan>,
    window_cache: Option<Option<Window>>,
    wake: Option<Millis>,
    fast: f64,
    slow: f64,
    wait_ms: f64,
    ticking: bool,
    fallback_until: Millis,
}

/// The smallest k with P(Poisson(mu) <= k) >= q.
pub fn poisson_quantile(mu: f64, q: f64) -> u32 {
    if mu <= 0.0 || q <= 0.0 {
        return 0;
    }
    if mu > 500.0 {
        // Normal approximation with continuity correction.
        let z = normal_quantile(q);
        return (mu + z * mu.sqrt() + 0.5).ceil().max(0.0) as u32;
    }
    let mut p = (-mu).exp();
    let mut cdf = p;
    let mut k = 0u32;
    while cdf < q && k < 100_000 {
        k += 1;
        p *= mu / k as f64;
        cdf += p;
    }
    k
}

/// Standard normal quantile (the models crate's Acklam approximation, |error| < 1.2e-9).
pub use prewarm_models::stats::norm_inv as normal_quantile;

impl PredictiveState {
    /// Fresh state for a function.
    pub fn new(cfg: PredictiveConfig, spec: &FunctionSpec) -> Self {
        Self {
            cfg,
            mem_gb: (spec.memory_mb / 1024.0).max(1e-6),
            priced_gb: (spec.memory_mb / 1024.0).max(1e-6),
            budget: None,
            holds: Vec::new(),
            cold_start_ms: spec.cold_start_ms,
            concurrency: spec.concurrency.max(1),
            idle_times: VecDeque::with_capacity(cfg.history),
            peaks: VecDeque::with_capacity(cfg.history),
            in_flight: 0,
            cur_peak: 0,
            last_end: None,
            plan: None,
            window_cache: None,
            wake: None,
            fast: 0.0,
            slow: 0.0,
            wait_ms: 0.0,
            ticking: false,
            fallback_until: 0,
        }
    }

    /// Records an idle time (for tests and warm starts from persisted history).
    pub fn record_idle_time(&mut self, ms: Millis) {
        if self.idle_times.len() == self.cfg.history {
            self.idle_times.pop_front();
        }
        self.idle_times.push_back(ms);
        self.window_cache = None;
    }

    /// Break-even hold time: keeping an idle instance longer than `cost / memory` costs more
    /// than the cold start it could avoid (the ski-rental rule), capped by `max_keep_ms`.
    pub fn break_even_ms(&self) -> f64 {
        ((self.cfg.cost_gb_s / self.priced_gb) * 1000.0).min(self.cfg.max_keep_ms as f64)
    }

    /// The window the policy would plan now, from its idle-time history; `None` means
    /// "unload and do not pre-warm". Warm-up (too few samples): keep for the break-even time.
    ///
    /// The next idle time is modelled as the n recent samples, each with weight 1/(n+2), plus a
    /// head of weight 1/(n+2) uniform below the smallest sample and a tail of weight 1/(n+2)
    /// beyond the largest, exponential with the samples' mean (Laplace smoothing: the next gap
    /// may be shorter or longer than any seen). Windows close at a sample
    /// (plus margin) or on the tail, never later than the break-even time after the largest
    /// sample.
    pub fn window(&self) -> Option<Window> {
        let c = &self.cfg;
        let be = self.break_even_ms();
        if self.idle_times.len() < c.min_samples {
            return Some(Window {
                from_ms: 0,
                until_ms: be as Millis,
                expected_idle_s: be / 1000.0,
                p_cold: 1.0,
            });
        }
        let mut x: Vec<f64> = self.idle_times.iter().map(|&v| v as f64).collect();
        x.sort_by(f64::total_cmp);
        let n = x.len();
        let w = 1.0 / (n as f64 + 2.0);
        let mut prefix = Vec::with_capacity(n + 1);
        prefix.push(0.0);
        for v in &x {
            prefix.push(prefix[prefix.len() - 1] + v);
        }
        let x_max = x[n - 1];
        let theta = (prefix[n] / n as f64).max(1_000.0);
        let lead = (self.cold_start_ms + c.actuation_ms) as f64;
        let count_below = |t: f64| x.partition_point(|&v| v < t);
        // Expected held ms and P(cold) of the window [a, b).
        let eval = |a: f64, b: f64| -> (f64, f64) {
            let lo = count_below(a);
            let hi = count_below(b);
            let inside = (hi - lo) as f64;
            let above = (n - hi) as f64;
            let mut held = w * ((prefix[hi] - prefix[lo]) - inside * a + above * (b - a));
            let mut cold = w * (lo as f64 + above);
            // Head mass: uniform on [0, x_min).
            let x_min = x[0].max(1.0);
            let ha = (a / x_min).min(1.0); // P(head < a)
            let hb = (b / x_min).min(1.0); // P(head < b)
            cold += w * (ha + (1.0 - hb));
            // E[(X - a) 1{a <= X < b}] for the head, plus (b - a) P(head >= b).
            let (ua, ub) = (a.min(x_min), b.min(x_min));
            held +=
                w * ((ub * ub - ua * ua) / (2.0 * x_min) - a * (hb - ha) + (b - a) * (1.0 - hb));
            // Tail mass: x_max + Exp(theta).
            let sa = (-((a - x_max).max(0.0)) / theta).exp(); // P(tail >= a)
            let sb = (-((b - x_max).max(0.0)) / theta).exp(); // P(tail >= b)
            cold += w * ((1.0 - sa) + sb);
            // E[(X - a) 1{a <= X < b}] for the tail, plus (b - a) P(X >= b).
            let start = a.max(x_max);
            let d = (b - start).max(0.0);
            let body = sa * (theta - (theta + d) * (-d / theta).exp());
            held += w * ((start - a) * (sa - sb) + body + (b - a) * sb);
            (held, cold)
        };
        let mut best: Option<Window> = None;
        let mut best_cost = c.cost_gb_s; // unload now, no pre-warm: always cold
        let mut ends: Vec<f64> = x.iter().map(|v| v * (1.0 + c.margin) + 1.0).collect();
        for k in [1.0, 2.0, 4.0] {
            ends.push(x_max + k * theta);
        }
        ends.push(x_max + be);
        ends.retain(|&b| b <= x_max + be);
        let mut starts: Vec<f64> = vec![0.0];
        starts.extend(x.iter().map(|v| v * (1.0 - c.margin)).filter(|&a| a > lead));
        for &b in &ends {
            for &a in &starts {
                if b <= a {
                    continue;
                }
                let (held, cold) = eval(a, b);
                let cost = self.priced_gb * held / 1000.0 + c.cost_gb_s * cold;
                if cost < best_cost {
                    best_cost = cost;
                    best = Some(Window {
                        from_ms: a as Millis,
                        until_ms: b.ceil() as Millis,
                        expected_idle_s: held / 1000.0,
                        p_cold: cold,
                    });
                }
            }
        }
        best
    }

    fn window_cached(&mut self) -> Option<Window> {
        match self.window_cache {
            Some(w) => w,
            None => {
                let w = self.window();
                self.window_cache = Some(w);
                w
            }
        }
    }

    /// Instances to pre-warm for the next activation: each extra one while the share of past
    /// activations that peaked at least that high, times the cold-start cost, exceeds the
    /// memory it holds.
    fn burst_instances(&self, idle_s: f64) -> u32 {
        if self.peaks.is_empty() {
            return 1;
        }
        let mut p: Vec<u32> = self.peaks.iter().copied().collect();
        p.sort_unstable();
        let n = p.len() as f64;
        let hold = self.priced_gb * (idle_s + self.cfg.tick_ms as f64 / 1000.0);
        let mut k = 1u32;
        loop {
            let next = k + 1;
            let share = p
                .iter()
                .filter(|&&v| v.div_ceil(self.concurrency) >= next)
                .count() as f64
                / n;
            if share * self.cfg.cost_gb_s > hold && next <= self.cfg.max_instances {
                k = next;
            } else {
                return k;
            }
        }
    }

    fn plan_for_idle(&mut self, now: Millis) -> Option<Plan> {
        let w = self.window_cached()?;
        let instances = if self.idle_times.len() < self.cfg.min_samples {
            1
        } else {
            self.burst_instances(w.expected_idle_s)
        };
        let reason = if self.idle_times.len() < self.cfg.min_samples {
            Reason::Warmup
        } else {
            Reason::IdleHistogram
        };
        let ready = now + w.from_ms;
        let lead = self.cold_start_ms + self.cfg.actuation_ms;
        Some(Plan {
            load_at: if w.from_ms == 0 {
                now
            } else {
                ready.saturating_sub(lead).max(now)
            },
            ready,
            until: now + w.until_ms,
            instances,
            reason,
        })
    }

    /// Instances the current plan wants loaded at `now`.
    fn plan_instances(&self, now: Millis) -> u32 {
        match self.plan {
            Some(p) if now >= p.load_at && now < p.until => p.instances,
            _ => 0,
        }
    }

    /// Reprices memory from the shared budget (a no-op without one).
    fn reprice(&mut self, now: Millis) {
        if let Some(b) = &self.budget {
            let priced = self.mem_gb * b.price(now);
            if (priced / self.priced_gb - 1.0).abs() > 0.01 {
                self.window_cache = None;
            }
            self.priced_gb = priced;
        }
    }

    /// Registers an idle hold with the budget; `false` if the budget refuses it.
    fn register_hold(&mut self, now: Millis, until: Millis) -> bool {
        let Some(b) = &self.budget else {
            return true;
        };
        if until <= now {
            return true;
        }
        match b.hold(now, until, self.mem_gb) {
            Some(id) => {
                if self.holds.len() >= 64 {
                    self.holds.retain(|&(u, _)| u > now);
                }
                self.holds.push((until, id));
                true
            }
            None => false,
        }
    }

    /// The budget-checked idle answer: keep until `until` if the budget allows, else unload.
    fn keep(&mut self, now: Millis, until: Millis) -> IdleAction {
        if self.register_hold(now, until) {
            IdleAction::KeepUntil(until)
        } else {
            IdleAction::KeepUntil(now)
        }
    }

    fn rate(&self) -> f64 {
        self.fast.max(self.slow)
    }

    /// The target quantile for one more instance held for one tick.
    fn rate_quantile(&self) -> f64 {
        let hold = self.priced_gb * self.cfg.tick_ms as f64 / 1000.0;
        (1.0 - hold / self.cfg.cost_gb_s).clamp(0.5, 0.9999)
    }
}

impl FunctionPolicy for PredictiveState {
    fn on_arrival(&mut self, now: Millis, pool: &PoolView) -> Option<Millis> {
        if pool.in_flight == 0 && self.in_flight == 0 {
            if let Some(end) = self.last_end {
                self.record_idle_time(now.saturating_sub(end));
            }
            self.cur_peak = 0;
            self.plan = None;
        }
        self.in_flight = pool.in_flight + 1;
        self.cur_peak = self.cur_peak.max(self.in_flight);
        if pool.idle > 0 {
            // The arrival takes the most recently idled instance (LIFO): its hold ends.
            if let Some(b) = &self.budget {
                while let Some((until, id)) = self.holds.pop() {
                    if until > now {
                        b.release(now, id);
                        break;
                    }
                }
            }
        }
        if self.ticking {
            None
        } else {
            self.ticking = true;
            Some(now + self.cfg.tick_ms)
        }
    }

    fn on_idle(&mut self, now: Millis, pool: &PoolView) -> IdleAction {
        let completion = pool.in_flight < self.in_flight;
        self.in_flight = pool.in_flight;
        self.reprice(now);
        let break_even = now + self.break_even_ms() as Millis;
        if !completion {
            // A pre-warm finished loading: hold it for the plan; a rate-target pre-warm is held
            // for two ticks (the target's newsvendor horizon) and renewed by the next target.
            // Only a load the plan itself started (at or after its load time) is held for the
            // plan; a rate-target load finishing after a burst is not held through the gap.
            let until = match self.plan {
                Some(p) if now >= p.load_at && now < p.until => p.until,
                _ => now + 2 * self.cfg.tick_ms,
            };
            return self.keep(now, until);
        }
        if pool.in_flight > 0 {
            // Still active: a surplus instance is held for the break-even time (ski rental).
            return self.keep(now, break_even);
        }
        // The function just went idle: plan the next activation.
        if self.peaks.len() == self.cfg.history {
            self.peaks.pop_front();
        }
        self.peaks.push_back(self.cur_peak.max(1));
        self.last_end = Some(now);
        self.plan = self.plan_for_idle(now);
        match self.plan {
            None => IdleAction::KeepUntil(now),
            Some(p) if p.load_at == now => self.keep(now, p.until),
            Some(p) => {
                self.wake = Some(p.load_at);
                IdleAction::KeepUntil(now)
            }
        }
    }

    fn wakeup(&mut self) -> Option<Millis> {
        self.wake.take()
    }

    fn explain_idle(&self) -> Option<IdleExplain> {
        let end = self.last_end?;
        let samples = self.idle_times.len() as u32;
        Some(match (self.plan, self.window_cache.flatten()) {
            (Some(p), w) if p.ready >= end => IdleExplain {
                reason: p.reason,
                from_ms: p.ready - end,
                until_ms: p.until.saturating_sub(end),
                p_cold: w.map_or(1.0, |w| w.p_cold),
                expected_idle_s: w.map_or(0.0, |w| w.expected_idle_s),
                samples,
                instances: p.instances,
            },
            _ => IdleExplain {
                reason: Reason::IdleHistogram,
                from_ms: 0,
                until_ms: 0,
                p_cold: 1.0,
                expected_idle_s: 0.0,
                samples,
                instances: 0,
            },
        })
    }

    fn on_tick(&mut self, now: Millis, obs: &Observation) -> Decision {
        let c = self.cfg;
        self.reprice(now);
        let window = obs.window_ms.max(1) as f64;
        // Arrival-rate estimates (per ms) and anomaly check against the previous forecast.
        let expected = self.rate() * window;
        let observed = obs.arrivals as f64;
        if observed > expected + c.anomaly_z * expected.sqrt().max(1.0) && observed >= 10.0 {
            self.fallback_until = now + c.fallback_ms;
        }
        let inst = observed / window;
        let af = 1.0 - (-window / c.fast_tau_ms as f64).exp();
        let as_ = 1.0 - (-window / c.slow_tau_ms as f64).exp();
        self.fast += af * (inst - self.fast);
        self.slow += as_ * (inst - self.slow);
        if obs.arrivals > 0 {
            let w = obs.concurrency_ms / observed;
            let a = (observed / 20.0).min(1.0);
            self.wait_ms = if self.wait_ms == 0.0 {
                w
            } else {
                self.wait_ms + a * (w - self.wait_ms)
            };
        }
        let q = self.rate_quantile();
        let mu = self.rate() * self.wait_ms;
        // The Poisson concurrency model is used only where concurrency is material (dense
        // functions); sparse ones are served by idle windows and the break-even hold.
        let rate_k = if mu >= 1.0 {
            poisson_quantile(mu, q).div_ceil(self.concurrency)
        } else {
            0
        };
        let plan_k = self.plan_instances(now);
        let floor = obs.pool.in_flight.div_ceil(self.concurrency);
        let mut reason = if plan_k >= rate_k {
            self.plan.map(|p| p.reason).unwrap_or(Reason::RateForecast)
        } else {
            Reason::RateForecast
        };
        let mut want = rate_k.max(plan_k).max(floor);
        if now < self.fallback_until {
            let avg = obs.avg_concurrency().max(obs.pool.in_flight as f64);
            let reactive = (avg / (0.7 * self.concurrency as f64)).ceil() as u32;
            if reactive > want {
                want = reactive;
            }
            reason = Reason::AnomalyFallback;
        }
        let unclipped = want;
        let current = obs.pool.loaded();
        want = want.clamp(c.min_instances, c.max_instances);
        if let Some(b) = &self.budget {
            // Warm capacity beyond the in-flight demand must fit the shared idle budget.
            let cap = current + b.room_for(now, self.mem_gb);
            if want > cap {
                want = cap.max(floor);
            }
        }
        // Scale out ahead of the forecast; scale in only through each idle instance's own
        // deadline (never on a forecast alone), or when a guardrail caps the pool.
        let target = if want > current {
            Some(want.min(current + c.max_step_up))
        } else if current > c.max_instances {
            Some(c.max_instances.max(current.saturating_sub(c.max_step_down)))
        } else {
            None
        };
        if target.is_some_and(|t| t != unclipped) && reason != Reason::AnomalyFallback {
            reason = Reason::Guardrail;
        }
        let idle_now = want == 0 && current == 0 && obs.pool.in_flight == 0;
        let quiet = self.rate() * c.fast_tau_ms as f64 <= 0.05;
        let mut next = Some(now + c.tick_ms);
        if idle_now && quiet {
            next = None;
        }
        if let Some(p) = self.plan {
            if p.load_at > now && next.is_none_or(|n| p.load_at < n) {
                next = Some(p.load_at);
            }
        }
        self.ticking = next.is_some();
        Decision {
            target,
            next_tick: next,
            explain: Explain {
                reason,
                model: "ewma-poisson+idle-window",
                forecast: mu,
                quantile: q,
                lead_ms: self.cold_start_ms + c.actuation_ms + c.tick_ms,
                unclipped,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FunctionSpec {
        FunctionSpec {
            memory_mb: 256.0,
            concurrency: 1,
            cold_start_ms: 1_000,
        }
    }

    #[test]
    fn poisson_quantiles() {
        assert_eq!(poisson_quantile(0.0, 0.99), 0);
        // P(N=0) = e^-1 = 0.368, P(N<=1) = 0.736, P(N<=2) = 0.920, P(N<=3) = 0.981.
        assert_eq!(poisson_quantile(1.0, 0.5), 1);
        assert_eq!(poisson_quantile(1.0, 0.95), 3);
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        let big = poisson_quantile(10_000.0, 0.975);
        assert!((10_190..=10_200).contains(&big), "{big}");
    }

    #[test]
    fn timer_function_gets_a_tight_prewarm_window() {
        let mut s = PredictiveState::new(PredictiveConfig::default(), &spec());
        for k in 0..10 {
            s.record_idle_time(15 * 60_000 + (k % 3) * 20_000 - 20_000);
        }
        let w = s.window().unwrap();
        // Samples span 14:40..15:20; margins of 5 % give roughly [13:56, 16:06).
        assert!(
            w.from_ms > 13 * 60_000 && w.from_ms <= 14 * 60_000 + 40_000,
            "{w:?}"
        );
        assert!(
            w.until_ms >= 15 * 60_000 + 20_000 && w.until_ms < 17 * 60_000,
            "{w:?}"
        );
        // Every observed gap falls inside; only the smoothed head and tail masses (1/12 each
        // with 10 samples) can be cold.
        assert!(w.p_cold < 2.0 / 12.0, "{w:?}");
        assert!(
            w.p_cold > 1.0 / 12.0,
            "the tail beyond the last sample is not covered: {w:?}"
        );
        // Far cheaper than keeping the instance through the gap.
        assert!(w.expected_idle_s < 150.0);
    }

    #[test]
    fn unpredictable_long_gaps_with_large_memory_are_not_kept() {
        let big = FunctionSpec {
            memory_mb: 8_192.0,
            ..spec()
        };
        let mut s = PredictiveState::new(PredictiveConfig::default(), &big);
        for k in 0..12 {
            s.record_idle_time((k * 37 % 12 + 1) * 20 * 60_000);
        }
        // 8 GB held for tens of minutes costs more than a cold start at 125 GB·s.
        assert_eq!(s.window(), None);
    }

    #[test]
    fn warm_up_keeps_for_the_break_even_time() {
        let s = PredictiveState::new(PredictiveConfig::default(), &spec());
        let w = s.window().unwrap();
        // 125 GB·s / 0.25 GB = 500 s.
        assert_eq!((w.from_ms, w.until_ms), (0, 500_000));
    }

    #[test]
    fn burst_size_follows_past_peaks() {
        let mut s = PredictiveState::new(PredictiveConfig::default(), &spec());
        for _ in 0..5 {
            s.peaks.push_back(8);
        }
        assert_eq!(s.burst_instances(30.0), 8);
        let mut s = PredictiveState::new(PredictiveConfig::default(), &spec());
        s.peaks.extend([1, 1, 1, 1, 1, 1, 1, 1, 1, 30]);
        // 10 % of activations needed 30: worth 15 GB·s each, holding costs 0.25 × 40 = 10.
        assert_eq!(s.burst_instances(30.0), 30);
        assert_eq!(s.burst_instances(100.0), 1);
    }

    #[test]
    fn rate_target_tracks_concurrency_and_never_drops_below_in_flight() {
        let mut s = PredictiveState::new(PredictiveConfig::default(), &spec());
        let mut d = None;
        // 50 arrivals per 10 s, each 2 s in the system: mean concurrency 10.
        for k in 1..=60 {
            d = Some(s.on_tick(
                k * 10_000,
                &Observation {
                    pool: PoolView {
                        busy: 10,
                        idle: 0,
                        loading: 0,
                        in_flight: 10,
                    },
                    window_ms: 10_000,
                    arrivals: 50,
                    concurrency_ms: 100_000.0,
                },
            ));
        }
        // Poisson(10) at q = 1 - 0.25 GB x 10 s / 125 GB·s = 0.98: 17 instances.
        let t = d.and_then(|d| d.target).unwrap();
        assert!((15..=18).contains(&t), "{t}");
        // A sudden quiet tick with 40 in flight: never scales in below observed demand.
        let d = s.on_tick(
            610_000,
            &Observation {
                pool: PoolView {
                    busy: 40,
                    idle: 0,
                    loading: 0,
                    in_flight: 40,
                },
                window_ms: 10_000,
                arrivals: 0,
                concurrency_ms: 0.0,
            },
        );
        assert!(d.target.is_none_or(|t| t >= 40), "{d:?}");
    }

    #[test]
    fn an_arrival_surge_triggers_the_reactive_fallback() {
        let mut s = PredictiveState::new(PredictiveConfig::default(), &spec());
        let obs = |arrivals: u64, conc: f64| Observation {
            pool: PoolView {
                busy: 1,
                idle: 1,
                loading: 0,
                in_flight: 1,
            },
            window_ms: 10_000,
            arrivals,
            concurrency_ms: conc,
        };
        for k in 1..=30 {
            s.on_tick(k * 10_000, &obs(5, 5_000.0));
        }
        let d = s.on_tick(310_000, &obs(500, 500_000.0));
        assert_eq!(d.explain.reason, Reason::AnomalyFallback);
        assert!(d.target.unwrap() >= 50);
    }
}
