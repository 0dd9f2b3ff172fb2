//! The command line (clap derive). Flag names follow curl's where curl has one.
// clap turns doc comments into the help text: a field or variant documented here would change
// `preflight --help`, so what clap shows (each flag's help, or none) is the documentation.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::render::{Format, ListFormat};

/// `--version`: the version, the target built for, and the git revision and commit date built
/// from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("PREFLIGHT_TARGET"),
    ", git ",
    env!("PREFLIGHT_GIT_REV"),
    ", ",
    env!("PREFLIGHT_COMMIT_DATE"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "preflight",
    version = VERSION,
    about = "Checks that an API-gateway data plane node can reach everything it needs: DNS, TCP and TLS to every control-plane, telemetry, API and portal endpoint, with the reason and the fix for each that fails."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run checks: targets given here and the endpoints of profiles.
    Check(Box<CheckArgs>),
    /// List the built-in profiles, or show one.
    Profiles(ProfilesArgs),
    /// Answer TCP connections and UDP datagrams on these ports, so that `preflight check` on
    /// another host can prove an inbound or east-west path before the real service runs.
    Listen(ListenArgs),
    /// List what the network team must allow for these checks: host, port, protocol,
    /// direction, purpose, proxy, and the addresses the names resolve to now.
    Allowlist(Box<AllowlistArgs>),
    /// Run the checks every --interval and serve the last round: Prometheus metrics on /metrics
    /// (blackbox_exporter's names and preflight's own), /healthz, a status page on /, and
    /// /probe?target=&module= when --allow-probe is given.
    Serve(Box<ServeArgs>),
    /// Combine the JSON reports of many nodes into one matrix (endpoints down the side, nodes
    /// across) and say which endpoints fail on every node (the endpoint or the shared path) and
    /// which on some nodes only (those nodes' own path). Exit 1 when a required endpoint failed
    /// on any node.
    Merge(MergeArgs),
    /// Read Kong's error.log (or lines pasted from it) and explain its clustering errors: how
    /// often and when, what each means, what to do, and the check that tests it.
    Explain(ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) on standard output.
    Man,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The log to read (`-`: standard input).
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ExplainFormat::Human)]
    pub format: ExplainFormat,

    /// The node's kong.conf, named in the commands that test each error [default:
    /// /etc/kong/kong.conf].
    #[arg(long, value_name = "FILE")]
    pub kong_conf: Option<PathBuf>,
}

/// The port `serve` listens on by default: not blackbox_exporter's 9115 nor node_exporter's
/// 9100.
pub const SERVE_PORT: u16 = 9755;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub check: CheckArgs,

    /// The address to serve on [default: 127.0.0.1:9755, loopback only].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,

    /// Time between the start of one round and the next.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Answer /probe?target=&module= (one check now, as blackbox_exporter's /probe): it makes
    /// this host connect wherever the caller says, so it is off unless given.
    #[arg(long)]
    pub allow_probe: bool,

    /// With --allow-probe, the only targets /probe may check: hosts, domains (.corp.example),
    /// addresses, CIDR ranges, HOST:PORT; comma-separated.
    #[arg(long, value_name = "LIST", requires = "allow_probe")]
    pub probe_allow: Option<String>,

    /// How serve logs each round and each check's change of status on stderr: logfmt
    /// (`key=value`) or JSON lines.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    /// What serve logs: all (a line per round and per change), changes (changes only), none
    /// (only its own events, such as a reload).
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = LogRounds::All)]
    pub log_rounds: LogRounds,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The reports: `preflight check --format json` output, a `--watch` log (its last round),
    /// or the body of serve's /healthz; one per node.
    #[arg(value_name = "REPORT.json", required = true)]
    pub reports: Vec<PathBuf>,

    /// Output format: html is one self-contained page.
    #[arg(long, value_enum, default_value_t = MergeFormat::Human)]
    pub format: MergeFormat,

    /// Write the merged report to FILE (atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// How each line is written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, values quoted where they must be (logfmt).
    #[default]
    Logfmt,
    /// One JSON object a line.
    Json,
}

/// Which rounds are logged (`--log-rounds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogRounds {
    /// A line per round and one per transition.
    #[default]
    All,
    /// Only transitions (and serve's own events).
    Changes,
    /// Only serve's own events (a reload).
    None,
}

/// The formats of `merge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MergeFormat {
    Human,
    Markdown,
    Json,
    Html,
}

/// The formats of `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// A TCP port to answer on (0: any free port); may be repeated.
    #[arg(long = "tcp", value_name = "PORT", value_parser = listen_port)]
    pub tcp: Vec<u16>,

    /// A UDP port to answer on (0: any free port); may be repeated.
    #[arg(long = "udp", value_name = "PORT", value_parser = listen_port)]
    pub udp: Vec<u16>,

    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind: std::net::IpAddr,

    /// Stop after this long (2m, 1h) [default: until Ctrl-C].
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub for_: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct AllowlistArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// List format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,

    /// Write the list to FILE (atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Time limit of each DNS lookup of the current addresses.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Do not look the names up: the list without current addresses, and no DNS traffic.
    #[arg(long)]
    pub no_resolve: bool,

    /// Add address rules from this list (Konnect's ip-addresses.json, or addresses and CIDR
    /// ranges one a line) beside each name it serves, for firewalls that allow addresses only.
    #[arg(long, value_name = "FILE")]
    pub ip_list: Option<PathBuf>,

    #[command(flatten)]
    pub resolving: Resolving,

    #[command(flatten)]
    pub proxying: Proxying,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    #[command(subcommand)]
    pub action: Option<ProfilesAction>,
}

#[derive(Debug, Subcommand)]
pub enum ProfilesAction {
    /// Show a profile's variables (with allowed values) and endpoints.
    Show {
        /// A built-in profile's name, or a path to a profile file.
        name: String,
    },
}

/// When the human report uses colour.
/// A number of days, said in words when it is not one.
pub fn days(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .map_err(|_| "must be a whole number of days, from 0 to 4,294,967,295".into())
}

/// A port to listen on, said in words when it is not one (0: any free port).
pub fn listen_port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .map_err(|_| "must be a port number from 0 (any free port) to 65535".into())
}

/// A whole number of 1 or more, said in words when it is not (clap's own range check would
/// show Rust's range syntax).
pub fn positive(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("must be 1 or more".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("must be a whole number from 1 to 4,294,967,295".into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to paint, given whether stdout is a terminal and the value of NO_COLOR.
    pub fn paint(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Stop the control-plane check of --kong-conf after mutual TLS, without the data plane's
    /// WebSocket upgrade on /v1/outlet.
    #[arg(long)]
    pub no_upgrade: bool,

    /// After a check times out in its TCP connect (or is refused by an ICMP unreachable), do
    /// not trace the hops to the address (TCP connects with TTL 1 to 30).
    #[arg(long)]
    pub no_trace: bool,

    /// After the run, name the proxy settings this host keeps (/etc/environment, apt, systemd
    /// units, Docker) and look up `wpad` in the search domains of /etc/resolv.conf: a proxy
    /// auto-config file served there is fetched and the proxies it names are said. Nothing is
    /// sent to a proxy found (without this flag, the settings are named only when every
    /// public address failed to connect)
    #[arg(long)]
    pub discover_proxy: bool,

    /// The Kong version the replayed data plane handshake announces (node_version).
    #[arg(long, value_name = "VERSION", default_value = "3.9.1")]
    pub kong_version: String,

    /// Trace on stderr what each check does, as curl -v: the DNS server asked and its answer
    /// (aliases, addresses, TTL), each connection's two ends, the proxy exchange (credentials
    /// masked), the certificate chain with SHA-256 fingerprints, TLS version, cipher and ALPN,
    /// and the HTTP status line.
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// The name of this node in the report (`node`), for `preflight merge` [default: the
    /// host name]. In a Kubernetes pod, pass the node's name from the downward API.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    /// No progress bar on stderr (it is drawn only on a terminal anyway).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Colour in the human report: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Color::Auto)]
    pub color: Color,

    /// Write the report, in --format, to FILE (atomically); the human summary still goes to
    /// standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also write the JSON report to FILE (atomically), from the same run: any of --json,
    /// --junit and --markdown together, beside what --format prints.
    #[arg(long = "json", value_name = "FILE", conflicts_with = "watch")]
    pub json_file: Option<PathBuf>,

    /// Also write the JUnit XML report to FILE (atomically), from the same run.
    #[arg(long = "junit", value_name = "FILE", conflicts_with = "watch")]
    pub junit_file: Option<PathBuf>,

    /// Also write the Markdown report to FILE (atomically), from the same run.
    #[arg(long = "markdown", value_name = "FILE", conflicts_with = "watch")]
    pub markdown_file: Option<PathBuf>,

    /// After the run, write the allowlist of the failed endpoints to FILE (CSV, JSON or
    /// Markdown by its extension .csv, .json, .md; a table otherwise): the request to send
    /// the network team.
    #[arg(long, value_name = "FILE", conflicts_with = "watch")]
    pub allowlist_failed: Option<PathBuf>,

    /// The addresses a firewall team allowlists: Konnect's ip-addresses.json (its ingressIPs,
    /// per geo) or a list of addresses and CIDR ranges, one a line. Each listed address is
    /// checked on the checked names' ports with the name's server name, and addresses DNS gives
    /// that the list lacks are named.
    #[arg(long, value_name = "FILE")]
    pub ip_list: Option<PathBuf>,

    /// The TCP connect's own time limit, in curl's plain seconds (2.5) or as a duration (2500ms):
    /// curl's --connect-timeout [default: --timeout].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub connect_timeout: Option<Duration>,

    /// Time limit of each phase (DNS, connect, TLS handshake): 500ms, 2s, 1m.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Time limit of the whole run; checks still running then fail with `deadline`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,

    /// Connections in flight at once [default: 512, or less under a low open-file limit].
    #[arg(long, value_name = "N", value_parser = positive)]
    pub concurrency: Option<u32>,

    #[command(flatten)]
    pub resolving: Resolving,

    /// Also trust the CA certificates of this PEM file (curl's --cacert).
    #[arg(long, visible_alias = "cacert", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Warn when a certificate expires within N days.
    #[arg(long, value_name = "N", default_value_t = 14, value_parser = days)]
    pub cert_warn_days: u32,

    /// Treat warnings (an expiring certificate, a missing client certificate …) as failures.
    #[arg(long)]
    pub strict: bool,

    /// Client certificate (PEM) for mutual TLS, e.g. the node's cluster_cert.
    #[arg(long, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of --client-cert, e.g. cluster_cert_key.
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Accept a certificate from --ca-file or the system store on endpoints the profile marks as
    /// publicly certified (a private-link or lab control plane). Inspection products are still
    /// named.
    #[arg(long)]
    pub allow_private_ca: bool,

    /// TLS server name (SNI, and the name verified) for every TLS check, as Kong's
    /// cluster_server_name.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,

    /// ALPN protocols to offer on every TLS check, e.g. h2,http/1.1.
    #[arg(long, value_name = "PROTO[,PROTO]", value_delimiter = ',')]
    pub alpn: Vec<String>,

    /// HTTP statuses that count as reachable: 200, 200-299, 2xx, comma-separated
    /// [default: any below 500].
    #[arg(long, value_name = "STATUS[,STATUS]", value_parser = crate::probe::http::Expect::parse)]
    pub expect_status: Option<crate::probe::http::Expect>,

    #[command(flatten)]
    pub proxying: Proxying,

    /// Also try every proxied endpoint directly, and report both paths side by side.
    #[arg(long)]
    pub compare_direct: bool,

    /// The datagram udp checks send [default: the endpoint's payload, or "preflight\n"].
    #[arg(long, value_name = "TEXT")]
    pub udp_payload: Option<String>,

    /// Run the checks again every INTERVAL (10s suits a data plane's reconnects) until Ctrl-C
    /// or --count, printing only changes, then a summary per endpoint; JSON is one line per
    /// round.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration, conflicts_with = "output")]
    pub watch: Option<Duration>,

    /// With --watch, stop after N rounds.
    #[arg(long, value_name = "N", requires = "watch", value_parser = positive)]
    pub count: Option<u32>,
}

/// What to check: targets, profiles and their variables, a node's kong.conf, roles to keep.
#[derive(Debug, Args)]
pub struct Selection {
    /// tcp://HOST:PORT, tls://HOST:PORT, dns://HOST, HOST:PORT (tcp), http(s)://HOST[:PORT][/PATH],
    /// ws(s)://HOST[:PORT][/PATH], udp://HOST:PORT, bind://ADDR:PORT (a local port is free).
    /// IPv6 in brackets. A port range (tcp://10.0.0.5:9000-9100) is a target per port.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Read more targets from FILE (`-`: standard input): one per line, `#` comments; ports may
    /// be ranges, as on the command line.
    #[arg(long, value_name = "FILE")]
    pub targets_file: Option<PathBuf>,

    /// A built-in profile's name or a profile file's path; may be repeated.
    #[arg(long = "profile", short = 'p', value_name = "NAME|PATH")]
    pub profiles: Vec<String>,

    /// Check what a Kong data plane's kong.conf points at (KONG_* variables override it, as in
    /// Kong): cluster_control_plane, cluster_telemetry_endpoint with their server names, the
    /// cluster certificate and CA, proxy_server, and proxy_listen/stream_listen as local ports.
    #[arg(long, value_name = "FILE")]
    pub kong_conf: Option<PathBuf>,

    /// A node configured by the kong Helm chart, without a kong.conf: its values file's env:
    /// map is read as the node's settings (as the chart makes them KONG_* variables), and
    /// secretVolumes as mounted at /etc/secrets/NAME.
    #[arg(long, value_name = "FILE", conflicts_with = "kong_conf")]
    pub kong_values: Option<PathBuf>,

    /// A profile variable, e.g. --set region=us; may be repeated.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Keep only profile endpoints of these roles (platform, api, control-plane, telemetry,
    /// portal, mesh, internal, external, local).
    #[arg(long, value_name = "ROLE[,ROLE]", value_delimiter = ',')]
    pub only: Vec<String>,
}

/// How names are resolved.
#[derive(Debug, Args)]
pub struct Resolving {
    /// Ask this DNS server instead of the system's resolvers: IP or IP:PORT ([v6]:PORT).
    #[arg(long, value_name = "IP[:PORT]")]
    pub dns_server: Option<String>,

    /// Use ADDR for HOST:PORT instead of DNS, as curl's --resolve; ADDR may be a comma list.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,

    /// Use IPv4 addresses only.
    #[arg(long, short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 addresses only.
    #[arg(long, short = '6')]
    pub ipv6: bool,
}

/// Which proxy checks go through.
#[derive(Debug, Args)]
pub struct Proxying {
    /// Go through this proxy: http://, https:// (TLS to the proxy), socks5:// or socks5h://
    /// (the proxy resolves names), with optional USER:PASSWORD@ (percent-encoded)
    /// [default: https_proxy, http_proxy or all_proxy from the environment, as curl]. curl's
    /// -x.
    #[arg(long, short = 'x', value_name = "URL")]
    pub proxy: Option<String>,

    /// Proxy credentials USER:PASSWORD (instead of those in the proxy URL).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub proxy_user: Option<String>,

    /// Hosts that bypass the proxy, replacing NO_PROXY: `*`, domains (.corp.example), IP
    /// addresses, CIDR ranges, HOST:PORT; comma-separated (curl's --noproxy).
    #[arg(long, visible_alias = "noproxy", value_name = "LIST")]
    pub no_proxy: Option<String>,
}

/// The longest timeout or deadline accepted: a day is already more than any check needs.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// curl's plain seconds (`2`, `2.5`), or a duration with its unit.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SECONDS => {
            Ok(Duration::from_secs_f64(seconds))
        }
        Ok(_) => Err(format!(
            "must be more than 0 seconds and at most {MAX_SECONDS} (a day)"
        )),
        Err(_) => parse_duration(text),
    }
}

/// The most seconds `--connect-timeout` takes: a day, as the other limits.
const MAX_SECONDS: f64 = 86_400.0;

/// Parses `500ms`, `2s`, `1m` (and humantime's other forms); zero and over a day are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write a number with a unit: 500ms, 2s, 1m"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    if d > MAX_DURATION {
        return Err("must be at most 24h".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("5").unwrap_err().contains("unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("0s").unwrap_err().contains("zero"));
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION));
        assert!(
            parse_duration("100000years")
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
