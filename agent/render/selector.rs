//! A patch's or replacement's `target`: group, version, kind, name and namespace
//! as anchored regexes (matching an object's original or current id), and label and
//! annotation selectors in Kubernetes' syntax (`a=b`, `a!=b`, `a in (b, c)`,
//! `a notin (…)`, `a`, `!a`). What can go wrong is a [`RenderError`] naming the
//! kustomization file and field: a regex or a selector that does not parse.

use regex::Regex;
use serde_json::Value;

use super::RenderError;
use super::kustomization::Selector;
use super::resource::{Id, Resource};
use super::scope::is_cluster_scoped;

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
