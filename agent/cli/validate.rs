//! `hawser validate`: render (when there is a kustomization), load, check, scope and
//! order a directory of manifests, as the agent would before applying them, without a cluster. Namespaced-ness comes from the
//! built-in table of Kubernetes kinds plus the CRDs found in the same directory.

use std::path::PathBuf;

use super::Exit;
use super::scope_args::ScopeArgs;
use crate::manifests::{self, BuiltinNamespacing, ParseLimits, Scope};
use crate::render;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding the manifests, e.g. a checkout of the repository.
    #[arg(long, env = "HAWSER_DIR", value_name = "DIR")]
    dir: PathBuf,

    /// Subdirectory of --dir to load (e.g. clusters/edge); file names in messages stay
    /// relative to --dir.
    #[arg(long, env = "HAWSER_PATH", value_name = "SUB")]
    path: Option<PathBuf>,

    #[command(flatten)]
    scope: ScopeArgs,
}

pub fn run(Args { dir, path, scope }: Args) -> anyhow::Result<Exit> {
    let scope = Scope::try_from(scope)?;
    let loaded = render::load(&dir, path.as_deref(), &ParseLimits::default())?;
    let files = loaded.files;
    let set = manifests::build(loaded.documents, &scope, &BuiltinNamespacing)?;
    let mut warnings = loaded.warnings;
    warnings.extend(set.warnings);
    if set.objects.is_empty() {
        let under = match &path {
            Some(path) => dir.join(path),
            None => dir.clone(),
        };
        warnings.push(format!("no objects found under {}", under.display()));
    }
    for warning in &warnings {
        eprintln!("hawser: warning: {warning}");
    }
    println!("{}", summary(set.objects.len(), files, warnings.len()));
    Ok(Exit::Success)
}

/// `valid: 12 objects in 5 files (2 warnings)`.
fn summary(objects: usize, files: usize, warnings: usize) -> String {
    let mut line = format!(
        "valid: {} in {}",
        plural(objects, "object"),
        plural(files, "file")
    );
    if warnings > 0 {
        line.push_str(&format!(" ({})", plural(warnings, "warning")));
    }
    line
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_with_plurals() {
        assert_eq!(
            summary(12, 5, 2),
            "valid: 12 objects in 5 files (2 warnings)"
        );
        assert_eq!(summary(1, 1, 1), "valid: 1 object in 1 file (1 warning)");
        assert_eq!(summary(0, 0, 0), "valid: 0 objects in 0 files");
    }
}
