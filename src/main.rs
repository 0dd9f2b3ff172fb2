//! The `preflight` binary: parse the command line, run, render, map the outcome to an exit code.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use clap::Parser;
use preflight::allowlist::Allowlist;
use preflight::cli::{Cli, Command, ExplainFormat, ProfilesAction};
use preflight::error::{InputError, io_text, without_os_error};
use preflight::output::Destination;
use preflight::progress::Bar;
use preflight::render::ListFormat;
use preflight::report::Report;
use preflight::settings::Settings;
use preflight::{profile, render, runner};

/// mimalloc, for both builds: musl's allocator is slow for the many small allocations of a
/// large run, and glibc's per-thread arenas keep far more memory resident than the heap's peak
/// (BENCHMARKS.md, measurement 5).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options (their numbers in mimalloc.h, v3's `mi_option_e`): commit arena memory
/// only as it is used, and give freed pages back at once, which keeps the resident set near
/// the heap's peak; a run is short, and gains nothing from keeping pages for later.
fn tune_allocator() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mi_option_set only stores an integer in mimalloc's table of options; it is
    // called once, before any thread of ours starts.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// Exit code of bad input: nothing was probed.
const EXIT_INPUT: u8 = 2;

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(&err),
    };
    // The commands that touch the network get their runtime and signal handlers before
    // anything else, so that Ctrl-C or SIGTERM at any moment ends in a report, not a kill.
    let needs_runtime = matches!(
        cli.command,
        Command::Check(_) | Command::Listen(_) | Command::Allowlist(_) | Command::Serve(_)
    );
    let hangup_stops = !matches!(cli.command, Command::Serve(_));
    let started = match needs_runtime
        .then(|| start_runtime(hangup_stops))
        .transpose()
    {
        Ok(started) => started,
        Err(err) => {
            eprintln!("preflight: cannot start: {err}");
            return ExitCode::from(EXIT_INPUT);
        }
    };
    let outcome = match (cli.command, &started) {
        (Command::Check(args), Some((runtime, stop))) => check(&args, runtime, stop),
        (Command::Listen(args), Some((runtime, stop))) => listen(&args, runtime, stop),
        (Command::Allowlist(args), Some((runtime, _))) => allowlist(&args, runtime),
        (Command::Serve(args), Some((runtime, stop))) => serve(*args, runtime, stop),
        // Not reached: `needs_runtime` started one for these.
        (
            Command::Check(_) | Command::Listen(_) | Command::Allowlist(_) | Command::Serve(_),
            None,
        ) => Ok(EXIT_INPUT),
        (Command::Profiles(args), _) => profiles(args.action),
        (Command::Explain(args), _) => explain(&args),
        (Command::Merge(args), _) => merge(&args),
        (Command::Completions { shell }, _) => generated(|out| {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "preflight", out);
            Ok(())
        }),
        (Command::Man, _) => {
            generated(|out| render::man(<Cli as clap::CommandFactory>::command(), out))
        }
    };
    // The runtime may hold sockets of timed-out lookups; do not wait for them.
    if let Some((runtime, _)) = started {
        runtime.shutdown_background();
    }
    exit(outcome)
}

/// `--help` and `--version`, or one line naming what clap refused, and exit 2.
fn usage(err: &clap::Error) -> ExitCode {
    if !err.use_stderr() {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
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
    ExitCode::from(EXIT_INPUT)
}

/// The exit code of a command's outcome, with one line on stderr for an error.
fn exit(outcome: Result<u8, Failure>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Input(err)) => {
            eprintln!(
                "preflight: {}",
                preflight::sanitize::message(&err.to_string())
            );
            ExitCode::from(EXIT_INPUT)
        }
        // A reader that went away (`| head`) is not an error: the verdict stands.
        Err(Failure::Output(err, code)) if err.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::from(code)
        }
        Err(Failure::Output(err, _)) => {
            eprintln!("preflight: cannot write the report: {}", io_text(&err));
            ExitCode::from(EXIT_INPUT)
        }
    }
}

/// The runtime and the signal handlers. Failures here (too few file descriptors or threads
/// allowed) are one line and exit 2, not a panic: tokio panics when it cannot spawn a worker,
/// so that is caught too, with the panic's own message kept quiet.
fn start_runtime(hangup_stops: bool) -> Result<(tokio::runtime::Runtime, Stop), String> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let built = std::panic::catch_unwind(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let stop = Stop::install(&runtime, hangup_stops)?;
        Ok::<_, io::Error>((runtime, stop))
    });
    std::panic::set_hook(quiet);
    match built {
        Ok(Ok(started)) => Ok(started),
        Ok(Err(err)) => Err(limits_hint(&io_text(&err))),
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(limits_hint(&without_os_error(&text)))
        }
    }
}

fn limits_hint(cause: &str) -> String {
    format!(
        "{cause}; the process limits are too low (raise ulimit -n to at least 64 and ulimit -u above the processes this user already runs)"
    )
}

/// Set once SIGINT or SIGTERM (or, but for `serve`, SIGHUP) arrives. Installed before
/// anything else, so that an early signal is kept and the run it interrupts still writes its
/// report. A process still alive a second after the signal (its setup waiting on standard
/// input, or its report on a reader that does not read) says so in one line and exits.
#[derive(Clone)]
struct Stop(tokio::sync::watch::Receiver<bool>);

/// Whether the checks have started: what the line of a forced exit says.
static CHECKS_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How long a process may take to end after SIGTERM or Ctrl-C.
const GRACE: std::time::Duration = std::time::Duration::from_secs(1);

impl Stop {
    /// `hangup_stops`: SIGHUP ends the run as SIGTERM does (every subcommand but `serve`,
    /// which reloads on it).
    fn install(runtime: &tokio::runtime::Runtime, hangup_stops: bool) -> io::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        let _inside = runtime.enter();
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        // Registered for serve too, from the start: its reloads listen for it, and a SIGHUP
        // before they do must not end the process (tokio keeps a handler once registered).
        let hangup = signal(SignalKind::hangup())?;
        let mut hangup = hangup_stops.then_some(hangup);
        let (tell, heard) = tokio::sync::watch::channel(false);
        runtime.spawn(async move {
            let hung_up = async {
                match &mut hangup {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            };
            let name = tokio::select! {
                _ = interrupt.recv() => "Ctrl-C",
                _ = terminate.recv() => "SIGTERM",
                _ = hung_up => "SIGHUP",
            };
            let _ = tell.send(true);
            tokio::time::sleep(GRACE).await;
            let when = match CHECKS_STARTED.load(std::sync::atomic::Ordering::Relaxed) {
                true => "before the report could be written",
                false => "before any check ran; nothing was probed",
            };
            eprintln!("preflight: stopped by {name} {when}");
            std::process::exit(1);
        });
        Ok(Stop(heard))
    }

    /// Completes once a signal has arrived (at once if one already has).
    async fn wait(&self) {
        let mut heard = self.0.clone();
        if heard.wait_for(|&stop| stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

enum Failure {
    Input(InputError),
    /// Writing to stdout failed; the run's exit code, which a broken pipe keeps.
    Output(io::Error, u8),
}

impl From<InputError> for Failure {
    fn from(err: InputError) -> Self {
        Failure::Input(err)
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure::Output(err, EXIT_INPUT)
    }
}

fn check(
    args: &preflight::cli::CheckArgs,
    runtime: &tokio::runtime::Runtime,
    stop: &Stop,
) -> Result<u8, Failure> {
    let (settings, plan) = Settings::from_args(args)?;
    let settings = Arc::new(settings);
    for note in &settings.warnings {
        eprintln!("preflight: note: {note}");
    }
    let color = args.color.paint(
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    if let Some(interval) = settings.watch {
        return runtime.block_on(watch(&plan, &settings, interval, color, stop));
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
    let bar = Bar::for_terminal(plan.checks.len(), args.quiet);
    let progress = bar
        .clone()
        .map(|b| b as Arc<dyn preflight::runner::Progress>);
    let report = on_a_worker(runtime, plan, settings.clone(), progress, stop);
    if let Some(bar) = bar {
        bar.clear();
    }
    write_reports(&report, &settings, output, failed_list, color)
}

/// Writes the report (to `--output`, with the human form on stdout; else to stdout) and the
/// allowlist of failures; returns the exit code. What could not be written to its file goes
/// to stdout instead, after one line on stderr, and makes the exit code 2.
fn write_reports(
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
        render::allowlist(&failed, ListFormat::of_file(path), &mut buffer)?;
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
fn on_a_worker(
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
async fn round(
    plan: &preflight::plan::Plan,
    settings: &Settings,
    progress: Option<Arc<dyn preflight::runner::Progress>>,
    interrupt: impl std::future::Future<Output = ()>,
) -> Report {
    let trace: Option<runner::Trace> = settings
        .verbose
        .then(|| Arc::new(|line: String| eprintln!("* {line}")) as runner::Trace);
    runner::round(plan, &settings.run, (progress, trace), interrupt).await
}

/// Scores one round of a watch and prints what changed (as JSON Lines, the whole round).
fn show_round(
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

/// Runs the checks every `interval` until Ctrl-C, SIGTERM or `--count` rounds; prints the
/// changes as they happen and a summary at the end.
async fn watch(
    plan: &preflight::plan::Plan,
    settings: &Settings,
    interval: std::time::Duration,
    color: bool,
    stop: &Stop,
) -> Result<u8, Failure> {
    use preflight::render::watch as show;
    use preflight::watch::Watch;

    let json = settings.format == preflight::render::Format::Json;
    CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut score = Watch::new();
    let mut ticks = tokio::time::interval(interval);
    // A round longer than the interval delays the next one rather than bunching them.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if !json {
        let mut out = stdout();
        show::header(plan.checks.len(), interval, &plan.notes, &mut out)?;
        out.flush()?;
    }
    loop {
        let report = tokio::select! {
            _ = ticks.tick() => round(plan, settings, None, stop.wait()).await,
            () = stop.wait() => break,
        };
        if report.interrupted {
            if score.rounds() > 0 {
                break;
            }
            // Stopped within the first round: no summary to give, so the round so far is
            // reported and exits as `check` would.
            let mut out = stdout();
            let code = report.exit_code(settings.strict);
            let style = render::Style {
                color,
                width: terminal_width(),
                strict: settings.strict,
            };
            render::render(&report, settings.format, style, &mut out)
                .and_then(|()| out.flush())
                .map_err(|err| Failure::Output(err, code))?;
            return Ok(code);
        }
        show_round(&mut score, &report, json)?;
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

fn listen(
    args: &preflight::cli::ListenArgs,
    runtime: &tokio::runtime::Runtime,
    stop: &Stop,
) -> Result<u8, Failure> {
    let log = Log::start();
    runtime.block_on(async {
        let responder = preflight::listen::bind(args.bind, &args.tcp, &args.udp).await?;
        CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
        let limit = args.for_;
        let stop = async move {
            match limit {
                Some(d) => tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = stop.wait() => {}
                },
                None => stop.wait().await,
            }
        };
        responder.serve(stop, move |event| log.line(event)).await;
        Ok(0)
    })
}

/// The responder's log: lines go to stdout from a thread of their own through a bounded
/// queue, so a stdout nobody reads never holds up an answer or the shutdown. When the queue
/// is full, lines are dropped and counted, and the count is logged once stdout moves again.
#[derive(Clone)]
struct Log {
    queue: std::sync::mpsc::SyncSender<String>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Log {
    /// Lines held while stdout is slow; beyond that they are dropped.
    const QUEUE: usize = 4096;

    fn start() -> Log {
        use std::sync::atomic::Ordering;
        let (queue, lines) = std::sync::mpsc::sync_channel::<String>(Self::QUEUE);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::spawn(move || {
            for line in lines {
                let mut out = io::stdout().lock();
                let lost = counted.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let _ = writeln!(
                        out,
                        "{lost} log lines dropped: standard output was not read"
                    );
                }
                // A closed stdout must not stop the responder.
                let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
            }
        });
        Log { queue, dropped }
    }

    fn line(&self, event: preflight::listen::Event) {
        let now = humantime::format_rfc3339_seconds(SystemTime::now());
        if self.queue.try_send(format!("{now} {event}\n")).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Lists what the network team must allow, with the addresses the names resolve to now.
fn allowlist(
    args: &preflight::cli::AllowlistArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let (plan, dns) = preflight::settings::allowlist_inputs(args)?;
    let destination = args
        .output
        .as_deref()
        .map(|path| Destination::open(path, "--output"))
        .transpose()?;
    let dns = (!args.no_resolve).then_some(dns);
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    let list = runtime.block_on(Allowlist::of_plan(&plan, dns, now));
    let mut buffer = Vec::new();
    render::allowlist(&list, args.format, &mut buffer)?;
    if args.format == ListFormat::Csv {
        // CSV has no place for them.
        for note in &list.notes {
            eprintln!("preflight: note: {note}");
        }
    }
    deliver(destination, &buffer, 0)
}

/// The columns of the terminal: `COLUMNS`, else the terminal's own width, else 80.
fn terminal_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
    {
        return columns;
    }
    rustix::termios::tcgetwinsize(io::stdout())
        .ok()
        .map(|size| usize::from(size.ws_col))
        .filter(|&columns| columns > 0)
        .unwrap_or(80)
}

/// Writes `bytes` to `--output`'s file, or to standard output; returns `code`. What cannot be
/// written to its file follows on standard output after one line on stderr, and the exit
/// code is then 2, as for `check --output`.
fn deliver(destination: Option<Destination>, bytes: &[u8], code: u8) -> Result<u8, Failure> {
    let code = match destination.map(|d| d.write(bytes)) {
        Some(Ok(())) => return Ok(code),
        Some(Err(err)) => {
            eprintln!(
                "preflight: {}; it follows on standard output",
                preflight::sanitize::message(&err.to_string())
            );
            EXIT_INPUT
        }
        None => code,
    };
    let mut out = stdout();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|err| Failure::Output(err, code))?;
    Ok(code)
}

/// Standard output with a 64 KiB buffer: a report of thousands of checks is a few large
/// writes, not a write per line. Callers flush.
fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Writes what `generate` makes from the clap definitions to stdout.
fn generated(generate: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<u8, Failure> {
    let mut out = stdout();
    generate(&mut out)?;
    out.flush()?;
    Ok(0)
}

/// Runs the checks every `--interval` and serves the last round until SIGTERM or Ctrl-C;
/// SIGHUP reads the configuration again.
fn serve(
    args: preflight::cli::ServeArgs,
    runtime: &tokio::runtime::Runtime,
    stop: &Stop,
) -> Result<u8, Failure> {
    let check = &args.check;
    for (given, flag) in [
        (check.watch.is_some(), "--watch"),
        (check.output.is_some(), "--output"),
        (check.allowlist_failed.is_some(), "--allowlist-failed"),
    ] {
        if given {
            return Err(InputError::Usage {
                flag,
                reason: "serve runs rounds of its own and serves them; use check for this".into(),
            }
            .into());
        }
    }
    let configuration = serve_configuration(check)?;
    for note in &configuration.settings.warnings {
        eprintln!("preflight: note: {note}");
    }
    let check = Arc::new(args.check);
    let options = preflight::serve::Options {
        interval: args.interval,
        probe: args.allow_probe.then(|| {
            args.probe_allow
                .as_deref()
                .map(preflight::route::HostList::parse)
        }),
        reload: Some(Box::new(move || {
            serve_configuration(&check).map_err(|err| err.to_string())
        })),
        log: Box::new(|line| eprintln!("preflight: {line}")),
    };
    let addr = args.listen.unwrap_or_else(|| {
        std::net::SocketAddr::from(([127, 0, 0, 1], preflight::cli::SERVE_PORT))
    });
    let listener = runtime
        .block_on(preflight::serve::bind(addr))
        .map_err(|err| InputError::Usage {
            flag: "--listen",
            reason: format!("cannot listen on {addr}: {}", io_text(&err)),
        })?;
    eprintln!("preflight: serving on http://{addr}/ (metrics on /metrics, health on /healthz)");
    CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    runtime.block_on(preflight::serve::serve(
        listener,
        configuration,
        options,
        stop.0.clone(),
    ));
    Ok(0)
}

/// serve's plan, settings and `/probe` planner, from the command line and the files it names.
fn serve_configuration(
    check: &preflight::cli::CheckArgs,
) -> Result<preflight::serve::Configuration, InputError> {
    let (settings, plan) = Settings::from_args(check)?;
    let planner = preflight::settings::probe_planner(check)?;
    Ok(preflight::serve::Configuration {
        plan,
        settings,
        planner: Box::new(planner),
    })
}

/// Explains the clustering errors of Kong's log.
fn explain(args: &preflight::cli::ExplainArgs) -> Result<u8, Failure> {
    let log = preflight::explain::open(&args.file)?;
    if let Some(conf) = &args.kong_conf {
        preflight::kongconf::KongConf::load(conf, |_| None)?;
    }
    let conf = args.kong_conf.as_ref().map(|p| p.display().to_string());
    let found =
        preflight::explain::explain_from(log, conf.as_deref()).map_err(|err| InputError::File {
            path: args.file.clone(),
            reason: format!("cannot read the log: {}", io_text(&err)),
        })?;
    let mut out = stdout();
    match args.format {
        ExplainFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &found).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        ExplainFormat::Human => render::explain(&found, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// Many nodes' reports as one matrix: exit 1 when a required endpoint failed on any node.
fn merge(args: &preflight::cli::MergeArgs) -> Result<u8, Failure> {
    use preflight::cli::MergeFormat;
    let destination = args
        .output
        .as_deref()
        .map(|path| Destination::open(path, "--output"))
        .transpose()?;
    let fleet = preflight::merge::Fleet::load(&args.reports)?;
    let mut buffer = Vec::new();
    match args.format {
        MergeFormat::Human => render::merge::human(&fleet, &mut buffer)?,
        MergeFormat::Markdown => render::merge::markdown(&fleet, &mut buffer)?,
        MergeFormat::Html => render::merge::html(&fleet, &mut buffer)?,
        MergeFormat::Json => {
            serde_json::to_writer_pretty(&mut buffer, &fleet).map_err(io::Error::from)?;
            buffer.push(b'\n');
        }
    }
    deliver(destination, &buffer, fleet.exit_code())
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
