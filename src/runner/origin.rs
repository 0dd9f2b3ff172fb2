//! Where a failed check's addresses came from, and whether that is why it failed: taken after
//! a failure only, each within the run's budget.
//! - The host's search list answered a longer name (`search corp.example` with `ndots:5`
//!   turns `cloud.konghq.com` into `cloud.konghq.com.corp.example`, which a wildcard in the
//!   company's zone answers): when the name as given resolves elsewhere, that is the cause.
//!   Kong's resolvers follow the same `search` and `ndots` (kong/dns/utils.lua `search_names`
//!   and `is_fqdn`; kong/resty/dns/client.lua for the older one), so the node meets it too.
//! - `/etc/hosts` pins the name: DNS is asked for it too, and when DNS gives another address
//!   on which the check passes, the pin is stale.

use std::net::{IpAddr, SocketAddr};

use super::RunContext;
use super::attempt::run_with;
use crate::check::CheckSpec;
use crate::failure::{Cause, Facts, Peer};
use crate::probe::proxy::Dest;
use crate::report::PathResult;

/// Where the addresses a path tried came from, when not plainly from DNS.
#[derive(Debug, Default)]
pub(super) struct Origin {
    /// The `/etc/hosts` line that gave them.
    pub(super) hosts_line: Option<usize>,
    /// The longer name that answered, and the search domain that made it.
    pub(super) expanded: Option<(String, String)>,
}

impl Origin {
    /// Whether the addresses came from DNS for the name as given (or were given).
    pub(super) fn is_plain(&self) -> bool {
        self.hosts_line.is_none() && self.expanded.is_none()
    }
}

/// Refines `path`'s failure with where its addresses (`tried`) came from.
pub(super) async fn refine(
    spec: &CheckSpec,
    port: u16,
    origin: &Origin,
    tried: &[IpAddr],
    shared: &RunContext,
    path: &mut PathResult,
) {
    let host = spec.host().trim_end_matches('.');
    // Only a failure another address could explain (not one the server's answer does), and
    // never for localhost, which is loopback whatever answers for it (RFC 6761).
    let telling = path.error.as_ref().is_some_and(|failure| {
        Cause::StaleHostsPin.refines(failure.kind)
            && Cause::SearchListExpansion.refines(failure.kind)
    });
    let local =
        host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
    if !telling || local {
        return;
    }
    let Some(mut failure) = path.error.take() else {
        return;
    };
    let peer = Peer {
        host,
        port: Some(port),
        ip: None,
    };
    if let Some((name, domain)) = &origin.expanded {
        let ndots = shared.dns.ndots();
        let dots = host.matches('.').count();
        let itself = shared
            .dns
            .dns_answer(&format!("{host}."), shared.budget)
            .await;
        let elsewhere = itself
            .as_ref()
            .is_some_and(|addrs| addrs.iter().any(|ip| !tried.contains(ip)));
        let said = match &itself {
            Some(addrs) => format!("{host} itself resolves to {}", listed(addrs)),
            None => format!("{host} itself does not resolve"),
        };
        failure.message = format!(
            "{}; the address is {name}'s: /etc/resolv.conf's search list adds {domain} to a name with fewer than {ndots} dots before asking it as it is, and {said}",
            failure.message
        );
        if elsewhere && Cause::SearchListExpansion.refines(failure.kind) {
            let fix = format!(
                "set options ndots:{} in /etc/resolv.conf (it is ndots:{ndots}), so that {host} is asked as it is before the search list",
                dots.max(1)
            );
            let facts = Facts {
                fix: Some(&fix),
                ..Default::default()
            };
            failure = failure.because(Cause::SearchListExpansion, peer, facts);
        }
    } else if let Some(line) = origin.hosts_line {
        let pinned = format!(
            "{host} is pinned to {} in /etc/hosts (line {line}), which this host reads before DNS",
            listed(tried)
        );
        let dns = shared.dns.dns_answer(host, shared.budget).await;
        let other = dns
            .as_ref()
            .and_then(|addrs| addrs.iter().copied().find(|ip| !tried.contains(ip)));
        match (dns, other) {
            (Some(addrs), Some(ip)) => {
                let dest = Dest::Addr(SocketAddr::new(ip, port));
                let there = run_with(spec, dest, None, shared, None).await;
                match there.error {
                    None if Cause::StaleHostsPin.refines(failure.kind) => {
                        failure.message = format!(
                            "{}; {pinned}, while DNS gives {}, where the same check passes",
                            failure.message,
                            listed(&addrs)
                        );
                        let fix = format!(
                            "update line {line} of /etc/hosts to {ip}, the address DNS gives, or remove the line so DNS answers"
                        );
                        let facts = Facts {
                            fix: Some(&fix),
                            ..Default::default()
                        };
                        failure = failure.because(Cause::StaleHostsPin, peer, facts);
                    }
                    None => {
                        failure.message = format!(
                            "{}; {pinned}, while DNS gives {}, where the check passes",
                            failure.message,
                            listed(&addrs)
                        )
                    }
                    Some(other) => {
                        failure.message = format!(
                            "{}; {pinned}, and DNS gives {}, which fails too ({})",
                            failure.message,
                            listed(&addrs),
                            other.kind
                        )
                    }
                }
            }
            _ => failure.message = format!("{}; {pinned}", failure.message),
        }
    }
    path.error = Some(failure);
}

fn listed(addrs: &[IpAddr]) -> String {
    let shown: Vec<String> = addrs.iter().take(4).map(IpAddr::to_string).collect();
    match addrs.len() > 4 {
        true => format!("{} and {} more", shown.join(", "), addrs.len() - 4),
        false => shown.join(", "),
    }
}
