//! How a generated ConfigMap or Secret meets an object of the same id already in
//! the level (kustomize's `appendReplaceOrMerge`): `create` adds it, `merge` joins
//! its data, labels and annotations into the existing one, `replace` takes its
//! place; either keeps the old object's name, namespace and rename history. What
//! can go wrong is a [`RenderError`] naming the kustomization file and generator:
//! nothing to merge into, an existing object for `create`, several candidates.

use serde_json::Value;

use super::RenderError;
use super::resource::{Behavior, ResMap, Resource};

/// Adds a generated object, merging with or replacing an existing one of the same id
/// when its behavior says so (kustomize's `appendReplaceOrMerge`).
pub fn absorb_generated(
    res: &mut ResMap,
    mut new: Resource,
    kfile: &str,
) -> Result<(), RenderError> {
    let id = new.id();
    let matches: Vec<usize> = (0..res.items.len())
        .filter(|&i| res.items[i].id() == id || res.items[i].previous.contains(&id))
        .collect();
    let behavior = new.behavior.unwrap_or(Behavior::Create);
    let field = if id.gvk.kind == "Secret" {
        "secretGenerator"
    } else {
        "configMapGenerator"
    };
    match (matches.as_slice(), behavior) {
        ([], Behavior::Create) => res.append(new),
        ([], _) => Err(RenderError::field(
            kfile,
            field,
            format!("{}: does not exist; cannot merge or replace", new.name()),
        )),
        ([_], Behavior::Create) => Err(RenderError::field(
            kfile,
            field,
            format!(
                "{}: already exists; behavior must be merge or replace",
                new.name()
            ),
        )),
        ([i], behavior) => {
            let old = &res.items[*i];
            let mut labels = old.labels().cloned().unwrap_or_default();
            labels.extend(new.labels().cloned().unwrap_or_default());
            let mut annotations = old.annotations().cloned().unwrap_or_default();
            annotations.extend(new.annotations().cloned().unwrap_or_default());
            if behavior == Behavior::Merge {
                new.sealed.extend(&old.sealed);
                new.sealed_values.extend(old.sealed_values.iter().cloned());
                for field in ["data", "binaryData"] {
                    if let Some(Value::Object(old_map)) = old.value.get(field) {
                        let mut merged = old_map.clone();
                        if let Some(Value::Object(new_map)) = new.value.get(field) {
                            merged.extend(new_map.clone());
                        }
                        new.value[field] = Value::Object(merged);
                    }
                }
            }
            if let Some(meta) = new.value.get_mut("metadata").and_then(Value::as_object_mut) {
                for (key, map) in [("labels", labels), ("annotations", annotations)] {
                    if map.is_empty() {
                        meta.remove(key);
                    } else {
                        meta.insert(key.into(), Value::Object(map));
                    }
                }
                meta.insert("name".into(), Value::String(old.name().to_string()));
                match old.value.pointer("/metadata/namespace") {
                    Some(ns) => meta.insert("namespace".into(), ns.clone()),
                    None => meta.remove("namespace"),
                };
            }
            // kustomize keeps its build annotations (needsHashSuffix among them) from
            // the old object, and drops the hash flag when the new one lacks it.
            new.needs_hash = new.needs_hash && old.needs_hash;
            new.previous = old.previous.clone();
            new.prefixes = old.prefixes.clone();
            new.suffixes = old.suffixes.clone();
            new.location = old.location.clone();
            res.items[*i] = new;
            Ok(())
        }
        _ => Err(RenderError::field(
            kfile,
            field,
            format!("{}: several objects could accept the merge", new.name()),
        )),
    }
}
