//! Which flow records go to the per-flow sinks: keep/drop rules and 1-in-N sampling.
//!
//! Rules are evaluated in order for every record; the first rule whose conditions all hold
//! decides (`keep` or `drop`); a record no rule matches is kept. A condition lists values, any
//! of which may match: exporter prefixes (the UDP source or sFlow agent), source, destination or
//! either address prefixes, IP protocols (names or numbers), source, destination or either ports
//! and port ranges, input, output or either interface indexes. A rule without conditions
//! matches every record (`drop` last: keep only what earlier rules kept). Matching is a few
//! integer comparisons per condition: prefixes and protocols are parsed once.
//!
//! Sampling keeps every N-th selected record of each worker (systematic sampling) and multiplies
//! its sampling rate by N, leaving bytes and packets as the exporter sent them: a consumer that
//! multiplies bytes by the sampling rate (as every flow collector does) still gets unbiased
//! totals.

use std::net::IpAddr;

use flowtel_rollup::Enriched;
use serde::{Deserialize, Serialize};

use crate::prefix::Prefix;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Keep,
    Drop,
}

/// One rule as configured (`flow_records.rules` in the file, `--flow-keep` / `--flow-drop`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    pub action: Option<Action>,
    /// Exporter (UDP source, or sFlow agent) address prefixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exporter: Vec<String>,
    /// Source address prefixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub src: Vec<String>,
    /// Destination address prefixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dst: Vec<String>,
    /// Source or destination address prefixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    /// IP protocols: `tcp`, `udp`, `icmp`, ... or numbers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protocol: Vec<String>,
    /// Source ports or ranges (`8000-8999`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub src_port: Vec<String>,
    /// Destination ports or ranges.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dst_port: Vec<String>,
    /// Source or destination ports or ranges.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port: Vec<String>,
    /// Input interface indexes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_if: Vec<u32>,
    /// Output interface indexes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub out_if: Vec<u32>,
    /// Input or output interface indexes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interface: Vec<u32>,
}

/// A rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flow record rule: {0}")]
pub struct RuleError(String);

impl RuleConfig {
    /// Parse the flag form: `KEY=VALUE[|VALUE...][,KEY=...]`, e.g.
    /// `exporter=192.0.2.0/24,protocol=udp,dst_port=53|123`. An empty string matches every record.
    pub fn parse_flag(action: Action, s: &str) -> Result<Self, RuleError> {
        let mut rule = RuleConfig {
            action: Some(action),
            ..RuleConfig::default()
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, values) = part
                .split_once('=')
                .ok_or_else(|| RuleError(format!("{part:?}: expected KEY=VALUE")))?;
            let values: Vec<String> = values.split('|').map(|v| v.trim().to_owned()).collect();
            let ints = |vs: &[String]| -> Result<Vec<u32>, RuleError> {
                vs.iter()
                    .map(|v| {
                        v.parse().map_err(|_| {
                            RuleError(format!("{key}: {v:?} is not an interface index"))
                        })
                    })
                    .collect()
            };
            match key.trim() {
                "exporter" => rule.exporter = values,
                "src" => rule.src = values,
                "dst" => rule.dst = values,
                "address" => rule.address = values,
                "protocol" => rule.protocol = values,
                "src_port" => rule.src_port = values,
                "dst_port" => rule.dst_port = values,
                "port" => rule.port = values,
                "in_if" => rule.in_if = ints(&values)?,
                "out_if" => rule.out_if = ints(&values)?,
                "interface" => rule.interface = ints(&values)?,
                other => {
                    return Err(RuleError(format!(
                        "unknown key {other:?} (exporter, src, dst, address, protocol, src_port, \
                         dst_port, port, in_if, out_if, interface)"
                    )));
                }
            }
        }
        Ok(rule)
    }
}

/// A compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    action: Action,
    exporter: Vec<Prefix>,
    src: Vec<Prefix>,
    dst: Vec<Prefix>,
    address: Vec<Prefix>,
    protocol: Vec<u8>,
    src_port: Vec<(u16, u16)>,
    dst_port: Vec<(u16, u16)>,
    port: Vec<(u16, u16)>,
    in_if: Vec<u32>,
    out_if: Vec<u32>,
    interface: Vec<u32>,
}

fn prefixes(vs: &[String], what: &str) -> Result<Vec<Prefix>, RuleError> {
    vs.iter()
        .map(|v| v.parse().map_err(|e| RuleError(format!("{what}: {e}"))))
        .collect()
}

fn protocols(vs: &[String]) -> Result<Vec<u8>, RuleError> {
    vs.iter()
        .map(|v| {
            let v = v.to_ascii_lowercase();
            v.parse::<u8>()
                .ok()
                .or_else(|| {
                    (0..=255u8).find(|p| flowtel_rollup::services::transport_name(*p) == Some(&v))
                })
                .ok_or_else(|| {
                    RuleError(format!("protocol: {v:?} is not a protocol name or number"))
                })
        })
        .collect()
}

fn ports(vs: &[String], what: &str) -> Result<Vec<(u16, u16)>, RuleError> {
    vs.iter()
        .map(|v| {
            let bad = || RuleError(format!("{what}: {v:?} is not a port or range (1000-2000)"));
            match v.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    );
                    if a > b {
                        return Err(bad());
                    }
                    Ok((a, b))
                }
                None => v.parse().map(|p| (p, p)).map_err(|_| bad()),
            }
        })
        .collect()
}

impl Rule {
    fn compile(c: &RuleConfig) -> Result<Rule, RuleError> {
        Ok(Rule {
            action: c.action.ok_or_else(|| {
                RuleError("every rule needs `action: keep` or `action: drop`".into())
            })?,
            exporter: prefixes(&c.exporter, "exporter")?,
            src: prefixes(&c.src, "src")?,
            dst: prefixes(&c.dst, "dst")?,
            address: prefixes(&c.address, "address")?,
            protocol: protocols(&c.protocol)?,
            src_port: ports(&c.src_port, "src_port")?,
            dst_port: ports(&c.dst_port, "dst_port")?,
            port: ports(&c.port, "port")?,
            in_if: c.in_if.clone(),
            out_if: c.out_if.clone(),
            interface: c.interface.clone(),
        })
    }

    fn matches(&self, e: &Enriched<'_>) -> bool {
        let r = e.record;
        let inside = |nets: &[Prefix], a: Option<IpAddr>| {
            a.is_some_and(|a| nets.iter().any(|n| n.contains(&a)))
        };
        let in_range =
            |ranges: &[(u16, u16)], p: u16| ranges.iter().any(|(a, b)| (*a..=*b).contains(&p));
        let any_if = |ifs: &[u32], i: Option<u32>| i.is_some_and(|i| ifs.contains(&i));
        (self.exporter.is_empty() || inside(&self.exporter, Some(e.device_addr)))
            && (self.src.is_empty() || inside(&self.src, r.src_addr))
            && (self.dst.is_empty() || inside(&self.dst, r.dst_addr))
            && (self.address.is_empty()
                || inside(&self.address, r.src_addr)
                || inside(&self.address, r.dst_addr))
            && (self.protocol.is_empty() || self.protocol.contains(&r.ip_protocol))
            && (self.src_port.is_empty() || in_range(&self.src_port, r.src_port))
            && (self.dst_port.is_empty() || in_range(&self.dst_port, r.dst_port))
            && (self.port.is_empty()
                || in_range(&self.port, r.src_port)
                || in_range(&self.port, r.dst_port))
            && (self.in_if.is_empty() || any_if(&self.in_if, r.in_if))
            && (self.out_if.is_empty() || any_if(&self.out_if, r.out_if))
            && (self.interface.is_empty()
                || any_if(&self.interface, r.in_if)
                || any_if(&self.interface, r.out_if))
    }
}

/// What [`Selection::select`] decided for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it, with its sampling rate multiplied by this factor (1 without sampling).
    Keep(u32),
    /// A rule dropped it.
    Filtered,
    /// Sampling left it out.
    SampledOut,
}

/// The compiled rules and sampling state of one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    rules: Vec<Rule>,
    sample: u32,
    seen: u64,
}

impl Selection {
    /// Compile `rules`; `sample` is N of "keep 1 in N" (0 and 1: keep all).
    pub fn new(rules: &[RuleConfig], sample: u32) -> Result<Self, RuleError> {
        Ok(Selection {
            rules: rules.iter().map(Rule::compile).collect::<Result<_, _>>()?,
            sample: sample.max(1),
            seen: 0,
        })
    }

    /// Decide for one record.
    pub fn select(&mut self, e: &Enriched<'_>) -> Verdict {
        if let Some(rule) = self.rules.iter().find(|r| r.matches(e))
            && rule.action == Action::Drop
        {
            return Verdict::Filtered;
        }
        if self.sample <= 1 {
            return Verdict::Keep(1);
        }
        let keep = self.seen.is_multiple_of(u64::from(self.sample));
        self.seen = self.seen.wrapping_add(1);
        if keep {
            Verdict::Keep(self.sample)
        } else {
            Verdict::SampledOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtel_decode::{FlowProtocol, FlowRecord};
    use flowtel_rollup::{EnrichConfig, Enricher};

    fn record(src: &str, dst: &str, proto: u8, sport: u16, dport: u16) -> FlowRecord {
        let mut r = FlowRecord::new("192.0.2.1:2055".parse().unwrap(), FlowProtocol::Ipfix, 0);
        r.src_addr = Some(src.parse().unwrap());
        r.dst_addr = Some(dst.parse().unwrap());
        r.ip_protocol = proto;
        r.src_port = sport;
        r.dst_port = dport;
        r.in_if = Some(3);
        r.out_if = Some(7);
        r
    }

    fn verdicts(sel: &mut Selection, records: &[FlowRecord]) -> Vec<Verdict> {
        let mut enricher = Enricher::new(&EnrichConfig::default());
        records
            .iter()
            .map(|r| sel.select(&enricher.enrich(r, None)))
            .collect()
    }

    #[test]
    fn first_matching_rule_decides_and_unmatched_records_are_kept() {
        let rules = [
            RuleConfig::parse_flag(Action::Keep, "protocol=udp,dst_port=53").unwrap(),
            RuleConfig::parse_flag(Action::Drop, "protocol=udp|icmp").unwrap(),
            RuleConfig::parse_flag(Action::Drop, "address=10.0.0.0/8,port=8000-8999").unwrap(),
        ];
        let mut sel = Selection::new(&rules, 1).unwrap();
        let records = [
            record("198.51.100.1", "8.8.8.8", 17, 40000, 53), // kept by rule 1
            record("198.51.100.1", "8.8.8.8", 17, 40000, 123), // dropped by rule 2
            record("198.51.100.1", "8.8.8.8", 1, 0, 0),       // dropped by rule 2 (icmp)
            record("10.1.2.3", "8.8.8.8", 6, 8080, 443),      // dropped by rule 3
            record("10.1.2.3", "8.8.8.8", 6, 9000, 443),      // no rule: kept
        ];
        use Verdict::*;
        assert_eq!(
            verdicts(&mut sel, &records),
            [Keep(1), Filtered, Filtered, Filtered, Keep(1)]
        );
    }

    #[test]
    fn exporter_interface_and_catch_all_rules() {
        let rules = [
            RuleConfig::parse_flag(Action::Keep, "exporter=192.0.2.0/24,interface=7").unwrap(),
            RuleConfig::parse_flag(Action::Drop, "").unwrap(),
        ];
        let mut sel = Selection::new(&rules, 1).unwrap();
        let mut other = record("1.1.1.1", "2.2.2.2", 6, 1, 2);
        other.exporter = "203.0.113.9:2055".parse().unwrap();
        let mut no_if = record("1.1.1.1", "2.2.2.2", 6, 1, 2);
        no_if.out_if = None;
        let records = [record("1.1.1.1", "2.2.2.2", 6, 1, 2), other, no_if];
        use Verdict::*;
        assert_eq!(verdicts(&mut sel, &records), [Keep(1), Filtered, Filtered]);
    }

    #[test]
    fn sampling_keeps_one_in_n_and_scales_the_rate() {
        let mut sel = Selection::new(&[], 4).unwrap();
        let records = vec![record("1.1.1.1", "2.2.2.2", 6, 1, 2); 10];
        let v = verdicts(&mut sel, &records);
        let kept: Vec<usize> = v
            .iter()
            .enumerate()
            .filter(|(_, v)| **v == Verdict::Keep(4))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(kept, [0, 4, 8]);
        assert_eq!(v.iter().filter(|v| **v == Verdict::SampledOut).count(), 7);
    }

    #[test]
    fn bad_rules_are_errors_that_say_what_is_wrong() {
        let e = |s: &str| {
            RuleConfig::parse_flag(Action::Drop, s)
                .and_then(|r| Selection::new(&[r], 1).map(|_| ()))
                .unwrap_err()
                .to_string()
        };
        assert!(e("proto=udp").contains("unknown key \"proto\""));
        assert!(e("protocol=udpx").contains("\"udpx\" is not a protocol"));
        assert!(e("port=9000-8000").contains("not a port or range"));
        assert!(e("src=10.0.0.0/33").contains("not an address or prefix"));
        assert!(e("in_if=eth0").contains("not an interface index"));
        assert!(
            Selection::new(&[RuleConfig::default()], 1)
                .unwrap_err()
                .to_string()
                .contains("action")
        );
    }
}
