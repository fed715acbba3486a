//! prewarm-simulator: trace readers, the discrete-event platform model, reports and plots.

pub mod trace;
