//! NetFlow v9 (RFC 3954), IPFIX (RFC 7011) and NetFlow v5 encoder: writes what the decoder
//! reads.
//!
//! Two layers:
//!
//! - [`MessageWriter`] writes one export packet / message: the header, template sets, options
//!   template sets and data sets, with set lengths, record counts and padding computed. The
//!   caller supplies record bytes; it is the tool for tests of unusual layouts (sets split
//!   with `end_set`, verbatim or malformed sets with `raw_set`, template withdrawals).
//! - [`FlowExporter`] is one simulated exporter (one observation domain / source id): it keeps
//!   the sequence numbers, owns a standard IPv4 and IPv6 template of the common information
//!   elements and an options template announcing its sampling rate, and turns
//!   [`FlowRecord`](flowtel_decode::FlowRecord)s into datagrams. `flowtel generate` and the
//!   round-trip tests use it.
//!
//! Header fields follow the RFCs: the NetFlow v9 `count` is the number of records of every
//! kind in the packet and `sequence` counts export packets (RFC 3954 §5.1); the IPFIX
//! `sequence` counts data records sent before the message, templates excluded (RFC 7011 §3.1).
//! NetFlow v9 sets are padded to 32 bits (RFC 3954 §5.2, §5.3); IPFIX sets are not padded,
//! which RFC 7011 §3.3.1 allows.
//!
//! [`V5Exporter`] writes NetFlow v5 packets; [`sflow::Datagram`] writes sFlow v5 datagrams.
//!
//! `flowtel generate`, the round-trip tests and the benches use this crate; the daemon does
//! not.

mod flow;
mod message;
mod netflow_v5;
pub mod sflow;

pub use flow::{FlowExporter, SamplerSpec, TemplateIds};
pub use message::{ExportVersion, FieldSpec, MessageHeader, MessageWriter};
pub use netflow_v5::{V5_MAX_RECORDS, V5Exporter};
