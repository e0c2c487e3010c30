//! The bodies of the fuzz targets. `tests/replay.rs` runs the seed corpus through
//! them as a plain test (`cargo test --manifest-path fuzz/Cargo.toml`), which needs
//! no nightly toolchain.

// hawser's pure Git decoding modules, compiled from their own files. They sit at the
// crate root (a path attribute inside an inline module would go through a directory
// that does not exist in a checkout) and refer to each other with `super::`.
#[path = "../../agent/source/git/delta.rs"]
pub mod delta;
#[path = "../../agent/source/git/error.rs"]
mod error;
#[path = "../../agent/source/git/object.rs"]
pub mod object;
#[path = "../../agent/source/git/pack.rs"]
pub mod pack;
#[path = "../../agent/source/git/pktline.rs"]
pub mod pktline;

pub use error::GitError;

// Kustomize's patch appliers, pure functions over JSON values.
#[path = "../../agent/render/patch/mod.rs"]
pub mod patch;

// The kustomization parser (schema and refusals) over JSON values, with the two
// error constructors it uses from render; the rest of render is not built here.
#[path = "../../agent/render/kustomization.rs"]
pub mod kustomization;

// SOPS file decryption (parse, metadata, age, the value walk and its MAC) and the
// generator sources, with the base64 they use; and `${var}` expansion. All pure.
#[path = "../../agent/render/sops/age.rs"]
pub mod age;
#[path = "../../agent/encoding.rs"]
#[allow(dead_code)]
mod encoding;
#[path = "../../agent/render/sops/env.rs"]
mod env;
#[path = "../../agent/render/envsubst.rs"]
pub mod envsubst;
#[path = "../../agent/render/sops/file.rs"]
pub mod file;
#[path = "../../agent/render/sops/source.rs"]
pub mod source;
#[path = "../../agent/render/sops/tree.rs"]
pub mod tree;

/// render's `RenderError`, as far as the kustomization parser builds one.
#[derive(Debug)]
pub enum RenderError {
    Field {
        file: String,
        field: String,
        reason: String,
    },
    File {
        file: String,
        reason: String,
    },
}

impl RenderError {
    pub(crate) fn field(file: &str, field: &str, reason: String) -> Self {
        Self::Field {
            file: file.into(),
            field: field.into(),
            reason,
        }
    }

    pub(crate) fn file(file: &str, reason: impl Into<String>) -> Self {
        Self::File {
            file: file.into(),
            reason: reason.into(),
        }
    }
}

/// The modules under the names the agent gives them.
pub mod git {
    pub use super::{delta, object, pack, pktline};
}

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use git::object::Kind;
use git::pack::Pack;
use git::pktline::{PktReader, SideBand};
use sha1_checked::{Digest, Sha1};

/// Packets until an error or the end, then the same bytes as a side-band stream.
pub fn pktline(data: &[u8]) {
    let mut r = PktReader::new(data);
    for _ in 0..10_000 {
        if r.read().is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = SideBand::new(PktReader::new(data)).read_to_end(&mut out);
    assert!(out.len() <= data.len());
}

/// `data` is a pack without its trailer; the trailer is appended so the fuzzer gets
/// past the checksum to the entries. Every object that opens must read back.
pub fn pack_entry(data: &[u8]) {
    let mut bytes = data.to_vec();
    let sum = Sha1::digest(&bytes);
    bytes.extend_from_slice(&sum);
    if let Ok(mut pack) = Pack::open(Cursor::new(bytes), 1 << 20) {
        let ids: Vec<_> = pack.ids().collect();
        for id in ids {
            let kind = pack.kind(&id).unwrap_or(Kind::Blob);
            let data = pack.read(&id, kind).map(|d| d.len());
            assert!(data.is_ok(), "indexed object {id} does not read back");
        }
    }
}

/// The first two bytes give the base length; then the base, then the delta.
pub fn delta(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (base, delta) = data[2..].split_at(n);
    if let Ok(out) = git::delta::apply(base, delta, 1 << 20) {
        assert_eq!(Some(out.len() as u64), git::delta::result_size(delta).ok());
    }
}

/// The input is a JSON `[target, patch]`. A patch either applies or fails leaving the
/// target as it was; applying the same patch to the same target gives the same result.
pub fn strategic_merge(data: &[u8]) {
    let Ok(serde_json::Value::Array(pair)) = serde_json::from_slice(data) else {
        return;
    };
    let [target, patch] = pair.as_slice() else {
        return;
    };
    let mut once = target.clone();
    match patch::strategic_merge(&mut once, patch) {
        Ok(_) => {
            let mut twice = target.clone();
            assert!(patch::strategic_merge(&mut twice, patch).is_ok());
            assert_eq!(once, twice, "the merge is not deterministic");
        }
        Err(_) => assert_eq!(&once, target, "a failed merge changed the target"),
    }
}

/// The input is a JSON `[target, [operation, ...]]`; a failing patch leaves the target
/// untouched.
pub fn json6902(data: &[u8]) {
    let Ok(serde_json::Value::Array(pair)) = serde_json::from_slice(data) else {
        return;
    };
    let [target, serde_json::Value::Array(ops)] = pair.as_slice() else {
        return;
    };
    let mut doc = target.clone();
    if patch::json6902(&mut doc, ops).is_err() {
        assert_eq!(&doc, target, "a failed patch changed the target");
    }
}

/// The input is a kustomization as JSON. It parses, or fails with an error that is
/// one line and names the file (never a panic).
pub fn kustomization(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Err(e) = kustomization::Kustomization::parse(value, "kustomization.yaml") {
        let (file, reason) = match &e {
            RenderError::Field { file, reason, .. } | RenderError::File { file, reason } => {
                (file, reason)
            }
        };
        assert_eq!(file, "kustomization.yaml");
        assert!(!reason.contains('\n'), "a two-line error: {reason:?}");
    }
}

/// The age identity the `sops` seeds were encrypted for by the real sops
/// (`fuzz/sops-seeds`). A test key, public on purpose: it guards nothing.
pub const SOPS_TEST_KEY: &str = include_str!("../sops-test-key.txt");

/// What the agent's default limits allow, scaled down so each input stays fast.
impl Default for file::Budget {
    fn default() -> Self {
        file::Budget {
            max_file_bytes: 1 << 20,
            max_depth: 64,
            max_nodes: 50_000,
            max_documents: 100,
            max_aliases: 10_000,
        }
    }
}

/// The first byte picks the form (YAML, JSON, dotenv file; dotenv or binary
/// generator source), the rest is the file, decrypted with [`SOPS_TEST_KEY`]. It
/// decrypts or fails in one line, never a panic; and once it decrypts, a ciphertext
/// altered in one place never decrypts again: tampering is refused.
pub fn sops(data: &[u8]) {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    static KEYS: std::sync::OnceLock<file::Keys> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| file::Keys::parse(SOPS_TEST_KEY).expect("the test key parses"));
    let budget = file::Budget::default();
    let format = match form % 5 {
        0 => file::Format::Yaml,
        1 => file::Format::Json,
        2 => file::Format::Dotenv,
        n => {
            let source = if n == 3 {
                source::SourceFormat::Dotenv
            } else {
                source::SourceFormat::Binary
            };
            if let Err(reason) = source::decrypt_source(rest, source, Some(keys), &budget) {
                assert!(!reason.contains('\n'), "a two-line error: {reason:?}");
            }
            return;
        }
    };
    let plain = match file::decrypt_text(text, format, keys, &budget) {
        Ok(plain) => plain,
        Err(reason) => {
            assert!(!reason.contains('\n'), "a two-line error: {reason:?}");
            return;
        }
    };
    let mut ciphertexts: Vec<&String> = plain.keys().collect();
    ciphertexts.sort();
    for ciphertext in ciphertexts.into_iter().take(4) {
        let Some(altered) = tamper(ciphertext) else {
            continue;
        };
        let text = text.replace(ciphertext.as_str(), &altered);
        if let Ok(again) = file::decrypt_text(&text, format, keys, &budget) {
            assert!(
                !again.contains_key(&altered),
                "an altered ciphertext decrypted"
            );
        }
    }
}

/// `ENC[AES256_GCM,data:…]` with the first base64 digit of its data changed.
fn tamper(ciphertext: &str) -> Option<String> {
    let at = ciphertext.find("data:")? + "data:".len();
    let digit = *ciphertext.as_bytes().get(at)?;
    if !digit.is_ascii_alphanumeric() {
        return None;
    }
    let other = if digit == b'A' { 'B' } else { 'A' };
    let mut out = ciphertext.to_string();
    out.replace_range(at..at + 1, &other.to_string());
    Some(out)
}

/// The value every variable holds, after its own text: never to be seen in an error.
const MARK: &str = "\u{7f}secret\u{7f}";

/// The input is `name=value` lines, an empty line, then the text. Expansion never
/// panics; a failure is one line and quotes no value; text without `$` comes back
/// as it is; and strict mode only refuses more: where it expands, lax mode gives the
/// same text.
pub fn envsubst(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (head, text) = input.split_once("\n\n").unwrap_or(("", input));
    let vars: BTreeMap<String, String> = head
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), format!("{v}{MARK}")))
        .collect();
    let lax = envsubst::eval(text, &vars, false);
    match &lax {
        Ok(out) if !text.contains('$') => assert_eq!(out, text),
        Ok(_) => {}
        Err(reason) => {
            assert!(!reason.contains('\n'), "a two-line error: {reason:?}");
            assert!(
                !reason.contains(MARK),
                "an error quotes a value: {reason:?}"
            );
        }
    }
    match envsubst::eval(text, &vars, true) {
        Ok(strict) => assert_eq!(lax.as_ref().ok(), Some(&strict), "strict and lax differ"),
        Err(reason) => {
            assert!(!reason.contains('\n'), "a two-line error: {reason:?}");
            assert!(
                !reason.contains(MARK),
                "an error quotes a value: {reason:?}"
            );
        }
    }
}
