//! The tarball source: an HTTP(S) `.tar.gz`, `.tgz` or `.tar`. A poll is a conditional
//! GET (`If-None-Match` / `If-Modified-Since` from the previous answer), so an
//! unchanged archive costs a 304 and no body. A changed archive is spooled to an
//! unlinked temporary file while its sha256 is computed, verified against `--sha256`
//! or `<url>.sha256` when configured, and kept for the fetch that follows. The
//! revision is the commit id from `git archive`'s pax header, else `sha256:<hex>`.

pub(in crate::source) mod untar;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::http::{Client, take_userinfo};
use super::{FetchLimits, Revision, Snapshot, SourceError, SourceSpec, redact_url};
use untar::UntarError;

/// Longest `<url>.sha256` file read.
const MAX_CHECKSUM_FILE: u64 = 4096;

/// A downloaded, verified archive waiting to be extracted.
struct Download {
    revision: Revision,
    file: File,
}

#[derive(Default)]
struct State {
    etag: Option<String>,
    last_modified: Option<String>,
    revision: Option<Revision>,
    download: Option<Download>,
}

pub struct TarballSource {
    url: String,
    shown: String,
    client: Client,
    sha256: Option<String>,
    sha256_from_url: bool,
    limits: FetchLimits,
    state: Mutex<State>,
}

impl TarballSource {
    pub fn new(spec: SourceSpec) -> Result<Self, SourceError> {
        let SourceSpec {
            url,
            kind: _,
            reference,
            path,
            sha256,
            sha256_from_url,
            mut http,
            limits,
            bundle: _,
            oci: _,
            verify: _,
        } = spec;
        if path.is_some() || !matches!(reference.as_str(), "" | "HEAD") {
            return Err(SourceError::Config(
                "--ref and --path apply to git sources only".into(),
            ));
        }
        let url = take_userinfo(&url, &mut http);
        Ok(Self {
            shown: redact_url(&url),
            client: Client::new(&http)?,
            url,
            sha256,
            sha256_from_url,
            limits,
            state: Mutex::new(State::default()),
        })
    }

    pub fn display_url(&self) -> &str {
        &self.shown
    }

    pub fn bytes_received(&self) -> u64 {
        self.client.received()
    }

    /// Conditional GET: the remembered revision on 304, else download and verify.
    pub fn resolve(&self) -> Result<Revision, SourceError> {
        let mut state = self.lock()?;
        let mut headers = vec![("Accept-Encoding", "identity")];
        let (etag, modified) = (state.etag.clone(), state.last_modified.clone());
        if state.revision.is_some() {
            if let Some(etag) = &etag {
                headers.push(("If-None-Match", etag));
            }
            if let Some(modified) = &modified {
                headers.push(("If-Modified-Since", modified));
            }
        }
        let resp = self.client.get(&self.url, &headers)?;
        if let (304, Some(revision)) = (resp.status().as_u16(), state.revision.clone()) {
            tracing::debug!(url = %self.shown, %revision, "archive unchanged");
            return Ok(revision);
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (etag, modified) = (header("etag"), header("last-modified"));
        let download = self.download(resp)?;
        let revision = download.revision.clone();
        *state = State {
            etag,
            last_modified: modified,
            revision: Some(revision.clone()),
            download: Some(download),
        };
        Ok(revision)
    }

    /// Extracts the archive named by `revision` into the empty directory `into`.
    pub fn fetch(&self, revision: &Revision, into: &Path) -> Result<Snapshot, SourceError> {
        let kept = self.lock()?.download.take();
        let mut download = match kept {
            Some(d) if &d.revision == revision => d,
            _ => {
                let resp = self
                    .client
                    .get(&self.url, &[("Accept-Encoding", "identity")])?;
                self.download(resp)?
            }
        };
        if &download.revision != revision {
            return Err(SourceError::RevisionMoved {
                url: self.shown.clone(),
                expected: revision.to_string(),
                actual: download.revision.to_string(),
            });
        }
        download
            .file
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.archive_err(e.to_string()))?;
        let stream = untar::open(download.file, self.limits.max_total_bytes)
            .map_err(|e| self.archive_err(e.to_string()))?;
        let written = untar::extract(stream, into, &self.limits).map_err(|e| match e {
            UntarError::Unsafe { path, reason } => SourceError::UnsafeEntry {
                url: self.shown.clone(),
                path,
                reason,
            },
            UntarError::Invalid(message) => self.archive_err(message),
            UntarError::Source(e) => e,
        })?;
        Ok(Snapshot::new(
            revision.clone(),
            into.to_path_buf(),
            written.files,
            written.bytes,
            self.shown.clone(),
        ))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, SourceError> {
        self.state
            .lock()
            .map_err(|_| SourceError::Config("tarball source state poisoned".into()))
    }

    fn archive_err(&self, message: String) -> SourceError {
        SourceError::Archive {
            url: self.shown.clone(),
            message,
        }
    }

    /// Spools the body, checks its sha256 and reads the revision.
    fn download(&self, resp: ureq::http::Response<ureq::Body>) -> Result<Download, SourceError> {
        let mut body = self.client.body(&self.url, resp);
        let mut file = temp_file()?;
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(body.error(e)),
            };
            total += n as u64;
            if total > self.limits.max_pack_bytes {
                return Err(SourceError::Limit {
                    limit: "max-pack-bytes",
                    max: self.limits.max_pack_bytes,
                });
            }
            sha.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| SourceError::write(Path::new("temporary archive"), e))?;
        }
        let actual = hex(&sha.finalize());
        let expected = match (&self.sha256, self.sha256_from_url) {
            (Some(pinned), _) => Some(pinned.clone()),
            (None, true) => Some(self.published_sha256()?),
            (None, false) => None,
        };
        if let Some(expected) = expected.filter(|e| *e != actual) {
            return Err(SourceError::Checksum {
                url: self.shown.clone(),
                expected,
                actual,
            });
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| self.archive_err(e.to_string()))?;
        let reader = file
            .try_clone()
            .map_err(|e| self.archive_err(e.to_string()))?;
        let commit = untar::open(reader, self.limits.max_total_bytes)
            .ok()
            .and_then(untar::commit_id);
        let revision = match commit.and_then(|c| Revision::parse(&c)) {
            Some(rev) => rev,
            None => Revision::sha256(&actual),
        };
        Ok(Download { revision, file })
    }

    /// The first token of `<url>.sha256` (the `sha256sum` format).
    fn published_sha256(&self) -> Result<String, SourceError> {
        let url = match self.url.split_once('?') {
            Some((path, query)) => format!("{path}.sha256?{query}"),
            None => format!("{}.sha256", self.url),
        };
        let resp = self.client.get(&url, &[])?;
        let mut body = self.client.body(&url, resp);
        let mut text = String::new();
        (&mut body)
            .take(MAX_CHECKSUM_FILE)
            .read_to_string(&mut text)
            .map_err(|e| body.error(e))?;
        let token = text.split_whitespace().next().unwrap_or_default();
        if crate::encoding::is_hex(token, 64) {
            Ok(token.to_ascii_lowercase())
        } else {
            Err(SourceError::Archive {
                url: redact_url(&url),
                message: "checksum file does not start with a sha256 hex digest".into(),
            })
        }
    }
}

/// An unlinked file in the system temporary directory: gone when dropped.
pub(in crate::source) fn temp_file() -> Result<File, SourceError> {
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = dir.join(format!(".hawser-archive-{}-{nanos}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| SourceError::write(&path, e))?;
    std::fs::remove_file(&path).map_err(|e| SourceError::write(&path, e))?;
    Ok(file)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
