//! `flowtel decode` behaviour that does not depend on what the captures contain: exit status,
//! the stderr summary, filters and the text layout's datagram headers.

mod common;

use flowtel_decode::pcap;

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
    assert!(stderr.contains("not a pcap or pcapng capture"), "{stderr}");
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
