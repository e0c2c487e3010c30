//! Commit status flags, validated once into a [`ForgeConfig`] (or `None`: reporting off).
//!
//! Reporting is on when a token file is given. The provider is `--status-provider`
//! or the source URL's host when it names one (github.com, gitlab.com, bitbucket.org,
//! dev.azure.com); the repository and API address come from the source URL unless
//! given.

use std::path::PathBuf;

use crate::report::forge::{
    ForgeConfig, ForgeError, Provider, SourceUrl, Token, check_repo, redact_userinfo,
};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct StatusArgs {
    /// Forge to post commit statuses to: github, gitlab, gitea, forgejo, bitbucket-cloud,
    /// bitbucket-server or azure-devops [default: from the source URL's host when it is
    /// github.com, gitlab.com, bitbucket.org or dev.azure.com]
    #[arg(long, env = "HAWSER_STATUS_PROVIDER", value_parser = parse_provider, value_name = "PROVIDER")]
    pub status_provider: Option<Provider>,
    /// The forge's address: GitHub's API root (https://api.github.com, or
    /// https://HOST/api/v3 for Enterprise); for the others the instance URL, to which
    /// hawser adds the API prefix [default: from the source URL]
    #[arg(long, env = "HAWSER_STATUS_API_URL", value_name = "URL")]
    pub status_api_url: Option<String>,
    /// Repository to post to: owner/name, GitLab group/project path, Bitbucket
    /// workspace/slug or PROJECT/slug, Azure organization/project/repository
    /// [default: from the source URL]
    #[arg(long, env = "HAWSER_STATUS_REPO", value_name = "REPO")]
    pub status_repo: Option<String>,
    /// File holding the forge token (mount it from a Secret); statuses are posted only
    /// when this is set. For Bitbucket, `user:secret` means Basic auth (API tokens,
    /// app passwords), anything else a Bearer access token. The token is never logged.
    #[arg(long, env = "HAWSER_STATUS_TOKEN_FILE", value_name = "PATH")]
    pub status_token_file: Option<PathBuf>,
    /// Status context [default: hawser/<cluster-name>]
    #[arg(long, env = "HAWSER_STATUS_CONTEXT", value_name = "CONTEXT")]
    pub status_context: Option<String>,
    /// Link shown with each status; {cluster} and {revision} are replaced
    #[arg(long, env = "HAWSER_STATUS_TARGET_URL", value_name = "TEMPLATE")]
    pub status_target_url: Option<String>,
    /// This cluster's name, unique among clusters reporting to the same repository;
    /// required for status reporting
    #[arg(long, env = "HAWSER_CLUSTER_NAME", value_name = "NAME")]
    pub cluster_name: Option<String>,
}

fn parse_provider(text: &str) -> Result<Provider, String> {
    text.parse::<Provider>().map_err(|e| e.to_string())
}

impl StatusArgs {
    /// Validates the flags against the source URL and reads the token file. `None`
    /// when reporting is off (no token file and no explicit provider).
    pub fn into_config(self, source_url: Option<&str>) -> Result<Option<ForgeConfig>, ForgeError> {
        let StatusArgs {
            status_provider,
            status_api_url,
            status_repo,
            status_token_file,
            status_context,
            status_target_url,
            cluster_name,
        } = self;
        // A source that is no Git URL (a local directory, a bundle) only matters when
        // the forge or repository has to be read from it.
        let source = source_url.and_then(|url| SourceUrl::parse(url).ok());
        let needed = || match (&source, source_url) {
            (Some(source), _) => Ok(source),
            (None, Some(url)) => Err(ForgeError::BadSourceUrl {
                url: redact_userinfo(url),
            }),
            (None, None) => Err(ForgeError::NoSource),
        };
        let provider = match (status_provider, &status_token_file) {
            (Some(provider), _) => provider,
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                let source = needed()?;
                Provider::from_host(&source.host).ok_or_else(|| ForgeError::UnknownHost {
                    host: source.host.clone(),
                })?
            }
        };
        let token_file = status_token_file.ok_or(ForgeError::MissingToken { provider })?;
        let cluster = non_empty(cluster_name).ok_or(ForgeError::MissingClusterName)?;
        let context = non_empty(status_context).unwrap_or_else(|| format!("hawser/{cluster}"));
        let repo = match non_empty(status_repo) {
            Some(repo) => {
                let repo = repo.trim_matches('/');
                let repo = repo.strip_suffix(".git").unwrap_or(repo).to_string();
                check_repo(provider, &repo)?;
                repo
            }
            None => needed()?.repo(provider)?,
        };
        let api_url = match non_empty(status_api_url) {
            Some(url) => {
                let lower = url.to_ascii_lowercase();
                let authority = url.split("://").nth(1).and_then(|r| r.split('/').next());
                if !(lower.starts_with("https://") || lower.starts_with("http://"))
                    || url.contains(['?', '#'])
                    || authority.is_none_or(|a| a.is_empty() || a.contains('@'))
                {
                    // Never echo credentials someone put in the URL.
                    return Err(ForgeError::BadApiUrl {
                        url: redact_userinfo(&url),
                    });
                }
                url.trim_end_matches('/').to_string()
            }
            None => source
                .as_ref()
                .and_then(|s| s.api_url(provider))
                .or_else(|| provider.default_api_url().map(str::to_string))
                .ok_or(ForgeError::MissingApiUrl { provider })?,
        };
        let target_url_template = non_empty(status_target_url);
        if let Some(template) = &target_url_template {
            check_template(template)?;
        }
        let token = Token::from_file(&token_file)?;
        Ok(Some(ForgeConfig {
            provider,
            api_url,
            repo,
            token,
            context,
            cluster,
            target_url_template,
            // Credentials in the source URL must not end up in links or Debug output.
            source_url: source_url.map(redact_userinfo),
        }))
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Only `{cluster}` and `{revision}` may appear in braces.
fn check_template(template: &str) -> Result<(), ForgeError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let close = after.find('}').map_or(after.len(), |i| i + 1);
        let placeholder = &after[..close];
        if placeholder != "{cluster}" && placeholder != "{revision}" {
            return Err(ForgeError::BadTemplate {
                placeholder: placeholder.to_string(),
            });
        }
        rest = &after[close..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn token_file() -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "  s3cr3t-token  ").unwrap();
        file
    }

    fn args(token: &tempfile::NamedTempFile) -> StatusArgs {
        StatusArgs {
            status_token_file: Some(token.path().to_path_buf()),
            cluster_name: Some("prod-eu".into()),
            ..StatusArgs::default()
        }
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        status: StatusArgs,
    }

    #[test]
    fn flags_parse() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "hawser",
            "--status-provider",
            "bitbucket-server",
            "--status-api-url",
            "https://bb.corp",
            "--status-token-file",
            "/var/run/secrets/forge/token",
            "--cluster-name",
            "shop-7",
        ])
        .unwrap();
        assert_eq!(cli.status.status_provider, Some(Provider::BitbucketServer));
        assert_eq!(cli.status.cluster_name.as_deref(), Some("shop-7"));
        let err = Cli::try_parse_from(["hawser", "--status-provider", "sourcehut"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown status provider \"sourcehut\""),
            "{err}"
        );
    }

    #[test]
    fn off_without_token_or_provider() {
        let none = StatusArgs {
            cluster_name: Some("x".into()),
            ..StatusArgs::default()
        };
        assert!(
            none.clone()
                .into_config(Some("https://github.com/o/r.git"))
                .unwrap()
                .is_none()
        );
        assert!(none.into_config(Some("/srv/manifests")).unwrap().is_none());
        assert!(StatusArgs::default().into_config(None).unwrap().is_none());
    }

    #[test]
    fn github_from_an_https_source() {
        let token = token_file();
        let config = args(&token)
            .into_config(Some("https://github.com/acme/fleet.git"))
            .unwrap()
            .unwrap();
        assert_eq!(config.provider, Provider::GitHub);
        assert_eq!(config.api_url, "https://api.github.com");
        assert_eq!(config.repo, "acme/fleet");
        assert_eq!(config.context, "hawser/prod-eu");
        assert_eq!(config.token, Token::new("s3cr3t-token"));
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let with_creds = args(&token)
            .into_config(Some(
                "https://x-access-token:ghs_git@github.com/acme/fleet.git",
            ))
            .unwrap()
            .unwrap();
        assert_eq!(
            with_creds.source_url.as_deref(),
            Some("https://github.com/acme/fleet.git")
        );
        assert!(!format!("{with_creds:?}").contains("ghs_git"));
    }

    #[test]
    fn self_hosted_hosts_need_the_provider() {
        let token = token_file();
        let err = args(&token)
            .into_config(Some("https://git.example.com/acme/fleet.git"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot tell which forge git.example.com is; set --status-provider"
        );
        let gitea = StatusArgs {
            status_provider: Some(Provider::Gitea),
            ..args(&token)
        };
        let config = gitea
            .into_config(Some("https://git.example.com:3000/acme/fleet.git"))
            .unwrap()
            .unwrap();
        assert_eq!(config.api_url, "https://git.example.com:3000");
        assert_eq!(config.repo, "acme/fleet");
        let ghe = StatusArgs {
            status_provider: Some(Provider::GitHub),
            ..args(&token)
        };
        let config = ghe
            .into_config(Some("https://ghe.corp/acme/fleet"))
            .unwrap()
            .unwrap();
        assert_eq!(config.api_url, "https://ghe.corp/api/v3");
        let ssh = StatusArgs {
            status_provider: Some(Provider::Gitea),
            ..args(&token)
        };
        let err = ssh
            .into_config(Some("git@git.example.com:acme/fleet.git"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "gitea status reporting needs --status-api-url (the instance's URL)"
        );
    }

    #[test]
    fn flags_override_the_source() {
        let token = token_file();
        let given = StatusArgs {
            status_provider: Some(Provider::GitLab),
            status_api_url: Some("https://gitlab.corp/".into()),
            status_repo: Some("/group/sub/project.git".into()),
            status_context: Some("deploy/eu".into()),
            status_target_url: Some("https://dash/{cluster}/{revision}".into()),
            ..args(&token)
        };
        let config = given.into_config(None).unwrap().unwrap();
        assert_eq!(config.api_url, "https://gitlab.corp");
        assert_eq!(config.repo, "group/sub/project");
        assert_eq!(config.context, "deploy/eu");
        assert_eq!(
            config.target_url("abc").as_deref(),
            Some("https://dash/prod-eu/abc")
        );
    }

    #[test]
    fn clear_errors_for_missing_pieces() {
        let token = token_file();
        let no_cluster = StatusArgs {
            cluster_name: None,
            ..args(&token)
        };
        let err = no_cluster
            .into_config(Some("https://github.com/o/r"))
            .unwrap_err();
        assert!(matches!(err, ForgeError::MissingClusterName));
        let no_token = StatusArgs {
            status_provider: Some(Provider::GitHub),
            ..StatusArgs::default()
        };
        assert_eq!(
            no_token
                .into_config(Some("https://github.com/o/r"))
                .unwrap_err()
                .to_string(),
            "--status-provider github needs --status-token-file"
        );
        let bad_template = StatusArgs {
            status_target_url: Some("https://x/{sha}".into()),
            ..args(&token)
        };
        assert!(matches!(
            bad_template
                .into_config(Some("https://github.com/o/r"))
                .unwrap_err(),
            ForgeError::BadTemplate { .. }
        ));
        let with_creds = StatusArgs {
            status_api_url: Some("https://jo:pw@git.corp".into()),
            ..args(&token)
        };
        assert_eq!(
            with_creds
                .into_config(Some("https://github.com/o/r"))
                .unwrap_err()
                .to_string(),
            "--status-api-url \"https://git.corp\" must be an http(s) URL without credentials, query or fragment"
        );
        let local = args(&token)
            .into_config(Some("/srv/manifests"))
            .unwrap_err();
        assert_eq!(
            local.to_string(),
            "source URL /srv/manifests cannot be read as a Git URL"
        );
        let explicit = StatusArgs {
            status_provider: Some(Provider::Forgejo),
            status_api_url: Some("https://code.corp".into()),
            status_repo: Some("ops/fleet".into()),
            ..args(&token)
        };
        let config = explicit
            .into_config(Some("/srv/manifests"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (config.api_url.as_str(), config.repo.as_str()),
            ("https://code.corp", "ops/fleet")
        );
        let bad_repo = StatusArgs {
            status_repo: Some("just-a-name".into()),
            ..args(&token)
        };
        assert_eq!(
            bad_repo
                .into_config(Some("https://github.com/o/r"))
                .unwrap_err()
                .to_string(),
            "github repository \"just-a-name\" is not of the form owner/name; set --status-repo"
        );
        let missing = StatusArgs {
            status_token_file: Some("/nonexistent/token".into()),
            ..args(&token)
        };
        let err = missing
            .into_config(Some("https://github.com/o/r"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("reading the status token file /nonexistent/token: "),
            "{err}"
        );
    }
}
