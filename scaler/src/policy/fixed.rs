//! The `fixed` keep-alive baseline (Lambda's historic 10 minutes) and `none` (unload at once,
//! the cold-start ceiling).

use super::{
    Decision, Explain, FunctionPolicy, FunctionSpec, IdleAction, Millis, Observation,
    PolicyFactory, PoolView, Reason,
};

/// Keeps every idle instance for a fixed time after its last use.
#[derive(Debug, Clone)]
pub struct FixedKeepAlive {
    label: String,
    keep_alive_ms: Millis,
}

impl FixedKeepAlive {
    /// A fixed keep-alive of `keep_alive_ms`.
    pub fn new(label: &str, keep_alive_ms: Millis) -> Self {
        Self {
            label: label.to_string(),
            keep_alive_ms,
        }
    }
}

struct FixedState {
    keep_alive_ms: Millis,
}

impl FunctionPolicy for FixedState {
    fn on_arrival(&mut self, _now: Millis, _pool: &PoolView) -> Option<Millis> {
        None
    }
    fn on_idle(&mut self, now: Millis, _pool: &PoolView) -> IdleAction {
        IdleAction::KeepUntil(now.saturating_add(self.keep_alive_ms))
    }
    fn on_tick(&mut self, _now: Millis, _obs: &Observation) -> Decision {
        Decision {
            target: None,
            next_tick: None,
            explain: Explain::reason(Reason::FixedKeepAlive),
        }
    }
}

impl PolicyFactory for FixedKeepAlive {
    fn label(&self) -> &str {
        &self.label
    }
    fn build(&self, _spec: &FunctionSpec) -> Box<dyn FunctionPolicy> {
        Box::new(FixedState {
            keep_alive_ms: self.keep_alive_ms,
        })
    }
}

/// Unloads every instance the moment it becomes idle: every invocation is a cold start unless
/// it lands on an instance that is still busy with spare concurrency.
#[derive(Debug, Clone)]
pub struct NoKeepAlive {
    label: String,
}

impl NoKeepAlive {
    /// The `none` policy.
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_string(),
        }
    }
}

impl PolicyFactory for NoKeepAlive {
    fn label(&self) -> &str {
        &self.label
    }
    fn build(&self, _spec: &FunctionSpec) -> Box<dyn FunctionPolicy> {
        Box::new(FixedState { keep_alive_ms: 0 })
    }
}
