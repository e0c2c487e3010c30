//! SOPS decryption with age identities, in memory, after Kustomize (and, for the
//! files a `secretGenerator` reads, before it: [`source`]).
//!
//! In: the rendered documents, the revision's directory (to read each encrypted
//! file as it was written: its MAC depends on the file's key order) and the
//! identities of `--sops-age-key-file`. Out: the same documents with every
//! `ENC[…]` value replaced by its plaintext, each such leaf recorded in the
//! document's [`Sealed`] (so printers mask it), and the top-level `sops` key removed. Kustomize's own changes to the
//! document (namespace, labels, prefixes, patches of unencrypted fields) stay.
//!
//! What can go wrong is a [`RenderError`] naming the file: encrypted but no key
//! given, no identity matching its recipients (they are named), a value that does
//! not decrypt or a MAC that does not match (tampering), or key types hawser does not
//! use (PGP, cloud KMS, Vault, Shamir groups). One such file rejects the revision.
//! Plaintext never appears in an error, a log line or on disk.
//!
//! Unlike Flux, which checks the MAC on the document after Kustomize changed it (so
//! a namespace added by Kustomize breaks it unless `mac_only_encrypted`), the MAC is
//! checked on the file as committed: tampering is still caught, and Kustomize may
//! change unencrypted fields.

pub mod age;
mod env;
mod file;
#[cfg(test)]
mod fuzz;
pub mod source;
pub mod tree;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::manifests::sealed::{Sealed, escape};
use crate::manifests::{Body, Document, ParseLimits};

use super::RenderError;
pub use file::{Budget, Format, Keys, decrypt_text};
use tree::Plaintexts;

impl Default for Budget {
    fn default() -> Self {
        Budget::from(&ParseLimits::default())
    }
}

impl From<&ParseLimits> for Budget {
    fn from(limits: &ParseLimits) -> Self {
        Budget {
            max_file_bytes: limits.max_file_bytes,
            max_depth: limits.max_depth,
            max_nodes: limits.max_nodes,
            max_documents: limits.max_documents,
            max_aliases: limits.max_alias_expansion,
        }
    }
}

/// How the render stage treats SOPS-encrypted documents.
#[derive(Debug, Clone, Default)]
pub struct Decryption {
    /// `None`: no key file given, so an encrypted document is an error.
    pub keys: Option<Arc<Keys>>,
}

/// Whether a document carries SOPS metadata.
pub fn is_encrypted(value: &Value) -> bool {
    value.get("sops").is_some_and(Value::is_object)
}

/// Decrypts every document carrying SOPS metadata, file by file, and records in
/// each document which leaves now hold plaintext.
pub fn decrypt_documents(
    root: &Path,
    docs: &mut [Document],
    decryption: &Decryption,
    limits: &ParseLimits,
) -> Result<(), RenderError> {
    let mut files: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, doc) in docs.iter().enumerate() {
        // Most documents are not encrypted: only those that name the key are parsed.
        if doc.body.may_contain("\"sops\":") && is_encrypted(&doc.tree()) {
            files.entry(doc.location.file.clone()).or_default().push(i);
        }
    }
    for (file, indices) in files {
        let Some(keys) = &decryption.keys else {
            return Err(no_key(&file));
        };
        let text = read(root, &file, limits)?;
        let plain = decrypt_text(&text, Format::of(&file), keys, &limits.into())
            .map_err(|reason| RenderError::file(&file, reason))?;
        for i in indices {
            let doc = &mut docs[i];
            let mut value = doc.tree();
            if let Value::Object(map) = &mut value {
                map.remove("sops");
            }
            fill(&mut value, &plain, &mut String::new(), &mut doc.sealed);
            doc.body = Body::new(&value);
        }
    }
    Ok(())
}

/// Decrypts the documents of one file read before Kustomize (a patch, as Flux
/// decrypts `patches[].path` files) when they carry SOPS metadata: values filled in,
/// the `sops` key removed. `text` is the file as committed. Returns the plaintext
/// leaves, so that render can seal them wherever Kustomize merges them.
pub fn decrypt_values(
    file: &str,
    text: &str,
    values: &mut [Value],
    decryption: &Decryption,
    limits: &ParseLimits,
) -> Result<Vec<Value>, RenderError> {
    if !values.iter().any(is_encrypted) {
        return Ok(Vec::new());
    }
    let Some(keys) = &decryption.keys else {
        return Err(no_key(file));
    };
    let plain = decrypt_text(text, Format::of(file), keys, &limits.into())
        .map_err(|reason| RenderError::file(file, reason))?;
    let mut leaves = Vec::new();
    for value in values {
        if let Value::Object(map) = value {
            map.remove("sops");
        }
        let mut sealed = Sealed::default();
        fill(value, &plain, &mut String::new(), &mut sealed);
        leaves.extend(sealed.pointers().filter_map(|p| value.pointer(p)).cloned());
    }
    Ok(leaves)
}

fn no_key(file: &str) -> RenderError {
    RenderError::file(
        file,
        "encrypted with SOPS, but no --sops-age-key-file was given",
    )
}

/// Replaces each ciphertext leaf by its plaintext and seals its pointer (`at`).
fn fill(value: &mut Value, plain: &Plaintexts, at: &mut String, sealed: &mut Sealed) {
    let len = at.len();
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                at.push('/');
                at.push_str(&escape(k));
                fill(v, plain, at, sealed);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                at.push_str(&format!("/{i}"));
                fill(v, plain, at, sealed);
                at.truncate(len);
            }
        }
        Value::String(s) => {
            if let Some(p) = plain.get(s.as_str()) {
                *value = p.to_value();
                sealed.insert(at);
            }
        }
        _ => {}
    }
}

fn read(root: &Path, file: &str, limits: &ParseLimits) -> Result<String, RenderError> {
    let path = root.join(file);
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| RenderError::file(file, format!("reading: {e}")))?;
    if !meta.is_file() || meta.len() > limits.max_file_bytes {
        return Err(RenderError::file(
            file,
            "not a regular file within the size limit",
        ));
    }
    std::fs::read_to_string(&path).map_err(|e| RenderError::file(file, format!("reading: {e}")))
}
