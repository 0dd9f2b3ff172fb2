//! `preflight merge`: many nodes' reports as one matrix.

use std::io;

use preflight::output::Destination;
use preflight::render;

use super::{Failure, deliver};

/// Many nodes' reports as one matrix: exit 1 when a required endpoint failed on any node.
pub(crate) fn merge(args: &preflight::cli::MergeArgs) -> Result<u8, Failure> {
    use preflight::cli::MergeFormat;
    let destination = args
        .output
        .as_deref()
        .map(|path| Destination::open(path, "--output"))
        .transpose()?;
    let fleet = preflight::merge::Fleet::load(&args.reports)?;
    let mut buffer = Vec::new();
    match args.format {
        MergeFormat::Human => render::merge::human(&fleet, super::terminal_width(), &mut buffer)?,
        MergeFormat::Markdown => render::merge::markdown(&fleet, &mut buffer)?,
        MergeFormat::Html => render::merge::html(&fleet, &mut buffer)?,
        MergeFormat::Json => {
            serde_json::to_writer_pretty(&mut buffer, &fleet).map_err(io::Error::from)?;
            buffer.push(b'\n');
        }
    }
    deliver(destination, &buffer, fleet.exit_code())
}
