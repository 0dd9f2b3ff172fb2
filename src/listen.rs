//! `preflight listen`: a stateless responder for inbound and east-west checks. It answers each
//! TCP connection and each UDP datagram with one line naming this host and the port reached,
//! so that `preflight check` on another host can prove the path before the real service runs.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;

use crate::error::InputError;
use crate::probe::bind::in_use_by;

/// How long one connection may take to accept the answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once; more are closed unanswered rather than queued.
const MAX_CONNECTIONS: usize = 256;
/// UDP answers per source address: a burst, then this many a second. The answer is longer
/// than the smallest datagram, so without a limit a spoofed source could use the responder
/// as a reflector.
const UDP_BURST: f64 = 10.0;
const UDP_PER_SECOND: f64 = 5.0;
/// Sources remembered by the UDP limit; when full, the idle ones are forgotten, and while it
/// stays full, new sources get no answer.
const UDP_SOURCES: usize = 4096;

/// Which transport a port is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A TCP connection that was accepted.
    Tcp,
    /// A UDP datagram that was answered.
    Udp,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Something the responder did, for the log.
#[derive(Debug, Clone)]
pub enum Event {
    /// Now listening on this transport and address.
    Listening(Transport, SocketAddr),
    /// A peer reached this address.
    Reached {
        /// TCP or UDP.
        transport: Transport,
        /// This host's address that was reached.
        local: SocketAddr,
        /// The peer's address.
        peer: SocketAddr,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Listening(t, addr) => write!(f, "listening on {} {addr}", t.as_str()),
            Event::Reached {
                transport,
                local,
                peer,
            } => write!(f, "{} {local} reached from {peer}", transport.as_str()),
        }
    }
}

/// The bound sockets, ready to serve.
pub struct Responder {
    tcp: Vec<TcpListener>,
    udp: Vec<UdpSocket>,
    host: String,
}

/// Binds every port on `addr`; a port already in use is an input error naming its holder.
/// Port 0 takes any free port (the `Listening` event says which).
pub async fn bind(addr: IpAddr, tcp: &[u16], udp: &[u16]) -> Result<Responder, InputError> {
    if tcp.is_empty() && udp.is_empty() {
        return Err(InputError::Usage {
            flag: "listen",
            reason: "give at least one --tcp PORT or --udp PORT".into(),
        });
    }
    let refused = |flag: &'static str, at: SocketAddr, err: io::Error| {
        let reason = match err.kind() {
            io::ErrorKind::AddrInUse if flag == "--tcp" => format!(
                "{at} is already in use {}; stop it, or choose another port",
                in_use_by(at).unwrap_or_else(|| "by another process".into())
            ),
            io::ErrorKind::AddrInUse => format!("{at} is already in use; choose another port"),
            io::ErrorKind::PermissionDenied => format!(
                "{at}: permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)"
            ),
            _ => format!("cannot listen on {at}: {err}"),
        };
        InputError::flag(flag, at.port().to_string(), reason)
    };
    for (flag, ports) in [("--tcp", tcp), ("--udp", udp)] {
        if let Some(port) = ports
            .iter()
            .enumerate()
            .find_map(|(i, p)| (*p != 0 && ports[..i].contains(p)).then_some(p))
        {
            return Err(InputError::flag(flag, port.to_string(), "is given twice"));
        }
    }
    let mut responder = Responder {
        tcp: Vec::new(),
        udp: Vec::new(),
        host: host_name(),
    };
    for port in tcp {
        let at = SocketAddr::new(addr, *port);
        let listener = TcpListener::bind(at)
            .await
            .map_err(|e| refused("--tcp", at, e))?;
        responder.tcp.push(listener);
    }
    for port in udp {
        let at = SocketAddr::new(addr, *port);
        let socket = UdpSocket::bind(at)
            .await
            .map_err(|e| refused("--udp", at, e))?;
        responder.udp.push(socket);
    }
    Ok(responder)
}

impl Responder {
    /// The addresses actually bound (port 0 resolved), TCP first.
    pub fn addresses(&self) -> Vec<(Transport, SocketAddr)> {
        let tcp = self
            .tcp
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| (Transport::Tcp, a));
        let udp = self
            .udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .map(|a| (Transport::Udp, a));
        tcp.chain(udp).collect()
    }

    /// Answers until `stop` completes, reporting each peer to `log`.
    pub async fn serve(
        self,
        stop: impl std::future::Future<Output = ()>,
        log: impl Fn(Event) + Send + Sync + 'static,
    ) {
        let log = Arc::new(log);
        for (transport, addr) in self.addresses() {
            log(Event::Listening(transport, addr));
        }
        let host = Arc::new(self.host);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut tasks = tokio::task::JoinSet::new();
        for listener in self.tcp {
            tasks.spawn(serve_tcp(
                listener,
                host.clone(),
                slots.clone(),
                log.clone(),
            ));
        }
        for socket in self.udp {
            tasks.spawn(serve_udp(socket, host.clone(), log.clone()));
        }
        stop.await;
        tasks.abort_all();
    }
}

/// Accepts on `listener`, logs each peer and answers it (at most `MAX_CONNECTIONS` at once).
async fn serve_tcp(
    listener: TcpListener,
    host: Arc<String>,
    slots: Arc<Semaphore>,
    log: Arc<impl Fn(Event) + Send + Sync + 'static>,
) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            // Out of descriptors, say: let the peer retry.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        log(Event::Reached {
            transport: Transport::Tcp,
            local,
            peer,
        });
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let line = answer(&host, Transport::Tcp, local);
        tokio::spawn(async move {
            let _permit = permit;
            let write = async {
                stream.write_all(line.as_bytes()).await?;
                stream.shutdown().await
            };
            let _ = tokio::time::timeout(ANSWER_TIMEOUT, write).await;
        });
    }
}

/// Logs each datagram on `socket` and answers it, within each source's rate.
async fn serve_udp(
    socket: UdpSocket,
    host: Arc<String>,
    log: Arc<impl Fn(Event) + Send + Sync + 'static>,
) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let line = answer(&host, Transport::Udp, local);
    let mut buf = [0u8; 2048];
    let mut limit = UdpLimit::default();
    loop {
        let Ok((_, peer)) = socket.recv_from(&mut buf).await else {
            // An ICMP error from an earlier peer: keep serving.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        log(Event::Reached {
            transport: Transport::Udp,
            local,
            peer,
        });
        if limit.allows(peer.ip(), tokio::time::Instant::now()) {
            let _ = socket.send_to(line.as_bytes(), peer).await;
        }
    }
}

/// A token bucket per source address for the UDP answers.
#[derive(Default)]
struct UdpLimit {
    sources: std::collections::HashMap<IpAddr, (f64, tokio::time::Instant)>,
}

impl UdpLimit {
    fn allows(&mut self, source: IpAddr, now: tokio::time::Instant) -> bool {
        if self.sources.len() >= UDP_SOURCES && !self.sources.contains_key(&source) {
            // Forget the sources whose bucket has refilled: they are no different from new.
            let full = Duration::from_secs_f64(UDP_BURST / UDP_PER_SECOND);
            self.sources
                .retain(|_, (_, seen)| now.duration_since(*seen) < full);
            if self.sources.len() >= UDP_SOURCES {
                return false;
            }
        }
        let (tokens, seen) = self.sources.entry(source).or_insert((UDP_BURST, now));
        *tokens =
            (*tokens + now.duration_since(*seen).as_secs_f64() * UDP_PER_SECOND).min(UDP_BURST);
        *seen = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// The line each peer gets: `preflight listen: node-1 tcp 10.0.0.5:7001`.
fn answer(host: &str, transport: Transport, local: SocketAddr) -> String {
    format!("preflight listen: {host} {} {local}\n", transport.as_str())
}

/// This host's name, as the kernel has it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_answers_are_limited_per_source() {
        let mut limit = UdpLimit::default();
        let start = tokio::time::Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let burst = (0..100).filter(|_| limit.allows(a, start)).count();
        assert_eq!(burst, UDP_BURST as usize);
        // Another source is not held back by the first.
        assert!(limit.allows(b, start));
        // A second later, the first gets as many more as the rate allows.
        let later = start + Duration::from_secs(1);
        let more = (0..100).filter(|_| limit.allows(a, later)).count();
        assert_eq!(more, UDP_PER_SECOND as usize);
    }
}
