//! TLS handshakes with tokio-rustls, and what they show: the chain and which root store vouches
//! for it (the bundled Mozilla roots, the system's store, `--ca-file`), expiry, mutual TLS,
//! ALPN, and interception by an inspection proxy. All rustls configuration lives here.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{BoxStream, Budget, Dialed, intercept};
use crate::error::InputError;
use crate::failure::{Failure, FailureKind, Peer, Phase};

/// Which root store vouched for a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// The bundled Mozilla roots.
    Public,
    /// Only the host's own store.
    System,
    /// Only `--ca-file`.
    Custom,
    None,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Public => "public",
            Trust::System => "system",
            Trust::Custom => "custom",
            Trust::None => "none",
        }
    }
}

/// What a handshake showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// "TLSv1.2" or "TLSv1.3".
    pub version: String,
    pub cipher: String,
    pub alpn: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub san: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub chain_len: usize,
    pub trust: Trust,
}

/// Reads the certificates of a PEM file for `--ca-file` or `--client-cert`.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = crate::files::read_capped(path).map_err(|e| format!("cannot read it: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "is not a valid PEM certificate file".to_string())?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// Loads a client certificate and key and checks that they belong together. `names` are what
/// errors call them (`--client-cert`, or kong.conf's `cluster_cert`); errors name the file, and
/// key material never appears in them.
pub(crate) fn load_identity(
    cert: &Path,
    key: &Path,
    names: (&str, &str),
) -> Result<Arc<CertifiedKey>, InputError> {
    let (cert_name, key_name) = names;
    let bad = |path: &Path, reason: String| InputError::File {
        path: path.to_path_buf(),
        reason,
    };
    let certs = load_certs(cert).map_err(|e| bad(cert, format!("{cert_name} {e}")))?;
    let bytes = crate::files::read_capped(key)
        .map_err(|e| bad(key, format!("{key_name} cannot read it: {e}")))?;
    // The parser's error could quote the file; it is replaced, never shown.
    let der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        bad(
            key,
            format!("{key_name} holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)"),
        )
    })?;
    let signing = provider().key_provider.load_private_key(der).map_err(|_| {
        bad(
            key,
            format!(
                "{key_name} is a key type this build cannot use (RSA, ECDSA P-256/P-384, Ed25519)"
            ),
        )
    })?;
    let certified = CertifiedKey::new(certs, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(_) => Err(bad(
            key,
            format!(
                "{key_name} does not match the certificate in {}",
                cert.display()
            ),
        )),
    }
}

/// The one crypto provider of the process (ring), built on first use.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// How to shake hands with one endpoint.
#[derive(Debug, Clone, Default)]
pub struct TlsRequest {
    /// SNI and the name verified; the host when `None`.
    pub server_name: Option<String>,
    /// ALPN protocols to offer, in order.
    pub alpn: Vec<String>,
    /// The profile says this endpoint requires a client certificate.
    pub client_cert_expected: bool,
    /// The profile says this endpoint has a publicly trusted certificate.
    pub public_ca: bool,
    /// The handshake is with an HTTPS proxy: no client certificate is offered to it.
    pub to_proxy: bool,
    /// Trust exactly `TlsSettings::pinned` (Kong's `cluster_mtls = shared`: the control plane
    /// presents the same certificate as the node), whatever names it holds.
    pub pinned: bool,
}

/// Settings shared by every handshake of a run.
#[derive(Clone, Default)]
pub struct TlsSettings {
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub identity: Option<Arc<CertifiedKey>>,
    pub warn_days: i64,
    /// The one certificate a pinned check accepts (kong.conf's shared `cluster_cert`).
    pub pinned: Option<CertificateDer<'static>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsSettings")
            .field("extra_roots", &self.extra_roots.len())
            .field("identity", &self.identity.is_some())
            .field("warn_days", &self.warn_days)
            .field("pinned", &self.pinned.is_some())
            .finish()
    }
}

/// A completed handshake: the stream (for HTTP), what it showed, and warnings about it.
pub(crate) struct Handshake {
    pub stream: TlsStream<BoxStream>,
    pub info: TlsInfo,
    pub took: Duration,
    pub warnings: Vec<Failure>,
}

/// A failed handshake, with what it showed of the certificate when it got that far.
#[derive(Debug, Clone)]
pub(crate) struct TlsFailure {
    pub failure: Failure,
    pub info: Option<TlsInfo>,
}

impl From<Failure> for TlsFailure {
    fn from(failure: Failure) -> Self {
        TlsFailure {
            failure,
            info: None,
        }
    }
}

/// The shared TLS client: its verifiers are built once, on the first TLS probe.
pub(crate) struct Tls {
    settings: TlsSettings,
    verifiers: OnceCell<Arc<Verifiers>>,
}

/// One verifier per root store.
#[derive(Debug)]
struct Verifiers {
    public: Arc<WebPkiServerVerifier>,
    system: Option<Arc<WebPkiServerVerifier>>,
    custom: Option<Arc<WebPkiServerVerifier>>,
}

impl Verifiers {
    fn build(extra_roots: Vec<CertificateDer<'static>>) -> Verifiers {
        let store = |certs: Vec<CertificateDer<'static>>| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(certs);
            roots
        };
        let verifier = |roots: RootCertStore| {
            if roots.is_empty() {
                return None;
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .ok()
        };
        let mut public = RootCertStore::empty();
        public.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let public = WebPkiServerVerifier::builder_with_provider(Arc::new(public), provider())
            .build()
            .unwrap_or_else(|_| unreachable!("the bundled roots are never empty"));
        // Unreadable entries of the system store are skipped: the other stores still apply.
        let system = verifier(store(rustls_native_certs::load_native_certs().certs));
        let custom = verifier(store(extra_roots));
        Verifiers {
            public,
            system,
            custom,
        }
    }
}

/// What one handshake's verifier and client-certificate resolver saw.
#[derive(Debug, Default)]
struct Observed {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    trust: Mutex<Option<Trust>>,
    cert_requested: AtomicBool,
}

/// Verifies against each root store in turn and records the chain and the store that
/// vouched for it.
#[derive(Debug)]
struct Recorder {
    verifiers: Arc<Verifiers>,
    observed: Arc<Observed>,
    /// Accept this certificate and no other, whatever its names (Kong's shared mode).
    pinned: Option<CertificateDer<'static>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.observed.chain.lock() {
            *chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
        }
        if let Some(pinned) = &self.pinned {
            let verdict = match end_entity == pinned {
                true => valid_at(end_entity, now),
                false => Err(CertificateError::UnknownIssuer),
            };
            if let Ok(mut slot) = self.observed.trust.lock() {
                *slot = Some(if verdict.is_ok() {
                    Trust::Custom
                } else {
                    Trust::None
                });
            }
            return verdict
                .map(|()| ServerCertVerified::assertion())
                .map_err(rustls::Error::InvalidCertificate);
        }
        let stores = [
            (Trust::Public, Some(&self.verifiers.public)),
            (Trust::System, self.verifiers.system.as_ref()),
            (Trust::Custom, self.verifiers.custom.as_ref()),
        ];
        let mut errors = Vec::new();
        for (trust, verifier) in stores {
            let Some(verifier) = verifier else { continue };
            match verifier.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(ok) => {
                    if let Ok(mut slot) = self.observed.trust.lock() {
                        *slot = Some(trust);
                    }
                    return Ok(ok);
                }
                Err(err) => errors.push(err),
            }
        }
        if let Ok(mut slot) = self.observed.trust.lock() {
            *slot = Some(Trust::None);
        }
        // "Unknown issuer" only says a store lacks the root; an error about the certificate
        // itself (expired, wrong name) says more.
        let unknown = |e: &rustls::Error| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
            )
        };
        let telling = match errors.iter().position(|e| !unknown(e)) {
            Some(i) => errors.swap_remove(i),
            None => rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        };
        Err(telling)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifiers
            .public
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifiers
            .public
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifiers.public.supported_verify_schemes()
    }
}

/// Whether `der` is within its validity period at `now`.
fn valid_at(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), CertificateError> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Err(CertificateError::BadEncoding);
    };
    let now = now.as_secs() as i64;
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(CertificateError::NotValidYet);
    }
    if now > validity.not_after.timestamp() {
        return Err(CertificateError::Expired);
    }
    Ok(())
}

/// Offers the client certificate, if any, and records that the server asked for one.
#[derive(Debug)]
struct ClientCert {
    identity: Option<Arc<CertifiedKey>>,
    observed: Arc<Observed>,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _acceptable_issuers: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.observed.cert_requested.store(true, Ordering::Relaxed);
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

/// How long to wait, after a TLS 1.3 handshake, for the server's verdict on the client
/// certificate (an alert arrives one round trip after the client's Finished).
const VERDICT_WAIT: Duration = Duration::from_millis(1000);

impl Tls {
    pub(crate) fn new(settings: TlsSettings) -> Self {
        Tls {
            settings,
            verifiers: OnceCell::new(),
        }
    }

    async fn verifiers(&self) -> Arc<Verifiers> {
        self.verifiers
            .get_or_init(|| async {
                let extra = self.settings.extra_roots.clone();
                // Reading the system's store is file I/O: keep it off the async workers.
                tokio::task::spawn_blocking(move || Arc::new(Verifiers::build(extra)))
                    .await
                    .unwrap_or_else(|_| Arc::new(Verifiers::build(Vec::new())))
            })
            .await
            .clone()
    }

    /// A configuration for one handshake, with its own observers.
    fn config(
        &self,
        verifiers: Arc<Verifiers>,
        observed: &Arc<Observed>,
        alpn: &[String],
        identity: Option<Arc<CertifiedKey>>,
        pinned: Option<CertificateDer<'static>>,
    ) -> ClientConfig {
        let recorder = Arc::new(Recorder {
            verifiers,
            observed: observed.clone(),
            pinned,
        });
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
            .dangerous()
            .with_custom_certificate_verifier(recorder)
            .with_client_cert_resolver(Arc::new(ClientCert {
                identity,
                observed: observed.clone(),
            }));
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        // Every check does a full handshake: a resumed session would skip verification.
        config.resumption = Resumption::disabled();
        config
    }

    /// Completes a TLS handshake over `stream` for `host`, and judges it.
    pub(crate) async fn handshake(
        &self,
        stream: BoxStream,
        host: &str,
        dialed: &Dialed,
        request: &TlsRequest,
        budget: Budget,
    ) -> Result<Handshake, TlsFailure> {
        let name = request.server_name.as_deref().unwrap_or(host);
        let addr = dialed.label.as_str();
        let peer = Peer {
            host: name,
            port: Some(dialed.port),
            ip: dialed.ip,
        };
        let bare = name.strip_suffix('.').unwrap_or(name).to_string();
        let server_name = ServerName::try_from(bare).map_err(|e| {
            Failure::new(
                FailureKind::TlsHandshake,
                Phase::Tls,
                format!("`{name}` cannot be used as a TLS server name: {e}"),
                peer,
            )
        })?;
        let observed = Arc::new(Observed::default());
        let identity = match request.to_proxy {
            true => None,
            false => self.settings.identity.clone(),
        };
        let has_identity = identity.is_some();
        let pinned = match request.pinned {
            true => self.settings.pinned.clone(),
            false => None,
        };
        let config = self.config(
            self.verifiers().await,
            &observed,
            &request.alpn,
            identity,
            pinned,
        );
        let connector = TlsConnector::from(Arc::new(config));
        let start = Instant::now();
        let judge = Judge {
            addr,
            peer,
            request,
            observed: &observed,
            identity: has_identity,
        };
        let mut tls = match budget.limit(connector.connect(server_name, stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                return Err(TlsFailure {
                    failure: judge.failed(&err),
                    info: judge.presented(),
                });
            }
            Err(elapsed) => {
                return Err(TlsFailure::from(elapsed.failure(
                    Phase::Tls,
                    &format!("{addr} accepted the connection but completed no TLS handshake"),
                    peer,
                )));
            }
        };
        let took = start.elapsed();
        let info = judge.info(&tls);
        if let Some(failure) = judge.intercepted(&info) {
            return Err(TlsFailure {
                failure,
                info: Some(info),
            });
        }
        if judge.cert_requested() && info.version == "TLSv1.3" {
            // The server judges a TLS 1.3 client certificate after the handshake: wait for its
            // verdict (an alert), or for a short while.
            let wait = Budget {
                timeout: VERDICT_WAIT.min(budget.timeout),
                deadline: budget.deadline,
            };
            let mut byte = [0u8; 1];
            if let Ok(Err(err)) = wait.limit(tls.read(&mut byte)).await {
                let failure = judge.failed(&err);
                // Refused for want of a certificate the profile says it needs: a warning below.
                let expected = failure.kind == FailureKind::ClientCertRejected
                    && request.client_cert_expected
                    && !judge.identity;
                if !expected {
                    return Err(TlsFailure {
                        failure,
                        info: Some(info),
                    });
                }
            }
        }
        let mut warnings = Vec::new();
        if info.days_left < self.settings.warn_days {
            warnings.push(Failure::new(
                FailureKind::CertExpiring,
                Phase::Tls,
                format!(
                    "the certificate of {name} expires in {} days ({})",
                    info.days_left, info.not_after
                ),
                peer,
            ));
        }
        if request.client_cert_expected && !judge.identity {
            warnings.push(judge.missing_client_cert());
        }
        if !request.alpn.is_empty() && info.alpn.is_none() {
            warnings.push(Failure::new(
                FailureKind::AlpnNotNegotiated,
                Phase::Tls,
                format!(
                    "{addr} chose none of the ALPN protocols offered ({})",
                    request.alpn.join(", ")
                ),
                peer,
            ));
        }
        Ok(Handshake {
            stream: tls,
            info,
            took,
            warnings,
        })
    }
}

/// Judges one handshake from what was observed.
struct Judge<'a> {
    addr: &'a str,
    peer: Peer<'a>,
    request: &'a TlsRequest,
    observed: &'a Observed,
    identity: bool,
}

impl Judge<'_> {
    fn cert_requested(&self) -> bool {
        self.observed.cert_requested.load(Ordering::Relaxed)
    }

    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.observed
            .chain
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    fn trust(&self) -> Trust {
        self.observed
            .trust
            .lock()
            .ok()
            .and_then(|t| *t)
            .unwrap_or(Trust::None)
    }

    fn failure(&self, kind: FailureKind, message: String) -> Failure {
        Failure::new(kind, Phase::Tls, message, self.peer)
    }

    /// `tls_intercepted`: an inspection product's CA signed the chain.
    fn inspected_by(&self, issuer: &str, product: &str) -> Failure {
        self.failure(
            FailureKind::TlsIntercepted,
            format!(
                "the certificate presented for {} is issued by {issuer} ({product}): a TLS inspection device re-signs this connection",
                self.peer.host
            ),
        )
    }

    fn missing_client_cert(&self) -> Failure {
        self.failure(
            FailureKind::ClientCertMissing,
            format!(
                "{} requires a client certificate and none was given: the path up to it works, but the mutual TLS step was not tested",
                self.peer.host
            ),
        )
    }

    /// The facts of a completed handshake.
    fn info(&self, tls: &TlsStream<BoxStream>) -> TlsInfo {
        let (_, conn) = tls.get_ref();
        let mut info = self.presented().unwrap_or_else(|| self.facts_of(&[]));
        info.version = conn
            .protocol_version()
            .map(version_name)
            .unwrap_or_else(|| "unknown".into());
        info.cipher = conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        info.alpn = conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        info
    }

    /// The facts of the chain the server presented, if it got that far (no version or
    /// cipher: the handshake may not have finished).
    fn presented(&self) -> Option<TlsInfo> {
        let chain = self.chain();
        (!chain.is_empty()).then(|| self.facts_of(&chain))
    }

    fn facts_of(&self, chain: &[CertificateDer<'static>]) -> TlsInfo {
        let facts = chain.first().map(|c| facts(c)).unwrap_or_default();
        TlsInfo {
            version: String::new(),
            cipher: String::new(),
            alpn: None,
            subject: facts.subject,
            issuer: facts.issuer,
            san: facts.san,
            not_before: facts.not_before,
            not_after: facts.not_after,
            days_left: facts.days_left,
            chain_len: chain.len(),
            trust: self.trust(),
        }
    }

    /// `tls_intercepted` when an inspection product signed the chain, or when a publicly
    /// certified endpoint presents a chain no public root vouches for.
    fn intercepted(&self, info: &TlsInfo) -> Option<Failure> {
        let chain = self.chain();
        let names = chain_names(&chain);
        if let Some(product) = intercept::product(names.iter().map(String::as_str)) {
            return Some(self.inspected_by(&info.issuer, product));
        }
        if self.request.public_ca && info.trust != Trust::Public {
            let by = match info.trust {
                Trust::System => "only by a CA installed in this host's store",
                Trust::Custom => "only by a CA from --ca-file",
                _ => "by no trusted CA",
            };
            return Some(self.failure(
                FailureKind::TlsIntercepted,
                format!(
                    "{} should present a publicly trusted certificate, but it is issued by {} and trusted {by}: something in the path re-signs TLS",
                    self.peer.host, info.issuer
                ),
            ));
        }
        None
    }

    /// Names what went wrong in (or just after) a handshake.
    fn failed(&self, err: &io::Error) -> Failure {
        let addr = self.addr;
        let host = self.peer.host;
        if let Some(tls) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            if let rustls::Error::InvalidCertificate(cert) = tls {
                let chain = self.chain();
                let issuer = chain.first().map(|c| facts(c).issuer).unwrap_or_default();
                let names = chain_names(&chain);
                if let Some(product) = intercept::product(names.iter().map(String::as_str)) {
                    return self.inspected_by(&issuer, product);
                }
                let untrusted = !matches!(
                    cert,
                    CertificateError::Expired
                        | CertificateError::ExpiredContext { .. }
                        | CertificateError::NotValidYet
                        | CertificateError::NotValidYetContext { .. }
                        | CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                );
                if untrusted && self.request.public_ca {
                    return self.failure(
                        FailureKind::TlsIntercepted,
                        format!(
                            "{host} should present a publicly trusted certificate, but it is issued by {issuer}, which no trusted CA vouches for: something in the path re-signs TLS"
                        ),
                    );
                }
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
                let by = if issuer.is_empty() {
                    String::new()
                } else {
                    format!(" (issued by {issuer})")
                };
                if kind == FailureKind::CertNameMismatch {
                    // The names from the certificate itself, a few of them: a certificate may
                    // carry thousands.
                    let names = chain.first().map(|c| facts(c).san).unwrap_or_default();
                    let wanted = self.request.server_name.as_deref().unwrap_or(host);
                    return self.failure(
                        kind,
                        format!(
                            "the certificate of {host} at {addr}{by} is not valid for {wanted}: it names {}",
                            name_list(&names)
                        ),
                    );
                }
                return self.failure(
                    kind,
                    format!("the certificate of {host} at {addr}{by} is rejected: {tls}"),
                );
            }
            if let rustls::Error::AlertReceived(alert) = tls {
                if self.cert_requested() && is_client_cert_alert(*alert) {
                    let what = if self.identity {
                        "refused the client certificate given"
                    } else {
                        "requires a client certificate and none was given"
                    };
                    return self.failure(
                        FailureKind::ClientCertRejected,
                        format!("{addr} {what} (TLS alert {alert:?})"),
                    );
                }
                if *alert == AlertDescription::NoApplicationProtocol {
                    return self.failure(
                        FailureKind::AlpnRejected,
                        format!(
                            "{addr} accepts none of the ALPN protocols offered ({})",
                            self.request.alpn.join(", ")
                        ),
                    );
                }
                return self.failure(
                    FailureKind::TlsHandshake,
                    format!("{addr} aborted the handshake with the TLS alert {alert:?}"),
                );
            }
            return match tls {
                rustls::Error::InvalidMessage(_)
                | rustls::Error::InappropriateMessage { .. }
                | rustls::Error::InappropriateHandshakeMessage { .. } => self.failure(
                    FailureKind::TlsHandshake,
                    format!("{addr} does not speak TLS: {tls}"),
                ),
                other => self.failure(
                    FailureKind::TlsHandshake,
                    format!("TLS handshake with {addr} failed: {other}"),
                ),
            };
        }
        if err.kind() == io::ErrorKind::UnexpectedEof {
            return self.failure(
                FailureKind::TlsHandshake,
                format!("{addr} closed the connection during the TLS handshake"),
            );
        }
        // rustls's words for a handshake message larger than it will buffer: the peer's doing
        // (a broken or hostile server), not this host's.
        if err.to_string().contains("message buffer full") {
            return self.failure(
                FailureKind::TlsHandshake,
                format!(
                    "{addr} sent a TLS handshake message larger than a TLS client accepts: the server is broken or not a TLS server"
                ),
            );
        }
        let (kind, what) = super::tcp::io_kind(err);
        self.failure(
            kind,
            format!(
                "{what} during the TLS handshake with {addr} ({})",
                super::tcp::os_text(err)
            ),
        )
    }
}

/// Alerts a server sends when it refuses (or misses) a client certificate.
fn is_client_cert_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure
            | AlertDescription::DecryptError
    )
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// The facts of one certificate.
#[derive(Debug, Default)]
struct Facts {
    subject: String,
    issuer: String,
    san: Vec<String>,
    not_before: String,
    not_after: String,
    days_left: i64,
}

fn facts(der: &CertificateDer<'_>) -> Facts {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Facts::default();
    };
    let rfc3339 = |t: x509_parser::time::ASN1Time| {
        t.to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let validity = cert.validity();
    let san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => ip_text(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let left = validity.not_after.to_datetime() - time::OffsetDateTime::now_utc();
    Facts {
        subject: name_text(cert.subject()),
        issuer: name_text(cert.issuer()),
        san,
        not_before: rfc3339(validity.not_before),
        not_after: rfc3339(validity.not_after),
        days_left: left.whole_days(),
    }
}

/// A distinguished name as `CN=…, O=…`. Values in a string type the parser does not decode
/// (T61String, BMPString) are read as Latin-1, the way OpenSSL shows them, rather than lost.
fn name_text(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            let attributes: Vec<String> = rdn
                .iter()
                .map(|attr| {
                    let key = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                        .map_or_else(|_| attr.attr_type().to_id_string(), str::to_string);
                    let value = match attr.as_str() {
                        Ok(text) => text.to_string(),
                        Err(_) => attr
                            .attr_value()
                            .data
                            .iter()
                            .map(|&b| char::from(b))
                            .collect(),
                    };
                    format!("{key}={value}")
                })
                .collect();
            attributes.join(" + ")
        })
        .collect();
    rdns.join(", ")
}

/// At most ten names, then how many more.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    match names.len() {
        0 => "no host names".to_string(),
        n if n <= SHOWN => names.join(", "),
        n => format!("{} and {} more", names[..SHOWN].join(", "), n - SHOWN),
    }
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// The names in a chain that say who issued it: every issuer, and the subjects of the
/// presented CA certificates (never the leaf's own subject, which names the site).
fn chain_names(chain: &[CertificateDer<'_>]) -> Vec<String> {
    let mut names = Vec::new();
    for (i, der) in chain.iter().enumerate() {
        let f = facts(der);
        names.push(f.issuer);
        if i > 0 {
            names.push(f.subject);
        }
    }
    names
}
