//! Writing a bundle (`hawser bundle create`). In: a Git source and a ref. Out: a v2
//! git bundle at `--out`, optionally signed. The pack is the depth-1 pack hawser's
//! Git client fetches anyway: the commit and its whole tree. The commit's parents
//! are not in it, so they are listed as prerequisites, exactly as git does for
//! bundles of shallow history; `git bundle verify` accepts the file in any
//! repository that has those parents, and hawser needs only the tree.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::check::{self, ByteRange};
use super::header::Header;
use super::sign;
use crate::source::git::object::{Kind, ObjectId};
use crate::source::git::pack::Pack;
use crate::source::git::protocol::GitSource;
use crate::source::git::refs::RefSpec;
use crate::source::{SourceError, SourceKind, SourceSpec};

/// What `bundle create` wrote.
#[derive(Debug, serde::Serialize)]
pub struct Created {
    pub reference: String,
    pub commit: String,
    pub prerequisites: Vec<String>,
    pub objects: usize,
    pub files: u64,
    pub bundle: PathBuf,
    pub signature: Option<PathBuf>,
}

/// Fetches `spec.reference` from the Git source `spec`, writes it as a bundle to
/// `out` (atomically) and signs it with `sign_key` through `ssh-keygen -Y sign`.
pub fn create(
    spec: SourceSpec,
    out: &Path,
    sign_key: Option<&Path>,
) -> Result<Created, SourceError> {
    let shown = crate::source::redact_url(&spec.url);
    let bundle_err = |source| SourceError::Bundle {
        location: out.display().to_string(),
        source,
    };
    let limits = spec.limits;
    let (name, source, commit) = resolve_name(spec)?;
    let mut pack_file = source.fetch_pack(commit, out)?;
    let len = pack_file
        .seek(SeekFrom::End(0))
        .map_err(|e| SourceError::write(out, e))?;
    let (prerequisites, objects, files) = {
        let mut pack = Pack::open(
            ByteRange::new(&mut pack_file, 0, len),
            limits.max_object_bytes,
        )
        .map_err(|e| SourceError::Git {
            url: shown.clone(),
            source: e,
        })?;
        let data = pack
            .read(&commit, Kind::Commit)
            .map_err(|e| SourceError::Git {
                url: shown.clone(),
                source: e,
            })?;
        let (parents, _) = check::parse_commit(commit, &data).map_err(bundle_err)?;
        let header = Header {
            version: 2,
            prerequisites: parents.iter().map(|p| (*p, String::new())).collect(),
            refs: vec![(commit, name.clone())],
            len: 0,
        };
        let content = check::inspect(&mut pack, &header, &RefSpec::Full(name.clone()), &limits)
            .map_err(bundle_err)?;
        (parents, pack.len(), content.files)
    };
    let header = header_text(commit, &name, &prerequisites);
    let signed = finish(out, &header, &mut pack_file, sign_key)?;
    Ok(Created {
        reference: name,
        commit: commit.to_string(),
        prerequisites: prerequisites.iter().map(ToString::to_string).collect(),
        objects,
        files,
        bundle: out.to_path_buf(),
        signature: signed,
    })
}

/// Writes `header` and `pack` as the bundle `out`, signs it with `sign_key`, and
/// renames both into place only when complete; returns the signature's path.
pub(super) fn finish(
    out: &Path,
    header: &str,
    pack_file: &mut File,
    sign_key: Option<&Path>,
) -> Result<Option<PathBuf>, SourceError> {
    let tmp = sibling(out, "tmp");
    let written = write_bundle(&tmp, header, pack_file).and_then(|()| match sign_key {
        Some(key) => sign::sign_with_ssh_keygen(&tmp, key)
            .map(Some)
            .map_err(|e| io::Error::other(e.to_string())),
        None => Ok(None),
    });
    let signed = match written {
        Ok(signed) => signed,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(sign::sig_path(&tmp));
            return Err(SourceError::write(out, e));
        }
    };
    // The old signature goes first: a bundle without one is "not complete yet" to an
    // inbox watching `out`, while a stale one would look like tampering.
    let sig_out = sign::sig_path(out);
    match fs::remove_file(&sig_out) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(SourceError::write(&sig_out, e));
        }
        _ => {}
    }
    fs::rename(&tmp, out).map_err(|e| SourceError::write(out, e))?;
    if let Some(sig) = &signed {
        fs::rename(sig, &sig_out).map_err(|e| SourceError::write(&sig_out, e))?;
    }
    Ok(signed.map(|_| sig_out))
}

/// The bundle header: the parents as prerequisites, one reference.
pub fn header_text(commit: ObjectId, name: &str, prerequisites: &[ObjectId]) -> String {
    let mut text = String::from("# v2 git bundle\n");
    for p in prerequisites {
        text.push_str(&format!("-{p}\n"));
    }
    text.push_str(&format!("{commit} {name}\n\n"));
    text
}

/// Chooses the full ref name the bundle will list and resolves it. A short name is
/// tried as a branch, then as a tag; a commit id or `HEAD` is listed as `HEAD`; an
/// annotated tag is listed peeled (pointing at its commit: the pack holds no tag).
fn resolve_name(spec: SourceSpec) -> Result<(String, GitSource, ObjectId), SourceError> {
    let candidates = match RefSpec::parse(&spec.reference)? {
        RefSpec::Head | RefSpec::Commit(_) => vec![None],
        RefSpec::Full(name) => vec![Some(name)],
        RefSpec::Short(name) => vec![
            Some(format!("refs/heads/{name}")),
            Some(format!("refs/tags/{name}")),
        ],
    };
    let mut last = None;
    for candidate in candidates {
        let mut spec = spec.clone();
        spec.kind = SourceKind::Git;
        spec.path = None;
        if let Some(full) = &candidate {
            spec.reference = full.clone();
        }
        let source = GitSource::new(spec)?;
        match source.resolve() {
            Ok(revision) => {
                let commit = revision.commit_id().ok_or_else(|| {
                    SourceError::Config(format!("revision {revision} is not a commit"))
                })?;
                return Ok((candidate.unwrap_or_else(|| "HEAD".into()), source, commit));
            }
            Err(SourceError::RefNotFound { url, .. }) => last = Some(url),
            Err(e) => return Err(e),
        }
    }
    Err(SourceError::RefNotFound {
        url: last.unwrap_or_else(|| crate::source::redact_url(&spec.url)),
        reference: spec.reference,
    })
}

fn write_bundle(path: &Path, header: &str, pack: &mut File) -> io::Result<()> {
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let mut w = BufWriter::with_capacity(64 << 10, file);
    w.write_all(header.as_bytes())?;
    pack.seek(SeekFrom::Start(0))?;
    io::copy(pack, &mut w)?;
    let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()
}

fn sibling(out: &Path, what: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}
