//! `preflight explain` over a log made of Kong's own lines (issue 17, part 3): each error is
//! named, counted, and given a `preflight check` command that, run here against the loopback
//! control plane the line names, meets the same failure.

use serde_json::Value;

use crate::cluster_upgrade::{control_plane, kong_conf};
use crate::support::world::{World, check_json, run};

/// A data plane's error.log around the control plane at `refused` (nothing listens) and `cp`
/// (answers the upgrade 403). The lines are Kong's, with their source:
/// - kong/clustering/data_plane.lua: `connection to control plane URI broken: ERR (retrying
///   after N seconds) [CP]`, `did not receive pong frame from control plane within N seconds`;
/// - ERR as the WebSocket client Kong builds in writes it (Kong/lua-resty-websocket,
///   lib/resty/websocket/client.lua): `failed to connect: …`, `ssl handshake failed: …`,
///   `unexpected HTTP response code: 403`;
/// - kong/clustering/rpc/manager.lua: `[rpc] unable to connect to peer: ERR`, with Kong's DNS
///   client's words (kong/globalpatches.lua);
/// - kong/clustering/compat/init.lua, in the control plane's log: `data plane version … is
///   incompatible with control plane version …`;
/// - kong/clustering/tls.lua: `data plane presented incorrect client certificate during
///   handshake …` (the control plane's log), `failed reading the cluster certificate file: …`
///   (the data plane at start).
fn log(refused: &str, cp: &str) -> String {
    let outlet = "/v1/outlet?node_id=5f2c1e0a-2b43-4a57-9d1e-0c6a3f8e7b21&node_hostname=dp-1&node_version=3.9.1";
    [
        "2026/11/26 09:58:01 [notice] 1#0: using the \"epoll\" event method".to_string(),
        format!("2026/11/26 10:00:01 [warn] 1297#0: *3 [clustering] connection to control plane wss://{refused}{outlet} broken: failed to connect: connection refused (retrying after 7 seconds) [{refused}], context: ngx.timer"),
        format!("2026/11/26 10:00:09 [warn] 1297#0: *9 [clustering] connection to control plane wss://{refused}{outlet} broken: failed to connect: connection refused (retrying after 5 seconds) [{refused}], context: ngx.timer"),
        format!("2026/11/26 10:00:17 [warn] 1297#0: *11 [clustering] connection to control plane wss://{refused}{outlet} broken: failed to connect: connection refused (retrying after 9 seconds) [{refused}], context: ngx.timer"),
        format!("2026/11/26 10:06:00 [warn] 1297#0: *14 [clustering] connection to control plane wss://{cp}{outlet} broken: unexpected HTTP response code: 403 (retrying after 6 seconds) [{cp}], context: ngx.timer"),
        format!("2026/11/26 10:06:30 [warn] 1297#0: *15 [clustering] connection to control plane wss://{cp}{outlet} broken: ssl handshake failed: 20: unable to get local issuer certificate (retrying after 8 seconds) [{cp}], context: ngx.timer"),
        format!("2026/11/26 10:07:00 [error] 1297#0: *20 [clustering] did not receive pong frame from control plane within 45 seconds [{cp}], context: ngx.timer"),
        "2026/11/26 10:08:00 [error] 1297#0: *22 [rpc] unable to connect to peer: failed to connect: [cosocket] DNS resolution failed: dns server error: 3 name error. Tried: [\"cp.invalid:1 - cache-miss/querying/dns server error: 3 name error\"], context: ngx.timer".to_string(),
        "2026/11/26 10:09:00 [error] 1#0: *40 [clustering] data plane version 2.8.4 is incompatible with control plane version 3.9.1 (3.x.y are accepted) [id: 5f2c1e0a, host: dp-1, ip: 192.0.2.10, version: 2.8.4, sync_status: kong_version_incompatible], client: 192.0.2.10, server: kong_cluster_listener".to_string(),
        format!("2026/11/26 10:10:00 [warn] 1297#0: *44 [clustering] connection to control plane wss://{cp}{outlet} broken: a failure no version of Kong writes (retrying after 6 seconds) [{cp}], context: ngx.timer"),
        "2026/11/26 10:11:00 [error] 1297#0: *45 [clustering] unable to update running config: bad config, context: ngx.timer".to_string(),
        "2026/11/26 10:12:00 [error] 1#0: *50 [clustering] data plane presented incorrect client certificate during handshake (digest does not match the control plane certificate), client: 192.0.2.10, server: kong_cluster_listener, request: \"GET /v1/outlet?node_id=5f2c1e0a HTTP/1.1\", host: \"cp.test:8005\"".to_string(),
        "2026/11/26 10:13:00 [error] 1#0: init_by_lua error: failed reading the cluster certificate file: /etc/kong/cluster.crt: No such file or directory".to_string(),
    ]
    .join("\n")
}

/// `preflight explain ARGS --format json`, parsed.
fn explain_json(args: &[&str]) -> Value {
    let mut all = vec!["explain", "--format", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// The entry of `error` (its start) in an explanation.
fn entry<'a>(found: &'a Value, error: &str) -> &'a Value {
    found["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["error"].as_str().unwrap().starts_with(error))
        .unwrap_or_else(|| panic!("no {error} in {found:#}"))
}

/// Runs a printed command (`preflight check …`) with `--format json`.
fn run_command(command: &str) -> (i32, Value) {
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(&words[..2], ["preflight", "check"], "{command}");
    check_json(&words[2..])
}

#[test]
fn each_error_of_the_log_is_named_with_a_command_that_meets_it() {
    let world = World::new();
    let (cp, _) = control_plane(&world, 403);
    // A port nothing listens on.
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = world.dir.path().join("error.log");
    std::fs::write(&path, log(&refused.to_string(), &cp.to_string())).unwrap();
    let path = path.to_str().unwrap();

    let found = explain_json(&[path]);
    assert_eq!(found["lines"], 13);
    // The error no version of Kong writes is listed but not explained; the config line is a
    // clustering error of a shape explain does not read.
    assert_eq!(
        (found["unknown"].as_u64(), found["unread"].as_u64()),
        (Some(1), Some(1))
    );

    let refusals = entry(&found, "failed to connect: connection refused");
    assert_eq!(refusals["count"], 3);
    assert_eq!(refusals["kind"], "refused");
    assert_eq!(refusals["first"], "2026/11/26 10:00:01");
    assert_eq!(refusals["last"], "2026/11/26 10:00:17");
    assert_eq!(refusals["address"], refused.to_string());
    let command = refusals["command"].as_str().unwrap();
    assert_eq!(command, format!("preflight check tcp://{refused}"));
    let (code, report) = run_command(command);
    assert_eq!(code, 1);
    assert_eq!(
        report["checks"][0]["error"]["kind"], "refused",
        "{report:#}"
    );

    let upgrade = entry(&found, "unexpected HTTP response code: 403");
    assert_eq!(upgrade["kind"], "upgrade_refused");
    assert!(
        upgrade["hint"]
            .as_str()
            .unwrap()
            .contains("does not accept this node's certificate")
    );
    assert_eq!(
        upgrade["command"],
        "preflight check --kong-conf /etc/kong/kong.conf --only control-plane"
    );
    assert_eq!(
        entry(&found, "ssl handshake failed: 20")["kind"],
        "cert_untrusted"
    );
    let pong = entry(&found, "did not receive pong frame");
    assert!(pong["kind"].is_null() && pong["meaning"].as_str().unwrap().contains("pings"));
    assert!(pong["command"].as_str().unwrap().ends_with("--watch 10s"));
    let rpc = entry(
        &found,
        "failed to connect: [cosocket] DNS resolution failed",
    );
    assert_eq!(
        (rpc["kind"].as_str(), rpc["connection"].as_str()),
        (Some("nxdomain"), Some("control plane RPC"))
    );
    let version = entry(&found, "data plane version 2.8.4 is incompatible");
    assert!(
        version["command"].is_null()
            && version["meaning"]
                .as_str()
                .unwrap()
                .contains("not a network problem")
    );
    let shared = entry(&found, "data plane presented incorrect client certificate");
    assert_eq!(
        (shared["kind"].as_str(), shared["connection"].as_str()),
        (Some("http_error"), Some("control plane's log"))
    );
    assert!(
        shared["meaning"]
            .as_str()
            .unwrap()
            .contains("the control plane's own cluster_cert")
    );
    let unreadable = entry(&found, "failed reading the cluster certificate file");
    assert_eq!(unreadable["kind"], "file_unreadable");
    assert_eq!(
        unreadable["command"],
        "preflight check --kong-conf /etc/kong/kong.conf --only local"
    );
    let unknown = entry(&found, "a failure no version of Kong writes");
    assert!(unknown["kind"].is_null() && unknown["meaning"].is_null());

    // With the node's kong.conf, the command replays the node's own path and meets the 403.
    let conf = kong_conf(&world, cp);
    let found = explain_json(&[path, "--kong-conf", &conf]);
    let command = entry(&found, "unexpected HTTP response code: 403")["command"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        command,
        format!("preflight check --kong-conf {conf} --only control-plane")
    );
    let (code, report) = run_command(&command);
    assert_eq!(code, 1);
    let c = crate::support::world::check(&report, "kong.conf.control-plane");
    assert_eq!(
        (c["error"]["kind"].as_str(), c["http_status"].as_u64()),
        (Some("upgrade_refused"), Some(403))
    );
}

#[test]
fn the_human_explanation_reads_from_standard_input() {
    let line = "2026/11/26 10:00:01 [warn] 1297#0: *3 [clustering] connection to control plane wss://cp.invalid:443/v1/outlet?node_id=x broken: ssl handshake failed: 10: certificate has expired (retrying after 7 seconds) [cp.invalid:443], context: ngx.timer\n";
    let mut child = crate::support::world::preflight()
        .args(["explain", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), line.as_bytes()).unwrap();
    let (code, stdout, _) = crate::support::world::split(child.wait_with_output().unwrap());
    assert_eq!(code, 0);
    crate::support::words::assert_plain_text(&stdout);
    assert!(
        stdout.starts_with("control plane cp.invalid:443: once, at 2026/11/26 10:00:01\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ssl handshake failed: 10: certificate has expired\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  cert_expired: the certificate has expired\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  test it: preflight check --kong-conf /etc/kong/kong.conf --only control-plane\n"
        ),
        "{stdout}"
    );
    // Nothing to explain is said, not left blank.
    let (code, stdout, _) = run(&["explain", "/dev/null"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("No clustering error in 0 lines"),
        "{stdout}"
    );
    // A kong.conf that cannot be read is an error before anything is written.
    let (code, stdout, stderr) = run(&[
        "explain",
        "/dev/null",
        "--kong-conf",
        "/nonexistent/kong.conf",
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(stderr.contains("/nonexistent/kong.conf"), "{stderr}");
}

/// Kong's RPC lines after a connection is made and its fallback line (kong/clustering/rpc/
/// manager.lua `connect`: `[rpc] peer did not provide sec_websocket_protocol, node_id: …`,
/// `[rpc] connection to node_id: … broken, err: …, reconnecting in N seconds`;
/// kong/clustering/data_plane.lua: `sync v1 is enabled due to rpc sync can not work.`), a 407
/// from the node's proxy (lua-resty-websocket's client: `error establishing a connection to the
/// proxy server, got status 407`), and a version line of a data plane newer than its control
/// plane (kong/clustering/compat/init.lua).
#[test]
fn rpc_lines_the_fallback_a_proxys_407_and_which_side_to_upgrade_are_explained() {
    let world = World::new();
    let conf = world.dir.path().join("kong.conf");
    std::fs::write(
        &conf,
        "role = data_plane\ncluster_control_plane = cp.example:443\ncluster_use_proxy = on\nproxy_server = http://alice:S3cretPw@proxy.corp.example\n",
    )
    .unwrap();
    let log = world.dir.path().join("error.log");
    std::fs::write(
        &log,
        [
            "2026/11/26 10:00:00 [error] 1297#0: *3 [rpc] peer did not provide sec_websocket_protocol, node_id: control_plane, context: ngx.timer",
            "2026/11/26 10:00:10 [error] 1297#0: *4 [rpc] connection to node_id: control_plane broken, err: closed, reconnecting in 7 seconds, context: ngx.timer",
            "2026/11/26 10:00:20 [warn] 1297#0: *5 sync v1 is enabled due to rpc sync can not work., context: ngx.timer",
            "2026/11/26 10:00:30 [warn] 1297#0: *6 [clustering] connection to control plane wss://cp.example:443/v1/outlet?node_id=a broken: failed to connect: error establishing a connection to the proxy server, got status 407 (retrying after 5 seconds) [cp.example:443], context: ngx.timer",
            "2026/11/26 10:00:40 [error] 1#0: *40 [clustering] data plane version 3.10.0 is incompatible with older control plane version 3.9.1 [id: a, host: dp-1], client: 192.0.2.10, server: kong_cluster_listener",
        ]
        .join("\n"),
    )
    .unwrap();
    let found = explain_json(&[log.to_str().unwrap(), "--kong-conf", conf.to_str().unwrap()]);
    let text = found.to_string();
    assert!(
        !text.contains("S3cretPw") && !text.contains("alice"),
        "{text}"
    );

    let no_protocol = entry(&found, "peer did not provide sec_websocket_protocol");
    assert_eq!(no_protocol["connection"], "control plane RPC");
    assert_eq!(no_protocol["source"], "kong/clustering/rpc/manager.lua");
    assert!(
        no_protocol["hint"]
            .as_str()
            .unwrap()
            .contains("cluster_rpc = off"),
        "{no_protocol:#}"
    );
    let broken = entry(&found, "connection to node_id: control_plane broken");
    assert!(broken["meaning"].as_str().unwrap().contains("then broke"));
    let fallback = entry(&found, "sync v1 is enabled");
    assert!(
        fallback["meaning"]
            .as_str()
            .unwrap()
            .contains("fell back to /v1/outlet"),
        "{fallback:#}"
    );

    // The proxy's 407 names the proxy (from kong.conf, port 443 as Kong dials it), not the
    // control plane.
    let auth = entry(
        &found,
        "failed to connect: error establishing a connection to the proxy",
    );
    assert_eq!(auth["kind"], "proxy_auth");
    let hint = auth["hint"].as_str().unwrap();
    assert!(hint.contains("proxy.corp.example:443"), "{hint}");
    assert!(!hint.contains("cp.example"), "{hint}");

    let version = entry(&found, "data plane version 3.10.0");
    let hint = version["hint"].as_str().unwrap();
    assert!(
        hint.contains("upgrade the control plane to 3.10 or later"),
        "{hint}"
    );
}
