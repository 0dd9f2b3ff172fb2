//! TCP connect to one address, bounded by the phase timeout, with the OS's answer named.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Budget;
use crate::failure::{Cause, Failure, FailureKind, Peer, Phase};

/// A TCP connection made and not yet registered with the runtime's epoll: a check that only
/// connects closes it without ever registering it.
pub(crate) struct Connected(std::net::TcpStream);

impl Connected {
    /// This host's end of the connection.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// The connection registered with the runtime, for the steps that write and read it
    /// (TLS, HTTP, a proxy's CONNECT), with `TCP_NODELAY`: their small writes leave at once.
    pub(crate) fn into_stream(self) -> io::Result<TcpStream> {
        let stream = TcpStream::from_std(self.0)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Opens a TCP connection to `addr`; on success returns it and the connect time.
/// `mss` clamps the segment size this host announces (`TCP_MAXSEG` before the connect), so the
/// peer sends no larger segments: the path-MTU second opinion.
pub(crate) async fn connect(
    host: &str,
    addr: SocketAddr,
    mss: Option<u32>,
    budget: Budget,
) -> Result<(Connected, Duration), Failure> {
    let peer = Peer {
        host,
        port: Some(addr.port()),
        ip: Some(addr.ip()),
    };
    let start = Instant::now();
    let failure = match budget.for_connect().limit(connected(addr, mss)).await {
        Ok(Ok(socket)) => return Ok((Connected(socket), start.elapsed())),
        Ok(Err(err)) => classify(&err, addr, peer),
        Err(elapsed) => elapsed.failure(Phase::Tcp, &format!("no answer from {addr}"), peer),
    };
    // What a firewall may have stopped says which address of this host it saw: the one the
    // route toward the destination uses (loopback has no firewall between).
    let by_firewall = matches!(
        failure.kind,
        FailureKind::Timeout | FailureKind::Refused | FailureKind::Unreachable
    ) && failure.cause == Cause::General(failure.kind);
    // Asked only then: it costs a socket and three calls.
    match (by_firewall && !addr.ip().is_loopback())
        .then(|| source_toward(addr))
        .flatten()
    {
        Some(source) => Err(failure.sent_from(source)),
        None => Err(failure),
    }
}

/// This host's address toward `addr`, as its routing table picks it: a UDP socket connected
/// to it (which sends nothing) says.
pub(crate) fn source_toward(addr: SocketAddr) -> Option<std::net::IpAddr> {
    let any: SocketAddr = match addr {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(addr).ok()?;
    socket.local_addr().ok().map(|local| local.ip())
}

/// A non-blocking connect, and its outcome. On loopback and on a LAN the handshake is often
/// over (or refused) by the time `connect` returns: one `poll` with no wait says so, and the
/// socket never goes through epoll (two `epoll_ctl` calls and a wake-up saved per check).
/// Otherwise the runtime waits for it, and lets it go again.
async fn connected(addr: SocketAddr, mss: Option<u32>) -> io::Result<std::net::TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    if let Some(mss) = mss {
        socket.set_tcp_mss(mss)?;
    }
    let socket = match socket.connect(&addr.into()) {
        Ok(()) => return Ok(socket.into()),
        Err(e) if in_progress(&e) => std::net::TcpStream::from(socket),
        Err(e) => return Err(e),
    };
    // A refusal is already in SO_ERROR: one call says so.
    if let Some(err) = socket.take_error()? {
        return Err(err);
    }
    let socket = match settled_now(&socket)? {
        Some(true) => return Ok(socket),
        Some(false) => socket,
        None => {
            let waiting = TcpStream::from_std(socket)?;
            waiting.writable().await?;
            waiting.into_std()?
        }
    };
    match socket.take_error()? {
        Some(err) => Err(err),
        None => Ok(socket),
    }
}

/// Whether a non-blocking `connect` said it goes on in the background (EINPROGRESS).
pub(crate) fn in_progress(err: &io::Error) -> bool {
    err.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32)
}

/// Whether a connect in progress has ended, without waiting: `Some(true)` connected (writable,
/// no error or hang-up), `Some(false)` ended otherwise (SO_ERROR says how), `None` not yet.
fn settled_now(socket: &std::net::TcpStream) -> io::Result<Option<bool>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
    poll(&mut fds, PollTimeout::ZERO)?;
    let events = fds[0].revents().unwrap_or(PollFlags::empty());
    Ok(match events.is_empty() {
        true => None,
        false => Some(events == PollFlags::POLLOUT),
    })
}

/// Names an OS error from `connect`.
pub(crate) fn classify(err: &io::Error, addr: SocketAddr, peer: Peer<'_>) -> Failure {
    let (kind, what) = io_kind(err);
    if err.kind() == io::ErrorKind::NetworkUnreachable && no_route_here(addr) {
        let family = match addr {
            SocketAddr::V4(_) => "IPv4",
            SocketAddr::V6(_) => "IPv6",
        };
        let failure = Failure::new(
            kind,
            Phase::Tcp,
            format!(
                "no route from this host to {addr}: this host has no {family} route toward it (no default route, or no {family} address), so nothing was sent"
            ),
            peer,
        );
        return failure.because(Cause::NoRouteHere, at(peer, addr), Default::default());
    }
    let os = os_text(err);
    let message = match os.eq_ignore_ascii_case(what) {
        true => format!("{what}: {addr}"),
        false => format!("{what}: {addr} ({os})"),
    };
    let failure = Failure::new(kind, Phase::Tcp, message, peer);
    match blocked_here(err) {
        true => failure.because(Cause::BlockedHere, at(peer, addr), Default::default()),
        false => failure,
    }
}

/// Whether this host's own routing table has no route to `addr`: a UDP socket's connect asks
/// the kernel for one without sending anything. ENETUNREACH from a TCP connect may also be a
/// router's ICMP answer; this tells the two apart.
fn no_route_here(addr: SocketAddr) -> bool {
    let any: SocketAddr = match addr {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    std::net::UdpSocket::bind(any)
        .and_then(|socket| socket.connect(addr))
        .is_err_and(|e| e.kind() == io::ErrorKind::NetworkUnreachable)
}

/// Whether the OS refused to send at all (EPERM or EACCES): this host's own firewall or
/// policy, which no network team can open.
pub(crate) fn blocked_here(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::PermissionDenied
}

/// `peer` at the address and port connected to.
pub(crate) fn at(peer: Peer<'_>, addr: SocketAddr) -> Peer<'_> {
    Peer {
        port: Some(addr.port()),
        ip: Some(addr.ip()),
        ..peer
    }
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

/// The OS's own words for an error (`network is unreachable`), without its number.
pub(crate) fn os_text(err: &io::Error) -> String {
    let text = crate::error::io_text(err);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}
