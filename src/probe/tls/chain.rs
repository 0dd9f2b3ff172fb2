//! The chain as it is: after a verifier refused it, which certificate the server sent is at
//! fault, read from the certificates themselves (their dates, the names that link them, their
//! signature algorithms and key sizes), never from the verifier's words.

use rustls::pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::public_key::PublicKey;

use super::cert::name_text;

/// Where a certificate stands in the chain the server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The server's own certificate.
    Leaf,
    /// A CA certificate between it and a root.
    Intermediate,
    /// A self-signed CA certificate the server sends along.
    Root,
}

impl Role {
    /// How a message names a certificate of this role.
    pub(super) fn words(self) -> &'static str {
        match self {
            Role::Leaf => "the server's own certificate",
            Role::Intermediate => "the intermediate certificate",
            Role::Root => "the root certificate",
        }
    }
}

/// One certificate of the chain, as a message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Named {
    pub(super) role: Role,
    pub(super) subject: String,
}

/// What is wrong with the chain a server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fault {
    /// A certificate's dates do not cover now: `after` is its not-after (expired) or
    /// not-before (not valid yet) date.
    OutOfDate {
        cert: Named,
        expired: bool,
        date: String,
    },
    /// The certificates sent after the leaf do not include its issuer.
    WrongIntermediate { wanted: String, sent: Vec<String> },
    /// A certificate is signed with a digest no TLS client accepts any more.
    WeakSignature {
        cert: Named,
        algorithm: &'static str,
    },
    /// A certificate's RSA key is shorter than TLS clients accept (2048 bits).
    WeakKey { cert: Named, bits: usize },
}

/// The shortest RSA key TLS clients (rustls, OpenSSL at its default security level) accept.
const MIN_RSA_BITS: usize = 2048;

/// The first certificate of `chain` whose dates do not cover now.
pub(super) fn out_of_date(chain: &[CertificateDer<'_>]) -> Option<Fault> {
    let now = time::OffsetDateTime::now_utc();
    parsed(chain).find_map(|(role, cert)| {
        let validity = cert.validity();
        let (expired, date) = if now > validity.not_after.to_datetime() {
            (true, validity.not_after)
        } else if now < validity.not_before.to_datetime() {
            (false, validity.not_before)
        } else {
            return None;
        };
        Some(Fault::OutOfDate {
            cert: named(role, &cert),
            expired,
            date: rfc3339(date),
        })
    })
}

/// The first weakness in `chain` a TLS client refuses: a SHA-1 or MD5 signature (on any
/// certificate but a self-signed one, whose own signature no client checks), or an RSA key
/// under 2048 bits.
pub(super) fn weakness(chain: &[CertificateDer<'_>]) -> Option<Fault> {
    parsed(chain).find_map(|(role, cert)| {
        if role != Role::Root
            && let Some(algorithm) = weak_digest(&cert.signature_algorithm.algorithm.to_id_string())
        {
            return Some(Fault::WeakSignature {
                cert: named(role, &cert),
                algorithm,
            });
        }
        match cert.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) if rsa.key_size() < MIN_RSA_BITS => Some(Fault::WeakKey {
                cert: named(role, &cert),
                bits: rsa.key_size(),
            }),
            _ => None,
        }
    })
}

/// When the server sends other certificates but not its leaf's issuer: the intermediate of
/// another chain (an old one, another CA's, another product's).
pub(super) fn wrong_intermediate(chain: &[CertificateDer<'_>]) -> Option<Fault> {
    let mut certs = parsed(chain);
    let (_, leaf) = certs.next()?;
    let wanted = leaf.issuer().as_raw().to_vec();
    let rest: Vec<(Role, X509Certificate<'_>)> = certs.collect();
    if rest.is_empty() || rest.iter().any(|(_, c)| c.subject().as_raw() == wanted) {
        return None;
    }
    Some(Fault::WrongIntermediate {
        wanted: name_text(leaf.issuer()),
        sent: rest.iter().map(|(_, c)| name_text(c.subject())).collect(),
    })
}

/// The DNS names of a certificate's subjectAltName (not its IP address entries).
pub(super) fn dns_names(der: &CertificateDer<'_>) -> Vec<String> {
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => super::cert::alt_names(&cert, false),
        Err(_) => Vec::new(),
    }
}

/// Each certificate that parses, with its role.
fn parsed<'a>(
    chain: &'a [CertificateDer<'_>],
) -> impl Iterator<Item = (Role, X509Certificate<'a>)> + 'a {
    chain.iter().enumerate().filter_map(|(i, der)| {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        let role = match (i, cert.subject().as_raw() == cert.issuer().as_raw()) {
            (0, _) => Role::Leaf,
            (_, true) => Role::Root,
            (_, false) => Role::Intermediate,
        };
        Some((role, cert))
    })
}

fn named(role: Role, cert: &X509Certificate<'_>) -> Named {
    Named {
        role,
        subject: name_text(cert.subject()),
    }
}

/// The digest of a signature algorithm TLS clients no longer accept, by its OID.
fn weak_digest(oid: &str) -> Option<&'static str> {
    Some(match oid {
        // sha1WithRSAEncryption, ecdsa-with-SHA1, dsa-with-sha1, RSASSA-PSS is never SHA-1
        // by default.
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" => "SHA-1",
        // md5WithRSAEncryption, md2WithRSAEncryption.
        "1.2.840.113549.1.1.4" | "1.2.840.113549.1.1.2" => "MD5",
        _ => return None,
    })
}

fn rfc3339(time: x509_parser::time::ASN1Time) -> String {
    time.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
