//! Kustomize's patches: strategic merge (with the list merge keys of built-in kinds)
//! and JSON 6902, applied to one document at a time.
//!
//! In: one target document and one patch. Out: the patched document, in place, or an
//! error that names the path within the document and the rule broken; on error the
//! target is untouched. Both appliers follow what `kustomize build` v5.8.1 does, not
//! the Kubernetes API server's strategic merge: see `smp.rs` (kyaml's merge walk),
//! `schema.rs` and the generated `merge_keys.rs` (which lists merge by which keys),
//! and `json6902.rs`.

mod json6902;
mod merge_keys;
mod schema;
mod smp;
mod smp_list;

use serde_json::Value;

/// What a strategic-merge patch did to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    /// The target was patched in place.
    Patched,
    /// The patch said `$patch: delete` at its top: the target leaves the set.
    Deleted,
}

/// Why a patch could not be applied. Messages name the path within the document.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("strategic merge at {path}: the patch has {patch} where the target has {target}")]
    Shape {
        path: String,
        target: &'static str,
        patch: &'static str,
    },
    #[error(
        "strategic merge at {path}: unknown patch strategy {value:?} (delete, replace or merge)"
    )]
    Directive { path: String, value: String },
    #[error("strategic merge at {path}: every element of this merge list must be {expected}")]
    Element {
        path: String,
        expected: &'static str,
    },
    #[error("json patch operation {index} ({op} {path:?}): {reason}")]
    Json6902 {
        index: usize,
        op: String,
        path: String,
        reason: String,
    },
}

/// Applies a strategic-merge `patch` to `target`, looking up list merge keys by the
/// target's `apiVersion` and `kind` (lists of custom resources are replaced whole).
/// Kustomize's bookkeeping around the merge (keeping the target's name, kind and
/// namespace unless the patch may change them) is the caller's.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<Merged, PatchError> {
    match smp::merge(target, patch)? {
        Some(merged) => {
            *target = merged;
            Ok(Merged::Patched)
        }
        None => {
            *target = Value::Null;
            Ok(Merged::Deleted)
        }
    }
}

/// Applies JSON 6902 operations (`[{op, path, value|from}, …]`) to `target`, all or
/// nothing.
pub fn json6902(target: &mut Value, operations: &[Value]) -> Result<(), PatchError> {
    json6902::apply(target, operations)
}

#[cfg(test)]
mod tests;
