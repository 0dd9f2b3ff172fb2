//! serve's log on stderr, as blackbox_exporter and goss log each probe: one line per round
//! (its number, checks, how many failed and warned, failures by kind, its duration) and one
//! per transition of a check (its id and target, from and to, the failure's kind and cause),
//! as logfmt or JSON lines. Only identifiers and figures go in: never a peer's words.

use std::fmt::Write as _;

use serde::Serialize;

use crate::report::{Report, Status};

pub use crate::cli::{LogFormat, LogRounds};

/// A check that changed status between two rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The check's id.
    pub id: String,
    /// Its target.
    pub target: String,
    /// Its status in the round before (`none` in the first round it ran).
    pub from: &'static str,
    /// Its status now.
    pub to: &'static str,
    /// The failure's kind, when it fails or warns now.
    pub kind: Option<String>,
    /// The failure's cause, likewise.
    pub cause: Option<String>,
}

/// The status as the log names it.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "fail",
        Status::Skipped => "skipped",
    }
}

/// One round's line.
#[derive(Debug, Serialize)]
struct Round<'a> {
    ts: &'a str,
    msg: &'static str,
    round: u64,
    checks: usize,
    ok: usize,
    warn: usize,
    fail: usize,
    /// `kind:count`, comma-separated, in the kinds' order of first failure.
    failures: String,
    duration_ms: u64,
}

/// The time of a line: RFC 3339, in milliseconds.
fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The round's line, when `rounds` logs rounds.
pub fn round_line(
    report: &Report,
    round: u64,
    format: LogFormat,
    rounds: LogRounds,
) -> Option<String> {
    if rounds != LogRounds::All {
        return None;
    }
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for check in report
        .checks
        .iter()
        .filter(|c| c.path.status == Status::Fail)
    {
        let kind = check
            .path
            .error
            .as_ref()
            .map_or("unknown", |e| e.kind.as_str());
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let ts = now();
    let line = Round {
        ts: &ts,
        msg: "round",
        round,
        checks: report.checks.len(),
        ok: report.summary.ok,
        warn: report.summary.warn,
        fail: report.summary.fail,
        failures: kinds
            .iter()
            .map(|(k, n)| format!("{k}:{n}"))
            .collect::<Vec<_>>()
            .join(","),
        duration_ms: report.duration_ms.round() as u64,
    };
    Some(write(&line, format))
}

/// A line per transition, unless `rounds` is `none`.
pub fn transition_lines(
    transitions: &[Transition],
    format: LogFormat,
    rounds: LogRounds,
) -> Vec<String> {
    if rounds == LogRounds::None {
        return Vec::new();
    }
    #[derive(Serialize)]
    struct Line<'a> {
        ts: &'a str,
        msg: &'static str,
        #[serde(flatten)]
        transition: &'a Transition,
    }
    let ts = now();
    transitions
        .iter()
        .map(|transition| {
            let line = Line {
                ts: &ts,
                msg: "transition",
                transition,
            };
            write(&line, format)
        })
        .collect()
}

/// `value` as one line in `format`: JSON as it is; logfmt from the same fields, in order.
fn write(value: &impl Serialize, format: LogFormat) -> String {
    let json = serde_json::to_value(value).unwrap_or_default();
    match format {
        LogFormat::Json => json.to_string(),
        LogFormat::Logfmt => {
            let mut line = String::new();
            if let serde_json::Value::Object(fields) = json {
                for (key, value) in fields {
                    let text = match value {
                        serde_json::Value::Null => continue,
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    let _ = write!(line, "{key}={}", logfmt_value(&text));
                }
            }
            line
        }
    }
}

/// A logfmt value: bare when it is one plain word, else quoted with `"` and `\` escaped and
/// control characters written as escapes (a hostile target cannot forge a line).
fn logfmt_value(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if plain {
        return text.to_string();
    }
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{{{:x}}}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_values_are_quoted_and_escaped_where_they_must_be() {
        assert_eq!(logfmt_value("timeout"), "timeout");
        assert_eq!(logfmt_value("tls://a.example:443"), "tls://a.example:443");
        assert_eq!(logfmt_value("a b"), "\"a b\"");
        assert_eq!(logfmt_value("x\"y\\z"), "\"x\\\"y\\\\z\"");
        assert_eq!(logfmt_value("a\nmsg=forged"), "\"a\\nmsg=forged\"");
        assert_eq!(logfmt_value(""), "\"\"");
    }
}
