//! `hawser run` as a child process, as it runs in a pod: its own cache directory, a
//! scoped kubeconfig, an admin port, logs captured to a file. Killed on drop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct AgentProcess {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    args: Vec<String>,
    kubeconfig: PathBuf,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl AgentProcess {
    /// Starts `hawser run` with `args` (the admin address is added); logs go to `log`.
    pub fn start(args: &[&str], kubeconfig: &Path, log: &Path) -> AgentProcess {
        let mut agent = AgentProcess {
            child: None,
            port: free_port(),
            log: log.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            kubeconfig: kubeconfig.to_path_buf(),
        };
        agent.spawn(&[]);
        agent
    }

    fn spawn(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawser"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HAWSER_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("run")
            .args(&self.args)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(extra)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,hawser=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("hawser run starts"));
    }

    /// Starts it again after a stop or kill, with the same arguments and cache.
    pub fn restart(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "stop or kill the agent first");
        self.spawn(extra);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and how long it took.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        (status.code(), started.elapsed())
    }

    /// Waits for the process to exit by itself (e.g. at a failpoint).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET (or POST) on the admin server: (status, body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((code, body))
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = self.http("GET", "/readyz", &[], b"") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agent not ready within {timeout:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
