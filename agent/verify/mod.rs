//! The verify stage's signature half: who made a revision. In: the raw commit (and,
//! with `--verify-tags`, the annotated tag) object bytes exactly as their ids were
//! recomputed from the pack, and the trusted keys of [`Policy`]. Out: the
//! [`Verified`] signers, or a [`VerifyError`] saying the revision is unsigned,
//! signed by an untrusted key, or badly signed. The source calls it before a
//! revision becomes a candidate; the loop calls it again on every cached revision
//! it loads (the cache keeps the objects beside the tree), so trust survives a
//! restart and a key removed from the trusted files stops counting.
//!
//! SSH signatures (`gpg.format=ssh`, sshsig namespace `git`) are checked against
//! `--trusted-keys` (`allowed_signers`: principals, `namespaces`, `valid-after`,
//! `valid-before` at the committer time, as `git verify-commit` does); OpenPGP
//! signatures against `--trusted-gpg-keys` ([`openpgp`]).

pub mod openpgp;
pub mod signature;

#[cfg(test)]
mod fuzz;

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::source::bundle::sign::{Refusal, TrustedKeys};
use crate::source::git::object::{Kind, ObjectId, object_id};
use openpgp::{Keyring, PgpError};
use signature::{Format, Signed};

/// The sshsig namespace git signs in.
pub const GIT_NAMESPACE: &str = "git";
/// Largest `--trusted-gpg-keys` file read.
const MAX_KEYRING_BYTES: u64 = 4 << 20;

/// What must be signed, and by whom. The default requires nothing.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `--verify-commits`: the selected commit must be signed by a trusted key.
    pub commits: bool,
    /// `--verify-tags`: the selected annotated tag must be.
    pub tags: bool,
    /// `--trusted-keys`, the lines that allow namespace `git`.
    pub ssh: Option<TrustedKeys>,
    /// `--trusted-gpg-keys`.
    pub gpg: Option<Keyring>,
}

/// The objects a revision's signatures live in, verified against their ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Objects {
    pub commit: Vec<u8>,
    /// The annotated tag the ref named, with its short name.
    pub tag: Option<(String, Vec<u8>)>,
}

/// Who signed a commit or tag.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signer {
    /// `ssh` or `openpgp`.
    pub kind: String,
    /// `SHA256:…` for SSH keys, the 40-hex key fingerprint for OpenPGP.
    pub fingerprint: String,
    /// The `allowed_signers` principals, or the key's primary user id.
    pub identity: String,
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} key {})",
            self.identity, self.kind, self.fingerprint
        )
    }
}

/// The signers found, for the status and the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verified {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub commit: Option<Signer>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tag: Option<Signer>,
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.commit, &self.tag) {
            (Some(c), Some(t)) => write!(f, "commit signed by {c}, tag signed by {t}"),
            (Some(c), None) => write!(f, "commit signed by {c}"),
            (None, Some(t)) => write!(f, "tag signed by {t}"),
            (None, None) => f.write_str("signatures not checked"),
        }
    }
}

/// Why a revision is refused. One line: the object, then the reason.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("{object} is unsigned")]
    Unsigned { object: String },
    #[error("{object} is signed by an untrusted key `{key}`{detail}")]
    Untrusted {
        object: String,
        key: String,
        detail: String,
    },
    #[error("{object} has a bad signature: {reason}")]
    Bad { object: String, reason: String },
    #[error("{object}: {reason}")]
    Object { object: String, reason: String },
}

/// Why the trusted keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("trusted gpg keys {}: {message}", path.display())]
    Gpg {
        path: std::path::PathBuf,
        message: String,
    },
}

/// Reads `--trusted-gpg-keys`.
pub fn load_keyring(path: &Path) -> Result<Keyring, KeysError> {
    use std::io::Read;
    let err = |message: String| KeysError::Gpg {
        path: path.to_path_buf(),
        message,
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEYRING_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| err(e.to_string()))?;
    if text.len() as u64 > MAX_KEYRING_BYTES {
        return Err(err(format!("larger than {MAX_KEYRING_BYTES} bytes")));
    }
    Keyring::parse(&text).map_err(|e| err(e.to_string()))
}

impl Policy {
    /// Whether anything is checked at all.
    pub fn enabled(&self) -> bool {
        self.commits || self.tags
    }

    /// Checks the objects of `commit` as the policy demands. The bytes are first
    /// proven to be the objects named (commit id, and the tag pointing at it).
    pub fn check(&self, commit: ObjectId, objects: &Objects) -> Result<Verified, VerifyError> {
        let started = Instant::now();
        let object = format!("commit {commit}");
        let wrong = |object: &str, reason: &str| VerifyError::Object {
            object: object.to_string(),
            reason: reason.to_string(),
        };
        if object_id(Kind::Commit, &objects.commit).ok() != Some(commit) {
            return Err(wrong(
                &object,
                "the stored commit object does not hash to its id",
            ));
        }
        let mut verified = Verified::default();
        if self.commits {
            let signed =
                signature::split_commit(&objects.commit).ok_or_else(|| VerifyError::Unsigned {
                    object: object.clone(),
                })?;
            verified.commit = Some(self.check_one(&object, &signed)?);
        }
        if self.tags {
            let Some((name, raw)) = &objects.tag else {
                return Err(VerifyError::Unsigned {
                    object: "the ref (not an annotated tag)".into(),
                });
            };
            let object = format!("tag {name}");
            let points_at = signature::header(raw, b"object ")
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(ObjectId::from_hex);
            if points_at != Some(commit) || signature::header(raw, b"type ") != Some(b"commit") {
                return Err(wrong(&object, "does not point at the commit"));
            }
            if signature::header(raw, b"tag ") != Some(name.as_bytes()) {
                return Err(wrong(&object, "names another tag inside"));
            }
            let signed = signature::split_tag(raw).ok_or_else(|| VerifyError::Unsigned {
                object: object.clone(),
            })?;
            verified.tag = Some(self.check_one(&object, &signed)?);
        }
        tracing::debug!(%commit, took_us = started.elapsed().as_micros() as u64, "signatures verified");
        Ok(verified)
    }

    fn check_one(&self, object: &str, signed: &Signed) -> Result<Signer, VerifyError> {
        let untrusted = |key: String, detail: &str| VerifyError::Untrusted {
            object: object.to_string(),
            key,
            detail: detail.to_string(),
        };
        let bad = |reason: String| VerifyError::Bad {
            object: object.to_string(),
            reason,
        };
        match signed.format {
            Format::Ssh => {
                let empty;
                let keys = match &self.ssh {
                    Some(k) => k,
                    None => {
                        empty = TrustedKeys::parse_for("", GIT_NAMESPACE)
                            .map_err(|e| bad(e.to_string()))?;
                        &empty
                    }
                };
                let time = signed
                    .time
                    .ok_or_else(|| bad("no committer or tagger time".into()))?;
                match keys.check(&signed.signature, signed.payload.as_slice(), time) {
                    Ok(s) => Ok(Signer {
                        kind: "ssh".into(),
                        fingerprint: s.fingerprint,
                        identity: s.principals,
                    }),
                    Err(Refusal::Untrusted(key)) => {
                        let fp = key.rsplit(' ').next().unwrap_or(&key).to_string();
                        Err(untrusted(fp, ""))
                    }
                    Err(Refusal::NotValidAt(fp)) => {
                        Err(untrusted(fp, " (not valid at the signature's time)"))
                    }
                    Err(Refusal::Namespace(ns)) => {
                        Err(bad(format!("made for namespace {ns:?}, not \"git\"")))
                    }
                    Err(Refusal::Mismatch(fp)) => Err(bad(format!("does not match (key {fp})"))),
                    Err(Refusal::Malformed(m) | Refusal::Read(m)) => Err(bad(m)),
                }
            }
            Format::OpenPgp => {
                let empty = Keyring::default();
                let keys = self.gpg.as_ref().unwrap_or(&empty);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match keys.verify(&signed.payload, &signed.signature, now) {
                    Ok(s) => Ok(Signer {
                        kind: "openpgp".into(),
                        fingerprint: s.fingerprint,
                        identity: s.user_id,
                    }),
                    Err(PgpError::Untrusted { issuer }) => Err(untrusted(issuer, "")),
                    Err(PgpError::Revoked { fingerprint }) => {
                        Err(untrusted(fingerprint, " (revoked)"))
                    }
                    Err(PgpError::Expired { fingerprint }) => {
                        Err(untrusted(fingerprint, " (expired)"))
                    }
                    Err(PgpError::NotSigning { fingerprint }) => {
                        Err(untrusted(fingerprint, " (not a signing key)"))
                    }
                    Err(e @ (PgpError::Bad { .. } | PgpError::Malformed(_))) => {
                        Err(bad(e.to_string()))
                    }
                }
            }
            Format::Other => Err(bad(
                "signature format not supported (x509 or unknown)".into()
            )),
        }
    }
}
