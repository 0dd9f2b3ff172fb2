//! Tunnels through a forward proxy: HTTP CONNECT (over TCP, or TLS to an HTTPS proxy) and
//! SOCKS5. Each failure names the hop: the proxy itself, its answer, or what lies beyond it.
//! Credentials go into the request only; no message repeats them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tokio_socks::tcp::Socks5Stream;

use super::dns::Dns;
use super::tls::{Tls, TlsRequest};
use super::{BoxStream, Budget, Dialed, Elapsed, tcp};
use crate::failure::{Failure, FailureKind, Peer, Phase};
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
    /// TCP to the proxy.
    pub connect: Duration,
    /// TLS to an HTTPS proxy, and the CONNECT or SOCKS exchange.
    pub handshake: Duration,
}

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
        let (stream, proxy_addr, connect, start) = self.to_proxy(budget).await?;
        let hop = Hop {
            proxy: self.proxy,
            proxy_addr,
            target: Peer {
                host,
                port: Some(dest.port()),
                ip: dest.ip(),
            },
            authority: dest.authority(),
        };
        let stream = match self.proxy.scheme {
            Scheme::Http | Scheme::Https => hop.connect(stream, budget).await?,
            Scheme::Socks5 | Scheme::Socks5h => hop.socks(stream, dest, budget).await?,
        };
        Ok(Tunnel {
            stream,
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
        let (stream, proxy_addr, connect, start) = self.to_proxy(budget).await?;
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
    ) -> Result<(BoxStream, SocketAddr, Duration, Instant), Failure> {
        let (stream, proxy_addr, connect) = self.reach(budget).await?;
        let start = Instant::now();
        let stream = match self.proxy.scheme {
            Scheme::Https => self.tls_to_proxy(stream, proxy_addr, budget).await?,
            Scheme::Http | Scheme::Socks5 | Scheme::Socks5h => stream,
        };
        Ok((stream, proxy_addr, connect, start))
    }

    /// Resolves the proxy's name and opens TCP to the first of its addresses that answers.
    async fn reach(&self, budget: Budget) -> Result<(BoxStream, SocketAddr, Duration), Failure> {
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
                    unreachable(
                        f.kind,
                        format!(
                            "the proxy's name does not resolve ({}): {}",
                            f.kind, f.message
                        ),
                        None,
                    )
                })?
            }
        };
        let mut last = None;
        for ip in ips {
            let addr = SocketAddr::new(ip, proxy.port);
            match tcp::connect(&host, addr, budget).await {
                Ok((stream, took)) => return Ok((Box::new(stream), addr, took)),
                Err(f) => {
                    let message = format!("cannot reach the proxy {proxy}: {}", f.message);
                    last = Some(unreachable(f.kind, message, Some(ip)));
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

    /// TLS to an HTTPS proxy, verified against the same roots as every other check.
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
            server_name: None,
            alpn: Vec::new(),
            client_cert_expected: false,
            public_ca: false,
            to_proxy: true,
            pinned: false,
        };
        match self
            .tls
            .handshake(stream, &host, &dialed, &request, budget)
            .await
        {
            Ok(handshake) => Ok(Box::new(handshake.stream)),
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

/// A plain HTTP request forwarded by a proxy: what it needs to authenticate, and how to tell
/// the proxy's own answers (its error pages) from the target's.
#[derive(Debug, Clone)]
pub(crate) struct Forwarded {
    proxy: ProxyUrl,
    proxy_addr: SocketAddr,
    host: String,
    port: u16,
    ip: Option<IpAddr>,
    authority: String,
}

impl Forwarded {
    fn hop(&self) -> Hop<'_> {
        Hop {
            proxy: &self.proxy,
            proxy_addr: self.proxy_addr,
            target: Peer {
                host: &self.host,
                port: Some(self.port),
                ip: self.ip,
            },
            authority: self.authority.clone(),
        }
    }

    /// The `Proxy-Authorization` header's value, when there are credentials.
    pub(crate) fn authorization(&self) -> Option<String> {
        self.proxy.credentials.as_ref().map(basic)
    }

    /// The failure when the answer is the proxy's own: `407`, or an error page squid marks
    /// with X-Squid-Error. Any other answer is the target's.
    pub(crate) fn judge(&self, status: StatusCode, headers: &hyper::HeaderMap) -> Option<Failure> {
        let own = status == StatusCode::PROXY_AUTHENTICATION_REQUIRED
            || headers.contains_key("x-squid-error");
        own.then(|| self.hop().refused(status, headers))
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
}

impl Hop<'_> {
    fn proxy_failure(&self, kind: FailureKind, message: String) -> Failure {
        proxy_failure(self.proxy, self.proxy_addr, kind, message)
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
                    humantime::format_duration(limit),
                    self.authority
                ),
            ),
        }
    }

    /// `CONNECT host:port`, with Basic credentials when the URL or --proxy-user has them.
    async fn connect(&self, stream: BoxStream, budget: Budget) -> Result<BoxStream, Failure> {
        let proxy = self.proxy;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                self.proxy_failure(
                    FailureKind::ProxyError,
                    format!("HTTP/1.1 setup with the proxy {proxy} failed: {e}"),
                )
            })?;
        let driver = tokio::spawn(conn.with_upgrades());
        let mut request = Request::builder()
            .method(Method::CONNECT)
            .uri(&self.authority)
            .header(HOST, &self.authority)
            .header(USER_AGENT, concat!("preflight/", env!("CARGO_PKG_VERSION")));
        if let Some(c) = &proxy.credentials {
            request = request.header(PROXY_AUTHORIZATION, basic(c));
        }
        let Ok(mut request) = request.body(Empty::<Bytes>::new()) else {
            driver.abort();
            return Err(self.target_failure(
                FailureKind::ProxyError,
                format!("cannot build a CONNECT request for {}", self.authority),
            ));
        };
        // Interim answers (`100 Continue`) are counted: a proxy that sends only those is
        // broken, not still trying to reach the target.
        let interim = Arc::new(AtomicU32::new(0));
        let counted = interim.clone();
        hyper::ext::on_informational(&mut request, move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        let what = format!(
            "the proxy {proxy} answered no CONNECT to {}",
            self.authority
        );
        let response = match budget.limit(sender.send_request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                driver.abort();
                return Err(self.proxy_failure(
                    FailureKind::ProxyError,
                    format!("no valid HTTP answer from the proxy {proxy} to CONNECT: {e}"),
                ));
            }
            Err(Elapsed::Timeout(limit)) if interim.load(Ordering::Relaxed) > 0 => {
                driver.abort();
                return Err(self.proxy_failure(
                    FailureKind::ProxyError,
                    format!(
                        "the proxy {proxy} answered CONNECT with {} interim responses (such as 100 Continue) and no final one within {}: it does not behave as an HTTP proxy",
                        interim.load(Ordering::Relaxed),
                        humantime::format_duration(limit)
                    ),
                ));
            }
            Err(elapsed) => {
                driver.abort();
                return Err(self.timed_out(elapsed, &what));
            }
        };
        let status = response.status();
        if !status.is_success() {
            driver.abort();
            return Err(self.refused(status, response.headers()));
        }
        match budget.limit(hyper::upgrade::on(response)).await {
            Ok(Ok(upgraded)) => Ok(Box::new(TokioIo::new(upgraded))),
            Ok(Err(e)) => {
                driver.abort();
                Err(self.proxy_failure(
                    FailureKind::ProxyError,
                    format!("the tunnel through the proxy {proxy} did not open: {e}"),
                ))
            }
            Err(elapsed) => {
                driver.abort();
                Err(self.timed_out(elapsed, &what))
            }
        }
    }

    /// Names a CONNECT that was answered with something other than 2xx.
    fn refused(&self, status: StatusCode, headers: &hyper::HeaderMap) -> Failure {
        let proxy = self.proxy;
        let authority = &self.authority;
        // Squid says why in X-Squid-Error (ERR_CONNECT_FAIL 111, ERR_DNS_FAIL 0 …).
        let squid = headers.get("x-squid-error").and_then(|v| v.to_str().ok());
        let detail = squid
            .map(|v| match squid_meaning(v) {
                Some(meaning) => format!(" ({v}: {meaning})"),
                None => format!(" ({v})"),
            })
            .unwrap_or_default();
        let line = format!("{status}{detail}");
        let beyond = squid.is_some_and(|v| {
            ["ERR_CONNECT_FAIL", "ERR_DNS_FAIL", "ERR_CANNOT_FORWARD"]
                .iter()
                .any(|e| v.starts_with(e))
        });
        if beyond {
            return self.target_failure(
                FailureKind::ProxyUpstream,
                format!("the proxy {proxy} could not reach {authority}: {line}"),
            );
        }
        match status.as_u16() {
            407 => {
                let wants = headers
                    .get(PROXY_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| format!("; it asks for {v}"))
                    .unwrap_or_default();
                let given = match proxy.credentials {
                    Some(_) => "refused the credentials given",
                    None => "requires credentials and none were given",
                };
                self.proxy_failure(
                    FailureKind::ProxyAuth,
                    format!("the proxy {proxy} {given}: {line}{wants}"),
                )
            }
            403 | 405 => self.target_failure(
                FailureKind::ProxyDenied,
                format!("the proxy {proxy} refused to forward to {authority}: {line}"),
            ),
            502..=504 => self.target_failure(
                FailureKind::ProxyUpstream,
                format!("the proxy {proxy} could not reach {authority}: {line}"),
            ),
            _ => self.target_failure(
                FailureKind::ProxyError,
                format!("the proxy {proxy} answered the request for {authority} with {line}"),
            ),
        }
    }

    /// The SOCKS5 handshake: a name for socks5h, the address chosen here for socks5.
    async fn socks(
        &self,
        stream: BoxStream,
        dest: &Dest,
        budget: Budget,
    ) -> Result<BoxStream, Failure> {
        let handshake = async {
            match (dest, &self.proxy.credentials) {
                (Dest::Name(host, port), None) => {
                    Socks5Stream::connect_with_socket(stream, (host.as_str(), *port)).await
                }
                (Dest::Name(host, port), Some(c)) => {
                    Socks5Stream::connect_with_password_and_socket(
                        stream,
                        (host.as_str(), *port),
                        &c.user,
                        &c.password,
                    )
                    .await
                }
                (Dest::Addr(addr), None) => Socks5Stream::connect_with_socket(stream, *addr).await,
                (Dest::Addr(addr), Some(c)) => {
                    Socks5Stream::connect_with_password_and_socket(
                        stream,
                        *addr,
                        &c.user,
                        &c.password,
                    )
                    .await
                }
            }
        };
        let what = format!(
            "the SOCKS proxy {} answered no CONNECT to {}",
            self.proxy, self.authority
        );
        match budget.limit(handshake).await {
            Ok(Ok(socks)) => Ok(Box::new(socks.into_inner())),
            Ok(Err(err)) => Err(self.socks_failure(&err)),
            Err(elapsed) => Err(self.timed_out(elapsed, &what)),
        }
    }

    fn socks_failure(&self, err: &tokio_socks::Error) -> Failure {
        use tokio_socks::Error as E;
        let proxy = self.proxy;
        let authority = &self.authority;
        match err {
            E::PasswordAuthFailure(_) => self.proxy_failure(
                FailureKind::ProxyAuth,
                format!("the SOCKS proxy {proxy} refused the credentials given"),
            ),
            E::NoAcceptableAuthMethods | E::AuthorizationRequired => {
                let given = match proxy.credentials {
                    Some(_) => "accepts none of the authentication methods offered",
                    None => "requires credentials and none were given",
                };
                self.proxy_failure(
                    FailureKind::ProxyAuth,
                    format!("the SOCKS proxy {proxy} {given}"),
                )
            }
            E::InvalidAuthValues(why) => self.proxy_failure(
                FailureKind::ProxyAuth,
                format!("the credentials cannot be sent to the SOCKS proxy {proxy}: {why}"),
            ),
            E::ConnectionNotAllowedByRuleset => self.target_failure(
                FailureKind::ProxyDenied,
                format!("the SOCKS proxy {proxy} does not allow a connection to {authority}"),
            ),
            E::GeneralSocksServerFailure
            | E::NetworkUnreachable
            | E::HostUnreachable
            | E::ConnectionRefused
            | E::TtlExpired => self.target_failure(
                FailureKind::ProxyUpstream,
                format!("the SOCKS proxy {proxy} could not reach {authority}: {err}"),
            ),
            E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => self.proxy_failure(
                FailureKind::ProxyError,
                format!(
                    "the proxy {proxy} closed the connection during the SOCKS5 handshake: is it a SOCKS5 proxy?"
                ),
            ),
            // tokio-socks uses this one error for an unknown reply code too.
            E::UnknownAuthMethod => self.proxy_failure(
                FailureKind::ProxyError,
                format!(
                    "the SOCKS proxy {proxy} answered with a code SOCKS5 does not define (an unknown reply code, or an authentication method it was not offered)"
                ),
            ),
            other => self.proxy_failure(
                FailureKind::ProxyError,
                format!("the SOCKS5 handshake with the proxy {proxy} failed: {other}"),
            ),
        }
    }
}

/// What squid's X-Squid-Error (`ERR_CONNECT_FAIL 111`: an error page and an errno) means.
fn squid_meaning(value: &str) -> Option<&'static str> {
    let mut parts = value.split_whitespace();
    let error = parts.next()?;
    let errno = parts
        .next()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    Some(match (error, errno) {
        ("ERR_CONNECT_FAIL", 111) => "the target refused the connection",
        ("ERR_CONNECT_FAIL", 110) => "the connection to the target timed out",
        ("ERR_CONNECT_FAIL", 113) => "no route to the target",
        ("ERR_CONNECT_FAIL", 101) => "the target's network is unreachable",
        ("ERR_CONNECT_FAIL", _) => "the proxy could not connect to the target",
        ("ERR_DNS_FAIL", _) => "the proxy cannot resolve the name",
        ("ERR_CANNOT_FORWARD", _) => {
            "the proxy cannot forward to the target (often: it cannot resolve the name)"
        }
        ("ERR_ACCESS_DENIED", _) => "denied by the proxy's access rules",
        ("ERR_CACHE_ACCESS_DENIED", _) => "the proxy wants credentials",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squid_errors_are_explained() {
        assert_eq!(
            squid_meaning("ERR_CONNECT_FAIL 111"),
            Some("the target refused the connection")
        );
        assert_eq!(
            squid_meaning("ERR_DNS_FAIL 0"),
            Some("the proxy cannot resolve the name")
        );
        assert_eq!(squid_meaning("ERR_SOMETHING_NEW 5"), None);
        assert_eq!(squid_meaning(""), None);
    }
}
