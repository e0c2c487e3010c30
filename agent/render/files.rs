//! Reading the files a kustomization names, confined to the revision.
//!
//! In: the revision's root directory and paths as kustomizations write them
//! (relative to the kustomization's directory). Out: file contents and directory
//! listings, within the [`ParseLimits`]. What can go wrong: absolute paths, paths that
//! leave the revision, symlinks anywhere on the way (they could point outside it),
//! files leaving the kustomization's own directory (kustomize's default
//! `LoadRestrictionsRootOnly`), and the size budgets.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::manifests::{ManifestError, ParseLimits};

use super::RenderError;

/// The revision's files, with the running totals of the budgets.
#[derive(Debug)]
pub struct Files<'a> {
    root: PathBuf,
    pub limits: &'a ParseLimits,
    total_bytes: u64,
    files: usize,
    /// Keys for the SOPS-encrypted files read through here: `secretGenerator`
    /// sources and patches, decrypted before Kustomize as Flux does.
    pub decryption: super::sops::Decryption,
}

/// A directory inside the revision: `""` for the root, else `a/b` without slashes at
/// either end.
pub type Dir = String;

/// The names kustomize looks for, in its order of preference.
pub const KUSTOMIZATION_NAMES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

impl<'a> Files<'a> {
    pub fn new(root: &Path, limits: &'a ParseLimits) -> Self {
        Self {
            root: root.to_path_buf(),
            limits,
            total_bytes: 0,
            files: 0,
            decryption: super::sops::Decryption::default(),
        }
    }

    /// Resolves `path` as written in the kustomization at `file` (in directory
    /// `base`) to a revision-relative path, refusing absolute paths and paths that
    /// leave the revision. Does not touch the disk.
    pub fn join(
        &self,
        base: &str,
        path: &str,
        file: &str,
        field: &str,
    ) -> Result<Dir, RenderError> {
        let refuse = |reason: &str| RenderError::field(file, field, format!("{path:?}: {reason}"));
        if path.is_empty() {
            return Err(refuse("empty path"));
        }
        if Path::new(path).has_root() || path.starts_with('\\') {
            return Err(refuse(
                "absolute paths are refused; paths are relative to the kustomization",
            ));
        }
        let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
        for component in Path::new(path).components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    if parts.pop().is_none() {
                        return Err(refuse("the path leaves the revision"));
                    }
                }
                Component::Normal(name) => match name.to_str() {
                    Some(name) => parts.push(name),
                    None => return Err(refuse("the path is not UTF-8")),
                },
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refuse("absolute paths are refused"));
                }
            }
        }
        Ok(parts.join("/"))
    }

    /// What is at `rel`, refusing symlinks on the way. `None` when nothing is there.
    pub fn kind(&self, rel: &str, file: &str, field: &str) -> Result<Option<Kind>, RenderError> {
        let mut path = self.root.clone();
        let mut shown = String::new();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            path.push(part);
            if !shown.is_empty() {
                shown.push('/');
            }
            shown.push_str(part);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(RenderError::field(
                        file,
                        field,
                        format!(
                            "{shown}: symlinks are refused (they could point outside the revision)"
                        ),
                    ));
                }
                Ok(_) => {}
                Err(_) => return Ok(None),
            }
        }
        let meta = fs::symlink_metadata(&path).map_err(|source| io(rel, source))?;
        Ok(Some(if meta.is_dir() { Kind::Dir } else { Kind::File }))
    }

    /// The kustomization file in `dir`, if there is one.
    pub fn kustomization_in(&self, dir: &str) -> Result<Option<String>, RenderError> {
        for name in KUSTOMIZATION_NAMES {
            let rel = child(dir, name);
            if let Some(Kind::File) = self.kind(&rel, &rel, "kustomization")? {
                return Ok(Some(rel));
            }
        }
        Ok(None)
    }

    /// How many files were read.
    pub fn count(&self) -> usize {
        self.files
    }

    /// Reads a file within the budgets, as bytes.
    pub fn read(&mut self, rel: &str) -> Result<Vec<u8>, RenderError> {
        self.files += 1;
        if self.files > self.limits.max_files {
            return Err(ManifestError::TooManyFiles {
                file: rel.to_string(),
                limit: self.limits.max_files,
            }
            .into());
        }
        let limit = self.limits.max_file_bytes;
        let path = self.root.join(rel);
        let file = File::open(&path).map_err(|source| io(rel, source))?;
        let mut bytes = Vec::new();
        // `take` guards against a file that grows while it is read.
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| io(rel, source))?;
        let size = bytes.len() as u64;
        if size > limit {
            return Err(ManifestError::FileTooLarge {
                file: rel.to_string(),
                size,
                limit,
            }
            .into());
        }
        self.total_bytes = self.total_bytes.saturating_add(size);
        if self.total_bytes > self.limits.max_total_bytes {
            return Err(ManifestError::TotalTooLarge {
                file: rel.to_string(),
                limit: self.limits.max_total_bytes,
            }
            .into());
        }
        Ok(bytes)
    }

    /// Reads a text file within the budgets.
    pub fn read_text(&mut self, rel: &str) -> Result<String, RenderError> {
        String::from_utf8(self.read(rel)?).map_err(|_| {
            ManifestError::NotUtf8 {
                file: rel.to_string(),
            }
            .into()
        })
    }
}

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// `dir/name`, or `name` at the root.
pub fn child(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory a revision-relative file is in.
pub fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Whether `rel` is `dir` or below it.
pub fn is_within(rel: &str, dir: &str) -> bool {
    dir.is_empty() || rel == dir || rel.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

fn io(rel: &str, source: std::io::Error) -> RenderError {
    ManifestError::Io {
        path: if rel.is_empty() {
            ".".to_string()
        } else {
            rel.to_string()
        },
        source,
    }
    .into()
}
