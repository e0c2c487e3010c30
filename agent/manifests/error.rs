//! The manifests stage's errors. Each renders as one line that names the file, the
//! document and line where known, the object where known, and the rule broken.

use std::io;

use super::{Location, ObjectRef};

/// Why a set of manifests was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("{path}: {reason}")]
    BadPath { path: String, reason: &'static str },

    #[error("{file}: file is {size} bytes, larger than the limit of {limit} bytes")]
    FileTooLarge { file: String, size: u64, limit: u64 },

    #[error("{file}: manifests total more than the limit of {limit} bytes")]
    TotalTooLarge { file: String, limit: u64 },

    #[error("{file}: more than {limit} manifest files")]
    TooManyFiles { file: String, limit: usize },

    #[error("{dir}: directories nest more than {limit} deep")]
    TooDeep { dir: String, limit: usize },

    #[error("{dir}: more than {limit} directory entries in the walk")]
    TooManyEntries { dir: String, limit: usize },

    #[error("{file}: more than {limit} documents in one file")]
    TooManyDocuments { file: String, limit: usize },

    #[error("{file}: file is not valid UTF-8")]
    NotUtf8 { file: String },

    #[error("{location}: invalid {format}: {message}")]
    Syntax {
        location: Location,
        format: &'static str,
        message: String,
    },

    #[error(
        "{dir}: only a kustomization is here, and kustomizations are not rendered; \
         commit the output of `kustomize build` instead"
    )]
    Kustomization { dir: String },

    #[error("{location}: {rule}")]
    Object {
        location: Location,
        rule: Box<ObjectRule>,
    },

    #[error("{location}: {id} is defined twice (first in {first})")]
    Duplicate {
        location: Location,
        id: Box<ObjectRef>,
        first: Box<Location>,
    },

    #[error("{location}: {id}: {rule}{}", more_suffix(*more))]
    Scope {
        location: Location,
        id: Box<ObjectRef>,
        rule: Box<ScopeRule>,
        /// How many other objects are outside the scope too.
        more: usize,
    },
}

fn more_suffix(more: usize) -> String {
    match more {
        0 => String::new(),
        1 => " (and 1 more object outside the scope)".to_string(),
        n => format!(" (and {n} more objects outside the scope)"),
    }
}

/// A rule about an object's own shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectRule {
    #[error("document is {found}, not a mapping")]
    NotAMapping { found: &'static str },
    #[error("{field} is missing")]
    Missing { field: &'static str },
    #[error("{field} must be a string, found {found}")]
    NotAString {
        field: &'static str,
        found: &'static str,
    },
    #[error(
        "{field}.{key} must be a string, found {found}{}",
        if hint.is_empty() { String::new() } else { format!(" ({hint})") }
    )]
    NotAStringValue {
        field: String,
        key: Shown,
        found: &'static str,
        hint: &'static str,
    },
    #[error("{field} must be a mapping, found {found}")]
    FieldNotAMapping {
        field: &'static str,
        found: &'static str,
    },
    #[error("apiVersion {0} is not `version` or `group/version`")]
    BadApiVersion(Shown),
    #[error("kind {0} is not a valid kind (letters and digits, starting with a letter)")]
    BadKind(Shown),
    #[error(
        "metadata.name is missing (generateName is not supported: hawser tracks and prunes objects by name, and a generated one changes on every apply)"
    )]
    GenerateName,
    #[error("metadata.name {0} is not a valid object name")]
    BadName(Shown),
    #[error("metadata.namespace {0} is not a valid namespace name")]
    BadNamespace(Shown),
    #[error("items of kind {kind} must be a sequence, found {found}")]
    ItemsNotASequence { kind: String, found: &'static str },
    #[error("Lists are nested more than {0} deep")]
    ListTooDeep(usize),
}

/// A rule of the [`Scope`](super::Scope).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeRule {
    #[error("namespace {namespace} is outside the scope (allowed: {})", allowed.join(", "))]
    NamespaceOutside {
        namespace: String,
        allowed: Vec<String>,
    },
    #[error("cluster-scoped objects are outside the scope (allow with --allow-cluster-scoped)")]
    ClusterScoped,
    #[error("kind {group_kind} grants power and is not allowed (allow with --allow-kinds {kind})")]
    PowerKind { group_kind: String, kind: String },
    #[error(
        "a RoleBinding to ClusterRole {role} grants power and is not allowed \
         (allow with --allow-kinds RoleBinding)"
    )]
    RoleBindingToClusterRole { role: Shown },
    #[error("kind {group_kind} is denied (--deny-kinds)")]
    Denied { group_kind: String },
}

/// Untrusted text as it may appear in a one-line message: cut at 100 characters, and
/// quoted and escaped unless it is plainly safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    const MAX_CHARS: usize = 100;

    /// As is when short and made of safe characters (a typical name), else quoted.
    pub fn new(text: &str) -> Self {
        let plain = !text.is_empty()
            && text.chars().count() <= Self::MAX_CHARS
            && text
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '@'));
        if plain {
            Self(text.to_string())
        } else {
            Self::quoted(text)
        }
    }

    /// Always quoted, for a value being rejected.
    pub fn quoted(text: &str) -> Self {
        let mut cut: String = text.chars().take(Self::MAX_CHARS).collect();
        if cut.len() < text.len() {
            cut.push('…');
        }
        Self(format!("{cut:?}"))
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
