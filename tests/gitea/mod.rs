//! A real Gitea for tests, built from its Go module by `tests/gitea/build` and named
//! by `HAWSER_TEST_GITEA` (the binary's path).
//!
//! [`start`] runs it on loopback with SQLite in a temporary directory, creates an
//! admin user [`USER`] and an access token through Gitea's own CLI, and waits until
//! the API answers. The process is killed (by its own pid) and the directory removed
//! on drop. Shared by `forge_gitea.rs` and `agent_gitea.rs` through `#[path]`.
//!
//! Without `HAWSER_TEST_GITEA` the tests that need it fail and say how to build one:
//! a forge test that passes without a forge would prove nothing.

// Shared by several test crates, each using part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The admin user every test Gitea has.
pub const USER: &str = "hawser";
pub const PASSWORD: &str = "hawser-Passw0rd";

/// The Gitea binary named by `HAWSER_TEST_GITEA`; panics saying how to build one.
pub fn bin() -> PathBuf {
    let Some(path) = std::env::var_os("HAWSER_TEST_GITEA").map(PathBuf::from) else {
        panic!(
            "HAWSER_TEST_GITEA is not set: this test needs a real Gitea. Build it with \
             `tests/gitea/build` (cached after the first build) and run with \
             HAWSER_TEST_GITEA=\"$(tests/gitea/build)\""
        );
    };
    assert!(
        path.is_file(),
        "HAWSER_TEST_GITEA={} is not a file; rebuild it with `tests/gitea/build`",
        path.display()
    );
    path
}

/// A running Gitea; stopped (by its own pid) and cleaned up on drop.
pub struct Gitea {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    /// An access token of [`USER`] with `write:repository,write:user`.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Gitea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gitea_command(bin: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .arg("--config")
        .arg(dir.join("app.ini"))
        .arg("--work-path")
        .arg(dir.join("work"))
        // Test machines run as root; Gitea refuses that unless told this is intended.
        .env("GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT", "true")
        .env("HOME", dir);
    command
}

fn run(mut command: Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Gitea logs its warning about running as root on stdout too: the value is the
/// last non-empty line.
fn last_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap()
        .to_string()
}

/// Starts Gitea with a fresh database, user and token; returns once its API answers.
pub fn start(bin: &Path) -> Gitea {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    // Gitea built without bindata reads templates and options from its source tree,
    // which tests/gitea/build keeps next to the binary.
    let static_root = bin
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("src"))
        .unwrap();
    let work = dir.path().join("work");
    let secret = |kind: &str| {
        let mut command = Command::new(bin);
        command
            .args(["generate", "secret", kind])
            .env("GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT", "true");
        last_line(&run(command))
    };
    let ini = format!(
        "APP_NAME = hawser-test\nRUN_MODE = prod\nWORK_PATH = {work}\n\
         [database]\nDB_TYPE = sqlite3\nPATH = {work}/gitea.db\n\
         [repository]\nROOT = {work}/repos\n\
         [server]\nHTTP_ADDR = 127.0.0.1\nHTTP_PORT = {port}\nROOT_URL = {url}/\nDISABLE_SSH = true\n\
         STATIC_ROOT_PATH = {static_root}\nAPP_DATA_PATH = {work}/data\nOFFLINE_MODE = true\n\
         [security]\nINSTALL_LOCK = true\nSECRET_KEY = {secret_key}\nINTERNAL_TOKEN = {internal}\n\
         [oauth2]\nJWT_SECRET = {jwt}\n\
         [service]\nDISABLE_REGISTRATION = true\n\
         [log]\nMODE = console\nLEVEL = Warn\n\
         [cron]\nENABLED = false\n",
        work = work.display(),
        static_root = static_root.display(),
        secret_key = secret("SECRET_KEY"),
        internal = secret("INTERNAL_TOKEN"),
        jwt = secret("JWT_SECRET"),
    );
    std::fs::write(dir.path().join("app.ini"), ini).unwrap();
    let mut migrate = gitea_command(bin, dir.path());
    migrate.arg("migrate");
    run(migrate);
    let mut user = gitea_command(bin, dir.path());
    user.args([
        "admin",
        "user",
        "create",
        "--username",
        USER,
        "--password",
        PASSWORD,
    ]);
    user.args([
        "--email",
        "hawser@example.com",
        "--admin",
        "--must-change-password=false",
    ]);
    run(user);
    let mut token = gitea_command(bin, dir.path());
    token.args([
        "admin",
        "user",
        "generate-access-token",
        "--username",
        USER,
        "--token-name",
        "status",
    ]);
    token.args(["--scopes", "write:repository,write:user", "--raw"]);
    let token = last_line(&run(token));

    let mut web = gitea_command(bin, dir.path());
    web.arg("web").stdout(Stdio::null()).stderr(Stdio::null());
    let child = web.spawn().unwrap();
    let gitea = Gitea {
        child,
        url,
        token,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while ureq::get(format!("{}/api/v1/version", gitea.url))
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "gitea did not answer within 90s");
        std::thread::sleep(Duration::from_millis(250));
    }
    gitea
}

impl Gitea {
    /// GET on the API as [`USER`]; panics unless it answers 2xx with JSON.
    pub fn get(&self, path: &str) -> Value {
        let request = ureq::get(format!("{}/api/v1{path}", self.url));
        let mut response = request
            .header("Authorization", format!("token {}", self.token))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// POST JSON on the API as [`USER`]; panics unless it answers 2xx with JSON.
    pub fn post(&self, path: &str, body: Value) -> Value {
        let request = ureq::post(format!("{}/api/v1{path}", self.url))
            .header("Authorization", format!("token {}", self.token))
            .header("Content-Type", "application/json");
        let mut response = request
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// The clone URL of `USER/name`, without credentials.
    pub fn repo_url(&self, name: &str) -> String {
        format!("{}/{USER}/{name}.git", self.url)
    }

    /// The clone URL of `USER/name` with the token as the password, for pushes.
    pub fn repo_url_with_token(&self, name: &str) -> String {
        format!(
            "http://{USER}:{}@{}/{USER}/{name}.git",
            self.token,
            self.url.trim_start_matches("http://")
        )
    }

    /// Every status posted on `sha` in `USER/repo`, including the ones later
    /// superseded in the same context, in the order they were posted (by their
    /// database id: Gitea's `sort` names are easy to misread, `leastindex` sorts by
    /// index descending).
    pub fn statuses(&self, repo: &str, sha: &str) -> Vec<Value> {
        let list = self.get(&format!("/repos/{USER}/{repo}/statuses/{sha}?limit=50"));
        let mut list = list.as_array().unwrap().clone();
        list.sort_by_key(|s| s["id"].as_i64().unwrap());
        list
    }

    /// The combined status of `sha`: the latest status per context and their state.
    pub fn combined(&self, repo: &str, sha: &str) -> Value {
        self.get(&format!("/repos/{USER}/{repo}/commits/{sha}/status"))
    }
}
