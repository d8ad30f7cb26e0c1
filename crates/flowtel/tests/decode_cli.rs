//! `flowtel decode` behaviour that does not depend on what the captures contain: exit status,
//! the stderr summary, filters and the text layout's datagram headers.

mod common;

use flowtel_pcap as pcap;

fn fixture(name: &str) -> String {
    common::fixtures()
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

#[test]
fn a_missing_file_fails_with_its_name() {
    let out = common::flowtel(&["decode", "/nonexistent/exporter.pcap"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot read capture /nonexistent/exporter.pcap"),
        "{stderr}"
    );
    assert!(stderr.contains("No such file"), "{stderr}");
}

#[test]
fn a_file_that_is_not_a_capture_fails() {
    let out = common::flowtel(&["decode", &fixture("tshark-totals.txt")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "cannot read capture {}: not a pcap or pcapng file: it starts with 23207473 (\"# ts\"), \
             where a pcap file starts with a1b2c3d4 or d4c3b2a1 and a pcapng file with 0a0d0d0a",
            fixture("tshark-totals.txt")
        )),
        "{stderr}"
    );
}

#[test]
fn a_truncated_capture_still_decodes_what_it_holds_and_exits_zero() {
    let bytes = std::fs::read(fixture("softflowd-ipfix.pcap")).unwrap();
    let path = std::env::temp_dir().join(format!("flowtel-cut-{}.pcap", std::process::id()));
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let out = common::flowtel(&["decode", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: capture is truncated"), "{stderr}");
    let whole = pcap::read_all(fixture("softflowd-ipfix.pcap"))
        .unwrap()
        .len();
    assert!(
        stderr.contains(&format!("{} UDP datagrams", whole - 1)),
        "{stderr}"
    );
}

#[test]
fn the_summary_reports_the_capture_counters() {
    for name in ["softflowd-v5.pcap", "pmacct-sfprobe-sr10.pcap"] {
        let datagrams = pcap::read_all(fixture(name)).unwrap().len();
        assert!(datagrams > 0);
        let out = common::flowtel(&["decode", &fixture(name)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "capture    {datagrams} packets, {datagrams} UDP datagrams"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("datagrams  {datagrams} decoded")),
            "{stderr}"
        );
    }
}

#[test]
fn port_filter_skips_datagrams_to_other_ports() {
    let datagrams = pcap::read_all(fixture("softflowd-v9.pcap")).unwrap();
    let port = datagrams[0].dst.port().to_string();
    let other = (datagrams[0].dst.port() + 1).to_string();
    let out = common::flowtel(&["decode", &fixture("softflowd-v9.pcap"), "--port", &other]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "datagrams  0 decoded ({} to other ports ignored)",
            datagrams.len()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let out = common::flowtel(&["decode", &fixture("softflowd-v9.pcap"), "--port", &port]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("datagrams  {} decoded:", datagrams.len())),
        "{stderr}"
    );
}

#[test]
fn text_output_has_one_header_line_per_datagram() {
    let datagrams = pcap::read_all(fixture("pmacct-nfprobe-v9.pcap")).unwrap();
    let (text, _) = common::decode_fixture("pmacct-nfprobe-v9", "text");
    let headers: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(headers.len(), datagrams.len(), "{text}");
    for (line, datagram) in headers.iter().zip(&datagrams) {
        // e.g. `2023-11-14 22:13:20.000000  127.0.0.1:41234 -> 127.0.0.1:21009  netflow_v9 ...`
        assert!(line.starts_with("20"), "{line}");
        assert!(
            line.contains(&format!("  {} -> {}  ", datagram.src, datagram.dst)),
            "{line}"
        );
        assert!(
            line.contains(&format!("  {} bytes", datagram.payload.len())),
            "{line}"
        );
    }
}

#[test]
fn unknown_formats_are_rejected_by_the_parser() {
    let out = common::flowtel(&["decode", &fixture("softflowd-v5.pcap"), "--format", "xml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'xml'"));
}

/// A pcapng capture (link type RAW, IPv6) of one UDP datagram from `[2001:db8::7]:6343`.
fn pcapng_with_udp_payload(payload: &[u8]) -> Vec<u8> {
    pcapng_with_udp_payloads(&[payload])
}

/// A pcapng capture (link type RAW, IPv6) of UDP datagrams from `[2001:db8::7]:6343`, one
/// microsecond apart.
fn pcapng_with_udp_payloads(payloads: &[&[u8]]) -> Vec<u8> {
    fn block(block_type: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = (body.len() + 12) as u32;
        [
            block_type.to_le_bytes().as_slice(),
            &len.to_le_bytes(),
            &body,
            &len.to_le_bytes(),
        ]
        .concat()
    }
    let packet = |payload: &[u8]| {
        let mut udp = Vec::new();
        udp.extend_from_slice(&6343u16.to_be_bytes());
        udp.extend_from_slice(&6343u16.to_be_bytes());
        udp.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[17, 64]);
        ip.extend_from_slice(
            &"2001:db8::7"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        ip.extend_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        ip.extend_from_slice(&udp);
        ip
    };
    let shb = [
        0x1a2b_3c4du32.to_le_bytes().as_slice(),
        &1u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &(-1i64).to_le_bytes(),
    ]
    .concat();
    let idb = [
        101u16.to_le_bytes().as_slice(),
        &[0, 0],
        &0u32.to_le_bytes(),
    ]
    .concat();
    let mut out = [block(0x0a0d_0d0a, &shb), block(1, &idb)].concat();
    for (i, payload) in payloads.iter().enumerate() {
        let ip = packet(payload);
        // 2023-11-14 22:13:20 UTC in microseconds.
        let ts: u64 = 1_700_000_000_000_000 + i as u64;
        let epb = [
            0u32.to_le_bytes().as_slice(),
            &((ts >> 32) as u32).to_le_bytes(),
            &(ts as u32).to_le_bytes(),
            &(ip.len() as u32).to_le_bytes(),
            &(ip.len() as u32).to_le_bytes(),
            &ip,
        ]
        .concat();
        out.extend(block(6, &epb));
    }
    out
}

#[test]
fn data_waiting_for_its_template_says_so_in_text_output() {
    use flowtel_decode::{FlowProtocol, FlowRecord};
    use flowtel_encode::{ExportVersion, FlowExporter};
    let mut exporter = FlowExporter::new(ExportVersion::NetflowV9, 7, 1_700_000_000_000);
    let mut flow = FlowRecord::new(
        "192.0.2.1:2055".parse().unwrap(),
        FlowProtocol::NetflowV9,
        0,
    );
    flow.src_addr = Some("10.0.0.1".parse().unwrap());
    flow.dst_addr = Some("192.0.2.80".parse().unwrap());
    flow.ip_protocol = 6;
    flow.src_port = 40_000;
    flow.dst_port = 443;
    flow.packets = 3;
    flow.bytes = 1_800;
    let now = 1_700_000_000_000;
    // Data before its template (the exporter restarted, or the template was lost), then the
    // template with more data.
    let data_only = exporter.datagram(now, false, std::slice::from_ref(&flow));
    let with_template = exporter.datagram(now, true, std::slice::from_ref(&flow));
    let path = std::env::temp_dir().join(format!("flowtel-held-{}.pcapng", std::process::id()));
    std::fs::write(
        &path,
        pcapng_with_udp_payloads(&[&data_only, &with_template]),
    )
    .unwrap();
    let path_str = path.to_str().unwrap().to_owned();
    let out = common::flowtel(&["decode", &path_str, "--format", "text"]);
    std::fs::remove_file(&path).unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let headers: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(
        headers[0],
        format!(
            "2023-11-14 22:13:20.000000  [2001:db8::7]:6343 -> [2001:db8::1]:6343  netflow_v9  \
             {} bytes  0 records, 1 data set held until template 256 arrives",
            data_only.len()
        ),
        "{text}"
    );
    // The template's datagram releases the held set: its own record and the held one.
    assert!(headers[1].ends_with("  domain 7  2 records"), "{text}");
}

#[test]
fn sflow_counter_samples_print_as_counter_records() {
    use flowtel_decode::InterfaceCounters;
    use flowtel_encode::sflow::{CounterData, CounterSample, Datagram, Sample};
    let datagram = Datagram {
        agent: Some("192.0.2.9".parse().unwrap()),
        sub_agent_id: 3,
        sequence: 7,
        uptime_ms: 1000,
        samples: vec![Sample::Counters(CounterSample {
            expanded: false,
            sequence: 11,
            source_id_type: 0,
            source_id_index: 5,
            records: vec![CounterData::Interface(InterfaceCounters {
                if_index: 5,
                if_type: 6,
                if_speed: 10_000_000_000,
                if_status: 3,
                in_octets: 123_456,
                out_octets: 654_321,
                in_errors: 2,
                ..InterfaceCounters::default()
            })],
        })],
    };
    let path = std::env::temp_dir().join(format!("flowtel-counters-{}.pcapng", std::process::id()));
    std::fs::write(&path, pcapng_with_udp_payload(&datagram.to_bytes())).unwrap();
    let path_str = path.to_str().unwrap().to_owned();
    let json = common::flowtel(&["decode", &path_str]);
    let text = common::flowtel(&["decode", &path_str, "--format", "text"]);
    std::fs::remove_file(&path).unwrap();

    let stdout = String::from_utf8(json.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let c = &lines[0];
    assert_eq!(c["record"], "counters");
    assert_eq!(c["exporter"], "[2001:db8::7]:6343");
    assert_eq!(c["agent"], "192.0.2.9");
    assert_eq!(c["sub_agent_id"], 3);
    assert_eq!(c["if_index"], 5);
    assert_eq!(c["in_octets"], 123_456);
    assert_eq!(c["out_octets"], 654_321);
    let stderr = String::from_utf8_lossy(&json.stderr);
    assert!(stderr.contains("1 sFlow counter records"), "{stderr}");

    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        format!(
            "2023-11-14 22:13:20.000000  [2001:db8::7]:6343 -> [2001:db8::1]:6343  sflow_v5  \
             {} bytes  domain 3  agent 192.0.2.9  0 records, 1 counter records",
            datagram.to_bytes().len()
        )
    );
    assert!(
        text.contains("counters if 5 type 6 speed 10G status up/up  in 123456 B"),
        "{text}"
    );
}

/// Decode `payload` (one UDP datagram) with extra `args`; (JSON lines, text, stderr).
fn decode_payload(payload: &[u8], args: &[&str]) -> (Vec<serde_json::Value>, String, String) {
    let path = std::env::temp_dir().join(format!(
        "flowtel-payload-{}-{}.pcapng",
        std::process::id(),
        payload.len()
    ));
    std::fs::write(&path, pcapng_with_udp_payload(payload)).unwrap();
    let path_str = path.to_str().unwrap().to_owned();
    let mut json_args = vec!["decode", path_str.as_str()];
    json_args.extend_from_slice(args);
    let json = common::flowtel(&json_args);
    json_args.extend_from_slice(&["--format", "text"]);
    let text = common::flowtel(&json_args);
    std::fs::remove_file(&path).unwrap();
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let lines = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        lines,
        String::from_utf8(text.stdout).unwrap(),
        String::from_utf8_lossy(&json.stderr).into_owned(),
    )
}

#[test]
fn sflow_drop_notifications_print_as_drop_records() {
    use flowtel_encode::sflow::{Datagram, Sample};
    // sFlow discarded packet (enterprise 0, format 5): sequence 4, source 0:7, 0 unreported,
    // in 7, out 0, reason 259 (no_buffer_space), one sampled header record.
    let frame: Vec<u8> = [
        &[0, 0, 0x5e, 0, 0x53, 1, 0, 0, 0x5e, 0, 0x53, 2, 0x08, 0x00][..],
        &[
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
        &[
            0x01, 0xbb, 0xc0, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0, 0,
        ],
    ]
    .concat();
    let mut header = Vec::new();
    for v in [1u32, 54, 4, frame.len() as u32] {
        header.extend_from_slice(&v.to_be_bytes());
    }
    header.extend_from_slice(&frame);
    header.resize(header.len().next_multiple_of(4), 0); // XDR padding
    let mut body = Vec::new();
    for v in [4u32, 0, 7, 0, 7, 0, 259, 1, 1, header.len() as u32] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    body.extend_from_slice(&header);
    let datagram = Datagram {
        agent: Some("192.0.2.9".parse().unwrap()),
        sub_agent_id: 0,
        sequence: 1,
        uptime_ms: 1000,
        samples: vec![Sample::Other {
            data_format: 5,
            data: body,
        }],
    };
    let (lines, text, stderr) = decode_payload(&datagram.to_bytes(), &[]);
    assert_eq!(lines.len(), 1);
    let d = &lines[0];
    assert_eq!(
        (&d["record"], &d["reason"], &d["reason_code"]),
        (&"drop".into(), &"no_buffer_space".into(), &259.into())
    );
    assert_eq!(
        (&d["in_if"], &d["out_if"]),
        (&7.into(), &serde_json::Value::Null)
    );
    assert_eq!(d["packet"]["src_addr"], "10.0.0.1");
    assert_eq!(d["packet"]["dst_port"], 49152);
    assert!(
        text.contains("drop reason=no_buffer_space(259) in=7 out=- 10.0.0.1:443 -> 10.0.0.2:49152 tcp bytes=54"),
        "{text}"
    );
    assert!(
        stderr.contains("0 sFlow counter records; 1 sFlow drop notifications"),
        "{stderr}"
    );
}

#[test]
fn templates_and_unmapped_elements_are_shown_by_their_iana_names() {
    use flowtel_encode::{ExportVersion, FieldSpec, MessageHeader, MessageWriter};
    let mut w = MessageWriter::new(
        ExportVersion::Ipfix,
        MessageHeader {
            export_time_secs: 1_700_000_000,
            sys_uptime_ms: 0,
            sequence: 1,
            domain: 3,
        },
    );
    w.template(
        256,
        &[
            FieldSpec::new(8, 4),
            FieldSpec::new(84, 8),
            FieldSpec::new(40, 4),
            FieldSpec::enterprise(137, 4, 2636),
        ],
    );
    w.data_record(
        256,
        &[
            &[10, 0, 0, 1][..],
            b"sampler1",
            &1234u32.to_be_bytes(),
            &7u32.to_be_bytes(),
        ]
        .concat(),
    );
    let payload = w.finish();
    let (lines, text, _) = decode_payload(&payload, &[]);
    let t = &lines[0];
    assert_eq!(
        (&t["record"], &t["id"], &t["domain"]),
        (&"template".into(), &256.into(), &3.into())
    );
    assert_eq!(t["fields"][0]["name"], "sourceIPv4Address");
    assert_eq!(t["fields"][1]["name"], "samplerName");
    assert_eq!(t["fields"][3]["enterprise"], 2636);
    assert!(t["fields"][3].get("name").is_none());
    let f = &lines[1];
    assert_eq!(f["record"], "flow");
    let unknown = &f["unknown_fields"];
    assert_eq!(
        (&unknown[0]["name"], &unknown[0]["shown"]),
        (&"samplerName".into(), &"\"sampler1\"".into())
    );
    assert_eq!(
        (&unknown[1]["name"], &unknown[1]["shown"]),
        (&"exportedOctetTotalCount".into(), &"1234".into())
    );
    assert_eq!(
        (&unknown[2]["value"], &unknown[2]["shown"]),
        (&"00000007".into(), &"0x00000007".into())
    );
    assert!(
        text.contains(
            "template 256 domain 3: sourceIPv4Address(8)/4 samplerName(84)/8 \
             exportedOctetTotalCount(40)/4 2636/137/4"
        ),
        "{text}"
    );
    assert!(
        text.contains("samplerName=\"sampler1\" exportedOctetTotalCount=1234 2636/137=0x00000007"),
        "{text}"
    );

    // The same capture with the Juniper example's mapping: 2636/137 becomes a named field.
    let config = common::repo().join("examples/decoder-fields-juniper.yaml");
    let (lines, text, _) = decode_payload(&payload, &["--config", config.to_str().unwrap()]);
    assert_eq!(
        lines[1]["custom_fields"],
        serde_json::json!([{"name": "juniper_cpid", "value": 7}])
    );
    assert!(text.contains("juniper_cpid=7"), "{text}");
}
