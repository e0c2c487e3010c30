//! The render stage: files → documents, between the cache and the manifests stage.
//!
//! In: the verified snapshot's files (the tree, or `--path` within it). Out: the
//! documents the manifests stage builds objects from. When the directory holds a
//! `kustomization.yaml`, `kustomization.yml` or `Kustomization`, it is rendered as
//! `kustomize build` v5 renders it ([`build`]); without one the plain files pass
//! through ([`manifests::load`]). Pure: no cluster, no network, bounded by the same
//! [`ParseLimits`] as manifests.
//!
//! What can go wrong is a [`RenderError`]: one line naming the kustomization file and
//! field (or the resource file and document) and the rule broken. A failed render
//! yields nothing, so nothing downstream is ever half-written.

mod behavior;
mod build;
pub mod emit;
mod envsubst;
mod fieldspec;
mod files;
mod generate;
mod kustomization;
mod nameref;
mod order;
pub mod patch;
mod patches;
mod replace;
mod resource;
mod scope;
mod selector;
pub mod sops;
pub mod substitute;
mod transform;
mod transformers;
mod yaml11;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::path::{Component, Path};

use crate::manifests::{self, Document, Loaded, Location, ManifestError, ParseLimits};

pub use generate::hash_suffix;

/// Why a revision could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}: {field}: {reason}")]
    Field {
        file: String,
        field: String,
        reason: String,
    },
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("{location}: {reason}")]
    Resource { location: Location, reason: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

impl RenderError {
    pub(crate) fn field(file: &str, field: &str, reason: String) -> Self {
        Self::Field {
            file: file.to_string(),
            field: field.to_string(),
            reason,
        }
    }

    pub(crate) fn file(file: &str, reason: impl Into<String>) -> Self {
        Self::File {
            file: file.to_string(),
            reason: reason.into(),
        }
    }
}

/// The documents of a directory: rendered when it holds a kustomization, else the
/// plain-file walk of [`manifests::load`]. `files` counts the files read.
pub fn load(
    root: &Path,
    subpath: Option<&Path>,
    limits: &ParseLimits,
) -> Result<Loaded, RenderError> {
    load_with(root, subpath, limits, &Options::default())
}

/// What render does after Kustomize: SOPS decryption, then (as Flux orders them)
/// `${var}` substitution. The same keys decrypt `secretGenerator` sources and patch
/// files before Kustomize, as Flux does ([`sops::source`], [`sops::decrypt_values`]).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub decryption: sops::Decryption,
    pub substitution: substitute::Substitution,
}

/// [`load`], then decryption of SOPS-encrypted documents and substitution.
pub fn load_with(
    root: &Path,
    subpath: Option<&Path>,
    limits: &ParseLimits,
    options: &Options,
) -> Result<Loaded, RenderError> {
    let mut loaded = match kustomize_with(root, subpath, limits, &options.decryption)? {
        Some((documents, files)) => Loaded {
            documents,
            files,
            warnings: Vec::new(),
        },
        None => manifests::load(root, subpath, limits)?,
    };
    sops::decrypt_documents(root, &mut loaded.documents, &options.decryption, limits)?;
    substitute::apply(&mut loaded.documents, &options.substitution, limits)?;
    Ok(loaded)
}

/// Renders the kustomization in `root/subpath`; `None` when there is none. Also
/// returns how many files were read.
pub fn kustomize(
    root: &Path,
    subpath: Option<&Path>,
    limits: &ParseLimits,
) -> Result<Option<(Vec<Document>, usize)>, RenderError> {
    kustomize_with(root, subpath, limits, &sops::Decryption::default())
}

/// [`kustomize`], decrypting SOPS-encrypted `secretGenerator` sources on the way in.
fn kustomize_with(
    root: &Path,
    subpath: Option<&Path>,
    limits: &ParseLimits,
    decryption: &sops::Decryption,
) -> Result<Option<(Vec<Document>, usize)>, RenderError> {
    let dir = relative_dir(subpath)?;
    let mut builder = build::Builder::new(root, limits)?;
    builder.files.decryption = decryption.clone();
    if builder.files.kustomization_in(&dir)?.is_none() {
        return Ok(None);
    }
    let docs = builder.root(&dir)?;
    Ok(Some((docs, builder.files.count())))
}

/// `--path` as a revision-relative directory.
fn relative_dir(subpath: Option<&Path>) -> Result<String, RenderError> {
    let mut parts = Vec::new();
    for component in subpath.map(Path::components).into_iter().flatten() {
        match component {
            Component::CurDir => {}
            Component::Normal(name) => match name.to_str() {
                Some(name) => parts.push(name),
                None => return Err(bad_path(subpath)),
            },
            _ => return Err(bad_path(subpath)),
        }
    }
    Ok(parts.join("/"))
}

fn bad_path(subpath: Option<&Path>) -> RenderError {
    ManifestError::BadPath {
        path: subpath.map(|p| p.display().to_string()).unwrap_or_default(),
        reason: "--path must be a relative path inside the directory",
    }
    .into()
}
