//! Watch mode's output: a line per change as it happens, a table per endpoint at the end
//! (human); a JSON object per round and one for the summary (JSON Lines).

use crate::sanitize::terminal as t;
use std::io::{self, Write};

use crate::watch::{Change, EndpointSummary, RoundLine, SummaryLine, WatchSummary};

/// The human lines of one round's changes.
/// The first lines of a watch: what is watched, how often, and the plan's notes.
pub fn header(
    checks: usize,
    interval: std::time::Duration,
    notes: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "preflight {}: watching {checks} checks every {}; changes below, a summary on Ctrl-C",
        env!("CARGO_PKG_VERSION"),
        crate::probe::duration_text(interval)
    )?;
    for note in notes {
        writeln!(out, "note: {}", crate::sanitize::terminal(note))?;
    }
    Ok(())
}

/// Writes a line per change of a round (down or up).
pub fn changes(changes: &[Change], out: &mut dyn Write) -> io::Result<()> {
    for change in changes {
        match change {
            Change::Down {
                id,
                target,
                at,
                error,
            } => {
                let why = error
                    .as_ref()
                    .map_or_else(String::new, |e| format!("  {}: {}", e.kind, t(&e.message)));
                writeln!(out, "{at}  DOWN  {}{why}", label(id, target))?;
            }
            Change::Up {
                id,
                target,
                at,
                outage_s,
            } => writeln!(
                out,
                "{at}  UP    {}  after {} down",
                label(id, target),
                duration(*outage_s)
            )?,
        }
    }
    Ok(())
}

/// The human summary: one line per endpoint.
pub fn summary(rounds: u32, endpoints: &[EndpointSummary], out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{rounds} rounds")?;
    let width = endpoints.iter().map(|e| e.id.len()).max().unwrap_or(0);
    writeln!(
        out,
        "  {:width$}  {:>9}  {:>8}  {:>5}  {:>15}  last error",
        "endpoint", "ok", "failures", "flaps", "longest outage"
    )?;
    for e in endpoints {
        let last = e.last_error.as_ref().map_or_else(
            || "-".to_string(),
            |f| format!("{}: {}", f.kind, t(&f.message)),
        );
        writeln!(
            out,
            "  {:width$}  {:>9}  {:>8}  {:>5}  {:>15}  {last}",
            t(&e.id),
            format!("{}/{}", e.ok, e.rounds),
            e.failures,
            e.flaps,
            duration(e.longest_outage_s),
        )?;
    }
    Ok(())
}

/// One JSON line per round.
pub fn round_json(line: &RoundLine<'_>, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    writeln!(out)
}

/// The last JSON line.
pub fn summary_json(
    rounds: u32,
    endpoints: &[EndpointSummary],
    out: &mut dyn Write,
) -> io::Result<()> {
    let line = SummaryLine {
        watch_summary: WatchSummary { rounds, endpoints },
    };
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)
}

/// The first line of a watch's round: how many checks are up.
pub fn first_round(at: &str, up: usize, down: usize, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{at}  round 1: {up} up, {down} down")
}

/// A check's id, and its target when that says more (`konnect.telemetry  tls://…`).
fn label(id: &str, target: &str) -> String {
    match id == target {
        true => t(id).into_owned(),
        false => format!("{}  {}", t(id), t(target)),
    }
}

/// `0.3s`, `12s`, `3m05s`.
fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        _ => format!("{}m{:02}s", s / 60, s % 60),
    }
}
