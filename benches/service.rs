//! Service benchmarks: telemetry ingestion throughput (in-process and over loopback gRPC with
//! batching), KEDA GetMetrics latency with 10k functions while ingesting (p50/p99 printed), and
//! resident memory per function with full tiered history (printed).
//!
//! `cargo bench --bench service` (release); CI runs it in test mode (`-- --test`).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)] // criterion_group! generates an undocumented pub fn

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prewarm_scaler::service::grpc::{wall_now, METRIC_NAME};
use prewarm_scaler::service::proto::externalscaler::external_scaler_client::ExternalScalerClient;
use prewarm_scaler::service::proto::externalscaler::{GetMetricsRequest, ScaledObjectRef};
use prewarm_scaler::service::proto::prewarm::v1::telemetry_client::TelemetryClient;
use prewarm_scaler::service::proto::prewarm::v1::{IngestRequest, Sample};
use prewarm_scaler::service::server::GRPC_STREAM_WINDOW;
use prewarm_scaler::service::{spawn, RawConfig, ServiceHandle};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const FUNCTIONS: usize = 10_000;
const BATCH: usize = 10_000;

/// True when the command line's filter (criterion's positional argument) selects `name`, so
/// that the printed measurements can be run alone: `cargo bench --bench service -- memory`.
fn wanted(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// Criterion's test mode (`cargo test --benches`, CI): no `--bench` argument. Loops are cut
/// down so the benches only prove they run.
fn test_mode() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn ids() -> Vec<String> {
    (0..FUNCTIONS).map(|i| format!("ns/fn-{i:05}")).collect()
}

/// One sample per function (10 s bins, `bin` bins before now).
fn batch(ids: &[String], now: i64, bin: i64) -> Vec<Sample> {
    let t = (now / 10_000 - 1 - bin) * 10_000;
    ids.iter()
        .take(BATCH)
        .map(|id| Sample {
            function_id: id.clone(),
            bin_start_ms: t,
            bin_width_ms: 10_000,
            invocations: 12.0,
            concurrency: Some(0.8),
            mean_duration_ms: None,
            cold_starts: None,
        })
        .collect()
}

async fn server(extra: &str) -> (ServiceHandle, Channel) {
    let text = format!("grpc_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n{extra}");
    let cfg = RawConfig::from_toml(&text)
        .and_then(|r| r.validate())
        .expect("config");
    let h = spawn(cfg).await.expect("server");
    let ch = Channel::from_shared(format!("http://{}", h.grpc_addr))
        .expect("uri")
        .initial_stream_window_size(GRPC_STREAM_WINDOW)
        .initial_connection_window_size(2 * GRPC_STREAM_WINDOW)
        .connect()
        .await
        .expect("connect");
    (h, ch)
}

fn ingestion(c: &mut Criterion) {
    if !wanted("ingest/engine_10k_batch") && !wanted("ingest/grpc_2x10k_batches") {
        return;
    }
    let rt = runtime();
    let ids = ids();
    let now = wall_now() as i64;
    let (h, ch) = rt.block_on(server("max_functions = 20000\n"));
    let engine = h.engine().clone();
    let reqs: Vec<Vec<Sample>> = (0..8).map(|b| batch(&ids, now, b)).collect();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut k = 0;
    g.bench_function("engine_10k_batch", |b| {
        b.iter(|| {
            k += 1;
            engine.ingest(&reqs[k % reqs.len()], wall_now())
        })
    });
    // Over loopback: 2 client connections sending 10k-sample batches concurrently.
    let ch2 = rt.block_on(async {
        Channel::from_shared(format!("http://{}", h.grpc_addr))
            .expect("uri")
            .initial_stream_window_size(GRPC_STREAM_WINDOW)
            .initial_connection_window_size(2 * GRPC_STREAM_WINDOW)
            .connect()
            .await
            .expect("connect")
    });
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("grpc_2x10k_batches", |b| {
        b.iter(|| {
            k += 1;
            let r1 = IngestRequest {
                samples: reqs[k % reqs.len()].clone(),
            };
            let r2 = IngestRequest {
                samples: reqs[(k + 1) % reqs.len()].clone(),
            };
            let (mut t1, mut t2) = (
                TelemetryClient::new(ch.clone()),
                TelemetryClient::new(ch2.clone()),
            );
            rt.block_on(async move {
                let (a, b) = tokio::join!(t1.ingest(r1), t2.ingest(r2));
                a.expect("ingest");
                b.expect("ingest");
            })
        })
    });
    g.finish();
    rt.block_on(async { h.shutdown().await.expect("shutdown") });
}

fn keda_ref(id: &str) -> ScaledObjectRef {
    ScaledObjectRef {
        name: String::new(),
        namespace: String::new(),
        scaler_metadata: HashMap::from([("function".to_string(), id.to_string())]),
    }
}

fn get_metrics(c: &mut Criterion) {
    if !wanted("keda_get_metrics_10k_functions") {
        return;
    }
    let rt = runtime();
    let ids = ids();
    let now = wall_now() as i64;
    let (h, ch) = rt.block_on(server("max_functions = 20000\n"));
    let mut tel = TelemetryClient::new(ch.clone());
    rt.block_on(async {
        for b in 0..6 {
            tel.ingest(IngestRequest {
                samples: batch(&ids, now, b),
            })
            .await
            .expect("ingest");
        }
    });
    h.engine().tick(wall_now() / 10_000 * 10_000);
    let mut keda = ExternalScalerClient::new(ch.clone());
    let req = |i: usize| GetMetricsRequest {
        scaled_object_ref: Some(keda_ref(&ids[(i * 7919) % ids.len()])),
        metric_name: METRIC_NAME.into(),
    };
    let mut i = 0;
    c.bench_function("keda_get_metrics_10k_functions", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(keda.get_metrics(req(i))).expect("GetMetrics")
        })
    });

    // p50 / p99 while another connection ingests 10k-sample batches back to back.
    let stop = Arc::new(AtomicBool::new(false));
    // The load generator runs on its own single-threaded runtime and connection, as a
    // separate telemetry client would; it shares the 2 cores with the server.
    let ingester = {
        let stop = stop.clone();
        let reqs: Vec<Vec<Sample>> = (0..4).map(|b| batch(&ids, now, b)).collect();
        let addr = format!("http://{}", h.grpc_addr);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let ch = Channel::from_shared(addr)
                    .expect("uri")
                    .initial_stream_window_size(GRPC_STREAM_WINDOW)
                    .initial_connection_window_size(2 * GRPC_STREAM_WINDOW)
                    .connect()
                    .await
                    .expect("connect");
                let mut tel = TelemetryClient::new(ch);
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) && n < 10_000 {
                    let _ = tel
                        .ingest(IngestRequest {
                            samples: reqs[n % reqs.len()].clone(),
                        })
                        .await;
                    n += 1;
                }
                n
            })
        })
    };
    let calls = if test_mode() { 200 } else { 20_000 };
    let mut lat = Vec::with_capacity(calls);
    let started = Instant::now();
    for j in 0..calls {
        let t = Instant::now();
        rt.block_on(keda.get_metrics(req(j))).expect("GetMetrics");
        lat.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let batches = ingester.join().unwrap_or(0);
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "GetMetrics with {FUNCTIONS} functions while ingesting ({} samples/s): p50 {:?} p99 {:?} max {:?} over {calls} calls",
        (batches * BATCH) as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1],
    );
    rt.block_on(async { h.shutdown().await.expect("shutdown") });
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Resident memory per function with every tier full (1 h bins over 28 days), measured as
/// the growth of the process's resident set over `n` functions (so it includes the policy and
/// shadow-pool state, map and snapshot entries and allocator overhead).
fn memory(_c: &mut Criterion) {
    let n = if test_mode() { 20 } else { 5_000 };
    if !wanted("memory") {
        return;
    }
    let rt = runtime();
    let (h, _ch) = rt.block_on(server("max_functions = 20000\n"));
    let engine = h.engine().clone();
    let now = wall_now() as i64;
    let before = rss_bytes();
    for f in 0..n {
        let id = format!("mem/fn-{f:05}");
        let samples: Vec<Sample> = (0..(28 * 24 - 1))
            .map(|k| Sample {
                function_id: id.clone(),
                bin_start_ms: (now / 3_600_000 - 28 * 24 + k) * 3_600_000,
                bin_width_ms: 3_600_000,
                invocations: 100.0,
                concurrency: Some(0.5),
                mean_duration_ms: None,
                cold_starts: None,
            })
            .collect();
        let out = engine.ingest(&samples, wall_now());
        assert_eq!(out.rejected, 0, "{:?}", out.rejections.first());
    }
    let after = rss_bytes();
    println!(
        "resident memory per function with full tiered history: {:.1} KiB ({n} functions, {:.1} MiB)",
        (after.saturating_sub(before)) as f64 / n as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1048576.0
    );
    rt.block_on(async { h.shutdown().await.expect("shutdown") });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = memory, ingestion, get_metrics
}
criterion_main!(benches);
