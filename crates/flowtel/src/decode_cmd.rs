//! `flowtel decode FILE`: decode every UDP datagram of a capture and print its records.
//!
//! Each datagram is decoded with its sender as the exporter, by one [`Decoder`] for the whole
//! capture (so templates learnt early decode data later), with unknown fields kept. Records go
//! to stdout as JSON lines or as readable text; a summary goes to stderr.
//!
//! So a user can see what a device sends, every template the capture defines is listed field by
//! field with each element's IANA name (`flowtel_decode::iana`), and the elements flowtel does
//! not map are shown on each record by name with their value (as their IANA data type reads,
//! hex otherwise). sFlow drop notifications are listed as drop records. The exit status is 0
//! whenever the capture could be opened: decode errors are part of the output, not failures.
//!
//! `--format protobuf` and `--format flow-json` write the flow records as the per-flow sinks
//! send them (`flowtel_records`): enriched with the configuration's defaults (device name =
//! its address, sampling rate from the record else 1, application, `Private IP` countries,
//! interface names from options data), then length-delimited `flowtel.flow.v1` messages or
//! goflow2-style JSON lines. sFlow counter records are not flows and are left out.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use flowtel::pipeline::DecoderNames;
use flowtel_decode::{
    CounterRecord, DatagramReport, DecodeOutput, Decoder, DecoderConfig, DecoderStats, DropRecord,
    FlowProtocol, FlowRecord, HeldSets, ProtocolCounts, RawField, SflowInterface, TemplateReport,
    iana,
};
use flowtel_pcap::{CaptureReader, CaptureStats, CapturedDatagram};
use flowtel_records::RecordEncoder;
use flowtel_rollup::{EnrichConfig, Enricher};
use serde_json::Value;

use crate::cli::{DecodeArgs, OutputFormat};
use crate::timefmt::utc_micros;

pub fn run(args: &DecodeArgs) -> anyhow::Result<()> {
    let mut reader = CaptureReader::open(&args.file)
        .with_context(|| format!("cannot read capture {}", args.file.display()))?;
    let base = match &args.config {
        Some(path) => crate::config::load_file(path)?.decoder.to_decoder_config(),
        None => DecoderConfig::default(),
    };
    flowtel_decode::validate_fields(&base.fields).context("decoder.fields")?;
    let mut decoder = Decoder::new(DecoderConfig {
        keep_unknown_fields: true,
        scope_includes_port: args.scope_includes_port || base.scope_includes_port,
        sflow_bytes: args.sflow_bytes.unwrap_or(base.sflow_bytes),
        ..base
    });
    let mut stdout = BufWriter::new(io::stdout().lock());
    let mut summary = Summary::default();
    let mut output = DecodeOutput::default();
    let mut capture_error = None;
    let mut stdout_closed = false;
    let mut records = FlowRecords::new();

    for item in reader.by_ref() {
        let datagram = match item {
            Ok(datagram) => datagram,
            Err(e) => {
                capture_error = Some(e);
                break;
            }
        };
        if !args.ports.is_empty() && !args.ports.contains(&datagram.dst.port()) {
            summary.filtered += 1;
            continue;
        }
        output.clear();
        let report = decoder.decode(
            datagram.src,
            &datagram.payload,
            datagram.timestamp_ns,
            &mut output,
        );
        summary.add(&report, datagram.payload.len(), &output);
        let written = match args.format {
            OutputFormat::Json => write_json(&mut stdout, &report, &output),
            OutputFormat::Text => write_text(&mut stdout, &datagram, &report, &output),
            OutputFormat::Protobuf | OutputFormat::FlowJson => {
                records.write(&mut stdout, args.format, &decoder, &output)
            }
        };
        if let Err(e) = written {
            if e.kind() == io::ErrorKind::BrokenPipe {
                // `flowtel decode x.pcap | head`: the reader has seen enough.
                stdout_closed = true;
                break;
            }
            return Err(e).context("cannot write to stdout");
        }
    }
    if !stdout_closed {
        match stdout.flush() {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                return Err(e).context("cannot write to stdout");
            }
            _ => {}
        }
    }
    eprint!(
        "{}",
        summary.render(
            &args.file.display().to_string(),
            &reader.stats(),
            decoder.stats()
        )
    );
    if let Some(e) = capture_error {
        eprintln!("warning: {e}; records before that point are shown above");
    }
    Ok(())
}

/// The per-flow formats: each flow enriched with the default configuration and encoded as
/// the sinks encode it.
#[derive(Debug)]
struct FlowRecords {
    enricher: Enricher,
    encoder: RecordEncoder,
    bytes: Vec<u8>,
    text: String,
}

impl FlowRecords {
    fn new() -> Self {
        FlowRecords {
            enricher: Enricher::new(&EnrichConfig::default()).with_interface_names(true),
            encoder: RecordEncoder::new(),
            bytes: Vec::new(),
            text: String::new(),
        }
    }

    fn write(
        &mut self,
        out: &mut impl Write,
        format: OutputFormat,
        decoder: &Decoder,
        output: &DecodeOutput,
    ) -> io::Result<()> {
        self.bytes.clear();
        self.text.clear();
        for flow in &output.flows {
            let record = self
                .enricher
                .enrich(flow, Some(&DecoderNames(decoder)))
                .to_record();
            match format {
                OutputFormat::Protobuf => self.encoder.protobuf_delimited(&record, &mut self.bytes),
                _ => self.encoder.json_line(&record, &mut self.text),
            }
        }
        out.write_all(&self.bytes)?;
        out.write_all(self.text.as_bytes())
    }
}

/// Totals for the stderr summary.
#[derive(Debug, Default)]
struct Summary {
    filtered: u64,
    by_protocol: ProtocolCounts,
    counters: u64,
    drops: u64,
}

impl Summary {
    fn add(&mut self, report: &DatagramReport, bytes: usize, output: &DecodeOutput) {
        self.by_protocol.add(report, bytes);
        self.counters += output.counters.len() as u64;
        self.drops += output.drops.len() as u64;
    }

    fn render(&self, file: &str, capture: &CaptureStats, decoder: &DecoderStats) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "flowtel decode {file}");
        let _ = writeln!(
            s,
            "  capture    {} packets, {} UDP datagrams; skipped {} non-UDP, {} non-IP, \
             {} unsupported link type; {} truncated, {} malformed; fragments: {} reassembled, \
             {} incomplete",
            capture.packets,
            capture.udp_datagrams,
            capture.skipped_non_udp,
            capture.skipped_non_ip,
            capture.unsupported_link_type,
            capture.truncated,
            capture.malformed,
            capture.fragments_reassembled,
            capture.fragments_incomplete,
        );
        let total = self.by_protocol.total();
        let mut line = format!("  datagrams  {} decoded", total.datagrams);
        if self.filtered > 0 {
            let _ = write!(line, " ({} to other ports ignored)", self.filtered);
        }
        let datagrams = self
            .by_protocol
            .iter()
            .filter(|(_, c)| c.datagrams > 0)
            .map(|(p, c)| (p.map_or("unrecognised", FlowProtocol::as_str), c.datagrams));
        let _ = write!(line, ": {}", pairs_by(datagrams));
        let _ = writeln!(s, "{line}");
        let records = self
            .by_protocol
            .iter()
            .filter_map(|(p, c)| Some((p?.as_str(), c.records)).filter(|(_, n)| *n > 0));
        let _ = writeln!(
            s,
            "  records    {} flows: {}; {} sFlow counter records; {} sFlow drop notifications",
            total.records,
            pairs_by(records),
            self.counters,
            self.drops
        );
        let _ = writeln!(
            s,
            "  errors     {}: {}",
            decoder.total_errors(),
            pairs_by(decoder.errors.iter().map(|(k, v)| (k.as_str(), *v)))
        );
        let evicted = decoder.evictions_for(flowtel_decode::StateKind::Pending);
        let still_pending = decoder.pending_held.saturating_sub(
            decoder.pending_released + decoder.pending_expired + decoder.pending_dropped + evicted,
        );
        let _ = writeln!(
            s,
            "  templates  {} learnt, {} withdrawn; {} options records applied",
            decoder.templates_learnt, decoder.templates_withdrawn, decoder.options_records
        );
        let _ = writeln!(
            s,
            "  pending    {} data sets held for a template: {} released, {} expired, \
             {} dropped (buffer full), {evicted} evicted (memory budget), {still_pending} still \
             waiting at the end",
            decoder.pending_held,
            decoder.pending_released,
            decoder.pending_expired,
            decoder.pending_dropped
        );
        let _ = writeln!(
            s,
            "  sampling   {} flow records without a known rate; limits hit: {}",
            decoder.sampling_rate_unknown,
            pairs_by(decoder.limit_hits.iter().map(|(k, v)| (k.as_str(), *v)))
        );
        s
    }
}

fn pairs_by<'a>(items: impl Iterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = items.map(|(k, v)| format!("{k}={v}")).collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" ")
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

fn write_json(
    out: &mut impl Write,
    report: &DatagramReport,
    output: &DecodeOutput,
) -> io::Result<()> {
    for t in &report.templates {
        serde_json::to_writer(&mut *out, &template_json(t))?;
        out.write_all(b"\n")?;
    }
    for flow in &output.flows {
        serde_json::to_writer(&mut *out, &flow_json(flow))?;
        out.write_all(b"\n")?;
    }
    for counters in &output.counters {
        serde_json::to_writer(&mut *out, &counters_json(counters))?;
        out.write_all(b"\n")?;
    }
    for drop in &output.drops {
        serde_json::to_writer(&mut *out, &drop_json(drop))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A template as JSON, `"record": "template"`, each field with its IANA name when it has one.
fn template_json(t: &TemplateReport) -> Value {
    let fields: Vec<Value> = t
        .fields
        .iter()
        .map(|f| {
            let mut v = serde_json::json!({
                "enterprise": f.enterprise,
                "id": f.id,
                "length": f.length,
            });
            if let Value::Object(map) = &mut v {
                if f.scope {
                    map.insert("scope".to_owned(), Value::from(true));
                } else if let Some(name) = iana::name(f.enterprise, f.id) {
                    map.insert("name".to_owned(), Value::from(name));
                }
            }
            v
        })
        .collect();
    serde_json::json!({
        "record": "template",
        "domain": t.domain,
        "id": t.id,
        "options": t.options,
        "fields": fields,
    })
}

/// A field flowtel does not map as JSON: enterprise, id, its name when it has one, the value
/// as its data type reads and the raw bytes in hex.
fn unknown_json(f: &RawField) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        if let Some(name) = iana::name(f.enterprise, f.id) {
            map.insert("name".to_owned(), Value::from(name));
        }
        let shown = iana::render(iana::data_type(f.enterprise, f.id), &f.value);
        map.insert("shown".to_owned(), Value::from(shown));
    }
    v
}

/// An sFlow drop notification as JSON, `"record": "drop"`, the reason by name and code.
fn drop_json(drop: &DropRecord) -> Value {
    let mut value = serde_json::to_value(drop).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("record".to_owned(), Value::from("drop"));
        map.insert("reason_code".to_owned(), Value::from(drop.reason.0));
        map.insert("packet".to_owned(), flow_json(&drop.packet));
    }
    value
}

/// A flow record as JSON: every [`FlowRecord`] field, MACs as `aa:bb:cc:dd:ee:ff` strings, and
/// `"record": "flow"`.
fn flow_json(flow: &FlowRecord) -> Value {
    let mut value = serde_json::to_value(flow).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("record".to_owned(), Value::from("flow"));
        for (key, mac) in [("src_mac", flow.src_mac), ("dst_mac", flow.dst_mac)] {
            map.insert(
                key.to_owned(),
                mac.map_or(Value::Null, |m| Value::from(mac_str(m))),
            );
        }
        if !flow.unknown_fields.is_empty() {
            let fields = flow.unknown_fields.iter().map(unknown_json).collect();
            map.insert("unknown_fields".to_owned(), Value::Array(fields));
        }
    }
    value
}

/// An sFlow counter record as JSON, with `"record": "counters"`.
fn counters_json(counters: &CounterRecord) -> Value {
    let mut value = serde_json::to_value(counters).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("record".to_owned(), Value::from("counters"));
    }
    value
}

fn mac_str(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/// "1 data set held until template 256 arrives", "3 data sets held until templates 256, 257
/// arrive".
fn held_text(held: &HeldSets) -> String {
    let ids = held.template_ids();
    let mut list = ids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if held.sets > ids.len() && ids.len() == HeldSets::MAX_IDS {
        list.push_str(", …");
    }
    format!(
        "{} data set{} held until template{} {list} arrive{}",
        held.sets,
        if held.sets == 1 { "" } else { "s" },
        if ids.len() == 1 { "" } else { "s" },
        if ids.len() == 1 { "s" } else { "" },
    )
}

fn write_text(
    out: &mut impl Write,
    datagram: &CapturedDatagram,
    report: &DatagramReport,
    output: &DecodeOutput,
) -> io::Result<()> {
    let protocol = report.protocol.map_or("unrecognised", |p| p.as_str());
    let mut header = format!(
        "{}  {} -> {}  {}  {} bytes",
        utc_micros(datagram.timestamp_ns),
        datagram.src,
        datagram.dst,
        protocol,
        datagram.payload.len()
    );
    if let Some(flow) = output.flows.first() {
        let _ = write!(header, "  domain {}", flow.observation_domain);
        if let Some(agent) = flow.agent {
            let _ = write!(header, "  agent {agent}");
        }
    } else if let Some(c) = output.counters.first() {
        let _ = write!(header, "  domain {}  agent {}", c.sub_agent_id, c.agent);
    }
    let _ = write!(header, "  {} records", output.flows.len());
    if !output.counters.is_empty() {
        let _ = write!(header, ", {} counter records", output.counters.len());
    }
    if report.held.sets > 0 {
        let _ = write!(header, ", {}", held_text(&report.held));
    }
    writeln!(out, "{header}")?;
    for error in &report.errors {
        writeln!(out, "  ! {error}")?;
    }
    for t in &report.templates {
        writeln!(out, "  {}", template_line(t))?;
    }

    let rows: Vec<[String; 7]> = output.flows.iter().map(flow_columns).collect();
    let mut w = [0usize; 7];
    for row in &rows {
        for (width, cell) in w.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for (row, flow) in rows.iter().zip(&output.flows) {
        let [src, dst, proto, bytes, pkts, ifs, rate] = row;
        let mut line = format!(
            "  {src:>w0$} -> {dst:<w1$} {proto:<w2$} bytes={bytes:>w3$} pkts={pkts:>w4$} \
             {ifs:<w5$} {rate:<w6$}",
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5],
            w6 = w[6],
        );
        let extras = flow_extras(flow);
        if !extras.is_empty() {
            line.push_str("  ");
            line.push_str(&extras);
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    for counters in &output.counters {
        writeln!(out, "  {}", counters_line(counters))?;
    }
    for drop in &output.drops {
        writeln!(out, "  {}", drop_line(drop))?;
    }
    Ok(())
}

/// `template 256 domain 0: sourceIPv4Address(8)/4 ...`, field lengths `var` when variable.
fn template_line(t: &TemplateReport) -> String {
    let kind = if t.options {
        "options template"
    } else {
        "template"
    };
    let mut line = format!("{kind} {} domain {}:", t.id, t.domain);
    for f in &t.fields {
        let len = if f.length == u16::MAX {
            "var".to_owned()
        } else {
            f.length.to_string()
        };
        let name = if f.scope {
            format!("scope{}", f.id)
        } else {
            match iana::name(f.enterprise, f.id) {
                Some(n) if f.enterprise == 0 => format!("{n}({})", f.id),
                Some(n) => format!("{n}({}/{})", f.enterprise, f.id),
                None if f.enterprise == 0 => format!("{}", f.id),
                None => format!("{}/{}", f.enterprise, f.id),
            }
        };
        let _ = write!(line, " {name}/{len}");
    }
    line
}

/// `drop reason=acl(258) in=3 out=- 192.0.2.1:53 -> 192.0.2.2:54321 udp bytes=70 ...`
fn drop_line(d: &DropRecord) -> String {
    let [src, dst, proto, bytes, ..] = flow_columns(&d.packet);
    let mut line = format!(
        "drop reason={}({}) in={} out={} {src} -> {dst} {proto} bytes={bytes} source={}:{} \
         seq={} unreported={}",
        d.reason,
        d.reason.0,
        opt(d.in_if),
        opt(d.out_if),
        d.source_id_type,
        d.source_id_index,
        d.sequence,
        d.drops
    );
    let extras = flow_extras(&d.packet);
    if !extras.is_empty() {
        line.push_str("  ");
        line.push_str(&extras);
    }
    for (label, v) in [
        ("trap_group", &d.hw_trap_group),
        ("trap", &d.hw_trap),
        ("function", &d.function),
        ("linux_reason", &d.linux_reason),
    ] {
        if let Some(v) = v {
            let _ = write!(line, " {label}={v}");
        }
    }
    if let Some(q) = d.egress_queue {
        let _ = write!(line, " queue={q}");
    }
    line
}

/// The aligned columns: src, dst, protocol, bytes, packets, interfaces, sampling rate.
fn flow_columns(flow: &FlowRecord) -> [String; 7] {
    let endpoint = |addr: Option<IpAddr>, port: u16| match addr {
        Some(ip) => SocketAddr::new(ip, port).to_string(),
        None => format!("-:{port}"),
    };
    let interfaces = match (flow.in_if, flow.out_if) {
        (None, None) => String::new(),
        (i, o) => format!("if {}->{}", opt(i), opt(o)),
    };
    let rate = match flow.sampling_rate {
        Some(n) => format!("rate 1/{n}"),
        None => "rate ?".to_owned(),
    };
    [
        endpoint(flow.src_addr, flow.src_port),
        endpoint(flow.dst_addr, flow.dst_port),
        ip_protocol_name(flow.ip_protocol),
        flow.bytes.to_string(),
        flow.packets.to_string(),
        interfaces,
        rate,
    ]
}

/// Everything else the record carries, only when present.
fn flow_extras(flow: &FlowRecord) -> String {
    let mut parts: Vec<String> = Vec::new();
    if flow.ip_protocol == 6 && flow.tcp_flags != 0 {
        parts.push(format!("flags={}", tcp_flags(flow.tcp_flags)));
    }
    if let Some(t) = flow.icmp_type {
        parts.push(format!("icmp={t}/{}", opt(flow.icmp_code)));
    }
    if flow.tos != 0 {
        parts.push(format!("tos=0x{:02x}", flow.tos));
    }
    if let (Some(start), Some(end)) = (flow.flow_start_ns, flow.flow_end_ns) {
        parts.push(format!("start={}", utc_micros(start)));
        let dur = end.saturating_sub(start);
        parts.push(format!(
            "dur={}.{:03}s",
            dur / 1_000_000_000,
            dur % 1_000_000_000 / 1_000_000
        ));
    }
    if let Some(direction) = flow.direction {
        parts.push(format!("dir={}", format!("{direction:?}").to_lowercase()));
    }
    if flow.src_as.is_some() || flow.dst_as.is_some() {
        parts.push(format!("as {}->{}", opt(flow.src_as), opt(flow.dst_as)));
    }
    if flow.src_prefix_len.is_some() || flow.dst_prefix_len.is_some() {
        parts.push(format!(
            "mask /{}->/{}",
            opt(flow.src_prefix_len),
            opt(flow.dst_prefix_len)
        ));
    }
    if let Some(nh) = flow.next_hop {
        parts.push(format!("nh={nh}"));
    }
    if let Some(nh) = flow.bgp_next_hop {
        parts.push(format!("bgp_nh={nh}"));
    }
    if let Some(vlan) = flow.vlan {
        parts.push(format!("vlan={vlan}"));
    }
    if let Some(label) = flow.mpls_top_label {
        parts.push(format!("mpls={label}"));
    }
    if flow.src_mac.is_some() || flow.dst_mac.is_some() {
        let mac = |m: Option<[u8; 6]>| m.map_or_else(|| "-".to_owned(), mac_str);
        parts.push(format!("mac {}->{}", mac(flow.src_mac), mac(flow.dst_mac)));
    }
    if let Some(sampler) = flow.sampler_id {
        parts.push(format!("sampler={sampler}"));
    }
    if let Some(sample) = &flow.sflow {
        parts.push(format!(
            "sflow in={} out={} source={}:{} seq={} pool={} drops={}",
            sflow_interface(sample.input),
            sflow_interface(sample.output),
            sample.source_id_type,
            sample.source_id_index,
            sample.sequence,
            sample.sample_pool,
            sample.drops
        ));
    }
    if let Some(ttl) = flow.ip_ttl {
        parts.push(format!("ttl={ttl}"));
    }
    if let Some(label) = flow.ipv6_flow_label {
        parts.push(format!("flow_label=0x{label:05x}"));
    }
    if flow.fragment_offset.is_some_and(|o| o != 0) || flow.ip_flags.is_some_and(|f| f & 1 != 0) {
        parts.push(format!(
            "frag id={} off={} flags={}",
            opt(flow.fragment_id),
            opt(flow.fragment_offset),
            opt(flow.ip_flags)
        ));
    }
    if let Some(status) = flow.forwarding_status {
        parts.push(format!("fwd_status=0x{status:02x}"));
    }
    if flow.src_vlan.is_some() || flow.dst_vlan.is_some() {
        parts.push(format!(
            "vlans {}->{}",
            opt(flow.src_vlan),
            opt(flow.dst_vlan)
        ));
    }
    if let Some(inner) = flow.inner_vlan {
        parts.push(format!("inner_vlan={inner}"));
    }
    if flow.mpls_labels.len() > 1 {
        let labels: Vec<String> = flow
            .mpls_labels
            .as_slice()
            .iter()
            .map(u32::to_string)
            .collect();
        parts.push(format!("labels={}", labels.join("/")));
    }
    if let Some(asn) = flow.next_hop_as {
        parts.push(format!("next_as={asn}"));
    }
    if let Some(id) = flow.observation_point_id {
        parts.push(format!("obs_point={id}"));
    }
    if let Some(id) = flow.application_id {
        let name = flow.application_name.as_deref().unwrap_or("?");
        parts.push(format!("app={name}(0x{id:x})"));
    }
    if let Some(fw) = &flow.firewall {
        let event = fw.event.map_or_else(
            || "-".to_owned(),
            |e| {
                flowtel_decode::Firewall::event_name(e).map_or_else(|| e.to_string(), str::to_owned)
            },
        );
        parts.push(format!("fw={event}"));
        if let Some(x) = fw.ext_event {
            parts.push(format!("fw_ext={x}"));
        }
        if let Some(id) = fw.flow_id {
            parts.push(format!("conn={id}"));
        }
    }
    if let Some(nat) = &flow.nat {
        let end = |a: Option<IpAddr>, p: Option<u16>| match a {
            Some(ip) => SocketAddr::new(ip, p.unwrap_or(0)).to_string(),
            None => format!("-:{}", opt(p)),
        };
        parts.push(format!(
            "nat {}->{}",
            end(nat.src_addr, nat.src_port),
            end(nat.dst_addr, nat.dst_port)
        ));
        if let Some(e) = nat.event {
            let name =
                flowtel_decode::Nat::event_name(e).map_or_else(|| e.to_string(), str::to_owned);
            parts.push(format!("nat_event={name}"));
        }
    }
    for field in &flow.custom_fields {
        parts.push(format!("{}={}", field.name, field.value));
    }
    for field in &flow.unknown_fields {
        let shown = iana::render(iana::data_type(field.enterprise, field.id), &field.value);
        match iana::name(field.enterprise, field.id) {
            Some(name) => parts.push(format!("{name}={shown}")),
            None => parts.push(format!("{}/{}={shown}", field.enterprise, field.id)),
        }
    }
    parts.join(" ")
}

/// sFlow v5 flow sample `interface` values as a network engineer reads them.
fn sflow_interface(interface: SflowInterface) -> String {
    match interface {
        SflowInterface::Index(0) => "?".to_owned(),
        SflowInterface::Index(i) => i.to_string(),
        SflowInterface::Internal => "internal".to_owned(),
        SflowInterface::Discarded(reason) => format!("discarded({reason})"),
        SflowInterface::Multiple(n) => format!("multiple({n})"),
        SflowInterface::Unknown { format, value } => format!("format{format}:{value}"),
    }
}

fn counters_line(c: &CounterRecord) -> String {
    let i = &c.interface;
    let status = |bit: u32| if i.if_status & bit != 0 { "up" } else { "down" };
    let mut line = format!(
        "counters if {} type {} speed {} status {}/{}  in {} B {} ucast {} mcast {} bcast \
         {} disc {} err  out {} B {} ucast {} mcast {} bcast {} disc {} err",
        i.if_index,
        i.if_type,
        speed(i.if_speed),
        status(1),
        status(2),
        i.in_octets,
        i.in_ucast_pkts,
        i.in_multicast_pkts,
        i.in_broadcast_pkts,
        i.in_discards,
        i.in_errors,
        i.out_octets,
        i.out_ucast_pkts,
        i.out_multicast_pkts,
        i.out_broadcast_pkts,
        i.out_discards,
        i.out_errors,
    );
    if let Some(eth) = c.ethernet {
        let _ = write!(
            line,
            "  fcs_err {} align_err {}",
            eth.fcs_errors, eth.alignment_errors
        );
    }
    line
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// IANA protocol numbers a network engineer reads by name.
fn ip_protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "icmp".to_owned(),
        2 => "igmp".to_owned(),
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        41 => "ipv6".to_owned(),
        47 => "gre".to_owned(),
        50 => "esp".to_owned(),
        51 => "ah".to_owned(),
        58 => "icmp6".to_owned(),
        89 => "ospf".to_owned(),
        103 => "pim".to_owned(),
        112 => "vrrp".to_owned(),
        132 => "sctp".to_owned(),
        n => format!("proto{n}"),
    }
}

/// TCP flags as letters, FIN first (RFC 9293 §3.1, ECE/CWR from RFC 3168): `SA` is SYN+ACK.
fn tcp_flags(flags: u16) -> String {
    const LETTERS: [(u16, char); 8] = [
        (0x01, 'F'),
        (0x02, 'S'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x10, 'A'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'C'),
    ];
    LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

fn speed(bits_per_sec: u64) -> String {
    match bits_per_sec {
        0 => "?".to_owned(),
        s if s % 1_000_000_000 == 0 => format!("{}G", s / 1_000_000_000),
        s if s % 1_000_000 == 0 => format!("{}M", s / 1_000_000),
        s => format!("{s}b/s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flags_read_as_letters() {
        assert_eq!(tcp_flags(0x12), "SA");
        assert_eq!(tcp_flags(0x1b), "FSPA");
        assert_eq!(tcp_flags(0), "");
    }

    #[test]
    fn macs_and_speeds_are_human_readable() {
        assert_eq!(
            mac_str([0, 0x1b, 0x21, 0xaa, 0xbb, 0xff]),
            "00:1b:21:aa:bb:ff"
        );
        assert_eq!(speed(10_000_000_000), "10G");
        assert_eq!(speed(100_000_000), "100M");
        assert_eq!(speed(0), "?");
    }
}
