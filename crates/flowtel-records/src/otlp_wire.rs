//! OTLP logs requests written straight into protobuf wire bytes.
//!
//! [`EncodedLogsBatch`] produces the same bytes prost writes for the
//! `ExportLogsServiceRequest` of a [`crate::LogsBatch`] holding the same records (the tests
//! compare them), without building the request's owned strings first: one flow costs no
//! allocation once the batch buffer has grown. A gRPC sink sends the bytes as the request
//! body (`opentelemetry.proto.collector.logs.v1.LogsService/Export`).
//!
//! Wire layout (protobuf encoding, fields in number order as prost writes them):
//! `ExportLogsServiceRequest.resource_logs (1)` → `ResourceLogs { resource (1),
//! scope_logs (2) }` → `ScopeLogs { scope (1), log_records (2)* }` → `LogRecord {
//! time_unix_nano (1, fixed64), attributes (6)*, observed_time_unix_nano (11, fixed64) }` →
//! `KeyValue { key (1), value (2): AnyValue { string_value (1) | bool_value (2) |
//! int_value (3) } }`.

use std::net::IpAddr;

use flowtel_rollup::EnrichedRecord;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use prost::encoding::encoded_len_varint;

use crate::json::{ipv4_text_len, push_ipv4, write_ip, write_mac};
use crate::message::fill_message;
use crate::otlp::{AttributeNames, AttributeSink, write_attributes};
use crate::proto::FlowMessage;

/// Field keys: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited).
const LEN: u8 = 2;
const fn key(field: u8, wire_type: u8) -> u8 {
    (field << 3) | wire_type
}
const FIELD_1_LEN: u8 = key(1, LEN);
const FIELD_2_LEN: u8 = key(2, LEN);
const LOG_TIME: u8 = key(1, 1);
const LOG_ATTRIBUTE: u8 = key(6, LEN);
const LOG_OBSERVED_TIME: u8 = key(11, 1);
const ANY_STRING: u8 = key(1, LEN);
const ANY_BOOL: u8 = key(2, 0);
const ANY_INT: u8 = key(3, 0);

/// Room made before each record, so that its attributes are written without growing the
/// buffer (a record takes about 1 KiB).
const RECORD_RESERVE: usize = 2048;

/// Collects flows as encoded `LogRecord`s under one resource and scope; [`Self::take`]
/// returns the encoded `ExportLogsServiceRequest`.
#[derive(Debug, Clone)]
pub struct EncodedLogsBatch {
    names: AttributeNames,
    /// The encoded `Resource` and `InstrumentationScope` messages.
    resource: Vec<u8>,
    scope: Vec<u8>,
    /// `ScopeLogs.log_records` entries, each with its key and length.
    records: Vec<u8>,
    count: usize,
    message: FlowMessage,
    text: String,
}

impl EncodedLogsBatch {
    pub fn new(resource: &Resource, scope: &InstrumentationScope, names: AttributeNames) -> Self {
        EncodedLogsBatch {
            names,
            resource: resource.encode_to_vec(),
            scope: scope.encode_to_vec(),
            records: Vec::new(),
            count: 0,
            message: FlowMessage::default(),
            text: String::new(),
        }
    }

    /// Add one record.
    pub fn push(&mut self, record: &EnrichedRecord) {
        fill_message(&mut self.message, record);
        let message = std::mem::take(&mut self.message);
        self.push_message(&message);
        self.message = message;
    }

    /// Add one record already in schema form.
    pub fn push_message(&mut self, message: &FlowMessage) {
        // The record is written in place after its key and a two-byte length (the usual size
        // of a record's varint length), which is patched afterwards.
        let out = &mut self.records;
        out.reserve(RECORD_RESERVE);
        let start = out.len();
        out.extend_from_slice(&[FIELD_2_LEN, 0, 0]);
        let body = out.len();
        if message.time_flow_end_ns != 0 {
            out.push(LOG_TIME);
            out.extend_from_slice(&message.time_flow_end_ns.to_le_bytes());
        }
        write_attributes(
            message,
            self.names,
            &mut WireAttrs {
                out,
                text: &mut self.text,
            },
        );
        if message.time_received_ns != 0 {
            out.push(LOG_OBSERVED_TIME);
            out.extend_from_slice(&message.time_received_ns.to_le_bytes());
        }
        let len = out.len() - body;
        if (0x80..0x4000).contains(&len) {
            out[start + 1] = (len as u8) | 0x80;
            out[start + 2] = (len >> 7) as u8;
        } else {
            let mut varint = Vec::with_capacity(10);
            encode_varint(len as u64, &mut varint);
            out.splice(start + 1..body, varint);
        }
        self.count += 1;
    }

    /// Records pushed since the last [`Self::take`].
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The size of the request [`Self::take`] would return, in bytes.
    pub fn encoded_len(&self) -> usize {
        let (_, _, total) = self.lengths();
        total
    }

    /// (ScopeLogs length, ResourceLogs length, request length).
    fn lengths(&self) -> (usize, usize, usize) {
        let scope_logs = delimited_len(self.scope.len()) + self.records.len();
        let resource_logs = delimited_len(self.resource.len()) + delimited_len(scope_logs);
        (scope_logs, resource_logs, delimited_len(resource_logs))
    }

    /// The encoded request of every record pushed since the last call; the batch is left
    /// empty (its buffers keep their capacity).
    pub fn take(&mut self) -> Vec<u8> {
        let (scope_logs, resource_logs, total) = self.lengths();
        let mut out = Vec::with_capacity(total);
        out.push(FIELD_1_LEN);
        encode_varint(resource_logs as u64, &mut out);
        out.push(FIELD_1_LEN);
        encode_varint(self.resource.len() as u64, &mut out);
        out.extend_from_slice(&self.resource);
        out.push(FIELD_2_LEN);
        encode_varint(scope_logs as u64, &mut out);
        out.push(FIELD_1_LEN);
        encode_varint(self.scope.len() as u64, &mut out);
        out.extend_from_slice(&self.scope);
        out.extend_from_slice(&self.records);
        self.records.clear();
        self.count = 0;
        out
    }
}

/// A protobuf base-128 varint (one byte for the small lengths and values of most fields).
#[inline]
fn encode_varint(value: u64, out: &mut Vec<u8>) {
    if value < 0x80 {
        out.push(value as u8);
        return;
    }
    let mut buf = [0u8; 10];
    let mut n = 0;
    let mut v = value;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    out.extend_from_slice(&buf[..=n]);
}

/// Bytes of a length-delimited field holding `len` bytes: key, length, content.
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Attributes as encoded `LogRecord.attributes` entries.
struct WireAttrs<'a> {
    out: &'a mut Vec<u8>,
    text: &'a mut String,
}

impl WireAttrs<'_> {
    /// The entry's key and length, the `KeyValue`'s key, and the `AnyValue`'s key and length;
    /// the caller writes the `AnyValue`'s `any_len` bytes.
    #[inline(always)]
    fn head(&mut self, key: &str, any_len: usize) {
        let kv_len = delimited_len(key.len()) + delimited_len(any_len);
        if kv_len < 0x80 {
            // Every length below fits one byte: the common case, written in two copies.
            self.out.extend_from_slice(&[
                LOG_ATTRIBUTE,
                kv_len as u8,
                FIELD_1_LEN,
                key.len() as u8,
            ]);
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(&[FIELD_2_LEN, any_len as u8]);
            return;
        }
        self.out.push(LOG_ATTRIBUTE);
        encode_varint(kv_len as u64, self.out);
        self.out.push(FIELD_1_LEN);
        encode_varint(key.len() as u64, self.out);
        self.out.extend_from_slice(key.as_bytes());
        self.out.push(FIELD_2_LEN);
        encode_varint(any_len as u64, self.out);
    }

    #[inline(always)]
    fn string_value(&mut self, key: &str, value: &str) {
        self.head(key, delimited_len(value.len()));
        self.out.push(ANY_STRING);
        encode_varint(value.len() as u64, self.out);
        self.out.extend_from_slice(value.as_bytes());
    }

    /// Write the formatted text kept in `self.text`.
    fn text_value(&mut self, key: &str) {
        let text = std::mem::take(self.text);
        self.string_value(key, &text);
        *self.text = text;
    }
}

impl AttributeSink for WireAttrs<'_> {
    #[inline(always)]
    fn int(&mut self, key: &str, value: i64) {
        // int64 is a varint of the two's complement value.
        let value = value as u64;
        self.head(key, 1 + encoded_len_varint(value));
        self.out.push(ANY_INT);
        encode_varint(value, self.out);
    }

    #[inline(always)]
    fn bool(&mut self, key: &str, value: bool) {
        self.head(key, 2);
        self.out.push(ANY_BOOL);
        self.out.push(u8::from(value));
    }

    #[inline(always)]
    fn str(&mut self, key: &str, value: &str) {
        self.string_value(key, value);
    }

    fn ip(&mut self, key: &str, addr: IpAddr) {
        match addr {
            // The common case, written in place: its text length is known from the octets.
            IpAddr::V4(a) => {
                let len = ipv4_text_len(a);
                self.head(key, delimited_len(len));
                self.out.push(ANY_STRING);
                self.out.push(len as u8);
                push_ipv4(self.out, a);
            }
            IpAddr::V6(_) => {
                self.text.clear();
                write_ip(self.text, addr);
                self.text_value(key);
            }
        }
    }

    fn mac(&mut self, key: &str, mac: u64) {
        self.text.clear();
        write_mac(self.text, mac);
        self.text_value(key);
    }
}
