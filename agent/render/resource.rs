//! One object being rendered, with the history kustomize keeps for it, and the
//! ordered set of them.
//!
//! kustomize remembers every id an object had before a rename (prefix, suffix,
//! namespace, hash) and which prefixes and suffixes were added; name references are
//! resolved from that history at the end. Here the history is plain fields instead of
//! kustomize's internal annotations, so it can never leak into the output.

use serde_json::Value;

use crate::manifests::sealed::{Sealed, escape};
use crate::manifests::{Document, Location};

use super::RenderError;

/// Group, version and kind of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn of(value: &Value) -> Self {
        let api_version = value["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Self {
            group,
            version,
            kind: value["kind"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// kustomize's spelling in messages: `Kind.version.group`, `Kind.version.[noGrp]`.
    pub fn shown(&self) -> String {
        let group = if self.group.is_empty() {
            "[noGrp]"
        } else {
            &self.group
        };
        let version = if self.version.is_empty() {
            "[noVer]"
        } else {
            &self.version
        };
        format!("{}.{}.{}", self.kind, version, group)
    }
}

/// An id an object had: namespace as kustomize's `EffectiveNamespace` (`default`
/// for none, empty for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id {
    pub gvk: Gvk,
    pub namespace: String,
    pub name: String,
}

/// How a generated object meets an existing one of the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Create,
    Merge,
    Replace,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub value: Value,
    /// Where the object was read from (generated objects: the kustomization).
    pub location: Location,
    /// Ids before each rename, oldest first; the current id is not in it.
    pub previous: Vec<Id>,
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    /// For generated ConfigMaps and Secrets: whether the name gets the content hash.
    pub needs_hash: bool,
    /// For generated objects: create, merge or replace.
    pub behavior: Option<Behavior>,
    /// The leaves holding values decrypted from SOPS generator sources.
    pub sealed: Sealed,
    /// Values decrypted from SOPS patch files merged into this object; sealed
    /// wherever they are once the build is done (later patches may move them).
    pub sealed_values: Vec<Value>,
}

impl Resource {
    pub fn new(value: Value, location: Location) -> Self {
        Self {
            value,
            location,
            previous: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            behavior: None,
            sealed: Sealed::default(),
            sealed_values: Vec::new(),
        }
    }

    /// The finished object as a document, every leaf equal to a value decrypted
    /// from a patch sealed (except the identity fields, shown everywhere anyway).
    pub fn into_document(self) -> Document {
        let Resource {
            value,
            location,
            mut sealed,
            sealed_values,
            ..
        } = self;
        if !sealed_values.is_empty() {
            seal_equal(&value, &sealed_values, &mut String::new(), &mut sealed);
        }
        Document::sealed(location, &value, sealed)
    }

    pub fn gvk(&self) -> Gvk {
        Gvk::of(&self.value)
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn id(&self) -> Id {
        let gvk = self.gvk();
        let namespace = effective_namespace(&gvk, self.namespace());
        Id {
            gvk,
            namespace,
            name: self.name().to_string(),
        }
    }

    /// The first id the object had.
    pub fn original(&self) -> Id {
        self.previous.first().cloned().unwrap_or_else(|| self.id())
    }

    /// Records the current id before a rename.
    pub fn store_previous(&mut self) {
        let id = self.id();
        self.previous.push(id);
    }

    pub fn set_name(&mut self, name: String) {
        if let Some(meta) = self
            .value
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            meta.insert("name".to_string(), Value::String(name));
        }
    }

    /// `Kind.version.group/name.namespace` as kustomize's messages write ids.
    pub fn shown(&self) -> String {
        let ns = match self.namespace() {
            "" => "[noNs]",
            ns => ns,
        };
        format!("{}/{}.{}", self.gvk().shown(), self.name(), ns)
    }

    pub fn labels(&self) -> Option<&serde_json::Map<String, Value>> {
        self.value
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
    }

    pub fn annotations(&self) -> Option<&serde_json::Map<String, Value>> {
        self.value
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
    }
}

/// kustomize's `EffectiveNamespace`: `default` when unset, nothing for cluster-scoped
/// kinds.
pub fn effective_namespace(gvk: &Gvk, namespace: &str) -> String {
    if super::scope::is_cluster_scoped(gvk) {
        String::new()
    } else if namespace.is_empty() {
        "default".to_string()
    } else {
        namespace.to_string()
    }
}

/// The objects of one kustomization level, in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct ResMap {
    pub items: Vec<Resource>,
}

impl ResMap {
    /// Adds an object; an id already present is an error, as in kustomize.
    pub fn append(&mut self, res: Resource) -> Result<(), RenderError> {
        let id = res.id();
        // Names differ almost always: compare them before building whole ids.
        if let Some(first) = self
            .items
            .iter()
            .find(|r| r.name() == id.name && r.id() == id)
        {
            return Err(RenderError::Resource {
                location: res.location.clone(),
                reason: format!(
                    "may not add resource with an already registered id: {} (first from {})",
                    res.shown(),
                    first.location.file
                ),
            });
        }
        self.items.push(res);
        Ok(())
    }

    pub fn absorb(&mut self, other: ResMap) -> Result<(), RenderError> {
        for res in other.items {
            self.append(res)?;
        }
        Ok(())
    }
}

/// Seals each scalar leaf of `value` that equals one of `plain`.
fn seal_equal(value: &Value, plain: &[Value], at: &mut String, sealed: &mut Sealed) {
    const IDENTITY: [&str; 4] = [
        "/apiVersion",
        "/kind",
        "/metadata/name",
        "/metadata/namespace",
    ];
    let len = at.len();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push('/');
                at.push_str(&escape(k));
                seal_equal(v, plain, at, sealed);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push_str(&format!("/{i}"));
                seal_equal(v, plain, at, sealed);
                at.truncate(len);
            }
        }
        leaf => {
            if plain.contains(leaf) && !IDENTITY.contains(&at.as_str()) {
                sealed.insert(at);
            }
        }
    }
}
