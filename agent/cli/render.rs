//! `hawser render`: print the documents a directory renders to, as `kustomize build`
//! prints them for a kustomization (before hawser's own additions: no default
//! namespace, no ApplySet labels), or the plain files' documents without one.

use std::io::Write as _;
use std::path::PathBuf;

use serde_json::Value;

use super::Exit;
use super::apply::InputArgs;
use crate::manifests::ParseLimits;
use crate::render;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: InputArgs,

    /// Subdirectory of --dir to render (e.g. overlays/production); its kustomization
    /// may read from anywhere under --dir, as `../../base` does.
    #[arg(long, requires = "dir", value_name = "SUB")]
    subdir: Option<PathBuf>,

    #[command(flatten)]
    render: super::render_args::RenderArgs,

    /// Print decrypted SOPS values instead of `***` (to stdout only).
    #[arg(long)]
    show_secrets: bool,
}

pub fn run(
    Args {
        input,
        subdir,
        render: render_args,
        show_secrets,
    }: Args,
) -> anyhow::Result<Exit> {
    let options = render_args.options()?;
    if !options.substitution.from.is_empty() {
        anyhow::bail!("--substitute-from reads the cluster; `render` does not: use --substitute");
    }
    let input = input.prepare()?;
    let subpath = subdir.as_deref().or(input.tree.subpath.as_deref());
    let loaded = render::load_with(&input.tree.root, subpath, &ParseLimits::default(), &options)?;
    for warning in &loaded.warnings {
        eprintln!("hawser: warning: {warning}");
    }
    // Decrypted leaves are masked unless asked for; they go to stdout only.
    let shown: Vec<Value> = loaded
        .documents
        .iter()
        .map(|d| {
            if show_secrets {
                d.tree()
            } else {
                d.sealed.masked(&d.tree())
            }
        })
        .collect();
    let text = render::emit::documents(&shown);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(Exit::Success)
}
