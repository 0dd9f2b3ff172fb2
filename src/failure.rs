//! The failure contract: what can go wrong in a check (`FailureKind`, whose names are stable
//! identifiers other tools parse), where (`Phase`), and what to do about it (the hints). Each
//! kind's identifier, the phases it occurs in and its meaning (docs/failures.md's table) are
//! written once, in the `kinds!` table below; `as_str`, the serde name and JUnit's `type`
//! all read it.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// Declares `FailureKind` from one table: per kind, its doc, identifier, phases and meaning.
macro_rules! kinds {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident = $id:literal in [$($phase:ident),+], $meaning:literal;
    )+) => {
        /// The stable identifiers of what went wrong. Their serialized names are a contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum FailureKind {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $id)]
                $kind,
            )+
        }

        impl FailureKind {
            /// Every kind, in the order of docs/failures.md's table.
            pub const ALL: &[FailureKind] = &[$(FailureKind::$kind),+];

            /// The identifier: the JSON `kind`, JUnit's failure `type`, the metrics' label.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FailureKind::$kind => $id,)+
                }
            }

            /// The phases a failure of this kind can occur in.
            pub fn phases(self) -> &'static [Phase] {
                match self {
                    $(FailureKind::$kind => &[$(Phase::$phase),+],)+
                }
            }

            /// What the kind means, in a few words: docs/failures.md's table.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(FailureKind::$kind => $meaning,)+
                }
            }
        }
    };
}

kinds! {
    /// The name does not exist (NXDOMAIN).
    Nxdomain = "nxdomain" in [Dns],
        "the name does not exist";
    /// The name exists but has no address records of the family asked for.
    NoRecords = "no_records" in [Dns],
        "the name exists but has no A/AAAA record (of the family asked for)";
    /// No DNS answer within the timeout.
    DnsTimeout = "dns_timeout" in [Dns],
        "no DNS answer within the timeout";
    /// The DNS server answered with an error (SERVFAIL, REFUSED …) or could not be asked.
    DnsError = "dns_error" in [Dns],
        "the DNS server answered with an error (SERVFAIL, REFUSED …) or could not be used";
    /// A DNS filter answers the name with an unspecified address (0.0.0.0 or ::).
    DnsBlocked = "dns_blocked" in [Dns],
        "the DNS answers 0.0.0.0 or `::` for the name, as a DNS filter does for the names it blocks";
    /// The host answered the connection with a reset: nothing listens there, or a firewall rejects.
    Refused = "refused" in [Tcp, Tls],
        "the connection was refused: nothing listens, or a firewall rejects with a reset";
    /// The connection attempt got no answer: something drops the packets.
    Timeout = "timeout" in [Tcp, Tls, Udp],
        "the connection attempt got no answer: a firewall drops the packets";
    /// No route to the host or network, or an ICMP unreachable from a firewall.
    Unreachable = "unreachable" in [Tcp, Tls, Udp],
        "no route, or an ICMP unreachable from a firewall, or blocked by this host's own rules";
    /// The connection was reset after it was established.
    Reset = "reset" in [Tcp, Tls, Udp],
        "the connection was reset after it opened (by a firewall or device in the path)";
    /// The TLS handshake did not finish within the timeout.
    TlsTimeout = "tls_timeout" in [Tls],
        "the port accepted the connection but no TLS handshake completed in time";
    /// The peer does not speak TLS, or aborted the handshake.
    TlsHandshake = "tls_handshake" in [Tls],
        "the peer does not speak TLS, or aborted the handshake";
    /// The certificate chain does not lead to a trusted root.
    CertUntrusted = "cert_untrusted" in [Tls],
        "the certificate chain does not lead to a trusted root (often a TLS inspection proxy)";
    /// The certificate has expired.
    CertExpired = "cert_expired" in [Tls, File],
        "the certificate has expired";
    /// The certificate is not valid yet.
    CertNotYetValid = "cert_not_yet_valid" in [Tls, File],
        "the certificate is not valid yet (or this host's clock is wrong)";
    /// The certificate is not valid for the name asked for.
    CertNameMismatch = "cert_name_mismatch" in [Tls],
        "the certificate does not name the host";
    /// The run's `--deadline` passed before the check finished.
    Deadline = "deadline" in [Queued, Dns, Tcp, Proxy, Tls, Http, Udp],
        "the run's `--deadline` passed before the check finished";
    /// The local system refused to make the connection (out of file descriptors, a local policy).
    LocalError = "local_error" in [Tcp, Tls, Bind, Udp],
        "this host could not open the connection (out of file descriptors …)";
    /// The certificate verifies but expires within `--cert-warn-days` (a warning).
    CertExpiring = "cert_expiring" in [Tls, File],
        "warning: the certificate verifies but expires within `--cert-warn-days`";
    /// The server refused the client certificate, or required one that was not given.
    ClientCertRejected = "client_cert_rejected" in [Tls, Http],
        "the server refused the client certificate, or required one that was not given";
    /// The endpoint requires a client certificate and none was given (a warning).
    ClientCertMissing = "client_cert_missing" in [Tls],
        "warning: the profile says the endpoint requires a client certificate and none was given";
    /// The server asked for a client certificate, none was given, and it completed the
    /// handshake anyway (a warning).
    ClientCertRequested = "client_cert_requested" in [Tls],
        "warning: the server asked for a client certificate, none was given, and it let the handshake complete";
    /// The endpoint requires a client certificate, one was given, and the handshake never
    /// asked for it: something in front completes TLS itself (a warning).
    ClientCertNotRequested = "client_cert_not_requested" in [Tls],
        "warning: the profile says the endpoint requires a client certificate, one was given, and the handshake never asked for it: something in front (a load balancer, an inspection proxy) completes TLS itself";
    /// The client certificate given has expired (a warning; the server will refuse it).
    ClientCertExpired = "client_cert_expired" in [Tls],
        "warning: the client certificate given has expired, so a server that checks it refuses it";
    /// The client certificate given is not valid yet (a warning).
    ClientCertNotYetValid = "client_cert_not_yet_valid" in [Tls],
        "warning: the client certificate given is not valid yet (or this host's clock is wrong)";
    /// An inspection proxy or firewall re-signs the connection.
    TlsIntercepted = "tls_intercepted" in [Tls],
        "an inspection proxy or firewall re-signs the connection (the message names the issuer)";
    /// The server accepts none of the ALPN protocols offered.
    AlpnRejected = "alpn_rejected" in [Tls],
        "the server accepts none of the ALPN protocols offered";
    /// The server chose none of the ALPN protocols offered (a warning).
    AlpnNotNegotiated = "alpn_not_negotiated" in [Tls],
        "warning: the server chose none of the ALPN protocols offered";
    /// The HTTP status is not one expected.
    HttpStatus = "http_status" in [Http],
        "the HTTP status is not one expected (or a WebSocket upgrade was not answered 101)";
    /// No HTTP response headers within the timeout.
    HttpTimeout = "http_timeout" in [Http],
        "no HTTP response head within the timeout";
    /// The HTTP exchange failed (not HTTP, connection closed, a bad WebSocket handshake).
    HttpError = "http_error" in [Http],
        "the HTTP exchange failed: not HTTP, closed, or a bad WebSocket accept";
    /// A Kong control plane (or what answers for it) refused the data plane's WebSocket upgrade.
    UpgradeRefused = "upgrade_refused" in [Http],
        "the control plane did not accept the data plane's WebSocket upgrade on `/v1/outlet` (the status says why)";
    /// The proxy itself cannot be reached: its name does not resolve, or it refuses or drops.
    ProxyUnreachable = "proxy_unreachable" in [Proxy],
        "the proxy itself: its name does not resolve, or it refuses or drops the connection";
    /// The proxy wants credentials or refused those given (407, SOCKS authentication).
    ProxyAuth = "proxy_auth" in [Proxy],
        "the proxy wants credentials or refused those given (`407`, SOCKS5 authentication)";
    /// The proxy refuses to open the tunnel (403, a port it does not allow, a SOCKS rule).
    ProxyDenied = "proxy_denied" in [Proxy],
        "the proxy refuses the tunnel (`403`, a port it does not allow, a SOCKS5 rule)";
    /// The proxy could not reach the target (502, 503, 504, or a SOCKS host/network error).
    ProxyUpstream = "proxy_upstream" in [Proxy],
        "the proxy could not reach the target (`502`/`503`/`504`, squid's connect and DNS errors, SOCKS5 host/network errors, or no answer to CONNECT in time)";
    /// Anything else from the proxy: another status, or not a proxy at all.
    ProxyError = "proxy_error" in [Proxy],
        "anything else from the proxy (another status, TLS to an HTTPS proxy failing, not a proxy at all)";
    /// A local port check: another socket already holds the address and port.
    PortInUse = "port_in_use" in [Bind],
        "a `bind` check: another socket holds the address and port (the message names the process when `/proc` shows it)";
    /// A local port check: this user may not bind the port (below 1024 without the right).
    BindDenied = "bind_denied" in [Bind],
        "a `bind` check: this user may not bind the port (below 1024 without root or `CAP_NET_BIND_SERVICE`)";
    /// A UDP datagram drew an ICMP port unreachable: nothing listens, or a firewall rejects.
    UdpRefused = "udp_refused" in [Udp],
        "a `udp` check drew an ICMP port unreachable: nothing listens, or a firewall rejects";
    /// A UDP datagram drew no reply: the port is open or filtered (a warning).
    UdpNoReply = "udp_no_reply" in [Udp],
        "warning: a `udp` check drew no reply; the port is open or filtered";
    /// A file the node's kong.conf names cannot be read.
    FileUnreadable = "file_unreadable" in [File],
        "a file kong.conf names cannot be read: it does not exist, or this user may not read it";
    /// A file the node's kong.conf names does not hold what it should.
    FileInvalid = "file_invalid" in [File],
        "a file kong.conf names does not hold what it should: no PEM certificate, or no private key Kong can use";
    /// `cluster_cert_key` is not the private key of `cluster_cert`.
    KeyMismatch = "key_mismatch" in [File],
        "`cluster_cert_key` is not the private key of `cluster_cert`";
    /// The node's certificate may not be used to authenticate a TLS client.
    CertUsage = "cert_usage" in [File],
        "the node's certificate has an extended key usage without TLS client authentication (`clientAuth`)";
    /// kong.conf holds a setting Kong refuses at start.
    ConfInvalid = "conf_invalid" in [File],
        "kong.conf holds a setting Kong refuses at start (the message gives Kong's words)";
    /// Full-size packets are lost on the path and the ICMP that would say so does not return.
    PathMtu = "path_mtu" in [Tls, Http],
        "the connection opened but stalled; with smaller segments it completed: full-size packets are lost on the path (a path-MTU black hole)";
    /// A firewall refuses TLS to the server name while the server answers without it.
    SniFiltered = "sni_filtered" in [Tls],
        "a firewall refuses TLS to the server name (URL or SNI filtering); without the name the server answers";
    /// This host's clock and the server's differ by more than a minute (a warning).
    ClockSkew = "clock_skew" in [Http],
        "warning: this host's clock and the server's (its `Date` header) differ by more than 60 seconds";
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares `Cause`'s refinements from one table: per cause, its doc, identifier, the kinds it
/// refines and its meaning (the table of causes in docs/failures.md).
macro_rules! causes {
    ($(
        $(#[doc = $doc:literal])*
        $cause:ident = $id:literal of [$($kind:ident),+], $meaning:literal;
    )+) => {
        /// Why a failure happened, finer than its kind. It is decided once, where the
        /// evidence is seen (an error kind, an alert, a status, a flag), never from a message's
        /// words. `General(kind)`, serialized as the kind's own identifier, is the kind's
        /// general case: nothing finer is known. The serialized names are a contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Cause {
            /// The kind's general case.
            General(FailureKind),
            $(
                $(#[doc = $doc])*
                $cause,
            )+
        }

        impl Cause {
            /// Every cause finer than its kind, in the order of docs/failures.md's table.
            pub const REFINED: &[Cause] = &[$(Cause::$cause),+];

            /// The identifier: the JSON error's `cause`.
            pub fn as_str(self) -> &'static str {
                match self {
                    Cause::General(kind) => kind.as_str(),
                    $(Cause::$cause => $id,)+
                }
            }

            /// Whether this cause can explain a failure of `kind`.
            pub fn refines(self, kind: FailureKind) -> bool {
                match self {
                    Cause::General(general) => general == kind,
                    $(Cause::$cause => [$(FailureKind::$kind),+].contains(&kind),)+
                }
            }

            /// What the cause means, in a few words: docs/failures.md's table.
            pub fn meaning(self) -> &'static str {
                match self {
                    Cause::General(kind) => kind.meaning(),
                    $(Cause::$cause => $meaning,)+
                }
            }
        }
    };
}

causes! {
    /// No DNS server answered at all (none reachable, or all silent).
    DnsNoAnswer = "dns_no_answer" of [DnsError],
        "no DNS server answered the query at all: none could be reached, or every one stayed silent";
    /// This host's own firewall rules refused the connection before it left.
    BlockedHere = "blocked_by_this_host" of [Refused, Unreachable, Timeout, LocalError],
        "this host's own firewall rules (nftables, iptables) refused the packet before it left";
    /// This host has no route toward the address: nothing was sent.
    NoRouteHere = "no_route_on_this_host" of [Unreachable],
        "this host has no route toward the address (no default route, or no address of that family: an IPv6 name on a host without IPv6), so nothing was sent";
    /// A bind check named an address this host does not have.
    AddressNotLocal = "address_not_local" of [LocalError],
        "a `bind` check named an address this host does not have";
    /// The proxy's own name does not resolve.
    ProxyNameUnresolved = "proxy_name_unresolved" of [ProxyUnreachable],
        "the proxy's own host name does not resolve on this host";
    /// The proxy speaks another protocol than its URL's scheme says.
    ProxySchemeMismatch = "proxy_scheme_mismatch" of [ProxyError],
        "the proxy speaks another protocol than the proxy URL's scheme says (an HTTP proxy given as `socks5://`, or the reverse)";
    /// The peer closed the connection in the middle of the TLS handshake.
    ClosedDuringHandshake = "closed_during_handshake" of [TlsHandshake, ProxyError],
        "the peer closed the connection in the middle of the handshake, without an alert";
    /// The peer sent a handshake message larger than a TLS client buffers.
    HandshakeTooLarge = "handshake_message_too_large" of [TlsHandshake],
        "the server sent a handshake message larger than a TLS client accepts (64 KiB): a broken server, or not a TLS server";
    /// The server name the check sends was set on purpose and the certificate does not carry it.
    ServerNameSet = "server_name_set" of [CertNameMismatch],
        "the certificate does not carry the server name set with `--server-name` (or kong.conf's `cluster_server_name`)";
    /// The certificate is self-signed and no store trusts it.
    SelfSigned = "self_signed" of [CertUntrusted],
        "the server's certificate is self-signed, and no store here trusts it";
    /// The server sends its certificate alone, and its issuer is in no store.
    ChainIncomplete = "chain_incomplete" of [CertUntrusted],
        "the server sends no intermediate certificate, and its issuer is in no store here (a missing intermediate, or a private CA)";
    /// A shared-mode control plane presents another certificate than the node's own.
    NotPinnedCertificate = "not_pinned_certificate" of [CertUntrusted],
        "with `cluster_mtls = shared`, the control plane presents a certificate other than the node's own `cluster_cert`";
    /// A Kong control plane closed the connection after TLS without answering the upgrade.
    ClosedWithoutAnswer = "closed_without_answer" of [HttpError],
        "after TLS the control plane closed without answering the upgrade: how Kong refuses a data plane's certificate";
    /// Ctrl-C, SIGTERM or SIGHUP stopped the run before the check finished.
    Interrupted = "interrupted" of [Deadline],
        "the run was stopped (Ctrl-C, SIGTERM, SIGHUP) before the check finished";
    /// The control plane refused the upgrade as unauthorized (401 or 403).
    UpgradeUnauthorized = "upgrade_unauthorized" of [UpgradeRefused],
        "the control plane answered the upgrade 401 or 403: it does not accept this node's certificate";
    /// What answered has no `/v1/outlet` (404).
    NoOutlet = "no_outlet" of [UpgradeRefused],
        "what answered has no `/v1/outlet` (404): not a control plane's cluster listener, or a proxy rewrites the path";
    /// Something between does not pass WebSocket upgrades (400 or 426).
    UpgradeNotPassed = "upgrade_not_passed" of [UpgradeRefused],
        "a proxy or load balancer between does not pass the WebSocket upgrade (400 or 426)";
    /// The edge in front of the control plane answered for it (502, 503, 504).
    EdgeWithoutBackend = "edge_without_backend" of [UpgradeRefused],
        "the edge in front of the control plane answered 502, 503 or 504: it could not reach the control plane";
    /// A TLS inspection proxy re-signs the connection of a node that pins its control plane.
    InterceptedPinned = "intercepted_pinned" of [TlsIntercepted],
        "a TLS inspection proxy re-signs the connection of a node whose `cluster_mtls = shared` pins the control plane's own certificate";
    /// Kong's own route fails, and a proxy Kong does not use reaches the endpoint.
    ReachedThroughProxy = "reached_through_proxy" of [Timeout, Refused, Unreachable, Reset, DnsError, Nxdomain, NoRecords, TlsHandshake, TlsTimeout, HttpError, HttpTimeout, UpgradeRefused],
        "Kong's own route fails, but the endpoint is reached through a proxy Kong does not use (kong.conf's `proxy_server` with `cluster_use_proxy = off`, `--proxy`, the environment's proxy): one kong.conf setting makes it Kong's route";
    /// The chain verifies only against a store the node's Kong does not use.
    TrustedOutsideKong = "trusted_outside_kong" of [CertUntrusted],
        "the chain verifies only against a store the node's Kong does not use (`--ca-file`, or the bundled public roots): kong.conf's `lua_ssl_trusted_certificate` lacks its CA";
    /// The name has addresses only of a family the node's Kong does not ask for.
    KongAsksOtherFamily = "kong_asks_other_family" of [NoRecords],
        "the name has addresses only of a family the node's Kong does not ask for: `dns_order` (default `LAST,SRV,A,CNAME`) or, with `new_dns_client`, `resolver_family` (default `A,SRV`) has no AAAA";
    /// The control plane accepted the upgrade, then closed the WebSocket at once.
    ClosedAfterUpgrade = "closed_after_upgrade" of [UpgradeRefused],
        "the control plane accepted the upgrade (101), then closed the WebSocket at once with a close frame (its code and reason are quoted: 1008 for a data plane it refuses, such as an incompatible version)";
    /// The handshake never asked for the node's certificate, then the upgrade failed.
    ClientCertNotAsked = "client_cert_not_asked" of [UpgradeRefused, HttpError],
        "the handshake never asked for the node's certificate, then the upgrade failed: something in front of the control plane (a load balancer, an inspection proxy) completes TLS itself, so the node's mutual TLS never reaches Kong";
    /// The proxy wants credentials and none were given.
    CredentialsMissing = "proxy_credentials_missing" of [ProxyAuth],
        "the proxy requires credentials and none were given";
    /// The proxy refused the credentials given.
    CredentialsRefused = "proxy_credentials_refused" of [ProxyAuth],
        "the proxy refused the credentials given (a wrong user or password, a locked account, or an account not allowed out)";
    /// The proxy offers only schemes other than Basic (NTLM, Negotiate).
    BasicNotOffered = "proxy_basic_not_offered" of [ProxyAuth],
        "the proxy offers only sign-in schemes other than Basic (NTLM or Negotiate, as Active Directory proxies do), which neither preflight nor Kong (`proxy_server` sends Basic only) can answer";
    /// The proxy opened the tunnel with a 2xx other than 200, which Kong's client refuses.
    ConnectNot200 = "connect_not_200" of [ProxyError],
        "the proxy answered CONNECT with a 2xx other than 200: Kong's WebSocket client opens a tunnel only on 200";
    /// The control plane does not speak Kong's RPC protocol on `/v2/outlet`.
    NoRpc = "no_rpc" of [UpgradeRefused],
        "with `cluster_rpc = on`, the control plane does not accept Kong's RPC protocol (`kong.meta.v1` on `/v2/outlet`): the node goes without RPC, and with `cluster_rpc_sync = on` without configuration";
    /// The host's search list turned the name into a longer one, whose address fails.
    SearchListExpansion = "search_list_expansion" of [Timeout, Refused, Unreachable, Reset, TlsHandshake, TlsTimeout, TlsIntercepted, CertUntrusted, CertNameMismatch, CertExpired, HttpError, HttpStatus, HttpTimeout, UpgradeRefused],
        "the host's resolver answered for the name with a search domain appended (`search` and `ndots` in /etc/resolv.conf), and that address fails: the name as given was never asked";
    /// The name's `/etc/hosts` pin fails where DNS's address works.
    StaleHostsPin = "stale_hosts_pin" of [Timeout, Refused, Unreachable, Reset, TlsHandshake, TlsTimeout, TlsIntercepted, CertUntrusted, CertNameMismatch, CertExpired, HttpError, HttpStatus, HttpTimeout, UpgradeRefused],
        "the name is pinned in /etc/hosts to an address that fails, while the address DNS gives works: the pin is stale";
    /// A truncated UDP answer, and TCP port 53 to the server is blocked.
    DnsTcpBlocked = "dns_tcp_blocked" of [DnsTimeout, DnsError],
        "the DNS answer is too large for UDP (truncated), and TCP port 53 to the server, which such an answer needs, is blocked";
    /// A CA certificate the server sends with its own has expired, not the server's.
    IntermediateExpired = "intermediate_expired" of [CertExpired],
        "a CA certificate the server sends with its own (an intermediate, or a cross-signed root) has expired; the server's own certificate is in date";
    /// The server sends an intermediate that did not issue its certificate.
    WrongIntermediate = "wrong_intermediate" of [CertUntrusted],
        "the server sends an intermediate certificate, but not the one that issued its certificate (an old chain file, or another CA's)";
    /// A certificate of the chain is signed with SHA-1 (or MD5).
    WeakSignature = "weak_signature" of [CertUntrusted],
        "a certificate of the chain is signed with SHA-1 (or MD5), which TLS clients refuse";
    /// A certificate of the chain has an RSA key under 2048 bits.
    WeakKey = "weak_key" of [CertUntrusted],
        "a certificate of the chain has an RSA key under 2048 bits, which TLS clients refuse";
    /// The certificate writes the IP address connected to as a DNS name.
    IpAsDnsName = "ip_as_dns_name" of [CertNameMismatch],
        "the certificate carries the address connected to as a DNS name, not as an IP address entry, which is the only kind a client compares with an address";
    /// The server refused a client certificate whose extended key usage lacks clientAuth.
    ClientCertNotForClients = "client_cert_not_for_clients" of [ClientCertRejected],
        "the server refused the client certificate given, whose extended key usage lacks TLS client authentication (`clientAuth`): a certificate made for servers";
    /// The proxy closes the tunnel after reading the ClientHello's server name.
    ProxyFiltersName = "proxy_filters_server_name" of [SniFiltered],
        "the proxy opened the tunnel (CONNECT 200), read the server name of the ClientHello and closed it, while the same tunnel without the name reaches the server: the proxy's SNI or URL-category policy";
    /// The target refused the proxy's own connection (squid's ERR_CONNECT_FAIL 111).
    ProxyTargetRefused = "proxy_target_refused" of [ProxyUpstream],
        "the proxy reached the target's address, which refused its connection (squid's `ERR_CONNECT_FAIL 111`): nothing listens there, or a firewall beyond the proxy rejects it";
    /// The proxy's own connection to the target timed out (squid's ERR_CONNECT_FAIL 110).
    ProxyTargetSilent = "proxy_target_silent" of [ProxyUpstream],
        "the proxy's own connection to the target got no answer (squid's `ERR_CONNECT_FAIL 110`, or any proxy's 504): a firewall beyond the proxy drops it";
    /// The proxy has no route to the target (squid's ERR_CONNECT_FAIL 101 or 113).
    ProxyTargetUnreachable = "proxy_target_unreachable" of [ProxyUpstream],
        "the proxy has no route to the target (squid's `ERR_CONNECT_FAIL 101` or `113`)";
    /// The proxy cannot resolve the target's name (squid's ERR_DNS_FAIL).
    ProxyCannotResolve = "proxy_cannot_resolve" of [ProxyUpstream],
        "the proxy cannot resolve the target's name (squid's `ERR_DNS_FAIL`)";
    /// kong.conf lists more trust files than preflight reads (a warning).
    TrustListCut = "trust_list_cut" of [FileInvalid],
        "warning: `lua_ssl_trusted_certificate` lists more files (or bytes) than preflight reads; the rest were not judged";
}

/// Whether a failure fails its check or only warns (a warning fails the run with `--strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The check is reached; the failure is something to know (a warning). `--strict` fails the run on it.
    Warn,
    /// The check fails.
    Fail,
}

impl FailureKind {
    /// A kind's severity when its cause says nothing finer: the kinds the table calls warnings.
    pub fn severity(self) -> Severity {
        use FailureKind as K;
        match self {
            K::CertExpiring
            | K::ClientCertMissing
            | K::ClientCertRequested
            | K::ClientCertNotRequested
            | K::ClientCertExpired
            | K::ClientCertNotYetValid
            | K::AlpnNotNegotiated
            | K::UdpNoReply
            | K::ClockSkew => Severity::Warn,
            _ => Severity::Fail,
        }
    }
}

impl Cause {
    /// The cause of a refused cluster upgrade, by its status.
    pub fn of_upgrade_status(status: u16) -> Cause {
        match status {
            401 | 403 => Cause::UpgradeUnauthorized,
            404 => Cause::NoOutlet,
            400 | 426 => Cause::UpgradeNotPassed,
            502..=504 => Cause::EdgeWithoutBackend,
            _ => Cause::General(FailureKind::UpgradeRefused),
        }
    }

    /// The severity of a failure of `kind` with this cause: the kind's, unless the cause is a
    /// warning of its own.
    pub fn severity(self, kind: FailureKind) -> Severity {
        match self {
            Cause::TrustListCut => Severity::Warn,
            _ => kind.severity(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Cause {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Where in a check a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for a free connection slot (`--concurrency`).
    Queued,
    /// Resolving the name.
    Dns,
    /// Opening the TCP connection.
    Tcp,
    /// Reaching the proxy and opening the tunnel through it.
    Proxy,
    /// The TLS handshake, and judging the certificate.
    Tls,
    /// The HTTP request or WebSocket upgrade.
    Http,
    /// Binding a local address and port.
    Bind,
    /// A UDP datagram and its reply.
    Udp,
    /// Reading a file the node's configuration names, before any connection.
    File,
}

impl Phase {
    /// The word the report uses for the phase.
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
            Phase::File => "file",
        }
    }

    /// The failure kind of this phase running out of time.
    pub(crate) fn timeout_kind(self) -> FailureKind {
        match self {
            Phase::Dns => FailureKind::DnsTimeout,
            Phase::Tls => FailureKind::TlsTimeout,
            Phase::Http => FailureKind::HttpTimeout,
            Phase::Queued | Phase::Tcp | Phase::Bind | Phase::File => FailureKind::Timeout,
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

/// What went wrong in one check (or at one address), and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What went wrong: the stable identifier other tools read.
    pub kind: FailureKind,
    /// Why, finer than the kind (`General(kind)` when nothing finer is known).
    pub cause: Cause,
    /// The step it went wrong in.
    pub phase: Phase,
    /// What happened, in a sentence, with the facts seen.
    pub message: String,
    /// What to do or ask for.
    pub hint: String,
    /// This host's own address toward the destination (the one its route uses), for a
    /// connect that a firewall may have stopped: what a rule that allows by source must name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<IpAddr>,
    /// The address a TCP connect to timed out, when it was not the check's own (the proxy's):
    /// what a trace of the hops goes to. Not part of the report.
    #[serde(skip)]
    pub(crate) timed_out_at: Option<std::net::SocketAddr>,
}

/// The endpoint a failure is about, for messages and hints.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// The host as the user named it.
    pub host: &'a str,
    /// The port, when the check has one.
    pub port: Option<u16>,
    /// The address connected to, when one was.
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
    /// Whether this failure fails its check or only warns: data, from its kind and cause.
    pub fn severity(&self) -> Severity {
        self.cause.severity(self.kind)
    }

    /// The same failure with a cause finer than its kind (one that refines it), and that
    /// cause's hint from the table `cause_hint` when it has one of its own.
    pub fn because(mut self, cause: Cause, peer: Peer<'_>, facts: Facts<'_>) -> Self {
        debug_assert!(
            cause.refines(self.kind),
            "{cause} does not refine {}",
            self.kind
        );
        self.cause = cause;
        if let Some(hint) = cause_hint(cause, self.phase, peer, facts) {
            self.hint = hint;
        }
        self
    }

    /// The same failure, saying which of this host's addresses the connection left from
    /// (`source`, the one its route toward the destination uses), in the message and the
    /// hint: a firewall that allows by source must name it.
    pub fn sent_from(mut self, source: IpAddr) -> Self {
        self.source_address = Some(source);
        self.message = format!("{}, sent from this host's {source}", self.message);
        self.hint = format!(
            "{} A rule that allows by source must name {source}, the address this host sends from toward it (unless a NAT gateway or proxy in between presents its own address).",
            self.hint
        );
        self
    }

    /// The same failure with a hint for a cause more particular than its kind's.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// A failure with the standard hint for its kind.
    pub fn new(
        kind: FailureKind,
        phase: Phase,
        message: impl Into<String>,
        peer: Peer<'_>,
    ) -> Self {
        Failure {
            kind,
            cause: Cause::General(kind),
            phase,
            message: message.into(),
            hint: hint(kind, phase, peer),
            source_address: None,
            timed_out_at: None,
        }
    }
}

/// What a hint may name beyond the endpoint, seen where the failure is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The proxy: its URL as shown (credentials cut), or its host name.
    pub proxy: Option<&'a str>,
    /// The server name the check sends, set on purpose.
    pub server_name: Option<&'a str>,
    /// The issuer of the certificate the server sent.
    pub issuer: Option<&'a str>,
    /// The kong.conf change that fixes it, as seen where the failure is.
    pub fix: Option<&'a str>,
}

/// The next step for a cause finer than its kind; `None` where the kind's hint says it.
fn cause_hint(cause: Cause, phase: Phase, peer: Peer<'_>, facts: Facts<'_>) -> Option<String> {
    let host = peer.host;
    let addr = peer.address();
    let proxy = facts.proxy.unwrap_or("the proxy");
    Some(match cause {
        // The kind's hint says it; a kong.conf finding writes its own, naming the setting.
        Cause::General(_)
        | Cause::DnsNoAnswer
        | Cause::ClosedDuringHandshake
        | Cause::TrustListCut => return None,
        Cause::BlockedHere => {
            let proto = match phase {
                Phase::Udp => "UDP",
                _ => "TCP",
            };
            format!(
                "This host's own firewall or security policy (nftables or iptables output rules, a cgroup or SELinux egress rule) refuses to send to {addr}: allow outbound {proto}{} to it in this host's rules (nft list ruleset shows them); the network team cannot open this one.",
                peer.port_text()
            )
        }
        Cause::NoRouteHere => match peer.ip {
            Some(std::net::IpAddr::V6(ip)) => format!(
                "This host has no IPv6 route (ip -6 route shows no default route, or it has no global IPv6 address), so it cannot reach {ip}: give it IPv6 connectivity, or reach {host} over IPv4 (--ipv4; a Kong node asks for A records unless dns_order lists AAAA). Nothing on the network dropped it."
            ),
            _ => format!(
                "This host has no route toward {addr} (ip route get shows it): add a default route, or a route for that network. Nothing on the network dropped it."
            ),
        },
        Cause::AddressNotLocal => format!(
            "{host} is not an address of this host: a bind check takes one of this host's addresses (ip -brief address lists them), or 0.0.0.0 or [::] for all of them; fix the address in the target, or in kong.conf's proxy_listen or stream_listen."
        ),
        Cause::ProxyNameUnresolved => format!(
            "This host cannot resolve the proxy's name {proxy}: check the proxy URL's host (--proxy, or the variable or kong.conf setting named in the report) and this host's DNS (/etc/resolv.conf, or --dns-server); if the name is right, ask the DNS team why it does not resolve here."
        ),
        Cause::ProxySchemeMismatch => format!(
            "Fix the scheme of the proxy URL {proxy} (--proxy, or the variable or kong.conf setting named in the report): http:// for an HTTP proxy (squid, usually port 3128), socks5:// or socks5h:// for a SOCKS5 proxy (usually 1080), https:// for an HTTP proxy reached over TLS."
        ),
        Cause::ServerNameSet => {
            let wanted = facts.server_name.unwrap_or(host);
            format!(
                "{wanted} is the server name this check sends and verifies (--server-name, or kong.conf's cluster_server_name): set it to a name the certificate carries (the message lists them), or reach the server that holds a certificate for {wanted}."
            )
        }
        Cause::SelfSigned => format!(
            "If this self-signed certificate is the one {host} should present, pass it with --ca-file (as with curl --cacert); otherwise ask whoever runs {host} for a certificate from a trusted CA, and check that nothing in the path answers in its place."
        ),
        Cause::ChainIncomplete => {
            let issuer = facts.issuer.unwrap_or("its issuer");
            format!(
                "Configure {host} to send its full chain: its certificate followed by its CA's intermediate certificates (in nginx, a full-chain file in ssl_certificate). If {issuer} is a private root CA, pass its certificate with --ca-file."
            )
        }
        Cause::NotPinnedCertificate => format!(
            "Give this node the control plane's own cluster_cert and cluster_cert_key (kong hybrid gen_cert makes the pair once, for every node), or, if the control plane's certificate comes from a CA, set cluster_mtls = pki and cluster_ca_cert on both. If nothing else should answer at {host}, check that no device in the path answers in the control plane's place."
        ),
        Cause::HandshakeTooLarge => format!(
            "Check what answers at {addr} (openssl s_client -connect {addr} -showcerts): if it is the server you expect, have it send a shorter handshake (its certificate and intermediates only, no root, no unrelated certificates); if it is not, fix the address or the port."
        ),
        Cause::ClosedWithoutAnswer => silent_close_hint(&addr),
        Cause::ClientCertNotAsked => format!(
            "{addr} completed TLS without asking for the node's certificate (a Kong control plane always asks), so a device in front of it terminates TLS and the certificate never reaches Kong: have the load balancer pass TLS through to the control plane's cluster listener (layer 4, or SNI routing), and exempt it from TLS inspection."
        ),
        Cause::CredentialsMissing => format!(
            "The proxy {proxy} wants credentials: put them in the proxy URL (http://USER:PASSWORD@HOST:PORT, percent-encoded; kong.conf's proxy_server takes the same form) or pass --proxy-user USER:PASSWORD; the proxy team gives the account."
        ),
        Cause::CredentialsRefused => format!(
            "The proxy {proxy} refused the user and password given: check them (a password with @, :, / or # must be percent-encoded in the URL), and ask the proxy team whether the account is locked or not allowed out to this destination."
        ),
        Cause::BasicNotOffered => {
            let offered = facts.fix.unwrap_or("NTLM or Negotiate");
            format!(
                "The proxy {proxy} accepts only {offered} sign-in, which preflight cannot answer and Kong cannot either (its proxy_server sends Basic credentials only): ask the proxy team for an exception for these destinations from this host's address (or for Basic on a port of the proxy), or run a local authenticating relay (such as cntlm or px) and point --proxy and kong.conf's proxy_server at it."
            )
        }
        Cause::ConnectNot200 => format!(
            "Ask the proxy team to answer CONNECT to {host}{} with 200 Connection established, as most proxies do: Kong's client refuses any other status; or reach the control plane without this proxy (cluster_use_proxy = off, where direct egress is allowed).",
            peer.port_text()
        ),
        Cause::ReachedThroughProxy => {
            let fix = facts.fix.unwrap_or("set proxy_server and cluster_use_proxy = on in kong.conf");
            format!(
                "The node's Kong cannot reach {addr} on its own route, but {proxy} does: {fix}. Otherwise ask the network team to allow {host} on port {} from this host.",
                peer.port.unwrap_or(443)
            )
        }
        Cause::TrustedOutsideKong => {
            let fix = facts.fix.unwrap_or("add the CA's file to lua_ssl_trusted_certificate in kong.conf (for example lua_ssl_trusted_certificate = system,/etc/kong/ca.pem)");
            format!(
                "Kong verifies {host} only against kong.conf's trust (lua_ssl_trusted_certificate, and cluster_ca_cert in pki mode), which lacks the CA that signs it: {fix}."
            )
        }
        Cause::KongAsksOtherFamily => {
            let fix = facts.fix.unwrap_or("add AAAA to dns_order in kong.conf");
            format!(
                "The node's Kong asks only for the record types its settings list, and {host} has none of them: {fix}, or have an A record published for {host}."
            )
        }
        Cause::ClosedAfterUpgrade => match facts.fix {
            Some(fix) => format!("The control plane at {addr} accepted the upgrade, then closed: {fix}."),
            None => format!(
                "The control plane at {addr} refuses this data plane after the upgrade: read the close reason in the message, and the control plane's log for the same time."
            ),
        },
        Cause::NoRpc => format!(
            "{addr} does not speak Kong's RPC protocol on /v2/outlet: upgrade the control plane to a version with RPC (and incremental sync), or set cluster_rpc = off (and cluster_rpc_sync = off) in kong.conf so the node uses /v1/outlet alone; a proxy or load balancer must pass the Sec-WebSocket-Protocol header."
        ),
        Cause::UpgradeUnauthorized => format!(
            "The control plane at {addr} does not accept this node's certificate: check that cluster_cert is the certificate registered with this control plane (for Konnect, the data plane certificate of this control plane group, in the right region), and that it has not been revoked or replaced."
        ),
        Cause::NoOutlet => format!(
            "{addr} has no /v1/outlet: it is not a Kong control plane's cluster listener (cluster_listen, port 8005 by default; for Konnect, the cp0 host on 443), or a proxy rewrites the path."
        ),
        Cause::UpgradeNotPassed => format!(
            "Something between this node and {addr} (a proxy or load balancer) does not pass WebSocket upgrades: ask for the Upgrade and Connection headers to be passed, or for a TCP (layer 4) passthrough to the control plane."
        ),
        Cause::EdgeWithoutBackend => format!(
            "The edge in front of {addr} answered for the control plane, which it could not reach (no backend): check the control plane's health and the load balancer's targets."
        ),
        Cause::InterceptedPinned => format!(
            "{} With kong.conf's cluster_mtls = shared the node accepts only its own cluster_cert from the control plane; cluster_mtls = pki would not get through an inspecting proxy either.",
            intercepted_hint(host, &peer.port_text())
        ),
        Cause::IntermediateExpired => format!(
            "{host} sends an expired CA certificate with its own (named in the message): its operator must replace it in the server's chain file with the CA's current intermediate; where it is an old cross-signed root, removing it from the chain, or adding the current root to the store (--ca-file, or this host's store), also works."
        ),
        Cause::WrongIntermediate => {
            let issuer = facts.issuer.unwrap_or("its CA");
            format!(
                "{host} sends an intermediate that did not issue its certificate: its operator must send the intermediate certificate of {issuer} after its own (in nginx, the full-chain file that came with the current certificate); adding the root to a store does not help while the link between is missing."
            )
        }
        Cause::WeakSignature => "Have the certificate named in the message reissued with SHA-256 (or stronger) signatures: every current TLS client refuses SHA-1, the node's Kong (OpenSSL) included; no setting on this host should lower that.".to_string(),
        Cause::WeakKey => "Have the certificate named in the message reissued with an RSA key of 2048 bits or more (or an ECDSA P-256 key): current TLS clients, the node's Kong (OpenSSL) included, refuse shorter RSA keys.".to_string(),
        Cause::IpAsDnsName => format!(
            "Connect by a DNS name the certificate carries, or have it reissued with {host} as an IP address entry (subjectAltName = IP:{host}, not DNS:{host})."
        ),
        Cause::ClientCertNotForClients => "Use a client certificate whose extended key usage includes TLS client authentication (extendedKeyUsage = clientAuth), or has none at all, as kong hybrid gen_cert makes it: a server certificate (serverAuth only) is refused by every server that checks the purpose.".to_string(),
        Cause::ProxyFiltersName => format!(
            "Ask the proxy team to allow TLS to {host}{} through {proxy}: its policy refuses the server name (for squid, an ssl_bump splice rule for the name; for an appliance, its URL category or allow list). A Kong node sends the same server name, so it meets the same refusal.",
            peer.port_text()
        ),
        Cause::ProxyTargetRefused => format!(
            "The proxy {proxy} reached {addr}, which refused it: check that the service listens there, and ask the network team whether a firewall beyond the proxy rejects the proxy's connections to {host}{}.",
            peer.port_text()
        ),
        Cause::ProxyTargetSilent => format!(
            "The proxy {proxy} got no answer from {addr}: ask the network team to allow the proxy's own outbound address to {host}{} (the firewall beyond the proxy sees the proxy, not this host).",
            peer.port_text()
        ),
        Cause::ProxyTargetUnreachable => format!(
            "The proxy {proxy} has no route to {host}: ask the proxy team for a route from the proxy to it (or for the proxy to use its upstream proxy for it)."
        ),
        Cause::ProxyCannotResolve => format!(
            "The proxy {proxy} cannot resolve {host}: check the name, and ask the proxy team whether its DNS (or its upstream's) answers for {host}."
        ),
        Cause::SearchListExpansion => {
            let fix = facts.fix.unwrap_or("lower ndots in /etc/resolv.conf");
            format!(
                "This host's resolver asked for {host} with a search domain appended, and DNS answered that longer name (often a wildcard record in the company's zone): {fix}; or ask the DNS team to remove the wildcard that answers it."
            )
        }
        Cause::StaleHostsPin => {
            let fix = facts.fix.unwrap_or("remove or update the name's line in /etc/hosts");
            format!("The pin of {host} in /etc/hosts is out of date: {fix}.")
        }
        Cause::DnsTcpBlocked => {
            let server = facts.proxy.unwrap_or("the DNS server");
            format!(
                "The answer for {host} does not fit in a UDP packet, so it must come over TCP: ask the network team to allow TCP port 53 from this host to {server} (DNS needs both UDP and TCP port 53), or have the name's answer made smaller (fewer records)."
            )
        }
        Cause::Interrupted => "The run was stopped before this check finished, so it says nothing about the endpoint: run again and let it finish (to bound a run, give --deadline instead of stopping it).".to_string(),
    })
}

/// What to ask for when something re-signs TLS: an exemption for the host and port connected
/// to (not the server name, which may be `kong_clustering`).
fn intercepted_hint(target: &str, port: &str) -> String {
    format!(
        "A TLS inspection proxy or firewall re-signs traffic to {target}{port}: ask the security team to exempt {target}{port} from TLS inspection (SSL bypass); mutual TLS to a control plane cannot pass through one."
    )
}

/// What a Kong control plane's silent close means, for the check and for `explain`.
pub(crate) fn silent_close_hint(authority: &str) -> String {
    format!(
        "A Kong control plane closes the connection without an answer when it does not accept the data plane's certificate: with cluster_mtls = shared, cluster_cert must be the control plane's own certificate; with cluster_ocsp on, a revoked certificate is refused too. The error.log of the control plane at {authority} says which (\"data plane presented incorrect client certificate\", \"data plane client certificate was revoked\")."
    )
}

/// The concrete next step for each kind: what to open, fix or ask for.
fn hint(kind: FailureKind, phase: Phase, peer: Peer<'_>) -> String {
    let host = peer.host;
    let port = peer.port_text();
    let on_port = match peer.port {
        Some(_) => format!(" on{port}"),
        None => String::new(),
    };
    let addr = peer.address();
    // The transport the network team is asked to allow.
    let proto = match phase {
        Phase::Udp => "UDP",
        _ => "TCP",
    };
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
        FailureKind::DnsBlocked => format!(
            "A DNS filter (Pi-hole, an RPZ policy, a secure web gateway) answers for {host} with an address that leads nowhere: ask the team that runs it to allow {host}; if this host should not use that filter, point /etc/resolv.conf (or --dns-server) at the resolver it should use."
        ),
        FailureKind::Refused => format!(
            "Something at {addr} actively refused the connection: either nothing listens{on_port} there, or a firewall rejects it. Check the service, then ask the network team to allow {proto}{port} to {host}."
        ),
        FailureKind::Timeout => format!(
            "Packets to {addr} get no answer: a firewall silently drops them. Ask the network team to allow outbound {proto}{port} from this host to {host}."
        ),
        FailureKind::Unreachable => format!(
            "There is no route to {addr}, or a firewall answers with ICMP unreachable: ask the network team for a route and an allow rule for {proto}{port} to {host}."
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
            "The certificate of {host} expires soon: have it renewed before it does. If renewal this close to expiry is expected (short-lived certificates), lower --cert-warn-days below the days left."
        ),
        FailureKind::ClientCertRejected => format!(
            "{host} refused the client certificate: pass the node's cluster certificate and key (kong.conf cluster_cert and cluster_cert_key) with --client-cert and --client-key, check that it is the one registered with this control plane and not expired, and that no proxy in the path terminates TLS."
        ),
        FailureKind::ClientCertMissing => format!(
            "{host} authenticates data plane nodes with mutual TLS: run again with --client-cert and --client-key set to the node's cluster certificate and key (kong.conf cluster_cert and cluster_cert_key) to test the full path."
        ),
        FailureKind::ClientCertRequested => format!(
            "{host} asked for a client certificate and accepted the connection without one: if the service needs mutual TLS (a control plane does), run again with --client-cert and --client-key to test the full path."
        ),
        FailureKind::ClientCertNotRequested => format!(
            "{addr} completed TLS without asking for the client certificate the service requires, so a device in front of it (a load balancer, a TLS inspection proxy) terminates TLS and the certificate never reaches the service: have it pass TLS through to {host} (layer 4, or SNI routing), and exempt it from inspection."
        ),
        FailureKind::ClientCertExpired => {
            "The client certificate given (--client-cert, or kong.conf cluster_cert) has expired: issue a new certificate for this node (for Konnect, a new data plane certificate in the Gateway Manager) and run again with it.".to_string()
        }
        FailureKind::ClientCertNotYetValid => {
            "The client certificate given (--client-cert, or kong.conf cluster_cert) is not valid yet: check this host's clock (NTP) against the certificate's start date.".to_string()
        }
        FailureKind::TlsIntercepted => intercepted_hint(host, &port),
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
        FailureKind::UpgradeRefused => format!(
            "{addr} refused the data plane's WebSocket upgrade: check that cluster_control_plane names the control plane's cluster listener, that nothing between strips the upgrade, and the control plane's own log for this node."
        ),
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
        // The file findings set their own hints, naming the file and setting; these are the
        // kinds' general words.
        FailureKind::FileUnreadable => format!(
            "Check that {host} exists and that the user Kong runs as may read it (owner and mode)."
        ),
        FailureKind::FileInvalid => format!(
            "Put the PEM the setting asks for in {host}: a certificate (-----BEGIN CERTIFICATE-----) or an unencrypted private key."
        ),
        FailureKind::KeyMismatch => {
            "Point cluster_cert_key at the key the certificate was issued for, or issue a new certificate for this key.".to_string()
        }
        FailureKind::CertUsage => {
            "Issue the node a certificate whose extended key usage includes TLS client authentication (clientAuth), or none at all.".to_string()
        }
        FailureKind::ConfInvalid => {
            "Correct the setting in kong.conf (or its KONG_ variable): Kong does not start with it.".to_string()
        }
        // Their second opinions set hints that name the sizes and names found.
        FailureKind::PathMtu => {
            let (icmp, to) = match peer.ip {
                Some(ip @ IpAddr::V6(_)) => ("ICMPv6 type 2 (packet too big)", ip.to_string()),
                Some(ip) => ("ICMP type 3 code 4 (fragmentation needed)", ip.to_string()),
                None => (
                    "ICMP \"fragmentation needed\" (ICMPv6 \"packet too big\")",
                    host.to_string(),
                ),
            };
            format!(
                "Ask the network team to let {icmp} through the firewalls between here and {to}, so that the sender learns the smaller MTU; or to lower the MTU, or clamp the TCP MSS, on the tunnel or link that carries less than full-size packets."
            )
        }
        FailureKind::SniFiltered => {
            let to = peer.ip.map_or_else(|| host.to_string(), |ip| ip.to_string());
            format!(
                "Ask the security team to allow {host} in the firewall's URL or SNI filtering policy (its category, or the name itself) for TCP{port} to {to}; the server itself answers."
            )
        }
        FailureKind::ClockSkew => format!(
            "This host's clock and that of {host} differ: synchronise this host with NTP (timedatectl, chronyc tracking), since certificate dates and Kong's own checks depend on it."
        ),
        FailureKind::UdpNoReply => format!(
            "UDP cannot prove reachability without a reply: UDP{port} on {host} is open or filtered. If the service never answers, confirm with its own logs (or run `preflight listen --udp PORT` there), and ask the network team whether UDP{port} to {host} is allowed."
        ),
    }
}

impl FailureKind {
    /// The table of kinds in docs/failures.md, as Markdown: identifier, phases, meaning.
    pub fn table() -> String {
        let mut table = String::from("| kind | phases | meaning |\n| --- | --- | --- |\n");
        for kind in FailureKind::ALL {
            let phases: Vec<&str> = kind.phases().iter().map(|p| p.as_str()).collect();
            table.push_str(&format!(
                "| `{kind}` | {} | {} |\n",
                phases.join(", "),
                kind.meaning()
            ));
        }
        table
    }
}

impl Cause {
    /// The table in docs/failures.md of the causes finer than their kinds.
    pub fn table() -> String {
        let mut table = String::from("| cause | of kinds | meaning |\n| --- | --- | --- |\n");
        for &cause in Cause::REFINED {
            let kinds: Vec<String> = FailureKind::ALL
                .iter()
                .filter(|&&kind| cause.refines(kind))
                .map(|kind| format!("`{kind}`"))
                .collect();
            table.push_str(&format!(
                "| `{cause}` | {} | {} |\n",
                kinds.join(", "),
                cause.meaning()
            ));
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_call_warnings_exactly_what_severity_says_warns() {
        for &kind in FailureKind::ALL {
            assert_eq!(
                kind.meaning().starts_with("warning:"),
                kind.severity() == Severity::Warn,
                "{kind}"
            );
        }
        for &cause in Cause::REFINED {
            let warns = FailureKind::ALL
                .iter()
                .filter(|&&k| cause.refines(k))
                .all(|&k| cause.severity(k) == Severity::Warn);
            assert_eq!(cause.meaning().starts_with("warning:"), warns, "{cause}");
        }
    }

    #[test]
    fn every_cause_refines_a_kind_has_one_identifier_and_a_readme_row() {
        let readme = include_str!("../docs/failures.md");
        assert!(
            readme.contains(&Cause::table()),
            "docs/failures.md's table of causes differs from Cause::table():\n{}",
            Cause::table()
        );
        let kinds: std::collections::HashSet<&str> =
            FailureKind::ALL.iter().map(|k| k.as_str()).collect();
        let mut seen = std::collections::HashSet::new();
        for &cause in Cause::REFINED {
            assert!(seen.insert(cause.as_str()), "{cause} is listed twice");
            assert!(
                !kinds.contains(cause.as_str()),
                "{cause} is named as a kind: a cause named as its kind is the kind's general case"
            );
            let refined: Vec<FailureKind> = FailureKind::ALL
                .iter()
                .copied()
                .filter(|&kind| cause.refines(kind))
                .collect();
            assert!(!refined.is_empty(), "{cause} refines no kind");
            assert_eq!(
                serde_json::to_string(&cause).unwrap(),
                format!("\"{cause}\"")
            );
        }
        // Every (kind, cause) pair: the general case is the kind itself, with the kind's hint.
        let peer = Peer {
            host: "cp.example",
            port: Some(443),
            ip: None,
        };
        for &kind in FailureKind::ALL {
            let failure = Failure::new(kind, kind.phases()[0], "x", peer);
            assert_eq!(failure.cause, Cause::General(kind));
            assert_eq!(failure.cause.as_str(), kind.as_str());
            for &cause in Cause::REFINED.iter().filter(|c| c.refines(kind)) {
                // Every pair has a cause, a hint that names what to do, and a severity.
                let refined = failure.clone().because(cause, peer, Facts::default());
                assert_eq!(refined.cause, cause);
                assert!(refined.hint.len() > 40, "{kind}/{cause}: {}", refined.hint);
                assert!(
                    !refined.hint.contains('{'),
                    "{kind}/{cause}: {}",
                    refined.hint
                );
                let _ = refined.severity();
            }
        }
    }

    #[test]
    fn every_kind_has_one_identifier_a_phase_a_hint_and_a_readme_entry() {
        let readme = include_str!("../docs/failures.md");
        let peer = Peer {
            host: "cp.example",
            port: Some(443),
            ip: None,
        };
        // The README's table is the one the kinds give.
        assert!(
            readme.contains(&FailureKind::table()),
            "docs/failures.md's table of failure kinds differs from FailureKind::table():\n{}",
            FailureKind::table()
        );
        let mut seen = std::collections::HashSet::new();
        for &kind in FailureKind::ALL {
            assert!(seen.insert(kind.as_str()), "{kind} is listed twice");
            // The serde name is the identifier.
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert!(!kind.phases().is_empty(), "{kind} occurs in no phase");
            for &phase in kind.phases() {
                let hint = Failure::new(kind, phase, "x", peer).hint;
                assert!(hint.len() > 40, "{kind}: {hint}");
                assert!(!hint.contains("{"), "{kind}: {hint}");
            }
            assert!(
                readme.contains(&format!("| `{kind}` |")),
                "docs/failures.md has no entry for {kind}"
            );
        }
        // No kind is missing from the list.
        assert_eq!(seen.len(), 48);
    }

    #[test]
    fn a_phase_timing_out_has_a_kind_that_occurs_in_it() {
        for phase in [
            Phase::Dns,
            Phase::Tcp,
            Phase::Proxy,
            Phase::Tls,
            Phase::Http,
            Phase::Udp,
        ] {
            let kind = phase.timeout_kind();
            assert!(kind.phases().contains(&phase), "{phase}: {kind}");
        }
    }

    #[test]
    fn hints_name_the_endpoint() {
        let peer = Peer {
            host: "cp.example",
            port: Some(8443),
            ip: Some("192.0.2.7".parse().unwrap()),
        };
        let hint = |kind: FailureKind| Failure::new(kind, kind.phases()[0], "x", peer).hint;
        assert!(hint(FailureKind::Timeout).contains("192.0.2.7:8443"));
        assert!(hint(FailureKind::Timeout).contains("TCP port 8443 from this host to cp.example"));
        assert!(hint(FailureKind::Nxdomain).contains("cp.example"));
    }
}
