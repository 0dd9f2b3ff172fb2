//! The paths of one check: a local bind; the direct path (resolve here, then every address at
//! once); the proxied path (the proxy resolves the name, or this host does for socks5); both
//! side by side with `--compare-direct`. And which attempt speaks for a path: the one that
//! worked, else the most telling failure.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Shared;
use super::attempt::{self, Outcome};
use crate::check::CheckSpec;
use crate::failure::{Failure, FailureKind, Peer, Phase};
use crate::probe::dns::{Resolution, Source};
use crate::probe::proxy::Dest;
use crate::probe::{bind, millis};
use crate::report::{CheckResult, LocalDns, PathResult, Status, Timings};
use crate::route::ProxyUrl;
use crate::target::Probe;

/// The addresses attempted for one name, per family: a name that resolves to thousands of
/// addresses must not cost thousands of connections, or more than one timeout.
pub const MAX_ADDRESSES_PER_FAMILY: usize = 16;

/// Runs one check on the path its route names (and the direct one beside it when asked).
pub(super) async fn check(spec: &Arc<CheckSpec>, shared: &Arc<Shared>) -> CheckResult {
    let start = Instant::now();
    let mut direct_path = None;
    let path = match (&spec.route.proxy, spec.port()) {
        _ if spec.probe() == Probe::Bind => Box::pin(local_port(spec)).await,
        (Some(proxy), Some(port)) => {
            // Boxed: a direct check's task need not carry room for the proxied paths.
            let via = Box::pin(proxied(spec, port, proxy.clone(), shared));
            if spec.compare_direct {
                let (via, direct) = tokio::join!(via, direct(spec, shared));
                direct_path = Some(direct);
                via
            } else {
                via.await
            }
        }
        _ => direct(spec, shared).await,
    };
    let mut result = CheckResult::of(spec, path);
    result.direct = direct_path;
    result.path.timings_ms.total = millis(start.elapsed());
    // A proxy may quote back the credentials it was sent (in a header, a page): they are cut
    // out of everything the check reports.
    if let Some(credentials) = spec
        .route
        .proxy
        .as_ref()
        .and_then(|p| p.credentials.as_ref())
    {
        let secrets = credentials.secrets();
        for failure in result.failures_mut() {
            failure.message = crate::sanitize::scrub(&failure.message, &secrets);
            failure.hint = crate::sanitize::scrub(&failure.hint, &secrets);
        }
    }
    result
}

/// A local port check: bind the address and let go (with a /proc scan for the holder, off the
/// async workers).
async fn local_port(spec: &CheckSpec) -> PathResult {
    let ip = spec
        .ip
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, spec.port().unwrap_or_default());
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
async fn direct(spec: &Arc<CheckSpec>, shared: &Arc<Shared>) -> PathResult {
    if let (Some(port), false) = (spec.port(), spec.probe() == Probe::Dns) {
        return every_address(spec, port, None, shared).await;
    }
    let mut timings = Timings::default();
    let addrs = match resolve_here(spec, shared, &mut timings).await {
        Ok(addrs) => addrs,
        Err(failure) => return PathResult::failed(failure, timings),
    };
    PathResult {
        addresses: addrs
            .into_iter()
            .filter_map(|ip| Outcome::new(Some(ip)).address())
            .collect(),
        timings_ms: timings,
        ..PathResult::new(Status::Ok)
    }
}

/// Resolves the name here; `Err` is the path's failure. DNS time goes into `timings`.
async fn resolve_here(
    spec: &CheckSpec,
    shared: &Shared,
    timings: &mut Timings,
) -> Result<Vec<IpAddr>, Failure> {
    let resolution = match spec.ip {
        Some(ip) => Resolution {
            addrs: Ok(vec![ip]),
            source: Source::Literal,
            elapsed: Duration::ZERO,
        },
        None => {
            shared
                .dns
                .resolve(spec.host(), spec.port(), shared.budget)
                .await
        }
    };
    if resolution.source == Source::Dns {
        timings.dns = Some(millis(resolution.elapsed));
    }
    resolution.addrs
}

/// Resolves the name here, then tries every address at once (through `via`, if given).
async fn every_address(
    spec: &Arc<CheckSpec>,
    port: u16,
    via: Option<Arc<ProxyUrl>>,
    shared: &Arc<Shared>,
) -> PathResult {
    let mut timings = Timings::default();
    let addrs = match resolve_here(spec, shared, &mut timings).await {
        Ok(addrs) => addrs,
        Err(failure) => return PathResult::failed(failure, timings),
    };
    let (addrs, not_tried) = at_most_per_family(addrs);
    let dests = addrs
        .into_iter()
        .map(|ip| Dest::Addr(SocketAddr::new(ip, port)))
        .collect();
    let mut path = attempt_all(spec, dests, via, shared, timings).await;
    path.addresses_not_tried = not_tried;
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
    shared: &Arc<Shared>,
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
    path.local_dns = Some(LocalDns {
        addresses,
        error,
        ms,
    });
    path
}

/// Tries every destination at once, and lets the path's verdict be spoken.
async fn attempt_all(
    spec: &Arc<CheckSpec>,
    dests: Vec<Dest>,
    via: Option<Arc<ProxyUrl>>,
    shared: &Arc<Shared>,
    timings: Timings,
) -> PathResult {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; dests.len()];
    if let [dest] = dests.as_slice() {
        // One address (an IP target, a tunnel to a name): no task to spawn.
        outcomes[0] = Some(attempt::run(spec, dest.clone(), via, shared).await);
    } else {
        let mut attempts = JoinSet::new();
        for (index, dest) in dests.iter().cloned().enumerate() {
            let (spec, via, shared) = (spec.clone(), via.clone(), shared.clone());
            attempts.spawn(async move { (index, attempt::run(&spec, dest, via, &shared).await) });
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
    if let Some(s) = speaker {
        timings.connect = s.times.connect_ms;
        timings.proxy = s.times.proxy_ms;
        timings.tls = s.times.tls_ms;
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
            .or_else(|| outcomes.iter().find_map(|o| o.tls.clone())),
        http_status: speaker
            .and_then(|s| s.http_status)
            .or_else(|| outcomes.iter().find_map(|o| o.http_status)),
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
        Phase::Queued | Phase::Dns => 0,
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
