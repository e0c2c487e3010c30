//! The connection to the API server and what it serves.
//!
//! Discovery asks only for the group-versions a revision uses (one request each,
//! remembered), not for every group the server has: a small agent should not walk
//! the whole API on every reconcile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;

use crate::manifests::Namespacing;

pub mod list;
pub mod vars;

/// Requests in flight at once while planning or applying.
pub const CONCURRENCY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("connecting to the API server (KUBECONFIG or in-cluster config)")]
    Config(#[source] kube::Error),
    #[error("discovering API {api_version}")]
    Discovery {
        api_version: String,
        #[source]
        source: kube::Error,
    },
}

impl ClusterError {
    /// Whether asking again later may succeed: not for a refused credential (401)
    /// or permission (403), which only an operator changes.
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Config(e) | ClusterError::Discovery { source: e, .. } => is_transient(e),
        }
    }
}

/// A client for the cluster named by `KUBECONFIG`, or the in-cluster service account.
pub async fn connect() -> Result<kube::Client, ClusterError> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| ClusterError::Config(kube::Error::InferConfig(e)))?;
    trim_token_file(&mut config.auth_info);
    kube::Client::try_from(config).map_err(ClusterError::Config)
}

/// kubectl trims the whitespace around a `tokenFile`'s token (tokens mounted from
/// Secrets often end in a newline); kube-rs sends it as read, which no header can
/// carry. Such a token is read here, trimmed, once: a file that needs no trimming
/// stays a file, which kube-rs re-reads every minute (rotation).
fn trim_token_file(auth: &mut kube::config::AuthInfo) {
    if auth.token.is_some() {
        return;
    }
    let Some(path) = auth.token_file.clone() else {
        return;
    };
    // Unreadable: leave it to kube-rs, whose error names the file.
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let trimmed = text.trim();
    if trimmed.len() == text.len() {
        return;
    }
    tracing::debug!(token_file = %path, "the token file has surrounding whitespace; using it trimmed, as kubectl does (read once)");
    auth.token = Some(trimmed.to_string().into());
    auth.token_file = None;
}

/// Whether `e` means the API server did not answer at all (refused or cut
/// connection, TLS or a timeout), as opposed to an answer that refused the request.
pub fn is_unreachable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// A served kind: how to address it and whether it lives in namespaces. Cloned into
/// every planned object, so the resource's five strings are shared, not copied.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: Arc<ApiResource>,
    pub namespaced: bool,
}

/// Kinds discovered so far, by (apiVersion, kind).
#[derive(Debug, Default, Clone)]
pub struct Discovered {
    kinds: BTreeMap<(String, String), Kind>,
    /// Group-versions asked about, including those the server does not serve.
    asked: BTreeSet<String>,
    /// Kinds that CRDs in the same revision will define: (group, kind) → namespaced.
    pending_crds: BTreeMap<(String, String), bool>,
}

impl Discovered {
    /// Asks the server about each group-version not asked about before. A
    /// group-version the server does not serve (404) simply stays unknown.
    pub async fn learn(
        &mut self,
        client: &kube::Client,
        api_versions: impl IntoIterator<Item = String>,
    ) -> Result<(), ClusterError> {
        for api_version in api_versions {
            if self.asked.contains(&api_version) {
                continue;
            }
            let list = if api_version.contains('/') {
                client.list_api_group_resources(&api_version).await
            } else {
                client.list_core_api_resources(&api_version).await
            };
            let list = match list {
                Ok(list) => list,
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    self.asked.insert(api_version);
                    continue;
                }
                Err(source) => {
                    return Err(ClusterError::Discovery {
                        api_version,
                        source,
                    });
                }
            };
            let (group, version) = split_api_version(&api_version);
            for r in list.resources {
                if r.name.contains('/') {
                    continue; // subresource
                }
                let resource = ApiResource {
                    group: group.to_string(),
                    version: version.to_string(),
                    api_version: api_version.clone(),
                    kind: r.kind.clone(),
                    plural: r.name.clone(),
                };
                self.kinds.insert(
                    (api_version.clone(), r.kind),
                    Kind {
                        resource: Arc::new(resource),
                        namespaced: r.namespaced,
                    },
                );
            }
            self.asked.insert(api_version);
        }
        Ok(())
    }

    /// Forgets group-versions, so the next `learn` asks again (after CRDs arrived).
    pub fn forget(&mut self, api_versions: &BTreeSet<String>) {
        self.asked.retain(|v| !api_versions.contains(v));
    }

    pub fn kind(&self, api_version: &str, kind: &str) -> Option<&Kind> {
        self.kinds.get(&(api_version.to_string(), kind.to_string()))
    }

    /// Records kinds that CRDs in the revision define but the server does not serve yet.
    pub fn expect_crd(&mut self, group: &str, kind: &str, namespaced: bool) {
        self.pending_crds
            .insert((group.to_string(), kind.to_string()), namespaced);
    }
}

impl Namespacing for Discovered {
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        self.kinds
            .values()
            .find(|k| k.resource.group == group && k.resource.kind == kind)
            .map(|k| k.namespaced)
            .or_else(|| {
                self.pending_crds
                    .get(&(group.to_string(), kind.to_string()))
                    .copied()
            })
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// The API for one kind: in `namespace` when the kind is namespaced, else cluster-wide.
pub fn api_for(client: &kube::Client, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    match (kind.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, kind.resource.as_ref()),
        _ => Api::all_with(client.clone(), kind.resource.as_ref()),
    }
}

/// The API server's message without kube-rs's wrapping.
pub fn api_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!("{}: ", status.reason.to_lowercase())
            };
            format!("{reason}{}", status.message)
        }
        other => other.to_string(),
    }
}

pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}
