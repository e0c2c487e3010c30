//! The render flags `apply`, `diff`, `run` and `render` share: SOPS decryption (and,
//! below, `${var}` substitution). Parsed and checked once, here: a key file that is
//! missing or unreadable is an error at start, not at the first encrypted document.

use std::path::PathBuf;
use std::sync::Arc;

use crate::render::{self, sops};

#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// File of age identities (AGE-SECRET-KEY-1…, as age-keygen writes them) that
    /// decrypt SOPS-encrypted documents and generator files. In a pod, mount it
    /// from a Secret.
    #[arg(long, env = "SOPS_AGE_KEY_FILE", value_name = "FILE")]
    pub sops_age_key_file: Option<PathBuf>,
}

impl RenderArgs {
    /// The render options; `mask` replaces decrypted values by `***` (`render`
    /// without --show-secrets).
    pub fn options(self, mask: bool) -> anyhow::Result<render::Options> {
        let RenderArgs { sops_age_key_file } = self;
        let keys = match sops_age_key_file {
            Some(path) => Some(Arc::new(
                sops::Keys::read(&path).map_err(anyhow::Error::msg)?,
            )),
            None => None,
        };
        Ok(render::Options {
            decryption: sops::Decryption { keys, mask },
        })
    }
}
