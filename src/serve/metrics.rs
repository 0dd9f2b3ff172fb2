//! The last round as Prometheus metrics, written by `prometheus-client` in the Prometheus text
//! format (0.0.4), which every Prometheus scrapes and `promtool check metrics` accepts, or in
//! OpenMetrics 1.0 when the scraper asks for it.
//!
//! Per check, labelled `check`, `profile`, `role`, `target`, `host`, `port`, `required`:
//! blackbox_exporter's names and meanings where they exist (its prober/tcp.go, tls.go and
//! http.go in github.com/prometheus/blackbox_exporter), then preflight's own. Gauges for what
//! is current; counters only for what accumulates.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::report::{CheckResult, Report, Status};

/// The two expositions: the text format by default, OpenMetrics on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exposition {
    Text,
    OpenMetrics,
}

impl Exposition {
    /// What an `Accept` header asks for: OpenMetrics when it weighs it above the text format
    /// (Prometheus's own scrapes do), the text format otherwise.
    pub(super) fn of(accept: Option<&str>) -> Exposition {
        let weight = |wanted: &[&str]| {
            accept
                .unwrap_or("")
                .split(',')
                .filter_map(|part| {
                    let mut params = part.split(';').map(str::trim);
                    let media = params.next()?.to_ascii_lowercase();
                    if !wanted.contains(&media.as_str()) {
                        return None;
                    }
                    let q = params
                        .filter_map(|p| p.strip_prefix("q="))
                        .find_map(|q| q.parse::<f32>().ok())
                        .unwrap_or(1.0);
                    Some(q)
                })
                .fold(0.0_f32, f32::max)
        };
        let open = weight(&["application/openmetrics-text"]);
        let text = weight(&["text/plain", "*/*", "text/*"]);
        match open > 0.0 && open >= text {
            true => Exposition::OpenMetrics,
            false => Exposition::Text,
        }
    }

    pub(super) fn content_type(self) -> &'static str {
        match self {
            Exposition::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The labels of every per-check series.
const LABELS: [&str; 7] = [
    "check", "profile", "role", "target", "host", "port", "required",
];

/// The per-check families, in the order they are written, with their help.
const FAMILIES: [(&str, &str); 11] = [
    (
        "preflight_check_status",
        "1 for the check's status in the last round (ok, warn, fail, skipped), 0 for the others.",
    ),
    (
        "probe_success",
        "Whether the check passed in the last round (as blackbox_exporter's).",
    ),
    (
        "probe_duration_seconds",
        "How long the check took, in seconds.",
    ),
    (
        "probe_dns_lookup_time_seconds",
        "How long the DNS lookup took, in seconds.",
    ),
    (
        "probe_http_duration_seconds",
        "Time of each phase of the HTTP request, in seconds.",
    ),
    (
        "probe_http_status_code",
        "The HTTP status of the answer (0 without one).",
    ),
    (
        "probe_ip_protocol",
        "The IP version of the address the check used (4 or 6).",
    ),
    (
        "probe_ssl_earliest_cert_expiry",
        "When the server's certificate expires, in seconds since the epoch (also when it did not verify).",
    ),
    (
        "probe_tls_version_info",
        "1, labelled with the TLS version negotiated.",
    ),
    (
        "preflight_check_failure_info",
        "1, labelled with the failure kind and phase of a check that failed or warned in the last round.",
    ),
    (
        "preflight_tls_intercepted",
        "1 when something in the path re-signs TLS, labelled with the issuer it signs as.",
    ),
];

/// What `/metrics` shows of a round: the report, shared with the scoreboard, and the counts
/// kept across rounds. Written straight from the report by a collector, so that no label is
/// copied or hashed (prometheus-client's families would copy each label set into a map).
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshot {
    pub(super) report: Option<Arc<Report>>,
    /// Each check's (down, up) counts, in the report's order.
    pub(super) transitions: Vec<(u64, u64)>,
    pub(super) rounds: u64,
    pub(super) ended: Option<std::time::SystemTime>,
    pub(super) client_cert_expiry: Option<f64>,
}

/// The per-check series of a report.
#[derive(Debug)]
struct Checks {
    report: Arc<Report>,
    /// Each check's (down, up) counts, in report order; `None` for `/probe`, which has none.
    transitions: Option<Vec<(u64, u64)>>,
}

/// The label values of a check, borrowed.
fn labels(check: &CheckResult, port: &str) -> [(&'static str, String); 7] {
    let e = &check.endpoint;
    [
        (LABELS[0], e.id.clone()),
        (LABELS[1], e.profile.clone().unwrap_or_default()),
        (LABELS[2], e.role.as_str().to_string()),
        (LABELS[3], e.target.clone()),
        (LABELS[4], e.host.clone()),
        (LABELS[5], port.to_string()),
        (LABELS[6], e.required.to_string()),
    ]
}

/// The series of family `family` for one check: extra labels and a value, each.
fn series(family: usize, check: &CheckResult, out: &mut Vec<(Vec<(&'static str, String)>, f64)>) {
    let path = &check.path;
    let t = &path.timings_ms;
    let skipped = path.status == Status::Skipped;
    let mut one = |extra: Vec<(&'static str, String)>, value: f64| out.push((extra, value));
    match family {
        0 => {
            for status in [Status::Ok, Status::Warn, Status::Fail, Status::Skipped] {
                let value = f64::from(u8::from(path.status == status));
                one(vec![("status", status.as_str().to_string())], value);
            }
        }
        _ if skipped => {}
        1 => one(
            Vec::new(),
            f64::from(u8::from(matches!(path.status, Status::Ok | Status::Warn))),
        ),
        2 => one(Vec::new(), t.total / 1000.0),
        3 => {
            if let Some(dns) = t.dns {
                one(Vec::new(), dns / 1000.0);
            }
        }
        4 if check.endpoint.probe.uses_http() => {
            for (phase, ms) in [
                ("resolve", t.dns),
                ("connect", t.connect),
                ("tls", t.tls),
                ("processing", t.http),
            ] {
                one(
                    vec![("phase", phase.to_string())],
                    ms.unwrap_or(0.0) / 1000.0,
                );
            }
        }
        5 if check.endpoint.probe.uses_http() => {
            one(Vec::new(), f64::from(path.http_status.unwrap_or(0)));
        }
        6 => {
            if let Some(used) = check.address_used().or_else(|| path.addresses.first()) {
                one(Vec::new(), if used.ip.is_ipv4() { 4.0 } else { 6.0 });
            }
        }
        7 => {
            if let Some(expiry) = path.tls.as_ref().and_then(|tls| epoch(&tls.not_after)) {
                one(Vec::new(), expiry);
            }
        }
        8 => {
            if let Some(tls) = path.tls.as_ref().filter(|tls| !tls.version.is_empty()) {
                one(vec![("version", tls_version(&tls.version))], 1.0);
            }
        }
        9 => {
            if let Some(error) = &path.error {
                let extra = vec![
                    ("kind", error.kind.as_str().to_string()),
                    ("phase", error.phase.as_str().to_string()),
                ];
                one(extra, 1.0);
            }
        }
        10 => {
            if let Some(error) = &path.error
                && error.kind == crate::failure::FailureKind::TlsIntercepted
            {
                let issuer = path
                    .tls
                    .as_ref()
                    .map(|t| t.issuer.clone())
                    .unwrap_or_default();
                one(vec![("issuer", issuer)], 1.0);
            }
        }
        _ => {}
    }
}

impl Collector for Checks {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let checks = &self.report.checks;
        let mut values = Vec::new();
        // Each check's labels once, for all its series.
        let labelled: Vec<_> = checks
            .iter()
            .map(|check| {
                let port = check
                    .endpoint
                    .port
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                labels(check, &port)
            })
            .collect();
        for (family, (name, help)) in FAMILIES.iter().enumerate() {
            let mut described = None;
            for (check, labels) in checks.iter().zip(&labelled) {
                values.clear();
                series(family, check, &mut values);
                for (extra, value) in &values {
                    if described.is_none() {
                        described =
                            Some(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?);
                    }
                    if let Some(metric) = described.as_mut() {
                        let set = (labels.as_slice(), extra.as_slice());
                        ConstGauge::new(*value).encode(metric.encode_family(&set)?)?;
                    }
                }
            }
        }
        if let Some(transitions) = &self.transitions {
            let mut metric = encoder.encode_descriptor(
                "preflight_check_transitions",
                "Times the check went down (to fail) or up (from fail) since serve started.",
                None,
                MetricType::Counter,
            )?;
            for (labels, (down, up)) in labelled.iter().zip(transitions) {
                for (direction, n) in [("down", down), ("up", up)] {
                    let set = (labels.as_slice(), [("direction", direction)]);
                    ConstCounter::new(*n).encode(metric.encode_family(&set)?)?;
                }
            }
        }
        Ok(())
    }
}

/// `help` as the registry wants it: it adds the final full stop itself.
fn help_text(help: &str) -> &str {
    help.trim_end_matches('.')
}

/// A gauge without labels.
fn single(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let gauge = Gauge::<f64, AtomicU64>::default();
    gauge.set(value);
    registry.register(name, help_text(help), gauge);
}

fn encode(registry: &Registry, exposition: Exposition) -> String {
    let mut out = String::new();
    let _ = match exposition {
        Exposition::Text => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
        }
        Exposition::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry),
    };
    out
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

/// The metrics of the last round.
pub(super) fn render(state: &Snapshot, exposition: Exposition) -> String {
    let mut registry = Registry::default();
    if let Some(report) = &state.report {
        registry.register_collector(Box::new(Checks {
            report: report.clone(),
            transitions: Some(state.transitions.clone()),
        }));
        single(
            &mut registry,
            "preflight_round_duration_seconds",
            "How long the last round took, in seconds.",
            report.duration_ms / 1000.0,
        );
        let at = state
            .ended
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        single(
            &mut registry,
            "preflight_round_timestamp_seconds",
            "When the last round ended, in seconds since the epoch.",
            at,
        );
        let rounds = Counter::<u64>::default();
        rounds.inc_by(state.rounds);
        registry.register(
            "preflight_rounds",
            help_text("Rounds run since serve started."),
            rounds,
        );
    }
    if let Some(expiry) = state.client_cert_expiry {
        single(
            &mut registry,
            "preflight_client_cert_expiry_timestamp_seconds",
            "When the client certificate the checks offer expires, in seconds since the epoch.",
            expiry,
        );
    }
    encode(&registry, exposition)
}

/// The metrics of one `/probe`: the check's series only.
pub(super) fn render_probe(report: Report, exposition: Exposition) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Checks {
        report: Arc::new(report),
        transitions: None,
    }));
    encode(&registry, exposition)
}

#[cfg(test)]
mod tests {
    use super::Exposition::{self, OpenMetrics, Text};

    #[test]
    fn openmetrics_only_when_the_scraper_weighs_it_highest() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Exposition::of(Some(prometheus)), OpenMetrics);
        assert_eq!(Exposition::of(None), Text);
        assert_eq!(Exposition::of(Some("*/*")), Text);
        assert_eq!(Exposition::of(Some("text/plain;version=0.0.4")), Text);
        assert_eq!(
            Exposition::of(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            Text
        );
        assert_eq!(
            Exposition::of(Some(
                "text/plain;q=0.9, application/openmetrics-text; version=1.0.0"
            )),
            OpenMetrics
        );
        assert_eq!(
            Exposition::of(Some("application/openmetrics-text;q=0")),
            Text
        );
    }
}
