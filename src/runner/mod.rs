//! The runner schedules: one task per check, at most `--concurrency` connections in flight
//! (a semaphore), the run's deadline, the interrupt (Ctrl-C, SIGTERM), skipped and unfinished
//! checks, and progress events. What a check does is `path` (which path, which addresses,
//! which failure speaks) and `attempt` (the steps of one connection). It never prints; it
//! returns results.

mod attempt;
mod opinion;
mod origin;
mod path;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::check::CheckSpec;
use crate::failure::{Failure, FailureKind, Peer, Phase};
use crate::plan::Plan;
use crate::probe::Budget;
use crate::probe::dns::Dns;
use crate::probe::dns::DnsConfig;
use crate::probe::tls::Tls;
use crate::probe::tls::TlsSettings;
use crate::report::{CheckResult, PathResult, Status};

pub use path::MAX_ADDRESSES_PER_FAMILY;

/// What the engine runs a plan with: built from the flags by `settings`, which nothing under
/// `runner/` or `probe/` sees.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Each phase's timeout (`--timeout`).
    pub timeout: Duration,
    /// The TCP connect's own timeout (`--connect-timeout`); `timeout` when `None`.
    pub connect_timeout: Option<Duration>,
    /// The whole run's (`--deadline`).
    pub deadline: Option<Duration>,
    /// Connections at once.
    pub concurrency: usize,
    /// The resolver's configuration.
    pub dns: DnsConfig,
    /// The TLS client's configuration.
    pub tls: TlsSettings,
    /// `--no-trace`: no hop trace after a connect that timed out or was rejected.
    pub no_hop_trace: bool,
    /// The node the report names: `--node`, or the host name.
    pub node: String,
    /// Each check's JSON is made on its worker as the check finishes, so that the JSON report
    /// is ready when the last check is (a one-off run that writes JSON).
    pub json_pieces: bool,
}

/// A run with no --deadline still has one, far away.
const NO_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long past the deadline the runner waits for tasks to notice it.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// What every check of a run shares: the resolver, the TLS client, the connection slots and
/// the time limits. Nothing here is about one check.
struct RunContext {
    dns: Dns,
    tls: Tls,
    slots: Arc<Semaphore>,
    budget: Budget,
    /// `--verbose`: where each check's steps are told.
    step_log: Option<StepLog>,
    /// `--no-trace`.
    no_hop_trace: bool,
    /// The connection slots in all (`--concurrency`).
    concurrency: usize,
    /// `RunConfig::json_pieces`.
    json_pieces: bool,
    /// One trace per address and port, shared by every check that fails toward it.
    hop_traces:
        std::sync::Mutex<std::collections::HashMap<std::net::SocketAddr, Arc<opinion::Traced>>>,
}

/// Where `--verbose` lines go (the binary writes them to stderr; the library never prints).
pub type StepLog = Arc<dyn Fn(String) + Send + Sync>;

impl RunContext {
    /// A `--verbose` line about the check `id`.
    fn log_step(&self, id: &str, line: impl FnOnce() -> String) {
        if let Some(log) = &self.step_log {
            log(format!("[{id}] {}", line()));
        }
    }
}

/// The furthest phase a running check has reached: what a check the run stops was doing.
#[derive(Debug, Default)]
struct Stage(std::sync::atomic::AtomicU8);

/// The phases in the order a check goes through them.
const STAGES: [Phase; 8] = [
    Phase::Queued,
    Phase::Dns,
    Phase::Bind,
    Phase::Udp,
    Phase::Tcp,
    Phase::Proxy,
    Phase::Tls,
    Phase::Http,
];

impl Stage {
    fn phase(&self) -> Phase {
        let at = self.0.load(std::sync::atomic::Ordering::Relaxed);
        STAGES[usize::from(at).min(STAGES.len() - 1)]
    }
}

tokio::task_local! {
    /// The stage of the check the current task works for.
    static STAGE: Arc<Stage>;
}

/// Notes that the current check has reached `phase` (no-op outside a check's task).
fn reached(phase: Phase) {
    let at = STAGES.iter().position(|p| *p == phase).unwrap_or(0) as u8;
    let _ = STAGE.try_with(|stage| stage.0.fetch_max(at, std::sync::atomic::Ordering::Relaxed));
}

/// Runs `task` for the same check as the current task (its stage shared).
fn same_check<F: std::future::Future>(task: F) -> impl std::future::Future<Output = F::Output> {
    let stage = STAGE.try_with(Arc::clone).unwrap_or_default();
    STAGE.scope(stage, task)
}

/// Told as checks start and finish (the progress bar). Skipped checks finish at once.
pub trait Progress: Send + Sync {
    /// Check `index` (`id`) started.
    fn started(&self, index: usize, id: &str);
    /// Check `index` finished.
    fn finished(&self, index: usize);
}

/// The results of a run, in the plan's order.
pub struct Run {
    /// Every check's result, in plan order.
    pub checks: Vec<CheckResult>,
    /// Each check's JSON (`RunConfig::json_pieces`), in plan order.
    pub pieces: Option<Vec<Vec<u8>>>,
    /// Ctrl-C or SIGTERM ended the run early.
    pub interrupted: bool,
}

/// Runs every check of the settled `plan` at once (at most `--concurrency` in flight), until
/// all are done, the deadline passes, or `interrupt` completes (Ctrl-C): then the checks still
/// running are reported as `deadline` failures, and the results so far are kept, in plan order.
/// One round: every check once (or until `interrupt`), as a report.
pub async fn round(
    plan: &Plan,
    settings: &RunConfig,
    observers: (Option<Arc<dyn Progress>>, Option<StepLog>),
    interrupt: impl std::future::Future<Output = ()>,
) -> crate::report::Report {
    let started_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let start = std::time::Instant::now();
    let run = run(plan, settings, observers, interrupt).await;
    let duration_ms = crate::probe::millis(start.elapsed());
    let mut report =
        crate::report::Report::new(started_at, duration_ms, plan.profiles.clone(), run.checks);
    report.notes = plan.notes.clone();
    report.node = settings.node.clone();
    report.pieces = run.pieces.map(std::sync::Arc::from);
    if run.interrupted {
        report.interrupted = true;
        report.notes.push(
            "interrupted (Ctrl-C or SIGTERM): checks that had not finished are reported as `deadline`"
                .into(),
        );
    }
    report
}

/// Runs every check of the settled `plan` once, as results (see `round` for a report).
pub async fn run(
    plan: &Plan,
    settings: &RunConfig,
    (progress, step_log): (Option<Arc<dyn Progress>>, Option<StepLog>),
    interrupt: impl std::future::Future<Output = ()>,
) -> Run {
    let deadline = Instant::now() + settings.deadline.unwrap_or(NO_DEADLINE);
    let shared = Arc::new(RunContext {
        dns: Dns::new(settings.dns.clone()),
        tls: Tls::new(settings.tls.clone()),
        slots: Arc::new(Semaphore::new(settings.concurrency)),
        budget: Budget {
            timeout: settings.timeout,
            deadline,
            connect: settings.connect_timeout,
        },
        step_log,
        no_hop_trace: settings.no_hop_trace,
        concurrency: settings.concurrency,
        json_pieces: settings.json_pieces,
        hop_traces: std::sync::Mutex::default(),
    });
    let handshakes = plan
        .checks
        .iter()
        .any(|c| c.skip.is_none() && c.finding.is_none() && c.probe().uses_tls());
    if handshakes {
        // This host's root store is read while the names resolve and the connections open;
        // the first handshake would otherwise wait for it (a few milliseconds of file I/O).
        let shared = shared.clone();
        tokio::spawn(async move { shared.tls.prepare().await });
    }
    let mut results = known_before_run(plan, progress.as_deref());
    let mut stages = vec![None; plan.checks.len()];
    let mut pieces: Vec<Option<Vec<u8>>> = vec![None; plan.checks.len()];
    let interrupted = schedule(
        plan,
        &shared,
        settings.concurrency,
        progress,
        interrupt,
        (&mut results, &mut stages, &mut pieces),
    )
    .await;
    for ((slot, spec), stage) in results.iter_mut().zip(&plan.checks).zip(stages) {
        if slot.is_none() {
            let phase = stage.map_or(Phase::Queued, |s| s.phase());
            *slot = Some(unfinished(spec, interrupted, phase));
        }
    }
    // In place: every slot is filled, and the results are not copied into a second vector.
    let checks: Vec<CheckResult> = results.into_iter().flatten().collect();
    // The pieces of the checks settled before the run or never finished are made here.
    let pieces = settings.json_pieces.then(|| {
        pieces
            .into_iter()
            .zip(&checks)
            .map(|(piece, check)| piece.unwrap_or_else(|| crate::report::json_piece(check)))
            .collect()
    });
    Run {
        checks,
        pieces,
        interrupted,
    }
}

/// The results known before the run (the skipped checks, and the findings in the node's files),
/// in their places; the others to come.
fn known_before_run(plan: &Plan, progress: Option<&dyn Progress>) -> Vec<Option<CheckResult>> {
    let mut results: Vec<Option<CheckResult>> = vec![None; plan.checks.len()];
    for (index, spec) in plan.checks.iter().enumerate() {
        let settled = match (&spec.skip, &spec.finding) {
            (Some(reason), _) => Some(CheckResult::skipped(spec, reason)),
            (None, Some(finding)) => Some(CheckResult::found(spec, finding)),
            (None, None) => None,
        };
        if settled.is_some() {
            results[index] = settled;
            if let Some(progress) = progress {
                progress.finished(index);
            }
        }
    }
    results
}

/// Runs the checks that are not skipped, at most `concurrency` at a time, putting each result
/// in its place, until all are done, the deadline passes or `interrupt` completes; returns
/// whether the interrupt ended it.
async fn schedule(
    plan: &Plan,
    shared: &Arc<RunContext>,
    concurrency: usize,
    progress: Option<Arc<dyn Progress>>,
    interrupt: impl std::future::Future<Output = ()>,
    (results, stages, pieces): Slots<'_>,
) -> bool {
    // At most `concurrency` checks in flight: a started check's future holds its buffers, so
    // spawning 10,000 at once would cost memory for nothing.
    let mut queue = plan
        .checks
        .iter()
        .enumerate()
        .filter(|(_, spec)| spec.skip.is_none() && spec.finding.is_none());
    let mut tasks = JoinSet::new();
    let mut start = |tasks: &mut JoinSet<_>, (index, spec): (usize, &CheckSpec)| {
        let stage = Arc::new(Stage::default());
        stages[index] = Some(stage.clone());
        let task = Task {
            spec: Arc::new(spec.clone()),
            shared: shared.clone(),
            progress: progress.clone(),
            stage,
        };
        spawn(tasks, index, task);
    };
    for next in queue.by_ref().take(concurrency.max(1)) {
        start(&mut tasks, next);
    }
    // Every wait inside a check is bounded by the deadline; the grace is a safety net.
    let deadline = shared.budget.deadline;
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
                    if let Ok((index, result, piece)) = joined {
                        results[index] = Some(result);
                        pieces[index] = piece;
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
        if let Ok((index, result, piece)) = joined {
            results[index] = Some(result);
            pieces[index] = piece;
        }
    }
    tasks.abort_all();
    interrupted
}

/// What the task of one check holds.
struct Task {
    spec: Arc<CheckSpec>,
    shared: Arc<RunContext>,
    progress: Option<Arc<dyn Progress>>,
    stage: Arc<Stage>,
}

/// Where `schedule` puts what each check gives, by its index: its result, its stage (for one
/// that does not finish), and its JSON.
type Slots<'a> = (
    &'a mut [Option<CheckResult>],
    &'a mut [Option<Arc<Stage>>],
    &'a mut [Option<Vec<u8>>],
);

/// A check's index, its result, and its JSON when the run makes it as it goes.
type Finished = (usize, CheckResult, Option<Vec<u8>>);

/// Starts the task of one check, which tells `progress` as it starts and finishes.
fn spawn(tasks: &mut JoinSet<Finished>, index: usize, task: Task) {
    let Task {
        spec,
        shared,
        progress,
        stage,
    } = task;
    let task = async move {
        if let Some(progress) = &progress {
            progress.started(index, spec.id());
        }
        let result = path::check(&spec, &shared).await;
        // Made here, on this check's worker, while other checks still run: the report's JSON
        // is then ready when the last check is.
        let piece = shared
            .json_pieces
            .then(|| crate::report::json_piece(&result));
        if let Some(progress) = &progress {
            progress.finished(index);
        }
        (index, result, piece)
    };
    tasks.spawn(STAGE.scope(stage, task));
}

/// A check whose task did not report back (the deadline passed, the run was interrupted, or
/// it panicked).
fn unfinished(spec: &CheckSpec, interrupted: bool, phase: Phase) -> CheckResult {
    let peer = Peer {
        host: spec.host(),
        port: spec.port(),
        ip: spec.ip,
    };
    let failure = match interrupted {
        true => Failure::new(
            FailureKind::Deadline,
            phase,
            format!(
                "the run was interrupted (Ctrl-C or SIGTERM) in the {phase} phase, before the check finished"
            ),
            peer,
        )
        .because(crate::failure::Cause::Interrupted, peer, Default::default()),
        false => Failure::new(
            FailureKind::Deadline,
            phase,
            format!("the check did not finish before the run's deadline (it was in the {phase} phase)"),
            peer,
        ),
    };
    // As before the restructuring: an unfinished check names no route.
    CheckResult {
        proxy: None,
        proxy_reason: None,
        ..CheckResult::of(
            spec,
            PathResult {
                error: Some(failure),
                ..PathResult::new(Status::Fail)
            },
        )
    }
}
