//! Bundle (and status report) authenticity: detached OpenSSH signatures
//! (`PROTOCOL.sshsig`, namespace `hawser-bundle`, or `hawser-status` for reports)
//! checked against keys in OpenSSH's `allowed_signers` format (its lines are read
//! by `allowed_signers`). In: the trusted-keys file (read once at startup), a bundle
//! file and its `.sig`. Out: the [`BundleSigner`] whose key made the signature. The
//! bundle is hashed as a stream, so large bundles are never held in memory. Ed25519 and RSA keys are verified (RSA
//! came with OpenPGP commit verification, which needs the `rsa` crate anyway; the
//! `ssh-key` ECDSA feature would add 21 crates). Git commit and tag signatures
//! (namespace `git`) use the same file and checks through [`TrustedKeys::check`].
//!
//! Signing (`bundle create --sign-key`) runs `ssh-keygen -Y sign`, as operators do:
//! it handles passphrases, agents and hardware keys that a library cannot.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256, Sha512};
use signature::Verifier;
use ssh_key::{HashAlg, PublicKey, SshSig};

use super::BundleError;
use super::allowed_signers::{
    Options, Validity, is_key_type, parse_options, pattern_list_matches, tokenize,
};

/// The sshsig namespace of hawser bundle signatures.
pub const NAMESPACE: &str = "hawser-bundle";
/// Largest `.sig` file read (an armored ed25519 signature is about 300 bytes).
pub const MAX_SIG_BYTES: u64 = 64 << 10;
/// Largest `allowed_signers` file read.
const MAX_SIGNERS_BYTES: u64 = 1 << 20;

/// What went wrong with the trusted keys or a signature. One line each.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("trusted keys {path}: {message}")]
    Signers { path: PathBuf, message: String },
    #[error("trusted keys line {line}: {message}")]
    SignersLine { line: usize, message: String },
    #[error("signature {path} is missing")]
    Missing { path: PathBuf },
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("signature {path} is not an armored ssh signature: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("signature {path} is for namespace {found:?}, not {expected:?}")]
    Namespace {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("signature {path} was made by {key}, which is not a trusted key for {namespace}")]
    Untrusted {
        path: PathBuf,
        key: String,
        namespace: &'static str,
    },
    #[error("signature {path} does not match the {signed} (changed or incomplete?)")]
    Mismatch { path: PathBuf, signed: &'static str },
    #[error("signing with ssh-keygen: {0}")]
    Sign(String),
}

/// One usable line of `allowed_signers`.
#[derive(Clone, Debug)]
struct Trusted {
    principals: String,
    key: PublicKey,
    validity: Validity,
}

/// Why [`TrustedKeys::check`] refused a signature; the key is named by its
/// `SHA256:` fingerprint.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed(String),
    Namespace(String),
    Untrusted(String),
    /// The key is trusted, but not at the time given (outside its validity window).
    NotValidAt(String),
    Mismatch(String),
    Read(String),
}

/// The keys trusted to sign in one namespace (bundles: `hawser-bundle`; status
/// reports: `hawser-status`): the `allowed_signers` lines whose namespaces allow it.
#[derive(Clone, Debug)]
pub struct TrustedKeys {
    keys: Vec<Trusted>,
    namespace: &'static str,
}

/// Who signed a bundle.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BundleSigner {
    /// The principals of the matching `allowed_signers` line.
    pub principals: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

impl std::fmt::Display for BundleSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.principals, self.fingerprint)
    }
}

impl TrustedKeys {
    /// Reads an `allowed_signers` file for bundles; at least one key must be usable.
    pub fn load(path: &Path) -> Result<Self, SignError> {
        Self::load_for(path, NAMESPACE)
    }

    /// Reads an `allowed_signers` file for signatures in `namespace`.
    pub fn load_for(path: &Path, namespace: &'static str) -> Result<Self, SignError> {
        let err = |message: String| SignError::Signers {
            path: path.to_path_buf(),
            message,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_SIGNERS_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| err(e.to_string()))?;
        if text.len() as u64 > MAX_SIGNERS_BYTES {
            return Err(err(format!("larger than {MAX_SIGNERS_BYTES} bytes")));
        }
        let keys = Self::parse_for(&text, namespace).map_err(|e| err(e.to_string()))?;
        if keys.keys.is_empty() {
            return Err(err(format!(
                "no ed25519 or rsa key is allowed for namespace {namespace}"
            )));
        }
        Ok(keys)
    }

    /// Parses `allowed_signers` text: `principals [options] keytype base64 [comment]`.
    /// Options other than `namespaces="…"`, `valid-after="…"` and `valid-before="…"`
    /// (certificate authorities) are refused rather than ignored, so no restriction
    /// is silently lost.
    /// Lines with key types this build cannot verify are skipped with a warning.
    pub fn parse(text: &str) -> Result<Self, SignError> {
        Self::parse_for(text, NAMESPACE)
    }

    /// [`TrustedKeys::parse`] for signatures in `namespace`.
    pub fn parse_for(text: &str, namespace: &'static str) -> Result<Self, SignError> {
        let mut keys = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let bad = |message: String| SignError::SignersLine { line, message };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let tokens = tokenize(trimmed).map_err(|m| bad(m.into()))?;
            let mut it = tokens.into_iter();
            let principals = it.next().ok_or_else(|| bad("no principals".into()))?;
            let mut next = it.next().ok_or_else(|| bad("no key".into()))?;
            let mut options = Options::default();
            if !is_key_type(&next) {
                options = parse_options(&next).map_err(bad)?;
                next = it.next().ok_or_else(|| bad("no key".into()))?;
            }
            let b64 = it.next().ok_or_else(|| bad("no key data".into()))?;
            if let Some(ns) = &options.namespaces
                && !pattern_list_matches(ns, namespace)
            {
                continue;
            }
            match PublicKey::from_openssh(&format!("{next} {b64}")) {
                Ok(key)
                    if matches!(
                        key.algorithm(),
                        ssh_key::Algorithm::Ed25519 | ssh_key::Algorithm::Rsa { .. }
                    ) =>
                {
                    keys.push(Trusted {
                        principals,
                        key,
                        validity: options.validity,
                    });
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(
                        line,
                        key_type = %next,
                        "trusted keys: skipping a key hawser cannot verify (ed25519 and rsa only)"
                    );
                }
            }
        }
        Ok(Self { keys, namespace })
    }

    /// Checks the armored signature `sig_text` (read from `sig_path`) over `data`,
    /// with validity windows taken at the current time.
    pub fn verify(
        &self,
        sig_path: &Path,
        sig_text: &[u8],
        data: impl Read,
    ) -> Result<BundleSigner, SignError> {
        let path = || sig_path.to_path_buf();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.check(sig_text, data, now).map_err(|r| match r {
            Refusal::Malformed(message) => SignError::Malformed {
                path: path(),
                message,
            },
            Refusal::Namespace(found) => SignError::Namespace {
                path: path(),
                found,
                expected: self.namespace,
            },
            Refusal::Untrusted(key) | Refusal::NotValidAt(key) => SignError::Untrusted {
                path: path(),
                key,
                namespace: self.namespace,
            },
            Refusal::Read(message) => SignError::Read {
                path: sig_path.with_extension(""),
                message,
            },
            Refusal::Mismatch(_) => SignError::Mismatch {
                path: path(),
                signed: if self.namespace == NAMESPACE {
                    "bundle"
                } else {
                    "signed file"
                },
            },
        })
    }

    /// Checks the armored signature `sig_text` over `data` as made at `time` (unix
    /// seconds: now for bundles, the committer time for git objects, as
    /// `git verify-commit` passes it to `ssh-keygen -Overify-time`).
    pub fn check(
        &self,
        sig_text: &[u8],
        data: impl Read,
        time: i64,
    ) -> Result<BundleSigner, Refusal> {
        let sig = SshSig::from_pem(sig_text).map_err(|e| Refusal::Malformed(e.to_string()))?;
        if sig.namespace() != self.namespace {
            return Err(Refusal::Namespace(
                sig.namespace().chars().take(100).collect(),
            ));
        }
        let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
        let mut matching = self
            .keys
            .iter()
            .filter(|t| t.key.key_data() == sig.public_key())
            .peekable();
        if matching.peek().is_none() {
            return Err(Refusal::Untrusted(format!(
                "{} key {fingerprint}",
                sig.public_key().algorithm()
            )));
        }
        let trusted = matching
            .find(|t| t.validity.allows(time))
            .ok_or_else(|| Refusal::NotValidAt(fingerprint.clone()))?;
        let hash = hash(sig.hash_alg(), data).map_err(|e| Refusal::Read(e.to_string()))?;
        let signed = signed_data(sig.namespace(), sig.reserved(), sig.hash_alg(), &hash);
        trusted
            .key
            .key_data()
            .verify(&signed, sig.signature())
            .map_err(|_| Refusal::Mismatch(fingerprint))?;
        Ok(BundleSigner {
            principals: trusted.principals.clone(),
            fingerprint: trusted.key.fingerprint(HashAlg::Sha256).to_string(),
        })
    }
}

/// The blob an sshsig signature covers (`PROTOCOL.sshsig`, "Signed Data").
fn signed_data(namespace: &str, reserved: &[u8], alg: HashAlg, hash: &[u8]) -> Vec<u8> {
    let mut out = b"SSHSIG".to_vec();
    for field in [
        namespace.as_bytes(),
        reserved,
        alg.as_str().as_bytes(),
        hash,
    ] {
        // Every field is far below 4 GiB: a namespace, a hash name, a digest.
        out.extend((field.len() as u32).to_be_bytes());
        out.extend(field);
    }
    out
}

fn hash(alg: HashAlg, mut data: impl Read) -> io::Result<Vec<u8>> {
    fn run<D: Digest + io::Write>(mut d: D, data: &mut impl Read) -> io::Result<Vec<u8>> {
        io::copy(data, &mut d)?;
        Ok(d.finalize().to_vec())
    }
    match alg {
        HashAlg::Sha256 => run(Sha256::new(), &mut data),
        HashAlg::Sha512 => run(Sha512::new(), &mut data),
        // `HashAlg` is non-exhaustive; sshsig defines only the two above.
        _ => Err(io::Error::other("unsupported signature hash")),
    }
}

/// Runs `ssh-keygen -Y sign -f KEY -n hawser-bundle FILE`, which writes `FILE.sig`.
pub fn sign_with_ssh_keygen(file: &Path, key: &Path) -> Result<PathBuf, SignError> {
    sign_in_namespace(file, key, NAMESPACE)
}

/// Runs `ssh-keygen -Y sign -f KEY -n NAMESPACE FILE`, which writes `FILE.sig`.
/// Its terminal stays attached so it can ask for a passphrase.
pub fn sign_in_namespace(file: &Path, key: &Path, namespace: &str) -> Result<PathBuf, SignError> {
    let sig = sig_path(file);
    // ssh-keygen asks before overwriting a signature; there must be none to ask about.
    match std::fs::remove_file(&sig) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(SignError::Sign(format!("removing {}: {e}", sig.display())));
        }
        _ => {}
    }
    let status = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(file)
        .status()
        .map_err(|e| SignError::Sign(format!("running ssh-keygen: {e}")))?;
    if !status.success() {
        return Err(SignError::Sign(format!(
            "ssh-keygen -Y sign with {} failed ({status})",
            key.display()
        )));
    }
    Ok(sig)
}

/// Where the detached signature of `bundle` lives: `<bundle>.sig`.
pub fn sig_path(bundle: &Path) -> PathBuf {
    let mut s = bundle.as_os_str().to_os_string();
    s.push(".sig");
    PathBuf::from(s)
}

/// Reads `<bundle>.sig`: `None` when it does not exist (yet).
pub fn read_sig(bundle: &Path) -> Result<Option<(PathBuf, Vec<u8>)>, BundleError> {
    let path = sig_path(bundle);
    match std::fs::File::open(&path) {
        Ok(f) => {
            let mut text = Vec::new();
            f.take(MAX_SIG_BYTES + 1)
                .read_to_end(&mut text)
                .map_err(|e| BundleError::io(&path, e))?;
            if text.len() as u64 > MAX_SIG_BYTES {
                return Err(BundleError::io(&path, "larger than a signature can be"));
            }
            Ok(Some((path, text)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BundleError::io(&path, e)),
    }
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
