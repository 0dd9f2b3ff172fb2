//! HTTP CONNECT through a proxy (plain, or inside TLS to an HTTPS proxy), plain HTTP requests
//! a proxy forwards whole, and what a proxy's refusal means (squid's X-Squid-Error).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use super::{Hop, basic};
use crate::failure::Cause;
use crate::failure::{Failure, FailureKind, Peer};
use crate::probe::first_words::First;
use crate::probe::{BoxStream, Budget, Elapsed};
use crate::route::ProxyUrl;

/// A plain HTTP request forwarded by a proxy: what it needs to authenticate, and how to tell
/// the proxy's own answers (its error pages) from the target's.
#[derive(Debug, Clone)]
pub(crate) struct Forwarded {
    pub(super) proxy: ProxyUrl,
    pub(super) proxy_addr: SocketAddr,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) ip: Option<IpAddr>,
    pub(super) authority: String,
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
            log: std::sync::Mutex::default(),
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

impl Hop<'_> {
    /// `CONNECT host:port`, with Basic credentials when the URL or --proxy-user has them.
    pub(super) async fn connect(
        &self,
        stream: BoxStream,
        budget: Budget,
    ) -> Result<BoxStream, Failure> {
        let (stream, first) = First::new(stream);
        let answered = || {
            first
                .lock()
                .map(|seen| seen.first.clone())
                .unwrap_or_default()
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                self.proxy_failure(
                    FailureKind::ProxyError,
                    format!("HTTP/1.1 setup with the proxy {} failed: {e}", self.proxy),
                )
            })?;
        let driver = tokio::spawn(conn.with_upgrades());
        let tunnel = self.tunnel(&mut sender, budget).await;
        if tunnel.is_err() {
            driver.abort();
        }
        // A SOCKS5 or TLS answer to CONNECT: the URL's scheme is wrong, whatever hyper made
        // of the bytes.
        tunnel.map_err(|failure| self.wrong_protocol(&answered(), "HTTP").unwrap_or(failure))
    }

    /// The CONNECT request and its answer; the upgraded connection when it is 2xx.
    async fn tunnel(
        &self,
        sender: &mut SendRequest<Empty<Bytes>>,
        budget: Budget,
    ) -> Result<BoxStream, Failure> {
        let proxy = self.proxy;
        let mut request = self.connect_request()?;
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
                return Err(self.proxy_failure(
                    FailureKind::ProxyError,
                    format!("no valid HTTP answer from the proxy {proxy} to CONNECT: {e}"),
                ));
            }
            Err(Elapsed::Timeout(limit)) if interim.load(Ordering::Relaxed) > 0 => {
                return Err(self.proxy_failure(
                    FailureKind::ProxyError,
                    format!(
                        "the proxy {proxy} answered CONNECT with {} interim responses (such as 100 Continue) and no final one within {}: it does not behave as an HTTP proxy",
                        interim.load(Ordering::Relaxed),
                        crate::probe::duration_text(limit)
                    ),
                ));
            }
            Err(elapsed) => return Err(self.timed_out(elapsed, &what)),
        };
        let status = response.status();
        self.note(format!("< {:?} {status}", response.version()));
        if !status.is_success() {
            return Err(self.refused(status, response.headers()));
        }
        if proxy.only_200 && status != StatusCode::OK {
            let failure = self.target_failure(
                FailureKind::ProxyError,
                format!(
                    "the proxy {proxy} answered CONNECT to {} with {status}, not 200: Kong's client opens a tunnel only on 200",
                    self.authority
                ),
            );
            let cause = crate::failure::Cause::ConnectNot200;
            return Err(failure.because(cause, self.target, Default::default()));
        }
        match budget.limit(hyper::upgrade::on(response)).await {
            Ok(Ok(upgraded)) => Ok(Box::new(TokioIo::new(upgraded))),
            Ok(Err(e)) => Err(self.proxy_failure(
                FailureKind::ProxyError,
                format!("the tunnel through the proxy {proxy} did not open: {e}"),
            )),
            Err(elapsed) => Err(self.timed_out(elapsed, &what)),
        }
    }

    /// `CONNECT authority`, with the proxy's credentials when there are any.
    fn connect_request(&self) -> Result<Request<Empty<Bytes>>, Failure> {
        self.note(format!("> CONNECT {} HTTP/1.1", self.authority));
        if self.proxy.credentials.is_some() {
            self.note("> Proxy-Authorization: Basic ***".to_string());
        }
        let mut request = Request::builder()
            .method(Method::CONNECT)
            .uri(&self.authority)
            .header(HOST, &self.authority)
            .header(USER_AGENT, concat!("preflight/", env!("CARGO_PKG_VERSION")));
        if let Some(c) = &self.proxy.credentials {
            request = request.header(PROXY_AUTHORIZATION, basic(c));
        }
        request.body(Empty::<Bytes>::new()).map_err(|_| {
            self.target_failure(
                FailureKind::ProxyError,
                format!("cannot build a CONNECT request for {}", self.authority),
            )
        })
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
            let failure = self.target_failure(
                FailureKind::ProxyUpstream,
                format!("the proxy {proxy} could not reach {authority}: {line}"),
            );
            let shown = proxy.to_string();
            let facts = crate::failure::Facts {
                proxy: Some(&shown),
                ..Default::default()
            };
            return match squid.and_then(squid_cause) {
                Some(cause) => failure.because(cause, self.target, facts),
                None => failure,
            };
        }
        match status.as_u16() {
            407 => {
                // Every scheme the proxy offers, from each Proxy-Authenticate header (a header
                // may be repeated, or list several challenges): the first word of each.
                let schemes: Vec<String> = headers
                    .get_all(PROXY_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .filter_map(|challenge| {
                        let word = challenge.split_whitespace().next()?;
                        // `realm="x"` after a comma is a parameter, not a scheme.
                        (!word.contains('=')).then(|| crate::sanitize::shorten(word).into_owned())
                    })
                    .collect();
                let wants = match schemes.is_empty() {
                    true => String::new(),
                    false => format!("; it offers {}", schemes.join(", ")),
                };
                let basic = schemes.iter().any(|s| s.eq_ignore_ascii_case("basic"));
                let given = match proxy.credentials {
                    Some(_) => "refused the credentials given",
                    None => "requires credentials and none were given",
                };
                let cause = match (basic, schemes.is_empty(), proxy.credentials.is_some()) {
                    (false, false, _) => Cause::BasicNotOffered,
                    (_, _, true) => Cause::CredentialsRefused,
                    (_, _, false) => Cause::CredentialsMissing,
                };
                let failure = self.proxy_failure(
                    FailureKind::ProxyAuth,
                    format!("the proxy {proxy} {given}: {line}{wants}"),
                );
                let shown = proxy.to_string();
                let offered = schemes.join(" or ");
                let facts = crate::failure::Facts {
                    proxy: Some(&shown),
                    fix: Some(&offered),
                    ..Default::default()
                };
                let peer = crate::failure::Peer {
                    host: &shown,
                    port: None,
                    ip: None,
                };
                failure.because(cause, peer, facts)
            }
            403 | 405 => self.target_failure(
                FailureKind::ProxyDenied,
                format!("the proxy {proxy} refused to forward to {authority}: {line}"),
            ),
            502..=504 => {
                let failure = self.target_failure(
                    FailureKind::ProxyUpstream,
                    format!("the proxy {proxy} could not reach {authority}: {line}"),
                );
                // 504 is the proxy's own wait for the target running out (RFC 9110 15.6.5),
                // whatever product answers it; 502 and 503 say less.
                match status.as_u16() {
                    504 => {
                        let shown = proxy.to_string();
                        let facts = crate::failure::Facts {
                            proxy: Some(&shown),
                            ..Default::default()
                        };
                        failure.because(Cause::ProxyTargetSilent, self.target, facts)
                    }
                    _ => failure,
                }
            }
            _ => self.target_failure(
                FailureKind::ProxyError,
                format!("the proxy {proxy} answered the request for {authority} with {line}"),
            ),
        }
    }
}

/// The cause squid's X-Squid-Error names, when it names one beyond the proxy: its error page
/// and the errno of its own connection to the target (squid's errorpage codes; Linux errnos).
fn squid_cause(value: &str) -> Option<Cause> {
    let mut parts = value.split_whitespace();
    let error = parts.next()?;
    let errno = parts.next().and_then(|n| n.parse::<i32>().ok());
    Some(match (error, errno) {
        ("ERR_CONNECT_FAIL", Some(111)) => Cause::ProxyTargetRefused,
        ("ERR_CONNECT_FAIL", Some(110)) => Cause::ProxyTargetSilent,
        ("ERR_CONNECT_FAIL", Some(101 | 113)) => Cause::ProxyTargetUnreachable,
        ("ERR_DNS_FAIL", _) => Cause::ProxyCannotResolve,
        _ => return None,
    })
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
    fn squid_errors_name_their_causes() {
        assert_eq!(
            squid_cause("ERR_CONNECT_FAIL 111"),
            Some(Cause::ProxyTargetRefused)
        );
        assert_eq!(
            squid_cause("ERR_CONNECT_FAIL 110"),
            Some(Cause::ProxyTargetSilent)
        );
        assert_eq!(
            squid_cause("ERR_CONNECT_FAIL 113"),
            Some(Cause::ProxyTargetUnreachable)
        );
        assert_eq!(
            squid_cause("ERR_DNS_FAIL 0"),
            Some(Cause::ProxyCannotResolve)
        );
        assert_eq!(squid_cause("ERR_CONNECT_FAIL"), None);
        assert_eq!(squid_cause("ERR_ACCESS_DENIED 0"), None);
    }

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
