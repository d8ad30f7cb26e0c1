//! Link-layer framing shared by the sFlow sampled header parser (`sflow::header`) and the
//! capture reader (`flowtel-pcap`): big-endian readers, ethertypes and the walk over
//! IEEE 802.1Q / 802.1ad tags and an MPLS label stack (RFC 3032 §2.1) to what they carry.
//!
//! The walk reports what it met (outer and inner VLAN ids, the MPLS label stack) and where it
//! stopped; each caller decides what to do with that (the capture reader needs the IP packet,
//! the sampled packet parser (`packet`) also keeps the tags and follows pseudowires). Reads never panic: every step
//! consumes at least four bytes and stops cleanly where the bytes end.

use crate::record::MplsLabels;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IEEE 802.1Q customer VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// IEEE 802.1ad service tag (QinQ).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ service tag.
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// MPLS unicast (RFC 3032 §5).
pub const ETHERTYPE_MPLS: u16 = 0x8847;
/// MPLS multicast (RFC 5332 §4).
pub const ETHERTYPE_MPLS_MCAST: u16 = 0x8848;

/// Big-endian u16 at `at`, if the bytes are there.
pub fn be16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(bytes.try_into().ok()?))
}

/// Big-endian u32 at `at`, if the bytes are there.
pub fn be32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Bounds on exporter-controlled repetition in one walk.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub vlan_tags: usize,
    pub mpls_labels: usize,
}

impl Limits {
    /// Only the frame's length bounds the walk (each tag or label consumes 4 bytes).
    pub const NONE: Limits = Limits {
        vlan_tags: usize::MAX,
        mpls_labels: usize::MAX,
    };
}

/// ARP (RFC 826): not walked further, but a sign of an Ethernet header.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// Where a [`walk`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An IPv4 header should start here (ethertype 0x0800, or first nibble 4 after MPLS).
    Ipv4(&'a [u8]),
    /// An IPv6 header should start here (ethertype 0x86dd, or first nibble 6 after MPLS).
    Ipv6(&'a [u8]),
    /// An Ethernet frame carried over an MPLS pseudowire (RFC 4448) starts here, its control
    /// word (RFC 4385 §3), when there was one, already skipped. See [`walk`] for how the
    /// control word is told apart.
    Ethernet(&'a [u8]),
    /// Another ethertype, another nibble after MPLS, or more tags/labels than the limits.
    Other,
    /// The bytes end inside a tag, a label, or right after the label stack.
    Truncated,
}

/// What a [`walk`] met and where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk<'a> {
    /// The outermost VLAN id (the TCI's low 12 bits): the one on the wire where it was seen
    /// (with QinQ, the service tag).
    pub vlan: Option<u16>,
    /// The second VLAN tag's id (with QinQ, the customer tag, IEEE 802.1ad C-TAG).
    pub inner_vlan: Option<u16>,
    /// The label of the top MPLS stack entry (the whole stack goes to `walk`'s `labels`).
    pub mpls_top_label: Option<u32>,
    /// The ethertype of what follows the VLAN tags (0x8847 for MPLS, 0x0800 IPv4, ...); after
    /// an MPLS stack, the IPv4/IPv6 ethertype its payload's first nibble names.
    pub ethertype: u16,
    pub inner: Inner<'a>,
}

/// Whether `ethertype` is one an Ethernet header carries to something flowtel reads, used to
/// tell an Ethernet header from other bytes after an MPLS stack.
const fn known_ethertype(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ETHERTYPE_IPV4
            | ETHERTYPE_IPV6
            | ETHERTYPE_VLAN
            | ETHERTYPE_QINQ
            | ETHERTYPE_QINQ_OLD
            | ETHERTYPE_MPLS
            | ETHERTYPE_MPLS_MCAST
            | ETHERTYPE_ARP
    )
}

/// What follows the bottom of an MPLS label stack (RFC 4928 §2, RFC 4385 §3, RFC 4448 §4.4).
///
/// The first nibble tells IPv4 (4) and IPv6 (6). 0 is a pseudowire control word, then an
/// Ethernet frame; but an Ethernet pseudowire may also be set up without a control word, and
/// then the first nibble is the destination MAC's (often 0: `00:..`, `02:..`). The ethertype
/// decides: the frame is taken with a control word when a known ethertype sits 12 bytes after
/// it, without one when a known ethertype sits at 12 bytes from the start, and with one (the
/// RFC 4385 reading) when neither does. Any other nibble is an Ethernet frame without control
/// word when a known ethertype sits at 12, else something flowtel does not read (1 is a
/// pseudowire associated channel, RFC 4385 §5).
fn after_label_stack(rest: &[u8]) -> (u16, Inner<'_>) {
    let Some(&first) = rest.first() else {
        return (ETHERTYPE_MPLS, Inner::Truncated);
    };
    let at = |offset: usize| be16(rest, offset).is_some_and(known_ethertype);
    match first >> 4 {
        4 => (ETHERTYPE_IPV4, Inner::Ipv4(rest)),
        6 => (ETHERTYPE_IPV6, Inner::Ipv6(rest)),
        0 if !at(16) && at(12) => (ETHERTYPE_MPLS, Inner::Ethernet(rest)),
        0 => match rest.get(4..) {
            Some(frame) => (ETHERTYPE_MPLS, Inner::Ethernet(frame)),
            None => (ETHERTYPE_MPLS, Inner::Truncated),
        },
        1 => (ETHERTYPE_MPLS, Inner::Other),
        _ if at(12) => (ETHERTYPE_MPLS, Inner::Ethernet(rest)),
        _ => (ETHERTYPE_MPLS, Inner::Other),
    }
}

/// Walk from `ethertype`, whose payload is `rest`, over VLAN tags (TCI then the inner
/// ethertype, IEEE 802.1Q §9.6) and MPLS label stack entries (RFC 3032 §2.1: label 20 bits,
/// TC 3, bottom of stack 1, TTL 8) to the network-layer payload or a pseudowire's Ethernet
/// frame (see `after_label_stack` for what follows the bottom of the stack: IPv4, IPv6, or an
/// Ethernet pseudowire with or without control word).
///
/// The MPLS labels met are appended to `labels` (top first, up to its capacity).
pub fn walk<'a>(
    mut ethertype: u16,
    mut rest: &'a [u8],
    limits: Limits,
    labels: &mut MplsLabels,
) -> Walk<'a> {
    let mut walk = Walk {
        vlan: None,
        inner_vlan: None,
        mpls_top_label: None,
        ethertype,
        inner: Inner::Other,
    };
    let mut tags = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) && tags < limits.vlan_tags
    {
        let Some(tci) = be16(rest, 0) else {
            walk.inner = Inner::Truncated;
            return walk;
        };
        match tags {
            0 => walk.vlan = Some(tci & 0x0fff),
            1 => walk.inner_vlan = Some(tci & 0x0fff),
            _ => {}
        }
        let (Some(next), Some(after)) = (be16(rest, 2), rest.get(4..)) else {
            walk.inner = Inner::Truncated;
            return walk;
        };
        ethertype = next;
        rest = after;
        tags += 1;
    }
    walk.ethertype = ethertype;
    walk.inner = match ethertype {
        ETHERTYPE_IPV4 => Inner::Ipv4(rest),
        ETHERTYPE_IPV6 => Inner::Ipv6(rest),
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MCAST => {
            let mut inner = Inner::Other;
            for i in 0..limits.mpls_labels {
                let (Some(entry), Some(after)) = (be32(rest, 0), rest.get(4..)) else {
                    inner = Inner::Truncated;
                    break;
                };
                if i == 0 {
                    walk.mpls_top_label = Some(entry >> 12);
                }
                labels.push(entry >> 12);
                rest = after;
                if entry & 0x100 != 0 {
                    let (payload_type, after_stack) = after_label_stack(rest);
                    walk.ethertype = payload_type;
                    inner = after_stack;
                    break;
                }
            }
            inner
        }
        _ => Inner::Other,
    };
    walk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_stop_at_the_end_and_never_overflow() {
        let data = [0x12, 0x34, 0x56, 0x78];
        assert_eq!(be16(&data, 2), Some(0x5678));
        assert_eq!(be16(&data, 3), None);
        assert_eq!(be32(&data, 0), Some(0x1234_5678));
        assert_eq!(be32(&data, 1), None);
        assert_eq!(be16(&data, usize::MAX), None);
        assert_eq!(be32(&data, usize::MAX - 1), None);
    }

    #[test]
    fn tags_and_labels_are_walked_within_the_limits() {
        // 802.1ad 100, 802.1Q 200, MPLS 100 (not bottom), MPLS 5 (bottom), IPv4.
        let rest = [
            0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x88, 0x47, 0x00, 0x06, 0x40, 0x40, 0x00, 0x00,
            0x51, 0xff, 0x45,
        ];
        let mut labels = MplsLabels::EMPTY;
        let w = walk(ETHERTYPE_QINQ, &rest, Limits::NONE, &mut labels);
        assert_eq!((w.vlan, w.inner_vlan), (Some(100), Some(200)));
        assert_eq!(labels.as_slice(), [100, 5]);
        assert_eq!(w.ethertype, ETHERTYPE_IPV4);
        assert_eq!(w.mpls_top_label, Some(100));
        assert_eq!(w.inner, Inner::Ipv4(&[0x45]));

        let one_tag = Limits {
            vlan_tags: 1,
            mpls_labels: 16,
        };
        assert_eq!(
            walk(ETHERTYPE_QINQ, &rest, one_tag, &mut MplsLabels::default()).inner,
            Inner::Other
        );
        let one_label = Limits {
            vlan_tags: 4,
            mpls_labels: 1,
        };
        let w = walk(ETHERTYPE_QINQ, &rest, one_label, &mut MplsLabels::default());
        assert_eq!((w.mpls_top_label, w.inner), (Some(100), Inner::Other));

        for n in 0..rest.len() {
            let w = walk(
                ETHERTYPE_QINQ,
                rest.get(..n).unwrap_or_default(),
                Limits::NONE,
                &mut MplsLabels::default(),
            );
            assert_eq!(w.inner, Inner::Truncated, "cut at {n}");
        }
    }

    #[test]
    fn ethernet_pseudowires_with_and_without_control_word() {
        // Label 17 (bottom of stack), then: a zero control word and a frame (ethertype at
        // 4 + 12); a frame whose destination MAC starts with nibble 0 and no control word
        // (ethertype at 12); a frame whose MAC starts with 0xa (not a control word).
        let frame = [0x02, 0, 0, 0, 0, 5, 0x02, 0, 0, 0, 0, 6, 0x08, 0x00, 0x45];
        let label = [0x00, 0x01, 0x11, 0xff];
        let with_cw: Vec<u8> = [&label[..], &[0, 0, 0, 0], &frame].concat();
        let mut labels = MplsLabels::EMPTY;
        let w = walk(ETHERTYPE_MPLS, &with_cw, Limits::NONE, &mut labels);
        assert_eq!(w.inner, Inner::Ethernet(&frame));
        assert_eq!(labels.as_slice(), [17]);
        fn inner(bytes: &[u8]) -> Inner<'_> {
            walk(
                ETHERTYPE_MPLS,
                bytes,
                Limits::NONE,
                &mut MplsLabels::default(),
            )
            .inner
        }
        let without: Vec<u8> = [&label[..], &frame].concat();
        assert_eq!(inner(&without), Inner::Ethernet(&frame));
        let mut other = frame;
        other[0] = 0xa2;
        let without: Vec<u8> = [&label[..], &other].concat();
        assert_eq!(inner(&without), Inner::Ethernet(&other));
        // Neither reading finds an ethertype: the RFC 4385 control word reading.
        let junk = [&label[..], &[0u8; 20]].concat();
        assert_eq!(
            walk(
                ETHERTYPE_MPLS,
                &junk,
                Limits::NONE,
                &mut MplsLabels::default()
            )
            .inner,
            Inner::Ethernet(&[0u8; 16])
        );
    }
}
