//! Which objects a patch applies to, and in which form: `patches` (with or without a
//! `target`), `patchesStrategicMerge` and `patchesJson6902`. The appliers themselves
//! are in [`patch`](super::patch).
//!
//! In: the patch entries of one kustomization level, their files (inside the
//! kustomization's directory) or inline text. Out: the level's objects patched in
//! place, or removed by `$patch: delete`. Targets select by group, version, kind,
//! name and namespace as anchored regexes (matching the original or the current id),
//! by label and by annotation selector. What can go wrong: text that is neither (or
//! both) a strategic-merge and a JSON 6902 patch, a patch without a target that
//! matches no object, a JSON patch without a target, an applier's refusal.

use regex::Regex;
use serde_json::Value;

use super::RenderError;
use super::files::{Files, is_within, parent};
use super::kustomization::{Patch, Selector};
use super::patch::{self, Merged};
use super::resource::{Gvk, Id, ResMap, Resource};
use super::scope::is_cluster_scoped;

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

/// A target with its regexes compiled.
pub struct Compiled {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Vec<Requirement>,
    annotations: Vec<Requirement>,
}

impl Compiled {
    pub fn new(s: &Selector, kfile: &str, field: &str) -> Result<Self, RenderError> {
        let re = |part: &str, what: &str| -> Result<Option<Regex>, RenderError> {
            if part.is_empty() {
                return Ok(None);
            }
            Regex::new(&format!("^(?:{part})$")).map(Some).map_err(|e| {
                RenderError::field(kfile, field, format!("target {what} {part:?}: {e}"))
            })
        };
        let selector = |text: &str, what: &str| {
            parse_selector(text).map_err(|reason| {
                RenderError::field(kfile, field, format!("target {what} {text:?}: {reason}"))
            })
        };
        Ok(Self {
            group: re(&s.group, "group")?,
            version: re(&s.version, "version")?,
            kind: re(&s.kind, "kind")?,
            name: re(&s.name, "name")?,
            namespace: re(&s.namespace, "namespace")?,
            labels: selector(&s.label_selector, "labelSelector")?,
            annotations: selector(&s.annotation_selector, "annotationSelector")?,
        })
    }

    /// Whether one id (current or previous) is selected, every part on that id, as
    /// kustomize's replacement targets match (`TargetSelectorRegex.Selects`).
    pub fn matches_id(&self, id: &Id) -> bool {
        let one = |re: &Option<Regex>, v: &str| re.as_ref().is_none_or(|re| re.is_match(v));
        one(&self.group, &id.gvk.group)
            && one(&self.version, &id.gvk.version)
            && one(&self.kind, &id.gvk.kind)
            && one(&self.name, &id.name)
            && one(&self.namespace, &id.namespace)
    }

    /// Whether any of group, version, kind, name or namespace is given.
    pub fn has_id(&self) -> bool {
        [
            &self.group,
            &self.version,
            &self.kind,
            &self.name,
            &self.namespace,
        ]
        .iter()
        .any(|re| re.is_some())
    }

    /// Whether the label and annotation selectors hold.
    pub fn matches_meta(&self, r: &Resource) -> bool {
        self.labels.iter().all(|req| req.matches(r.labels()))
            && self
                .annotations
                .iter()
                .all(|req| req.matches(r.annotations()))
    }

    pub fn matches(&self, r: &Resource) -> bool {
        let cur = r.id();
        let org = r.original();
        let ns = |id: &Id| {
            if is_cluster_scoped(&id.gvk) {
                "_non_namespaceable_".to_string()
            } else {
                id.namespace.clone()
            }
        };
        let hit = |re: &Option<Regex>, a: &str, b: &str| {
            re.as_ref()
                .is_none_or(|re| re.is_match(a) || re.is_match(b))
        };
        let gvk = r.gvk();
        let one = |re: &Option<Regex>, v: &str| re.as_ref().is_none_or(|re| re.is_match(v));
        hit(&self.namespace, &ns(&org), &ns(&cur))
            && hit(&self.name, &org.name, &cur.name)
            && one(&self.group, &gvk.group)
            && one(&self.version, &gvk.version)
            && one(&self.kind, &gvk.kind)
            && self.labels.iter().all(|req| req.matches(r.labels()))
            && self
                .annotations
                .iter()
                .all(|req| req.matches(r.annotations()))
    }
}

/// One requirement of a Kubernetes label selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, map: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| map.and_then(|m| m.get(k)).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v),
            Requirement::NotEquals(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

/// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
fn parse_selector(text: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or("expected a parenthesised set of values")?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let req = if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().to_string())
        } else if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = part.split_once("==") {
            Requirement::Equals(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = part.split_once('=') {
            Requirement::Equals(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            Requirement::NotIn(k.trim().to_string(), set(rest)?)
        } else if let Some((k, rest)) = part.split_once(" in ") {
            Requirement::In(k.trim().to_string(), set(rest)?)
        } else if part.contains(char::is_whitespace) {
            return Err(format!("cannot parse {part:?}"));
        } else {
            Requirement::Exists(part.to_string())
        };
        out.push(req);
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_parse_every_operator() {
        let reqs = parse_selector("app=web, tier in (a, b),!legacy,env!=dev,track").unwrap();
        assert_eq!(reqs.len(), 5);
        let labels: serde_json::Map<String, Value> =
            serde_json::from_value(serde_json::json!({"app": "web", "tier": "b", "track": "x"}))
                .unwrap();
        assert!(reqs.iter().all(|r| r.matches(Some(&labels))));
        assert!(!Requirement::In("tier".into(), vec!["c".into()]).matches(Some(&labels)));
    }
}
