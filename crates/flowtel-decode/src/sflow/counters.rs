//! Counter records inside a counter sample (sFlow v5 §"Counter Data Types":
//! `if_counters` (0,1) and `ethernet_counters` (0,2)), and the port name (0,1005, sFlow "Port
//! NAME structure": `string name<255>`).

use super::ctx::Ctx;
use super::format;
use super::xdr::Xdr;
use crate::{CounterRecord, ErrorKind, EthernetCounters, InterfaceCounters};

/// Generic interface counters as read, before the sample's identity is attached.
#[derive(Debug, Default)]
pub(crate) struct Acc {
    interface: Option<InterfaceCounters>,
    ethernet: Option<EthernetCounters>,
    name: Option<Box<str>>,
}

fn generic(x: &mut Xdr<'_>) -> Option<InterfaceCounters> {
    Some(InterfaceCounters {
        if_index: x.u32()?,
        if_type: x.u32()?,
        if_speed: x.u64()?,
        if_direction: x.u32()?,
        if_status: x.u32()?,
        in_octets: x.u64()?,
        in_ucast_pkts: x.u32()?,
        in_multicast_pkts: x.u32()?,
        in_broadcast_pkts: x.u32()?,
        in_discards: x.u32()?,
        in_errors: x.u32()?,
        in_unknown_protos: x.u32()?,
        out_octets: x.u64()?,
        out_ucast_pkts: x.u32()?,
        out_multicast_pkts: x.u32()?,
        out_broadcast_pkts: x.u32()?,
        out_discards: x.u32()?,
        out_errors: x.u32()?,
        promiscuous_mode: x.u32()?,
    })
}

fn ethernet(x: &mut Xdr<'_>) -> Option<EthernetCounters> {
    Some(EthernetCounters {
        alignment_errors: x.u32()?,
        fcs_errors: x.u32()?,
        single_collision_frames: x.u32()?,
        multiple_collision_frames: x.u32()?,
        sqe_test_errors: x.u32()?,
        deferred_transmissions: x.u32()?,
        late_collisions: x.u32()?,
        excessive_collisions: x.u32()?,
        internal_mac_transmit_errors: x.u32()?,
        carrier_sense_errors: x.u32()?,
        frame_too_longs: x.u32()?,
        internal_mac_receive_errors: x.u32()?,
        symbol_errors: x.u32()?,
    })
}

pub(crate) fn record(ctx: &mut Ctx<'_>, data_format: u32, mut x: Xdr<'_>, acc: &mut Acc) {
    let at = x.offset();
    let ok = match data_format {
        format::GENERIC_INTERFACE => generic(&mut x).map(|g| acc.interface = Some(g)),
        format::ETHERNET_INTERFACE => ethernet(&mut x).map(|e| acc.ethernet = Some(e)),
        format::PORT_NAME => x.opaque().map(|n| {
            // `string name<255>`: a longer name is cut there; an empty one is no name.
            let name = crate::template::text(n.get(..255).unwrap_or(n));
            acc.name = (!name.is_empty()).then_some(name);
        }),
        _ => Some(()),
    };
    if ok.is_none() {
        ctx.error(ErrorKind::SflowBadLength, at, "sFlow counter record");
    }
}

impl Acc {
    pub(crate) fn finish(
        self,
        ctx: &Ctx<'_>,
        sequence: u32,
        source_id_type: u32,
        source_id_index: u32,
    ) -> Option<CounterRecord> {
        let interface = self.interface?;
        Some(CounterRecord {
            exporter: ctx.exporter,
            agent: ctx
                .agent
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            sub_agent_id: ctx.sub_agent_id,
            time_received_ns: ctx.received_ns,
            uptime_ms: ctx.uptime_ms,
            sequence,
            source_id: (source_id_type << 24) | (source_id_index & 0x00ff_ffff),
            interface,
            ethernet: self.ethernet,
            name: self.name,
        })
    }
}
