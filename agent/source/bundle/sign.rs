//! Bundle (and status report) authenticity: detached OpenSSH signatures
//! (`PROTOCOL.sshsig`, namespace `hawser-bundle`, or `hawser-status` for reports) checked against keys in OpenSSH's `allowed_signers` format. In:
//! the trusted-keys file (read once at startup), a bundle file and its `.sig`. Out:
//! the [`BundleSigner`] whose key made the signature. The bundle is hashed as a stream, so
//! large bundles are never held in memory. Ed25519 and RSA keys are verified (RSA
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

/// `valid-after` / `valid-before` of an `allowed_signers` line, unix seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Validity {
    after: Option<i64>,
    before: Option<i64>,
}

impl Validity {
    /// ssh-keygen's rule: valid from `after` through `before`, both inclusive.
    fn allows(&self, time: i64) -> bool {
        self.after.is_none_or(|a| time >= a) && self.before.is_none_or(|b| time <= b)
    }
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

fn is_key_type(token: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| token.starts_with(p))
}

/// Splits on whitespace outside double quotes; quotes are kept inside tokens except
/// around a whole token (quoted principals).
fn tokenize(line: &str) -> Result<Vec<String>, &'static str> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote");
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    if let Some(first) = tokens.first_mut()
        && first.len() >= 2
        && first.starts_with('"')
        && first.ends_with('"')
    {
        *first = first[1..first.len() - 1].to_string();
    }
    Ok(tokens)
}

/// The options of an `allowed_signers` line that hawser honours.
#[derive(Debug, Default)]
struct Options {
    namespaces: Option<String>,
    validity: Validity,
}

/// The `namespaces` list and validity window of an options string; any other
/// option is refused.
fn parse_options(opts: &str) -> Result<Options, String> {
    let mut out = Options::default();
    let mut rest = opts;
    while !rest.is_empty() {
        let (name, value, after) = match rest.find([',', '=']) {
            Some(i) if rest.as_bytes()[i] == b'=' => {
                let v = rest[i + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| "option value must be quoted".to_string())?;
                let end = v
                    .find('"')
                    .ok_or_else(|| "unterminated option value".to_string())?;
                let after = &v[end + 1..];
                let after = match after.strip_prefix(',') {
                    Some(a) => a,
                    None if after.is_empty() => after,
                    None => return Err("junk after an option value".into()),
                };
                (&rest[..i], Some(&v[..end]), after)
            }
            Some(i) => (&rest[..i], None, &rest[i + 1..]),
            None => (rest, None, ""),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("namespaces", Some(v)) => out.namespaces = Some(v.to_string()),
            ("valid-after", Some(v)) => out.validity.after = Some(parse_time(v)?),
            ("valid-before", Some(v)) => out.validity.before = Some(parse_time(v)?),
            (other, _) => return Err(format!("option {other:?} is not supported by hawser")),
        }
        rest = after;
    }
    Ok(out)
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, optionally with a `Z`. ssh-keygen
/// reads times without `Z` in the local zone; hawser reads every time as UTC (the
/// zone its container runs in), so write `Z` to mean the same to both.
fn parse_time(v: &str) -> Result<i64, String> {
    let bad = || format!("time {v:?} is not YYYYMMDD[HHMM[SS]][Z]");
    let digits = v.strip_suffix(['Z', 'z']).unwrap_or(v);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map_or(Ok(0), |s| s.parse::<i64>());
    let field = |r| num(r).map_err(|_| bad());
    let (y, m, d) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hh, mm, ss) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// OpenSSH's `match_pattern_list`: comma-separated globs (`*`, `?`), `!` negates and
/// a matching negation wins.
fn pattern_list_matches(list: &str, s: &str) -> bool {
    let mut matched = false;
    for pat in list.split(',').map(str::trim) {
        match pat.strip_prefix('!') {
            Some(neg) if glob(neg.as_bytes(), s.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(pat.as_bytes(), s.as_bytes()),
        }
    }
    matched
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative matching with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
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
