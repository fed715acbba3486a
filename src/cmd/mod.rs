//! The subcommands of the `prewarm` binary, one module each, and the exit-code convention.

pub mod backtest;
pub mod client;
pub mod decisions;
pub mod detect;
pub mod loadgen;
pub mod replay;
pub mod series_io;
pub mod serve;
pub mod simulate;
pub mod trace;

/// Exit code for bad input data (a malformed trace or series): the file and line are named.
pub const EXIT_DATA: u8 = 2;
/// Exit code for bad configuration (sysexits EX_USAGE): the key is named.
pub const EXIT_CONFIG: u8 = 64;
/// Exit code when the user interrupted the run (Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error that carries its process exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    /// Process exit code.
    pub code: u8,
    /// Message shown to the user.
    pub message: String,
}

impl ExitError {
    /// Bad input data (exit 2).
    pub fn data(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: EXIT_DATA,
            message: message.into(),
        }
        .into()
    }
    /// Bad configuration (exit 64).
    pub fn config(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: EXIT_CONFIG,
            message: message.into(),
        }
        .into()
    }
}

/// The exit code for an error: the one it carries, else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.chain()
        .find_map(|c| c.downcast_ref::<ExitError>())
        .map(|x| x.code)
        .unwrap_or(1)
}
