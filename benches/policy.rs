//! Decision cost of the predictive policy: one tick per function (the periodic path), and one
//! idle-window plan (the per-activation path), with the `fixed` policy's per-idle decision as
//! the same-run baseline.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prewarm_scaler::policy::{
    FunctionPolicy, FunctionSpec, Observation, PolicySpec, PoolView, PredictiveConfig,
    PredictiveState,
};
use std::hint::black_box;

fn spec() -> FunctionSpec {
    FunctionSpec {
        memory_mb: 256.0,
        concurrency: 1,
        cold_start_ms: 1_000,
    }
}

fn bench(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut g = c.benchmark_group("decision");
    g.throughput(Throughput::Elements(N as u64));
    // Ticks of 10k functions with varied load.
    let mut states: Vec<PredictiveState> = (0..N)
        .map(|_| PredictiveState::new(PredictiveConfig::default(), &spec()))
        .collect();
    let obs: Vec<Observation> = (0..N)
        .map(|k| Observation {
            pool: PoolView {
                busy: (k % 7) as u32,
                idle: (k % 3) as u32,
                loading: 0,
                in_flight: (k % 7) as u32,
            },
            window_ms: 10_000,
            arrivals: (k % 50) as u64,
            concurrency_ms: (k % 7) as f64 * 10_000.0,
        })
        .collect();
    let mut now = 0u64;
    g.bench_function("predictive_tick_10k_functions", |b| {
        b.iter(|| {
            now += 10_000;
            for (s, o) in states.iter_mut().zip(&obs) {
                black_box(s.on_tick(now, o));
            }
        })
    });
    // Idle-window plans with a full history of 24 idle times.
    let mut planners: Vec<PredictiveState> = (0..N)
        .map(|k| {
            let mut s = PredictiveState::new(PredictiveConfig::default(), &spec());
            for j in 0..24u64 {
                s.record_idle_time(60_000 * (5 + (k as u64 + j * 7) % 40));
            }
            s
        })
        .collect();
    g.bench_function("predictive_idle_window_10k_functions", |b| {
        b.iter(|| {
            for s in planners.iter_mut() {
                black_box(s.window());
            }
        })
    });
    let fixed = PolicySpec::parse("fixed").and_then(|s| s.build());
    if let Ok(fixed) = fixed {
        let mut fs: Vec<Box<dyn FunctionPolicy>> = (0..N).map(|_| fixed.build(&spec())).collect();
        let pool = PoolView::default();
        g.bench_function("fixed_idle_baseline_10k_functions", |b| {
            b.iter(|| {
                now += 1;
                for f in fs.iter_mut() {
                    black_box(f.on_idle(now, &pool));
                }
            })
        });
    }
    g.finish();
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
criterion_main!(group::benches);
