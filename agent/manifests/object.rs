//! From parsed documents to identified, scoped, ordered objects.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::error::Shown;
use super::scope::CrdNamespacing;
use super::sealed::Sealed;
use super::{
    Body, Location, Manifest, ManifestError, ManifestSet, Namespacing, ObjectRef, ObjectRule,
    Scope, order,
};

/// One parsed document, not yet checked. Kept as compact text ([`Body`]): a stage
/// that looks inside parses it back one document at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub location: Location,
    pub body: Body,
    /// The leaves render decrypted, to be masked wherever the document is shown.
    pub sealed: Sealed,
}

impl Document {
    /// A document with nothing decrypted in it.
    pub fn new(location: Location, value: Value) -> Self {
        Self::sealed(location, &value, Sealed::default())
    }

    /// A document with the leaves `sealed` decrypted.
    pub fn sealed(location: Location, value: &Value, sealed: Sealed) -> Self {
        Self {
            location,
            body: Body::new(value),
            sealed,
        }
    }

    /// The document's tree, parsed from its text.
    pub fn tree(&self) -> Value {
        self.body.tree()
    }
}

/// How deep `List`s may nest in one another.
const MAX_LIST_NESTING: usize = 4;

/// Validates every object, fills in namespaces, rejects duplicates, checks the scope
/// and orders the set for apply.
///
/// Kinds `ns` does not know are completed from the CRDs in `docs`; kinds still unknown
/// are treated as namespaced, with a warning.
pub fn build(
    docs: Vec<Document>,
    scope: &Scope,
    ns: &dyn Namespacing,
) -> Result<ManifestSet, ManifestError> {
    let items = expand_lists(docs)?;
    let namespacing = CrdNamespacing::new(ns, crds(&items).iter());

    let mut warnings = Vec::new();
    // Unknown kinds, warned once each (with where they first appear), sorted.
    let mut unknown: BTreeMap<String, Location> = BTreeMap::new();
    let mut seen: HashMap<(String, String, Option<String>, String), usize> = HashMap::new();
    let mut outside = Vec::new();
    let mut objects: Vec<Manifest> = Vec::with_capacity(items.len());

    for Document {
        location,
        body,
        sealed,
    } in items
    {
        // One tree at a time: parsed here, checked, and kept as text again.
        let mut object = body.tree();
        drop(body);
        let head = identify(&object).map_err(|rule| ManifestError::Object {
            location: location.clone(),
            rule: Box::new(rule),
        })?;
        let namespaced = match namespacing.is_namespaced(&head.group, &head.kind) {
            Some(namespaced) => namespaced,
            None => {
                let group_kind = group_kind(&head.group, &head.kind);
                unknown
                    .entry(group_kind)
                    .or_insert_with(|| location.clone());
                true
            }
        };
        let namespace = if namespaced {
            let namespace = head.namespace.unwrap_or_else(|| scope.namespace.clone());
            set_namespace(&mut object, Some(&namespace));
            Some(namespace)
        } else {
            if let Some(namespace) = head.namespace {
                // kubectl and the API server drop it too; keeping it would make the
                // object's URL wrong.
                warnings.push(format!(
                    "{location}: {} {}: metadata.namespace {namespace} ignored: the kind is cluster-scoped",
                    head.kind, head.name
                ));
                set_namespace(&mut object, None);
            }
            None
        };
        let id = ObjectRef {
            group: head.group,
            version: head.version,
            kind: head.kind,
            namespace,
            name: head.name,
        };

        let key = (
            id.group.clone(),
            id.kind.clone(),
            id.namespace.clone(),
            id.name.clone(),
        );
        if let Some(&first) = seen.get(&key) {
            let first = objects
                .get(first)
                .map(|m| m.location.clone())
                .unwrap_or_else(|| location.clone());
            return Err(ManifestError::Duplicate {
                location,
                id: Box::new(id),
                first: Box::new(first),
            });
        }
        seen.insert(key, objects.len());

        if let Err(rule) = scope.check(&id, &object) {
            outside.push((location.clone(), id.clone(), rule));
        }
        let stage = id.stage();
        objects.push(Manifest {
            id,
            object: Body::new(&object),
            location,
            stage,
            sealed,
        });
    }

    let more = outside.len().saturating_sub(1);
    if let Some((location, id, rule)) = outside.into_iter().next() {
        return Err(ManifestError::Scope {
            location,
            id: Box::new(id),
            rule: Box::new(rule),
            more,
        });
    }
    for (group_kind, location) in unknown {
        warnings.push(format!(
            "{location}: kind {group_kind} is not known (and no CRD for it is in these \
             manifests); treated as namespaced"
        ));
    }
    order::sort_for_apply(&mut objects);
    Ok(ManifestSet { objects, warnings })
}

fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// Replaces every `List` among `docs` by its items, Lists nested in Lists too, each
/// item keeping its place (`item N` of its document). Whatever looks at the kinds of
/// a revision (discovery, [`build`]) must look at these, the objects that will be
/// applied: a List's own `apiVersion` is `v1` whatever its items are.
pub fn expand_lists(docs: Vec<Document>) -> Result<Vec<Document>, ManifestError> {
    let mut items = Vec::with_capacity(docs.len());
    for doc in docs {
        flatten(doc, 0, &mut items)?;
    }
    Ok(items)
}

/// The trees of the CRDs among `docs`: what [`CrdNamespacing`] reads.
fn crds(docs: &[Document]) -> Vec<Value> {
    docs.iter()
        .filter(|doc| doc.body.head().kind() == Some("CustomResourceDefinition"))
        .map(Document::tree)
        .collect()
}

/// Replaces a `List` (or `*List` with `items`, as kubectl does) by its items.
fn flatten(doc: Document, depth: usize, out: &mut Vec<Document>) -> Result<(), ManifestError> {
    // Only a document whose kind ends in `List` can be one; the others stay text.
    let may_be_list = doc
        .body
        .head()
        .kind()
        .is_some_and(|kind| kind.ends_with("List"));
    if !may_be_list {
        out.push(doc);
        return Ok(());
    }
    let Document {
        location,
        body,
        sealed,
    } = doc;
    let value = body.tree();
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let is_list = kind == "List"
        || (kind.ends_with("List") && value.get("items").is_some_and(Value::is_array));
    if !is_list {
        out.push(Document {
            location,
            body,
            sealed,
        });
        return Ok(());
    }
    drop(body);
    if depth >= MAX_LIST_NESTING {
        return Err(ManifestError::Object {
            location,
            rule: Box::new(ObjectRule::ListTooDeep(MAX_LIST_NESTING)),
        });
    }
    let kind = kind.to_string();
    let items = match value {
        Value::Object(mut map) => map.remove("items").unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let items = match items {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => {
            return Err(ManifestError::Object {
                location,
                rule: Box::new(ObjectRule::ItemsNotASequence {
                    kind,
                    found: type_name(&other),
                }),
            });
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        let location = Location {
            item: Some(i + 1),
            ..location.clone()
        };
        let sealed = sealed.under(&format!("/items/{i}"));
        flatten(Document::sealed(location, &item, sealed), depth + 1, out)?;
    }
    Ok(())
}

/// The identifying fields of an object, checked.
#[derive(Debug)]
struct Head {
    group: String,
    version: String,
    kind: String,
    name: String,
    namespace: Option<String>,
}

fn identify(object: &Value) -> Result<Head, ObjectRule> {
    let Value::Object(map) = object else {
        return Err(ObjectRule::NotAMapping {
            found: type_name(object),
        });
    };
    let api_version = required_string(map.get("apiVersion"), "apiVersion")?;
    let (group, version) = match api_version.split_once('/') {
        None => ("", api_version),
        Some((group, version)) => (group, version),
    };
    // `/v1` and `a/b/c` fail here too: an empty group or a `/` in the version.
    let group_ok = valid_group(group) || !api_version.contains('/');
    if !group_ok || !valid_version(version) {
        return Err(ObjectRule::BadApiVersion(Shown::quoted(api_version)));
    }
    let kind = required_string(map.get("kind"), "kind")?;
    if !valid_kind(kind) {
        return Err(ObjectRule::BadKind(Shown::quoted(kind)));
    }
    let metadata = match map.get("metadata") {
        None | Some(Value::Null) => {
            return Err(ObjectRule::Missing {
                field: "metadata.name",
            });
        }
        Some(Value::Object(metadata)) => metadata,
        Some(other) => {
            return Err(ObjectRule::FieldNotAMapping {
                field: "metadata",
                found: type_name(other),
            });
        }
    };
    let name = match metadata.get("name") {
        None | Some(Value::Null) if metadata.contains_key("generateName") => {
            return Err(ObjectRule::GenerateName);
        }
        name => required_string(name, "metadata.name")?,
    };
    if !valid_name(name) {
        return Err(ObjectRule::BadName(Shown::quoted(name)));
    }
    let namespace = match metadata.get("namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(ns)) if ns.is_empty() => None,
        Some(Value::String(ns)) if !valid_namespace(ns) => {
            return Err(ObjectRule::BadNamespace(Shown::quoted(ns)));
        }
        Some(Value::String(ns)) => Some(ns.clone()),
        Some(other) => {
            return Err(ObjectRule::NotAString {
                field: "metadata.namespace",
                found: type_name(other),
            });
        }
    };
    string_maps(metadata, &["labels", "annotations"], "metadata.")?;
    match (group, kind) {
        ("", "ConfigMap") => string_maps(map, &["data"], "")?,
        ("", "Secret") => string_maps(map, &["data", "stringData"], "")?,
        _ => {}
    }
    Ok(Head {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        namespace,
    })
}

/// Maps whose values the API server only accepts as strings. YAML 1.1 makes
/// `enabled: yes` a boolean and `port: 8080` a number; say so here, offline, rather
/// than leave it to a dry run's "cannot unmarshal bool into Go struct field".
fn string_maps(
    parent: &serde_json::Map<String, Value>,
    fields: &[&'static str],
    prefix: &'static str,
) -> Result<(), ObjectRule> {
    for &field in fields {
        let Some(Value::Object(entries)) = parent.get(field) else {
            continue; // absent, null, or not a map: the API server says what is wrong
        };
        for (key, value) in entries {
            let hint = match value {
                Value::String(_) | Value::Null => continue,
                Value::Bool(_) => "quote it: unquoted yes, no, on, off, true, false are booleans",
                Value::Number(_) => "quote it",
                Value::Array(_) | Value::Object(_) => "",
            };
            return Err(ObjectRule::NotAStringValue {
                field: format!("{prefix}{field}"),
                key: Shown::new(key),
                found: type_name(value),
                hint,
            });
        }
    }
    Ok(())
}

fn required_string<'v>(
    value: Option<&'v Value>,
    field: &'static str,
) -> Result<&'v str, ObjectRule> {
    match value {
        None | Some(Value::Null) => Err(ObjectRule::Missing { field }),
        Some(Value::String(s)) if s.is_empty() => Err(ObjectRule::Missing { field }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ObjectRule::NotAString {
            field,
            found: type_name(other),
        }),
    }
}

/// Names become URL path segments and appear in messages; the API server checks the
/// rest per kind (RBAC names may hold `:`, for example).
fn valid_name(name: &str) -> bool {
    name.len() <= 253
        && name != "."
        && name != ".."
        && !name.contains(['/', '%'])
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Kinds are identifiers: `Deployment`, `HTTPRoute`.
fn valid_kind(kind: &str) -> bool {
    kind.len() <= 63
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric())
}

/// An API group is a DNS subdomain: `apps`, `gateway.networking.k8s.io`.
fn valid_group(group: &str) -> bool {
    group.len() <= 253 && group.split('.').all(valid_namespace)
}

/// An API version is a DNS label: `v1`, `v1beta1`.
fn valid_version(version: &str) -> bool {
    valid_namespace(version)
}

/// Whether `s` is a valid namespace name (a DNS-1123 label).
pub fn valid_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn set_namespace(object: &mut Value, namespace: Option<&str>) {
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        match namespace {
            Some(ns) => {
                metadata.insert("namespace".to_string(), Value::String(ns.to_string()));
            }
            None => {
                metadata.remove("namespace");
            }
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests;
