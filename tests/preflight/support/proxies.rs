//! Forward proxies for the tests: a real squid with a generated configuration, an in-process
//! SOCKS5 server, and a way to rerun a test in a private network namespace where only the
//! proxies' own traffic may reach the targets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream as StdStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::free_port;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::support::world::{World, in_namespace, namespace_ready};

/// The address both proxies connect out from. In the isolated namespace, nftables drops every
/// packet to a target's port that does not come from here: only the proxy's path works.
pub(crate) const PROXY_EGRESS: Ipv4Addr = Ipv4Addr::new(127, 254, 0, 1);

/// The ports the isolated namespace closes to direct traffic (the Konnect world's).
const ISOLATED_PORTS: &str = "443, 8071, 20010";

const INSIDE: &str = "PREFLIGHT_TEST_ISOLATED";

/// Reruns the test `name` (its path without the crate, e.g. `proxy::some_test`) in a private
/// network namespace where direct traffic to the target ports is dropped, and checks that it
/// passed there. Returns `true` only in that inner run, where the test body should run; the
/// outer run returns `false` (also when it cannot make a namespace: it says so and skips).
pub(crate) fn isolated(name: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    if !namespace_ready(name, &["nft", "ip", "squid"]) {
        return false;
    }
    let rules = format!(
        "table inet preflight_test {{
            chain output {{
                type filter hook output priority 0; policy accept;
                tcp dport {{ {ISOLATED_PORTS} }} ip saddr != {PROXY_EGRESS} drop
                tcp dport {{ {ISOLATED_PORTS} }} ip6 saddr != ::2 drop
            }}
        }}"
    );
    let out = in_namespace(&rules, &std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} failed in its namespace:\n{stdout}\n{stderr}"
    );
    false
}

/// How a test squid is set up.
#[derive(Default)]
pub(crate) struct SquidOptions<'a> {
    /// Basic authentication with this user and password; none when `None`.
    pub(crate) auth: Option<(&'a str, &'a str)>,
    /// The only ports CONNECT may reach; every port when empty.
    pub(crate) connect_ports: Vec<u16>,
    /// Names squid resolves (its hosts file); it resolves nothing else.
    pub(crate) hosts: Vec<(String, IpAddr)>,
    /// Sign-in by Negotiate (Kerberos) only, as an Active Directory site's proxy: its helper
    /// accepts no one, and squid offers no Basic.
    pub(crate) negotiate_only: bool,
    /// A server name whose tunnels squid closes after peeking at the ClientHello (`ssl_bump
    /// peek` then `terminate`, as a site's SNI policy does); needs squid built with OpenSSL.
    pub(crate) sni_blocked: Option<&'a str>,
}

/// A squid process on a free port of 127.0.0.1, killed when dropped.
pub(crate) struct Squid {
    child: Child,
    pub(crate) addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Squid {
    /// Starts squid and waits until it accepts connections; `None` (with a note) without squid.
    pub(crate) fn start(options: &SquidOptions) -> Option<Squid> {
        if Command::new("squid").arg("-v").output().is_err() {
            super::skip("squid is not installed (apt-get install squid)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // Squid drops root for its own user; it must write its logs here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let port = free_port();
        let mut hosts = String::new();
        for (name, ip) in &options.hosts {
            hosts.push_str(&format!("{ip} {name}\n"));
        }
        std::fs::write(path("hosts"), hosts).unwrap();
        let bump = match options.sni_blocked {
            Some(_) => {
                // ssl-bump wants a CA even when it only peeks, splices and terminates.
                super::servers::openssl_self_signed(dir.path(), "bump", "/CN=Site Proxy CA", &[]);
                let pem = format!(
                    "{}{}",
                    std::fs::read_to_string(path("bump.crt")).unwrap(),
                    std::fs::read_to_string(path("bump.key")).unwrap()
                );
                std::fs::write(path("bump.pem"), pem).unwrap();
                format!(
                    " ssl-bump tls-cert={} generate-host-certificates=off",
                    path("bump.pem")
                )
            }
            None => String::new(),
        };
        let mut conf = format!(
            "http_port 127.0.0.1:{port}{bump}
pid_filename {pid}
cache_log {cache}
access_log stdio:{access}
cache deny all
cache_mem 8 MB
shutdown_lifetime 0 seconds
hosts_file {hosts}
# Nothing is resolved beyond the hosts file: no query leaves loopback.
dns_nameservers 127.0.0.1
dns_timeout 2 seconds
tcp_outgoing_address {PROXY_EGRESS}
",
            pid = path("squid.pid"),
            cache = path("cache.log"),
            access = path("access.log"),
            hosts = path("hosts"),
        );
        if !options.connect_ports.is_empty() {
            let ports: Vec<String> = options.connect_ports.iter().map(u16::to_string).collect();
            conf.push_str(&format!(
                "acl allowed_ports port {}\nhttp_access deny CONNECT !allowed_ports\n",
                ports.join(" ")
            ));
        }
        if let Some((user, password)) = options.auth {
            // Squid hands the helper "user password", decoded except for `%` (as %25).
            let helper = path("auth.sh");
            let password = password.replace('%', "%25");
            std::fs::write(
                &helper,
                format!(
                    "#!/bin/sh\nwhile read -r line; do\n  if [ \"$line\" = '{user} {password}' ]; then echo OK; else echo ERR; fi\ndone\n"
                ),
            )
            .unwrap();
            std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
            conf.push_str(&format!(
                "auth_param basic program {helper}\nauth_param basic children 1\nacl authed proxy_auth REQUIRED\nhttp_access allow authed\n"
            ));
        }
        if options.negotiate_only {
            // Squid hands the helper "YR token" or "KK token"; no ticket is valid here.
            let helper = path("negotiate.sh");
            std::fs::write(
                &helper,
                "#!/bin/sh\nwhile read -r line; do echo 'NA no Kerberos here'; done\n",
            )
            .unwrap();
            std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
            conf.push_str(&format!(
                "auth_param negotiate program {helper}\nauth_param negotiate children 1\nacl signed proxy_auth REQUIRED\nhttp_access allow signed\nhttp_access deny all\n"
            ));
        }
        if let Some(name) = options.sni_blocked {
            conf.push_str(&format!(
                "acl step1 at_step SslBump1\nacl blocked_name ssl::server_name {name}\nssl_bump peek step1\nssl_bump terminate blocked_name\nssl_bump splice all\n"
            ));
        }
        conf.push_str("http_access allow all\n");
        std::fs::write(path("squid.conf"), conf).unwrap();
        let child = Command::new("squid")
            .args([
                "-N",
                "-n",
                &format!("preflight{port}"),
                "-f",
                &path("squid.conf"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start squid");
        let mut squid = Squid {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        squid.wait_ready();
        Some(squid)
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while StdStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "squid did not start ({exited:?}):\n{}",
                    self.log("cache.log")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`, with `userinfo@` when given.
    pub(crate) fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(info) => format!("http://{info}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Whether squid's access log shows `needle` within a few seconds (it logs a tunnel when
    /// the tunnel closes, a moment after the client is gone).
    pub(crate) fn logged(&self, needle: &str) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self.log("access.log").contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// One of squid's logs (`access.log`, `cache.log`).
    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the in-process SOCKS5 server behaves.
#[derive(Clone, Default)]
pub(crate) struct SocksOptions {
    /// Username/password authentication (RFC 1929) required with these.
    pub(crate) auth: Option<(String, String)>,
    /// Names it resolves; any other name gets "host unreachable".
    pub(crate) hosts: Vec<(String, IpAddr)>,
    /// Ports it refuses by rule ("connection not allowed by ruleset").
    pub(crate) denied_ports: Vec<u16>,
}

/// A SOCKS5 server on 127.0.0.1 that records each requested destination (`name:port` or
/// `ip:port`) and connects out from `PROXY_EGRESS`.
pub(crate) fn socks5(
    world: &World,
    options: SocksOptions,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = world.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    world.rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (options, log) = (options.clone(), log.clone());
            tokio::spawn(async move {
                let _ = socks_session(stream, &options, &log).await;
            });
        }
    });
    (addr, asked)
}

async fn socks_session(
    mut client: TcpStream,
    options: &SocksOptions,
    asked: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    match &options.auth {
        Some((user, password)) => {
            if !methods.contains(&2) {
                return client.write_all(&[5, 0xff]).await;
            }
            client.write_all(&[5, 2]).await?;
            let mut version_len = [0u8; 2];
            client.read_exact(&mut version_len).await?;
            let mut given_user = vec![0u8; usize::from(version_len[1])];
            client.read_exact(&mut given_user).await?;
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut given_password = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut given_password).await?;
            if given_user != user.as_bytes() || given_password != password.as_bytes() {
                return client.write_all(&[1, 1]).await;
            }
            client.write_all(&[1, 0]).await?;
        }
        None => client.write_all(&[5, 0]).await?,
    }
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            IpAddr::from(ip).to_string()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            IpAddr::from(ip).to_string()
        }
        _ => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    asked.lock().unwrap().push(format!("{host}:{port}"));
    let reply = |code: u8| [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    if options.denied_ports.contains(&port) {
        return client.write_all(&reply(2)).await;
    }
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match options.hosts.iter().find(|(name, _)| *name == host) {
            Some((_, ip)) => *ip,
            None => return client.write_all(&reply(4)).await,
        },
    };
    let socket = match ip {
        IpAddr::V4(_) => {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(PROXY_EGRESS.into(), 0))?;
            socket
        }
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    match socket.connect(SocketAddr::new(ip, port)).await {
        Ok(mut upstream) => {
            client.write_all(&reply(0)).await?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            client.write_all(&reply(5)).await
        }
        Err(_) => client.write_all(&reply(1)).await,
    }
}
