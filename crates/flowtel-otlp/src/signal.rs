//! The OTLP signals the client sends: what differs between `MetricsService/Export` and
//! `LogsService/Export`, and nothing else. Everything around the call (channel, gzip, headers,
//! timeout, retries, partial success, counters) is written once in [`crate::client`] for any
//! [`Signal`].

use std::future::Future;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

/// One OTLP export service.
pub trait Signal: Send + Sync + 'static {
    type Request: Clone + Send + Sync + 'static;
    type Response: Send + 'static;
    /// The generated gRPC client.
    type Client: Clone + Send + Sync + 'static;
    /// `metrics` or `logs`, for log lines.
    const NAME: &'static str;

    /// The client over `channel`, sending (and accepting) gzip when `gzip`.
    fn client(channel: Channel, gzip: bool) -> Self::Client;

    /// One `Export` call.
    fn export(
        client: Self::Client,
        request: tonic::Request<Self::Request>,
    ) -> impl Future<Output = Result<tonic::Response<Self::Response>, tonic::Status>> + Send;

    /// Items in a request: data points, log records.
    fn items(request: &Self::Request) -> u64;

    /// The partial success of an OK response (OTLP specification, "Partial Success"): items
    /// rejected and the server's message.
    fn rejected(response: &Self::Response) -> (u64, String);
}

/// `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics;

/// `opentelemetry.proto.collector.logs.v1.LogsService/Export`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logs;

/// `client` sending (and accepting) gzip when `gzip`: the generated clients and the generic
/// `Grpc` client have the same two methods but no common trait.
macro_rules! with_gzip {
    ($client:expr, $gzip:expr) => {{
        let client = $client;
        if $gzip {
            client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip)
        } else {
            client
        }
    }};
}

/// Both impls differ only in their generated types, item count and partial-success field.
macro_rules! signal {
    ($signal:ident, $name:literal, $client:ident, $request:ty, $response:ty, $items:path, $rejected:ident) => {
        impl Signal for $signal {
            type Request = $request;
            type Response = $response;
            type Client = $client<Channel>;
            const NAME: &'static str = $name;

            fn client(channel: Channel, gzip: bool) -> Self::Client {
                with_gzip!($client::new(channel), gzip)
            }

            async fn export(
                mut client: Self::Client,
                request: tonic::Request<Self::Request>,
            ) -> Result<tonic::Response<Self::Response>, tonic::Status> {
                client.export(request).await
            }

            fn items(request: &Self::Request) -> u64 {
                $items(request)
            }

            fn rejected(response: &Self::Response) -> (u64, String) {
                response
                    .partial_success
                    .as_ref()
                    .map_or((0, String::new()), |p| {
                        (
                            u64::try_from(p.$rejected).unwrap_or(0),
                            p.error_message.clone(),
                        )
                    })
            }
        }
    };
}

signal!(
    Metrics,
    "metrics",
    MetricsServiceClient,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    crate::convert::point_count,
    rejected_data_points
);

signal!(
    Logs,
    "logs",
    LogsServiceClient,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    crate::logs::record_count,
    rejected_log_records
);

/// `LogsService/Export` with a request already encoded to its protobuf bytes (e.g. by a writer
/// that builds the bytes straight from its records, with no intermediate message objects): the
/// bytes go on the wire as they are, and the response is decoded as usual.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodedLogs;

/// An encoded `ExportLogsServiceRequest` and the number of log records in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedLogsRequest {
    pub bytes: bytes::Bytes,
    pub records: u64,
}

/// Sends [`EncodedLogsRequest`] bytes unchanged, decodes an `ExportLogsServiceResponse`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// [`RawCodec`]'s encoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// [`RawCodec`]'s decoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseDecoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = ExportLogsServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<ExportLogsServiceResponse>, tonic::Status> {
        use prost::Message;
        ExportLogsServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable Export response: {e}")))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Signal for EncodedLogs {
    type Request = EncodedLogsRequest;
    type Response = ExportLogsServiceResponse;
    type Client = tonic::client::Grpc<Channel>;
    const NAME: &'static str = "logs";

    fn client(channel: Channel, gzip: bool) -> Self::Client {
        with_gzip!(tonic::client::Grpc::new(channel), gzip)
    }

    async fn export(
        mut client: Self::Client,
        request: tonic::Request<Self::Request>,
    ) -> Result<tonic::Response<Self::Response>, tonic::Status> {
        client
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("service was not ready: {e}")))?;
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        );
        client.unary(request.map(|r| r.bytes), path, RawCodec).await
    }

    fn items(request: &Self::Request) -> u64 {
        request.records
    }

    fn rejected(response: &Self::Response) -> (u64, String) {
        Logs::rejected(response)
    }
}
