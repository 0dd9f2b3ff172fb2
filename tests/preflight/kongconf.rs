//! `check --kong-conf`: a data plane's own configuration checked against loopback control
//! planes that require mutual TLS.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::support::konnect::cluster_cert;
use crate::support::world::{
    Behaviour, ServerOptions, Validity, World, check, kind, lo, loopback_block, preflight,
    shared_cluster_cert, split,
};

/// Serves the control plane and telemetry listeners (mutual TLS, certificates for their names
/// from the world's CA) on a block of loopback addresses: (control plane, telemetry).
fn control_plane(world: &World) -> (SocketAddr, SocketAddr) {
    let block = loopback_block();
    let serve = |host: u8, name: &str| {
        let options = ServerOptions {
            client_auth: true,
            ..ServerOptions::default()
        };
        let tls = Behaviour::Tls(world.ca.server_with(&[name], Validity::Current, options));
        world
            .serve(SocketAddr::new(lo(block, host), 0), tls)
            .unwrap()
    };
    (serve(1, "cp.example.test"), serve(2, "tp.example.test"))
}

/// Writes a pki-mode data plane kong.conf; returns its path.
fn write_conf(world: &World, name: &str, text: &str) -> PathBuf {
    let path = world.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `check --kong-conf PATH` against the loopback world, whose control planes speak TLS
/// only: the checks stop after mutual TLS (`--no-upgrade`; `cluster_upgrade.rs` tests the
/// data plane's upgrade against a control plane that answers it).
fn run_conf(path: &PathBuf, env: &[(&str, &str)]) -> (i32, serde_json::Value, String) {
    let mut command = preflight();
    command
        .args([
            "check",
            "--format",
            "json",
            "--timeout",
            "3s",
            "--no-upgrade",
            "--kong-conf",
        ])
        .arg(path);
    for (k, v) in env {
        command.env(k, v);
    }
    let (code, stdout, stderr) = split(command.output().unwrap());
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}{stderr}"));
    crate::support::words::assert_plain_words(&report);
    (code, report, stderr)
}

fn pki_conf(world: &World, cp: SocketAddr, telemetry: &str, listen: &str) -> String {
    let (crt, key) = cluster_cert(world);
    format!(
        "# a data plane\n\
         role = data_plane\n\
         database = off\n\
         cluster_mtls = pki   # from the Gateway Manager\n\
         cluster_control_plane = {cp}\n\
         cluster_server_name = cp.example.test\n\
         cluster_telemetry_endpoint = {telemetry}\n\
         cluster_telemetry_server_name = tp.example.test\n\
         cluster_cert = {crt}\n\
         cluster_cert_key = {key}\n\
         cluster_ca_cert = {ca}\n\
         lua_ssl_trusted_certificate = system\n\
         proxy_listen = {listen} reuseport backlog=16384\n",
        ca = world.ca_file(),
    )
}

#[test]
fn kong_conf_checks_the_control_plane_and_telemetry_with_mutual_tls() {
    let world = World::new();
    let (cp, tp) = control_plane(&world);
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The file's telemetry endpoint is dead; the environment points at the live one.
    let conf = pki_conf(&world, cp, "127.0.0.1:1", &listen.to_string());
    let path = write_conf(&world, "kong.conf", &conf);
    let tp_text = tp.to_string();
    let (code, report, stderr) = run_conf(&path, &[("KONG_CLUSTER_TELEMETRY_ENDPOINT", &tp_text)]);
    assert_eq!(code, 0, "{report:#}{stderr}");
    assert_eq!(report["profiles"], serde_json::json!(["kong.conf"]));
    assert_eq!(report["notes"], serde_json::json!([]));
    let c = check(&report, "kong.conf.control-plane");
    // ok, not warn: the server required the client certificate and accepted it.
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["role"], "control-plane");
    assert_eq!(c["target"], format!("tls://{cp}"));
    assert_eq!(c["tls"]["trust"], "custom");
    assert_eq!(c["tls"]["san"], serde_json::json!(["cp.example.test"]));
    let note = c["note"].as_str().unwrap();
    assert!(
        note.contains("cluster_control_plane (") && note.contains("kong.conf line 5)"),
        "{note}"
    );
    assert!(
        note.contains("cluster_server_name cp.example.test"),
        "{note}"
    );
    let t = check(&report, "kong.conf.telemetry");
    assert_eq!(t["status"], "ok", "{t:#}");
    assert_eq!(t["target"], format!("tls://{tp}"));
    assert_eq!(t["tls"]["san"], serde_json::json!(["tp.example.test"]));
    assert!(
        t["note"]
            .as_str()
            .unwrap()
            .contains("(KONG_CLUSTER_TELEMETRY_ENDPOINT)"),
        "{t:#}"
    );
    let l = check(&report, "kong.conf.proxy-listen-1");
    assert_eq!(l["status"], "ok", "{l:#}");
    assert_eq!(l["target"], format!("bind://{listen}"));
}

#[test]
fn a_blocked_telemetry_endpoint_fails_the_run() {
    let world = World::new();
    let (cp, _) = control_plane(&world);
    // Nothing listens there: the connection is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let conf = pki_conf(&world, cp, &dead.to_string(), "127.0.0.1:0");
    let conf = conf.replace(
        "proxy_listen = 127.0.0.1:0 reuseport backlog=16384\n",
        "proxy_listen = off\n",
    );
    let path = write_conf(&world, "kong.conf", &conf);
    let (code, report, _) = run_conf(&path, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(check(&report, "kong.conf.control-plane")["status"], "ok");
    assert_eq!(check(&report, "kong.conf.telemetry")["status"], "fail");
    assert_eq!(kind(&report, "kong.conf.telemetry"), "refused");
}

#[test]
fn without_its_certificate_the_control_plane_refuses_the_node() {
    let world = World::new();
    let (cp, tp) = control_plane(&world);
    let conf = pki_conf(&world, cp, &tp.to_string(), "127.0.0.1:0")
        .lines()
        .filter(|l| !l.starts_with("cluster_cert") && !l.starts_with("proxy_listen"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\nproxy_listen = off\n";
    let path = write_conf(&world, "kong.conf", &conf);
    let (code, report, _) = run_conf(&path, &[]);
    // Kong does not start a data plane without them: the file's finding fails the run, and the
    // control plane is still checked without a certificate.
    assert_eq!(code, 1, "{report:#}");
    let finding = check(&report, "kong.conf.cluster-cert");
    assert_eq!(
        (finding["probe"].as_str(), finding["role"].as_str()),
        (Some("file"), Some("local"))
    );
    assert_eq!(finding["error"]["kind"], "conf_invalid");
    assert!(
        finding["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not set both cluster_cert and cluster_cert_key"),
        "{finding:#}"
    );
    assert_eq!(
        kind(&report, "kong.conf.control-plane"),
        "client_cert_missing"
    );
}

#[test]
fn shared_mode_accepts_the_cluster_certificate_and_nothing_else() {
    let world = World::new();
    let (config, crt, key) = shared_cluster_cert(world.dir.path());
    let cp = world.serve_any(Behaviour::Tls(config));
    // Another server with a certificate the world's CA signed for the name.
    let other = world.serve_any(Behaviour::Tls(
        world.ca.server(&["kong_clustering"], Validity::Current),
    ));
    let conf = format!(
        "role = data_plane\ncluster_control_plane = {cp}\ncluster_telemetry_endpoint = {other}\n\
         cluster_cert = {}\ncluster_cert_key = {}\nproxy_listen = off\n",
        crt.display(),
        key.display()
    );
    let path = write_conf(&world, "kong.conf", &conf);
    let (code, report, _) = run_conf(&path, &[]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["tls"]["subject"], "CN=kong_clustering");
    assert_eq!(check(&report, "kong.conf.telemetry")["status"], "fail");
    assert_eq!(kind(&report, "kong.conf.telemetry"), "cert_untrusted");
}

#[test]
fn bad_kong_conf_exits_2_naming_the_file_and_line() {
    let world = World::new();
    let path = write_conf(
        &world,
        "kong.conf",
        "role = data_plane\ncluster_control_plane cp:443\n",
    );
    let out = preflight()
        .arg("check")
        .arg("--kong-conf")
        .arg(&path)
        .output()
        .unwrap();
    let (code, _, stderr) = split(out);
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        format!(
            "preflight: {}, line 2: `cluster_control_plane cp:443` is not a setting: write KEY = VALUE",
            path.display()
        )
    );
    let missing = world.dir.path().join("absent.conf");
    let out = preflight()
        .arg("check")
        .arg("--kong-conf")
        .arg(&missing)
        .output()
        .unwrap();
    let (code, _, stderr) = split(out);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with(&format!(
            "preflight: {}: cannot read the --kong-conf file",
            missing.display()
        )),
        "{stderr}"
    );
}
