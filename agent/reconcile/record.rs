//! Recording outcomes where operators look: the status block on the inventory parent
//! (written only when the outcome changes) and Events for what was kept.

use std::time::SystemTime;

use super::Agent;
use crate::apply::Applied;
use crate::inventory;
use crate::report::cluster::{self, ClusterStatus, Severity};

impl Agent {
    /// Objects whose deletion was refused stay managed; say so where operators look.
    pub(super) async fn report_kept(&self, applied: &Applied) {
        for (member, why) in &applied.prune.kept {
            cluster::event(
                &self.client,
                &self.target.parent,
                Severity::Warning,
                "PruneRefused",
                &format!("{}: {why}", member.object_ref()),
            )
            .await;
        }
    }

    /// Writes the outcome to the parent's status, when it changed.
    pub(super) async fn record(&mut self, result: &str, message: &str, objects: usize) {
        let message = if self.insecure_source() {
            format!("{message} [INSECURE: unsigned bundles accepted (--insecure-allow-unsigned)]")
        } else {
            message.to_string()
        };
        let message = message.as_str();
        let status = ClusterStatus {
            source: self.source.display_url().to_string(),
            desired: self.desired.clone(),
            applied: self.state.applied.as_ref().map(|r| r.revision.clone()),
            good: self.state.good.as_ref().map(|r| r.revision.clone()),
            result: result.to_string(),
            message: message.to_string(),
            time: cluster::rfc3339(SystemTime::now()),
            objects,
            suspended: self.settings.suspend,
            source_unreachable_since: self.unreachable_since.map(cluster::rfc3339),
            cluster: self.settings.cluster_name.clone(),
            outcomes: self.outcomes.clone(),
        };
        self.write_status(status).await;
    }

    /// Records the start or end of a source outage on the parent's status.
    pub(super) async fn record_unreachable(&mut self, since: Option<SystemTime>) {
        if self.status.result.is_empty() && since.is_none() {
            return;
        }
        let mut status = self.status.clone();
        status.source = self.source.display_url().to_string();
        status.source_unreachable_since = since.map(cluster::rfc3339);
        status.cluster = self.settings.cluster_name.clone();
        status.outcomes = self.outcomes.clone();
        if status.result.is_empty() {
            status.result = "unknown".into();
            status.message = "source unreachable before the first revision".into();
        }
        self.write_status(status).await;
    }

    pub(super) async fn write_status(&mut self, status: ClusterStatus) {
        if status.same_outcome(&self.status) {
            return;
        }
        let Ok(text) = serde_json::to_string(&status) else {
            return;
        };
        match inventory::read(&self.client, &self.target.parent).await {
            Ok(mut recorded) => {
                let members = recorded.members.clone();
                if let Err(e) = inventory::write(
                    &self.client,
                    &self.target.parent,
                    &mut recorded,
                    &members,
                    Some(&text),
                )
                .await
                {
                    tracing::warn!(error = %crate::errors::one_line_error(&e), "could not record the status on the inventory parent");
                    return;
                }
                self.status = status;
            }
            Err(e) => {
                tracing::warn!(error = %crate::errors::one_line_error(&e), "could not read the inventory parent")
            }
        }
    }
}
