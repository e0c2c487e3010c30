//! Each provider's answer, in the shape its API reference documents (field names,
//! state spellings, time formats), read into the gate's statuses.

use super::*;
use crate::report::forge::Token;

fn wanted() -> Vec<String> {
    vec!["hawser/canary-1".into(), "hawser/canary-2".into()]
}

fn secs(at: Option<SystemTime>) -> u64 {
    at.unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn config(provider: Provider, api_url: &str, repo: &str) -> ForgeConfig {
    ForgeConfig {
        provider,
        api_url: api_url.into(),
        repo: repo.into(),
        token: Token::new("t"),
        context: "hawser/follower".into(),
        cluster: "follower".into(),
        target_url_template: None,
        source_url: None,
    }
}

#[test]
fn github_combined_status() {
    let body = r#"{"state":"pending","sha":"abc","total_count":3,"statuses":[
        {"state":"success","context":"hawser/canary-1","description":"applied 2 objects","created_at":"2026-11-23T10:00:00Z","updated_at":"2026-11-23T10:00:05Z"},
        {"state":"error","context":"hawser/canary-2","description":"failed: x","created_at":"2026-11-23T10:00:00Z","updated_at":"2026-11-23T10:00:00Z"},
        {"state":"success","context":"ci/build","description":"ok","created_at":"2026-11-23T09:00:00Z","updated_at":"2026-11-23T09:00:00Z"}]}"#;
    let seen = parse(Provider::GitHub, body, &wanted()).unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].state, SeenState::Success);
    assert_eq!(secs(seen[0].at), 1_795_428_005);
    assert_eq!(
        seen[1].state,
        SeenState::Failure,
        "error stops like failure"
    );
}

#[test]
fn gitlab_latest_statuses() {
    let body = r#"[
        {"id":93,"sha":"abc","ref":"main","status":"running","name":"hawser/canary-1","description":"applying","created_at":"2026-11-23T10:00:00.000Z","started_at":null,"finished_at":null},
        {"id":94,"sha":"abc","ref":"main","status":"canceled","name":"hawser/canary-2","description":null,"created_at":"2026-11-23T10:00:00.000Z","started_at":null,"finished_at":"2026-11-23T10:01:00.000Z"}]"#;
    let seen = parse(Provider::GitLab, body, &wanted()).unwrap();
    assert_eq!(seen[0].state, SeenState::Pending, "running is not done");
    assert_eq!(seen[1].state, SeenState::Failure);
    assert_eq!(seen[1].description, "");
    assert_eq!(secs(seen[1].at), 1_795_428_060, "finished_at first");
}

#[test]
fn gitea_combined_status() {
    let body = r#"{"state":"success","sha":"abc","total_count":1,"statuses":[
        {"id":7,"status":"success","context":"hawser/canary-2","description":"ok","created_at":"2026-11-23T11:00:00+01:00","updated_at":"2026-11-23T11:00:00+01:00"}]}"#;
    let seen = parse(Provider::Forgejo, body, &wanted()).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].context, "hawser/canary-2");
    assert_eq!(seen[0].state, SeenState::Success);
    assert_eq!(secs(seen[0].at), 1_795_428_000, "offsets are honoured");
}

#[test]
fn gitea_without_any_status_answers_null() {
    // Gitea (Go's nil slice) for a commit nobody has reported on yet; the real
    // Gitea in tests/promote_gitea.rs answers so.
    let body = r#"{"sha":"abc","total_count":0,"statuses":null}"#;
    assert_eq!(parse(Provider::Gitea, body, &wanted()).unwrap(), Vec::new());
}

#[test]
fn bitbucket_cloud_matches_the_key_the_reporter_posts() {
    let long = "hawser/canary-in-a-very-long-region-name-zone-b".to_string();
    let key = bitbucket_key(&long);
    assert_ne!(key, long);
    let body = format!(
        r#"{{"pagelen":100,"size":2,"page":1,"values":[
        {{"type":"build","key":"{key}","state":"SUCCESSFUL","name":"something else","description":"ok","created_on":"2026-11-23T10:00:00.000000+00:00","updated_on":"2026-11-23T10:00:09.000000+00:00"}},
        {{"type":"build","key":"hawser/canary-1","state":"STOPPED","name":"hawser/canary-1","description":"x","created_on":"2026-11-23T10:00:00+00:00","updated_on":"2026-11-23T10:00:00+00:00"}}]}}"#
    );
    let seen = parse(
        Provider::BitbucketCloud,
        &body,
        &[long.clone(), "hawser/canary-1".into()],
    )
    .unwrap();
    assert_eq!(seen[0].context, long);
    assert_eq!(seen[0].state, SeenState::Success);
    assert_eq!(secs(seen[0].at), 1_795_428_009);
    assert_eq!(seen[1].state, SeenState::Failure);
}

#[test]
fn bitbucket_server_build_statuses() {
    let body = r#"{"size":1,"limit":100,"isLastPage":true,"start":0,"values":[
        {"state":"INPROGRESS","key":"hawser/canary-1","name":"hawser/canary-1","url":"https://x","description":"applying","dateAdded":1795428000123}]}"#;
    let seen = parse(Provider::BitbucketServer, body, &wanted()).unwrap();
    assert_eq!(seen[0].state, SeenState::Pending);
    assert_eq!(secs(seen[0].at), 1_795_428_000);
}

#[test]
fn azure_devops_statuses_by_genre_and_name() {
    let body = r#"{"count":2,"value":[
        {"id":2,"state":"succeeded","description":"ok","context":{"name":"canary-1","genre":"hawser"},"creationDate":"2026-11-23T10:00:00.5Z"},
        {"id":1,"state":"failed","description":"x","context":{"name":"canary-1","genre":"other"},"creationDate":"2026-11-23T10:00:00Z"}]}"#;
    let seen = parse(Provider::AzureDevOps, body, &wanted()).unwrap();
    assert_eq!(seen.len(), 1, "another genre is another context: {seen:?}");
    assert_eq!(seen[0].state, SeenState::Success);
}

#[test]
fn answers_that_are_no_status_list_are_refused() {
    assert!(
        parse(Provider::GitHub, "<html>", &wanted())
            .unwrap_err()
            .contains("not JSON")
    );
    assert_eq!(
        parse(Provider::GitLab, r#"{"message":"x"}"#, &wanted()).unwrap_err(),
        "the answer has no list of statuses"
    );
    let no_state = r#"{"statuses":[{"context":"hawser/canary-1"}]}"#;
    assert_eq!(
        parse(Provider::GitHub, no_state, &wanted()).unwrap_err(),
        "a status of hawser/canary-1 has no state"
    );
}

#[test]
fn read_urls_per_provider() {
    use Provider::*;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    for (provider, api, repo, want) in [
        (
            GitHub,
            "https://api.github.com",
            "o/r",
            format!("https://api.github.com/repos/o/r/commits/{sha}/status?per_page=100"),
        ),
        (
            GitLab,
            "https://gitlab.corp/api/v4",
            "g/s/p",
            format!(
                "https://gitlab.corp/api/v4/projects/g%2Fs%2Fp/repository/commits/{sha}/statuses?per_page=100"
            ),
        ),
        (
            Gitea,
            "https://git.corp",
            "o/r",
            format!("https://git.corp/api/v1/repos/o/r/commits/{sha}/status?limit=50"),
        ),
        (
            BitbucketCloud,
            "https://api.bitbucket.org",
            "w/s",
            format!(
                "https://api.bitbucket.org/2.0/repositories/w/s/commit/{sha}/statuses?pagelen=100"
            ),
        ),
        (
            BitbucketServer,
            "https://bb.corp",
            "P/s",
            format!("https://bb.corp/rest/build-status/1.0/commits/{sha}?limit=100"),
        ),
        (
            AzureDevOps,
            "https://dev.azure.com",
            "org/My Proj/app",
            format!(
                "https://dev.azure.com/org/My%20Proj/_apis/git/repositories/app/commits/{sha}/statuses?api-version=7.1&latestOnly=true"
            ),
        ),
    ] {
        let request = build(&config(provider, api, repo), sha).unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.url, want, "{provider}");
        assert_eq!(request.body, Value::Null);
    }
    assert!(build(&config(GitHub, "https://api.github.com", "o/r"), "../x").is_err());
}
