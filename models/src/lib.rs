//! prewarm-models: forecasters, idle-time models, anomaly detectors and backtest metrics.
//!
//! Everything here is pure: no I/O, no async, no wall clock. Time, when a model needs it, is
//! passed in by the caller.

pub mod anomaly;
pub mod arima;
pub mod cad;
pub mod error;
pub mod ets;
pub mod forecast;
pub mod fourier;
pub mod idle;
pub mod nab;
pub mod optim;
pub mod regression;
pub mod season;
pub mod select;
pub mod smedian;
pub mod snaive;
pub mod stats;

pub use error::ModelError;
