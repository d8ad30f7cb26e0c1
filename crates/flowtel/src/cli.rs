//! Command-line types (clap derive). Each subcommand's arguments live here; its code lives in
//! its own module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use flowtel::config;

#[derive(Debug, Parser)]
#[command(
    name = "flowtel",
    version,
    about = "NetFlow v5/v9, IPFIX and sFlow v5 to OpenTelemetry metrics",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand, flowtel runs the daemon (`flowtel run`) with these flags.
    #[command(flatten)]
    pub run: config::RunArgs,
}

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive flows over UDP, roll them up and export them (the default command).
    Run(config::RunArgs),
    /// Decode the flow exports in a pcap/pcapng capture and print every record.
    Decode(DecodeArgs),
    /// Validate a configuration file and print the effective configuration (file, then the
    /// OTEL_* environment, then any flags given here) as YAML, secrets redacted.
    CheckConfig {
        /// The YAML configuration file.
        file: Option<PathBuf>,
        /// Print secrets (OTLP header values, credentials in an endpoint) instead of
        /// `<redacted>`.
        #[arg(long)]
        show_secrets: bool,
        #[command(flatten)]
        run: config::RunArgs,
    },
    /// Simulate exporters sending NetFlow v9, IPFIX and sFlow v5 to a collector (demo and
    /// load generator).
    Generate(crate::generate_cmd::GenerateArgs),
    /// Run the collector and simulated exporters in one process: a top-conversations table on
    /// stdout and /metrics over HTTP, no Alloy needed.
    Demo(crate::demo_cmd::DemoArgs),
    /// Probe a running flowtel's /healthz; exit 0 when healthy (container HEALTHCHECK).
    Healthcheck(crate::healthcheck_cmd::HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Capture file (pcap or pcapng) holding NetFlow v5/v9, IPFIX or sFlow v5 datagrams.
    pub file: PathBuf,
    /// Output format on stdout; a summary always goes to stderr.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// Decode only UDP datagrams sent to this port (repeatable); default: every datagram.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Scope templates by exporter address and source port, not the address alone.
    #[arg(long)]
    pub scope_includes_port: bool,
    /// A flowtel configuration file whose `decoder:` section (fields mapped by name, limits,
    /// sflow_bytes) the decoder uses; flags given here win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Bytes of a sampled packet (sFlow, IPFIX packet sections): `frame` (layer 2, as the
    /// agent reports) or `ip` (the IP length, as NetFlow counts) [default: frame].
    #[arg(long, value_name = "frame|ip", value_parser = |s: &str| s.parse::<flowtel_decode::SflowBytes>())]
    pub sflow_bytes: Option<flowtel_decode::SflowBytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per record (flows and sFlow counters), one per line.
    Json,
    /// One block per datagram, one aligned line per record, for reading.
    Text,
    /// The flow records as flowtel.flow.v1 protobuf messages, each prefixed by its varint
    /// length (goflow2's binary format; ClickHouse's `Protobuf` format), enriched as the
    /// per-flow sinks send them.
    Protobuf,
    /// The flow records as goflow2-style JSON lines plus flowtel's enrichment fields, as the
    /// per-flow sinks send them.
    FlowJson,
}
