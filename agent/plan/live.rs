//! What the cluster holds of hawser's objects, learned with one LIST per kind and
//! namespace instead of one GET per object, and what each object last became.
//!
//! In: the objects to plan, grouped by kind and namespace, and the ApplySet id whose
//! member label selects them. Out: a [`LiveIndex`], the digest of every labelled
//! live object with what the server owns removed. With [`Observed`] (the digest a dry
//! run of the same body produced last time) the planner can tell that an object is
//! unchanged without a dry run: server-side apply is idempotent, so applying a body
//! to the very object that applying it produced changes nothing.
//!
//! Only digests are kept, never the objects: the index of 1,000 objects is ~100 KB.
//! Items are parsed with `managedFields` and `status` skipped rather than built
//! ([`Lean`], see [`crate::cluster::list`]), a page at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{Plan, compare};
use crate::cluster::Kind;
use crate::cluster::list::{Lean, list_each, lists_of};
use crate::inventory::Member;
use crate::manifests::ObjectRef;

/// SHA-256 of an object's desired state (see [`digest`]).
pub type Digest = [u8; 32];

/// The digest of a body as hawser sends it.
pub fn body_digest(body: &Value) -> Digest {
    Sha256::digest(serde_json::to_vec(body).unwrap_or_default()).into()
}

/// The digest of an object stripped of what the server owns, and of `apiVersion` and
/// `kind` (list items carry neither). Keys are sorted (serde_json's map is ordered),
/// so equal objects have equal digests.
pub fn digest(object: &Value) -> Digest {
    let mut object = object.clone();
    compare::strip(&mut object);
    if let Some(map) = object.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let bytes = serde_json::to_vec(&object).unwrap_or_default();
    Sha256::digest(&bytes).into()
}

/// The live objects labelled as members of the ApplySet, by identity. Keyed by the
/// identity's digest ([`id_key`]): 48 bytes an object, not the identity's strings.
#[derive(Debug, Default)]
pub struct LiveIndex {
    digests: HashMap<Short, Digest>,
}

impl LiveIndex {
    pub fn get(&self, id: &ObjectRef) -> Option<&Digest> {
        self.digests.get(&id_key(id))
    }

    /// Lists, for every kind and namespace among `objects`, the live objects that carry
    /// the member label. A list the server refuses (a ServiceAccount without `list`)
    /// or fails leaves its objects out: the planner then reads them one by one.
    pub async fn list<'a>(
        client: &kube::Client,
        objects: impl Iterator<Item = (&'a ObjectRef, &'a Kind)>,
        applyset_id: &str,
    ) -> LiveIndex {
        let mut digests = HashMap::new();
        list_each::<Lean, _>(
            client,
            lists_of(objects),
            applyset_id,
            digest,
            |list, name, live| {
                digests.insert(named_key(list, &name), live);
            },
        )
        .await;
        LiveIndex { digests }
    }
}

/// What a dry run of each object's body produced the last time it was planned: the
/// body's digest and the result's. Kept by the agent from one plan to the next, so it
/// is what the agent holds per object between reconciles: each entry is keyed by a
/// digest of the object's identity, not by the identity's five strings, and holds
/// truncated digests: 48 bytes an object (about 80 with the map), where the identity
/// alone took ~250 on the heap.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    results: BTreeMap<Short, (Short, Short)>,
}

/// The first 16 bytes of a SHA-256. 128 bits keep accidental collisions out of reach
/// (a birthday collision needs ~2^64 objects), and what a collision would cost is one
/// skipped dry run; an adversary able to shape live objects can write the cluster
/// anyway. Half the bytes of a full digest, for what the agent keeps per object.
type Short = [u8; 16];

/// What one dry run saw: the digests of the body sent and of its result, short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    body: Short,
    result: Short,
}

impl Observation {
    pub fn new(body: &Digest, result: &Digest) -> Self {
        Observation {
            body: short(body),
            result: short(result),
        }
    }
}

fn short(digest: &Digest) -> Short {
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The identity's digest: its fields, each ended by a NUL (no group, kind, namespace
/// or name can hold one), with a cluster-scoped object's missing namespace marked apart
/// from any namespace's name.
fn id_key(id: &ObjectRef) -> Short {
    named_key(id, &id.name)
}

/// [`id_key`] of the object called `name` in `list`'s kind and namespace.
fn named_key(list: &ObjectRef, name: &str) -> Short {
    let mut hash = Sha256::new();
    hash_identity(
        &mut hash,
        [&list.group, &list.version, &list.kind],
        list.namespace.as_deref(),
        name,
    );
    short(&hash.finalize().into())
}

fn hash_identity(hash: &mut Sha256, gvk: [&str; 3], namespace: Option<&str>, name: &str) {
    for part in gvk {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    match namespace {
        Some(ns) => {
            hash.update([1]);
            hash.update(ns.as_bytes());
        }
        None => hash.update([2]),
    }
    hash.update([0]);
    hash.update(name.as_bytes());
    hash.update([0]);
}

/// The digest of a member list: each member's identity, in the set's order.
fn members_key(members: &BTreeSet<Member>) -> Short {
    let mut hash = Sha256::new();
    for m in members {
        hash_identity(
            &mut hash,
            [&m.group, &m.version, &m.kind],
            m.namespace.as_deref(),
            &m.name,
        );
    }
    short(&hash.finalize().into())
}

impl Observed {
    pub const EMPTY: Observed = Observed {
        results: BTreeMap::new(),
    };

    pub fn record(&mut self, id: &ObjectRef, seen: Observation) {
        self.results.insert(id_key(id), (seen.body, seen.result));
    }

    /// Carries `id`'s entry over from `before` (an object found unchanged without a
    /// dry run: what it became is still what it is).
    pub fn keep(&mut self, id: &ObjectRef, before: &Observed) {
        let key = id_key(id);
        if let Some(entry) = before.results.get(&key) {
            self.results.insert(key, *entry);
        }
    }

    /// True when `body` was dry-run before and the live object is exactly what that
    /// dry run said it would become.
    pub fn unchanged(&self, id: &ObjectRef, body: &Digest, live: Option<&Digest>) -> bool {
        match (self.results.get(&id_key(id)), live) {
            (Some((seen_body, seen_result)), Some(live)) => {
                *seen_body == short(body) && *seen_result == short(live)
            }
            _ => false,
        }
    }

    pub fn len(&self) -> usize {
        self.results.len()
    }

    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }
}

/// What the last plan of a revision expects to find live: the LISTs (kind and
/// namespace) its objects are in, how many objects each holds, and a digest of its
/// member list. A few hundred bytes whatever the number of objects.
///
/// With the [`Observed`] results of the same plan it answers a drift tick's question
/// without rendering the revision again: the tree is immutable, so the same revision
/// with the same substitution variables renders the same bodies, whose dry runs
/// produced the observed results. When every expected object is live as its result
/// says and the inventory records exactly these members, a full plan would find every
/// object unchanged and nothing to prune.
#[derive(Debug, Clone)]
pub struct Expected {
    lists: Vec<(ObjectRef, Kind, usize)>,
    members: Short,
}

impl Expected {
    /// What `plan` expects. `None` when some of its objects are planned only during
    /// apply (kinds of CRDs in the same revision, objects of new Namespaces): those
    /// have no observed result yet, so only a full plan can check them.
    pub fn of(plan: &Plan) -> Option<Expected> {
        if !plan.deferred.is_empty() {
            return None;
        }
        // By the identity without its name: one entry per kind and namespace.
        let mut lists: BTreeMap<ObjectRef, (Kind, usize)> = BTreeMap::new();
        for p in &plan.objects {
            let template = ObjectRef {
                name: String::new(),
                ..p.manifest.id.clone()
            };
            lists
                .entry(template)
                .or_insert_with(|| (p.kind.clone(), 0))
                .1 += 1;
        }
        Some(Expected {
            lists: lists
                .into_iter()
                .map(|(template, (kind, n))| (template, kind, n))
                .collect(),
            members: members_key(&plan.members),
        })
    }

    /// Whether the inventory records exactly the members this plan had.
    pub fn same_members(&self, recorded: &BTreeSet<Member>) -> bool {
        members_key(recorded) == self.members
    }

    /// Lists the expected objects and tells whether every one of them is live exactly
    /// as its last dry run said it would become. Only a count is kept: a list that
    /// fails, an object missing, drifted or never observed makes it false.
    pub async fn all_live_as_observed(
        &self,
        client: &kube::Client,
        observed: &Observed,
        applyset_id: &str,
    ) -> bool {
        let expected: usize = self.lists.iter().map(|(_, _, n)| n).sum();
        let lists: Vec<(ObjectRef, Kind)> = self
            .lists
            .iter()
            .map(|(t, k, _)| (t.clone(), k.clone()))
            .collect();
        let mut matched = 0;
        list_each::<Lean, _>(client, lists, applyset_id, digest, |list, name, live| {
            let seen = observed.results.get(&named_key(list, &name));
            if seen.is_some_and(|(_, result)| *result == short(&live)) {
                matched += 1;
            }
        })
        .await;
        if matched != expected {
            // Why a tick renders after all (it costs as much memory as an apply):
            // what a full plan will dry-run again.
            tracing::info!(
                objects = expected,
                not_as_observed = expected.saturating_sub(matched),
                "objects changed since their last dry run; planning the revision in full"
            );
        }
        matched == expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digest_ignores_what_the_server_owns_and_list_item_headers() {
        let dry_run = json!({"apiVersion":"v1","kind":"ConfigMap",
            "metadata":{"name":"a","resourceVersion":"7","uid":"u","creationTimestamp":"t"},
            "data":{"k":"v"}});
        let list_item = json!({"metadata":{"name":"a","resourceVersion":"9"},"data":{"k":"v"}});
        assert_eq!(digest(&dry_run), digest(&list_item));
        let changed = json!({"metadata":{"name":"a"},"data":{"k":"w"}});
        assert_ne!(digest(&dry_run), digest(&changed));
    }

    #[test]
    fn observed_needs_the_same_body_and_the_same_live_object() {
        let id = ObjectRef {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: "a".into(),
        };
        let (body, result, other) = ([1; 32], [2; 32], [3; 32]);
        let mut observed = Observed::default();
        assert!(!observed.unchanged(&id, &body, Some(&result)));
        observed.record(&id, Observation::new(&body, &result));
        assert!(observed.unchanged(&id, &body, Some(&result)));
        assert!(!observed.unchanged(&id, &other, Some(&result)), "new body");
        assert!(
            !observed.unchanged(&id, &body, Some(&other)),
            "live drifted"
        );
        assert!(!observed.unchanged(&id, &body, None), "live gone");
    }

    #[test]
    fn identities_that_differ_anywhere_are_kept_apart() {
        let base = ObjectRef {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: Some("ns".into()),
            name: "a".into(),
        };
        let variants = [
            ObjectRef {
                namespace: None,
                ..base.clone()
            },
            ObjectRef {
                namespace: Some(String::new()),
                ..base.clone()
            },
            // Moving a character from one field to the next changes the identity.
            ObjectRef {
                namespace: Some("n".into()),
                name: "sa".into(),
                ..base.clone()
            },
            ObjectRef {
                version: "v1beta1".into(),
                ..base.clone()
            },
        ];
        let mut keys: Vec<Short> = variants.iter().map(id_key).collect();
        keys.push(id_key(&base));
        let unique: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());

        let mut observed = Observed::default();
        observed.record(&base, Observation::new(&[1; 32], &[2; 32]));
        for other in &variants {
            assert!(!observed.unchanged(other, &[1; 32], Some(&[2; 32])));
        }
        let mut carried = Observed::default();
        carried.keep(&base, &observed);
        assert!(carried.unchanged(&base, &[1; 32], Some(&[2; 32])));
        assert_eq!(carried.len(), 1);
    }

    #[test]
    fn a_member_list_digest_changes_with_any_member() {
        let m = |ns: &str, name: &str| Member {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(ns.into()),
            name: name.into(),
        };
        let set = |members: &[Member]| members.iter().cloned().collect::<BTreeSet<_>>();
        let base = set(&[m("ns", "a"), m("ns", "b")]);
        assert_eq!(members_key(&base), members_key(&base.clone()));
        for other in [
            set(&[m("ns", "a")]),
            set(&[m("ns", "a"), m("ns", "b"), m("ns", "c")]),
            set(&[m("ns", "a"), m("other", "b")]),
            // The same characters, split between members differently.
            set(&[m("ns", "ab"), m("ns", "")]),
            BTreeSet::new(),
        ] {
            assert_ne!(members_key(&base), members_key(&other), "{other:?}");
        }
    }
}
