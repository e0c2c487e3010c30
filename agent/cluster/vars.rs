//! The `--substitute-from` objects, read at every reconcile so a changed value is a
//! new render (Flux's `postBuild.substituteFrom`).
//!
//! In: the client, the agent's namespace and the sources in order. Out: their data
//! keys as variables, later sources winning, newlines removed as Flux removes them,
//! and which of them a Secret gave (their leaves are masked like decrypted ones).
//! What can go wrong is a [`VarsError`] naming the object: it cannot be read (a
//! missing object included: Flux refuses unless `optional`), or a key is not a valid
//! variable name. Values never appear in errors or logs.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use crate::render::substitute::{Fetched, VarSource, valid_name};

#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    #[error("reading substitution variables from {source_ref} in namespace {namespace}")]
    Read {
        source_ref: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "{source_ref}: key {key:?} is not a valid variable name (^[_[:alpha:]][_[:alpha:][:digit:]]*$)"
    )]
    Name { source_ref: String, key: String },
}

pub async fn read(
    client: &kube::Client,
    namespace: &str,
    sources: &[VarSource],
) -> Result<Fetched, VarsError> {
    let mut vars = Fetched::default();
    for source in sources {
        let failed = |e| VarsError::Read {
            source_ref: source.to_string(),
            namespace: namespace.to_string(),
            source: e,
        };
        let data: Vec<(String, String)> = match source {
            VarSource::ConfigMap(name) => Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get(name)
                .await
                .map_err(failed)?
                .data
                .unwrap_or_default()
                .into_iter()
                .collect(),
            VarSource::Secret(name) => Api::<Secret>::namespaced(client.clone(), namespace)
                .get(name)
                .await
                .map_err(failed)?
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
        };
        for (key, value) in data {
            if !valid_name(&key) {
                return Err(VarsError::Name {
                    source_ref: source.to_string(),
                    key,
                });
            }
            match source {
                VarSource::Secret(_) => vars.from_secret.insert(key.clone()),
                VarSource::ConfigMap(_) => vars.from_secret.remove(&key),
            };
            vars.values.insert(key, value.replace('\n', ""));
        }
    }
    Ok(vars)
}
