//! Posting a status: one request per try, bounded retries, rate limits honoured.
//!
//! Blocking (ureq): async callers run [`Reporter::post`] on `spawn_blocking`.

use std::time::{Duration, SystemTime};

use super::response::{self, Reply};
use super::{
    CommitStatus, ForgeConfig, ForgeError, Posted, record, redact_userinfo, request, should_post,
};

/// Time, injected so tests neither sleep nor depend on the wall clock.
pub trait Sleeper: Send + Sync {
    fn sleep(&self, duration: Duration);
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Sleeper for SystemClock {
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per status at most (rate-limit waits included).
    pub tries: u32,
    /// Backoff after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// Rate-limit waits up to this long are waited out; longer ones are returned.
    pub max_wait: Duration,
    /// Per-request timeout (connect, send, answer).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            tries: 3,
            first_backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

/// When a forge rate-limits without saying for how long (GitHub: "wait at least one
/// minute").
const UNSPECIFIED_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Largest answer body read (error bodies are small; this bounds a misbehaving one).
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// Posts commit statuses for one repository and context.
pub struct Reporter<S: Sleeper = SystemClock> {
    config: ForgeConfig,
    agent: ureq::Agent,
    clock: S,
    policy: RetryPolicy,
}

impl<S: Sleeper> std::fmt::Debug for Reporter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("config", &self.config)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Reporter<SystemClock> {
    pub fn new(config: ForgeConfig) -> Reporter<SystemClock> {
        Reporter::with_clock(config, SystemClock, RetryPolicy::default())
    }
}

impl<S: Sleeper> Reporter<S> {
    pub fn with_clock(config: ForgeConfig, clock: S, policy: RetryPolicy) -> Reporter<S> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirect would carry the token to wherever it points; refuse instead.
            .max_redirects(0)
            .timeout_global(Some(policy.timeout))
            .user_agent(concat!("hawser/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Reporter {
            config,
            agent,
            clock,
            policy,
        }
    }

    pub fn config(&self) -> &ForgeConfig {
        &self.config
    }

    /// The record of `status` as posted under this reporter's context.
    pub fn posted(&self, status: &CommitStatus) -> Posted {
        Posted {
            commit: status.commit.clone(),
            context: self.config.context.clone(),
            state: status.state,
            description: status.description.clone(),
        }
    }

    /// Posts `status` unless `history` says it is already there; records it when
    /// posted. Returns whether a request was made.
    pub fn post_once(
        &self,
        history: &mut Vec<Posted>,
        status: &CommitStatus,
    ) -> Result<bool, ForgeError> {
        let posted = self.posted(status);
        if !should_post(history, &posted) {
            return Ok(false);
        }
        self.post(status)?;
        record(history, posted);
        Ok(true)
    }

    /// Sets `status` on the forge: retries network errors and 5xx with backoff, waits
    /// out short rate limits, returns refusals at once.
    ///
    /// Errors are not logged here: the caller logs each once and counts it.
    #[tracing::instrument(skip_all, fields(provider = %self.config.provider, commit = %status.commit, state = ?status.state))]
    pub fn post(&self, status: &CommitStatus) -> Result<(), ForgeError> {
        let req = request::build(&self.config, status)?;
        // A JSON value always serializes; Display is that serialization.
        let body = req.body.to_string().into_bytes();
        let tries = self.policy.tries.max(1);
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 1;
        loop {
            let last = attempt >= tries;
            let verdict = self.send(&req, &body).map(|answer| {
                let header = |name: &str| answer.header(name);
                let provider = self.config.provider;
                (
                    answer.status,
                    response::classify(
                        provider,
                        answer.status,
                        &header,
                        &answer.body,
                        self.clock.now(),
                    ),
                )
            });
            let wait = match verdict {
                Ok((code, Reply::Done)) => {
                    tracing::debug!(status = code, "commit status posted");
                    return Ok(());
                }
                Ok((_, Reply::RateLimited { wait })) => match wait {
                    Some(wait) if !last && wait <= self.policy.max_wait => {
                        tracing::info!(wait_secs = wait.as_secs(), "forge rate limit; waiting");
                        wait
                    }
                    // Too long, unstated or out of tries: say when to come back.
                    _ => {
                        return Err(
                            self.rate_limited(status, wait.unwrap_or(UNSPECIFIED_RATE_LIMIT_WAIT))
                        );
                    }
                },
                Ok((
                    _,
                    Reply::Transient {
                        status: code,
                        message,
                    },
                )) => {
                    let message = self.redact(&message);
                    if last {
                        return Err(ForgeError::Server {
                            provider: self.config.provider,
                            commit: short(&status.commit),
                            repo: self.config.repo.clone(),
                            status: code,
                            message,
                            tries,
                        });
                    }
                    tracing::info!(attempt, status = code, %message, "forge failed; retrying");
                    next_backoff(&mut backoff)
                }
                Ok((_, Reply::TooManyStatuses)) => {
                    return Err(ForgeError::TooManyStatuses {
                        provider: self.config.provider,
                        commit: short(&status.commit),
                        repo: self.config.repo.clone(),
                        context: self.config.context.clone(),
                    });
                }
                Ok((
                    _,
                    Reply::Rejected {
                        status: code,
                        message,
                        hint,
                    },
                )) => {
                    return Err(ForgeError::Rejected {
                        provider: self.config.provider,
                        commit: short(&status.commit),
                        repo: self.config.repo.clone(),
                        status: code,
                        message: self.redact(&message),
                        hint,
                    });
                }
                Err(reason) => {
                    let reason = self.redact(&reason);
                    if last {
                        return Err(ForgeError::Network {
                            provider: self.config.provider,
                            url: url_for_message(&req.url),
                            tries,
                            reason,
                        });
                    }
                    tracing::info!(attempt, %reason, "forge unreachable; retrying");
                    next_backoff(&mut backoff)
                }
            };
            self.clock.sleep(wait);
            attempt += 1;
        }
    }

    /// One request; the error is ureq's one-line reason (it never contains headers).
    fn send(&self, req: &request::ForgeRequest, body: &[u8]) -> Result<Answer, String> {
        let (auth_name, auth_value) = req.auth.header(&self.config.token);
        let mut builder = self.agent.post(&req.url).header(auth_name, &auth_value);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        let mut response = builder.send(body).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // An unreadable error body still leaves the status code to go by.
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .unwrap_or_default();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn rate_limited(&self, status: &CommitStatus, wait: Duration) -> ForgeError {
        ForgeError::RateLimited {
            provider: self.config.provider,
            commit: short(&status.commit),
            repo: self.config.repo.clone(),
            retry_after: wait,
        }
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

/// The backoff to wait now; the next one is twice as long.
fn next_backoff(backoff: &mut Duration) -> Duration {
    let now = *backoff;
    *backoff = backoff.saturating_mul(2);
    now
}

/// A forge's answer.
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// The first 7 characters of a commit id, as people read them.
fn short(commit: &str) -> String {
    commit.chars().take(7).collect()
}

/// A URL for an error message: no credentials, no query.
fn url_for_message(url: &str) -> String {
    redact_userinfo(url.split('?').next().unwrap_or(url))
}
