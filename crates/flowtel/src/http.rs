//! The HTTP endpoint on `prometheus_listen` (default `0.0.0.0:9464`).
//!
//! - `GET /metrics`: flowtel's own metrics and, with the `prometheus` sink, the last complete
//!   window of every rollup (see [`crate::sinks::prometheus`]), in the Prometheus text format
//!   ([`crate::exposition`]).
//! - `GET /healthz`: 200 while the process runs (container HEALTHCHECK, liveness probe).
//! - `GET /readyz`: 200 once every socket is bound and the workers run, 503 before and while
//!   shutting down (readiness probe).
//!
//! The listener always runs (the health endpoints are needed whatever the sinks); flow series
//! appear on `/metrics` only when the `prometheus` sink is configured.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "see /metrics, /healthz, /readyz\n".into(),
        ),
    }
}

/// Bind the endpoint; the returned future serves until dropped.
pub async fn bind(
    addr: SocketAddr,
    endpoint: Endpoint,
) -> anyhow::Result<(SocketAddr, impl Future<Output = ()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for /metrics: {e}"))?;
    let local = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let serve = async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "metrics endpoint accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let endpoint = Arc::clone(&endpoint);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let resp = route(&endpoint, &req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    debug!(peer = %peer, error = %e, "metrics connection ended");
                }
            });
        }
    };
    Ok((local, serve))
}
