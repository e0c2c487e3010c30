//! `GitServer`: `tests/env/gitserver.py` run as a child process on loopback,
//! with its own temporary directory for repositories, static files, TLS
//! material and logs.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

use super::git::{git_command, run};
use super::{base64, wait_for};

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How to start a `GitServer`. `Default` is plain HTTP, protocol v2, no auth.
#[derive(Debug, Clone, Default)]
pub struct GitServerOptions {
    /// Require these credentials (`--basic-auth USER:PASS`) on every request.
    pub basic_auth: Option<(String, String)>,
    /// Serve HTTPS with a certificate from a fresh test CA (`tests/env/make-test-ca`).
    pub tls: bool,
    /// Drop the `Git-Protocol` header so the backend only speaks protocol v0.
    pub no_v2: bool,
    /// Serve this directory under `/files/`; default: a fresh empty directory.
    pub files_dir: Option<PathBuf>,
    /// Write the request log here; default: `server.log` in the server's temp dir.
    pub log_path: Option<PathBuf>,
}

impl GitServerOptions {
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.to_string(), password.to_string()));
        self
    }

    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    pub fn no_v2(mut self) -> Self {
        self.no_v2 = true;
        self
    }

    pub fn files_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.files_dir = Some(dir.into());
        self
    }

    pub fn log_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_path = Some(path.into());
        self
    }
}

/// One line of the server's request log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The request target as sent: path and query string.
    pub path: String,
    pub status: u16,
    /// Bytes read from the connection for this request: request line,
    /// headers and body as sent (compressed if the client compressed it).
    pub request_bytes: u64,
    /// Bytes written for this response: status line, headers, body,
    /// including chunked framing. TLS record overhead is not counted.
    pub response_bytes: u64,
}

/// A running test Git server. Killed on drop.
pub struct GitServer {
    options: GitServerOptions,
    dir: TempDir,
    root: PathBuf,
    files: PathBuf,
    log: PathBuf,
    stderr: PathBuf,
    /// `--throttle-file`: written by [`GitServer::throttle`].
    throttle: PathBuf,
    ca: Option<PathBuf>,
    tls_pair: Option<(PathBuf, PathBuf)>,
    port: u16,
    child: Option<Child>,
    /// The server exits when this pipe closes: also when the test process
    /// dies without running `Drop`.
    lifeline: Option<ChildStdin>,
}

impl GitServer {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start(options: GitServerOptions) -> GitServer {
        let dir = tempfile::Builder::new()
            .prefix("hawser-gitserver-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for the git server: {e}"));
        let root = dir.path().join("repos");
        fs::create_dir(&root).unwrap_or_else(|e| panic!("cannot create {root:?}: {e}"));
        let files = match &options.files_dir {
            Some(files) => files.clone(),
            None => {
                let files = dir.path().join("files");
                fs::create_dir(&files).unwrap_or_else(|e| panic!("cannot create {files:?}: {e}"));
                files
            }
        };
        let log = options
            .log_path
            .clone()
            .unwrap_or_else(|| dir.path().join("server.log"));
        let stderr = dir.path().join("server.stderr");
        let throttle = dir.path().join("throttle");
        let (ca, tls_pair) = if options.tls {
            let tls_dir = dir.path().join("tls");
            run(Command::new(env_script("make-test-ca")).arg(&tls_dir));
            (
                Some(tls_dir.join("ca.pem")),
                Some((tls_dir.join("server.pem"), tls_dir.join("server-key.pem"))),
            )
        } else {
            (None, None)
        };
        let mut server = GitServer {
            options,
            dir,
            root,
            files,
            log,
            stderr,
            throttle,
            ca,
            tls_pair,
            port: 0,
            child: None,
            lifeline: None,
        };
        server.spawn();
        server
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        let scheme = if self.options.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// URL of the repository `name` (a path relative to the repository root).
    pub fn repo_url(&self, name: &str) -> String {
        format!("{}/{}", self.url(), name)
    }

    /// `repo_url` with the basic-auth credentials embedded (when auth is on),
    /// for the git CLI.
    pub fn repo_url_with_auth(&self, name: &str) -> String {
        match &self.options.basic_auth {
            Some((user, password)) => {
                let scheme = if self.options.tls { "https" } else { "http" };
                let (user, password) = (percent_encode(user), percent_encode(password));
                format!(
                    "{scheme}://{user}:{password}@127.0.0.1:{}/{name}",
                    self.port
                )
            }
            None => self.repo_url(name),
        }
    }

    /// URL of a static file below `files_dir()`.
    pub fn file_url(&self, relative: &str) -> String {
        format!("{}/files/{}", self.url(), relative)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the bare repositories (`GIT_PROJECT_ROOT`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory served under `/files/`.
    pub fn files_dir(&self) -> &Path {
        &self.files
    }

    /// The test CA certificate (PEM) when the server runs TLS.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The server's stderr so far (git http-backend's complaints land here).
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.options
            .basic_auth
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The `Authorization` header value for the configured credentials.
    pub fn authorization(&self) -> Option<String> {
        self.credentials()
            .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes())))
    }

    /// Rate-limits the server: the next request opens a window of `seconds` in
    /// which every request is answered 429 with `Retry-After` (the seconds left).
    pub fn throttle(&self, seconds: u64) {
        // Written whole, then renamed: the server never reads half a number.
        let tmp = self.throttle.with_extension("tmp");
        fs::write(&tmp, seconds.to_string()).unwrap_or_else(|e| panic!("writing {tmp:?}: {e}"));
        fs::rename(&tmp, &self.throttle).unwrap_or_else(|e| panic!("renaming {tmp:?}: {e}"));
    }

    /// Every request logged so far (the readiness probe is never logged).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let [method, path, status, req, resp] = fields[..] else {
                    panic!("malformed server log line {line:?}");
                };
                let number = |s: &str| -> u64 {
                    s.parse()
                        .unwrap_or_else(|e| panic!("bad number in log line {line:?}: {e}"))
                };
                LoggedRequest {
                    method: method.to_string(),
                    path: path.to_string(),
                    status: u16::try_from(number(status)).unwrap_or(0),
                    request_bytes: number(req),
                    response_bytes: number(resp),
                }
            })
            .collect()
    }

    /// Empties the request log, e.g. before measuring one poll. The server
    /// appends, so it keeps writing from the start of the file.
    pub fn clear_requests(&self) {
        fs::write(&self.log, b"").unwrap_or_else(|e| panic!("cannot truncate {:?}: {e}", self.log));
    }

    /// A ureq agent for talking to this server: trusts the test CA, returns
    /// 4xx/5xx as responses rather than errors, and has a global timeout.
    pub fn http_agent(&self) -> ureq::Agent {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)));
        if let Some(ca) = &self.ca {
            let pem = fs::read(ca).unwrap_or_else(|e| panic!("cannot read {ca:?}: {e}"));
            let cert = ureq::tls::Certificate::from_pem(&pem)
                .unwrap_or_else(|e| panic!("bad test CA {ca:?}: {e}"));
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                    .build(),
            );
        }
        ureq::Agent::new_with_config(config.build())
    }

    /// A hermetic `git` command in `dir` that trusts this server's test CA.
    pub fn git(&self, dir: &Path) -> Command {
        let mut cmd = git_command(dir);
        for (key, value) in self.git_env() {
            cmd.env(key, value);
        }
        cmd
    }

    /// `git clone` of repository `name` through the server into `dest` (which
    /// must not exist); returns the clone's HEAD commit id.
    pub fn clone_repo(&self, name: &str, dest: &Path) -> String {
        let parent = dest
            .parent()
            .unwrap_or_else(|| panic!("{dest:?} has no parent directory"));
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("cannot create {parent:?}: {e}"));
        run(self
            .git(parent)
            .args(["clone", "--quiet", &self.repo_url_with_auth(name)])
            .arg(dest));
        run(self.git(dest).args(["rev-parse", "HEAD"]))
    }

    /// Environment the git CLI needs to talk to this server.
    pub fn git_env(&self) -> Vec<(String, String)> {
        match &self.ca {
            Some(ca) => vec![("GIT_SSL_CAINFO".to_string(), ca.display().to_string())],
            None => Vec::new(),
        }
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server (an outage: connections are refused from now on).
    /// Repositories and files stay on disk for `restart`.
    pub fn stop(&mut self) {
        self.lifeline = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same repositories.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap_or_else(|e| panic!("cannot open {:?}: {e}", self.stderr));
        let mut cmd = Command::new("python3");
        cmd.arg(env_script("gitserver.py"))
            .arg("--root")
            .arg(&self.root)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--files")
            .arg(&self.files)
            .arg("--log")
            .arg(&self.log)
            .arg("--throttle-file")
            .arg(&self.throttle)
            .arg("--exit-with-stdin");
        if let Some((user, password)) = &self.options.basic_auth {
            cmd.arg("--basic-auth").arg(format!("{user}:{password}"));
        }
        if let Some((cert, key)) = &self.tls_pair {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        if self.options.no_v2 {
            cmd.arg("--no-v2");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let Some(stdout) = child.stdout.take() else {
            panic!("the git server's stdout is not piped");
        };

        // Read `PORT=` on a thread so a hung server cannot hang the test;
        // the thread then drains stdout until the server exits.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            for _ in lines {}
        });
        let first = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "git server did not report its port; stderr:\n{}",
                    self.stderr()
                );
            }
        };
        self.port = first
            .strip_prefix("PORT=")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from git server: {first:?}"));
        self.lifeline = child.stdin.take();
        self.child = Some(child);
        self.wait_until_ready();
    }

    fn wait_until_ready(&mut self) {
        let agent = self.http_agent();
        let probe = format!("{}/_health", self.url());
        wait_for("the git server to answer", START_TIMEOUT, || {
            if !self.is_running() {
                panic!("git server exited during start; stderr:\n{}", self.stderr());
            }
            match agent.get(&probe).call() {
                Ok(resp) if resp.status() == 200 => Some(()),
                _ => None,
            }
        });
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        // `dir` (repositories, files, TLS material, logs) is removed after this.
        self.stop();
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for
/// credentials inside a URL.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Path of a script in `tests/env/`.
fn env_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("env")
        .join(name)
}
