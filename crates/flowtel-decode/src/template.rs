//! Templates compiled into flat decode plans, and the data-record reader that runs them.
//!
//! A template (NetFlow v9 RFC 3954 §5.2, IPFIX RFC 7011 §3.4.1) is compiled once into a
//! [`Template`]: one [`Op`] per field holding its length and the [`Slot`] it fills. Reading a
//! data record is then a loop of bounds-checked slice reads into a stack [`Scratch`] and the
//! output [`FlowRecord`]; nothing is allocated per record unless unknown fields are kept.
//! Templates whose records all have one length (most of them) also get a [`FixedOp`] plan,
//! every field at an offset known in advance: one length check per record instead of
//! position arithmetic per field.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::SflowBytes;
use crate::ie::{self, Slot, VALS, Val};
use crate::link::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::packet;
use std::sync::Arc;

use crate::record::{
    CustomField, CustomValue, Firewall, FlowDirection, FlowRecord, Nat, RawField, SamplingSource,
};
use crate::{FieldKind, FieldMapping, RecordFields};

/// Field length meaning "variable length" (RFC 7011 §7).
pub(crate) const VARLEN: u16 = 0xFFFF;

/// One field specifier as it appeared on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldSpec {
    /// Private Enterprise Number; 0 for IANA elements and NetFlow v9.
    pub enterprise: u32,
    pub id: u16,
    pub len: u16,
    /// NetFlow v9 options scope field (its `id` is a scope type, not an element id).
    pub v9_scope: bool,
}

/// One step of a compiled plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op {
    pub len: u16,
    pub slot: Slot,
    /// For [`Slot::Reverse`]: the forward slot, applied to the reverse record.
    pub inner: Slot,
    /// This op's position in the plan (for [`Slot::Reverse`]).
    pub index: u16,
    /// Values above it do not fit the slot's field ([`ie::max_value`]); `u64::MAX` when the
    /// field's length cannot exceed the slot, so the check never fails.
    pub max: u64,
    /// The slot reads the value as an integer ([`ie::reads_int`], or a configured unsigned).
    pub int: bool,
    pub enterprise: u32,
    pub id: u16,
}

/// A compiled template or options template.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Template {
    pub options: bool,
    pub fields: Box<[FieldSpec]>,
    pub ops: Box<[Op]>,
    /// The configured fields (`decoder.fields`) this template carries, by [`Slot::Custom`]
    /// index: name and how to read the value.
    pub custom: Box<[(Arc<str>, FieldKind)]>,
    /// Some field is longer than its slot's type, so values are checked against `Op::max`.
    pub checked: bool,
    /// Smallest possible record: fixed lengths plus one byte per variable-length field.
    /// Always at least 1, so a data set loop always advances.
    pub min_len: usize,
    /// The fixed-offset plan, for templates that can use it (see [`FixedOp`]).
    pub fixed: Option<Box<[FixedOp]>>,
    /// The fixed-offset plan as straight-line reads, when it is made only of the fields
    /// [`CoreLayout`] covers.
    pub core: Option<CoreLayout>,
    /// Otherwise, when it is made only of the fields [`WideLayout`] covers.
    pub wide: Option<WideLayout>,
    /// Every record is `min_len` bytes and gives exactly one flow: the template has a fixed
    /// plan and no NSEL responder counter (which adds a reverse flow).
    pub one_flow_per_record: bool,
    /// The template record as it came on the wire (set when it is learnt): a periodic
    /// refresh that repeats it byte for byte is recognised without parsing it.
    pub wire: Box<[u8]>,
}

/// One field of a template whose records all have the same length: its offset is known when
/// the template is compiled, so a record is read with one length check and no position
/// arithmetic. Used when every field has a fixed length, no value needs a range check, no
/// field is an RFC 5103 reverse element and every integer field is at most 8 bytes long:
/// the common case (softflowd, pmacct, Cisco, Juniper). Skipped fields ([`Slot::Ignore`])
/// have no step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedOp {
    /// Offset of the value in the record.
    pub off: u16,
    pub op: Op,
}

impl Template {
    /// Compile `fields`; `None` when no record could be read with it (zero minimum length).
    /// A data template's fields outside `read` are skipped ([`Slot::Ignore`]: no step in the
    /// fixed-offset plan, no range check); options templates are read whole.
    pub(crate) fn compile(
        options: bool,
        fields: Vec<FieldSpec>,
        mapped: &[FieldMapping],
        read: RecordFields,
    ) -> Option<Template> {
        let mut min_len = 0usize;
        let mut custom = Vec::new();
        let ops: Box<[Op]> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                min_len += if f.len == VARLEN {
                    1
                } else {
                    usize::from(f.len)
                };
                // A field repeated in one template: the last occurrence is read, earlier ones
                // are kept only as raw fields. RFC 7011 §8 orders repeated elements by "the
                // logical order of their treatments by the Metering Process"; exporters that
                // repeat the header fields of an encapsulated packet (Cisco and Huawei SRv6:
                // outer IPv6 header, then the inner packet's addresses, protocol and ports) put
                // the customer's flow last, and pmacct keys such flows on the last occurrence.
                let repeated = fields.get(i + 1..).is_some_and(|after| {
                    after.iter().any(|b| {
                        (b.enterprise, b.id, b.v9_scope) == (f.enterprise, f.id, f.v9_scope)
                    })
                });
                let reverse = f.enterprise == ie::REVERSE_PEN && !f.v9_scope;
                let configured = mapped
                    .iter()
                    .find(|m| (m.enterprise, m.id) == (f.enterprise, f.id) && !f.v9_scope);
                // A configured element is read at every occurrence (Junos repeats 2636/137,
                // one common property each), in template order.
                let slot = if let Some(m) = configured {
                    custom.push((Arc::clone(&m.name), m.kind));
                    Slot::Custom((custom.len() - 1) as u16)
                } else if repeated {
                    Slot::Unknown
                } else if f.v9_scope {
                    ie::v9_scope_slot(f.id, f.len)
                } else if reverse {
                    ie::reverse_slot(f.id, f.len)
                } else {
                    ie::slot(f.enterprise, f.id, f.len)
                };
                let (slot, inner) = match slot {
                    s if reverse && s != Slot::Unknown && !matches!(s, Slot::Custom(_)) => {
                        (Slot::Reverse, s)
                    }
                    s => (s, Slot::Unknown),
                };
                // A reverse element is read when its forward field would be.
                let (slot, inner) = if options
                    || read.contains(ie::group(if slot == Slot::Reverse { inner } else { slot }))
                {
                    (slot, inner)
                } else {
                    (Slot::Ignore, Slot::Unknown)
                };
                let target = if slot == Slot::Reverse { inner } else { slot };
                let max = ie::max_value(target);
                let int = ie::reads_int(target)
                    || matches!(target, Slot::Custom(i)
                        if custom.get(usize::from(i)).is_some_and(|c| c.1 == FieldKind::Unsigned));
                let fits = f.len != VARLEN && u32::from(f.len) * 8 <= 64 - max.leading_zeros();
                let max = if fits { u64::MAX } else { max };
                Op {
                    index: i as u16,
                    len: f.len,
                    slot,
                    inner,
                    max,
                    int,
                    enterprise: f.enterprise,
                    id: f.id,
                }
            })
            .collect();
        let checked = ops.iter().any(|o| o.max != u64::MAX);
        let fixed = (!checked).then(|| fixed_plan(&ops)).flatten();
        let core = fixed.as_deref().and_then(CoreLayout::of);
        let wide = match core {
            Some(_) => None,
            None => fixed.as_deref().and_then(WideLayout::of),
        };
        let responder = |o: &Op| {
            matches!(
                o.slot,
                Slot::Val(Val::ResponderOctets) | Slot::Val(Val::ResponderPackets)
            )
        };
        let one_flow_per_record = fixed.is_some() && !ops.iter().any(responder);
        (min_len > 0).then(|| Template {
            checked,
            options,
            fields: fields.into_boxed_slice(),
            ops,
            custom: custom.into_boxed_slice(),
            min_len,
            fixed,
            core,
            wide,
            one_flow_per_record,
            wire: Box::default(),
        })
    }
}

/// The [`FixedOp`] plan of `ops`, when they allow one.
fn fixed_plan(ops: &[Op]) -> Option<Box<[FixedOp]>> {
    let mut off = 0usize;
    let mut plan = Vec::with_capacity(ops.len());
    for op in ops {
        if op.len == VARLEN || op.slot == Slot::Reverse || (op.int && op.len > 8) {
            return None;
        }
        if op.slot != Slot::Ignore {
            plan.push(FixedOp {
                off: u16::try_from(off).ok()?,
                op: *op,
            });
        }
        off += usize::from(op.len);
    }
    Some(plan.into_boxed_slice())
}

/// An integer field of a [`CoreLayout`]: its offset, its length (1..=8; 0: the template has
/// none) and the shift that keeps its bytes of an 8-byte big-endian load (`64 - 8 × len`), so
/// that reading one is a load, a byte swap and a shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IntAt {
    off: u16,
    len: u8,
    shift: u8,
}

/// An address of a [`CoreLayout`]: the IPv4 and IPv6 forms' offsets plus one (0: absent), and
/// whether the IPv6 one comes first in the template (the later one is applied last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AddrAt {
    v4: u16,
    v6: u16,
    v6_first: bool,
}

/// Scratch values a [`CoreLayout`] carries at most.
const CORE_VALS: usize = 6;

/// A fixed-offset plan read with no loop and no dispatch per field: each field the layout
/// covers is at a known offset or absent. Built for plans whose every step is one of the
/// fields below, each at most once (with `decoder.record_fields` narrowed to what the rollups
/// read, the plan of a typical template: addresses, ports, protocol, counters, direction,
/// sampler); any other plan is read step by step. Reads exactly what [`read_fixed`] reads
/// (a test holds them to the same records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CoreLayout {
    src: AddrAt,
    dst: AddrAt,
    src_port: IntAt,
    dst_port: IntAt,
    protocol: IntAt,
    tos: IntAt,
    direction: IntAt,
    in_if: IntAt,
    out_if: IntAt,
    src_as: IntAt,
    dst_as: IntAt,
    icmp_type_code: IntAt,
    application_id: IntAt,
    /// Scratch integers (counters, sampling): the first `vals_len` entries.
    vals: [(IntAt, Val); CORE_VALS],
    vals_len: u8,
}

impl Default for CoreLayout {
    fn default() -> Self {
        let none = IntAt::default();
        CoreLayout {
            src: AddrAt::default(),
            dst: AddrAt::default(),
            src_port: none,
            dst_port: none,
            protocol: none,
            tos: none,
            direction: none,
            in_if: none,
            out_if: none,
            src_as: none,
            dst_as: none,
            icmp_type_code: none,
            application_id: none,
            vals: [(none, Val::Octets); CORE_VALS],
            vals_len: 0,
        }
    }
}

impl CoreLayout {
    /// The layout of `plan`, when every step is a field the layout covers, once.
    fn of(plan: &[FixedOp]) -> Option<CoreLayout> {
        let mut l = CoreLayout::default();
        for f in plan {
            let int = |target: &mut IntAt| int_field(f, target);
            let addr = |target: &mut AddrAt, v6: bool| addr_field(f, target, v6);
            match f.op.slot {
                Slot::SrcV4 => addr(&mut l.src, false)?,
                Slot::SrcV6 => addr(&mut l.src, true)?,
                Slot::DstV4 => addr(&mut l.dst, false)?,
                Slot::DstV6 => addr(&mut l.dst, true)?,
                Slot::SrcPort => int(&mut l.src_port)?,
                Slot::DstPort => int(&mut l.dst_port)?,
                Slot::Protocol => int(&mut l.protocol)?,
                Slot::Tos => int(&mut l.tos)?,
                Slot::Direction => int(&mut l.direction)?,
                Slot::InIf => int(&mut l.in_if)?,
                Slot::OutIf => int(&mut l.out_if)?,
                Slot::SrcAs => int(&mut l.src_as)?,
                Slot::DstAs => int(&mut l.dst_as)?,
                Slot::IcmpTypeCode => int(&mut l.icmp_type_code)?,
                Slot::ApplicationId => int(&mut l.application_id)?,
                Slot::Val(k) => {
                    let n = usize::from(l.vals_len);
                    let seen = l.vals.get(..n)?.iter().any(|(_, v)| *v == k);
                    let mut at_len = IntAt::default();
                    int(&mut at_len)?;
                    *l.vals.get_mut(n).filter(|_| !seen)? = (at_len, k);
                    l.vals_len += 1;
                }
                _ => return None,
            }
        }
        Some(l)
    }
}

/// Place the integer step `f` in `target`, which must be empty: `None` when it is not an
/// integer of 1 to 8 bytes or the field came before.
fn int_field(f: &FixedOp, target: &mut IntAt) -> Option<()> {
    let len = u8::try_from(f.op.len)
        .ok()
        .filter(|n| (1..=8).contains(n))?;
    (target.len == 0).then(|| {
        *target = IntAt {
            off: f.off,
            len,
            shift: 64 - 8 * len,
        }
    })
}

/// Place the address step `f` (the IPv6 form when `v6`) in `target`: `None` when that form
/// came before or is not of its length.
fn addr_field(f: &FixedOp, target: &mut AddrAt, v6: bool) -> Option<()> {
    let at = f.off.checked_add(1)?;
    // The other form already placed: this one is applied after it.
    let v6_first = !v6 && target.v6 != 0;
    let (slot, len) = if v6 {
        (&mut target.v6, 16)
    } else {
        (&mut target.v4, 4)
    };
    (*slot == 0 && f.op.len == len).then(|| *slot = at)?;
    target.v6_first = v6_first;
    Some(())
}

/// A [`CoreLayout`] and the fields beyond it that routers' templates commonly carry: TCP
/// flags, prefix lengths, next hops, start and end times in seconds or milliseconds, VLAN
/// ids, MAC addresses, TTL and forwarding status. With every field read (`flowtel decode`, the
/// per-flow sinks), a typical template has some of these, so the core layout alone rarely
/// applies and each field went through [`apply`]'s dispatch. Built for plans whose every step
/// is a core field or one of these, each at most once. Streamed records it was read into are
/// emptied by [`clear_wide`] as well as [`clear_core`]. Reads exactly what [`read_fixed`]
/// reads (a test holds them to the same records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WideLayout {
    core: CoreLayout,
    tcp_flags: IntAt,
    src_mask: IntAt,
    dst_mask: IntAt,
    next_hop: AddrAt,
    bgp_next_hop: AddrAt,
    vlan: IntAt,
    dst_vlan: IntAt,
    ip_ttl: IntAt,
    forwarding_status: IntAt,
    /// MAC addresses' offsets plus one (0: absent).
    src_mac: u16,
    dst_mac: u16,
    /// Start and end times: the field, the scratch value it sets and the factor to
    /// nanoseconds; the first `times_len`.
    times: [(IntAt, Val, u64); 2],
    times_len: u8,
}

impl WideLayout {
    /// The layout of `plan`, when every step is a field of the core layout or of this one,
    /// once, and one at least is of this one.
    fn of(plan: &[FixedOp]) -> Option<WideLayout> {
        let none = IntAt::default();
        let mut l = WideLayout {
            core: CoreLayout::default(),
            tcp_flags: none,
            src_mask: none,
            dst_mask: none,
            next_hop: AddrAt::default(),
            bgp_next_hop: AddrAt::default(),
            vlan: none,
            dst_vlan: none,
            ip_ttl: none,
            forwarding_status: none,
            src_mac: 0,
            dst_mac: 0,
            times: [(none, Val::StartNs, 0); 2],
            times_len: 0,
        };
        let mut core = Vec::with_capacity(plan.len());
        for f in plan {
            let mac = |target: &mut u16| -> Option<()> {
                let at = f.off.checked_add(1)?;
                (*target == 0 && f.op.len == 6).then(|| *target = at)
            };
            let mut time = |k: Val, factor: u64| -> Option<()> {
                let n = usize::from(l.times_len);
                let seen = l.times.get(..n)?.iter().any(|t| t.1 == k);
                let mut at = IntAt::default();
                int_field(f, &mut at)?;
                *l.times.get_mut(n).filter(|_| !seen)? = (at, k, factor);
                l.times_len += 1;
                Some(())
            };
            match f.op.slot {
                Slot::StartSecs => time(Val::StartNs, 1_000_000_000)?,
                Slot::EndSecs => time(Val::EndNs, 1_000_000_000)?,
                Slot::StartMillis => time(Val::StartNs, 1_000_000)?,
                Slot::EndMillis => time(Val::EndNs, 1_000_000)?,
                Slot::TcpFlags => int_field(f, &mut l.tcp_flags)?,
                Slot::SrcMask => int_field(f, &mut l.src_mask)?,
                Slot::DstMask => int_field(f, &mut l.dst_mask)?,
                Slot::NextHopV4 => addr_field(f, &mut l.next_hop, false)?,
                Slot::NextHopV6 => addr_field(f, &mut l.next_hop, true)?,
                Slot::BgpNextHopV4 => addr_field(f, &mut l.bgp_next_hop, false)?,
                Slot::BgpNextHopV6 => addr_field(f, &mut l.bgp_next_hop, true)?,
                Slot::Vlan => int_field(f, &mut l.vlan)?,
                Slot::DstVlan => int_field(f, &mut l.dst_vlan)?,
                Slot::IpTtl => int_field(f, &mut l.ip_ttl)?,
                Slot::ForwardingStatus => int_field(f, &mut l.forwarding_status)?,
                Slot::SrcMac => mac(&mut l.src_mac)?,
                Slot::DstMac => mac(&mut l.dst_mac)?,
                _ => core.push(*f),
            }
        }
        // The core's scratch values never include the times' (those come only from the
        // slots above), so the order of the two sets does not matter.
        (core.len() < plan.len()).then_some(())?;
        l.core = CoreLayout::of(&core)?;
        Some(l)
    }
}

/// The integer of `f` in `data` (present: `f.len > 0`), as [`read_fixed`] reads it.
#[inline(always)]
fn int_at(data: &[u8], f: IntAt) -> u64 {
    let off = usize::from(f.off);
    match data.get(off..off + 8).map(<[u8; 8]>::try_from) {
        Some(Ok(w)) => u64::from_be_bytes(w) >> f.shift,
        _ => data.get(off..off + usize::from(f.len)).map_or(0, uint),
    }
}

/// Values a record carries that are not final [`FlowRecord`] fields: integers in a flat
/// array with a presence mask (reset per record by clearing the mask), and the strings of
/// options records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scratch<'a> {
    present: u64,
    /// Integer fields whose value did not fit their field (left unset), since the scratch
    /// was made (not reset per record).
    pub out_of_range: u32,
    vals: [u64; VALS],
    pub if_name: Option<&'a [u8]>,
    pub if_description: Option<&'a [u8]>,
    pub vrf_name: Option<&'a [u8]>,
    pub app_name: Option<&'a [u8]>,
    /// IE 315 dataLinkFrameSection, 313 ipHeaderPacketSection, 314 ipPayloadPacketSection.
    pub frame: Option<&'a [u8]>,
    pub ip_section: Option<&'a [u8]>,
    pub payload_section: Option<&'a [u8]>,
    /// RFC 5103 reverse fields of the record: (op index, value start, value end) within the
    /// record, applied to the reverse record once the forward one is finished.
    reverse: [(u16, u32, u32); MAX_REVERSE_FIELDS],
    reverse_len: u8,
}

/// Reverse fields kept per record; more are ignored (an ipfixprobe biflow has about eight).
const MAX_REVERSE_FIELDS: usize = 24;

impl Default for Scratch<'_> {
    fn default() -> Self {
        Scratch {
            present: 0,
            out_of_range: 0,
            vals: [0; VALS],
            if_name: None,
            if_description: None,
            vrf_name: None,
            app_name: None,
            frame: None,
            ip_section: None,
            payload_section: None,
            reverse: [(0, 0, 0); MAX_REVERSE_FIELDS],
            reverse_len: 0,
        }
    }
}

impl<'a> Scratch<'a> {
    /// Forget the previous record's values.
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.present = 0;
        self.if_name = None;
        self.if_description = None;
        self.vrf_name = None;
        self.app_name = None;
        self.frame = None;
        self.ip_section = None;
        self.payload_section = None;
        self.reverse_len = 0;
    }

    /// Whether the record has a reverse direction to build (RFC 5103 elements, NSEL responder
    /// counters).
    #[inline]
    pub(crate) fn has_reverse(&self) -> bool {
        const RESPONDER: u64 = 1 << Val::ResponderOctets as u64 | 1 << Val::ResponderPackets as u64;
        self.reverse_len > 0 || self.present & RESPONDER != 0
    }

    /// Whether the record carries a sampled packet (IE 313/314/315).
    #[inline]
    fn has_packet(&self) -> bool {
        self.frame.is_some() || self.ip_section.is_some() || self.payload_section.is_some()
    }

    #[inline]
    pub(crate) fn get(&self, k: Val) -> Option<u64> {
        if self.present & (1 << k as u64) == 0 {
            return None;
        }
        self.vals.get(k as usize).copied()
    }

    #[inline]
    fn set(&mut self, k: Val, v: u64) {
        if let Some(slot) = self.vals.get_mut(k as usize) {
            *slot = v;
            self.present |= 1 << k as u64;
        }
    }

    #[inline]
    fn set_opt(&mut self, k: Val, v: Option<u64>) {
        match v {
            Some(v) => self.set(k, v),
            None => self.present &= !(1 << k as u64),
        }
    }

    pub(crate) fn sampler_id(&self) -> Option<u64> {
        self.get(Val::SamplerId)
    }

    pub(crate) fn sys_init_ms(&self) -> Option<u64> {
        self.get(Val::SysInitMillis)
    }

    pub(crate) fn vrf_id(&self) -> Option<u32> {
        let ingress = self.get(Val::IngressVrfId).filter(|&v| v != 0);
        ingress.or(self.get(Val::EgressVrfId)).map(|v| v as u32)
    }

    /// A 1-in-N rate carried by the record itself, in order of preference: samplingInterval
    /// (IE 34), samplerRandomInterval (IE 50), samplingPopulation / samplingSize (IE 310 /
    /// 309, RFC 5477 §8.2.2-8.2.3), then (samplingPacketInterval + samplingPacketSpace) /
    /// samplingPacketInterval (IE 305/306, RFC 5477 §8.2.1), only when the space is present:
    /// IOS-XR sends interval 1 without a space next to the real size/population.
    ///
    /// Most records carry none of these: that test is inlined into the readers, the rest is a
    /// call.
    #[inline(always)]
    pub(crate) fn sampling_rate(&self) -> Option<u32> {
        const ANY: u64 = 1 << Val::SamplingInterval as u64
            | 1 << Val::SamplerRandomInterval as u64
            | 1 << Val::SamplingSize as u64
            | 1 << Val::SamplingPacketInterval as u64;
        if self.present & ANY == 0 {
            None
        } else {
            self.sampling_rate_carried()
        }
    }

    /// [`Scratch::sampling_rate`] when the record carries one of its elements.
    #[inline(never)]
    fn sampling_rate_carried(&self) -> Option<u32> {
        let nonzero = |k: Val| self.get(k).filter(|&r| r > 0);
        let rate = nonzero(Val::SamplingInterval)
            .or(nonzero(Val::SamplerRandomInterval))
            .or_else(|| {
                let size = nonzero(Val::SamplingSize)?;
                Some(nonzero(Val::SamplingPopulation)? / size)
            })
            .or_else(|| {
                let interval = nonzero(Val::SamplingPacketInterval)?;
                let space = self.get(Val::SamplingPacketSpace)?;
                Some(interval.saturating_add(space) / interval)
            })?;
        u32::try_from(rate).ok().filter(|&r| r > 0)
    }
}

/// A data record could not be read (it runs past the end of its set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordTruncated;

/// Big-endian unsigned integer of 1..=8 bytes (reduced-size encoding, RFC 7011 §6.2).
#[inline]
pub(crate) fn uint(v: &[u8]) -> u64 {
    match *v {
        [a] => u64::from(a),
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_be_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => v.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    }
}

/// A big-endian unsigned integer longer than 8 bytes, when its value fits 64 bits.
fn wide_uint(v: &[u8]) -> Option<u64> {
    let (high, low) = v.split_at(v.len().checked_sub(8)?);
    high.iter().all(|&b| b == 0).then(|| uint(low))
}

fn mac(v: &[u8]) -> Option<[u8; 6]> {
    <[u8; 6]>::try_from(v).ok()
}

fn v4(v: &[u8]) -> Option<IpAddr> {
    <[u8; 4]>::try_from(v)
        .ok()
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
}

fn v6(v: &[u8]) -> Option<IpAddr> {
    <[u8; 16]>::try_from(v)
        .ok()
        .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
}

/// Templates often carry both the IPv4 and the IPv6 form of an address, the unused one
/// zeroed: an unspecified address never replaces one already read.
#[inline]
fn set_addr(slot: &mut Option<IpAddr>, v: Option<IpAddr>) {
    if slot.is_none() || v.is_some_and(|a| !a.is_unspecified()) {
        *slot = v;
    }
}

/// The wall-clock time of `event_ms`, an exporter uptime in milliseconds, given that the
/// exporter's uptime was `header_ms` at `export_ns` (NetFlow v5 FIRST/LAST, NetFlow v9
/// FIRST_SWITCHED/LAST_SWITCHED, RFC 3954 §8).
///
/// The difference `header_ms - event_ms` is taken as a signed 32-bit number (RFC 1982-style
/// serial arithmetic): an event a few milliseconds after the header's uptime (exporters stamp
/// the header before writing the last records) lies after the export time, and an event
/// before a wrap of the 32-bit uptime counter (every 2^32 ms, about 49.7 days) still lies
/// just before it. An unsigned wrapping difference would date both 49.7 days in the past.
pub(crate) fn uptime_to_unix_ns(export_ns: u64, header_ms: u32, event_ms: u32) -> u64 {
    let ago_ms = i64::from(header_ms.wrapping_sub(event_ms) as i32);
    if ago_ms >= 0 {
        export_ns.saturating_sub(ago_ms.unsigned_abs() * 1_000_000)
    } else {
        export_ns.saturating_add(ago_ms.unsigned_abs() * 1_000_000)
    }
}

/// Seconds between the NTP era 0 epoch (1900) and the Unix epoch.
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// RFC 7011 §6.1.9/§6.1.10: dateTimeMicroseconds/Nanoseconds use the NTP 64-bit timestamp
/// format (RFC 5905 §6), seconds since 1900 plus a 32-bit binary fraction.
fn ntp_to_unix_ns(v: &[u8]) -> Option<u64> {
    let raw = uint(v);
    let secs = (raw >> 32).checked_sub(NTP_UNIX_OFFSET_SECS)?;
    let frac_ns = ((raw & 0xFFFF_FFFF) * 1_000_000_000) >> 32;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(frac_ns))
}

/// Read one data record at the start of `data` with `template` into `rec` and `scratch`.
/// Returns the bytes consumed.
#[inline]
pub(crate) fn read_record<'a>(
    template: &Template,
    data: &'a [u8],
    rec: &mut FlowRecord,
    scratch: &mut Scratch<'a>,
    keep_unknown: bool,
) -> Result<usize, RecordTruncated> {
    if let Some(layout) = &template.core {
        return read_core(layout, template.min_len, data, rec, scratch);
    }
    if let Some(layout) = &template.wide {
        return read_wide(layout, template.min_len, data, rec, scratch);
    }
    if let Some(plan) = &template.fixed {
        return read_fixed(template, plan, data, rec, scratch, keep_unknown);
    }
    let mut pos = 0usize;
    for op in template.ops.iter() {
        let len = if op.len == VARLEN {
            // RFC 7011 §7: one length byte, or 255 followed by a two-byte length.
            let first = *data.get(pos).ok_or(RecordTruncated)?;
            if first < 255 {
                pos += 1;
                usize::from(first)
            } else {
                let b = data.get(pos + 1..pos + 3).ok_or(RecordTruncated)?;
                pos += 3;
                uint(b) as usize
            }
        } else {
            usize::from(op.len)
        };
        let v = data.get(pos..pos + len).ok_or(RecordTruncated)?;
        // Integers of 1..=8 bytes (reduced-size encoding) are read as one 8-byte big-endian
        // load shifted right, when 8 bytes are available; `uint` otherwise. Longer ones are
        // kept when their leading bytes are zero (the value fits 64 bits).
        let int = match data.get(pos..pos + 8).map(<[u8; 8]>::try_from) {
            Some(Ok(w)) if (1..=8).contains(&len) => u64::from_be_bytes(w) >> (64 - 8 * len as u32),
            _ if len <= 8 => uint(v),
            _ => match wide_uint(v) {
                Some(i) => i,
                None if op.int => {
                    // Above 64 bits: cannot be the field's value (counted, left unset).
                    scratch.out_of_range += 1;
                    pos += len;
                    continue;
                }
                None => 0,
            },
        };
        pos += len;
        // A value too large for its field leaves the field unset (counted). Only templates
        // with a field longer than its type check (a loop-invariant branch otherwise).
        if template.checked && int > op.max {
            scratch.out_of_range += 1;
            continue;
        }
        apply(
            op.slot,
            op,
            v,
            int,
            rec,
            scratch,
            keep_unknown,
            &template.custom,
            pos,
        );
    }
    Ok(pos)
}

/// [`read_record`] with a template's fixed-offset plan: `template.min_len` is the record's
/// length.
#[inline]
fn read_fixed<'a>(
    template: &Template,
    plan: &[FixedOp],
    data: &'a [u8],
    rec: &mut FlowRecord,
    scratch: &mut Scratch<'a>,
    keep_unknown: bool,
) -> Result<usize, RecordTruncated> {
    let record_len = template.min_len;
    if data.len() < record_len {
        return Err(RecordTruncated);
    }
    for f in plan {
        let (off, len) = (usize::from(f.off), usize::from(f.op.len));
        let Some(v) = data.get(off..off + len) else {
            continue;
        };
        // As in `read_record`: one 8-byte load where the data goes on that far (the compile
        // step leaves out integers longer than 8 bytes; others of that length are not
        // integers, their value is never read).
        let int = match data.get(off..off + 8).map(<[u8; 8]>::try_from) {
            Some(Ok(w)) if (1..=8).contains(&len) => u64::from_be_bytes(w) >> (64 - 8 * len as u32),
            _ if len <= 8 => uint(v),
            _ => 0,
        };
        apply(
            f.op.slot,
            &f.op,
            v,
            int,
            rec,
            scratch,
            keep_unknown,
            &template.custom,
            off + len,
        );
    }
    Ok(record_len)
}

/// The address of `a` in `data` into `slot`, empty when a record is read, as [`apply`] sets it
/// (the forms in template order).
#[inline(always)]
fn addr_at(data: &[u8], slot: &mut Option<IpAddr>, a: AddrAt) {
    let v4 = |at: u16| {
        let off = usize::from(at - 1);
        data.get(off..off + 4).and_then(v4)
    };
    let v6 = |at: u16| {
        let off = usize::from(at - 1);
        data.get(off..off + 16).and_then(v6)
    };
    match (a.v4, a.v6) {
        (0, 0) => {}
        // The slot is empty when a record is read (`FlowRecord::new`, `clear_core`), and
        // `set_addr` always fills an empty one: a single form is stored as read.
        (at, 0) => *slot = v4(at),
        (0, at) => *slot = v6(at),
        (at4, at6) if a.v6_first => {
            set_addr(slot, v6(at6));
            set_addr(slot, v4(at4));
        }
        (at4, at6) => {
            set_addr(slot, v4(at4));
            set_addr(slot, v6(at6));
        }
    }
}

/// Empty again the fields of `rec` that reading a record with a [`CoreLayout`] and finishing
/// it can set: [`read_core`]'s fields, what [`finish`] derives from them and from the scratch
/// values a layout carries (counters, times, sampler, VLAN, MACs, TTL, physical interfaces,
/// EtherType, ICMP type and code), and what the data set's reader adds (application name,
/// sampling rate and source; the domain and sequence it sets on every record). A record read
/// that way and emptied so is [`FlowRecord::new`]'s again but for those two, so the next one
/// can be read into it ([`crate::Decoder::decode_streaming`]). A field either reader comes to
/// set must be added here; the streaming tests of `tests/properties.rs` compare the records
/// with those of the appending path.
#[inline]
pub(crate) fn clear_core(rec: &mut FlowRecord) {
    rec.src_addr = None;
    rec.dst_addr = None;
    rec.src_port = 0;
    rec.dst_port = 0;
    rec.ip_protocol = 0;
    rec.tos = 0;
    rec.direction = None;
    rec.in_if = None;
    rec.out_if = None;
    rec.src_as = None;
    rec.dst_as = None;
    rec.icmp_type = None;
    rec.icmp_code = None;
    rec.application_id = None;
    rec.application_name = None;
    rec.bytes = 0;
    rec.packets = 0;
    rec.sampler_id = None;
    rec.vlan = None;
    rec.src_mac = None;
    rec.dst_mac = None;
    rec.ip_ttl = None;
    rec.etype = None;
    rec.flow_start_ns = None;
    rec.flow_end_ns = None;
    rec.sampling_rate = None;
    rec.sampling_source = SamplingSource::Unknown;
}

/// Empty again the fields of `rec` that reading a record with a [`WideLayout`] sets beyond
/// what [`clear_core`] empties (`finish` derives nothing more from them). A field
/// [`read_wide`] comes to set must be added here or to [`clear_core`].
#[inline]
pub(crate) fn clear_wide(rec: &mut FlowRecord) {
    rec.tcp_flags = 0;
    rec.src_prefix_len = None;
    rec.dst_prefix_len = None;
    rec.next_hop = None;
    rec.bgp_next_hop = None;
    rec.src_vlan = None;
    rec.dst_vlan = None;
    rec.forwarding_status = None;
}

/// [`read_record`] with a template's [`CoreLayout`]; `record_len` is the record's length.
/// Each field is stored as [`apply`] stores it.
#[inline]
pub(crate) fn read_core(
    l: &CoreLayout,
    record_len: usize,
    data: &[u8],
    rec: &mut FlowRecord,
    s: &mut Scratch<'_>,
) -> Result<usize, RecordTruncated> {
    // Every field lies within the record (the plan was built from its fields); loads may read
    // past its end into the set, as in `read_fixed`, and keep only the field's bytes.
    if data.len() < record_len {
        return Err(RecordTruncated);
    }
    let int = |f: IntAt| (f.len != 0).then(|| int_at(data, f));
    addr_at(data, &mut rec.src_addr, l.src);
    addr_at(data, &mut rec.dst_addr, l.dst);
    if let Some(v) = int(l.src_port) {
        rec.src_port = v as u16;
    }
    if let Some(v) = int(l.dst_port) {
        rec.dst_port = v as u16;
    }
    if let Some(v) = int(l.protocol) {
        rec.ip_protocol = v as u8;
    }
    if let Some(v) = int(l.tos) {
        rec.tos = v as u8;
    }
    if let Some(v) = int(l.direction) {
        // IE 61 flowDirection: 0 ingress, 1 egress.
        rec.direction = match v {
            0 => Some(FlowDirection::Ingress),
            1 => Some(FlowDirection::Egress),
            _ => None,
        };
    }
    if let Some(v) = int(l.in_if) {
        rec.in_if = Some(v as u32);
    }
    if let Some(v) = int(l.out_if) {
        rec.out_if = Some(v as u32);
    }
    if let Some(v) = int(l.src_as) {
        rec.src_as = Some(v as u32);
    }
    if let Some(v) = int(l.dst_as) {
        rec.dst_as = Some(v as u32);
    }
    if let Some(v) = int(l.icmp_type_code) {
        rec.icmp_type = Some((v >> 8) as u8);
        rec.icmp_code = Some(v as u8);
    }
    if let Some(v) = int(l.application_id) {
        rec.application_id = Some(v);
    }
    for (f, k) in l.vals.get(..usize::from(l.vals_len)).unwrap_or_default() {
        s.set(*k, int_at(data, *f));
    }
    Ok(record_len)
}

/// [`read_record`] with a template's [`WideLayout`]: its core fields as [`read_core`]
/// reads them, then the others, each stored as [`apply`] stores it.
#[inline]
pub(crate) fn read_wide(
    l: &WideLayout,
    record_len: usize,
    data: &[u8],
    rec: &mut FlowRecord,
    s: &mut Scratch<'_>,
) -> Result<usize, RecordTruncated> {
    let used = read_core(&l.core, record_len, data, rec, s)?;
    let int = |f: IntAt| (f.len != 0).then(|| int_at(data, f));
    if let Some(v) = int(l.tcp_flags) {
        rec.tcp_flags = v as u16;
    }
    if let Some(v) = int(l.src_mask) {
        rec.src_prefix_len = Some(v as u8);
    }
    if let Some(v) = int(l.dst_mask) {
        rec.dst_prefix_len = Some(v as u8);
    }
    addr_at(data, &mut rec.next_hop, l.next_hop);
    addr_at(data, &mut rec.bgp_next_hop, l.bgp_next_hop);
    if let Some(v) = int(l.vlan) {
        rec.vlan = Some((v & 0x0FFF) as u16);
        rec.src_vlan = rec.vlan;
    }
    if let Some(v) = int(l.dst_vlan) {
        rec.dst_vlan = Some((v & 0x0FFF) as u16);
    }
    if let Some(v) = int(l.ip_ttl) {
        rec.ip_ttl = Some(v as u8);
    }
    if let Some(v) = int(l.forwarding_status) {
        rec.forwarding_status = Some(v as u8);
    }
    let mac_at = |at: u16| {
        let off = usize::from(at.wrapping_sub(1));
        data.get(off..off + 6).and_then(mac)
    };
    if l.src_mac != 0 {
        rec.src_mac = mac_at(l.src_mac);
    }
    if l.dst_mac != 0 {
        rec.dst_mac = mac_at(l.dst_mac);
    }
    for (f, k, factor) in l.times.get(..usize::from(l.times_len)).unwrap_or_default() {
        s.set(*k, int_at(data, *f).saturating_mul(*factor));
    }
    Ok(used)
}

/// Apply one field's value: `slot` (the op's, or for a reverse element its forward slot),
/// `v` the bytes and `int` their value as an integer (already checked to fit `slot`).
/// Inlined into both readers: a call per field costs more than the field.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn apply<'a>(
    slot: Slot,
    op: &Op,
    v: &'a [u8],
    int: u64,
    rec: &mut FlowRecord,
    s: &mut Scratch<'a>,
    keep_unknown: bool,
    custom: &[(Arc<str>, FieldKind)],
    end: usize,
) {
    match slot {
        Slot::Unknown => {
            if keep_unknown {
                rec.unknown_fields.push(RawField {
                    enterprise: op.enterprise,
                    id: op.id,
                    value: v.to_vec(),
                });
            }
        }
        Slot::Ignore => {}
        // Kept to be applied to the reverse record once the forward one is finished.
        Slot::Reverse => {
            if let Some(slot) = s.reverse.get_mut(usize::from(s.reverse_len)) {
                let start = end.saturating_sub(v.len());
                *slot = (op.index, start as u32, end as u32);
                s.reverse_len += 1;
            }
        }
        Slot::Val(k) => s.set(k, int),
        Slot::Protocol => rec.ip_protocol = int as u8,
        Slot::Tos => rec.tos = int as u8,
        Slot::TcpFlags => rec.tcp_flags = int as u16,
        Slot::SrcPort => rec.src_port = int as u16,
        Slot::DstPort => rec.dst_port = int as u16,
        Slot::SrcV4 => set_addr(&mut rec.src_addr, v4(v)),
        Slot::DstV4 => set_addr(&mut rec.dst_addr, v4(v)),
        Slot::SrcV6 => set_addr(&mut rec.src_addr, v6(v)),
        Slot::DstV6 => set_addr(&mut rec.dst_addr, v6(v)),
        Slot::SrcMask => rec.src_prefix_len = Some(int as u8),
        Slot::DstMask => rec.dst_prefix_len = Some(int as u8),
        Slot::InIf => rec.in_if = Some(int as u32),
        Slot::OutIf => rec.out_if = Some(int as u32),
        Slot::NextHopV4 => set_addr(&mut rec.next_hop, v4(v)),
        Slot::NextHopV6 => set_addr(&mut rec.next_hop, v6(v)),
        Slot::BgpNextHopV4 => set_addr(&mut rec.bgp_next_hop, v4(v)),
        Slot::BgpNextHopV6 => set_addr(&mut rec.bgp_next_hop, v6(v)),
        Slot::SrcAs => rec.src_as = Some(int as u32),
        Slot::DstAs => rec.dst_as = Some(int as u32),
        Slot::StartSecs => s.set(Val::StartNs, int.saturating_mul(1_000_000_000)),
        Slot::EndSecs => s.set(Val::EndNs, int.saturating_mul(1_000_000_000)),
        Slot::StartMillis => s.set(Val::StartNs, int.saturating_mul(1_000_000)),
        Slot::EndMillis => s.set(Val::EndNs, int.saturating_mul(1_000_000)),
        Slot::StartNtp => s.set_opt(Val::StartNs, ntp_to_unix_ns(v)),
        Slot::EndNtp => s.set_opt(Val::EndNs, ntp_to_unix_ns(v)),
        Slot::SrcMac => rec.src_mac = mac(v),
        Slot::DstMac => rec.dst_mac = mac(v),
        Slot::Vlan => {
            rec.vlan = Some((int & 0x0FFF) as u16);
            rec.src_vlan = rec.vlan;
        }
        Slot::DstVlan => rec.dst_vlan = Some((int & 0x0FFF) as u16),
        Slot::InnerVlan => rec.inner_vlan = Some((int & 0x0FFF) as u16),
        Slot::MplsLabel(depth) => {
            // RFC 7012 mplsTopLabelStackSection: the label stack entry's first 3 octets,
            // label (20 bits), TC (3), S (1).
            let label = (int as u32) >> 4;
            rec.mpls_labels.set(usize::from(depth), label);
            if depth == 0 {
                rec.mpls_top_label = Some(label);
            }
        }
        Slot::IcmpTypeCode => {
            rec.icmp_type = Some((int >> 8) as u8);
            rec.icmp_code = Some(int as u8);
        }
        Slot::IcmpType => rec.icmp_type = Some(int as u8),
        Slot::IcmpCode => rec.icmp_code = Some(int as u8),
        Slot::Direction => {
            // IE 61 flowDirection: 0 ingress, 1 egress.
            rec.direction = match int {
                0 => Some(FlowDirection::Ingress),
                1 => Some(FlowDirection::Egress),
                _ => None,
            }
        }
        Slot::InterfaceName => s.if_name = Some(v),
        Slot::InterfaceDescription => s.if_description = Some(v),
        Slot::VrfName => s.vrf_name = Some(v),
        Slot::IpTtl => rec.ip_ttl = Some(int as u8),
        Slot::ForwardingStatus => rec.forwarding_status = Some(int as u8),
        Slot::FlowLabel => rec.ipv6_flow_label = Some(int as u32 & 0x000f_ffff),
        Slot::FragmentId => rec.fragment_id = Some(int as u32),
        Slot::FragmentOffset => rec.fragment_offset = Some(int as u16),
        // IE 197 fragmentFlags: bit 0 (0x80) reserved, 1 (0x40) DF, 2 (0x20) MF (RFC 5102),
        // stored as the IPv4 header's 3-bit flags field.
        Slot::FragmentFlags => rec.ip_flags = Some(int as u8 >> 5),
        Slot::NextHopAs => rec.next_hop_as = Some(int as u32),
        Slot::ObservationPointId => rec.observation_point_id = Some(int),
        Slot::Etype => rec.etype = Some(int as u16),
        Slot::ApplicationId => rec.application_id = Some(int),
        Slot::ApplicationName => s.app_name = Some(v),
        Slot::NatSrcV4 => nat(rec).src_addr = v4(v),
        Slot::NatDstV4 => nat(rec).dst_addr = v4(v),
        Slot::NatSrcV6 => nat(rec).src_addr = v6(v),
        Slot::NatDstV6 => nat(rec).dst_addr = v6(v),
        Slot::NatSrcPort => nat(rec).src_port = Some(int as u16),
        Slot::NatDstPort => nat(rec).dst_port = Some(int as u16),
        Slot::NatEvent => nat(rec).event = Some(int as u8),
        Slot::FirewallEvent => firewall(rec).event = Some(int as u8),
        Slot::FirewallExtEvent => firewall(rec).ext_event = Some(int as u16),
        Slot::FlowId => firewall(rec).flow_id = Some(int),
        Slot::EventTimeMillis => firewall(rec).event_time_ms = Some(int),
        Slot::Custom(i) => {
            if let Some((name, kind)) = custom.get(usize::from(i))
                && let Some(value) = custom_value(*kind, v, int)
            {
                rec.custom_fields.push(CustomField {
                    name: Arc::clone(name),
                    value,
                });
            }
        }
        Slot::DataLinkFrame => s.frame = Some(v),
        Slot::IpHeaderSection => s.ip_section = Some(v),
        Slot::IpPayloadSection => s.payload_section = Some(v),
    }
}

fn nat(rec: &mut FlowRecord) -> &mut Nat {
    rec.nat.get_or_insert_with(Nat::default)
}

fn firewall(rec: &mut FlowRecord) -> &mut Firewall {
    rec.firewall.get_or_insert_with(Firewall::default)
}

/// A configured field's value; `None` (the field is left out) when the bytes do not fit
/// the configured type.
fn custom_value(kind: FieldKind, v: &[u8], int: u64) -> Option<CustomValue> {
    match kind {
        FieldKind::String => Some(CustomValue::Str(text(v))),
        FieldKind::Unsigned => Some(CustomValue::Unsigned(int)),
        FieldKind::Address => v4(v).or_else(|| v6(v)).map(CustomValue::Addr),
        FieldKind::Mac => mac(v).map(CustomValue::Mac),
    }
}

/// Header times a data record's relative times are resolved against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeBase {
    /// Export time of the message in Unix nanoseconds (v9 unix_secs, IPFIX Export Time).
    pub export_ns: u64,
    /// NetFlow v9 header sysUpTime in milliseconds (RFC 3954 §5.1); `None` for IPFIX.
    pub sys_uptime_ms: Option<u32>,
    /// systemInitTimeMilliseconds (IE 160) learnt from options data for this scope.
    pub sys_init_ms: Option<u64>,
}

/// Fill the record fields that depend on several values: counters by precedence, times,
/// post-NAT/post-VLAN fallbacks, and the fields of a sampled packet the record carries.
///
/// The common case is inlined into the readers' loops and the rest is a call: once the
/// record fields are narrowed to what the rollups read, a record carries only its counters,
/// and the call's own cost (saving and restoring registers) was a quarter of the case's.
#[inline(always)]
pub(crate) fn finish(
    rec: &mut FlowRecord,
    s: &Scratch<'_>,
    base: &TimeBase,
    sflow_bytes: SflowBytes,
) {
    const COUNTERS: u64 = 1 << Val::Octets as u64 | 1 << Val::Packets as u64;
    if s.present & !COUNTERS == 0 && !s.has_packet() {
        // Only the plain counters: no precedence to resolve, no times, no sampler.
        rec.bytes = s.get(Val::Octets).unwrap_or(0);
        rec.packets = s.get(Val::Packets).unwrap_or(0);
        // postVlanId (IE 59) without vlanId: the flow's VLAN (as below; no dot1qVlanId here).
        if rec.vlan.is_none() {
            rec.vlan = rec.dst_vlan;
        }
        finish_common(rec);
    } else {
        finish_all(rec, s, base, sflow_bytes);
    }
}

/// [`finish`] when the record carries more than its counters.
#[inline(never)]
fn finish_all(rec: &mut FlowRecord, s: &Scratch<'_>, base: &TimeBase, sflow_bytes: SflowBytes) {
    let bytes = s
        .get(Val::Octets)
        .or_else(|| s.get(Val::OctetsTotal))
        .or_else(|| s.get(Val::PostOctets))
        .or_else(|| s.get(Val::InitiatorOctets));
    let packets = s
        .get(Val::Packets)
        .or_else(|| s.get(Val::PacketsTotal))
        .or_else(|| s.get(Val::PostPackets))
        .or_else(|| s.get(Val::InitiatorPackets));
    rec.bytes = bytes.unwrap_or(0);
    rec.packets = packets.unwrap_or(0);
    rec.sampler_id = s.sampler_id();
    if s.has_packet() {
        sampled_packet(rec, s, sflow_bytes, bytes.is_none(), packets.is_none());
    }
    // Values few templates carry, looked at only when one is present.
    const RARE: u64 = 1 << Val::Dot1qVlan as u64
        | 1 << Val::PostSrcMac as u64
        | 1 << Val::PostDstMac as u64
        | 1 << Val::MinTtl as u64
        | 1 << Val::MaxTtl as u64
        | 1 << Val::PhysInIf as u64
        | 1 << Val::PhysOutIf as u64;
    if s.present & RARE != 0 {
        finish_rare(rec, s);
    }
    if rec.etype.is_none() {
        // IE 60 ipVersion (softflowd and others send it in every record).
        rec.etype = match s.get(Val::IpVersion) {
            Some(4) => Some(ETHERTYPE_IPV4),
            Some(6) => Some(ETHERTYPE_IPV6),
            _ => None,
        };
    }
    if rec.vlan.is_none() {
        rec.vlan = rec.dst_vlan;
    }
    let (start, end) = times(s, base);
    rec.flow_start_ns = start;
    rec.flow_end_ns = end;
    finish_common(rec);
}

/// Fallbacks from elements few templates carry: IE 243 dot1qVlanId, 81/57 post MACs, 52/53
/// TTL, 252/253 physical interfaces (Nokia).
#[cold]
fn finish_rare(rec: &mut FlowRecord, s: &Scratch<'_>) {
    if rec.vlan.is_none() {
        rec.vlan = s.get(Val::Dot1qVlan).map(|v| v as u16 & 0x0FFF);
    }
    let mac48 = |k: Val| {
        s.get(k).map(|v| {
            let b = v.to_be_bytes();
            [b[2], b[3], b[4], b[5], b[6], b[7]]
        })
    };
    if rec.src_mac.is_none() {
        rec.src_mac = mac48(Val::PostSrcMac);
    }
    if rec.dst_mac.is_none() {
        rec.dst_mac = mac48(Val::PostDstMac);
    }
    let ttl = |k: Val| s.get(k).and_then(|t| u8::try_from(t).ok());
    rec.ip_ttl = rec
        .ip_ttl
        .or_else(|| ttl(Val::MinTtl))
        .or_else(|| ttl(Val::MaxTtl));
    rec.in_if = rec.in_if.or(s.get(Val::PhysInIf).map(|v| v as u32));
    rec.out_if = rec.out_if.or(s.get(Val::PhysOutIf).map(|v| v as u32));
}

/// The flow's start and end from whichever time elements the record carries.
#[inline]
fn times(s: &Scratch<'_>, base: &TimeBase) -> (Option<u64>, Option<u64>) {
    let sysup = |t: u64| -> Option<u64> {
        let t = t as u32;
        if let Some(up) = base.sys_uptime_ms {
            // RFC 3954 §8 FIRST_SWITCHED/LAST_SWITCHED: sysUpTime in ms of the exporter.
            Some(uptime_to_unix_ns(base.export_ns, up, t))
        } else {
            // IPFIX IE 21/22 are relative to systemInitTimeMilliseconds (IE 160).
            let init = s.sys_init_ms().or(base.sys_init_ms)?;
            Some(init.saturating_add(u64::from(t)).saturating_mul(1_000_000))
        }
    };
    // RFC 7011 §5: flowStart/EndDeltaMicroseconds (IE 158/159) count back from export time.
    let delta = |k: Val| {
        s.get(k)
            .map(|d| base.export_ns.saturating_sub(d.saturating_mul(1_000)))
    };
    let start = s
        .get(Val::StartNs)
        .or_else(|| s.get(Val::StartSysUpMs).and_then(sysup))
        .or_else(|| delta(Val::StartDeltaMicros));
    let end = s
        .get(Val::EndNs)
        .or_else(|| s.get(Val::EndSysUpMs).and_then(sysup))
        .or_else(|| delta(Val::EndDeltaMicros));
    (start, end)
}

/// A record carrying a sampled packet instead of (or besides) flow fields: RFC 7133 IE 315
/// `dataLinkFrameSection` (Juniper inline monitoring, Cisco, Nokia), RFC 5477 IE 313
/// `ipHeaderPacketSection` and IE 314 `ipPayloadPacketSection`. The packet is read by the
/// same parser as sFlow's sampled header (`packet`), into the record when it carries no
/// address of its own (a record with address fields keeps them and only takes its byte count
/// from the packet). A frame whose IE 408 `dataLinkFrameType` is not Ethernet (0x01) is not
/// parsed.
///
/// IE 314 fills the transport fields (ports, TCP flags, ICMP type) of a record that has no
/// ports, with the record's `protocolIdentifier`.
///
/// Without an octet counter, bytes are the packet's length as [`SflowBytes`] says: IE 312
/// `dataLinkFrameSize` (else the IP length) for `Frame`, the IP length from the header
/// (else IE 312) for `Ip`; the captured section's length when neither is known. Without a
/// packet counter, packets are 1: one record is one sampled packet.
/// Parse a packet into `rec` when the record carries no address of its own, else into a copy
/// (only the packet's length is then used).
fn parse_into(
    rec: &mut FlowRecord,
    parse: impl Fn(&mut FlowRecord) -> packet::Parsed,
) -> packet::Parsed {
    if rec.src_addr.is_none() {
        parse(rec)
    } else {
        parse(&mut rec.clone())
    }
}

fn sampled_packet(
    rec: &mut FlowRecord,
    s: &Scratch<'_>,
    sflow_bytes: SflowBytes,
    count_bytes: bool,
    count_packets: bool,
) {
    let ethernet = s.get(Val::DataLinkFrameType).is_none_or(|t| t == 1);
    let (parsed, captured) = match (s.frame.filter(|_| ethernet), s.ip_section) {
        (Some(frame), _) => (
            parse_into(rec, |r| packet::parse_frame(frame, r)),
            frame.len(),
        ),
        (None, Some(ip)) => (parse_into(rec, |r| packet::parse_ip(ip, r)), ip.len()),
        (None, None) => {
            let section = s.payload_section.or(s.frame).unwrap_or_default();
            if let Some(payload) = s.payload_section
                && rec.src_port == 0
                && rec.dst_port == 0
            {
                packet::parse_transport(rec.ip_protocol, payload, rec);
            }
            (packet::Parsed::default(), section.len())
        }
    };
    if count_bytes {
        let frame_size = s.get(Val::DataLinkFrameSize);
        let ip = parsed.ip_len.map(u64::from);
        rec.bytes = match sflow_bytes {
            SflowBytes::Frame => frame_size.or(ip),
            SflowBytes::Ip => ip.or(frame_size),
        }
        .unwrap_or(captured as u64);
    }
    if count_packets {
        rec.packets = 1;
    }
}

/// ICMP and ICMPv6 flows leave the decoder the same way whatever the wire format: type and
/// code in `icmp_type` / `icmp_code`, ports 0 (ICMP has no ports).
///
/// NetFlow v5, and v9/IPFIX exporters without ICMP type fields, put `type << 8 | code` in the
/// destination port of ICMP flows (Cisco's convention, kept by most exporters) with a zero
/// source port: that value becomes the type and code. A port below 256 (type 0 with a nonzero
/// code, which neither ICMP nor ICMPv6 has) is the type alone, as some exporters send it. Explicit fields (IE 32/139
/// icmpTypeCode, 176-179 icmpType/Code) win over the port.
#[inline]
pub(crate) fn finish_common(rec: &mut FlowRecord) {
    infer_etype(rec);
    if !matches!(rec.ip_protocol, 1 | 58) {
        return;
    }
    if rec.icmp_type.is_none() && rec.src_port == 0 {
        let (kind, code) = (rec.dst_port >> 8, rec.dst_port & 0xff);
        if kind == 0 && code != 0 {
            // Type 0 with a nonzero code exists in neither ICMP (echo reply has code 0 only)
            // nor ICMPv6 (type 0 is reserved): the exporter put the type alone in the port
            // (Cisco IOS XR does for ICMPv6, as pmacct reads it).
            rec.icmp_type = Some(code as u8);
            rec.icmp_code = Some(0);
        } else {
            rec.icmp_type = Some(kind as u8);
            rec.icmp_code = Some(code as u8);
        }
    }
    if rec.icmp_type.is_some() {
        rec.src_port = 0;
        rec.dst_port = 0;
    }
}

/// The network layer's EtherType from the address family, when nothing named it.
#[inline]
pub(crate) fn infer_etype(rec: &mut FlowRecord) {
    if rec.etype.is_none() {
        rec.etype = match rec.src_addr.or(rec.dst_addr) {
            Some(IpAddr::V4(_)) => Some(ETHERTYPE_IPV4),
            Some(IpAddr::V6(_)) => Some(ETHERTYPE_IPV6),
            None => None,
        };
    }
}

/// The reverse direction of a biflow record, when its reverse counters are not both zero.
///
/// RFC 5103 biflows (PEN 29305): the forward record with addresses, ports, interfaces, AS
/// numbers, prefix lengths, MACs and VLANs swapped, then every reverse element the template
/// carries applied as its forward counterpart would be (octets and packets, TCP flags, ToS,
/// TTL, times, MACs, VLANs, ICMP type, ...). Fields with no reverse value are the forward
/// record's swapped ones (times included) or, for TCP flags and direction, unset.
///
/// Cisco NSEL (ASA/FTD): `responderOctets` / `responderPackets` (IE 232/299,
/// NF_F_REV_FLOW_DELTA_BYTES) are the responder's bytes, sent back from the destination to
/// the source of the forward record (whose own bytes are `initiatorOctets`, IE 231). They
/// become the reverse record's counters when it has no RFC 5103 counters, so a connection
/// counts its bytes in both directions, each towards the side that received them.
pub(crate) fn reverse(
    rec: &FlowRecord,
    s: &Scratch<'_>,
    template: &Template,
    data: &[u8],
    base: &TimeBase,
) -> Option<FlowRecord> {
    let responder = s.get(Val::ResponderOctets).is_some() || s.get(Val::ResponderPackets).is_some();
    if s.reverse_len == 0 && !responder {
        return None;
    }
    let mut r = rec.clone();
    std::mem::swap(&mut r.src_addr, &mut r.dst_addr);
    std::mem::swap(&mut r.src_port, &mut r.dst_port);
    std::mem::swap(&mut r.in_if, &mut r.out_if);
    std::mem::swap(&mut r.src_as, &mut r.dst_as);
    std::mem::swap(&mut r.src_prefix_len, &mut r.dst_prefix_len);
    std::mem::swap(&mut r.src_mac, &mut r.dst_mac);
    std::mem::swap(&mut r.src_vlan, &mut r.dst_vlan);
    if let Some(nat) = r.nat.as_mut() {
        std::mem::swap(&mut nat.src_addr, &mut nat.dst_addr);
        std::mem::swap(&mut nat.src_port, &mut nat.dst_port);
    }
    r.tcp_flags = 0;
    r.direction = None;
    r.unknown_fields = Vec::new();
    let mut rs = Scratch::default();
    let fields = s
        .reverse
        .get(..usize::from(s.reverse_len))
        .unwrap_or_default();
    for &(i, start, end) in fields {
        let (Some(op), Some(v)) = (
            template.ops.get(usize::from(i)),
            data.get(start as usize..end as usize),
        ) else {
            continue;
        };
        // Already checked to fit when the record was read.
        let int = if v.len() <= 8 {
            uint(v)
        } else {
            wide_uint(v).unwrap_or(0)
        };
        if int > op.max {
            continue;
        }
        apply(
            op.inner,
            op,
            v,
            int,
            &mut r,
            &mut rs,
            false,
            &template.custom,
            end as usize,
        );
    }
    let bytes = rs
        .get(Val::Octets)
        .or_else(|| rs.get(Val::OctetsTotal))
        .or_else(|| rs.get(Val::PostOctets))
        .or_else(|| s.get(Val::ResponderOctets))
        .unwrap_or(0);
    let packets = rs
        .get(Val::Packets)
        .or_else(|| rs.get(Val::PacketsTotal))
        .or_else(|| rs.get(Val::PostPackets))
        .or_else(|| s.get(Val::ResponderPackets))
        .unwrap_or(0);
    if bytes == 0 && packets == 0 {
        return None;
    }
    r.bytes = bytes;
    r.packets = packets;
    let (start, end) = times(&rs, base);
    r.flow_start_ns = start.or(r.flow_start_ns);
    r.flow_end_ns = end.or(r.flow_end_ns);
    let ttl = |k: Val| rs.get(k).and_then(|t| u8::try_from(t).ok());
    if let Some(t) = ttl(Val::MinTtl).or_else(|| ttl(Val::MaxTtl)) {
        r.ip_ttl = Some(t);
    }
    finish_common(&mut r);
    Some(r)
}

/// Options strings are often NUL padded to a fixed length; keep the text before the padding.
pub(crate) fn text(v: &[u8]) -> Box<str> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    let s = v.get(..end).unwrap_or_default();
    String::from_utf8_lossy(s).trim_end().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlowProtocol;

    fn spec(enterprise: u32, id: u16, len: u16) -> FieldSpec {
        FieldSpec {
            enterprise,
            id,
            len,
            v9_scope: false,
        }
    }

    /// Both readers over every record of `data` with `fields`: the records and some of the
    /// scratch values they give.
    fn both(fields: &[FieldSpec], data: &[u8]) -> [(Vec<FlowRecord>, Vec<Option<u64>>); 2] {
        let fixed =
            Template::compile(false, fields.to_vec(), &[], RecordFields::ALL).expect("template");
        assert!(fixed.fixed.is_some(), "{fields:?} has a fixed plan");
        let generic = Template {
            fixed: None,
            ..Template::compile(false, fields.to_vec(), &[], RecordFields::ALL).expect("template")
        };
        [fixed, generic].map(|t| {
            let (mut recs, mut vals, mut pos) = (Vec::new(), Vec::new(), 0);
            while data.len() - pos >= t.min_len {
                let mut rec =
                    FlowRecord::new("192.0.2.1:2055".parse().unwrap(), FlowProtocol::Ipfix, 1);
                let mut s = Scratch::default();
                let rest = &data[pos..];
                pos += read_record(&t, rest, &mut rec, &mut s, true).expect("record");
                vals.push(Some(s.present));
                vals.extend(
                    [Val::Octets, Val::Packets, Val::EndSysUpMs, Val::IpVersion].map(|k| s.get(k)),
                );
                recs.push(rec);
            }
            (recs, vals)
        })
    }

    /// One NetFlow v9 record at the start of `data`, read with `t` and finished against a
    /// header time base.
    fn read_finished(t: &Template, data: &[u8]) -> FlowRecord {
        let mut rec = FlowRecord::new(
            "192.0.2.1:2055".parse().unwrap(),
            FlowProtocol::NetflowV9,
            1,
        );
        let mut s = Scratch::default();
        read_record(t, data, &mut rec, &mut s, false).unwrap();
        let base = TimeBase {
            export_ns: 1_700_000_000_000_000_000,
            sys_uptime_ms: Some(1_000_000),
            sys_init_ms: None,
        };
        finish(&mut rec, &s, &base, SflowBytes::Frame);
        rec
    }

    #[test]
    fn the_fixed_offset_plan_reads_what_the_general_reader_reads() {
        // softflowd's IPv4 template, reduced-size counters, an unknown element, padding, an
        // IPv6 address and a MAC, and a 3-byte integer.
        let fields = [
            spec(0, 8, 4),
            spec(0, 12, 4),
            spec(0, 22, 4),
            spec(0, 21, 4),
            spec(0, 1, 8),
            spec(0, 2, 4),
            spec(0, 10, 2),
            spec(0, 14, 2),
            spec(0, 61, 1),
            spec(0, 136, 1),
            spec(0, 7, 2),
            spec(0, 11, 2),
            spec(0, 4, 1),
            spec(0, 6, 1),
            spec(0, 60, 1),
            spec(0, 5, 1),
            spec(9, 1000, 3),
            spec(0, 210, 2),
            spec(0, 27, 16),
            spec(0, 56, 6),
            spec(0, 16, 3),
        ];
        let len: usize = fields.iter().map(|f| usize::from(f.len)).sum();
        // Three records, the last one ending where the data ends (its last integer is read
        // byte by byte), then 2 bytes of padding.
        let data: Vec<u8> = (0..len * 3 + 2).map(|i| (i * 37 + 11) as u8).collect();
        let [fixed, generic] = both(&fields, &data);
        assert_eq!(fixed.0.len(), 3);
        assert_eq!(fixed, generic);
        // flowEndReason and the enterprise element are kept as raw fields.
        let first = &fixed.0[0];
        let unknown: Vec<_> = first
            .unknown_fields
            .iter()
            .map(|f| (f.enterprise, f.id))
            .collect();
        assert_eq!(unknown, [(0, 136), (9, 1000)]);
        assert_eq!(
            first.src_as,
            Some(u32::from_be_bytes([
                0,
                data[len - 3],
                data[len - 2],
                data[len - 1]
            ]))
        );
    }

    #[test]
    fn a_narrower_field_set_skips_the_other_fields_and_reads_the_rest_alike() {
        // softflowd's IPv4 template (RFC 3954 §8 types): addresses, last/first switched,
        // octets, packets, input/output interfaces, ports, protocol, TCP flags, IP version,
        // ToS; then a reverse octet counter and a reverse ToS (RFC 5103), and a 16-byte
        // TCP-flags field whose value is above its type's range (range-checked when read).
        let fields = [
            spec(0, 8, 4),
            spec(0, 12, 4),
            spec(0, 21, 4),
            spec(0, 22, 4),
            spec(0, 1, 4),
            spec(0, 2, 4),
            spec(0, 10, 2),
            spec(0, 14, 2),
            spec(0, 7, 2),
            spec(0, 11, 2),
            spec(0, 4, 1),
            spec(0, 6, 1),
            spec(0, 60, 1),
            spec(0, 5, 1),
        ];
        let read = RecordFields::CORE | RecordFields::TOS;
        let all = Template::compile(false, fields.to_vec(), &[], RecordFields::ALL).unwrap();
        let narrow = Template::compile(false, fields.to_vec(), &[], read).unwrap();
        let steps = |t: &Template| t.fixed.as_ref().map(|p| p.len());
        // Interfaces, times, TCP flags and IP version have no step.
        assert_eq!((steps(&all), steps(&narrow)), (Some(14), Some(8)));
        let len: usize = fields.iter().map(|f| usize::from(f.len)).sum();
        let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let (a, n) = (read_finished(&all, &data), read_finished(&narrow, &data));
        assert!(a.flow_start_ns.is_some() && a.in_if.is_some() && a.tcp_flags != 0);
        assert_eq!(
            (n.flow_start_ns, n.flow_end_ns, n.in_if, n.out_if),
            (None, None, None, None)
        );
        assert_eq!((n.tcp_flags, n.etype), (0, Some(ETHERTYPE_IPV4)));
        let core = |r: &FlowRecord| {
            (
                r.src_addr,
                r.dst_addr,
                r.src_port,
                r.dst_port,
                r.ip_protocol,
                r.tos,
            )
        };
        assert_eq!(core(&n), core(&a));
        assert_eq!((n.bytes, n.packets), (a.bytes, a.packets));

        // A reverse element is read when its forward field is; a field outside the set is not
        // range-checked, so the template keeps its fixed plan.
        let mut biflow = fields.to_vec();
        biflow.extend([spec(ie::REVERSE_PEN, 1, 4), spec(ie::REVERSE_PEN, 5, 1)]);
        let ops = |read| {
            Template::compile(false, biflow.clone(), &[], read)
                .unwrap()
                .ops
        };
        let reverse = |ops: &[Op]| ops.iter().filter(|o| o.slot == Slot::Reverse).count();
        assert_eq!(reverse(&ops(RecordFields::ALL)), 2);
        assert_eq!(reverse(&ops(RecordFields::CORE)), 1);
        let mut wide = fields.to_vec();
        wide.push(spec(0, 6, 16));
        let t = Template::compile(false, wide.clone(), &[], RecordFields::ALL).unwrap();
        assert!(t.checked && t.fixed.is_none());
        let t = Template::compile(false, wide, &[], RecordFields::CORE).unwrap();
        assert!(!t.checked && t.fixed.is_some());
        // Options templates are read whole.
        let t = Template::compile(true, fields.to_vec(), &[], RecordFields::CORE).unwrap();
        assert_eq!(t.fixed.map(|p| p.len()), Some(14));
    }

    /// `t`, compiled from `fields` with a layout, reads what the same template's fixed plan and
    /// general reader read: records of varied bytes, some with an address form zeroed, the
    /// last one ending where the data ends, give the same length, scratch values and finished
    /// record; a record shorter than the template is truncated.
    fn reads_what_the_plan_reads(fields: &[FieldSpec], t: &Template) {
        let len: usize = fields.iter().map(|f| usize::from(f.len)).sum();
        let compile = || Template::compile(false, fields.to_vec(), &[], RecordFields::ALL);
        let fixed = Template {
            core: None,
            wide: None,
            ..compile().unwrap()
        };
        let generic = Template {
            core: None,
            wide: None,
            fixed: None,
            ..compile().unwrap()
        };
        let base = TimeBase {
            export_ns: 1_700_000_000_000_000_000,
            sys_uptime_ms: Some(1_000_000),
            sys_init_ms: None,
        };
        for seed in 0..64usize {
            let mut data: Vec<u8> = (0..len)
                .map(|i| ((i + 1) * (seed * 7 + 13) + seed) as u8)
                .collect();
            if seed % 3 == 0 {
                data[..4].fill(0);
            }
            if seed % 5 == 0 {
                let zero = len.min(40);
                data[..zero].fill(0);
            }
            let read = |t: &Template| {
                let mut rec =
                    FlowRecord::new("192.0.2.1:2055".parse().unwrap(), FlowProtocol::Ipfix, 1);
                let mut s = Scratch::default();
                let used = read_record(t, &data, &mut rec, &mut s, false).unwrap();
                let scratch = (s.present, s.vals);
                finish(&mut rec, &s, &base, SflowBytes::Frame);
                (used, rec, scratch)
            };
            let want = read(&fixed);
            assert_eq!(read(t), want, "{fields:?} seed {seed}");
            assert_eq!(read(&generic), want, "{fields:?} seed {seed}");
        }
        let mut rec = FlowRecord::new("192.0.2.1:2055".parse().unwrap(), FlowProtocol::Ipfix, 1);
        let short = vec![1u8; len - 1];
        let r = read_record(t, &short, &mut rec, &mut Scratch::default(), false);
        assert_eq!(r, Err(RecordTruncated));
    }

    #[test]
    fn the_core_layout_reads_what_the_fixed_plan_reads() {
        let v4 = [spec(0, 8, 4), spec(0, 12, 4)];
        let v6 = [spec(0, 27, 16), spec(0, 28, 16)];
        // Ports, protocol, ToS, direction, interfaces, AS, icmpTypeCodeIPv4, applicationId.
        let rest = [
            spec(0, 7, 2),
            spec(0, 11, 2),
            spec(0, 4, 1),
            spec(0, 5, 1),
            spec(0, 61, 1),
            spec(0, 10, 2),
            spec(0, 14, 4),
            spec(0, 16, 4),
            spec(0, 17, 2),
            spec(0, 32, 2),
            spec(0, 95, 4),
        ];
        // Octets in 8 and packets in 4 bytes, sampler id, samplingInterval in 3 bytes.
        let vals = [spec(0, 1, 8), spec(0, 2, 4), spec(0, 48, 1), spec(0, 34, 3)];
        let templates: Vec<Vec<FieldSpec>> = vec![
            [&v4[..], &rest, &vals].concat(),
            [&v6[..], &vals, &rest[..3]].concat(),
            // Both address forms, in either order (the unspecified one must not win).
            [&v4[..], &v6, &rest[..3], &vals[..2]].concat(),
            [&v6[..], &v4, &rest[..3], &vals[..2]].concat(),
            [&vals[..2], &v4[..1]].concat(),
        ];
        for fields in &templates {
            let core = Template::compile(false, fields.clone(), &[], RecordFields::ALL).unwrap();
            assert!(core.core.is_some(), "{fields:?} has a core layout");
            reads_what_the_plan_reads(fields, &core);
        }
        // A field the layout does not cover, or a field twice, keeps the step-by-step plan.
        let tcp_flags = [&v4[..], &[spec(0, 6, 1)]].concat();
        let t = Template::compile(false, tcp_flags.clone(), &[], RecordFields::ALL).unwrap();
        assert!(t.fixed.is_some() && t.core.is_none());
        let t = Template::compile(false, tcp_flags, &[], RecordFields::CORE).unwrap();
        assert!(t.core.is_some());
        let mut twice = v4.to_vec();
        twice.extend([spec(0, 1, 4), spec(0, 85, 4), spec(0, 23, 4), spec(0, 2, 4)]);
        twice.extend([spec(0, 86, 4), spec(0, 24, 4), spec(0, 48, 1)]);
        let t = Template::compile(false, twice, &[], RecordFields::ALL).unwrap();
        assert!(
            t.fixed.is_some() && t.core.is_none(),
            "more scratch values than the layout holds"
        );
    }

    #[test]
    fn the_wide_layout_reads_what_the_fixed_plan_reads() {
        let v4 = [spec(0, 8, 4), spec(0, 12, 4)];
        let v6 = [spec(0, 27, 16), spec(0, 28, 16)];
        // Ports, protocol, ToS, direction, interfaces, AS; octets, packets, v9's uptime times.
        let core = [
            spec(0, 7, 2),
            spec(0, 11, 2),
            spec(0, 4, 1),
            spec(0, 5, 1),
            spec(0, 61, 1),
            spec(0, 10, 2),
            spec(0, 14, 4),
            spec(0, 16, 4),
            spec(0, 17, 2),
            spec(0, 1, 8),
            spec(0, 2, 4),
            spec(0, 22, 4),
            spec(0, 21, 4),
        ];
        // TCP flags, prefix lengths, next hop, BGP next hop, VLANs, TTL, forwarding status,
        // MACs.
        let wide = [
            spec(0, 6, 1),
            spec(0, 9, 1),
            spec(0, 13, 1),
            spec(0, 15, 4),
            spec(0, 18, 4),
            spec(0, 58, 2),
            spec(0, 59, 2),
            spec(0, 192, 1),
            spec(0, 89, 1),
            spec(0, 56, 6),
            spec(0, 80, 6),
        ];
        let next_hops_v6 = [spec(0, 62, 16), spec(0, 63, 16)];
        // flowStartMilliseconds / flowEndMilliseconds, flowStartSeconds / flowEndSeconds.
        let millis = [spec(0, 152, 8), spec(0, 153, 8)];
        let secs = [spec(0, 150, 4), spec(0, 151, 4)];
        let templates: Vec<Vec<FieldSpec>> = vec![
            // The decode bench's router template.
            [&v4[..], &core, &wide[..4]].concat(),
            [&v4[..], &core, &wide, &millis].concat(),
            [&v6[..], &wide, &core[..5], &secs, &next_hops_v6].concat(),
            // Both next hop forms, in either order (the unspecified one must not win).
            [&v4[..], &wide[3..5], &next_hops_v6, &core[9..11]].concat(),
            [&next_hops_v6[..], &v4, &wide[3..5], &core[9..11]].concat(),
            [&millis[..1], &secs[1..], &wide[..1]].concat(),
        ];
        for fields in &templates {
            let wide = Template::compile(false, fields.clone(), &[], RecordFields::ALL).unwrap();
            assert!(
                wide.core.is_none() && wide.wide.is_some(),
                "{fields:?} has a wide layout"
            );
            reads_what_the_plan_reads(fields, &wide);
        }
        // A core layout is preferred; a field neither covers, a field twice, or two start
        // times keep the step-by-step plan.
        let t = Template::compile(false, [&v4[..], &core].concat(), &[], RecordFields::ALL);
        assert!(t.is_some_and(|t| t.core.is_some() && t.wide.is_none()));
        for fields in [
            [&v4[..], &wide, &[spec(0, 60, 1), spec(0, 31, 4)]].concat(),
            [&v4[..], &wide[..1], &wide[..1]].concat(),
            [&v4[..], &millis[..1], &secs[..1]].concat(),
        ] {
            let t = Template::compile(false, fields.clone(), &[], RecordFields::ALL).unwrap();
            assert!(t.fixed.is_some() && t.wide.is_none(), "{fields:?}");
        }
    }

    #[test]
    fn post_vlan_id_alone_is_the_vlan_also_for_counters_only_records() {
        // Addresses, octets and postVlanId only: the record finishes on the short path (no
        // values beyond the counters), which must still fall back to postVlanId.
        let fields = [spec(0, 8, 4), spec(0, 12, 4), spec(0, 1, 4), spec(0, 59, 2)];
        let t = Template::compile(false, fields.to_vec(), &[], RecordFields::ALL).unwrap();
        let data = [10, 0, 0, 1, 10, 0, 0, 2, 0, 0, 1, 0, 0x10, 0x2a];
        let rec = read_finished(&t, &data);
        assert_eq!(
            (rec.vlan, rec.dst_vlan, rec.bytes),
            (Some(42), Some(42), 256)
        );
    }

    #[test]
    fn templates_the_fixed_plan_cannot_read_use_the_general_reader() {
        let compile = |fields: &[FieldSpec]| {
            Template::compile(false, fields.to_vec(), &[], RecordFields::ALL)
                .expect("template")
                .fixed
                .is_some()
        };
        assert!(compile(&[spec(0, 8, 4), spec(0, 1, 4)]));
        // Variable length (RFC 7011 §7), an RFC 5103 reverse element, a counter longer than
        // 8 bytes, a port longer than its type (range-checked).
        assert!(!compile(&[spec(0, 8, 4), spec(0, 82, VARLEN)]));
        assert!(!compile(&[spec(0, 1, 4), spec(ie::REVERSE_PEN, 1, 4)]));
        assert!(!compile(&[spec(0, 8, 4), spec(0, 1, 16)]));
        assert!(!compile(&[spec(0, 8, 4), spec(0, 7, 4)]));
    }
}
