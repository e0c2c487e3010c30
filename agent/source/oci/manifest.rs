//! Image manifests, as plain data: parsing the JSON a registry returns, and choosing
//! the layer that holds the files. In: manifest bytes (already checked against their
//! digest). Out: the chosen layer's descriptor and the annotations. What can go wrong:
//! an index instead of a manifest, no layer that fits, a layer whose digest is not
//! sha256 or that is larger than the download limit; each named with the rule.

use std::collections::BTreeMap;

use super::reference::Digest;

/// The manifest media types asked for (`Accept`) and accepted.
pub const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// `Accept` for manifest requests: the manifest types, and the index types so that a
/// multi-platform image is answered (and refused with a clear message) rather than 404.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

pub const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
pub const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
pub const REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";
pub const SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";

/// Largest manifest read; the spec suggests registries accept at least 4 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The layer to extract, with its digest parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

impl Manifest {
    /// Parses a manifest; `content_type` is the response's, used when the body
    /// names no media type (Docker schema 2 always does, OCI may not).
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Self, String> {
        let m: Manifest =
            serde_json::from_slice(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
        let kind = m
            .media_type
            .clone()
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
            .unwrap_or_default();
        if INDEX_TYPES.contains(&kind.as_str()) || m.manifests.is_some() {
            return Err(
                "the reference names an image index (a multi-platform image), not an artifact manifest"
                    .into(),
            );
        }
        if !kind.is_empty() && !MANIFEST_TYPES.contains(&kind.as_str()) {
            return Err(format!("unsupported manifest media type {kind}"));
        }
        Ok(m)
    }

    /// The layer holding the files: the one of `wanted` type when given, else Flux's
    /// content layer, else the only layer when it is a tar (`oras push` of a
    /// directory or an archive). Layers larger than `max_bytes` are refused here,
    /// before any byte of them is downloaded.
    pub fn layer(&self, wanted: Option<&str>, max_bytes: u64) -> Result<Layer, String> {
        let found = match wanted {
            Some(t) => self
                .layers
                .iter()
                .find(|l| l.media_type == t)
                .ok_or_else(|| format!("no layer of media type {t} (--oci-layer-media-type)"))?,
            None => match self.layers.iter().find(|l| l.media_type == FLUX_CONTENT) {
                Some(l) => l,
                None => match self.layers.as_slice() {
                    [only] if is_tar(&only.media_type) => only,
                    [only] => {
                        return Err(format!(
                            "the only layer has media type {:?}, not a tar; name the layer with --oci-layer-media-type",
                            only.media_type
                        ));
                    }
                    [] => return Err("the manifest has no layers".into()),
                    _ => {
                        return Err(format!(
                            "the manifest has {} layers and none is Flux content ({FLUX_CONTENT}); choose one with --oci-layer-media-type",
                            self.layers.len()
                        ));
                    }
                },
            },
        };
        let digest = Digest::parse(&found.digest).ok_or_else(|| {
            format!(
                "layer digest {:?} is not sha256: followed by 64 lowercase hex digits",
                found.digest
            )
        })?;
        if found.size > max_bytes {
            return Err(format!(
                "layer {digest} is {} bytes, over the max-pack-bytes limit of {max_bytes}",
                found.size
            ));
        }
        Ok(Layer {
            digest,
            size: found.size,
            media_type: found.media_type.clone(),
        })
    }

    /// The Git revision the artifact was built from, when annotated.
    pub fn source_revision(&self) -> Option<&str> {
        self.annotations
            .get(REVISION_ANNOTATION)
            .map(String::as_str)
    }
}

/// Tar layers, gzipped or not: the OCI and Docker layer types, Flux's, and the
/// `…tar`, `…tar+gzip` forms other tools write.
fn is_tar(media_type: &str) -> bool {
    media_type.ends_with(".tar")
        || media_type.ends_with("tar+gzip")
        || media_type.ends_with(".tar.gzip")
        || media_type.ends_with(".tar.gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn manifest(layers: &[(&str, u64)]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .enumerate()
            .map(|(i, (t, size))| {
                serde_json::json!({"mediaType": t, "digest": digest(char::from(b'a' + i as u8)), "size": size})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPES[0],
            "config": {"mediaType": FLUX_CONFIG, "digest": digest('0'), "size": 2},
            "layers": layers,
            "annotations": {REVISION_ANNOTATION: "main@sha1:4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
        }))
        .unwrap()
    }

    #[test]
    fn flux_content_is_chosen_among_layers() {
        let m = Manifest::parse(
            &manifest(&[("application/x-other", 5), (FLUX_CONTENT, 10)]),
            None,
        )
        .unwrap();
        let l = m.layer(None, 100).unwrap();
        assert_eq!((l.digest.as_str(), l.size), (digest('b').as_str(), 10));
        assert_eq!(
            m.source_revision(),
            Some("main@sha1:4b825dc642cb6eb9a060e54bf8d69288fbee4904")
        );
        let l = m.layer(Some("application/x-other"), 100).unwrap();
        assert_eq!(l.digest.as_str(), digest('a'));
        let err = m.layer(Some("application/x-none"), 100).unwrap_err();
        assert!(
            err.contains("no layer of media type application/x-none"),
            "{err}"
        );
    }

    #[test]
    fn a_single_tar_layer_is_the_content() {
        for t in [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ] {
            let m = Manifest::parse(&manifest(&[(t, 1)]), None).unwrap();
            assert!(m.layer(None, 100).is_ok(), "{t}");
        }
        let m = Manifest::parse(&manifest(&[("text/yaml", 1)]), None).unwrap();
        assert!(m.layer(None, 100).unwrap_err().contains("not a tar"));
        let m = Manifest::parse(&manifest(&[("a.tar", 1), ("b.tar", 1)]), None).unwrap();
        assert!(m.layer(None, 100).unwrap_err().contains("2 layers"));
    }

    #[test]
    fn oversized_layers_are_refused_before_download() {
        let m = Manifest::parse(&manifest(&[(FLUX_CONTENT, 101)]), None).unwrap();
        let err = m.layer(None, 100).unwrap_err();
        assert!(
            err.contains("101 bytes, over the max-pack-bytes limit of 100"),
            "{err}"
        );
    }

    #[test]
    fn indexes_and_other_types_are_refused() {
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": INDEX_TYPES[0], "manifests": []});
        let err = Manifest::parse(&serde_json::to_vec(&index).unwrap(), None).unwrap_err();
        assert!(err.contains("image index"), "{err}");
        let bare = br#"{"schemaVersion":2,"layers":[]}"#;
        assert!(Manifest::parse(bare, Some(MANIFEST_TYPES[0])).is_ok());
        let err = Manifest::parse(bare, Some("application/json")).unwrap_err();
        assert!(err.contains("unsupported manifest media type"), "{err}");
        let bad = serde_json::json!({"layers": [{"mediaType": FLUX_CONTENT, "digest": "md5:00", "size": 1}]});
        let m = Manifest::parse(&serde_json::to_vec(&bad).unwrap(), None).unwrap();
        assert!(m.layer(None, 10).unwrap_err().contains("is not sha256"));
    }
}
