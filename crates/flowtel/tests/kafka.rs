//! The kafka sink end to end, against a real Kafka-protocol broker (tansu, in memory) started
//! by each test: the real binary receives committed real-exporter captures over UDP, and an
//! independent consumer (kafka-python, `tests/readers/kafka_consume.py`) reads every record
//! back. Each record's value is one length-delimited message equal to what `flowtel decode
//! --format protobuf` makes of the capture (or its goflow2-style JSON), each exactly once, in
//! the exporter's order, keyed by the exporter address, in the partition the Java client's
//! partitioner gives that key. The broker is also started late, killed and restarted mid-stream
//! (its memory, topic included, is lost then), and put behind TLS (socat); and ClickHouse's
//! Kafka engine (chDB) consumes the topic with `deploy/clickhouse`'s DDL.
//!
//! Tools: `tansu` (built with `--features dynostore`), Python's `kafka` (kafka-python and its
//! codecs), `socat` and `chdb` for two of the tests; `.ci/run` installs them.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, PATIENCE, sample};
use flowtel_records::FlowMessage;
use flowtel_records::proto::flow_message::FlowType;

const TANSU_INSTALL: &str =
    "cargo install --locked tansu@0.6.0 --features dynostore (.ci/run does it)";
const KAFKA_PYTHON_INSTALL: &str =
    "pip install kafka-python lz4 zstandard python-snappy cramjam (.ci/run does it)";

fn tools() -> bool {
    common::require_tool("tansu", TANSU_INSTALL)
        && common::require_tool("python3:kafka", KAFKA_PYTHON_INSTALL)
}

fn readers() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readers"))
}

/// A tansu broker on 127.0.0.1 with in-memory storage, killed on drop (its log in `dir`).
struct Tansu {
    child: Option<Child>,
    listen: SocketAddr,
    advertised: SocketAddr,
    dir: common::ScratchDir,
}

impl Tansu {
    fn start() -> Tansu {
        let addr = common::free_tcp_addr();
        Tansu::start_on(addr, addr)
    }

    /// Listen on `listen`, tell clients to connect to `advertised` (a TLS front's port).
    fn start_on(listen: SocketAddr, advertised: SocketAddr) -> Tansu {
        let mut t = Tansu {
            child: None,
            listen,
            advertised,
            dir: common::ScratchDir::new("tansu"),
        };
        t.restart();
        t
    }

    /// Start the broker process (again): empty, no topics.
    fn restart(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::create(self.dir.join("tansu.log")).unwrap();
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://{}", self.listen),
            ])
            .args([
                "--advertised-listener-url",
                &format!("tcp://{}", self.advertised),
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect_timeout(&self.listen, Duration::from_millis(200)).is_err() {
            assert!(
                start.elapsed() < PATIENCE,
                "tansu did not listen on {}",
                self.listen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new("tansu")
            .args([
                "topic",
                "create",
                name,
                "--broker",
                &format!("tcp://{}", self.listen),
            ])
            .args(["--partitions", &partitions.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGKILL, and wait until the process is gone.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Send a fixture capture's datagrams in order from one socket bound to `from` (one exporter).
fn replay_from(capture: &str, from: Ipv4Addr, to: SocketAddr) {
    let datagrams =
        flowtel_pcap::read_all(common::fixtures().join(format!("{capture}.pcap"))).unwrap();
    let sender = UdpSocket::bind((from, 0)).unwrap();
    for d in &datagrams {
        sender.send_to(&d.payload, to).unwrap();
    }
}

/// The messages `flowtel decode --format protobuf` makes of a capture, as flowtel would make
/// them of the capture replayed from `exporter` (see [`comparable`]).
fn decoded(capture: &str, exporter: Ipv4Addr) -> Vec<FlowMessage> {
    let path = common::fixtures().join(format!("{capture}.pcap"));
    let out = common::flowtel(&["decode", path.to_str().unwrap(), "--format", "protobuf"]);
    assert!(out.status.success(), "{capture}");
    let messages: Vec<FlowMessage> = flowtel_records::protobuf::DelimitedReader::new(&out.stdout)
        .map(|m| m.expect("a whole message"))
        .collect();
    assert!(!messages.is_empty(), "{capture}");
    messages
        .into_iter()
        .map(|mut m| {
            // The captures were made on loopback from 127.0.0.1: the device of a NetFlow/IPFIX
            // record is the datagram's source, an sFlow agent names itself in the datagram.
            m.exporter_address = exporter.octets().to_vec();
            if m.r#type != FlowType::Sflow5 as i32 {
                m.sampler_address = exporter.octets().to_vec();
                m.device_name = exporter.to_string();
            }
            comparable(m)
        })
        .collect()
}

/// A message without what depends on when and from which port the datagrams were sent: the
/// receive time (and a flow time that is the receive time, for records that carry none) and
/// the exporter's source port.
fn comparable(mut m: FlowMessage) -> FlowMessage {
    let received = m.time_received_ns;
    assert!(received > 0);
    if m.time_flow_start_ns == received {
        m.time_flow_start_ns = 0;
    }
    if m.time_flow_end_ns == received {
        m.time_flow_end_ns = 0;
    }
    m.time_received_ns = 0;
    m.exporter_port = 0;
    m
}

/// One record as the independent consumer read it.
#[derive(Debug, Clone)]
struct Consumed {
    topic: String,
    partition: u64,
    offset: u64,
    key: String,
    value: Vec<u8>,
    /// kafka-python's murmur2 partition of the key.
    key_partition: u64,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every record of `topics` (`(topic, count)`), read by kafka-python from offset 0 until
/// `count` arrived, plus two seconds for any duplicate. `tls`: CA, client certificate, key.
fn consume(broker: SocketAddr, topics: &[(&str, usize)], tls: Option<&Pki>) -> Vec<Consumed> {
    let mut cmd = Command::new("python3");
    cmd.arg(readers().join("kafka_consume.py"));
    if let Some(p) = tls {
        cmd.arg("--tls")
            .arg(&p.ca)
            .arg(&p.client_cert)
            .arg(&p.client_key);
    }
    cmd.arg(broker.to_string());
    for (t, n) in topics {
        cmd.arg(format!("{t}={n}"));
    }
    let out = cmd.output().expect("run python3");
    assert!(
        out.status.success(),
        "kafka_consume.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Consumed {
                topic: v["topic"].as_str().unwrap().to_owned(),
                partition: v["partition"].as_u64().unwrap(),
                offset: v["offset"].as_u64().unwrap(),
                key: v["key"].as_str().unwrap().to_owned(),
                value: unhex(v["value"].as_str().unwrap()),
                key_partition: v["key_partition"].as_u64().unwrap(),
            }
        })
        .collect()
}

/// A record value as its one length-delimited message (nothing before or after it).
fn message(value: &[u8]) -> FlowMessage {
    let mut all = flowtel_records::protobuf::DelimitedReader::new(value);
    let m = all.next().expect("a message").expect("a whole message");
    assert!(all.next().is_none(), "one message per record value");
    m
}

/// The records of one topic by key, in offset order, after checking that each key stays in
/// the one partition kafka-python's partitioner gives it.
fn by_key<'a>(records: &'a [Consumed], topic: &str) -> BTreeMap<String, Vec<&'a Consumed>> {
    let mut out: BTreeMap<String, Vec<&Consumed>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.topic == topic) {
        assert_eq!(
            r.partition, r.key_partition,
            "{topic}: key {} in partition {}, murmur2 says {}",
            r.key, r.partition, r.key_partition
        );
        out.entry(r.key.clone()).or_default().push(r);
    }
    for list in out.values_mut() {
        list.sort_by_key(|r| r.offset);
        assert!(list.windows(2).all(|w| w[0].partition == w[1].partition));
    }
    out
}

/// The sink's counters.
struct Counts {
    selected: f64,
    delivered: f64,
    dropped: f64,
    queue_full: f64,
    depth: f64,
}

fn counts(body: &str) -> Counts {
    let s = |k: &str| sample(body, k).unwrap_or(0.0);
    let queue_full = s("flowtel_sink_dropped_total{sink=\"kafka\",reason=\"queue_full\"}");
    Counts {
        selected: s("flowtel_flow_records_selected_total"),
        delivered: s("flowtel_sink_delivered_total{sink=\"kafka\"}"),
        dropped: queue_full
            + s("flowtel_sink_dropped_total{sink=\"kafka\",reason=\"shutdown\"}")
            + s("flowtel_sink_dropped_total{sink=\"kafka\",reason=\"failed\"}"),
        queue_full,
        depth: s("flowtel_sink_queue_depth{sink=\"kafka\"}"),
    }
}

fn kafka_error(body: &str, reason: &str) -> f64 {
    sample(
        body,
        &format!("flowtel_kafka_errors_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Start flowtel with the kafka sink to `broker` and topic `topic`, short linger, plus `extra`.
fn daemon(broker: SocketAddr, topic: &str, extra: &[&str]) -> Daemon {
    let broker = broker.to_string();
    let mut args = vec![
        "--sink",
        "kafka",
        "--kafka-brokers",
        broker.as_str(),
        "--kafka-topic",
        topic,
        "--kafka-property",
        "linger.ms=100",
    ];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

fn wait_delivered(d: &Daemon, n: usize) -> String {
    d.metrics_until(&format!("{n} records delivered to Kafka"), |b| {
        counts(b).delivered == n as f64
    })
}

const EXPORTERS: [(&str, Ipv4Addr); 4] = [
    ("softflowd-v9", Ipv4Addr::new(127, 0, 0, 1)),
    ("softflowd-ipfix", Ipv4Addr::new(127, 0, 0, 2)),
    ("softflowd-v5", Ipv4Addr::new(127, 0, 0, 3)),
    ("pmacct-sfprobe-sr10", Ipv4Addr::new(127, 0, 0, 4)),
];

#[test]
fn every_record_reaches_kafka_once_as_decode_makes_it_keyed_and_partitioned_by_exporter() {
    if !tools() {
        return;
    }
    let broker = Tansu::start();
    // Protobuf, uncompressed: four exporters (NetFlow v9, IPFIX, v5, sFlow) on three partitions.
    broker.create_topic("flows", 3);
    let d = daemon(broker.listen, "flows", &[]);
    let mut expected: BTreeMap<String, Vec<FlowMessage>> = BTreeMap::new();
    for (capture, exporter) in EXPORTERS {
        replay_from(capture, exporter, d.listen);
        expected.insert(exporter.to_string(), decoded(capture, exporter));
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let body = wait_delivered(&d, total);
    let c = counts(&body);
    assert_eq!((c.selected, c.dropped, c.depth), (total as f64, 0.0, 0.0));
    assert_eq!(
        sample(&body, "flowtel_kafka_produced_records_total"),
        Some(total as f64)
    );
    assert_eq!(sample(&body, "flowtel_kafka_connected"), Some(1.0));
    assert_eq!(sample(&body, "flowtel_kafka_partitions"), Some(3.0));
    for reason in [
        "connect",
        "tls_handshake",
        "auth",
        "unknown_topic",
        "timeout",
        "transport",
        "broker",
        "rejected",
    ] {
        assert_eq!(kafka_error(&body, reason), 0.0, "{reason}");
    }
    let requests = sample(&body, "flowtel_kafka_produce_requests_total").unwrap();
    assert!(requests >= 1.0);
    assert!(sample(&body, "flowtel_kafka_produce_time_microseconds_total").unwrap() > 0.0);
    assert!(sample(&body, "flowtel_kafka_produced_bytes_total").unwrap() > (total * 100) as f64);
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");

    // The other codecs (protobuf), and JSON with zstd: one capture each, from 127.0.0.1.
    let ipfix = decoded("softflowd-ipfix", Ipv4Addr::LOCALHOST);
    let (json_lines, _) = common::decode_fixture("softflowd-ipfix", "flow-json");
    let variants: [(&str, &[&str]); 4] = [
        ("flows-gzip", &["--kafka-compression", "gzip"]),
        ("flows-lz4", &["--kafka-compression", "lz4"]),
        ("flows-snappy", &["--kafka-compression", "snappy"]),
        (
            "flows-json-zstd",
            &["--kafka-format", "json", "--kafka-compression", "zstd"],
        ),
    ];
    for (topic, extra) in variants {
        broker.create_topic(topic, 2);
        let d = daemon(broker.listen, topic, extra);
        replay_from("softflowd-ipfix", Ipv4Addr::LOCALHOST, d.listen);
        wait_delivered(&d, ipfix.len());
        let (status, _, stderr) = d.terminate();
        assert!(status.success(), "{topic}: {stderr}");
    }

    let mut topics = vec![("flows", total)];
    topics.extend(variants.iter().map(|(t, _)| (*t, ipfix.len())));
    let records = consume(broker.listen, &topics, None);

    let got = by_key(&records, "flows");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "one key per exporter address"
    );
    let partitions: std::collections::BTreeSet<u64> =
        got.values().map(|l| l[0].partition).collect();
    assert!(
        partitions.len() >= 2,
        "four exporters spread over the partitions: {partitions:?}"
    );
    for (key, want) in &expected {
        let have: Vec<FlowMessage> = got[key]
            .iter()
            .map(|r| comparable(message(&r.value)))
            .collect();
        assert_eq!(have.len(), want.len(), "exporter {key}: each record once");
        for (i, (h, w)) in have.iter().zip(want).enumerate() {
            assert_eq!(h, w, "exporter {key}, record {i}");
        }
    }
    for (topic, _) in &variants[..3] {
        let got = by_key(&records, topic);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["127.0.0.1"], "{topic}");
        let have: Vec<FlowMessage> = got["127.0.0.1"]
            .iter()
            .map(|r| comparable(message(&r.value)))
            .collect();
        assert_eq!(have, ipfix, "{topic}");
    }
    // JSON: the goflow2-style line without its newline, as `decode --format flow-json` prints.
    let got = by_key(&records, "flows-json-zstd");
    let normalize = |v: &mut serde_json::Value| {
        let o = v.as_object_mut().unwrap();
        o.remove("time_received_ns");
        o.remove("exporter_port");
    };
    let want: Vec<serde_json::Value> = json_lines
        .lines()
        .map(|l| {
            let mut v = serde_json::from_str(l).unwrap();
            normalize(&mut v);
            v
        })
        .collect();
    let have: Vec<serde_json::Value> = got["127.0.0.1"]
        .iter()
        .map(|r| {
            assert!(!r.value.ends_with(b"\n"));
            let mut v = serde_json::from_slice(&r.value).unwrap();
            normalize(&mut v);
            v
        })
        .collect();
    assert_eq!(have, want);
}

#[test]
fn a_broker_down_at_start_gets_the_buffered_records_once_it_is_up() {
    if !tools() {
        return;
    }
    let addr = common::free_tcp_addr();
    let d = daemon(addr, "flows", &[]);
    replay_from("softflowd-v9", Ipv4Addr::LOCALHOST, d.listen);
    let want = decoded("softflowd-v9", Ipv4Addr::LOCALHOST);
    let body = d.metrics_until("records held while the broker is down", |b| {
        let c = counts(b);
        c.selected == want.len() as f64
            && kafka_error(b, "connect") > 0.0
            && sample(b, "flowtel_sink_failing{sink=\"kafka\"}") == Some(1.0)
    });
    let c = counts(&body);
    assert_eq!((c.delivered, c.dropped), (0.0, 0.0), "held, not dropped");
    assert_eq!(sample(&body, "flowtel_kafka_connected"), Some(0.0));

    let broker = Tansu::start_on(addr, addr);
    broker.create_topic("flows", 2);
    let body = wait_delivered(&d, want.len());
    let c = counts(&body);
    assert_eq!((c.dropped, c.depth), (0.0, 0.0));
    assert_eq!(sample(&body, "flowtel_kafka_connected"), Some(1.0));
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("Kafka not available; records wait in the queue"),
        "{stderr}"
    );
    assert!(stderr.contains("Kafka brokers reachable again"), "{stderr}");

    let records = consume(broker.listen, &[("flows", want.len())], None);
    let got = by_key(&records, "flows");
    let have: Vec<FlowMessage> = got["127.0.0.1"]
        .iter()
        .map(|r| comparable(message(&r.value)))
        .collect();
    assert_eq!(have, want, "every record once, in order");
}

#[test]
fn a_broker_killed_mid_stream_gets_what_was_held_and_what_did_not_fit_is_counted() {
    if !tools() {
        return;
    }
    let mut broker = Tansu::start();
    broker.create_topic("flows", 3);
    let dir = common::ScratchDir::new("kafka");
    let config = dir.join("small-queue.yaml");
    std::fs::write(&config, "flow_records:\n  queue_max_records: 300\n").unwrap();
    let d = daemon(
        broker.listen,
        "flows",
        &["--config", config.to_str().unwrap()],
    );

    // Before: delivered and read back.
    let a = Ipv4Addr::new(127, 0, 0, 1);
    replay_from("softflowd-v9", a, d.listen);
    let first = decoded("softflowd-v9", a);
    wait_delivered(&d, first.len());
    let records = consume(broker.listen, &[("flows", first.len())], None);
    let have: Vec<FlowMessage> = by_key(&records, "flows")[&a.to_string()]
        .iter()
        .map(|r| comparable(message(&r.value)))
        .collect();
    assert_eq!(have, first);

    // The broker dies (with its memory). What arrives now is held, up to the queue's bound.
    broker.kill();
    let b = Ipv4Addr::new(127, 0, 0, 2);
    replay_from("softflowd-ipfix", b, d.listen);
    d.metrics_until("the outage seen", |body| {
        kafka_error(body, "connect") + kafka_error(body, "transport") > 0.0
            && sample(body, "flowtel_sink_failing{sink=\"kafka\"}") == Some(1.0)
    });
    let later = [
        ("pmacct-nfprobe-v9", Ipv4Addr::new(127, 0, 0, 3)),
        ("softflowd-v5", Ipv4Addr::new(127, 0, 0, 4)),
    ];
    for (capture, exporter) in later {
        replay_from(capture, exporter, d.listen);
    }
    let mut expected: BTreeMap<String, Vec<FlowMessage>> = BTreeMap::new();
    expected.insert(b.to_string(), decoded("softflowd-ipfix", b));
    for (capture, exporter) in later {
        expected.insert(exporter.to_string(), decoded(capture, exporter));
    }
    let sent = first.len() + expected.values().map(Vec::len).sum::<usize>();
    let body = d.metrics_until("every record selected, some beyond the queue", |body| {
        let c = counts(body);
        c.selected == sent as f64 && c.queue_full > 0.0
    });
    assert_eq!(counts(&body).delivered, first.len() as f64);

    // Back, empty: the topic is made again and the held records arrive.
    broker.restart();
    broker.create_topic("flows", 3);
    let body = d.metrics_until("every record delivered or counted as dropped", |body| {
        let c = counts(body);
        c.delivered + c.dropped == sent as f64 && c.depth == 0.0
    });
    let c = counts(&body);
    assert_eq!(c.dropped, c.queue_full, "only what did not fit is dropped");
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");

    let after = c.delivered as usize - first.len();
    let records = consume(broker.listen, &[("flows", after)], None);
    assert_eq!(records.len(), after, "delivered records, each once");
    let got = by_key(&records, "flows");
    // The batch in flight when the broker died is all there; of the others, whole receive
    // passes are missing (dropped when the queue was full), never a record twice.
    let held: Vec<FlowMessage> = got[&b.to_string()]
        .iter()
        .map(|r| comparable(message(&r.value)))
        .collect();
    assert_eq!(held, expected[&b.to_string()]);
    for (key, list) in &got {
        let want = &expected[key];
        let mut rest = want.iter();
        for r in list {
            let m = comparable(message(&r.value));
            assert!(
                rest.any(|w| *w == m),
                "exporter {key}: a record out of order, duplicated or unknown"
            );
        }
    }
}

/// A CA, a certificate for 127.0.0.1 and localhost, and a client certificate, in files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// Where the files are, removed with them.
    _dir: common::ScratchDir,
}

fn pki(name: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            Ipv4Addr::LOCALHOST,
        )));
    let cert = params.signed_by(&key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["flowtel".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let dir = common::ScratchDir::new(&format!("kafka-pki-{name}"));
    let write = |file: &str, text: String| -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        cert: write("server.pem", cert.pem()),
        key: write("server-key.pem", key.serialize_pem()),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
        _dir: dir,
    }
}

/// socat terminating TLS (client certificate required) in front of a plain-text port.
struct TlsFront(Child);

impl TlsFront {
    fn start(pki: &Pki, listen: SocketAddr, to: SocketAddr) -> TlsFront {
        let p = |p: &Path| p.to_str().unwrap().to_owned();
        let child = Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify=1",
                listen.port(),
                p(&pki.cert),
                p(&pki.key),
                p(&pki.ca)
            ))
            .arg(format!("TCP:{to}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start socat");
        let start = Instant::now();
        while TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_err() {
            assert!(start.elapsed() < PATIENCE, "socat did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsFront(child)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tls_with_a_private_ca_and_a_client_certificate() {
    if !tools() || !common::require_tool("socat -V", "apt-get install socat (.ci/run does it)") {
        return;
    }
    let good = pki("flowtel kafka ca");
    let other = pki("another ca");
    let plain = common::free_tcp_addr();
    let tls = common::free_tcp_addr();
    let broker = Tansu::start_on(plain, tls);
    broker.create_topic("flows", 2);
    let _front = TlsFront::start(&good, tls, plain);
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let with = |ca: &Pki, client: bool| -> Daemon {
        let mut args = vec![
            "security.protocol=SSL".to_owned(),
            format!("ssl.ca.location={}", path(&ca.ca)),
        ];
        if client {
            args.push(format!(
                "ssl.certificate.location={}",
                path(&good.client_cert)
            ));
            args.push(format!("ssl.key.location={}", path(&good.client_key)));
        }
        let mut flags: Vec<&str> = Vec::new();
        for a in &args {
            flags.push("--kafka-property");
            flags.push(a);
        }
        daemon(tls, "flows", &flags)
    };

    // The CA replaces the system roots: a broker certificate from another CA is refused.
    let d = with(&other, true);
    replay_from("softflowd-v9", Ipv4Addr::LOCALHOST, d.listen);
    let body = d.metrics_until("the handshake refused", |b| {
        kafka_error(b, "tls_handshake") > 0.0
    });
    assert_eq!(counts(&body).delivered, 0.0);
    drop(d);
    // Without a client certificate the front refuses the connection.
    let d = with(&good, false);
    replay_from("softflowd-v9", Ipv4Addr::LOCALHOST, d.listen);
    let body = d.metrics_until("the connection refused", |b| {
        let e: f64 = ["connect", "tls_handshake", "transport"]
            .iter()
            .map(|r| kafka_error(b, r))
            .sum();
        e > 0.0
    });
    assert_eq!(counts(&body).delivered, 0.0);
    drop(d);
    // The right CA and a client certificate: delivered, and read back over TLS.
    let d = with(&good, true);
    replay_from("softflowd-v9", Ipv4Addr::LOCALHOST, d.listen);
    let want = decoded("softflowd-v9", Ipv4Addr::LOCALHOST);
    wait_delivered(&d, want.len());
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    let records = consume(tls, &[("flows", want.len())], Some(&good));
    let have: Vec<FlowMessage> = by_key(&records, "flows")["127.0.0.1"]
        .iter()
        .map(|r| comparable(message(&r.value)))
        .collect();
    assert_eq!(have, want);
}

#[test]
fn clickhouse_kafka_engine_consumes_the_topic_with_the_deploy_ddl() {
    if !tools() || !common::require_tool("python3:chdb", "pip install chdb (.ci/run does it)") {
        return;
    }
    let broker = Tansu::start();
    broker.create_topic("flows", 2);
    let d = daemon(broker.listen, "flows", &[]);
    let mut records: Vec<FlowMessage> = Vec::new();
    for (capture, exporter) in &EXPORTERS[..2] {
        replay_from(capture, *exporter, d.listen);
        records.extend(decoded(capture, *exporter));
    }
    wait_delivered(&d, records.len());
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");

    let out = Command::new("python3")
        .arg(readers().join("clickhouse_kafka.py"))
        .arg(common::repo().join("proto/flowtel/flow/v1/flow.proto"))
        .arg(common::repo().join("deploy/clickhouse"))
        .arg(broker.listen.to_string())
        .arg("flows")
        .arg(records.len().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clickhouse_kafka.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let totals = &results["totals"][0];
    let sum = |f: &dyn Fn(&FlowMessage) -> u64| -> u64 { records.iter().map(f).sum() };
    assert_eq!(totals["flows"], records.len() as u64);
    assert_eq!(totals["exported_bytes"], sum(&|m| m.bytes));
    assert_eq!(totals["exported_packets"], sum(&|m| m.packets));
    assert_eq!(totals["sampled_bytes"], sum(&|m| m.bytes * m.sampling_rate));
    assert_eq!(
        totals["sampled_packets"],
        sum(&|m| m.packets * m.sampling_rate)
    );
    assert_eq!(
        results["exporters"],
        serde_json::json!(["127.0.0.1", "127.0.0.2"])
    );
}

/// The compose demo's kafka collector (`deploy/compose/flowtel-kafka.yaml`) with tansu for its
/// broker, fed by the demo's `generator-kafka` command: it creates its topic with the
/// configured partitions and publishes every generated record (zstd), each read back once.
#[test]
fn the_compose_kafka_collector_creates_its_topic_and_publishes_the_generator_s_records() {
    if !tools() {
        return;
    }
    let broker = Tansu::start();
    let text =
        std::fs::read_to_string(common::repo().join("deploy/compose/flowtel-kafka.yaml")).unwrap();
    let mut cfg: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let m = cfg.as_mapping_mut().unwrap();
    m.insert("sinks".into(), vec!["kafka"].into());
    // The GeoIP databases are where the compose file mounts them; deploy_files.rs runs them.
    m.remove("geoip");
    let kafka = m.get_mut("kafka").unwrap().as_mapping_mut().unwrap();
    let topic = kafka["topic"].as_str().unwrap().to_owned();
    let partitions = kafka["create_topic_partitions"].as_u64().unwrap();
    kafka.insert("brokers".into(), vec![broker.listen.to_string()].into());
    let dir = common::ScratchDir::new("kafka");
    let file = dir.join("flowtel-kafka.yaml");
    std::fs::write(&file, serde_yaml::to_string(&cfg).unwrap()).unwrap();
    let d = Daemon::start(&[
        "--config",
        file.to_str().unwrap(),
        "--kafka-property",
        "linger.ms=100",
    ]);

    let compose: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(common::repo().join("deploy/compose/docker-compose.yml")).unwrap(),
    )
    .unwrap();
    let args: Vec<String> = compose["services"]["generator-kafka"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .map(|a| {
            if a.starts_with("--target=") {
                format!("--target={}", d.listen)
            } else {
                a
            }
        })
        .collect();
    let count = 600;
    let out = Command::new(env!("CARGO_BIN_EXE_flowtel"))
        .args(&args)
        .args([&format!("--count={count}"), "--report-interval=0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = d.metrics_until("every generated record delivered", |b| {
        let c = counts(b);
        c.selected == count as f64 && c.delivered == c.selected
    });
    assert_eq!(
        sample(&body, "flowtel_kafka_partitions"),
        Some(partitions as f64)
    );
    assert_eq!(
        kafka_error(&body, "unknown_topic"),
        0.0,
        "created before the first record"
    );
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("created the Kafka topic"), "{stderr}");

    let records = consume(broker.listen, &[(&topic, count)], None);
    assert_eq!(records.len(), count);
    let got = by_key(&records, &topic);
    assert_eq!(
        got.len(),
        4,
        "one key per simulated exporter: {:?}",
        got.keys()
    );
    for list in got.values() {
        for r in list {
            let m = message(&r.value);
            assert_eq!(
                r.key,
                flowtel_records::message::addr_from_bytes(&m.exporter_address)
                    .unwrap()
                    .to_string()
            );
        }
    }
}
