//! HTTP for sources: one ureq agent configured once from [`HttpOptions`] (timeouts,
//! CA bundle, proxy, redirects, gzip) plus credentials read from files. Credentials go
//! into request headers only: never into URLs, logs, `Debug` output or errors.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ureq::http::Response;
use ureq::tls::{PemItem, RootCerts, TlsConfig};
use ureq::{Body, Proxy};

use super::{SourceError, redact_url};
use crate::encoding::base64;

/// Credentials for the source, read from files at startup.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Basic { username: String, password: String },
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { .. } => f.write_str("Auth::Basic(<redacted>)"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
        }
    }
}

impl Auth {
    /// Reads `user:password` from a file (one trailing newline ignored).
    pub fn basic_from_file(path: &Path) -> Result<Self, SourceError> {
        let text = read_secret(path, "basic auth file")?;
        let (username, password) = text.split_once(':').ok_or_else(|| {
            SourceError::Config(format!(
                "basic auth file {} must contain user:password",
                path.display()
            ))
        })?;
        Ok(Auth::Basic {
            username: username.to_string(),
            password: password.to_string(),
        })
    }

    /// Reads a bearer token from a file (surrounding whitespace ignored).
    pub fn bearer_from_file(path: &Path) -> Result<Self, SourceError> {
        let text = read_secret(path, "bearer token file")?;
        Ok(Auth::Bearer(text.trim().to_string()))
    }

    fn header(&self) -> String {
        match self {
            Auth::Basic { username, password } => {
                format!(
                    "Basic {}",
                    base64(format!("{username}:{password}").as_bytes())
                )
            }
            Auth::Bearer(token) => format!("Bearer {token}"),
        }
    }
}

fn read_secret(path: &Path, what: &'static str) -> Result<String, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourceError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(SourceError::Config(format!(
            "{what} {} is empty",
            path.display()
        )));
    }
    Ok(text.to_string())
}

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
    pub max_redirects: u32,
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
            max_redirects: 5,
        }
    }
}

/// The configured agent, plus a count of response body bytes received.
pub struct Client {
    agent: ureq::Agent,
    auth: Option<Auth>,
    received: Arc<AtomicU64>,
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
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .proxy(proxy)
            .max_redirects(opts.max_redirects)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .user_agent(format!("git/hawser-{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .build();
        Ok(Self {
            agent: config.new_agent(),
            auth: opts.auth.clone(),
            received: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Response body bytes read so far through [`Client::body`].
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// GET; 2xx and 304 are answers, anything else an error naming the status.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response<Body>, SourceError> {
        let mut req = self.agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth.header());
        }
        check(url, req.call())
    }

    /// POST with a body; same status rules as [`Client::get`].
    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response<Body>, SourceError> {
        let mut req = self.agent.post(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth.header());
        }
        check(url, req.send(body))
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
        let call = if head {
            let mut req = self.agent.head(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        } else {
            let mut req = self.agent.get(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        };
        call.map_err(|e| request_error(&redact_url(url), e))
    }

    /// The body as a reader that counts bytes and maps failures to source errors.
    pub fn body(&self, url: &str, resp: Response<Body>) -> BodyReader {
        BodyReader {
            inner: Box::new(resp.into_body().into_reader()),
            url: redact_url(url),
            received: Arc::clone(&self.received),
        }
    }
}

/// A response body; read errors surface as `io::Error`s wrapping a [`SourceError`].
pub struct BodyReader {
    inner: Box<dyn Read + Send>,
    url: String,
    received: Arc<AtomicU64>,
}

impl BodyReader {
    /// Converts an error from reading this body back into a `SourceError`.
    pub fn error(&self, err: io::Error) -> SourceError {
        io_error(&self.url, err)
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Maps an I/O error from a response body: timeouts and resets are network trouble.
pub fn io_error(url: &str, err: io::Error) -> SourceError {
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => SourceError::Timeout {
            url: url.to_string(),
        },
        _ => SourceError::Network {
            url: url.to_string(),
            message: format!("reading response: {}", one_line(&err.to_string())),
        },
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn check(
    url: &str,
    result: Result<Response<Body>, ureq::Error>,
) -> Result<Response<Body>, SourceError> {
    let shown = redact_url(url);
    let resp = result.map_err(|e| request_error(&shown, e))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) || status == 304 {
        Ok(resp)
    } else {
        Err(SourceError::Http { url: shown, status })
    }
}

fn request_error(url: &str, err: ureq::Error) -> SourceError {
    let url = url.to_string();
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

fn load_ca(path: &Path) -> Result<RootCerts, SourceError> {
    let pem = std::fs::read(path).map_err(|source| SourceError::ReadFile {
        what: "ca bundle",
        path: path.to_path_buf(),
        source,
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(SourceError::Config(format!(
                    "ca bundle {}: {e}",
                    path.display()
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(SourceError::Config(format!(
            "ca bundle {} holds no certificate",
            path.display()
        )));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

fn proxy(url: &str, no_proxy: Option<&str>) -> Result<Proxy, SourceError> {
    let bad = |e: ureq::Error| SourceError::Config(format!("proxy {}: {e}", redact_url(url)));
    let parsed = Proxy::new(url).map_err(bad)?;
    let mut b = Proxy::builder(parsed.protocol())
        .host(parsed.host())
        .port(parsed.port());
    if let Some(user) = parsed.username() {
        b = b.username(user);
    }
    if let Some(password) = parsed.password() {
        b = b.password(password);
    }
    for host in no_proxy.unwrap_or_default().split(',') {
        let host = host.trim();
        if !host.is_empty() {
            b = b.no_proxy(host);
        }
    }
    b.build().map_err(bad)
}

/// Splits `user:password@` out of a URL so it never travels or prints as part of it.
pub fn split_userinfo(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((info, host)) => {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            (
                format!("{scheme}://{host}{path}"),
                Some((user.to_string(), pass.to_string())),
            )
        }
        None => (url.to_string(), None),
    }
}

/// Removes credentials from `url`, using them for basic auth unless the options
/// already name credentials.
pub fn take_userinfo(url: &str, http: &mut HttpOptions) -> String {
    let (url, userinfo) = split_userinfo(url);
    if let (Some((username, password)), None) = (userinfo, &http.auth) {
        http.auth = Some(Auth::Basic { username, password });
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_becomes_credentials() {
        let (url, info) = split_userinfo("https://bob:pw@git.example/r.git");
        assert_eq!(url, "https://git.example/r.git");
        assert_eq!(info, Some(("bob".into(), "pw".into())));
        assert_eq!(split_userinfo("https://h/r").1, None);
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth");
        std::fs::write(&file, "alice:s3cret\n").unwrap();
        let auth = Auth::basic_from_file(&file).unwrap();
        assert_eq!(
            auth,
            Auth::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            }
        );
        let opts = HttpOptions {
            auth: Some(auth),
            ..HttpOptions::default()
        };
        assert!(!format!("{opts:?}").contains("s3cret"));
        std::fs::write(&file, "no-colon\n").unwrap();
        let err = Auth::basic_from_file(&file).unwrap_err().to_string();
        assert!(err.contains("must contain user:password"), "{err}");
        assert!(!err.contains("no-colon"));
    }
}
