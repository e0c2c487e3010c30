//! One revision through the middle of the pipeline: render → manifests → plan → apply.
//!
//! In: a directory holding a verified snapshot (or a local `--dir`), the scope and
//! the inventory parent. Out: a plan (for `diff`) or what was applied. `apply --once`,
//! `diff` and the agent loop all go through here, so they agree on every rule.
//!
//! What can go wrong, in order: the manifests are invalid or out of scope (rejected,
//! nothing contacted but discovery), the dry run fails (rejected, nothing written),
//! the prune guard trips (rejected), a write fails (transient or not).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::apply::{self, Applied, ApplyError};
use crate::cluster::{ClusterError, Discovered};
use crate::inventory::{self, InventoryError, Parent, Recorded};
use crate::manifests::{self, Document, ManifestError, ManifestSet, ParseLimits, Scope};
use crate::plan::{self, Memory, Plan, PlanError, PruneGuard};
use crate::render::substitute::Fetched;
use crate::render::{self, RenderError};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("rejected: {0}")]
    Render(#[from] RenderError),
    #[error("rejected: {0}")]
    Manifests(#[from] ManifestError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Vars(#[from] crate::cluster::vars::VarsError),
    #[error("rejected: {0}")]
    Plan(#[from] PlanError),
    #[error("apply failed: {0}")]
    Apply(#[from] ApplyError),
}

impl PipelineError {
    /// Transient failures (network, 5xx, timeouts) are retried with backoff; the
    /// others reject the revision until the source moves.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Render(_) | PipelineError::Manifests(_) => false,
            PipelineError::Cluster(e) => e.is_transient(),
            // A variables object may appear or become readable later; nothing was written.
            PipelineError::Vars(_) => true,
            // A refused credential (401) or permission (403) on the parent is not.
            PipelineError::Inventory(
                InventoryError::Read { source, .. } | InventoryError::Write { source, .. },
            ) => crate::cluster::is_transient(source),
            PipelineError::Inventory(_) => false,
            PipelineError::Plan(e) => e.is_transient(),
            PipelineError::Apply(e) => e.is_transient(),
        }
    }
}

/// Everything the pipeline needs to know about where and how to apply.
#[derive(Debug, Clone)]
pub struct Target {
    pub scope: Scope,
    pub parent: Parent,
    pub guard: PruneGuard,
    pub limits: ParseLimits,
    /// Decryption (and substitution) after Kustomize.
    pub render: render::Options,
    /// `--drift-ignore`: fields set at creation and never corrected.
    pub ignore: plan::IgnoreRules,
}

/// Where the manifests of a revision are.
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: PathBuf,
    pub subpath: Option<PathBuf>,
}

/// A planned revision, ready to apply or to show as a diff.
#[derive(Debug)]
pub struct PlannedRevision {
    pub plan: Plan,
    pub recorded: Recorded,
    /// The substitution variables it was rendered with.
    pub variables: VariablesDigest,
}

/// The `--substitute-from` variables as read at one reconcile. Besides the tree (which
/// is immutable for a revision), they are all a render depends on that can change
/// while the agent runs: the decryption keys and the other variables are fixed.
pub struct Variables(Fetched);

/// A digest of [`Variables`], to tell whether a render would see the same ones. Kept
/// in memory only and never shown: the values may come from a Secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VariablesDigest([u8; 32]);

impl std::fmt::Debug for VariablesDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VariablesDigest(..)")
    }
}

impl Variables {
    pub fn digest(&self) -> VariablesDigest {
        let mut hash = Sha256::new();
        for (key, value) in &self.0.values {
            // Where a value came from decides what printers mask, not the render;
            // it is hashed too so a change of source is a new plan.
            hash.update([u8::from(self.0.from_secret.contains(key))]);
            // Lengths first: no pair can be read as another.
            hash.update((key.len() as u64).to_le_bytes());
            hash.update(key.as_bytes());
            hash.update((value.len() as u64).to_le_bytes());
            hash.update(value.as_bytes());
        }
        VariablesDigest(hash.finalize().into())
    }
}

/// Reads the substitution variables from the cluster (none without `--substitute-from`).
pub async fn variables(client: &kube::Client, target: &Target) -> Result<Variables, PipelineError> {
    let from = &target.render.substitution.from;
    if from.is_empty() {
        return Ok(Variables(Fetched::default()));
    }
    let vars = crate::cluster::vars::read(client, &target.parent.namespace, from).await?;
    Ok(Variables(vars))
}

/// Loads and checks the manifests, with namespaced-ness from discovery (and from
/// CRDs that arrive in the same revision).
pub async fn load(
    client: &kube::Client,
    discovered: &mut Discovered,
    tree: &Tree,
    target: &Target,
) -> Result<ManifestSet, PipelineError> {
    let vars = variables(client, target).await?;
    load_with_variables(client, discovered, tree, target, vars).await
}

/// [`load`] with the substitution variables already read.
async fn load_with_variables(
    client: &kube::Client,
    discovered: &mut Discovered,
    tree: &Tree,
    target: &Target,
    vars: Variables,
) -> Result<ManifestSet, PipelineError> {
    // Render first: a kustomization becomes its documents, plain files pass through.
    // Substitution variables from the cluster are read fresh for every render.
    let mut options = target.render.clone();
    options.substitution.fetched = vars.0;
    let docs = render::load_with(
        &tree.root,
        tree.subpath.as_deref(),
        &target.limits,
        &options,
    )?
    .documents;
    // Discovery must see what will be applied: the items of Lists, not the Lists.
    let docs = manifests::expand_lists(docs)?;
    learn_kinds(client, discovered, &docs).await?;
    let set = manifests::build(docs, &target.scope, discovered)?;
    for warning in &set.warnings {
        tracing::warn!(warning = %warning, "manifests");
    }
    Ok(set)
}

async fn learn_kinds(
    client: &kube::Client,
    discovered: &mut Discovered,
    docs: &[Document],
) -> Result<(), ClusterError> {
    let mut versions = std::collections::BTreeSet::new();
    let mut crds = Vec::new();
    for doc in docs {
        let head = doc.body.head();
        if head.kind() == Some("CustomResourceDefinition") {
            crds.push(doc.tree());
        }
        if let Some(api_version) = head.api_version() {
            versions.insert(api_version.to_string());
        }
    }
    discovered.learn(client, versions).await?;
    for crd in &crds {
        let group = crd.pointer("/spec/group").and_then(Value::as_str);
        let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str);
        let namespaced = crd.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster");
        if let (Some(group), Some(kind)) = (group, kind) {
            discovered.expect_crd(group, kind, namespaced);
        }
    }
    Ok(())
}

/// Manifests and the dry-run gate: what applying the tree would do. `memory` is
/// what earlier plans saw ([`Memory::NONE`] for a one-shot run) and whether the
/// plan is to be shown as a diff.
pub async fn plan(
    client: &kube::Client,
    discovered: &mut Discovered,
    tree: &Tree,
    target: &Target,
    memory: Memory<'_>,
) -> Result<PlannedRevision, PipelineError> {
    let vars = variables(client, target).await?;
    let digest = vars.digest();
    let set = load_with_variables(client, discovered, tree, target, vars).await?;
    let recorded = inventory::read(client, &target.parent).await?;
    let plan = plan::plan(
        client,
        discovered,
        set,
        &recorded,
        &target.parent.id(),
        plan::Rules {
            guard: target.guard,
            ignore: &target.ignore,
        },
        memory,
    )
    .await?;
    Ok(PlannedRevision {
        plan,
        recorded,
        variables: digest,
    })
}

/// Plans and applies the tree.
pub async fn apply(
    client: &kube::Client,
    discovered: &mut Discovered,
    tree: &Tree,
    target: &Target,
) -> Result<Applied, PipelineError> {
    let PlannedRevision { plan, recorded, .. } =
        plan(client, discovered, tree, target, Memory::NONE).await?;
    Ok(apply::apply(client, discovered, plan, &target.parent, recorded).await?)
}

/// For error messages: the tree's directory as the user named it.
pub fn describe(tree: &Tree) -> String {
    match &tree.subpath {
        Some(sub) => Path::new(&tree.root).join(sub).display().to_string(),
        None => tree.root.display().to_string(),
    }
}
