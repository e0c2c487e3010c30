//! Talking to one repository of a registry (the OCI distribution API): manifest HEAD
//! and GET, blob GET streamed through sha256. Credentials are negotiated the way
//! docker does: a 401's `WWW-Authenticate` says Basic (then the configured user and
//! password are sent) or Bearer (then a token is fetched from the realm, with them
//! when configured, and cached until it expires, so steady polling is one request).
//!
//! Redirects are followed here, not by the HTTP agent, so the rules are visible:
//! credentials go only to the registry's own origin (a blob redirected to storage
//! elsewhere is fetched without them), and an https registry is never left for http.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use ureq::Body;
use ureq::http::Response;

use super::OciError;
use super::auth::{self, Challenge};
use super::reference::Digest;
use crate::source::http::Client;
use crate::source::{Auth, SourceError};

const MAX_HOPS: usize = 5;
/// Largest token server answer read.
const MAX_TOKEN_ANSWER: u64 = 1 << 20;

/// How the registry wants to be authenticated, learned from its 401s.
#[derive(Default)]
struct Session {
    /// `https` or `http`, once a request got an answer.
    scheme: Option<&'static str>,
    /// The registry answered Basic: send the credentials with every request.
    basic: bool,
    /// The registry answered Bearer: where to get tokens.
    bearer: Option<Challenge>,
    token: Option<(String, Instant)>,
}

pub struct Registry {
    client: Client,
    registry: String,
    repository: String,
    credentials: Option<Auth>,
    /// Plain HTTP allowed (loopback or `--insecure-registry`): https is tried first.
    insecure: bool,
    session: Mutex<Session>,
}

/// A manifest as fetched: its bytes, their digest and the response's media type.
pub struct Fetched {
    pub body: Vec<u8>,
    pub digest: Digest,
    pub content_type: Option<String>,
}

impl Registry {
    pub fn new(
        client: Client,
        registry: &str,
        repository: &str,
        credentials: Option<Auth>,
        insecure: bool,
    ) -> Self {
        Self {
            client,
            registry: registry.to_string(),
            repository: repository.to_string(),
            credentials,
            insecure,
            session: Mutex::new(Session::default()),
        }
    }

    pub fn bytes_received(&self) -> u64 {
        self.client.received()
    }

    /// `HEAD` on a manifest: the digest the registry names (`Docker-Content-Digest`)
    /// and the ETag, without a body. `accept` is the media type the manifest had, so
    /// the poll request stays small.
    pub fn head_manifest(
        &self,
        reference: &str,
        accept: &str,
    ) -> Result<(Option<Digest>, Option<String>), SourceError> {
        let resp = self.request(true, &format!("manifests/{reference}"), accept)?;
        Ok((header_digest(&resp), header(&resp, "etag")))
    }

    /// `GET` a manifest; its digest is computed from the bytes, and must equal the one
    /// asked for (a digest reference) and the one the registry names.
    pub fn get_manifest(
        &self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<Fetched, SourceError> {
        let path = format!("manifests/{reference}");
        let resp = self.request(false, &path, super::manifest::ACCEPT)?;
        let named = header_digest(&resp);
        let content_type = header(&resp, "content-type");
        let url = self.shown(&path);
        let mut body = self.client.body(&url, resp);
        let mut bytes = Vec::new();
        (&mut body)
            .take(super::manifest::MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| body.error(e))?;
        if bytes.len() as u64 > super::manifest::MAX_MANIFEST_BYTES {
            return Err(SourceError::Limit {
                limit: "manifest size",
                max: super::manifest::MAX_MANIFEST_BYTES,
            });
        }
        let digest = Digest::of(&bytes);
        for want in expected.into_iter().chain(named.as_ref()) {
            if *want != digest {
                return Err(self.error(OciError::DigestMismatch {
                    what: format!("manifest {reference}"),
                    expected: want.to_string(),
                    actual: digest.to_string(),
                }));
            }
        }
        Ok(Fetched {
            body: bytes,
            digest,
            content_type,
        })
    }

    /// Streams blob `digest` into `out`, hashing as it goes; more than `max` bytes, or
    /// bytes whose sha256 is not `digest`, are an error (and `out` must be discarded).
    pub fn get_blob(
        &self,
        digest: &Digest,
        max: u64,
        limit: &'static str,
        out: &mut dyn Write,
    ) -> Result<u64, SourceError> {
        let path = format!("blobs/{digest}");
        let resp = self.request(false, &path, "*/*")?;
        let url = self.shown(&path);
        let mut body = self.client.body(&url, resp);
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
            if total > max {
                return Err(SourceError::Limit { limit, max });
            }
            sha.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| SourceError::write(std::path::Path::new("temporary blob"), e))?;
        }
        let actual = Digest::from_hash(&sha.finalize());
        if actual != *digest {
            return Err(self.error(OciError::DigestMismatch {
                what: format!("blob {digest}"),
                expected: digest.to_string(),
                actual: actual.to_string(),
            }));
        }
        Ok(total)
    }

    /// `https://registry/v2/repository/<path>`, without credentials (for messages).
    fn shown(&self, path: &str) -> String {
        let scheme = self.lock().ok().and_then(|s| s.scheme).unwrap_or("https");
        format!("{scheme}://{}/v2/{}/{path}", self.registry, self.repository)
    }

    fn error(&self, source: OciError) -> SourceError {
        SourceError::Oci {
            location: format!("oci://{}/{}", self.registry, self.repository),
            source,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Session>, SourceError> {
        self.session
            .lock()
            .map_err(|_| SourceError::Config("oci registry session poisoned".into()))
    }

    /// One API request with credentials negotiated: on a 401 the challenge is answered
    /// once and the request repeated. Any status other than 2xx is an error.
    fn request(&self, head: bool, path: &str, accept: &str) -> Result<Response<Body>, SourceError> {
        let mut answered = false;
        loop {
            let authorization = self.authorization()?;
            let resp = self.send(head, path, accept, authorization.as_deref())?;
            let status = resp.status().as_u16();
            if status == 401 && !answered {
                let challenge = header(&resp, "www-authenticate")
                    .and_then(|h| Challenge::parse(&h))
                    .ok_or_else(|| SourceError::Http {
                        url: self.shown(path),
                        status,
                    })?;
                self.answer(challenge)?;
                answered = true;
                continue;
            }
            if (200..300).contains(&status) {
                return Ok(resp);
            }
            return Err(crate::source::http::status_error(&self.shown(path), &resp));
        }
    }

    /// Sends to the registry over the scheme already found to work; the first request
    /// to a registry that may speak plain HTTP tries https, then http.
    fn send(
        &self,
        head: bool,
        path: &str,
        accept: &str,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, SourceError> {
        let known = self.lock()?.scheme;
        let schemes: Vec<&'static str> = match (known, self.insecure) {
            (Some(s), _) => vec![s],
            (None, true) => vec!["https", "http"],
            (None, false) => vec!["https"],
        };
        let mut first_error = None;
        for scheme in schemes {
            let url = format!("{scheme}://{}/v2/{}/{path}", self.registry, self.repository);
            match self.follow(head, &url, accept, authorization) {
                Ok(resp) => {
                    // An https server answers plain http with 400: the https error is
                    // the one that says what is wrong (an untrusted certificate, say).
                    if let Some(e) = first_error.take().filter(|_| resp.status().as_u16() == 400) {
                        return Err(e);
                    }
                    self.lock()?.scheme = Some(scheme);
                    return Ok(resp);
                }
                Err(e @ (SourceError::Tls { .. } | SourceError::Network { .. }))
                    if known.is_none() =>
                {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(first_error.unwrap_or(e)),
            }
        }
        Err(first_error.unwrap_or_else(|| SourceError::Config("no scheme to try".into())))
    }

    /// Follows redirects by hand: credentials only to the first URL's origin, and
    /// never from https to http.
    fn follow(
        &self,
        head: bool,
        url: &str,
        accept: &str,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, SourceError> {
        let first = origin(url).to_string();
        let mut url = url.to_string();
        for _ in 0..=MAX_HOPS {
            let mut headers = vec![("Accept", accept)];
            if let Some(value) = authorization.filter(|_| origin(&url) == first) {
                headers.push(("Authorization", value));
            }
            let resp = self.client.exchange(head, &url, &headers)?;
            if !resp.status().is_redirection() || resp.status().as_u16() == 304 {
                return Ok(resp);
            }
            let location = header(&resp, "location").ok_or_else(|| SourceError::Http {
                url: crate::source::redact_url(&url),
                status: resp.status().as_u16(),
            })?;
            let next = resolve(&url, &location);
            if url.starts_with("https://") && !next.starts_with("https://") {
                return Err(self.error(OciError::Redirect(format!(
                    "{} redirects to {}, leaving https",
                    crate::source::redact_url(&url),
                    crate::source::redact_url(&next)
                ))));
            }
            url = next;
        }
        Err(SourceError::Network {
            url: crate::source::redact_url(&url),
            message: "too many redirects".into(),
        })
    }

    /// The `Authorization` value for the next request: the configured bearer token,
    /// basic credentials once the registry asked for them, or a registry token
    /// (fetched anew when the cached one expired).
    fn authorization(&self) -> Result<Option<String>, SourceError> {
        if let Some(Auth::Bearer(token)) = &self.credentials {
            return Ok(Some(format!("Bearer {token}")));
        }
        let mut session = self.lock()?;
        if session.basic {
            return Ok(self.credentials.as_ref().map(basic_header));
        }
        if let Some((token, until)) = &session.token
            && Instant::now() < *until
        {
            return Ok(Some(format!("Bearer {token}")));
        }
        match session.bearer.clone() {
            Some(challenge) => {
                let (token, until) = self.token(&challenge, session.scheme)?;
                session.token = Some((token.clone(), until));
                Ok(Some(format!("Bearer {token}")))
            }
            None => Ok(None),
        }
    }

    /// Learns from a 401's challenge how to authenticate.
    fn answer(&self, challenge: Challenge) -> Result<(), SourceError> {
        let mut session = self.lock()?;
        match challenge {
            Challenge::Basic => match &self.credentials {
                Some(Auth::Basic { .. }) if !session.basic => session.basic = true,
                _ => {
                    return Err(self.error(OciError::Auth(
                        "the registry wants basic credentials: give --basic-auth-file or --docker-config"
                            .into(),
                    )));
                }
            },
            bearer @ Challenge::Bearer { .. } => {
                if matches!(self.credentials, Some(Auth::Bearer(_))) {
                    return Err(self.error(OciError::Auth(
                        "the registry refused the bearer token (--bearer-token-file)".into(),
                    )));
                }
                if session.bearer.is_some() && session.token.is_some() {
                    // A fresh token was just refused: the credentials are not enough.
                    session.token = None;
                    return Err(self.error(OciError::Auth(
                        "the registry refused its own token: the credentials may not pull this repository"
                            .into(),
                    )));
                }
                session.bearer = Some(bearer);
                session.token = None;
            }
        }
        Ok(())
    }

    /// GET `realm?service=…&scope=repository:<name>:pull`, with basic credentials when
    /// configured.
    fn token(
        &self,
        challenge: &Challenge,
        scheme: Option<&str>,
    ) -> Result<(String, Instant), SourceError> {
        let Challenge::Bearer { realm, service, .. } = challenge else {
            return Err(self.error(OciError::Auth("not a bearer challenge".into())));
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(self.error(OciError::Auth(format!(
                "token realm {realm:?} is not an http(s) URL"
            ))));
        }
        if scheme != Some("http") && realm.starts_with("http://") {
            return Err(self.error(OciError::Auth(format!(
                "token realm {} is plain http for an https registry",
                crate::source::redact_url(realm)
            ))));
        }
        let scope = format!("repository:{}:pull", self.repository);
        let mut url = realm.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        if let Some(service) = service {
            url.push_str(&format!("service={}&", query_escape(service)));
        }
        url.push_str(&format!("scope={}", query_escape(&scope)));
        let mut headers = Vec::new();
        let basic = match &self.credentials {
            Some(creds @ Auth::Basic { .. }) => Some(basic_header(creds)),
            _ => None,
        };
        if let Some(value) = &basic {
            headers.push(("Authorization", value.as_str()));
        }
        let resp = self.client.exchange(false, &url, &headers)?;
        let status = resp.status().as_u16();
        let shown = crate::source::redact_url(&url);
        if !(200..300).contains(&status) {
            return Err(crate::source::http::status_error(&shown, &resp));
        }
        let mut body = self.client.body(&url, resp);
        let mut bytes = Vec::new();
        (&mut body)
            .take(MAX_TOKEN_ANSWER)
            .read_to_end(&mut bytes)
            .map_err(|e| body.error(e))?;
        let (token, lifetime) = auth::parse_token(&bytes)
            .map_err(|e| self.error(OciError::Auth(format!("{shown}: {e}"))))?;
        // Renew a little early so a poll never carries a token that expires in flight.
        let margin = Duration::from_secs(5).min(lifetime / 2);
        Ok((token, Instant::now() + lifetime - margin))
    }
}

fn basic_header(creds: &Auth) -> String {
    match creds {
        Auth::Basic { username, password } => format!(
            "Basic {}",
            crate::encoding::base64(format!("{username}:{password}").as_bytes())
        ),
        Auth::Bearer(token) => format!("Bearer {token}"),
    }
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn header_digest(resp: &Response<Body>) -> Option<Digest> {
    header(resp, "docker-content-digest").and_then(|d| Digest::parse(d.trim()))
}

/// `scheme://authority` of an absolute URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

/// Resolves a `Location` header against the URL that sent it.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("https://") || location.starts_with("http://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let path_end = base.split(['?', '#']).next().unwrap_or(base);
        let dir = path_end.rfind('/').map_or(path_end, |i| &path_end[..=i]);
        format!("{dir}{location}")
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_like_browsers() {
        let base = "https://r.example/v2/app/blobs/sha256:ab";
        assert_eq!(
            resolve(base, "https://s3.example/x?sig=1"),
            "https://s3.example/x?sig=1"
        );
        assert_eq!(resolve(base, "//cdn.example/x"), "https://cdn.example/x");
        assert_eq!(resolve(base, "/other"), "https://r.example/other");
        assert_eq!(resolve(base, "rel"), "https://r.example/v2/app/blobs/rel");
        assert_eq!(origin(base), "https://r.example");
        assert_eq!(origin("http://h:5000"), "http://h:5000");
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(
            query_escape("repository:org/app:pull"),
            "repository%3Aorg%2Fapp%3Apull"
        );
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }
}
