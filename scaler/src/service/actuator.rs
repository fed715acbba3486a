//! The actuator driver: one task per function with a Knative or Lambda target carries out the
//! steps of its [`Reconciler`] against the platform, publishes the target's status (served by
//! `Functions.GetTargetStatus` and exported as metrics), and logs what it writes — or, in shadow
//! mode, what it would write. A supervisor starts, restarts and stops these tasks as functions
//! are configured, changed and deleted.
//!
//! Time is the service's clock (wall, or the telemetry event clock with `--clock event`), so a
//! replay exercises the change-rate limit in trace time. A function's target is acted on only
//! once it has a decision from data (`no-data` decisions are not written).

use super::config::{ClockMode, FunctionConfig};
use super::engine::Engine;
use crate::actuate::reconcile::{Guardrail, ReconcileConfig, Reconciler, Step, TargetStatus};
use crate::actuate::{ActuateError, Platform, TargetSpec};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the supervisor compares running tasks with the configured functions.
const SUPERVISE_EVERY: Duration = Duration::from_millis(500);
/// Longest real-time sleep of a target task between looks at its decision.
const WAKE_EVERY_WALL: Duration = Duration::from_millis(250);
/// Real-time poll of the event clock (event mode has no real-time deadline to sleep until).
const WAKE_EVERY_EVENT: Duration = Duration::from_millis(20);

/// One actuated target's published status.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRecord {
    /// Function id.
    pub function_id: String,
    /// Target kind (`knative`, `lambda`).
    pub kind: &'static str,
    /// What is actuated, e.g. `knative service default/hello`.
    pub description: String,
    /// The reconcile status.
    pub status: TargetStatus,
}

/// The status of every actuated target (shared with the gRPC services).
#[derive(Debug, Default)]
pub struct Actuators {
    records: RwLock<HashMap<String, TargetRecord>>,
}

impl Actuators {
    /// The status of `id`'s target, if it is actuated.
    pub fn get(&self, id: &str) -> Option<TargetRecord> {
        self.records.read().ok()?.get(id).cloned()
    }

    /// Every actuated target's status, by function id.
    pub fn list(&self) -> Vec<TargetRecord> {
        let mut v: Vec<TargetRecord> = match self.records.read() {
            Ok(r) => r.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        v.sort_by(|a, b| a.function_id.cmp(&b.function_id));
        v
    }

    /// Targets whose last platform call failed.
    pub fn failing(&self) -> usize {
        self.records.read().map_or(0, |m| {
            m.values().filter(|r| r.status.last_error.is_some()).count()
        })
    }

    fn put(&self, r: TargetRecord) {
        if let Ok(mut m) = self.records.write() {
            m.insert(r.function_id.clone(), r);
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.records.write() {
            m.remove(id);
        }
    }
}

/// What a running target task was started for (a change restarts it).
struct Running {
    target: TargetSpec,
    memory_mb: f64,
    task: JoinHandle<()>,
}

/// Builds the platform client of a target (standard kube-rs / AWS configuration chains).
async fn platform(t: &TargetSpec) -> Result<Box<dyn Platform>, ActuateError> {
    match t {
        TargetSpec::Keda => Err(ActuateError::Rejected(
            "keda targets are pull-only".to_string(),
        )),
        TargetSpec::Knative(k) => Ok(Box::new(
            crate::actuate::knative::KnativePlatform::from_env(k.clone()).await?,
        )),
        TargetSpec::Lambda(l) => Ok(Box::new(
            crate::actuate::lambda::LambdaPlatform::from_env(l.clone()).await?,
        )),
    }
}

/// Starts the supervisor; it stops every target task when `drain` turns true.
pub fn spawn(
    engine: Arc<Engine>,
    actuators: Arc<Actuators>,
    cfg: ReconcileConfig,
    clock: ClockMode,
    mut drain: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut running: HashMap<String, Running> = HashMap::new();
        loop {
            let configs: HashMap<String, FunctionConfig> = engine
                .list()
                .into_iter()
                .filter(|c| c.target.is_actuated())
                .map(|c| (c.id.clone(), c))
                .collect();
            running.retain(|id, r| {
                let keep = configs
                    .get(id)
                    .is_some_and(|c| c.target == r.target && c.memory_mb == r.memory_mb);
                if !keep {
                    r.task.abort();
                    actuators.remove(id);
                    engine.metrics().forget_function(id);
                }
                keep
            });
            for (id, c) in configs {
                if running.contains_key(&id) {
                    continue;
                }
                let task = tokio::spawn(run_target(
                    engine.clone(),
                    actuators.clone(),
                    cfg.clone(),
                    clock,
                    c.clone(),
                    drain.clone(),
                ));
                running.insert(
                    id,
                    Running {
                        target: c.target,
                        memory_mb: c.memory_mb,
                        task,
                    },
                );
            }
            engine
                .metrics()
                .actuator_failing
                .set(actuators.failing() as i64);
            tokio::select! {
                _ = super::grpc::drained(&mut drain) => break,
                _ = tokio::time::sleep(SUPERVISE_EVERY) => {}
            }
        }
        for (_, r) in running.drain() {
            r.task.abort();
            let _ = r.task.await;
        }
    })
}

fn seed_of(id: &str) -> u64 {
    // FNV-1a: a stable per-target jitter stream.
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn outcome(r: &Result<impl Sized, ActuateError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(ActuateError::Throttled { .. }) => "throttled",
        Err(ActuateError::Conflict(_)) => "conflict",
        Err(ActuateError::Rejected(_)) => "rejected",
        Err(ActuateError::Transient(_)) => "transient",
    }
}

async fn run_target(
    engine: Arc<Engine>,
    actuators: Arc<Actuators>,
    cfg: ReconcileConfig,
    clock: ClockMode,
    fc: FunctionConfig,
    mut drain: watch::Receiver<bool>,
) {
    let kind = fc.target.kind();
    let (max, max_gbs_per_hour) = match &fc.target {
        TargetSpec::Lambda(l) => (l.max_concurrency, l.max_gbs_per_hour),
        _ => (None, None),
    };
    let guard = Guardrail {
        max,
        max_gbs_per_hour,
        memory_mb: fc.memory_mb,
    };
    let shadow = cfg.shadow;
    let mut rec = Reconciler::new(cfg, guard, seed_of(&fc.id));
    let metrics = engine.metrics().clone();
    let mut published: Option<(TargetStatus, String)> = None;
    let mut publish = |rec: &Reconciler, description: &str| {
        let s = rec.status();
        if published
            .as_ref()
            .is_some_and(|(p, d)| p == s && d == description)
        {
            return;
        }
        published = Some((s.clone(), description.to_string()));
        metrics.set_actuator_values(&fc.id, s.target, s.observed.as_ref().map(|o| o.requested));
        actuators.put(TargetRecord {
            function_id: fc.id.clone(),
            kind,
            description: description.to_string(),
            status: s.clone(),
        });
    };
    let wake = match clock {
        ClockMode::Wall => WAKE_EVERY_WALL,
        ClockMode::Event => WAKE_EVERY_EVENT,
    };
    // The client; a failure to build it (no kubeconfig, say) is retried with backoff.
    let mut description = format!("{kind} target of {}", fc.id);
    let platform = loop {
        match platform(&fc.target).await {
            Ok(p) => break p,
            Err(e) => {
                tracing::warn!(function = %fc.id, error = %e, "actuator client unavailable");
                rec.on_observed(Err(e), engine.now());
                publish(&rec, &description);
                let wait = rec.status().next_attempt_ms.saturating_sub(engine.now());
                tokio::select! {
                    _ = super::grpc::drained(&mut drain) => return,
                    _ = tokio::time::sleep(Duration::from_millis(wait).min(Duration::from_secs(60)).max(wake)) => {}
                }
            }
        }
    };
    description = platform.describe();
    loop {
        let t = engine.now();
        let step = match engine.decision(&fc.id) {
            Some(d) if d.reason != "no-data" => {
                rec.set_desired(d.desired);
                // Shadow writes are recorded inside `next`: count and log them.
                let before = rec.status().applies;
                let step = rec.next(t);
                note_shadow_writes(&rec, before, shadow, &fc.id, &description, kind, &metrics);
                step
            }
            _ => Step::Wait { until: t + 1 },
        };
        match step {
            Step::Observe => {
                let r = platform.observe().await;
                metrics
                    .actuator_calls
                    .with_label_values(&[kind, "observe", outcome(&r)])
                    .inc();
                if let Err(e) = &r {
                    tracing::warn!(function = %fc.id, target = %description, error = %e, "actuator read failed");
                }
                rec.on_observed(r, engine.now());
            }
            Step::Apply { value } => {
                let observed = rec.status().observed.clone().unwrap_or_default();
                let span = tracing::info_span!(
                    "actuate",
                    function = %fc.id,
                    target = %description,
                    from = observed.requested,
                    to = value
                );
                let r =
                    tracing::Instrument::instrument(platform.apply(value, &observed), span).await;
                metrics
                    .actuator_calls
                    .with_label_values(&[kind, "apply", outcome(&r)])
                    .inc();
                match &r {
                    Ok(()) => {
                        metrics
                            .actuator_writes
                            .with_label_values(&[kind, "applied"])
                            .inc();
                        tracing::info!(function = %fc.id, target = %description, from = observed.requested, to = value, "actuator applied");
                    }
                    Err(e) => {
                        tracing::warn!(function = %fc.id, target = %description, to = value, error = %e, "actuator write failed")
                    }
                }
                rec.on_applied(value, r, engine.now());
            }
            Step::Wait { until } => {
                publish(&rec, &description);
                let sleep = match clock {
                    ClockMode::Wall => Duration::from_millis(until.saturating_sub(t)).min(wake),
                    ClockMode::Event => wake,
                };
                tokio::select! {
                    _ = super::grpc::drained(&mut drain) => return,
                    _ = tokio::time::sleep(sleep) => {}
                }
                continue;
            }
        }
        publish(&rec, &description);
    }
}

fn note_shadow_writes(
    rec: &Reconciler,
    before: u64,
    shadow: bool,
    id: &str,
    description: &str,
    kind: &str,
    metrics: &super::metrics::Metrics,
) {
    let s = rec.status();
    if shadow && s.applies > before {
        metrics
            .actuator_writes
            .with_label_values(&[kind, "shadow"])
            .inc_by(s.applies - before);
        tracing::info!(function = %id, target = %description, to = ?s.last_applied, "actuator shadow: would apply");
    }
}
