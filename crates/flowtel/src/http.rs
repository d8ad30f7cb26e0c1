//! The HTTP endpoint on `prometheus_listen` (default `0.0.0.0:9464`).
//!
//! - `GET /metrics`: flowtel's own metrics and, with the `prometheus` sink, the last complete
//!   window of every rollup (see [`crate::sinks::prometheus`]), in the Prometheus text format
//!   ([`crate::exposition`]).
//! - `GET /healthz`: 200 while the process runs (container HEALTHCHECK, liveness probe).
//! - `GET /readyz`: 200 once every listen socket is bound and the receive workers run, 503 before
//!   and while shutting down (readiness probe). It says nothing of the sinks: a collector whose
//!   OTLP endpoint is down still receives (and counts what it drops), and restarting it would
//!   lose more.
//! - `GET /status`: JSON, the export health of every sink (queue depth and capacity, delivered,
//!   dropped by reason, failing since), for humans and scripts.
//!
//! The listener always runs (the health endpoints are needed whatever the sinks); flow series
//! appear on `/metrics` only when the `prometheus` sink is configured.
//!
//! # Hostile or broken clients
//!
//! The endpoint must keep answering the liveness probe whatever other clients do:
//! - at most [`Limits::max_connections`] connections are open; when one more arrives, the
//!   oldest open connection is closed to make room, so a flood of idle or slow connections cannot
//!   lock the probe out (it is always the newest);
//! - request headers must arrive within [`Limits::header_timeout`] (slowloris), a connection
//!   serves one request (no idle keep-alive), and no connection lives longer than
//!   [`Limits::connection_timeout`];
//! - `accept` errors (out of file descriptors) back off exponentially up to 1 s, and are logged
//!   at most once per 10 s with their count.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::exposition::CONTENT_TYPE;

/// What the HTTP endpoint serves.
pub struct Endpoint {
    /// Produces the `/metrics` body.
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// Produces the `/status` body (JSON).
    pub status: Box<dyn Fn() -> String + Send + Sync>,
    /// `/readyz` answers 200 while this is true.
    pub ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish()
    }
}

/// Bounds on what clients can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; the oldest is closed to admit a new one.
    pub max_connections: usize,
    /// Time allowed to send the request headers.
    pub header_timeout: Duration,
    /// Lifetime of a connection, response included.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 128,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The defaults, with the connection bound lowered to a quarter of the open-file limit so
    /// connections can never exhaust the descriptors the sockets and exporters need.
    pub fn for_fd_limit(fd_limit: Option<u64>) -> Self {
        let d = Limits::default();
        let cap = fd_limit.map_or(d.max_connections, |l| {
            usize::try_from(l / 4).unwrap_or(usize::MAX)
        });
        Limits {
            max_connections: d.max_connections.min(cap).max(4),
            ..d
        }
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn route(endpoint: &Endpoint, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => respond(StatusCode::OK, CONTENT_TYPE, (endpoint.metrics)()),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if endpoint.ready.load(Ordering::Relaxed) => {
            respond(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/readyz" => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".into(),
        ),
        "/status" => respond(StatusCode::OK, "application/json", (endpoint.status)()),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "see /metrics, /healthz, /readyz, /status\n".into(),
        ),
    }
}

/// Open connections, oldest first, each with the means to close it.
#[derive(Debug, Default)]
struct Open {
    next: u64,
    conns: BTreeMap<u64, tokio::sync::oneshot::Sender<()>>,
}

/// Rate-limited log of accept errors.
#[derive(Debug)]
struct AcceptErrors {
    backoff: Duration,
    since_log: u64,
    last_log: Option<Instant>,
}

impl AcceptErrors {
    const LOG_EVERY: Duration = Duration::from_secs(10);

    /// Count one error; returns how long to wait before accepting again.
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.since_log += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= Self::LOG_EVERY) {
            warn!(
                error = %e,
                errors = self.since_log,
                "metrics endpoint cannot accept connections (backing off)"
            );
            self.since_log = 0;
            self.last_log = Some(Instant::now());
        }
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.backoff
    }

    fn succeeded(&mut self) {
        self.backoff = Duration::ZERO;
    }
}

/// Bind the endpoint; the returned future serves until dropped.
pub async fn bind(
    addr: SocketAddr,
    endpoint: Endpoint,
    limits: Limits,
) -> anyhow::Result<(SocketAddr, impl Future<Output = ()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for /metrics: {e}"))?;
    let local = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let open = Arc::new(Mutex::new(Open::default()));
    let serve = async move {
        let mut errors = AcceptErrors {
            backoff: Duration::ZERO,
            since_log: 0,
            last_log: None,
        };
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => {
                    errors.succeeded();
                    s
                }
                Err(e) => {
                    tokio::time::sleep(errors.failed(&e)).await;
                    continue;
                }
            };
            let (close_tx, close_rx) = tokio::sync::oneshot::channel();
            let id = {
                let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
                while o.conns.len() >= limits.max_connections {
                    // Make room: the oldest goes (a probe is always the newest).
                    if let Some((_, close)) = o.conns.pop_first() {
                        let _ = close.send(());
                    }
                }
                o.next += 1;
                let id = o.next;
                o.conns.insert(id, close_tx);
                id
            };
            let endpoint = Arc::clone(&endpoint);
            let open = Arc::clone(&open);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let resp = route(&endpoint, &req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .keep_alive(false)
                    .serve_connection(io, service);
                tokio::select! {
                    r = tokio::time::timeout(limits.connection_timeout, conn) => match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => debug!(peer = %peer, error = %e, "metrics connection ended"),
                        Err(_) => debug!(peer = %peer, "metrics connection timed out"),
                    },
                    _ = close_rx => debug!(peer = %peer, "metrics connection closed to admit a newer one"),
                }
                open.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .conns
                    .remove(&id);
            });
        }
    };
    Ok((local, serve))
}

/// Raise the soft open-file limit to the hard limit (sockets, connections and exporters all
/// need descriptors); returns the soft limit in effect.
pub fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_bound_leaves_most_descriptors_to_the_rest() {
        assert_eq!(Limits::for_fd_limit(Some(1024)).max_connections, 128);
        assert_eq!(Limits::for_fd_limit(Some(256)).max_connections, 64);
        assert_eq!(Limits::for_fd_limit(Some(8)).max_connections, 4);
        assert_eq!(Limits::for_fd_limit(None).max_connections, 128);
    }

    #[test]
    fn accept_errors_back_off_and_log_rarely() {
        let mut a = AcceptErrors {
            backoff: Duration::ZERO,
            since_log: 0,
            last_log: None,
        };
        let e = std::io::Error::from_raw_os_error(24);
        let waits: Vec<Duration> = (0..9).map(|_| a.failed(&e)).collect();
        assert_eq!(waits[0], Duration::from_millis(10));
        assert_eq!(waits[1], Duration::from_millis(20));
        assert_eq!(waits[8], Duration::from_secs(1), "capped");
        // Logged once (the first); the eight others are counted for the next line.
        assert_eq!(a.since_log, 8);
        a.succeeded();
        assert_eq!(a.failed(&e), Duration::from_millis(10));
    }
}
