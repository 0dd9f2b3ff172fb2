//! The hop that drops: TCP connects to the same address and port with the IP TTL (IPv6 hop
//! limit) set to 1, 2, 3 … all at once, each socket asking for the ICMP errors it draws on its
//! error queue (`IP_RECVERR`, `IPV6_RECVERR`), so the routers' "time exceeded" and
//! "unreachable" messages are read without privileges. This is traceroute's `tcpconn` method
//! (traceroute(8), `-M tcpconn`), Linux only.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Budget, millis};

/// The most hops tried, as traceroute's default.
pub const MAX_HOPS: u8 = 30;

/// A hop that answered a probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    /// The time-to-live the probe was sent with.
    pub ttl: u8,
    /// The router that answered.
    pub addr: IpAddr,
    /// How long it took to answer, in milliseconds.
    pub rtt_ms: f64,
    /// What it answered: `time exceeded`, an unreachable with its reason, or `destination`
    /// (the target itself, connecting or resetting).
    pub answer: String,
}

/// What the hops say about where the path breaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Conclusion {
    /// No hop answered at all.
    Silent,
    /// The last hop that answered, after which the probes vanish.
    DroppedAfter(Hop),
    /// A hop that rejected with an ICMP unreachable.
    RejectedAt(Hop),
    /// The destination answered a probe (connect or reset) at this hop.
    Reached(Hop),
}

/// The hops that answered (TTL 1 to `hops`, at most `MAX_HOPS`), in TTL order, and the
/// conclusion; `Err` when this host cannot trace (no error-queue socket options).
pub async fn trace(
    addr: SocketAddr,
    hops: u8,
    budget: Budget,
) -> Result<(Vec<Hop>, Conclusion), String> {
    let mut probes = JoinSet::new();
    for ttl in 1..=hops.min(MAX_HOPS) {
        let socket = probe_socket(addr, ttl).map_err(|e| {
            format!(
                "this host cannot set a TTL and read ICMP errors on a TCP socket ({})",
                crate::error::without_os_error(&e.to_string())
            )
        })?;
        probes.spawn(probe(socket, addr, ttl, budget));
    }
    let mut hops = Vec::new();
    while let Some(joined) = probes.join_next().await {
        if let Ok(Some(hop)) = joined {
            hops.push(hop);
        }
    }
    hops.sort_by_key(|h| h.ttl);
    // A hop answers for the TTLs beyond it too (a reject, or the destination): keep its first.
    hops.dedup_by(|later, earlier| later.addr == earlier.addr && later.answer == earlier.answer);
    let conclusion = conclude(&hops);
    Ok((hops, conclusion))
}

/// What the hops say.
fn conclude(hops: &[Hop]) -> Conclusion {
    if let Some(reached) = hops
        .iter()
        .find(|h| h.answer == DESTINATION || h.answer == RESET)
    {
        return Conclusion::Reached(reached.clone());
    }
    if let Some(rejected) = hops.iter().find(|h| h.answer != TIME_EXCEEDED) {
        // A router that rejects what passes it answered the probe that expired there first:
        // its hop is that probe's TTL.
        let ttl = hops
            .iter()
            .find(|h| h.addr == rejected.addr)
            .map_or(rejected.ttl, |h| h.ttl);
        return Conclusion::RejectedAt(Hop {
            ttl,
            ..rejected.clone()
        });
    }
    match hops.last() {
        Some(last) => Conclusion::DroppedAfter(last.clone()),
        None => Conclusion::Silent,
    }
}

const TIME_EXCEEDED: &str = "time exceeded";
const DESTINATION: &str = "destination (connected)";
const RESET: &str = "destination (reset)";

/// A non-blocking TCP socket toward `addr` with this TTL, reporting ICMP errors on its queue.
fn probe_socket(addr: SocketAddr, ttl: u8) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    match addr {
        SocketAddr::V4(_) => {
            socket.set_ttl_v4(u32::from(ttl))?;
            setsockopt(&socket, sockopt::Ipv4RecvErr, &true)?;
        }
        SocketAddr::V6(_) => {
            socket.set_unicast_hops_v6(u32::from(ttl))?;
            setsockopt(&socket, sockopt::Ipv6RecvErr, &true)?;
        }
    }
    Ok(socket)
}

/// One probe: connect with its TTL, then read what came back.
async fn probe(socket: socket2::Socket, addr: SocketAddr, ttl: u8, budget: Budget) -> Option<Hop> {
    let start = Instant::now();
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if super::tcp::in_progress(&e) => {}
        Err(_) => return None,
    }
    let stream = tokio::net::TcpStream::from_std(std::net::TcpStream::from(socket)).ok()?;
    let answered = budget.limit(stream.writable()).await;
    let rtt_ms = millis(start.elapsed());
    if answered.is_err() {
        return None;
    }
    let hop = |addr, answer: &str| {
        Some(Hop {
            ttl,
            addr,
            rtt_ms,
            answer: answer.to_string(),
        })
    };
    match stream.take_error() {
        Ok(None) => hop(addr.ip(), DESTINATION),
        Ok(Some(e)) if e.kind() == io::ErrorKind::ConnectionRefused => hop(addr.ip(), RESET),
        _ => {
            let (from, answer) = error_queue(&stream)?;
            hop(from, &answer)
        }
    }
}

/// The ICMP message on the socket's error queue: who sent it, and what it said.
fn error_queue(stream: &tokio::net::TcpStream) -> Option<(IpAddr, String)> {
    let mut data = [0u8; 64];
    let mut iov = [io::IoSliceMut::new(&mut data)];
    let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    let msg = recvmsg::<SockaddrStorage>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .ok()?;
    for control in msg.cmsgs().ok()? {
        match control {
            ControlMessageOwned::Ipv4RecvErr(err, Some(from)) => {
                let ip = IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr)));
                return Some((ip, icmp_v4(err.ee_type, err.ee_code)));
            }
            ControlMessageOwned::Ipv6RecvErr(err, Some(from)) => {
                let ip = IpAddr::V6(std::net::Ipv6Addr::from(from.sin6_addr.s6_addr));
                return Some((ip, icmp_v6(err.ee_type, err.ee_code)));
            }
            _ => {}
        }
    }
    None
}

/// An ICMPv4 message in words (RFC 792, RFC 1812).
fn icmp_v4(kind: u8, code: u8) -> String {
    match (kind, code) {
        (11, _) => TIME_EXCEEDED.into(),
        (3, 0) => "unreachable: network".into(),
        (3, 1) => "unreachable: host".into(),
        (3, 3) => "unreachable: port".into(),
        (3, 9 | 10 | 13) => "unreachable: administratively prohibited".into(),
        (3, code) => format!("unreachable (code {code})"),
        (kind, code) => format!("ICMP type {kind} code {code}"),
    }
}

/// An ICMPv6 message in words (RFC 4443).
fn icmp_v6(kind: u8, code: u8) -> String {
    match (kind, code) {
        (3, _) => TIME_EXCEEDED.into(),
        (1, 0) => "unreachable: no route".into(),
        (1, 1) => "unreachable: administratively prohibited".into(),
        (1, 3) => "unreachable: address".into(),
        (1, 4) => "unreachable: port".into(),
        (1, 5 | 6) => "unreachable: rejected by policy".into(),
        (1, code) => format!("unreachable (code {code})"),
        (kind, code) => format!("ICMPv6 type {kind} code {code}"),
    }
}

/// The conclusion in words, for `port` at `addr`.
pub fn words(conclusion: &Conclusion, addr: SocketAddr) -> String {
    let (ip, port) = (addr.ip(), addr.port());
    match conclusion {
        Conclusion::Silent => format!(
            "no hop answered a probe with a TTL from 1 to {MAX_HOPS}: the SYN is dropped at this host's first router, or no router on the path sends ICMP"
        ),
        Conclusion::DroppedAfter(hop) => format!(
            "the SYN is dropped after hop {} ({}): the firewall there or just beyond filters TCP {port} to {ip}",
            hop.ttl, hop.addr
        ),
        Conclusion::RejectedAt(hop) => format!(
            "an ICMP {} from hop {} ({}): the router there rejects TCP {port} to {ip}",
            hop.answer, hop.ttl, hop.addr
        ),
        Conclusion::Reached(hop) => format!(
            "a probe reached {ip} at hop {} ({}): the path is open to it now, so the drop comes and goes, or depends on more than the address and port",
            hop.ttl, hop.answer
        ),
    }
}
