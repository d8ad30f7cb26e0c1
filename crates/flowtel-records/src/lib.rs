//! Decoded flow records out: the `flowtel.flow.v1` schema and its encodings.
//!
//! Every per-flow output of flowtel starts from an [`EnrichedRecord`] (a decoded
//! `FlowRecord` and what the enricher resolved) and goes through one [`FlowMessage`], the
//! message of `proto/flowtel/flow/v1/flow.proto`:
//!
//! - [`fill_message`] / [`to_message`]: record → message, the only code that reads record
//!   fields. goflow2's fields keep goflow2's numbers, types and meanings; flowtel's own fields
//!   are numbered from 1000.
//! - [`protobuf::encode_delimited`]: the varint length-delimited framing (goflow2's binary
//!   output, ClickHouse's `Protobuf` format, one Kafka record value).
//! - [`json::write_json_line`]: goflow2 v2's JSON object, plus flowtel's fields.
//! - [`otlp::log_record`] / [`otlp::LogsBatch`]: an OTLP `LogRecord` with the OpenTelemetry
//!   Collector netflowreceiver's attribute names, and many of them in one
//!   `ExportLogsServiceRequest`; [`otlp_wire::EncodedLogsBatch`] writes the same request
//!   straight to its protobuf bytes, with no allocation per record (the sink's fast path).
//!
//! All of it is synchronous and pure: no I/O, no clock, no runtime. [`RecordEncoder`] keeps
//! one scratch message so that encoding a stream allocates nothing per record in the
//! protobuf, JSON and encoded-OTLP paths (the opentelemetry-proto types own their strings, so
//! a `LogRecord` value allocates per attribute).
//!
//! The schema is compiled at build time by protox and prost-build (no system `protoc`).

pub mod json;
pub mod message;
pub mod names;
pub mod otlp;
pub mod otlp_wire;
pub mod protobuf;

/// The code prost generates from `flow.proto`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/flowtel.flow.v1.rs"));
}

/// The compiled `flow.proto` as an encoded `FileDescriptorSet` (for schema checks and
/// reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/flow_descriptor_set.bin"));

/// The text of `flow.proto`, for writing a schema file next to data (ClickHouse's
/// `format_schema`, a consumer's code generator).
pub const FLOW_PROTO: &str = include_str!("../../../proto/flowtel/flow/v1/flow.proto");

use flowtel_rollup::EnrichedRecord;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

pub use message::{fill_message, to_message};
pub use otlp::{AttributeNames, LogsBatch};
pub use otlp_wire::EncodedLogsBatch;
pub use proto::FlowMessage;
use proto::flow_message::{Direction, SamplingSource};

/// The lower-case name of a `SamplingSource` value (JSON and OTLP): `config`, `record`,
/// `options`, `header`, `sample`.
pub fn sampling_source_name(value: i32) -> &'static str {
    match SamplingSource::try_from(value) {
        Ok(SamplingSource::Record) => "record",
        Ok(SamplingSource::Options) => "options",
        Ok(SamplingSource::Header) => "header",
        Ok(SamplingSource::Sample) => "sample",
        Ok(SamplingSource::Config) | Err(_) => "config",
    }
}

/// The lower-case name of a `Direction` value: `ingress`, `egress`, or empty when unknown.
pub fn direction_name(value: i32) -> &'static str {
    match Direction::try_from(value) {
        Ok(Direction::Ingress) => "ingress",
        Ok(Direction::Egress) => "egress",
        Ok(Direction::Unknown) | Err(_) => "",
    }
}

/// Encodes records one after another through one reused [`FlowMessage`].
#[derive(Debug, Clone, Default)]
pub struct RecordEncoder {
    message: FlowMessage,
}

impl RecordEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// `record` in schema form (valid until the next call).
    pub fn message(&mut self, record: &EnrichedRecord) -> &FlowMessage {
        fill_message(&mut self.message, record);
        &self.message
    }

    /// Append `record` as a length-delimited message.
    pub fn protobuf_delimited(&mut self, record: &EnrichedRecord, out: &mut Vec<u8>) {
        protobuf::encode_delimited(self.message(record), out);
    }

    /// Append `record` as one goflow2-style JSON line.
    pub fn json_line(&mut self, record: &EnrichedRecord, out: &mut String) {
        json::write_json_line(self.message(record), out);
    }

    /// `record` as an OTLP log record.
    pub fn log_record(&mut self, record: &EnrichedRecord, names: AttributeNames) -> LogRecord {
        otlp::log_record(self.message(record), names)
    }
}
