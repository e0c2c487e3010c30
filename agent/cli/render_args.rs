//! The render flags `apply`, `diff`, `run` and `render` share: SOPS decryption and
//! `${var}` substitution. Parsed and checked once, here: a key file that is
//! missing or unreadable is an error at start, not at the first encrypted document.

use std::path::PathBuf;
use std::sync::Arc;

use crate::render::{self, sops, substitute};

#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// File of age identities (AGE-SECRET-KEY-1…, as age-keygen writes them) that
    /// decrypt SOPS-encrypted documents and generator files. In a pod, mount it
    /// from a Secret.
    #[arg(long, env = "SOPS_AGE_KEY_FILE", value_name = "FILE")]
    pub sops_age_key_file: Option<PathBuf>,

    /// A substitution variable, KEY=VALUE, for `${KEY}` in the rendered documents
    /// (Flux's postBuild.substitute); repeatable, wins over --substitute-from.
    #[arg(long = "substitute", env = "HAWSER_SUBSTITUTE", value_name = "KEY=VALUE", value_parser = substitute::parse_pair)]
    pub substitute: Vec<(String, String)>,

    /// ConfigMaps and Secrets in the agent's namespace whose data are substitution
    /// variables, read at every reconcile, later ones winning:
    /// configmap/NAME,secret/NAME (Flux's postBuild.substituteFrom).
    #[arg(long, env = "HAWSER_SUBSTITUTE_FROM", value_name = "KIND/NAME,...")]
    pub substitute_from: Vec<String>,

    /// Refuse a revision using a variable that is not set and has no default.
    #[arg(long, env = "HAWSER_SUBSTITUTE_STRICT")]
    pub substitute_strict: bool,
}

impl RenderArgs {
    /// The render options.
    pub fn options(self) -> anyhow::Result<render::Options> {
        let RenderArgs {
            sops_age_key_file,
            substitute: pairs,
            substitute_from,
            substitute_strict,
        } = self;
        let mut from = Vec::new();
        for text in &substitute_from {
            from.extend(substitute::parse_sources(text).map_err(anyhow::Error::msg)?);
        }
        let keys = match sops_age_key_file {
            Some(path) => Some(Arc::new(
                sops::Keys::read(&path).map_err(anyhow::Error::msg)?,
            )),
            None => None,
        };
        Ok(render::Options {
            decryption: sops::Decryption { keys },
            substitution: substitute::Substitution {
                from,
                inline: pairs.into_iter().collect(),
                strict: substitute_strict,
                ..substitute::Substitution::default()
            },
        })
    }
}
