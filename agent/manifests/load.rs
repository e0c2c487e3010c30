//! Walking a directory: which files are manifests, in which order, within budgets.
//!
//! Rules: `*.yaml`, `*.yml` and `*.json` files, recursively, each directory's entries
//! sorted by name (bytewise). Hidden entries (names starting with `.`: `.git`,
//! `.github`, …) are skipped, and so are symlinks, which could point outside the
//! revision. `.hawserignore` files (see [`ignore`](super::ignore)) apply to their
//! directory and below, including those above a `--path` subdirectory. Kustomization
//! files are skipped with a warning; a directory whose only manifest is a
//! kustomization is an error, because its real content would need rendering.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path};

use super::ignore::{IgnoreFile, IgnoreStack};
use super::yaml::{Parsed, Parser};
use super::{Document, Location, ManifestError, ParseLimits};

/// The documents of a directory, with what the walk noticed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// Every non-empty document, in file order.
    pub documents: Vec<Document>,
    /// How many manifest files were read.
    pub files: usize,
    /// Skipped kustomizations and symlinks, one line each.
    pub warnings: Vec<String>,
}

/// Loads every manifest under `root` (or under `root/subpath`). Documents are parsed,
/// not yet checked: see [`build`](super::build).
pub fn load_dir(
    root: &Path,
    subpath: Option<&Path>,
    limits: &ParseLimits,
) -> Result<Vec<Document>, ManifestError> {
    load(root, subpath, limits).map(|loaded| loaded.documents)
}

/// Like [`load_dir`], also returning the file count and warnings.
pub fn load(
    root: &Path,
    subpath: Option<&Path>,
    limits: &ParseLimits,
) -> Result<Loaded, ManifestError> {
    let mut walk = Walk {
        limits,
        parser: Parser::new(limits),
        loaded: Loaded::default(),
        total_bytes: 0,
        entries: 0,
        ignores: IgnoreStack::default(),
    };
    let meta = fs::metadata(root).map_err(|source| ManifestError::Io {
        path: root.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ManifestError::BadPath {
            path: root.display().to_string(),
            reason: "not a directory",
        });
    }
    // Descend to the subpath, picking up the ignore files on the way.
    let mut dir = root.to_path_buf();
    let mut rel = String::new();
    for component in subpath.map(Path::components).into_iter().flatten() {
        let name = match component {
            Component::CurDir => continue,
            Component::Normal(name) => name.to_str(),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => None,
        };
        let bad_path = |reason| ManifestError::BadPath {
            path: subpath.map(|p| p.display().to_string()).unwrap_or_default(),
            reason,
        };
        let Some(name) = name else {
            return Err(bad_path(
                "--path must be a relative path inside the directory",
            ));
        };
        walk.read_ignore_file(&dir, &rel)?;
        dir.push(name);
        rel.push_str(name);
        rel.push('/');
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(bad_path("not a directory (symlinks are not followed)")),
            Err(source) => {
                return Err(ManifestError::Io {
                    path: rel.trim_end_matches('/').to_string(),
                    source,
                });
            }
        }
    }
    walk.dir(&dir, &rel)?;
    Ok(walk.loaded)
}

struct Walk<'a> {
    limits: &'a ParseLimits,
    parser: Parser<'a>,
    loaded: Loaded,
    total_bytes: u64,
    entries: usize,
    ignores: IgnoreStack,
}

const IGNORE_FILE: &str = ".hawserignore";
/// Deeper trees are not manifests; the walk recurses per level.
const MAX_DIR_DEPTH: usize = 64;
/// Entries of any kind looked at, so a tree of junk cannot exhaust memory.
const MAX_ENTRIES: usize = 200_000;
const KUSTOMIZATIONS: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

impl Walk<'_> {
    /// Walks `dir` (`rel` is its path from the root, `""` or ending in `/`).
    fn dir(&mut self, dir: &Path, rel: &str) -> Result<(), ManifestError> {
        if rel.matches('/').count() > MAX_DIR_DEPTH {
            return Err(ManifestError::TooDeep {
                dir: display_dir(rel),
                limit: MAX_DIR_DEPTH,
            });
        }
        self.ignores.retain_ancestors_of(rel);
        self.read_ignore_file(dir, rel)?;
        let io_err = |source| ManifestError::Io {
            path: display_dir(rel),
            source,
        };
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return Err(ManifestError::TooManyEntries {
                    dir: display_dir(rel),
                    limit: MAX_ENTRIES,
                });
            }
            let file_type = entry.file_type().map_err(io_err)?;
            match entry.file_name().into_string() {
                // Names end up in one-line messages: no line breaks or escapes there.
                Ok(name) if name.chars().any(char::is_control) => {
                    self.loaded.warnings.push(format!(
                        "{}: skipped {:?}: the name contains control characters",
                        display_dir(rel),
                        name
                    ));
                }
                Ok(name) => entries.push((name, file_type)),
                Err(name) => self.loaded.warnings.push(format!(
                    "{}: skipped {:?}: the name is not UTF-8",
                    display_dir(rel),
                    name
                )),
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));

        let mut kustomization = None;
        let mut manifests_here = 0;
        for (name, file_type) in entries {
            if name.starts_with('.') {
                continue;
            }
            let path = format!("{rel}{name}");
            if file_type.is_symlink() {
                if is_manifest_name(&name)
                    || fs::metadata(dir.join(&name)).is_ok_and(|m| m.is_dir())
                {
                    self.loaded
                        .warnings
                        .push(format!("{path}: skipped: symlinks are not followed"));
                }
                continue;
            }
            if file_type.is_dir() {
                if !self.ignores.is_ignored(&path, true) {
                    self.dir(&dir.join(&name), &format!("{path}/"))?;
                    self.ignores.retain_ancestors_of(rel);
                }
                continue;
            }
            if !file_type.is_file() || self.ignores.is_ignored(&path, false) {
                continue;
            }
            if KUSTOMIZATIONS.contains(&name.as_str()) {
                kustomization = Some(path);
                continue;
            }
            if is_manifest_name(&name) {
                self.file(&dir.join(&name), &path)?;
                manifests_here += 1;
            }
        }
        if let Some(path) = kustomization {
            if manifests_here == 0 {
                return Err(ManifestError::Kustomization {
                    dir: display_dir(rel),
                });
            }
            self.loaded.warnings.push(format!(
                "{path}: skipped: kustomizations are not rendered; the other files here are applied as they are"
            ));
        }
        Ok(())
    }

    fn read_ignore_file(&mut self, dir: &Path, rel: &str) -> Result<(), ManifestError> {
        let path = dir.join(IGNORE_FILE);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            _ => return Ok(()),
        }
        let shown = format!("{rel}{IGNORE_FILE}");
        let text = self.read(&path, &shown)?;
        self.ignores.push(rel.to_string(), IgnoreFile::parse(&text));
        Ok(())
    }

    /// Reads a file within the size budgets.
    fn read(&mut self, path: &Path, shown: &str) -> Result<String, ManifestError> {
        let io_err = |source| ManifestError::Io {
            path: shown.to_string(),
            source,
        };
        let limit = self.limits.max_file_bytes;
        let file = File::open(path).map_err(io_err)?;
        let size = file.metadata().map_err(io_err)?.len();
        if size > limit {
            return Err(ManifestError::FileTooLarge {
                file: shown.to_string(),
                size,
                limit,
            });
        }
        let mut bytes = Vec::new();
        // `take` guards against a file that grows after the size check.
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        let size = bytes.len() as u64;
        if size > limit {
            return Err(ManifestError::FileTooLarge {
                file: shown.to_string(),
                size,
                limit,
            });
        }
        self.total_bytes = self.total_bytes.saturating_add(size);
        if self.total_bytes > self.limits.max_total_bytes {
            return Err(ManifestError::TotalTooLarge {
                file: shown.to_string(),
                limit: self.limits.max_total_bytes,
            });
        }
        String::from_utf8(bytes).map_err(|_| ManifestError::NotUtf8 {
            file: shown.to_string(),
        })
    }

    fn file(&mut self, path: &Path, rel: &str) -> Result<(), ManifestError> {
        self.loaded.files += 1;
        if self.loaded.files > self.limits.max_files {
            return Err(ManifestError::TooManyFiles {
                file: rel.to_string(),
                limit: self.limits.max_files,
            });
        }
        let text = self.read(path, rel)?;
        let parsed = if rel.ends_with(".json") {
            self.parser.json(&text, rel)?
        } else {
            self.parser.yaml(&text, rel)?
        };
        self.loaded.documents.extend(parsed.into_iter().map(
            |Parsed {
                 document,
                 line,
                 value,
             }| {
                Document::new(
                    Location {
                        file: rel.to_string(),
                        document,
                        line: Some(line),
                        item: None,
                    },
                    value,
                )
            },
        ));
        Ok(())
    }
}

fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

/// A directory for messages: `.` for the root, else its path without the slash.
fn display_dir(rel: &str) -> String {
    match rel.trim_end_matches('/') {
        "" => ".".to_string(),
        dir => dir.to_string(),
    }
}

#[cfg(test)]
mod tests;
