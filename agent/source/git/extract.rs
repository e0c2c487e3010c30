//! Tree extraction. In: a verified pack, a commit id, an optional subpath, an empty
//! directory. Out: the whole tree's regular and executable files and directories
//! written (the subpath is only checked to be a directory of the commit: an overlay
//! there may reach `../../base`, so render gets it as a subpath of the whole tree);
//! symlinks kept only when they resolve inside the snapshot, gitlinks skipped
//! with a warning. Limits on file count and total bytes are enforced as files are
//! written; the caller discards the directory on any error.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{BufWriter, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use super::GitError;
use super::object::{EntryMode, Kind, ObjectId, commit_tree, parse_tree};
use super::pack::Pack;
use crate::source::{FetchLimits, SourceError};

/// Symlink hops followed while checking where a link leads (Linux's own limit).
const MAX_HOPS: usize = 40;

/// What was written.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
}

/// Writes the tree of `commit` into `into`, once `subpath` (if any) is found to be a
/// directory in it.
pub fn extract<R: Read + Seek>(
    pack: &mut Pack<R>,
    commit: ObjectId,
    subpath: Option<&str>,
    into: &Path,
    limits: &FetchLimits,
    url: &str,
) -> Result<Extracted, SourceError> {
    let git = |source: GitError| SourceError::Git {
        url: url.to_string(),
        source,
    };
    let data = pack.read(&commit, Kind::Commit).map_err(git)?;
    let root = commit_tree(commit, &data).map_err(git)?;
    let mut tree = root;
    if let Some(sub) = subpath {
        let mut walked = Vec::new();
        for part in sub.split('/').filter(|p| !p.is_empty() && *p != ".") {
            walked.push(part);
            let here = walked.join("/");
            let data = pack.read(&tree, Kind::Tree).map_err(git)?;
            let entries = parse_tree(tree, &data).map_err(git)?;
            let entry = entries
                .iter()
                .find(|e| e.name == part.as_bytes())
                .ok_or_else(|| SourceError::PathNotFound {
                    path: here.clone(),
                    commit: commit.to_string(),
                })?;
            if entry.mode != EntryMode::Tree {
                return Err(SourceError::PathNotDirectory {
                    path: here,
                    commit: commit.to_string(),
                });
            }
            tree = entry.id;
        }
    }

    let mut out = Extracted::default();
    let mut links = Vec::new();
    let mut stack = vec![(root, PathBuf::new())];
    while let Some((tree, rel)) = stack.pop() {
        let data = pack.read(&tree, Kind::Tree).map_err(git)?;
        for entry in parse_tree(tree, &data).map_err(git)? {
            let rel = rel.join(OsStr::from_bytes(entry.name));
            let path = into.join(&rel);
            match entry.mode {
                EntryMode::Tree => {
                    fs::create_dir(&path).map_err(|e| SourceError::write(&path, e))?;
                    stack.push((entry.id, rel));
                }
                EntryMode::File | EntryMode::Executable => {
                    count_file(&mut out, limits)?;
                    let mode = if entry.mode == EntryMode::Executable {
                        0o755
                    } else {
                        0o644
                    };
                    let n = write_file(pack, &entry.id, &path, mode, url)?;
                    add_bytes(&mut out, n, limits)?;
                }
                EntryMode::Symlink => {
                    count_file(&mut out, limits)?;
                    let target = pack.read(&entry.id, Kind::Blob).map_err(git)?;
                    add_bytes(&mut out, target.len() as u64, limits)?;
                    symlink(OsStr::from_bytes(&target), &path)
                        .map_err(|e| SourceError::write(&path, e))?;
                    links.push(rel);
                }
                EntryMode::Gitlink => {
                    // Like `git archive`: an empty directory where the submodule goes.
                    tracing::warn!(path = %rel.display(), commit = %entry.id, "skipping submodule");
                    fs::create_dir(&path).map_err(|e| SourceError::write(&path, e))?;
                }
            }
        }
    }
    for link in links {
        if !resolves_inside(into, &link) {
            return Err(SourceError::SymlinkEscape {
                path: link.display().to_string(),
            });
        }
    }
    Ok(out)
}

fn count_file(out: &mut Extracted, limits: &FetchLimits) -> Result<(), SourceError> {
    out.files += 1;
    if out.files > limits.max_files {
        return Err(SourceError::Limit {
            limit: "max-files",
            max: limits.max_files,
        });
    }
    Ok(())
}

fn add_bytes(out: &mut Extracted, n: u64, limits: &FetchLimits) -> Result<(), SourceError> {
    out.bytes += n;
    if out.bytes > limits.max_total_bytes {
        return Err(SourceError::Limit {
            limit: "max-total-bytes",
            max: limits.max_total_bytes,
        });
    }
    Ok(())
}

fn write_file<R: Read + Seek>(
    pack: &mut Pack<R>,
    id: &ObjectId,
    path: &Path,
    mode: u32,
    url: &str,
) -> Result<u64, SourceError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| SourceError::write(path, e))?;
    let mut w = BufWriter::with_capacity(64 << 10, file);
    let n = pack.write_blob(id, &mut w).map_err(|e| match e {
        GitError::Io(io) => SourceError::write(path, io),
        source => SourceError::Git {
            url: url.to_string(),
            source,
        },
    })?;
    let file: File = w
        .into_inner()
        .map_err(|e| SourceError::write(path, e.into_error()))?;
    // `atomic::replace_dir` fsyncs the whole tree before the rename.
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| SourceError::write(path, e))?;
    Ok(n)
}

/// Follows the symlink at `link` (relative to `root`) through the written tree,
/// component by component, the way the kernel would; false if it ever leaves `root`,
/// is absolute, or loops. A target that does not exist is fine as long as the path
/// to it stays inside.
pub fn resolves_inside(root: &Path, link: &Path) -> bool {
    let mut dir: Vec<OsString> = match link.parent() {
        Some(p) => p.iter().map(OsStr::to_os_string).collect(),
        None => Vec::new(),
    };
    let Some(first) = read_target(root, link) else {
        return false;
    };
    // A stack of path components still to walk, the next one on top.
    let mut pending = Vec::new();
    push_components(&mut pending, &first);
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some(".") | Some("") => continue,
            Some("..") => {
                if dir.pop().is_none() {
                    return false;
                }
            }
            _ => {
                let rel: PathBuf = dir.iter().chain(std::iter::once(&part)).collect();
                let is_link = fs::symlink_metadata(root.join(&rel))
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return false;
                    }
                    let Some(target) = read_target(root, &rel) else {
                        return false;
                    };
                    push_components(&mut pending, &target);
                } else {
                    dir.push(part);
                }
            }
        }
    }
    true
}

/// The target of a symlink; `None` for an absolute target (outside by definition).
fn read_target(root: &Path, rel: &Path) -> Option<PathBuf> {
    let target = fs::read_link(root.join(rel)).ok()?;
    (!target.has_root()).then_some(target)
}

fn push_components(pending: &mut Vec<OsString>, target: &Path) {
    for c in target.components().rev() {
        match c {
            Component::Normal(s) => pending.push(s.to_os_string()),
            Component::ParentDir => pending.push("..".into()),
            // Absolute targets were refused by `read_target`.
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_followed_physically() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir_all(root.join("x")).unwrap();
        symlink("../x", root.join("d/a")).unwrap();
        // Lexically d/a/../.. is the root; physically d/a is x, so this leaves it.
        symlink("d/a/../..", root.join("escape")).unwrap();
        symlink("x/../d/a", root.join("inside")).unwrap();
        symlink("../../etc/passwd", root.join("d/up")).unwrap();
        symlink("/etc/passwd", root.join("abs")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        symlink("missing/file", root.join("dangling")).unwrap();

        assert!(resolves_inside(root, Path::new("d/a")));
        assert!(resolves_inside(root, Path::new("inside")));
        assert!(resolves_inside(root, Path::new("dangling")));
        assert!(!resolves_inside(root, Path::new("escape")));
        assert!(!resolves_inside(root, Path::new("d/up")));
        assert!(!resolves_inside(root, Path::new("abs")));
        assert!(!resolves_inside(root, Path::new("loop1")));
    }
}
