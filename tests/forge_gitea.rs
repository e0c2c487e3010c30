//! Commit statuses against a real Gitea, built from its Go module by
//! `tests/gitea/build` and named by `HAWSER_TEST_GITEA` (the binary).
//!
//! Gitea is the one forge that can run here. The test starts it on loopback with
//! SQLite, creates a user, a token and a repository through Gitea's own CLI and API,
//! posts pending → success → failure with the reporter and reads them back through
//! the API, then checks the refusals a real server gives (bad token, unknown repo).
//! Without `HAWSER_TEST_GITEA` the test fails and says to run `tests/gitea/build`:
//! passing without a forge would look like coverage that is not there. The startup
//! lives in `tests/gitea/mod.rs`, shared with `agent_gitea.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gitea/mod.rs"]
mod gitea;

use std::time::Duration;

use gitea::{Gitea, USER};
use hawser::report::forge::{
    CommitState, CommitStatus, ForgeConfig, ForgeError, Provider, Reporter, StatusOutcome, Token,
};
use serde_json::json;

fn config(gitea: &Gitea, repo: &str, token: &str) -> ForgeConfig {
    ForgeConfig {
        provider: Provider::Gitea,
        api_url: gitea.url.clone(),
        repo: repo.to_string(),
        token: Token::new(token),
        context: "hawser/prod-eu".into(),
        cluster: "prod-eu".into(),
        target_url_template: Some("https://dash.example/{cluster}/{revision}".into()),
        source_url: None,
    }
}

#[test]
fn statuses_on_a_real_gitea() {
    let gitea = gitea::start(&gitea::bin());
    let repo = gitea.post("/user/repos", json!({ "name": "fleet", "auto_init": true }));
    let branch = repo["default_branch"].as_str().unwrap().to_string();
    let head = gitea.get(&format!("/repos/{USER}/fleet/branches/{branch}"));
    let sha = head["commit"]["id"].as_str().unwrap().to_string();

    let reporter = Reporter::new(config(&gitea, &format!("{USER}/fleet"), &gitea.token));
    let outcomes = [
        (StatusOutcome::Applying { objects: 42 }, "pending"),
        (
            StatusOutcome::Healthy {
                objects: 42,
                changed: 3,
                pruned: 1,
                healthy_after: Duration::from_secs(14),
            },
            "success",
        ),
        (
            StatusOutcome::Rejected {
                reason: "Deployment shop/api: namespace shop is outside the scope".into(),
            },
            "failure",
        ),
    ];
    for (outcome, want) in outcomes {
        let status = CommitStatus::for_outcome(&sha, &outcome);
        reporter.post(&status).unwrap();
        let combined = gitea.get(&format!("/repos/{USER}/fleet/commits/{sha}/status"));
        assert_eq!(combined["state"], want, "{combined:#}");
        let latest = &combined["statuses"][0];
        assert_eq!(latest["context"], "hawser/prod-eu");
        assert_eq!(latest["description"], outcome.description());
        assert_eq!(
            latest["target_url"],
            format!("https://dash.example/prod-eu/{sha}")
        );
        assert_eq!(
            combined["statuses"].as_array().unwrap().len(),
            1,
            "one status per context"
        );
    }

    let bad_token = Reporter::new(config(&gitea, &format!("{USER}/fleet"), "not-a-real-token"));
    let err = bad_token
        .post(&CommitStatus::new(&sha, CommitState::Success, "applied"))
        .unwrap_err();
    assert!(
        matches!(err, ForgeError::Rejected { status: 401, .. }),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("; check --status-token-file"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-a-real-token"), "{err}");

    let missing = Reporter::new(config(&gitea, &format!("{USER}/missing"), &gitea.token));
    let err = missing
        .post(&CommitStatus::new(&sha, CommitState::Success, "applied"))
        .unwrap_err();
    assert!(
        matches!(err, ForgeError::Rejected { status: 404, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains(&gitea.token), "{err}");
}
