//! Criterion benches of the models: online update per function per bin, a full refit of many
//! synthetic functions (scaled down; see models/README.md for the extrapolation to 10k × 14
//! days), and bytes of serialised state per function. Each group has a baseline measured in
//! the same run (summing the bin) so results are reported as ratios.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use prewarm_models::ets::Ets;
use prewarm_models::forecast::{FittedForecaster, Forecaster};
use prewarm_models::fourier::Fourier;
use prewarm_models::idle::IdleTimeModel;
use prewarm_models::smedian::SeasonalMedian;
use prewarm_models::snaive::SeasonalNaive;
use std::hint::black_box;

/// A synthetic per-minute function: daily cycle, Poisson-ish noise, seeded.
fn synthetic(days: usize, seed: u64) -> Vec<f64> {
    synthetic_with(days, seed, |lam, u| lam + (u - 0.5) * 2.0 * lam.sqrt())
}

/// A synthetic per-minute function with a daily cycle whose value is `noisy(rate, u)` with
/// `u` uniform in [0, 1), rounded to a count; seeded.
fn synthetic_with(days: usize, seed: u64, noisy: fn(f64, f64) -> f64) -> Vec<f64> {
    let mut s = seed | 1;
    let base = 1.0 + (seed % 20) as f64;
    (0..days * 1440)
        .map(|t| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            let lam = base * (1.0 + 0.6 * (2.0 * std::f64::consts::PI * t as f64 / 1440.0).sin());
            noisy(lam, u).max(0.0).round()
        })
        .collect()
}

/// Times one online `update` of a fitted model, feeding `y` cyclically.
fn bench_update<M: FittedForecaster>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    model: &mut M,
    y: &[f64],
) {
    g.bench_function(name, |b| {
        let mut i = 0;
        b.iter(|| {
            model.update(black_box(y[i % y.len()]));
            i += 1;
        })
    });
}

/// Times fitting `spec` to every series of `funcs`.
fn bench_refit<F: Forecaster>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    spec: F,
    funcs: &[Vec<f64>],
) {
    g.bench_function(name, |b| {
        b.iter(|| {
            for f in funcs {
                black_box(spec.fit(f).unwrap());
            }
        })
    });
}

fn update(c: &mut Criterion) {
    let y = synthetic(3, 42);
    let mut g = c.benchmark_group("update_per_bin");
    let mut acc = 0.0;
    g.bench_function("baseline_sum", |b| {
        let mut i = 0;
        b.iter(|| {
            acc += black_box(y[i % y.len()]);
            i += 1;
        })
    });
    bench_update(
        &mut g,
        "seasonal_naive",
        &mut SeasonalNaive { season: 1440 }.fit(&y).unwrap(),
        &y,
    );
    bench_update(
        &mut g,
        "seasonal_median",
        &mut SeasonalMedian::new(1440).fit(&y).unwrap(),
        &y,
    );
    let mut ets = Ets::new(1440).fit(&y).unwrap();
    bench_update(&mut g, "ets", &mut ets, &y);
    bench_update(
        &mut g,
        "fourier",
        &mut Fourier::new(1440).fit(&y).unwrap(),
        &y,
    );
    let mut idle = IdleTimeModel::default();
    g.bench_function("idle_observe", |b| {
        let mut i = 0u64;
        b.iter(|| {
            idle.observe(black_box(60_000 + (i * 7919) % 600_000));
            i += 1;
        })
    });
    g.bench_function("ets_sum_quantile_h10", |b| {
        b.iter(|| black_box(ets.sum_quantile(10, 0.9)))
    });
    g.finish();
    black_box(acc);
}

fn refit(c: &mut Criterion) {
    // 14 days of 1-minute history per function; 20 functions per iteration (scaled down from
    // 10k: multiply the per-iteration time by 500).
    let funcs: Vec<Vec<f64>> = (0..20).map(|i| synthetic(14, 1000 + i)).collect();
    let mut g = c.benchmark_group("refit_20_functions_14d");
    g.sample_size(10);
    g.bench_function("baseline_sum", |b| {
        b.iter(|| black_box(funcs.iter().map(|f| f.iter().sum::<f64>()).sum::<f64>()))
    });
    bench_refit(
        &mut g,
        "seasonal_naive",
        SeasonalNaive { season: 1440 },
        &funcs,
    );
    bench_refit(&mut g, "seasonal_median", SeasonalMedian::new(1440), &funcs);
    bench_refit(&mut g, "ets", Ets::new(1440), &funcs);
    bench_refit(&mut g, "holt_damped", Ets::new(1), &funcs);
    // the non-seasonal model's worst case: positive counts whose noise is a share of the rate
    // (±30 %), where the multiplicative-error models are searched too
    let relative: Vec<Vec<f64>> = (0..20)
        .map(|i| synthetic_with(14, 2001 + i, |lam, u| 1.0 + lam * (1.0 + 0.6 * (u - 0.5))))
        .collect();
    bench_refit(&mut g, "holt_damped_relative_noise", Ets::new(1), &relative);
    // over-dispersed counts (exponential noise: variance the rate squared), where calibration
    // also checks the negative binomial's intervals on the training residuals
    let overdispersed: Vec<Vec<f64>> = (0..20)
        .map(|i| synthetic_with(14, 3001 + i, |lam, u| -lam * (1.0 - u).ln()))
        .collect();
    bench_refit(
        &mut g,
        "seasonal_naive_overdispersed",
        SeasonalNaive { season: 1440 },
        &overdispersed,
    );
    bench_refit(&mut g, "fourier", Fourier::new(1440), &funcs);
    g.finish();
}

fn state_bytes(_c: &mut Criterion) {
    // Not a timing: print the serialised (JSON) and in-memory state size per function once.
    let y = synthetic(3, 7);
    let sn = SeasonalNaive { season: 1440 }.fit(&y).unwrap();
    let smed = SeasonalMedian::new(1440).fit(&y).unwrap();
    let ets = Ets::new(1440).fit(&y).unwrap();
    let four = Fourier::new(1440).fit(&y).unwrap();
    let idle = IdleTimeModel::default();
    for (name, json) in [
        ("seasonal_naive", serde_json::to_vec(&sn).unwrap()),
        ("seasonal_median", serde_json::to_vec(&smed).unwrap()),
        ("ets", serde_json::to_vec(&ets).unwrap()),
        ("fourier", serde_json::to_vec(&four).unwrap()),
        ("idle_histogram", serde_json::to_vec(&idle).unwrap()),
    ] {
        println!("state_bytes/{name}: {} bytes of JSON", json.len());
    }
}

criterion_group!(benches, update, refit, state_bytes);
criterion_main!(benches);
