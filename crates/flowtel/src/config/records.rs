//! The sections of the per-flow sinks that have their own (`flow_json:`, `flow_logs:`,
//! `flow_http:`; `kafka:` is in [`super::kafka`]). The sinks themselves are in `crate::sinks`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flowtel_records::AttributeNames;
use serde::{Deserialize, Serialize};

/// The `flow_json:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowJsonConfig {
    /// Write to this file instead of standard output.
    pub file: Option<PathBuf>,
    /// Rotate the file when the next batch would take it past this size (0: never).
    pub max_file_bytes: u64,
    /// Rotated files kept (`FILE.1` newest ... `FILE.N`).
    pub keep_files: usize,
}

impl Default for FlowJsonConfig {
    fn default() -> Self {
        FlowJsonConfig {
            file: None,
            max_file_bytes: 100 * 1024 * 1024,
            keep_files: 5,
        }
    }
}

/// The `flow_logs:` section. Two sections are equal when their file settings are (the resolved
/// `otlp` follows from them and the environment).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowLogsConfig {
    /// Where the logs go, when not to the OTLP endpoint of the metrics.
    pub endpoint: Option<String>,
    /// `network.flow` (the netflowreceiver's first names: `network.io.bytes`,
    /// `network.flow.type`, ...) or `flow` (its later `flow.*` names and extended attributes).
    pub attribute_names: String,
    /// The OTLP settings of the logs, resolved from the `otlp` section, the `_LOGS_`
    /// environment variables and `endpoint` (not read from the file).
    #[serde(skip)]
    pub otlp: Option<super::OtlpConfig>,
}

impl Default for FlowLogsConfig {
    fn default() -> Self {
        FlowLogsConfig {
            endpoint: None,
            attribute_names: AttributeNames::default().as_str().to_owned(),
            otlp: None,
        }
    }
}

impl PartialEq for FlowLogsConfig {
    fn eq(&self, other: &Self) -> bool {
        (&self.endpoint, &self.attribute_names) == (&other.endpoint, &other.attribute_names)
    }
}

impl FlowLogsConfig {
    pub fn names(&self) -> anyhow::Result<AttributeNames> {
        self.attribute_names
            .parse()
            .map_err(|e| anyhow::anyhow!("flow_logs.attribute_names: {e}"))
    }
}

/// The body form of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HttpFormat {
    /// `[{...},{...}]` (OpenObserve `_json`).
    #[default]
    JsonArray,
    /// One object per line.
    Ndjson,
    /// Elasticsearch / OpenSearch `_bulk`.
    EsBulk,
}

/// The `flow_http:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowHttpConfig {
    /// Where batches are POSTed, `http://` or `https://`.
    pub url: Option<String>,
    pub format: HttpFormat,
    /// The index (or data stream) of `es-bulk` action lines.
    pub es_index: String,
    /// Extra request headers, e.g. `authorization: "Basic …"`.
    pub headers: BTreeMap<String, String>,
    /// `gzip` or `none`.
    pub compression: super::Compression,
    /// Deadline of one request.
    pub timeout_secs: u64,
    /// PEM CA bundle replacing the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS).
    pub client_cert_file: Option<PathBuf>,
    /// PEM client key (mutual TLS).
    pub client_key_file: Option<PathBuf>,
}

impl Default for FlowHttpConfig {
    fn default() -> Self {
        FlowHttpConfig {
            url: None,
            format: HttpFormat::JsonArray,
            es_index: "flows".to_owned(),
            headers: BTreeMap::new(),
            compression: super::Compression::Gzip,
            timeout_secs: 10,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}
