//! A lab of routers: a client namespace, two routers that forward, and a server namespace,
//! joined by veth pairs with addresses from the documentation ranges that exist only inside
//! them. nftables in the second router makes the faults. Made as root with `ip netns`, and
//! removed when the lab is dropped; a test without root or nft skips, saying why.
//!
//! ```text
//! client 192.0.2.1 ── 192.0.2.254 router1 198.51.100.1 ── 198.51.100.2 router2 203.0.113.254 ── 203.0.113.10 server
//!        2001:db8:1::1  2001:db8:1::fe      2001:db8:2::1    2001:db8:2::2      2001:db8:3::fe   2001:db8:3::10
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The server's address in the lab.
pub(crate) const SERVER: &str = "203.0.113.10";
pub(crate) const SERVER6: &str = "2001:db8:3::10";
/// Router 2's IPv6 address on router 1's side.
pub(crate) const ROUTER2_6: &str = "2001:db8:2::2";
pub(crate) const ROUTER1_6: &str = "2001:db8:1::fe";

/// One end of a link: its namespace and addresses.
type End = (&'static str, [&'static str; 2]);

/// The links: client–router 1, router 1–router 2 (its MTU set per lab), router 2–server.
const LINKS: [(End, End); 3] = [
    (
        ("c", ["192.0.2.1/24", "2001:db8:1::1/64"]),
        ("r1", ["192.0.2.254/24", "2001:db8:1::fe/64"]),
    ),
    (
        ("r1", ["198.51.100.1/24", "2001:db8:2::1/64"]),
        ("r2", ["198.51.100.2/24", "2001:db8:2::2/64"]),
    ),
    (
        ("r2", ["203.0.113.254/24", "2001:db8:3::fe/64"]),
        ("s", ["203.0.113.10/24", "2001:db8:3::10/64"]),
    ),
];

/// The routes beyond each namespace's own links: (namespace, to, via).
const ROUTES: [(&str, &str, &str); 8] = [
    ("c", "default", "192.0.2.254"),
    ("c", "default", "2001:db8:1::fe"),
    ("r1", "203.0.113.0/24", "198.51.100.2"),
    ("r1", "2001:db8:3::/64", "2001:db8:2::2"),
    ("r2", "192.0.2.0/24", "198.51.100.1"),
    ("r2", "2001:db8:1::/64", "2001:db8:2::1"),
    ("s", "default", "203.0.113.254"),
    ("s", "default", "2001:db8:3::fe"),
];
/// The routers' addresses on the client's side of each (what a trace sees).
pub(crate) const ROUTER1: &str = "192.0.2.254";
pub(crate) const ROUTER2: &str = "198.51.100.2";

/// One lab; its namespaces are removed on drop.
pub(crate) struct Lab {
    prefix: String,
    children: Vec<Child>,
}

/// A unique prefix for this lab's namespaces.
fn prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "pflab{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this host can make the lab: root, `ip netns`, `nft`.
fn ready() -> bool {
    let ns = format!("{}probe", prefix());
    let made = Command::new("ip")
        .args(["netns", "add", &ns])
        .output()
        .is_ok_and(|o| o.status.success());
    if !made {
        return false;
    }
    let nft = Command::new("ip")
        .args(["netns", "exec", &ns, "nft", "list", "ruleset"])
        .output()
        .is_ok_and(|o| o.status.success());
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    nft
}

/// A CA, and a server certificate for `names` with 150 further names, so that the certificate
/// flight is far larger than a 1280-byte link carries in one packet; written to `dir` as
/// `lab-ca.pem`, `big.crt`, `big.key` (their paths returned in that order).
pub(crate) fn big_certificate(dir: &Path, names: &[&str]) -> (String, String, String) {
    use rcgen::{CertificateParams, DnType, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "lab CA");
    let issuer = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    all.extend((0..150).map(|i| format!("padding-name-{i}.lab.test")));
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(all).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (ca_pem, crt, pem) = (
        dir.join("lab-ca.pem"),
        dir.join("big.crt"),
        dir.join("big.key"),
    );
    std::fs::write(&ca_pem, issuer.pem()).unwrap();
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    let text = |p: &Path| p.display().to_string();
    (text(&ca_pem), text(&crt), text(&pem))
}

impl Lab {
    /// The lab with `rules` (an nftables ruleset) loaded in router 2 and the r1–r2 link's MTU
    /// at `mtu`; `None`, saying why, where it cannot be made.
    pub(crate) fn new(rules: &str, mtu: u32) -> Option<Lab> {
        if !ready() {
            super::skip(
                "the router lab needs root, ip netns and nft (apt-get install nftables iproute2)",
            );
            return None;
        }
        let lab = Lab {
            prefix: prefix(),
            children: Vec::new(),
        };
        for ns in ["c", "r1", "r2", "s"] {
            ip(&["netns", "add", &lab.ns(ns)]);
            ip(&["-n", &lab.ns(ns), "link", "set", "lo", "up"]);
        }
        for (i, (a, b)) in LINKS.iter().enumerate() {
            lab.link(*a, *b, if i == 1 { mtu } else { 1500 });
        }
        for (ns, to, via) in ROUTES {
            ip(&["-n", &lab.ns(ns), "route", "add", to, "via", via]);
        }
        for router in ["r1", "r2"] {
            for setting in [
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                // Routers answer every probe: no ICMP rate limit in the lab.
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv6.icmp.ratelimit=0",
            ] {
                lab.exec(router, &["sysctl", "-qw", setting]);
            }
        }
        if !rules.is_empty() {
            let mut nft = Command::new("ip")
                .args(["netns", "exec", &lab.ns("r2"), "nft", "-f", "-"])
                .stdin(Stdio::piped())
                .spawn()
                .expect("run nft");
            nft.stdin
                .take()
                .unwrap()
                .write_all(rules.as_bytes())
                .unwrap();
            assert!(nft.wait().unwrap().success(), "nft rules: {rules}");
        }
        Some(lab)
    }

    /// This lab's name for namespace `ns`.
    pub(crate) fn ns(&self, ns: &str) -> String {
        format!("{}{ns}", self.prefix)
    }

    /// A veth pair between two namespaces, each end with its address, at `mtu`.
    fn link(&self, (a, a_addrs): End, (b, b_addrs): End, mtu: u32) {
        let mtu = mtu.to_string();
        ip(&[
            "-n",
            &self.ns(a),
            "link",
            "add",
            b,
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            a,
            "netns",
            &self.ns(b),
            "mtu",
            &mtu,
        ]);
        for (ns, dev, addrs) in [(a, b, a_addrs), (b, a, b_addrs)] {
            for addr in addrs {
                // No duplicate address detection: the address is usable at once.
                ip(&["-n", &self.ns(ns), "addr", "add", addr, "dev", dev, "nodad"]);
            }
            ip(&["-n", &self.ns(ns), "link", "set", dev, "up"]);
        }
    }

    /// Runs a command in namespace `ns` and waits for it.
    pub(crate) fn exec(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }

    /// Starts a long-running command in namespace `ns`; it is killed with the lab.
    pub(crate) fn spawn(&mut self, ns: &str, dir: &Path, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in the lab");
        self.children.push(child);
    }

    /// The preflight binary, run in the client namespace.
    pub(crate) fn preflight(&self, args: &[&str]) -> Output {
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &self.ns("c"),
                env!("CARGO_BIN_EXE_preflight"),
            ])
            .args(args);
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            command.env_remove(name);
        }
        command.output().expect("run preflight in the lab")
    }

    /// Waits until something in the server namespace listens on `port`.
    pub(crate) fn wait_listening(&self, port: u16) {
        for _ in 0..100 {
            let out = self.exec("s", &["ss", "-Htln", &format!("sport = :{port}")]);
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nothing listens on port {port} in the lab's server");
    }

    /// A middlebox in the server namespace on `SERVER:listen`: it reads each ClientHello,
    /// resets the connection when its server name is `blocked`, and otherwise relays it to
    /// `127.0.0.1:to`. Returns the count of connections it accepted.
    pub(crate) fn sni_filter(
        &self,
        listen: u16,
        to: u16,
        blocked: &'static str,
    ) -> Arc<AtomicUsize> {
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let netns = format!("/var/run/netns/{}", self.ns("s"));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // This thread (and the threads it starts) live in the server's namespace.
            let file = std::fs::File::open(&netns).unwrap();
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let listener = TcpListener::bind((SERVER, listen)).unwrap();
            ready_tx.send(()).unwrap();
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || filter_one(stream, to, blocked));
            }
        });
        ready_rx.recv().unwrap();
        accepted
    }
}

/// One connection through the middlebox.
fn filter_one(mut client: TcpStream, to: u16, blocked: &str) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut hello = vec![0u8; 5];
    if client.read_exact(&mut hello).is_err() {
        return;
    }
    let len = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
    hello.resize(5 + len, 0);
    if client.read_exact(&mut hello[5..]).is_err() {
        return;
    }
    if server_name(&hello).as_deref() == Some(blocked) {
        // A reset, as a next-generation firewall sends for a name its policy blocks.
        let _ = socket_linger_zero(&client);
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)) else {
        return;
    };
    let _ = client.set_read_timeout(None);
    if server.write_all(&hello).is_err() {
        return;
    }
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut client, &mut server);
    let _ = server.shutdown(Shutdown::Write);
}

/// Closes with SO_LINGER 0: the peer gets a RST.
fn socket_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO))
}

/// The server name of a ClientHello record (RFC 8446 4.1.2, RFC 6066 3).
fn server_name(record: &[u8]) -> Option<String> {
    // Record header 5, handshake header 4, version 2, random 32.
    let mut at = 5 + 4 + 2 + 32;
    let session = usize::from(*record.get(at)?);
    at += 1 + session;
    let suites = usize::from(u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]));
    at += 2 + suites;
    let methods = usize::from(*record.get(at)?);
    at += 1 + methods;
    let end = at + 2 + usize::from(u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]));
    at += 2;
    while at + 4 <= end {
        let kind = u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]);
        let len = usize::from(u16::from_be_bytes([
            *record.get(at + 2)?,
            *record.get(at + 3)?,
        ]));
        if kind == 0 {
            // server_name_list: length 2, type 1, name length 2, name.
            let name_len = usize::from(u16::from_be_bytes([
                *record.get(at + 7)?,
                *record.get(at + 8)?,
            ]));
            let name = record.get(at + 9..at + 9 + name_len)?;
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        at += 4 + len;
    }
    None
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in ["c", "r1", "r2", "s"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(ns)])
                .output();
        }
    }
}
