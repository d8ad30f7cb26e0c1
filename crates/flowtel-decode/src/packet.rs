//! Sampled packets -> [`FlowRecord`] fields: the sFlow raw packet header (sFlow v5 flow
//! record 1, `sampled_header`) and the IPFIX packet sections (RFC 7133 IE 315
//! `dataLinkFrameSection`, RFC 5477 IE 313 `ipHeaderPacketSection` and IE 314
//! `ipPayloadPacketSection`), read by one parser.
//!
//! Walks Ethernet -> 802.1Q / QinQ tags -> MPLS label stack (with Ethernet pseudowires, RFC
//! 4448, with or without control word) -> IPv4 / IPv6 (with options and extension headers,
//! the SRv6 routing header included) -> TCP / UDP / SCTP / ICMP / ICMPv6 and writes what it
//! finds into a [`FlowRecord`]. Agents cut headers (128 bytes by default), so every layer stops
//! cleanly where the bytes end: fields of layers that were not reached stay unset. Nothing
//! here can panic: all reads go through `get`.
//!
//! Tunnels (GRE, IP-in-IP, SRv6 carrying IP) are reported by their outer header, as the
//! exporter forwarded them: `ip_protocol` is 47, 4 or 41. With QinQ, `vlan` is the outer
//! (service) tag, the one on the wire where the packet was sampled, and `inner_vlan` the
//! customer tag. Over a pseudowire, MACs, VLAN and MPLS labels are the outer frame's; the
//! addresses, ports and protocol are the carried frame's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::link::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, Inner, Limits, be16, be32};
use crate::{FlowRecord, MplsLabels};

/// sFlow v5 `header_protocol` values we parse (sFlow v5 §"Sampled header").
pub(crate) const PROTO_ETHERNET: u32 = 1;
pub(crate) const PROTO_IPV4: u32 = 11;
pub(crate) const PROTO_IPV6: u32 = 12;

/// Bounds on exporter-controlled repetition inside one header (each step also consumes bytes,
/// so these only make the worst case explicit).
const LIMITS: Limits = Limits {
    vlan_tags: 4,
    mpls_labels: 16,
};
const MAX_IPV6_EXTENSIONS: usize = 8;
const MAX_PSEUDOWIRE_DEPTH: usize = 2;

/// What a parse learnt besides the record's fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The IP packet's length from its header (IPv4 total length, IPv6 payload length + 40):
    /// the packet's layer-3 size even when the header was cut.
    pub ip_len: Option<u32>,
}

/// Parse a sampled header of sFlow `protocol`; unknown protocols leave the record untouched.
pub(crate) fn parse(protocol: u32, data: &[u8], rec: &mut FlowRecord) -> Parsed {
    let mut p = Parsed::default();
    match protocol {
        PROTO_ETHERNET => parse_ethernet(data, rec, 0, &mut p),
        PROTO_IPV4 => parse_ipv4(data, rec, &mut p),
        PROTO_IPV6 => parse_ipv6(data, rec, &mut p),
        _ => {}
    }
    p
}

/// An IP packet whose version is its first nibble (IPFIX IE 313 `ipHeaderPacketSection`).
pub(crate) fn parse_ip(data: &[u8], rec: &mut FlowRecord) -> Parsed {
    let mut p = Parsed::default();
    match data.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(data, rec, &mut p),
        Some(6) => parse_ipv6(data, rec, &mut p),
        _ => {}
    }
    p
}

/// An Ethernet frame (IPFIX IE 315 `dataLinkFrameSection`, sFlow header protocol 1).
pub(crate) fn parse_frame(data: &[u8], rec: &mut FlowRecord) -> Parsed {
    let mut p = Parsed::default();
    parse_ethernet(data, rec, 0, &mut p);
    p
}

/// Ethernet II (IEEE 802.3) with any number (bounded) of 802.1Q / 802.1ad tags.
fn parse_ethernet(data: &[u8], rec: &mut FlowRecord, depth: usize, p: &mut Parsed) {
    let (Some(dst), Some(src)) = (data.get(0..6), data.get(6..12)) else {
        return;
    };
    if depth == 0 {
        rec.dst_mac = dst.try_into().ok();
        rec.src_mac = src.try_into().ok();
    }
    let Some(ethertype) = be16(data, 12) else {
        return;
    };
    // The outer frame's labels go to the record; a carried frame's are not kept.
    let mut inner_labels = MplsLabels::EMPTY;
    let labels = if depth == 0 {
        &mut rec.mpls_labels
    } else {
        &mut inner_labels
    };
    let walk = link::walk(
        ethertype,
        data.get(14..).unwrap_or_default(),
        LIMITS,
        labels,
    );
    if depth == 0 {
        // Set even when the walk stops early: the tags were read.
        if walk.vlan.is_some() {
            rec.vlan = walk.vlan;
        }
        if walk.inner_vlan.is_some() {
            rec.inner_vlan = walk.inner_vlan;
        }
        if walk.mpls_top_label.is_some() {
            rec.mpls_top_label = walk.mpls_top_label;
        }
    }
    match walk.inner {
        Inner::Ipv4(rest) => parse_ipv4(rest, rec, p),
        Inner::Ipv6(rest) => parse_ipv6(rest, rec, p),
        // An Ethernet pseudowire (RFC 4448): the carried frame.
        Inner::Ethernet(frame) if depth < MAX_PSEUDOWIRE_DEPTH => {
            parse_ethernet(frame, rec, depth + 1, p)
        }
        Inner::Ethernet(_) | Inner::Truncated => {}
        Inner::Other => {
            if depth == 0 {
                rec.etype = Some(walk.ethertype);
            }
        }
    }
}

/// IPv4 (RFC 791 §3.1): options are skipped by IHL; non-first fragments carry no transport
/// header, so ports stay 0 for them.
#[inline]
pub(crate) fn parse_ipv4(data: &[u8], rec: &mut FlowRecord, p: &mut Parsed) {
    let Some(&vihl) = data.first() else { return };
    if vihl >> 4 != 4 {
        return;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let (Some(&tos), Some(len), Some(id), Some(frag), Some(&ttl), Some(&proto)) = (
        data.get(1),
        be16(data, 2),
        be16(data, 4),
        be16(data, 6),
        data.get(8),
        data.get(9),
    ) else {
        return;
    };
    let (Some(src), Some(dst)) = (data.get(12..16), data.get(16..20)) else {
        return;
    };
    if ihl < 20 {
        return;
    }
    rec.etype = Some(ETHERTYPE_IPV4);
    rec.tos = tos;
    rec.ip_protocol = proto;
    rec.ip_ttl = Some(ttl);
    rec.fragment_id = Some(u32::from(id));
    rec.ip_flags = Some((frag >> 13) as u8);
    rec.fragment_offset = Some(frag & 0x1fff);
    p.ip_len = Some(u32::from(len));
    rec.src_addr = <[u8; 4]>::try_from(src)
        .ok()
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)));
    rec.dst_addr = <[u8; 4]>::try_from(dst)
        .ok()
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)));
    if frag & 0x1fff != 0 {
        return;
    }
    parse_transport(proto, data.get(ihl..).unwrap_or_default(), rec);
}

/// IPv6 (RFC 8200 §3, §4): extension headers, the routing header (SRv6's segment routing
/// header, RFC 8754, among them) included, are walked to the upper-layer header; a fragment
/// header with a non-zero offset (§4.5) ends the walk without ports.
#[inline]
pub(crate) fn parse_ipv6(data: &[u8], rec: &mut FlowRecord, p: &mut Parsed) {
    let (Some(word), Some(payload_len), Some(&next), Some(&hops)) =
        (be32(data, 0), be16(data, 4), data.get(6), data.get(7))
    else {
        return;
    };
    let (Some(src), Some(dst)) = (data.get(8..24), data.get(24..40)) else {
        return;
    };
    if word >> 28 != 6 {
        return;
    }
    rec.etype = Some(ETHERTYPE_IPV6);
    // Traffic class: the 8 bits after the version.
    rec.tos = (word >> 20) as u8;
    rec.ipv6_flow_label = Some(word & 0x000f_ffff);
    rec.ip_ttl = Some(hops);
    p.ip_len = Some(u32::from(payload_len) + 40);
    rec.src_addr = <[u8; 16]>::try_from(src)
        .ok()
        .map(|a| IpAddr::V6(Ipv6Addr::from(a)));
    rec.dst_addr = <[u8; 16]>::try_from(dst)
        .ok()
        .map(|a| IpAddr::V6(Ipv6Addr::from(a)));
    let mut proto = next;
    let mut at = 40;
    for _ in 0..MAX_IPV6_EXTENSIONS {
        let len = match proto {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6 (RFC 8200 §4.3-4.6,
            // RFC 6275, RFC 7401, RFC 5533): length in 8-octet units, not counting the first 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let Some(&l) = data.get(at + 1) else {
                    rec.ip_protocol = proto;
                    return;
                };
                (usize::from(l) + 1) * 8
            }
            // Fragment (RFC 8200 §4.5): fixed 8 octets; offset (13 bits) and M flag, then
            // the 32-bit identification.
            44 => {
                let (Some(&nh), Some(off)) = (data.get(at), be16(data, at + 2)) else {
                    rec.ip_protocol = proto;
                    return;
                };
                rec.fragment_offset = Some(off >> 3);
                rec.ip_flags = Some((off & 7) as u8);
                rec.fragment_id = be32(data, at + 4);
                if off >> 3 != 0 {
                    rec.ip_protocol = nh;
                    return;
                }
                8
            }
            // Authentication header (RFC 4302 §2.2): length in 4-octet units minus 2.
            51 => {
                let Some(&l) = data.get(at + 1) else {
                    rec.ip_protocol = proto;
                    return;
                };
                (usize::from(l) + 2) * 4
            }
            _ => break,
        };
        let Some(&nh) = data.get(at) else {
            rec.ip_protocol = proto;
            return;
        };
        proto = nh;
        at += len;
    }
    rec.ip_protocol = proto;
    parse_transport(proto, data.get(at..).unwrap_or_default(), rec);
}

/// Transport header: ports for TCP, UDP, UDP-Lite, SCTP, DCCP; flags for TCP (RFC 9293 §3.1);
/// type and code for ICMP (RFC 792) and ICMPv6 (RFC 4443 §2.1). Also IPFIX IE 314
/// `ipPayloadPacketSection`, whose protocol comes from the record.
#[inline]
pub(crate) fn parse_transport(proto: u8, data: &[u8], rec: &mut FlowRecord) {
    match proto {
        6 | 17 | 33 | 132 | 136 => {
            let (Some(sp), Some(dp)) = (be16(data, 0), be16(data, 2)) else {
                return;
            };
            rec.src_port = sp;
            rec.dst_port = dp;
            if proto == 6
                && let Some(&flags) = data.get(13)
            {
                rec.tcp_flags = u16::from(flags);
            }
        }
        1 | 58 => {
            let (Some(&t), Some(&c)) = (data.first(), data.get(1)) else {
                return;
            };
            rec.icmp_type = Some(t);
            rec.icmp_code = Some(c);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;

    use super::*;
    use crate::FlowProtocol;

    fn record() -> FlowRecord {
        let exporter: SocketAddr = "192.0.2.1:6343".parse().expect("address");
        FlowRecord::new(exporter, FlowProtocol::SflowV5, 0)
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    const ETH: &str = "0000 5e00 5301 0000 5e00 5302";

    #[test]
    fn qinq_keeps_the_outer_vlan_and_reaches_udp() {
        let frame = hex(&format!(
            "{ETH} 88a8 0064 8100 00c8 0800 \
             4500 0030 0000 0000 4011 0000 c000 0201 c000 0202 \
             0035 d431 001c 0000"
        ));
        let mut r = record();
        parse_frame(&frame, &mut r);
        assert_eq!(r.vlan, Some(100));
        assert_eq!(r.ip_protocol, 17);
        assert_eq!((r.src_port, r.dst_port), (53, 54321));
        assert_eq!(r.src_addr, Some("192.0.2.1".parse().expect("ip")));
    }

    #[test]
    fn ipv4_options_are_skipped_and_later_fragments_have_no_ports() {
        // IHL 6 (one 4-byte option), TCP with SYN+ACK.
        let first = hex(
            "4600 0030 0000 0000 4006 0000 0a00 0001 0a00 0002 0101 0101 \
             0050 1f90 0000 0000 0000 0000 5012 0000",
        );
        let mut r = record();
        parse_ip(&first, &mut r);
        assert_eq!((r.src_port, r.dst_port, r.tcp_flags), (80, 8080, 0x12));

        let later = hex("4500 0030 0000 00b9 4006 0000 0a00 0001 0a00 0002 0050 1f90");
        let mut r = record();
        parse_ip(&later, &mut r);
        assert_eq!(r.ip_protocol, 6);
        assert_eq!((r.src_port, r.dst_port), (0, 0));
        assert!(r.src_addr.is_some());
    }

    #[test]
    fn ipv6_extension_headers_lead_to_icmpv6() {
        // Hop-by-hop (8 bytes) then destination options (16 bytes) then ICMPv6 echo request.
        let pkt = hex(&format!(
            "6012 3456 0020 0040 {src} {dst} \
             3c00 0000 0000 0000 \
             3a01 0000 0000 0000 0000 0000 0000 0000 \
             8000 0000",
            src = "2001 0db8 0000 0000 0000 0000 0000 0001",
            dst = "2001 0db8 0000 0000 0000 0000 0000 0002",
        ));
        let mut r = record();
        parse_ip(&pkt, &mut r);
        assert_eq!(r.tos, 0x01);
        assert_eq!(r.ip_protocol, 58);
        assert_eq!((r.icmp_type, r.icmp_code), (Some(128), Some(0)));
    }

    #[test]
    fn ipv6_non_first_fragment_has_no_ports() {
        let pkt = hex(&format!(
            "6000 0000 0010 2c40 {a} {a} 1100 0010 0000 0001 0035 0035",
            a = "2001 0db8 0000 0000 0000 0000 0000 0001",
        ));
        let mut r = record();
        parse_ip(&pkt, &mut r);
        assert_eq!(r.ip_protocol, 17);
        assert_eq!((r.src_port, r.dst_port), (0, 0));
    }

    #[test]
    fn mpls_stack_keeps_the_top_label() {
        let frame = hex(&format!(
            "{ETH} 8847 0006 4040 0000 51ff \
             4500 0020 0000 0000 4001 0000 0a00 0001 0a00 0002 0800 0000"
        ));
        let mut r = record();
        parse_frame(&frame, &mut r);
        assert_eq!(r.mpls_top_label, Some(100));
        assert_eq!((r.icmp_type, r.icmp_code), (Some(8), Some(0)));
    }

    #[test]
    fn every_truncation_stops_cleanly() {
        let frame = hex(&format!(
            "{ETH} 8100 0064 0800 4500 0030 0000 0000 4006 0000 0a00 0001 0a00 0002 \
             0050 1f90 0000 0000 0000 0000 5012 0000"
        ));
        let mut full = record();
        parse_frame(&frame, &mut full);
        assert_eq!(full.tcp_flags, 0x12);
        for n in 0..frame.len() {
            let mut r = record();
            parse_frame(frame.get(..n).unwrap_or_default(), &mut r);
            if n < 14 + 4 + 20 {
                assert_eq!(r.src_addr, None, "cut at {n}");
            }
            if n < 14 + 4 + 20 + 4 {
                assert_eq!(r.dst_port, 0, "cut at {n}");
            }
        }
    }

    /// Raw Ethernet frames from Akvorado's test data (not sFlow): the parser must read each
    /// frame's outer headers and never panic on any prefix of it.
    #[test]
    fn akvorado_frames_parse() {
        let dir = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/akvorado/frames"
        ));
        if !dir.is_dir() {
            eprintln!("skipping: {} is absent", dir.display());
            return;
        }
        let frame = |name: &str| -> Vec<u8> {
            let bytes = std::fs::read(dir.join(name)).expect("read pcap");
            let (_, pcap) = pcap_parser::parse_pcap(&bytes).expect("pcap");
            pcap.blocks.first().expect("one frame").data.to_vec()
        };
        let parsed = |name: &str| {
            let data = frame(name);
            for n in 0..data.len() {
                parse_frame(data.get(..n).unwrap_or_default(), &mut record());
            }
            let mut r = record();
            parse_frame(&data, &mut r);
            r
        };

        // Expected values read from `tshark -r FILE -T fields -e vlan.id -e mpls.label ...`.
        let r = parsed("vlan-ipv6.pcap");
        assert_eq!(r.vlan, Some(100));
        assert_eq!(
            r.src_addr,
            Some("2402:f000:1:8e01::5555".parse().expect("ip"))
        );

        for (name, label, src) in [
            ("mpls-ipv4.pcap", 18, "10.31.0.1"),
            ("mpls-explicit-null-ipv4.pcap", 0, "10.31.0.1"),
            ("mpls-ipv6.pcap", 100, "2001:db8::1"),
            ("mpls-explicit-null-ipv6.pcap", 2, "2001:db8::1"),
        ] {
            let r = parsed(name);
            assert_eq!(r.mpls_top_label, Some(label), "{name}");
            assert_eq!(r.src_addr, Some(src.parse().expect("ip")), "{name}");
            assert_eq!(r.ip_protocol, 6, "{name}");
            assert_ne!(r.dst_port, 0, "{name}");
        }
        // Ethernet over MPLS with a control word (RFC 4385): the inner frame's IPv4/TCP is
        // reached (tshark's heuristic misses the control word and shows no IP here; the bytes
        // after the zero control word are a MAC header, ethertype 0x0800, 10.31.0.1 -> 10.34.0.1).
        let r = parsed("mpls-eompls-cw.pcap");
        assert_eq!(r.mpls_top_label, Some(300012));
        assert_eq!(r.src_addr, Some("10.31.0.1".parse().expect("ip")));
        assert_eq!((r.ip_protocol, r.dst_port), (6, 23));
        // An invalid first nibble after the stack: stop, keep the label, no addresses.
        let r = parsed("mpls-invalid-nibble.pcap");
        assert_eq!(r.mpls_top_label, Some(100));
        assert_eq!(r.src_addr, None);

        // Tunnels are reported by their outer header.
        let r = parsed("gre-v4-plain.pcap");
        assert_eq!(
            (r.ip_protocol, r.src_addr),
            (47, Some("172.27.1.66".parse().expect("ip")))
        );
        assert_eq!(parsed("ipv4-ipv4.pcap").ip_protocol, 4);
        assert_eq!(parsed("ipv4-ipv6.pcap").ip_protocol, 41);
        // SRv6: the routing header is walked to the encapsulated IPv6 (next header 41).
        assert_eq!(parsed("srv6-end-dt6.pcap").ip_protocol, 41);

        let all = std::fs::read_dir(dir).expect("frames dir");
        for entry in all {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".pcap") {
                let r = parsed(name);
                assert!(r.src_mac.is_some(), "{name}");
            }
        }
    }
}
