//! Pure comparison of a live object with what a dry run says it would become.
//!
//! In: two JSON objects as the API server returned them. Out: whether they differ once
//! the fields the server owns are removed, and a `kubectl diff`-style text of the
//! difference with Secret values and decrypted leaves masked. Nothing here talks to a cluster.

use serde_json::{Map, Value};

use crate::manifests::sealed::{MASK, Sealed};

/// Metadata fields the server sets and that say nothing about desired state.
const NOISY_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
];

/// Removes what the server owns (status, bookkeeping metadata) so that two versions of
/// an object compare equal exactly when their desired state is the same.
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    strip(&mut object);
    object
}

/// [`normalize`] in place: the planner strips objects as they arrive, so that no
/// `managedFields` tree outlives the request that brought it.
pub fn strip(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    map.remove("status");
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        for key in NOISY_METADATA {
            meta.remove(*key);
        }
        // kubectl's own bookkeeping; hawser never writes it.
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
}

/// True when the dry-run result would change the live object.
pub fn differs(live: &Value, desired: &Value) -> bool {
    normalize(live) != normalize(desired)
}

/// Top-level paths (dotted, e.g. `spec.replicas`) whose values differ, for logs and
/// events. Recurses through objects; arrays are compared whole.
pub fn changed_paths(live: &Value, desired: &Value) -> Vec<String> {
    paths(&normalize(live), &normalize(desired))
}

/// [`changed_paths`] of two objects already stripped.
pub fn paths(live: &Value, desired: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(live, desired, String::new(), &mut out);
    out
}

fn walk(a: &Value, b: &Value, prefix: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, path, out),
                    _ => out.push(path),
                }
            }
        }
        (a, b) if a != b => out.push(prefix),
        _ => {}
    }
}

/// Replaces Secret values, and every leaf render decrypted (`sealed`, in any kind),
/// with `***` so no diff, log or event can carry them. Keys stay visible; a value
/// that changed is marked `*** (before)` / `*** (after)` like `kubectl diff` does,
/// so the diff still shows which keys changed.
pub fn mask_secrets(
    live: Option<&Value>,
    desired: Option<&Value>,
    sealed: &Sealed,
) -> (Option<Value>, Option<Value>) {
    let is_secret = |v: &Value| v.get("kind").and_then(Value::as_str) == Some("Secret");
    let secret = live.is_some_and(is_secret) || desired.is_some_and(is_secret);
    if !secret && sealed.is_empty() {
        return (live.cloned(), desired.cloned());
    }
    let mut live = live.cloned();
    let mut desired = desired.cloned();
    if secret {
        for field in ["data", "stringData"] {
            let before = live.as_ref().and_then(|v| v.get(field)).cloned();
            let after = desired.as_ref().and_then(|v| v.get(field)).cloned();
            if let Some(v) = live.as_mut() {
                mask_field(v, field, after.as_ref(), "before");
            }
            if let Some(v) = desired.as_mut() {
                mask_field(v, field, before.as_ref(), "after");
            }
        }
    }
    for pointer in sealed.pointers() {
        let before = live.as_ref().and_then(|v| v.pointer(pointer)).cloned();
        let after = desired.as_ref().and_then(|v| v.pointer(pointer)).cloned();
        let changed = before.is_some() && after.is_some() && before != after;
        for (v, side) in [(live.as_mut(), "before"), (desired.as_mut(), "after")] {
            if let Some(leaf) = v.and_then(|v| v.pointer_mut(pointer)) {
                *leaf = Value::String(if changed {
                    format!("{MASK} ({side})")
                } else {
                    MASK.to_string()
                });
            }
        }
    }
    // Keep the last-applied annotation from leaking them as well.
    for v in [live.as_mut(), desired.as_mut()].into_iter().flatten() {
        if let Some(Value::Object(a)) = v.pointer_mut("/metadata/annotations")
            && a.contains_key("kubectl.kubernetes.io/last-applied-configuration")
        {
            a.insert(
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                Value::String(MASK.into()),
            );
        }
    }
    (live, desired)
}

fn mask_field(object: &mut Value, field: &str, other: Option<&Value>, side: &str) {
    let Some(Value::Object(values)) = object.get_mut(field) else {
        return;
    };
    let masked: Map<String, Value> = values
        .iter()
        .map(|(key, value)| {
            let same = other.and_then(|o| o.get(key)) == Some(value);
            let mask = if same || other.and_then(|o| o.get(key)).is_none() {
                "***".to_string()
            } else {
                format!("*** ({side})")
            };
            (key.clone(), Value::String(mask))
        })
        .collect();
    *values = masked;
}

/// Renders JSON as block YAML (keys sorted, strings quoted when a plain scalar would
/// read back as something else). Used only for human-readable diffs.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    emit(value, 0, &mut out);
    out
}

fn emit(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                out.push_str(&" ".repeat(indent));
                out.push_str(&scalar_string(key));
                out.push(':');
                emit_child(v, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&" ".repeat(indent));
                out.push('-');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // First key on the dash line, the rest indented under it.
                        let mut nested = String::new();
                        emit(item, indent + 2, &mut nested);
                        out.push(' ');
                        out.push_str(nested.trim_start());
                    }
                    _ => emit_child(item, indent, out),
                }
            }
        }
        other => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn emit_child(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(value, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(value, indent, out);
        }
        Value::String(s) if s.contains('\n') => {
            out.push_str(" |-\n");
            for line in s.split('\n') {
                if !line.is_empty() {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Quotes a string unless YAML would read it back as the same string.
fn scalar_string(s: &str) -> String {
    let ambiguous = s.is_empty()
        || matches!(
            s.to_ascii_lowercase().as_str(),
            "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        || s.parse::<f64>().is_ok()
        || s.starts_with(|c: char| " -?:,[]{}#&*!|>'\"%@`0123456789.+".contains(c))
        || s.ends_with(' ')
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| c.is_control());
    if ambiguous {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    } else {
        s.to_string()
    }
}

/// A unified diff of two texts (three lines of context), empty when they are equal.
pub fn unified_diff(old_name: &str, new_name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = edit_script(&a, &b);
    if ops.iter().all(|op| matches!(op, Op::Keep(..))) {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len())
        .filter(|&i| !matches!(ops[i], Op::Keep(..)))
        .collect();
    let mut i = 0;
    while i < changed.len() {
        let start = changed[i].saturating_sub(CONTEXT);
        let mut end = changed[i];
        while i < changed.len() && changed[i] <= end + 2 * CONTEXT {
            end = changed[i];
            i += 1;
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let (mut a_start, mut b_start) = (0, 0);
        for op in &ops[..start] {
            match op {
                Op::Keep(..) => {
                    a_start += 1;
                    b_start += 1;
                }
                Op::Delete(_) => a_start += 1,
                Op::Insert(_) => b_start += 1,
            }
        }
        let a_len = ops[start..end]
            .iter()
            .filter(|o| !matches!(o, Op::Insert(_)))
            .count();
        let b_len = ops[start..end]
            .iter()
            .filter(|o| !matches!(o, Op::Delete(_)))
            .count();
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            a_start + usize::from(a_len > 0),
            a_len,
            b_start + usize::from(b_len > 0),
            b_len
        ));
        for op in &ops[start..end] {
            match op {
                Op::Keep(line) => out.push_str(&format!(" {line}\n")),
                Op::Delete(line) => out.push_str(&format!("-{line}\n")),
                Op::Insert(line) => out.push_str(&format!("+{line}\n")),
            }
        }
    }
    out
}

#[derive(Debug)]
enum Op<'a> {
    Keep(&'a str),
    Delete(&'a str),
    Insert(&'a str),
}

/// Longest-common-subsequence edit script. Objects are small (hundreds of lines), so
/// the quadratic table is fine and keeps the code obvious.
fn edit_script<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::with_capacity(n + m));
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Keep(a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Deletions before insertions, as diff(1) prints them.
            ops.push(Op::Delete(a[i]));
            i += 1;
        } else {
            ops.push(Op::Insert(b[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn noise_does_not_count_as_change() {
        let live = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7",
            "managedFields": [{"manager": "x"}], "uid": "u", "generation": 2}, "data": {"k": "v"},
            "status": {"phase": "x"}});
        let desired = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "8"},
            "data": {"k": "v"}});
        assert!(!differs(&live, &desired));
        let changed = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "w"}});
        assert!(differs(&live, &changed));
        assert_eq!(changed_paths(&live, &changed), vec!["data.k"]);
    }

    #[test]
    fn secrets_are_masked_but_changed_keys_stay_visible() {
        let live = json!({"kind": "Secret", "data": {"same": "c2VjcmV0", "changed": "b2xk"}});
        let desired = json!({"kind": "Secret", "data": {"same": "c2VjcmV0", "changed": "bmV3"}});
        let (l, d) = mask_secrets(Some(&live), Some(&desired), &Sealed::default());
        let (l, d) = (to_yaml(&l.unwrap()), to_yaml(&d.unwrap()));
        assert!(!l.contains("c2VjcmV0") && !d.contains("bmV3") && !l.contains("b2xk"));
        let diff = unified_diff("live", "desired", &l, &d);
        assert!(diff.contains("-  changed: \"*** (before)\""), "{diff}");
        assert!(diff.contains("+  changed: \"*** (after)\""), "{diff}");
        assert!(!diff.contains("-  same"), "{diff}");
    }

    #[test]
    fn decrypted_leaves_of_any_kind_are_masked() {
        let live = json!({"kind": "ConfigMap", "data": {"token": "old-plain", "same": "s3cret", "open": "a"}});
        let desired = json!({"kind": "ConfigMap", "data": {"token": "new-plain", "same": "s3cret", "open": "b"}});
        let mut sealed = Sealed::default();
        sealed.insert("/data/token");
        sealed.insert("/data/same");
        let (l, d) = mask_secrets(Some(&live), Some(&desired), &sealed);
        let (l, d) = (to_yaml(&l.unwrap()), to_yaml(&d.unwrap()));
        let diff = unified_diff("live", "desired", &l, &d);
        for plain in ["old-plain", "new-plain", "s3cret"] {
            assert!(!diff.contains(plain), "{diff}");
        }
        assert!(diff.contains("+  token: \"*** (after)\""), "{diff}");
        assert!(
            diff.contains("+  open: b"),
            "the rest stays visible: {diff}"
        );
        // Nothing sealed: nothing masked.
        let (_, d) = mask_secrets(None, Some(&desired), &Sealed::default());
        assert_eq!(d.unwrap(), desired);
    }

    #[test]
    fn yaml_rendering_quotes_ambiguous_strings() {
        let v = json!({"a": "yes", "b": "0777", "c": "plain", "d": [1, {"x": "y", "w": "v"}], "e": "l1\nl2"});
        assert_eq!(
            to_yaml(&v),
            "a: \"yes\"\nb: \"0777\"\nc: plain\nd:\n- 1\n- w: v\n  x: \"y\"\ne: |-\n  l1\n  l2\n"
        );
    }

    #[test]
    fn unified_diff_has_hunks_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nD\ne\nf\ng\nh\n";
        let diff = unified_diff("old", "new", old, new);
        assert_eq!(
            diff,
            "--- old\n+++ new\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n"
        );
        assert_eq!(unified_diff("x", "y", old, old), "");
    }

    #[test]
    fn diff_of_new_object_is_all_insertions() {
        let diff = unified_diff("/dev/null", "new", "", "a\nb\n");
        assert_eq!(diff, "--- /dev/null\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n");
    }
}
