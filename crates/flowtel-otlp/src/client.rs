//! The OTLP/gRPC metrics client: `MetricsService/Export` with gzip, a per-request timeout, TLS and
//! mTLS, extra headers, and retries with exponential backoff and jitter.
//!
//! Retry policy: OTLP specification (opentelemetry-proto `docs/specification.md`), section
//! "OTLP/gRPC" > "Failures": the retryable codes are CANCELLED, DEADLINE_EXCEEDED, ABORTED,
//! OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS; RESOURCE_EXHAUSTED is retryable only when the server
//! signals that recovery is possible with a `google.rpc.RetryInfo` detail ("OTLP/gRPC
//! Throttling"), whose `retry_delay` is then the wait before the next attempt. Every other code
//! fails at once. Section "Partial Success": an OK response may carry `rejected_data_points` and
//! an `error_message`; the request must not be retried, the rejection is logged and counted.

use std::hash::BuildHasher;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use tokio::sync::Notify;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_types::StatusExt;
use tracing::{debug, info, warn};

use crate::convert::point_count;
use crate::stats::{ExportStats, FailureReason};

/// Default OTLP/gRPC endpoint (a local Alloy or Collector).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4317";

/// Client settings. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host:port`; default `http://localhost:4317`. A path is
    /// ignored (gRPC uses its own).
    pub endpoint: String,
    /// Compress requests with gzip (and accept gzip responses). Default on.
    pub gzip: bool,
    /// Per-attempt timeout, also sent to the server as `grpc-timeout`. Default 10 s.
    pub timeout: Duration,
    /// TCP + TLS connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Extra request headers (gRPC metadata), e.g. `("authorization", "Bearer …")`. Names are
    /// lowercased; values must be visible ASCII.
    pub headers: Vec<(String, String)>,
    /// TLS settings, used with an `https://` endpoint.
    pub tls: TlsConfig,
    pub retry: RetryConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            gzip: true,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            headers: Vec::new(),
            tls: TlsConfig::default(),
            retry: RetryConfig::default(),
        }
    }
}

/// TLS settings (PEM contents, not paths: reading files is the caller's business).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// CA certificate(s) to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain for mTLS; needs `client_key_pem` too.
    pub client_cert_pem: Option<Vec<u8>>,
    /// Client private key for mTLS; needs `client_cert_pem` too.
    pub client_key_pem: Option<Vec<u8>>,
    /// Name to verify the server certificate against, when it differs from the endpoint host.
    pub domain_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TlsConfig")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "<pem>"),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("domain_name", &self.domain_name)
            .finish()
    }
}

impl TlsConfig {
    fn is_set(&self) -> bool {
        self.ca_pem.is_some()
            || self.client_cert_pem.is_some()
            || self.client_key_pem.is_some()
            || self.domain_name.is_some()
    }
}

/// Exponential backoff with jitter between attempts.
///
/// The n-th retry waits `min(max_backoff, initial_backoff * multiplier^(n-1))`, scaled by a
/// random factor in `[0.5, 1.5)` when `jitter` is on (then capped at `max_backoff` again), unless
/// the server sent a `RetryInfo` delay, which is used as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Default 1 s.
    pub initial_backoff: Duration,
    /// Default 30 s.
    pub max_backoff: Duration,
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
            multiplier: 2,
            jitter: true,
            max_attempts: None,
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid OTLP endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("OTLP endpoint {endpoint:?} must start with http:// or https://")]
    UnsupportedScheme { endpoint: String },
    #[error("TLS settings given for the plain-text endpoint {endpoint:?} (use https://)")]
    TlsWithoutHttps { endpoint: String },
    #[error("mTLS needs both a client certificate and a client key")]
    IncompleteClientIdentity,
    #[error("invalid TLS settings: {source}")]
    Tls {
        #[source]
        source: tonic::transport::Error,
    },
    #[error("invalid header name {name:?}")]
    InvalidHeaderName { name: String },
    #[error("invalid value for header {name:?} (visible ASCII only)")]
    InvalidHeaderValue { name: String },
}

/// A request the server accepted (possibly partially).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSuccess {
    /// Attempts made, first included.
    pub attempts: u32,
    /// Points in the request.
    pub points: u64,
    /// Points the server rejected (partial success).
    pub rejected_points: u64,
    /// The server's partial-success message, if any.
    pub error_message: String,
}

/// A request given up on.
#[derive(Debug, thiserror::Error)]
#[error("OTLP export failed after {attempts} attempt(s) ({}): {status}", reason.as_str())]
pub struct ExportError {
    pub reason: FailureReason,
    /// Whether the last failure was retryable (true when `max_attempts` ran out).
    pub retryable: bool,
    pub attempts: u32,
    pub status: tonic::Status,
}

/// A cheap-to-clone handle on one gRPC channel to the endpoint.
#[derive(Debug, Clone)]
pub struct OtlpClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: MetricsServiceClient<Channel>,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Duration,
    retry: RetryConfig,
    stats: Arc<ExportStats>,
    endpoint: String,
    /// Set while the endpoint fails retryably, so the outage is logged once, not per attempt.
    down: AtomicBool,
    rng: AtomicU64,
    /// Set by [`OtlpClient::expedite_retries`].
    hurry: AtomicBool,
    wake: Notify,
}

impl OtlpClient {
    /// Builds the client. The connection is made lazily on the first export (so the endpoint
    /// may be down now); must be called inside a tokio runtime.
    pub fn new(config: &ClientConfig, stats: Arc<ExportStats>) -> Result<Self, ClientError> {
        let endpoint_str = config.endpoint.trim().to_owned();
        let https = if endpoint_str.starts_with("https://") {
            true
        } else if endpoint_str.starts_with("http://") {
            false
        } else {
            return Err(ClientError::UnsupportedScheme {
                endpoint: endpoint_str,
            });
        };
        let mut endpoint = Endpoint::from_shared(endpoint_str.clone())
            .map_err(|source| ClientError::InvalidEndpoint {
                endpoint: endpoint_str.clone(),
                source,
            })?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true);
        if https {
            endpoint = endpoint
                .tls_config(client_tls(&config.tls)?)
                .map_err(|source| ClientError::Tls { source })?;
        } else if config.tls.is_set() {
            return Err(ClientError::TlsWithoutHttps {
                endpoint: endpoint_str,
            });
        }
        let mut client = MetricsServiceClient::new(endpoint.connect_lazy());
        if config.gzip {
            client = client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        let headers = config
            .headers
            .iter()
            .map(|(name, value)| {
                let key = AsciiMetadataKey::from_str(&name.trim().to_ascii_lowercase())
                    .map_err(|_| ClientError::InvalidHeaderName { name: name.clone() })?;
                let value = AsciiMetadataValue::from_str(value.trim())
                    .map_err(|_| ClientError::InvalidHeaderValue { name: name.clone() })?;
                Ok((key, value))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                headers,
                timeout: config.timeout,
                retry: config.retry.clone(),
                stats,
                endpoint: endpoint_str,
                down: AtomicBool::new(false),
                rng: AtomicU64::new(std::collections::hash_map::RandomState::new().hash_one(0u8)),
                hurry: AtomicBool::new(false),
                wake: Notify::new(),
            }),
        })
    }

    pub fn stats(&self) -> &Arc<ExportStats> {
        &self.inner.stats
    }

    /// For shutdown: retries waiting in a backoff go now, and later waits are capped at 1 s
    /// (a server's RetryInfo delay included), so a grace period is spent trying rather than
    /// sleeping. Irreversible for this client and its clones.
    pub fn expedite_retries(&self) {
        self.inner.hurry.store(true, Ordering::SeqCst);
        self.inner.wake.notify_waiters();
    }

    /// Sends one request, retrying per the policy in the module doc. Every attempt is counted
    /// in the stats; on failure the request's points are counted in `points_failed`.
    pub async fn export(
        &self,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportSuccess, ExportError> {
        let inner = &*self.inner;
        let points = point_count(&request);
        let mut attempts: u32 = 0;
        let mut backoff = inner.retry.initial_backoff;
        loop {
            attempts = attempts.saturating_add(1);
            let status = match self.attempt(request.clone()).await {
                Ok(success) => {
                    if inner.down.swap(false, Ordering::Relaxed) {
                        info!(endpoint = %inner.endpoint, attempts, "OTLP endpoint reachable again");
                    }
                    return Ok(ExportSuccess {
                        attempts,
                        points,
                        ..success
                    });
                }
                Err(status) => status,
            };
            let reason = if status.code() == tonic::Code::DeadlineExceeded
                && status.message() == TIMEOUT_MESSAGE
            {
                FailureReason::Timeout
            } else {
                FailureReason::from_code(status.code())
            };
            inner.stats.request_failed(reason);
            let retry_delay = retry_delay(&status);
            let retryable = is_retryable(status.code(), retry_delay.is_some());
            let exhausted = inner.retry.max_attempts.is_some_and(|max| attempts >= max);
            if !retryable || exhausted {
                inner.stats.points_failed(points);
                warn!(
                    endpoint = %inner.endpoint,
                    reason = reason.as_str(),
                    attempts,
                    points,
                    error = %status.message(),
                    "OTLP export failed, points dropped"
                );
                return Err(ExportError {
                    reason,
                    retryable,
                    attempts,
                    status,
                });
            }
            if !inner.down.swap(true, Ordering::Relaxed) {
                warn!(
                    endpoint = %inner.endpoint,
                    reason = reason.as_str(),
                    error = %status.message(),
                    "OTLP export failed, retrying until the endpoint accepts it"
                );
            }
            // Register for a wake-up before reading the flag, so an expedite_retries() call
            // between the two is not missed.
            let mut woken = std::pin::pin!(inner.wake.notified());
            woken.as_mut().enable();
            let mut wait = match retry_delay {
                Some(d) => d,
                None => self.jittered(backoff),
            };
            if inner.hurry.load(Ordering::SeqCst) {
                wait = wait.min(HURRY_MAX_WAIT);
            }
            debug!(
                reason = reason.as_str(),
                attempts,
                wait_ms = wait.as_millis() as u64,
                "retrying OTLP export"
            );
            let _ = tokio::time::timeout(wait, woken).await;
            inner.stats.retry(retry_delay.is_some());
            backoff = backoff
                .saturating_mul(inner.retry.multiplier.max(1))
                .min(inner.retry.max_backoff);
        }
    }

    async fn attempt(
        &self,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportSuccess, tonic::Status> {
        let inner = &*self.inner;
        let points = point_count(&request);
        let mut req = tonic::Request::new(request);
        for (k, v) in &inner.headers {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        req.set_timeout(inner.timeout);
        let mut client = inner.client.clone();
        let response = match tokio::time::timeout(inner.timeout, client.export(req)).await {
            Ok(r) => r?.into_inner(),
            Err(_) => return Err(tonic::Status::deadline_exceeded(TIMEOUT_MESSAGE)),
        };
        inner.stats.request_ok(points);
        let (rejected, message) = match response.partial_success {
            Some(p) => (
                u64::try_from(p.rejected_data_points).unwrap_or(0),
                p.error_message,
            ),
            None => (0, String::new()),
        };
        if rejected > 0 || !message.is_empty() {
            inner.stats.partial_success(rejected);
            warn!(
                endpoint = %inner.endpoint,
                rejected_points = rejected,
                points,
                error = %message,
                "OTLP endpoint rejected part of an export"
            );
        }
        Ok(ExportSuccess {
            attempts: 1,
            points,
            rejected_points: rejected,
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

/// Longest wait between attempts once [`OtlpClient::expedite_retries`] was called.
const HURRY_MAX_WAIT: Duration = Duration::from_secs(1);

const TIMEOUT_MESSAGE: &str = "flowtel: OTLP request timed out";

/// OTLP specification, "OTLP/gRPC" > "Failures" and "OTLP/gRPC Throttling".
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

/// The `google.rpc.RetryInfo.retry_delay` in the status details, if any.
fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    status.get_details_retry_info()?.retry_delay
}

fn client_tls(tls: &TlsConfig) -> Result<ClientTlsConfig, ClientError> {
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca_pem {
        Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
        None => config.with_native_roots(),
    };
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => config = config.identity(Identity::from_pem(cert, key)),
        (None, None) => {}
        _ => return Err(ClientError::IncompleteClientIdentity),
    }
    if let Some(domain) = &tls.domain_name {
        config = config.domain_name(domain.clone());
    }
    Ok(config)
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
        }
    }

    #[tokio::test]
    async fn config_errors_are_reported() {
        let stats = Arc::new(ExportStats::default());
        let build = |c: ClientConfig| OtlpClient::new(&c, stats.clone()).err();
        let base = ClientConfig::default();
        assert!(matches!(
            build(ClientConfig {
                endpoint: "localhost:4317".into(),
                ..base.clone()
            }),
            Some(ClientError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            build(ClientConfig {
                tls: TlsConfig {
                    ca_pem: Some(b"x".to_vec()),
                    ..Default::default()
                },
                ..base.clone()
            }),
            Some(ClientError::TlsWithoutHttps { .. })
        ));
        assert!(matches!(
            build(ClientConfig {
                endpoint: "https://localhost:4317".into(),
                tls: TlsConfig {
                    ca_pem: Some(b"x".to_vec()),
                    client_cert_pem: Some(b"x".to_vec()),
                    ..Default::default()
                },
                ..base.clone()
            }),
            Some(ClientError::IncompleteClientIdentity)
        ));
        assert!(matches!(
            build(ClientConfig {
                headers: vec![("bad header".into(), "v".into())],
                ..base.clone()
            }),
            Some(ClientError::InvalidHeaderName { .. })
        ));
        assert!(matches!(
            build(ClientConfig {
                headers: vec![("authorization".into(), "line\nbreak".into())],
                ..base.clone()
            }),
            Some(ClientError::InvalidHeaderValue { .. })
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
        let client = OtlpClient::new(&config, Arc::default()).expect("client");
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
