//! Posting a status: one request per try, bounded retries, rate limits honoured.
//!
//! Blocking (ureq): async callers run [`Reporter::post`] on `spawn_blocking`.

use std::time::{Duration, SystemTime};

use super::response::{self, Verdict};
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

impl std::fmt::Debug for Reporter<SystemClock> {
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
        let body =
            serde_json::to_vec(&req.body).map_err(|e| self.network(&req.url, 0, e.to_string()))?;
        let tries = self.policy.tries.max(1);
        let mut backoff = self.policy.first_backoff;
        for attempt in 1..=tries {
            let last = attempt == tries;
            let failure = match self.send(&req, &body) {
                Ok((code, header, text)) => {
                    match response::classify(
                        self.config.provider,
                        code,
                        &|n| header(n),
                        &text,
                        self.clock.now(),
                    ) {
                        Verdict::Done => {
                            tracing::debug!(status = code, "commit status posted");
                            return Ok(());
                        }
                        Verdict::RateLimited { wait } => {
                            // A limit without a stated wait is not waited out here.
                            let Some(wait) = wait else {
                                return Err(self.rate_limited(status, UNSPECIFIED_RATE_LIMIT_WAIT));
                            };
                            if last || wait > self.policy.max_wait {
                                return Err(self.rate_limited(status, wait));
                            }
                            tracing::info!(wait_secs = wait.as_secs(), "forge rate limit; waiting");
                            self.clock.sleep(wait);
                            continue;
                        }
                        Verdict::Transient {
                            status: code,
                            message,
                        } => {
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
                            format!("{code} {message}")
                        }
                        Verdict::TooManyStatuses => {
                            return Err(ForgeError::TooManyStatuses {
                                provider: self.config.provider,
                                commit: short(&status.commit),
                                repo: self.config.repo.clone(),
                                context: self.config.context.clone(),
                            });
                        }
                        Verdict::Rejected {
                            status: code,
                            message,
                            hint,
                        } => {
                            return Err(ForgeError::Rejected {
                                provider: self.config.provider,
                                commit: short(&status.commit),
                                repo: self.config.repo.clone(),
                                status: code,
                                message: self.redact(&message),
                                hint,
                            });
                        }
                    }
                }
                Err(reason) => {
                    let reason = self.redact(&reason);
                    if last {
                        return Err(self.network(&req.url, tries, reason));
                    }
                    reason
                }
            };
            tracing::info!(attempt, backoff_ms = backoff.as_millis() as u64, %failure, "posting the commit status failed; retrying");
            self.clock.sleep(backoff);
            backoff = backoff.saturating_mul(2);
        }
        // Unreachable in practice: the last attempt always returns above.
        Err(self.network(&req.url, tries, "no attempt made".to_string()))
    }

    /// One request. Ok carries the status code, a header lookup and the body text.
    #[allow(clippy::type_complexity)]
    fn send(
        &self,
        req: &request::ForgeRequest,
        body: &[u8],
    ) -> Result<(u16, Box<dyn Fn(&str) -> Option<String>>, String), String> {
        let (auth_name, auth_value) = req.auth.header(&self.config.token);
        let mut builder = self.agent.post(&req.url).header(auth_name, &auth_value);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        let mut response = builder.send(body).map_err(|e| e.to_string())?;
        let code = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .unwrap_or_default();
        let lookup = move |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok((code, Box::new(lookup), text))
    }

    fn rate_limited(&self, status: &CommitStatus, wait: Duration) -> ForgeError {
        ForgeError::RateLimited {
            provider: self.config.provider,
            commit: short(&status.commit),
            repo: self.config.repo.clone(),
            retry_after: wait,
        }
    }

    fn network(&self, url: &str, tries: u32, reason: String) -> ForgeError {
        ForgeError::Network {
            provider: self.config.provider,
            url: url_for_message(url),
            tries,
            reason,
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

/// The first 7 characters of a commit id, as people read them.
fn short(commit: &str) -> String {
    commit.chars().take(7).collect()
}

/// A URL for an error message: no credentials, no query.
fn url_for_message(url: &str) -> String {
    redact_userinfo(url.split('?').next().unwrap_or(url))
}
