//! The server over real TCP on 127.0.0.1.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::hmac::hmac_sha256;
use super::*;
use crate::report::metrics::Metrics;

const SECRET: &str = "hook-secret";

struct Server {
    addr: SocketAddr,
    readiness: ReadyFlag,
    hooks: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn start(secret: Option<&str>, limits: RequestLimits) -> Server {
    let (metrics, registry) = Metrics::new();
    metrics.set_applied_revision(Some("abc123"));
    let admin = Admin::new(registry)
        .with_hook_secret(secret.and_then(HookSecret::new))
        .with_limits(limits);
    let listener = Admin::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    let (readiness, hooks) = (admin.readiness(), admin.hook_notify());
    let task = tokio::spawn(admin.serve(listener, stopped));
    Server {
        addr,
        readiness,
        hooks,
        stop,
        task,
    }
}

/// Sends raw bytes, returns (status, head, body).
async fn send(addr: SocketAddr, raw: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    send(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await
}

fn post_hook(header: &str, value: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /hook HTTP/1.1\r\nHost: x\r\n{header}: {value}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn signature(body: &str) -> String {
    hmac_sha256(SECRET.as_bytes(), body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn notified(hooks: &Notify) -> bool {
    tokio::time::timeout(Duration::from_millis(200), hooks.notified())
        .await
        .is_ok()
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = start(None, RequestLimits::default()).await;
    let (status, head, body) = get(server.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert!(head.contains("Connection: close"), "{head}");

    assert_eq!(get(server.addr, "/readyz").await.0, 503);
    server.readiness.set(true);
    assert_eq!(get(server.addr, "/readyz?verbose").await.0, 200);

    let (status, head, body) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(
        body.contains("hawser_applied_revision_info{revision=\"abc123\"} 1"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"));

    let (status, head, body) = send(server.addr, b"HEAD /healthz HTTP/1.1\r\n\r\n").await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(head.contains("Content-Length: 3"), "{head}");
}

#[tokio::test]
async fn unknown_paths_methods_and_garbage() {
    let server = start(None, RequestLimits::default()).await;
    assert_eq!(get(server.addr, "/nope").await.0, 404);
    let (status, head, _) = send(server.addr, b"POST /healthz HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"));
    assert_eq!(send(server.addr, b"hello\r\n\r\n").await.0, 400);
    assert_eq!(send(server.addr, b"GET / HTTP/1.1\r\nx: y").await.0, 400); // closed early
    let huge = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(send(server.addr, huge.as_bytes()).await.0, 431);
}

#[tokio::test]
async fn hooks_are_disabled_without_a_secret() {
    let server = start(None, RequestLimits::default()).await;
    let body = "{}";
    let (status, _, _) = send(
        server.addr,
        &post_hook("X-Gitea-Signature", &signature(body), body),
    )
    .await;
    assert_eq!(status, 404);
    assert!(!notified(&server.hooks).await);
}

#[tokio::test]
async fn signed_hooks_from_each_forge_wake_the_loop() {
    let server = start(Some(SECRET), RequestLimits::default()).await;
    let body = r#"{"ref":"refs/heads/main","after":"abc"}"#;
    let cases = [
        ("X-Hub-Signature-256", format!("sha256={}", signature(body))),
        ("X-Gitea-Signature", signature(body)),
        ("X-Forgejo-Signature", signature(body)),
        ("X-Gitlab-Token", SECRET.to_string()),
    ];
    for (header, value) in cases {
        let (status, _, _) = send(server.addr, &post_hook(header, &value, body)).await;
        assert_eq!(status, 202, "{header}");
        assert!(notified(&server.hooks).await, "{header}");
    }
}

#[tokio::test]
async fn bad_hooks_are_refused_and_wake_nothing() {
    let server = start(
        Some(SECRET),
        RequestLimits {
            max_body: 64,
            ..RequestLimits::default()
        },
    )
    .await;
    let body = "{}";
    let bad = [
        post_hook(
            "X-Hub-Signature-256",
            &format!("sha256={}", signature("other")),
            body,
        ),
        post_hook("X-Gitea-Signature", "zz", body),
        post_hook("X-Gitlab-Token", "guess", body),
        post_hook("X-GitHub-Event", "push", body),
        b"POST /hook HTTP/1.1\r\n\r\n".to_vec(),
    ];
    for raw in bad {
        assert_eq!(
            send(server.addr, &raw).await.0,
            401,
            "{}",
            String::from_utf8_lossy(&raw)
        );
    }
    let big = "x".repeat(65);
    let (status, _, _) = send(
        server.addr,
        &post_hook("X-Gitea-Signature", &signature(&big), &big),
    )
    .await;
    assert_eq!(status, 413);
    // Too large is refused from the header alone: no body needed.
    let raw = "POST /hook HTTP/1.1\r\nX-Gitea-Signature: 00\r\nContent-Length: 99999999999\r\n\r\n";
    assert_eq!(send(server.addr, raw.as_bytes()).await.0, 413);
    let chunked =
        "POST /hook HTTP/1.1\r\nX-Gitea-Signature: 00\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(send(server.addr, chunked.as_bytes()).await.0, 501);
    assert_eq!(get(server.addr, "/hook").await.0, 405);
    assert!(!notified(&server.hooks).await);
}

#[tokio::test]
async fn expect_continue_is_answered_before_the_body() {
    let server = start(Some(SECRET), RequestLimits::default()).await;
    let body = "{\"zen\":\"ok\"}";
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /hook HTTP/1.1\r\nX-Gitea-Signature: {}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        signature(body),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut rest = String::new();
    stream.read_to_string(&mut rest).await.unwrap();
    assert!(rest.starts_with("HTTP/1.1 202 Accepted"), "{rest}");
    assert!(notified(&server.hooks).await);
}

#[tokio::test]
async fn a_slow_head_times_out_and_busy_slots_refuse() {
    let limits = RequestLimits {
        head_timeout: Duration::from_millis(100),
        max_connections: 1,
        ..RequestLimits::default()
    };
    let server = start(Some(SECRET), limits).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let mut out = String::new();
    slow.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");

    // A webhook whose body is still coming is busy, not idle: it keeps its slot.
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    let sig = signature("x");
    busy.write_all(
        format!("POST /hook HTTP/1.1\r\nX-Hub-Signature-256: sha256={sig}\r\nContent-Length: 10\r\n\r\nx")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut status = 0;
    for _ in 0..50 {
        status = get(server.addr, "/healthz").await.0;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503, "no idle connection to evict");
    drop(busy);
}

/// Issue #21, finding 3: 40 clients keeping a request line half-sent used to get
/// every probe answered 503. Now 200 of them, with far fewer slots, only evict one
/// another: every probe is answered.
#[tokio::test]
async fn idle_sockets_cannot_deny_healthz() {
    let limits = RequestLimits {
        max_connections: 16,
        ..RequestLimits::default()
    };
    let server = start(None, limits).await;
    let mut attackers = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        attackers.push(s);
    }
    for round in 0..30 {
        let (status, _, body) = get(server.addr, "/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok\n"), "probe {round}");
        // The attackers reconnect as fast as they are dropped.
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        attackers.push(s);
    }
    drop(attackers);
}

#[tokio::test]
async fn healthz_fails_while_the_loop_heartbeat_is_stale() {
    let (_, registry) = Metrics::new();
    let fresh = Heartbeat::new(Duration::from_secs(3600));
    let stuck = Heartbeat::new(Duration::ZERO);
    for (beat, want) in [(fresh, 200), (stuck, 503)] {
        let admin = Admin::new(Registry::default()).with_heartbeat(beat);
        let listener = Admin::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, stopped) = watch::channel(false);
        tokio::spawn(admin.serve(listener, stopped));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (status, _, body) = get(addr, "/healthz").await;
        assert_eq!(status, want, "{body}");
        if want == 503 {
            assert!(body.starts_with("loop stuck: last heartbeat"), "{body}");
        }
    }
    drop(registry);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let server = start(None, RequestLimits::default()).await;
    assert_eq!(get(server.addr, "/healthz").await.0, 200);
    server.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let server = start(
        None,
        RequestLimits {
            drain: Duration::from_secs(2),
            ..RequestLimits::default()
        },
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(b"\r\n").await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    drop(stream);
    tokio::time::timeout(Duration::from_secs(2), server.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn binding_a_taken_port_names_the_address() {
    let server = start(None, RequestLimits::default()).await;
    let err = Admin::bind(server.addr).await.unwrap_err();
    // The address and the OS's reason, in one line.
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("binding the admin server to {}: ", server.addr)),
        "{message}"
    );
    assert!(message.to_lowercase().contains("in use"), "{message}");
}
