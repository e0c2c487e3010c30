//! The render stage: files → documents, between the cache and the manifests stage.
//!
//! In: the verified snapshot's files (the tree, or `--path` within it). Out: the
//! documents the manifests stage builds objects from. When the directory holds a
//! kustomization it is rendered as `kustomize build` v5 renders it; without one the
//! plain files pass through. Pure: no cluster, no network, bounded by the same limits
//! as manifests.

pub mod patch;
