//! Tunnels through a forward proxy: HTTP CONNECT (over TCP, or TLS to an HTTPS proxy) and
//! SOCKS5. Each failure names the hop: the proxy itself, its answer, or what lies beyond it.
//! Credentials go into the request only; no message repeats them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::time::Instant;

mod connect;
mod socks;

pub(crate) use connect::Forwarded;

use crate::failure::{Failure, FailureKind, Peer, Phase};
use crate::probe::dns::Dns;
use crate::probe::tls::{Tls, TlsRequest};
use crate::probe::{BoxStream, Budget, Dialed, Elapsed, tcp};
use crate::route::{ProxyUrl, Scheme};
use crate::target::Host;

/// Where the tunnel should lead: a name the proxy resolves, or an address chosen here.
#[derive(Debug, Clone)]
pub(crate) enum Dest {
    Name(String, u16),
    Addr(SocketAddr),
}

impl Dest {
    pub(crate) fn port(&self) -> u16 {
        match self {
            Dest::Name(_, port) => *port,
            Dest::Addr(addr) => addr.port(),
        }
    }

    pub(crate) fn ip(&self) -> Option<IpAddr> {
        match self {
            Dest::Name(..) => None,
            Dest::Addr(addr) => Some(addr.ip()),
        }
    }

    /// `host:port`, `192.0.2.7:443` or `[2001:db8::7]:443`, as CONNECT wants it.
    pub(crate) fn authority(&self) -> String {
        match self {
            Dest::Name(host, port) => format!("{host}:{port}"),
            Dest::Addr(addr) => addr.to_string(),
        }
    }
}

/// An open tunnel, and what it took.
pub(crate) struct Tunnel {
    pub stream: BoxStream,
    /// What was said with the proxy, for `--verbose`.
    pub exchange: Vec<String>,
    /// This host's end of the connection to the proxy.
    pub local: Option<SocketAddr>,
    /// TCP to the proxy.
    pub connect: Duration,
    /// TLS to an HTTPS proxy, and the CONNECT or SOCKS exchange.
    pub handshake: Duration,
}

/// A TCP connection to the proxy: the stream, the proxy's address, the connect time, and this
/// host's end.
type Reached = (BoxStream, SocketAddr, Duration, Option<SocketAddr>);

/// What a tunnel is opened with: the run's resolver and TLS settings.
pub(crate) struct Via<'a> {
    pub proxy: &'a ProxyUrl,
    pub dns: &'a Dns,
    pub tls: &'a Tls,
}

impl Via<'_> {
    /// Opens a tunnel to `dest` for the check of `host` (the target's name, for messages).
    pub(crate) async fn open(
        &self,
        host: &str,
        dest: &Dest,
        budget: Budget,
    ) -> Result<Tunnel, Failure> {
        let (stream, proxy_addr, connect, start, local) = self.to_proxy(budget).await?;
        let hop = Hop {
            proxy: self.proxy,
            proxy_addr,
            target: Peer {
                host,
                port: Some(dest.port()),
                ip: dest.ip(),
            },
            authority: dest.authority(),
            log: std::sync::Mutex::default(),
        };
        let stream = match self.proxy.scheme {
            Scheme::Http | Scheme::Https => hop.connect(stream, budget).await?,
            Scheme::Socks5 | Scheme::Socks5h => hop.socks(stream, dest, budget).await?,
        };
        Ok(Tunnel {
            stream,
            exchange: hop.log.into_inner().unwrap_or_default(),
            local,
            connect,
            handshake: start.elapsed(),
        })
    }

    /// A connection to an HTTP(S) proxy itself, for a plain HTTP request that the proxy
    /// forwards whole (absolute form, as curl sends `http://` URLs), with no tunnel.
    pub(crate) async fn forwarder(
        &self,
        host: &str,
        dest: &Dest,
        budget: Budget,
    ) -> Result<(Tunnel, Forwarded), Failure> {
        let (stream, proxy_addr, connect, start, local) = self.to_proxy(budget).await?;
        let forwarded = Forwarded {
            proxy: self.proxy.clone(),
            proxy_addr,
            host: host.to_string(),
            port: dest.port(),
            ip: dest.ip(),
            authority: dest.authority(),
        };
        let tunnel = Tunnel {
            stream,
            exchange: Vec::new(),
            local,
            connect,
            handshake: start.elapsed(),
        };
        Ok((tunnel, forwarded))
    }

    /// TCP to the proxy, then TLS for an HTTPS proxy: the connection the proxy's protocol runs
    /// over. Also returns the proxy's address, the TCP time, and when TLS began.
    async fn to_proxy(
        &self,
        budget: Budget,
    ) -> Result<(BoxStream, SocketAddr, Duration, Instant, Option<SocketAddr>), Failure> {
        let (stream, proxy_addr, connect, local) = self.reach(budget).await?;
        let start = Instant::now();
        let stream = match self.proxy.scheme {
            Scheme::Https => self.tls_to_proxy(stream, proxy_addr, budget).await?,
            Scheme::Http | Scheme::Socks5 | Scheme::Socks5h => stream,
        };
        Ok((stream, proxy_addr, connect, start, local))
    }

    /// Resolves the proxy's name and opens TCP to the first of its addresses that answers.
    async fn reach(&self, budget: Budget) -> Result<Reached, Failure> {
        let proxy = self.proxy;
        let host = proxy.host_text();
        let peer = Peer {
            host: &host,
            port: Some(proxy.port),
            ip: None,
        };
        let unreachable = |kind: FailureKind, message: String, ip: Option<IpAddr>| {
            // The run's deadline stays a deadline; anything else is the proxy out of reach.
            let kind = match kind {
                FailureKind::Deadline => FailureKind::Deadline,
                _ => FailureKind::ProxyUnreachable,
            };
            Failure::new(kind, Phase::Proxy, message, Peer { ip, ..peer })
        };
        let ips = match proxy.host {
            Host::Ip(ip) => vec![ip],
            Host::Name(ref name) => {
                let resolution = self.dns.resolve(name, Some(proxy.port), budget).await;
                resolution.addrs.map_err(|f| {
                    let failure = unreachable(
                        f.kind,
                        format!(
                            "the proxy's name does not resolve ({}): {}",
                            f.kind, f.message
                        ),
                        None,
                    );
                    match failure.kind {
                        FailureKind::Deadline => failure,
                        // A DNS problem with the proxy's own name, not a firewall's.
                        _ => failure.because(
                            crate::failure::Cause::ProxyNameUnresolved,
                            peer,
                            crate::failure::Facts {
                                proxy: Some(name),
                                ..Default::default()
                            },
                        ),
                    }
                })?
            }
        };
        let mut last = None;
        for ip in ips {
            let addr = SocketAddr::new(ip, proxy.port);
            let registered = |(connected, took): (tcp::Connected, _)| {
                let local = connected.local_addr().ok();
                let peer = crate::failure::Peer {
                    host: &host,
                    port: Some(addr.port()),
                    ip: Some(ip),
                };
                match connected.into_stream() {
                    Ok(stream) => Ok((stream, took, local)),
                    Err(err) => Err(tcp::classify(&err, addr, peer)),
                }
            };
            match tcp::connect(&host, addr, None, budget)
                .await
                .and_then(registered)
            {
                Ok((stream, took, local)) => return Ok((Box::new(stream), addr, took, local)),
                Err(f) => {
                    let message = format!("cannot reach the proxy {proxy}: {}", f.message);
                    let mut failure = unreachable(f.kind, message, Some(ip));
                    if f.kind == FailureKind::Timeout {
                        failure.timed_out_at = Some(addr);
                    }
                    last = Some(failure);
                    if f.kind == FailureKind::Deadline {
                        break;
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            unreachable(
                FailureKind::ProxyUnreachable,
                format!("the proxy {proxy} has no address"),
                None,
            )
        }))
    }

    /// TLS to an HTTPS proxy, verified against the same roots as every other check (unless
    /// kong.conf's `proxy_server_ssl_verify = off` says Kong does not verify it).
    async fn tls_to_proxy(
        &self,
        stream: BoxStream,
        proxy_addr: SocketAddr,
        budget: Budget,
    ) -> Result<BoxStream, Failure> {
        let host = self.proxy.host_text();
        let dialed = Dialed {
            port: proxy_addr.port(),
            ip: Some(proxy_addr.ip()),
            label: format!("the proxy {}", self.proxy),
        };
        let request = TlsRequest {
            to_proxy: true,
            accept_any: !self.proxy.verify,
            ..TlsRequest::default()
        };
        match self
            .tls
            .handshake(stream, &host, &dialed, &request, budget)
            .await
        {
            Ok(handshake) => Ok(handshake.stream),
            Err(failed) => {
                let f = failed.failure;
                let kind = match f.kind {
                    FailureKind::Deadline => FailureKind::Deadline,
                    _ => FailureKind::ProxyError,
                };
                Err(proxy_failure(
                    self.proxy,
                    proxy_addr,
                    kind,
                    format!("TLS to the proxy failed ({}): {}", f.kind, f.message),
                ))
            }
        }
    }
}

/// A failure that is the proxy's own (its TLS, its credentials): the hint names the proxy.
fn proxy_failure(
    proxy: &ProxyUrl,
    proxy_addr: SocketAddr,
    kind: FailureKind,
    message: String,
) -> Failure {
    let host = proxy.host_text();
    let peer = Peer {
        host: &host,
        port: Some(proxy_addr.port()),
        ip: Some(proxy_addr.ip()),
    };
    Failure::new(kind, Phase::Proxy, message, peer)
}

impl Hop<'_> {
    /// The proxy answered in another protocol than the URL's scheme says (`expected`).
    pub(super) fn wrong_protocol(&self, first: &[u8], expected: &str) -> Option<Failure> {
        let spoken = crate::probe::first_words::proxy_protocol(first).filter(|p| *p != expected)?;
        let failure = self.proxy_failure(
            FailureKind::ProxyError,
            format!(
                "the proxy {} answers in {spoken}, not {expected}: the proxy URL's scheme does not match the proxy",
                self.proxy
            ),
        );
        Some(self.scheme_mismatch(failure))
    }
}

/// `Basic base64(user:password)`.
fn basic(credentials: &crate::route::Credentials) -> String {
    let token = BASE64.encode(format!("{}:{}", credentials.user, credentials.password));
    format!("Basic {token}")
}

/// One tunnel request: through `proxy` (at `proxy_addr`) to `authority`.
struct Hop<'a> {
    proxy: &'a ProxyUrl,
    proxy_addr: SocketAddr,
    target: Peer<'a>,
    authority: String,
    /// The exchange with the proxy, for `--verbose` (credentials masked).
    log: std::sync::Mutex<Vec<String>>,
}

impl Hop<'_> {
    /// Notes a line of the exchange with the proxy.
    fn note(&self, line: String) {
        if let Ok(mut log) = self.log.lock() {
            log.push(line);
        }
    }
}

impl Hop<'_> {
    fn proxy_failure(&self, kind: FailureKind, message: String) -> Failure {
        proxy_failure(self.proxy, self.proxy_addr, kind, message)
    }

    /// `failure`, caused by a proxy URL whose scheme does not match what the proxy speaks.
    fn scheme_mismatch(&self, failure: Failure) -> Failure {
        let proxy = self.proxy.to_string();
        let facts = crate::failure::Facts {
            proxy: Some(&proxy),
            ..Default::default()
        };
        failure.because(
            crate::failure::Cause::ProxySchemeMismatch,
            self.target,
            facts,
        )
    }

    /// A failure about the target beyond the proxy (denied, upstream): the hint names it.
    fn target_failure(&self, kind: FailureKind, message: String) -> Failure {
        Failure::new(kind, Phase::Proxy, message, self.target)
    }

    fn timed_out(&self, elapsed: Elapsed, what: &str) -> Failure {
        match elapsed {
            Elapsed::Deadline => self.target_failure(
                FailureKind::Deadline,
                format!("{what} before the run's --deadline"),
            ),
            Elapsed::Timeout(limit) => self.target_failure(
                FailureKind::ProxyUpstream,
                format!(
                    "{what} within {}: the proxy is most likely still trying to reach {} (dropped beyond the proxy)",
                    crate::probe::duration_text(limit),
                    self.authority
                ),
            ),
        }
    }
}
