//! `prewarm detect` (being built; see the models issue).

/// Arguments of `prewarm detect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Series file.
    #[arg(long)]
    pub series: Option<std::path::PathBuf>,
}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`prewarm detect` is not available in this build yet")
}
