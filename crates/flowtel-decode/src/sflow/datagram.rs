//! sFlow v5 datagram header and sample list (sFlow v5 §"sample_datagram_v5").

use std::net::SocketAddr;

use super::ctx::Ctx;
use super::xdr::Xdr;
use super::{format, samples};
use crate::{DatagramReport, DecodeError, DecodeOutput, DecoderConfig, ErrorKind};

/// Decode one sFlow v5 datagram (the caller checked the version word), appending records to
/// `out` and counting them and the problems found in `report`. Flow samples whose rate is 0
/// are counted in `rate_unknown`.
pub(crate) fn decode(
    config: &DecoderConfig,
    exporter: SocketAddr,
    datagram: &[u8],
    received_ns: u64,
    out: &mut DecodeOutput,
    report: &mut DatagramReport,
    rate_unknown: &mut u64,
) {
    let mut x = Xdr::new(datagram);
    let _version = x.u32();
    let at = x.offset();
    let agent = match x.address() {
        Some(a) => a,
        None => {
            let kind = if datagram.len() < at + 8 {
                ErrorKind::Truncated
            } else {
                ErrorKind::SflowAgentAddress
            };
            report
                .errors
                .push(DecodeError::new(kind, at, "sFlow datagram header"));
            return;
        }
    };
    let (Some(sub_agent_id), Some(sequence), Some(uptime_ms), Some(num_samples)) =
        (x.u32(), x.u32(), x.u32(), x.u32())
    else {
        report.errors.push(DecodeError::new(
            ErrorKind::Truncated,
            x.offset(),
            "sFlow datagram header",
        ));
        return;
    };
    let mut ctx = Ctx {
        exporter,
        received_ns,
        agent,
        sub_agent_id,
        sequence,
        uptime_ms,
        keep_unknown: config.keep_unknown_fields,
        sflow_bytes: config.sflow_bytes,
        out,
        report,
        rate_unknown,
    };
    // The sample count is exporter-controlled: the loop also ends when the bytes do.
    for _ in 0..num_samples {
        if x.is_empty() {
            ctx.error(ErrorKind::Truncated, x.offset(), "sFlow sample list");
            break;
        }
        let at = x.offset();
        let (Some(data_format), Some(len)) = (x.u32(), x.u32()) else {
            ctx.error(ErrorKind::Truncated, at, "sFlow sample header");
            break;
        };
        let Some(body) = usize::try_from(len).ok().and_then(|n| x.sub(n)) else {
            ctx.error(ErrorKind::SflowBadLength, at, "sFlow sample");
            break;
        };
        // data_format = enterprise (20 bits) << 12 | format (12 bits); only enterprise 0 is
        // standard.
        match data_format {
            format::FLOW_SAMPLE => samples::flow_sample(&mut ctx, body, false),
            format::FLOW_SAMPLE_EXPANDED => samples::flow_sample(&mut ctx, body, true),
            format::COUNTER_SAMPLE => samples::counter_sample(&mut ctx, body, false),
            format::COUNTER_SAMPLE_EXPANDED => samples::counter_sample(&mut ctx, body, true),
            format::DISCARDED_PACKET => samples::drop_sample(&mut ctx, body),
            _ => {}
        }
    }
}
