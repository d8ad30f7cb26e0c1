//! An OTLP/gRPC receiver for load tests: accepts `MetricsService/Export` and
//! `LogsService/Export` (gzip or not) on the address given and prints one line per second with
//! what arrived so far:
//!
//! ```text
//! requests=12 log_records=120000 metric_points=3400
//! ```
//!
//! `examples/loadtest-records.sh` runs it as the destination of the `flow-logs` sink. Metrics
//! requests are decoded whole; logs requests are walked only as deep as their log records (each
//! record counted, its attributes not parsed), so that on a small machine the load test measures
//! the collector rather than this stand-in for Alloy's decoder.
//!
//!     cargo run --release -p flowtel --example otlp_receiver -- 127.0.0.1:4317

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flowtel_otlp::opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use flowtel_otlp::opentelemetry_proto::tonic::metrics::v1::metric;

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    log_records: AtomicU64,
    metric_points: AtomicU64,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Counts>);

/// `LogsService/Export` served by hand: the request stays bytes ([`CountCodec`]) and its log
/// records are counted by walking the protobuf (`ExportLogsServiceRequest.resource_logs` = 1 ->
/// `ResourceLogs.scope_logs` = 2 -> `ScopeLogs.log_records` = 2).
#[derive(Clone)]
struct Logs(Arc<Counts>);

impl tonic::server::NamedService for Logs {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

impl<B> tower_service::Service<http::Request<B>> for Logs
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let counts = self.0.clone();
        Box::pin(async move {
            let mut accept = tonic::codec::EnabledCompressionEncodings::default();
            accept.enable(tonic::codec::CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(CountCodec)
                .apply_compression_config(accept, Default::default());
            Ok(grpc.unary(Export(counts), req).await)
        })
    }
}

struct Export(Arc<Counts>);

impl tonic::server::UnaryService<u64> for Export {
    type Response = ExportLogsServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<u64>) -> Self::Future {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0
            .log_records
            .fetch_add(*request.get_ref(), Ordering::Relaxed);
        std::future::ready(Ok(tonic::Response::new(
            ExportLogsServiceResponse::default(),
        )))
    }
}

/// Decodes a logs request into its number of log records; encodes the (empty) response.
#[derive(Clone, Copy, Default)]
struct CountCodec;

impl tonic::codec::Codec for CountCodec {
    type Encode = ExportLogsServiceResponse;
    type Decode = u64;
    type Encoder = CountCodec;
    type Decoder = CountCodec;

    fn encoder(&mut self) -> CountCodec {
        CountCodec
    }

    fn decoder(&mut self) -> CountCodec {
        CountCodec
    }
}

impl tonic::codec::Encoder for CountCodec {
    type Item = ExportLogsServiceResponse;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: ExportLogsServiceResponse,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::Message::encode(&item, dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Decoder for CountCodec {
    type Item = u64;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<u64>, tonic::Status> {
        use bytes::Buf;
        let body = src.copy_to_bytes(src.remaining());
        let bad = || tonic::Status::invalid_argument("malformed ExportLogsServiceRequest");
        let mut records = 0;
        for resource in fields(&body, 1).ok_or_else(bad)? {
            for scope in fields(resource, 2).ok_or_else(bad)? {
                records += fields(scope, 2).ok_or_else(bad)?.len() as u64;
            }
        }
        Ok(Some(records))
    }
}

/// The length-delimited fields numbered `number` of the protobuf message `msg`; `None` when
/// it is malformed.
fn fields(msg: &[u8], number: u64) -> Option<Vec<&[u8]>> {
    fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*at)?;
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < msg.len() {
        let key = varint(msg, &mut at)?;
        let len = match key & 7 {
            0 => {
                varint(msg, &mut at)?;
                0
            }
            1 => 8,
            2 => usize::try_from(varint(msg, &mut at)?).ok()?,
            5 => 4,
            _ => return None,
        };
        let end = at.checked_add(len).filter(|e| *e <= msg.len())?;
        if key & 7 == 2 && key >> 3 == number {
            out.push(&msg[at..end]);
        }
        at = end;
    }
    Some(out)
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let n: usize = request
            .get_ref()
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(metric::Data::Sum(s)) => s.data_points.len(),
                Some(metric::Data::Gauge(g)) => g.data_points.len(),
                Some(metric::Data::Histogram(h)) => h.data_points.len(),
                _ => 0,
            })
            .sum();
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0.metric_points.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .ok_or("usage: otlp_receiver HOST:PORT")?
        .parse()?;
    let receiver = Receiver::default();
    let counts = receiver.0.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            println!(
                "requests={} log_records={} metric_points={}",
                counts.requests.load(Ordering::Relaxed),
                counts.log_records.load(Ordering::Relaxed),
                counts.metric_points.load(Ordering::Relaxed)
            );
        }
    });
    let gzip = tonic::codec::CompressionEncoding::Gzip;
    tonic::transport::Server::builder()
        .add_service(Logs(receiver.0.clone()))
        .add_service(MetricsServiceServer::new(receiver).accept_compressed(gzip))
        .serve(addr)
        .await?;
    Ok(())
}
