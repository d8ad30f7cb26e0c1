//! flowtel as a library: the daemon and the pieces it is built from, used by the `flowtel`
//! binary's subcommands (`run`, `run --pcap`, `demo`, `check-config`) and by the tests through
//! this public interface.
//!
//! - [`config`]: the effective configuration (YAML, flags, `OTEL_*`), [`ktranslate`]: its
//!   command line translated.
//! - [`pipeline`]: decode → enrich → rollup of one datagram, and the merge of workers' windows
//!   (synchronous, no I/O).
//! - [`daemon`]: sockets, receive workers, the flush loop and shutdown.
//! - [`sinks`]: the [`sinks::Sink`] seam and every sink.
//! - [`metrics`], [`telemetry`], [`exposition`], [`http`]: flowtel's own metrics and logs, the
//!   Prometheus text format, and the `/metrics` `/healthz` `/readyz` endpoint.

pub mod clock;
pub mod config;
pub mod daemon;
pub mod exposition;
pub mod http;
pub mod ktranslate;
pub mod metrics;
pub mod pipeline;
pub mod prefix;
pub mod sinks;
pub mod telemetry;
