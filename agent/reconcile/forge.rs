//! Commit statuses from the loop: one per cluster and revision, pending → success or
//! failure, never the same twice (the posted ones are remembered in the cache's state,
//! so a restart reposts nothing). Posting never stops the agent: a refusal is logged
//! once and the loop goes on.

use std::time::SystemTime;

use crate::report::cluster;
use crate::report::export::{self, OutcomeRecord};
use crate::report::forge::{CommitStatus, Outcome};

use super::Agent;

impl Agent {
    /// Records the outcome for status reports and posts it on the revision's commit
    /// when reporting is on; only commits have statuses (a tarball without a commit
    /// id has none). Called before the outcome is written to the parent's status, so
    /// the write carries it.
    pub(super) async fn post_status(&mut self, revision: &str, outcome: Outcome) {
        if revision.len() != 40 || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            return;
        }
        let status = CommitStatus::for_outcome(revision, &outcome);
        export::push(
            &mut self.outcomes,
            OutcomeRecord::new(&status, cluster::rfc3339(SystemTime::now())),
        );
        let Some(reporter) = self.forge.clone() else {
            return;
        };
        let mut history = self.state.posted.clone();
        let posted = tokio::task::spawn_blocking(move || {
            let result = reporter.post_once(&mut history, &status);
            (result, history, status)
        })
        .await;
        let Ok((result, history, status)) = posted else {
            tracing::error!("the status task failed");
            return;
        };
        match result {
            Ok(true) => {
                tracing::info!(commit = %status.commit, state = ?status.state, description = %status.description, "posted commit status");
                self.state.posted = history;
                self.save_state();
                self.forge_error = None;
            }
            Ok(false) => tracing::debug!(commit = %status.commit, "commit status already posted"),
            Err(e) => {
                let text = crate::errors::one_line_error(&e);
                if self.forge_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "could not post the commit status");
                    self.forge_error = Some(text);
                }
            }
        }
    }
}
