//! The daemon end to end over OTLP: the real binary receives real NetFlow v5, NetFlow v9,
//! IPFIX and sFlow v5 datagrams on loopback and exports to an in-process tonic
//! `MetricsServiceServer` standing in for Alloy. Waits are bounded polls on counters; nothing
//! asserts on wall-clock time.

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::{
    Alloy, Daemon, FlatPoint, V5_FLOWS, assert_one_point_per_series_per_window, flowtel_command,
    free_tcp_addr, free_udp_addr, netflow_v5, sample, total,
};
use flowtel_decode::{FlowProtocol, FlowRecord, SflowInterface};
use flowtel_encode::sflow::{Datagram, FlowData, FlowSample, Sample};
use flowtel_encode::{ExportVersion, FlowExporter, SamplerSpec};

/// NetFlow v5 header sampling field: mode 1 (packet interval), 1 in 10.
const V5_SAMPLING: u16 = 0x4000 | 10;

fn record(src: &str, dst: &str, sport: u16, dport: u16, proto: u8, bytes: u64) -> FlowRecord {
    let mut r = FlowRecord::new("127.0.0.1:1".parse().unwrap(), FlowProtocol::Ipfix, 0);
    r.src_addr = Some(src.parse().unwrap());
    r.dst_addr = Some(dst.parse().unwrap());
    r.src_port = sport;
    r.dst_port = dport;
    r.ip_protocol = proto;
    r.bytes = bytes;
    r.packets = 1 + bytes / 1000;
    r
}

/// Sends one datagram of each protocol from four sockets; returns the exact
/// sampling-corrected byte total they carry.
fn send_all_protocols(to: SocketAddr) -> i64 {
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut expected = 0i64;

    let v5 = UdpSocket::bind("127.0.0.1:0").unwrap();
    v5.send_to(
        &netflow_v5(&V5_FLOWS, 0, (now_ms / 1000) as u32, V5_SAMPLING),
        to,
    )
    .unwrap();
    expected += (1500 + 84) * 10;

    // NetFlow v9: templates, sampling options (1 in 100) and data in one packet.
    let v9_records = [
        record("10.1.0.1", "198.51.100.1", 40000, 53, 17, 300),
        record("2001:db8::1", "2001:db8::2", 40001, 22, 6, 7000),
    ];
    let mut v9 =
        FlowExporter::new(ExportVersion::NetflowV9, 1, now_ms - 60_000).with_sampler(SamplerSpec {
            sampler_id: 1,
            interval: 100,
        });
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&v9.datagram(now_ms, true, &v9_records), to)
        .unwrap();
    expected += (300 + 7000) * 100;

    // IPFIX, observation domain 7, 1 in 1000.
    let ipfix_records = [record("172.16.5.5", "203.0.113.9", 443, 50123, 6, 123_456)];
    let mut ipfix =
        FlowExporter::new(ExportVersion::Ipfix, 7, now_ms - 60_000).with_sampler(SamplerSpec {
            sampler_id: 1,
            interval: 1000,
        });
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&ipfix.datagram(now_ms, true, &ipfix_records), to)
        .unwrap();
    expected += 123_456 * 1000;

    // sFlow v5: one expanded flow sample, 1 in 512, an IPv4 record of a 1500-byte packet.
    let sflow = Datagram {
        agent: Some("192.0.2.200".parse().unwrap()),
        sub_agent_id: 0,
        sequence: 1,
        uptime_ms: 1000,
        samples: vec![Sample::Flow(FlowSample {
            expanded: true,
            sequence: 1,
            source_id_type: 0,
            source_id_index: 3,
            sampling_rate: 512,
            sample_pool: 512,
            drops: 0,
            input: SflowInterface::Index(3),
            output: SflowInterface::Index(4),
            records: vec![FlowData::Ip {
                length: 1500,
                protocol: 6,
                src: "10.20.0.1".parse().unwrap(),
                dst: "8.8.8.8".parse().unwrap(),
                src_port: 55555,
                dst_port: 443,
                tcp_flags: 0x18,
                tos: 0,
            }],
        })],
    };
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&sflow.to_bytes(), to).unwrap();
    expected += 1500 * 512;
    expected
}

fn wait_for_four_protocols(d: &Daemon) {
    d.metrics_until("a datagram of each protocol", |b| {
        ["netflow_v5", "netflow_v9", "ipfix", "sflow_v5"]
            .iter()
            .all(|p| {
                sample(b, &format!("flowtel_records_total{{protocol=\"{p}\"}}")).unwrap_or(0.0)
                    > 0.0
            })
    });
}

fn find<'a>(points: &'a [FlatPoint], key: &str, value: &str) -> &'a FlatPoint {
    points
        .iter()
        .find(|p| p.attr(key) == Some(value))
        .unwrap_or_else(|| panic!("no point with {key}={value}: {points:#?}"))
}

#[test]
fn every_protocol_arrives_over_otlp_with_exact_sampling_corrected_totals() {
    let alloy = Alloy::start();
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--workers",
        "2",
        "--otlp-endpoint",
        &alloy.endpoint(),
    ]);
    let expected = send_all_protocols(d.listen);
    wait_for_four_protocols(&d);
    // SIGTERM flushes the partial window and drains the queue before exiting.
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("export queue drained"), "{stderr}");

    let points = alloy.points();
    let flows: Vec<FlatPoint> = points
        .into_iter()
        .filter(|p| p.metric == "network.io.by_flow")
        .collect();
    assert_eq!(total(&flows, "network.io.by_flow"), expected);
    assert_one_point_per_series_per_window(&flows);
    for p in &flows {
        assert_eq!(p.unit, "By");
        assert!(p.gauge);
        assert_eq!(p.scope, "flowtel");
        assert_eq!(p.time - p.start, 1_000_000_000, "one-second windows");
        assert_eq!(p.start % 1_000_000_000, 0, "aligned windows");
        assert_eq!(p.resource_attr("service.name"), Some("flowtel"));
        assert_eq!(
            p.resource_attr("service.version"),
            Some(env!("CARGO_PKG_VERSION"))
        );
        assert!(
            p.resource_attr("service.instance.id")
                .is_some_and(|v| v.len() == 36)
        );
        assert!(p.resource_attr("host.name").is_some());
    }
    let https = find(&flows, "network.local.address", "10.0.0.1");
    assert_eq!(https.attr("network.peer.address"), Some("192.0.2.7"));
    assert_eq!(https.attr("network.peer.port"), Some("443"));
    assert_eq!(https.attr("network.transport"), Some("tcp"));
    assert_eq!(https.attr("network.protocol.name"), Some("https"));
    assert_eq!(https.attr("device_name"), Some("127.0.0.1"));
    assert_eq!(https.attr("network.local.country"), Some("Private IP"));
    assert_eq!(https.value, 15_000);
    // ICMP is kept (ktranslate drops it).
    let icmp = find(&flows, "network.local.address", "10.0.0.2");
    assert_eq!(icmp.attr("network.transport"), Some("icmp"));
    assert_eq!(icmp.value, 840);
    assert_eq!(
        find(&flows, "network.local.address", "2001:db8::1").value,
        700_000
    );
    assert_eq!(
        find(&flows, "network.local.address", "172.16.5.5").value,
        123_456_000
    );
    let sflow = find(&flows, "network.local.address", "10.20.0.1");
    assert_eq!(
        sflow.attr("device_name"),
        Some("192.0.2.200"),
        "sFlow device = agent address"
    );
    assert_eq!(sflow.value, 1500 * 512);
}

#[test]
fn grafanas_ktranslate_command_line_produces_kentik_names() {
    let alloy = Alloy::start();
    let listen = free_udp_addr();
    let http = free_tcp_addr();
    let mut cmd = flowtel_command();
    cmd.args([
        "--format=otel",
        "--otel.protocol=grpc",
        &format!("--otel.endpoint=http://{}/", alloy.addr),
        "--nf.source=auto",
        "--nf.addr=127.0.0.1",
        &format!("--nf.port={}", listen.port()),
        "--sinks=otel",
        "--metrics=jchf",
        "--rollup_interval=60",
        "--tee_logs=true",
        "--service_name=flow",
        "--max_flows_per_message=100",
        "--rollups=s_sum,bytes_by_flow,in_bytes+out_bytes,src_addr,dst_addr,l4_src_port,l4_dst_port,protocol,custom_str.application,device_name,custom_str.src_host,custom_str.dst_host,src_geo,dst_geo",
        "--rollup_keep_undefined=true",
        &format!("--prom_listen={http}"),
    ]);
    let d = Daemon::spawn(cmd, listen, http);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(
            &netflow_v5(&V5_FLOWS, 0, 1_700_000_000, V5_SAMPLING),
            d.listen,
        )
        .unwrap();
    d.metrics_until("the v5 records", |b| {
        sample(b, "flowtel_records_total{protocol=\"netflow_v5\"}") == Some(2.0)
    });
    // The window is 60 s: SIGTERM flushes it early.
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        !stderr.contains("not implemented"),
        "Grafana's flags all map: {stderr}"
    );

    let points: Vec<FlatPoint> = alloy
        .points()
        .into_iter()
        .filter(|p| p.metric == "kentik.rollup.bytes_by_flow")
        .collect();
    assert_eq!(
        total(&points, "kentik.rollup.bytes_by_flow"),
        (1500 + 84) * 10
    );
    let p = find(&points, "src_addr", "10.0.0.1");
    let mut names: Vec<&str> = p.attributes.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "application",
            "device_name",
            "dst_addr",
            "dst_country",
            "dst_host",
            "dst_port",
            "protocol",
            "src_addr",
            "src_country",
            "src_host",
            "src_port"
        ]
    );
    assert_eq!(p.attr("dst_port"), Some("443"));
    assert_eq!(p.attr("protocol"), Some("tcp"));
    assert_eq!(p.attr("application"), Some("https"));
    // --service_name=flow is honoured.
    assert_eq!(p.resource_attr("service.name"), Some("flow"));
    assert!(p.gauge);
}

#[test]
fn windows_wait_while_alloy_is_down_and_arrive_once_it_is_up() {
    // Alloy's port is chosen now and served only later.
    let alloy_addr = free_tcp_addr();
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--otlp-endpoint",
        &format!("http://{alloy_addr}"),
    ]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(
            &netflow_v5(&V5_FLOWS, 0, 1_700_000_000, V5_SAMPLING),
            d.listen,
        )
        .unwrap();
    d.metrics_until("a failed export", |b| {
        sample(b, "flowtel_export_failed_total{reason=\"connect\"}").unwrap_or(0.0) > 0.0
    });
    sender
        .send_to(
            &netflow_v5(&V5_FLOWS, 2, 1_700_000_000, V5_SAMPLING),
            d.listen,
        )
        .unwrap();
    let alloy = Alloy::start_at(alloy_addr);
    // The first answers are UNAVAILABLE too: retried, nothing lost, nothing twice.
    alloy.refuse_first(2);
    let expected = 2 * (1500 + 84) * 10;
    alloy.points_until("both datagrams' bytes", |p| {
        total(p, "network.io.by_flow") >= expected
    });
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    let points = alloy.points();
    assert_eq!(total(&points, "network.io.by_flow"), expected);
    assert_one_point_per_series_per_window(&points);
    assert_eq!(alloy.with(|r| r.refused), 2);
}

#[test]
fn prometheus_and_stdout_sinks_agree_with_the_dashboard_labels() {
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--sink",
        "stdout",
        "--sink",
        "prometheus",
    ]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(
            &netflow_v5(&V5_FLOWS, 0, 1_700_000_000, V5_SAMPLING),
            d.listen,
        )
        .unwrap();
    let body = d.metrics_until("a flow window", |b| b.contains("network_io_by_flow_bytes{"));
    let (status, stdout, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");

    let prom: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("network_io_by_flow_bytes{"))
        .collect();
    let line = prom
        .iter()
        .find(|l| l.contains("network_local_address=\"10.0.0.1\""))
        .unwrap_or_else(|| panic!("{body}"));
    for label in [
        "device_name=\"127.0.0.1\"",
        "network_peer_address=\"192.0.2.7\"",
        "network_protocol_name=\"https\"",
        "network_local_country=\"Private IP\"",
        "network_peer_country=\"Private IP\"",
        "network_transport=\"tcp\"",
        "network_peer_port=\"443\"",
    ] {
        assert!(line.contains(label), "{label} missing in {line}");
    }
    // Same window on both sinks: every Prometheus sample is a stdout point with equal value.
    let points: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!points.is_empty());
    for l in prom {
        let mut parts = l.rsplitn(3, ' ');
        let ts_ms: u64 = parts.next().unwrap().parse().unwrap();
        let value: u64 = parts.next().unwrap().parse().unwrap();
        let labels = parts.next().unwrap();
        let local = labels
            .split("network_local_address=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let matching: Vec<_> = points
            .iter()
            .filter(|p| {
                p["time_unix_nano"].as_u64() == Some(ts_ms * 1_000_000)
                    && p["attributes"]["network.local.address"].as_str() == Some(local)
            })
            .collect();
        assert_eq!(matching.len(), 1, "{l}");
        assert_eq!(matching[0]["value"].as_u64(), Some(value), "{l}");
        assert_eq!(matching[0]["metric"], "network.io.by_flow");
    }
}

#[test]
fn own_metrics_and_tee_logs_go_to_the_same_endpoint() {
    let alloy = Alloy::start();
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--self-metrics-interval",
        "1",
        "--tee-logs",
        "--service-name",
        "edge-flows",
        "--otlp-endpoint",
        &alloy.endpoint(),
    ]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(
            &netflow_v5(&V5_FLOWS, 0, 1_700_000_000, V5_SAMPLING),
            d.listen,
        )
        .unwrap();
    let points = alloy.points_until("flowtel.datagrams from the exporter", |p| {
        p.iter().any(|p| {
            p.metric == "flowtel.datagrams"
                && p.attr("exporter") == Some("127.0.0.1")
                && p.attr("protocol") == Some("netflow_v5")
                && p.value == 1
        })
    });
    let own = points
        .iter()
        .find(|p| p.metric == "flowtel.datagrams")
        .unwrap();
    assert!(!own.gauge, "a counter is a Sum");
    assert_eq!(own.unit, "{datagram}");
    assert_eq!(own.resource_attr("service.name"), Some("edge-flows"));
    // Same resource instance as the flow series.
    let flow = alloy
        .points_until("a flow window", |p| {
            p.iter().any(|p| p.metric == "network.io.by_flow")
        })
        .into_iter()
        .find(|p| p.metric == "network.io.by_flow")
        .unwrap();
    assert_eq!(
        own.resource_attr("service.instance.id"),
        flow.resource_attr("service.instance.id")
    );
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    let logs = alloy.with(|r| r.logs.clone());
    assert!(
        logs.iter()
            .any(|(svc, body)| svc == "edge-flows" && body.contains("new exporter")),
        "{logs:?}"
    );
}

#[test]
fn alloy_down_longer_than_the_queue_drops_counted_windows_and_exits_cleanly() {
    let nowhere = free_tcp_addr();
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--queue-max-windows",
        "1",
        "--shutdown-grace",
        "1",
        "--otlp-endpoint",
        &format!("http://{nowhere}"),
    ]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seq = 0;
    // Keep windows coming until the one-window queue has had to drop some.
    d.metrics_until("a window dropped from the full queue", |b| {
        sender
            .send_to(
                &netflow_v5(&V5_FLOWS, seq, 1_700_000_000, V5_SAMPLING),
                d.listen,
            )
            .unwrap();
        seq += 2;
        sample(
            b,
            "flowtel_export_windows_dropped_total{reason=\"queue_full\"}",
        )
        .unwrap_or(0.0)
            > 0.0
    });
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("not drained within the grace period"),
        "{stderr}"
    );
    // A dropped window is logged once, by the queue (later drops of the same minute go into
    // the periodic report); the daemon does not repeat it.
    assert_eq!(
        stderr
            .matches("export queue dropped a window of rollup bytes_by_flow")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("dropped the oldest window"), "{stderr}");
    // The outage is announced once by the flow exporter, whatever the number of attempts.
    let announced = stderr
        .lines()
        .filter(|l| l.contains("OTLP metrics export failing, retrying") && l.contains("sink=otlp"))
        .count();
    assert_eq!(announced, 1, "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The OTLP connection rules, with the real binary, real TLS (rcgen) and a real tonic server.

mod tls {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::{Arc, Mutex};

    use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };

    pub struct Pki {
        pub ca: PathBuf,
        pub cert_pem: String,
        pub key_pem: String,
        pub client_cert: PathBuf,
        pub client_key: PathBuf,
        /// Where the files are, removed with the `Pki`.
        _dir: crate::common::ScratchDir,
    }

    /// A CA named `name`, a server certificate for `localhost` and a client certificate, the
    /// CA and client files written to a fresh directory.
    pub fn pki(name: &str) -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name.push(DnType::CommonName, name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["flowtel".to_owned()])
            .unwrap()
            .signed_by(&client_key, &issuer)
            .unwrap();
        let dir = crate::common::ScratchDir::new(&format!("tls-{}", name.replace(' ', "-")));
        let write = |file: &str, text: String| {
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            client_cert: write("client.pem", client.pem()),
            client_key: write("client-key.pem", client_key.serialize_pem()),
            _dir: dir,
        }
    }

    #[derive(Clone, Default)]
    struct Names(Arc<Mutex<Vec<String>>>);

    #[tonic::async_trait]
    impl MetricsService for Names {
        async fn export(
            &self,
            request: tonic::Request<ExportMetricsServiceRequest>,
        ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
            let mut names = self.0.lock().unwrap();
            for rm in request.into_inner().resource_metrics {
                for sm in rm.scope_metrics {
                    names.extend(sm.metrics.into_iter().map(|m| m.name));
                }
            }
            Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
        }
    }

    /// A TLS `MetricsServiceServer` on 127.0.0.1 (its certificate from `pki`), recording the
    /// metric names it receives.
    pub struct TlsAlloy {
        pub addr: SocketAddr,
        names: Names,
        _runtime: tokio::runtime::Runtime,
    }

    impl TlsAlloy {
        pub fn start(pki: &Pki, require_client_cert: bool) -> TlsAlloy {
            use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            listener.set_nonblocking(true).unwrap();
            let mut tls =
                ServerTlsConfig::new().identity(Identity::from_pem(&pki.cert_pem, &pki.key_pem));
            if require_client_cert {
                tls = tls.client_ca_root(Certificate::from_pem(std::fs::read(&pki.ca).unwrap()));
            }
            let names = Names::default();
            let service = MetricsServiceServer::new(names.clone())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            runtime.spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let _ = Server::builder()
                    .tls_config(tls)
                    .unwrap()
                    .add_service(service)
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                    .await;
            });
            TlsAlloy {
                addr,
                names,
                _runtime: runtime,
            }
        }

        pub fn endpoint(&self) -> String {
            format!("https://localhost:{}", self.addr.port())
        }

        pub fn names(&self) -> Vec<String> {
            self.names.0.lock().unwrap().clone()
        }
    }

    /// `flowtel` with no OTEL_* variable and the system roots replaced by `roots` (rustls reads
    /// `SSL_CERT_FILE` instead of the platform store).
    pub fn command_with_roots(roots: &Path) -> Command {
        let mut cmd = super::flowtel_command();
        cmd.env("SSL_CERT_FILE", roots).env_remove("SSL_CERT_DIR");
        cmd
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < common::PATIENCE,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn send_v5(d: &Daemon) {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(
            &netflow_v5(&V5_FLOWS, 0, 1_700_000_000, V5_SAMPLING),
            d.listen,
        )
        .unwrap();
}

#[test]
fn a_ca_file_replaces_the_system_roots_for_flow_series_and_own_metrics_alike() {
    let trusted = tls::pki("flowtel e2e CA");
    let other = tls::pki("flowtel e2e other CA");
    // The "system roots" are the CA of the servers' certificates.
    let args = |alloy: &tls::TlsAlloy| {
        vec![
            "--rollup-interval".to_owned(),
            "1".to_owned(),
            "--self-metrics-interval".to_owned(),
            "1".to_owned(),
            "--otlp-endpoint".to_owned(),
            alloy.endpoint(),
        ]
    };

    // Without ca_file the system roots verify the server: everything arrives.
    let alloy = tls::TlsAlloy::start(&trusted, false);
    let a = args(&alloy);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let d = Daemon::start_with(tls::command_with_roots(&trusted.ca), &a);
    send_v5(&d);
    wait_until("flow series and own metrics over TLS", || {
        let names = alloy.names();
        names.iter().any(|n| n == "network.io.by_flow")
            && names.iter().any(|n| n == "flowtel.datagrams")
    });
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");

    // With ca_file naming another CA, the system roots no longer count: the same server is
    // refused, by the flow exporter and the self-metrics exporter both.
    let alloy = tls::TlsAlloy::start(&trusted, false);
    let mut a = args(&alloy);
    a.extend(["--otlp-ca-file".to_owned(), other.ca.display().to_string()]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let d = Daemon::start_with(tls::command_with_roots(&trusted.ca), &a);
    send_v5(&d);
    d.metrics_until("a handshake failure", |b| {
        sample(b, "flowtel_export_failed_total{reason=\"tls_handshake\"}").unwrap_or(0.0) > 0.0
    });
    wait_until("the self-metrics exporter refused too", || {
        d.stderr_text().lines().any(|l| {
            l.contains("sink=self-metrics")
                && l.contains("handshake failed: server certificate not trusted (unknown issuer)")
        })
    });
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(alloy.names().is_empty(), "{:?}", alloy.names());
    assert!(
        stderr.contains("handshake failed: server certificate not trusted (unknown issuer)"),
        "{stderr}"
    );
}

#[test]
fn a_server_requiring_a_client_certificate_is_named_classified_and_retried() {
    let pki = tls::pki("flowtel e2e mtls CA");
    let alloy = tls::TlsAlloy::start(&pki, true);
    let ca = pki.ca.display().to_string();
    let endpoint = alloy.endpoint();
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--otlp-endpoint",
        &endpoint,
        "--otlp-ca-file",
        &ca,
    ]);
    send_v5(&d);
    let body = d.metrics_until("the handshake retried", |b| {
        sample(b, "flowtel_export_failed_total{reason=\"tls_handshake\"}").unwrap_or(0.0) >= 2.0
    });
    assert_eq!(sample(&body, "flowtel_export_failing"), Some(1.0));
    assert_eq!(
        sample(&body, "flowtel_export_failed_total{reason=\"unknown\"}"),
        Some(0.0)
    );
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("handshake failed: client certificate required"),
        "{stderr}"
    );
    assert!(alloy.names().is_empty());

    // With the client certificate and key, the same server accepts the windows.
    let cert = pki.client_cert.display().to_string();
    let key = pki.client_key.display().to_string();
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--otlp-endpoint",
        &endpoint,
        "--otlp-ca-file",
        &ca,
        "--otlp-client-cert",
        &cert,
        "--otlp-client-key",
        &key,
    ]);
    send_v5(&d);
    wait_until("the windows over mTLS", || {
        alloy.names().iter().any(|n| n == "network.io.by_flow")
    });
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
}

/// `flowtel ARGS` run to completion with no OTEL_* variable: (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = flowtel_command().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn contradictions_are_refused_at_start_and_by_check_config_naming_both_settings() {
    let pki = tls::pki("flowtel e2e rules CA");
    let ca = pki.ca.display().to_string();
    let key = pki.client_key.display().to_string();
    let listen = free_udp_addr().to_string();
    let http = free_tcp_addr().to_string();
    for (args, needles) in [
        (
            vec![
                "--otlp-endpoint",
                "http://127.0.0.1:4317",
                "--otlp-ca-file",
                &ca,
            ],
            vec![
                "otlp.ca_file (--otlp-ca-file, OTEL_EXPORTER_OTLP_CERTIFICATE) set",
                "otlp.endpoint \"http://127.0.0.1:4317\" is plain-text",
            ],
        ),
        (
            vec![
                "--otlp-endpoint",
                "https://localhost:4317",
                "--otlp-client-key",
                &key,
            ],
            vec![
                "otlp.client_key_file (--otlp-client-key, OTEL_EXPORTER_OTLP_CLIENT_KEY) is set",
                "but otlp.client_cert_file",
            ],
        ),
    ] {
        let (ok, _, stderr) = run(&[&["check-config"], args.as_slice()].concat());
        assert!(!ok);
        let started = [
            args.as_slice(),
            &["--listen", &listen, "--prometheus-listen", &http],
        ]
        .concat();
        let (ok_run, _, run_stderr) = run(&started);
        assert!(!ok_run, "flowtel started with {args:?}");
        for n in needles {
            assert!(stderr.contains(n), "check-config: {n:?} in {stderr}");
            assert!(run_stderr.contains(n), "run: {n:?} in {run_stderr}");
        }
    }
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_stops_the_daemon_at_start() {
    let dir = common::ScratchDir::new("e2e-ca");
    let not_pem = dir.join("ca.txt");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let missing = dir.join("absent.pem");
    let listen = free_udp_addr().to_string();
    let http = free_tcp_addr().to_string();
    for (file, needle) in [
        (&not_pem, "ca.txt: no PEM CERTIFICATE block in it"),
        (
            &missing,
            "cannot read otlp.ca_file (--otlp-ca-file, OTEL_EXPORTER_OTLP_CERTIFICATE)",
        ),
    ] {
        let file = file.display().to_string();
        // tee_logs builds the first OTLP client (before the log subscriber): the file is
        // checked there too.
        for extra in [&[][..], &["--tee-logs"][..]] {
            let args = [
                &[
                    "--otlp-endpoint",
                    "https://localhost:4317",
                    "--otlp-ca-file",
                    &file,
                    "--listen",
                    &listen,
                    "--prometheus-listen",
                    &http,
                ][..],
                extra,
            ]
            .concat();
            let (ok, _, stderr) = run(&args);
            assert!(!ok, "started with {args:?}");
            assert!(stderr.contains(needle), "{needle:?} in {stderr}");
            assert!(
                !stderr.contains("listening for"),
                "refused before binding: {stderr}"
            );
        }
    }
}

#[test]
fn check_config_redacts_secrets_unless_asked_to_show_them() {
    let mut cmd = flowtel_command();
    cmd.args(["check-config", "--otlp-header", "x-scope-orgid=tenant-1"])
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20hunter2",
        );
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("authorization: <redacted>"), "{stdout}");
    assert!(stdout.contains("x-scope-orgid: <redacted>"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");

    let mut cmd = flowtel_command();
    cmd.args(["check-config", "--show-secrets"]).env(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "authorization=Bearer%20hunter2",
    );
    let out = cmd.output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("authorization: Bearer hunter2"));

    // Credentials in the endpoint are refused (gRPC never sends them), without echoing them.
    let (ok, _, stderr) = run(&[
        "check-config",
        "--otlp-endpoint",
        "http://flowtel:hunter2@alloy:4317",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("\"http://flowtel:<redacted>@alloy:4317\" carries credentials"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_https_endpoint_without_a_ca_file_needs_system_roots() {
    // rustls reads the system roots from SSL_CERT_FILE when it is set: an empty one means none.
    let dir = common::ScratchDir::new("e2e-roots");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let listen = free_udp_addr().to_string();
    let http = free_tcp_addr().to_string();
    let out = tls::command_with_roots(&empty)
        .args([
            "--otlp-endpoint",
            "https://localhost:4317",
            "--listen",
            &listen,
            "--prometheus-listen",
            &http,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no system root certificate found to verify the server"),
        "{stderr}"
    );
}
