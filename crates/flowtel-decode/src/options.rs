//! State learnt from options data: sampling rates per sampler, the exporter's system init
//! time, and interface / VRF names.
//!
//! Sampling rates are kept per template scope (exporter, version, domain) and sampler id:
//! RFC 7011 §4.1/§4.2-style options records carry a rate (IE 34 samplingInterval, 50
//! samplerRandomInterval, 305/306 samplingPacketInterval/Space, 309/310 samplingSize/
//! Population) with an optional sampler id (IE 48 samplerId, 302 selectorId; NetFlow v9
//! FLOW_SAMPLER_ID 48). A record without a sampler id sets the scope's default rate.
//! Names are kept per (exporter address, domain) for enrichment: IE 82 interfaceName and 83
//! interfaceDescription keyed by IE 10 ingressInterface (or the v9 Interface scope), IE 236
//! VRFname keyed by IE 234 ingressVRFID (or 235 egressVRFID), IE 96 applicationName keyed by
//! IE 95 applicationId (RFC 6759, Cisco NBAR).

use crate::prehash::SmallKeyMap;
use std::sync::Arc;

use crate::cost;
use crate::template::{Scratch, text};

/// Options state of one template scope.
#[derive(Debug, Default)]
pub(crate) struct ScopeOptions {
    /// Sampler id (None: the scope default) -> 1-in-N rate.
    pub sampling: SmallKeyMap<Option<u64>, u32>,
    /// systemInitTimeMilliseconds (IE 160), for IPFIX IE 21/22 relative times.
    pub sys_init_ms: Option<u64>,
}

impl ScopeOptions {
    /// The rate for a data record's sampler id: exact match first, then the scope default.
    pub(crate) fn rate_for(&self, sampler_id: Option<u64>) -> Option<u32> {
        if self.sampling.is_empty() {
            return None;
        }
        self.sampling
            .get(&sampler_id)
            .copied()
            .or_else(|| sampler_id.and_then(|_| self.sampling.get(&None).copied()))
    }
}

/// Interface and VRF names of one (exporter address, domain).
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub if_names: SmallKeyMap<u32, Box<str>>,
    pub if_descriptions: SmallKeyMap<u32, Box<str>>,
    pub vrf_names: SmallKeyMap<u32, Box<str>>,
    /// IE 96 applicationName keyed by IE 95 applicationId; shared with the records.
    pub app_names: SmallKeyMap<u64, Arc<str>>,
    /// Last options data applied or data set decoded for this (exporter, domain), receive time.
    pub last_used: u64,
    /// Bytes charged for the names (not the tables themselves: see `memory::NAMES_BYTES`).
    pub bytes: usize,
}

impl Names {
    pub(crate) fn len(&self) -> usize {
        self.if_names.len()
            + self.if_descriptions.len()
            + self.vrf_names.len()
            + self.app_names.len()
    }
}

/// Insert `value` under `key` unless that would grow `map` past `room` entries. Returns
/// the bytes it adds (negative when it replaces a longer value), or `None` when refused.
fn bounded_insert<K: std::hash::Hash + Eq, V>(
    map: &mut SmallKeyMap<K, V>,
    key: K,
    value: V,
    room: bool,
    bytes: impl Fn(Option<&V>) -> usize,
) -> Option<isize> {
    if !room && !map.contains_key(&key) {
        return None;
    }
    let new = bytes(Some(&value)) as isize;
    let old = map
        .insert(key, value)
        .map_or(0, |v| bytes(Some(&v)) as isize);
    Some(new - old)
}

/// What applying an options data record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    /// No entry was refused by `max_entries`.
    pub ok: bool,
    /// Bytes added to the scope's options state (see [`crate::memory`]).
    pub scope_bytes: isize,
    /// Bytes added to the names.
    pub names_bytes: isize,
}

/// The most bytes applying the record can add: every value it carries as a new entry.
pub(crate) fn max_new_bytes(s: &Scratch<'_>, if_index: Option<u32>, app_id: Option<u64>) -> usize {
    let text_len = |v: Option<&[u8]>| v.map_or(0, |v| cost::name_bytes(v.len()));
    let mut n = 0;
    if s.sampling_rate().is_some() {
        n += cost::SAMPLING_ENTRY_BYTES;
    }
    if if_index.is_some() {
        n += text_len(s.if_name) + text_len(s.if_description);
    }
    if s.vrf_id().is_some() {
        n += text_len(s.vrf_name);
    }
    if app_id.is_some() {
        n += s.app_name.map_or(0, |v| cost::app_name_bytes(v.len()));
    }
    n
}

/// Apply one options data record. `if_index` is the record's interface (IE 10 or the v9
/// Interface scope), `app_id` its IE 95 applicationId. An entry that would grow a table past
/// `max_entries` is refused (`ok` false).
pub(crate) fn apply(
    scope: &mut ScopeOptions,
    names: &mut Names,
    s: &Scratch<'_>,
    if_index: Option<u32>,
    app_id: Option<u64>,
    max_entries: usize,
) -> Applied {
    let mut ok = true;
    let mut scope_bytes = 0isize;
    let mut names_bytes = 0isize;
    let mut add = |total: &mut isize, r: Option<isize>| match r {
        Some(b) => *total += b,
        None => ok = false,
    };
    let name_len = |v: Option<&Box<str>>| v.map_or(0, |v| cost::name_bytes(v.len()));
    if let Some(rate) = s.sampling_rate() {
        let room = scope.sampling.len() < max_entries;
        let r = bounded_insert(&mut scope.sampling, s.sampler_id(), rate, room, |_| {
            cost::SAMPLING_ENTRY_BYTES
        });
        add(&mut scope_bytes, r);
    }
    if let Some(init) = s.sys_init_ms() {
        scope.sys_init_ms = Some(init);
    }
    if let Some(idx) = if_index {
        if let Some(name) = s.if_name {
            let room = names.len() < max_entries;
            let r = bounded_insert(&mut names.if_names, idx, text(name), room, name_len);
            add(&mut names_bytes, r);
        }
        if let Some(desc) = s.if_description {
            let room = names.len() < max_entries;
            let r = bounded_insert(&mut names.if_descriptions, idx, text(desc), room, name_len);
            add(&mut names_bytes, r);
        }
    }
    if let (Some(vrf), Some(name)) = (s.vrf_id(), s.vrf_name) {
        let room = names.len() < max_entries;
        let r = bounded_insert(&mut names.vrf_names, vrf, text(name), room, name_len);
        add(&mut names_bytes, r);
    }
    // RFC 6759 §5: an options template scoped by applicationId announcing applicationName
    // (Cisco NBAR's "application table").
    if let (Some(id), Some(name)) = (app_id, s.app_name) {
        let room = names.len() < max_entries;
        let name: Arc<str> = text(name).into();
        let r = bounded_insert(&mut names.app_names, id, name, room, |v| {
            v.map_or(0, |v| cost::app_name_bytes(v.len()))
        });
        add(&mut names_bytes, r);
    }
    Applied {
        ok,
        scope_bytes,
        names_bytes,
    }
}
