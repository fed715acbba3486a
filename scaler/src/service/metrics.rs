//! Prometheus metrics of the service (`prewarm_*`), with per-function labels only for the first
//! `metrics_function_labels` functions (the cardinality cap); the rest are counted in
//! `prewarm_function_labels_dropped_total`.

use super::validate::RejectReason;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::Mutex;

/// All metrics of one service instance (own registry, so tests can run several servers).
pub struct Metrics {
    registry: Registry,
    /// Samples accepted.
    pub samples_ingested: IntCounter,
    /// Samples rejected, by reason.
    pub samples_rejected: IntCounterVec,
    /// Decisions computed by a policy tick, by reason.
    pub decisions: IntCounterVec,
    /// Decisions that changed the desired count or activity.
    pub decision_changes: IntCounter,
    /// Duration of one tick over all functions.
    pub tick_seconds: Histogram,
    /// Functions held.
    pub functions: IntGauge,
    /// Desired replicas per function (capped label set).
    pub function_desired: IntGaugeVec,
    /// Functions left without their own label because of the cap.
    pub labels_dropped: IntCounter,
    /// Redis flushes, by outcome.
    pub redis_flushes: IntCounterVec,
    /// Duration of a Redis flush.
    pub redis_flush_seconds: Histogram,
    /// 1 while Redis persistence works, 0 while it is degraded (unset without `--redis-url`).
    pub redis_up: IntGauge,
    /// KEDA external-scaler calls, by method.
    pub keda_calls: IntCounterVec,
    /// Actuator platform calls, by target kind, operation and outcome.
    pub actuator_calls: IntCounterVec,
    /// Actuator writes (shadow mode: writes it would have made), by target kind and mode.
    pub actuator_writes: IntCounterVec,
    /// Actuated targets whose last platform call failed.
    pub actuator_failing: IntGauge,
    /// Per actuated target (capped label set): desired (after guardrails) and observed values.
    pub actuator_value: IntGaugeVec,
    /// Certificate / token file reloads, by what (tls, tokens) and outcome (ok, error).
    pub credential_reloads: IntCounterVec,
    /// 1 while the newest version of a credential file is rejected (the old one is in use).
    pub credential_reload_failing: IntGaugeVec,
    /// TLS handshakes that failed (junk, no or untrusted client certificate, timeout).
    pub tls_handshake_failures: IntCounter,
    /// RPCs refused by the bearer-token check, by reason (missing, invalid).
    pub auth_failures: IntCounterVec,
    label_cap: usize,
    labelled: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Names are static and unique, so registration cannot fail; ignore a duplicate anyway.
    let _ = r.register(Box::new(c.clone()));
    c
}

impl Metrics {
    /// Fresh metrics with a cap of `label_cap` per-function label values.
    pub fn new(label_cap: usize) -> Result<Self, prometheus::Error> {
        let r = Registry::new();
        let m = Metrics {
            samples_ingested: reg(
                &r,
                IntCounter::new(
                    "prewarm_samples_ingested_total",
                    "Telemetry samples accepted",
                )?,
            ),
            samples_rejected: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "prewarm_samples_rejected_total",
                        "Telemetry samples rejected",
                    ),
                    &["reason"],
                )?,
            ),
            decisions: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "prewarm_decisions_total",
                        "Policy ticks that produced a decision",
                    ),
                    &["reason"],
                )?,
            ),
            decision_changes: reg(
                &r,
                IntCounter::new(
                    "prewarm_decision_changes_total",
                    "Decisions that changed desired replicas or activity",
                )?,
            ),
            tick_seconds: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "prewarm_tick_duration_seconds",
                        "Time to tick every function once",
                    )
                    .buckets(vec![
                        0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
                    ]),
                )?,
            ),
            functions: reg(&r, IntGauge::new("prewarm_functions", "Functions held")?),
            function_desired: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "prewarm_function_desired_replicas",
                        "Desired replicas per function (first N functions only)",
                    ),
                    &["function"],
                )?,
            ),
            labels_dropped: reg(
                &r,
                IntCounter::new(
                    "prewarm_function_labels_dropped_total",
                    "Functions not given a per-function label because of the cap",
                )?,
            ),
            redis_flushes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("prewarm_redis_flushes_total", "Redis flushes"),
                    &["outcome"],
                )?,
            ),
            redis_flush_seconds: reg(
                &r,
                Histogram::with_opts(HistogramOpts::new(
                    "prewarm_redis_flush_duration_seconds",
                    "Time of one Redis flush",
                ))?,
            ),
            redis_up: reg(
                &r,
                IntGauge::new(
                    "prewarm_redis_up",
                    "1 while Redis persistence works, 0 while degraded (serving from memory)",
                )?,
            ),
            keda_calls: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("prewarm_keda_requests_total", "KEDA external-scaler calls"),
                    &["method"],
                )?,
            ),
            actuator_calls: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "prewarm_actuator_calls_total",
                        "Platform API calls of the actuators",
                    ),
                    &["kind", "op", "outcome"],
                )?,
            ),
            actuator_writes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "prewarm_actuator_writes_total",
                        "Actuator writes (mode=shadow: computed, not written)",
                    ),
                    &["kind", "mode"],
                )?,
            ),
            actuator_failing: reg(
                &r,
                IntGauge::new(
                    "prewarm_actuator_targets_failing",
                    "Actuated targets whose last platform call failed",
                )?,
            ),
            actuator_value: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "prewarm_actuator_target_value",
                        "Per actuated target: desired (after guardrails) and observed values",
                    ),
                    &["function", "state"],
                )?,
            ),
            credential_reloads: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "prewarm_credential_reloads_total",
                        "Reloads of changed certificate, key or token files",
                    ),
                    &["what", "outcome"],
                )?,
            ),
            credential_reload_failing: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "prewarm_credential_reload_failing",
                        "1 while a changed credential file is rejected and the previous one is kept",
                    ),
                    &["what"],
                )?,
            ),
            tls_handshake_failures: reg(
                &r,
                IntCounter::new(
                    "prewarm_tls_handshake_failures_total",
                    "TLS handshakes on the gRPC port that failed or timed out",
                )?,
            ),
            auth_failures: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "prewarm_auth_failures_total",
                        "RPCs refused by the bearer-token check",
                    ),
                    &["reason"],
                )?,
            ),
            label_cap,
            labelled: Mutex::new(HashSet::new()),
            registry: r,
        };
        for reason in RejectReason::ALL {
            m.samples_rejected.with_label_values(&[reason.as_str()]);
        }
        // The standard process_* series (resident memory, CPU seconds, open fds), read from
        // /proc at scrape time: what `prewarm loadgen` and dashboards watch for leaks.
        #[cfg(target_os = "linux")]
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(m)
    }

    /// True when `id` has (or now gets) its own label under the cap.
    fn labelled(&self, id: &str) -> bool {
        let Ok(mut set) = self.labelled.lock() else {
            return false;
        };
        if !set.contains(id) {
            if set.len() >= self.label_cap {
                self.labels_dropped.inc();
                return false;
            }
            set.insert(id.to_string());
        }
        true
    }

    /// Sets the per-function desired gauge if the function has (or may get) a label.
    pub fn set_function_desired(&self, id: &str, desired: u32) {
        if self.labelled(id) {
            self.function_desired
                .with_label_values(&[id])
                .set(desired as i64);
        }
    }

    /// Sets an actuated target's desired and observed gauges (under the label cap).
    pub fn set_actuator_values(&self, id: &str, target: u32, observed: Option<u32>) {
        if self.labelled(id) {
            self.actuator_value
                .with_label_values(&[id, "target"])
                .set(target as i64);
            if let Some(o) = observed {
                self.actuator_value
                    .with_label_values(&[id, "observed"])
                    .set(o as i64);
            }
        }
    }

    /// Drops a deleted function's label.
    pub fn forget_function(&self, id: &str) {
        if let Ok(mut set) = self.labelled.lock() {
            if set.remove(id) {
                let _ = self.function_desired.remove_label_values(&[id]);
                let _ = self.actuator_value.remove_label_values(&[id, "target"]);
                let _ = self.actuator_value.remove_label_values(&[id, "observed"]);
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
