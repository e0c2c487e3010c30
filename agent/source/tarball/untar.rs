//! Archive extraction, entry by entry, without `tar`'s own `unpack`. In: a (possibly
//! gzipped) tar stream and an empty directory. Out: its regular files and directories.
//! Refused: absolute paths, `..`, links, devices, fifos, unknown entry types, and
//! duplicates. Capped: entry size, file count, bytes written and bytes decompressed
//! (so a gzip bomb stops at the limit). Extension headers are read by hand with a
//! small cap, because `tar` would buffer them whole.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use tar::{Archive, EntryType, PaxExtensions};

use crate::source::{FetchLimits, SourceError};

/// Largest pax or GNU long-name header accepted.
const MAX_EXTENSION: u64 = 1 << 20;

/// Why an entry was refused; the caller adds the URL.
#[derive(Debug)]
pub enum UntarError {
    Unsafe { path: String, reason: &'static str },
    Invalid(String),
    Source(SourceError),
}

type Result<T> = std::result::Result<T, UntarError>;

/// Tar headers and padding allowed on top of `max_total_bytes` of file content.
const HEADER_SLACK: u64 = 64 << 20;

/// Opens the archive bytes, gunzipping when they start with the gzip magic, and caps
/// the decompressed stream at `max_total_bytes` plus room for headers.
pub fn open<R: Read + 'static>(mut raw: R, max_total_bytes: u64) -> io::Result<Box<dyn Read>> {
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut raw, &mut magic)?;
    let head = io::Cursor::new(magic[..n].to_vec()).chain(raw);
    let inner: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(GzDecoder::new(BufReader::new(head)))
    } else {
        Box::new(head)
    };
    Ok(Box::new(Capped {
        inner,
        left: max_total_bytes.saturating_add(HEADER_SLACK),
        limit: max_total_bytes,
    }))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The commit id `git archive` records in its pax global header, if the archive
/// starts with one.
pub fn commit_id(stream: Box<dyn Read>) -> Option<String> {
    let mut archive = Archive::new(stream);
    let mut entries = archive.entries().ok()?.raw(true);
    let mut first = entries.next()?.ok()?;
    if first.header().entry_type() != EntryType::XGlobalHeader || first.size() > MAX_EXTENSION {
        return None;
    }
    let mut data = Vec::new();
    first.read_to_end(&mut data).ok()?;
    PaxExtensions::new(&data)
        .filter_map(|e| e.ok())
        .find(|e| e.key() == Ok("comment"))
        .and_then(|e| e.value().ok().map(str::to_string))
        .filter(|v| crate::encoding::is_commit_id(v))
}

/// What was written.
#[derive(Debug, Default)]
pub struct Written {
    pub files: u64,
    pub bytes: u64,
}

/// Extracts `stream` into the empty directory `into`.
pub fn extract(stream: Box<dyn Read>, into: &Path, limits: &FetchLimits) -> Result<Written> {
    let mut archive = Archive::new(stream);
    let entries = archive.entries().map_err(io_invalid)?.raw(true);
    let mut long_name: Option<Vec<u8>> = None;
    let mut out = Written::default();
    for entry in entries {
        let mut entry = entry.map_err(io_invalid)?;
        let kind = entry.header().entry_type();
        let size = entry.size();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            if size > MAX_EXTENSION {
                return Err(UntarError::Invalid("oversized extension header".into()));
            }
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(io_invalid)?;
            match kind {
                EntryType::XHeader => {
                    for ext in PaxExtensions::new(&data).flatten() {
                        match ext.key() {
                            Ok("path") => long_name = Some(ext.value_bytes().to_vec()),
                            Ok("size") => {
                                return Err(UntarError::Invalid(
                                    "pax size overrides are not supported".into(),
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                EntryType::GNULongName => {
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    long_name = Some(data);
                }
                _ => {}
            }
            continue;
        }
        let raw_path = long_name
            .take()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let unsafe_entry = |reason| UntarError::Unsafe {
            path: shown.clone(),
            reason,
        };
        let rel = sanitize(&raw_path).map_err(unsafe_entry)?;
        match kind {
            EntryType::Directory => {
                if !rel.as_os_str().is_empty() {
                    create_dirs(&into.join(&rel))?;
                }
            }
            EntryType::Regular | EntryType::Continuous => {
                if rel.as_os_str().is_empty() {
                    return Err(unsafe_entry("empty file name"));
                }
                if size > limits.max_object_bytes {
                    return Err(limit("max-object-bytes", limits.max_object_bytes));
                }
                out.files += 1;
                if out.files > limits.max_files {
                    return Err(limit("max-files", limits.max_files));
                }
                out.bytes += size;
                if out.bytes > limits.max_total_bytes {
                    return Err(limit("max-total-bytes", limits.max_total_bytes));
                }
                let path = into.join(&rel);
                if let Some(parent) = path.parent() {
                    create_dirs(parent)?;
                }
                let exec = entry
                    .header()
                    .mode()
                    .map(|m| m & 0o111 != 0)
                    .unwrap_or(false);
                write_file(&mut entry, &path, size, exec).map_err(|e| match e {
                    FileError::Exists => unsafe_entry("duplicate entry"),
                    FileError::Short => {
                        UntarError::Invalid(format!("entry {shown:?} is truncated"))
                    }
                    FileError::Read(e) => io_invalid(e),
                    FileError::Write(e) => UntarError::Source(SourceError::write(&path, e)),
                })?;
            }
            EntryType::Symlink | EntryType::Link => {
                return Err(unsafe_entry("links are not allowed"));
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(unsafe_entry("devices and fifos are not allowed"));
            }
            _ => return Err(unsafe_entry("unsupported entry type")),
        }
    }
    Ok(out)
}

/// A relative path of normal components, or the reason it is refused.
fn sanitize(raw: &[u8]) -> std::result::Result<PathBuf, &'static str> {
    use std::os::unix::ffi::OsStrExt;
    if raw.first() == Some(&b'/') {
        return Err("absolute path");
    }
    if raw.contains(&0) {
        return Err("nul byte in path");
    }
    let mut path = PathBuf::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("path contains .."),
            name => path.push(std::ffi::OsStr::from_bytes(name)),
        }
    }
    Ok(path)
}

fn create_dirs(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| UntarError::Source(SourceError::write(path, e)))
}

enum FileError {
    Exists,
    Short,
    Read(io::Error),
    Write(io::Error),
}

fn write_file(
    entry: &mut impl Read,
    path: &Path,
    size: u64,
    exec: bool,
) -> std::result::Result<(), FileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => FileError::Exists,
            _ => FileError::Write(e),
        })?;
    let mut buf = vec![0u8; 64 << 10];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = entry.read(&mut buf[..want]).map_err(FileError::Read)?;
        if n == 0 {
            return Err(FileError::Short);
        }
        io::Write::write_all(&mut file, &buf[..n]).map_err(FileError::Write)?;
        left -= n as u64;
    }
    let mode = if exec { 0o755 } else { 0o644 };
    // `atomic::replace_dir` fsyncs the whole tree before the rename.
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(FileError::Write)
}

fn limit(limit: &'static str, max: u64) -> UntarError {
    UntarError::Source(SourceError::Limit { limit, max })
}

fn io_invalid(e: io::Error) -> UntarError {
    match e.get_ref().and_then(|i| i.downcast_ref::<CapExceeded>()) {
        Some(c) => limit("max-total-bytes", c.0),
        None => UntarError::Invalid(e.to_string().replace('\n', " ")),
    }
}

/// The decompressed stream went past its cap.
#[derive(Debug)]
struct CapExceeded(u64);

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "decompressed archive exceeds the max-total-bytes limit of {}",
            self.0
        )
    }
}

impl std::error::Error for CapExceeded {}

struct Capped {
    inner: Box<dyn Read>,
    left: u64,
    limit: u64,
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Allow a clean end exactly at the cap; anything more is a bomb.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(CapExceeded(self.limit))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "untar_tests.rs"]
mod tests;
