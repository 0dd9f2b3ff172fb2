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
use crate::probe::tls::{Tls, TlsInfo};
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
}

/// Runs every check of `plan` at once (within `--concurrency`); results come in plan order.
pub async fn run(plan: &Plan, settings: &Settings) -> Vec<CheckResult> {
    let deadline = Instant::now() + settings.deadline.unwrap_or(NO_DEADLINE);
    let shared = Arc::new(Shared {
        dns: Dns::new(settings.dns.clone()),
        tls: Tls::new(settings.ca_certs.clone()),
        slots: Arc::new(Semaphore::new(settings.concurrency)),
        timeout: settings.timeout,
        deadline,
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
    let (Some(port), Probe::Tcp | Probe::Tls) = (spec.port, spec.probe) else {
        // A dns probe: the addresses are the answer.
        result.addresses = addrs
            .into_iter()
            .map(|ip| AddressResult {
                ip,
                status: AddressStatus::Ok,
                error: None,
                connect_ms: None,
                tls_ms: None,
            })
            .collect();
        result.status = Status::Ok;
        result.timings_ms.total = millis(start.elapsed());
        return result;
    };

    let mut attempts = JoinSet::new();
    for (index, ip) in addrs.iter().copied().enumerate() {
        let job = AddressJob {
            host: spec.host.clone(),
            addr: SocketAddr::new(ip, port),
            tls: spec.probe == Probe::Tls,
            budget,
        };
        let shared = shared.clone();
        attempts.spawn(async move { (index, job.run(&shared).await) });
    }
    let mut outcomes: Vec<Option<(AddressResult, Option<TlsInfo>)>> = vec![None; addrs.len()];
    while let Some(joined) = attempts.join_next().await {
        if let Ok((index, outcome)) = joined {
            outcomes[index] = Some(outcome);
        }
    }
    for (ip, outcome) in addrs.into_iter().zip(outcomes) {
        let (address, tls) = outcome.unwrap_or_else(|| {
            let peer = Peer {
                host: &spec.host,
                port: Some(port),
                ip: Some(ip),
            };
            let failure = Failure::new(
                FailureKind::LocalError,
                Phase::Tcp,
                "the connection attempt stopped unexpectedly",
                peer,
            );
            (failed(ip, failure, None), None)
        });
        if address.status == AddressStatus::Ok && result.status != Status::Ok {
            result.status = Status::Ok;
            result.timings_ms.connect = address.connect_ms;
            result.timings_ms.tls = address.tls_ms;
            result.tls = tls;
        }
        result.addresses.push(address);
    }
    if result.status == Status::Fail {
        result.error = most_telling(&result.addresses);
    }
    result.timings_ms.total = millis(start.elapsed());
    result
}

/// The failure that says most: one from a later phase (TLS over TCP), else the first address's.
fn most_telling(addresses: &[AddressResult]) -> Option<Failure> {
    let rank = |f: &Failure| match f.phase {
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

fn failed(ip: IpAddr, failure: Failure, connect_ms: Option<f64>) -> AddressResult {
    AddressResult {
        ip,
        status: AddressStatus::Fail,
        error: Some(failure),
        connect_ms,
        tls_ms: None,
    }
}

/// One connection attempt: TCP to one address, then TLS when the probe asks for it.
struct AddressJob {
    host: String,
    addr: SocketAddr,
    tls: bool,
    budget: Budget,
}

impl AddressJob {
    async fn run(self, shared: &Shared) -> (AddressResult, Option<TlsInfo>) {
        let ip = self.addr.ip();
        let peer = Peer {
            host: &self.host,
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
                return (failed(ip, failure, None), None);
            }
        };
        let (stream, connect) = match tcp::connect(&self.host, self.addr, self.budget).await {
            Ok(ok) => ok,
            Err(failure) => return (failed(ip, failure, None), None),
        };
        let connect_ms = Some(millis(connect));
        if !self.tls {
            return (
                AddressResult {
                    ip,
                    status: AddressStatus::Ok,
                    error: None,
                    connect_ms,
                    tls_ms: None,
                },
                None,
            );
        }
        match shared
            .tls
            .handshake(stream, &self.host, self.addr, self.budget)
            .await
        {
            Ok((info, took)) => (
                AddressResult {
                    ip,
                    status: AddressStatus::Ok,
                    error: None,
                    connect_ms,
                    tls_ms: Some(millis(took)),
                },
                Some(info),
            ),
            Err(failure) => (failed(ip, failure, connect_ms), None),
        }
    }
}
