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

pub fn render(report: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let paint = Paint { on: color };
    let what = if report.profiles.is_empty() {
        String::new()
    } else {
        format!(" {}", t(&report.profiles.join(", ")))
    };
    writeln!(
        out,
        "{}{what}: {} checks in {}",
        paint.bold(&format!("preflight {}", report.version)),
        report.summary.total,
        seconds(report.duration_ms)
    )?;
    for note in &report.notes {
        writeln!(out, "{} {}", paint.dim("note:"), t(note))?;
    }
    let width = |text: fn(&CheckResult) -> &str| {
        report
            .checks
            .iter()
            .map(|c| t(text(c)).chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths = (width(|c| &c.endpoint.name), width(|c| &c.endpoint.target));
    for role in Role::ALL {
        let mut checks = report.checks.iter().filter(|c| c.endpoint.role == role);
        let Some(first) = checks.next() else {
            continue;
        };
        writeln!(out, "\n{}", paint.bold(role.as_str()))?;
        for check in std::iter::once(first).chain(checks) {
            line(check, widths, &paint, out)?;
        }
    }
    what_to_do(report, &paint, out)?;
    let s = &report.summary;
    let required = report.required_failures().count();
    writeln!(
        out,
        "\n{} ok, {} warn, {} failed ({required} required), {} skipped",
        s.ok, s.warn, s.fail, s.skipped
    )?;
    Ok(())
}

/// Each failed or warned check: what went wrong, in which phase, and the fix.
fn what_to_do(report: &Report, paint: &Paint, out: &mut dyn Write) -> io::Result<()> {
    let mut todo = report.to_do().peekable();
    if todo.peek().is_none() {
        return Ok(());
    }
    writeln!(out, "\n{}", paint.bold("What to do"))?;
    for (check, error) in todo {
        let weight = check.weight();
        writeln!(
            out,
            "  {} {} ({weight}): {} in the {} phase",
            paint.status(check.path.status),
            t(&check.endpoint.id),
            error.kind,
            error.phase
        )?;
        writeln!(out, "         {}", t(&error.message))?;
        writeln!(out, "         {} {}", paint.bold("fix:"), t(&error.hint))?;
    }
    Ok(())
}

fn line(
    check: &CheckResult,
    (name_width, target_width): (usize, usize),
    paint: &Paint,
    out: &mut dyn Write,
) -> io::Result<()> {
    let detail = match check.path.status {
        Status::Skipped => paint.dim(&t(check.reason.as_deref().unwrap_or("skipped"))),
        Status::Fail | Status::Warn => match &check.path.error {
            Some(e) => format!("{} ({})", e.kind, e.phase),
            None => String::new(),
        },
        Status::Ok => ok_detail(check),
    };
    writeln!(
        out,
        "  {} {:name_width$}  {:target_width$}  {detail}",
        paint.status(check.path.status),
        t(&check.endpoint.name),
        t(&check.endpoint.target),
    )?;
    if let Some(route) = route_line(check) {
        writeln!(out, "         {}", paint.dim(&t(&route)))?;
    }
    if let Some(tls) = &check.path.tls {
        writeln!(out, "         {}", paint.dim(&t(&certificate_line(tls))))?;
    }
    if check.path.addresses_not_tried > 0 {
        writeln!(
            out,
            "         {}",
            paint.dim(&format!(
                "{} more addresses of the name not tried (at most {} per address family)",
                check.path.addresses_not_tried,
                crate::runner::MAX_ADDRESSES_PER_FAMILY
            ))
        )?;
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
                writeln!(
                    out,
                    "         {}",
                    paint.dim(&format!("but {}: {} ({})", addr.ip, e.kind, t(&e.message)))
                )?;
            }
        }
    }
    Ok(())
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
                Some(ms) => format!("direct: ok (tcp {})", ms_text(ms)),
                None => "direct: ok".to_string(),
            },
        });
    }
    Some(parts.join("; "))
}

/// Who issued the certificate, when it expires, and which store trusts it.
fn certificate_line(tls: &TlsInfo) -> String {
    let expiry = match tls.not_after.split('T').next() {
        Some(day) if !day.is_empty() => format!("expires {day} ({} days)", tls.days_left),
        _ => "expiry unknown".to_string(),
    };
    format!(
        "issuer {}  {expiry}  trust {}",
        tls.issuer,
        tls.trust.as_str()
    )
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
            parts.push(format!("{label} {}", ms_text(ms)));
        }
    }
    if let Some(tls) = &check.path.tls {
        parts.push(tls.version.clone());
    }
    if let Some(status) = check.path.http_status {
        parts.push(format!("HTTP {status}"));
    }
    parts.join("  ")
}

fn ms_text(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

fn seconds(ms: f64) -> String {
    format!("{:.2}s", ms / 1000.0)
}

#[cfg(test)]
mod tests {
    const EXPECTED: &str = r#"preflight 0.1.0 konnect: 4 checks in 1.23s
note: a note for the whole run

control-plane
  [ ok ] Control plane  tls://cp.example:443                        192.0.2.7  dns 0.5ms  tcp 1.2ms  tls 3.5ms  TLSv1.3
         issuer CN=Example CA  expires 2027-01-01 (36 days)  trust custom
         but 192.0.2.6: timeout (no answer from 192.0.2.6:443 within 5s)

telemetry
  [warn] Telemetry      tls://tp.example:443                        client_cert_missing (tls)
         via http://proxy.example:3128 (https_proxy); local DNS: nxdomain (the proxy resolves the name); direct: timeout (no answer within 5s)

portal
  [skip] Dev Portal     tls://{portal_id}.eu.portal.konghq.com:443  `portal_id` is not set (add --set portal_id=VALUE to check it)

target
  [FAIL] TCP connect    tcp://192.0.2.9:8443                        refused (tcp)

What to do
  [warn] konnect.telemetry (required): client_cert_missing in the tls phase
         cp.example requires a client certificate and none was given
         fix: cp.example authenticates data plane nodes with mutual TLS: run again with --client-cert and --client-key set to the node's cluster certificate and key (kong.conf cluster_cert and cluster_cert_key) to test the full path.
  [FAIL] tcp://192.0.2.9:8443 (optional): refused in the tcp phase
         connection refused by 192.0.2.9:8443 | \x1b[31mred\x1b[0m
         fix: Something at 192.0.2.9:8443 actively refused the connection: either nothing listens on port 8443 there, or a firewall rejects it. Check the service, then ask the network team to allow TCP port 8443 to cp.example.

1 ok, 1 warn, 1 failed (0 required), 1 skipped
"#;

    #[test]
    fn the_human_report_of_a_sample_run() {
        let mut out = Vec::new();
        super::render(&crate::render::sample(), false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, EXPECTED, "\n{text}");
    }
}
