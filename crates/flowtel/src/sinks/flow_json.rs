//! The `flow-json` sink: every selected flow record as one goflow2-style JSON line
//! ([`flowtel_records::json`]), on standard output or in a file rotated by size
//! (`flow_json.file`, `flow_json.max_file_bytes`, `flow_json.keep_files`).
//!
//! goflow2 pipelines (Logstash's `json` filter, Vector, Fluent Bit, `jq`) read the lines
//! unchanged; flowtel's enrichment follows goflow2's keys. A batch is written with one system
//! call; the file rotates between batches, so a line is never split across files.

use std::io::Write as _;

use flowtel_records::RecordEncoder;

use super::Records;
use super::records::{Deliver, DeliverFuture, DeliveryError};
use super::rotate::RotatingFile;
use crate::config::records::FlowJsonConfig;

enum Output {
    Stdout,
    File(RotatingFile),
}

/// Delivers batches as JSON lines.
pub struct FlowJson {
    out: Output,
    encoder: RecordEncoder,
    text: String,
}

impl std::fmt::Debug for FlowJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowJson").finish_non_exhaustive()
    }
}

impl FlowJson {
    pub fn open(config: &FlowJsonConfig) -> anyhow::Result<Self> {
        let out = match &config.file {
            Some(path) => Output::File(
                RotatingFile::open(path, config.max_file_bytes, config.keep_files).map_err(
                    |e| anyhow::anyhow!("flow_json.file: cannot open {}: {e}", path.display()),
                )?,
            ),
            None => Output::Stdout,
        };
        Ok(FlowJson {
            out,
            encoder: RecordEncoder::new(),
            text: String::with_capacity(256 * 1024),
        })
    }
}

impl Deliver for FlowJson {
    fn deliver<'a>(&'a mut self, batch: &'a [Records]) -> DeliverFuture<'a> {
        Box::pin(async move {
            self.text.clear();
            for records in batch {
                for r in records.iter() {
                    self.encoder.json_line(r, &mut self.text);
                }
            }
            let bytes = self.text.as_bytes();
            // File and pipe writes block: tell the runtime so its other tasks move on.
            tokio::task::block_in_place(|| match &mut self.out {
                Output::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(bytes)
                        .and_then(|()| out.flush())
                        .map_err(|e| {
                            if e.kind() == std::io::ErrorKind::BrokenPipe {
                                DeliveryError::fatal(format!("stdout is closed: {e}"))
                            } else {
                                DeliveryError::retryable(format!("cannot write to stdout: {e}"))
                            }
                        })
                }
                Output::File(f) => f
                    .write_chunk(bytes)
                    .map_err(|e| DeliveryError::retryable(format!("cannot write the file: {e}"))),
            })
        })
    }

    fn finish(&mut self) -> DeliverFuture<'_> {
        Box::pin(async move {
            match &mut self.out {
                Output::File(f) => f.flush().map_err(|e| DeliveryError::fatal(e.to_string())),
                Output::Stdout => Ok(()),
            }
        })
    }
}
