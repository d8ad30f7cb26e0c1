//! The `flow-logs` sink: every selected flow record as one OTLP `LogRecord`, with the
//! OpenTelemetry Collector netflowreceiver's attribute names ([`flowtel_records::otlp`]),
//! many per `LogsService/Export` request.
//!
//! The request is written straight to its protobuf bytes ([`EncodedLogsBatch`], no message
//! objects per record) and sent through the same OTLP client as the metrics
//! ([`flowtel_otlp::OtlpClient`]: one channel builder and its TLS rules, headers, gzip, the
//! per-attempt timeout, partial successes counted). Batching, the bounded queue, retries with
//! backoff and the drop counters are the per-flow sinks' ([`super::records`]); each attempt is
//! one Export call.
//!
//! Where the logs go: `flow_logs.endpoint` (`--flow-logs-endpoint`) when set, else the OTLP
//! endpoint; the `OTEL_EXPORTER_OTLP_LOGS_*` variables win over the generic ones for the logs,
//! as the OpenTelemetry specification says (see [`crate::config`]).

use std::sync::Arc;

use flowtel_otlp::opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value,
};
use flowtel_otlp::opentelemetry_proto::tonic::resource::v1::Resource;
use flowtel_otlp::{EncodedLogs, EncodedLogsRequest, ExportStats, OtlpClient};
use flowtel_records::EncodedLogsBatch;

use super::Records;
use super::records::{Deliver, DeliverFuture, DeliveryError};

/// Delivers batches as OTLP log export requests.
pub struct FlowLogs {
    client: OtlpClient<EncodedLogs>,
    batch: EncodedLogsBatch,
    stats: Arc<ExportStats>,
}

impl std::fmt::Debug for FlowLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowLogs").finish_non_exhaustive()
    }
}

/// The OTLP resource of the logs: the same attributes as the metrics'.
fn resource(r: &flowtel_otlp::ResourceConfig) -> Resource {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_owned())),
        }),
        ..KeyValue::default()
    };
    let mut attributes = vec![kv("service.name", &r.service_name)];
    for (k, v) in [
        ("service.version", &r.service_version),
        ("service.instance.id", &r.service_instance_id),
        ("host.name", &r.host_name),
    ] {
        if let Some(v) = v {
            attributes.push(kv(k, v));
        }
    }
    attributes.extend(r.extra.iter().map(|(k, v)| kv(k, v)));
    Resource {
        attributes,
        ..Resource::default()
    }
}

impl FlowLogs {
    /// The client (connected on first use) and the encoder.
    pub fn start(
        config: &crate::config::Config,
        resource_config: &flowtel_otlp::ResourceConfig,
    ) -> anyhow::Result<Self> {
        let otlp = config.flow_logs.otlp.as_ref().unwrap_or(&config.otlp);
        let stats = Arc::new(ExportStats::default());
        let client = OtlpClient::new(&otlp.client_config("flow-logs")?, Arc::clone(&stats))?;
        let scope = InstrumentationScope {
            name: "flowtel".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..InstrumentationScope::default()
        };
        Ok(FlowLogs {
            client,
            batch: EncodedLogsBatch::new(
                &resource(resource_config),
                &scope,
                config.flow_logs.names()?,
            ),
            stats,
        })
    }

    /// The client's counters (requests, failures by reason, rejected records).
    pub fn stats(&self) -> &Arc<ExportStats> {
        &self.stats
    }
}

impl Deliver for FlowLogs {
    fn deliver<'a>(&'a mut self, batch: &'a [Records]) -> DeliverFuture<'a> {
        Box::pin(async move {
            for records in batch {
                for r in records.iter() {
                    self.batch.push(r);
                }
            }
            let records = self.batch.len() as u64;
            let request = EncodedLogsRequest {
                bytes: self.batch.take().into(),
                records,
            };
            match self.client.export_once(request).await {
                Ok(_) => Ok(()),
                Err(e) if e.retryable => Err(DeliveryError::retryable(e.message)),
                Err(e) => Err(DeliveryError::fatal(e.message)),
            }
        })
    }
}
