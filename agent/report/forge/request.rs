//! The HTTP request each forge wants for a commit status: pure, no network.
//!
//! In: the validated [`ForgeConfig`] and a [`CommitStatus`]. Out: method, URL,
//! headers and JSON body as the provider's documented API spells them. The token is
//! not part of the result, only how to present it ([`Auth`]), so a request can be
//! logged or compared in tests without leaking it.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::config::{ForgeConfig, Provider, Token};
use super::source_url::SourceUrl;
use super::{CommitStatus, ForgeError, State};

/// GitHub's REST API version hawser was written against.
pub const GITHUB_API_VERSION: &str = "2022-11-28";
/// Azure DevOps REST API version.
pub const AZURE_API_VERSION: &str = "7.1";
/// Bitbucket Cloud keeps build status keys short; longer contexts are hashed.
pub const BITBUCKET_KEY_MAX: usize = 40;

/// How the token is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>` (GitHub, Bitbucket).
    Bearer,
    /// `Authorization: token <token>` (Gitea, Forgejo).
    TokenScheme,
    /// `PRIVATE-TOKEN: <token>` (GitLab personal, project and group access tokens).
    PrivateToken,
    /// `Authorization: Basic base64(":" + token)` (Azure DevOps PAT, empty user).
    BasicEmptyUser,
    /// `Authorization: Basic base64(token)` for a `user:secret` token (Bitbucket API
    /// tokens and app passwords, which need the account name or email).
    Basic,
}

impl Auth {
    /// The header carrying the token. Its value must never reach a log or an error.
    pub fn header(self, token: &Token) -> (&'static str, String) {
        let secret = token.expose();
        match self {
            Auth::Bearer => ("Authorization", format!("Bearer {secret}")),
            Auth::TokenScheme => ("Authorization", format!("token {secret}")),
            Auth::PrivateToken => ("PRIVATE-TOKEN", secret.to_string()),
            Auth::BasicEmptyUser => (
                "Authorization",
                format!("Basic {}", base64(format!(":{secret}").as_bytes())),
            ),
            Auth::Basic => (
                "Authorization",
                format!("Basic {}", base64(secret.as_bytes())),
            ),
        }
    }
}

/// One request to a forge, without its credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct ForgeRequest {
    pub method: &'static str,
    pub url: String,
    pub auth: Auth,
    /// Headers besides the auth header (content type, accept, API version).
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

/// Builds the request that sets `status` on the configured forge.
pub fn build(config: &ForgeConfig, status: &CommitStatus) -> Result<ForgeRequest, ForgeError> {
    check_commit(&status.commit)?;
    let ForgeConfig {
        provider,
        api_url,
        repo,
        context,
        ..
    } = config;
    let base = api_url.trim_end_matches('/');
    let sha = status.commit.as_str();
    let target_url = config.target_url(sha);
    let description = status.description.as_str();
    let parts: Vec<String> = repo.split('/').map(encode_segment).collect();
    let json_headers = vec![
        ("Content-Type", "application/json".to_string()),
        ("Accept", "application/json".to_string()),
    ];

    let (url, auth, headers, mut body) = match provider {
        Provider::GitHub => (
            format!("{base}/repos/{}/statuses/{sha}", parts.join("/")),
            Auth::Bearer,
            vec![
                ("Content-Type", "application/json".to_string()),
                ("Accept", "application/vnd.github+json".to_string()),
                ("X-GitHub-Api-Version", GITHUB_API_VERSION.to_string()),
            ],
            json!({ "state": status.state.github(), "description": description, "context": context }),
        ),
        Provider::GitLab => (
            // The project path is one URL-encoded segment: group%2Fsub%2Fproject.
            format!(
                "{}/api/v4/projects/{}/statuses/{sha}",
                strip(base, "/api/v4"),
                encode_segment(repo)
            ),
            Auth::PrivateToken,
            json_headers,
            json!({ "state": status.state.gitlab(), "name": context, "description": description }),
        ),
        Provider::Gitea | Provider::Forgejo => (
            format!(
                "{}/api/v1/repos/{}/statuses/{sha}",
                strip(base, "/api/v1"),
                parts.join("/")
            ),
            Auth::TokenScheme,
            json_headers,
            json!({ "state": status.state.github(), "context": context, "description": description }),
        ),
        Provider::BitbucketCloud => (
            format!(
                "{}/2.0/repositories/{}/commit/{sha}/statuses/build",
                strip(base, "/2.0"),
                parts.join("/")
            ),
            bitbucket_auth(&config.token),
            json_headers,
            json!({
                "key": bitbucket_key(context),
                "state": status.state.bitbucket(),
                "name": context,
                "description": description,
            }),
        ),
        Provider::BitbucketServer => {
            let [project, slug] = two(&parts, *provider, repo)?;
            let base = strip(base, "/rest/api/latest");
            (
                format!(
                    "{base}/rest/api/latest/projects/{project}/repos/{slug}/commits/{sha}/builds"
                ),
                bitbucket_auth(&config.token),
                json_headers,
                json!({
                    "key": context,
                    "state": status.state.bitbucket(),
                    "name": context,
                    "description": description,
                    // Required by Bitbucket Server: the target URL, else the repository.
                    "url": target_url.clone().unwrap_or_else(|| fallback_url(config, base, &project, &slug, sha)),
                }),
            )
        }
        Provider::AzureDevOps => {
            let [org, project, name] = three(&parts, *provider, repo)?;
            let (genre, context_name) = azure_context(context);
            (
                format!(
                    "{base}/{org}/{project}/_apis/git/repositories/{name}/commits/{sha}/statuses?api-version={AZURE_API_VERSION}"
                ),
                Auth::BasicEmptyUser,
                {
                    // Without this, Azure answers a refused PAT with 203 and a sign-in page.
                    let mut headers = json_headers;
                    headers.push(("X-TFS-FedAuthRedirect", "Suppress".to_string()));
                    headers
                },
                json!({
                    "state": status.state.azure(),
                    "description": description,
                    "context": { "name": context_name, "genre": genre },
                }),
            )
        }
    };
    if let (Some(url), Some(fields)) = (target_url, body.as_object_mut()) {
        let key = match provider {
            Provider::GitHub | Provider::GitLab | Provider::Gitea | Provider::Forgejo => {
                "target_url"
            }
            Provider::BitbucketCloud | Provider::BitbucketServer => "url",
            Provider::AzureDevOps => "targetUrl",
        };
        fields.insert(key.to_string(), Value::String(url));
    }
    if *provider == Provider::BitbucketCloud && !body.get("url").is_some_and(Value::is_string) {
        // Bitbucket Cloud answers 400 without a link; point at the repository.
        if let (Some(web), Some(fields)) = (
            config
                .source_url
                .as_deref()
                .and_then(|u| SourceUrl::parse(u).ok()?.web_url()),
            body.as_object_mut(),
        ) {
            fields.insert("url".to_string(), Value::String(web));
        }
    }
    Ok(ForgeRequest {
        method: "POST",
        url,
        auth,
        headers,
        body,
    })
}

impl State {
    fn github(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Success => "success",
            State::Failure => "failure",
        }
    }

    /// GitLab's `pending` means "not started"; a revision being applied is `running`.
    fn gitlab(self) -> &'static str {
        match self {
            State::Pending => "running",
            State::Success => "success",
            State::Failure => "failed",
        }
    }

    fn bitbucket(self) -> &'static str {
        match self {
            State::Pending => "INPROGRESS",
            State::Success => "SUCCESSFUL",
            State::Failure => "FAILED",
        }
    }

    fn azure(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Success => "succeeded",
            State::Failure => "failed",
        }
    }
}

/// A Bitbucket Cloud build key: the context itself when short enough, otherwise a
/// readable prefix and 8 hex digits of its SHA-256, 40 bytes at most.
pub fn bitbucket_key(context: &str) -> String {
    if context.len() <= BITBUCKET_KEY_MAX {
        return context.to_string();
    }
    let digest = Sha256::digest(context.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut prefix_len = BITBUCKET_KEY_MAX - hash.len() - 1;
    while !context.is_char_boundary(prefix_len) {
        prefix_len -= 1;
    }
    format!("{}-{hash}", &context[..prefix_len])
}

/// Bitbucket access tokens are Bearer tokens; a token file holding `user:secret`
/// (an API token with the account's email, an app password, a Server user token)
/// means Basic auth.
fn bitbucket_auth(token: &Token) -> Auth {
    if token.expose().contains(':') {
        Auth::Basic
    } else {
        Auth::Bearer
    }
}

/// Azure's context is `{genre, name}`: `hawser/prod` becomes genre `hawser`, name
/// `prod`; a context without `/` goes under genre `hawser`.
pub fn azure_context(context: &str) -> (&str, &str) {
    match context.split_once('/') {
        Some((genre, name)) if !genre.is_empty() && !name.is_empty() => (genre, name),
        _ => ("hawser", context),
    }
}

/// Bitbucket Server's required link when no target URL was configured: the source
/// URL if a browser can open it, else the commit's page on the instance.
fn fallback_url(config: &ForgeConfig, base: &str, project: &str, slug: &str, sha: &str) -> String {
    config
        .source_url
        .as_deref()
        .and_then(|u| SourceUrl::parse(u).ok()?.web_url())
        .unwrap_or_else(|| format!("{base}/projects/{project}/repos/{slug}/commits/{sha}"))
}

fn strip<'a>(base: &'a str, api_prefix: &str) -> &'a str {
    base.strip_suffix(api_prefix).unwrap_or(base)
}

fn two(parts: &[String], provider: Provider, repo: &str) -> Result<[String; 2], ForgeError> {
    match parts {
        [a, b] => Ok([a.clone(), b.clone()]),
        _ => Err(ForgeError::BadRepo {
            provider,
            repo: repo.to_string(),
            shape: "PROJECT/slug",
        }),
    }
}

fn three(parts: &[String], provider: Provider, repo: &str) -> Result<[String; 3], ForgeError> {
    match parts {
        [a, b, c] => Ok([a.clone(), b.clone(), c.clone()]),
        _ => Err(ForgeError::BadRepo {
            provider,
            repo: repo.to_string(),
            shape: "organization/project/repository",
        }),
    }
}

/// A commit id goes into URL paths: only hex digits, abbreviated or full.
fn check_commit(commit: &str) -> Result<(), ForgeError> {
    if (7..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ForgeError::BadCommit {
            commit: commit.chars().take(80).collect(),
        })
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value is one
/// path segment (`/` becomes `%2F`, a space `%20`).
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), for the one Basic auth header.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(provider: Provider, api_url: &str, repo: &str) -> ForgeConfig {
        ForgeConfig {
            provider,
            api_url: api_url.into(),
            repo: repo.into(),
            token: Token::new("t"),
            context: "hawser/prod".into(),
            cluster: "prod".into(),
            target_url_template: None,
            source_url: None,
        }
    }

    fn url(provider: Provider, api_url: &str, repo: &str) -> String {
        let status = CommitStatus::new("abc1234", State::Pending, "applying 1 object");
        build(&config(provider, api_url, repo), &status)
            .unwrap()
            .url
    }

    #[test]
    fn api_prefixes_are_added_once() {
        use Provider::*;
        for (provider, api, repo, want) in [
            (
                GitHub,
                "https://api.github.com",
                "o/r",
                "https://api.github.com/repos/o/r/statuses/abc1234",
            ),
            (
                GitHub,
                "https://ghe.corp/api/v3/",
                "o/r",
                "https://ghe.corp/api/v3/repos/o/r/statuses/abc1234",
            ),
            (
                GitLab,
                "https://gitlab.corp/api/v4",
                "g/p",
                "https://gitlab.corp/api/v4/projects/g%2Fp/statuses/abc1234",
            ),
            (
                Gitea,
                "https://git.corp/api/v1/",
                "o/r",
                "https://git.corp/api/v1/repos/o/r/statuses/abc1234",
            ),
            (
                BitbucketCloud,
                "https://api.bitbucket.org/2.0",
                "w/s",
                "https://api.bitbucket.org/2.0/repositories/w/s/commit/abc1234/statuses/build",
            ),
            (
                BitbucketServer,
                "https://bb.corp",
                "~jo/app",
                "https://bb.corp/rest/api/latest/projects/~jo/repos/app/commits/abc1234/builds",
            ),
            (
                AzureDevOps,
                "https://tfs.corp/tfs",
                "Coll/My Proj/app",
                "https://tfs.corp/tfs/Coll/My%20Proj/_apis/git/repositories/app/commits/abc1234/statuses?api-version=7.1",
            ),
        ] {
            assert_eq!(url(provider, api, repo), want, "{provider}");
        }
    }

    #[test]
    fn bitbucket_server_links_to_the_commit_without_a_browsable_source() {
        let mut config = config(Provider::BitbucketServer, "https://bb.corp", "P/app");
        config.source_url = Some("ssh://git@bb.corp:7999/P/app.git".into());
        let status = CommitStatus::new("abc1234", State::Success, "ok");
        let request = build(&config, &status).unwrap();
        assert_eq!(
            request.body["url"],
            "https://bb.corp/projects/P/repos/app/commits/abc1234"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            (":pat", "OnBhdA=="),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn bitbucket_keys_stay_within_40_bytes_and_are_stable() {
        assert_eq!(bitbucket_key("hawser/prod"), "hawser/prod");
        let exactly = "hawser/".to_string() + &"c".repeat(33);
        assert_eq!(bitbucket_key(&exactly), exactly);
        let long = "hawser/a-very-long-cluster-name-in-eu-west-1-zone-b";
        let key = bitbucket_key(long);
        assert!(key.len() <= BITBUCKET_KEY_MAX, "{key}");
        assert_eq!(key, bitbucket_key(long));
        assert!(key.starts_with("hawser/a-very-long-cluster-nam"));
        assert_ne!(
            key,
            bitbucket_key("hawser/a-very-long-cluster-name-in-eu-west-1-zone-c")
        );
        let wide = "hawser/".to_string() + &"ü".repeat(30);
        assert!(bitbucket_key(&wide).len() <= BITBUCKET_KEY_MAX);
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("group/sub/project"), "group%2Fsub%2Fproject");
        assert_eq!(encode_segment("My Project"), "My%20Project");
        assert_eq!(encode_segment("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn azure_context_splits_genre_and_name() {
        assert_eq!(azure_context("hawser/prod-eu"), ("hawser", "prod-eu"));
        assert_eq!(azure_context("deploy/a/b"), ("deploy", "a/b"));
        assert_eq!(azure_context("plain"), ("hawser", "plain"));
    }

    #[test]
    fn commits_must_be_hex() {
        assert!(check_commit("abc1234").is_ok());
        assert!(check_commit(&"a".repeat(40)).is_ok());
        assert!(check_commit("../../x").is_err());
        assert!(check_commit("abc").is_err());
    }
}
