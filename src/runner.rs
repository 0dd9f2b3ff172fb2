//! The runner: one task per check, connections bounded by a semaphore, every wait bounded by
//! the phase timeout and the run's deadline. It never prints; it returns results.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::failure::{Failure, FailureKind, Peer, Phase};
use crate::plan::{CheckSpec, Plan};
use crate::probe::dns::{Dns, Resolution, Source};
use crate::probe::http::{self, Expect, HttpRequest};
use crate::probe::proxy::{Dest, Forwarded, Via};
use crate::probe::tls::{Tls, TlsFailure, TlsInfo, TlsRequest};
use crate::probe::{BoxStream, Budget, Dialed, bind, millis, tcp, udp};
use crate::report::{
    AddressResult, AddressStatus, CheckResult, DirectPath, LocalDns, Status, Timings,
};
use crate::route::{ProxyConfig, ProxyUrl};
use crate::settings::Settings;
use crate::target::Probe;

/// A run with no --deadline still has one, far away.
const NO_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long past the deadline the runner waits for tasks to notice it.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// What every check task shares.
struct Shared {
    dns: Dns,
    tls: Tls,
    slots: Arc<Semaphore>,
    timeout: Duration,
    deadline: Instant,
    server_name: Option<String>,
    alpn: Vec<String>,
    expect: Expect,
    allow_private_ca: bool,
    proxies: ProxyConfig,
    compare_direct: bool,
    /// `--udp-payload`: overrides every udp check's datagram.
    udp_payload: Option<String>,
}

/// Told as checks start and finish (the progress bar). Skipped checks finish at once.
pub trait Progress: Send + Sync {
    fn started(&self, index: usize, id: &str);
    fn finished(&self, index: usize);
}

/// Runs every check of `plan` at once (at most `--concurrency` in flight), until all are done,
/// the deadline passes, or `interrupt` completes (Ctrl-C): then the checks still running are
/// reported as `deadline` failures, and the results so far are kept, in plan order.
pub async fn run(
    plan: &Plan,
    settings: &Settings,
    progress: Option<Arc<dyn Progress>>,
    interrupt: impl std::future::Future<Output = ()>,
) -> Run {
    let deadline = Instant::now() + settings.deadline.unwrap_or(NO_DEADLINE);
    let shared = Arc::new(Shared {
        dns: Dns::new(settings.dns.clone()),
        tls: Tls::new(settings.tls.clone()),
        slots: Arc::new(Semaphore::new(settings.concurrency)),
        timeout: settings.timeout,
        deadline,
        server_name: settings.server_name.clone(),
        alpn: settings.alpn.clone(),
        expect: settings.expect.clone(),
        allow_private_ca: settings.allow_private_ca,
        proxies: settings.proxies.clone(),
        compare_direct: settings.compare_direct,
        udp_payload: settings.udp_payload.clone(),
    });
    let mut results: Vec<Option<CheckResult>> = vec![None; plan.checks.len()];
    for (index, spec) in plan.checks.iter().enumerate() {
        if let Some(reason) = &spec.skip {
            results[index] = Some(skipped(spec, reason));
            if let Some(progress) = &progress {
                progress.finished(index);
            }
        }
    }
    // At most `concurrency` checks in flight: a started check's future holds its buffers, so
    // spawning 10,000 at once would cost memory for nothing.
    let mut queue = plan
        .checks
        .iter()
        .enumerate()
        .filter(|(_, spec)| spec.skip.is_none());
    let mut tasks = JoinSet::new();
    let start = |tasks: &mut JoinSet<(usize, CheckResult)>, (index, spec): (usize, &CheckSpec)| {
        let shared = shared.clone();
        let spec = spec.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            if let Some(progress) = &progress {
                progress.started(index, &spec.id);
            }
            let result = run_check(&spec, shared).await;
            if let Some(progress) = &progress {
                progress.finished(index);
            }
            (index, result)
        });
    };
    for next in queue.by_ref().take(settings.concurrency.max(1)) {
        start(&mut tasks, next);
    }
    // Every wait inside a check is bounded by the deadline; the grace is a safety net.
    let stop = deadline.checked_add(DEADLINE_GRACE).unwrap_or(deadline);
    tokio::pin!(interrupt);
    let mut interrupted = false;
    loop {
        tokio::select! {
            // An interrupt that came before the run (while its input was read) stops it
            // before any result is taken.
            biased;
            () = &mut interrupt => {
                interrupted = true;
                break;
            }
            joined = tokio::time::timeout_at(stop, tasks.join_next()) => match joined {
                Ok(Some(joined)) => {
                    if let Ok((index, result)) = joined {
                        results[index] = Some(result);
                    }
                    if let Some(next) = queue.next() {
                        start(&mut tasks, next);
                    }
                }
                Ok(None) | Err(_) => break,
            },
        }
    }
    // Checks that finished as the interrupt came are part of the report so far.
    while let Some(joined) = tasks.try_join_next() {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    tasks.abort_all();
    let checks = plan
        .checks
        .iter()
        .zip(results)
        .map(|(spec, result)| result.unwrap_or_else(|| unfinished(spec, interrupted)))
        .collect();
    Run {
        checks,
        interrupted,
    }
}

/// The results of a run, in the plan's order.
pub struct Run {
    pub checks: Vec<CheckResult>,
    /// Ctrl-C or SIGTERM ended the run early.
    pub interrupted: bool,
}

fn base(spec: &CheckSpec, status: Status) -> CheckResult {
    CheckResult {
        id: spec.id.clone(),
        name: spec.name.clone(),
        role: spec.role,
        required: spec.required,
        profile: spec.profile.clone(),
        target: spec.target(),
        host: spec.host.clone(),
        port: spec.port,
        probe: spec.probe,
        status,
        error: None,
        reason: None,
        addresses: Vec::new(),
        timings_ms: Timings::default(),
        tls: None,
        http_status: None,
        note: spec.note.clone(),
        proxy: None,
        proxy_reason: None,
        local_dns: None,
        direct: None,
        addresses_not_tried: 0,
    }
}

fn skipped(spec: &CheckSpec, reason: &str) -> CheckResult {
    CheckResult {
        reason: Some(reason.to_string()),
        ..base(spec, Status::Skipped)
    }
}

/// A check whose task did not report back (the deadline passed, the run was interrupted, or
/// it panicked).
fn unfinished(spec: &CheckSpec, interrupted: bool) -> CheckResult {
    let peer = Peer {
        host: &spec.host,
        port: spec.port,
        ip: spec.ip,
    };
    CheckResult {
        error: Some(Failure::new(
            FailureKind::Deadline,
            Phase::Queued,
            match interrupted {
                true => "the run was interrupted (Ctrl-C or SIGTERM) before the check finished",
                false => "the check did not finish before the run's deadline",
            },
            peer,
        )),
        ..base(spec, Status::Fail)
    }
}

async fn run_check(spec: &CheckSpec, shared: Arc<Shared>) -> CheckResult {
    let start = Instant::now();
    let budget = Budget {
        timeout: shared.timeout,
        deadline: shared.deadline,
    };
    let mut result = base(spec, Status::Fail);
    let route = shared.proxies.route_of(
        spec.route.as_ref(),
        spec.probe,
        &spec.host,
        spec.ip,
        spec.port,
    );
    // A proxy may quote back the credentials it was sent (in a header, a page): they are cut
    // out of everything the check reports.
    let secrets = route
        .proxy
        .as_ref()
        .and_then(|p| p.credentials.as_ref())
        .map(|c| c.secrets());
    result.proxy = route.proxy.as_ref().map(|p| p.to_string());
    result.proxy_reason = route.reason;
    let path = match (route.proxy, spec.port) {
        _ if spec.probe == Probe::Bind => Box::pin(local_port(spec)).await,
        (Some(proxy), Some(port)) => {
            // Boxed: a direct check's task need not carry room for the proxied paths.
            let via = Box::pin(proxied(spec, port, proxy, &shared, budget));
            if shared.compare_direct {
                let (via, direct) = tokio::join!(via, direct(spec, &shared, budget));
                result.direct = Some(DirectPath {
                    status: direct.status,
                    error: direct.error,
                    addresses: direct.addresses,
                    timings_ms: direct.timings,
                });
                via
            } else {
                via.await
            }
        }
        _ => direct(spec, &shared, budget).await,
    };
    result.status = path.status;
    result.error = path.error;
    result.addresses = path.addresses;
    result.timings_ms = path.timings;
    result.tls = path.tls;
    result.http_status = path.http_status;
    result.local_dns = path.local_dns;
    result.addresses_not_tried = path.not_tried;
    result.timings_ms.total = millis(start.elapsed());
    if let Some(secrets) = secrets {
        scrub(&mut result, &secrets);
    }
    result
}

/// Cuts `secrets` out of every failure of `result`.
fn scrub(result: &mut CheckResult, secrets: &[String]) {
    let failures = result
        .error
        .iter_mut()
        .chain(result.addresses.iter_mut().filter_map(|a| a.error.as_mut()))
        .chain(result.local_dns.iter_mut().filter_map(|l| l.error.as_mut()))
        .chain(result.direct.iter_mut().flat_map(|d| {
            d.error
                .iter_mut()
                .chain(d.addresses.iter_mut().filter_map(|a| a.error.as_mut()))
        }));
    for failure in failures {
        failure.message = crate::sanitize::scrub(&failure.message, secrets);
        failure.hint = crate::sanitize::scrub(&failure.hint, secrets);
    }
}

/// What one path to an endpoint (direct, or through a proxy) came to.
struct PathResult {
    status: Status,
    error: Option<Failure>,
    addresses: Vec<AddressResult>,
    timings: Timings,
    tls: Option<TlsInfo>,
    http_status: Option<u16>,
    local_dns: Option<LocalDns>,
    /// Addresses beyond `MAX_ADDRESSES_PER_FAMILY` that were not attempted.
    not_tried: usize,
}

impl PathResult {
    fn failed(error: Failure, timings: Timings) -> PathResult {
        PathResult {
            status: Status::Fail,
            error: Some(error),
            addresses: Vec::new(),
            timings,
            tls: None,
            http_status: None,
            local_dns: None,
            not_tried: 0,
        }
    }
}

/// A local port check: bind the address and let go (with a /proc scan for the holder, off the
/// async workers).
async fn local_port(spec: &CheckSpec) -> PathResult {
    let addr = SocketAddr::new(
        spec.ip
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        spec.port.unwrap_or_default(),
    );
    let checked = tokio::task::spawn_blocking(move || bind::check(addr)).await;
    let outcome = match checked {
        Ok(Ok(())) => Outcome::new(Some(addr.ip())),
        Ok(Err(failure)) => Outcome::failed(Some(addr.ip()), failure),
        Err(_) => {
            let peer = Peer {
                host: &spec.host,
                port: spec.port,
                ip: spec.ip,
            };
            let failure = Failure::new(
                FailureKind::LocalError,
                Phase::Bind,
                "the bind check stopped unexpectedly",
                peer,
            );
            Outcome::failed(Some(addr.ip()), failure)
        }
    };
    PathResult {
        status: match outcome.error {
            None => Status::Ok,
            Some(_) => Status::Fail,
        },
        error: outcome.error.clone(),
        addresses: outcome.address().into_iter().collect(),
        timings: Timings::default(),
        tls: None,
        http_status: None,
        local_dns: None,
        not_tried: 0,
    }
}

/// Resolves the name here; `Err` is the path's failure. DNS time goes into `timings`.
async fn resolve_here(
    spec: &CheckSpec,
    shared: &Shared,
    budget: Budget,
    timings: &mut Timings,
) -> Result<Vec<IpAddr>, Failure> {
    let resolution = match spec.ip {
        Some(ip) => Resolution {
            addrs: Ok(vec![ip]),
            source: Source::Literal,
            elapsed: Duration::ZERO,
        },
        None => shared.dns.resolve(&spec.host, spec.port, budget).await,
    };
    if resolution.source == Source::Dns {
        timings.dns = Some(millis(resolution.elapsed));
    }
    resolution.addrs
}

/// The direct path: resolve here, then every address at once.
async fn direct(spec: &CheckSpec, shared: &Arc<Shared>, budget: Budget) -> PathResult {
    match (spec.port, spec.probe) {
        (Some(port), probe) if probe != Probe::Dns => {
            every_address(spec, port, None, shared, budget).await
        }
        // A dns probe: the addresses are the answer.
        _ => {
            let mut timings = Timings::default();
            let addrs = match resolve_here(spec, shared, budget, &mut timings).await {
                Ok(addrs) => addrs,
                Err(failure) => return PathResult::failed(failure, timings),
            };
            let addresses = addrs
                .into_iter()
                .filter_map(|ip| Outcome::new(Some(ip)).address())
                .collect();
            PathResult {
                status: Status::Ok,
                error: None,
                addresses,
                timings,
                tls: None,
                http_status: None,
                local_dns: None,
                not_tried: 0,
            }
        }
    }
}

/// Resolves the name here, then tries every address at once (through `via`, if given).
async fn every_address(
    spec: &CheckSpec,
    port: u16,
    via: Option<Arc<ProxyUrl>>,
    shared: &Arc<Shared>,
    budget: Budget,
) -> PathResult {
    let mut timings = Timings::default();
    let addrs = match resolve_here(spec, shared, budget, &mut timings).await {
        Ok(addrs) => addrs,
        Err(failure) => return PathResult::failed(failure, timings),
    };
    let (addrs, not_tried) = at_most_per_family(addrs);
    let dests = addrs
        .into_iter()
        .map(|ip| Dest::Addr(SocketAddr::new(ip, port)))
        .collect();
    let mut path = attempt_all(spec, dests, via, shared, budget, timings).await;
    path.not_tried = not_tried;
    path
}

/// The addresses attempted for one name, per family: a name that resolves to thousands of
/// addresses must not cost thousands of connections, or more than one timeout.
pub const MAX_ADDRESSES_PER_FAMILY: usize = 16;

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
    spec: &CheckSpec,
    port: u16,
    proxy: Arc<ProxyUrl>,
    shared: &Arc<Shared>,
    budget: Budget,
) -> PathResult {
    if spec.ip.is_some() || !proxy.scheme.resolves_remotely() {
        return every_address(spec, port, Some(proxy), shared, budget).await;
    }
    let dest = Dest::Name(spec.host.clone(), port);
    let (local, mut path) = tokio::join!(
        shared.dns.resolve(&spec.host, spec.port, budget),
        attempt_all(
            spec,
            vec![dest],
            Some(proxy),
            shared,
            budget,
            Timings::default()
        )
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

/// Tries every destination at once, and keeps the first that works (or the most telling
/// failure).
async fn attempt_all(
    spec: &CheckSpec,
    dests: Vec<Dest>,
    via: Option<Arc<ProxyUrl>>,
    shared: &Arc<Shared>,
    budget: Budget,
    mut timings: Timings,
) -> PathResult {
    let job = |dest: Dest| Attempt {
        spec: spec.clone(),
        dest,
        via: via.clone(),
        budget,
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; dests.len()];
    if let [dest] = dests.as_slice() {
        // One address (an IP target, a tunnel to a name): no task to spawn.
        outcomes[0] = Some(job(dest.clone()).run(shared).await);
    } else {
        let mut attempts = JoinSet::new();
        for (index, dest) in dests.iter().cloned().enumerate() {
            let job = job(dest);
            let shared = shared.clone();
            attempts.spawn(async move { (index, job.run(&shared).await) });
        }
        while let Some(joined) = attempts.join_next().await {
            if let Ok((index, outcome)) = joined {
                outcomes[index] = Some(outcome);
            }
        }
    }
    let mut addresses = Vec::new();
    let mut chosen: Option<Outcome> = None;
    let mut failures = Vec::new();
    for (dest, outcome) in dests.iter().zip(outcomes) {
        let outcome = outcome.unwrap_or_else(|| {
            let peer = Peer {
                host: &spec.host,
                port: Some(dest.port()),
                ip: dest.ip(),
            };
            Outcome::failed(
                dest.ip(),
                Failure::new(
                    FailureKind::LocalError,
                    Phase::Tcp,
                    "the connection attempt stopped unexpectedly",
                    peer,
                ),
            )
        });
        addresses.extend(outcome.address());
        if outcome.error.is_none() && chosen.is_none() {
            chosen = Some(outcome);
        } else {
            failures.push(outcome);
        }
    }
    // The attempt that speaks for the path: the one that worked, else the only one (a tunnel
    // to a name), whose timings are then the check's.
    let (status, error, speaker) = match chosen {
        Some(ok) => {
            let status = match ok.warnings.is_empty() {
                true => Status::Ok,
                false => Status::Warn,
            };
            (status, ok.warnings.first().cloned(), Some(ok))
        }
        None => {
            let error = most_telling(failures.iter().filter_map(|o| o.error.as_ref()));
            let only = (failures.len() == 1).then(|| failures[0].clone());
            (Status::Fail, error, only)
        }
    };
    if let Some(s) = &speaker {
        timings.connect = s.connect_ms;
        timings.proxy = s.proxy_ms;
        timings.tls = s.tls_ms;
        if s.error.is_none() {
            timings.http = s.http_ms;
        }
    }
    PathResult {
        status,
        error,
        addresses,
        timings,
        tls: speaker
            .as_ref()
            .and_then(|s| s.tls.clone())
            .or_else(|| failures.iter().find_map(|o| o.tls.clone())),
        http_status: speaker
            .as_ref()
            .and_then(|s| s.http_status)
            .or_else(|| failures.iter().find_map(|o| o.http_status)),
        local_dns: None,
        not_tried: 0,
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

/// What one connection attempt (one address, or one tunnel to a name) came to.
#[derive(Debug, Clone)]
struct Outcome {
    /// The address tried, unless a proxy resolved the name.
    ip: Option<IpAddr>,
    error: Option<Failure>,
    connect_ms: Option<f64>,
    proxy_ms: Option<f64>,
    tls_ms: Option<f64>,
    http_ms: Option<f64>,
    tls: Option<TlsInfo>,
    http_status: Option<u16>,
    /// Reasons to warn although the attempt worked.
    warnings: Vec<Failure>,
}

impl Outcome {
    fn new(ip: Option<IpAddr>) -> Outcome {
        Outcome {
            ip,
            error: None,
            connect_ms: None,
            proxy_ms: None,
            tls_ms: None,
            http_ms: None,
            tls: None,
            http_status: None,
            warnings: Vec::new(),
        }
    }

    fn failed(ip: Option<IpAddr>, failure: Failure) -> Outcome {
        Outcome::new(ip).fail(failure)
    }

    /// Marks the attempt failed at a later phase, keeping what earlier phases measured.
    fn fail(mut self, failure: Failure) -> Outcome {
        self.error = Some(failure);
        self
    }

    /// The report's line for the address tried, if this host chose one.
    fn address(&self) -> Option<AddressResult> {
        Some(AddressResult {
            ip: self.ip?,
            status: match self.error {
                None => AddressStatus::Ok,
                Some(_) => AddressStatus::Fail,
            },
            error: self.error.clone(),
            connect_ms: self.connect_ms,
            proxy_ms: self.proxy_ms,
            tls_ms: self.tls_ms,
            http_ms: self.http_ms,
        })
    }
}

/// One connection attempt: TCP to one address (or a tunnel through a proxy), then TLS and
/// HTTP as the probe asks.
struct Attempt {
    spec: CheckSpec,
    dest: Dest,
    via: Option<Arc<ProxyUrl>>,
    budget: Budget,
}

impl Attempt {
    async fn run(self, shared: &Shared) -> Outcome {
        let ip = self.dest.ip();
        let host = self.spec.host.as_str();
        let peer = Peer {
            host,
            port: Some(self.dest.port()),
            ip,
        };
        // A slot is one socket; waiting for one is bounded by the deadline only.
        let permit =
            tokio::time::timeout_at(self.budget.deadline, shared.slots.clone().acquire_owned())
                .await;
        let _permit = match permit {
            Ok(Ok(permit)) => permit,
            _ => {
                let failure = Failure::new(
                    FailureKind::Deadline,
                    Phase::Queued,
                    "the run's deadline passed while the check waited for a connection slot",
                    peer,
                );
                return Outcome::failed(ip, failure);
            }
        };
        let mut outcome = Outcome::new(ip);
        if let (Probe::Udp, Dest::Addr(addr)) = (self.spec.probe, &self.dest) {
            let payload = shared
                .udp_payload
                .as_deref()
                .or(self.spec.payload.as_deref())
                .map_or(udp::DEFAULT_PAYLOAD, str::as_bytes);
            match udp::probe(host, *addr, payload, self.budget).await {
                Ok(reply) => outcome.connect_ms = Some(millis(reply)),
                // Silence proves nothing either way: a warning, not a failure.
                Err(failure) if failure.kind == FailureKind::UdpNoReply => {
                    outcome.warnings.push(failure);
                }
                Err(failure) => return outcome.fail(failure),
            }
            return outcome;
        }
        let (stream, dialed) = match (&self.dest, &self.via) {
            (Dest::Addr(addr), None) => match tcp::connect(host, *addr, self.budget).await {
                Ok((stream, connect)) => {
                    outcome.connect_ms = Some(millis(connect));
                    let dialed = Dialed {
                        port: addr.port(),
                        ip: Some(addr.ip()),
                        label: addr.to_string(),
                    };
                    (Box::new(stream) as BoxStream, dialed)
                }
                Err(failure) => return outcome.fail(failure),
            },
            (dest, Some(proxy))
                if self.spec.probe == Probe::Http && proxy.scheme.forwards_http() =>
            {
                // As curl does: a plain HTTP request goes to the proxy whole, with no tunnel.
                let via = Via {
                    proxy,
                    dns: &shared.dns,
                    tls: &shared.tls,
                };
                // Boxed, as the other proxy, TLS and HTTP steps: a plain TCP check's future (and
                // the task that holds it) stays small.
                return match Box::pin(via.forwarder(host, dest, self.budget)).await {
                    Ok((tunnel, forwarded)) => {
                        outcome.connect_ms = Some(millis(tunnel.connect));
                        outcome.proxy_ms = Some(millis(tunnel.handshake));
                        Box::pin(self.http(tunnel.stream, outcome, shared, peer, Some(forwarded)))
                            .await
                    }
                    Err(failure) => outcome.fail(failure),
                };
            }
            (dest, Some(proxy)) => {
                let via = Via {
                    proxy,
                    dns: &shared.dns,
                    tls: &shared.tls,
                };
                match Box::pin(via.open(host, dest, self.budget)).await {
                    Ok(tunnel) => {
                        outcome.connect_ms = Some(millis(tunnel.connect));
                        outcome.proxy_ms = Some(millis(tunnel.handshake));
                        let dialed = Dialed {
                            port: dest.port(),
                            ip: dest.ip(),
                            label: format!("{} through {proxy}", dest.authority()),
                        };
                        (tunnel.stream, dialed)
                    }
                    Err(failure) => return outcome.fail(failure),
                }
            }
            (Dest::Name(..), None) => {
                let failure = Failure::new(
                    FailureKind::LocalError,
                    Phase::Tcp,
                    "a name must be resolved before a direct connection",
                    peer,
                );
                return outcome.fail(failure);
            }
        };
        if !self.spec.probe.uses_tls() {
            if self.spec.probe.uses_http() {
                return Box::pin(self.http(stream, outcome, shared, peer, None)).await;
            }
            return outcome;
        }
        let request = TlsRequest {
            server_name: shared.server_name.clone().or(self.spec.server_name.clone()),
            alpn: if shared.alpn.is_empty() {
                self.spec.alpn.clone()
            } else {
                shared.alpn.clone()
            },
            client_cert_expected: self.spec.client_cert,
            public_ca: self.spec.public_ca && !shared.allow_private_ca,
            to_proxy: false,
            pinned: self.spec.pinned,
        };
        let handshake = shared
            .tls
            .handshake(stream, host, &dialed, &request, self.budget);
        match Box::pin(handshake).await {
            Ok(handshake) => {
                outcome.tls_ms = Some(millis(handshake.took));
                outcome.tls = Some(handshake.info);
                outcome.warnings = handshake.warnings;
                if self.spec.probe.uses_http() {
                    return Box::pin(self.http(handshake.stream, outcome, shared, peer, None))
                        .await;
                }
                outcome
            }
            Err(TlsFailure { failure, info }) => {
                outcome.tls = info;
                outcome.fail(failure)
            }
        }
    }

    async fn http<S>(
        &self,
        stream: S,
        mut outcome: Outcome,
        shared: &Shared,
        peer: Peer<'_>,
        forwarded: Option<Forwarded>,
    ) -> Outcome
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let spec = &self.spec;
        let host = match spec.ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => spec.host.clone(),
        };
        let authority = match self.dest.port() {
            port if Some(port) == spec.probe.default_port() => host,
            port => format!("{host}:{port}"),
        };
        let request = HttpRequest {
            authority,
            path: spec.path.clone().unwrap_or_else(|| "/".into()),
            websocket: spec.probe.is_websocket(),
            expect: shared.expect.clone(),
            forwarded,
        };
        let result = http::exchange(stream, &request, peer, self.budget).await;
        outcome.http_ms = result.ttfb.map(millis);
        outcome.http_status = result.status;
        match result.failure {
            Some(failure) => outcome.fail(failure),
            None => outcome,
        }
    }
}
