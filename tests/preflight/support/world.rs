//! A loopback world for the tests: a CA and certificates (rcgen), TLS servers (rustls), servers
//! that misbehave on purpose, a DNS server (hickory-server), and the binary to run against them.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Runtime;

/// The proxy variables preflight reads, as curl does.
pub(crate) const PROXY_VARIABLES: [&str; 8] = [
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// The binary under test, with none of the caller's proxy variables: a test sets its own.
pub(crate) fn preflight() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_preflight"));
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Whether this machine can make a private network namespace with `tools` in it (root,
/// unshare, and each tool); when not, says on stderr that `what` is skipped.
pub(crate) fn namespace_ready(what: &str, tools: &[&str]) -> bool {
    let script: Vec<String> = tools
        .iter()
        .map(|t| format!("command -v {t} >/dev/null"))
        .collect();
    let ready = Command::new("unshare")
        .args(["--net", "sh", "-c", &script.join(" && ")])
        .status();
    if !matches!(ready, Ok(s) if s.success()) {
        super::skip(&format!(
            "{what} needs root, unshare and {} (apt-get install nftables iproute2 squid)",
            tools.join(", ")
        ));
        return false;
    }
    true
}

/// Runs `program` in a new network namespace with loopback up, the nftables `rules` loaded, and
/// none of the caller's proxy variables.
pub(crate) fn in_namespace(rules: &str, program: &Path) -> Command {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    io::Write::write_all(&mut file, rules.as_bytes()).unwrap();
    // The file must outlive this function: the command reads it when it runs.
    let (_, path) = file.keep().unwrap();
    let mut command = Command::new("unshare");
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command
        .args([
            "--net",
            "sh",
            "-c",
            r#"rules="$1"; shift; ip link set lo up && nft -f "$rules"; ok=$?; rm -f "$rules"; [ "$ok" = 0 ] && exec "$@""#,
            "sh",
        ])
        .arg(path)
        .arg(program);
    command
}

/// Runs the binary; returns the exit code, stdout and stderr.
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    let out = preflight().args(args).output().expect("run preflight");
    let (code, stdout, stderr) = split(out);
    // What a person reads is plain words, whatever the run (help and man pages aside, which
    // name ranges of values in their own way).
    if !args.iter().any(|a| matches!(*a, "--help" | "-h" | "man")) {
        super::words::assert_plain_text(&stdout);
        super::words::assert_plain_text(&stderr);
    }
    (code, stdout, stderr)
}

pub(crate) fn split(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `preflight check --format json ARGS` and parses the report.
pub(crate) fn check_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {stderr}\n{stdout}"));
    super::words::assert_plain_words(&report);
    (code, report)
}

/// The check with `id` in a report.
pub(crate) fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

/// The failure kind of the check with `id` ("" when it has none).
pub(crate) fn kind<'a>(report: &'a Value, id: &str) -> &'a str {
    check(report, id)["error"]["kind"].as_str().unwrap_or("")
}

/// A block of loopback addresses, 127.N.0.x, for one test to bind its "hosts" on. Tests in
/// one process get different blocks, so they can bind the same ports side by side.
pub(crate) fn loopback_block() -> u8 {
    static NEXT: AtomicU8 = AtomicU8::new(10);
    // Wraps within 10..=249 so a long run of retries never reaches 127.0.x or 127.255.x.
    10 + NEXT.fetch_add(1, Ordering::Relaxed) % 240
}

pub(crate) fn lo(block: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, block, 0, host))
}

/// How a test certificate's validity lies relative to now.
#[derive(Clone, Copy)]
pub(crate) enum Validity {
    Current,
    Expired,
    NotYetValid,
    /// Valid since 2020, expiring this many days from now.
    ExpiresInDays(i64),
}

/// How a test TLS server is set up beyond its certificate.
#[derive(Clone, Default)]
pub(crate) struct ServerOptions {
    /// Require a client certificate signed by the CA.
    pub(crate) client_auth: bool,
    /// Ask for a client certificate signed by the CA, and complete without one too.
    pub(crate) client_auth_optional: bool,
    /// Offer only TLS 1.2.
    pub(crate) tls12_only: bool,
    /// ALPN protocols to accept.
    pub(crate) alpn: Vec<&'static str>,
}

/// A test certificate authority whose certificate is written to `pem` for --ca-file.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub(crate) pem: PathBuf,
}

impl Ca {
    pub(crate) fn new(dir: &Path) -> Ca {
        Ca::named(dir, "preflight test CA", "preflight tests", "ca.pem")
    }

    /// A CA with this common name and organization, its certificate written to `dir/file`.
    pub(crate) fn named(dir: &Path, cn: &str, org: &str, file: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = dir.join(file);
        std::fs::write(&pem, issuer.pem()).unwrap();
        Ca { issuer, pem }
    }

    /// A server configuration with a certificate for `names`, signed by this CA.
    pub(crate) fn server(&self, names: &[&str], validity: Validity) -> Arc<ServerConfig> {
        self.server_with(names, validity, ServerOptions::default())
    }

    /// A server configuration with more options.
    pub(crate) fn server_with(
        &self,
        names: &[&str],
        validity: Validity,
        options: ServerOptions,
    ) -> Arc<ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(names, validity)
            .signed_by(&key, &self.issuer)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        server_config(cert.der().clone(), &key, options, roots)
    }

    /// A client certificate valid only from `from` until `until`, and its key, signed by this
    /// CA, written to `dir/NAME.crt` and `dir/NAME.key`.
    pub(crate) fn client_dated(
        &self,
        dir: &Path,
        name: &str,
        from: time::OffsetDateTime,
        until: time::OffsetDateTime,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![format!("{name}.client.test")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = from;
        params.not_after = until;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        write_pair(dir, name, &cert, &key)
    }

    /// A server certificate for `names` and its PKCS#8 key, signed by this CA, written to
    /// `dir/NAME.crt` and `dir/NAME.key` for servers that read files (nginx, s_server).
    pub(crate) fn server_files(
        &self,
        dir: &Path,
        file: &str,
        names: &[&str],
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(names, Validity::Current)
            .signed_by(&key, &self.issuer)
            .unwrap();
        write_pair(dir, file, &cert, &key)
    }

    /// An intermediate CA signed by this one.
    pub(crate) fn intermediate(&self, dir: &Path, cn: &str, file: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let issuer = CertifiedIssuer::signed_by(params, key, &self.issuer).unwrap();
        let pem = dir.join(file);
        std::fs::write(&pem, issuer.pem()).unwrap();
        Ca { issuer, pem }
    }

    /// A client certificate and PKCS#8 key signed by this CA, written to `dir/NAME.crt` and
    /// `dir/NAME.key`.
    pub(crate) fn client(
        &self,
        dir: &Path,
        name: &str,
        alg: &'static rcgen::SignatureAlgorithm,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::new(vec![format!("{name}.client.test")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        write_pair(dir, name, &cert, &key)
    }
}

/// Writes a certificate and its key to `dir/NAME.crt` and `dir/NAME.key`.
fn write_pair(
    dir: &Path,
    name: &str,
    cert: &rcgen::Certificate,
    key: &KeyPair,
) -> (PathBuf, PathBuf) {
    let (crt, pem) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    (crt, pem)
}

fn leaf_params(names: &[&str], validity: Validity) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "preflight test server");
    let (from, until) = match validity {
        Validity::Current => (date_time_ymd(2020, 1, 1), date_time_ymd(2090, 1, 1)),
        Validity::Expired => (date_time_ymd(2020, 1, 1), date_time_ymd(2021, 1, 1)),
        Validity::NotYetValid => (date_time_ymd(2090, 1, 1), date_time_ymd(2091, 1, 1)),
        Validity::ExpiresInDays(days) => (
            date_time_ymd(2020, 1, 1),
            time::OffsetDateTime::now_utc() + time::Duration::days(days) + time::Duration::hours(1),
        ),
    };
    params.not_before = from;
    params.not_after = until;
    params
}

/// A server configuration with a self-signed certificate no CA vouches for.
pub(crate) fn self_signed_server(names: &[&str]) -> Arc<ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(names, Validity::Current)
        .self_signed(&key)
        .unwrap();
    server_config(
        cert.der().clone(),
        &key,
        ServerOptions::default(),
        rustls::RootCertStore::empty(),
    )
}

/// A server presenting a self-signed certificate made from `params`: for tests where the
/// certificate's names are the point.
pub(crate) fn self_signed_from(params: CertificateParams) -> Arc<ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    server_config(
        cert.der().clone(),
        &key,
        ServerOptions::default(),
        rustls::RootCertStore::empty(),
    )
}

/// Kong's shared cluster certificate, as `kong hybrid gen_cert` makes it: self-signed, CN
/// kong_clustering, no subject alternative name. Returns a server configuration presenting it,
/// and its certificate and key written to `dir/cluster.crt` and `dir/cluster.key`.
pub(crate) fn shared_cluster_cert(dir: &Path) -> (Arc<ServerConfig>, PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "kong_clustering");
    let cert = params.self_signed(&key).unwrap();
    let (crt, pem) = (dir.join("cluster.crt"), dir.join("cluster.key"));
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    // A Kong control plane asks every data plane for its certificate (in shared mode, the
    // same one it holds).
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let options = ServerOptions {
        client_auth_optional: true,
        ..ServerOptions::default()
    };
    let config = server_config(cert.der().clone(), &key, options, roots);
    (config, crt, pem)
}

fn server_config(
    cert: CertificateDer<'static>,
    key: &KeyPair,
    options: ServerOptions,
    client_roots: rustls::RootCertStore,
) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if options.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = if options.client_auth || options.client_auth_optional {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(client_roots),
            provider,
        );
        let verifier = match options.client_auth_optional {
            true => verifier.allow_unauthenticated().build().unwrap(),
            false => verifier.build().unwrap(),
        };
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(vec![cert], key).unwrap();
    config.alpn_protocols = options.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// What a loopback server does with each connection.
#[derive(Clone)]
pub(crate) enum Behaviour {
    /// Completes a TLS handshake with this configuration.
    Tls(Arc<ServerConfig>),
    /// Accepts and holds the connection without a word.
    Silent,
    /// Speaks another protocol (an SSH banner).
    NotTls,
    /// Reads the client's first bytes (a ClientHello), then resets the connection, as a
    /// firewall that filters on the TLS server name does.
    Reset,
    /// Accepts and keeps the connection open (a plain TCP service).
    Accept,
    /// Serves HTTP/1.1 (over TLS when given a configuration): see `web`.
    Web(Option<Arc<ServerConfig>>),
    /// Terminates TLS and relays the bytes to another address: an HTTPS proxy in front of a
    /// plain one.
    TlsRelay(Arc<ServerConfig>, SocketAddr),
    /// An inspecting proxy: answers any CONNECT with 200, then completes TLS itself with this
    /// configuration (its own certificate) instead of reaching the target.
    Bump(Arc<ServerConfig>),
}

/// Servers, a DNS server and temporary files, alive as long as the world.
pub(crate) struct World {
    pub(crate) rt: Runtime,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca: Ca,
    pub(crate) dns_queries: Arc<Mutex<HashMap<String, usize>>>,
    /// Aliases (name, canonical name) the next `dns` server serves as CNAME records.
    pub(crate) aliases: Mutex<Vec<(String, String)>>,
}

impl World {
    pub(crate) fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new(dir.path());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        World {
            rt,
            dir,
            ca,
            dns_queries: Arc::default(),
            aliases: Mutex::default(),
        }
    }

    pub(crate) fn ca_file(&self) -> &str {
        self.ca.pem.to_str().unwrap()
    }

    /// Binds `addr` (port 0 for any) and serves `behaviour`; returns the bound address.
    pub(crate) fn serve(&self, addr: SocketAddr, behaviour: Behaviour) -> io::Result<SocketAddr> {
        let listener = self.rt.block_on(TcpListener::bind(addr))?;
        let bound = listener.local_addr()?;
        self.rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(stream, behaviour.clone()));
            }
        });
        Ok(bound)
    }

    /// Serves on any free port of 127.0.0.1.
    pub(crate) fn serve_any(&self, behaviour: Behaviour) -> SocketAddr {
        self.serve("127.0.0.1:0".parse().unwrap(), behaviour)
            .unwrap()
    }

    /// Starts a DNS server on 127.0.0.1 authoritative for the zones of `records`' names
    /// (`zones`), answering A/AAAA from `records` and TXT for `txt_only` names, and never
    /// answering for `silent` names. Names outside the zones get REFUSED.
    pub(crate) fn dns(
        &self,
        zones: &[&str],
        records: &[(&str, IpAddr)],
        txt_only: &[&str],
        silent: &[&str],
    ) -> SocketAddr {
        let mut catalog = Catalog::new();
        for zone in zones {
            let origin = Name::from_str(&format!("{zone}.")).unwrap();
            let mut handler = InMemoryZoneHandler::<
                hickory_server::net::runtime::TokioRuntimeProvider,
            >::empty(
                origin.clone(), ZoneType::Primary, AxfrPolicy::Deny
            );
            let soa = SOA::new(
                Name::from_str(&format!("ns.{zone}.")).unwrap(),
                Name::from_str(&format!("admin.{zone}.")).unwrap(),
                1,
                3600,
                600,
                86400,
                60,
            );
            handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
            for (name, ip) in records.iter().filter(|(n, _)| in_zone(n, zone)) {
                let name = Name::from_str(&format!("{name}.")).unwrap();
                let rdata = match ip {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                handler.upsert_mut(Record::from_rdata(name, 60, rdata), 1);
            }
            for (alias, canonical) in self.aliases.lock().unwrap().iter() {
                if in_zone(alias, zone) {
                    let name = Name::from_str(&format!("{alias}.")).unwrap();
                    let target = Name::from_str(&format!("{canonical}.")).unwrap();
                    let cname = RData::CNAME(hickory_proto::rr::rdata::CNAME(target));
                    handler.upsert_mut(Record::from_rdata(name, 60, cname), 1);
                }
            }
            for name in txt_only.iter().filter(|n| in_zone(n, zone)) {
                let name = Name::from_str(&format!("{name}.")).unwrap();
                let txt = RData::TXT(TXT::new(vec!["no address here".to_string()]));
                handler.upsert_mut(Record::from_rdata(name, 60, txt), 1);
            }
            catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);
        }
        let handler = TestDns {
            catalog,
            silent: silent
                .iter()
                .map(|n| LowerName::new(&Name::from_str(&format!("{n}.")).unwrap()))
                .collect(),
            queries: self.dns_queries.clone(),
        };
        // UDP and TCP on the same port: a large answer is truncated over UDP and asked again
        // over TCP, as from any real server.
        let (socket, tcp) = (0..20)
            .find_map(|_| {
                let socket = self.rt.block_on(UdpSocket::bind("127.0.0.1:0")).ok()?;
                let tcp = self
                    .rt
                    .block_on(TcpListener::bind(socket.local_addr().ok()?))
                    .ok()?;
                Some((socket, tcp))
            })
            .expect("a free UDP and TCP port pair");
        let addr = socket.local_addr().unwrap();
        let mut server = Server::new(handler);
        let _guard = self.rt.enter();
        server.register_socket(socket);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        self.rt.spawn(async move {
            let _ = server.block_until_done().await;
        });
        addr
    }
}

fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

async fn handle(mut stream: TcpStream, behaviour: Behaviour) {
    match behaviour {
        Behaviour::Tls(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            if let Ok(mut tls) = acceptor.accept(stream).await {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let _ = tls.shutdown().await;
            }
        }
        Behaviour::Silent | Behaviour::Accept => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Behaviour::NotTls => {
            let _ = stream
                .write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
                .await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Behaviour::Web(None) => serve_web(stream).await,
        Behaviour::Web(Some(config)) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_web(tls).await;
            }
        }
        Behaviour::Reset => {
            let mut first = [0u8; 16];
            let _ = stream.read(&mut first).await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Behaviour::TlsRelay(config, to) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            if let (Ok(mut tls), Ok(mut upstream)) =
                (acceptor.accept(stream).await, TcpStream::connect(to).await)
            {
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            }
        }
        Behaviour::Bump(config) => {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                if !matches!(stream.read(&mut byte).await, Ok(1)) {
                    return;
                }
                head.push(byte[0]);
            }
            if stream
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_ok()
            {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let _ = tls.shutdown().await;
                }
            }
        }
    }
}

/// The DNS handler: a catalog, names it never answers, and a count of queries per name.
struct TestDns {
    catalog: Catalog,
    silent: Vec<LowerName>,
    queries: Arc<Mutex<HashMap<String, usize>>>,
}

#[async_trait::async_trait]
impl RequestHandler for TestDns {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        if let Ok(info) = request.request_info() {
            let name = info.query.name().to_string();
            *self
                .queries
                .lock()
                .unwrap()
                .entry(name.trim_end_matches('.').to_string())
                .or_default() += 1;
            if self.silent.contains(info.query.name()) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// A small web server: `/` answers 200, `/down` 503, `/slow` never answers, and `/ws` accepts
/// a WebSocket upgrade (101 with the right Sec-WebSocket-Accept).
async fn serve_web<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper::{Response, StatusCode};
    let service = hyper::service::service_fn(
        |mut req: hyper::Request<hyper::body::Incoming>| async move {
            let mut response =
                Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")));
            match req.uri().path() {
                "/down" => *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE,
                "/slow" => tokio::time::sleep(Duration::from_secs(30)).await,
                // A Kong control plane's cluster listener answers the data plane's upgrade too.
                "/ws" | "/v1/outlet" if req.headers().contains_key("sec-websocket-key") => {
                    let key = req.headers()["sec-websocket-key"]
                        .to_str()
                        .unwrap_or_default();
                    let accept = websocket_accept(key);
                    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                    let headers = response.headers_mut();
                    headers.insert("upgrade", "websocket".parse().unwrap());
                    headers.insert("connection", "Upgrade".parse().unwrap());
                    headers.insert("sec-websocket-accept", accept.parse().unwrap());
                    // As a control plane, hold the WebSocket open until the client leaves.
                    let upgrade = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        use tokio::io::AsyncReadExt;
                        if let Ok(upgraded) = upgrade.await {
                            let mut io = hyper_util::rt::TokioIo::new(upgraded);
                            let mut rest = [0u8; 64];
                            let _ =
                                tokio::time::timeout(Duration::from_secs(5), io.read(&mut rest))
                                    .await;
                        }
                    });
                }
                _ => {}
            }
            Ok::<_, std::convert::Infallible>(response)
        },
    );
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

/// Rewrites a PKCS#8 EC key PEM as SEC1 ("EC PRIVATE KEY"): the PrivateKeyInfo's inner
/// OCTET STRING is the SEC1 ECPrivateKey.
pub(crate) fn pkcs8_to_sec1_pem(pkcs8_pem: &str) -> String {
    use base64::Engine;
    let b64: String = pkcs8_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    // SEQUENCE { INTEGER 0, SEQUENCE AlgorithmIdentifier, OCTET STRING ECPrivateKey, ... }
    let (_, body) = der_item(&der);
    let (rest, _version) = der_split(body);
    let (rest, _alg) = der_split(rest);
    let (_, octets) = der_item(rest);
    let b64 = base64::engine::general_purpose::STANDARD.encode(octets);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// The content of the DER item at the start of `der`, and what follows it.
fn der_item(der: &[u8]) -> (&[u8], &[u8]) {
    let (len, header) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (der[2] as usize, 3),
        0x82 => (((der[2] as usize) << 8) | der[3] as usize, 4),
        _ => panic!("DER length too long for a test key"),
    };
    (&der[header + len..], &der[header..header + len])
}

/// Skips the DER item at the start of `der`: (what follows, the item's content).
fn der_split(der: &[u8]) -> (&[u8], &[u8]) {
    der_item(der)
}

/// The Sec-WebSocket-Accept a server answers `key` with (RFC 6455, section 4.2.2), computed
/// here rather than by the code under test.
pub(crate) fn websocket_accept(key: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}
