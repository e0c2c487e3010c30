//! The bundle source: desired state carried across an air gap as a git bundle with a
//! detached OpenSSH signature beside it (`<bundle>.sig`, namespace `hawser-bundle`).
//!
//! In: a location (an inbox directory, one bundle file, or an HTTP(S) URL), the
//! trusted keys and the applied revision ([`BundleSource::set_applied`]). Out: the
//! commit of the newest acceptable bundle from [`BundleSource::resolve`], and its
//! tree from [`BundleSource::fetch`]. A bundle is acceptable when its signature is
//! by a trusted key (or unsigned bundles are allowed, loudly), its header and pack
//! are well formed, the selected commit's whole tree is in the pack, and it is not
//! older than the applied commit (unless downgrades are allowed). What can go wrong
//! is a [`BundleError`], carried by [`SourceError::Bundle`].
//!
//! The agent loop's part (through `Source::Bundle(b)`):
//! - at startup, after loading the cache: `b.set_applied(&applied, time)` with the
//!   committer time kept beside the applied revision (`None` if unknown);
//! - every poll: `resolve()`; the applied revision back means nothing new (also for an
//!   empty inbox), an error means keep enforcing the applied revision; only
//!   [`BundleError::Empty`] is transient;
//! - on a new revision: `fetch(&revision, dir)`, then the usual pipeline;
//! - after a successful apply: `b.set_applied(&revision, None)` (the source knows the
//!   time of what it delivered) and store `b.committer_time(&revision)` with the
//!   applied record. With `--inbox-consume` this is what moves bundles to
//!   `processed/`;
//! - for the status: `b.insecure()`; the snapshot's source also ends in
//!   ` (unsigned)` when the bundle was not signature-checked.

mod allowed_signers;
pub mod check;
mod error;
pub mod from_tree;
pub mod header;
mod inbox;
mod open;
mod remote;
pub mod sign;
pub mod write;

pub use sign::read_sig;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use check::{Ancestry, AppliedCommit};
pub use error::BundleError;
pub use open::{Checked, check_bundle, open_pack};
use sign::TrustedKeys;

use super::git::extract::extract;
use super::git::object::ObjectId;
use super::git::refs::RefSpec;
use super::{FetchLimits, Revision, Snapshot, SourceError, SourceSpec, redact_url};

/// How bundles are trusted and consumed (the bundle flags of `SourceArgs`).
#[derive(Clone, Debug, Default)]
pub struct BundleOptions {
    /// Keys allowed to sign bundles (`--trusted-keys`, `allowed_signers` format).
    pub trusted_keys: Option<TrustedKeys>,
    /// Accept bundles without a valid signature check (`--insecure-allow-unsigned`).
    pub insecure_allow_unsigned: bool,
    /// Accept bundles older than the applied commit (`--allow-downgrade`).
    pub allow_downgrade: bool,
    /// Move processed bundles to `processed/` and refused ones to `rejected/`.
    pub inbox_consume: bool,
}

/// Where bundles come from.
#[derive(Clone, Debug)]
enum Location {
    Inbox(PathBuf),
    File(PathBuf),
    Url(String),
}

/// The bundle chosen by the last resolve, kept open for the fetch.
struct Chosen {
    revision: Revision,
    file: File,
    shown: String,
}

#[derive(Default)]
struct State {
    applied: Option<AppliedCommit>,
    /// Committer times of every commit a checked bundle delivered.
    times: HashMap<ObjectId, i64>,
    chosen: Option<Chosen>,
    /// The single bundle file's last check, reused while the file is unchanged.
    file: Option<(inbox::Fingerprint, Checked)>,
    inbox: inbox::Inbox,
    remote: remote::RemoteState,
}

/// A configured bundle source.
pub struct BundleSource {
    location: Location,
    shown: String,
    reference: RefSpec,
    path: Option<String>,
    options: BundleOptions,
    limits: FetchLimits,
    client: Option<super::http::Client>,
    state: Mutex<State>,
    policy: crate::verify::Policy,
}

impl BundleSource {
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
            bundle: options,
            oci: _,
            verify,
        } = spec;
        if verify.tags {
            return Err(SourceError::Config(
                "--verify-tags applies to git sources; bundles are verified by their signature and --verify-commits".into(),
            ));
        }
        if sha256.is_some() || sha256_from_url {
            return Err(SourceError::Config(
                "--sha256 applies to tarball sources only".into(),
            ));
        }
        if options.trusted_keys.is_none() && !options.insecure_allow_unsigned {
            return Err(SourceError::Config(
                "bundle sources need --trusted-keys (or --insecure-allow-unsigned)".into(),
            ));
        }
        if options.insecure_allow_unsigned {
            tracing::warn!("INSECURE: --insecure-allow-unsigned accepts bundles nobody signed");
        }
        let (location, client) = if url.starts_with("http://") || url.starts_with("https://") {
            let url = super::http::take_userinfo(&url, &mut http);
            (Location::Url(url), Some(super::http::Client::new(&http)?))
        } else {
            let path = PathBuf::from(url.strip_prefix("file://").unwrap_or(&url));
            // A directory is an inbox; so is a path that does not exist yet unless it
            // names a `.bundle` file (a mount point may appear after the agent starts).
            let is_file = match std::fs::metadata(&path) {
                Ok(meta) => !meta.is_dir(),
                Err(_) => path.extension().is_some_and(|e| e == "bundle"),
            };
            if !is_file {
                (Location::Inbox(path), None)
            } else {
                (Location::File(path), None)
            }
        };
        let shown = match &location {
            Location::Url(u) => redact_url(u),
            Location::Inbox(p) | Location::File(p) => p.display().to_string(),
        };
        Ok(Self {
            location,
            shown,
            reference: RefSpec::parse(&reference)?,
            path,
            options,
            limits,
            client,
            state: Mutex::new(State::default()),
            policy: verify,
        })
    }

    pub fn policy(&self) -> &crate::verify::Policy {
        &self.policy
    }

    pub fn display_url(&self) -> &str {
        &self.shown
    }

    /// `--path`: the directory of the snapshot to apply.
    pub fn subpath(&self) -> Option<&str> {
        self.path.as_deref()
    }

    pub fn bytes_received(&self) -> u64 {
        self.client.as_ref().map_or(0, |c| c.received())
    }

    /// Whether unsigned bundles are accepted: status reports should say so.
    pub fn insecure(&self) -> bool {
        self.options.insecure_allow_unsigned
    }

    /// Tells the source which commit the cluster runs, after every successful apply
    /// and once at startup from the cache. `committer_time` may be `None` when the
    /// commit came from this source (its time is known) or is simply unknown.
    pub fn set_applied(&self, revision: &Revision, committer_time: Option<i64>) {
        let Some(commit) = revision.commit_id() else {
            return;
        };
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let committer_time = committer_time.or_else(|| state.times.get(&commit).copied());
        let applied = AppliedCommit {
            commit,
            committer_time,
        };
        state.applied = Some(applied);
        if let (Location::Inbox(dir), true) = (&self.location, self.options.inbox_consume) {
            state.inbox.consume_processed(dir, &applied);
        }
    }

    /// The committer time of a commit this source delivered, so the caller can keep
    /// it with the applied revision and hand it back to [`Self::set_applied`].
    pub fn committer_time(&self, revision: &Revision) -> Option<i64> {
        let commit = revision.commit_id()?;
        self.state.lock().ok()?.times.get(&commit).copied()
    }

    /// The newest acceptable bundle's commit. With nothing new in an inbox, the
    /// applied revision (so the caller sees no change).
    pub fn resolve(&self) -> Result<Revision, SourceError> {
        let mut state = self.lock()?;
        let found = match &self.location {
            Location::File(path) => {
                let now = inbox::Fingerprint::of(path);
                let (file, checked) = match (&state.file, now) {
                    (Some((before, checked)), Some(now)) if *before == now => {
                        let file = File::open(path)
                            .map_err(|e| self.err(path, BundleError::io(path, e)))?;
                        (file, checked.clone())
                    }
                    _ => {
                        state.file = None;
                        let (file, checked) =
                            self.check_path(path).map_err(|e| self.err(path, e))?;
                        state.file = now.map(|now| (now, checked.clone()));
                        (file, checked)
                    }
                };
                Some((path.display().to_string(), file, checked))
            }
            Location::Inbox(dir) => {
                let applied = state.applied.map(|mut a| {
                    if a.committer_time.is_none() {
                        a.committer_time = state.times.get(&a.commit).copied();
                    }
                    a
                });
                let found = state.inbox.scan(dir, self, applied)?;
                let state = &mut *state;
                state.times.extend(state.inbox.times());
                found
            }
            Location::Url(url) => {
                let client = self.client.as_ref().ok_or_else(|| {
                    SourceError::Config("bundle URL source without an HTTP client".into())
                })?;
                let state = &mut *state;
                Some(state.remote.fetch(client, url, &self.shown, self)?)
            }
        };
        let Some((shown, file, checked)) = found else {
            return match state.applied {
                Some(a) => Ok(Revision::commit(a.commit)),
                None => Err(self.err(Path::new(&self.shown), BundleError::Empty)),
            };
        };
        let content = &checked.content;
        state.times.insert(content.commit, content.committer_time);
        if let Some(mut applied) = state.applied {
            if applied.committer_time.is_none() {
                applied.committer_time = state.times.get(&applied.commit).copied();
            }
            match check::judge(content, &applied) {
                Ancestry::Same | Ancestry::Newer => {}
                Ancestry::Older(reason) if self.options.allow_downgrade => {
                    tracing::warn!(bundle = %shown, commit = %content.commit,
                        applied = %applied.commit, %reason, "accepting a downgrade (--allow-downgrade)");
                }
                Ancestry::Older(reason) => {
                    if let (Location::Inbox(dir), true) =
                        (&self.location, self.options.inbox_consume)
                    {
                        state.inbox.reject(dir, Path::new(&shown));
                    }
                    return Err(self.err(
                        Path::new(&shown),
                        BundleError::Downgrade {
                            commit: content.commit,
                            applied: applied.commit,
                            reason,
                        },
                    ));
                }
            }
        }
        let revision = Revision::commit(content.commit);
        // Said once per newly chosen bundle, not on every poll.
        let was_chosen = state
            .chosen
            .as_ref()
            .is_some_and(|c| c.revision == revision && c.shown.starts_with(&shown));
        match &checked.signer {
            _ if was_chosen => {}
            Some(signer) => tracing::info!(bundle = %shown, commit = %content.commit,
                reference = %content.reference, %signer, "bundle verified"),
            None => tracing::warn!(bundle = %shown, commit = %content.commit,
                "INSECURE: accepting an UNSIGNED bundle (--insecure-allow-unsigned)"),
        }
        let shown = if checked.signer.is_none() {
            format!("{shown} (unsigned)")
        } else {
            shown
        };
        state.chosen = Some(Chosen {
            revision: revision.clone(),
            file,
            shown,
        });
        Ok(revision)
    }

    /// Extracts the tree of `revision` (under `--path`) from the chosen bundle.
    pub fn fetch(&self, revision: &Revision, into: &Path) -> Result<Snapshot, SourceError> {
        let needs_resolve = self
            .lock()?
            .chosen
            .as_ref()
            .is_none_or(|c| &c.revision != revision);
        if needs_resolve {
            self.resolve()?;
        }
        let mut state = self.lock()?;
        let chosen = match state.chosen.as_mut() {
            Some(c) if &c.revision == revision => c,
            other => {
                return Err(SourceError::RevisionMoved {
                    url: self.shown.clone(),
                    expected: revision.to_string(),
                    actual: other.map_or_else(|| "nothing".into(), |c| c.revision.to_string()),
                });
            }
        };
        let commit = revision.commit_id().ok_or_else(|| {
            SourceError::Config(format!("revision {revision} is not a git commit id"))
        })?;
        let shown = chosen.shown.clone();
        // The pack is verified again: every id is recomputed from the bytes read now,
        // so a file changed since the resolve cannot smuggle in another tree.
        let (_, mut pack) = open_pack(&mut chosen.file, &self.limits)
            .map_err(|e| self.err(Path::new(&shown), e))?;
        let raw = pack
            .read(&commit, super::git::object::Kind::Commit)
            .map_err(|e| self.err(Path::new(&shown), BundleError::Pack(e)))?;
        let objects = crate::verify::Objects {
            commit: raw.to_vec(),
            tag: None,
        };
        // On top of the bundle's own signature, and before anything is written.
        let verified =
            match self.policy.enabled() {
                true => Some(self.policy.check(commit, &objects).map_err(|source| {
                    SourceError::Verify {
                        url: shown.clone(),
                        source,
                    }
                })?),
                false => None,
            };
        let out = extract(
            &mut pack,
            commit,
            self.path.as_deref(),
            into,
            &self.limits,
            &shown,
        )?;
        Ok(Snapshot::new(
            revision.clone(),
            into.to_path_buf(),
            out.files,
            out.bytes,
            shown,
        )
        .signed(objects, verified))
    }

    /// Opens and checks one local bundle with its `.sig`.
    fn check_path(&self, path: &Path) -> Result<(File, Checked), BundleError> {
        let mut file = File::open(path).map_err(|e| BundleError::io(path, e))?;
        let sig = read_sig(path)?;
        if sig.is_none() && !self.options.insecure_allow_unsigned {
            return Err(BundleError::Unsigned {
                sig: sign::sig_path(path),
            });
        }
        let sig = sig.as_ref().map(|(p, t)| (p.as_path(), t.as_slice()));
        let checked = check_bundle(&mut file, sig, &self.options, &self.reference, &self.limits)?;
        Ok((file, checked))
    }

    fn err(&self, at: &Path, source: BundleError) -> SourceError {
        SourceError::Bundle {
            location: at.display().to_string(),
            source,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, SourceError> {
        self.state
            .lock()
            .map_err(|_| SourceError::Config("bundle source state poisoned".into()))
    }
}
