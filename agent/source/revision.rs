//! What a source names, parsed once where it enters: a source's answer, the
//! cache's `state.json` and `meta.json`, a command-line flag. Everything after that
//! passes a [`Revision`] and never looks at its text again.

use std::fmt;
use std::str::FromStr;

use super::git::object::ObjectId;
use super::oci::reference::{self, Digest, Pin};

/// What a source names: a Git commit id (40 hex digits, kept lowercase), `sha256:<hex>`
/// of an archive without a commit id, or an OCI artifact (`TAG@sha256:<hex>`, or the
/// digest alone when it was pinned).
///
/// Only this module makes one, from a value a source computed or from text that
/// [`Revision::parse`] checked:
///
/// ```compile_fail,E0423
/// let revision = hawser::source::Revision(String::from("main"));
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct Revision(String);

/// Text that is none of the forms a [`Revision`] takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "revision {revision:?} is not a commit id (40 hex digits), sha256:<64 hex digits> or TAG@sha256:<64 hex digits>"
)]
pub struct BadRevision {
    revision: String,
}

impl Revision {
    pub fn commit(id: ObjectId) -> Self {
        Self(id.to_string())
    }

    /// An archive named by its digest; `hex` is the sha256 in lowercase hex.
    pub fn sha256(hex: &str) -> Self {
        Self(format!("sha256:{hex}"))
    }

    /// An OCI artifact: `TAG@sha256:<manifest digest>`, or the digest alone when
    /// it was pinned.
    pub fn oci(pin: &Pin, digest: &Digest) -> Self {
        Self(reference::revision_string(pin, digest))
    }

    /// Parses the string form (as the cache stores it, as a flag gives it). A commit
    /// id may be in either case; it is kept lowercase.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(id) = ObjectId::from_hex(s) {
            return Some(Self::commit(id));
        }
        if let Some((tag, digest)) = s.split_once('@') {
            return (reference::valid_tag(tag) && Digest::parse(digest).is_some())
                .then(|| Self(s.to_string()));
        }
        let hex = s.strip_prefix("sha256:")?;
        crate::encoding::is_hex(hex, 64).then(|| Self::sha256(&hex.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The commit id, when the revision is one.
    pub fn commit_id(&self) -> Option<ObjectId> {
        ObjectId::from_hex(&self.0)
    }

    /// The sha256 content digest the revision names (an archive or an OCI
    /// manifest), in lowercase hex; `None` for a commit.
    pub fn sha256_hex(&self) -> Option<&str> {
        let digest = self.0.rsplit_once('@').map_or(self.0.as_str(), |(_, d)| d);
        digest.strip_prefix("sha256:")
    }
}

impl FromStr for Revision {
    type Err = BadRevision;

    fn from_str(s: &str) -> Result<Self, BadRevision> {
        Self::parse(s).ok_or_else(|| BadRevision {
            revision: s.chars().take(120).collect(),
        })
    }
}

impl TryFrom<String> for Revision {
    type Error = BadRevision;

    fn try_from(s: String) -> Result<Self, BadRevision> {
        s.parse()
    }
}

impl From<Revision> for String {
    fn from(revision: Revision) -> String {
        revision.0
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Revision {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Revision {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_parse_both_forms() {
        let c = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        assert_eq!(Revision::parse(c).unwrap().as_str(), c);
        let s = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Revision::parse(&s).unwrap().as_str(), s);
        assert!(Revision::parse("sha256:abc").is_none());
        assert!(Revision::parse("main").is_none());
        let oci = format!("v1.2@sha256:{}", "ab".repeat(32));
        assert_eq!(Revision::parse(&oci).unwrap().as_str(), oci);
        assert!(Revision::parse(&format!("../x@sha256:{}", "ab".repeat(32))).is_none());
    }

    #[test]
    fn commit_ids_are_kept_lowercase_and_digests_found() {
        let upper = "4B825DC642CB6EB9A060E54BF8D69288FBEE4904";
        let rev = Revision::parse(upper).unwrap();
        assert_eq!(rev.as_str(), upper.to_ascii_lowercase());
        assert!(rev.commit_id().is_some() && rev.sha256_hex().is_none());
        let hex = "ab".repeat(32);
        let oci = Revision::parse(&format!("v1@sha256:{hex}")).unwrap();
        assert_eq!(oci.sha256_hex(), Some(hex.as_str()));
        assert_eq!(
            Revision::parse(&format!("sha256:{}", hex.to_uppercase()))
                .unwrap()
                .sha256_hex(),
            Some(hex.as_str())
        );
    }

    #[test]
    fn bad_text_is_refused_by_name_and_state_files_parse_it_at_load() {
        let err = "main".parse::<Revision>().unwrap_err();
        assert!(err.to_string().contains("\"main\""), "{err}");
        let rev: Revision = serde_json::from_str(&format!("\"{}\"", "a".repeat(40))).unwrap();
        assert_eq!(
            serde_json::to_string(&rev).unwrap(),
            format!("\"{}\"", "a".repeat(40))
        );
        let err = serde_json::from_str::<Revision>("\"../etc\"").unwrap_err();
        assert!(err.to_string().contains("\"../etc\""), "{err}");
    }
}
