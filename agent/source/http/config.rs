//! The agent's TLS roots and proxy, from `--ca-file` and `--https-proxy`/`NO_PROXY`.

use std::path::Path;

use ureq::Proxy;
use ureq::tls::{PemItem, RootCerts};

use crate::source::{SourceError, redact_url};

pub(super) fn load_ca(path: &Path) -> Result<RootCerts, SourceError> {
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

pub(super) fn proxy(url: &str, no_proxy: Option<&str>) -> Result<Proxy, SourceError> {
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
