//! The admin HTTP server on `--listen` (default `0.0.0.0:9090`).
//!
//! In: connections from kubelet probes, Prometheus and forge webhooks. Out: answers,
//! and a wake-up on [`Admin::hook_notify`] for each authenticated webhook. Endpoints:
//!
//! - `GET /healthz`: 200 `ok` while the process runs and the loop's [`Heartbeat`]
//!   is fresh; 503 `loop stuck` (with the heartbeat's age) when it is not.
//! - `GET /readyz`: 503 until [`ReadyFlag::set`] is called with true, then 200.
//! - `GET /metrics`: the registry in the OpenMetrics text format.
//! - `POST /hook`: 202 for a request signed with the webhook secret (see [`hook`]),
//!   401 without reading the body if no signature header is present, 401 for a
//!   wrong signature, 413 beyond the body limit, 404 when no secret is configured.
//!
//! One request per connection (`Connection: close`); the request head must arrive
//! within `RequestLimits::head_timeout`, the whole request within `RequestLimits::timeout`. When
//! every slot is taken, the oldest connection still waiting for its head is closed
//! to make room ([`slots`]): idle or slow sockets cannot deny `/healthz`. What can go
//! wrong: binding the address ([`AdminError`]); everything after that is answered
//! with a status code and logged, never fatal.
//!
//! Why not hyper's server (hyper 1 is already linked for kube's client)? Measured:
//! enabling it adds a crate (`httpdate`) and, in a probe built with the release
//! profile's settings, 57 KiB over the HTTP/1 client alone, for keep-alive and
//! pipelining these endpoints do not need. [`http`] is ~200 lines, bounded, tested.

pub mod heartbeat;
pub mod hmac;
pub mod hook;
pub mod http;
pub mod replay;
pub mod slots;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub use heartbeat::Heartbeat;
pub use hook::HookSecret;
use http::{Head, HttpError, Response};
use slots::{Slot, Slots};

/// Where the admin server listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9090";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("binding the admin server to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Bounds on what one client may cost.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest webhook body accepted.
    pub max_body: usize,
    /// Time to receive a whole request, and again to send the answer.
    pub timeout: Duration,
    /// Time to receive the request line and headers: probes and Prometheus send
    /// them at once, a client that does not is idle and answered 408.
    pub head_timeout: Duration,
    /// Connections served at once; beyond that the oldest idle one is closed, and
    /// when none is idle the new one is answered 503.
    pub max_connections: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub drain: Duration,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            max_body: 1024 * 1024,
            timeout: Duration::from_secs(10),
            head_timeout: Duration::from_secs(2),
            max_connections: 128,
            drain: Duration::from_secs(5),
        }
    }
}

/// The readiness flag `/readyz` reports; starts false. Cheap to clone. While not
/// ready it may carry why, which `/readyz` answers with.
#[derive(Debug, Clone, Default)]
pub struct ReadyFlag {
    ready: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<String>>>,
}

impl ReadyFlag {
    pub fn set(&self, ready: bool) {
        if ready {
            self.set_reason(None);
        }
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Not ready, because of `reason` (one line, no secrets: `/readyz` is unauthenticated).
    pub fn not_ready(&self, reason: &str) {
        self.ready.store(false, Ordering::Relaxed);
        self.set_reason(Some(reason.to_string()));
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Why not ready, when the loop said.
    pub fn reason(&self) -> Option<String> {
        // A poisoned lock only means a writer panicked mid-store of a String.
        match self.reason.lock() {
            Ok(reason) => reason.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_reason(&self, reason: Option<String>) {
        match self.reason.lock() {
            Ok(mut slot) => *slot = reason,
            Err(poisoned) => *poisoned.into_inner() = reason,
        }
    }
}

/// The server's configuration and shared handles; [`Admin::serve`] runs it.
#[derive(Debug, Clone)]
pub struct Admin {
    registry: Arc<Registry>,
    readiness: ReadyFlag,
    secret: Option<HookSecret>,
    hooks: Arc<Notify>,
    limits: RequestLimits,
    heartbeat: Option<Heartbeat>,
    replays: Arc<replay::Replays>,
}

impl Admin {
    /// An admin server exposing `registry`; webhooks disabled until a secret is set.
    pub fn new(registry: Registry) -> Admin {
        Admin {
            registry: Arc::new(registry),
            readiness: ReadyFlag::default(),
            secret: None,
            hooks: Arc::new(Notify::new()),
            limits: RequestLimits::default(),
            heartbeat: None,
            replays: Arc::new(replay::Replays::new(Duration::ZERO)),
        }
    }

    /// A webhook body seen again within `window` (the poll interval) is answered
    /// but wakes nothing: a captured delivery replayed at will is worth one poll.
    pub fn with_replay_window(mut self, window: Duration) -> Admin {
        self.replays = Arc::new(replay::Replays::new(window));
        self
    }

    /// Makes `/healthz` fail while `heartbeat` is stale.
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Admin {
        self.heartbeat = Some(heartbeat);
        self
    }

    /// Enables `POST /hook`, authenticated with `secret`.
    pub fn with_hook_secret(mut self, secret: Option<HookSecret>) -> Admin {
        self.secret = secret;
        self
    }

    pub fn with_limits(mut self, limits: RequestLimits) -> Admin {
        self.limits = limits;
        self
    }

    /// The flag behind `/readyz`; the loop sets it once it enforces a revision.
    pub fn readiness(&self) -> ReadyFlag {
        self.readiness.clone()
    }

    /// Notified once per accepted webhook. `Notify` keeps one permit, so hooks that
    /// arrive while the loop is busy wake it once, not once each.
    pub fn hook_notify(&self) -> Arc<Notify> {
        self.hooks.clone()
    }

    /// Binds the listening socket (separate from [`Admin::serve`] so a bad address
    /// fails at start-up, and tests can bind port 0).
    pub async fn bind(addr: SocketAddr) -> Result<TcpListener, AdminError> {
        TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError::Bind { addr, source })
    }

    /// Serves until `shutdown` turns true (or its sender is dropped), then lets the
    /// requests in flight finish for up to `RequestLimits::drain`.
    pub async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let admin = Arc::new(self);
        let slots = Slots::new(admin.limits.max_connections);
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                () = stopped(&mut shutdown) => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let (admin, slots) = (admin.clone(), slots.clone());
                        connections.spawn(async move {
                            match slots.acquire().await {
                                Some(slot) => admin.handle(stream, peer, slot).await,
                                None => admin.refuse_busy(stream).await,
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!(error = %e, "admin server: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        let drained = tokio::time::timeout(admin.limits.drain, async {
            while connections.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            connections.abort_all();
        }
    }

    async fn refuse_busy(&self, mut stream: TcpStream) {
        let response = Response::text(503, "busy").with_header("Retry-After", "1");
        // Short bounds: under a flood these tasks must not pile up.
        let answer = async {
            response.write(&mut stream, false).await?;
            stream.shutdown().await?;
            drain(&mut stream).await;
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_millis(200), answer).await;
    }

    async fn handle(&self, mut stream: TcpStream, peer: SocketAddr, slot: Slot) {
        let head = slot
            .idle_while(tokio::time::timeout(
                self.limits.head_timeout,
                http::read_head(&mut stream),
            ))
            .await;
        let answer = match head {
            // Evicted for a newer connection: close without a word.
            None => return,
            Some(Err(_)) => Err(()),
            Some(Ok(head)) => {
                tokio::time::timeout(self.limits.timeout, self.respond(&mut stream, head, peer))
                    .await
                    .map_err(|_| ())
            }
        };
        let (response, head_only) =
            answer.unwrap_or_else(|()| (Response::text(408, "request timeout"), false));
        let write = async {
            response.write(&mut stream, head_only).await?;
            stream.shutdown().await
        };
        if let Err(e) = tokio::time::timeout(self.limits.timeout, write)
            .await
            .unwrap_or(Ok(()))
        {
            tracing::debug!(%peer, error = %e, "admin server: writing the response failed");
            return;
        }
        // Lingering close: a request refused before its body was read still has bytes
        // in flight; closing now would reset the connection and lose the answer.
        let linger = self.limits.timeout.min(Duration::from_secs(1));
        let _ = tokio::time::timeout(linger, drain(&mut stream)).await;
    }

    /// Reads one request and decides the answer; the bool says "HEAD: no body".
    async fn respond(
        &self,
        stream: &mut TcpStream,
        head: Result<Head, HttpError>,
        peer: SocketAddr,
    ) -> (Response, bool) {
        let head = match head {
            Ok(head) => head,
            Err(e) => return (error_response(&e), false),
        };
        let head_only = head.method == "HEAD";
        let response = match (head.method.as_str(), head.path.as_str()) {
            ("GET" | "HEAD", "/healthz") => self.health(),
            ("GET" | "HEAD", "/readyz") if self.readiness.is_ready() => {
                Response::text(200, "ready")
            }
            ("GET" | "HEAD", "/readyz") => match self.readiness.reason() {
                Some(reason) => Response::text(503, format!("not ready: {reason}")),
                None => Response::text(503, "not ready"),
            },
            ("GET" | "HEAD", "/metrics") => self.metrics(),
            ("POST", "/hook") => self.hook(stream, &head, peer).await,
            (_, "/healthz" | "/readyz" | "/metrics") => {
                Response::text(405, "use GET").with_header("Allow", "GET, HEAD")
            }
            (_, "/hook") if self.secret.is_some() => {
                Response::text(405, "use POST").with_header("Allow", "POST")
            }
            _ => Response::text(404, "not found"),
        };
        (response, head_only)
    }

    fn health(&self) -> Response {
        match &self.heartbeat {
            Some(beat) if beat.is_stale() => Response::text(
                503,
                format!("loop stuck: last heartbeat {}s ago", beat.age().as_secs()),
            ),
            Some(beat) => Response::text(200, "ok")
                .with_header("X-Hawser-Heartbeat-Age", beat.age().as_secs().to_string()),
            None => Response::text(200, "ok"),
        }
    }

    fn metrics(&self) -> Response {
        let mut text = String::new();
        match prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            Ok(()) => Response {
                status: 200,
                content_type: OPENMETRICS,
                extra: Vec::new(),
                body: text.into_bytes(),
            },
            Err(e) => {
                tracing::error!(error = %e, "encoding metrics failed");
                Response::text(500, "encoding metrics failed")
            }
        }
    }

    async fn hook(&self, stream: &mut TcpStream, head: &Head, peer: SocketAddr) -> Response {
        let Some(secret) = &self.secret else {
            return Response::text(404, "not found");
        };
        if !hook::is_signed(&head.headers) {
            tracing::info!(%peer, "webhook refused: no signature header");
            return Response::text(401, hook::HookError::Unsigned.to_string());
        }
        let body = match http::read_body(stream, head, self.limits.max_body).await {
            Ok(body) => body,
            Err(e) => return error_response(&e),
        };
        match hook::verify(secret, &head.headers, &body) {
            Ok(scheme) if !self.replays.first_time(&body) => {
                tracing::debug!(%peer, scheme = scheme.as_str(), "webhook repeated within the poll interval; ignored");
                Response::text(202, "accepted (already seen)")
            }
            Ok(scheme) => {
                tracing::info!(%peer, scheme = scheme.as_str(), "webhook accepted; polling the source");
                self.hooks.notify_one();
                Response::text(202, "accepted")
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "webhook refused");
                Response::text(401, "signature does not match")
            }
        }
    }
}

/// Resolves once `shutdown` is true, or its sender is gone (which also means stop).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Reads and discards until the peer closes, at most the largest body we accept.
async fn drain(stream: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    let mut left: usize = 1024 * 1024;
    while left > 0 {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn error_response(e: &HttpError) -> Response {
    Response::text(e.status(), e.to_string())
}
