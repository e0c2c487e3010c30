//! Canary-gated promotion flags (`--promote-after`, `--promote-soak`,
//! `--promote-timeout`, and for air-gapped sites `--promote-report` with
//! `--promote-trusted-keys`), validated once into the loop's [`Promote`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::gate::Promotion;
use crate::reconcile::Promote;
use crate::report::evidence::Evidence;
use crate::report::export::SIGN_NAMESPACE;
use crate::report::forge::{ForgeConfig, StatusReader};
use crate::source::bundle::sign::TrustedKeys;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct PromoteArgs {
    /// Apply a new revision only once each of these commit status contexts reports
    /// success on that exact commit (e.g. hawser/canary-1,hawser/canary-2). The
    /// statuses are read with the status reporting settings, or from --promote-report files.
    #[arg(
        long,
        env = "HAWSER_PROMOTE_AFTER",
        value_delimiter = ',',
        value_name = "CONTEXT"
    )]
    pub promote_after: Vec<String>,
    /// How old each canary's success must be before the revision is applied.
    #[arg(long, env = "HAWSER_PROMOTE_SOAK", value_parser = duration, value_name = "DURATION")]
    pub promote_soak: Option<Duration>,
    /// Give a revision up (status failure) when its canaries have not all succeeded
    /// within this long [default: wait until the source moves]
    #[arg(long, env = "HAWSER_PROMOTE_TIMEOUT", value_parser = duration, value_name = "DURATION")]
    pub promote_timeout: Option<Duration>,
    /// Air-gapped sites: read the canaries' statuses from these signed status reports
    /// (the signed exports of `hawser status`, signature FILE.sig) instead of
    /// the forge; read again at every poll.
    #[arg(
        long,
        env = "HAWSER_PROMOTE_REPORT",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub promote_report: Vec<PathBuf>,
    /// allowed_signers file of the keys trusted to sign the --promote-report files
    /// (namespace hawser-status).
    #[arg(long, env = "HAWSER_PROMOTE_TRUSTED_KEYS", value_name = "FILE")]
    pub promote_trusted_keys: Option<PathBuf>,
}

fn duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text).map_err(|e| e.to_string())
}

impl PromoteArgs {
    /// `None` without `--promote-after`. `forge` is what the status flags configured
    /// (the reads use the same provider, URL, repository and token).
    pub fn into_promote(self, forge: Option<&ForgeConfig>) -> anyhow::Result<Option<Promote>> {
        let PromoteArgs {
            promote_after,
            promote_soak,
            promote_timeout,
            promote_report,
            promote_trusted_keys,
        } = self;
        let after: Vec<String> = promote_after
            .iter()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        if after.is_empty() {
            if promote_soak.is_some()
                || promote_timeout.is_some()
                || !promote_report.is_empty()
                || promote_trusted_keys.is_some()
            {
                bail!(
                    "--promote-soak, --promote-timeout and --promote-report need --promote-after"
                );
            }
            return Ok(None);
        }
        for (i, context) in after.iter().enumerate() {
            if after[..i].contains(context) {
                bail!("--promote-after names {context:?} twice");
            }
            if forge.is_some_and(|f| &f.context == context) {
                bail!(
                    "--promote-after {context:?} is this agent's own status context: it would wait for itself"
                );
            }
        }
        if promote_timeout.is_some_and(|t| t.is_zero()) {
            bail!("--promote-timeout must be longer than zero");
        }
        let evidence = match (promote_report.is_empty(), promote_trusted_keys, forge) {
            (false, Some(keys), _) => {
                let trusted = TrustedKeys::load_for(&keys, SIGN_NAMESPACE)
                    .with_context(|| "--promote-trusted-keys".to_string())?;
                Evidence::Reports {
                    files: promote_report,
                    trusted,
                }
            }
            (false, None, _) => bail!(
                "--promote-report needs --promote-trusted-keys: unsigned status reports are not trusted"
            ),
            (true, Some(_), _) => bail!("--promote-trusted-keys needs --promote-report"),
            (true, None, Some(forge)) => Evidence::Forge(StatusReader::new(forge.clone())),
            (true, None, None) => bail!(
                "--promote-after needs the canaries' statuses: the forge (--status-token-file and the other --status-* flags) or --promote-report files"
            ),
        };
        Ok(Some(Promote {
            promotion: Promotion {
                after,
                soak: promote_soak.unwrap_or_default(),
                timeout: promote_timeout,
            },
            evidence: Arc::new(evidence),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::forge::{Provider, Token};

    fn forge() -> ForgeConfig {
        ForgeConfig {
            provider: Provider::Gitea,
            api_url: "http://127.0.0.1:3000".into(),
            repo: "o/r".into(),
            token: Token::new("t"),
            context: "hawser/follower".into(),
            cluster: "follower".into(),
            target_url_template: None,
            source_url: None,
        }
    }

    fn args(after: &[&str]) -> PromoteArgs {
        PromoteArgs {
            promote_after: after.iter().map(|s| s.to_string()).collect(),
            ..PromoteArgs::default()
        }
    }

    fn error(args: PromoteArgs, forge: Option<&ForgeConfig>) -> String {
        args.into_promote(forge).unwrap_err().to_string()
    }

    #[test]
    fn flags_are_checked_once() {
        assert!(args(&[]).into_promote(None).unwrap().is_none());
        let promote = args(&["hawser/canary-1", " hawser/canary-2 "])
            .into_promote(Some(&forge()))
            .unwrap()
            .unwrap();
        assert_eq!(
            promote.promotion.after,
            ["hawser/canary-1", "hawser/canary-2"]
        );
        assert!(matches!(*promote.evidence, Evidence::Forge(_)));
        assert_eq!(
            error(args(&["hawser/a", "hawser/a"]), Some(&forge())),
            "--promote-after names \"hawser/a\" twice"
        );
        assert!(error(args(&["hawser/follower"]), Some(&forge())).contains("wait for itself"));
        assert!(
            error(args(&["hawser/a"]), None)
                .starts_with("--promote-after needs the canaries' statuses")
        );
        let soak_alone = PromoteArgs {
            promote_soak: Some(Duration::from_secs(60)),
            ..PromoteArgs::default()
        };
        assert!(error(soak_alone, None).contains("need --promote-after"));
        let unsigned = PromoteArgs {
            promote_report: vec!["/r.json".into()],
            ..args(&["hawser/a"])
        };
        assert!(error(unsigned, None).contains("needs --promote-trusted-keys"));
    }
}
