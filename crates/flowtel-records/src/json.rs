//! goflow2-style JSON: one object per flow, as goflow2 v2 prints a `FlowMessage` with its
//! default formatter (`-format=json`, no mapping file), followed by flowtel's own fields.
//!
//! goflow2's renderings (`producer/proto/render.go`): every field is present, in the
//! `.proto`'s declaration order, zero values included; `type` is the enum name (`"IPFIX"`);
//! addresses are strings (`""` when empty); MACs are `"aa:bb:cc:dd:ee:ff"`; `etype` is
//! `"IPv4"`, `"IPv6"`, `"ARP"` or `""`; `proto` is the IANA keyword (`"TCP"`, `"IPv6-ICMP"`);
//! `src_net` / `dst_net` are the CIDR of the address masked to the prefix length
//! (`"10.1.2.0/24"`, `"invalid Prefix"` without an address); times are integer nanoseconds;
//! repeated fields are arrays. flowtel's fields follow under their `.proto` names:
//! `sampling_source` (`config`, `record`, `options`, `header`, `sample`) and `direction`
//! (`ingress`, `egress`, `""`) in lower case, `src_private` / `dst_private` as booleans.
//!
//! The writer appends to a caller's `String` with no intermediate value: reuse one buffer per
//! batch and nothing is allocated per record once it has grown.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use crate::message::addr_from_bytes;
use crate::names::{goflow2_etype_name, goflow2_proto_name};
use crate::proto::FlowMessage;
use crate::proto::flow_message::{FlowType, LayerStack};
use crate::{direction_name, sampling_source_name};

/// `,"name":`, written before every value but the first.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

/// Append `message` as one compact JSON object (no newline).
pub fn write_json(message: &FlowMessage, out: &mut String) {
    let m = message;
    let mut o = Object::open(out);
    // goflow2's fields, in its declaration order.
    o.str("{\"type\":", flow_type_name(m.r#type));
    o.uint(key!("time_received_ns"), m.time_received_ns);
    o.uint(key!("sequence_num"), m.sequence_num);
    o.uint(key!("sampling_rate"), m.sampling_rate);
    o.ip(key!("sampler_address"), &m.sampler_address);
    o.uint(key!("time_flow_start_ns"), m.time_flow_start_ns);
    o.uint(key!("time_flow_end_ns"), m.time_flow_end_ns);
    o.uint(key!("bytes"), m.bytes);
    o.uint(key!("packets"), m.packets);
    o.ip(key!("src_addr"), &m.src_addr);
    o.ip(key!("dst_addr"), &m.dst_addr);
    o.str(key!("etype"), goflow2_etype_name(m.etype));
    o.str(key!("proto"), goflow2_proto_name(m.proto));
    o.uint(key!("src_port"), m.src_port);
    o.uint(key!("dst_port"), m.dst_port);
    o.uint(key!("in_if"), m.in_if);
    o.uint(key!("out_if"), m.out_if);
    o.mac(key!("src_mac"), m.src_mac);
    o.mac(key!("dst_mac"), m.dst_mac);
    o.uint(key!("src_vlan"), m.src_vlan);
    o.uint(key!("dst_vlan"), m.dst_vlan);
    o.uint(key!("vlan_id"), m.vlan_id);
    o.uint(key!("ip_tos"), m.ip_tos);
    o.uint(key!("forwarding_status"), m.forwarding_status);
    o.uint(key!("ip_ttl"), m.ip_ttl);
    o.uint(key!("ip_flags"), m.ip_flags);
    o.uint(key!("tcp_flags"), m.tcp_flags);
    o.uint(key!("icmp_type"), m.icmp_type);
    o.uint(key!("icmp_code"), m.icmp_code);
    o.uint(key!("ipv6_flow_label"), m.ipv6_flow_label);
    o.uint(key!("fragment_id"), m.fragment_id);
    o.uint(key!("fragment_offset"), m.fragment_offset);
    o.uint(key!("src_as"), m.src_as);
    o.uint(key!("dst_as"), m.dst_as);
    o.ip(key!("next_hop"), &m.next_hop);
    o.uint(key!("next_hop_as"), m.next_hop_as);
    o.network(key!("src_net"), &m.src_addr, m.src_net);
    o.network(key!("dst_net"), &m.dst_addr, m.dst_net);
    o.ip(key!("bgp_next_hop"), &m.bgp_next_hop);
    o.uints(key!("bgp_communities"), &m.bgp_communities);
    o.uints(key!("as_path"), &m.as_path);
    o.uints(key!("mpls_ttl"), &m.mpls_ttl);
    o.uints(key!("mpls_label"), &m.mpls_label);
    o.ips(key!("mpls_ip"), &m.mpls_ip);
    o.uint(key!("observation_domain_id"), m.observation_domain_id);
    o.uint(key!("observation_point_id"), m.observation_point_id);
    o.layers(key!("layer_stack"), &m.layer_stack);
    o.uints(key!("layer_size"), &m.layer_size);
    o.ips(
        key!("ipv6_routing_header_addresses"),
        &m.ipv6_routing_header_addresses,
    );
    o.uint(
        key!("ipv6_routing_header_seg_left"),
        m.ipv6_routing_header_seg_left,
    );
    // flowtel's fields, in the .proto's order.
    o.text(key!("device_name"), &m.device_name);
    o.ip(key!("exporter_address"), &m.exporter_address);
    o.uint(key!("exporter_port"), m.exporter_port);
    o.str(
        key!("sampling_source"),
        sampling_source_name(m.sampling_source),
    );
    o.str(key!("direction"), direction_name(m.direction));
    o.text(key!("in_if_name"), &m.in_if_name);
    o.text(key!("out_if_name"), &m.out_if_name);
    o.text(key!("application"), &m.application);
    o.text(key!("src_country"), &m.src_country);
    o.text(key!("dst_country"), &m.dst_country);
    o.bool(key!("src_private"), m.src_private);
    o.bool(key!("dst_private"), m.dst_private);
    o.uint(key!("src_as_resolved"), m.src_as_resolved);
    o.uint(key!("dst_as_resolved"), m.dst_as_resolved);
    o.text(key!("src_net_name"), &m.src_net_name);
    o.text(key!("dst_net_name"), &m.dst_net_name);
    o.text(key!("src_net_role"), &m.src_net_role);
    o.text(key!("dst_net_role"), &m.dst_net_role);
    o.text(key!("src_net_site"), &m.src_net_site);
    o.text(key!("dst_net_site"), &m.dst_net_site);
    o.text(key!("src_net_region"), &m.src_net_region);
    o.text(key!("dst_net_region"), &m.dst_net_region);
    o.text(key!("src_net_tenant"), &m.src_net_tenant);
    o.text(key!("dst_net_tenant"), &m.dst_net_tenant);
    o.close();
}

/// Append `message` as one JSON line (the object and `\n`), goflow2's file output.
pub fn write_json_line(message: &FlowMessage, out: &mut String) {
    write_json(message, out);
    out.push('\n');
}

/// goflow2's rendering of `type`: the enum value's name.
fn flow_type_name(value: i32) -> &'static str {
    FlowType::try_from(value).map_or("FLOWUNKNOWN", |t| t.as_str_name())
}

/// Writes `{"key":value,...}` into a String. Each `key` argument is the JSON text before the
/// value: `{"type":` for the first, [`key!`] for the others.
struct Object<'a> {
    out: &'a mut String,
    int: itoa::Buffer,
}

/// Room made before each object: a goflow2 line takes about 1.3 KB.
const OBJECT_RESERVE: usize = 2048;

impl<'a> Object<'a> {
    fn open(out: &'a mut String) -> Self {
        out.reserve(OBJECT_RESERVE);
        Object {
            out,
            int: itoa::Buffer::new(),
        }
    }

    fn close(self) {
        self.out.push('}');
    }

    #[inline]
    fn key(&mut self, key: &str) {
        self.out.push_str(key);
    }

    fn uint(&mut self, key: &str, value: impl itoa::Integer) {
        self.key(key);
        self.out.push_str(self.int.format(value));
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    /// A string known to need no escaping (names from flowtel's own tables).
    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.out.push('"');
        self.out.push_str(value);
        self.out.push('"');
    }

    /// Any string, escaped (RFC 8259 §7).
    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        escape(self.out, value);
    }

    fn ip(&mut self, key: &str, bytes: &[u8]) {
        self.key(key);
        self.out.push('"');
        if let Some(addr) = addr_from_bytes(bytes) {
            write_ip(self.out, addr);
        }
        self.out.push('"');
    }

    fn ips(&mut self, key: &str, list: &[Vec<u8>]) {
        self.key(key);
        self.out.push('[');
        for (i, bytes) in list.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push('"');
            if let Some(addr) = addr_from_bytes(bytes) {
                write_ip(self.out, addr);
            }
            self.out.push('"');
        }
        self.out.push(']');
    }

    fn uints(&mut self, key: &str, list: &[u32]) {
        self.key(key);
        self.out.push('[');
        for (i, v) in list.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(self.int.format(*v));
        }
        self.out.push(']');
    }

    fn layers(&mut self, key: &str, list: &[i32]) {
        self.key(key);
        self.out.push('[');
        for (i, v) in list.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push('"');
            match LayerStack::try_from(*v) {
                Ok(layer) => self.out.push_str(layer.as_str_name()),
                Err(_) => self.out.push_str(self.int.format(*v)),
            }
            self.out.push('"');
        }
        self.out.push(']');
    }

    /// `"aa:bb:cc:dd:ee:ff"` from the low 48 bits.
    fn mac(&mut self, key: &str, mac: u64) {
        self.key(key);
        self.out.push('"');
        write_mac(self.out, mac);
        self.out.push('"');
    }

    /// goflow2's `src_net` / `dst_net`: the address masked to `bits`, as a CIDR; Go's
    /// `netip.Prefix` zero value (`"invalid Prefix"`) without an address or beyond its width.
    fn network(&mut self, key: &str, addr: &[u8], bits: u32) {
        self.key(key);
        self.out.push('"');
        match addr_from_bytes(addr).and_then(|a| masked(a, bits)) {
            Some(net) => {
                write_ip(self.out, net);
                self.out.push('/');
                self.out.push_str(self.int.format(bits));
            }
            None => self.out.push_str("invalid Prefix"),
        }
        self.out.push('"');
    }
}

/// `addr` with all but its first `bits` bits cleared; `None` when `bits` exceeds its width.
fn masked(addr: IpAddr, bits: u32) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(a) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)))
        }
        IpAddr::V6(a) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some(IpAddr::V6((u128::from(a) & mask).into()))
        }
        _ => None,
    }
}

/// Decimal text of every octet value, and its length: the digits of a dotted quad.
pub(crate) const OCTETS: [([u8; 3], u8); 256] = {
    let mut table = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, t, u) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        table[i] = if i >= 100 {
            ([b'0' + h, b'0' + t, b'0' + u], 3)
        } else if i >= 10 {
            ([b'0' + t, b'0' + u, 0], 2)
        } else {
            ([b'0' + u, 0, 0], 1)
        };
        i += 1;
    }
    table
};

/// The length of `a` as a dotted quad.
pub(crate) fn ipv4_text_len(a: Ipv4Addr) -> usize {
    3 + a
        .octets()
        .iter()
        .map(|b| usize::from(OCTETS[usize::from(*b)].1))
        .sum::<usize>()
}

/// `a` as a dotted quad, appended to `out`.
pub(crate) fn push_ipv4(out: &mut Vec<u8>, a: Ipv4Addr) {
    for (i, b) in a.octets().iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        let (digits, len) = &OCTETS[usize::from(*b)];
        out.extend_from_slice(&digits[..usize::from(*len)]);
    }
}

/// An address as text: dotted quad, or RFC 5952 for IPv6 (Rust's `Display`, as Go's netip).
pub(crate) fn write_ip(out: &mut String, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            for (i, b) in a.octets().iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                let (digits, len) = &OCTETS[usize::from(*b)];
                // The table holds ASCII digits only.
                out.push_str(std::str::from_utf8(&digits[..usize::from(*len)]).unwrap_or("?"));
            }
        }
        // Writing to a String cannot fail.
        IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
}

/// Lower-case, colon-separated: `00:1b:21:aa:bb:ff` (Go's `net.HardwareAddr` form).
pub(crate) fn write_mac(out: &mut String, mac: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = mac.to_be_bytes();
    for (i, b) in bytes[2..].iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// A JSON string literal of `value` (RFC 8259 §7: quote, backslash and control characters
/// escaped; everything else as UTF-8).
fn escape(out: &mut String, value: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in value.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if u32::from(c) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push_str(escaped);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&value[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_masked_like_go_netip() {
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(masked(v4, 24), Some("10.1.2.0".parse().unwrap()));
        assert_eq!(masked(v4, 0), Some("0.0.0.0".parse().unwrap()));
        assert_eq!(masked(v4, 32), Some(v4));
        assert_eq!(masked(v4, 33), None);
        let v6: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        assert_eq!(masked(v6, 48), Some("2001:db8:1::".parse().unwrap()));
        assert_eq!(masked(v6, 0), Some("::".parse().unwrap()));
        assert_eq!(masked(v6, 129), None);
    }

    #[test]
    fn dotted_quads_from_the_octet_table() {
        for addr in ["0.0.0.0", "10.1.22.255", "192.168.100.7", "255.255.255.255"] {
            let a: Ipv4Addr = addr.parse().unwrap();
            let mut out = Vec::new();
            push_ipv4(&mut out, a);
            assert_eq!(out, addr.as_bytes());
            assert_eq!(ipv4_text_len(a), addr.len());
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        escape(&mut s, "edge \"1\"\\\u{1}\nrouté");
        assert_eq!(s, r#""edge \"1\"\\\u0001\nrouté""#);
    }

    #[test]
    fn macs_are_lower_case_with_colons() {
        let mut s = String::new();
        write_mac(&mut s, 0x001b_21aa_bbff);
        assert_eq!(s, "00:1b:21:aa:bb:ff");
        s.clear();
        write_mac(&mut s, 0);
        assert_eq!(s, "00:00:00:00:00:00");
    }
}
