//! The command line: one subcommand per file. Parsing happens once, here; commands
//! receive validated values and never read the environment themselves.
//!
//! Exit codes are a contract: 0 success, 1 "changes found" (`diff` only), 2 error.
//! Errors are printed as one line on stderr naming what failed and why.

mod apply;
mod bundle;
mod fetch;
pub mod promote_args;
mod render;
pub mod render_args;
mod run;
pub mod scope_args;
pub mod source_args;
mod status;
pub mod status_args;
mod status_post;
mod validate;
mod version;
mod window_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Kept here too, for commands that render errors; the shared one lives below everything.
pub use crate::errors::one_line_error;

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
    /// Apply the manifests once: dry-run gate, staged server-side apply, prune.
    Apply(apply::Args),
    /// Show what `apply` would change (exit 0: nothing, 1: changes, 2: error).
    Diff(apply::DiffArgs),
    /// Check a directory of manifests as the agent would before applying them:
    /// parse, validate, check the scope, order. No cluster needed.
    Validate(validate::Args),
    Render(Box<render::Args>),
    /// Run the agent: poll the source, apply new revisions, correct drift, keep the
    /// last known good revision on disk.
    Run(Box<run::Args>),
    /// Show what the agent last recorded: revisions, result, suspension, outages; or
    /// export it as a status report (`--export`) and post one (`status post`).
    Status(Box<status::Args>),
    /// Print the version, git commit, compiler and target.
    Version(version::Args),
    /// Fetch and verify a source's snapshot into a directory.
    Fetch(Box<fetch::Args>),
    /// Write or check signed git bundles for air-gapped sites.
    Bundle(bundle::Args),
}

/// What a finished command asks the process to exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit 0.
    Success,
    /// Exit 1: `diff` found changes.
    Changes,
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(if matches!(cli.command, Command::Run(_)) {
        "info"
    } else {
        "warn"
    });
    let result = match cli.command {
        Command::Apply(args) => apply::run(args),
        Command::Diff(args) => apply::diff(args),
        Command::Validate(args) => validate::run(args),
        Command::Render(args) => render::run(*args),
        Command::Run(args) => run::run(*args),
        Command::Status(args) => status::run(*args),
        Command::Version(args) => version::run(args),
        Command::Fetch(args) => fetch::run(*args),
        Command::Bundle(args) => bundle::run(args),
    };
    match result {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::Changes) => ExitCode::from(1),
        Err(err) => {
            eprintln!("hawser: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr: text on a terminal, JSON lines otherwise (in a pod), filtered by
/// `RUST_LOG` or else `default_level`.
fn init_logging(default_level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // kube-rs logs every failed request at ERROR (its trace layer): an API server
    // that goes away mid-apply would flood the log. hawser's own lines name each
    // failure with its cause, so that layer is off unless RUST_LOG names kube_client.
    let asked = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("kube_client"));
    if !asked && let Ok(off) = "kube_client::client::builder=off".parse() {
        filter = filter.add_directive(off);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    }
}

/// Runs a command's async body on a single-threaded runtime: an apply agent has no
/// use for more than one core.
pub(crate) fn block_on<T>(
    future: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    let result = runtime.block_on(future);
    // A blocking source request may still run (a fetch abandoned at shutdown):
    // do not wait for it, its deadline may be minutes away.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
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
