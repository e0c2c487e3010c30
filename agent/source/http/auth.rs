//! Credentials for a source: read from files at startup (or taken out of the URL),
//! sent as a header only, and never shown: `Debug` redacts them, and errors name
//! the file, not its content.

use std::fmt;
use std::path::Path;

use super::HttpOptions;
use crate::encoding::base64;
use crate::source::SourceError;

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

    /// The `Authorization` header's value.
    pub(super) fn header(&self) -> String {
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
/// already name credentials, and binds the credentials to the URL's origin.
pub fn take_userinfo(url: &str, http: &mut HttpOptions) -> String {
    let (url, userinfo) = split_userinfo(url);
    if let (Some((username, password)), None) = (userinfo, &http.auth) {
        http.auth = Some(Auth::Basic { username, password });
    }
    http.credential_origin.get_or_insert_with(|| url.clone());
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
