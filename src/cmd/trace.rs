//! `prewarm trace ...`: trace utilities: write a synthetic Azure-format trace, summarise a trace.

use super::ExitError;
use prewarm_simulator::synth::{write_synth_trace, SynthConfig, SynthError, SynthProgress};
use prewarm_simulator::trace::azure::{parse_days, AzureTrace};
use prewarm_simulator::trace::count_trace;
use std::path::PathBuf;
use std::time::Instant;

/// Trace subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum TraceCommand {
    /// Write a synthetic trace in the 14-day Azure Functions 2019 layout (heavy-tailed
    /// popularity, daily and weekly cycles, timers, bursts). About 20 M invocations:
    /// `--functions 2000 --days 3 --target-invocations 20000000`.
    Synth(SynthArgs),
    /// Read a trace and print its functions, invocations and minutes (checks it on the way).
    Stats(StatsArgs),
}

/// Arguments of `prewarm trace synth`.
#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Number of functions.
    #[arg(long, default_value_t = 1000)]
    pub functions: u32,
    /// Number of days (files d01, d02, ...; at most 99).
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// RNG seed: the same flags write the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (created if needed; files of the same names are overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Scale the rates so the expected total number of invocations is this (e.g. 20000000).
    #[arg(long)]
    pub target_invocations: Option<u64>,
    /// Mean invocations a minute of the most popular function, before scaling.
    #[arg(long, default_value_t = 1000.0, allow_negative_numbers = true)]
    pub peak_rate: f64,
    /// Exponent of the Zipf-like popularity law.
    #[arg(long, default_value_t = 1.7, allow_negative_numbers = true)]
    pub zipf: f64,
}

/// Arguments of `prewarm trace stats`.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Trace directory (Azure Functions 2019 layout, one-day or 14-day).
    #[arg(long)]
    pub trace: PathBuf,
    /// Days of a 14-day trace, e.g. `1-14` or `3`.
    #[arg(long)]
    pub days: Option<String>,
}

/// Runs a trace subcommand.
pub fn run(c: TraceCommand) -> anyhow::Result<()> {
    match c {
        TraceCommand::Synth(a) => synth(a),
        TraceCommand::Stats(a) => stats(a),
    }
}

fn synth(a: SynthArgs) -> anyhow::Result<()> {
    if a.functions == 0 {
        return Err(ExitError::config("--functions must be at least 1"));
    }
    if a.days == 0 || a.days > 99 {
        return Err(ExitError::config(format!(
            "--days must be in 1..=99, got {}",
            a.days
        )));
    }
    if a.target_invocations == Some(0) {
        return Err(ExitError::config("--target-invocations must be positive"));
    }
    if !(a.peak_rate.is_finite() && a.peak_rate > 0.0) {
        return Err(ExitError::config(format!(
            "--peak-rate must be a positive number, got {}",
            a.peak_rate
        )));
    }
    if !(a.zipf.is_finite() && a.zipf >= 0.0) {
        return Err(ExitError::config(format!(
            "--zipf must be a non-negative number, got {}",
            a.zipf
        )));
    }
    let cfg = SynthConfig {
        functions: a.functions,
        days: a.days,
        seed: a.seed,
        target_invocations: a.target_invocations,
        peak_rate: a.peak_rate,
        zipf_exponent: a.zipf,
    };
    let bar = crate::cmd::progress_bar(u64::from(a.functions) * u64::from(a.days), "function-days");
    let start = Instant::now();
    let mut progress = |p: SynthProgress| {
        if let Some(b) = &bar {
            b.set_position(p.done);
            b.set_message(format!("{} invocations", p.invocations));
        }
    };
    let result = write_synth_trace(&cfg, &a.out, &mut progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let s = match result {
        Ok(s) => s,
        Err(SynthError::Config(m)) => return Err(ExitError::config(m)),
        Err(e) => return Err(e.into()),
    };
    outln!(
        "wrote {} functions ({} invoked, {} apps), {} days, {} invocations, {} bytes in {} files \
         to {} in {:.2} s",
        s.functions,
        s.invoked_functions,
        s.apps,
        s.days,
        s.invocations,
        s.bytes,
        s.files.len(),
        a.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn stats(a: StatsArgs) -> anyhow::Result<()> {
    let days = match &a.days {
        Some(d) => Some(parse_days(d).map_err(|e| ExitError::config(format!("--days: {e}")))?),
        None => None,
    };
    let start = Instant::now();
    let mut t = AzureTrace::open(&a.trace, days).map_err(|e| ExitError::data(e.to_string()))?;
    let c = count_trace(&mut t).map_err(|e| ExitError::data(e.to_string()))?;
    outln!(
        "{}: {} functions ({} invoked), {} invocations, {} minutes, {} days, read in {:.3} s",
        a.trace.display(),
        c.functions,
        c.invoked_functions,
        c.invocations,
        c.minutes,
        c.days,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
