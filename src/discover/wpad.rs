//! `--discover-proxy`'s WPAD lookup, read-only: the `wpad` name in each of the host's search
//! domains, then in each parent domain down to two labels (the DNS devolution of the Web Proxy
//! Auto-Discovery draft, draft-ietf-wrec-wpad-01, section 4.4.2, as browsers and Windows
//! follow it); the first that resolves is asked for `http://wpad.DOMAIN/wpad.dat`, the proxy
//! auto-config (PAC) file. The PAC's script is not run: no well-kept Rust crate evaluates one
//! without a JavaScript engine that would weigh more than preflight itself, so the proxies
//! its return strings name (`"PROXY host:port"`, `HTTPS`, `SOCKS`, `SOCKS5`; Mozilla's
//! "Proxy Auto-Configuration (PAC) file" page) are read from its text and named as
//! candidates. No traffic goes to a proxy found here.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::probe::Budget;
use crate::probe::dns::{Dns, DnsConfig};

/// The most bytes of a PAC file read: real ones run to tens of kilobytes.
const MAX_PAC_BYTES: usize = 1 << 20;
/// The most `wpad` names asked.
const MAX_NAMES: usize = 8;

/// What the WPAD lookup found, for the run's notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wpad {
    /// `/etc/resolv.conf` has no search domain: there is no `wpad` name to ask.
    NoSearchDomain,
    /// None of these names resolves.
    NoName(Vec<String>),
    /// The name resolves, but its PAC file could not be fetched.
    NoFile {
        /// The PAC file's URL.
        url: String,
        /// Why it could not be fetched.
        why: String,
    },
    /// A PAC file was served.
    Pac {
        /// Its URL.
        url: String,
        /// The proxies its text names (`host:port`), in order.
        proxies: Vec<String>,
    },
}

impl Wpad {
    /// The note for the run: what was found, and what to pass.
    pub fn note(&self) -> String {
        match self {
            Wpad::NoSearchDomain => "WPAD: /etc/resolv.conf has no search domain, so there is no wpad name to look up (a proxy announced by DHCP's option 252 is not read)".to_string(),
            Wpad::NoName(names) => format!(
                "WPAD: none of {} resolves: this network does not announce a proxy auto-config file by DNS",
                names.join(", ")
            ),
            Wpad::NoFile { url, why } => format!(
                "WPAD: the name resolves, but {url} could not be fetched ({why}): ask the network team which proxy this host must use"
            ),
            Wpad::Pac { url, proxies } if proxies.is_empty() => format!(
                "WPAD: {url} serves a proxy auto-config file whose proxies its script computes: preflight does not run it; run it for these hosts (pactester -p wpad.dat -u https://HOST/) and pass the proxy it gives with --proxy"
            ),
            Wpad::Pac { url, proxies } => format!(
                "WPAD: {url} serves a proxy auto-config file that names {} {}; which hosts use which, its script decides (preflight does not run it). Try --proxy http://{} (for a Kong node: proxy_server = http://{} and cluster_use_proxy = on in kong.conf)",
                match proxies.len() {
                    1 => "the proxy",
                    _ => "the proxies",
                },
                proxies.join(", "),
                proxies[0],
                proxies[0]
            ),
        }
    }
}

/// The `wpad` names to ask for `domains`, most specific first: `wpad.` before each domain and
/// each of its parents of at least two labels, each name once.
pub fn names(domains: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for domain in domains {
        let labels: Vec<&str> = domain
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .collect();
        for start in 0..labels.len().saturating_sub(1) {
            let name = format!("wpad.{}", labels[start..].join(".")).to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names.truncate(MAX_NAMES);
    names
}

/// The proxies a PAC's return strings name, in order, each once: the word after `PROXY`,
/// `HTTPS`, `SOCKS`, `SOCKS4` or `SOCKS5` inside a string literal, when it is `host:port`.
pub fn proxies(pac: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for literal in literals(pac) {
        let words: Vec<&str> = literal
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            let keyword = matches!(pair[0], "PROXY" | "HTTPS" | "SOCKS" | "SOCKS4" | "SOCKS5");
            if keyword && host_port(pair[1]) && !found.iter().any(|f| f == pair[1]) {
                found.push(pair[1].to_string());
            }
        }
    }
    found
}

/// The string literals of a script ('…' and "…"), comments left out.
fn literals(script: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = script.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = script[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = script[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + n + 4);
            }
            quote @ (b'"' | b'\'') => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != quote && bytes[end] != b'\n' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                let end = end.min(bytes.len());
                out.push(&script[start..end]);
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// `host:port` (a name, an IPv4 address or a bracketed IPv6 address, and a port).
fn host_port(word: &str) -> bool {
    let Some((host, port)) = word.rsplit_once(':') else {
        return false;
    };
    let name = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let v6 = host.starts_with('[') && host.ends_with(']');
    (name || v6) && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Looks the `wpad` names up with the run's resolver and fetches the first one's PAC file,
/// each wait bounded by `timeout`.
pub async fn discover(dns: DnsConfig, timeout: Duration) -> Wpad {
    let domains: Vec<String> = hickory_resolver::system_conf::read_system_conf()
        .map(|(config, _)| {
            config
                .domain()
                .into_iter()
                .chain(config.search())
                .map(|name| name.to_utf8())
                .collect()
        })
        .unwrap_or_default();
    let names = names(&domains);
    if names.is_empty() {
        return Wpad::NoSearchDomain;
    }
    let dns = std::sync::Arc::new(Dns::new(dns));
    let budget = Budget {
        timeout,
        deadline: Instant::now() + timeout * 2,
        connect: None,
    };
    // Asked together; the most specific name that resolves wins.
    let mut lookups = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let (dns, name) = (dns.clone(), name.clone());
        lookups.spawn(async move {
            // Fully qualified: the search list must not lengthen it.
            let resolution = dns.resolve(&format!("{name}."), Some(80), budget).await;
            (i, resolution.addrs.ok().filter(|addrs| !addrs.is_empty()))
        });
    }
    let mut answers: Vec<Option<Vec<IpAddr>>> = vec![None; names.len()];
    while let Some(joined) = lookups.join_next().await {
        if let Ok((i, addrs)) = joined {
            answers[i] = addrs;
        }
    }
    let Some((name, addrs)) = names
        .iter()
        .zip(answers)
        .find_map(|(name, addrs)| addrs.map(|a| (name, a)))
    else {
        return Wpad::NoName(names);
    };
    let url = format!("http://{name}/wpad.dat");
    match fetch(name, &addrs, timeout).await {
        Ok(pac) => Wpad::Pac {
            url,
            proxies: proxies(&pac),
        },
        Err(why) => Wpad::NoFile { url, why },
    }
}

/// `GET /wpad.dat` from the first of `addrs` that answers, directly (as browsers fetch it).
async fn fetch(name: &str, addrs: &[IpAddr], timeout: Duration) -> Result<String, String> {
    let mut why = String::from("no address");
    for ip in addrs {
        match tokio::time::timeout(timeout, get(name, SocketAddr::new(*ip, 80))).await {
            Ok(Ok(text)) => return Ok(text),
            Ok(Err(err)) => why = format!("{ip}: {err}"),
            Err(_) => {
                why = format!(
                    "{ip}: no answer within {}",
                    crate::probe::duration_text(timeout)
                )
            }
        }
    }
    Err(why)
}

async fn get(name: &str, addr: SocketAddr) -> Result<String, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|err| crate::probe::tcp::os_text(&err))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "the HTTP exchange failed".to_string())?;
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get("/wpad.dat")
        .header(hyper::header::HOST, name)
        .header(
            hyper::header::USER_AGENT,
            concat!("preflight/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|_| "the request could not be made".to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| "the server closed the connection without an answer".to_string())?;
    let status = response.status();
    if !status.is_success() {
        connection.abort();
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let body = Limited::new(response.into_body(), MAX_PAC_BYTES)
        .collect()
        .await
        .map_err(|_| {
            format!(
                "the file is larger than {} KiB, or was cut",
                MAX_PAC_BYTES >> 10
            )
        })?
        .to_bytes();
    connection.abort();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_devolve_to_two_labels_most_specific_first() {
        let domains = [
            "branch.emea.Corp.example".to_string(),
            "corp.example".to_string(),
        ];
        assert_eq!(
            names(&domains),
            [
                "wpad.branch.emea.corp.example",
                "wpad.emea.corp.example",
                "wpad.corp.example"
            ]
        );
        assert!(names(&["localdomain".to_string()]).is_empty());
    }

    #[test]
    fn the_proxies_a_pac_names_are_read_from_its_strings() {
        let pac = r#"
            // "PROXY commented.example:1" is a comment
            /* "PROXY blocked.example:2" too */
            function FindProxyForURL(url, host) {
                var PROXY = "x";
                if (isPlainHostName(host)) return "DIRECT";
                if (shExpMatch(host, "*.konghq.com")) return "PROXY proxy.corp.example:3128; DIRECT";
                if (dnsDomainIs(host, ".internal")) return 'SOCKS5 10.0.0.9:1080';
                return "PROXY proxy.corp.example:3128; PROXY [2001:db8::7]:8080";
            }"#;
        assert_eq!(
            proxies(pac),
            [
                "proxy.corp.example:3128",
                "10.0.0.9:1080",
                "[2001:db8::7]:8080"
            ]
        );
        // Built at run time: nothing to read.
        assert!(proxies(r#"return "PROXY " + p + ":8080";"#).is_empty());
    }
}
