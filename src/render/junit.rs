//! JUnit XML, as GitLab, Jenkins and the GitHub test reporters read it: a `testsuite` per
//! profile (command-line targets in their own), a `testcase` per check, `failure` carrying the
//! kind, message and hint, `skipped` for skipped checks, and warnings in `system-out`.

use std::io::{self, Write};

use crate::report::{CheckResult, Report, Status};

/// The suite of checks given on the command line.
const TARGETS_SUITE: &str = "targets";

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut suites: Vec<(&str, Vec<&CheckResult>)> = Vec::new();
    for check in &report.checks {
        let suite = check.endpoint.profile.as_deref().unwrap_or(TARGETS_SUITE);
        match suites.iter_mut().find(|(name, _)| *name == suite) {
            Some((_, checks)) => checks.push(check),
            None => suites.push((suite, vec![check])),
        }
    }
    let s = &report.summary;
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="preflight" tests="{}" failures="{}" errors="0" skipped="{}" time="{}">"#,
        s.total,
        s.fail,
        s.skipped,
        seconds(report.duration_ms)
    )?;
    for (name, checks) in suites {
        let count = |status: Status| checks.iter().filter(|c| c.path.status == status).count();
        let time: f64 = checks.iter().map(|c| c.path.timings_ms.total).sum();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="0" skipped="{}" time="{}" timestamp="{}">"#,
            escape(name),
            checks.len(),
            count(Status::Fail),
            count(Status::Skipped),
            seconds(time),
            escape(&report.started_at),
        )?;
        for check in checks {
            testcase(name, check, out)?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

fn testcase(suite: &str, check: &CheckResult, out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        r#"    <testcase classname="{}" name="{}" time="{}""#,
        escape(suite),
        escape(&format!("{} {}", check.endpoint.id, check.endpoint.target)),
        seconds(check.path.timings_ms.total)
    )?;
    match (check.path.status, &check.path.error) {
        (Status::Ok, _) | (Status::Warn, None) | (Status::Fail, None) => writeln!(out, "/>"),
        (Status::Skipped, _) => {
            writeln!(out, ">")?;
            writeln!(
                out,
                r#"      <skipped message="{}"/>"#,
                escape(check.reason.as_deref().unwrap_or("skipped"))
            )?;
            writeln!(out, "    </testcase>")
        }
        (Status::Fail, Some(e)) => {
            writeln!(out, ">")?;
            let weight = if check.endpoint.required {
                ""
            } else {
                " (optional)"
            };
            writeln!(
                out,
                r#"      <failure type="{}" message="{}">{}{weight} in the {} phase: {}&#10;fix: {}</failure>"#,
                e.kind,
                escape(&e.message),
                e.kind,
                e.phase,
                escape(&e.message),
                escape(&e.hint)
            )?;
            writeln!(out, "    </testcase>")
        }
        (Status::Warn, Some(e)) => {
            writeln!(out, ">")?;
            writeln!(
                out,
                "      <system-out>warning {}: {}&#10;fix: {}</system-out>",
                e.kind,
                escape(&e.message),
                escape(&e.hint)
            )?;
            writeln!(out, "    </testcase>")
        }
    }
}

/// Milliseconds as JUnit's seconds.
fn seconds(ms: f64) -> String {
    format!("{:.3}", ms / 1000.0)
}

/// Escapes text for an XML attribute or element; characters XML 1.0 forbids are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_what_xml_forbids() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;"
        );
    }
}
