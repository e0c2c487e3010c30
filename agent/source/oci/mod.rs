//! The OCI source: an artifact in a registry, `oci://REGISTRY/REPOSITORY` with
//! `--ref TAG` or `--ref sha256:DIGEST`, as `flux push artifact` and `oras push` make
//! them.
//!
//! In: a [`SourceSpec`] whose URL is `oci://…`. Out: revisions `TAG@sha256:<manifest
//! digest>` (or `sha256:…` for a pinned digest) from [`OciSource::resolve`], and the
//! chosen layer's files from [`OciSource::fetch`]. A poll of a known tag is one `HEAD`
//! compared by `Docker-Content-Digest` (or ETag); a pinned digest is never asked for
//! again. A fetch reads the manifest (checked against its digest), verifies the cosign
//! signature when a key is configured, streams the layer blob to an unlinked file
//! through sha256, and only then extracts it with the tarball source's entry checks.
//! What can go wrong: network and HTTP errors as for other sources; an [`OciError`]
//! for what the registry or artifact got wrong (digest mismatch, no usable layer,
//! unsigned or signed by another key, token flow failures); entry and size refusals
//! from the archive checks. On any error nothing reaches the cache.

mod auth;
pub mod cosign;
pub mod manifest;
pub mod reference;
mod registry;

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cosign::CosignKey;
use manifest::Manifest;
use reference::{Digest, Pin, Reference};
use registry::Registry;

use super::tarball::{temp_file, untar};
use super::{Revision, Snapshot, SourceError, SourceSpec};

/// OCI-only settings, validated by the command line.
#[derive(Clone, Debug, Default)]
pub struct OciOptions {
    /// Registries (`host` or `host:port`) that may be spoken to over plain HTTP.
    /// Loopback registries always may.
    pub insecure_registries: Vec<String>,
    /// A Docker `config.json` to take credentials from.
    pub docker_config: Option<PathBuf>,
    /// Accept an artifact only with a cosign signature by this key.
    pub cosign_key: Option<CosignKey>,
    /// Extract the layer of this media type instead of choosing one.
    pub layer_media_type: Option<String>,
}

/// Why an artifact was refused; the source error adds the `oci://` location.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("manifest {digest}: {message}")]
    Manifest { digest: String, message: String },
    #[error("artifact {digest} is not signed: no cosign signature at tag {tag}")]
    Unsigned { digest: String, tag: String },
    #[error("artifact {digest}: no signature at tag {tag} verifies with the cosign key {key}")]
    BadSignature {
        digest: String,
        tag: String,
        key: String,
    },
    #[error("authentication: {0}")]
    Auth(String),
    #[error("redirect refused: {0}")]
    Redirect(String),
    #[error("revision {0} does not name an artifact digest")]
    Revision(String),
}

#[derive(Default)]
struct State {
    /// What the tag pointed at on the last poll, and the ETag then.
    digest: Option<Digest>,
    etag: Option<String>,
    /// The media type of that manifest: the only one a poll asks for.
    media_type: Option<String>,
    /// The manifest of `digest`, read on the first poll or when the tag moved.
    manifest: Option<(Digest, Manifest)>,
    /// Revision → the Git commit its `org.opencontainers.image.revision` names.
    commits: HashMap<String, String>,
}

pub struct OciSource {
    reference: Reference,
    shown: String,
    registry: Registry,
    options: OciOptions,
    limits: super::FetchLimits,
    state: Mutex<State>,
}

impl OciSource {
    pub fn new(spec: SourceSpec) -> Result<Self, SourceError> {
        let SourceSpec {
            url,
            kind: _,
            reference,
            path,
            sha256,
            sha256_from_url,
            mut http,
            limits,
            bundle: _,
            oci: options,
            verify: _,
        } = spec;
        if path.is_some() || sha256.is_some() || sha256_from_url {
            return Err(SourceError::Config(
                "--path, --sha256 and --sha256-from-url do not apply to oci:// sources (pin a digest with --ref sha256:…)"
                    .into(),
            ));
        }
        let reference = Reference::parse(&url, &reference).map_err(SourceError::Config)?;
        let credentials = match (http.auth.take(), &options.docker_config) {
            (Some(auth), _) => Some(auth),
            (None, Some(file)) => auth::from_docker_config(file, &reference.registry)?,
            (None, None) => None,
        };
        let host = reference.host();
        let loopback = host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        let insecure = loopback
            || options.insecure_registries.iter().any(|r| {
                r.eq_ignore_ascii_case(&reference.registry) || r.eq_ignore_ascii_case(host)
            });
        // Redirects are followed by the registry client, which applies the origin rules.
        http.max_redirects = 0;
        let client = super::http::Client::new(&http)?;
        Ok(Self {
            shown: reference.display(),
            registry: Registry::new(
                client,
                &reference.registry,
                &reference.repository,
                credentials,
                insecure,
            ),
            reference,
            options,
            limits,
            state: Mutex::new(State::default()),
        })
    }

    pub fn display_url(&self) -> &str {
        &self.shown
    }

    pub fn bytes_received(&self) -> u64 {
        self.registry.bytes_received()
    }

    /// The Git commit the artifact of `revision` was built from, when its manifest
    /// (read in this process) said so.
    pub fn commit_of(&self, revision: &Revision) -> Option<String> {
        self.state
            .lock()
            .ok()?
            .commits
            .get(revision.as_str())
            .cloned()
    }

    /// The revision the reference names now. A pinned digest costs nothing; a known
    /// tag costs one `HEAD`; the first poll, or a moved tag, reads the manifest.
    pub fn resolve(&self) -> Result<Revision, SourceError> {
        let tag = match &self.reference.pin {
            Pin::Digest(d) => return Ok(Revision::oci(&self.reference.pin, d)),
            Pin::Tag(tag) => tag.clone(),
        };
        let mut state = self.lock()?;
        if let Some(known) = state.digest.clone() {
            let accept = state
                .media_type
                .clone()
                .unwrap_or_else(|| manifest::ACCEPT.to_string());
            // A 404 to the narrow Accept may be a tag that now names another kind of
            // manifest: the GET below, with every type, tells.
            let (digest, etag) = match self.registry.head_manifest(&tag, &accept) {
                Err(SourceError::Http { status: 404, .. }) => (None, None),
                other => other?,
            };
            let unchanged = match (&digest, &etag, &state.etag) {
                (Some(d), _, _) => *d == known,
                (None, Some(now), Some(before)) => now == before,
                _ => false,
            };
            if unchanged {
                tracing::debug!(source = %self.shown, %tag, digest = %known, "tag unchanged");
                return Ok(Revision::oci(&self.reference.pin, &known));
            }
            state.etag = etag;
        }
        let fetched = self.registry.get_manifest(&tag, None)?;
        let manifest = self.parse_manifest(&fetched)?;
        let revision = Revision::oci(&self.reference.pin, &fetched.digest);
        self.remember(&mut state, &revision, &manifest);
        state.media_type = manifest.media_type.clone().or_else(|| {
            fetched
                .content_type
                .as_deref()
                .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        });
        state.digest = Some(fetched.digest.clone());
        state.manifest = Some((fetched.digest, manifest));
        Ok(revision)
    }

    /// Verifies and extracts the artifact `revision` names into the empty `into`.
    pub fn fetch(&self, revision: &Revision, into: &Path) -> Result<Snapshot, SourceError> {
        let digest = reference::revision_digest(revision.as_str())
            .ok_or_else(|| self.error(OciError::Revision(revision.to_string())))?;
        let kept = self
            .lock()?
            .manifest
            .clone()
            .filter(|(d, _)| *d == digest)
            .map(|(_, m)| m);
        let manifest = match kept {
            Some(m) => m,
            None => {
                let fetched = self.registry.get_manifest(digest.as_str(), Some(&digest))?;
                self.parse_manifest(&fetched)?
            }
        };
        if let Some(key) = &self.options.cosign_key {
            self.verify_signature(&digest, key)?;
        }
        let layer = manifest
            .layer(
                self.options.layer_media_type.as_deref(),
                self.limits.max_pack_bytes,
            )
            .map_err(|message| {
                self.error(OciError::Manifest {
                    digest: digest.to_string(),
                    message,
                })
            })?;
        let mut file = temp_file()?;
        self.registry.get_blob(
            &layer.digest,
            layer.size.min(self.limits.max_pack_bytes),
            "layer size (as the manifest gives it, within max-pack-bytes)",
            &mut file,
        )?;
        let archive_err = |message: String| SourceError::Archive {
            url: self.shown.clone(),
            message,
        };
        file.seek(SeekFrom::Start(0))
            .map_err(|e| archive_err(e.to_string()))?;
        let stream = untar::open(file, self.limits.max_total_bytes)
            .map_err(|e| archive_err(e.to_string()))?;
        let written = untar::extract(stream, into, &self.limits).map_err(|e| match e {
            untar::UntarError::Unsafe { path, reason } => SourceError::UnsafeEntry {
                url: self.shown.clone(),
                path,
                reason,
            },
            untar::UntarError::Invalid(message) => archive_err(message),
            untar::UntarError::Source(e) => e,
        })?;
        self.remember(&mut *self.lock()?, revision, &manifest);
        tracing::info!(source = %self.shown, %revision, layer = %layer.digest, media_type = %layer.media_type, "artifact verified and extracted");
        Ok(Snapshot::new(
            revision.clone(),
            into.to_path_buf(),
            written.files,
            written.bytes,
            self.shown.clone(),
        ))
    }

    /// Accepts `digest` only if a payload at its `.sig` tag names it and carries a
    /// signature by `key`.
    fn verify_signature(&self, digest: &Digest, key: &CosignKey) -> Result<(), SourceError> {
        let tag = cosign::signature_tag(digest);
        let unsigned = || {
            self.error(OciError::Unsigned {
                digest: digest.to_string(),
                tag: tag.clone(),
            })
        };
        let fetched = match self.registry.get_manifest(&tag, None) {
            Ok(f) => f,
            Err(SourceError::Http { status: 404, .. }) => return Err(unsigned()),
            Err(e) => return Err(e),
        };
        let manifest = self.parse_manifest(&fetched)?;
        let candidates = cosign::signed_layers(&manifest.layers);
        if candidates.is_empty() {
            return Err(unsigned());
        }
        for (layer, signature) in candidates {
            let Some(payload_digest) = Digest::parse(&layer.digest) else {
                continue;
            };
            let mut payload = Vec::new();
            self.registry.get_blob(
                &payload_digest,
                cosign::MAX_PAYLOAD_BYTES,
                "cosign payload size",
                &mut payload,
            )?;
            if cosign::payload_names(&payload, digest) && key.verifies(&payload, signature) {
                tracing::info!(source = %self.shown, %digest, key = %key.path(), "cosign signature verified");
                return Ok(());
            }
        }
        Err(self.error(OciError::BadSignature {
            digest: digest.to_string(),
            tag,
            key: key.path().to_string(),
        }))
    }

    fn parse_manifest(&self, fetched: &registry::Fetched) -> Result<Manifest, SourceError> {
        Manifest::parse(&fetched.body, fetched.content_type.as_deref()).map_err(|message| {
            self.error(OciError::Manifest {
                digest: fetched.digest.to_string(),
                message,
            })
        })
    }

    fn remember(&self, state: &mut State, revision: &Revision, manifest: &Manifest) {
        if let Some(commit) = manifest
            .source_revision()
            .and_then(reference::annotated_commit)
        {
            state.commits.insert(revision.to_string(), commit);
        }
    }

    fn error(&self, source: OciError) -> SourceError {
        SourceError::Oci {
            location: self.shown.clone(),
            source,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, SourceError> {
        self.state
            .lock()
            .map_err(|_| SourceError::Config("oci source state poisoned".into()))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with optional padding (docker config `auth`, cosign signatures,
/// PEM bodies); `None` for anything else.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for input in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"\xff\x00\x10",
        ] {
            let encoded = crate::encoding::base64(input);
            assert_eq!(base64_decode(&encoded).as_deref(), Some(input));
        }
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Z"), None);
    }
}
