//! `prewarm loadgen`: a load and soak generator. Streams telemetry for N synthetic functions at
//! R samples/s into a running server for a bounded time while a KEDA-role client polls
//! GetMetrics and IsActive as KEDA would; reports throughput, latency percentiles and the
//! server's resident memory over time (table, JSON and an SVG plot), and fails on any error.

use crate::cmd::{ExitError, EXIT_INTERRUPTED};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use prewarm_scaler::service::proto::externalscaler::{
    external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef,
};
use prewarm_scaler::service::proto::prewarm::v1::{
    telemetry_client::TelemetryClient, IngestRequest, Sample,
};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arguments of `prewarm loadgen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Server gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    pub addr: String,
    /// Server admin address (`host:port`), scraped for `process_resident_memory_bytes`
    /// [default: no memory figures].
    #[arg(long)]
    pub admin: Option<String>,
    /// Number of synthetic functions (`<prefix>00000` ...).
    #[arg(long, default_value_t = 10_000)]
    pub functions: usize,
    /// Target telemetry rate, samples per second over all functions.
    #[arg(long, default_value_t = 1_000_000)]
    pub rate: u64,
    /// How long to run (`30s`, `10m`, ...).
    #[arg(long, default_value = "60s")]
    pub duration: String,
    /// Memory growth is measured from the end of this warm-up.
    #[arg(long, default_value = "60s")]
    pub warmup: String,
    /// Samples per Ingest call (the server decodes a message on one worker: batches of ~1000
    /// keep KEDA calls that share the worker under 1 ms p99).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Concurrent telemetry senders (each one call in flight, on its own connection).
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// KEDA-role calls per second (GetMetrics and IsActive alternately, random functions)
    /// [default: functions / 30 s, KEDA's default polling interval].
    #[arg(long)]
    pub poll_rate: Option<f64>,
    /// Seconds between report lines and memory readings.
    #[arg(long, default_value = "10s")]
    pub interval: String,
    /// Function id prefix.
    #[arg(long, default_value = "loadgen/fn-")]
    pub prefix: String,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write throughput, latency and memory over time as an SVG plot here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Fail (exit 1) when resident memory after warm-up grows by more than this many percent.
    #[arg(long)]
    pub max_rss_growth: Option<f64>,
    /// Seed of the synthetic rates.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// TLS and token options.
    #[command(flatten)]
    pub client: crate::cmd::client::ClientArgs,
}

/// Latency percentiles of one kind of call, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Calls measured.
    pub calls: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest call.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of `micros` (sorted in place).
    fn of(micros: &mut [u32]) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        micros.sort_unstable();
        let at = |p: f64| {
            let i = ((micros.len() as f64 * p).ceil() as usize).clamp(1, micros.len()) - 1;
            f64::from(micros[i]) / 1000.0
        };
        Self {
            calls: micros.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// One report interval.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalRow {
    /// Seconds since the start (end of the interval).
    pub t_s: f64,
    /// Samples acknowledged per second in the interval.
    pub samples_per_s: f64,
    /// Ingest call latency.
    pub ingest: Latency,
    /// GetMetrics latency.
    pub get_metrics: Latency,
    /// IsActive latency.
    pub is_active: Latency,
    /// Server resident memory at the end of the interval, if read.
    pub rss_bytes: Option<u64>,
}

/// Memory figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RssSummary {
    /// Resident memory at the end of warm-up.
    pub after_warmup_bytes: u64,
    /// Highest reading after warm-up.
    pub max_after_warmup_bytes: u64,
    /// Last reading.
    pub end_bytes: u64,
    /// (max after warm-up − at warm-up) ÷ at warm-up, percent.
    pub growth_pct: f64,
}

/// The report of a run (also the JSON written by `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Functions simulated.
    pub functions: usize,
    /// Target samples per second.
    pub target_rate: u64,
    /// Seconds run.
    pub duration_s: f64,
    /// Warm-up seconds.
    pub warmup_s: f64,
    /// Samples sent.
    pub sent: u64,
    /// Samples the server accepted.
    pub accepted: u64,
    /// Samples the server rejected.
    pub rejected: u64,
    /// Failed calls (transport errors and error statuses), telemetry and KEDA.
    pub errors: u64,
    /// The first few error messages.
    pub first_errors: Vec<String>,
    /// Accepted samples per second over the whole run.
    pub achieved_rate: f64,
    /// Ingest latency over the run.
    pub ingest: Latency,
    /// GetMetrics latency over the run.
    pub get_metrics: Latency,
    /// IsActive latency over the run.
    pub is_active: Latency,
    /// Memory after warm-up (when the admin port was read).
    pub rss: Option<RssSummary>,
    /// Per-interval rows.
    pub intervals: Vec<IntervalRow>,
}

/// Counters and latency samples shared by the workers; drained every interval.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    lat: Mutex<Lat>,
}

#[derive(Default)]
struct Lat {
    ingest: Vec<u32>,
    get_metrics: Vec<u32>,
    is_active: Vec<u32>,
}

impl Shared {
    fn error(&self, what: &str, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.note(what, e);
    }

    /// Keeps the first few problems for the report.
    fn note(&self, what: &str, e: impl std::fmt::Display) {
        if let Ok(mut v) = self.first_errors.lock() {
            if v.len() < 10 {
                v.push(format!("{what}: {e}"));
            }
        }
    }

    fn record(&self, pick: fn(&mut Lat) -> &mut Vec<u32>, started: Instant) {
        let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        if let Ok(mut l) = self.lat.lock() {
            pick(&mut l).push(us);
        }
    }

    fn take_lat(&self) -> Lat {
        self.lat
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

fn duration_arg(key: &str, s: &str) -> anyhow::Result<Duration> {
    prewarm_scaler::policy::parse_duration_ms(s)
        .map(Duration::from_millis)
        .map_err(|e| ExitError::config(format!("config key `--{key}`: {e}")))
}

/// Per-function synthetic load: a mean rate (log-uniform 0.01–100 /s) with a daily wave.
struct Load {
    ids: Vec<String>,
    base_per_ms: Vec<f64>,
    phase: Vec<f64>,
}

impl Load {
    fn new(prefix: &str, n: usize, seed: u64) -> Self {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let ids = (0..n).map(|i| format!("{prefix}{i:05}")).collect();
        let base_per_ms = (0..n)
            .map(|_| 10f64.powf(rng.random_range(-2.0..2.0)) / 1000.0)
            .collect();
        let phase = (0..n)
            .map(|_| rng.random_range(0.0..std::f64::consts::TAU))
            .collect();
        Self {
            ids,
            base_per_ms,
            phase,
        }
    }

    /// The sample of function `f` for the bin `[start, start + width)`.
    fn sample(&self, f: usize, start: i64, width: i64, rng: &mut impl Rng) -> Sample {
        let day = std::f64::consts::TAU * (start as f64 / 86_400_000.0);
        let mean = self.base_per_ms[f] * width as f64 * (1.0 + 0.5 * (day + self.phase[f]).sin());
        // Stochastic rounding keeps integer counts with the right mean.
        let n = (mean + rng.random::<f64>()).floor();
        Sample {
            function_id: self.ids[f].clone(),
            bin_start_ms: start,
            bin_width_ms: width,
            invocations: n,
            concurrency: Some(mean * 100.0 / width as f64),
            mean_duration_ms: Some(100.0),
            cold_starts: None,
        }
    }
}

/// The send schedule: batch `j` of round `r` covers functions `[c·B, (c+1)·B)` and is due at
/// `(r·N + c·B) / R` seconds; round `r`'s bins start at `t0 + r·N·1000/R` ms.
struct Schedule {
    n: u64,
    batch: u64,
    per_round: u64,
    rate: u64,
    t0_ms: i64,
}

impl Schedule {
    fn due(&self, j: u64) -> Duration {
        let (r, c) = (j / self.per_round, j % self.per_round);
        Duration::from_secs_f64((r * self.n + c * self.batch) as f64 / self.rate as f64)
    }

    fn bin_start(&self, r: u64) -> i64 {
        self.t0_ms + (u128::from(r) * u128::from(self.n) * 1000 / u128::from(self.rate)) as i64
    }

    /// Round, function range and bin of batch `j`.
    fn batch(&self, j: u64) -> (std::ops::Range<usize>, i64, i64) {
        let (r, c) = (j / self.per_round, j % self.per_round);
        let lo = (c * self.batch) as usize;
        let hi = ((c + 1) * self.batch).min(self.n) as usize;
        let start = self.bin_start(r);
        let width = (self.bin_start(r + 1) - start).max(1);
        (lo..hi, start, width)
    }
}

/// Reads `process_resident_memory_bytes` from the server's admin `/metrics`.
async fn scrape_rss(admin: &str) -> anyhow::Result<u64> {
    let mut s = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(admin),
    )
    .await
    .context("timed out")?
    .with_context(|| format!("cannot connect to the admin port {admin}"))?;
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {admin}\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut body))
        .await
        .context("timed out reading /metrics")??;
    body.lines()
        .find_map(|l| {
            l.strip_prefix("process_resident_memory_bytes ")
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map(|v| v as u64)
        .ok_or_else(|| anyhow::anyhow!("{admin}/metrics has no process_resident_memory_bytes"))
}

fn keda_ref(id: &str) -> ScaledObjectRef {
    ScaledObjectRef {
        name: id.rsplit('/').next().unwrap_or(id).to_string(),
        namespace: "loadgen".into(),
        scaler_metadata: HashMap::from([("function".to_string(), id.to_string())]),
    }
}

/// Runs `prewarm loadgen`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let duration = duration_arg("duration", &args.duration)?;
    let warmup = duration_arg("warmup", &args.warmup)?;
    let interval = duration_arg("interval", &args.interval)?.max(Duration::from_millis(100));
    for (key, v) in [
        ("functions", args.functions as u64),
        ("rate", args.rate),
        ("batch", args.batch as u64),
        ("connections", args.connections as u64),
    ] {
        if v == 0 {
            return Err(ExitError::config(format!(
                "config key `--{key}`: must be at least 1"
            )));
        }
    }
    let poll_rate = args
        .poll_rate
        .unwrap_or((args.functions as f64 / 30.0).max(1.0));
    if !poll_rate.is_finite() || poll_rate < 0.0 {
        return Err(ExitError::config(
            "config key `--poll-rate`: must be a non-negative number",
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let (s, i) = (stop.clone(), interrupted.clone());
        let _ = ctrlc::set_handler(move || {
            i.store(true, Ordering::Relaxed);
            s.store(true, Ordering::Relaxed);
        });
    }
    // The telemetry senders share one thread (the KEDA poller has its own): the server under
    // test shares the machine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = rt.block_on(drive(&args, duration, warmup, interval, poll_rate, stop))?;
    print_summary(&report);
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
        outln!("report: {}", p.display());
    }
    if let Some(p) = &args.plot {
        plot(&report, p)?;
        outln!("plot: {}", p.display());
    }
    if interrupted.load(Ordering::Relaxed) {
        return Err(ExitError {
            code: EXIT_INTERRUPTED,
            message: "interrupted: the report covers the time run".into(),
        }
        .into());
    }
    let mut failures = Vec::new();
    if report.errors > 0 {
        failures.push(format!("{} failed calls", report.errors));
    }
    if report.rejected > 0 {
        failures.push(format!("{} samples rejected", report.rejected));
    }
    if let (Some(max), Some(r)) = (args.max_rss_growth, &report.rss) {
        if r.growth_pct > max {
            failures.push(format!(
                "resident memory grew {:.1} % after warm-up (limit {max} %)",
                r.growth_pct
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("load run failed: {}", failures.join("; ")))
    }
}

async fn drive(
    args: &Args,
    duration: Duration,
    warmup: Duration,
    interval: Duration,
    poll_rate: f64,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Report> {
    let load = Arc::new(Load::new(&args.prefix, args.functions, args.seed));
    let shared = Arc::new(Shared::default());
    let n = args.functions as u64;
    let batch = (args.batch as u64).min(n);
    let now = prewarm_scaler::service::grpc::wall_now() as i64;
    let sched = Arc::new(Schedule {
        n,
        batch,
        per_round: n.div_ceil(batch),
        rate: args.rate,
        // Bins start one interval back so the newest stays behind a wall-clock server's clock.
        t0_ms: now - 1000,
    });
    let window = prewarm_scaler::service::server::GRPC_STREAM_WINDOW;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.connections {
        let channel = args
            .client
            .connect(&args.addr, |e| {
                e.initial_stream_window_size(window)
                    .initial_connection_window_size(2 * window)
            })
            .await?;
        let mut client = TelemetryClient::with_interceptor(channel, args.client.bearer()?)
            .max_encoding_message_size(256 << 20);
        let (load, shared, sched, next, stop) = (
            load.clone(),
            shared.clone(),
            sched.clone(),
            next.clone(),
            stop.clone(),
        );
        let seed = args.seed.wrapping_add(w as u64 + 1);
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let due = sched.due(j);
                if due >= duration || stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
                let (fns, start, width) = sched.batch(j);
                let samples: Vec<Sample> = fns
                    .map(|f| load.sample(f, start, width, &mut rng))
                    .collect();
                shared
                    .sent
                    .fetch_add(samples.len() as u64, Ordering::Relaxed);
                let t = Instant::now();
                // A batch with rejected samples is answered with an error status whose
                // details carry the counts (the good samples were stored).
                let answer = match client.ingest(IngestRequest { samples }).await {
                    Ok(r) => Ok(r.into_inner()),
                    Err(st) => match prost::Message::decode(st.details()) {
                        Ok(r) if !st.details().is_empty() => Ok(r),
                        _ => Err(st),
                    },
                };
                match answer {
                    Ok(r) => {
                        shared.record(|l| &mut l.ingest, t);
                        shared.accepted.fetch_add(r.accepted, Ordering::Relaxed);
                        shared.rejected.fetch_add(r.rejected, Ordering::Relaxed);
                        if let Some(x) = r.rejections.first() {
                            shared.note("rejected", format!("{}: {}", x.reason, x.message));
                        }
                    }
                    Err(st) => shared.error("Ingest", st),
                }
            }
        }));
    }
    if poll_rate > 0.0 {
        let (client, addr, bearer) = (
            args.client.clone(),
            args.addr.clone(),
            args.client.bearer()?,
        );
        let (load, shared, stop) = (load.clone(), shared.clone(), stop.clone());
        let seed = args.seed.wrapping_add(1000);
        let poller = async move {
            let mut keda = match client.connect(&addr, |e| e).await {
                Ok(ch) => ExternalScalerClient::with_interceptor(ch, bearer),
                Err(e) => return shared.error("connect", format!("{e:#}")),
            };
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            // KEDA asks for the metric spec once per ScaledObject, then polls.
            let metric = match keda.get_metric_spec(keda_ref(&load.ids[0])).await {
                Ok(r) => r
                    .into_inner()
                    .metric_specs
                    .first()
                    .map(|m| m.metric_name.clone())
                    .unwrap_or_default(),
                Err(st) => {
                    shared.error("GetMetricSpec", st);
                    String::new()
                }
            };
            let mut k = 0u64;
            loop {
                let due = Duration::from_secs_f64(k as f64 / poll_rate);
                if due >= duration || stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
                let r = keda_ref(&load.ids[rng.random_range(0..load.ids.len())]);
                let t = Instant::now();
                if k.is_multiple_of(2) {
                    let req = GetMetricsRequest {
                        scaled_object_ref: Some(r),
                        metric_name: metric.clone(),
                    };
                    match keda.get_metrics(req).await {
                        Ok(_) => shared.record(|l| &mut l.get_metrics, t),
                        Err(st) => shared.error("GetMetrics", st),
                    }
                } else {
                    match keda.is_active(r).await {
                        Ok(_) => shared.record(|l| &mut l.is_active, t),
                        Err(st) => shared.error("IsActive", st),
                    }
                }
                k += 1;
            }
        };
        // KEDA is another process: the poller gets its own thread and runtime so that its
        // latencies do not include waiting behind the telemetry senders' encoding work.
        tasks.push(tokio::task::spawn_blocking(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(poller),
                Err(e) => eprintln!("error: cannot start the poller's runtime: {e}"),
            }
        }));
    }

    let pb = ProgressBar::new(duration.as_secs());
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    let mut all = Lat::default();
    let mut rss_at_warmup = None;
    let mut rss_max_after = 0u64;
    let mut rss_last = None;
    let mut last_accepted = 0;
    let mut last_t = 0.0;
    let mut rss_error_shown = false;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        let finished = tasks.iter().all(|t| t.is_finished());
        if !finished {
            tokio::select! {
                _ = tick.tick() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if !stop.load(Ordering::Relaxed) && !tasks.iter().all(|t| t.is_finished()) {
                        pb.set_position(started.elapsed().as_secs().min(duration.as_secs()));
                        continue;
                    }
                }
            }
        }
        let t = started.elapsed().as_secs_f64();
        let rss = match &args.admin {
            Some(a) => match scrape_rss(a).await {
                Ok(v) => Some(v),
                Err(e) => {
                    if !rss_error_shown {
                        pb.suspend(|| eprintln!("warning: memory not read: {e:#}"));
                        rss_error_shown = true;
                    }
                    None
                }
            },
            None => None,
        };
        if let Some(v) = rss {
            rss_last = Some(v);
            if t >= warmup.as_secs_f64() {
                match rss_at_warmup {
                    None => rss_at_warmup = Some(v),
                    Some(_) => rss_max_after = rss_max_after.max(v),
                }
            }
        }
        let mut lat = shared.take_lat();
        let accepted = shared.accepted.load(Ordering::Relaxed);
        let done = finished || tasks.iter().all(|t| t.is_finished());
        if done && !rows.is_empty() && t - last_t < interval.as_secs_f64() / 2.0 {
            // The tail after the last full interval: into the totals, not a row of its own.
            all.ingest.extend(lat.ingest);
            all.get_metrics.extend(lat.get_metrics);
            all.is_active.extend(lat.is_active);
            break;
        }
        let row = IntervalRow {
            t_s: t,
            samples_per_s: (accepted - last_accepted) as f64 / (t - last_t).max(1e-9),
            ingest: Latency::of(&mut lat.ingest),
            get_metrics: Latency::of(&mut lat.get_metrics),
            is_active: Latency::of(&mut lat.is_active),
            rss_bytes: rss,
        };
        let line = format!(
            "{:>6.0} s  {:>9.0} samples/s  ingest p50 {:>7.2} ms p99 {:>7.2} ms  GetMetrics p50 {:>6.3} ms p99 {:>6.3} ms  RSS {}  errors {}",
            row.t_s,
            row.samples_per_s,
            row.ingest.p50_ms,
            row.ingest.p99_ms,
            row.get_metrics.p50_ms,
            row.get_metrics.p99_ms,
            rss.map_or("-".into(), |v| format!("{:.1} MiB", v as f64 / 1048576.0)),
            shared.errors.load(Ordering::Relaxed),
        );
        pb.suspend(|| outln!("{line}"));
        all.ingest.extend(lat.ingest);
        all.get_metrics.extend(lat.get_metrics);
        all.is_active.extend(lat.is_active);
        rows.push(row);
        last_accepted = accepted;
        last_t = t;
        pb.set_position(started.elapsed().as_secs().min(duration.as_secs()));
        if done {
            break;
        }
    }
    pb.finish_and_clear();
    for t in tasks {
        if let Err(e) = t.await {
            shared.error("worker", e);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = shared.accepted.load(Ordering::Relaxed);
    let rss = rss_at_warmup.map(|w| {
        let max = rss_max_after.max(w);
        RssSummary {
            after_warmup_bytes: w,
            max_after_warmup_bytes: max,
            end_bytes: rss_last.unwrap_or(w),
            growth_pct: (max - w) as f64 / w.max(1) as f64 * 100.0,
        }
    });
    let first_errors = shared
        .first_errors
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    Ok(Report {
        functions: args.functions,
        target_rate: args.rate,
        duration_s: elapsed,
        warmup_s: warmup.as_secs_f64(),
        sent: shared.sent.load(Ordering::Relaxed),
        accepted,
        rejected: shared.rejected.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        first_errors,
        achieved_rate: accepted as f64 / elapsed.max(1e-9),
        ingest: Latency::of(&mut all.ingest),
        get_metrics: Latency::of(&mut all.get_metrics),
        is_active: Latency::of(&mut all.is_active),
        rss,
        intervals: rows,
    })
}

fn print_summary(r: &Report) {
    outln!(
        "{} functions, {:.0} s: sent {} samples, accepted {}, rejected {}, failed calls {}",
        r.functions,
        r.duration_s,
        r.sent,
        r.accepted,
        r.rejected,
        r.errors
    );
    outln!(
        "throughput {:.0} samples/s (target {})",
        r.achieved_rate,
        r.target_rate
    );
    for (name, l) in [
        ("Ingest", r.ingest),
        ("GetMetrics", r.get_metrics),
        ("IsActive", r.is_active),
    ] {
        outln!(
            "{name:<10} {:>8} calls  p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
            l.calls,
            l.p50_ms,
            l.p99_ms,
            l.max_ms
        );
    }
    if let Some(m) = &r.rss {
        outln!(
            "server RSS: {:.1} MiB after {:.0} s warm-up, max {:.1} MiB after, {:.1} MiB at the end: growth {:.2} %",
            m.after_warmup_bytes as f64 / 1048576.0,
            r.warmup_s,
            m.max_after_warmup_bytes as f64 / 1048576.0,
            m.end_bytes as f64 / 1048576.0,
            m.growth_pct
        );
    }
    for e in &r.first_errors {
        outln!("  error: {e}");
    }
}

/// Three stacked panels over time: throughput, latency p99, server RSS.
fn plot(r: &Report, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let panels = root.split_evenly((3, 1));
    let t_max = r.intervals.last().map_or(1.0, |x| x.t_s).max(1.0);
    type Series<'a> = Vec<(&'a str, RGBColor, Vec<(f64, f64)>)>;
    let series: [(&str, Series); 3] = [
        (
            "accepted samples/s",
            vec![(
                "samples/s",
                BLUE,
                r.intervals
                    .iter()
                    .map(|x| (x.t_s, x.samples_per_s))
                    .collect(),
            )],
        ),
        (
            "latency p99 (ms)",
            vec![
                (
                    "Ingest",
                    BLUE,
                    r.intervals
                        .iter()
                        .map(|x| (x.t_s, x.ingest.p99_ms))
                        .collect(),
                ),
                (
                    "GetMetrics",
                    RED,
                    r.intervals
                        .iter()
                        .map(|x| (x.t_s, x.get_metrics.p99_ms))
                        .collect(),
                ),
            ],
        ),
        (
            "server RSS (MiB)",
            vec![(
                "RSS",
                BLACK,
                r.intervals
                    .iter()
                    .filter_map(|x| x.rss_bytes.map(|v| (x.t_s, v as f64 / 1048576.0)))
                    .collect(),
            )],
        ),
    ];
    for (area, (title, lines)) in panels.iter().zip(series.iter()) {
        let y_max = lines
            .iter()
            .flat_map(|l| l.2.iter().map(|p| p.1))
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(*title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .draw()
            .map_err(|e| fail(&e))?;
        for (name, color, pts) in lines {
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color))
                .map_err(|e| fail(&e))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        }
        if lines.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| fail(&e))?;
        }
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u32> = (1..=100).rev().map(|x| x * 1000).collect();
        let l = Latency::of(&mut v);
        assert_eq!(l.calls, 100);
        assert_eq!(l.p50_ms, 50.0);
        assert_eq!(l.p99_ms, 99.0);
        assert_eq!(l.max_ms, 100.0);
        assert_eq!(Latency::of(&mut []), Latency::default());
    }

    #[test]
    fn schedule_covers_every_function_once_per_round_and_bins_tile_time() {
        // 25 functions, batches of 10, 50 samples/s: a round takes 0.5 s and 500 ms of bins.
        let s = Schedule {
            n: 25,
            batch: 10,
            per_round: 3,
            rate: 50,
            t0_ms: 1_000,
        };
        assert_eq!(s.batch(0), (0..10, 1_000, 500));
        assert_eq!(s.batch(2), (20..25, 1_000, 500));
        assert_eq!(s.batch(3), (0..10, 1_500, 500));
        assert_eq!(s.due(1), Duration::from_millis(200));
        assert_eq!(s.due(3), Duration::from_millis(500));
        // Rates above 1000 samples/s per function still give bins at least 1 ms wide.
        let fast = Schedule {
            n: 1,
            batch: 1,
            per_round: 1,
            rate: 5_000,
            t0_ms: 0,
        };
        assert_eq!(fast.batch(7).2, 1);
    }

    #[test]
    fn synthetic_load_has_the_configured_mean() {
        let load = Load::new("t/", 3, 7);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let total: f64 = (0..10_000)
            .map(|k| load.sample(0, k * 8_640, 8_640, &mut rng).invocations)
            .sum();
        // Over whole days the wave averages out: the total is the base rate times the time.
        let expect = load.base_per_ms[0] * 8_640.0 * 10_000.0;
        assert!(
            (total - expect).abs() <= 0.02 * expect + 50.0,
            "{total} vs {expect}"
        );
    }
}
