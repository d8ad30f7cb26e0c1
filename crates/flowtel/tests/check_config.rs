//! `flowtel check-config`: the real binary on real files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn flowtel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowtel"));
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `text` written to `name` in the test's scratch directory.
fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unknown_key_is_rejected_with_its_name_and_line() {
    let dir = common::ScratchDir::new("check-config");
    let path = write_config(
        &dir,
        "unknown.yaml",
        "listen: [\"127.0.0.1:2055\"]\notlp:\n  endpoint: http://alloy:4317\n  compresion: gzip\n",
    );
    let out = flowtel().arg("check-config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `compresion`"), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("unknown.yaml"), "{stderr}");
}

#[test]
fn effective_config_applies_environment_over_file() {
    let dir = common::ScratchDir::new("check-config");
    let path = write_config(
        &dir,
        "valid.yaml",
        "rollup_interval_secs: 30\nsinks: [otlp, prometheus]\notlp:\n  endpoint: http://file:4317\n",
    );
    let out = flowtel()
        .arg("check-config")
        .arg(&path)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317")
        .env("OTEL_SERVICE_NAME", "edge")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rollup_interval_secs: 30"), "{stdout}");
    assert!(stdout.contains("endpoint: http://env:4317"), "{stdout}");
    assert!(stdout.contains("service_name: edge"), "{stdout}");
    assert!(stdout.contains("- prometheus"), "{stdout}");
    // The printed configuration is itself a valid configuration.
    let again = write_config(&dir, "printed.yaml", &stdout);
    let out = flowtel().arg("check-config").arg(&again).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
}

#[test]
fn ktranslate_command_line_shows_the_translated_config() {
    let out = flowtel()
        .args([
            "check-config",
            "--format=otel",
            "--otel.protocol=grpc",
            "--otel.endpoint=http://localhost:4317/",
            "--nf.port=9995",
            "--sinks=otel",
            "--rollup_interval=60",
            "--tee_logs=true",
            "--snmp=/etc/snmp.yaml",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("profile: ktranslate"), "{stdout}");
    assert!(stdout.contains("service_name: ktranslate"), "{stdout}");
    assert!(stdout.contains("tee_logs: true"), "{stdout}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    assert!(stderr.contains("--snmp"), "{stderr}");
}

#[test]
fn ktranslate_service_name_is_honoured_and_said() {
    let out = flowtel()
        .args([
            "check-config",
            "--format=otel",
            "--otel.endpoint=http://localhost:4317/",
            "--nf.port=9995",
            "--service_name=flow",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("\n  service_name: flow\n"), "{stdout}");
    assert_eq!(
        stderr,
        "note: --service_name=flow: the OTLP resource says service.name=flow\n"
    );
}

#[test]
fn decoder_section_is_printed_with_file_and_flag_values() {
    let dir = common::ScratchDir::new("check-config");
    let path = write_config(
        &dir,
        "decoder.yaml",
        "decoder:\n  scope_includes_port: true\n  max_pending_sets: 10\n",
    );
    let out = flowtel()
        .arg("check-config")
        .arg(&path)
        .args(["--max-exporters", "50", "--pending-timeout", "30"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = "decoder:
  scope_includes_port: true
  max_exporters: 50
  max_templates_per_exporter: 1024
  max_fields_per_template: 256
  max_pending_sets: 10
  memory_budget_bytes: 134217728
  pending_timeout_secs: 30
";
    assert!(stdout.contains(expected), "{stdout}");
}

/// The README's configuration block lists every default: it must equal what `check-config`
/// prints for an empty file (comments aside), so the documented defaults are the real ones.
#[test]
fn readme_configuration_block_is_the_defaults() {
    let dir = common::ScratchDir::new("check-config");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let intro = "Every key with its default";
    let start = readme.find(intro).expect("the README's defaults block");
    let block = readme[start..]
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("a yaml block after the introduction");
    let documented: serde_yaml::Value = serde_yaml::from_str(block).unwrap();

    let empty = write_config(&dir, "empty.yaml", "");
    let out = flowtel().arg("check-config").arg(&empty).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(
        documented,
        printed,
        "README block:\n{block}\ncheck-config of an empty file:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn address_errors_say_what_was_given_and_what_is_expected() {
    let dir = common::ScratchDir::new("check-config");
    let run = |args: &[&str]| {
        let out = flowtel().args(args).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for (given, expected) in [
        (
            "20553",
            "\"20553\" is a port alone: an address is ADDR:PORT, e.g. 0.0.0.0:20553 (IPv4) or [::]:20553 (IPv6)",
        ),
        (
            "127.0.0.1:99999",
            "\"127.0.0.1:99999\": port 99999 is out of range (0-65535)",
        ),
        (
            "300.1.1.1:9464",
            "\"300.1.1.1:9464\": \"300.1.1.1\" is not an IP address (names are not resolved)",
        ),
        (
            "::1",
            "\"::1\" has no port: an IPv6 address with a port is written [ADDR]:PORT, e.g. [::1]:9995",
        ),
    ] {
        let stderr = run(&["check-config", "--listen", given]);
        assert!(stderr.contains(expected), "--listen {given}: {stderr}");
        let stderr = run(&["check-config", "--prometheus-listen", given]);
        assert!(
            stderr.contains(expected),
            "--prometheus-listen {given}: {stderr}"
        );
    }
    // In a file: the key is named; a single string is accepted where a list is expected.
    let bad = write_config(
        &dir,
        "bad-listen.yaml",
        "listen: [\"0.0.0.0:9995\", \"20553\"]\n",
    );
    let stderr = run(&["check-config", bad.to_str().unwrap()]);
    assert!(
        stderr.contains("listen: \"20553\" is a port alone"),
        "{stderr}"
    );
    let one = write_config(&dir, "one-listen.yaml", "listen: \"0.0.0.0:2055\"\n");
    let out = flowtel().arg("check-config").arg(&one).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen:\n- 0.0.0.0:2055\n"));
}

#[test]
fn check_config_refuses_what_run_would_refuse_at_start() {
    let dir = common::ScratchDir::new("check-config");
    let garbage = write_config(&dir, "garbage.mmdb", "not a database");
    let zero_idle = write_config(&dir, "zero-idle.yaml", "interfaces:\n  idle_secs: 0\n");
    let zero_max = write_config(&dir, "zero-max.yaml", "interfaces:\n  max_interfaces: 0\n");
    for (args, expected) in [
        (
            vec!["--geoip-country-db", "/nonexistent/country.mmdb"],
            "cannot read GeoIP database /nonexistent/country.mmdb",
        ),
        (
            vec!["--geoip-asn-db", garbage.to_str().unwrap()],
            "invalid ASN database",
        ),
        (
            vec![
                "--otlp-endpoint",
                "https://collector.example:4317",
                "--otlp-ca-file",
                "/nonexistent/ca.pem",
            ],
            "/nonexistent/ca.pem",
        ),
        (
            vec!["--flow-rule", "drop:proto=udp"],
            "unknown key \"proto\"",
        ),
        (
            vec![
                "--sink",
                "kafka",
                "--kafka-brokers",
                "kafka-1:9092",
                "--kafka-property",
                "security.protocol=SSL",
                "--kafka-property",
                "ssl.ca.location=/nonexistent/kafka-ca.pem",
            ],
            "cannot read kafka.ssl_ca_location (ssl.ca.location) /nonexistent/kafka-ca.pem",
        ),
        (
            vec![
                "--sink",
                "kafka",
                "--kafka-brokers",
                "kafka-1:9092",
                "--kafka-property",
                "acks=1",
            ],
            "kafka.properties.acks: acks \"1\": only `all` (or -1) is supported",
        ),
        (
            vec!["--config", zero_idle.to_str().unwrap()],
            "interfaces.idle_secs: must be >= 1",
        ),
        (
            vec!["--config", zero_max.to_str().unwrap()],
            "interfaces.max_interfaces: must be >= 1",
        ),
        (vec!["--max-interfaces", "0"], "--max-interfaces"),
    ] {
        let out = flowtel().arg("check-config").args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} passed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Every `run` flag with a default shows it in `--help`, and it is the value `check-config`
/// prints for an empty configuration: both come from `Config::default`.
#[test]
fn run_help_shows_every_default_as_check_config_prints_it() {
    let out = flowtel().args(["run", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    // Flag -> its help text (the lines up to the next flag).
    let mut flags: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("--") {
            let name = rest.split([' ', '<']).next().unwrap().to_owned();
            flags.push((name, String::new()));
        } else if let Some((_, text)) = flags.last_mut() {
            text.push_str(t);
            text.push(' ');
        }
    }
    let default_of = |text: &str| {
        text.split_once("[default: ")
            .map(|(_, rest)| rest.split_once(']').unwrap().0.to_owned())
    };

    let out = flowtel().arg("check-config").output().unwrap();
    assert!(out.status.success());
    let yaml: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let at = |path: &str| {
        let mut v = &yaml;
        for key in path.split('.') {
            v = match key.parse::<usize>() {
                Ok(i) => &v[i],
                Err(_) => &v[key],
            };
        }
        match v {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            other => panic!("{path}: {other:?}"),
        }
    };
    let expected: &[(&str, String)] = &[
        ("listen", at("listen.0")),
        ("workers", at("workers")),
        ("recv-buffer-bytes", at("recv_buffer_bytes")),
        ("receive-coalesce-us", at("receive_coalesce_us")),
        ("rollup-interval", at("rollups.0.interval_secs")),
        ("top-k", at("rollups.0.top_k")),
        ("profile", at("rollups.0.profile")),
        ("sink", at("sinks.0")),
        ("prometheus-listen", at("prometheus_listen")),
        ("otlp-endpoint", at("otlp.endpoint")),
        ("otlp-compression", at("otlp.compression")),
        ("otlp-temporality", at("otlp.temporality")),
        ("otlp-timeout", at("otlp.timeout_secs")),
        ("queue-max-windows", at("otlp.queue_max_windows")),
        ("max-points-per-request", at("otlp.max_points_per_request")),
        ("service-name", at("resource.service_name")),
        ("log-level", at("log_level")),
        ("shutdown-grace", at("shutdown_grace_secs")),
        (
            "exporter-report-interval",
            at("exporter_report_interval_secs"),
        ),
        ("exporter-silent-after", at("exporter_silent_after_secs")),
        // No rate configured (check-config prints `sampling: {}`): counted as 1 in 1.
        ("default-sampling-rate", "1".to_owned()),
        ("self-metrics-interval", at("self_metrics_interval_secs")),
        ("max-exporters", at("decoder.max_exporters")),
        (
            "max-templates-per-exporter",
            at("decoder.max_templates_per_exporter"),
        ),
        (
            "max-fields-per-template",
            at("decoder.max_fields_per_template"),
        ),
        ("max-pending-sets", at("decoder.max_pending_sets")),
        ("memory-budget-bytes", at("decoder.memory_budget_bytes")),
        ("pending-timeout", at("decoder.pending_timeout_secs")),
        ("flow-sample", at("flow_records.sample")),
        ("sflow-bytes", at("decoder.sflow_bytes")),
        ("max-interfaces", at("interfaces.max_interfaces")),
        ("flow-logs-attribute-names", at("flow_logs.attribute_names")),
        ("flow-http-format", at("flow_http.format")),
        ("kafka-topic", at("kafka.topic")),
        ("kafka-format", at("kafka.format")),
        ("kafka-compression", at("kafka.compression")),
    ];
    // Flags that have no default: files, lists, switches.
    let without = [
        "config",
        "pcap",
        "rollup-spec",
        "otlp-header",
        "otlp-ca-file",
        "otlp-client-cert",
        "otlp-client-key",
        "resource-attribute",
        "geoip-country-db",
        "geoip-asn-db",
        "networks-file",
        "tee-logs",
        "device",
        "sampling-rate",
        "scope-includes-port",
        "no-interface-metrics",
        "flow-rule",
        "allow-exporter",
        "deny-exporter",
        "flow-json-file",
        "flow-logs-endpoint",
        "flow-http-url",
        "flow-http-header",
        "kafka-brokers",
        "kafka-create-topic",
        "kafka-property",
        "help",
    ];
    for (flag, text) in &flags {
        let shown = default_of(text);
        match expected.iter().find(|(f, _)| f == flag) {
            Some((_, value)) => assert_eq!(shown.as_ref(), Some(value), "--{flag}: {text}"),
            None => assert!(
                without.contains(&flag.as_str()) && shown.is_none(),
                "--{flag} has no expected default here: {text}"
            ),
        }
    }
    for (flag, _) in expected {
        assert!(
            flags.iter().any(|(f, _)| f == flag),
            "--{flag} is not in run --help"
        );
    }
    // The same defaults in plain `flowtel --help`.
    let out = flowtel().arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&out.stdout);
    assert!(top.contains("[default: 1000]"), "{top}");
}
