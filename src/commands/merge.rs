//! `preflight merge`: many nodes' reports as one matrix.

use std::io::{self, Write};

use preflight::cli::MergeFormat;
use preflight::merge::Fleet;
use preflight::output::Destination;
use preflight::render;

use super::{EXIT_INPUT, Failure, stdout};

/// Many nodes' reports as one matrix: exit 1 when a required endpoint failed on any node.
/// Each format is written as it is made, to `--output`'s file or to standard output.
pub(crate) fn merge(args: &preflight::cli::MergeArgs) -> Result<u8, Failure> {
    let destination = args
        .output
        .as_deref()
        .map(|path| Destination::open(path, "--output"))
        .transpose()?;
    let fleet = Fleet::load(&args.reports)?;
    let code = fleet.exit_code();
    let width = super::terminal_width();
    let produce = |out: &mut dyn Write| write(&fleet, args.format, width, out);
    let code = match destination.map(|d| d.stream(produce)) {
        Some(Ok(())) => return Ok(code),
        // What cannot be written to its file follows on standard output, as for check.
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
    write(&fleet, args.format, width, &mut out)
        .and_then(|()| out.flush())
        .map_err(|err| Failure::Output(err, code))?;
    Ok(code)
}

fn write(fleet: &Fleet, format: MergeFormat, width: usize, out: &mut dyn Write) -> io::Result<()> {
    match format {
        MergeFormat::Human => render::merge::human(fleet, width, out),
        MergeFormat::Markdown => render::merge::markdown(fleet, out),
        MergeFormat::Html => render::merge::html(fleet, out),
        MergeFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, fleet).map_err(io::Error::from)?;
            out.write_all(b"\n")
        }
    }
}
