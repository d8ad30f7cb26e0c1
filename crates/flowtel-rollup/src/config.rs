//! Rollup and enrichment configuration: plain serde structs the daemon's YAML embeds.
//!
//! ```yaml
//! enrichment:
//!   devices: { 192.0.2.1: edge-1 }
//!   sampling: { default_rate: 1, exporters: { 192.0.2.1: 1000 } }
//!   geoip_country_db: /var/lib/GeoIP/GeoLite2-Country.mmdb
//! rollups:
//!   - name: bytes_by_flow
//!     value: bytes
//!     direction: both
//!     dimensions: [device_name, src_addr, dst_addr, src_port, dst_port, transport,
//!                  application, src_country, dst_country]
//!     top_k: 1000
//!     interval_secs: 60
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use flowtel_decode::RecordFields;
use serde::{Deserialize, Serialize};

/// What a rollup sums per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Octets (unit `By`).
    Bytes,
    /// Packets (unit `{packet}`).
    Packets,
    /// Flow records (unit `{flow}`): each record counts 1 (× sampling rate when corrected).
    Flows,
}

impl ValueKind {
    /// The UCUM unit of the emitted metric.
    pub const fn unit(self) -> &'static str {
        match self {
            ValueKind::Bytes => "By",
            ValueKind::Packets => "{packet}",
            ValueKind::Flows => "{flow}",
        }
    }
}

/// Which records a rollup counts, by the exporter's flow direction.
///
/// A record counts as `in` when the exporter marked it ingress or did not say (NetFlow and
/// IPFIX meter ingress unless `flowDirection`, IE 61, says egress); `out` when marked egress.
/// `both` counts every record, which is ktranslate's `in_bytes+out_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
    #[default]
    Both,
}

/// Attribute names and value types of the emitted series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// OTel network semantic-convention names (`network.local.address`, …), the names the
    /// Grafana Netflow integration's dashboard queries after its Alloy transform. Numeric
    /// dimensions (ports, AS numbers, interface indexes, VLAN, ToS) are integer attributes;
    /// Prometheus renders them as the same decimal label strings ktranslate's string
    /// attributes produce.
    #[default]
    Default,
    /// ktranslate's names (`src_addr`, `dst_port`, …), every value a string, metric
    /// `kentik.rollup.<rollup name>`: an untouched Alloy config from the integration keeps
    /// producing the same Prometheus series.
    Ktranslate,
}

/// One dimension a rollup groups by. Written in configuration by its snake_case name
/// (`src_addr`, `firewall_event`, …) or, for a field mapped with `decoder.fields`,
/// `custom_str.NAME` / `custom_int.NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Dimension {
    /// The exporter's configured name, else its address (sFlow: agent address).
    DeviceName,
    /// The exporter's address (sFlow: agent address), never renamed.
    ExporterAddress,
    SrcAddr,
    DstAddr,
    SrcPort,
    DstPort,
    /// IP protocol as a lower-case IANA keyword (`tcp`, `udp`, `icmp`, `ipv6-icmp`, …).
    Transport,
    /// The application the exporter named (IE 95 applicationId with its IE 96
    /// applicationName from options data, e.g. Cisco NBAR), else the IANA service name of the
    /// service side of the flow (see the crate docs).
    Application,
    /// Host name of the source; flowtel does no reverse DNS, so always empty. Kept so the
    /// ktranslate spec's `custom_str.src_host` maps to the same attribute set.
    SrcHost,
    DstHost,
    SrcCountry,
    DstCountry,
    SrcAs,
    DstAs,
    InIf,
    OutIf,
    InIfName,
    OutIfName,
    Vlan,
    Tos,
    /// IE 233 firewallEvent / Cisco NSEL NF_F_FW_EVENT by its IANA name (`created`,
    /// `deleted`, `denied`, `alert`, `update`), empty when absent.
    FirewallEvent,
    /// IE 230 natEvent by its IANA name (`nat44_session_create`, …), empty when absent.
    NatEvent,
    /// IE 225 / 281 post-NAT source address, empty when absent.
    PostNatSrcAddr,
    /// IE 226 / 282 post-NAT destination address.
    PostNatDstAddr,
    /// IE 227 post-NAPT source port (0 when absent).
    PostNatSrcPort,
    /// IE 228 post-NAPT destination port.
    PostNatDstPort,
    /// Name of the source address's network in the networks file (longest prefix), empty
    /// when no network matches or it has no name; likewise the role, site, region and tenant.
    SrcNetName,
    DstNetName,
    SrcNetRole,
    DstNetRole,
    SrcNetSite,
    DstNetSite,
    SrcNetRegion,
    DstNetRegion,
    SrcNetTenant,
    DstNetTenant,
    /// A `decoder.fields` field as a string attribute named NAME (ktranslate's `custom_str.`).
    CustomStr(Arc<str>),
    /// A `decoder.fields` unsigned field as an integer attribute named NAME (`custom_int.`).
    CustomInt(Arc<str>),
}

/// The built-in dimensions by configuration name.
const NAMED: [(&str, Dimension); 36] = [
    ("device_name", Dimension::DeviceName),
    ("exporter_address", Dimension::ExporterAddress),
    ("src_addr", Dimension::SrcAddr),
    ("dst_addr", Dimension::DstAddr),
    ("src_port", Dimension::SrcPort),
    ("dst_port", Dimension::DstPort),
    ("transport", Dimension::Transport),
    ("application", Dimension::Application),
    ("src_host", Dimension::SrcHost),
    ("dst_host", Dimension::DstHost),
    ("src_country", Dimension::SrcCountry),
    ("dst_country", Dimension::DstCountry),
    ("src_as", Dimension::SrcAs),
    ("dst_as", Dimension::DstAs),
    ("in_if", Dimension::InIf),
    ("out_if", Dimension::OutIf),
    ("in_if_name", Dimension::InIfName),
    ("out_if_name", Dimension::OutIfName),
    ("vlan", Dimension::Vlan),
    ("tos", Dimension::Tos),
    ("firewall_event", Dimension::FirewallEvent),
    ("nat_event", Dimension::NatEvent),
    ("post_nat_src_addr", Dimension::PostNatSrcAddr),
    ("post_nat_dst_addr", Dimension::PostNatDstAddr),
    ("post_nat_src_port", Dimension::PostNatSrcPort),
    ("post_nat_dst_port", Dimension::PostNatDstPort),
    ("src_net_name", Dimension::SrcNetName),
    ("dst_net_name", Dimension::DstNetName),
    ("src_net_role", Dimension::SrcNetRole),
    ("dst_net_role", Dimension::DstNetRole),
    ("src_net_site", Dimension::SrcNetSite),
    ("dst_net_site", Dimension::DstNetSite),
    ("src_net_region", Dimension::SrcNetRegion),
    ("dst_net_region", Dimension::DstNetRegion),
    ("src_net_tenant", Dimension::SrcNetTenant),
    ("dst_net_tenant", Dimension::DstNetTenant),
];

/// Whether `name` is a valid custom field name (the `decoder.fields` rule).
fn custom_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl std::str::FromStr for Dimension {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((_, d)) = NAMED.iter().find(|(n, _)| *n == s) {
            return Ok(d.clone());
        }
        let custom = |name: &str, f: fn(Arc<str>) -> Dimension| {
            if custom_name(name) {
                Ok(f(Arc::from(name)))
            } else {
                Err(format!("invalid custom field name in dimension {s:?}"))
            }
        };
        if let Some(name) = s.strip_prefix("custom_str.") {
            return custom(name, Dimension::CustomStr);
        }
        if let Some(name) = s.strip_prefix("custom_int.") {
            return custom(name, Dimension::CustomInt);
        }
        Err(format!("unknown dimension {s:?}"))
    }
}

impl TryFrom<String> for Dimension {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Dimension> for String {
    fn from(d: Dimension) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for Dimension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dimension::CustomStr(n) => write!(f, "custom_str.{n}"),
            Dimension::CustomInt(n) => write!(f, "custom_int.{n}"),
            d => {
                let name = NAMED.iter().find(|(_, x)| x == d).map_or("", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

impl Dimension {
    /// The attribute name under `profile`.
    pub fn attribute_name(&self, profile: Profile) -> &str {
        use Dimension::*;
        match (profile, self) {
            (Profile::Default, SrcAddr) => "network.local.address",
            (Profile::Default, DstAddr) => "network.peer.address",
            (Profile::Default, SrcPort) => "network.local.port",
            (Profile::Default, DstPort) => "network.peer.port",
            (Profile::Default, Transport) => "network.transport",
            (Profile::Default, Application) => "network.protocol.name",
            (Profile::Default, SrcCountry) => "network.local.country",
            (Profile::Default, DstCountry) => "network.peer.country",
            (Profile::Ktranslate, SrcAddr) => "src_addr",
            (Profile::Ktranslate, DstAddr) => "dst_addr",
            (Profile::Ktranslate, SrcPort) => "src_port",
            (Profile::Ktranslate, DstPort) => "dst_port",
            (Profile::Ktranslate, Transport) => "protocol",
            (Profile::Ktranslate, Application) => "application",
            (Profile::Ktranslate, SrcCountry) => "src_country",
            (Profile::Ktranslate, DstCountry) => "dst_country",
            (_, DeviceName) => "device_name",
            (_, ExporterAddress) => "exporter_address",
            (_, SrcHost) => "src_host",
            (_, DstHost) => "dst_host",
            (_, SrcAs) => "src_as",
            (_, DstAs) => "dst_as",
            (_, InIf) => "in_if",
            (_, OutIf) => "out_if",
            (_, InIfName) => "in_if_name",
            (_, OutIfName) => "out_if_name",
            (_, Vlan) => "vlan",
            (_, Tos) => "tos",
            (_, FirewallEvent) => "firewall_event",
            (_, NatEvent) => "nat_event",
            (_, PostNatSrcAddr) => "post_nat_src_addr",
            (_, PostNatDstAddr) => "post_nat_dst_addr",
            (_, PostNatSrcPort) => "post_nat_src_port",
            (_, PostNatDstPort) => "post_nat_dst_port",
            (_, SrcNetName) => "src_net_name",
            (_, DstNetName) => "dst_net_name",
            (_, SrcNetRole) => "src_net_role",
            (_, DstNetRole) => "dst_net_role",
            (_, SrcNetSite) => "src_net_site",
            (_, DstNetSite) => "dst_net_site",
            (_, SrcNetRegion) => "src_net_region",
            (_, DstNetRegion) => "dst_net_region",
            (_, SrcNetTenant) => "src_net_tenant",
            (_, DstNetTenant) => "dst_net_tenant",
            // ktranslate's `custom_str.application` is the attribute `application`.
            (_, CustomStr(name) | CustomInt(name)) => name,
        }
    }

    /// The network attribute this dimension reads, and whether of the destination.
    pub(crate) fn network_attribute(&self) -> Option<(NetAttr, bool)> {
        use Dimension::*;
        Some(match self {
            SrcNetName => (NetAttr::Name, false),
            DstNetName => (NetAttr::Name, true),
            SrcNetRole => (NetAttr::Role, false),
            DstNetRole => (NetAttr::Role, true),
            SrcNetSite => (NetAttr::Site, false),
            DstNetSite => (NetAttr::Site, true),
            SrcNetRegion => (NetAttr::Region, false),
            DstNetRegion => (NetAttr::Region, true),
            SrcNetTenant => (NetAttr::Tenant, false),
            DstNetTenant => (NetAttr::Tenant, true),
            _ => return None,
        })
    }

    /// Whether the enricher must look up interface names for this dimension.
    pub const fn needs_interface_names(&self) -> bool {
        matches!(self, Dimension::InIfName | Dimension::OutIfName)
    }

    /// The record fields this dimension's value is made of, beyond
    /// [`RecordFields::CORE`] (addresses, ports, protocol, application, configured fields;
    /// device, countries and networks come from the exporter and the addresses).
    pub const fn record_fields(&self) -> RecordFields {
        match self {
            Dimension::SrcAs | Dimension::DstAs => RecordFields::AS_NUMBERS,
            Dimension::InIf | Dimension::OutIf | Dimension::InIfName | Dimension::OutIfName => {
                RecordFields::INTERFACES
            }
            Dimension::Vlan => RecordFields::VLAN,
            Dimension::Tos => RecordFields::TOS,
            Dimension::FirewallEvent => RecordFields::FIREWALL_EVENT,
            Dimension::NatEvent
            | Dimension::PostNatSrcAddr
            | Dimension::PostNatDstAddr
            | Dimension::PostNatSrcPort
            | Dimension::PostNatDstPort => RecordFields::NAT,
            Dimension::DeviceName
            | Dimension::ExporterAddress
            | Dimension::SrcAddr
            | Dimension::DstAddr
            | Dimension::SrcPort
            | Dimension::DstPort
            | Dimension::Transport
            | Dimension::Application
            | Dimension::SrcHost
            | Dimension::DstHost
            | Dimension::SrcCountry
            | Dimension::DstCountry
            | Dimension::SrcNetName
            | Dimension::DstNetName
            | Dimension::SrcNetRole
            | Dimension::DstNetRole
            | Dimension::SrcNetSite
            | Dimension::DstNetSite
            | Dimension::SrcNetRegion
            | Dimension::DstNetRegion
            | Dimension::SrcNetTenant
            | Dimension::DstNetTenant
            | Dimension::CustomStr(_)
            | Dimension::CustomInt(_) => RecordFields::CORE,
        }
    }
}

/// A text attribute of a network (see [`crate::networks::Network`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetAttr {
    Name,
    Role,
    Site,
    Region,
    Tenant,
}

impl NetAttr {
    pub(crate) fn of(self, n: &crate::networks::Network) -> &str {
        match self {
            NetAttr::Name => &n.name,
            NetAttr::Role => &n.role,
            NetAttr::Site => &n.site,
            NetAttr::Region => &n.region,
            NetAttr::Tenant => &n.tenant,
        }
    }
}

/// The default rollup's dimensions: the Grafana Netflow integration's.
pub const DEFAULT_DIMENSIONS: [Dimension; 9] = [
    Dimension::DeviceName,
    Dimension::SrcAddr,
    Dimension::DstAddr,
    Dimension::SrcPort,
    Dimension::DstPort,
    Dimension::Transport,
    Dimension::Application,
    Dimension::SrcCountry,
    Dimension::DstCountry,
];

/// Default number of series kept per window before the overflow series.
pub const DEFAULT_TOP_K: usize = 1000;
/// Default cap on distinct keys tracked per window and per rollup instance.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// The most `max_keys` may be: a window indexes its keys with 32-bit numbers, and a merge
/// of two windows holds up to twice `max_keys` before it compacts. (A billion keys is tens
/// of gigabytes per window.)
pub const MAX_MAX_KEYS: usize = 1 << 30;
/// Default window length.
pub const DEFAULT_INTERVAL_SECS: u64 = 60;

fn default_name() -> String {
    "bytes_by_flow".to_owned()
}
fn default_dimensions() -> Vec<Dimension> {
    DEFAULT_DIMENSIONS.to_vec()
}
fn default_top_k() -> usize {
    DEFAULT_TOP_K
}
fn default_max_keys() -> usize {
    DEFAULT_MAX_KEYS
}
fn default_interval_secs() -> u64 {
    DEFAULT_INTERVAL_SECS
}
fn default_true() -> bool {
    true
}
fn default_value() -> ValueKind {
    ValueKind::Bytes
}

/// One rollup: windowed sums of `value` grouped by `dimensions`, top-K plus overflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// Rollup name; unique within a configuration. ktranslate profile metric:
    /// `kentik.rollup.<name>`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Metric name override. Default: in the default profile `network.io.by_flow` for the
    /// integration's bytes rollup (`bytes_by_flow`, the name Alloy's transform renames to it)
    /// and `flowtel.rollup.<name>` for any other; `kentik.rollup.<name>` in the ktranslate
    /// profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default = "default_value")]
    pub value: ValueKind,
    #[serde(default)]
    pub direction: Direction,
    /// Multiply each record's value by its sampling rate (ktranslate `s_sum`). `false` is
    /// ktranslate's plain `sum`.
    #[serde(default = "default_true")]
    pub sample_adjust: bool,
    #[serde(default = "default_dimensions")]
    pub dimensions: Vec<Dimension>,
    /// Series kept per window; the rest are summed into one overflow series.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Distinct keys tracked per window before the heavy-hitter eviction starts.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    #[serde(default)]
    pub profile: Profile,
    /// Ports at or above this value are reported as this value (ephemeral-port collapsing,
    /// as Kentik does for client ports). Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_ports_from: Option<u16>,
}

impl Default for RollupConfig {
    /// The Grafana Netflow integration's rollup: sampling-corrected bytes in+out by
    /// device, addresses, ports, transport, application and countries, every 60 s.
    fn default() -> Self {
        RollupConfig {
            name: default_name(),
            metric: None,
            value: ValueKind::Bytes,
            direction: Direction::Both,
            sample_adjust: true,
            dimensions: default_dimensions(),
            top_k: DEFAULT_TOP_K,
            max_keys: DEFAULT_MAX_KEYS,
            interval_secs: DEFAULT_INTERVAL_SECS,
            profile: Profile::Default,
            collapse_ports_from: None,
        }
    }
}

impl RollupConfig {
    /// The metric name this rollup emits.
    pub fn metric_name(&self) -> String {
        if let Some(m) = &self.metric {
            return m.clone();
        }
        match self.profile {
            Profile::Ktranslate => format!("kentik.rollup.{}", self.name),
            Profile::Default if self.name == "bytes_by_flow" && self.value == ValueKind::Bytes => {
                "network.io.by_flow".to_owned()
            }
            Profile::Default => format!("flowtel.rollup.{}", self.name),
        }
    }

    /// Check one rollup's values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::EmptyName);
        }
        if self.interval_secs == 0 || self.interval_secs > 86_400 {
            return Err(ConfigError::Interval(self.name.clone()));
        }
        if self.top_k == 0 {
            return Err(ConfigError::TopK(self.name.clone()));
        }
        if self.max_keys < self.top_k.max(2) || self.max_keys > MAX_MAX_KEYS {
            return Err(ConfigError::MaxKeys(self.name.clone()));
        }
        let mut seen = BTreeSet::new();
        for d in &self.dimensions {
            if !seen.insert(d) {
                return Err(ConfigError::DuplicateDimension(
                    self.name.clone(),
                    d.clone(),
                ));
            }
        }
        Ok(())
    }
}

/// Check a set of rollups: each valid, names and metric names unique.
pub fn validate_rollups(rollups: &[RollupConfig]) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    let mut metrics = BTreeSet::new();
    for r in rollups {
        r.validate()?;
        if !names.insert(r.name.as_str()) {
            return Err(ConfigError::DuplicateName(r.name.clone()));
        }
        if !metrics.insert(r.metric_name()) {
            return Err(ConfigError::DuplicateMetric(r.metric_name()));
        }
    }
    Ok(())
}

/// A configuration value the rollup cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a rollup has an empty name")]
    EmptyName,
    #[error("rollup {0}: interval_secs must be between 1 and 86400")]
    Interval(String),
    #[error("rollup {0}: top_k must be at least 1")]
    TopK(String),
    #[error("rollup {0}: max_keys must be at least top_k and at least 2, and at most 1073741824")]
    MaxKeys(String),
    #[error("rollup {0}: dimension {1:?} listed twice")]
    DuplicateDimension(String, Dimension),
    #[error("two rollups are named {0}")]
    DuplicateName(String),
    #[error("two rollups emit the metric {0}")]
    DuplicateMetric(String),
}

/// Sampling rates used when a record carries none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Rate for exporters not listed below; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_rate: Option<u32>,
    /// Per-exporter rate, keyed by exporter (sFlow: agent) address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exporters: BTreeMap<IpAddr, u32>,
}

/// Enrichment settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// Device names keyed by exporter (sFlow: agent) address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub devices: BTreeMap<IpAddr, String>,
    #[serde(default)]
    pub sampling: SamplingConfig,
    /// MaxMind-format country (or city) database; the binary reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geoip_country_db: Option<PathBuf>,
    /// MaxMind-format ASN database; the binary reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geoip_asn_db: Option<PathBuf>,
    /// Networks file (YAML, or CSV when the name ends in `.csv`): prefix → name, role, site,
    /// region, tenant, AS (see [`crate::networks`]); the binary reads it, and reads it again
    /// when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks_file: Option<PathBuf>,
}

/// The rollup section of a configuration file: enrichment plus a list of rollups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    #[serde(default)]
    pub enrichment: EnrichConfig,
    /// Rollups run side by side; the default is the integration's single rollup.
    #[serde(default = "default_rollups")]
    pub rollups: Vec<RollupConfig>,
}

fn default_rollups() -> Vec<RollupConfig> {
    vec![RollupConfig::default()]
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            enrichment: EnrichConfig::default(),
            rollups: default_rollups(),
        }
    }
}

impl PipelineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_rollups(&self.rollups)
    }
}
