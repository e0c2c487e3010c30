//! A git bundle made from a verified snapshot that has no Git history of its own (an
//! OCI artifact), so it can cross an air gap like any other bundle
//! (`hawser bundle create --source oci://…`). In: the snapshot directory, a ref name,
//! a commit message. Out: a v2 bundle holding one parentless commit whose tree is the
//! snapshot's files (blobs 100644 or 100755, trees; empty directories cannot be in a
//! git tree and are left out), written with git's object and pack formats, so `git
//! bundle verify` and `git clone` read it and the bundle source checks it as usual.
//! What can go wrong: I/O errors reading the snapshot or writing the pack.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use sha1_checked::{Digest, Sha1};

use super::check::{self, ByteRange};
use super::header::Header;
use super::write::{self, Created};
use crate::source::git::object::{Kind, ObjectId, object_id};
use crate::source::git::pack::Pack;
use crate::source::git::refs::RefSpec;
use crate::source::oci::reference::{Pin, Reference};
use crate::source::{Source, SourceError, SourceKind, SourceSpec};

/// Fetches the OCI artifact `spec` names (every check of the OCI source, the cosign
/// signature included), and writes its files as the bundle `out`, signed with
/// `sign_key`. The commit message names the artifact's revision and, when annotated,
/// the Git commit it was built from; the ref is `refs/heads/<tag>`.
pub fn create_from_oci(
    spec: SourceSpec,
    out: &Path,
    sign_key: Option<&Path>,
) -> Result<Created, SourceError> {
    let tag = match Reference::parse(&spec.url, &spec.reference)
        .map_err(SourceError::Config)?
        .pin
    {
        Pin::Tag(t) => Some(t),
        Pin::Digest(_) => None,
    };
    let name = ref_name(tag.as_deref());
    let limits = spec.limits;
    let source = Source::new(SourceSpec {
        kind: SourceKind::Oci,
        ..spec
    })?;
    let revision = source.resolve()?;
    let staged = out.with_file_name(format!(
        ".{}.artifact-{}",
        out.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let snapshot = source.fetch_to(&revision, &staged)?;
    let mut message = format!("{}@{revision}", source.display_url());
    if let Some(commit) = source.commit_of(&revision) {
        message.push_str(&format!("\n\nBuilt from Git commit {commit}."));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut pack = crate::source::tarball::temp_file()?;
    let packed = pack_tree(&staged, &message, now, &mut pack);
    let _ = fs::remove_dir_all(&staged);
    let packed = packed?;
    // Read the pack back as the bundle source will, before anything is written.
    let len = pack
        .seek(SeekFrom::End(0))
        .map_err(|e| SourceError::write(out, e))?;
    let header = Header {
        version: 2,
        prerequisites: Vec::new(),
        refs: vec![(packed.commit, name.clone())],
        len: 0,
    };
    let files = {
        let mut reader = Pack::open(ByteRange::new(&mut pack, 0, len), limits.max_object_bytes)
            .map_err(|e| SourceError::Git {
                url: out.display().to_string(),
                source: e,
            })?;
        check::inspect(&mut reader, &header, &RefSpec::Full(name.clone()), &limits)
            .map_err(|source| SourceError::Bundle {
                location: out.display().to_string(),
                source,
            })?
            .files
    };
    if files != snapshot.files() {
        return Err(SourceError::Config(format!(
            "the bundle written holds {files} files, the artifact {}",
            snapshot.files()
        )));
    }
    let text = write::header_text(packed.commit, &name, &[]);
    let signature = write::finish(out, &text, &mut pack, sign_key)?;
    Ok(Created {
        reference: name,
        commit: packed.commit.to_string(),
        prerequisites: Vec::new(),
        objects: packed.objects,
        files,
        bundle: out.to_path_buf(),
        signature,
    })
}

/// The commit written, and how many objects the pack holds.
pub struct Packed {
    pub commit: ObjectId,
    pub objects: usize,
}

/// Writes `dir` as blobs and trees plus one commit (`message`, dated `time`, by
/// `hawser <hawser@localhost>`) into `pack`, a pack file with its trailer.
pub fn pack_tree(
    dir: &Path,
    message: &str,
    time: i64,
    pack: &mut File,
) -> Result<Packed, SourceError> {
    let mut objects: Vec<(Kind, Vec<u8>)> = Vec::new();
    let tree = write_tree(dir, &mut objects)?.unwrap_or(empty_tree(&mut objects)?);
    let who = format!("hawser <hawser@localhost> {time} +0000");
    let body = format!("tree {tree}\nauthor {who}\ncommitter {who}\n\n{message}\n");
    let commit = id(Kind::Commit, body.as_bytes())?;
    objects.push((Kind::Commit, body.into_bytes()));
    let werr = |e| SourceError::write(Path::new("temporary pack"), e);
    pack.set_len(0).map_err(werr)?;
    pack.seek(SeekFrom::Start(0)).map_err(werr)?;
    let mut out = HashingWriter {
        inner: io::BufWriter::new(&mut *pack),
        sha: Sha1::new(),
    };
    let count = u32::try_from(objects.len())
        .map_err(|_| SourceError::Config("too many objects for one pack".into()))?;
    let mut head = b"PACK\0\0\0\x02".to_vec();
    head.extend_from_slice(&count.to_be_bytes());
    out.write_all(&head).map_err(werr)?;
    for (kind, data) in &objects {
        out.write_all(&entry_header(*kind, data.len() as u64))
            .map_err(werr)?;
        let mut z = ZlibEncoder::new(&mut out, Compression::default());
        z.write_all(data).map_err(werr)?;
        z.finish().map_err(werr)?;
    }
    let HashingWriter { mut inner, sha } = out;
    inner.write_all(&sha.finalize()).map_err(werr)?;
    inner.flush().map_err(werr)?;
    drop(inner);
    Ok(Packed {
        commit,
        objects: objects.len(),
    })
}

fn id(kind: Kind, data: &[u8]) -> Result<ObjectId, SourceError> {
    object_id(kind, data).map_err(|e| SourceError::Config(format!("hashing a {kind}: {e}")))
}

fn empty_tree(objects: &mut Vec<(Kind, Vec<u8>)>) -> Result<ObjectId, SourceError> {
    objects.push((Kind::Tree, Vec::new()));
    id(Kind::Tree, &[])
}

/// The tree of `dir`, or `None` when it holds no file at any depth.
fn write_tree(
    dir: &Path,
    objects: &mut Vec<(Kind, Vec<u8>)>,
) -> Result<Option<ObjectId>, SourceError> {
    let read = |e| SourceError::ReadFile {
        what: "snapshot",
        path: dir.to_path_buf(),
        source: e,
    };
    let mut entries: Vec<(Vec<u8>, &'static str, ObjectId)> = Vec::new();
    for item in fs::read_dir(dir).map_err(read)? {
        let item = item.map_err(read)?;
        let path = item.path();
        let name = item.file_name().into_encoded_bytes();
        let meta = fs::symlink_metadata(&path).map_err(read)?;
        if meta.is_dir() {
            if let Some(tree) = write_tree(&path, objects)? {
                entries.push((name, "40000", tree));
            }
        } else if meta.is_file() {
            let data = fs::read(&path).map_err(|e| SourceError::ReadFile {
                what: "snapshot file",
                path: path.clone(),
                source: e,
            })?;
            let blob = id(Kind::Blob, &data)?;
            objects.push((Kind::Blob, data));
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                "100755"
            } else {
                "100644"
            };
            entries.push((name, mode, blob));
        }
        // Snapshots hold only files and directories (the source's entry checks).
    }
    if entries.is_empty() {
        return Ok(None);
    }
    // Git orders tree entries by name, a directory as if its name ended in '/'.
    let key = |(name, mode, _): &(Vec<u8>, &str, ObjectId)| {
        let mut k = name.clone();
        if *mode == "40000" {
            k.push(b'/');
        }
        k
    };
    entries.sort_by_key(key);
    let mut body = Vec::new();
    for (name, mode, oid) in &entries {
        body.extend_from_slice(mode.as_bytes());
        body.push(b' ');
        body.extend_from_slice(name);
        body.push(0);
        body.extend_from_slice(&oid.0);
    }
    let tree = id(Kind::Tree, &body)?;
    objects.push((Kind::Tree, body));
    Ok(Some(tree))
}

/// A pack entry's type-and-size header (`gitformat-pack`: 3 type bits, then the size
/// in 4 + 7·n bits, little-endian groups with a continuation bit).
fn entry_header(kind: Kind, size: u64) -> Vec<u8> {
    let t: u8 = match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    };
    let mut out = vec![(t << 4) | (size & 0x0f) as u8];
    let mut rest = size >> 4;
    while rest > 0 {
        if let Some(last) = out.last_mut() {
            *last |= 0x80;
        }
        out.push((rest & 0x7f) as u8);
        rest >>= 7;
    }
    out
}

struct HashingWriter<W: Write> {
    inner: W,
    sha: Sha1,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        Digest::update(&mut self.sha, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A valid one-level git ref name for a tag: `refs/heads/<tag>`, or
/// `refs/heads/artifact` when git would refuse the tag as a ref name.
pub fn ref_name(tag: Option<&str>) -> String {
    match tag {
        Some(t)
            if !t.starts_with(['.', '-'])
                && !t.contains("..")
                && !t.ends_with(".lock")
                && !t.ends_with('.') =>
        {
            format!("refs/heads/{t}")
        }
        _ => "refs/heads/artifact".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_headers_follow_the_pack_format() {
        assert_eq!(entry_header(Kind::Blob, 5), vec![0x35]);
        assert_eq!(entry_header(Kind::Commit, 16), vec![0x90, 0x01]);
        assert_eq!(entry_header(Kind::Tree, 0x1234), vec![0xa4, 0xa3, 0x02]);
    }

    #[test]
    fn ref_names_are_ones_git_accepts() {
        assert_eq!(ref_name(Some("v1.2")), "refs/heads/v1.2");
        assert_eq!(ref_name(Some("a..b")), "refs/heads/artifact");
        assert_eq!(ref_name(Some("x.lock")), "refs/heads/artifact");
        assert_eq!(ref_name(None), "refs/heads/artifact");
    }
}
