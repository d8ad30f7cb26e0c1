//! The `kafka:` section: the kafka sink's settings, named like the Kafka clients' properties
//! (`security_protocol`, `sasl_mechanism`, `ssl_ca_location`, ...), and `kafka.properties`,
//! which takes client properties by their usual names (`linger.ms`, `compression.type`,
//! `security.protocol`, ...): each one with an equivalent here sets that key ([`PROPERTIES`]),
//! any other is refused with the list. The sink itself is `crate::sinks::kafka`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::REDACTED;

/// Record format on the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KafkaFormat {
    /// A varint length-prefixed `flowtel.flow.v1.FlowMessage` (goflow2's framing).
    #[default]
    Protobuf,
    /// The goflow2-style JSON object, without a newline.
    Json,
}

/// Compression of the record batches (Kafka's `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KafkaCompression {
    #[default]
    None,
    Gzip,
    Lz4,
    Snappy,
    Zstd,
}

impl KafkaCompression {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            "lz4" => Some(Self::Lz4),
            "snappy" => Some(Self::Snappy),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// Acknowledgements the producer waits for (Kafka's `acks`). Only `all`: see [`ACKS_ONLY_ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// The leader answers once every in-sync replica has the batch (`acks=all`, `-1`).
    #[default]
    All,
}

/// Why `acks` is `all` and nothing else.
pub const ACKS_ONLY_ALL: &str = "only `all` (or -1) is supported: flowtel's Kafka client \
     (rskafka) always waits for every in-sync replica; `0` (no answer) and `1` (the leader \
     alone) are not available";

impl Acks {
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("acks {other:?}: {ACKS_ONLY_ALL}")),
        }
    }
}

impl Serialize for Acks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("all")
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let text = scalar_text(&v).map_err(serde::de::Error::custom)?;
        Acks::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How the sink talks to the brokers (Kafka's `security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SecurityProtocol {
    #[default]
    #[serde(rename = "PLAINTEXT", alias = "plaintext")]
    Plaintext,
    #[serde(rename = "SSL", alias = "ssl")]
    Ssl,
    #[serde(rename = "SASL_PLAINTEXT", alias = "sasl_plaintext")]
    SaslPlaintext,
    #[serde(rename = "SASL_SSL", alias = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Self::Plaintext),
            "SSL" => Some(Self::Ssl),
            "SASL_PLAINTEXT" => Some(Self::SaslPlaintext),
            "SASL_SSL" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub(crate) fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub(crate) fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// The SASL mechanism (Kafka's `sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// RFC 4616.
    #[default]
    #[serde(rename = "PLAIN", alias = "plain")]
    Plain,
    /// RFC 7677.
    #[serde(rename = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// RFC 5802 with SHA-512.
    #[serde(rename = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            other => Err(format!(
                "SASL mechanism {other:?} is not supported: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )),
        }
    }
}

/// The `kafka:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `HOST:PORT` (`bootstrap.servers`).
    pub brokers: Vec<String>,
    /// The topic records are produced to.
    pub topic: String,
    pub format: KafkaFormat,
    /// Batch compression (`compression.type`).
    pub compression: KafkaCompression,
    /// Acknowledgements waited for (`acks`): `all` only.
    pub acks: Acks,
    /// How long a record waits for a fuller batch (`linger.ms`); when absent,
    /// `flow_records.batch_max_age_ms`.
    pub linger_ms: Option<u64>,
    /// Key and value bytes per produce request and partition at most (`batch.size`); a
    /// larger record goes alone.
    pub batch_max_bytes: usize,
    /// Deadline of one produce, metadata or connect attempt (`request.timeout.ms`).
    pub request_timeout_ms: u64,
    /// How often the topic's partitions are read again (`topic.metadata.refresh.interval.ms`).
    pub metadata_refresh_ms: u64,
    /// Create the topic when it does not exist (else records wait until it does).
    pub create_topic: bool,
    /// Partitions of a topic the sink creates.
    pub create_topic_partitions: u32,
    /// Replication factor of a topic the sink creates.
    pub create_topic_replication_factor: u16,
    /// The client id brokers see (`client.id`).
    pub client_id: String,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` (`security.protocol`).
    pub security_protocol: SecurityProtocol,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (`sasl.mechanism`).
    pub sasl_mechanism: SaslMechanism,
    /// `sasl.username`.
    pub sasl_username: Option<String>,
    /// `sasl.password` (printed as `<redacted>`).
    pub sasl_password: Option<String>,
    /// PEM CA bundle replacing the system roots (`ssl.ca.location`).
    pub ssl_ca_location: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (`ssl.certificate.location`).
    pub ssl_certificate_location: Option<PathBuf>,
    /// PEM client key for mutual TLS (`ssl.key.location`).
    pub ssl_key_location: Option<PathBuf>,
    /// Kafka client properties by their usual names; each sets the key it names (see
    /// [`PROPERTIES`]), others are refused. Applied (and emptied) when the configuration is
    /// resolved.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, serde_yaml::Value>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: Vec::new(),
            topic: "flows".to_owned(),
            format: KafkaFormat::Protobuf,
            compression: KafkaCompression::None,
            acks: Acks::All,
            linger_ms: None,
            batch_max_bytes: 1_000_000,
            request_timeout_ms: 30_000,
            metadata_refresh_ms: 60_000,
            create_topic: false,
            create_topic_partitions: 3,
            create_topic_replication_factor: 1,
            client_id: "flowtel".to_owned(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: SaslMechanism::Plain,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            properties: BTreeMap::new(),
        }
    }
}

/// Kafka client properties (librdkafka and Java client names) that have an equivalent here, and
/// the `kafka:` key each sets.
pub const PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "brokers"),
    ("metadata.broker.list", "brokers"),
    ("client.id", "client_id"),
    ("compression.type", "compression"),
    ("compression.codec", "compression"),
    ("acks", "acks"),
    ("request.required.acks", "acks"),
    ("linger.ms", "linger_ms"),
    ("queue.buffering.max.ms", "linger_ms"),
    ("batch.size", "batch_max_bytes"),
    ("request.timeout.ms", "request_timeout_ms"),
    ("topic.metadata.refresh.interval.ms", "metadata_refresh_ms"),
    ("metadata.max.age.ms", "metadata_refresh_ms"),
    ("security.protocol", "security_protocol"),
    ("sasl.mechanism", "sasl_mechanism"),
    ("sasl.mechanisms", "sasl_mechanism"),
    ("sasl.username", "sasl_username"),
    ("sasl.password", "sasl_password"),
    ("ssl.ca.location", "ssl_ca_location"),
    ("ssl.certificate.location", "ssl_certificate_location"),
    ("ssl.key.location", "ssl_key_location"),
    ("enable.idempotence", "(false only)"),
];

/// Properties refused with a reason of their own.
const REFUSED: &[(&str, &str)] = &[
    (
        "batch.num.messages",
        "records per batch are flow_records.batch_max_records (shared by the per-flow sinks)",
    ),
    (
        "queue.buffering.max.messages",
        "the queue is flow_records.queue_max_records (shared by the per-flow sinks)",
    ),
    (
        "partitioner",
        "records are partitioned by murmur2 of the exporter address, as the Java client's default partitioner does",
    ),
    (
        "transactional.id",
        "flowtel's Kafka client (rskafka) has no transactions",
    ),
];

/// A YAML scalar as the text a Kafka property value would be.
fn scalar_text(v: &serde_yaml::Value) -> Result<String, String> {
    match v {
        serde_yaml::Value::String(s) => Ok(s.clone()),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        serde_yaml::Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a string or number, got {other:?}")),
    }
}

fn optional_path(value: &str) -> Option<PathBuf> {
    let v = value.trim();
    (!v.is_empty()).then(|| PathBuf::from(v))
}

impl KafkaConfig {
    /// Apply every entry of `properties` to the key it names, then empty it. An unknown
    /// property, or a value the key does not take, is an error naming the property.
    pub fn apply_properties(&mut self) -> anyhow::Result<()> {
        let properties = std::mem::take(&mut self.properties);
        for (name, value) in &properties {
            let text =
                scalar_text(value).map_err(|e| anyhow::anyhow!("kafka.properties.{name}: {e}"))?;
            self.set_property(name.trim(), &text)
                .map_err(|e| anyhow::anyhow!("kafka.properties.{name}: {e}"))?;
        }
        Ok(())
    }

    fn set_property(&mut self, name: &str, value: &str) -> Result<(), String> {
        let number = |what: &str| -> Result<u64, String> {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("expected {what}, got {value:?}"))
        };
        match name {
            "bootstrap.servers" | "metadata.broker.list" => {
                self.brokers = value
                    .split(',')
                    .map(str::trim)
                    .filter(|b| !b.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "client.id" => self.client_id = value.trim().to_owned(),
            "compression.type" | "compression.codec" => {
                self.compression = KafkaCompression::parse(value).ok_or_else(|| {
                    format!("expected none, gzip, lz4, snappy or zstd, got {value:?}")
                })?;
            }
            "acks" | "request.required.acks" => self.acks = Acks::parse(value)?,
            "linger.ms" | "queue.buffering.max.ms" => {
                self.linger_ms = Some(number("milliseconds")?);
            }
            "batch.size" => {
                self.batch_max_bytes = usize::try_from(number("bytes")?).unwrap_or(usize::MAX);
            }
            "request.timeout.ms" => self.request_timeout_ms = number("milliseconds")?,
            "topic.metadata.refresh.interval.ms" | "metadata.max.age.ms" => {
                self.metadata_refresh_ms = number("milliseconds")?;
            }
            "security.protocol" => {
                self.security_protocol = SecurityProtocol::parse(value).ok_or_else(|| {
                    format!("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got {value:?}")
                })?;
            }
            "sasl.mechanism" | "sasl.mechanisms" => {
                self.sasl_mechanism = SaslMechanism::parse(value)?;
            }
            "sasl.username" => self.sasl_username = Some(value.to_owned()),
            "sasl.password" => self.sasl_password = Some(value.to_owned()),
            "ssl.ca.location" => self.ssl_ca_location = optional_path(value),
            "ssl.certificate.location" => self.ssl_certificate_location = optional_path(value),
            "ssl.key.location" => self.ssl_key_location = optional_path(value),
            "enable.idempotence" => {
                if value.trim() != "false" {
                    return Err(
                        "only false is supported: flowtel's Kafka client (rskafka) does not produce idempotently (delivery is at least once)"
                            .to_owned(),
                    );
                }
            }
            other => {
                if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == other) {
                    return Err(format!("not supported: {why}"));
                }
                let supported: Vec<&str> = PROPERTIES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown or unsupported Kafka client property; supported: {}",
                    supported.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The rules that need no file: broker addresses, the topic name, bounds, and which TLS and
    /// SASL settings go together. `enabled`: the `kafka` sink is configured (brokers needed).
    pub fn validate(&self, enabled: bool) -> anyhow::Result<()> {
        if enabled && self.brokers.is_empty() {
            bail!(
                "kafka.brokers: the kafka sink needs at least one broker (--kafka-brokers HOST:PORT,...)"
            );
        }
        for b in &self.brokers {
            check_broker(b).map_err(|e| anyhow::anyhow!("kafka.brokers: {e}"))?;
        }
        check_topic(&self.topic).map_err(|e| anyhow::anyhow!("kafka.topic: {e}"))?;
        for (key, v) in [
            ("batch_max_bytes", self.batch_max_bytes as u64),
            ("request_timeout_ms", self.request_timeout_ms),
            ("metadata_refresh_ms", self.metadata_refresh_ms),
            (
                "create_topic_partitions",
                u64::from(self.create_topic_partitions),
            ),
            (
                "create_topic_replication_factor",
                u64::from(self.create_topic_replication_factor),
            ),
        ] {
            if v == 0 {
                bail!("kafka.{key}: must be >= 1");
            }
        }
        if i32::try_from(self.create_topic_partitions).is_err()
            || i16::try_from(self.create_topic_replication_factor).is_err()
        {
            bail!(
                "kafka.create_topic_partitions / create_topic_replication_factor: out of Kafka's range"
            );
        }
        let protocol = self.security_protocol.name();
        let tls: Vec<&str> = [
            ("kafka.ssl_ca_location", self.ssl_ca_location.is_some()),
            (
                "kafka.ssl_certificate_location",
                self.ssl_certificate_location.is_some(),
            ),
            ("kafka.ssl_key_location", self.ssl_key_location.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, given)| given.then_some(k))
        .collect();
        if !self.security_protocol.tls() && !tls.is_empty() {
            bail!(
                "{} set, but kafka.security_protocol is {protocol}: TLS settings need SSL or SASL_SSL (or remove them)",
                tls.join(", ")
            );
        }
        match (
            self.ssl_certificate_location.is_some(),
            self.ssl_key_location.is_some(),
        ) {
            (true, false) => bail!(
                "kafka.ssl_certificate_location is set but kafka.ssl_key_location is not: mutual TLS needs both"
            ),
            (false, true) => bail!(
                "kafka.ssl_key_location is set but kafka.ssl_certificate_location is not: mutual TLS needs both"
            ),
            _ => {}
        }
        let sasl_given = self.sasl_username.is_some() || self.sasl_password.is_some();
        if self.security_protocol.sasl() {
            if self.sasl_username.is_none() || self.sasl_password.is_none() {
                bail!(
                    "kafka.security_protocol is {protocol}: kafka.sasl_username and kafka.sasl_password are both needed"
                );
            }
        } else if sasl_given {
            bail!(
                "kafka.sasl_username / sasl_password set, but kafka.security_protocol is {protocol}: SASL needs SASL_PLAINTEXT or SASL_SSL (or remove them)"
            );
        }
        Ok(())
    }

    /// The section with its secrets as `<redacted>`.
    pub fn redacted(&self) -> KafkaConfig {
        let mut c = self.clone();
        if c.sasl_password.is_some() {
            c.sasl_password = Some(REDACTED.to_owned());
        }
        for (name, v) in &mut c.properties {
            if name.contains("password") {
                *v = serde_yaml::Value::String(REDACTED.to_owned());
            }
        }
        c
    }
}

/// `HOST:PORT` (a name or an address; IPv6 in brackets).
fn check_broker(b: &str) -> Result<(), String> {
    let Some((host, port)) = b.trim().rsplit_once(':') else {
        return Err(format!("{b:?} is not HOST:PORT, e.g. kafka-1:9092"));
    };
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return Err(format!(
            "{b:?} is not HOST:PORT (an IPv6 address is written [ADDR]:PORT)"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{b:?}: {port:?} is not a port number (1-65535)")),
    }
}

/// Kafka's topic name rule (`Topic.validate`): 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 249 || t == "." || t == ".." {
        return Err(format!(
            "{t:?} is not a valid topic name (1 to 249 characters, not . or ..)"
        ));
    }
    if let Some(c) = t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{t:?}: {c:?} is not allowed in a topic name (letters, digits, '.', '_', '-')"
        ));
    }
    Ok(())
}
