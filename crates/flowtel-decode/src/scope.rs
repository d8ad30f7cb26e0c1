//! What NetFlow v9 and IPFIX state is keyed by, and where a message came from.
//!
//! Kept apart from the set engine (`sets`) and the pending buffer (`pending`), which both use
//! these types, so neither module depends on the other's internals.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::options::ScopeOptions;
use crate::record::FlowProtocol;
use crate::template::{Template, TimeBase};

/// What templates are scoped by: exporter address (and source port when
/// `scope_includes_port`), protocol version, and NetFlow v9 source id (RFC 3954 §5.1) or IPFIX
/// observation domain (RFC 7011 §3.1). The template id completes the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ScopeKey {
    pub addr: IpAddr,
    pub port: u16,
    pub version: u16,
    pub domain: u32,
}

/// Templates and options state of one scope, with when each was last used (receive time, for
/// eviction: see `memory`) and the bytes charged for it.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    pub templates: HashMap<u16, TemplateSlot>,
    pub options: ScopeOptions,
    /// Last use of anything in the scope: a scope is removed only once empty and unused in the
    /// datagram being decoded.
    pub last_used: u64,
    /// Last use of `options` (options data applied, a data set of the scope decoded).
    pub options_used: u64,
    /// Bytes charged for `options` (its sampling entries).
    pub options_bytes: usize,
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
