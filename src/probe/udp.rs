//! UDP: send a datagram and wait for a reply. A reply proves the path; an ICMP port
//! unreachable (seen as ECONNREFUSED on a connected socket) proves nothing listens or a
//! firewall rejects; silence proves nothing ("open or filtered").

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::tcp::{io_kind, os_text};
use super::{Budget, Elapsed};
use crate::failure::{Failure, FailureKind, Peer, Phase};

/// What is sent when the endpoint names no payload.
pub(crate) const DEFAULT_PAYLOAD: &[u8] = b"preflight\n";

/// The largest reply read; the rest of a longer datagram is dropped by the OS.
const REPLY_BUFFER: usize = 2048;

/// Sends `payload` to `addr` (again halfway through the timeout, in case the first was lost)
/// and returns the time to the first reply. `Err` of kind `udp_no_reply` means silence.
pub(crate) async fn probe(
    host: &str,
    addr: SocketAddr,
    payload: &[u8],
    budget: Budget,
) -> Result<Duration, Failure> {
    let peer = Peer {
        host,
        port: Some(addr.port()),
        ip: Some(addr.ip()),
    };
    let fail = |err: io::Error| {
        let (kind, what) = match err.kind() {
            io::ErrorKind::ConnectionRefused => {
                (FailureKind::UdpRefused, "ICMP port unreachable from")
            }
            _ => io_kind(&err),
        };
        let failure = Failure::new(
            kind,
            Phase::Udp,
            format!("{what} {addr} ({})", os_text(&err)),
            peer,
        );
        match super::tcp::blocked_here(&err) {
            true => failure.because(
                crate::failure::Cause::BlockedHere,
                super::tcp::at(peer, addr),
                Default::default(),
            ),
            false => failure,
        }
    };
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(fail)?;
    // Connected, so that the kernel reports an ICMP error for this peer on the next receive.
    socket.connect(addr).await.map_err(fail)?;
    let start = Instant::now();
    let resend_after = budget.timeout / 2;
    let exchange = async {
        let mut reply = [0u8; REPLY_BUFFER];
        socket.send(payload).await?;
        match tokio::time::timeout(resend_after, socket.recv(&mut reply)).await {
            Ok(received) => received,
            Err(_) => {
                socket.send(payload).await?;
                socket.recv(&mut reply).await
            }
        }
    };
    match budget.limit(exchange).await {
        Ok(Ok(_)) => Ok(start.elapsed()),
        Ok(Err(err)) => Err(fail(err)),
        Err(Elapsed::Timeout(limit)) => Err(Failure::new(
            FailureKind::UdpNoReply,
            Phase::Udp,
            format!(
                "no reply from {addr} within {}: open or filtered (UDP cannot prove reachability without a reply)",
                crate::probe::duration_text(limit)
            ),
            peer,
        )),
        Err(elapsed) => Err(elapsed.failure(Phase::Udp, &format!("no reply from {addr}"), peer)),
    }
}
