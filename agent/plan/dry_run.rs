//! One object's dry run, and many at once: what the server says each object would
//! become, compared with what it is.
//!
//! In: manifests paired with their served kinds (a [`Planned`] each, not yet
//! planned), the live index and what earlier plans observed. Out: the same entries
//! planned in place, and an [`ObjectFailure`] per object whose dry run failed (or
//! whose task ended without a result: never a silent drop).

use std::collections::HashMap;

use kube::Resource;
use kube::api::{DynamicObject, GetParams, Patch};
use kube::core::Request;
use serde_json::Value;
use tokio::task::{self, JoinSet};

use super::ignore::{self, IgnoreRules};
use super::live::{self, Digest, LiveIndex, Observation};
use super::{
    Action, Conflict, FORCE_ANNOTATION, Keep, Memory, ObjectFailure, Outcome, Planned, Shown,
    compare,
};
use crate::cluster::list::Lean;
use crate::cluster::{CONCURRENCY, Kind};
use crate::inventory::{self, PART_OF};
use crate::manifests::{Body, Manifest};

/// Plans objects concurrently, in place: each entry (made by [`Planned::to_plan`])
/// gets its action, and its body if it is to be written. Returns the failures in
/// input order; their entries are removed, the others keep their order.
///
/// An object whose body was dry-run before and whose live object is exactly what that
/// dry run produced is unchanged without a request. The others are dry-run; the live
/// object is read only when it exists and its digest differs from the dry run's.
/// Only the objects in flight are trees at any moment: the others are text.
pub async fn dry_run_all(
    client: &kube::Client,
    objects: &mut Vec<Planned>,
    applyset_id: &str,
    live: &LiveIndex,
    memory: Memory<'_>,
    ignore: &IgnoreRules,
) -> Vec<ObjectFailure> {
    let Memory { observed, keep } = memory;
    let mut tasks = JoinSet::new();
    // Which object each task plans, so a task that ends without a result (a panic,
    // a cancellation) still fails its object instead of dropping it from the plan.
    let mut running: HashMap<task::Id, (usize, String)> = HashMap::new();
    let mut failed: Vec<(usize, ObjectFailure)> = Vec::new();
    let mut next = 0;
    loop {
        while tasks.len() < CONCURRENCY && next < objects.len() {
            let index = next;
            next += 1;
            let p = &mut objects[index];
            let mut body = p.manifest.object.take().tree();
            p.watch = crate::manifests::worth_watching(&body);
            label(&mut body, applyset_id);
            let ignored = match ignore.paths(&p.manifest.id, &body) {
                Ok(paths) => paths,
                Err(reason) => {
                    let object = p.manifest.id.to_string();
                    failed.push((
                        index,
                        ObjectFailure {
                            object,
                            reason,
                            transient: false,
                        },
                    ));
                    continue;
                }
            };
            let body_digest = live::body_digest(&body);
            let live = live.get(&p.manifest.id).copied();
            if observed.unchanged(&p.manifest.id, &body_digest, live.as_ref()) {
                continue; // as made: unchanged, nothing kept to send
            }
            let client = client.clone();
            // The object has moved into `body`: this clone is the identity only.
            let manifest = p.manifest.clone();
            let kind = p.kind.clone();
            let object = manifest.id.to_string();
            let handle = tasks.spawn(async move {
                let known = Known {
                    body,
                    body_digest,
                    live,
                    keep,
                    ignored,
                };
                (index, dry_run(&client, &manifest, &kind, known).await)
            });
            running.insert(handle.id(), (index, object));
        }
        let (index, result) = match tasks.join_next_with_id().await {
            Some(Ok((id, done))) => {
                running.remove(&id);
                done
            }
            Some(Err(join)) => {
                // A panicking task is a bug; surface it as a failure of its object.
                tracing::error!(error = %join, "dry-run task failed");
                match running.remove(&join.id()) {
                    Some((index, object)) => {
                        (index, Err(ended_without_result(object, "dry run", &join)))
                    }
                    // Every task is recorded when spawned; should one not be, its
                    // failure still rejects the plan, never a silent drop.
                    None => (
                        usize::MAX,
                        Err(ended_without_result(
                            "an object of the revision".into(),
                            "dry run",
                            &join,
                        )),
                    ),
                }
            }
            None => break,
        };
        match result {
            Ok(outcome) => {
                if let Some(p) = objects.get_mut(index) {
                    p.settle(outcome);
                }
            }
            Err(failure) => failed.push((index, failure)),
        }
    }
    remove_failed(objects, failed)
}

/// Removes the entries that failed (by index, in any order) and returns their
/// failures in input order; the other entries keep theirs.
fn remove_failed<T, F>(objects: &mut Vec<T>, mut failed: Vec<(usize, F)>) -> Vec<F> {
    if failed.is_empty() {
        return Vec::new();
    }
    failed.sort_by_key(|(index, _)| *index);
    let mut index = 0;
    objects.retain(|_| {
        let keep = failed.binary_search_by_key(&index, |(i, _)| *i).is_err();
        index += 1;
        keep
    });
    failed.into_iter().map(|(_, failure)| failure).collect()
}

/// The failure of an object whose task ended without a result: a panic is a bug
/// (not retried), a cancellation may not happen again.
pub fn ended_without_result(object: String, what: &str, join: &task::JoinError) -> ObjectFailure {
    ObjectFailure {
        object,
        reason: format!("the {what} task ended without a result ({join})"),
        transient: join.is_cancelled(),
    }
}

/// Makes a manifest's object the body hawser sends: adds the ApplySet member label.
fn label(object: &mut Value, applyset_id: &str) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(PART_OF.into(), Value::String(applyset_id.into()));
        }
    }
}

/// What is known of one object before its dry run.
struct Known {
    body: Value,
    body_digest: Digest,
    /// The digest of the live object, if the list found it.
    live: Option<Digest>,
    keep: Keep,
    /// Drift-ignored pointers: not sent once the object exists.
    ignored: Vec<String>,
}

async fn dry_run(
    client: &kube::Client,
    manifest: &Manifest,
    kind: &Kind,
    known: Known,
) -> Result<Outcome, ObjectFailure> {
    let namespace = kind
        .namespaced
        .then_some(manifest.id.namespace.as_deref())
        .flatten();
    let request = Request::new(DynamicObject::url_path(&kind.resource, namespace));
    let name = manifest.id.name.clone();
    let fail = |e: kube::Error| ObjectFailure::from_api(manifest, &e);
    let Known {
        mut body,
        body_digest,
        live: live_digest,
        keep,
        ignored,
    } = known;

    // Drift-ignored fields are sent only to create the object (see `ignore`).
    // The whole object is kept for a recreation, which is a creation.
    let full = (!ignored.is_empty()).then(|| body.clone());
    let mut omitted = live_digest.is_some() && !ignored.is_empty();
    if omitted {
        ignore::omit(&mut body, &ignored);
    }
    let mut conflicts = Vec::new();
    let mut attempt = dry_apply(client, &request, &name, &body, &mut conflicts).await;
    if !omitted && !ignored.is_empty() && matches!(&attempt, Ok(Lean(d)) if stored(d)) {
        // The list did not show it, but it exists: send it without them after all.
        omitted = true;
        ignore::omit(&mut body, &ignored);
        conflicts.clear();
        attempt = dry_apply(client, &request, &name, &body, &mut conflicts).await;
    }
    let (action, live, desired, digests) = match attempt {
        Ok(Lean(mut desired)) => {
            let exists = stored(&desired);
            compare::strip(&mut desired);
            let result_digest = live::digest(&desired);
            let mut digests = Some(Observation::new(&body_digest, &result_digest));
            if !exists {
                (Action::Create, None, desired, digests)
            } else if live_digest == Some(result_digest) {
                return Ok(Outcome::unchanged(digests));
            } else {
                let live = get(client, &request, &name).await.map_err(fail)?;
                if let Some(live) = &live
                    && omitted
                    && ignore::keep_live(&mut body, &ignored, live, &desired)
                {
                    // hawser still owned an ignored field alone, so leaving it out
                    // would remove it: send the live value until another manager
                    // takes the field over.
                    conflicts.clear();
                    let Lean(mut again) = dry_apply(client, &request, &name, &body, &mut conflicts)
                        .await
                        .map_err(fail)?;
                    compare::strip(&mut again);
                    digests = Some(Observation::new(&body_digest, &live::digest(&again)));
                    desired = again;
                }
                let fields = match &live {
                    Some(live) if omitted => compare::paths(
                        &ignore::without(live, &ignored),
                        &ignore::without(&desired, &ignored),
                    ),
                    Some(live) => compare::paths(live, &desired),
                    None => Vec::new(),
                };
                let action = match &live {
                    None => Action::Create,
                    Some(_) if !fields.is_empty() => Action::Update { fields },
                    Some(_) => return Ok(Outcome::unchanged(digests)),
                };
                (action, live, desired, digests)
            }
        }
        // Only an existing object has immutable fields.
        Err(kube::Error::Api(status)) if is_immutable(&status) && wants_force(&body) => {
            let action = Action::Recreate {
                reason: super::failure::shown_message(manifest, &status),
            };
            if let Some(full) = full {
                body = full;
                omitted = false;
            }
            // The live object is only read to be shown.
            match keep {
                Keep::Diffs => {
                    let live = get(client, &request, &name).await.map_err(fail)?;
                    (action, live, body.clone(), None)
                }
                Keep::Writes => (action, None, Value::Null, None),
            }
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
    let shown = match keep {
        // `diff` leaves drift-ignored fields out of an existing object.
        Keep::Diffs if omitted => Some(Shown {
            live: live.map(|l| ignore::without(&l, &ignored)),
            desired: ignore::without(&desired, &ignored),
        }),
        Keep::Diffs => Some(Shown { live, desired }),
        Keep::Writes => None,
    };
    Ok(Outcome {
        body: Body::new(&body),
        action,
        shown: shown.map(Box::new),
        conflicts,
        digests,
    })
}

/// A dry-run apply: without force first, so that another manager's ownership is
/// seen and reported in `conflicts`; then with force, which is how hawser writes.
async fn dry_apply(
    client: &kube::Client,
    request: &Request,
    name: &str,
    body: &Value,
    conflicts: &mut Vec<Conflict>,
) -> Result<Lean, kube::Error> {
    let params = inventory::apply_params().dry_run();
    match send(client, request.patch(name, &params, &Patch::Apply(body))).await {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            conflicts.push(Conflict {
                message: status.message.clone(),
            });
            let force = params.clone().force();
            send(client, request.patch(name, &force, &Patch::Apply(body))).await
        }
        other => other,
    }
}

/// Whether a dry-run result is of a stored object: a dry-run create is never
/// stored, so it has no resourceVersion.
fn stored(result: &Value) -> bool {
    result
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|rv| !rv.is_empty())
}

/// Sends a built request and parses the answer leanly.
async fn send(
    client: &kube::Client,
    request: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<Lean, kube::Error> {
    let request = request.map_err(kube::Error::BuildRequest)?;
    client.request::<Lean>(request).await
}

/// The live object, stripped; `None` when it does not exist.
async fn get(
    client: &kube::Client,
    request: &Request,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    match send(client, request.get(name, &GetParams::default())).await {
        Ok(Lean(mut live)) => {
            compare::strip(&mut live);
            Ok(Some(live))
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

fn wants_force(body: &Value) -> bool {
    body.pointer("/metadata/annotations")
        .and_then(|a| a.get(FORCE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("enabled")
}

fn is_immutable(status: &kube::core::Status) -> bool {
    status.code == 422 && status.message.contains("immutable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_objects_leave_the_plan_and_the_rest_keep_their_order() {
        let mut objects = vec!['a', 'b', 'c', 'd', 'e'];
        let failures = remove_failed(&mut objects, vec![(3, "d failed"), (0, "a failed")]);
        assert_eq!(objects, ['b', 'c', 'e']);
        assert_eq!(failures, ["a failed", "d failed"]);

        // A failure without an object (a task not recorded) removes nothing but is
        // still returned, so the plan is rejected.
        let failures = remove_failed(&mut objects, vec![(usize::MAX, "lost")]);
        assert_eq!(objects, ['b', 'c', 'e']);
        assert_eq!(failures, ["lost"]);
        assert!(remove_failed::<char, &str>(&mut objects, Vec::new()).is_empty());
    }

    #[tokio::test]
    async fn a_task_without_result_is_a_failure_of_its_object() {
        let mut tasks = JoinSet::new();
        tasks.spawn(async { panic!("bug") });
        let panicked = tasks.join_next().await.unwrap().unwrap_err();
        let failure = ended_without_result("v1/ConfigMap ns/a".into(), "dry run", &panicked);
        assert_eq!(failure.object, "v1/ConfigMap ns/a");
        assert!(
            failure
                .reason
                .starts_with("the dry run task ended without a result")
        );
        assert!(!failure.transient, "a panic is a bug, not worth retrying");

        let handle = tasks.spawn(std::future::pending::<()>());
        handle.abort();
        let cancelled = tasks.join_next().await.unwrap().unwrap_err();
        assert!(ended_without_result("x".into(), "write", &cancelled).transient);
    }
}
