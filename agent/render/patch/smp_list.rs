//! Lists that merge by key: kyaml's `walkAssociativeSequence` and
//! `setAssociativeSequenceElements`, with the list helpers they use (`ElementSetter`,
//! `ElementMatcher`, `appendListNode`), in kustomize's "patch elements first" order.
//!
//! In: the target's list and the patch's, the merge keys from the schema (empty for a
//! list of scalars, merged as a set). Out: the merged list. The order follows kyaml:
//! the patch's elements first, then the target's others; with several keys (ports:
//! `containerPort` and `protocol`) the target's elements are re-appended after the
//! patch's new ones. Elements that are null or `{}` are dropped, as kyaml drops them.
//!
//! What can go wrong: an element of the wrong shape for the merge (a scalar in a list
//! merged by key, a map in a list of scalars), named by the list's path.

use serde_json::Value;

use super::PatchError;
use super::schema::Node;
use super::smp::{DIRECTIVE, Directive, Pair, Walked, path_text, scalar_text, walk};

/// A merge list, walked against the patch's.
pub(super) fn walk_associative(
    pair: Pair,
    schema: Option<Node>,
    keys: &[&str],
    path: &mut Vec<String>,
) -> Result<Walked, PatchError> {
    // kyaml's `VisitList` for associative lists.
    let (dest, origin, in_place) = match pair {
        Pair::Two(d, o) => match (d, o) {
            (None | Some(Value::Null), Some(Value::Array(o))) => (o, None, false),
            (None | Some(Value::Null), Some(other)) => {
                return Ok(Walked::Value {
                    value: other,
                    in_place: false,
                });
            }
            (None | Some(Value::Null), None) => return Ok(Walked::Clear),
            (Some(_), Some(Value::Null)) => return Ok(Walked::Clear),
            (Some(Value::Array(d)), Some(Value::Array(mut o))) => {
                match list_directive(&mut o, path)? {
                    Directive::Delete => return Ok(Walked::Clear),
                    Directive::Replace => (o, None, false),
                    Directive::Merge => (d, Some(o), true),
                }
            }
            (Some(Value::Array(d)), None) => (d, Some(Vec::new()), true),
            // Shapes were checked by the caller.
            (Some(d), _) => {
                return Ok(Walked::Value {
                    value: d,
                    in_place: true,
                });
            }
        },
        Pair::Same(Value::Array(mut x)) => match list_directive(&mut x, path)? {
            Directive::Delete => return Ok(Walked::Clear),
            _ => (x, None, true),
        },
        Pair::Same(other) => {
            return Ok(Walked::Value {
                value: other,
                in_place: true,
            });
        }
    };

    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    // Patch first, then target: kustomize merges with "list increase direction: prepend".
    let (values, primitive) = {
        let sources: Vec<&Vec<Value>> = origin.iter().chain(std::iter::once(&dest)).collect();
        let values = element_values(&keys, &sources);
        if !values.is_empty() || !keys.is_empty() {
            (values, false)
        } else {
            (primitive_values(&sources), true)
        }
    };
    let elements = schema.and_then(Node::elements);
    let mut list = Lists { dest, origin, path };
    let keys = if primitive { vec![String::new()] } else { keys };
    let merged = list.set_elements(values, &keys, elements)?;
    Ok(Walked::Value {
        value: Value::Array(merged),
        in_place,
    })
}

/// The `$patch` of a list: a lone `{$patch: …}` element, removed when kyaml knows it.
fn list_directive(list: &mut Vec<Value>, path: &[String]) -> Result<Directive, PatchError> {
    let Some(found) = list
        .iter()
        .filter_map(Value::as_object)
        .find(|m| m.contains_key(DIRECTIVE))
    else {
        return Ok(Directive::Merge);
    };
    if found.len() > 1 {
        // A `$patch` next to other fields belongs to that element, not to the list.
        return Ok(Directive::Merge);
    }
    let text = found.get(DIRECTIVE).map(scalar_text).unwrap_or_default();
    let d = match text.as_str() {
        "delete" => Directive::Delete,
        "replace" => Directive::Replace,
        "merge" => Directive::Merge,
        other => {
            return Err(PatchError::Directive {
                path: path_text(path),
                value: other.to_string(),
            });
        }
    };
    let keys = [DIRECTIVE.to_string()];
    *list = element_setter(std::mem::take(list), None, &keys, &[text], path)?;
    Ok(d)
}

struct Lists<'p> {
    dest: Vec<Value>,
    /// The patch's list; `None` when the target's list is walked against itself.
    origin: Option<Vec<Value>>,
    path: &'p mut Vec<String>,
}

impl Lists<'_> {
    /// kyaml's `setAssociativeSequenceElements`.
    fn set_elements(
        &mut self,
        mut values_list: Vec<Vec<String>>,
        keys: &[String],
        elements: Option<Node>,
    ) -> Result<Vec<Value>, PatchError> {
        let mut items: Vec<Value> = Vec::new();
        if keys.len() > 1 {
            merge_values(&mut values_list);
        }
        let mut last_keys: Vec<String> = Vec::new();
        for values in &values_list {
            if values.is_empty() {
                continue;
            }
            let (vk, vv) = validate_keys(&values_list, values, keys);
            last_keys.clone_from(&vk);
            let (k2, v2) = validate_keys(std::slice::from_ref(&vv), &vv, &vk);
            let at = element_list(&self.dest, &k2, &v2);
            let pair = match &self.origin {
                Some(o) => Pair::Two(
                    at.map(|i| self.dest[i].clone()),
                    element_list(o, &k2, &v2).map(|i| o[i].clone()),
                ),
                None => match at {
                    Some(i) => Pair::Same(self.dest[i].clone()),
                    None => Pair::Two(None, None),
                },
            };
            self.path.push(element_label(&vk, &vv));
            let walked = walk(pair, elements, self.path);
            self.path.pop();
            let (mut val, in_place) = match walked? {
                Walked::Value { value, in_place } => (value, in_place),
                Walked::Clear | Walked::KeepNull => (Value::Null, false),
            };
            // kyaml merged the target's element in place: the list sees the result.
            if in_place && let Some(i) = at {
                self.dest[i] = val.clone();
            }
            let mut exit = false;
            for (i, key) in vk.iter().enumerate() {
                if val.is_null() || val.as_object().is_some_and(|m| m.is_empty()) {
                    self.dest =
                        element_setter(std::mem::take(&mut self.dest), None, &vk, &vv, self.path)?;
                    exit = true;
                } else if let Some(m) = val.as_object_mut()
                    && !m.contains_key(key)
                    && !vv[i].is_empty()
                {
                    // kyaml puts a merge key the merge lost back, as its text.
                    m.insert(key.clone(), Value::String(vv[i].clone()));
                    if in_place
                        && let Some(Value::Object(d)) = at.and_then(|i| self.dest.get_mut(i))
                    {
                        d.insert(key.clone(), Value::String(vv[i].clone()));
                    }
                }
            }
            if exit {
                continue;
            }
            items = element_setter(items, Some(val), &vk, &vv, self.path)?;
        }
        if values_list.is_empty() || last_keys.is_empty() {
            return Ok(std::mem::take(&mut self.dest));
        }
        let dest = std::mem::take(&mut self.dest);
        append_list_node(items, &dest, &last_keys, self.path)
    }
}

fn element_label(keys: &[String], values: &[String]) -> String {
    let pairs: Vec<String> = keys
        .iter()
        .zip(values)
        .map(|(k, v)| {
            if k.is_empty() {
                v.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    format!("[{}]", pairs.join(","))
}

/// Each element's merge-key texts, patch first, without repeats (kyaml's
/// `elementValues`); a key an element lacks (or has empty) gives "".
fn element_values(keys: &[String], sources: &[&Vec<Value>]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for src in sources {
        for elem in src.iter() {
            let vals: Vec<String> = keys
                .iter()
                .map(|k| {
                    elem.as_object()
                        .and_then(|m| m.get(k))
                        .filter(|v| !is_nil_or_empty(v))
                        .map(scalar_text)
                        .unwrap_or_default()
                })
                .collect();
            if vals.is_empty() || out.contains(&vals) {
                continue;
            }
            out.push(vals);
        }
    }
    out
}

/// The scalars of a list merged as a set, patch first, without repeats.
fn primitive_values(sources: &[&Vec<Value>]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for src in sources {
        for item in src.iter() {
            let v = vec![scalar_text(item)];
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

fn is_nil_or_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// kyaml's `validateKeys`: the keys some element has a value for, with this
/// element's values for them; all keys when none has any.
fn validate_keys(
    values_list: &[Vec<String>],
    values: &[String],
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let valid = |k: &String| {
        values_list.iter().any(|vl| {
            vl.iter()
                .zip(keys)
                .any(|(v, key)| key == k && !v.is_empty())
        })
    };
    if !keys.iter().any(valid) {
        return (keys.to_vec(), values.to_vec());
    }
    let vk = keys.iter().filter(|k| valid(k)).cloned().collect();
    let vv = values
        .iter()
        .zip(keys)
        .filter(|(v, k)| !v.is_empty() || valid(k))
        .map(|(v, _)| v.clone())
        .collect();
    (vk, vv)
}

/// kyaml's `mergeValues`: key tuples that agree where both have a value are unified
/// (a port without protocol matches the same port with one).
fn merge_values(values_list: &mut [Vec<String>]) {
    for i in 0..values_list.len() {
        // kyaml ranges over the list: the outer tuple is the one read at the start.
        let first = values_list[i].clone();
        for j in 0..values_list.len() {
            if let Some(unified) = unify(&first, &values_list[j]) {
                values_list[i].clone_from(&unified);
                values_list[j] = unified;
            }
        }
    }
}

fn unify(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            out.push(x.clone());
        } else if !x.is_empty() && !y.is_empty() {
            return None;
        } else if !x.is_empty() {
            out.push(x.clone());
        } else {
            out.push(y.clone());
        }
    }
    common.then_some(out)
}

/// kyaml's `MatchElementList`: the first element whose keys all have these texts.
fn element_list(list: &[Value], keys: &[String], values: &[String]) -> Option<usize> {
    let first_value = values.first().map(String::as_str).unwrap_or("");
    if keys.first().is_none_or(|k| k.is_empty()) {
        return list.iter().position(|e| scalar_text(e) == first_value);
    }
    if keys.len() != values.len() {
        return None;
    }
    list.iter().position(|e| {
        e.as_object().is_some_and(|m| {
            keys.iter()
                .zip(values)
                .all(|(k, v)| m.get(k).is_some_and(|x| scalar_text(x) == *v))
        })
    })
}

/// kyaml's `FieldMatcher` as `ElementSetter` uses it: does `elem` match `key=value`
/// (or, for key "", is the scalar `value`)? An empty value matches any element that
/// has the key.
fn field_matches(
    elem: &Value,
    key: &str,
    value: &str,
    path: &[String],
) -> Result<bool, PatchError> {
    if elem.is_null() {
        return Ok(false);
    }
    if key.is_empty() {
        if elem.is_object() || elem.is_array() {
            return Err(PatchError::Element {
                path: path_text(path),
                expected: "a scalar",
            });
        }
        return Ok(scalar_text(elem) == value);
    }
    let Some(m) = elem.as_object() else {
        return Err(PatchError::Element {
            path: path_text(path),
            expected: "a map",
        });
    };
    Ok(m.get(key)
        .is_some_and(|v| value.is_empty() || scalar_text(v) == value))
}

/// kyaml's `ElementSetter`: replaces every element matching `keys=values` with
/// `element` (or removes them when `element` is `None`), appends `element` when none
/// matched, and drops null and empty-map elements on the way.
fn element_setter(
    list: Vec<Value>,
    element: Option<Value>,
    keys: &[String],
    values: &[String],
    path: &[String],
) -> Result<Vec<Value>, PatchError> {
    let empty_key = [String::new()];
    let keys = if keys.is_empty() {
        &empty_key[..]
    } else {
        keys
    };
    let mapping_setter = !keys[0].is_empty() && values.first().is_some_and(|v| !v.is_empty());
    let mut out = Vec::with_capacity(list.len() + 1);
    let mut found_any = false;
    for elem in list {
        if elem.is_null() || elem.as_object().is_some_and(|m| m.is_empty()) {
            continue;
        }
        if !elem.is_object() && mapping_setter {
            out.push(elem);
            continue;
        }
        // As kyaml: a key past the end of `values` keeps the previous key's verdict.
        let mut matched = false;
        let mut found = true;
        for (j, key) in keys.iter().enumerate() {
            if let Some(v) = values.get(j) {
                matched = field_matches(&elem, key, v, path)?;
            }
            if !matched {
                found = false;
                break;
            }
        }
        if !found {
            if !values.is_empty() {
                out.push(elem);
            }
            continue;
        }
        found_any = true;
        if let Some(e) = &element {
            out.push(e.clone());
        }
    }
    if let Some(e) = element
        && !e.is_null()
        && !found_any
    {
        out.push(e);
    }
    Ok(out)
}

/// kyaml's `appendListNode(items, dest, keys)`: each target element set into the
/// merged items (replacing its match, else appended).
fn append_list_node(
    mut dst: Vec<Value>,
    src: &[Value],
    keys: &[String],
    path: &[String],
) -> Result<Vec<Value>, PatchError> {
    for elem in src {
        if keys[0].is_empty() {
            let v = [scalar_text(elem)];
            dst = element_setter(dst, Some(elem.clone()), &[String::new()], &v, path)?;
            continue;
        }
        let mut v = Vec::new();
        for key in keys {
            let found = match elem {
                Value::Null => None,
                Value::Object(m) => m.get(key),
                _ => {
                    return Err(PatchError::Element {
                        path: path_text(path),
                        expected: "a map",
                    });
                }
            };
            match found {
                Some(x) => v.push(scalar_text(x)),
                // kyaml appends an element without the key as it is, then goes on.
                None => dst.push(elem.clone()),
            }
        }
        if keys.len() > 1 {
            dst = element_setter(dst, None, keys, &v, path)?;
        }
        dst = element_setter(dst, Some(elem.clone()), keys, &v, path)?;
    }
    Ok(dst)
}
