//! The route a check takes: direct or through which forward proxy, and why (`--proxy`, the environment with
//! curl's conventions, `NO_PROXY`), proxy URLs, and credentials kept out of every display.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use percent_encoding::percent_decode_str;

use crate::error::InputError;
use crate::sanitize::redact;
use crate::target::{Host, Probe, parse_port, split_port};

/// How a proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// HTTP CONNECT over plain TCP.
    Http,
    /// HTTP CONNECT inside TLS to the proxy.
    Https,
    /// SOCKS5; the target's name is resolved here.
    Socks5,
    /// SOCKS5; the proxy resolves the target's name.
    Socks5h,
}

impl Scheme {
    /// The word a proxy URL starts with.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        }
    }

    /// curl's default ports: 1080, except 443 for an HTTPS proxy.
    fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http | Scheme::Socks5 | Scheme::Socks5h => 1080,
        }
    }

    /// Whether a plain HTTP request goes to this proxy whole (absolute form), not in a tunnel.
    pub fn forwards_http(self) -> bool {
        matches!(self, Scheme::Http | Scheme::Https)
    }

    /// Whether the proxy, not this host, resolves the target's name.
    pub fn resolves_remotely(self) -> bool {
        !matches!(self, Scheme::Socks5)
    }
}

/// A user name and password for the proxy. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password (never shown).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Every form in which these credentials leave this host, and so may come back in what a
    /// peer says: the Basic token, `user:password`, and the password alone (plain and
    /// percent-encoded) when it is long enough not to match ordinary words.
    pub fn secrets(&self) -> Vec<String> {
        use base64::Engine;
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let pair = format!("{}:{}", self.user, self.password);
        let token = base64::engine::general_purpose::STANDARD.encode(&pair);
        let mut secrets = vec![token, pair];
        if self.password.chars().count() >= 4 {
            secrets.push(self.password.clone());
            secrets.push(utf8_percent_encode(&self.password, NON_ALPHANUMERIC).to_string());
        }
        secrets
    }

    /// `USER:PASSWORD` (the password may hold further colons), as curl's --proxy-user.
    pub fn parse(text: &str) -> Option<Credentials> {
        let (user, password) = text.split_once(':')?;
        Some(Credentials {
            user: user.to_string(),
            password: password.to_string(),
        })
    }
}

/// A proxy: `scheme://[user:password@]host[:port]`. `Display` leaves the credentials out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// How the proxy is spoken to.
    pub scheme: Scheme,
    /// The proxy's host.
    pub host: Host,
    /// The proxy's port.
    pub port: u16,
    /// The credentials to send, if any.
    pub credentials: Option<Credentials>,
    /// Whether an HTTPS proxy's certificate is verified (kong.conf's
    /// `proxy_server_ssl_verify = off` turns it off, as in Kong).
    pub verify: bool,
    /// CONNECT must answer exactly 200, not any 2xx: Kong's WebSocket client refuses any other
    /// status (Kong/lua-resty-websocket, lib/resty/websocket/client.lua); set for kong.conf's
    /// `proxy_server`.
    pub only_200: bool,
}

impl ProxyUrl {
    /// Parses a proxy URL; without a scheme it is an HTTP proxy, as in curl. The error never
    /// repeats the credentials.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        ProxyUrl::parse_with_port(text, None)
    }

    /// `parse`, with `port` for a URL that gives none instead of curl's default for its scheme
    /// (Kong dials 443 for any `proxy_server` without a port).
    pub fn parse_with_port(text: &str, port: Option<u16>) -> Result<ProxyUrl, String> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = match scheme.to_ascii_lowercase().as_str() {
                    "http" => Scheme::Http,
                    "https" => Scheme::Https,
                    "socks5" => Scheme::Socks5,
                    "socks5h" => Scheme::Socks5h,
                    other => {
                        return Err(format!(
                            "unsupported proxy scheme `{other}://` (use http, https, socks5 or socks5h)"
                        ));
                    }
                };
                (scheme, rest)
            }
            None => (Scheme::Http, text),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err("a proxy URL has no path: write scheme://host:port".into());
        }
        let (userinfo, authority) = match rest.rsplit_once('@') {
            Some((userinfo, authority)) => (Some(userinfo), authority),
            None => (None, rest),
        };
        let credentials = userinfo
            .map(|info| {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let decode = |part: &str| {
                    percent_decode_str(part)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| "the proxy credentials are not valid percent-encoded UTF-8")
                };
                Ok::<_, String>(Credentials {
                    user: decode(user)?,
                    password: decode(password)?,
                })
            })
            .transpose()?;
        let (host, port) = match split_port(authority) {
            Some((host, port)) => (host, parse_port(port)?),
            None => (authority, port.unwrap_or(scheme.default_port())),
        };
        if host.is_empty() {
            return Err("the proxy URL names no host".into());
        }
        Ok(ProxyUrl {
            scheme,
            host: Host::parse(host)?,
            port,
            credentials,
            verify: true,
            only_200: false,
        })
    }

    /// The proxy's host as DNS or a socket wants it: a name, or an unbracketed address.
    pub fn host_text(&self) -> String {
        match &self.host {
            Host::Name(name) => name.clone(),
            Host::Ip(ip) => ip.to_string(),
        }
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `*`: every host.
    All,
    /// A domain and its subdomains (`example.com`, `.example.com`, `*.example.com`).
    Domain(String),
    /// An IP address literal.
    Ip(IpAddr),
    /// An address range: `10.0.0.0/8`, `fd00::/8`.
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    text: String,
    pattern: Pattern,
    /// `host:port`: only that port.
    port: Option<u16>,
}

impl Entry {
    fn parse(raw: &str) -> Option<Entry> {
        let text = raw.trim();
        if text.is_empty() {
            return None;
        }
        let entry = |pattern, port| {
            Some(Entry {
                text: text.to_string(),
                pattern,
                port,
            })
        };
        if text == "*" {
            return entry(Pattern::All, None);
        }
        if let Some(inner) = text.strip_prefix('[') {
            let (ip, after) = inner.split_once(']')?;
            let ip = ip.parse::<IpAddr>().ok()?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port.parse::<u16>().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            return entry(Pattern::Ip(ip), port);
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return entry(Pattern::Ip(ip), None);
        }
        if let Some((net, bits)) = text.split_once('/') {
            let net = net.trim_start_matches('[').trim_end_matches(']');
            let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u8>()) else {
                return None;
            };
            let max = if net.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return None;
            }
            return entry(Pattern::Cidr(net, bits), None);
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port.parse::<u16>().ok()?)),
            _ => (text, None),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return entry(Pattern::Ip(ip), port);
        }
        let domain = host
            .trim_start_matches('*')
            .trim_start_matches('.')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if domain.is_empty() {
            return None;
        }
        entry(Pattern::Domain(domain), port)
    }

    fn matches(&self, host: &str, ip: Option<IpAddr>, port: Option<u16>) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        match (&self.pattern, ip) {
            (Pattern::All, _) => true,
            (Pattern::Ip(want), Some(ip)) => *want == ip,
            (Pattern::Cidr(net, bits), Some(ip)) => in_range(ip, *net, *bits),
            (Pattern::Domain(domain), None) => {
                // Bytes, so that no host text can split a character.
                let (host, domain) = (host.trim_end_matches('.').as_bytes(), domain.as_bytes());
                match host.len().checked_sub(domain.len()) {
                    Some(0) => host.eq_ignore_ascii_case(domain),
                    Some(cut) => host[cut - 1] == b'.' && host[cut..].eq_ignore_ascii_case(domain),
                    None => false,
                }
            }
            _ => false,
        }
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// A `NO_PROXY` list and where it came from (`--no-proxy`, `no_proxy` or `NO_PROXY`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NoProxy {
    source: &'static str,
    entries: Vec<Entry>,
}

impl NoProxy {
    fn parse(source: &'static str, list: &str) -> NoProxy {
        NoProxy {
            source,
            entries: list
                .split([',', ' ', '\t', '\n'])
                .filter_map(Entry::parse)
                .collect(),
        }
    }

    fn exempting(&self, host: &str, ip: Option<IpAddr>, port: Option<u16>) -> Option<&Entry> {
        self.entries.iter().find(|e| e.matches(host, ip, port))
    }
}

/// A list of hosts in `NO_PROXY`'s syntax (`*`, domains, addresses, CIDR ranges, HOST:PORT),
/// for `serve --probe-allow`.
#[derive(Debug, Clone)]
pub struct HostList(NoProxy);

impl HostList {
    /// Parses a comma-separated list (hosts, domains, addresses, CIDR ranges, `HOST:PORT`).
    pub fn parse(list: &str) -> HostList {
        HostList(NoProxy::parse("--probe-allow", list))
    }

    /// Whether the host (its address when known, and port) is on the list.
    pub fn allows(&self, host: &str, ip: Option<IpAddr>, port: Option<u16>) -> bool {
        self.0.exempting(host, ip, port).is_some()
    }
}

/// The path a check takes: through a proxy or direct, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The proxy to go through; `None` for direct.
    pub proxy: Option<Arc<ProxyUrl>>,
    /// `--proxy`, the environment variable the proxy came from, or the `NO_PROXY` entry that
    /// exempts the host (`NO_PROXY=.internal`). `None` when no proxy is configured.
    pub reason: Option<String>,
}

/// A proxy the node's Kong would not use, tried only when the check fails on Kong's own route,
/// to say whether it would help and which kong.conf line makes it Kong's route.
#[derive(Debug, Clone)]
pub struct WhatIf {
    /// The proxy tried.
    pub proxy: Arc<ProxyUrl>,
    /// Where it came from: `--proxy`, `https_proxy`, kong.conf's `proxy_server`.
    pub source: String,
    /// The kong.conf change that makes it Kong's route.
    pub fix: String,
}

/// Every proxy the run may use, read once from the flags and the environment.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    flag: Option<Arc<ProxyUrl>>,
    /// For TLS, HTTPS and WSS targets.
    https: Option<(Arc<ProxyUrl>, &'static str)>,
    /// For HTTP and WS targets.
    http: Option<(Arc<ProxyUrl>, &'static str)>,
    /// For every other target, and the fallback of the two above.
    all: Option<(Arc<ProxyUrl>, &'static str)>,
    no_proxy: Option<NoProxy>,
}

/// The flags that choose proxies; the environment fills in what they leave out.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyFlags<'a> {
    /// `--proxy`.
    pub proxy: Option<&'a str>,
    /// `--proxy-user`.
    pub proxy_user: Option<&'a str>,
    /// `--no-proxy`.
    pub no_proxy: Option<&'a str>,
}

impl ProxyConfig {
    /// Reads the proxy flags, then the environment through `env` (curl's variables: lower case
    /// first; upper-case `HTTP_PROXY` is ignored, as curl does, because CGI sets it from a
    /// request header).
    pub fn new(
        flags: ProxyFlags<'_>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ProxyConfig, InputError> {
        let credentials = flags
            .proxy_user
            .map(|text| {
                Credentials::parse(text).ok_or_else(|| {
                    InputError::flag("--proxy-user", "***", "expected USER:PASSWORD")
                })
            })
            .transpose()?;
        let load = |name: &'static str, text: &str| {
            let mut url = ProxyUrl::parse(text)
                .map_err(|reason| InputError::flag(name, redact(text), reason))?;
            if credentials.is_some() {
                url.credentials = credentials.clone();
            }
            Ok::<_, InputError>(Arc::new(url))
        };
        let from_env = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|&name| {
                    env(name)
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| (name, v))
                })
                .map(|(name, value)| load(name, &value).map(|url| (url, name)))
                .transpose()
        };
        let flag = flags.proxy.map(|text| load("--proxy", text)).transpose()?;
        let no_proxy = match flags.no_proxy {
            Some(list) => Some(NoProxy::parse("--no-proxy", list)),
            None => ["no_proxy", "NO_PROXY"]
                .into_iter()
                .find_map(|name| env(name).map(|list| NoProxy::parse(name, &list))),
        };
        Ok(ProxyConfig {
            https: from_env(&["https_proxy", "HTTPS_PROXY"])?,
            http: from_env(&["http_proxy"])?,
            all: from_env(&["all_proxy", "ALL_PROXY"])?,
            flag,
            no_proxy,
        })
    }

    /// Whether any proxy is configured at all.
    pub fn any(&self) -> bool {
        self.flag.is_some() || self.https.is_some() || self.http.is_some() || self.all.is_some()
    }

    /// The route of a check whose source fixed one (kong.conf: its `proxy_server`, or direct):
    /// that route, whatever the flags and the environment say, because it is the route the
    /// node itself takes (Kong's cluster connections read no proxy variable and no `NO_PROXY`,
    /// kong/clustering/utils.lua `connect_cp`); `route` when nothing is fixed.
    pub fn route_of(
        &self,
        fixed: Option<&Route>,
        probe: Probe,
        host: &str,
        ip: Option<IpAddr>,
        port: Option<u16>,
    ) -> Route {
        match fixed {
            // "Direct, as kong.conf says" matters only where a proxy would otherwise be used.
            Some(fixed) if fixed.proxy.is_none() && !self.any() => Route::default(),
            Some(fixed) => fixed.clone(),
            None => self.route(probe, host, ip, port),
        }
    }

    /// The proxy a fixed route's check is tried through when its own route fails: `--proxy`
    /// (when it is not the route already), else the environment's proxy for TLS when the route
    /// is direct. Kong never uses either; the what-if says what it would change.
    pub fn what_if(&self, fixed: &Route) -> Option<WhatIf> {
        let (proxy, source) = match (&self.flag, &fixed.proxy) {
            (Some(flag), Some(own)) if flag.as_ref() == own.as_ref() => return None,
            (Some(flag), _) => (flag.clone(), "--proxy".to_string()),
            (None, Some(_)) => return None,
            (None, None) => {
                let (url, name) = self.https.clone().or_else(|| self.all.clone())?;
                (url, name.to_string())
            }
        };
        let fix = format!(
            "set proxy_server = {proxy} and cluster_use_proxy = on in kong.conf (Kong takes no proxy from --proxy or the environment)"
        );
        Some(WhatIf { proxy, source, fix })
    }

    /// What the flags and the environment ask of a fixed route's checks that Kong does not do:
    /// a line for the plan's notes, or `None`.
    pub fn ignored_for_kong(&self) -> Option<String> {
        let mut asked = Vec::new();
        if self.flag.is_some() {
            asked.push("--proxy".to_string());
        }
        for (_, name) in [&self.https, &self.http, &self.all].into_iter().flatten() {
            asked.push(name.to_string());
        }
        if let Some(no_proxy) = &self.no_proxy {
            asked.push(no_proxy.source.to_string());
        }
        if asked.is_empty() {
            return None;
        }
        Some(format!(
            "{} not used for the kong.conf cluster checks: Kong's cluster connections take their route from kong.conf alone (proxy_server with cluster_use_proxy = on, else direct) and read no proxy variable or NO_PROXY; a proxy given here is tried only as a what-if when Kong's own route fails",
            asked.join(", ")
        ))
    }

    /// The route of a check to `host` (a name, or the text of `ip`) and `port`.
    pub fn route(&self, probe: Probe, host: &str, ip: Option<IpAddr>, port: Option<u16>) -> Route {
        // Names are resolved here, a bind is local, and no proxy scheme here carries UDP.
        if matches!(probe, Probe::Dns | Probe::Bind | Probe::Udp) {
            return Route::default();
        }
        let chosen = match &self.flag {
            Some(url) => Some((url.clone(), "--proxy")),
            None => {
                let specific = if probe.uses_tls() {
                    &self.https
                } else if probe.uses_http() {
                    &self.http
                } else {
                    &None
                };
                specific.clone().or_else(|| self.all.clone())
            }
        };
        let Some((url, source)) = chosen else {
            return Route::default();
        };
        if let Some(no_proxy) = &self.no_proxy
            && let Some(entry) = no_proxy.exempting(host, ip, port)
        {
            return Route {
                proxy: None,
                reason: Some(format!("{}={}", no_proxy.source, entry.text)),
            };
        }
        Route {
            proxy: Some(url),
            reason: Some(source.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn build(flags: ProxyFlags<'_>, vars: &[(&str, &str)]) -> ProxyConfig {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyConfig::new(flags, |name| vars.get(name).cloned()).unwrap()
    }

    #[test]
    fn a_fixed_route_holds_whatever_the_flags_and_environment_say() {
        let direct = Route {
            proxy: None,
            reason: Some("kong.conf: cluster_use_proxy is off".into()),
        };
        let fixed = |config: &ProxyConfig| {
            let route = config.route_of(Some(&direct), Probe::Tls, "cp.example", None, Some(443));
            (route.proxy.map(|p| p.to_string()), route.reason)
        };
        // No proxy anywhere: nothing to say.
        assert_eq!(fixed(&build(ProxyFlags::default(), &[])), (None, None));
        assert!(
            build(ProxyFlags::default(), &[])
                .ignored_for_kong()
                .is_none()
        );
        // The environment's proxy does not apply; the reason says why; it is a what-if.
        let env = build(ProxyFlags::default(), &[("https_proxy", "http://env:3128")]);
        assert_eq!(fixed(&env), (None, direct.reason.clone()));
        let what_if = env.what_if(&direct).unwrap();
        assert_eq!(
            (what_if.proxy.to_string(), what_if.source.as_str()),
            ("http://env:3128".into(), "https_proxy")
        );
        assert!(what_if.fix.contains("proxy_server = http://env:3128"));
        assert!(
            env.ignored_for_kong()
                .unwrap()
                .starts_with("https_proxy not used")
        );
        // NO_PROXY=* does not turn kong.conf's proxy off: Kong reads no NO_PROXY.
        let kong_proxy = Route {
            proxy: Some(Arc::new(ProxyUrl::parse("http://kong-proxy:3128").unwrap())),
            reason: Some("kong.conf proxy_server".into()),
        };
        let star = build(ProxyFlags::default(), &[("NO_PROXY", "*")]);
        let route = star.route_of(Some(&kong_proxy), Probe::Tls, "cp.example", None, Some(443));
        assert_eq!(
            (route.proxy.map(|p| p.to_string()), route.reason),
            (
                Some("http://kong-proxy:3128".into()),
                Some("kong.conf proxy_server".into())
            )
        );
        assert!(star.what_if(&kong_proxy).is_none());
        // --proxy does not win over the fixed route: it is the what-if.
        let flags = ProxyFlags {
            proxy: Some("http://flag:3128"),
            ..ProxyFlags::default()
        };
        let flag = build(flags, &[]);
        assert_eq!(fixed(&flag), (None, direct.reason.clone()));
        assert_eq!(flag.what_if(&direct).unwrap().source, "--proxy");
        assert_eq!(flag.what_if(&kong_proxy).unwrap().source, "--proxy");
    }

    fn route_text(config: &ProxyConfig, target: &str) -> (Option<String>, Option<String>) {
        let target = crate::target::Target::parse(target).unwrap();
        let (host, ip) = match &target.host {
            Host::Name(name) => (name.clone(), None),
            Host::Ip(ip) => (ip.to_string(), Some(*ip)),
        };
        let route = config.route(target.probe, &host, ip, target.port);
        (route.proxy.map(|p| p.to_string()), route.reason)
    }

    #[test]
    fn proxy_urls() {
        let url = ProxyUrl::parse("http://alice:p%40ss%3Aw%2Frd%25@proxy.corp:3128").unwrap();
        assert_eq!(url.scheme, Scheme::Http);
        assert_eq!(url.host, Host::Name("proxy.corp".into()));
        assert_eq!(url.port, 3128);
        let creds = url.credentials.clone().unwrap();
        assert_eq!(creds.user, "alice");
        assert_eq!(creds.password, "p@ss:w/rd%");
        // Neither Display nor Debug shows the password.
        assert_eq!(url.to_string(), "http://proxy.corp:3128");
        assert!(!format!("{url:?}").contains("p@ss"), "{url:?}");

        for (text, shown) in [
            ("proxy.corp:3128", "http://proxy.corp:3128"),
            ("proxy.corp", "http://proxy.corp:1080"),
            ("HTTPS://proxy.corp", "https://proxy.corp:443"),
            ("socks5://127.0.0.1", "socks5://127.0.0.1:1080"),
            ("socks5h://[::1]:9050/", "socks5h://[::1]:9050"),
        ] {
            assert_eq!(ProxyUrl::parse(text).unwrap().to_string(), shown, "{text}");
        }
        for (bad, why) in [
            ("socks4://p:1080", "unsupported proxy scheme"),
            ("http://p:3128/path", "no path"),
            ("http://p:99999", "out of range"),
            ("http://:3128", "no host"),
            ("http://::1:3128", "brackets"),
            ("http://u:%ff@p:1", "percent-encoded"),
        ] {
            let err = ProxyUrl::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_proxy_flag_or_variable_is_named_without_the_password() {
        let err = ProxyConfig::new(
            ProxyFlags {
                proxy: Some("ftp://alice:hunter2@proxy:21"),
                ..ProxyFlags::default()
            },
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("--proxy ftp://***@proxy:21:"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = ProxyConfig::new(ProxyFlags::default(), |name| {
            (name == "HTTPS_PROXY").then(|| "http://bob:hunter2@proxy:0".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("HTTPS_PROXY http://***@proxy:0:"), "{err}");
        let err = ProxyConfig::new(
            ProxyFlags {
                proxy_user: Some("hunter2"),
                ..ProxyFlags::default()
            },
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn proxy_user_overrides_url_credentials() {
        let config = build(
            ProxyFlags {
                proxy: Some("http://a:b@p:3128"),
                proxy_user: Some("carol:x:y"),
                no_proxy: None,
            },
            &[],
        );
        let url = config.flag.unwrap();
        assert_eq!(
            url.credentials,
            Some(Credentials {
                user: "carol".into(),
                password: "x:y".into()
            })
        );
    }

    /// curl's choice of variable per target, lower case first.
    #[test]
    fn environment_variables() {
        let all = [
            ("https_proxy", "http://lower-https:1"),
            ("HTTPS_PROXY", "http://upper-https:2"),
            ("http_proxy", "http://lower-http:3"),
            ("HTTP_PROXY", "http://upper-http:4"),
            ("all_proxy", "socks5h://lower-all:5"),
            ("ALL_PROXY", "socks5://upper-all:6"),
        ];
        // (variables set, target, proxy used, why)
        type Case<'a> = (&'a [usize], &'a str, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (
                &[0, 1, 2, 3, 4, 5],
                "tls://h.example:443",
                Some("http://lower-https:1"),
                Some("https_proxy"),
            ),
            (
                &[1, 2, 3],
                "https://h.example/",
                Some("http://upper-https:2"),
                Some("HTTPS_PROXY"),
            ),
            (
                &[1],
                "wss://h.example/",
                Some("http://upper-https:2"),
                Some("HTTPS_PROXY"),
            ),
            (
                &[0, 1, 2, 3, 4, 5],
                "http://h.example/",
                Some("http://lower-http:3"),
                Some("http_proxy"),
            ),
            (
                &[0, 1, 2, 3, 4, 5],
                "ws://h.example/",
                Some("http://lower-http:3"),
                Some("http_proxy"),
            ),
            // Upper-case HTTP_PROXY is ignored; all_proxy is the fallback.
            (&[3], "http://h.example/", None, None),
            (
                &[3, 5],
                "http://h.example/",
                Some("socks5://upper-all:6"),
                Some("ALL_PROXY"),
            ),
            (
                &[0, 1, 2, 3, 4, 5],
                "tcp://h.example:8071",
                Some("socks5h://lower-all:5"),
                Some("all_proxy"),
            ),
            (&[0, 1, 2, 3], "tcp://h.example:8071", None, None),
            (
                &[5],
                "tls://h.example:443",
                Some("socks5://upper-all:6"),
                Some("ALL_PROXY"),
            ),
            (&[0, 1, 2, 3, 4, 5], "dns://h.example", None, None),
        ];
        for (set, target, proxy, reason) in cases {
            let vars: Vec<_> = set.iter().map(|&i| all[i]).collect();
            let config = build(ProxyFlags::default(), &vars);
            assert_eq!(
                route_text(&config, target),
                (proxy.map(String::from), reason.map(String::from)),
                "{target} with {vars:?}"
            );
        }
        // An empty variable counts as unset.
        let config = build(
            ProxyFlags::default(),
            &[("https_proxy", " "), ("HTTPS_PROXY", "http://upper:2")],
        );
        assert_eq!(
            route_text(&config, "tls://h.example:443").1.as_deref(),
            Some("HTTPS_PROXY")
        );
        // The flag wins over the environment.
        let config = build(
            ProxyFlags {
                proxy: Some("http://flag:8080"),
                ..ProxyFlags::default()
            },
            &all,
        );
        assert_eq!(
            route_text(&config, "tcp://h.example:22"),
            (Some("http://flag:8080".into()), Some("--proxy".into()))
        );
    }

    #[test]
    fn no_proxy_entries() {
        let list = "*.corp.example, .internal , konghq.com:8443, 10.1.2.3, [fd00::7]:443, \
                    192.168.0.0/16, fd12::/16, ::1, 127.0.0.1:9000, Bad/99, Exact.Example.";
        let cases = [
            ("tls://a.corp.example:443", true),
            ("tls://corp.example:443", true),
            ("tls://xcorp.example:443", false),
            ("tls://x.internal:443", true),
            ("tls://internal:443", true),
            ("tls://us.api.konghq.com:8443", true),
            ("tls://us.api.konghq.com:443", false),
            ("tls://konghq.com:8443", true),
            ("tcp://10.1.2.3:22", true),
            ("tcp://10.1.2.4:22", false),
            ("tls://[fd00::7]:443", true),
            ("tls://[fd00::7]:8443", false),
            ("tcp://192.168.200.1:22", true),
            ("tcp://192.169.0.1:22", false),
            ("tcp://[fd12:3456::1]:22", true),
            ("tcp://[fd13::1]:22", false),
            ("tcp://[::1]:22", true),
            ("tcp://127.0.0.1:9000", true),
            ("tcp://127.0.0.1:9001", false),
            ("tls://exact.example:443", true),
            ("tls://sub.exact.example:443", true),
            // A name is not matched against address entries, nor an address against domains.
            ("tls://10.1.2.3.nip.io:443", false),
        ];
        let config = build(
            ProxyFlags::default(),
            &[
                ("https_proxy", "http://p:3128"),
                ("all_proxy", "http://p:3128"),
                ("no_proxy", list),
            ],
        );
        for (target, bypassed) in cases {
            let (proxy, reason) = route_text(&config, target);
            assert_eq!(proxy.is_none(), bypassed, "{target}: {reason:?}");
            if bypassed {
                assert!(reason.unwrap().starts_with("no_proxy="), "{target}");
            }
        }
        let (_, reason) = route_text(&config, "tls://a.corp.example:443");
        assert_eq!(reason.as_deref(), Some("no_proxy=*.corp.example"));
    }

    #[test]
    fn no_proxy_sources() {
        let vars = [
            ("https_proxy", "http://p:3128"),
            ("no_proxy", ".lower"),
            ("NO_PROXY", ".upper"),
        ];
        let env_only = build(ProxyFlags::default(), &vars);
        assert!(route_text(&env_only, "tls://a.lower:443").0.is_none());
        assert!(route_text(&env_only, "tls://a.upper:443").0.is_some());
        // --no-proxy replaces the environment's list; `*` exempts everything, --proxy included.
        let flag = build(
            ProxyFlags {
                proxy: Some("http://p:3128"),
                no_proxy: Some("*"),
                ..ProxyFlags::default()
            },
            &vars,
        );
        assert_eq!(
            route_text(&flag, "tls://a.lower:443"),
            (None, Some("--no-proxy=*".into()))
        );
        let empty = build(
            ProxyFlags {
                no_proxy: Some(""),
                ..ProxyFlags::default()
            },
            &vars,
        );
        assert!(route_text(&empty, "tls://a.lower:443").0.is_some());
        // No proxy configured: no reason either.
        assert_eq!(
            route_text(
                &build(ProxyFlags::default(), &[("no_proxy", "*")]),
                "tls://a:1"
            ),
            (None, None)
        );
    }
}
