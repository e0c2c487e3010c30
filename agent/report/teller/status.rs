//! The status block on the inventory parent: restored at start (so this run amends
//! what the last one recorded), rewritten when an outcome, an outage or the change
//! windows change it, and never written when nothing changed.

use std::time::SystemTime;

use super::{Standing, Teller};
use crate::errors::one_line_error;
use crate::inventory;
use crate::report::cluster::{self, ClusterStatus, SyncWindowStatus};
use crate::report::export;
use crate::source::Revision;

impl Teller {
    /// Picks up the status and the outcomes an earlier run recorded on the parent,
    /// so the first note of this run (say, that Git is down) amends them instead of
    /// replacing them, and exported reports keep their history across restarts.
    pub async fn restore(&mut self) {
        match inventory::read(&self.client, &self.parent).await {
            Ok(recorded) => {
                if let Some(status) = recorded
                    .status
                    .and_then(|text| serde_json::from_str::<ClusterStatus>(&text).ok())
                {
                    self.outcomes = status.outcomes.clone();
                    let excess = self.outcomes.len().saturating_sub(export::KEEP_OUTCOMES);
                    self.outcomes.drain(..excess);
                    self.desired = status.desired.clone();
                    self.status = status;
                }
            }
            Err(e) => {
                tracing::debug!(error = %one_line_error(&e), "no recorded status to restore")
            }
        }
    }

    /// The status as last recorded on the parent (restored at start).
    pub fn recorded(&self) -> &ClusterStatus {
        &self.status
    }

    /// The desired revision could not be stored in the cache: the status shows it
    /// as desired and why it is not applied, while the applied one stays enforced.
    pub async fn unstorable(&mut self, revision: &Revision, reason: &str) {
        self.desired = Some(revision.to_string());
        let mut status = self.status.clone();
        status.source = self.source_url.clone();
        status.desired = Some(revision.to_string());
        status.desired_unstorable = Some(reason.to_string());
        status.cluster = self.cluster_name.clone();
        status.outcomes = self.outcomes.clone();
        if status.result.is_empty() {
            status.result = "failed".into();
            status.message = format!("{revision} cannot be stored in the cache: {reason}");
            status.time = cluster::rfc3339(SystemTime::now());
        }
        self.write_status(status).await;
    }

    /// Records the start (`Some`) or end (`None`) of a source outage on the parent's
    /// status.
    pub async fn outage(&mut self, since: Option<SystemTime>) {
        if self.status.result.is_empty() && since.is_none() {
            return;
        }
        let mut status = self.status.clone();
        status.source = self.source_url.clone();
        status.source_unreachable_since = since.map(cluster::rfc3339);
        status.cluster = self.cluster_name.clone();
        status.outcomes = self.outcomes.clone();
        if status.result.is_empty() {
            status.result = "unknown".into();
            status.message = "source unreachable before the first revision".into();
        }
        self.write_status(status).await;
    }

    /// Writes the outcome to the parent's status, when it changed.
    pub(super) async fn record(
        &mut self,
        result: &str,
        message: &str,
        objects: usize,
        standing: &Standing<'_>,
    ) {
        let message = if self.insecure {
            format!("{message} [INSECURE: unsigned bundles accepted (--insecure-allow-unsigned)]")
        } else {
            message.to_string()
        };
        let status = ClusterStatus {
            source: self.source_url.clone(),
            desired: self.desired.clone(),
            applied: standing.applied.map(Revision::to_string),
            good: standing.good.map(Revision::to_string),
            desired_unstorable: None,
            result: result.to_string(),
            message,
            time: cluster::rfc3339(SystemTime::now()),
            objects,
            suspended: self.suspend,
            source_unreachable_since: standing.unreachable_since.map(cluster::rfc3339),
            cluster: self.cluster_name.clone(),
            outcomes: self.outcomes.clone(),
            sync_window: self.status.sync_window.clone(),
        };
        self.write_status(status).await;
    }

    /// The change windows' state now (`None`: no window configured); written to the
    /// parent's status when it changed.
    pub async fn sync_window(&mut self, window: Option<SyncWindowStatus>) {
        if self.status.sync_window == window {
            return;
        }
        let mut status = self.status.clone();
        status.sync_window = window;
        if status.result.is_empty() {
            status.source = self.source_url.clone();
            status.cluster = self.cluster_name.clone();
            status.result = "unknown".into();
            status.message = "no revision applied yet".into();
        }
        self.write_status(status).await;
    }

    async fn write_status(&mut self, status: ClusterStatus) {
        if status.same_outcome(&self.status) {
            return;
        }
        let Ok(text) = serde_json::to_string(&status) else {
            return;
        };
        match inventory::read(&self.client, &self.parent).await {
            Ok(mut recorded) => {
                let members = std::sync::Arc::clone(&recorded.members);
                let written = inventory::write(
                    &self.client,
                    &self.parent,
                    &mut recorded,
                    &members,
                    Some(&text),
                )
                .await;
                if let Err(e) = written {
                    tracing::warn!(error = %one_line_error(&e), "could not record the status on the inventory parent");
                    return;
                }
                self.status = status;
            }
            Err(e) => {
                tracing::warn!(error = %one_line_error(&e), "could not read the inventory parent")
            }
        }
    }
}
