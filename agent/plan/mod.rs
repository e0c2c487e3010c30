//! The dry-run gate: what would every object become, and what must be written?
//!
//! In: the ordered manifests of a revision, the kinds the server serves, and the
//! recorded inventory. Out: a [`Plan`] naming, per object, whether it is created,
//! updated (which fields) or unchanged, and which recorded members would be pruned.
//!
//! Every object is server-side applied with `dryRun=All` as field manager `hawser`.
//! If any object fails its dry run the whole revision is rejected with every failure
//! named, and nothing has been written. Objects whose kind a CRD in the same revision
//! defines cannot be dry-run before that CRD exists; they are returned as `deferred`
//! and planned by `apply` once the CRD is Established, before any namespaced write.

pub mod compare;

use std::collections::BTreeSet;
use std::fmt;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::cluster::{Discovered, Kind};
use crate::inventory::{FIELD_MANAGER, Member, PART_OF, Recorded};
use crate::manifests::{Manifest, ManifestSet, Stage};

/// The annotation that lets hawser delete and recreate an object whose immutable
/// fields changed.
pub const FORCE_ANNOTATION: &str = "hawser.dev/force";
/// Requests in flight at once while planning or applying.
pub const CONCURRENCY: usize = 8;

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

#[derive(Debug, Clone)]
pub struct Planned {
    pub manifest: Manifest,
    pub kind: Kind,
    /// The object as sent: the manifest plus the ApplySet member label (`Null` when
    /// unchanged: nothing will be sent).
    pub body: Value,
    pub action: Action,
    pub live: Option<Value>,
    /// What the dry run says the object would become (`Null` when unchanged).
    pub desired: Value,
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub objects: Vec<Planned>,
    /// Objects of CRDs that arrive with this revision; planned during apply.
    pub deferred: Vec<Manifest>,
    /// Recorded members not in the revision.
    pub prunes: Vec<Member>,
    /// Every member of the revision (for the inventory).
    pub members: BTreeSet<Member>,
}

impl Plan {
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
    guard: PruneGuard,
) -> Result<Plan, PlanError> {
    let members: BTreeSet<Member> = set.objects.iter().map(|m| Member::from(&m.id)).collect();
    let prunes: Vec<Member> = recorded
        .members
        .iter()
        .filter(|m| !members.iter().any(|n| same_object(n, m)))
        .cloned()
        .collect();
    check_prune_guard(members.len(), prunes.len(), recorded.members.len(), guard)?;
    let crd_kinds = crd_kinds(&set);

    // CRDs and Namespaces first: objects in a Namespace that this revision creates
    // cannot be dry-run before it exists, so they wait for apply like custom
    // resources of new CRDs.
    let mut failures = Vec::new();
    let mut deferred = Vec::new();
    let (foundation, rest): (Vec<Manifest>, Vec<Manifest>) = set
        .objects
        .into_iter()
        .partition(|m| m.stage == Stage::ClusterFoundation);
    let ready = resolve(
        discovered,
        &crd_kinds,
        foundation,
        &mut deferred,
        &mut failures,
    );
    let (mut objects, mut dry_failures) = dry_run_all(client, ready, applyset_id).await;
    failures.append(&mut dry_failures);
    let new_namespaces: BTreeSet<&str> = objects
        .iter()
        .filter(|p| p.manifest.id.kind == "Namespace" && p.action == Action::Create)
        .map(|p| p.manifest.id.name.as_str())
        .collect();
    let (waiting, rest): (Vec<Manifest>, Vec<Manifest>) = rest.into_iter().partition(|m| {
        m.id.namespace
            .as_deref()
            .is_some_and(|ns| new_namespaces.contains(ns))
    });
    deferred.extend(waiting);
    let ready = resolve(discovered, &crd_kinds, rest, &mut deferred, &mut failures);
    let (mut planned, mut dry_failures) = dry_run_all(client, ready, applyset_id).await;
    failures.append(&mut dry_failures);
    objects.append(&mut planned);
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

/// Pairs manifests with their served kind; kinds that a CRD of the revision defines
/// are deferred, unknown kinds are failures.
fn resolve(
    discovered: &Discovered,
    crd_kinds: &BTreeSet<(String, String)>,
    manifests: Vec<Manifest>,
    deferred: &mut Vec<Manifest>,
    failures: &mut Vec<ObjectFailure>,
) -> Vec<(Manifest, Kind)> {
    let mut ready = Vec::new();
    for manifest in manifests {
        let api_version = manifest.id.api_version();
        match discovered.kind(&api_version, &manifest.id.kind) {
            Some(kind) => ready.push((manifest, kind.clone())),
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

/// Dry-runs objects concurrently; returns them in input order, with the failures.
pub async fn dry_run_all(
    client: &kube::Client,
    objects: Vec<(Manifest, Kind)>,
    applyset_id: &str,
) -> (Vec<Planned>, Vec<ObjectFailure>) {
    let mut tasks = JoinSet::new();
    let mut results: Vec<Option<Result<Planned, ObjectFailure>>> = vec![None; objects.len()];
    let mut queue = objects.into_iter().enumerate();
    loop {
        while tasks.len() < CONCURRENCY {
            let Some((index, (manifest, kind))) = queue.next() else {
                break;
            };
            let client = client.clone();
            let id = applyset_id.to_string();
            tasks.spawn(async move { (index, dry_run(&client, manifest, kind, &id).await) });
        }
        match tasks.join_next().await {
            Some(Ok((index, result))) => results[index] = Some(result),
            Some(Err(join)) => {
                // A panicking task is a bug; surface it as a failure rather than hang.
                tracing::error!(error = %join, "dry-run task failed");
            }
            None => break,
        }
    }
    let mut planned = Vec::new();
    let mut failures = Vec::new();
    for result in results.into_iter().flatten() {
        match result {
            Ok(p) => planned.push(p),
            Err(f) => failures.push(f),
        }
    }
    (planned, failures)
}

/// The object as hawser sends it: the manifest with the ApplySet member label.
pub fn body_for(manifest: &Manifest, applyset_id: &str) -> Value {
    let mut body = manifest.object.clone();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(PART_OF.into(), Value::String(applyset_id.into()));
        }
    }
    body
}

pub fn api_for(client: &kube::Client, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    match (kind.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &kind.resource),
        _ => Api::all_with(client.clone(), &kind.resource),
    }
}

async fn dry_run(
    client: &kube::Client,
    manifest: Manifest,
    kind: Kind,
    applyset_id: &str,
) -> Result<Planned, ObjectFailure> {
    let api = api_for(client, &kind, manifest.id.namespace.as_deref());
    let name = manifest.id.name.clone();
    let fail = |e: kube::Error| ObjectFailure {
        object: manifest.id.to_string(),
        transient: is_transient(&e),
        reason: api_reason(&e),
    };
    let live = api.get_opt(&name).await.map_err(fail)?.map(to_value);
    let body = body_for(&manifest, applyset_id);

    // Without force first, so that another manager's ownership is seen and reported;
    // then with force, which is how hawser will write.
    let params = PatchParams::apply(FIELD_MANAGER).dry_run();
    let mut conflicts = Vec::new();
    let attempt = match api.patch(&name, &params, &Patch::Apply(&body)).await {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            conflicts.push(Conflict {
                message: status.message.clone(),
            });
            api.patch(&name, &params.clone().force(), &Patch::Apply(&body))
                .await
        }
        other => other,
    };
    let (action, desired) = match attempt {
        Ok(result) => {
            let desired = to_value(result);
            let action = match &live {
                None => Action::Create,
                Some(live) if *live != desired => Action::Update {
                    fields: compare::paths(live, &desired),
                },
                Some(_) => Action::Unchanged,
            };
            (action, desired)
        }
        Err(kube::Error::Api(status))
            if is_immutable(&status) && live.is_some() && wants_force(&manifest) =>
        {
            (
                Action::Recreate {
                    reason: status.message.clone(),
                },
                body.clone(),
            )
        }
        Err(e) => {
            let mut failure = fail(e);
            if manifest.id.kind == "RoleBinding" && failure.reason.starts_with("notfound") {
                failure.reason.push_str(
                    " (to bind a Role that arrives in the same revision, the service account needs the `bind` verb on roles)",
                );
            }
            if failure.reason.contains("immutable") {
                failure.reason.push_str(&format!(
                    " (annotate the object with {FORCE_ANNOTATION}: enabled to let hawser delete and recreate it)"
                ));
            }
            return Err(failure);
        }
    };
    // An unchanged object is neither written nor shown: keep no copies of it, so a
    // no-op reconcile of many objects holds little memory.
    let (live, desired, body) = if action == Action::Unchanged {
        (None, Value::Null, Value::Null)
    } else {
        (live, desired, body)
    };
    Ok(Planned {
        manifest,
        kind,
        body,
        action,
        live,
        desired,
        conflicts,
    })
}

/// The object as JSON, stripped of what the server owns (`managedFields` first: it is
/// often larger than the object itself).
fn to_value(mut object: DynamicObject) -> Value {
    object.metadata.managed_fields = None;
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    compare::strip(&mut value);
    value
}

fn wants_force(manifest: &Manifest) -> bool {
    manifest
        .object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(FORCE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("enabled")
}

fn is_immutable(status: &kube::core::Status) -> bool {
    status.code == 422 && status.message.contains("immutable")
}

/// The API server's message without kube-rs's wrapping.
pub fn api_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!("{}: ", status.reason.to_lowercase())
            };
            format!("{reason}{}", status.message)
        }
        other => other.to_string(),
    }
}

pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

fn same_object(a: &Member, b: &Member) -> bool {
    a.group == b.group && a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
}

/// (group, kind) of every CRD in the set: their objects may not be served yet.
fn crd_kinds(set: &ManifestSet) -> BTreeSet<(String, String)> {
    set.objects
        .iter()
        .filter(|m| m.id.kind == "CustomResourceDefinition")
        .filter_map(|crd| {
            let group = crd.object.pointer("/spec/group")?.as_str()?;
            let kind = crd.object.pointer("/spec/names/kind")?.as_str()?;
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
