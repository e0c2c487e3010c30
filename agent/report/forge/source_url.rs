//! Source URLs taken apart: which forge a host is, which repository a path names,
//! and which API address an instance URL implies. Pure.

use super::ForgeError;
use super::config::{Provider, check_repo};

/// A source URL taken apart: scheme (`ssh` for scp-like), host with port, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    /// Path segments without empty ones; the last has `.git` stripped.
    pub segments: Vec<String>,
}

impl SourceUrl {
    /// Parses `https://[user@]host[:port]/path`, `ssh://[user@]host[:port]/path` and
    /// scp-like `user@host:path`.
    pub fn parse(url: &str) -> Result<SourceUrl, ForgeError> {
        let bad = || ForgeError::BadSourceUrl {
            url: redact_userinfo(url),
        };
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => {
                // scp-like: [user@]host:path, where the host has no '/' before ':'.
                let (authority, path) = url.split_once(':').ok_or_else(bad)?;
                if authority.contains('/') || authority.is_empty() {
                    return Err(bad());
                }
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                return Ok(SourceUrl {
                    scheme: "ssh".into(),
                    host: host.to_ascii_lowercase(),
                    port: None,
                    segments: segments(path),
                });
            }
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = path.split(['?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // An IPv6 literal keeps its brackets; the port is what follows them.
        let (host, port) = match host_port
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
        {
            Some((ip, rest)) => (&host_port[..ip.len() + 2], rest.strip_prefix(':')),
            None => match host_port.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            },
        };
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(SourceUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            segments: segments(path),
        })
    }

    fn is_http(&self) -> bool {
        self.scheme == "http" || self.scheme == "https"
    }

    /// `scheme://host[:port]`, for http(s) URLs.
    fn origin(&self) -> Option<String> {
        self.is_http().then(|| match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        })
    }

    /// The repository a provider would name for this URL.
    pub fn repo(&self, provider: Provider) -> Result<String, ForgeError> {
        let segs: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        let picked: Vec<&str> = match provider {
            Provider::AzureDevOps => match visualstudio_repo(self) {
                Some(repo) => return check_repo(provider, &repo).map(|()| repo),
                None => azure_repo(&self.host, &segs).unwrap_or_default(),
            },
            Provider::BitbucketServer => match segs.iter().position(|s| *s == "scm") {
                // https://host[/context]/scm/PROJECT/repo.git
                Some(i) if self.is_http() => segs[i + 1..].to_vec(),
                // ssh://git@host:7999/PROJECT/repo.git
                _ => last(&segs, 2),
            },
            Provider::GitLab => segs,
            // Instances under a sub-path (https://host/git/owner/repo) still end in owner/repo.
            Provider::GitHub | Provider::Gitea | Provider::Forgejo | Provider::BitbucketCloud => {
                last(&segs, 2)
            }
        };
        let repo = picked.join("/");
        check_repo(provider, &repo).map(|()| repo)
    }

    /// The API address to use when none was given: the public service's for its own
    /// hosts, otherwise the instance this http(s) URL points at.
    pub fn api_url(&self, provider: Provider) -> Option<String> {
        if Provider::from_host(&self.host) == Some(provider) {
            // Old-style {org}.visualstudio.com URLs included: dev.azure.com serves them.
            return provider.default_api_url().map(str::to_string);
        }
        let origin = self.origin()?;
        match provider {
            Provider::GitHub => Some(format!("{origin}/api/v3")),
            Provider::BitbucketServer => {
                // Keep a context path: https://host/bitbucket/scm/P/r.git → https://host/bitbucket
                let prefix = self
                    .segments
                    .iter()
                    .take_while(|s| *s != "scm")
                    .cloned()
                    .collect::<Vec<_>>();
                if prefix.len() < self.segments.len() && !prefix.is_empty() {
                    Some(format!("{origin}/{}", prefix.join("/")))
                } else {
                    Some(origin)
                }
            }
            Provider::AzureDevOps => {
                // Azure DevOps Server: https://host/tfs/Collection/Project/_git/Repo → https://host/tfs
                let git = self.segments.iter().position(|s| s == "_git")?;
                let prefix = self.segments.get(..git.checked_sub(2)?)?;
                if prefix.is_empty() {
                    Some(origin)
                } else {
                    Some(format!("{origin}/{}", prefix.join("/")))
                }
            }
            Provider::GitLab | Provider::Gitea | Provider::Forgejo | Provider::BitbucketCloud => {
                Some(origin)
            }
        }
    }

    /// This URL as something a browser can open, if it is http(s) (credentials dropped).
    pub fn web_url(&self) -> Option<String> {
        self.origin()
            .map(|o| format!("{o}/{}", self.segments.join("/")))
    }
}

fn segments(path: &str) -> Vec<String> {
    let mut segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    if let Some(last) = segs.last_mut()
        && let Some(stripped) = last.strip_suffix(".git")
    {
        *last = stripped.to_string();
    }
    segs.retain(|s| !s.is_empty());
    segs
}

/// `Shop%20Floor` → `Shop Floor`; a segment that does not decode to UTF-8 is kept as is.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_string())
}

fn last<'a>(segs: &[&'a str], n: usize) -> Vec<&'a str> {
    segs[segs.len().saturating_sub(n)..].to_vec()
}

/// Azure DevOps URL forms:
/// - `https://dev.azure.com/{org}/{project}/_git/{repo}`
/// - `https://{org}.visualstudio.com[/DefaultCollection]/{project}/_git/{repo}`
/// - `git@ssh.dev.azure.com:v3/{org}/{project}/{repo}`
/// - Azure DevOps Server: `https://host[/tfs]/{collection}/{project}/_git/{repo}`
fn azure_repo<'a>(host: &str, segs: &[&'a str]) -> Option<Vec<&'a str>> {
    if let Some(git) = segs.iter().position(|s| *s == "_git") {
        let repo = *segs.get(git + 1)?;
        let project = *segs.get(git.checked_sub(1)?)?;
        let org = match host.strip_suffix(".visualstudio.com") {
            // The organization is the host's first label; it has no segment to borrow from.
            Some(_) => return None,
            None => *segs.get(git.checked_sub(2)?)?,
        };
        return Some(vec![org, project, repo]);
    }
    match segs {
        ["v3", org, project, repo] => Some(vec![org, project, repo]),
        _ => None,
    }
}

/// The Azure organization for `https://{org}.visualstudio.com/...` URLs, joined
/// with the path's project and repository.
fn visualstudio_repo(url: &SourceUrl) -> Option<String> {
    let org = url.host.strip_suffix(".visualstudio.com")?;
    let git = url.segments.iter().position(|s| s == "_git")?;
    let project = url.segments.get(git.checked_sub(1)?)?;
    let repo = url.segments.get(git + 1)?;
    Some(format!("{org}/{project}/{repo}"))
}

/// A URL for messages: any `user:password@` is removed.
pub fn redact_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest
                .split_once('/')
                .map_or((rest, None), |(a, p)| (a, Some(p)));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            match path {
                Some(p) => format!("{scheme}://{host}/{p}"),
                None => format!("{scheme}://{host}"),
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_of(url: &str) -> (Option<Provider>, String) {
        let parsed = SourceUrl::parse(url).unwrap();
        let provider = Provider::from_host(&parsed.host);
        let repo = parsed.repo(provider.unwrap_or(Provider::Gitea)).unwrap();
        (provider, repo)
    }

    #[test]
    fn providers_and_repositories_from_public_hosts() {
        for (url, provider, repo) in [
            (
                "https://github.com/acme/fleet.git",
                Provider::GitHub,
                "acme/fleet",
            ),
            (
                "https://github.com/acme/fleet/",
                Provider::GitHub,
                "acme/fleet",
            ),
            (
                "https://x-access-token:t0k@github.com/acme/fleet",
                Provider::GitHub,
                "acme/fleet",
            ),
            (
                "git@github.com:acme/fleet.git",
                Provider::GitHub,
                "acme/fleet",
            ),
            (
                "ssh://git@github.com/acme/fleet.git",
                Provider::GitHub,
                "acme/fleet",
            ),
            (
                "https://gitlab.com/group/sub/project.git",
                Provider::GitLab,
                "group/sub/project",
            ),
            (
                "git@gitlab.com:group/sub/project.git",
                Provider::GitLab,
                "group/sub/project",
            ),
            (
                "https://bitbucket.org/team/app.git",
                Provider::BitbucketCloud,
                "team/app",
            ),
            (
                "git@bitbucket.org:team/app.git",
                Provider::BitbucketCloud,
                "team/app",
            ),
            (
                "https://dev.azure.com/org/Shop%20Floor/_git/fleet",
                Provider::AzureDevOps,
                "org/Shop Floor/fleet",
            ),
            (
                "https://org@dev.azure.com/org/proj/_git/fleet",
                Provider::AzureDevOps,
                "org/proj/fleet",
            ),
            (
                "git@ssh.dev.azure.com:v3/org/proj/fleet",
                Provider::AzureDevOps,
                "org/proj/fleet",
            ),
            (
                "https://org.visualstudio.com/DefaultCollection/proj/_git/fleet",
                Provider::AzureDevOps,
                "org/proj/fleet",
            ),
        ] {
            assert_eq!(repo_of(url), (Some(provider), repo.to_string()), "{url}");
        }
    }

    #[test]
    fn self_hosted_forms() {
        let parse = |url: &str, provider| SourceUrl::parse(url).unwrap().repo(provider).unwrap();
        assert_eq!(
            parse(
                "https://bb.corp/scm/PROJ/app.git",
                Provider::BitbucketServer
            ),
            "PROJ/app"
        );
        assert_eq!(
            parse(
                "https://bb.corp/bitbucket/scm/~jo/app.git",
                Provider::BitbucketServer
            ),
            "~jo/app"
        );
        assert_eq!(
            parse(
                "ssh://git@bb.corp:7999/PROJ/app.git",
                Provider::BitbucketServer
            ),
            "PROJ/app"
        );
        assert_eq!(
            parse(
                "https://tfs.corp/tfs/Coll/Proj/_git/app",
                Provider::AzureDevOps
            ),
            "Coll/Proj/app"
        );
        assert_eq!(
            parse("https://git.corp/forge/acme/fleet.git", Provider::Forgejo),
            "acme/fleet"
        );
        let api = |url: &str, provider| SourceUrl::parse(url).unwrap().api_url(provider);
        assert_eq!(
            api(
                "https://bb.corp/bitbucket/scm/P/r.git",
                Provider::BitbucketServer
            )
            .as_deref(),
            Some("https://bb.corp/bitbucket")
        );
        assert_eq!(
            api(
                "https://bb.corp:8443/scm/P/r.git",
                Provider::BitbucketServer
            )
            .as_deref(),
            Some("https://bb.corp:8443")
        );
        assert_eq!(
            api(
                "https://tfs.corp/tfs/Coll/Proj/_git/app",
                Provider::AzureDevOps
            )
            .as_deref(),
            Some("https://tfs.corp/tfs")
        );
        assert_eq!(
            api(
                "https://org.visualstudio.com/proj/_git/app",
                Provider::AzureDevOps
            )
            .as_deref(),
            Some("https://dev.azure.com")
        );
        assert_eq!(
            api("https://gitlab.corp/g/p.git", Provider::GitLab).as_deref(),
            Some("https://gitlab.corp")
        );
        assert_eq!(
            api("https://gitlab.com/g/p.git", Provider::GitLab).as_deref(),
            Some("https://gitlab.com")
        );
        assert_eq!(api("git@gitlab.corp:g/p.git", Provider::GitLab), None);
    }

    #[test]
    fn hosts_and_ports() {
        let url = SourceUrl::parse("https://[::1]:3000/o/r.git").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("[::1]", Some(3000)));
        assert_eq!(url.web_url().as_deref(), Some("https://[::1]:3000/o/r"));
        let url = SourceUrl::parse("http://[fd00::7]/o/r").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("[fd00::7]", None));
        let url = SourceUrl::parse("ssh://git@Git.Corp:2222/o/r.git").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("git.corp", Some(2222)));
        assert!(SourceUrl::parse("https://git.corp:http/o/r").is_err());
    }

    #[test]
    fn web_urls_drop_credentials() {
        let url = SourceUrl::parse("https://jo:app-pass@bb.corp:8443/scm/P/r.git?x=1").unwrap();
        assert_eq!(
            url.web_url().as_deref(),
            Some("https://bb.corp:8443/scm/P/r")
        );
        assert_eq!(
            SourceUrl::parse("git@bb.corp:P/r.git").unwrap().web_url(),
            None
        );
    }

    #[test]
    fn unknown_hosts_and_bad_urls() {
        assert_eq!(Provider::from_host("git.example.com"), None);
        assert_eq!(Provider::from_host("GitHub.com"), Some(Provider::GitHub));
        assert!(SourceUrl::parse("/srv/git/fleet").is_err());
        assert!(SourceUrl::parse("https:///path").is_err());
        let err = SourceUrl::parse("https://github.com/only-owner")
            .unwrap()
            .repo(Provider::GitHub)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "github repository \"only-owner\" is not of the form owner/name; set --status-repo"
        );
        let err = SourceUrl::parse("https://dev.azure.com/org/proj")
            .unwrap()
            .repo(Provider::AzureDevOps)
            .unwrap_err();
        assert!(matches!(err, ForgeError::BadRepo { .. }));
        assert!(check_repo(Provider::GitHub, "a/../b").is_err());
    }
}
