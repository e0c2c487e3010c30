//! One snapshot entry: its key, its meta.json, and the steps that build it.
//!
//! Building happens in `tmp/entry-...` and ends with one rename into `snapshots/`, so
//! a reader (or a restart) sees a whole entry or none. Each step is its own method so
//! the crash tests can stop between any two.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::CacheError;
use super::state::Record;
use super::tree::{self, TreeSummary};
use crate::source::Revision;

/// A verified snapshot in the cache. Only the cache makes one (storing a verified
/// [`Snapshot`](crate::source::Snapshot), or loading an entry whose digest it
/// checked), so holding an `Entry` means its tree was verified:
///
/// ```compile_fail,E0451
/// let entry = hawser::cache::Entry {
///     revision: "a".repeat(40).parse().unwrap(),
///     source: String::new(),
///     digest: String::new(),
///     files: 0,
///     bytes: 0,
///     stored_at: 0,
///     tree: std::path::PathBuf::from("/anything"),
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    revision: Revision,
    /// Where it was fetched from.
    source: String,
    /// Tree digest, `sha256:<hex>` (see the `tree` module for its definition).
    digest: String,
    files: u64,
    bytes: u64,
    /// Unix seconds.
    stored_at: u64,
    /// The directory holding the files.
    tree: PathBuf,
}

impl Entry {
    pub fn revision(&self) -> &Revision {
        &self.revision
    }

    /// Where it was fetched from (the source URL, without credentials).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Tree digest, `sha256:<hex>` (see the `tree` module for its definition).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn files(&self) -> u64 {
        self.files
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// When it was stored, in unix seconds.
    pub fn stored_at(&self) -> u64 {
        self.stored_at
    }

    /// The directory holding the files.
    pub fn tree(&self) -> &Path {
        &self.tree
    }

    /// The raw commit (and tag) objects stored beside the tree, for re-verifying
    /// signatures on load: `Ok(None)` when the source kept none (archives, or an
    /// entry written before hawser kept them).
    pub fn objects(&self) -> Result<Option<crate::verify::Objects>, String> {
        let dir = objects_dir(&self.tree);
        let read = |name: &str| match fs::read(dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading objects/{name}: {e}")),
        };
        let Some(commit) = read("commit")? else {
            return Ok(None);
        };
        let tag = match (read("tag-name")?, read("tag")?) {
            (Some(name), Some(raw)) => Some((String::from_utf8_lossy(&name).into_owned(), raw)),
            _ => None,
        };
        Ok(Some(crate::verify::Objects { commit, tag }))
    }

    /// The signers recorded when the entry was stored.
    pub fn verified(&self) -> Option<crate::verify::Verified> {
        let bytes = fs::read(objects_dir(&self.tree).join("verified.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The state record for this entry, as applied or good at `at` (unix seconds).
    pub fn record(&self, at: u64) -> Record {
        Record {
            revision: self.revision.clone(),
            digest: self.digest.clone(),
            source: self.source.clone(),
            at,
            committer_time: None,
        }
    }
}

/// meta.json. The revision is parsed as it is read: one that is not a revision makes
/// the entry corrupt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    revision: Revision,
    source: String,
    digest: String,
    files: u64,
    bytes: u64,
    stored_at: u64,
}

impl Meta {
    fn into_entry(self, dir: &Path) -> Entry {
        let Meta {
            revision,
            source,
            digest,
            files,
            bytes,
            stored_at,
        } = self;
        Entry {
            revision,
            source,
            digest,
            files,
            bytes,
            stored_at,
            tree: tree::tree_of(dir),
        }
    }
}

/// The directory name for a revision: the commit id (lowercase hex), or
/// `sha256-<hex>` for what is named by its digest (an archive; an OCI artifact, whose
/// content is the same whichever tag named it). A [`Revision`] holds nothing else,
/// so a key never names a path outside `snapshots/`.
pub(crate) fn key(revision: &Revision) -> String {
    match revision.sha256_hex() {
        Some(hex) => format!("sha256-{hex}"),
        None => revision.as_str().to_string(),
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn objects_dir(tree: &Path) -> PathBuf {
    tree.parent().unwrap_or(tree).join("objects")
}

/// An entry being built under `tmp/`.
pub(crate) struct Pending {
    pub dir: PathBuf,
    key: String,
    revision: Revision,
    source: String,
}

impl Pending {
    pub fn new(tmp: &Path, revision: &Revision, source: &str) -> Pending {
        let key = key(revision);
        Pending {
            dir: tmp.join(tree::unique_name(&format!("entry-{key}"))),
            key,
            revision: revision.clone(),
            source: source.to_string(),
        }
    }

    /// Step 1: moves (or copies) the staged files into `<entry>/tree`, hashes them and
    /// fsyncs every file and directory.
    pub fn take_tree(&self, staged: &Path, moved: bool) -> Result<TreeSummary, CacheError> {
        fs::create_dir(&self.dir)
            .map_err(|e| CacheError::io("creating directory", &self.dir, e))?;
        let tree = tree::tree_of(&self.dir);
        if moved {
            fs::rename(staged, &tree)
                .map_err(|e| CacheError::io("moving staged tree", staged, e))?;
        } else {
            tree::copy_tree(staged, &tree)?;
        }
        tree::summarize(&tree, true)
    }

    /// Step 1b: writes the raw commit (and tag) objects and who signed them into
    /// `<entry>/objects/`, fsynced, so loading can verify the signatures again.
    pub fn write_objects(
        &self,
        objects: &crate::verify::Objects,
        verified: Option<&crate::verify::Verified>,
    ) -> Result<(), CacheError> {
        let dir = self.dir.join("objects");
        fs::create_dir(&dir).map_err(|e| CacheError::io("creating directory", &dir, e))?;
        tree::write_synced(&dir.join("commit"), &objects.commit)?;
        if let Some((name, raw)) = &objects.tag {
            tree::write_synced(&dir.join("tag"), raw)?;
            tree::write_synced(&dir.join("tag-name"), name.as_bytes())?;
        }
        if let Some(verified) = verified {
            let path = dir.join("verified.json");
            let bytes = serde_json::to_vec(verified).map_err(|source| CacheError::Encode {
                path: path.clone(),
                source,
            })?;
            tree::write_synced(&path, &bytes)?;
        }
        tree::sync_dir(&dir)
    }

    /// Step 2: writes and fsyncs `<entry>/meta.json`.
    pub fn write_meta(&self, summary: &TreeSummary) -> Result<Entry, CacheError> {
        let meta = Meta {
            revision: self.revision.clone(),
            source: self.source.clone(),
            digest: summary.digest.clone(),
            files: summary.files,
            bytes: summary.bytes,
            stored_at: now(),
        };
        let path = self.dir.join("meta.json");
        let bytes = serde_json::to_vec_pretty(&meta).map_err(|source| CacheError::Encode {
            path: path.clone(),
            source,
        })?;
        tree::write_synced(&path, &bytes)?;
        Ok(meta.into_entry(&self.dir))
    }

    /// Step 3: fsyncs the entry directory, making meta.json's name durable.
    pub fn sync(&self) -> Result<(), CacheError> {
        tree::sync_dir(&self.dir)
    }

    /// Step 4: renames the entry into `snapshots/` and fsyncs both parents.
    pub fn commit(&self, snapshots: &Path, built: Entry) -> Result<Entry, CacheError> {
        let target = snapshots.join(&self.key);
        tree::rename_synced(&self.dir, &target)?;
        Ok(Entry {
            tree: tree::tree_of(&target),
            ..built
        })
    }

    /// Removes a half-built entry after a failed step (best effort: the next open
    /// empties `tmp/` anyway).
    pub fn discard(&self) {
        let _ = tree::remove_all(&self.dir);
    }
}

/// Reads an entry's meta.json without checking the tree.
pub(crate) fn read_meta(dir: &Path) -> Result<Entry, String> {
    let bytes = fs::read(dir.join("meta.json")).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => "meta.json is missing".to_string(),
        _ => format!("reading meta.json: {e}"),
    })?;
    let meta: Meta =
        serde_json::from_slice(&bytes).map_err(|e| format!("meta.json is not valid: {e}"))?;
    Ok(meta.into_entry(dir))
}

/// Verifies the entry in `dir` (named `key`) against its meta.json. `Ok(Err(problem))`
/// means corrupt; `Err` is an I/O failure that says nothing about the entry.
pub(crate) fn check(dir: &Path, key_name: &str) -> Result<Result<Entry, String>, CacheError> {
    let entry = match read_meta(dir) {
        Ok(entry) => entry,
        Err(problem) => return Ok(Err(problem)),
    };
    if key(&entry.revision) != key_name {
        return Ok(Err(format!("meta.json names revision {}", entry.revision)));
    }
    if !entry.tree.is_dir() {
        return Ok(Err("tree/ is missing".into()));
    }
    let found = match tree::summarize(&entry.tree, false) {
        Ok(found) => found,
        Err(e @ (CacheError::NotAFile { .. } | CacheError::BadPath { .. })) => {
            return Ok(Err(e.to_string()));
        }
        Err(CacheError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(Err("a file vanished while verifying".into()));
        }
        Err(e) => return Err(e),
    };
    if found.digest != entry.digest {
        return Ok(Err(format!(
            "digest is {}, meta.json says {}",
            found.digest, entry.digest
        )));
    }
    if (found.files, found.bytes) != (entry.files, entry.bytes) {
        return Ok(Err("file count or size differs from meta.json".into()));
    }
    Ok(Ok(entry))
}
