//! The README's metrics reference lists every metric the daemon exports about itself.

#[test]
fn every_self_metric_is_in_the_readme_reference() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let missing: Vec<String> = flowtel::metrics::ALL
        .iter()
        .map(|d| flowtel::telemetry::prometheus_name(d.name, d.unit, d.kind))
        .filter(|name| !readme.contains(&format!("| `{name}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README's metrics reference: {missing:?}"
    );
}
