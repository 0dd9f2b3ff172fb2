//! A host with its own resolver rules: a network namespace whose /etc/resolv.conf, /etc/hosts
//! and /etc/nsswitch.conf are the test's (`ip netns exec` mounts /etc/netns/NAME/FILE over
//! /etc/FILE for what it runs), with dnsmasq as its DNS server on 127.0.0.1:53 and TCP
//! listeners on loopback. Made as root; removed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// One host; its namespace, files and processes go when it is dropped.
pub(crate) struct Host {
    ns: String,
    etc: PathBuf,
    dnsmasq: Option<Child>,
    listeners: Vec<TcpListener>,
    /// Servers started in the host (`serve`), stopped when it is dropped.
    servers: Vec<Child>,
}

impl Host {
    /// A host with `rules` (an nftables ruleset, may be empty) and dnsmasq run with `dns`
    /// (its records); `None`, saying why, where one cannot be made.
    pub(crate) fn new(rules: &str, dns: &[&str]) -> Option<Host> {
        if !crate::support::world::namespace_ready(
            "a host with its own resolver",
            &["nft", "dnsmasq"],
        ) {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let ns = format!(
            "pfhost{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let etc = PathBuf::from("/etc/netns").join(&ns);
        std::fs::create_dir_all(&etc).unwrap();
        let mut host = Host {
            ns,
            etc,
            dnsmasq: None,
            listeners: Vec::new(),
            servers: Vec::new(),
        };
        assert!(ip(&["netns", "add", &host.ns]).status.success());
        assert!(
            ip(&["-n", &host.ns, "link", "set", "lo", "up"])
                .status
                .success()
        );
        if !rules.is_empty() {
            let mut nft = Command::new("ip")
                .args(["netns", "exec", &host.ns, "nft", "-f", "-"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut nft.stdin.take().unwrap(), rules.as_bytes()).unwrap();
            assert!(nft.wait().unwrap().success(), "nft rules: {rules}");
        }
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns, "dnsmasq", "--keep-in-foreground"])
            .args([
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--pid-file",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--port=53",
                "--log-facility=/dev/null",
            ])
            .args(dns)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run dnsmasq");
        host.dnsmasq = Some(child);
        crate::support::wait_until("dnsmasq listens", Duration::from_secs(10), || {
            let out = ip(&["netns", "exec", &host.ns, "ss", "-Hlun", "sport = :53"]);
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        });
        host.files(
            "nameserver 127.0.0.1\n",
            "127.0.0.1 localhost\n",
            "hosts: files dns\n",
        );
        Some(host)
    }

    /// The host's resolv.conf, hosts and nsswitch.conf from now on.
    pub(crate) fn files(&self, resolv: &str, hosts: &str, nsswitch: &str) {
        std::fs::write(self.etc.join("resolv.conf"), resolv).unwrap();
        std::fs::write(self.etc.join("hosts"), hosts).unwrap();
        std::fs::write(self.etc.join("nsswitch.conf"), nsswitch).unwrap();
    }

    /// The host's `/etc/NAME` from now on (a file, or a directory's files: `apt/apt.conf`).
    pub(crate) fn etc(&self, name: &str, text: &str) {
        let path = self.etc.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Runs `args` in the host's namespace and waits for it to succeed.
    pub(crate) fn exec(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.ns];
        all.extend_from_slice(args);
        let out = ip(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A default route via a router that never answers (a veth whose other end has no
    /// address): connects to any address beyond loopback time out, as behind a firewall that
    /// drops them.
    pub(crate) fn route_to_nowhere(&self) {
        self.exec(&[
            "ip", "link", "add", "out0", "type", "veth", "peer", "name", "out1",
        ]);
        self.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "out0", "nodad"]);
        self.exec(&["ip", "link", "set", "out0", "up"]);
        self.exec(&["ip", "link", "set", "out1", "up"]);
        self.exec(&["ip", "route", "add", "default", "via", "192.0.2.254"]);
    }

    /// A TCP listener on `addr` in the host (the kernel completes each connect to it).
    pub(crate) fn listen(&mut self, addr: &str) {
        let path = format!("/var/run/netns/{}", self.ns);
        let addr = addr.to_string();
        let listener = std::thread::spawn(move || {
            // Only this thread enters the namespace; the socket stays in it.
            let file = std::fs::File::open(path).unwrap();
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            TcpListener::bind(addr).unwrap()
        })
        .join()
        .unwrap();
        self.listeners.push(listener);
    }

    /// Starts `args` in the host's namespace, left running until the host is dropped.
    pub(crate) fn serve(&mut self, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{args:?}: {err}"));
        self.servers.push(child);
    }

    /// Whether something listens on TCP `port` in the host.
    pub(crate) fn listening(&self, port: u16) -> bool {
        let out = ip(&[
            "netns",
            "exec",
            &self.ns,
            "ss",
            "-Hltn",
            &format!("sport = :{port}"),
        ]);
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }

    /// The binary run on this host, with none of the caller's proxy variables.
    pub(crate) fn preflight(&self, args: &[&str]) -> Output {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.ns, env!("CARGO_BIN_EXE_preflight")])
            .args(args);
        for name in crate::support::world::PROXY_VARIABLES {
            command.env_remove(name);
        }
        command.output().expect("run preflight on the host")
    }
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().expect("run ip")
}

impl Drop for Host {
    fn drop(&mut self) {
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(child) = &mut self.dnsmasq {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = ip(&["netns", "del", &self.ns]);
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}
