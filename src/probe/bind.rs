//! Local port checks: can this host listen on ADDR:PORT, as the service about to be installed
//! will? The socket is closed before the check returns; nothing stays bound.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::tcp::os_text;
use crate::failure::{Failure, FailureKind, Peer, Phase};

/// Binds and listens on `addr`, then closes. The standard library sets SO_REUSEADDR, as nginx
/// (and so Kong) does, so a port with connections still in TIME_WAIT counts as free.
pub(crate) fn check(addr: SocketAddr) -> Result<(), Failure> {
    let host = addr.ip().to_string();
    let peer = Peer {
        host: &host,
        port: Some(addr.port()),
        ip: Some(addr.ip()),
    };
    // Bind and listen both: a bind alone can succeed beside a listener on the wildcard.
    let err = match std::net::TcpListener::bind(addr) {
        Ok(listener) => {
            drop(listener);
            return Ok(());
        }
        Err(err) => err,
    };
    let (kind, message) = match err.kind() {
        io::ErrorKind::AddrInUse => {
            let who = in_use_by(addr).unwrap_or_else(|| {
                "by a process this user cannot see (run as root to name it)".to_string()
            });
            (
                FailureKind::PortInUse,
                format!("{addr} is already in use {who}"),
            )
        }
        io::ErrorKind::PermissionDenied => (
            FailureKind::BindDenied,
            format!(
                "permission denied binding {addr} ({}): a port below 1024 needs root or CAP_NET_BIND_SERVICE",
                os_text(&err)
            ),
        ),
        io::ErrorKind::AddrNotAvailable => (
            FailureKind::LocalError,
            format!("{} is not an address of this host", addr.ip()),
        ),
        _ => (
            FailureKind::LocalError,
            format!("cannot bind {addr} ({})", os_text(&err)),
        ),
    };
    let failure = Failure::new(kind, Phase::Bind, message, peer);
    match err.kind() {
        io::ErrorKind::AddrNotAvailable => {
            let ip = addr.ip().to_string();
            let local = crate::failure::Peer { host: &ip, ..peer };
            Err(failure.because(
                crate::failure::Cause::AddressNotLocal,
                local,
                Default::default(),
            ))
        }
        _ => Err(failure),
    }
}

/// `by pid 1234 (nginx)`: the process with a listening socket on `addr`'s port that
/// conflicts with it, from /proc (Linux). `None` where /proc does not tell.
pub(crate) fn in_use_by(addr: SocketAddr) -> Option<String> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| listeners(&text))
        .filter(|(local, _)| conflicts(*local, addr))
        .map(|(_, inode)| inode)
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                let target = target.to_string_lossy();
                inodes.iter().any(|i| target == format!("socket:[{i}]"))
            })
        });
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some(format!("by pid {pid} ({})", comm.trim()));
        }
    }
    None
}

/// Two listeners conflict on the same port when their addresses are equal or either is the
/// wildcard of its family (an IPv6 wildcard also covers IPv4 unless it is v6-only).
fn conflicts(held: SocketAddr, wanted: SocketAddr) -> bool {
    held.port() == wanted.port()
        && (held.ip() == wanted.ip() || held.ip().is_unspecified() || wanted.ip().is_unspecified())
}

/// The listening sockets of a /proc/net/tcp or tcp6 table: (local address, inode).
fn listeners(table: &str) -> Vec<(SocketAddr, u64)> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&LISTEN) {
                return None;
            }
            let local = parse_proc_addr(fields.get(1)?)?;
            let inode = fields.get(9)?.parse().ok()?;
            Some((local, inode))
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word of the address
/// is in host byte order (little-endian here), the port in plain hex.
fn parse_proc_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<Vec<u32>>>()?;
    let ip = match words.as_slice() {
        [a] => IpAddr::V4(Ipv4Addr::from(a.to_le_bytes())),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (chunk, word) in bytes.chunks_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_tables() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F41 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listeners(v4), [("127.0.0.1:8000".parse().unwrap(), 12345)]);
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:20FB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listeners(v6), [("[::1]:8443".parse().unwrap(), 777)]);
        assert_eq!(parse_proc_addr("nonsense"), None);
    }

    #[test]
    fn wildcards_conflict_with_every_address() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(conflicts(at("0.0.0.0:8000"), at("127.0.0.1:8000")));
        assert!(conflicts(at("127.0.0.1:8000"), at("0.0.0.0:8000")));
        assert!(!conflicts(at("127.0.0.2:8000"), at("127.0.0.1:8000")));
        assert!(!conflicts(at("127.0.0.1:8001"), at("127.0.0.1:8000")));
    }

    #[test]
    fn a_free_port_binds_and_is_released() {
        let addr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        assert_eq!(check(addr), Ok(()));
        // Released: binding it again works.
        assert_eq!(check(addr), Ok(()));
        let held = std::net::TcpListener::bind(addr).unwrap();
        let failure = check(addr).unwrap_err();
        assert_eq!(failure.kind, FailureKind::PortInUse);
        drop(held);
    }
}
