//! A SOPS file as sops itself walks it: an order-preserving tree, the leaves
//! decrypted with AES-256-GCM, and the MAC recomputed over them.
//!
//! In: the text of a YAML or JSON file as it sits in the revision, and the data key.
//! Out: every ciphertext's plaintext, keyed by the ciphertext (each is unique, its IV
//! being random), so the rendered documents can be filled in wherever kustomize put
//! them. What can go wrong is a reason string: a value that does not decrypt, a MAC
//! that does not match. Reasons never quote a value, encrypted or not.
//!
//! The rules (sops `sops.go` `Tree.Decrypt`, `aes/cipher.go`): leaves are visited in
//! file order; a leaf's additional data is its path of mapping keys, each followed by
//! `:` (list items add nothing); whether a leaf is encrypted follows the
//! `unencrypted_suffix`, `encrypted_suffix`, `unencrypted_regex`, `encrypted_regex`
//! rules in that order; the MAC is SHA-512 over every leaf's plaintext bytes (only the
//! encrypted ones under `mac_only_encrypted`, after a fixed prefix), nulls and
//! comments left out, written as upper-case hex and stored encrypted with
//! `lastmodified` as its additional data. Order matters, which is why this tree is
//! parsed here and not taken from the rendered (key-sorted) documents.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use regex::Regex;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha512};

use crate::encoding::base64_decode;

/// sops's `MACOnlyEncryptedInitialization`: hashed first under `mac_only_encrypted`,
/// so the two modes never share a MAC.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// One node of a file, keys in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Node, D::Error> {
        Node::deserialize(de)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or(Node::UInt(v), Node::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some((key, value)) = map.next_entry::<Node, Node>()? {
            let key = match key {
                Node::Str(s) => s,
                Node::Int(i) => i.to_string(),
                Node::UInt(u) => u.to_string(),
                Node::Bool(b) => b.to_string(),
                Node::Float(f) => f.to_string(),
                _ => return Err(serde::de::Error::custom("a mapping key is not a scalar")),
            };
            items.push((key, value));
        }
        Ok(Node::Map(items))
    }
}

/// The encryption rules from the metadata that pick which leaves are encrypted.
#[derive(Debug, Default)]
pub struct Rules {
    pub unencrypted_suffix: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_regex: Option<Regex>,
    pub encrypted_regex: Option<Regex>,
    pub mac_only_encrypted: bool,
}

impl Rules {
    /// sops's `shouldBeEncrypted`, without the comment rules (refused earlier).
    fn encrypted(&self, path: &[String]) -> bool {
        let mut encrypted = true;
        if let Some(suffix) = &self.unencrypted_suffix
            && path.iter().any(|k| k.ends_with(suffix.as_str()))
        {
            encrypted = false;
        }
        if let Some(suffix) = &self.encrypted_suffix {
            encrypted = path.iter().any(|k| k.ends_with(suffix.as_str()));
        }
        if let Some(re) = &self.unencrypted_regex
            && path.iter().any(|k| re.is_match(k))
        {
            encrypted = false;
        }
        if let Some(re) = &self.encrypted_regex {
            encrypted = path.iter().any(|k| re.is_match(k));
        }
        encrypted
    }
}

/// What decrypting a file yields: each ciphertext with its plaintext.
pub type Plaintexts = HashMap<String, Plain>;

/// Decrypts every encrypted leaf of `branches` (the file's documents, the `sops`
/// key removed) and checks the MAC stored in `mac` against them.
pub fn decrypt(
    branches: &[Node],
    rules: &Rules,
    key: &[u8; 32],
    mac: &str,
    lastmodified: &str,
) -> Result<Plaintexts, String> {
    let mut walk = Walk {
        rules,
        key,
        hash: Sha512::new(),
        out: HashMap::new(),
        path: Vec::new(),
    };
    if rules.mac_only_encrypted {
        walk.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    for branch in branches {
        walk.node(branch)?;
    }
    let computed: String = walk
        .hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    if mac.is_empty() {
        return Err("the file has no MAC (sops.mac); refusing unauthenticated values".into());
    }
    let stored = match decrypt_value(mac, key, lastmodified) {
        Ok(Plain::Str(s)) => s,
        _ => {
            return Err(
                "the MAC does not decrypt: the file was altered or its lastmodified changed".into(),
            );
        }
    };
    // Both sides are public once decrypted; comparing in constant time costs nothing.
    let same = stored.len() == computed.len()
        && stored
            .bytes()
            .zip(computed.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err("MAC mismatch: a value was altered, added or removed after encryption".into());
    }
    Ok(walk.out)
}

struct Walk<'a> {
    rules: &'a Rules,
    key: &'a [u8; 32],
    hash: Sha512,
    out: Plaintexts,
    path: Vec<String>,
}

impl Walk<'_> {
    fn node(&mut self, node: &Node) -> Result<(), String> {
        match node {
            Node::Null => Ok(()),
            Node::Map(items) => {
                for (k, v) in items {
                    if self.path.is_empty() && k == "sops" {
                        continue;
                    }
                    self.path.push(k.clone());
                    let r = self.node(v);
                    self.path.pop();
                    r?;
                }
                Ok(())
            }
            Node::Seq(items) => items.iter().try_for_each(|item| self.node(item)),
            leaf => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, leaf: &Node) -> Result<(), String> {
        let encrypted = self.rules.encrypted(&self.path);
        if encrypted {
            let Node::Str(text) = leaf else {
                return Err(format!(
                    "{}: expected an encrypted value, found a plain {}",
                    self.shown_path(),
                    kind(leaf)
                ));
            };
            let aad = format!("{}:", self.path.join(":"));
            let plain = if text.is_empty() {
                Plain::Str(String::new())
            } else {
                decrypt_value(text, self.key, &aad)
                    .map_err(|reason| format!("{}: {reason}", self.shown_path()))?
            };
            if let Some(bytes) = plain.mac_bytes() {
                self.hash.update(bytes);
            }
            self.out.insert(text.clone(), plain);
        } else if !self.rules.mac_only_encrypted {
            self.hash.update(mac_bytes(leaf));
        }
        Ok(())
    }

    fn shown_path(&self) -> String {
        self.path.join(".")
    }
}

fn kind(node: &Node) -> &'static str {
    match node {
        Node::Bool(_) => "boolean",
        Node::Int(_) | Node::UInt(_) => "integer",
        Node::Float(_) => "number",
        _ => "value",
    }
}

/// sops's `ToBytes` for a plain leaf.
fn mac_bytes(leaf: &Node) -> Vec<u8> {
    match leaf {
        Node::Str(s) => s.as_bytes().to_vec(),
        Node::Int(i) => i.to_string().into_bytes(),
        Node::UInt(u) => u.to_string().into_bytes(),
        Node::Float(f) => go_float(*f).into_bytes(),
        Node::Bool(b) => if *b { "True" } else { "False" }.as_bytes().to_vec(),
        Node::Null | Node::Seq(_) | Node::Map(_) => Vec::new(),
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: Rust's shortest round-trip digits,
/// which never use an exponent either; only the non-finite spellings differ.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        f.to_string()
    }
}

/// A decrypted leaf, typed as its `type:` says.
#[derive(Clone)]
pub enum Plain {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Bytes(Vec<u8>),
    Comment,
}

impl Plain {
    fn mac_bytes(&self) -> Option<Vec<u8>> {
        Some(match self {
            Plain::Str(s) => s.as_bytes().to_vec(),
            Plain::Int(i) => i.to_string().into_bytes(),
            Plain::Float(f) => go_float(*f).into_bytes(),
            Plain::Bool(b) => if *b { "True" } else { "False" }.as_bytes().to_vec(),
            Plain::Bytes(b) => b.clone(),
            Plain::Comment => return None,
        })
    }

    /// The value for a document.
    pub fn to_value(&self) -> Value {
        match self {
            Plain::Str(s) => Value::String(s.clone()),
            Plain::Int(i) => Value::from(*i),
            Plain::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Plain::Bool(b) => Value::Bool(*b),
            Plain::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            Plain::Comment => Value::Null,
        }
    }

    /// The bytes sops writes for this leaf in a plain file (dotenv, binary).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.mac_bytes().unwrap_or_default()
    }
}

/// Decrypts one `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value. The reason on
/// failure names the rule broken, never the value.
fn decrypt_value(text: &str, key: &[u8; 32], aad: &str) -> Result<Plain, String> {
    let inner = text
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|t| t.strip_suffix(']'))
        .ok_or("not a sops-encrypted value (ENC[AES256_GCM,…])")?;
    let mut parts = HashMap::new();
    for part in inner.split(',') {
        let (name, value) = part.split_once(':').ok_or("malformed ENC[…] value")?;
        parts.insert(name, value);
    }
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let value = parts
            .get(name)
            .ok_or_else(|| format!("the encrypted value has no {name}"))?;
        base64_decode(value, true)
            .ok_or_else(|| format!("the encrypted value's {name} is not base64"))
    };
    let (mut data, iv, tag) = (field("data")?, field("iv")?, field("tag")?);
    let datatype = parts
        .get("type")
        .copied()
        .ok_or("the encrypted value has no type")?;
    if iv.len() != 32 || tag.len() != 16 {
        return Err("the encrypted value's iv or tag has the wrong length".into());
    }
    data.extend_from_slice(&tag);
    // sops uses 32-byte GCM nonces (`NewGCMWithNonceSize`), hence AesGcm over U32.
    let cipher = AesGcm::<aes_gcm::aes::Aes256, U32>::new(key.into());
    let plain = cipher
        .decrypt(
            iv.as_slice().into(),
            Payload {
                msg: &data,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| {
            "the value does not decrypt: altered, moved, or a different data key".to_string()
        })?;
    let text = || {
        String::from_utf8(plain.clone()).map_err(|_| "a decrypted value is not UTF-8".to_string())
    };
    let bad = |t: &str| format!("a decrypted value is not a valid {t}");
    Ok(match datatype {
        // A Go string holds any bytes: sops's binary format encrypts a whole file,
        // keystores and images included, as one `str`.
        "str" => match String::from_utf8(plain) {
            Ok(s) => Plain::Str(s),
            Err(e) => Plain::Bytes(e.into_bytes()),
        },
        "int" => Plain::Int(text()?.parse().map_err(|_| bad("int"))?),
        "float" => Plain::Float(text()?.parse().map_err(|_| bad("float"))?),
        "bool" => Plain::Bool(match text()?.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return Err(bad("bool")),
        }),
        "bytes" => Plain::Bytes(plain),
        // A timestamp stays the RFC 3339 text it was encrypted from.
        "time" => Plain::Str(text()?),
        "comment" => Plain::Comment,
        other => return Err(format!("unknown encrypted value type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_follow_sops_order() {
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = Rules::default();
        assert!(all.encrypted(&path(&["data", "x"])));
        let unenc = Rules {
            unencrypted_suffix: Some("_unencrypted".into()),
            ..Rules::default()
        };
        assert!(!unenc.encrypted(&path(&["a_unencrypted", "x"])));
        assert!(unenc.encrypted(&path(&["a", "x"])));
        let re = Rules {
            encrypted_regex: Some(Regex::new("^(data|stringData)$").unwrap()),
            ..Rules::default()
        };
        assert!(re.encrypted(&path(&["stringData", "password"])));
        assert!(!re.encrypted(&path(&["metadata", "name"])));
        let unre = Rules {
            unencrypted_regex: Some(Regex::new("^meta").unwrap()),
            ..Rules::default()
        };
        assert!(!unre.encrypted(&path(&["metadata", "name"])));
        assert!(unre.encrypted(&path(&["kind"])));
    }

    #[test]
    fn floats_print_as_go_does() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1e21), "1000000000000000000000");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn malformed_values_are_refused_without_echo() {
        let key = [7u8; 32];
        for text in [
            "plain",
            "ENC[AES256_GCM,data:x]",
            "ENC[AES256_GCM,data:!!,iv:AA==,tag:AA==,type:str]",
        ] {
            let err = match decrypt_value(text, &key, "a:") {
                Err(e) => e,
                Ok(_) => panic!("{text} decrypted"),
            };
            assert!(!err.contains("plain") && !err.contains("!!"), "{err}");
        }
    }
}
