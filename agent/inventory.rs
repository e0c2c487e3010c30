//! The inventory: which objects hawser manages, kept as an ApplySet (KEP-3659) the way
//! kubectl ships it, so `kubectl get -l applyset.kubernetes.io/part-of=<id>` finds the
//! members and kubectl recognises (and refuses to touch) hawser's parent.
//!
//! The parent is a ConfigMap in the agent's namespace. Besides the ApplySet label and
//! annotations it stores the exact member list (`data.inventory`, one JSON object per
//! member), so pruning needs no list calls, and the last status (`data.status`).
//! A list too long to read comfortably (over [`PLAIN_MAX`]) is stored gzipped in
//! `binaryData["inventory.gz"]` instead: a ConfigMap holds at most 1 MiB, which plain
//! lines outgrow near 20,000 members, and gzip packs them ~10× (the names repeat).
//! kubectl reads only the label and annotations, which are the same either way.
//!
//! In: the client and the parent's name/namespace. Out: the recorded members, and
//! writes of the parent that happen only when its content changes.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::encoding::base64url_nopad;
use crate::manifests::ObjectRef;

pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
pub const GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
pub const NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";
pub const FIELD_MANAGER: &str = "hawser";

/// How hawser server-side applies, dry runs included: as [`FIELD_MANAGER`], with
/// strict field validation. kubectl asks for the same, and the API server's own
/// default (`Warn`) would drop an unknown or misspelt field with only a response
/// header to say so: the cluster would silently differ from Git.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).validation_strict()
}

/// The annotation on the inventory parent that stops every write.
pub const SUSPEND_ANNOTATION: &str = "hawser.dev/suspend";
const INVENTORY_KEY: &str = "inventory";
/// The gzipped member list, in `binaryData`, when it is longer than [`PLAIN_MAX`].
const PACKED_KEY: &str = "inventory.gz";
pub const STATUS_KEY: &str = "status";
/// Longest member list kept as plain text (~5,000 members).
pub const PLAIN_MAX: usize = 256 * 1024;
/// What a ConfigMap's data and binaryData may hold together.
const CONFIGMAP_MAX: usize = 1024 * 1024;
/// Longest member list a packed inventory may unpack to: a bound on what a parent
/// (which anyone who may edit it controls) can make the agent allocate.
const UNPACKED_MAX: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("reading inventory parent ConfigMap {namespace}/{name}")]
    Read {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing inventory parent ConfigMap {namespace}/{name}")]
    Write {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "ConfigMap {namespace}/{name} belongs to another tool ({tooling}); refusing to use it as hawser's inventory"
    )]
    ForeignTooling {
        namespace: String,
        name: String,
        tooling: String,
    },
    #[error(
        "ConfigMap {namespace}/{name} carries ApplySet id {found}, expected {expected}; refusing to use it"
    )]
    WrongId {
        namespace: String,
        name: String,
        found: String,
        expected: String,
    },
    #[error("ConfigMap {namespace}/{name}: {reason}")]
    Corrupt {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "ConfigMap {namespace}/{name}: the list of {members} members is {bytes} bytes gzipped, over the 1 MiB a ConfigMap holds; split the objects across agents"
    )]
    TooLarge {
        namespace: String,
        name: String,
        members: usize,
        bytes: usize,
    },
}

/// One managed object as recorded in the parent: enough to find it again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    pub group: String,
    pub version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl From<&ObjectRef> for Member {
    fn from(id: &ObjectRef) -> Self {
        Member {
            group: id.group.clone(),
            version: id.version.clone(),
            kind: id.kind.clone(),
            namespace: id.namespace.clone(),
            name: id.name.clone(),
        }
    }
}

impl Member {
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// Identity without the version: the same object served at another version is
    /// still the same object.
    fn key(&self) -> (&str, &str, Option<&str>, &str) {
        (
            &self.group,
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }
}

/// Where the parent lives and what it is called.
#[derive(Debug, Clone)]
pub struct Parent {
    pub namespace: String,
    pub name: String,
}

impl Parent {
    /// kubectl's ApplySet id: `applyset-` + base64url(sha256("<name>.<ns>.<Kind>.<group>")) + `-v1`.
    pub fn id(&self) -> String {
        applyset_id(&self.name, &self.namespace, "ConfigMap", "")
    }

    /// The label selector that finds every member.
    pub fn selector(&self) -> String {
        format!("{PART_OF}={}", self.id())
    }
}

pub fn applyset_id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{name}.{namespace}.{kind}.{group}").as_bytes());
    format!("applyset-{}-v1", base64url_nopad(&digest))
}

/// A member list, shared rather than copied: the plan, the record of a revision in
/// flight and the inventory as written hold the same list (~150 bytes a member).
pub type Members = Arc<BTreeSet<Member>>;

/// What the parent says: its members and the raw status text, as last written.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub exists: bool,
    pub members: Members,
    pub status: Option<String>,
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Recorded {
    pub fn contains(&self, member: &Member) -> bool {
        self.members.iter().any(|m| m.key() == member.key())
    }

    /// Whether the parent carries the stop button ([`SUSPEND_ANNOTATION`]: "true").
    pub fn suspended(&self) -> bool {
        self.annotations.get(SUSPEND_ANNOTATION).map(String::as_str) == Some("true")
    }
}

/// Reads the parent, verifying that it is hawser's and carries the id kubectl would
/// compute. A missing parent is an empty inventory.
pub async fn read(client: &kube::Client, parent: &Parent) -> Result<Recorded, InventoryError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &parent.namespace);
    let cm = api
        .get_opt(&parent.name)
        .await
        .map_err(|source| InventoryError::Read {
            namespace: parent.namespace.clone(),
            name: parent.name.clone(),
            source,
        })?;
    let Some(cm) = cm else {
        return Ok(Recorded::default());
    };
    let meta = &cm.metadata;
    let annotations = meta.annotations.clone().unwrap_or_default();
    if let Some(tooling) = annotations.get(TOOLING)
        && !tooling.starts_with("hawser/")
    {
        return Err(InventoryError::ForeignTooling {
            namespace: parent.namespace.clone(),
            name: parent.name.clone(),
            tooling: tooling.clone(),
        });
    }
    if let Some(found) = meta.labels.as_ref().and_then(|l| l.get(ID_LABEL))
        && *found != parent.id()
    {
        return Err(InventoryError::WrongId {
            namespace: parent.namespace.clone(),
            name: parent.name.clone(),
            found: found.clone(),
            expected: parent.id(),
        });
    }
    let corrupt = |reason| InventoryError::Corrupt {
        namespace: parent.namespace.clone(),
        name: parent.name.clone(),
        reason,
    };
    let members = match members_text(&cm).map_err(corrupt)? {
        Some((text, field)) => parse_members(&text)
            .map_err(|e| corrupt(format!("{field} is not a valid member list: {e}")))?,
        None => BTreeSet::new(),
    };
    let data = cm.data.unwrap_or_default();
    Ok(Recorded {
        exists: true,
        members: Arc::new(members),
        status: data.get(STATUS_KEY).cloned(),
        annotations: annotations.into_iter().collect(),
    })
}

/// The parent's member list as text, and the field it came from: the packed form
/// when present (a parent written by this hawser), else `data.inventory` (small lists,
/// and every parent an earlier hawser wrote). `None` when the parent has neither.
pub fn members_text(cm: &ConfigMap) -> Result<Option<(String, &'static str)>, String> {
    const PACKED: &str = "binaryData[\"inventory.gz\"]";
    if let Some(packed) = cm.binary_data.as_ref().and_then(|b| b.get(PACKED_KEY)) {
        let mut text = String::new();
        let read = flate2::read::GzDecoder::new(packed.0.as_slice())
            .take(UNPACKED_MAX + 1)
            .read_to_string(&mut text);
        return match read {
            Err(e) => Err(format!("{PACKED} is not gzipped UTF-8 text: {e}")),
            Ok(n) if n as u64 > UNPACKED_MAX => Err(format!(
                "{PACKED} unpacks to more than {UNPACKED_MAX} bytes"
            )),
            Ok(_) => Ok(Some((text, PACKED))),
        };
    }
    Ok(cm
        .data
        .as_ref()
        .and_then(|d| d.get(INVENTORY_KEY))
        .map(|text| (text.clone(), "data.inventory")))
}

fn parse_members(text: &str) -> Result<BTreeSet<Member>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

fn render_members(members: &BTreeSet<Member>) -> String {
    members
        .iter()
        .filter_map(|m| serde_json::to_string(m).ok())
        .map(|line| line + "\n")
        .collect()
}

/// The member list as the parent stores it: plain lines up to [`PLAIN_MAX`] (in
/// `data`), gzipped beyond (in `binaryData`).
enum Stored {
    Plain(String),
    Packed(Vec<u8>),
}

fn store_members(parent: &Parent, members: &BTreeSet<Member>) -> Result<Stored, InventoryError> {
    let text = render_members(members);
    if text.len() <= PLAIN_MAX {
        return Ok(Stored::Plain(text));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let packed = gz
        .write_all(text.as_bytes())
        .and_then(|()| gz.finish())
        .unwrap_or_default();
    // The API server counts binaryData's bytes (not their base64) towards the 1 MiB;
    // the status needs room too.
    let bytes = packed.len();
    if bytes > CONFIGMAP_MAX - 64 * 1024 {
        return Err(InventoryError::TooLarge {
            namespace: parent.namespace.clone(),
            name: parent.name.clone(),
            members: members.len(),
            bytes,
        });
    }
    Ok(Stored::Packed(packed))
}

/// The parent's desired label, annotations and member list for a set of members.
fn parent_object(
    parent: &Parent,
    members: &BTreeSet<Member>,
    status: Option<&str>,
) -> Result<serde_json::Value, InventoryError> {
    let mut kinds: Vec<String> = members
        .iter()
        .map(|m| {
            if m.group.is_empty() {
                m.kind.clone()
            } else {
                format!("{}.{}", m.kind, m.group)
            }
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    let mut namespaces: Vec<&str> = members
        .iter()
        .filter_map(|m| m.namespace.as_deref())
        .filter(|ns| *ns != parent.namespace)
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut data = serde_json::Map::new();
    let mut binary = serde_json::Map::new();
    match store_members(parent, members)? {
        Stored::Plain(text) => {
            data.insert(INVENTORY_KEY.into(), text.into());
        }
        Stored::Packed(bytes) => {
            binary.insert(PACKED_KEY.into(), crate::encoding::base64(&bytes).into());
        }
    }
    if let Some(status) = status {
        data.insert(STATUS_KEY.into(), status.into());
    }
    let mut object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": parent.name,
            "namespace": parent.namespace,
            "labels": { ID_LABEL: parent.id() },
            "annotations": {
                TOOLING: format!("hawser/{}", env!("CARGO_PKG_VERSION")),
                GROUP_KINDS: kinds.join(","),
                NAMESPACES: namespaces.join(","),
            },
        },
        "data": data,
    });
    // Left out when empty: an apply that no longer sends a field hawser owned removes
    // it, so the form not used is deleted from the parent.
    if !binary.is_empty() {
        object["binaryData"] = binary.into();
    }
    Ok(object)
}

/// Writes the parent with exactly `members` (and the status, when given), unless it
/// already says exactly that; `recorded` is updated to what the parent now says.
/// Returns whether a write happened.
pub async fn write(
    client: &kube::Client,
    parent: &Parent,
    recorded: &mut Recorded,
    members: &Members,
    status: Option<&str>,
) -> Result<bool, InventoryError> {
    let status = status
        .map(str::to_string)
        .or_else(|| recorded.status.clone());
    let status = status.as_deref();
    let desired = parent_object(parent, members, status)?;
    let same_members = recorded.exists
        && (Arc::ptr_eq(&recorded.members, members) || recorded.members == *members);
    let same_status = recorded.status.as_deref() == status;
    let same_annotations = desired["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .all(|(k, v)| recorded.annotations.get(k).map(String::as_str) == v.as_str())
        })
        .unwrap_or(false);
    if same_members && same_status && same_annotations {
        return Ok(false);
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &parent.namespace);
    let params = apply_params().force();
    api.patch(&parent.name, &params, &Patch::Apply(&desired))
        .await
        .map_err(|source| InventoryError::Write {
            namespace: parent.namespace.clone(),
            name: parent.name.clone(),
            source,
        })?;
    recorded.exists = true;
    recorded.members = Arc::clone(members);
    recorded.status = status.map(str::to_string);
    if let Some(annotations) = desired["metadata"]["annotations"].as_object() {
        for (key, value) in annotations {
            recorded
                .annotations
                .insert(key.clone(), value.as_str().unwrap_or_default().to_string());
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_matches_kubectl() {
        // Computed independently: printf 'edge-agent.gitops.ConfigMap.' | sha256sum, base64url.
        let parent = Parent {
            namespace: "gitops".into(),
            name: "edge-agent".into(),
        };
        let expected = {
            let d = Sha256::digest(b"edge-agent.gitops.ConfigMap.");
            let std_b64 = std_base64(&d);
            format!(
                "applyset-{}-v1",
                std_b64
                    .trim_end_matches('=')
                    .replace('+', "-")
                    .replace('/', "_")
            )
        };
        assert_eq!(parent.id(), expected);
        assert!(parent.id().starts_with("applyset-") && parent.id().ends_with("-v1"));
        assert_eq!(parent.id().len(), "applyset-".len() + 43 + 3);
    }

    /// A deliberately different base64 implementation (with padding) as an oracle.
    fn std_base64(bytes: &[u8]) -> String {
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        let mut bits = 0u32;
        let mut nbits = 0;
        for b in bytes {
            bits = (bits << 8) | u32::from(*b);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out.push(table[((bits >> nbits) & 63) as usize] as char);
            }
        }
        if nbits > 0 {
            out.push(table[((bits << (6 - nbits)) & 63) as usize] as char);
        }
        while !out.len().is_multiple_of(4) {
            out.push('=');
        }
        out
    }

    #[test]
    fn parent_annotations_are_sorted_and_exclude_own_namespace() {
        let parent = Parent {
            namespace: "gitops".into(),
            name: "hawser".into(),
        };
        let m = |g: &str, k: &str, ns: Option<&str>, n: &str| Member {
            group: g.into(),
            version: "v1".into(),
            kind: k.into(),
            namespace: ns.map(Into::into),
            name: n.into(),
        };
        let members: BTreeSet<Member> = [
            m("apps", "Deployment", Some("shop"), "api"),
            m("", "ConfigMap", Some("gitops"), "a"),
            m("", "ConfigMap", Some("b-ns"), "b"),
            m("", "Namespace", None, "shop"),
        ]
        .into_iter()
        .collect();
        let obj = parent_object(&parent, &members, None).unwrap();
        let ann = &obj["metadata"]["annotations"];
        assert_eq!(ann[GROUP_KINDS], "ConfigMap,Deployment.apps,Namespace");
        assert_eq!(ann[NAMESPACES], "b-ns,shop");
        let text = obj["data"][INVENTORY_KEY].as_str().unwrap();
        assert_eq!(parse_members(text).unwrap(), members);
        assert!(obj.get("binaryData").is_none());
    }

    fn many(n: usize) -> BTreeSet<Member> {
        (0..n)
            .map(|i| Member {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
                namespace: Some(format!("tenant-{}", i % 7)),
                name: format!("service-with-a-long-descriptive-name-{i:06}"),
            })
            .collect()
    }

    #[test]
    fn a_long_member_list_is_packed_and_reads_back() {
        let parent = Parent {
            namespace: "gitops".into(),
            name: "hawser".into(),
        };
        let members = many(30_000);
        assert!(
            render_members(&members).len() > CONFIGMAP_MAX,
            "the test needs > 1 MiB"
        );
        let obj = parent_object(&parent, &members, Some("ok")).unwrap();
        assert!(obj["data"].get(INVENTORY_KEY).is_none(), "not kept twice");
        assert_eq!(obj["data"][STATUS_KEY], "ok");
        let cm: ConfigMap = serde_json::from_value(obj).unwrap();
        let packed = &cm.binary_data.as_ref().unwrap()[PACKED_KEY].0;
        assert!(packed.len() < CONFIGMAP_MAX / 4, "{} bytes", packed.len());
        let (text, field) = members_text(&cm).unwrap().unwrap();
        assert_eq!(field, "binaryData[\"inventory.gz\"]");
        assert_eq!(parse_members(&text).unwrap(), members);
    }

    #[test]
    fn a_packed_list_that_is_not_gzip_or_too_long_is_refused() {
        let mut cm = ConfigMap::default();
        let bad = k8s_openapi::ByteString(b"not gzip".to_vec());
        cm.binary_data = Some([(PACKED_KEY.to_string(), bad)].into_iter().collect());
        let err = members_text(&cm).unwrap_err();
        assert!(
            err.starts_with("binaryData[\"inventory.gz\"] is not gzipped"),
            "{err}"
        );

        // A bomb: 65 MiB of newlines packs into ~64 KB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b'\n'; 1024 * 1024];
        for _ in 0..65 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = k8s_openapi::ByteString(gz.finish().unwrap());
        cm.binary_data = Some([(PACKED_KEY.to_string(), bomb)].into_iter().collect());
        let err = members_text(&cm).unwrap_err();
        assert!(err.contains("unpacks to more than"), "{err}");
    }
}
