//! The plan: profiles (with their variables bound) and command-line targets turned into the
//! list of checks to run. Everything the user can get wrong is caught here, before any probe.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::error::InputError;
use crate::probe::dns::Family;
use crate::profile::{Assignments, Profile, Role, bind};
use crate::route::Route;
use crate::target::{Host, Probe, Target, format_target};

/// One check to run, or to report as skipped.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// `PROFILE.KEY` for profile endpoints, the target text for command-line targets.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub required: bool,
    pub profile: Option<String>,
    pub probe: Probe,
    /// The host name (or IP address, unbracketed); for a skipped check, the template.
    pub host: String,
    /// Set when the host is an IP address: nothing to resolve.
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub note: Option<String>,
    /// Why this check is not run.
    pub skip: Option<String>,
    /// The request path of HTTP and WebSocket probes.
    pub path: Option<String>,
    /// The TLS server name, when it is not the host.
    pub server_name: Option<String>,
    pub alpn: Vec<String>,
    /// The endpoint requires a client certificate.
    pub client_cert: bool,
    /// The endpoint presents a publicly trusted certificate.
    pub public_ca: bool,
    /// The datagram a udp probe sends (a default when `None`).
    pub payload: Option<String>,
    /// Trust exactly the pinned certificate (kong.conf's shared `cluster_cert`).
    pub pinned: bool,
    /// A route fixed by the check's source (kong.conf's `proxy_server`, or direct), which only
    /// `--proxy` overrides.
    pub route: Option<Route>,
}

impl CheckSpec {
    /// A required check with nothing set beyond what it is; the rest is filled in by the
    /// caller (`CheckSpec { host, port, ..CheckSpec::new(…) }`).
    pub fn new(id: String, name: String, role: Role, probe: Probe) -> CheckSpec {
        CheckSpec {
            id,
            name,
            role,
            required: true,
            profile: None,
            probe,
            host: String::new(),
            ip: None,
            port: None,
            note: None,
            skip: None,
            path: None,
            server_name: None,
            alpn: Vec::new(),
            client_cert: false,
            public_ca: false,
            payload: None,
            pinned: false,
            route: None,
        }
    }

    /// The target as the report shows it: `tls://host:443`, `https://host/path`.
    pub fn target(&self) -> String {
        let host = match self.ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.host.clone(),
        };
        format_target(self.probe, &host, self.port, self.path.as_deref())
    }
}

/// Everything a run will check.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub profiles: Vec<String>,
    pub checks: Vec<CheckSpec>,
    /// What the user should know about the plan (from a kong.conf: a node that is not a data
    /// plane, settings missing).
    pub notes: Vec<String>,
}

/// Builds the plan: the checks of a kong.conf (`conf`) first, then profiles, then targets.
/// `only` keeps the conf's and profiles' endpoints of those roles (command-line targets stay).
pub fn build(
    profiles: &[Profile],
    set: &Assignments,
    targets: &[Target],
    only: &[Role],
    family: Family,
    conf: &[CheckSpec],
) -> Result<Plan, InputError> {
    if profiles.is_empty() && targets.is_empty() && conf.is_empty() {
        return Err(InputError::NothingToCheck);
    }
    let mut plan = Plan::default();
    if !conf.is_empty() {
        plan.profiles.push(crate::kongconf::SOURCE.to_string());
    }
    for spec in conf {
        if !only.is_empty() && !only.contains(&spec.role) {
            continue;
        }
        let mut spec = spec.clone();
        if let Some(ip) = spec.ip {
            set_host(&mut spec, Host::Ip(ip), family)?;
        }
        plan.checks.push(spec);
    }
    let mut seen = HashSet::new();
    for profile in profiles {
        if !seen.insert(profile.name.clone()) {
            return Err(InputError::flag(
                "--profile",
                &profile.name,
                "the profile is given twice",
            ));
        }
        plan.profiles.push(profile.name.clone());
        let values = bind(profile, set)?;
        for ep in &profile.endpoints {
            if !only.is_empty() && !only.contains(&ep.role) {
                continue;
            }
            let mut spec = CheckSpec {
                required: ep.required,
                profile: Some(profile.name.clone()),
                host: ep.host.as_str().to_string(),
                port: ep.port.or(ep.probe.default_port()),
                note: Some(ep.note.clone()),
                path: ep
                    .path
                    .clone()
                    .or_else(|| ep.probe.uses_http().then(|| "/".to_string())),
                alpn: ep.alpn.clone(),
                client_cert: ep.client_cert,
                public_ca: ep.public_ca,
                payload: ep.payload.clone(),
                ..CheckSpec::new(
                    format!("{}.{}", profile.name, ep.key),
                    ep.name.clone(),
                    ep.role,
                    ep.probe,
                )
            };
            let server_name = ep.server_name.as_ref().map(|t| t.render(&values));
            match ep.host.render(&values) {
                Ok(host) => {
                    let parsed = Host::parse(&host).map_err(|reason| InputError::Variable {
                        profile: profile.name.clone(),
                        reason: format!(
                            "endpoint `{}`: the host `{host}` built from the variables is not valid: {reason}",
                            ep.key
                        ),
                    })?;
                    set_host(&mut spec, parsed, family)?;
                    // A server name whose variable is unset falls back to the host.
                    spec.server_name = server_name.and_then(Result::ok);
                }
                Err(unset) => {
                    spec.skip = Some(format!(
                        "`{unset}` is not set (add --set {unset}=VALUE to check it)"
                    ));
                }
            }
            plan.checks.push(spec);
        }
    }
    let declared: HashSet<&str> = profiles
        .iter()
        .flat_map(|p| p.variables.iter().map(|v| v.name.as_str()))
        .collect();
    if let Some(key) = set.keys().find(|k| !declared.contains(k)) {
        let known = if profiles.is_empty() {
            "no --profile is given".to_string()
        } else {
            let mut names: Vec<_> = declared.into_iter().collect();
            names.sort_unstable();
            format!("the profiles' variables are: {}", names.join(", "))
        };
        return Err(InputError::flag(
            "--set",
            key,
            format!("no profile has this variable; {known}"),
        ));
    }
    let mut ids: HashSet<String> = plan.checks.iter().map(|c| c.id.clone()).collect();
    for target in targets {
        let id = target.to_string();
        if !ids.insert(id.clone()) {
            continue;
        }
        let name = match target.probe {
            Probe::Dns => "DNS lookup",
            Probe::Tcp => "TCP connect",
            Probe::Tls => "TLS handshake",
            Probe::Http | Probe::Https => "HTTP request",
            Probe::Ws | Probe::Wss => "WebSocket upgrade",
            Probe::Udp => "UDP datagram",
            Probe::Bind => "Local port",
        };
        let mut spec = CheckSpec {
            port: target.port,
            path: target.path.clone(),
            ..CheckSpec::new(id, name.to_string(), Role::Target, target.probe)
        };
        set_host(&mut spec, target.host.clone(), family)?;
        plan.checks.push(spec);
    }
    Ok(plan)
}

fn set_host(spec: &mut CheckSpec, host: Host, family: Family) -> Result<(), InputError> {
    match host {
        Host::Name(name) if spec.probe == Probe::Bind => {
            return Err(InputError::Target {
                target: spec.target(),
                reason: format!(
                    "a bind check takes an address of this host, not the name `{name}`: 0.0.0.0, 127.0.0.1, [::]"
                ),
            });
        }
        Host::Name(name) => spec.host = name,
        Host::Ip(ip) => {
            if !family.allows(&ip) {
                let flag = if ip.is_ipv4() { "--ipv6" } else { "--ipv4" };
                return Err(InputError::Target {
                    target: spec.target_with(&ip),
                    reason: format!("{ip} is excluded by {flag}"),
                });
            }
            spec.host = ip.to_string();
            spec.ip = Some(ip);
        }
    }
    Ok(())
}

impl CheckSpec {
    fn target_with(&self, ip: &IpAddr) -> String {
        let mut copy = self.clone();
        copy.host = ip.to_string();
        copy.ip = Some(*ip);
        copy.target()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::load;

    fn set(flags: &[&str]) -> Assignments {
        Assignments::parse(&flags.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn konnect_plan(flags: &[&str], only: &[Role]) -> Result<Plan, InputError> {
        build(
            &[load("konnect").unwrap()],
            &set(flags),
            &[],
            only,
            Family::Any,
            &[],
        )
    }

    #[test]
    fn konnect_builds_its_hosts() {
        let plan = konnect_plan(&["region=eu", "cp_prefix=abc"], &[]).unwrap();
        let targets: Vec<_> = plan
            .checks
            .iter()
            .filter(|c| c.skip.is_none())
            .map(|c| c.target())
            .collect();
        assert_eq!(
            targets,
            [
                "tls://cloud.konghq.com:443",
                "tls://global.api.konghq.com:443",
                "tls://eu.api.konghq.com:443",
                "tls://abc.eu.cp0.konghq.com:443",
                "tls://abc.eu.tp0.konghq.com:443",
                "tcp://abc.eu.cp0.konghq.com:8071",
            ]
        );
    }

    #[test]
    fn unset_optional_variable_skips_with_a_reason() {
        let plan = konnect_plan(&["region=eu", "cp_prefix=abc"], &[]).unwrap();
        let portal = plan
            .checks
            .iter()
            .find(|c| c.id == "konnect.portal")
            .unwrap();
        assert!(portal.skip.as_deref().unwrap().contains("portal_id"));
        let plan = konnect_plan(&["region=eu", "cp_prefix=abc", "portal_id=p1"], &[]).unwrap();
        let portal = plan
            .checks
            .iter()
            .find(|c| c.id == "konnect.portal")
            .unwrap();
        assert_eq!(portal.skip, None);
        assert_eq!(portal.host, "p1.eu.portal.konghq.com");
    }

    #[test]
    fn only_keeps_the_roles_asked_for() {
        let plan = konnect_plan(
            &["region=us", "cp_prefix=x"],
            &[Role::ControlPlane, Role::Telemetry],
        )
        .unwrap();
        let ids: Vec<_> = plan.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "konnect.control-plane",
                "konnect.telemetry",
                "konnect.audit-log"
            ]
        );
    }

    #[test]
    fn unknown_set_key_is_refused() {
        let err = konnect_plan(&["region=us", "cp_prefix=x", "regoin=us"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--set regoin:"), "{err}");
        assert!(err.contains("cp_prefix, portal_id, region"), "{err}");
    }

    #[test]
    fn targets_join_profiles_and_family_is_enforced() {
        let targets = [Target::parse("tcp://[::1]:80").unwrap()];
        let plan = build(&[], &set(&[]), &targets, &[], Family::Any, &[]).unwrap();
        assert_eq!(plan.checks[0].target(), "tcp://[::1]:80");
        assert_eq!(plan.checks[0].role, Role::Target);
        let err = build(&[], &set(&[]), &targets, &[], Family::V4, &[]).unwrap_err();
        assert!(err.to_string().contains("--ipv4"), "{err}");
    }

    #[test]
    fn nothing_to_check_is_an_error() {
        let err = build(&[], &set(&[]), &[], &[], Family::Any, &[]).unwrap_err();
        assert!(matches!(err, InputError::NothingToCheck));
    }
}
