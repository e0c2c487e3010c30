//! Reading many objects with one LIST per kind and namespace instead of one GET per
//! object: what the planner and health both need of the cluster.
//!
//! In: object identities with their served kinds, and the ApplySet id whose member
//! label selects them. Out: one reduction of each listed object, by identity. Items
//! are parsed with `managedFields` (and, for [`Lean`], `status`) skipped rather than
//! built, a page at a time. What can go wrong: a list the server refuses or fails is
//! logged and left out, so the caller reads those objects one by one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use kube::Resource;
use kube::api::{DynamicObject, ListParams};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use tokio::task::JoinSet;

use super::{Kind, api_reason};
use crate::inventory::PART_OF;
use crate::manifests::ObjectRef;

/// Items per LIST page: a page is read and parsed whole, so this bounds what one list
/// holds at a time.
const PAGE: u32 = 100;

/// LISTs in flight at once. Each connection's read buffer grows to fit the pages it
/// reads (up to ~400 KiB in hyper) and keeps that size while the connection is
/// pooled: at 16 lists in flight they held 6.8 MB of a 20,000-object plan. Lists
/// keep a few connections busy; dry runs and writes, whose answers are small, use
/// up to [`CONCURRENCY`](super::CONCURRENCY).
const LISTS_IN_FLIGHT: usize = 4;

/// Lists the ApplySet's members of every kind and namespace among `objects`, each
/// kind and namespace once, and reduces every item with `each`: the reductions by
/// identity. A list that fails is logged and left out.
pub async fn list_by_id<'a, I: Item, T: Send + 'static>(
    client: &kube::Client,
    objects: impl Iterator<Item = (&'a ObjectRef, &'a Kind)>,
    applyset_id: &str,
    each: fn(&Value) -> T,
) -> HashMap<ObjectRef, T> {
    let mut out = HashMap::new();
    list_each::<I, T>(
        client,
        lists_of(objects),
        applyset_id,
        each,
        |template, name, reduced| {
            let id = ObjectRef {
                name,
                ..template.clone()
            };
            out.insert(id, reduced);
        },
    )
    .await;
    out
}

/// The LISTs that find `objects`: one template identity (and its kind) for each kind
/// and namespace among them.
pub fn lists_of<'a>(
    objects: impl Iterator<Item = (&'a ObjectRef, &'a Kind)>,
) -> Vec<(ObjectRef, Kind)> {
    let mut groups: BTreeMap<(String, String, Option<String>), (ObjectRef, Kind)> = BTreeMap::new();
    for (id, kind) in objects {
        let key = (id.api_version(), id.kind.clone(), id.namespace.clone());
        groups
            .entry(key)
            .or_insert_with(|| (id.clone(), kind.clone()));
    }
    groups.into_values().collect()
}

/// Lists the ApplySet's members of each (kind, namespace) that `lists` names by a
/// template identity (its name is not used), and hands every item's reduction to
/// `sink` with its list's template and its name: nothing is kept here. A list that
/// fails is logged and its items are never handed on.
pub async fn list_each<I: Item, T: Send + 'static>(
    client: &kube::Client,
    lists: Vec<(ObjectRef, Kind)>,
    applyset_id: &str,
    each: fn(&Value) -> T,
    mut sink: impl FnMut(&ObjectRef, String, T),
) {
    let selector = format!("{PART_OF}={applyset_id}");
    let mut tasks = JoinSet::new();
    let mut queue = lists.into_iter();
    loop {
        while tasks.len() < LISTS_IN_FLIGHT {
            let Some((template, kind)) = queue.next() else {
                break;
            };
            let client = client.clone();
            let selector = selector.clone();
            tasks.spawn(async move {
                let listed = list_members::<I, T>(&client, &kind, &template, &selector, each).await;
                (template, listed)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        // A list that ends without a result is like one the server refused: its
        // objects are missing from the answer, and the caller reads them one by one.
        let (template, listed) = match joined {
            Ok(done) => done,
            Err(join) => {
                tracing::warn!(error = %join, "list task failed; reading its objects one by one");
                continue;
            }
        };
        match listed {
            Ok(items) => {
                for (name, reduced) in items {
                    sink(&template, name, reduced);
                }
            }
            Err(e) => tracing::debug!(
                kind = %template.group_kind(),
                namespace = template.namespace.as_deref().unwrap_or(""),
                reason = %api_reason(&e),
                "cannot list; reading objects one by one"
            ),
        }
    }
}

/// The members of one kind in one namespace (or cluster-wide, for cluster-scoped
/// kinds), page by page: each item is parsed as `I` and reduced by `each` at once, so
/// no more than a page of objects is ever held. Returns (name, reduction) pairs.
async fn list_members<I: Item, T>(
    client: &kube::Client,
    kind: &Kind,
    template: &ObjectRef,
    selector: &str,
    each: fn(&Value) -> T,
) -> Result<Vec<(String, T)>, kube::Error> {
    let namespace = if kind.namespaced {
        template.namespace.as_deref()
    } else {
        None
    };
    let request = kube::core::Request::new(DynamicObject::url_path(&kind.resource, namespace));
    let mut out = Vec::new();
    let mut params = ListParams::default().labels(selector).limit(PAGE);
    loop {
        let http = request.list(&params).map_err(kube::Error::BuildRequest)?;
        let page: Page<I> = client.request(http).await?;
        for item in page.items {
            let mut item = item.into_value();
            let name = item
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            // List items carry neither; kind-specific rules (health) need them.
            if let Some(map) = item.as_object_mut() {
                map.insert("apiVersion".into(), Value::String(template.api_version()));
                map.insert("kind".into(), Value::String(template.kind.clone()));
            }
            out.push((name, each(&item)));
        }
        match page.metadata.continue_token {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(out),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(bound = "I: Item")]
struct Page<I> {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default = "Vec::new")]
    items: Vec<I>,
}

/// A list item as parsed: an object with some of what the server owns left out.
pub trait Item: serde::de::DeserializeOwned {
    fn into_value(self) -> Value;
}

#[derive(serde::Deserialize, Default)]
struct PageMeta {
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

/// An object as JSON, parsed with `metadata.managedFields` and `status` skipped
/// rather than built: together they are often most of an object.
pub struct Lean(pub Value);

impl<'de> Deserialize<'de> for Lean {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Skipping::Object).map(Lean)
    }
}

impl Item for Lean {
    fn into_value(self) -> Value {
        self.0
    }
}

/// An object as JSON with `metadata.managedFields` skipped: what health reads.
pub struct WithStatus(pub Value);

impl<'de> Deserialize<'de> for WithStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(Skipping::ObjectWithStatus)
            .map(WithStatus)
    }
}

impl Item for WithStatus {
    fn into_value(self) -> Value {
        self.0
    }
}

/// Which level of an object is being parsed, and so which key is skipped.
#[derive(Clone, Copy)]
enum Skipping {
    /// The object: `status` is skipped, `metadata` is parsed as [`Skipping::Metadata`].
    Object,
    /// The object, `status` kept.
    ObjectWithStatus,
    /// Its metadata: `managedFields` is skipped.
    Metadata,
}

impl<'de> Visitor<'de> for Skipping {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match (self, key.as_str()) {
                (Skipping::Object, "status") | (Skipping::Metadata, "managedFields") => {
                    map.next_value::<IgnoredAny>()?;
                }
                (Skipping::Object | Skipping::ObjectWithStatus, "metadata") => {
                    let meta = map.next_value::<Metadata>()?;
                    out.insert(key, meta.0);
                }
                _ => {
                    out.insert(key, map.next_value()?);
                }
            }
        }
        Ok(Value::Object(out))
    }
}
struct Metadata(Value);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(Skipping::Metadata)
            .map(Metadata)
    }
}

impl fmt::Debug for Lean {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Objects may be Secrets: never print their contents.
        f.write_str("Lean(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lean_skips_managed_fields_and_status() {
        let text = r#"{"apiVersion":"v1","kind":"ConfigMap",
            "metadata":{"name":"a","managedFields":[{"manager":"x","fieldsV1":{"f:data":{}}}],"labels":{"k":"v"}},
            "data":{"status":"kept"},"status":{"phase":"gone"}}"#;
        let lean: Lean = serde_json::from_str(text).unwrap();
        assert_eq!(
            lean.0,
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"k":"v"}},"data":{"status":"kept"}})
        );
    }

    #[test]
    fn with_status_skips_only_managed_fields() {
        let text = r#"{"metadata":{"name":"a","managedFields":[{"manager":"x"}]},"status":{"phase":"kept"}}"#;
        let item: WithStatus = serde_json::from_str(text).unwrap();
        assert_eq!(
            item.0,
            json!({"metadata":{"name":"a"},"status":{"phase":"kept"}})
        );
    }
}
