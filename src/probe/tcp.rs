//! TCP connect to one address, bounded by the phase timeout, with the OS's answer named.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Budget;
use crate::failure::{Failure, FailureKind, Peer, Phase};

/// Opens a TCP connection to `addr`; on success returns the stream and the connect time.
/// `mss` clamps the segment size this host announces (`TCP_MAXSEG` before the connect), so the
/// peer sends no larger segments: the path-MTU second opinion.
pub(crate) async fn connect(
    host: &str,
    addr: SocketAddr,
    mss: Option<u32>,
    budget: Budget,
) -> Result<(TcpStream, Duration), Failure> {
    let peer = Peer {
        host,
        port: Some(addr.port()),
        ip: Some(addr.ip()),
    };
    let start = Instant::now();
    let connecting = async {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        if let Some(mss) = mss {
            socket2::SockRef::from(&socket).set_tcp_mss(mss)?;
        }
        socket.connect(addr).await
    };
    match budget.limit(connecting).await {
        Ok(Ok(stream)) => Ok((stream, start.elapsed())),
        Ok(Err(err)) => Err(classify(&err, addr, peer)),
        Err(elapsed) => Err(elapsed.failure(Phase::Tcp, &format!("no answer from {addr}"), peer)),
    }
}

/// Names an OS error from `connect`.
pub(crate) fn classify(err: &io::Error, addr: SocketAddr, peer: Peer<'_>) -> Failure {
    let (kind, what) = io_kind(err);
    let failure = Failure::new(
        kind,
        Phase::Tcp,
        format!("{what}: {addr} ({})", os_text(err)),
        peer,
    );
    match blocked_here(err) {
        true => failure.with_hint(local_block_hint("TCP", addr)),
        false => failure,
    }
}

/// Whether the OS refused to send at all (EPERM or EACCES): this host's own firewall or
/// policy, which no network team can open.
pub(crate) fn blocked_here(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::PermissionDenied
}

/// The hint of a connection this host's own rules refuse.
pub(crate) fn local_block_hint(proto: &str, addr: SocketAddr) -> String {
    format!(
        "This host's own firewall or security policy (nftables or iptables output rules, a cgroup or SELinux egress rule) refuses to send to {addr}: allow outbound {proto} port {} to it in this host's rules (nft list ruleset shows them); the network team cannot open this one.",
        addr.port()
    )
}

/// The failure kind of an I/O error on a socket, and a few words for it.
pub(crate) fn io_kind(err: &io::Error) -> (FailureKind, &'static str) {
    use io::ErrorKind as K;
    match err.kind() {
        K::ConnectionRefused => (FailureKind::Refused, "connection refused"),
        K::TimedOut => (FailureKind::Timeout, "timed out"),
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
            (FailureKind::Unreachable, "unreachable")
        }
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            (FailureKind::Reset, "connection reset")
        }
        // EPERM/EACCES come from a local firewall rule or policy on this host.
        K::PermissionDenied => (FailureKind::Unreachable, "blocked on this host"),
        _ => (FailureKind::LocalError, "local error"),
    }
}

/// The OS's own words for an error, without repeating Rust's wrapper text.
pub(crate) fn os_text(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => format!("os error {code}"),
        None => err.to_string(),
    }
}
