//! The subcommands, each in its own file; what they share: the exit code of bad input, the
//! outcome of a command, standard output, the terminal's width, and delivering a buffer to
//! `--output` or stdout.

pub(crate) mod allowlist;
pub(crate) mod check;
pub(crate) mod explain;
pub(crate) mod listen;
pub(crate) mod merge;
pub(crate) mod profiles;
pub(crate) mod runtime;
pub(crate) mod serve;

use std::io::{self, Write};

use preflight::error::InputError;
use preflight::output::Destination;

/// Exit code of bad input: nothing was probed.
pub(crate) const EXIT_INPUT: u8 = 2;

pub(crate) enum Failure {
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

/// The columns of the terminal: `COLUMNS`, else the terminal's own width, else 80.
pub(crate) fn terminal_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
    {
        return columns;
    }
    // Wrapped only for a terminal: output piped to a file, `less` or a CI log keeps each
    // line whole (`less -S` and the log viewer wrap it as they see fit).
    if !std::io::IsTerminal::is_terminal(&io::stdout()) {
        return preflight::render::NO_WRAP;
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
pub(crate) fn deliver(
    destination: Option<Destination>,
    bytes: &[u8],
    code: u8,
) -> Result<u8, Failure> {
    deliver_with(destination, |out| out.write_all(bytes), code)
}

/// As `deliver`, with what `produce` writes as it writes it (once more to standard output
/// when the file could not take it).
pub(crate) fn deliver_with(
    destination: Option<Destination>,
    produce: impl Fn(&mut dyn Write) -> io::Result<()>,
    code: u8,
) -> Result<u8, Failure> {
    let code = match destination.map(|d| d.stream(&produce)) {
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
    produce(&mut out)
        .and_then(|()| out.flush())
        .map_err(|err| Failure::Output(err, code))?;
    Ok(code)
}

/// Standard output with a 64 KiB buffer: a report of thousands of checks is a few large
/// writes, not a write per line. Callers flush.
pub(crate) fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Writes what `generate` makes from the clap definitions to stdout.
pub(crate) fn generated(
    generate: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<u8, Failure> {
    let mut out = stdout();
    generate(&mut out)?;
    out.flush()?;
    Ok(0)
}
