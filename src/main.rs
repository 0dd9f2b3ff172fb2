//! The `preflight` binary: parse the command line, run, render, map the outcome to an exit code.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use preflight::cli::{Cli, Command, ProfilesAction};
use preflight::error::InputError;
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
    let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let start = std::time::Instant::now();
    let checks = runtime.block_on(runner::run(&plan, &settings));
    let duration_ms = preflight::probe::millis(start.elapsed());
    let mut report = Report::new(started_at, duration_ms, plan.profiles.clone(), checks);
    report.notes = plan.notes.clone();
    // The runtime may hold sockets of timed-out lookups; do not wait for them.
    runtime.shutdown_background();

    let color =
        io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    match &settings.output {
        Some(path) => {
            let mut buffer = Vec::new();
            render::render(&report, settings.format, false, &mut buffer)?;
            write_atomically(path, &buffer)?;
            let mut out = io::stdout().lock();
            render::human(&report, color, &mut out)?;
            out.flush()?;
        }
        None => {
            let mut out = io::stdout().lock();
            render::render(&report, settings.format, color, &mut out)?;
            out.flush()?;
        }
    }
    Ok(report.exit_code(settings.strict))
}

/// Writes next to `path`, then renames: a reader never sees half a report.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| InputError::flag("--output", path.display().to_string(), "names no file"))?;
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
            reason: format!("--output cannot be written: {err}"),
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
                let mut out = io::stdout().lock();
                // A closed stdout must not stop the responder.
                let _ = writeln!(out, "{now} {event}").and_then(|()| out.flush());
            })
            .await;
        Ok(0)
    })
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

fn profiles(action: Option<ProfilesAction>) -> Result<u8, Failure> {
    let mut out = io::stdout().lock();
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
