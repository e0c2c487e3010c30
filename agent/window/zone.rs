//! Time zones from the system's tz database (`/usr/share/zoneinfo`, TZif files).
//!
//! The binary embeds no tz data: `jiff` (already linked through `k8s-openapi`)
//! parses the TZif file, including its POSIX rule for instants after the last
//! transition. `UTC` needs no file, so a scratch image without zoneinfo can still use
//! UTC windows; any other zone needs the directory mounted (or `--zoneinfo-dir`).

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;

/// Where zone files are read from.
#[derive(Debug, Clone)]
pub struct Zoneinfo {
    dir: PathBuf,
}

/// The tz database's usual place on Linux.
pub const DEFAULT_DIR: &str = "/usr/share/zoneinfo";

/// Zone files are small (Europe/Berlin is 2.3 KiB); anything bigger is not one.
const MAX_ZONE_BYTES: u64 = 256 * 1024;

impl Default for Zoneinfo {
    fn default() -> Self {
        Zoneinfo::new(DEFAULT_DIR)
    }
}

impl Zoneinfo {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Zoneinfo { dir: dir.into() }
    }

    /// The zone named `name` (an IANA name such as `Europe/Berlin`, or `UTC`).
    /// The error says why, in a few words.
    pub fn load(&self, name: &str) -> Result<TimeZone, String> {
        if name.eq_ignore_ascii_case("UTC") {
            return Ok(TimeZone::UTC);
        }
        check_name(name)?;
        let path = self.dir.join(name);
        let bytes = read_small(&path).map_err(|e| {
            format!(
                "cannot read {} ({e}); the tz database must be installed or mounted there",
                path.display()
            )
        })?;
        TimeZone::tzif(name, &bytes)
            .map_err(|e| format!("{} is not a TZif file: {e}", path.display()))
    }
}

/// IANA names are `Area/Location` made of letters, digits, `_`, `-` and `+`: nothing
/// that could leave the zoneinfo directory.
fn check_name(name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        });
    if fine {
        Ok(())
    } else {
        Err("not an IANA time zone name (like Europe/Berlin or UTC)".into())
    }
}

fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_ZONE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_ZONE_BYTES {
        return Err(std::io::Error::other("larger than any zone file"));
    }
    Ok(bytes)
}
