//! JSON 6902 patches as kustomize applies them (evanphx/json-patch v4, which it
//! vendors): `add`, `remove`, `replace`, `move`, `copy`, `test`, over RFC 6901
//! pointers (`~1` is `/`, `~0` is `~`, `-` appends to a list).
//!
//! In: a document and the operations. Out: the patched document, or the first
//! operation that failed (by index, op and path); the document is untouched then.
//! Like the library kustomize uses, negative list indices count from the end, and a
//! `replace` of a missing map key adds it.

use serde_json::{Map, Value};

use super::PatchError;

/// Applies `operations` in order to a copy of `target`, which is replaced only when
/// all of them succeed.
pub(super) fn apply(target: &mut Value, operations: &[Value]) -> Result<(), PatchError> {
    let mut doc = target.clone();
    for (index, op) in operations.iter().enumerate() {
        let fail = |reason: String| PatchError::Json6902 {
            index,
            op: op_name(op),
            path: op
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            reason,
        };
        one(&mut doc, op).map_err(fail)?;
    }
    *target = doc;
    Ok(())
}

fn op_name(op: &Value) -> String {
    op.get("op")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string()
}

fn one(doc: &mut Value, op: &Value) -> Result<(), String> {
    let Some(fields) = op.as_object() else {
        return Err("an operation must be a map".to_string());
    };
    let path = pointer_field(fields, "path")?;
    match op_name(op).as_str() {
        "add" => {
            let value = fields.get("value").cloned().unwrap_or(Value::Null);
            add(doc, &path, value)
        }
        "remove" => remove(doc, &path).map(drop),
        "replace" => {
            let value = fields.get("value").cloned().unwrap_or(Value::Null);
            replace(doc, &path, value)
        }
        "move" => {
            let from = pointer_field(fields, "from")?;
            let value = remove(doc, &from)?;
            add(doc, &path, value)
        }
        "copy" => {
            let from = pointer_field(fields, "from")?;
            let value = get(doc, &from)?.clone();
            add(doc, &path, value)
        }
        "test" => test(doc, &path, fields.get("value")),
        other => Err(format!("unknown operation {other:?}")),
    }
}

fn pointer_field(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    match fields.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{name} must be a string")),
        None => Err(format!("the operation has no {name}")),
    }
}

/// The tokens of a pointer, unescaped; an empty pointer is the whole document.
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("pointer {pointer:?} does not start with /"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// A list index as the library reads it: an integer, negative from the end.
fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    let bad = || format!("index {token:?} is out of range for a list of {len}");
    let i: i64 = token
        .parse()
        .map_err(|_| format!("{token:?} is not a list index"))?;
    let size = i64::try_from(len).map_err(|_| bad())? + i64::from(allow_end);
    let i = if i < 0 { i + size } else { i };
    if i < 0 || i >= size {
        return Err(bad());
    }
    usize::try_from(i).map_err(|_| bad())
}

/// The container holding the pointer's last token, and that token.
fn parent<'d>(doc: &'d mut Value, pointer: &str) -> Result<(&'d mut Value, String), String> {
    let mut toks = tokens(pointer)?;
    let Some(last) = toks.pop() else {
        return Err("the operation needs a path below the document".to_string());
    };
    let mut cur = doc;
    for t in &toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => {
                let len = a.len();
                a.get_mut(index(t, len, false)?)
            }
            _ => None,
        }
        .filter(|v| !v.is_null())
        .ok_or_else(|| format!("{pointer:?}: {t:?} does not exist"))?;
    }
    if !cur.is_object() && !cur.is_array() {
        return Err(format!("{pointer:?}: the parent is not a map or a list"));
    }
    Ok((cur, last))
}

fn get<'d>(doc: &'d mut Value, pointer: &str) -> Result<&'d Value, String> {
    if pointer.is_empty() {
        return Ok(doc);
    }
    let (p, key) = parent(doc, pointer)?;
    match p {
        Value::Object(m) => m.get(&key),
        Value::Array(a) => a.get(index(&key, a.len(), false)?),
        _ => None,
    }
    .ok_or_else(|| format!("{pointer:?} does not exist"))
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    let (p, key) = parent(doc, pointer)?;
    match p {
        Value::Object(m) => {
            m.insert(key, value);
        }
        Value::Array(a) => {
            let at = if key == "-" {
                a.len()
            } else {
                index(&key, a.len(), true)?
            };
            a.insert(at, value);
        }
        _ => {}
    }
    Ok(())
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, String> {
    let (p, key) = parent(doc, pointer)?;
    match p {
        Value::Object(m) => {
            super::smp::remove_key(m, &key).ok_or_else(|| format!("{pointer:?} does not exist"))
        }
        Value::Array(a) => {
            let at = index(&key, a.len(), false)?;
            Ok(a.remove(at))
        }
        _ => Err(format!("{pointer:?} does not exist")),
    }
}

fn replace(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if pointer.is_empty() {
        if !value.is_object() && !value.is_array() {
            return Err("the whole document can only become a map or a list".to_string());
        }
        *doc = value;
        return Ok(());
    }
    let (p, key) = parent(doc, pointer)?;
    match p {
        Value::Object(m) => {
            m.insert(key, value);
        }
        Value::Array(a) => {
            let at = index(&key, a.len(), false)?;
            a[at] = value;
        }
        _ => {}
    }
    Ok(())
}

fn test(doc: &mut Value, pointer: &str, expected: Option<&Value>) -> Result<(), String> {
    let actual = if pointer.is_empty() {
        Some(&*doc)
    } else {
        let (p, key) = parent(doc, pointer)?;
        match p {
            Value::Object(m) => m.get(&key),
            Value::Array(a) => Some(&a[index(&key, a.len(), false)?]),
            _ => None,
        }
    };
    let same = match (actual, expected) {
        // A missing key equals an absent or null value, as in the library.
        (None, None | Some(Value::Null)) => true,
        (Some(a), Some(e)) => equal(a, e),
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!("{pointer:?} does not hold the tested value"))
    }
}

/// JSON equality with numbers compared by value (1 equals 1.0).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}
