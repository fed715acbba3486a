//! The results of a simulation run: the JSON contract of `prewarm simulate --json` and the
//! table printed on stdout.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Size of the trace that was replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// Functions in the trace.
    pub functions: u64,
    /// Invocations replayed.
    pub invocations: u64,
    /// Minutes covered.
    pub minutes: u64,
}

/// The platform-model parameters of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    /// RNG seed.
    pub seed: u64,
    /// Cold-start delay, ms.
    pub cold_start_ms: u64,
    /// Invocations per instance.
    pub concurrency: u32,
    /// Cluster capacity in GB, if limited.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_gb: Option<f64>,
}

/// Distribution across functions of each function's cold-start percentage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FunctionPct {
    /// Median function.
    pub p50: f64,
    /// 75th percentile (the customary headline).
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Mean over functions.
    pub mean: f64,
}

/// Invocation latency percentiles, ms, including cold-start delay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// One policy's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    /// The policy exactly as given in `--policy`.
    pub policy: String,
    /// Invocations.
    pub invocations: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Cold starts / invocations.
    pub cold_start_ratio: f64,
    /// Per-function cold-start % across functions with at least one invocation.
    pub function_cold_start_pct: FunctionPct,
    /// Σ memory × idle loaded time, GB·s.
    pub wasted_memory_gb_s: f64,
    /// Wasted memory relative to a fixed 10-minute keep-alive on the same trace.
    pub wasted_memory_vs_fixed10: Option<f64>,
    /// Latency percentiles.
    pub latency_ms: Latency,
    /// Pre-warm loads.
    pub prewarms: u64,
    /// Capacity evictions.
    pub evictions: u64,
    /// Loads beyond capacity because nothing idle could be evicted.
    #[serde(default)]
    pub capacity_overflows: u64,
    /// Events processed.
    pub events: u64,
    /// Wall-clock seconds spent simulating this policy.
    pub wall_seconds: f64,
    /// What the `--shadow` policy would have done beside this one (decisions computed on
    /// this policy's run, never applied).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shadow: Option<ShadowResult>,
}

/// A shadow policy's decisions next to an applied policy's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowResult {
    /// The shadow policy exactly as given in `--shadow`.
    pub policy: String,
    /// Its decisions, summed over functions.
    #[serde(flatten)]
    pub stats: prewarm_scaler::policy::ShadowStats,
}

/// The whole report (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Trace size.
    pub trace: TraceSummary,
    /// Platform model.
    pub config: ConfigSummary,
    /// One row per policy, in the order given.
    pub results: Vec<PolicyResult>,
    /// Pareto sweep rows (`--sweep`), same schema as `results`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sweep: Vec<PolicyResult>,
}

impl Report {
    /// The table printed on stdout.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "trace: {} functions, {} invocations, {} minutes; seed {}, cold start {} ms, concurrency {}",
            self.trace.functions,
            self.trace.invocations,
            self.trace.minutes,
            self.config.seed,
            self.config.cold_start_ms,
            self.config.concurrency
        );
        let _ = writeln!(
            s,
            "{:<28} {:>10} {:>8} {:>7} {:>7} {:>7} {:>12} {:>7} {:>8} {:>9} {:>9} {:>7}",
            "policy",
            "cold",
            "cold%",
            "fn p50",
            "fn p75",
            "fn p90",
            "waste GB·s",
            "vs f10",
            "lat p50",
            "lat p99",
            "prewarms",
            "Mev/s"
        );
        for r in &self.results {
            let _ = writeln!(s, "{}", row(r));
        }
        for r in &self.results {
            if let Some(sh) = &r.shadow {
                let _ = writeln!(s, "{}", shadow_line(&r.policy, sh));
            }
        }
        if !self.sweep.is_empty() {
            let _ = writeln!(s, "sweep:");
            for r in &self.sweep {
                let _ = writeln!(s, "{}", row(r));
            }
        }
        s
    }
}

fn row(r: &PolicyResult) -> String {
    format!(
        "{:<28} {:>10} {:>8.3} {:>7.2} {:>7.2} {:>7.2} {:>12.1} {:>7} {:>8.0} {:>9.0} {:>9} {:>7.2}",
        r.policy,
        r.cold_starts,
        100.0 * r.cold_start_ratio,
        r.function_cold_start_pct.p50,
        r.function_cold_start_pct.p75,
        r.function_cold_start_pct.p90,
        r.wasted_memory_gb_s,
        r.wasted_memory_vs_fixed10
            .map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "-".into()),
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.prewarms,
        if r.wall_seconds > 0.0 {
            r.events as f64 / r.wall_seconds / 1e6
        } else {
            0.0
        },
    )
}

fn shadow_line(applied: &str, sh: &ShadowResult) -> String {
    let st = &sh.stats;
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    format!(
        "shadow {} beside {applied}: instance ready at {:.1} % of idle arrivals (applied {:.1} %), \
window memory {:.1} GB·s (applied {:.1}), same idle decision {:.1} %, scale-out at {} of {} \
ticks (+{} instances), {} pre-warm plans",
        sh.policy,
        pct(st.shadow_ready_hits, st.idle_arrivals),
        pct(st.applied_ready_hits, st.idle_arrivals),
        st.shadow_window_gb_s,
        st.applied_window_gb_s,
        pct(st.idle_agree, st.idle_decisions),
        st.scale_out,
        st.ticks,
        st.instances_added,
        st.shadow_prewarm_plans,
    )
}
