//! Sampled packet header parser (sFlow v5 flow record 1, `sampled_header`).
//!
//! Walks Ethernet -> 802.1Q / QinQ tags -> MPLS label stack -> IPv4 / IPv6 (with options and
//! extension headers) -> TCP / UDP / SCTP / ICMP / ICMPv6 and writes what it finds into a
//! [`FlowRecord`]. Agents cut headers (128 bytes by default), so every layer stops cleanly
//! where the bytes end: fields of layers that were not reached stay unset. Nothing here can
//! panic: all reads go through `get`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::FlowRecord;
use crate::link::{self, Inner, Limits, be16};

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

/// Parse a sampled header of `protocol`; unknown protocols leave the record untouched.
pub(crate) fn parse(protocol: u32, data: &[u8], rec: &mut FlowRecord) {
    match protocol {
        PROTO_ETHERNET => parse_ethernet(data, rec, 0),
        PROTO_IPV4 => parse_ipv4(data, rec),
        PROTO_IPV6 => parse_ipv6(data, rec),
        _ => {}
    }
}

/// Ethernet II (IEEE 802.3) with any number (bounded) of 802.1Q / 802.1ad tags. The outer
/// VLAN id is kept: it is the one on the wire where the agent sampled.
pub(crate) fn parse_ethernet(data: &[u8], rec: &mut FlowRecord, depth: usize) {
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
    let walk = link::walk(ethertype, data.get(14..).unwrap_or_default(), LIMITS);
    if depth == 0 {
        // Set even when the walk stops early: the tags were read.
        if walk.vlan.is_some() {
            rec.vlan = walk.vlan;
        }
        if walk.mpls_top_label.is_some() {
            rec.mpls_top_label = walk.mpls_top_label;
        }
    }
    match walk.inner {
        Inner::Ipv4(rest) => parse_ipv4(rest, rec),
        Inner::Ipv6(rest) => parse_ipv6(rest, rec),
        // MPLS pseudowire (RFC 4385 §3): a zero control word, then the inner Ethernet frame.
        Inner::ControlWord(rest) if depth < MAX_PSEUDOWIRE_DEPTH => {
            parse_ethernet(rest.get(4..).unwrap_or_default(), rec, depth + 1)
        }
        Inner::ControlWord(_) | Inner::Other | Inner::Truncated => {}
    }
}

/// IPv4 (RFC 791 §3.1): options are skipped by IHL; non-first fragments carry no transport
/// header, so ports stay 0 for them.
pub(crate) fn parse_ipv4(data: &[u8], rec: &mut FlowRecord) {
    let Some(&vihl) = data.first() else { return };
    if vihl >> 4 != 4 {
        return;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let (Some(&tos), Some(frag), Some(&proto), Some(src), Some(dst)) = (
        data.get(1),
        be16(data, 6),
        data.get(9),
        data.get(12..16),
        data.get(16..20),
    ) else {
        return;
    };
    if ihl < 20 {
        return;
    }
    rec.tos = tos;
    rec.ip_protocol = proto;
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

/// IPv6 (RFC 8200 §3, §4): extension headers are walked to the upper-layer header; a fragment
/// header with a non-zero offset (§4.5) ends the walk without ports.
pub(crate) fn parse_ipv6(data: &[u8], rec: &mut FlowRecord) {
    let (Some(&b0), Some(&b1), Some(&next), Some(src), Some(dst)) = (
        data.first(),
        data.get(1),
        data.get(6),
        data.get(8..24),
        data.get(24..40),
    ) else {
        return;
    };
    if b0 >> 4 != 6 {
        return;
    }
    rec.tos = (b0 << 4) | (b1 >> 4);
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
            // Fragment (RFC 8200 §4.5): fixed 8 octets.
            44 => {
                let (Some(&nh), Some(off)) = (data.get(at), be16(data, at + 2)) else {
                    rec.ip_protocol = proto;
                    return;
                };
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
/// type and code for ICMP (RFC 792) and ICMPv6 (RFC 4443 §2.1).
fn parse_transport(proto: u8, data: &[u8], rec: &mut FlowRecord) {
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
        parse_ethernet(&frame, &mut r, 0);
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
        parse_ipv4(&first, &mut r);
        assert_eq!((r.src_port, r.dst_port, r.tcp_flags), (80, 8080, 0x12));

        let later = hex("4500 0030 0000 00b9 4006 0000 0a00 0001 0a00 0002 0050 1f90");
        let mut r = record();
        parse_ipv4(&later, &mut r);
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
        parse_ipv6(&pkt, &mut r);
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
        parse_ipv6(&pkt, &mut r);
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
        parse_ethernet(&frame, &mut r, 0);
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
        parse_ethernet(&frame, &mut full, 0);
        assert_eq!(full.tcp_flags, 0x12);
        for n in 0..frame.len() {
            let mut r = record();
            parse_ethernet(frame.get(..n).unwrap_or_default(), &mut r, 0);
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
                parse_ethernet(data.get(..n).unwrap_or_default(), &mut record(), 0);
            }
            let mut r = record();
            parse_ethernet(&data, &mut r, 0);
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
