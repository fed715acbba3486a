//! The prewarm service (feature `service`): telemetry in over gRPC, per-function tiered
//! history, the decision core ticked on a decision interval, decisions published atomically and
//! served to KEDA (external scaler), sidecars (prewarm.v1) and Prometheus (admin port).
//!
//! Layout:
//! - [`proto`]: generated gRPC code (prewarm.v1, KEDA `externalscaler`) and the descriptor set;
//! - [`config`]: TOML / env / flag configuration and its validation;
//! - [`validate`]: telemetry sample validation;
//! - [`history`]: bounded tiered history per function;
//! - [`engine`]: the in-memory state store, the tick, and the published snapshot;
//! - [`pool`]: the shadow pool through which binned telemetry drives a policy;
//! - [`store`]: persistence (Redis) of history, policy inputs and decisions;
//! - [`grpc`]: the gRPC services; [`admin`]: `/metrics`, `/live`, `/ready`;
//! - [`metrics`]: Prometheus metrics; [`server`]: spawning, shutdown, logging;
//! - [`actuator`]: the tasks that write Knative min-scale and Lambda provisioned concurrency;
//! - [`tls`]: TLS / mutual TLS on the gRPC port; [`auth`]: bearer tokens; [`reload`]: change
//!   detection of certificate, key and token files.
//!
//! Answers for KEDA: a function that is unknown or has no data yet gets `desired = min` of its
//! configuration (0 when unconfigured) and `IsActive = false`, so KEDA keeps polling and the
//! HPA keeps its minimum.

pub mod actuator;
pub mod admin;
pub mod auth;
pub mod config;
pub mod engine;
pub mod grpc;
pub mod history;
pub mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
pub mod persist;
pub mod pool;
pub mod proto;
pub mod reload;
pub mod server;
pub mod store;
pub mod tls;
pub mod validate;

pub use config::{
    AuthConfig, ClockMode, FunctionConfig, LogFormat, RawConfig, ServiceConfig, TlsConfig,
};
pub use engine::{DecisionRecord, Engine};
pub use server::{init_logging, spawn, LoggingGuard, ServiceHandle};

/// Errors of the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad configuration; `key` names the offending key.
    #[error("config key `{key}`: {message}")]
    Config {
        /// The key (e.g. `function[2].policy`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A request argument is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The named thing exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A cap was reached.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(String),
    /// A certificate, key or token file cannot be read or is invalid; `file` names it.
    #[error("{file}: {message}")]
    Credentials {
        /// The file (path as configured).
        file: String,
        /// What is wrong (never the secret itself).
        message: String,
    },
    /// Socket or other I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ServiceError {
    /// A credentials-file error naming `file`.
    pub fn credentials(file: &std::path::Path, message: impl Into<String>) -> Self {
        ServiceError::Credentials {
            file: file.display().to_string(),
            message: message.into(),
        }
    }

    /// A configuration error naming `key`.
    pub fn config(key: &str, message: impl Into<String>) -> Self {
        ServiceError::Config {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(e: ServiceError) -> Self {
        let msg = e.to_string();
        match e {
            ServiceError::Config { .. } | ServiceError::InvalidArgument(_) => {
                tonic::Status::invalid_argument(msg)
            }
            ServiceError::NotFound(_) => tonic::Status::not_found(msg),
            ServiceError::AlreadyExists(_) => tonic::Status::already_exists(msg),
            ServiceError::ResourceExhausted(_) => tonic::Status::resource_exhausted(msg),
            ServiceError::Redis(_) | ServiceError::Io { .. } | ServiceError::Credentials { .. } => {
                tonic::Status::unavailable(msg)
            }
        }
    }
}
