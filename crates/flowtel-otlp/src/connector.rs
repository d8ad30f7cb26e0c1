//! The channel's connector: TCP, then for `https://` the rustls handshake, done here rather than
//! by tonic so that its outcome is known before the connection is handed to HTTP/2.
//!
//! TLS 1.3 completes the client's side of the handshake before the server has judged the
//! client's certificate (RFC 8446 §4.4.2 and §2: the client's Certificate and Finished go out
//! together and the server answers after). A server that asked for a certificate and got none,
//! or one it does not accept, answers with an alert (`certificate_required`, `unknown_ca`, …,
//! §6.2) and closes. A client that has meanwhile written its HTTP/2 preface then often reads
//! only a reset, and the request fails as "connection closed", cause lost. So when the server
//! asked for a client certificate, the connector waits (at most [`VERDICT_WAIT`]) for the
//! server's first record: an alert fails the connection with the alert (classified as a
//! handshake failure), an early close fails it with [`RejectedAfterHandshake`], and application
//! data (the server's HTTP/2 SETTINGS, sent unprompted, RFC 9113 §3.4) is kept and replayed to
//! HTTP/2 first.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::codegen::http::Uri;

/// Longest wait for the server's verdict on our client certificate (only when it asked for one).
pub(crate) const VERDICT_WAIT: Duration = Duration::from_secs(1);

/// The server asked for a client certificate, then closed the connection without a word.
#[derive(Debug, thiserror::Error)]
#[error("the server closed the connection after asking for a client certificate ({0})")]
pub(crate) struct RejectedAfterHandshake(&'static str);

/// The server negotiated something else than HTTP/2 (ALPN `h2`, gRPC over HTTP/2 "Protocol").
#[derive(Debug, thiserror::Error)]
#[error("the server does not offer HTTP/2 (ALPN h2)")]
pub(crate) struct NoHttp2;

/// TLS settings ready to dial: a rustls configuration (roots, client identity, ALPN h2) and the
/// name to verify the server against when it is not the endpoint's host.
#[derive(Debug)]
pub(crate) struct TlsSetup {
    pub(crate) config: Arc<rustls::ClientConfig>,
    pub(crate) server_name: Option<ServerName<'static>>,
}

/// A tower `Service<Uri>` for tonic's `connect_with_connector_lazy`.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    pub(crate) tls: Option<Arc<TlsSetup>>,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TokioIo<Conn>>> + Send>>;

impl tonic::codegen::Service<Uri> for Connector {
    type Response = TokioIo<Conn>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(connect(uri, self.tls.clone()))
    }
}

async fn connect(uri: Uri, tls: Option<Arc<TlsSetup>>) -> io::Result<TokioIo<Conn>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    let host = uri
        .host()
        .ok_or_else(|| invalid("endpoint without a host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let Some(tls) = tls else {
        return Ok(TokioIo::new(Conn::new(Box::new(tcp), Vec::new())));
    };
    let name = match &tls.server_name {
        Some(name) => name.clone(),
        None => ServerName::try_from(host).map_err(|e| invalid(&e.to_string()))?,
    };
    // This connection's own configuration, to learn whether the server asks for a certificate.
    let asked = Arc::new(AtomicBool::new(false));
    let mut config = (*tls.config).clone();
    let has_identity = config.client_auth_cert_resolver.has_certs();
    config.client_auth_cert_resolver = Arc::new(Recorder {
        inner: Arc::clone(&config.client_auth_cert_resolver),
        asked: Arc::clone(&asked),
    });
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err(io::Error::other(NoHttp2));
    }
    let mut early = Vec::new();
    if asked.load(Ordering::SeqCst) {
        let mut buf = vec![0u8; 16 * 1024];
        match tokio::time::timeout(VERDICT_WAIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    RejectedAfterHandshake(if has_identity {
                        "it refused ours"
                    } else {
                        "none configured"
                    }),
                ));
            }
            Ok(Ok(n)) => {
                buf.truncate(n);
                early = buf;
            }
            // The alert, as rustls reports it.
            Ok(Err(e)) => return Err(e),
            // No verdict yet: let HTTP/2 find out.
            Err(_) => {}
        }
    }
    Ok(TokioIo::new(Conn::new(Box::new(stream), early)))
}

/// Passes the choice of a client certificate on, noting that the server asked for one.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn ResolvesClientCert>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for Recorder {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A plain or TLS connection, with the bytes read while waiting for the verdict replayed first.
pub(crate) struct Conn {
    inner: Box<dyn Stream>,
    early: Vec<u8>,
    /// Bytes of `early` already handed out.
    read: usize,
}

impl Conn {
    fn new(inner: Box<dyn Stream>, early: Vec<u8>) -> Self {
        Self {
            inner,
            early,
            read: 0,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.early.get(this.read..)
            && !rest.is_empty()
        {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.read += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
