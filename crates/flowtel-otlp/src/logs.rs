//! OTLP log requests: what a logs queue carries.
//!
//! The producer (a per-flow sink, the self-telemetry bridge) builds its `LogRecord`s and wraps
//! a batch of them with [`logs_request`]; the queue and the sender send the request as built
//! ([`Prebuilt`](crate::queue::Prebuilt)). This crate never sees what the records describe.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

use crate::convert::ResourceConfig;

/// Log records in a request.
pub fn record_count(request: &ExportLogsServiceRequest) -> u64 {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len() as u64)
        .sum()
}

/// One request carrying `records` under `resource` and the `flowtel` scope (this crate's
/// version), the same resource and scope as the metrics requests.
pub fn logs_request(
    resource: &ResourceConfig,
    records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource.to_proto()),
            scope_logs: vec![ScopeLogs {
                scope: Some(crate::convert::scope()),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}
