//! A snapshot tree on disk: its digest, copying it, and making it durable.
//!
//! The digest is sha256 over the sorted lines `<path>\0<mode>\0<sha256 of content>\n`,
//! one per regular file, `path` relative with `/` separators and `mode` `100644` or
//! `100755` (git's two file modes). Empty directories do not count. Symlinks and other
//! special files are refused: a snapshot is plain files, and following a link could
//! read outside the tree.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::CacheError;

/// What walking a tree found: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeSummary {
    /// `sha256:<hex>`.
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
}

/// Walks `root`, hashing every file; with `sync`, also fsyncs every file and
/// directory so the tree survives a power cut once this returns.
pub(crate) fn summarize(root: &Path, sync: bool) -> Result<TreeSummary, CacheError> {
    let mut lines = Vec::new();
    let mut bytes = 0u64;
    walk(root, root, sync, &mut |rel, mode, hash, len| {
        lines.push(format!("{rel}\0{mode}\0{hash}\n"));
        bytes += len;
    })?;
    lines.sort_unstable();
    let mut digest = Sha256::new();
    for line in &lines {
        digest.update(line.as_bytes());
    }
    Ok(TreeSummary {
        digest: format!("sha256:{}", hex(&digest.finalize())),
        files: lines.len() as u64,
        bytes,
    })
}

type Visit<'a> = dyn FnMut(&str, &str, String, u64) + 'a;

fn walk(root: &Path, dir: &Path, sync: bool, visit: &mut Visit<'_>) -> Result<(), CacheError> {
    let entries = fs::read_dir(dir).map_err(|e| CacheError::io("reading directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CacheError::io("reading directory", dir, e))?;
        let path = entry.path();
        // symlink_metadata: never follow a link out of the tree.
        let meta =
            fs::symlink_metadata(&path).map_err(|e| CacheError::io("inspecting", &path, e))?;
        if meta.is_dir() {
            walk(root, &path, sync, visit)?;
        } else if meta.is_file() {
            let rel = relative(root, &path)?;
            let mode = if is_executable(&meta) {
                "100755"
            } else {
                "100644"
            };
            let (hash, len) = hash_file(&path, sync)?;
            visit(&rel, mode, hash, len);
        } else {
            return Err(CacheError::NotAFile { path });
        }
    }
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> Result<String, CacheError> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| CacheError::BadPath { path: path.into() })?;
    let parts: Option<Vec<&str>> = rel.iter().map(|p| p.to_str()).collect();
    match parts {
        Some(parts) if !parts.is_empty() => Ok(parts.join("/")),
        _ => Err(CacheError::BadPath { path: path.into() }),
    }
}

fn hash_file(path: &Path, sync: bool) -> Result<(String, u64), CacheError> {
    let mut file = File::open(path).map_err(|e| CacheError::io("opening", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| CacheError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    if sync {
        file.sync_all()
            .map_err(|e| CacheError::io("syncing", path, e))?;
    }
    Ok((hex(&hasher.finalize()), len))
}

/// Copies the files of `from` into `to` (which must not exist), keeping the
/// executable bit. Used when the staged tree lives outside the cache's own `tmp/`.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), CacheError> {
    fs::create_dir(to).map_err(|e| CacheError::io("creating", to, e))?;
    let entries = fs::read_dir(from).map_err(|e| CacheError::io("reading directory", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CacheError::io("reading directory", from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src).map_err(|e| CacheError::io("inspecting", &src, e))?;
        if meta.is_dir() {
            copy_tree(&src, &dst)?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).map_err(|e| CacheError::io("copying", &src, e))?;
        } else {
            return Err(CacheError::NotAFile { path: src });
        }
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path` and fsyncs it.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut file = File::create_new(path).map_err(|e| CacheError::io("creating", path, e))?;
    file.write_all(bytes)
        .map_err(|e| CacheError::io("writing", path, e))?;
    file.sync_all()
        .map_err(|e| CacheError::io("syncing", path, e))
}

/// Fsyncs a directory, making the names created or renamed in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CacheError::io("syncing directory", dir, e))
}

/// Renames and fsyncs both directories involved.
pub(crate) fn rename_synced(from: &Path, to: &Path) -> Result<(), CacheError> {
    fs::rename(from, to).map_err(|e| CacheError::io("renaming into place", to, e))?;
    for dir in [to.parent(), from.parent()].into_iter().flatten() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes a file or directory tree; a missing one is fine.
pub(crate) fn remove_all(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A name unlikely to collide inside `tmp/`: process id, nanoseconds and a counter.
pub(crate) fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

/// The entry's tree directory inside an entry directory.
pub(crate) fn tree_of(entry: &Path) -> PathBuf {
    entry.join("tree")
}
