//! Information element -> [`FlowRecord`](crate::FlowRecord) slot table.
//!
//! NetFlow v9 field types 1..=127 (RFC 3954 §8) are the same numbers as the IANA IPFIX
//! information elements (RFC 7012 and the IANA "IPFIX Information Elements" registry), so one
//! table serves both. A field whose length does not fit the slot (say, a 3-byte IPv4 address)
//! maps to [`Slot::Unknown`] and is skipped by length like any unknown element.
//!
//! Integer elements are read whatever their length: RFC 7011 §6.2 reduced-size encoding (a
//! PROTOCOL in 1 byte, a counter in 4), and the larger sizes some exporters use (a PROTOCOL
//! or a port in 4 bytes, a counter in 16). The value is kept when it fits the field; one that
//! does not (a protocol above 255, a 16-byte counter above 2^64 - 1) leaves the field unset and
//! is counted in [`crate::DecoderStats::fields_out_of_range`].

use crate::RecordFields;

/// PEN of the RFC 5103 reverse information elements.
pub(crate) const REVERSE_PEN: u32 = 29305;

/// Integers a record carries that are combined after the whole record is read (counters
/// with precedence, relative times, sampling and options values). Stored in the scratch's
/// flat array, so most fields of a plan take the same code path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Val {
    Octets,
    Packets,
    OctetsTotal,
    PacketsTotal,
    PostOctets,
    PostPackets,
    InitiatorOctets,
    ResponderOctets,
    InitiatorPackets,
    ResponderPackets,
    StartSysUpMs,
    EndSysUpMs,
    StartNs,
    EndNs,
    StartDeltaMicros,
    EndDeltaMicros,
    SysInitMillis,
    PhysInIf,
    PhysOutIf,
    PostSrcMac,
    PostDstMac,
    Dot1qVlan,
    SamplerId,
    SamplingInterval,
    SamplerRandomInterval,
    SamplingPacketInterval,
    SamplingPacketSpace,
    SamplingSize,
    SamplingPopulation,
    IngressVrfId,
    EgressVrfId,
    DataLinkFrameSize,
    DataLinkFrameType,
    MinTtl,
    MaxTtl,
    IpVersion,
}

/// Number of [`Val`] variants (at most 64: presence is a `u64` mask).
pub(crate) const VALS: usize = 36;

/// What the compiled plan does with one field's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Not mapped: skipped by length (kept as a raw field when configured).
    Unknown,
    /// Explicitly ignored (padding, RFC 7011 IE 210 `paddingOctets`).
    Ignore,
    /// An integer kept in the record scratch (see [`Val`]).
    Val(Val),
    Protocol,
    Tos,
    TcpFlags,
    SrcPort,
    DstPort,
    SrcV4,
    DstV4,
    SrcV6,
    DstV6,
    SrcMask,
    DstMask,
    InIf,
    OutIf,
    NextHopV4,
    NextHopV6,
    BgpNextHopV4,
    BgpNextHopV6,
    SrcAs,
    DstAs,
    StartSecs,
    EndSecs,
    StartMillis,
    EndMillis,
    StartNtp,
    EndNtp,
    SrcMac,
    DstMac,
    Vlan,
    IcmpTypeCode,
    IcmpType,
    IcmpCode,
    Direction,
    InterfaceName,
    InterfaceDescription,
    VrfName,
    IpTtl,
    ForwardingStatus,
    FlowLabel,
    FragmentId,
    FragmentOffset,
    FragmentFlags,
    DstVlan,
    InnerVlan,
    /// IE 70 + n: the MPLS label stack entry at depth n (3 bytes: label, TC, S).
    MplsLabel(u8),
    NextHopAs,
    ObservationPointId,
    Etype,
    /// IE 315 dataLinkFrameSection (RFC 7133 §4.1).
    DataLinkFrame,
    /// IE 313 ipHeaderPacketSection (RFC 5477 §8.2.8).
    IpHeaderSection,
    /// IE 314 ipPayloadPacketSection (RFC 5477 §8.2.9).
    IpPayloadSection,
    ApplicationId,
    ApplicationName,
    NatSrcV4,
    NatDstV4,
    NatSrcV6,
    NatDstV6,
    NatSrcPort,
    NatDstPort,
    NatEvent,
    FirewallEvent,
    FirewallExtEvent,
    FlowId,
    EventTimeMillis,
    /// An RFC 5103 reverse element: the op's `inner` slot applies to the reverse record.
    Reverse,
    /// A configured field (`decoder.fields`): the index in the template's custom list.
    Custom(u16),
}

/// The slot for IANA element `id` (or enterprise element `(enterprise, id)`) of `len` bytes;
/// `len == VARLEN` means variable length (RFC 7011 §7).
pub(crate) fn slot(enterprise: u32, id: u16, len: u16) -> Slot {
    use self::Val as V;
    use Slot::*;
    // Any length but zero: the value is narrowed to the field when read (see the module doc).
    let int = len != 0;
    if enterprise != 0 {
        return Unknown;
    }
    match id {
        1 if int => Val(V::Octets),
        2 if int => Val(V::Packets),
        85 if int => Val(V::OctetsTotal),
        86 if int => Val(V::PacketsTotal),
        23 | 171 if int => Val(V::PostOctets),
        24 | 172 if int => Val(V::PostPackets),
        // Cisco NSEL (ASA/FTD) NF_F_FWD/REV_FLOW_DELTA_BYTES, RFC 5102 initiator/responder.
        231 if int => Val(V::InitiatorOctets),
        232 if int => Val(V::ResponderOctets),
        298 if int => Val(V::InitiatorPackets),
        299 if int => Val(V::ResponderPackets),
        4 if int => Protocol,
        5 if int => Tos,
        6 if int => TcpFlags,
        7 if int => SrcPort,
        11 if int => DstPort,
        8 if len == 4 => SrcV4,
        12 if len == 4 => DstV4,
        27 if len == 16 => SrcV6,
        28 if len == 16 => DstV6,
        9 | 29 if int => SrcMask,
        13 | 30 if int => DstMask,
        10 if int => InIf,
        14 if int => OutIf,
        252 if int => Val(V::PhysInIf),
        253 if int => Val(V::PhysOutIf),
        15 if len == 4 => NextHopV4,
        62 if len == 16 => NextHopV6,
        18 if len == 4 => BgpNextHopV4,
        63 if len == 16 => BgpNextHopV6,
        16 if int => SrcAs,
        17 if int => DstAs,
        21 if int => Val(V::EndSysUpMs),
        22 if int => Val(V::StartSysUpMs),
        150 if int => StartSecs,
        151 if int => EndSecs,
        152 if int => StartMillis,
        153 if int => EndMillis,
        154 | 156 if len == 8 => StartNtp,
        155 | 157 if len == 8 => EndNtp,
        158 if int => Val(V::StartDeltaMicros),
        159 if int => Val(V::EndDeltaMicros),
        160 if int => Val(V::SysInitMillis),
        56 if len == 6 => SrcMac,
        80 if len == 6 => DstMac,
        81 if len == 6 => Val(V::PostSrcMac),
        57 if len == 6 => Val(V::PostDstMac),
        58 if int => Vlan,
        59 if int => DstVlan,
        243 if int => Val(V::Dot1qVlan),
        245 if int => InnerVlan,
        70..=79 if len == 3 => MplsLabel((id - 70) as u8),
        52 if int => Val(V::MinTtl),
        53 if int => Val(V::MaxTtl),
        192 if int => IpTtl,
        60 if int => Val(V::IpVersion),
        89 if int => ForwardingStatus,
        31 if int => FlowLabel,
        54 if int => FragmentId,
        88 if int => FragmentOffset,
        197 if int => FragmentFlags,
        128 if int => NextHopAs,
        138 if int => ObservationPointId,
        256 if int => Etype,
        312 if int => Val(V::DataLinkFrameSize),
        408 if int => Val(V::DataLinkFrameType),
        // RFC 6759 applicationId: an octetArray, read as a number when it fits 8 octets.
        95 if int => ApplicationId,
        96 => ApplicationName,
        // RFC 8158 / RFC 5102 NAT elements; Cisco ASA 8.4's v9-only 40001-40004.
        225 | 40001 if len == 4 => NatSrcV4,
        226 | 40002 if len == 4 => NatDstV4,
        281 if len == 16 => NatSrcV6,
        282 if len == 16 => NatDstV6,
        227 | 40003 if int => NatSrcPort,
        228 | 40004 if int => NatDstPort,
        230 if int => NatEvent,
        // IE 233 firewallEvent / NF_F_FW_EVENT (v9 40005 on ASA 8.4); Cisco NSEL v9 types.
        233 | 40005 if int => FirewallEvent,
        33002 if int => FirewallExtEvent,
        148 if int => FlowId,
        323 if int => EventTimeMillis,
        313 => IpHeaderSection,
        314 => IpPayloadSection,
        315 => DataLinkFrame,
        32 | 139 if int => IcmpTypeCode,
        176 | 178 if int => IcmpType,
        177 | 179 if int => IcmpCode,
        61 if int => Direction,
        48 | 302 if int => Val(V::SamplerId),
        34 if int => Val(V::SamplingInterval),
        50 if int => Val(V::SamplerRandomInterval),
        305 if int => Val(V::SamplingPacketInterval),
        306 if int => Val(V::SamplingPacketSpace),
        309 if int => Val(V::SamplingSize),
        310 if int => Val(V::SamplingPopulation),
        82 => InterfaceName,
        83 => InterfaceDescription,
        234 if int => Val(V::IngressVrfId),
        235 if int => Val(V::EgressVrfId),
        236 => VrfName,
        210 => Ignore,
        _ => Unknown,
    }
}

/// The largest value an integer slot holds: a value above it does not fit its field. For
/// slots that are not integers (or hold 64 bits), `u64::MAX`.
pub(crate) const fn max_value(slot: Slot) -> u64 {
    match slot {
        Slot::Protocol
        | Slot::Tos
        | Slot::SrcMask
        | Slot::DstMask
        | Slot::IcmpType
        | Slot::IcmpCode
        | Slot::IpTtl
        | Slot::ForwardingStatus
        | Slot::FragmentFlags
        | Slot::NatEvent
        | Slot::FirewallEvent => u8::MAX as u64,
        Slot::TcpFlags
        | Slot::SrcPort
        | Slot::DstPort
        | Slot::IcmpTypeCode
        | Slot::FragmentOffset
        | Slot::Etype
        | Slot::NatSrcPort
        | Slot::NatDstPort
        | Slot::FirewallExtEvent => u16::MAX as u64,
        Slot::InIf
        | Slot::OutIf
        | Slot::SrcAs
        | Slot::DstAs
        | Slot::FlowLabel
        | Slot::FragmentId
        | Slot::NextHopAs
        | Slot::MplsLabel(_) => u32::MAX as u64,
        _ => u64::MAX,
    }
}

/// Whether a slot reads its field as an integer (so a value above 64 bits cannot be read).
pub(crate) const fn reads_int(slot: Slot) -> bool {
    !matches!(
        slot,
        Slot::Unknown
            | Slot::Ignore
            | Slot::Reverse
            | Slot::Custom(_)
            | Slot::SrcV4
            | Slot::DstV4
            | Slot::SrcV6
            | Slot::DstV6
            | Slot::NextHopV4
            | Slot::NextHopV6
            | Slot::BgpNextHopV4
            | Slot::BgpNextHopV6
            | Slot::StartNtp
            | Slot::EndNtp
            | Slot::SrcMac
            | Slot::DstMac
            | Slot::InterfaceName
            | Slot::InterfaceDescription
            | Slot::VrfName
            | Slot::ApplicationName
            | Slot::NatSrcV4
            | Slot::NatDstV4
            | Slot::NatSrcV6
            | Slot::NatDstV6
            | Slot::DataLinkFrame
            | Slot::IpHeaderSection
            | Slot::IpPayloadSection
    )
}

/// The slot of an RFC 5103 reverse element (PEN 29305, the forward element's number): the
/// forward element's slot, applied to the reverse record. Elements that identify the flow
/// rather than measure one direction (addresses, ports, protocol, interfaces, AS numbers,
/// prefix lengths: swapped from the forward record instead) and RFC 5103 §6.1's
/// non-reversible ones have no reverse reading.
pub(crate) fn reverse_slot(id: u16, len: u16) -> Slot {
    match slot(0, id, len) {
        Slot::Protocol
        | Slot::SrcPort
        | Slot::DstPort
        | Slot::SrcV4
        | Slot::DstV4
        | Slot::SrcV6
        | Slot::DstV6
        | Slot::SrcMask
        | Slot::DstMask
        | Slot::InIf
        | Slot::OutIf
        | Slot::SrcAs
        | Slot::DstAs
        | Slot::Direction
        | Slot::InterfaceName
        | Slot::InterfaceDescription
        | Slot::VrfName
        | Slot::Val(Val::SamplerId)
        | Slot::Val(Val::SysInitMillis)
        | Slot::Val(Val::IngressVrfId)
        | Slot::Val(Val::EgressVrfId)
        | Slot::Val(Val::PhysInIf)
        | Slot::Val(Val::PhysOutIf)
        | Slot::ObservationPointId
        | Slot::ApplicationId
        | Slot::ApplicationName
        | Slot::FirewallEvent
        | Slot::FirewallExtEvent
        | Slot::FlowId
        | Slot::EventTimeMillis => Slot::Unknown,
        other => other,
    }
}

/// Slot for a NetFlow v9 options scope field (RFC 3954 §6.1: 1 System, 2 Interface,
/// 3 Line Card, 4 Cache, 5 Template). Only the interface scope carries something we key on.
pub(crate) fn v9_scope_slot(scope_type: u16, len: u16) -> Slot {
    match scope_type {
        2 if len != 0 => Slot::InIf,
        _ => Slot::Ignore,
    }
}

/// The [`RecordFields`] group a data record's `slot` belongs to: the slot is read only when
/// the decoder's set holds its group. Exhaustive, so a new slot is placed in a group when it
/// is added.
pub(crate) fn group(slot: Slot) -> RecordFields {
    use self::Val as V;
    use Slot::*;
    match slot {
        Protocol | SrcPort | DstPort | SrcV4 | DstV4 | SrcV6 | DstV6 | IcmpTypeCode | IcmpType
        | IcmpCode | Direction | ApplicationId | DataLinkFrame | IpHeaderSection
        | IpPayloadSection | Custom(_) | Ignore => RecordFields::CORE,
        Val(
            V::Octets
            | V::Packets
            | V::OctetsTotal
            | V::PacketsTotal
            | V::PostOctets
            | V::PostPackets
            | V::InitiatorOctets
            | V::ResponderOctets
            | V::InitiatorPackets
            | V::ResponderPackets
            | V::SamplerId
            | V::SamplingInterval
            | V::SamplerRandomInterval
            | V::SamplingPacketInterval
            | V::SamplingPacketSpace
            | V::SamplingSize
            | V::SamplingPopulation
            | V::DataLinkFrameSize
            | V::DataLinkFrameType,
        ) => RecordFields::CORE,
        // The op's forward slot decides (see `Template::compile`).
        Reverse => RecordFields::CORE,
        Tos => RecordFields::TOS,
        InIf | OutIf | Val(V::PhysInIf | V::PhysOutIf) => RecordFields::INTERFACES,
        SrcAs | DstAs => RecordFields::AS_NUMBERS,
        Vlan | DstVlan | InnerVlan | Val(V::Dot1qVlan) => RecordFields::VLAN,
        NatSrcV4 | NatDstV4 | NatSrcV6 | NatDstV6 | NatSrcPort | NatDstPort | NatEvent => {
            RecordFields::NAT
        }
        FirewallEvent => RecordFields::FIREWALL_EVENT,
        Unknown | TcpFlags | SrcMask | DstMask | NextHopV4 | NextHopV6 | BgpNextHopV4
        | BgpNextHopV6 | StartSecs | EndSecs | StartMillis | EndMillis | StartNtp | EndNtp
        | SrcMac | DstMac | InterfaceName | InterfaceDescription | VrfName | IpTtl
        | ForwardingStatus | FlowLabel | FragmentId | FragmentOffset | FragmentFlags
        | MplsLabel(_) | NextHopAs | ObservationPointId | Etype | ApplicationName
        | FirewallExtEvent | FlowId | EventTimeMillis => RecordFields::OTHER,
        Val(
            V::StartSysUpMs
            | V::EndSysUpMs
            | V::StartNs
            | V::EndNs
            | V::StartDeltaMicros
            | V::EndDeltaMicros
            | V::SysInitMillis
            | V::PostSrcMac
            | V::PostDstMac
            | V::IngressVrfId
            | V::EgressVrfId
            | V::MinTtl
            | V::MaxTtl
            | V::IpVersion,
        ) => RecordFields::OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_outside_the_slot_fall_back_to_unknown() {
        assert_eq!(slot(0, 8, 4), Slot::SrcV4);
        assert_eq!(slot(0, 8, 3), Slot::Unknown);
        assert_eq!(slot(0, 56, 8), Slot::Unknown);
        assert_eq!(slot(0, 1, 16), Slot::Val(Val::Octets));
        assert_eq!(slot(0, 1, 3), Slot::Val(Val::Octets));
        assert_eq!(slot(0, 4, 4), Slot::Protocol);
        assert_eq!(slot(0, 4, 0), Slot::Unknown);
        assert_eq!(reverse_slot(1, 8), Slot::Val(Val::Octets));
        assert_eq!(reverse_slot(6, 1), Slot::TcpFlags);
        assert_eq!(reverse_slot(8, 4), Slot::Unknown);
        assert_eq!(slot(2636, 1, 8), Slot::Unknown);
    }
}
