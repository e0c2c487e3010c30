//! Source flags shared by `fetch`, `apply`, `diff` and `run` (`#[command(flatten)]`).
//! Every flag is also readable from its `HAWSER_*` variable (proxies from the usual
//! `HTTPS_PROXY` / `NO_PROXY`). Credential files are read here, once.

use std::path::PathBuf;
use std::time::Duration;

use crate::source::bundle::BundleOptions;
use crate::source::bundle::sign::TrustedKeys;
use crate::source::http::Redirects;
use crate::source::oci::OciOptions;
use crate::source::oci::cosign::CosignKey;
use crate::source::{Auth, FetchLimits, HttpOptions, SourceError, SourceKind, SourceSpec};

/// Where the desired state comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Git repository URL (smart HTTP), tarball URL (.tar.gz, .tgz, .tar), a git
    /// bundle (a local file, an inbox directory, or a URL ending in .bundle), or an
    /// OCI artifact (oci://REGISTRY/REPOSITORY).
    #[arg(long, env = "HAWSER_SOURCE")]
    pub source: String,

    /// Git ref: branch, tag, full ref name, HEAD, or a 40-hex commit id. For OCI: a
    /// tag (HEAD means the URL's tag, else latest) or sha256:DIGEST.
    #[arg(long = "ref", env = "HAWSER_REF", default_value = "HEAD")]
    pub reference: String,

    /// Subdirectory of the repository to use (Git only).
    #[arg(long, env = "HAWSER_PATH")]
    pub path: Option<String>,

    /// Source kind, when the URL does not tell.
    #[arg(long, env = "HAWSER_SOURCE_KIND", value_enum)]
    pub source_kind: Option<KindArg>,

    /// Expected sha256 of the tarball (hex).
    #[arg(long, env = "HAWSER_SHA256")]
    pub sha256: Option<String>,

    /// Verify the tarball against the sha256 published at `<url>.sha256`.
    #[arg(long, env = "HAWSER_SHA256_FROM_URL")]
    pub sha256_from_url: bool,

    /// File holding `user:password` for HTTP basic auth.
    #[arg(
        long,
        env = "HAWSER_BASIC_AUTH_FILE",
        conflicts_with = "bearer_token_file"
    )]
    pub basic_auth_file: Option<PathBuf>,

    /// File holding a bearer token.
    #[arg(long, env = "HAWSER_BEARER_TOKEN_FILE")]
    pub bearer_token_file: Option<PathBuf>,

    /// PEM bundle of CA certificates to trust instead of the built-in roots.
    #[arg(long, env = "HAWSER_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// HTTP(S) proxy URL.
    #[arg(long, env = "HTTPS_PROXY")]
    pub https_proxy: Option<String>,

    /// Comma-separated hosts that bypass the proxy.
    #[arg(long, env = "NO_PROXY")]
    pub no_proxy: Option<String>,

    /// Seconds to wait for a connection.
    #[arg(long, env = "HAWSER_CONNECT_TIMEOUT", default_value_t = 10)]
    pub connect_timeout: u64,

    /// Seconds to wait for any read from the server before giving up.
    #[arg(long, env = "HAWSER_READ_TIMEOUT", default_value_t = 60)]
    pub read_timeout: u64,

    /// Longest a poll or a fetch may take as a whole, redirects and trickling
    /// servers included.
    #[arg(long, env = "HAWSER_FETCH_TIMEOUT", default_value = "5m", value_parser = duration)]
    pub fetch_timeout: Duration,

    /// Which redirects the first request to the source follows: same-origin (scheme,
    /// host and port of --source), any-origin (credentials are still only sent to
    /// --source's origin), or never. Never from https to http.
    #[arg(
        long,
        env = "HAWSER_FOLLOW_REDIRECTS",
        value_enum,
        default_value = "same-origin"
    )]
    pub follow_redirects: Redirects,

    /// Largest download (pack or archive), in bytes.
    #[arg(long, env = "HAWSER_MAX_PACK_BYTES", default_value_t = FetchLimits::default().max_pack_bytes)]
    pub max_pack_bytes: u64,

    /// Largest single object or archive entry, in bytes.
    #[arg(long, env = "HAWSER_MAX_OBJECT_BYTES", default_value_t = FetchLimits::default().max_object_bytes)]
    pub max_object_bytes: u64,

    /// Most files a snapshot may hold.
    #[arg(long, env = "HAWSER_MAX_FILES", default_value_t = FetchLimits::default().max_files)]
    pub max_files: u64,

    /// Most bytes a snapshot may hold.
    #[arg(long, env = "HAWSER_MAX_TOTAL_BYTES", default_value_t = FetchLimits::default().max_total_bytes)]
    pub max_total_bytes: u64,

    /// Largest ref listing a Git server may send on a poll, in bytes.
    #[arg(long, env = "HAWSER_MAX_REF_BYTES", default_value_t = FetchLimits::default().max_ref_bytes)]
    pub max_ref_bytes: u64,

    /// Most refs a Git server may list on a poll.
    #[arg(long, env = "HAWSER_MAX_REFS", default_value_t = FetchLimits::default().max_refs)]
    pub max_refs: u64,

    /// Keys trusted to sign, in OpenSSH `allowed_signers` format: bundles (keys
    /// whose namespaces allow `hawser-bundle`) and, with --verify-commits or
    /// --verify-tags, SSH-signed commits and tags (namespace `git`).
    #[arg(long, env = "HAWSER_TRUSTED_KEYS")]
    pub trusted_keys: Option<PathBuf>,

    /// Apply only commits signed by a trusted key (--trusted-keys for SSH
    /// signatures, --trusted-gpg-keys for OpenPGP ones).
    #[arg(long, env = "HAWSER_VERIFY_COMMITS")]
    pub verify_commits: bool,

    /// When --ref is a tag, apply it only if the annotated tag is signed by a
    /// trusted key.
    #[arg(long, env = "HAWSER_VERIFY_TAGS")]
    pub verify_tags: bool,

    /// OpenPGP public keys trusted to sign commits and tags: one or more
    /// ASCII-armored public key blocks, as gpg's armored export writes them.
    #[arg(long, env = "HAWSER_TRUSTED_GPG_KEYS")]
    pub trusted_gpg_keys: Option<PathBuf>,

    /// Accept bundles that are unsigned or whose signature does not check out against
    /// the trusted keys. Insecure: logged loudly and shown in the status (bundles
    /// only).
    #[arg(long, env = "HAWSER_INSECURE_ALLOW_UNSIGNED")]
    pub insecure_allow_unsigned: bool,

    /// Accept a bundle whose commit is older than the applied one (bundles only).
    #[arg(long, env = "HAWSER_ALLOW_DOWNGRADE")]
    pub allow_downgrade: bool,

    /// Move processed bundles to `processed/` and refused ones to `rejected/` in the
    /// inbox directory; without it the inbox is never modified.
    #[arg(long, env = "HAWSER_INBOX_CONSUME")]
    pub inbox_consume: bool,

    /// Registry (host or host:port) that may be spoken to over plain HTTP when it
    /// does not answer HTTPS; loopback registries always may. Repeatable, or
    /// comma-separated (OCI only).
    #[arg(long, env = "HAWSER_INSECURE_REGISTRY", value_delimiter = ',')]
    pub insecure_registry: Vec<String>,

    /// Docker config.json to take the registry's credentials from, as mounted from a
    /// kubernetes.io/dockerconfigjson Secret (OCI only).
    #[arg(long, env = "HAWSER_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,

    /// Accept an artifact only if a cosign signature for its digest (tag
    /// sha256-<hex>.sig) verifies with this PEM ECDSA P-256 public key, as
    /// `cosign generate-key-pair` writes it. Key-based only: no Rekor, no keyless
    /// identities (OCI only).
    #[arg(long, env = "HAWSER_VERIFY_COSIGN_KEY")]
    pub verify_cosign_key: Option<PathBuf>,

    /// Extract the layer of this media type instead of Flux's content layer or the
    /// only tar layer (OCI only).
    #[arg(long, env = "HAWSER_OCI_LAYER_MEDIA_TYPE")]
    pub oci_layer_media_type: Option<String>,
}

/// Flags for `oci://` sources, as given on the command line.
#[derive(Debug, Clone)]
pub struct OciArgs {
    pub insecure_registry: Vec<String>,
    pub docker_config: Option<PathBuf>,
    pub verify_cosign_key: Option<PathBuf>,
    pub oci_layer_media_type: Option<String>,
}

impl OciArgs {
    fn into_options(self) -> Result<OciOptions, SourceError> {
        let OciArgs {
            insecure_registry,
            docker_config,
            verify_cosign_key,
            oci_layer_media_type,
        } = self;
        let cosign_key = verify_cosign_key
            .map(|path| CosignKey::load(&path).map_err(SourceError::Config))
            .transpose()?;
        Ok(OciOptions {
            insecure_registries: insecure_registry
                .into_iter()
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect(),
            docker_config,
            cosign_key,
            layer_media_type: oci_layer_media_type.filter(|t| !t.is_empty()),
        })
    }

    fn is_set(&self) -> bool {
        !self.insecure_registry.is_empty()
            || self.docker_config.is_some()
            || self.verify_cosign_key.is_some()
            || self.oci_layer_media_type.is_some()
    }
}

/// `--source-kind` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    Git,
    Tarball,
    Bundle,
    Oci,
}

fn duration(text: &str) -> Result<Duration, String> {
    match crate::duration::parse(text) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

impl SourceArgs {
    /// Validates the flags and reads the credential files.
    pub fn into_spec(self) -> Result<SourceSpec, SourceError> {
        let SourceArgs {
            source,
            reference,
            path,
            source_kind,
            sha256,
            sha256_from_url,
            basic_auth_file,
            bearer_token_file,
            ca_file,
            https_proxy,
            no_proxy,
            connect_timeout,
            read_timeout,
            fetch_timeout,
            follow_redirects,
            max_pack_bytes,
            max_object_bytes,
            max_files,
            max_total_bytes,
            max_ref_bytes,
            max_refs,
            trusted_keys,
            verify_commits,
            verify_tags,
            trusted_gpg_keys,
            insecure_allow_unsigned,
            allow_downgrade,
            inbox_consume,
            insecure_registry,
            docker_config,
            verify_cosign_key,
            oci_layer_media_type,
        } = self;
        let oci = OciArgs {
            insecure_registry,
            docker_config,
            verify_cosign_key,
            oci_layer_media_type,
        };
        let kind = match source_kind {
            Some(KindArg::Git) => SourceKind::Git,
            Some(KindArg::Tarball) => SourceKind::Tarball,
            Some(KindArg::Bundle) => SourceKind::Bundle,
            Some(KindArg::Oci) => SourceKind::Oci,
            None => SourceKind::from_url(&source),
        };
        // `--source-kind oci` with a bare `registry/repository` means `oci://` of it.
        let source = match kind {
            SourceKind::Oci if !source.contains("://") => format!("oci://{source}"),
            _ => source,
        };
        if (kind == SourceKind::Oci) != source.starts_with("oci://") {
            return Err(SourceError::Config(format!(
                "--source {}: oci:// URLs are OCI sources, and OCI sources are oci:// URLs",
                crate::source::redact_url(&source)
            )));
        }
        if kind != SourceKind::Oci && oci.is_set() {
            return Err(SourceError::Config(
                "--insecure-registry, --docker-config, --verify-cosign-key and --oci-layer-media-type apply to oci:// sources only".into(),
            ));
        }
        let is_http = source.starts_with("http://") || source.starts_with("https://");
        if !is_http && !matches!(kind, SourceKind::Bundle | SourceKind::Oci) {
            return Err(SourceError::Config(format!(
                "--source must be an http:// or https:// URL, got {}",
                crate::source::redact_url(&source)
            )));
        }
        let sha256 = match sha256 {
            Some(hex) if crate::encoding::is_hex(&hex, 64) => Some(hex.to_ascii_lowercase()),
            Some(_) => {
                return Err(SourceError::Config("--sha256 must be 64 hex digits".into()));
            }
            None => None,
        };
        let auth = match (basic_auth_file, bearer_token_file) {
            (Some(f), _) => Some(Auth::basic_from_file(&f)?),
            (None, Some(f)) => Some(Auth::bearer_from_file(&f)?),
            (None, None) => None,
        };
        let config = |e: &dyn std::fmt::Display| SourceError::Config(e.to_string());
        let verify = crate::verify::Policy {
            commits: verify_commits,
            tags: verify_tags,
            ssh: match &trusted_keys {
                Some(p) if verify_commits || verify_tags => Some(
                    TrustedKeys::load_for(p, crate::verify::GIT_NAMESPACE)
                        .map_err(|e| config(&e))?,
                ),
                _ => None,
            },
            gpg: match &trusted_gpg_keys {
                Some(p) => Some(crate::verify::load_keyring(p).map_err(|e| config(&e))?),
                None => None,
            },
        };
        if verify.enabled() && verify.ssh.is_none() && verify.gpg.is_none() {
            return Err(SourceError::Config(
                "--verify-commits and --verify-tags need --trusted-keys or --trusted-gpg-keys"
                    .into(),
            ));
        }
        if let Some(keys) = &verify.gpg {
            tracing::info!(keys = ?keys.fingerprints(), "trusted gpg keys loaded");
        }
        // The same file may hold git-only keys: bundle keys are required only by bundles.
        let trusted_keys = match trusted_keys {
            Some(path) if kind == SourceKind::Bundle => {
                Some(TrustedKeys::load(&path).map_err(|e| config(&e))?)
            }
            _ => None,
        };
        Ok(SourceSpec {
            url: source,
            kind,
            reference,
            path: path.filter(|p| !p.is_empty()),
            sha256,
            sha256_from_url,
            http: HttpOptions {
                auth,
                ca_file,
                proxy: https_proxy.filter(|p| !p.is_empty()),
                no_proxy,
                connect_timeout: Duration::from_secs(connect_timeout),
                read_timeout: Duration::from_secs(read_timeout),
                fetch_timeout,
                redirects: follow_redirects,
                ..HttpOptions::default()
            },
            limits: FetchLimits {
                max_pack_bytes,
                max_object_bytes,
                max_files,
                max_total_bytes,
                max_ref_bytes,
                max_refs,
            },
            bundle: BundleOptions {
                trusted_keys,
                insecure_allow_unsigned,
                allow_downgrade,
                inbox_consume,
            },
            oci: oci.into_options()?,
            verify,
        })
    }
}
