//! The varint length-delimited framing of [`FlowMessage`]s: each message is preceded by its
//! byte length as a protobuf base-128 varint. It is goflow2's `-format=bin` (also each Kafka
//! record value), protobuf's `writeDelimitedTo` / `parseDelimitedFrom`, and what ClickHouse's
//! `Protobuf` input format reads.

use prost::Message;

use crate::proto::FlowMessage;

/// Append `message`, length-prefixed, to `out`.
pub fn encode_delimited(message: &FlowMessage, out: &mut Vec<u8>) {
    let len = message.encoded_len();
    out.reserve(len + prost::length_delimiter_len(len));
    // A Vec grows as needed: prost's only encoding error (insufficient capacity) cannot occur.
    let _ = message.encode_length_delimited(out);
}

/// Reads the messages of a length-delimited stream, in order.
#[derive(Debug, Clone)]
pub struct DelimitedReader<'a> {
    rest: &'a [u8],
}

impl<'a> DelimitedReader<'a> {
    pub fn new(stream: &'a [u8]) -> Self {
        DelimitedReader { rest: stream }
    }
}

impl Iterator for DelimitedReader<'_> {
    type Item = Result<FlowMessage, prost::DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = FlowMessage::decode_length_delimited(&mut self.rest);
        if item.is_err() {
            // A broken frame ends the stream: nothing after it can be delimited reliably.
            self.rest = &[];
        }
        Some(item)
    }
}
