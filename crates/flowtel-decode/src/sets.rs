//! The set engine shared by NetFlow v9 and IPFIX: template learning and withdrawal,
//! order-independent data set decoding, the pending buffer and sampling resolution.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::budget::PendingCharge;
use crate::error::{DecodeError, ErrorKind};
use crate::memory;
use crate::options::{self, Names, ScopeOptions};
use crate::pending::PendingSet;
use crate::prehash::{PrehashedMap, SmallKeyMap};
use crate::record::{FlowProtocol, FlowRecord, SamplingSource};
use crate::scope::{Meta, NamesKey, ScopeKey, TemplateSlot};
use crate::stats::{DecoderStats, Limit};
use crate::template::{self, FieldSpec, RecordTruncated, Scratch, Template, TimeBase};
use crate::{
    DatagramReport, DecodeOutput, Decoder, DecoderConfig, FlowSink, SflowBytes, Streamed,
    TemplateFieldReport, TemplateReport, ipfix, netflow_v9,
};

/// Where a datagram's flow records go besides the output: a [`FlowSink`] takes each as it is
/// read ([`Decoder::decode_streaming`]), or none does ([`Decoder::decode_prehashed`]).
pub(crate) type Sink<'s> = Option<&'s mut dyn FlowSink>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V9,
    Ipfix,
}

impl Flavor {
    fn template_set(self) -> u16 {
        match self {
            Flavor::V9 => netflow_v9::TEMPLATE_SET,
            Flavor::Ipfix => ipfix::TEMPLATE_SET,
        }
    }

    fn options_template_set(self) -> u16 {
        match self {
            Flavor::V9 => netflow_v9::OPTIONS_TEMPLATE_SET,
            Flavor::Ipfix => ipfix::OPTIONS_TEMPLATE_SET,
        }
    }
}

/// RFC 3954 §5.2 / RFC 7011 §3.4.1: data set and template ids start at 256.
const MIN_DATA_SET_ID: u16 = 256;

fn err(report: &mut DatagramReport, kind: ErrorKind, offset: usize, context: &'static str) {
    report.errors.push(DecodeError::new(kind, offset, context));
}

/// A set's id and length from the start of `rest`, when its header is whole and its length
/// covers the header and stays within `rest`.
#[inline]
fn set_header(rest: &[u8]) -> Option<(u16, usize)> {
    let &[a, b, c, d] = rest.get(..4)? else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([c, d]));
    (len >= 4 && len <= rest.len()).then_some((u16::from_be_bytes([a, b]), len))
}

/// The application names of `key`'s (exporter, domain), marked used at `now`; `None` when
/// it has none.
fn app_names<'n>(
    names: &'n mut PrehashedMap<NamesKey, Names>,
    key: &ScopeKey,
    now: u64,
) -> Option<&'n SmallKeyMap<u64, Arc<str>>> {
    let n = names.get_mut(&key.names_key())?;
    n.last_used = n.last_used.max(now);
    Some(&n.app_names).filter(|n| !n.is_empty())
}

/// The sets of one message, for [`Decoder::data_run`]: where they came from and where they
/// start in the datagram.
struct Run<'r, 'a> {
    meta: &'r Meta,
    key: &'r ScopeKey,
    sets: &'a [u8],
    sets_offset: usize,
}

/// What every data record of one set is read with: its template, times, options state and
/// the application names of its scope.
struct DataSet<'t> {
    tmpl: &'t Template,
    time_base: TimeBase,
    scope: Option<&'t ScopeOptions>,
    app_names: Option<&'t SmallKeyMap<u64, Arc<str>>>,
    keep: bool,
    sflow_bytes: SflowBytes,
    domain: u32,
    sequence: u32,
    /// The options sampling rate of the last sampler id seen in this set.
    options_rate: Option<(Option<u64>, Option<u32>)>,
}

impl<'t> DataSet<'t> {
    /// A data set of `tmpl` in the message of `meta`, with its scope's options state and
    /// application names.
    fn new(
        config: &DecoderConfig,
        tmpl: &'t Template,
        meta: &Meta,
        domain: u32,
        scope: Option<&'t ScopeOptions>,
        app_names: Option<&'t SmallKeyMap<u64, Arc<str>>>,
    ) -> Self {
        DataSet {
            tmpl,
            time_base: TimeBase {
                sys_init_ms: scope.and_then(|o| o.sys_init_ms),
                ..meta.base
            },
            scope,
            app_names,
            keep: config.keep_unknown_fields,
            sflow_bytes: config.sflow_bytes,
            domain,
            sequence: meta.sequence,
            options_rate: None,
        }
    }

    /// Read every record of the set's `data` (at `offset` in the datagram); trailing bytes
    /// shorter than the smallest record are padding (RFC 7011 §3.3.1). Returns the flow
    /// records made. With a sink, records read with a core or a wide layout go into
    /// `streamed`; the others are appended to `out` and handed over at once. `s` is the
    /// message's scratch, reused by each of its data sets.
    #[allow(clippy::too_many_arguments)]
    fn read_flows<'a>(
        &mut self,
        stats: &mut DecoderStats,
        streamed: &mut Streamed,
        meta: &Meta,
        data: &'a [u8],
        offset: usize,
        s: &mut Scratch<'a>,
        out: &mut DecodeOutput,
        sink: &mut Sink<'_>,
        report: &mut DatagramReport,
    ) -> usize {
        let tmpl = self.tmpl;
        let first = out.flows.len();
        let new_record = || FlowRecord::new(meta.exporter, meta.protocol, meta.received_ns);
        if let Some(sink) = sink.as_deref_mut()
            && tmpl.one_flow_per_record
        {
            // Read into the decoder's own records, lent to the sink a chunk at a time: a chunk
            // may span the message's data sets.
            if let Some(layout) = &tmpl.core {
                let read = |rest: &[u8], rec: &mut FlowRecord, s: &mut Scratch<'_>| {
                    template::read_core(layout, tmpl.min_len, rest, rec, s)
                };
                let wide = false;
                return self.stream(
                    stats, streamed, sink, meta, data, offset, s, report, read, wide,
                );
            }
            if let Some(layout) = &tmpl.wide {
                let read = |rest: &[u8], rec: &mut FlowRecord, s: &mut Scratch<'_>| {
                    template::read_wide(layout, tmpl.min_len, rest, rec, s)
                };
                let wide = true;
                return self.stream(
                    stats, streamed, sink, meta, data, offset, s, report, read, wide,
                );
            }
        }
        if tmpl.one_flow_per_record {
            // Every record is `min_len` bytes and gives one flow: the set's flows are made in
            // place at once (one length update instead of one per record), then read.
            let count = data.len() / tmpl.min_len;
            out.flows.resize_with(first + count, new_record);
            let mut truncated = None;
            let made = out.flows.get_mut(first..).unwrap_or_default();
            for (i, rec) in made.iter_mut().enumerate() {
                let at = i * tmpl.min_len;
                let rest = data.get(at..).unwrap_or_default();
                if self.read(rec, rest, s, stats).is_err() {
                    truncated = Some((i, at));
                    break;
                }
            }
            // Not reached with whole records; kept so that a reader's refusal is never lost.
            if let Some((i, at)) = truncated {
                out.flows.truncate(first + i);
                err(report, ErrorKind::Truncated, offset + at, "data record");
            }
        } else {
            let mut pos = 0usize;
            while data.len() - pos >= tmpl.min_len {
                // The record is built in place in the output to avoid copying it.
                let n = out.flows.len();
                out.flows.resize_with(n + 1, new_record);
                let Some(rec) = out.flows.last_mut() else {
                    break;
                };
                let rest = data.get(pos..).unwrap_or_default();
                match self.read(rec, rest, s, stats) {
                    Ok(used) => pos += used,
                    Err(_) => {
                        out.flows.pop();
                        err(report, ErrorKind::Truncated, offset + pos, "data record");
                        break;
                    }
                }
                if s.has_reverse()
                    && let Some(r) = template::reverse(rec, s, tmpl, rest, &self.time_base)
                {
                    stats.sampling_rate_unknown += u64::from(r.sampling_rate.is_none());
                    out.flows.push(r);
                }
            }
        }
        stats.fields_out_of_range += u64::from(std::mem::take(&mut s.out_of_range));
        let made = out.flows.len() - first;
        if let Some(sink) = sink.as_deref_mut() {
            streamed.hand_over(&mut out.flows, first, sink);
        }
        made
    }

    /// Read the set's records, `min_len` bytes each and one flow each, into the decoder's own
    /// records with `read` (a layout's reader) and lend them to `sink` a chunk at a time;
    /// `wide`: `read` is a wide layout's, whose fields are emptied when the records are lent
    /// (marked after each record: a lend within the set unmarks them). Returns the flow
    /// records made.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn stream<'a>(
        &mut self,
        stats: &mut DecoderStats,
        streamed: &mut Streamed,
        sink: &mut dyn FlowSink,
        meta: &Meta,
        data: &'a [u8],
        offset: usize,
        s: &mut Scratch<'a>,
        report: &mut DatagramReport,
        read: impl Fn(&'a [u8], &mut FlowRecord, &mut Scratch<'a>) -> Result<usize, RecordTruncated>,
        wide: bool,
    ) -> usize {
        let tmpl = self.tmpl;
        let count = data.len() / tmpl.min_len;
        let mut done = 0;
        while done < count {
            let Some(rec) = streamed.next(sink, meta) else {
                break; // never: the place is always made
            };
            let at = done * tmpl.min_len;
            let rest = data.get(at..).unwrap_or_default();
            let read = self.read_with(rec, s, stats, |rec, s| read(rest, rec, s));
            // The place may hold the layout's fields, read or not.
            streamed.wide |= wide;
            if read.is_err() {
                // Not reached with whole records, as below.
                err(report, ErrorKind::Truncated, offset + at, "data record");
                break;
            }
            streamed.read();
            done += 1;
        }
        stats.fields_out_of_range += u64::from(std::mem::take(&mut s.out_of_range));
        done
    }

    /// Read one data record at the start of `data` into `rec` (made by [`FlowRecord::new`])
    /// and finish it: domain, sequence, counters, times, application name and sampling rate.
    /// Returns the bytes consumed; `s` keeps what the reverse direction needs.
    #[inline(always)]
    fn read<'a>(
        &mut self,
        rec: &mut FlowRecord,
        data: &'a [u8],
        s: &mut Scratch<'a>,
        stats: &mut DecoderStats,
    ) -> Result<usize, RecordTruncated> {
        let (tmpl, keep) = (self.tmpl, self.keep);
        self.read_with(rec, s, stats, |rec, s| {
            template::read_record(tmpl, data, rec, s, keep)
        })
    }

    /// [`DataSet::read`] with the record's fields read by `read` (the template's reader, or
    /// its core or wide layout's when the caller knows it has one).
    #[inline(always)]
    fn read_with<'a>(
        &mut self,
        rec: &mut FlowRecord,
        s: &mut Scratch<'a>,
        stats: &mut DecoderStats,
        read: impl FnOnce(&mut FlowRecord, &mut Scratch<'a>) -> Result<usize, RecordTruncated>,
    ) -> Result<usize, RecordTruncated> {
        rec.observation_domain = self.domain;
        rec.sequence_num = self.sequence;
        s.reset();
        let used = read(rec, s)?;
        template::finish(rec, s, &self.time_base, self.sflow_bytes);
        if let Some(id) = rec.application_id {
            rec.application_name = self.app_names.and_then(|n| n.get(&id)).cloned();
        }
        // Sampling resolution: the record itself, then options data of this scope.
        if let Some(rate) = s.sampling_rate() {
            rec.sampling_rate = Some(rate);
            rec.sampling_source = SamplingSource::Record;
        } else if let Some(rate) = {
            // Records of a set nearly always share their sampler: look it up once.
            let sampler = s.sampler_id();
            match self.options_rate {
                Some((id, rate)) if id == sampler => rate,
                _ => {
                    let rate = self.scope.and_then(|o| o.rate_for(sampler));
                    self.options_rate = Some((sampler, rate));
                    rate
                }
            }
        } {
            rec.sampling_rate = Some(rate);
            rec.sampling_source = SamplingSource::Options;
        } else {
            stats.sampling_rate_unknown += 1;
        }
        Ok(used)
    }
}

impl Decoder {
    fn scope_key(&self, exporter: SocketAddr, version: u16, domain: u32) -> ScopeKey {
        let port = if self.config.scope_includes_port {
            exporter.port()
        } else {
            0
        };
        ScopeKey::new(exporter.ip(), self.exporter_hash, port, version, domain)
    }

    /// NetFlow v9 packet (RFC 3954 §5).
    pub(crate) fn decode_v9(
        &mut self,
        exporter: SocketAddr,
        datagram: &[u8],
        received_ns: u64,
        out: &mut DecodeOutput,
        sink: &mut Sink<'_>,
        report: &mut DatagramReport,
    ) {
        let Ok((_, h)) = netflow_v9::header(datagram) else {
            err(report, ErrorKind::Truncated, 0, "netflow v9 header");
            return;
        };
        let key = self.scope_key(exporter, netflow_v9::VERSION, h.source_id);
        let meta = Meta {
            exporter,
            protocol: FlowProtocol::NetflowV9,
            received_ns,
            sequence: h.sequence,
            base: TimeBase {
                export_ns: u64::from(h.unix_secs) * 1_000_000_000,
                sys_uptime_ms: Some(h.sys_uptime_ms),
                sys_init_ms: None,
            },
        };
        let sets = datagram.get(netflow_v9::HEADER_LEN..).unwrap_or_default();
        self.decode_sets(
            Flavor::V9,
            &meta,
            key,
            sets,
            netflow_v9::HEADER_LEN,
            out,
            sink,
            report,
        );
    }

    /// IPFIX message (RFC 7011 §3).
    pub(crate) fn decode_ipfix(
        &mut self,
        exporter: SocketAddr,
        datagram: &[u8],
        received_ns: u64,
        out: &mut DecodeOutput,
        sink: &mut Sink<'_>,
        report: &mut DatagramReport,
    ) {
        let Ok((_, h)) = ipfix::header(datagram) else {
            err(report, ErrorKind::Truncated, 0, "ipfix message header");
            return;
        };
        let length = usize::from(h.length);
        if length < ipfix::HEADER_LEN {
            err(report, ErrorKind::BadLength, 2, "ipfix message length");
            return;
        }
        let end = if length > datagram.len() {
            err(report, ErrorKind::BadLength, 2, "ipfix message length");
            datagram.len()
        } else {
            length
        };
        let key = self.scope_key(exporter, ipfix::VERSION, h.domain);
        let meta = Meta {
            exporter,
            protocol: FlowProtocol::Ipfix,
            received_ns,
            sequence: h.sequence,
            base: TimeBase {
                export_ns: u64::from(h.export_time) * 1_000_000_000,
                sys_uptime_ms: None,
                sys_init_ms: None,
            },
        };
        let sets = datagram.get(ipfix::HEADER_LEN..end).unwrap_or_default();
        self.decode_sets(
            Flavor::Ipfix,
            &meta,
            key,
            sets,
            ipfix::HEADER_LEN,
            out,
            sink,
            report,
        );
    }

    /// Walk the sets of one message. Template sets are applied as met; a data set whose
    /// template is not known yet is deferred to the end of the message (a template later in
    /// the same message is then used), and only then held as pending.
    #[allow(clippy::too_many_arguments)]
    fn decode_sets(
        &mut self,
        flavor: Flavor,
        meta: &Meta,
        key: ScopeKey,
        sets: &[u8],
        sets_offset: usize,
        out: &mut DecodeOutput,
        sink: &mut Sink<'_>,
        report: &mut DatagramReport,
    ) {
        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.clear();
        // One scratch for every data set of the message: making one costs about as much as
        // reading a record.
        let mut s = Scratch::default();
        let mut recent = RecentTemplates::default();
        let mut pos = 0usize;
        while pos < sets.len() {
            let rest = sets.get(pos..).unwrap_or_default();
            let Some((id, len)) = set_header(rest) else {
                if rest.len() < 4 {
                    if rest.iter().any(|&b| b != 0) {
                        err(
                            report,
                            ErrorKind::Truncated,
                            sets_offset + pos,
                            "set header",
                        );
                    }
                } else {
                    err(
                        report,
                        ErrorKind::BadSetLength,
                        sets_offset + pos,
                        "set header",
                    );
                }
                break;
            };
            let body = rest.get(4..len).unwrap_or_default();
            let body_offset = sets_offset + pos + 4;
            let now = meta.received_ns;
            if id == flavor.template_set() {
                recent.clear();
                self.template_set(flavor, key, body, body_offset, false, now, report);
            } else if id == flavor.options_template_set() {
                recent.clear();
                self.template_set(flavor, key, body, body_offset, true, now, report);
            } else if id >= MIN_DATA_SET_ID {
                let run = Run {
                    meta,
                    key: &key,
                    sets,
                    sets_offset,
                };
                let end = self.data_run(
                    &run,
                    pos,
                    &mut recent,
                    &mut deferred,
                    &mut s,
                    out,
                    sink,
                    report,
                );
                if end > pos {
                    pos = end;
                    continue;
                }
                // The set at `pos` is options data: it changes the scope's state that
                // `use_template` marks used, so the next set looks its template up again.
                recent.clear();
                if let Some(t) = self.use_template(&key, id, now) {
                    self.options_data(&key, &t, meta, body, body_offset, report);
                }
            } else {
                err(
                    report,
                    ErrorKind::ReservedSetId,
                    sets_offset + pos,
                    "set header",
                );
            }
            pos += len;
        }
        for &(start, end, id) in &deferred {
            let body = sets.get(start..end).unwrap_or_default();
            match self.use_template(&key, id, meta.received_ns) {
                Some(t) => {
                    let at = sets_offset + start;
                    let n = self.decode_data(&key, &t, meta, body, at, &mut s, out, sink, report);
                    report.records += n;
                }
                None => self.hold(key, id, meta, body, sets_offset + start, report),
            }
        }
        self.deferred = deferred;
    }

    /// Template `id` of `key`, marked used at `now` (with its scope and the scope's options
    /// state, which decoding a data set reads).
    fn use_template(&mut self, key: &ScopeKey, id: u16, now: u64) -> Option<Arc<Template>> {
        self.scopes.get_mut(key)?.use_template(id, now)
    }

    /// Read the run of flow data sets that starts at `pos` in `run.sets`, up to the first
    /// set that is not one (a template set, options data, a malformed header, the end), and
    /// return where that set starts: `pos` itself when the set there is options data.
    ///
    /// The scope, its options state and its names are looked up once for the run rather than
    /// once per set: softflowd's messages are 5 to 11 data sets, and the two lookups, the
    /// sampling rate's and setting up a set cost about 150 instructions a set. Data sets whose
    /// template is unknown are appended to `deferred`.
    #[allow(clippy::too_many_arguments)]
    fn data_run<'a>(
        &mut self,
        run: &Run<'_, 'a>,
        mut pos: usize,
        recent: &mut RecentTemplates,
        deferred: &mut Vec<(usize, usize, u16)>,
        s: &mut Scratch<'a>,
        out: &mut DecodeOutput,
        sink: &mut Sink<'_>,
        report: &mut DatagramReport,
    ) -> usize {
        let Decoder {
            config,
            stats,
            scopes,
            names,
            streamed,
            ..
        } = self;
        let (meta, key) = (run.meta, run.key);
        let now = meta.received_ns;
        let mut scope = scopes.get_mut(key);
        // Looked up at the run's first flow set: a run of sets held for their template, or of
        // options data, does not use the names.
        let (mut names, mut app) = (Some(names), None);
        // Options data ends the run, so the rate of a sampler id holds for the whole run.
        let mut options_rate = None;
        while let Some(rest) = run.sets.get(pos..)
            && let Some((id, len)) = set_header(rest)
            && id >= MIN_DATA_SET_ID
        {
            if recent.get(id).is_none()
                && let Some(t) = scope.as_deref_mut().and_then(|sc| sc.use_template(id, now))
            {
                recent.put(id, t);
            }
            match recent.get(id) {
                Some(t) if t.options => break,
                Some(t) => {
                    if let Some(names) = names.take() {
                        app = app_names(names, key, now);
                    }
                    let options = scope.as_deref().map(|sc| &sc.options);
                    let mut set = DataSet::new(config, t, meta, key.domain, options, app);
                    set.options_rate = options_rate;
                    let body = rest.get(4..len).unwrap_or_default();
                    let at = run.sets_offset + pos + 4;
                    report.records +=
                        set.read_flows(stats, streamed, meta, body, at, s, out, sink, report);
                    options_rate = set.options_rate;
                }
                None => deferred.push((pos + 4, pos + len, id)),
            }
            pos += len;
        }
        pos
    }

    /// Template or options template set: a sequence of records, then padding.
    #[allow(clippy::too_many_arguments)]
    fn template_set(
        &mut self,
        flavor: Flavor,
        key: ScopeKey,
        body: &[u8],
        body_offset: usize,
        options: bool,
        now: u64,
        report: &mut DatagramReport,
    ) {
        let context = if options {
            "options template set"
        } else {
            "template set"
        };
        let mut rest = body;
        // Anything shorter than a record header, or all zeros, is padding (RFC 7011 §3.3.1,
        // RFC 3954 §5.3).
        while rest.len() >= 4 && rest.iter().any(|&b| b != 0) {
            let offset = body_offset + (body.len() - rest.len());
            if let Some(len) = self.refresh(&key, options, rest, now) {
                rest = rest.get(len..).unwrap_or_default();
                continue;
            }
            let parsed = match (flavor, options) {
                (Flavor::V9, false) => netflow_v9::template_record(rest)
                    .map(|(r, (id, f))| (r, ipfix::TemplateRecord::Template { id, fields: f }, 1)),
                (Flavor::V9, true) => {
                    netflow_v9::options_template_record(rest).map(|(r, (id, f))| {
                        let scopes = f.iter().filter(|f| f.v9_scope).count();
                        (r, ipfix::TemplateRecord::Template { id, fields: f }, scopes)
                    })
                }
                (Flavor::Ipfix, false) => ipfix::template_record(rest).map(|(r, t)| (r, t, 1)),
                (Flavor::Ipfix, true) => ipfix::options_template_record(rest)
                    .map(|(r, (t, scopes))| (r, t, usize::from(scopes))),
            };
            let Ok((next, record, scope_count)) = parsed else {
                err(report, ErrorKind::Truncated, offset, context);
                return;
            };
            let wire = rest.get(..rest.len() - next.len()).unwrap_or_default();
            rest = next;
            match record {
                ipfix::TemplateRecord::Withdraw { id } if flavor == Flavor::Ipfix => {
                    self.withdraw(&key, id, options, offset, report);
                }
                ipfix::TemplateRecord::Withdraw { .. } => {
                    err(report, ErrorKind::InvalidTemplate, offset, context);
                }
                ipfix::TemplateRecord::Template { id, fields } => {
                    let scopes_ok = !options || (scope_count > 0 && scope_count <= fields.len());
                    if id < MIN_DATA_SET_ID || fields.is_empty() || !scopes_ok {
                        err(report, ErrorKind::InvalidTemplate, offset, context);
                    } else if flavor == Flavor::V9
                        && fields.iter().any(|f| f.len == template::VARLEN)
                    {
                        // RFC 3954 §5.2: a v9 field length is a byte count; 65535 means
                        // variable length only in IPFIX (RFC 7011 §7).
                        err(
                            report,
                            ErrorKind::InvalidTemplate,
                            offset,
                            "netflow v9 template: field length 65535 (variable length is IPFIX only)",
                        );
                    } else {
                        let t = (id, options, fields, wire);
                        self.learn(key, t, offset, now, report);
                    }
                }
            }
        }
    }

    /// A periodic refresh of a template, when `rest` starts with the very record the template
    /// of its id was learnt from (and of the same kind): the template and its scope are marked
    /// used at `now`, as a refresh parsed and compared field by field is, and the record's
    /// length returned. Exporters repeat their templates every few messages (softflowd every
    /// other one), and parsing a record into a field list cost about 900 instructions.
    fn refresh(&mut self, key: &ScopeKey, options: bool, rest: &[u8], now: u64) -> Option<usize> {
        let &[a, b] = rest.get(..2)? else {
            return None;
        };
        let scope = self.scopes.get_mut(key)?;
        let t = scope.templates.get_mut(&u16::from_be_bytes([a, b]))?;
        let wire = &t.template.wire;
        if t.template.options != options || wire.is_empty() || !rest.starts_with(wire) {
            return None;
        }
        t.last_used = t.last_used.max(now);
        scope.last_used = scope.last_used.max(now);
        Some(wire.len())
    }

    /// Learn template `id` (an options template when `options`) of `fields`, read from the
    /// template record `wire`.
    fn learn(
        &mut self,
        key: ScopeKey,
        (id, options, fields, wire): (u16, bool, Vec<FieldSpec>, &[u8]),
        offset: usize,
        now: u64,
        report: &mut DatagramReport,
    ) {
        if fields.len() > self.config.max_fields_per_template {
            err(report, ErrorKind::FieldLimit, offset, "template");
            self.stats.count_limit(Limit::FieldsPerTemplate);
            return;
        }
        // A periodic refresh of the same template changes nothing but its age: recognised by
        // its field list, before compiling it again (`refresh` has already taken one repeated
        // byte for byte, without parsing it).
        if let Some(scope) = self.scopes.get_mut(&key)
            && let Some(t) = scope.templates.get_mut(&id)
            && t.template.options == options
            && *t.template.fields == *fields
        {
            t.last_used = t.last_used.max(now);
            scope.last_used = scope.last_used.max(now);
            return;
        }
        let described = self.config.keep_unknown_fields.then(|| TemplateReport {
            domain: key.domain,
            id,
            options,
            fields: fields
                .iter()
                .map(|f| TemplateFieldReport {
                    enterprise: f.enterprise,
                    id: f.id,
                    length: f.len,
                    scope: f.v9_scope,
                })
                .collect(),
        });
        let Some(mut tmpl) = Template::compile(
            options,
            fields,
            &self.config.fields,
            self.config.record_fields,
        ) else {
            err(report, ErrorKind::InvalidTemplate, offset, "template");
            return;
        };
        tmpl.wire = wire.into();
        let max_templates = self.config.max_templates_per_exporter;
        let new_scope = match self.scopes.get_mut(&key) {
            Some(scope) => {
                scope.last_used = scope.last_used.max(now);
                let full = scope.templates.len() >= max_templates;
                // A refresh of the same template returned above (same kind and fields).
                match scope.templates.get(&id) {
                    // Template id reuse replaces the old definition (RFC 7011 §8, RFC 3954
                    // §5.2).
                    Some(_) => {}
                    None if full => {
                        err(report, ErrorKind::TemplateLimit, offset, "template");
                        self.stats.count_limit(Limit::TemplatesPerExporter);
                        return;
                    }
                    None => {}
                }
                false
            }
            None => {
                // `max_exporters` over every decoder sharing the budget.
                if !self.budget.charge_scope() {
                    err(report, ErrorKind::ExporterLimit, offset, "template");
                    self.stats.count_limit(Limit::Exporters);
                    return;
                }
                true
            }
        };
        let bytes = memory::template_bytes(&tmpl) + if new_scope { memory::SCOPE_BYTES } else { 0 };
        // Room is made by evicting state used before `now`: never this scope (used now).
        if !self.charge(bytes, now) {
            if new_scope {
                self.budget.credit_scope();
            }
            err(report, ErrorKind::MemoryBudget, offset, "template");
            self.stats.count_limit(Limit::MemoryBudget);
            return;
        }
        let scope = self.scopes.entry(key).or_default();
        scope.last_used = scope.last_used.max(now);
        let slot = TemplateSlot {
            bytes: memory::template_bytes(&tmpl),
            template: Arc::new(tmpl),
            last_used: now,
        };
        let replaced = scope.templates.insert(id, slot).map_or(0, |old| old.bytes);
        self.credit(replaced);
        report.templates.extend(described);
        self.stats.templates_learnt += 1;
        self.learnt.push((key, id));
    }

    /// RFC 7011 §8.1: field count 0 withdraws template `id`; id 2 in a template set withdraws
    /// all data templates, id 3 in an options template set all options templates.
    fn withdraw(
        &mut self,
        key: &ScopeKey,
        id: u16,
        options: bool,
        offset: usize,
        report: &mut DatagramReport,
    ) {
        let all_id = if options {
            ipfix::OPTIONS_TEMPLATE_SET
        } else {
            ipfix::TEMPLATE_SET
        };
        if id != all_id && id < MIN_DATA_SET_ID {
            err(
                report,
                ErrorKind::InvalidTemplate,
                offset,
                "template withdrawal",
            );
            return;
        }
        let Some(scope) = self.scopes.get_mut(key) else {
            return;
        };
        let before = scope.templates.len();
        let mut freed = 0usize;
        if id == all_id {
            scope.templates.retain(|_, t| {
                let keep = t.template.options != options;
                if !keep {
                    freed += t.bytes;
                }
                keep
            });
        } else if let Some(t) = scope.templates.remove(&id) {
            freed += t.bytes;
        }
        self.stats.templates_withdrawn += (before - scope.templates.len()) as u64;
        self.credit(freed);
    }

    /// Decode every record of a data set with `tmpl` (options data is applied to the scope
    /// instead). Returns the flow records made. Used for the sets a message defers and the
    /// pending sets a template releases; a message's other sets are read by
    /// [`Decoder::data_run`].
    #[allow(clippy::too_many_arguments)]
    fn decode_data<'a>(
        &mut self,
        key: &ScopeKey,
        tmpl: &Template,
        meta: &Meta,
        data: &'a [u8],
        offset: usize,
        s: &mut Scratch<'a>,
        out: &mut DecodeOutput,
        sink: &mut Sink<'_>,
        report: &mut DatagramReport,
    ) -> usize {
        if tmpl.options {
            self.options_data(key, tmpl, meta, data, offset, report);
            return 0;
        }
        let Decoder {
            config,
            stats,
            scopes,
            names,
            streamed,
            ..
        } = self;
        let scope = scopes.get(key).map(|sc| &sc.options);
        let app_names = app_names(names, key, meta.received_ns);
        let mut set = DataSet::new(config, tmpl, meta, key.domain, scope, app_names);
        set.read_flows(stats, streamed, meta, data, offset, s, out, sink, report)
    }

    /// Apply every record of an options data set with `tmpl` to the scope's options state
    /// and names; trailing bytes shorter than the smallest record are padding.
    fn options_data(
        &mut self,
        key: &ScopeKey,
        tmpl: &Template,
        meta: &Meta,
        data: &[u8],
        offset: usize,
        report: &mut DatagramReport,
    ) {
        let mut pos = 0usize;
        let mut base = FlowRecord::new(meta.exporter, meta.protocol, meta.received_ns);
        base.observation_domain = key.domain;
        let max_entries = self.config.max_templates_per_exporter.saturating_mul(16);
        while data.len() - pos >= tmpl.min_len {
            let mut rec = base.clone();
            let mut s = Scratch::default();
            let rest = data.get(pos..).unwrap_or_default();
            match template::read_record(tmpl, rest, &mut rec, &mut s, false) {
                Ok(used) => pos += used,
                Err(_) => {
                    err(
                        report,
                        ErrorKind::Truncated,
                        offset + pos,
                        "options data record",
                    );
                    break;
                }
            }
            self.stats.options_records += 1;
            self.stats.fields_out_of_range += u64::from(s.out_of_range);
            let (if_index, app_id) = (rec.in_if, rec.application_id);
            self.apply_options(key, &s, if_index, app_id, meta.received_ns, max_entries);
        }
    }

    /// Apply one options data record of scope `key` to its options state and names, within
    /// the memory budget (the record is refused when there is no room).
    fn apply_options(
        &mut self,
        key: &ScopeKey,
        s: &template::Scratch<'_>,
        if_index: Option<u32>,
        app_id: Option<u64>,
        now: u64,
        max_entries: usize,
    ) {
        let names_key = key.names_key();
        let new_names = !self.names.contains_key(&names_key);
        let upper = options::max_new_bytes(s, if_index, app_id)
            + if new_names { memory::NAMES_BYTES } else { 0 };
        // The scope was used now (its options template), so making room never removes it.
        if !self.charge(upper, now) {
            self.stats.count_limit(Limit::MemoryBudget);
            return;
        }
        let (Some(scope), names) = (
            self.scopes.get_mut(key),
            self.names.entry(names_key).or_default(),
        ) else {
            self.credit(upper);
            return;
        };
        let applied = options::apply(&mut scope.options, names, s, if_index, app_id, max_entries);
        scope.options_bytes = scope
            .options_bytes
            .saturating_add_signed(applied.scope_bytes);
        names.bytes = names.bytes.saturating_add_signed(applied.names_bytes);
        scope.options_used = now;
        names.last_used = now;
        let used = applied.scope_bytes
            + applied.names_bytes
            + if new_names {
                memory::NAMES_BYTES as isize
            } else {
                0
            };
        self.credit((upper as isize - used).max(0) as usize);
        if !applied.ok {
            self.stats.count_limit(Limit::OptionsEntries);
        }
    }

    /// Keep a data set whose template is unknown for later.
    fn hold(
        &mut self,
        key: ScopeKey,
        id: u16,
        meta: &Meta,
        body: &[u8],
        offset: usize,
        report: &mut DatagramReport,
    ) {
        if self.config.max_pending_sets == 0 {
            err(report, ErrorKind::MissingTemplate, offset, "data set");
            return;
        }
        if !self.scopes.contains_key(&key) && self.budget.scopes_full() {
            err(report, ErrorKind::ExporterLimit, offset, "data set");
            self.stats.count_limit(Limit::Exporters);
            return;
        }
        let bytes = memory::pending_bytes(body.len());
        self.stats.pending_held += 1;
        // `max_pending_sets` and the pending share of the memory budget hold over every
        // decoder: this decoder's oldest sets make room, else the new set is dropped.
        loop {
            match self.budget.charge_pending(bytes) {
                PendingCharge::Ok => break,
                PendingCharge::Sets | PendingCharge::Bytes => {
                    self.stats.pending_dropped += 1;
                    match self.pending.pop_oldest() {
                        Some(b) => {
                            self.budget.credit_pending(1, b);
                            self.credit(b);
                        }
                        None => return,
                    }
                }
            }
        }
        if !self.charge(bytes, meta.received_ns) {
            self.budget.credit_pending(1, bytes);
            self.stats.pending_held -= 1;
            err(report, ErrorKind::MemoryBudget, offset, "data set");
            self.stats.count_limit(Limit::MemoryBudget);
            return;
        }
        self.pending.push(PendingSet {
            key,
            template_id: id,
            meta: *meta,
            data: body.into(),
            bytes,
        });
        report.held.add(id);
    }

    /// Decode the pending sets whose template was learnt by this datagram.
    pub(crate) fn release_pending(
        &mut self,
        out: &mut DecodeOutput,
        sink: &mut Sink<'_>,
        report: &mut DatagramReport,
    ) {
        let learnt = std::mem::take(&mut self.learnt);
        if !self.pending.is_empty() {
            for (key, id) in &learnt {
                // Learnt by this datagram, so never evicted by it.
                let Some(t) = self.use_template(key, *id, 0) else {
                    continue;
                };
                for p in self.pending.take(key, *id) {
                    self.budget.credit_pending(1, p.bytes);
                    self.credit(p.bytes);
                    let mut s = Scratch::default();
                    let (data, meta) = (&p.data, &p.meta);
                    let n = self.decode_data(&p.key, &t, meta, data, 0, &mut s, out, sink, report);
                    report.records += n;
                    self.stats.pending_released += 1;
                }
            }
        }
        self.learnt = learnt;
        self.learnt.clear();
    }
}

/// The last templates a message's data sets used ([`RECENT_TEMPLATES`]), by id, so that its
/// following sets of the same templates skip the lookup (two tables) and the reference count.
/// Exporters alternate between a few templates within a message: softflowd starts a set
/// whenever the record's template changes, and its messages are 5 to 11 sets of up to four
/// templates (IPv4 and IPv6, each for flows with ports and for ICMP). What
/// [`Decoder::use_template`] does besides the lookup is marking the template and its scope
/// used at the message's time, which the message's first lookup of that template did. A
/// template or options template set, and options data, clear it: they change the templates or
/// the scope.
#[derive(Default)]
struct RecentTemplates {
    used: [Option<(u16, Arc<Template>)>; RECENT_TEMPLATES],
    /// The entry `put` replaces next (the one put longest ago).
    next: usize,
}

const RECENT_TEMPLATES: usize = 4;

impl RecentTemplates {
    #[inline]
    fn get(&self, id: u16) -> Option<&Template> {
        self.used
            .iter()
            .flatten()
            .find(|(at, _)| *at == id)
            .map(|(_, t)| &**t)
    }

    /// Remember `t` as template `id`, in place of the one put longest ago.
    #[inline]
    fn put(&mut self, id: u16, t: Arc<Template>) {
        if let Some(slot) = self.used.get_mut(self.next) {
            *slot = Some((id, t));
        }
        self.next = (self.next + 1) % RECENT_TEMPLATES;
    }

    fn clear(&mut self) {
        *self = RecentTemplates::default();
    }
}
