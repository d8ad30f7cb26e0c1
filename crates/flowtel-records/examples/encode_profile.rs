//! A fixed amount of encoding work for instruction-count profiling, the records of
//! `benches/encode.rs`:
//!
//! ```text
//! cargo build --profile bench -p flowtel-records --example encode_profile
//! valgrind --tool=callgrind target/release/examples/encode_profile otlp-encoded
//! ```
//!
//! Arguments: the encoding (`otlp-prost`, `otlp-encoded`, `otlp-prost-flow`,
//! `otlp-encoded-flow`, `protobuf`, `json`), then the number of passes over the 10 000
//! records (default 10), OTLP requests of 1 000 records. Prints the bytes produced so the work is not optimised away.

use flowtel_records::{AttributeNames, EncodedLogsBatch, LogsBatch, RecordEncoder};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

#[path = "../benches/support/records.rs"]
mod records;
use records::records;

/// Records per OTLP request (about 1 MiB of request, under collectors' default 4 MiB limit).
const BATCH: usize = 1000;

fn main() {
    let mut args = std::env::args().skip(1);
    let encoding = args.next().unwrap_or_else(|| "otlp-encoded".to_owned());
    let passes: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(10);
    let recs = records();
    let names = if encoding.ends_with("-flow") {
        AttributeNames::Flow
    } else {
        AttributeNames::NetworkFlow
    };
    let mut produced = 0usize;
    let mut encoder = RecordEncoder::new();
    let mut prost_batch =
        LogsBatch::new(Resource::default(), InstrumentationScope::default(), names);
    let mut encoded = EncodedLogsBatch::new(
        &Resource::default(),
        &InstrumentationScope::default(),
        names,
    );
    let mut bytes = Vec::new();
    let mut text = String::new();
    for _ in 0..passes {
        match encoding.trim_end_matches("-flow") {
            "otlp-prost" => {
                for chunk in recs.chunks(BATCH) {
                    for r in chunk {
                        prost_batch.push(r);
                    }
                    produced += prost_batch.take().encoded_len();
                }
            }
            "otlp-encoded" => {
                for chunk in recs.chunks(BATCH) {
                    for r in chunk {
                        encoded.push(r);
                    }
                    produced += encoded.take().len();
                }
            }
            "protobuf" => {
                bytes.clear();
                for r in &recs {
                    encoder.protobuf_delimited(r, &mut bytes);
                }
                produced += bytes.len();
            }
            "json" => {
                text.clear();
                for r in &recs {
                    encoder.json_line(r, &mut text);
                }
                produced += text.len();
            }
            other => {
                eprintln!("unknown encoding {other}");
                std::process::exit(2);
            }
        }
    }
    println!("{encoding}: {produced} bytes");
}
