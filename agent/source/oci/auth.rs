//! Registry credentials, as plain data: the `WWW-Authenticate` challenge a registry
//! answers 401 with, the token server's answer, and a Docker `config.json` (as
//! mounted from a `kubernetes.io/dockerconfigjson` Secret). Pure parsing; the
//! requests are in `registry.rs`. What can go wrong: a config that is not JSON or
//! whose `auth` is not base64 `user:password` (named with the file), a challenge or
//! token answer that does not follow the token protocol.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::source::{Auth, SourceError};

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(params);
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        } else {
            None
        }
    }
}

/// `key="quoted value", key=token, …` into a map (keys lowercased).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
}

/// A token server's answer (`token` or, from OAuth2 servers, `access_token`).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The token and how long it may be used. The spec says to assume 60 seconds when
/// the server names no lifetime.
pub fn parse_token(body: &[u8]) -> Result<(String, Duration), String> {
    let answer: TokenAnswer =
        serde_json::from_slice(body).map_err(|e| format!("token answer is not JSON: {e}"))?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or("token answer has no token or access_token")?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("token answer holds a token that is not a header value".into());
    }
    Ok((
        token,
        Duration::from_secs(answer.expires_in.unwrap_or(60).max(1)),
    ))
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(serde::Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The credentials a Docker `config.json` holds for `registry` (`host[:port]`), if
/// any. Keys are matched as docker does: with or without scheme and path, and the
/// legacy `https://index.docker.io/v1/` for Docker Hub.
pub fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Auth>, SourceError> {
    let bad = |why: String| SourceError::Config(format!("docker config {}: {why}", path.display()));
    let text = std::fs::read(path).map_err(|source| SourceError::ReadFile {
        what: "docker config",
        path: path.to_path_buf(),
        source,
    })?;
    // serde's messages name a position, never the value, so no secret leaks here.
    let config: DockerConfig =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not a docker config.json: {e}")))?;
    let wanted = normalize(registry);
    let hub = matches!(wanted.as_str(), "docker.io" | "registry-1.docker.io");
    let Some((key, entry)) = config.auths.iter().find(|(key, _)| {
        let key = normalize(key);
        key == wanted || (hub && matches!(key.as_str(), "index.docker.io" | "docker.io"))
    }) else {
        return Ok(None);
    };
    if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Auth::Bearer(token.clone())));
    }
    let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => {
            let decoded = super::base64_decode(auth.trim())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad(format!("auths.{key:?}.auth is not base64")))?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| bad(format!("auths.{key:?}.auth is not base64 of user:password")))?;
            (u.to_string(), p.to_string())
        }
        (_, Some(u), Some(p)) => (u.clone(), p.clone()),
        _ => return Ok(None),
    };
    Ok(Some(Auth::Basic { username, password }))
}

/// `https://host:port/v1/` → `host:port`.
fn normalize(key: &str) -> String {
    let key = key.split_once("://").map_or(key, |(_, rest)| rest);
    key.split('/').next().unwrap_or(key).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::base64;

    #[test]
    fn challenges_parse_as_distribution_sends_them() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:org/app:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:org/app:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let c = Challenge::parse(r#"bearer realm=http://h/t, scope="a,b\"c""#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "http://h/t".into(),
                service: None,
                scope: Some("a,b\"c".into()),
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn tokens_come_with_a_lifetime() {
        let (t, d) = parse_token(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((t.as_str(), d), ("abc", Duration::from_secs(300)));
        let (t, d) = parse_token(br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!((t.as_str(), d), ("xyz", Duration::from_secs(60)));
        assert!(parse_token(b"{}").unwrap_err().contains("no token"));
        assert!(parse_token(br#"{"token":"a\nb"}"#).is_err());
    }

    #[test]
    fn docker_configs_are_matched_by_registry() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        let auth = base64(b"alice:s3cret");
        std::fs::write(
            &file,
            format!(
                r#"{{"auths":{{"https://127.0.0.1:5000/v2/":{{"auth":"{auth}"}},"other.example":{{"username":"bob","password":"pw"}},"https://index.docker.io/v1/":{{"registrytoken":"tok"}}}}}}"#
            ),
        )
        .unwrap();
        let basic = |u: &str, p: &str| {
            Some(Auth::Basic {
                username: u.into(),
                password: p.into(),
            })
        };
        assert_eq!(
            from_docker_config(&file, "127.0.0.1:5000").unwrap(),
            basic("alice", "s3cret")
        );
        assert_eq!(
            from_docker_config(&file, "other.example").unwrap(),
            basic("bob", "pw")
        );
        assert_eq!(
            from_docker_config(&file, "docker.io").unwrap(),
            Some(Auth::Bearer("tok".into()))
        );
        assert_eq!(from_docker_config(&file, "127.0.0.1:5001").unwrap(), None);
        std::fs::write(&file, r#"{"auths":{"h":{"auth":"!!s3cret"}}}"#).unwrap();
        let err = from_docker_config(&file, "h").unwrap_err().to_string();
        assert!(err.contains("is not base64"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
