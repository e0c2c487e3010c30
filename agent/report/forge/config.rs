//! Which forge to talk to, where, about which repository, with which token.
//!
//! The provider is named with `--status-provider` or inferred from the source URL's
//! host when that is unambiguous; the repository comes from the source URL's path.
//! Everything here is pure except [`Token::from_file`].

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::ForgeError;

/// A forge hawser can post commit statuses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// github.com, or GitHub Enterprise Server through its API root.
    GitHub,
    /// gitlab.com or a self-managed instance.
    GitLab,
    Gitea,
    Forgejo,
    /// bitbucket.org.
    BitbucketCloud,
    /// Bitbucket Server / Data Center.
    BitbucketServer,
    /// dev.azure.com, or Azure DevOps Server through its collection URL.
    AzureDevOps,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::GitHub,
        Provider::GitLab,
        Provider::Gitea,
        Provider::Forgejo,
        Provider::BitbucketCloud,
        Provider::BitbucketServer,
        Provider::AzureDevOps,
    ];

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Gitea => "gitea",
            Provider::Forgejo => "forgejo",
            Provider::BitbucketCloud => "bitbucket-cloud",
            Provider::BitbucketServer => "bitbucket-server",
            Provider::AzureDevOps => "azure-devops",
        }
    }

    /// The provider a source host belongs to, only where the host says so without
    /// doubt (self-hosted forges can live on any host name).
    pub fn from_host(host: &str) -> Option<Provider> {
        let host = host.to_ascii_lowercase();
        match host.as_str() {
            "github.com" | "www.github.com" | "ssh.github.com" => Some(Provider::GitHub),
            "gitlab.com" | "www.gitlab.com" | "altssh.gitlab.com" => Some(Provider::GitLab),
            "bitbucket.org" | "www.bitbucket.org" | "altssh.bitbucket.org" => {
                Some(Provider::BitbucketCloud)
            }
            "dev.azure.com" | "ssh.dev.azure.com" => Some(Provider::AzureDevOps),
            h if h.ends_with(".visualstudio.com") => Some(Provider::AzureDevOps),
            _ => None,
        }
    }

    /// The public service's address, for providers that have one.
    pub fn default_api_url(self) -> Option<&'static str> {
        match self {
            Provider::GitHub => Some("https://api.github.com"),
            Provider::GitLab => Some("https://gitlab.com"),
            Provider::BitbucketCloud => Some("https://api.bitbucket.org"),
            Provider::AzureDevOps => Some("https://dev.azure.com"),
            Provider::Gitea | Provider::Forgejo | Provider::BitbucketServer => None,
        }
    }

    /// How many path segments a repository has, and what they are called.
    fn repo_shape(self) -> (usize, Option<usize>, &'static str) {
        match self {
            Provider::GitHub | Provider::Gitea | Provider::Forgejo => (2, Some(2), "owner/name"),
            Provider::GitLab => (2, None, "group[/subgroup…]/project"),
            Provider::BitbucketCloud => (2, Some(2), "workspace/slug"),
            Provider::BitbucketServer => (2, Some(2), "PROJECT/slug"),
            Provider::AzureDevOps => (3, Some(3), "organization/project/repository"),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Provider {
    type Err = ForgeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase();
        let alias = match wanted.as_str() {
            "github-enterprise" | "ghe" => "github",
            "bitbucket" => "bitbucket-cloud",
            "bitbucket-datacenter" | "bitbucket-data-center" | "bitbucket-dc" => "bitbucket-server",
            "azure" | "azure-devops-server" | "ado" => "azure-devops",
            other => other,
        };
        Provider::ALL
            .into_iter()
            .find(|p| p.name() == alias)
            .ok_or_else(|| ForgeError::UnknownProvider {
                name: text.to_string(),
            })
    }
}

/// A forge token. It is never printed: `Debug` shows `***` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Token {
        Token(secret.into())
    }

    /// Reads a token file (a mounted Secret): surrounding whitespace is dropped, an
    /// empty file is an error. The error names the file, never its content.
    pub fn from_file(path: &Path) -> Result<Token, ForgeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ForgeError::TokenFile {
            path: path.to_path_buf(),
            source,
        })?;
        let secret = text.trim();
        if secret.is_empty() || secret.contains(['\n', '\r']) {
            return Err(ForgeError::BadToken {
                path: path.to_path_buf(),
            });
        }
        Ok(Token(secret.to_string()))
    }

    /// The secret itself, for the one place that builds the auth header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Everything the reporter needs, validated once at startup.
#[derive(Debug, Clone)]
pub struct ForgeConfig {
    pub provider: Provider,
    /// What users know: GitHub's API root (`https://api.github.com`,
    /// `https://HOST/api/v3`); for the others the instance URL (hawser adds `/api/v4`,
    /// `/api/v1`, `/2.0`, `/rest/api/latest`, `/{org}/{project}/_apis`). No trailing `/`.
    pub api_url: String,
    /// The repository as the provider names it (see [`Provider`]'s shapes).
    pub repo: String,
    pub token: Token,
    /// `hawser/<cluster>` unless overridden.
    pub context: String,
    /// The cluster name, for `{cluster}` in the target URL template.
    pub cluster: String,
    /// `--status-target-url` with `{cluster}` and `{revision}` placeholders.
    pub target_url_template: Option<String>,
    /// The source URL, Bitbucket's fallback for the link it requires.
    pub source_url: Option<String>,
}

impl ForgeConfig {
    /// The target URL for one revision, if a template was given.
    pub fn target_url(&self, revision: &str) -> Option<String> {
        self.target_url_template.as_ref().map(|t| {
            t.replace("{cluster}", &self.cluster)
                .replace("{revision}", revision)
        })
    }
}

/// Checks a repository name against what the provider's API paths need.
pub fn check_repo(provider: Provider, repo: &str) -> Result<(), ForgeError> {
    let (min, max, shape) = provider.repo_shape();
    let parts: Vec<&str> = repo.split('/').collect();
    let count_ok = parts.len() >= min && max.is_none_or(|m| parts.len() <= m);
    let parts_ok = parts
        .iter()
        .all(|p| !p.is_empty() && *p != "." && *p != "..");
    if count_ok && parts_ok {
        Ok(())
    } else {
        Err(ForgeError::BadRepo {
            provider,
            repo: repo.to_string(),
            shape,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for provider in Provider::ALL {
            assert_eq!(provider.name().parse::<Provider>().unwrap(), provider);
        }
        assert_eq!(
            "Bitbucket".parse::<Provider>().unwrap(),
            Provider::BitbucketCloud
        );
        assert!("sourcehut".parse::<Provider>().is_err());
    }

    #[test]
    fn tokens_never_print() {
        let token = Token::new("ghp_secret");
        assert_eq!(format!("{token:?}"), "***");
        assert_eq!(
            super::super::redact_userinfo("https://u:ghp_secret@github.com/o/r"),
            "https://github.com/o/r"
        );
    }
}
