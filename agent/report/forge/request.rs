//! The HTTP request each forge wants for a commit status: pure, no network.
//!
//! In: the validated [`ForgeConfig`] and a [`CommitStatus`]. Out: method, URL,
//! headers and JSON body as the provider's documented API spells them. The token is
//! not part of the result, only how to present it ([`AuthScheme`]), so a request can be
//! logged or compared in tests without leaking it.

use serde_json::{Value, json};

use super::config::{ForgeConfig, Provider, Token};
use super::encode::{azure_context, bitbucket_key, encode_segment};
use super::source_url::SourceUrl;
use super::{CommitState, CommitStatus, ForgeError};
use crate::encoding::base64;

/// GitHub's REST API version hawser was written against.
pub const GITHUB_API_VERSION: &str = "2022-11-28";
/// Azure DevOps REST API version.
pub const AZURE_API_VERSION: &str = "7.1";

/// How the token is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
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

impl AuthScheme {
    /// The header carrying the token. Its value must never reach a log or an error.
    pub(crate) fn header(self, token: &Token) -> (&'static str, String) {
        let secret = token.expose();
        match self {
            AuthScheme::Bearer => ("Authorization", format!("Bearer {secret}")),
            AuthScheme::TokenScheme => ("Authorization", format!("token {secret}")),
            AuthScheme::PrivateToken => ("PRIVATE-TOKEN", secret.to_string()),
            AuthScheme::BasicEmptyUser => (
                "Authorization",
                format!("Basic {}", base64(format!(":{secret}").as_bytes())),
            ),
            AuthScheme::Basic => (
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
    pub auth: AuthScheme,
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
            AuthScheme::Bearer,
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
            AuthScheme::PrivateToken,
            json_headers,
            json!({ "state": status.state.gitlab(), "name": context, "description": description }),
        ),
        Provider::Gitea | Provider::Forgejo => (
            format!(
                "{}/api/v1/repos/{}/statuses/{sha}",
                strip(base, "/api/v1"),
                parts.join("/")
            ),
            AuthScheme::TokenScheme,
            json_headers,
            json!({ "state": status.state.github(), "context": context, "description": description }),
        ),
        Provider::BitbucketCloud => {
            let [workspace, slug] = two(&parts, *provider, repo)?;
            // Required, and must be a URL: the target URL, else the source, else the
            // commit's page on bitbucket.org.
            let link = target_url.clone().unwrap_or_else(|| {
                browsable_source(config).unwrap_or_else(|| {
                    format!("https://bitbucket.org/{workspace}/{slug}/commits/{sha}")
                })
            });
            (
                format!(
                    "{}/2.0/repositories/{workspace}/{slug}/commit/{sha}/statuses/build",
                    strip(base, "/2.0"),
                ),
                bitbucket_auth(&config.token),
                json_headers,
                json!({
                    "key": bitbucket_key(context),
                    "state": status.state.bitbucket(),
                    "name": context,
                    "description": description,
                    "url": link,
                }),
            )
        }
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
                    // Required: the target URL, else the source, else the commit's page.
                    "url": target_url.clone().unwrap_or_else(|| browsable_source(config).unwrap_or_else(|| {
                        format!("{base}/projects/{project}/repos/{slug}/commits/{sha}")
                    })),
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
                AuthScheme::BasicEmptyUser,
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
        match provider {
            Provider::GitHub | Provider::GitLab | Provider::Gitea | Provider::Forgejo => {
                fields.insert("target_url".to_string(), Value::String(url));
            }
            Provider::AzureDevOps => {
                fields.insert("targetUrl".to_string(), Value::String(url));
            }
            // Bitbucket's `url` is already set: it is required there.
            Provider::BitbucketCloud | Provider::BitbucketServer => {}
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

impl CommitState {
    fn github(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
        }
    }

    /// GitLab's `pending` means "not started"; a revision being applied is `running`.
    fn gitlab(self) -> &'static str {
        match self {
            CommitState::Pending => "running",
            CommitState::Success => "success",
            CommitState::Failure => "failed",
        }
    }

    fn bitbucket(self) -> &'static str {
        match self {
            CommitState::Pending => "INPROGRESS",
            CommitState::Success => "SUCCESSFUL",
            CommitState::Failure => "FAILED",
        }
    }

    fn azure(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "succeeded",
            CommitState::Failure => "failed",
        }
    }
}

/// Bitbucket access tokens are Bearer tokens; a token file holding `user:secret`
/// (an API token with the account's email, an app password, a Server user token)
/// means Basic auth.
pub(super) fn bitbucket_auth(token: &Token) -> AuthScheme {
    if token.expose().contains(':') {
        AuthScheme::Basic
    } else {
        AuthScheme::Bearer
    }
}

/// The source URL, if a browser can open it (http(s), credentials dropped).
fn browsable_source(config: &ForgeConfig) -> Option<String> {
    SourceUrl::parse(config.source_url.as_deref()?)
        .ok()?
        .web_url()
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
pub(super) fn check_commit(commit: &str) -> Result<(), ForgeError> {
    if (7..=64).contains(&commit.len()) && crate::encoding::is_hex(commit, commit.len()) {
        Ok(())
    } else {
        Err(ForgeError::BadCommit {
            commit: commit.chars().take(80).collect(),
        })
    }
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
        let status = CommitStatus::new("abc1234", CommitState::Pending, "applying 1 object");
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
    fn bitbucket_cloud_always_sends_a_link() {
        let mut config = config(
            Provider::BitbucketCloud,
            "https://api.bitbucket.org",
            "w/app",
        );
        config.source_url = Some("git@bitbucket.org:w/app.git".into());
        let status = CommitStatus::new("abc1234", CommitState::Success, "ok");
        let request = build(&config, &status).unwrap();
        assert_eq!(
            request.body["url"],
            "https://bitbucket.org/w/app/commits/abc1234"
        );
        config.source_url = Some("https://bitbucket.org/w/app.git".into());
        let request = build(&config, &status).unwrap();
        assert_eq!(request.body["url"], "https://bitbucket.org/w/app");
    }

    #[test]
    fn bitbucket_server_links_to_the_commit_without_a_browsable_source() {
        let mut config = config(Provider::BitbucketServer, "https://bb.corp", "P/app");
        config.source_url = Some("ssh://git@bb.corp:7999/P/app.git".into());
        let status = CommitStatus::new("abc1234", CommitState::Success, "ok");
        let request = build(&config, &status).unwrap();
        assert_eq!(
            request.body["url"],
            "https://bb.corp/projects/P/repos/app/commits/abc1234"
        );
    }

    #[test]
    fn commits_must_be_hex() {
        assert!(check_commit("abc1234").is_ok());
        assert!(check_commit(&"a".repeat(40)).is_ok());
        assert!(check_commit("../../x").is_err());
        assert!(check_commit("abc").is_err());
    }
}
