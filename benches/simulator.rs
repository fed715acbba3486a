//! Simulator throughput: simulated invocations per second for the baseline policies on a
//! synthetic in-memory trace, single-threaded, with `none` (no keep-alive bookkeeping) as the
//! same-run baseline.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prewarm_scaler::policy::PolicySpec;
use prewarm_simulator::engine::{FnSim, RunCtx, SimConfig, MINUTE_MS};
use prewarm_simulator::trace::DurationTable;

/// A day of bins for `n` functions with heavy-tailed rates (deterministic).
fn workload(n: usize) -> Vec<Vec<(u32, u32)>> {
    (0..n)
        .map(|k| {
            // Zipf-like popularity: rate ~ 200 / (k + 1) per minute, plus timers.
            let rate = 200.0 / (k as f64 + 1.0);
            let period = 1 + (k % 30) as u32;
            (0..1440u32)
                .filter_map(|m| {
                    let c = if rate >= 1.0 {
                        (rate * (1.0 + 0.5 * ((m as f64) / 229.0).sin())) as u32
                    } else {
                        u32::from(m % period == 0)
                    };
                    (c > 0).then_some((m, c))
                })
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let bins = workload(400);
    let total: u64 = bins.iter().flatten().map(|&(_, c)| c as u64).sum();
    let mut g = c.benchmark_group("simulate_day");
    g.throughput(Throughput::Elements(total));
    g.sample_size(10);
    let durations = DurationTable {
        pct: [5.0, 10.0, 50.0, 120.0, 400.0, 3_000.0, 20_000.0],
    };
    for policy in ["none", "fixed", "hybrid-histogram"] {
        let factory = PolicySpec::parse(policy).and_then(|s| s.build());
        let Ok(factory) = factory else {
            continue;
        };
        g.bench_with_input(BenchmarkId::from_parameter(policy), &bins, |b, bins| {
            b.iter(|| {
                let cfg = SimConfig::default();
                let mut ctx = RunCtx::unlimited();
                let mut inv = 0;
                for (k, fb) in bins.iter().enumerate() {
                    let spec = prewarm_scaler::policy::FunctionSpec {
                        memory_mb: 256.0,
                        concurrency: 1,
                        cold_start_ms: 1_000,
                    };
                    let mut sim = FnSim::new(
                        k as u32,
                        &format!("f{k}"),
                        &spec,
                        durations,
                        factory.build(&spec),
                        &cfg,
                    );
                    sim.push_bins(fb);
                    sim.finish(1440 * MINUTE_MS, &mut ctx);
                    inv += sim.stats.invocations;
                }
                inv
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
