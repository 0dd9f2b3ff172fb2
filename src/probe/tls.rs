//! TLS handshakes with tokio-rustls: the chain verified against the bundled Mozilla roots, the
//! system's store and `--ca-file`. All rustls configuration lives in this module.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{Budget, Failure, FailureKind, Peer, Phase};

/// What a completed handshake showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// "TLSv1.2" or "TLSv1.3".
    pub version: String,
    pub cipher: String,
    pub alpn: Option<String>,
}

/// Reads the certificates of a PEM file for `--ca-file`.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = crate::files::read_capped(path).map_err(|e| format!("cannot read it: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// The shared TLS client: its configuration is built once, on the first TLS probe.
pub struct Tls {
    extra_roots: Vec<CertificateDer<'static>>,
    config: OnceCell<Arc<ClientConfig>>,
}

impl Tls {
    pub fn new(extra_roots: Vec<CertificateDer<'static>>) -> Self {
        Tls {
            extra_roots,
            config: OnceCell::new(),
        }
    }

    async fn config(&self) -> Arc<ClientConfig> {
        self.config
            .get_or_init(|| async {
                let extra = self.extra_roots.clone();
                // Reading the system's store is file I/O: keep it off the async workers.
                tokio::task::spawn_blocking(move || Arc::new(client_config(extra)))
                    .await
                    .unwrap_or_else(|_| Arc::new(client_config(Vec::new())))
            })
            .await
            .clone()
    }

    /// Completes a TLS handshake over `stream` for `host`; returns what it showed and its time.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        host: &str,
        addr: SocketAddr,
        budget: Budget,
    ) -> Result<(TlsInfo, Duration), Failure> {
        let peer = Peer {
            host,
            port: Some(addr.port()),
            ip: Some(addr.ip()),
        };
        let name = host.strip_suffix('.').unwrap_or(host).to_string();
        let server_name = ServerName::try_from(name).map_err(|e| {
            Failure::new(
                FailureKind::TlsHandshake,
                Phase::Tls,
                format!("`{host}` cannot be used as a TLS server name: {e}"),
                peer,
            )
        })?;
        let connector = TlsConnector::from(self.config().await);
        let start = Instant::now();
        match budget.limit(connector.connect(server_name, stream)).await {
            Ok(Ok(tls)) => {
                let (_, conn) = tls.get_ref();
                let info = TlsInfo {
                    version: conn
                        .protocol_version()
                        .map(version_name)
                        .unwrap_or_else(|| "unknown".into()),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|s| format!("{:?}", s.suite()))
                        .unwrap_or_default(),
                    alpn: conn
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                };
                Ok((info, start.elapsed()))
            }
            Ok(Err(err)) => Err(classify(&err, addr, peer)),
            Err(elapsed) => Err(Failure::new(
                elapsed.kind(Phase::Tls),
                Phase::Tls,
                format!(
                    "{addr} accepted the connection but sent no TLS handshake within {}",
                    humantime::format_duration(budget.timeout)
                ),
                peer,
            )),
        }
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

fn client_config(extra_roots: Vec<CertificateDer<'static>>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Unreadable entries of the system store are skipped: the bundled roots still apply.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    roots.add_parsable_certificates(extra_roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| unreachable_config())
}

/// The ring provider supports the default versions; this is only a type-correct fallback.
fn unreachable_config() -> ClientConfig {
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}

/// Names what went wrong in a handshake.
fn classify(err: &io::Error, addr: SocketAddr, peer: Peer<'_>) -> Failure {
    let failure = |kind, message: String| Failure::new(kind, Phase::Tls, message, peer);
    if let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::InvalidCertificate(cert) => {
                let kind = match cert {
                    CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                        FailureKind::CertExpired
                    }
                    CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                        FailureKind::CertNotYetValid
                    }
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. } => {
                        FailureKind::CertNameMismatch
                    }
                    _ => FailureKind::CertUntrusted,
                };
                failure(
                    kind,
                    format!(
                        "the certificate of {} at {addr} is rejected: {tls}",
                        peer.host
                    ),
                )
            }
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => failure(
                FailureKind::TlsHandshake,
                format!("{addr} does not speak TLS: {tls}"),
            ),
            rustls::Error::AlertReceived(alert) => failure(
                FailureKind::TlsHandshake,
                format!("{addr} aborted the handshake with the TLS alert {alert:?}"),
            ),
            other => failure(
                FailureKind::TlsHandshake,
                format!("TLS handshake with {addr} failed: {other}"),
            ),
        };
    }
    if err.kind() == io::ErrorKind::UnexpectedEof {
        return failure(
            FailureKind::TlsHandshake,
            format!("{addr} closed the connection during the TLS handshake"),
        );
    }
    let (kind, what) = super::tcp::io_kind(err);
    failure(
        kind,
        format!(
            "{what} during the TLS handshake with {addr} ({})",
            super::tcp::os_text(err)
        ),
    )
}
