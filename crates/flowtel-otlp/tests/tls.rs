//! The channel rules with real TLS: rcgen certificates, a tonic server with rustls, both
//! signals. Handshake failures are classified, said in words and retried.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flowtel_otlp::{
    ChannelConfig, ClientConfig, ConvertConfig, Converter, ExportStats, Exporter, FailureReason,
    LogsClient, MetricsClient, QueueConfig, ResourceConfig, RetryConfig, TlsConfig, logs_request,
};
use support::*;

fn tls_client(port: u16, tls: TlsConfig, attempts: u32) -> ClientConfig {
    ClientConfig {
        channel: ChannelConfig {
            endpoint: format!("https://localhost:{port}"),
            tls,
            ..Default::default()
        },
        retry: RetryConfig {
            max_attempts: Some(attempts),
            ..fast_retry()
        },
        ..Default::default()
    }
}

fn trusting(pki: &Pki) -> TlsConfig {
    TlsConfig {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        ..Default::default()
    }
}

fn with_identity(pki: &Pki) -> TlsConfig {
    TlsConfig {
        client_cert_pem: Some(pki.client_cert_pem.clone().into_bytes()),
        client_key_pem: Some(pki.client_key_pem.clone().into_bytes()),
        ..trusting(pki)
    }
}

fn metrics_request()
-> flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
    Converter::new(ConvertConfig::default())
        .convert(&window(0, 2))
        .pop()
        .unwrap()
}

async fn export_metrics(
    config: &ClientConfig,
) -> (
    Result<flowtel_otlp::ExportSuccess, flowtel_otlp::ExportError>,
    Arc<ExportStats>,
) {
    let stats = Arc::new(ExportStats::default());
    let client = MetricsClient::new(config, stats.clone()).unwrap();
    (client.export(metrics_request()).await, stats)
}

#[tokio::test]
async fn a_custom_ca_is_trusted_for_both_signals() {
    let pki = pki("flowtel test CA");
    let receiver = Receiver::default();
    let server = serve_tls(receiver.clone(), &pki, false).await;
    let config = tls_client(server.addr.port(), trusting(&pki), 1);
    let (result, _) = export_metrics(&config).await;
    result.unwrap();
    let logs = LogsClient::new(&config, Arc::default()).unwrap();
    logs.export(logs_request(&ResourceConfig::default(), records(0, 2)))
        .await
        .unwrap();
    assert_eq!(values(&receiver.metrics()), expected_values([0], 2));
    assert_eq!(bodies(&receiver.logs()), expected_bodies([0], 2));
    server.stop().await;
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_fails_the_handshake_and_is_retried() {
    let pki = pki("flowtel test CA");
    let other = support::pki("another CA");
    let receiver = Receiver::default();
    let server = serve_tls(receiver.clone(), &pki, false).await;
    let (result, stats) =
        export_metrics(&tls_client(server.addr.port(), trusting(&other), 3)).await;
    let err = result.unwrap_err();
    assert_eq!(
        (err.reason, err.retryable, err.attempts),
        (FailureReason::TlsHandshake, true, 3)
    );
    assert_eq!(
        err.message,
        "handshake failed: server certificate not trusted (unknown issuer)"
    );
    assert_eq!(snap(&stats).failed(FailureReason::TlsHandshake), 3);
    assert_eq!(receiver.calls(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_server_certificate_for_another_name_fails_the_handshake() {
    let pki = pki("flowtel test CA");
    let server = serve_tls(Receiver::default(), &pki, false).await;
    let mut config = tls_client(server.addr.port(), trusting(&pki), 1);
    config.channel.endpoint = format!("https://127.0.0.1:{}", server.addr.port());
    let (result, _) = export_metrics(&config).await;
    let err = result.unwrap_err();
    assert_eq!(err.reason, FailureReason::TlsHandshake);
    assert!(
        err.message
            .starts_with("handshake failed: server certificate rejected: certificate not valid for name \"127.0.0.1\""),
        "{}",
        err.message
    );
    // The server name can be set apart from the address dialled.
    config.channel.tls.domain_name = Some("localhost".into());
    export_metrics(&config).await.0.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_required_client_certificate_is_said_classified_and_retried() {
    let pki = pki("flowtel test CA");
    let receiver = Receiver::default();
    let server = serve_tls(receiver.clone(), &pki, true).await;

    let (result, stats) = export_metrics(&tls_client(server.addr.port(), trusting(&pki), 3)).await;
    let err = result.unwrap_err();
    assert_eq!(
        (err.reason, err.retryable, err.attempts),
        (FailureReason::TlsHandshake, true, 3)
    );
    assert_eq!(err.message, "handshake failed: client certificate required");
    assert_eq!(snap(&stats).failed(FailureReason::TlsHandshake), 3);
    assert_eq!(
        receiver.calls(),
        0,
        "no request passes without a client certificate"
    );

    // A client certificate from a CA the server does not trust is refused, said as such.
    let stranger = support::pki("stranger CA");
    let foreign = TlsConfig {
        client_cert_pem: Some(stranger.client_cert_pem.clone().into_bytes()),
        client_key_pem: Some(stranger.client_key_pem.clone().into_bytes()),
        ..trusting(&pki)
    };
    let (result, _) = export_metrics(&tls_client(server.addr.port(), foreign, 1)).await;
    let err = result.unwrap_err();
    assert_eq!(err.reason, FailureReason::TlsHandshake);
    assert!(
        err.message
            .starts_with("handshake failed: the server refused the client certificate"),
        "{}",
        err.message
    );

    let (result, _) = export_metrics(&tls_client(server.addr.port(), with_identity(&pki), 1)).await;
    result.unwrap();
    assert_eq!(values(&receiver.metrics()), expected_values([0], 2));
    server.stop().await;
}

#[tokio::test]
async fn the_queue_keeps_retrying_a_handshake_until_the_server_accepts() {
    let pki = pki("flowtel test CA");
    let port = reserve();
    let addr = port.addr;
    let next = port.another();
    // First a server that demands a client certificate the exporter does not have.
    let strict = serve_on(
        port.listen(),
        Receiver::default(),
        Some(server_tls(&pki, true)),
    )
    .await;
    let stats = Arc::new(ExportStats::default());
    let mut config = tls_client(addr.port(), trusting(&pki), 1);
    config.retry.max_attempts = None;
    let client = MetricsClient::new(&config, stats.clone()).unwrap();
    let exporter = Exporter::spawn(
        client,
        Converter::new(ConvertConfig::default()),
        &QueueConfig::default(),
    );
    exporter.queue().try_push(window(0, 2));
    wait_for("handshake failures retried", || {
        snap(&stats).failed(FailureReason::TlsHandshake) >= 3
    })
    .await;
    assert!(stats.failing());
    // Then the server is reconfigured not to require one: the same window gets through.
    let receiver = Receiver::default();
    let relaxed = serve_on(
        next.listen(),
        receiver.clone(),
        Some(server_tls(&pki, false)),
    )
    .await;
    strict.stop().await;
    wait_for("the window delivered", || snap(&stats).items_sent == 2).await;
    assert_eq!(values(&receiver.metrics()), expected_values([0], 2));
    assert!(!stats.failing());
    assert!(exporter.shutdown(BOUND).await.flushed);
    relaxed.stop().await;
}

#[tokio::test]
async fn https_to_a_plain_text_server_and_http_to_a_tls_server_are_told_apart() {
    let pki = pki("flowtel test CA");
    let plain = serve(Receiver::default()).await;
    let (result, _) = export_metrics(&tls_client(plain.addr.port(), trusting(&pki), 1)).await;
    let err = result.unwrap_err();
    assert_eq!(err.reason, FailureReason::TlsHandshake);
    assert_eq!(
        err.message,
        "handshake failed: the server did not answer in TLS (a plain-text endpoint? use http://)"
    );
    plain.stop().await;

    let tls = serve_tls(Receiver::default(), &pki, false).await;
    let mut config = config(tls.addr);
    config.retry.max_attempts = Some(1);
    let (result, _) = export_metrics(&config).await;
    let err = result.unwrap_err();
    assert_eq!(err.reason, FailureReason::Transport, "{}", err.message);
    tls.stop().await;
}

#[tokio::test]
async fn tls_settings_are_checked_before_anything_is_dialled() {
    let pki = pki("flowtel test CA");
    let build = |endpoint: &str, tls: TlsConfig| {
        MetricsClient::new(
            &ClientConfig {
                channel: ChannelConfig {
                    endpoint: endpoint.into(),
                    tls,
                    connect_timeout: Duration::from_secs(1),
                },
                ..Default::default()
            },
            Arc::default(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert_eq!(
        build("http://localhost:4317", trusting(&pki)).unwrap_err(),
        "the CA certificate given for the plain-text endpoint \"http://localhost:4317\": use https:// or remove it"
    );
    assert_eq!(
        build(
            "https://localhost:4317",
            TlsConfig {
                client_key_pem: Some(pki.client_key_pem.clone().into_bytes()),
                ..Default::default()
            }
        )
        .unwrap_err(),
        "the client key given without the client certificate: mutual TLS needs both"
    );
    assert_eq!(
        build(
            "https://localhost:4317",
            TlsConfig {
                ca_pem: Some(b"not a certificate".to_vec()),
                ..Default::default()
            }
        )
        .unwrap_err(),
        "the CA certificate: no PEM CERTIFICATE block in it (a DER file? convert it with `openssl x509 -inform der`)"
    );
    let mismatched = TlsConfig {
        client_key_pem: Some(support::pki("other").client_key_pem.into_bytes()),
        ..with_identity(&pki)
    };
    assert_eq!(
        build("https://localhost:4317", mismatched).unwrap_err(),
        "the client certificate and the client key do not match"
    );
    assert!(build("https://localhost:4317", with_identity(&pki)).is_ok());
}

#[tokio::test]
async fn optional_client_authentication_accepts_us_with_or_without_a_certificate() {
    // The server asks for a certificate but takes none: the connector, waiting for its verdict,
    // reads the server's first HTTP/2 bytes and must hand them on intact.
    let pki = pki("flowtel test CA");
    let receiver = Receiver::default();
    let server = serve_on(
        reserve().listen(),
        receiver.clone(),
        Some(server_tls(&pki, true).client_auth_optional(true)),
    )
    .await;
    for tls in [trusting(&pki), with_identity(&pki)] {
        let (result, _) = export_metrics(&tls_client(server.addr.port(), tls, 1)).await;
        result.unwrap();
    }
    assert_eq!(values(&receiver.metrics()), expected_values([0, 0], 2));
    server.stop().await;
}

#[tokio::test]
async fn a_server_that_asks_for_a_certificate_then_hangs_up_is_a_handshake_failure() {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pki = pki("flowtel test CA");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .allow_unauthenticated()
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_client_cert_verifier(verifier)
    .with_single_cert(
        vec![CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = reserve().listen();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((sock, _)) = listener.accept().await {
            // Completes the handshake, then says goodbye without a word.
            if let Ok(mut tls) = acceptor.accept(sock).await {
                let _ = tls.shutdown().await;
            }
        }
    });
    let (result, stats) = export_metrics(&tls_client(port, trusting(&pki), 2)).await;
    let err = result.unwrap_err();
    assert_eq!(
        (err.reason, err.retryable, err.attempts),
        (FailureReason::TlsHandshake, true, 2)
    );
    assert_eq!(
        err.message,
        "handshake failed: the server closed the connection after asking for a client certificate (none configured)"
    );
    assert_eq!(snap(&stats).failed(FailureReason::TlsHandshake), 2);
    task.abort();
}
