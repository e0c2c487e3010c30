//! `hawser apply --once` and `hawser diff`: one revision from a directory (or a
//! source), planned through the dry-run gate, then applied or shown.

use std::path::PathBuf;

use anyhow::Context;

use super::Exit;
use super::scope_args::ScopeArgs;
use super::source_args::SourceArgs;
use crate::apply::Applied;
use crate::cluster::{self, Discovered};
use crate::inventory::Parent;
use crate::manifests::ParseLimits;
use crate::pipeline::{self, Target, Tree};
use crate::plan::live::Observed;
use crate::plan::{Action, Keep, Memory, PruneGuard, compare};
use crate::source::{Revision, Source};

/// Where the manifests come from and how the inventory is named; shared by `apply`,
/// `diff` and `run`.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Name of the inventory parent ConfigMap in the agent's namespace.
    #[arg(long, env = "HAWSER_NAME", default_value = "hawser")]
    pub name: String,
    /// Refuse a revision that would prune more than this fraction of the managed objects.
    #[arg(long, env = "HAWSER_MAX_PRUNE_FRACTION", default_value_t = 0.5, value_parser = parse_fraction)]
    pub max_prune_fraction: f64,
    /// Allow revisions that prune more than --max-prune-fraction, everything, or that are empty.
    #[arg(long, env = "HAWSER_ALLOW_MASS_PRUNE")]
    pub allow_mass_prune: bool,
    #[command(flatten)]
    pub render: super::render_args::RenderArgs,
    /// Fields set when an object is created and never corrected afterwards,
    /// repeatable: `SELECTOR:/json/pointer[,/pointer…]`, the selector `kind=`,
    /// `group=`, `name=`, `namespace=` with `*`/`?` globs (e.g.
    /// `kind=Deployment,name=web:/spec/replicas` under an HPA). The annotation
    /// hawser.dev/drift-ignore: /spec/replicas on an object does the same. In the
    /// environment, separate rules with `;`.
    #[arg(long, env = "HAWSER_DRIFT_IGNORE", value_delimiter = ';')]
    pub drift_ignore: Vec<String>,
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

impl TargetArgs {
    pub fn target(self, scope: ScopeArgs) -> anyhow::Result<Target> {
        let TargetArgs {
            name,
            max_prune_fraction,
            allow_mass_prune,
            render,
            drift_ignore,
        } = self;
        let ignore = crate::plan::IgnoreRules::parse(&drift_ignore)?;
        let scope = crate::manifests::Scope::try_from(scope)?;
        Ok(Target {
            parent: Parent {
                namespace: scope.namespace.clone(),
                name,
            },
            scope,
            guard: PruneGuard {
                max_fraction: max_prune_fraction,
                allow_mass_prune,
            },
            limits: ParseLimits::default(),
            render: render.options()?,
            ignore,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply once and exit (the only mode of `apply`; `hawser run` keeps converging).
    #[arg(long, required = true)]
    pub once: bool,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Where the manifests come from: a source (Git or tarball) or a local directory.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// A local directory holding the manifests, instead of --source.
    #[arg(
        long,
        env = "HAWSER_DIR",
        conflicts_with = "source",
        required_unless_present = "source"
    )]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub source: Option<SourceArgs>,
}

/// The manifests to plan, ready on disk; a fetched snapshot lives as long as this.
pub(super) struct Input {
    pub(super) tree: Tree,
    pub(super) revision: Option<Revision>,
    _fetched: Option<ScratchDir>,
}

/// A directory under the system's temporary directory, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("hawser-snapshot-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl InputArgs {
    /// Fetches the source (verified) into a temporary directory, or takes `--dir`.
    pub(super) fn prepare(self) -> anyhow::Result<Input> {
        let InputArgs { dir, source } = self;
        match (dir, source) {
            (Some(dir), _) => Ok(Input {
                tree: Tree {
                    root: dir,
                    subpath: None,
                },
                revision: None,
                _fetched: None,
            }),
            (None, Some(args)) => {
                let source = Source::new(args.into_spec()?)?;
                let revision = source.resolve()?;
                let tmp = ScratchDir::new()?;
                let snapshot = source.fetch(&revision, &tmp.0)?;
                Ok(Input {
                    tree: Tree {
                        root: snapshot.dir().to_path_buf(),
                        subpath: source.subpath().map(PathBuf::from),
                    },
                    revision: Some(snapshot.revision().clone()),
                    _fetched: Some(tmp),
                })
            }
            (None, None) => anyhow::bail!("give --source URL or --dir DIR"),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let Args {
        once: _,
        input,
        scope,
        target,
    } = args;
    let target = target.target(scope)?;
    let input = input.prepare()?;
    let tree = input.tree.clone();
    super::block_on(async {
        let client = cluster::connect().await?;
        let mut discovered = Discovered::default();
        let applied = pipeline::apply(&client, &mut discovered, &tree, &target)
            .await
            .with_context(|| format!("applying {}", pipeline::describe(&tree)))?;
        if let Some(revision) = &input.revision {
            println!("revision {revision}");
        }
        print!("{}", summary(&applied));
        Ok(Exit::Success)
    })
}

pub fn diff(args: DiffArgs) -> anyhow::Result<Exit> {
    let DiffArgs {
        input,
        scope,
        target,
    } = args;
    let target = target.target(scope)?;
    let input = input.prepare()?;
    let tree = input.tree.clone();
    super::block_on(async {
        let client = cluster::connect().await?;
        let mut discovered = Discovered::default();
        let memory = Memory {
            observed: &Observed::EMPTY,
            keep: Keep::Diffs,
        };
        let planned = pipeline::plan(&client, &mut discovered, &tree, &target, memory)
            .await
            .with_context(|| format!("planning {}", pipeline::describe(&tree)))?;
        let mut changes = false;
        for p in &planned.plan.objects {
            if p.action == Action::Unchanged {
                continue;
            }
            changes = true;
            let Some(shown) = &p.shown else {
                continue; // a diff plan keeps what it shows of every change
            };
            let (live, desired) = compare::mask_secrets(
                shown.live.as_ref(),
                Some(&shown.desired),
                &p.manifest.sealed,
            );
            let render = |v: Option<serde_json::Value>| {
                v.map(|v| compare::to_yaml(&compare::normalize(&v)))
                    .unwrap_or_default()
            };
            let name = p.manifest.id.to_string();
            let old_name = if shown.live.is_some() {
                format!("live/{name}")
            } else {
                "/dev/null".to_string()
            };
            print!(
                "{}",
                compare::unified_diff(
                    &old_name,
                    &format!("desired/{name}"),
                    &render(live),
                    &render(desired)
                )
            );
        }
        for m in &planned.plan.deferred {
            changes = true;
            println!("create {} (its CRD arrives with this revision)", m.id);
        }
        for m in &planned.plan.prunes {
            changes = true;
            println!("prune {}", m.object_ref());
        }
        Ok(if changes {
            Exit::Changes
        } else {
            Exit::Success
        })
    })
}

/// The human summary of an apply: one count line, then one line per change.
pub fn summary(a: &Applied) -> String {
    let total = a.changed() + a.unchanged;
    let mut out = format!(
        "applied {total} objects: {} created, {} updated, {} recreated, {} unchanged, {} pruned ({} API writes)\n",
        a.created.len(),
        a.updated.len(),
        a.recreated.len(),
        a.unchanged,
        a.prune.pruned.len(),
        a.writes
    );
    for name in &a.created {
        out.push_str(&format!("  created {name}\n"));
    }
    for (name, fields) in &a.updated {
        out.push_str(&format!("  updated {name} ({})\n", fields.join(", ")));
    }
    for name in &a.recreated {
        out.push_str(&format!("  recreated {name}\n"));
    }
    for (name, message) in &a.conflicts {
        out.push_str(&format!(
            "  took over fields from another field manager on {name}: {message}\n"
        ));
    }
    for name in &a.prune.pruned {
        out.push_str(&format!("  pruned {name}\n"));
    }
    for (name, why) in &a.prune.released {
        out.push_str(&format!("  left in place {name}: {why}\n"));
    }
    for (member, why) in &a.prune.kept {
        out.push_str(&format!(
            "  could not prune {}: {why}\n",
            member.object_ref()
        ));
    }
    out
}
