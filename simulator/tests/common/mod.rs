//! Helpers shared by the simulator's integration tests: function metadata and a one-call run.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use prewarm_scaler::policy::PolicyFactory;
use prewarm_simulator::report::Report;
use prewarm_simulator::run::{simulate, NoProgress, RunOptions};
use prewarm_simulator::trace::{DurationTable, FunctionMeta, MemoryTrace};
use std::sync::atomic::AtomicBool;

/// A function of `mem` MB whose executions all last 100 ms.
pub fn meta(id: &str, mem: f64) -> FunctionMeta {
    FunctionMeta {
        id: id.into(),
        app: id.into(),
        owner: "o".into(),
        trigger: None,
        memory_mb: mem,
        durations: DurationTable::constant(100.0),
    }
}

/// Simulates `trace` under each factory (optionally with a cluster capacity) and returns the
/// report.
pub fn run(
    mut trace: MemoryTrace,
    factories: Vec<Box<dyn PolicyFactory>>,
    capacity_gb: Option<f64>,
) -> Report {
    simulate(
        &mut trace,
        &factories,
        None,
        &RunOptions {
            capacity_gb,
            ..RunOptions::default()
        },
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap()
    .report
}
