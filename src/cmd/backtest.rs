//! `prewarm backtest` (being built; see the models issue).

/// Arguments of `prewarm backtest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Series file.
    #[arg(long)]
    pub series: Option<std::path::PathBuf>,
}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`prewarm backtest` is not available in this build yet")
}
