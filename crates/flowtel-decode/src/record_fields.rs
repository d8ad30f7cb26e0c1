//! Which [`FlowRecord`](crate::FlowRecord) fields NetFlow v9 and IPFIX data records are read
//! into.
//!
//! Reading a field costs a step of the template's compiled plan (a bounds check, a load and a
//! store, about 40 instructions), and some fields cost more after the record is read (flow
//! times are resolved against the export header). A consumer that reads whole records
//! (`flowtel decode`, the per-flow sinks) needs every field, the default. A metrics-only
//! pipeline reads a handful: the rollup key's addresses, ports and protocol, the counters and
//! the sampling rate. With a narrower set, the template compiler turns every field outside it
//! into a skipped one, so its plan has no step for it at all, and the fields stay unset
//! (`None`, 0) in the records.
//!
//! The decision (ARCHITECTURE.md, "Per-record cost"): the set is chosen once, when the
//! pipeline is built, from the configured rollups and sinks; it is part of the decoder's
//! configuration and so of every compiled template, and a template's records are read the
//! same way for its whole life.
//!
//! [`RecordFields::CORE`] is always read, whatever the set:
//! - addresses, ports, IP protocol, ICMP type and code (they decide the ports);
//! - octet and packet counters of every kind (RFC 5102 delta, total, post, NSEL
//!   initiator/responder) and RFC 5103 reverse counters;
//! - sampling (the record's own rate elements, the sampler id for options data);
//! - flow direction, application id, and sampled packet sections (IE 313/314/315 with their
//!   frame size and type), which fill the fields above;
//! - fields configured in `decoder.fields`.
//!
//! Options templates are always read whole: their values feed the decoder's own state
//! (sampling rates, interface and application names).

use std::ops::BitOr;

/// A set of field groups: which fields NetFlow v9 and IPFIX data records are read into.
/// [`RecordFields::CORE`] is always read; a field outside the set stays unset (`None`, 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordFields(u16);

impl RecordFields {
    /// Read in every set (see the module docs).
    pub const CORE: RecordFields = RecordFields(1 << 0);
    /// IE 5 ipClassOfService (ToS).
    pub const TOS: RecordFields = RecordFields(1 << 1);
    /// Input and output interface indexes (IE 10/14, and 252/253 physical interfaces).
    pub const INTERFACES: RecordFields = RecordFields(1 << 2);
    /// Source and destination AS numbers (IE 16/17).
    pub const AS_NUMBERS: RecordFields = RecordFields(1 << 3);
    /// VLANs: IE 58/59 vlanId/postVlanId, 243 dot1qVlanId, 245 dot1qCustomerVlanId.
    pub const VLAN: RecordFields = RecordFields(1 << 4);
    /// NAT: post-NAT addresses and ports (IE 225-228, 281/282), natEvent (IE 230).
    pub const NAT: RecordFields = RecordFields(1 << 5);
    /// firewallEvent (IE 233) and Cisco NSEL NF_F_FW_EVENT.
    pub const FIREWALL_EVENT: RecordFields = RecordFields(1 << 6);
    /// Everything else: flow times, TCP flags, prefix lengths, next hops, MACs, TTL,
    /// fragmentation, IPv6 flow label, MPLS labels, EtherType, forwarding status, VRF ids, the
    /// remaining firewall fields, and elements without a built-in meaning.
    pub const OTHER: RecordFields = RecordFields(1 << 7);
    /// Every field (the default).
    pub const ALL: RecordFields = RecordFields(u16::MAX);

    /// Whether every group of `other` is in `self`.
    pub const fn contains(self, other: RecordFields) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets' groups, always with [`RecordFields::CORE`].
    pub const fn union(self, other: RecordFields) -> RecordFields {
        RecordFields(self.0 | other.0 | RecordFields::CORE.0)
    }
}

impl Default for RecordFields {
    fn default() -> Self {
        RecordFields::ALL
    }
}

impl BitOr for RecordFields {
    type Output = RecordFields;

    fn bitor(self, other: RecordFields) -> RecordFields {
        self.union(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_combine_and_always_hold_the_core() {
        let s = RecordFields::TOS | RecordFields::VLAN;
        assert!(s.contains(RecordFields::CORE));
        assert!(s.contains(RecordFields::TOS) && s.contains(RecordFields::VLAN));
        assert!(!s.contains(RecordFields::NAT) && !s.contains(RecordFields::OTHER));
        assert!(RecordFields::ALL.contains(s | RecordFields::OTHER));
        assert_eq!(RecordFields::default(), RecordFields::ALL);
    }
}
