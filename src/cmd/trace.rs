//! `prewarm trace ...`: trace utilities (being built; see the simulator issue).

/// Trace subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum TraceCommand {
    /// Write a synthetic Azure-format trace.
    Synth,
}

/// Runs a trace subcommand.
pub fn run(_c: TraceCommand) -> anyhow::Result<()> {
    anyhow::bail!("`prewarm trace synth` is not available in this build yet")
}
