//! Hand-computed checks of every platform-model rule in simulator/README.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prewarm_scaler::policy::{
    Decision, Explain, FunctionPolicy, FunctionSpec, IdleAction, Millis, Observation,
    PolicyFactory, PolicySpec, PoolView, Reason,
};
use prewarm_simulator::engine::{FnSim, RunCtx, SimConfig};
use prewarm_simulator::trace::{DurationTable, MemoryTrace};
mod common;
use common::meta;

const MIN: Millis = 60_000;

fn spec(mem: f64, concurrency: u32) -> FunctionSpec {
    FunctionSpec {
        memory_mb: mem,
        concurrency,
        cold_start_ms: 1_000,
    }
}

fn sim_with(policy: &str, concurrency: u32) -> FnSim {
    let factory = PolicySpec::parse(policy).unwrap().build().unwrap();
    let s = spec(1024.0, concurrency);
    FnSim::new(
        0,
        "f",
        &s,
        DurationTable::constant(100.0),
        factory.build(&s),
        &SimConfig {
            concurrency,
            ..SimConfig::default()
        },
    )
}

#[test]
fn reuse_resets_the_keep_alive_clock() {
    let mut sim = sim_with("fixed:10m", 1);
    let mut ctx = RunCtx::unlimited();
    // Cold at 0, busy until 1100; warm at 9 min after; warm again 9.5 min after that
    // (19.5 min after the first idle: only a reset keep-alive can serve it).
    sim.push_exact(&[
        (0, 100),
        (1_100 + 9 * MIN, 100),
        (1_100 + 9 * MIN + 100 + 570_000, 100),
    ]);
    sim.finish(60 * MIN, &mut ctx);
    assert_eq!(sim.stats.invocations, 3);
    assert_eq!(sim.stats.cold_starts, 1);
    // Idle 540 000 + 570 000, then 600 000 until the keep-alive expires.
    assert_eq!(sim.stats.idle_ms, 540_000 + 570_000 + 600_000);
}

#[test]
fn keep_alive_expiry_makes_the_next_invocation_cold() {
    let mut sim = sim_with("fixed:10m", 1);
    let mut ctx = RunCtx::unlimited();
    // Idle from 1 100; expires at 601 100; an arrival at exactly that instant is cold.
    sim.push_exact(&[(0, 100), (601_100, 100)]);
    sim.finish(20 * MIN, &mut ctx);
    assert_eq!(sim.stats.cold_starts, 2);
    // 600 000 before expiry, then idle from 602 200 to the end (1 200 000).
    assert_eq!(sim.stats.idle_ms, 600_000 + (1_200_000 - 602_200));
}

#[test]
fn invocation_takes_the_most_recently_idled_instance() {
    let mut sim = sim_with("fixed:10m", 1);
    let mut ctx = RunCtx::unlimited();
    // Two cold starts overlap: instance A idles at 1 500, instance B at 1 600.
    sim.push_exact(&[(0, 500), (100, 500), (2_000, 500)]);
    sim.run_until(2_100, &mut ctx);
    assert_eq!(sim.stats.cold_starts, 2);
    // LIFO took B (idled last); A is still idle since 1 500.
    assert_eq!(sim.idle_since(), vec![1_500]);
}

#[test]
fn concurrency_lets_a_ready_instance_serve_several_invocations() {
    let run = |c: u32| {
        let mut sim = sim_with("fixed:10m", c);
        let mut ctx = RunCtx::unlimited();
        // A: cold at 0, ready at 1 000, runs until 6 000. At 500 the first instance is still
        // starting (it serves only its own invocation): cold. At 2 000 it is ready.
        sim.push_exact(&[(0, 5_000), (500, 5_000), (2_000, 5_000)]);
        sim.finish(MIN, &mut ctx);
        sim.stats.cold_starts
    };
    assert_eq!(run(1), 3);
    assert_eq!(run(2), 2);
}

/// Unloads at once, pre-warms 10 s later, keeps the pre-warm until 30 s after idling.
struct Prewarmer;
impl FunctionPolicy for Prewarmer {
    fn on_arrival(&mut self, _now: Millis, _pool: &PoolView) -> Option<Millis> {
        None
    }
    fn on_idle(&mut self, now: Millis, _pool: &PoolView) -> IdleAction {
        IdleAction::UnloadThenPrewarm {
            prewarm_at: now + 10_000,
            keep_until: now + 30_000,
        }
    }
    fn on_tick(&mut self, _now: Millis, _obs: &Observation) -> Decision {
        Decision {
            target: None,
            next_tick: None,
            explain: Explain::reason(Reason::Warmup),
        }
    }
}

#[test]
fn prewarmed_idle_time_counts_as_waste_but_loading_does_not() {
    let s = spec(2048.0, 1);
    let mut sim = FnSim::new(
        0,
        "f",
        &s,
        DurationTable::constant(100.0),
        Box::new(Prewarmer),
        &SimConfig::default(),
    );
    let mut ctx = RunCtx::unlimited();
    // Cold at 0 -> idle 1 100 -> unloaded; pre-warm loads 11 100..12 100, idle until the warm
    // arrival at 20 000; idle again at 20 100 -> unloaded; pre-warm 30 100..31 100, kept until
    // 50 100.
    sim.push_exact(&[(0, 100), (20_000, 100)]);
    sim.finish(MIN, &mut ctx);
    assert_eq!(sim.stats.cold_starts, 1);
    assert_eq!(sim.stats.prewarms, 2);
    assert_eq!(sim.stats.idle_ms, (20_000 - 12_100) + (50_100 - 31_100));
}

#[test]
fn instances_still_loaded_count_until_the_trace_ends() {
    let mut sim = sim_with("fixed:10m", 1);
    let mut ctx = RunCtx::unlimited();
    sim.push_exact(&[(0, 100)]);
    sim.finish(MIN, &mut ctx);
    assert_eq!(sim.stats.idle_ms, MIN - 1_100);
}

fn run(
    trace: MemoryTrace,
    policies: &str,
    capacity_gb: Option<f64>,
) -> prewarm_simulator::report::Report {
    let factories: Vec<Box<dyn PolicyFactory>> = PolicySpec::parse_list(policies)
        .unwrap()
        .iter()
        .map(|s| s.build().unwrap())
        .collect();
    common::run(trace, factories, capacity_gb)
}

#[test]
fn capacity_evicts_the_least_recently_idled_instance() {
    let trace = || {
        MemoryTrace::single_day(
            5,
            vec![meta("a", 1024.0), meta("b", 1024.0)],
            vec![vec![(0, 1), (2, 1)], vec![(1, 1)]],
        )
    };
    let unlimited = run(trace(), "fixed", None);
    assert_eq!(unlimited.results[0].cold_starts, 2);
    assert_eq!(unlimited.results[0].evictions, 0);
    // 1.5 GB holds one 1 GB instance: b's load evicts a, a's second load evicts b.
    let limited = run(trace(), "fixed", Some(1.5));
    assert_eq!(limited.results[0].cold_starts, 3);
    assert_eq!(limited.results[0].evictions, 2);
    assert!(limited.results[0].wasted_memory_gb_s < unlimited.results[0].wasted_memory_gb_s);
}

fn busy_trace() -> MemoryTrace {
    MemoryTrace::single_day(
        30,
        vec![meta("a", 256.0), meta("b", 512.0), meta("c", 128.0)],
        vec![
            (0..30).map(|m| (m, 20)).collect(),
            vec![(3, 1), (17, 2), (29, 1)],
            (0..30).step_by(7).map(|m| (m, 200)).collect(),
        ],
    )
}

#[test]
fn none_cold_starts_every_invocation() {
    let r = run(busy_trace(), "none", None);
    let n = 30 * 20 + 4 + 5 * 200;
    assert_eq!(r.results[0].invocations, n);
    assert_eq!(r.results[0].cold_starts, n);
    assert_eq!(r.results[0].wasted_memory_gb_s, 0.0);
}

#[test]
fn a_run_is_reproducible_and_independent_of_the_driver() {
    let policies = "fixed,hybrid-histogram,reactive";
    let a = run(busy_trace(), policies, None);
    let b = run(busy_trace(), policies, None);
    // The capacity driver with a capacity nothing reaches must agree with the parallel one.
    let c = run(busy_trace(), policies, Some(1e9));
    for ((x, y), z) in a.results.iter().zip(&b.results).zip(&c.results) {
        assert_eq!(x.cold_starts, y.cold_starts);
        assert_eq!(x.wasted_memory_gb_s, y.wasted_memory_gb_s);
        assert_eq!(x.cold_starts, z.cold_starts, "{}", x.policy);
        assert!((x.wasted_memory_gb_s - z.wasted_memory_gb_s).abs() < 1e-9);
        assert_eq!(x.latency_ms, z.latency_ms);
    }
}

#[test]
fn arrivals_fall_inside_their_minute() {
    let mut sim = sim_with("fixed:10m", 1);
    sim.enable_timeline();
    let mut ctx = RunCtx::unlimited();
    sim.push_bins(&[(0, 50), (7, 30), (8, 1)]);
    sim.finish(10 * MIN, &mut ctx);
    let per_minute: Vec<(u32, u32)> = sim
        .timeline()
        .unwrap()
        .minutes
        .iter()
        .filter(|m| m.arrivals > 0)
        .map(|m| (m.minute, m.arrivals))
        .collect();
    assert_eq!(per_minute, vec![(0, 50), (7, 30), (8, 1)]);
}

#[test]
fn an_arrival_before_the_prewarm_cancels_the_plan() {
    let s = spec(2048.0, 1);
    let mut sim = FnSim::new(
        0,
        "f",
        &s,
        DurationTable::constant(100.0),
        Box::new(Prewarmer),
        &SimConfig::default(),
    );
    let mut ctx = RunCtx::unlimited();
    // Idle at 1 100 plans a pre-warm at 11 100; the arrival at 5 000 comes first (cold) and
    // voids it; its own idle at 6 100 plans a pre-warm at 16 100 (ready 17 100, kept to 36 100).
    sim.push_exact(&[(0, 100), (5_000, 100)]);
    sim.finish(MIN, &mut ctx);
    assert_eq!(sim.stats.cold_starts, 2);
    assert_eq!(sim.stats.prewarms, 1);
    assert_eq!(sim.stats.idle_ms, 36_100 - 17_100);
}
