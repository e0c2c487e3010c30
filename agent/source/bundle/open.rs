//! Opening one bundle file, in the order that keeps unauthenticated bytes unparsed:
//! its size against the pack limit, the signature over the whole file (when keys are
//! configured), then the header, the pack and the selected commit's tree.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::check::{self, ByteRange, Content};
use super::header::{self, Header};
use super::sign::BundleSigner;
use super::{BundleError, BundleOptions};
use crate::source::FetchLimits;
use crate::source::git::GitError;
use crate::source::git::pack::Pack;
use crate::source::git::refs::RefSpec;

/// A bundle that passed every check but the downgrade check. Kept per inbox file,
/// so it holds what the decisions need and not the (up to 1 MiB) header.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Bundle format version (2 or 3).
    pub version: u8,
    pub prerequisites: usize,
    pub content: Content,
    /// `None` when unsigned bundles are allowed and this one was not checked.
    pub signer: Option<BundleSigner>,
}

/// Checks an open bundle: signature over the whole file first (so nothing
/// unauthenticated is parsed when keys are configured), then header, pack and tree.
/// `sig` is the signature's path and content, when there is one.
pub fn check_bundle(
    file: &mut File,
    sig: Option<(&Path, &[u8])>,
    options: &BundleOptions,
    spec: &RefSpec,
    limits: &FetchLimits,
) -> Result<Checked, BundleError> {
    // Bounded before anything is hashed: a link to a huge file must not stall a poll.
    let len = file
        .metadata()
        .map_err(|e| BundleError::io(Path::new("bundle"), e))?
        .len();
    if len
        > limits
            .max_pack_bytes
            .saturating_add(header::MAX_HEADER as u64)
    {
        return Err(BundleError::Limit {
            limit: "max-pack-bytes",
            max: limits.max_pack_bytes,
        });
    }
    let signer = match (sig, &options.trusted_keys) {
        (Some((path, text)), Some(keys)) => {
            rewind(file, path)?;
            match keys.verify(path, text, BufReader::with_capacity(64 << 10, &mut *file)) {
                Ok(signer) => Some(signer),
                // Refusing it would protect nothing: deleting the .sig gets it accepted.
                Err(e) if options.insecure_allow_unsigned => {
                    tracing::warn!(error = %e, "INSECURE: signature check failed; treating the bundle as unsigned");
                    None
                }
                Err(e) => return Err(e.into()),
            }
        }
        (None, _) if !options.insecure_allow_unsigned => {
            return Err(BundleError::Unsigned {
                sig: PathBuf::from("<bundle>.sig"),
            });
        }
        _ => None,
    };
    let (header, mut pack) = open_pack(file, limits)?;
    let content = check::inspect(&mut pack, &header, spec, limits)?;
    Ok(Checked {
        version: header.version,
        prerequisites: header.prerequisites.len(),
        content,
        signer,
    })
}

/// Parses the header and opens (verifies) the pack that follows it.
pub fn open_pack<'f>(
    file: &'f mut File,
    limits: &FetchLimits,
) -> Result<(Header, Pack<ByteRange<&'f mut File>>), BundleError> {
    let here = Path::new("bundle");
    rewind(file, here)?;
    let len = file.metadata().map_err(|e| BundleError::io(here, e))?.len();
    let header = header::parse_from(&mut BufReader::new(&mut *file))?;
    let pack_len = len.saturating_sub(header.len);
    if pack_len > limits.max_pack_bytes {
        return Err(BundleError::Limit {
            limit: "max-pack-bytes",
            max: limits.max_pack_bytes,
        });
    }
    let window = ByteRange::new(file, header.len, pack_len);
    let pack = Pack::open(window, limits.max_object_bytes).map_err(|e| match e {
        // git writes bundles with `--thin`: deltas may lean on prerequisite objects.
        GitError::MissingObject(base) if !header.prerequisites.is_empty() => {
            BundleError::ThinPack {
                base,
                prerequisites: header.prerequisites.len(),
            }
        }
        e => BundleError::Pack(e),
    })?;
    Ok((header, pack))
}

fn rewind(file: &mut File, path: &Path) -> Result<(), BundleError> {
    file.seek(SeekFrom::Start(0))
        .map(|_| ())
        .map_err(|e| BundleError::io(path, e))
}
