//! Commit statuses against a real Gitea, built from its Go module by
//! `tests/gitea/build` and named by `HAWSER_TEST_GITEA` (the binary).
//!
//! Gitea is the one forge that can run here. The test starts it on loopback with
//! SQLite, creates a user, a token and a repository through Gitea's own CLI and API,
//! posts pending → success → failure with the reporter and reads them back through
//! the API, then checks the refusals a real server gives (bad token, unknown repo).
//! Without `HAWSER_TEST_GITEA` the test says so and passes: the recording-server
//! tests in `forge_status.rs` cover every provider regardless.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hawser::report::forge::{
    CommitStatus, ForgeConfig, ForgeError, Outcome, Provider, Reporter, State, Token,
};
use serde_json::{Value, json};

const USER: &str = "hawser";

// Helpers below carry #[cfg(test)] so clippy treats their unwraps as test code.

/// A running Gitea; stopped (by its own pid) and cleaned up on drop.
struct Gitea {
    child: Child,
    url: String,
    token: String,
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

#[cfg(test)]
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

#[cfg(test)]
fn start(bin: &Path) -> Gitea {
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
        run(command)
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap()
            .to_string()
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
        "hawser-Passw0rd",
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
    // Gitea logs its warning about running as root on stdout too: the token is the
    // last line.
    let token = run(token)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap()
        .to_string();

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

#[cfg(test)]
impl Gitea {
    fn get(&self, path: &str) -> Value {
        let request = ureq::get(format!("{}/api/v1{path}", self.url));
        let mut response = request
            .header("Authorization", format!("token {}", self.token))
            .call()
            .unwrap();
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let request = ureq::post(format!("{}/api/v1{path}", self.url))
            .header("Authorization", format!("token {}", self.token))
            .header("Content-Type", "application/json");
        let mut response = request.send(body.to_string()).unwrap();
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn config(&self, repo: &str, token: &str) -> ForgeConfig {
        ForgeConfig {
            provider: Provider::Gitea,
            api_url: self.url.clone(),
            repo: repo.to_string(),
            token: Token::new(token),
            context: "hawser/prod-eu".into(),
            cluster: "prod-eu".into(),
            target_url_template: Some("https://dash.example/{cluster}/{revision}".into()),
            source_url: None,
        }
    }
}

fn gitea_bin() -> Option<PathBuf> {
    std::env::var_os("HAWSER_TEST_GITEA")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
}

#[test]
fn statuses_on_a_real_gitea() {
    let Some(bin) = gitea_bin() else {
        eprintln!("skipped: HAWSER_TEST_GITEA is not set (build one with tests/gitea/build)");
        return;
    };
    let gitea = start(&bin);
    let repo = gitea.post("/user/repos", json!({ "name": "fleet", "auto_init": true }));
    let branch = repo["default_branch"].as_str().unwrap().to_string();
    let head = gitea.get(&format!("/repos/{USER}/fleet/branches/{branch}"));
    let sha = head["commit"]["id"].as_str().unwrap().to_string();

    let reporter = Reporter::new(gitea.config(&format!("{USER}/fleet"), &gitea.token));
    let outcomes = [
        (Outcome::Applying { objects: 42 }, "pending"),
        (
            Outcome::Healthy {
                objects: 42,
                changed: 3,
                pruned: 1,
                healthy_after: Duration::from_secs(14),
            },
            "success",
        ),
        (
            Outcome::Rejected {
                reason: "Deployment shop/api: namespace shop is outside the scope".into(),
            },
            "failure",
        ),
    ];
    for (outcome, want) in outcomes {
        let status = CommitStatus::for_outcome(&sha, &outcome);
        reporter.post(&status).unwrap();
        let combined = gitea.get(&format!("/repos/{USER}/fleet/commits/{sha}/status"));
        assert_eq!(combined["state"], want, "{combined:#}");
        let latest = &combined["statuses"][0];
        assert_eq!(latest["context"], "hawser/prod-eu");
        assert_eq!(latest["description"], outcome.description());
        assert_eq!(
            latest["target_url"],
            format!("https://dash.example/prod-eu/{sha}")
        );
        assert_eq!(
            combined["statuses"].as_array().unwrap().len(),
            1,
            "one status per context"
        );
    }

    let bad_token = Reporter::new(gitea.config(&format!("{USER}/fleet"), "not-a-real-token"));
    let err = bad_token
        .post(&CommitStatus::new(&sha, State::Success, "applied"))
        .unwrap_err();
    assert!(
        matches!(err, ForgeError::Rejected { status: 401, .. }),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("; check --status-token-file"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-a-real-token"), "{err}");

    let missing = Reporter::new(gitea.config(&format!("{USER}/missing"), &gitea.token));
    let err = missing
        .post(&CommitStatus::new(&sha, State::Success, "applied"))
        .unwrap_err();
    assert!(
        matches!(err, ForgeError::Rejected { status: 404, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains(&gitea.token), "{err}");
}
