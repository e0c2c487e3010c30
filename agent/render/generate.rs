//! `configMapGenerator` and `secretGenerator`: ConfigMaps and Secrets from files,
//! literals and env files, and the content hash kustomize appends to their names.
//!
//! In: a kustomization's generator entries and the files they name (inside the
//! kustomization's directory). Out: generated [`Resource`]s carrying their behavior
//! (create, merge, replace) and whether their name takes the hash. What can go wrong:
//! malformed `key=value` sources, invalid or repeated keys, missing files, and
//! SOPS-encrypted `secretGenerator` sources that do not decrypt ([`sops::source`]).
//! Secret values never appear in messages.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::manifests::Location;
use crate::manifests::sealed::escape;

use super::RenderError;
use super::files::{Files, child, is_within, parent};
use super::kustomization::{GeneratorArgs, GeneratorOptions};
use super::resource::{Behavior, Resource};
use super::sops::{self, Decryption, source::SourceFormat};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenKind {
    ConfigMap,
    Secret,
}

impl GenKind {
    fn field(self) -> &'static str {
        match self {
            GenKind::ConfigMap => "configMapGenerator",
            GenKind::Secret => "secretGenerator",
        }
    }
}

/// Generates one entry. `kfile` is the kustomization file (its directory is where
/// sources are read from); `global` is its `generatorOptions`.
pub fn generate(
    files: &mut Files<'_>,
    kfile: &str,
    kind: GenKind,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
    decryption: &Decryption,
) -> Result<Resource, RenderError> {
    let field = kind.field();
    let err = |reason: String| RenderError::field(kfile, field, reason);
    if args.name.is_empty() {
        return Err(err("a generated object must have a name".to_string()));
    }
    let behavior = match args.behavior.as_str() {
        "" | "create" => Behavior::Create,
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        other => return Err(err(format!("{}: unknown behavior {other:?}", args.name))),
    };
    let decrypting = (kind == GenKind::Secret).then_some(decryption);
    let (pairs, decrypted) = load_pairs(files, kfile, field, args, decrypting)?;
    let mut data = Map::new();
    let mut binary = Map::new();
    for (key, bytes) in pairs {
        if !valid_key(&key) {
            return Err(err(format!(
                "{}: {key:?} is not a valid key (alphanumerics, '-', '_' or '.')",
                args.name
            )));
        }
        if data.contains_key(&key) || binary.contains_key(&key) {
            return Err(err(format!(
                "{} illegally repeats the key `{key}`",
                args.name
            )));
        }
        match kind {
            GenKind::Secret => {
                data.insert(key, Value::String(wrapped_base64(&bytes)));
            }
            GenKind::ConfigMap => match String::from_utf8(bytes) {
                Ok(text) => {
                    data.insert(key, Value::String(text));
                }
                Err(bytes) => {
                    let encoded = crate::encoding::base64(bytes.as_bytes());
                    binary.insert(key, Value::String(encoded));
                }
            },
        }
    }

    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(args.name.clone()));
    if !args.namespace.is_empty() {
        metadata.insert("namespace".into(), Value::String(args.namespace.clone()));
    }
    let options = merge_options(global, args.options.as_ref());
    if !options.labels.is_empty() {
        metadata.insert("labels".into(), json!(options.labels));
    }
    if !options.annotations.is_empty() {
        metadata.insert("annotations".into(), json!(options.annotations));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), "v1".into());
    let kind_name = match kind {
        GenKind::ConfigMap => "ConfigMap",
        GenKind::Secret => "Secret",
    };
    obj.insert("kind".into(), kind_name.into());
    obj.insert("metadata".into(), Value::Object(metadata));
    if kind == GenKind::Secret {
        let t = if args.kind.is_empty() {
            "Opaque"
        } else {
            &args.kind
        };
        obj.insert("type".into(), t.into());
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if options.immutable == Some(true) {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    let mut res = Resource::new(
        Value::Object(obj),
        Location {
            file: kfile.to_string(),
            document: 1,
            line: None,
            item: None,
        },
    );
    res.needs_hash = options.disable_name_suffix_hash != Some(true);
    res.behavior = Some(behavior);
    // Decrypted sources are sealed (a ConfigMap's non-UTF-8 ones sit in binaryData).
    for key in decrypted {
        let field = if res.value["data"].get(&key).is_some() {
            "data"
        } else {
            "binaryData"
        };
        res.sealed.insert(&format!("/{field}/{}", escape(&key)));
    }
    Ok(res)
}

/// kustomize merges the kustomization's `generatorOptions` with the entry's
/// `options`: maps joined (the entry wins), flags set by either.
fn merge_options(
    global: Option<&GeneratorOptions>,
    local: Option<&GeneratorOptions>,
) -> GeneratorOptions {
    let mut out = global.cloned().unwrap_or_default();
    if let Some(local) = local {
        out.labels.extend(local.labels.clone());
        out.annotations.extend(local.annotations.clone());
        if local.disable_name_suffix_hash.is_some() {
            out.disable_name_suffix_hash = local.disable_name_suffix_hash;
        }
        if local.immutable.is_some() {
            out.immutable = local.immutable;
        }
    }
    out
}

/// Keys and values, in order.
type Pairs = Vec<(String, Vec<u8>)>;

/// The key/value pairs of an entry, in kustomize's order: env files, literals, files;
/// and the keys whose values came from SOPS-decrypted files. Sources are decrypted
/// only for a `secretGenerator` (`decryption` is `Some`), as Flux does.
fn load_pairs(
    files: &mut Files<'_>,
    kfile: &str,
    field: &str,
    args: &GeneratorArgs,
    decryption: Option<&Decryption>,
) -> Result<(Pairs, Vec<String>), RenderError> {
    let err = |reason: String| RenderError::field(kfile, field, format!("{}: {reason}", args.name));
    let mut pairs = Vec::new();
    let mut decrypted = Vec::new();
    let mut envs: Vec<&String> = args.envs.iter().collect();
    if !args.env.is_empty() {
        envs.push(&args.env);
    }
    for env in envs {
        let (bytes, was_encrypted) = read_source(
            files,
            kfile,
            field,
            env,
            decryption.map(|d| (d, SourceFormat::for_env(env))),
        )?;
        let text =
            String::from_utf8(bytes).map_err(|_| err(format!("env file {env:?} is not UTF-8")))?;
        for (i, line) in text.lines().enumerate() {
            let line = if i == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            if !valid_env_name(key) {
                return Err(err(format!(
                    "env file {env:?} line {}: {key:?} is not a valid environment variable name",
                    i + 1
                )));
            }
            if was_encrypted {
                decrypted.push(key.to_string());
            }
            pairs.push((key.to_string(), value.as_bytes().to_vec()));
        }
    }
    for literal in &args.literals {
        let Some((key, value)) = literal.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            // The value may be secret: name only the key part, if any.
            let key = literal.split('=').next().unwrap_or_default();
            return Err(err(format!(
                "invalid literal source {key:?}..., expected key=value"
            )));
        };
        pairs.push((key.to_string(), remove_quotes(value).as_bytes().to_vec()));
    }
    for source in &args.files {
        let (key, path) = match source.matches('=').count() {
            0 => (
                source.rsplit('/').next().unwrap_or(source).to_string(),
                source.as_str(),
            ),
            1 => match source.split_once('=') {
                Some((k, p)) if !k.is_empty() && !p.is_empty() => (k.to_string(), p),
                _ => return Err(err(format!("file source {source:?} needs key=path"))),
            },
            _ => {
                return Err(err(format!(
                    "source {source:?} key name or file path contains '='"
                )));
            }
        };
        // Flux picks the format from the part before `=`, or the whole entry.
        let named = source.split('=').next().unwrap_or(source);
        let format = SourceFormat::for_file(named);
        let (bytes, was_encrypted) =
            read_source(files, kfile, field, path, decryption.map(|d| (d, format)))?;
        if was_encrypted {
            decrypted.push(key.clone());
        }
        pairs.push((key, bytes));
    }
    Ok((pairs, decrypted))
}

/// Reads a source file, which must be inside the kustomization's directory
/// (kustomize's `LoadRestrictionsRootOnly`), decrypted when `decrypt` is given and
/// it is SOPS-encrypted in that format; says whether it was.
fn read_source(
    files: &mut Files<'_>,
    kfile: &str,
    field: &str,
    path: &str,
    decrypt: Option<(&Decryption, SourceFormat)>,
) -> Result<(Vec<u8>, bool), RenderError> {
    let (rel, bytes) = read_plain_source(files, kfile, field, path)?;
    let Some((decryption, format)) = decrypt else {
        return Ok((bytes, false));
    };
    let keys = decryption.keys.as_deref();
    match sops::source::decrypt_source(&bytes, format, keys, &files.limits.into()) {
        Ok(Some(plain)) => Ok((plain, true)),
        Ok(None) => Ok((bytes, false)),
        Err(reason) => Err(RenderError::file(&rel, reason)),
    }
}

fn read_plain_source(
    files: &mut Files<'_>,
    kfile: &str,
    field: &str,
    path: &str,
) -> Result<(String, Vec<u8>), RenderError> {
    let dir = parent(kfile);
    let rel = files.join(dir, path, kfile, field)?;
    if !is_within(&rel, dir) {
        return Err(RenderError::field(
            kfile,
            field,
            format!("{path:?} is not in or below the kustomization's directory"),
        ));
    }
    match files.kind(&rel, kfile, field)? {
        Some(super::files::Kind::File) => files.read(&rel).map(|bytes| (rel, bytes)),
        Some(super::files::Kind::Dir) => Err(RenderError::field(
            kfile,
            field,
            format!("{path:?} is a directory, not a file"),
        )),
        None => Err(RenderError::field(
            kfile,
            field,
            format!("{:?}: no such file", child(dir, path)),
        )),
    }
}

fn remove_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// ConfigMap and Secret keys: alphanumerics, `-`, `_`, `.`, at most 253 characters.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && key != "."
        && key != ".."
}

fn valid_env_name(key: &str) -> bool {
    !key.is_empty()
        && !key.chars().next().is_some_and(|c| c.is_ascii_digit())
        && !key.contains('=')
        && key.chars().all(|c| !c.is_whitespace())
}

/// Base64 as kustomize writes Secret data: one line, or lines of 70 characters each
/// ending in a newline when the text is 70 characters or longer.
pub fn wrapped_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = crate::encoding::base64(bytes);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// The suffix kustomize appends to a generated name: sha256 over a JSON encoding of
/// the kind, an empty name, the data (and type for Secrets), in hex, first ten
/// characters, with some letters swapped so it never reads as a word or a number.
pub fn hash_suffix(obj: &Value) -> String {
    let get = |field: &str| match obj.get(field) {
        Some(Value::Object(map)) => Value::Object(map.clone()),
        _ => Value::String(String::new()),
    };
    let kind = obj["kind"].as_str().unwrap_or_default();
    let mut m = Map::new();
    m.insert("kind".into(), kind.into());
    // kustomize looks the name up by a path it cannot find: it is always empty.
    m.insert("name".into(), "".into());
    m.insert("data".into(), get("data"));
    match kind {
        "Secret" => {
            let t = match obj.get("type") {
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            };
            m.insert("type".into(), t.into());
            if obj.get("stringData").is_some_and(Value::is_object) {
                m.insert("stringData".into(), get("stringData"));
            }
        }
        _ => {
            if obj.get("binaryData").is_some_and(Value::is_object) {
                m.insert("binaryData".into(), get("binaryData"));
            }
        }
    }
    let encoded = go_json(&Value::Object(m));
    let digest = Sha256::digest(encoded.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    hex.chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// Compact JSON as Go's `encoding/json` writes it: sorted keys (serde_json's map is
/// sorted here) and `<`, `>`, `&`, U+2028, U+2029 escaped.
fn go_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_base64_wraps_at_seventy_columns() {
        assert_eq!(wrapped_base64(b"abc"), "YWJj");
        let long = wrapped_base64(&[b'x'; 60]);
        assert!(long.ends_with('\n'));
        assert_eq!(long.lines().next().map(str::len), Some(70));
    }

    #[test]
    fn quotes_are_removed_only_when_they_match() {
        assert_eq!(remove_quotes("\"a b\""), "a b");
        assert_eq!(remove_quotes("'a"), "'a");
    }
}
