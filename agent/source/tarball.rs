//! Tarball source (stub).
use std::path::Path;

use super::{Revision, Snapshot, SourceError, SourceSpec};

pub struct TarballSource {
    shown: String,
}

impl TarballSource {
    pub fn new(spec: SourceSpec) -> Result<Self, SourceError> {
        Ok(Self {
            shown: super::redact_url(&spec.url),
        })
    }
    pub fn resolve(&self) -> Result<Revision, SourceError> {
        Err(SourceError::Config("todo".into()))
    }
    pub fn fetch(&self, _r: &Revision, _into: &Path) -> Result<Snapshot, SourceError> {
        Err(SourceError::Config("todo".into()))
    }
    pub fn bytes_received(&self) -> u64 {
        0
    }
    pub fn display_url(&self) -> &str {
        &self.shown
    }
}
