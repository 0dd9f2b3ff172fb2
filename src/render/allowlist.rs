//! The allowlist for a network team: aligned columns, CSV (RFC 4180), JSON or Markdown.

use std::io::{self, Write};

use super::ListFormat;
use crate::allowlist::{Allowlist, Entry};

/// The columns, in order, as CSV and Markdown name them.
const COLUMNS: [&str; 11] = [
    "host",
    "port",
    "protocol",
    "direction",
    "purpose",
    "role",
    "required",
    "proxy",
    "addresses_now",
    "failure",
    "source",
];

const ALLOW_THE_NAMES: &str =
    "Allow the host names: the addresses are what they resolve to now and may change.";

/// Writes `list` in `format`; the table fits `width` columns (one block per entry when its
/// columns would not).
pub fn render(
    list: &Allowlist,
    format: ListFormat,
    width: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        ListFormat::Table => table(list, width, out),
        ListFormat::Csv => csv(list, out),
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, list)?;
            writeln!(out)
        }
        ListFormat::Markdown => markdown(list, out),
    }
}

/// The cells of one entry, in the order of `COLUMNS`.
fn cells(entry: &Entry) -> [String; 11] {
    let addresses = match &entry.addresses_error {
        Some(why) if entry.addresses_now.is_empty() => format!("({why})"),
        _ => entry
            .addresses_now
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    };
    [
        entry.host.clone(),
        entry.port.map_or_else(String::new, |p| p.to_string()),
        entry.protocol.as_str().to_string(),
        entry.direction.as_str().to_string(),
        entry.purpose.clone(),
        match (entry.role, entry.protocol) {
            (Some(role), _) => role.as_str().to_string(),
            (None, crate::allowlist::Protocol::Dns) => "dns".to_string(),
            (None, _) => "proxy".to_string(),
        },
        if entry.required { "yes" } else { "no" }.to_string(),
        entry.proxy.clone().unwrap_or_default(),
        addresses,
        entry.failure.clone().unwrap_or_default(),
        entry.source.map_or_else(String::new, |ip| ip.to_string()),
    ]
}

/// Which of `COLUMNS` the table and Markdown show: `failure` and `source` only when an entry
/// has one.
fn shown_columns(list: &Allowlist) -> Vec<usize> {
    let failures = list.entries.iter().any(|e| e.failure.is_some());
    let sources = list.entries.iter().any(|e| e.source.is_some());
    (0..COLUMNS.len())
        .filter(|&i| match COLUMNS[i] {
            "failure" => failures,
            "source" => sources,
            _ => true,
        })
        .collect()
}

fn table(list: &Allowlist, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let shown = shown_columns(list);
    let header: Vec<String> = shown
        .iter()
        .map(|&i| match COLUMNS[i] {
            "addresses_now" => "ADDRESSES (NOW)".to_string(),
            "source" => "SOURCE (THIS HOST)".to_string(),
            other => other.to_ascii_uppercase(),
        })
        .collect();
    let rows: Vec<Vec<String>> = list
        .entries
        .iter()
        .map(|e| {
            let cells = cells(e);
            shown.iter().map(|&i| cells[i].clone()).collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String], out: &mut dyn Write| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:w$}"))
            .collect();
        writeln!(out, "{}", text.join("  ").trim_end())
    };
    let wide = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
    if wide <= width {
        line(&header, out)?;
        for row in &rows {
            line(row, out)?;
        }
    } else {
        // Too wide for the terminal: a block per entry, a column's name before each cell
        // (as psql's expanded display does), and empty cells left out.
        let name_width = header.iter().map(|h| h.chars().count()).max().unwrap_or(0);
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            for (name, cell) in header.iter().zip(row) {
                if !cell.is_empty() {
                    let first = format!("{:name_width$}  ", name.to_lowercase());
                    super::human::paragraph(out, &first, cell, width)?;
                }
            }
        }
    }
    if list.entries.is_empty() {
        writeln!(out, "(nothing to allow)")?;
    }
    writeln!(out)?;
    super::human::paragraph(
        out,
        "",
        &format!("{ALLOW_THE_NAMES} Listed at {}.", list.generated_at),
        width,
    )?;
    for note in &list.notes {
        super::human::paragraph(out, "note: ", note, width)?;
    }
    Ok(())
}

fn csv(list: &Allowlist, out: &mut dyn Write) -> io::Result<()> {
    write!(out, "{}\r\n", COLUMNS.join(","))?;
    for entry in &list.entries {
        let row: Vec<String> = cells(entry).iter().map(|c| csv_field(c)).collect();
        write!(out, "{}\r\n", row.join(","))?;
    }
    Ok(())
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180); a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
fn csv_field(text: &str) -> String {
    let text = match text.starts_with(['=', '+', '-', '@']) {
        true => format!("'{text}"),
        false => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn markdown(list: &Allowlist, out: &mut dyn Write) -> io::Result<()> {
    let shown = shown_columns(list);
    let what = match list.profiles.is_empty() {
        true => String::new(),
        false => format!(" ({})", list.profiles.join(", ")),
    };
    writeln!(out, "## Network allowlist{what}\n")?;
    writeln!(out, "{ALLOW_THE_NAMES} Listed at {}.\n", list.generated_at)?;
    let names: Vec<&str> = shown.iter().map(|&i| COLUMNS[i]).collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}", " --- |".repeat(shown.len()))?;
    for entry in &list.entries {
        let cells = cells(entry);
        let row: Vec<String> = shown
            .iter()
            .map(|&i| super::markdown::cell(&cells[i]))
            .collect();
        writeln!(out, "| {} |", row.join(" | "))?;
    }
    for note in &list.notes {
        writeln!(out, "\n> {}", super::markdown::cell(note))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-1"), "'-1");
    }
}
