//! The README's configuration reference stays in sync with `hawser run --help`: every
//! flag the binary accepts is documented, and no documented flag is gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Command;

fn flags(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2 && w.as_bytes()[2].is_ascii_lowercase())
        .map(str::to_string)
        .collect()
}

#[test]
fn configuration_reference_matches_run_help() {
    let help = Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let mut accepted = flags(&String::from_utf8(help.stdout).unwrap());
    accepted.remove("--help");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Configuration (`hawser run`)")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a configuration section");
    let table: String = section
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| l.split('|').nth(1).unwrap())
        .collect();
    let documented = flags(&table);
    let missing: Vec<_> = accepted.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty(),
        "flags of `hawser run` missing from README: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "README documents flags `hawser run` no longer has: {stale:?}"
    );
    assert!(accepted.len() > 30, "parsed the help: {accepted:?}");
}
