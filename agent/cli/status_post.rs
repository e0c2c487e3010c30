//! Status reports across an air gap. `hawser status --export FILE` writes the commit
//! statuses an air-gapped cluster recorded (signed with `--sign-key`);
//! `hawser status post --file FILE` at a connected site checks the signature and the
//! report, then posts the statuses to the forge under `hawser/<cluster>`, so
//! operators read air-gapped clusters in Git like any other.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};

use super::Exit;
use super::status_args::StatusArgs;
use crate::report::cluster::{ClusterStatus, rfc3339};
use crate::report::export::{self, MAX_REPORT_BYTES, Report, SIGN_NAMESPACE};
use crate::report::forge::Reporter;
use crate::source::bundle::sign::{self, MAX_SIG_BYTES, TrustedKeys};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The report written by `hawser status --export`; its signature is FILE.sig.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// allowed_signers file of the keys trusted to sign status reports (namespace
    /// hawser-status).
    #[arg(long, env = "HAWSER_STATUS_TRUSTED_KEYS", value_name = "FILE")]
    pub trusted_keys: Option<PathBuf>,
    /// Post a report without a valid signature. Anyone who can hand over a file can
    /// then set statuses in the cluster's name.
    #[arg(long)]
    pub insecure_allow_unsigned: bool,
    #[command(flatten)]
    pub status: StatusArgs,
}

/// Writes the report of `status` to `file` (temp file and rename, the signature
/// beside it when `sign_key` is given). Returns what was written.
pub fn export(
    file: &Path,
    cluster_name: Option<String>,
    sign_key: Option<&Path>,
    status: ClusterStatus,
) -> anyhow::Result<Report> {
    let cluster = cluster_name
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .or(status.cluster)
        .context("status --export needs --cluster-name: the agent ran without one")?;
    let report = Report::new(
        &cluster,
        &status.source,
        rfc3339(SystemTime::now()),
        status.outcomes,
    );
    export::validate(&report).with_context(|| format!("exporting {}", file.display()))?;
    let mut bytes = serde_json::to_vec_pretty(&report)?;
    bytes.push(b'\n');
    write_signed(file, &bytes, sign_key).with_context(|| format!("writing {}", file.display()))?;
    Ok(report)
}

/// A sibling temporary file is written, synced and signed, then renamed into place
/// (the signature first), so a reader never sees a half-written report, and a stale
/// signature is removed rather than left to look like tampering.
fn write_signed(file: &Path, bytes: &[u8], sign_key: Option<&Path>) -> anyhow::Result<()> {
    let mut tmp_name = file.as_os_str().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| -> anyhow::Result<Option<PathBuf>> {
        let mut out = fs::File::create(&tmp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        match sign_key {
            Some(key) => Ok(Some(sign::sign_in_namespace(&tmp, key, SIGN_NAMESPACE)?)),
            None => Ok(None),
        }
    })();
    let signed = match written {
        Ok(signed) => signed,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(sign::sig_path(&tmp));
            return Err(e);
        }
    };
    let sig_out = sign::sig_path(file);
    match fs::remove_file(&sig_out) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", sig_out.display()));
        }
        _ => {}
    }
    if let Some(sig) = &signed {
        fs::rename(sig, &sig_out)?;
    }
    fs::rename(&tmp, file)?;
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let Args {
        file,
        trusted_keys,
        insecure_allow_unsigned,
        mut status,
    } = args;
    let bytes = read_bounded(&file, MAX_REPORT_BYTES)
        .with_context(|| format!("reading {}", file.display()))?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        bail!("{}: {}", file.display(), export::ReportError::TooLarge);
    }
    let sig_file = sign::sig_path(&file);
    let sig = match read_bounded(&sig_file, MAX_SIG_BYTES) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", sig_file.display())),
    };
    match (&trusted_keys, sig) {
        (Some(keys), Some(sig)) => {
            let keys = TrustedKeys::load_for(keys, SIGN_NAMESPACE)?;
            let signer = keys.verify(&sig_file, &sig, bytes.as_slice())?;
            tracing::info!(%signer, "status report signature verified");
        }
        (_, None) if !insecure_allow_unsigned => bail!(
            "{} is missing: refusing an unsigned status report (--insecure-allow-unsigned posts it anyway)",
            sig_file.display()
        ),
        (None, Some(_)) if !insecure_allow_unsigned => bail!(
            "status post needs --trusted-keys to check {} (--insecure-allow-unsigned posts it unchecked)",
            sig_file.display()
        ),
        _ => eprintln!(
            "hawser: INSECURE: posting {} without checking its signature (--insecure-allow-unsigned)",
            file.display()
        ),
    }
    let report = export::parse(&bytes).with_context(|| file.display().to_string())?;
    match status.cluster_name.as_deref().map(str::trim) {
        Some(given) if !given.is_empty() && given != report.cluster => bail!(
            "{} is the report of cluster {:?}, not --cluster-name {given:?}",
            file.display(),
            report.cluster
        ),
        _ => status.cluster_name = Some(report.cluster.clone()),
    }
    let config = status.into_config(None)?.context(
        "status post needs --status-provider (or --status-token-file), --status-repo and --status-token-file",
    )?;
    let reporter = Reporter::new(config);
    let (statuses, skipped) = export::to_post(&report.outcomes);
    for (i, commit_status) in statuses.iter().enumerate() {
        reporter.post(commit_status).with_context(|| {
            format!(
                "posting status {} of {} from {} ({} posted before)",
                i + 1,
                statuses.len(),
                file.display(),
                i
            )
        })?;
    }
    println!(
        "{}",
        serde_json::json!({"posted": statuses.len(), "skipped": skipped})
    );
    Ok(Exit::Success)
}

/// Reads at most `limit + 1` bytes: enough to tell that a file is too large.
fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::export::OutcomeRecord;
    use crate::report::forge::CommitState;

    fn status(cluster: Option<&str>) -> ClusterStatus {
        ClusterStatus {
            source: "/var/lib/hawser-inbox".into(),
            cluster: cluster.map(str::to_string),
            outcomes: vec![OutcomeRecord {
                commit: "c".repeat(40),
                state: CommitState::Failure,
                description: "rejected: x".into(),
                time: "2026-11-23T10:00:00Z".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn export_needs_a_cluster_name_and_writes_nothing_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.json");
        let err = export(&file, None, None, status(None)).unwrap_err();
        assert_eq!(
            super::super::one_line(&err),
            "status --export needs --cluster-name: the agent ran without one"
        );
        assert!(!file.exists());
    }

    #[test]
    fn export_writes_a_report_that_parses_and_drops_a_stale_signature() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.json");
        fs::write(sign::sig_path(&file), "stale").unwrap();
        let written = export(&file, None, None, status(Some("site-7"))).unwrap();
        let read = export::parse(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(read, written);
        assert_eq!(read.context, "hawser/site-7");
        assert_eq!(read.source, "/var/lib/hawser-inbox");
        assert!(!sign::sig_path(&file).exists(), "no stale signature");
        // --cluster-name wins over the recorded one.
        let renamed = export(&file, Some("site-8".into()), None, status(Some("site-7"))).unwrap();
        assert_eq!(renamed.cluster, "site-8");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
