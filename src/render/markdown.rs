//! Markdown for a GitHub job summary or a ticket: a table per role, then what to do.

use std::io::{self, Write};

use crate::profile::Role;
use crate::report::{CheckResult, Report, Status};

/// Writes the report as Markdown: a table per role, then what to do.
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
        "{}: {} ok, {} warn, {} failed ({} required), {} skipped, in {}.",
        match s.total {
            1 => "1 check".to_string(),
            n => format!("{n} checks"),
        },
        s.ok,
        s.warn,
        s.fail,
        report.required_failures().count(),
        s.skipped,
        super::seconds(report.duration_ms)
    )?;
    for note in &report.notes {
        writeln!(out, "\n> {}", cell(note))?;
    }
    for role in Role::ALL {
        let mut checks = report.checks.iter().filter(|c| c.endpoint.role == role);
        let Some(first) = checks.next() else {
            continue;
        };
        writeln!(out, "\n### {role}\n")?;
        writeln!(out, "| endpoint | address | result | time | reason |")?;
        writeln!(out, "| --- | --- | --- | ---: | --- |")?;
        for check in std::iter::once(first).chain(checks) {
            row(check, out)?;
        }
    }
    what_to_do(report, out)
}

/// One check's row: the endpoint, the address used, the result, the time and the reason.
fn row(c: &CheckResult, out: &mut dyn Write) -> io::Result<()> {
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
        _ => super::ms(c.path.timings_ms.total),
    };
    writeln!(
        out,
        "| {} `{}` | {address} | {} | {time} | {reason} |",
        cell(&c.endpoint.name),
        crate::sanitize::markdown_code(&c.endpoint.target),
        result(c.path.status),
    )
}

/// Each failed or warned check and its fix.
fn what_to_do(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut todo = report.to_do().peekable();
    if todo.peek().is_none() {
        return Ok(());
    }
    writeln!(out, "\n### What to do\n")?;
    for (c, e) in todo {
        let weight = c.weight();
        writeln!(
            out,
            "- **{}** (`{}`, {weight}, `{}`): {}",
            cell(&c.endpoint.name),
            crate::sanitize::markdown_code(&c.endpoint.id),
            e.kind,
            cell(&e.hint)
        )?;
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

/// Text safe inside a table cell or a list item: `sanitize::markdown`.
pub(super) fn cell(text: &str) -> String {
    crate::sanitize::markdown(text)
}

#[cfg(test)]
mod tests {
    const EXPECTED: &str = r#"## preflight (konnect)

4 checks: 1 ok, 1 warn, 1 failed (0 required), 1 skipped, in 1.23 s.

> a note for the whole run

### control-plane

| endpoint | address | result | time | reason |
| --- | --- | --- | ---: | --- |
| Control plane `tls://cp.example:443` | 192.0.2.7 | ✅ ok | 5.0 ms |  |

### telemetry

| endpoint | address | result | time | reason |
| --- | --- | --- | ---: | --- |
| Telemetry `tls://tp.example:443` |  | ⚠️ warn | 7.0 ms | `client_cert_missing`: cp.example requires a client certificate and none was given |

### portal

| endpoint | address | result | time | reason |
| --- | --- | --- | ---: | --- |
| Dev Portal `tls://{portal_id}.eu.portal.konghq.com:443` |  | ⏭️ skipped |  | \`portal\_id\` is not set (add --set portal\_id=VALUE to check it) |

### target

| endpoint | address | result | time | reason |
| --- | --- | --- | ---: | --- |
| TCP connect `tcp://192.0.2.9:8443` | 192.0.2.9 | ❌ fail | 1.0 ms | `refused`: connection refused by 192.0.2.9:8443 \| \\x1b\[31mred\\x1b\[0m |

### What to do

- **Telemetry** (`konnect.telemetry`, required, `client_cert_missing`): cp.example authenticates data plane nodes with mutual TLS: run again with --client-cert and --client-key set to the node's cluster certificate and key (kong.conf cluster\_cert and cluster\_cert\_key) to test the full path.
- **TCP connect** (`tcp://192.0.2.9:8443`, optional, `refused`): Something at 192.0.2.9:8443 actively refused the connection: either nothing listens on port 8443 there, or a firewall rejects it. Check the service, then ask the network team to allow TCP port 8443 to cp.example.
"#;

    #[test]
    fn the_markdown_report_of_a_sample_run() {
        let mut out = Vec::new();
        super::render(&crate::render::sample(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, EXPECTED, "\n{text}");
    }
}
