//! What a verified pack says about a bundle: which commit the selected reference
//! names, that its whole tree is in the pack (prerequisites may stand in for
//! history, never for the tree), its committer time, and how much history came
//! along. Then [`judge`]: is that commit newer than the applied one? Pure over a
//! [`Pack`]; no file system, no network.

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};

use super::BundleError;
use super::header::Header;
use crate::source::FetchLimits;
use crate::source::git::object::{EntryMode, Kind, ObjectId, commit_tree, parse_tree, tag_target};
use crate::source::git::pack::Pack;
use crate::source::git::refs::RefSpec;

/// Annotated tags peeled before giving up (git peels at most 10 levels too).
const MAX_PEEL: usize = 10;
/// Ancestors remembered per bundle (about 1 MiB); beyond them history counts as
/// incomplete and the committer time decides.
const MAX_HISTORY: usize = 20_000;

/// The commit a bundle delivers, and what is known of its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// The reference as the bundle names it (or the commit id asked for).
    pub reference: String,
    pub commit: ObjectId,
    /// Seconds since the epoch, from the commit's `committer` line.
    pub committer_time: i64,
    /// Files (regular, executable, symlinks) in the whole tree.
    pub files: u64,
    pub history: History,
}

/// The commits of the pack reachable from the delivered commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The delivered commit's ancestors found in the pack, and its prerequisites.
    pub ancestors: HashSet<ObjectId>,
    /// Every parent was in the pack: the history reaches its root commits.
    pub complete: bool,
}

/// The applied revision the downgrade check compares with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedCommit {
    pub commit: ObjectId,
    pub committer_time: Option<i64>,
}

/// How a bundle's commit relates to the applied one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ancestry {
    /// The applied commit itself: nothing to do.
    Same,
    /// A descendant, or later by committer time when history cannot tell.
    Newer,
    /// Older, or not provably newer; the reason reads after "older than X: ".
    Older(String),
}

/// Descendant → newer; full history without the applied commit → older; otherwise
/// the committer times decide, and an unknown applied time is not proof of newness.
pub fn judge(content: &Content, applied: &AppliedCommit) -> Ancestry {
    if content.commit == applied.commit {
        return Ancestry::Same;
    }
    if content.history.ancestors.contains(&applied.commit) {
        return Ancestry::Newer;
    }
    if content.history.complete {
        return Ancestry::Older("it does not descend from it".into());
    }
    match applied.committer_time {
        Some(t) if content.committer_time >= t => Ancestry::Newer,
        Some(t) => Ancestry::Older(format!(
            "its committer time {} is earlier than {t}",
            content.committer_time
        )),
        None => Ancestry::Older(
            "the bundle's history does not reach it and the applied commit's time is unknown"
                .into(),
        ),
    }
}

/// Reads everything [`Content`] holds, refusing a tree that is not whole.
pub fn inspect<R: Read + Seek>(
    pack: &mut Pack<R>,
    header: &Header,
    spec: &RefSpec,
    limits: &FetchLimits,
) -> Result<Content, BundleError> {
    let (reference, target) = select_ref(header, spec)?;
    let commit = peel(pack, &reference, target)?;
    let data = pack
        .read(&commit, Kind::Commit)
        .map_err(BundleError::Pack)?;
    let (parents, committer_time) = parse_commit(commit, &data)?;
    let tree = commit_tree(commit, &data).map_err(BundleError::Pack)?;
    let incomplete = |missing| BundleError::TreeIncomplete {
        commit,
        missing,
        prerequisites: header.prerequisites.len(),
    };
    let files = count_files(pack, tree, limits, incomplete)?;
    let mut history = History {
        ancestors: header.prerequisites.iter().map(|(id, _)| *id).collect(),
        complete: true,
    };
    let mut seen = HashSet::new();
    let mut queue = parents;
    while let Some(id) = queue.pop() {
        if seen.len() >= MAX_HISTORY {
            history.complete = false;
            break;
        }
        if !seen.insert(id) {
            continue;
        }
        history.ancestors.insert(id);
        if pack.kind(&id) == Some(Kind::Commit) {
            let data = pack.read(&id, Kind::Commit).map_err(BundleError::Pack)?;
            queue.extend(parse_commit(id, &data)?.0);
        } else {
            // A prerequisite (or a commit the bundle simply lacks): history stops here.
            history.complete = false;
        }
    }
    Ok(Content {
        reference,
        commit,
        committer_time,
        files,
        history,
    })
}

/// The reference `spec` selects: `HEAD` (or the only reference when there is no
/// `HEAD`), a full or short name, or a commit id that must be in the pack.
fn select_ref(header: &Header, spec: &RefSpec) -> Result<(String, ObjectId), BundleError> {
    let find = |name: &str| {
        header
            .refs
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| *id)
    };
    let names = || {
        let mut all: Vec<&str> = header.refs.iter().map(|(_, n)| n.as_str()).collect();
        all.dedup();
        let more = all.len().saturating_sub(10);
        let mut list = all.into_iter().take(10).collect::<Vec<_>>().join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        list
    };
    let not_found = |shown: &str| BundleError::RefNotFound {
        reference: shown.to_string(),
        available: names(),
    };
    match spec {
        RefSpec::Commit(id) => Ok((id.to_string(), *id)),
        RefSpec::Head => match find("HEAD") {
            Some(id) => Ok(("HEAD".into(), id)),
            None => match header.refs.as_slice() {
                [(id, name)] => Ok((name.clone(), *id)),
                _ => Err(BundleError::NoHead { available: names() }),
            },
        },
        RefSpec::Full(name) => find(name)
            .map(|id| (name.clone(), id))
            .ok_or_else(|| not_found(name)),
        RefSpec::Short(name) => {
            let branch = format!("refs/heads/{name}");
            let tag = format!("refs/tags/{name}");
            match (find(&branch), find(&tag)) {
                (Some(_), Some(_)) => Err(BundleError::AmbiguousRef {
                    reference: name.clone(),
                    candidates: format!("{branch} and {tag}"),
                }),
                (Some(id), None) => Ok((branch, id)),
                (None, Some(id)) => Ok((tag, id)),
                (None, None) => Err(not_found(name)),
            }
        }
    }
}

/// Follows annotated tags to the commit.
fn peel<R: Read + Seek>(
    pack: &mut Pack<R>,
    reference: &str,
    mut id: ObjectId,
) -> Result<ObjectId, BundleError> {
    for _ in 0..MAX_PEEL {
        match pack.kind(&id) {
            Some(Kind::Commit) => return Ok(id),
            Some(Kind::Tag) => {
                let data = pack.read(&id, Kind::Tag).map_err(BundleError::Pack)?;
                id = tag_target(id, &data).map_err(BundleError::Pack)?.0;
            }
            Some(kind) => {
                return Err(BundleError::NotCommit {
                    reference: reference.to_string(),
                    kind,
                });
            }
            None => {
                return Err(BundleError::NotInPack {
                    reference: reference.to_string(),
                    id,
                });
            }
        }
    }
    Err(BundleError::NotCommit {
        reference: reference.to_string(),
        kind: Kind::Tag,
    })
}

/// Walks the whole tree: every tree must be readable and every file's blob present.
fn count_files<R: Read + Seek>(
    pack: &mut Pack<R>,
    root: ObjectId,
    limits: &FetchLimits,
    incomplete: impl Fn(ObjectId) -> BundleError,
) -> Result<u64, BundleError> {
    let mut files = 0u64;
    let mut stack = vec![root];
    while let Some(tree) = stack.pop() {
        if pack.kind(&tree).is_none() {
            return Err(incomplete(tree));
        }
        let data = pack.read(&tree, Kind::Tree).map_err(BundleError::Pack)?;
        for entry in parse_tree(tree, &data).map_err(BundleError::Pack)? {
            match entry.mode {
                EntryMode::Tree => stack.push(entry.id),
                EntryMode::Gitlink => {}
                EntryMode::File | EntryMode::Executable | EntryMode::Symlink => {
                    match pack.kind(&entry.id) {
                        Some(Kind::Blob) => {}
                        None => return Err(incomplete(entry.id)),
                        Some(actual) => {
                            return Err(BundleError::Pack(
                                crate::source::git::GitError::WrongKind {
                                    id: entry.id,
                                    expected: Kind::Blob,
                                    actual,
                                },
                            ));
                        }
                    }
                    files += 1;
                    if files > limits.max_files {
                        return Err(BundleError::Limit {
                            limit: "max-files",
                            max: limits.max_files,
                        });
                    }
                }
            }
        }
    }
    Ok(files)
}

/// The parents and committer time of a commit object.
pub fn parse_commit(id: ObjectId, data: &[u8]) -> Result<(Vec<ObjectId>, i64), BundleError> {
    let malformed = |what| BundleError::MalformedCommit { commit: id, what };
    let mut parents = Vec::new();
    let mut time = None;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"parent ") {
            let id = std::str::from_utf8(hex)
                .ok()
                .and_then(ObjectId::from_hex)
                .ok_or(malformed("bad parent line"))?;
            parents.push(id);
        } else if let Some(rest) = line.strip_prefix(b"committer ") {
            // `Name <email> <seconds> <tz>`: the seconds follow the last `>`.
            let after = rest.rsplitn(2, |&b| b == b'>').next().unwrap_or_default();
            time = std::str::from_utf8(after)
                .ok()
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse::<i64>().ok());
        }
    }
    Ok((parents, time.ok_or(malformed("no committer time"))?))
}

/// A `Read + Seek` view of `len` bytes of `inner` starting at `start`: the pack
/// inside a bundle file, as the pack decoder expects to see it.
pub struct ByteRange<R> {
    inner: R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> ByteRange<R> {
    pub fn new(inner: R, start: u64, len: u64) -> Self {
        Self {
            inner,
            start,
            len,
            pos: 0,
        }
    }
}

impl<R: Read + Seek> Read for ByteRange<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for ByteRange<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::other("seek before the start of the pack"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
