//! Reading commit statuses back, for the promotion gate: pure, no network.
//!
//! In: the validated [`ForgeConfig`] (the same provider, URL, repository and token
//! the reporter posts with) and a commit id. Out: one GET request per read, shaped
//! as each provider documents its "statuses of a commit" endpoint, and, from its
//! answer, the [`SeenStatus`]es of the contexts the gate waits for. What can go
//! wrong: an answer that is not the documented JSON (refused with one line).
//!
//! One request covers every canary: each endpoint lists all contexts of a commit,
//! newest first (GitHub's and Gitea's combined status, GitLab's latest-only list,
//! Azure's `latestOnly`), one page of 100 (Gitea: 50) entries, which is more
//! contexts than a fleet's canaries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::config::{ForgeConfig, Provider};
use super::encode::{azure_context, bitbucket_key, encode_segment};
use super::request::{AZURE_API_VERSION, AuthScheme, ForgeRequest, GITHUB_API_VERSION};
use super::{ForgeError, request};
use crate::gate::{SeenState, SeenStatus};

/// Builds the GET that lists the statuses of `commit`.
pub fn build(config: &ForgeConfig, commit: &str) -> Result<ForgeRequest, ForgeError> {
    request::check_commit(commit)?;
    let ForgeConfig {
        provider,
        api_url,
        repo,
        token,
        ..
    } = config;
    let base = api_url.trim_end_matches('/');
    let parts: Vec<String> = repo.split('/').map(encode_segment).collect();
    let accept = vec![("Accept", "application/json".to_string())];
    let (url, auth, headers) = match provider {
        Provider::GitHub => (
            // The combined status: the newest status of each context.
            format!(
                "{base}/repos/{}/commits/{commit}/status?per_page=100",
                parts.join("/")
            ),
            AuthScheme::Bearer,
            vec![
                ("Accept", "application/vnd.github+json".to_string()),
                ("X-GitHub-Api-Version", GITHUB_API_VERSION.to_string()),
            ],
        ),
        Provider::GitLab => (
            // Without `all=true` GitLab lists only the newest status of each name.
            format!(
                "{}/api/v4/projects/{}/repository/commits/{commit}/statuses?per_page=100",
                strip(base, "/api/v4"),
                encode_segment(repo)
            ),
            AuthScheme::PrivateToken,
            accept,
        ),
        Provider::Gitea | Provider::Forgejo => (
            format!(
                "{}/api/v1/repos/{}/commits/{commit}/status?limit=50",
                strip(base, "/api/v1"),
                parts.join("/")
            ),
            AuthScheme::TokenScheme,
            accept,
        ),
        Provider::BitbucketCloud => {
            let [workspace, slug] = pair(&parts, *provider, repo)?;
            (
                format!(
                    "{}/2.0/repositories/{workspace}/{slug}/commit/{commit}/statuses?pagelen=100",
                    strip(base, "/2.0")
                ),
                request::bitbucket_auth(token),
                accept,
            )
        }
        Provider::BitbucketServer => (
            // The build-status API lists a commit's builds newest first, 100 a page.
            format!(
                "{}/rest/build-status/1.0/commits/{commit}?limit=100",
                strip(base, "/rest/api/latest")
            ),
            request::bitbucket_auth(token),
            accept,
        ),
        Provider::AzureDevOps => {
            let [org, project, name] = match parts.as_slice() {
                [a, b, c] => [a.clone(), b.clone(), c.clone()],
                _ => {
                    return Err(ForgeError::BadRepo {
                        provider: *provider,
                        repo: repo.clone(),
                        shape: "organization/project/repository",
                    });
                }
            };
            let mut headers = accept;
            headers.push(("X-TFS-FedAuthRedirect", "Suppress".to_string()));
            (
                format!(
                    "{base}/{org}/{project}/_apis/git/repositories/{name}/commits/{commit}/statuses?api-version={AZURE_API_VERSION}&latestOnly=true"
                ),
                AuthScheme::BasicEmptyUser,
                headers,
            )
        }
    };
    Ok(ForgeRequest {
        method: "GET",
        url,
        auth,
        headers,
        body: Value::Null,
    })
}

/// Reads an answer: the statuses under the `wanted` contexts, each named by the
/// wanted context it matched (a Bitbucket key or an Azure genre/name pair is
/// matched the way the reporter posts them).
pub fn parse(provider: Provider, body: &str, wanted: &[String]) -> Result<Vec<SeenStatus>, String> {
    let json: Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let list = match provider {
        Provider::GitHub | Provider::Gitea | Provider::Forgejo => json.get("statuses"),
        Provider::GitLab => Some(&json),
        Provider::BitbucketCloud | Provider::BitbucketServer => json.get("values"),
        Provider::AzureDevOps => json.get("value"),
    };
    let list = match list {
        Some(Value::Array(list)) => list.as_slice(),
        // Gitea answers `"statuses": null` for a commit without any status.
        Some(Value::Null) => &[],
        _ => return Err("the answer has no list of statuses".to_string()),
    };
    let mut seen = Vec::new();
    for entry in list {
        let Some(context) = wanted.iter().find(|w| matches(provider, entry, w)) else {
            continue;
        };
        let state = entry
            .get(state_field(provider))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a status of {context} has no state"))?;
        seen.push(SeenStatus {
            context: context.clone(),
            state: state_of(provider, state),
            description: text(entry, "description").unwrap_or_default(),
            at: time_of(provider, entry),
        });
    }
    Ok(seen)
}

/// Whether a listed status is the one hawser posts under `wanted`.
fn matches(provider: Provider, entry: &Value, wanted: &str) -> bool {
    let field = |name: &str| text(entry, name);
    match provider {
        Provider::GitHub | Provider::Gitea | Provider::Forgejo => {
            field("context").as_deref() == Some(wanted)
        }
        Provider::GitLab => field("name").as_deref() == Some(wanted),
        // The reporter posts the context as the name and (hashed when long) the key.
        Provider::BitbucketCloud => {
            field("key").as_deref() == Some(bitbucket_key(wanted).as_str())
                || field("name").as_deref() == Some(wanted)
        }
        Provider::BitbucketServer => {
            field("key").as_deref() == Some(wanted) || field("name").as_deref() == Some(wanted)
        }
        Provider::AzureDevOps => {
            let (genre, name) = azure_context(wanted);
            let context = entry.get("context");
            let part = |k: &str| context.and_then(|c| c.get(k)).and_then(Value::as_str);
            part("genre") == Some(genre) && part("name") == Some(name)
        }
    }
}

fn state_field(provider: Provider) -> &'static str {
    match provider {
        // Gitea calls the state `status` in what it returns.
        Provider::Gitea | Provider::Forgejo | Provider::GitLab => "status",
        _ => "state",
    }
}

/// Each provider's states: only a success promotes, only a failure stops for good;
/// everything else (running, queued, skipped, unknown) is still pending.
fn state_of(provider: Provider, state: &str) -> SeenState {
    let state = state.to_ascii_lowercase();
    let (success, failures): (&str, &[&str]) = match provider {
        Provider::GitHub | Provider::Gitea | Provider::Forgejo => {
            ("success", &["failure", "error"])
        }
        Provider::GitLab => ("success", &["failed", "canceled"]),
        Provider::BitbucketCloud | Provider::BitbucketServer => {
            ("successful", &["failed", "stopped", "cancelled"])
        }
        Provider::AzureDevOps => ("succeeded", &["failed", "error"]),
    };
    if state == success {
        SeenState::Success
    } else if failures.contains(&state.as_str()) {
        SeenState::Failure
    } else {
        SeenState::Pending
    }
}

/// When the status was last set.
fn time_of(provider: Provider, entry: &Value) -> Option<SystemTime> {
    let fields: &[&str] = match provider {
        Provider::GitHub | Provider::Gitea | Provider::Forgejo => &["updated_at", "created_at"],
        Provider::GitLab => &["finished_at", "started_at", "created_at"],
        Provider::BitbucketCloud => &["updated_on", "created_on"],
        // Milliseconds since the epoch.
        Provider::BitbucketServer => {
            let millis = entry.get("dateAdded").and_then(Value::as_u64)?;
            return Some(UNIX_EPOCH + Duration::from_millis(millis));
        }
        Provider::AzureDevOps => &["updatedDate", "creationDate"],
    };
    fields
        .iter()
        .filter_map(|f| text(entry, f))
        .find_map(|t| rfc3339(&t))
}

fn rfc3339(text: &str) -> Option<SystemTime> {
    let ts: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    let nanos = ts.as_nanosecond();
    let nanos = u64::try_from(nanos).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

fn text(entry: &Value, field: &str) -> Option<String> {
    entry.get(field).and_then(Value::as_str).map(str::to_string)
}

fn strip<'a>(base: &'a str, api_prefix: &str) -> &'a str {
    base.strip_suffix(api_prefix).unwrap_or(base)
}

fn pair(parts: &[String], provider: Provider, repo: &str) -> Result<[String; 2], ForgeError> {
    match parts {
        [a, b] => Ok([a.clone(), b.clone()]),
        _ => Err(ForgeError::BadRepo {
            provider,
            repo: repo.to_string(),
            shape: "workspace/slug",
        }),
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
