//! sFlow counter samples as interface metrics, and sFlow drop notifications as discard counts.
//!
//! # What is emitted
//!
//! Per interface (sFlow agent and ifIndex), in every window in which a counter sample of it
//! arrived, the OpenTelemetry hardware semantic conventions' network metrics
//! (`model/hardware/network-metrics.yaml`, `common-metrics.yaml`):
//!
//! | metric | kind | unit | from (sFlow v5 counter record 1, 2) | attributes beyond the common ones |
//! |---|---|---|---|---|
//! | `hw.network.io` | increase | `By` | ifIn/OutOctets | `hw.direction` |
//! | `hw.network.packets` | increase | `{packet}` | ifIn/Out Ucast + Multicast + BroadcastPkts | `hw.direction` |
//! | `hw.errors` | increase | `{error}` | ifIn/OutDiscards, ifIn/OutErrors, ifInUnknownProtos, dot3Stats*Errors | `hw.direction`, `error.type` |
//! | `hw.network.bandwidth.limit` | level | `By/s` | ifSpeed / 8 (when not 0) | |
//! | `hw.network.up` | level | `1` | ifOperStatus (bit 1 of ifStatus): 1 up, 0 down | |
//!
//! and, per agent, interface and reason, the discarded packets its drop notifications report:
//! `flowtel.device.discards` (increase, `{packet}`, attribute `reason`). No semantic convention
//! covers them; the name says they are the device's discards, not flowtel's.
//!
//! Every point carries `device_name` (the configured device name, else the agent address, as
//! the flow series), `exporter_address` (the agent address), `hw.type` = `network`, `hw.id` (the
//! ifIndex, unique within the agent) and `hw.name` when the agent sent a port name (counter
//! record 1005; drop notifications take the name their interface's counters carried).
//! `error.type` is the counter's MIB name (closed set): `discards`, `errors`, `unknown_protos`
//! (ifTable), and from the ethernet record `alignment_errors`, `fcs_errors`,
//! `frame_too_longs`, `internal_mac_receive_errors`, `symbol_errors` (receive),
//! `sqe_test_errors`, `late_collisions`, `excessive_collisions`,
//! `internal_mac_transmit_errors`, `carrier_sense_errors` (transmit). ifInErrors counts the
//! receive errors the ethernet record details, so sum `error.type` `discards` and `errors` for a
//! total. `reason` is the drop notification's reason name (`acl`, `ttl_exceeded`, ... the
//! closed set of [`flowtel_decode::DropReason::name`]), `other` for a code it does not define, and
//! `unreported` for the notifications the agent counted but did not send (its cumulative
//! `drops`).
//!
//! # Increases from cumulative counters
//!
//! sFlow counters are cumulative (RFC 2863 semantics). The worker that owns an agent keeps
//! each interface's previous sample and turns each new one into increases:
//!
//! - 32-bit counters (packets, errors) wrap: the increase is the difference modulo 2^32.
//!   64-bit counters (octets) do not wrap in practice: a lower value means the counters were
//!   cleared.
//! - The agent restarted when its uptime (datagram header, time since it started) is shorter
//!   than the time since the previous sample, or moved on by more than that time allows; its
//!   counters may have started again.
//! - A restart, a cleared counter, or a 32-bit increase larger than the link could carry in
//!   the elapsed time (when ifSpeed is known) makes the sample a new **baseline**: no increase
//!   is computed from it (the traffic between the previous sample and the reset is not
//!   counted; nothing is ever counted twice or invented). The first sample of an interface is
//!   a baseline too, with zero increases, so its series start at once.
//! - A sample a few sequence numbers and at most five minutes of uptime behind the previous
//!   one, or the same sample again (reordered or duplicated datagrams), is skipped.
//!
//! Drop notifications count one discarded packet each, by reason; their cumulative `drops`
//! field (notifications not sent) is turned into increases the same way, per data source.
//!
//! # Windows, workers and state (decision)
//!
//! The increases are what the windows carry, in the receive-time windows of the flush interval
//! ([`InterfaceWindow`]): increases add up, so the windows of several workers merge by addition
//! ([`InterfaceWindow::merge`]) exactly as flow windows do, and the sinks make what their
//! protocol needs of them: the OTLP converter a monotonic sum (delta points, or running totals
//! for a cumulative sum), the Prometheus sink a counter. Levels keep the latest sample. The
//! previous-sample state stays with the worker that receives the agent's datagrams (the daemon
//! routes every datagram of an exporter address to one worker), so no lock is taken and no
//! state is shared; it is bounded by [`InterfacesConfig::max_interfaces`] per worker (a new
//! interface or drop source beyond it is refused and counted) and forgotten after
//! [`InterfacesConfig::idle_secs`] without a sample. Publishing cumulative values from one
//! shared table was rejected: it needs a lock on the receive path, and delta temporality would
//! have to difference them again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use flowtel_decode::{CounterRecord, DropRecord, EthernetCounters, InterfaceCounters};
use flowtel_series::{AttrValue, Point, PointKind, WindowBatch};
use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

/// The name of the batch interface metrics are emitted in (the `rollup` of its windows).
pub const BATCH_NAME: &str = "interfaces";

/// The metric of drop notifications.
pub const DISCARDS_METRIC: &str = "flowtel.device.discards";

/// The `interfaces:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterfacesConfig {
    /// Emit sFlow counter samples and drop notifications as metrics.
    pub enabled: bool,
    /// Interfaces (and drop-notification sources) whose previous sample each receive worker
    /// keeps; a new one beyond it is refused and counted.
    pub max_interfaces: usize,
    /// Forget an interface after this long without a sample (its next one is a baseline).
    pub idle_secs: u64,
}

impl Default for InterfacesConfig {
    fn default() -> Self {
        InterfacesConfig {
            enabled: true,
            max_interfaces: 100_000,
            idle_secs: 3600,
        }
    }
}

/// One counter the interface metrics report.
#[derive(Debug, Clone, Copy)]
struct CounterDef {
    metric: &'static str,
    unit: &'static str,
    direction: &'static str,
    error_type: Option<&'static str>,
}

const IO: &str = "hw.network.io";
const PACKETS: &str = "hw.network.packets";
const ERRORS: &str = "hw.errors";
const RX: &str = "receive";
const TX: &str = "transmit";

const fn def(
    metric: &'static str,
    unit: &'static str,
    direction: &'static str,
    error_type: Option<&'static str>,
) -> CounterDef {
    CounterDef {
        metric,
        unit,
        direction,
        error_type,
    }
}

const fn error(direction: &'static str, error_type: &'static str) -> CounterDef {
    def(ERRORS, "{error}", direction, Some(error_type))
}

/// Counters of the generic interface record, then of the ethernet record, in the order of
/// [`Increases`].
const COUNTERS: [CounterDef; COUNTER_COUNT] = [
    def(IO, "By", RX, None),
    def(IO, "By", TX, None),
    def(PACKETS, "{packet}", RX, None),
    def(PACKETS, "{packet}", TX, None),
    error(RX, "discards"),
    error(TX, "discards"),
    error(RX, "errors"),
    error(TX, "errors"),
    error(RX, "unknown_protos"),
    error(RX, "alignment_errors"),
    error(RX, "fcs_errors"),
    error(RX, "frame_too_longs"),
    error(RX, "internal_mac_receive_errors"),
    error(RX, "symbol_errors"),
    error(TX, "sqe_test_errors"),
    error(TX, "late_collisions"),
    error(TX, "excessive_collisions"),
    error(TX, "internal_mac_transmit_errors"),
    error(TX, "carrier_sense_errors"),
];
const GENERIC_COUNT: usize = 9;
const COUNTER_COUNT: usize = 19;

/// Increases of every counter of [`COUNTERS`], in its order.
type Increases = [u64; COUNTER_COUNT];

/// The drop-notification reason labels beyond [`DropReason::name`].
const REASON_OTHER: &str = "other";
const REASON_UNREPORTED: &str = "unreported";

/// Why a sample was taken as a new baseline (no increase computed from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The first sample of an interface (or of one forgotten after `idle_secs`).
    New,
    /// The agent's uptime shows it restarted.
    AgentRestart,
    /// A counter went back (cleared) or grew more than the link could carry.
    CounterReset,
}

impl Baseline {
    pub const ALL: [Baseline; 3] = [
        Baseline::New,
        Baseline::AgentRestart,
        Baseline::CounterReset,
    ];

    /// The `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Baseline::New => "new",
            Baseline::AgentRestart => "agent_restart",
            Baseline::CounterReset => "counter_reset",
        }
    }
}

/// Why a sample was not used at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Behind the previous sample (reordered or duplicated datagram).
    OutOfOrder,
    /// A new interface or drop source while the worker's table is full.
    TableFull,
}

impl Skip {
    pub const ALL: [Skip; 2] = [Skip::OutOfOrder, Skip::TableFull];

    /// The `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Skip::OutOfOrder => "out_of_order",
            Skip::TableFull => "table_full",
        }
    }
}

/// Counters of one worker's interface metrics (sum them with [`InterfaceStats::merge`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// Counter samples received.
    pub samples: u64,
    /// Samples taken as baselines, by [`Baseline`] (in [`Baseline::ALL`] order).
    pub baselines: [u64; 3],
    /// Samples (and drop notifications' `drops` values) not used, by [`Skip`].
    pub skipped: [u64; 2],
    /// Drop notifications received.
    pub drop_notifications: u64,
    /// Interfaces and drop sources whose previous sample is kept now.
    pub tracked: u64,
}

impl InterfaceStats {
    pub fn merge(&mut self, o: &InterfaceStats) {
        self.samples += o.samples;
        for (a, b) in self.baselines.iter_mut().zip(o.baselines) {
            *a += b;
        }
        for (a, b) in self.skipped.iter_mut().zip(o.skipped) {
            *a += b;
        }
        self.drop_notifications += o.drop_notifications;
        self.tracked += o.tracked;
    }

    pub fn baselines(&self, b: Baseline) -> u64 {
        self.baselines[b as usize]
    }

    pub fn skipped(&self, s: Skip) -> u64 {
        self.skipped[s as usize]
    }
}

/// Which interface of which agent: the series of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Interface {
    agent: IpAddr,
    if_index: u32,
}

/// What a window holds for one interface.
#[derive(Debug, Clone)]
struct InterfaceAcc {
    device_name: Arc<str>,
    name: Option<Arc<str>>,
    increases: Increases,
    /// Whether any sample had ethernet counters (their series are emitted).
    ethernet: bool,
    /// The latest level: (received ns, ifSpeed bit/s, oper status up).
    level: (u64, u64, bool),
}

/// Discards of one reason at one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct DiscardKey {
    interface: Interface,
    reason: &'static str,
}

#[derive(Debug, Clone)]
struct DiscardAcc {
    device_name: Arc<str>,
    name: Option<Arc<str>>,
    count: u64,
}

/// The increases and levels of one window of one worker; mergeable with the same window of
/// the other workers, then [`InterfaceWindow::finish`]ed into points.
#[derive(Debug, Clone)]
pub struct InterfaceWindow {
    start_ns: u64,
    interval_ns: u64,
    interfaces: HashMap<Interface, InterfaceAcc, RandomState>,
    discards: HashMap<DiscardKey, DiscardAcc, RandomState>,
}

impl InterfaceWindow {
    fn new(start_ns: u64, interval_ns: u64) -> Self {
        InterfaceWindow {
            start_ns,
            interval_ns,
            interfaces: HashMap::default(),
            discards: HashMap::default(),
        }
    }

    /// Window start, Unix nanoseconds.
    pub fn start_time_unix_nano(&self) -> u64 {
        self.start_ns
    }

    /// Window end, Unix nanoseconds.
    pub fn end_time_unix_nano(&self) -> u64 {
        self.start_ns.saturating_add(self.interval_ns)
    }

    pub fn is_empty(&self) -> bool {
        self.interfaces.is_empty() && self.discards.is_empty()
    }

    fn add_interface(&mut self, key: Interface, acc: InterfaceAcc) {
        match self.interfaces.get_mut(&key) {
            None => {
                self.interfaces.insert(key, acc);
            }
            Some(a) => {
                for (x, y) in a.increases.iter_mut().zip(acc.increases) {
                    *x = x.saturating_add(y);
                }
                a.ethernet |= acc.ethernet;
                if acc.level.0 >= a.level.0 {
                    a.level = acc.level;
                    a.device_name = acc.device_name;
                    if acc.name.is_some() {
                        a.name = acc.name;
                    }
                } else if a.name.is_none() {
                    a.name = acc.name;
                }
            }
        }
    }

    fn add_discards(&mut self, key: DiscardKey, acc: DiscardAcc) {
        match self.discards.get_mut(&key) {
            None => {
                self.discards.insert(key, acc);
            }
            Some(a) => {
                a.count = a.count.saturating_add(acc.count);
                if a.name.is_none() {
                    a.name = acc.name;
                }
            }
        }
    }

    /// Add the same window of another worker: increases add up, the latest level wins.
    /// Windows of different starts are not merged (`false`).
    pub fn merge(&mut self, other: InterfaceWindow) -> bool {
        if other.start_ns != self.start_ns {
            return false;
        }
        for (k, v) in other.interfaces {
            self.add_interface(k, v);
        }
        for (k, v) in other.discards {
            self.add_discards(k, v);
        }
        true
    }

    /// The window's points, interfaces in (agent, ifIndex) order, then discards.
    pub fn finish(self) -> WindowBatch {
        let start = self.start_ns;
        let end = self.end_time_unix_nano();
        let mut points = Vec::new();
        let point = |metric: &str, unit: &str, kind, attributes, value| Point {
            metric: Arc::from(metric),
            unit: Arc::from(unit),
            kind,
            attributes,
            value,
            start_time_unix_nano: start,
            time_unix_nano: end,
        };
        let mut interfaces: Vec<_> = self.interfaces.into_iter().collect();
        interfaces.sort_unstable_by_key(|(k, _)| *k);
        for (k, a) in interfaces {
            let common = common_attributes(&k, &a.device_name, a.name.as_ref());
            let counted = if a.ethernet {
                COUNTER_COUNT
            } else {
                GENERIC_COUNT
            };
            for (d, value) in COUNTERS.iter().zip(a.increases).take(counted) {
                let mut attrs = common.clone();
                attrs.push((Arc::from("hw.direction"), str_value(d.direction)));
                if let Some(t) = d.error_type {
                    attrs.push((Arc::from("error.type"), str_value(t)));
                }
                points.push(point(d.metric, d.unit, PointKind::Increase, attrs, value));
            }
            let (_, speed, up) = a.level;
            if speed > 0 {
                points.push(point(
                    "hw.network.bandwidth.limit",
                    "By/s",
                    PointKind::Level,
                    common.clone(),
                    speed / 8,
                ));
            }
            points.push(point(
                "hw.network.up",
                "1",
                PointKind::Level,
                common,
                u64::from(up),
            ));
        }
        let mut discards: Vec<_> = self.discards.into_iter().collect();
        discards.sort_unstable_by_key(|(k, _)| *k);
        for (k, a) in discards {
            let mut attrs = common_attributes(&k.interface, &a.device_name, a.name.as_ref());
            attrs.push((Arc::from("reason"), str_value(k.reason)));
            points.push(point(
                DISCARDS_METRIC,
                "{packet}",
                PointKind::Increase,
                attrs,
                a.count,
            ));
        }
        WindowBatch {
            rollup: Arc::from(BATCH_NAME),
            start_time_unix_nano: start,
            time_unix_nano: end,
            points,
        }
    }
}

fn str_value(s: &str) -> AttrValue {
    AttrValue::Str(Arc::from(s))
}

/// `device_name`, `exporter_address`, `hw.type`, `hw.id` and, when known, `hw.name`.
fn common_attributes(
    k: &Interface,
    device_name: &Arc<str>,
    name: Option<&Arc<str>>,
) -> Vec<(Arc<str>, AttrValue)> {
    let mut attrs = vec![
        (
            Arc::from("device_name"),
            AttrValue::Str(Arc::clone(device_name)),
        ),
        (
            Arc::from("exporter_address"),
            AttrValue::Str(Arc::from(k.agent.to_string())),
        ),
        (Arc::from("hw.type"), str_value("network")),
        (
            Arc::from("hw.id"),
            AttrValue::Str(Arc::from(k.if_index.to_string())),
        ),
    ];
    if let Some(n) = name {
        attrs.push((Arc::from("hw.name"), AttrValue::Str(Arc::clone(n))));
    }
    attrs
}

/// Merge the same window of every worker and finish each: one batch per window start, in
/// start order.
pub fn merge_interface_windows(windows: Vec<InterfaceWindow>) -> Vec<WindowBatch> {
    let mut by_start: std::collections::BTreeMap<u64, InterfaceWindow> = Default::default();
    for w in windows {
        match by_start.get_mut(&w.start_ns) {
            Some(m) => {
                m.merge(w);
            }
            None => {
                by_start.insert(w.start_ns, w);
            }
        }
    }
    by_start
        .into_values()
        .filter(|w| !w.is_empty())
        .map(InterfaceWindow::finish)
        .collect()
}

/// The identity of one interface's counters within an agent's sub-agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct StateKey {
    agent: IpAddr,
    sub_agent: u32,
    if_index: u32,
}

/// An interface's previous sample.
#[derive(Debug, Clone)]
struct Last {
    counters: InterfaceCounters,
    ethernet: Option<EthernetCounters>,
    uptime_ms: u32,
    sequence: u32,
    received_ns: u64,
    name: Option<Arc<str>>,
}

/// A drop-notification source's previous `drops` total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DropKey {
    agent: IpAddr,
    sub_agent: u32,
    source_type: u32,
    source_index: u32,
}

#[derive(Debug, Clone, Copy)]
struct DropSource {
    drops: u32,
    received_ns: u64,
}

/// How far a reordered or repeated sample may lag, in uptime and in samples, to be recognised
/// as one.
const REORDER_MS: u32 = 300_000;
const REORDER_SAMPLES: u32 = 16;
/// Slack on "the uptime is shorter than the time since the previous sample" (delays between
/// the agent's clock and the socket's).
const RESTART_SLACK_MS: u64 = 2_000;
/// How far the uptime of a continuing agent may move on beyond (or short of) the receive-time
/// gap between two samples (clock rates, delays in the agent and the network); a quarter of
/// the gap when that is more.
const UPTIME_SLACK_MS: u64 = 60_000;

/// One worker's interface metrics: the previous sample of every interface it receives, and
/// the windows of increases and levels. Plain push / take, no I/O, no clock.
#[derive(Debug)]
pub struct InterfaceMetrics {
    config: InterfacesConfig,
    interval_ns: u64,
    state: HashMap<StateKey, Last, RandomState>,
    drop_sources: HashMap<DropKey, DropSource, RandomState>,
    open: Option<InterfaceWindow>,
    closed: Vec<InterfaceWindow>,
    watermark_ns: u64,
    stats: InterfaceStats,
}

impl InterfaceMetrics {
    /// Windows of `interval_secs` (the daemon's flush interval).
    pub fn new(config: &InterfacesConfig, interval_secs: u64) -> Self {
        InterfaceMetrics {
            config: config.clone(),
            interval_ns: interval_secs.max(1).saturating_mul(1_000_000_000),
            state: HashMap::default(),
            drop_sources: HashMap::default(),
            open: None,
            closed: Vec::new(),
            watermark_ns: 0,
            stats: InterfaceStats::default(),
        }
    }

    pub fn stats(&self) -> InterfaceStats {
        InterfaceStats {
            tracked: (self.state.len() + self.drop_sources.len()) as u64,
            ..self.stats
        }
    }

    fn room(&self) -> bool {
        self.state.len() + self.drop_sources.len() < self.config.max_interfaces
    }

    /// The window a sample received at `received_ns` counts in (see the rollup's late-record
    /// policy: a late sample goes to the oldest window still open).
    fn window(&mut self, received_ns: u64) -> &mut InterfaceWindow {
        let mut start = received_ns - received_ns % self.interval_ns;
        if start < self.watermark_ns {
            start = self.watermark_ns;
        }
        if self.open.as_ref().is_none_or(|w| start > w.start_ns)
            && let Some(w) = self.open.take()
        {
            self.closed.push(w);
        }
        self.watermark_ns = self.watermark_ns.max(start);
        let interval = self.interval_ns;
        self.open
            .get_or_insert_with(|| InterfaceWindow::new(start, interval))
    }

    /// Take one counter sample of the agent named `device_name`.
    pub fn push_counters(&mut self, c: &CounterRecord, device_name: &Arc<str>) {
        if !self.config.enabled {
            return;
        }
        self.stats.samples += 1;
        let agent = agent_or_exporter(Some(c.agent), c.exporter.ip());
        let key = StateKey {
            agent,
            sub_agent: c.sub_agent_id,
            if_index: c.interface.if_index,
        };
        let (increases, name) = match self.state.get_mut(&key) {
            None => {
                if !self.room() {
                    self.stats.skipped[Skip::TableFull as usize] += 1;
                    return;
                }
                self.stats.baselines[Baseline::New as usize] += 1;
                let name = c.name.as_deref().map(Arc::from);
                self.state.insert(key, last_of(c, name.clone()));
                ([0; COUNTER_COUNT], name)
            }
            Some(last) => {
                let increases = match compare(last, c) {
                    Compared::Behind => {
                        self.stats.skipped[Skip::OutOfOrder as usize] += 1;
                        return;
                    }
                    Compared::Baseline(b) => {
                        self.stats.baselines[b as usize] += 1;
                        [0; COUNTER_COUNT]
                    }
                    Compared::Increases(i) => i,
                };
                let name = match (&last.name, c.name.as_deref()) {
                    (Some(old), Some(new)) if **old == *new => Some(Arc::clone(old)),
                    (_, Some(new)) => Some(Arc::from(new)),
                    (old, None) => old.clone(),
                };
                *last = last_of(c, name.clone());
                (increases, name)
            }
        };
        let acc = InterfaceAcc {
            device_name: Arc::clone(device_name),
            name,
            increases,
            ethernet: c.ethernet.is_some(),
            level: (
                c.time_received_ns,
                c.interface.if_speed,
                c.interface.if_status & 2 != 0,
            ),
        };
        let interface = Interface {
            agent,
            if_index: c.interface.if_index,
        };
        self.window(c.time_received_ns)
            .add_interface(interface, acc);
    }

    /// Take one drop notification of the agent named `device_name`.
    pub fn push_drop(&mut self, d: &DropRecord, device_name: &Arc<str>) {
        if !self.config.enabled {
            return;
        }
        self.stats.drop_notifications += 1;
        let agent = agent_or_exporter(d.agent, d.exporter.ip());
        // The interface the agent attributes the drop to: its data source when that is an
        // ifIndex, else the input interface, else the output one (0: the agent itself).
        let if_index = match (d.source_id_type, d.source_id_index) {
            (0, i) if i != 0 => i,
            _ => d.in_if.or(d.out_if).unwrap_or(0),
        };
        let name = self
            .state
            .get(&StateKey {
                agent,
                sub_agent: d.sub_agent_id,
                if_index,
            })
            .and_then(|l| l.name.clone());
        let interface = Interface { agent, if_index };
        let unreported = self.unreported(d, agent);
        let reason = d.reason.name().unwrap_or(REASON_OTHER);
        let w = self.window(d.time_received_ns);
        let acc = |count| DiscardAcc {
            device_name: Arc::clone(device_name),
            name: name.clone(),
            count,
        };
        w.add_discards(DiscardKey { interface, reason }, acc(1));
        if let Some(n) = unreported {
            let reason = REASON_UNREPORTED;
            w.add_discards(DiscardKey { interface, reason }, acc(n));
        }
    }

    /// The increase of the source's cumulative `drops` (notifications not sent), `None` when
    /// there is no previous value to compare with.
    fn unreported(&mut self, d: &DropRecord, agent: IpAddr) -> Option<u64> {
        let key = DropKey {
            agent,
            sub_agent: d.sub_agent_id,
            source_type: d.source_id_type,
            source_index: d.source_id_index,
        };
        let now = DropSource {
            drops: d.drops,
            received_ns: d.time_received_ns,
        };
        match self.drop_sources.get_mut(&key) {
            None => {
                if self.room() {
                    self.drop_sources.insert(key, now);
                } else {
                    self.stats.skipped[Skip::TableFull as usize] += 1;
                }
                None
            }
            Some(prev) => {
                let before = prev.drops;
                *prev = now;
                // A lower total means the agent restarted: a new baseline.
                d.drops.checked_sub(before).map(u64::from)
            }
        }
    }

    /// Close the open window if it ended at or before `now_ns`, forget interfaces idle for
    /// `idle_secs`, and return every closed window.
    pub fn take_closed(&mut self, now_ns: u64) -> Vec<InterfaceWindow> {
        if self
            .open
            .as_ref()
            .is_some_and(|w| w.end_time_unix_nano() <= now_ns)
            && let Some(w) = self.open.take()
        {
            self.closed.push(w);
        }
        self.watermark_ns = self.watermark_ns.max(now_ns - now_ns % self.interval_ns);
        let oldest = now_ns.saturating_sub(self.config.idle_secs.saturating_mul(1_000_000_000));
        self.state.retain(|_, l| l.received_ns >= oldest);
        self.drop_sources.retain(|_, s| s.received_ns >= oldest);
        std::mem::take(&mut self.closed)
    }

    /// Every window, the open one included (end of input, shutdown).
    pub fn take_all(&mut self) -> Vec<InterfaceWindow> {
        if let Some(w) = self.open.take() {
            self.watermark_ns = w.end_time_unix_nano();
            self.closed.push(w);
        }
        std::mem::take(&mut self.closed)
    }
}

/// The sFlow agent address, else (unknown agent) the exporter's.
fn agent_or_exporter(agent: Option<IpAddr>, exporter: IpAddr) -> IpAddr {
    agent.filter(|a| !a.is_unspecified()).unwrap_or(exporter)
}

fn last_of(c: &CounterRecord, name: Option<Arc<str>>) -> Last {
    Last {
        counters: c.interface,
        ethernet: c.ethernet,
        uptime_ms: c.uptime_ms,
        sequence: c.sequence,
        received_ns: c.time_received_ns,
        name,
    }
}

/// What a sample is, compared with the interface's previous one.
#[derive(Debug, PartialEq, Eq)]
enum Compared {
    /// Reordered or duplicated: skip it.
    Behind,
    /// Counting starts again from it.
    Baseline(Baseline),
    Increases(Increases),
}

fn compare(last: &Last, c: &CounterRecord) -> Compared {
    // sFlow v5 §"sample_datagram_v5": the uptime is the agent's, in milliseconds since it
    // started; §"counters_sample": the sequence number is incremented with each sample of the
    // data source and starts again when the agent does.
    let elapsed_ns = c.time_received_ns.saturating_sub(last.received_ns);
    let elapsed_ms = elapsed_ns / 1_000_000;
    let seq_back = last.sequence.wrapping_sub(c.sequence);
    // 0 included: the same sample again.
    let behind_in_sequence = seq_back <= REORDER_SAMPLES;
    if c.uptime_ms == last.uptime_ms {
        // No uptime to go by (or the same datagram again): the sequence number decides.
        if behind_in_sequence {
            return Compared::Behind;
        }
    } else {
        // The uptime moved on by about the time between the two samples (modulo 2^32 ms:
        // it wraps after 49.7 days): the same agent life.
        let advance_ms = u64::from(c.uptime_ms.wrapping_sub(last.uptime_ms));
        let slack = UPTIME_SLACK_MS.max(elapsed_ms / 4);
        if advance_ms.abs_diff(elapsed_ms) > slack {
            // Up for less than the time since the previous sample: it started since.
            let started_since = u64::from(c.uptime_ms) + RESTART_SLACK_MS < elapsed_ms;
            let uptime_back = last.uptime_ms.wrapping_sub(c.uptime_ms);
            if !started_since && behind_in_sequence && seq_back > 0 && uptime_back <= REORDER_MS {
                return Compared::Behind;
            }
            return Compared::Baseline(Baseline::AgentRestart);
        }
    }
    match increases(last, c, elapsed_ns) {
        Some(i) => Compared::Increases(i),
        None => Compared::Baseline(Baseline::CounterReset),
    }
}

/// The increases from `last` to `c`; `None` when a counter was reset (see the module docs).
fn increases(last: &Last, c: &CounterRecord, elapsed_ns: u64) -> Option<Increases> {
    let (a, b) = (&last.counters, &c.interface);
    // The most frames the link could carry in the elapsed time (64-byte frames plus preamble
    // and inter-frame gap: 84 bytes on the wire), doubled, plus one second and 1000 frames of
    // slack; no bound when the speed is unknown.
    let max_frames = (b.if_speed > 0).then(|| {
        let secs_x1000 = u128::from(elapsed_ns / 1_000_000) + 1000;
        let frames = u128::from(b.if_speed) * secs_x1000 * 2 / (84 * 8 * 1000) + 1000;
        u64::try_from(frames).unwrap_or(u64::MAX)
    });
    let d32 = |x: u32, y: u32| {
        let d = u64::from(y.wrapping_sub(x));
        max_frames.is_none_or(|m| d <= m).then_some(d)
    };
    let mut out = [0u64; COUNTER_COUNT];
    out[0] = b.in_octets.checked_sub(a.in_octets)?;
    out[1] = b.out_octets.checked_sub(a.out_octets)?;
    out[2] = d32(a.in_ucast_pkts, b.in_ucast_pkts)?
        + d32(a.in_multicast_pkts, b.in_multicast_pkts)?
        + d32(a.in_broadcast_pkts, b.in_broadcast_pkts)?;
    out[3] = d32(a.out_ucast_pkts, b.out_ucast_pkts)?
        + d32(a.out_multicast_pkts, b.out_multicast_pkts)?
        + d32(a.out_broadcast_pkts, b.out_broadcast_pkts)?;
    out[4] = d32(a.in_discards, b.in_discards)?;
    out[5] = d32(a.out_discards, b.out_discards)?;
    out[6] = d32(a.in_errors, b.in_errors)?;
    out[7] = d32(a.out_errors, b.out_errors)?;
    out[8] = d32(a.in_unknown_protos, b.in_unknown_protos)?;
    if let (Some(x), Some(y)) = (&last.ethernet, &c.ethernet) {
        let pairs = [
            (x.alignment_errors, y.alignment_errors),
            (x.fcs_errors, y.fcs_errors),
            (x.frame_too_longs, y.frame_too_longs),
            (x.internal_mac_receive_errors, y.internal_mac_receive_errors),
            (x.symbol_errors, y.symbol_errors),
            (x.sqe_test_errors, y.sqe_test_errors),
            (x.late_collisions, y.late_collisions),
            (x.excessive_collisions, y.excessive_collisions),
            (
                x.internal_mac_transmit_errors,
                y.internal_mac_transmit_errors,
            ),
            (x.carrier_sense_errors, y.carrier_sense_errors),
        ];
        for (slot, (p, n)) in out.iter_mut().skip(GENERIC_COUNT).zip(pairs) {
            *slot = d32(p, n)?;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtel_decode::{DropReason, FlowProtocol, FlowRecord};

    const S: u64 = 1_000_000_000;
    /// A window boundary (a multiple of 60 s).
    const T0: u64 = 1_800_000_000 * S;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn counters() -> InterfaceCounters {
        InterfaceCounters {
            if_index: 3,
            if_type: 6,
            if_speed: 1_000_000_000,
            if_direction: 1,
            if_status: 3,
            in_octets: 5_000_000,
            out_octets: 7_000_000,
            in_ucast_pkts: 1000,
            out_ucast_pkts: 2000,
            ..InterfaceCounters::default()
        }
    }

    /// A sample received `t` seconds after T0 from an agent up for `uptime` seconds.
    fn sample(t: u64, uptime: u32, seq: u32, c: InterfaceCounters) -> CounterRecord {
        CounterRecord {
            exporter: "192.0.2.9:6343".parse().unwrap(),
            agent: ip("10.0.0.1"),
            sub_agent_id: 0,
            time_received_ns: T0 + t * S,
            uptime_ms: uptime * 1000,
            sequence: seq,
            source_id: c.if_index,
            interface: c,
            ethernet: None,
            name: Some("swp3".into()),
        }
    }

    fn metrics() -> InterfaceMetrics {
        InterfaceMetrics::new(&InterfacesConfig::default(), 60)
    }

    fn device() -> Arc<str> {
        Arc::from("edge-1")
    }

    /// Every window's points as (metric, direction or reason, error type, value), in order.
    fn values(batches: &[WindowBatch]) -> Vec<(String, String, String, u64)> {
        let attr = |p: &Point, k: &str| {
            p.attributes
                .iter()
                .find(|(n, _)| &**n == k)
                .map_or(String::new(), |(_, v)| match v {
                    AttrValue::Str(s) => s.to_string(),
                    v => format!("{v:?}"),
                })
        };
        batches
            .iter()
            .flat_map(|b| &b.points)
            .map(|p| {
                let dir = attr(p, "hw.direction") + &attr(p, "reason");
                (p.metric.to_string(), dir, attr(p, "error.type"), p.value)
            })
            .collect()
    }

    fn value(batches: &[WindowBatch], metric: &str, dir: &str, error_type: &str) -> Vec<u64> {
        values(batches)
            .into_iter()
            .filter(|(m, d, e, _)| m == metric && d == dir && e == error_type)
            .map(|(_, _, _, v)| v)
            .collect()
    }

    fn flush(m: &mut InterfaceMetrics) -> Vec<WindowBatch> {
        merge_interface_windows(m.take_all())
    }

    #[test]
    fn the_first_sample_is_a_baseline_and_the_next_ones_give_exact_increases() {
        let mut m = metrics();
        let a = counters();
        let mut b = a;
        b.in_octets += 1_000_000;
        b.out_octets += 800_000;
        b.in_ucast_pkts += 1000;
        b.in_multicast_pkts += 7;
        b.out_ucast_pkts += 900;
        b.in_errors += 2;
        b.out_discards += 5;
        m.push_counters(&sample(1, 100, 1, a), &device());
        m.push_counters(&sample(21, 120, 2, b), &device());
        let out = flush(&mut m);
        assert_eq!(out.len(), 1);
        let w = &out[0];
        assert_eq!(
            (w.start_time_unix_nano, w.time_unix_nano, &*w.rollup),
            (T0, T0 + 60 * S, BATCH_NAME)
        );
        assert_eq!(value(&out, IO, RX, ""), [1_000_000]);
        assert_eq!(value(&out, IO, TX, ""), [800_000]);
        assert_eq!(value(&out, PACKETS, RX, ""), [1007]);
        assert_eq!(value(&out, PACKETS, TX, ""), [900]);
        assert_eq!(value(&out, ERRORS, RX, "errors"), [2]);
        assert_eq!(value(&out, ERRORS, TX, "discards"), [5]);
        assert_eq!(value(&out, ERRORS, RX, "discards"), [0]);
        // No ethernet record: no ethernet error series.
        assert!(value(&out, ERRORS, RX, "fcs_errors").is_empty());
        assert_eq!(
            value(&out, "hw.network.bandwidth.limit", "", ""),
            [125_000_000]
        );
        assert_eq!(value(&out, "hw.network.up", "", ""), [1]);
        let p = &w.points[0];
        assert_eq!(p.kind, PointKind::Increase);
        let names: Vec<(&str, String)> = p
            .attributes
            .iter()
            .map(|(k, v)| {
                let AttrValue::Str(s) = v else { panic!() };
                (&**k, s.to_string())
            })
            .collect();
        assert_eq!(
            names,
            [
                ("device_name", "edge-1".to_owned()),
                ("exporter_address", "10.0.0.1".to_owned()),
                ("hw.type", "network".to_owned()),
                ("hw.id", "3".to_owned()),
                ("hw.name", "swp3".to_owned()),
                ("hw.direction", "receive".to_owned()),
            ]
        );
        let up = w.points.iter().find(|p| &*p.metric == "hw.network.up");
        assert_eq!(up.map(|p| p.kind), Some(PointKind::Level));
        let s = m.stats();
        assert_eq!(
            (s.samples, s.baselines(Baseline::New), s.tracked),
            (2, 1, 1)
        );
    }

    #[test]
    fn a_first_sample_alone_starts_the_series_at_zero() {
        let mut m = metrics();
        m.push_counters(&sample(1, 100, 1, counters()), &device());
        let out = flush(&mut m);
        assert_eq!(value(&out, IO, RX, ""), [0]);
        assert_eq!(value(&out, "hw.network.up", "", ""), [1]);
    }

    #[test]
    fn thirty_two_bit_counters_wrap_and_sixty_four_bit_ones_do_not() {
        let mut m = metrics();
        let mut a = counters();
        a.in_ucast_pkts = u32::MAX - 9;
        a.out_errors = u32::MAX;
        let mut b = a;
        b.in_ucast_pkts = 5;
        b.out_errors = 0;
        b.in_octets += 2000;
        m.push_counters(&sample(1, 100, 1, a), &device());
        m.push_counters(&sample(21, 120, 2, b), &device());
        let out = flush(&mut m);
        assert_eq!(value(&out, PACKETS, RX, ""), [15]);
        assert_eq!(value(&out, ERRORS, TX, "errors"), [1]);
        assert_eq!(value(&out, IO, RX, ""), [2000]);

        // Octets going back: the counters were cleared; a baseline, then counting again.
        let mut c = b;
        c.in_octets = 100;
        c.in_ucast_pkts = 1;
        let mut d = c;
        d.in_octets = 400;
        d.in_ucast_pkts = 11;
        m.push_counters(&sample(41, 140, 3, c), &device());
        m.push_counters(&sample(61, 160, 4, d), &device());
        let out = flush(&mut m);
        // Both in the window after the one taken (41 s is late once it was emitted).
        assert_eq!(value(&out, IO, RX, ""), [300]);
        assert_eq!(value(&out, PACKETS, RX, ""), [10]);
        assert_eq!(m.stats().baselines(Baseline::CounterReset), 1);
    }

    #[test]
    fn a_jump_the_link_cannot_carry_is_a_reset_unless_the_speed_is_unknown() {
        for (speed, expected) in [(1_000_000_000, 0), (0, 3_000_000_000)] {
            let mut m = metrics();
            let mut a = counters();
            a.if_speed = speed;
            a.in_ucast_pkts = 4_000_000_000;
            let mut b = a;
            // 20 s at 1 Gbit/s carry at most ~30 M frames; this "wrap" is 3 G.
            b.in_ucast_pkts = 4_000_000_000u32.wrapping_add(3_000_000_000);
            m.push_counters(&sample(1, 100, 1, a), &device());
            m.push_counters(&sample(21, 120, 2, b), &device());
            let out = flush(&mut m);
            assert_eq!(value(&out, PACKETS, RX, ""), [expected], "speed {speed}");
        }
    }

    #[test]
    fn an_agent_restart_is_a_baseline() {
        let mut m = metrics();
        let a = counters();
        let mut b = a;
        b.in_octets += 10;
        // Up for 5 s, 20 s after the previous sample: it started since.
        let mut restarted = sample(21, 5, 1, b);
        restarted.interface.in_octets = 10;
        m.push_counters(&sample(1, 86_400, 500, a), &device());
        m.push_counters(&restarted, &device());
        let mut c = restarted.interface;
        c.in_octets = 60;
        m.push_counters(&sample(41, 25, 2, c), &device());
        let out = flush(&mut m);
        assert_eq!(value(&out, IO, RX, ""), [50]);
        assert_eq!(m.stats().baselines(Baseline::AgentRestart), 1);

        // A restart just before the uptime counter would have wrapped shows as a big jump.
        let mut m = metrics();
        m.push_counters(&sample(1, 4_294_000, 7, a), &device());
        m.push_counters(&sample(21, 3_000_000, 1, b), &device());
        assert_eq!(m.stats().baselines(Baseline::AgentRestart), 1);
    }

    #[test]
    fn the_uptime_wrapping_around_is_not_a_restart() {
        let mut m = metrics();
        let a = counters();
        let mut b = a;
        b.in_octets += 99;
        // 2^32 ms after start the uptime starts again from 0.
        let mut before = sample(1, 0, 1, a);
        before.uptime_ms = u32::MAX - 5_000;
        let mut after = sample(21, 0, 2, b);
        after.uptime_ms = 14_999;
        m.push_counters(&before, &device());
        m.push_counters(&after, &device());
        assert_eq!(value(&flush(&mut m), IO, RX, ""), [99]);
        assert_eq!(m.stats().baselines(Baseline::AgentRestart), 0);
    }

    #[test]
    fn reordered_and_repeated_samples_are_skipped() {
        let mut m = metrics();
        let a = counters();
        let mut b = a;
        b.in_octets += 100;
        let mut c = b;
        c.in_octets += 100;
        m.push_counters(&sample(1, 100, 1, a), &device());
        m.push_counters(&sample(41, 140, 3, c), &device());
        // Sample 2 arrives after sample 3; sample 3 arrives twice.
        m.push_counters(&sample(42, 120, 2, b), &device());
        m.push_counters(&sample(43, 140, 3, c), &device());
        let out = flush(&mut m);
        assert_eq!(value(&out, IO, RX, ""), [200]);
        assert_eq!(m.stats().skipped(Skip::OutOfOrder), 2);
    }

    #[test]
    fn the_table_is_bounded_and_idle_interfaces_are_forgotten() {
        let config = InterfacesConfig {
            max_interfaces: 2,
            idle_secs: 600,
            ..InterfacesConfig::default()
        };
        let mut m = InterfaceMetrics::new(&config, 60);
        for i in 1..=3 {
            let c = InterfaceCounters {
                if_index: i,
                ..counters()
            };
            m.push_counters(&sample(1, 100, 1, c), &device());
        }
        let s = m.stats();
        assert_eq!((s.tracked, s.skipped(Skip::TableFull)), (2, 1));
        let up = flush(&mut m)[0]
            .points
            .iter()
            .filter(|p| &*p.metric == "hw.network.up")
            .count();
        assert_eq!(up, 2, "the refused interface has no series");
        m.take_closed(T0 + 500 * S);
        assert_eq!(m.stats().tracked, 2);
        m.take_closed(T0 + 700 * S);
        assert_eq!(m.stats().tracked, 0, "idle for more than 600 s");
    }

    #[test]
    fn windows_of_workers_add_up_and_the_latest_level_wins() {
        let (mut w1, mut w2) = (metrics(), metrics());
        let a = counters();
        let mut b = a;
        b.in_octets += 10;
        let mut c = b;
        c.in_octets += 5;
        c.if_status = 1; // admin up, oper down
        w1.push_counters(&sample(1, 100, 1, a), &device());
        w1.push_counters(&sample(21, 120, 2, b), &device());
        // Another worker received the same agent's next sample (a hand-over race): it has no
        // previous sample, so a baseline, and its level is the newer one.
        w2.push_counters(&sample(41, 140, 3, c), &device());
        let mut all = w1.take_all();
        all.extend(w2.take_all());
        let out = merge_interface_windows(all);
        assert_eq!(out.len(), 1);
        assert_eq!(value(&out, IO, RX, ""), [10]);
        assert_eq!(value(&out, "hw.network.up", "", ""), [0]);
    }

    #[test]
    fn samples_count_in_the_window_of_their_receive_time() {
        let mut m = metrics();
        let a = counters();
        let mut b = a;
        b.in_octets += 10;
        let mut c = b;
        c.in_octets += 20;
        m.push_counters(&sample(30, 100, 1, a), &device());
        m.push_counters(&sample(50, 120, 2, b), &device());
        m.push_counters(&sample(70, 140, 3, c), &device());
        let closed = m.take_closed(T0 + 61 * S);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].start_time_unix_nano(), T0);
        assert_eq!(value(&merge_interface_windows(closed), IO, RX, ""), [10]);
        let rest = flush(&mut m);
        assert_eq!(rest[0].start_time_unix_nano, T0 + 60 * S);
        assert_eq!(value(&rest, IO, RX, ""), [20]);
    }

    fn drop_record(t: u64, reason: u32, drops: u32) -> DropRecord {
        let exporter = "192.0.2.9:6343".parse().unwrap();
        DropRecord {
            exporter,
            agent: Some(ip("10.0.0.1")),
            sub_agent_id: 0,
            time_received_ns: T0 + t * S,
            sequence: 1,
            source_id_type: 0,
            source_id_index: 3,
            drops,
            in_if: Some(3),
            out_if: None,
            reason: DropReason(reason),
            packet: FlowRecord::new(exporter, FlowProtocol::SflowV5, T0 + t * S),
            egress_queue: None,
            function: None,
            hw_trap_group: None,
            hw_trap: None,
            linux_reason: None,
        }
    }

    #[test]
    fn drop_notifications_count_by_reason_with_the_unreported_ones() {
        let mut m = metrics();
        m.push_counters(&sample(1, 100, 1, counters()), &device());
        for (t, reason, drops) in [(2, 258, 10), (3, 258, 10), (4, 257, 14), (5, 9999, 20)] {
            m.push_drop(&drop_record(t, reason, drops), &device());
        }
        let out = flush(&mut m);
        let discards: Vec<(String, u64)> = values(&out)
            .into_iter()
            .filter(|(m, ..)| m == DISCARDS_METRIC)
            .map(|(_, r, _, v)| (r, v))
            .collect();
        assert_eq!(
            discards,
            [
                ("acl".to_owned(), 2),
                ("other".to_owned(), 1),
                ("ttl_exceeded".to_owned(), 1),
                ("unreported".to_owned(), 10),
            ]
        );
        let p = out[0]
            .points
            .iter()
            .find(|p| &*p.metric == DISCARDS_METRIC)
            .unwrap();
        let name = p.attributes.iter().find(|(k, _)| &**k == "hw.name");
        assert_eq!(
            name.map(|(_, v)| v.clone()),
            Some(AttrValue::Str("swp3".into())),
            "the name from the interface's counters"
        );
        assert_eq!(m.stats().drop_notifications, 4);
    }

    #[test]
    fn disabled_emits_nothing_and_keeps_nothing() {
        let config = InterfacesConfig {
            enabled: false,
            ..InterfacesConfig::default()
        };
        let mut m = InterfaceMetrics::new(&config, 60);
        m.push_counters(&sample(1, 100, 1, counters()), &device());
        m.push_drop(&drop_record(2, 258, 0), &device());
        assert!(flush(&mut m).is_empty());
        assert_eq!(m.stats(), InterfaceStats::default());
    }
}
