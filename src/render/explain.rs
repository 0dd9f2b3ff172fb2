//! What `preflight explain` found, for a person: one entry per error of the log.

use std::io::{self, Write};

use super::human::paragraph;
use crate::explain::Explanation;
use crate::sanitize::terminal as t;

/// Writes what `explain` found, an entry per error, for a person, `width` columns wide (a
/// command to run is never cut).
pub fn render(found: &Explanation, width: usize, out: &mut dyn Write) -> io::Result<()> {
    if found.errors.is_empty() {
        paragraph(
            out,
            "",
            &format!(
                "No clustering error in {} lines: the data plane logged no broken connection to its control plane.",
                found.lines
            ),
            width,
        )?;
    }
    for e in &found.errors {
        let times = match e.count {
            1 => "once".to_string(),
            n => format!("{n} times"),
        };
        let when = match (&e.first, &e.last) {
            (Some(first), Some(last)) if first != last => format!(", from {first} to {last}"),
            (Some(first), _) => format!(", at {first}"),
            _ => String::new(),
        };
        let to = e
            .address
            .as_deref()
            .map_or_else(String::new, |a| format!(" {}", t(a)));
        paragraph(
            out,
            "",
            &format!("{}{to}: {times}{when}", e.connection),
            width,
        )?;
        paragraph(out, "  ", &t(&e.error), width)?;
        match (&e.meaning, &e.hint) {
            (Some(meaning), Some(hint)) => {
                let kind = e.kind.map_or_else(String::new, |k| format!("{k}: "));
                paragraph(out, "  ", &format!("{kind}{}", t(meaning)), width)?;
                paragraph(out, "  fix: ", &t(hint), width)?;
            }
            _ => writeln!(out, "  not explained: an error preflight does not know")?,
        }
        match &e.command {
            Some(command) => {
                writeln!(out, "  test it: {}", t(command))?;
                if let Some(note) = &e.command_note {
                    paragraph(out, "  ", &format!("({})", t(note)), width)?;
                }
            }
            None => writeln!(out, "  no check tests it")?,
        }
        writeln!(out)?;
    }
    let mut tail = Vec::new();
    if found.unknown > 0 {
        let lines = match found.unknown {
            1 => "line carries an error",
            _ => "lines carry errors",
        };
        tail.push(format!("{} {lines} preflight does not know", found.unknown));
    }
    if found.unread > 0 {
        let what = match found.unread {
            1 => "other clustering warning or error was",
            _ => "other clustering warnings and errors were",
        };
        tail.push(format!("{} {what} not read", found.unread));
    }
    if found.past_limit > 0 {
        tail.push(format!(
            "{} lines of further distinct errors were counted, not listed (at most {} are)",
            found.past_limit,
            crate::explain::MAX_ERRORS
        ));
    }
    if found.not_utf8_lines > 0 {
        tail.push(format!(
            "{} lines held bytes that are not UTF-8 and were read with them replaced",
            found.not_utf8_lines
        ));
    }
    if found.long_lines > 0 {
        tail.push(format!(
            "{} lines were longer than {} KiB and were read up to that length",
            found.long_lines,
            crate::explain::MAX_LINE >> 10
        ));
    }
    if !tail.is_empty() {
        paragraph(out, "", &format!("{}.", tail.join("; ")), width)?;
    }
    Ok(())
}
