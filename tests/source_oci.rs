//! The OCI source against the real `distribution` registry, with artifacts pushed by
//! the real `oras`: Flux's artifact format over TLS with htpasswd, a plain `oras push`
//! behind a token server with a Docker config.json, a layer chosen by media type,
//! what a poll costs (from the registry's own log), pinned digests, and every
//! refusal leaving nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "oci_support/mod.rs"]
mod oci_support;
mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use hawser::source::oci::OciOptions;
use hawser::source::oci::cosign::CosignKey;
use hawser::source::{
    Auth, FetchLimits, HttpOptions, Revision, Source, SourceError, SourceKind, SourceSpec,
};
use oci_support::{Access, PASSWORD, Registry, TokenServer, USER};

fn spec(url: &str, reference: &str, http: HttpOptions, oci: OciOptions) -> SourceSpec {
    SourceSpec {
        url: url.to_string(),
        kind: SourceKind::from_url(url),
        reference: reference.into(),
        path: None,
        sha256: None,
        sha256_from_url: false,
        http,
        limits: FetchLimits::default(),
        bundle: Default::default(),
        oci,
        verify: Default::default(),
    }
}

fn basic() -> Option<Auth> {
    Some(Auth::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    })
}

const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const COMMIT: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Pushes `files` as a Flux artifact (`flux push artifact`'s media types and
/// annotations) to `repo:tag`.
fn push_flux(
    registry: &Registry,
    dir: &Path,
    target: &str,
    auth: bool,
    files: &[(&str, &str)],
) -> String {
    let name = format!("{}.tar.gz", target.replace([':', '/'], "-"));
    oci_support::tar_gz(dir, &name, files);
    fs::write(dir.join("flux-config.json"), "{}").unwrap();
    registry.push(
        dir,
        target,
        auth,
        &[
            "--config",
            &format!("flux-config.json:{FLUX_CONFIG}"),
            &format!("{name}:{FLUX_CONTENT}"),
            "--annotation",
            &format!("org.opencontainers.image.revision=main@sha1:{COMMIT}"),
            "--annotation",
            "org.opencontainers.image.source=https://git.example/org/app",
        ],
    )
}

fn fetch(source: &Source, out: &Path) -> Result<Revision, SourceError> {
    let revision = source.resolve()?;
    source.fetch_to(&revision, out)?;
    Ok(revision)
}

#[test]
fn a_flux_artifact_over_tls_with_htpasswd_is_fetched_and_polled_with_one_head() {
    let registry = Registry::start(true, Access::Htpasswd);
    let dir = tempfile::tempdir().unwrap();
    let digest = push_flux(
        &registry,
        dir.path(),
        "org/app:v1",
        true,
        &[("app/cm.yaml", "kind: ConfigMap\n"), ("README.md", "hi\n")],
    );
    // Without the CA the certificate is refused, and plain http is no way around it.
    let untrusted = HttpOptions {
        auth: basic(),
        ..HttpOptions::default()
    };
    let source = Source::new(spec(
        &registry.url("org/app"),
        "v1",
        untrusted,
        OciOptions::default(),
    ));
    let err = source.unwrap().resolve().unwrap_err();
    assert!(matches!(err, SourceError::Tls { .. }), "{err}");

    let http = HttpOptions {
        auth: basic(),
        ca_file: Some(registry.ca()),
        ..HttpOptions::default()
    };
    let source = Source::new(spec(
        &registry.url("org/app"),
        "v1",
        http,
        OciOptions::default(),
    ))
    .unwrap();
    let out = dir.path().join("out");
    let revision = fetch(&source, &out).unwrap();
    assert_eq!(revision.as_str(), format!("v1@{digest}"));
    assert_eq!(
        fs::read_to_string(out.join("app/cm.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );
    assert_eq!(fs::read_to_string(out.join("README.md")).unwrap(), "hi\n");
    assert_eq!(source.commit_of(&revision).as_deref(), Some(COMMIT));

    // An unchanged tag: exactly one HEAD on the manifest, with no body.
    let before = registry.wait_requests(usize::MAX).len();
    assert_eq!(source.resolve().unwrap(), revision);
    let log = registry.wait_requests(before + 1);
    let poll = &log[before..];
    assert_eq!(poll.len(), 1, "{poll:?}");
    assert_eq!(
        (
            poll[0].method.as_str(),
            poll[0].uri.as_str(),
            poll[0].status
        ),
        ("HEAD", "/v2/org/app/manifests/v1", 200)
    );
    assert_eq!(poll[0].written, 0);

    // A re-pushed tag is a new revision with the new files.
    let moved = push_flux(
        &registry,
        dir.path(),
        "org/app:v1",
        true,
        &[("app/cm.yaml", "kind: ConfigMap\ndata: {}\n")],
    );
    assert_ne!(moved, digest);
    let revision = fetch(&source, &out).unwrap();
    assert_eq!(revision.as_str(), format!("v1@{moved}"));
    assert!(!out.join("README.md").exists());
}

#[test]
fn oras_pushes_behind_a_token_server_are_read_with_docker_config_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenServer::start(dir.path(), USER, PASSWORD, 300);
    let registry = Registry::start(
        false,
        Access::Token {
            realm: tokens.realm(),
            jwks: tokens.jwks.clone(),
        },
    );
    // A directory pushed as oras does it: one tar+gzip layer.
    let content = dir.path().join("manifests");
    fs::create_dir_all(content.join("base")).unwrap();
    fs::write(content.join("base/svc.yaml"), "kind: Service\n").unwrap();
    let digest = registry.push(dir.path(), "team/site:prod", true, &["manifests"]);

    // Through a counting relay, to measure a poll that carries a token.
    let proxy = oci_support::CountingProxy::start(registry.port);
    let host = format!("127.0.0.1:{}", proxy.port);
    let config = dir.path().join("config.json");
    fs::write(
        &config,
        format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
            oci_support::base64(format!("{USER}:{PASSWORD}").as_bytes())
        ),
    )
    .unwrap();
    let options = OciOptions {
        docker_config: Some(config),
        ..OciOptions::default()
    };
    let source = Source::new(spec(
        &format!("oci://{host}/team/site:prod"),
        "HEAD",
        HttpOptions::default(),
        options,
    ))
    .unwrap();
    let issued = tokens.issued();
    let out = dir.path().join("out");
    let revision = fetch(&source, &out).unwrap();
    assert_eq!(revision.as_str(), format!("prod@{digest}"));
    assert_eq!(
        fs::read_to_string(out.join("manifests/base/svc.yaml")).unwrap(),
        "kind: Service\n"
    );
    assert_eq!(
        tokens.issued(),
        issued + 1,
        "one token serves the manifest and the blob"
    );
    assert_eq!(source.commit_of(&revision), None);

    // Polls reuse the cached token: one HEAD each, no token request.
    let before = registry.wait_requests(usize::MAX).len();
    let (up, down) = proxy.bytes();
    for _ in 0..3 {
        assert_eq!(source.resolve().unwrap(), revision);
    }
    let log = registry.wait_requests(before + 3);
    let (up2, down2) = proxy.bytes();
    println!(
        "unchanged-tag poll with a registry token: {} bytes sent, {} received",
        (up2 - up) / 3,
        (down2 - down) / 3
    );
    let polls = &log[before..];
    assert_eq!(polls.len(), 3, "{polls:?}");
    assert!(
        polls.iter().all(|r| r.method == "HEAD" && r.status == 200),
        "{polls:?}"
    );
    assert_eq!(tokens.issued(), issued + 1);

    // Without credentials the token server refuses and so does the source.
    let anonymous = Source::new(spec(
        &format!("oci://{}/team/site", registry.host()),
        "prod",
        HttpOptions::default(),
        OciOptions::default(),
    ))
    .unwrap();
    let err = anonymous.resolve().unwrap_err().to_string();
    assert!(err.contains("http 401"), "{err}");
}

#[test]
fn a_layer_is_chosen_by_media_type_and_a_pinned_digest_is_never_asked_again() {
    let registry = Registry::start(false, Access::Anonymous);
    let dir = tempfile::tempdir().unwrap();
    oci_support::tar_gz(dir.path(), "a.tar.gz", &[("a.yaml", "kind: A\n")]);
    oci_support::tar_gz(dir.path(), "b.tar.gz", &[("b.yaml", "kind: B\n")]);
    let digest = registry.push(
        dir.path(),
        "multi:v1",
        false,
        &[
            "a.tar.gz:application/vnd.example.a.tar+gzip",
            "b.tar.gz:application/vnd.example.b.tar+gzip",
        ],
    );
    // Two layers, neither Flux content: the source asks which.
    let plain = Source::new(spec(
        &registry.url("multi"),
        "v1",
        HttpOptions::default(),
        OciOptions::default(),
    ))
    .unwrap();
    let err = fetch(&plain, &dir.path().join("none"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--oci-layer-media-type"), "{err}");
    assert!(!dir.path().join("none").exists());

    let options = OciOptions {
        layer_media_type: Some("application/vnd.example.b.tar+gzip".into()),
        ..OciOptions::default()
    };
    let pinned = Source::new(spec(
        &registry.url("multi"),
        &digest,
        HttpOptions::default(),
        options,
    ))
    .unwrap();
    let before = registry.wait_requests(usize::MAX).len();
    let revision = pinned.resolve().unwrap();
    assert_eq!(revision.as_str(), digest);
    assert_eq!(pinned.resolve().unwrap(), revision);
    let out = dir.path().join("out");
    pinned.fetch_to(&revision, &out).unwrap();
    assert_eq!(fs::read_to_string(out.join("b.yaml")).unwrap(), "kind: B\n");
    assert!(!out.join("a.yaml").exists());
    // Resolving a pinned digest asked nothing: the fetch's manifest and blob GETs
    // are all the registry saw.
    let log = registry.wait_requests(before + 2);
    let seen: Vec<_> = log[before..]
        .iter()
        .map(|r| (r.method.as_str(), r.uri.as_str()))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], ("GET", &*format!("/v2/multi/manifests/{digest}")));
    assert!(seen[1].1.starts_with("/v2/multi/blobs/sha256:"), "{seen:?}");
}

#[test]
fn an_unchanged_tag_costs_at_most_a_kilobyte_on_the_wire() {
    let registry = Registry::start(false, Access::Htpasswd);
    let dir = tempfile::tempdir().unwrap();
    let proxy = oci_support::CountingProxy::start(registry.port);
    push_flux(
        &registry,
        dir.path(),
        "org/app:v1",
        true,
        &[("cm.yaml", "kind: ConfigMap\n")],
    );
    let http = HttpOptions {
        auth: basic(),
        ..HttpOptions::default()
    };
    let url = format!("oci://127.0.0.1:{}/org/app", proxy.port);
    let source = Source::new(spec(&url, "v1", http, OciOptions::default())).unwrap();
    let revision = fetch(&source, &dir.path().join("out")).unwrap();
    let (up, down) = proxy.bytes();
    assert_eq!(source.resolve().unwrap(), revision);
    let (up2, down2) =
        support::wait_for("the poll's answer counted", Duration::from_secs(10), || {
            let now = proxy.bytes();
            (now.1 > down).then_some(now)
        });
    let (sent, received) = (up2 - up, down2 - down);
    println!("unchanged-tag poll: {sent} bytes sent, {received} bytes received");
    assert!(sent + received <= 1024, "{sent} + {received} bytes");
}

/// Fetching must fail with `want` in the message, and leave `out` absent.
fn refused(source: &Source, out: &Path, want: &str) {
    let err = fetch(source, out).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(want), "want {want:?} in: {text}");
    assert!(!out.exists(), "{} was written", out.display());
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn bad_artifacts_are_refused_and_nothing_is_written() {
    let registry = Registry::start(false, Access::Anonymous);
    let dir = tempfile::tempdir().unwrap();
    let plain = |repo: &str, limits: FetchLimits, oci: OciOptions| {
        let mut s = spec(&registry.url(repo), "v1", HttpOptions::default(), oci);
        s.limits = limits;
        Source::new(s).unwrap()
    };

    // Digest mismatch: the stored layer is changed behind the registry's back.
    oci_support::tar_gz(dir.path(), "ok.tar.gz", &[("ok.yaml", "kind: Ok\n")]);
    registry.push(
        dir.path(),
        "tampered:v1",
        false,
        &[&format!("ok.tar.gz:{FLUX_CONTENT}")],
    );
    let layer = format!(
        "sha256:{}",
        sha256_hex(&fs::read(dir.path().join("ok.tar.gz")).unwrap())
    );
    let stored = registry.blob_path(&layer);
    let mut bytes = fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&stored, bytes).unwrap();
    refused(
        &plain("tampered", FetchLimits::default(), OciOptions::default()),
        &dir.path().join("tampered"),
        &format!("blob {layer}: digest mismatch"),
    );

    // A layer larger than the download limit is refused before it is downloaded.
    oci_support::tar_gz(
        dir.path(),
        "big.tar.gz",
        &[("big.yaml", &"x".repeat(100_000))],
    );
    registry.push(
        dir.path(),
        "big:v1",
        false,
        &[&format!("big.tar.gz:{FLUX_CONTENT}")],
    );
    let small = FetchLimits {
        max_pack_bytes: 64,
        ..FetchLimits::default()
    };
    refused(
        &plain("big", small, OciOptions::default()),
        &dir.path().join("big"),
        "over the max-pack-bytes limit of 64",
    );

    // A tar entry that climbs out of the snapshot.
    oci_support::hostile_tar_gz(&dir.path().join("evil.tar.gz"), "../escape.yaml");
    registry.push(
        dir.path(),
        "evil:v1",
        false,
        &[&format!("evil.tar.gz:{FLUX_CONTENT}")],
    );
    refused(
        &plain("evil", FetchLimits::default(), OciOptions::default()),
        &dir.path().join("evil"),
        "archive entry \"../escape.yaml\" rejected",
    );
    assert!(!dir.path().join("escape.yaml").exists());

    // Signatures: none, by another key, and by the trusted key.
    let (trusted_key, trusted_pub) = oci_support::p256_keys(dir.path(), "trusted");
    let (other_key, _) = oci_support::p256_keys(dir.path(), "other");
    let cosign = || OciOptions {
        cosign_key: Some(CosignKey::load(&trusted_pub).unwrap()),
        ..OciOptions::default()
    };
    oci_support::tar_gz(dir.path(), "s.tar.gz", &[("signed.yaml", "kind: Signed\n")]);
    let digest = registry.push(
        dir.path(),
        "signed:v1",
        false,
        &[&format!("s.tar.gz:{FLUX_CONTENT}")],
    );
    refused(
        &plain("signed", FetchLimits::default(), cosign()),
        &dir.path().join("unsigned"),
        &format!(
            "is not signed: no cosign signature at tag sha256-{}.sig",
            &digest[7..]
        ),
    );
    oci_support::push_signature(&registry, dir.path(), "signed", &digest, &other_key, false);
    refused(
        &plain("signed", FetchLimits::default(), cosign()),
        &dir.path().join("other"),
        "verifies with the cosign key",
    );
    oci_support::push_signature(
        &registry,
        dir.path(),
        "signed",
        &digest,
        &trusted_key,
        false,
    );
    let out = dir.path().join("good");
    let revision = fetch(&plain("signed", FetchLimits::default(), cosign()), &out).unwrap();
    assert_eq!(revision.as_str(), format!("v1@{digest}"));
    assert_eq!(
        fs::read_to_string(out.join("signed.yaml")).unwrap(),
        "kind: Signed\n"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hawser(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("NO_PROXY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hawser_fetch_reads_an_artifact_with_the_oci_flags() {
    let registry = Registry::start(true, Access::Htpasswd);
    let dir = tempfile::tempdir().unwrap();
    let digest = push_flux(
        &registry,
        dir.path(),
        "org/app:v1",
        true,
        &[("cm.yaml", "kind: ConfigMap\n")],
    );
    let config = dir.path().join("config.json");
    fs::write(
        &config,
        format!(
            r#"{{"auths":{{"https://{}":{{"username":"{USER}","password":"{PASSWORD}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let (ca, cfg) = (registry.ca(), config.to_str().unwrap().to_string());
    let bare = format!("{}/org/app", registry.host());
    let (code, stdout, stderr) = hawser(&[
        "fetch",
        "--source-kind",
        "oci",
        "--source",
        &bare,
        "--ref",
        "v1",
        "--docker-config",
        &cfg,
        "--insecure-registry",
        "registry.internal:5000",
        "--ca-file",
        ca.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(line["revision"], format!("v1@{digest}").as_str());
    assert_eq!(line["source"], registry.url("org/app").as_str());
    assert_eq!(line["files"], 1);
    assert_eq!(
        fs::read_to_string(out.join("cm.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );

    // Unsigned, with a key required: one line naming the tag, exit 2, nothing written.
    let (_, public) = oci_support::p256_keys(dir.path(), "k");
    let refused_out = dir.path().join("refused");
    let (code, stdout, stderr) = hawser(&[
        "fetch",
        "--source",
        &registry.url("org/app"),
        "--ref",
        "v1",
        "--docker-config",
        &cfg,
        "--ca-file",
        ca.to_str().unwrap(),
        "--verify-cosign-key",
        public.to_str().unwrap(),
        "--out",
        refused_out.to_str().unwrap(),
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "is not signed: no cosign signature at tag sha256-{}.sig",
            &digest[7..]
        )),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains(PASSWORD));
    assert!(!refused_out.exists());

    // OCI flags on another kind of source are a configuration error.
    let (code, _, stderr) = hawser(&[
        "fetch",
        "--source",
        "https://git.example/r.git",
        "--verify-cosign-key",
        public.to_str().unwrap(),
        "--resolve-only",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("apply to oci:// sources only"), "{stderr}");
}

#[test]
fn bundle_create_carries_an_artifact_across_the_gap_as_a_git_bundle() {
    let registry = Registry::start(false, Access::Anonymous);
    let dir = tempfile::tempdir().unwrap();
    let digest = push_flux(
        &registry,
        dir.path(),
        "org/app:v2",
        false,
        &[
            ("app/cm.yaml", "kind: ConfigMap\n"),
            ("app/z/deep.yaml", "kind: Deep\n"),
            ("app.yaml", "kind: Top\n"),
            ("empty.txt", ""),
        ],
    );
    let bundle = dir.path().join("site.bundle");
    let (code, stdout, stderr) = hawser(&[
        "bundle",
        "create",
        "--source",
        &registry.url("org/app"),
        "--ref",
        "v2",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let created: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(created["reference"], "refs/heads/v2");
    assert_eq!(created["files"], 4);

    // git itself reads it: the clone has exactly the artifact's files, and the commit
    // names the artifact and the Git commit it was built from.
    let clone = dir.path().join("clone");
    oci_support::run(
        std::process::Command::new("git")
            .args(["clone", "-q", "-b", "v2"])
            .arg(&bundle)
            .arg(&clone),
    );
    let extracted = dir.path().join("extracted");
    let source = Source::new(spec(
        &registry.url("org/app"),
        "v2",
        HttpOptions::default(),
        OciOptions::default(),
    ))
    .unwrap();
    fetch(&source, &extracted).unwrap();
    let log = oci_support::run(
        std::process::Command::new("git")
            .args(["log", "-1", "--format=%B"])
            .current_dir(&clone),
    );
    assert!(log.contains(&format!("v2@{digest}")), "{log}");
    assert!(log.contains(COMMIT), "{log}");
    fs::remove_dir_all(clone.join(".git")).unwrap();
    support::assert_same_tree(&clone, &extracted);

    // And hawser's bundle check accepts it as the agent would.
    let (code, stdout, stderr) = hawser(&[
        "bundle",
        "verify",
        bundle.to_str().unwrap(),
        "--insecure-allow-unsigned",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let verified: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(verified["commit"], created["commit"]);
    assert_eq!(verified["files"], 4);
}

/// A one-route-per-request HTTP server on loopback: answers each request with what
/// `answer` returns for its path, and keeps the requests' header blocks.
fn canned_server(
    answer: impl Fn(&str) -> Vec<u8> + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                head.push_str(&line);
                line.clear();
            }
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            // The first try on loopback is TLS, which is no HTTP request to record.
            if head.starts_with("GET ") || head.starts_with("HEAD ") {
                log.lock().unwrap().push(head);
            }
            let _ = stream.write_all(&answer(&path));
        }
    });
    (port, seen)
}

fn http_answer(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn a_blob_redirected_to_another_origin_is_fetched_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let layer = fs::read(oci_support::tar_gz(
        dir.path(),
        "l.tar.gz",
        &[("cm.yaml", "kind: ConfigMap\n")],
    ))
    .unwrap();
    let layer_digest = format!("sha256:{}", sha256_hex(&layer));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": FLUX_CONFIG, "digest": format!("sha256:{}", sha256_hex(b"{}")), "size": 2},
        "layers": [{"mediaType": FLUX_CONTENT, "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    // The storage: another origin (another port), serving the blob to anyone.
    let (storage, storage_seen) = canned_server(move |_| http_answer("200 OK", "", &layer));
    let manifest_type = "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n";
    let (registry, registry_seen) = canned_server(move |path| {
        if path.contains("/manifests/") {
            http_answer("200 OK", manifest_type, &manifest)
        } else {
            let to = format!("Location: http://127.0.0.1:{storage}/bucket/blob?sig=x\r\n");
            http_answer("307 Temporary Redirect", &to, b"")
        }
    });
    let token = dir.path().join("token");
    fs::write(&token, "registry-token-123\n").unwrap();
    let http = HttpOptions {
        auth: Some(Auth::bearer_from_file(&token).unwrap()),
        ..HttpOptions::default()
    };
    let url = format!("oci://127.0.0.1:{registry}/app");
    let source = Source::new(spec(&url, "v1", http, OciOptions::default())).unwrap();
    let out = dir.path().join("out");
    fetch(&source, &out).unwrap();
    assert_eq!(
        fs::read_to_string(out.join("cm.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );
    let to_registry = registry_seen.lock().unwrap().clone();
    assert!(
        to_registry.len() == 2
            && to_registry
                .iter()
                .all(|h| h.contains("authorization: Bearer registry-token-123")),
        "{to_registry:?}"
    );
    let to_storage = storage_seen.lock().unwrap().clone();
    assert_eq!(to_storage.len(), 1, "{to_storage:?}");
    assert!(
        !to_storage[0].to_ascii_lowercase().contains("authorization"),
        "{to_storage:?}"
    );
}
