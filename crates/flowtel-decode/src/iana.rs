//! Names and types of information elements, for showing what an exporter sends
//! (`flowtel decode`).
//!
//! IANA elements come from the "IPFIX Information Elements" registry, generated into
//! `iana_table.rs` by `scripts/gen-iana-ies.py` (re-run it with a newer registry to update).
//! NetFlow v9 field types 1-127 are the same numbers (RFC 3954 §8, RFC 7012 §4). RFC 5103
//! reverse elements (PEN 29305) are named `reverse` + the forward name; Cisco's NetFlow v9
//! NSEL types above 32767 by Cisco's names.

#[path = "iana_table.rs"]
mod table;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ie::REVERSE_PEN;

/// An element's abstract data type (RFC 7012 §3.1), as far as showing its value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    OctetArray,
    Unsigned,
    Signed,
    Float,
    Boolean,
    MacAddress,
    String,
    DateTimeSeconds,
    DateTimeMilliseconds,
    /// dateTimeMicroseconds / dateTimeNanoseconds: NTP timestamps (RFC 7011 §6.1.9-10).
    DateTimeNtp,
    Ipv4Address,
    Ipv6Address,
    /// basicList, subTemplateList, subTemplateMultiList (RFC 6313).
    List,
}

/// A named element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element {
    pub name: &'static str,
    pub data_type: DataType,
}

/// Cisco NetFlow v9 field types outside the IANA range (Cisco "ASA NetFlow Implementation
/// Guide", NSEL).
const CISCO_V9: [(u16, &str, DataType); 9] = [
    (33000, "NF_F_INGRESS_ACL_ID", DataType::OctetArray),
    (33001, "NF_F_EGRESS_ACL_ID", DataType::OctetArray),
    (33002, "NF_F_FW_EXT_EVENT", DataType::Unsigned),
    (40000, "NF_F_USERNAME", DataType::String),
    (40001, "NF_F_XLATE_SRC_ADDR_IPV4", DataType::Ipv4Address),
    (40002, "NF_F_XLATE_DST_ADDR_IPV4", DataType::Ipv4Address),
    (40003, "NF_F_XLATE_SRC_PORT", DataType::Unsigned),
    (40004, "NF_F_XLATE_DST_PORT", DataType::Unsigned),
    (40005, "NF_F_FW_EVENT", DataType::Unsigned),
];

/// The IANA element `id` (or NetFlow v9 field type).
pub fn element(id: u16) -> Option<Element> {
    let table: &[(u16, &str, DataType)] = if id > 32767 {
        &CISCO_V9
    } else {
        &table::ELEMENTS
    };
    let i = table.binary_search_by_key(&id, |e| e.0).ok()?;
    let &(_, name, data_type) = table.get(i)?;
    Some(Element { name, data_type })
}

/// The element's name: IANA's, `reverse` + IANA's for RFC 5103 (PEN 29305), else `None`
/// (an enterprise element flowtel has no name for).
pub fn name(enterprise: u32, id: u16) -> Option<String> {
    match enterprise {
        0 => element(id).map(|e| e.name.to_owned()),
        REVERSE_PEN => element(id).map(|e| {
            let mut chars = e.name.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            format!("reverse{}{}", first.unwrap_or_default(), chars.as_str())
        }),
        _ => None,
    }
}

/// The data type of `(enterprise, id)` when known (reverse elements have their forward one's).
pub fn data_type(enterprise: u32, id: u16) -> Option<DataType> {
    match enterprise {
        0 | REVERSE_PEN => element(id).map(|e| e.data_type),
        _ => None,
    }
}

/// `value` as its data type reads: integers in decimal, addresses, MACs, text in quotes;
/// hex for octet arrays, lists, unknown types and values whose length does not fit the type.
pub fn render(data_type: Option<DataType>, value: &[u8]) -> String {
    let uint = || {
        (1..=8)
            .contains(&value.len())
            .then(|| value.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    };
    let rendered = match data_type {
        Some(DataType::Unsigned | DataType::DateTimeSeconds | DataType::DateTimeMilliseconds) => {
            uint().map(|n| n.to_string())
        }
        Some(DataType::Signed) => uint().map(|n| {
            let bits = 64 - 8 * value.len() as u32;
            (((n << bits) as i64) >> bits).to_string()
        }),
        Some(DataType::Boolean) => match value {
            [1] => Some("true".to_owned()),
            [2] => Some("false".to_owned()),
            _ => None,
        },
        Some(DataType::Ipv4Address) => <[u8; 4]>::try_from(value)
            .ok()
            .map(|a| Ipv4Addr::from(a).to_string()),
        Some(DataType::Ipv6Address) => <[u8; 16]>::try_from(value)
            .ok()
            .map(|a| Ipv6Addr::from(a).to_string()),
        Some(DataType::MacAddress) => <[u8; 6]>::try_from(value)
            .ok()
            .map(|m| crate::CustomValue::Mac(m).to_string()),
        Some(DataType::String) => Some(format!("{:?}", &*crate::template::text(value))),
        _ => None,
    };
    rendered.unwrap_or_else(|| {
        let mut hex = String::with_capacity(2 + value.len() * 2);
        hex.push_str("0x");
        for b in value {
            let _ = write!(hex, "{b:02x}");
        }
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_names_known_elements() {
        assert!(table::ELEMENTS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(element(4).map(|e| e.name), Some("protocolIdentifier"));
        assert_eq!(element(315).map(|e| e.name), Some("dataLinkFrameSection"));
        assert_eq!(element(33002).map(|e| e.name), Some("NF_F_FW_EXT_EVENT"));
        assert_eq!(element(32000), None);
        assert_eq!(
            name(REVERSE_PEN, 6).as_deref(),
            Some("reverseTcpControlBits")
        );
        assert_eq!(name(2636, 137), None);
    }

    #[test]
    fn values_render_by_type() {
        let t = |id| data_type(0, id);
        assert_eq!(render(t(4), &[6]), "6");
        assert_eq!(render(t(8), &[10, 0, 0, 1]), "10.0.0.1");
        assert_eq!(
            render(t(56), &[0, 0x1b, 0x21, 1, 2, 3]),
            "00:1b:21:01:02:03"
        );
        assert_eq!(render(t(82), b"ge-0/0/1\0\0"), "\"ge-0/0/1\"");
        assert_eq!(render(t(8), &[10, 0, 0]), "0x0a0000");
        assert_eq!(render(None, &[0xab, 0xcd]), "0xabcd");
        assert_eq!(render(Some(DataType::Signed), &[0xff, 0xfe]), "-2");
    }
}
