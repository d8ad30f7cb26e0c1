//! IPFIX (RFC 7011): message header and template / options template sets.
//!
//! Data sets are read by the shared engine in [`crate::sets`] with the compiled plans of
//! [`crate::template`]; this module only parses the structures nom is good at.

use nom::number::complete::{be_u16, be_u32};
use nom::{IResult, Parser};

use crate::template::FieldSpec;

pub(crate) const VERSION: u16 = 10;
pub(crate) const HEADER_LEN: usize = 16;
/// RFC 7011 §3.3.2: Set ID 2 is a template set.
pub(crate) const TEMPLATE_SET: u16 = 2;
/// RFC 7011 §3.3.2: Set ID 3 is an options template set.
pub(crate) const OPTIONS_TEMPLATE_SET: u16 = 3;

/// RFC 7011 §3.1 message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub length: u16,
    pub export_time: u32,
    /// Data records sent in this observation domain before this message (RFC 7011 §3.1).
    pub sequence: u32,
    pub domain: u32,
}

pub(crate) fn header(i: &[u8]) -> IResult<&[u8], Header> {
    let (i, (_version, length, export_time, sequence, domain)) =
        (be_u16, be_u16, be_u32, be_u32, be_u32).parse(i)?;
    Ok((
        i,
        Header {
            length,
            export_time,
            sequence,
            domain,
        },
    ))
}

/// RFC 7011 §3.2 field specifier: the enterprise bit selects a trailing 4-byte PEN.
fn field(i: &[u8]) -> IResult<&[u8], FieldSpec> {
    let (i, (raw_id, len)) = (be_u16, be_u16).parse(i)?;
    let (i, enterprise) = if raw_id & 0x8000 != 0 {
        be_u32(i)?
    } else {
        (i, 0)
    };
    Ok((
        i,
        FieldSpec {
            enterprise,
            id: raw_id & 0x7FFF,
            len,
            v9_scope: false,
        },
    ))
}

/// A template record, or a withdrawal (field count 0, RFC 7011 §8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateRecord {
    Template { id: u16, fields: Vec<FieldSpec> },
    Withdraw { id: u16 },
}

fn fields(mut i: &[u8], n: usize) -> IResult<&[u8], Vec<FieldSpec>> {
    let mut out = Vec::with_capacity(n.min(i.len() / 4));
    for _ in 0..n {
        let (rest, f) = field(i)?;
        out.push(f);
        i = rest;
    }
    Ok((i, out))
}

/// RFC 7011 §3.4.1 template record.
pub(crate) fn template_record(i: &[u8]) -> IResult<&[u8], TemplateRecord> {
    let (i, (id, count)) = (be_u16, be_u16).parse(i)?;
    if count == 0 {
        return Ok((i, TemplateRecord::Withdraw { id }));
    }
    let (i, fields) = fields(i, usize::from(count))?;
    Ok((i, TemplateRecord::Template { id, fields }))
}

/// RFC 7011 §3.4.2.2 options template record; `None` scope count is reported as invalid by
/// the caller when it is 0 or above the field count.
pub(crate) fn options_template_record(i: &[u8]) -> IResult<&[u8], (TemplateRecord, u16)> {
    let (i, (id, count)) = (be_u16, be_u16).parse(i)?;
    if count == 0 {
        return Ok((i, (TemplateRecord::Withdraw { id }, 0)));
    }
    let (i, scope_count) = be_u16(i)?;
    let (i, fields) = fields(i, usize::from(count))?;
    Ok((i, (TemplateRecord::Template { id, fields }, scope_count)))
}
