//! The `flow-http` sink: batches of flow records POSTed as the goflow2-style JSON objects of
//! `flow-json`, in the body forms log stores accept:
//!
//! - `json-array`: `[{...},{...}]`, `Content-Type: application/json` (OpenObserve's
//!   `/api/{org}/{stream}/_json`, Loki-less log stores, any JSON array endpoint);
//! - `ndjson`: one object per line, `Content-Type: application/x-ndjson`;
//! - `es-bulk`: Elasticsearch / OpenSearch `_bulk` (an action line `{"create":{"_index":…}}`
//!   before each object, `create` so that data streams accept it), `application/x-ndjson`.
//!
//! One request per batch (the per-flow sinks' batching and queue, [`super::records`]), with the
//! configured headers (an `authorization` header for Basic, Bearer or ApiKey), gzip
//! (`Content-Encoding: gzip`), a timeout, and one kept-alive HTTP/1.1 connection (TLS for
//! `https://`, with the same rules as the OTLP endpoint: `ca_file` replaces the system roots,
//! client certificate and key together). 2xx is delivered; 408, 429, 5xx and connection
//! failures are retried; other answers drop the batch (`failed`), logged with the server's
//! reason. A `_bulk` answer with `"errors":true` is delivered but logged with the first item's
//! error, since the other documents were indexed.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flowtel_records::RecordEncoder;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use tracing::warn;

use super::Records;
use super::records::{Deliver, DeliverFuture, DeliveryError};
use crate::config::records::{FlowHttpConfig, HttpFormat};

/// Where requests go, parsed once.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    /// `Host` header value.
    authority: String,
    path_and_query: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl FlowHttpConfig {
    /// The URL and TLS material, checked (unreadable or inconsistent TLS files are errors).
    fn target(&self) -> anyhow::Result<Target> {
        let Some(url) = &self.url else {
            anyhow::bail!("flow_http.url (--flow-http-url) is required by the flow-http sink");
        };
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("flow_http.url {url:?}: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => anyhow::bail!("flow_http.url {url:?}: expected http:// or https://"),
        };
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("flow_http.url {url:?}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let read = |what: &str, p: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
            p.as_ref()
                .map(|p| {
                    std::fs::read(p).map_err(|e| {
                        anyhow::anyhow!("flow_http.{what}: cannot read {}: {e}", p.display())
                    })
                })
                .transpose()
        };
        let tls_material = flowtel_otlp::TlsConfig {
            ca_pem: read("ca_file", &self.ca_file)?,
            client_cert_pem: read("client_cert_file", &self.client_cert_file)?,
            client_key_pem: read("client_key_file", &self.client_key_file)?,
            domain_name: None,
        };
        let channel = flowtel_otlp::ChannelConfig {
            endpoint: url.clone(),
            tls: tls_material,
            ..flowtel_otlp::ChannelConfig::default()
        };
        channel
            .validate()
            .map_err(|e| anyhow::anyhow!("flow_http: {e}"))?;
        let tls = if tls {
            Some(
                flowtel_otlp::channel::rustls_client_config(&channel, &[b"http/1.1"])
                    .map_err(|e| anyhow::anyhow!("flow_http: {e}"))?,
            )
        } else {
            None
        };
        Ok(Target {
            authority: uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            host,
            port,
            tls,
        })
    }

    /// Check what the sink needs at start (`check-config` too).
    pub fn check(&self) -> anyhow::Result<()> {
        self.target().map(|_| ())
    }
}

/// Delivers batches as HTTP POSTs.
pub struct FlowHttp {
    config: FlowHttpConfig,
    target: Target,
    encoder: RecordEncoder,
    body: String,
    line: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for FlowHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowHttp")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl FlowHttp {
    pub fn open(config: &FlowHttpConfig) -> anyhow::Result<Self> {
        Ok(FlowHttp {
            target: config.target()?,
            config: config.clone(),
            encoder: RecordEncoder::new(),
            body: String::with_capacity(1 << 20),
            line: String::new(),
            sender: None,
        })
    }

    /// The body of one batch in the configured form.
    fn render(&mut self, batch: &[Records]) {
        self.body.clear();
        if self.config.format == HttpFormat::JsonArray {
            self.body.push('[');
        }
        let action = format!(
            "{{\"create\":{{\"_index\":{}}}}}\n",
            serde_json::Value::from(self.config.es_index.as_str())
        );
        let mut first = true;
        for records in batch {
            for r in records.iter() {
                self.line.clear();
                self.encoder.json_line(r, &mut self.line);
                match self.config.format {
                    HttpFormat::JsonArray => {
                        if !first {
                            self.body.push(',');
                        }
                        self.body.push_str(self.line.trim_end_matches('\n'));
                    }
                    HttpFormat::Ndjson => self.body.push_str(&self.line),
                    HttpFormat::EsBulk => {
                        self.body.push_str(&action);
                        self.body.push_str(&self.line);
                    }
                }
                first = false;
            }
        }
        if self.config.format == HttpFormat::JsonArray {
            self.body.push(']');
        }
    }

    /// A ready connection: the kept one, else a new one.
    async fn connection(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, DeliveryError> {
        let stale = match &mut self.sender {
            Some(s) => s.is_closed() || s.ready().await.is_err(),
            None => false,
        };
        if stale {
            self.sender = None;
        }
        if self.sender.is_none() {
            let t = &self.target;
            let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
                .await
                .map_err(|e| DeliveryError::retryable(format!("connection failed: {e}")))?;
            let sender = match &t.tls {
                Some(tls) => {
                    let name =
                        rustls::pki_types::ServerName::try_from(t.host.clone()).map_err(|e| {
                            DeliveryError::fatal(format!("TLS server name {:?}: {e}", t.host))
                        })?;
                    let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
                        .connect(name, tcp)
                        .await
                        .map_err(|e| {
                            DeliveryError::retryable(format!("TLS handshake failed: {e}"))
                        })?;
                    handshake(stream).await?
                }
                None => handshake(tcp).await?,
            };
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| DeliveryError::retryable("no connection"))
    }

    async fn post(&mut self) -> Result<(), DeliveryError> {
        let gzip = self.config.compression == crate::config::Compression::Gzip;
        let body: Bytes = if gzip {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(self.body.len() / 4),
                flate2::Compression::fast(),
            );
            enc.write_all(self.body.as_bytes())
                .and_then(|()| enc.finish())
                .map(Bytes::from)
                .map_err(|e| DeliveryError::fatal(format!("gzip: {e}")))?
        } else {
            Bytes::copy_from_slice(self.body.as_bytes())
        };
        let content_type = match self.config.format {
            HttpFormat::JsonArray => "application/json",
            HttpFormat::Ndjson | HttpFormat::EsBulk => "application/x-ndjson",
        };
        let mut request = hyper::Request::post(self.target.path_and_query.as_str())
            .header(hyper::header::HOST, self.target.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(
                hyper::header::USER_AGENT,
                concat!("flowtel/", env!("CARGO_PKG_VERSION")),
            );
        if gzip {
            request = request.header(hyper::header::CONTENT_ENCODING, "gzip");
        }
        for (k, v) in &self.config.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let request = request.body(Full::new(body)).map_err(|e| {
            DeliveryError::fatal(format!("invalid request (check flow_http.headers): {e}"))
        })?;
        let timeout = Duration::from_secs(self.config.timeout_secs.max(1));
        let sender = self.connection().await?;
        let response = match tokio::time::timeout(timeout, sender.send_request(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.sender = None;
                return Err(DeliveryError::retryable(format!("request failed: {e}")));
            }
            Err(_) => {
                self.sender = None;
                return Err(DeliveryError::retryable(format!(
                    "no answer within {timeout:?}"
                )));
            }
        };
        let status = response.status();
        let body = tokio::time::timeout(timeout, response.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(body.get(..body.len().min(512)).unwrap_or_default());
        if status.is_success() {
            if self.config.format == HttpFormat::EsBulk
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                && v["errors"] == true
            {
                let first = v["items"].as_array().and_then(|items| {
                    items
                        .iter()
                        .find_map(|i| i["create"]["error"].as_object().cloned())
                });
                warn!(sink = "flow-http", error = ?first, "some documents of a _bulk request were refused");
            }
            return Ok(());
        }
        let message = format!("HTTP {status}: {}", text.trim());
        match status.as_u16() {
            408 | 429 | 500..=599 => Err(DeliveryError::retryable(message)),
            _ => Err(DeliveryError::fatal(message)),
        }
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, DeliveryError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| DeliveryError::retryable(format!("HTTP handshake failed: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

impl Deliver for FlowHttp {
    fn deliver<'a>(&'a mut self, batch: &'a [Records]) -> DeliverFuture<'a> {
        Box::pin(async move {
            self.render(batch);
            self.post().await
        })
    }
}
