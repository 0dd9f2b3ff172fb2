//! A check: the endpoint it is about (`Identity`, which every result repeats) and how it
//! is run (`CheckSpec`). Profiles, targets and a kong.conf make specs; `Plan::settle` then fixes
//! every value that holds for the whole run (the route, the TLS request with the flags that
//! override it, the UDP payload, the HTTP expectation), so the runner only carries them out.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::failure::Failure;
use crate::probe::http::Expect;
use crate::probe::tls::TlsRequest;
use crate::profile::Role;
use crate::route::Route;
use crate::target::{Probe, format_target};

/// What a check is about: the fields a result repeats, in the JSON report's names.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    /// `PROFILE.KEY` for profile endpoints, the target text for command-line targets.
    pub id: String,
    /// A person's name for it (`Control plane`).
    pub name: String,
    /// What the endpoint is for, which groups the reports.
    pub role: Role,
    /// Whether a failure fails the run (exit 1).
    pub required: bool,
    /// The profile it comes from; `None` for a command-line target.
    pub profile: Option<String>,
    /// The target as the report shows it: `tls://host:443`, `https://host/path`. Set when the
    /// plan is settled.
    pub target: String,
    /// The host name (or IP address, unbracketed); for a skipped check, the template.
    pub host: String,
    /// The port; `None` for a DNS check.
    pub port: Option<u16>,
    /// What the check does.
    pub probe: Probe,
    /// The profile's words about the endpoint.
    pub note: Option<String>,
}

/// The verdict of a check reached from the node's files, before any connection.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What the finding came to.
    pub status: Status,
    /// Why, when it is not ok.
    pub failure: Option<Failure>,
}

/// One check to run, or to report as skipped.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// What the check is about: the fields its result repeats.
    pub endpoint: Identity,
    /// Set when the host is an IP address: nothing to resolve.
    pub ip: Option<IpAddr>,
    /// Why this check is not run.
    pub skip: Option<String>,
    /// The verdict, when it was reached before the run without the network: a finding in
    /// the node's files.
    pub finding: Option<Finding>,
    /// The request path of HTTP and WebSocket probes.
    pub path: Option<String>,
    /// How to shake hands, for the probes that use TLS. Profiles and kong.conf fill in what
    /// the endpoint asks for; settling applies `--server-name`, `--alpn` and
    /// `--allow-private-ca`.
    pub tls: TlsRequest,
    /// The datagram a udp probe sends: the endpoint's, or `--udp-payload` once settled; the
    /// default when `None`.
    pub payload: Option<String>,
    /// The HTTP statuses that pass (`--expect-status`), once settled.
    pub expect: Expect,
    /// A route fixed by the check's source (kong.conf's `proxy_server`, or direct): the
    /// node's own, which no flag or variable changes.
    pub fixed_route: Option<Route>,
    /// A Kong cluster check's outlet: the path prefix of `cluster_control_plane`, and whether
    /// it is the RPC outlet (`/v2/outlet`) rather than `/v1/outlet`.
    pub outlet: Outlet,
    /// The address families the node's own resolver asks for (kong.conf's `dns_order`, or
    /// `resolver_family`), when they are not every family.
    pub asked_families: Option<AskedFamilies>,
    /// A proxy the node would not use, tried when the fixed route fails (kong.conf's
    /// `proxy_server` with `cluster_use_proxy` off, `--proxy`, the environment's proxy).
    pub what_if: Option<crate::route::WhatIf>,
    /// The route the check takes, once settled.
    pub route: Route,
    /// Also try the endpoint without its proxy (`--compare-direct`), once settled.
    pub compare_direct: bool,
}

/// Where a Kong data plane's cluster connection upgrades: `PREFIX/v1/outlet?node_id=…`, or
/// `PREFIX/v2/outlet` with the WebSocket protocol `kong.meta.v1` for RPC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outlet {
    /// The path of `cluster_control_plane` (`/cp/PREFIX` for Konnect's PrivateLink), put before
    /// the outlet as Kong does (`conf.cluster_control_plane .. endpoint`,
    /// kong/clustering/utils.lua); empty for none.
    pub prefix: String,
    /// The RPC outlet (kong/clustering/rpc/manager.lua: `/v2/outlet`, `kong.meta.v1`).
    pub rpc: bool,
}

/// The address families a node's own resolver asks for, and the setting that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedFamilies {
    /// A records are asked for.
    pub v4: bool,
    /// AAAA records are asked for.
    pub v6: bool,
    /// The setting, as the words name it: `dns_order = LAST,SRV,A,CNAME (Kong's default)`.
    pub setting: String,
    /// The kong.conf change that asks for the other family.
    pub fix: String,
}

impl AskedFamilies {
    /// Whether the resolver asks for `ip`'s family.
    pub fn allows(&self, ip: &IpAddr) -> bool {
        match ip {
            IpAddr::V4(_) => self.v4,
            IpAddr::V6(_) => self.v6,
        }
    }
}

impl CheckSpec {
    /// A required check with nothing set beyond what it is; the caller sets the rest.
    pub fn new(id: String, name: String, role: Role, probe: Probe) -> CheckSpec {
        CheckSpec {
            endpoint: Identity {
                id,
                name,
                role,
                required: true,
                profile: None,
                target: String::new(),
                host: String::new(),
                port: None,
                probe,
                note: None,
            },
            ip: None,
            skip: None,
            finding: None,
            path: None,
            tls: TlsRequest::default(),
            payload: None,
            expect: Expect::default(),
            fixed_route: None,
            what_if: None,
            outlet: Outlet::default(),
            asked_families: None,
            route: Route::default(),
            compare_direct: false,
        }
    }

    /// The check's id.
    pub fn id(&self) -> &str {
        &self.endpoint.id
    }

    /// The host (a name, or an address as text).
    pub fn host(&self) -> &str {
        &self.endpoint.host
    }

    /// The port; `None` for a DNS check.
    pub fn port(&self) -> Option<u16> {
        self.endpoint.port
    }

    /// What the check does.
    pub fn probe(&self) -> Probe {
        self.endpoint.probe
    }

    /// The target as the report shows it, from the host, port and path as they are now.
    pub fn target(&self) -> String {
        let host = match self.ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.endpoint.host.clone(),
        };
        format_target(
            self.endpoint.probe,
            &host,
            self.endpoint.port,
            self.path.as_deref(),
        )
    }
}

/// What a check came to: the JSON report's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Reached, and nothing to say.
    Ok,
    /// Reached, with something to know (an expiring certificate, a UDP port that did not answer).
    Warn,
    /// Not reached, or refused.
    Fail,
    /// Not run (a profile variable not set).
    Skipped,
}

impl Status {
    /// The word the JSON report uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
        }
    }
}
