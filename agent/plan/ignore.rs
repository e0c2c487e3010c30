//! Drift ignore rules: fields that hawser sets when it creates an object and never
//! corrects afterwards (a Deployment's replicas under an HPA).
//!
//! In: the `--drift-ignore 'kind=Deployment,name=web:/spec/replicas'` rules (a
//! selector on kind, group, name and namespace with `*`/`?` globs, then JSON
//! pointers) and the annotation `hawser.dev/drift-ignore: /spec/replicas,…` on an
//! object in Git. Out: per object, the pointers to leave alone, and the operations
//! the planner needs on JSON: leave them out of what is sent, and out of what is
//! compared and shown.
//!
//! The mechanism, with server-side apply: once the object exists, the ignored
//! fields are not sent. A field that another manager has taken over (an HPA, or
//! `kubectl scale`) is then owned by that manager alone and keeps its value. A field
//! that hawser still owns alone would be removed by the omission (and defaulted), so
//! the planner sends the live value for it instead: nothing changes, and hawser
//! lets go as soon as another manager writes it.
//!
//! What can go wrong: a malformed flag (refused at start-up) or annotation (the
//! object's dry run fails with the annotation named; the revision is rejected).

use serde_json::Value;

use crate::manifests::ObjectRef;

/// The annotation naming an object's own ignored fields.
pub const DRIFT_IGNORE_ANNOTATION: &str = "hawser.dev/drift-ignore";

#[derive(Debug, thiserror::Error)]
#[error("--drift-ignore {spec:?}: {reason}")]
pub struct IgnoreError {
    spec: String,
    reason: String,
}

/// One `--drift-ignore`: which objects, which fields.
#[derive(Debug, Clone)]
pub struct Rule {
    kind: Option<String>,
    group: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    paths: Vec<String>,
}

/// Every `--drift-ignore` rule; the annotation is read per object.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

impl Rule {
    /// `SELECTOR:POINTER[,POINTER…]`, the selector `key=glob` pairs separated by
    /// commas (kind, group, name, namespace); an empty selector matches everything.
    pub fn parse(spec: &str) -> Result<Rule, IgnoreError> {
        let bad = |reason: String| IgnoreError {
            spec: spec.to_string(),
            reason,
        };
        let (selector, paths) = spec.split_once(":/").ok_or_else(|| {
            bad(
                "expected SELECTOR:/json/pointer, e.g. kind=Deployment,name=web:/spec/replicas"
                    .into(),
            )
        })?;
        let paths = parse_pointers(&format!("/{paths}")).map_err(bad)?;
        let mut rule = Rule {
            kind: None,
            group: None,
            name: None,
            namespace: None,
            paths,
        };
        for pair in selector.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, glob) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("{pair:?} is not key=value")))?;
            let slot = match key.trim() {
                "kind" => &mut rule.kind,
                "group" => &mut rule.group,
                "name" => &mut rule.name,
                "namespace" => &mut rule.namespace,
                other => {
                    return Err(bad(format!(
                        "unknown selector key {other:?} (kind, group, name, namespace)"
                    )));
                }
            };
            *slot = Some(glob.trim().to_string());
        }
        Ok(rule)
    }

    fn matches(&self, id: &ObjectRef) -> bool {
        let ok = |glob: &Option<String>, value: &str| {
            glob.as_deref().is_none_or(|g| glob_match(g, value))
        };
        ok(&self.kind, &id.kind)
            && ok(&self.group, &id.group)
            && ok(&self.name, &id.name)
            && ok(&self.namespace, id.namespace.as_deref().unwrap_or(""))
    }
}

impl IgnoreRules {
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<IgnoreRules, IgnoreError> {
        let rules = specs
            .iter()
            .map(|s| Rule::parse(s.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(IgnoreRules { rules })
    }

    /// The pointers ignored on `object` (as in Git): the rules that select it and its
    /// annotation. The error names the annotation and the rule it broke.
    pub fn paths(&self, id: &ObjectRef, object: &Value) -> Result<Vec<String>, String> {
        let mut paths: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.matches(id))
            .flat_map(|r| r.paths.iter().cloned())
            .collect();
        if let Some(text) = object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(DRIFT_IGNORE_ANNOTATION))
        {
            let text = text.as_str().unwrap_or_default();
            let own = parse_pointers(text)
                .map_err(|reason| format!("annotation {DRIFT_IGNORE_ANNOTATION}: {reason}"))?;
            paths.extend(own);
        }
        paths.sort();
        paths.dedup();
        Ok(paths)
    }
}

/// Comma-separated JSON pointers (RFC 6901). The object's identity cannot be ignored.
fn parse_pointers(text: &str) -> Result<Vec<String>, String> {
    const IDENTITY: &[&str] = &[
        "/apiVersion",
        "/kind",
        "/metadata",
        "/metadata/name",
        "/metadata/namespace",
    ];
    let mut out = Vec::new();
    for pointer in text.split(',').map(str::trim) {
        if !pointer.starts_with('/') || pointer.len() < 2 {
            return Err(format!(
                "{pointer:?} is not a JSON pointer to a field (like /spec/replicas)"
            ));
        }
        if pointer
            .split('/')
            .skip(1)
            .any(|segment| !valid_segment(segment))
        {
            return Err(format!(
                "{pointer:?} has an empty segment or a ~ that is not ~0 or ~1"
            ));
        }
        if IDENTITY.contains(&pointer) {
            return Err(format!(
                "{pointer:?} is the object's identity, which is always applied"
            ));
        }
        out.push(pointer.to_string());
    }
    Ok(out)
}

fn valid_segment(segment: &str) -> bool {
    let mut chars = segment.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    !segment.is_empty()
}

/// `*` matches any run of characters, `?` one character; the rest is literal.
fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point: linear enough for names.
    let (mut gi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ti;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

/// The parent of `pointer` and its last segment, unescaped.
fn split(pointer: &str) -> Option<(&str, String)> {
    let (parent, last) = pointer.rsplit_once('/')?;
    Some((parent, last.replace("~1", "/").replace("~0", "~")))
}

/// Removes the ignored fields from `object` (missing ones are fine).
pub fn omit(object: &mut Value, paths: &[String]) {
    // In reverse order, so that of two indexes into one array the later goes first.
    for pointer in paths.iter().rev() {
        let Some((parent, key)) = split(pointer) else {
            continue;
        };
        match object.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(&key);
            }
            Some(Value::Array(items)) => {
                if let Ok(i) = key.parse::<usize>()
                    && i < items.len()
                {
                    items.remove(i);
                }
            }
            _ => {}
        }
    }
}

/// After an omission changed an ignored field (hawser still owned it alone): puts
/// the live value into `body` at each such pointer, so that it is kept as it is.
/// Returns whether `body` changed (and must be dry-run again).
pub fn keep_live(body: &mut Value, paths: &[String], live: &Value, desired: &Value) -> bool {
    let mut changed = false;
    for pointer in paths {
        let now = live.pointer(pointer);
        if now == desired.pointer(pointer) {
            continue;
        }
        let Some(value) = now else {
            continue;
        };
        if set(body, pointer, value.clone()) {
            changed = true;
        }
    }
    changed
}

/// Sets `pointer` in `object`, creating missing objects on the way (not arrays).
fn set(object: &mut Value, pointer: &str, value: Value) -> bool {
    let Some((parent, key)) = split(pointer) else {
        return false;
    };
    if object.pointer(parent).is_none() && !set(object, parent, Value::Object(Default::default())) {
        return false;
    }
    match object.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key, value);
            true
        }
        Some(Value::Array(items)) => match key.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items[i] = value;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// `live` and `desired` without the ignored fields, for comparing and showing.
pub fn without(value: &Value, paths: &[String]) -> Value {
    let mut value = value.clone();
    omit(&mut value, paths);
    value
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn id(kind: &str, group: &str, ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
        }
    }

    #[test]
    fn selectors_match_with_globs_and_annotations_add_paths() {
        let rules = IgnoreRules::parse(&[
            "kind=Deployment,name=web-*:/spec/replicas",
            "group=apps,namespace=edge?:/spec/template/metadata/annotations/x~1y",
            ":/metadata/labels/team",
        ])
        .unwrap();
        let web = id("Deployment", "apps", Some("edge1"), "web-1");
        let annotated = json!({"metadata": {"annotations": {DRIFT_IGNORE_ANNOTATION: "/data/a, /spec/replicas"}}});
        assert_eq!(
            rules.paths(&web, &annotated).unwrap(),
            vec![
                "/data/a",
                "/metadata/labels/team",
                "/spec/replicas",
                "/spec/template/metadata/annotations/x~1y"
            ]
        );
        let other = id("Deployment", "apps", Some("prod"), "api");
        assert_eq!(
            rules.paths(&other, &json!({})).unwrap(),
            vec!["/metadata/labels/team"]
        );
        assert!(glob_match("*", "") && glob_match("a*c", "abbbc") && !glob_match("a?c", "ac"));
    }

    #[test]
    fn bad_rules_and_annotations_say_what_is_wrong() {
        let err = |spec: &str| Rule::parse(spec).unwrap_err().to_string();
        assert!(err("kind=Deployment").contains("expected SELECTOR:/json/pointer"));
        assert!(err("kind:/spec").contains("\"kind\" is not key=value"));
        assert!(err("colour=red:/spec").contains("unknown selector key \"colour\""));
        assert!(err(":/metadata/name").contains("the object's identity"));
        assert!(err(":/spec//x").contains("empty segment"));
        let bad = json!({"metadata": {"annotations": {DRIFT_IGNORE_ANNOTATION: "spec.replicas"}}});
        let e = IgnoreRules::default()
            .paths(&id("ConfigMap", "", Some("a"), "b"), &bad)
            .unwrap_err();
        assert_eq!(
            e,
            "annotation hawser.dev/drift-ignore: \"spec.replicas\" is not a JSON pointer to a field (like /spec/replicas)"
        );
    }

    #[test]
    fn omit_and_keep_live_edit_only_the_ignored_fields() {
        let paths = vec!["/spec/replicas".to_string(), "/spec/x~1y".to_string()];
        let mut body = json!({"spec": {"replicas": 2, "x/y": 1, "paused": false}});
        omit(&mut body, &paths);
        assert_eq!(body, json!({"spec": {"paused": false}}));
        // The omission reset replicas (hawser owned them alone): keep the live value.
        let live = json!({"spec": {"replicas": 5, "paused": false}});
        let desired = json!({"spec": {"replicas": 1, "paused": false}});
        assert!(keep_live(&mut body, &paths, &live, &desired));
        assert_eq!(body, json!({"spec": {"replicas": 5, "paused": false}}));
        assert!(!keep_live(&mut body, &paths, &live, &live));
        assert_eq!(without(&live, &paths), json!({"spec": {"paused": false}}));
    }
}
