//! The one gRPC channel builder of every OTLP exporter (flow metrics, flow logs, self-telemetry).
//!
//! # Rules
//!
//! [`check_rules`] decides from which settings are present, [`ChannelConfig::validate`] also
//! from the PEM contents; [`connect_lazy`] applies both before it builds anything, so no
//! exporter can be built past a rule.
//!
//! 1. The endpoint is `http://HOST:PORT` (plain text) or `https://HOST:PORT` (TLS); a path is
//!    ignored (gRPC sends its own). Credentials (`user:password@`) and a query string are
//!    refused: gRPC sends neither, so they could only mislead (and leak into logs).
//! 2. TLS settings (CA, client certificate, client key, server name) need an `https://`
//!    endpoint. With `http://` they are an error, not silently ignored.
//! 3. A CA replaces the system roots: only a server whose chain ends at a certificate of that
//!    PEM is trusted. This is what the OTel SDKs do with `OTEL_EXPORTER_OTLP_CERTIFICATE` (Go's
//!    `otlpmetricgrpc` reads it into a fresh `x509.NewCertPool()`, Java's
//!    `setTrustedCertificates` builds a trust manager from those certificates alone, and the
//!    Collector's `configtls` `ca_file` does the same). A private CA means "my collector's
//!    PKI": adding it to the public roots would also accept any publicly issued certificate for
//!    that name, and the same variable would mean something else here than in every other SDK
//!    the operator runs. Without a CA, the system roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` are
//!    honoured).
//! 4. A client certificate and a client key come together (mutual TLS), and the key must be
//!    the certificate's.
//! 5. PEM contents are checked before use: a CA or client certificate with no PEM
//!    `CERTIFICATE` block (a DER file, a key, garbage) or one that does not parse, a key file
//!    with no unencrypted PKCS#8 / PKCS#1 / SEC1 key, are errors at build time, never a
//!    handshake failure later.

use std::fmt;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::transport::{Channel, Endpoint};

use crate::connector::{Connector, TlsSetup};

/// Default TCP + TLS connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// `http://host:port` or `https://host:port`.
    pub endpoint: String,
    /// TCP + TLS connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Used with an `https://` endpoint only (rule 2).
    pub tls: TlsConfig,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            endpoint: crate::DEFAULT_ENDPOINT.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: TlsConfig::default(),
        }
    }
}

/// TLS settings (PEM contents, not paths: reading files is the caller's business).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// CA certificate(s) to trust instead of the system roots (rule 3).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain for mTLS; needs `client_key_pem` too.
    pub client_cert_pem: Option<Vec<u8>>,
    /// Client private key for mTLS; needs `client_cert_pem` too.
    pub client_key_pem: Option<Vec<u8>>,
    /// Name to verify the server certificate against, when it differs from the endpoint host.
    pub domain_name: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        let pem = |v: &Option<Vec<u8>>| v.as_ref().map(|_| "<pem>");
        f.debug_struct("TlsConfig")
            .field("ca_pem", &pem(&self.ca_pem))
            .field("client_cert_pem", &pem(&self.client_cert_pem))
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("domain_name", &self.domain_name)
            .finish()
    }
}

impl TlsConfig {
    /// The settings given, in [`TlsSetting::ALL`] order.
    pub fn present(&self) -> Vec<TlsSetting> {
        TlsSetting::ALL
            .into_iter()
            .filter(|s| match s {
                TlsSetting::Ca => self.ca_pem.is_some(),
                TlsSetting::ClientCert => self.client_cert_pem.is_some(),
                TlsSetting::ClientKey => self.client_key_pem.is_some(),
                TlsSetting::DomainName => self.domain_name.is_some(),
            })
            .collect()
    }
}

/// One TLS setting, so a caller can name it in its own terms (a config key, a flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsSetting {
    Ca,
    ClientCert,
    ClientKey,
    DomainName,
}

impl TlsSetting {
    pub const ALL: [TlsSetting; 4] = [
        Self::Ca,
        Self::ClientCert,
        Self::ClientKey,
        Self::DomainName,
    ];

    /// What the setting is, in words.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Ca => "the CA certificate",
            Self::ClientCert => "the client certificate",
            Self::ClientKey => "the client key",
            Self::DomainName => "the TLS server name",
        }
    }
}

/// Plain text or TLS, from the endpoint's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plaintext,
    Tls,
}

/// What is wrong with a PEM input (rule 5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemProblem {
    #[error(
        "no PEM CERTIFICATE block in it (a DER file? convert it with `openssl x509 -inform der`)"
    )]
    NoCertificate,
    #[error("no unencrypted PKCS#8, PKCS#1 or SEC1 PEM private key in it")]
    NoPrivateKey,
    #[error("not valid PEM: {0}")]
    Malformed(String),
    #[error("certificate {index} does not parse: {error}")]
    BadCertificate { index: usize, error: String },
    #[error("cannot be used with the client certificate: {0}")]
    Unusable(String),
}

/// Why a channel cannot be built. Endpoints are shown with [`redact_endpoint`].
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("OTLP endpoint {endpoint:?} must start with http:// or https://")]
    UnsupportedScheme { endpoint: String },
    #[error(
        "OTLP endpoint {endpoint:?} carries credentials, which gRPC never sends: put them in a header (authorization: Basic …)"
    )]
    CredentialsInEndpoint { endpoint: String },
    #[error("OTLP endpoint {endpoint:?} has a query string, which gRPC never sends")]
    QueryInEndpoint { endpoint: String },
    #[error("invalid OTLP endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{} given for the plain-text endpoint {endpoint:?}: use https:// or remove {}", list(settings), if settings.len() == 1 { "it" } else { "them" })]
    TlsWithoutHttps {
        endpoint: String,
        settings: Vec<TlsSetting>,
    },
    #[error("{} given without {}: mutual TLS needs both", .given.describe(), .missing.describe())]
    IncompleteIdentity {
        given: TlsSetting,
        missing: TlsSetting,
    },
    #[error("{}: {problem}", .setting.describe())]
    Pem {
        setting: TlsSetting,
        problem: PemProblem,
    },
    #[error("the client certificate and the client key do not match")]
    KeyMismatch,
    #[error(
        "no system root certificate found to verify the server: give a CA (or set SSL_CERT_FILE)"
    )]
    NoSystemRoots,
    #[error("invalid TLS settings: {0}")]
    Tls(String),
}

fn list(settings: &[TlsSetting]) -> String {
    let words: Vec<&str> = settings.iter().map(|s| s.describe()).collect();
    words.join(", ")
}

/// Rules 1, 2 and 4, from the endpoint and which TLS settings are given (no contents needed:
/// a configuration checker can call it without reading any file).
pub fn check_rules(endpoint: &str, tls: &[TlsSetting]) -> Result<Transport, ChannelError> {
    let endpoint = endpoint.trim();
    let shown = || redact_endpoint(endpoint);
    let transport = if endpoint.starts_with("https://") {
        Transport::Tls
    } else if endpoint.starts_with("http://") {
        Transport::Plaintext
    } else {
        return Err(ChannelError::UnsupportedScheme { endpoint: shown() });
    };
    let parts = split_endpoint(endpoint);
    if parts.userinfo.is_some() {
        return Err(ChannelError::CredentialsInEndpoint { endpoint: shown() });
    }
    if parts.query.is_some() {
        return Err(ChannelError::QueryInEndpoint { endpoint: shown() });
    }
    if transport == Transport::Plaintext && !tls.is_empty() {
        return Err(ChannelError::TlsWithoutHttps {
            endpoint: shown(),
            settings: tls.to_vec(),
        });
    }
    let has = |s| tls.contains(&s);
    match (has(TlsSetting::ClientCert), has(TlsSetting::ClientKey)) {
        (true, false) => Err(ChannelError::IncompleteIdentity {
            given: TlsSetting::ClientCert,
            missing: TlsSetting::ClientKey,
        }),
        (false, true) => Err(ChannelError::IncompleteIdentity {
            given: TlsSetting::ClientKey,
            missing: TlsSetting::ClientCert,
        }),
        _ => Ok(transport),
    }
}

/// The PEM inputs, parsed and checked.
struct Parsed {
    transport: Transport,
    ca: Option<Vec<CertificateDer<'static>>>,
    identity: Option<Identity>,
}

impl ChannelConfig {
    /// Every rule (1 to 5), without connecting.
    pub fn validate(&self) -> Result<Transport, ChannelError> {
        self.parse().map(|p| p.transport)
    }

    fn parse(&self) -> Result<Parsed, ChannelError> {
        let transport = check_rules(&self.endpoint, &self.tls.present())?;
        let (ca, identity) = parse_tls(&self.tls)?;
        Ok(Parsed {
            transport,
            ca,
            identity,
        })
    }

    /// The endpoint for logs and errors, credentials and query hidden.
    pub fn redacted_endpoint(&self) -> String {
        redact_endpoint(&self.endpoint)
    }
}

/// A client identity: the certificate chain and its key.
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Rules 4 and 5 on the PEM contents: the CA's certificates, and the client identity.
fn parse_tls(
    tls: &TlsConfig,
) -> Result<(Option<Vec<CertificateDer<'static>>>, Option<Identity>), ChannelError> {
    let pem = |setting, problem| ChannelError::Pem { setting, problem };
    let ca = match &tls.ca_pem {
        Some(ca) => {
            let certs = certificates(ca).map_err(|p| pem(TlsSetting::Ca, p))?;
            let mut roots = rustls::RootCertStore::empty();
            for (index, cert) in certs.iter().enumerate() {
                roots.add(cert.clone()).map_err(|e| {
                    pem(
                        TlsSetting::Ca,
                        PemProblem::BadCertificate {
                            index: index + 1,
                            error: e.to_string(),
                        },
                    )
                })?;
            }
            Some(certs)
        }
        None => None,
    };
    let chain = match &tls.client_cert_pem {
        Some(cert) => Some(certificates(cert).map_err(|p| pem(TlsSetting::ClientCert, p))?),
        None => None,
    };
    let key = match &tls.client_key_pem {
        Some(key) => Some(PrivateKeyDer::from_pem_slice(key).map_err(|e| {
            pem(
                TlsSetting::ClientKey,
                match e {
                    rustls::pki_types::pem::Error::NoItemsFound => PemProblem::NoPrivateKey,
                    other => PemProblem::Malformed(other.to_string()),
                },
            )
        })?),
        None => None,
    };
    let identity = match (chain, key) {
        (Some(chain), Some(key)) => {
            check_identity(chain.clone(), key.clone_key())?;
            Some((chain, key))
        }
        (Some(_), None) => {
            return Err(ChannelError::IncompleteIdentity {
                given: TlsSetting::ClientCert,
                missing: TlsSetting::ClientKey,
            });
        }
        (None, Some(_)) => {
            return Err(ChannelError::IncompleteIdentity {
                given: TlsSetting::ClientKey,
                missing: TlsSetting::ClientCert,
            });
        }
        (None, None) => None,
    };
    Ok((ca, identity))
}

/// A rustls client configuration under rules 3 to 5, for a TLS client that is not a gRPC
/// channel (the Kafka sink): the CA replaces the system roots (else the system roots, at least
/// one), the client certificate and key come together and match, every PEM is checked. No
/// ALPN is set; [`TlsConfig::domain_name`] is not used (the caller names the server when it
/// connects).
pub fn tls_client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, ChannelError> {
    let (ca, identity) = parse_tls(tls)?;
    client_config(ca, identity)
}

/// Rule 3 (the CA replaces the system roots) and the client identity.
fn client_config(
    ca: Option<Vec<CertificateDer<'static>>>,
    identity: Option<Identity>,
) -> Result<rustls::ClientConfig, ChannelError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            roots.add_parsable_certificates(ca);
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _unusable) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(ChannelError::NoSystemRoots);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ChannelError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => ChannelError::KeyMismatch,
                other => ChannelError::Tls(other.to_string()),
            }),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The crypto provider tonic would use: the process default, else ring.
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()))
}

/// Rule 4: the key is the certificate's.
fn check_identity(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<(), ChannelError> {
    match rustls::sign::CertifiedKey::from_der(chain, key, &provider()) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(ChannelError::KeyMismatch),
        Err(e) => Err(ChannelError::Pem {
            setting: TlsSetting::ClientKey,
            problem: PemProblem::Unusable(e.to_string()),
        }),
    }
}

/// Every `CERTIFICATE` block of a PEM input; at least one.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemProblem> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemProblem::Malformed(e.to_string()))?;
    if certs.is_empty() {
        return Err(PemProblem::NoCertificate);
    }
    Ok(certs)
}

/// A lazily connected channel to `config.endpoint`: nothing is dialled until the first call
/// (so the endpoint may be down now). Must be called inside a tokio runtime, whose tasks carry
/// the connection. Applies every rule first; with `https://`, loads the roots (the CA, else
/// the system's) and the client identity now, so a problem with them is an error here.
///
/// TLS is done by our connector (`connector`), not tonic's: tonic dials the endpoint's
/// authority as `http://` and our connector wraps it in TLS, while every request still carries
/// the endpoint's own scheme and authority (tonic's `origin`).
pub fn connect_lazy(config: &ChannelConfig) -> Result<Channel, ChannelError> {
    let parsed = config.parse()?;
    let endpoint_str = config.endpoint.trim();
    let invalid = |source| ChannelError::InvalidEndpoint {
        endpoint: redact_endpoint(endpoint_str),
        source,
    };
    let endpoint = Endpoint::from_shared(endpoint_str.to_owned()).map_err(invalid)?;
    let (endpoint, tls) = match parsed.transport {
        Transport::Plaintext => (endpoint, None),
        Transport::Tls => {
            let origin = endpoint.uri().clone();
            let authority = origin
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default();
            let dial = Endpoint::from_shared(format!("http://{authority}"))
                .map_err(invalid)?
                .origin(origin);
            (
                dial,
                Some(std::sync::Arc::new(tls_setup(&config.tls, parsed)?)),
            )
        }
    };
    Ok(endpoint
        .connect_timeout(config.connect_timeout)
        .connect_with_connector_lazy(Connector { tls }))
}

/// The rustls client configuration the same rules give for `config` (its CA, else the system
/// roots; its client identity), for flowtel's other TLS clients (the HTTP flow sink), with the
/// application protocols `alpn` (e.g. `http/1.1`).
pub fn rustls_client_config(
    config: &ChannelConfig,
    alpn: &[&[u8]],
) -> Result<std::sync::Arc<rustls::ClientConfig>, ChannelError> {
    let parsed = config.parse()?;
    let setup = tls_setup(&config.tls, parsed)?;
    let mut client = (*setup.config).clone();
    client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(std::sync::Arc::new(client))
}

/// Rule 3 (the CA replaces the system roots), the client identity, ALPN h2.
fn tls_setup(tls: &TlsConfig, parsed: Parsed) -> Result<TlsSetup, ChannelError> {
    let mut config = client_config(parsed.ca, parsed.identity)?;
    // gRPC over HTTP/2 ("Protocol"): TLS must negotiate h2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    let server_name = match &tls.domain_name {
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|e| ChannelError::Tls(format!("TLS server name {name:?}: {e}")))?,
        ),
        None => None,
    };
    Ok(TlsSetup {
        config: std::sync::Arc::new(config),
        server_name,
    })
}

struct EndpointParts<'a> {
    /// `scheme://`
    prefix: &'a str,
    userinfo: Option<&'a str>,
    /// host[:port]
    host: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// RFC 3986 §3: `scheme://[userinfo@]host[:port][/path][?query][#fragment]`, split without
/// validating (this also serves to redact what does not parse).
fn split_endpoint(endpoint: &str) -> EndpointParts<'_> {
    let (prefix, rest) = match endpoint.find("://") {
        Some(i) => endpoint.split_at(i + 3),
        None => ("", endpoint),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // The last '@' ends the userinfo (a password may contain an unescaped '@').
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    EndpointParts {
        prefix,
        userinfo,
        host,
        path,
        query,
        fragment,
    }
}

/// What an endpoint may be shown as: credentials and the query string replaced by
/// `<redacted>` (`http://user:<redacted>@host:4317`).
pub fn redact_endpoint(endpoint: &str) -> String {
    let p = split_endpoint(endpoint);
    let mut out = String::with_capacity(endpoint.len());
    out.push_str(p.prefix);
    if let Some(userinfo) = p.userinfo {
        match userinfo.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push_str(":<redacted>@");
            }
            None => out.push_str("<redacted>@"),
        }
    }
    out.push_str(p.host);
    out.push_str(p.path);
    if p.query.is_some() {
        out.push_str("?<redacted>");
    }
    if let Some(f) = p.fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords_tokens_and_queries_only() {
        for (raw, shown) in [
            ("http://alloy:4317", "http://alloy:4317"),
            ("https://alloy.example:4317/", "https://alloy.example:4317/"),
            (
                "http://user:s3cr3t@alloy:4317",
                "http://user:<redacted>@alloy:4317",
            ),
            (
                "https://tok3n@alloy:4317/x",
                "https://<redacted>@alloy:4317/x",
            ),
            (
                "http://u:p@ss@alloy:4317?key=v",
                "http://u:<redacted>@alloy:4317?<redacted>",
            ),
            (
                "http://[::1]:4317?api_key=abc#f",
                "http://[::1]:4317?<redacted>#f",
            ),
            ("alloy:4317", "alloy:4317"),
        ] {
            assert_eq!(redact_endpoint(raw), shown, "{raw}");
        }
    }

    #[test]
    fn rules_on_which_settings_are_given() {
        use TlsSetting::*;
        assert_eq!(
            check_rules("http://a:1", &[]).unwrap(),
            Transport::Plaintext
        );
        assert_eq!(
            check_rules(" https://a:1/ ", &[Ca, ClientCert, ClientKey]).unwrap(),
            Transport::Tls
        );
        let err = |e, s: &[TlsSetting]| check_rules(e, s).unwrap_err();
        assert!(matches!(
            err("grpc://a:1", &[]),
            ChannelError::UnsupportedScheme { .. }
        ));
        assert!(matches!(
            err("a:1", &[]),
            ChannelError::UnsupportedScheme { .. }
        ));
        match err("http://u:secret@a:1", &[]) {
            ChannelError::CredentialsInEndpoint { endpoint } => {
                assert_eq!(endpoint, "http://u:<redacted>@a:1");
            }
            other => panic!("{other:?}"),
        }
        let e = err("https://a:1/?token=secret", &[]);
        assert!(matches!(e, ChannelError::QueryInEndpoint { .. }), "{e:?}");
        assert!(!e.to_string().contains("secret"), "{e}");
        match err("http://a:1", &[Ca, DomainName]) {
            ChannelError::TlsWithoutHttps { settings, .. } => {
                assert_eq!(settings, vec![Ca, DomainName]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err("http://a:1", &[ClientKey]).to_string(),
            "the client key given for the plain-text endpoint \"http://a:1\": use https:// or remove it"
        );
        assert!(matches!(
            err("https://a:1", &[ClientCert]),
            ChannelError::IncompleteIdentity {
                given: ClientCert,
                missing: ClientKey
            }
        ));
        assert!(matches!(
            err("https://a:1", &[Ca, ClientKey]),
            ChannelError::IncompleteIdentity {
                given: ClientKey,
                missing: ClientCert
            }
        ));
    }

    fn pem_error(tls: TlsConfig) -> (TlsSetting, PemProblem) {
        let config = ChannelConfig {
            endpoint: "https://localhost:4317".into(),
            tls,
            ..Default::default()
        };
        match config.validate() {
            Err(ChannelError::Pem { setting, problem }) => (setting, problem),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pem_contents_are_checked() {
        let ca = |pem: &[u8]| TlsConfig {
            ca_pem: Some(pem.to_vec()),
            ..Default::default()
        };
        assert_eq!(
            pem_error(ca(b"hello")),
            (TlsSetting::Ca, PemProblem::NoCertificate)
        );
        // A DER certificate (binary) is not PEM.
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            pem_error(ca(cert.der())),
            (TlsSetting::Ca, PemProblem::NoCertificate)
        );
        // A key where a certificate belongs.
        assert_eq!(
            pem_error(ca(key.serialize_pem().as_bytes())),
            (TlsSetting::Ca, PemProblem::NoCertificate)
        );
        // A CERTIFICATE block whose contents are not X.509.
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            pem_error(ca(garbage)),
            (TlsSetting::Ca, PemProblem::BadCertificate { index: 1, .. })
        ));
        // Broken base64 inside a block.
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            pem_error(ca(broken)),
            (TlsSetting::Ca, PemProblem::Malformed(_))
        ));
        // A certificate where the key belongs.
        let identity = TlsConfig {
            client_cert_pem: Some(cert.pem().into_bytes()),
            client_key_pem: Some(cert.pem().into_bytes()),
            ..Default::default()
        };
        assert_eq!(
            pem_error(identity),
            (TlsSetting::ClientKey, PemProblem::NoPrivateKey)
        );
        let identity = TlsConfig {
            client_cert_pem: Some(key.serialize_pem().into_bytes()),
            client_key_pem: Some(key.serialize_pem().into_bytes()),
            ..Default::default()
        };
        assert_eq!(
            pem_error(identity),
            (TlsSetting::ClientCert, PemProblem::NoCertificate)
        );
        // Valid: the certificate as its own CA, and as an identity with its key.
        let ok = ChannelConfig {
            endpoint: "https://localhost:4317".into(),
            tls: TlsConfig {
                ca_pem: Some(cert.pem().into_bytes()),
                client_cert_pem: Some(cert.pem().into_bytes()),
                client_key_pem: Some(key.serialize_pem().into_bytes()),
                domain_name: None,
            },
            ..Default::default()
        };
        assert_eq!(ok.validate().unwrap(), Transport::Tls);
    }

    #[tokio::test]
    async fn a_key_that_does_not_match_the_certificate_is_refused() {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["flowtel".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = |k: &rcgen::KeyPair| ChannelConfig {
            endpoint: "https://localhost:4317".into(),
            tls: TlsConfig {
                ca_pem: Some(cert.pem().into_bytes()),
                client_cert_pem: Some(cert.pem().into_bytes()),
                client_key_pem: Some(k.serialize_pem().into_bytes()),
                domain_name: None,
            },
            ..Default::default()
        };
        assert!(matches!(
            config(&other).validate(),
            Err(ChannelError::KeyMismatch)
        ));
        assert!(matches!(
            connect_lazy(&config(&other)),
            Err(ChannelError::KeyMismatch)
        ));
        assert!(connect_lazy(&config(&key)).is_ok());
    }
}
