//! Refs: what the user asked for (`--ref`), what the server listed, and the choice
//! between them. In: a ref spec and `ls-refs` lines or a v0 advertisement. Out: the
//! commit id to fetch, annotated tags peeled to their commit.

use std::io::Read;

use super::GitError;
use super::object::ObjectId;
use super::pktline::PktReader;
use crate::source::SourceError;

/// The `--ref` value, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefSpec {
    /// A full commit id: nothing to resolve.
    Commit(ObjectId),
    Head,
    /// `refs/...`, matched exactly.
    Full(String),
    /// A branch or tag name; both `refs/heads/` and `refs/tags/` are asked for.
    Short(String),
}

impl RefSpec {
    pub fn parse(s: &str) -> Result<Self, SourceError> {
        let s = s.trim();
        if s.is_empty() || s == "HEAD" {
            return Ok(RefSpec::Head);
        }
        if let Some(id) = ObjectId::from_hex(s) {
            return Ok(RefSpec::Commit(id));
        }
        let bad = s.starts_with('-')
            || s.contains("..")
            || s.ends_with('/')
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
        if bad {
            return Err(SourceError::Config(format!("invalid git ref {s:?}")));
        }
        Ok(if s.starts_with("refs/") {
            RefSpec::Full(s.to_string())
        } else {
            RefSpec::Short(s.to_string())
        })
    }

    /// The `ref-prefix` arguments that cover this spec.
    pub fn prefixes(&self) -> Vec<String> {
        match self {
            RefSpec::Commit(_) => Vec::new(),
            RefSpec::Head => vec!["HEAD".into()],
            RefSpec::Full(name) => vec![name.clone()],
            RefSpec::Short(name) => vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")],
        }
    }

    fn shown(&self) -> String {
        match self {
            RefSpec::Commit(id) => id.to_string(),
            RefSpec::Head => "HEAD".into(),
            RefSpec::Full(n) | RefSpec::Short(n) => n.clone(),
        }
    }
}

/// One ref as the server listed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    pub name: String,
    pub id: ObjectId,
    /// For annotated tags: the commit the tag finally points at.
    pub peeled: Option<ObjectId>,
}

impl RemoteRef {
    fn target(&self) -> ObjectId {
        self.peeled.unwrap_or(self.id)
    }
}

/// Parses a v2 `ls-refs` line: `<oid> <name>[ symref-target:<t>][ peeled:<oid>]`.
pub fn parse_v2_ref(line: &str) -> Result<RemoteRef, GitError> {
    let bad = || {
        GitError::Unexpected(format!(
            "ls-refs line {:?}",
            super::pktline::text(line.as_bytes())
        ))
    };
    let mut parts = line.split(' ');
    let id = parts.next().and_then(ObjectId::from_hex).ok_or_else(bad)?;
    let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
    let mut peeled = None;
    for attr in parts {
        if let Some(hex) = attr.strip_prefix("peeled:") {
            peeled = Some(ObjectId::from_hex(hex).ok_or_else(bad)?);
        }
    }
    Ok(RemoteRef {
        name: name.to_string(),
        id,
        peeled,
    })
}

/// Parses a v0 advertisement after its first line (`first`): `<oid> <name>\0<caps>`,
/// then `<oid> <name>` lines, peeled tags as `<name>^{}`, up to a flush. Returns the
/// refs and the capabilities.
pub fn parse_v0_advertisement<R: Read>(
    first: Option<String>,
    pkt: &mut PktReader<R>,
    max_refs: u64,
) -> Result<(Vec<RemoteRef>, Vec<String>), GitError> {
    let Some(first) = first else {
        return Ok((Vec::new(), Vec::new()));
    };
    let (first, caps) = first.split_once('\0').unwrap_or((&first, ""));
    let caps: Vec<String> = caps
        .split(' ')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let mut refs: Vec<RemoteRef> = Vec::new();
    let mut line = Some(first.to_string());
    while let Some(l) = line {
        let bad = || {
            GitError::Unexpected(format!(
                "advertisement line {:?}",
                super::pktline::text(l.as_bytes())
            ))
        };
        let (hex, name) = l.split_once(' ').ok_or_else(bad)?;
        let id = ObjectId::from_hex(hex).ok_or_else(bad)?;
        if let Some(base) = name.strip_suffix("^{}") {
            if let Some(r) = refs.iter_mut().rev().find(|r| r.name == base) {
                r.peeled = Some(id);
            }
        } else if name != "capabilities^{}" {
            if refs.len() as u64 >= max_refs {
                return Err(GitError::TooManyRefs(max_refs));
            }
            refs.push(RemoteRef {
                name: name.to_string(),
                id,
                peeled: None,
            });
        }
        line = pkt.read_line()?;
    }
    // v0 names HEAD's target in the `symref=HEAD:<ref>` capability; HEAD itself is
    // listed with its id, which is all that resolving needs.
    Ok((refs, caps))
}

/// Why a ref could not be chosen.
#[derive(Debug, PartialEq, Eq)]
pub enum PickError {
    NotFound(String),
    Ambiguous(String, String),
}

impl PickError {
    pub fn into_source(self, url: &str) -> SourceError {
        match self {
            PickError::NotFound(reference) => SourceError::RefNotFound {
                url: url.to_string(),
                reference,
            },
            PickError::Ambiguous(reference, candidates) => SourceError::AmbiguousRef {
                url: url.to_string(),
                reference,
                candidates,
            },
        }
    }
}

/// Chooses the commit for `spec` among `refs` (which `ref-prefix` only narrowed:
/// servers may list more). A short name matching both a branch and a tag is refused.
pub fn pick(spec: &RefSpec, refs: &[RemoteRef]) -> Result<ObjectId, PickError> {
    let find = |name: &str| refs.iter().find(|r| r.name == name).map(RemoteRef::target);
    let found = match spec {
        RefSpec::Commit(id) => Some(*id),
        RefSpec::Head => find("HEAD"),
        RefSpec::Full(name) => find(name),
        RefSpec::Short(name) => {
            let branch = format!("refs/heads/{name}");
            let tag = format!("refs/tags/{name}");
            match (find(&branch), find(&tag)) {
                (Some(_), Some(_)) => {
                    return Err(PickError::Ambiguous(
                        name.clone(),
                        format!("{branch} and {tag}"),
                    ));
                }
                (b, t) => b.or(t),
            }
        }
    };
    found.ok_or_else(|| PickError::NotFound(spec.shown()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::git::pktline::{write_flush, write_line};

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn spec_parsing() {
        assert_eq!(RefSpec::parse("").unwrap(), RefSpec::Head);
        assert_eq!(
            RefSpec::parse(A).unwrap(),
            RefSpec::Commit(ObjectId::from_hex(A).unwrap())
        );
        assert_eq!(
            RefSpec::parse("refs/tags/v1").unwrap(),
            RefSpec::Full("refs/tags/v1".into())
        );
        assert_eq!(
            RefSpec::parse("main").unwrap().prefixes(),
            ["refs/heads/main", "refs/tags/main"]
        );
        for bad in ["-x", "a..b", "a b", "x~1", "v1^{}"] {
            assert!(RefSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn v2_lines_with_peeled_tags() {
        let r = parse_v2_ref(&format!("{A} refs/tags/v1 peeled:{B}")).unwrap();
        assert_eq!(r.target().to_string(), B);
        let r = parse_v2_ref(&format!("{A} HEAD symref-target:refs/heads/main")).unwrap();
        assert_eq!((r.name.as_str(), r.peeled), ("HEAD", None));
        assert!(parse_v2_ref("nonsense").is_err());
    }

    #[test]
    fn v0_advertisement_peels_tags() {
        let mut rest = Vec::new();
        write_line(&mut rest, &format!("{A} refs/tags/v1"));
        write_line(&mut rest, &format!("{B} refs/tags/v1^{{}}"));
        write_flush(&mut rest);
        let first = format!("{A} HEAD\0multi_ack shallow symref=HEAD:refs/heads/main");
        let (refs, caps) =
            parse_v0_advertisement(Some(first), &mut PktReader::new(&rest[..]), 10).unwrap();
        assert!(caps.contains(&"shallow".to_string()));
        let spec = RefSpec::parse("v1").unwrap();
        assert_eq!(pick(&spec, &refs).unwrap().to_string(), B);
        assert_eq!(pick(&RefSpec::Head, &refs).unwrap().to_string(), A);
    }

    #[test]
    fn picking_prefers_exact_names_and_refuses_ambiguity() {
        let refs = vec![
            parse_v2_ref(&format!("{A} refs/heads/main")).unwrap(),
            parse_v2_ref(&format!("{B} refs/heads/main-old")).unwrap(),
            parse_v2_ref(&format!("{B} refs/tags/both")).unwrap(),
            parse_v2_ref(&format!("{A} refs/heads/both")).unwrap(),
        ];
        assert_eq!(
            pick(&RefSpec::parse("main").unwrap(), &refs)
                .unwrap()
                .to_string(),
            A
        );
        assert_eq!(
            pick(&RefSpec::parse("both").unwrap(), &refs),
            Err(PickError::Ambiguous(
                "both".into(),
                "refs/heads/both and refs/tags/both".into()
            ))
        );
        assert_eq!(
            pick(&RefSpec::parse("nope").unwrap(), &refs),
            Err(PickError::NotFound("nope".into()))
        );
    }
}
