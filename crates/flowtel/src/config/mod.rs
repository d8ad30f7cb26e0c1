//! The effective configuration of `flowtel run`.
//!
//! One YAML file ([`Config`], every key optional, unknown keys rejected with the key's name and
//! line), every setting also a flag ([`RunArgs`]), and the standard OpenTelemetry environment
//! variables. Precedence, highest first:
//!
//! 1. command-line flags (including ktranslate's flags, translated by [`crate::ktranslate`]);
//! 2. environment variables: `OTEL_EXPORTER_OTLP_METRICS_*` over `OTEL_EXPORTER_OTLP_*`
//!    (`ENDPOINT`, `HEADERS`, `COMPRESSION`, `TIMEOUT`, `CERTIFICATE`, `CLIENT_CERTIFICATE`,
//!    `CLIENT_KEY`), `OTEL_SERVICE_NAME` over `service.name` in `OTEL_RESOURCE_ATTRIBUTES`;
//! 3. the YAML file given with `--config`;
//! 4. the defaults of [`Config::default`], the one place defaults live.
//!
//! Maps (OTLP headers, resource attributes) merge key by key with the same precedence.
//! The `decoder:` section ([`DecoderSettings`]) is the decoder's template scoping and limits,
//! shared by the receive workers and `run --pcap` through `pipeline::PipelineSpec::from_config`.
//! `RUST_LOG`, when set, overrides `log_level` (see `crate::telemetry`).
//!
//! The resource's `service.name` is, in that order: `--service-name`, `OTEL_SERVICE_NAME`,
//! `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, `resource.service_name` in the file, and
//! finally the profile's default (`flowtel`, or `ktranslate` for the ktranslate profile, which
//! is what ktranslate itself reports).
//!
//! `flowtel check-config FILE` prints the effective configuration as YAML; that output is itself
//! a valid configuration file. Secrets (OTLP header values, credentials or a query string in an
//! endpoint) are printed as `<redacted>` unless `--show-secrets` is given ([`Config::redacted`]).
//!
//! # OTLP connection rules
//!
//! Every OTLP exporter (the flow series, our own metrics and logs) is built from
//! [`OtlpConfig::client_config`] through `flowtel_otlp::channel`, so they share one set of rules
//! (documented there and in the README). `validate` applies the rules that depend only on which
//! settings are given (scheme, credentials in the endpoint, TLS settings with `http://`, client
//! certificate without key, header syntax), so `check-config` reports every contradiction,
//! naming the clashing settings. The files are read and their PEM checked by
//! [`OtlpConfig::client_config`] when the daemon starts: a configuration is often checked on
//! another machine than the one it runs on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

pub mod kafka;
pub mod records;

/// What secrets are printed as.
pub const REDACTED: &str = "<redacted>";

/// Where emitted windows go. Several sinks can run at once.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// OTLP/gRPC `MetricsService/Export` to `otlp.endpoint`.
    Otlp,
    /// One JSON object per emitted point on standard output.
    Stdout,
    /// Prometheus text exposition on `prometheus_listen` (`/metrics`).
    Prometheus,
    /// Every flow record as a goflow2-style JSON line, on stdout or in `flow_json.file`.
    FlowJson,
    /// Every flow record as an OTLP log record (`LogsService/Export`).
    FlowLogs,
    /// Batches of flow records POSTed as JSON to `flow_http.url`.
    FlowHttp,
    /// Every flow record as a Kafka record (protobuf or JSON) to `kafka.topic`.
    Kafka,
}

pub use flowtel_rollup::Profile;

/// `service.name` when nothing else sets it: what each profile's original reports.
fn default_service_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Default => "flowtel",
        Profile::Ktranslate => "ktranslate",
    }
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    match s {
        "default" => Ok(Profile::Default),
        "ktranslate" => Ok(Profile::Ktranslate),
        _ => Err(format!("expected default or ktranslate, got {s:?}")),
    }
}

/// How flow series are written to OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    /// A gauge per window with start and end times (what the Netflow integration expects).
    #[default]
    Gauge,
    /// A monotonic delta sum per window.
    Delta,
    /// A monotonic cumulative sum per series.
    Cumulative,
}

/// OTLP request compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

impl Compression {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gzip" => Some(Compression::Gzip),
            "none" | "" => Some(Compression::None),
            _ => None,
        }
    }
}

/// Parse a socket address given as `ADDR:PORT`, with a message that says what was wrong and
/// what is expected.
pub fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let example = "e.g. 0.0.0.0:9995 (IPv4) or [::]:9995 (IPv6)";
    if s.parse::<u32>().is_ok() {
        return Err(format!(
            "{s:?} is a port alone: an address is ADDR:PORT, e.g. 0.0.0.0:{s} (IPv4) or [::]:{s} (IPv6)"
        ));
    }
    match s.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(_)) => {
            return Err(format!(
                "{s:?} has no port: an IPv6 address with a port is written [ADDR]:PORT, e.g. [::1]:9995"
            ));
        }
        Ok(_) => {
            return Err(format!(
                "{s:?} has no port: an address is ADDR:PORT, {example}"
            ));
        }
        Err(_) => {}
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} is not ADDR:PORT, {example}"));
    };
    if host.contains(':') && !host.starts_with('[') {
        return Err(format!(
            "{s:?}: an IPv6 address needs brackets before the port, e.g. [{host}]:{port}"
        ));
    }
    match port.parse::<u64>() {
        Ok(p) if p > 65_535 => return Err(format!("{s:?}: port {p} is out of range (0-65535)")),
        Ok(_) => {}
        Err(_) => return Err(format!("{s:?}: {port:?} is not a port number, {example}")),
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_err() {
        return Err(format!(
            "{s:?}: {bare:?} is not an IP address (names are not resolved), {example}"
        ));
    }
    Err(format!("{s:?} is not ADDR:PORT, {example}"))
}

/// `listen`: one address or a list of them, each parsed by [`parse_socket_addr`].
fn listen_addrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let list = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    list.iter()
        .map(|s| parse_socket_addr(s).map_err(|e| serde::de::Error::custom(format!("listen: {e}"))))
        .collect()
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    parse_socket_addr(&s).map_err(|e| serde::de::Error::custom(format!("prometheus_listen: {e}")))
}

/// The whole configuration file. Every key is optional; missing keys take the defaults of
/// [`Config::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// UDP addresses to receive flows on; every protocol is auto-detected on each.
    #[serde(deserialize_with = "listen_addrs")]
    pub listen: Vec<SocketAddr>,
    /// Receive workers (one socket each per listen address); 0 = one per core.
    pub workers: usize,
    /// Requested SO_RCVBUF per socket ([`DEFAULT_RECV_BUFFER_BYTES`]). The kernel caps it at
    /// `net.core.rmem_max` (a warning says so) unless flowtel has CAP_NET_ADMIN, with which it
    /// is granted (SO_RCVBUFFORCE).
    pub recv_buffer_bytes: usize,
    /// Longest pause of a receive worker after a pass that emptied its sockets, in
    /// microseconds, so that what arrives meanwhile is taken in a few batches: the pause starts
    /// at 1 ms after a quiet spell and doubles while traffic keeps coming, up to this, and is
    /// shortened to what a quarter of the socket buffer holds at the arrival rate; 0 = no
    /// pause.
    pub receive_coalesce_us: u64,
    /// Window length in seconds (integer >= 1) of every rollup; when absent each rollup's own
    /// `interval_secs` (default 60) applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollup_interval_secs: Option<u64>,
    /// Series kept per rollup and window (the rest is summed into the overflow series);
    /// overrides every rollup's own `top_k` when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Output naming profile of every rollup (`default` or `ktranslate`); when absent each
    /// rollup's own `profile` applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Rollups in ktranslate's spec syntax (`s_sum,bytes_by_flow,in_bytes+out_bytes,src_addr,…`);
    /// when given they replace `rollups` (and use the ktranslate profile).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollup_specs: Vec<String>,
    /// The rollups; default: the Grafana Netflow integration's `bytes_by_flow`.
    pub rollups: Vec<flowtel_rollup::RollupConfig>,
    /// Device names and sampling-rate defaults per exporter.
    pub enrichment: flowtel_rollup::EnrichConfig,
    /// Template scoping and the bounds on exporter-controlled decoder state.
    pub decoder: DecoderSettings,
    /// sFlow counter samples and drop notifications as interface metrics.
    pub interfaces: flowtel_rollup::InterfacesConfig,
    /// Where windows and flow records go.
    pub sinks: Vec<SinkKind>,
    /// Which flow records the per-flow sinks get.
    pub flow_records: FlowRecordsConfig,
    /// Which exporters may send to which listen address.
    pub access: crate::daemon::access::AccessConfig,
    /// The `flow-json` sink.
    pub flow_json: records::FlowJsonConfig,
    /// The `flow-logs` sink.
    pub flow_logs: records::FlowLogsConfig,
    /// The `flow-http` sink.
    pub flow_http: records::FlowHttpConfig,
    /// The `kafka` sink.
    pub kafka: kafka::KafkaConfig,
    /// Address of the Prometheus `/metrics`, `/healthz` and `/readyz` endpoint.
    #[serde(deserialize_with = "socket_addr")]
    pub prometheus_listen: SocketAddr,
    pub otlp: OtlpConfig,
    pub resource: ResourceConfig,
    pub geoip: GeoIpConfig,
    /// `error`, `warn`, `info`, `debug` or `trace` (or any `RUST_LOG`-style filter).
    pub log_level: String,
    /// Also send the collector's own log events as OTLP logs.
    pub tee_logs: bool,
    /// On SIGINT/SIGTERM: time allowed to flush the open window and drain the export queue.
    pub shutdown_grace_secs: u64,
    /// A log line per exporter with its rates every this many seconds (0 = never).
    pub exporter_report_interval_secs: u64,
    /// Seconds without datagrams after which an exporter is reported silent.
    pub exporter_silent_after_secs: u64,
    /// How often our own metrics are exported over OTLP.
    pub self_metrics_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 9995))],
            workers: 0,
            recv_buffer_bytes: DEFAULT_RECV_BUFFER_BYTES,
            receive_coalesce_us: 50_000,
            rollup_interval_secs: None,
            top_k: None,
            profile: None,
            rollup_specs: Vec::new(),
            rollups: vec![flowtel_rollup::RollupConfig::default()],
            enrichment: flowtel_rollup::EnrichConfig::default(),
            decoder: DecoderSettings::default(),
            interfaces: flowtel_rollup::InterfacesConfig::default(),
            sinks: vec![SinkKind::Otlp],
            flow_records: FlowRecordsConfig::default(),
            access: crate::daemon::access::AccessConfig::default(),
            flow_json: records::FlowJsonConfig::default(),
            flow_logs: records::FlowLogsConfig::default(),
            flow_http: records::FlowHttpConfig::default(),
            kafka: kafka::KafkaConfig::default(),
            prometheus_listen: SocketAddr::from(([0, 0, 0, 0], 9464)),
            otlp: OtlpConfig::default(),
            resource: ResourceConfig::default(),
            geoip: GeoIpConfig::default(),
            log_level: "info".to_owned(),
            tee_logs: false,
            shutdown_grace_secs: 10,
            exporter_report_interval_secs: 300,
            exporter_silent_after_secs: 120,
            self_metrics_interval_secs: 60,
        }
    }
}

/// The `decoder:` section: [`flowtel_decode::DecoderConfig`] in configuration units (seconds,
/// not nanoseconds). Every limit bounds state an exporter controls and holds over the whole
/// daemon (every receive worker's decoder shares one `flowtel_decode::Budget`); a refusal is
/// counted in `flowtel.decode.limit_hits{limit=…}`, an eviction in
/// `flowtel.decode.evictions{kind=…}`, an expiry in `flowtel.pending.expired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoderSettings {
    /// Scope templates by exporter address and UDP source port, not the address alone (for
    /// several exporting processes behind one address that reuse template ids).
    pub scope_includes_port: bool,
    /// Exporters tracked at once, over the whole daemon: template scopes (address, version,
    /// domain) in the decoders, and addresses in the table of exporter owners and per-exporter
    /// metrics. A new scope beyond it is refused; a new address is decoded by the worker that
    /// received it and counted under `exporter="other"`.
    pub max_exporters: usize,
    /// Templates per scope; a new one beyond it is refused.
    pub max_templates_per_exporter: usize,
    /// Fields per template; a longer template is refused.
    pub max_fields_per_template: usize,
    /// Data sets held while waiting for their template, over all exporters (0: none held).
    pub max_pending_sets: usize,
    /// Bytes of decoder state (templates, options data, pending data sets) over the whole
    /// daemon; beyond it the least recently used state is evicted (an exporter that still
    /// sends re-learns its templates at its next refresh). Pending sets take a quarter at most.
    pub memory_budget_bytes: usize,
    /// Seconds a data set waits for its template before it is discarded.
    pub pending_timeout_secs: u64,
    /// Bytes of a sampled packet (sFlow flow samples, IPFIX packet sections): `frame`, the
    /// layer-2 frame length the agent reports (default), or `ip`, the IP packet length, as
    /// NetFlow/IPFIX octet counters count.
    pub sflow_bytes: flowtel_decode::SflowBytes,
    /// Elements read under a name (`{enterprise, id, name, type}`, type `string`, `unsigned`,
    /// `address` or `mac`): rollup dimensions `custom_str.NAME` / `custom_int.NAME` and flow
    /// attributes. See examples/decoder-fields-*.yaml.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<flowtel_decode::FieldMapping>,
}

impl Default for DecoderSettings {
    fn default() -> Self {
        let d = flowtel_decode::DecoderConfig::default();
        DecoderSettings {
            scope_includes_port: d.scope_includes_port,
            max_exporters: d.max_exporters,
            max_templates_per_exporter: d.max_templates_per_exporter,
            max_fields_per_template: d.max_fields_per_template,
            max_pending_sets: d.max_pending_sets,
            memory_budget_bytes: d.memory_budget_bytes,
            pending_timeout_secs: d.pending_timeout_ns / 1_000_000_000,
            sflow_bytes: d.sflow_bytes,
            fields: d.fields,
        }
    }
}

impl DecoderSettings {
    /// The decoder's configuration (unknown fields are not kept: the daemon does not print
    /// them).
    pub fn to_decoder_config(&self) -> flowtel_decode::DecoderConfig {
        flowtel_decode::DecoderConfig {
            scope_includes_port: self.scope_includes_port,
            keep_unknown_fields: false,
            max_exporters: self.max_exporters,
            max_templates_per_exporter: self.max_templates_per_exporter,
            max_fields_per_template: self.max_fields_per_template,
            max_pending_sets: self.max_pending_sets,
            memory_budget_bytes: self.memory_budget_bytes,
            pending_timeout_ns: self.pending_timeout_secs.saturating_mul(1_000_000_000),
            sflow_bytes: self.sflow_bytes,
            fields: self.fields.clone(),
            // Narrowed by each worker's pipeline to what its outputs use.
            record_fields: flowtel_decode::RecordFields::ALL,
        }
    }
}

/// The receive buffer each socket asks for by default: 32 MiB. On loopback, Linux charged a
/// datagram of 720 to 1 464 bytes 2 304 bytes (its payload's 2 KiB allocation and the
/// buffer's own structure, read back from `/proc/net/udp`) against twice the requested size,
/// so 8 MiB held about 7 300 such datagrams: 24 ms at 300 000 datagrams/s, the sender's ceiling
/// in `examples/bench-peers.sh` on a 2-core machine. There a worker used three quarters of its
/// core, and the moments the core was taken from it still dropped datagrams in two of six runs
/// at 8 MiB, in none of six at 32 MiB (97 ms). The memory is charged only while datagrams
/// wait, per socket (a worker has one per listen address), and the kernel's
/// `net.ipv4.udp_mem` bounds all UDP sockets together.
pub const DEFAULT_RECV_BUFFER_BYTES: usize = 32 << 20;

/// The longest `receive_coalesce_us`: 100 ms. Above the default (50 ms) a jump in traffic
/// within one pause may overflow the default buffer (`daemon/coalesce.rs`).
pub const MAX_COALESCE_US: u64 = 100_000;

/// The smallest `decoder.memory_budget_bytes`: below it a few large templates fill it.
pub const MIN_MEMORY_BUDGET_BYTES: u64 = 1 << 20;

/// The `flow_records:` section: which decoded records the per-flow sinks get (see
/// [`crate::pipeline::select`]) and how each sink batches them (the per-flow sinks' shared queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowRecordsConfig {
    /// Keep 1 in N records (1: all); a kept record's sampling rate is multiplied by N.
    pub sample: u32,
    /// Keep/drop rules, the first match decides; a record no rule matches is kept.
    pub rules: Vec<crate::pipeline::select::RuleConfig>,
    /// Records each per-flow sink's queue holds; beyond it new records are dropped (counted).
    pub queue_max_records: usize,
    /// Records per delivery (request, file write, Kafka batch) at most.
    pub batch_max_records: usize,
    /// How long a record waits for a fuller batch, in milliseconds.
    pub batch_max_age_ms: u64,
}

impl Default for FlowRecordsConfig {
    fn default() -> Self {
        FlowRecordsConfig {
            sample: 1,
            rules: Vec::new(),
            queue_max_records: 200_000,
            batch_max_records: 1_000,
            batch_max_age_ms: 1_000,
        }
    }
}

/// The OTLP/gRPC destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// `http://host:port` or `https://host:port` (TLS).
    pub endpoint: String,
    /// Extra gRPC metadata, e.g. `authorization: Basic …`.
    pub headers: BTreeMap<String, String>,
    pub compression: Compression,
    /// How flow series are written: `gauge` (default), `delta` or `cumulative`.
    pub temporality: Temporality,
    /// Deadline of one export request.
    pub timeout_secs: u64,
    /// PEM CA bundle to verify the server, replacing the system roots (default: the system
    /// roots). Needs an `https://` endpoint.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `client_key_file`, `https://` only).
    pub client_cert_file: Option<PathBuf>,
    /// PEM client key for mutual TLS (with `client_cert_file`, `https://` only).
    pub client_key_file: Option<PathBuf>,
    /// Windows held while the endpoint is unreachable; beyond it the oldest is dropped (counted).
    pub queue_max_windows: usize,
    /// Data points per export request; larger windows are split.
    pub max_points_per_request: usize,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: flowtel_otlp::DEFAULT_ENDPOINT.to_owned(),
            headers: BTreeMap::new(),
            compression: Compression::Gzip,
            temporality: Temporality::Gauge,
            timeout_secs: 10,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            queue_max_windows: flowtel_otlp::DEFAULT_QUEUE_CAPACITY,
            max_points_per_request: 10_000,
        }
    }
}

/// A TLS setting by its configuration key, flag and environment variable.
fn tls_setting_name(s: flowtel_otlp::TlsSetting) -> &'static str {
    use flowtel_otlp::TlsSetting;
    match s {
        TlsSetting::Ca => "otlp.ca_file (--otlp-ca-file, OTEL_EXPORTER_OTLP_CERTIFICATE)",
        TlsSetting::ClientCert => {
            "otlp.client_cert_file (--otlp-client-cert, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)"
        }
        TlsSetting::ClientKey => {
            "otlp.client_key_file (--otlp-client-key, OTEL_EXPORTER_OTLP_CLIENT_KEY)"
        }
        TlsSetting::DomainName => "the TLS server name",
    }
}

/// A channel rule broken, in configuration terms: names every setting involved.
fn otlp_rule_error(e: flowtel_otlp::ChannelError) -> anyhow::Error {
    use flowtel_otlp::ChannelError as E;
    match e {
        E::UnsupportedScheme { endpoint } => anyhow::anyhow!(
            "otlp.endpoint: expected http://HOST:PORT or https://HOST:PORT, got {endpoint:?}"
        ),
        E::CredentialsInEndpoint { endpoint } => anyhow::anyhow!(
            "otlp.endpoint {endpoint:?} carries credentials, which OTLP/gRPC never sends: put them in otlp.headers (--otlp-header, OTEL_EXPORTER_OTLP_HEADERS), e.g. authorization: Basic <base64 of user:password>"
        ),
        E::QueryInEndpoint { endpoint } => anyhow::anyhow!(
            "otlp.endpoint {endpoint:?} has a query string, which OTLP/gRPC never sends: put a token in otlp.headers (--otlp-header, OTEL_EXPORTER_OTLP_HEADERS)"
        ),
        E::TlsWithoutHttps { endpoint, settings } => {
            let names: Vec<&str> = settings.iter().map(|s| tls_setting_name(*s)).collect();
            let (it, listed) = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    ("them", format!("{} and {last}", rest.join(", ")))
                }
                _ => ("it", names.concat()),
            };
            anyhow::anyhow!(
                "{listed} set, but otlp.endpoint {endpoint:?} is plain-text: TLS settings need an https:// endpoint (use https:// or remove {it})"
            )
        }
        E::IncompleteIdentity { given, missing } => anyhow::anyhow!(
            "{} is set but {} is not: mutual TLS needs both",
            tls_setting_name(given),
            tls_setting_name(missing)
        ),
        E::KeyMismatch => anyhow::anyhow!(
            "otlp.client_cert_file and otlp.client_key_file do not match: the key is not the certificate's"
        ),
        other => anyhow::Error::new(other).context("otlp"),
    }
}

impl OtlpConfig {
    /// The TLS settings given, by the channel builder's names.
    fn tls_present(&self) -> Vec<flowtel_otlp::TlsSetting> {
        use flowtel_otlp::TlsSetting;
        [
            (TlsSetting::Ca, self.ca_file.is_some()),
            (TlsSetting::ClientCert, self.client_cert_file.is_some()),
            (TlsSetting::ClientKey, self.client_key_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(s, given)| given.then_some(s))
        .collect()
    }

    /// The rules that need no file: `flowtel_otlp::channel::check_rules` and header syntax.
    fn check_rules(&self) -> anyhow::Result<()> {
        flowtel_otlp::channel::check_rules(&self.endpoint, &self.tls_present())
            .map_err(otlp_rule_error)?;
        let headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        flowtel_otlp::client::parse_headers(&headers)
            .map_err(|e| anyhow::anyhow!("otlp.headers: {e}"))?;
        Ok(())
    }

    /// The client settings of every OTLP exporter (flow series, own metrics, own logs): the
    /// endpoint, TLS files read and checked (a missing, unreadable or non-PEM file is an error
    /// naming the setting and the file), headers, compression and timeout. `name` labels the
    /// exporter's log lines.
    pub fn client_config(&self, name: &str) -> anyhow::Result<flowtel_otlp::ClientConfig> {
        use flowtel_otlp::TlsSetting;
        self.check_rules()?;
        let read = |setting: TlsSetting, path: &Option<PathBuf>| -> anyhow::Result<_> {
            path.as_ref()
                .map(|p| {
                    std::fs::read(p).with_context(|| {
                        format!("cannot read {} {}", tls_setting_name(setting), p.display())
                    })
                })
                .transpose()
        };
        let channel = flowtel_otlp::ChannelConfig {
            endpoint: self.endpoint.trim().to_owned(),
            tls: flowtel_otlp::TlsConfig {
                ca_pem: read(TlsSetting::Ca, &self.ca_file)?,
                client_cert_pem: read(TlsSetting::ClientCert, &self.client_cert_file)?,
                client_key_pem: read(TlsSetting::ClientKey, &self.client_key_file)?,
                domain_name: None,
            },
            ..flowtel_otlp::ChannelConfig::default()
        };
        channel.validate().map_err(|e| match e {
            flowtel_otlp::ChannelError::Pem { setting, problem } => {
                let path = match setting {
                    TlsSetting::Ca => self.ca_file.as_deref(),
                    TlsSetting::ClientCert => self.client_cert_file.as_deref(),
                    TlsSetting::ClientKey => self.client_key_file.as_deref(),
                    TlsSetting::DomainName => None,
                };
                let path = path.map_or_else(String::new, |p| p.display().to_string());
                anyhow::anyhow!("{} {path}: {problem}", tls_setting_name(setting))
            }
            other => otlp_rule_error(other),
        })?;
        Ok(flowtel_otlp::ClientConfig {
            channel,
            gzip: self.compression == Compression::Gzip,
            timeout: std::time::Duration::from_secs(self.timeout_secs.max(1)),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            name: name.to_owned(),
            ..flowtel_otlp::ClientConfig::default()
        })
    }
}

/// The OTLP resource of everything we send (flow series, own metrics, own logs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConfig {
    /// `service.name`; default `flowtel` (`ktranslate` with the ktranslate profile).
    pub service_name: Option<String>,
    /// Extra resource attributes.
    pub attributes: BTreeMap<String, String>,
}

/// MaxMind-format databases for enrichment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoIpConfig {
    /// Country database (e.g. GeoLite2-Country.mmdb).
    pub country_db: Option<PathBuf>,
    /// ASN database (e.g. GeoLite2-ASN.mmdb).
    pub asn_db: Option<PathBuf>,
}

/// Flags of `flowtel run` (and of plain `flowtel`). Each overrides the file and the environment.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct RunArgs {
    /// YAML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Read this capture instead of listening (offline pipeline); exits at end of file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// UDP address to receive flows on (repeatable).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_socket_addr)]
    pub listen: Vec<SocketAddr>,
    /// Receive workers; 0 = one per core.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Requested receive buffer per socket, in bytes (capped at net.core.rmem_max unless
    /// flowtel has CAP_NET_ADMIN)
    #[arg(long, value_name = "BYTES")]
    pub recv_buffer_bytes: Option<usize>,
    /// Longest pause after a receive pass that emptied the sockets, in microseconds (0: none).
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u64).range(0..=MAX_COALESCE_US))]
    pub receive_coalesce_us: Option<u64>,
    /// Rollup window length in seconds.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub rollup_interval: Option<u64>,
    /// Series kept per rollup and window; the rest goes into one overflow series.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub top_k: Option<u64>,
    /// A rollup in ktranslate's spec syntax (repeatable).
    #[arg(long = "rollup-spec", value_name = "SPEC")]
    pub rollup_specs: Vec<String>,
    /// Output naming profile: default or ktranslate.
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    pub profile: Option<Profile>,
    /// Where windows go (repeatable).
    #[arg(long = "sink", value_enum, value_name = "SINK")]
    pub sinks: Vec<SinkKind>,
    /// Address of the Prometheus endpoint.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_socket_addr)]
    pub prometheus_listen: Option<SocketAddr>,
    /// OTLP/gRPC endpoint.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Extra OTLP header `KEY=VALUE` (repeatable).
    #[arg(long = "otlp-header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub otlp_headers: Vec<(String, String)>,
    /// OTLP compression.
    #[arg(long, value_enum)]
    pub otlp_compression: Option<Compression>,
    /// How flow series are written to OTLP.
    #[arg(long, value_enum)]
    pub otlp_temporality: Option<Temporality>,
    /// Deadline of one export request, in seconds.
    #[arg(long, value_name = "SECS")]
    pub otlp_timeout: Option<u64>,
    /// PEM CA bundle for the OTLP endpoint.
    #[arg(long, value_name = "FILE")]
    pub otlp_ca_file: Option<PathBuf>,
    /// PEM client certificate (mTLS).
    #[arg(long, value_name = "FILE")]
    pub otlp_client_cert: Option<PathBuf>,
    /// PEM client key (mTLS).
    #[arg(long, value_name = "FILE")]
    pub otlp_client_key: Option<PathBuf>,
    /// Windows held while the endpoint is unreachable.
    #[arg(long, value_name = "N")]
    pub queue_max_windows: Option<usize>,
    /// Data points per export request.
    #[arg(long, value_name = "N")]
    pub max_points_per_request: Option<usize>,
    /// Resource `service.name`.
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,
    /// Extra resource attribute `KEY=VALUE` (repeatable).
    #[arg(long = "resource-attribute", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub resource_attributes: Vec<(String, String)>,
    /// MaxMind-format country database.
    #[arg(long, value_name = "FILE")]
    pub geoip_country_db: Option<PathBuf>,
    /// MaxMind-format ASN database.
    #[arg(long, value_name = "FILE")]
    pub geoip_asn_db: Option<PathBuf>,
    /// Networks file (YAML, or CSV by its .csv name): prefix -> name, role, site, region,
    /// tenant, AS.
    #[arg(long, value_name = "FILE")]
    pub networks_file: Option<PathBuf>,
    /// Log level or filter (RUST_LOG overrides it).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Also send our own log events as OTLP logs.
    #[arg(long)]
    pub tee_logs: bool,
    /// Grace period on SIGINT/SIGTERM, in seconds.
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<u64>,
    /// Seconds between per-exporter rate log lines (0 = never).
    #[arg(long, value_name = "SECS")]
    pub exporter_report_interval: Option<u64>,
    /// Seconds without datagrams after which an exporter is reported silent.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub exporter_silent_after: Option<u64>,
    /// Device name of an exporter, `ADDR=NAME` (repeatable).
    #[arg(long = "device", value_name = "ADDR=NAME", value_parser = parse_device)]
    pub devices: Vec<(std::net::IpAddr, String)>,
    /// Sampling rate of an exporter whose records carry none, `ADDR=N` (repeatable).
    #[arg(long = "sampling-rate", value_name = "ADDR=N", value_parser = parse_rate)]
    pub sampling_rates: Vec<(std::net::IpAddr, u32)>,
    /// Sampling rate of the other exporters whose records carry none.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub default_sampling_rate: Option<u32>,
    /// Seconds between exports of our own metrics.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub self_metrics_interval: Option<u64>,
    /// Scope templates by exporter address and source port, not the address alone.
    #[arg(long)]
    pub scope_includes_port: bool,
    /// Exporters tracked at once over the whole daemon (template scopes, per-exporter metrics).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_exporters: Option<u64>,
    /// Templates per exporter scope.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_templates_per_exporter: Option<u64>,
    /// Fields per template.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_fields_per_template: Option<u64>,
    /// Data sets held while waiting for their template, over all exporters (0: none).
    #[arg(long, value_name = "N")]
    pub max_pending_sets: Option<u64>,
    /// Bytes of decoder state over the whole daemon; beyond it the least recently used is
    /// evicted (at least 1048576).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(MIN_MEMORY_BUDGET_BYTES..))]
    pub memory_budget_bytes: Option<u64>,
    /// Seconds a data set waits for its template.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub pending_timeout: Option<u64>,
    /// Per-flow sinks get 1 in N records (their sampling rate multiplied by N).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub flow_sample: Option<u32>,
    /// A keep/drop rule for per-flow sinks, `keep:CONDITIONS` or `drop:CONDITIONS` with
    /// CONDITIONS like `exporter=192.0.2.0/24,protocol=udp,dst_port=53|123` (repeatable, in
    /// order; replaces the file's rules).
    #[arg(long = "flow-rule", value_name = "ACTION:CONDITIONS", value_parser = parse_flow_rule)]
    pub flow_rules: Vec<crate::pipeline::select::RuleConfig>,
    /// The `flow-logs` sink's OTLP endpoint, when not the metrics' (`--otlp-endpoint`).
    #[arg(long, value_name = "URL")]
    pub flow_logs_endpoint: Option<String>,
    /// The `flow-logs` sink's attribute names: `network.flow` or `flow`.
    #[arg(long, value_name = "NAMES")]
    pub flow_logs_attribute_names: Option<String>,
    /// Where the `flow-http` sink POSTs batches (`http://` or `https://`).
    #[arg(long, value_name = "URL")]
    pub flow_http_url: Option<String>,
    /// The `flow-http` body: json-array, ndjson or es-bulk.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub flow_http_format: Option<records::HttpFormat>,
    /// An extra `flow-http` request header `KEY=VALUE`, e.g. `authorization=Basic …`
    /// (repeatable).
    #[arg(long = "flow-http-header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub flow_http_headers: Vec<(String, String)>,
    /// The `flow-json` sink writes to this file (rotated by size) instead of standard output.
    #[arg(long, value_name = "PATH")]
    pub flow_json_file: Option<PathBuf>,
    /// Kafka bootstrap brokers of the `kafka` sink (comma-separated or repeated).
    #[arg(
        long = "kafka-brokers",
        value_name = "HOST:PORT,...",
        value_delimiter = ','
    )]
    pub kafka_brokers: Vec<String>,
    /// Topic of the `kafka` sink.
    #[arg(long, value_name = "TOPIC")]
    pub kafka_topic: Option<String>,
    /// Record value of the `kafka` sink.
    #[arg(long, value_enum)]
    pub kafka_format: Option<kafka::KafkaFormat>,
    /// Batch compression of the `kafka` sink.
    #[arg(long, value_enum)]
    pub kafka_compression: Option<kafka::KafkaCompression>,
    /// Create the `kafka` sink's topic when it does not exist.
    #[arg(long)]
    pub kafka_create_topic: bool,
    /// A Kafka client property, `NAME=VALUE` (repeatable), e.g. `linger.ms=50`,
    /// `security.protocol=SASL_SSL`; unsupported names are refused with the list.
    #[arg(long = "kafka-property", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub kafka_properties: Vec<(String, String)>,
    /// Exporter prefix allowed to send, on every listen address (repeatable; none: any).
    #[arg(long = "allow-exporter", value_name = "PREFIX")]
    pub allow_exporters: Vec<crate::prefix::Prefix>,
    /// Exporter prefix refused on every listen address (repeatable).
    #[arg(long = "deny-exporter", value_name = "PREFIX")]
    pub deny_exporters: Vec<crate::prefix::Prefix>,
    /// Bytes of a sampled packet (sFlow, IPFIX packet sections): `frame` (layer 2, as the
    /// agent reports) or `ip` (the IP length, as NetFlow counts) [default: frame].
    #[arg(long, value_name = "frame|ip", value_parser = parse_sflow_bytes)]
    pub sflow_bytes: Option<flowtel_decode::SflowBytes>,
    /// Do not turn sFlow counter samples and drop notifications into interface metrics.
    #[arg(long)]
    pub no_interface_metrics: bool,
    /// Interfaces (and drop-notification sources) whose previous counter sample each receive
    /// worker keeps.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_interfaces: Option<u64>,
}

/// The default of each `run` flag that has one, by clap argument id, taken from
/// [`Config::default`] (the one place defaults live) as `check-config` prints it.
pub fn run_flag_defaults() -> Vec<(&'static str, String)> {
    let c = Config::default();
    let rollup = c.rollups.first().cloned().unwrap_or_default();
    let profile = c.profile.unwrap_or(rollup.profile);
    let join = |v: &[String]| v.join(", ");
    vec![
        (
            "listen",
            join(&c.listen.iter().map(ToString::to_string).collect::<Vec<_>>()),
        ),
        ("workers", c.workers.to_string()),
        ("recv_buffer_bytes", c.recv_buffer_bytes.to_string()),
        ("receive_coalesce_us", c.receive_coalesce_us.to_string()),
        (
            "rollup_interval",
            c.rollup_interval_secs
                .unwrap_or(rollup.interval_secs)
                .to_string(),
        ),
        ("top_k", c.top_k.unwrap_or(rollup.top_k).to_string()),
        (
            "profile",
            match profile {
                Profile::Default => "default",
                Profile::Ktranslate => "ktranslate",
            }
            .to_owned(),
        ),
        (
            "sinks",
            join(
                &c.sinks
                    .iter()
                    .map(|s| {
                        clap::ValueEnum::to_possible_value(s)
                            .map_or_else(String::new, |v| v.get_name().to_owned())
                    })
                    .collect::<Vec<_>>(),
            ),
        ),
        ("prometheus_listen", c.prometheus_listen.to_string()),
        ("otlp_endpoint", c.otlp.endpoint.clone()),
        (
            "otlp_compression",
            match c.otlp.compression {
                Compression::Gzip => "gzip",
                Compression::None => "none",
            }
            .to_owned(),
        ),
        (
            "otlp_temporality",
            match c.otlp.temporality {
                Temporality::Gauge => "gauge",
                Temporality::Delta => "delta",
                Temporality::Cumulative => "cumulative",
            }
            .to_owned(),
        ),
        ("otlp_timeout", c.otlp.timeout_secs.to_string()),
        ("queue_max_windows", c.otlp.queue_max_windows.to_string()),
        (
            "max_points_per_request",
            c.otlp.max_points_per_request.to_string(),
        ),
        (
            "service_name",
            c.resource
                .service_name
                .clone()
                .unwrap_or_else(|| default_service_name(profile).to_owned()),
        ),
        ("log_level", c.log_level.clone()),
        ("shutdown_grace", c.shutdown_grace_secs.to_string()),
        (
            "exporter_report_interval",
            c.exporter_report_interval_secs.to_string(),
        ),
        (
            "exporter_silent_after",
            c.exporter_silent_after_secs.to_string(),
        ),
        (
            "default_sampling_rate",
            // No configured rate: records are counted as sampled 1 in 1.
            c.enrichment.sampling.default_rate.unwrap_or(1).to_string(),
        ),
        (
            "self_metrics_interval",
            c.self_metrics_interval_secs.to_string(),
        ),
        ("max_exporters", c.decoder.max_exporters.to_string()),
        (
            "max_templates_per_exporter",
            c.decoder.max_templates_per_exporter.to_string(),
        ),
        (
            "max_fields_per_template",
            c.decoder.max_fields_per_template.to_string(),
        ),
        ("max_pending_sets", c.decoder.max_pending_sets.to_string()),
        (
            "memory_budget_bytes",
            c.decoder.memory_budget_bytes.to_string(),
        ),
        (
            "pending_timeout",
            c.decoder.pending_timeout_secs.to_string(),
        ),
        ("flow_sample", c.flow_records.sample.to_string()),
        ("max_interfaces", c.interfaces.max_interfaces.to_string()),
        (
            "sflow_bytes",
            match c.decoder.sflow_bytes {
                flowtel_decode::SflowBytes::Frame => "frame",
                flowtel_decode::SflowBytes::Ip => "ip",
            }
            .to_owned(),
        ),
        (
            "flow_logs_attribute_names",
            c.flow_logs.attribute_names.clone(),
        ),
        ("flow_http_format", value_name(c.flow_http.format)),
        ("kafka_topic", c.kafka.topic.clone()),
        ("kafka_format", value_name(c.kafka.format)),
        ("kafka_compression", value_name(c.kafka.compression)),
    ]
}

/// The name a flag takes for `v`.
fn value_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// `cmd` (a command with the [`RunArgs`] flags) with `[default: …]` appended to the help of
/// every flag that has a default, from [`run_flag_defaults`]. The flags themselves stay
/// without a clap default: a flag given overrides the file, one not given does not.
pub fn with_run_defaults_in_help(mut cmd: clap::Command) -> clap::Command {
    for (id, default) in run_flag_defaults() {
        if cmd.get_arguments().all(|a| a.get_id() != id) {
            continue;
        }
        cmd = cmd.mut_arg(id, |a| {
            let help = a.get_help().map(ToString::to_string).unwrap_or_default();
            let long = a.get_long_help().map(ToString::to_string);
            let a = a.help(format!(
                "{} [default: {default}]",
                help.trim_end_matches('.')
            ));
            match long {
                Some(l) => a.long_help(format!("{} [default: {default}]", l.trim_end_matches('.'))),
                None => a,
            }
        });
    }
    cmd
}

fn parse_flow_rule(s: &str) -> Result<crate::pipeline::select::RuleConfig, String> {
    use crate::pipeline::select::{Action, RuleConfig, Selection};
    let (action, conditions) = match s.split_once(':') {
        Some(("keep", c)) => (Action::Keep, c),
        Some(("drop", c)) => (Action::Drop, c),
        _ if s == "keep" || s == "drop" => (
            if s == "keep" {
                Action::Keep
            } else {
                Action::Drop
            },
            "",
        ),
        _ => {
            return Err(format!(
                "{s:?}: expected keep:CONDITIONS or drop:CONDITIONS"
            ));
        }
    };
    let rule = RuleConfig::parse_flag(action, conditions).map_err(|e| e.to_string())?;
    Selection::new(std::slice::from_ref(&rule), 1).map_err(|e| e.to_string())?;
    Ok(rule)
}

fn parse_sflow_bytes(s: &str) -> Result<flowtel_decode::SflowBytes, String> {
    s.parse()
}

fn parse_device(s: &str) -> Result<(std::net::IpAddr, String), String> {
    let (k, v) = parse_key_value(s)?;
    let addr = k
        .parse()
        .map_err(|_| format!("expected ADDR=NAME, {k:?} is not an IP address"))?;
    Ok((addr, v))
}

fn parse_rate(s: &str) -> Result<(std::net::IpAddr, u32), String> {
    let (k, v) = parse_key_value(s)?;
    let addr = k
        .parse()
        .map_err(|_| format!("expected ADDR=N, {k:?} is not an IP address"))?;
    match v.parse::<u32>() {
        Ok(n) if n >= 1 => Ok((addr, n)),
        _ => Err(format!("expected ADDR=N with N >= 1, got {v:?}")),
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Read and parse a configuration file. Errors name the file, and for unknown keys or wrong
/// types the key and its line (`otlp: unknown field `endpiont` … at line 3 column 3`).
pub fn load_file(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse_yaml(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Parse YAML text into a [`Config`]; an empty document is the default configuration.
pub fn parse_yaml(text: &str) -> anyhow::Result<Config> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let config: Config = serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config)
}

/// Environment lookup, injectable so tests need not touch the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, with empty variables treated as unset (as the OTel spec asks).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Build the effective configuration: defaults < file < environment < flags.
pub fn resolve(args: &RunArgs, env: Env<'_>) -> anyhow::Result<Config> {
    let config = match &args.config {
        Some(path) => load_file(path)?,
        None => Config::default(),
    };
    resolve_over(config, args, env)
}

/// Environment and flags over a configuration read from a file, then finished and validated.
fn resolve_over(mut config: Config, args: &RunArgs, env: Env<'_>) -> anyhow::Result<Config> {
    // The file's Kafka properties are the file's settings: flags and the environment override
    // them.
    config.kafka.apply_properties()?;
    // The logs' OTLP settings: the file's, then the `_LOGS_` (else generic) variables, the
    // `--otlp-*` flags and the logs' own endpoint.
    let mut logs = config.otlp.clone();
    apply_otlp_env(&mut logs, env, "LOGS")?;
    apply_env(&mut config, env)?;
    apply_flags(&mut config, args);
    apply_otlp_flags(&mut logs, args);
    if let Some(e) = &args.flow_logs_endpoint {
        config.flow_logs.endpoint = Some(e.clone());
    }
    if let Some(e) = &config.flow_logs.endpoint {
        logs.endpoint = e.trim().to_owned();
    }
    config.flow_logs.otlp = Some(logs);
    finish(&mut config)?;
    validate(&config)?;
    Ok(config)
}

/// Finish (defaults, derived settings) and validate a configuration built in code (`flowtel
/// demo`).
pub fn finish_and_validate(config: &mut Config) -> anyhow::Result<()> {
    finish(config)?;
    validate(config)
}

/// Resolve settings that depend on others: ktranslate specs become rollups, the top-level
/// interval, top-K and profile are applied to every rollup, GeoIP paths move into the
/// enrichment settings, and `service.name` takes the profile's default.
fn finish(config: &mut Config) -> anyhow::Result<()> {
    if !config.rollup_specs.is_empty() {
        config.rollups =
            flowtel_rollup::parse_specs(config.rollup_specs.iter().map(String::as_str))
                .context("rollup_specs")?;
        config.rollup_specs.clear();
        // A ktranslate spec means ktranslate's names, unless the profile says otherwise.
        if config.profile.is_none() {
            config.profile = Some(Profile::Ktranslate);
        }
    }
    for r in &mut config.rollups {
        if let Some(i) = config.rollup_interval_secs {
            r.interval_secs = i;
        }
        if let Some(k) = config.top_k {
            r.top_k = k;
            r.max_keys = r.max_keys.max(k.saturating_mul(2));
        }
        if let Some(p) = config.profile {
            r.profile = p;
        }
    }
    if let Some(p) = &config.geoip.country_db {
        config.enrichment.geoip_country_db = Some(p.clone());
    }
    if let Some(p) = &config.geoip.asn_db {
        config.enrichment.geoip_asn_db = Some(p.clone());
    }
    config.kafka.apply_properties()?;
    if config.resource.service_name.is_none() {
        let profile = config.profile.unwrap_or(Profile::Default);
        config.resource.service_name = Some(default_service_name(profile).to_owned());
    }
    Ok(())
}

/// `OTEL_EXPORTER_OTLP_{signal}_{suffix}`, else the generic `OTEL_EXPORTER_OTLP_{suffix}`.
fn otlp_var(env: Env<'_>, signal: &str, suffix: &str) -> Option<String> {
    env(&format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}"))
        .or_else(|| env(&format!("OTEL_EXPORTER_OTLP_{suffix}")))
}

/// The OTLP exporter variables of one signal (`METRICS` or `LOGS`) over `otlp`.
fn apply_otlp_env(otlp: &mut OtlpConfig, env: Env<'_>, signal: &str) -> anyhow::Result<()> {
    if let Some(endpoint) = otlp_var(env, signal, "ENDPOINT") {
        otlp.endpoint = endpoint.trim().to_owned();
    }
    if let Some(headers) = otlp_var(env, signal, "HEADERS") {
        for (k, v) in parse_w3c_list(&headers).context("OTEL_EXPORTER_OTLP_HEADERS")? {
            otlp.headers.insert(k, v);
        }
    }
    if let Some(c) = otlp_var(env, signal, "COMPRESSION") {
        otlp.compression = Compression::parse(&c).with_context(|| {
            format!("OTEL_EXPORTER_OTLP_COMPRESSION: expected gzip or none, got {c:?}")
        })?;
    }
    if let Some(t) = otlp_var(env, signal, "TIMEOUT") {
        // The variable is in milliseconds; our setting in whole seconds (at least 1).
        let ms: u64 = t.trim().parse().with_context(|| {
            format!("OTEL_EXPORTER_OTLP_TIMEOUT: expected milliseconds, got {t:?}")
        })?;
        otlp.timeout_secs = ms.div_ceil(1000).max(1);
    }
    if let Some(p) = otlp_var(env, signal, "CERTIFICATE") {
        otlp.ca_file = Some(PathBuf::from(p));
    }
    if let Some(p) = otlp_var(env, signal, "CLIENT_CERTIFICATE") {
        otlp.client_cert_file = Some(PathBuf::from(p));
    }
    if let Some(p) = otlp_var(env, signal, "CLIENT_KEY") {
        otlp.client_key_file = Some(PathBuf::from(p));
    }
    Ok(())
}

/// The OpenTelemetry SDK environment variables (opentelemetry-specification,
/// "OpenTelemetry Environment Variable Specification" and "OTLP Exporter Configuration").
fn apply_env(config: &mut Config, env: Env<'_>) -> anyhow::Result<()> {
    apply_otlp_env(&mut config.otlp, env, "METRICS")?;
    if let Some(attrs) = env("OTEL_RESOURCE_ATTRIBUTES") {
        for (k, v) in parse_w3c_list(&attrs).context("OTEL_RESOURCE_ATTRIBUTES")? {
            if k == "service.name" {
                config.resource.service_name = Some(v);
            } else {
                config.resource.attributes.insert(k, v);
            }
        }
    }
    if let Some(name) = env("OTEL_SERVICE_NAME") {
        config.resource.service_name = Some(name.trim().to_owned());
    }
    Ok(())
}

/// `key1=value1,key2=value2` with percent-encoded values (W3C Baggage syntax, as the OTel
/// spec uses for `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`).
fn parse_w3c_list(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            bail!("expected key=value, got {item:?}");
        };
        let k = k.trim();
        if k.is_empty() {
            bail!("empty key in {item:?}");
        }
        let v = percent_encoding::percent_decode_str(v.trim())
            .decode_utf8()
            .with_context(|| format!("value of {k} is not UTF-8 after percent-decoding"))?;
        out.push((k.to_owned(), v.into_owned()));
    }
    Ok(out)
}

/// The `--otlp-*` flags over `otlp` (the metrics' settings, and the logs' base).
fn apply_otlp_flags(otlp: &mut OtlpConfig, a: &RunArgs) {
    fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
        if let Some(v) = v {
            *slot = v.clone();
        }
    }
    set(&mut otlp.endpoint, &a.otlp_endpoint);
    for (k, v) in &a.otlp_headers {
        otlp.headers.insert(k.clone(), v.clone());
    }
    set(&mut otlp.compression, &a.otlp_compression);
    set(&mut otlp.temporality, &a.otlp_temporality);
    set(&mut otlp.timeout_secs, &a.otlp_timeout);
    if a.otlp_ca_file.is_some() {
        otlp.ca_file.clone_from(&a.otlp_ca_file);
    }
    if a.otlp_client_cert.is_some() {
        otlp.client_cert_file.clone_from(&a.otlp_client_cert);
    }
    if a.otlp_client_key.is_some() {
        otlp.client_key_file.clone_from(&a.otlp_client_key);
    }
    set(&mut otlp.queue_max_windows, &a.queue_max_windows);
    set(&mut otlp.max_points_per_request, &a.max_points_per_request);
}

fn apply_flags(config: &mut Config, a: &RunArgs) {
    fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
        if let Some(v) = v {
            *slot = v.clone();
        }
    }
    fn set_opt<T: Clone>(slot: &mut Option<T>, v: &Option<T>) {
        if v.is_some() {
            slot.clone_from(v);
        }
    }
    if !a.listen.is_empty() {
        config.listen = a.listen.clone();
    }
    set(&mut config.workers, &a.workers);
    set(&mut config.recv_buffer_bytes, &a.recv_buffer_bytes);
    set(&mut config.receive_coalesce_us, &a.receive_coalesce_us);
    set_opt(&mut config.rollup_interval_secs, &a.rollup_interval);
    if let Some(k) = a.top_k {
        config.top_k = Some(usize::try_from(k).unwrap_or(usize::MAX));
    }
    if !a.rollup_specs.is_empty() {
        config.rollup_specs = a.rollup_specs.clone();
    }
    set_opt(&mut config.profile, &a.profile);
    if !a.sinks.is_empty() {
        config.sinks = a.sinks.clone();
    }
    set(&mut config.prometheus_listen, &a.prometheus_listen);
    apply_otlp_flags(&mut config.otlp, a);
    set_opt(&mut config.resource.service_name, &a.service_name);
    for (k, v) in &a.resource_attributes {
        if k == "service.name" {
            config.resource.service_name = Some(v.clone());
        } else {
            config.resource.attributes.insert(k.clone(), v.clone());
        }
    }
    set_opt(&mut config.geoip.country_db, &a.geoip_country_db);
    set_opt(&mut config.geoip.asn_db, &a.geoip_asn_db);
    set(&mut config.log_level, &a.log_level);
    if a.tee_logs {
        config.tee_logs = true;
    }
    set(&mut config.shutdown_grace_secs, &a.shutdown_grace);
    set(
        &mut config.exporter_report_interval_secs,
        &a.exporter_report_interval,
    );
    set(
        &mut config.self_metrics_interval_secs,
        &a.self_metrics_interval,
    );
    set(
        &mut config.exporter_silent_after_secs,
        &a.exporter_silent_after,
    );
    for (addr, name) in &a.devices {
        config.enrichment.devices.insert(*addr, name.clone());
    }
    for (addr, rate) in &a.sampling_rates {
        config.enrichment.sampling.exporters.insert(*addr, *rate);
    }
    if a.default_sampling_rate.is_some() {
        config.enrichment.sampling.default_rate = a.default_sampling_rate;
    }
    if a.networks_file.is_some() {
        config.enrichment.networks_file.clone_from(&a.networks_file);
    }
    let d = &mut config.decoder;
    if a.scope_includes_port {
        d.scope_includes_port = true;
    }
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    if let Some(n) = a.max_exporters {
        d.max_exporters = size(n);
    }
    if let Some(n) = a.max_templates_per_exporter {
        d.max_templates_per_exporter = size(n);
    }
    if let Some(n) = a.max_fields_per_template {
        d.max_fields_per_template = size(n);
    }
    if let Some(n) = a.max_pending_sets {
        d.max_pending_sets = size(n);
    }
    if let Some(n) = a.memory_budget_bytes {
        d.memory_budget_bytes = size(n);
    }
    set(&mut d.pending_timeout_secs, &a.pending_timeout);
    set(&mut config.flow_records.sample, &a.flow_sample);
    set_opt(&mut config.flow_json.file, &a.flow_json_file);
    set_opt(&mut config.flow_http.url, &a.flow_http_url);
    set(&mut config.flow_http.format, &a.flow_http_format);
    for (k, v) in &a.flow_http_headers {
        config.flow_http.headers.insert(k.clone(), v.clone());
    }
    set(
        &mut config.flow_logs.attribute_names,
        &a.flow_logs_attribute_names,
    );
    let k = &mut config.kafka;
    if !a.kafka_brokers.is_empty() {
        k.brokers = a
            .kafka_brokers
            .iter()
            .map(|b| b.trim().to_owned())
            .collect();
    }
    set(&mut k.topic, &a.kafka_topic);
    set(&mut k.format, &a.kafka_format);
    set(&mut k.compression, &a.kafka_compression);
    if a.kafka_create_topic {
        k.create_topic = true;
    }
    // Applied by `finish`, after every other flag.
    for (name, value) in &a.kafka_properties {
        k.properties
            .insert(name.clone(), serde_yaml::Value::String(value.clone()));
    }
    config
        .access
        .allow
        .extend(a.allow_exporters.iter().copied());
    config.access.deny.extend(a.deny_exporters.iter().copied());
    if !a.flow_rules.is_empty() {
        config.flow_records.rules = a.flow_rules.clone();
    }
    set(&mut d.sflow_bytes, &a.sflow_bytes);
    if a.no_interface_metrics {
        config.interfaces.enabled = false;
    }
    if let Some(n) = a.max_interfaces {
        config.interfaces.max_interfaces = size(n);
    }
}

fn validate(c: &Config) -> anyhow::Result<()> {
    if c.listen.is_empty() {
        bail!("listen: at least one address is required");
    }
    if c.rollup_interval_secs == Some(0) {
        bail!("rollup_interval_secs: must be an integer >= 1");
    }

    if c.top_k == Some(0) {
        bail!("top_k: must be >= 1");
    }
    if c.receive_coalesce_us > MAX_COALESCE_US {
        bail!(
            "receive_coalesce_us: {} is above the longest pause, {MAX_COALESCE_US} (100 ms)",
            c.receive_coalesce_us
        );
    }
    for l in &c.access.listen {
        if !c.listen.contains(&l.address) {
            bail!(
                "access.listen: {} is not one of the listen addresses ({})",
                l.address,
                c.listen
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    crate::pipeline::select::Selection::new(&c.flow_records.rules, c.flow_records.sample)
        .map_err(|e| anyhow::anyhow!("flow_records.rules: {e}"))?;
    if c.flow_records.sample == 0 {
        bail!("flow_records.sample: must be >= 1 (1 keeps every record)");
    }
    c.flow_logs.names()?;
    if c.flow_records.batch_max_records == 0 || c.flow_records.queue_max_records == 0 {
        bail!("flow_records.batch_max_records and queue_max_records: must be >= 1");
    }
    let d = &c.decoder;
    for (key, v) in [
        ("max_exporters", d.max_exporters),
        ("max_templates_per_exporter", d.max_templates_per_exporter),
        ("max_fields_per_template", d.max_fields_per_template),
    ] {
        if v == 0 {
            bail!("decoder.{key}: must be >= 1");
        }
    }
    if d.pending_timeout_secs == 0 {
        bail!("decoder.pending_timeout_secs: must be >= 1");
    }
    if (d.memory_budget_bytes as u64) < MIN_MEMORY_BUDGET_BYTES {
        bail!(
            "decoder.memory_budget_bytes: must be >= {MIN_MEMORY_BUDGET_BYTES} (1 MiB); the default is {}",
            flowtel_decode::DecoderConfig::default().memory_budget_bytes
        );
    }
    flowtel_decode::validate_fields(&d.fields).context("decoder.fields")?;
    if c.interfaces.max_interfaces == 0 {
        bail!("interfaces.max_interfaces: must be >= 1");
    }
    if c.interfaces.idle_secs == 0 {
        bail!("interfaces.idle_secs: must be >= 1");
    }
    if c.rollups.is_empty() {
        bail!("rollups: at least one rollup is required");
    }
    flowtel_rollup::config::validate_rollups(&c.rollups).context("rollups")?;
    if c.sinks.is_empty() {
        bail!("sinks: at least one of otlp, stdout, prometheus, flow-json, kafka is required");
    }
    c.kafka.validate(c.has_sink(SinkKind::Kafka))?;
    if c.self_metrics_interval_secs == 0 {
        bail!("self_metrics_interval_secs: must be >= 1");
    }
    if c.otlp.queue_max_windows == 0 {
        bail!("otlp.queue_max_windows: must be >= 1");
    }
    if c.otlp.max_points_per_request == 0 {
        bail!("otlp.max_points_per_request: must be >= 1");
    }
    c.otlp.check_rules()
}

impl Config {
    /// Receive workers to start: the configured number, or one per core.
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    pub fn has_sink(&self, sink: SinkKind) -> bool {
        self.sinks.contains(&sink)
    }

    /// The shortest rollup window: the flush loop's period.
    pub fn flush_interval_secs(&self) -> u64 {
        self.rollups
            .iter()
            .map(|r| r.interval_secs)
            .min()
            .unwrap_or(60)
            .max(1)
    }

    /// The effective configuration as YAML (what `check-config --show-secrets` prints).
    pub fn to_yaml(&self) -> anyhow::Result<String> {
        Ok(serde_yaml::to_string(self)?)
    }

    /// The configuration with its secrets replaced by `<redacted>`: every OTLP header value,
    /// and credentials or a query string in the endpoint. What `check-config` prints.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        for v in c.otlp.headers.values_mut() {
            *v = REDACTED.to_owned();
        }
        c.otlp.endpoint = flowtel_otlp::redact_endpoint(&c.otlp.endpoint);
        c.kafka = c.kafka.redacted();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn resolve_text(text: &str, args: RunArgs, env: Env<'_>) -> anyhow::Result<Config> {
        resolve_over(parse_yaml(text)?, &args, env)
    }

    #[test]
    fn kafka_flags_beat_the_files_properties_and_flag_properties_come_last() {
        use clap::Parser as _;
        use kafka::KafkaCompression;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            run: RunArgs,
        }
        let file = "sinks: [kafka]\nkafka:\n  brokers: [\"k1:9092\"]\n  properties: {compression.type: gzip, linger.ms: 20, client.id: edge}\n";
        let args = |a: &[&str]| {
            T::try_parse_from([&["flowtel"][..], a].concat())
                .unwrap()
                .run
        };
        let c = resolve_text(file, args(&["--kafka-compression", "zstd"]), &no_env).unwrap();
        assert_eq!(
            c.kafka.compression,
            KafkaCompression::Zstd,
            "a flag beats the file"
        );
        assert_eq!(c.kafka.linger_ms, Some(20));
        assert_eq!(c.kafka.client_id, "edge");
        assert!(c.kafka.properties.is_empty());
        let c = resolve_text(
            file,
            args(&[
                "--kafka-compression",
                "zstd",
                "--kafka-property",
                "compression.type=lz4",
                "--kafka-brokers",
                "k2:9092,k3:9092",
                "--kafka-topic",
                "netflow",
                "--kafka-format",
                "json",
                "--kafka-create-topic",
            ]),
            &no_env,
        )
        .unwrap();
        assert_eq!(c.kafka.compression, KafkaCompression::Lz4);
        assert_eq!(c.kafka.brokers, vec!["k2:9092", "k3:9092"]);
        assert_eq!(c.kafka.topic, "netflow");
        assert_eq!(c.kafka.format, kafka::KafkaFormat::Json);
        assert!(c.kafka.create_topic);
        // The sink needs brokers; a bad property names itself.
        let err = resolve_text("sinks: [kafka]\n", RunArgs::default(), &no_env).unwrap_err();
        assert!(
            err.to_string()
                .contains("kafka.brokers: the kafka sink needs at least one broker"),
            "{err}"
        );
        let err =
            resolve_text(file, args(&["--kafka-property", "retries=3"]), &no_env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kafka.properties.retries: unknown or unsupported"),
            "{err}"
        );
        // Brokers are not needed when the sink is off.
        resolve_text("kafka: {topic: other}\n", RunArgs::default(), &no_env).unwrap();
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let c = parse_yaml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen, vec!["0.0.0.0:9995".parse().unwrap()]);
        assert_eq!(c.sinks, vec![SinkKind::Otlp]);
        assert_eq!(c.otlp.endpoint, "http://localhost:4317");
        assert_eq!(c.prometheus_listen, "0.0.0.0:9464".parse().unwrap());
        assert_eq!(c.resource.service_name, None);
        let c = resolve_text("", RunArgs::default(), &no_env).unwrap();
        assert_eq!(c.resource.service_name.as_deref(), Some("flowtel"));
        assert_eq!(c.shutdown_grace_secs, 10);
    }

    #[test]
    fn unknown_top_level_key_is_named_with_its_line() {
        let err =
            parse_yaml("listen: [\"127.0.0.1:2055\"]\nrollup_interval_secs: 30\nlisten_addr: x\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `listen_addr`"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn unknown_nested_key_is_named_with_its_line() {
        let text =
            "sinks: [otlp]\notlp:\n  endpoint: http://alloy:4317\n  endpiont: http://x:4317\n";
        let err = parse_yaml(text).unwrap_err().to_string();
        assert!(err.contains("unknown field `endpiont`"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key_and_line() {
        let err = parse_yaml("workers: 2\nrollup_interval_secs: soon\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rollup_interval_secs"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_sink_is_rejected() {
        let err = parse_yaml("sinks: [otlp, elasticsearch]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("elasticsearch"), "{err}");
    }

    #[test]
    fn file_values_are_read() {
        let text = "\
listen: [\"127.0.0.1:2055\", \"[::1]:6343\"]
workers: 2
recv_buffer_bytes: 1048576
receive_coalesce_us: 250
rollup_interval_secs: 10
top_k: 50
sinks: [stdout, prometheus]
prometheus_listen: 127.0.0.1:9999
profile: ktranslate
otlp:
  endpoint: https://alloy.example:4317
  headers: {authorization: Basic abc}
  compression: none
  ca_file: /etc/ssl/ca.pem
resource:
  service_name: edge-collector
  attributes: {deployment.environment: prod}
tee_logs: true
";
        let c = resolve_text(text, RunArgs::default(), &no_env).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.listen[1], "[::1]:6343".parse().unwrap());
        assert_eq!(c.workers, 2);
        assert_eq!(c.receive_coalesce_us, 250);
        assert_eq!(c.rollup_interval_secs, Some(10));
        assert_eq!(c.rollups[0].interval_secs, 10);
        assert_eq!(c.rollups[0].top_k, 50);
        assert_eq!(c.top_k, Some(50));
        assert_eq!(c.sinks, vec![SinkKind::Stdout, SinkKind::Prometheus]);
        assert_eq!(c.profile, Some(Profile::Ktranslate));
        assert_eq!(c.rollups[0].metric_name(), "kentik.rollup.bytes_by_flow");
        assert_eq!(c.otlp.compression, Compression::None);
        assert_eq!(c.otlp.headers["authorization"], "Basic abc");
        assert_eq!(
            c.resource.service_name.as_deref().unwrap(),
            "edge-collector"
        );
        assert_eq!(c.resource.attributes["deployment.environment"], "prod");
        assert!(c.tee_logs);
    }

    #[test]
    fn decoder_section_is_read_overridden_by_flags_and_reaches_the_pipeline() {
        let defaults = Config::default().decoder.to_decoder_config();
        assert_eq!(defaults, flowtel_decode::DecoderConfig::default());

        let text = "\
decoder:
  scope_includes_port: true
  max_exporters: 20
  max_templates_per_exporter: 8
  max_fields_per_template: 64
  max_pending_sets: 0
  memory_budget_bytes: 2000000
  pending_timeout_secs: 5
  sflow_bytes: ip
";
        let c = resolve_text(text, RunArgs::default(), &no_env).unwrap();
        let d = c.decoder.to_decoder_config();
        assert!(d.scope_includes_port);
        assert_eq!(d.max_exporters, 20);
        assert_eq!(d.max_templates_per_exporter, 8);
        assert_eq!(d.max_fields_per_template, 64);
        assert_eq!(d.max_pending_sets, 0);
        assert_eq!(d.memory_budget_bytes, 2_000_000);
        assert_eq!(d.pending_timeout_ns, 5_000_000_000);
        assert_eq!(d.sflow_bytes, flowtel_decode::SflowBytes::Ip);
        assert!(!d.keep_unknown_fields);
        assert_eq!(
            crate::pipeline::PipelineSpec::from_config(&c)
                .unwrap()
                .decoder,
            d
        );

        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            run: RunArgs,
        }
        let args = T::try_parse_from([
            "run",
            "--max-exporters",
            "3",
            "--max-templates-per-exporter",
            "4",
            "--max-fields-per-template",
            "5",
            "--max-pending-sets",
            "6",
            "--memory-budget-bytes",
            "3000000",
            "--pending-timeout",
            "7",
            "--sflow-bytes",
            "frame",
        ])
        .unwrap()
        .run;
        let c = resolve_text(text, args, &no_env).unwrap();
        assert_eq!(
            c.decoder,
            DecoderSettings {
                scope_includes_port: true,
                max_exporters: 3,
                max_templates_per_exporter: 4,
                max_fields_per_template: 5,
                max_pending_sets: 6,
                memory_budget_bytes: 3_000_000,
                pending_timeout_secs: 7,
                sflow_bytes: flowtel_decode::SflowBytes::Frame,
                fields: Vec::new(),
            }
        );
        let flag = T::try_parse_from(["run", "--scope-includes-port"])
            .unwrap()
            .run;
        assert!(
            resolve_text("", flag, &no_env)
                .unwrap()
                .decoder
                .scope_includes_port
        );

        let err = parse_yaml("decoder:\n  max_exporter: 3\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_exporter`"),
            "{err}"
        );
    }

    #[test]
    fn precedence_is_flags_then_env_then_file_then_defaults() {
        let text =
            "otlp:\n  endpoint: http://file:4317\n  compression: none\nrollup_interval_secs: 30\n";
        // file only
        let c = resolve_text(text, RunArgs::default(), &no_env).unwrap();
        assert_eq!(c.otlp.endpoint, "http://file:4317");
        assert_eq!(c.otlp.compression, Compression::None);
        assert_eq!(c.rollup_interval_secs, Some(30));
        // env over file
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ]);
        let c = resolve_text(text, RunArgs::default(), &env).unwrap();
        assert_eq!(c.otlp.endpoint, "http://env:4317");
        assert_eq!(c.otlp.compression, Compression::Gzip);
        // flags over env
        let args = RunArgs {
            otlp_endpoint: Some("http://flag:4317".into()),
            rollup_interval: Some(1),
            ..RunArgs::default()
        };
        let c = resolve_text(text, args, &env).unwrap();
        assert_eq!(c.otlp.endpoint, "http://flag:4317");
        assert_eq!(c.rollup_interval_secs, Some(1));
        assert_eq!(c.rollups[0].interval_secs, 1);
        assert_eq!(c.otlp.compression, Compression::Gzip);
    }

    #[test]
    fn metrics_specific_variable_beats_the_generic_one() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"),
        ]);
        let c = resolve_text("", RunArgs::default(), &env).unwrap();
        assert_eq!(c.otlp.endpoint, "http://metrics:4317");
    }

    #[test]
    fn the_logs_take_the_logs_variables_then_their_own_endpoint() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=all"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:4317"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "none"),
        ]);
        let file = "otlp:\n  timeout_secs: 7\n";
        let c = resolve_text(file, RunArgs::default(), &env).unwrap();
        assert_eq!(c.otlp.endpoint, "http://metrics:4317");
        assert_eq!(c.otlp.compression, Compression::Gzip);
        let logs = c.flow_logs.otlp.clone().unwrap();
        assert_eq!(logs.endpoint, "http://logs:4317");
        assert_eq!(logs.compression, Compression::None);
        assert_eq!(logs.timeout_secs, 7, "the file's otlp section is the base");
        assert_eq!(
            logs.headers.get("x-tenant").map(String::as_str),
            Some("all")
        );
        let args = RunArgs {
            flow_logs_endpoint: Some("http://elsewhere:4317".to_owned()),
            ..RunArgs::default()
        };
        let c = resolve_text(file, args, &env).unwrap();
        assert_eq!(c.flow_logs.otlp.unwrap().endpoint, "http://elsewhere:4317");
        assert_eq!(c.otlp.endpoint, "http://metrics:4317");
    }

    #[test]
    fn headers_and_resource_attributes_are_percent_decoded_and_merged() {
        let env = env_of(&[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Basic%20dXNlcjpwYXNz, x-scope-orgid=tenant1",
            ),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=from-attrs,deployment.environment=lab,site=paris%2Deast",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://alloy:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]);
        let text = "otlp:\n  headers: {x-scope-orgid: file, keep: me}\nresource:\n  attributes: {site: file, rack: r1}\n";
        let args = RunArgs {
            resource_attributes: vec![("rack".into(), "r2".into())],
            ..RunArgs::default()
        };
        let c = resolve_text(text, args, &env).unwrap();
        assert_eq!(c.otlp.headers["authorization"], "Basic dXNlcjpwYXNz");
        assert_eq!(c.otlp.headers["x-scope-orgid"], "tenant1");
        assert_eq!(c.otlp.headers["keep"], "me");
        assert_eq!(c.resource.attributes["site"], "paris-east");
        assert_eq!(c.resource.attributes["rack"], "r2");
        assert!(!c.resource.attributes.contains_key("service.name"));
        assert_eq!(c.resource.service_name.as_deref().unwrap(), "from-attrs");
        assert_eq!(c.otlp.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(c.otlp.client_key_file.as_deref(), Some(Path::new("/k.pem")));
        assert_eq!(c.otlp.timeout_secs, 3);
    }

    #[test]
    fn otel_service_name_beats_resource_attributes_and_profile_default() {
        let env = env_of(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=a"),
            ("OTEL_SERVICE_NAME", "b"),
        ]);
        let c = resolve_text("profile: ktranslate\n", RunArgs::default(), &env).unwrap();
        assert_eq!(c.resource.service_name.as_deref().unwrap(), "b");
        let c = resolve_text("profile: ktranslate\n", RunArgs::default(), &no_env).unwrap();
        assert_eq!(c.resource.service_name.as_deref().unwrap(), "ktranslate");
    }

    #[test]
    fn bad_environment_values_are_errors_naming_the_variable() {
        let env = env_of(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")]);
        let err = resolve_text("", RunArgs::default(), &env).unwrap_err();
        assert!(
            format!("{err:#}").contains("OTEL_EXPORTER_OTLP_COMPRESSION"),
            "{err:#}"
        );
        let env = env_of(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue")]);
        let err = resolve_text("", RunArgs::default(), &env).unwrap_err();
        assert!(
            format!("{err:#}").contains("OTEL_RESOURCE_ATTRIBUTES"),
            "{err:#}"
        );
    }

    #[test]
    fn invalid_values_are_rejected() {
        for (text, needle) in [
            ("rollup_interval_secs: 0\n", "rollup_interval_secs"),
            ("listen: []\n", "listen"),
            ("sinks: []\n", "sinks"),
            ("top_k: 0\n", "top_k"),
            (
                "receive_coalesce_us: 100001\n",
                "receive_coalesce_us: 100001 is above the longest pause, 100000",
            ),
            ("otlp:\n  endpoint: alloy:4317\n", "otlp.endpoint"),
            (
                "otlp:\n  endpoint: https://a:4317\n  client_key_file: /k.pem\n",
                "client_cert_file",
            ),
            ("decoder:\n  max_exporters: 0\n", "decoder.max_exporters"),
            (
                "decoder:\n  memory_budget_bytes: 65536\n",
                "decoder.memory_budget_bytes: must be >= 1048576",
            ),
            (
                "decoder:\n  max_fields_per_template: 0\n",
                "decoder.max_fields_per_template",
            ),
            (
                "decoder:\n  pending_timeout_secs: 0\n",
                "decoder.pending_timeout_secs",
            ),
        ] {
            let err = resolve_text(text, RunArgs::default(), &no_env).unwrap_err();
            assert!(err.to_string().contains(needle), "{text:?}: {err}");
        }
    }

    fn error_of(text: &str, args: RunArgs, env: Env<'_>) -> String {
        format!("{:#}", resolve_text(text, args, env).unwrap_err())
    }

    fn assert_mentions(err: &str, needles: &[&str]) {
        for n in needles {
            assert!(err.contains(n), "{n:?} missing in: {err}");
        }
    }

    #[test]
    fn tls_settings_with_a_plain_text_endpoint_name_both_sides() {
        // From the file.
        let err = error_of("otlp:\n  ca_file: /ca.pem\n", RunArgs::default(), &no_env);
        assert_mentions(
            &err,
            &[
                "otlp.ca_file",
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                "otlp.endpoint \"http://localhost:4317\" is plain-text",
                "https://",
                "remove it",
            ],
        );
        // From the environment, two settings at once.
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://alloy:4317"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem"),
        ]);
        let err = error_of("", RunArgs::default(), &env);
        assert_mentions(
            &err,
            &[
                "otlp.client_cert_file",
                "otlp.client_key_file",
                "\"http://alloy:4317\"",
                "remove them",
            ],
        );
        // From flags; an https:// endpoint makes the same settings valid.
        let args = RunArgs {
            otlp_ca_file: Some("/ca.pem".into()),
            ..RunArgs::default()
        };
        assert_mentions(&error_of("", args.clone(), &no_env), &["--otlp-ca-file"]);
        let https = RunArgs {
            otlp_endpoint: Some("https://alloy:4317".into()),
            ..args
        };
        assert!(resolve_text("", https, &no_env).is_ok());
    }

    #[test]
    fn client_certificate_and_key_go_together() {
        let text = "otlp:\n  endpoint: https://alloy:4317\n  client_cert_file: /c.pem\n";
        assert_mentions(
            &error_of(text, RunArgs::default(), &no_env),
            &[
                "otlp.client_cert_file",
                "is set but otlp.client_key_file",
                "mutual TLS needs both",
            ],
        );
    }

    #[test]
    fn credentials_or_a_query_in_the_endpoint_are_refused_without_showing_them() {
        let args = RunArgs {
            otlp_endpoint: Some("http://flowtel:hunter2@alloy:4317".into()),
            ..RunArgs::default()
        };
        let err = error_of("", args, &no_env);
        assert_mentions(
            &err,
            &[
                "\"http://flowtel:<redacted>@alloy:4317\" carries credentials",
                "otlp.headers",
            ],
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = error_of(
            "otlp:\n  endpoint: https://alloy:4317/?api_key=hunter2\n",
            RunArgs::default(),
            &no_env,
        );
        assert_mentions(&err, &["query string", "?<redacted>"]);
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn bad_header_names_are_config_errors() {
        let err = error_of(
            "otlp:\n  headers: {\"bad header\": v}\n",
            RunArgs::default(),
            &no_env,
        );
        assert_mentions(&err, &["otlp.headers", "bad header"]);
    }

    #[test]
    fn redacted_config_hides_header_values_only() {
        let text = "otlp:\n  headers: {authorization: Bearer hunter2, x-scope-orgid: t1}\n";
        let c = resolve_text(text, RunArgs::default(), &no_env).unwrap();
        let shown = c.redacted().to_yaml().unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("authorization: <redacted>"), "{shown}");
        assert!(shown.contains("x-scope-orgid: <redacted>"), "{shown}");
        assert!(shown.contains("endpoint: http://localhost:4317"), "{shown}");
        // Still a valid configuration, and redacting twice changes nothing.
        let again = resolve_text(&shown, RunArgs::default(), &no_env).unwrap();
        assert_eq!(again.redacted().to_yaml().unwrap(), shown);
        assert!(c.to_yaml().unwrap().contains("Bearer hunter2"));
    }

    /// A fresh directory, removed on drop unless the test is failing.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "flowtel-config-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// `contents` written to `name` in the directory.
        fn write_file(&self, name: &str, contents: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn tls_config(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> OtlpConfig {
        OtlpConfig {
            endpoint: "https://alloy:4317".into(),
            ca_file: ca.map(Path::to_path_buf),
            client_cert_file: cert.map(Path::to_path_buf),
            client_key_file: key.map(Path::to_path_buf),
            ..OtlpConfig::default()
        }
    }

    #[test]
    fn tls_files_are_read_and_checked_when_the_client_is_built() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["flowtel".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = Scratch::new();
        let ca = dir.write_file("ca.pem", cert.pem().as_bytes());
        let cert_file = dir.write_file("client.pem", cert.pem().as_bytes());
        let key_file = dir.write_file("client-key.pem", key.serialize_pem().as_bytes());
        let c = tls_config(Some(&ca), Some(&cert_file), Some(&key_file))
            .client_config("otlp")
            .unwrap();
        assert_eq!(c.channel.tls.ca_pem.as_deref(), Some(cert.pem().as_bytes()));
        assert_eq!(c.name, "otlp");

        let missing = ca.with_file_name("absent.pem");
        let err = format!(
            "{:#}",
            tls_config(Some(&missing), None, None)
                .client_config("otlp")
                .unwrap_err()
        );
        assert_mentions(&err, &["cannot read otlp.ca_file", "absent.pem"]);

        let der = dir.write_file("ca.der", cert.der());
        let err = format!(
            "{:#}",
            tls_config(Some(&der), None, None)
                .client_config("otlp")
                .unwrap_err()
        );
        assert_mentions(&err, &["otlp.ca_file", "ca.der", "no PEM CERTIFICATE"]);

        let other = rcgen::KeyPair::generate().unwrap();
        let other_key = dir.write_file("other-key.pem", other.serialize_pem().as_bytes());
        let err = format!(
            "{:#}",
            tls_config(None, Some(&cert_file), Some(&other_key))
                .client_config("otlp")
                .unwrap_err()
        );
        assert_mentions(
            &err,
            &["otlp.client_cert_file and otlp.client_key_file do not match"],
        );
        let err = format!(
            "{:#}",
            tls_config(None, Some(&cert_file), Some(&cert_file))
                .client_config("otlp")
                .unwrap_err()
        );
        assert_mentions(
            &err,
            &["otlp.client_key_file", "client.pem", "no unencrypted"],
        );
    }

    #[test]
    fn printed_config_parses_back_to_the_same_config() {
        let text = "listen: [\"[::]:2055\"]\nsinks: [prometheus, otlp]\ntop_k: 7\notlp:\n  headers: {a: b}\n";
        let c = resolve_text(text, RunArgs::default(), &no_env).unwrap();
        let printed = c.to_yaml().unwrap();
        assert_eq!(parse_yaml(&printed).unwrap(), c);
    }

    #[test]
    fn run_flags_parse_with_clap() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            run: RunArgs,
        }
        let t = T::try_parse_from([
            "flowtel",
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "[::1]:0",
            "--sink",
            "stdout",
            "--sink",
            "prometheus",
            "--rollup-interval",
            "1",
            "--top-k",
            "5",
            "--otlp-endpoint",
            "http://127.0.0.1:1",
            "--otlp-header",
            "authorization=Bearer x",
        ])
        .unwrap();
        assert_eq!(t.run.listen.len(), 2);
        assert_eq!(t.run.sinks, vec![SinkKind::Stdout, SinkKind::Prometheus]);
        assert_eq!(t.run.rollup_interval, Some(1));
        assert_eq!(t.run.top_k, Some(5));
        assert_eq!(
            t.run.otlp_headers,
            vec![("authorization".into(), "Bearer x".into())]
        );
        let t = T::try_parse_from([
            "flowtel",
            "--device",
            "192.0.2.1=edge-1",
            "--sampling-rate",
            "192.0.2.1=1000",
            "--default-sampling-rate",
            "10",
            "--exporter-silent-after",
            "30",
        ])
        .unwrap();
        let c = resolve_text(
            "enrichment:\n  devices: {192.0.2.9: core}\n",
            t.run,
            &no_env,
        )
        .unwrap();
        let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(c.enrichment.devices[&ip], "edge-1");
        assert_eq!(c.enrichment.devices.len(), 2);
        assert_eq!(c.enrichment.sampling.exporters[&ip], 1000);
        assert_eq!(c.enrichment.sampling.default_rate, Some(10));
        assert_eq!(c.exporter_silent_after_secs, 30);
        assert!(T::try_parse_from(["flowtel", "--device", "edge=192.0.2.1"]).is_err());
        assert!(T::try_parse_from(["flowtel", "--sampling-rate", "192.0.2.1=0"]).is_err());
        assert!(T::try_parse_from(["flowtel", "--rollup-interval", "0"]).is_err());
        assert!(T::try_parse_from(["flowtel", "--rollup-interval", "1.5"]).is_err());
        assert!(T::try_parse_from(["flowtel", "--sink", "elasticsearch"]).is_err());
    }
}
