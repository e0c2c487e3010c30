//! The bytes of git's upload-pack exchange over HTTP: the fetch request of protocol
//! v2 and of v0, the headers that carry them, the response's sections before the
//! pack, and the pack spooled to disk within `max-pack-bytes`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::GitError;
use super::object::ObjectId;
use super::pktline::{PktReader, SideBand, write_delim, write_flush, write_line};
use crate::source::http::io_error;
use crate::source::{FetchLimits, SourceError};

pub(super) fn v2_fetch_request(object_format: bool, wants: &[ObjectId]) -> Vec<u8> {
    let mut body = Vec::new();
    write_line(&mut body, "command=fetch");
    if object_format {
        write_line(&mut body, "object-format=sha1");
    }
    write_delim(&mut body);
    write_line(&mut body, "no-progress");
    write_line(&mut body, "ofs-delta");
    write_line(&mut body, "deepen 1");
    for want in wants {
        write_line(&mut body, &format!("want {want}"));
    }
    write_line(&mut body, "done");
    write_flush(&mut body);
    body
}

/// Skips the sections before `packfile` (`shallow-info`, `wanted-refs`, …).
pub(super) fn skip_to_packfile_v2<R: Read>(pkt: &mut PktReader<R>) -> Result<(), GitError> {
    loop {
        match pkt.read_line()? {
            Some(line) if line == "packfile" => return Ok(()),
            Some(section) if is_v2_section(&section) => while pkt.read_line()?.is_some() {},
            Some(other) => {
                return Err(GitError::Unexpected(format!("line {other:?}")));
            }
            None => {
                return Err(GitError::Unexpected("no packfile section".into()));
            }
        }
    }
}

/// v0: `shallow` lines and a flush (we asked for a depth), then `NAK`.
pub(super) fn skip_to_packfile_v0<R: Read>(pkt: &mut PktReader<R>) -> Result<(), GitError> {
    while let Some(line) = pkt.read_line()? {
        if !line.starts_with("shallow ") && !line.starts_with("unshallow ") {
            return Err(GitError::Unexpected(format!("line {line:?}")));
        }
    }
    match pkt.read_line()? {
        Some(line) if line == "NAK" || line.starts_with("ACK ") => Ok(()),
        other => Err(GitError::Unexpected(format!("expected NAK, got {other:?}"))),
    }
}

fn is_v2_section(name: &str) -> bool {
    matches!(
        name,
        "acknowledgments" | "shallow-info" | "wanted-refs" | "packfile-uris"
    )
}

pub(super) fn rpc_headers(v2: bool) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("Content-Type", "application/x-git-upload-pack-request"),
        ("Accept", "application/x-git-upload-pack-result"),
    ];
    if v2 {
        h.push(("Git-Protocol", "version=2"));
    }
    h
}

pub(super) fn v0_fetch_request(wants: &[ObjectId]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, want) in wants.iter().enumerate() {
        let line = if i == 0 {
            format!(
                "want {want} side-band-64k ofs-delta shallow no-progress agent=git/hawser-{}",
                env!("CARGO_PKG_VERSION")
            )
        } else {
            format!("want {want}")
        };
        write_line(&mut body, &line);
    }
    write_line(&mut body, "deepen 1");
    write_flush(&mut body);
    write_line(&mut body, "done");
    body
}

/// Copies the side-band pack into an unlinked file next to `into`, bounded by the
/// pack limit. The file disappears when its handle is dropped, even on a crash.
pub(super) fn spool<R: Read>(
    into: &Path,
    mut pack: SideBand<R>,
    limits: &FetchLimits,
    url: &str,
) -> Result<File, SourceError> {
    let path = into.with_file_name(format!(
        ".{}.pack",
        into.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| SourceError::write(&path, e))?;
    std::fs::remove_file(&path).map_err(|e| SourceError::write(&path, e))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match pack.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(match GitError::from_io(e) {
                    GitError::Io(io) => io_error(url, io),
                    source => SourceError::Git {
                        url: url.to_string(),
                        source,
                    },
                });
            }
        };
        total += n as u64;
        if total > limits.max_pack_bytes {
            return Err(SourceError::Limit {
                limit: "max-pack-bytes",
                max: limits.max_pack_bytes,
            });
        }
        file.write_all(&buf[..n])
            .map_err(|e| SourceError::write(&path, e))?;
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| SourceError::write(&path, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_requests_never_ask_for_thin_packs() {
        let v0 = String::from_utf8(v0_fetch_request(&[ObjectId([1; 20])])).unwrap();
        assert!(v0.contains("deepen 1") && !v0.contains("thin-pack"), "{v0}");
    }
}
