//! `prewarm simulate` (being built).

/// Arguments of `prewarm simulate`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
