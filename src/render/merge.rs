//! The fleet's matrix of `preflight merge`: endpoints down the side, nodes across, each cell the
//! status and the failure kind; then what the pattern says. As aligned text, Markdown, and one
//! self-contained HTML page.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::escape;
use super::marks::{STYLE, mark, symbol};
use crate::merge::{Cell, Fleet, Own, Pattern, Row};
use crate::report::Status;
use crate::sanitize::terminal;

/// What a pattern points at, and whom to ask: the sentence each format puts over its list.
fn heading(pattern: Pattern) -> &'static str {
    match pattern {
        Pattern::Everywhere => {
            "Failing on every node that checked it: the endpoint itself, or what every node has in common (its DNS name, the far side's firewall, the shared proxy or egress, or a rule every node carries, such as one security group or network policy). Each node's report names the phase; start at the far side and the shared path."
        }
        Pattern::SomeNodes => {
            "Failing on some nodes only, reached from the others: those nodes' own path (their firewall rules, security groups, routes or proxy settings). Compare them with a node that passes; ask the network team to give the failing nodes the rule the others have."
        }
        Pattern::OneNode => {
            "Failing on the only node that checked it: one node cannot tell its own path from the far side; check it from another node."
        }
        Pattern::None => "",
    }
}

/// The text of a cell: the mark and the failure kind, or `-` when the node did not check it.
fn cell_text(cell: &Cell) -> String {
    match (cell.status, &cell.error) {
        (None, _) => "- not checked".into(),
        (Some(status @ (Status::Fail | Status::Warn)), Some(e)) => {
            format!("{} {}", symbol(status), e.kind)
        }
        (Some(status), _) => mark(status).0,
    }
}

fn kinds(row: &Row) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for cell in &row.cells {
        if let (Some(Status::Fail), Some(e)) = (cell.status, &cell.error)
            && !kinds.contains(&e.kind.as_str())
        {
            kinds.push(&e.kind);
        }
    }
    kinds.join(", ")
}

/// One line per endpoint of the pattern: which nodes fail it, and how.
fn listed(fleet: &Fleet, pattern: Pattern) -> Vec<String> {
    let total = fleet.nodes.len();
    fleet
        .with(pattern)
        .map(|row| {
            let checked = row.cells.iter().filter(|c| c.status.is_some()).count();
            let on = match pattern {
                Pattern::Everywhere => format!("all {checked} nodes that checked it"),
                _ => format!(
                    "{} ({} of {total})",
                    row.failing_on.join(", "),
                    row.failing_on.len()
                ),
            };
            let mut what = vec![];
            if row.target != row.id {
                what.push(row.target.as_str());
            }
            if !row.required {
                what.push("optional");
            }
            let what = match what.is_empty() {
                true => String::new(),
                false => format!(" ({})", what.join(", ")),
            };
            format!("{}{what}: {} on {on}", row.id, kinds(row))
        })
        .chain(
            fleet
                .own_failing()
                .filter(|_| pattern == Pattern::OneNode)
                .map(|(node, own)| {
                    let kind = own.error.as_ref().map_or("", |e| e.kind.as_str());
                    format!(
                        "{}{}: {kind} on {node} (1 of {total})",
                        own.id,
                        own_what(own)
                    )
                }),
        )
        .collect()
}

/// ` (target, optional)` after an id: what the id does not already say.
fn own_what(own: &Own) -> String {
    let mut what = vec![];
    if own.target != own.id {
        what.push(own.target.as_str());
    }
    if !own.required {
        what.push("optional");
    }
    match what.is_empty() {
        true => String::new(),
        false => format!(" ({})", what.join(", ")),
    }
}

/// The text of an endpoint one node alone checked: its id, what it checked, and the cell.
fn own_text(own: &Own) -> String {
    let cell = Cell {
        status: Some(own.status),
        error: own.error.clone(),
    };
    format!("{}{} {}", own.id, own_what(own), cell_text(&cell))
}

/// The heading over the per-node lists.
const OWN: &str = "Checked by one node only (each node's own endpoints, apart from the matrix):";

/// The nodes failing alone, one sentence each.
fn alone_lines(fleet: &Fleet) -> Vec<String> {
    fleet
        .alone
        .iter()
        .map(|a| {
            format!(
                "{} fails {} that every other node reaches: {}. Its own path is the cause: compare its rules, routes and proxy settings with another node's.",
                a.node,
                match a.endpoints.len() {
                    1 => "1 endpoint".to_string(),
                    n => format!("{n} endpoints"),
                },
                a.endpoints.join(", ")
            )
        })
        .collect()
}

/// Aligned columns for a terminal, then the patterns in sentences, wrapped to `width`
/// (`NO_WRAP` when the output is not a terminal's).
pub fn human(fleet: &Fleet, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let width = width.max(40);
    let names: Vec<String> = fleet
        .nodes
        .iter()
        .map(|n| terminal(&n.node).into_owned())
        .collect();
    writeln!(
        out,
        "preflight merge: {} reports ({})",
        names.len(),
        names.join(", ")
    )?;
    for note in &fleet.notes {
        writeln!(out, "note: {}", terminal(note))?;
    }
    writeln!(out)?;
    for line in matrix(fleet, names) {
        writeln!(out, "  {line}")?;
    }
    if !fleet.own_endpoints.is_empty() {
        writeln!(out, "\n{OWN}")?;
        for node in &fleet.own_endpoints {
            let texts: Vec<String> = node.endpoints.iter().map(own_text).collect();
            let line = format!("{}: {}", node.node, texts.join("; "));
            let parts = super::human::wrap(&terminal(&line), width - 4);
            for (i, part) in parts.iter().enumerate() {
                writeln!(out, "{}{part}", if i == 0 { "  " } else { "    " })?;
            }
        }
    }
    for pattern in [Pattern::Everywhere, Pattern::SomeNodes, Pattern::OneNode] {
        let lines = listed(fleet, pattern);
        if lines.is_empty() {
            continue;
        }
        writeln!(out)?;
        for line in super::human::wrap(heading(pattern), width) {
            writeln!(out, "{line}")?;
        }
        for line in lines {
            let parts = super::human::wrap(&terminal(&line), width - 4);
            for (i, part) in parts.iter().enumerate() {
                writeln!(out, "{}{part}", if i == 0 { "  " } else { "    " })?;
            }
        }
    }
    for line in alone_lines(fleet) {
        writeln!(out)?;
        for part in super::human::wrap(&terminal(&line), width) {
            writeln!(out, "{part}")?;
        }
    }
    if fleet.endpoints.iter().all(|r| r.pattern == Pattern::None) {
        writeln!(
            out,
            "\nEvery endpoint was reached from every node that checked it."
        )?;
    }
    Ok(())
}

/// The matrix's lines, each column as wide as its widest cell.
fn matrix(fleet: &Fleet, names: Vec<String>) -> Vec<String> {
    let header = std::iter::once("endpoint".to_string()).chain(names);
    let mut table: Vec<Vec<String>> = vec![header.collect()];
    for row in &fleet.endpoints {
        let id = terminal(&row.id).into_owned();
        table.push(
            std::iter::once(id)
                .chain(
                    row.cells
                        .iter()
                        .map(|c| terminal(&cell_text(c)).into_owned()),
                )
                .collect(),
        );
    }
    let width = |i: usize| {
        table
            .iter()
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..table[0].len()).map(width).collect();
    table
        .iter()
        .map(|line| {
            let padded: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(text, &w)| format!("{text}{}", " ".repeat(w - text.chars().count())))
                .collect();
            padded.join("  ").trim_end().to_string()
        })
        .collect()
}

/// Markdown: the matrix as a table, then the patterns as lists.
pub fn markdown(fleet: &Fleet, out: &mut dyn Write) -> io::Result<()> {
    use super::markdown::cell;
    writeln!(out, "## preflight: {} nodes\n", fleet.nodes.len())?;
    for note in &fleet.notes {
        writeln!(out, "> {}\n", cell(note))?;
    }
    let names: Vec<String> = fleet.nodes.iter().map(|n| cell(&n.node)).collect();
    writeln!(out, "| endpoint | target | {} |", names.join(" | "))?;
    writeln!(out, "| --- | --- |{}", " --- |".repeat(names.len()))?;
    for row in &fleet.endpoints {
        let cells: Vec<String> = row.cells.iter().map(|c| cell(&cell_text(c))).collect();
        writeln!(
            out,
            "| {} | {} | {} |",
            cell(&row.id),
            cell(&row.target),
            cells.join(" | ")
        )?;
    }
    if !fleet.own_endpoints.is_empty() {
        writeln!(out, "\n{OWN}\n")?;
        writeln!(out, "| node | endpoint | target | result |")?;
        writeln!(out, "| --- | --- | --- | --- |")?;
        for node in &fleet.own_endpoints {
            for own in &node.endpoints {
                let result = Cell {
                    status: Some(own.status),
                    error: own.error.clone(),
                };
                writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    cell(&node.node),
                    cell(&own.id),
                    cell(&own.target),
                    cell(&cell_text(&result))
                )?;
            }
        }
    }
    for pattern in [Pattern::Everywhere, Pattern::SomeNodes, Pattern::OneNode] {
        let lines = listed(fleet, pattern);
        if lines.is_empty() {
            continue;
        }
        writeln!(out, "\n{}\n", heading(pattern))?;
        for line in lines {
            writeln!(out, "- {}", cell(&line))?;
        }
    }
    for line in alone_lines(fleet) {
        writeln!(out, "\n{}", cell(&line))?;
    }
    Ok(())
}

/// One self-contained page (no script, no outside resource): the matrix, coloured and marked,
/// with each failure's message and hint in the cell's title, then the per-node lists and the
/// patterns. Written as it is made.
pub fn html(fleet: &Fleet, out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>preflight: {} nodes</title><style>{STYLE}</style></head><body><h1>preflight: {} nodes</h1>",
        fleet.nodes.len(),
        fleet.nodes.len()
    )?;
    for note in &fleet.notes {
        write!(out, "<p class=\"note\">{}</p>", escape(note))?;
    }
    out.write_all(b"<table id=\"matrix\"><thead><tr><th>endpoint</th><th>target</th>")?;
    for node in &fleet.nodes {
        write!(
            out,
            "<th data-node=\"{}\" title=\"{}\">{}</th>",
            escape(&node.node),
            escape(&format!("{} ({})", node.file.display(), node.started_at)),
            escape(&node.node)
        )?;
    }
    out.write_all(b"</tr></thead><tbody>")?;
    let mut line = String::new();
    for row in &fleet.endpoints {
        line.clear();
        html_row(row, fleet, &mut line);
        out.write_all(line.as_bytes())?;
    }
    out.write_all(b"</tbody></table>")?;
    if !fleet.own_endpoints.is_empty() {
        write!(
            out,
            "<section id=\"own\"><p>{}</p><table><thead><tr><th>node</th><th>endpoint</th><th>target</th><th>result</th></tr></thead><tbody>",
            escape(OWN)
        )?;
        for node in &fleet.own_endpoints {
            for own in &node.endpoints {
                let cell = Cell {
                    status: Some(own.status),
                    error: own.error.clone(),
                };
                let class = mark(own.status).1;
                let title = own
                    .error
                    .as_ref()
                    .map(|e| format!("{} (fix: {})", e.message, e.hint))
                    .unwrap_or_default();
                write!(
                    out,
                    "<tr data-node=\"{}\" data-check=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\" data-status=\"{class}\" title=\"{}\">{}</td></tr>",
                    escape(&node.node),
                    escape(&own.id),
                    escape(&node.node),
                    escape(&own.id),
                    escape(&own.target),
                    escape(&title),
                    escape(&cell_text(&cell))
                )?;
            }
        }
        out.write_all(b"</tbody></table></section>")?;
    }
    for (pattern, id) in [
        (Pattern::Everywhere, "everywhere"),
        (Pattern::SomeNodes, "some-nodes"),
        (Pattern::OneNode, "one-node"),
    ] {
        let lines = listed(fleet, pattern);
        if lines.is_empty() {
            continue;
        }
        write!(
            out,
            "<section id=\"{id}\"><p>{}</p><ul>",
            escape(heading(pattern))
        )?;
        for line in lines {
            write!(out, "<li>{}</li>", escape(&line))?;
        }
        out.write_all(b"</ul></section>")?;
    }
    if !fleet.alone.is_empty() {
        out.write_all(b"<section id=\"alone\"><ul>")?;
        for line in alone_lines(fleet) {
            write!(out, "<li>{}</li>", escape(&line))?;
        }
        out.write_all(b"</ul></section>")?;
    }
    out.write_all(b"</body></html>\n")
}

fn html_row(row: &Row, fleet: &Fleet, page: &mut String) {
    let _ = write!(
        page,
        "<tr data-check=\"{}\" data-pattern=\"{}\"><td>{}</td><td>{}</td>",
        escape(&row.id),
        match row.pattern {
            Pattern::None => "none",
            Pattern::Everywhere => "everywhere",
            Pattern::SomeNodes => "some-nodes",
            Pattern::OneNode => "one-node",
        },
        escape(&row.id),
        escape(&row.target)
    );
    for (cell, node) in row.cells.iter().zip(&fleet.nodes) {
        let class = cell.status.map_or("missing", |s| mark(s).1);
        let title = cell
            .error
            .as_ref()
            .map(|e| format!("{} (fix: {})", e.message, e.hint))
            .unwrap_or_default();
        let _ = write!(
            page,
            "<td class=\"{class}\" data-node=\"{}\" data-status=\"{class}\" title=\"{}\">{}</td>",
            escape(&node.node),
            escape(&title),
            escape(&cell_text(cell))
        );
    }
    page.push_str("</tr>");
}
