//! Certificates: PEM files read for `--ca-file` and `--client-cert`, and the facts of a
//! presented certificate (names, issuer, validity) as the report shows them.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SigningKey};

use super::provider;
use crate::error::InputError;

/// Reads the certificates of a PEM file for `--ca-file` or `--client-cert`.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = crate::files::read_capped(path).map_err(|e| format!("cannot read it: {e}"))?;
    certs_of(&bytes)
}

/// The certificates of PEM text.
pub(crate) fn certs_of(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "is not a valid PEM certificate file".to_string())?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// The signing key of PEM text; the error says what is wrong in words that name `key_name`
/// and, for an encrypted key, how to decrypt a copy of `path`. Key material never appears.
pub(crate) fn signing_key_of(
    bytes: &[u8],
    key_name: &str,
    path: &Path,
) -> Result<Arc<dyn SigningKey>, String> {
    if encrypted(bytes) {
        return Err(format!(
            "{key_name} is encrypted with a passphrase, which preflight does not ask for: decrypt a copy first (openssl pkey -in {} -out node-key.pem) and pass that",
            path.display()
        ));
    }
    let der = PrivateKeyDer::from_pem_slice(bytes).map_err(|_| {
        format!("{key_name} holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)")
    })?;
    provider().key_provider.load_private_key(der).map_err(|_| {
        format!("{key_name} is a key type this build cannot use (RSA, ECDSA P-256/P-384, Ed25519)")
    })
}

/// Whether `key` is the private key of `cert`. The certificate's public key is read by
/// x509-parser: webpki (behind CertifiedKey::keys_match) refuses X.509 version 1 certificates,
/// which `openssl x509 -req` and `kong hybrid gen_cert` make.
pub(crate) fn key_matches(key: &dyn SigningKey, cert: &CertificateDer<'_>) -> bool {
    match (key.public_key(), spki_of(cert)) {
        (Some(key), Some(spki)) => key.as_ref() == spki.as_slice(),
        // A key type that cannot say its public key: the handshake will tell.
        (None, _) => true,
        (Some(_), None) => false,
    }
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
    let signing = signing_key_of(&bytes, key_name, key).map_err(|e| bad(key, e))?;
    match certs
        .first()
        .is_some_and(|c| key_matches(signing.as_ref(), c))
    {
        true => Ok(Arc::new(CertifiedKey::new(certs, signing))),
        false => Err(bad(
            key,
            format!(
                "{key_name} does not match the certificate in {}",
                cert.display()
            ),
        )),
    }
}

/// Whether a PEM key file is encrypted: PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's
/// traditional `Proc-Type: 4,ENCRYPTED`.
fn encrypted(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

/// The SubjectPublicKeyInfo of a certificate, as DER.
fn spki_of(der: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(cert.public_key().raw.to_vec())
}

/// When a client certificate expires, in seconds since the epoch.
pub(crate) fn client_cert_not_after(identity: &CertifiedKey) -> Option<f64> {
    let leaf = identity.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp() as f64)
}

/// What is wrong with the dates of a client certificate now, if anything: its kind and words.
pub(crate) fn client_cert_dates(
    identity: &CertifiedKey,
) -> Option<(crate::failure::FailureKind, String)> {
    use crate::failure::FailureKind;
    let leaf = identity.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let facts = facts(leaf);
    let now = time::OffsetDateTime::now_utc();
    let validity = cert.validity();
    if now > validity.not_after.to_datetime() {
        return Some((
            FailureKind::ClientCertExpired,
            format!(
                "the client certificate given ({}) expired on {}: a server that checks it refuses it",
                facts.subject, facts.not_after
            ),
        ));
    }
    if now < validity.not_before.to_datetime() {
        return Some((
            FailureKind::ClientCertNotYetValid,
            format!(
                "the client certificate given ({}) is not valid before {}: a server that checks it refuses it",
                facts.subject, facts.not_before
            ),
        ));
    }
    None
}

/// Why a client certificate is made for servers only, if it is: its extended key usage lists
/// purposes without TLS client authentication (`clientAuth`), which a server that checks the
/// purpose (nginx, OpenSSL's `s_server`, a Kong control plane in pki mode) refuses.
pub(crate) fn client_cert_usage(identity: &CertifiedKey) -> Option<String> {
    let leaf = identity.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let eku = cert.extended_key_usage().ok()??;
    if eku.value.client_auth || eku.value.any {
        return None;
    }
    let listed = match (eku.value.server_auth, eku.value.other.is_empty()) {
        (true, _) => "server authentication (serverAuth) only",
        (false, _) => "purposes without client authentication",
    };
    Some(format!(
        "the client certificate given ({}) is not made for clients: its extended key usage lists {listed}, not clientAuth",
        facts(leaf).subject
    ))
}

/// One certificate in a line, as `openssl s_client -showcerts` would tell it: subject, issuer,
/// validity and SHA-256 fingerprint.
pub(super) fn described(der: &CertificateDer<'_>) -> String {
    let facts = facts(der);
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    let fingerprint: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "subject {}; issuer {}; valid {} to {}; SHA-256 {}",
        facts.subject,
        facts.issuer,
        facts.not_before,
        facts.not_after,
        fingerprint.join(":")
    )
}

/// The facts of one certificate.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) subject: String,
    pub(crate) issuer: String,
    pub(crate) san: Vec<String>,
    pub(crate) not_before: String,
    pub(crate) not_after: String,
    pub(crate) days_left: i64,
}

pub(crate) fn facts(der: &CertificateDer<'_>) -> Facts {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Facts::default();
    };
    let rfc3339 = |t: x509_parser::time::ASN1Time| {
        t.to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let validity = cert.validity();
    let san = alt_names(&cert, true);
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

/// The DNS names of a certificate's subjectAltName, and its IP addresses with `ips`, in order.
pub(super) fn alt_names(
    cert: &x509_parser::certificate::X509Certificate<'_>,
    ips: bool,
) -> Vec<String> {
    cert.subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) if ips => ip_text(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A distinguished name as `CN=…, O=…`. Values in a string type the parser does not decode
/// (T61String, BMPString) are read as Latin-1, the way OpenSSL shows them, rather than lost.
pub(super) fn name_text(name: &x509_parser::x509::X509Name<'_>) -> String {
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
pub(super) fn name_list(names: &[String]) -> String {
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
pub(super) fn chain_names(chain: &[CertificateDer<'_>]) -> Vec<String> {
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
