//! Shared helpers for the binary's integration tests.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository's fixture directory (`tests/fixtures` at the workspace root).
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
}

/// Run the real `flowtel` binary with `args`.
pub fn flowtel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowtel"))
        .args(args)
        .output()
        .expect("run the flowtel binary")
}

/// `flowtel decode FIXTURE --format FORMAT`, asserting it succeeds; returns stdout and stderr.
pub fn decode_fixture(name: &str, format: &str) -> (String, String) {
    let path = fixtures().join(format!("{name}.pcap"));
    let path = path.to_str().expect("utf-8 path");
    let out = flowtel(&["decode", path, "--format", format]);
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert!(
        out.status.success(),
        "flowtel decode {name} failed: {:?}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}
