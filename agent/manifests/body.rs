//! An object's JSON as compact text: what the stages keep of a document between them.
//!
//! A parsed `serde_json::Value` costs about 4 KB an object, because every mapping is
//! a B-tree leaf of ~600 bytes however few keys it holds; the same object as compact
//! JSON is about 300 bytes (measured on the benchmark's 5,000 objects:
//! `bench/results/2026-12-02-profile-5000.md`). So a revision travels from render to
//! apply as text, and each stage parses one object back when it looks inside it: a
//! revision's trees are never all in memory at once, only a window of them.
//!
//! The text is what `serde_json` wrote from a tree, so parsing it back gives the same
//! tree: maps are sorted (no `preserve_order`), floats round-trip exactly
//! (`float_roundtrip`), and depth is not limited again (`unbounded_depth`; the YAML
//! parser already bounded it by [`ParseLimits::max_depth`](super::ParseLimits)). It is
//! also the body sent to the API server, verbatim ([`Serialize`] writes it raw).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Compact JSON text of one object; empty once its content has moved elsewhere.
#[derive(Clone, Default)]
pub struct Body(Option<Box<RawValue>>);

impl Body {
    /// The tree as compact text.
    pub fn new(value: &Value) -> Body {
        // Serialising a `Value` cannot fail: its keys are strings and its numbers finite.
        Body(serde_json::value::to_raw_value(value).ok())
    }

    /// The tree, parsed back. An empty body is `null`.
    pub fn tree(&self) -> Value {
        let Some(raw) = &self.0 else {
            return Value::Null;
        };
        let mut parser = serde_json::Deserializer::from_str(raw.get());
        parser.disable_recursion_limit();
        // Text `serde_json` wrote from a `Value` parses back to it; `null` is only
        // what an impossible failure would show.
        Value::deserialize(&mut parser).unwrap_or(Value::Null)
    }

    /// The compact JSON text (`null` when empty).
    pub fn text(&self) -> &str {
        self.0.as_deref().map_or("null", RawValue::get)
    }

    /// Takes the text out, leaving the body empty.
    pub fn take(&mut self) -> Body {
        Body(self.0.take())
    }

    /// The fields that identify an object, read without building its tree.
    pub fn head(&self) -> Head {
        serde_json::from_str(self.text()).unwrap_or_default()
    }

    /// Whether the text may hold `needle`: a cheap test that lets a stage skip the
    /// objects it has nothing to do with (a JSON string holding `needle` holds its
    /// text unescaped, unless `needle` needs escaping).
    pub fn may_contain(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }
}

/// An object's `apiVersion` and `kind`, the rest skipped unparsed: enough to
/// discover kinds and to find CRDs and Lists before any object is built. A field
/// that is not a string reads as `None` (the manifests stage says what is wrong).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Head {
    api_version: Value,
    kind: Value,
}

impl Head {
    pub fn api_version(&self) -> Option<&str> {
        self.api_version.as_str()
    }

    pub fn kind(&self) -> Option<&str> {
        self.kind.as_str()
    }
}

impl Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(raw) => raw.serialize(s),
            None => s.serialize_unit(),
        }
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl fmt::Debug for Body {
    // The text may hold Secret data: never shown in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({} bytes)", self.text().len())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_parses_back_to_the_same_tree() {
        let value = json!({"kind": "ConfigMap", "b": [1, -2, 3.5, 1e300, 0.1, u64::MAX, i64::MIN],
            "a": {"s": "x\"\\\u{1}é", "n": null, "t": true}});
        let body = Body::new(&value);
        assert_eq!(body.tree(), value);
        assert!(!body.text().contains(' '), "compact: {}", body.text());
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            body.text(),
            "sent verbatim"
        );
    }

    #[test]
    fn deep_objects_parse_back() {
        // Deeper than serde_json's own limit of 128 levels.
        let mut value = json!("leaf");
        for _ in 0..200 {
            value = json!({ "a": value });
        }
        assert_eq!(Body::new(&value).tree(), value);
    }

    #[test]
    fn an_empty_body_is_null() {
        let mut body = Body::new(&json!({"a": 1}));
        let taken = body.take();
        assert_eq!(body.text(), "null");
        assert_eq!(body.tree(), Value::Null);
        assert_eq!(serde_json::to_string(&body).unwrap(), "null");
        assert_eq!(taken.tree(), json!({"a": 1}));
    }

    #[test]
    fn the_head_is_read_without_the_rest() {
        let body = Body::new(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"template": {"kind": "nested"}}}));
        let head = body.head();
        assert_eq!(head.api_version(), Some("apps/v1"));
        assert_eq!(head.kind(), Some("Deployment"));
        let odd = Body::new(&json!({"apiVersion": 1, "kind": ["x"]})).head();
        assert_eq!((odd.api_version(), odd.kind()), (None, None));
        assert_eq!(Body::new(&json!([1])).head().kind(), None);
    }

    #[test]
    fn debug_output_shows_no_content() {
        let body = Body::new(&json!({"data": {"password": "hunter2"}}));
        assert!(!format!("{body:?}").contains("hunter2"));
    }
}
