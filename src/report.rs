//! The report: plain data that every renderer reads. Its JSON form is a contract
//! (`schema_version` 1).

use std::net::IpAddr;

use serde::Serialize;

use crate::check::CheckSpec;
use crate::failure::Failure;
use crate::probe::tls::TlsInfo;

/// The version of the report's shape: fields are added, never renamed.
pub const SCHEMA_VERSION: u32 = 1;

/// A check's status and identity: defined with the check, named here as the report's.
pub use crate::check::{Identity, Status};

/// The status of one address tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressStatus {
    /// The attempt at this address worked.
    Ok,
    /// The attempt at this address failed.
    Fail,
}

/// One address of an endpoint, and how connecting to it went.
#[derive(Debug, Clone, Serialize)]
pub struct AddressResult {
    /// The address.
    pub ip: IpAddr,
    /// Whether its attempt worked.
    pub status: AddressStatus,
    /// Why not.
    pub error: Option<Failure>,
    /// This host's end of the connection (source address and port), once it was made: to the
    /// address, or to the proxy on a proxied path.
    pub local: Option<std::net::SocketAddr>,
    /// How long each step took.
    #[serde(flatten)]
    pub timings: StepTimes,
}

/// How long each step of one connection attempt took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StepTimes {
    /// TCP connect time; for udp, the time to the reply.
    pub connect_ms: Option<f64>,
    /// TLS to an HTTPS proxy and the CONNECT or SOCKS exchange.
    pub proxy_ms: Option<f64>,
    /// The TLS handshake, in milliseconds.
    pub tls_ms: Option<f64>,
    /// After a TLS 1.3 handshake, the wait for the server's verdict on the client certificate.
    pub tls_verdict_ms: Option<f64>,
    /// Time from sending the HTTP request to the response head.
    pub http_ms: Option<f64>,
}

/// How long each phase took, in milliseconds (`None` for a phase that did not run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Resolving the name.
    pub dns: Option<f64>,
    /// TCP to the target, or to the proxy when one is used; for udp, the time to the reply.
    pub connect: Option<f64>,
    /// Opening the tunnel through the proxy.
    pub proxy: Option<f64>,
    /// The TLS handshake.
    pub tls: Option<f64>,
    /// After a TLS 1.3 handshake, the wait for the server's verdict on the client certificate
    /// (until a session ticket, an alert or data: the server asked for a certificate).
    pub tls_verdict: Option<f64>,
    /// HTTP time to first byte.
    pub http: Option<f64>,
    /// The whole check.
    pub total: f64,
}

/// What was tried after a failure to find where or why the path breaks: a trace of the hops, or
/// a retry with a smaller segment size or another server name.
#[derive(Debug, Clone, Serialize)]
pub struct SecondOpinion {
    /// What the opinion did.
    pub kind: OpinionKind,
    /// What the attempts say, in a sentence.
    pub conclusion: String,
    /// How long it took, all attempts at once.
    pub ms: f64,
    /// Each attempt, with its result.
    pub attempts: Vec<Tried>,
}

/// What a second opinion did: traced the hops, or tried the check again another way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpinionKind {
    /// TCP connects with rising TTLs, to find where packets stop.
    Trace,
    /// The check again, changed (smaller segments, no server name, no proxy).
    Retry,
}

/// One attempt of a second opinion.
#[derive(Debug, Clone, Serialize)]
pub struct Tried {
    /// What was tried: `TCP with TTL 1 to 30`, `MSS 1200`, `no server name`.
    pub tried: String,
    /// What came back: `TLS completed`, or the failure.
    pub result: String,
    /// How long the attempt took, in milliseconds.
    pub ms: f64,
}

/// What one path to an endpoint (the check's own, or the direct one of `--compare-direct`)
/// came to: its verdict, the addresses tried, the timings of the attempt that speaks for it,
/// and what TLS and HTTP showed.
#[derive(Debug, Clone, Serialize)]
pub struct PathResult {
    /// What the path came to.
    pub status: Status,
    /// Why it is not ok.
    pub error: Option<Failure>,
    /// Each address tried.
    pub addresses: Vec<AddressResult>,
    /// How long each phase took.
    pub timings_ms: Timings,
    /// Boxed, as the other facts that only some checks have: a result is kept for every check
    /// of the run, so its size is the report's memory.
    pub tls: Option<Box<TlsInfo>>,
    /// The HTTP status of http, https, ws and wss checks.
    pub http_status: Option<u16>,
    /// This host's own answer for a name the proxy resolves: information, not a condition.
    pub local_dns: Option<Box<LocalDns>>,
    /// Addresses of the name that were not attempted: at most 16 per family are.
    pub addresses_not_tried: usize,
    /// The aliases (CNAME records) the name led through, when it was one.
    pub cnames: Vec<String>,
    /// What was tried after the failure (`null` when nothing was, as on every healthy path).
    pub second_opinion: Option<Box<SecondOpinion>>,
    /// The hops that answered the trace, in TTL order (`null` when there was no trace).
    pub trace: Option<Vec<crate::probe::trace::Hop>>,
}

impl PathResult {
    /// A path with nothing tried yet.
    pub fn new(status: Status) -> PathResult {
        PathResult {
            status,
            error: None,
            addresses: Vec::new(),
            timings_ms: Timings::default(),
            tls: None,
            http_status: None,
            local_dns: None,
            addresses_not_tried: 0,
            cnames: Vec::new(),
            second_opinion: None,
            trace: None,
        }
    }

    /// A path that failed before any address was tried (its name did not resolve).
    pub fn failed(error: Failure, timings_ms: Timings) -> PathResult {
        PathResult {
            error: Some(error),
            timings_ms,
            ..PathResult::new(Status::Fail)
        }
    }

    /// Every failure the path reports: its own, and each address's.
    pub fn failures_mut(&mut self) -> impl Iterator<Item = &mut Failure> {
        self.error
            .iter_mut()
            .chain(self.addresses.iter_mut().filter_map(|a| a.error.as_mut()))
            .chain(self.local_dns.iter_mut().filter_map(|l| l.error.as_mut()))
    }
}

/// The outcome of one check: the endpoint, and the path it took.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// What the check is about.
    #[serde(flatten)]
    pub endpoint: Identity,
    /// What the check's path came to.
    #[serde(flatten)]
    pub path: PathResult,
    /// Why a skipped check was not run.
    pub reason: Option<String>,
    /// The proxy the check went through (`http://proxy:3128`, never with credentials).
    pub proxy: Option<String>,
    /// Why: `--proxy`, the environment variable (`HTTPS_PROXY` …), or the NO_PROXY entry that
    /// sent it direct (`NO_PROXY=.internal`). `None` when no proxy is configured.
    pub proxy_reason: Option<String>,
    /// The direct path of a proxied check, with `--compare-direct`.
    /// Boxed: most checks have none, and a result is kept for every check of the run.
    #[serde(serialize_with = "direct_path")]
    pub direct: Option<Box<PathResult>>,
}

/// The JSON of the direct path: the fields schema 1 gave it.
fn direct_path<S: serde::Serializer>(
    direct: &Option<Box<PathResult>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Direct<'a> {
        status: Status,
        error: &'a Option<Failure>,
        addresses: &'a [AddressResult],
        timings_ms: &'a Timings,
    }
    direct
        .as_ref()
        .map(|path| Direct {
            status: path.status,
            error: &path.error,
            addresses: &path.addresses,
            timings_ms: &path.timings_ms,
        })
        .serialize(serializer)
}

/// The local ends of every connection the checks made, on either path, each address once.
fn source_addresses(checks: &[CheckResult]) -> Vec<IpAddr> {
    let mut seen = Vec::new();
    let paths = checks
        .iter()
        .flat_map(|c| std::iter::once(&c.path).chain(c.direct.as_deref()));
    for local in paths.flat_map(|p| p.addresses.iter().filter_map(|a| a.local)) {
        if !seen.contains(&local.ip()) {
            seen.push(local.ip());
        }
    }
    seen
}

/// What this host's resolver says of a name that a proxy resolves for the check.
#[derive(Debug, Clone, Serialize)]
pub struct LocalDns {
    /// The addresses this host's own resolver gives.
    pub addresses: Vec<IpAddr>,
    /// Why it gave none.
    pub error: Option<Failure>,
    /// How long it took, in milliseconds.
    pub ms: Option<f64>,
}

impl CheckResult {
    /// The result of `spec` from the path it took (the proxy and direct paths filled in by
    /// the caller when there are any).
    pub fn of(spec: &CheckSpec, path: PathResult) -> CheckResult {
        CheckResult {
            endpoint: spec.endpoint.clone(),
            path,
            reason: None,
            proxy: spec.route.proxy.as_ref().map(|p| p.to_string()),
            proxy_reason: spec.route.reason.clone(),
            direct: None,
        }
    }

    /// A check whose verdict the node's files gave, before any connection.
    pub fn found(spec: &CheckSpec, finding: &crate::check::Finding) -> CheckResult {
        let path = PathResult {
            error: finding.failure.clone(),
            ..PathResult::new(finding.status)
        };
        CheckResult {
            proxy: None,
            proxy_reason: None,
            ..CheckResult::of(spec, path)
        }
    }

    /// A check that was not run, and why.
    pub fn skipped(spec: &CheckSpec, reason: &str) -> CheckResult {
        CheckResult {
            reason: Some(reason.to_string()),
            proxy: None,
            proxy_reason: None,
            ..CheckResult::of(spec, PathResult::new(Status::Skipped))
        }
    }

    /// How much the check weighs: "required" or "optional".
    pub fn weight(&self) -> &'static str {
        match self.endpoint.required {
            true => "required",
            false => "optional",
        }
    }

    /// The address the check succeeded through, if any.
    pub fn address_used(&self) -> Option<&AddressResult> {
        self.path
            .addresses
            .iter()
            .find(|a| a.status == AddressStatus::Ok)
    }

    /// Every failure the check reports, on either path.
    pub fn failures_mut(&mut self) -> impl Iterator<Item = &mut Failure> {
        self.path
            .failures_mut()
            .chain(self.direct.iter_mut().flat_map(|d| d.failures_mut()))
    }
}

/// How many checks came to each status.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// All checks.
    pub total: usize,
    /// Reached.
    pub ok: usize,
    /// Reached, with a warning.
    pub warn: usize,
    /// Not reached.
    pub fail: usize,
    /// Not run.
    pub skipped: usize,
}

/// One run's report: the JSON report, schema 1.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// `preflight`.
    pub tool: &'static str,
    /// preflight's version.
    pub version: &'static str,
    /// RFC 3339.
    pub started_at: String,
    /// How long the run took, in milliseconds.
    pub duration_ms: f64,
    /// The profiles checked.
    pub profiles: Vec<String>,
    /// The node the run was made on: `--node`, or the host name (empty when it has none).
    pub node: String,
    /// This host's addresses that the checks' connections left from (to a target, or to the
    /// proxy), each once, in the order first used: which of the node's interfaces the
    /// network team's rules must allow.
    pub source_addresses: Vec<IpAddr>,
    /// What the user should know about the run as a whole (from a kong.conf).
    pub notes: Vec<String>,
    /// Ctrl-C or SIGTERM ended the run before every check finished (exit code 1).
    pub interrupted: bool,
    /// How many checks came to each status.
    pub summary: Summary,
    /// Every check, in plan order.
    pub checks: Vec<CheckResult>,
    /// Each check's JSON, made as the check finished (`json_piece`), when the run
    /// made them: the JSON report is then written from them. Not part of the report.
    #[serde(skip)]
    pub pieces: Option<std::sync::Arc<[Vec<u8>]>>,
}

impl Report {
    /// The report without its checks (every other field as it is), for the JSON report to
    /// write its checks from their pieces.
    pub(crate) fn without_checks(&self) -> Report {
        Report {
            schema_version: self.schema_version,
            tool: self.tool,
            version: self.version,
            started_at: self.started_at.clone(),
            duration_ms: self.duration_ms,
            profiles: self.profiles.clone(),
            node: self.node.clone(),
            source_addresses: self.source_addresses.clone(),
            notes: self.notes.clone(),
            interrupted: self.interrupted,
            summary: self.summary.clone(),
            checks: Vec::new(),
            pieces: None,
        }
    }

    /// A report of `checks`, its summary counted.
    pub fn new(
        started_at: String,
        duration_ms: f64,
        profiles: Vec<String>,
        checks: Vec<CheckResult>,
    ) -> Report {
        let mut summary = Summary {
            total: checks.len(),
            ..Summary::default()
        };
        for check in &checks {
            match check.path.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Skipped => summary.skipped += 1,
            }
        }
        let source_addresses = source_addresses(&checks);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: "preflight",
            version: env!("CARGO_PKG_VERSION"),
            started_at,
            duration_ms,
            profiles,
            node: String::new(),
            source_addresses,
            notes: Vec::new(),
            interrupted: false,
            summary,
            checks,
            pieces: None,
        }
    }

    /// The checks that failed or warned, each with the failure that speaks for it: what the
    /// "what to do" sections list.
    pub fn to_do(&self) -> impl Iterator<Item = (&CheckResult, &Failure)> {
        self.checks
            .iter()
            .filter(|c| matches!(c.path.status, Status::Fail | Status::Warn))
            .filter_map(|c| c.path.error.as_ref().map(|e| (c, e)))
    }

    /// The failed checks that are required: any of them makes the exit code 1.
    pub fn required_failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(|c| c.endpoint.required && c.path.status == Status::Fail)
    }

    /// 0 when every required check passed (warnings allowed unless `strict`) and the run was
    /// not interrupted, 1 otherwise.
    pub fn exit_code(&self, strict: bool) -> u8 {
        if self.interrupted {
            return 1;
        }
        let warned = strict
            && self
                .checks
                .iter()
                .any(|c| c.endpoint.required && c.path.status == Status::Warn);
        u8::from(warned || self.required_failures().next().is_some())
    }
}

/// Milliseconds as every format (and a trace line) shows them: `25.5 ms`.
pub(crate) fn ms_text(ms: f64) -> String {
    format!("{ms:.1} ms")
}

/// Where a check object stands in the report: inside `checks`, two levels in, and serde_json's
/// pretty printer indents a level by two spaces.
const CHECK_INDENT: &[u8] = b"    ";

/// One check as the pretty JSON report holds it (`render::json` writes the report from
/// these): its pretty JSON, each line after the first indented to the check's depth.
pub(crate) fn json_piece(check: &CheckResult) -> Vec<u8> {
    // Written into this thread's buffer, then copied at its length: a piece is kept until the
    // report is written, and a vector grown while it was written would hold up to twice it.
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
    }
    BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        let mut piece = Indented(&mut buffer);
        let _ = serde_json::to_writer_pretty(&mut piece, check);
        buffer.as_slice().to_vec()
    })
}

/// A writer that indents each new line by `CHECK_INDENT`. serde_json's pretty printer ends a
/// line with a write of its own (`\n`, or `,\n`), and a string's line breaks are escaped in
/// JSON, so such a write is the only place a line ends.
struct Indented<'a>(&'a mut Vec<u8>);

impl std::io::Write for Indented<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        if bytes.len() <= 2 && bytes.last() == Some(&b'\n') {
            self.0.extend_from_slice(CHECK_INDENT);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Role;
    use crate::target::Probe;

    fn check(status: Status, required: bool) -> CheckResult {
        let mut spec = CheckSpec::new("c".into(), "C".into(), Role::Target, Probe::Tcp);
        spec.endpoint.required = required;
        CheckResult::of(&spec, PathResult::new(status))
    }

    fn report(checks: &[(Status, bool)]) -> Report {
        let checks = checks.iter().map(|&(s, r)| check(s, r)).collect();
        Report::new(String::new(), 0.0, Vec::new(), checks)
    }

    #[test]
    fn the_summary_counts_each_status() {
        let r = report(&[
            (Status::Ok, true),
            (Status::Ok, false),
            (Status::Warn, true),
            (Status::Fail, false),
            (Status::Skipped, true),
        ]);
        let expected = Summary {
            total: 5,
            ok: 2,
            warn: 1,
            fail: 1,
            skipped: 1,
        };
        assert_eq!(r.summary, expected);
    }

    #[test]
    fn only_required_failures_fail_the_run_and_warnings_only_when_strict() {
        let ok = report(&[(Status::Ok, true), (Status::Skipped, true)]);
        assert_eq!((ok.exit_code(false), ok.exit_code(true)), (0, 0));
        let optional = report(&[(Status::Ok, true), (Status::Fail, false)]);
        assert_eq!(
            (optional.exit_code(false), optional.exit_code(true)),
            (0, 0)
        );
        let warned = report(&[(Status::Warn, true)]);
        assert_eq!((warned.exit_code(false), warned.exit_code(true)), (0, 1));
        let optional_warn = report(&[(Status::Warn, false)]);
        assert_eq!(optional_warn.exit_code(true), 0);
        let failed = report(&[(Status::Ok, true), (Status::Fail, true)]);
        assert_eq!(failed.exit_code(false), 1);
        assert_eq!(failed.required_failures().count(), 1);
        let mut interrupted = report(&[(Status::Ok, true)]);
        interrupted.interrupted = true;
        assert_eq!(interrupted.exit_code(false), 1);
    }

    #[test]
    fn the_source_addresses_are_every_local_end_once_in_order() {
        let at = |ip: &str, local: Option<&str>| AddressResult {
            ip: ip.parse().unwrap(),
            status: AddressStatus::Ok,
            error: None,
            local: local.map(|l| l.parse().unwrap()),
            timings: StepTimes::default(),
        };
        let mut first = check(Status::Ok, true);
        first.path.addresses = vec![
            at("192.0.2.1", Some("10.0.0.5:40000")),
            at("192.0.2.2", None),
        ];
        let mut second = check(Status::Ok, true);
        second.path.addresses = vec![at("192.0.2.3", Some("10.0.0.5:40001"))];
        let mut direct = PathResult::new(Status::Fail);
        direct.addresses = vec![at("2001:db8::1", Some("[2001:db8::5]:40002"))];
        second.direct = Some(Box::new(direct));
        let r = Report::new(String::new(), 0.0, Vec::new(), vec![first, second]);
        let expected: Vec<IpAddr> =
            vec!["10.0.0.5".parse().unwrap(), "2001:db8::5".parse().unwrap()];
        assert_eq!(r.source_addresses, expected);
    }

    #[test]
    fn the_direct_path_keeps_the_fields_it_always_had() {
        let mut result = check(Status::Ok, true);
        result.direct = Some(Box::new(PathResult::new(Status::Fail)));
        let json = serde_json::to_value(&result).unwrap();
        let mut fields: Vec<_> = json["direct"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        fields.sort();
        assert_eq!(fields, ["addresses", "error", "status", "timings_ms"]);
        assert_eq!(json["direct"]["status"], "fail");
        // The main path's fields sit at the top level, beside the endpoint's.
        for field in [
            "id",
            "target",
            "status",
            "addresses",
            "tls",
            "local_dns",
            "direct",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        let none = serde_json::to_value(check(Status::Ok, true)).unwrap();
        assert!(none["direct"].is_null());
    }
}
