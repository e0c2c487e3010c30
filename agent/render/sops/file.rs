//! One SOPS file, decrypted: its documents parsed in file order, the `sops`
//! metadata read, the data key opened with an age identity, and every value
//! decrypted and checked against the MAC ([`tree`]).
//!
//! In: the file's text, its form, the identities and a parsing budget. Out: each
//! ciphertext with its plaintext. What can go wrong is a reason string (the caller
//! names the file): not YAML/JSON/dotenv, no metadata, key types hawser does not use
//! (PGP, cloud KMS, Vault, Shamir groups: refused, named), no identity matching the
//! recipients (named), a value that does not decrypt or a MAC that does not match.
//! Pure: no file system beyond [`Keys::read`], so the fuzz crate compiles it as is.

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;

use super::age::{self, AgeError, Identity};
use super::env;
use super::tree::{self, Node, Plaintexts, Rules};

/// The age identities that may open data keys.
#[derive(Debug)]
pub struct Keys {
    pub(super) identities: Vec<Identity>,
}

impl Keys {
    pub fn parse(text: &str) -> Result<Self, AgeError> {
        Ok(Self {
            identities: age::parse_identities(text)?,
        })
    }

    /// Reads a key file; the one-line error names it.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading --sops-age-key-file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("--sops-age-key-file {}: {e}", path.display()))
    }
}

/// How much of a file the parser may take (the manifests stage's limits, as far
/// as one file goes).
#[derive(Debug, Clone)]
pub struct Budget {
    pub max_file_bytes: u64,
    pub max_depth: usize,
    pub max_nodes: usize,
    pub max_documents: usize,
    pub max_aliases: usize,
}

/// The file forms sops writes that hawser reads: manifests in YAML and JSON, and
/// `secretGenerator` sources in dotenv and binary (a JSON envelope), see [`source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
}

impl Format {
    /// The form of a manifest file, by its name.
    pub fn of(file: &str) -> Format {
        if file.ends_with(".json") {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// Decrypts a whole SOPS file: every document (YAML may hold several; the metadata
/// of the first one counts, as in sops) under one data key and one MAC.
pub fn decrypt_text(
    text: &str,
    format: Format,
    keys: &Keys,
    limits: &Budget,
) -> Result<Plaintexts, String> {
    let branches = parse(text, format, limits)?;
    let metadata = branches
        .first()
        .and_then(|b| b.get("sops"))
        .ok_or("no sops metadata in the first document")?;
    let meta = Metadata::read(metadata)?;
    let key = meta.data_key(keys)?;
    tree::decrypt(&branches, &meta.rules, &key, &meta.mac, &meta.lastmodified)
}

pub(super) fn parse(text: &str, format: Format, limits: &Budget) -> Result<Vec<Node>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() as u64 > limits.max_file_bytes {
        return Err("the file is over the size limit".into());
    }
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let node = serde::Deserialize::deserialize(&mut de)
                .and_then(|n: Node| de.end().map(|()| n))
                .map_err(|e| format!("not JSON: {e}"))?;
            Ok(vec![node])
        }
        Format::Yaml => {
            let options = serde_saphyr::options! {
                budget: serde_saphyr::budget! {
                    max_events: text.len().saturating_mul(2).saturating_add(16),
                    max_depth: limits.max_depth,
                    max_nodes: limits.max_nodes,
                    max_documents: limits.max_documents,
                    max_aliases: limits.max_aliases,
                    max_recorded_anchor_events: limits.max_aliases,
                },
                duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
                // sops reads YAML 1.2 (go-yaml v3): `yes` is a string, and a plain
                // leaf's MAC bytes depend on that.
                strict_booleans: true,
                with_snippet: false,
            };
            let docs: Vec<Node> = serde_saphyr::from_str_multiple_with_options(text, options)
                .map_err(|e| format!("not YAML: {}", one_line(&e.to_string())))?;
            Ok(docs.into_iter().filter(|d| *d != Node::Null).collect())
        }
        Format::Dotenv => Ok(vec![env::parse(text)?]),
    }
}

fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// What the `sops` key says, as far as decryption needs it.
struct Metadata {
    /// `(recipient, armored age file)` per age key.
    age: Vec<(String, String)>,
    /// Other key types present, named for the error when no age key opens.
    others: Vec<&'static str>,
    rules: Rules,
    mac: String,
    lastmodified: String,
}

const OTHER_KEYS: &[(&str, &str)] = &[
    ("pgp", "PGP"),
    ("kms", "AWS KMS"),
    ("gcp_kms", "GCP KMS"),
    ("azure_kv", "Azure Key Vault"),
    ("hc_vault", "HashiCorp Vault"),
    ("hckms", "Huawei Cloud KMS"),
];

impl Metadata {
    fn read(sops: &Node) -> Result<Self, String> {
        let text = |key: &str| sops.get(key).and_then(Node::as_str).map(str::to_string);
        for key in ["encrypted_comment_regex", "unencrypted_comment_regex"] {
            if text(key).is_some_and(|v| !v.is_empty()) {
                return Err(format!("sops.{key} is not supported"));
            }
        }
        let groups = match sops.get("key_groups") {
            Some(Node::Seq(groups)) if groups.len() > 1 => {
                return Err(format!(
                    "encrypted with {} Shamir key groups; hawser decrypts only files with one group of age keys",
                    groups.len()
                ));
            }
            Some(Node::Seq(groups)) => groups.iter().collect::<Vec<_>>(),
            _ => vec![sops],
        };
        let mut age = Vec::new();
        let mut others = Vec::new();
        for group in groups {
            if let Some(Node::Seq(entries)) = group.get("age") {
                for entry in entries {
                    let recipient = entry.get("recipient").and_then(Node::as_str);
                    let enc = entry.get("enc").and_then(Node::as_str);
                    if let (Some(r), Some(e)) = (recipient, enc) {
                        age.push((r.to_string(), e.to_string()));
                    }
                }
            }
            for (key, name) in OTHER_KEYS {
                if matches!(group.get(key), Some(Node::Seq(items)) if !items.is_empty()) {
                    others.push(*name);
                }
            }
        }
        let regex = |key: &str| -> Result<Option<Regex>, String> {
            text(key)
                .filter(|v| !v.is_empty())
                .map(|v| Regex::new(&v).map_err(|_| format!("sops.{key} is not a valid regex")))
                .transpose()
        };
        let rules = Rules {
            unencrypted_suffix: text("unencrypted_suffix").filter(|v| !v.is_empty()),
            encrypted_suffix: text("encrypted_suffix").filter(|v| !v.is_empty()),
            unencrypted_regex: regex("unencrypted_regex")?,
            encrypted_regex: regex("encrypted_regex")?,
            // dotenv metadata is all strings.
            mac_only_encrypted: match sops.get("mac_only_encrypted") {
                Some(Node::Bool(b)) => *b,
                Some(Node::Str(s)) => s == "true",
                _ => false,
            },
        };
        Ok(Self {
            age,
            others,
            rules,
            mac: text("mac").unwrap_or_default(),
            lastmodified: text("lastmodified").ok_or("sops.lastmodified is missing")?,
        })
    }

    /// The 32-byte data key, from the first age recipient an identity opens.
    fn data_key(&self, keys: &Keys) -> Result<[u8; 32], String> {
        let mine: HashMap<String, ()> = keys
            .identities
            .iter()
            .map(|id| (id.recipient(), ()))
            .collect();
        // Recipients listed for one of our identities first; then every stanza, as a
        // file's recipient list may be stale.
        let mut order: Vec<&(String, String)> = self.age.iter().collect();
        order.sort_by_key(|(r, _)| !mine.contains_key(r));
        let mut last_error = None;
        for (_, enc) in order {
            match age::decrypt_armored(enc, &keys.identities) {
                Ok(key) => {
                    return <[u8; 32]>::try_from(key)
                        .map_err(|_| "the age-wrapped data key is not 32 bytes".to_string());
                }
                Err(AgeError::NoMatch) => {}
                Err(e) => last_error = Some(e),
            }
        }
        if let Some(e) = last_error {
            return Err(format!("the data key does not decrypt: {e}"));
        }
        let recipients: Vec<&str> = self.age.iter().map(|(r, _)| r.as_str()).collect();
        let mut reason = if recipients.is_empty() {
            "encrypted for no age recipient".to_string()
        } else {
            format!(
                "no identity in --sops-age-key-file matches its age recipients {}",
                recipients.join(", ")
            )
        };
        if !self.others.is_empty() {
            reason.push_str(&format!(
                "; its {} keys are not used by hawser (age only)",
                self.others.join(", ")
            ));
        }
        Err(reason)
    }
}
