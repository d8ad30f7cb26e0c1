//! NetFlow v9 (RFC 3954): packet header and template / options template flowsets.
//!
//! Data flowsets are read by the shared engine in [`crate::sets`] with the compiled plans of
//! [`crate::template`]; this module only parses the structures nom is good at.

use nom::number::complete::{be_u16, be_u32};
use nom::{IResult, Parser};

use crate::template::FieldSpec;

pub(crate) const VERSION: u16 = 9;
pub(crate) const HEADER_LEN: usize = 20;
/// RFC 3954 §5.2: FlowSet ID 0 is a template flowset.
pub(crate) const TEMPLATE_SET: u16 = 0;
/// RFC 3954 §6.1: FlowSet ID 1 is an options template flowset.
pub(crate) const OPTIONS_TEMPLATE_SET: u16 = 1;

/// RFC 3954 §5.1 packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub sys_uptime_ms: u32,
    pub unix_secs: u32,
    /// Export packets sent by this source id (RFC 3954 §5.1 "Sequence Number").
    pub sequence: u32,
    pub source_id: u32,
}

pub(crate) fn header(i: &[u8]) -> IResult<&[u8], Header> {
    let (i, (_version, _count, sys_uptime_ms, unix_secs, sequence, source_id)) =
        (be_u16, be_u16, be_u32, be_u32, be_u32, be_u32).parse(i)?;
    Ok((
        i,
        Header {
            sys_uptime_ms,
            unix_secs,
            sequence,
            source_id,
        },
    ))
}

/// A (type, length) pair; `scope` marks RFC 3954 §6.1 scope fields, whose type is a scope
/// type (1 System, 2 Interface, ...) rather than a field type.
fn field(scope: bool) -> impl Fn(&[u8]) -> IResult<&[u8], FieldSpec> {
    move |i| {
        let (i, (id, len)) = (be_u16, be_u16).parse(i)?;
        Ok((
            i,
            FieldSpec {
                enterprise: 0,
                id,
                len,
                v9_scope: scope,
            },
        ))
    }
}

fn fields<'a>(
    mut i: &'a [u8],
    n: usize,
    scope: bool,
    out: &mut Vec<FieldSpec>,
) -> IResult<&'a [u8], ()> {
    for _ in 0..n {
        let (rest, f) = field(scope)(i)?;
        out.push(f);
        i = rest;
    }
    Ok((i, ()))
}

/// One template record (RFC 3954 §5.2): template id, field count, fields.
pub(crate) fn template_record(i: &[u8]) -> IResult<&[u8], (u16, Vec<FieldSpec>)> {
    let (i, (id, count)) = (be_u16, be_u16).parse(i)?;
    let n = usize::from(count);
    let mut out = Vec::with_capacity(n.min(i.len() / 4));
    let (i, ()) = fields(i, n, false, &mut out)?;
    Ok((i, (id, out)))
}

/// One options template record (RFC 3954 §6.1): template id, scope length and option length
/// in bytes, then the scope fields and the option fields.
pub(crate) fn options_template_record(i: &[u8]) -> IResult<&[u8], (u16, Vec<FieldSpec>)> {
    let (i, (id, scope_len, option_len)) = (be_u16, be_u16, be_u16).parse(i)?;
    let (scopes, options) = (usize::from(scope_len) / 4, usize::from(option_len) / 4);
    let mut out = Vec::with_capacity((scopes + options).min(i.len() / 4));
    let (i, ()) = fields(i, scopes, true, &mut out)?;
    let (i, ()) = fields(i, options, false, &mut out)?;
    Ok((i, (id, out)))
}
