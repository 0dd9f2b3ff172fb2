//! Verdicts in the messy real network (issue 28, the parts done so far): a host without a
//! route of the name's family, named as this host's, not a router's.

use serde_json::Value;

use crate::support::world::{check, in_namespace, namespace_ready, split};

/// The JSON report of a run that must exit 1, its words checked.
fn failed_run(out: std::process::Output) -> Value {
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    crate::support::words::assert_plain_words(&report);
    report
}

/// An IPv6-only name on a host without IPv6 connectivity (a private namespace with loopback
/// only): the connect fails at once with no route, and the failure is this host's, named
/// without the OS's error number, with no hop trace blaming a router.
#[test]
fn a_family_this_host_cannot_route_is_named_as_this_hosts() {
    if !namespace_ready("a host without routes", &["ip", "nft"]) {
        return;
    }
    let out = in_namespace(
        "table inet empty {}\n",
        env!("CARGO_BIN_EXE_preflight").as_ref(),
    )
    .args([
        "check",
        "--format",
        "json",
        "--timeout",
        "2s",
        "--resolve",
        "cp6.example.test:443:2001:db8::1",
        "tls://cp6.example.test:443",
    ])
    .output()
    .unwrap();
    let report = failed_run(out);
    let c = check(&report, "tls://cp6.example.test:443");
    assert_eq!(c["error"]["kind"], "unreachable", "{c:#}");
    assert_eq!(c["error"]["cause"], "no_route_on_this_host", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(message.contains("no IPv6 route"), "{message}");
    let hint = c["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("over IPv4") && !hint.contains("router"),
        "{hint}"
    );
    // Nothing left the host: no trace of hops.
    assert!(
        c["trace"].is_null() && c["second_opinion"].is_null(),
        "{c:#}"
    );
}

/// An nginx that terminates TLS in front of a mutual-TLS control plane (as a load balancer
/// does): it never asks for the node's certificate, and its own connection to the control
/// plane carries none, so the upgrade fails at the edge. The cause says the certificate never
/// reaches Kong, not that none was given.
#[test]
fn tls_terminated_in_front_of_the_control_plane_is_named() {
    let world = crate::support::world::World::new();
    let (cp, _) = crate::cluster_upgrade::control_plane(&world, 101);
    let (crt, key) = world
        .ca
        .server_files(world.dir.path(), "edge", &["cp.test"]);
    let tls = format!(
        "ssl_certificate {};\n        ssl_certificate_key {};\n        location /v1/outlet {{ proxy_pass https://{cp}; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade; }}",
        crt.display(),
        key.display()
    );
    let Some(edge) = crate::support::servers::Nginx::start(world.dir.path(), &tls) else {
        crate::support::skip("nginx is not installed (apt-get install nginx)");
        return;
    };
    let conf = crate::cluster_upgrade::kong_conf(&world, edge.addr);
    let out = crate::support::world::preflight()
        .args([
            "check",
            "--format",
            "json",
            "--timeout",
            "3s",
            "--kong-conf",
            &conf,
        ])
        .output()
        .unwrap();
    let report = failed_run(out);
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["tls"]["client_cert_requested"], false, "{c:#}");
    assert_eq!(c["error"]["cause"], "client_cert_not_asked", "{c:#}");
    let hint = c["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("pass TLS through"), "{hint}");
    assert!(
        !c["error"]["message"]
            .as_str()
            .unwrap()
            .contains("none was given"),
        "{c:#}"
    );
}
