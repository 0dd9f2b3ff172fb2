//! The last round as Prometheus metrics, written by `prometheus-client` in the Prometheus text
//! format (0.0.4), which every Prometheus scrapes and `promtool check metrics` accepts, or in
//! OpenMetrics 1.0 when the scraper asks for it.
//!
//! Per check, labelled `check`, `profile`, `role`, `target`, `host`, `port`, `required`:
//! blackbox_exporter's names and meanings where they exist (its prober/tcp.go, tls.go and
//! http.go in github.com/prometheus/blackbox_exporter), then preflight's own. Gauges for what
//! is current; counters only for what accumulates.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Scoreboard;
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

type Labels = Vec<(String, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// The metrics of a round: a family of gauges per name, registered on first use.
struct Families {
    registry: Registry,
    gauges: HashMap<&'static str, Gauges>,
}

/// `help` as the registry wants it: it adds the final full stop itself.
fn help_text(help: &str) -> &str {
    help.trim_end_matches('.')
}

impl Families {
    fn new() -> Families {
        Families {
            registry: Registry::default(),
            gauges: HashMap::new(),
        }
    }

    /// Sets `name` for `check` (with `extra` labels after the check's).
    fn set(
        &mut self,
        name: &'static str,
        help: &str,
        check: &[String],
        extra: &[(&str, &str)],
        value: f64,
    ) {
        let registry = &mut self.registry;
        let family = self.gauges.entry(name).or_insert_with(|| {
            let family = Gauges::default();
            registry.register(name, help_text(help), family.clone());
            family
        });
        let labels: Labels = LABELS
            .iter()
            .zip(check)
            .map(|(k, v)| (k.to_string(), v.clone()))
            .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        family.get_or_create(&labels).set(value);
    }

    /// A gauge without labels.
    fn single(&mut self, name: &str, help: &str, value: f64) {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(value);
        self.registry.register(name, help_text(help), gauge);
    }

    /// A counter family; `name` ends in `_total`, which the registry adds back.
    fn counter(&mut self, name: &str, help: &str, values: &[(Labels, u64)]) {
        let family = Family::<Labels, Counter>::default();
        for (labels, n) in values {
            family.get_or_create(labels).inc_by(*n);
        }
        let name = name.strip_suffix("_total").unwrap_or(name);
        self.registry.register(name, help_text(help), family);
    }

    fn encode(&self, exposition: Exposition) -> String {
        let mut out = String::new();
        let _ = match exposition {
            Exposition::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
            Exposition::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
        };
        out
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
pub(super) fn render(state: &Scoreboard, exposition: Exposition) -> String {
    let mut f = Families::new();
    if let Some(report) = &state.report {
        for check in &report.checks {
            check_metrics(&mut f, check);
        }
        round_metrics(&mut f, state, report);
        transitions(&mut f, state, report);
    }
    if let Some(expiry) = state.client_cert_expiry {
        f.single(
            "preflight_client_cert_expiry_timestamp_seconds",
            "When the client certificate the checks offer expires, in seconds since the epoch.",
            expiry,
        );
    }
    f.encode(exposition)
}

/// The round's own gauges, and the count of rounds.
fn round_metrics(f: &mut Families, state: &Scoreboard, report: &Report) {
    f.single(
        "preflight_round_duration_seconds",
        "How long the last round took, in seconds.",
        report.duration_ms / 1000.0,
    );
    let at = state
        .ended
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    f.single(
        "preflight_round_timestamp_seconds",
        "When the last round ended, in seconds since the epoch.",
        at,
    );
    f.counter(
        "preflight_rounds_total",
        "Rounds run since serve started.",
        &[(Vec::new(), state.rounds)],
    );
}

/// How often each check went down and up, as `--watch` counts flaps.
fn transitions(f: &mut Families, state: &Scoreboard, report: &Report) {
    let mut values = Vec::new();
    for check in &report.checks {
        let (down, up) = state
            .transitions
            .get(&check.endpoint.id)
            .copied()
            .unwrap_or_default();
        for (direction, n) in [("down", down), ("up", up)] {
            let mut labels: Labels = LABELS
                .iter()
                .zip(self::labels(check))
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            labels.push(("direction".into(), direction.into()));
            values.push((labels, n));
        }
    }
    f.counter(
        "preflight_check_transitions_total",
        "Times the check went down (to fail) or up (from fail) since serve started.",
        &values,
    );
}

/// The metrics of one `/probe`: the check's series only.
pub(super) fn render_probe(report: &Report, exposition: Exposition) -> String {
    let mut f = Families::new();
    for check in &report.checks {
        check_metrics(&mut f, check);
    }
    f.encode(exposition)
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
