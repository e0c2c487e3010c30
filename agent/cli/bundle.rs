//! `hawser bundle create` and `hawser bundle verify`: the two ends of the air gap.
//! `create` fetches a ref with hawser's Git client and writes a standard git bundle
//! (signed with `ssh-keygen -Y sign` when a key is given); `verify` checks a bundle
//! exactly as the agent would and prints one line of JSON: the reference, commit,
//! signer and file count.

use std::fs::File;
use std::path::PathBuf;

use super::Exit;
use super::source_args::SourceArgs;
use crate::source::bundle::sign::TrustedKeys;
use crate::source::bundle::{BundleOptions, check_bundle, from_tree, read_sig, write};
use crate::source::git::refs::RefSpec;
use crate::source::{FetchLimits, SourceError, SourceKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Fetch a ref from a Git source, or an OCI artifact, and write it as a git bundle.
    Create(Box<CreateArgs>),
    /// Check a bundle's format, objects and signature as the agent would.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    #[command(flatten)]
    source: SourceArgs,

    /// Bundle file to write (replaced atomically).
    #[arg(long)]
    out: PathBuf,

    /// Sign the bundle with this OpenSSH key (`ssh-keygen -Y sign`, namespace
    /// `hawser-bundle`); writes `<out>.sig`. A public key works when its private
    /// half is in ssh-agent.
    #[arg(long)]
    sign_key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The bundle; its signature is read from `<FILE>.sig`.
    file: PathBuf,

    /// Keys trusted to sign bundles (OpenSSH `allowed_signers`).
    #[arg(
        long,
        env = "HAWSER_TRUSTED_KEYS",
        required_unless_present = "insecure_allow_unsigned"
    )]
    trusted_keys: Option<PathBuf>,

    /// Accept a bundle that is unsigned or whose signature does not check out (the
    /// output then names no signer).
    #[arg(long, env = "HAWSER_INSECURE_ALLOW_UNSIGNED")]
    insecure_allow_unsigned: bool,

    /// The reference to check: branch, tag, full ref name, HEAD or a commit id.
    #[arg(long = "ref", default_value = "HEAD")]
    reference: String,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        Command::Create(args) => create(*args),
        Command::Verify(args) => verify(args),
    }
}

fn create(args: CreateArgs) -> anyhow::Result<Exit> {
    let CreateArgs {
        source,
        out,
        sign_key,
    } = args;
    let mut spec = source.into_spec()?;
    if spec.kind == SourceKind::Oci {
        let created = from_tree::create_from_oci(spec, &out, sign_key.as_deref())?;
        println!("{}", serde_json::to_string(&created)?);
        return Ok(Exit::Success);
    }
    if spec.kind == SourceKind::Bundle
        && !(spec.url.starts_with("http://") || spec.url.starts_with("https://"))
    {
        return Err(SourceError::Config("--source must be a Git repository URL".into()).into());
    }
    spec.kind = SourceKind::Git;
    let created = write::create(spec, &out, sign_key.as_deref())?;
    println!("{}", serde_json::to_string(&created)?);
    Ok(Exit::Success)
}

fn verify(args: VerifyArgs) -> anyhow::Result<Exit> {
    let VerifyArgs {
        file,
        trusted_keys,
        insecure_allow_unsigned,
        reference,
    } = args;
    let options = BundleOptions {
        trusted_keys: trusted_keys.as_deref().map(TrustedKeys::load).transpose()?,
        insecure_allow_unsigned,
        allow_downgrade: false,
        inbox_consume: false,
    };
    let spec = RefSpec::parse(&reference)?;
    let located = |source| SourceError::Bundle {
        location: file.display().to_string(),
        source,
    };
    let sig = read_sig(&file).map_err(located)?;
    if sig.is_none() && !insecure_allow_unsigned {
        return Err(located(crate::source::bundle::BundleError::Unsigned {
            sig: crate::source::bundle::sign::sig_path(&file),
        })
        .into());
    }
    let mut bundle = File::open(&file).map_err(|e| SourceError::ReadFile {
        what: "bundle",
        path: file.clone(),
        source: e,
    })?;
    let sig = sig.as_ref().map(|(p, t)| (p.as_path(), t.as_slice()));
    let checked = check_bundle(&mut bundle, sig, &options, &spec, &FetchLimits::default())
        .map_err(located)?;
    let content = &checked.content;
    let line = serde_json::json!({
        "ref": content.reference,
        "commit": content.commit.to_string(),
        "signer": checked.signer.as_ref().map(|s| &s.principals),
        "fingerprint": checked.signer.as_ref().map(|s| &s.fingerprint),
        "files": content.files,
        "prerequisites": checked.prerequisites,
        "version": checked.version,
    });
    println!("{line}");
    Ok(Exit::Success)
}
