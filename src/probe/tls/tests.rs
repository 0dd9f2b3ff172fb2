//! The TLS judge over in-memory streams (`tokio::io::duplex`), against a rustls server with
//! certificates made by rcgen: which store vouched, and which kind each verifier error and
//! alert becomes.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::{Handshake, Tls, TlsFailure, TlsRequest, TlsSettings, Trust};
use crate::failure::FailureKind;
use crate::probe::{BoxStream, Budget, Dialed};

/// A certificate authority made for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `names`, valid between the years given.
    fn leaf(&self, names: &[&str], years: (i32, i32)) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.not_before = date_time_ymd(years.0, 1, 1);
        params.not_after = date_time_ymd(years.1, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().clone(), key)
    }
}

/// How the test server answers.
#[derive(Default)]
struct Server {
    alpn: Vec<&'static str>,
    /// Require a client certificate signed by this CA.
    client_ca: Option<CertificateDer<'static>>,
}

impl Server {
    fn config(&self, leaf: (CertificateDer<'static>, KeyPair)) -> Arc<ServerConfig> {
        let (cert, key) = leaf;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(vec![cert], key).unwrap();
        config.alpn_protocols = self.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }
}

/// Runs one handshake from `tls` to a server with `config` over an in-memory stream.
async fn handshake(
    tls: &Tls,
    config: Arc<ServerConfig>,
    host: &str,
    request: &TlsRequest,
) -> Result<Handshake, TlsFailure> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        if let Ok(mut stream) = acceptor.accept(server).await {
            // Keep the connection open while the client waits for a verdict.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = stream.shutdown().await;
        }
    });
    let dialed = dialed(&format!("{host}:443"), 443);
    tls.handshake(
        Box::new(client) as BoxStream,
        host,
        &dialed,
        request,
        budget(),
    )
    .await
}

/// A handshake that must pass.
async fn passed(
    tls: &Tls,
    config: Arc<ServerConfig>,
    host: &str,
    request: &TlsRequest,
) -> Handshake {
    handshake(tls, config, host, request)
        .await
        .unwrap_or_else(|f| panic!("{:?}", f.failure))
}

/// A handshake that must fail.
async fn refused(
    tls: &Tls,
    config: Arc<ServerConfig>,
    host: &str,
    request: &TlsRequest,
) -> TlsFailure {
    match handshake(tls, config, host, request).await {
        Ok(_) => panic!("the handshake passed"),
        Err(failed) => failed,
    }
}

fn dialed(label: &str, port: u16) -> Dialed {
    Dialed {
        port,
        ip: None,
        label: label.into(),
    }
}

fn budget() -> Budget {
    Budget {
        timeout: Duration::from_secs(5),
        deadline: Instant::now() + Duration::from_secs(10),
        connect: None,
    }
}

fn tls_trusting(roots: &[&Ca]) -> Tls {
    Tls::new(TlsSettings {
        extra_roots: roots.iter().map(|ca| ca.der()).collect(),
        warn_days: 14,
        ..TlsSettings::default()
    })
}

/// The failure of a handshake with `cp.test` on `port` over `client`, which must fail.
async fn failure_of(
    tls: &Tls,
    client: tokio::io::DuplexStream,
    port: u16,
) -> crate::failure::Failure {
    let dialed = dialed(&format!("cp.test:{port}"), port);
    tls.handshake(
        Box::new(client),
        "cp.test",
        &dialed,
        &TlsRequest::default(),
        budget(),
    )
    .await
    .err()
    .expect("the handshake passed")
    .failure
}

fn kind(result: Result<Handshake, TlsFailure>) -> FailureKind {
    match result {
        Ok(_) => panic!("the handshake passed"),
        Err(failed) => failed.failure.kind,
    }
}

#[tokio::test]
async fn a_chain_from_the_ca_file_is_vouched_for_by_it() {
    let ca = Ca::new("Site CA");
    let config = Server::default().config(ca.leaf(&["cp.test"], (2020, 2090)));
    let done = passed(
        &tls_trusting(&[&ca]),
        config,
        "cp.test",
        &TlsRequest::default(),
    )
    .await;
    assert_eq!(done.info.trust, Trust::Custom);
    assert_eq!(done.info.issuer, "CN=Site CA");
    assert_eq!(done.info.san, ["cp.test"]);
    assert!(done.warnings.is_empty(), "{:?}", done.warnings);
}

#[tokio::test]
async fn a_chain_no_store_knows_is_untrusted_and_its_facts_are_kept() {
    let ca = Ca::new("Unknown CA");
    let config = Server::default().config(ca.leaf(&["cp.test"], (2020, 2090)));
    let failed = refused(
        &tls_trusting(&[]),
        config,
        "cp.test",
        &TlsRequest::default(),
    )
    .await;
    assert_eq!(failed.failure.kind, FailureKind::CertUntrusted);
    assert!(failed.failure.message.contains("issued by CN=Unknown CA"));
    let info = failed.info.unwrap();
    assert_eq!(
        (info.trust, info.issuer.as_str()),
        (Trust::None, "CN=Unknown CA")
    );
}

#[tokio::test]
async fn the_certificates_own_faults_are_named_before_its_issuer() {
    let ca = Ca::new("Site CA");
    let tls = tls_trusting(&[&ca]);
    let request = TlsRequest::default();
    let expired = Server::default().config(ca.leaf(&["cp.test"], (2020, 2021)));
    assert_eq!(
        kind(handshake(&tls, expired, "cp.test", &request).await),
        FailureKind::CertExpired
    );
    let early = Server::default().config(ca.leaf(&["cp.test"], (2090, 2091)));
    assert_eq!(
        kind(handshake(&tls, early, "cp.test", &request).await),
        FailureKind::CertNotYetValid
    );
    let other = Server::default().config(ca.leaf(&["other.test", "www.other.test"], (2020, 2090)));
    let failed = refused(&tls, other, "cp.test", &request).await.failure;
    assert_eq!(failed.kind, FailureKind::CertNameMismatch);
    assert!(
        failed
            .message
            .ends_with("is not valid for cp.test: it names other.test, www.other.test"),
        "{}",
        failed.message
    );
}

#[tokio::test]
async fn a_public_endpoint_vouched_for_only_by_a_private_ca_is_intercepted() {
    let ca = Ca::new("Corporate Inspection CA");
    let public = TlsRequest {
        public_ca: true,
        ..TlsRequest::default()
    };
    let config = || Server::default().config(ca.leaf(&["cloud.test"], (2020, 2090)));
    // Trusted through --ca-file: the handshake works, but the verdict is interception.
    let failed = refused(&tls_trusting(&[&ca]), config(), "cloud.test", &public).await;
    assert_eq!(failed.failure.kind, FailureKind::TlsIntercepted);
    assert!(
        failed
            .failure
            .message
            .contains("only by a CA from --ca-file")
    );
    assert_eq!(failed.info.unwrap().trust, Trust::Custom);
    // Not trusted at all: still interception, not an untrusted certificate.
    assert_eq!(
        kind(handshake(&tls_trusting(&[]), config(), "cloud.test", &public).await),
        FailureKind::TlsIntercepted
    );
}

#[tokio::test]
async fn an_inspection_products_ca_is_named() {
    let ca = Ca::new("Zscaler Intermediate Root CA");
    let config = Server::default().config(ca.leaf(&["cp.test"], (2020, 2090)));
    let failed = refused(
        &tls_trusting(&[]),
        config,
        "cp.test",
        &TlsRequest::default(),
    )
    .await
    .failure;
    assert_eq!(failed.kind, FailureKind::TlsIntercepted);
    assert!(failed.message.contains("(Zscaler)"), "{}", failed.message);
}

#[tokio::test]
async fn alerts_become_the_kinds_they_mean() {
    let ca = Ca::new("Site CA");
    let tls = tls_trusting(&[&ca]);
    // The server wants a client certificate and none is given.
    let mtls = Server {
        client_ca: Some(ca.der()),
        ..Server::default()
    };
    let leaf = || ca.leaf(&["cp.test"], (2020, 2090));
    assert_eq!(
        kind(handshake(&tls, mtls.config(leaf()), "cp.test", &TlsRequest::default()).await),
        FailureKind::ClientCertRejected
    );
    // …unless the profile says the endpoint needs one: then the path is proven up to the
    // mutual TLS step, and that is a warning.
    let expected = TlsRequest {
        client_cert_expected: true,
        ..TlsRequest::default()
    };
    let done = passed(&tls, mtls.config(leaf()), "cp.test", &expected).await;
    let warned: Vec<_> = done.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(warned, [FailureKind::ClientCertMissing]);
    // No protocol in common: the server's no_application_protocol alert.
    let h2 = Server {
        alpn: vec!["h2"],
        ..Server::default()
    };
    let kong = TlsRequest {
        alpn: vec!["kong-dp".into()],
        ..TlsRequest::default()
    };
    assert_eq!(
        kind(handshake(&tls, h2.config(leaf()), "cp.test", &kong).await),
        FailureKind::AlpnRejected
    );
    // A server that chooses no protocol at all: a warning.
    let done = passed(&tls, Server::default().config(leaf()), "cp.test", &kong).await;
    let warned: Vec<_> = done.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(warned, [FailureKind::AlpnNotNegotiated]);
}

#[tokio::test]
async fn a_certificate_close_to_expiry_warns() {
    let ca = Ca::new("Site CA");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["cp.test".to_string()]).unwrap();
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after =
        time::OffsetDateTime::now_utc() + time::Duration::days(3) + time::Duration::hours(1);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let config = Server::default().config((cert.der().clone(), key));
    let done = passed(
        &tls_trusting(&[&ca]),
        config,
        "cp.test",
        &TlsRequest::default(),
    )
    .await;
    let warned: Vec<_> = done
        .warnings
        .iter()
        .map(|w| (w.kind, w.message.clone()))
        .collect();
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0].0, FailureKind::CertExpiring);
    assert!(warned[0].1.contains("expires in 3 days"), "{}", warned[0].1);
}

#[tokio::test]
async fn a_peer_that_does_not_speak_tls_is_named() {
    let tls = tls_trusting(&[]);
    let (client, mut server) = tokio::io::duplex(1024);
    tokio::spawn(async move {
        let _ = server.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    let failed = failure_of(&tls, client, 22).await;
    assert_eq!(failed.kind, FailureKind::TlsHandshake);
    assert!(
        failed.message.starts_with("cp.test:22"),
        "{}",
        failed.message
    );
}

#[test]
fn of_the_stores_refusals_the_certificates_own_fault_speaks() {
    use rustls::{CertificateError, Error};
    let unknown = || Error::InvalidCertificate(CertificateError::UnknownIssuer);
    let expired = Error::InvalidCertificate(CertificateError::Expired);
    assert_eq!(
        super::verify::most_telling(vec![unknown(), expired.clone(), unknown()]),
        expired
    );
    assert_eq!(super::verify::most_telling(vec![unknown()]), unknown());
    assert_eq!(super::verify::most_telling(Vec::new()), unknown());
}

#[test]
fn alerts_are_named_as_the_protocol_names_them() {
    use rustls::AlertDescription;
    assert_eq!(
        super::alert_name(AlertDescription::CertificateRequired),
        "certificate_required"
    );
    assert_eq!(super::alert_name(AlertDescription::UnknownCA), "unknown_ca");
    assert_eq!(
        super::alert_name(AlertDescription::UnknownPSKIdentity),
        "unknown_psk_identity"
    );
    assert_eq!(
        super::alert_name(AlertDescription::HandshakeFailure),
        "handshake_failure"
    );
}

#[tokio::test]
async fn a_handshake_message_too_large_to_buffer_is_the_servers_doing() {
    let tls = tls_trusting(&[]);
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        // A ServerHello that says it is 0xfffe bytes long, sent in records of 16 KiB: with the
        // records' headers, more than a TLS client will buffer before the message is whole.
        let mut body = vec![2u8, 0x00, 0xff, 0xfe];
        body.resize(0xfffe + 4, 0);
        for chunk in body.chunks(16 * 1024) {
            let mut record = vec![22u8, 3, 3];
            record.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            record.extend_from_slice(chunk);
            if server.write_all(&record).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    let failed = failure_of(&tls, client, 443).await;
    assert_eq!(failed.kind, FailureKind::TlsHandshake);
    assert_eq!(
        failed.cause,
        crate::failure::Cause::HandshakeTooLarge,
        "{}",
        failed.message
    );
    assert!(failed.message.contains("larger than a TLS client accepts"));
}
