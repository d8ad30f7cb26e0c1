//! What the parts of one sFlow datagram's decoding share: the datagram's context and the
//! verbatim keeping of records flowtel does not map. Kept apart so the datagram, sample, flow
//! record and counter record modules depend on it and not on each other.

use std::net::{IpAddr, SocketAddr};

use super::xdr::Xdr;
use crate::{DatagramReport, DecodeError, DecodeOutput, ErrorKind, RawField};

/// What every sample of one datagram shares.
#[derive(Debug)]
pub(crate) struct Ctx<'o> {
    pub exporter: SocketAddr,
    pub received_ns: u64,
    pub agent: Option<IpAddr>,
    pub sub_agent_id: u32,
    pub sequence: u32,
    pub uptime_ms: u32,
    pub keep_unknown: bool,
    pub sflow_bytes: crate::SflowBytes,
    pub out: &'o mut DecodeOutput,
    pub report: &'o mut DatagramReport,
    pub rate_unknown: &'o mut u64,
}

impl Ctx<'_> {
    pub(crate) fn error(&mut self, kind: ErrorKind, offset: usize, context: &'static str) {
        self.report
            .errors
            .push(DecodeError::new(kind, offset, context));
    }
}

/// Keep an unmapped record verbatim (only with `keep_unknown_fields`).
pub(crate) fn raw_field(data_format: u32, mut body: Xdr<'_>) -> RawField {
    let value = body.bytes(body.remaining()).unwrap_or_default().to_vec();
    RawField {
        enterprise: data_format >> 12,
        // The low 12 bits always fit.
        id: u16::try_from(data_format & 0xfff).unwrap_or_default(),
        value,
    }
}
