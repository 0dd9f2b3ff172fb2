//! The verifier of a handshake: each root store in turn (the bundled Mozilla roots, the
//! system's store, `--ca-file`), or the one pinned certificate, recording the chain and the
//! store that vouched for it; and the client-certificate resolver that records a request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::ResolvesClientCert;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{Trust, provider};

/// One verifier per root store.
#[derive(Debug)]
pub(super) struct Verifiers {
    pub(super) public: Arc<WebPkiServerVerifier>,
    pub(super) system: Option<Arc<WebPkiServerVerifier>>,
    pub(super) custom: Option<Arc<WebPkiServerVerifier>>,
}

impl Verifiers {
    pub(super) fn build(extra_roots: Vec<CertificateDer<'static>>) -> Verifiers {
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
pub(super) struct Observed {
    pub(super) chain: Mutex<Vec<CertificateDer<'static>>>,
    pub(super) trust: Mutex<Option<Trust>>,
    pub(super) cert_requested: AtomicBool,
}

/// Verifies against each root store in turn and records the chain and the store that
/// vouched for it.
#[derive(Debug)]
pub(super) struct Recorder {
    pub(super) verifiers: Arc<Verifiers>,
    pub(super) observed: Arc<Observed>,
    /// Accept this certificate and no other, whatever its names (Kong's shared mode).
    pub(super) pinned: Option<CertificateDer<'static>>,
}

impl Recorder {
    /// Records which store vouched for the chain (`Trust::None`: none did).
    fn vouched(&self, trust: Trust) {
        if let Ok(mut slot) = self.observed.trust.lock() {
            *slot = Some(trust);
        }
    }
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
        if let Some(pinned) = &self.pinned {
            let verdict = match end_entity == pinned {
                true => valid_at(end_entity, now),
                false => Err(CertificateError::UnknownIssuer),
            };
            self.vouched(match verdict {
                Ok(()) => Trust::Custom,
                Err(_) => Trust::None,
            });
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
