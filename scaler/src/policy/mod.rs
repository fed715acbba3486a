//! The decision core: the policy traits, the facts a policy may observe, and the baselines.
//!
//! A [`PolicyFactory`] builds one [`FunctionPolicy`] per function. The driver (simulator or
//! service) calls it on the events a real autoscaler can see, always passing the current time:
//! - [`FunctionPolicy::on_arrival`] when an invocation arrives;
//! - [`FunctionPolicy::on_idle`] when an instance finishes its work (or a pre-warm finishes
//!   loading) and is now idle: the policy says how long to keep it;
//! - [`FunctionPolicy::on_tick`] at the times the policy asked for: the policy may set a target
//!   warm-pool size, and names its next tick.
//!
//! Policies never see the future: only what happened up to `now`.

mod budget;
mod fixed;
mod hybrid;
mod predictive;
mod reactive;
mod shadow;
mod spec;

pub use budget::{HoldId, MemoryBudget};
pub use fixed::{FixedKeepAlive, NoKeepAlive};
pub use hybrid::{HybridConfig, HybridHistogram};
pub use predictive::{
    normal_quantile, poisson_quantile, Plan, Predictive, PredictiveConfig, PredictiveState, Window,
};
pub use reactive::{ReactiveConfig, ReactiveKpa};
pub use shadow::{ShadowFactory, ShadowStats, Shadowed};
pub use spec::{parse_duration_ms, PolicySpec};

use thiserror::Error;

/// Time in integer milliseconds (since trace start in the simulator, since the epoch in the
/// service).
pub type Millis = u64;

/// Static facts about a function that the platform knows before any invocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunctionSpec {
    /// Memory one instance holds, in MB.
    pub memory_mb: f64,
    /// Invocations one instance serves at once.
    pub concurrency: u32,
    /// Time from starting an instance until it can serve, in ms.
    pub cold_start_ms: Millis,
}

/// The state of a function's instance pool at a moment, as the platform reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolView {
    /// Instances executing at least one invocation (including cold starts carrying one).
    pub busy: u32,
    /// Loaded instances with no invocation.
    pub idle: u32,
    /// Pre-warms still loading (not yet able to serve).
    pub loading: u32,
    /// Invocations in flight.
    pub in_flight: u32,
}

impl PoolView {
    /// Instances that hold memory: busy, idle and loading.
    pub fn loaded(&self) -> u32 {
        self.busy + self.idle + self.loading
    }
}

/// What a driver measured for a function since the previous tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Observation {
    /// The pool now.
    pub pool: PoolView,
    /// Length of the observation window in ms (time since the previous tick).
    pub window_ms: Millis,
    /// Arrivals during the window.
    pub arrivals: u64,
    /// Integral of in-flight invocations over the window, in invocation·ms
    /// (average concurrency = `concurrency_ms / window_ms`).
    pub concurrency_ms: f64,
}

impl Observation {
    /// Average concurrency (in-flight invocations) over the window.
    pub fn avg_concurrency(&self) -> f64 {
        if self.window_ms == 0 {
            self.pool.in_flight as f64
        } else {
            self.concurrency_ms / self.window_ms as f64
        }
    }
}

/// What to do with an instance that has just become idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Keep it loaded until this absolute time, then unload it. Reuse cancels the deadline
    /// (the policy is asked again when the instance next becomes idle). `Millis::MAX` keeps it
    /// until a tick target unloads it.
    KeepUntil(Millis),
    /// Unload it now, start loading a fresh instance at `prewarm_at`, and keep that one until
    /// `keep_until` (the hybrid-histogram pre-warm window). An arrival of the function before
    /// `prewarm_at` cancels the pre-warm (the plan was for the idle period that just ended).
    UnloadThenPrewarm {
        /// When the pre-warm load starts.
        prewarm_at: Millis,
        /// When the pre-warmed instance is unloaded if unused.
        keep_until: Millis,
    },
}

/// Why a policy decided what it did: the inputs a person needs to audit a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Keep-alive rule of a fixed policy.
    FixedKeepAlive,
    /// Unload at once.
    NoKeepAlive,
    /// Idle-time histogram window (hybrid-histogram or predictive sparse mode).
    IdleHistogram,
    /// Not enough history yet: conservative default.
    Warmup,
    /// ARIMA forecast of the next idle time.
    IdleForecast,
    /// Reactive rule on observed concurrency (stable window).
    ReactiveStable,
    /// Reactive rule in panic mode.
    ReactivePanic,
    /// Reactive scale-to-zero after the grace period.
    ScaleToZero,
    /// Forecast of the arrival rate over the lead time.
    RateForecast,
    /// Fell back to reactive because of an anomaly or model error out of bounds.
    AnomalyFallback,
    /// A guardrail clipped the target.
    Guardrail,
}

impl Reason {
    /// The kebab-case label used in APIs, metrics and reports (the serde name).
    pub fn label(self) -> &'static str {
        match self {
            Reason::FixedKeepAlive => "fixed-keep-alive",
            Reason::NoKeepAlive => "no-keep-alive",
            Reason::IdleHistogram => "idle-histogram",
            Reason::Warmup => "warmup",
            Reason::IdleForecast => "idle-forecast",
            Reason::ReactiveStable => "reactive-stable",
            Reason::ReactivePanic => "reactive-panic",
            Reason::ScaleToZero => "scale-to-zero",
            Reason::RateForecast => "rate-forecast",
            Reason::AnomalyFallback => "anomaly-fallback",
            Reason::Guardrail => "guardrail",
        }
    }
}

/// The explanation attached to a tick decision.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Explain {
    /// Main reason.
    pub reason: Reason,
    /// Model that produced the forecast, if any.
    pub model: &'static str,
    /// Point forecast of arrivals (or concurrency) the target was computed from.
    pub forecast: f64,
    /// Quantile of the forecast distribution used (0 when not applicable).
    pub quantile: f64,
    /// Lead time the forecast covers, in ms.
    pub lead_ms: Millis,
    /// Target before guardrails clipped it.
    pub unclipped: u32,
}

impl Explain {
    /// An explanation with only a reason.
    pub fn reason(reason: Reason) -> Self {
        Self {
            reason,
            model: "",
            forecast: 0.0,
            quantile: 0.0,
            lead_ms: 0,
            unclipped: 0,
        }
    }
}

/// Why an idle instance is kept, unloaded or pre-warmed: the idle-time window a policy planned
/// when its function went idle (times relative to the idle start).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdleExplain {
    /// Which rule made the plan.
    pub reason: Reason,
    /// Warm from (ms after the idle start; 0 = kept loaded).
    pub from_ms: Millis,
    /// Warm until (ms after the idle start); 0 with `from_ms` 0 = unloaded at once.
    pub until_ms: Millis,
    /// Estimated probability that the next arrival misses the window.
    pub p_cold: f64,
    /// Expected idle memory time held per instance, s.
    pub expected_idle_s: f64,
    /// Idle-time samples the window came from.
    pub samples: u32,
    /// Instances planned for the window.
    pub instances: u32,
}

/// The answer to a tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Desired loaded instances (busy + idle + loading). `None` leaves the pool as it is.
    pub target: Option<u32>,
    /// When to tick next; `None` stops ticking until [`FunctionPolicy::on_arrival`] asks again.
    pub next_tick: Option<Millis>,
    /// Why.
    pub explain: Explain,
}

/// Per-function policy state. One instance per function; the driver owns it.
pub trait FunctionPolicy: Send {
    /// An invocation arrived at `now`; `pool` is the pool just before it is placed.
    /// Returns a tick time to schedule if the policy wants one (e.g. to wake up from idle).
    fn on_arrival(&mut self, now: Millis, pool: &PoolView) -> Option<Millis>;

    /// An instance became idle at `now` (its invocation finished, or its pre-warm loaded).
    fn on_idle(&mut self, now: Millis, pool: &PoolView) -> IdleAction;

    /// A tick the policy asked for.
    fn on_tick(&mut self, now: Millis, obs: &Observation) -> Decision;

    /// A tick time the policy wants after its last `on_idle` (e.g. to pre-warm several
    /// instances ahead of a predicted burst). Drivers call it right after `on_idle`.
    fn wakeup(&mut self) -> Option<Millis> {
        None
    }

    /// The idle-time plan behind the last [`FunctionPolicy::on_idle`] answer, for policies
    /// that plan windows (drivers call it only when recording explanations).
    fn explain_idle(&self) -> Option<IdleExplain> {
        None
    }

    /// What a shadow policy riding along would have done ([`Shadowed`] only).
    fn shadow_stats(&self) -> Option<&ShadowStats> {
        None
    }
}

/// Builds the per-function state of a policy; one factory per configured policy.
pub trait PolicyFactory: Send + Sync {
    /// The policy label exactly as the user gave it (e.g. `fixed:20m`).
    fn label(&self) -> &str;
    /// State for one function.
    fn build(&self, spec: &FunctionSpec) -> Box<dyn FunctionPolicy>;
    /// The label of the shadow policy scored alongside ([`ShadowFactory`] only).
    fn shadow_label(&self) -> Option<&str> {
        None
    }
    /// Whether the states it builds share state across functions (a memory budget), so a
    /// driver must call them in one global time order.
    fn coupled(&self) -> bool {
        false
    }
}

/// Errors in policy configuration.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PolicyError {
    /// The policy name is unknown.
    #[error("unknown policy `{0}` (known: none, fixed, hybrid-histogram, reactive, predictive)")]
    UnknownPolicy(String),
    /// A parameter is malformed or out of range.
    #[error("policy `{policy}`: invalid parameter `{key}`: {reason}")]
    BadParameter {
        /// Policy label.
        policy: String,
        /// Parameter key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn reason_labels_are_the_serde_names() {
        for r in [
            Reason::FixedKeepAlive,
            Reason::NoKeepAlive,
            Reason::IdleHistogram,
            Reason::Warmup,
            Reason::IdleForecast,
            Reason::ReactiveStable,
            Reason::ReactivePanic,
            Reason::ScaleToZero,
            Reason::RateForecast,
            Reason::AnomalyFallback,
            Reason::Guardrail,
        ] {
            let serde = serde_json::to_value(r).unwrap();
            assert_eq!(serde.as_str(), Some(r.label()));
        }
    }
}
