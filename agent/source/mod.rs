//! The source stage: turns a configured location into a verified [`Snapshot`].
//!
//! In: a [`SourceSpec`] (URL, ref, subpath, HTTP options, limits). Out: a cheap
//! [`Revision`] from [`Source::resolve`] on every poll, and a [`Snapshot`] directory
//! from [`Source::fetch`] only when the revision changed. Git objects are verified by
//! recomputing every id; archives by their sha256; OCI manifests and layers by their
//! digests (and a cosign key when configured). What can go wrong is a
//! [`SourceError`]: network trouble and 5xx answers are transient (retry later),
//! everything else is a property of the source and fails the same way again.

pub mod atomic;
pub mod bundle;
mod error;
pub mod git;
pub mod http;
pub mod oci;
mod revision;
pub mod tarball;

use std::path::{Path, PathBuf};

pub use error::SourceError;
pub use http::{Auth, HttpOptions};
pub use revision::{BadRevision, Revision};

/// A fetched and verified tree on disk. Only the verifying fetch paths construct one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    revision: Revision,
    dir: PathBuf,
    files: u64,
    bytes: u64,
    source: String,
    /// The raw commit (and tag) objects, kept so the cache can re-verify them.
    objects: Option<crate::verify::Objects>,
    verified: Option<crate::verify::Verified>,
}

impl Snapshot {
    pub(in crate::source) fn new(
        revision: Revision,
        dir: PathBuf,
        files: u64,
        bytes: u64,
        source: String,
    ) -> Self {
        Self {
            revision,
            dir,
            files,
            bytes,
            source,
            objects: None,
            verified: None,
        }
    }

    /// A snapshot of a directory nothing verified, for the cache's unit tests.
    #[cfg(test)]
    pub(crate) fn unverified(revision: Revision, dir: PathBuf, source: &str) -> Self {
        Self::new(revision, dir, 0, 0, source.to_string())
    }

    /// The same snapshot with the objects its signatures were checked in.
    pub(in crate::source) fn signed(
        self,
        objects: crate::verify::Objects,
        verified: Option<crate::verify::Verified>,
    ) -> Self {
        Self {
            objects: Some(objects),
            verified,
            ..self
        }
    }

    /// The raw commit (and tag) objects, for sources that have them.
    pub fn objects(&self) -> Option<&crate::verify::Objects> {
        self.objects.as_ref()
    }

    /// Who signed the revision, when `--verify-commits`/`--verify-tags` checked it.
    pub fn verified(&self) -> Option<&crate::verify::Verified> {
        self.verified.as_ref()
    }

    pub fn revision(&self) -> &Revision {
        &self.revision
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn files(&self) -> u64 {
        self.files
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// The source URL, without credentials or query.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The same snapshot after its directory was renamed into place.
    pub(in crate::source) fn moved_to(self, dir: PathBuf) -> Self {
        Self { dir, ..self }
    }
}

/// Resource limits; exceeding one is an error naming it, and nothing is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// Bytes downloaded: a pack, or an archive as sent.
    pub max_pack_bytes: u64,
    /// Bytes of one object or archive entry.
    pub max_object_bytes: u64,
    /// Files written.
    pub max_files: u64,
    /// Bytes written, and bytes decompressed from an archive.
    pub max_total_bytes: u64,
    /// Bytes of one ref listing (`ls-refs` or a v0 advertisement), read on every poll.
    pub max_ref_bytes: u64,
    /// Refs in one listing.
    pub max_refs: u64,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            max_pack_bytes: 256 << 20,
            max_object_bytes: 128 << 20,
            max_files: 100_000,
            max_total_bytes: 1 << 30,
            // A v0 advertisement lists every ref; 100,000 refs take about 6 MiB.
            max_ref_bytes: 16 << 20,
            max_refs: 200_000,
        }
    }
}

/// Which protocol a URL is fetched with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Git,
    Tarball,
    /// A git bundle: a local file, an inbox directory, or an HTTP(S) URL.
    Bundle,
    /// An artifact in an OCI registry (`oci://`).
    Oci,
}

impl SourceKind {
    /// `oci://` is an OCI artifact, `.tar.gz`, `.tgz` and `.tar` are archives, `.bundle` and anything that is not
    /// an HTTP(S) URL (a file or an inbox directory) are bundles, anything else is a
    /// Git repository.
    pub fn from_url(url: &str) -> Self {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        if url.starts_with("oci://") {
            return SourceKind::Oci;
        }
        if path.ends_with(".bundle") || !url.contains("://") || url.starts_with("file://") {
            return SourceKind::Bundle;
        }
        if [".tar.gz", ".tgz", ".tar"]
            .iter()
            .any(|s| path.ends_with(s))
        {
            SourceKind::Tarball
        } else {
            SourceKind::Git
        }
    }
}

/// Everything needed to poll and fetch one source, validated once at startup.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    pub url: String,
    pub kind: SourceKind,
    /// Branch, tag, full ref name, `HEAD` or a 40-hex commit id (Git only).
    pub reference: String,
    /// Subdirectory of the tree to apply (Git and bundles; `None` for the whole
    /// tree). The whole tree is extracted all the same; this one must exist in it.
    pub path: Option<String>,
    /// Pinned sha256 of the archive (lowercase hex).
    pub sha256: Option<String>,
    /// Verify the archive against `<url>.sha256`.
    pub sha256_from_url: bool,
    pub http: HttpOptions,
    pub limits: FetchLimits,
    /// Signature, downgrade and inbox options (bundle sources only).
    pub bundle: bundle::BundleOptions,
    /// Registry, signature and layer options (OCI sources only).
    pub oci: oci::OciOptions,
    /// Which commit and tag signatures must be by trusted keys (git and bundles).
    pub verify: crate::verify::Policy,
}

/// A configured source.
pub enum Source {
    Git(git::protocol::GitSource),
    Tarball(tarball::TarballSource),
    Bundle(Box<bundle::BundleSource>),
    Oci(Box<oci::OciSource>),
}

impl Source {
    pub fn new(spec: SourceSpec) -> Result<Self, SourceError> {
        // Signatures are on commits and tags: only sources that carry them can verify.
        let signed = matches!(spec.kind, SourceKind::Git | SourceKind::Bundle);
        if spec.verify.enabled() && !signed {
            let hint = if spec.kind == SourceKind::Oci {
                "; verify OCI artifacts with --verify-cosign-key"
            } else {
                " only"
            };
            return Err(SourceError::Config(format!(
                "--verify-commits and --verify-tags apply to git and bundle sources{hint}"
            )));
        }
        Ok(match spec.kind {
            SourceKind::Git => Source::Git(git::protocol::GitSource::new(spec)?),
            SourceKind::Tarball => Source::Tarball(tarball::TarballSource::new(spec)?),
            SourceKind::Bundle => Source::Bundle(Box::new(bundle::BundleSource::new(spec)?)),
            SourceKind::Oci => Source::Oci(Box::new(oci::OciSource::new(spec)?)),
        })
    }

    /// The revision the source names now, with as little traffic as possible.
    pub fn resolve(&self) -> Result<Revision, SourceError> {
        match self {
            Source::Git(g) => g.resolve(),
            Source::Tarball(t) => t.resolve(),
            Source::Bundle(b) => b.resolve(),
            Source::Oci(o) => o.resolve(),
        }
    }

    /// Fetches `revision` and writes its files into `into`, an existing empty
    /// directory. On error `into` may hold a partial tree: discard it (or use
    /// [`Source::fetch_to`], which does).
    pub fn fetch(&self, revision: &Revision, into: &Path) -> Result<Snapshot, SourceError> {
        match self {
            Source::Git(g) => g.fetch(revision, into),
            Source::Tarball(t) => t.fetch(revision, into),
            Source::Bundle(b) => b.fetch(revision, into),
            Source::Oci(o) => o.fetch(revision, into),
        }
    }

    /// Fetches `revision` into a temporary directory next to `out` and renames it to
    /// `out` only when everything was written and verified; an existing `out` is
    /// replaced then, and left untouched on any error.
    pub fn fetch_to(&self, revision: &Revision, out: &Path) -> Result<Snapshot, SourceError> {
        let snapshot = atomic::replace_dir(out, |tmp| self.fetch(revision, tmp))?;
        Ok(snapshot.moved_to(out.to_path_buf()))
    }

    /// Response body bytes received so far (for measuring poll cost).
    pub fn bytes_received(&self) -> u64 {
        match self {
            Source::Git(g) => g.bytes_received(),
            Source::Tarball(t) => t.bytes_received(),
            Source::Bundle(b) => b.bytes_received(),
            Source::Oci(o) => o.bytes_received(),
        }
    }

    /// The Git commit `revision` was made from, for commit statuses: the revision
    /// itself when it is a commit id, else what an OCI artifact's
    /// `org.opencontainers.image.revision` annotation named.
    pub fn commit_of(&self, revision: &Revision) -> Option<String> {
        if let Some(id) = revision.commit_id() {
            return Some(id.to_string());
        }
        match self {
            Source::Oci(o) => o.commit_of(revision),
            _ => None,
        }
    }

    /// The signature policy, for re-verifying cached revisions.
    pub fn policy(&self) -> &crate::verify::Policy {
        match self {
            Source::Git(g) => g.policy(),
            Source::Tarball(_) | Source::Oci(_) => &NO_POLICY,
            Source::Bundle(b) => b.policy(),
        }
    }

    /// `--path`: the directory of the snapshot to render and apply. Snapshots hold
    /// the whole tree, so an overlay there can reach `../../base`.
    pub fn subpath(&self) -> Option<&str> {
        match self {
            Source::Git(g) => g.subpath(),
            Source::Bundle(b) => b.subpath(),
            Source::Tarball(_) | Source::Oci(_) => None,
        }
    }

    /// The URL as it may be printed: no credentials, no query.
    pub fn display_url(&self) -> &str {
        match self {
            Source::Git(g) => g.display_url(),
            Source::Tarball(t) => t.display_url(),
            Source::Bundle(b) => b.display_url(),
            Source::Oci(o) => o.display_url(),
        }
    }
}

static NO_POLICY: crate::verify::Policy = crate::verify::Policy {
    commits: false,
    tags: false,
    ssh: None,
    gpg: None,
};

/// Strips user info, query and fragment from a URL so it can be printed.
pub fn redact_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_can_be_shared_with_blocking_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Source>();
        shareable::<Snapshot>();
        shareable::<SourceError>();
    }

    #[test]
    fn urls_are_printed_without_credentials_or_query() {
        assert_eq!(
            redact_url("https://user:secret@example.com/org/repo.git?token=x#frag"),
            "https://example.com/org/repo.git"
        );
        assert_eq!(redact_url("http://h:8080"), "http://h:8080");
    }

    #[test]
    fn kind_follows_the_url_suffix() {
        assert_eq!(
            SourceKind::from_url("https://h/a.tar.gz?x=1"),
            SourceKind::Tarball
        );
        assert_eq!(SourceKind::from_url("https://h/a.tgz"), SourceKind::Tarball);
        assert_eq!(SourceKind::from_url("https://h/a.tar"), SourceKind::Tarball);
        assert_eq!(SourceKind::from_url("https://h/a.git"), SourceKind::Git);
        assert_eq!(
            SourceKind::from_url("https://h/a.bundle?x"),
            SourceKind::Bundle
        );
        assert_eq!(SourceKind::from_url("/var/lib/inbox"), SourceKind::Bundle);
        assert_eq!(SourceKind::from_url("ssh://h/repo"), SourceKind::Git);
        assert_eq!(SourceKind::from_url("oci://h/a/b:v1"), SourceKind::Oci);
    }

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        let url = "u".to_string();
        assert!(
            SourceError::Http {
                url: url.clone(),
                status: 503
            }
            .is_transient()
        );
        assert!(
            !SourceError::Http {
                url: url.clone(),
                status: 404
            }
            .is_transient()
        );
        assert!(SourceError::Timeout { url: url.clone() }.is_transient());
        assert!(
            !SourceError::Limit {
                limit: "max-files",
                max: 1
            }
            .is_transient()
        );
        assert_eq!(
            SourceError::Http { url, status: 401 }.to_string(),
            "u: http 401 (authentication required or credentials rejected)"
        );
    }
}
