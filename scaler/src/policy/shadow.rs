//! Shadow mode: a second policy sees every event the applied one sees and decides, but its
//! decisions are only counted and compared, never applied.
//!
//! [`Shadowed`] wraps two [`FunctionPolicy`] states. Every answer the driver acts on comes
//! from the applied policy, and the applied policy is called at exactly the times and with
//! exactly the observations it would get alone (each side keeps its own tick schedule and
//! observation window, mirroring the driver's rules), so shadowing never changes the applied
//! results. The shadow's answers feed [`ShadowStats`]: how often it would have scaled out or in,
//! how long it would have held idle instances, and — for every arrival that finds the function
//! idle — whether its last idle window would have had an instance ready (the same check is run
//! on the applied policy's own windows, so the two are comparable).

use super::{
    Decision, FunctionPolicy, FunctionSpec, IdleAction, IdleExplain, Millis, Observation,
    PolicyFactory, PoolView,
};
use std::collections::BTreeMap;

/// What a shadow policy would have done, summed over functions.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShadowStats {
    /// Ticks the shadow policy took.
    pub ticks: u64,
    /// Ticks at which the shadow wanted more instances loaded than the applied pool had.
    pub scale_out: u64,
    /// Instances the shadow would have added at those ticks.
    pub instances_added: u64,
    /// Ticks at which the shadow wanted fewer instances loaded than the applied pool had.
    pub scale_in: u64,
    /// Idle decisions (an instance finished its work or a pre-warm loaded).
    pub idle_decisions: u64,
    /// Idle decisions where both policies chose the same action (same kind, times within 1 s).
    pub idle_agree: u64,
    /// Idle periods for which the shadow planned to unload and pre-warm later.
    pub shadow_prewarm_plans: u64,
    /// Arrivals that ended an idle period (no invocation in flight).
    pub idle_arrivals: u64,
    /// Of those, arrivals at which the applied policy's plan had an instance ready: inside the
    /// warm window it planned for the period, or while a tick target of its asked for spare
    /// capacity (held for two tick periods).
    pub applied_ready_hits: u64,
    /// The same for the shadow's plan.
    pub shadow_ready_hits: u64,
    /// Memory time one instance held in the applied policy's windows until the period ended,
    /// GB·s (periods still open at the end of the run are not counted).
    pub applied_window_gb_s: f64,
    /// The same for the shadow's windows.
    pub shadow_window_gb_s: f64,
    /// Reasons the shadow gave at its idle decisions and ticks, by label.
    pub reasons: BTreeMap<String, u64>,
}

impl ShadowStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ShadowStats) {
        self.ticks += other.ticks;
        self.scale_out += other.scale_out;
        self.instances_added += other.instances_added;
        self.scale_in += other.scale_in;
        self.idle_decisions += other.idle_decisions;
        self.idle_agree += other.idle_agree;
        self.shadow_prewarm_plans += other.shadow_prewarm_plans;
        self.idle_arrivals += other.idle_arrivals;
        self.applied_ready_hits += other.applied_ready_hits;
        self.shadow_ready_hits += other.shadow_ready_hits;
        self.applied_window_gb_s += other.applied_window_gb_s;
        self.shadow_window_gb_s += other.shadow_window_gb_s;
        for (k, v) in &other.reasons {
            *self.reasons.entry(k.clone()).or_insert(0) += v;
        }
    }
}

/// The driver-side tick bookkeeping of one policy: its own pending tick and the observation
/// accumulated since its last tick, so it is ticked exactly as if it ran alone.
#[derive(Debug, Clone, Default)]
struct Side {
    tick_at: Option<Millis>,
    window_ms: Millis,
    arrivals: u64,
    concurrency_ms: f64,
    /// The warm window `[from, until)` planned when the function last went idle.
    window: Option<(Millis, Millis)>,
    /// Spare capacity a tick target asked for: ready from, held until.
    spare: Option<(Millis, Millis)>,
    /// Latest keep-alive deadline given to another idle instance (a surplus instance while
    /// the function was still busy, or a loaded pre-warm) since the last idle period ended.
    hold_until: Millis,
}

impl Side {
    /// Notes a tick answer: a target above the busy instances asks for spare capacity, ready
    /// after the cold start and held for two of the policy's tick periods.
    fn note_target(&mut self, now: Millis, d: &Decision, busy: u32, cold_start_ms: Millis) {
        if let Some(k) = d.target {
            self.spare = (k > busy).then(|| {
                let period = d.next_tick.map_or(0, |n| n.saturating_sub(now));
                (now + cold_start_ms, now + cold_start_ms.max(2 * period))
            });
        }
    }

    /// Scores an arrival that ends an idle period at `now`: (instance ready, window ms held).
    fn score(&mut self, now: Millis) -> (bool, Millis) {
        let inside = |w: Option<(Millis, Millis)>| w.is_some_and(|(f, u)| f <= now && now < u);
        let hit = inside(self.window) || inside(self.spare) || now < self.hold_until;
        self.hold_until = 0;
        let held = self
            .window
            .take()
            .map_or(0, |(from, until)| until.min(now).saturating_sub(from));
        (hit, held)
    }
}

/// The warm window a policy planned for an idle period that starts at `now`: its explained
/// window where it gives one, else what its idle answer implies.
fn planned_window(
    now: Millis,
    action: IdleAction,
    explain: Option<IdleExplain>,
    cold_start_ms: Millis,
) -> Option<(Millis, Millis)> {
    let (from, until) = match (explain, action) {
        (Some(e), _) => (now + e.from_ms, now.saturating_add(e.until_ms)),
        (None, IdleAction::KeepUntil(u)) => (now, u),
        (
            None,
            IdleAction::UnloadThenPrewarm {
                prewarm_at,
                keep_until,
            },
        ) => (prewarm_at.max(now) + cold_start_ms, keep_until),
    };
    (until > from).then_some((from, until))
}

impl Side {
    /// The driver's rule: a requested tick replaces a pending one only if it is earlier.
    fn request(&mut self, t: Millis) {
        if self.tick_at.is_none_or(|p| t < p) {
            self.tick_at = Some(t);
        }
    }

    fn due(&self, now: Millis) -> bool {
        self.tick_at.is_some_and(|t| t <= now)
    }

    fn take_observation(&mut self, obs: &Observation) -> Observation {
        let o = Observation {
            pool: obs.pool,
            window_ms: self.window_ms + obs.window_ms,
            arrivals: self.arrivals + obs.arrivals,
            concurrency_ms: self.concurrency_ms + obs.concurrency_ms,
        };
        self.window_ms = 0;
        self.arrivals = 0;
        self.concurrency_ms = 0.0;
        self.tick_at = None;
        o
    }

    fn accumulate(&mut self, obs: &Observation) {
        self.window_ms += obs.window_ms;
        self.arrivals += obs.arrivals;
        self.concurrency_ms += obs.concurrency_ms;
    }
}

fn same_action(a: IdleAction, b: IdleAction) -> bool {
    let close = |x: Millis, y: Millis| x.abs_diff(y) <= 1_000;
    match (a, b) {
        (IdleAction::KeepUntil(x), IdleAction::KeepUntil(y)) => close(x, y),
        (
            IdleAction::UnloadThenPrewarm {
                prewarm_at: p1,
                keep_until: k1,
            },
            IdleAction::UnloadThenPrewarm {
                prewarm_at: p2,
                keep_until: k2,
            },
        ) => close(p1, p2) && close(k1, k2),
        _ => false,
    }
}

/// Per-function state of a shadowed policy: the applied policy drives, the shadow is scored.
pub struct Shadowed {
    applied: Box<dyn FunctionPolicy>,
    shadow: Box<dyn FunctionPolicy>,
    a: Side,
    s: Side,
    mem_gb: f64,
    cold_start_ms: Millis,
    last_idle_at: Millis,
    in_flight: u32,
    stats: ShadowStats,
}

impl Shadowed {
    /// Wraps `applied` with `shadow` for a function described by `spec`.
    pub fn new(
        applied: Box<dyn FunctionPolicy>,
        shadow: Box<dyn FunctionPolicy>,
        spec: &FunctionSpec,
    ) -> Self {
        Self {
            applied,
            shadow,
            a: Side::default(),
            s: Side::default(),
            mem_gb: spec.memory_mb / 1024.0,
            cold_start_ms: spec.cold_start_ms,
            last_idle_at: 0,
            in_flight: 0,
            stats: ShadowStats::default(),
        }
    }

    fn next_tick(&self) -> Option<Millis> {
        match (self.a.tick_at, self.s.tick_at) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    fn count_reason(&mut self, label: &str) {
        *self.stats.reasons.entry(label.to_string()).or_insert(0) += 1;
    }
}

impl FunctionPolicy for Shadowed {
    fn on_arrival(&mut self, now: Millis, pool: &PoolView) -> Option<Millis> {
        if pool.in_flight == 0 {
            let (ah, aheld) = self.a.score(now);
            let (sh, sheld) = self.s.score(now);
            let st = &mut self.stats;
            st.idle_arrivals += 1;
            st.applied_ready_hits += u64::from(ah);
            st.shadow_ready_hits += u64::from(sh);
            st.applied_window_gb_s += self.mem_gb * aheld as f64 / 1000.0;
            st.shadow_window_gb_s += self.mem_gb * sheld as f64 / 1000.0;
        }
        self.in_flight = pool.in_flight + 1;
        if let Some(t) = self.applied.on_arrival(now, pool) {
            self.a.request(t.max(now));
        }
        if let Some(t) = self.shadow.on_arrival(now, pool) {
            self.s.request(t.max(now));
        }
        self.next_tick()
    }

    fn on_idle(&mut self, now: Millis, pool: &PoolView) -> IdleAction {
        self.last_idle_at = now;
        let act = self.applied.on_idle(now, pool);
        let sh = self.shadow.on_idle(now, pool);
        self.stats.idle_decisions += 1;
        self.stats.idle_agree += u64::from(same_action(act, sh));
        let completion = pool.in_flight < self.in_flight;
        self.in_flight = pool.in_flight;
        // "Until a tick target unloads it" is scored as held until the policy's next tick.
        let bounded = |action: IdleAction, side: &Side| match action {
            IdleAction::KeepUntil(Millis::MAX) => {
                IdleAction::KeepUntil(side.tick_at.unwrap_or(now))
            }
            other => other,
        };
        let (act_b, sh_b) = (bounded(act, &self.a), bounded(sh, &self.s));
        if !completion || pool.in_flight > 0 {
            // Another instance held beside the one that will end the function's activity.
            for (side, action) in [(&mut self.a, act_b), (&mut self.s, sh_b)] {
                if let IdleAction::KeepUntil(u) = action {
                    side.hold_until = side.hold_until.max(u);
                }
            }
        } else {
            // The function went idle: each policy's plan for the idle period.
            let cold = self.cold_start_ms;
            self.a.window = planned_window(now, act_b, self.applied.explain_idle(), cold);
            let se = self.shadow.explain_idle();
            self.s.window = planned_window(now, sh_b, se, cold);
            if self.s.window.is_some_and(|(from, _)| from > now) {
                self.stats.shadow_prewarm_plans += 1;
            }
            if let Some(e) = se {
                self.count_reason(e.reason.label());
            }
        }
        act
    }

    fn wakeup(&mut self) -> Option<Millis> {
        let now = self.last_idle_at;
        let a = self.applied.wakeup().map(|t| t.max(now));
        if let Some(t) = a {
            self.a.request(t);
        }
        if let Some(t) = self.shadow.wakeup() {
            self.s.request(t.max(now));
        }
        // The driver keeps the earlier of this and its pending tick: the earliest side's.
        self.next_tick().filter(|&t| t >= now)
    }

    fn explain_idle(&self) -> Option<IdleExplain> {
        self.applied.explain_idle()
    }

    fn on_tick(&mut self, now: Millis, obs: &Observation) -> Decision {
        let mut out = Decision {
            target: None,
            next_tick: None,
            explain: super::Explain::reason(super::Reason::Warmup),
        };
        if self.a.due(now) {
            let o = self.a.take_observation(obs);
            out = self.applied.on_tick(now, &o);
            self.a
                .note_target(now, &out, obs.pool.busy, self.cold_start_ms);
            if let Some(n) = out.next_tick {
                self.a.request(n.max(now + 1));
            }
        } else {
            self.a.accumulate(obs);
        }
        if self.s.due(now) {
            let o = self.s.take_observation(obs);
            let d = self.shadow.on_tick(now, &o);
            self.s
                .note_target(now, &d, obs.pool.busy, self.cold_start_ms);
            if let Some(n) = d.next_tick {
                self.s.request(n.max(now + 1));
            }
            self.stats.ticks += 1;
            let loaded = obs.pool.loaded();
            if let Some(t) = d.target {
                if t > loaded {
                    self.stats.scale_out += 1;
                    self.stats.instances_added += u64::from(t - loaded);
                } else if t < loaded {
                    self.stats.scale_in += 1;
                }
                self.count_reason(d.explain.reason.label());
            }
        } else {
            self.s.accumulate(obs);
        }
        out.next_tick = self.next_tick();
        out
    }

    fn shadow_stats(&self) -> Option<&ShadowStats> {
        Some(&self.stats)
    }
}

/// Builds [`Shadowed`] states: reports carry the applied policy's label.
pub struct ShadowFactory {
    applied: Box<dyn PolicyFactory>,
    shadow: Box<dyn PolicyFactory>,
}

impl ShadowFactory {
    /// `applied` decides; `shadow` is only scored.
    pub fn new(applied: Box<dyn PolicyFactory>, shadow: Box<dyn PolicyFactory>) -> Self {
        Self { applied, shadow }
    }
}

impl PolicyFactory for ShadowFactory {
    fn label(&self) -> &str {
        self.applied.label()
    }
    fn build(&self, spec: &FunctionSpec) -> Box<dyn FunctionPolicy> {
        Box::new(Shadowed::new(
            self.applied.build(spec),
            self.shadow.build(spec),
            spec,
        ))
    }
    fn shadow_label(&self) -> Option<&str> {
        Some(self.shadow.label())
    }
    fn coupled(&self) -> bool {
        self.applied.coupled() || self.shadow.coupled()
    }
}
