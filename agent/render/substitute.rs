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
//! Syntax: `${var}`, `${var:=default}`, `${var:-default}` (also when set but
//! empty), `${var=default}`, `${var-default}` (only when unset); a default may hold
//! further `${…}`; `$$` is a literal `$`, so `$${var}` prints `${var}`. Other bash
//! forms envsubst knows (`${#var}`, `${var^^}`, `${var/a/b}`, …) are refused by name
//! rather than rendered differently. Unset variables become empty unless strict.
//!
//! What can go wrong is a [`RenderError`] naming the file and the variable: a bad
//! variable name (`^[_[:alpha:]][_[:alpha:][:digit:]]*$`), an unset variable in
//! strict mode, a `${` without `}`, or a result that is no longer YAML. Values are
//! never quoted in errors (they may come from Secrets).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifests::yaml::parse_yaml;
use crate::manifests::{Document, ParseLimits};

use super::RenderError;

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
    pub fetched: BTreeMap<String, String>,
    /// `--substitute KEY=VALUE`: highest precedence, as Flux's inline `substitute`.
    pub inline: BTreeMap<String, String>,
    pub strict: bool,
}

impl Substitution {
    /// Every variable, the later sources winning.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut vars = self.builtin.clone();
        vars.extend(self.fetched.clone());
        vars.extend(self.inline.clone());
        vars
    }
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

/// Whether `name` is a valid variable name (Flux's `varsubRegex`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
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
    for doc in docs.iter_mut() {
        if opted_out(&doc.value) {
            continue;
        }
        let file = doc.location.file.clone();
        substitute_value(&mut doc.value, &vars, sub.strict, limits)
            .map_err(|reason| RenderError::file(&file, format!("substitution: {reason}")))?;
    }
    Ok(())
}

/// Substitutes every string (keys too). Flux substitutes the printed YAML and parses
/// it again, so a plain `replicas: ${n}` becomes a number; hawser's values keep no
/// quoting style, so a string that is exactly one `${…}` is read as a plain YAML
/// scalar after substitution (number, boolean, null), any other stays a string.
fn substitute_value(
    value: &mut Value,
    vars: &BTreeMap<String, String>,
    strict: bool,
    limits: &ParseLimits,
) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains('$') => {
            let out = eval(s, vars, strict)?;
            *value = if is_one_expression(s) {
                plain_scalar(&out, limits).unwrap_or(Value::String(out))
            } else {
                Value::String(out)
            };
        }
        Value::Array(items) => {
            for item in items {
                substitute_value(item, vars, strict, limits)?;
            }
        }
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut v) in old {
                let k = if k.contains('$') {
                    eval(&k, vars, strict)?
                } else {
                    k
                };
                substitute_value(&mut v, vars, strict, limits)?;
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

/// Expands `text`. The reason on failure names the variable, never a value.
pub fn eval(text: &str, vars: &BTreeMap<String, String>, strict: bool) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$'); // `$$`: a literal `$`, never the start of `${`
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let (value, tail) = expression(inner, vars, strict, 0)?;
            out.push_str(&value);
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One `${…}` body (after the brace): its value and the text after its `}`.
fn expression<'t>(
    inner: &'t str,
    vars: &BTreeMap<String, String>,
    strict: bool,
    depth: usize,
) -> Result<(String, &'t str), String> {
    if depth > 16 {
        return Err("defaults nest more than 16 deep".into());
    }
    let end = inner
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(inner.len());
    let name = &inner[..end];
    let rest = &inner[end..];
    if !valid_name(name) {
        return Err(match rest.chars().next() {
            None => "a ${ without a closing }".into(),
            Some(_) if name.is_empty() => {
                format!("${{{}…}} is not a supported substitution", first(rest))
            }
            Some(_) => format!("{name:?} is not a valid variable name"),
        });
    }
    let value = vars.get(name);
    let (op, rest) = match rest.chars().next() {
        Some('}') => return finish(name, value, strict).map(|v| (v, &rest[1..])),
        Some(':') if rest[1..].starts_with(['=', '-']) => (&rest[..2], &rest[2..]),
        Some('=' | '-') => (&rest[..1], &rest[1..]),
        None => return Err(format!("${{{name} has no closing }}")),
        Some(_) => {
            return Err(format!(
                "${{{name}{}…}}: only ${{var}}, ${{var:=default}} and ${{var:-default}} forms are supported",
                first(rest)
            ));
        }
    };
    // The default runs to the matching `}`, expanding what it holds.
    let mut default = String::new();
    let mut rest = rest;
    loop {
        let Some(i) = rest.find(['$', '}']) else {
            return Err(format!("${{{name} has no closing }}"));
        };
        default.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if rest[i..].starts_with('}') {
            rest = after;
            break;
        }
        if let Some(tail) = after.strip_prefix('$') {
            default.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let (v, tail) = expression(inner, vars, strict, depth + 1)?;
            default.push_str(&v);
            rest = tail;
        } else {
            default.push('$');
            rest = after;
        }
    }
    let use_default = match (op, value) {
        (_, None) => true,
        (":=" | ":-", Some(v)) => v.is_empty(),
        _ => false,
    };
    Ok((
        if use_default {
            default
        } else {
            value.cloned().unwrap_or_default()
        },
        rest,
    ))
}

fn finish(name: &str, value: Option<&String>, strict: bool) -> Result<String, String> {
    match value {
        Some(v) => Ok(v.clone()),
        None if strict => Err(format!(
            "variable {name} is not set (--substitute-strict) and has no default"
        )),
        None => Ok(String::new()),
    }
}

fn first(text: &str) -> String {
    text.chars().take(2).collect()
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

    #[test]
    fn forms() {
        let v = vars(&[("a", "1"), ("empty", ""), ("cluster_name", "edge-7")]);
        let e = |t: &str| eval(t, &v, false).unwrap();
        assert_eq!(e("x-${a}-y"), "x-1-y");
        assert_eq!(e("${missing}"), "");
        assert_eq!(e("${missing:=dflt}"), "dflt");
        assert_eq!(e("${missing:-dflt}"), "dflt");
        assert_eq!(e("${empty:=dflt}"), "dflt");
        assert_eq!(e("${empty=dflt}"), "");
        assert_eq!(e("${missing-dflt}"), "dflt");
        assert_eq!(e("${a:=dflt}"), "1");
        assert_eq!(e("${missing:=${cluster_name}-x}"), "edge-7-x");
        assert_eq!(e("$${a} and $$ and $ alone"), "${a} and $ and $ alone");
        assert_eq!(e("cost: $5"), "cost: $5");
    }

    #[test]
    fn strict_and_refusals() {
        let v = vars(&[("a", "secret-value")]);
        let err = eval("${nope}", &v, true).unwrap_err();
        assert!(err.contains("nope") && err.contains("strict"), "{err}");
        assert_eq!(eval("${nope:=d}", &v, true).unwrap(), "d");
        for bad in ["${a", "${a^^}", "${#a}", "${a/x/y}", "${1a}", "${}"] {
            let err = eval(bad, &v, false).unwrap_err();
            assert!(!err.contains("secret-value"), "{err}");
        }
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
            substitute_value(&mut value, &v, false, &limits).unwrap();
            value
        };
        assert_eq!(sub("${n}"), serde_json::json!(3));
        assert_eq!(sub("${port}"), serde_json::json!("8080"));
        assert_eq!(sub("${on}"), serde_json::json!(true));
        assert_eq!(sub("${q}"), serde_json::json!("x"));
        assert_eq!(sub("${missing}"), Value::Null);
        assert_eq!(sub("port-${n}"), serde_json::json!("port-3"));
    }

    #[test]
    fn names_follow_flux() {
        assert!(valid_name("cluster_name"));
        assert!(valid_name("_X1"));
        assert!(!valid_name("1x"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
    }
}
