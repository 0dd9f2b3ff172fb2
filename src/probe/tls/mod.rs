//! TLS handshakes with tokio-rustls, and what they show: the chain and which root store vouches
//! for it (the bundled Mozilla roots, the system's store, `--ca-file`), expiry, mutual TLS,
//! ALPN, and interception by an inspection proxy. All rustls configuration lives here.

mod cert;
mod chain;
mod judge;
mod p521;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::first_words::First;
pub(crate) use cert::{
    Facts, certs_of, client_cert_dates, client_cert_not_after, client_cert_usage, facts,
    key_matches, load_certs, load_identity, signing_key_of,
};
use judge::Judge;
pub(crate) use judge::{alert_name, is_client_cert_alert};
use verify::{ClientCert, Observed, Recorder, Tickets, Verifiers};

use super::{BoxStream, Budget, Dialed};
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
    /// No store vouched for the certificate (the handshake did not get that far, or it was refused).
    None,
}

impl Trust {
    /// The word the report uses for the trust.
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
    /// The cipher suite negotiated.
    pub cipher: String,
    /// The application protocol the server chose, if any.
    pub alpn: Option<String>,
    /// The server certificate's subject.
    pub subject: String,
    /// The server certificate's issuer.
    pub issuer: String,
    /// The names the server certificate carries.
    pub san: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    /// When the server certificate expires (RFC 3339).
    pub not_after: String,
    /// Days until then (negative once expired).
    pub days_left: i64,
    /// How many certificates the server sent.
    pub chain_len: usize,
    /// Which store vouched for the chain.
    pub trust: Trust,
    /// The server asked for a client certificate.
    pub client_cert_requested: bool,
}

/// The one crypto provider of the process (ring), built on first use.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = rustls::crypto::ring::default_provider();
            provider.signature_verification_algorithms =
                p521::with_p521(provider.signature_verification_algorithms);
            Arc::new(provider)
        })
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
    /// An HTTP request follows the handshake: its answer tells the server's verdict on the
    /// client certificate, so the handshake does not wait for it.
    pub answered_by_http: bool,
    /// Trust exactly `TlsSettings::pinned` (Kong's `cluster_mtls = shared`: the control plane
    /// presents the same certificate as the node), whatever names it holds.
    pub pinned: bool,
    /// A kong.conf cluster check: trust what the node's Kong trusts, not the run's stores.
    pub kong_trust: Option<KongTrust>,
    /// Accept any certificate (an HTTPS proxy that kong.conf's `proxy_server_ssl_verify = off`
    /// leaves unverified, as Kong does); the chain is still recorded.
    pub accept_any: bool,
}

/// What a node's Kong trusts for its cluster connections (kong/conf_loader/parse.lua adds
/// `cluster_ca_cert` in pki mode, `cluster_cert` in shared mode, to `lua_ssl_trusted_certificate`,
/// whose `system` is the system's CA bundle): the system store when `system` is listed, and
/// `TlsSettings::kong_roots`. The run's other stores (`--ca-file`, the bundled public roots)
/// are what-ifs: a chain only they verify fails as Kong fails, and the failure says which
/// kong.conf line would make it pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KongTrust {
    /// `lua_ssl_trusted_certificate` lists `system`.
    pub system: bool,
    /// Where the setting came from, for the words (`/etc/kong/kong.conf line 9`).
    pub whence: String,
    /// The setting's value.
    pub value: String,
}

/// Settings shared by every handshake of a run.
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// CA certificates trusted beside the system's (`--ca-file`, kong.conf's CAs).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// The client certificate and key offered, when one is given.
    pub identity: Option<Arc<CertifiedKey>>,
    /// `--cert-warn-days`.
    pub warn_days: i64,
    /// The one certificate a pinned check accepts (kong.conf's shared `cluster_cert`).
    pub pinned: Option<CertificateDer<'static>>,
    /// The CAs of kong.conf (`lua_ssl_trusted_certificate`'s files, `cluster_ca_cert`): what a
    /// kong.conf cluster check trusts beside the system store.
    pub kong_roots: Vec<CertificateDer<'static>>,
    /// The `--ca-file` path, for the words of a what-if.
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsSettings")
            .field("extra_roots", &self.extra_roots.len())
            .field("identity", &self.identity.is_some())
            .field("warn_days", &self.warn_days)
            .field("pinned", &self.pinned.is_some())
            .field("kong_roots", &self.kong_roots.len())
            .finish()
    }
}

/// A completed handshake: the stream (for HTTP), what it showed, and warnings about it.
pub(crate) struct Handshake {
    pub stream: BoxStream,
    /// The chain presented, one line per certificate, for `--verbose`.
    pub chain: Vec<String>,
    /// How long the server's verdict on a client certificate was awaited after a TLS 1.3
    /// handshake (until a session ticket, an alert or data came).
    pub verdict: Option<Duration>,
    pub info: TlsInfo,
    pub took: Duration,
    pub warnings: Vec<Failure>,
}

/// A failed handshake, with what it showed of the certificate when it got that far.
#[derive(Debug, Clone)]
pub(crate) struct TlsFailure {
    pub failure: Failure,
    pub info: Option<TlsInfo>,
    /// The chain presented, one line per certificate, for `--verbose`.
    pub chain: Vec<String>,
}

impl From<Failure> for TlsFailure {
    fn from(failure: Failure) -> Self {
        TlsFailure {
            failure,
            info: None,
            chain: Vec::new(),
        }
    }
}

/// The shared TLS client: its verifiers are built once, on the first TLS probe.
pub(crate) struct Tls {
    settings: TlsSettings,
    verifiers: OnceCell<Arc<Verifiers>>,
    /// What is wrong with the client certificate's dates, if anything (read once).
    identity_dates: Option<(FailureKind, String)>,
    /// Why the client certificate is not made for clients, if it is not (read once).
    identity_usage: Option<String>,
}

/// The longest wait, after a TLS 1.3 handshake, for the server's verdict on the client
/// certificate when no ticket, alert or data comes (an alert arrives one round trip after the
/// client's Finished).
const VERDICT_WAIT: Duration = Duration::from_millis(500);

impl Tls {
    /// Why the client certificate is not made for clients, if it is not.
    pub(crate) fn identity_usage(&self) -> Option<&str> {
        self.identity_usage.as_deref()
    }

    /// Whether a client certificate is offered to servers that ask.
    pub(crate) fn has_identity(&self) -> bool {
        self.settings.identity.is_some()
    }

    pub(crate) fn new(settings: TlsSettings) -> Self {
        let identity_dates = settings
            .identity
            .as_deref()
            .and_then(cert::client_cert_dates);
        let identity_usage = settings
            .identity
            .as_deref()
            .and_then(cert::client_cert_usage);
        Tls {
            settings,
            verifiers: OnceCell::new(),
            identity_dates,
            identity_usage,
        }
    }

    /// Builds the verifiers now (reads the root stores), ahead of the first handshake.
    pub(crate) async fn prepare(&self) {
        self.verifiers().await;
    }

    async fn verifiers(&self) -> Arc<Verifiers> {
        self.verifiers
            .get_or_init(|| async {
                let extra = self.settings.extra_roots.clone();
                let kong = self.settings.kong_roots.clone();
                // Reading the system's store is file I/O: keep it off the async workers.
                tokio::task::spawn_blocking(move || Arc::new(Verifiers::build(extra, kong)))
                    .await
                    .unwrap_or_else(|_| Arc::new(Verifiers::build(Vec::new(), Vec::new())))
            })
            .await
            .clone()
    }

    /// A configuration for one handshake, with its own observers.
    fn config(
        &self,
        verifiers: Arc<Verifiers>,
        observed: &Arc<Observed>,
        request: &TlsRequest,
        identity: Option<Arc<CertifiedKey>>,
        pinned: Option<CertificateDer<'static>>,
    ) -> ClientConfig {
        let alpn = &request.alpn;
        let recorder = Arc::new(Recorder {
            verifiers,
            observed: observed.clone(),
            pinned,
            kong: request.kong_trust.as_ref().map(|k| k.system),
            accept_any: request.accept_any,
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
        // Every check does a full handshake (a resumed session would skip verification); the
        // store only tells when a ticket arrives.
        config.resumption = Resumption::store(Arc::new(Tickets(observed.clone())))
            .tls12_resumption(rustls::client::Tls12Resumption::Disabled);
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
        let peer = Peer {
            host: name,
            port: Some(dialed.port),
            ip: dialed.ip,
        };
        let server_name = server_name(name, peer).map_err(TlsFailure::from)?;
        let observed = Arc::new(Observed::default());
        let identity = match request.to_proxy {
            true => None,
            false => self.settings.identity.clone(),
        };
        let (stream, first) = First::new(stream);
        let judge = Judge {
            addr: dialed.label.as_str(),
            peer,
            request,
            observed: &observed,
            identity: identity.is_some(),
            target: host,
            identity_dates: identity.as_ref().and(self.identity_dates.as_ref()),
            first: &first,
            ca_file: self.settings.ca_file.as_deref(),
        };
        let connector = self.connector(&observed, request, identity).await;
        let start = Instant::now();
        let mut tls = budget
            .limit(connector.connect(server_name, stream))
            .await
            .map_err(|elapsed| {
                let what = format!(
                    "{} accepted the connection but completed no TLS handshake",
                    judge.addr
                );
                TlsFailure::from(elapsed.failure(Phase::Tls, &what, peer))
            })?
            .map_err(|err| judge.refused(judge.failed(&err), judge.presented()))?;
        let took = start.elapsed();
        let info = judge.info(tls.get_ref().1);
        if let Some(failure) = judge.intercepted(&info) {
            return Err(judge.refused(failure, Some(info)));
        }
        let waited = Instant::now();
        let verdict = client_cert_verdict(&mut tls, &judge, &info, budget).await;
        let verdict_took = verdict.waited.then(|| waited.elapsed());
        if let Some(failure) = verdict.refused {
            return Err(judge.refused(failure, Some(info)));
        }
        let warnings = judge.warnings(&info, self.settings.warn_days);
        Ok(Handshake {
            chain: judge.described_chain(),
            stream: Box::new(tls),
            verdict: verdict_took,
            info,
            took,
            warnings,
        })
    }

    /// A connector for one handshake, whose verifier and certificate resolver report to
    /// `observed`.
    async fn connector(
        &self,
        observed: &Arc<Observed>,
        request: &TlsRequest,
        identity: Option<Arc<CertifiedKey>>,
    ) -> TlsConnector {
        let pinned = match request.pinned {
            true => self.settings.pinned.clone(),
            false => None,
        };
        let config = self.config(self.verifiers().await, observed, request, identity, pinned);
        TlsConnector::from(Arc::new(config))
    }
}

/// The name to send and verify, without a root label's dot.
fn server_name(name: &str, peer: Peer<'_>) -> Result<ServerName<'static>, Failure> {
    let bare = name.strip_suffix('.').unwrap_or(name).to_string();
    ServerName::try_from(bare).map_err(|e| {
        Failure::new(
            FailureKind::TlsHandshake,
            Phase::Tls,
            format!("`{name}` cannot be used as a TLS server name: {e}"),
            peer,
        )
    })
}

/// The server's verdict on the client, after a TLS 1.3 handshake in which it asked for a
/// certificate: whether it was awaited, and the refusal if one came.
struct Verdict {
    waited: bool,
    refused: Option<Failure>,
}

/// The server judges a TLS 1.3 client certificate after the handshake. When it asked for
/// one, the verdict is the first of: a session ticket (OpenSSL-based servers send one only
/// to a client they accept), an alert (refused), data, or the close; an HTTP probe learns it
/// from the answer to its request instead. Only a server that sends none of these is waited
/// for, at most `VERDICT_WAIT`. A refusal the profile foresees (no certificate given for an
/// endpoint that needs one) is left to the warnings.
async fn client_cert_verdict(
    tls: &mut TlsStream<First<BoxStream>>,
    judge: &Judge<'_>,
    info: &TlsInfo,
    budget: Budget,
) -> Verdict {
    let none = Verdict {
        waited: false,
        refused: None,
    };
    if !judge.cert_requested() || info.version != "TLSv1.3" || judge.request.answered_by_http {
        return none;
    }
    let wait = Budget {
        timeout: VERDICT_WAIT.min(budget.timeout),
        deadline: budget.deadline,
        connect: None,
    };
    let mut byte = [0u8; 1];
    let read = async {
        tokio::select! {
            read = tls.read(&mut byte) => read.err(),
            () = judge.observed.ticket.notified() => None,
        }
    };
    let Ok(Some(err)) = wait.limit(read).await else {
        return Verdict {
            waited: true,
            refused: None,
        };
    };
    let failure = judge.failed(&err);
    let foreseen = failure.kind == FailureKind::ClientCertRejected
        && judge.request.client_cert_expected
        && !judge.identity;
    Verdict {
        waited: true,
        refused: (!foreseen).then_some(failure),
    }
}

#[cfg(test)]
mod tests;
