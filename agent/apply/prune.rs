//! Prune: delete recorded members that left the revision, but only objects that are
//! still hawser's (they carry the ApplySet label) and do not opt out with
//! `hawser.dev/prune: disabled`. Namespaced objects go first, Namespaces and CRDs
//! last. An object hawser may not delete stays in the inventory and is reported.

use kube::api::DeleteParams;
use serde_json::Value;

use crate::cluster::{ClusterError, Discovered};
use crate::cluster::{api_for, api_reason};
use crate::inventory::{Member, PART_OF};

pub const PRUNE_ANNOTATION: &str = "hawser.dev/prune";

#[derive(Debug, Clone, Default)]
pub struct PruneOutcome {
    pub pruned: Vec<String>,
    /// Left in place and no longer managed (opted out, or not ours any more).
    pub released: Vec<(String, String)>,
    /// Could not be deleted; stays in the inventory. Member and reason.
    pub kept: Vec<(Member, String)>,
}

pub(super) async fn prune(
    client: &kube::Client,
    discovered: &mut Discovered,
    mut members: Vec<Member>,
    applyset_id: &str,
) -> Result<PruneOutcome, ClusterError> {
    members.sort_by_key(prune_rank);
    let versions: Vec<String> = members.iter().map(api_version).collect();
    discovered.learn(client, versions).await?;

    let mut outcome = PruneOutcome::default();
    for member in members {
        let name = member.object_ref().to_string();
        let Some(kind) = discovered
            .kind(&api_version(&member), &member.kind)
            .cloned()
        else {
            // The kind is no longer served (its CRD went away): so did its objects.
            outcome
                .released
                .push((name, "kind is no longer served".into()));
            continue;
        };
        let api = api_for(client, &kind, member.namespace.as_deref());
        let live = match api.get_opt(&member.name).await {
            Ok(Some(live)) => serde_json::to_value(live).unwrap_or(Value::Null),
            Ok(None) => continue,
            Err(e) => {
                outcome.kept.push((member, api_reason(&e)));
                continue;
            }
        };
        if live
            .pointer("/metadata/labels")
            .and_then(|l| l.get(PART_OF))
            .and_then(Value::as_str)
            != Some(applyset_id)
        {
            outcome
                .released
                .push((name, format!("no longer labelled {PART_OF}={applyset_id}")));
            continue;
        }
        if live
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(PRUNE_ANNOTATION))
            .and_then(Value::as_str)
            == Some("disabled")
        {
            outcome
                .released
                .push((name, format!("{PRUNE_ANNOTATION}: disabled")));
            continue;
        }
        match api.delete(&member.name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(object = %name, "pruned");
                outcome.pruned.push(name);
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                tracing::warn!(object = %name, reason = %api_reason(&e), "prune refused; object stays in the inventory");
                outcome.kept.push((member, api_reason(&e)));
            }
        }
    }
    Ok(outcome)
}

fn api_version(m: &Member) -> String {
    if m.group.is_empty() {
        m.version.clone()
    } else {
        format!("{}/{}", m.group, m.version)
    }
}

/// Reverse of the apply stages: namespaced objects, then cluster-scoped, then
/// Namespaces and CRDs.
fn prune_rank(m: &Member) -> u8 {
    match (m.kind.as_str(), &m.namespace) {
        ("Namespace" | "CustomResourceDefinition", _) => 2,
        (_, None) => 1,
        (_, Some(_)) => 0,
    }
}
