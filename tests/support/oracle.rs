//! The oracle tools `tests/env/build-tools` builds (kustomize, sops, age-keygen,
//! registry, oras, kubectl), found through `HAWSER_TEST_TOOLS`. A test that needs
//! one panics when it is missing; it never skips.
//!
//! Also usable alone: `#[path = "support/oracle.rs"] mod oracle;`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of the oracle tool `name`.
pub fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("HAWSER_TEST_TOOLS").unwrap_or_else(|| {
        panic!(
            "HAWSER_TEST_TOOLS is not set: run scripts/test, or export HAWSER_TEST_TOOLS=\"$(tests/env/build-tools)\""
        )
    });
    let path = Path::new(&dir).join(name);
    assert!(
        path.is_file(),
        "{} is missing: tests/env/build-tools did not build {name}",
        path.display()
    );
    path
}

/// Writes a new age identity to `file` with the real age-keygen.
pub fn age_keygen(file: &Path) {
    let out = Command::new(tool("age-keygen"))
        .arg("-o")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running age-keygen: {e}"));
    assert!(out.status.success(), "age-keygen -o: {out:?}");
}

/// The recipient (public key) of the age identity in `file`, by age-keygen -y.
pub fn age_recipient(file: &Path) -> String {
    let out = Command::new(tool("age-keygen"))
        .arg("-y")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running age-keygen: {e}"));
    assert!(out.status.success(), "age-keygen -y: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
