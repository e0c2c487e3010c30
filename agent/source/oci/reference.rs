//! Naming an artifact: `oci://REGISTRY/REPOSITORY` plus `--ref TAG|sha256:DIGEST`, and
//! the `TAG@sha256:…` revisions that name what a tag pointed at. Pure parsing, with
//! the grammar of the distribution spec (repository path components, tags of at most
//! 128 characters), so nothing user-supplied ends up unescaped in a request path.

use std::fmt;

/// A `sha256:<64 lowercase hex>` content digest. Only sha256 is accepted: it is what
/// registries and `oras`/`flux` write, and the one the spec requires support for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(s.to_string()))
    }

    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::from_hash(&sha2::Sha256::digest(bytes))
    }

    pub fn from_hash(hash: &[u8]) -> Self {
        Self(format!("sha256:{}", super::hex(hash)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `--ref` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    Tag(String),
    Digest(Digest),
}

/// A parsed `oci://` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port`, as written (lowercased).
    pub registry: String,
    /// The repository path, e.g. `org/app/manifests`.
    pub repository: String,
    pub pin: Pin,
}

impl Reference {
    /// Parses `oci://registry/repository[:tag|@sha256:…]` with `reference` (`--ref`);
    /// an empty `reference` or `HEAD` (the CLI's default) means the tag in the URL, or
    /// `latest`, as Flux and docker default.
    pub fn parse(url: &str, reference: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| format!("{url}: an OCI source must start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("{url}: no repository after the registry host"))?;
        if registry.is_empty() || registry.contains('@') {
            return Err(format!(
                "{url}: the registry host is empty or holds credentials (use --basic-auth-file or --docker-config)"
            ));
        }
        if !registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(format!("{url}: invalid registry host {registry:?}"));
        }
        let (repository, in_url) = split_pin(path);
        if !valid_repository(repository) {
            return Err(format!(
                "{url}: invalid repository {repository:?} (lowercase path components of [a-z0-9] joined by '.', '_', '__', '-' and '/')"
            ));
        }
        let pin = match reference {
            "" | "HEAD" => in_url.unwrap_or_else(|| "latest".into()),
            r => r.to_string(),
        };
        let pin = if pin.starts_with("sha256:") || pin.contains(':') {
            Pin::Digest(Digest::parse(&pin).ok_or_else(|| {
                format!("--ref {pin}: a digest must be sha256: followed by 64 lowercase hex digits")
            })?)
        } else if valid_tag(&pin) {
            Pin::Tag(pin)
        } else {
            return Err(format!(
                "--ref {pin}: not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}) or a sha256: digest"
            ));
        };
        Ok(Self {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_string(),
            pin,
        })
    }

    /// The host without a port, for loopback and `--insecure-registry` checks.
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    /// `oci://registry/repository`, the form shown in logs and statuses.
    pub fn display(&self) -> String {
        format!("oci://{}/{}", self.registry, self.repository)
    }
}

pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Splits `repo:tag` or `repo@sha256:…` off the URL's path.
fn split_pin(path: &str) -> (&str, Option<String>) {
    if let Some((repo, digest)) = path.split_once('@') {
        return (repo, Some(digest.to_string()));
    }
    let last = path.rfind('/').map_or(0, |i| i + 1);
    match path[last..].find(':') {
        Some(i) => (&path[..last + i], Some(path[last + i + 1..].to_string())),
        None => (path, None),
    }
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` (distribution spec, "tag").
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|part| {
            let b = part.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
                return false;
            }
            // Separators between alphanumerics: '.', '_', '__' or any run of '-'.
            let mut i = 0;
            while i < b.len() {
                if alnum(&b[i]) {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < b.len() && !alnum(&b[i]) {
                    i += 1;
                }
                let sep = &part[start..i];
                if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
                    return false;
                }
            }
            true
        })
}

/// The revision of an artifact: `TAG@sha256:…` for a tag, `sha256:…` for a pinned digest.
pub fn revision_string(pin: &Pin, digest: &Digest) -> String {
    match pin {
        Pin::Tag(tag) => format!("{tag}@{digest}"),
        Pin::Digest(_) => digest.to_string(),
    }
}

/// The digest a revision string names (`TAG@sha256:…` or `sha256:…`).
pub fn revision_digest(revision: &str) -> Option<Digest> {
    match revision.rsplit_once('@') {
        Some((tag, digest)) if valid_tag(tag) => Digest::parse(digest),
        Some(_) => None,
        None => Digest::parse(revision),
    }
}

/// The Git commit an `org.opencontainers.image.revision` annotation names, in the
/// forms Flux writes (`main@sha1:<oid>`, `sha1:<oid>`, legacy `main/<oid>`) or a bare
/// 40-hex id.
pub fn annotated_commit(value: &str) -> Option<String> {
    let tail = value.rsplit(['@', '/']).next().unwrap_or(value);
    let oid = tail.strip_prefix("sha1:").unwrap_or(tail);
    crate::encoding::is_commit_id(oid).then(|| oid.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_the_forms_people_write() {
        let r = Reference::parse("oci://127.0.0.1:5000/org/app", "v1.2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "org/app");
        assert_eq!(r.pin, Pin::Tag("v1.2".into()));
        assert_eq!(r.host(), "127.0.0.1");
        let r = Reference::parse("oci://ghcr.io/org/app:prod", "HEAD").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.pin),
            ("org/app", Pin::Tag("prod".into()))
        );
        let r = Reference::parse("oci://localhost:5000/app", "").unwrap();
        assert_eq!(r.pin, Pin::Tag("latest".into()));
        let r = Reference::parse(&format!("oci://h/app@{D}"), "HEAD").unwrap();
        assert_eq!(r.pin, Pin::Digest(Digest::parse(D).unwrap()));
        let r = Reference::parse("oci://h:1/a/b", D).unwrap();
        assert_eq!(r.pin, Pin::Digest(Digest::parse(D).unwrap()));
        assert_eq!(host_of("[::1]:5000"), "::1");
    }

    #[test]
    fn bad_references_are_refused_with_the_rule() {
        for (url, r, want) in [
            ("https://h/app", "", "must start with oci://"),
            ("oci://h", "", "no repository"),
            ("oci://u:p@h/app", "", "credentials"),
            ("oci://h/App", "", "invalid repository"),
            ("oci://h/a/../b", "", "invalid repository"),
            ("oci://h/a", "sha256:abc", "64 lowercase hex"),
            ("oci://h/a", "sha512:abc", "64 lowercase hex"),
            ("oci://h/a", "-x", "not a tag"),
            ("oci://h/a", "a/b", "not a tag"),
        ] {
            let err = Reference::parse(url, r).unwrap_err();
            assert!(err.contains(want), "{url} {r}: {err}");
        }
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(valid_tag(&"a".repeat(128)));
        assert!(valid_repository("a__b/c-----d/e.f_g"));
        assert!(!valid_repository("a___b"));
    }

    #[test]
    fn revisions_name_the_tag_and_digest() {
        let d = Digest::parse(D).unwrap();
        let rev = revision_string(&Pin::Tag("v1".into()), &d);
        assert_eq!(rev, format!("v1@{D}"));
        assert_eq!(revision_digest(&rev), Some(d.clone()));
        assert_eq!(revision_digest(D), Some(d.clone()));
        assert_eq!(revision_string(&Pin::Digest(d.clone()), &d), D);
        assert_eq!(revision_digest("../x@sha256:00"), None);
        assert_eq!(d.hex().len(), 64);
    }

    #[test]
    fn annotations_name_commits_in_fluxs_forms() {
        let oid = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        for v in [
            format!("main@sha1:{oid}"),
            format!("sha1:{oid}"),
            format!("main/{oid}"),
            oid.to_string(),
            oid.to_uppercase(),
        ] {
            assert_eq!(annotated_commit(&v).as_deref(), Some(oid), "{v}");
        }
        assert_eq!(annotated_commit("v1.2.3"), None);
        assert_eq!(annotated_commit("main@sha256:abcd"), None);
    }
}
