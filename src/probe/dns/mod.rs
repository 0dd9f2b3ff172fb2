//! Name resolution with hickory-resolver: the system's resolv.conf and /etc/hosts, or
//! `--dns-server`; `--resolve` pins first; each host resolved once however many checks use it.
//! All hickory calls live in this module.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use tokio::sync::OnceCell;
use tokio::time::Instant;

mod host;
mod servers;

use host::HostRules;

use servers::Diagnosis;

use super::Budget;
use crate::failure::{Cause, Failure, FailureKind, Peer, Phase};

/// Which address families to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// IPv4 and IPv6 addresses.
    #[default]
    Any,
    /// IPv4 addresses only (`--ipv4`).
    V4,
    /// IPv6 addresses only (`--ipv6`).
    V6,
}

impl Family {
    /// Whether `ip` is of this family.
    pub fn allows(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// A `--resolve HOST:PORT:ADDR[,ADDR]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The name pinned.
    pub host: String,
    /// The port the pin is for.
    pub port: u16,
    /// The addresses used for it instead of DNS.
    pub addrs: Vec<IpAddr>,
}

/// How the resolver is set up.
#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    /// `--dns-server`; `None` means the system's configuration.
    pub server: Option<SocketAddr>,
    /// The address families to ask for.
    pub family: Family,
    /// `--resolve` pins: names answered without DNS.
    pub pins: Vec<Pin>,
    /// The per-query timeout handed to the resolver (the phase timeout).
    pub timeout: Duration,
}

/// Where a check's addresses came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// The target was an IP address.
    Literal,
    /// `--resolve`.
    Pinned,
    /// A DNS lookup.
    Dns,
    /// `/etc/hosts`, read as glibc reads it (`host`).
    HostsFile,
}

/// The outcome of resolving one host.
#[derive(Debug, Clone)]
pub(crate) struct Resolution {
    pub addrs: Result<Vec<IpAddr>, Failure>,
    /// The aliases (CNAME records) the name led through, in order.
    pub cnames: Vec<String>,
    /// The shortest time to live of the answer's address records, in seconds.
    pub ttl: Option<u32>,
    pub source: Source,
    /// Time spent in the lookup (zero for literals and pins).
    pub elapsed: Duration,
    /// The `/etc/hosts` line that answered (`Source::HostsFile`).
    pub hosts_line: Option<usize>,
    /// The longer name that answered when the host's search list expanded the name, and the
    /// search domain it added.
    pub expanded: Option<(String, String)>,
}

/// A DNS answer for one host.
struct Answer {
    addrs: Vec<IpAddr>,
    cnames: Vec<String>,
    ttl: Option<u32>,
    /// The name the answer is for, as the resolver asked it.
    name: String,
}

/// The shared resolver: built on first use, one lookup per host.
pub(crate) struct Dns {
    config: DnsConfig,
    resolver: OnceCell<Result<TokioResolver, String>>,
    /// What each configured server does with a query, asked once beside the first lookup.
    health: OnceCell<Diagnosis>,
    /// The servers a lookup asks, said once for `--verbose`.
    asked: std::sync::OnceLock<String>,
    /// The host's own rules (`/etc/nsswitch.conf`, `/etc/hosts`), when no `--dns-server`.
    rules: std::sync::OnceLock<HostRules>,
    lookups: Mutex<HashMap<String, Arc<OnceCell<Resolution>>>>,
}

impl Dns {
    pub(crate) fn new(config: DnsConfig) -> Self {
        Dns {
            config,
            resolver: OnceCell::new(),
            health: OnceCell::new(),
            asked: std::sync::OnceLock::new(),
            rules: std::sync::OnceLock::new(),
            lookups: Mutex::new(HashMap::new()),
        }
    }

    /// The addresses of `host` for a check on `port`, from a pin, or DNS (once per host).
    pub(crate) async fn resolve(
        &self,
        host: &str,
        port: Option<u16>,
        budget: Budget,
    ) -> Resolution {
        if let Some(pin) = self
            .config
            .pins
            .iter()
            .find(|pin| pin.host == host && port.is_none_or(|p| p == pin.port))
        {
            let addrs: Vec<IpAddr> = pin
                .addrs
                .iter()
                .copied()
                .filter(|ip| self.config.family.allows(ip))
                .collect();
            let addrs = if addrs.is_empty() {
                Err(Failure::new(
                    FailureKind::NoRecords,
                    Phase::Dns,
                    format!("--resolve gives {host} no address of the family asked for"),
                    peer(host, port),
                ))
            } else {
                Ok(addrs)
            };
            return Resolution {
                addrs,
                cnames: Vec::new(),
                ttl: None,
                source: Source::Pinned,
                elapsed: Duration::ZERO,
                hosts_line: None,
                expanded: None,
            };
        }
        // The host's rules, as getaddrinfo follows them: a name in /etc/hosts is answered from
        // it, every family at once, before (or, when nsswitch.conf says so, after) DNS.
        let rules = self.rules();
        if let Some(rules) = rules
            && rules.files_first
            && let Some(pinned) = self.hosts_answer(rules, host)
        {
            return pinned;
        }
        let cell = {
            let mut lookups = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
            lookups.entry(host.to_string()).or_default().clone()
        };
        let resolution = cell
            .get_or_init(|| self.lookup(host, port, budget))
            .await
            .clone();
        match (&resolution.addrs, rules) {
            (Err(failure), Some(rules))
                // nsswitch.conf's default actions: DNS that says no (NOTFOUND) or cannot be
                // asked (UNAVAIL, TRYAGAIN) continues to the file; only an answer returns.
                if !rules.files_first
                    && !matches!(failure.kind, FailureKind::DnsBlocked | FailureKind::Deadline) =>
            {
                self.hosts_answer(rules, host).unwrap_or(resolution)
            }
            _ => resolution,
        }
    }

    /// The host's rules, read once; `None` with `--dns-server`, which is asked as dig would.
    fn rules(&self) -> Option<&HostRules> {
        match self.config.server {
            Some(_) => None,
            None => Some(self.rules.get_or_init(HostRules::read)),
        }
    }

    /// The name's answer from `/etc/hosts`, of the families asked for; `None` when the file
    /// gives it none of them (getaddrinfo then asks DNS).
    fn hosts_answer(&self, rules: &HostRules, host: &str) -> Option<Resolution> {
        let entry = rules.pinned(host)?;
        let addrs: Vec<IpAddr> = entry
            .addrs
            .iter()
            .copied()
            .filter(|ip| self.config.family.allows(ip))
            .collect();
        (!addrs.is_empty()).then(|| Resolution {
            addrs: Ok(addrs),
            cnames: Vec::new(),
            ttl: None,
            source: Source::HostsFile,
            elapsed: Duration::ZERO,
            hosts_line: Some(entry.line),
            expanded: None,
        })
    }

    /// `/etc/resolv.conf`'s `ndots` (1 when it says none).
    pub(crate) fn ndots(&self) -> usize {
        self.rules().map_or(1, |rules| rules.ndots)
    }

    /// The name's addresses from DNS alone (no `/etc/hosts`, not cached): what a stale pin is
    /// compared with.
    pub(crate) async fn dns_answer(&self, host: &str, budget: Budget) -> Option<Vec<IpAddr>> {
        match budget.limit(self.query(host, None)).await {
            Ok(Ok(answer)) => Some(answer.addrs),
            _ => None,
        }
    }

    async fn lookup(&self, host: &str, port: Option<u16>, budget: Budget) -> Resolution {
        let start = Instant::now();
        let mut aliases = Vec::new();
        let mut ttl = None;
        let mut answered = None;
        let query = budget.limit(self.query(host, port));
        tokio::pin!(query);
        // A lookup still going after a moment (not one from /etc/hosts, nor a working server)
        // has the servers asked, once per run, what they do with a query: when none can be
        // used, the lookup ends now, naming them, rather than at its timeout.
        let unusable = async {
            tokio::time::sleep(DIAGNOSE_AFTER).await;
            match budget.limit(self.diagnosis()).await {
                Ok(diagnosis) if diagnosis.all_down() => diagnosis,
                _ => std::future::pending().await,
            }
        };
        let addrs = tokio::select! {
            biased;
            result = &mut query => match result {
                Ok(result) => result.map(|answer| {
                    aliases = answer.cnames;
                    ttl = answer.ttl;
                    answered = Some(answer.name);
                    answer.addrs
                }),
                Err(elapsed) => Err(elapsed.failure(
                    Phase::Dns,
                    &format!("no DNS answer for {host}"),
                    peer(host, port),
                )),
            },
            diagnosis = unusable => Err(Failure::new(
                FailureKind::DnsError,
                Phase::Dns,
                format!("no DNS server can be asked for {host}: {diagnosis}"),
                peer(host, port),
            )),
        };
        let addrs = match addrs {
            Err(failure) if unanswered(&failure) => {
                Err(self.with_servers(failure, host, port, budget).await)
            }
            other => other,
        };
        let expanded = match (self.rules(), answered) {
            (Some(rules), Some(name)) => rules
                .expansion(host, &name)
                .map(|domain| (name.trim_end_matches('.').to_string(), domain.to_string())),
            _ => None,
        };
        Resolution {
            addrs,
            cnames: aliases,
            ttl,
            source: Source::Dns,
            elapsed: start.elapsed(),
            hosts_line: None,
            expanded,
        }
    }

    /// What each configured server does with a query, asked once per run.
    async fn diagnosis(&self) -> &Diagnosis {
        self.health
            .get_or_init(|| {
                let servers = servers::configured(self.config.server);
                let wait = self.config.timeout.saturating_sub(DIAGNOSE_AFTER);
                servers::diagnose(servers, wait.max(DIAGNOSE_AFTER))
            })
            .await
    }

    /// A lookup that got no answer says which servers were asked and what each does.
    /// When a server that answers other queries truncates this name's answer and its TCP
    /// port is closed, that is the cause.
    async fn with_servers(
        &self,
        mut failure: Failure,
        host: &str,
        port: Option<u16>,
        budget: Budget,
    ) -> Failure {
        let Ok(diagnosis) = budget.limit(self.diagnosis()).await else {
            return failure;
        };
        if diagnosis.0.is_empty() {
            return failure;
        }
        for (server, state) in &diagnosis.0 {
            if *state != servers::State::Answers {
                continue;
            }
            // Each of its two waits takes half of the one more timeout it is given.
            let wait = self.config.timeout / 2;
            let probe = servers::truncated_without_tcp(server.addr, host, wait);
            if let Ok(Some(tcp)) = budget.limit(probe).await {
                let named = server.addr.to_string();
                failure.message = format!(
                    "{} answers {host} over UDP with a truncated answer (too large for one packet), and its TCP port {}, which the full answer needs, cannot be reached: {tcp}",
                    named,
                    server.addr.port()
                );
                let facts = crate::failure::Facts {
                    proxy: Some(&named),
                    ..Default::default()
                };
                return failure.because(Cause::DnsTcpBlocked, peer(host, port), facts);
            }
        }
        failure.message = format!("{}: {diagnosis}", failure.message);
        failure
    }

    async fn query(&self, host: &str, port: Option<u16>) -> Result<Answer, Failure> {
        let resolver = self
            .resolver
            .get_or_init(|| async { self.build_resolver() })
            .await
            .as_ref()
            .map_err(|reason| {
                Failure::new(
                    FailureKind::DnsError,
                    Phase::Dns,
                    reason.clone(),
                    peer(host, port),
                )
            })?;
        match resolver.lookup_ip(host).await {
            Ok(lookup) => {
                let addrs: Vec<IpAddr> = lookup
                    .iter()
                    .filter(|ip| self.config.family.allows(ip))
                    .collect();
                if addrs.is_empty() {
                    Err(Failure::new(
                        FailureKind::NoRecords,
                        Phase::Dns,
                        format!("{host} has no {} records", self.record_types()),
                        peer(host, port),
                    ))
                } else if addrs.iter().all(IpAddr::is_unspecified) {
                    Err(self.blocked(host, port, &addrs))
                } else {
                    let cnames = lookup
                        .as_lookup()
                        .answers()
                        .iter()
                        .filter_map(|record| match &record.data {
                            hickory_resolver::proto::rr::RData::CNAME(alias) => {
                                Some(alias.0.to_string().trim_end_matches('.').to_string())
                            }
                            _ => None,
                        })
                        .collect();
                    let ttl = lookup.as_lookup().answers().iter().map(|r| r.ttl).min();
                    let name = lookup.query().name().to_string();
                    Ok(Answer {
                        addrs,
                        cnames,
                        ttl,
                        name,
                    })
                }
            }
            Err(err) => Err(self.classify(host, port, &err)),
        }
    }

    /// The servers a lookup asks, for `--verbose` (read once per run).
    pub(crate) fn asked(&self) -> &str {
        self.asked.get_or_init(|| self.servers_text())
    }

    fn servers_text(&self) -> String {
        let servers = servers::configured(self.config.server);
        let named: Vec<String> = servers
            .iter()
            .map(|s| format!("{} ({})", s.addr, s.from))
            .collect();
        match (self.config.server, named.is_empty()) {
            (Some(_), _) => named.join(", "),
            (None, true) => "/etc/hosts and the system's resolver".to_string(),
            (None, false) => format!("/etc/hosts, then {}", named.join(", ")),
        }
    }

    /// An answer of only 0.0.0.0 or `::`: how DNS filters (Pi-hole, RPZ policies, secure web
    /// gateways) answer for the names they block.
    fn blocked(&self, host: &str, port: Option<u16>, addrs: &[IpAddr]) -> Failure {
        let mut shown: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        shown.dedup();
        let by = match self.config.server {
            Some(addr) => format!("DNS server {addr}"),
            None => "this host's resolver".to_string(),
        };
        Failure::new(
            FailureKind::DnsBlocked,
            Phase::Dns,
            format!(
                "{by} answers {host} with {}, an address that leads nowhere: a DNS filter blocks the name",
                shown.join(" and ")
            ),
            peer(host, port),
        )
    }

    fn record_types(&self) -> &'static str {
        match self.config.family {
            Family::Any => "A or AAAA",
            Family::V4 => "A",
            Family::V6 => "AAAA",
        }
    }

    fn classify(&self, host: &str, port: Option<u16>, err: &NetError) -> Failure {
        let server = match self.config.server {
            Some(addr) => format!("DNS server {addr}"),
            None => "the system's DNS servers".to_string(),
        };
        let mut cause = None;
        let (kind, message) = match err {
            NetError::Dns(DnsError::NoRecordsFound(none))
                if none.response_code == ResponseCode::NXDomain =>
            {
                (
                    FailureKind::Nxdomain,
                    format!("{host} does not exist (NXDOMAIN from {server})"),
                )
            }
            NetError::Dns(DnsError::NoRecordsFound(_)) => (
                FailureKind::NoRecords,
                format!("{host} exists but has no {} records", self.record_types()),
            ),
            NetError::Dns(DnsError::ResponseCode(code)) => (
                FailureKind::DnsError,
                format!("{server} answered {code} for {host}"),
            ),
            NetError::Timeout => (
                FailureKind::DnsTimeout,
                format!("{server} did not answer for {host}"),
            ),
            // The resolver's own words ("no connections available") name nothing a user can
            // act on: the servers and what each does are added to this.
            _ => {
                cause = Some(Cause::DnsNoAnswer);
                (
                    FailureKind::DnsError,
                    format!("no DNS answer for {host} from {server}"),
                )
            }
        };
        let failure = Failure::new(kind, Phase::Dns, message, peer(host, port));
        match cause {
            Some(cause) => failure.because(cause, peer(host, port), Default::default()),
            None => failure,
        }
    }

    fn build_resolver(&self) -> Result<TokioResolver, String> {
        let mut builder = match self.config.server {
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| {
                    let why = crate::error::without_os_error(&e.to_string());
                    let why = why.strip_prefix("io error: ").unwrap_or(&why).to_string();
                    format!("cannot read the system's DNS configuration (/etc/resolv.conf): {why}; give a server with --dns-server")
                })?,
        };
        let options = builder.options_mut();
        // The phase timeout bounds the whole lookup; one attempt per server keeps it honest.
        options.attempts = 1;
        options.timeout = self.config.timeout;
        options.cache_size = 0;
        options.ip_strategy = match self.config.family {
            Family::Any => LookupIpStrategy::Ipv4AndIpv6,
            Family::V4 => LookupIpStrategy::Ipv4Only,
            Family::V6 => LookupIpStrategy::Ipv6Only,
        };
        // An explicit server is asked directly, as dig @server would; without one, /etc/hosts
        // is read here (`host`), in the order nsswitch.conf gives, not by the resolver.
        options.use_hosts_file = ResolveHosts::Never;
        builder.build().map_err(|e| {
            format!(
                "cannot set up the DNS resolver: {}",
                crate::error::without_os_error(&e.to_string())
            )
        })
    }
}

/// The DNS servers a lookup asks (`--dns-server`, or those of /etc/resolv.conf), and where
/// each was configured.
pub(crate) fn configured_servers(flag: Option<SocketAddr>) -> Vec<(SocketAddr, &'static str)> {
    servers::configured(flag)
        .into_iter()
        .map(|s| (s.addr, s.from))
        .collect()
}

/// How long a lookup runs before the servers are asked what they do with a query.
const DIAGNOSE_AFTER: Duration = Duration::from_millis(200);

/// A failure that got no answer from any server (not an answer that said no).
fn unanswered(failure: &Failure) -> bool {
    failure.kind == FailureKind::DnsTimeout || failure.cause == Cause::DnsNoAnswer
}

fn peer(host: &str, port: Option<u16>) -> Peer<'_> {
    Peer {
        host,
        port,
        ip: None,
    }
}
