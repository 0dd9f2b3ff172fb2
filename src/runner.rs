//! The runner: one task per check, connections bounded by a semaphore, every wait bounded by
//! the phase timeout and the run's deadline. It never prints; it returns results.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::plan::{CheckSpec, Plan};
use crate::probe::dns::{Dns, Source};
use crate::probe::http::{self, Expect, HttpRequest};
use crate::probe::tls::{Tls, TlsFailure, TlsInfo, TlsRequest};
use crate::probe::{Budget, Failure, FailureKind, Peer, Phase, millis, tcp};
use crate::report::{AddressResult, AddressStatus, CheckResult, Status, Timings};
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
}

/// Runs every check of `plan` at once (within `--concurrency`); results come in plan order.
pub async fn run(plan: &Plan, settings: &Settings) -> Vec<CheckResult> {
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
    });
    let mut results: Vec<Option<CheckResult>> = vec![None; plan.checks.len()];
    let mut tasks = JoinSet::new();
    for (index, spec) in plan.checks.iter().enumerate() {
        if let Some(reason) = &spec.skip {
            results[index] = Some(skipped(spec, reason));
            continue;
        }
        let shared = shared.clone();
        let spec = spec.clone();
        tasks.spawn(async move { (index, run_check(&spec, shared).await) });
    }
    // Every wait inside a check is bounded by the deadline; the grace is a safety net.
    let stop = deadline.checked_add(DEADLINE_GRACE).unwrap_or(deadline);
    while let Ok(Some(joined)) = tokio::time::timeout_at(stop, tasks.join_next()).await {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    tasks.abort_all();
    plan.checks
        .iter()
        .zip(results)
        .map(|(spec, result)| result.unwrap_or_else(|| unfinished(spec)))
        .collect()
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
    }
}

fn skipped(spec: &CheckSpec, reason: &str) -> CheckResult {
    CheckResult {
        reason: Some(reason.to_string()),
        ..base(spec, Status::Skipped)
    }
}

/// A check whose task did not report back (the deadline passed, or it panicked).
fn unfinished(spec: &CheckSpec) -> CheckResult {
    let peer = Peer {
        host: &spec.host,
        port: spec.port,
        ip: spec.ip,
    };
    CheckResult {
        error: Some(Failure::new(
            FailureKind::Deadline,
            Phase::Queued,
            "the check did not finish before the run's deadline",
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
    let resolution = match spec.ip {
        Some(ip) => crate::probe::dns::Resolution {
            addrs: Ok(vec![ip]),
            source: Source::Literal,
            elapsed: Duration::ZERO,
        },
        None => shared.dns.resolve(&spec.host, spec.port, budget).await,
    };
    if resolution.source == Source::Dns {
        result.timings_ms.dns = Some(millis(resolution.elapsed));
    }
    let addrs = match resolution.addrs {
        Ok(addrs) => addrs,
        Err(failure) => {
            result.error = Some(failure);
            result.timings_ms.total = millis(start.elapsed());
            return result;
        }
    };
    let (Some(port), false) = (spec.port, spec.probe == Probe::Dns) else {
        // A dns probe: the addresses are the answer.
        result.addresses = addrs
            .into_iter()
            .map(|ip| AddressResult {
                ip,
                status: AddressStatus::Ok,
                error: None,
                connect_ms: None,
                tls_ms: None,
                http_ms: None,
            })
            .collect();
        result.status = Status::Ok;
        result.timings_ms.total = millis(start.elapsed());
        return result;
    };

    let mut attempts = JoinSet::new();
    for (index, ip) in addrs.iter().copied().enumerate() {
        let job = Attempt {
            spec: spec.clone(),
            addr: SocketAddr::new(ip, port),
            budget,
        };
        let shared = shared.clone();
        attempts.spawn(async move { (index, job.run(&shared).await) });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; addrs.len()];
    while let Some(joined) = attempts.join_next().await {
        if let Ok((index, outcome)) = joined {
            outcomes[index] = Some(outcome);
        }
    }
    let mut chosen: Option<Outcome> = None;
    let mut first_tls = None;
    for (ip, outcome) in addrs.into_iter().zip(outcomes) {
        let outcome = outcome.unwrap_or_else(|| {
            let peer = Peer {
                host: &spec.host,
                port: Some(port),
                ip: Some(ip),
            };
            Outcome::failed(
                ip,
                Failure::new(
                    FailureKind::LocalError,
                    Phase::Tcp,
                    "the connection attempt stopped unexpectedly",
                    peer,
                ),
            )
        });
        if first_tls.is_none() {
            first_tls = outcome.tls.clone();
        }
        result.addresses.push(outcome.address.clone());
        if outcome.address.status == AddressStatus::Ok && chosen.is_none() {
            chosen = Some(outcome);
        } else if result.http_status.is_none() {
            result.http_status = outcome.http_status;
        }
    }
    match chosen {
        Some(ok) => {
            result.timings_ms.connect = ok.address.connect_ms;
            result.timings_ms.tls = ok.address.tls_ms;
            result.timings_ms.http = ok.address.http_ms;
            result.tls = ok.tls;
            result.http_status = ok.http_status;
            result.status = if ok.warnings.is_empty() {
                Status::Ok
            } else {
                Status::Warn
            };
            result.error = ok.warnings.into_iter().next();
        }
        None => {
            result.tls = first_tls;
            result.error = most_telling(&result.addresses);
        }
    }
    result.timings_ms.total = millis(start.elapsed());
    result
}

/// The failure that says most: one from a later phase (TLS over TCP), else the first address's.
fn most_telling(addresses: &[AddressResult]) -> Option<Failure> {
    let rank = |f: &Failure| match f.phase {
        Phase::Http => 3,
        Phase::Tls => 2,
        Phase::Tcp => 1,
        Phase::Queued | Phase::Dns => 0,
    };
    addresses
        .iter()
        .filter_map(|a| a.error.as_ref())
        .fold(None, |best: Option<&Failure>, f| match best {
            Some(b) if rank(b) >= rank(f) => Some(b),
            _ => Some(f),
        })
        .cloned()
}

/// What one connection attempt (one address) came to.
#[derive(Debug, Clone)]
struct Outcome {
    address: AddressResult,
    tls: Option<TlsInfo>,
    http_status: Option<u16>,
    /// Reasons to warn although the address worked.
    warnings: Vec<Failure>,
}

impl Outcome {
    fn failed(ip: IpAddr, failure: Failure) -> Outcome {
        Outcome {
            address: AddressResult {
                ip,
                status: AddressStatus::Fail,
                error: Some(failure),
                connect_ms: None,
                tls_ms: None,
                http_ms: None,
            },
            tls: None,
            http_status: None,
            warnings: Vec::new(),
        }
    }

    /// Marks the attempt failed at a later phase, keeping what earlier phases measured.
    fn fail(mut self, failure: Failure) -> Outcome {
        self.address.status = AddressStatus::Fail;
        self.address.error = Some(failure);
        self
    }
}

/// One connection attempt: TCP to one address, then TLS and HTTP as the probe asks.
struct Attempt {
    spec: CheckSpec,
    addr: SocketAddr,
    budget: Budget,
}

impl Attempt {
    async fn run(self, shared: &Shared) -> Outcome {
        let ip = self.addr.ip();
        let host = self.spec.host.as_str();
        let peer = Peer {
            host,
            port: Some(self.addr.port()),
            ip: Some(ip),
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
        let (stream, connect) = match tcp::connect(host, self.addr, self.budget).await {
            Ok(ok) => ok,
            Err(failure) => return Outcome::failed(ip, failure),
        };
        let mut outcome = Outcome {
            address: AddressResult {
                ip,
                status: AddressStatus::Ok,
                error: None,
                connect_ms: Some(millis(connect)),
                tls_ms: None,
                http_ms: None,
            },
            tls: None,
            http_status: None,
            warnings: Vec::new(),
        };
        if !self.spec.probe.uses_tls() {
            if self.spec.probe.uses_http() {
                return self.http(stream, outcome, shared, peer).await;
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
        };
        match shared
            .tls
            .handshake(stream, host, self.addr, &request, self.budget)
            .await
        {
            Ok(handshake) => {
                outcome.address.tls_ms = Some(millis(handshake.took));
                outcome.tls = Some(handshake.info);
                outcome.warnings = handshake.warnings;
                if self.spec.probe.uses_http() {
                    return self.http(handshake.stream, outcome, shared, peer).await;
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
    ) -> Outcome
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let spec = &self.spec;
        let host = match spec.ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => spec.host.clone(),
        };
        let authority = match self.addr.port() {
            port if Some(port) == spec.probe.default_port() => host,
            port => format!("{host}:{port}"),
        };
        let request = HttpRequest {
            authority,
            path: spec.path.clone().unwrap_or_else(|| "/".into()),
            websocket: spec.probe.is_websocket(),
            expect: shared.expect.clone(),
        };
        let result = http::exchange(stream, &request, peer, self.budget).await;
        outcome.address.http_ms = result.ttfb.map(millis);
        outcome.http_status = result.status;
        match result.failure {
            Some(failure) => outcome.fail(failure),
            None => outcome,
        }
    }
}
