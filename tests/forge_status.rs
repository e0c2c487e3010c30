//! Commit statuses against a local recording server that answers like each forge.
//!
//! Forge APIs cannot be reached from the test machines, so every request is checked
//! against the provider's documented API: method, path (and its encoding), auth
//! header form, content type and the exact JSON body, for each state. Error answers
//! are replayed as the forges send them (status codes, headers, JSON bodies).

// cfg(test) marks the helpers as test code for clippy (unwrap is fine there).
#[cfg(test)]
mod forge_recorder;

use std::net::TcpListener;
use std::time::Duration;

use forge_recorder::{Answer, FakeClock, NOW, Recorded, Server, answer};
use hawser::report::forge::{
    CommitState, CommitStatus, ForgeConfig, ForgeError, Posted, Provider, Reporter, RetryPolicy,
    StatusOutcome, Token,
};
use serde_json::json;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SECRET: &str = "glpat-TOP-secret-123";

fn config(provider: Provider, api_url: &str, repo: &str) -> ForgeConfig {
    ForgeConfig {
        provider,
        api_url: api_url.to_string(),
        repo: repo.to_string(),
        token: Token::new(SECRET),
        context: "hawser/prod-eu".to_string(),
        cluster: "prod-eu".to_string(),
        target_url_template: None,
        source_url: None,
    }
}

fn reporter(config: ForgeConfig) -> (Reporter<FakeClock>, FakeClock) {
    let clock = FakeClock::default();
    (
        Reporter::with_clock(config, clock.clone(), RetryPolicy::default()),
        clock,
    )
}

fn statuses() -> [(CommitStatus, &'static str); 3] {
    [
        (
            CommitStatus::for_outcome(SHA, &StatusOutcome::Applying { objects: 42 }),
            "applying 42 objects",
        ),
        (
            CommitStatus::for_outcome(
                SHA,
                &StatusOutcome::Healthy {
                    objects: 42,
                    changed: 3,
                    pruned: 1,
                    healthy_after: Duration::from_secs(14),
                },
            ),
            "applied 42 objects (3 changed, 1 pruned), healthy in 14s",
        ),
        (
            CommitStatus::for_outcome(
                SHA,
                &StatusOutcome::Rejected {
                    reason: "Deployment shop/api: namespace shop is outside the scope".into(),
                },
            ),
            "rejected: Deployment shop/api: namespace shop is outside the scope",
        ),
    ]
}

/// Posts pending, success and failure; returns what the server saw for each.
#[cfg(test)]
fn post_each_state(config: ForgeConfig) -> Vec<(CommitState, String, Recorded)> {
    let server = Server::start(Vec::new());
    let config = ForgeConfig {
        api_url: format!("{}{}", server.url, config.api_url),
        ..config
    };
    let (reporter, clock) = reporter(config);
    let mut out = Vec::new();
    for (status, description) in statuses() {
        assert_eq!(status.description, description);
        reporter.post(&status).unwrap();
        let last = server.requests().pop().unwrap();
        assert_eq!(last.method, "POST");
        assert_eq!(last.header("content-type"), Some("application/json"));
        assert!(
            last.header("user-agent")
                .is_some_and(|ua| ua.starts_with("hawser/"))
        );
        out.push((status.state, description.to_string(), last));
    }
    assert!(clock.slept.lock().unwrap().is_empty());
    out
}

#[test]
fn github_statuses() {
    for (state, description, request) in
        post_each_state(config(Provider::GitHub, "/api/v3", "acme/fleet"))
    {
        assert_eq!(
            request.target,
            format!("/api/v3/repos/acme/fleet/statuses/{SHA}")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json")
        );
        assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
        let name = match state {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
        };
        assert_eq!(
            request.body,
            json!({ "state": name, "description": description, "context": "hawser/prod-eu" })
        );
    }
}

#[test]
fn gitlab_statuses() {
    for (state, description, request) in
        post_each_state(config(Provider::GitLab, "", "group/sub/project"))
    {
        assert_eq!(
            request.target,
            format!("/api/v4/projects/group%2Fsub%2Fproject/statuses/{SHA}")
        );
        assert_eq!(request.header("private-token"), Some(SECRET));
        assert_eq!(request.header("authorization"), None);
        let name = match state {
            CommitState::Pending => "running",
            CommitState::Success => "success",
            CommitState::Failure => "failed",
        };
        assert_eq!(
            request.body,
            json!({ "state": name, "name": "hawser/prod-eu", "description": description })
        );
    }
}

#[test]
fn gitea_and_forgejo_statuses() {
    for provider in [Provider::Gitea, Provider::Forgejo] {
        for (state, description, request) in post_each_state(config(provider, "/git", "acme/fleet"))
        {
            assert_eq!(
                request.target,
                format!("/git/api/v1/repos/acme/fleet/statuses/{SHA}")
            );
            assert_eq!(
                request.header("authorization"),
                Some(format!("token {SECRET}").as_str())
            );
            let name = match state {
                CommitState::Pending => "pending",
                CommitState::Success => "success",
                CommitState::Failure => "failure",
            };
            assert_eq!(
                request.body,
                json!({ "state": name, "context": "hawser/prod-eu", "description": description })
            );
        }
    }
}

fn bitbucket_state(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending => "INPROGRESS",
        CommitState::Success => "SUCCESSFUL",
        CommitState::Failure => "FAILED",
    }
}

#[test]
fn bitbucket_cloud_statuses() {
    let base = ForgeConfig {
        context: "hawser/a-very-long-cluster-name-in-eu-west-1".into(),
        target_url_template: Some("https://dash.example/{cluster}/{revision}".into()),
        ..config(Provider::BitbucketCloud, "", "team/app")
    };
    let mut keys = Vec::new();
    for (state, description, request) in post_each_state(base) {
        assert_eq!(
            request.target,
            format!("/2.0/repositories/team/app/commit/{SHA}/statuses/build")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
        let key = request.body["key"].as_str().unwrap().to_string();
        assert!(key.len() <= 40, "{key}");
        keys.push(key.clone());
        assert_eq!(
            request.body,
            json!({
                "key": key,
                "state": bitbucket_state(state),
                "name": "hawser/a-very-long-cluster-name-in-eu-west-1",
                "description": description,
                "url": format!("https://dash.example/prod-eu/{SHA}"),
            })
        );
    }
    keys.dedup();
    assert_eq!(
        keys.len(),
        1,
        "the same key each time, so statuses overwrite each other"
    );
}

#[test]
fn bitbucket_server_statuses() {
    let base = ForgeConfig {
        source_url: Some("https://bb.corp/scm/PROJ/app.git".into()),
        ..config(Provider::BitbucketServer, "/bitbucket", "PROJ/app")
    };
    for (state, description, request) in post_each_state(base) {
        assert_eq!(
            request.target,
            format!("/bitbucket/rest/api/latest/projects/PROJ/repos/app/commits/{SHA}/builds")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
        assert_eq!(
            request.body,
            json!({
                "key": "hawser/prod-eu",
                "state": bitbucket_state(state),
                "name": "hawser/prod-eu",
                "description": description,
                // No target URL configured: the required link falls back to the source.
                "url": "https://bb.corp/scm/PROJ/app",
            })
        );
    }
}

#[test]
fn bitbucket_user_and_secret_tokens_use_basic_auth() {
    let server = Server::start(Vec::new());
    let config = ForgeConfig {
        token: Token::new("jo@example.com:ATATT3x"),
        ..config(Provider::BitbucketCloud, &server.url, "team/app")
    };
    let (reporter, _) = reporter(config);
    reporter
        .post(&CommitStatus::new(
            SHA,
            CommitState::Pending,
            "applying 1 object",
        ))
        .unwrap();
    // base64("jo@example.com:ATATT3x")
    assert_eq!(
        server.only_request().header("authorization"),
        Some("Basic am9AZXhhbXBsZS5jb206QVRBVFQzeA==")
    );
}

#[test]
fn azure_devops_statuses() {
    let base = ForgeConfig {
        target_url_template: Some("https://dash.example/{cluster}".into()),
        ..config(Provider::AzureDevOps, "", "org/Shop Floor/fleet")
    };
    for (state, description, request) in post_each_state(base) {
        assert_eq!(
            request.target,
            format!(
                "/org/Shop%20Floor/_apis/git/repositories/fleet/commits/{SHA}/statuses?api-version=7.1"
            )
        );
        // PAT as Basic auth with an empty user name: base64(":" + token).
        assert_eq!(
            request.header("authorization"),
            Some("Basic OmdscGF0LVRPUC1zZWNyZXQtMTIz")
        );
        assert_eq!(request.header("x-tfs-fedauthredirect"), Some("Suppress"));
        let name = match state {
            CommitState::Pending => "pending",
            CommitState::Success => "succeeded",
            CommitState::Failure => "failed",
        };
        assert_eq!(
            request.body,
            json!({
                "state": name,
                "description": description,
                "targetUrl": "https://dash.example/prod-eu",
                "context": { "name": "prod-eu", "genre": "hawser" },
            })
        );
    }
}

/// Posts one status against canned answers; returns the result, requests and waits.
#[cfg(test)]
fn post_against(
    provider: Provider,
    repo: &str,
    answers: Vec<Answer>,
) -> (Result<(), ForgeError>, usize, Vec<Duration>) {
    let server = Server::start(answers);
    let (reporter, clock) = reporter(config(provider, &server.url, repo));
    let result = reporter.post(&CommitStatus::new(SHA, CommitState::Success, "applied"));
    let slept = clock.slept.lock().unwrap().clone();
    (result, server.requests().len(), slept)
}

fn assert_secret_free(err: &ForgeError) {
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
}

#[test]
fn bad_credentials_are_one_clear_line_and_not_retried() {
    let body =
        r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#;
    let (result, requests, slept) =
        post_against(Provider::GitHub, "owner/repo", vec![answer(401, body)]);
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "github rejected the status for 0123456 on owner/repo: 401 Bad credentials; check --status-token-file"
    );
    assert!(!err.is_transient());
    assert_eq!((requests, slept.len()), (1, 0));
    assert_secret_free(&err);
}

#[test]
fn azure_sign_in_page_is_a_refused_token() {
    let (result, requests, _) = post_against(
        Provider::AzureDevOps,
        "org/proj/fleet",
        vec![answer(
            203,
            "<html><title>Azure DevOps Services | Sign In</title></html>",
        )],
    );
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "azure-devops rejected the status for 0123456 on org/proj/fleet: 203 sign-in page instead of the \
         status: the token was not accepted; check --status-token-file"
    );
    assert_eq!(requests, 1);
}

#[test]
fn unknown_repository() {
    let body = r#"{"message":"404 Project Not Found"}"#;
    let (result, requests, _) =
        post_against(Provider::GitLab, "group/missing", vec![answer(404, body)]);
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "gitlab rejected the status for 0123456 on group/missing: 404 Project Not Found; check --status-repo and \
         --status-api-url, and that the token can see the repository"
    );
    assert_eq!(requests, 1);
}

#[test]
fn github_too_many_statuses_is_its_own_error() {
    let body = r#"{"message":"Validation Failed","errors":[{"resource":"Status","code":"custom","message":"This SHA and context has reached the maximum number of statuses."}],"documentation_url":"https://docs.github.com/rest/commits/statuses#create-a-commit-status","status":"422"}"#;
    let (result, requests, _) =
        post_against(Provider::GitHub, "owner/repo", vec![answer(422, body)]);
    let err = result.unwrap_err();
    assert!(matches!(err, ForgeError::TooManyStatuses { .. }), "{err:?}");
    assert!(err.to_string().contains("hawser/prod-eu"), "{err}");
    assert_eq!(requests, 1);
}

#[test]
fn short_rate_limits_are_waited_out() {
    let limited = Answer {
        status: 429,
        headers: vec![("Retry-After", "1".into())],
        body: r#"{"message":"You have exceeded a secondary rate limit."}"#.into(),
    };
    let (result, requests, slept) = post_against(Provider::GitHub, "owner/repo", vec![limited]);
    result.unwrap();
    assert_eq!(requests, 2);
    assert_eq!(slept, vec![Duration::from_secs(1)]);
}

#[test]
fn long_rate_limits_say_when_to_retry() {
    let limited = Answer {
        status: 403,
        headers: vec![
            ("X-RateLimit-Remaining", "0".into()),
            ("X-RateLimit-Reset", (NOW + 1800).to_string()),
        ],
        body: r#"{"message":"API rate limit exceeded for user ID 1."}"#.into(),
    };
    let (result, requests, slept) = post_against(Provider::GitHub, "owner/repo", vec![limited]);
    let err = result.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1800)));
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "github rate limit reached posting the status for 0123456 on owner/repo; retry in 1800s"
    );
    assert_eq!((requests, slept.len()), (1, 0));
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let (result, requests, slept) = post_against(
        Provider::Gitea,
        "acme/fleet",
        vec![answer(500, r#"{"message":"database is locked"}"#)],
    );
    result.unwrap();
    assert_eq!(requests, 2);
    assert_eq!(slept, vec![Duration::from_secs(1)]);

    let down = vec![answer(502, "<html>bad gateway</html>"); 3];
    let (result, requests, slept) = post_against(Provider::Gitea, "acme/fleet", down);
    let err = result.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "gitea answered 502 <html>bad gateway</html> for 0123456 on acme/fleet after 3 tries"
    );
    assert_eq!(requests, 3);
    assert_eq!(slept, vec![Duration::from_secs(1), Duration::from_secs(2)]);
}

#[test]
fn unreachable_forge_is_transient() {
    // Bind and drop: nothing listens on this port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (reporter, clock) = reporter(config(
        Provider::GitHub,
        &format!("http://127.0.0.1:{port}"),
        "o/r",
    ));
    let err = reporter
        .post(&CommitStatus::new(
            SHA,
            CommitState::Pending,
            "applying 1 object",
        ))
        .unwrap_err();
    assert!(
        matches!(err, ForgeError::Network { tries: 3, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(clock.slept.lock().unwrap().len(), 2);
    assert_secret_free(&err);
}

#[test]
fn an_echoed_token_is_redacted() {
    let body = format!(r#"{{"message":"token {SECRET} is not valid here"}}"#);
    let (result, _, _) = post_against(Provider::Gitea, "acme/fleet", vec![answer(403, &body)]);
    let err = result.unwrap_err();
    assert_secret_free(&err);
    assert!(
        err.to_string().contains("token *** is not valid here"),
        "{err}"
    );
}

#[test]
fn the_token_is_not_in_debug_output() {
    let config = config(Provider::AzureDevOps, "http://127.0.0.1:1", "o/p/r");
    assert!(!format!("{config:?}").contains(SECRET));
    assert!(!format!("{:?}", Reporter::new(config)).contains(SECRET));
}

#[test]
fn post_once_skips_what_was_posted() {
    let server = Server::start(Vec::new());
    let (reporter, _) = reporter(config(Provider::GitHub, &server.url, "o/r"));
    let mut history: Vec<Posted> = Vec::new();
    let pending = CommitStatus::for_outcome(SHA, &StatusOutcome::Applying { objects: 2 });
    assert!(reporter.post_once(&mut history, &pending).unwrap());
    assert!(!reporter.post_once(&mut history, &pending).unwrap());
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        history,
        vec![Posted {
            commit: SHA.into(),
            context: "hawser/prod-eu".into(),
            state: CommitState::Pending,
            description: "applying 2 objects".into(),
        }]
    );
    let request = server.only_request();
    assert_eq!(request.body["state"], "pending");
}
