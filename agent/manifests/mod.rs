//! The manifests stage: files → typed objects, validated, scoped and ordered.
//!
//! In: a directory of `*.yaml`, `*.yml` and `*.json` files (a verified snapshot from
//! the cache, or a checkout for `hawser validate`). Out: a [`ManifestSet`], the objects
//! in apply order with their namespaces filled in. Nothing here talks to a cluster or a
//! network; whether a kind is namespaced comes from a [`Namespacing`] the caller
//! supplies (API discovery in the agent, a built-in table in `validate`).
//!
//! Two steps, so that callers can look at the documents in between:
//!
//! 1. [`load_dir`] walks the directory in sorted order, honours `.hawserignore`, and
//!    parses every document with explicit budgets ([`ParseLimits`]) because the input is
//!    untrusted. See [`yaml`] for the YAML 1.1 decisions. [`load`] does the same and
//!    also returns the file count and warnings (skipped kustomizations, symlinks).
//! 2. [`build`] checks each object's identity, fills in namespaces, rejects duplicates,
//!    checks every object against the [`Scope`], and orders the set ([`order`]). Kinds
//!    the caller's [`Namespacing`] does not know are looked up in the set's own CRDs
//!    ([`CrdNamespacing`]), so a revision may bring a CRD and its objects together.
//!
//! What can go wrong is a [`ManifestError`]: one line naming the file, the document
//! (1-based, counting non-empty documents), the line where known, and the rule broken.
//! One bad object rejects the whole set, so nothing is ever half-applied.

mod body;
mod error;
pub mod ignore;
mod load;
mod object;
pub mod order;
pub mod scope;
pub mod sealed;
mod watch;
pub mod yaml;

#[cfg(test)]
mod fuzz;

use std::collections::BTreeSet;
use std::fmt;

pub use body::{Body, Head};
pub use error::{ManifestError, ObjectRule, ScopeRule, Shown};
pub use load::{Loaded, load, load_dir};
pub use object::{Document, build, expand_lists, valid_namespace};
pub use scope::{BuiltinNamespacing, CrdNamespacing, Namespacing, Scope};
pub use sealed::Sealed;
pub use watch::worth_watching;

/// Which object: the identity used for duplicates, inventory and prune.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// API group; empty for the core group (`v1`).
    pub group: String,
    /// API version within the group (`v1`, `v1beta1`).
    pub version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects; always set for namespaced ones after [`build`].
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The group and kind as ApplySet writes them: `Kind.group`, or `Kind` for core.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// `group/version`, or `version` for core: the object's `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The stage this object is applied in (prune runs the stages backwards).
    pub fn stage(&self) -> Stage {
        order::stage_of(&self.group, &self.kind, self.namespace.is_some())
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Where an object came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Path relative to the root directory, `/`-separated.
    pub file: String,
    /// 1-based index among the file's non-empty documents.
    pub document: usize,
    /// 1-based line where the document's content starts, when known.
    pub line: Option<usize>,
    /// 1-based index in the `items` of a `List` document, for flattened items.
    pub item: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        if let Some(item) = self.item {
            write!(f, ", item {item}")?;
        }
        Ok(())
    }
}

/// When an object is applied. Apply goes through the stages in this order; prune goes
/// backwards. Derives `Ord` so callers can sort and group by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// CustomResourceDefinitions and Namespaces: what everything else needs to exist.
    ClusterFoundation,
    /// Other cluster-scoped objects (ClusterRoles, StorageClasses, …).
    ClusterScoped,
    /// Namespaced objects, in the kind order documented in [`order`].
    Namespaced,
    /// Admission webhook configurations and APIServices. They point at Services that
    /// the earlier stages create; registered first, a webhook with `failurePolicy: Fail`
    /// would block the very objects that make it work.
    Admission,
}

/// One object ready for planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub id: ObjectRef,
    /// The object as parsed, with `metadata.namespace` filled in for namespaced kinds
    /// (and removed from cluster-scoped ones), as compact text: see [`Body`].
    pub object: Body,
    pub location: Location,
    pub stage: Stage,
    /// The leaves render decrypted: masked in every diff, and the API server's
    /// words about the object withheld as for a Secret.
    pub sealed: sealed::Sealed,
}

/// The validated, scoped, ordered objects of one revision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestSet {
    /// In apply order: by [`Stage`], then by kind order, then by file order.
    pub objects: Vec<Manifest>,
    /// Things worth telling an operator that do not reject the set, one line each.
    pub warnings: Vec<String>,
}

impl ManifestSet {
    /// The objects grouped by stage, in apply order; stages without objects are left out.
    pub fn by_stage(&self) -> Vec<(Stage, &[Manifest])> {
        self.objects
            .chunk_by(|a, b| a.stage == b.stage)
            .filter_map(|chunk| chunk.first().map(|m| (m.stage, chunk)))
            .collect()
    }

    /// The distinct `Kind.group`s, sorted: ApplySet's `contains-group-kinds`.
    pub fn group_kinds(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.objects.iter().map(|m| m.id.group_kind()).collect();
        set.into_iter().collect()
    }

    /// The distinct namespaces of namespaced objects, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .objects
            .iter()
            .filter_map(|m| m.id.namespace.as_deref())
            .collect();
        set.into_iter().map(str::to_string).collect()
    }
}

/// Budgets for untrusted input. The defaults fit large real repositories (CRD bundles
/// of several MiB) while stopping amplification attacks within milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest manifest file read, in bytes.
    pub max_file_bytes: u64,
    /// Largest total of all manifest files, in bytes.
    pub max_total_bytes: u64,
    /// Most manifest files loaded.
    pub max_files: usize,
    /// Most documents in one file.
    pub max_documents: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most parser events aliases may add, summed over every document of one load
    /// (alias bombs). Also caps one document's alias replay, aliases and anchors.
    pub max_alias_expansion: usize,
    /// Most nodes (mappings, sequences, scalars) in one document, YAML or JSON.
    pub max_nodes: usize,
    /// Most nodes over every document of one load: many documents at the
    /// per-document limit would otherwise add up past the agent's memory.
    pub max_total_nodes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 8 * 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
            max_files: 10_000,
            max_documents: 10_000,
            // Real CRD schemas nest about 40 deep. Parsing recurses per level, and a
            // debug build needs ~25 KiB per level: 64 fits a 2 MiB thread stack.
            max_depth: 64,
            max_alias_expansion: 100_000,
            // serde-saphyr's default per document. A node costs 32–100 bytes as a
            // JSON value: the load's total keeps a worst case near 100 MiB at most,
            // while 1,000 typical objects need about 60,000.
            max_nodes: 250_000,
            max_total_nodes: 1_000_000,
        }
    }
}
