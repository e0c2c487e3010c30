//! Where a redirect may go: origins (scheme, host, port) and `Location` resolution.
//! Pure; the rule itself is in the parent module's documentation.

/// `--follow-redirects`: which redirects the first request of an exchange follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Redirects {
    /// Only within the configured URL's scheme, host and port.
    #[default]
    SameOrigin,
    /// To any origin too (never from https to http); credentials stay behind.
    AnyOrigin,
    /// None: a 3xx answer is an error.
    Never,
}

/// Scheme, host and port (the default port filled in), lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Origin {
    pub(super) scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    pub(super) fn of(url: &str) -> Option<Origin> {
        let uri: ureq::http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        Some(Origin {
            host: uri.host()?.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(default),
            scheme,
        })
    }
}

/// Resolves a `Location` value against the URL that answered with it.
pub(super) fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let Some((scheme, rest)) = base.split_once("://") else {
        return location.to_string();
    };
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    let dir = &path[..path.rfind('/').map_or(path.len(), |i| i + 1)];
    if dir.len() <= scheme.len() + 3 + authority.len() {
        return format!("{scheme}://{authority}/{location}");
    }
    format!("{dir}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_fill_in_default_ports_and_ignore_case() {
        let a = Origin::of("https://Git.Example/r.git").unwrap();
        assert_eq!(a, Origin::of("https://git.example:443/other").unwrap());
        assert_ne!(a, Origin::of("https://git.example:8443/r.git").unwrap());
        assert_ne!(a, Origin::of("http://git.example/r.git").unwrap());
        assert_ne!(a, Origin::of("https://evil.example/r.git").unwrap());
        assert!(Origin::of("ftp://git.example/r").is_none());
    }

    #[test]
    fn locations_resolve_like_a_browser() {
        let base = "https://h:8443/org/repo.git/info/refs?service=git-upload-pack";
        assert_eq!(join_url(base, "http://x/y"), "http://x/y");
        assert_eq!(join_url(base, "//x/y"), "https://x/y");
        assert_eq!(
            join_url(base, "/moved/info/refs"),
            "https://h:8443/moved/info/refs"
        );
        assert_eq!(
            join_url(base, "refs2"),
            "https://h:8443/org/repo.git/info/refs2"
        );
        assert_eq!(join_url("https://h", "a"), "https://h/a");
    }
}
