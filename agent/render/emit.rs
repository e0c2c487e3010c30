//! Rendered documents as YAML, the way `hawser render` prints them.
//!
//! Block style as `kustomize build` writes it (sequences at their key's indentation),
//! `apiVersion`, `kind`, `metadata` first and the other fields sorted (values here
//! keep no input order). A string is plain only when no YAML 1.1 or 1.2 reader could
//! take it for anything else; otherwise it is double-quoted, or a `|` block when it
//! spans lines. The output parses back to exactly the rendered values.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Documents separated by `---` lines, as `kustomize build` prints them.
pub fn documents<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        match doc {
            Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0, true),
            other => {
                scalar_or_flow(&mut out, other, 0);
                out.push('\n');
            }
        }
    }
    out
}

const FIRST: &[&str] = &["apiVersion", "kind", "metadata"];

fn ordered(map: &Map<String, Value>, top: bool) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = Vec::with_capacity(map.len());
    if top {
        for key in FIRST {
            if let Some((k, v)) = map.get_key_value(*key) {
                entries.push((k, v));
            }
        }
    }
    entries.extend(
        map.iter()
            .filter(|(k, _)| !top || !FIRST.contains(&k.as_str())),
    );
    entries
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// Writes the entries of a non-empty mapping at `level`, each on its own line. The
/// caller has already written the indentation of the first line.
fn mapping(out: &mut String, map: &Map<String, Value>, level: usize, top: bool) {
    for (i, (key, value)) in ordered(map, top).into_iter().enumerate() {
        if i > 0 {
            indent(out, level);
        }
        string(out, key, level);
        out.push(':');
        value_after_key(out, value, level);
    }
}

fn value_after_key(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            indent(out, level + 2);
            mapping(out, map, level + 2, false);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            sequence(out, items, level);
        }
        other => {
            out.push(' ');
            scalar_or_flow(out, other, level + 2);
            out.push('\n');
        }
    }
}

fn sequence(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => mapping(out, map, level + 2, false),
            Value::Array(inner) if !inner.is_empty() => {
                // A sequence in a sequence: start it on the next line.
                out.push('\n');
                sequence(out, inner, level + 2);
            }
            other => {
                scalar_or_flow(out, other, level + 2);
                out.push('\n');
            }
        }
    }
}

fn scalar_or_flow(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => string(out, s, level),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn string(out: &mut String, s: &str, level: usize) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else if is_block_safe(s) {
        out.push('|');
        if !s.ends_with('\n') {
            out.push('-');
        }
        for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
            out.push('\n');
            if !line.is_empty() {
                indent(out, level);
                out.push_str(line);
            }
        }
    } else {
        // JSON's string syntax is a subset of YAML's double-quoted style.
        out.push_str(&Value::String(s.to_string()).to_string());
    }
}

/// Multi-line text that a `|` / `|-` block keeps byte for byte.
fn is_block_safe(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n', '\t'])
        && !s.ends_with("\n\n")
        && s.split('\n').all(|line| !line.ends_with([' ', '\t']))
        && s.chars().all(|c| c == '\n' || !c.is_control())
        && !s.contains('\u{feff}')
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf",
    ];
    if WORDS.contains(&lower.as_str()) {
        return false;
    }
    s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '_' | '-'
                    | '.'
                    | '/'
                    | ':'
                    | '='
                    | '+'
                    | '@'
                    | ' '
                    | ','
                    | '('
                    | ')'
                    | '$'
                    | '~'
                    | '^'
            )
    }) && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with([':', ' '])
        && !s.contains("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: Value) {
        let text = documents([&v]);
        let parsed =
            crate::manifests::yaml::parse_yaml(&text, "t", &crate::manifests::Limits::default())
                .unwrap();
        assert_eq!(parsed[0].value, v, "{text}");
    }

    #[test]
    fn every_kind_of_value_reads_back_the_same() {
        round_trip(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "a b"}},
            "data": {
                "yes": "yes", "n": "0777", "e": "", "f": "1.5", "t": "true", "c": "a: b",
                "h": "#x", "m": "line one\nline two\n", "m2": "a\n b", "tr": "a \nb",
                "q": "\"quoted\"", "u": "ünï", "tab": "a\tb", "star": "*x", "null": "null",
            },
            "list": [[1, 2], [], {}, {"a": [1, {"b": null}]}, "- x"],
            "num": 3, "neg": -1.5, "bool": false,
        }));
    }
}
