//! Health: after an apply, wait until every applied object is ready (kstatus rules),
//! or the timeout passes, or one of them fails for good.
//!
//! In: the applied objects. Out: a [`Verdict`] — only a healthy verdict lets a
//! revision be recorded as `good`: its [`Healthy`] proof can only be made here, and
//! [`crate::cache::State::record_good`] asks for it.
//!
//! ```compile_fail,E0451
//! // Outside `health`, a proof of health cannot be made up:
//! let proof = hawser::health::Healthy { after: std::time::Duration::ZERO };
//! ```

pub mod kstatus;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::Kind;
use crate::cluster::list::{WithStatus, list_by_id};
use crate::cluster::{api_for, api_reason};
use crate::manifests::ObjectRef;
pub use kstatus::Readiness;

/// How often objects are read again while waiting.
const POLL: Duration = Duration::from_secs(1);

/// The proof that every applied object was ready, and how long it took. Its field
/// is private: only [`wait`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Healthy {
    after: Duration,
}

impl Healthy {
    /// How long the objects took to become ready after the apply.
    pub fn after(&self) -> Duration {
        self.after
    }
}

/// The outcome of waiting for health.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Healthy(Healthy),
    /// Objects not ready when the wait ended, with the reason for each.
    Unhealthy {
        not_ready: Vec<(String, String)>,
        failed: bool,
    },
}

impl Verdict {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Verdict::Healthy(_))
    }

    /// The first reason, for statuses and events.
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::Healthy(_) => None,
            Verdict::Unhealthy { not_ready, .. } => {
                not_ready.first().map(|(o, r)| format!("{o}: {r}"))
            }
        }
    }
}

/// An applied object to wait for: who it is and how to address it.
pub type Watched<'a> = (&'a ObjectRef, &'a Kind);

async fn read_one(client: &kube::Client, (id, kind): Watched<'_>) -> Readiness {
    let api = api_for(client, kind, id.namespace.as_deref());
    match api.get_opt(&id.name).await {
        Ok(Some(live)) => kstatus::assess(&serde_json::to_value(live).unwrap_or(Value::Null)),
        Ok(None) => Readiness::InProgress("not found".into()),
        Err(e) => Readiness::InProgress(format!("reading it failed: {}", api_reason(&e))),
    }
}

/// Waits until all `objects` (those worth watching, see
/// [`crate::manifests::worth_watching`]) are ready, one has failed, or `timeout`
/// passes. Each round reads the objects with one LIST per kind and namespace (the
/// members of ApplySet `applyset_id`), and any object the lists miss on its own.
pub async fn wait(
    client: &kube::Client,
    objects: impl IntoIterator<Item = Watched<'_>>,
    applyset_id: &str,
    timeout: Duration,
) -> Verdict {
    let started = Instant::now();
    let mut pending: Vec<Watched<'_>> = objects.into_iter().collect();
    loop {
        let mut not_ready = Vec::new();
        let mut failed = false;
        let mut still = Vec::new();
        let ids = pending.iter().copied();
        let mut listed =
            list_by_id::<WithStatus, _>(client, ids, applyset_id, kstatus::assess).await;
        for watched in pending {
            let (id, _) = watched;
            let readiness = match listed.remove(id) {
                Some(readiness) => readiness,
                None => read_one(client, watched).await,
            };
            match readiness {
                Readiness::Ready => {}
                Readiness::InProgress(reason) => {
                    not_ready.push((id.to_string(), reason));
                    still.push(watched);
                }
                Readiness::Failed(reason) => {
                    failed = true;
                    not_ready.push((id.to_string(), reason));
                    still.push(watched);
                }
            }
        }
        if not_ready.is_empty() {
            return Verdict::Healthy(Healthy {
                after: started.elapsed(),
            });
        }
        if failed || started.elapsed() >= timeout {
            // Failures first: they are the reason worth reading.
            not_ready.sort_by_key(|(_, r)| {
                !r.contains("failed") && !r.contains("exceeded") && !r.contains("stalled")
            });
            return Verdict::Unhealthy { not_ready, failed };
        }
        pending = still;
        tokio::time::sleep(POLL.min(timeout.saturating_sub(started.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Record, State};

    #[tokio::test]
    async fn only_a_healthy_verdict_records_a_good_revision() {
        // Nothing to wait for: no request is made, so no server is needed.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let verdict = wait(&client, std::iter::empty(), "id", Duration::ZERO).await;
        let Verdict::Healthy(proof) = verdict else {
            panic!("nothing to wait for is healthy: {verdict:?}");
        };
        let record = Record {
            revision: "a".repeat(40).parse().unwrap(),
            digest: "sha256:00".into(),
            source: "s".into(),
            at: 1,
            committer_time: None,
        };
        let mut state = State::default();
        assert!(state.good().is_none());
        state.record_good(record.clone(), &proof);
        assert_eq!(state.good(), Some(&record));
        state.forget_good(&record.revision);
        assert!(state.good().is_none());
    }
}
