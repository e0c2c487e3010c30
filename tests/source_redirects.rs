//! Redirects and credentials (issue #21, finding 1), against the real `hawser fetch`:
//! a hostile front server redirects to another port, another host, or from https to
//! http, with the credentials given as `--basic-auth-file`, `--bearer-token-file` or
//! `user:pass@` in the URL. The real `git http-backend` (behind a password) answers
//! everything the front does not lie about, so a leaked credential would make the
//! fetch succeed and be seen by the recorder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hostile;
mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use hostile::{Reply, Request, header, redirect, relay, serve, serve_tls};
use support::{GitServer, GitServerOptions, Repo};

const USER: &str = "git";
const PASSWORD: &str = "s3cret-pw";
const TOKEN: &str = "t0ken-value";

/// What the other origin saw: one entry per request, with its Authorization header.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Hit>>>);

/// A request's path and Authorization header.
type Hit = (String, Option<String>);

impl Seen {
    fn record(&self, req: &Request) {
        let auth = header(req, "authorization");
        self.0.lock().unwrap().push((req.path.clone(), auth));
    }
    fn requests(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn with_credentials(&self) -> Vec<Hit> {
        let seen = self.0.lock().unwrap();
        seen.iter().filter(|(_, a)| a.is_some()).cloned().collect()
    }
}

/// The ways a user hands hawser credentials.
#[derive(Clone, Copy, Debug)]
enum Creds {
    BasicFile,
    BearerFile,
    InUrl,
}

const ALL: [Creds; 3] = [Creds::BasicFile, Creds::BearerFile, Creds::InUrl];

struct World {
    git: GitServer,
    repo: Repo,
    commit: String,
    dir: tempfile::TempDir,
}

fn world() -> World {
    let git = GitServer::start(GitServerOptions::default().basic_auth(USER, PASSWORD));
    let repo = Repo::create(&git);
    repo.write("a.yaml", "kind: ConfigMap\n");
    let commit = repo.commit("first");
    repo.push();
    World {
        git,
        repo,
        commit,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// Runs `hawser fetch` of `url` with `creds` and `extra` flags.
fn fetch(w: &World, url: &str, creds: Creds, extra: &[&str]) -> Output {
    let basic = w.dir.path().join("basic");
    let bearer = w.dir.path().join("bearer");
    fs::write(&basic, format!("{USER}:{PASSWORD}\n")).unwrap();
    fs::write(&bearer, format!("{TOKEN}\n")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let url = match creds {
        Creds::InUrl => url.replacen("://", &format!("://{USER}:{PASSWORD}@"), 1),
        _ => url.to_string(),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawser"));
    cmd.args(["fetch", "--source", &url, "--out"])
        .arg(out.path().join("snap"))
        .args(["--read-timeout", "5", "--connect-timeout", "5"]);
    match creds {
        Creds::BasicFile => cmd.arg("--basic-auth-file").arg(&basic),
        Creds::BearerFile => cmd.arg("--bearer-token-file").arg(&bearer),
        Creds::InUrl => &mut cmd,
    };
    let output = cmd.args(extra).output().unwrap();
    assert!(
        !Path::new(&out.path().join("snap")).exists() || output.status.success(),
        "a refused fetch wrote its output"
    );
    output
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_refused(o: &Output, want: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    // Log lines (JSON) may precede the error: the insecure-bundle warning.
    let errors: Vec<_> = err.lines().filter(|l| !l.starts_with('{')).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].starts_with("hawser: "), "{err}");
    assert!(err.contains(want), "{err}");
    for secret in [PASSWORD, TOKEN] {
        assert!(!err.contains(secret), "{err}");
    }
}

/// Another origin that records what it receives and relays it to the real server,
/// so credentials it was given would work.
fn elsewhere(w: &World, seen: &Seen) -> String {
    let (seen, inner) = (seen.clone(), w.git.url());
    serve(move |req| {
        seen.record(req);
        relay(&inner, &req.path, req)
    })
}

/// A front whose `info/refs` answers 302 to `target` + the repository path.
fn redirecting_front(target: String) -> String {
    serve(move |req| redirect(302, &format!("{target}{}", req.path)))
}

#[test]
fn credentials_never_follow_a_redirect_to_another_port() {
    let w = world();
    let seen = Seen::default();
    let other = elsewhere(&w, &seen);
    let front = redirecting_front(other.clone());
    let url = format!("{front}/{}", w.repo.name());
    for creds in ALL {
        let o = fetch(&w, &url, creds, &[]);
        assert_refused(&o, "refused: to another origin");
        assert_eq!(
            seen.requests(),
            0,
            "{creds:?}: the other port was contacted"
        );

        // Allowed to follow: the other origin is asked, without the credentials,
        // so the real server refuses it.
        let o = fetch(&w, &url, creds, &["--follow-redirects", "any-origin"]);
        assert_refused(&o, "http 401");
        assert!(seen.requests() > 0, "{creds:?}");
        assert_eq!(seen.with_credentials(), [], "{creds:?}");
        seen.0.lock().unwrap().clear();
    }
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    let w = world();
    let seen = Seen::default();
    // localhost and 127.0.0.1 are the same socket but different origins: the front
    // records what arrives under the other name.
    let inner = w.git.url();
    let port = Arc::new(Mutex::new(0u16));
    let front = {
        let (seen, port) = (seen.clone(), port.clone());
        serve(move |req| {
            if header(req, "host").is_some_and(|h| h.starts_with("localhost")) {
                seen.record(req);
                return relay(&inner, &req.path, req);
            }
            let port = *port.lock().unwrap();
            redirect(302, &format!("http://localhost:{port}{}", req.path))
        })
    };
    *port.lock().unwrap() = front.rsplit(':').next().unwrap().parse().unwrap();
    let url = format!("{front}/{}", w.repo.name());
    for creds in ALL {
        assert_refused(&fetch(&w, &url, creds, &[]), "refused: to another origin");
        assert_eq!(seen.requests(), 0, "{creds:?}");
        let o = fetch(&w, &url, creds, &["--follow-redirects", "any-origin"]);
        assert_refused(&o, "http 401");
        assert!(seen.requests() > 0, "{creds:?}");
        assert_eq!(seen.with_credentials(), [], "{creds:?}");
        seen.0.lock().unwrap().clear();
    }
}

#[test]
fn https_never_redirects_to_http() {
    let w = world();
    let seen = Seen::default();
    let other = elsewhere(&w, &seen);
    let tls = w.dir.path().join("tls");
    support::run(Command::new("tests/env/make-test-ca").arg(&tls));
    let front = serve_tls(
        &tls.join("server.pem"),
        &tls.join("server-key.pem"),
        move |req| redirect(302, &format!("{other}{}", req.path)),
    );
    let url = format!("{front}/{}", w.repo.name());
    let ca = tls.join("ca.pem");
    for creds in ALL {
        for follow in ["same-origin", "any-origin"] {
            let o = fetch(
                &w,
                &url,
                creds,
                &[
                    "--ca-file",
                    ca.to_str().unwrap(),
                    "--follow-redirects",
                    follow,
                ],
            );
            assert_refused(&o, "refused: from https to http");
            assert_eq!(seen.requests(), 0, "{creds:?} {follow}");
        }
    }
}

#[test]
fn same_origin_redirects_keep_working_with_credentials() {
    let w = world();
    let inner = w.git.url();
    let name = w.repo.name().to_string();
    // The repository "moved" within the front's origin; the front relays the new
    // path to the real server.
    let front = serve(move |req| match req.path.strip_prefix("/old.git") {
        Some(rest) => redirect(301, &format!("/moved/{name}{rest}")),
        None => relay(
            &inner,
            req.path.strip_prefix("/moved").unwrap_or(&req.path),
            req,
        ),
    });
    for creds in ALL {
        if matches!(creds, Creds::BearerFile) {
            continue; // the real server takes basic auth only
        }
        let o = fetch(&w, &format!("{front}/old.git"), creds, &[]);
        assert!(o.status.success(), "{creds:?}: {}", stderr(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains(&w.commit), "{stdout}");
    }
}

#[test]
fn follow_up_requests_are_never_redirected() {
    let w = world();
    let seen = Seen::default();
    let other = elsewhere(&w, &seen);
    let inner = w.git.url();
    // info/refs is real; ls-refs and fetch answer 307 to the other origin.
    let front = serve(move |req| {
        if req.method == "POST" {
            return redirect(307, &format!("{other}{}", req.path));
        }
        relay(&inner, &req.path, req)
    });
    let url = format!("{front}/{}", w.repo.name());
    for creds in ALL {
        let o = fetch(&w, &url, creds, &["--follow-redirects", "any-origin"]);
        if matches!(creds, Creds::BearerFile) {
            assert_refused(&o, "http 401"); // info/refs itself wants basic auth
        } else {
            assert_refused(&o, "refused: follow-up requests are never redirected");
        }
        assert_eq!(seen.requests(), 0, "{creds:?}");
    }
}

#[test]
fn archives_and_bundles_follow_the_same_rule() {
    let w = world();
    let seen = Seen::default();
    let other = {
        let seen = seen.clone();
        serve(move |req: &Request| {
            seen.record(req);
            Reply::Raw(b"HTTP/1.1 404 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec())
        })
    };
    let front = redirecting_front(other);
    for path in ["/state.tar.gz", "/state.bundle"] {
        for creds in ALL {
            let o = fetch(
                &w,
                &format!("{front}{path}"),
                creds,
                &["--insecure-allow-unsigned"],
            );
            assert_refused(&o, "refused: to another origin");
            assert_eq!(seen.requests(), 0, "{path} {creds:?}");
        }
    }
}
