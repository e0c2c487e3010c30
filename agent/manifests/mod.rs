//! TEMPORARY stub of the manifests API (the real module lands from the manifests
//! branch); lets the cluster-side code compile meanwhile.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}
impl ObjectRef {
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() { self.kind.clone() } else { format!("{}.{}", self.kind, self.group) }
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
#[derive(Debug, Clone)]
pub struct Location { pub file: String, pub document: usize, pub line: Option<usize> }
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage { ClusterFoundation, ClusterScoped, Namespaced }
#[derive(Debug, Clone)]
pub struct Manifest { pub id: ObjectRef, pub object: serde_json::Value, pub location: Location, pub stage: Stage }
#[derive(Debug, Clone)]
pub struct ManifestSet { pub objects: Vec<Manifest>, pub warnings: Vec<String> }
pub trait Namespacing { fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool>; }
#[derive(Debug, Clone)]
pub struct Document { pub location: Location, pub value: serde_json::Value }
#[derive(Debug, Clone, Default)]
pub struct Scope { pub namespace: String, pub allowed_namespaces: Vec<String>, pub allow_cluster_scoped: bool, pub allow_kinds: Vec<String>, pub deny_kinds: Vec<String> }
#[derive(Debug, Clone, Default)]
pub struct Limits;
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct ManifestError;
pub fn load_dir(_root: &std::path::Path, _subpath: Option<&std::path::Path>, _limits: &Limits) -> Result<Vec<Document>, ManifestError> { Err(ManifestError) }
pub fn build(_docs: Vec<Document>, _scope: &Scope, _ns: &dyn Namespacing) -> Result<ManifestSet, ManifestError> { Err(ManifestError) }
