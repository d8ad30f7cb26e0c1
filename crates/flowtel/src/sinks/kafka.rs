//! The `kafka` sink: every selected flow record as one Kafka record, for a collection tier that
//! publishes to Kafka and a storage tier (ClickHouse, Elasticsearch) that consumes it.
//!
//! # What a record is
//!
//! - **value**: with `format: protobuf` (the default), one `flowtel.flow.v1.FlowMessage`
//!   preceded by its varint length — goflow2's `-format=bin` framing, which ClickHouse's
//!   `Protobuf` format (`kafka_format = 'Protobuf'`, `deploy/clickhouse/02-kafka.sql`) reads;
//!   with `format: json`, the goflow2-style JSON object of [`flowtel_records::json`] without the
//!   newline.
//! - **key**: the exporter's IP address as text (`192.0.2.1`, `2001:db8::1`), the address the
//!   datagram came from. The partition is the Java client's default for a keyed record,
//!   `(murmur2(key) & 0x7fffffff) % partitions` ([`murmur2`], Kafka's `Utils.murmur2`), so one
//!   exporter's records stay in order in one partition and any Kafka client agrees on where a
//!   key goes.
//! - **timestamp**: the flow's receive time (`CreateTime`, milliseconds).
//!
//! # Delivery
//!
//! The sink is a [`RecordSink`]: records wait in its bounded queue (`flow_records.
//! queue_max_records`; beyond it they are dropped and counted, `queue_full`) and are taken in
//! batches of `flow_records.batch_max_records`, or fewer once the oldest has waited
//! `kafka.linger_ms` (default: `flow_records.batch_max_age_ms`). A batch is split by partition
//! and, within a partition, into produce requests of at most `kafka.batch_max_bytes` of keys
//! and values; the partitions' requests go out concurrently, each partition's in order. A
//! request that fails for a reason worth retrying (broker down, leader moving, topic missing,
//! timeout) stops its partition; the batch is retried with backoff by the [`RecordSink`], and a
//! retry sends only what was not acknowledged. A request the broker refuses for good (record
//! too large, invalid, compression unsupported) is dropped and counted (`failed`).
//!
//! The client is rskafka (pure Rust, tokio, rustls). It always produces with `acks=all` (the
//! leader answers once every in-sync replica has the batch) and without idempotence, so
//! delivery is at least once: a request whose acknowledgement is lost (the connection breaks
//! after the broker wrote it) is sent again. `kafka.acks` accepts `all` (`-1`) only and says so.
//!
//! # Connection and metadata
//!
//! A task of the sink's own connects to the brokers (TLS and SASL as configured), reads the
//! topic's partitions, opens one client per partition (each follows its leader), and reads the
//! metadata again every `metadata_refresh_ms` to pick up added partitions; it retries within
//! 5 s while the brokers cannot be reached or the topic is missing, and with `create_topic` it
//! creates the topic. Deliveries wait for it (in the queue) and wake it when a request fails.
//! Nothing here runs on a receive worker or the flush loop: [`Sink::records`] only queues.
//!
//! # Configuration
//!
//! The `kafka:` section ([`KafkaConfig`]) names its security settings like the Kafka clients
//! (`security_protocol`, `sasl_mechanism`, `ssl_ca_location`, ...), and `kafka.properties`
//! takes client properties by their usual names (`linger.ms`, `compression.type`,
//! `security.protocol`, `sasl.username`, ...): each one with an equivalent here sets that key
//! ([`PROPERTIES`](crate::config::kafka::PROPERTIES)), any other is refused with the list.
//! TLS follows the OTLP exporter's rules (`flowtel_otlp::channel`): a CA replaces the system
//! roots, a client certificate needs its key, every PEM is checked when the sink starts.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use flowtel_records::RecordEncoder;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{info, warn};

use super::records::{Batching, Deliver, DeliverFuture, DeliveryError, RecordSink};
use super::{Records, ShutdownFuture, Sink, SinkStatus};
use crate::config::Config;
use crate::config::kafka::{KafkaCompression, KafkaConfig, KafkaFormat, SaslMechanism};
use crate::telemetry::Family;

impl KafkaCompression {
    fn client(self) -> Compression {
        match self {
            Self::None => Compression::NoCompression,
            Self::Gzip => Compression::Gzip,
            Self::Lz4 => Compression::Lz4,
            Self::Snappy => Compression::Snappy,
            Self::Zstd => Compression::Zstd,
        }
    }
}

/// Kafka's `Utils.murmur2` (the Java client's partitioner hash): MurmurHash2, 32 bits, seed
/// `0x9747b28c`, little-endian 4-byte blocks.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if let Some(&b) = tail.get(2) {
        h ^= u32::from(b) << 16;
    }
    if let Some(&b) = tail.get(1) {
        h ^= u32::from(b) << 8;
    }
    if let Some(&b) = tail.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java client's partition of a keyed record: `toPositive(murmur2(key)) % partitions`.
pub fn partition_for(key: &[u8], partitions: usize) -> usize {
    let positive = (murmur2(key) & 0x7fff_ffff) as usize;
    positive % partitions.max(1)
}

/// The kafka sink's own metrics' reasons for a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReason {
    /// No broker could be reached or spoken to (refused, unreachable, protocol mismatch).
    Connect,
    /// The TLS handshake failed (certificate not trusted, expired, for another name).
    TlsHandshake,
    /// SASL authentication failed, or the broker denied the topic (authorization).
    Auth,
    /// The topic does not exist.
    UnknownTopic,
    /// No answer within `request_timeout_ms`.
    Timeout,
    /// The connection broke during a request.
    Transport,
    /// A broker error worth retrying (leader moving, not enough replicas, ...).
    Broker,
    /// The broker refused the records for good (too large, invalid, compression unsupported).
    Rejected,
}

impl ErrorReason {
    pub const ALL: [ErrorReason; 8] = [
        Self::Connect,
        Self::TlsHandshake,
        Self::Auth,
        Self::UnknownTopic,
        Self::Timeout,
        Self::Transport,
        Self::Broker,
        Self::Rejected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::TlsHandshake => "tls_handshake",
            Self::Auth => "auth",
            Self::UnknownTopic => "unknown_topic",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::Broker => "broker",
            Self::Rejected => "rejected",
        }
    }

    /// Whether the brokers answered (the connection is fine).
    fn brokers_answered(self) -> bool {
        matches!(self, Self::UnknownTopic | Self::Broker | Self::Rejected)
    }
}

/// A failed request: why, whether to retry, and what the client said.
#[derive(Debug, Clone)]
struct Failure {
    reason: ErrorReason,
    retryable: bool,
    message: String,
}

/// What an rskafka error means here.
fn classify(e: &KafkaError, tls: bool) -> Failure {
    let message = e.to_string();
    let (reason, retryable) = match e {
        KafkaError::Connection(c) => match c {
            rskafka::ConnectionError::SaslFailed(_) => (ErrorReason::Auth, true),
            _ if tls && looks_like_tls(&message) => (ErrorReason::TlsHandshake, true),
            _ => (ErrorReason::Connect, true),
        },
        KafkaError::Request(_) => (ErrorReason::Transport, true),
        KafkaError::Timeout => (ErrorReason::Timeout, true),
        KafkaError::RetryFailed(rskafka::BackoffError::DeadlineExceded { source, .. }) => {
            // rskafka retried within its own deadline: the last error says why.
            match source.downcast_ref::<KafkaError>() {
                Some(inner) => {
                    return Failure {
                        message,
                        ..classify(inner, tls)
                    };
                }
                None => (ErrorReason::Connect, true),
            }
        }
        KafkaError::ServerError { protocol_error, .. } => server_error(protocol_error),
        _ => (ErrorReason::Broker, true),
    };
    Failure {
        reason,
        retryable,
        message,
    }
}

/// A Kafka error code: retried, or refused for good (Kafka protocol guide, "Error Codes").
fn server_error(e: &ProtocolError) -> (ErrorReason, bool) {
    use ProtocolError as P;
    match e {
        P::UnknownTopicOrPartition | P::InvalidTopicException => (ErrorReason::UnknownTopic, true),
        P::MessageTooLarge
        | P::RecordListTooLarge
        | P::InvalidRecord
        | P::CorruptMessage
        | P::InvalidTimestamp
        | P::UnsupportedCompressionType
        | P::UnsupportedForMessageFormat
        | P::InvalidRequiredAcks
        | P::PolicyViolation => (ErrorReason::Rejected, false),
        P::TopicAuthorizationFailed
        | P::ClusterAuthorizationFailed
        | P::SaslAuthenticationFailed
        | P::UnsupportedSaslMechanism
        | P::IllegalSaslState => (ErrorReason::Auth, true),
        _ => (ErrorReason::Broker, true),
    }
}

/// rskafka reports a failed handshake as the connection's I/O error, in words.
fn looks_like_tls(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "certificate",
        "handshake",
        "alert",
        "tls",
        "peer is incompatible",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// The kafka sink's counters (`flowtel.kafka.*`).
#[derive(Debug, Default)]
pub struct KafkaStats {
    connected: AtomicU64,
    partitions: AtomicU64,
    errors: [AtomicU64; ErrorReason::ALL.len()],
    requests: AtomicU64,
    produce_us: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
}

impl KafkaStats {
    fn error(&self, reason: ErrorReason) {
        if let Some(i) = ErrorReason::ALL.iter().position(|r| *r == reason) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
        self.connected
            .store(u64::from(reason.brokers_answered()), Ordering::Relaxed);
    }

    fn answered(&self) {
        self.connected.store(1, Ordering::Relaxed);
    }

    /// The `flowtel.kafka.*` families.
    pub fn families(&self) -> Vec<Family> {
        use crate::metrics::{
            KAFKA_CONNECTED, KAFKA_ERRORS, KAFKA_PARTITIONS, KAFKA_PRODUCE_REQUESTS,
            KAFKA_PRODUCE_TIME, KAFKA_PRODUCED_BYTES, KAFKA_PRODUCED_RECORDS,
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut errors = KAFKA_ERRORS.family();
        for (r, n) in ErrorReason::ALL.iter().zip(&self.errors) {
            errors.push(vec![("reason", r.name().to_owned())], get(n));
        }
        vec![
            KAFKA_CONNECTED.value(get(&self.connected)),
            KAFKA_PARTITIONS.value(get(&self.partitions)),
            errors,
            KAFKA_PRODUCE_REQUESTS.value(get(&self.requests)),
            KAFKA_PRODUCE_TIME.value(get(&self.produce_us)),
            KAFKA_PRODUCED_RECORDS.value(get(&self.records)),
            KAFKA_PRODUCED_BYTES.value(get(&self.bytes)),
        ]
    }
}

/// The sink's settings, resolved: PEM read and checked, SASL credentials built.
#[derive(Clone)]
pub struct Settings {
    brokers: Vec<String>,
    topic: String,
    format: KafkaFormat,
    compression: Compression,
    client_id: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<SaslConfig>,
    batch_max_bytes: usize,
    request_timeout: Duration,
    metadata_refresh: Duration,
    /// Partitions and replication factor of a topic to create, with `create_topic`.
    create_topic: Option<(i32, i16)>,
    batching: Batching,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Everything the sink needs from the configuration; reads and checks the TLS files
    /// (errors name the setting and the file).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let k = &config.kafka;
        k.validate(true)?;
        let tls = if k.security_protocol.tls() {
            Some(Arc::new(tls_config(k)?))
        } else {
            None
        };
        let sasl = if k.security_protocol.sasl() {
            let credentials = Credentials::new(
                k.sasl_username.clone().unwrap_or_default(),
                k.sasl_password.clone().unwrap_or_default(),
            );
            Some(match k.sasl_mechanism {
                SaslMechanism::Plain => SaslConfig::Plain(credentials),
                SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
                SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
            })
        } else {
            None
        };
        let mut batching = config.flow_records.batching();
        if let Some(ms) = k.linger_ms {
            batching.batch_max_age = Duration::from_millis(ms);
        }
        Ok(Settings {
            brokers: k.brokers.iter().map(|b| b.trim().to_owned()).collect(),
            topic: k.topic.clone(),
            format: k.format,
            compression: k.compression.client(),
            client_id: k.client_id.clone(),
            tls,
            sasl,
            batch_max_bytes: k.batch_max_bytes,
            request_timeout: Duration::from_millis(k.request_timeout_ms),
            metadata_refresh: Duration::from_millis(k.metadata_refresh_ms),
            create_topic: k.create_topic.then(|| {
                (
                    i32::try_from(k.create_topic_partitions).unwrap_or(i32::MAX),
                    i16::try_from(k.create_topic_replication_factor).unwrap_or(i16::MAX),
                )
            }),
            batching,
        })
    }

    fn client_builder(&self) -> ClientBuilder {
        let mut b = ClientBuilder::new(self.brokers.clone())
            .client_id(self.client_id.as_str())
            // rskafka retries a failed request within this deadline, then returns the error:
            // the sink's own backoff (and queue) takes over from there.
            .backoff_config(rskafka::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 3.0,
                deadline: Some(Duration::from_secs(2)),
            });
        if let Some(tls) = &self.tls {
            b = b.tls_config(Arc::clone(tls));
        }
        if let Some(sasl) = &self.sasl {
            b = b.sasl_config(sasl.clone());
        }
        b
    }
}

/// The rustls configuration of `ssl.*`, by the OTLP exporter's rules (a CA replaces the system
/// roots; certificate and key together; PEM checked).
fn tls_config(k: &KafkaConfig) -> anyhow::Result<rustls::ClientConfig> {
    use flowtel_otlp::TlsSetting;
    let name = |s: TlsSetting| match s {
        TlsSetting::Ca => "kafka.ssl_ca_location (ssl.ca.location)",
        TlsSetting::ClientCert => "kafka.ssl_certificate_location (ssl.certificate.location)",
        TlsSetting::ClientKey => "kafka.ssl_key_location (ssl.key.location)",
        TlsSetting::DomainName => "the TLS server name",
    };
    let path = |s: TlsSetting| match s {
        TlsSetting::Ca => k.ssl_ca_location.as_deref(),
        TlsSetting::ClientCert => k.ssl_certificate_location.as_deref(),
        TlsSetting::ClientKey => k.ssl_key_location.as_deref(),
        TlsSetting::DomainName => None,
    };
    let read = |s: TlsSetting| -> anyhow::Result<Option<Vec<u8>>> {
        path(s)
            .map(|p| {
                std::fs::read(p).with_context(|| format!("cannot read {} {}", name(s), p.display()))
            })
            .transpose()
    };
    let tls = flowtel_otlp::TlsConfig {
        ca_pem: read(TlsSetting::Ca)?,
        client_cert_pem: read(TlsSetting::ClientCert)?,
        client_key_pem: read(TlsSetting::ClientKey)?,
        domain_name: None,
    };
    flowtel_otlp::tls_client_config(&tls).map_err(|e| {
        use flowtel_otlp::ChannelError as E;
        match e {
            E::Pem { setting, problem } => {
                let p = path(setting).map_or_else(String::new, |p| p.display().to_string());
                anyhow::anyhow!("{} {p}: {problem}", name(setting))
            }
            E::KeyMismatch => anyhow::anyhow!(
                "kafka.ssl_certificate_location and kafka.ssl_key_location do not match: the key is not the certificate's"
            ),
            E::NoSystemRoots => anyhow::anyhow!(
                "kafka: no system root certificate found to verify the brokers: set kafka.ssl_ca_location (or SSL_CERT_FILE)"
            ),
            other => anyhow::Error::new(other).context("kafka TLS settings"),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The connection: brokers, metadata, one client per partition.

/// What the connection task publishes for deliveries.
#[derive(Debug, Default)]
struct LinkState {
    /// One client per partition, by partition id; `None` until the topic is known.
    partitions: Option<Arc<[Arc<PartitionClient>]>>,
    /// Why there are none (for the delivery error).
    problem: String,
}

#[derive(Debug, Default)]
struct Link {
    state: Mutex<LinkState>,
    /// Wakes the task: refresh now.
    refresh: Notify,
    /// The task tells the deliveries: the brokers answer again (see [`Deliver::recovered`]).
    recovered: Arc<Notify>,
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn partitions(&self) -> Result<Arc<[Arc<PartitionClient>]>, String> {
        let s = self.lock();
        s.partitions.clone().ok_or_else(|| s.problem.clone())
    }
}

/// An rskafka call with the request deadline; a missed deadline is `Error::Timeout`.
async fn timed<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, KafkaError>>,
) -> Result<T, KafkaError> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or(Err(KafkaError::Timeout))
}

/// The connection task: connect, read the topic's partitions, open their clients; again every
/// `metadata_refresh`, or within 5 s while it fails, or when a delivery asks.
async fn maintain(link: Arc<Link>, s: Arc<Settings>, stats: Arc<KafkaStats>) {
    let mut client: Option<rskafka::client::Client> = None;
    let mut parts: Vec<Arc<PartitionClient>> = Vec::new();
    let mut failing: Option<(Instant, Instant)> = None; // (since, last log)
    let mut retry = Duration::from_millis(250);
    let brokers = s.brokers.join(",");
    loop {
        let outcome = refresh(&mut client, &mut parts, &s).await;
        let wait = match outcome {
            Ok(changed) => {
                stats.answered();
                stats
                    .partitions
                    .store(parts.len() as u64, Ordering::Relaxed);
                {
                    let mut st = link.lock();
                    st.partitions = Some(parts.iter().cloned().collect());
                    st.problem.clear();
                }
                if failing.is_some() || changed {
                    link.recovered.notify_one();
                }
                if let Some((since, _)) = failing.take() {
                    info!(
                        sink = "kafka",
                        brokers = %brokers,
                        topic = %s.topic,
                        partitions = parts.len(),
                        after_secs = since.elapsed().as_secs(),
                        "Kafka brokers reachable again"
                    );
                } else if changed {
                    info!(
                        sink = "kafka",
                        brokers = %brokers,
                        topic = %s.topic,
                        partitions = parts.len(),
                        "producing to Kafka"
                    );
                }
                retry = Duration::from_millis(250);
                s.metadata_refresh
            }
            Err(f) => {
                stats.error(f.reason);
                let problem = match f.reason {
                    ErrorReason::UnknownTopic => format!(
                        "Kafka topic {:?} does not exist (create it, or set kafka.create_topic): {}",
                        s.topic, f.message
                    ),
                    _ => format!("cannot reach the Kafka brokers {brokers}: {}", f.message),
                };
                {
                    let mut st = link.lock();
                    if f.reason == ErrorReason::UnknownTopic {
                        st.partitions = None;
                    }
                    st.problem.clone_from(&problem);
                }
                if !f.reason.brokers_answered() {
                    // Build the client again: new connections from the bootstrap brokers.
                    client = None;
                    parts.clear();
                }
                let now = Instant::now();
                match &mut failing {
                    None => {
                        warn!(sink = "kafka", reason = f.reason.name(), error = %problem, "Kafka not available; records wait in the queue");
                        failing = Some((now, now));
                    }
                    Some((since, last)) if now.duration_since(*last) >= Duration::from_secs(30) => {
                        warn!(
                            sink = "kafka",
                            reason = f.reason.name(),
                            error = %problem,
                            failing_secs = since.elapsed().as_secs(),
                            "Kafka still not available"
                        );
                        *last = now;
                    }
                    Some(_) => {}
                }
                let w = retry;
                retry = (retry * 2).min(Duration::from_secs(5));
                w
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = link.refresh.notified() => {}
        }
    }
}

/// One refresh; `Ok(true)` when the partitions changed.
async fn refresh(
    client: &mut Option<rskafka::client::Client>,
    parts: &mut Vec<Arc<PartitionClient>>,
    s: &Settings,
) -> Result<bool, Failure> {
    let tls = s.tls.is_some();
    let fail = |e: KafkaError| classify(&e, tls);
    if client.is_none() {
        let c = timed(s.request_timeout, s.client_builder().build())
            .await
            .map_err(fail)?;
        *client = Some(c);
        parts.clear();
    }
    let Some(c) = client.as_ref() else {
        return Err(Failure {
            reason: ErrorReason::Connect,
            retryable: true,
            message: "no client".to_owned(),
        });
    };
    let mut created = false;
    let topic = loop {
        let topics = timed(s.request_timeout, c.list_topics())
            .await
            .map_err(fail)?;
        match topics.into_iter().find(|t| t.name == s.topic) {
            Some(t) => break t,
            None => match s.create_topic {
                Some((partitions, replication)) if !created => {
                    let controller = c.controller_client().map_err(fail)?;
                    let timeout_ms =
                        i32::try_from(s.request_timeout.as_millis()).unwrap_or(i32::MAX);
                    match timed(
                        s.request_timeout,
                        controller.create_topic(&s.topic, partitions, replication, timeout_ms),
                    )
                    .await
                    {
                        Ok(()) => {
                            info!(sink = "kafka", topic = %s.topic, partitions, replication, "created the Kafka topic")
                        }
                        Err(KafkaError::ServerError {
                            protocol_error: ProtocolError::TopicAlreadyExists,
                            ..
                        }) => {}
                        Err(e) => return Err(fail(e)),
                    }
                    created = true;
                }
                _ => {
                    return Err(Failure {
                        reason: ErrorReason::UnknownTopic,
                        retryable: true,
                        message: "not in the cluster's metadata".to_owned(),
                    });
                }
            },
        }
    };
    // Kafka numbers a topic's partitions 0..n.
    let n = topic.partitions.iter().max().map_or(0, |m| *m as usize + 1);
    if n == parts.len() {
        return Ok(false);
    }
    if n < parts.len() {
        // Only a topic deleted and created again has fewer partitions.
        parts.clear();
    }
    for p in parts.len()..n {
        let id = i32::try_from(p).unwrap_or(i32::MAX);
        let pc = timed(
            s.request_timeout,
            c.partition_client(s.topic.clone(), id, UnknownTopicHandling::Error),
        )
        .await
        .map_err(fail)?;
        parts.push(Arc::new(pc));
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Delivery: a batch encoded once, split by partition and request size, sent until acknowledged.

/// Bytes a record costs in a batch beyond its key and value (length varints, attributes,
/// deltas: at most about 20), for the request size bound.
const RECORD_OVERHEAD: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Done,
    Rejected,
}

/// One encoded record: its key (an index into [`Encoded::keys`]), where its value ends in its
/// partition's buffer (it starts where the previous one ends), its timestamp.
#[derive(Debug, Clone, Copy)]
struct Enc {
    key: u32,
    end: usize,
    timestamp_ms: i64,
}

/// One produce request's records.
#[derive(Debug, Clone)]
struct Request {
    records: Range<usize>,
    state: State,
}

#[derive(Debug, Default)]
struct Part {
    values: Vec<u8>,
    records: Vec<Enc>,
    requests: Vec<Request>,
}

impl Part {
    fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.records[i - 1].end };
        &self.values[start..self.records[i].end]
    }
}

/// A batch, encoded, and how far its delivery got.
#[derive(Debug, Default)]
struct Encoded {
    /// The batch's first pass (kept, so its address is not reused) and number of passes.
    first: Option<Records>,
    passes: usize,
    records: u64,
    /// Keys (exporter addresses as text) and their partition.
    keys: Vec<(Vec<u8>, usize)>,
    key_index: HashMap<IpAddr, u32>,
    parts: Vec<Part>,
    json: String,
}

impl Encoded {
    fn is(&self, batch: &[Records]) -> bool {
        match (&self.first, batch.first()) {
            (Some(a), Some(b)) => self.passes == batch.len() && Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    fn encode(
        &mut self,
        batch: &[Records],
        partitions: usize,
        format: KafkaFormat,
        max_bytes: usize,
        encoder: &mut RecordEncoder,
    ) {
        self.first = batch.first().cloned();
        self.passes = batch.len();
        self.records = 0;
        self.keys.clear();
        self.key_index.clear();
        self.parts.resize_with(partitions, Part::default);
        self.parts.truncate(partitions);
        for p in &mut self.parts {
            p.values.clear();
            p.records.clear();
            p.requests.clear();
        }
        let mut last: Option<(IpAddr, u32)> = None;
        for r in batch.iter().flat_map(|pass| pass.iter()) {
            let ip = r.record.exporter.ip().to_canonical();
            let key = match last {
                Some((a, k)) if a == ip => k,
                _ => {
                    let keys = &mut self.keys;
                    let k = *self.key_index.entry(ip).or_insert_with(|| {
                        let text = ip.to_string().into_bytes();
                        let partition = partition_for(&text, partitions);
                        keys.push((text, partition));
                        (keys.len() - 1) as u32
                    });
                    last = Some((ip, k));
                    k
                }
            };
            let Some(part) = self
                .keys
                .get(key as usize)
                .and_then(|(_, p)| self.parts.get_mut(*p))
            else {
                continue;
            };
            match format {
                KafkaFormat::Protobuf => encoder.protobuf_delimited(r, &mut part.values),
                KafkaFormat::Json => {
                    self.json.clear();
                    encoder.json_line(r, &mut self.json);
                    part.values
                        .extend_from_slice(self.json.trim_end_matches('\n').as_bytes());
                }
            }
            let ms = r.record.time_received_ns / 1_000_000;
            part.records.push(Enc {
                key,
                end: part.values.len(),
                timestamp_ms: i64::try_from(ms).unwrap_or(i64::MAX),
            });
            self.records += 1;
        }
        // Requests of at most `max_bytes` (a larger record alone).
        for p in &mut self.parts {
            let mut start = 0;
            let mut bytes = 0;
            for i in 0..p.records.len() {
                let key_len = self
                    .keys
                    .get(p.records[i].key as usize)
                    .map_or(0, |k| k.0.len());
                let size = p.value(i).len() + key_len + RECORD_OVERHEAD;
                if i > start && bytes + size > max_bytes {
                    p.requests.push(Request {
                        records: start..i,
                        state: State::Pending,
                    });
                    start = i;
                    bytes = 0;
                }
                bytes += size;
            }
            if start < p.records.len() {
                p.requests.push(Request {
                    records: start..p.records.len(),
                    state: State::Pending,
                });
            }
        }
    }

    /// The rskafka records of one request, and their key and value bytes.
    fn build(&self, part: &Part, req: &Request) -> (Vec<Record>, u64) {
        let mut out = Vec::with_capacity(req.records.len());
        let mut bytes = 0u64;
        for i in req.records.clone() {
            let e = part.records[i];
            let key = self.keys.get(e.key as usize).map(|k| k.0.clone());
            let value = part.value(i).to_vec();
            bytes += (key.as_ref().map_or(0, Vec::len) + value.len()) as u64;
            out.push(Record {
                key,
                value: Some(value),
                headers: BTreeMap::new(),
                timestamp: rskafka::chrono::DateTime::from_timestamp_millis(e.timestamp_ms)
                    .unwrap_or_default(),
            });
        }
        (out, bytes)
    }

    /// Records delivered and rejected so far.
    fn progress(&self) -> (u64, u64) {
        let mut done = 0;
        let mut rejected = 0;
        for p in &self.parts {
            for r in &p.requests {
                let n = r.records.len() as u64;
                match r.state {
                    State::Done => done += n,
                    State::Rejected => rejected += n,
                    State::Pending => {}
                }
            }
        }
        (done, rejected)
    }
}

/// The outcome of one produce request.
type Outcome = (usize, usize, u64, Result<Duration, Failure>);

/// Delivers batches to Kafka.
struct KafkaDeliver {
    settings: Arc<Settings>,
    link: Arc<Link>,
    stats: Arc<KafkaStats>,
    encoder: RecordEncoder,
    batch: Encoded,
}

impl KafkaDeliver {
    async fn send(&mut self, batch: &[Records]) -> Result<(), DeliveryError> {
        let partitions = self.link.partitions().map_err(DeliveryError::retryable)?;
        if partitions.is_empty() {
            return Err(DeliveryError::retryable(
                "the Kafka topic has no partitions",
            ));
        }
        if !self.batch.is(batch) {
            self.batch.encode(
                batch,
                partitions.len(),
                self.settings.format,
                self.settings.batch_max_bytes,
                &mut self.encoder,
            );
        }
        let tls = self.settings.tls.is_some();
        let compression = self.settings.compression;
        let limit = self.settings.request_timeout;
        let mut tasks = tokio::task::JoinSet::new();
        for (p, part) in self.batch.parts.iter().enumerate() {
            let pending: Vec<(usize, Vec<Record>, u64)> = part
                .requests
                .iter()
                .enumerate()
                .filter(|(_, r)| r.state == State::Pending)
                .map(|(i, r)| {
                    let (records, bytes) = self.batch.build(part, r);
                    (i, records, bytes)
                })
                .collect();
            if pending.is_empty() {
                continue;
            }
            // The partition count only grows; a topic made again with fewer takes the rest.
            let Some(client) = partitions.get(p % partitions.len()).cloned() else {
                continue;
            };
            tasks.spawn(async move {
                let mut out: Vec<Outcome> = Vec::new();
                for (i, records, bytes) in pending {
                    let started = Instant::now();
                    let r = timed(limit, client.produce(records, compression)).await;
                    let r = r.map(|_| started.elapsed()).map_err(|e| classify(&e, tls));
                    let stop = matches!(&r, Err(f) if f.retryable);
                    out.push((p, i, bytes, r));
                    if stop {
                        // The partition's later requests wait: records stay in order.
                        break;
                    }
                }
                out
            });
        }
        let mut retry: Option<Failure> = None;
        let mut rejected: Option<Failure> = None;
        while let Some(joined) = tasks.join_next().await {
            let Ok(outcomes) = joined else { continue };
            for (p, i, bytes, r) in outcomes {
                let Some(req) = self
                    .batch
                    .parts
                    .get_mut(p)
                    .and_then(|part| part.requests.get_mut(i))
                else {
                    continue;
                };
                match r {
                    Ok(took) => {
                        req.state = State::Done;
                        let s = &self.stats;
                        s.answered();
                        s.requests.fetch_add(1, Ordering::Relaxed);
                        s.produce_us.fetch_add(
                            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                            Ordering::Relaxed,
                        );
                        s.records
                            .fetch_add(req.records.len() as u64, Ordering::Relaxed);
                        s.bytes.fetch_add(bytes, Ordering::Relaxed);
                    }
                    Err(f) => {
                        self.stats.error(f.reason);
                        if f.retryable {
                            retry.get_or_insert(f);
                        } else {
                            req.state = State::Rejected;
                            warn!(
                                sink = "kafka",
                                partition = p,
                                records = req.records.len(),
                                error = %f.message,
                                "the broker refused records; they are dropped"
                            );
                            rejected.get_or_insert(f);
                        }
                    }
                }
            }
        }
        let (done, failed) = self.batch.progress();
        if let Some(f) = retry {
            if matches!(
                f.reason,
                ErrorReason::UnknownTopic
                    | ErrorReason::Connect
                    | ErrorReason::TlsHandshake
                    | ErrorReason::Auth
            ) {
                self.link.refresh.notify_one();
            }
            return Err(
                DeliveryError::retryable(format!("{}: {}", f.reason.name(), f.message))
                    .with_progress(done, failed),
            );
        }
        // The batch is settled.
        self.batch.first = None;
        match rejected {
            Some(f) => Err(
                DeliveryError::fatal(format!("{}: {}", f.reason.name(), f.message))
                    .with_progress(done, failed),
            ),
            None => Ok(()),
        }
    }
}

impl Deliver for KafkaDeliver {
    fn deliver<'a>(&'a mut self, batch: &'a [Records]) -> DeliverFuture<'a> {
        Box::pin(self.send(batch))
    }

    fn recovered(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.link.recovered))
    }
}

// ---------------------------------------------------------------------------------------------
// The sink.

/// The `kafka` sink: a [`RecordSink`] delivering to Kafka, its connection task, its metrics.
#[derive(Debug)]
pub struct KafkaSink {
    inner: RecordSink,
    stats: Arc<KafkaStats>,
    link: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The connection task's panic, if it panicked.
    link_panicked: flowtel_otlp::Panicked,
}

impl KafkaSink {
    /// Start the connection and delivery tasks (on the current tokio runtime). Fails on a
    /// configuration problem (TLS files), never because the brokers are down.
    pub fn start(config: &Config) -> anyhow::Result<Self> {
        let settings = Arc::new(Settings::from_config(config)?);
        let stats = Arc::new(KafkaStats::default());
        let link = Arc::new(Link::default());
        link.lock().problem = format!(
            "not connected to the Kafka brokers {} yet",
            settings.brokers.join(",")
        );
        let link_panicked = flowtel_otlp::Panicked::default();
        let task = flowtel_otlp::spawn_supervised(
            &link_panicked,
            maintain(Arc::clone(&link), Arc::clone(&settings), Arc::clone(&stats)),
        );
        info!(
            sink = "kafka",
            brokers = %settings.brokers.join(","),
            topic = %settings.topic,
            "publishing flow records to Kafka"
        );
        let deliver = KafkaDeliver {
            settings: Arc::clone(&settings),
            link,
            stats: Arc::clone(&stats),
            encoder: RecordEncoder::new(),
            batch: Encoded::default(),
        };
        Ok(KafkaSink {
            inner: RecordSink::start("kafka", settings.batching, deliver),
            stats,
            link: Mutex::new(Some(task)),
            link_panicked,
        })
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        "kafka"
    }

    fn takes_records(&self) -> bool {
        true
    }

    fn records(&self, records: &Records) {
        self.inner.records(records);
    }

    fn status(&self) -> SinkStatus {
        self.inner.status()
    }

    fn panicked(&self) -> Option<String> {
        self.inner.panicked().or_else(|| self.link_panicked.get())
    }

    fn families(&self) -> Vec<Family> {
        self.stats.families()
    }

    fn shutdown(&self, deadline: tokio::time::Instant) -> ShutdownFuture<'_> {
        Box::pin(async move {
            self.inner.shutdown(deadline).await;
            let task = self.link.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(t) = task {
                t.abort();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::REDACTED;
    use crate::config::kafka::SecurityProtocol;

    #[test]
    fn murmur2_matches_the_java_clients_hash() {
        // Apache Kafka's UtilsTest.testMurmur2: the Java implementation's results.
        for (key, expected) in [
            (&b"21"[..], -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ] {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
        // toPositive, then modulo: "abc" is positive already, "21" loses its sign bit.
        assert_eq!(partition_for(b"abc", 7), 479_470_107 % 7);
        assert_eq!(
            partition_for(b"21", 10),
            ((-973_932_308i32 & 0x7fff_ffff) % 10) as usize
        );
    }

    fn kafka(yaml: &str) -> anyhow::Result<KafkaConfig> {
        let mut k: KafkaConfig = serde_yaml::from_str(yaml)?;
        k.apply_properties()?;
        k.validate(true)?;
        Ok(k)
    }

    #[test]
    fn properties_set_the_keys_they_name() {
        let k = kafka(
            "brokers: [a:9092]\nproperties:\n  bootstrap.servers: 'k1:9092, k2:9093'\n  linger.ms: 50\n  compression.type: ZSTD\n  acks: -1\n  batch.size: 65536\n  security.protocol: sasl_ssl\n  sasl.mechanism: SCRAM-SHA-512\n  sasl.username: flowtel\n  sasl.password: s3cret\n  ssl.ca.location: /etc/ca.pem\n  enable.idempotence: false\n  client.id: edge-collector\n  request.timeout.ms: 5000\n  metadata.max.age.ms: 10000\n",
        )
        .unwrap();
        assert_eq!(k.brokers, vec!["k1:9092", "k2:9093"]);
        assert_eq!(k.linger_ms, Some(50));
        assert_eq!(k.compression, KafkaCompression::Zstd);
        assert_eq!(k.batch_max_bytes, 65_536);
        assert_eq!(k.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(k.sasl_mechanism, SaslMechanism::ScramSha512);
        assert_eq!(k.sasl_username.as_deref(), Some("flowtel"));
        assert_eq!(k.sasl_password.as_deref(), Some("s3cret"));
        assert_eq!(k.ssl_ca_location, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(k.client_id, "edge-collector");
        assert_eq!(k.request_timeout_ms, 5_000);
        assert_eq!(k.metadata_refresh_ms, 10_000);
        assert!(k.properties.is_empty(), "applied properties are emptied");
        assert_eq!(k.redacted().sasl_password.as_deref(), Some(REDACTED));
    }

    #[test]
    fn unknown_and_unsupported_properties_are_refused_with_the_reason() {
        let err = |yaml: &str| kafka(yaml).unwrap_err().to_string();
        let e = err("brokers: [a:9092]\nproperties: {message.send.max.retries: 3}\n");
        assert!(e.starts_with("kafka.properties.message.send.max.retries: unknown or unsupported Kafka client property; supported: bootstrap.servers,"), "{e}");
        assert!(
            e.contains("linger.ms") && e.contains("sasl.password"),
            "{e}"
        );
        let e = err("brokers: [a:9092]\nproperties: {acks: 1}\n");
        assert!(
            e.contains("acks \"1\": only `all` (or -1) is supported"),
            "{e}"
        );
        let e = err("brokers: [a:9092]\nacks: 0\n");
        assert!(e.contains("only `all` (or -1) is supported"), "{e}");
        let e = err("brokers: [a:9092]\nproperties: {enable.idempotence: true}\n");
        assert!(e.contains("does not produce idempotently"), "{e}");
        let e = err("brokers: [a:9092]\nproperties: {batch.num.messages: 10}\n");
        assert!(e.contains("flow_records.batch_max_records"), "{e}");
        let e = err("brokers: [a:9092]\nproperties: {sasl.mechanism: GSSAPI}\n");
        assert!(
            e.contains("\"GSSAPI\" is not supported: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
            "{e}"
        );
        let e = err("brokers: [a:9092]\nproperties: {compression.type: brotli}\n");
        assert!(
            e.contains("expected none, gzip, lz4, snappy or zstd"),
            "{e}"
        );
    }

    #[test]
    fn tls_and_sasl_settings_must_go_together() {
        let err = |yaml: &str| kafka(yaml).unwrap_err().to_string();
        assert!(err("brokers: []\n").contains("needs at least one broker"));
        assert!(err("brokers: [kafka]\n").contains("is not HOST:PORT"));
        assert!(err("brokers: [\"kafka:0\"]\n").contains("is not a port number"));
        assert!(err("brokers: [a:9092]\ntopic: \"flows/v1\"\n").contains("'/' is not allowed"));
        let e = err("brokers: [a:9092]\nssl_ca_location: /ca.pem\n");
        assert!(
            e.contains("kafka.ssl_ca_location set, but kafka.security_protocol is PLAINTEXT"),
            "{e}"
        );
        let e =
            err("brokers: [a:9092]\nsecurity_protocol: SSL\nssl_certificate_location: /c.pem\n");
        assert!(e.contains("mutual TLS needs both"), "{e}");
        let e = err("brokers: [a:9092]\nsecurity_protocol: SASL_SSL\nsasl_username: u\n");
        assert!(
            e.contains("kafka.sasl_username and kafka.sasl_password are both needed"),
            "{e}"
        );
        let e = err("brokers: [a:9092]\nsasl_username: u\nsasl_password: p\n");
        assert!(e.contains("SASL needs SASL_PLAINTEXT or SASL_SSL"), "{e}");
        kafka("brokers: [\"[2001:db8::1]:9092\", k.example:9093]\nsecurity_protocol: sasl_plaintext\nsasl_username: u\nsasl_password: p\n").unwrap();
    }

    fn records(exporters: &[&str], per_exporter: usize) -> Records {
        use flowtel_decode::{FlowProtocol, FlowRecord};
        use flowtel_rollup::{EnrichConfig, Enricher};
        let mut e = Enricher::new(&EnrichConfig::default());
        let mut out = Vec::new();
        for (x, exporter) in exporters.iter().enumerate() {
            for i in 0..per_exporter {
                let mut r = FlowRecord::new(exporter.parse().unwrap(), FlowProtocol::Ipfix, 0);
                r.bytes = (x * 1000 + i) as u64;
                r.time_received_ns = 1_700_000_000_123_456_789;
                out.push(e.enrich(&r, None).to_record());
            }
        }
        Arc::new(out)
    }

    #[test]
    fn a_batch_is_split_by_exporter_partition_and_request_size() {
        let exporters = [
            "192.0.2.1:2055",
            "192.0.2.2:2055",
            "[2001:db8::9]:4739",
            "[::ffff:198.51.100.7]:9995",
        ];
        let batch = vec![records(&exporters, 50), records(&exporters[..1], 10)];
        let mut enc = Encoded::default();
        let mut encoder = RecordEncoder::new();
        enc.encode(&batch, 4, KafkaFormat::Protobuf, 2_000, &mut encoder);
        assert!(enc.is(&batch));
        assert!(!enc.is(&batch[..1]));
        assert_eq!(enc.records, 210);
        let keys: Vec<&[u8]> = enc.keys.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(
            keys,
            [
                &b"192.0.2.1"[..],
                b"192.0.2.2",
                b"2001:db8::9",
                b"198.51.100.7"
            ],
            "the exporter address as text, IPv4-mapped shown as IPv4"
        );
        for (k, p) in &enc.keys {
            assert_eq!(*p, partition_for(k, 4));
        }
        let mut total = 0;
        for part in &enc.parts {
            let mut next = 0;
            for req in &part.requests {
                assert_eq!(
                    req.records.start, next,
                    "requests cover the partition in order"
                );
                next = req.records.end;
                let (built, bytes) = enc.build(part, req);
                let size = bytes as usize + RECORD_OVERHEAD * built.len();
                assert!(size <= 2_000 || built.len() == 1, "{req:?}: {size}");
                assert_eq!(built.len(), req.records.len());
                assert_eq!(
                    bytes,
                    built
                        .iter()
                        .map(
                            |r| (r.key.as_ref().unwrap().len() + r.value.as_ref().unwrap().len())
                                as u64
                        )
                        .sum::<u64>()
                );
                for r in &built {
                    assert_eq!(r.timestamp.timestamp_millis(), 1_700_000_000_123);
                    // Each value is one length-delimited message of its exporter.
                    let value = r.value.as_ref().unwrap();
                    let m = flowtel_records::protobuf::DelimitedReader::new(value)
                        .map(|m| m.unwrap())
                        .collect::<Vec<_>>();
                    assert_eq!(m.len(), 1);
                    let exporter =
                        flowtel_records::message::addr_from_bytes(&m[0].exporter_address).unwrap();
                    assert_eq!(r.key.as_deref(), Some(exporter.to_string().as_bytes()));
                }
            }
            assert_eq!(next, part.records.len());
            total += part.records.len();
        }
        assert_eq!(total, 210);
        // 60 records of 192.0.2.1 in one partition, in the order received.
        let (_, p) = enc.keys[0];
        let part = &enc.parts[p];
        let bytes: Vec<u64> = part
            .requests
            .iter()
            .flat_map(|req| enc.build(part, req).0)
            .filter(|r| r.key.as_deref() == Some(&b"192.0.2.1"[..]))
            .map(|r| {
                flowtel_records::protobuf::DelimitedReader::new(r.value.as_ref().unwrap())
                    .next()
                    .unwrap()
                    .unwrap()
                    .bytes
            })
            .collect();
        let expected: Vec<u64> = (0..50).chain(0..10).collect();
        assert_eq!(bytes, expected);
        // JSON: the goflow2-style line without its newline.
        enc.encode(&batch, 1, KafkaFormat::Json, 1_000_000, &mut encoder);
        let part = &enc.parts[0];
        assert_eq!(part.requests.len(), 1);
        let (built, _) = enc.build(part, &part.requests[0]);
        let v: serde_json::Value =
            serde_json::from_slice(built[0].value.as_ref().unwrap()).unwrap();
        assert_eq!(v["type"], "IPFIX");
        assert!(!built[0].value.as_ref().unwrap().ends_with(b"\n"));
    }
}
