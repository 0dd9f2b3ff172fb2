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

use clap::ValueEnum;

use crate::report::Report;

pub use allowlist::render as allowlist;
pub use human::render as human;
pub use json::render as json;
pub use junit::render as junit;
pub use markdown::render as markdown;
pub use profile::render as profile;

/// The formats of a report (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    /// JUnit XML for CI test reporters.
    Junit,
    /// Markdown tables for a job summary or a ticket.
    Markdown,
}

/// The formats of an allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for a terminal.
    Table,
    Csv,
    Json,
    Markdown,
}

impl ListFormat {
    /// The format a file name asks for by its extension (`.csv`, `.json`, `.md`); a table
    /// otherwise.
    pub fn of_file(path: &std::path::Path) -> ListFormat {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => ListFormat::Csv,
            Some("json") => ListFormat::Json,
            Some("md" | "markdown") => ListFormat::Markdown,
            _ => ListFormat::Table,
        }
    }
}

/// Renders `report` in `format`; `color` applies to the human form only.
pub fn render(report: &Report, format: Format, color: bool, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Human => human(report, color, out),
        Format::Json => json(report, out),
        Format::Junit => junit(report, out),
        Format::Markdown => markdown(report, out),
    }
}
