//! Records the git commit and the compiler for `hawser version`.
//! Both are best effort: a build from a source tarball has no git.

use std::process::Command;

fn main() {
    let commit =
        output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=HAWSER_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=HAWSER_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=HAWSER_TARGET={target}");
    // Only watch git's files where they exist: in a worktree `.git` is a file, and a
    // missing path would make cargo rerun this (and relink) on every build.
    println!("cargo:rerun-if-changed=build.rs");
    for path in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_string())
}
