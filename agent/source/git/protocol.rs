//! Git smart HTTP. Polling is one request once the protocol is known: a v2 `ls-refs`
//! with `ref-prefix`, `peel` and `symrefs`. Fetching is one v2 `fetch` with `deepen 1`,
//! `no-progress`, `ofs-delta` (never `thin-pack`: we hold no bases), its side-band
//! pack spooled to an unlinked temporary file and decoded from there. Servers that do
//! not speak v2 get the v0 exchange: the `info/refs` advertisement and an
//! `upload-pack` request with `deepen 1`. Only SHA-1 repositories are supported.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use super::GitError;
use super::extract::extract;
use super::object::{Kind, ObjectId};
use super::pack::Pack;
use super::pktline::{
    PktReader, SideBand, text as pktline_text, write_delim, write_flush, write_line,
};
use super::refs::{RefSpec, RemoteRef, parse_v0_advertisement, parse_v2_ref, pick};
use super::wire;
use crate::source::http::{Budget, Client, Deadline, io_error, take_userinfo};
use crate::source::{FetchLimits, Revision, Snapshot, SourceError, SourceSpec, redact_url};
use crate::verify::{Objects, Policy};

const UPLOAD_PACK: &str = "git-upload-pack";

/// What the server told us the first time: its protocol and (after redirects) where
/// the repository really lives.
#[derive(Clone, Debug)]
struct Discovered {
    base: String,
    v2: bool,
    /// v2 only: the server advertised `object-format`, so requests name it.
    object_format: bool,
}

/// A Git repository over smart HTTP.
pub struct GitSource {
    base: String,
    shown: String,
    reference: RefSpec,
    path: Option<String>,
    limits: FetchLimits,
    client: Client,
    discovered: Mutex<Option<Discovered>>,
    policy: Policy,
    /// The tag the last resolve went through: (commit, tag name, tag object id
    /// or `None` for a lightweight tag). Fetched with the commit for `--verify-tags`.
    tag: Mutex<Option<(ObjectId, String, Option<ObjectId>)>>,
}

impl GitSource {
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
            verify,
        } = spec;
        if sha256.is_some() || sha256_from_url {
            return Err(SourceError::Config(
                "--sha256 applies to tarball sources only".into(),
            ));
        }
        let reference = RefSpec::parse(&reference)?;
        let names_tag = match &reference {
            RefSpec::Short(_) => true,
            RefSpec::Full(name) => name.starts_with("refs/tags/"),
            RefSpec::Head | RefSpec::Commit(_) => false,
        };
        if verify.tags && !names_tag {
            return Err(SourceError::Config(
                "--verify-tags needs --ref to name a tag".into(),
            ));
        }
        let base = take_userinfo(url.trim_end_matches('/'), &mut http);
        Ok(Self {
            shown: redact_url(&base),
            reference,
            policy: verify,
            tag: Mutex::new(None),
            path,
            limits,
            client: Client::new(&http)?,
            discovered: Mutex::new(None),
            base,
        })
    }

    pub fn display_url(&self) -> &str {
        &self.shown
    }

    /// `--path`: the directory of the snapshot to apply.
    pub fn subpath(&self) -> Option<&str> {
        self.path.as_deref()
    }

    pub fn bytes_received(&self) -> u64 {
        self.client.received()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The commit the configured ref names now.
    pub fn resolve(&self) -> Result<Revision, SourceError> {
        if let RefSpec::Commit(id) = &self.reference {
            return Ok(Revision::commit(*id));
        }
        // One deadline for the whole poll, however many requests it takes.
        let deadline = self.client.deadline();
        let known = self.discovered.lock().ok().and_then(|d| d.clone());
        let listed = match known {
            Some(d) if d.v2 => self.ls_refs(&d, deadline),
            _ => match self.discover(deadline)? {
                (d, None) => self.ls_refs(&d, deadline),
                (_, Some(v0_refs)) => Ok(v0_refs),
            },
        };
        let refs = listed.inspect_err(|_| {
            // The server may have moved or changed protocol: ask again next poll.
            self.forget();
        })?;
        let id = pick(&self.reference, &refs).map_err(|e| e.into_source(&self.shown))?;
        // The ref `pick` chose, if it is a tag: its object is what --verify-tags checks.
        let prefixes = self.reference.prefixes();
        let tag = refs
            .iter()
            .filter(|r| r.name.starts_with("refs/tags/") && prefixes.contains(&r.name))
            .find(|r| r.peeled.unwrap_or(r.id) == id)
            .map(|r| {
                let name = r.name.trim_start_matches("refs/tags/").to_string();
                (id, name, r.peeled.map(|_| r.id))
            });
        if let Ok(mut slot) = self.tag.lock() {
            *slot = tag;
        }
        Ok(Revision::commit(id))
    }

    /// Fetches `revision` (a commit id) and extracts its tree into the empty `into`.
    pub fn fetch(&self, revision: &Revision, into: &Path) -> Result<Snapshot, SourceError> {
        let want = revision.commit_id().ok_or_else(|| {
            SourceError::Config(format!("revision {revision} is not a git commit id"))
        })?;
        let tag = self
            .tag
            .lock()
            .ok()
            .and_then(|t| t.clone())
            .filter(|(commit, _, _)| *commit == want);
        let tag_object = tag.as_ref().and_then(|(_, _, object)| *object);
        let wants: Vec<ObjectId> = std::iter::once(want)
            .chain(tag_object.filter(|_| self.policy.tags))
            .collect();
        let file = self.fetch_wants(&wants, into)?;
        let mut pack = Pack::open(file, self.limits.max_object_bytes).map_err(|e| self.err(e))?;
        tracing::debug!(url = %self.shown, objects = pack.len(), "pack verified");
        let commit = pack.read(&want, Kind::Commit).map_err(|e| self.err(e))?;
        let tag = match (&tag, tag_object) {
            (Some((_, name, _)), Some(id)) if self.policy.tags => {
                let raw = pack.read(&id, Kind::Tag).map_err(|e| self.err(e))?;
                Some((name.clone(), raw.to_vec()))
            }
            _ => None,
        };
        let objects = Objects {
            commit: commit.to_vec(),
            tag,
        };
        // Before anything is written: an unverified revision leaves no trace.
        let verified = if self.policy.enabled() {
            let verified =
                self.policy
                    .check(want, &objects)
                    .map_err(|source| SourceError::Verify {
                        url: self.shown.clone(),
                        source,
                    })?;
            tracing::info!(revision = %revision, signed = %verified, "signature verified");
            Some(verified)
        } else {
            None
        };
        let out = extract(
            &mut pack,
            want,
            self.path.as_deref(),
            into,
            &self.limits,
            &self.shown,
        )?;
        Ok(Snapshot::new(
            revision.clone(),
            into.to_path_buf(),
            out.files,
            out.bytes,
            self.shown.clone(),
        )
        .signed(objects, verified))
    }

    /// Fetches the depth-1 pack of `want` into an unlinked file next to `next_to`,
    /// unverified (`bundle create` writes it out as a bundle's pack).
    pub fn fetch_pack(&self, want: ObjectId, next_to: &Path) -> Result<File, SourceError> {
        self.fetch_wants(&[want], next_to)
    }

    /// [`GitSource::fetch_pack`] for several objects (a commit and its tag).
    fn fetch_wants(&self, wants: &[ObjectId], next_to: &Path) -> Result<File, SourceError> {
        let deadline = self.client.deadline();
        let known = self.discovered.lock().ok().and_then(|d| d.clone());
        let d = match known {
            Some(d) => d,
            None => self.discover(deadline)?.0,
        };
        let body = if d.v2 {
            wire::v2_fetch_request(d.object_format, wants)
        } else {
            wire::v0_fetch_request(wants)
        };
        let url = format!("{}/{UPLOAD_PACK}", d.base);
        let resp = self
            .client
            .post_within(&url, &wire::rpc_headers(d.v2), &body, deadline)
            .inspect_err(|_| self.forget())?;
        // Everything the server sends counts, progress and keep-alive packets too:
        // otherwise a server chatting on band 2 is never cut off by the pack limit.
        let body = Budget::new(
            self.client.body_within(&url, resp, deadline),
            "max-pack-bytes",
            self.limits.max_pack_bytes.saturating_add(1 << 20),
        );
        let mut pkt = PktReader::new(body);
        if d.v2 {
            wire::skip_to_packfile_v2(&mut pkt).map_err(|e| self.err(e))?;
        } else {
            wire::skip_to_packfile_v0(&mut pkt).map_err(|e| self.err(e))?;
        }
        wire::spool(next_to, SideBand::new(pkt), &self.limits, &self.shown)
    }

    /// `GET info/refs` asking for v2. Returns the v0 refs too when the server answered
    /// with a v0 advertisement (which already is the poll's answer).
    fn discover(
        &self,
        deadline: Deadline,
    ) -> Result<(Discovered, Option<Vec<RemoteRef>>), SourceError> {
        let url = format!("{}/info/refs?service={UPLOAD_PACK}", self.base);
        let resp = self
            .client
            .get_within(&url, &[("Git-Protocol", "version=2")], deadline)?;
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !content_type.starts_with("application/x-git-upload-pack-advertisement") {
            return Err(self.err(GitError::Unexpected(format!(
                "not a smart HTTP git server (content type {:?})",
                pktline_text(content_type.as_bytes())
            ))));
        }
        let final_url = ureq::ResponseExt::get_uri(&resp).to_string();
        let base = final_url
            .split_once("/info/refs")
            .map_or_else(|| self.base.clone(), |(b, _)| b.to_string());
        let body = self.client.body_within(&url, resp, deadline);
        let mut pkt = PktReader::new(self.ref_budget(body));
        let mut first = pkt.read_line().map_err(|e| self.err(e))?;
        if first.as_deref() == Some("# service=git-upload-pack") {
            // Smart HTTP's v0 preamble: the service line, then a flush.
            if pkt.read_line().map_err(|e| self.err(e))?.is_some() {
                return Err(self.err(GitError::Unexpected("no flush after service line".into())));
            }
            first = pkt.read_line().map_err(|e| self.err(e))?;
        }
        if first.as_deref() == Some("version 2") {
            let mut object_format = false;
            while let Some(cap) = pkt.read_line().map_err(|e| self.err(e))? {
                if let Some(format) = cap.strip_prefix("object-format=") {
                    self.check_format(format)?;
                    object_format = true;
                }
            }
            let d = Discovered {
                base,
                v2: true,
                object_format,
            };
            self.remember(&d);
            return Ok((d, None));
        }
        let (refs, caps) = parse_v0_advertisement(first, &mut pkt, self.limits.max_refs)
            .map_err(|e| self.err(e))?;
        if let Some(format) = caps.iter().find_map(|c| c.strip_prefix("object-format=")) {
            self.check_format(format)?;
        }
        tracing::debug!(url = %self.shown, refs = refs.len(), "server speaks protocol v0");
        let d = Discovered {
            base,
            v2: false,
            object_format: false,
        };
        self.remember(&d);
        Ok((d, Some(refs)))
    }

    fn forget(&self) {
        if let Ok(mut slot) = self.discovered.lock() {
            *slot = None;
        }
    }

    fn remember(&self, d: &Discovered) {
        if let Ok(mut slot) = self.discovered.lock() {
            *slot = Some(d.clone());
        }
    }

    fn check_format(&self, format: &str) -> Result<(), SourceError> {
        if format == "sha1" {
            Ok(())
        } else {
            Err(SourceError::UnsupportedObjectFormat {
                url: self.shown.clone(),
                format: format.to_string(),
            })
        }
    }

    /// Ref listings come on every poll: bounded by their own small limit.
    fn ref_budget<R: Read>(&self, body: R) -> Budget<R> {
        Budget::new(body, "max-ref-bytes", self.limits.max_ref_bytes)
    }

    fn ls_refs(&self, d: &Discovered, deadline: Deadline) -> Result<Vec<RemoteRef>, SourceError> {
        let mut body = Vec::new();
        write_line(&mut body, "command=ls-refs");
        if d.object_format {
            write_line(&mut body, "object-format=sha1");
        }
        write_delim(&mut body);
        write_line(&mut body, "peel");
        write_line(&mut body, "symrefs");
        for prefix in self.reference.prefixes() {
            write_line(&mut body, &format!("ref-prefix {prefix}"));
        }
        write_flush(&mut body);
        let url = format!("{}/{UPLOAD_PACK}", d.base);
        let resp = self
            .client
            .post_within(&url, &wire::rpc_headers(true), &body, deadline)?;
        let mut pkt =
            PktReader::new(self.ref_budget(self.client.body_within(&url, resp, deadline)));
        let mut refs = Vec::new();
        while let Some(line) = pkt.read_line().map_err(|e| self.err(e))? {
            if refs.len() as u64 >= self.limits.max_refs {
                return Err(SourceError::Limit {
                    limit: "max-refs",
                    max: self.limits.max_refs,
                });
            }
            refs.push(parse_v2_ref(&line).map_err(|e| self.err(e))?);
        }
        Ok(refs)
    }

    /// A protocol error, except that a failing read of the response is network trouble.
    fn err(&self, e: GitError) -> SourceError {
        match e {
            GitError::Io(io) => io_error(&self.shown, io),
            source => SourceError::Git {
                url: self.shown.clone(),
                source,
            },
        }
    }
}
