//! Probes: DNS, TCP, UDP, proxies, TLS, HTTP and local binds, each bounded by a timeout per phase and by the
//! run's deadline. A failed probe is data (`Failure`), never an error that ends the run.

pub mod bind;
pub mod dns;
pub mod http;
pub mod intercept;
pub mod proxy;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// A connection the later phases run over: a TCP stream, or a tunnel through a proxy.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

pub type BoxStream = Box<dyn Stream>;

/// The stable identifiers of what went wrong. Their serialized names are a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The name does not exist (NXDOMAIN).
    Nxdomain,
    /// The name exists but has no address records of the family asked for.
    NoRecords,
    /// No DNS answer within the timeout.
    DnsTimeout,
    /// The DNS server answered with an error (SERVFAIL, REFUSED …) or could not be asked.
    DnsError,
    /// The host answered the connection with a reset: nothing listens there, or a firewall rejects.
    Refused,
    /// The connection attempt got no answer: something drops the packets.
    Timeout,
    /// No route to the host or network, or an ICMP unreachable from a firewall.
    Unreachable,
    /// The connection was reset after it was established.
    Reset,
    /// The TLS handshake did not finish within the timeout.
    TlsTimeout,
    /// The peer does not speak TLS, or aborted the handshake.
    TlsHandshake,
    /// The certificate chain does not lead to a trusted root.
    CertUntrusted,
    /// The certificate has expired.
    CertExpired,
    /// The certificate is not valid yet.
    CertNotYetValid,
    /// The certificate is not valid for the name asked for.
    CertNameMismatch,
    /// The run's `--deadline` passed before the check finished.
    Deadline,
    /// The local system refused to make the connection (out of file descriptors, a local policy).
    LocalError,
    /// The certificate verifies but expires within `--cert-warn-days` (a warning).
    CertExpiring,
    /// The server refused the client certificate, or required one that was not given.
    ClientCertRejected,
    /// The endpoint requires a client certificate and none was given (a warning).
    ClientCertMissing,
    /// An inspection proxy or firewall re-signs the connection.
    TlsIntercepted,
    /// The server accepts none of the ALPN protocols offered.
    AlpnRejected,
    /// The server chose none of the ALPN protocols offered (a warning).
    AlpnNotNegotiated,
    /// The HTTP status is not one expected.
    HttpStatus,
    /// No HTTP response headers within the timeout.
    HttpTimeout,
    /// The HTTP exchange failed (not HTTP, connection closed, a bad WebSocket handshake).
    HttpError,
    /// The proxy itself cannot be reached: its name does not resolve, or it refuses or drops.
    ProxyUnreachable,
    /// The proxy wants credentials or refused those given (407, SOCKS authentication).
    ProxyAuth,
    /// The proxy refuses to open the tunnel (403, a port it does not allow, a SOCKS rule).
    ProxyDenied,
    /// The proxy could not reach the target (502, 503, 504, or a SOCKS host/network error).
    ProxyUpstream,
    /// Anything else from the proxy: another status, or not a proxy at all.
    ProxyError,
    /// A local port check: another socket already holds the address and port.
    PortInUse,
    /// A local port check: this user may not bind the port (below 1024 without the right).
    BindDenied,
    /// A UDP datagram drew an ICMP port unreachable: nothing listens, or a firewall rejects.
    UdpRefused,
    /// A UDP datagram drew no reply: the port is open or filtered (a warning).
    UdpNoReply,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Nxdomain => "nxdomain",
            FailureKind::NoRecords => "no_records",
            FailureKind::DnsTimeout => "dns_timeout",
            FailureKind::DnsError => "dns_error",
            FailureKind::Refused => "refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Reset => "reset",
            FailureKind::TlsTimeout => "tls_timeout",
            FailureKind::TlsHandshake => "tls_handshake",
            FailureKind::CertUntrusted => "cert_untrusted",
            FailureKind::CertExpired => "cert_expired",
            FailureKind::CertNotYetValid => "cert_not_yet_valid",
            FailureKind::CertNameMismatch => "cert_name_mismatch",
            FailureKind::Deadline => "deadline",
            FailureKind::LocalError => "local_error",
            FailureKind::CertExpiring => "cert_expiring",
            FailureKind::ClientCertRejected => "client_cert_rejected",
            FailureKind::ClientCertMissing => "client_cert_missing",
            FailureKind::TlsIntercepted => "tls_intercepted",
            FailureKind::AlpnRejected => "alpn_rejected",
            FailureKind::AlpnNotNegotiated => "alpn_not_negotiated",
            FailureKind::HttpStatus => "http_status",
            FailureKind::HttpTimeout => "http_timeout",
            FailureKind::HttpError => "http_error",
            FailureKind::ProxyUnreachable => "proxy_unreachable",
            FailureKind::ProxyAuth => "proxy_auth",
            FailureKind::ProxyDenied => "proxy_denied",
            FailureKind::ProxyUpstream => "proxy_upstream",
            FailureKind::ProxyError => "proxy_error",
            FailureKind::PortInUse => "port_in_use",
            FailureKind::BindDenied => "bind_denied",
            FailureKind::UdpRefused => "udp_refused",
            FailureKind::UdpNoReply => "udp_no_reply",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a check a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for a free connection slot (`--concurrency`).
    Queued,
    Dns,
    Tcp,
    /// Reaching the proxy and opening the tunnel through it.
    Proxy,
    Tls,
    /// The HTTP request or WebSocket upgrade.
    Http,
    /// Binding a local address and port.
    Bind,
    /// A UDP datagram and its reply.
    Udp,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Dns => "dns",
            Phase::Tcp => "tcp",
            Phase::Proxy => "proxy",
            Phase::Tls => "tls",
            Phase::Http => "http",
            Phase::Bind => "bind",
            Phase::Udp => "udp",
        }
    }

    /// The failure kind of this phase running out of time.
    fn timeout_kind(self) -> FailureKind {
        match self {
            Phase::Dns => FailureKind::DnsTimeout,
            Phase::Tls => FailureKind::TlsTimeout,
            Phase::Http => FailureKind::HttpTimeout,
            Phase::Queued | Phase::Tcp | Phase::Bind => FailureKind::Timeout,
            Phase::Udp => FailureKind::UdpNoReply,
            Phase::Proxy => FailureKind::ProxyUnreachable,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a connection reached, for messages: an address (`192.0.2.7:443`), or a name through a
/// proxy (`cp.example:443 through http://proxy:3128`).
#[derive(Debug, Clone)]
pub struct Dialed {
    pub port: u16,
    /// The address, when this host chose it (not when a proxy resolves the name).
    pub ip: Option<IpAddr>,
    pub label: String,
}

/// What went wrong in one check (or at one address), and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub phase: Phase,
    pub message: String,
    pub hint: String,
}

/// The endpoint a failure is about, for messages and hints.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub host: &'a str,
    pub port: Option<u16>,
    pub ip: Option<IpAddr>,
}

impl Peer<'_> {
    fn port_text(&self) -> String {
        self.port.map_or_else(String::new, |p| format!(" port {p}"))
    }

    fn address(&self) -> String {
        match (self.ip, self.port) {
            (Some(IpAddr::V6(ip)), Some(port)) => format!("[{ip}]:{port}"),
            (Some(ip), Some(port)) => format!("{ip}:{port}"),
            (Some(ip), None) => ip.to_string(),
            (None, Some(port)) => format!("{}:{port}", self.host),
            (None, None) => self.host.to_string(),
        }
    }
}

impl Failure {
    /// A failure with the standard hint for its kind.
    pub fn new(
        kind: FailureKind,
        phase: Phase,
        message: impl Into<String>,
        peer: Peer<'_>,
    ) -> Self {
        Failure {
            kind,
            phase,
            message: message.into(),
            hint: hint(kind, phase, peer),
        }
    }
}

/// The concrete next step for each kind: what to open, fix or ask for.
fn hint(kind: FailureKind, phase: Phase, peer: Peer<'_>) -> String {
    let host = peer.host;
    let port = peer.port_text();
    let addr = peer.address();
    match kind {
        FailureKind::Nxdomain => format!(
            "The name {host} does not exist in DNS as this host sees it: check the spelling and the profile variables; if it exists publicly, ask the DNS team why the internal resolver (or a split-horizon zone) does not forward it."
        ),
        FailureKind::NoRecords => format!(
            "{host} exists but has no address of the family asked for: try without --ipv4/--ipv6, or ask the DNS team for the missing A/AAAA records."
        ),
        FailureKind::DnsTimeout => format!(
            "The DNS server did not answer for {host}: check /etc/resolv.conf (or --dns-server) and that UDP and TCP port 53 to it are open."
        ),
        FailureKind::DnsError => format!(
            "The DNS server refused or failed to resolve {host}: ask the DNS team to allow resolution of this name, or point --dns-server at a resolver that forwards it."
        ),
        FailureKind::Refused => format!(
            "Something at {addr} actively refused the connection: either nothing listens on{port} there, or a firewall rejects it. Check the service, then ask the network team to allow TCP{port} to {host}."
        ),
        FailureKind::Timeout => format!(
            "Packets to {addr} get no answer: a firewall silently drops them. Ask the network team to allow outbound TCP{port} from this host to {host}."
        ),
        FailureKind::Unreachable => format!(
            "There is no route to {addr}, or a firewall answers with ICMP unreachable: ask the network team for a route and an allow rule for TCP{port} to {host}."
        ),
        FailureKind::Reset => format!(
            "The connection to {addr} was reset after it opened: a firewall, load balancer or inspection device in the path cut it. Ask the network team to allow the full session to {host}{port}, without inspection."
        ),
        FailureKind::TlsTimeout => format!(
            "{addr} accepted the connection but did not complete a TLS handshake: check that the port serves TLS and that no device in the path holds the handshake."
        ),
        FailureKind::TlsHandshake => format!(
            "{addr} does not speak TLS as expected or aborted the handshake: check that this is the TLS port, and whether a proxy or inspection device answers instead of {host}."
        ),
        FailureKind::CertUntrusted => format!(
            "The certificate of {host} is not signed by a trusted authority: if a TLS inspection proxy re-signs traffic, ask for {host} to be exempt from inspection; for a private CA, pass its certificate with --ca-file."
        ),
        FailureKind::CertExpired => format!(
            "The certificate served by {host} has expired: renew it on the server (or whatever terminates TLS in front of it)."
        ),
        FailureKind::CertNotYetValid => format!(
            "The certificate served by {host} is not valid yet: check this host's clock (NTP), or the certificate's start date."
        ),
        FailureKind::CertNameMismatch => format!(
            "The certificate served at {addr} does not name {host}: check that the name points at the right server, or that a device in the path is not answering in its place."
        ),
        FailureKind::Deadline => format!(
            "The run's --deadline passed during the {phase} phase: raise --deadline, or lower --timeout so that each phase fails sooner."
        ),
        FailureKind::LocalError => {
            "This host refused to open the connection itself: check the open-file limit (ulimit -n), lower --concurrency, and look for a local firewall or policy.".to_string()
        }
        FailureKind::CertExpiring => format!(
            "The certificate of {host} expires soon: have it renewed before it does (or raise --cert-warn-days if this is expected)."
        ),
        FailureKind::ClientCertRejected => format!(
            "{host} refused the client certificate: pass the node's cluster certificate and key (kong.conf cluster_cert and cluster_cert_key) with --client-cert and --client-key, check that it is the one registered with this control plane and not expired, and that no proxy in the path terminates TLS."
        ),
        FailureKind::ClientCertMissing => format!(
            "{host} authenticates data plane nodes with mutual TLS: run again with --client-cert and --client-key set to the node's cluster certificate and key (kong.conf cluster_cert and cluster_cert_key) to test the full path."
        ),
        FailureKind::TlsIntercepted => format!(
            "A TLS inspection proxy or firewall re-signs traffic to {host}, which breaks mutual TLS to the control plane: ask the security team to exempt {host}{port} from TLS inspection (SSL bypass)."
        ),
        FailureKind::AlpnRejected => format!(
            "{addr} refuses the application protocols offered: check --alpn (or the endpoint's alpn), or whether a proxy answers in place of {host}."
        ),
        FailureKind::AlpnNotNegotiated => format!(
            "{addr} completed TLS without choosing an application protocol: it may not support the protocol offered, or something in the path terminates TLS in place of {host}."
        ),
        FailureKind::HttpStatus => format!(
            "{host} answered, but with a status not expected: check the path and --expect-status, and whether a proxy or load balancer answers in place of the service."
        ),
        FailureKind::HttpTimeout => format!(
            "{addr} accepted the connection but sent no HTTP response in time: check that the port serves HTTP and that nothing in the path holds requests."
        ),
        FailureKind::HttpError => format!(
            "The HTTP exchange with {addr} failed: check that the port serves HTTP (or WebSocket), and whether a proxy answers in place of {host}."
        ),
        // For the proxy kinds below `peer` is the proxy, except for denied and upstream,
        // where it is the target beyond it.
        FailureKind::ProxyUnreachable => format!(
            "This host cannot reach the proxy at {addr}: check the proxy's address (--proxy, or the variable named in the report), and ask the network team to allow TCP{port} to {host}."
        ),
        FailureKind::ProxyAuth => format!(
            "The proxy at {addr} wants credentials, or refused those given: put them in the proxy URL (http://USER:PASSWORD@{addr}, percent-encoded; Kong's proxy_server takes the same form) or pass --proxy-user, and check the account with the proxy team."
        ),
        FailureKind::ProxyDenied => format!(
            "The proxy refuses to open a tunnel to {host}{port}: ask the proxy team to allow CONNECT to {host} on{port} (in squid, the SSL_ports ACL and http_access rules)."
        ),
        FailureKind::ProxyUpstream => format!(
            "The proxy was reached but could not reach {host}{port} itself: the block is beyond the proxy. Ask the network team to allow the proxy's outbound TCP{port} to {host}, and check that the proxy resolves the name."
        ),
        FailureKind::ProxyError => format!(
            "The proxy answered in a way preflight does not expect: check that the proxy URL's scheme (http, https, socks5, socks5h) and port are right, and look up the status in the proxy's log for {host}."
        ),
        FailureKind::PortInUse => format!(
            "Another process already listens on {addr}: stop it, or move it or this service to another port (in kong.conf, proxy_listen and stream_listen)."
        ),
        FailureKind::BindDenied => format!(
            "This user may not listen on {addr}: ports below 1024 need root or the CAP_NET_BIND_SERVICE capability (or a lower net.ipv4.ip_unprivileged_port_start); or use a port above 1024 and map it."
        ),
        FailureKind::UdpRefused => format!(
            "{addr} answered the datagram with ICMP port unreachable: nothing listens on UDP{port} there, or a firewall rejects it. Check the service, then ask the network team to allow UDP{port} to {host}."
        ),
        FailureKind::UdpNoReply => format!(
            "UDP cannot prove reachability without a reply: UDP{port} on {host} is open or filtered. If the service never answers, confirm with its own logs (or run `preflight listen --udp PORT` there), and ask the network team whether UDP{port} to {host} is allowed."
        ),
    }
}

/// The time limits of one check: each phase gets `timeout`, and none goes past `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub timeout: Duration,
    pub deadline: Instant,
}

/// Why a bounded wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elapsed {
    /// The phase's own timeout, of this length, ran out.
    Timeout(Duration),
    /// The run's deadline came first.
    Deadline,
}

impl Elapsed {
    /// The failure kind for `phase` running out of time this way.
    pub fn kind(self, phase: Phase) -> FailureKind {
        match self {
            Elapsed::Timeout(_) => phase.timeout_kind(),
            Elapsed::Deadline => FailureKind::Deadline,
        }
    }

    /// The failure of `phase` running out of time while `what` (e.g. "no answer from …").
    pub fn failure(self, phase: Phase, what: &str, peer: Peer<'_>) -> Failure {
        let when = match self {
            Elapsed::Timeout(limit) => format!("within {}", humantime::format_duration(limit)),
            Elapsed::Deadline => "before the run's --deadline".to_string(),
        };
        Failure::new(self.kind(phase), phase, format!("{what} {when}"), peer)
    }
}

impl Budget {
    /// Runs `fut` for at most this phase's timeout, and not past the deadline.
    pub async fn limit<F: Future>(&self, fut: F) -> Result<F::Output, Elapsed> {
        let phase_end = Instant::now() + self.timeout;
        let (end, why) = if self.deadline < phase_end {
            (self.deadline, Elapsed::Deadline)
        } else {
            (phase_end, Elapsed::Timeout(self.timeout))
        };
        tokio::time::timeout_at(end, fut).await.map_err(|_| why)
    }
}

/// Milliseconds, rounded to a hundredth, for reports.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}
