//! The real OCI tools for hawser's OCI tests: the `distribution` registry (plain,
//! TLS with the test CA, htpasswd, or behind [`TokenServer`]) and `oras` to push
//! artifacts, both from `tests/env/build-tools` (`HAWSER_TEST_TOOLS`). The registry's
//! own access log is how the tests count requests. Everything stops and is removed
//! on drop.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub mod token;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use token::TokenServer;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-pw";

/// A tool built by `tests/env/build-tools`; panics (never skips) when missing.
pub fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("HAWSER_TEST_TOOLS").expect(
        "HAWSER_TEST_TOOLS is not set: run scripts/test, or export HAWSER_TEST_TOOLS=\"$(tests/env/build-tools)\"",
    );
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.exists(),
        "{} is missing: tests/env/build-tools did not build {name}",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub enum Access {
    Anonymous,
    Htpasswd,
    /// Bearer tokens from this realm, checked against its JWKS.
    Token {
        realm: String,
        jwks: PathBuf,
    },
}

pub struct Registry {
    child: Option<Child>,
    pub dir: TempDir,
    pub port: u16,
    pub tls: bool,
    config: PathBuf,
    log: PathBuf,
}

/// One line of the registry's log for a finished request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub uri: String,
    pub status: u64,
    pub written: u64,
}

impl Registry {
    pub fn start(tls: bool, access: Access) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if tls {
            let ca = dir.path().join("ca");
            run(Command::new(repo_root().join("tests/env/make-test-ca")).arg(&ca));
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.join("server.pem").display(),
                ca.join("server-key.pem").display()
            ));
        }
        match access {
            Access::Anonymous => {}
            Access::Htpasswd => {
                let file = dir.path().join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-nbB", USER, PASSWORD])
                    .output()
                    .expect("htpasswd runs (scripts/install-deps installs apache2-utils)");
                assert!(out.status.success());
                fs::write(&file, out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: hawser-test\n    path: {}\n",
                    file.display()
                ));
            }
            Access::Token { realm, jwks } => {
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: hawser-registry\n    issuer: hawser-test-issuer\n    jwks: {}\n",
                    jwks.display()
                ));
            }
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let mut registry = Registry {
            child: None,
            dir,
            port,
            tls,
            config: config_path,
            log,
        };
        registry.spawn();
        registry
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(tool("registry"))
            .args(["serve", self.config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the registry starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not listen: {}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }

    /// `127.0.0.1:port`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, repo: &str) -> String {
        format!("oci://{}/{repo}", self.host())
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca/ca.pem")
    }

    /// The requests the registry answered, in order, from its access log (Apache
    /// combined format: `"HEAD /v2/… HTTP/1.1" 200 0`, the size being body bytes).
    pub fn requests(&self) -> Vec<Logged> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (_, rest) = line.split_once("] \"")?;
                let (request, rest) = rest.split_once('"')?;
                let mut req = request.split(' ');
                let (method, uri) = (req.next()?, req.next()?);
                let mut nums = rest.split_whitespace();
                let status = nums.next()?.parse().ok()?;
                let written = nums.next()?.parse().unwrap_or(0);
                Some(Logged {
                    method: method.into(),
                    uri: uri.into(),
                    status,
                    written,
                })
            })
            .collect()
    }

    /// Waits until the log holds `n` finished requests (lines can trail responses).
    pub fn wait_requests(&self, n: usize) -> Vec<Logged> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.requests();
            if found.len() >= n || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stored bytes of blob `digest` (`sha256:<hex>`), to corrupt it.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `oras` with the flags this registry needs (TLS CA or plain HTTP; login).
    pub fn oras(&self, cwd: &Path) -> Command {
        let mut cmd = Command::new(tool("oras"));
        cmd.current_dir(cwd);
        cmd.env("HOME", self.dir.path());
        cmd.env("DOCKER_CONFIG", self.dir.path().join("oras-docker"));
        cmd
    }

    /// Pushes `files` (`path:media-type`, relative to `cwd`) to `repo:tag` and
    /// returns the manifest digest oras reports.
    pub fn push(&self, cwd: &Path, target: &str, auth: bool, args: &[&str]) -> String {
        let mut cmd = self.oras(cwd);
        cmd.arg("push");
        self.flags(&mut cmd, auth);
        cmd.arg(format!("{}/{target}", self.host())).args(args);
        let out = run(&mut cmd);
        digest_in(&out).unwrap_or_else(|| panic!("no digest in oras output: {out}"))
    }

    fn flags(&self, cmd: &mut Command, auth: bool) {
        if self.tls {
            cmd.args(["--ca-file", self.ca().to_str().unwrap()]);
        } else {
            cmd.arg("--plain-http");
        }
        if auth {
            cmd.args(["-u", USER, "-p", PASSWORD]);
        }
    }

    /// `oras` subcommand with the registry flags added after `sub`.
    pub fn oras_run(&self, cwd: &Path, sub: &[&str], auth: bool, args: &[&str]) -> String {
        let mut cmd = self.oras(cwd);
        cmd.args(sub);
        self.flags(&mut cmd, auth);
        cmd.args(args);
        run(&mut cmd)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn digest_in(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Digest: "))
        .map(|d| d.trim().to_string())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command, panics with its output on failure, returns stdout + stderr.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

/// A `.tar.gz` of `files` made by the system `tar`, as users make them.
pub fn tar_gz(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let src = dir.join(format!("{name}.src"));
    let _ = fs::remove_dir_all(&src);
    for (path, content) in files {
        let p = src.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    let out = dir.join(name);
    run(Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&src)
        .arg("."));
    out
}

/// A gzipped tar whose one entry is named `name` (e.g. `../escape.yaml`), written
/// header by header: no tool writes such an archive on purpose.
pub fn hostile_tar_gz(path: &Path, name: &str) {
    let body = b"kind: ConfigMap\n";
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", body.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(body);
    tar.resize(512 + 512, 0);
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    fs::write(path, gz.finish().unwrap()).unwrap();
}

/// A cosign-style signature of `digest` pushed to its `sha256-<hex>.sig` tag: the
/// simple-signing payload cosign writes, signed by openssl with the P-256 key
/// `key` (PEM), the base64 signature in the layer annotation cosign uses.
pub fn push_signature(
    registry: &Registry,
    dir: &Path,
    repo: &str,
    digest: &str,
    key: &Path,
    auth: bool,
) {
    let work = dir.join(format!("sig-{}", &digest[7..19]));
    fs::create_dir_all(&work).unwrap();
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{}/{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        registry.host()
    );
    fs::write(work.join("payload.json"), &payload).unwrap();
    let sig = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(work.join("payload.json"))
        .output()
        .unwrap();
    assert!(sig.status.success());
    let b64 = base64(&sig.stdout);
    fs::write(
        work.join("annotations.json"),
        format!(r#"{{"payload.json":{{"dev.cosignproject.cosign/signature":"{b64}"}}}}"#),
    )
    .unwrap();
    let tag = format!("{repo}:sha256-{}.sig", &digest[7..]);
    registry.push(
        &work,
        &tag,
        auth,
        &[
            "payload.json:application/vnd.dev.cosign.simplesigning.v1+json",
            "--annotation-file",
            "annotations.json",
        ],
    );
}

/// A P-256 key pair in PEM (`key.pem`, `pub.pem`), as `cosign generate-key-pair`
/// makes (its private key is encrypted; openssl's is not, which does not matter to
/// a verifier).
pub fn p256_keys(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub"));
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&key));
    run(Command::new("openssl")
        .args(["ec", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public));
    (key, public)
}

pub fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A TCP relay to `127.0.0.1:target` that counts the bytes each way, to measure
/// what a poll costs on the wire.
pub struct CountingProxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicU64>,
    down: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CountingProxy {
    pub fn start(target: u16) -> CountingProxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (u, d) = (Arc::clone(&up), Arc::clone(&down));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let pipe = |mut from: std::net::TcpStream,
                            mut to: std::net::TcpStream,
                            count: Arc<AtomicU64>| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 << 10];
                        while let Ok(n) = std::io::Read::read(&mut from, &mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            count.fetch_add(n as u64, Ordering::SeqCst);
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Arc::clone(&u),
                );
                pipe(server, client, Arc::clone(&d));
            }
        });
        CountingProxy { port, up, down }
    }

    /// Bytes sent to the registry and received from it so far.
    pub fn bytes(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.up.load(Ordering::SeqCst),
            self.down.load(Ordering::SeqCst),
        )
    }
}
