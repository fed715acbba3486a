//! The subcommands of the `prewarm` binary, one module each, and the exit-code convention.

/// `println!` for a command's output: stdout closed early (`prewarm … | head`) ends the
/// process quietly with status 141, as SIGPIPE ends other Unix tools, instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::cmd::stdout_failed(e)
        }
    }};
}

/// `print!` with [`outln!`]'s handling of a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            $crate::cmd::stdout_failed(e)
        }
    }};
}

pub mod backtest;
pub mod client;
pub mod decisions;
pub mod detect;
pub mod loadgen;
pub mod plots;
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
    /// The user interrupted the run (exit 130); nothing was written.
    pub fn interrupted() -> anyhow::Error {
        Self {
            code: EXIT_INTERRUPTED,
            message: "interrupted: no results written".into(),
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

/// A progress bar over `len` units named `unit` on stderr, or `None` when stderr is not a
/// terminal (logs and pipes get no bar).
pub fn progress_bar(len: u64, unit: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(s) = indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} {{msg}}"
    )) {
        b.set_style(s);
    }
    Some(b)
}

/// Ends the process after a failed write to stdout: quietly with 141 when the reader went
/// away (a broken pipe), else with the error and status 1.
pub fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// Installs a Ctrl-C handler that raises the returned flag (long commands poll it and stop
/// with [`ExitError::interrupted`]).
pub fn cancel_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    // A second handler cannot be installed (e.g. in tests): runs then just cannot be cancelled.
    let _ = ctrlc::set_handler(move || f.store(true, Ordering::Relaxed));
    flag
}
