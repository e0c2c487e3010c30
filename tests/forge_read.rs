//! Reading commit statuses back (the promotion gate's reads) against the local
//! recording server, for each provider: method, path and query as the provider's API
//! reference documents its "statuses of a commit" endpoint, the auth header form, no
//! body, exactly one request per read, and rate limits honoured (a `Retry-After`
//! or an exhausted limit stops further reads until the forge's time, with no
//! request meanwhile).

#[cfg(test)]
mod forge_recorder;

use std::time::Duration;

use forge_recorder::{Answer, FakeClock, NOW, Server, answer};
use hawser::gate::SeenState;
use hawser::report::forge::{ForgeConfig, Provider, ReadError, StatusReader, Token};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SECRET: &str = "glpat-TOP-secret-123";

fn config(provider: Provider, api_url: &str, repo: &str, token: &str) -> ForgeConfig {
    ForgeConfig {
        provider,
        api_url: api_url.to_string(),
        repo: repo.to_string(),
        token: Token::new(token),
        context: "hawser/follower".to_string(),
        cluster: "follower".to_string(),
        target_url_template: None,
        source_url: None,
    }
}

fn wanted() -> Vec<String> {
    vec!["hawser/canary-1".to_string()]
}

/// One provider's documented request, and an answer in its documented shape holding
/// a success for hawser/canary-1.
struct Case {
    provider: Provider,
    repo: &'static str,
    token: &'static str,
    /// Path and query, after the server's address.
    target: String,
    auth: (&'static str, String),
    accept: &'static str,
    answer: &'static str,
}

fn cases() -> Vec<Case> {
    use Provider::*;
    let basic = |text: &str| format!("Basic {}", support_base64(text.as_bytes()));
    vec![
        Case {
            provider: GitHub,
            repo: "octo/fleet",
            token: SECRET,
            // GET /repos/{owner}/{repo}/commits/{ref}/status: the combined status.
            target: format!("/repos/octo/fleet/commits/{SHA}/status?per_page=100"),
            auth: ("authorization", format!("Bearer {SECRET}")),
            accept: "application/vnd.github+json",
            answer: r#"{"state":"success","statuses":[{"state":"success","context":"hawser/canary-1","description":"ok","created_at":"2026-11-23T10:00:00Z","updated_at":"2026-11-23T10:00:00Z"}]}"#,
        },
        Case {
            provider: GitLab,
            repo: "group/sub/fleet",
            token: SECRET,
            // GET /projects/:id/repository/commits/:sha/statuses (latest per name).
            target: format!(
                "/api/v4/projects/group%2Fsub%2Ffleet/repository/commits/{SHA}/statuses?per_page=100"
            ),
            auth: ("private-token", SECRET.to_string()),
            accept: "application/json",
            answer: r#"[{"id":1,"status":"success","name":"hawser/canary-1","description":"ok","created_at":"2026-11-23T10:00:00.000Z","finished_at":"2026-11-23T10:00:00.000Z"}]"#,
        },
        Case {
            provider: Gitea,
            repo: "ops/fleet",
            token: SECRET,
            // GET /repos/{owner}/{repo}/commits/{ref}/status: the combined status.
            target: format!("/api/v1/repos/ops/fleet/commits/{SHA}/status?limit=50"),
            auth: ("authorization", format!("token {SECRET}")),
            accept: "application/json",
            answer: r#"{"state":"success","statuses":[{"status":"success","context":"hawser/canary-1","description":"ok","created_at":"2026-11-23T10:00:00Z","updated_at":"2026-11-23T10:00:00Z"}]}"#,
        },
        Case {
            provider: BitbucketCloud,
            repo: "ws/fleet",
            token: "jo@example.com:ATATT-secret",
            // GET /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses.
            target: format!("/2.0/repositories/ws/fleet/commit/{SHA}/statuses?pagelen=100"),
            auth: ("authorization", basic("jo@example.com:ATATT-secret")),
            accept: "application/json",
            answer: r#"{"pagelen":100,"values":[{"key":"hawser/canary-1","name":"hawser/canary-1","state":"SUCCESSFUL","description":"ok","updated_on":"2026-11-23T10:00:00+00:00"}]}"#,
        },
        Case {
            provider: BitbucketServer,
            repo: "OPS/fleet",
            token: SECRET,
            // GET /rest/build-status/1.0/commits/{commitId} (newest first, paged).
            target: format!("/rest/build-status/1.0/commits/{SHA}?limit=100"),
            auth: ("authorization", format!("Bearer {SECRET}")),
            accept: "application/json",
            answer: r#"{"size":1,"limit":100,"isLastPage":true,"values":[{"state":"SUCCESSFUL","key":"hawser/canary-1","name":"hawser/canary-1","url":"https://x","description":"ok","dateAdded":1795428000000}]}"#,
        },
        Case {
            provider: AzureDevOps,
            repo: "org/Edge Sites/fleet",
            token: SECRET,
            // GET {org}/{project}/_apis/git/repositories/{repo}/commits/{commitId}/statuses.
            target: format!(
                "/org/Edge%20Sites/_apis/git/repositories/fleet/commits/{SHA}/statuses?api-version=7.1&latestOnly=true"
            ),
            auth: ("authorization", basic(&format!(":{SECRET}"))),
            accept: "application/json",
            answer: r#"{"count":1,"value":[{"state":"succeeded","description":"ok","context":{"name":"canary-1","genre":"hawser"},"creationDate":"2026-11-23T10:00:00Z"}]}"#,
        },
    ]
}

fn support_base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn each_provider_is_read_with_one_documented_request() {
    for case in cases() {
        let server = Server::start(vec![answer(200, case.answer)]);
        let reader = StatusReader::with_clock(
            config(case.provider, &server.url, case.repo, case.token),
            FakeClock::default(),
        );
        let read = reader.read(SHA, &wanted()).unwrap();
        let request = server.only_request();
        let provider = case.provider;
        assert_eq!(request.method, "GET", "{provider}");
        assert_eq!(request.target, case.target, "{provider}");
        assert_eq!(
            request.header(case.auth.0),
            Some(case.auth.1.as_str()),
            "{provider}"
        );
        assert_eq!(request.header("accept"), Some(case.accept), "{provider}");
        assert_eq!(
            request.header("content-length"),
            None,
            "{provider}: no body"
        );
        if provider == Provider::GitHub {
            assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
        }
        if provider == Provider::AzureDevOps {
            assert_eq!(request.header("x-tfs-fedauthredirect"), Some("Suppress"));
        }
        assert_eq!(read.statuses.len(), 1, "{provider}: {read:?}");
        assert_eq!(read.statuses[0].context, "hawser/canary-1");
        assert_eq!(read.statuses[0].state, SeenState::Success, "{provider}");
        assert!(
            read.statuses[0].at.is_some(),
            "{provider}: a time to soak from"
        );
        assert_eq!(read.hold_off, None);
    }
}

#[test]
fn rate_limits_are_honoured_and_errors_name_the_read() {
    // Retry-After on a 429: no retry inside the read, the wait is returned.
    let limited = Answer {
        status: 429,
        headers: vec![("Retry-After", "120".to_string())],
        body: r#"{"message":"rate limited"}"#.to_string(),
    };
    let server = Server::start(vec![limited]);
    let reader = StatusReader::with_clock(
        config(Provider::GitHub, &server.url, "o/r", SECRET),
        FakeClock::default(),
    );
    let err = reader.read(SHA, &wanted()).unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(server.requests().len(), 1, "one request, no retry");
    assert_eq!(
        err.to_string(),
        "github rate limit reached reading the statuses of 0123456 on o/r; reading again in 120s"
    );

    // A success that used the last request of the window: hold off until the reset.
    let last = Answer {
        status: 200,
        headers: vec![
            ("X-RateLimit-Remaining", "0".to_string()),
            ("X-RateLimit-Reset", (NOW + 900).to_string()),
        ],
        body: r#"{"statuses":[]}"#.to_string(),
    };
    let server = Server::start(vec![last]);
    let reader = StatusReader::with_clock(
        config(Provider::GitHub, &server.url, "o/r", SECRET),
        FakeClock::default(),
    );
    let read = reader.read(SHA, &wanted()).unwrap();
    assert_eq!(read.hold_off, Some(Duration::from_secs(900)));
    assert!(read.statuses.is_empty());

    // A refusal says it was a read, and never echoes the token.
    let refused = answer(401, &format!(r#"{{"message":"bad token {SECRET}"}}"#));
    let server = Server::start(vec![refused]);
    let reader = StatusReader::with_clock(
        config(Provider::Gitea, &server.url, "o/r", SECRET),
        FakeClock::default(),
    );
    let err = reader.read(SHA, &wanted()).unwrap_err();
    assert!(
        matches!(err, ReadError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert_eq!(
        text,
        "gitea refused reading the statuses of 0123456 on o/r: 401 bad token ***; check --status-token-file"
    );
}
