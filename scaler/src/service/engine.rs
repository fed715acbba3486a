//! The in-memory state store and the driver of the decision core: per-function configuration,
//! history, policy state and shadow pool in sharded maps; the tick that replays the new history
//! bins through each function's [`ShadowPool`] (which calls the policy exactly as the simulator
//! does: arrivals, completions, idle keep-alives, pre-warms, ticks); and the snapshot of
//! decisions, published atomically, that every RPC reads. Synchronous: the caller passes the
//! time in.
//!
//! A tick at `now` replays the 10 s bins in `[last tick, now)` (missing bins count as zero) and
//! publishes `desired = clamp(loaded instances of the shadow pool, min, max)` (reason
//! `guardrail` when clipped). In-flight demand of a bin is its average in-flight concurrency
//! when the sample gave it, else count × mean duration (Little's law), else count ×
//! `default_duration`.

use super::config::{ClockMode, FunctionConfig, ServiceConfig};
use super::history::History;
use super::metrics::Metrics;
use super::pool::{ShadowPool, BIN_MS};
use super::proto::prewarm::v1::Sample;
use super::validate::{
    check_function_id, check_sample, RejectReason, Rejected, EVENT_FUTURE_MS, WALL_FUTURE_MS,
};
use super::ServiceError;
use crate::policy::{FunctionPolicy, FunctionSpec, Millis, PolicyFactory, PolicySpec};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

const SHARDS: usize = 64;
/// Most decision intervals an event-clock jump ticks through (older ones are skipped).
const MAX_CATCH_UP_TICKS: u64 = 360;
/// Rejections detailed in one answer (all are counted).
pub const MAX_REJECTION_DETAILS: usize = 100;

/// The published decision for one function.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecisionRecord {
    /// Function id.
    pub function_id: String,
    /// Desired instances (after guardrails).
    pub desired: u32,
    /// At least one instance wanted.
    pub active: bool,
    /// Point forecast the decision came from.
    pub forecast: f64,
    /// Quantile of the forecast used (0 if none).
    pub quantile: f64,
    /// Lead time of the forecast, ms.
    pub lead_ms: Millis,
    /// Reason label (kebab-case, e.g. `reactive-stable`, `guardrail`, `no-data`).
    pub reason: String,
    /// Model name, if any.
    pub model: String,
    /// Policy spec in force.
    pub policy: String,
    /// Service time at which the decision last changed, ms since the epoch.
    pub decided_at_ms: Millis,
    /// Incremented when the desired count or the reason changes.
    pub version: u64,
}

impl DecisionRecord {
    fn no_data(cfg: &FunctionConfig, policy: &str, now: Millis) -> Self {
        Self {
            function_id: cfg.id.clone(),
            desired: cfg.min,
            active: cfg.min > 0,
            forecast: 0.0,
            quantile: 0.0,
            lead_ms: 0,
            reason: "no-data".into(),
            model: String::new(),
            policy: policy.to_string(),
            decided_at_ms: now,
            version: 1,
        }
    }
}

/// All published decisions at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Decisions by function id.
    pub decisions: HashMap<String, Arc<DecisionRecord>>,
    /// Service time of the last tick.
    pub at_ms: Millis,
}

/// Per-function metadata persisted beside the history.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FunctionMeta {
    /// Ring heads (three count tiers, then concurrency).
    pub heads: [Option<u64>; 4],
    /// Samples stored.
    pub samples: u64,
    /// Latest bin end.
    pub last_sample_end: Millis,
    /// End of the last observation window.
    pub last_obs: Option<Millis>,
    /// Desired count last decided.
    pub current: u32,
}

/// What a flush must write for one function.
#[derive(Debug, Clone)]
pub struct DirtyFunction {
    /// Function id.
    pub id: String,
    /// Configuration JSON, when it changed.
    pub config: Option<String>,
    /// Metadata JSON.
    pub meta: String,
    /// Decision JSON.
    pub decision: String,
    /// Changed ring slots: (ring index, byte offset, little-endian f32 bytes).
    pub ring_runs: Vec<(usize, usize, Vec<u8>)>,
}

/// A function read back from the store.
#[derive(Debug, Clone)]
pub struct StoredFunction {
    /// Configuration.
    pub config: FunctionConfig,
    /// Metadata.
    pub meta: FunctionMeta,
    /// Last decision.
    pub decision: Option<DecisionRecord>,
    /// Ring bytes (three count tiers, then concurrency); a missing ring stays empty.
    pub rings: [Option<Vec<u8>>; 4],
}

struct FnState {
    config: FunctionConfig,
    policy_label: String,
    policy: Box<dyn FunctionPolicy>,
    history: History,
    pool: ShadowPool,
    /// End of the bins replayed through the pool (a multiple of 10 s).
    last_obs: Option<Millis>,
    /// Policy ticks already counted in the metrics.
    ticks_counted: u64,
    has_data: bool,
    decision: Arc<DecisionRecord>,
    config_dirty: bool,
    dirty: bool,
}

/// Outcome of one ingestion call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestOutcome {
    /// Samples stored.
    pub accepted: u64,
    /// Samples rejected.
    pub rejected: u64,
    /// The first rejections.
    pub rejections: Vec<Rejected>,
}

impl IngestOutcome {
    /// True when every rejection was for the function cap.
    pub fn only_cap_rejections(&self) -> bool {
        self.rejected > 0
            && self
                .rejections
                .iter()
                .all(|r| r.reason == RejectReason::TooManyFunctions)
    }
}

/// Model state of a function (for the Functions API).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelState {
    /// Policy spec in force.
    pub policy: String,
    /// Samples stored.
    pub samples: u64,
    /// Latest bin end.
    pub last_sample_ms: Millis,
    /// Last tick.
    pub last_tick_ms: Millis,
    /// Invocations held per count tier.
    pub tier_totals: Vec<f64>,
}

#[derive(Debug, Default)]
struct ClockState {
    /// Last tick time (a multiple of the interval).
    last_tick: Option<Millis>,
    /// Earliest data time seen before the first tick.
    first_data: Option<Millis>,
}

/// The service state and decision driver.
pub struct Engine {
    cfg: ServiceConfig,
    shards: Box<[Mutex<HashMap<String, FnState>>]>,
    count: AtomicUsize,
    snapshot: ArcSwap<Snapshot>,
    changes: broadcast::Sender<Arc<DecisionRecord>>,
    event_now: AtomicU64,
    clock: Mutex<ClockState>,
    factories: Mutex<HashMap<String, Arc<dyn PolicyFactory>>>,
    deleted: Mutex<Vec<String>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("functions", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; carry on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks one function for a full rewrite (configuration, metadata and every ring slot).
fn mark_for_rewrite(st: &mut FnState) {
    st.dirty = true;
    st.config_dirty = true;
    for r in st.history.rings_mut() {
        r.mark_all();
    }
}

/// Shard of a function id: FNV-1a (cheap; the maps inside keep SipHash against collisions).
fn shard_of(id: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) % SHARDS
}

/// The static facts a policy gets about a function, from its configuration.
pub fn function_spec(c: &FunctionConfig) -> FunctionSpec {
    FunctionSpec {
        memory_mb: c.memory_mb,
        concurrency: c.concurrency.max(1),
        cold_start_ms: c.cold_start_ms,
    }
}

impl Engine {
    /// An engine with the configured functions registered (policies validated).
    pub fn new(cfg: ServiceConfig, metrics: Arc<Metrics>) -> Result<Self, ServiceError> {
        let (changes, _) = broadcast::channel(4096);
        let e = Engine {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            count: AtomicUsize::new(0),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            changes,
            event_now: AtomicU64::new(0),
            clock: Mutex::new(ClockState::default()),
            factories: Mutex::new(HashMap::new()),
            deleted: Mutex::new(Vec::new()),
            metrics,
            cfg,
        };
        for (i, f) in e.cfg.functions.clone().into_iter().enumerate() {
            e.register(f, 0)
                .map_err(|err| ServiceError::config(&format!("function[{i}]"), err.to_string()))?;
        }
        Ok(e)
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Functions held.
    pub fn function_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The event clock (0 until the first sample in event mode).
    pub fn event_now(&self) -> Millis {
        self.event_now.load(Ordering::Acquire)
    }

    /// The service time: the wall clock, or the event clock with `clock = "event"`.
    pub fn now(&self) -> Millis {
        match self.cfg.clock {
            super::config::ClockMode::Wall => super::grpc::wall_now(),
            super::config::ClockMode::Event => self.event_now(),
        }
    }

    /// The current published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The published decision of a function.
    pub fn decision(&self, id: &str) -> Option<Arc<DecisionRecord>> {
        self.snapshot.load().decisions.get(id).cloned()
    }

    /// Decision changes as they are published.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DecisionRecord>> {
        self.changes.subscribe()
    }

    fn factory(&self, spec: &str) -> Result<Arc<dyn PolicyFactory>, ServiceError> {
        let mut f = lock(&self.factories);
        if let Some(x) = f.get(spec) {
            return Ok(x.clone());
        }
        let built: Arc<dyn PolicyFactory> = PolicySpec::parse(spec)
            .and_then(|s| s.build())
            .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?
            .into();
        f.insert(spec.to_string(), built.clone());
        Ok(built)
    }

    fn effective_policy<'a>(&'a self, cfg: &'a FunctionConfig) -> &'a str {
        if cfg.policy.is_empty() {
            &self.cfg.default_policy
        } else {
            &cfg.policy
        }
    }

    fn new_state(&self, config: FunctionConfig, now: Millis) -> Result<FnState, ServiceError> {
        let label = self.effective_policy(&config).to_string();
        let spec = function_spec(&config);
        let policy = self.factory(&label)?.build(&spec);
        let decision = Arc::new(DecisionRecord::no_data(&config, &label, now));
        Ok(FnState {
            pool: ShadowPool::new(spec, config.max),
            config,
            policy_label: label,
            policy,
            history: History::new(),
            last_obs: None,
            ticks_counted: 0,
            has_data: false,
            decision,
            config_dirty: true,
            dirty: true,
        })
    }

    fn default_config(&self, id: &str) -> FunctionConfig {
        FunctionConfig {
            id: id.to_string(),
            policy: String::new(),
            min: 0,
            max: self.cfg.default_max,
            target: crate::actuate::TargetSpec::Keda,
            memory_mb: super::config::DEFAULT_MEMORY_MB,
            cold_start_ms: super::config::DEFAULT_COLD_START_MS,
            concurrency: 1,
        }
    }

    fn check_config(&self, c: &mut FunctionConfig) -> Result<(), ServiceError> {
        check_function_id(&c.id).map_err(ServiceError::InvalidArgument)?;
        if c.max == 0 {
            c.max = self.cfg.default_max;
        }
        if c.min > c.max {
            return Err(ServiceError::InvalidArgument(format!(
                "function `{}`: min {} exceeds max {}",
                c.id, c.min, c.max
            )));
        }
        if c.memory_mb == 0.0 {
            c.memory_mb = super::config::DEFAULT_MEMORY_MB;
        }
        if c.cold_start_ms == 0 {
            c.cold_start_ms = super::config::default_lead_ms(&c.target);
        }
        if c.concurrency == 0 {
            c.concurrency = 1;
        }
        let bad =
            |e: ServiceError| ServiceError::InvalidArgument(format!("function `{}`: {e}", c.id));
        super::config::check_memory("memory_mb", c.memory_mb).map_err(bad)?;
        super::config::check_cold_start("cold_start_ms", c.cold_start_ms).map_err(bad)?;
        super::config::check_target("target", &c.target).map_err(bad)?;
        self.factory(self.effective_policy(c))?;
        Ok(())
    }

    fn publish(&self, changed: Vec<Arc<DecisionRecord>>, removed: &[String], at: Option<Millis>) {
        if changed.is_empty() && removed.is_empty() && at.is_none() {
            return;
        }
        self.snapshot.rcu(|old| {
            let mut s = Snapshot::clone(old);
            for d in &changed {
                s.decisions.insert(d.function_id.clone(), d.clone());
            }
            for id in removed {
                s.decisions.remove(id);
            }
            if let Some(t) = at {
                s.at_ms = s.at_ms.max(t);
            }
            s
        });
        for d in changed {
            let _ = self.changes.send(d);
        }
    }

    fn reserve_slot(&self) -> Result<(), ServiceError> {
        let max = self.cfg.max_functions;
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| {
                self.metrics.functions.inc();
            })
            .map_err(|_| {
                ServiceError::ResourceExhausted(format!(
                    "function cap reached: {max} functions held (raise max_functions)"
                ))
            })
    }

    /// Registers a function; fails if it exists or the cap is reached.
    pub fn register(
        &self,
        mut config: FunctionConfig,
        now: Millis,
    ) -> Result<FunctionConfig, ServiceError> {
        self.check_config(&mut config)?;
        let mut shard = lock(&self.shards[shard_of(&config.id)]);
        if shard.contains_key(&config.id) {
            return Err(ServiceError::AlreadyExists(format!(
                "function `{}` is already registered",
                config.id
            )));
        }
        self.reserve_slot()?;
        let st = self.new_state(config.clone(), now)?;
        let d = st.decision.clone();
        shard.insert(config.id.clone(), st);
        drop(shard);
        self.publish(vec![d], &[], None);
        Ok(config)
    }

    /// Replaces a function's configuration; a new policy spec restarts the policy and replays
    /// the recent history through it.
    pub fn update(
        &self,
        mut config: FunctionConfig,
        now: Millis,
    ) -> Result<FunctionConfig, ServiceError> {
        self.check_config(&mut config)?;
        let mut shard = lock(&self.shards[shard_of(&config.id)]);
        let Some(st) = shard.get_mut(&config.id) else {
            return Err(ServiceError::NotFound(format!(
                "function `{}` is not registered",
                config.id
            )));
        };
        let label = self.effective_policy(&config).to_string();
        let spec = function_spec(&config);
        let restart = label != st.policy_label
            || spec != function_spec(&st.config)
            || config.max != st.config.max;
        let factory = self.factory(&label)?;
        st.config = config.clone();
        if restart {
            st.policy = factory.build(&spec);
            st.policy_label = label;
            st.pool = ShadowPool::new(spec, config.max);
            self.warm_replay(st);
        }
        st.config_dirty = true;
        st.dirty = true;
        let d = Arc::new(DecisionRecord {
            desired: st.pool.loaded().clamp(config.min, config.max),
            policy: st.policy_label.clone(),
            decided_at_ms: now.max(st.decision.decided_at_ms),
            version: st.decision.version + 1,
            ..DecisionRecord::clone(&st.decision)
        });
        st.decision = d.clone();
        drop(shard);
        self.publish(vec![d], &[], None);
        Ok(config)
    }

    /// Deletes a function; returns whether it existed.
    pub fn delete(&self, id: &str) -> bool {
        let removed = lock(&self.shards[shard_of(id)]).remove(id).is_some();
        if removed {
            self.count.fetch_sub(1, Ordering::AcqRel);
            self.metrics.functions.dec();
            self.metrics.forget_function(id);
            lock(&self.deleted).push(id.to_string());
            self.publish(Vec::new(), &[id.to_string()], None);
        }
        removed
    }

    /// Every function's configuration, sorted by id.
    pub fn list(&self) -> Vec<FunctionConfig> {
        let mut v: Vec<FunctionConfig> = self
            .shards
            .iter()
            .flat_map(|s| {
                lock(s)
                    .values()
                    .map(|f| f.config.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// A function's model state.
    pub fn model_state(&self, id: &str) -> Option<ModelState> {
        let shard = lock(&self.shards[shard_of(id)]);
        shard.get(id).map(|f| ModelState {
            policy: f.policy_label.clone(),
            samples: f.history.samples,
            last_sample_ms: f.history.last_sample_end,
            last_tick_ms: f.last_obs.unwrap_or(0),
            tier_totals: f.history.counts.iter().map(|r| r.total()).collect(),
        })
    }

    /// Validates and stores a batch. `wall_now` is the wall clock in wall mode (ignored in
    /// event mode). In event mode samples are checked against the event clock (or, before it is
    /// set, the first good sample of the batch); the clock then moves to the latest bin end and
    /// every due tick runs before this returns.
    pub fn ingest(&self, samples: &[Sample], wall_now: Millis) -> IngestOutcome {
        let event = self.cfg.clock == ClockMode::Event;
        let (mut now_ref, future) = if event {
            let t = self.event_now();
            ((t > 0).then_some(t), EVENT_FUTURE_MS)
        } else {
            (Some(wall_now), WALL_FUTURE_MS)
        };
        let mut out = IngestOutcome::default();
        let mut new_decisions = Vec::new();
        let mut max_end = 0;
        let mut min_start = Millis::MAX;
        let reject = |out: &mut IngestOutcome, i: usize, s: &Sample, r: RejectReason, m| {
            out.rejected += 1;
            self.metrics
                .samples_rejected
                .with_label_values(&[r.as_str()])
                .inc();
            if out.rejections.len() < MAX_REJECTION_DETAILS {
                out.rejections.push(Rejected {
                    index: i,
                    function_id: s.function_id.clone(),
                    reason: r,
                    message: m,
                });
            }
        };
        for (i, s) in samples.iter().enumerate() {
            let conc = match check_sample(s, now_ref, future, self.cfg.default_duration_ms) {
                Ok(c) => c,
                Err((r, m)) => {
                    reject(&mut out, i, s, r, format!("sample {i}: {m}"));
                    continue;
                }
            };
            let start = s.bin_start_ms as Millis;
            let width = s.bin_width_ms as Millis;
            // An event clock not yet set takes its reference from the first good sample, so
            // that one far-future sample cannot drag it along.
            now_ref.get_or_insert(start + width);
            let mut shard = lock(&self.shards[shard_of(&s.function_id)]);
            let st = match shard.get_mut(&s.function_id) {
                Some(st) => st,
                None => {
                    if !self.cfg.auto_register {
                        let m = format!(
                            "sample {i}: function `{}` is not registered (auto_register is off)",
                            s.function_id
                        );
                        reject(&mut out, i, s, RejectReason::UnknownFunction, m);
                        continue;
                    }
                    if let Err(e) = self.reserve_slot() {
                        let m = format!("sample {i}: {e}");
                        reject(&mut out, i, s, RejectReason::TooManyFunctions, m);
                        continue;
                    }
                    let cfg = self.default_config(&s.function_id);
                    match self.new_state(cfg, now_ref.unwrap_or(start)) {
                        Ok(st) => {
                            new_decisions.push(st.decision.clone());
                            shard.entry(s.function_id.clone()).or_insert(st)
                        }
                        Err(e) => {
                            self.count.fetch_sub(1, Ordering::AcqRel);
                            self.metrics.functions.dec();
                            let m = format!("sample {i}: {e}");
                            reject(&mut out, i, s, RejectReason::UnknownFunction, m);
                            continue;
                        }
                    }
                }
            };
            st.history.add(start, width, s.invocations, conc);
            st.has_data = true;
            st.dirty = true;
            drop(shard);
            out.accepted += 1;
            max_end = max_end.max(start + width);
            min_start = min_start.min(start);
        }
        self.metrics.samples_ingested.inc_by(out.accepted);
        self.publish(new_decisions, &[], None);
        if event && out.accepted > 0 {
            {
                let mut c = lock(&self.clock);
                if c.last_tick.is_none() {
                    c.first_data = Some(c.first_data.map_or(min_start, |t| t.min(min_start)));
                }
            }
            self.event_now.fetch_max(max_end, Ordering::AcqRel);
            self.advance_event_clock();
        }
        out
    }

    /// Runs every tick due on the event clock (event mode).
    pub fn advance_event_clock(&self) {
        let now = self.event_now();
        let iv = self.cfg.decision_interval_ms;
        let mut c = lock(&self.clock);
        let first = match c.last_tick {
            Some(t) => t + iv,
            None => match c.first_data {
                Some(d) => (d / iv + 1) * iv,
                None => return,
            },
        };
        let last = now / iv * iv;
        if last < first {
            return;
        }
        let first = first.max(last.saturating_sub((MAX_CATCH_UP_TICKS - 1) * iv));
        let mut t = first;
        while t <= last {
            self.tick(t);
            t += iv;
        }
        c.last_tick = Some(last);
    }

    /// One tick at `now` over every function; publishes the changed decisions atomically.
    pub fn tick(&self, now: Millis) {
        let span = tracing::info_span!(
            "tick",
            at_ms = now,
            functions = self.function_count(),
            changed = tracing::field::Empty
        );
        let _span = span.enter();
        let timer = self.metrics.tick_seconds.start_timer();
        let iv = self.cfg.decision_interval_ms;
        let mut changed = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            for st in shard.values_mut() {
                if let Some(d) = self.step(st, now, iv, true) {
                    changed.push(d);
                }
            }
        }
        span.record("changed", changed.len());
        self.publish(changed, &[], Some(now));
        timer.observe_duration();
    }

    /// Replays the bins in `[last tick, now)` through the function's shadow pool (which calls
    /// the policy) and returns the new decision when it changed (and `publish` is set).
    fn step(
        &self,
        st: &mut FnState,
        now: Millis,
        iv: Millis,
        publish: bool,
    ) -> Option<Arc<DecisionRecord>> {
        let end = now / BIN_MS * BIN_MS;
        // Never further back than the concurrency tier holds.
        let oldest = end.saturating_sub(super::history::CONC_TIER.len as Millis * BIN_MS);
        let from = st
            .last_obs
            .unwrap_or_else(|| end.saturating_sub(iv))
            .max(oldest);
        if from >= end || !st.has_data {
            return None;
        }
        st.last_obs = Some(end);
        st.dirty = true;
        let (arrivals, conc) = st.history.window(from, end);
        if st.pool.is_quiet() && arrivals <= 0.0 && conc <= 0.0 {
            return None;
        }
        let mut b = from / BIN_MS * BIN_MS;
        while b < end {
            let (n, c) = st.history.window(b, b + BIN_MS);
            st.pool.bin(st.policy.as_mut(), b, BIN_MS, n, c);
            b += BIN_MS;
        }
        st.pool.advance(st.policy.as_mut(), end);
        if !publish {
            return None;
        }
        let loaded = st.pool.loaded();
        let desired = loaded.clamp(st.config.min, st.config.max);
        let reason = if desired != loaded {
            "guardrail"
        } else {
            st.pool.reason()
        };
        let ticks = st.pool.ticks;
        if ticks > st.ticks_counted {
            let label = st.pool.explain.map_or("none", |e| e.reason.label());
            self.metrics
                .decisions
                .with_label_values(&[label])
                .inc_by(ticks - st.ticks_counted);
            st.ticks_counted = ticks;
        }
        let prev = &st.decision;
        let change = prev.desired != desired || prev.reason != reason;
        if !change {
            return None;
        }
        let explain = st.pool.explain;
        let rec = Arc::new(DecisionRecord {
            function_id: st.config.id.clone(),
            desired,
            active: desired > 0,
            forecast: explain.map_or(0.0, |e| e.forecast),
            quantile: explain.map_or(0.0, |e| e.quantile),
            lead_ms: explain.map_or(0, |e| e.lead_ms),
            reason: reason.to_string(),
            model: explain.map_or("", |e| e.model).to_string(),
            policy: st.policy_label.clone(),
            decided_at_ms: now,
            version: prev.version + 1,
        });
        st.decision = rec.clone();
        self.metrics.decision_changes.inc();
        self.metrics.set_function_desired(&st.config.id, desired);
        Some(rec)
    }

    /// Rebuilds a fresh policy's state (and shadow pool) by replaying the stored history of
    /// the last `warm_replay` window (ending at the last observation), without publishing.
    fn warm_replay(&self, st: &mut FnState) {
        let Some(end) = st.last_obs else { return };
        let iv = self.cfg.decision_interval_ms;
        let start = end.saturating_sub(self.cfg.warm_replay_ms) / iv * iv;
        st.last_obs = Some(start);
        let mut t = start + iv;
        while t <= end {
            self.step(st, t, iv, false);
            t += iv;
        }
        st.last_obs = Some(end);
    }

    /// Takes what changed since the last flush (and the ids deleted since then).
    pub fn take_dirty(&self) -> (Vec<DirtyFunction>, Vec<String>) {
        let deleted = std::mem::take(&mut *lock(&self.deleted));
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            for st in shard.values_mut().filter(|s| s.dirty) {
                st.dirty = false;
                let meta = FunctionMeta {
                    heads: [
                        st.history.counts[0].head(),
                        st.history.counts[1].head(),
                        st.history.counts[2].head(),
                        st.history.conc.head(),
                    ],
                    samples: st.history.samples,
                    last_sample_end: st.history.last_sample_end,
                    last_obs: st.last_obs,
                    current: st.pool.loaded(),
                };
                let mut ring_runs = Vec::new();
                for (k, ring) in st.history.rings_mut().into_iter().enumerate() {
                    for (slot, vals) in ring.take_dirty() {
                        ring_runs.push((k, slot * 4, super::history::encode_f32(vals)));
                    }
                }
                let config = if std::mem::take(&mut st.config_dirty) {
                    serde_json::to_string(&st.config).ok()
                } else {
                    None
                };
                out.push(DirtyFunction {
                    id: st.config.id.clone(),
                    config,
                    meta: serde_json::to_string(&meta).unwrap_or_default(),
                    decision: serde_json::to_string(&*st.decision).unwrap_or_default(),
                    ring_runs,
                });
            }
        }
        (out, deleted)
    }

    /// Marks functions for a full rewrite at the next flush (after a failed one).
    pub fn mark_unflushed(&self, ids: &[String], deleted: Vec<String>) {
        for id in ids {
            let mut shard = lock(&self.shards[shard_of(id)]);
            if let Some(st) = shard.get_mut(id) {
                mark_for_rewrite(st);
            }
        }
        lock(&self.deleted).extend(deleted);
    }

    /// Marks every function for a full rewrite at the next flush (the store was replaced or
    /// restarted empty: nothing written before can be assumed to be there).
    pub fn mark_all_unflushed(&self) {
        for shard in self.shards.iter() {
            lock(shard).values_mut().for_each(mark_for_rewrite);
        }
    }

    /// Loads stored functions: history, configuration and last decision as stored; policy
    /// state rebuilt by a warm replay of the recent history. Functions already held keep their
    /// configuration (from the file or the API); if they already received telemetry (Redis was
    /// unreachable at start and came back later), that history is merged on top of the stored
    /// one, their newer decision is kept, and the merged state is rewritten at the next flush.
    pub fn restore(&self, stored: Vec<StoredFunction>) -> Result<usize, ServiceError> {
        let mut n = 0;
        let mut decisions = Vec::new();
        let mut max_end = 0;
        let mut max_obs = None;
        for sf in stored {
            let id = sf.config.id.clone();
            let mut shard = lock(&self.shards[shard_of(&id)]);
            let existing = shard.remove(&id);
            let config = match &existing {
                Some(st) => st.config.clone(),
                None => {
                    if self.reserve_slot().is_err() {
                        continue;
                    }
                    let mut c = sf.config.clone();
                    if self.check_config(&mut c).is_err() {
                        c.policy = String::new();
                    }
                    c
                }
            };
            let mut st = self.new_state(config, 0)?;
            for (k, ring) in st.history.rings_mut().into_iter().enumerate() {
                if let Some(bytes) = &sf.rings[k] {
                    ring.restore(sf.meta.heads[k], bytes);
                }
            }
            st.history.samples = sf.meta.samples;
            st.history.last_sample_end = sf.meta.last_sample_end;
            st.last_obs = sf.meta.last_obs;
            let recent = existing.as_ref().filter(|e| e.has_data);
            if let Some(e) = recent {
                st.history.merge_from(&e.history);
                st.last_obs = st.last_obs.max(e.last_obs);
            }
            st.has_data = st.history.samples > 0;
            self.warm_replay(&mut st);
            match (recent, sf.decision) {
                (Some(e), _) => st.decision = e.decision.clone(),
                (None, Some(d)) => {
                    st.decision = Arc::new(DecisionRecord {
                        policy: st.policy_label.clone(),
                        ..d
                    })
                }
                (None, None) => {}
            }
            st.config_dirty = existing.is_some();
            st.dirty = false;
            if recent.is_some() {
                mark_for_rewrite(&mut st);
            }
            max_end = max_end.max(sf.meta.last_sample_end);
            max_obs = max_obs.max(sf.meta.last_obs);
            decisions.push(st.decision.clone());
            shard.insert(id, st);
            n += 1;
        }
        if self.cfg.clock == ClockMode::Event {
            self.event_now.fetch_max(max_end, Ordering::AcqRel);
            let mut c = lock(&self.clock);
            let iv = self.cfg.decision_interval_ms;
            c.last_tick = max_obs.map(|t| t / iv * iv);
        }
        for d in &decisions {
            self.metrics.set_function_desired(&d.function_id, d.desired);
        }
        self.publish(decisions, &[], max_obs);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::config::RawConfig;

    fn engine(extra: &str) -> Engine {
        let raw = RawConfig::from_toml(&format!(
            "clock = \"event\"\ndefault_policy = \"reactive\"\n{extra}"
        ))
        .unwrap();
        Engine::new(raw.validate().unwrap(), Arc::new(Metrics::new(10).unwrap())).unwrap()
    }

    const T0: Millis = 1_700_000_000_000;

    fn s(id: &str, t: Millis, n: f64, conc: f64) -> Sample {
        Sample {
            function_id: id.into(),
            bin_start_ms: t as i64,
            bin_width_ms: 10_000,
            invocations: n,
            concurrency: Some(conc),
            mean_duration_ms: None,
            cold_starts: None,
        }
    }

    #[test]
    fn burst_raises_desired_and_idle_returns_to_zero() {
        let e = engine("");
        e.ingest(&[s("f", T0, 0.0, 0.0)], 0);
        assert_eq!(e.decision("f").unwrap().reason, "no-data");
        // 90 s at concurrency 7: the KPA's 60 s stable window fills, 7 / 0.7 = 10.
        let burst: Vec<Sample> = (1..10)
            .map(|i| s("f", T0 + i * 10_000, 500.0, 7.0))
            .collect();
        e.ingest(&burst, 0);
        let d = e.decision("f").unwrap();
        assert!(d.desired >= 10, "{d:?}");
        assert!(d.active);
        let quiet: Vec<Sample> = (10..46)
            .map(|i| s("f", T0 + i * 10_000, 0.0, 0.0))
            .collect();
        e.ingest(&quiet, 0);
        let d = e.decision("f").unwrap();
        assert_eq!(d.desired, 0, "{d:?}");
        assert!(!d.active);
    }

    #[test]
    fn guardrails_clip_and_cap_is_enforced() {
        let e = engine("max_functions = 2\n[[function]]\nid = \"g\"\nmin = 1\nmax = 3\n");
        assert_eq!(e.decision("g").unwrap().desired, 1);
        let burst: Vec<Sample> = (0..3)
            .map(|i| s("g", T0 + i * 10_000, 500.0, 50.0))
            .collect();
        e.ingest(&burst, 0);
        let d = e.decision("g").unwrap();
        assert_eq!((d.desired, d.reason.as_str()), (3, "guardrail"));
        let out = e.ingest(&[s("a", T0, 1.0, 1.0), s("b", T0, 1.0, 1.0)], 0);
        assert_eq!((out.accepted, out.rejected), (1, 1));
        assert!(out.only_cap_rejections());
        assert!(matches!(
            e.register(e.default_config("c"), 0),
            Err(ServiceError::ResourceExhausted(_))
        ));
    }

    #[test]
    fn bad_samples_are_rejected_and_good_ones_kept() {
        let e = engine("");
        let mut bad = s("f", T0, f64::NAN, 0.0);
        bad.function_id = "f".into();
        let out = e.ingest(&[s("f", T0, 3.0, 1.0), bad, s("bad id", T0, 1.0, 0.0)], 0);
        assert_eq!((out.accepted, out.rejected), (1, 2));
        assert_eq!(out.rejections[0].reason, RejectReason::BadCount);
        assert_eq!(out.rejections[1].reason, RejectReason::BadFunctionId);
        assert_eq!(e.model_state("f").unwrap().samples, 1);
    }
}
