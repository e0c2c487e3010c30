//! The dry-run gate: what would every object become, and what must be written?
//!
//! In: the ordered manifests of a revision, the kinds the server serves, and the
//! recorded inventory. Out: a [`Plan`] naming, per object, whether it is created,
//! updated (which fields) or unchanged, and which recorded members would be pruned.
//!
//! Every object is server-side applied with `dryRun=All` as field manager `hawser`,
//! except one whose manifest and live object are both exactly as at its last dry run
//! (see [`live`]): one LIST per kind and namespace finds those, so a steady drift tick
//! dry-runs nothing. If any object fails its dry run the whole revision is rejected
//! with every failure named, and nothing has been written. Objects whose kind a CRD in the same revision
//! defines cannot be dry-run before that CRD exists; they are returned as `deferred`
//! and planned by `apply` once the CRD is Established, before any namespaced write.

pub mod compare;
mod dry_run;
mod failure;
pub mod ignore;
pub mod live;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::cluster::{Discovered, Kind};
use crate::inventory::{Member, Members, Recorded};
use crate::manifests::{Body, Manifest, ManifestSet, ObjectRef, Stage};
pub use dry_run::{dry_run_all, ended_without_result};
pub use ignore::IgnoreRules;
use live::{LiveIndex, Observation, Observed};

/// The annotation that lets hawser delete and recreate an object whose immutable
/// fields changed.
pub const FORCE_ANNOTATION: &str = "hawser.dev/force";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("dry run failed for {} object(s): {}", .0.len(), join_failures(.0))]
    Rejected(Vec<ObjectFailure>),
    #[error(
        "the revision contains no objects; refusing to apply an empty revision (pass --allow-mass-prune to allow it)"
    )]
    Empty,
    #[error(
        "the revision would prune {prunes} of {managed} managed objects (more than {max_fraction} of them); pass --allow-mass-prune to allow it"
    )]
    MassPrune {
        prunes: usize,
        managed: usize,
        max_fraction: f64,
    },
    #[error(
        "the revision would prune every managed object ({managed}); pass --allow-mass-prune to allow it"
    )]
    PruneAll { managed: usize },
}

/// Why one object failed, in the API server's words.
#[derive(Debug, Clone)]
pub struct ObjectFailure {
    pub object: String,
    pub reason: String,
    /// Network errors, 5xx and timeouts: worth retrying without a new revision.
    pub transient: bool,
}

impl fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.reason)
    }
}

fn join_failures(failures: &[ObjectFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl PlanError {
    pub fn is_transient(&self) -> bool {
        matches!(self, PlanError::Rejected(f) if f.iter().all(|f| f.transient))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PruneGuard {
    pub max_fraction: f64,
    pub allow_mass_prune: bool,
}

/// What the operator decided about every revision: how much it may prune, which
/// fields are left alone after creation.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub guard: PruneGuard,
    pub ignore: &'a IgnoreRules,
}

/// What will happen to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create,
    /// Written because these fields would change.
    Update {
        fields: Vec<String>,
    },
    Unchanged,
    /// Immutable fields changed and the object asks for `hawser.dev/force`.
    Recreate {
        reason: String,
    },
}

/// Another field manager's ownership that hawser's forced apply takes over.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub message: String,
}

/// What a plan keeps of each object beyond its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// What writing needs: the body of objects that change. The agent and `apply`.
    Writes,
    /// Also the live object and the dry-run result of objects that change, to show
    /// them (`diff`).
    Diffs,
}

/// What a plan knows from earlier plans, and what it keeps for its caller.
#[derive(Debug, Clone, Copy)]
pub struct Memory<'a> {
    pub observed: &'a Observed,
    pub keep: Keep,
}

impl Memory<'_> {
    /// Nothing known, diffs not kept: a one-shot apply.
    pub const NONE: Memory<'static> = Memory {
        observed: &Observed::EMPTY,
        keep: Keep::Writes,
    };
}

#[derive(Debug, Clone)]
pub struct Planned {
    /// The manifest's identity and place. Its `object` has moved into `body`, so it
    /// is empty here.
    pub manifest: Manifest,
    pub kind: Kind,
    /// The object as sent: the manifest's object with the ApplySet member label, as
    /// compact text (empty when unchanged: nothing will be sent).
    pub body: Body,
    /// Whether health waits for this object (decided before the object moved).
    pub watch: bool,
    pub action: Action,
    /// The live object and what the dry run says it would become, with
    /// [`Keep::Diffs`] only (boxed: most plans keep none).
    pub shown: Option<Box<Shown>>,
    pub conflicts: Vec<Conflict>,
    /// What its dry run saw, for [`Observed`].
    pub digests: Option<Observation>,
}

/// An object as `diff` shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The live object (`None`: it does not exist yet).
    pub live: Option<Value>,
    /// What the dry run says the object would become.
    pub desired: Value,
}

impl Planned {
    /// An object paired with its served kind, to be planned by [`dry_run_all`], which
    /// fills in the rest in place. Until then it reads as unchanged.
    pub fn to_plan(manifest: Manifest, kind: Kind) -> Self {
        Planned {
            manifest,
            kind,
            body: Body::default(),
            watch: false,
            action: Action::Unchanged,
            shown: None,
            conflicts: Vec::new(),
            digests: None,
        }
    }

    /// Takes in what one dry run found.
    fn settle(&mut self, outcome: Outcome) {
        let Outcome {
            body,
            action,
            shown,
            conflicts,
            digests,
        } = outcome;
        self.body = body;
        self.action = action;
        self.shown = shown;
        self.conflicts = conflicts;
        self.digests = digests;
    }
}

/// What one object's dry run found: the part of a [`Planned`] it decides.
#[derive(Debug)]
struct Outcome {
    body: Body,
    action: Action,
    shown: Option<Box<Shown>>,
    conflicts: Vec<Conflict>,
    digests: Option<Observation>,
}

impl Outcome {
    /// Nothing to write: only the digests, for [`Observed`].
    fn unchanged(digests: Option<Observation>) -> Self {
        Outcome {
            body: Body::default(),
            action: Action::Unchanged,
            shown: None,
            conflicts: Vec::new(),
            digests,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub objects: Vec<Planned>,
    /// Objects of CRDs that arrive with this revision; planned during apply.
    pub deferred: Vec<Manifest>,
    /// Recorded members not in the revision.
    pub prunes: Vec<Member>,
    /// Every member of the revision (for the inventory).
    pub members: Members,
}

impl Plan {
    /// What this plan's dry runs produced, for the next plan of the same objects.
    /// Objects found unchanged without a dry run keep their entry from `before`.
    pub fn observed(&self, before: &Observed) -> Observed {
        let mut observed = Observed::default();
        for p in &self.objects {
            match p.digests {
                Some(seen) => observed.record(&p.manifest.id, seen),
                None if p.action == Action::Unchanged => observed.keep(&p.manifest.id, before),
                None => {}
            }
        }
        observed
    }

    pub fn writes(&self) -> usize {
        self.objects
            .iter()
            .filter(|p| p.action != Action::Unchanged)
            .count()
            + self.deferred.len()
    }
}

/// Dry-runs every object of the set and compares it with the live object. The set is
/// consumed: each manifest moves into its plan entry rather than being copied.
pub async fn plan(
    client: &kube::Client,
    discovered: &Discovered,
    set: ManifestSet,
    recorded: &Recorded,
    applyset_id: &str,
    rules: Rules<'_>,
    memory: Memory<'_>,
) -> Result<Plan, PlanError> {
    let Rules { guard, ignore } = rules;
    let members: Members = Arc::new(set.objects.iter().map(|m| Member::from(&m.id)).collect());
    // The same object whatever its version: one lookup each, not a scan of the set.
    let present: HashSet<(&str, &str, Option<&str>, &str)> =
        members.iter().map(same_object).collect();
    let prunes: Vec<Member> = recorded
        .members
        .iter()
        .filter(|m| !present.contains(&same_object(m)))
        .cloned()
        .collect();
    drop(present);
    check_prune_guard(members.len(), prunes.len(), recorded.members.len(), guard)?;
    let crd_kinds = crd_kinds(&set);

    // CRDs and Namespaces first: objects in a Namespace that this revision creates
    // cannot be dry-run before it exists, so they wait for apply like custom
    // resources of new CRDs.
    let mut failures = Vec::new();
    let mut deferred = Vec::new();
    // Taken out in place: the many other objects stay where they are.
    let mut rest = set.objects;
    let foundation: Vec<Manifest> = rest
        .extract_if(.., |m| m.stage == Stage::ClusterFoundation)
        .collect();
    let mut objects = resolve(
        discovered,
        &crd_kinds,
        foundation,
        &mut deferred,
        &mut failures,
    );
    let live = LiveIndex::list(client, ids(&objects), applyset_id).await;
    failures
        .append(&mut dry_run_all(client, &mut objects, applyset_id, &live, memory, ignore).await);
    let new_namespaces: BTreeSet<&str> = objects
        .iter()
        .filter(|p| p.manifest.id.kind == "Namespace" && p.action == Action::Create)
        .map(|p| p.manifest.id.name.as_str())
        .collect();
    deferred.extend(rest.extract_if(.., |m| {
        m.id.namespace
            .as_deref()
            .is_some_and(|ns| new_namespaces.contains(ns))
    }));
    let mut planned = resolve(discovered, &crd_kinds, rest, &mut deferred, &mut failures);
    let live = LiveIndex::list(client, ids(&planned), applyset_id).await;
    failures
        .append(&mut dry_run_all(client, &mut planned, applyset_id, &live, memory, ignore).await);
    drop(live);
    // The foundation's few objects go in front of the many, which stay in place
    // (an exact reserve: growing would double the vector).
    planned.reserve_exact(objects.len());
    planned.splice(0..0, objects);
    let objects = planned;
    if !failures.is_empty() {
        return Err(PlanError::Rejected(failures));
    }
    Ok(Plan {
        objects,
        deferred,
        prunes,
        members,
    })
}

/// The identities and kinds of `objects`, for [`LiveIndex::list`].
fn ids(objects: &[Planned]) -> impl Iterator<Item = (&ObjectRef, &Kind)> {
    objects.iter().map(|p| (&p.manifest.id, &p.kind))
}

/// Pairs manifests with their served kind, ready for [`dry_run_all`]; kinds that a
/// CRD of the revision defines are deferred, unknown kinds are failures.
fn resolve(
    discovered: &Discovered,
    crd_kinds: &BTreeSet<(String, String)>,
    manifests: Vec<Manifest>,
    deferred: &mut Vec<Manifest>,
    failures: &mut Vec<ObjectFailure>,
) -> Vec<Planned> {
    let mut ready = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        let api_version = manifest.id.api_version();
        match discovered.kind(&api_version, &manifest.id.kind) {
            Some(kind) => ready.push(Planned::to_plan(manifest, kind.clone())),
            None if crd_kinds.contains(&(manifest.id.group.clone(), manifest.id.kind.clone())) => {
                deferred.push(manifest)
            }
            None => failures.push(ObjectFailure {
                object: manifest.id.to_string(),
                reason: format!(
                    "kind {} is not served by the API server (apiVersion {api_version})",
                    manifest.id.kind
                ),
                transient: false,
            }),
        }
    }
    ready
}

/// What makes two members the same object: all but the version.
fn same_object(m: &Member) -> (&str, &str, Option<&str>, &str) {
    (&m.group, &m.kind, m.namespace.as_deref(), &m.name)
}

/// (group, kind) of every CRD in the set: their objects may not be served yet.
fn crd_kinds(set: &ManifestSet) -> BTreeSet<(String, String)> {
    set.objects
        .iter()
        .filter(|m| m.id.kind == "CustomResourceDefinition")
        .filter_map(|crd| {
            let crd = crd.object.tree();
            let group = crd.pointer("/spec/group")?.as_str()?;
            let kind = crd.pointer("/spec/names/kind")?.as_str()?;
            Some((group.to_string(), kind.to_string()))
        })
        .collect()
}

/// Refuses revisions that would empty the cluster or prune too much of it.
pub fn check_prune_guard(
    new: usize,
    prunes: usize,
    managed: usize,
    guard: PruneGuard,
) -> Result<(), PlanError> {
    if guard.allow_mass_prune {
        return Ok(());
    }
    if new == 0 {
        return Err(PlanError::Empty);
    }
    if managed == 0 || prunes == 0 {
        return Ok(());
    }
    if prunes == managed {
        return Err(PlanError::PruneAll { managed });
    }
    if prunes as f64 > guard.max_fraction * managed as f64 {
        return Err(PlanError::MassPrune {
            prunes,
            managed,
            max_fraction: guard.max_fraction,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUARD: PruneGuard = PruneGuard {
        max_fraction: 0.5,
        allow_mass_prune: false,
    };

    #[test]
    fn prune_guard() {
        assert!(matches!(
            check_prune_guard(0, 0, 0, GUARD),
            Err(PlanError::Empty)
        ));
        assert!(check_prune_guard(3, 0, 0, GUARD).is_ok());
        assert!(check_prune_guard(10, 5, 10, GUARD).is_ok());
        assert!(matches!(
            check_prune_guard(10, 6, 10, GUARD),
            Err(PlanError::MassPrune { .. })
        ));
        assert!(matches!(
            check_prune_guard(2, 2, 2, GUARD),
            Err(PlanError::PruneAll { managed: 2 })
        ));
        let allow = PruneGuard {
            allow_mass_prune: true,
            ..GUARD
        };
        assert!(check_prune_guard(1, 10, 10, allow).is_ok());
        assert!(
            check_prune_guard(0, 3, 3, allow).is_ok(),
            "an explicit allow may empty the set"
        );
    }
}
