//! Link-layer framing shared by the sFlow sampled header parser (`sflow::header`) and the
//! capture reader (`flowtel-pcap`): big-endian readers, ethertypes and the walk over
//! IEEE 802.1Q / 802.1ad tags and an MPLS label stack (RFC 3032 §2.1) to what they carry.
//!
//! The walk reports what it met (outer VLAN id, top MPLS label) and where it stopped; each
//! caller decides what to do with that (the capture reader needs the IP packet, the sampled
//! header parser also keeps the tags and follows pseudowires). Reads never panic: every step
//! consumes at least four bytes and stops cleanly where the bytes end.

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

/// Where a [`walk`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An IPv4 header should start here (ethertype 0x0800, or first nibble 4 after MPLS).
    Ipv4(&'a [u8]),
    /// An IPv6 header should start here (ethertype 0x86dd, or first nibble 6 after MPLS).
    Ipv6(&'a [u8]),
    /// After the MPLS bottom of stack the first nibble is 0: a pseudowire control word
    /// (RFC 4385 §3) starts here, followed by an Ethernet frame.
    ControlWord(&'a [u8]),
    /// Another ethertype, another nibble after MPLS, or more tags/labels than the limits.
    Other,
    /// The bytes end inside a tag, a label, or right after the label stack.
    Truncated,
}

/// What a [`walk`] met and where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk<'a> {
    /// The outermost VLAN id (the TCI's low 12 bits): the one on the wire where it was seen.
    pub vlan: Option<u16>,
    /// The label of the top MPLS stack entry.
    pub mpls_top_label: Option<u32>,
    pub inner: Inner<'a>,
}

/// Walk from `ethertype`, whose payload is `rest`, over VLAN tags (TCI then the inner
/// ethertype, IEEE 802.1Q §9.6) and MPLS label stack entries (RFC 3032 §2.1: label 20 bits,
/// TC 3, bottom of stack 1, TTL 8) to the network-layer payload. After the bottom of stack,
/// the payload's first nibble tells IPv4 from IPv6 (RFC 4928 §2).
pub fn walk(mut ethertype: u16, mut rest: &[u8], limits: Limits) -> Walk<'_> {
    let mut walk = Walk {
        vlan: None,
        mpls_top_label: None,
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
        if tags == 0 {
            walk.vlan = Some(tci & 0x0fff);
        }
        let (Some(next), Some(after)) = (be16(rest, 2), rest.get(4..)) else {
            walk.inner = Inner::Truncated;
            return walk;
        };
        ethertype = next;
        rest = after;
        tags += 1;
    }
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
                rest = after;
                if entry & 0x100 != 0 {
                    inner = match rest.first().map(|b| b >> 4) {
                        Some(4) => Inner::Ipv4(rest),
                        Some(6) => Inner::Ipv6(rest),
                        Some(0) => Inner::ControlWord(rest),
                        Some(_) => Inner::Other,
                        None => Inner::Truncated,
                    };
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
        let w = walk(ETHERTYPE_QINQ, &rest, Limits::NONE);
        assert_eq!(w.vlan, Some(100));
        assert_eq!(w.mpls_top_label, Some(100));
        assert_eq!(w.inner, Inner::Ipv4(&[0x45]));

        let one_tag = Limits {
            vlan_tags: 1,
            mpls_labels: 16,
        };
        assert_eq!(walk(ETHERTYPE_QINQ, &rest, one_tag).inner, Inner::Other);
        let one_label = Limits {
            vlan_tags: 4,
            mpls_labels: 1,
        };
        let w = walk(ETHERTYPE_QINQ, &rest, one_label);
        assert_eq!((w.mpls_top_label, w.inner), (Some(100), Inner::Other));

        for n in 0..rest.len() {
            let w = walk(
                ETHERTYPE_QINQ,
                rest.get(..n).unwrap_or_default(),
                Limits::NONE,
            );
            assert_eq!(w.inner, Inner::Truncated, "cut at {n}");
        }
    }
}
