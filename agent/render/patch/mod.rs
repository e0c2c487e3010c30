//! Kustomize's patches: strategic merge (with the list merge keys of built-in kinds)
//! and JSON 6902, applied to one document at a time.
//!
//! The interface the kustomization renderer calls; the appliers land with the patch
//! work (issue #15). Until then every call is refused, so no patch is ever silently
//! skipped.

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
    #[error("patches are not supported yet")]
    Unsupported,
}

/// Applies a strategic-merge `patch` to `target`, looking up list merge keys by the
/// target's `apiVersion` and `kind` (lists of custom resources are replaced whole).
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<Merged, PatchError> {
    let _ = (target, patch);
    Err(PatchError::Unsupported)
}

/// Applies JSON 6902 operations (`[{op, path, value|from}, …]`) to `target`, all or
/// nothing.
pub fn json6902(target: &mut Value, operations: &[Value]) -> Result<(), PatchError> {
    let _ = (target, operations);
    Err(PatchError::Unsupported)
}
