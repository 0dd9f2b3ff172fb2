//! The paths of one check: a local bind; the direct path (resolve here, then every address at
//! once); the proxied path (the proxy resolves the name, or this host does for socks5); both
//! side by side with `--compare-direct`. And which attempt speaks for a path: the one that
//! worked, else the most telling failure.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::RunContext;
use super::attempt::Outcome;
use super::opinion;
use super::origin::Origin;
use crate::check::CheckSpec;
use crate::failure::{Failure, FailureKind, Peer, Phase};
use crate::probe::dns::{Resolution, Source};
use crate::probe::proxy::Dest;
use crate::probe::{bind, millis};
use crate::report::{
    CheckResult, LocalDns, OpinionKind, PathResult, SecondOpinion, Status, Timings, Tried,
};
use crate::route::{ProxyUrl, WhatIf};
use crate::target::Probe;

/// The addresses attempted for one name, per family: a name that resolves to thousands of
/// addresses must not cost thousands of connections, or more than one timeout.
pub const MAX_ADDRESSES_PER_FAMILY: usize = 16;

/// Runs one check on the path its route names (and the direct one beside it when asked).
pub(super) async fn check(spec: &Arc<CheckSpec>, shared: &Arc<RunContext>) -> CheckResult {
    let start = Instant::now();
    let mut direct_path = None;
    let path = match (&spec.route.proxy, spec.port()) {
        _ if spec.probe() == Probe::Bind => Box::pin(local_port(spec)).await,
        (Some(proxy), Some(port)) => {
            // Boxed: a direct check's task need not carry room for the proxied paths.
            let via = Box::pin(proxied(spec, port, proxy.clone(), shared));
            if spec.compare_direct {
                let (via, direct) = tokio::join!(via, direct(spec, shared));
                direct_path = Some(Box::new(direct));
                via
            } else {
                via.await
            }
        }
        _ => direct(spec, shared).await,
    };
    let path = match (&spec.what_if, spec.port()) {
        (Some(what_if), Some(port)) if path.status == Status::Fail => {
            Box::pin(what_if_proxy(spec, port, what_if, shared, path)).await
        }
        _ => path,
    };
    let mut result = CheckResult::of(spec, path);
    result.direct = direct_path;
    result.path.timings_ms.total = millis(start.elapsed());
    // A proxy may quote back the credentials it was sent (in a header, a page): they are cut
    // out of everything the check reports, the what-if proxy's too.
    let what_if = spec.what_if.as_ref().map(|w| &w.proxy);
    let secrets: Vec<String> = [spec.route.proxy.as_ref(), what_if]
        .into_iter()
        .flatten()
        .filter_map(|p| p.credentials.as_ref())
        .flat_map(|c| c.secrets())
        .collect();
    if !secrets.is_empty() {
        let scrub = |text: &mut String| *text = crate::sanitize::scrub(text, &secrets);
        for failure in result.failures_mut() {
            scrub(&mut failure.message);
            scrub(&mut failure.hint);
        }
        if let Some(opinion) = result.path.second_opinion.as_mut() {
            scrub(&mut opinion.conclusion);
            opinion
                .attempts
                .iter_mut()
                .for_each(|a| scrub(&mut a.result));
        }
    }
    result
}

/// A check that failed on the node's own route, tried through a proxy the node does not use
/// (`WhatIf`): the verdict stays the node's; when the proxy reaches the endpoint, the failure's
/// cause says so and its hint names the kong.conf setting that makes it the node's route.
async fn what_if_proxy(
    spec: &Arc<CheckSpec>,
    port: u16,
    what_if: &WhatIf,
    shared: &Arc<RunContext>,
    mut path: PathResult,
) -> PathResult {
    let start = Instant::now();
    let tried = proxied(spec, port, what_if.proxy.clone(), shared).await;
    let reached = tried.status != Status::Fail;
    let result = match &tried.error {
        Some(failure) if !reached => format!("{}: {}", failure.kind, failure.message),
        _ => "completed".to_string(),
    };
    let proxy = what_if.proxy.to_string();
    let conclusion = match reached {
        true => format!(
            "Through {proxy} ({}), which the node's Kong does not use, the check passes: {}.",
            what_if.source, what_if.fix
        ),
        false => format!(
            "Through {proxy} ({}) it fails too, so that proxy would not help.",
            what_if.source
        ),
    };
    if reached && let Some(failure) = path.error.take() {
        let refined = match crate::failure::Cause::ReachedThroughProxy.refines(failure.kind) {
            true => {
                let facts = crate::failure::Facts {
                    proxy: Some(&proxy),
                    fix: Some(&what_if.fix),
                    ..Default::default()
                };
                let peer = Peer {
                    host: spec.host(),
                    port: Some(port),
                    ip: None,
                };
                failure.because(crate::failure::Cause::ReachedThroughProxy, peer, facts)
            }
            false => failure,
        };
        path.error = Some(refined);
    }
    let attempt = Tried {
        tried: format!("through the proxy {proxy} ({})", what_if.source),
        result,
        ms: millis(start.elapsed()),
    };
    match path.second_opinion.as_mut() {
        Some(opinion) => {
            opinion.conclusion = format!("{} {conclusion}", opinion.conclusion);
            opinion.attempts.push(attempt);
        }
        None => {
            path.second_opinion = Some(Box::new(SecondOpinion {
                kind: OpinionKind::Retry,
                conclusion,
                ms: millis(start.elapsed()),
                attempts: vec![attempt],
            }));
        }
    }
    path
}

/// A local port check: bind the address and let go (with a /proc scan for the holder, off the
/// async workers).
async fn local_port(spec: &CheckSpec) -> PathResult {
    let ip = spec
        .ip
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, spec.port().unwrap_or_default());
    super::reached(Phase::Bind);
    let outcome = match tokio::task::spawn_blocking(move || bind::check(addr)).await {
        Ok(Ok(())) => Outcome::new(Some(ip)),
        Ok(Err(failure)) => Outcome::failed(Some(ip), failure),
        Err(_) => Outcome::failed(
            Some(ip),
            Failure::new(
                FailureKind::LocalError,
                Phase::Bind,
                "the bind check stopped unexpectedly",
                peer(spec, spec.port(), spec.ip),
            ),
        ),
    };
    speak(vec![outcome], Timings::default())
}

/// The direct path: resolve here, then every address at once; for a dns probe the addresses
/// are the answer.
async fn direct(spec: &Arc<CheckSpec>, shared: &Arc<RunContext>) -> PathResult {
    if let (Some(port), false) = (spec.port(), spec.probe() == Probe::Dns) {
        return every_address(spec, port, None, shared).await;
    }
    let (mut timings, mut cnames) = (Timings::default(), Vec::new());
    let mut origin = Origin::default();
    let addrs = match resolve_here(spec, shared, (&mut timings, &mut cnames), &mut origin).await {
        Ok(addrs) => addrs,
        Err(failure) => return PathResult::failed(failure, timings),
    };
    PathResult {
        addresses: addrs
            .into_iter()
            .filter_map(|ip| Outcome::new(Some(ip)).address())
            .collect(),
        timings_ms: timings,
        cnames,
        ..PathResult::new(Status::Ok)
    }
}

/// Resolves the name here; `Err` is the path's failure. DNS time goes into `timings`.
async fn resolve_here(
    spec: &CheckSpec,
    shared: &RunContext,
    (timings, cnames): (&mut Timings, &mut Vec<String>),
    origin: &mut Origin,
) -> Result<Vec<IpAddr>, Failure> {
    let resolution = match spec.ip {
        Some(ip) => Resolution {
            addrs: Ok(vec![ip]),
            cnames: Vec::new(),
            ttl: None,
            source: Source::Literal,
            elapsed: Duration::ZERO,
            hosts_line: None,
            expanded: None,
        },
        None => {
            super::reached(Phase::Dns);
            shared
                .dns
                .resolve(spec.host(), spec.port(), shared.budget)
                .await
        }
    };
    if resolution.source == Source::Dns {
        timings.dns = Some(millis(resolution.elapsed));
        shared.log_step(spec.id(), || {
            let answer = match &resolution.addrs {
                Ok(addrs) => {
                    let addrs: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
                    let ttl = resolution
                        .ttl
                        .map_or_else(String::new, |t| format!(" (TTL {t} s)"));
                    let via = match resolution.cnames.is_empty() {
                        true => String::new(),
                        false => format!(" via {}", resolution.cnames.join(" -> ")),
                    };
                    format!("{}{via}{ttl}", addrs.join(", "))
                }
                Err(failure) => format!("{}: {}", failure.kind, failure.message),
            };
            let expanded = match &resolution.expanded {
                Some((name, _)) => format!(" (answered as {name}, from the search list)"),
                None => String::new(),
            };
            format!(
                "dns {} asked {}: {answer}{expanded}",
                spec.host(),
                shared.dns.asked()
            )
        });
    }
    if let Some(line) = resolution.hosts_line {
        shared.log_step(spec.id(), || {
            format!("dns {} answered from /etc/hosts, line {line}", spec.host())
        });
    }
    *cnames = resolution.cnames;
    *origin = Origin {
        hosts_line: resolution.hosts_line,
        expanded: resolution.expanded,
    };
    match (&spec.asked_families, resolution.addrs) {
        (Some(asked), Ok(addrs)) if spec.ip.is_none() => asked_only(spec, asked, addrs),
        (_, addrs) => addrs,
    }
}

/// The addresses of the families the node's own resolver asks for; none of them, when the name
/// has only others, is the failure the node will meet.
fn asked_only(
    spec: &CheckSpec,
    asked: &crate::check::AskedFamilies,
    addrs: Vec<IpAddr>,
) -> Result<Vec<IpAddr>, Failure> {
    let kept: Vec<IpAddr> = addrs
        .iter()
        .copied()
        .filter(|ip| asked.allows(ip))
        .collect();
    if !kept.is_empty() || addrs.is_empty() {
        return Ok(kept);
    }
    let (has, records) = match addrs[0] {
        IpAddr::V6(_) => ("IPv6", "AAAA"),
        IpAddr::V4(_) => ("IPv4", "A"),
    };
    let shown: Vec<String> = addrs.iter().take(4).map(IpAddr::to_string).collect();
    let peer = peer(spec, spec.port(), None);
    let failure = Failure::new(
        FailureKind::NoRecords,
        Phase::Dns,
        format!(
            "{} has only {has} addresses ({}), and the node's Kong asks for no {records} records ({})",
            spec.host(),
            shown.join(", "),
            asked.setting
        ),
        peer,
    );
    let facts = crate::failure::Facts {
        fix: Some(&asked.fix),
        ..Default::default()
    };
    Err(failure.because(crate::failure::Cause::KongAsksOtherFamily, peer, facts))
}

/// Resolves the name here, then tries every address at once (through `via`, if given).
async fn every_address(
    spec: &Arc<CheckSpec>,
    port: u16,
    via: Option<Arc<ProxyUrl>>,
    shared: &Arc<RunContext>,
) -> PathResult {
    let (mut timings, mut cnames) = (Timings::default(), Vec::new());
    let mut origin = Origin::default();
    let addrs = match resolve_here(spec, shared, (&mut timings, &mut cnames), &mut origin).await {
        Ok(addrs) => addrs,
        Err(failure) => return PathResult::failed(failure, timings),
    };
    let pinned = addrs.clone();
    let (addrs, not_tried) = at_most_per_family(addrs);
    let dests = addrs
        .into_iter()
        .map(|ip| Dest::Addr(SocketAddr::new(ip, port)))
        .collect();
    let direct = via.is_none();
    let mut path = attempt_all(spec, dests, via, shared, timings).await;
    path.addresses_not_tried = not_tried;
    path.cnames = cnames;
    if direct && path.status == Status::Fail && !origin.is_plain() {
        Box::pin(super::origin::refine(
            spec, port, &origin, &pinned, shared, &mut path,
        ))
        .await;
    }
    path
}

/// The first `MAX_ADDRESSES_PER_FAMILY` addresses of each family, in the resolver's order,
/// and how many were left out.
fn at_most_per_family(addrs: Vec<IpAddr>) -> (Vec<IpAddr>, usize) {
    let total = addrs.len();
    let (mut v4, mut v6) = (0, 0);
    let kept: Vec<IpAddr> = addrs
        .into_iter()
        .filter(|ip| {
            let count = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
            *count += 1;
            *count <= MAX_ADDRESSES_PER_FAMILY
        })
        .collect();
    let left_out = total - kept.len();
    (kept, left_out)
}

/// The path through `proxy`. The proxy resolves the name (CONNECT, socks5h), and this host's
/// answer is kept as information; for socks5 the name is resolved here, as for a direct path.
async fn proxied(
    spec: &Arc<CheckSpec>,
    port: u16,
    proxy: Arc<ProxyUrl>,
    shared: &Arc<RunContext>,
) -> PathResult {
    if spec.ip.is_some() || !proxy.scheme.resolves_remotely() {
        return every_address(spec, port, Some(proxy), shared).await;
    }
    let dest = Dest::Name(spec.host().to_string(), port);
    let (local, mut path) = tokio::join!(
        shared.dns.resolve(spec.host(), spec.port(), shared.budget),
        attempt_all(spec, vec![dest], Some(proxy), shared, Timings::default())
    );
    let ms = (local.source == Source::Dns).then(|| millis(local.elapsed));
    let (addresses, error) = match local.addrs {
        Ok(addresses) => (addresses, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    path.local_dns = Some(Box::new(LocalDns {
        addresses,
        error,
        ms,
    }));
    path
}

/// Tries every destination at once, and lets the path's verdict be spoken.
async fn attempt_all(
    spec: &Arc<CheckSpec>,
    dests: Vec<Dest>,
    via: Option<Arc<ProxyUrl>>,
    shared: &Arc<RunContext>,
    timings: Timings,
) -> PathResult {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; dests.len()];
    if let [dest] = dests.as_slice() {
        // One address (an IP target, a tunnel to a name): no task to spawn.
        outcomes[0] = Some(opinion::attempt(spec, dest.clone(), via, shared).await);
    } else {
        let mut attempts = JoinSet::new();
        for (index, dest) in dests.iter().cloned().enumerate() {
            let (spec, via, shared) = (spec.clone(), via.clone(), shared.clone());
            let attempt = async move { (index, opinion::attempt(&spec, dest, via, &shared).await) };
            attempts.spawn(super::same_check(attempt));
        }
        while let Some(joined) = attempts.join_next().await {
            if let Ok((index, outcome)) = joined {
                outcomes[index] = Some(outcome);
            }
        }
    }
    let outcomes = dests
        .iter()
        .zip(outcomes)
        .map(|(dest, outcome)| {
            outcome.unwrap_or_else(|| {
                let failure = Failure::new(
                    FailureKind::LocalError,
                    Phase::Tcp,
                    "the connection attempt stopped unexpectedly",
                    peer(spec, Some(dest.port()), dest.ip()),
                );
                Outcome::failed(dest.ip(), failure)
            })
        })
        .collect();
    speak(outcomes, timings)
}

/// The path's verdict from its attempts, in the order tried: ok when one worked (warn when it
/// has a warning, which is then the path's error), else fail with the most telling failure.
/// The attempt that speaks (the one that worked, else the only one) gives the path its step
/// timings; TLS facts and the HTTP status come from it, else from any attempt that got them.
fn speak(outcomes: Vec<Outcome>, mut timings: Timings) -> PathResult {
    let addresses = outcomes.iter().filter_map(Outcome::address).collect();
    let worked = outcomes.iter().position(|o| o.error.is_none());
    let (status, error, speaker) = match worked {
        Some(i) => {
            let ok = &outcomes[i];
            // What warns is data: a warning's kind and cause say it warns.
            debug_assert!(
                ok.warnings
                    .iter()
                    .all(|w| w.severity() == crate::failure::Severity::Warn),
                "{:?}",
                ok.warnings
            );
            let status = match ok.warnings.is_empty() {
                true => Status::Ok,
                false => Status::Warn,
            };
            (status, ok.warnings.first().cloned(), Some(ok))
        }
        None => {
            let error = most_telling(outcomes.iter().filter_map(|o| o.error.as_ref()));
            let only = match outcomes.as_slice() {
                [only] => Some(only),
                _ => None,
            };
            (Status::Fail, error, only)
        }
    };
    // The second opinion of the attempt whose failure speaks, else of any that took one.
    let opinion = outcomes
        .iter()
        .find(|o| o.second.is_some() && o.error == error)
        .or_else(|| outcomes.iter().find(|o| o.second.is_some()));
    let (second_opinion, trace) = match (status, opinion) {
        (Status::Fail, Some(o)) => (o.second.clone(), o.hops.clone()),
        _ => (None, None),
    };
    if let Some(s) = speaker {
        timings.connect = s.times.connect_ms;
        timings.proxy = s.times.proxy_ms;
        timings.tls = s.times.tls_ms;
        timings.tls_verdict = s.times.tls_verdict_ms;
        if s.error.is_none() {
            timings.http = s.times.http_ms;
        }
    }
    PathResult {
        status,
        error,
        addresses,
        timings_ms: timings,
        tls: speaker
            .and_then(|s| s.tls.clone())
            .or_else(|| outcomes.iter().find_map(|o| o.tls.clone()))
            .map(Box::new),
        http_status: speaker
            .and_then(|s| s.http_status)
            .or_else(|| outcomes.iter().find_map(|o| o.http_status)),
        second_opinion: second_opinion.map(Box::new),
        trace,
        ..PathResult::new(status)
    }
}

/// The failure that says most: one from a later phase (TLS over TCP), else the first address's.
fn most_telling<'a>(failures: impl Iterator<Item = &'a Failure>) -> Option<Failure> {
    let rank = |f: &Failure| match f.phase {
        Phase::Http => 4,
        Phase::Tls => 3,
        Phase::Proxy => 2,
        Phase::Tcp | Phase::Udp | Phase::Bind => 1,
        Phase::Queued | Phase::Dns | Phase::File => 0,
    };
    failures
        .fold(None, |best: Option<&Failure>, f| match best {
            Some(b) if rank(b) >= rank(f) => Some(b),
            _ => Some(f),
        })
        .cloned()
}

/// The endpoint of `spec` at `port` and `ip`, for failures and hints.
fn peer(spec: &CheckSpec, port: Option<u16>, ip: Option<IpAddr>) -> Peer<'_> {
    Peer {
        host: spec.host(),
        port,
        ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::tls::{TlsInfo, Trust};

    fn failure(kind: FailureKind, phase: Phase) -> Failure {
        let peer = Peer {
            host: "cp.example",
            port: Some(443),
            ip: None,
        };
        Failure::new(kind, phase, kind.as_str(), peer)
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    fn tls_info(issuer: &str) -> TlsInfo {
        TlsInfo {
            version: "TLSv1.3".into(),
            cipher: String::new(),
            alpn: None,
            subject: "CN=cp.example".into(),
            issuer: issuer.into(),
            san: vec!["cp.example".into()],
            not_before: String::new(),
            not_after: String::new(),
            days_left: 90,
            chain_len: 1,
            trust: Trust::Public,
            client_cert_requested: false,
        }
    }

    #[test]
    fn the_latest_phase_speaks_and_the_first_of_equals() {
        let refused = failure(FailureKind::Refused, Phase::Tcp);
        let timeout = failure(FailureKind::Timeout, Phase::Tcp);
        let untrusted = failure(FailureKind::CertUntrusted, Phase::Tls);
        let status = failure(FailureKind::HttpStatus, Phase::Http);
        let denied = failure(FailureKind::ProxyDenied, Phase::Proxy);
        let nxdomain = failure(FailureKind::Nxdomain, Phase::Dns);
        let kind = |all: &[&Failure]| most_telling(all.iter().copied()).map(|f| f.kind);
        assert_eq!(kind(&[]), None);
        assert_eq!(kind(&[&refused, &timeout]), Some(FailureKind::Refused));
        assert_eq!(kind(&[&timeout, &refused]), Some(FailureKind::Timeout));
        assert_eq!(
            kind(&[&refused, &untrusted]),
            Some(FailureKind::CertUntrusted)
        );
        assert_eq!(
            kind(&[&untrusted, &status, &refused]),
            Some(FailureKind::HttpStatus)
        );
        assert_eq!(kind(&[&nxdomain, &denied]), Some(FailureKind::ProxyDenied));
        assert_eq!(
            kind(&[&denied, &untrusted]),
            Some(FailureKind::CertUntrusted)
        );
        assert_eq!(kind(&[&nxdomain, &refused]), Some(FailureKind::Refused));
    }

    #[test]
    fn one_address_that_works_makes_the_path_ok() {
        let mut ok = Outcome::new(ip(2));
        ok.times.connect_ms = Some(3.0);
        ok.times.tls_ms = Some(4.0);
        ok.times.http_ms = Some(5.0);
        ok.tls = Some(tls_info("CN=Good CA"));
        ok.http_status = Some(204);
        let mut bad = Outcome::failed(ip(1), failure(FailureKind::Timeout, Phase::Tcp));
        bad.times.connect_ms = Some(5000.0);
        let timings = Timings {
            dns: Some(1.5),
            ..Timings::default()
        };
        let path = speak(vec![bad, ok], timings);
        assert_eq!(path.status, Status::Ok);
        assert!(path.error.is_none());
        // Both addresses are listed, in the order tried.
        let listed: Vec<_> = path.addresses.iter().map(|a| (a.ip, a.status)).collect();
        assert_eq!(
            listed,
            [
                (ip(1).unwrap(), crate::report::AddressStatus::Fail),
                (ip(2).unwrap(), crate::report::AddressStatus::Ok)
            ]
        );
        // The timings are those of the address that worked, beside the DNS time.
        let t = &path.timings_ms;
        assert_eq!(
            (t.dns, t.connect, t.tls, t.http),
            (Some(1.5), Some(3.0), Some(4.0), Some(5.0))
        );
        assert_eq!(path.http_status, Some(204));
        assert_eq!(path.tls.unwrap().issuer, "CN=Good CA");
    }

    #[test]
    fn a_warning_of_the_attempt_that_worked_makes_the_path_warn() {
        let mut ok = Outcome::new(ip(1));
        ok.warnings = vec![
            failure(FailureKind::CertExpiring, Phase::Tls),
            failure(FailureKind::AlpnNotNegotiated, Phase::Tls),
        ];
        let path = speak(vec![ok], Timings::default());
        assert_eq!(path.status, Status::Warn);
        assert_eq!(path.error.unwrap().kind, FailureKind::CertExpiring);
        // A warning does not fail the address.
        assert_eq!(path.addresses[0].status, crate::report::AddressStatus::Ok);
    }

    #[test]
    fn when_every_address_fails_the_most_telling_failure_speaks() {
        let mut tls = Outcome::failed(ip(2), failure(FailureKind::CertExpired, Phase::Tls));
        tls.times.connect_ms = Some(2.0);
        tls.tls = Some(tls_info("CN=Old CA"));
        let tcp = Outcome::failed(ip(1), failure(FailureKind::Refused, Phase::Tcp));
        let path = speak(vec![tcp, tls], Timings::default());
        assert_eq!(path.status, Status::Fail);
        assert_eq!(path.error.unwrap().kind, FailureKind::CertExpired);
        // The certificate seen is reported even though no attempt worked…
        assert_eq!(path.tls.unwrap().issuer, "CN=Old CA");
        // …but with two attempts, neither speaks for the timings.
        assert_eq!(path.timings_ms.connect, None);
    }

    #[test]
    fn a_single_failed_attempt_keeps_its_timings_but_not_its_http_time() {
        let mut only = Outcome::failed(None, failure(FailureKind::HttpStatus, Phase::Http));
        only.times.connect_ms = Some(1.0);
        only.times.proxy_ms = Some(2.0);
        only.times.http_ms = Some(3.0);
        only.http_status = Some(503);
        let path = speak(vec![only], Timings::default());
        // A tunnel to a name through a proxy: no address of this host's to list.
        assert!(path.addresses.is_empty());
        let t = &path.timings_ms;
        assert_eq!((t.connect, t.proxy, t.http), (Some(1.0), Some(2.0), None));
        assert_eq!(path.http_status, Some(503));
    }

    #[test]
    fn at_most_sixteen_addresses_of_each_family_are_tried() {
        let v4 = (0..20).map(|i| IpAddr::from([192, 0, 2, i]));
        let v6 = (0..18u16).map(|i| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]));
        let (kept, left_out) = at_most_per_family(v4.chain(v6).collect());
        assert_eq!(kept.len(), 32);
        assert_eq!(left_out, 6);
        assert_eq!(kept[15], IpAddr::from([192, 0, 2, 15]));
        assert_eq!(kept[16], IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]));
    }
}
