//! The OTLP/gRPC client, for any [`Signal`]: `Export` with gzip, a per-attempt timeout, extra
//! headers, TLS/mTLS (through [`crate::channel`]), and retries with exponential backoff and
//! jitter.
//!
//! Retry policy: OTLP specification (opentelemetry-proto `docs/specification.md`), section
//! "OTLP/gRPC" > "Failures": the retryable codes are CANCELLED, DEADLINE_EXCEEDED, ABORTED,
//! OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS; RESOURCE_EXHAUSTED is retryable only when the server
//! signals that recovery is possible with a `google.rpc.RetryInfo` detail ("OTLP/gRPC
//! Throttling"), whose `retry_delay` is then the wait before the next attempt. Every other code
//! fails at once. Failures of our side of the call (timeout, connect, TLS handshake, broken
//! connection) are retried like UNAVAILABLE, which is what other gRPC clients report for them.
//! Section "Partial Success": an OK response may carry a rejected count and an
//! `error_message`; the request is not retried, the rejection is logged and counted.

use std::hash::BuildHasher;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::Channel;
use tonic_types::StatusExt;
use tracing::{debug, info, warn};

use crate::channel::{ChannelConfig, ChannelError};
use crate::connector::{NoHttp2, RejectedAfterHandshake};
use crate::signal::{Logs, Metrics, Signal};
use crate::stats::{ExportStats, FailureReason, unix_ms_now};

/// Default OTLP/gRPC endpoint (a local Alloy or Collector).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4317";

/// Client settings. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Endpoint, connect timeout and TLS: see [`crate::channel`] for the rules.
    pub channel: ChannelConfig,
    /// Compress requests with gzip (and accept gzip responses). Default on.
    pub gzip: bool,
    /// Per-attempt timeout, also sent to the server as `grpc-timeout`. Default 10 s.
    pub timeout: Duration,
    /// Extra request headers (gRPC metadata), e.g. `("authorization", "Bearer …")`. Names are
    /// lowercased; values must be visible ASCII. Values are never logged.
    pub headers: Vec<(String, String)>,
    pub retry: RetryConfig,
    /// What this client exports, in its log lines (`sink=…`). Default `otlp`.
    pub name: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            channel: ChannelConfig::default(),
            gzip: true,
            timeout: Duration::from_secs(10),
            headers: Vec::new(),
            retry: RetryConfig::default(),
            name: "otlp".to_owned(),
        }
    }
}

/// Exponential backoff with jitter between attempts.
///
/// The n-th retry waits `min(max_backoff, initial_backoff * multiplier^(n-1))`, scaled by a
/// random factor in `[0.5, 1.5)` when `jitter` is on (then capped at `max_backoff` again), unless
/// the server sent a `RetryInfo` delay, which is used as is. While the queue feeding the client
/// is more than half full ([`OtlpClient::set_filling`]), our own waits are capped at
/// `max_backoff_when_filling`, so the endpoint is probed more often when data is about to be
/// dropped (a server's RetryInfo delay is still honoured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Default 1 s.
    pub initial_backoff: Duration,
    /// Default 30 s.
    pub max_backoff: Duration,
    /// Default 5 s.
    pub max_backoff_when_filling: Duration,
    /// Growth factor per retry; default 2.
    pub multiplier: u32,
    /// Default on.
    pub jitter: bool,
    /// Attempts per request, first included. `None` (the default) retries until success or a
    /// non-retryable error: with the [`crate::Exporter`] the queue bound and its shutdown
    /// deadline are what limit it.
    pub max_attempts: Option<u32>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_backoff_when_filling: Duration::from_secs(5),
            multiplier: 2,
            jitter: true,
            max_attempts: None,
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("invalid header name {name:?}")]
    InvalidHeaderName { name: String },
    #[error("invalid value for header {name:?} (visible ASCII only)")]
    InvalidHeaderValue { name: String },
}

/// The headers as gRPC metadata: names lowercased, values visible ASCII. Errors name the
/// header, never its value.
pub fn parse_headers(
    headers: &[(String, String)],
) -> Result<Vec<(AsciiMetadataKey, AsciiMetadataValue)>, ClientError> {
    headers
        .iter()
        .map(|(name, value)| {
            let key = AsciiMetadataKey::from_str(&name.trim().to_ascii_lowercase())
                .map_err(|_| ClientError::InvalidHeaderName { name: name.clone() })?;
            let value = AsciiMetadataValue::from_str(value.trim())
                .map_err(|_| ClientError::InvalidHeaderValue { name: name.clone() })?;
            Ok((key, value))
        })
        .collect()
}

/// A request the server accepted (possibly partially).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSuccess {
    /// Attempts made, first included.
    pub attempts: u32,
    /// Items (points, log records) in the request.
    pub items: u64,
    /// Items the server rejected (partial success).
    pub rejected_items: u64,
    /// The server's partial-success message, if any.
    pub error_message: String,
}

/// A request given up on.
#[derive(Debug, thiserror::Error)]
#[error("OTLP export failed after {attempts} attempt(s) ({}): {message}", reason.as_str())]
pub struct ExportError {
    pub reason: FailureReason,
    /// What happened, in words (e.g. "handshake failed: client certificate required").
    pub message: String,
    /// Whether the last failure was retryable (true when `max_attempts` ran out).
    pub retryable: bool,
    pub attempts: u32,
    pub status: tonic::Status,
}

/// A cheap-to-clone handle on one gRPC channel to the endpoint, for one signal.
pub struct OtlpClient<S: Signal> {
    inner: Arc<Inner<S>>,
}

/// The metrics client.
pub type MetricsClient = OtlpClient<Metrics>;
/// The logs client.
pub type LogsClient = OtlpClient<Logs>;

impl<S: Signal> Clone for OtlpClient<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Signal> std::fmt::Debug for OtlpClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpClient")
            .field("signal", &S::NAME)
            .field("name", &self.inner.name)
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

struct Inner<S: Signal> {
    client: S::Client,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Duration,
    retry: RetryConfig,
    stats: Arc<ExportStats>,
    /// Redacted, for log lines.
    endpoint: String,
    name: String,
    /// Failed attempts in the current outage.
    outage_failures: AtomicU64,
    rng: AtomicU64,
    /// Set by [`OtlpClient::expedite_retries`].
    hurry: AtomicBool,
    /// Set by [`OtlpClient::set_filling`].
    filling: AtomicBool,
    wake: Notify,
}

/// Longest wait between attempts once [`OtlpClient::expedite_retries`] was called.
const HURRY_MAX_WAIT: Duration = Duration::from_secs(1);

impl<S: Signal> OtlpClient<S> {
    /// Builds the client on its own channel ([`crate::channel::connect_lazy`]). The connection
    /// is made on the first export (so the endpoint may be down now); must be called inside a
    /// tokio runtime.
    pub fn new(config: &ClientConfig, stats: Arc<ExportStats>) -> Result<Self, ClientError> {
        let channel = crate::channel::connect_lazy(&config.channel)?;
        Self::with_channel(channel, config, stats)
    }

    /// Builds the client on an existing channel (one connection shared by several clients, e.g.
    /// metrics and logs to the same endpoint). `config.channel` only names the endpoint in
    /// log lines.
    pub fn with_channel(
        channel: Channel,
        config: &ClientConfig,
        stats: Arc<ExportStats>,
    ) -> Result<Self, ClientError> {
        let headers = parse_headers(&config.headers)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client: S::client(channel, config.gzip),
                headers,
                timeout: config.timeout,
                retry: config.retry.clone(),
                stats,
                endpoint: config.channel.redacted_endpoint(),
                name: config.name.clone(),
                outage_failures: AtomicU64::new(0),
                rng: AtomicU64::new(std::collections::hash_map::RandomState::new().hash_one(0u8)),
                hurry: AtomicBool::new(false),
                filling: AtomicBool::new(false),
                wake: Notify::new(),
            }),
        })
    }

    pub fn stats(&self) -> &Arc<ExportStats> {
        &self.inner.stats
    }

    /// The endpoint as logs show it (credentials and query redacted).
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The `name` of its configuration.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// For shutdown: retries waiting in a backoff go now, and later waits are capped at 1 s
    /// (a server's RetryInfo delay included), so a grace period is spent trying rather than
    /// sleeping. Irreversible for this client and its clones.
    pub fn expedite_retries(&self) {
        self.inner.hurry.store(true, Ordering::SeqCst);
        self.inner.wake.notify_waiters();
    }

    /// Says whether the queue feeding this client is more than half full: while it is, our own
    /// backoff is capped at [`RetryConfig::max_backoff_when_filling`] (a wait already running
    /// is cut short to it).
    pub fn set_filling(&self, filling: bool) {
        if self.inner.filling.swap(filling, Ordering::SeqCst) != filling && filling {
            self.inner.wake.notify_waiters();
        }
    }

    /// Sends one request, retrying per the policy in the module doc. Every attempt is counted
    /// in the stats; on failure the request's items are counted in `items_failed`. The first
    /// failure of an outage is logged as a warning and the end of the outage as info; the
    /// attempts in between only at debug level.
    pub async fn export(&self, request: S::Request) -> Result<ExportSuccess, ExportError> {
        self.export_within(request, self.inner.retry.max_attempts)
            .await
    }

    /// [`export`](Self::export) with one attempt only, for a caller that will send the same
    /// data again anyway (cumulative counters) and must not wait out a known outage.
    pub async fn export_once(&self, request: S::Request) -> Result<ExportSuccess, ExportError> {
        self.export_within(request, Some(1)).await
    }

    async fn export_within(
        &self,
        request: S::Request,
        max_attempts: Option<u32>,
    ) -> Result<ExportSuccess, ExportError> {
        let inner = &*self.inner;
        let items = S::items(&request);
        let mut attempts: u32 = 0;
        let mut backoff = inner.retry.initial_backoff;
        loop {
            attempts = attempts.saturating_add(1);
            let (status, timed_out) = match self.attempt(request.clone(), items).await {
                Ok(success) => {
                    return Ok(ExportSuccess {
                        attempts,
                        ..success
                    });
                }
                Err(failure) => failure,
            };
            let (reason, message) = match classify(&status) {
                // Our timer, or tonic's reading the same `grpc-timeout`: whichever fired first.
                (reason, _) if timed_out || reason == FailureReason::Timeout => (
                    FailureReason::Timeout,
                    format!("no answer within {:?}", inner.timeout),
                ),
                other => other,
            };
            let retry_delay = retry_delay(&status);
            let retryable = is_retryable_reason(reason, retry_delay.is_some());
            let outage_starts = inner.stats.request_failed(reason, retryable);
            if outage_starts {
                inner.outage_failures.store(0, Ordering::Relaxed);
            }
            inner.outage_failures.fetch_add(1, Ordering::Relaxed);
            let exhausted = max_attempts.is_some_and(|max| attempts >= max);
            if !retryable || exhausted {
                inner.stats.items_failed(items);
                if outage_starts || !retryable {
                    warn!(
                        sink = %inner.name,
                        endpoint = %inner.endpoint,
                        reason = reason.as_str(),
                        attempts,
                        items,
                        error = %message,
                        "OTLP {} export failed, request dropped", S::NAME
                    );
                } else {
                    debug!(sink = %inner.name, reason = reason.as_str(), attempts, items, error = %message, "OTLP export given up during an outage");
                }
                return Err(ExportError {
                    reason,
                    message,
                    retryable,
                    attempts,
                    status,
                });
            }
            if outage_starts {
                warn!(
                    sink = %inner.name,
                    endpoint = %inner.endpoint,
                    reason = reason.as_str(),
                    error = %message,
                    "OTLP {} export failing, retrying with backoff", S::NAME
                );
            }
            let server_delay = retry_delay.is_some();
            let wait = retry_delay.unwrap_or_else(|| self.jittered(backoff));
            debug!(
                sink = %inner.name,
                reason = reason.as_str(),
                error = %message,
                attempts,
                wait_ms = wait.as_millis() as u64,
                "retrying OTLP export"
            );
            self.wait(wait, server_delay).await;
            inner.stats.retry(server_delay);
            backoff = backoff
                .saturating_mul(inner.retry.multiplier.max(1))
                .min(inner.retry.max_backoff);
        }
    }

    /// Sleeps `base`, cut short by [`expedite_retries`](Self::expedite_retries) (to 1 s) and,
    /// for our own backoff, by [`set_filling`](Self::set_filling) (to a jittered
    /// `max_backoff_when_filling`).
    async fn wait(&self, base: Duration, server_delay: bool) {
        let inner = &*self.inner;
        let start = tokio::time::Instant::now();
        let when_filling = self
            .jittered(inner.retry.max_backoff_when_filling)
            .min(inner.retry.max_backoff_when_filling);
        loop {
            // Register for a wake-up before reading the flags, so a change between the two is
            // not missed.
            let woken = inner.wake.notified();
            let mut woken = std::pin::pin!(woken);
            woken.as_mut().enable();
            let mut wait = base;
            if inner.hurry.load(Ordering::SeqCst) {
                wait = wait.min(HURRY_MAX_WAIT);
            }
            if !server_delay && inner.filling.load(Ordering::SeqCst) {
                wait = wait.min(when_filling);
            }
            let deadline = start + wait;
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                () = woken => {}
            }
        }
    }

    /// One call. `Err((status, true))` is our own timer expiring.
    async fn attempt(
        &self,
        request: S::Request,
        items: u64,
    ) -> Result<ExportSuccess, (tonic::Status, bool)> {
        let inner = &*self.inner;
        let mut req = tonic::Request::new(request);
        for (k, v) in &inner.headers {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        // The server learns our deadline (gRPC deadline propagation); our own timer, below,
        // decides when we stop waiting.
        req.set_timeout(inner.timeout);
        let call = S::export(inner.client.clone(), req);
        let response = match tokio::time::timeout(inner.timeout, call).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return Err((status, false)),
            Err(_) => return Err((tonic::Status::deadline_exceeded("timed out"), true)),
        };
        let was_failing_since = inner.stats.failing_since();
        inner.stats.request_ok(items);
        if let Some(since) = was_failing_since {
            info!(
                sink = %inner.name,
                endpoint = %inner.endpoint,
                failed_for_secs = unix_ms_now().saturating_sub(since) / 1000,
                failed_attempts = inner.outage_failures.load(Ordering::Relaxed),
                "OTLP endpoint accepts {} again", S::NAME
            );
        }
        let (rejected, message) = S::rejected(&response);
        if rejected > 0 || !message.is_empty() {
            inner.stats.partial_success(rejected);
            warn!(
                sink = %inner.name,
                endpoint = %inner.endpoint,
                rejected_items = rejected,
                items,
                error = %message,
                "OTLP endpoint rejected part of a {} export", S::NAME
            );
        }
        Ok(ExportSuccess {
            attempts: 1,
            items,
            rejected_items: rejected,
            error_message: message,
        })
    }

    fn jittered(&self, backoff: Duration) -> Duration {
        let retry = &self.inner.retry;
        if !retry.jitter {
            return backoff.min(retry.max_backoff);
        }
        // splitmix64 step: cheap, good enough to de-synchronise clients.
        let mut x = self
            .inner
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        // factor in [0.5, 1.5)
        let factor = 0.5 + (x >> 11) as f64 / (1u64 << 53) as f64;
        backoff.mul_f64(factor).min(retry.max_backoff)
    }
}

/// OTLP specification, "OTLP/gRPC" > "Failures" and "OTLP/gRPC Throttling", for a status code a
/// server answered.
pub fn is_retryable(code: tonic::Code, has_retry_info: bool) -> bool {
    use tonic::Code;
    match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => has_retry_info,
        _ => false,
    }
}

/// [`is_retryable`] for the code a server answered; our own failures (timeout, connect, TLS
/// handshake, transport) are retried like connection failures.
pub fn is_retryable_reason(reason: FailureReason, has_retry_info: bool) -> bool {
    reason
        .code()
        .is_none_or(|code| is_retryable(code, has_retry_info))
}

/// The `google.rpc.RetryInfo.retry_delay` in the status details, if any.
fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    status.get_details_retry_info()?.retry_delay
}

/// One reason per cause, and what happened in words.
///
/// A status tonic made up locally carries the error it came from as its source; a status the
/// server answered has none. Walking that chain, in this order of precedence:
/// - a rustls error, a TLS alert the peer sent (which may reach us through h2 as the text
///   rustls gives it, "received fatal alert: …", rustls `error.rs`), or our connector's verdict
///   on the handshake (the server closed after asking for a client certificate, no HTTP/2):
///   `tls_handshake`;
/// - tonic's `ConnectError` (the connector failed: TCP refused, unreachable, DNS, connect
///   timeout): `connect`;
/// - tonic's `TimeoutExpired` (its own per-request timer, which it reports as CANCELLED):
///   `timeout`;
/// - an HTTP/2 `RST_STREAM` or `GOAWAY` the peer sent: the code gRPC over HTTP/2 ("Errors")
///   gives its reason (CANCEL is CANCELLED, REFUSED_STREAM UNAVAILABLE, ENHANCE_YOUR_CALM
///   RESOURCE_EXHAUSTED, INADEQUATE_SECURITY PERMISSION_DENIED, the others INTERNAL), and a
///   graceful `GOAWAY` (NO_ERROR) UNAVAILABLE;
/// - anything else local (the connection broke, our HTTP/2 layer found the peer's bytes
///   malformed, the peer is not a gRPC server): `transport`.
///
/// Otherwise the server's code.
pub fn classify(status: &tonic::Status) -> (FailureReason, String) {
    use std::error::Error as _;
    let mut tls = None;
    let mut connect = false;
    let mut timeout = false;
    let mut peer_reset = None;
    let mut innermost = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = status.source();
    let local = source.is_some();
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            timeout = true;
        }
        if e.is::<tonic::ConnectError>() {
            connect = true;
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>()
            && h2.is_remote()
        {
            peer_reset = h2.reason().map(|r| (r, h2.is_go_away()));
        }
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            tls = tls.or_else(|| Some(tls_message(r)));
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                tls = tls.or_else(|| Some(tls_message(r)));
            } else if inner.is::<RejectedAfterHandshake>() || inner.is::<NoHttp2>() {
                tls = tls.or_else(|| Some(inner.to_string()));
            } else if let Some(alert) = inner.to_string().strip_prefix("received fatal alert: ") {
                tls = tls.or_else(|| Some(alert_message(alert)));
            }
        }
        innermost = Some(e.to_string());
        source = e.source();
    }
    let detail = innermost.unwrap_or_else(|| status.message().to_owned());
    if let Some(tls) = tls {
        return (
            FailureReason::TlsHandshake,
            format!("handshake failed: {tls}"),
        );
    }
    if connect {
        return (
            FailureReason::Connect,
            format!("connection failed: {detail}"),
        );
    }
    if timeout {
        return (FailureReason::Timeout, "no answer in time".to_owned());
    }
    if let Some((reason, go_away)) = peer_reset {
        let code = h2_code(reason, go_away);
        return (
            FailureReason::from_code(code),
            format!("the server reset the call: {detail}"),
        );
    }
    if local {
        return (
            FailureReason::Transport,
            format!("connection lost: {detail}"),
        );
    }
    let message = if status.message().is_empty() {
        status.code().description().to_owned()
    } else {
        status.message().to_owned()
    };
    (FailureReason::from_code(status.code()), message)
}

/// gRPC over HTTP/2 (grpc/grpc `doc/PROTOCOL-HTTP2.md`, "Errors"): the status of a call the
/// peer reset with `reason`. A graceful `GOAWAY` (NO_ERROR) means the server is going away:
/// UNAVAILABLE, retried.
fn h2_code(reason: h2::Reason, go_away: bool) -> tonic::Code {
    use tonic::Code;
    match reason {
        h2::Reason::NO_ERROR if go_away => Code::Unavailable,
        h2::Reason::REFUSED_STREAM => Code::Unavailable,
        h2::Reason::CANCEL => Code::Cancelled,
        h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
        _ => Code::Internal,
    }
}

fn tls_message(e: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    match e {
        Error::AlertReceived(alert) => alert_message(&format!("{alert:?}")),
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "server certificate not trusted (unknown issuer)".to_owned()
        }
        Error::InvalidCertificate(CertificateError::BadSignature) => {
            "server certificate not trusted (bad signature)".to_owned()
        }
        Error::InvalidCertificate(c) => format!("server certificate rejected: {c}"),
        Error::InvalidMessage(_) => {
            "the server did not answer in TLS (a plain-text endpoint? use http://)".to_owned()
        }
        other => other.to_string(),
    }
}

/// A TLS alert from the server (RFC 8446 §6.2), by rustls's name for it.
fn alert_message(name: &str) -> String {
    match name.trim() {
        "CertificateRequired" => "client certificate required".to_owned(),
        n @ ("BadCertificate"
        | "UnsupportedCertificate"
        | "CertificateRevoked"
        | "CertificateExpired"
        | "CertificateUnknown"
        | "UnknownCA"
        | "AccessDenied") => {
            format!("the server refused the client certificate ({n})")
        }
        n @ ("HandshakeFailure" | "ProtocolVersion" | "InsufficientSecurity") => {
            format!("no TLS version or cipher suite in common with the server ({n})")
        }
        "NoApplicationProtocol" => "the server does not offer HTTP/2 (ALPN h2)".to_owned(),
        n => format!("the server sent the TLS alert {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes_follow_the_otlp_spec() {
        use tonic::Code;
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert!(is_retryable(code, false), "{code:?}");
            assert!(is_retryable_reason(FailureReason::from_code(code), false));
        }
        assert!(!is_retryable(Code::ResourceExhausted, false));
        assert!(is_retryable(Code::ResourceExhausted, true));
        for code in [
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Unimplemented,
            Code::Internal,
            Code::FailedPrecondition,
        ] {
            assert!(!is_retryable(code, true), "{code:?}");
            assert!(!is_retryable_reason(FailureReason::from_code(code), true));
        }
        for r in [
            FailureReason::Timeout,
            FailureReason::Connect,
            FailureReason::TlsHandshake,
            FailureReason::Transport,
        ] {
            assert!(is_retryable_reason(r, false), "{r:?}");
        }
    }

    #[test]
    fn a_status_the_server_sent_keeps_its_code() {
        for (status, reason, message) in [
            (
                tonic::Status::cancelled("bye"),
                FailureReason::Cancelled,
                "bye",
            ),
            (
                tonic::Status::deadline_exceeded(""),
                FailureReason::DeadlineExceeded,
                "Deadline expired before operation could complete",
            ),
            (
                tonic::Status::unknown("what"),
                FailureReason::Unknown,
                "what",
            ),
        ] {
            assert_eq!(classify(&status), (reason, message.to_owned()));
        }
    }

    #[test]
    fn tls_alerts_are_named() {
        assert_eq!(
            alert_message("CertificateRequired"),
            "client certificate required"
        );
        assert_eq!(
            alert_message("UnknownCA"),
            "the server refused the client certificate (UnknownCA)"
        );
        assert_eq!(
            alert_message("ProtocolVersion"),
            "no TLS version or cipher suite in common with the server (ProtocolVersion)"
        );
        assert_eq!(
            alert_message("DecodeError"),
            "the server sent the TLS alert DecodeError"
        );
    }

    #[tokio::test]
    async fn header_errors_are_reported_without_values() {
        let stats = Arc::new(ExportStats::default());
        let build = |c: ClientConfig| MetricsClient::new(&c, stats.clone()).err();
        let base = ClientConfig::default();
        assert!(matches!(
            build(ClientConfig {
                headers: vec![("bad header".into(), "v".into())],
                ..base.clone()
            }),
            Some(ClientError::InvalidHeaderName { .. })
        ));
        let err = build(ClientConfig {
            headers: vec![("authorization".into(), "secret\nbreak".into())],
            ..base.clone()
        })
        .unwrap();
        assert!(matches!(err, ClientError::InvalidHeaderValue { .. }));
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(matches!(
            build(ClientConfig {
                channel: ChannelConfig {
                    endpoint: "localhost:4317".into(),
                    ..Default::default()
                },
                ..base.clone()
            }),
            Some(ClientError::Channel(ChannelError::UnsupportedScheme { .. }))
        ));
        assert!(build(base).is_none());
    }

    #[tokio::test]
    async fn jitter_stays_within_half_to_one_and_a_half_and_under_the_cap() {
        let config = ClientConfig {
            retry: RetryConfig {
                max_backoff: Duration::from_secs(100),
                ..Default::default()
            },
            ..Default::default()
        };
        let client = MetricsClient::new(&config, Arc::default()).expect("client");
        for _ in 0..1000 {
            let d = client.jittered(Duration::from_secs(10));
            assert!(
                d >= Duration::from_secs(5) && d < Duration::from_secs(15),
                "{d:?}"
            );
            let capped = client.jittered(Duration::from_secs(90));
            assert!(capped <= Duration::from_secs(100), "{capped:?}");
        }
    }
}
