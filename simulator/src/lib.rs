//! prewarm-simulator: trace readers, the discrete-event platform model, reports and plots.

pub mod engine;
pub mod hist;
pub mod plot;
pub mod queue;
pub mod report;
pub mod run;
pub mod synth;
pub mod trace;
