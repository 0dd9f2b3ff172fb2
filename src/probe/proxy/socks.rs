//! SOCKS5 through a proxy (tokio-socks): the handshake and what its errors mean.

use tokio_socks::tcp::Socks5Stream;

use super::{Dest, Hop};
use crate::failure::{Failure, FailureKind};
use crate::probe::Elapsed;
use crate::probe::first_words::First;
use crate::probe::{BoxStream, Budget};

impl Hop<'_> {
    /// The SOCKS5 handshake: a name for socks5h, the address chosen here for socks5.
    pub(super) async fn socks(
        &self,
        stream: BoxStream,
        dest: &Dest,
        budget: Budget,
    ) -> Result<BoxStream, Failure> {
        let (stream, first) = First::new(stream);
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
        let answered = || {
            first
                .lock()
                .map(|seen| seen.first.clone())
                .unwrap_or_default()
        };
        self.note(format!(
            "> SOCKS5 CONNECT {}{}",
            self.authority,
            match self.proxy.credentials {
                Some(_) => " (user and password ***)",
                None => "",
            }
        ));
        match budget.limit(handshake).await {
            Ok(Ok(socks)) => {
                self.note("< SOCKS5 succeeded".to_string());
                Ok(Box::new(socks.into_inner()))
            }
            Ok(Err(err)) => Err(self
                .wrong_protocol(&answered(), "SOCKS5")
                .unwrap_or_else(|| self.socks_failure(&err))),
            Err(Elapsed::Timeout(limit)) if answered().is_empty() => {
                Err(self.scheme_mismatch(self.proxy_failure(
                    FailureKind::ProxyError,
                    format!(
                        "the proxy {} answered nothing to the SOCKS5 greeting within {}: it does not speak SOCKS5",
                        self.proxy,
                        crate::probe::duration_text(limit)
                    ),
                )))
            }
            Err(elapsed) => Err(self
                .wrong_protocol(&answered(), "SOCKS5")
                .unwrap_or_else(|| self.timed_out(elapsed, &what))),
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
            E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => self
                .proxy_failure(
                    FailureKind::ProxyError,
                    format!(
                        "the proxy {proxy} closed the connection during the SOCKS5 handshake: is it a SOCKS5 proxy?"
                    ),
                )
                .because(
                    crate::failure::Cause::ClosedDuringHandshake,
                    self.target,
                    Default::default(),
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
