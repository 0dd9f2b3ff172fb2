//! Renderers: the report as text for people, JSON for tools, JUnit XML for CI and Markdown
//! for job summaries and tickets. They write to any writer
//! and never touch the network.

mod allowlist;
mod explain;
mod human;
mod json;
mod junit;
mod man;
mod markdown;
pub mod marks;
pub mod merge;
mod profile;
pub mod watch;

use std::io::{self, Write};

use clap::ValueEnum;

use crate::report::Report;

pub use allowlist::render as allowlist;
pub use explain::render as explain;
pub use human::paragraph;
pub use human::render as human;
pub use json::render as json;
pub use junit::render as junit;
pub use man::render as man;
pub use markdown::render as markdown;
pub use profile::render as profile;

/// The formats of a report (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Grouped by role, with a hint per failure, for a person.
    Human,
    /// The JSON report (schema 1).
    Json,
    /// JUnit XML for CI test reporters.
    Junit,
    /// Markdown tables for a job summary or a ticket.
    Markdown,
}

/// The formats of an allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for a terminal.
    Table,
    /// Comma-separated values, a rule a line.
    Csv,
    /// The list as JSON.
    Json,
    /// A Markdown table.
    Markdown,
}

impl ListFormat {
    /// The format a file name asks for by its extension (`.csv`, `.json`, `.md`); a table
    /// otherwise.
    pub fn of_file(path: &std::path::Path) -> ListFormat {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => ListFormat::Csv,
            Some("json") => ListFormat::Json,
            Some("md" | "markdown") => ListFormat::Markdown,
            _ => ListFormat::Table,
        }
    }
}

/// Escapes text for an XML or HTML attribute or element: `sanitize::markup`.
pub use crate::sanitize::markup as escape;

/// Milliseconds as every format shows them: `25.5 ms`.
pub(crate) use crate::report::ms_text as ms;

/// A duration in milliseconds shown in seconds: `1.23 s`.
pub(crate) fn seconds(ms: f64) -> String {
    format!("{:.2} s", ms / 1000.0)
}

/// The width of output that is not a terminal's: no line is wrapped.
pub const NO_WRAP: usize = usize::MAX / 4;

/// How a report is shown: colour and width for people, and whether warnings fail the run
/// (JUnit's verdict follows the exit code).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Whether to use colour.
    pub color: bool,
    /// Columns of the human report (80 when the terminal's are not known).
    pub width: usize,
    /// `--strict`: warnings fail.
    pub strict: bool,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            color: false,
            width: 80,
            strict: false,
        }
    }
}

/// Renders `report` in `format`.
pub fn render(
    report: &Report,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Human => human(report, style.color, style.width, out),
        Format::Json => json(report, out),
        Format::Junit => junit(report, style.strict, out),
        Format::Markdown => markdown(report, out),
    }
}

/// A report built by hand, for the renderers' exact-output tests: one check of each status,
/// a proxied check compared with its direct path, an address that failed beside one that
/// worked, and text that must not reach a terminal or a table as it is.
#[cfg(test)]
pub(crate) fn sample() -> Report {
    use crate::check::CheckSpec;
    use crate::failure::{Failure, FailureKind, Peer, Phase};
    use crate::probe::{TlsInfo, Trust};
    use crate::profile::Role;
    use crate::report::Status;
    use crate::report::{
        AddressResult, AddressStatus, CheckResult, LocalDns, PathResult, StepTimes,
    };
    use crate::target::Probe;

    let spec = |id: &str, name: &str, role, probe, target: &str| {
        let mut spec = CheckSpec::new(id.into(), name.into(), role, probe);
        spec.endpoint.target = target.into();
        spec.endpoint.host = "cp.example".into();
        spec.endpoint.port = Some(443);
        spec
    };
    let peer = Peer {
        host: "cp.example",
        port: Some(443),
        ip: None,
    };
    let ip = |last: u8| std::net::IpAddr::from([192, 0, 2, last]);
    let times = |connect| StepTimes {
        connect_ms: Some(connect),
        ..StepTimes::default()
    };
    let mut ok = PathResult::new(Status::Ok);
    ok.addresses = vec![
        AddressResult {
            ip: ip(6),
            local: None,
            status: AddressStatus::Fail,
            error: Some(Failure::new(
                FailureKind::Timeout,
                Phase::Tcp,
                "no answer from 192.0.2.6:443 within 5s",
                peer,
            )),
            timings: times(5000.0),
        },
        AddressResult {
            ip: ip(7),
            local: None,
            status: AddressStatus::Ok,
            error: None,
            timings: times(1.25),
        },
    ];
    ok.timings_ms.dns = Some(0.5);
    ok.timings_ms.connect = Some(1.25);
    ok.timings_ms.tls = Some(3.5);
    ok.timings_ms.total = 5.0;
    ok.tls = Some(Box::new(TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_256_GCM_SHA384".into(),
        alpn: None,
        subject: "CN=cp.example".into(),
        issuer: "CN=Example CA".into(),
        san: vec!["cp.example".into()],
        not_before: "2026-01-01T00:00:00Z".into(),
        not_after: "2027-01-01T00:00:00Z".into(),
        days_left: 36,
        chain_len: 2,
        trust: Trust::Custom,
        client_cert_requested: false,
    }));
    let mut cp = CheckResult::of(
        &spec(
            "konnect.control-plane",
            "Control plane",
            Role::ControlPlane,
            Probe::Tls,
            "tls://cp.example:443",
        ),
        ok,
    );
    cp.endpoint.profile = Some("konnect".into());

    let mut warned = PathResult::new(Status::Warn);
    warned.error = Some(Failure::new(
        FailureKind::ClientCertMissing,
        Phase::Tls,
        "cp.example requires a client certificate and none was given",
        peer,
    ));
    warned.timings_ms.total = 7.0;
    let mut telemetry = CheckResult::of(
        &spec(
            "konnect.telemetry",
            "Telemetry",
            Role::Telemetry,
            Probe::Tls,
            "tls://tp.example:443",
        ),
        warned,
    );
    telemetry.proxy = Some("http://proxy.example:3128".into());
    telemetry.proxy_reason = Some("https_proxy".into());
    telemetry.path.local_dns = Some(Box::new(LocalDns {
        addresses: Vec::new(),
        error: Some(Failure::new(
            FailureKind::Nxdomain,
            Phase::Dns,
            "no such name",
            peer,
        )),
        ms: Some(1.0),
    }));
    let mut direct = PathResult::new(Status::Fail);
    direct.error = Some(Failure::new(
        FailureKind::Timeout,
        Phase::Tcp,
        "no answer within 5s",
        peer,
    ));
    telemetry.direct = Some(Box::new(direct));

    let mut failed = PathResult::new(Status::Fail);
    failed.error = Some(Failure::new(
        FailureKind::Refused,
        Phase::Tcp,
        "connection refused by 192.0.2.9:8443 | \u{1b}[31mred\u{1b}[0m",
        Peer {
            ip: Some(ip(9)),
            port: Some(8443),
            ..peer
        },
    ));
    failed.addresses = vec![AddressResult {
        ip: ip(9),
        local: None,
        status: AddressStatus::Fail,
        error: failed.error.clone(),
        timings: times(0.75),
    }];
    failed.timings_ms.total = 1.0;
    let mut api = CheckResult::of(
        &spec(
            "tcp://192.0.2.9:8443",
            "TCP connect",
            Role::Target,
            Probe::Tcp,
            "tcp://192.0.2.9:8443",
        ),
        failed,
    );
    api.endpoint.required = false;

    let skipped = CheckResult::skipped(
        &spec(
            "konnect.portal",
            "Dev Portal",
            Role::Portal,
            Probe::Tls,
            "tls://{portal_id}.eu.portal.konghq.com:443",
        ),
        "`portal_id` is not set (add --set portal_id=VALUE to check it)",
    );
    let mut report = Report::new(
        "2026-11-26T10:00:00.000Z".into(),
        1234.5,
        vec!["konnect".into()],
        vec![cp, telemetry, api, skipped],
    );
    report.notes = vec!["a note for the whole run".into()];
    report
}
