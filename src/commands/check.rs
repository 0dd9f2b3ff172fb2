//! `preflight check`: one round, or a round every `--watch` interval, and its reports.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::SystemTime;

use preflight::allowlist::Allowlist;
use preflight::error::InputError;
use preflight::output::Destination;
use preflight::progress::Bar;
use preflight::render::{self, ListFormat};
use preflight::report::Report;
use preflight::runner;
use preflight::settings::Settings;

use super::runtime::{CHECKS_STARTED, Stop};
use super::{EXIT_INPUT, Failure, stdout, terminal_width};

pub(crate) fn check(
    args: &preflight::cli::CheckArgs,
    runtime: &tokio::runtime::Runtime,
    stop: &Stop,
) -> Result<u8, Failure> {
    let (settings, plan) = Settings::from_args(args)?;
    if settings.watch.is_none() && plan.checks.len() <= preflight::settings::SMALL_RUN {
        crate::keep_freed_pages();
    }
    let settings = Arc::new(settings);
    for note in &settings.warnings {
        eprintln!("preflight: note: {note}");
    }
    let color = args.color.paint(
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    if let Some(interval) = settings.watch {
        return runtime.block_on(watch(plan, &settings, interval, color, stop));
    }
    // Opened before anything is probed: a destination that cannot be written is exit 2 now,
    // not a report lost after the run.
    let output = settings
        .output
        .as_deref()
        .map(|path| Destination::open(path, "--output"))
        .transpose()?;
    let failed_list = settings
        .allowlist_failed
        .as_deref()
        .map(|path| Ok::<_, InputError>((Destination::open(path, "--allowlist-failed")?, path)))
        .transpose()?;
    let also = settings
        .also
        .iter()
        .map(|(format, path, flag)| Ok::<_, InputError>((*format, Destination::open(path, flag)?)))
        .collect::<Result<Vec<_>, _>>()?;
    let bar = Bar::for_terminal(plan.checks.len(), args.quiet);
    let progress = bar
        .clone()
        .map(|b| b as Arc<dyn preflight::runner::Progress>);
    let mut report = on_a_worker(runtime, plan, settings.clone(), progress, stop);
    if let Some(list) = &settings.ip_list {
        report
            .notes
            .extend(preflight::ip_list::stale(&report, list));
    }
    // Every public address unreachable and no proxy used: the proxy this host is set up for,
    // named, never used.
    // With --discover-proxy, the same and the network's WPAD file, whatever the run found.
    let missing = preflight::discover::looks_like_a_missing_proxy(&report);
    if missing || settings.discover_proxy {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let found = preflight::discover::places(home.as_deref());
        report
            .notes
            .push(preflight::discover::note(&found, missing));
    }
    if settings.discover_proxy {
        let wpad =
            preflight::discover::wpad::discover(settings.run.dns.clone(), settings.run.timeout);
        report.notes.push(runtime.block_on(wpad).note());
    }
    if let Some(bar) = bar {
        bar.clear();
    }
    let code = write_reports(&report, &settings, output, failed_list, color)
        .and_then(|code| write_also(&report, also, settings.strict, code));
    // The process exits next: its memory goes with it, without a free for each of the
    // report's thousands of strings.
    std::mem::forget(report);
    code
}

/// Writes the report to each of `--json`, `--junit` and `--markdown`, from the same results;
/// one that cannot be written is said on stderr, and makes the exit code 2.
fn write_also(
    report: &Report,
    also: Vec<(render::Format, Destination)>,
    strict: bool,
    mut code: u8,
) -> Result<u8, Failure> {
    let style = render::Style {
        color: false,
        width: terminal_width(),
        strict,
    };
    for (format, destination) in also {
        let mut buffer = Vec::new();
        render::render(report, format, style, &mut buffer)
            .map_err(|err| Failure::Output(err, code))?;
        if let Err(err) = destination.write(&buffer) {
            eprintln!(
                "preflight: {}",
                preflight::sanitize::message(&err.to_string())
            );
            code = EXIT_INPUT;
        }
    }
    Ok(code)
}

/// Writes the report (to `--output`, with the human form on stdout; else to stdout) and the
/// allowlist of failures; returns the exit code. What could not be written to its file goes
/// to stdout instead, after one line on stderr, and makes the exit code 2.
pub(crate) fn write_reports(
    report: &Report,
    settings: &Settings,
    output: Option<Destination>,
    failed_list: Option<(Destination, &std::path::Path)>,
    color: bool,
) -> Result<u8, Failure> {
    let style = render::Style {
        color,
        width: terminal_width(),
        strict: settings.strict,
    };
    let mut code = report.exit_code(settings.strict);
    let mut unwritten = Vec::new();
    if let Some((destination, path)) = failed_list {
        let mut buffer = Vec::new();
        let failed = Allowlist::of_failures(report);
        render::allowlist(
            &failed,
            ListFormat::of_file(path),
            render::NO_WRAP,
            &mut buffer,
        )?;
        if let Err(err) = destination.write(&buffer) {
            unwritten.push((err, buffer));
        }
    }
    let mut out = stdout();
    let written = (|| {
        match output {
            Some(destination) => {
                let mut buffer = Vec::new();
                let file = render::Style {
                    color: false,
                    ..style
                };
                render::render(report, settings.format, file, &mut buffer)?;
                match destination.write(&buffer) {
                    Ok(()) => render::human(report, style.color, style.width, &mut out)?,
                    Err(err) => unwritten.push((err, buffer)),
                }
            }
            None => render::render(report, settings.format, style, &mut out)?,
        }
        for (err, buffer) in &unwritten {
            eprintln!(
                "preflight: {}; it follows on standard output",
                preflight::sanitize::message(&err.to_string())
            );
            out.write_all(buffer)?;
            code = EXIT_INPUT;
        }
        out.flush()
    })();
    written.map_err(|err| Failure::Output(err, code))?;
    Ok(code)
}

/// One round, run as a task on the runtime's workers rather than on this thread: each check
/// that finishes then wakes a worker that is already awake, not this thread (a futex call and
/// a context switch per check).
pub(crate) fn on_a_worker(
    runtime: &tokio::runtime::Runtime,
    plan: preflight::plan::Plan,
    settings: Arc<Settings>,
    progress: Option<Arc<dyn preflight::runner::Progress>>,
    stop: &Stop,
) -> Report {
    let heard = stop.0.clone();
    CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    let round = runtime.spawn(async move {
        let interrupt = Stop(heard);
        round(&plan, &settings, progress, interrupt.wait()).await
    });
    match runtime.block_on(round) {
        Ok(report) => report,
        // The round's own task does not panic (each check's does, at worst, in its own task).
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Runs every check once, or until `interrupt` completes (`-v` traces on stderr).
pub(crate) async fn round(
    plan: &preflight::plan::Plan,
    settings: &Settings,
    progress: Option<Arc<dyn preflight::runner::Progress>>,
    interrupt: impl std::future::Future<Output = ()>,
) -> Report {
    runner::round(plan, &settings.run, (progress, tracer(settings)), interrupt).await
}

/// Where `-v` sends each check's steps: stderr.
fn tracer(settings: &Settings) -> Option<runner::StepLog> {
    settings
        .verbose
        .then(|| Arc::new(|line: String| eprintln!("* {line}")) as runner::StepLog)
}

/// Scores one round of a watch and prints what changed (as JSON Lines, the whole round).
pub(crate) fn show_round(
    score: &mut preflight::watch::Watch,
    report: &Report,
    json: bool,
) -> Result<(), Failure> {
    use preflight::render::watch as show;
    let now = SystemTime::now();
    let changes = score.observe(report, now);
    let mut out = stdout();
    if json {
        let line = preflight::watch::RoundLine {
            round: score.rounds(),
            changes: &changes,
            report,
        };
        show::round_json(&line, &mut out)?;
    } else {
        if score.rounds() == 1 {
            let down = report.summary.fail;
            let at = humantime::format_rfc3339_seconds(now).to_string();
            let up = report.summary.total - down - report.summary.skipped;
            show::first_round(&at, up, down, &mut out)?;
        }
        show::changes(&changes, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Runs the checks every `interval` (the library's round loop) until Ctrl-C, SIGTERM or
/// `--count` rounds; prints the changes as they happen and a summary at the end.
pub(crate) async fn watch(
    plan: preflight::plan::Plan,
    settings: &Settings,
    interval: std::time::Duration,
    color: bool,
    stop: &Stop,
) -> Result<u8, Failure> {
    use preflight::render::watch as show;
    use preflight::watch::Watch;
    use std::ops::ControlFlow;

    let json = settings.format == preflight::render::Format::Json;
    CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    if !json {
        let mut out = stdout();
        show::header(plan.checks.len(), interval, &plan.notes, &mut out)?;
        out.flush()?;
    }
    let mut score = Watch::new();
    let mut ended: Result<Option<u8>, Failure> = Ok(None);
    let (_keep, active) = tokio::sync::watch::channel(Arc::new((plan, settings.run.clone())));
    let trace = tracer(settings);
    preflight::rounds::repeat(active, interval, stop.0.clone(), trace, |report| {
        if report.interrupted && score.rounds() == 0 {
            // Stopped within the first round: no summary to give, so the round so far is
            // reported and exits as `check` would.
            let mut out = stdout();
            let code = report.exit_code(settings.strict);
            let style = render::Style {
                color,
                width: terminal_width(),
                strict: settings.strict,
            };
            ended = render::render(&report, settings.format, style, &mut out)
                .and_then(|()| out.flush())
                .map(|()| Some(code))
                .map_err(|err| Failure::Output(err, code));
            return ControlFlow::Break(());
        }
        if report.interrupted {
            return ControlFlow::Break(());
        }
        if let Err(err) = show_round(&mut score, &report, json) {
            ended = Err(err);
            return ControlFlow::Break(());
        }
        match settings.count.is_some_and(|n| score.rounds() >= n) {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    })
    .await;
    if let Some(code) = ended? {
        return Ok(code);
    }
    let endpoints = score.summary(SystemTime::now());
    let mut out = stdout();
    if json {
        show::summary_json(score.rounds(), &endpoints, &mut out)?;
    } else {
        show::summary(score.rounds(), &endpoints, &mut out)?;
    }
    out.flush()?;
    Ok(score.exit_code())
}
