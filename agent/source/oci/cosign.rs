//! Cosign key-based signatures, as plain data. In: the PEM public key from
//! `--verify-cosign-key` (ECDSA P-256, as `cosign generate-key-pair` writes it), the
//! signature manifest found at tag `sha256-<hex>.sig`, and its payload blobs. Out:
//! whether one of the signatures is by that key over a payload naming the artifact's
//! digest. Checked: the ECDSA signature over the simple-signing payload and the
//! payload's `critical.image.docker-manifest-digest`. Not checked (no transparency
//! log, no certificates): Rekor inclusion, keyless (Fulcio) identities, timestamps.
//! ECDSA comes from `ring`, already linked for TLS.

use std::path::Path;

use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

use super::manifest::Descriptor;
use super::reference::Digest;

pub const PAYLOAD_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Largest payload blob read: a simple-signing payload is a few hundred bytes.
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 10;

/// DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A trusted cosign public key.
#[derive(Clone, PartialEq, Eq)]
pub struct CosignKey {
    point: Vec<u8>,
    path: String,
}

impl std::fmt::Debug for CosignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CosignKey({})", self.path)
    }
}

impl CosignKey {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading cosign key {}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(pem: &str, path: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("cosign key {path}: {why}");
        let body = pem
            .split("-----BEGIN PUBLIC KEY-----")
            .nth(1)
            .and_then(|rest| rest.split("-----END PUBLIC KEY-----").next())
            .ok_or_else(|| {
                bad("no PEM PUBLIC KEY block (want cosign.pub from cosign generate-key-pair)")
            })?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = super::base64_decode(&b64).ok_or_else(|| bad("PEM body is not base64"))?;
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .filter(|p| p.len() == 65 && p[0] == 4)
            .ok_or_else(|| {
                bad("not an ECDSA P-256 public key (the only kind cosign key pairs use)")
            })?;
        Ok(Self {
            point: point.to_vec(),
            path: path.to_string(),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether `signature` (base64 of an ASN.1 DER ECDSA signature) is this key's over
    /// `payload`.
    pub fn verifies(&self, payload: &[u8], signature_b64: &str) -> bool {
        let Some(sig) = super::base64_decode(signature_b64.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(payload, &sig)
            .is_ok()
    }
}

/// The tag cosign stores the signatures of `digest` under.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The payload layers of a signature manifest that carry a signature, with it.
pub fn signed_layers(layers: &[Descriptor]) -> Vec<(&Descriptor, &str)> {
    layers
        .iter()
        .filter(|l| l.media_type == PAYLOAD_TYPE)
        .filter_map(|l| {
            l.annotations
                .get(SIGNATURE_ANNOTATION)
                .map(|s| (l, s.as_str()))
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(serde::Deserialize)]
struct Critical {
    image: Image,
}

#[derive(serde::Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Whether a simple-signing payload names `digest`: a signature over another
/// artifact's payload, copied to this tag, must not count.
pub fn payload_names(payload: &[u8], digest: &Digest) -> bool {
    serde_json::from_slice::<Payload>(payload)
        .is_ok_and(|p| p.critical.image.docker_manifest_digest == digest.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key and a signature made with openssl (`ecparam -name prime256v1 -genkey`,
    // `ec -pubout`, `dgst -sha256 -sign`) over PAYLOAD.
    const PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHEfwt8lxVlborsAWEPNJR3tNClG2
7CGHtXeq5kWvskifkrgzq0WxvbLiPD4QHs2Bzpdn/fK6d+h6XAS1MTvJ0A==
-----END PUBLIC KEY-----
";
    const OTHER: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWwdCOgBA3HVoDux9tmnAhBrXlTqT
HUzRwGEjVmc6Zh4KtvexRSjz9SypBGL1J8MDD1lAzqphGasUTcGA3Jl2tw==
-----END PUBLIC KEY-----
";
    const PAYLOAD: &str = r#"{"critical":{"identity":{"docker-reference":"127.0.0.1/app"},"image":{"docker-manifest-digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},"type":"cosign container image signature"},"optional":null}"#;
    const SIG: &str = "MEQCIBx0seRRcMVWk8tBi1UCxfGyVZw4JwToGgukg8nPx4L8AiAKnU8XBG8w4Jrba6zUnf0Elhc1abn00TtrjnNto7qtsQ==";

    #[test]
    fn signatures_verify_against_their_key_only() {
        let key = CosignKey::parse(PUB, "cosign.pub").unwrap();
        assert!(key.verifies(PAYLOAD.as_bytes(), SIG));
        assert!(!key.verifies(b"{}", SIG));
        assert!(!key.verifies(PAYLOAD.as_bytes(), "not base64!"));
        let other = CosignKey::parse(OTHER, "other.pub").unwrap();
        assert!(!other.verifies(PAYLOAD.as_bytes(), SIG));
    }

    #[test]
    fn payloads_must_name_the_digest() {
        let d = Digest::parse(
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        assert!(payload_names(PAYLOAD.as_bytes(), &d));
        assert!(!payload_names(PAYLOAD.as_bytes(), &Digest::of(b"x")));
        assert!(!payload_names(b"[]", &d));
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
    }

    #[test]
    fn keys_that_are_not_p256_are_refused() {
        let err = CosignKey::parse("ssh-ed25519 AAAA", "k").unwrap_err();
        assert!(err.contains("no PEM PUBLIC KEY block"), "{err}");
        // An Ed25519 SPKI (openssl genpkey -algorithm ed25519 | pkey -pubout).
        let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAeZvmORn6x2XZFe10uDJTeFY9UvAcc1ocNWJoBmrkXV8=\n-----END PUBLIC KEY-----\n";
        let err = CosignKey::parse(ed, "k").unwrap_err();
        assert!(err.contains("not an ECDSA P-256 public key"), "{err}");
    }
}
