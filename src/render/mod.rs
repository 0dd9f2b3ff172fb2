//! Renderers: the report as text for people, JSON for tools, JUnit XML for CI and Markdown
//! for job summaries and tickets. They write to any writer
//! and never touch the network.

mod allowlist;
mod human;
mod json;
mod junit;
mod markdown;
mod profile;
pub mod watch;

use std::io::{self, Write};

use crate::cli::Format;
use crate::report::Report;

pub use allowlist::render as allowlist;
pub use human::render as human;
pub use json::render as json;
pub use junit::render as junit;
pub use markdown::render as markdown;
pub use profile::render as profile;

/// Renders `report` in `format`; `color` applies to the human form only.
pub fn render(report: &Report, format: Format, color: bool, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Human => human(report, color, out),
        Format::Json => json(report, out),
        Format::Junit => junit(report, out),
        Format::Markdown => markdown(report, out),
    }
}
