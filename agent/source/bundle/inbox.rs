//! The inbox: a directory where bundles arrive (a USB stick's mount, an sftp drop,
//! a synced folder). In: the directory's `*.bundle` files and their `.sig`s. Out:
//! the newest acceptable bundle, by committer time and then modification time.
//!
//! Files may be mid-copy: a bundle without its `.sig` is waiting, not wrong, and a
//! bundle that fails its checks is retried whenever its size, time or signature
//! changes. Each version of a file is checked once. Nothing in the inbox is touched
//! unless `--inbox-consume`: then bundles applied or superseded move to
//! `processed/`, and refused ones to `rejected/` (a failing bundle only after it
//! failed unchanged on two polls, so a slow copy is not mistaken for a bad one).

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::check::{Ancestry, AppliedCommit, judge};
use super::{BundleError, BundleSource, Checked, sign};
use crate::source::SourceError;
use crate::source::git::object::ObjectId;

/// Most bundles considered per poll (the most recently modified ones): each one's
/// check result, with its commit history, is kept in memory.
const MAX_CANDIDATES: usize = 64;
pub const PROCESSED: &str = "processed";
pub const REJECTED: &str = "rejected";

/// Size and modification time of a bundle and of its signature: when none changed,
/// the bundle is not checked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    sig: Option<(u64, Option<SystemTime>)>,
}

impl Fingerprint {
    /// The fingerprint of the bundle at `path` (following symlinks), if it is a file.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = fs::metadata(path).ok().filter(fs::Metadata::is_file)?;
        let sig = fs::metadata(sign::sig_path(path))
            .ok()
            .filter(fs::Metadata::is_file)
            .map(|m| (m.len(), m.modified().ok()));
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            sig,
        })
    }
}

#[derive(Debug)]
enum Outcome {
    Accepted(Box<Checked>),
    Failed { message: String, polls: u32 },
}

#[derive(Debug)]
struct Seen {
    fingerprint: Fingerprint,
    outcome: Outcome,
}

/// What the inbox has seen, by path.
#[derive(Debug, Default)]
pub struct Inbox {
    seen: HashMap<PathBuf, Seen>,
}

type Found = (String, File, Checked);

impl Inbox {
    /// Checks new or changed bundles and returns the newest acceptable one.
    /// Bundles that would be refused as downgrades of `applied` lose to any that would
    /// not; among equals the later committer time, then the later file, wins.
    pub fn scan(
        &mut self,
        dir: &Path,
        src: &BundleSource,
        applied: Option<AppliedCommit>,
    ) -> Result<Option<Found>, SourceError> {
        let mut candidates = list(dir).map_err(|e| src.err(dir, e))?;
        if candidates.len() > MAX_CANDIDATES {
            tracing::warn!(inbox = %dir.display(), count = candidates.len(),
                "inbox holds too many bundles; considering the {MAX_CANDIDATES} newest");
            candidates.sort_by_key(|(_, f)| std::cmp::Reverse(f.modified));
            candidates.truncate(MAX_CANDIDATES);
        }
        self.seen
            .retain(|path, _| candidates.iter().any(|(p, _)| p == path));
        let mut to_reject = Vec::new();
        for (path, fingerprint) in &candidates {
            if fingerprint.sig.is_none() && !src.options.insecure_allow_unsigned {
                tracing::debug!(bundle = %path.display(), "waiting for its signature");
                self.seen.remove(path);
                continue;
            }
            if let Some(seen) = self.seen.get_mut(path)
                && seen.fingerprint == *fingerprint
            {
                if let Outcome::Failed { polls, .. } = &mut seen.outcome {
                    *polls += 1;
                    if *polls >= 2 {
                        to_reject.push(path.clone());
                    }
                }
                continue;
            }
            let outcome = match src.check_path(path) {
                Ok((_, checked)) => Outcome::Accepted(Box::new(checked)),
                Err(e) => {
                    // Logged once per version of the file, not on every poll.
                    tracing::warn!(bundle = %path.display(), error = %e,
                        "bundle refused (retried when it changes)");
                    Outcome::Failed {
                        message: e.to_string(),
                        polls: 1,
                    }
                }
            };
            self.seen.insert(
                path.clone(),
                Seen {
                    fingerprint: *fingerprint,
                    outcome,
                },
            );
        }
        if src.options.inbox_consume {
            for path in to_reject {
                self.reject(dir, &path);
            }
        }
        let applied = applied.map(|mut a| {
            if a.committer_time.is_none() {
                a.committer_time = self.times().find(|(c, _)| *c == a.commit).map(|(_, t)| t);
            }
            a
        });
        let acceptable = |c: &Checked| {
            src.options.allow_downgrade
                || applied.is_none_or(|a| !matches!(judge(&c.content, &a), Ancestry::Older(_)))
        };
        let best = self
            .seen
            .iter()
            .filter_map(|(path, seen)| match &seen.outcome {
                Outcome::Accepted(c) => Some((path, seen.fingerprint.modified, c)),
                Outcome::Failed { .. } => None,
            })
            .max_by_key(|(path, modified, c)| {
                (acceptable(c), c.content.committer_time, *modified, *path)
            });
        let Some((path, _, checked)) = best else {
            return Ok(None);
        };
        let file = File::open(path).map_err(|e| src.err(path, BundleError::io(path, e)))?;
        Ok(Some((
            path.display().to_string(),
            file,
            (**checked).clone(),
        )))
    }

    /// Committer times of the commits of every accepted bundle.
    pub fn times(&self) -> impl Iterator<Item = (ObjectId, i64)> + '_ {
        self.seen.values().filter_map(|seen| match &seen.outcome {
            Outcome::Accepted(c) => Some((c.content.commit, c.content.committer_time)),
            Outcome::Failed { .. } => None,
        })
    }

    /// Moves every accepted bundle that is not newer than `applied` to `processed/`.
    pub fn consume_processed(&mut self, dir: &Path, applied: &AppliedCommit) {
        let done: Vec<PathBuf> = self
            .seen
            .iter()
            .filter(|(_, seen)| match &seen.outcome {
                Outcome::Accepted(c) => judge(&c.content, applied) != Ancestry::Newer,
                Outcome::Failed { .. } => false,
            })
            .map(|(p, _)| p.clone())
            .collect();
        for path in done {
            self.seen.remove(&path);
            move_to(dir, &path, PROCESSED);
        }
    }

    /// Moves a refused bundle to `rejected/`.
    pub fn reject(&mut self, dir: &Path, path: &Path) {
        if let Some(Seen {
            outcome: Outcome::Failed { message, .. },
            ..
        }) = self.seen.remove(path)
        {
            tracing::warn!(bundle = %path.display(), reason = %message, "moving to {REJECTED}/");
        }
        move_to(dir, path, REJECTED);
    }
}

/// The `*.bundle` regular files directly in `dir`, with their fingerprints.
fn list(dir: &Path) -> Result<Vec<(PathBuf, Fingerprint)>, BundleError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(inbox = %dir.display(), "inbox does not exist (yet)");
            return Ok(out);
        }
        Err(e) => return Err(BundleError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::io(dir, e))?;
        let path = entry.path();
        let is_bundle = path.extension().is_some_and(|e| e == "bundle")
            && !entry.file_name().to_string_lossy().starts_with('.');
        if !is_bundle {
            continue;
        }
        // Follows symlinks: operators may link bundles in; the content is checked anyway.
        if let Some(fingerprint) = Fingerprint::of(&path) {
            out.push((path, fingerprint));
        }
    }
    Ok(out)
}

/// Moves a bundle and its signature into `dir/<sub>/`; failures are logged, since
/// a bundle that stays in the inbox is only checked again, never applied twice.
fn move_to(dir: &Path, bundle: &Path, sub: &str) {
    let target = dir.join(sub);
    if let Err(e) = fs::create_dir_all(&target) {
        tracing::warn!(dir = %target.display(), error = %e, "cannot create inbox subdirectory");
        return;
    }
    for path in [bundle.to_path_buf(), sign::sig_path(bundle)] {
        let Some(name) = path.file_name() else {
            continue;
        };
        match fs::rename(&path, target.join(name)) {
            Ok(()) => tracing::info!(file = %path.display(), to = sub, "moved"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot move"),
        }
    }
}
