//! HTTP for sources: one ureq agent configured once from [`HttpOptions`] (timeouts,
//! CA bundle, proxy, redirects, gzip) plus credentials read from files. Credentials go
//! into request headers only: never into URLs, logs, `Debug` output or errors.
//!
//! Redirects and credentials, one rule for every source (git, tarball, bundle, OCI):
//! - Only the first request of an exchange follows redirects ([`Client::get`]: git's
//!   `info/refs`, an archive or bundle download, an OCI manifest or blob). Follow-up
//!   requests ([`Client::post`]: git's `ls-refs` and `fetch`) go to where the first one
//!   ended and are never redirected; a 3xx there is an error. This is git's
//!   `http.followRedirects=initial`.
//! - A hop from `https` to `http` is always refused.
//! - A hop to another origin (scheme, host and port) is refused unless
//!   `--follow-redirects=any-origin`; [`Client::get_addressed`] (content checked by
//!   digest afterwards, e.g. OCI blobs on a CDN) may always change origin.
//! - Credentials are sent only to the origin of the configured URL, never to another,
//!   whatever the redirect setting.
//!
//! Deadlines: besides the per-read `--read-timeout`, every request runs under a
//! [`Deadline`] (`--fetch-timeout`) covering its redirects and its whole body, so a
//! server that trickles bytes or progress forever is cut off and the error names the
//! limit.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ureq::Body;
use ureq::http::Response;
use ureq::tls::TlsConfig;

mod auth;
mod body;
mod config;
mod redirect;

pub use auth::{Auth, split_userinfo, take_userinfo};
pub use body::{BodyReader, Budget, Deadline, OverBudget, io_error};
use config::{load_ca, proxy};
pub use redirect::Redirects;
use redirect::{Origin, join_url};

use super::{SourceError, redact_url};

/// How to talk HTTP to a source.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub auth: Option<Auth>,
    /// PEM bundle of CA certificates replacing the built-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// Proxy URL (from `--https-proxy` / `HTTPS_PROXY`).
    pub proxy: Option<String>,
    /// Comma-separated hosts that bypass the proxy (`NO_PROXY`).
    pub no_proxy: Option<String>,
    pub connect_timeout: Duration,
    /// Longest wait for any single read, so a stalled server fails instead of hanging.
    pub read_timeout: Duration,
    /// Longest a poll or a fetch may take as a whole (`--fetch-timeout`).
    pub fetch_timeout: Duration,
    pub max_redirects: u32,
    /// Which redirects the first request of an exchange may follow.
    pub redirects: Redirects,
    /// Where the credentials may go: the configured URL's origin. Filled in by
    /// [`take_userinfo`]; when unset, the origin of the client's first request.
    pub credential_origin: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            auth: None,
            ca_file: None,
            proxy: None,
            no_proxy: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(300),
            max_redirects: 5,
            redirects: Redirects::SameOrigin,
            credential_origin: None,
        }
    }
}

/// The configured agent, plus a count of response body bytes received.
pub struct Client {
    agent: ureq::Agent,
    auth: Option<Auth>,
    credential_origin: OnceLock<Origin>,
    redirects: Redirects,
    max_redirects: u32,
    fetch_timeout: Duration,
    received: Arc<AtomicU64>,
}

/// Whether a request may follow redirects, and to where.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Follow {
    /// A follow-up request: never redirected.
    Never,
    /// The first request of an exchange: as `--follow-redirects` says.
    Configured,
    /// Content checked by digest afterwards: any origin (still never https → http).
    AnyOrigin,
}

impl Client {
    pub fn new(opts: &HttpOptions) -> Result<Self, SourceError> {
        let mut tls = TlsConfig::builder();
        if let Some(path) = &opts.ca_file {
            tls = tls.root_certs(load_ca(path)?);
        }
        let proxy = match &opts.proxy {
            Some(url) if !url.is_empty() => Some(proxy(url, opts.no_proxy.as_deref())?),
            _ => None,
        };
        // Redirects are followed here, hop by hop, so that every hop is checked
        // against the rule above; ureq itself follows none.
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .proxy(proxy)
            .max_redirects(0)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
            .user_agent(format!("git/hawser-{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .build();
        let credential_origin = OnceLock::new();
        if let Some(origin) = opts.credential_origin.as_deref().and_then(Origin::of) {
            let _ = credential_origin.set(origin);
        }
        Ok(Self {
            agent: config.new_agent(),
            auth: opts.auth.clone(),
            credential_origin,
            redirects: opts.redirects,
            max_redirects: opts.max_redirects,
            fetch_timeout: opts.fetch_timeout,
            received: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Response body bytes read so far through [`Client::body`].
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// A deadline of `--fetch-timeout` from now, for an exchange of several requests.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.fetch_timeout)
    }

    /// GET, the first request of an exchange: follows redirects as configured, under
    /// a deadline of its own. 2xx and 304 are answers, anything else an error naming
    /// the status.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response<Body>, SourceError> {
        self.get_within(url, headers, self.deadline())
    }

    /// [`Client::get`] as part of an exchange bounded by `deadline`.
    pub fn get_within(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        deadline: Deadline,
    ) -> Result<Response<Body>, SourceError> {
        self.send(url, headers, None, Follow::Configured, deadline)
    }

    /// GET of content verified by its digest afterwards (an OCI blob): may be
    /// redirected to another origin, which never receives the credentials.
    pub fn get_addressed(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response<Body>, SourceError> {
        self.send(url, headers, None, Follow::AnyOrigin, self.deadline())
    }

    /// POST with a body, a follow-up request: never redirected.
    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response<Body>, SourceError> {
        self.post_within(url, headers, body, self.deadline())
    }

    /// [`Client::post`] as part of an exchange bounded by `deadline`.
    pub fn post_within(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        deadline: Deadline,
    ) -> Result<Response<Body>, SourceError> {
        self.send(url, headers, Some(body), Follow::Never, deadline)
    }

    fn send(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        follow: Follow,
        deadline: Deadline,
    ) -> Result<Response<Body>, SourceError> {
        let first = Origin::of(url)
            .ok_or_else(|| SourceError::Config(format!("invalid url {}", redact_url(url))))?;
        let home = self.credential_origin.get_or_init(|| first.clone());
        let mut url = url.to_string();
        let mut hops = 0;
        loop {
            let origin = Origin::of(&url)
                .ok_or_else(|| SourceError::Config(format!("invalid url {}", redact_url(&url))))?;
            let auth = self.auth.as_ref().filter(|_| &origin == home);
            let result = match body {
                Some(body) => {
                    let mut req = self.agent.post(&url);
                    for (k, v) in headers {
                        req = req.header(*k, *v);
                    }
                    if let Some(auth) = auth {
                        req = req.header("Authorization", auth.header());
                    }
                    req.config()
                        .timeout_global(Some(deadline.remaining()))
                        .build()
                        .send(body)
                }
                None => {
                    let mut req = self.agent.get(&url);
                    for (k, v) in headers {
                        req = req.header(*k, *v);
                    }
                    if let Some(auth) = auth {
                        req = req.header("Authorization", auth.header());
                    }
                    req.config()
                        .timeout_global(Some(deadline.remaining()))
                        .build()
                        .call()
                }
            };
            let resp = result.map_err(|e| request_error(&redact_url(&url), e, &deadline))?;
            let status = resp.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return check(&url, resp);
            }
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let next = join_url(&url, location);
            let refuse = |reason: &'static str| SourceError::Redirect {
                url: redact_url(&url),
                to: redact_url(&next),
                reason,
            };
            if follow == Follow::Never || self.redirects == Redirects::Never {
                return Err(refuse(if follow == Follow::Never {
                    "follow-up requests are never redirected"
                } else {
                    "--follow-redirects=never"
                }));
            }
            let to = Origin::of(&next).ok_or_else(|| refuse("not an http(s) url"))?;
            if origin.scheme == "https" && to.scheme == "http" {
                return Err(refuse("from https to http"));
            }
            if to != origin
                && follow == Follow::Configured
                && self.redirects != Redirects::AnyOrigin
            {
                return Err(refuse(
                    "to another origin (scheme, host and port); --follow-redirects=any-origin allows it",
                ));
            }
            hops += 1;
            if hops > self.max_redirects {
                return Err(SourceError::Network {
                    url: redact_url(&url),
                    message: "too many redirects".into(),
                });
            }
            tracing::debug!(from = %redact_url(&url), to = %redact_url(&next), "following a redirect");
            url = next;
        }
    }

    /// One GET or HEAD exactly as given, for protocols that negotiate credentials and
    /// redirects themselves (OCI registries): the configured credentials are not
    /// added, and every status comes back as a response.
    pub fn exchange(
        &self,
        head: bool,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response<Body>, SourceError> {
        let deadline = self.deadline();
        let call = if head {
            let mut req = self.agent.head(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.config()
                .timeout_global(Some(deadline.remaining()))
                .build()
                .call()
        } else {
            let mut req = self.agent.get(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.config()
                .timeout_global(Some(deadline.remaining()))
                .build()
                .call()
        };
        call.map_err(|e| request_error(&redact_url(url), e, &deadline))
    }

    /// The body as a reader that counts bytes, enforces `deadline` and maps failures
    /// to source errors.
    pub fn body(&self, url: &str, resp: Response<Body>) -> BodyReader {
        self.body_within(url, resp, self.deadline())
    }

    /// [`Client::body`] for a response of an exchange bounded by `deadline`.
    pub fn body_within(&self, url: &str, resp: Response<Body>, deadline: Deadline) -> BodyReader {
        BodyReader {
            inner: Box::new(resp.into_body().into_reader()),
            url: redact_url(url),
            received: Arc::clone(&self.received),
            deadline,
        }
    }
}

pub(super) fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn check(url: &str, resp: Response<Body>) -> Result<Response<Body>, SourceError> {
    let status = resp.status().as_u16();
    if (200..300).contains(&status) || status == 304 {
        Ok(resp)
    } else {
        Err(status_error(&redact_url(url), &resp))
    }
}

/// The error for an answer that is not a success: [`SourceError::Throttled`] when a
/// 429 or 503 says when to come back (`Retry-After`, read as the forge reporter
/// reads it), else [`SourceError::Http`]. `url` is already redacted.
pub fn status_error(url: &str, resp: &Response<Body>) -> SourceError {
    let status = resp.status().as_u16();
    let retry_after = matches!(status, 429 | 503)
        .then(|| resp.headers().get("retry-after")?.to_str().ok())
        .flatten()
        .and_then(|v| crate::duration::retry_after(v, std::time::SystemTime::now()));
    match retry_after {
        Some(retry_after) => SourceError::Throttled {
            url: url.to_string(),
            status,
            retry_after,
        },
        None => SourceError::Http {
            url: url.to_string(),
            status,
        },
    }
}

fn request_error(url: &str, err: ureq::Error, deadline: &Deadline) -> SourceError {
    let url = url.to_string();
    let timed_out = matches!(&err, ureq::Error::Timeout(_))
        || matches!(&err, ureq::Error::Io(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock));
    if timed_out && deadline.passed() {
        return SourceError::Deadline {
            url,
            limit: "fetch-timeout",
            after_s: deadline.after.as_secs(),
        };
    }
    match err {
        ureq::Error::Timeout(_) => SourceError::Timeout { url },
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => SourceError::Timeout { url },
            // rustls reports handshake failures (an untrusted certificate) as invalid
            // data on the socket: a configuration problem, not a transient one.
            io::ErrorKind::InvalidData if url.starts_with("https://") => SourceError::Tls {
                url,
                message: one_line(&e.to_string()),
            },
            _ => SourceError::Network {
                url,
                message: one_line(&e.to_string()),
            },
        },
        ureq::Error::Tls(_) | ureq::Error::Pem(_) | ureq::Error::Rustls(_) => SourceError::Tls {
            url,
            message: one_line(&err.to_string()),
        },
        ureq::Error::StatusCode(status) => SourceError::Http { url, status },
        ureq::Error::TooManyRedirects => SourceError::Network {
            url,
            message: "too many redirects".into(),
        },
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
            SourceError::Config(format!("{url}: {}", one_line(&err.to_string())))
        }
        other => SourceError::Network {
            url,
            message: one_line(&other.to_string()),
        },
    }
}
