//! The report: plain data that every renderer reads. Its JSON form is a contract
//! (`schema_version` 1).

use std::net::IpAddr;

use serde::Serialize;

use crate::failure::Failure;
use crate::probe::tls::TlsInfo;
use crate::profile::Role;
use crate::target::Probe;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressStatus {
    Ok,
    Fail,
}

/// One address of an endpoint, and how connecting to it went.
#[derive(Debug, Clone, Serialize)]
pub struct AddressResult {
    pub ip: IpAddr,
    pub status: AddressStatus,
    pub error: Option<Failure>,
    /// TCP connect time; for udp, the time to the reply.
    pub connect_ms: Option<f64>,
    /// TLS to an HTTPS proxy and the CONNECT or SOCKS exchange.
    pub proxy_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    /// Time from sending the HTTP request to the response head.
    pub http_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub dns: Option<f64>,
    /// TCP to the target, or to the proxy when one is used; for udp, the time to the reply.
    pub connect: Option<f64>,
    /// Opening the tunnel through the proxy.
    pub proxy: Option<f64>,
    pub tls: Option<f64>,
    /// HTTP time to first byte.
    pub http: Option<f64>,
    pub total: f64,
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub required: bool,
    pub profile: Option<String>,
    pub target: String,
    pub host: String,
    pub port: Option<u16>,
    pub probe: Probe,
    pub status: Status,
    pub error: Option<Failure>,
    /// Why a skipped check was not run.
    pub reason: Option<String>,
    pub addresses: Vec<AddressResult>,
    pub timings_ms: Timings,
    pub tls: Option<TlsInfo>,
    /// The HTTP status of http, https, ws and wss checks.
    pub http_status: Option<u16>,
    pub note: Option<String>,
    /// The proxy the check went through (`http://proxy:3128`, never with credentials).
    pub proxy: Option<String>,
    /// Why: `--proxy`, the environment variable (`HTTPS_PROXY` …), or the NO_PROXY entry that
    /// sent it direct (`NO_PROXY=.internal`). `None` when no proxy is configured.
    pub proxy_reason: Option<String>,
    /// This host's own answer for a name the proxy resolves: information, not a condition.
    pub local_dns: Option<LocalDns>,
    /// The direct path of a proxied check, with `--compare-direct`.
    pub direct: Option<DirectPath>,
    /// Addresses of the name that were not attempted: at most 16 per family are.
    pub addresses_not_tried: usize,
}

/// What this host's resolver says of a name that a proxy resolves for the check.
#[derive(Debug, Clone, Serialize)]
pub struct LocalDns {
    pub addresses: Vec<IpAddr>,
    pub error: Option<Failure>,
    pub ms: Option<f64>,
}

/// The same endpoint tried without the proxy.
#[derive(Debug, Clone, Serialize)]
pub struct DirectPath {
    pub status: Status,
    pub error: Option<Failure>,
    pub addresses: Vec<AddressResult>,
    pub timings_ms: Timings,
}

impl CheckResult {
    /// The address the check succeeded through, if any.
    pub fn address_used(&self) -> Option<&AddressResult> {
        self.addresses
            .iter()
            .find(|a| a.status == AddressStatus::Ok)
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: &'static str,
    pub version: &'static str,
    /// RFC 3339.
    pub started_at: String,
    pub duration_ms: f64,
    pub profiles: Vec<String>,
    /// What the user should know about the run as a whole (from a kong.conf).
    pub notes: Vec<String>,
    /// Ctrl-C or SIGTERM ended the run before every check finished (exit code 1).
    pub interrupted: bool,
    pub summary: Summary,
    pub checks: Vec<CheckResult>,
}

impl Report {
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
            match check.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Skipped => summary.skipped += 1,
            }
        }
        Report {
            schema_version: SCHEMA_VERSION,
            tool: "preflight",
            version: env!("CARGO_PKG_VERSION"),
            started_at,
            duration_ms,
            profiles,
            notes: Vec::new(),
            interrupted: false,
            summary,
            checks,
        }
    }

    /// The failed checks that are required: any of them makes the exit code 1.
    pub fn required_failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(|c| c.required && c.status == Status::Fail)
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
                .any(|c| c.required && c.status == Status::Warn);
        u8::from(warned || self.required_failures().next().is_some())
    }
}
