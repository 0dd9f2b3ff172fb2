//! Targets: what one check connects to (`tcp://HOST:PORT`, `tls://HOST:PORT`, `dns://HOST`,
//! `udp://HOST:PORT`, `bind://ADDR:PORT` …), and the host-name rules shared with profiles.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What a check does once the name is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// Resolve the name only.
    Dns,
    /// Resolve, then open a TCP connection.
    Tcp,
    /// Resolve, connect, then complete a TLS handshake and verify the certificate.
    Tls,
    /// An HTTP/1.1 request over TCP.
    Http,
    /// An HTTP/1.1 request over TLS.
    Https,
    /// A WebSocket upgrade over TCP.
    Ws,
    /// A WebSocket upgrade over TLS (`websocket` in profiles).
    #[serde(alias = "websocket")]
    Wss,
    /// Resolve, send a UDP datagram, and wait for a reply or an ICMP unreachable.
    Udp,
    /// Bind a local address and port (a listener this host is about to run), then let go.
    Bind,
    /// A Kong data plane's own handshake with its control plane: mutual TLS, then the
    /// WebSocket upgrade on `/v1/outlet` (the control-plane checks of `--kong-conf`).
    #[serde(rename = "kong-cluster")]
    KongCluster,
    /// A file of the node's kong.conf read and judged before any connection (its certificate,
    /// key, CAs, proxy setting): `file://PATH`.
    File,
}

impl Probe {
    /// The probes a target's scheme names (`kong-cluster` and `file` come from a kong.conf).
    pub const SCHEMES: [Probe; 9] = [
        Probe::Dns,
        Probe::Tcp,
        Probe::Tls,
        Probe::Http,
        Probe::Https,
        Probe::Ws,
        Probe::Wss,
        Probe::Udp,
        Probe::Bind,
    ];

    /// The scheme a target of this probe starts with.
    pub fn as_str(self) -> &'static str {
        match self {
            Probe::Dns => "dns",
            Probe::Tcp => "tcp",
            Probe::Tls => "tls",
            Probe::Http => "http",
            Probe::Https => "https",
            Probe::Ws => "ws",
            Probe::Wss => "wss",
            Probe::Udp => "udp",
            Probe::Bind => "bind",
            Probe::KongCluster => "kong-cluster",
            Probe::File => "file",
        }
    }

    /// Whether the connection is wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(
            self,
            Probe::Tls | Probe::Https | Probe::Wss | Probe::KongCluster
        )
    }

    /// Whether the check sends an HTTP request (plain or WebSocket upgrade).
    pub fn uses_http(self) -> bool {
        matches!(
            self,
            Probe::Http | Probe::Https | Probe::Ws | Probe::Wss | Probe::KongCluster
        )
    }

    /// Whether the HTTP request is a WebSocket upgrade.
    pub fn is_websocket(self) -> bool {
        matches!(self, Probe::Ws | Probe::Wss | Probe::KongCluster)
    }

    /// The port a URL of this scheme means when it names none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Probe::Http | Probe::Ws => Some(80),
            Probe::Https | Probe::Wss => Some(443),
            Probe::Dns
            | Probe::Tcp
            | Probe::Tls
            | Probe::Udp
            | Probe::Bind
            | Probe::KongCluster
            | Probe::File => None,
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host as the user wrote it: a DNS name (lower-cased) or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name.
    Name(String),
    /// An address.
    Ip(IpAddr),
}

impl Host {
    /// Parses a host name, an IPv4 address, or a bracketed IPv6 address (`[::1]`).
    pub fn parse(text: &str) -> Result<Host, String> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| format!("`{text}` opens a bracket it does not close"))?;
            return match inner.parse::<IpAddr>() {
                Ok(ip @ IpAddr::V6(_)) => Ok(Host::Ip(ip)),
                _ => Err(format!("`{inner}` in brackets is not an IPv6 address")),
            };
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return match ip {
                IpAddr::V4(_) => Ok(Host::Ip(ip)),
                IpAddr::V6(_) => Err(format!("write the IPv6 address in brackets: [{text}]")),
            };
        }
        validate_name(text).map(|()| Host::Name(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Checks a DNS name against the rules of RFC 1123: labels of letters, digits, `-` and `_`,
/// 1 to 63 characters each, 253 in all; one trailing dot allowed.
fn validate_name(name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("the host is empty".into());
    }
    if bare.len() > 253 {
        return Err(format!(
            "the host name is {} characters long; at most 253",
            bare.len()
        ));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(format!("`{name}` has an empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Err(format!("`{name}` has a label longer than 63 characters"));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "`{name}` is not a host name: `{bad}` is not allowed in it"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("`{name}` has a label that starts or ends with `-`"));
        }
    }
    Ok(())
}

/// One thing to check: a probe, a host, (except for `dns`) a port, and for HTTP a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// What the check does.
    pub probe: Probe,
    /// The host.
    pub host: Host,
    /// `None` only for `dns` targets.
    pub port: Option<u16>,
    /// The request path of HTTP and WebSocket targets (`/` when none is given).
    pub path: Option<String>,
}

/// The probe a scheme names. Only a word is echoed in the error: what stands before `://`
/// may be a password.
fn scheme_of(scheme: &str) -> Result<Probe, String> {
    Probe::SCHEMES
        .into_iter()
        .find(|p| p.as_str() == scheme.to_ascii_lowercase())
        .ok_or_else(|| {
            let shown =
                match scheme.len() <= 12 && scheme.chars().all(|c| c.is_ascii_alphanumeric()) {
                    true => format!(" `{scheme}://`"),
                    false => String::new(),
                };
            format!("unknown scheme{shown} (use tcp, tls, dns, udp, bind, http, https, ws or wss)")
        })
}

impl Target {
    /// Parses `tcp://HOST:PORT`, `tls://HOST:PORT`, `dns://HOST`, a bare `HOST:PORT` (tcp), or
    /// `http(s)://HOST[:PORT][/PATH]` and `ws(s)://HOST[:PORT][/PATH]`.
    pub fn parse(text: &str) -> Result<Target, String> {
        let (probe, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (scheme_of(scheme)?, rest),
            None => (Probe::Tcp, text),
        };
        if probe.uses_http() {
            return Target::parse_url(probe, rest);
        }
        if let Some(url) = url_instead(rest) {
            return Err(url);
        }
        if rest.contains('@') {
            return Err(CREDENTIALS.into());
        }
        if rest.contains('/') {
            return Err("a target has no path: write SCHEME://HOST:PORT".into());
        }
        if probe == Probe::Dns {
            // A port is allowed (and checked) but a DNS check has no use for it.
            let host = match split_port(rest) {
                Some((host, port)) => parse_port(port).map(|_| host)?,
                None => rest,
            };
            return Ok(Target {
                probe,
                host: Host::parse(host)?,
                port: None,
                path: None,
            });
        }
        let Some((host, port)) = split_port(rest) else {
            if rest.starts_with('[') {
                Host::parse(rest)?;
            }
            if rest.parse::<std::net::Ipv6Addr>().is_ok() {
                return Err(format!(
                    "put an IPv6 address in brackets: {}",
                    bracketed(probe.as_str(), rest)
                ));
            }
            return Err(format!("missing port: write {probe}://HOST:PORT"));
        };
        let host = Host::parse(host)?;
        if probe == Probe::Bind && !matches!(host, Host::Ip(_)) {
            return Err(
                "bind:// takes an address of this host, not a name: 0.0.0.0, 127.0.0.1, [::]"
                    .into(),
            );
        }
        Ok(Target {
            probe,
            host,
            port: Some(parse_port(port)?),
            path: None,
        })
    }

    /// Parses a target whose port may be a range, `tcp://10.0.0.5:9000-9100` (tcp, tls, udp,
    /// bind and bare `HOST:PORT`): one target per port, in order.
    pub fn expand(text: &str) -> Result<Vec<Target>, String> {
        let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
        let range = split_port(rest).and_then(|(_, port)| port.split_once('-').map(|r| (port, r)));
        let Some((port, (first, last))) = range else {
            return Ok(vec![Target::parse(text)?]);
        };
        let (first, last) = (parse_port(first)?, parse_port(last)?);
        if first > last {
            return Err(format!(
                "the port range {port} runs backwards: write FIRST-LAST"
            ));
        }
        let one = Target::parse(&format!("{}{first}", &text[..text.len() - port.len()]))?;
        if one.probe.uses_http() || one.probe == Probe::Dns {
            return Err("port ranges are for tcp, tls, udp and bind targets".into());
        }
        Ok((first..=last)
            .map(|port| Target {
                port: Some(port),
                ..one.clone()
            })
            .collect())
    }

    /// The part of an HTTP or WebSocket URL after `scheme://`.
    fn parse_url(probe: Probe, rest: &str) -> Result<Target, String> {
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(URL_CREDENTIALS.into());
        }
        // A password may hold `/`, `?` or `#`, which end the authority early: then what is
        // left does not parse, and must not be echoed, when an `@` follows.
        let refuse = |reason: String| match rest.contains('@') {
            true => URL_CREDENTIALS.to_string(),
            false => reason,
        };
        if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(refuse(
                "the path has spaces or control characters: percent-encode them".into(),
            ));
        }
        let (host, port) = match split_port(authority) {
            Some((host, port)) => (host, parse_port(port).map_err(refuse)?),
            None => (authority, probe.default_port().unwrap_or(80)),
        };
        let host = Host::parse(host).map_err(refuse)?;
        Ok(Target {
            probe,
            host,
            port: Some(port),
            path: Some(path),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_target(
            self.probe,
            &self.host.to_string(),
            self.port,
            self.path.as_deref(),
        ))
    }
}

/// A target as text: `tls://host:443`, `https://host/path` (the port only when not the
/// scheme's default). `host` is as displayed (an IPv6 address in brackets).
pub fn format_target(probe: Probe, host: &str, port: Option<u16>, path: Option<&str>) -> String {
    let mut text = format!("{probe}://{host}");
    if let Some(port) = port.filter(|p| Some(*p) != probe.default_port()) {
        text.push_str(&format!(":{port}"));
    }
    // The cluster handshake's path carries a node id made for the run: not part of the target.
    let path = path.filter(|_| probe != Probe::KongCluster);
    if let Some(path) = path.filter(|p| *p != "/" || !probe.uses_http()) {
        text.push_str(path);
    }
    text
}

/// Splits `host:port` or `[v6]:port`; `None` when there is no port.
pub fn split_port(text: &str) -> Option<(&str, &str)> {
    if text.starts_with('[') {
        let end = text.find(']')?;
        let port = text[end + 1..].strip_prefix(':')?;
        return Some((&text[..=end], port));
    }
    let (host, port) = text.rsplit_once(':')?;
    // A bare IPv6 address has several colons; it has no port (and Host::parse says why).
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

/// The bracketed form of an IPv6 address written bare with its port (`::1:443` →
/// `tcp://[::1]:443`): the last group is the port when what is left is an address.
pub fn bracketed(scheme: &str, bare: &str) -> String {
    let prefix = match scheme.is_empty() {
        true => String::new(),
        false => format!("{scheme}://"),
    };
    match bare.rsplit_once(':') {
        Some((ip, port))
            if ip.parse::<std::net::Ipv6Addr>().is_ok()
                && !port.is_empty()
                && port.parse::<u16>().is_ok_and(|p| p > 0) =>
        {
            format!("{prefix}[{ip}]:{port}")
        }
        _ => format!("{prefix}[{bare}]:PORT"),
    }
}

/// When `text` is a URL where `HOST:PORT` is expected, the words that say so, with the
/// `HOST:PORT` it holds (the scheme's port when it names none).
pub fn url_instead(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" | "wss" | "tls" => Some(443),
        "http" | "ws" => Some(80),
        _ => None,
    };
    let hostport = match (split_port(authority), default) {
        (Some(_), _) => authority.to_string(),
        (None, Some(port)) => format!("{authority}:{port}"),
        (None, None) => format!("{authority}:PORT"),
    };
    Some(format!("this is a URL: give HOST:PORT ({hostport})"))
}

/// Why a target with `user:password@` is refused; the target is never echoed with them.
const CREDENTIALS: &str = "credentials in a target are not supported";
const URL_CREDENTIALS: &str = "credentials in a target URL are not supported";

/// Parses a TCP/UDP port, 1 to 65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        Ok(port) => Err(format!("port {port} is out of range (1 to 65535)")),
        // Not echoed: in a URL whose password holds a `/` or `#`, this is the password.
        Err(_) => Err("the port is not a number (1 to 65535)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_expand_to_one_target_per_port() {
        let all = Target::expand("tcp://10.0.0.5:9000-9002").unwrap();
        let ports: Vec<_> = all.iter().map(|t| t.port.unwrap()).collect();
        assert_eq!(ports, [9000, 9001, 9002]);
        assert!(
            all.iter()
                .all(|t| t.probe == Probe::Tcp && t.host.to_string() == "10.0.0.5")
        );
        assert_eq!(Target::expand("[::1]:80-81").unwrap().len(), 2);
        assert_eq!(Target::expand("udp://h.example:53-53").unwrap().len(), 1);
        assert_eq!(Target::expand("tls://h.example:443").unwrap().len(), 1);
        for (bad, why) in [
            ("tcp://h:9002-9000", "backwards"),
            ("tcp://h:0-10", "out of range"),
            ("tcp://h:1-x", "not a number"),
            ("tcp://h:1-70000", "out of range"),
        ] {
            let err = Target::expand(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        // An HTTP URL's port is a number; a range there is a bad port.
        assert!(Target::expand("https://h:1-2/").is_err());
    }

    fn ok(text: &str) -> Target {
        Target::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_each_scheme() {
        assert_eq!(ok("tcp://example.com:443").probe, Probe::Tcp);
        assert_eq!(ok("tls://example.com:443").probe, Probe::Tls);
        let dns = ok("dns://Example.COM");
        assert_eq!((dns.probe, dns.port), (Probe::Dns, None));
        assert_eq!(dns.host, Host::Name("example.com".into()));
        let bare = ok("10.0.0.5:9042");
        assert_eq!(bare.probe, Probe::Tcp);
        assert_eq!(bare.host, Host::Ip("10.0.0.5".parse().unwrap()));
        assert_eq!(bare.port, Some(9042));
        let udp = ok("udp://ntp.example:123");
        assert_eq!((udp.probe, udp.port), (Probe::Udp, Some(123)));
        let bind = ok("bind://0.0.0.0:8000");
        assert_eq!((bind.probe, bind.port), (Probe::Bind, Some(8000)));
        assert_eq!(ok("bind://[::]:8443").to_string(), "bind://[::]:8443");
    }

    #[test]
    fn parses_bracketed_ipv6() {
        let t = ok("tls://[::1]:8443");
        assert_eq!(t.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(t.port, Some(8443));
        assert_eq!(t.to_string(), "tls://[::1]:8443");
    }

    #[test]
    fn round_trips_through_display() {
        for text in [
            "tcp://a.b.c:1",
            "tls://x.us.cp0.konghq.com:443",
            "dns://cloud.konghq.com",
        ] {
            assert_eq!(ok(text).to_string(), text);
        }
        assert_eq!(ok("host:80").to_string(), "tcp://host:80");
    }

    #[test]
    fn rejects_bad_targets_with_a_reason() {
        let cases = [
            ("tcp://example.com", "missing port"),
            ("tcp://example.com:0", "out of range"),
            ("tcp://example.com:65536", "out of range"),
            ("tcp://example.com:https", "not a number"),
            ("ftp://example.com:21", "unknown scheme"),
            ("https://user:pw@example.com/", "credentials"),
            ("https://example.com:0/", "out of range"),
            ("https://example.com/a b", "spaces"),
            ("tcp://::1:80", "brackets"),
            ("tcp://[::1:80", "does not close"),
            ("tcp://[10.0.0.1]:80", "not an IPv6"),
            ("tcp://bad_host!:80", "not allowed"),
            ("tcp://a..b:80", "empty label"),
            ("tcp://-a.b:80", "starts or ends"),
            ("tcp://:80", "empty"),
            ("tls://example.com:443/path", "no path"),
            ("::1", "brackets"),
            ("bind://localhost:8000", "not a name"),
            ("bind://0.0.0.0", "missing port"),
            ("udp://ntp.example", "missing port"),
        ];
        for (text, expected) in cases {
            let err = Target::parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn parses_http_and_websocket_urls() {
        let t = ok("https://api.example.com/status?x=1");
        assert_eq!((t.probe, t.port), (Probe::Https, Some(443)));
        assert_eq!(t.path.as_deref(), Some("/status?x=1"));
        assert_eq!(t.to_string(), "https://api.example.com/status?x=1");
        let t = ok("http://[::1]:8080");
        assert_eq!((t.port, t.path.as_deref()), (Some(8080), Some("/")));
        assert_eq!(t.to_string(), "http://[::1]:8080");
        let t = ok("wss://cp.example.com/v1/outlet");
        assert_eq!((t.probe, t.port), (Probe::Wss, Some(443)));
        assert_eq!(ok("ws://h.example:81?q").path.as_deref(), Some("/?q"));
        assert_eq!(ok("HTTPS://h.example").probe, Probe::Https);
    }

    #[test]
    fn rejects_overlong_names() {
        let label = "a".repeat(64);
        assert!(Host::parse(&format!("{label}.com")).is_err());
        let long = vec!["abcdefgh"; 30].join(".");
        assert!(Host::parse(&long).unwrap_err().contains("253"));
        assert!(Host::parse("trailing.dot.").is_ok());
    }
}
