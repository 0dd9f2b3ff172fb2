//! Renderers: the report as text for people or as JSON for tools. They write to any writer
//! and never touch the network.

mod human;
mod json;
mod profile;
pub mod watch;

use std::io::{self, Write};

use crate::cli::Format;
use crate::report::Report;

pub use human::render as human;
pub use json::render as json;
pub use profile::render as profile;

/// Renders `report` in `format`; `color` applies to the human form only.
pub fn render(report: &Report, format: Format, color: bool, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Human => human(report, color, out),
        Format::Json => json(report, out),
    }
}
