//! The set engine shared by NetFlow v9 and IPFIX: template learning and withdrawal,
//! order-independent data set decoding, the pending buffer and sampling resolution.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::{DecodeError, ErrorKind};
use crate::options;
use crate::pending::PendingSet;
use crate::record::{FlowProtocol, FlowRecord, SamplingSource};
use crate::scope::{Meta, ScopeKey};
use crate::stats::Limit;
use crate::template::{self, FieldSpec, Scratch, Template, TimeBase};
use crate::{
    DatagramReport, DecodeOutput, Decoder, TemplateFieldReport, TemplateReport, ipfix, netflow_v9,
};

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

impl Decoder {
    fn scope_key(&self, exporter: SocketAddr, version: u16, domain: u32) -> ScopeKey {
        ScopeKey {
            addr: exporter.ip(),
            port: if self.config.scope_includes_port {
                exporter.port()
            } else {
                0
            },
            version,
            domain,
        }
    }

    /// NetFlow v9 packet (RFC 3954 §5).
    pub(crate) fn decode_v9(
        &mut self,
        exporter: SocketAddr,
        datagram: &[u8],
        received_ns: u64,
        out: &mut DecodeOutput,
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
        report: &mut DatagramReport,
    ) {
        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.clear();
        let mut pos = 0usize;
        while pos < sets.len() {
            let rest = sets.get(pos..).unwrap_or_default();
            let Some(&[a, b, c, d]) = rest.get(..4) else {
                if rest.iter().any(|&b| b != 0) {
                    err(
                        report,
                        ErrorKind::Truncated,
                        sets_offset + pos,
                        "set header",
                    );
                }
                break;
            };
            let id = u16::from_be_bytes([a, b]);
            let len = usize::from(u16::from_be_bytes([c, d]));
            let Some(body) = rest.get(4..len).filter(|_| len >= 4) else {
                err(
                    report,
                    ErrorKind::BadSetLength,
                    sets_offset + pos,
                    "set header",
                );
                break;
            };
            let body_offset = sets_offset + pos + 4;
            if id == flavor.template_set() {
                self.template_set(flavor, key, body, body_offset, false, report);
            } else if id == flavor.options_template_set() {
                self.template_set(flavor, key, body, body_offset, true, report);
            } else if id >= MIN_DATA_SET_ID {
                match self.template(&key, id) {
                    Some(t) => {
                        let n = self.decode_data(&key, &t, meta, body, body_offset, out, report);
                        report.records += n;
                    }
                    None => deferred.push((pos + 4, pos + len, id)),
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
            match self.template(&key, id) {
                Some(t) => {
                    let n =
                        self.decode_data(&key, &t, meta, body, sets_offset + start, out, report);
                    report.records += n;
                }
                None => self.hold(key, id, meta, body, sets_offset + start, report),
            }
        }
        self.deferred = deferred;
    }

    fn template(&self, key: &ScopeKey, id: u16) -> Option<Arc<Template>> {
        self.scopes.get(key)?.templates.get(&id).cloned()
    }

    /// Template or options template set: a sequence of records, then padding.
    fn template_set(
        &mut self,
        flavor: Flavor,
        key: ScopeKey,
        body: &[u8],
        body_offset: usize,
        options: bool,
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
                    } else {
                        self.learn(key, id, options, fields, offset, report);
                    }
                }
            }
        }
    }

    fn learn(
        &mut self,
        key: ScopeKey,
        id: u16,
        options: bool,
        fields: Vec<FieldSpec>,
        offset: usize,
        report: &mut DatagramReport,
    ) {
        if fields.len() > self.config.max_fields_per_template {
            err(report, ErrorKind::FieldLimit, offset, "template");
            self.stats.count_limit(Limit::FieldsPerTemplate);
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
        let Some(tmpl) = Template::compile(options, fields, &self.config.fields) else {
            err(report, ErrorKind::InvalidTemplate, offset, "template");
            return;
        };
        if !self.scopes.contains_key(&key) && self.scopes.len() >= self.config.max_exporters {
            err(report, ErrorKind::ExporterLimit, offset, "template");
            self.stats.count_limit(Limit::Exporters);
            return;
        }
        let max_templates = self.config.max_templates_per_exporter;
        let scope = self.scopes.entry(key).or_default();
        match scope.templates.get(&id) {
            // A periodic refresh of the same template changes nothing.
            Some(t) if **t == tmpl => return,
            // Template id reuse replaces the old definition (RFC 7011 §8, RFC 3954 §5.2).
            Some(_) => {}
            None if scope.templates.len() >= max_templates => {
                err(report, ErrorKind::TemplateLimit, offset, "template");
                self.stats.count_limit(Limit::TemplatesPerExporter);
                return;
            }
            None => {}
        }
        scope.templates.insert(id, Arc::new(tmpl));
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
        if id == all_id {
            scope.templates.retain(|_, t| t.options != options);
        } else {
            scope.templates.remove(&id);
        }
        self.stats.templates_withdrawn += (before - scope.templates.len()) as u64;
    }

    /// Decode every record of a data set with `tmpl`; trailing bytes shorter than the
    /// smallest record are padding (RFC 7011 §3.3.1). Returns the flow records appended.
    #[allow(clippy::too_many_arguments)]
    fn decode_data(
        &mut self,
        key: &ScopeKey,
        tmpl: &Template,
        meta: &Meta,
        data: &[u8],
        offset: usize,
        out: &mut DecodeOutput,
        report: &mut DatagramReport,
    ) -> usize {
        let mut pos = 0usize;
        if tmpl.options {
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
                let scope = self.scopes.entry(*key).or_default();
                let names = self.names.entry((key.addr, key.domain)).or_default();
                let (if_index, app_id) = (rec.in_if, rec.application_id);
                if !options::apply(&mut scope.options, names, &s, if_index, app_id, max_entries) {
                    self.stats.count_limit(Limit::OptionsEntries);
                }
            }
            return 0;
        }
        let keep = self.config.keep_unknown_fields;
        let scope = self.scopes.get(key).map(|s| &s.options);
        let app_names = self
            .names
            .get(&(key.addr, key.domain))
            .map(|n| &n.app_names)
            .filter(|n| !n.is_empty());
        let time_base = TimeBase {
            sys_init_ms: scope.and_then(|o| o.sys_init_ms),
            ..meta.base
        };
        let first = out.flows.len();
        let mut s = Scratch::default();
        while data.len() - pos >= tmpl.min_len {
            // The record is built in place in the output to avoid copying it.
            let n = out.flows.len();
            out.flows.resize_with(n + 1, || {
                FlowRecord::new(meta.exporter, meta.protocol, meta.received_ns)
            });
            let Some(rec) = out.flows.last_mut() else {
                break;
            };
            rec.observation_domain = key.domain;
            rec.sequence_num = meta.sequence;
            s.reset();
            let rest = data.get(pos..).unwrap_or_default();
            match template::read_record(tmpl, rest, rec, &mut s, keep) {
                Ok(used) => pos += used,
                Err(_) => {
                    out.flows.pop();
                    err(report, ErrorKind::Truncated, offset + pos, "data record");
                    break;
                }
            }
            template::finish(rec, &s, &time_base, self.config.sflow_bytes);
            if let Some(id) = rec.application_id {
                rec.application_name = app_names.and_then(|n| n.get(&id)).cloned();
            }
            // Sampling resolution: the record itself, then options data of this scope.
            if let Some(rate) = s.sampling_rate() {
                rec.sampling_rate = Some(rate);
                rec.sampling_source = SamplingSource::Record;
            } else if let Some(rate) = scope.and_then(|o| o.rate_for(s.sampler_id())) {
                rec.sampling_rate = Some(rate);
                rec.sampling_source = SamplingSource::Options;
            } else {
                self.stats.sampling_rate_unknown += 1;
            }
            if s.has_reverse()
                && let Some(r) = template::reverse(rec, &s, tmpl, rest, &time_base)
            {
                self.stats.sampling_rate_unknown += u64::from(r.sampling_rate.is_none());
                out.flows.push(r);
            }
        }
        self.stats.fields_out_of_range += u64::from(s.out_of_range);
        out.flows.len() - first
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
        if !self.scopes.contains_key(&key) && self.scopes.len() >= self.config.max_exporters {
            err(report, ErrorKind::ExporterLimit, offset, "data set");
            self.stats.count_limit(Limit::Exporters);
            return;
        }
        let dropped = self.pending.push(
            PendingSet {
                key,
                template_id: id,
                meta: *meta,
                data: body.into(),
            },
            self.config.max_pending_sets,
        );
        self.stats.pending_held += 1;
        report.held.add(id);
        self.stats.pending_dropped += dropped;
        for _ in 0..dropped {
            self.stats.count_limit(Limit::PendingSets);
        }
    }

    /// Decode the pending sets whose template was learnt by this datagram.
    pub(crate) fn release_pending(&mut self, out: &mut DecodeOutput, report: &mut DatagramReport) {
        let learnt = std::mem::take(&mut self.learnt);
        if !self.pending.is_empty() {
            for (key, id) in &learnt {
                for p in self.pending.take(key, *id) {
                    let Some(t) = self.template(&p.key, p.template_id) else {
                        continue;
                    };
                    let n = self.decode_data(&p.key, &t, &p.meta, &p.data, 0, out, report);
                    report.records += n;
                    self.stats.pending_released += 1;
                }
            }
        }
        self.learnt = learnt;
        self.learnt.clear();
    }
}
