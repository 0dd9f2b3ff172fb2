//! The `preflight` binary: parse the command line, run, render, map the outcome to an exit code.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use clap::Parser;
use preflight::allowlist::Allowlist;
use preflight::cli::{Cli, Command, ListFormat, ProfilesAction};
use preflight::error::InputError;
use preflight::progress::Bar;
use preflight::report::Report;
use preflight::settings::Settings;
use preflight::{profile, render, runner};

/// Exit code of bad input: nothing was probed.
const EXIT_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // One line: clap's first paragraph, which names the flag and the problem.
            let text = err.to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("preflight: {first} (see preflight --help)");
            return ExitCode::from(EXIT_INPUT);
        }
    };
    let outcome = match cli.command {
        Command::Check(args) => check(&args),
        Command::Profiles(args) => profiles(args.action),
        Command::Listen(args) => listen(&args),
        Command::Allowlist(args) => allowlist(&args),
        Command::Completions { shell } => generated(|out| {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "preflight", out);
            Ok(())
        }),
        Command::Man => generated(|out| {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(out)
        }),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Input(err)) => {
            eprintln!("preflight: {err}");
            ExitCode::from(EXIT_INPUT)
        }
        Err(Failure::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(err)) => {
            eprintln!("preflight: cannot write the report: {err}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

enum Failure {
    Input(InputError),
    Output(io::Error),
}

impl From<InputError> for Failure {
    fn from(err: InputError) -> Self {
        Failure::Input(err)
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure::Output(err)
    }
}

fn check(args: &preflight::cli::CheckArgs) -> Result<u8, Failure> {
    let (settings, plan) = Settings::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(interval) = settings.watch {
        let code = runtime.block_on(watch(&plan, &settings, interval));
        runtime.shutdown_background();
        return code;
    }
    let bar = Bar::for_terminal(plan.checks.len(), args.quiet);
    let progress = bar
        .clone()
        .map(|b| b as Arc<dyn preflight::runner::Progress>);
    let report = runtime.block_on(round(&plan, &settings, progress, interrupted()));
    if let Some(bar) = bar {
        bar.clear();
    }
    // The runtime may hold sockets of timed-out lookups; do not wait for them.
    runtime.shutdown_background();

    if let Some(path) = &settings.allowlist_failed {
        let mut buffer = Vec::new();
        let failed = Allowlist::of_failures(&report);
        render::allowlist(&failed, ListFormat::of_file(path), &mut buffer)?;
        write_atomically(path, &buffer, "--allowlist-failed")?;
    }
    let color = args.color.paint(
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    match &settings.output {
        Some(path) => {
            let mut buffer = Vec::new();
            render::render(&report, settings.format, false, &mut buffer)?;
            write_atomically(path, &buffer, "--output")?;
            let mut out = stdout();
            render::human(&report, color, &mut out)?;
            out.flush()?;
        }
        None => {
            let mut out = stdout();
            render::render(&report, settings.format, color, &mut out)?;
            out.flush()?;
        }
    }
    Ok(report.exit_code(settings.strict))
}

/// Runs every check once, or until `interrupt` completes.
async fn round(
    plan: &preflight::plan::Plan,
    settings: &Settings,
    progress: Option<Arc<dyn preflight::runner::Progress>>,
    interrupt: impl std::future::Future<Output = ()>,
) -> Report {
    let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let start = std::time::Instant::now();
    let run = runner::run(plan, settings, progress, interrupt).await;
    let duration_ms = preflight::probe::millis(start.elapsed());
    let mut report = Report::new(started_at, duration_ms, plan.profiles.clone(), run.checks);
    report.notes = plan.notes.clone();
    if run.interrupted {
        report.interrupted = true;
        report.notes.push(
            "interrupted (Ctrl-C or SIGTERM): checks that had not finished are reported as `deadline`"
                .into(),
        );
    }
    report
}

/// Runs the checks every `interval` until Ctrl-C, SIGTERM or `--count` rounds; prints the
/// changes as they happen and a summary at the end.
async fn watch(
    plan: &preflight::plan::Plan,
    settings: &Settings,
    interval: std::time::Duration,
) -> Result<u8, Failure> {
    use preflight::render::watch as show;
    use preflight::watch::{RoundLine, Watch};

    let json = settings.format == preflight::cli::Format::Json;
    let mut score = Watch::new();
    let mut ticks = tokio::time::interval(interval);
    // A round longer than the interval delays the next one rather than bunching them.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = interrupted();
    tokio::pin!(stop);
    if !json {
        let mut out = stdout();
        writeln!(
            out,
            "preflight {}: watching {} checks every {}; changes below, a summary on Ctrl-C",
            env!("CARGO_PKG_VERSION"),
            plan.checks.len(),
            humantime::format_duration(interval)
        )?;
        for note in &plan.notes {
            writeln!(out, "note: {note}")?;
        }
        out.flush()?;
    }
    loop {
        let report = tokio::select! {
            _ = ticks.tick() => tokio::select! {
                report = round(plan, settings, None, std::future::pending()) => report,
                () = &mut stop => break,
            },
            () = &mut stop => break,
        };
        let now = SystemTime::now();
        let changes = score.observe(&report, now);
        let mut out = stdout();
        if !json && score.rounds() == 1 {
            let down = report.summary.fail;
            let at = humantime::format_rfc3339_seconds(now).to_string();
            show::first_round(
                &at,
                report.summary.total - down - report.summary.skipped,
                down,
                &mut out,
            )?;
        }
        if json {
            let line = RoundLine {
                round: score.rounds(),
                changes: &changes,
                report: &report,
            };
            show::round_json(&line, &mut out)?;
        } else {
            show::changes(&changes, &mut out)?;
        }
        out.flush()?;
        if settings.count.is_some_and(|n| score.rounds() >= n) {
            break;
        }
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

/// Writes next to `path`, then renames: a reader never sees half a report.
fn write_atomically(path: &Path, bytes: &[u8], flag: &'static str) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| InputError::flag(flag, path.display().to_string(), "names no file"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(err) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(InputError::File {
            path: path.to_path_buf(),
            reason: format!("{flag} cannot be written: {err}"),
        }
        .into());
    }
    Ok(())
}

fn listen(args: &preflight::cli::ListenArgs) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let responder = preflight::listen::bind(args.bind, &args.tcp, &args.udp).await?;
        let limit = args.for_;
        let stop = async move {
            match limit {
                Some(d) => tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = interrupted() => {}
                },
                None => interrupted().await,
            }
        };
        responder
            .serve(stop, |event| {
                let now = humantime::format_rfc3339_seconds(SystemTime::now());
                let mut out = stdout();
                // A closed stdout must not stop the responder.
                let _ = writeln!(out, "{now} {event}").and_then(|()| out.flush());
            })
            .await;
        Ok(0)
    })
}

/// Lists what the network team must allow, with the addresses the names resolve to now.
fn allowlist(args: &preflight::cli::AllowlistArgs) -> Result<u8, Failure> {
    let (plan, dns, proxies) = preflight::settings::allowlist_inputs(args)?;
    let dns = (!args.no_resolve).then_some(dns);
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let list = runtime.block_on(Allowlist::of_plan(&plan, &proxies, dns, now));
    runtime.shutdown_background();
    let mut buffer = Vec::new();
    render::allowlist(&list, args.format, &mut buffer)?;
    if args.format == ListFormat::Csv {
        // CSV has no place for them.
        for note in &list.notes {
            eprintln!("preflight: note: {note}");
        }
    }
    match &args.output {
        Some(path) => write_atomically(path, &buffer, "--output")?,
        None => {
            let mut out = stdout();
            out.write_all(&buffer)?;
            out.flush()?;
        }
    }
    Ok(0)
}

/// Standard output with a 64 KiB buffer: a report of thousands of checks is a few large
/// writes, not a write per line. Callers flush.
fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Writes what `generate` makes from the clap definitions to stdout.
fn generated(generate: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<u8, Failure> {
    let mut out = stdout();
    generate(&mut out)?;
    out.flush()?;
    Ok(0)
}

fn profiles(action: Option<ProfilesAction>) -> Result<u8, Failure> {
    let mut out = stdout();
    match action {
        None => {
            let all = profile::builtins()?;
            let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in all {
                writeln!(out, "{:width$}  {}", p.name, p.description)?;
            }
        }
        Some(ProfilesAction::Show { name }) => {
            let p = profile::load(&name)?;
            preflight::render::profile(&p, &mut out)?;
        }
    }
    out.flush()?;
    Ok(0)
}
