//! Which leaves of a document hold values render decrypted (SOPS), so that every
//! printer can mask exactly those: `render`, `diff`, and the error texts that could
//! quote them.
//!
//! In: JSON pointers (RFC 6901) that render records as it fills plaintext in. Out:
//! [`Sealed::mask`], which replaces those leaves by `***` in a copy meant for show.
//! Only paths travel with a document, never the values; an object without decrypted
//! leaves carries an empty list (no allocation).

use serde_json::Value;

/// The text shown instead of a decrypted value.
pub const MASK: &str = "***";

/// The pointers of a document's decrypted leaves, sorted and unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sealed(Vec<Box<str>>);

impl Sealed {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn pointers(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(AsRef::as_ref)
    }

    pub fn insert(&mut self, pointer: &str) {
        if let Err(at) = self.0.binary_search_by(|p| p.as_ref().cmp(pointer)) {
            self.0.insert(at, pointer.into());
        }
    }

    pub fn extend(&mut self, other: &Sealed) {
        for p in other.pointers() {
            self.insert(p);
        }
    }

    /// The pointers under `prefix` (a pointer itself), made relative to it: what a
    /// `List`'s item keeps when the List is flattened.
    pub fn under(&self, prefix: &str) -> Sealed {
        let mut out = Sealed::default();
        for p in self.pointers() {
            if let Some(rest) = p.strip_prefix(prefix)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                out.insert(rest);
            }
        }
        out
    }

    /// A mapping key at `parent` was renamed (substitution of `${var}` in keys): the
    /// pointers through it follow.
    pub fn rename(&mut self, parent: &str, from: &str, to: &str) {
        let old = format!("{parent}/{}", escape(from));
        let new = format!("{parent}/{}", escape(to));
        let moved: Vec<Box<str>> = self
            .0
            .iter()
            .filter_map(|p| {
                let rest = p.strip_prefix(old.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then(|| format!("{new}{rest}").into())
            })
            .collect();
        if moved.is_empty() {
            return;
        }
        self.0.retain(|p| {
            p.strip_prefix(old.as_str())
                .is_none_or(|rest| !(rest.is_empty() || rest.starts_with('/')))
        });
        for p in moved {
            self.insert(&p);
        }
    }

    /// Replaces every sealed leaf of `value` by `***`.
    pub fn mask(&self, value: &mut Value) {
        for p in self.pointers() {
            if let Some(leaf) = value.pointer_mut(p) {
                *leaf = Value::String(MASK.into());
            }
        }
    }

    /// A copy of `value` for show: masked when anything in it is sealed.
    pub fn masked(&self, value: &Value) -> Value {
        let mut out = value.clone();
        self.mask(&mut out);
        out
    }
}

/// One pointer segment: `~` and `/` escaped (RFC 6901).
pub fn escape(key: &str) -> String {
    if key.contains(['~', '/']) {
        key.replace('~', "~0").replace('/', "~1")
    } else {
        key.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_exactly_the_sealed_leaves() {
        let mut sealed = Sealed::default();
        sealed.insert("/data/token");
        sealed.insert(&format!("/spec/{}/0", escape("a/b")));
        sealed.insert("/data/token");
        assert_eq!(sealed.pointers().count(), 2);
        let value = json!({"data": {"token": "hunter2", "plain": "x"},
            "spec": {"a/b": ["hunter3", "y"]}});
        let shown = sealed.masked(&value);
        assert_eq!(
            shown,
            json!({"data": {"token": "***", "plain": "x"}, "spec": {"a/b": ["***", "y"]}})
        );
    }

    #[test]
    fn follows_lists_and_renamed_keys() {
        let mut sealed = Sealed::default();
        sealed.insert("/items/1/data/k");
        sealed.insert("/items/10/data/k");
        assert_eq!(
            sealed.under("/items/1").pointers().collect::<Vec<_>>(),
            ["/data/k"]
        );
        let mut sealed = Sealed::default();
        sealed.insert("/data/${key}");
        sealed.insert("/data/${key}x");
        sealed.rename("/data", "${key}", "token");
        assert_eq!(
            sealed.pointers().collect::<Vec<_>>(),
            ["/data/${key}x", "/data/token"]
        );
    }
}
