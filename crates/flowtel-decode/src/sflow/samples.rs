//! Flow samples (formats 1 and 3) and counter samples (formats 2 and 4), sFlow v5
//! §"flow_sample", §"flow_sample_expanded", §"counters_sample", §"counters_sample_expanded".

use super::ctx::Ctx;
use super::xdr::Xdr;
use super::{counters, flow, format};
use crate::{
    DropReason, DropRecord, ErrorKind, FlowProtocol, FlowRecord, SamplingSource, SflowInterface,
    SflowSample,
};

/// Source id: compact is `type << 24 | index`; expanded is two words.
#[inline(always)]
fn source_id(x: &mut Xdr<'_>, expanded: bool) -> Option<(u32, u32)> {
    if expanded {
        Some((x.u32()?, x.u32()?))
    } else {
        let word = x.u32()?;
        Some((word >> 24, word & 0x00ff_ffff))
    }
}

/// Inlined: called out of line, its result came back through memory, written as two 4-byte
/// words and read as one 8-byte word, a load that cannot take its bytes from stores still in
/// flight and waits for them to reach the cache (a sixth of the flow sample's time).
#[inline(always)]
fn interface(x: &mut Xdr<'_>, expanded: bool) -> Option<SflowInterface> {
    if expanded {
        Some(SflowInterface::from_expanded(x.u32()?, x.u32()?))
    } else {
        Some(SflowInterface::from_compact(x.u32()?))
    }
}

/// Walk a `flow_record<>` / `counter_record<>` list, calling `each(ctx, data_format, body)`
/// with each record's bounded body.
pub(crate) fn records<'a>(
    ctx: &mut Ctx<'_>,
    x: &mut Xdr<'a>,
    context: &'static str,
    mut each: impl FnMut(&mut Ctx<'_>, u32, Xdr<'a>),
) {
    let Some(count) = x.u32() else {
        ctx.error(ErrorKind::Truncated, x.offset(), context);
        return;
    };
    for _ in 0..count {
        let at = x.offset();
        let (Some(data_format), Some(len)) = (x.u32(), x.u32()) else {
            ctx.error(ErrorKind::Truncated, at, context);
            return;
        };
        let Some(body) = usize::try_from(len).ok().and_then(|n| x.sub(n)) else {
            ctx.error(ErrorKind::SflowBadLength, at, context);
            return;
        };
        each(ctx, data_format, body);
    }
}

pub(crate) fn flow_sample(ctx: &mut Ctx<'_>, mut x: Xdr<'_>, expanded: bool) {
    let at = x.offset();
    let header = (|| {
        let sequence = x.u32()?;
        let (source_id_type, source_id_index) = source_id(&mut x, expanded)?;
        let rate = x.u32()?;
        let sample_pool = x.u32()?;
        let drops = x.u32()?;
        let input = interface(&mut x, expanded)?;
        let output = interface(&mut x, expanded)?;
        Some((
            rate,
            SflowSample {
                datagram_sequence: ctx.sequence,
                uptime_ms: ctx.uptime_ms,
                sequence,
                source_id_type,
                source_id_index,
                sample_pool,
                drops,
                input,
                output,
            },
        ))
    })();
    let Some((rate, sample)) = header else {
        ctx.error(ErrorKind::SflowBadLength, at, "sFlow flow sample header");
        return;
    };

    // Built in place in the output (a FlowRecord is a few hundred bytes: no moves).
    let (exporter, received_ns) = (ctx.exporter, ctx.received_ns);
    let len = ctx.out.flows.len();
    ctx.out.flows.resize_with(len + 1, || {
        FlowRecord::new(exporter, FlowProtocol::SflowV5, received_ns)
    });
    ctx.report.records += 1;
    let known_rate = rate > 0;
    if let Some(rec) = ctx.out.flows.last_mut() {
        rec.agent = ctx.agent;
        rec.observation_domain = ctx.sub_agent_id;
        rec.sequence_num = ctx.sequence;
        rec.packets = 1;
        // A rate of 0 is meaningless (1-in-0): report it as unknown rather than zeroing totals.
        if known_rate {
            rec.sampling_rate = Some(rate);
            rec.sampling_source = SamplingSource::Sample;
        }
        rec.in_if = sample.input.if_index();
        rec.out_if = sample.output.if_index();
        rec.sflow = Some(sample);
    }
    if !known_rate {
        *ctx.rate_unknown += 1;
    }

    let mut acc = flow::Lengths::default();
    records(
        ctx,
        &mut x,
        "sFlow flow record",
        |ctx, data_format, body| {
            let at = body.offset();
            let keep = ctx.keep_unknown;
            let ok = match ctx.out.flows.last_mut() {
                Some(rec) => flow::record(keep, data_format, body, rec, &mut acc),
                None => Some(()),
            };
            if ok.is_none() {
                ctx.error(ErrorKind::SflowBadLength, at, "sFlow flow record");
            }
        },
    );
    if let Some(rec) = ctx.out.flows.last_mut() {
        acc.finish(rec, ctx.sflow_bytes);
    }
}

pub(crate) fn counter_sample(ctx: &mut Ctx<'_>, mut x: Xdr<'_>, expanded: bool) {
    let at = x.offset();
    let (Some(sequence), Some((source_id_type, source_id_index))) =
        (x.u32(), source_id(&mut x, expanded))
    else {
        ctx.error(ErrorKind::SflowBadLength, at, "sFlow counter sample header");
        return;
    };
    let mut acc = counters::Acc::default();
    records(
        ctx,
        &mut x,
        "sFlow counter record",
        |ctx, data_format, body| {
            counters::record(ctx, data_format, body, &mut acc);
        },
    );
    if let Some(rec) = acc.finish(ctx, sequence, source_id_type, source_id_index) {
        ctx.out.counters.push(rec);
        ctx.report.counters += 1;
    }
}

/// A string record (`string x<>`: length, bytes, padding) as text.
fn string(x: &mut Xdr<'_>) -> Option<Box<str>> {
    Some(crate::template::text(x.opaque()?))
}

/// Discarded packet (format 5): sequence_number, source_id (expanded), drops, input,
/// output, reason, discard flow_record<>.
pub(crate) fn drop_sample(ctx: &mut Ctx<'_>, mut x: Xdr<'_>) {
    let at = x.offset();
    let header = (|| {
        let sequence = x.u32()?;
        let (source_id_type, source_id_index) = source_id(&mut x, true)?;
        let (drops, input, output, reason) = (x.u32()?, x.u32()?, x.u32()?, x.u32()?);
        Some((
            sequence,
            source_id_type,
            source_id_index,
            drops,
            input,
            output,
            reason,
        ))
    })();
    let Some((sequence, source_id_type, source_id_index, drops, input, output, reason)) = header
    else {
        ctx.error(
            ErrorKind::SflowBadLength,
            at,
            "sFlow discarded packet header",
        );
        return;
    };
    let mut packet = FlowRecord::new(ctx.exporter, FlowProtocol::SflowV5, ctx.received_ns);
    packet.agent = ctx.agent;
    packet.observation_domain = ctx.sub_agent_id;
    packet.sequence_num = ctx.sequence;
    packet.packets = 1;
    let nonzero = |i: u32| (i != 0).then_some(i);
    packet.in_if = nonzero(input);
    packet.out_if = nonzero(output);
    let mut drop = DropRecord {
        exporter: ctx.exporter,
        agent: ctx.agent,
        sub_agent_id: ctx.sub_agent_id,
        time_received_ns: ctx.received_ns,
        sequence,
        source_id_type,
        source_id_index,
        drops,
        in_if: nonzero(input),
        out_if: nonzero(output),
        reason: DropReason(reason),
        packet,
        egress_queue: None,
        function: None,
        hw_trap_group: None,
        hw_trap: None,
        linux_reason: None,
    };
    let mut acc = flow::Lengths::default();
    records(
        ctx,
        &mut x,
        "sFlow discarded packet record",
        |ctx, data_format, mut body| {
            let at = body.offset();
            let ok = match data_format {
                format::EGRESS_QUEUE => body.u32().map(|q| drop.egress_queue = Some(q)),
                format::FUNCTION => string(&mut body).map(|f| drop.function = Some(f)),
                format::HW_TRAP => string(&mut body).and_then(|g| {
                    drop.hw_trap_group = Some(g);
                    drop.hw_trap = Some(string(&mut body)?);
                    Some(())
                }),
                format::LINUX_REASON => string(&mut body).map(|r| drop.linux_reason = Some(r)),
                _ => flow::record(
                    ctx.keep_unknown,
                    data_format,
                    body,
                    &mut drop.packet,
                    &mut acc,
                ),
            };
            if ok.is_none() {
                ctx.error(
                    ErrorKind::SflowBadLength,
                    at,
                    "sFlow discarded packet record",
                );
            }
        },
    );
    acc.finish(&mut drop.packet, ctx.sflow_bytes);
    ctx.out.drops.push(drop);
    ctx.report.drops += 1;
}
