//! The simulation driver: reads a trace day by day, runs every policy over every function
//! (in parallel where functions are independent, in global time order under a capacity
//! limit), and collects the results.

use crate::engine::{FnSim, FnStats, RunCtx, SimConfig, Timeline, MINUTE_MS};
use crate::hist::LogHistogram;
use crate::report::{FunctionPct, Latency, PolicyResult, Report, ShadowResult, TraceSummary};
use crate::trace::{FunctionMeta, TraceError, TraceSource};
use prewarm_scaler::policy::{FunctionSpec, Millis, PolicyFactory, ShadowStats};
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Options of a run beyond the platform model.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Platform model parameters.
    pub sim: SimConfig,
    /// Cluster memory capacity in GB (`None`: unlimited).
    pub capacity_gb: Option<f64>,
    /// Record a per-minute timeline of this function id.
    pub timeline: Option<String>,
    /// Keep per-function results ([`RunOutput::functions`]).
    pub per_function: bool,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The user interrupted the run.
    #[error("interrupted")]
    Interrupted,
    /// The timeline function is not in the trace.
    #[error("--timeline: function `{0}` is not in the trace")]
    UnknownTimelineFunction(String),
}

/// Progress notifications from a run.
pub trait Progress: Sync {
    /// A day is about to be simulated (0-based), with its number of active functions.
    fn day(&self, _day: u32, _active_functions: usize) {}
    /// `n` more function-days were simulated for one policy.
    fn advance(&self, _n: u64) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

struct PolicyRun<'a> {
    factory: &'a dyn PolicyFactory,
    sims: Vec<FnSim>,
    latency: LogHistogram,
    wall: f64,
}

/// The outcome of a run: the report, plus the timelines recorded (one per policy, in order).
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Aggregate results.
    pub report: Report,
    /// Timeline of the `--timeline` function under each policy (policy label, timeline).
    pub timelines: Vec<(String, Timeline)>,
    /// Per-function results of every reported policy, policy-major (empty unless
    /// [`RunOptions::per_function`]).
    pub functions: Vec<FunctionRow>,
}

/// The outcome of one policy on one function.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FunctionRow {
    /// Policy label.
    pub policy: String,
    /// Function id.
    pub function: String,
    /// Invocations.
    pub invocations: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Wasted memory time, GB·s.
    pub wasted_memory_gb_s: f64,
    /// Pre-warm loads.
    pub prewarms: u64,
}

fn spec_of(meta: &FunctionMeta, sim: &SimConfig) -> FunctionSpec {
    FunctionSpec {
        memory_mb: meta.memory_mb,
        concurrency: sim.concurrency.max(1),
        cold_start_ms: sim.cold_start_ms,
    }
}

/// Runs `policies` over the trace. The first policy labelled exactly like a fixed 10-minute
/// keep-alive is used to normalise wasted memory; if none is given, `baseline` (if any) is run
/// alongside, unreported, for that purpose.
pub fn simulate(
    source: &mut dyn TraceSource,
    policies: &[Box<dyn PolicyFactory>],
    baseline: Option<&dyn PolicyFactory>,
    opts: &RunOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<RunOutput, RunError> {
    let mut runs: Vec<PolicyRun> = policies
        .iter()
        .map(|f| PolicyRun {
            factory: f.as_ref(),
            sims: Vec::new(),
            latency: LogHistogram::new(),
            wall: 0.0,
        })
        .collect();
    if let Some(b) = baseline {
        runs.push(PolicyRun {
            factory: b,
            sims: Vec::new(),
            latency: LogHistogram::new(),
            wall: 0.0,
        });
    }
    let mut metas: Vec<FunctionMeta> = Vec::new();
    let mut minutes: u32 = 0;
    let mut timeline_index: Option<u32> = None;
    let capacity_mb = opts.capacity_gb.map(|g| g * 1024.0);
    let mut ctxs: Vec<RunCtx> = runs
        .iter()
        .map(|_| match capacity_mb {
            Some(c) => RunCtx::with_capacity_mb(c),
            None => RunCtx::unlimited(),
        })
        .collect();

    while let Some(day) = source.next_day()? {
        if cancel.load(Ordering::Relaxed) {
            return Err(RunError::Interrupted);
        }
        progress.day(day.day, day.rows.len());
        let first_new = metas.len();
        metas.extend(day.new_functions);
        if timeline_index.is_none() {
            if let Some(id) = &opts.timeline {
                timeline_index = metas.iter().position(|m| &m.id == id).map(|p| p as u32);
            }
        }
        for run in runs.iter_mut() {
            for (k, meta) in metas.iter().enumerate().skip(first_new) {
                let policy = run.factory.build(&spec_of(meta, &opts.sim));
                let mut sim = FnSim::new(
                    k as u32,
                    &meta.id,
                    &spec_of(meta, &opts.sim),
                    meta.durations,
                    policy,
                    &opts.sim,
                );
                if timeline_index == Some(k as u32) {
                    sim.enable_timeline();
                }
                run.sims.push(sim);
            }
        }
        minutes = minutes.max(day.start_minute + day.minutes);
        let day_end = (day.start_minute + day.minutes) as Millis * MINUTE_MS;
        for (run, ctx) in runs.iter_mut().zip(ctxs.iter_mut()) {
            let started = Instant::now();
            for row in &day.rows {
                if let Some(sim) = run.sims.get_mut(row.function as usize) {
                    sim.push_bins(&row.bins);
                }
            }
            // A capacity limit or a policy's shared budget couples functions: one time order.
            if ctx.limited() || run.factory.coupled() {
                run_time_major(&mut run.sims, day_end, ctx, cancel)?;
                progress.advance(day.rows.len() as u64);
            } else {
                let mut active: Vec<&mut FnSim> = Vec::with_capacity(day.rows.len());
                let mut rows = day.rows.iter().peekable();
                for (k, sim) in run.sims.iter_mut().enumerate() {
                    if rows.peek().is_some_and(|r| r.function as usize == k) {
                        rows.next();
                        active.push(sim);
                    }
                }
                let lat = active
                    .par_iter_mut()
                    .with_min_len(16)
                    .fold(RunCtx::unlimited, |mut c, sim| {
                        if !cancel.load(Ordering::Relaxed) {
                            sim.run_until(day_end, &mut c);
                            progress.advance(1);
                        }
                        c
                    })
                    .map(|c| c.latency)
                    .reduce(LogHistogram::new, |mut a, b| {
                        a.merge(&b);
                        a
                    });
                run.latency.merge(&lat);
                if cancel.load(Ordering::Relaxed) {
                    return Err(RunError::Interrupted);
                }
            }
            run.wall += started.elapsed().as_secs_f64();
        }
    }
    if opts.timeline.is_some() && timeline_index.is_none() {
        return Err(RunError::UnknownTimelineFunction(
            opts.timeline.clone().unwrap_or_default(),
        ));
    }

    let end = minutes as Millis * MINUTE_MS;
    for (run, ctx) in runs.iter_mut().zip(ctxs.iter_mut()) {
        let started = Instant::now();
        if ctx.limited() || run.factory.coupled() {
            run_time_major(&mut run.sims, end, ctx, cancel)?;
            for sim in run.sims.iter_mut() {
                sim.finish(end, ctx);
            }
        } else {
            let lat = run
                .sims
                .par_iter_mut()
                .with_min_len(64)
                .fold(RunCtx::unlimited, |mut c, sim| {
                    sim.finish(end, &mut c);
                    c
                })
                .map(|c| c.latency)
                .reduce(LogHistogram::new, |mut a, b| {
                    a.merge(&b);
                    a
                });
            run.latency.merge(&lat);
        }
        run.latency.merge(&ctx.latency);
        run.wall += started.elapsed().as_secs_f64();
    }

    let mut results: Vec<PolicyResult> = runs
        .iter()
        .map(|r| {
            summarise(
                r.factory.label(),
                r.factory.shadow_label(),
                &r.sims,
                &metas,
                &r.latency,
                r.wall,
            )
        })
        .collect();
    let fixed10 = results
        .iter()
        .position(|r| is_fixed10(&r.policy))
        .or(baseline.map(|_| results.len() - 1))
        .map(|i| results[i].wasted_memory_gb_s);
    for r in results.iter_mut() {
        r.wasted_memory_vs_fixed10 = fixed10
            .filter(|&f| f > 0.0)
            .map(|f| r.wasted_memory_gb_s / f);
    }
    let timelines = runs
        .iter()
        .filter_map(|r| {
            let i = timeline_index? as usize;
            r.sims[i]
                .timeline()
                .map(|t| (r.factory.label().to_string(), t.clone()))
        })
        .take(policies.len())
        .collect();
    if baseline.is_some() {
        results.pop();
    }
    let functions = if opts.per_function {
        runs.iter()
            .take(policies.len())
            .flat_map(|r| {
                r.sims.iter().zip(&metas).map(|(sim, meta)| FunctionRow {
                    policy: r.factory.label().to_string(),
                    function: meta.id.clone(),
                    invocations: sim.stats.invocations,
                    cold_starts: sim.stats.cold_starts,
                    wasted_memory_gb_s: waste_gb_s(sim.stats.idle_ms, meta.memory_mb),
                    prewarms: sim.stats.prewarms,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let invocations = results.first().map(|r| r.invocations).unwrap_or(0);
    Ok(RunOutput {
        report: Report {
            trace: TraceSummary {
                functions: metas.len() as u64,
                invocations,
                minutes: minutes as u64,
            },
            config: crate::report::ConfigSummary {
                seed: opts.sim.seed,
                cold_start_ms: opts.sim.cold_start_ms,
                concurrency: opts.sim.concurrency,
                capacity_gb: opts.capacity_gb,
            },
            results,
            sweep: Vec::new(),
        },
        timelines,
        functions,
    })
}

/// Idle milliseconds of instances of `memory_mb` as GB·s (GB = MB / 1024).
fn waste_gb_s(idle_ms: u64, memory_mb: f64) -> f64 {
    idle_ms as f64 * memory_mb / 1000.0 / 1024.0
}

/// Whether a label is a fixed 10-minute keep-alive.
pub fn is_fixed10(label: &str) -> bool {
    matches!(
        label,
        "fixed" | "fixed:10m" | "fixed:600s" | "fixed:keepalive=10m"
    )
}

/// Advances all functions in global time order up to `end` (needed when a capacity limit
/// couples them).
fn run_time_major(
    sims: &mut [FnSim],
    end: Millis,
    ctx: &mut RunCtx,
    cancel: &AtomicBool,
) -> Result<(), RunError> {
    let mut heap: BinaryHeap<Reverse<(Millis, u32)>> = sims
        .iter()
        .enumerate()
        .filter_map(|(k, s)| {
            s.next_event_time()
                .filter(|&t| t < end)
                .map(|t| Reverse((t, k as u32)))
        })
        .collect();
    let mut steps: u64 = 0;
    while let Some(Reverse((t, k))) = heap.pop() {
        let sim = &mut sims[k as usize];
        if sim.next_event_time() != Some(t) {
            if let Some(nt) = sim.next_event_time().filter(|&nt| nt < end) {
                heap.push(Reverse((nt, k)));
            }
            continue;
        }
        sim.step_before(end, ctx);
        for (f, i, g, at) in std::mem::take(&mut ctx.pending) {
            if let Some(other) = sims.get_mut(f as usize) {
                other.apply_eviction(i, g, at);
            }
        }
        if let Some(nt) = sims[k as usize].next_event_time().filter(|&nt| nt < end) {
            heap.push(Reverse((nt, k)));
        }
        steps += 1;
        if steps.is_multiple_of(65_536) && cancel.load(Ordering::Relaxed) {
            return Err(RunError::Interrupted);
        }
    }
    Ok(())
}

/// Percentile with linear interpolation between closest ranks (numpy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn summarise(
    label: &str,
    shadow_label: Option<&str>,
    sims: &[FnSim],
    metas: &[FunctionMeta],
    latency: &LogHistogram,
    wall: f64,
) -> PolicyResult {
    let mut total = FnStats::default();
    let mut shadow: Option<ShadowStats> = None;
    let mut waste = 0.0;
    let mut pct = Vec::new();
    for (sim, meta) in sims.iter().zip(metas) {
        let s = sim.stats;
        total.invocations += s.invocations;
        total.cold_starts += s.cold_starts;
        total.prewarms += s.prewarms;
        total.evictions += s.evictions;
        total.overflows += s.overflows;
        total.events += s.events;
        waste += waste_gb_s(s.idle_ms, meta.memory_mb);
        if let Some(st) = sim.shadow_stats() {
            shadow.get_or_insert_with(ShadowStats::default).merge(st);
        }
        if s.invocations > 0 {
            pct.push(100.0 * s.cold_starts as f64 / s.invocations as f64);
        }
    }
    pct.sort_by(f64::total_cmp);
    let mean = if pct.is_empty() {
        0.0
    } else {
        pct.iter().sum::<f64>() / pct.len() as f64
    };
    PolicyResult {
        policy: label.to_string(),
        invocations: total.invocations,
        cold_starts: total.cold_starts,
        cold_start_ratio: if total.invocations == 0 {
            0.0
        } else {
            total.cold_starts as f64 / total.invocations as f64
        },
        function_cold_start_pct: FunctionPct {
            p50: percentile(&pct, 0.50),
            p75: percentile(&pct, 0.75),
            p90: percentile(&pct, 0.90),
            mean,
        },
        wasted_memory_gb_s: waste,
        wasted_memory_vs_fixed10: None,
        latency_ms: Latency {
            p50: latency.quantile(0.50),
            p99: latency.quantile(0.99),
            p999: latency.quantile(0.999),
        },
        prewarms: total.prewarms,
        evictions: total.evictions,
        capacity_overflows: total.overflows,
        events: total.events,
        wall_seconds: wall,
        shadow: shadow_label
            .zip(shadow)
            .map(|(policy, stats)| ShadowResult {
                policy: policy.to_string(),
                stats,
            }),
    }
}
