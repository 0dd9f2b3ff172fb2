//! Markdown for a GitHub job summary or a ticket: a table per role, then what to do.

use std::io::{self, Write};

use crate::profile::Role;
use crate::report::{CheckResult, Report, Status};

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let s = &report.summary;
    let what = match report.profiles.is_empty() {
        true => String::new(),
        false => format!(" ({})", report.profiles.join(", ")),
    };
    writeln!(out, "## preflight{what}")?;
    writeln!(out)?;
    writeln!(
        out,
        "{} checks: {} ok, {} warn, {} failed ({} required), {} skipped, in {:.2} s.",
        s.total,
        s.ok,
        s.warn,
        s.fail,
        report.required_failures().count(),
        s.skipped,
        report.duration_ms / 1000.0
    )?;
    for note in &report.notes {
        writeln!(out, "\n> {}", cell(note))?;
    }
    for role in Role::ALL {
        let checks: Vec<&CheckResult> = report
            .checks
            .iter()
            .filter(|c| c.endpoint.role == role)
            .collect();
        if checks.is_empty() {
            continue;
        }
        writeln!(out, "\n### {role}\n")?;
        writeln!(out, "| endpoint | address | result | time | reason |")?;
        writeln!(out, "| --- | --- | --- | ---: | --- |")?;
        for c in checks {
            let address = c
                .address_used()
                .or(c.path.addresses.first())
                .map_or_else(String::new, |a| a.ip.to_string());
            let reason = match (&c.path.error, &c.reason) {
                (Some(e), _) => format!("`{}`: {}", e.kind, cell(&e.message)),
                (None, Some(r)) => cell(r),
                (None, None) => String::new(),
            };
            let time = match c.path.status {
                Status::Skipped => String::new(),
                _ => format!("{:.1} ms", c.path.timings_ms.total),
            };
            writeln!(
                out,
                "| {} `{}` | {address} | {} | {time} | {reason} |",
                cell(&c.endpoint.name),
                // A backquote would end the code span.
                cell(&c.endpoint.target).replace('`', "'"),
                result(c.path.status),
            )?;
        }
    }
    let todo: Vec<&CheckResult> = report
        .checks
        .iter()
        .filter(|c| matches!(c.path.status, Status::Fail | Status::Warn))
        .collect();
    if !todo.is_empty() {
        writeln!(out, "\n### What to do\n")?;
        for c in todo {
            let Some(e) = &c.path.error else { continue };
            let weight = if c.endpoint.required {
                "required"
            } else {
                "optional"
            };
            writeln!(
                out,
                "- **{}** ({weight}, `{}`): {}",
                cell(&c.endpoint.id),
                e.kind,
                cell(&e.hint)
            )?;
        }
    }
    Ok(())
}

fn result(status: Status) -> &'static str {
    match status {
        Status::Ok => "✅ ok",
        Status::Warn => "⚠️ warn",
        Status::Fail => "❌ fail",
        Status::Skipped => "⏭️ skipped",
    }
}

/// Text safe inside a table cell: no pipes, no line breaks, no control characters (shown
/// escaped, as on a terminal).
pub(super) fn cell(text: &str) -> String {
    crate::sanitize::terminal(&text.replace(['\n', '\r'], " ")).replace('|', "\\|")
}
