//! Kong's own path (issue 17, part 1): after mutual TLS the control-plane check of
//! `--kong-conf` sends the data plane's WebSocket upgrade on `/v1/outlet`, as
//! kong/clustering/data_plane.lua does, and needs `101`; it then closes without a frame.
//! A loopback control plane answers it, or refuses with 403, 404, 426 or 502.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::konnect::cluster_cert;
use crate::support::world::{ServerOptions, Validity, World, check, check_json, websocket_accept};

/// What the control plane saw of one connection: the request line, and whether any byte
/// (a WebSocket frame) followed its 101.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    request_line: String,
    frame_after_101: bool,
    /// The server name the client sent.
    sni: Option<String>,
}

/// What the control plane recorded, once it has recorded `n` connections (it records one after
/// waiting half a second for a frame after its 101).
fn recorded(seen: &Mutex<Vec<Seen>>, n: usize) -> Vec<Seen> {
    crate::support::wait_until(
        "the control plane's record",
        Duration::from_secs(10),
        || seen.lock().unwrap().len() >= n,
    );
    seen.lock().unwrap().clone()
}

/// A control plane on 127.0.0.1 requiring a client certificate from the world's CA, answering
/// the upgrade with `status` (444: closing without an answer, as nginx's 444).
pub(crate) fn control_plane(world: &World, status: u16) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let options = ServerOptions {
        client_auth: true,
        ..ServerOptions::default()
    };
    let config = world
        .ca
        .server_with(&["cp.test"], Validity::Current, options);
    control_plane_with(world, config, status, None)
}

/// A control plane answering the upgrade 101 with this `Date` header.
pub(crate) fn control_plane_dated(
    world: &World,
    date: String,
) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let options = ServerOptions {
        client_auth: true,
        ..ServerOptions::default()
    };
    let config = world
        .ca
        .server_with(&["cp.test"], Validity::Current, options);
    control_plane_with(world, config, 101, Some(date))
}

/// A control plane with this TLS configuration, answering the upgrade with `status` (and a
/// `Date` header when given).
fn control_plane_with(
    world: &World,
    config: Arc<rustls::ServerConfig>,
    status: u16,
    date: Option<String>,
) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = world.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    world.rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, log, date) = (acceptor.clone(), log.clone(), date.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Some(head) = read_head(&mut tls).await else {
                    return;
                };
                let key = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_string())
                    })
                    .unwrap_or_default();
                let mut entry = Seen {
                    request_line: head.lines().next().unwrap_or_default().to_string(),
                    sni: tls.get_ref().1.server_name().map(str::to_string),
                    ..Seen::default()
                };
                if status == 444 {
                    // nginx's 444, as a Kong control plane refusing the node's certificate
                    // (kong/clustering/init.lua): close without a word.
                    log.lock().unwrap().push(entry);
                    return;
                }
                let answer = match status {
                    101 => format!(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{}\r\n",
                        websocket_accept(&key),
                        date.map_or_else(String::new, |d| format!("Date: {d}\r\n"))
                    ),
                    other => {
                        let body = format!("<html><head><title>{other} from the test control plane</title></head></html>");
                        format!("HTTP/1.1 {other} No\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    }
                };
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.flush().await;
                if status == 101 {
                    let mut rest = [0u8; 64];
                    let read = tokio::time::timeout(Duration::from_millis(500), tls.read(&mut rest)).await;
                    entry.frame_after_101 = matches!(read, Ok(Ok(n)) if n > 0);
                }
                log.lock().unwrap().push(entry);
            });
        }
    });
    (addr, seen)
}

/// The head of the request on `stream` (up to its blank line, at most 8 KiB), or `None` when
/// the client left first.
pub(crate) async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A pki-mode kong.conf for the control plane at `cp`, with the node's certificate.
pub(crate) fn kong_conf(world: &World, cp: SocketAddr) -> String {
    let (crt, key) = cluster_cert(world);
    let conf = format!(
        "role = data_plane\ncluster_mtls = pki\ncluster_control_plane = {cp}\ncluster_server_name = cp.test\n\
         cluster_telemetry_endpoint = \ncluster_ca_cert = {}\ncluster_cert = {crt}\ncluster_cert_key = {key}\n\
         proxy_listen = off\nstream_listen = off\n",
        world.ca_file()
    );
    let path = world.dir.path().join(format!("kong-{}.conf", cp.port()));
    std::fs::write(&path, conf).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_data_planes_upgrade_is_replayed_and_nothing_follows_it() {
    let world = World::new();
    let (cp, seen) = control_plane(&world, 101);
    let conf = kong_conf(&world, cp);
    let (code, report) = check_json(&["--kong-conf", &conf, "--kong-version", "3.9.1"]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["probe"], "kong-cluster", "{c:#}");
    assert_eq!(c["http_status"], 101);
    assert_eq!(c["target"], format!("kong-cluster://{cp}"));
    // The control plane records a connection once it has seen whether a frame follows.
    let seen = recorded(&seen, 1);
    assert_eq!(seen.len(), 1, "{seen:?}");
    let line = &seen[0].request_line;
    assert!(line.starts_with("GET /v1/outlet?node_id="), "{line}");
    assert!(
        line.contains("&node_hostname=preflight-") && line.contains("&node_version=3.9.1 HTTP/1.1"),
        "{line}"
    );
    assert!(!seen[0].frame_after_101, "a frame followed the 101");
    // --no-upgrade stops after mutual TLS.
    let (_, report) = check_json(&["--kong-conf", &conf, "--no-upgrade"]);
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["probe"], "tls");
    assert!(c["http_status"].is_null());
}

#[test]
fn a_refused_upgrade_is_named_by_its_status() {
    let world = World::new();
    for (status, hint) in [
        (403, "registered with this control plane"),
        (404, "has no /v1/outlet"),
        (426, "does not pass WebSocket upgrades"),
        (502, "could not reach (no backend)"),
    ] {
        let (cp, _) = control_plane(&world, status);
        let conf = kong_conf(&world, cp);
        let (code, report) = check_json(&["--kong-conf", &conf]);
        assert_eq!(code, 1, "{status}: {report:#}");
        let c = check(&report, "kong.conf.control-plane");
        assert_eq!(c["http_status"], status);
        let error = &c["error"];
        assert_eq!(error["kind"], "upgrade_refused", "{status}: {report:#}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "answered the data plane's upgrade on /v1/outlet with {status}"
            )),
            "{message}"
        );
        assert!(message.contains("from the test control plane"), "{message}");
        assert!(
            error["hint"].as_str().unwrap().contains(hint),
            "{status}: {}",
            error["hint"]
        );
    }
}

#[test]
fn shared_mode_replays_the_upgrade_to_kong_clustering() {
    let world = World::new();
    // The control plane presents the node's own cluster certificate, as shared mode requires.
    let (config, crt, key) = crate::support::world::shared_cluster_cert(world.dir.path());
    let (cp, seen) = control_plane_with(&world, config, 101, None);
    let conf = format!(
        "role = data_plane\ncluster_control_plane = {cp}\ncluster_telemetry_endpoint = \n\
         cluster_cert = {}\ncluster_cert_key = {}\nproxy_listen = off\nstream_listen = off\n",
        crt.display(),
        key.display()
    );
    let path = world.dir.path().join("shared.conf");
    std::fs::write(&path, conf).unwrap();
    let (code, report) = check_json(&["--kong-conf", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(
        (c["probe"].as_str(), c["http_status"].as_u64()),
        (Some("kong-cluster"), Some(101))
    );
    let seen = recorded(&seen, 1);
    assert_eq!(seen[0].sni.as_deref(), Some("kong_clustering"), "{seen:?}");
    assert!(seen[0].request_line.starts_with("GET /v1/outlet?node_id="));
    assert!(!seen[0].frame_after_101);
}

#[test]
fn the_upgrade_goes_through_kong_confs_proxy() {
    let world = World::new();
    let (cp, seen) = control_plane(&world, 101);
    let Some(squid) =
        crate::support::proxies::Squid::start(&crate::support::proxies::SquidOptions {
            auth: None,
            connect_ports: vec![cp.port()],
            hosts: Vec::new(),
            ..Default::default()
        })
    else {
        return;
    };
    let conf = kong_conf(&world, cp);
    let proxied = format!(
        "{}cluster_use_proxy = on\nproxy_server = {}\n",
        std::fs::read_to_string(&conf).unwrap(),
        squid.url(None)
    );
    std::fs::write(&conf, proxied).unwrap();
    let (code, report) = check_json(&["--kong-conf", &conf]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["http_status"], 101, "{c:#}");
    assert_eq!(c["proxy"], format!("http://{}", squid.addr));
    // Squid carried the tunnel to the control plane.
    assert!(
        squid.logged(&format!("CONNECT {cp}")),
        "{}",
        squid.log("access.log")
    );
    assert_eq!(recorded(&seen, 1).len(), 1);
}

#[test]
fn a_control_plane_closing_without_an_answer_is_named_as_refusing_the_certificate() {
    let world = World::new();
    let (cp, seen) = control_plane(&world, 444);
    let conf = kong_conf(&world, cp);
    let (code, report) = check_json(&["--kong-conf", &conf]);
    assert_eq!(code, 1, "{report:#}");
    let error = &check(&report, "kong.conf.control-plane")["error"];
    assert_eq!(error["kind"], "http_error", "{report:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("closed before a whole response"),
        "{error:#}"
    );
    let hint = error["hint"].as_str().unwrap();
    assert!(
        hint.contains("does not accept the data plane's certificate")
            && hint.contains("data plane presented incorrect client certificate"),
        "{hint}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}
