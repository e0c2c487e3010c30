//! Strategic merge as kustomize applies it: kyaml's `merge2.Merge` (a walk over the
//! target and the patch side by side, `walk.Walker` with the `merge2.Merger` visitor),
//! with kustomize's option that list elements from the patch come first.
//!
//! In: a target document and a patch document. Out: the merged document, or "the
//! target is deleted". Rules, as kyaml has them:
//! - maps merge field by field; a `null` in the patch deletes the field;
//! - `$patch: delete|replace|merge` on a map, or as a lone `{$patch: …}` element of a
//!   merge list, deletes, replaces or merges that map or list;
//! - lists merge by key only where the schema (`schema.rs`) says so; lists of scalars
//!   with a merge strategy merge as sets; every other list (and every list of a custom
//!   resource) is replaced by the patch's;
//! - `$setElementOrder`, `$deleteFromPrimitiveList` and `$retainKeys` mean nothing to
//!   kyaml: they are merged as ordinary fields, and so they are here.
//!
//! What can go wrong: a patch value of another shape than the target's (a map where
//! the target has a list, …) and an unknown `$patch` value. Both name the field path.
//!
//! kyaml mutates the target's nodes in place and later re-sets list elements from the
//! target, so whether a walk's result *is* the target's node changes the outcome (an
//! element-level `$patch: replace` of an existing element is undone that way). The
//! walk therefore says where its result came from, and `Pair::Same` stands for the
//! walk of a node against itself, which kyaml does after a replace or an addition.

use serde_json::{Map, Value};

use super::PatchError;
use super::schema::{self, Node};
use super::smp_list;

/// The two sides of one step of the walk.
pub(super) enum Pair {
    /// The target's value (if any) and the patch's (if any).
    Two(Option<Value>, Option<Value>),
    /// One node walked against itself: kyaml's dest and origin are the same node.
    Same(Value),
}

/// What one step gives back.
pub(super) enum Walked {
    /// The field or element goes away.
    Clear,
    /// A value; `in_place` when it is the target's own node, merged where it stood.
    Value { value: Value, in_place: bool },
    /// A `null` the target had and the patch did not touch: kept as written.
    KeepNull,
}

/// A `$patch` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Directive {
    Merge,
    Replace,
    Delete,
}

pub(super) const DIRECTIVE: &str = "$patch";

/// Merges `patch` into `target`; `None` when the patch deletes the whole target.
pub(super) fn merge(target: &Value, patch: &Value) -> Result<Option<Value>, PatchError> {
    let mut path = Vec::new();
    let pair = Pair::Two(Some(target.clone()), Some(patch.clone()));
    Ok(match walk(pair, None, &mut path)? {
        Walked::Value { value, .. } if !value.is_null() => Some(value),
        _ => None,
    })
}

/// The shape of a node, as kyaml's node kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Map,
    List,
    Scalar,
}

fn shape(v: &Value) -> Option<Shape> {
    match v {
        Value::Null => None,
        Value::Object(_) => Some(Shape::Map),
        Value::Array(_) => Some(Shape::List),
        _ => Some(Shape::Scalar),
    }
}

fn shape_name(s: Shape) -> &'static str {
    match s {
        Shape::Map => "a map",
        Shape::List => "a list",
        Shape::Scalar => "a scalar",
    }
}

pub(super) fn path_text(path: &[String]) -> String {
    if path.is_empty() {
        "the document".to_string()
    } else {
        path.join(".")
    }
}

/// One step of kyaml's `Walker.Walk`.
pub(super) fn walk(
    pair: Pair,
    schema: Option<Node>,
    path: &mut Vec<String>,
) -> Result<Walked, PatchError> {
    let sources: Vec<&Value> = match &pair {
        Pair::Two(d, o) => d.iter().chain(o.iter()).collect(),
        Pair::Same(x) => vec![x],
    };
    let kind = sources.iter().find_map(|v| shape(v));
    if let Some(kind) = kind {
        for v in &sources {
            if let Some(other) = shape(v)
                && other != kind
            {
                return Err(PatchError::Shape {
                    path: path_text(path),
                    target: shape_name(kind),
                    patch: shape_name(other),
                });
            }
        }
    }
    let schema = schema.or_else(|| schema_of_sources(&sources));
    match kind {
        None | Some(Shape::Map) => walk_map(pair, schema, path),
        Some(Shape::List) => match schema.and_then(Node::merge_keys) {
            Some(keys) => smp_list::walk_associative(pair, schema, keys, path),
            None => Ok(visit_plain(pair)),
        },
        Some(Shape::Scalar) => Ok(visit_plain(pair)),
    }
}

/// kyaml's `GetSchema` where no schema was handed down: the first side that is an
/// object of a built-in kind (by its own `apiVersion` and `kind`).
fn schema_of_sources(sources: &[&Value]) -> Option<Node> {
    sources.iter().find_map(|v| {
        let m = v.as_object()?;
        let api_version = m.get("apiVersion")?.as_str().filter(|s| !s.is_empty())?;
        let kind = m.get("kind")?.as_str().filter(|s| !s.is_empty())?;
        schema::for_kind(api_version, kind)
    })
}

/// Scalars and lists that do not merge: the patch's value wins when it has one.
fn visit_plain(pair: Pair) -> Walked {
    match pair {
        Pair::Two(_, Some(o)) => Walked::Value {
            value: o,
            in_place: false,
        },
        Pair::Two(Some(d), None) => Walked::Value {
            value: d,
            in_place: true,
        },
        Pair::Two(None, None) => Walked::Clear,
        Pair::Same(x) => Walked::Value {
            value: x,
            in_place: true,
        },
    }
}

/// The `$patch` of a map, removed from it when it is one kyaml knows.
pub(super) fn map_directive(
    m: &mut Map<String, Value>,
    path: &[String],
) -> Result<Directive, PatchError> {
    let Some(v) = m.get(DIRECTIVE) else {
        return Ok(Directive::Merge);
    };
    let d = match scalar_text(v).as_str() {
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
    remove_key(m, DIRECTIVE);
    Ok(d)
}

/// kyaml's `VisitMap`, then each field (sorted, as kyaml visits them) walked in turn.
fn walk_map(
    pair: Pair,
    schema: Option<Node>,
    path: &mut Vec<String>,
) -> Result<Walked, PatchError> {
    // (dest, origin when it is a different node, whether dest is the target's node)
    let (mut dest, origin, in_place) = match pair {
        Pair::Two(d, o) => match (d, o) {
            (d @ (None | Some(Value::Null)), o) => {
                let target_null = d.is_some();
                let directive = match o {
                    Some(Value::Object(mut m)) => {
                        // kyaml ignores an unknown directive here and keeps it.
                        let d = map_directive(&mut m, path).unwrap_or(Directive::Merge);
                        (d, Some(Value::Object(m)))
                    }
                    other => (Directive::Merge, other),
                };
                match directive {
                    (Directive::Delete, _) => return Ok(Walked::Clear),
                    // An explicit null in the target survives a patch without the field.
                    (_, None) if target_null => return Ok(Walked::KeepNull),
                    (_, None) => return Ok(Walked::Clear),
                    (_, Some(Value::Object(m))) => (m, None, false),
                    (_, Some(other)) => {
                        return Ok(Walked::Value {
                            value: other,
                            in_place: false,
                        });
                    }
                }
            }
            (Some(_), Some(Value::Null)) => return Ok(Walked::Clear),
            (Some(Value::Object(d)), Some(Value::Object(mut o))) => {
                match map_directive(&mut o, path)? {
                    Directive::Delete => return Ok(Walked::Clear),
                    Directive::Replace => (o, None, false),
                    Directive::Merge => (d, Some(o), true),
                }
            }
            (Some(Value::Object(d)), None) => (d, Some(Map::new()), true),
            // Shapes were checked in `walk`.
            (Some(d), _) => {
                return Ok(Walked::Value {
                    value: d,
                    in_place: true,
                });
            }
        },
        Pair::Same(Value::Object(mut x)) => match map_directive(&mut x, path)? {
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

    let mut names: Vec<String> = dest.keys().cloned().collect();
    if let Some(o) = &origin {
        names.extend(o.keys().filter(|k| !dest.contains_key(*k)).cloned());
    }
    names.sort();
    for name in names {
        let child = schema.and_then(|s| s.field(&name));
        let d = dest.get_mut(&name).map(std::mem::take);
        let pair = match &origin {
            Some(o) => Pair::Two(d, o.get(&name).cloned()),
            None => match d {
                Some(x) => Pair::Same(x),
                None => Pair::Two(None, None),
            },
        };
        path.push(name.clone());
        let walked = walk(pair, child, path)?;
        path.pop();
        set_field(&mut dest, name, walked);
    }
    Ok(Walked::Value {
        value: Value::Object(dest),
        in_place,
    })
}

/// kyaml's `FieldSetter`: nothing or a plain null removes the field; a value replaces
/// it where it stands or is appended.
fn set_field(m: &mut Map<String, Value>, name: String, walked: Walked) {
    match walked {
        Walked::Clear
        | Walked::Value {
            value: Value::Null, ..
        } => {
            remove_key(m, &name);
        }
        Walked::KeepNull => {
            m.insert(name, Value::Null);
        }
        Walked::Value { value, .. } => {
            m.insert(name, value);
        }
    }
}

/// A scalar's text, as kyaml compares merge keys (`yaml.Node.Value`); maps, lists and
/// null have none.
pub(super) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Object(_) | Value::Array(_) => String::new(),
    }
}

/// Removes a key keeping the others in place, whichever order the map keeps.
pub(super) fn remove_key(m: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let v = m.get(key).cloned()?;
    m.retain(|k, _| k != key);
    Some(v)
}
