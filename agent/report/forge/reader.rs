//! Reading a commit's statuses: exactly one request per read, never retried here
//! (the gate reads again at its next poll), rate limits honoured.
//!
//! In: the reporter's [`ForgeConfig`] and a commit. Out: the statuses of the
//! contexts asked for, and how long the forge asked not to be read again (an
//! exhausted limit, or a `Retry-After`). Blocking (ureq): async callers run
//! [`StatusReader::read`] on `spawn_blocking`. The token never appears in an error.

use std::time::Duration;

use super::response::{self, Reply};
use super::{ForgeConfig, Provider, Sleeper, SystemClock, read, redact_userinfo};
use crate::gate::SeenStatus;

/// Largest answer read: 100 statuses with long descriptions fit well inside.
const MAX_BODY_BYTES: u64 = 1 << 20;
/// When a forge rate-limits without saying for how long.
const UNSPECIFIED_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What one read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub statuses: Vec<SeenStatus>,
    /// The forge said its limit is used up: read no sooner than this.
    pub hold_off: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Request(#[from] super::ForgeError),
    #[error(
        "{provider} refused reading the statuses of {commit} on {repo}: {status} {message}{hint}"
    )]
    Rejected {
        provider: Provider,
        commit: String,
        repo: String,
        status: u16,
        message: String,
        hint: &'static str,
    },
    #[error("{provider} rate limit reached reading the statuses of {commit} on {repo}; reading again in {}s", .retry_after.as_secs())]
    RateLimited {
        provider: Provider,
        commit: String,
        repo: String,
        retry_after: Duration,
    },
    #[error("{provider} answered {status} {message} reading the statuses of {commit} on {repo}")]
    Server {
        provider: Provider,
        commit: String,
        repo: String,
        status: u16,
        message: String,
    },
    #[error("could not reach {provider} at {url}: {reason}")]
    Network {
        provider: Provider,
        url: String,
        reason: String,
    },
    #[error(
        "{provider} answered the statuses of {commit} on {repo} in a form hawser cannot read: {reason}"
    )]
    Answer {
        provider: Provider,
        commit: String,
        repo: String,
        reason: String,
    },
}

impl ReadError {
    /// How long the forge asked not to be read, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReadError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Reads commit statuses from one repository.
pub struct StatusReader<S: Sleeper = SystemClock> {
    config: ForgeConfig,
    agent: ureq::Agent,
    clock: S,
}

impl<S: Sleeper> std::fmt::Debug for StatusReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusReader")
            .field("config", &self.config)
            .finish()
    }
}

impl StatusReader<SystemClock> {
    pub fn new(config: ForgeConfig) -> StatusReader<SystemClock> {
        StatusReader::with_clock(config, SystemClock)
    }
}

impl<S: Sleeper> StatusReader<S> {
    pub fn with_clock(config: ForgeConfig, clock: S) -> StatusReader<S> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirect would carry the token to wherever it points; refuse instead.
            .max_redirects(0)
            .timeout_global(Some(TIMEOUT))
            .user_agent(concat!("hawser/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        StatusReader {
            config,
            agent,
            clock,
        }
    }

    pub fn config(&self) -> &ForgeConfig {
        &self.config
    }

    /// One GET: the statuses of `commit` under the `wanted` contexts.
    #[tracing::instrument(skip_all, fields(provider = %self.config.provider, commit = %commit))]
    pub fn read(&self, commit: &str, wanted: &[String]) -> Result<Read, ReadError> {
        let req = read::build(&self.config, commit)?;
        let provider = self.config.provider;
        let short: String = commit.chars().take(7).collect();
        let repo = self.config.repo.clone();
        let (auth_name, auth_value) = req.auth.header(&self.config.token);
        let mut builder = self.agent.get(&req.url).header(auth_name, &auth_value);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        let mut answer = builder.call().map_err(|e| ReadError::Network {
            provider,
            url: redact_userinfo(req.url.split('?').next().unwrap_or(&req.url)),
            reason: self.redact(&e.to_string()),
        })?;
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let body = answer
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .unwrap_or_default();
        let now = self.clock.now();
        match response::classify(provider, status, &header, &body, now) {
            Reply::Done => {}
            Reply::RateLimited { wait } => {
                return Err(ReadError::RateLimited {
                    provider,
                    commit: short,
                    repo,
                    retry_after: wait.unwrap_or(UNSPECIFIED_RATE_LIMIT_WAIT),
                });
            }
            Reply::Transient { status, message } => {
                return Err(ReadError::Server {
                    provider,
                    commit: short,
                    repo,
                    status,
                    message: self.redact(&message),
                });
            }
            Reply::TooManyStatuses => {
                return Err(ReadError::Server {
                    provider,
                    commit: short,
                    repo,
                    status,
                    message: "unexpected answer".into(),
                });
            }
            Reply::Rejected {
                status,
                message,
                hint,
            } => {
                return Err(ReadError::Rejected {
                    provider,
                    commit: short,
                    repo,
                    status,
                    message: self.redact(&message),
                    hint: read_hint(status, hint),
                });
            }
        }
        let statuses =
            read::parse(provider, &body, wanted).map_err(|reason| ReadError::Answer {
                provider,
                commit: short,
                repo,
                reason,
            })?;
        Ok(Read {
            statuses,
            hold_off: response::exhausted_wait(&header, now),
        })
    }

    /// A forge could echo the token back; make sure no message carries it.
    fn redact(&self, text: &str) -> String {
        let secret = self.config.token.expose();
        if secret.is_empty() {
            text.to_string()
        } else {
            text.replace(secret, "***")
        }
    }
}

/// The posting hints speak of writing; a read needs only read access.
fn read_hint(status: u16, hint: &'static str) -> &'static str {
    match status {
        403 => "; check that the token may read commit statuses",
        _ => hint,
    }
}
