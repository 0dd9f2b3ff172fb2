//! The last round as Prometheus metrics, written by the `prometheus` crate in the text
//! exposition format (0.0.4), which every Prometheus scrapes and `promtool check metrics`
//! accepts. (`prometheus-client` writes only OpenMetrics, whose counter names promtool 2.42
//! rejects: see the README.)
//!
//! Per check, labelled `check`, `profile`, `role`, `target`, `host`, `port`, `required`:
//! blackbox_exporter's names and meanings where they exist (its prober/tcp.go, tls.go and
//! http.go in github.com/prometheus/blackbox_exporter), then preflight's own. Gauges for what
//! is current; counters only for what accumulates.

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use super::State;
use crate::report::{CheckResult, Report, Status};

pub(super) const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// The labels of every per-check series.
const LABELS: [&str; 7] = [
    "check", "profile", "role", "target", "host", "port", "required",
];

/// The metrics of a round, with a set of gauges per name.
struct Families {
    registry: Registry,
    gauges: std::collections::HashMap<&'static str, GaugeVec>,
}

impl Families {
    fn new() -> Families {
        Families {
            registry: Registry::new(),
            gauges: std::collections::HashMap::new(),
        }
    }

    /// A gauge family (registered on first use) with the check's labels and `extra`.
    fn gauge(&mut self, name: &'static str, help: &str, extra: &[&str]) -> &GaugeVec {
        let registry = &self.registry;
        self.gauges.entry(name).or_insert_with(|| {
            let labels: Vec<&str> = LABELS.iter().chain(extra).copied().collect();
            let vec = GaugeVec::new(Opts::new(name, help), &labels).expect("valid metric");
            registry
                .register(Box::new(vec.clone()))
                .expect("registered once");
            vec
        })
    }

    /// Sets `name` for `check` (with `extra` label values after the check's).
    fn set(
        &mut self,
        name: &'static str,
        help: &str,
        check: &[String],
        extra: &[(&str, &str)],
        value: f64,
    ) {
        let names: Vec<&str> = extra.iter().map(|(n, _)| *n).collect();
        let mut values: Vec<&str> = check.iter().map(String::as_str).collect();
        values.extend(extra.iter().map(|(_, v)| *v));
        self.gauge(name, help, &names)
            .with_label_values(&values)
            .set(value);
    }

    fn text(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The label values of a check.
fn labels(check: &CheckResult) -> Vec<String> {
    let e = &check.endpoint;
    vec![
        e.id.clone(),
        e.profile.clone().unwrap_or_default(),
        e.role.as_str().to_string(),
        e.target.clone(),
        e.host.clone(),
        e.port.map(|p| p.to_string()).unwrap_or_default(),
        e.required.to_string(),
    ]
}

/// Seconds since the epoch of an RFC 3339 time.
fn epoch(rfc3339: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(t.unix_timestamp() as f64)
}

/// blackbox_exporter's words for a TLS version (`TLS 1.3`).
fn tls_version(version: &str) -> String {
    version.replace("TLSv", "TLS ")
}

/// The metrics of one check.
fn check_metrics(f: &mut Families, check: &CheckResult) {
    let l = labels(check);
    let path = &check.path;
    for status in [Status::Ok, Status::Warn, Status::Fail, Status::Skipped] {
        let name = status.as_str();
        let value = f64::from(u8::from(path.status == status));
        f.set("preflight_check_status", "1 for the check's status in the last round (ok, warn, fail, skipped), 0 for the others.", &l, &[("status", name)], value);
    }
    if path.status == Status::Skipped {
        return;
    }
    let success = f64::from(u8::from(matches!(path.status, Status::Ok | Status::Warn)));
    f.set(
        "probe_success",
        "Whether the check passed in the last round (as blackbox_exporter's).",
        &l,
        &[],
        success,
    );
    timing_metrics(f, &l, check);
    tls_metrics(f, &l, check);
    failure_metrics(f, &l, check);
}

/// blackbox_exporter's timings, HTTP status and IP version of one check.
fn timing_metrics(f: &mut Families, l: &[String], check: &CheckResult) {
    let path = &check.path;
    let t = &path.timings_ms;
    f.set(
        "probe_duration_seconds",
        "How long the check took, in seconds.",
        l,
        &[],
        t.total / 1000.0,
    );
    if let Some(dns) = t.dns {
        f.set(
            "probe_dns_lookup_time_seconds",
            "How long the DNS lookup took, in seconds.",
            l,
            &[],
            dns / 1000.0,
        );
    }
    if check.endpoint.probe.uses_http() {
        for (phase, ms) in [
            ("resolve", t.dns),
            ("connect", t.connect),
            ("tls", t.tls),
            ("processing", t.http),
        ] {
            f.set(
                "probe_http_duration_seconds",
                "Time of each phase of the HTTP request, in seconds.",
                l,
                &[("phase", phase)],
                ms.unwrap_or(0.0) / 1000.0,
            );
        }
        f.set(
            "probe_http_status_code",
            "The HTTP status of the answer (0 without one).",
            l,
            &[],
            f64::from(path.http_status.unwrap_or(0)),
        );
    }
    if let Some(used) = check.address_used().or_else(|| path.addresses.first()) {
        let family = if used.ip.is_ipv4() { 4.0 } else { 6.0 };
        f.set(
            "probe_ip_protocol",
            "The IP version of the address the check used (4 or 6).",
            l,
            &[],
            family,
        );
    }
}

/// The server certificate's expiry and the TLS version of one check.
fn tls_metrics(f: &mut Families, l: &[String], check: &CheckResult) {
    if let Some(tls) = &check.path.tls {
        if let Some(expiry) = epoch(&tls.not_after) {
            f.set("probe_ssl_earliest_cert_expiry", "When the server's certificate expires, in seconds since the epoch (also when it did not verify).", l, &[], expiry);
        }
        if !tls.version.is_empty() {
            f.set(
                "probe_tls_version_info",
                "1, labelled with the TLS version negotiated.",
                l,
                &[("version", &tls_version(&tls.version))],
                1.0,
            );
        }
    }
}

/// The failure of one check: its kind and phase, and the interception it found.
fn failure_metrics(f: &mut Families, l: &[String], check: &CheckResult) {
    let path = &check.path;
    if let Some(error) = &path.error {
        let extra = [
            ("kind", error.kind.as_str()),
            ("phase", error.phase.as_str()),
        ];
        f.set("preflight_check_failure_info", "1, labelled with the failure kind and phase of a check that failed or warned in the last round.", l, &extra, 1.0);
        if error.kind == crate::failure::FailureKind::TlsIntercepted {
            let issuer = path.tls.as_ref().map(|t| t.issuer.as_str()).unwrap_or("");
            f.set(
                "preflight_tls_intercepted",
                "1 when something in the path re-signs TLS, labelled with the issuer it signs as.",
                l,
                &[("issuer", issuer)],
                1.0,
            );
        }
    }
}

/// The metrics of the last round.
pub(super) fn render(state: &State) -> String {
    let mut f = Families::new();
    if let Some(report) = &state.report {
        for check in &report.checks {
            check_metrics(&mut f, check);
        }
        round_metrics(&f, state, report);
        transitions(&f, state, report);
    }
    if let Some(expiry) = state.client_cert_expiry {
        let gauge = prometheus::Gauge::new(
            "preflight_client_cert_expiry_timestamp_seconds",
            "When the client certificate the checks offer expires, in seconds since the epoch.",
        )
        .expect("valid metric");
        gauge.set(expiry);
        let _ = f.registry.register(Box::new(gauge));
    }
    f.text()
}

/// The round's own gauges.
fn round_metrics(f: &Families, state: &State, report: &Report) {
    let duration = prometheus::Gauge::new(
        "preflight_round_duration_seconds",
        "How long the last round took, in seconds.",
    )
    .expect("valid metric");
    duration.set(report.duration_ms / 1000.0);
    let ended = prometheus::Gauge::new(
        "preflight_round_timestamp_seconds",
        "When the last round ended, in seconds since the epoch.",
    )
    .expect("valid metric");
    let at = state
        .ended
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    ended.set(at);
    let rounds =
        prometheus::IntCounter::new("preflight_rounds_total", "Rounds run since serve started.")
            .expect("valid metric");
    rounds.inc_by(state.rounds);
    for metric in [
        Box::new(duration) as Box<dyn prometheus::core::Collector>,
        Box::new(ended),
        Box::new(rounds),
    ] {
        let _ = f.registry.register(metric);
    }
}

/// How often each check went down and up, as `--watch` counts flaps.
fn transitions(f: &Families, state: &State, report: &Report) {
    let labels: Vec<&str> = LABELS.iter().chain(&["direction"]).copied().collect();
    let counter = IntCounterVec::new(
        Opts::new(
            "preflight_check_transitions_total",
            "Times the check went down (to fail) or up (from fail) since serve started.",
        ),
        &labels,
    )
    .expect("valid metric");
    for check in &report.checks {
        let (down, up) = state
            .transitions
            .get(&check.endpoint.id)
            .copied()
            .unwrap_or_default();
        let l = self::labels(check);
        for (direction, n) in [("down", down), ("up", up)] {
            let mut values: Vec<&str> = l.iter().map(String::as_str).collect();
            values.push(direction);
            counter.with_label_values(&values).inc_by(n);
        }
    }
    let _ = f.registry.register(Box::new(counter));
}

/// The metrics of one `/probe`: the check's series only.
pub(super) fn render_probe(report: &Report) -> String {
    let mut f = Families::new();
    for check in &report.checks {
        check_metrics(&mut f, check);
    }
    f.text()
}
