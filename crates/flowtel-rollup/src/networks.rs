//! Network attributes: the operator's own description of address space, from a networks file
//! (as pmacct's `networks_file` and Akvorado's network attributes): prefix → name, role, site,
//! region, tenant and AS number. Source and destination addresses are matched to the longest
//! prefix that contains them.
//!
//! Two file formats, chosen by the file name: `.csv` is CSV, anything else YAML.
//!
//! ```yaml
//! # prefix: attributes (every attribute optional), or prefix: name
//! 10.0.0.0/8: { name: corp, role: internal, tenant: acme }
//! 10.1.0.0/16:
//!   name: par1-servers
//!   site: par1
//!   region: eu-west
//!   asn: 64500
//! 2001:db8::/32: lab
//! ```
//!
//! ```text
//! # a header row names the columns (any order; prefix required, the others optional)
//! prefix,name,role,site,region,tenant,asn
//! 10.0.0.0/8,corp,internal,,,acme,
//! 10.1.0.0/16,par1-servers,,par1,eu-west,,64500
//! ```
//!
//! A prefix must have no bits set beyond its length (`10.0.0.1/8` is refused, naming
//! `10.0.0.0/8`); a bare address is a host prefix; each prefix appears once. Errors name the
//! file and line.
//!
//! Lookup (decision): the nested prefixes are flattened at load time into disjoint address
//! ranges, each carrying its most specific network, one sorted array of range starts per
//! address family; a lookup is one binary search over that array (`partition_point`), with no
//! allocation and no pointer chasing beyond it. Longest-prefix-match tries (`prefix-trie`,
//! `ip_network_table`) were not needed: the table is rebuilt whole on every reload anyway, and
//! a flat array of `u32` starts is the most cache-friendly form for the read-only, per-record
//! lookup on the receive path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// One network of the file: its prefix and attributes (empty string: not given).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Network {
    pub prefix: IpNet,
    pub name: String,
    pub role: String,
    pub site: String,
    pub region: String,
    pub tenant: String,
    /// The AS of the network: used for an address whose record carries no AS (before the
    /// ASN database).
    pub asn: Option<u32>,
}

/// A networks file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NetworksError {
    #[error("cannot read networks file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("networks file {path}, line {line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Range starts of one address family and the network each range belongs to.
#[derive(Debug, Clone, Default)]
struct Ranges<T> {
    starts: Vec<T>,
    /// Index into [`Networks::entries`], or [`NO_NETWORK`].
    values: Vec<u32>,
    /// `buckets[b]`: how many starts lie below the first address whose top 16 bits are `b`
    /// (65 537 entries; none for an empty family), so a lookup searches only the starts of
    /// its own /16 instead of the whole array.
    buckets: Vec<u32>,
}

const NO_NETWORK: u32 = u32::MAX;

/// An address as a number, and its top 16 bits.
trait Key: Copy + Ord {
    fn bucket(self) -> usize;
}

impl Key for u32 {
    fn bucket(self) -> usize {
        (self >> 16) as usize
    }
}

impl Key for u128 {
    fn bucket(self) -> usize {
        (self >> 112) as usize
    }
}

impl<T: Key> Ranges<T> {
    fn new(starts: Vec<T>, values: Vec<u32>) -> Self {
        if starts.is_empty() {
            return Ranges {
                starts,
                values,
                buckets: Vec::new(),
            };
        }
        let mut buckets = vec![0u32; (1 << 16) + 1];
        for s in &starts {
            if let Some(n) = buckets.get_mut(s.bucket() + 1) {
                *n += 1;
            }
        }
        for b in 1..buckets.len() {
            let below = buckets.get(b - 1).copied().unwrap_or(0);
            if let Some(n) = buckets.get_mut(b) {
                *n += below;
            }
        }
        Ranges {
            starts,
            values,
            buckets,
        }
    }

    #[inline]
    fn lookup(&self, addr: T) -> Option<u32> {
        let b = addr.bucket();
        // Starts of lower buckets are all below `addr`, those of higher ones all above.
        let (lo, hi) = match (self.buckets.get(b), self.buckets.get(b + 1)) {
            (Some(lo), Some(hi)) => (*lo as usize, *hi as usize),
            _ => (0, self.starts.len()),
        };
        let i = lo + self.starts.get(lo..hi)?.partition_point(|s| *s <= addr);
        let v = *self.values.get(i.checked_sub(1)?)?;
        (v != NO_NETWORK).then_some(v)
    }
}

/// A longest-prefix-match table of networks (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Networks {
    entries: Vec<Arc<Network>>,
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

impl Networks {
    /// A table of `networks`. Each prefix must appear once: a duplicate is reported with the
    /// 1-based positions of both, as `(line, message)`.
    pub fn new(networks: Vec<Network>) -> Result<Self, (usize, String)> {
        let lines = (1..=networks.len()).collect::<Vec<_>>();
        Self::with_lines(networks, &lines)
    }

    /// `networks` with the line each was read from, for error messages.
    fn with_lines(networks: Vec<Network>, lines: &[usize]) -> Result<Self, (usize, String)> {
        let mut seen: HashMap<IpNet, usize> = HashMap::with_capacity(networks.len());
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, (n, line)) in networks.iter().zip(lines).enumerate() {
            if let Some(first) = seen.insert(n.prefix, *line) {
                return Err((
                    *line,
                    format!("prefix {} already defined on line {first}", n.prefix),
                ));
            }
            let index = u32::try_from(i).map_err(|_| (*line, "too many networks".to_owned()))?;
            match n.prefix {
                IpNet::V4(p) => v4.push((
                    u128::from(u32::from(p.network())),
                    u128::from(u32::from(p.broadcast())),
                    index,
                )),
                IpNet::V6(p) => {
                    v6.push((u128::from(p.network()), u128::from(p.broadcast()), index))
                }
            }
        }
        let (starts, values) = flatten(v4, u128::from(u32::MAX));
        let v4 = Ranges::new(
            // Every start of an IPv4 range fits 32 bits.
            starts
                .into_iter()
                .map(|s| u32::try_from(s).unwrap_or(u32::MAX))
                .collect(),
            values,
        );
        let (starts, values) = flatten(v6, u128::MAX);
        Ok(Networks {
            entries: networks.into_iter().map(Arc::new).collect(),
            v4,
            v6: Ranges::new(starts, values),
        })
    }

    /// The most specific network containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<&Arc<Network>> {
        let i = match addr {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }?;
        self.entries.get(i as usize)
    }

    /// Number of networks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Read a networks file: CSV when the name ends in `.csv`, else YAML.
    pub fn load(path: &Path) -> Result<Self, NetworksError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetworksError::Read {
            path: path.to_owned(),
            source,
        })?;
        let csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let parsed = if csv {
            Self::from_csv(&text)
        } else {
            Self::from_yaml(&text)
        };
        parsed.map_err(|(line, message)| NetworksError::Invalid {
            path: path.to_owned(),
            line,
            message,
        })
    }

    /// Parse the YAML form: a mapping of prefix to attributes (or to a name).
    pub fn from_yaml(text: &str) -> Result<Self, (usize, String)> {
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Self::with_lines(Vec::new(), &[]);
        }
        let file: YamlFile = serde_yaml::from_str(text).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line());
            (line, yaml_message(&e))
        })?;
        let lines = yaml_key_lines(text, file.0.iter().map(|(k, _)| k.as_str()));
        let mut networks = Vec::with_capacity(file.0.len());
        for ((key, value), line) in file.0.into_iter().zip(&lines) {
            networks.push(yaml_network(&key, value).map_err(|m| (*line, m))?);
        }
        Self::with_lines(networks, &lines)
    }

    /// Parse the CSV form (RFC 4180 fields, one record per line): a header row naming the
    /// columns, then one network per row; blank lines and lines starting with `#` are skipped.
    pub fn from_csv(text: &str) -> Result<Self, (usize, String)> {
        let mut rows = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let Some((header_line, header)) = rows.next() else {
            return Self::with_lines(Vec::new(), &[]);
        };
        let columns = csv_fields(header).map_err(|m| (header_line, m))?;
        let mut kinds = Vec::with_capacity(columns.len());
        for c in &columns {
            let kind = Column::from_name(c.trim()).ok_or_else(|| {
                (
                    header_line,
                    format!(
                        "unknown column {:?} in the header (expected prefix, name, role, site, region, tenant, asn)",
                        c.trim()
                    ),
                )
            })?;
            if kinds.contains(&kind) {
                return Err((header_line, format!("column {:?} listed twice", c.trim())));
            }
            kinds.push(kind);
        }
        if !kinds.contains(&Column::Prefix) {
            return Err((header_line, "the header has no prefix column".to_owned()));
        }
        let mut networks = Vec::new();
        let mut lines = Vec::new();
        for (line, row) in rows {
            let fields = csv_fields(row).map_err(|m| (line, m))?;
            if fields.len() != kinds.len() {
                return Err((
                    line,
                    format!(
                        "{} fields where the header has {} columns",
                        fields.len(),
                        kinds.len()
                    ),
                ));
            }
            let mut n = Network::default();
            for (kind, value) in kinds.iter().zip(fields) {
                let value = value.trim();
                match kind {
                    Column::Prefix => n.prefix = parse_prefix(value).map_err(|m| (line, m))?,
                    Column::Name => n.name = value.to_owned(),
                    Column::Role => n.role = value.to_owned(),
                    Column::Site => n.site = value.to_owned(),
                    Column::Region => n.region = value.to_owned(),
                    Column::Tenant => n.tenant = value.to_owned(),
                    Column::Asn if value.is_empty() => {}
                    Column::Asn => n.asn = Some(parse_asn(value).map_err(|m| (line, m))?),
                }
            }
            networks.push(n);
            lines.push(line);
        }
        Self::with_lines(networks, &lines)
    }
}

/// Flatten nested `(first, last, value)` ranges into sorted range starts, each with the value
/// of the most specific range covering it ([`NO_NETWORK`] where none does). CIDR prefixes are
/// nested or disjoint, so one stack of the enclosing prefixes is enough.
fn flatten(mut ranges: Vec<(u128, u128, u32)>, max: u128) -> (Vec<u128>, Vec<u32>) {
    // Same start: the wider prefix (the encloser) first.
    ranges.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut starts: Vec<u128> = Vec::with_capacity(ranges.len() * 2);
    let mut values: Vec<u32> = Vec::with_capacity(ranges.len() * 2);
    let mut push = |at: u128, value: u32| match (starts.last(), values.last_mut()) {
        (Some(last), Some(v)) if *last == at => *v = value,
        _ => {
            starts.push(at);
            values.push(value);
        }
    };
    let mut open: Vec<(u128, u32)> = Vec::new();
    for (first, last, value) in ranges {
        while let Some(&(end, _)) = open.last() {
            if end >= first {
                break;
            }
            open.pop();
            // end < first <= max: no overflow.
            push(end + 1, open.last().map_or(NO_NETWORK, |o| o.1));
        }
        push(first, value);
        open.push((last, value));
    }
    while let Some((end, _)) = open.pop() {
        if end < max {
            push(end + 1, open.last().map_or(NO_NETWORK, |o| o.1));
        }
    }
    (starts, values)
}

/// A prefix as written in a networks file: `192.0.2.0/24`, `2001:db8::/32`, or an address.
fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
            format!("{s:?} is not a prefix (e.g. 192.0.2.0/24, 2001:db8::/32) or an address")
        })?,
    };
    if net.trunc() != net {
        return Err(format!(
            "prefix {s} has bits set beyond its length (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(net)
}

/// An AS number, `64500` or `AS64500`; 0 is reserved (RFC 7607) and refused.
fn parse_asn(s: &str) -> Result<u32, String> {
    let digits = s
        .strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .unwrap_or(s);
    match digits.parse::<u32>() {
        Ok(0) => Err("AS 0 is reserved (RFC 7607) and cannot be a network's AS".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not an AS number (1 to 4294967295)")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Prefix,
    Name,
    Role,
    Site,
    Region,
    Tenant,
    Asn,
}

impl Column {
    fn from_name(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "prefix" => Column::Prefix,
            "name" => Column::Name,
            "role" => Column::Role,
            "site" => Column::Site,
            "region" => Column::Region,
            "tenant" => Column::Tenant,
            "asn" | "as" => Column::Asn,
            _ => return None,
        })
    }
}

/// The fields of one CSV record (RFC 4180 §2: commas, optional double quotes, `""` for a
/// quote inside quotes; a record does not span lines here).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, '"') => return Err("a double quote inside an unquoted field".to_owned()),
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) if was_quoted && !c.is_whitespace() => {
                return Err("text after a closing double quote".to_owned());
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a double quote is not closed".to_owned());
    }
    fields.push(field);
    Ok(fields)
}

/// serde_yaml's message without its trailing location (the line is reported separately).
fn yaml_message(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_owned(),
        None => text,
    }
}

/// The YAML form's top level as written: each key and its value, in order.
struct YamlFile(Vec<(String, serde_yaml::Value)>);

impl<'de> Deserialize<'de> for YamlFile {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = YamlFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of prefix to network attributes")
            }
            fn visit_unit<E: de::Error>(self) -> Result<YamlFile, E> {
                Ok(YamlFile(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlFile, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(YamlFile(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The attributes of one network in YAML.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlAttrs {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    asn: Option<u32>,
}

/// One YAML entry as a network: the value is a mapping of attributes, a name, or empty.
fn yaml_network(key: &str, value: serde_yaml::Value) -> Result<Network, String> {
    let prefix = parse_prefix(key)?;
    let attrs = match value {
        serde_yaml::Value::Null => YamlAttrs::default(),
        serde_yaml::Value::String(name) => YamlAttrs {
            name,
            ..YamlAttrs::default()
        },
        v @ serde_yaml::Value::Mapping(_) => {
            serde_yaml::from_value(v).map_err(|e| format!("{key}: {}", yaml_message(&e)))?
        }
        _ => {
            return Err(format!(
                "{key}: expected a name or a mapping of name, role, site, region, tenant, asn"
            ));
        }
    };
    if attrs.asn == Some(0) {
        return Err(format!(
            "{key}: AS 0 is reserved (RFC 7607) and cannot be a network's AS"
        ));
    }
    Ok(Network {
        prefix,
        name: attrs.name,
        role: attrs.role,
        site: attrs.site,
        region: attrs.region,
        tenant: attrs.tenant,
        asn: attrs.asn,
    })
}

/// The line of each top-level key of a block mapping, found in document order (serde_yaml
/// reports no positions for values it parsed). A key that cannot be found (a flow mapping
/// on one line) gets the line of the key before it, or 1.
fn yaml_key_lines<'k>(text: &str, keys: impl Iterator<Item = &'k str>) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    let mut last = 1;
    keys.map(|key| {
        let found = lines
            .iter()
            .enumerate()
            .skip(at)
            .find(|(_, l)| {
                let rest = l.strip_prefix(key).or_else(|| {
                    ["\"", "'"]
                        .iter()
                        .find_map(|q| l.strip_prefix(q)?.strip_prefix(key)?.strip_prefix(q))
                });
                rest.is_some_and(|r| r.trim_start().starts_with(':'))
            })
            .map(|(i, _)| i);
        if let Some(i) = found {
            at = i + 1;
            last = i + 1;
        }
        last
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &Networks, addr: &str) -> Option<String> {
        t.lookup(addr.parse().unwrap()).map(|n| n.name.clone())
    }

    fn net(prefix: &str, name: &str) -> Network {
        Network {
            prefix: prefix.parse().unwrap(),
            name: name.to_owned(),
            ..Network::default()
        }
    }

    #[test]
    fn longest_prefix_wins_ipv4() {
        let t = Networks::new(vec![
            net("10.1.2.0/24", "lan"),
            net("10.0.0.0/8", "corp"),
            net("10.1.0.0/16", "site"),
            net("10.1.2.128/25", "upper"),
            net("10.1.2.255/32", "host"),
            net("192.0.2.0/24", "doc"),
            net("0.0.0.0/0", "default"),
        ])
        .unwrap();
        assert_eq!(name(&t, "10.200.0.1").as_deref(), Some("corp"));
        assert_eq!(name(&t, "10.1.0.0").as_deref(), Some("site"));
        assert_eq!(name(&t, "10.1.1.255").as_deref(), Some("site"));
        assert_eq!(name(&t, "10.1.2.0").as_deref(), Some("lan"));
        assert_eq!(name(&t, "10.1.2.127").as_deref(), Some("lan"));
        assert_eq!(name(&t, "10.1.2.128").as_deref(), Some("upper"));
        assert_eq!(name(&t, "10.1.2.254").as_deref(), Some("upper"));
        assert_eq!(name(&t, "10.1.2.255").as_deref(), Some("host"));
        assert_eq!(name(&t, "10.1.3.0").as_deref(), Some("site"));
        assert_eq!(name(&t, "10.2.0.0").as_deref(), Some("corp"));
        assert_eq!(name(&t, "11.0.0.0").as_deref(), Some("default"));
        assert_eq!(name(&t, "9.255.255.255").as_deref(), Some("default"));
        assert_eq!(name(&t, "192.0.2.77").as_deref(), Some("doc"));
        assert_eq!(name(&t, "255.255.255.255").as_deref(), Some("default"));
        assert_eq!(name(&t, "0.0.0.0").as_deref(), Some("default"));
        assert_eq!(name(&t, "::1"), None, "IPv4 prefixes do not match IPv6");
    }

    #[test]
    fn longest_prefix_wins_ipv6_and_gaps_match_nothing() {
        let t = Networks::new(vec![
            net("2001:db8::/32", "doc"),
            net("2001:db8:1::/48", "site1"),
            net("2001:db8:1:2::/64", "lan"),
            net("ffff::/16", "top"),
            net("ffff:ffff::/32", "toptop"),
            net("10.0.0.0/8", "v4"),
        ])
        .unwrap();
        assert_eq!(name(&t, "2001:db8::1").as_deref(), Some("doc"));
        assert_eq!(name(&t, "2001:db8:1::1").as_deref(), Some("site1"));
        assert_eq!(name(&t, "2001:db8:1:2::99").as_deref(), Some("lan"));
        assert_eq!(name(&t, "2001:db8:1:3::").as_deref(), Some("site1"));
        assert_eq!(name(&t, "2001:db8:2::").as_deref(), Some("doc"));
        assert_eq!(name(&t, "2001:db9::"), None);
        assert_eq!(name(&t, "2001:db7:ffff::"), None);
        assert_eq!(
            name(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").as_deref(),
            Some("toptop")
        );
        assert_eq!(name(&t, "ffff:fffe::").as_deref(), Some("top"));
        assert_eq!(name(&t, "::"), None);
        assert_eq!(name(&t, "10.9.9.9").as_deref(), Some("v4"));
        assert_eq!(name(&t, "11.0.0.0"), None);
        assert_eq!(name(&t, "9.255.255.255"), None);
        assert!(
            Networks::default()
                .lookup("10.0.0.1".parse().unwrap())
                .is_none()
        );
    }

    /// Every address of a small space against a linear scan for the longest prefix.
    #[test]
    fn matches_a_linear_scan_of_random_nested_prefixes() {
        let mut x: u32 = 0x2545_f491;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..20 {
            let mut nets: Vec<Network> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            while nets.len() < 40 {
                // Prefixes within 10.0.0.0/20 so that they nest often.
                let len = 20 + (next() % 13) as u8;
                let addr = std::net::Ipv4Addr::from(0x0a00_0000 | (next() & 0xfff));
                let p = IpNet::V4(ipnet::Ipv4Net::new(addr, len).unwrap().trunc());
                if seen.insert(p) {
                    nets.push(Network {
                        prefix: p,
                        name: p.to_string(),
                        ..Network::default()
                    });
                }
            }
            let t = Networks::new(nets.clone()).unwrap();
            for a in 0x0a00_0000u32 - 2..=0x0a00_1001 {
                let addr = IpAddr::V4(a.into());
                let want = nets
                    .iter()
                    .filter(|n| n.prefix.contains(&addr))
                    .max_by_key(|n| n.prefix.prefix_len())
                    .map(|n| n.name.clone());
                assert_eq!(name(&t, &addr.to_string()), want, "{addr}");
            }
        }
    }

    #[test]
    fn yaml_names_attributes_and_shorthand() {
        let t = Networks::from_yaml(
            "# networks\n\
             10.0.0.0/8: { name: corp, role: internal, tenant: acme }\n\
             10.1.0.0/16:\n  name: par1-servers\n  site: par1\n  region: eu-west\n  asn: 64500\n\
             2001:db8::/32: lab\n\
             192.0.2.1: {role: router}\n",
        )
        .unwrap();
        assert_eq!(t.len(), 4);
        let corp = t.lookup("10.2.3.4".parse().unwrap()).unwrap();
        assert_eq!(
            (&*corp.name, &*corp.role, &*corp.tenant, corp.asn),
            ("corp", "internal", "acme", None)
        );
        let par = t.lookup("10.1.3.4".parse().unwrap()).unwrap();
        assert_eq!(
            (&*par.name, &*par.site, &*par.region, &*par.role, par.asn),
            ("par1-servers", "par1", "eu-west", "", Some(64500))
        );
        assert_eq!(name(&t, "2001:db8::5").as_deref(), Some("lab"));
        let host = t.lookup("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(
            (host.prefix.to_string().as_str(), &*host.role),
            ("192.0.2.1/32", "router")
        );
        assert!(t.lookup("192.0.2.2".parse().unwrap()).is_none());
        assert!(Networks::from_yaml("").unwrap().is_empty());
        assert!(Networks::from_yaml("# nothing yet\n").unwrap().is_empty());
    }

    #[test]
    fn yaml_errors_name_the_line() {
        let err = |text: &str| Networks::from_yaml(text).unwrap_err();
        let (line, msg) = err("10.0.0.0/8: a\n10.0.0.1/16: b\n");
        assert_eq!(line, 2, "{msg}");
        assert!(
            msg.contains("10.0.0.1/16") && msg.contains("10.0.0.0/16"),
            "{msg}"
        );
        let (line, msg) = err("10.0.0.0/8: a\n\n10.1.0.0/33: b\n");
        assert_eq!(line, 3, "{msg}");
        assert!(msg.contains("not a prefix"), "{msg}");
        let (line, msg) = err("10.0.0.0/8: a\n192.0.2.0/24: b\n\"10.0.0.0/8\": c\n");
        assert_eq!(line, 3, "{msg}");
        assert!(msg.contains("already defined on line 1"), "{msg}");
        let (line, msg) = err("10.0.0.0/8: a\n192.0.2.0/24:\n  name: a\n  sight: par1\n");
        assert_eq!(line, 2, "the entry's line: {msg}");
        assert!(msg.contains("192.0.2.0/24: unknown field `sight`"), "{msg}");
        let (line, msg) = err("# x\n10.0.0.0/8:\n  asn: -1\n");
        assert_eq!(line, 2, "{msg}");
        let (line, msg) = err("10.0.0.0/8:\n  asn: 0\n");
        assert_eq!(line, 1, "{msg}");
        assert!(msg.contains("AS 0"), "{msg}");
        let (line, msg) = err("10.0.0.0/8: a\n  bad indent: [\n");
        assert_eq!(line, 2, "a syntax error at its own line: {msg}");
        let (_, msg) = err("- 10.0.0.0/8\n");
        assert!(msg.contains("mapping of prefix"), "{msg}");
    }

    #[test]
    fn csv_columns_quotes_and_comments() {
        let t = Networks::from_csv(
            "# exported from the IPAM\n\
             prefix,name,role,site,region,tenant,asn\r\n\
             10.0.0.0/8,corp,internal,,,acme,\n\
             \n\
             10.1.0.0/16,\"par1, servers\",,par1,eu-west,,AS64500\n\
             2001:db8::/32,\"lab \"\"B\"\"\",,,,,64501\n",
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        let par = t.lookup("10.1.0.9".parse().unwrap()).unwrap();
        assert_eq!(
            (&*par.name, &*par.site, &*par.region, par.asn),
            ("par1, servers", "par1", "eu-west", Some(64500))
        );
        let corp = t.lookup("10.9.0.9".parse().unwrap()).unwrap();
        assert_eq!(
            (&*corp.role, &*corp.tenant, corp.asn),
            ("internal", "acme", None)
        );
        let lab = t.lookup("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!((&*lab.name, lab.asn), ("lab \"B\"", Some(64501)));
        // Columns in any order, only some of them.
        let t = Networks::from_csv("site,prefix\npar1,192.0.2.0/24\n").unwrap();
        assert_eq!(
            &*t.lookup("192.0.2.3".parse().unwrap()).unwrap().site,
            "par1"
        );
        assert!(Networks::from_csv("").unwrap().is_empty());
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = |text: &str| Networks::from_csv(text).unwrap_err();
        let (line, msg) = err("prefix,name\n10.0.0.0/8,a\n# c\n10.0.0.0/8,b\n");
        assert_eq!(line, 4, "{msg}");
        assert!(msg.contains("already defined on line 2"), "{msg}");
        let (line, msg) = err("prefix,name\n10.0.0.0/8,a\n10.0.0.300/24,b\n");
        assert_eq!(line, 3, "{msg}");
        assert!(msg.contains("not a prefix"), "{msg}");
        let (line, msg) = err("prefix,name\n10.0.0.0/8,a\n10.0.0.0/8:b\n");
        assert_eq!(line, 3, "{msg}");
        let (line, msg) = err("prefix,name\n192.0.2.1/24,a\n");
        assert_eq!(line, 2, "{msg}");
        assert!(msg.contains("did you mean 192.0.2.0/24"), "{msg}");
        let (line, msg) = err("prefix,name,asn\n10.0.0.0/8,a,0\n");
        assert_eq!(line, 2, "{msg}");
        assert!(msg.contains("AS 0"), "{msg}");
        let (line, msg) = err("prefix,name,asn\n10.0.0.0/8,a,4294967296\n");
        assert_eq!(line, 2, "{msg}");
        assert!(msg.contains("not an AS number"), "{msg}");
        let (line, msg) = err("prefix,name,site\n10.0.0.0/8,a\n");
        assert_eq!(line, 2, "{msg}");
        assert!(msg.contains("2 fields where the header has 3"), "{msg}");
        let (line, msg) = err("# head\nprefix,nom\n");
        assert_eq!(line, 2, "{msg}");
        assert!(msg.contains("unknown column \"nom\""), "{msg}");
        let (line, msg) = err("name,site\n");
        assert_eq!(line, 1, "{msg}");
        assert!(msg.contains("no prefix column"), "{msg}");
        let (line, msg) = err("prefix,name\n10.0.0.0/8,\"open\n");
        assert_eq!(line, 2, "{msg}");
        assert!(msg.contains("not closed"), "{msg}");
    }

    #[test]
    fn load_picks_the_format_and_names_the_file() {
        let dir = std::env::temp_dir().join(format!("flowtel-networks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("nets.CSV");
        std::fs::write(&csv, "prefix,name\n10.0.0.0/8,corp\n").unwrap();
        assert_eq!(Networks::load(&csv).unwrap().len(), 1);
        let yaml = dir.join("nets.yaml");
        std::fs::write(&yaml, "10.0.0.0/8: corp\n10.0.0.0/8: again\n").unwrap();
        let e = Networks::load(&yaml).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("networks file {}, line 2: ", yaml.display())),
            "{e}"
        );
        let e = Networks::load(&dir.join("missing.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot read networks file") && e.contains("missing.yaml"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
