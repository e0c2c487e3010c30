//! A bundle published over HTTP(S), its signature at `<url>.sig`. A poll is a
//! conditional GET of the bundle (`If-None-Match` / `If-Modified-Since`), so an
//! unchanged bundle costs a 304; a changed one is spooled to an unlinked temporary
//! file, bounded by the pack limit, and checked with its signature.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{BundleError, BundleSource, Checked, check_bundle, sign};
use crate::source::SourceError;
use crate::source::http::Client;

/// The last bundle downloaded, with the validators to ask whether it changed.
#[derive(Default)]
pub struct RemoteState {
    etag: Option<String>,
    last_modified: Option<String>,
    kept: Option<(File, Checked)>,
}

impl RemoteState {
    /// Downloads (or revalidates) the bundle and checks it.
    pub fn fetch(
        &mut self,
        client: &Client,
        url: &str,
        shown: &str,
        src: &BundleSource,
    ) -> Result<(String, File, Checked), SourceError> {
        let mut headers = vec![("Accept-Encoding", "identity")];
        let (etag, modified) = (self.etag.clone(), self.last_modified.clone());
        if self.kept.is_some() {
            if let Some(etag) = &etag {
                headers.push(("If-None-Match", etag));
            }
            if let Some(modified) = &modified {
                headers.push(("If-Modified-Since", modified));
            }
        }
        let resp = client.get(url, &headers)?;
        if let (304, Some((file, checked))) = (resp.status().as_u16(), &self.kept) {
            let file = file
                .try_clone()
                .map_err(|e| src.err(Path::new(shown), BundleError::io(Path::new(shown), e)))?;
            return Ok((shown.to_string(), file, checked.clone()));
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (etag, modified) = (header("etag"), header("last-modified"));
        let mut body = client.body(url, resp);
        let mut file = crate::source::tarball::temp_file()?;
        let limit = src
            .limits
            .max_pack_bytes
            .saturating_add(super::header::MAX_HEADER as u64);
        let n = std::io::copy(&mut (&mut body).take(limit + 1), &mut file)
            .map_err(|e| body.error(e))?;
        if n > limit {
            return Err(SourceError::Limit {
                limit: "max-pack-bytes",
                max: src.limits.max_pack_bytes,
            });
        }
        let sig = self.signature(client, url)?;
        let sig_shown = format!("{shown}.sig");
        let sig_ref = sig
            .as_ref()
            .map(|text| (Path::new(sig_shown.as_str()), text.as_slice()));
        if sig_ref.is_none() && !src.options.insecure_allow_unsigned {
            return Err(src.err(
                Path::new(shown),
                BundleError::Unsigned {
                    sig: sig_shown.clone().into(),
                },
            ));
        }
        let checked = check_bundle(
            &mut file,
            sig_ref,
            &src.options,
            &src.reference,
            &src.limits,
        )
        .map_err(|e| src.err(Path::new(shown), e))?;
        let kept = file
            .try_clone()
            .map_err(|e| src.err(Path::new(shown), BundleError::io(Path::new(shown), e)))?;
        *self = RemoteState {
            etag,
            last_modified: modified,
            kept: Some((kept, checked.clone())),
        };
        Ok((shown.to_string(), file, checked))
    }

    /// `<url>.sig`, or `None` when the server has none (404).
    fn signature(&self, client: &Client, url: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let sig_url = match url.split_once('?') {
            Some((path, query)) => format!("{path}.sig?{query}"),
            None => format!("{url}.sig"),
        };
        let resp = match client.get(&sig_url, &[]) {
            Ok(resp) => resp,
            Err(SourceError::Http { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut body = client.body(&sig_url, resp);
        let mut text = Vec::new();
        (&mut body)
            .take(sign::MAX_SIG_BYTES)
            .read_to_end(&mut text)
            .map_err(|e| body.error(e))?;
        Ok(Some(text))
    }
}
