//! The `prewarm` command line: a thin dispatcher over the commands in `cmd/`.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Predictive autoscaler and pre-warming service for serverless platforms.
#[derive(Parser)]
#[command(name = "prewarm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay an invocation trace through keep-alive / pre-warm / scaling policies.
    Simulate(cmd::simulate::Args),
    /// Rolling-origin backtest of the forecasting models on a series.
    Backtest(cmd::backtest::Args),
    /// Detect anomalies in a series, or score the detectors on the NAB corpus.
    Detect(cmd::detect::Args),
    /// Run the prediction service (telemetry in, decisions out, KEDA external scaler).
    Serve(cmd::serve::Args),
    /// Stream a trace (Azure invocations or a CSV series) into a server as telemetry.
    Replay(cmd::replay::Args),
    /// Print the current decisions of a server.
    Decisions(cmd::decisions::Args),
    /// Load and soak a running server: telemetry for N functions at R samples/s plus KEDA polls.
    Loadgen(cmd::loadgen::Args),
    /// Trace utilities (synthetic traces).
    #[command(subcommand)]
    Trace(cmd::trace::TraceCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Backtest(a) => cmd::backtest::run(a),
        Command::Detect(a) => cmd::detect::run(a),
        Command::Trace(c) => cmd::trace::run(c),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Replay(a) => cmd::replay::run(a),
        Command::Decisions(a) => cmd::decisions::run(a),
        Command::Loadgen(a) => cmd::loadgen::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cmd::exit_code(&e))
        }
    }
}
