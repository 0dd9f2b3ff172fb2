//! JUnit XML, as GitLab, Jenkins and the GitHub test reporters read it: a `testsuite` per
//! profile (command-line targets in their own), a `testcase` per check, `failure` carrying the
//! kind, message and hint, `skipped` for skipped checks. A `failure` is exactly what makes the
//! run exit 1: a required check that failed, or warned under `--strict`; an optional failure
//! and a warning go to `system-out`. The checks run at once: the whole's time is the run's
//! wall time (`duration_ms`), a suite's the longest of its cases' (not their sum, which a
//! reporter would show as minutes for a run of seconds).

use std::io::{self, Write};

use super::escape;
use crate::report::{CheckResult, Report, Status};

/// The suite of checks given on the command line.
const TARGETS_SUITE: &str = "targets";

/// Writes the report as JUnit XML: a test case per check; warnings fail with `strict`.
pub fn render(report: &Report, strict: bool, out: &mut dyn Write) -> io::Result<()> {
    let mut suites: Vec<(&str, Vec<&CheckResult>)> = Vec::new();
    for check in &report.checks {
        let suite = check.endpoint.profile.as_deref().unwrap_or(TARGETS_SUITE);
        match suites.iter_mut().find(|(name, _)| *name == suite) {
            Some((_, checks)) => checks.push(check),
            None => suites.push((suite, vec![check])),
        }
    }
    let time = |checks: &[&CheckResult]| -> f64 {
        checks
            .iter()
            .map(|c| c.path.timings_ms.total)
            .fold(0.0, f64::max)
    };
    let s = &report.summary;
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="preflight" tests="{}" failures="{}" errors="0" skipped="{}" time="{}">"#,
        s.total,
        report
            .checks
            .iter()
            .filter(|c| fails_run(c, strict))
            .count(),
        s.skipped,
        seconds(report.duration_ms)
    )?;
    for (name, checks) in &suites {
        let skipped = checks
            .iter()
            .filter(|c| c.path.status == Status::Skipped)
            .count();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="0" skipped="{skipped}" time="{}" timestamp="{}">"#,
            escape(name),
            checks.len(),
            checks.iter().filter(|c| fails_run(c, strict)).count(),
            seconds(time(checks)),
            escape(&report.started_at),
        )?;
        for check in checks {
            testcase(name, check, strict, out)?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// Whether `check` makes the run exit 1: a required failure, or a required warning under
/// `--strict`.
fn fails_run(check: &CheckResult, strict: bool) -> bool {
    check.endpoint.required
        && match check.path.status {
            Status::Fail => true,
            Status::Warn => strict,
            Status::Ok | Status::Skipped => false,
        }
}

fn testcase(suite: &str, check: &CheckResult, strict: bool, out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        r#"    <testcase classname="{}" name="{}" time="{}""#,
        escape(suite),
        escape(&format!("{} {}", check.endpoint.id, check.endpoint.target)),
        seconds(check.path.timings_ms.total)
    )?;
    if check.path.status == Status::Skipped {
        writeln!(out, ">")?;
        writeln!(
            out,
            r#"      <skipped message="{}"/>"#,
            escape(check.reason.as_deref().unwrap_or("skipped"))
        )?;
        return writeln!(out, "    </testcase>");
    }
    let Some(e) = &check.path.error else {
        return writeln!(out, "/>");
    };
    writeln!(out, ">")?;
    if fails_run(check, strict) {
        writeln!(
            out,
            r#"      <failure type="{}" message="{}">{} in the {} phase: {}&#10;fix: {}</failure>"#,
            e.kind,
            escape(&e.message),
            e.kind,
            e.phase,
            escape(&e.message),
            escape(&e.hint)
        )?;
    } else {
        let what = match (check.path.status, check.endpoint.required) {
            (Status::Fail, false) => "optional, failed",
            (_, false) => "optional, warning",
            _ => "warning",
        };
        writeln!(
            out,
            "      <system-out>{what} {}: {}&#10;fix: {}</system-out>",
            e.kind,
            escape(&e.message),
            escape(&e.hint)
        )?;
    }
    writeln!(out, "    </testcase>")
}

/// Milliseconds as JUnit's seconds.
fn seconds(ms: f64) -> String {
    format!("{:.3}", ms / 1000.0)
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
