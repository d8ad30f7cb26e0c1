//! `flowtel check-config`: the real binary on real files.

use std::path::PathBuf;
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

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowtel-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unknown_key_is_rejected_with_its_name_and_line() {
    let path = write_config(
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
    let path = write_config(
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
    let again = write_config("printed.yaml", &stdout);
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
fn decoder_section_is_printed_with_file_and_flag_values() {
    let path = write_config(
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
  pending_timeout_secs: 30
";
    assert!(stdout.contains(expected), "{stdout}");
}

/// The README's configuration block lists every default: it must equal what `check-config`
/// prints for an empty file (comments aside), so the documented defaults are the real ones.
#[test]
fn readme_configuration_block_is_the_defaults() {
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

    let empty = write_config("empty.yaml", "");
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
