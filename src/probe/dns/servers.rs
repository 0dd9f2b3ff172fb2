//! When a lookup fails for want of a server: which DNS servers were asked (`--dns-server`, or
//! those of /etc/resolv.conf) and what each does with a plain query over UDP: answers,
//! refuses it (ICMP port unreachable: nothing listens there), cannot be reached, or stays
//! silent. Each server is asked once per run, beside the first lookup, so that a run whose
//! servers all refuse ends at once with their names instead of waiting out the timeout.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

/// The most servers named and asked.
const MAX_SERVERS: usize = 3;

/// A DNS server, and where it was configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) from: &'static str,
}

/// What a server did with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    Answers,
    /// ICMP port unreachable: nothing listens on its port, or a firewall rejects.
    Refused,
    /// No route to it (or an ICMP host or network unreachable).
    Unreachable,
    /// No reply within the wait.
    Silent(Duration),
    /// This host could not send the query (the OS's words).
    Local(String),
}

impl State {
    /// Whether the server cannot be used at all (no point waiting for it).
    pub(crate) fn down(&self) -> bool {
        matches!(self, State::Refused | State::Unreachable | State::Local(_))
    }
}

/// Each server and what it did, for messages: `127.0.0.1:5399 (--dns-server) refuses queries: nothing listens on its port`.
pub(crate) struct Diagnosis(pub(crate) Vec<(Server, State)>);

impl Diagnosis {
    /// Whether every server asked is down (and at least one was asked).
    pub(crate) fn all_down(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|(_, state)| state.down())
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (server, state)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} ({}) ", server.addr, server.from)?;
            match state {
                State::Answers => f.write_str("answers other queries")?,
                State::Refused => f.write_str(
                    "refuses queries: nothing listens on its port, or a firewall rejects them",
                )?,
                State::Unreachable => f.write_str("cannot be reached: no route to it")?,
                State::Silent(wait) => write!(
                    f,
                    "does not answer (no reply within {})",
                    crate::probe::duration_text(*wait)
                )?,
                State::Local(why) => write!(f, "cannot be asked from this host ({why})")?,
            }
        }
        Ok(())
    }
}

/// The servers a lookup asks: `--dns-server`, else those of /etc/resolv.conf (at most three).
pub(crate) fn configured(flag: Option<SocketAddr>) -> Vec<Server> {
    if let Some(addr) = flag {
        return vec![Server {
            addr,
            from: "--dns-server",
        }];
    }
    let Ok((config, _)) = hickory_resolver::system_conf::read_system_conf() else {
        return Vec::new();
    };
    let mut servers: Vec<Server> = Vec::new();
    for ns in config.name_servers() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        let server = Server {
            addr: SocketAddr::new(ns.ip, port),
            from: "/etc/resolv.conf",
        };
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    servers.truncate(MAX_SERVERS);
    servers
}

/// Asks every server at once, each waiting at most `wait` for a reply.
pub(crate) async fn diagnose(servers: Vec<Server>, wait: Duration) -> Diagnosis {
    let mut asked = tokio::task::JoinSet::new();
    for (index, server) in servers.iter().copied().enumerate() {
        asked.spawn(async move { (index, ask(server.addr, wait).await) });
    }
    let mut states = vec![State::Silent(wait); servers.len()];
    while let Some(joined) = asked.join_next().await {
        if let Ok((index, state)) = joined {
            states[index] = state;
        }
    }
    Diagnosis(servers.into_iter().zip(states).collect())
}

/// One query (the root's NS records, which any resolver answers) and what came back.
async fn ask(addr: SocketAddr, wait: Duration) -> State {
    let local: SocketAddr = match addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let exchange = async {
        let socket = UdpSocket::bind(local).await?;
        // Connected, so that an ICMP error comes back as an error on this socket.
        socket.connect(addr).await?;
        let id = std::process::id().to_be_bytes();
        let query = [
            id[2], id[3], 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header: RD, one question
            0, 0, 2, 0, 1, // the root, NS, IN
        ];
        socket.send(&query).await?;
        let mut reply = [0u8; 512];
        socket.recv(&mut reply).await
    };
    match tokio::time::timeout(wait, exchange).await {
        Ok(Ok(_)) => State::Answers,
        Ok(Err(err)) => of_error(&err),
        Err(_) => State::Silent(wait),
    }
}

fn of_error(err: &io::Error) -> State {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => State::Refused,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => State::Unreachable,
        _ => State::Local(crate::probe::tcp::os_text(err)),
    }
}

/// Whether `server` answers `host`'s A query over UDP with a truncated answer while its TCP
/// port cannot be reached: `Some(what TCP did)` then, `None` otherwise (the answer fits, TCP
/// works, or the server says nothing). A large answer must come over TCP (RFC 7766), and a
/// firewall that opens UDP port 53 alone loses it.
pub(crate) async fn truncated_without_tcp(
    server: SocketAddr,
    host: &str,
    wait: Duration,
) -> Option<String> {
    let query = a_query(host)?;
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let exchange = async {
        let socket = UdpSocket::bind(local).await?;
        socket.connect(server).await?;
        socket.send(&query).await?;
        let mut reply = [0u8; 512];
        let n = socket.recv(&mut reply).await?;
        // The header's TC bit (RFC 1035 4.1.1), in a reply to this query.
        io::Result::Ok(n >= 12 && reply[..2] == query[..2] && reply[2] & 0x02 != 0)
    };
    if !matches!(tokio::time::timeout(wait, exchange).await, Ok(Ok(true))) {
        return None;
    }
    match tokio::time::timeout(wait, tokio::net::TcpStream::connect(server)).await {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(crate::probe::tcp::os_text(&err)),
        Err(_) => Some(format!(
            "no answer within {}",
            crate::probe::duration_text(wait)
        )),
    }
}

/// A recursive query for `host`'s A records, without EDNS (as the resolver sends it); `None`
/// for a name DNS cannot carry.
fn a_query(host: &str) -> Option<Vec<u8>> {
    let id = (std::process::id() as u16)
        .wrapping_add(0x5a5a)
        .to_be_bytes();
    let mut query = vec![id[0], id[1], 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in host.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 || !label.is_ascii() {
            return None;
        }
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    if query.len() > 12 + 255 {
        return None;
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    Some(query)
}
