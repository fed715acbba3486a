//! The error type shared by every model in the crate.

use thiserror::Error;

/// Why a model could not be fitted or evaluated.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelError {
    /// The series is shorter than the model needs.
    #[error("series too short: {got} points, need at least {need}")]
    TooShort {
        /// Points supplied.
        got: usize,
        /// Points required.
        need: usize,
    },
    /// The series holds a NaN or infinite value.
    #[error("non-finite value at index {index}")]
    NonFinite {
        /// Position of the offending value.
        index: usize,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A linear system was singular or the fit did not converge.
    #[error("fit failed: {0}")]
    FitFailed(String),
}
