//! `hawser status`: what the agent last recorded on its inventory parent, for a human
//! (a short table) or as JSON, or as a status report file (`--export`) for an
//! air-gapped site. Reads the cluster only; works while the agent runs.

use std::path::PathBuf;

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use super::Exit;
use crate::inventory::SUSPEND_ANNOTATION;
use crate::inventory::{self, STATUS_KEY};
use crate::report::cluster::ClusterStatus;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub show: ShowArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// At the connected site: verify an exported status report and post its commit
    /// statuses to the forge, as the air-gapped cluster would have.
    Post(Box<super::status_post::Args>),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The agent's namespace (where its inventory parent lives).
    #[arg(long, env = "HAWSER_NAMESPACE", value_name = "NS", required = true)]
    pub namespace: Option<String>,
    /// Name of the inventory parent ConfigMap.
    #[arg(long, env = "HAWSER_NAME", default_value = "hawser")]
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Format,
    /// Write a status report (the commit statuses this cluster would post) to FILE,
    /// for `hawser status post` at a connected site.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// With --export: the cluster's name [default: the agent's --cluster-name]
    #[arg(long, env = "HAWSER_CLUSTER_NAME", value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// With --export: sign the report with this SSH key (ssh-keygen -Y sign -n
    /// hawser-status), writing FILE.sig.
    #[arg(long, value_name = "KEY", requires = "export")]
    pub sign_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let Args { command, show } = args;
    if let Some(Command::Post(args)) = command {
        return super::status_post::run(*args);
    }
    let ShowArgs {
        namespace,
        name,
        output,
        export,
        cluster_name,
        sign_key,
    } = show;
    let namespace = namespace.context("hawser status needs --namespace")?;
    let (cm, status) = super::block_on(read(namespace.clone(), name.clone()))?;
    if let Some(file) = export {
        let report = super::status_post::export(&file, cluster_name, sign_key.as_deref(), status)?;
        println!(
            "{}",
            serde_json::json!({
                "report": file.display().to_string(),
                "cluster": report.cluster,
                "outcomes": report.outcomes.len(),
                "signed": sign_key.is_some(),
            })
        );
        return Ok(Exit::Success);
    }
    // A packed list that does not unpack counts as none here; the agent names it.
    let members = inventory::members_text(&cm)
        .ok()
        .flatten()
        .map(|(t, _)| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0);
    let id = cm
        .metadata
        .labels
        .unwrap_or_default()
        .get(inventory::ID_LABEL)
        .cloned()
        .unwrap_or_default();
    match output {
        Format::Json => {
            let mut value = serde_json::to_value(&status)?;
            if let Some(map) = value.as_object_mut() {
                map.insert("name".into(), name.clone().into());
                map.insert("namespace".into(), namespace.clone().into());
                map.insert("applysetId".into(), id.into());
                map.insert("managedObjects".into(), members.into());
            }
            println!("{value}");
        }
        Format::Table => print!("{}", table(&namespace, &name, &id, members, &status)),
    }
    Ok(Exit::Success)
}

/// Reads the inventory parent and the status the agent recorded on it.
async fn read(namespace: String, name: String) -> anyhow::Result<(ConfigMap, ClusterStatus)> {
    let client = crate::cluster::connect().await?;
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let cm = api
        .get_opt(&name)
        .await
        .with_context(|| format!("reading ConfigMap {namespace}/{name}"))?
        .with_context(|| {
            format!(
                "ConfigMap {namespace}/{name} does not exist: no hawser has applied anything here yet"
            )
        })?;
    let mut status: ClusterStatus = match cm.data.as_ref().and_then(|d| d.get(STATUS_KEY)) {
        Some(text) => serde_json::from_str(text).with_context(|| {
            format!("ConfigMap {namespace}/{name}: data.status is not hawser's status")
        })?,
        None => ClusterStatus::default(),
    };
    // The annotation may have been set after the last outcome was recorded.
    let annotations = cm.metadata.annotations.clone().unwrap_or_default();
    status.suspended |= annotations.get(SUSPEND_ANNOTATION).map(String::as_str) == Some("true");
    Ok((cm, status))
}

fn table(namespace: &str, name: &str, id: &str, members: usize, s: &ClusterStatus) -> String {
    let none = "-".to_string();
    let rows = [
        ("inventory", format!("ConfigMap {namespace}/{name} ({id})")),
        (
            "source",
            if s.source.is_empty() {
                none.clone()
            } else {
                s.source.clone()
            },
        ),
        (
            "desired",
            match (&s.desired, &s.desired_unstorable) {
                (Some(desired), Some(why)) => {
                    format!("{desired} (cannot be stored in the cache: {why})")
                }
                (Some(desired), None) => desired.clone(),
                (None, _) => none.clone(),
            },
        ),
        ("applied", s.applied.clone().unwrap_or_else(|| none.clone())),
        ("good", s.good.clone().unwrap_or_else(|| none.clone())),
        (
            "result",
            if s.result.is_empty() {
                none.clone()
            } else {
                s.result.clone()
            },
        ),
        (
            "message",
            if s.message.is_empty() {
                none.clone()
            } else {
                s.message.clone()
            },
        ),
        ("objects", members.to_string()),
        (
            "suspended",
            if s.suspended {
                "yes".into()
            } else {
                "no".into()
            },
        ),
        (
            "source down since",
            s.source_unreachable_since
                .clone()
                .unwrap_or_else(|| none.clone()),
        ),
        (
            "recorded",
            if s.time.is_empty() {
                none
            } else {
                s.time.clone()
            },
        ),
    ];
    let mut text: String = rows.iter().map(|(k, v)| format!("{k:<18} {v}\n")).collect();
    if let Some(w) = &s.sync_window {
        let state = if w.open { "open" } else { "closed" };
        let at = w
            .next
            .as_deref()
            .map(|t| format!(", {t}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "{:<18} {state} ({}{at})\n",
            "sync window", w.description
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_every_field_and_dashes_for_missing_ones() {
        let status = ClusterStatus {
            source: "https://git.example/fleet.git".into(),
            applied: Some("a".repeat(40)),
            result: "success".into(),
            message: "applied 3 objects (1 changed, 0 pruned), healthy in 2s".into(),
            ..Default::default()
        };
        let text = table("edge", "hawser", "applyset-x-v1", 3, &status);
        assert!(
            text.contains("inventory          ConfigMap edge/hawser (applyset-x-v1)\n"),
            "{text}"
        );
        assert!(text.contains(&format!("applied            {}\n", "a".repeat(40))));
        assert!(text.contains("good               -\n"));
        assert!(text.contains("suspended          no\n"));
        assert_eq!(text.lines().count(), 11);
    }

    #[test]
    fn table_shows_a_desired_revision_that_cannot_be_stored() {
        let status = ClusterStatus {
            desired: Some("b".repeat(40)),
            desired_unstorable: Some("writing /c/tmp/x: No space left on device".into()),
            applied: Some("a".repeat(40)),
            result: "success".into(),
            ..Default::default()
        };
        let text = table("edge", "hawser", "applyset-x-v1", 3, &status);
        let want = format!(
            "desired            {} (cannot be stored in the cache: writing /c/tmp/x: No space left on device)\n",
            "b".repeat(40)
        );
        assert!(text.contains(&want), "{text}");
    }

    #[test]
    fn table_shows_the_change_window_when_there_is_one() {
        let status = ClusterStatus {
            sync_window: Some(crate::report::cluster::SyncWindowStatus {
                open: false,
                next: Some("2026-01-05T21:00:00Z".into()),
                description: "opens 22:00 CET".into(),
            }),
            ..Default::default()
        };
        let text = table("edge", "hawser", "applyset-x-v1", 0, &status);
        assert!(
            text.ends_with("sync window        closed (opens 22:00 CET, 2026-01-05T21:00:00Z)\n"),
            "{text}"
        );
    }
}
