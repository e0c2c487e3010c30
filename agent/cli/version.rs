//! `hawser version`: what was built, from which commit, with which compiler.

use super::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(Args {}: Args) -> anyhow::Result<Exit> {
    println!("{}", describe());
    Ok(Exit::Success)
}

/// The version line, also used as the ApplySet tooling value's suffix source.
pub fn describe() -> String {
    format!(
        "hawser {} (commit {}, {}, {})",
        env!("CARGO_PKG_VERSION"),
        env!("HAWSER_GIT_COMMIT"),
        env!("HAWSER_RUSTC_VERSION"),
        env!("HAWSER_TARGET"),
    )
}
