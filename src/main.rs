//! The `preflight` binary: parse the command line, dispatch to the subcommand (`commands/`),
//! map the outcome to an exit code.

mod commands;

use std::io;
use std::process::ExitCode;

use clap::Parser;
use commands::runtime::start_runtime;
use commands::{EXIT_INPUT, Failure, generated};
use preflight::cli::{Cli, Command};
use preflight::error::io_text;
use preflight::render;

/// mimalloc, for both builds: musl's allocator is slow for the many small allocations of a
/// large run, and glibc's per-thread arenas keep far more memory resident than the heap's peak
/// (BENCHMARKS.md, measurement 5).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options (their numbers in mimalloc.h, v3's `mi_option_e`): commit arena memory
/// only as it is used, and give freed pages back at once, which keeps the resident set near
/// the heap's peak (a small one-off `check` keeps them instead: `keep_freed_pages`).
#[allow(unsafe_code)]
fn tune_allocator() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: mi_option_set only stores an integer in mimalloc's table of options; it is
    // called before any thread of ours starts.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// mimalloc's `purge_delay` option: how long freed pages are kept before they are given
/// back, in milliseconds; -1 never (mimalloc's arena.c returns early for a negative delay).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// For a one-off `check` of up to `preflight::settings::SMALL_RUN` checks: freed pages are kept
/// until the process exits, so that they are used again rather than given back and faulted in
/// anew (7% of a 2,000-endpoint run's CPU; BENCHMARKS.md measurement 1). A larger run gives
/// them back at once, which keeps a 10,000-endpoint run's resident set near its heap's peak
/// (measurement 5).
#[allow(unsafe_code)]
pub(crate) fn keep_freed_pages() {
    // SAFETY: mi_option_set stores one aligned machine word in mimalloc's table of options,
    // which mimalloc reads again at each decision to purge; the runtime's threads are idle
    // (the round has not started), and a read of the word sees the old or the new value.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
}

/// Grows this process's file table to hold `descriptors` before the runtime's threads start:
/// the kernel grows a shared table by copying it and waiting for every thread to leave the
/// old one (an RCU grace period), each time the table doubles in the middle of a run.
fn grow_file_table(descriptors: u64) {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let highest = descriptors.min(limit.saturating_sub(1));
    if let Ok(highest) = i32::try_from(highest)
        && highest > 64
    {
        // The lowest free descriptor at or above `highest`: the table now reaches it; the
        // copy is closed at once, and the table keeps its size.
        drop(rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), highest));
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(&err),
    };
    if let Command::Check(args) = &cli.command
        && args.watch.is_none()
    {
        // A connection and a DNS socket for each check in flight, and a margin.
        let in_flight = args
            .concurrency
            .map_or(preflight::settings::DEFAULT_CONCURRENCY, u64::from);
        grow_file_table(in_flight * 2 + 64);
    }
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
        (Command::Check(args), Some((runtime, stop))) => {
            commands::check::check(&args, runtime, stop)
        }
        (Command::Listen(args), Some((runtime, stop))) => {
            commands::listen::listen(&args, runtime, stop)
        }
        (Command::Allowlist(args), Some((runtime, _))) => {
            commands::allowlist::allowlist(&args, runtime)
        }
        (Command::Serve(args), Some((runtime, stop))) => {
            commands::serve::serve(*args, runtime, stop)
        }
        // Not reached: `needs_runtime` started one for these.
        (
            Command::Check(_) | Command::Listen(_) | Command::Allowlist(_) | Command::Serve(_),
            None,
        ) => Ok(EXIT_INPUT),
        (Command::Profiles(args), _) => commands::profiles::profiles(args.action),
        (Command::Explain(args), _) => commands::explain::explain(&args),
        (Command::Merge(args), _) => commands::merge::merge(&args),
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
