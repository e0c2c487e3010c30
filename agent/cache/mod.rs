//! The last-known-good cache (`--cache-dir`): verified snapshots on disk, and the
//! state that says which of them is applied and which is good.
//!
//! In: a verified [`Snapshot`] the source wrote into a [`Staging`] directory. Out: an
//! [`Entry`] (a tree on disk whose digest was checked) and the [`State`]. The agent
//! keeps enforcing `applied` from here through Git outages and restarts, so every
//! write is crash-safe: build under `tmp/`, fsync, rename into place, fsync the
//! parent. What can go wrong: I/O errors (named with the path), a tree that holds
//! more than plain files, a corrupt entry (removed, never returned), an unparsable
//! `state.json` (see [`Cache::reset_state`]), another process holding the directory.
//!
//! All of it is blocking file I/O: from async code, call it in `spawn_blocking`.
//!
//! ```text
//! <dir>/lock                        held (flock) while a Cache is open
//! <dir>/state.json                  State
//! <dir>/snapshots/<key>/meta.json   revision, source, digest, files, bytes, stored_at
//! <dir>/snapshots/<key>/tree/       the files
//! <dir>/snapshots/<key>/objects/    raw commit (and tag) objects, who signed them
//! <dir>/tmp/                        staging, half-built entries; emptied on open
//! ```

mod entry;
mod state;
mod tree;

#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod tests;

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::source::{Revision, Snapshot};

pub use entry::Entry;
use entry::key;
pub use state::{Record, Rejected, State};

/// How many snapshots the cache keeps unless told otherwise.
pub const DEFAULT_KEEP: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cache directory {} is in use by another hawser process", dir.display())]
    Locked { dir: PathBuf },
    #[error("{} is not a regular file or directory; a snapshot holds plain files only", path.display())]
    NotAFile { path: PathBuf },
    #[error("{}: the file name is not valid UTF-8", path.display())]
    BadPath { path: PathBuf },
    #[error("revision {revision} is not in the cache at {}", dir.display())]
    NotFound { revision: Revision, dir: PathBuf },
    #[error("cache entry {} for revision {revision} is corrupt ({problem}); removed it from the cache", path.display())]
    Corrupt {
        revision: Revision,
        path: PathBuf,
        problem: String,
    },
    #[error("state file {} is not valid ({source}); reset the state to start fresh", path.display())]
    BadState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("state file {} has an unknown layout (top-level keys: {found}; this agent writes applied, good, rejected, posted)", path.display())]
    UnknownStateLayout { path: PathBuf, found: String },
    #[error("encoding {}: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("unknown cache failpoint {name:?} (known: {})", Failpoint::NAMES.join(", "))]
    UnknownFailpoint { name: String },
}

impl CacheError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        CacheError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// A step at which a test build aborts the process, to prove the cache survives a
/// crash there. Set only from a hidden CLI flag, never from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// The tree is in the half-built entry and synced; no meta.json yet.
    StoreAfterTree,
    /// meta.json is written; the entry directory is not yet synced.
    StoreAfterMeta,
    /// Everything is synced; the entry is about to be renamed into `snapshots/`.
    StoreBeforeRename,
    /// The new state is in a synced temporary file, about to replace `state.json`.
    StateBeforeRename,
}

impl Failpoint {
    pub const NAMES: [&'static str; 4] = [
        "store:after-tree",
        "store:after-meta",
        "store:before-rename",
        "state:before-rename",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl FromStr for Failpoint {
    type Err = CacheError;

    fn from_str(name: &str) -> Result<Self, CacheError> {
        let all = [
            Failpoint::StoreAfterTree,
            Failpoint::StoreAfterMeta,
            Failpoint::StoreBeforeRename,
            Failpoint::StateBeforeRename,
        ];
        all.into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| CacheError::UnknownFailpoint {
                name: name.to_string(),
            })
    }
}

/// An open cache directory. Holds an exclusive lock on `<dir>/lock` until dropped, so
/// two agents never share (and clean up under) one directory.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    snapshots: PathBuf,
    tmp: PathBuf,
    keep: usize,
    failpoint: Option<Failpoint>,
    _lock: File,
}

/// A fresh directory under `<dir>/tmp/` for the source to write a fetched tree into.
/// Removed on drop unless [`Cache::store`] moved it into an entry.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
}

impl Staging {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: anything left is removed by the next `Cache::open`.
        let _ = tree::remove_all(&self.path);
    }
}

impl Cache {
    /// Opens (creating if needed) the cache at `dir`, keeping at most `keep` snapshots
    /// (at least one: the newest is never evicted). Takes the directory's lock and
    /// empties `tmp/` of what a crash left behind.
    pub fn open(dir: impl Into<PathBuf>, keep: usize) -> Result<Cache, CacheError> {
        let dir = dir.into();
        let snapshots = dir.join("snapshots");
        let tmp = dir.join("tmp");
        for d in [&dir, &snapshots, &tmp] {
            fs::create_dir_all(d).map_err(|e| CacheError::io("creating directory", d, e))?;
        }
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| CacheError::io("opening", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(CacheError::Locked { dir }),
            Err(TryLockError::Error(e)) => return Err(CacheError::io("locking", &lock_path, e)),
        }
        let leftovers =
            fs::read_dir(&tmp).map_err(|e| CacheError::io("reading directory", &tmp, e))?;
        for leftover in leftovers {
            let path = leftover
                .map_err(|e| CacheError::io("reading directory", &tmp, e))?
                .path();
            tree::remove_all(&path).map_err(|e| CacheError::io("removing leftover", &path, e))?;
        }
        Ok(Cache {
            dir,
            snapshots,
            tmp,
            keep: keep.max(1),
            failpoint: None,
            _lock: lock,
        })
    }

    /// Arms a failpoint: the process aborts when it reaches that step. For crash tests.
    pub fn with_failpoint(mut self, failpoint: Failpoint) -> Cache {
        self.failpoint = Some(failpoint);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh, empty directory on the cache's filesystem, so [`Cache::store`] can move
    /// it into place instead of copying.
    pub fn staging_dir(&self) -> Result<Staging, CacheError> {
        let path = self.tmp.join(tree::unique_name("staging"));
        fs::create_dir(&path).map_err(|e| CacheError::io("creating directory", &path, e))?;
        Ok(Staging { path })
    }

    /// Stores a verified snapshot and returns the entry: its tree, and the raw
    /// commit (and tag) objects and their signers when the source kept them
    /// ([`Entry::objects`], [`Entry::verified`]). A snapshot fetched into
    /// [`Cache::staging_dir`] is moved (and its directory consumed); one anywhere
    /// else is copied. Storing a revision already present (and intact) returns the
    /// existing entry and changes nothing. Afterwards at most `keep` entries remain;
    /// the ones `state.json` names as applied or good always stay.
    ///
    /// Only a source makes a [`Snapshot`], after verifying what it fetched, so a
    /// directory that no source checked cannot be stored:
    ///
    /// ```compile_fail,E0624
    /// # fn f(cache: &hawser::cache::Cache, revision: hawser::source::Revision) {
    /// let snapshot = hawser::source::Snapshot::new(revision, "/tmp/x".into(), 0, 0, String::new());
    /// cache.store(snapshot);
    /// # }
    /// ```
    pub fn store(&self, snapshot: Snapshot) -> Result<Entry, CacheError> {
        let revision = snapshot.revision();
        if fs::symlink_metadata(self.snapshots.join(key(revision))).is_ok() {
            match self.load(revision) {
                Ok(entry) => return Ok(entry),
                // Moved aside by `load`: store the fresh copy in its place.
                Err(CacheError::Corrupt { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let pending = entry::Pending::new(&self.tmp, revision, snapshot.source());
        let entry = self
            .build(&pending, &snapshot)
            .inspect_err(|_| pending.discard())?;
        if let Err(e) = self.evict(&key(revision)) {
            tracing::warn!(error = %e, "evicting old cache entries failed; will retry on the next store");
        }
        Ok(entry)
    }

    /// The steps of [`Cache::store`] after the checks, in crash order.
    fn build(&self, pending: &entry::Pending, snapshot: &Snapshot) -> Result<Entry, CacheError> {
        let staged = snapshot.dir();
        let moved = staged.starts_with(&self.tmp) && staged != self.tmp;
        let summary = pending.take_tree(staged, moved)?;
        if let Some(objects) = snapshot.objects() {
            pending.write_objects(objects, snapshot.verified())?;
        }
        self.failpoint(Failpoint::StoreAfterTree);
        let meta = pending.write_meta(&summary)?;
        self.failpoint(Failpoint::StoreAfterMeta);
        pending.sync()?;
        self.failpoint(Failpoint::StoreBeforeRename);
        pending.commit(&self.snapshots, meta)
    }

    /// Loads the entry for `revision`, re-verifying the digest of every file on disk.
    /// A corrupt or half-written entry is renamed out of `snapshots/` in one step, then
    /// deleted (or by the next open, if deleting fails), and reported as
    /// [`CacheError::Corrupt`]; the log line keeps what was wrong with it.
    pub fn load(&self, revision: &Revision) -> Result<Entry, CacheError> {
        let key = key(revision);
        let dir = self.snapshots.join(&key);
        if fs::symlink_metadata(&dir).is_err() {
            return Err(CacheError::NotFound {
                revision: revision.clone(),
                dir: self.dir.clone(),
            });
        }
        match entry::check(&dir, &key)? {
            Ok(entry) => Ok(entry),
            Err(problem) => {
                tracing::warn!(%revision, path = %dir.display(), problem, "cache entry is corrupt; removing it");
                self.remove_entry(&dir)?;
                Err(CacheError::Corrupt {
                    revision: revision.clone(),
                    path: dir,
                    problem,
                })
            }
        }
    }

    /// Removes the entry for `revision` (one that no longer verifies), if present.
    pub fn discard(&self, revision: &Revision) -> Result<(), CacheError> {
        let dir = self.snapshots.join(key(revision));
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        self.remove_entry(&dir)
    }

    /// The entries present, newest first, read from their meta.json without
    /// verifying trees (for `hawser status`; use [`Cache::load`] to use one).
    pub fn list(&self) -> Result<Vec<Entry>, CacheError> {
        let mut entries: Vec<Entry> = self.keys()?.into_iter().filter_map(|(_, e)| e).collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.stored_at()));
        Ok(entries)
    }

    /// Every directory in `snapshots/` with its meta, if readable.
    fn keys(&self) -> Result<Vec<(PathBuf, Option<Entry>)>, CacheError> {
        let read = |e| CacheError::io("reading directory", &self.snapshots, e);
        let mut found = Vec::new();
        for item in fs::read_dir(&self.snapshots).map_err(read)? {
            let path = item.map_err(read)?.path();
            found.push((path.clone(), entry::read_meta(&path).ok()));
        }
        Ok(found)
    }

    /// Removes the oldest entries beyond `keep`, sparing `just_stored` and the applied
    /// and good revisions. With an unreadable state nothing is evicted: what is
    /// protected is unknown.
    fn evict(&self, just_stored: &str) -> Result<(), CacheError> {
        let state = self.state()?;
        let mut protected: Vec<String> = state.protected().map(key).collect();
        protected.push(just_stored.to_string());
        let all = self.keys()?;
        let excess = all.len().saturating_sub(self.keep);
        // Oldest first; meta.json's mtime breaks ties within a second. Unreadable
        // entries sort first: they are broken anyway.
        let mut candidates: Vec<(PathBuf, (u64, SystemTime))> = all
            .into_iter()
            .filter(|(path, _)| {
                !protected
                    .iter()
                    .any(|p| path.file_name() == Some(p.as_ref()))
            })
            .map(|(path, entry)| {
                let written = fs::metadata(path.join("meta.json")).and_then(|m| m.modified());
                let age = (
                    entry.map_or(0, |e| e.stored_at()),
                    written.unwrap_or(UNIX_EPOCH),
                );
                (path, age)
            })
            .collect();
        candidates.sort_by_key(|(_, age)| *age);
        for (path, _) in candidates.into_iter().take(excess) {
            tracing::debug!(path = %path.display(), "evicting cache entry");
            self.remove_entry(&path)?;
        }
        Ok(())
    }

    /// Takes an entry out of `snapshots/` atomically (rename into `tmp/`), then deletes
    /// it; if deleting fails, the next open finishes the job.
    fn remove_entry(&self, path: &Path) -> Result<(), CacheError> {
        let aside = self.tmp.join(tree::unique_name("removed"));
        tree::rename_synced(path, &aside)?;
        let _ = tree::remove_all(&aside);
        Ok(())
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The saved state; a missing file is the empty state.
    pub fn state(&self) -> Result<State, CacheError> {
        state::read(&self.state_path())
    }

    /// Replaces the saved state atomically: a crash leaves the old or the new state,
    /// never a mix.
    pub fn save_state(&self, new: &State) -> Result<(), CacheError> {
        let pending = state::prepare(&self.tmp, new)?;
        self.failpoint(Failpoint::StateBeforeRename);
        state::commit(pending, &self.state_path())
    }

    /// Starts fresh after [`CacheError::BadState`]: the unreadable file is kept as
    /// `state.json.bad` for inspection (replacing an older one) and the state is empty.
    pub fn reset_state(&self) -> Result<(), CacheError> {
        let path = self.state_path();
        let bad = self.dir.join("state.json.bad");
        match fs::rename(&path, &bad) {
            Ok(()) => tree::sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CacheError::io("moving aside", &path, e)),
        }
    }

    fn failpoint(&self, at: Failpoint) {
        if self.failpoint == Some(at) {
            tracing::error!(failpoint = at.name(), "cache failpoint reached; aborting");
            std::process::abort();
        }
    }
}

/// Reads `<dir>/state.json` without opening (locking) the cache, for `hawser status`
/// while an agent runs. A missing file is the empty state.
pub fn read_state(dir: &Path) -> Result<State, CacheError> {
    state::read(&dir.join("state.json"))
}
