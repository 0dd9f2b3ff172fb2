//! `preflight merge`: many nodes' reports as one matrix.

use std::io::{self, Write};

use preflight::cli::MergeFormat;
use preflight::merge::Fleet;
use preflight::output::Destination;
use preflight::render;

use super::{Failure, deliver_with};

/// Many nodes' reports as one matrix: exit 1 when a required endpoint failed on any node.
/// Each format is written as it is made, to `--output`'s file or to standard output.
pub(crate) fn merge(args: &preflight::cli::MergeArgs) -> Result<u8, Failure> {
    let destination = args
        .output
        .as_deref()
        .map(|path| Destination::open(path, "--output"))
        .transpose()?;
    let fleet = Fleet::load(&args.reports)?;
    let width = super::terminal_width();
    let produce = |out: &mut dyn Write| write(&fleet, args.format, width, out);
    deliver_with(destination, produce, fleet.exit_code())
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
