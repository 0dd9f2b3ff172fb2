//! The verifier of a handshake: each root store in turn (the bundled Mozilla roots, the
//! system's store, `--ca-file`), or the one pinned certificate, recording the chain and the
//! store that vouched for it; and the client-certificate resolver that records a request.
//!
//! A server certificate given itself (pinned by kong.conf's shared mode, or found in
//! `--ca-file` as a self-signed certificate is, which curl and OpenSSL accept) is trusted by
//! its bytes, its dates and its names, and the handshake's signature is checked with its
//! public key: webpki refuses such certificates as end entities (a CA certificate, an X.509
//! version 1 certificate as `kong hybrid gen_cert` makes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::ResolvesClientCert;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{Trust, provider};

/// One verifier per root store.
#[derive(Debug)]
pub(super) struct Verifiers {
    pub(super) public: Arc<WebPkiServerVerifier>,
    pub(super) system: Option<Arc<WebPkiServerVerifier>>,
    pub(super) custom: Option<Arc<WebPkiServerVerifier>>,
    /// The certificates of `--ca-file` (and kong.conf's CAs) themselves: a server presenting
    /// one of them is trusted by its bytes.
    pub(super) given: Vec<CertificateDer<'static>>,
    /// kong.conf's CAs alone: what a kong.conf cluster check trusts beside the system store.
    pub(super) kong: Option<Arc<WebPkiServerVerifier>>,
    /// kong.conf's CAs themselves, trusted by their bytes in a kong.conf cluster check.
    pub(super) kong_given: Vec<CertificateDer<'static>>,
    /// `--ca-file` alone: a what-if for a kong.conf cluster check.
    pub(super) flag: Option<Arc<WebPkiServerVerifier>>,
}

impl Verifiers {
    pub(super) fn build(
        flag_roots: Vec<CertificateDer<'static>>,
        kong_roots: Vec<CertificateDer<'static>>,
    ) -> Verifiers {
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
        // A check of the run's own (not a kong.conf cluster check) trusts both.
        let extra_roots: Vec<CertificateDer<'static>> =
            flag_roots.iter().chain(&kong_roots).cloned().collect();
        let custom = verifier(store(extra_roots.clone()));
        Verifiers {
            public,
            system,
            custom,
            given: extra_roots,
            kong: verifier(store(kong_roots.clone())),
            kong_given: kong_roots,
            flag: verifier(store(flag_roots)),
        }
    }
}

/// What one handshake's verifier and client-certificate resolver saw.
#[derive(Debug, Default)]
pub(super) struct Observed {
    pub(super) chain: Mutex<Vec<CertificateDer<'static>>>,
    pub(super) trust: Mutex<Option<Trust>>,
    pub(super) cert_requested: AtomicBool,
    /// The server sent a session ticket after the handshake: OpenSSL-based servers (nginx,
    /// OpenResty, Kong) send one only once they accept the client.
    pub(super) ticket: tokio::sync::Notify,
    /// A kong.conf cluster check's chain that Kong's stores refuse and this other store
    /// verifies (`Trust::Custom`: `--ca-file`; `Trust::Public`: the bundled roots).
    pub(super) what_if: Mutex<Option<Trust>>,
}

/// The session store of a handshake: it keeps nothing (every check shakes hands in full, a
/// resumed session would skip verification), but tells `observed` when a ticket arrives.
#[derive(Debug)]
pub(super) struct Tickets(pub(super) Arc<Observed>);

impl rustls::client::ClientSessionStore for Tickets {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }

    fn set_tls12_session(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls12ClientSessionValue,
    ) {
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls13ClientSessionValue,
    ) {
        // A permit is kept if nobody waits yet.
        self.0.ticket.notify_one();
    }

    fn take_tls13_ticket(
        &self,
        _: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        None
    }
}

/// Verifies against each root store in turn and records the chain and the store that
/// vouched for it.
#[derive(Debug)]
pub(super) struct Recorder {
    pub(super) verifiers: Arc<Verifiers>,
    pub(super) observed: Arc<Observed>,
    /// Accept this certificate and no other, whatever its names (Kong's shared mode).
    pub(super) pinned: Option<CertificateDer<'static>>,
    /// A kong.conf cluster check: trust kong.conf's CAs, and the system store when this is
    /// true (`lua_ssl_trusted_certificate` lists `system`); the other stores are what-ifs.
    pub(super) kong: Option<bool>,
    /// Accept any certificate (`TlsRequest::accept_any`).
    pub(super) accept_any: bool,
}

impl Recorder {
    /// The verdict on a certificate trusted by its bytes.
    fn by_bytes(
        &self,
        verdict: Result<(), CertificateError>,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.vouched(match verdict {
            Ok(()) => Trust::Custom,
            Err(_) => Trust::None,
        });
        verdict
            .map(|()| ServerCertVerified::assertion())
            .map_err(rustls::Error::InvalidCertificate)
    }

    /// Whether the server's certificate is one given itself, whose signature is checked by its
    /// key.
    fn given(&self, cert: &CertificateDer<'_>) -> bool {
        self.pinned.as_ref().is_some_and(|p| p == cert)
            || self.verifiers.given.iter().any(|c| c == cert)
    }

    /// Records which store vouched for the chain (`Trust::None`: none did).
    fn vouched(&self, trust: Trust) {
        if let Ok(mut slot) = self.observed.trust.lock() {
            *slot = Some(trust);
        }
    }
}

impl Recorder {
    /// Verifies as the node's Kong does: kong.conf's CAs, and the system store when it lists
    /// `system`. When they refuse, the run's other stores are asked as a what-if, and the one
    /// that would vouch is recorded.
    fn as_kong(
        &self,
        system: bool,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verifiers = &self.verifiers;
        if verifiers.kong_given.iter().any(|c| c == end_entity) {
            let verdict = as_given(end_entity, server_name, now);
            return self.by_bytes(verdict);
        }
        let verify = |verifier: &WebPkiServerVerifier| {
            verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        };
        let kong = [
            (Trust::System, verifiers.system.as_ref().filter(|_| system)),
            (Trust::Custom, verifiers.kong.as_ref()),
        ];
        let mut errors = Vec::new();
        for (trust, verifier) in kong {
            let Some(verifier) = verifier else { continue };
            match verify(verifier) {
                Ok(ok) => {
                    self.vouched(trust);
                    return Ok(ok);
                }
                Err(err) => errors.push(err),
            }
        }
        self.vouched(Trust::None);
        let error = most_telling(errors);
        // Only an unknown issuer can be another store's to vouch for.
        if matches!(
            error,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ) {
            let flag_given = verifiers.given.iter().any(|c| c == end_entity)
                && as_given(end_entity, server_name, now).is_ok();
            let others = [
                (Trust::Custom, verifiers.flag.as_ref()),
                (Trust::System, verifiers.system.as_ref().filter(|_| !system)),
                (Trust::Public, Some(&verifiers.public)),
            ];
            let would = match flag_given {
                true => Some(Trust::Custom),
                false => others
                    .into_iter()
                    .find(|(_, v)| v.is_some_and(|v| verify(v).is_ok()))
                    .map(|(trust, _)| trust),
            };
            if let Ok(mut slot) = self.observed.what_if.lock() {
                *slot = would;
            }
        }
        Err(error)
    }
}

/// The verdict on a certificate trusted by its bytes: its dates and its names.
fn as_given(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), CertificateError> {
    valid_at(cert, now).and_then(|()| names(cert, server_name))
}

/// Of the stores' refusals, the one that says most: "unknown issuer" only says a store lacks
/// the root; an error about the certificate itself (expired, wrong name) says more.
pub(super) fn most_telling(mut errors: Vec<rustls::Error>) -> rustls::Error {
    let unknown = |e: &rustls::Error| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        )
    };
    match errors.iter().position(|e| !unknown(e)) {
        Some(i) => errors.swap_remove(i),
        None => rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
    }
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
        if self.accept_any {
            self.vouched(Trust::None);
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(pinned) = &self.pinned {
            // Kong's shared mode: this certificate and no other, whatever names it holds.
            let verdict = match end_entity == pinned {
                true => valid_at(end_entity, now),
                false => Err(CertificateError::UnknownIssuer),
            };
            return self.by_bytes(verdict);
        }
        if let Some(system) = self.kong {
            return self.as_kong(
                system,
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            );
        }
        if self.verifiers.given.iter().any(|c| c == end_entity) {
            let verdict = as_given(end_entity, server_name, now);
            return self.by_bytes(verdict);
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
                    self.vouched(trust);
                    return Ok(ok);
                }
                Err(err) => errors.push(err),
            }
        }
        self.vouched(Trust::None);
        Err(most_telling(errors))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if self.given(cert) {
            return by_key(message, cert, dss, false);
        }
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
        if self.given(cert) {
            return by_key(message, cert, dss, true);
        }
        self.verifiers
            .public
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifiers.public.supported_verify_schemes()
    }
}

/// Checks a handshake signature with the public key of `cert`, parsed by x509-parser (which,
/// unlike webpki, reads any certificate version and CA certificates).
fn by_key(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let algorithms = provider().signature_verification_algorithms;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ));
    };
    let spki = parsed.public_key();
    if tls13 {
        let der = SubjectPublicKeyInfoDer::from(spki.raw);
        return rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &der,
            dss,
            &algorithms,
        );
    }
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, candidates)| *candidates)
        .ok_or(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ))?;
    let key = spki.subject_public_key.data.as_ref();
    // TLS 1.2 may map a scheme to more than one algorithm; the key's own one verifies.
    candidates
        .iter()
        .find(|alg| alg.verify_signature(key, message, dss.signature()).is_ok())
        .map(|_| HandshakeSignatureValid::assertion())
        .ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature,
        ))
}

/// Whether `der` names `server_name`: its DNS and IP subject alternative names (a leading `*`
/// stands for one label), or its common name when it has none, as OpenSSL reads a
/// certificate without them.
fn names(der: &CertificateDer<'_>, server_name: &ServerName<'_>) -> Result<(), CertificateError> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Err(CertificateError::BadEncoding);
    };
    let facts = super::cert::facts(der);
    let mut presented = facts.san;
    if presented.is_empty() {
        presented.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_string),
        );
    }
    let wanted = match server_name {
        ServerName::DnsName(name) => name.as_ref().to_ascii_lowercase(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => return Err(CertificateError::NotValidForName),
    };
    let matches = |pattern: &String| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(base) => wanted
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == base),
            None => pattern == wanted,
        }
    };
    match presented.iter().any(matches) {
        true => Ok(()),
        false => Err(CertificateError::NotValidForName),
    }
}

/// Whether `der` is within its validity period at `now`.
pub(super) fn valid_at(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), CertificateError> {
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
pub(super) struct ClientCert {
    pub(super) identity: Option<Arc<CertifiedKey>>,
    pub(super) observed: Arc<Observed>,
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
