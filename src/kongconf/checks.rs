//! The checks a data plane's kong.conf implies: its control plane and telemetry endpoints
//! (with the certificates, server names and proxy Kong would use), and its listen ports.

use std::sync::Arc;

use crate::check::{AskedFamilies, CheckSpec};
use crate::error::InputError;
use crate::profile::Role;
use crate::route::{ProxyUrl, Route, WhatIf};
use crate::target::{Host, Probe, parse_port, split_port};

use super::files::{Blocked, Inspect, Material};
use super::{CLUSTER_KEYS, KongConf, Setting, spec};

/// What a kong.conf asks of the run besides its checks.
#[derive(Debug, Clone, Default)]
pub struct KongPlan {
    /// The findings in the node's files first, then the network checks.
    pub checks: Vec<CheckSpec>,
    /// Things the user should know: a node that is not a data plane, settings missing.
    pub notes: Vec<String>,
    /// What the node's files hold for the network checks (when they were inspected).
    pub material: Material,
    /// Why the cluster checks cannot run as the node would (they are skipped unless a flag
    /// gives what is missing).
    pub blocked: Vec<Blocked>,
    /// The DNS server Kong asks (`dns_resolver`, or `resolver_address` with `new_dns_client`),
    /// and where it was set.
    pub dns_server: Option<(std::net::SocketAddr, String)>,
    /// The cluster hosts Kong answers from its hosts file (`dns_hostsfile`) before any DNS.
    pub pins: Vec<crate::probe::dns::Pin>,
}

/// The mutual-TLS modes of `cluster_mtls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mtls {
    Shared,
    Pki,
}

/// Builds the checks of a data plane's configuration; with `inspect`, its files are read and
/// judged first (`check` does; `allowlist` needs only the endpoints).
pub fn plan(conf: &KongConf, inspect: Option<Inspect>) -> Result<KongPlan, InputError> {
    let mut out = KongPlan {
        notes: conf.notes.clone(),
        ..KongPlan::default()
    };
    let file = conf.path.display().to_string();
    let role = conf.get("role");
    if !["traditional", "data_plane", "control_plane"].contains(&role.value.as_str()) {
        return Err(conf.bad(
            "role",
            &role,
            "expected traditional, data_plane or control_plane",
        ));
    }
    let data_plane = role.value == "data_plane";
    if !data_plane {
        out.notes.push(format!(
            "role = {} ({}): this node is not a data plane, so its connections to a control plane are not checked; its listen ports are",
            role.value,
            conf.whence(&role)
        ));
    } else if !CLUSTER_KEYS.iter().any(|k| conf.given(k).is_some()) {
        out.notes.push(format!(
            "{file} sets none of the cluster settings ({}): the control plane checked is Kong's default, 127.0.0.1:8005",
            CLUSTER_KEYS.join(", ")
        ));
    }
    if data_plane {
        cluster_checks(conf, inspect, &mut out)?;
        resolver(conf, &mut out)?;
    }
    // The ports this node will listen on: a control plane's are its cluster and admin
    // listeners, not the proxy's.
    let listeners: &[&str] = match role.value.as_str() {
        "control_plane" => &[
            "cluster_listen",
            "cluster_telemetry_listen",
            "admin_listen",
            "status_listen",
        ],
        _ => &["proxy_listen", "stream_listen"],
    };
    listen_checks(conf, listeners, &mut out)?;
    Ok(out)
}

/// The bind checks of the TCP ports of the `keys` listener settings.
fn listen_checks(conf: &KongConf, keys: &[&str], out: &mut KongPlan) -> Result<(), InputError> {
    for &key in keys {
        let setting = conf.get(key);
        for (i, (addr, port, udp)) in listens(conf, key, &setting)?.into_iter().enumerate() {
            let (ip, host) = match Host::parse(&addr) {
                Ok(Host::Ip(ip)) => (ip, ip.to_string()),
                _ => {
                    return Err(conf.bad(
                        key,
                        &setting,
                        format!(
                            "`{addr}` is not an IP address (write 0.0.0.0:{port} or [::]:{port})"
                        ),
                    ));
                }
            };
            if udp {
                out.notes.push(format!(
                    "{key} {addr}:{port} is a UDP listener: only TCP ports are bind-checked"
                ));
                continue;
            }
            let what = match key {
                "proxy_listen" => "Proxy listener",
                "stream_listen" => "Stream listener",
                "cluster_listen" => "Cluster listener",
                "cluster_telemetry_listen" => "Cluster telemetry listener",
                "admin_listen" => "Admin API listener",
                _ => "Status listener",
            };
            let mut check = spec(
                &format!("{}-{}", key.replace('_', "-"), i + 1),
                format!("{what} {port}"),
                Role::Local,
                Probe::Bind,
                format!("{key} ({})", conf.whence(&setting)),
            );
            check.endpoint.host = host;
            check.endpoint.port = Some(port);
            check.ip = Some(ip);
            out.checks.push(check);
        }
    }
    Ok(())
}

/// The control plane and telemetry checks, with the certificates and proxy they use.
fn cluster_checks(
    conf: &KongConf,
    inspect: Option<Inspect>,
    out: &mut KongPlan,
) -> Result<(), InputError> {
    let mtls = mtls(conf)?;
    judge_files(conf, inspect, mtls, out);
    let (route, what_if) = proxy_route(conf, inspect.is_some(), out)?;
    let asked_families = asked_families(conf)?;
    let endpoints = [
        (
            "cluster_control_plane",
            "cluster_server_name",
            "control-plane",
            "Control plane (configuration)",
            Role::ControlPlane,
        ),
        (
            "cluster_telemetry_endpoint",
            "cluster_telemetry_server_name",
            "telemetry",
            "Control plane (telemetry)",
            Role::Telemetry,
        ),
    ];
    for (key, name_key, id, label, role) in endpoints {
        let setting = conf.get(key);
        if setting.value.is_empty() {
            out.notes.push(format!(
                "{key} is not set: no {} check",
                role.as_str().replace('-', " ")
            ));
            continue;
        }
        // The control plane gets the data plane's own handshake (mutual TLS, then the WebSocket
        // upgrade on /v1/outlet, kong/clustering/data_plane.lua in Kong's source); telemetry's
        // path is not replayed, so its check stops after mutual TLS.
        let probe = match role {
            Role::ControlPlane => Probe::KongCluster,
            _ => Probe::Tls,
        };
        let mut check = spec(id, label.to_string(), role, probe, String::new());
        cluster_endpoint(conf, (key, &setting), name_key, mtls, &mut check)?;
        if role == Role::Telemetry
            && let Some(note) = check.endpoint.note.as_mut()
        {
            note.push_str(
                "; checked up to mutual TLS (telemetry's WebSocket path is not replayed)",
            );
        }
        check.fixed_route.clone_from(&route);
        check.what_if.clone_from(&what_if);
        check.asked_families.clone_from(&asked_families);
        if role == Role::ControlPlane
            && let Some(rpc) = rpc_check(conf, &check)?
        {
            out.checks.push(check);
            out.checks.push(rpc);
            continue;
        }
        out.checks.push(check);
    }
    Ok(())
}

/// The node's files judged (with `inspect`), their findings first in the plan; without, only
/// the note that Kong needs a certificate.
fn judge_files(conf: &KongConf, inspect: Option<Inspect>, mtls: Mtls, out: &mut KongPlan) {
    match inspect {
        Some(how) => {
            let found = super::files::inspect(conf, mtls == Mtls::Pki, how);
            out.checks.extend(found.findings);
            out.material = found.material;
            out.blocked = found.blocked;
        }
        None if conf.given("cluster_cert").is_none()
            || conf.given("cluster_cert_key").is_none() =>
        {
            out.notes.push("cluster_cert and cluster_cert_key are not both set: Kong does not start a data plane without them".into());
        }
        None => {}
    }
}

/// The RPC connection of a node with `cluster_rpc = on`: `/v2/outlet` with the WebSocket
/// protocol `kong.meta.v1` (kong/clustering/rpc/manager.lua `connect`), beside `/v1/outlet`.
/// With `cluster_rpc_sync` (or the Enterprise `cluster_incremental_sync`) on, the node takes
/// its configuration over RPC and starts `/v1/outlet`'s sync only once RPC is connected
/// (kong/clustering/data_plane.lua `init_worker`): the check is then required; otherwise the
/// node loses only RPC's services, and a failure warns.
fn rpc_check(conf: &KongConf, cluster: &CheckSpec) -> Result<Option<CheckSpec>, InputError> {
    let (rpc, rpc_setting) = conf.flag("cluster_rpc")?;
    if !rpc {
        return Ok(None);
    }
    let (sync, _) = conf.flag("cluster_rpc_sync")?;
    let (incremental, _) = conf.flag("cluster_incremental_sync")?;
    let required = sync || incremental;
    let mut check = cluster.clone();
    check.endpoint.id = format!("{}.control-plane-rpc", super::SOURCE);
    check.endpoint.name = "Control plane (RPC)".into();
    check.endpoint.required = required;
    check.outlet.rpc = true;
    let why = match required {
        true => "required: with cluster_rpc_sync on, the node's configuration comes over RPC",
        false => {
            "optional: with cluster_rpc_sync off, the node syncs over /v1/outlet and loses only RPC's services"
        }
    };
    if let Some(note) = check.endpoint.note.as_mut() {
        note.push_str(&format!(
            "; cluster_rpc = on ({}): /v2/outlet with the WebSocket protocol kong.meta.v1, {why}",
            conf.whence(&rpc_setting)
        ));
    }
    Ok(Some(check))
}

/// Kong's own resolver: the name server it asks instead of /etc/resolv.conf's (`dns_resolver`,
/// default NONE; `resolver_address` with `new_dns_client`), and the hosts file it answers from
/// first (`dns_hostsfile` or `resolver_hosts_file`, default /etc/hosts), read for the cluster
/// hosts (kong/templates/kong_defaults.lua; kong/resty/dns/client.lua, kong/dns/client.lua).
fn resolver(conf: &KongConf, out: &mut KongPlan) -> Result<(), InputError> {
    let (new_client, _) = conf.flag("new_dns_client")?;
    let (server_key, hosts_key) = match new_client {
        true => ("resolver_address", "resolver_hosts_file"),
        false => ("dns_resolver", "dns_hostsfile"),
    };
    let servers = conf.get(server_key);
    let listed: Vec<&str> = servers
        .value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("none"))
        .collect();
    if let Some(first) = listed.first() {
        let addr = first
            .parse::<std::net::SocketAddr>()
            .or_else(|_| {
                first
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
            })
            .map_err(|_| {
                conf.bad(
                    server_key,
                    &servers,
                    format!("`{first}` is not IP or IP:PORT ([v6]:PORT)"),
                )
            })?;
        if listed.len() > 1 {
            out.notes.push(format!(
                "{server_key} lists {} servers ({}): the run asks the first, {addr}",
                listed.len(),
                conf.whence(&servers)
            ));
        }
        out.dns_server = Some((addr, format!("{server_key} ({})", conf.whence(&servers))));
    }
    let hosts = conf.get(hosts_key);
    let wanted: Vec<(String, u16)> = out
        .checks
        .iter()
        .filter(|c| c.fixed_route.is_some() && c.ip.is_none())
        .filter_map(|c| Some((c.host().to_ascii_lowercase(), c.port()?)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let Ok(text) = crate::files::read_text(std::path::Path::new(&hosts.value), hosts_key) else {
        return Ok(());
    };
    for (host, port) in wanted {
        let addrs: Vec<std::net::IpAddr> = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let ip = words.next()?.parse::<std::net::IpAddr>().ok()?;
                words.any(|w| w.eq_ignore_ascii_case(&host)).then_some(ip)
            })
            .collect();
        if !addrs.is_empty() && !out.pins.iter().any(|p| p.host == host && p.port == port) {
            out.pins.push(crate::probe::dns::Pin { host, port, addrs });
        }
    }
    Ok(())
}

/// The address families Kong's resolver asks for, when not both: the record types of
/// `dns_order` (kong/templates/kong_defaults.lua: `LAST,SRV,A,CNAME`, so no AAAA; read by
/// kong/resty/dns/client.lua), or of `resolver_family` (default `A,SRV`) when `new_dns_client`
/// is on (kong/dns/client.lua). LAST, SRV and CNAME lead to A or AAAA records in the end.
fn asked_families(conf: &KongConf) -> Result<Option<AskedFamilies>, InputError> {
    let (new_client, _) = conf.flag("new_dns_client")?;
    let key = match new_client {
        true => "resolver_family",
        false => "dns_order",
    };
    let setting = conf.get(key);
    let types: Vec<String> = setting
        .value
        .split(',')
        .map(|t| t.trim().to_ascii_uppercase())
        .filter(|t| !t.is_empty())
        .collect();
    let known = ["LAST", "SRV", "A", "AAAA", "CNAME"];
    if let Some(bad) = types.iter().find(|t| !known.contains(&t.as_str())) {
        return Err(conf.bad(
            key,
            &setting,
            format!("`{bad}` is not a record type Kong asks for (LAST, SRV, A, AAAA, CNAME)"),
        ));
    }
    let v4 = types.iter().any(|t| t == "A");
    let v6 = types.iter().any(|t| t == "AAAA");
    if v4 && v6 {
        return Ok(None);
    }
    let fix = match v6 {
        false => format!(
            "add AAAA to {key} in kong.conf ({key} = {},AAAA)",
            setting.value
        ),
        true => format!("add A to {key} in kong.conf ({key} = {},A)", setting.value),
    };
    Ok(Some(AskedFamilies {
        v4,
        v6,
        setting: format!("{key} = {} ({})", setting.value, conf.whence(&setting)),
        fix,
    }))
}

/// The mutual-TLS mode of `cluster_mtls`.
fn mtls(conf: &KongConf) -> Result<Mtls, InputError> {
    let setting = conf.get("cluster_mtls");
    match setting.value.as_str() {
        "shared" => Ok(Mtls::Shared),
        "pki" | "pki_check_cn" => Ok(Mtls::Pki),
        _ => Err(conf.bad(
            "cluster_mtls",
            &setting,
            "expected shared, pki or pki_check_cn",
        )),
    }
}

/// Fills in `check` from a cluster endpoint's `HOST:PORT` setting: the host, the port, the
/// server name Kong sends, and a note saying where each came from.
fn cluster_endpoint(
    conf: &KongConf,
    (key, setting): (&str, &Setting),
    name_key: &str,
    mtls: Mtls,
    check: &mut CheckSpec,
) -> Result<(), InputError> {
    if let Some(url) = crate::target::url_instead(&setting.value) {
        return Err(conf.bad(key, setting, url));
    }
    // Kong puts `wss://` before the value and the outlet's path after it
    // (kong/clustering/utils.lua `connect_cp`): HOST[:PORT][/PATH], port 443 when absent (the
    // WebSocket client's default for wss), the path before `/v1/outlet` (Konnect's PrivateLink:
    // `REGION.svc.konghq.com/cp/PREFIX`).
    let (authority, prefix) = match setting.value.find('/') {
        Some(i) => (
            &setting.value[..i],
            setting.value[i..].trim_end_matches('/'),
        ),
        None => (setting.value.as_str(), ""),
    };
    if prefix.contains(['?', '#', ' ']) {
        return Err(conf.bad(
            key,
            setting,
            "expected HOST[:PORT][/PATH], a path without a query",
        ));
    }
    let (host, port) = match split_port(authority) {
        Some((host, port)) => (
            host,
            parse_port(port).map_err(|reason| conf.bad(key, setting, reason))?,
        ),
        None if !authority.is_empty() && !authority.contains(':') => (authority, 443),
        None => return Err(conf.bad(key, setting, "expected HOST[:PORT][/PATH]")),
    };
    check.outlet.prefix = prefix.to_string();
    let parsed = Host::parse(host).map_err(|reason| conf.bad(key, setting, reason))?;
    let (host, ip) = match &parsed {
        Host::Name(name) => (name.clone(), None),
        Host::Ip(ip) => (ip.to_string(), Some(*ip)),
    };
    let server_name = match mtls {
        // Kong's shared mode always sends this name.
        Mtls::Shared => Some(("kong_clustering".to_string(), None)),
        Mtls::Pki => conf
            .given(name_key)
            .map(|s| (s.value.clone(), Some(conf.whence(s)))),
    };
    let mut note = format!("{key} ({})", conf.whence(setting));
    match &server_name {
        Some((name, Some(whence))) => note.push_str(&format!("; {name_key} {name} ({whence})")),
        Some((name, None)) => note.push_str(&format!(
            "; server name {name} (cluster_mtls = shared: the certificate must be cluster_cert itself)"
        )),
        None => {}
    }
    check.endpoint.host = host;
    check.endpoint.port = Some(port);
    check.endpoint.note = Some(note);
    check.ip = ip;
    check.tls.server_name = server_name.map(|(name, _)| name);
    check.tls.client_cert_expected = true;
    check.tls.pinned = mtls == Mtls::Shared;
    let trusted = conf.get("lua_ssl_trusted_certificate");
    check.tls.kong_trust = Some(crate::probe::tls::KongTrust {
        system: trusted
            .value
            .split(',')
            .any(|entry| entry.trim() == "system"),
        whence: conf.whence(&trusted),
        value: trusted.value.clone(),
    });
    Ok(())
}

/// The route of the cluster connections: Kong uses `proxy_server` for them only when
/// `cluster_use_proxy` is on, and never the proxy variables of the environment. With the files
/// `judged`, a proxy_server preflight can read but Kong refuses (no scheme, or neither http nor
/// https) is a finding and the cluster checks are skipped, so no route is made of it; one
/// preflight cannot read is an error, as before. A `proxy_server` that `cluster_use_proxy = off`
/// leaves unused is the what-if tried when the direct route fails.
fn proxy_route(
    conf: &KongConf,
    judged: bool,
    out: &mut KongPlan,
) -> Result<(Option<Route>, Option<WhatIf>), InputError> {
    let (use_proxy, use_setting) = conf.flag("cluster_use_proxy")?;
    if !use_proxy {
        let direct = Route {
            proxy: None,
            reason: Some("kong.conf: cluster_use_proxy is off".into()),
        };
        let unused = conf
            .given("proxy_server")
            .filter(|server| !server.cut)
            .and_then(|server| Some((server, kong_proxy_url(&server.value).ok()?)));
        let what_if = unused.map(|(server, url)| WhatIf {
            proxy: Arc::new(url),
            source: format!("kong.conf proxy_server ({})", conf.whence(server)),
            fix: format!(
                "set cluster_use_proxy = on in kong.conf ({}): its proxy_server ({}) is set but unused for the cluster connections while cluster_use_proxy is off",
                conf.whence(&use_setting),
                conf.whence(server)
            ),
        });
        return Ok((Some(direct), what_if));
    }
    let Some(server) = conf.given("proxy_server") else {
        // Kong does not start so: a finding when the files are judged, and the cluster
        // checks are skipped unless --proxy gives a route; otherwise a note.
        if !judged {
            out.notes.push(format!(
                "cluster_use_proxy is on ({}) but proxy_server is not set: Kong does not start so; the cluster connections are listed as direct",
                conf.whence(&use_setting)
            ));
        }
        // Kong does not start so: no route of the node's own (the checks are skipped unless
        // --proxy gives one, which is then the route).
        let route = Route {
            proxy: None,
            reason: Some(format!(
                "kong.conf: cluster_use_proxy is on ({}) but proxy_server is not set",
                conf.whence(&use_setting)
            )),
        };
        return Ok(((!judged).then_some(route), None));
    };
    let mut url = kong_proxy_url(&server.value).map_err(|reason| {
        if server.cut {
            // What is left before the `#` may be a user and half a password.
            let hidden = Setting {
                value: "***".into(),
                origin: server.origin.clone(),
                cut: true,
            };
            return conf.bad(
                "proxy_server",
                &hidden,
                "a # in the value starts a comment in kong.conf, so Kong reads it cut short there; write a # in a password as %23",
            );
        }
        let redacted = Setting {
            value: crate::sanitize::redact(&server.value),
            origin: server.origin.clone(),
            cut: false,
        };
        conf.bad("proxy_server", &redacted, reason)
    })?;
    let scheme = server
        .value
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    if judged && !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Ok((None, None));
    }
    let (verify, verify_setting) = conf.flag("proxy_server_ssl_verify")?;
    if !verify && url.scheme == crate::route::Scheme::Https {
        // Kong does not verify the proxy then (kong/templates/nginx.lua, the cluster_ssl_tunnel
        // server: `proxy_ssl_verify off`); nor does the check.
        url.verify = false;
        out.notes.push(format!(
            "proxy_server_ssl_verify is off ({}): the HTTPS proxy's certificate is not verified, as Kong does not verify it",
            conf.whence(&verify_setting)
        ));
    }
    let route = Route {
        proxy: Some(Arc::new(url)),
        reason: Some(format!("kong.conf proxy_server ({})", conf.whence(server))),
    };
    Ok((Some(route), None))
}

impl KongConf {
    /// `HOST:PORT` of `proxy_server` as Kong dials it (port 443 when absent), without
    /// credentials; `None` when it is not set or cannot be read.
    pub fn proxy_address(&self) -> Option<String> {
        let server = self.given("proxy_server")?;
        let url = kong_proxy_url(&server.value).ok()?;
        Some(format!("{}:{}", url.host, url.port))
    }
}

/// `proxy_server` as Kong reads it: CONNECT answered 200 only, and without a port, port 443 for
/// an http proxy as for an https one (`parse_proxy_url` in kong/clustering/utils.lua: `parsed.port or 443`; the https
/// tunnel's `cluster_ssl_tunnel` in kong/conf_loader/init.lua the same), not curl's 1080.
fn kong_proxy_url(text: &str) -> Result<ProxyUrl, String> {
    let mut url = ProxyUrl::parse_with_port(text, Some(443))?;
    url.only_200 = true;
    Ok(url)
}

/// The TCP listeners of a `*_listen` setting: (address, port, is UDP). `off` is none.
fn listens(
    conf: &KongConf,
    key: &str,
    setting: &Setting,
) -> Result<Vec<(String, u16, bool)>, InputError> {
    if setting.value.eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    setting
        .value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let mut words = entry.split_whitespace();
            let at = words.next().unwrap_or_default();
            let udp = words.any(|w| w == "udp");
            let Some((addr, port)) = split_port(at) else {
                return Err(conf.bad(key, setting, format!("`{at}` is not ADDRESS:PORT")));
            };
            let port = parse_port(port).map_err(|reason| conf.bad(key, setting, reason))?;
            Ok((addr.to_string(), port, udp))
        })
        .collect()
}
