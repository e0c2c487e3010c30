//! SOPS-encrypted files that a `secretGenerator` reads (`files:` and `envs:`),
//! decrypted before the generator sees them, as Flux's kustomize-controller does
//! (`DecryptSources`): the Secret, and the hash in its name, are those `kustomize
//! build` makes from the decrypted files.
//!
//! In: a source file's bytes, the format its name implies (Flux's rule, see
//! [`SourceFormat::for_file`] and [`SourceFormat::for_env`]) and the identities.
//! Out: `None` when the file does not carry the SOPS marker of that format (it is
//! used as it is), else the plain file as sops would write it (`sops -d`): the
//! dotenv lines, or the binary file's bytes. These bytes stay in memory; the
//! generator turns them into the Secret's data.
//!
//! What can go wrong is a reason string (the caller names the file): no key file,
//! no matching identity, a tampered value or MAC, or an encrypted YAML, JSON or INI
//! source, which hawser does not turn back into text (sops re-emits those with its
//! own formatting, which the generated hash would depend on).

use super::file::{Budget, Format, Keys, decrypt_text, parse};
use super::tree::Node;

/// The store sops uses for a generator source, picked from a name as Flux picks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Yaml,
    Json,
    Ini,
    Dotenv,
    Binary,
}

impl SourceFormat {
    /// A `files:` entry: Flux takes the format from the key (the part before `=`, or
    /// the whole entry), with `.dockerconfigjson` read as JSON; sops's
    /// `FormatForPath` otherwise, where anything unknown is binary.
    pub fn for_file(key: &str) -> Self {
        if key.ends_with(".dockerconfigjson") {
            return Self::Json;
        }
        Self::for_path(key)
    }

    /// An `envs:` entry: as a file, but binary means dotenv.
    pub fn for_env(path: &str) -> Self {
        match Self::for_path(path) {
            Self::Binary => Self::Dotenv,
            other => other,
        }
    }

    fn for_path(path: &str) -> Self {
        if path.ends_with(".yaml") || path.ends_with(".yml") {
            Self::Yaml
        } else if path.ends_with(".json") {
            Self::Json
        } else if path.ends_with(".ini") {
            Self::Ini
        } else if path.ends_with(".env") {
            Self::Dotenv
        } else {
            Self::Binary
        }
    }

    /// The bytes by which Flux recognizes an encrypted file of this format (the
    /// binary form is a JSON envelope).
    fn marker(self) -> &'static [u8] {
        match self {
            Self::Binary | Self::Json => b"\"mac\": \"ENC[",
            Self::Dotenv => b"sops_mac=ENC[",
            Self::Ini => b"[sops]",
            Self::Yaml => b"mac: ENC[",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Yaml => "YAML",
            Self::Json => "JSON",
            Self::Ini => "INI",
            Self::Dotenv => "dotenv",
            Self::Binary => "binary",
        }
    }
}

/// Decrypts a generator source when it is SOPS-encrypted in `format`.
pub fn decrypt_source(
    bytes: &[u8],
    format: SourceFormat,
    keys: Option<&Keys>,
    limits: &Budget,
) -> Result<Option<Vec<u8>>, String> {
    let marker = format.marker();
    if !bytes.windows(marker.len()).any(|w| w == marker) {
        return Ok(None);
    }
    let store = match format {
        SourceFormat::Dotenv => Format::Dotenv,
        SourceFormat::Binary => Format::Json,
        other => {
            return Err(format!(
                "a SOPS-encrypted {} generator source is not supported (dotenv and binary are)",
                other.name()
            ));
        }
    };
    let Some(keys) = keys else {
        return Err("encrypted with SOPS, but no --sops-age-key-file was given".into());
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("a SOPS-encrypted {} file must be UTF-8", format.name()))?;
    let plain = decrypt_text(text, store, keys, limits)?;
    let branches = parse(text, store, limits)?;
    let Some(Node::Map(items)) = branches.first() else {
        return Err("not a SOPS file: the top level is not a mapping".into());
    };
    // Each value as sops writes it: its plaintext when encrypted, else as it was.
    let leaf = |value: &Node| -> Result<Vec<u8>, String> {
        match value {
            Node::Str(s) => Ok(plain
                .get(s.as_str())
                .map_or_else(|| s.as_bytes().to_vec(), |p| p.to_bytes())),
            _ => Err("a value is not a string".into()),
        }
    };
    match format {
        // sops's binary store: the file is the `data` value.
        SourceFormat::Binary => {
            let (_, data) = items
                .iter()
                .find(|(k, _)| k == "data")
                .ok_or("no binary data (the `data` key) in the SOPS file")?;
            leaf(data).map(Some)
        }
        // sops's dotenv store: `KEY=VALUE` lines, newlines written as `\n`.
        _ => {
            let mut out = Vec::with_capacity(bytes.len());
            for (key, value) in items.iter().filter(|(k, _)| k != "sops") {
                let value = leaf(value).map_err(|e| format!("{key}: {e}"))?;
                out.extend_from_slice(key.as_bytes());
                out.push(b'=');
                for &b in &value {
                    if b == b'\n' {
                        out.extend_from_slice(b"\\n");
                    } else {
                        out.push(b);
                    }
                }
                out.push(b'\n');
            }
            Ok(Some(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_picked_as_flux_picks_them() {
        assert_eq!(SourceFormat::for_file("a.env"), SourceFormat::Dotenv);
        assert_eq!(SourceFormat::for_file("tls.crt"), SourceFormat::Binary);
        assert_eq!(
            SourceFormat::for_file(".dockerconfigjson"),
            SourceFormat::Json
        );
        assert_eq!(SourceFormat::for_file("x.yml"), SourceFormat::Yaml);
        assert_eq!(SourceFormat::for_env("vars.txt"), SourceFormat::Dotenv);
        assert_eq!(SourceFormat::for_env("vars.json"), SourceFormat::Json);
    }

    #[test]
    fn plain_sources_pass_and_unsupported_ones_are_named() {
        let limits = Budget::default();
        let none = decrypt_source(b"A=1\n", SourceFormat::Dotenv, None, &limits);
        assert_eq!(none, Ok(None));
        let yaml = b"a: ENC[x]\nsops:\n  mac: ENC[y]\n";
        let err = decrypt_source(yaml, SourceFormat::Yaml, None, &limits).unwrap_err();
        assert!(err.contains("YAML generator source"), "{err}");
        let err = decrypt_source(b"sops_mac=ENC[", SourceFormat::Dotenv, None, &limits);
        assert!(err.unwrap_err().contains("--sops-age-key-file"));
    }
}
