//! Network enrichment end to end: the real binary with a networks file, real NetFlow v5 over
//! UDP, the networks' attributes as rollup dimensions in the Prometheus exposition and as
//! flow-json fields; the file read again on SIGHUP and when it changes; a bad file refused by
//! `check-config` with its line, and kept out of a running daemon.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Daemon, V5_FLOWS, netflow_v5};

/// The networks of [`V5_FLOWS`] (10.0.0.1 → 192.0.2.7, 10.0.0.2 → 192.0.2.8), the office's
/// name being `office`.
fn networks(office: &str) -> String {
    format!(
        "10.0.0.0/8: {{name: corp, tenant: acme}}\n\
         10.0.0.0/24:\n  name: {office}\n  site: par1\n  region: eu-west\n  tenant: acme\n  asn: 64512\n\
         192.0.2.0/24: {{name: partner, role: transit}}\n\
         192.0.2.8/32: {{name: partner-dns, role: dns}}\n"
    )
}

/// The rollup line of `/metrics` whose labels contain every one of `labels`.
fn rollup_line<'a>(body: &'a str, labels: &[&str]) -> Option<&'a str> {
    body.lines()
        .find(|l| l.starts_with("flowtel_rollup_by_net") && labels.iter().all(|x| l.contains(x)))
}

/// The sample value of an exposition line (`name{labels} value [timestamp]`).
fn value(line: &str) -> Option<f64> {
    line.rsplit_once('}')?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn wait_log(d: &Daemon, text: &str, since: usize) {
    let start = Instant::now();
    while !d.stderr_text().get(since..).unwrap_or("").contains(text) {
        assert!(
            start.elapsed() < common::PATIENCE,
            "no {text:?} in the log:\n{}",
            d.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn flow_lines(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn networks_name_rollup_series_and_flow_records_and_follow_the_file() {
    let dir = common::ScratchDir::new("networks");
    let nets = dir.join("networks.yaml");
    std::fs::write(&nets, networks("office-a")).unwrap();
    let flows = dir.join("flows.jsonl");
    let config = dir.join("flowtel.yaml");
    std::fs::write(
        &config,
        format!(
            "enrichment:\n  networks_file: {}\n\
             rollups:\n  - name: by_net\n    dimensions: [src_net_name, dst_net_name, src_net_site, \
             src_net_region, src_net_tenant, dst_net_role, src_as, dst_as]\n    interval_secs: 1\n",
            nets.display()
        ),
    )
    .unwrap();
    let d = Daemon::start(&[
        "--config",
        config.to_str().unwrap(),
        "--sink",
        "prometheus",
        "--sink",
        "flow-json",
        "--flow-json-file",
        flows.to_str().unwrap(),
    ]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |seq| {
        sender
            .send_to(&netflow_v5(&V5_FLOWS, seq, 1_700_000_000, 0), d.listen)
            .unwrap()
    };

    send(0);
    let body = d.metrics_until("the office-a series", |b| {
        rollup_line(b, &["src_net_name=\"office-a\""]).is_some()
    });
    // Longest prefix on both sides: the /24 inside the /8, the /32 inside the /24. The AS
    // comes from the networks file (the v5 records carry AS 0).
    let web = rollup_line(
        &body,
        &[
            "src_net_name=\"office-a\"",
            "dst_net_name=\"partner\"",
            "src_net_site=\"par1\"",
            "src_net_region=\"eu-west\"",
            "src_net_tenant=\"acme\"",
            "dst_net_role=\"transit\"",
            "src_as=\"64512\"",
            "dst_as=\"0\"",
        ],
    );
    assert_eq!(web.and_then(value), Some(1500.0), "{body}");
    let dns = rollup_line(
        &body,
        &[
            "src_net_name=\"office-a\"",
            "dst_net_name=\"partner-dns\"",
            "dst_net_role=\"dns\"",
        ],
    );
    assert_eq!(dns.and_then(value), Some(84.0), "{body}");

    // The same attributes on each flow record.
    let start = Instant::now();
    let mut records = flow_lines(&flows);
    while records.len() < 2 {
        assert!(start.elapsed() < common::PATIENCE, "flow-json: {records:?}");
        std::thread::sleep(Duration::from_millis(100));
        records = flow_lines(&flows);
    }
    let by_dst = |dst: &str| {
        records
            .iter()
            .find(|r| r["dst_addr"] == dst)
            .unwrap_or_else(|| panic!("no record to {dst}: {records:?}"))
            .clone()
    };
    let web = by_dst("192.0.2.7");
    assert_eq!(web["src_net_name"], "office-a");
    assert_eq!(web["src_net_site"], "par1");
    assert_eq!(web["src_net_region"], "eu-west");
    assert_eq!(web["src_net_tenant"], "acme");
    assert_eq!(web["src_net_role"], "");
    assert_eq!(web["dst_net_name"], "partner");
    assert_eq!(web["dst_net_role"], "transit");
    assert_eq!(web["src_as"], 0, "the exporter's AS is as it sent it");
    assert_eq!(web["src_as_resolved"], 64512, "the networks file's AS");
    assert_eq!(web["dst_as_resolved"], 0);
    assert_eq!(by_dst("192.0.2.8")["dst_net_name"], "partner-dns");

    // SIGHUP reads the file again.
    std::fs::write(&nets, networks("office-b")).unwrap();
    let mark = d.stderr_text().len();
    d.hangup();
    wait_log(&d, "SIGHUP: configuration reloaded", mark);
    send(2);
    d.metrics_until("the office-b series", |b| {
        rollup_line(
            b,
            &["src_net_name=\"office-b\"", "dst_net_name=\"partner\""],
        )
        .is_some()
    });

    // A file that does not load is logged and the running table kept.
    let mark = d.stderr_text().len();
    std::fs::write(&nets, "10.0.0.0/8: corp\n10.0.0.0/8: again\n").unwrap();
    wait_log(&d, "does not load", mark);
    assert!(
        d.stderr_text()
            .get(mark..)
            .unwrap_or("")
            .contains(&format!("networks file {}, line 2", nets.display())),
        "{}",
        d.stderr_text()
    );
    send(4);
    d.metrics_until("office-b kept", |b| {
        common::sample(
            b,
            "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"netflow_v5\"}",
        ) == Some(3.0)
            && rollup_line(b, &["src_net_name=\"office-b\""]).is_some()
    });

    // A change of the file alone (no signal) is picked up by the poll.
    let mark = d.stderr_text().len();
    std::fs::write(&nets, networks("office-c")).unwrap();
    wait_log(&d, "networks file changed: reloaded", mark);
    send(6);
    d.metrics_until("the office-c series", |b| {
        rollup_line(b, &["src_net_name=\"office-c\""]).is_some()
    });

    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    let records = flow_lines(&flows);
    assert_eq!(records.len(), 8, "every record written: {records:?}");
    let names: Vec<&str> = records
        .iter()
        .filter(|r| r["dst_addr"] == "192.0.2.7")
        .map(|r| r["src_net_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["office-a", "office-b", "office-b", "office-c"]);
}

#[test]
fn check_config_refuses_a_bad_networks_file_naming_file_and_line() {
    let dir = common::ScratchDir::new("networks-check");
    let config = dir.join("flowtel.yaml");
    let check = |networks_file: &Path| {
        std::fs::write(
            &config,
            format!(
                "enrichment:\n  networks_file: {}\n",
                networks_file.display()
            ),
        )
        .unwrap();
        common::flowtel(&["check-config", config.to_str().unwrap()])
    };

    let csv = dir.join("networks.csv");
    std::fs::write(
        &csv,
        "prefix,name,site\n10.0.0.0/8,corp,\n# lab\n10.1.0.0/16,lab,par1\n10.0.0.0/8,again,\n",
    )
    .unwrap();
    let out = check(&csv);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "networks file {}, line 5: prefix 10.0.0.0/8 already defined on line 2",
            csv.display()
        )),
        "{stderr}"
    );

    std::fs::write(&csv, "prefix,name\n10.0.0.0/8,corp\n10.0.0.1/24,x\n").unwrap();
    let out = check(&csv);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("networks file {}, line 3: ", csv.display()))
            && stderr.contains("did you mean 10.0.0.0/24"),
        "{stderr}"
    );

    let missing = dir.join("nope.yaml");
    let out = check(&missing);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("cannot read networks file {}", missing.display())),
        "{stderr}"
    );

    // A good file: the effective configuration names it.
    std::fs::write(&csv, "prefix,name\n10.0.0.0/8,corp\n").unwrap();
    let out = check(&csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("networks_file: {}", csv.display())),
        "{stdout}"
    );
}
