//! Writes a plan to the cluster, in stages, then prunes.
//!
//! In: a [`Plan`] that passed the dry-run gate. Out: [`Applied`], what was written.
//!
//! Order, as kubectl's ApplySet does it: the inventory parent is first widened to old ∪
//! new members (an interrupted run cannot leak objects), then CRDs and Namespaces are
//! written and awaited (Established, Active), then objects of CRDs that arrived with
//! the revision are dry-run, then other cluster-scoped objects, then namespaced
//! objects in kind order; prunes run in reverse order; last the parent shrinks to the
//! new members. Only objects whose plan says they change are written.

mod prune;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, Patch};
use serde_json::Value;
use tokio::task::{self, JoinSet};

use crate::cluster::Kind;
use crate::cluster::{
    CONCURRENCY, ClusterError, Discovered, api_for, api_reason, is_transient, is_unreachable,
};
use crate::inventory::{self, InventoryError, Members, Parent, Recorded};
use crate::manifests::{ObjectRef, Stage};
use crate::plan::live::LiveIndex;
use crate::plan::{self, Action, Memory, ObjectFailure, Plan, PlanError, Planned};

pub use prune::PruneOutcome;

/// How long a CRD may take to become Established, or a recreated object to go away.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("applying {0}")]
    Write(ObjectFailure),
    #[error(transparent)]
    Deferred(#[from] PlanError),
    #[error("{object} did not become {condition} within {}s", .timeout.as_secs())]
    NotSettled {
        object: String,
        condition: &'static str,
        timeout: Duration,
    },
    #[error(
        "the API server did not answer ({reason}); stopped the stage: {failed} write(s) failed, {skipped} not sent"
    )]
    Unreachable {
        reason: String,
        failed: usize,
        skipped: usize,
    },
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl ApplyError {
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Write(f) => f.transient,
            ApplyError::Deferred(e) => e.is_transient(),
            ApplyError::NotSettled { .. } | ApplyError::Unreachable { .. } => true,
            ApplyError::Cluster(e) => e.is_transient(),
            // The API server failing a read or write of the parent (5xx, 429, no
            // connection) is as transient as failing any other write.
            ApplyError::Inventory(
                InventoryError::Read { source, .. } | InventoryError::Write { source, .. },
            ) => is_transient(source),
            ApplyError::Inventory(_) => false,
        }
    }
}

/// What one apply did, for the summary, the status and the events.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub created: Vec<String>,
    /// Object and the fields that changed.
    pub updated: Vec<(String, Vec<String>)>,
    pub recreated: Vec<String>,
    pub unchanged: usize,
    /// Fields taken over from other field managers.
    pub conflicts: Vec<(String, String)>,
    pub prune: PruneOutcome,
    /// Write requests sent to the API server (objects, deletes, the parent).
    pub writes: usize,
    /// How many objects of the revision were applied (all of them, once it is done).
    pub objects: usize,
    /// The applied objects health waits for: only their identity and kind are kept.
    watched: Vec<(ObjectRef, Kind)>,
}

impl Applied {
    pub fn changed(&self) -> usize {
        self.created.len() + self.updated.len() + self.recreated.len()
    }

    /// The applied objects health waits for (marked by the plan).
    pub fn watched(&self) -> impl Iterator<Item = (&ObjectRef, &Kind)> {
        self.watched.iter().map(|(id, kind)| (id, kind))
    }
}

/// Applies the plan. `recorded` is the inventory as read before planning.
pub async fn apply(
    client: &kube::Client,
    discovered: &mut Discovered,
    plan: Plan,
    parent: &Parent,
    mut recorded: Recorded,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    let id = parent.id();

    // Widen the inventory first, so an interrupted apply leaves every object findable.
    // Usually nothing recorded has left the revision: the union is the new list.
    let union: Members = if recorded.members.is_subset(&plan.members) {
        Arc::clone(&plan.members)
    } else {
        Arc::new(recorded.members.union(&plan.members).cloned().collect())
    };
    if inventory::write(client, parent, &mut recorded, &union, None).await? {
        applied.writes += 1;
    }
    drop(union);

    let Plan {
        objects,
        deferred,
        prunes,
        members,
    } = plan;
    // Each stage is taken out of the plan in place, in plan order: the few
    // foundation and cluster-scoped objects move, the many namespaced ones stay put
    // (a partition into new vectors held the plan twice over at its peak).
    let mut rest = objects;
    let foundation: Vec<Planned> = rest
        .extract_if(.., |p| p.manifest.stage == Stage::ClusterFoundation)
        .collect();
    let crds: Vec<(String, Kind)> = foundation
        .iter()
        .filter(|p| p.manifest.id.kind == "CustomResourceDefinition")
        .map(|p| (p.manifest.id.name.clone(), p.kind.clone()))
        .collect();
    write_stage(client, foundation, &mut applied).await?;
    wait_foundation(client, &crds).await?;

    if !deferred.is_empty() {
        let versions: BTreeSet<String> = deferred.iter().map(|m| m.id.api_version()).collect();
        // Established does not mean served yet: discovery lags a moment behind.
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            discovered.forget(&versions);
            discovered.learn(client, versions.clone()).await?;
            let all_served = deferred
                .iter()
                .all(|m| discovered.kind(&m.id.api_version(), &m.id.kind).is_some());
            if all_served || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let mut ready = Vec::new();
        let mut failures = Vec::new();
        for manifest in deferred {
            let api_version = manifest.id.api_version();
            match discovered.kind(&api_version, &manifest.id.kind) {
                Some(kind) => ready.push(Planned::to_plan(manifest, kind.clone())),
                None => failures.push(ObjectFailure {
                    object: manifest.id.to_string(),
                    reason: format!(
                        "kind {} is still not served after its CRD was established",
                        manifest.id.kind
                    ),
                    transient: true,
                }),
            }
        }
        // Nothing of these kinds (or in these namespaces) existed at planning time.
        // New objects (of a new CRD, in a new Namespace): ignored fields are sent at
        // creation anyway, so only the annotation's syntax matters.
        let mut dry_failures = plan::dry_run_all(
            client,
            &mut ready,
            &id,
            &LiveIndex::default(),
            Memory::NONE,
            &plan::IgnoreRules::default(),
        )
        .await;
        failures.append(&mut dry_failures);
        if !failures.is_empty() {
            return Err(PlanError::Rejected(failures).into());
        }
        rest.append(&mut ready);
        // Keep the documented order: cluster-scoped before namespaced.
        rest.sort_by_key(|p| p.manifest.stage);
    }
    let cluster_scoped: Vec<Planned> = rest
        .extract_if(.., |p| p.manifest.stage == Stage::ClusterScoped)
        .collect();
    write_stage(client, cluster_scoped, &mut applied).await?;
    write_stage(client, rest, &mut applied).await?;

    applied.prune = prune::prune(client, discovered, prunes, &id).await?;
    applied.writes += applied.prune.pruned.len();

    let mut final_members = members;
    if !applied.prune.kept.is_empty() {
        Arc::make_mut(&mut final_members).extend(applied.prune.kept.iter().map(|(m, _)| m.clone()));
    }
    if inventory::write(client, parent, &mut recorded, &final_members, None).await? {
        applied.writes += 1;
    }
    Ok(applied)
}

/// Writes the objects of one stage. Consecutive objects of the same kind are written
/// concurrently; a kind boundary is a barrier, so the kind order holds. When the API
/// server stops answering, nothing more is sent: the writes in flight end, and one
/// error counts what failed and what was not sent (instead of a failed request, and
/// a log line, per remaining object). Objects are taken from the stage one at a
/// time, and of a written object only what health needs is kept.
async fn write_stage(
    client: &kube::Client,
    objects: Vec<Planned>,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    let total = objects.len();
    let mut queue = objects.into_iter().peekable();
    let mut unreachable: Option<(String, usize)> = None;
    let mut sent = 0;
    while let Some(first) = queue.peek() {
        let (group, kind) = (
            first.manifest.id.group.clone(),
            first.manifest.id.kind.clone(),
        );
        let same_kind = |p: &Planned| p.manifest.id.group == group && p.manifest.id.kind == kind;
        let mut tasks = JoinSet::new();
        // Which object each write is for: a write that ends without a result (a
        // panic, a cancellation) fails the apply rather than vanishing from it.
        let mut running: HashMap<task::Id, String> = HashMap::new();
        let mut first_error = None;
        loop {
            while tasks.len() < CONCURRENCY && unreachable.is_none() {
                let Some(p) = queue.next_if(same_kind) else {
                    break;
                };
                sent += 1;
                if p.action == Action::Unchanged {
                    record(applied, p, 0);
                    continue;
                }
                let client = client.clone();
                let object = p.manifest.id.to_string();
                let handle = tasks.spawn(async move {
                    let result = write_one(&client, &p).await;
                    (p, result)
                });
                running.insert(handle.id(), object);
            }
            let (p, result) = match tasks.join_next_with_id().await {
                None => break,
                Some(Ok((id, done))) => {
                    running.remove(&id);
                    done
                }
                Some(Err(join)) => {
                    tracing::error!(error = %join, "write task failed");
                    let object = running.remove(&join.id()).unwrap_or_default();
                    let failure = plan::ended_without_result(object, "write", &join);
                    first_error.get_or_insert(ApplyError::Write(failure));
                    continue;
                }
            };
            match result {
                Ok(writes) => record(applied, p, writes),
                Err(ApplyError::Unreachable { reason, .. }) => {
                    let (_, failed) = unreachable.get_or_insert((reason, 0));
                    *failed += 1;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some((reason, failed)) = unreachable {
            return Err(ApplyError::Unreachable {
                reason,
                failed,
                skipped: total - sent,
            });
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(())
}

fn record(applied: &mut Applied, p: Planned, writes: usize) {
    let Planned {
        manifest,
        kind,
        watch,
        action,
        conflicts,
        ..
    } = p;
    let name = manifest.id.to_string();
    applied.writes += writes;
    applied.objects += 1;
    for c in conflicts {
        applied.conflicts.push((name.clone(), c.message));
    }
    match action {
        Action::Create => applied.created.push(name),
        Action::Update { fields } => applied.updated.push((name, fields)),
        Action::Recreate { .. } => applied.recreated.push(name),
        Action::Unchanged => applied.unchanged += 1,
    }
    if watch {
        applied.watched.push((manifest.id, kind));
    }
}

/// Writes one object as its plan says; returns the number of write requests made.
async fn write_one(client: &kube::Client, p: &Planned) -> Result<usize, ApplyError> {
    let api = api_for(client, &p.kind, p.manifest.id.namespace.as_deref());
    let name = &p.manifest.id.name;
    let fail = |e: kube::Error| {
        if is_unreachable(&e) {
            ApplyError::Unreachable {
                reason: api_reason(&e),
                failed: 1,
                skipped: 0,
            }
        } else {
            ApplyError::Write(ObjectFailure::from_api(&p.manifest, &e))
        }
    };
    let params = inventory::apply_params().force();
    match &p.action {
        Action::Unchanged => Ok(0),
        Action::Create | Action::Update { .. } => {
            api.patch(name, &params, &Patch::Apply(&p.body))
                .await
                .map_err(fail)?;
            Ok(1)
        }
        Action::Recreate { .. } => {
            tracing::info!(object = %p.manifest.id, "immutable fields changed; deleting and recreating ({})", plan::FORCE_ANNOTATION);
            match api.delete(name, &DeleteParams::foreground()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(fail(e)),
            }
            let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
            while api.get_opt(name).await.map_err(fail)?.is_some() {
                if tokio::time::Instant::now() > deadline {
                    return Err(ApplyError::NotSettled {
                        object: p.manifest.id.to_string(),
                        condition: "deleted",
                        timeout: SETTLE_TIMEOUT,
                    });
                }
                tokio::time::sleep(POLL).await;
            }
            api.patch(name, &params, &Patch::Apply(&p.body))
                .await
                .map_err(fail)?;
            Ok(2)
        }
    }
}

/// Waits until written CRDs are Established, so their kinds can be dry-run and applied.
async fn wait_foundation(client: &kube::Client, crds: &[(String, Kind)]) -> Result<(), ApplyError> {
    for (name, kind) in crds {
        let object = format!("CustomResourceDefinition {name}");
        let api = api_for(client, kind, None);
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let live = api.get_opt(name).await.map_err(|e| {
                ApplyError::Write(ObjectFailure {
                    object: object.clone(),
                    transient: is_transient(&e),
                    reason: api_reason(&e),
                })
            })?;
            let established = live
                .and_then(|o| serde_json::to_value(o).ok())
                .map(|v| condition_true(&v, "Established"))
                .unwrap_or(false);
            if established {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApplyError::NotSettled {
                    object: object.clone(),
                    condition: "Established",
                    timeout: SETTLE_TIMEOUT,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

/// True when `status.conditions` has `type` with status "True".
pub fn condition_true(object: &Value, kind: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|conds| {
            conds
                .iter()
                .any(|c| c["type"].as_str() == Some(kind) && c["status"].as_str() == Some("True"))
        })
        .unwrap_or(false)
}
