//! `check --kong-conf` does what the node's Kong does (Kong/kong is the specification): its
//! route (`proxy_server` only with `cluster_use_proxy`, port 443 when absent, no proxy variable
//! or NO_PROXY), its trust (`lua_ssl_trusted_certificate`, `cluster_ca_cert`), its resolver's
//! record types (`dns_order`), its URL (`cluster_control_plane` with a path), its RPC outlet
//! (`/v2/outlet`, `kong.meta.v1`), and a control plane that closes right after its 101.
//! Whatever Kong would not do (`--ca-file`, `--proxy`, the environment's proxy) is a what-if:
//! the verdict stays Kong's, and the hint names the kong.conf line that changes it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::konnect::cluster_cert;
use crate::support::proxies::{Squid, SquidOptions, isolated};
use crate::support::world::{
    ServerOptions, Validity, World, check, lo, loopback_block, preflight, split, websocket_accept,
};

fn test_name(name: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}

/// How the test control plane answers the RPC outlet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rpc {
    /// 101 with `Sec-WebSocket-Protocol: kong.meta.v1`, as a control plane with RPC.
    Echoed,
    /// 101 without the protocol.
    NotEchoed,
    /// 404: a control plane without RPC.
    Absent,
}

/// How the test control plane behaves.
#[derive(Clone)]
struct Behaviour {
    /// The path before the outlets (`/cp/abc`), or empty.
    prefix: &'static str,
    rpc: Rpc,
    /// A close frame sent right after the 101 of `/v1/outlet`: code and reason.
    close: Option<(u16, &'static str)>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            prefix: "",
            rpc: Rpc::Echoed,
            close: None,
        }
    }
}

/// What the control plane saw: each request line, with the WebSocket protocol asked for.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A Kong-like control plane on `addr`: mutual TLS (a client certificate from the world's CA),
/// a certificate for `cp.test`, `/v1/outlet` and `/v2/outlet` under `behaviour.prefix`, 404
/// elsewhere.
fn control_plane(world: &World, addr: SocketAddr, behaviour: Behaviour) -> (SocketAddr, Seen) {
    let options = ServerOptions {
        client_auth: true,
        ..ServerOptions::default()
    };
    let config = world
        .ca
        .server_with(&["cp.test"], Validity::Current, options);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = world.rt.block_on(TcpListener::bind(addr)).unwrap();
    let bound = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    world.rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, log, behaviour) = (acceptor.clone(), log.clone(), behaviour.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Some(head) = crate::cluster_upgrade::read_head(&mut tls).await else {
                    return;
                };
                let header = |wanted: &str| {
                    head.lines().find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case(wanted)
                            .then(|| value.trim().to_string())
                    })
                };
                let line = head.lines().next().unwrap_or_default().to_string();
                let protocol = header("sec-websocket-protocol");
                log.lock().unwrap().push((line.clone(), protocol));
                let path = line.split(' ').nth(1).unwrap_or_default();
                let path = path.split('?').next().unwrap_or_default();
                let outlet = path.strip_prefix(behaviour.prefix).unwrap_or_default();
                let accept = websocket_accept(&header("sec-websocket-key").unwrap_or_default());
                let switching = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                );
                let answer = match (outlet, behaviour.rpc) {
                    ("/v1/outlet", _) => format!("{switching}\r\n"),
                    ("/v2/outlet", Rpc::Echoed) => {
                        format!("{switching}Sec-WebSocket-Protocol: kong.meta.v1\r\n\r\n")
                    }
                    ("/v2/outlet", Rpc::NotEchoed) => format!("{switching}\r\n"),
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                };
                let _ = tls.write_all(answer.as_bytes()).await;
                if let (Some((code, reason)), "/v1/outlet") = (behaviour.close, outlet) {
                    // An unmasked close frame (RFC 6455, 5.5.1), as a server sends it.
                    let mut frame = vec![0x88, (2 + reason.len()) as u8];
                    frame.extend_from_slice(&code.to_be_bytes());
                    frame.extend_from_slice(reason.as_bytes());
                    let _ = tls.write_all(&frame).await;
                }
                let _ = tls.flush().await;
                // Hold the connection while the client judges it.
                let mut rest = [0u8; 64];
                let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut rest)).await;
            });
        }
    });
    (bound, seen)
}

/// A data plane's kong.conf in pki mode for `control_plane`, with `extra` lines; returns its
/// path.
fn kong_conf(world: &World, control_plane: &str, extra: &str) -> String {
    let (crt, key) = cluster_cert(world);
    let conf = format!(
        "role = data_plane\ncluster_mtls = pki\ncluster_control_plane = {control_plane}\ncluster_server_name = cp.test\n\
         cluster_telemetry_endpoint =\ncluster_cert = {crt}\ncluster_cert_key = {key}\n\
         proxy_listen = off\nstream_listen = off\n{extra}"
    );
    let path = world
        .dir
        .path()
        .join(format!("kong-{}.conf", rand_suffix()));
    std::fs::write(&path, conf).unwrap();
    path.to_str().unwrap().to_string()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The lines that make the world's CA the node's own trust (`cluster_ca_cert`).
fn trusting(world: &World) -> String {
    format!("cluster_ca_cert = {}\n", world.ca_file())
}

/// Runs `check --format json --kong-conf CONF ARGS` with `env`; (exit code, report, stderr).
fn run(conf: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut all = vec!["--kong-conf", conf];
    all.extend_from_slice(args);
    run_args(&all, env)
}

/// Runs `check --format json --timeout 2s ARGS` with `env`; (exit code, report, stderr).
fn run_args(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut command = preflight();
    command
        .args(["check", "--format", "json", "--timeout", "2s"])
        .args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let (code, stdout, stderr) = split(command.output().unwrap());
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}{stderr}"));
    crate::support::words::assert_plain_words(&report);
    (code, report, stderr)
}

fn cause(check: &Value) -> &str {
    check["error"]["cause"].as_str().unwrap_or("")
}

fn hint(check: &Value) -> &str {
    check["error"]["hint"].as_str().unwrap_or("")
}

#[test]
fn without_a_port_proxy_server_is_dialed_on_443_as_kong_does() {
    let world = World::new();
    // Nothing listens on this address: the failure names the port dialed.
    let proxy_ip = lo(loopback_block(), 9);
    let conf = kong_conf(
        &world,
        "127.0.0.1:9",
        &format!("cluster_use_proxy = on\nproxy_server = http://{proxy_ip}\n"),
    );
    let (code, report, stderr) = run(&conf, &[], &[]);
    assert_eq!(code, 1, "{report:#}{stderr}");
    let cp = check(&report, "kong.conf.control-plane");
    assert_eq!(cp["proxy"], format!("http://{proxy_ip}:443"), "{cp:#}");
    assert_eq!(cp["error"]["kind"], "proxy_unreachable", "{cp:#}");
}

#[test]
fn kong_confs_route_holds_against_the_shells_proxy_variables() {
    if !isolated(&test_name(
        "kong_confs_route_holds_against_the_shells_proxy_variables",
    )) {
        return;
    }
    let world = World::new();
    // Port 443: direct packets to it are dropped in this namespace; squid's are not.
    let (cp, seen) = control_plane(
        &world,
        SocketAddr::new(lo(loopback_block(), 1), 443),
        Behaviour::default(),
    );
    let squid = Squid::start(&SquidOptions::default()).unwrap();
    let proxy = squid.url(None);
    let target = cp.to_string();

    // kong.conf says: through proxy_server. NO_PROXY=* in the shell does not change Kong's
    // route (Kong reads no NO_PROXY), so neither does it change preflight's.
    let through = kong_conf(
        &world,
        &target,
        &format!(
            "{}cluster_use_proxy = on\nproxy_server = {proxy}\n",
            trusting(&world)
        ),
    );
    let (code, report, stderr) = run(&through, &[], &[("NO_PROXY", "*"), ("no_proxy", "*")]);
    assert_eq!(code, 0, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["proxy"], proxy.as_str(), "{c:#}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("not used for the kong.conf cluster checks"),
        "{notes}"
    );
    assert!(squid.logged("CONNECT"), "{}", squid.log("access.log"));

    // kong.conf says: direct (cluster_use_proxy off, no proxy_server). The shell's https_proxy
    // and --proxy reach the control plane, Kong does not: the verdict is Kong's, and the hint
    // names the kong.conf lines that would make the proxy Kong's route.
    let direct = kong_conf(&world, &target, &trusting(&world));
    for (args, env, source) in [
        (vec![], vec![("https_proxy", proxy.as_str())], "https_proxy"),
        (vec!["--proxy", proxy.as_str()], vec![], "--proxy"),
    ] {
        let (code, report, stderr) = run(&direct, &args, &env);
        assert_eq!(code, 1, "{source}: {report:#}{stderr}");
        let c = check(&report, "kong.conf.control-plane");
        assert_eq!(c["status"], "fail", "{c:#}");
        assert_eq!(c["proxy"], Value::Null, "{c:#}");
        assert_eq!(cause(c), "reached_through_proxy", "{c:#}");
        assert!(
            hint(c).contains(&format!(
                "proxy_server = {proxy} and cluster_use_proxy = on"
            )),
            "{c:#}"
        );
        let opinion = c["second_opinion"]["conclusion"].as_str().unwrap();
        assert!(opinion.contains(source), "{opinion}");
    }

    // proxy_server set, cluster_use_proxy off: the one setting that fixes it is named.
    let unused = kong_conf(
        &world,
        &target,
        &format!("{}proxy_server = {proxy}\n", trusting(&world)),
    );
    let (code, report, _) = run(&unused, &[], &[]);
    assert_eq!(code, 1);
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(cause(c), "reached_through_proxy", "{c:#}");
    assert!(
        hint(c).contains("set cluster_use_proxy = on in kong.conf"),
        "{c:#}"
    );
    assert!(!seen.lock().unwrap().is_empty());
}

#[test]
fn a_ca_file_is_a_what_if_kongs_own_trust_decides() {
    let world = World::new();
    let (cp, _) = control_plane(&world, "127.0.0.1:0".parse().unwrap(), Behaviour::default());
    let target = cp.to_string();
    // Kong trusts the system store only: the world's private CA is not in it.
    let system_only = kong_conf(&world, &target, "lua_ssl_trusted_certificate = system\n");
    let (code, report, stderr) = run(&system_only, &["--ca-file", world.ca_file()], &[]);
    assert_eq!(code, 1, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["error"]["kind"], "cert_untrusted", "{c:#}");
    assert_eq!(cause(c), "trusted_outside_kong", "{c:#}");
    assert!(
        hint(c).contains(&format!(
            "lua_ssl_trusted_certificate = system,{}",
            world.ca_file()
        )),
        "{c:#}"
    );
    assert!(
        c["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only --ca-file vouches for it"),
        "{c:#}"
    );
    // The line the hint gives makes Kong trust it, and the check passes without --ca-file.
    let listed = kong_conf(
        &world,
        &target,
        &format!("lua_ssl_trusted_certificate = system,{}\n", world.ca_file()),
    );
    let (code, report, stderr) = run(&listed, &[], &[]);
    assert_eq!(code, 0, "{report:#}{stderr}");
    // So does cluster_ca_cert, which Kong adds to the trust in pki mode.
    let ca_cert = kong_conf(&world, &target, &trusting(&world));
    let (code, report, stderr) = run(&ca_cert, &[], &[]);
    assert_eq!(code, 0, "{report:#}{stderr}");
}

#[test]
fn a_name_with_only_ipv6_addresses_is_not_one_kongs_resolver_asks_for() {
    let world = World::new();
    let (cp, _) = control_plane(&world, "[::1]:0".parse().unwrap(), Behaviour::default());
    let dns = world
        .dns(
            &["kong.test"],
            &[("cp6.kong.test", IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]))],
            &[],
            &[],
        )
        .to_string();
    let target = format!("cp6.kong.test:{}", cp.port());
    let default_order = kong_conf(&world, &target, &trusting(&world));
    let (code, report, stderr) = run(&default_order, &["--dns-server", &dns], &[]);
    assert_eq!(code, 1, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["error"]["kind"], "no_records", "{c:#}");
    assert_eq!(cause(c), "kong_asks_other_family", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("dns_order = LAST,SRV,A,CNAME (Kong's default)"),
        "{message}"
    );
    assert!(hint(c).contains("add AAAA to dns_order"), "{c:#}");
    // With AAAA in dns_order, Kong asks for it, and the check passes.
    let with_aaaa = kong_conf(
        &world,
        &target,
        &format!("{}dns_order = LAST,SRV,A,AAAA,CNAME\n", trusting(&world)),
    );
    let (code, report, stderr) = run(&with_aaaa, &["--dns-server", &dns], &[]);
    assert_eq!(code, 0, "{report:#}{stderr}");
}

#[test]
fn a_control_plane_path_goes_before_the_outlet_as_kong_builds_the_url() {
    let world = World::new();
    let behaviour = Behaviour {
        prefix: "/cp/abc123",
        ..Behaviour::default()
    };
    let (cp, seen) = control_plane(&world, "127.0.0.1:0".parse().unwrap(), behaviour);
    let conf = kong_conf(&world, &format!("{cp}/cp/abc123"), &trusting(&world));
    let (code, report, stderr) = run(&conf, &[], &[]);
    assert_eq!(code, 0, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["status"], "ok", "{c:#}");
    let lines = seen.lock().unwrap().clone();
    assert!(
        lines[0].0.starts_with("GET /cp/abc123/v1/outlet?node_id="),
        "{lines:?}"
    );
}

#[test]
fn with_cluster_rpc_the_rpc_outlet_is_checked_as_kong_opens_it() {
    let world = World::new();
    let (with_rpc, seen) =
        control_plane(&world, "127.0.0.1:0".parse().unwrap(), Behaviour::default());
    let conf = kong_conf(
        &world,
        &with_rpc.to_string(),
        &format!("{}cluster_rpc = on\n", trusting(&world)),
    );
    let (code, report, stderr) = run(&conf, &[], &[]);
    assert_eq!(code, 0, "{report:#}{stderr}");
    let rpc = check(&report, "kong.conf.control-plane-rpc");
    assert_eq!(rpc["status"], "ok", "{rpc:#}");
    assert_eq!(rpc["required"], false, "{rpc:#}");
    let asked = seen.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .any(|(line, protocol)| line.starts_with("GET /v2/outlet ")
                && protocol.as_deref() == Some("kong.meta.v1")),
        "{asked:?}"
    );

    // A control plane without RPC: the node loses RPC (a failed optional check), or, with
    // cluster_rpc_sync on, its configuration (a failed required check).
    for (rpc, sync, code_wanted) in [
        (Rpc::Absent, "off", 0),
        (Rpc::Absent, "on", 1),
        (Rpc::NotEchoed, "on", 1),
    ] {
        let behaviour = Behaviour {
            rpc,
            ..Behaviour::default()
        };
        let (cp, _) = control_plane(&world, "127.0.0.1:0".parse().unwrap(), behaviour);
        let conf = kong_conf(
            &world,
            &cp.to_string(),
            &format!(
                "{}cluster_rpc = on\ncluster_rpc_sync = {sync}\n",
                trusting(&world)
            ),
        );
        let (code, report, stderr) = run(&conf, &[], &[]);
        assert_eq!(code, code_wanted, "{report:#}{stderr}");
        let c = check(&report, "kong.conf.control-plane-rpc");
        assert_eq!(c["status"], "fail", "{c:#}");
        assert_eq!(c["error"]["kind"], "upgrade_refused", "{c:#}");
        assert_eq!(cause(c), "no_rpc", "{c:#}");
        assert!(hint(c).contains("cluster_rpc = off"), "{c:#}");
        assert_eq!(check(&report, "kong.conf.control-plane")["status"], "ok");
    }
}

#[test]
fn a_close_frame_right_after_the_upgrade_is_a_refusal_with_its_reason() {
    let world = World::new();
    let behaviour = Behaviour {
        close: Some((1008, "data plane version 9.9.0 is not compatible")),
        ..Behaviour::default()
    };
    let (cp, _) = control_plane(&world, "127.0.0.1:0".parse().unwrap(), behaviour);
    let conf = kong_conf(&world, &cp.to_string(), &trusting(&world));
    let (code, report, stderr) = run(&conf, &[], &[]);
    assert_eq!(code, 1, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["error"]["kind"], "upgrade_refused", "{c:#}");
    assert_eq!(cause(c), "closed_after_upgrade", "{c:#}");
    assert!(
        hint(c).contains("refuses this data plane by policy"),
        "{c:#}"
    );
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("1008 (policy violation)")
            && message.contains("data plane version 9.9.0 is not compatible"),
        "{message}"
    );
}

#[test]
fn a_helm_values_file_is_read_as_the_nodes_settings() {
    let world = World::new();
    let (cp, seen) = control_plane(&world, "127.0.0.1:0".parse().unwrap(), Behaviour::default());
    let (crt, key) = cluster_cert(&world);
    let values = world.dir.path().join("values.yaml");
    std::fs::write(
        &values,
        format!(
            "image:\n  repository: kong/kong-gateway\nsecretVolumes:\n  - kong-cluster-cert\nenv:\n  role: data_plane\n  database: \"off\"\n  cluster_mtls: pki\n  cluster_control_plane: {cp}\n  cluster_server_name: cp.test\n  cluster_telemetry_endpoint: \"\"\n  cluster_cert: {crt}\n  cluster_cert_key: {key}\n  cluster_ca_cert: /etc/secrets/kong-cluster-cert/ca.crt\n  proxy_listen: \"off\"\n"
        ),
    )
    .unwrap();
    let values = values.to_str().unwrap();
    let (code, report, stderr) = run_args(&["--kong-values", values], &[]);
    // The CA is mounted in the pod, not here: said in a note, and the file's finding fails.
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("/etc/secrets/kong-cluster-cert/ca.crt is mounted in the pod from the secret volume kong-cluster-cert"),
        "{notes}"
    );
    assert_eq!(code, 1, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert!(
        c["note"]
            .as_str()
            .unwrap()
            .contains("values.yaml env.cluster_control_plane"),
        "{c:#}"
    );
    // With the CA given as the shell's KONG_ variable, as the pod would have it, the node's
    // own handshake passes.
    let (code, report, stderr) = run_args(
        &["--kong-values", values],
        &[("KONG_CLUSTER_CA_CERT", world.ca_file())],
    );
    assert_eq!(code, 0, "{report:#}{stderr}");
    assert!(!seen.lock().unwrap().is_empty());
}

#[test]
fn an_ip_list_is_checked_address_by_address_and_a_stale_one_is_named() {
    let world = World::new();
    let block = loopback_block();
    let config = world.ca.server(&["cp.iplist.test"], Validity::Current);
    let resolved = world
        .serve(
            SocketAddr::new(lo(block, 1), 0),
            crate::support::world::Behaviour::Tls(config.clone()),
        )
        .unwrap();
    let port = resolved.port();
    // A second address of the same service, listed; a third, listed, where nothing answers.
    world
        .serve(
            SocketAddr::new(lo(block, 2), port),
            crate::support::world::Behaviour::Tls(config),
        )
        .unwrap();
    let dns = world
        .dns(
            &["iplist.test"],
            &[("cp.iplist.test", lo(block, 1))],
            &[],
            &[],
        )
        .to_string();
    let list = world.dir.path().join("ip-addresses.json");
    std::fs::write(
        &list,
        format!(
            "{{\"ingressIPs\": {{\"us\": [\"{}\", \"{}\"]}}, \"egressIPs\": {{\"us\": [\"{}\"]}}, \"version\": 7}}",
            lo(block, 2),
            lo(block, 3),
            lo(block, 1)
        ),
    )
    .unwrap();
    let target = format!("tls://cp.iplist.test:{port}");
    let list_path = list.to_str().unwrap();
    let (code, report, stderr) = run_args(
        &[
            "--dns-server",
            &dns,
            "--ca-file",
            world.ca_file(),
            "--ip-list",
            list_path,
            &target,
        ],
        &[],
    );
    // The listed addresses are optional checks: the name itself passes, so the run does.
    assert_eq!(code, 0, "{report:#}{stderr}");
    let by_ip = |ip: IpAddr| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"].as_str().unwrap().ends_with(&format!("@{ip}")))
            .unwrap_or_else(|| panic!("no check of {ip}: {report:#}"))
    };
    let live = by_ip(lo(block, 2));
    assert_eq!(live["status"], "ok", "{live:#}");
    assert_eq!(live["tls"]["san"], serde_json::json!(["cp.iplist.test"]));
    let dead = by_ip(lo(block, 3));
    assert_eq!(dead["status"], "fail", "{dead:#}");
    assert_eq!(dead["required"], false);
    // The address DNS gives is only in the egress list: the allowlist made from it is stale.
    let notes = report["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "cp.iplist.test resolves to {}, which --ip-list",
            lo(block, 1)
        )),
        "{notes}"
    );
    // A file that is neither JSON nor a list of addresses is one line, exit 2.
    std::fs::write(&list, "192.0.2.1\nfirewall.example\n").unwrap();
    let mut command = preflight();
    command.args(["check", "--ip-list"]).arg(&list).arg(&target);
    let (code, stdout, stderr) = split(command.output().unwrap());
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("line 2: `firewall.example` is not an IP address"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn kongs_own_name_server_and_hosts_file_answer_for_the_cluster_hosts() {
    let world = World::new();
    let (cp, _) = control_plane(&world, "127.0.0.1:0".parse().unwrap(), Behaviour::default());
    let dns = world
        .dns(
            &["kong.test"],
            &[("cp-dns.kong.test", "127.0.0.1".parse().unwrap())],
            &[],
            &[],
        )
        .to_string();
    // dns_resolver: the node asks this server, not /etc/resolv.conf's; so does the run.
    let conf = kong_conf(
        &world,
        &format!("cp-dns.kong.test:{}", cp.port()),
        &format!("{}dns_resolver = {dns}\n", trusting(&world)),
    );
    let (code, report, stderr) = run(&conf, &[], &[]);
    assert_eq!(code, 0, "{report:#}{stderr}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("the name server the node's Kong asks (dns_resolver"),
        "{notes}"
    );
    // dns_hostsfile: a name only the node's hosts file knows (its DNS server knows nothing of
    // it), as air-gapped nodes pin their control plane.
    let hosts = world.dir.path().join("kong-hosts");
    std::fs::write(
        &hosts,
        "# the node's own\n127.0.0.1   cp-pinned.air.test  cp\n",
    )
    .unwrap();
    let conf = kong_conf(
        &world,
        &format!("cp-pinned.air.test:{}", cp.port()),
        &format!(
            "{}dns_resolver = {dns}\ndns_hostsfile = {}\n",
            trusting(&world),
            hosts.display()
        ),
    );
    let (code, report, stderr) = run(&conf, &[], &[]);
    assert_eq!(code, 0, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["addresses"][0]["ip"], "127.0.0.1", "{c:#}");
}

#[test]
fn proxy_server_ssl_verify_off_leaves_the_https_proxy_unverified_as_kong_does() {
    let world = World::new();
    let (cp, _) = control_plane(&world, "127.0.0.1:0".parse().unwrap(), Behaviour::default());
    let squid = Squid::start(&SquidOptions::default()).unwrap();
    // An HTTPS proxy whose certificate no store trusts, in front of squid.
    let front = world.serve_any(crate::support::world::Behaviour::TlsRelay(
        crate::support::world::self_signed_server(&["proxy.test"]),
        squid.addr,
    ));
    let conf = |verify: &str| {
        kong_conf(
            &world,
            &cp.to_string(),
            &format!(
                "{}cluster_use_proxy = on\nproxy_server = https://{front}\nproxy_server_ssl_verify = {verify}\n",
                trusting(&world)
            ),
        )
    };
    let (code, report, stderr) = run(&conf("off"), &[], &[]);
    assert_eq!(code, 0, "{report:#}{stderr}");
    assert!(
        report["notes"]
            .to_string()
            .contains("the HTTPS proxy's certificate is not verified, as Kong does not verify it"),
        "{report:#}"
    );
    let (code, report, _) = run(&conf("on"), &[], &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["error"]["kind"], "proxy_error", "{c:#}");
}

#[test]
fn a_connect_answered_with_another_2xx_than_200_fails_as_in_kong() {
    use std::io::Write;
    let world = World::new();
    // A proxy that answers CONNECT 204: curl-like clients take any 2xx, Kong's only 200.
    let proxy = crate::support::raw::raw_server(|mut stream| {
        crate::support::raw::read_some(&mut stream);
        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
        std::thread::sleep(Duration::from_millis(500));
    });
    let conf = kong_conf(
        &world,
        "cp.example.test:443",
        &format!("cluster_use_proxy = on\nproxy_server = http://{proxy}\n"),
    );
    let (code, report, stderr) = run(&conf, &[], &[]);
    assert_eq!(code, 1, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["error"]["kind"], "proxy_error", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("with 204 No Content, not 200"),
        "{message}"
    );
}

#[test]
fn a_what_if_proxy_that_echoes_its_credentials_does_not_put_them_in_the_report() {
    use base64::Engine;
    let world = World::new();
    // 15 bytes: a Basic token without `=` padding, read as a scheme's name.
    let password = "S3cretPw1";
    let token = base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"));
    // A 407 whose challenge is the Basic token it was sent: the scheme a message names.
    let proxy = crate::support::raw::raw_server(|mut stream| {
        use std::io::{Read, Write};
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let token = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(": ")?;
                name.eq_ignore_ascii_case("proxy-authorization")
                    .then(|| value.trim_start_matches("Basic ").to_string())
            })
            .unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: {token}\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = stream.write_all(answer.as_bytes());
        std::thread::sleep(Duration::from_millis(200));
    });
    // Kong's route is direct, to a port where nothing listens; --proxy is the what-if, and
    // it quotes back the credentials it was sent.
    let conf = kong_conf(&world, "127.0.0.1:1", &trusting(&world));
    let url = format!("http://alice:{password}@{proxy}");
    let (code, report, stderr) = run(&conf, &["--proxy", &url], &[]);
    assert_eq!(code, 1, "{report:#}{stderr}");
    let c = check(&report, "kong.conf.control-plane");
    assert!(
        c["second_opinion"]["attempts"][0]["tried"]
            .as_str()
            .unwrap()
            .starts_with("through the proxy"),
        "{c:#}"
    );
    let text = report.to_string();
    for secret in [password, token.as_str()] {
        assert!(!text.contains(secret), "leaks {secret}: {c:#}");
    }
}
