//! `${var}` substitution as Flux's kustomize-controller does it (`postBuild`,
//! `fluxcd/pkg/kustomize` `SubstituteVariables` over `fluxcd/pkg/envsubst`).
//!
//! In: the rendered (and decrypted) documents and the variables. Out: the documents
//! with every string substituted; a string that is one `${…}` and substitutes to a
//! number or boolean becomes one, as Flux's print-substitute-reparse makes
//! `replicas: ${n}` a number. Documents labelled or annotated
//! `kustomize.toolkit.fluxcd.io/substitute: disabled` (or `hawser.dev/substitute`)
//! are left alone; with no variables at all nothing is substituted (Flux's rule).
//!
//! The expansion of one string is [`super::envsubst`]'s; unset variables become
//! empty unless strict. A decrypted leaf stays sealed where substitution moves it
//! (a key holding `${…}`), and a leaf whose value uses a variable read from a
//! Secret (`--substitute-from secret/NAME`) is sealed too: printers mask it as
//! they mask a decrypted value.
//!
//! What can go wrong is a [`RenderError`] naming the file and the variable: a bad
//! variable name (`^[_[:alpha:]][_[:alpha:][:digit:]]*$`), an unset variable in
//! strict mode, a `${` without `}`, or a result that is no longer YAML. Values are
//! never quoted in errors (they may come from Secrets).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::manifests::sealed::escape;
use crate::manifests::yaml::parse_yaml;
use crate::manifests::{Body, Document, ParseLimits};

use super::RenderError;
pub use super::envsubst::{eval, valid_name};

const OPT_OUT: [&str; 2] = [
    "kustomize.toolkit.fluxcd.io/substitute",
    "hawser.dev/substitute",
];

/// The variables, by source, and the strictness.
#[derive(Debug, Clone, Default)]
pub struct Substitution {
    /// Built in (`HAWSER_CLUSTER_NAME`): lowest precedence.
    pub builtin: BTreeMap<String, String>,
    /// `--substitute-from` objects in the agent's namespace, in order.
    pub from: Vec<VarSource>,
    /// What the objects of `from` held at this reconcile, later ones winning; filled
    /// in by the pipeline, which reads the cluster.
    pub fetched: Fetched,
    /// `--substitute KEY=VALUE`: highest precedence, as Flux's inline `substitute`.
    pub inline: BTreeMap<String, String>,
    pub strict: bool,
}

impl Substitution {
    /// Every variable, the later sources winning.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut vars = self.builtin.clone();
        vars.extend(self.fetched.values.clone());
        vars.extend(self.inline.clone());
        vars
    }

    /// The variables whose value is a Secret's: read from one and not overridden
    /// inline.
    pub fn secret_names(&self) -> BTreeSet<&str> {
        self.fetched
            .from_secret
            .iter()
            .filter(|name| !self.inline.contains_key(*name))
            .map(String::as_str)
            .collect()
    }
}

/// What the `--substitute-from` objects held at one reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    pub values: BTreeMap<String, String>,
    /// The names whose value came from a Secret (a later ConfigMap of the same key
    /// wins, and the name leaves this set).
    pub from_secret: BTreeSet<String>,
}

/// An object whose data become variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarSource {
    ConfigMap(String),
    Secret(String),
}

impl std::fmt::Display for VarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarSource::ConfigMap(n) => write!(f, "configmap/{n}"),
            VarSource::Secret(n) => write!(f, "secret/{n}"),
        }
    }
}

/// Parses `configmap/NAME,secret/NAME`.
pub fn parse_sources(text: &str) -> Result<Vec<VarSource>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| match item.split_once('/') {
            Some(("configmap" | "ConfigMap", name)) if !name.is_empty() => {
                Ok(VarSource::ConfigMap(name.to_string()))
            }
            Some(("secret" | "Secret", name)) if !name.is_empty() => {
                Ok(VarSource::Secret(name.to_string()))
            }
            _ => Err(format!(
                "--substitute-from {item:?}: expected configmap/NAME or secret/NAME"
            )),
        })
        .collect()
}

/// Parses `--substitute KEY=VALUE`, checking the name.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| "--substitute: expected KEY=VALUE".to_string())?;
    if !valid_name(k) {
        return Err(format!(
            "--substitute: variable name {k:?} is invalid: it must match ^[_[:alpha:]][_[:alpha:][:digit:]]*$"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Substitutes every document that does not opt out.
pub fn apply(
    docs: &mut [Document],
    sub: &Substitution,
    limits: &ParseLimits,
) -> Result<(), RenderError> {
    let vars = sub.vars();
    if vars.is_empty() {
        return Ok(());
    }
    if let Some(bad) = vars.keys().find(|k| !valid_name(k)) {
        let from = sub.from.iter().map(ToString::to_string).collect::<Vec<_>>();
        return Err(RenderError::file(
            &from.join(","),
            format!(
                "variable name {bad:?} is invalid: it must match ^[_[:alpha:]][_[:alpha:][:digit:]]*$"
            ),
        ));
    }
    // The variables with every Secret's value changed: a leaf that expands
    // differently under them depends on a Secret.
    let secret = sub.secret_names();
    let shadow = (!secret.is_empty()).then(|| {
        let mut shadow = vars.clone();
        for (name, value) in shadow.iter_mut() {
            if secret.contains(name.as_str()) {
                value.push('\u{1}');
            }
        }
        shadow
    });
    for doc in docs.iter_mut() {
        // Without a `$` there is nothing to substitute: such documents stay text.
        if !doc.body.may_contain("$") {
            continue;
        }
        let mut value = doc.tree();
        if opted_out(&value) {
            continue;
        }
        let file = doc.location.file.clone();
        let mut walk = Walk {
            shadow: shadow.as_ref(),
            ..Walk::default()
        };
        substitute_value(&mut value, &vars, sub.strict, limits, &mut walk)
            .map_err(|reason| RenderError::file(&file, format!("substitution: {reason}")))?;
        doc.body = Body::new(&value);
        // A decrypted leaf under a substituted key stays sealed at its new path.
        for (parent, from, to) in walk.renames {
            doc.sealed.rename(&parent, &from, &to);
        }
        for pointer in walk.sealed {
            doc.sealed.insert(&pointer);
        }
    }
    Ok(())
}

/// Substitutes every string (keys too). Flux substitutes the printed YAML and parses
/// it again, so a plain `replicas: ${n}` becomes a number; hawser's values keep no
/// quoting style, so a string that is exactly one `${…}` is read as a plain YAML
/// scalar after substitution (number, boolean, null), any other stays a string.
/// What one document's walk finds besides the new values.
#[derive(Default)]
struct Walk<'v> {
    /// Mapping keys that substitution changed: `(parent pointer, old, new)`,
    /// deepest first.
    renames: Vec<(String, String, String)>,
    /// The pointer of the value being walked.
    pointer: String,
    /// The variables with each Secret's value changed (see [`apply`]), when any
    /// variable is a Secret's.
    shadow: Option<&'v BTreeMap<String, String>>,
    /// Leaves whose value uses a Secret's variable.
    sealed: Vec<String>,
}

fn substitute_value(
    value: &mut Value,
    vars: &BTreeMap<String, String>,
    strict: bool,
    limits: &ParseLimits,
    keys: &mut Walk<'_>,
) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains('$') => {
            let out = eval(s, vars, strict)?;
            if let Some(shadow) = keys.shadow
                && eval(s, shadow, strict)? != out
            {
                keys.sealed.push(keys.pointer.clone());
            }
            *value = if is_one_expression(s) {
                plain_scalar(&out, limits).unwrap_or(Value::String(out))
            } else {
                Value::String(out)
            };
        }
        Value::Array(items) => {
            let len = keys.pointer.len();
            for (i, item) in items.iter_mut().enumerate() {
                keys.pointer.push_str(&format!("/{i}"));
                substitute_value(item, vars, strict, limits, keys)?;
                keys.pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            let old = std::mem::take(map);
            let len = keys.pointer.len();
            for (k, mut v) in old {
                keys.pointer.push('/');
                keys.pointer.push_str(&escape(&k));
                substitute_value(&mut v, vars, strict, limits, keys)?;
                keys.pointer.truncate(len);
                let k = if k.contains('$') {
                    let new = eval(&k, vars, strict)?;
                    if new != k {
                        keys.renames.push((keys.pointer.clone(), k, new.clone()));
                    }
                    new
                } else {
                    k
                };
                map.insert(k, v);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether `s` is a single `${…}` and nothing else.
fn is_one_expression(s: &str) -> bool {
    let Some(inner) = s.strip_prefix("${") else {
        return false;
    };
    // The expression's end: its matching brace must be the last character.
    let mut depth = 1usize;
    let mut chars = inner.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                depth += 1;
                chars.next();
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1 == inner.len();
                }
            }
            _ => {}
        }
    }
    false
}

/// `text` read back as the one YAML scalar it would be in Flux's re-parsed output:
/// a number, boolean or null, or a quoted string (a value given as `"8080"` is the
/// string `8080`). `None` when it is not a single scalar; it then stays the text.
fn plain_scalar(text: &str, limits: &ParseLimits) -> Option<Value> {
    if text.contains(['\n', '#', '[', '{', '&', '*', '!', '|', '>']) || text.contains(": ") {
        return None;
    }
    if text.is_empty() {
        return Some(Value::Null);
    }
    let parsed = parse_yaml(&format!("v: {text}\n"), "substitution", limits).ok()?;
    match parsed.first()?.value.get("v")? {
        Value::Array(_) | Value::Object(_) => None,
        other => Some(other.clone()),
    }
}

fn opted_out(value: &Value) -> bool {
    ["labels", "annotations"].iter().any(|field| {
        OPT_OUT.iter().any(|key| {
            value
                .get("metadata")
                .and_then(|m| m.get(field))
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                == Some("disabled")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A value that is one expression is read back as Flux's re-parse reads it:
    /// digits become a number, a quoted value the string inside the quotes.
    #[test]
    fn one_expression_is_read_back_as_a_yaml_scalar() {
        let limits = ParseLimits::default();
        let v = vars(&[
            ("n", "3"),
            ("port", "\"8080\""),
            ("on", "true"),
            ("q", "'x'"),
        ]);
        let sub = |text: &str| {
            let mut value = Value::String(text.into());
            substitute_value(&mut value, &v, false, &limits, &mut Walk::default()).unwrap();
            value
        };
        assert_eq!(sub("${n}"), serde_json::json!(3));
        assert_eq!(sub("${port}"), serde_json::json!("8080"));
        assert_eq!(sub("${on}"), serde_json::json!(true));
        assert_eq!(sub("${q}"), serde_json::json!("x"));
        assert_eq!(sub("${missing}"), Value::Null);
        assert_eq!(sub("port-${n}"), serde_json::json!("port-3"));
    }

    /// A leaf that uses a Secret's variable is sealed; one that uses only others, or
    /// a Secret's name overridden inline, is not.
    #[test]
    fn leaves_using_a_secret_variable_are_sealed() {
        let doc = || {
            Document::new(
                crate::manifests::Location {
                    file: "settings.yaml".into(),
                    document: 1,
                    line: None,
                    item: None,
                },
                serde_json::json!({"data": {"dsn": "u:${pw}", "region": "${region}", "x": "${pw:-none}"}}),
            )
        };
        let mut sub = Substitution::default();
        sub.fetched.values = vars(&[("pw", "s3cret"), ("region", "eu")]);
        sub.fetched.from_secret.insert("pw".into());
        let limits = ParseLimits::default();
        let mut docs = vec![doc()];
        apply(&mut docs, &sub, &limits).unwrap();
        let sealed: Vec<&str> = docs[0].sealed.pointers().collect();
        assert_eq!(sealed, ["/data/dsn", "/data/x"]);
        assert_eq!(docs[0].tree()["data"]["dsn"], "u:s3cret");

        sub.inline = vars(&[("pw", "given")]);
        let mut docs = vec![doc()];
        apply(&mut docs, &sub, &limits).unwrap();
        assert!(docs[0].sealed.is_empty());
    }
}
