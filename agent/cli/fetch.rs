//! `hawser fetch`: resolve a source, fetch and verify its snapshot, write it to
//! `--out` atomically, and print one line of JSON. With `--resolve-only`, print the
//! revision and fetch nothing.

use std::path::PathBuf;

use super::Exit;
use super::source_args::SourceArgs;
use crate::source::{Revision, Source};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,

    /// Directory to write the snapshot to; replaced only when the fetch succeeds.
    #[arg(long, env = "HAWSER_OUT", required_unless_present = "resolve_only")]
    out: Option<PathBuf>,

    /// Print the revision the source names now and fetch nothing.
    #[arg(long)]
    resolve_only: bool,
}

/// The output line, fields in the documented order.
#[derive(serde::Serialize)]
struct Line<'a> {
    revision: &'a Revision,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    source: &'a str,
    /// Who signed the commit (and tag), with --verify-commits / --verify-tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    signed: Option<&'a crate::verify::Verified>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let Args {
        source,
        out,
        resolve_only,
    } = args;
    // Warnings (a skipped submodule) go to stderr; stdout carries only the JSON line.
    // `try_init` leaves a subscriber the caller installed in place.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .with_target(false)
        .without_time()
        .try_init();
    let source = Source::new(source.into_spec()?)?;
    let revision = source.resolve()?;
    tracing::debug!(%revision, url = source.display_url(), "resolved");
    let line = match (resolve_only, out) {
        (false, Some(out)) => {
            let snapshot = source.fetch_to(&revision, &out)?;
            serde_json::to_string(&Line {
                revision: snapshot.revision(),
                files: Some(snapshot.files()),
                bytes: Some(snapshot.bytes()),
                source: snapshot.source(),
                signed: snapshot.verified(),
            })?
        }
        _ => serde_json::to_string(&Line {
            revision: &revision,
            files: None,
            bytes: None,
            source: source.display_url(),
            signed: None,
        })?,
    };
    println!("{line}");
    Ok(Exit::Success)
}
