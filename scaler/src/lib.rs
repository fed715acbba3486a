//! prewarm-scaler: the pure decision core (`policy`) shared by the simulator and the service.
//!
//! The `policy` module is synchronous and deterministic: every call takes the current time as an
//! argument and nothing in it reads a clock or does I/O. The network service is built on top of
//! it behind the `service` feature.

pub mod actuate;
pub mod policy;
#[cfg(feature = "service")]
pub mod service;

pub use policy::{
    Decision, Explain, FunctionPolicy, FunctionSpec, IdleAction, Millis, Observation, PolicyError,
    PolicyFactory, PolicySpec, PoolView, Reason,
};
