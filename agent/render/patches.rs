//! Which objects a patch applies to, and in which form: `patches` (with or without a
//! `target`), `patchesStrategicMerge` and `patchesJson6902`. The appliers themselves
//! are in [`patch`](super::patch), the target selectors in [`selector`](super::selector).
//!
//! In: the patch entries of one kustomization level, their files (inside the
//! kustomization's directory) or inline text. Out: the level's objects patched in
//! place, or removed by `$patch: delete`. Targets select by group, version, kind,
//! name and namespace as anchored regexes (matching the original or the current id),
//! by label and by annotation selector. What can go wrong: text that is neither (or
//! both) a strategic-merge and a JSON 6902 patch, a patch without a target that
//! matches no object, a JSON patch without a target, an applier's refusal.

use serde_json::Value;

use super::RenderError;
use super::files::{Files, is_within, parent};
use super::kustomization::Patch;
use super::patch::{self, Merged};
use super::resource::{Gvk, Id, ResMap, Resource};
use super::selector::Compiled;

/// One patch, parsed.
enum Parsed {
    Strategic(Vec<Value>),
    Json(Vec<Value>),
}

/// Loads a patch's text: inline, or from a file inside the kustomization's directory.
pub fn text(
    files: &mut Files<'_>,
    kfile: &str,
    field: &str,
    path: &str,
    inline: &str,
) -> Result<String, RenderError> {
    let inline = inline.trim();
    match (inline.is_empty(), path.is_empty()) {
        (true, true) => Err(RenderError::field(
            kfile,
            field,
            "must specify one of patch and path".into(),
        )),
        (false, false) => Err(RenderError::field(
            kfile,
            field,
            "patch and path can't be set at the same time".into(),
        )),
        (false, true) => Ok(inline.to_string()),
        (true, false) => {
            let dir = parent(kfile);
            let rel = files.join(dir, path, kfile, field)?;
            if !is_within(&rel, dir) {
                return Err(RenderError::field(
                    kfile,
                    field,
                    format!("{path:?} is not in or below the kustomization's directory"),
                ));
            }
            if files.kind(&rel, kfile, field)? != Some(super::files::Kind::File) {
                return Err(RenderError::field(
                    kfile,
                    field,
                    format!("{path:?}: no such file"),
                ));
            }
            files.read_text(&rel)
        }
    }
}

fn parse(
    files: &Files<'_>,
    text: &str,
    source: &str,
    kfile: &str,
    field: &str,
) -> Result<Parsed, RenderError> {
    let err = |reason: String| RenderError::field(kfile, field, format!("{source}: {reason}"));
    let docs = crate::manifests::yaml::Parser::new(files.limits)
        .yaml_as(text, source, crate::manifests::yaml::Dialect::Kyaml)
        .map_err(|e| err(format!("unable to parse SM or JSON patch: {e}")))?;
    let values: Vec<Value> = docs.into_iter().map(|d| d.value).collect();
    match values.as_slice() {
        [Value::Array(ops)] => {
            if ops.iter().all(|op| op.get("op").is_some()) {
                Ok(Parsed::Json(ops.clone()))
            } else {
                Err(err("unable to parse SM or JSON patch".into()))
            }
        }
        // kustomize reads an empty file (or one of comments) as no patches at all.
        [] => Ok(Parsed::Strategic(Vec::new())),
        _ if values.iter().all(Value::is_object) => Ok(Parsed::Strategic(values)),
        _ => Err(err("unable to parse SM or JSON patch".into())),
    }
}

/// Applies one `patches` entry (or a `patchesJson6902` one when `json_only`).
pub fn apply(
    files: &mut Files<'_>,
    res: &mut ResMap,
    kfile: &str,
    field: &str,
    entry: &Patch,
) -> Result<(), RenderError> {
    let text = text(files, kfile, field, &entry.path, &entry.patch)?;
    let source = if entry.path.is_empty() {
        "inline patch".to_string()
    } else {
        entry.path.clone()
    };
    let allow_name = option(entry, "allowNameChange");
    let allow_kind = option(entry, "allowKindChange");
    let mut parsed = parse(files, &text, &source, kfile, field)?;
    // Values decrypted from the patch file: the objects it patches seal them.
    let mut plain = Vec::new();
    if let (Parsed::Strategic(values), false) = (&mut parsed, entry.path.is_empty()) {
        let rel = files.join(super::files::parent(kfile), &entry.path, kfile, field)?;
        plain = super::sops::decrypt_values(&rel, &text, values, &files.decryption, files.limits)?;
    }
    let seal = |r: &mut Resource| r.sealed_values.extend(plain.iter().cloned());
    match parsed {
        Parsed::Json(ops) => {
            let Some(target) = &entry.target else {
                return Err(RenderError::field(
                    kfile,
                    field,
                    format!("{source}: must specify a target for JSON patch"),
                ));
            };
            let selector = Compiled::new(target, kfile, field)?;
            for r in res.items.iter_mut().filter(|r| selector.matches(r)) {
                r.store_previous();
                json6902_with_annotations(&mut r.value, &ops)
                    .map_err(|e| applier(r, &source, e))?;
            }
        }
        Parsed::Strategic(patches) => match &entry.target {
            Some(target) => {
                if patches.is_empty() {
                    // kustomize itself crashes here (it takes the first patch).
                    return Err(RenderError::field(
                        kfile,
                        field,
                        format!("{source}: the patch is empty"),
                    ));
                }
                let [one] = patches.as_slice() else {
                    return Err(RenderError::field(
                        kfile,
                        field,
                        format!(
                            "{source}: several strategic-merge patches in one entry cannot have a target"
                        ),
                    ));
                };
                let selector = Compiled::new(target, kfile, field)?;
                let selected: Vec<usize> = (0..res.items.len())
                    .filter(|&i| selector.matches(&res.items[i]))
                    .collect();
                let mut deleted = Vec::new();
                for i in selected {
                    let r = &mut res.items[i];
                    seal(r);
                    let mut copy = one.clone();
                    copy["apiVersion"] = r.value["apiVersion"].clone();
                    if strategic(r, &copy, &source, allow_name, allow_kind)? == Merged::Deleted {
                        deleted.push(i);
                    }
                }
                remove(res, &deleted);
            }
            None => {
                for one in &patches {
                    let id = patch_id(one);
                    let matches: Vec<usize> = (0..res.items.len())
                        .filter(|&i| any_id_equals(&res.items[i], &id))
                        .collect();
                    let [i] = matches.as_slice() else {
                        return Err(RenderError::field(
                            kfile,
                            field,
                            format!(
                                "{source}: no resource matches strategic merge patch {}/{} ({} found)",
                                id.gvk.shown(),
                                id.name,
                                matches.len()
                            ),
                        ));
                    };
                    let r = &mut res.items[*i];
                    seal(r);
                    if strategic(r, one, &source, allow_name, allow_kind)? == Merged::Deleted {
                        remove(res, &[*i]);
                    }
                }
            }
        },
    }
    Ok(())
}

fn option(entry: &Patch, name: &str) -> bool {
    entry
        .options
        .as_ref()
        .and_then(|o| o.get(name))
        .copied()
        .unwrap_or(false)
}

fn remove(res: &mut ResMap, indexes: &[usize]) {
    let mut i = 0;
    res.items.retain(|_| {
        let keep = !indexes.contains(&i);
        i += 1;
        keep
    });
}

/// Applies a strategic-merge patch keeping the target's name, namespace and kind
/// unless the entry's options allow changing them (as kustomize's `ApplySmPatch`).
fn strategic(
    r: &mut Resource,
    patch_value: &Value,
    source: &str,
    allow_name: bool,
    allow_kind: bool,
) -> Result<Merged, RenderError> {
    let (name, namespace, kind) = (
        r.value.pointer("/metadata/name").cloned(),
        r.value.pointer("/metadata/namespace").cloned(),
        r.value["kind"].clone(),
    );
    if allow_name || allow_kind {
        r.store_previous();
    }
    let merged =
        patch::strategic_merge(&mut r.value, patch_value).map_err(|e| applier(r, source, e))?;
    if merged == Merged::Deleted {
        return Ok(merged);
    }
    if !allow_kind {
        r.value["kind"] = kind;
    }
    if let Some(meta) = r.value.get_mut("metadata").and_then(Value::as_object_mut) {
        if !allow_name && let Some(name) = name {
            meta.insert("name".into(), name);
        }
        match namespace {
            Some(ns) => {
                meta.insert("namespace".into(), ns);
            }
            None => {
                meta.remove("namespace");
            }
        }
    }
    Ok(merged)
}

fn applier(r: &Resource, source: &str, e: patch::PatchError) -> RenderError {
    RenderError::Resource {
        location: r.location.clone(),
        reason: format!("{}: patch {source}: {e}", r.shown()),
    }
}

fn patch_id(patch: &Value) -> Id {
    let gvk = Gvk::of(patch);
    let namespace = patch
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Id {
        namespace: super::resource::effective_namespace(&gvk, namespace),
        name: patch
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        gvk,
    }
}

/// kustomize's `ResId.Equals` against the current and every earlier id.
fn any_id_equals(r: &Resource, id: &Id) -> bool {
    let eq = |other: &Id| {
        other.name == id.name
            && other.namespace == id.namespace
            && other.gvk.kind == id.gvk.kind
            && other.gvk.group == id.gvk.group
            && (id.gvk.version.is_empty() || other.gvk.version == id.gvk.version)
    };
    eq(&r.id()) || r.previous.iter().any(eq)
}

/// A JSON patch as kustomize applies one: its objects always carry internal build
/// annotations while patches run, so `metadata.annotations` exists for the patch
/// (an `add` of `/metadata/annotations/x` works on an object without annotations).
/// An annotations map the patch leaves empty is dropped again.
fn json6902_with_annotations(value: &mut Value, ops: &[Value]) -> Result<(), patch::PatchError> {
    let added = match value.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(meta) if !meta.contains_key("annotations") => {
            meta.insert("annotations".into(), Value::Object(serde_json::Map::new()));
            true
        }
        _ => false,
    };
    let result = patch::json6902(value, ops);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
        && added
        && meta
            .get("annotations")
            .is_some_and(|a| a.as_object().is_some_and(serde_json::Map::is_empty))
    {
        meta.remove("annotations");
    }
    result
}
