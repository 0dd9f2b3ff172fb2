//! The firewall handoff: for a set of checks, what the network team must allow. Built from the
//! plan (`preflight allowlist`, which only resolves names) or from a finished run's failed
//! checks (`check --allowlist-failed`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use tokio::time::Instant;

use crate::plan::{CheckSpec, Plan};
use crate::probe::Budget;
use crate::probe::dns::{Dns, DnsConfig};
use crate::profile::Role;
use crate::report::{CheckResult, Report, Status};
use crate::route::{ProxyUrl, Scheme};
use crate::target::{Host, Probe};

/// The version of the allowlist's JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// What a firewall rule is about: the protocol the node speaks on the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// A TCP connection (TLS and HTTP ride on it).
    Tcp,
    /// TCP carrying TLS (what an inspection proxy or a TLS-aware firewall sees).
    Tls,
    /// A UDP datagram.
    Udp,
    /// Name resolution only: the node's resolver must answer for the name.
    Dns,
}

impl Protocol {
    /// The protocol of a probe's rule; `None` for a file of the node's, which is no rule.
    pub fn of(probe: Probe) -> Option<Protocol> {
        Some(match probe {
            Probe::Tls | Probe::Https | Probe::Wss | Probe::KongCluster => Protocol::Tls,
            Probe::Tcp | Probe::Http | Probe::Ws | Probe::Bind => Protocol::Tcp,
            Probe::Udp => Protocol::Udp,
            Probe::Dns => Protocol::Dns,
            Probe::File => return None,
        })
    }

    /// The word the list uses: `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
            Protocol::Udp => "UDP",
            Protocol::Dns => "DNS",
        }
    }
}

/// Which way a connection goes, seen from this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From this node to the endpoint.
    Outbound,
    /// From other hosts to a port this node listens on.
    Inbound,
}

impl Direction {
    /// The word the list uses: `outbound`, `inbound` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// One rule to ask for.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The name to allow (or an address when the check named one).
    pub host: String,
    /// The destination port; `None` for a DNS name that is only resolved.
    pub port: Option<u16>,
    /// The transport to allow.
    pub protocol: Protocol,
    /// Which way the connection goes.
    pub direction: Direction,
    /// What the endpoint is for: the names of the checks that use it.
    pub purpose: String,
    /// `None` for the forward proxy itself.
    pub role: Option<Role>,
    /// Whether the node needs it (a required endpoint) or only may use it.
    pub required: bool,
    /// The proxy the connection goes through (then the proxy, not this node's firewall, must
    /// allow it), without credentials.
    pub proxy: Option<String>,
    /// The addresses the name resolves to now: for reference; allow the name.
    pub addresses_now: Vec<IpAddr>,
    /// Why there are no current addresses (`nxdomain`, `not looked up` …).
    pub addresses_error: Option<String>,
    /// The failure kind of the check, in a list of failed endpoints.
    pub failure: Option<String>,
    /// This host's address toward the destination (firewall rules are source → destination):
    /// the address the OS routes from, or the one a run's connection used.
    pub source: Option<IpAddr>,
}

/// What the network team must allow: one entry per host, port, protocol and direction, with the addresses the names resolve to now.
#[derive(Debug, Clone, Serialize)]
pub struct Allowlist {
    /// The version of this shape (`SCHEMA_VERSION`).
    pub schema_version: u32,
    /// `preflight`.
    pub tool: &'static str,
    /// preflight's version.
    pub version: &'static str,
    /// RFC 3339: when the addresses were resolved.
    pub generated_at: String,
    /// The profiles the list was made from.
    pub profiles: Vec<String>,
    /// What the reader should know about the list (names that did not resolve …).
    pub notes: Vec<String>,
    /// The rules to allow, one per destination.
    pub entries: Vec<Entry>,
}

impl Allowlist {
    fn new(generated_at: String, profiles: Vec<String>, notes: Vec<String>) -> Allowlist {
        Allowlist {
            schema_version: SCHEMA_VERSION,
            tool: "preflight",
            version: env!("CARGO_PKG_VERSION"),
            generated_at,
            profiles,
            notes,
            entries: Vec::new(),
        }
    }

    /// The allowlist of every check the (settled) plan would run, with the addresses resolved
    /// now through `dns` (its timeout bounds each lookup); none looked up without it.
    pub async fn of_plan(plan: &Plan, dns: Option<DnsConfig>, generated_at: String) -> Allowlist {
        let mut list = Allowlist::new(generated_at, plan.profiles.clone(), plan.notes.clone());
        let mut rules = Rules::default();
        let mut proxies_used = Rules::default();
        for spec in &plan.checks {
            if let Some(reason) = &spec.skip {
                list.notes
                    .push(format!("not listed: {} ({reason})", spec.id()));
                continue;
            }
            let route = &spec.route;
            let Some(entry) = entry_of_spec(spec, route.proxy.as_deref()) else {
                continue;
            };
            rules.add(entry);
            if let Some(proxy) = &route.proxy {
                proxies_used.add(entry_of_proxy(proxy, route.reason.as_deref()));
            }
        }
        list.entries = rules.into_entries();
        list.entries.extend(proxies_used.into_entries());
        let servers = dns
            .as_ref()
            .map(|config| crate::probe::dns::configured_servers(config.server));
        resolve(&mut list.entries, dns).await;
        if let Some(servers) = servers
            && list
                .entries
                .iter()
                .any(|e| e.host.parse::<IpAddr>().is_err())
        {
            list.entries
                .extend(servers.iter().map(|(addr, from)| dns_server(*addr, from)));
        }
        for entry in list.entries.iter_mut().filter(|e| e.proxy.is_none()) {
            entry.source = entry
                .addresses_now
                .first()
                .and_then(|ip| source_toward(*ip));
        }
        list.note_sources();
        list
    }

    /// Says what the source addresses are, when the list has any.
    fn note_sources(&mut self) {
        if self.entries.iter().any(|e| e.source.is_some()) {
            self.notes.push("the source is this host's own address toward each destination (the one its route uses); a firewall beyond a NAT gateway or a proxy sees that gateway's or proxy's address instead".to_string());
        }
    }

    /// The allowlist of the checks that failed in `report`, with the addresses they resolved
    /// to in that run.
    pub fn of_failures(report: &Report) -> Allowlist {
        let mut list = Allowlist::new(
            report.started_at.clone(),
            report.profiles.clone(),
            report.notes.clone(),
        );
        let mut rules = Rules::default();
        let mut proxies_used = Rules::default();
        for check in report
            .checks
            .iter()
            .filter(|c| c.path.status == Status::Fail)
        {
            let Some(entry) = entry_of_result(check) else {
                continue;
            };
            rules.add(entry);
            if let Some(proxy) = check.proxy.as_deref().and_then(|p| ProxyUrl::parse(p).ok()) {
                proxies_used.add(entry_of_proxy(&proxy, check.proxy_reason.as_deref()));
            }
        }
        list.entries = rules.into_entries();
        list.entries.extend(proxies_used.into_entries());
        for entry in &mut list.entries {
            if entry.addresses_now.is_empty() && entry.addresses_error.is_none() {
                entry.addresses_error = Some("not resolved in this run".into());
            }
        }
        list.note_sources();
        list
    }
}

/// The rule of a check; `None` for a file finding.
fn entry_of_spec(spec: &CheckSpec, proxy: Option<&ProxyUrl>) -> Option<Entry> {
    let endpoint = &spec.endpoint;
    Some(Entry {
        host: endpoint.host.clone(),
        port: endpoint.port,
        protocol: Protocol::of(endpoint.probe)?,
        direction: direction(endpoint.probe),
        purpose: endpoint.name.clone(),
        role: Some(endpoint.role),
        required: endpoint.required,
        proxy: proxy.map(ToString::to_string),
        addresses_now: spec.ip.into_iter().collect(),
        addresses_error: None,
        failure: None,
        source: None,
    })
}

/// The row of a DNS server the node's lookups need.
fn dns_server(addr: std::net::SocketAddr, from: &str) -> Entry {
    Entry {
        host: addr.ip().to_string(),
        port: Some(addr.port()),
        protocol: Protocol::Dns,
        direction: Direction::Outbound,
        purpose: format!("DNS server ({from}): UDP and TCP"),
        role: None,
        required: true,
        proxy: None,
        addresses_now: vec![addr.ip()],
        addresses_error: None,
        failure: None,
        source: None,
    }
}

/// This host's address toward `ip`, as the OS would route a packet.
fn source_toward(ip: IpAddr) -> Option<IpAddr> {
    crate::probe::tcp::source_toward((ip, 9).into())
}

/// The rule of a failed check; `None` for a file finding.
fn entry_of_result(check: &CheckResult) -> Option<Entry> {
    let mut addresses: Vec<IpAddr> = check.path.addresses.iter().map(|a| a.ip).collect();
    // The address a connection left from, else the one a failed connect would have (the
    // failure says it), else the route's choice now.
    let source = check
        .path
        .addresses
        .iter()
        .find_map(|a| a.local.map(|l| l.ip()))
        .or_else(|| check.path.error.as_ref().and_then(|e| e.source_address))
        .or_else(|| match check.proxy {
            None => addresses.first().and_then(|ip| source_toward(*ip)),
            Some(_) => None,
        });
    if let Some(local) = &check.path.local_dns {
        addresses.extend(&local.addresses);
    }
    Some(Entry {
        host: check.endpoint.host.clone(),
        port: check.endpoint.port,
        protocol: Protocol::of(check.endpoint.probe)?,
        direction: direction(check.endpoint.probe),
        purpose: check.endpoint.name.clone(),
        role: Some(check.endpoint.role),
        required: check.endpoint.required,
        proxy: check.proxy.clone(),
        addresses_now: addresses,
        addresses_error: None,
        failure: check.path.error.as_ref().map(|e| e.kind.to_string()),
        source,
    })
}

/// The proxy itself: this node must reach it.
fn entry_of_proxy(proxy: &ProxyUrl, source: Option<&str>) -> Entry {
    let protocol = match proxy.scheme {
        Scheme::Https => Protocol::Tls,
        Scheme::Http | Scheme::Socks5 | Scheme::Socks5h => Protocol::Tcp,
    };
    let source = source.map_or_else(String::new, |s| format!(" ({s})"));
    Entry {
        host: proxy.host_text(),
        port: Some(proxy.port),
        protocol,
        direction: Direction::Outbound,
        purpose: format!("Forward proxy{source}"),
        role: None,
        required: true,
        proxy: None,
        addresses_now: match proxy.host {
            Host::Ip(ip) => vec![ip],
            Host::Name(_) => Vec::new(),
        },
        addresses_error: None,
        failure: None,
        source: None,
    }
}

fn direction(probe: Probe) -> Direction {
    match probe {
        Probe::Bind => Direction::Inbound,
        _ => Direction::Outbound,
    }
}

/// What makes two entries one rule: host (any case), port, protocol, direction, proxy.
type RuleKey = (String, Option<u16>, Protocol, Direction, Option<String>);

/// Entries merged by rule (host, port, protocol, direction, proxy), in first-seen order; the
/// purposes of merged entries are joined.
#[derive(Default)]
struct Rules {
    order: Vec<Entry>,
    index: BTreeMap<RuleKey, usize>,
}

impl Rules {
    fn add(&mut self, entry: Entry) {
        let key: RuleKey = (
            entry.host.to_ascii_lowercase(),
            entry.port,
            entry.protocol,
            entry.direction,
            entry.proxy.clone(),
        );
        match self.index.get(&key) {
            Some(&at) => {
                let kept = &mut self.order[at];
                if !kept.purpose.split("; ").any(|p| p == entry.purpose) {
                    kept.purpose = format!("{}; {}", kept.purpose, entry.purpose);
                }
                kept.required |= entry.required;
                for ip in entry.addresses_now {
                    if !kept.addresses_now.contains(&ip) {
                        kept.addresses_now.push(ip);
                    }
                }
                if kept.failure.is_none() {
                    kept.failure = entry.failure;
                }
            }
            None => {
                self.index.insert(key, self.order.len());
                self.order.push(entry);
            }
        }
    }

    fn into_entries(self) -> Vec<Entry> {
        self.order
    }
}

/// Fills in the current addresses of every named host, all lookups at once.
async fn resolve(entries: &mut [Entry], dns: Option<DnsConfig>) {
    let named = |e: &Entry| e.addresses_now.is_empty();
    let Some(config) = dns else {
        for entry in entries.iter_mut().filter(|e| named(e)) {
            entry.addresses_error = Some("not looked up: --no-resolve".into());
        }
        return;
    };
    let budget = Budget {
        timeout: config.timeout,
        deadline: Instant::now() + config.timeout * 2,
        connect: None,
    };
    let dns = Arc::new(Dns::new(config));
    let mut lookups = tokio::task::JoinSet::new();
    let hosts: std::collections::BTreeSet<String> = entries
        .iter()
        .filter(|e| named(e))
        .map(|e| e.host.clone())
        .collect();
    for host in hosts {
        let dns = dns.clone();
        lookups.spawn(async move {
            let found = dns.resolve(&host, None, budget).await;
            (host, found.addrs)
        });
    }
    let mut found = BTreeMap::new();
    while let Some(joined) = lookups.join_next().await {
        if let Ok((host, addrs)) = joined {
            found.insert(host, addrs);
        }
    }
    for entry in entries.iter_mut().filter(|e| named(e)) {
        match found.get(&entry.host) {
            Some(Ok(addrs)) => entry.addresses_now.clone_from(addrs),
            Some(Err(failure)) => entry.addresses_error = Some(failure.kind.to_string()),
            None => entry.addresses_error = Some("lookup did not finish".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_and_directions() {
        assert_eq!(Protocol::of(Probe::Https), Some(Protocol::Tls));
        assert_eq!(Protocol::of(Probe::Ws), Some(Protocol::Tcp));
        assert_eq!(Protocol::of(Probe::Udp), Some(Protocol::Udp));
        assert_eq!(Protocol::of(Probe::File), None);
        assert_eq!(direction(Probe::Bind), Direction::Inbound);
        assert_eq!(direction(Probe::Tls), Direction::Outbound);
    }

    fn entry(host: &str, purpose: &str, required: bool) -> Entry {
        Entry {
            host: host.into(),
            port: Some(443),
            protocol: Protocol::Tls,
            direction: Direction::Outbound,
            purpose: purpose.into(),
            role: Some(Role::Api),
            required,
            proxy: None,
            addresses_now: Vec::new(),
            addresses_error: None,
            failure: None,
            source: None,
        }
    }

    #[test]
    fn one_rule_per_host_port_protocol_direction_and_proxy() {
        let mut rules = Rules::default();
        rules.add(entry("cloud.konghq.com", "Konnect platform", false));
        rules.add(entry("Cloud.Konghq.com", "Konnect platform", true));
        rules.add(entry("cloud.konghq.com", "KIC platform", false));
        rules.add(entry("eu.api.konghq.com", "Regional API", false));
        let mut proxied = entry("cloud.konghq.com", "Konnect platform", false);
        proxied.proxy = Some("http://proxy:3128".into());
        rules.add(proxied);
        let entries = rules.into_entries();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].purpose, "Konnect platform; KIC platform");
        assert!(entries[0].required);
        assert_eq!(entries[1].host, "eu.api.konghq.com");
        assert_eq!(entries[2].proxy.as_deref(), Some("http://proxy:3128"));
    }
}
