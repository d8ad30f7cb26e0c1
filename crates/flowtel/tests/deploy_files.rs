//! Static checks of everything under `deploy/` and `examples/`: no Docker engine or cluster runs
//! here, so this proves what can be proven without one. Compose and Kubernetes files parse and
//! reference only files, services, ConfigMap keys and ports that exist; the Alloy pipelines use
//! only documented components wired to components they define; the Dockerfile has the ports,
//! healthcheck and entrypoint users rely on; the provisioned dashboard is the integration's
//! dashboard with only its datasource selection changed; the systemd unit passes
//! `systemd-analyze verify` where systemd is installed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_tcp_addr, free_udp_addr, repo};
use serde_yaml::Value;

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn yaml(rel: &str) -> Value {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(&read(rel))
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing string {key:?} in {v:?}"))
}

fn seq_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("missing list {key:?} in {v:?}"))
}

/// The Alloy components flowtel's configs may use: the ones the Alloy reference documents for
/// this pipeline (grafana.com/docs/alloy/latest/reference/components/).
const ALLOY_COMPONENTS: &[&str] = &[
    "otelcol.receiver.otlp",
    "otelcol.processor.batch",
    "otelcol.exporter.prometheus",
    "prometheus.remote_write",
    "otelcol.exporter.otlphttp",
    "otelcol.auth.basic",
];

/// Components declared in an Alloy file (`name "label" {` at the start of a line), and
/// references to their exports (`name.label.input`, `.receiver`, `.handler`).
fn alloy_components(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut declared = BTreeSet::new();
    let mut referenced = BTreeSet::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("//") {
            continue;
        }
        if let Some((head, rest)) = t.split_once(" \"")
            && let Some((label, tail)) = rest.split_once('"')
            && tail.trim() == "{"
            && head.contains('.')
        {
            declared.insert(format!("{head}.{label}"));
        }
        for word in t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_')) {
            for export in [".input", ".receiver", ".handler"] {
                if let Some(component) = word.strip_suffix(export)
                    && component.contains('.')
                {
                    referenced.insert(component.to_owned());
                }
            }
        }
    }
    (declared, referenced)
}

fn check_alloy(name: &str, text: &str) {
    let (declared, referenced) = alloy_components(text);
    assert!(!declared.is_empty(), "{name}: no component found");
    for c in &declared {
        let kind = c.rsplit_once('.').map(|(k, _)| k).unwrap_or(c);
        assert!(
            ALLOY_COMPONENTS.contains(&kind),
            "{name}: component {kind} is not one of the documented ones {ALLOY_COMPONENTS:?}"
        );
    }
    for r in &referenced {
        assert!(
            declared.contains(r),
            "{name}: {r} is referenced but not declared (declared: {declared:?})"
        );
    }
    // Every pipeline starts at the OTLP receiver flowtel sends to.
    assert!(
        declared
            .iter()
            .any(|c| c.starts_with("otelcol.receiver.otlp.")),
        "{name}: no otelcol.receiver.otlp"
    );
    assert!(
        text.contains(":4317\""),
        "{name}: the OTLP receiver must listen on 4317"
    );
    let braces = text.matches('{').count() == text.matches('}').count();
    assert!(braces, "{name}: unbalanced braces");
}

#[test]
fn alloy_configs_use_only_documented_components() {
    let local = read("deploy/alloy/local.alloy");
    check_alloy("local.alloy", &local);
    for needed in [
        "otelcol.exporter.prometheus",
        "prometheus.remote_write",
        "otelcol.processor.batch",
    ] {
        assert!(local.contains(needed), "local.alloy lacks {needed}");
    }
    assert!(local.contains("http://prometheus:9090/api/v1/write"));

    let cloud = read("deploy/alloy/grafana-cloud.alloy");
    check_alloy("grafana-cloud.alloy", &cloud);
    for needed in [
        "otelcol.exporter.otlphttp",
        "otelcol.auth.basic",
        "sys.env(",
    ] {
        assert!(cloud.contains(needed), "grafana-cloud.alloy lacks {needed}");
    }

    let cm = kubernetes_configmap();
    check_alloy("configmap config.alloy", &cm["config.alloy"]);
}

#[test]
fn alloy_component_parser_catches_unknown_and_dangling_components() {
    let (declared, referenced) = alloy_components(
        "otelcol.receiver.otlp \"a\" {\n  output { metrics = [otelcol.processor.batch.b.input] }\n}\n",
    );
    assert_eq!(
        declared,
        BTreeSet::from(["otelcol.receiver.otlp.a".to_owned()])
    );
    assert_eq!(
        referenced,
        BTreeSet::from(["otelcol.processor.batch.b".to_owned()])
    );
    let bad = "otelcol.receiver.otlp \"a\" {\n grpc { endpoint = \"0.0.0.0:4317\" }\n output { metrics = [otelcol.processor.batch.b.input] }\n}\n";
    assert!(std::panic::catch_unwind(|| check_alloy("bad", bad)).is_err());
    let unknown = "otelcol.receiver.otlp \"a\" {\n grpc { endpoint = \"0.0.0.0:4317\" }\n}\nloki.write \"x\" {\n}\n";
    assert!(std::panic::catch_unwind(|| check_alloy("unknown", unknown)).is_err());
}

#[test]
fn dockerfile_builds_locked_and_runs_flowtel_unprivileged() {
    let text = read("deploy/docker/Dockerfile");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let froms = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "multi-stage build expected");
    assert!(text.contains("cargo build --release --locked -p flowtel"));
    let expose = lines
        .iter()
        .find(|l| l.starts_with("EXPOSE "))
        .expect("EXPOSE");
    let ports: BTreeSet<&str> = expose.split_whitespace().skip(1).collect();
    for p in ["9995/udp", "6343/udp", "9464"] {
        assert!(ports.contains(p), "EXPOSE lacks {p}: {expose}");
    }
    let user = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("USER");
    assert!(!user.contains("root") || user.contains("nonroot"), "{user}");
    assert!(!user.starts_with("USER 0"), "{user}");
    assert!(lines.iter().any(|l| l.starts_with("HEALTHCHECK ")));
    assert!(
        text.contains("\"healthcheck\"]"),
        "HEALTHCHECK runs `flowtel healthcheck`"
    );
    let entry = lines
        .iter()
        .find(|l| l.starts_with("ENTRYPOINT "))
        .expect("ENTRYPOINT");
    assert_eq!(*entry, "ENTRYPOINT [\"/usr/local/bin/flowtel\"]");
    // The build copies the whole repository; the ignore file keeps build outputs out.
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "/target"));
    // deploy/geoip: `flowtel demo` embeds the demo's GeoIP databases.
    for dir in ["crates", "Cargo.toml", "Cargo.lock", "deploy/geoip"] {
        assert!(repo().join(dir).exists(), "{dir} is needed by the build");
        assert!(
            !ignore
                .lines()
                .any(|l| l.trim().trim_start_matches('/') == dir),
            "{dir} is needed by the build"
        );
    }
}

/// The profile-guided build, the side-by-side script and the jump load test are shell; CI runs
/// none of them (each takes minutes of both cores, or both cores pinned), so what can be checked
/// statically is: they parse, the PGO build is locked, and what it trains on exists.
#[test]
fn build_and_benchmark_scripts_parse_and_use_what_exists() {
    for script in [
        "deploy/build-pgo.sh",
        "examples/bench-peers.sh",
        "examples/loadtest-jump.sh",
    ] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(repo().join(script))
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pgo = read("deploy/build-pgo.sh");
    assert_eq!(
        pgo.matches("cargo build --release --locked -p flowtel")
            .count(),
        2,
        "the instrumented and the optimised build"
    );
    assert!(pgo.contains("-Cprofile-generate=") && pgo.contains("-Cprofile-use="));
    assert!(pgo.contains("examples/blast.c") && repo().join("examples/blast.c").is_file());
    let captures = std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "pcap"))
        })
        .count();
    assert!(
        pgo.contains("tests/fixtures/*.pcap") && captures >= 6,
        "{captures} captures"
    );
}

fn compose() -> Value {
    yaml("deploy/compose/docker-compose.yml")
}

#[test]
fn compose_services_are_pinned_healthy_and_ordered() {
    let c = compose();
    let services = c
        .get("services")
        .and_then(Value::as_mapping)
        .expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    let profile = |svc: &Value| -> Vec<String> {
        svc.get("profiles")
            .and_then(Value::as_sequence)
            .map(|p| p.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let base: BTreeSet<&str> = services
        .iter()
        .filter(|(_, svc)| profile(svc).is_empty())
        .filter_map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        base,
        BTreeSet::from([
            "alloy",
            "flowtel",
            "generator",
            "grafana",
            "loki",
            "prometheus"
        ])
    );
    // The optional scale-out path: `--profile kafka`.
    let kafka: BTreeSet<&str> = names.difference(&base).copied().collect();
    assert_eq!(
        kafka,
        BTreeSet::from(["clickhouse", "flowtel-kafka", "generator-kafka", "kafka"])
    );
    for name in &kafka {
        assert_eq!(profile(&services[*name]), ["kafka"], "{name}");
    }
    for (name, svc) in services {
        let name = name.as_str().expect("service name");
        let image = str_of(svc, "image");
        if svc.get("build").is_none() {
            let (_, tag) = image
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{name}: image {image} is not pinned"));
            assert!(
                tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
                "{name}: image {image} is not pinned to a version"
            );
        }
        if !name.starts_with("generator") {
            let hc = svc
                .get("healthcheck")
                .unwrap_or_else(|| panic!("{name}: no healthcheck"));
            assert!(!seq_of(hc, "test").is_empty());
        }
        if let Some(deps) = svc.get("depends_on").and_then(Value::as_mapping) {
            for (dep, cond) in deps {
                let dep = dep.as_str().expect("dependency name");
                assert!(names.contains(dep), "{name} depends on unknown {dep}");
                assert!(
                    !base.contains(name) || base.contains(dep),
                    "{name} (always started) depends on {dep} of a profile"
                );
                assert_eq!(
                    str_of(cond, "condition"),
                    "service_healthy",
                    "{name} -> {dep}"
                );
                assert!(
                    services[dep].get("healthcheck").is_some(),
                    "{name} waits for {dep} to be healthy but {dep} has no healthcheck"
                );
            }
        }
    }
    // The pipeline order: generator -> flowtel -> alloy -> prometheus <- grafana.
    let dep = |a: &str, b: &str| {
        services[a]
            .get("depends_on")
            .and_then(|d| d.get(b))
            .is_some()
    };
    assert!(dep("generator", "flowtel"));
    assert!(dep("flowtel", "alloy"));
    assert!(dep("alloy", "prometheus"));
    assert!(dep("alloy", "loki"));
    assert!(dep("grafana", "prometheus"));
    assert!(dep("grafana", "loki"));
    // generator-kafka -> flowtel-kafka -> kafka <- clickhouse, and flowtel-kafka -> alloy.
    assert!(dep("generator-kafka", "flowtel-kafka"));
    assert!(dep("flowtel-kafka", "kafka"));
    assert!(dep("flowtel-kafka", "alloy"));
    assert!(dep("clickhouse", "kafka"));

    let prom: Vec<&str> = seq_of(&services["prometheus"], "command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(prom.contains(&"--web.enable-remote-write-receiver"));
    let ports: Vec<&str> = seq_of(&services["flowtel"], "ports")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(ports.contains(&"9995:9995/udp"), "{ports:?}");
    let grafana_ports: Vec<&str> = seq_of(&services["grafana"], "ports")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(grafana_ports.contains(&"3000:3000"));
}

#[test]
fn compose_references_only_files_that_exist() {
    let base = repo().join("deploy/compose");
    let c = compose();
    let services = c.get("services").and_then(Value::as_mapping).unwrap();
    let mut mounts = BTreeMap::new();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        if let Some(build) = svc.get("build") {
            let ctx = base.join(str_of(build, "context"));
            assert!(
                ctx.join("Cargo.toml").is_file(),
                "{name}: build context {ctx:?}"
            );
            let df = ctx.join(str_of(build, "dockerfile"));
            assert!(df.is_file(), "{name}: dockerfile {df:?}");
        }
        for v in svc
            .get("volumes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let spec = v.as_str().expect("short volume syntax");
            let mut parts = spec.split(':');
            let (src, dst) = (parts.next().unwrap(), parts.next().expect("target"));
            assert!(
                src.starts_with('.'),
                "{name}: {src} should be a repository path"
            );
            let path = base.join(src);
            assert!(
                path.exists(),
                "{name}: {spec}: {} does not exist",
                path.display()
            );
            mounts.insert(dst.to_owned(), path);
        }
    }
    // Grafana's provisioning points at what is mounted.
    let provider = yaml("deploy/grafana/provisioning/dashboards/flowtel.yaml");
    let dash_path = str_of(
        seq_of(&provider, "providers")[0].get("options").unwrap(),
        "path",
    );
    let dash_dir = mounts.get(dash_path).expect("dashboards directory mounted");
    assert!(dash_dir.join("netflow-overview.json").is_file());
    let home = str_of(
        services["grafana"].get("environment").unwrap(),
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
    );
    let home_file = Path::new(home).file_name().unwrap();
    assert!(dash_dir.join(home_file).is_file(), "{home}");
    // Alloy runs the mounted local.alloy.
    let alloy_cmd: Vec<&str> = seq_of(&services["alloy"], "command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let cfg = alloy_cmd.last().unwrap();
    assert!(mounts[*cfg].ends_with("local.alloy"), "{cfg}");
    // flowtel runs the mounted config.
    let flowtel_cmd: Vec<&str> = seq_of(&services["flowtel"], "command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let i = flowtel_cmd.iter().position(|a| *a == "--config").unwrap();
    assert!(mounts[flowtel_cmd[i + 1]].ends_with("flowtel.yaml"));
    // The GeoIP databases it names are mounted.
    let cfg = yaml("deploy/compose/flowtel.yaml");
    for key in ["country_db", "asn_db"] {
        let db = Path::new(str_of(&cfg["geoip"], key));
        let dir = mounts
            .get(db.parent().unwrap().to_str().unwrap())
            .unwrap_or_else(|| panic!("{} is not mounted", db.display()));
        assert!(
            dir.join(db.file_name().unwrap()).is_file(),
            "{}",
            db.display()
        );
    }
}

/// The `kafka` profile's pieces agree: the collector publishes what ClickHouse's Kafka engine
/// reads (protobuf to the topic of 02-kafka.sql on the broker it names), ClickHouse finds the
/// schema where `kafka_schema` points, and runs the DDL on first start.
#[test]
fn compose_kafka_profile_matches_the_clickhouse_ingestion() {
    let c = compose();
    let services = &c["services"];
    let mounts = |svc: &str| -> BTreeMap<String, String> {
        seq_of(&services[svc], "volumes")
            .iter()
            .map(|v| {
                let mut p = v.as_str().unwrap().split(':');
                let (src, dst) = (p.next().unwrap(), p.next().unwrap());
                (dst.to_owned(), src.to_owned())
            })
            .collect()
    };
    let cmd: Vec<&str> = seq_of(&services["flowtel-kafka"], "command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let i = cmd.iter().position(|a| *a == "--config").unwrap();
    assert_eq!(mounts("flowtel-kafka")[cmd[i + 1]], "./flowtel-kafka.yaml");
    let cfg = yaml("deploy/compose/flowtel-kafka.yaml");
    assert!(
        seq_of(&cfg, "sinks")
            .iter()
            .any(|s| s.as_str() == Some("kafka"))
    );
    let kafka = &cfg["kafka"];
    let ddl = read("deploy/clickhouse/02-kafka.sql");
    let setting = |name: &str| -> String {
        let rest = ddl
            .split(&format!("{name} = '"))
            .nth(1)
            .unwrap_or_else(|| panic!("{name}"));
        rest.split('\'').next().unwrap().to_owned()
    };
    let brokers: Vec<&str> = seq_of(kafka, "brokers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(brokers.join(","), setting("kafka_broker_list"));
    assert_eq!(str_of(kafka, "topic"), setting("kafka_topic_list"));
    assert_eq!(str_of(kafka, "format"), "protobuf");
    assert_eq!(setting("kafka_format"), "Protobuf");
    assert_eq!(setting("kafka_schema"), "flow.proto:FlowMessage");
    let ch = mounts("clickhouse");
    assert_eq!(
        ch["/var/lib/clickhouse/format_schemas/flow.proto"],
        "../../proto/flowtel/flow/v1/flow.proto"
    );
    for f in ["01-flows.sql", "02-kafka.sql"] {
        assert_eq!(
            ch[&format!("/docker-entrypoint-initdb.d/{f}")],
            format!("../clickhouse/{f}")
        );
    }
    let env = &services["kafka"]["environment"];
    assert_eq!(
        str_of(env, "KAFKA_ADVERTISED_LISTENERS"),
        format!("PLAINTEXT://{}", setting("kafka_broker_list"))
    );
}

#[test]
fn grafana_datasource_matches_the_dashboard_selection() {
    let ds = yaml("deploy/grafana/provisioning/datasources/prometheus.yaml");
    let prom = &seq_of(&ds, "datasources")[0];
    assert_eq!(str_of(prom, "type"), "prometheus");
    let uid = str_of(prom, "uid");
    assert_eq!(str_of(prom, "url"), "http://prometheus:9090");
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/netflow-overview.json")).unwrap();
    let var = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "prometheus_datasource")
        .unwrap();
    assert_eq!(var["current"]["value"], uid);
}

fn queries(dash: &serde_json::Value) -> Vec<String> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<String>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(e.to_owned());
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

#[test]
fn provisioned_netflow_dashboard_is_the_integration_dashboard() {
    let ours: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/netflow-overview.json")).unwrap();
    assert_eq!(ours["uid"], "netflow-overview");
    assert!(queries(&ours).len() >= 15);
    assert!(repo().join("deploy/grafana/dashboards/NOTICE.md").is_file());
    let reference = repo().join("../shared/reference/grafana-netflow-overview.dashboard.json");
    let Ok(text) = std::fs::read_to_string(&reference) else {
        common::skip(&format!("{} is absent", reference.display()));
        return;
    };
    let mut theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The one documented change (NOTICE.md): the datasource variable's current selection.
    let mut ours = ours;
    for d in [&mut ours, &mut theirs] {
        for v in d["templating"]["list"].as_array_mut().unwrap() {
            v.as_object_mut().unwrap().remove("current");
        }
    }
    assert_eq!(ours, theirs);
}

fn kubernetes_configmap() -> BTreeMap<String, String> {
    let cm = yaml("deploy/kubernetes/configmap.yaml");
    assert_eq!(str_of(&cm, "kind"), "ConfigMap");
    serde_yaml::from_value(cm.get("data").unwrap().clone()).unwrap()
}

#[test]
fn kubernetes_manifests_reference_what_exists() {
    let k = yaml("deploy/kubernetes/kustomization.yaml");
    let mut kinds = BTreeMap::new();
    for r in seq_of(&k, "resources") {
        let rel = format!("deploy/kubernetes/{}", r.as_str().unwrap());
        for doc in yaml_docs(&rel) {
            let kind = str_of(&doc, "kind").to_owned();
            let name = str_of(doc.get("metadata").unwrap(), "name").to_owned();
            kinds.insert((kind, name), doc);
        }
    }
    let cm = kubernetes_configmap();
    let dep = &kinds[&("Deployment".to_owned(), "flowtel".to_owned())];
    let spec = dep.get("spec").unwrap();
    let pod_labels = spec
        .get("template")
        .unwrap()
        .get("metadata")
        .unwrap()
        .get("labels");
    assert_eq!(spec.get("selector").unwrap().get("matchLabels"), pod_labels);
    let pod = spec.get("template").unwrap().get("spec").unwrap();
    // Volumes from the ConfigMap name existing keys.
    let mut volumes = BTreeSet::new();
    for v in seq_of(pod, "volumes") {
        volumes.insert(str_of(v, "name").to_owned());
        if let Some(c) = v.get("configMap") {
            assert!(kinds.contains_key(&("ConfigMap".to_owned(), str_of(c, "name").to_owned())));
            for item in seq_of(c, "items") {
                let key = str_of(item, "key");
                assert!(cm.contains_key(key), "ConfigMap has no key {key}");
            }
        }
    }
    let containers = seq_of(pod, "containers");
    let names: Vec<&str> = containers.iter().map(|c| str_of(c, "name")).collect();
    assert_eq!(names, ["flowtel", "alloy"]);
    let mut port_names = BTreeMap::new();
    for c in containers {
        for m in c
            .get("volumeMounts")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            assert!(volumes.contains(str_of(m, "name")), "{m:?}");
        }
        let res = c.get("resources").unwrap();
        assert!(res.get("requests").unwrap().get("cpu").is_some());
        assert!(res.get("requests").unwrap().get("memory").is_some());
        for p in c
            .get("ports")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            port_names.insert(
                str_of(p, "name").to_owned(),
                (
                    p.get("containerPort").unwrap().as_u64().unwrap(),
                    p.get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("TCP")
                        .to_owned(),
                ),
            );
        }
    }
    let flowtel = &containers[0];
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let get = flowtel.get(probe).unwrap().get("httpGet").unwrap();
        let port = str_of(get, "port");
        assert_eq!(port_names[port], (9464, "TCP".to_owned()), "{probe}");
        assert!(["/healthz", "/readyz"].contains(&str_of(get, "path")));
    }
    // The sidecar runs the ConfigMap's config.alloy.
    let alloy_args: Vec<&str> = seq_of(&containers[1], "args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(alloy_args.last(), Some(&"/etc/alloy/config.alloy"));
    assert!(cm["flowtel.yaml"].contains("http://127.0.0.1:4317"));
    // The Service exposes UDP ports the pod declares.
    let svc = &kinds[&("Service".to_owned(), "flowtel".to_owned())];
    let sspec = svc.get("spec").unwrap();
    assert_eq!(sspec.get("selector"), pod_labels);
    assert_eq!(str_of(sspec, "sessionAffinity"), "ClientIP");
    assert_eq!(str_of(sspec, "externalTrafficPolicy"), "Local");
    for p in seq_of(sspec, "ports") {
        let target = str_of(p, "targetPort");
        let (_, proto) = &port_names[target];
        assert_eq!(proto, "UDP");
        assert_eq!(str_of(p, "protocol"), "UDP");
    }
    assert!(repo().join("deploy/kubernetes/README.md").is_file());
}

#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let text = read("deploy/systemd/flowtel.service");
    for directive in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "ProtectSystem=strict",
        "ReadOnlyPaths=/etc/flowtel",
        "ExecStart=/usr/local/bin/flowtel run --config /etc/flowtel/flowtel.yaml",
    ] {
        assert!(text.contains(directive), "missing {directive:?}");
    }
    if !common::require_tool("systemd-analyze", "apt-get install systemd") {
        return;
    }
    let out = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = common::ScratchDir::new("unit");
    let unit = dir.join("flowtel.service");
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/flowtel", env!("CARGO_BIN_EXE_flowtel")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown or misspelt directives are only warnings: fail on any.
    assert!(stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
}

/// YAML files under `deploy/` that are not flowtel configurations (compose, Kubernetes,
/// Prometheus, Grafana provisioning). Every other YAML there and in `examples/` must be one.
const NOT_FLOWTEL_CONFIGS: &[&str] = &[
    "deploy/compose/docker-compose.yml",
    "deploy/compose/prometheus.yml",
    "deploy/grafana/provisioning/dashboards/flowtel.yaml",
    "deploy/grafana/provisioning/datasources/loki.yaml",
    "deploy/grafana/provisioning/datasources/prometheus.yaml",
    "deploy/kubernetes/configmap.yaml",
    "deploy/kubernetes/deployment.yaml",
    "deploy/kubernetes/kustomization.yaml",
    "deploy/kubernetes/namespace.yaml",
    "deploy/kubernetes/service.yaml",
];

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

/// A self-signed certificate and its key, as PEM files in the returned directory.
fn test_tls_files() -> (common::ScratchDir, PathBuf, PathBuf) {
    let dir = common::ScratchDir::new("deploy-tls");
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    (dir, cert, key)
}

/// `flowtel check-config FILE`: the daemon's own loader (unknown keys rejected, values
/// validated), run by the real binary. The OTEL_* variables are cleared so the files alone are
/// checked.
fn check_config(path: &Path) -> Result<String, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowtel"));
    cmd.arg("check-config").arg(path);
    // check-config loads the GeoIP databases a file names; the ones a deployment installs
    // (/var/lib/GeoIP) are not here, so the test databases stand in for them.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let testdata = repo().join("crates/flowtel-rollup/testdata");
    if text.contains("country_db:") {
        cmd.arg("--geoip-country-db")
            .arg(testdata.join("country-test.mmdb"));
    }
    if text.contains("asn_db:") {
        cmd.arg("--geoip-asn-db")
            .arg(testdata.join("asn-test.mmdb"));
    }
    // Likewise the TLS material a file names: a generated certificate and key stand in.
    // Kept until the command has run.
    let tls =
        (text.contains("ca_file:") || text.contains("client_cert_file:")).then(test_tls_files);
    if let Some((_, cert, key)) = &tls {
        if text.contains("ca_file:") {
            cmd.arg("--otlp-ca-file").arg(cert);
        }
        if text.contains("client_cert_file:") {
            cmd.args(["--otlp-client-cert"]).arg(cert);
            cmd.args(["--otlp-client-key"]).arg(key);
        }
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run flowtel check-config");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_flowtel_yaml_passes_check_config() {
    let root = repo();
    let mut files = Vec::new();
    yaml_files(&root.join("examples"), &mut files);
    yaml_files(&root.join("deploy"), &mut files);
    files.sort();
    let mut checked = 0;
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap().to_str().unwrap().to_owned();
        if NOT_FLOWTEL_CONFIGS.contains(&rel.as_str()) {
            continue;
        }
        let printed = check_config(f).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(printed.contains("listen:"), "{rel}: {printed}");
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} flowtel configs found");
    for rel in NOT_FLOWTEL_CONFIGS {
        assert!(root.join(rel).is_file(), "{rel} is listed but absent");
    }
    // The configuration embedded in the Kubernetes ConfigMap.
    let dir = common::ScratchDir::new("cm");
    let file = dir.join("flowtel.yaml");
    std::fs::write(&file, &kubernetes_configmap()["flowtel.yaml"]).unwrap();
    let res = check_config(&file);
    drop(dir);
    res.unwrap_or_else(|e| panic!("configmap flowtel.yaml: {e}"));
}

#[test]
fn check_config_rejects_what_the_examples_must_not_contain() {
    // The same path the examples take, shown to fail on an unknown key: the test above cannot
    // pass by accident.
    let dir = common::ScratchDir::new("bad");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "listen: [\"0.0.0.0:9995\"]\notlp:\n  endpiont: http://x:4317\n",
    )
    .unwrap();
    let res = check_config(&file);
    let err = res.expect_err("unknown key accepted");
    assert!(err.contains("endpiont"), "{err}");
}

#[test]
fn compose_generator_command_runs_against_a_local_socket() {
    let c = compose();
    let args: Vec<String> = seq_of(&c["services"]["generator"], "command")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args[0], "generate");
    assert!(
        args.iter().any(|a| a == "--target=127.0.0.1:9995"),
        "{args:?}"
    );
    assert_eq!(
        str_of(&c["services"]["generator"], "network_mode"),
        "service:flowtel",
        "loopback reaches flowtel only from its network namespace"
    );
    // The same command, aimed at a socket here and bounded.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = format!("--target={}", sock.local_addr().unwrap());
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a.starts_with("--target=") {
                target.clone()
            } else {
                a
            }
        })
        .chain(["--count=20".to_owned()])
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_flowtel"))
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(sock.recv_from(&mut buf).is_ok(), "nothing received");
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The demo's flowtel configuration and generator command, run together here with the ports
/// moved to free loopback ones and a 1 s window: every simulated exporter shows up under the
/// device name the configuration gives it.
#[test]
fn compose_flowtel_config_names_every_generated_exporter() {
    names_every_generated_exporter("deploy/compose/flowtel.yaml", "generator", 6);
}

/// The same for the `kafka` profile's collector and generator (the kafka sink left out here;
/// tests/kafka.rs runs that configuration against a broker).
#[test]
fn compose_kafka_profile_config_names_every_generated_exporter() {
    names_every_generated_exporter("deploy/compose/flowtel-kafka.yaml", "generator-kafka", 4);
}

fn names_every_generated_exporter(config: &str, generator: &str, exporters: usize) {
    let http = free_tcp_addr();
    let listen = free_udp_addr();
    let mut cfg = yaml(config);
    let devices: BTreeSet<String> = cfg["enrichment"]["devices"]
        .as_mapping()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(devices.len(), exporters);
    let m = cfg.as_mapping_mut().unwrap();
    m.insert("listen".into(), vec![listen.to_string()].into());
    m.insert("sinks".into(), vec!["prometheus"].into());
    m.insert("prometheus_listen".into(), http.to_string().into());
    m.insert("rollup_interval_secs".into(), 1.into());
    // The GeoIP databases, from where the compose file mounts them.
    if let Some(geoip) = m.get_mut("geoip").and_then(Value::as_mapping_mut) {
        for key in ["country_db", "asn_db"] {
            let path = geoip[key].as_str().unwrap().to_owned();
            let name = Path::new(&path).file_name().unwrap();
            let local = repo().join("deploy/geoip").join(name);
            geoip.insert(key.into(), local.to_str().unwrap().into());
        }
    }
    let dir = common::ScratchDir::new(&format!("demo-{generator}"));
    let file = dir.join("flowtel.yaml");
    std::fs::write(&file, serde_yaml::to_string(&cfg).unwrap()).unwrap();

    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _flowtel = Kill(
        Command::new(env!("CARGO_BIN_EXE_flowtel"))
            .args(["run", "--config"])
            .arg(&file)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !matches!(http_get(http, "/readyz"), Some((200, _))) {
        assert!(std::time::Instant::now() < deadline, "flowtel never ready");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let c = compose();
    let args: Vec<String> = seq_of(&c["services"][generator], "command")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .map(|a| {
            if a.starts_with("--target=") {
                format!("--target={listen}")
            } else {
                a
            }
        })
        .collect();
    let _generator = Kill(
        Command::new(env!("CARGO_BIN_EXE_flowtel"))
            .args(&args)
            .args(["--duration=60", "--report-interval=0"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    loop {
        let body = http_get(http, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let seen: BTreeSet<String> = body
            .lines()
            .filter(|l| l.starts_with("network_io_by_flow_bytes{"))
            .filter_map(|l| l.split("device_name=\"").nth(1))
            .filter_map(|r| r.split('"').next())
            .map(str::to_owned)
            .collect();
        // Public ends have a country from the demo's databases.
        let countries = body.lines().any(|l| {
            l.starts_with("network_io_by_flow_bytes{")
                && (l.contains("_country=\"US\"") || l.contains("_country=\"FR\""))
        });
        if seen == devices && countries {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "device names seen {seen:?}, configured {devices:?}; countries: {countries}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn compose_prometheus_config_passes_promtool() {
    let file = repo().join("deploy/compose/prometheus.yml");
    if !common::require_tool("promtool", "apt-get install prometheus") {
        return;
    }
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The structured metadata names Loki gives the attributes of flowtel's flow log records
/// (its OTLP ingestion replaces `.` with `_`), from real records: softflowd's IPFIX capture
/// decoded and encoded as the flow-logs sink does.
fn flow_log_metadata_names() -> BTreeSet<String> {
    let mut decoder = flowtel_decode::Decoder::new(flowtel_decode::DecoderConfig::default());
    let mut enricher = flowtel_rollup::Enricher::new(&flowtel_rollup::EnrichConfig::default());
    let mut encoder = flowtel_records::RecordEncoder::new();
    let mut out = flowtel_decode::DecodeOutput::default();
    let mut names = BTreeSet::from(["service_name".to_owned()]);
    for d in flowtel_pcap::read_all(repo().join("tests/fixtures/softflowd-ipfix.pcap")).unwrap() {
        out.clear();
        decoder.decode(d.src, &d.payload, d.timestamp_ns, &mut out);
        for f in &out.flows {
            let record = enricher.enrich(f, None).to_record();
            let log = encoder.log_record(&record, flowtel_records::AttributeNames::default());
            names.extend(log.attributes.iter().map(|kv| kv.key.replace('.', "_")));
        }
    }
    names
}

#[test]
fn flows_dashboard_queries_loki_for_attributes_flowtel_sends() {
    let ds = yaml("deploy/grafana/provisioning/datasources/loki.yaml");
    let loki = &seq_of(&ds, "datasources")[0];
    assert_eq!(str_of(loki, "uid"), "loki");
    assert_eq!(str_of(loki, "url"), "http://loki:3100");
    let alloy = read("deploy/alloy/local.alloy");
    assert!(alloy.contains("logs    = [otelcol.exporter.otlphttp.loki.input]"));
    assert!(alloy.contains("\"http://loki:3100/otlp\""));
    let flowtel = read("deploy/compose/flowtel.yaml");
    assert!(flowtel.contains("flow-logs"), "the demo sends flow records");

    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/flows.json")).unwrap();
    let exprs = queries(&dash);
    assert!(exprs.len() >= 4);
    let known = flow_log_metadata_names();
    for e in &exprs {
        let mut used = BTreeSet::new();
        let words = |s: &str| -> Vec<String> {
            s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        };
        for (start, end) in [("by (", ")"), ("unwrap ", " "), ("{{.", "}}")] {
            for part in e.split(start).skip(1) {
                used.extend(words(part.split(end).next().unwrap_or_default()));
            }
        }
        for part in e.split("| ").skip(1).chain(e.split(" or ").skip(1)) {
            if let Some(first) = words(part).into_iter().next()
                && !["unwrap", "line_format"].contains(&first.as_str())
            {
                used.insert(first);
            }
        }
        assert!(e.contains("{service_name=\"flowtel\"}"), "{e}");
        for name in &used {
            assert!(
                known.contains(name),
                "{name} in {e} is not an attribute flowtel sends: {known:?}"
            );
        }
        assert!(!used.is_empty(), "{e}");
    }
    for panel in dash["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"], "loki", "{}", panel["title"]);
    }
}
