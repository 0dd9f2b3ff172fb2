//! The TLS judge: from what a handshake showed (the chain, the store that vouched, a
//! certificate request) and how it ended (a verifier error, an alert, an I/O error), the
//! failure kind and the words that name the cause.

use std::io;
use std::sync::atomic::Ordering;

use rustls::pki_types::CertificateDer;
use rustls::{AlertDescription, CertificateError};

use super::cert::{chain_names, facts, name_list};
use super::chain::{self, Fault, Role};
use super::verify::Observed;
use super::{TlsInfo, TlsRequest, Trust};
use crate::failure::{Failure, FailureKind, Peer, Phase};
use crate::probe::intercept;

/// Judges one handshake from what was observed.
pub(super) struct Judge<'a> {
    pub(super) addr: &'a str,
    pub(super) peer: Peer<'a>,
    pub(super) request: &'a TlsRequest,
    pub(super) observed: &'a Observed,
    pub(super) identity: bool,
    /// The host connected to (the name verified may be another: `--server-name`, Kong's
    /// `kong_clustering`).
    pub(super) target: &'a str,
    /// What is wrong with the dates of the client certificate offered, if anything.
    pub(super) identity_dates: Option<&'a (FailureKind, String)>,
    /// The peer's first bytes.
    pub(super) first: &'a std::sync::Mutex<crate::probe::first_words::Heard>,
    /// The `--ca-file` path, for the words of a what-if.
    pub(super) ca_file: Option<&'a str>,
}

impl Judge<'_> {
    pub(super) fn cert_requested(&self) -> bool {
        self.observed.cert_requested.load(Ordering::Relaxed)
    }

    pub(super) fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.observed
            .chain
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    pub(super) fn trust(&self) -> Trust {
        self.observed
            .trust
            .lock()
            .ok()
            .and_then(|t| *t)
            .unwrap_or(Trust::None)
    }

    pub(super) fn failure(&self, kind: FailureKind, message: String) -> Failure {
        if kind == FailureKind::TlsIntercepted {
            // The exemption to ask for is the host and port connected to, not the server name
            // (which may be kong_clustering).
            let target = crate::failure::Peer {
                host: self.target,
                ..self.peer
            };
            let failure = Failure::new(kind, Phase::Tls, message, target);
            return match self.request.pinned {
                true => failure.because(
                    crate::failure::Cause::InterceptedPinned,
                    target,
                    Default::default(),
                ),
                false => failure,
            };
        }
        let failure = Failure::new(kind, Phase::Tls, message, self.peer);
        match (kind, self.request.server_name.as_deref()) {
            // A name set on purpose is what to correct.
            (FailureKind::CertNameMismatch, Some(wanted)) => failure.because(
                crate::failure::Cause::ServerNameSet,
                self.peer,
                crate::failure::Facts {
                    server_name: Some(wanted),
                    ..Default::default()
                },
            ),
            _ => failure,
        }
    }

    /// A pinned (cluster_mtls = shared) control plane that presents another certificate.
    fn not_the_pinned(&self, issuer: &str) -> Failure {
        let failure = self.failure(
            FailureKind::CertUntrusted,
            format!(
                "the control plane at {} presents a certificate other than this node's cluster_cert (issued by {issuer}): with cluster_mtls = shared both must hold the same certificate",
                self.addr
            ),
        );
        let target = crate::failure::Peer {
            host: self.target,
            ..self.peer
        };
        failure.because(
            crate::failure::Cause::NotPinnedCertificate,
            target,
            Default::default(),
        )
    }

    /// `tls_intercepted`: an inspection product's CA signed the chain.
    pub(super) fn inspected_by(&self, issuer: &str, product: &str) -> Failure {
        self.failure(
            FailureKind::TlsIntercepted,
            format!(
                "the certificate presented for {} is issued by {issuer} ({product}): a TLS inspection device re-signs this connection",
                self.peer.host
            ),
        )
    }

    pub(super) fn missing_client_cert(&self) -> Failure {
        self.failure(
            FailureKind::ClientCertMissing,
            format!(
                "{} requires a client certificate and none was given: the path up to it works, but the mutual TLS step was not tested",
                self.peer.host
            ),
        )
    }

    /// The facts of a completed handshake.
    pub(super) fn info(&self, conn: &rustls::ClientConnection) -> TlsInfo {
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
    pub(super) fn presented(&self) -> Option<TlsInfo> {
        let chain = self.chain();
        (!chain.is_empty()).then(|| self.facts_of(&chain))
    }

    pub(super) fn facts_of(&self, chain: &[CertificateDer<'static>]) -> TlsInfo {
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
            client_cert_requested: self.cert_requested(),
        }
    }

    /// `tls_intercepted` when an inspection product signed the chain, or when a publicly
    /// certified endpoint presents a chain no public root vouches for.
    pub(super) fn intercepted(&self, info: &TlsInfo) -> Option<Failure> {
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

    /// Reasons to warn about a handshake that worked: a certificate that expires within
    /// `warn_days`, a client certificate the endpoint needs but was not given, no ALPN chosen.
    pub(super) fn warnings(&self, info: &TlsInfo, warn_days: i64) -> Vec<Failure> {
        let mut warnings = Vec::new();
        if info.days_left < warn_days {
            warnings.push(self.failure(
                FailureKind::CertExpiring,
                format!(
                    "the certificate of {} expires in {} days ({})",
                    self.peer.host, info.days_left, info.not_after
                ),
            ));
        }
        if let (true, Some((kind, words))) = (self.cert_requested(), self.identity_dates) {
            warnings.push(self.failure(*kind, words.clone()));
        }
        if self.request.client_cert_expected && !self.identity {
            warnings.push(self.missing_client_cert());
        } else if self.request.client_cert_expected
            && !self.cert_requested()
            && !self.request.to_proxy
        {
            warnings.push(self.failure(
                FailureKind::ClientCertNotRequested,
                format!(
                    "{} completed TLS without asking for the client certificate given, which the service requires: what answered is not the service itself",
                    self.addr
                ),
            ));
        } else if self.cert_requested() && !self.identity && !self.request.to_proxy {
            warnings.push(self.failure(
                FailureKind::ClientCertRequested,
                format!(
                    "{} asked for a client certificate, none was given, and it completed the handshake without one",
                    self.addr
                ),
            ));
        }
        if !self.request.alpn.is_empty() && info.alpn.is_none() {
            warnings.push(self.failure(
                FailureKind::AlpnNotNegotiated,
                format!(
                    "{} chose none of the ALPN protocols offered ({})",
                    self.addr,
                    self.request.alpn.join(", ")
                ),
            ));
        }
        warnings
    }

    /// What answered instead of TLS, when its first bytes say (a web server, an SSH server).
    fn not_tls(&self) -> Option<Failure> {
        let first = self.first.lock().ok()?.first.clone();
        // A TLS record starts with its content type (20 to 24) and version 3.x.
        if first.len() >= 2 && (20..=24).contains(&first[0]) && first[1] == 3 {
            return None;
        }
        let what = crate::probe::first_words::what_answered(&first)?;
        Some(self.failure(FailureKind::TlsHandshake, format!("{} {what}", self.addr)))
    }

    /// The presented chain, a line per certificate (for `--verbose`).
    pub(super) fn described_chain(&self) -> Vec<String> {
        self.chain().iter().map(super::cert::described).collect()
    }

    /// A failed handshake, with what it showed.
    pub(super) fn refused(&self, failure: Failure, info: Option<TlsInfo>) -> super::TlsFailure {
        super::TlsFailure {
            failure,
            info,
            chain: self.described_chain(),
        }
    }

    /// Names what went wrong in (or just after) a handshake.
    pub(super) fn failed(&self, err: &io::Error) -> Failure {
        match err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(cert)) => self.certificate(cert),
            Some(rustls::Error::AlertReceived(alert)) => self.alert(*alert),
            Some(
                rustls::Error::InvalidMessage(_)
                | rustls::Error::InappropriateMessage { .. }
                | rustls::Error::InappropriateHandshakeMessage { .. },
            ) => self.not_tls().unwrap_or_else(|| {
                self.failure(
                    FailureKind::TlsHandshake,
                    format!("{} broke the TLS protocol during the handshake", self.addr),
                )
            }),
            Some(rustls::Error::PeerIncompatible(_)) => self.failure(
                FailureKind::TlsHandshake,
                format!(
                    "{} shares no TLS version, cipher suite or key exchange with this client (TLS 1.2 and 1.3, modern suites)",
                    self.addr
                ),
            ),
            Some(rustls::Error::PeerMisbehaved(_)) => self.failure(
                FailureKind::TlsHandshake,
                format!("{} broke the TLS protocol during the handshake", self.addr),
            ),
            Some(other) => self.failure(
                FailureKind::TlsHandshake,
                format!("TLS handshake with {} failed: {other}", self.addr),
            ),
            None => self.io(err),
        }
    }

    /// The verifier refused the certificate: an inspection product's CA, a public endpoint
    /// re-signed, or the certificate's own fault (expired, not yet valid, another name), or
    /// an issuer no store knows.
    pub(super) fn certificate(&self, error: &CertificateError) -> Failure {
        let (addr, host) = (self.addr, self.peer.host);
        let chain = self.chain();
        let issuer = chain.first().map(|c| facts(c).issuer).unwrap_or_default();
        let names = chain_names(&chain);
        if let Some(product) = intercept::product(names.iter().map(String::as_str)) {
            return self.inspected_by(&issuer, product);
        }
        let kind = match error {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                FailureKind::CertExpired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                FailureKind::CertNotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                FailureKind::CertNameMismatch
            }
            _ => FailureKind::CertUntrusted,
        };
        if kind == FailureKind::CertUntrusted && self.request.public_ca {
            return self.failure(
                FailureKind::TlsIntercepted,
                format!(
                    "{host} should present a publicly trusted certificate, but it is issued by {issuer}, which no trusted CA vouches for: something in the path re-signs TLS"
                ),
            );
        }
        let by = if issuer.is_empty() {
            String::new()
        } else {
            format!(" (issued by {issuer})")
        };
        if kind == FailureKind::CertNameMismatch {
            // The names from the certificate itself, a few of them: a certificate may carry
            // thousands.
            let names = chain.first().map(|c| facts(c).san).unwrap_or_default();
            let wanted = self.request.server_name.as_deref().unwrap_or(host);
            if let Some(failure) = self.ip_as_dns_name(&chain, wanted, &by) {
                return failure;
            }
            return self.failure(
                kind,
                format!(
                    "the certificate of {host} at {addr}{by} is not valid for {wanted}: it names {}",
                    name_list(&names)
                ),
            );
        }
        if kind == FailureKind::CertUntrusted {
            return self.untrusted(error, &chain);
        }
        self.out_of_date(kind, error, &chain, &by)
    }

    /// An expired (or not yet valid) certificate, named: the server's own, or the CA
    /// certificate it sends along that is at fault (whose date the verifier's error carries).
    fn out_of_date(
        &self,
        kind: FailureKind,
        error: &CertificateError,
        chain: &[CertificateDer<'static>],
        by: &str,
    ) -> Failure {
        let (addr, host) = (self.addr, self.peer.host);
        match chain::out_of_date(chain) {
            Some(Fault::OutOfDate {
                cert,
                expired,
                date,
            }) => {
                let when = match expired {
                    true => "expired on",
                    false => "is not valid before",
                };
                if cert.role == Role::Leaf {
                    return self.failure(
                        kind,
                        format!("the certificate of {host} at {addr}{by} {when} {date}"),
                    );
                }
                let failure = self.failure(
                    kind,
                    format!(
                        "{} that {host} at {addr} sends with its own ({}) {when} {date}; its own certificate is in date",
                        cert.role.words(),
                        cert.subject
                    ),
                );
                match expired && kind == FailureKind::CertExpired {
                    true => failure.because(
                        crate::failure::Cause::IntermediateExpired,
                        self.peer,
                        Default::default(),
                    ),
                    false => failure,
                }
            }
            // Nothing the server sent is out of date: a certificate of the path the verifier
            // built is (its date is in the error).
            _ => {
                let date = match error {
                    CertificateError::ExpiredContext { not_after, .. } => {
                        format!(" (it expired on {})", unix_date(not_after.as_secs()))
                    }
                    CertificateError::NotValidYetContext { not_before, .. } => format!(
                        " (it is not valid before {})",
                        unix_date(not_before.as_secs())
                    ),
                    _ => String::new(),
                };
                self.failure(
                    kind,
                    format!(
                        "a certificate of the path from {host} at {addr}{by} to a trusted root is out of date{date}"
                    ),
                )
            }
        }
    }

    /// A certificate that carries the address connected to as a DNS name only.
    fn ip_as_dns_name(
        &self,
        chain: &[CertificateDer<'static>],
        wanted: &str,
        by: &str,
    ) -> Option<Failure> {
        wanted.parse::<std::net::IpAddr>().ok()?;
        let dns = chain::dns_names(chain.first()?);
        if !dns.iter().any(|name| name.eq_ignore_ascii_case(wanted)) {
            return None;
        }
        let failure = self.failure(
            FailureKind::CertNameMismatch,
            format!(
                "the certificate of {} at {}{by} carries {wanted} as a DNS name, not as an IP address: a client that connects to an address compares it only with the certificate's IP address entries, and it has none for {wanted}",
                self.peer.host, self.addr
            ),
        );
        if failure.cause != crate::failure::Cause::General(FailureKind::CertNameMismatch) {
            return Some(failure);
        }
        let peer = Peer {
            host: wanted,
            ..self.peer
        };
        Some(failure.because(crate::failure::Cause::IpAsDnsName, peer, Default::default()))
    }

    /// A chain a client refuses for a weakness of one of its certificates.
    fn weak(&self, fault: Fault) -> Option<Failure> {
        let (addr, host) = (self.addr, self.peer.host);
        let (message, cause) = match fault {
            Fault::WeakSignature { cert, algorithm } => (
                format!(
                    "{} that {host} at {addr} sends ({}) is signed with {algorithm}, which TLS clients refuse",
                    cert.role.words(),
                    cert.subject
                ),
                crate::failure::Cause::WeakSignature,
            ),
            Fault::WeakKey { cert, bits } => (
                format!(
                    "{} that {host} at {addr} sends ({}) has a {bits}-bit RSA key, shorter than the 2048 bits TLS clients accept",
                    cert.role.words(),
                    cert.subject
                ),
                crate::failure::Cause::WeakKey,
            ),
            _ => return None,
        };
        Some(self.failure(FailureKind::CertUntrusted, message).because(
            cause,
            self.peer,
            Default::default(),
        ))
    }

    /// A certificate no store vouches for, said as the user meets it: self-signed, sent
    /// without its intermediate, or a chain that ends at an unknown CA; or refused for a
    /// reason of its own.
    fn untrusted(&self, error: &CertificateError, chain: &[CertificateDer<'static>]) -> Failure {
        let (addr, host) = (self.addr, self.peer.host);
        let leaf = chain.first().map(|c| facts(c)).unwrap_or_default();
        let issuer = &leaf.issuer;
        let unknown_issuer = matches!(error, CertificateError::UnknownIssuer);
        if self.request.pinned && unknown_issuer {
            return self.not_the_pinned(issuer);
        }
        if let Some(failure) = self.outside_kong(chain) {
            return failure;
        }
        if chain.len() == 1 && !issuer.is_empty() && *issuer == leaf.subject {
            return self
                .failure(
                    FailureKind::CertUntrusted,
                    format!(
                        "the certificate of {host} at {addr} is self-signed (issued by {issuer}, its own subject), and no store here trusts it"
                    ),
                )
                .because(crate::failure::Cause::SelfSigned, self.peer, Default::default());
        }
        if let Some(failure) = chain::weakness(chain).and_then(|fault| self.weak(fault)) {
            return failure;
        }
        if unknown_issuer
            && let Some(Fault::WrongIntermediate { wanted, sent }) =
                chain::wrong_intermediate(chain)
        {
            let facts = crate::failure::Facts {
                issuer: Some(&wanted),
                ..Default::default()
            };
            return self
                .failure(
                    FailureKind::CertUntrusted,
                    format!(
                        "the certificate of {host} at {addr} is issued by {wanted}, but the server sends {} instead of that CA's certificate: no path leads from it to a trusted root",
                        sent.join(" and ")
                    ),
                )
                .because(crate::failure::Cause::WrongIntermediate, self.peer, facts);
        }
        if chain.len() == 1 && unknown_issuer {
            let facts = crate::failure::Facts {
                issuer: Some(issuer),
                ..Default::default()
            };
            return self
                .failure(
                    FailureKind::CertUntrusted,
                    format!(
                        "the certificate of {host} at {addr} is issued by {issuer}, and the server sends no other certificate: the server does not send the intermediate certificate issued for {issuer}, or {issuer} is a private CA that no store here has"
                    ),
                )
                .because(crate::failure::Cause::ChainIncomplete, self.peer, facts);
        }
        let why = match error {
            CertificateError::UnknownIssuer => {
                let top = chain.last().map(|c| facts(c).issuer).unwrap_or_default();
                format!("its chain ends at {top}, which no store here trusts")
            }
            other => refusal(other).to_string(),
        };
        let by = match issuer.is_empty() {
            true => String::new(),
            false => format!(" (issued by {issuer})"),
        };
        self.failure(
            FailureKind::CertUntrusted,
            format!("the certificate of {host} at {addr}{by} is refused: {why}"),
        )
    }

    /// A kong.conf cluster check's chain that the node's Kong refuses and another store here
    /// verifies: the verdict is Kong's, and the hint names the kong.conf line that makes it
    /// pass.
    fn outside_kong(&self, chain: &[CertificateDer<'static>]) -> Option<Failure> {
        let kong = self.request.kong_trust.as_ref()?;
        let would = self.observed.what_if.lock().ok().and_then(|t| *t)?;
        let (addr, host) = (self.addr, self.peer.host);
        let top = chain.last().map(|c| facts(c).issuer).unwrap_or_default();
        let setting = format!(
            "lua_ssl_trusted_certificate = {} ({})",
            kong.value, kong.whence
        );
        let (store, fix) = match would {
            Trust::Custom => {
                let file = self.ca_file.unwrap_or("the --ca-file");
                (
                    "--ca-file".to_string(),
                    format!(
                        "add the CA file to lua_ssl_trusted_certificate in kong.conf (lua_ssl_trusted_certificate = {},{file}), or set it as cluster_ca_cert with cluster_mtls = pki",
                        kong.value
                    ),
                )
            }
            Trust::System => (
                "the system's CA store".to_string(),
                format!(
                    "add system to lua_ssl_trusted_certificate in kong.conf (lua_ssl_trusted_certificate = system,{})",
                    kong.value
                ),
            ),
            _ => (
                "the public roots preflight carries".to_string(),
                match kong.system {
                    true => "install or update this host's CA bundle (the ca-certificates package), which Kong reads as `system`".to_string(),
                    false => format!(
                        "add system to lua_ssl_trusted_certificate in kong.conf (lua_ssl_trusted_certificate = system,{})",
                        kong.value
                    ),
                },
            ),
        };
        let facts = crate::failure::Facts {
            fix: Some(&fix),
            ..Default::default()
        };
        Some(
            self.failure(
                FailureKind::CertUntrusted,
                format!(
                    "the certificate of {host} at {addr} (its chain ends at {top}) is not trusted by the node's Kong, which trusts only {setting}: only {store} vouches for it"
                ),
            )
            .because(crate::failure::Cause::TrustedOutsideKong, self.peer, facts),
        )
    }

    /// The server ended the handshake with an alert: about the client certificate when it
    /// asked for one, about ALPN, or anything else.
    pub(super) fn alert(&self, alert: AlertDescription) -> Failure {
        let addr = self.addr;
        if self.cert_requested() && is_client_cert_alert(alert) {
            let what = if self.identity {
                "refused the client certificate given"
            } else {
                "requires a client certificate and none was given"
            };
            let dates = self
                .identity_dates
                .map_or_else(String::new, |(_, words)| format!("; {words}"));
            return self.failure(
                FailureKind::ClientCertRejected,
                format!("{addr} {what} (TLS alert {}){dates}", alert_name(alert)),
            );
        }
        if alert == AlertDescription::NoApplicationProtocol {
            return self.failure(
                FailureKind::AlpnRejected,
                format!(
                    "{addr} accepts none of the ALPN protocols offered ({})",
                    self.request.alpn.join(", ")
                ),
            );
        }
        self.failure(
            FailureKind::TlsHandshake,
            format!(
                "{addr} aborted the handshake with the TLS alert {}",
                alert_name(alert)
            ),
        )
    }

    /// The connection failed under the handshake: closed, a message too large, or the
    /// network's own errors.
    pub(super) fn io(&self, err: &io::Error) -> Failure {
        let addr = self.addr;
        if err.kind() == io::ErrorKind::UnexpectedEof {
            if let Some(failure) = self.not_tls() {
                return failure;
            }
            return self
                .failure(
                    FailureKind::TlsHandshake,
                    format!("{addr} closed the connection during the TLS handshake"),
                )
                .because(
                    crate::failure::Cause::ClosedDuringHandshake,
                    self.peer,
                    Default::default(),
                );
        }
        // An error that is not the operating system's, after the peer sent more than a
        // handshake message may hold (64 KiB), is the TLS library refusing to buffer more
        // (rustls's deframer, `msgs/deframer/buffers.rs`): the peer's doing (a broken or hostile
        // server), not this host's.
        let total = self.first.lock().map(|heard| heard.total).unwrap_or(0);
        if err.raw_os_error().is_none() && total >= MAX_HANDSHAKE_MESSAGE {
            return self
                .failure(
                    FailureKind::TlsHandshake,
                    format!(
                        "{addr} sent a TLS handshake message larger than a TLS client accepts (64 KiB): the server is broken or not a TLS server"
                    ),
                )
                .because(
                    crate::failure::Cause::HandshakeTooLarge,
                    self.peer,
                    Default::default(),
                );
        }
        let (kind, what) = crate::probe::tcp::io_kind(err);
        self.failure(
            kind,
            format!(
                "{what} during the TLS handshake with {addr} ({})",
                crate::probe::tcp::os_text(err)
            ),
        )
    }
}

/// The largest handshake message a TLS client buffers (rustls: `MAX_HANDSHAKE_SIZE`).
const MAX_HANDSHAKE_MESSAGE: u64 = 0xffff;

/// Why webpki refused a certificate, in words (its error names mean nothing to a user).
fn refusal(error: &CertificateError) -> &'static str {
    match error {
        CertificateError::BadSignature => "its signature does not verify",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "it is not meant for TLS servers (its extended key usage)"
        }
        CertificateError::BadEncoding => "it cannot be parsed",
        CertificateError::Revoked => "it has been revoked",
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "it is signed with an algorithm this client does not accept"
        }
        // webpki's own errors come boxed: matched by their type.
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => {
                "it is a CA certificate, not a server certificate"
            }
            Some(webpki::Error::UnsupportedCertVersion) => {
                "it is an X.509 version 1 certificate, which a TLS client does not accept from a server"
            }
            Some(webpki::Error::UnsupportedCriticalExtension) => {
                "it carries a critical extension this client does not know"
            }
            _ => "it does not verify",
        },
        _ => "it does not verify",
    }
}

/// A TLS alert as the protocol names it: `certificate_required`, `handshake_failure`.
pub(crate) fn alert_name(alert: AlertDescription) -> String {
    let debug: Vec<char> = format!("{alert:?}").chars().collect();
    let mut name = String::new();
    for (i, &c) in debug.iter().enumerate() {
        // A word starts at a capital after a small letter, or at the last capital of an
        // acronym (`UnknownPSKIdentity`: unknown_psk_identity).
        let after_small = i > 0 && debug[i - 1].is_ascii_lowercase();
        let ends_acronym = i > 0
            && debug[i - 1].is_ascii_uppercase()
            && debug.get(i + 1).is_some_and(char::is_ascii_lowercase);
        if c.is_ascii_uppercase() && (after_small || ends_acronym) {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// Alerts a server sends when it refuses (or misses) a client certificate.
pub(crate) fn is_client_cert_alert(alert: AlertDescription) -> bool {
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

pub(super) fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// A date of the verifier's (seconds since the epoch) as RFC 3339.
fn unix_date(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "an unknown date".to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::{CertificateError, OtherError};

    #[test]
    fn webpki_errors_are_named_by_their_type() {
        let boxed = |e: webpki::Error| CertificateError::Other(OtherError(Arc::new(e)));
        for (error, words) in [
            (
                webpki::Error::CaUsedAsEndEntity,
                "it is a CA certificate, not a server certificate",
            ),
            (
                webpki::Error::UnsupportedCertVersion,
                "it is an X.509 version 1 certificate, which a TLS client does not accept from a server",
            ),
            (
                webpki::Error::UnsupportedCriticalExtension,
                "it carries a critical extension this client does not know",
            ),
            (webpki::Error::BadDer, "it does not verify"),
        ] {
            assert_eq!(super::refusal(&boxed(error.clone())), words, "{error:?}");
        }
    }
}
