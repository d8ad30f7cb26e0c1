//! Enrichment: what a rollup needs beyond the decoded record.
//!
//! For each record the [`Enricher`] resolves the device (exporter or sFlow agent, named from
//! the config map), the sampling rate (record, else per-exporter config, else default, else 1
//! — counted as unknown), the application (IANA service name of the service side), both
//! countries (`Private IP` for non-global addresses, else the GeoIP database's ISO code, else
//! empty), the networks of both addresses (longest prefix in the networks file, see
//! [`crate::networks`]), both AS numbers (record, else the network's, else ASN database) and,
//! when asked, interface names from an [`InterfaceNames`] lookup (the decoder's options data).
//! The databases' answers are cached per address (see `addr_cache.rs`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use flowtel_decode::FlowRecord;
use foldhash::fast::RandomState;

use crate::addr_cache::AddrCache;
use crate::config::EnrichConfig;
use crate::geo::{AsnDb, CountryDb};
use crate::networks::{Network, Networks};
use crate::services;
use crate::special;

/// The country label of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Country {
    /// No database configured, or the address is not in it: empty label.
    #[default]
    Unknown,
    /// Not globally reachable (see [`crate::special`]): `Private IP`, the label the
    /// integration's dashboard filters on.
    Private,
    /// ISO 3166-1 alpha-2 code, upper-case ASCII.
    Iso([u8; 2]),
}

impl Country {
    /// The attribute value: `""`, `"Private IP"` or the ISO code.
    pub fn as_str(&self) -> &str {
        match self {
            Country::Unknown => "",
            Country::Private => "Private IP",
            Country::Iso(code) => std::str::from_utf8(code).unwrap_or(""),
        }
    }
}

/// Interface names learnt from exporters' options data (NetFlow v9 / IPFIX interface
/// options, RFC 7011 §4), looked up by the enricher. The decoder implements it.
pub trait InterfaceNames {
    fn interface_name(
        &self,
        exporter: SocketAddr,
        observation_domain: u32,
        if_index: u32,
    ) -> Option<Arc<str>>;
}

/// A record with everything the rollup keys on resolved.
#[derive(Debug, Clone)]
pub struct Enriched<'a> {
    pub record: &'a FlowRecord,
    /// The device's identity: sFlow agent address, else the exporter's IP address.
    pub device_addr: IpAddr,
    /// Configured name of the device, else its address (borrowed from the enricher's cache,
    /// so enriching a record allocates nothing once its device has been seen).
    pub device_name: &'a str,
    /// Resolved 1-in-N sampling rate, at least 1.
    pub sampling_rate: u32,
    /// Whether [`Self::sampling_rate`] came from the record (else from configuration or 1).
    pub rate_known: bool,
    /// Index of the application in the service table (see [`Enriched::application`]).
    pub(crate) application: Option<u16>,
    pub src_country: Country,
    pub dst_country: Country,
    pub src_as: Option<u32>,
    pub dst_as: Option<u32>,
    pub in_if_name: Option<Arc<str>>,
    pub out_if_name: Option<Arc<str>>,
    /// The networks-file network of the source address (longest prefix), if any.
    pub src_net: Option<&'a Arc<Network>>,
    /// The networks-file network of the destination address.
    pub dst_net: Option<&'a Arc<Network>>,
    /// The cached name behind [`Self::device_name`], shared by [`Enriched::to_record`]
    /// (`None` when the cache was full and the name was formatted for this record only).
    device_shared: Option<&'a Arc<str>>,
}

impl<'a> Enriched<'a> {
    /// `record` of the device at `device_addr` named `device_name`, with nothing looked up
    /// yet: [`Lookups::resolve_into`] sets the rest.
    fn of_device(
        record: &'a FlowRecord,
        device_addr: IpAddr,
        (device_name, device_shared): (&'a str, Option<&'a Arc<str>>),
    ) -> Self {
        Enriched {
            record,
            device_addr,
            device_name,
            sampling_rate: 1,
            rate_known: false,
            application: None,
            src_country: Country::Unknown,
            dst_country: Country::Unknown,
            src_as: None,
            dst_as: None,
            in_if_name: None,
            out_if_name: None,
            src_net: None,
            dst_net: None,
            device_shared,
        }
    }
}

impl Enriched<'_> {
    /// IANA service name of the flow's service side, if any.
    pub fn application(&self) -> Option<&'static str> {
        self.application
            .map(|i| services::service_name_at(self.record.ip_protocol, i))
    }

    /// The application label of the `application` dimension: the name the exporter gave it
    /// ([`FlowRecord::application_name`], IE 95/96 from options data, e.g. Cisco NBAR), else
    /// the IANA service name of the flow's service side.
    pub fn application_name(&self) -> Option<&str> {
        self.record
            .application_name
            .as_deref()
            .or_else(|| self.application())
    }

    /// The record and its enrichment as one owned value, for the per-flow sinks. The device
    /// name is shared with the enricher's cache (no allocation once the device was seen).
    pub fn to_record(&self) -> EnrichedRecord {
        EnrichedRecord {
            record: self.record.clone(),
            device_addr: self.device_addr,
            device_name: self
                .device_shared
                .map_or_else(|| Arc::from(self.device_name), Arc::clone),
            sampling_rate: self.sampling_rate,
            rate_known: self.rate_known,
            application: self.application(),
            src_country: self.src_country,
            dst_country: self.dst_country,
            src_as: self.src_as,
            dst_as: self.dst_as,
            in_if_name: self.in_if_name.clone(),
            out_if_name: self.out_if_name.clone(),
            src_net: self.src_net.cloned(),
            dst_net: self.dst_net.cloned(),
        }
    }
}

/// A decoded flow record with everything flowtel resolved about it, owned: what the per-flow
/// sinks (OTLP logs, JSON, Kafka) receive. Bytes and packets in [`Self::record`] are as the
/// exporter sent them; [`Self::sampling_rate`] is the rate the rollups multiply by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichedRecord {
    pub record: FlowRecord,
    /// The device's identity: sFlow agent address, else the exporter's IP address.
    pub device_addr: IpAddr,
    /// Configured name of the device, else its address.
    pub device_name: Arc<str>,
    /// Resolved 1-in-N sampling rate, at least 1.
    pub sampling_rate: u32,
    /// Whether [`Self::sampling_rate`] came from the record (else from configuration or 1).
    pub rate_known: bool,
    /// IANA service name of the flow's service side (the exporter's own name, when it gave
    /// one, is `record.application_name`; [`EnrichedRecord::application_name`] picks).
    pub application: Option<&'static str>,
    pub src_country: Country,
    pub dst_country: Country,
    /// Source AS: the record's, else the source network's (networks file), else the ASN
    /// database's.
    pub src_as: Option<u32>,
    /// Destination AS: the record's, else the destination network's, else the ASN database's.
    pub dst_as: Option<u32>,
    pub in_if_name: Option<Arc<str>>,
    pub out_if_name: Option<Arc<str>>,
    /// The networks-file network of the source address (longest prefix), if any.
    pub src_net: Option<Arc<Network>>,
    /// The networks-file network of the destination address.
    pub dst_net: Option<Arc<Network>>,
}

impl EnrichedRecord {
    /// The application label of the `application` dimension: the exporter's name for it,
    /// else the IANA service name.
    pub fn application_name(&self) -> Option<&str> {
        self.record.application_name.as_deref().or(self.application)
    }
}

/// Cumulative enrichment counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnrichStats {
    /// Records enriched.
    pub records: u64,
    /// Records whose sampling rate was unknown (configured default or 1 used).
    pub unknown_sampling_rate: u64,
    /// GeoIP country lookups that failed (corrupt database); the country is left empty.
    pub geo_lookup_errors: u64,
    /// ASN lookups that failed (corrupt database); the AS is left unknown.
    pub asn_lookup_errors: u64,
}

impl EnrichStats {
    /// Add another worker's counters.
    pub fn merge(&mut self, other: &EnrichStats) {
        self.records += other.records;
        self.unknown_sampling_rate += other.unknown_sampling_rate;
        self.geo_lookup_errors += other.geo_lookup_errors;
        self.asn_lookup_errors += other.asn_lookup_errors;
    }
}

/// Device names cached beyond the configured ones (formatted addresses).
const MAX_CACHED_DEVICES: usize = 65_536;

/// Resolves [`Enriched`] fields. One per worker; cheap to clone before first use.
#[derive(Debug)]
pub struct Enricher {
    devices: HashMap<IpAddr, Arc<str>, RandomState>,
    configured_devices: usize,
    /// The name of a device seen once the cache is full (formatted per record).
    uncached_device: String,
    /// The last device looked up and its cached name: the records of a datagram share their
    /// exporter, so the cache is consulted once per datagram rather than once per record.
    last_device: Option<(IpAddr, Arc<str>)>,
    default_rate: Option<u32>,
    exporter_rates: HashMap<IpAddr, u32, RandomState>,
    country_db: Option<Arc<CountryDb>>,
    asn_db: Option<Arc<AsnDb>>,
    networks: Option<Arc<Networks>>,
    interface_names: bool,
    countries: bool,
    caches: GeoCaches,
    stats: EnrichStats,
}

/// The databases' answers per address (see [`crate::addr_cache`]).
#[derive(Debug, Default)]
struct GeoCaches {
    countries: AddrCache<Option<[u8; 2]>>,
    asns: AddrCache<Option<u32>>,
}

impl Enricher {
    /// An enricher for `config`. GeoIP databases are attached with
    /// [`Enricher::with_country_db`] / [`Enricher::with_asn_db`] (the binary reads the files).
    pub fn new(config: &EnrichConfig) -> Self {
        let devices: HashMap<_, _, _> = config
            .devices
            .iter()
            .map(|(a, n)| (*a, Arc::<str>::from(n.as_str())))
            .collect();
        Enricher {
            configured_devices: devices.len(),
            uncached_device: String::new(),
            last_device: None,
            devices,
            default_rate: config.sampling.default_rate.filter(|r| *r > 0),
            exporter_rates: config
                .sampling
                .exporters
                .iter()
                .filter(|(_, r)| **r > 0)
                .map(|(a, r)| (*a, *r))
                .collect(),
            country_db: None,
            asn_db: None,
            networks: None,
            interface_names: false,
            countries: true,
            caches: GeoCaches::default(),
            stats: EnrichStats::default(),
        }
    }

    pub fn with_country_db(mut self, db: Arc<CountryDb>) -> Self {
        self.country_db = Some(db);
        self
    }

    pub fn with_asn_db(mut self, db: Arc<AsnDb>) -> Self {
        self.asn_db = Some(db);
        self
    }

    /// Networks of addresses by longest prefix (an empty table is not consulted).
    pub fn with_networks(mut self, networks: Arc<Networks>) -> Self {
        self.networks = Some(networks).filter(|n| !n.is_empty());
        self
    }

    /// Look up interface names (only worth it when a rollup uses them, see
    /// [`crate::RollupSet::needs_interface_names`]).
    pub fn with_interface_names(mut self, on: bool) -> Self {
        self.interface_names = on;
        self
    }

    /// Whether records get their countries (on unless turned off). Off when only rollups
    /// read the records and each keys a country only with the same side's address: those
    /// look countries up for the series they emit ([`crate::RollupSet::needs_countries`]),
    /// so a record then costs no country lookup. Off, both countries are
    /// [`Country::Unknown`].
    pub fn with_countries(mut self, on: bool) -> Self {
        self.countries = on;
        self
    }

    pub fn stats(&self) -> &EnrichStats {
        &self.stats
    }

    /// Start from earlier counters (an enricher replacing another on a configuration reload).
    pub fn with_stats(mut self, stats: EnrichStats) -> Self {
        self.stats = stats;
        self
    }

    /// The name of the device at `addr` (configured, else the address), shared with the cache
    /// (a new `Arc` only once the cache is full). For what is not a flow record: sFlow
    /// counter samples and drop notifications.
    pub fn device(&mut self, addr: IpAddr) -> Arc<str> {
        let (_, _, devices) = self.split();
        match devices.into_name(addr) {
            (_, Some(shared)) => Arc::clone(shared),
            (name, None) => Arc::from(name),
        }
    }

    /// Enrich one record. `interface_names` is consulted only when enabled with
    /// [`Enricher::with_interface_names`].
    pub fn enrich<'a>(
        &'a mut self,
        record: &'a FlowRecord,
        interface_names: Option<&dyn InterfaceNames>,
    ) -> Enriched<'a> {
        let device_addr = device_of(record);
        let (lookups, mut state, devices) = self.split();
        let device = devices.into_name(device_addr);
        lookups.resolve(&mut state, record, interface_names, device_addr, device)
    }

    /// Enrich each of `records` in turn and hand it to `each`: what [`Enricher::enrich`] does
    /// for one, with the device's name resolved once per run of records from the same device
    /// (a datagram's records all come from one) rather than once per record.
    pub fn enrich_each(
        &mut self,
        records: &[FlowRecord],
        interface_names: Option<&dyn InterfaceNames>,
        mut each: impl FnMut(&Enriched<'_>),
    ) {
        let (lookups, mut state, mut devices) = self.split();
        let mut rest = records;
        while let Some(first) = rest.first() {
            let device_addr = device_of(first);
            let run = rest
                .iter()
                .position(|r| device_of(r) != device_addr)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(run);
            rest = tail;
            let device = devices.name(device_addr);
            // One value for the run, of which each record sets its own part: the device's
            // part and what the enricher does not look up are the run's.
            let mut e = Enriched::of_device(first, device_addr, device);
            for record in run {
                lookups.resolve_into(&mut e, &mut state, record, interface_names);
                each(&e);
            }
        }
    }

    /// The enricher as its three independent parts, so that a record can borrow the device
    /// cache and the lookup tables while the counters and the databases' caches change.
    fn split(&mut self) -> (Lookups<'_>, State<'_>, Devices<'_>) {
        (
            Lookups {
                default_rate: self.default_rate,
                exporter_rates: &self.exporter_rates,
                country_db: self.country_db.as_deref(),
                asn_db: self.asn_db.as_deref(),
                networks: self.networks.as_deref(),
                interface_names: self.interface_names,
                countries: self.countries,
            },
            State {
                stats: &mut self.stats,
                caches: &mut self.caches,
            },
            Devices {
                devices: &mut self.devices,
                configured: self.configured_devices,
                uncached: &mut self.uncached_device,
                last: &mut self.last_device,
            },
        )
    }
}

/// The device a record is keyed on: the sFlow agent, else the exporter's address.
#[inline]
fn device_of(record: &FlowRecord) -> IpAddr {
    record.agent.unwrap_or_else(|| record.exporter.ip())
}

/// What enriching a record changes besides the device cache: the counters and the
/// databases' caches.
struct State<'e> {
    stats: &'e mut EnrichStats,
    caches: &'e mut GeoCaches,
}

/// The device-name cache of an [`Enricher`], borrowed.
struct Devices<'e> {
    devices: &'e mut HashMap<IpAddr, Arc<str>, RandomState>,
    configured: usize,
    uncached: &'e mut String,
    last: &'e mut Option<(IpAddr, Arc<str>)>,
}

impl<'e> Devices<'e> {
    /// See [`device_name`]; the name borrows the cache until the next lookup.
    fn name(&mut self, addr: IpAddr) -> (&str, Option<&Arc<str>>) {
        device_name(
            self.devices,
            self.configured,
            self.uncached,
            self.last,
            addr,
        )
    }

    /// [`Devices::name`] for the cache's whole borrow.
    fn into_name(self, addr: IpAddr) -> (&'e str, Option<&'e Arc<str>>) {
        device_name(
            self.devices,
            self.configured,
            self.uncached,
            self.last,
            addr,
        )
    }
}

/// The lookup tables and settings of an [`Enricher`], borrowed apart from its device cache.
struct Lookups<'e> {
    default_rate: Option<u32>,
    exporter_rates: &'e HashMap<IpAddr, u32, RandomState>,
    country_db: Option<&'e CountryDb>,
    asn_db: Option<&'e AsnDb>,
    networks: Option<&'e Networks>,
    interface_names: bool,
    countries: bool,
}

impl<'e> Lookups<'e> {
    /// Everything about one record but its device's name, which the caller resolved.
    fn resolve<'a>(
        &self,
        state: &mut State<'_>,
        record: &'a FlowRecord,
        interface_names: Option<&dyn InterfaceNames>,
        device_addr: IpAddr,
        device: (&'a str, Option<&'a Arc<str>>),
    ) -> Enriched<'a>
    where
        'e: 'a,
    {
        let mut e = Enriched::of_device(record, device_addr, device);
        self.resolve_into(&mut e, state, record, interface_names);
        e
    }

    /// Set what `e` says about `record` (its device's part stays): the sampling rate, the
    /// application, and what the enricher looks up. A run of records from one device shares
    /// one value ([`Enricher::enrich_each`]), which saves writing the parts no record changes.
    /// Always inlined: `enrich_each` is instantiated in its callers' crates, where `#[inline]`
    /// alone left this a call per record.
    #[inline(always)]
    fn resolve_into<'a>(
        &self,
        e: &mut Enriched<'a>,
        state: &mut State<'_>,
        record: &'a FlowRecord,
        interface_names: Option<&dyn InterfaceNames>,
    ) where
        'e: 'a,
    {
        state.stats.records += 1;
        e.record = record;
        (e.sampling_rate, e.rate_known) = match record.sampling_rate.filter(|r| *r > 0) {
            Some(r) => (r, true),
            None => {
                state.stats.unknown_sampling_rate += 1;
                let rate = self
                    .exporter_rates
                    .get(&e.device_addr)
                    .or_else(|| self.exporter_rates.get(&record.exporter.ip()))
                    .copied()
                    .or(self.default_rate)
                    .unwrap_or(1);
                (rate, false)
            }
        };
        e.application =
            services::application_index(record.ip_protocol, record.src_port, record.dst_port);
        if self.countries {
            e.src_country = self.country(state, record.src_addr);
            e.dst_country = self.country(state, record.dst_addr);
        }
        let (mut src_net_as, mut dst_net_as) = (None, None);
        if let Some(networks) = self.networks {
            let net = |addr: Option<IpAddr>| networks.lookup(addr?);
            (e.src_net, e.dst_net) = (net(record.src_addr), net(record.dst_addr));
            src_net_as = e.src_net.and_then(|n| n.asn);
            dst_net_as = e.dst_net.and_then(|n| n.asn);
        }
        if let (true, Some(names)) = (self.interface_names, interface_names) {
            let name = |ifx: Option<u32>| {
                ifx.and_then(|i| {
                    names.interface_name(record.exporter, record.observation_domain, i)
                })
            };
            e.in_if_name = name(record.in_if);
            e.out_if_name = name(record.out_if);
        }
        e.src_as = self.asn(state, record.src_as, src_net_as, record.src_addr);
        e.dst_as = self.asn(state, record.dst_as, dst_net_as, record.dst_addr);
    }

    /// The country label of an address: `Private IP` when it is not global, else the
    /// database's code (a failed lookup is counted and leaves it empty).
    fn country(&self, state: &mut State<'_>, addr: Option<IpAddr>) -> Country {
        country_with(addr, |a| match self.country_db {
            Some(db) => country_in(db, state, a),
            None => Country::Unknown,
        })
    }

    /// The AS of one side: the record's, else the network's (networks file), else the ASN
    /// database's.
    #[inline]
    fn asn(
        &self,
        state: &mut State<'_>,
        from_record: Option<u32>,
        from_network: Option<u32>,
        addr: Option<IpAddr>,
    ) -> Option<u32> {
        // AS 0 is "unknown" in NetFlow/IPFIX (RFC 7102 has no AS 0; RFC 7607 reserves it).
        if let Some(asn) = from_record.filter(|a| *a != 0) {
            return Some(asn);
        }
        // The operator's own networks file before the public database.
        if from_network.is_some() {
            return from_network;
        }
        let (Some(db), Some(addr)) = (self.asn_db, addr) else {
            return None;
        };
        if !special::is_global(addr) {
            return None;
        }
        asn_in(db, state, addr)
    }
}

/// The country label of an address: `Private IP` when it is not global, else `lookup`'s
/// answer for it.
#[inline(always)]
fn country_with(addr: Option<IpAddr>, lookup: impl FnOnce(IpAddr) -> Country) -> Country {
    match addr {
        None => Country::Unknown,
        Some(a) if !special::is_global(a) => Country::Private,
        Some(a) => lookup(a),
    }
}

/// The country label of an address as a record gets it, without the enricher's cache: for
/// the few series a rollup emits (see [`crate::RollupSet::needs_countries`]). A failed lookup
/// is counted in `errors` and leaves the label empty.
pub(crate) fn address_country(
    db: Option<&CountryDb>,
    addr: Option<IpAddr>,
    errors: &mut u64,
) -> Country {
    country_with(addr, |a| match db.map(|db| db.country(a)) {
        Some(Ok(Some(code))) => Country::Iso(code),
        Some(Ok(None)) | None => Country::Unknown,
        Some(Err(_)) => {
            *errors += 1;
            Country::Unknown
        }
    })
}

/// A global address's country in the database, through the cache. Kept out of line: without a
/// database, enrichment does not carry its code.
#[inline(never)]
fn country_in(db: &CountryDb, state: &mut State<'_>, addr: IpAddr) -> Country {
    match state.caches.countries.get_or(addr, || db.country(addr)) {
        Ok(Some(code)) => Country::Iso(code),
        Ok(None) => Country::Unknown,
        Err(_) => {
            state.stats.geo_lookup_errors += 1;
            Country::Unknown
        }
    }
}

/// A global address's AS in the database, through the cache (out of line, as
/// [`country_in`]).
#[inline(never)]
fn asn_in(db: &AsnDb, state: &mut State<'_>, addr: IpAddr) -> Option<u32> {
    match state.caches.asns.get_or(addr, || db.asn(addr)) {
        Ok(a) => a,
        Err(_) => {
            state.stats.asn_lookup_errors += 1;
            None
        }
    }
}

/// The device's name, and the cached `Arc` behind it (none once the cache is full). A
/// function of the fields it uses, so that a record can borrow the device cache and the
/// networks table at once.
fn device_name<'a>(
    devices: &'a mut HashMap<IpAddr, Arc<str>, RandomState>,
    configured: usize,
    uncached: &'a mut String,
    last: &'a mut Option<(IpAddr, Arc<str>)>,
    addr: IpAddr,
) -> (&'a str, Option<&'a Arc<str>>) {
    if last.as_ref().is_some_and(|(a, _)| *a == addr) {
        let name = last.as_ref().map(|(_, n)| n);
        return (name.map_or("", |n| &**n), name);
    }
    if devices.len() >= configured + MAX_CACHED_DEVICES && !devices.contains_key(&addr) {
        uncached.clear();
        // Writing to a String cannot fail.
        let _ = write!(uncached, "{addr}");
        return (uncached, None);
    }
    let name = devices
        .entry(addr)
        .or_insert_with(|| Arc::from(addr.to_string()));
    let name = &last.insert((addr, name.clone())).1;
    (name, Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SamplingConfig;
    use crate::geo::tests::fixture;
    use flowtel_decode::FlowProtocol;

    fn rec(src: &str, dst: &str) -> FlowRecord {
        let mut r = FlowRecord::new("192.0.2.1:2055".parse().unwrap(), FlowProtocol::Ipfix, 0);
        r.src_addr = Some(src.parse().unwrap());
        r.dst_addr = Some(dst.parse().unwrap());
        r.ip_protocol = 6;
        r.src_port = 51000;
        r.dst_port = 443;
        r
    }

    struct Names;
    impl InterfaceNames for Names {
        fn interface_name(&self, _: SocketAddr, domain: u32, if_index: u32) -> Option<Arc<str>> {
            (domain == 7).then(|| Arc::from(format!("xe-0/0/{if_index}")))
        }
    }

    #[test]
    fn device_sampling_application_and_private_countries() {
        let mut config = EnrichConfig::default();
        config
            .devices
            .insert("192.0.2.1".parse().unwrap(), "edge-1".into());
        config.sampling = SamplingConfig {
            default_rate: Some(10),
            exporters: [("192.0.2.9".parse().unwrap(), 1000)].into(),
        };
        let mut e = Enricher::new(&config);
        let r = rec("10.1.2.3", "100.64.0.1");
        let x = e.enrich(&r, None);
        assert_eq!(x.device_name, "edge-1");
        assert_eq!((x.sampling_rate, x.rate_known), (10, false));
        assert_eq!(x.application(), Some("https"));
        assert_eq!(x.src_country.as_str(), "Private IP");
        assert_eq!(x.dst_country.as_str(), "Private IP");

        let mut r = rec("8.8.8.8", "fd00::1");
        r.exporter = "192.0.2.9:9995".parse().unwrap();
        let x = e.enrich(&r, None);
        assert_eq!(x.device_name, "192.0.2.9");
        assert_eq!(x.sampling_rate, 1000);
        assert_eq!(x.src_country, Country::Unknown, "no database configured");
        assert_eq!(x.dst_country, Country::Private);

        let mut r = rec("8.8.8.8", "1.1.1.1");
        r.sampling_rate = Some(512);
        r.agent = Some("203.0.113.5".parse().unwrap());
        let x = e.enrich(&r, None);
        assert_eq!(x.device_name, "203.0.113.5", "sFlow agent is the device");
        assert_eq!((x.sampling_rate, x.rate_known), (512, true));
        assert_eq!(e.stats().unknown_sampling_rate, 2);
        assert_eq!(e.stats().records, 3);
    }

    #[test]
    fn owned_records_share_the_cached_device_name() {
        let mut config = EnrichConfig::default();
        config
            .devices
            .insert("192.0.2.1".parse().unwrap(), "edge-1".into());
        let mut e = Enricher::new(&config).with_interface_names(true);
        let mut r = rec("10.1.2.3", "8.8.8.8");
        r.observation_domain = 7;
        r.in_if = Some(3);
        let a = e.enrich(&r, Some(&Names)).to_record();
        let b = e.enrich(&r, Some(&Names)).to_record();
        assert!(Arc::ptr_eq(&a.device_name, &b.device_name));
        assert_eq!(&*a.device_name, "edge-1");
        assert_eq!(a.record, r);
        assert_eq!(a.application, Some("https"));
        assert_eq!(a.src_country, Country::Private);
        assert_eq!(a.in_if_name.as_deref(), Some("xe-0/0/3"));
        assert_eq!(a.out_if_name, None);
    }

    #[test]
    fn enriching_each_equals_enriching_one_by_one() {
        let mut config = EnrichConfig::default();
        config
            .devices
            .insert("192.0.2.1".parse().unwrap(), "edge-1".into());
        config.sampling.default_rate = Some(10);
        // Runs of records from three devices, one of them twice: exporter, sFlow agent, other
        // exporter, then the first exporter again.
        let mut records = Vec::new();
        for (i, (src, dst)) in [
            ("10.1.2.3", "8.8.8.8"),
            ("2606:4700::1", "fd00::1"),
            ("8.8.4.4", "192.168.1.1"),
            ("1.1.1.1", "9.9.9.9"),
            ("172.16.0.1", "2001:db8::1"),
            ("8.8.8.8", "8.8.4.4"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = rec(src, dst);
            // Interface names are known in domain 7 only.
            r.observation_domain = if i == 1 { 8 } else { 7 };
            r.in_if = Some(i as u32);
            match i {
                2 | 3 => r.agent = Some("203.0.113.5".parse().unwrap()),
                4 => r.exporter = "192.0.2.9:9995".parse().unwrap(),
                _ => {}
            }
            r.sampling_rate = (i == 3).then_some(512);
            records.push(r);
        }
        // Every lookup on, so that a part one record sets and the next does not would show
        // (a run's records share one value).
        let networks = Arc::new(
            Networks::from_yaml(
                "10.0.0.0/8: {name: corp, asn: 64500}\n8.8.8.0/24: {name: google-dns}\n",
            )
            .unwrap(),
        );
        let country = Arc::new(CountryDb::from_bytes(fixture("country-test.mmdb")).unwrap());
        let asn = Arc::new(AsnDb::from_bytes(fixture("asn-test.mmdb")).unwrap());
        let enricher = || {
            Enricher::new(&config)
                .with_interface_names(true)
                .with_countries(true)
                .with_networks(Arc::clone(&networks))
                .with_country_db(Arc::clone(&country))
                .with_asn_db(Arc::clone(&asn))
        };
        let mut one = enricher();
        let expected: Vec<EnrichedRecord> = records
            .iter()
            .map(|r| one.enrich(r, Some(&Names)).to_record())
            .collect();
        let mut each = enricher();
        let mut got = Vec::new();
        each.enrich_each(&records, Some(&Names), |e| got.push(e.to_record()));
        assert_eq!(got, expected);
        let nets: Vec<_> = got
            .iter()
            .map(|e| (e.src_net.as_ref().map(|n| &*n.name), e.src_as))
            .collect();
        assert_eq!(nets[0], (Some("corp"), Some(64500)));
        assert_eq!(nets[1].0, None);
        assert!(got.iter().any(|e| e.dst_net.is_some()) && got.iter().any(|e| e.dst_net.is_none()));
        assert!(got.iter().any(|e| e.src_country == Country::Private));
        assert!(
            got.iter().any(|e| e.in_if_name.is_some())
                && got.iter().any(|e| e.in_if_name.is_none())
        );
        assert_eq!(each.stats(), one.stats());
        let devices: Vec<&str> = got.iter().map(|e| &*e.device_name).collect();
        assert_eq!(
            devices,
            [
                "edge-1",
                "edge-1",
                "203.0.113.5",
                "203.0.113.5",
                "192.0.2.9",
                "edge-1"
            ]
        );
        let mut none = Enricher::new(&config);
        none.enrich_each(&[], None, |_| panic!("no records"));
        assert_eq!(none.stats().records, 0);
    }
    #[test]
    fn geoip_country_and_asn() {
        let country = Arc::new(CountryDb::from_bytes(fixture("country-test.mmdb")).unwrap());
        let asn = Arc::new(AsnDb::from_bytes(fixture("asn-test.mmdb")).unwrap());
        let mut e = Enricher::new(&EnrichConfig::default())
            .with_country_db(country)
            .with_asn_db(asn);
        let mut r = rec("8.8.8.8", "1.1.1.1");
        r.dst_as = Some(64500);
        let x = e.enrich(&r, None);
        assert_eq!(x.src_country.as_str(), "US");
        assert_eq!(x.dst_country.as_str(), "AU");
        assert_eq!(x.src_as, Some(15169), "from the ASN database");
        assert_eq!(x.dst_as, Some(64500), "the record's AS wins");
        let r = rec("192.168.1.1", "9.9.9.9");
        let x = e.enrich(&r, None);
        assert_eq!(x.src_country.as_str(), "Private IP");
        assert_eq!(x.dst_country.as_str(), "");
        assert_eq!((x.src_as, x.dst_as), (None, None));
    }

    #[test]
    fn cached_geoip_answers_are_the_databases() {
        let country = Arc::new(CountryDb::from_bytes(fixture("country-test.mmdb")).unwrap());
        let asn = Arc::new(AsnDb::from_bytes(fixture("asn-test.mmdb")).unwrap());
        let mut e = Enricher::new(&EnrichConfig::default())
            .with_country_db(Arc::clone(&country))
            .with_asn_db(Arc::clone(&asn));
        // Addresses the test databases know and do not know, each seen several times with
        // others in between, and more of them than the cache holds.
        let known: [IpAddr; 4] = [
            "8.8.8.8".parse().unwrap(),
            "1.1.1.1".parse().unwrap(),
            "2001:4860:4860::8888".parse().unwrap(),
            "9.9.9.9".parse().unwrap(),
        ];
        let spread = (0..3 * crate::addr_cache::SLOTS as u32)
            .map(|i| IpAddr::from(std::net::Ipv4Addr::from_bits(0x0100_0000 + i * 9973)));
        let addrs: Vec<IpAddr> = known.into_iter().cycle().take(64).chain(spread).collect();
        for round in 0..2 {
            for pair in addrs.chunks(2) {
                let [src, dst] = [pair[0], *pair.last().unwrap()];
                let mut r = rec("8.8.8.8", "8.8.8.8");
                (r.src_addr, r.dst_addr) = (Some(src), Some(dst));
                let x = e.enrich(&r, None);
                for (addr, got_country, got_as) in [
                    (src, x.src_country, x.src_as),
                    (dst, x.dst_country, x.dst_as),
                ] {
                    let (want_country, want_as) = if special::is_global(addr) {
                        let c = country.country(addr).unwrap();
                        (
                            c.map_or(Country::Unknown, Country::Iso),
                            asn.asn(addr).unwrap(),
                        )
                    } else {
                        (Country::Private, None)
                    };
                    assert_eq!(got_country, want_country, "{addr} round {round}");
                    assert_eq!(got_as, want_as, "{addr} round {round}");
                }
            }
        }
        assert_eq!(e.stats().geo_lookup_errors + e.stats().asn_lookup_errors, 0);
    }

    #[test]
    fn networks_by_longest_prefix_and_their_as_after_the_records() {
        let networks = Networks::from_yaml(
            "10.0.0.0/8: {name: corp, tenant: acme, asn: 64500}\n\
             10.1.0.0/16: {name: par1, site: par1}\n\
             8.8.8.0/24: {name: google-dns, asn: 64999}\n\
             2001:db8::/32: {name: lab, role: test}\n",
        )
        .unwrap();
        let asn = Arc::new(AsnDb::from_bytes(fixture("asn-test.mmdb")).unwrap());
        let mut e = Enricher::new(&EnrichConfig::default())
            .with_asn_db(asn)
            .with_networks(Arc::new(networks));
        let r = rec("10.1.2.3", "8.8.8.8");
        let x = e.enrich(&r, None);
        let (src, dst) = (x.src_net.unwrap(), x.dst_net.unwrap());
        assert_eq!((&*src.name, &*src.site, &*src.tenant), ("par1", "par1", ""));
        assert_eq!(&*dst.name, "google-dns");
        assert_eq!(
            x.src_as, None,
            "the matched /16 has no AS; the /8's is not inherited"
        );
        assert_eq!(
            x.dst_as,
            Some(64999),
            "the networks file before the ASN database"
        );
        let owned = x.to_record();
        assert_eq!(owned.src_net.as_deref().map(|n| &*n.name), Some("par1"));

        let mut r = rec("10.200.0.1", "1.1.1.1");
        r.src_as = Some(65001);
        let x = e.enrich(&r, None);
        assert_eq!(x.src_net.map(|n| &*n.name), Some("corp"));
        assert_eq!(x.src_as, Some(65001), "the exporter's AS wins");
        assert_eq!(x.dst_net, None);
        assert_eq!(x.dst_as, Some(13335), "no network: the ASN database");

        let r = rec("2001:db8::1", "fd00::1");
        let x = e.enrich(&r, None);
        assert_eq!(x.src_net.map(|n| &*n.role), Some("test"));
        assert_eq!(x.dst_net, None);

        // An empty table is not consulted.
        let mut none = Enricher::new(&EnrichConfig::default()).with_networks(Arc::default());
        assert_eq!(none.enrich(&rec("10.1.2.3", "8.8.8.8"), None).src_net, None);
    }

    #[test]
    fn interface_names_only_when_enabled() {
        let mut r = rec("8.8.8.8", "1.1.1.1");
        r.observation_domain = 7;
        r.in_if = Some(3);
        let mut off = Enricher::new(&EnrichConfig::default());
        assert_eq!(off.enrich(&r, Some(&Names)).in_if_name, None);
        let mut on = Enricher::new(&EnrichConfig::default()).with_interface_names(true);
        let x = on.enrich(&r, Some(&Names));
        assert_eq!(x.in_if_name.as_deref(), Some("xe-0/0/3"));
        assert_eq!(x.out_if_name, None);
    }
}
