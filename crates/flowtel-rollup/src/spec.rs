//! ktranslate's `--rollups` spec strings.
//!
//! A spec is `method,name,value,dimension,dimension,…`, for example the Grafana Netflow
//! integration's
//! `s_sum,bytes_by_flow,in_bytes+out_bytes,src_addr,dst_addr,l4_src_port,l4_dst_port,protocol,custom_str.application,device_name,custom_str.src_host,custom_str.dst_host,src_geo,dst_geo`.
//!
//! - method: `s_sum` (sum × sampling rate) or `sum` (raw sum). ktranslate's other methods
//!   (`unique`, `s_unique`, percentiles) are rejected.
//! - value: `in_bytes`, `out_bytes`, `in_pkts`, `out_pkts`, or two of the same unit joined by
//!   `+` (`in_bytes+out_bytes` = every record). `flows` counts records.
//! - dimensions: ktranslate column names; `custom_str.` / `custom_int.` prefixes are dropped
//!   for the columns flowtel knows (`custom_str.application` is the application); any other
//!   `custom_str.NAME` / `custom_int.NAME` is a field mapped with `decoder.fields`.
//!
//! A parsed spec uses the ktranslate [`Profile`], so it emits `kentik.rollup.<name>` with
//! ktranslate's attribute names. `--rollup_interval` and top-K come from elsewhere; the
//! parsed rollup has the defaults.

use crate::config::{Dimension, Direction, Profile, RollupConfig, ValueKind};

/// Why a spec string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("rollup spec needs at least method, name and value: {0:?}")]
    TooShort(String),
    #[error("unsupported rollup method {0:?} (supported: sum, s_sum)")]
    Method(String),
    #[error("unsupported rollup value {0:?}")]
    Value(String),
    #[error("unknown rollup dimension {0:?}")]
    Dimension(String),
    #[error("rollup dimension {0:?} listed twice")]
    DuplicateDimension(String),
}

/// Parse one ktranslate rollup spec.
pub fn parse_spec(spec: &str) -> Result<RollupConfig, SpecError> {
    let mut parts = spec.split(',').map(str::trim);
    let (Some(method), Some(name), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SpecError::TooShort(spec.to_owned()));
    };
    if name.is_empty() || value.is_empty() {
        return Err(SpecError::TooShort(spec.to_owned()));
    }
    let sample_adjust = match method {
        "s_sum" => true,
        "sum" => false,
        other => return Err(SpecError::Method(other.to_owned())),
    };
    let (value, direction) = parse_value(value)?;
    let mut dimensions = Vec::new();
    for raw in parts.filter(|p| !p.is_empty()) {
        let d = parse_dimension(raw).ok_or_else(|| SpecError::Dimension(raw.to_owned()))?;
        if dimensions.contains(&d) {
            return Err(SpecError::DuplicateDimension(raw.to_owned()));
        }
        dimensions.push(d);
    }
    Ok(RollupConfig {
        name: name.to_owned(),
        value,
        direction,
        sample_adjust,
        dimensions,
        profile: Profile::Ktranslate,
        ..RollupConfig::default()
    })
}

/// Parse several specs (one per `--rollups` flag).
pub fn parse_specs<'a>(
    specs: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<RollupConfig>, SpecError> {
    specs.into_iter().map(parse_spec).collect()
}

fn parse_value(v: &str) -> Result<(ValueKind, Direction), SpecError> {
    let err = || SpecError::Value(v.to_owned());
    let mut kind = None;
    let (mut saw_in, mut saw_out) = (false, false);
    for term in v.split('+').map(str::trim) {
        let (k, is_in) = match term {
            "in_bytes" => (ValueKind::Bytes, true),
            "out_bytes" => (ValueKind::Bytes, false),
            "in_pkts" => (ValueKind::Packets, true),
            "out_pkts" => (ValueKind::Packets, false),
            "flows" | "fps" => {
                if v.contains('+') {
                    return Err(err());
                }
                return Ok((ValueKind::Flows, Direction::Both));
            }
            _ => return Err(err()),
        };
        if kind.is_some_and(|prev| prev != k) {
            return Err(err());
        }
        kind = Some(k);
        if is_in {
            saw_in = true;
        } else {
            saw_out = true;
        }
    }
    let kind = kind.ok_or_else(err)?;
    let direction = match (saw_in, saw_out) {
        (true, true) => Direction::Both,
        (true, false) => Direction::In,
        _ => Direction::Out,
    };
    Ok((kind, direction))
}

/// Map a ktranslate column name to a [`Dimension`].
pub fn parse_dimension(raw: &str) -> Option<Dimension> {
    let name = raw
        .strip_prefix("custom_str.")
        .or_else(|| raw.strip_prefix("custom_int."))
        .unwrap_or(raw);
    Some(match name {
        "firewall_event" | "fw_event" => Dimension::FirewallEvent,
        "nat_event" => Dimension::NatEvent,
        "post_nat_src_addr" | "xlate_src_addr" => Dimension::PostNatSrcAddr,
        "post_nat_dst_addr" | "xlate_dst_addr" => Dimension::PostNatDstAddr,
        "post_nat_src_port" | "xlate_src_port" => Dimension::PostNatSrcPort,
        "post_nat_dst_port" | "xlate_dst_port" => Dimension::PostNatDstPort,
        "device_name" | "i_device_name" => Dimension::DeviceName,
        "src_addr" | "src_ip" | "ipv4_src_addr" | "ipv6_src_addr" => Dimension::SrcAddr,
        "dst_addr" | "dst_ip" | "ipv4_dst_addr" | "ipv6_dst_addr" => Dimension::DstAddr,
        "l4_src_port" | "src_port" => Dimension::SrcPort,
        "l4_dst_port" | "dst_port" => Dimension::DstPort,
        "protocol" | "proto" => Dimension::Transport,
        "application" => Dimension::Application,
        "src_host" => Dimension::SrcHost,
        "dst_host" => Dimension::DstHost,
        "src_geo" | "src_country" => Dimension::SrcCountry,
        "dst_geo" | "dst_country" => Dimension::DstCountry,
        "src_as" => Dimension::SrcAs,
        "dst_as" => Dimension::DstAs,
        "input_port" | "in_if" => Dimension::InIf,
        "output_port" | "out_if" => Dimension::OutIf,
        "input_int_desc" | "in_if_name" => Dimension::InIfName,
        "output_int_desc" | "out_if_name" => Dimension::OutIfName,
        "vlan_in" | "vlan" => Dimension::Vlan,
        "tos" => Dimension::Tos,
        "device_ip" | "sampler_address" | "exporter_address" => Dimension::ExporterAddress,
        // Networks-file attributes (flowtel's names; ktranslate has none of its own).
        "src_net_name" => Dimension::SrcNetName,
        "dst_net_name" => Dimension::DstNetName,
        "src_net_role" => Dimension::SrcNetRole,
        "dst_net_role" => Dimension::DstNetRole,
        "src_net_site" => Dimension::SrcNetSite,
        "dst_net_site" => Dimension::DstNetSite,
        "src_net_region" => Dimension::SrcNetRegion,
        "dst_net_region" => Dimension::DstNetRegion,
        "src_net_tenant" => Dimension::SrcNetTenant,
        "dst_net_tenant" => Dimension::DstNetTenant,
        _ if raw.starts_with("custom_") => return raw.parse().ok(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAFANA: &str = "s_sum,bytes_by_flow,in_bytes+out_bytes,src_addr,dst_addr,l4_src_port,l4_dst_port,protocol,custom_str.application,device_name,custom_str.src_host,custom_str.dst_host,src_geo,dst_geo";

    #[test]
    fn grafana_integration_spec() {
        let r = parse_spec(GRAFANA).unwrap();
        assert_eq!(r.name, "bytes_by_flow");
        assert!(r.sample_adjust);
        assert_eq!(r.value, ValueKind::Bytes);
        assert_eq!(r.direction, Direction::Both);
        assert_eq!(r.profile, Profile::Ktranslate);
        assert_eq!(r.metric_name(), "kentik.rollup.bytes_by_flow");
        use Dimension::*;
        assert_eq!(
            r.dimensions,
            vec![
                SrcAddr,
                DstAddr,
                SrcPort,
                DstPort,
                Transport,
                Application,
                DeviceName,
                SrcHost,
                DstHost,
                SrcCountry,
                DstCountry
            ]
        );
        let names: Vec<_> = r
            .dimensions
            .iter()
            .map(|d| d.attribute_name(r.profile))
            .collect();
        assert_eq!(
            names,
            [
                "src_addr",
                "dst_addr",
                "src_port",
                "dst_port",
                "protocol",
                "application",
                "device_name",
                "src_host",
                "dst_host",
                "src_country",
                "dst_country"
            ]
        );
        r.validate().unwrap();
    }

    #[test]
    fn plain_sum_and_single_direction() {
        let r = parse_spec("sum,pkts_in,in_pkts,device_name").unwrap();
        assert!(!r.sample_adjust);
        assert_eq!((r.value, r.direction), (ValueKind::Packets, Direction::In));
        let r = parse_spec("s_sum,out,out_bytes").unwrap();
        assert_eq!((r.value, r.direction), (ValueKind::Bytes, Direction::Out));
        assert!(r.dimensions.is_empty());
    }

    #[test]
    fn several_specs() {
        let rs = parse_specs([GRAFANA, "s_sum,pkts,in_pkts+out_pkts,src_as,dst_as"]).unwrap();
        assert_eq!(rs.len(), 2);
        crate::config::validate_rollups(&rs).unwrap();
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(matches!(parse_spec("s_sum,x"), Err(SpecError::TooShort(_))));
        assert!(matches!(
            parse_spec("unique,x,in_bytes"),
            Err(SpecError::Method(_))
        ));
        assert!(matches!(
            parse_spec("sum,x,in_bytes+in_pkts"),
            Err(SpecError::Value(_))
        ));
        assert!(matches!(
            parse_spec("sum,x,bogus"),
            Err(SpecError::Value(_))
        ));
        assert!(matches!(
            parse_spec("sum,x,in_bytes,nonsense"),
            Err(SpecError::Dimension(_))
        ));
        assert!(matches!(
            parse_spec("sum,x,in_bytes,src_geo,src_country"),
            Err(SpecError::DuplicateDimension(_))
        ));
    }
}
