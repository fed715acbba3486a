//! Fuzz harnesses: each takes arbitrary bytes, runs them through the real parser or ingestion
//! path, and checks invariants of what comes out. A rejected input is an expected outcome (the
//! harness returns `Err` with the error message); a panic, here or in the code under test, is a
//! bug.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly) and by the stable
//! corpus replay test of the main workspace (`tests/fuzz_corpus.rs`, which includes this file as
//! a module), so both run exactly the same code.

use prewarm_scaler::service::config::{ClockMode, RawConfig, ServiceConfig};
use prewarm_scaler::service::engine::{Engine, MAX_REJECTION_DETAILS};
use prewarm_scaler::service::metrics::Metrics;
use prewarm_scaler::service::proto::prewarm::v1::IngestRequest;
use prewarm_scaler::service::validate::{check_sample, EVENT_FUTURE_MS, WALL_FUTURE_MS};
use prewarm_simulator::trace::azure::{AzureTrace, DayBytes};
use prewarm_simulator::trace::{TraceDay, TraceError, TraceSource};
use std::collections::HashSet;
use std::sync::Arc;

/// Separates the files of a `trace_azure` input: invocations, durations, memory, then the next
/// day's three files, and so on (ASCII record separator, which the Azure CSVs never contain).
pub const FILE_SEPARATOR: u8 = 0x1e;

/// Most days a `trace_azure` input is read as (further files are ignored).
pub const MAX_DAYS: usize = 4;

/// What a `trace_azure` input read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceSummary {
    /// Days read.
    pub days: usize,
    /// Functions with metadata.
    pub functions: usize,
    /// Total invocations.
    pub invocations: u64,
}

/// Splits `data` into days of three files each (see [`FILE_SEPARATOR`]); missing files are
/// empty.
pub fn split_trace_input(data: &[u8]) -> Vec<DayBytes> {
    let parts: Vec<&[u8]> = data.split(|&b| b == FILE_SEPARATOR).collect();
    parts
        .chunks(3)
        .take(MAX_DAYS)
        .map(|c| {
            let file = |i: usize| c.get(i).map(|f| f.to_vec()).unwrap_or_default();
            DayBytes {
                invocations: file(0),
                durations: file(1),
                memory: file(2),
            }
        })
        .collect()
}

/// An error of an in-memory trace must name the file it is about.
fn trace_error(e: TraceError) -> String {
    let msg = e.to_string();
    assert!(
        msg.starts_with("<memory>/"),
        "a trace error does not name its file: {msg}"
    );
    msg
}

/// Checks one day against what the reader promises (see `prewarm_simulator::trace`).
fn check_day(day: &TraceDay, index: usize, minutes: &mut Option<u32>, functions: &mut usize) {
    assert_eq!(day.day as usize, index, "days are numbered in order");
    assert!(day.minutes > 0, "a day has minutes");
    let m = *minutes.get_or_insert(day.minutes);
    assert_eq!(day.minutes, m, "every day has the same number of minutes");
    assert_eq!(
        u64::from(day.start_minute),
        index as u64 * u64::from(m),
        "day {index} starts where the previous one ended"
    );
    for f in &day.new_functions {
        assert!(
            f.memory_mb.is_finite() && f.memory_mb >= 0.0,
            "memory {} of {}",
            f.memory_mb,
            f.id
        );
        let p = &f.durations.pct;
        assert!(p.iter().all(|x| x.is_finite() && *x >= 0.0), "{p:?}");
        assert!(p.windows(2).all(|w| w[0] <= w[1]), "not monotone: {p:?}");
        for u in [0.0, 0.3, 0.999] {
            assert!(f.durations.sample(u) >= 1);
        }
    }
    *functions += day.new_functions.len();
    let end = u64::from(day.start_minute) + u64::from(day.minutes);
    let mut last_function = None;
    for row in &day.rows {
        assert!(
            (row.function as usize) < *functions,
            "row of function {} but only {functions} have metadata",
            row.function
        );
        assert!(
            last_function < Some(row.function),
            "rows not in ascending function order"
        );
        last_function = Some(row.function);
        assert!(!row.bins.is_empty(), "a row without bins");
        let mut last_minute = None;
        for &(minute, count) in &row.bins {
            assert!(count > 0, "a zero bin");
            assert!(
                u64::from(minute) >= u64::from(day.start_minute) && u64::from(minute) < end,
                "minute {minute} outside day {index}"
            );
            assert!(last_minute < Some(minute), "minutes not increasing");
            last_minute = Some(minute);
        }
    }
}

/// `trace_azure`: reads `data` as up to [`MAX_DAYS`] days of Azure Functions 2019 files
/// ([`split_trace_input`]) with `AzureTrace::from_bytes` (the same reader as `AzureTrace::open`)
/// and drains it, checking every day.
pub fn trace_azure(data: &[u8]) -> Result<TraceSummary, String> {
    let mut t = AzureTrace::from_bytes(split_trace_input(data)).map_err(trace_error)?;
    let mut minutes = None;
    let mut s = TraceSummary {
        days: 0,
        functions: 0,
        invocations: 0,
    };
    while let Some(day) = t.next_day().map_err(trace_error)? {
        check_day(&day, s.days, &mut minutes, &mut s.functions);
        s.days += 1;
        s.invocations += day
            .rows
            .iter()
            .flat_map(|r| r.bins.iter())
            .map(|&(_, n)| u64::from(n))
            .sum::<u64>();
        assert_eq!(t.functions_seen() as usize, s.functions);
    }
    assert!(t.next_day().map_err(trace_error)?.is_none(), "fused at end");
    Ok(s)
}

/// `config_toml`: parses `data` as the `prewarm serve --config` file (UTF-8, like the CLI's
/// `read_to_string`), validates it into a `ServiceConfig`, and builds the engine from it, which
/// must accept every configuration that validation accepts.
pub fn config_toml(data: &[u8]) -> Result<ServiceConfig, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8: {e}"))?;
    let raw = RawConfig::from_toml(text).map_err(|e| e.to_string())?;
    let cfg = raw.validate().map_err(|e| {
        let msg = e.to_string();
        assert!(msg.contains("config key `"), "error names no key: {msg}");
        msg
    })?;
    let iv = cfg.decision_interval_ms;
    assert!((10_000..=600_000).contains(&iv) && iv % 10_000 == 0, "{iv}");
    assert!(cfg.default_max >= 1 && cfg.max_functions >= 1 && cfg.max_batch >= 1);
    assert!(cfg.functions.len() <= cfg.max_functions);
    let mut ids = HashSet::new();
    for f in &cfg.functions {
        assert!(ids.insert(f.id.as_str()), "duplicate id {}", f.id);
        assert!(1 <= f.max && f.min <= f.max, "{f:?}");
        assert!(f.concurrency >= 1, "{f:?}");
    }
    let metrics = Metrics::new(cfg.metrics_function_labels)
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| panic!("metrics of a valid config: {e}"));
    let engine = Engine::new(cfg.clone(), Arc::new(metrics))
        .unwrap_or_else(|e| panic!("the engine refuses a validated config: {e}"));
    assert_eq!(engine.function_count(), cfg.functions.len());
    assert_eq!(engine.list().len(), cfg.functions.len());
    Ok(cfg)
}

/// What a `telemetry` input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetrySummary {
    /// Samples in the request.
    pub samples: usize,
    /// Samples accepted by the first ingestion.
    pub accepted: u64,
    /// Functions held afterwards.
    pub functions: usize,
}

/// A wall clock for validating samples without the engine: 2023-11-14T22:13:20Z.
pub const WALL_NOW_MS: u64 = 1_700_000_000_000;

/// `telemetry`: decodes `data` as a `prewarm.v1.IngestRequest` (the gRPC Ingest body), checks
/// that it re-encodes stably, validates every sample (`validate::check_sample`, wall and event
/// clock), then ingests the batch twice into an engine with the default configuration and the
/// event clock (the second time the clock is set, so both reference paths run, and history
/// merges into existing functions; due ticks run the policies).
pub fn telemetry(data: &[u8]) -> Result<TelemetrySummary, String> {
    use prost::Message;
    let req = IngestRequest::decode(data).map_err(|e| format!("decode: {e}"))?;
    let bytes = req.encode_to_vec();
    let again = IngestRequest::decode(bytes.as_slice())
        .unwrap_or_else(|e| panic!("re-decoding an encoded request: {e}"));
    assert_eq!(again.encode_to_vec(), bytes, "encoding is not stable");
    let samples = req.samples;
    let cfg = ServiceConfig {
        clock: ClockMode::Event,
        ..ServiceConfig::default()
    };
    let default_ms = cfg.default_duration_ms;
    let mut valid = 0u64;
    for s in &samples {
        for (now, future) in [(Some(WALL_NOW_MS), WALL_FUTURE_MS), (None, EVENT_FUTURE_MS)] {
            match check_sample(s, now, future, default_ms) {
                Ok(conc) => {
                    assert!(
                        conc.is_finite() && conc >= 0.0,
                        "concurrency integral {conc}"
                    );
                    valid += u64::from(now.is_none());
                }
                Err((reason, msg)) => assert!(!msg.is_empty(), "{reason:?} without a message"),
            }
        }
    }
    let metrics =
        Metrics::new(cfg.metrics_function_labels).unwrap_or_else(|e| panic!("metrics: {e}"));
    let engine = Engine::new(cfg, Arc::new(metrics))
        .unwrap_or_else(|e| panic!("engine of the default config: {e}"));
    let mut accepted_first = 0;
    for round in 0..2 {
        let out = engine.ingest(&samples, 0);
        assert_eq!(
            out.accepted + out.rejected,
            samples.len() as u64,
            "every sample is accepted or rejected"
        );
        assert_eq!(
            out.rejections.len() as u64,
            out.rejected.min(MAX_REJECTION_DETAILS as u64)
        );
        assert!(
            out.rejections.windows(2).all(|w| w[0].index < w[1].index),
            "rejections in batch order"
        );
        for r in &out.rejections {
            assert!(r.index < samples.len() && !r.message.is_empty(), "{r:?}");
            assert_eq!(r.function_id, samples[r.index].function_id);
        }
        if round == 0 {
            // Without a clock every sample that passes the clock-free checks is accepted.
            assert!(out.accepted <= valid, "{} > {valid}", out.accepted);
            accepted_first = out.accepted;
        }
        if out.accepted > 0 {
            assert!(
                engine.event_now() > 0,
                "accepted samples set the event clock"
            );
        }
    }
    let functions = engine.function_count();
    assert_eq!(engine.list().len(), functions);
    let snap = engine.snapshot();
    assert_eq!(snap.decisions.len(), functions, "one decision per function");
    for d in snap.decisions.values() {
        assert!(engine.model_state(&d.function_id).is_some());
    }
    let (dirty, deleted) = engine.take_dirty();
    assert!(dirty.len() <= functions && deleted.is_empty());
    Ok(TelemetrySummary {
        samples: samples.len(),
        accepted: accepted_first,
        functions,
    })
}
