//! Wire formats -> [`FlowRecord`].
//!
//! `flowtel-decode` turns one UDP datagram from a flow exporter into normalized
//! [`FlowRecord`]s. It auto-detects NetFlow v5, NetFlow v9 (RFC 3954), IPFIX (RFC 7011) and
//! sFlow v5 from the datagram header, keeps the per-exporter state those formats need
//! (templates, options data such as sampling rates and interface names) and never panics on
//! any input: every problem becomes a counted, typed error.
//!
//! The crate has no async runtime and does no I/O beyond reading capture files in [`pcap`].

pub mod record;

pub use record::{FlowDirection, FlowProtocol, FlowRecord, RawField, SamplingSource};
