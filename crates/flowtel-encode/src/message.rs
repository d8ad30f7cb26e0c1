//! One NetFlow v9 export packet or IPFIX message, written set by set.

/// Which format a [`MessageWriter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportVersion {
    /// NetFlow v9, RFC 3954.
    NetflowV9,
    /// IPFIX, RFC 7011.
    Ipfix,
}

impl ExportVersion {
    const fn version(self) -> u16 {
        match self {
            ExportVersion::NetflowV9 => 9,
            ExportVersion::Ipfix => 10,
        }
    }

    /// Set id of template sets: v9 FlowSet ID 0 (RFC 3954 §5.2), IPFIX 2 (RFC 7011 §3.3.2).
    const fn template_set_id(self) -> u16 {
        match self {
            ExportVersion::NetflowV9 => 0,
            ExportVersion::Ipfix => 2,
        }
    }

    /// Set id of options template sets: v9 1 (RFC 3954 §6.1), IPFIX 3 (RFC 7011 §3.3.2).
    const fn options_set_id(self) -> u16 {
        match self {
            ExportVersion::NetflowV9 => 1,
            ExportVersion::Ipfix => 3,
        }
    }

    const fn header_len(self) -> usize {
        match self {
            ExportVersion::NetflowV9 => 20,
            ExportVersion::Ipfix => 16,
        }
    }
}

/// One field specifier of a template: information element id, length in bytes, and for IPFIX
/// an optional Private Enterprise Number (RFC 7011 §3.2; NetFlow v9 has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    pub id: u16,
    pub length: u16,
    pub enterprise: Option<u32>,
}

impl FieldSpec {
    /// An IANA (or NetFlow v9) field.
    pub const fn new(id: u16, length: u16) -> Self {
        FieldSpec {
            id,
            length,
            enterprise: None,
        }
    }

    /// An IPFIX enterprise-specific field.
    pub const fn enterprise(id: u16, length: u16, pen: u32) -> Self {
        FieldSpec {
            id,
            length,
            enterprise: Some(pen),
        }
    }
}

/// Header values of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageHeader {
    /// v9 `UNIX Secs` / IPFIX `Export Time`: seconds since the Unix epoch.
    pub export_time_secs: u32,
    /// v9 `sysUptime` in milliseconds; not written for IPFIX.
    pub sys_uptime_ms: u32,
    /// v9: export packets sent before this one; IPFIX: data records sent before this message.
    pub sequence: u32,
    /// v9 Source ID / IPFIX Observation Domain ID.
    pub domain: u32,
}

/// Writes one message. Sets open and close as the kind of record written changes; consecutive
/// records of one kind (and, for data, one template) share a set unless [`end_set`]
/// separates them.
///
/// [`end_set`]: MessageWriter::end_set
#[derive(Debug, Clone)]
pub struct MessageWriter {
    version: ExportVersion,
    buf: Vec<u8>,
    /// Records of every kind (the v9 header count).
    records: u16,
    /// Data records only (what IPFIX sequence numbers count).
    data_records: u32,
    /// Start offset and set id of the open set.
    open: Option<(usize, u16)>,
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn len16(n: usize) -> u16 {
    // Messages are written from in-memory values; callers keep them under 64 KiB (the UDP
    // limit), and a longer one is a caller bug that produces a length the decoder rejects.
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl MessageWriter {
    /// Start a message with its header.
    pub fn new(version: ExportVersion, header: MessageHeader) -> Self {
        let mut buf = Vec::with_capacity(1500);
        put16(&mut buf, version.version());
        // v9: count, patched in finish(); IPFIX: length, patched in finish().
        put16(&mut buf, 0);
        match version {
            // RFC 3954 §5.1: version, count, sysUptime, UNIX Secs, Sequence Number, Source ID.
            ExportVersion::NetflowV9 => {
                put32(&mut buf, header.sys_uptime_ms);
                put32(&mut buf, header.export_time_secs);
            }
            // RFC 7011 §3.1: version, length, Export Time, Sequence Number, Observation Domain.
            ExportVersion::Ipfix => put32(&mut buf, header.export_time_secs),
        }
        put32(&mut buf, header.sequence);
        put32(&mut buf, header.domain);
        MessageWriter {
            version,
            buf,
            records: 0,
            data_records: 0,
            open: None,
        }
    }

    pub fn version(&self) -> ExportVersion {
        self.version
    }

    /// Bytes written so far, as if the message were finished now (without v9 padding of the
    /// open set).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when only the header is written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == self.version.header_len()
    }

    /// Data records written so far.
    pub fn data_records(&self) -> u32 {
        self.data_records
    }

    fn set(&mut self, set_id: u16) {
        if matches!(self.open, Some((_, id)) if id == set_id) {
            return;
        }
        self.close();
        let at = self.buf.len();
        put16(&mut self.buf, set_id);
        put16(&mut self.buf, 0);
        self.open = Some((at, set_id));
    }

    fn close(&mut self) {
        let Some((at, _)) = self.open.take() else {
            return;
        };
        if self.version == ExportVersion::NetflowV9 {
            // RFC 3954 §5.3: pad so the next FlowSet starts on a 32-bit boundary; the padding
            // is part of the FlowSet length.
            while !(self.buf.len() - at).is_multiple_of(4) {
                self.buf.push(0);
            }
        }
        let len = len16(self.buf.len() - at).to_be_bytes();
        if let Some(slot) = self.buf.get_mut(at + 2..at + 4) {
            slot.copy_from_slice(&len);
        }
    }

    fn put_field(&mut self, f: &FieldSpec) {
        match (self.version, f.enterprise) {
            // RFC 7011 §3.2: enterprise bit, then the 4-byte PEN after the length.
            (ExportVersion::Ipfix, Some(pen)) => {
                put16(&mut self.buf, f.id | 0x8000);
                put16(&mut self.buf, f.length);
                put32(&mut self.buf, pen);
            }
            // RFC 3954 §5.2: NetFlow v9 field types use all 16 bits (Cisco NSEL's 33000-40005,
            // PAN-OS's 56701); IPFIX reserves the top bit for the enterprise flag.
            (ExportVersion::NetflowV9, _) => {
                put16(&mut self.buf, f.id);
                put16(&mut self.buf, f.length);
            }
            (ExportVersion::Ipfix, None) => {
                put16(&mut self.buf, f.id & 0x7fff);
                put16(&mut self.buf, f.length);
            }
        }
    }

    /// A template record (RFC 3954 §5.2, RFC 7011 §3.4.1): id (>= 256) and field specifiers.
    pub fn template(&mut self, id: u16, fields: &[FieldSpec]) {
        self.set(self.version.template_set_id());
        put16(&mut self.buf, id);
        put16(&mut self.buf, len16(fields.len()));
        for f in fields {
            self.put_field(f);
        }
        self.records = self.records.saturating_add(1);
    }

    /// An IPFIX template withdrawal (RFC 7011 §8.1: field count 0); nothing for NetFlow v9,
    /// which has no withdrawal.
    pub fn withdraw_template(&mut self, id: u16) {
        if self.version == ExportVersion::Ipfix {
            self.set(self.version.template_set_id());
            put16(&mut self.buf, id);
            put16(&mut self.buf, 0);
            self.records = self.records.saturating_add(1);
        }
    }

    /// An options template record. NetFlow v9 (RFC 3954 §6.1): scope and option lengths in
    /// bytes, scope field types 1 System, 2 Interface, 3 Line Card, 4 Cache, 5 Template.
    /// IPFIX (RFC 7011 §3.4.2.2): field count, scope field count, scope fields first.
    pub fn options_template(&mut self, id: u16, scope: &[FieldSpec], fields: &[FieldSpec]) {
        self.set(self.version.options_set_id());
        put16(&mut self.buf, id);
        match self.version {
            ExportVersion::NetflowV9 => {
                put16(&mut self.buf, len16(scope.len() * 4));
                put16(&mut self.buf, len16(fields.len() * 4));
            }
            ExportVersion::Ipfix => {
                put16(&mut self.buf, len16(scope.len() + fields.len()));
                put16(&mut self.buf, len16(scope.len()));
            }
        }
        for f in scope.iter().chain(fields) {
            self.put_field(f);
        }
        self.records = self.records.saturating_add(1);
    }

    /// An IPFIX options template withdrawal (RFC 7011 §8.1, in an options template set); nothing
    /// for NetFlow v9.
    pub fn withdraw_options_template(&mut self, id: u16) {
        if self.version == ExportVersion::Ipfix {
            self.set(self.version.options_set_id());
            put16(&mut self.buf, id);
            put16(&mut self.buf, 0);
            self.records = self.records.saturating_add(1);
        }
    }

    /// Close the open set: the next record starts a new set even when it is of the same kind
    /// (exporters that send one template per set, or split data across sets).
    pub fn end_set(&mut self) {
        self.close();
    }

    /// A whole set written verbatim: `set_id`, the set length (header included, no padding)
    /// and `body` as given. For testing collectors with what this writer does not produce
    /// (malformed records, reserved or unknown set ids); its records are not counted in the
    /// NetFlow v9 header.
    pub fn raw_set(&mut self, set_id: u16, body: &[u8]) {
        self.close();
        put16(&mut self.buf, set_id);
        put16(&mut self.buf, len16(body.len() + 4));
        self.buf.extend_from_slice(body);
    }

    /// One data record of `template_id`, already encoded by the caller in template order
    /// (RFC 3954 §5.3, RFC 7011 §3.4.3); consecutive records of one template share a set.
    pub fn data_record(&mut self, template_id: u16, record: &[u8]) {
        self.set(template_id);
        self.buf.extend_from_slice(record);
        self.records = self.records.saturating_add(1);
        self.data_records = self.data_records.saturating_add(1);
    }

    /// Close the open set, fill in the header count (v9) or length (IPFIX), return the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.close();
        let v = match self.version {
            ExportVersion::NetflowV9 => self.records,
            ExportVersion::Ipfix => len16(self.buf.len()),
        };
        if let Some(slot) = self.buf.get_mut(2..4) {
            slot.copy_from_slice(&v.to_be_bytes());
        }
        self.buf
    }
}
