//! The plan: profiles (with their variables bound), a kong.conf's checks and command-line
//! targets turned into the list of checks to run, then settled: every value that holds for a
//! check through the run (its route, its TLS request, its payload, its expectation) is fixed
//! here, once. Everything the user can get wrong is caught here, before any probe.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// A check as the plan holds it, and a finding about the node's files.
pub use crate::check::{CheckSpec, Finding};
use crate::error::InputError;
use crate::probe::dns::Family;
use crate::probe::http::Expect;
use crate::profile::{Assignments, Endpoint, Profile, Role, bind};
use crate::route::ProxyConfig;
use crate::target::{Host, Probe, Target};

/// Everything a run will check.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The profiles the checks come from.
    pub profiles: Vec<String>,
    /// Every check, settled, in the order the report lists them.
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
    let wanted = |role: &Role| only.is_empty() || only.contains(role);
    let mut plan = Plan::default();
    if !conf.is_empty() {
        plan.profiles.push(crate::kongconf::SOURCE.to_string());
    }
    for spec in conf.iter().filter(|s| wanted(&s.endpoint.role)) {
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
        // A misspelt variable is the likelier mistake than the required one it leaves unset.
        refuse_unknown_variables(profiles, set)?;
        let values = bind(profile, set)?;
        for ep in profile.endpoints.iter().filter(|ep| wanted(&ep.role)) {
            plan.checks.push(of_endpoint(profile, ep, &values, family)?);
        }
    }
    refuse_unknown_variables(profiles, set)?;
    if targets.is_empty() {
        refuse_empty(&plan, profiles, only)?;
    }
    let mut ids: HashSet<String> = plan.checks.iter().map(|c| c.id().to_string()).collect();
    for target in targets {
        // The same target twice (or a profile's own id) is one check.
        if ids.insert(target.to_string()) {
            plan.checks.push(of_target(target, family)?);
        }
    }
    Ok(plan)
}

/// The check of a profile's endpoint, with the profile's variables bound (`values`); skipped,
/// with the reason, when a variable of its host is not set.
fn of_endpoint(
    profile: &Profile,
    ep: &Endpoint,
    values: &HashMap<String, String>,
    family: Family,
) -> Result<CheckSpec, InputError> {
    let mut spec = CheckSpec::new(
        format!("{}.{}", profile.name, ep.key),
        ep.name.clone(),
        ep.role,
        ep.probe,
    );
    spec.endpoint.required = ep.required;
    spec.endpoint.profile = Some(profile.name.clone());
    spec.endpoint.host = ep.host.as_str().to_string();
    spec.endpoint.port = ep.port.or(ep.probe.default_port());
    spec.endpoint.note = Some(ep.note.clone());
    spec.path = ep
        .path
        .clone()
        .or_else(|| ep.probe.uses_http().then(|| "/".to_string()));
    spec.tls.alpn = ep.alpn.clone();
    spec.tls.client_cert_expected = ep.client_cert;
    spec.tls.public_ca = ep.public_ca;
    spec.payload = ep.payload.clone();
    let host = match ep.host.render(values) {
        Ok(host) => host,
        Err(unset) => {
            spec.skip = Some(format!(
                "`{unset}` is not set (add --set {unset}=VALUE to check it)"
            ));
            spec.endpoint.host = ep.host.render_known(values);
            return Ok(spec);
        }
    };
    let parsed = Host::parse(&host).map_err(|reason| InputError::Variable {
        profile: profile.name.clone(),
        reason: format!(
            "endpoint `{}`: the host `{host}` built from the variables is not valid: {reason}",
            ep.key
        ),
    })?;
    set_host(&mut spec, parsed, family)?;
    // A server name whose variable is unset falls back to the host.
    spec.tls.server_name = ep.server_name.as_ref().and_then(|t| t.render(values).ok());
    Ok(spec)
}

/// A `--set` that no profile declares is a typo, or a flag meant for another profile: named
/// with the declared name it is closest to.
fn refuse_unknown_variables(profiles: &[Profile], set: &Assignments) -> Result<(), InputError> {
    let declared: HashSet<&str> = profiles
        .iter()
        .flat_map(|p| p.variables.iter().map(|v| v.name.as_str()))
        .collect();
    let Some(key) = set.keys().find(|k| !declared.contains(k)) else {
        return Ok(());
    };
    if profiles.is_empty() {
        return Err(InputError::flag(
            "--set",
            key,
            "no profile has this variable; no --profile is given",
        ));
    }
    let mut names: Vec<_> = declared.into_iter().collect();
    names.sort_unstable();
    let closest = names
        .iter()
        .map(|name| (edit_distance(key, name), *name))
        .filter(|(distance, _)| *distance <= 2)
        .min();
    let which: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    let reason = match closest {
        Some((_, name)) => format!(
            "unknown variable `{key}` for profile {} (did you mean `{name}`?)",
            which.join(", ")
        ),
        None => format!(
            "unknown variable `{key}` for profile {}; its variables are: {}",
            which.join(", "),
            names.join(", ")
        ),
    };
    Err(InputError::flag("--set", key, reason))
}

/// The Levenshtein distance between two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A plan from profiles or a kong.conf in which nothing runs (every endpoint filtered out by
/// `--only`, or skipped for want of a variable) is a mistake, not a green run.
fn refuse_empty(plan: &Plan, profiles: &[Profile], only: &[Role]) -> Result<(), InputError> {
    if plan.checks.iter().any(|c| c.skip.is_none()) {
        return Ok(());
    }
    if plan.checks.is_empty() && !only.is_empty() {
        let mut roles: Vec<&str> = profiles
            .iter()
            .flat_map(|p| p.endpoints.iter().map(|e| e.role.as_str()))
            .collect();
        roles.sort_unstable();
        roles.dedup();
        let asked: Vec<&str> = only.iter().map(|r| r.as_str()).collect();
        return Err(InputError::NothingSelected(format!(
            "--only {} keeps none of the endpoints; the roles here are: {}",
            asked.join(","),
            roles.join(", ")
        )));
    }
    let reasons: Vec<String> = plan
        .checks
        .iter()
        .filter_map(|c| c.skip.as_deref().map(|why| format!("{} ({why})", c.id())))
        .take(3)
        .collect();
    Err(InputError::NothingSelected(format!(
        "every endpoint is skipped: {}",
        reasons.join("; ")
    )))
}

/// The check of a command-line target.
fn of_target(target: &Target, family: Family) -> Result<CheckSpec, InputError> {
    let name = match target.probe {
        Probe::Dns => "DNS lookup",
        Probe::Tcp => "TCP connect",
        Probe::Tls => "TLS handshake",
        Probe::Http | Probe::Https => "HTTP request",
        Probe::Ws | Probe::Wss => "WebSocket upgrade",
        Probe::KongCluster => "Kong cluster handshake",
        Probe::Udp => "UDP datagram",
        Probe::Bind => "Local port",
        Probe::File => "File",
    };
    let mut spec = CheckSpec::new(
        target.to_string(),
        name.to_string(),
        Role::Target,
        target.probe,
    );
    spec.endpoint.port = target.port;
    spec.path = target.path.clone();
    set_host(&mut spec, target.host.clone(), family)?;
    Ok(spec)
}

fn set_host(spec: &mut CheckSpec, host: Host, family: Family) -> Result<(), InputError> {
    match host {
        Host::Name(name) if spec.probe() == Probe::Bind => {
            return Err(InputError::Target {
                target: spec.target(),
                reason: format!(
                    "a bind check takes an address of this host, not the name `{name}`: 0.0.0.0, 127.0.0.1, [::]"
                ),
            });
        }
        Host::Name(name) => spec.endpoint.host = name,
        Host::Ip(ip) => {
            if !family.allows(&ip) {
                let flag = if ip.is_ipv4() { "--ipv6" } else { "--ipv4" };
                return Err(InputError::Target {
                    target: spec.target_with(&ip),
                    reason: format!("{ip} is excluded by {flag}"),
                });
            }
            spec.endpoint.host = ip.to_string();
            spec.ip = Some(ip);
        }
    }
    Ok(())
}

impl CheckSpec {
    fn target_with(&self, ip: &IpAddr) -> String {
        let mut copy = self.clone();
        copy.endpoint.host = ip.to_string();
        copy.ip = Some(*ip);
        copy.target()
    }
}

/// What the command line sets for every check at once, over what each endpoint asks for.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--server-name`: every TLS check's server name.
    pub server_name: Option<String>,
    /// `--alpn`: every TLS check's ALPN list, when not empty.
    pub alpn: Vec<String>,
    /// `--allow-private-ca`: no interception verdict from a private root alone.
    pub allow_private_ca: bool,
    /// `--udp-payload`: every udp check's datagram.
    pub udp_payload: Option<String>,
    /// `--expect-status`.
    pub expect: Expect,
    /// `--compare-direct`: also try each proxied check without its proxy.
    pub compare_direct: bool,
    /// `--no-upgrade`: Kong cluster checks stop after mutual TLS.
    pub no_upgrade: bool,
    /// A client certificate is given: a profile's control-plane endpoint that requires one is
    /// checked with the data plane's own handshake.
    pub client_cert_given: bool,
    /// The path and query of the data plane's upgrade (`/v1/outlet?node_id=…`).
    pub cluster_path: String,
}

impl Plan {
    /// Fixes every value a check keeps through the run: its target text, its route (the
    /// one place a route is chosen), and what the command line overrides. Skipped checks are
    /// only named.
    pub fn settle(&mut self, overrides: &Overrides, proxies: &ProxyConfig) {
        if self.checks.iter().any(|c| c.fixed_route.is_some())
            && let Some(note) = proxies.ignored_for_kong()
            && !self.notes.contains(&note)
        {
            self.notes.push(note);
        }
        for spec in &mut self.checks {
            spec.endpoint.target = spec.target();
            if spec.skip.is_some() || spec.finding.is_some() {
                continue;
            }
            // A profile's control plane, checked with the node's certificate: the data plane's
            // own handshake, as for a kong.conf.
            if spec.endpoint.profile.is_some()
                && spec.endpoint.role == Role::ControlPlane
                && spec.endpoint.probe == Probe::Tls
                && spec.tls.client_cert_expected
                && overrides.client_cert_given
            {
                spec.endpoint.probe = Probe::KongCluster;
            }
            if spec.endpoint.probe == Probe::KongCluster {
                let outlet = match spec.outlet.rpc {
                    true => "/v2/outlet",
                    false => overrides.cluster_path.as_str(),
                };
                match overrides.no_upgrade {
                    true => spec.endpoint.probe = Probe::Tls,
                    false => spec.path = Some(format!("{}{outlet}", spec.outlet.prefix)),
                }
                spec.endpoint.target = spec.target();
            }
            if let Some(fixed) = &spec.fixed_route
                && spec.what_if.is_none()
            {
                spec.what_if = proxies.what_if(fixed);
            }
            spec.route = proxies.route_of(
                spec.fixed_route.as_ref(),
                spec.endpoint.probe,
                &spec.endpoint.host,
                spec.ip,
                spec.endpoint.port,
            );
            spec.compare_direct = overrides.compare_direct && spec.route.proxy.is_some();
            let tls = &mut spec.tls;
            tls.answered_by_http = spec.endpoint.probe.uses_http();
            if overrides.server_name.is_some() {
                tls.server_name.clone_from(&overrides.server_name);
            }
            if !overrides.alpn.is_empty() {
                tls.alpn.clone_from(&overrides.alpn);
            }
            tls.public_ca &= !overrides.allow_private_ca;
            if overrides.udp_payload.is_some() {
                spec.payload.clone_from(&overrides.udp_payload);
            }
            spec.expect = overrides.expect.clone();
        }
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
                "tcp://abc.eu.cp0.konghq.com:20010",
                "tls://abc.eu.cp.konghq.com:443",
                "tls://abc.eu.tp.konghq.com:443",
            ]
        );
    }

    #[test]
    fn unset_optional_variable_skips_with_a_reason() {
        let plan = konnect_plan(&["region=eu", "cp_prefix=abc"], &[]).unwrap();
        let portal = plan
            .checks
            .iter()
            .find(|c| c.endpoint.id == "konnect.portal")
            .unwrap();
        assert!(portal.skip.as_deref().unwrap().contains("portal_id"));
        let plan = konnect_plan(&["region=eu", "cp_prefix=abc", "portal_id=p1"], &[]).unwrap();
        let portal = plan
            .checks
            .iter()
            .find(|c| c.endpoint.id == "konnect.portal")
            .unwrap();
        assert_eq!(portal.skip, None);
        assert_eq!(portal.endpoint.host, "p1.eu.portal.konghq.com");
    }

    #[test]
    fn only_keeps_the_roles_asked_for() {
        let plan = konnect_plan(
            &["region=us", "cp_prefix=x"],
            &[Role::ControlPlane, Role::Telemetry],
        )
        .unwrap();
        let ids: Vec<_> = plan.checks.iter().map(|c| c.endpoint.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "konnect.control-plane",
                "konnect.telemetry",
                "konnect.audit-log",
                "konnect.audit-log-20010",
                "konnect.control-plane-today",
                "konnect.telemetry-today"
            ]
        );
    }

    #[test]
    fn unknown_set_key_is_refused() {
        let err = konnect_plan(&["region=us", "cp_prefix=x", "regoin=us"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--set regoin:"), "{err}");
        assert!(err.contains("(did you mean `region`?)"), "{err}");
        // Also when the variable it was meant to be is required and so missing.
        let err = konnect_plan(&["cp_prefix=x", "regoin=us"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown variable `regoin` for profile konnect (did you mean `region`?)"),
            "{err}"
        );
        // Far from every name: the names are listed.
        let err = konnect_plan(&["region=us", "cp_prefix=x", "colour=red"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cp_prefix, portal_id, region"), "{err}");
    }

    #[test]
    fn kong_hybrid_checks_telemetry_on_its_own_host_when_given() {
        let plan = |flags: &[&str]| {
            build(
                &[load("kong-hybrid").unwrap()],
                &set(flags),
                &[],
                &[],
                Family::Any,
                &[],
            )
            .unwrap()
        };
        let telemetry = |plan: &Plan| {
            plan.checks
                .iter()
                .filter(|c| c.endpoint.role == Role::Telemetry)
                .map(|c| c.target())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            telemetry(&plan(&["cp_host=cp.example"])),
            ["tls://cp.example:8006"]
        );
        assert_eq!(
            telemetry(&plan(&["cp_host=cp.example", "telemetry_host=tp.example"])),
            ["tls://tp.example:8006"]
        );
    }

    #[test]
    fn a_plan_in_which_nothing_runs_is_refused() {
        let err = konnect_plan(&["region=us", "cp_prefix=x"], &[Role::Mesh])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("nothing to check: --only mesh keeps none"),
            "{err}"
        );
        assert!(err.contains("control-plane"), "{err}");
        let err = konnect_plan(&["region=us", "cp_prefix=x"], &[Role::Portal])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("nothing to check: every endpoint is skipped"),
            "{err}"
        );
        assert!(err.contains("portal_id"), "{err}");
    }

    #[test]
    fn targets_join_profiles_and_family_is_enforced() {
        let targets = [Target::parse("tcp://[::1]:80").unwrap()];
        let plan = build(&[], &set(&[]), &targets, &[], Family::Any, &[]).unwrap();
        assert_eq!(plan.checks[0].target(), "tcp://[::1]:80");
        assert_eq!(plan.checks[0].endpoint.role, Role::Target);
        let err = build(&[], &set(&[]), &targets, &[], Family::V4, &[]).unwrap_err();
        assert!(err.to_string().contains("--ipv4"), "{err}");
    }

    #[test]
    fn nothing_to_check_is_an_error() {
        let err = build(&[], &set(&[]), &[], &[], Family::Any, &[]).unwrap_err();
        assert!(matches!(err, InputError::NothingToCheck));
    }
}

#[cfg(test)]
mod settle_tests {
    use super::*;
    use crate::route::{ProxyFlags, Route};

    fn proxies(proxy: Option<&str>, env: &[(&str, &str)]) -> ProxyConfig {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let flags = ProxyFlags {
            proxy,
            ..ProxyFlags::default()
        };
        ProxyConfig::new(flags, |name| env.get(name).cloned()).unwrap()
    }

    fn plan_of(targets: &[&str]) -> Plan {
        let targets: Vec<Target> = targets.iter().map(|t| Target::parse(t).unwrap()).collect();
        let set = Assignments::parse(&[]).unwrap();
        build(&[], &set, &targets, &[], Family::Any, &[]).unwrap()
    }

    #[test]
    fn the_flags_override_what_each_endpoint_asks_for() {
        let mut plan = plan_of(&["tls://cp.example:443", "udp://192.0.2.1:53"]);
        plan.checks[0].tls.server_name = Some("from-profile.example".into());
        plan.checks[0].tls.alpn = vec!["kong".into()];
        plan.checks[0].tls.public_ca = true;
        plan.checks[1].payload = Some("endpoint's".into());
        // Without flags, the endpoint's own values stand.
        let mut kept = plan.clone();
        kept.settle(&Overrides::default(), &ProxyConfig::default());
        assert_eq!(
            kept.checks[0].tls.server_name.as_deref(),
            Some("from-profile.example")
        );
        assert_eq!(kept.checks[0].tls.alpn, ["kong"]);
        assert!(kept.checks[0].tls.public_ca);
        assert_eq!(kept.checks[1].payload.as_deref(), Some("endpoint's"));
        assert_eq!(kept.checks[0].endpoint.target, "tls://cp.example:443");
        let overrides = Overrides {
            server_name: Some("flag.example".into()),
            alpn: vec!["h2".into()],
            allow_private_ca: true,
            udp_payload: Some("flag's".into()),
            expect: Expect::Ranges(vec![(200, 299)]),
            compare_direct: false,
            ..Overrides::default()
        };
        plan.settle(&overrides, &ProxyConfig::default());
        let tls = &plan.checks[0].tls;
        assert_eq!(tls.server_name.as_deref(), Some("flag.example"));
        assert_eq!(tls.alpn, ["h2"]);
        assert!(!tls.public_ca);
        assert_eq!(plan.checks[1].payload.as_deref(), Some("flag's"));
        assert_eq!(plan.checks[0].expect, Expect::Ranges(vec![(200, 299)]));
    }

    #[test]
    fn each_check_gets_its_route_once_and_compares_only_when_proxied() {
        let mut plan = plan_of(&["tls://cp.example:443", "tls://db.internal:443"]);
        let mut conf = plan.checks[0].clone();
        conf.endpoint.id = "kong.conf.control-plane".into();
        conf.fixed_route = Some(Route {
            proxy: None,
            reason: Some("kong.conf: cluster_use_proxy is off".into()),
        });
        plan.checks.push(conf);
        let compare = Overrides {
            compare_direct: true,
            ..Overrides::default()
        };
        let env = [
            ("https_proxy", "http://proxy.example:3128"),
            ("no_proxy", ".internal"),
        ];
        plan.settle(&compare, &proxies(None, &env));
        let routes: Vec<_> = plan
            .checks
            .iter()
            .map(|c| {
                let proxy = c.route.proxy.as_ref().map(|p| p.to_string());
                (proxy, c.route.reason.clone(), c.compare_direct)
            })
            .collect();
        assert_eq!(
            routes,
            [
                (
                    Some("http://proxy.example:3128".into()),
                    Some("https_proxy".into()),
                    true
                ),
                (None, Some("no_proxy=.internal".into()), false),
                (
                    None,
                    Some("kong.conf: cluster_use_proxy is off".into()),
                    false
                ),
            ]
        );
        // The environment's proxy is a what-if for the kong.conf check, named in a note.
        assert_eq!(
            plan.checks[2].what_if.as_ref().unwrap().source,
            "https_proxy"
        );
        assert!(
            plan.notes
                .iter()
                .any(|n| n.starts_with("https_proxy, no_proxy not used")),
            "{:?}",
            plan.notes
        );
        // --proxy does not override the route a kong.conf fixed: Kong would not use it. It is
        // tried as a what-if.
        plan.checks[2].what_if = None;
        plan.settle(&compare, &proxies(Some("http://flag.example:8080"), &[]));
        assert_eq!(
            plan.checks[2].route.reason.as_deref(),
            Some("kong.conf: cluster_use_proxy is off")
        );
        assert!(!plan.checks[2].compare_direct);
        assert_eq!(plan.checks[2].what_if.as_ref().unwrap().source, "--proxy");
    }

    #[test]
    fn a_skipped_check_is_named_but_given_no_route() {
        let mut plan = plan_of(&["tls://cp.example:443"]);
        plan.checks[0].skip = Some("`x` is not set".into());
        plan.settle(
            &Overrides::default(),
            &proxies(Some("http://p.example:1"), &[]),
        );
        assert_eq!(plan.checks[0].endpoint.target, "tls://cp.example:443");
        assert!(plan.checks[0].route.proxy.is_none());
    }
}
