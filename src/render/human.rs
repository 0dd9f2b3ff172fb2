//! The report for a person at a terminal or reading a CI log: checks grouped by role, one line
//! each, then what failed and what to do about it.

use std::io::{self, Write};

use crate::probe::tls::TlsInfo;
use crate::profile::Role;
use crate::report::{AddressStatus, CheckResult, Report, Status};
use crate::sanitize::terminal as t;
use crate::target::Probe;

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn status(&self, status: Status) -> String {
        match status {
            Status::Ok => self.wrap("32", "[ ok ]"),
            Status::Warn => self.wrap("33", "[warn]"),
            Status::Fail => self.wrap("1;31", "[FAIL]"),
            Status::Skipped => self.wrap("2", "[skip]"),
        }
    }

    fn bold(&self, text: &str) -> String {
        self.wrap("1", text)
    }

    fn dim(&self, text: &str) -> String {
        self.wrap("2", text)
    }
}

/// The indent of the lines under a check's own.
const UNDER: usize = 9;
/// A run of this many checks with the same outcome is shown as its first `SHOWN_OF_RUN` and a
/// count, as nmap summarises closed ports.
const LONG_RUN: usize = 6;
const SHOWN_OF_RUN: usize = 3;
/// The endpoints named in one "What to do" entry.
const NAMED_PER_CAUSE: usize = 3;

/// Renders `report` for a person: `width` columns (80 when the terminal's is not known).
pub fn render(report: &Report, color: bool, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let paint = Paint { on: color };
    let width = width.max(40);
    let what = if report.profiles.is_empty() {
        String::new()
    } else {
        format!(" {}", t(&report.profiles.join(", ")))
    };
    writeln!(
        out,
        "{}{what}: {} in {}",
        paint.bold(&format!("preflight {}", report.version)),
        count(report.summary.total, "check"),
        super::seconds(report.duration_ms)
    )?;
    for note in &report.notes {
        for (i, line) in wrap(&t(note), width - 6).iter().enumerate() {
            let head = if i == 0 {
                paint.dim("note:")
            } else {
                "     ".to_string()
            };
            writeln!(out, "{head} {line}")?;
        }
    }
    let layout = Layout::of(report, width);
    for role in Role::ALL {
        let checks: Vec<&CheckResult> = report
            .checks
            .iter()
            .filter(|c| c.endpoint.role == role)
            .collect();
        if checks.is_empty() {
            continue;
        }
        writeln!(out, "\n{}", paint.bold(role.as_str()))?;
        for run in runs(&checks) {
            let shown = match run.len() >= LONG_RUN {
                true => SHOWN_OF_RUN,
                false => run.len(),
            };
            for check in &run[..shown] {
                line(check, &layout, &paint, out)?;
            }
            if shown < run.len() {
                let more = format!("… and {} more {}", run.len() - shown, outcome(run[0]));
                writeln!(out, "{:UNDER$}{}", "", paint.dim(&more))?;
            }
        }
    }
    what_to_do(report, &paint, width, out)?;
    let s = &report.summary;
    let required = report.required_failures().count();
    writeln!(
        out,
        "\n{} ok, {} warn, {} failed ({required} required), {} skipped",
        s.ok, s.warn, s.fail, s.skipped
    )?;
    Ok(())
}

/// `1 check`, `4 checks`.
fn count(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{} {what}s", thousands(n as i64)),
    }
}

/// Consecutive checks with the same outcome (status and failure kind).
fn runs<'a>(checks: &[&'a CheckResult]) -> Vec<Vec<&'a CheckResult>> {
    let mut runs: Vec<Vec<&CheckResult>> = Vec::new();
    for &check in checks {
        match runs.last_mut() {
            Some(run) if outcome(run[0]) == outcome(check) => run.push(check),
            _ => runs.push(vec![check]),
        }
    }
    runs
}

/// A check's outcome in a few words: `ok`, `failed: refused (tcp)`.
fn outcome(check: &CheckResult) -> String {
    let status = match check.path.status {
        Status::Ok => "ok",
        Status::Warn => "warned",
        Status::Fail => "failed",
        Status::Skipped => "skipped",
    };
    match &check.path.error {
        Some(e) => format!("{status}: {} ({})", e.kind, e.phase),
        None => status.to_string(),
    }
}

/// The columns of the check lines: names and targets aligned when they fit the width.
struct Layout {
    width: usize,
    /// `(name, target)` widths, when aligned columns fit.
    columns: Option<(usize, usize)>,
}

impl Layout {
    fn of(report: &Report, width: usize) -> Layout {
        let widest = |text: fn(&CheckResult) -> &str| {
            report
                .checks
                .iter()
                .map(|c| t(text(c)).chars().count())
                .max()
                .unwrap_or(0)
        };
        let (name, target) = (widest(|c| &c.endpoint.name), widest(|c| &c.endpoint.target));
        // "  [FAIL] " + name + "  " + target
        let columns = (UNDER + name + 2 + target <= width).then_some((name, target));
        Layout { width, columns }
    }
}

/// Each cause of failure or warning once: its kind and phase, the endpoints it covers, what
/// one of them said, and the fix. Failures of the same kind whose hints differ only in the
/// endpoint named are one cause.
fn what_to_do(report: &Report, paint: &Paint, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let mut causes: Vec<(String, Vec<(&CheckResult, &crate::failure::Failure)>)> = Vec::new();
    for (check, error) in report.to_do() {
        let key = cause_key(check, error);
        match causes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push((check, error)),
            None => causes.push((key, vec![(check, error)])),
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{}", paint.bold("What to do"))?;
    let text = width - UNDER;
    for (_, members) in &causes {
        let (check, error) = members[0];
        let weight = match check.endpoint.required {
            true => "required",
            false => "optional",
        };
        // A check is called by the name the list above gives it, with its id (what --only,
        // the JSON report and the metrics call it) beside.
        let who = match members.len() {
            1 => format!(
                "{} ({}, {weight})",
                t(&check.endpoint.name),
                t(&check.endpoint.id)
            ),
            n => {
                // The first few, each name once with the ids it covers.
                let mut named: Vec<(String, Vec<String>)> = Vec::new();
                for (c, _) in members.iter().take(NAMED_PER_CAUSE) {
                    let (name, id) = (t(&c.endpoint.name), t(&c.endpoint.id).into_owned());
                    match named.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, ids)) => ids.push(id),
                        None => named.push((name.into_owned(), vec![id])),
                    }
                }
                let mut named: Vec<String> = named
                    .into_iter()
                    .map(|(name, ids)| format!("{name} ({})", ids.join(", ")))
                    .collect();
                if n > NAMED_PER_CAUSE {
                    named.push(format!("and {} more", n - NAMED_PER_CAUSE));
                }
                format!("{}, {weight}: {}", count(n, "endpoint"), named.join(", "))
            }
        };
        let head = format!("{who}: {} in the {} phase", error.kind, error.phase);
        for (i, line) in wrap(&head, text).iter().enumerate() {
            match i {
                0 => writeln!(out, "  {} {line}", paint.status(check.path.status))?,
                _ => writeln!(out, "{:UNDER$}{line}", "")?,
            }
        }
        // For a cause that covers several endpoints, the first one's words stand for each.
        let (said, fix) = match members.len() {
            1 => ("", "fix:"),
            _ => ("the first: ", "fix, as for the first:"),
        };
        for line in wrap(&format!("{said}{}", t(&error.message)), text) {
            writeln!(out, "{:UNDER$}{line}", "")?;
        }
        // What was tried after the failure, in one line.
        if let Some(second) = &check.path.second_opinion {
            let line = format!(
                "second opinion ({}): {}",
                super::ms(second.ms),
                t(&second.conclusion)
            );
            for part in wrap(&line, text) {
                writeln!(out, "{:UNDER$}{part}", "")?;
            }
        }
        for (i, line) in wrap(&format!("{fix} {}", t(&error.hint)), text)
            .iter()
            .enumerate()
        {
            match (i, line.strip_prefix(fix)) {
                (0, Some(rest)) => writeln!(out, "{:UNDER$}{}{rest}", "", paint.bold(fix))?,
                _ => writeln!(out, "{:UNDER$}{line}", "")?,
            }
        }
    }
    Ok(())
}

/// What makes two failures one cause: whether the endpoint is required, the kind, the phase,
/// and the hint with the endpoint's own names and numbers taken out.
fn cause_key(check: &CheckResult, error: &crate::failure::Failure) -> String {
    let mut hint = error.hint.replace(&check.endpoint.host, "\u{0}");
    for address in &check.path.addresses {
        hint = hint.replace(&address.ip.to_string(), "\u{0}");
    }
    let hint: String = hint
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    // Required and optional endpoints are never one cause: the group's title says which.
    let weight = check.endpoint.required;
    format!("{weight}|{}|{}|{hint}", error.kind, error.phase)
}

/// The words a number is never split from at a wrap (`4.8 s`, `25 ms`, `23,038 days`).
const UNITS: [&str; 14] = [
    "ms", "s", "min", "h", "days", "day", "bytes", "KiB", "MiB", "GiB", "bits", "seconds",
    "minutes", "hours",
];

/// The words of `text`, with a number and its unit kept together as one.
fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let unit = word.trim_end_matches([',', ';', ':', '.', ')']);
        let joins = UNITS.contains(&unit)
            && words
                .last()
                .is_some_and(|before| before.ends_with(|c: char| c.is_ascii_digit()));
        match (joins, words.last_mut()) {
            (true, Some(before)) => {
                before.push(' ');
                before.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    words
}

/// `text` cut into lines of at most `width` characters at spaces (a word longer than the
/// width stands alone on its line), never between a number and its unit.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in &words(text) {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Writes `text` after `first`, wrapped to `width` columns, its further lines indented by
/// `first`'s width: a line of the other subcommands' reports (profiles, explain, allowlist).
pub fn paragraph(out: &mut dyn Write, first: &str, text: &str, width: usize) -> io::Result<()> {
    let indent = first.chars().count();
    for (i, line) in wrap(text, width.saturating_sub(indent).max(20))
        .iter()
        .enumerate()
    {
        match i {
            0 => writeln!(out, "{first}{line}")?,
            _ => writeln!(out, "{:indent$}{line}", "")?,
        }
    }
    Ok(())
}

/// A check's row (status, name, target, and what came of it) and the lines under it.
fn line(
    check: &CheckResult,
    layout: &Layout,
    paint: &Paint,
    out: &mut dyn Write,
) -> io::Result<()> {
    row(check, layout, paint, out)?;
    for text in under(check) {
        for part in wrap(&t(&text), layout.width - UNDER) {
            writeln!(out, "{:UNDER$}{}", "", paint.dim(&part))?;
        }
    }
    Ok(())
}

/// The row itself: on one line when it fits, else with what came of it under the name.
fn row(check: &CheckResult, layout: &Layout, paint: &Paint, out: &mut dyn Write) -> io::Result<()> {
    let detail = match check.path.status {
        Status::Skipped => t(check.reason.as_deref().unwrap_or("skipped")).into_owned(),
        Status::Fail | Status::Warn => match &check.path.error {
            Some(e) => format!("{} ({})", e.kind, e.phase),
            None => String::new(),
        },
        Status::Ok => ok_detail(check),
    };
    let dim = |text: &str| match check.path.status {
        Status::Skipped => paint.dim(text),
        _ => text.to_string(),
    };
    let status = paint.status(check.path.status);
    let (name, target) = (t(&check.endpoint.name), t(&check.endpoint.target));
    let width = layout.width;
    match layout.columns {
        Some((name_width, target_width)) => {
            let used = UNDER + name_width + 2 + target_width;
            let row = format!("{name:name_width$}  {target:target_width$}");
            if used + 2 + detail.chars().count() <= width {
                writeln!(out, "  {status} {row}  {}", dim(&detail))?;
            } else {
                writeln!(out, "  {status} {}", row.trim_end())?;
                for part in wrap(&detail, width - UNDER) {
                    writeln!(out, "{:UNDER$}{}", "", dim(&part))?;
                }
            }
        }
        None => {
            writeln!(out, "  {status} {name}")?;
            for part in wrap(&format!("{target}  {detail}"), width - UNDER) {
                writeln!(out, "{:UNDER$}{}", "", dim(&part))?;
            }
        }
    }
    Ok(())
}

/// What to say under the row: the route, the certificate, addresses left out or failed.
fn under(check: &CheckResult) -> Vec<String> {
    let mut under = Vec::new();
    under.extend(route_line(check));
    if let Some(tls) = &check.path.tls {
        under.push(certificate_line(tls));
    }
    if check.path.addresses_not_tried > 0 {
        under.push(format!(
            "{} more addresses of the name not tried (at most {} per address family)",
            check.path.addresses_not_tried,
            crate::runner::MAX_ADDRESSES_PER_FAMILY
        ));
    }
    // An address that failed while another worked (say IPv6 while IPv4 works) is worth a line.
    if check.path.status == Status::Ok {
        for addr in check
            .path
            .addresses
            .iter()
            .filter(|a| a.status == AddressStatus::Fail)
        {
            if let Some(e) = &addr.error {
                under.push(format!("but {}: {} ({})", addr.ip, e.kind, e.message));
            }
        }
    }
    under
}

/// The path a check took when a proxy is configured: through which proxy and why, what this
/// host's DNS says of a name the proxy resolved, and the direct path when it was compared.
fn route_line(check: &CheckResult) -> Option<String> {
    let reason = check.proxy_reason.as_deref()?;
    let mut parts = vec![match &check.proxy {
        Some(proxy) => format!("via {proxy} ({reason})"),
        None => format!("direct ({reason})"),
    }];
    if let Some(local) = &check.path.local_dns {
        parts.push(match &local.error {
            Some(e) => format!("local DNS: {} (the proxy resolves the name)", e.kind),
            None => {
                let ips: Vec<String> = local.addresses.iter().map(|ip| ip.to_string()).collect();
                format!("local DNS: {}", ips.join(", "))
            }
        });
    }
    if let Some(direct) = &check.direct {
        parts.push(match &direct.error {
            Some(e) if direct.status == Status::Fail => {
                format!("direct: {} ({})", e.kind, e.message)
            }
            _ => match direct.timings_ms.connect {
                Some(ms) => format!("direct: ok (tcp {})", super::ms(ms)),
                None => "direct: ok".to_string(),
            },
        });
    }
    Some(parts.join("; "))
}

/// Who issued the certificate, when it expires, and which store trusts it.
fn certificate_line(tls: &TlsInfo) -> String {
    let expiry = match tls.not_after.split('T').next() {
        Some(day) if !day.is_empty() && tls.days_left < 0 => {
            format!("expired {day} ({} ago)", days(-tls.days_left))
        }
        Some(day) if !day.is_empty() => format!("expires {day} ({} left)", days(tls.days_left)),
        _ => "expiry unknown".to_string(),
    };
    format!(
        "issuer {}; {expiry}; trust {}",
        tls.issuer,
        tls.trust.as_str()
    )
}

/// `1 day`, `2,153 days`.
fn days(n: i64) -> String {
    match n {
        1 => "1 day".to_string(),
        n => format!("{} days", thousands(n)),
    }
}

/// A count with thousands separated: `2,153`.
pub(super) fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    match n < 0 {
        true => format!("-{out}"),
        false => out,
    }
}

fn ok_detail(check: &CheckResult) -> String {
    let mut parts = Vec::new();
    if let Some(addr) = check.address_used() {
        parts.push(addr.ip.to_string());
    } else if !check.path.addresses.is_empty() {
        let ips: Vec<String> = check
            .path
            .addresses
            .iter()
            .map(|a| a.ip.to_string())
            .collect();
        parts.push(ips.join(", "));
    }
    let t = &check.path.timings_ms;
    // For udp, `connect` is the time to the reply.
    let connect = match check.endpoint.probe {
        Probe::Udp => "reply",
        _ => "tcp",
    };
    for (label, value) in [
        ("dns", t.dns),
        (connect, t.connect),
        ("proxy", t.proxy),
        ("tls", t.tls),
        ("client verdict", t.tls_verdict),
    ] {
        if let Some(ms) = value {
            parts.push(format!("{label} {}", super::ms(ms)));
        }
    }
    if let Some(tls) = &check.path.tls {
        parts.push(tls.version.clone());
    }
    if let Some(status) = check.path.http_status {
        parts.push(format!("HTTP {status}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_number_is_never_split_from_its_unit() {
        let lines = super::wrap(
            "no answer from 203.0.113.10:443 within 4.8 s, then 25 ms more",
            38,
        );
        assert!(
            lines
                .iter()
                .all(|l| !l.ends_with(" 4.8") && !l.starts_with("s,")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("4.8 s,")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("25 ms")), "{lines:?}");
    }

    const EXPECTED: &str = r#"preflight 0.1.0 konnect: 4 checks in 1.23 s
note: a note for the whole run

control-plane
  [ ok ] Control plane  tls://cp.example:443
         192.0.2.7, dns 0.5 ms, tcp 1.2 ms, tls 3.5 ms, TLSv1.3
         issuer CN=Example CA; expires 2027-01-01 (36 days left); trust custom
         but 192.0.2.6: timeout (no answer from 192.0.2.6:443 within 5s)

telemetry
  [warn] Telemetry      tls://tp.example:443
         client_cert_missing (tls)
         via http://proxy.example:3128 (https_proxy); local DNS: nxdomain (the
         proxy resolves the name); direct: timeout (no answer within 5s)

portal
  [skip] Dev Portal     tls://{portal_id}.eu.portal.konghq.com:443
         `portal_id` is not set (add --set portal_id=VALUE to check it)

target
  [FAIL] TCP connect    tcp://192.0.2.9:8443
         refused (tcp)

What to do
  [warn] Telemetry (konnect.telemetry, required): client_cert_missing in the tls
         phase
         cp.example requires a client certificate and none was given
         fix: cp.example authenticates data plane nodes with mutual TLS: run
         again with --client-cert and --client-key set to the node's cluster
         certificate and key (kong.conf cluster_cert and cluster_cert_key) to
         test the full path.
  [FAIL] TCP connect (tcp://192.0.2.9:8443, optional): refused in the tcp phase
         connection refused by 192.0.2.9:8443 | \x1b[31mred\x1b[0m
         fix: Something at 192.0.2.9:8443 actively refused the connection:
         either nothing listens on port 8443 there, or a firewall rejects it.
         Check the service, then ask the network team to allow TCP port 8443 to
         cp.example.

1 ok, 1 warn, 1 failed (0 required), 1 skipped
"#;

    #[test]
    fn the_human_report_of_a_sample_run() {
        let mut out = Vec::new();
        super::render(&crate::render::sample(), false, 80, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, EXPECTED, "\n{text}");
    }
}
