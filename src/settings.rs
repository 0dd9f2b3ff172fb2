//! Settings: the checked, typed form of the command line that the runner and renderers use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{AllowlistArgs, CheckArgs, Proxying, Resolving, Selection};
use crate::error::InputError;
use crate::kongconf::{self, KongConf, KongPlan};
use crate::plan::{self, Overrides, Plan};
use crate::probe::dns::{DnsConfig, Family, Pin};
use crate::probe::tls::{TlsSettings, load_certs, load_identity};
use crate::profile::{self, Assignments, Role};
use crate::render::Format;
use crate::route::{ProxyConfig, ProxyFlags};
use crate::runner::RunConfig;
use crate::sanitize::redact;
use crate::target::Probe;
use crate::target::{Host, Target, parse_port};

/// The default connections in flight, when the open-file limit allows it.
pub const DEFAULT_CONCURRENCY: u64 = 512;

/// The most checks of a run that trades memory for time: its checks' JSON made as they finish
/// and held until the report is written, and its freed pages kept (about 7 MB more at 4,096
/// checks); a larger run streams its report as before and gives pages back, so that 10,000
/// checks stay under 50 MB (BENCHMARKS.md, measurements 1 and 5).
pub const SMALL_RUN: usize = 4_096;

/// The checked command line of `check` and `serve`: what the engine runs with, and how the results are written.
#[derive(Debug)]
pub struct Settings {
    /// What the engine runs a plan with.
    pub run: RunConfig,
    /// `--strict`: warnings fail the run.
    pub strict: bool,
    /// `--format`.
    pub format: Format,
    /// `--output`: where the report goes.
    pub output: Option<PathBuf>,
    /// `--allowlist-failed`: where to write the allowlist of the failed endpoints.
    pub allowlist_failed: Option<PathBuf>,
    /// `--json`, `--junit`, `--markdown`: more files the same report is written to, each in
    /// its format, with the flag that named it.
    pub also: Vec<(Format, PathBuf, &'static str)>,
    /// `--watch`: the interval between rounds.
    pub watch: Option<Duration>,
    /// `--count`: the rounds of a watch.
    pub count: Option<u32>,
    /// What the user should hear on stderr before the run (also in the report's notes).
    pub warnings: Vec<String>,
    /// `--verbose`: trace each check's steps on stderr.
    pub verbose: bool,
    /// `--ip-list`: the addresses a firewall allowlists, to name those DNS gives beyond them.
    pub ip_list: Option<crate::ip_list::IpList>,
    /// `--discover-proxy`: after the run, name the proxy settings this host keeps and look
    /// for a WPAD proxy auto-config file.
    pub discover_proxy: bool,
}

impl Settings {
    /// Checks every flag and builds the plan, settled; nothing touches the network.
    pub fn from_args(args: &CheckArgs) -> Result<(Settings, Plan), InputError> {
        let inspect = crate::kongconf::Inspect {
            warn_days: i64::from(args.cert_warn_days),
            now: time::OffsetDateTime::now_utc(),
        };
        let (mut plan, kong) = plan_of(&args.selection, family(&args.resolving), Some(inspect))?;
        blocked(&mut plan, &kong.blocked, args);
        by_version(&mut plan, &args.kong_version);
        let mut dns = dns_config(&args.resolving, args.timeout)?;
        kong_resolver(&mut dns, &kong, &mut plan);
        let tls = tls_settings(args, &kong)?;
        // Said before any connection: the server will refuse this certificate. A kong.conf's
        // own certificate has its finding instead.
        let identity_note = tls
            .identity
            .as_deref()
            .filter(|_| args.client_cert.is_some())
            .and_then(|identity| {
                let dates = crate::probe::tls::client_cert_dates(identity).map(|(_, words)| words);
                let usage = crate::probe::tls::client_cert_usage(identity)
                    .map(|words| format!("{words}: a server that checks the purpose refuses it"));
                match (dates, usage) {
                    (Some(dates), Some(usage)) => Some(format!("{dates}; {usage}")),
                    (dates, usage) => dates.or(usage),
                }
            });
        let overrides = overrides(args)?;
        let proxies = proxies(&args.proxying)?;
        if args.compare_direct && !proxies.any() {
            return Err(InputError::Usage {
                flag: "--compare-direct",
                reason: "no proxy is configured to compare with (--proxy, https_proxy, http_proxy or all_proxy)".into(),
            });
        }
        if args.watch.is_some() && !matches!(args.format, Format::Human | Format::Json) {
            return Err(InputError::Usage {
                flag: "--watch",
                reason: "a watch prints changes as text, or JSON Lines: use --format human or json"
                    .into(),
            });
        }
        let (concurrency, mut warnings) = concurrency(args.concurrency, &mut plan);
        if let Some(note) = identity_note {
            plan.notes.push(note.clone());
            warnings.push(note);
        }
        plan.settle(&overrides, &proxies);
        let ip_list = args
            .ip_list
            .as_deref()
            .map(crate::ip_list::IpList::load)
            .transpose()?;
        if let Some(list) = &ip_list {
            let (added, notes) = list.checks(&plan.checks);
            plan.checks.extend(added);
            plan.notes.extend(notes);
        }
        let settings = Settings {
            run: RunConfig {
                timeout: args.timeout,
                connect_timeout: args.connect_timeout,
                deadline: args.deadline,
                concurrency,
                dns,
                tls,
                no_hop_trace: args.no_trace,
                node: node_name(args.node.as_deref())?,
                // A one-off run that writes JSON (`--format json`, to stdout or --output; --json).
                json_pieces: args.watch.is_none()
                    && plan.checks.len() <= SMALL_RUN
                    && (args.format == Format::Json || args.json_file.is_some()),
            },
            strict: args.strict,
            format: args.format,
            output: args.output.clone(),
            allowlist_failed: args.allowlist_failed.clone(),
            also: [
                (Format::Json, &args.json_file, "--json"),
                (Format::Junit, &args.junit_file, "--junit"),
                (Format::Markdown, &args.markdown_file, "--markdown"),
            ]
            .into_iter()
            .filter_map(|(format, path, flag)| Some((format, path.clone()?, flag)))
            .collect(),
            watch: args.watch,
            count: args.count,
            warnings,
            verbose: args.verbose,
            ip_list,
            discover_proxy: args.discover_proxy,
        };
        Ok((settings, plan))
    }
}

/// `--node`, which must be one printable line, or this host's name.
fn node_name(given: Option<&str>) -> Result<String, InputError> {
    match given {
        Some(name) if name.trim().is_empty() || name.chars().any(char::is_control) => {
            Err(InputError::Usage {
                flag: "--node",
                reason: "must be a name on one line".into(),
            })
        }
        Some(name) => Ok(name.trim().to_string()),
        None => Ok(nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_default()),
    }
}

/// The roots, client certificate and pinned certificate of every handshake: from the flags,
/// and from a kong.conf where the flags leave them out.
fn tls_settings(args: &CheckArgs, kong: &KongPlan) -> Result<TlsSettings, InputError> {
    let certs = |path: &PathBuf, what: &str| {
        load_certs(path).map_err(|reason| InputError::File {
            path: path.clone(),
            reason: format!("{what} {reason}"),
        })
    };
    let extra_roots = match &args.ca_file {
        Some(path) => certs(path, "--ca-file")?,
        None => Vec::new(),
    };
    // What the node's files hold was read once, when they were judged.
    let kong_roots = kong.material.trust.clone();
    // The flags win over the node's configuration.
    let identity = match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => {
            Some(load_identity(cert, key, ("--client-cert", "--client-key"))?)
        }
        _ => kong.material.identity.clone(),
    };
    let pinned = kong.material.pinned.clone();
    Ok(TlsSettings {
        extra_roots,
        kong_roots,
        ca_file: args.ca_file.as_ref().map(|p| p.display().to_string()),
        identity,
        warn_days: i64::from(args.cert_warn_days),
        pinned,
    })
}

/// What the flags set for every check, checked.
fn overrides(args: &CheckArgs) -> Result<Overrides, InputError> {
    if let Some(name) = &args.server_name {
        rustls::pki_types::ServerName::try_from(name.as_str()).map_err(|_| {
            InputError::flag("--server-name", name, "not a host name or IP address")
        })?;
    }
    if let Some(bad) = args.alpn.iter().find(|p| p.is_empty() || p.len() > 255) {
        return Err(InputError::flag(
            "--alpn",
            bad,
            "each protocol is 1 to 255 bytes, e.g. h2,http/1.1",
        ));
    }
    if let Some(payload) = &args.udp_payload
        && payload.len() > MAX_UDP_PAYLOAD
    {
        return Err(InputError::flag(
            "--udp-payload",
            format!("({} bytes)", payload.len()),
            "a UDP datagram holds at most 65,507 bytes",
        ));
    }
    Ok(Overrides {
        server_name: args.server_name.clone(),
        alpn: args.alpn.clone(),
        allow_private_ca: args.allow_private_ca,
        udp_payload: args.udp_payload.clone(),
        expect: args.expect_status.clone().unwrap_or_default(),
        compare_direct: args.compare_direct,
        no_upgrade: args.no_upgrade,
        client_cert_given: args.client_cert.is_some() && args.client_key.is_some(),
        cluster_path: cluster_path(&args.kong_version),
    })
}

/// The path and query a Kong data plane opens its control-plane WebSocket with
/// (kong/clustering/data_plane.lua): a node id made for this run, this host's name marked as
/// preflight's, and the Kong version to announce.
fn cluster_path(version: &str) -> String {
    let mut id = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let node_id = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .collect();
    let version: String = version
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    format!("/v1/outlet?node_id={node_id}&node_hostname=preflight-{host}&node_version={version}")
}

/// `--concurrency`, or as many connections as the open-file limit allows up to the default;
/// when the limit holds the run back, a note (in the plan, and to say on stderr).
fn concurrency(flag: Option<u32>, plan: &mut Plan) -> (usize, Vec<String>) {
    // Raised whatever the flag says: the run's sockets count against it either way.
    let (limit, room) = raise_open_file_limit();
    if let Some(n) = flag {
        return (n as usize, Vec::new());
    }
    let chosen = room.clamp(1, DEFAULT_CONCURRENCY) as usize;
    if chosen >= DEFAULT_CONCURRENCY as usize || chosen >= plan.checks.len() {
        return (chosen, Vec::new());
    }
    let note = format!(
        "the open-file limit (ulimit -n {limit}) allows {chosen} connection{} at once, not {DEFAULT_CONCURRENCY}: the {} checks run in turns; raise the limit for a faster run",
        if chosen == 1 { "" } else { "s" },
        plan.checks.len()
    );
    plan.notes.push(note.clone());
    (chosen, vec![note])
}

/// What `preflight allowlist` needs: the plan, settled (each check's route chosen), and how to
/// resolve.
pub fn allowlist_inputs(args: &AllowlistArgs) -> Result<(Plan, DnsConfig), InputError> {
    let (mut plan, _) = plan_of(&args.selection, family(&args.resolving), None)?;
    let dns = dns_config(&args.resolving, args.timeout)?;
    plan.settle(&Overrides::default(), &proxies(&args.proxying)?);
    Ok((plan, dns))
}

fn family(args: &Resolving) -> Family {
    match (args.ipv4, args.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    }
}

/// What a `/probe` asks for: `module` is a probe (`tls`) with `target` what follows `://`, or a
/// built-in profile's name with its variables (`region=us`) as the other parameters.
#[derive(Debug, Default)]
pub struct ProbeQuery {
    /// The probe (`tcp`, `tls` …, `kong-cluster`) or a built-in profile.
    pub module: String,
    /// What follows `://` in a target.
    pub target: Option<String>,
    /// A profile's variables.
    pub variables: Vec<(String, String)>,
}

/// The planner of `serve`'s `/probe`: one target (`tls` and `host:443`), or a built-in profile
/// with the variables of the query after serve's own `--set`, made into a plan settled with
/// the flags of the serve itself (proxies, server name, ALPN …).
pub fn probe_planner(
    args: &CheckArgs,
) -> Result<impl Fn(&ProbeQuery) -> Result<Plan, String> + Send + Sync + 'static, InputError> {
    let overrides = overrides(args)?;
    let proxies = proxies(&args.proxying)?;
    let family = family(&args.resolving);
    let profiles = profile::builtins()?;
    let serve_set = args.selection.set.clone();
    Ok(move |query: &ProbeQuery| {
        let mut plan = match profiles.iter().find(|p| p.name == query.module) {
            Some(profile) => {
                if query.target.is_some() {
                    return Err(format!(
                        "the module {} is a profile: give its variables as parameters (region=us), not target",
                        profile.name
                    ));
                }
                let mut set = serve_set.clone();
                set.extend(query.variables.iter().map(|(k, v)| format!("{k}={v}")));
                let set = Assignments::parse(&set).map_err(|e| e.to_string())?;
                plan::build(std::slice::from_ref(profile), &set, &[], &[], family, &[])
            }
            None => {
                let Some(target) = &query.target else {
                    return Err("give target and module: /probe?target=HOST:PORT&module=tls".into());
                };
                // A data plane's handshake is TLS to the cluster port, then the upgrade.
                let kong_cluster = query.module == Probe::KongCluster.as_str();
                let scheme = match kong_cluster {
                    true => Probe::Tls.as_str(),
                    false => query.module.as_str(),
                };
                let targets =
                    target_of(&format!("{scheme}://{target}")).map_err(|e| e.to_string())?;
                let mut plan =
                    plan::build(&[], &Assignments::default(), &targets, &[], family, &[]);
                if let (true, Ok(plan)) = (kong_cluster, &mut plan) {
                    for spec in &mut plan.checks {
                        spec.endpoint.probe = Probe::KongCluster;
                        spec.endpoint.id = format!("{}://{target}", Probe::KongCluster.as_str());
                    }
                }
                plan
            }
        }
        .map_err(|e| e.to_string())?;
        plan.settle(&overrides, &proxies);
        Ok(plan)
    })
}

/// What the node's Kong version (`--kong-version`) does not have: RPC came with Kong 3.7
/// (kong/clustering/rpc/, `cluster_rpc` in kong/templates/kong_defaults.lua of 3.7.0), so an
/// older node opens no `/v2/outlet` whatever `cluster_rpc` says.
fn by_version(plan: &mut Plan, version: &str) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
        return;
    };
    if (major, minor) >= (3, 7) {
        return;
    }
    let before = plan.checks.len();
    plan.checks
        .retain(|c| c.id() != "kong.conf.control-plane-rpc");
    if plan.checks.len() < before {
        plan.notes.push(format!(
            "cluster_rpc is set, but Kong {version} (--kong-version) has no RPC (it came with 3.7): no /v2/outlet check"
        ));
    }
}

/// Skips the cluster checks of a kong.conf that cannot run as the node would (its certificate
/// cannot be used, or Kong would not start with its proxy setting), unless a flag gives what
/// is missing: `--client-cert`, `--proxy`.
fn blocked(plan: &mut Plan, blocked: &[crate::kongconf::Blocked], args: &CheckArgs) {
    use crate::kongconf::Blocked;
    let reason = blocked.iter().find_map(|b| match b {
        Blocked::Identity(why) if args.client_cert.is_none() => Some(why),
        Blocked::Proxy(why) if args.proxying.proxy.is_none() => Some(why),
        _ => None,
    });
    let Some(reason) = reason else {
        return;
    };
    let cluster = ["kong.conf.control-plane", "kong.conf.telemetry"];
    for spec in plan.checks.iter_mut().filter(|s| cluster.contains(&s.id())) {
        spec.skip = Some(reason.clone());
    }
}

/// The checks of the targets, profiles and kong.conf, and what the kong.conf adds beyond them
/// (its notes are already in the plan).
fn plan_of(
    args: &Selection,
    family: Family,
    inspect: Option<crate::kongconf::Inspect>,
) -> Result<(Plan, KongPlan), InputError> {
    let targets = targets_of(args)?;
    let profiles = args
        .profiles
        .iter()
        .map(|p| profile::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let only = args
        .only
        .iter()
        .map(|r| {
            Role::parse(r.trim()).ok_or_else(|| {
                let roles: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                InputError::flag(
                    "--only",
                    r,
                    format!("unknown role; roles: {}", roles.join(", ")),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let set = Assignments::parse(&args.set)?;
    let env = |name: &str| std::env::var(name).ok();
    let conf = match (&args.kong_conf, &args.kong_values) {
        (Some(path), _) => Some(KongConf::load(path, env)?),
        (None, Some(path)) => Some(KongConf::from_values(path, env)?),
        (None, None) => None,
    };
    let kong = conf
        .map(|conf| kongconf::plan(&conf, inspect))
        .transpose()?
        .unwrap_or_default();
    let mut plan = plan::build(&profiles, &set, &targets, &only, family, &kong.checks)?;
    plan.notes.extend(kong.notes.iter().cloned());
    Ok((plan, kong))
}

/// The most targets one run takes (after ranges are expanded): far above a fleet sweep, and a
/// bound on the memory a typo such as `:1-65535` on many hosts can take.
const MAX_TARGETS: usize = 100_000;

/// One target as given on the command line, a range expanded; the error shows it without
/// any credentials it holds.
pub fn target_of(text: &str) -> Result<Vec<Target>, InputError> {
    Target::expand(text).map_err(|reason| InputError::Target {
        target: redact(text),
        reason,
    })
}

/// The command line's targets, then `--targets-file`'s, with port ranges expanded.
fn targets_of(args: &Selection) -> Result<Vec<Target>, InputError> {
    let mut targets = Vec::new();
    let too_many = || InputError::Usage {
        flag: "TARGET",
        reason: format!("more than {MAX_TARGETS} targets (port ranges count one per port)"),
    };
    for text in &args.targets {
        let more = target_of(text)?;
        targets.extend(more);
        if targets.len() > MAX_TARGETS {
            return Err(too_many());
        }
    }
    let Some(path) = &args.targets_file else {
        return Ok(targets);
    };
    // `-` is standard input, read through its device so that the same size cap applies; a
    // FIFO or a device is refused (files::open), so that nothing is read for ever.
    let source = crate::files::stdin_or(path);
    let text = crate::files::read_text(source, "--targets-file")?;
    for (number, line) in text.lines().enumerate() {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        let more = Target::expand(line).map_err(|reason| InputError::FileLine {
            path: path.clone(),
            line: number + 1,
            reason: format!("target `{}`: {reason}", redact(line)),
        })?;
        targets.extend(more);
        if targets.len() > MAX_TARGETS {
            return Err(too_many());
        }
    }
    Ok(targets)
}

/// A line without its `#` comment (a `#` at the start or after whitespace).
fn strip_comment(line: &str) -> &str {
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        if c == '#' && previous.is_whitespace() {
            return &line[..i];
        }
        previous = c;
    }
    line
}

fn dns_config(args: &Resolving, timeout: Duration) -> Result<DnsConfig, InputError> {
    Ok(DnsConfig {
        server: args
            .dns_server
            .as_deref()
            .map(parse_dns_server)
            .transpose()?,
        family: family(args),
        pins: args
            .resolve
            .iter()
            .map(|r| parse_resolve(r))
            .collect::<Result<Vec<_>, _>>()?,
        timeout,
    })
}

/// The node's own resolver where the flags leave it: kong.conf's name server (for the whole
/// run, said in a note), and its hosts file's answers for the cluster hosts (after
/// `--resolve`'s).
fn kong_resolver(dns: &mut DnsConfig, kong: &KongPlan, plan: &mut Plan) {
    if let Some((addr, whence)) = &kong.dns_server {
        match dns.server {
            None => {
                dns.server = Some(*addr);
                plan.notes.push(format!(
                    "every name is asked of {addr}, the name server the node's Kong asks ({whence}), not of /etc/resolv.conf's"
                ));
            }
            Some(flag) if flag != *addr => plan.notes.push(format!(
                "--dns-server {flag} is asked, not {addr}, the name server the node's Kong asks ({whence})"
            )),
            Some(_) => {}
        }
    }
    for pin in &kong.pins {
        if !dns
            .pins
            .iter()
            .any(|p| p.host.eq_ignore_ascii_case(&pin.host) && p.port == pin.port)
        {
            dns.pins.push(pin.clone());
        }
    }
}

fn proxies(args: &Proxying) -> Result<ProxyConfig, InputError> {
    ProxyConfig::new(
        ProxyFlags {
            proxy: args.proxy.as_deref(),
            proxy_user: args.proxy_user.as_deref(),
            no_proxy: args.no_proxy.as_deref(),
        },
        |name| std::env::var(name).ok(),
    )
}

/// The largest UDP payload over IPv4: 65,535 less the IP and UDP headers.
const MAX_UDP_PAYLOAD: usize = 65_507;
/// Descriptors kept free beyond those already open: a CA bundle or profile read during the
/// run, the resolver's configuration, a spare for the runtime.
const DESCRIPTOR_MARGIN: u64 = 16;

/// Raises the open-file soft limit to the hard one; returns it, and how many connections fit
/// below it: what is left after the descriptors already open (stdio, the runtime's, files)
/// and a margin, halved, since a check in flight may hold a DNS socket beside its connection.
fn raise_open_file_limit() -> (u64, u64) {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let held = std::fs::read_dir("/proc/self/fd").map_or(16, |fds| fds.count() as u64);
    (limit, limit.saturating_sub(held + DESCRIPTOR_MARGIN) / 2)
}

/// `IP` or `IP:PORT`; an IPv6 address in brackets (`[fd00::2]:53`). A bare IPv6 address is
/// taken only when its last group cannot be a port (`::1:53` could be `[::1]:53` or the
/// address `::1:53`: an error, not a guess).
pub fn parse_dns_server(text: &str) -> Result<SocketAddr, InputError> {
    let bad = |reason: String| InputError::flag("--dns-server", text, reason);
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|ip| SocketAddr::new(IpAddr::V6(ip), 53))
            .map_err(|_| bad(format!("`{inner}` in brackets is not an IPv6 address")));
    }
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(SocketAddr::new(IpAddr::V4(ip), 53)),
        Ok(IpAddr::V6(ip)) => {
            let ambiguous = text
                .rsplit_once(':')
                .is_some_and(|(rest, _)| rest.parse::<std::net::Ipv6Addr>().is_ok());
            match ambiguous {
                true => Err(bad(format!(
                    "put an IPv6 address in brackets: {} for that port, or [{text}] for port 53",
                    crate::target::bracketed("", text)
                ))),
                false => Ok(SocketAddr::new(IpAddr::V6(ip), 53)),
            }
        }
        Err(_) => match crate::target::url_instead(text) {
            Some(url) => Err(bad(url)),
            None => Err(bad(
                "expected an IP address with an optional port: 10.0.0.2, 10.0.0.2:5353, [fd00::2]:53"
                    .into(),
            )),
        },
    }
}

/// `HOST:PORT:ADDR[,ADDR…]`, as curl's --resolve; IPv6 addresses may be bracketed.
pub fn parse_resolve(text: &str) -> Result<Pin, InputError> {
    let bad = |reason: String| InputError::flag("--resolve", text, reason);
    if let Some((_, rest)) = text.split_once("://") {
        // Without any user:password@ the URL held.
        let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
        return Err(bad(format!(
            "this is a URL: give HOST:PORT:ADDR ({})",
            rest.trim_end_matches('/')
        )));
    }
    let mut parts = text.splitn(3, ':');
    let (Some(host), Some(port), Some(addrs)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(
            "expected HOST:PORT:ADDR, e.g. abc.us.cp0.konghq.com:443:10.0.0.7".into(),
        ));
    };
    let host = match Host::parse(host).map_err(&bad)? {
        Host::Name(name) => name,
        Host::Ip(_) => return Err(bad("HOST is a name to pin, not an address".into())),
    };
    let port = parse_port(port).map_err(&bad)?;
    let addrs = addrs
        .split(',')
        .map(|a| {
            let a = a.trim();
            a.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| bad(format!("`{a}` is not an IP address")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pin { host, port, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_target_error_shows_its_credentials() {
        // The first is what the `secrets` fuzz target found: a bare target whose user part
        // was echoed as a bad host name.
        for text in [
            "Pw7Secret{:Pw7Secret@",
            "alice:Pw7Secret@h.test",
            "tls://alice:Pw7Secret@h.test:443",
            "https://alice:Pw7Secret/x@h.test/",
            "http://|~|:Pw7Secret\ti_:/@",
        ] {
            let shown = crate::sanitize::message(&target_of(text).unwrap_err().to_string());
            assert!(!shown.contains("Pw7Secret"), "{text}: {shown}");
        }
    }

    #[test]
    fn a_kong_older_than_rpc_opens_no_rpc_outlet() {
        let plan_with_rpc = || {
            let mut rpc = crate::check::CheckSpec::new(
                "kong.conf.control-plane-rpc".into(),
                "Control plane (RPC)".into(),
                crate::profile::Role::ControlPlane,
                crate::target::Probe::KongCluster,
            );
            rpc.endpoint.host = "cp.example".into();
            Plan {
                checks: vec![rpc],
                ..Plan::default()
            }
        };
        let mut plan = plan_with_rpc();
        by_version(&mut plan, "3.9.1");
        assert_eq!(plan.checks.len(), 1);
        let mut plan = plan_with_rpc();
        by_version(&mut plan, "3.6.1");
        assert!(plan.checks.is_empty());
        assert!(plan.notes[0].contains("Kong 3.6.1 (--kong-version) has no RPC"));
    }

    #[test]
    fn the_node_is_the_given_name_on_one_line_or_the_host_name() {
        assert_eq!(node_name(Some(" worker-3 ")).unwrap(), "worker-3");
        assert!(node_name(Some("a\nb")).is_err());
        assert!(node_name(Some("  ")).is_err());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(node_name(None).unwrap(), host.trim());
    }

    #[test]
    fn comments_start_at_a_hash_after_whitespace() {
        assert_eq!(strip_comment("# all of it"), "");
        assert_eq!(strip_comment("tcp://h:1 # the db"), "tcp://h:1 ");
        assert_eq!(strip_comment("https://h/a#b"), "https://h/a#b");
        assert_eq!(strip_comment("\ttcp://h:1\t#x"), "\ttcp://h:1\t");
    }

    #[test]
    fn dns_server_forms() {
        assert_eq!(
            parse_dns_server("10.0.0.2").unwrap(),
            "10.0.0.2:53".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("[::1]:53").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("[::1]").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("fd00::2").unwrap(),
            "[fd00::2]:53".parse().unwrap()
        );
        // `::1:53`: port 53 of ::1, or the address ::1:53? An error, not a guess.
        let err = parse_dns_server("::1:53").unwrap_err().to_string();
        assert!(
            err.contains(
                "put an IPv6 address in brackets: [::1]:53 for that port, or [::1:53] for port 53"
            ),
            "{err}"
        );
        let err = parse_dns_server("dns.example").unwrap_err().to_string();
        assert!(err.starts_with("--dns-server dns.example:"), "{err}");
    }

    #[test]
    fn resolve_forms() {
        let pin = parse_resolve("Api.Example.com:443:127.0.0.1,[::1]").unwrap();
        assert_eq!(pin.host, "api.example.com");
        assert_eq!(pin.port, 443);
        assert_eq!(
            pin.addrs,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        let pin = parse_resolve("h.example:8443:::1").unwrap();
        assert_eq!(pin.addrs, ["::1".parse::<IpAddr>().unwrap()]);
        for (bad, why) in [
            ("h.example:443", "expected HOST:PORT:ADDR"),
            ("h.example:x:1.2.3.4", "not a number"),
            ("h.example:0:1.2.3.4", "out of range"),
            ("h.example:443:nope", "not an IP"),
            ("1.2.3.4:443:1.2.3.4", "not an address"),
        ] {
            let err = parse_resolve(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("--resolve {bad}:")) && err.contains(why),
                "{err}"
            );
        }
    }
}
