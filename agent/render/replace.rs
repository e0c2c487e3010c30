//! `replacements`: copy one field's value into fields of other objects, as
//! kustomize's replacement filter does.
//!
//! In: the entries (inline, or `path:` files in the kustomization's directory) and the
//! level's objects. Out: the targets' fields overwritten. A source selects exactly
//! one object by exact id parts (empty parts match anything, earlier ids count);
//! targets select and reject by id regexes and label/annotation selectors. Field paths
//! are dot-separated with `[key=value]` list matchers, `*` and indexes; `delimiter`
//! and `index` pick or replace a part of a string; `create` makes missing fields.
//! What can go wrong: no or several sources, a missing source or target field.
//! Paths into structured data inside strings (JSON or YAML text) are not followed.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::RenderError;
use super::build::{Builder, Level};
use super::kustomization::Selector;
use super::resource::{Id, Resource};
use super::selector::Compiled;

const FIELD: &str = "replacements";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Replacement {
    #[serde(default)]
    path: String,
    source: Option<Source>,
    source_value: Option<String>,
    #[serde(default)]
    targets: Vec<Target>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Source {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    field_path: String,
    options: Option<Options>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Target {
    select: Option<Selector>,
    #[serde(default)]
    reject: Vec<Selector>,
    #[serde(default)]
    field_paths: Vec<String>,
    options: Option<Options>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    delimiter: String,
    #[serde(default)]
    index: i64,
    #[serde(default)]
    create: bool,
}

pub fn run(
    b: &mut Builder<'_>,
    dir: &str,
    kfile: &str,
    entries: &[Value],
    level: &mut Level,
) -> Result<(), RenderError> {
    let err = |reason: String| RenderError::field(kfile, FIELD, reason);
    let mut all = Vec::new();
    for entry in entries {
        let r: Replacement =
            serde_json::from_value(entry.clone()).map_err(|e| err(e.to_string()))?;
        if r.path.is_empty() {
            all.push(r);
            continue;
        }
        let rel = b.local_file(dir, kfile, FIELD, &r.path)?;
        let text = b.files.read_text(&rel)?;
        for doc in b.parser().yaml(&text, &rel)? {
            let list = match doc.value {
                Value::Array(list) => list,
                other => vec![other],
            };
            for value in list {
                all.push(
                    serde_json::from_value(value).map_err(|e| err(format!("{}: {e}", r.path)))?,
                );
            }
        }
    }
    for r in all {
        let value = source_value(&r, &level.res.items).map_err(err)?;
        for target in &r.targets {
            apply_target(target, &value, &mut level.res.items, kfile).map_err(err)?;
        }
    }
    Ok(())
}

fn ids(r: &Resource) -> Vec<Id> {
    let mut ids = vec![r.id()];
    ids.extend(r.previous.iter().cloned());
    ids
}

fn source_value(r: &Replacement, items: &[Resource]) -> Result<Value, String> {
    if r.targets.is_empty() {
        return Err("replacements must specify a source and at least one target".into());
    }
    let source = match (&r.source, &r.source_value) {
        (Some(_), Some(_)) => {
            return Err("value and resource selectors are mutually exclusive".into());
        }
        (None, Some(v)) => return Ok(Value::String(v.clone())),
        (None, None) => {
            return Err("replacements must specify a source and at least one target".into());
        }
        (Some(s), None) => s,
    };
    let exact = |want: &str, have: &str| want.is_empty() || want == have;
    let selected: Vec<&Resource> = items
        .iter()
        .filter(|res| {
            ids(res).iter().any(|id| {
                exact(&source.group, &id.gvk.group)
                    && exact(&source.version, &id.gvk.version)
                    && exact(&source.kind, &id.gvk.kind)
                    && exact(&source.name, &id.name)
                    && (source.namespace.is_empty() || source.namespace == id.namespace)
            })
        })
        .collect();
    let shown = format!("{}/{}", source.kind, source.name);
    let res = match selected.as_slice() {
        [one] => *one,
        [] => return Err(format!("nothing selected by source {shown}")),
        _ => return Err(format!("multiple matches for source {shown}")),
    };
    let path = if source.field_path.is_empty() {
        "metadata.name"
    } else {
        &source.field_path
    };
    let found = lookup(&res.value, &split(path))
        .filter(|v| !v.is_null() && *v != &Value::String(String::new()))
        .ok_or_else(|| format!("fieldPath `{path}` is missing for replacement source {shown}"))?;
    match &source.options {
        Some(o) if !o.delimiter.is_empty() => {
            let text =
                scalar_text(found).ok_or("delimiter option can only be used with scalar nodes")?;
            let parts: Vec<&str> = text.split(o.delimiter.as_str()).collect();
            usize::try_from(o.index)
                .ok()
                .and_then(|i| parts.get(i))
                .map(|p| Value::String((*p).to_string()))
                .ok_or_else(|| {
                    format!(
                        "options.index {} is out of bounds for value {text}",
                        o.index
                    )
                })
        }
        _ => Ok(found.clone()),
    }
}

fn apply_target(
    target: &Target,
    value: &Value,
    items: &mut [Resource],
    kfile: &str,
) -> Result<(), String> {
    let select = target
        .select
        .as_ref()
        .ok_or("target must specify resources to select")?;
    let compiled = Compiled::new(select, kfile, FIELD).map_err(|e| e.to_string())?;
    let rejects: Vec<Compiled> = target
        .reject
        .iter()
        .map(|r| Compiled::new(r, kfile, FIELD).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let paths: Vec<String> = if target.field_paths.is_empty() {
        vec!["metadata.name".to_string()]
    } else {
        target.field_paths.clone()
    };
    let options = target.options.clone().unwrap_or_default();
    for res in items.iter_mut() {
        // Every id the object had counts, each matched as a whole; a reject
        // without any id part (only selectors) rejects nothing, as in kustomize.
        let ids = ids(res);
        if !compiled.matches_meta(res)
            || rejects
                .iter()
                .any(|r| r.has_id() && ids.iter().any(|id| r.matches_id(id)))
            || !ids.iter().any(|id| compiled.matches_id(id))
        {
            continue;
        }
        for path in &paths {
            let mut hits = 0;
            set(&mut res.value, &split(path), value, &options, &mut hits)?;
            if hits == 0 {
                return Err(if options.create {
                    format!("unable to find or create field {path:?} in replacement target")
                } else {
                    format!("unable to find field {path:?} in replacement target")
                });
            }
        }
    }
    Ok(())
}

/// Splits on dots outside brackets.
fn split(path: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '.' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn matcher(segment: &str) -> Option<(&str, &str)> {
    segment
        .strip_prefix('[')?
        .strip_suffix(']')?
        .split_once('=')
}

fn lookup<'a>(node: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(node);
    };
    match node {
        Value::Object(map) => lookup(map.get(first)?, rest),
        Value::Array(list) => {
            if let Some((k, v)) = matcher(first) {
                let item = list
                    .iter()
                    .find(|i| i.get(k).and_then(scalar_text).as_deref() == Some(v))?;
                lookup(item, rest)
            } else {
                lookup(list.get(first.parse::<usize>().ok()?)?, rest)
            }
        }
        _ => None,
    }
}

fn set(
    node: &mut Value,
    path: &[String],
    value: &Value,
    o: &Options,
    hits: &mut usize,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *hits += 1;
        return write(node, value, o);
    };
    match node {
        Value::Object(map) => {
            if !map.contains_key(first.as_str()) {
                if !o.create {
                    return Ok(());
                }
                let new = if rest.first().is_some_and(|s| matcher(s).is_some()) {
                    Value::Array(Vec::new())
                } else if rest.is_empty() {
                    // kyaml creates an empty scalar: a delimiter then joins onto "".
                    if !o.delimiter.is_empty() && scalar_text(value).is_some() {
                        Value::String(String::new())
                    } else {
                        Value::Null
                    }
                } else {
                    Value::Object(Map::new())
                };
                map.insert(first.clone(), new);
            }
            match map.get_mut(first.as_str()) {
                Some(next) => set(next, rest, value, o, hits),
                None => Ok(()),
            }
        }
        Value::Array(list) => {
            if first == "*" {
                for item in list.iter_mut() {
                    set(item, rest, value, o, hits)?;
                }
                return Ok(());
            }
            if let Some((k, v)) = matcher(first) {
                let mut found = false;
                for item in list.iter_mut() {
                    if item.get(k).and_then(scalar_text).as_deref() == Some(v) {
                        found = true;
                        set(item, rest, value, o, hits)?;
                    }
                }
                if !found && o.create {
                    let mut item = Map::new();
                    item.insert(k.to_string(), Value::String(v.to_string()));
                    list.push(Value::Object(item));
                    if let Some(last) = list.last_mut() {
                        set(last, rest, value, o, hits)?;
                    }
                }
                return Ok(());
            }
            match first.parse::<usize>().ok().and_then(|i| list.get_mut(i)) {
                Some(item) => set(item, rest, value, o, hits),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Writes `value` into a target field. A scalar target keeps its own type, as
/// kustomize keeps the target node's tag and replaces only its text.
fn write(target: &mut Value, value: &Value, o: &Options) -> Result<(), String> {
    let mut value = value.clone();
    if !o.delimiter.is_empty() {
        let current =
            scalar_text(target).ok_or("delimiter option can only be used with scalar nodes")?;
        let v = scalar_text(&value).unwrap_or_default();
        let mut parts: Vec<String> = current
            .split(o.delimiter.as_str())
            .map(str::to_string)
            .collect();
        match usize::try_from(o.index) {
            Err(_) => parts.insert(0, v),
            Ok(i) if i >= parts.len() => parts.push(v),
            Ok(i) => parts[i] = v,
        }
        value = Value::String(parts.join(&o.delimiter));
    }
    let text = scalar_text(&value);
    *target = match (&*target, text) {
        (Value::String(_), Some(text)) => Value::String(text),
        (Value::Number(_), Some(text)) => serde_json::from_str::<serde_json::Number>(&text)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        (Value::Bool(_), Some(text)) => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        _ => value,
    };
    Ok(())
}
