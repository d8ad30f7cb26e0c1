//! What NetFlow v9 and IPFIX state is keyed by, and where a message came from.
//!
//! Kept apart from the set engine (`sets`) and the pending buffer (`pending`), which both use
//! these types, so neither module depends on the other's internals.

use crate::prehash::SmallKeyMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::options::ScopeOptions;
use crate::prehash;
use crate::record::FlowProtocol;
use crate::template::{Template, TimeBase};

/// What templates are scoped by: exporter address (and source port when
/// `scope_includes_port`), protocol version, and NetFlow v9 source id (RFC 3954 §5.1) or IPFIX
/// observation domain (RFC 7011 §3.1). The template id completes the key.
///
/// The key carries its hash, made from the exporter's hash taken once per datagram
/// ([`crate::prehash`]), so the scope tables never hash the address again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScopeKey {
    pub addr: IpAddr,
    pub port: u16,
    pub version: u16,
    pub domain: u32,
    /// [`prehash::exporter_hash`] of `addr`.
    pub exporter_hash: u64,
    hash: u64,
}

impl ScopeKey {
    pub fn new(addr: IpAddr, exporter_hash: u64, port: u16, version: u16, domain: u32) -> Self {
        let fields = u64::from(domain) | u64::from(version) << 32 | u64::from(port) << 48;
        ScopeKey {
            addr,
            port,
            version,
            domain,
            exporter_hash,
            hash: prehash::fold(exporter_hash, fields),
        }
    }

    /// The key of the options names of this scope's (exporter, domain).
    pub fn names_key(&self) -> NamesKey {
        NamesKey::new(self.addr, self.exporter_hash, self.domain)
    }
}

impl PartialEq for ScopeKey {
    fn eq(&self, other: &Self) -> bool {
        (self.addr, self.port, self.version, self.domain)
            == (other.addr, other.port, other.version, other.domain)
    }
}

impl Eq for ScopeKey {}

impl Hash for ScopeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// What options names (interfaces, VRFs, applications) are kept by: exporter address and
/// observation domain / source id, whatever the version. Carries its hash like [`ScopeKey`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct NamesKey {
    pub addr: IpAddr,
    pub domain: u32,
    hash: u64,
}

impl NamesKey {
    pub fn new(addr: IpAddr, exporter_hash: u64, domain: u32) -> Self {
        NamesKey {
            addr,
            domain,
            hash: prehash::fold(exporter_hash, u64::from(domain)),
        }
    }
}

impl PartialEq for NamesKey {
    fn eq(&self, other: &Self) -> bool {
        (self.addr, self.domain) == (other.addr, other.domain)
    }
}

impl Eq for NamesKey {}

impl Hash for NamesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Templates and options state of one scope, with when each was last used (receive time, for
/// eviction: see `memory`) and the bytes charged for it.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    pub templates: SmallKeyMap<u16, TemplateSlot>,
    pub options: ScopeOptions,
    /// Last use of anything in the scope: a scope is removed only once empty and unused in the
    /// datagram being decoded.
    pub last_used: u64,
    /// Last use of `options` (options data applied, a data set of the scope decoded).
    pub options_used: u64,
    /// Bytes charged for `options` (its sampling entries).
    pub options_bytes: usize,
}

impl Scope {
    /// Template `id`, marked used at `now` with the scope and its options state (which
    /// decoding a data set reads).
    pub fn use_template(&mut self, id: u16, now: u64) -> Option<Arc<Template>> {
        let slot = self.templates.get_mut(&id)?;
        slot.last_used = slot.last_used.max(now);
        self.last_used = self.last_used.max(now);
        if self.options_bytes > 0 {
            self.options_used = self.options_used.max(now);
        }
        Some(Arc::clone(&slot.template))
    }
}

/// A template of a scope.
#[derive(Debug)]
pub(crate) struct TemplateSlot {
    pub template: Arc<Template>,
    /// Last time it was learnt, refreshed or used to decode a data set (receive time).
    pub last_used: u64,
    /// Bytes charged for it.
    pub bytes: usize,
}

/// Where a message came from, shared by all its sets (and kept with a set that waits in the
/// pending buffer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub exporter: SocketAddr,
    pub protocol: FlowProtocol,
    pub received_ns: u64,
    /// The header's sequence number (RFC 3954 §5.1 packet count, RFC 7011 §3.1 data record
    /// count), copied to every record as [`crate::FlowRecord::sequence_num`].
    pub sequence: u32,
    pub base: TimeBase,
}
