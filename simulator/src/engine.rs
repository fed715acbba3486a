//! The discrete-event platform model for one function: instances, arrivals, keep-alive,
//! pre-warms and the statistics of a run. Rules are documented in simulator/README.md.
//!
//! Each function is simulated by its own [`FnSim`] with a private event heap. Functions only
//! interact through cluster capacity ([`RunCtx`]); without a capacity limit they are
//! independent and can be advanced in any order (and in parallel) with identical results.

use crate::hist::LogHistogram;
use crate::queue::EventQueue;
use crate::trace::DurationTable;
use prewarm_scaler::policy::{
    Decision, FunctionPolicy, FunctionSpec, IdleAction, Millis, Observation, PoolView,
};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeSet;

/// Milliseconds in a trace minute.
pub const MINUTE_MS: Millis = 60_000;

// Event kinds, in the order they are processed when they fall on the same millisecond.
// Arrivals at the same millisecond come after all of them.
const EV_COMPLETE: u64 = 0;
const EV_READY: u64 = 1;
const EV_EXPIRE: u64 = 2;
const EV_PREWARM: u64 = 3;
const EV_TICK: u64 = 4;

#[inline]
fn pack(kind: u64, a: u32, b: u32) -> u64 {
    (kind << 60) | ((a as u64 & 0x3FFF_FFFF) << 30) | (b as u64 & 0x3FFF_FFFF)
}

#[inline]
fn unpack(x: u64) -> (u64, u32, u32) {
    (
        x >> 60,
        ((x >> 30) & 0x3FFF_FFFF) as u32,
        (x & 0x3FFF_FFFF) as u32,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Slot not in use.
    Free,
    /// A pre-warm still loading (holds memory, serves nothing).
    Loading,
    /// Executing at least one invocation (or cold-starting with one).
    Busy,
    /// Loaded and idle.
    Idle,
}

#[derive(Debug, Clone, Copy)]
struct Instance {
    state: State,
    /// Bumped on every state change; events and stack entries carry it to detect staleness.
    gen: u32,
    /// Invocations executing on it.
    active: u32,
    /// When it became idle (valid in `Idle`).
    since: Millis,
    /// When it can take invocations beyond the one that started it (cold start end).
    ready_at: Millis,
    /// Keep-until for a pre-warm from `UnloadThenPrewarm` (else `None`: ask the policy).
    prewarm_keep: Option<Millis>,
    /// Current keep-alive deadline while idle (`Millis::MAX`: none).
    deadline: Millis,
    /// Time of this instance's pending expiry event, if one is in the heap. At most one is
    /// pending per instance: a later deadline is rescheduled when the pending one fires, so a
    /// hot instance costs one heap entry per keep-alive period, not one per invocation.
    expiry_at: Option<Millis>,
    /// Incarnation of the slot (bumped on every load), carried by expiry events.
    life: u32,
}

/// Per-function counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FnStats {
    /// Invocations.
    pub invocations: u64,
    /// Invocations that started a new instance.
    pub cold_starts: u64,
    /// Σ over instances of idle time (loaded, not executing), ms.
    pub idle_ms: u64,
    /// Pre-warm loads started.
    pub prewarms: u64,
    /// Idle instances evicted for capacity.
    pub evictions: u64,
    /// Loads that exceeded capacity because nothing idle could be evicted.
    pub overflows: u64,
    /// Events processed (arrivals, completions, expiries, loads, ticks).
    pub events: u64,
}

/// One minute of a function's timeline (for `--timeline`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct TimelineMinute {
    /// Absolute minute.
    pub minute: u32,
    /// Arrivals in the minute.
    pub arrivals: u32,
    /// Cold starts in the minute.
    pub cold_starts: u32,
    /// Most instances loaded at any event in the minute.
    pub max_loaded: u32,
    /// Pre-warm loads started in the minute.
    pub prewarms: u32,
}

/// A decision recorded on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TimelineDecision {
    /// When.
    pub at: Millis,
    /// The target (if any).
    pub target: Option<u32>,
    /// Why.
    pub explain: prewarm_scaler::policy::Explain,
    /// For an idle-time plan (`target` is `None`): the window and its inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<prewarm_scaler::policy::IdleExplain>,
}

/// The per-minute record of one function and its policy decisions.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Timeline {
    /// Minutes with any activity, ascending.
    pub minutes: Vec<TimelineMinute>,
    /// Tick decisions whose target changed.
    pub decisions: Vec<TimelineDecision>,
}

impl Timeline {
    fn minute(&mut self, t: Millis) -> &mut TimelineMinute {
        let m = (t / MINUTE_MS) as u32;
        if self.minutes.last().is_none_or(|x| x.minute != m) {
            self.minutes.push(TimelineMinute {
                minute: m,
                ..Default::default()
            });
        }
        let n = self.minutes.len() - 1;
        &mut self.minutes[n]
    }
}

/// What a run shares across functions: cluster capacity accounting and the latency histogram.
/// Capacity is unlimited by default; when enabled, idle
/// instances are evicted least-recently-idled first when a load would exceed the capacity.
#[derive(Debug, Default)]
pub struct RunCtx {
    capacity_mb: Option<f64>,
    used_mb: f64,
    /// Idle instances across functions: (idle since, function, instance, gen, memory bits).
    lru: BTreeSet<(Millis, u32, u32, u32, u64)>,
    /// Evictions decided for other functions, applied by the driver: (function, instance,
    /// gen, time).
    pub(crate) pending: Vec<(u32, u32, u32, Millis)>,
    /// Latencies (ms, including cold-start delay) of the invocations simulated with this
    /// context.
    pub latency: LogHistogram,
}

impl RunCtx {
    /// Unlimited capacity.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// A cluster with `capacity_mb` of memory.
    pub fn with_capacity_mb(capacity_mb: f64) -> Self {
        Self {
            capacity_mb: Some(capacity_mb),
            ..Self::default()
        }
    }

    /// Whether a capacity limit applies.
    pub fn limited(&self) -> bool {
        self.capacity_mb.is_some()
    }
}

/// Static configuration of a simulation run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// RNG seed.
    pub seed: u64,
    /// Cold-start delay, ms.
    pub cold_start_ms: Millis,
    /// Invocations one instance serves at once.
    pub concurrency: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            cold_start_ms: 1_000,
            concurrency: 1,
        }
    }
}

/// SplitMix64 step: decorrelates per-function seeds.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a function id: seeds depend on the id, not on file order.
pub fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The simulation of one function under one policy.
pub struct FnSim {
    index: u32,
    policy: Box<dyn FunctionPolicy>,
    cold_start_ms: Millis,
    concurrency: u32,
    mem_mb: f64,
    durations: DurationTable,
    rng: Xoshiro256PlusPlus,
    insts: Vec<Instance>,
    free: Vec<u32>,
    /// LIFO stack of instances that can take an invocation: (instance, gen).
    avail: Vec<(u32, u32)>,
    heap: EventQueue,
    /// Pending arrivals, ascending by time (ties in draw order); `next_arr` indexes the next
    /// one: (arrival time, duration ms).
    arrivals: Vec<(Millis, u32)>,
    next_arr: usize,
    /// Scratch buffers for sorting a bin's draws.
    draws: Vec<u64>,
    draws_tmp: Vec<u64>,
    /// Future non-zero bins (minute, count), ascending; `next_bin` indexes the next one.
    bins: Vec<(u32, u32)>,
    next_bin: usize,
    pool: PoolView,
    // Concurrency integral (in-flight × ms, exact in integers; it is handed to the policy as
    // f64, which is what an f64 sum of these integer terms gives below 2^53) and tick window.
    conc_ms: u64,
    last_change: Millis,
    last_tick: Millis,
    arrivals_since_tick: u64,
    tick_at: Option<Millis>,
    tick_gen: u32,
    last_target: Option<u32>,
    /// Bumped on every arrival: pre-warm plans made before it are void.
    plan_gen: u32,
    /// Counters.
    pub stats: FnStats,
    timeline: Option<Box<Timeline>>,
    /// Time up to which events have been processed.
    now: Millis,
}

impl FnSim {
    /// A fresh simulation of function `index` (whose id seeds its random stream).
    pub fn new(
        index: u32,
        id: &str,
        spec: &FunctionSpec,
        durations: DurationTable,
        policy: Box<dyn FunctionPolicy>,
        cfg: &SimConfig,
    ) -> Self {
        let seed = splitmix(cfg.seed ^ splitmix(id_hash(id)));
        Self {
            index,
            policy,
            cold_start_ms: spec.cold_start_ms,
            concurrency: spec.concurrency.max(1),
            mem_mb: spec.memory_mb,
            durations,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            insts: Vec::new(),
            free: Vec::new(),
            avail: Vec::new(),
            heap: EventQueue::new(),
            arrivals: Vec::new(),
            next_arr: 0,
            draws: Vec::new(),
            draws_tmp: Vec::new(),
            bins: Vec::new(),
            next_bin: 0,
            pool: PoolView::default(),
            conc_ms: 0,
            last_change: 0,
            last_tick: 0,
            arrivals_since_tick: 0,
            tick_at: None,
            tick_gen: 0,
            last_target: None,
            plan_gen: 0,
            stats: FnStats::default(),
            timeline: None,
            now: 0,
        }
    }

    /// Records a per-minute timeline of this function.
    pub fn enable_timeline(&mut self) {
        self.timeline = Some(Box::default());
    }

    /// What the shadow policy riding along would have done, if one does.
    pub fn shadow_stats(&self) -> Option<&prewarm_scaler::policy::ShadowStats> {
        self.policy.shadow_stats()
    }

    /// The recorded timeline, if enabled.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.as_deref()
    }

    /// The pool as it is now.
    pub fn pool(&self) -> PoolView {
        self.pool
    }

    /// Appends future non-zero bins (absolute minute, count); minutes must be ascending and
    /// after any bin already given.
    pub fn push_bins(&mut self, bins: &[(u32, u32)]) {
        if self.next_bin > 0 && self.next_bin == self.bins.len() {
            self.bins.clear();
            self.next_bin = 0;
        }
        self.bins.extend_from_slice(bins);
    }

    /// Queues exact arrivals `(time, duration ms)` instead of drawing them from bins (for
    /// hand-computed tests and replays of per-invocation logs). Times must not precede events
    /// already processed; bins must not be pending.
    pub fn push_exact(&mut self, arrivals: &[(Millis, u32)]) {
        self.arrivals.drain(..self.next_arr);
        self.next_arr = 0;
        self.arrivals.extend_from_slice(arrivals);
        self.arrivals.sort_by_key(|x| x.0);
    }

    /// Idle-since times of the idle instances, ascending (for tests and timelines).
    pub fn idle_since(&self) -> Vec<Millis> {
        let mut v: Vec<Millis> = self
            .insts
            .iter()
            .filter(|i| i.state == State::Idle)
            .map(|i| i.since)
            .collect();
        v.sort_unstable();
        v
    }

    /// Time of the next event (arrival or internal), if any.
    pub fn next_event_time(&self) -> Option<Millis> {
        let a = self.arrivals.get(self.next_arr).map(|x| x.0).or_else(|| {
            self.bins
                .get(self.next_bin)
                .map(|b| b.0 as Millis * MINUTE_MS)
        });
        let h = self.heap.peek_time();
        match (a, h) {
            (Some(a), Some(h)) => Some(a.min(h)),
            (x, None) | (None, x) => x,
        }
    }

    /// Processes every event strictly before `end`.
    pub fn run_until(&mut self, end: Millis, cluster: &mut RunCtx) {
        while self.step_before(end, cluster) {}
    }

    /// Processes the earliest event if it is before `end`; false when there is none.
    pub fn step_before(&mut self, end: Millis, cluster: &mut RunCtx) -> bool {
        if self.next_arr == self.arrivals.len() {
            self.refill_arrivals(end);
        }
        let a = self.arrivals.get(self.next_arr).map(|x| x.0);
        let h = self.heap.peek_time();
        let take_heap = match (a, h) {
            (Some(a), Some(h)) => h <= a,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => return false,
        };
        if take_heap {
            if h.is_none_or(|t| t >= end) {
                return false;
            }
            let Some((t, ev)) = self.heap.pop() else {
                return false;
            };
            self.advance(t);
            self.handle(t, ev, cluster);
        } else {
            let Some((t, dur)) = self.arrivals.get(self.next_arr).copied() else {
                return false;
            };
            if t >= end {
                return false;
            }
            self.next_arr += 1;
            self.advance(t);
            self.arrive(t, dur, cluster);
        }
        self.stats.events += 1;
        true
    }

    /// Draws the arrivals of the next bin if it starts before `end`.
    fn refill_arrivals(&mut self, end: Millis) {
        let Some(&(minute, count)) = self.bins.get(self.next_bin) else {
            return;
        };
        let start = minute as Millis * MINUTE_MS;
        if start >= end {
            return;
        }
        self.next_bin += 1;
        // Each draw packed as (offset in the minute) << 32 | duration, then ordered by offset
        // with ties in draw order.
        self.draws.clear();
        self.draws.reserve(count as usize);
        for _ in 0..count {
            let off = self.rng.random_range(0..MINUTE_MS);
            let u: f64 = self.rng.random();
            let d = self.durations.sample(u).min(u32::MAX as u64);
            self.draws.push(off << 32 | d);
        }
        sort_draws(&mut self.draws, &mut self.draws_tmp);
        self.arrivals.clear();
        self.next_arr = 0;
        self.arrivals
            .extend(self.draws.iter().map(|&x| (start + (x >> 32), x as u32)));
    }

    /// Moves the clock to `t`, integrating in-flight concurrency.
    #[inline]
    fn advance(&mut self, t: Millis) {
        if t > self.last_change {
            self.conc_ms = self
                .conc_ms
                .saturating_add(u64::from(self.pool.in_flight) * (t - self.last_change));
            self.last_change = t;
        }
        self.now = t;
    }

    fn note_loaded(&mut self, t: Millis) {
        if let Some(tl) = self.timeline.as_deref_mut() {
            let loaded = self.pool.loaded();
            let m = tl.minute(t);
            m.max_loaded = m.max_loaded.max(loaded);
        }
    }

    fn schedule(&mut self, t: Millis, kind: u64, a: u32, b: u32) {
        if kind == EV_EXPIRE {
            self.heap.push_far(t, pack(kind, a, b));
        } else {
            self.heap.push(t, pack(kind, a, b));
        }
    }

    fn alloc(&mut self, t: Millis, cluster: &mut RunCtx, mem_mb: f64) -> u32 {
        if let Some(cap) = cluster.capacity_mb {
            while cluster.used_mb + mem_mb > cap + 1e-9 {
                let Some((_, f, i, g, bits)) = cluster.lru.pop_first() else {
                    self.stats.overflows += 1;
                    break;
                };
                cluster.used_mb -= f64::from_bits(bits);
                if f == self.index {
                    self.mark_evicted(i, g, t);
                } else {
                    cluster.pending.push((f, i, g, t));
                }
            }
            cluster.used_mb += mem_mb;
        }
        let inst = Instance {
            state: State::Free,
            gen: 0,
            active: 0,
            since: t,
            ready_at: t,
            prewarm_keep: None,
            deadline: Millis::MAX,
            expiry_at: None,
            life: 0,
        };
        match self.free.pop() {
            Some(i) => {
                let old = self.insts[i as usize];
                self.insts[i as usize] = Instance {
                    gen: old.gen.wrapping_add(1) & 0x3FFF_FFFF,
                    life: old.life.wrapping_add(1) & 0x3FFF_FFFF,
                    ..inst
                };
                i
            }
            None => {
                self.insts.push(inst);
                (self.insts.len() - 1) as u32
            }
        }
    }

    /// Unloads instance `i` (which must be idle or loading).
    fn unload(&mut self, i: u32, t: Millis, cluster: &mut RunCtx, mem_mb: f64) {
        let inst = &mut self.insts[i as usize];
        match inst.state {
            State::Idle => {
                self.stats.idle_ms += t.saturating_sub(inst.since);
                self.pool.idle -= 1;
                if cluster.limited() {
                    cluster
                        .lru
                        .remove(&(inst.since, self.index, i, inst.gen, mem_mb.to_bits()));
                }
            }
            State::Loading => self.pool.loading -= 1,
            State::Busy | State::Free => return,
        }
        if cluster.limited() {
            cluster.used_mb -= mem_mb;
        }
        inst.state = State::Free;
        inst.gen = inst.gen.wrapping_add(1) & 0x3FFF_FFFF;
        self.free.push(i);
        self.note_loaded(t);
    }

    /// Unloads an idle instance chosen for eviction (already removed from the LRU and its
    /// memory already released by the caller).
    fn mark_evicted(&mut self, i: u32, g: u32, t: Millis) {
        let inst = &mut self.insts[i as usize];
        if inst.gen == g && inst.state == State::Idle {
            self.stats.idle_ms += t.saturating_sub(inst.since);
            self.pool.idle -= 1;
            inst.state = State::Free;
            inst.gen = inst.gen.wrapping_add(1) & 0x3FFF_FFFF;
            self.free.push(i);
            self.stats.evictions += 1;
            self.note_loaded(t);
        }
    }

    /// Applies an eviction that another function's load decided at time `t`.
    pub fn apply_eviction(&mut self, i: u32, g: u32, t: Millis) {
        self.mark_evicted(i, g, t);
    }

    /// Puts an idle instance under the policy's keep-alive decision.
    fn make_idle(&mut self, i: u32, t: Millis, cluster: &mut RunCtx, mem_mb: f64) {
        let inst = &mut self.insts[i as usize];
        inst.state = State::Idle;
        inst.since = t;
        inst.gen = inst.gen.wrapping_add(1) & 0x3FFF_FFFF;
        let g = inst.gen;
        let keep = inst.prewarm_keep.take();
        self.pool.idle += 1;
        let action = match keep {
            Some(k) => IdleAction::KeepUntil(k),
            None => {
                let action = self.policy.on_idle(t, &self.pool);
                if let Some(tl) = self.timeline.as_deref_mut() {
                    if self.pool.in_flight == 0 {
                        if let Some(e) = self.policy.explain_idle() {
                            tl.decisions.push(TimelineDecision {
                                at: t,
                                target: None,
                                explain: prewarm_scaler::policy::Explain::reason(e.reason),
                                idle: Some(e),
                            });
                        }
                    }
                }
                action
            }
        };
        match action {
            IdleAction::KeepUntil(until) if until <= t => self.unload(i, t, cluster, mem_mb),
            IdleAction::KeepUntil(until) => {
                self.avail.push((i, g));
                if cluster.limited() {
                    cluster.lru.insert((t, self.index, i, g, mem_mb.to_bits()));
                }
                let inst = &mut self.insts[i as usize];
                inst.deadline = until;
                if until != Millis::MAX && inst.expiry_at.is_none_or(|p| p > until) {
                    inst.expiry_at = Some(until);
                    let life = inst.life;
                    self.schedule(until, EV_EXPIRE, i, life);
                }
            }
            IdleAction::UnloadThenPrewarm {
                prewarm_at,
                keep_until,
            } => {
                self.unload(i, t, cluster, mem_mb);
                let at = prewarm_at.max(t);
                // Keep-alive after the load starts, at most 2^30 - 1 ms (12.4 days).
                let keep = keep_until.saturating_sub(at).min(0x3FFF_FFFF) as u32;
                self.schedule(at, EV_PREWARM, self.plan_gen, keep);
            }
        }
        if let Some(w) = self.policy.wakeup() {
            self.request_tick(w.max(t));
        }
        self.compact_avail();
    }

    fn compact_avail(&mut self) {
        if self.avail.len() > 64 && self.avail.len() > 4 * self.pool.idle as usize + 16 {
            let insts = &self.insts;
            let n = self.concurrency;
            self.avail
                .retain(|&(i, g)| available(&insts[i as usize], g, n));
        }
    }

    fn start_prewarm(&mut self, t: Millis, keep_until: Option<Millis>, cluster: &mut RunCtx) {
        let mem = self.mem_mb;
        let i = self.alloc(t, cluster, mem);
        let inst = &mut self.insts[i as usize];
        inst.state = State::Loading;
        inst.prewarm_keep = keep_until;
        inst.ready_at = t + self.cold_start_ms;
        let g = inst.gen;
        self.pool.loading += 1;
        self.stats.prewarms += 1;
        self.schedule(t + self.cold_start_ms, EV_READY, i, g);
        if let Some(tl) = self.timeline.as_deref_mut() {
            tl.minute(t).prewarms += 1;
        }
        self.note_loaded(t);
    }

    fn arrive(&mut self, t: Millis, dur: u32, cluster: &mut RunCtx) {
        let mem = self.mem_mb;
        self.stats.invocations += 1;
        self.arrivals_since_tick += 1;
        self.plan_gen = self.plan_gen.wrapping_add(1) & 0x3FFF_FFFF;
        if let Some(tick) = self.policy.on_arrival(t, &self.pool) {
            self.request_tick(tick.max(t));
        }
        // LIFO: the most recently available instance.
        let mut chosen = None;
        while let Some((i, g)) = self.avail.pop() {
            let inst = &self.insts[i as usize];
            if available(inst, g, self.concurrency) && inst.ready_at <= t {
                chosen = Some(i);
                break;
            }
        }
        let latency;
        match chosen {
            Some(i) => {
                let n = self.concurrency;
                let inst = &mut self.insts[i as usize];
                if inst.state == State::Idle {
                    self.stats.idle_ms += t - inst.since;
                    self.pool.idle -= 1;
                    self.pool.busy += 1;
                    if cluster.limited() {
                        cluster
                            .lru
                            .remove(&(inst.since, self.index, i, inst.gen, mem.to_bits()));
                    }
                    inst.state = State::Busy;
                }
                inst.active += 1;
                inst.gen = inst.gen.wrapping_add(1) & 0x3FFF_FFFF;
                if inst.active < n {
                    let g = inst.gen;
                    self.avail.push((i, g));
                }
                self.schedule(t + dur as Millis, EV_COMPLETE, i, 0);
                latency = dur as u64;
            }
            None => {
                let i = self.alloc(t, cluster, mem);
                let cs = self.cold_start_ms;
                let inst = &mut self.insts[i as usize];
                inst.state = State::Busy;
                inst.active = 1;
                inst.ready_at = t + cs;
                self.pool.busy += 1;
                self.stats.cold_starts += 1;
                self.schedule(t + cs + dur as Millis, EV_COMPLETE, i, 0);
                if self.concurrency > 1 {
                    let g = self.insts[i as usize].gen;
                    self.schedule(t + cs, EV_READY, i, g);
                }
                latency = cs + dur as u64;
                if let Some(tl) = self.timeline.as_deref_mut() {
                    tl.minute(t).cold_starts += 1;
                }
            }
        }
        self.pool.in_flight += 1;
        cluster.latency.record(latency);
        if let Some(tl) = self.timeline.as_deref_mut() {
            tl.minute(t).arrivals += 1;
        }
        self.note_loaded(t);
    }

    fn request_tick(&mut self, t: Millis) {
        if self.tick_at.is_none_or(|p| t < p) {
            self.tick_gen = self.tick_gen.wrapping_add(1) & 0x3FFF_FFFF;
            self.tick_at = Some(t);
            self.schedule(t, EV_TICK, self.tick_gen, 0);
        }
    }

    fn handle(&mut self, t: Millis, ev: u64, cluster: &mut RunCtx) {
        let mem = self.mem_mb;
        let (kind, a, b) = unpack(ev);
        match kind {
            EV_COMPLETE => {
                let i = a;
                self.pool.in_flight -= 1;
                let n = self.concurrency;
                let inst = &mut self.insts[i as usize];
                inst.active -= 1;
                if inst.active == 0 {
                    self.pool.busy -= 1;
                    self.make_idle(i, t, cluster, mem);
                } else if inst.active + 1 == n && inst.ready_at <= t {
                    inst.gen = inst.gen.wrapping_add(1) & 0x3FFF_FFFF;
                    let g = inst.gen;
                    self.avail.push((i, g));
                }
            }
            EV_READY => {
                let (i, g) = (a, b);
                let inst = &mut self.insts[i as usize];
                if inst.gen != g {
                    return;
                }
                match inst.state {
                    State::Loading => {
                        self.pool.loading -= 1;
                        self.make_idle(i, t, cluster, mem);
                    }
                    State::Busy if inst.active < self.concurrency => {
                        // A cold-started instance with spare concurrency is now ready.
                        self.avail.push((i, g));
                    }
                    _ => {}
                }
            }
            EV_EXPIRE => {
                let (i, life) = (a, b);
                let inst = &mut self.insts[i as usize];
                if inst.life != life || inst.expiry_at != Some(t) {
                    return;
                }
                inst.expiry_at = None;
                if inst.state == State::Idle {
                    if inst.deadline <= t {
                        self.unload(i, t, cluster, mem);
                    } else if inst.deadline != Millis::MAX {
                        // Reused since this event was scheduled: wait for the new deadline.
                        inst.expiry_at = Some(inst.deadline);
                        let d = inst.deadline;
                        self.schedule(d, EV_EXPIRE, i, life);
                    }
                }
            }
            EV_PREWARM => {
                if a != self.plan_gen {
                    return; // an arrival came first: the plan is void
                }
                let keep = b as Millis;
                self.start_prewarm(t, Some(t + self.cold_start_ms.max(keep)), cluster);
            }
            EV_TICK => {
                if a != self.tick_gen || self.tick_at != Some(t) {
                    return;
                }
                self.tick_at = None;
                let obs = Observation {
                    pool: self.pool,
                    window_ms: t - self.last_tick,
                    arrivals: self.arrivals_since_tick,
                    concurrency_ms: self.conc_ms as f64,
                };
                self.conc_ms = 0;
                self.arrivals_since_tick = 0;
                self.last_tick = t;
                let d = self.policy.on_tick(t, &obs);
                self.apply_decision(t, &d, cluster);
                if let Some(next) = d.next_tick {
                    self.request_tick(next.max(t + 1));
                }
            }
            _ => {}
        }
    }

    fn apply_decision(&mut self, t: Millis, d: &Decision, cluster: &mut RunCtx) {
        let Some(target) = d.target else {
            return;
        };
        if let Some(tl) = self.timeline.as_deref_mut() {
            if self.last_target != Some(target) {
                tl.decisions.push(TimelineDecision {
                    at: t,
                    target: Some(target),
                    explain: d.explain,
                    idle: None,
                });
            }
        }
        self.last_target = Some(target);
        let loaded = self.pool.loaded();
        if target > loaded {
            for _ in loaded..target {
                self.start_prewarm(t, None, cluster);
            }
        } else if target < loaded {
            // Unload idle instances, least recently used first.
            let mut excess = loaded - target;
            let mut k = 0;
            while excess > 0 && k < self.avail.len() {
                let (i, g) = self.avail[k];
                k += 1;
                let inst = &self.insts[i as usize];
                if inst.gen == g && inst.state == State::Idle {
                    let mem = self.mem_mb;
                    self.unload(i, t, cluster, mem);
                    excess -= 1;
                }
            }
            self.compact_avail();
        }
    }

    /// Ends the run at `end`: processes what is left before it and counts every instance still
    /// loaded as idle until `end`.
    pub fn finish(&mut self, end: Millis, cluster: &mut RunCtx) {
        self.run_until(end, cluster);
        for inst in &self.insts {
            if inst.state == State::Idle {
                self.stats.idle_ms += end.saturating_sub(inst.since);
            }
        }
        // Loading pre-warms that never finished held no ready capacity: not waste.
    }
}

#[inline]
fn available(inst: &Instance, g: u32, n: u32) -> bool {
    inst.gen == g && matches!(inst.state, State::Idle | State::Busy) && inst.active < n
}

/// Sorts packed draws `offset << 32 | duration` (offset < 2^16) by offset, stably: insertion
/// sort for a few, else a two-pass LSD radix sort on the offset's bytes.
fn sort_draws(keys: &mut [u64], tmp: &mut Vec<u64>) {
    let n = keys.len();
    if n <= 48 {
        for i in 1..n {
            let x = keys[i];
            let mut j = i;
            while j > 0 && keys[j - 1] >> 32 > x >> 32 {
                keys[j] = keys[j - 1];
                j -= 1;
            }
            keys[j] = x;
        }
        return;
    }
    let mut lo = [0usize; 256];
    let mut hi = [0usize; 256];
    for &k in keys.iter() {
        lo[(k >> 32) as usize & 0xFF] += 1;
        hi[(k >> 40) as usize & 0xFF] += 1;
    }
    let (mut a, mut b) = (0, 0);
    for d in 0..256 {
        let (x, y) = (lo[d], hi[d]);
        lo[d] = a;
        hi[d] = b;
        a += x;
        b += y;
    }
    tmp.clear();
    tmp.resize(n, 0);
    for &k in keys.iter() {
        let d = (k >> 32) as usize & 0xFF;
        tmp[lo[d]] = k;
        lo[d] += 1;
    }
    for &k in tmp.iter() {
        let d = (k >> 40) as usize & 0xFF;
        keys[hi[d]] = k;
        hi[d] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_sort_by_offset_keeping_draw_order_on_ties() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut tmp = Vec::new();
        for n in [0usize, 1, 2, 5, 48, 49, 300, 5_000, 70_000] {
            // Few distinct offsets for some sizes, so ties are common.
            let span = if n % 2 == 0 { 60_000 } else { 50 };
            let mut keys: Vec<u64> = (0..n as u64)
                .map(|i| rng.random_range(0..span) << 32 | i)
                .collect();
            let mut want = keys.clone();
            want.sort_by_key(|k| k >> 32);
            sort_draws(&mut keys, &mut tmp);
            assert_eq!(keys, want, "n = {n}");
        }
    }
}
