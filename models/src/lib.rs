//! prewarm-models: forecasters, idle-time models, anomaly detectors and backtest metrics.
//!
//! Everything here is pure: no I/O, no async, no wall clock. Time, when a model needs it, is
//! passed in by the caller.

pub mod arima;
pub mod error;

pub use error::ModelError;
