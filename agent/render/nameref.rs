//! Name references: after prefixes, suffixes, namespaces and hashes renamed objects,
//! the fields that name them (a Deployment's `configMapRef`, a RoleBinding's
//! `roleRef`, …) are updated to the new names.
//!
//! In: every object of the build and the `nameReference` table (kustomize's default
//! plus `configurations`). Out: the references rewritten in place. Candidates for a
//! reference are narrowed as kustomize's `nameref` filter does: an earlier name
//! matches, the kind matches (and a `roleRef`'s kind and group), the namespace is the
//! referrer's (cluster-scoped objects and ServiceAccounts exempt), then the same
//! prefixes and suffixes. More than one left is an error.

use serde_json::Value;

use super::RenderError;
use super::fieldspec::{FieldSpec, Leaf, NameRef, visit};
use super::resource::{Gvk, Resource};
use super::scope::is_cluster_scoped;

/// What a reference resolved to: the referred object's current name and namespace.
struct Target {
    name: String,
    namespace: String,
}

pub fn fix(items: &mut [Resource], table: &[NameRef]) -> Result<(), RenderError> {
    let gvks: Vec<Gvk> = items.iter().map(Resource::gvk).collect();
    for entry in table {
        let target_gvk = Gvk {
            group: entry.group.clone(),
            version: entry.version.clone(),
            kind: entry.kind.clone(),
        };
        for spec in &entry.field_specs {
            for i in 0..items.len() {
                let referrer_gvk = &gvks[i];
                if !spec.selects(referrer_gvk) {
                    continue;
                }
                // The referrer's value is taken out while it is edited; what the
                // candidates are compared with is captured first. A shell with its
                // id stays in its place: an object may name itself (kustomize
                // updates self references too).
                let referrer = Referrer {
                    cluster_scoped: is_cluster_scoped(referrer_gvk),
                    namespace: items[i].id().namespace,
                    prefixes: items[i].prefixes.clone(),
                    suffixes: items[i].suffixes.clone(),
                };
                let shell = shell(&items[i].value);
                let mut value = std::mem::replace(&mut items[i].value, shell);
                let result = resolve_in(&mut value, spec, &target_gvk, &referrer, items);
                items[i].value = value;
                result.map_err(|reason| RenderError::Resource {
                    location: items[i].location.clone(),
                    reason: format!("{}: {reason}", items[i].shown()),
                })?;
            }
        }
    }
    Ok(())
}

fn resolve_in(
    value: &mut Value,
    spec: &FieldSpec,
    target: &Gvk,
    referrer: &Referrer,
    items: &[Resource],
) -> Result<(), String> {
    let spec = FieldSpec {
        create: false,
        ..spec.clone()
    };
    let role_ref = spec
        .path
        .ends_with("roleRef/name")
        .then(|| role_ref_gvk(value));
    let ctx = Context {
        target,
        role_ref: role_ref.flatten(),
        referrer,
        items,
    };
    visit(value, &spec, Leaf::Scalar, &mut |leaf| ctx.set(leaf))
}

struct Referrer {
    cluster_scoped: bool,
    namespace: String,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

struct Context<'a> {
    target: &'a Gvk,
    role_ref: Option<Gvk>,
    referrer: &'a Referrer,
    items: &'a [Resource],
}

impl Context<'_> {
    fn set(&self, leaf: &mut Value) -> Result<(), String> {
        match leaf {
            Value::String(name) => {
                if let Some(t) = self.select(name, None)? {
                    *name = t.name;
                }
                Ok(())
            }
            Value::Array(list) => {
                for item in list {
                    match item {
                        Value::String(_) | Value::Object(_) => self.set(item)?,
                        _ => {}
                    }
                }
                Ok(())
            }
            Value::Object(map) => {
                // kustomize looks at the entry's name and namespace only, not its kind.
                let Some(name) = map.get("name").and_then(Value::as_str).map(str::to_string) else {
                    return Ok(());
                };
                let namespace = map
                    .get("namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if let Some(t) = self.select(&name, namespace.as_deref())? {
                    if t.name == name && t.namespace.is_empty() {
                        return Ok(());
                    }
                    map.insert("name".into(), Value::String(t.name));
                    if !t.namespace.is_empty() {
                        map.insert("namespace".into(), Value::String(t.namespace));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn select(&self, old: &str, namespace: Option<&str>) -> Result<Option<Target>, String> {
        let referrer = self.referrer;
        let referrer_scoped = referrer.cluster_scoped;
        // An entry's own namespace picks candidates by their original namespace,
        // else by their current one.
        let in_namespace: Vec<&Resource> = match namespace {
            None => self.items.iter().collect(),
            Some(ns) => {
                let original: Vec<&Resource> = self
                    .items
                    .iter()
                    .filter(|r| r.original().namespace == ns)
                    .collect();
                if original.is_empty() {
                    self.items.iter().filter(|r| r.namespace() == ns).collect()
                } else {
                    original
                }
            }
        };
        let mut candidates: Vec<&Resource> = in_namespace
            .into_iter()
            .filter(|r| r.previous.iter().any(|id| id.name == old))
            .filter(|r| r.previous.iter().any(|id| selects(self.target, &id.gvk)))
            .filter(|r| {
                self.role_ref
                    .as_ref()
                    .is_none_or(|gvk| r.previous.iter().any(|id| selects(gvk, &id.gvk)))
            })
            .filter(|r| {
                referrer_scoped
                    || is_cluster_scoped(&r.gvk())
                    || r.gvk().kind == "ServiceAccount"
                    || r.id().namespace == referrer.namespace
            })
            .collect();
        if candidates.len() > 1 {
            candidates.retain(|r| affixes_equal(r, referrer, true));
            if candidates.len() > 1 {
                candidates.retain(|r| affixes_equal(r, referrer, false));
            }
        }
        match candidates.as_slice() {
            [] => Ok(None),
            [one, rest @ ..]
                if rest
                    .iter()
                    .all(|r| r.name() == one.name() && r.namespace() == one.namespace()) =>
            {
                Ok(Some(Target {
                    name: one.name().to_string(),
                    namespace: one.namespace().to_string(),
                }))
            }
            many => Err(format!(
                "found multiple possible referrals for {old:?}: {}",
                many.iter()
                    .map(|r| r.shown())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// An object's id fields only: `apiVersion`, `kind`, and the name and namespace.
fn shell(value: &Value) -> Value {
    let mut meta = serde_json::Map::new();
    for key in ["name", "namespace"] {
        if let Some(v) = value.get("metadata").and_then(|m| m.get(key)) {
            meta.insert(key.to_string(), v.clone());
        }
    }
    let mut out = serde_json::Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(v) = value.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    out.insert("metadata".to_string(), Value::Object(meta));
    Value::Object(out)
}

/// kustomize's `Gvk.IsSelected`: empty parts of the selector match anything.
fn selects(selector: &Gvk, gvk: &Gvk) -> bool {
    (selector.kind.is_empty() || selector.kind == gvk.kind)
        && (selector.group.is_empty() || selector.group == gvk.group)
        && (selector.version.is_empty() || selector.version == gvk.version)
}

fn role_ref_gvk(value: &Value) -> Option<Gvk> {
    let role_ref = value.get("roleRef")?;
    Some(Gvk {
        group: role_ref.get("apiGroup")?.as_str()?.to_string(),
        version: String::new(),
        kind: role_ref.get("kind")?.as_str()?.to_string(),
    })
}

fn affixes_equal(r: &Resource, other: &Referrer, allow_empty: bool) -> bool {
    let prefixes = (allow_empty && (r.prefixes.is_empty() || other.prefixes.is_empty()))
        || same_ending(&r.prefixes, &other.prefixes);
    let suffixes = (allow_empty && (r.suffixes.is_empty() || other.suffixes.is_empty()))
        || same_ending(&r.suffixes, &other.suffixes);
    prefixes && suffixes
}

/// Whether the shorter list is the end of the longer one (two empty lists are).
fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return long.is_empty();
    }
    long.ends_with(short)
}
