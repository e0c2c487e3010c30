//! The command line: one subcommand per file. Parsing happens once, here; commands
//! receive validated values and never read the environment themselves.
//!
//! Exit codes are a contract: 0 success, 1 "changes found" (`diff` only), 2 error.
//! Errors are printed as one line on stderr naming what failed and why.

mod fetch;
pub mod source_args;
mod version;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A small GitOps pull agent: pulls one cluster's desired state from Git, keeps the
/// last known good revision on disk, applies it safely and reports per cluster.
#[derive(Debug, Parser)]
#[command(name = "hawser", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version, git commit, compiler and target.
    Version(version::Args),
    /// Fetch and verify a source's snapshot into a directory.
    Fetch(Box<fetch::Args>),
}

/// What a finished command asks the process to exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: `diff` found changes.
    Changes,
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version(args) => version::run(args),
        Command::Fetch(args) => fetch::run(*args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Changes) => ExitCode::from(1),
        Err(err) => {
            eprintln!("hawser: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// Joins an error and its causes into one line, skipping causes whose text the
/// outer message already contains.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
