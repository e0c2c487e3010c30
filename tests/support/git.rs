//! The git CLI as the tests' hands and oracle: `Repo` creates a bare
//! repository on a `GitServer`, keeps a work tree next to it and commits,
//! tags and pushes through the server like a user would.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tempfile::TempDir;

use super::server::GitServer;

/// First author/committer timestamp; each commit or tag advances it by a
/// minute, so ids are reproducible and history is strictly ordered.
const EPOCH: u64 = 1_700_000_000;

static REPO_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A `git` command in `dir`, isolated from the machine: no system or user
/// config, no prompts, a fixed identity, C locale, and none of the `GIT_*`
/// variables a surrounding git (a hook, a rebase) might have exported.
pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CEILING_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_PROTOCOL",
        "GIT_SSL_CAINFO",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .env("GIT_AUTHOR_NAME", "hawser test")
        .env("GIT_AUTHOR_EMAIL", "test@hawser.invalid")
        .env("GIT_COMMITTER_NAME", "hawser test")
        .env("GIT_COMMITTER_EMAIL", "test@hawser.invalid")
        .env("GIT_AUTHOR_DATE", format!("{EPOCH} +0000"))
        .env("GIT_COMMITTER_DATE", format!("{EPOCH} +0000"));
    cmd
}

/// Runs `cmd`, panics with its output unless it succeeds, and returns stdout
/// with trailing whitespace removed.
pub fn run(cmd: &mut Command) -> String {
    let stdout = run_bytes(cmd);
    String::from_utf8_lossy(&stdout).trim_end().to_string()
}

/// Runs `cmd`, panics with its output unless it succeeds, and returns stdout
/// untouched. Stdin is empty unless the caller set one.
pub fn run_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.stdout
}

/// A bare repository on a `GitServer` plus a work tree whose `origin` is the
/// repository's URL on that server. The work tree is removed on drop; the
/// bare repository lives as long as the server's directory.
pub struct Repo {
    name: String,
    url: String,
    bare: PathBuf,
    work: TempDir,
    env: Vec<(String, String)>,
    clock: AtomicU64,
}

impl Repo {
    /// Creates an empty repository with a unique name (`repo-N.git`).
    pub fn create(server: &GitServer) -> Repo {
        let n = REPO_COUNTER.fetch_add(1, Ordering::Relaxed);
        Repo::create_named(server, &format!("repo-{n}.git"))
    }

    /// Creates an empty repository at `name` below the server root; `name`
    /// may contain slashes (`org/app.git`). Default branch: `main`.
    pub fn create_named(server: &GitServer, name: &str) -> Repo {
        let bare = server.root().join(name);
        assert!(!bare.exists(), "repository {bare:?} already exists");
        run(git_command(server.root())
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&bare));
        // The server enables pushes for every repository too; this keeps the
        // repository pushable if it is ever served another way.
        run(git_command(&bare).args(["config", "http.receivepack", "true"]));

        let work = tempfile::Builder::new()
            .prefix("hawser-work-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a work tree dir: {e}"));
        let url = server.repo_url_with_auth(name);
        let repo = Repo {
            name: name.to_string(),
            url,
            bare,
            work,
            env: server.git_env(),
            clock: AtomicU64::new(EPOCH),
        };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo.git(&["remote", "add", "origin", &repo.url]);
        repo
    }

    /// The repository's path below the server root (for `GitServer::repo_url`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL `origin` points to (with credentials when the server wants them).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn bare_path(&self) -> &Path {
        &self.bare
    }

    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// Writes a regular (non-executable) file in the work tree, creating
    /// parent directories.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let full = self.prepare_path(path);
        fs::write(&full, contents).unwrap_or_else(|e| panic!("cannot write {full:?}: {e}"));
        set_mode(&full, 0o644);
    }

    /// Writes an executable file (git mode 100755).
    pub fn write_executable(&self, path: &str, contents: impl AsRef<[u8]>) {
        let full = self.prepare_path(path);
        fs::write(&full, contents).unwrap_or_else(|e| panic!("cannot write {full:?}: {e}"));
        set_mode(&full, 0o755);
    }

    /// Creates a symbolic link (git mode 120000) pointing at `target`.
    pub fn symlink(&self, path: &str, target: &str) {
        let full = self.prepare_path(path);
        std::os::unix::fs::symlink(target, &full)
            .unwrap_or_else(|e| panic!("cannot link {full:?} -> {target}: {e}"));
    }

    /// Removes a file or a directory tree from the work tree.
    pub fn remove(&self, path: &str) {
        let full = self.work.path().join(path);
        let meta =
            fs::symlink_metadata(&full).unwrap_or_else(|e| panic!("cannot remove {full:?}: {e}"));
        let result = if meta.is_dir() {
            fs::remove_dir_all(&full)
        } else {
            fs::remove_file(&full)
        };
        result.unwrap_or_else(|e| panic!("cannot remove {full:?}: {e}"));
    }

    /// Stages everything in the work tree and commits it (empty commits
    /// allowed); returns the new commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    /// Creates a lightweight tag on HEAD.
    pub fn tag(&self, name: &str) {
        self.git(&["tag", name]);
    }

    /// Creates an annotated tag on HEAD; returns the tag object's id.
    pub fn annotated_tag(&self, name: &str, message: &str) -> String {
        self.git(&["tag", "--annotate", "-m", message, name]);
        self.rev_parse(&format!("refs/tags/{name}"))
    }

    /// Pushes all branches and tags to the server over HTTP(S).
    pub fn push(&self) {
        self.git(&[
            "push",
            "--quiet",
            "origin",
            "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*",
        ]);
    }

    /// Like `push`, but overwrites whatever the server has (history rewrites,
    /// moved tags).
    pub fn force_push(&self) {
        self.git(&[
            "push",
            "--quiet",
            "origin",
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ]);
    }

    /// The work tree's HEAD commit id.
    pub fn head(&self) -> String {
        self.rev_parse("HEAD")
    }

    /// `git rev-parse --verify <rev>` in the work tree.
    pub fn rev_parse(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", "--quiet", rev])
    }

    /// `git rev-parse --verify <rev>` in the bare repository on the server:
    /// what a client fetching from the server must see.
    pub fn server_rev_parse(&self, rev: &str) -> String {
        let mut cmd = self.command();
        cmd.current_dir(&self.bare);
        run(cmd.args(["rev-parse", "--verify", "--quiet", rev]))
    }

    /// Runs git with `args` in the work tree; returns trimmed stdout, panics
    /// with stderr on failure. Commits and tags made this way get the next
    /// deterministic timestamp too.
    pub fn git<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        run(self.command().args(args))
    }

    /// A hermetic git command in the work tree (server CA trusted, the next
    /// deterministic timestamp set), for callers that need the raw output.
    pub fn command(&self) -> Command {
        let mut cmd = git_command(self.work.path());
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let now = self.clock.fetch_add(60, Ordering::Relaxed) + 60;
        cmd.env("GIT_AUTHOR_DATE", format!("{now} +0000"))
            .env("GIT_COMMITTER_DATE", format!("{now} +0000"));
        cmd
    }

    /// Extracts `git archive <rev>` into `dest` (created if missing): the
    /// exact tree a fetch of `rev` must produce.
    pub fn archive(&self, rev: &str, dest: &Path) {
        fs::create_dir_all(dest).unwrap_or_else(|e| panic!("cannot create {dest:?}: {e}"));
        let tar = run_bytes(self.command().args(["archive", "--format=tar", rev]));
        let mut child = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(dest)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run tar: {e}"));
        let Some(mut stdin) = child.stdin.take() else {
            panic!("tar's stdin is not piped");
        };
        stdin
            .write_all(&tar)
            .unwrap_or_else(|e| panic!("cannot feed tar: {e}"));
        drop(stdin); // EOF, so tar finishes
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("tar failed: {e}"));
        assert!(
            out.status.success(),
            "tar -x into {dest:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn prepare_path(&self, path: &str) -> PathBuf {
        let full = self.work.path().join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("cannot create {parent:?}: {e}"));
        }
        if fs::symlink_metadata(&full).is_ok() {
            fs::remove_file(&full).unwrap_or_else(|e| panic!("cannot replace {full:?}: {e}"));
        }
        full
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {path:?}: {e}"));
}
