//! Hints that fix what they are attached to (issue 16): one row per cause that used to get the
//! hint of another, each asserting what the hint must and must not say.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::raw::{raw_server, read_some};
use crate::support::world::{
    Behaviour, Validity, World, check, check_json, namespace_ready, split,
};

/// What the failure of `id` in `report` must be: its kind and phase, words its hint holds,
/// and words it must not hold.
struct Expect<'a> {
    kind: &'a str,
    phase: &'a str,
    hint_has: &'a [&'a str],
    hint_lacks: &'a [&'a str],
}

fn assert_failure(report: &Value, id: &str, want: &Expect<'_>) {
    let error = &check(report, id)["error"];
    assert_eq!(error["kind"], want.kind, "{id}: {report:#}");
    assert_eq!(error["phase"], want.phase, "{id}: {report:#}");
    let hint = error["hint"].as_str().unwrap();
    for word in want.hint_has {
        assert!(hint.contains(word), "{id}: hint lacks `{word}`: {hint}");
    }
    for word in want.hint_lacks {
        assert!(!hint.contains(word), "{id}: hint has `{word}`: {hint}");
    }
}

#[test]
fn each_cause_gets_the_hint_that_fixes_it() {
    let world = World::new();
    let expiring = world.serve_any(Behaviour::Tls(
        world.ca.server(&["soon.test"], Validity::ExpiresInDays(3)),
    ));
    let dns = world
        .dns(
            &["test"],
            &[("soon.test", IpAddr::V4(Ipv4Addr::LOCALHOST))],
            &[],
            &[],
        )
        .to_string();
    let soon = format!("tls://soon.test:{}", expiring.port());
    // A name that does not resolve, as a proxy: a DNS problem, not a firewall's.
    let (code, report) = check_json(&[
        "--dns-server",
        &dns,
        "--ca-file",
        world.ca_file(),
        &soon,
        "bind://192.0.2.1:8080",
    ]);
    assert_eq!(code, 1, "{report:#}");
    let rows = [
        (
            soon.as_str(),
            Expect {
                kind: "cert_expiring",
                phase: "tls",
                hint_has: &["lower --cert-warn-days"],
                hint_lacks: &["raise"],
            },
        ),
        (
            "bind://192.0.2.1:8080",
            Expect {
                kind: "local_error",
                phase: "bind",
                hint_has: &["192.0.2.1 is not an address of this host", "0.0.0.0"],
                hint_lacks: &["open-file", "--concurrency"],
            },
        ),
    ];
    for (id, want) in &rows {
        assert_failure(&report, id, want);
    }
    let (_, report) = check_json(&[
        "--dns-server",
        &dns,
        "--proxy",
        "http://proxy.nowhere.test:3128",
        "tls://soon.test:443",
    ]);
    assert_failure(
        &report,
        "tls://soon.test:443",
        &Expect {
            kind: "proxy_unreachable",
            phase: "proxy",
            hint_has: &["cannot resolve the proxy's name proxy.nowhere.test", "DNS"],
            hint_lacks: &["allow TCP"],
        },
    );
}

#[test]
fn a_proxy_url_whose_scheme_does_not_match_the_proxy_is_named() {
    let world = World::new();
    let target = "tcp://127.0.0.1:9";
    // An HTTP proxy reads the SOCKS greeting as the start of a request line and waits.
    let http_like = raw_server(|mut stream| {
        read_some(&mut stream);
        std::thread::sleep(Duration::from_secs(5));
    });
    let (_, report) = check_json(&[
        "--timeout",
        "1s",
        "--proxy",
        &format!("socks5://{http_like}"),
        target,
    ]);
    assert_failure(
        &report,
        target,
        &Expect {
            kind: "proxy_error",
            phase: "proxy",
            hint_has: &["http:// for an HTTP proxy"],
            hint_lacks: &["beyond the proxy", "network team"],
        },
    );
    let message = check(&report, target)["error"]["message"].as_str().unwrap();
    assert!(message.contains("it does not speak SOCKS5"), "{message}");
    // An HTTP proxy URL pointed at a SOCKS5 proxy, which answers the request line as a
    // greeting it cannot accept ("no acceptable method").
    let socks = raw_server(|mut stream| {
        read_some(&mut stream);
        let _ = stream.write_all(&[0x05, 0xff]);
    });
    let (_, report) = check_json(&[
        "--timeout",
        "2s",
        "--proxy",
        &format!("http://{socks}"),
        target,
    ]);
    assert_failure(
        &report,
        target,
        &Expect {
            kind: "proxy_error",
            phase: "proxy",
            hint_has: &["socks5://"],
            hint_lacks: &["beyond the proxy"],
        },
    );
    let message = check(&report, target)["error"]["message"].as_str().unwrap();
    assert!(message.contains("answers in SOCKS5, not HTTP"), "{message}");
    // …and at a TLS port.
    let tls = world.serve_any(Behaviour::Tls(
        world.ca.server(&["p.test"], Validity::Current),
    ));
    let (_, report) = check_json(&[
        "--timeout",
        "2s",
        "--proxy",
        &format!("http://{tls}"),
        target,
    ]);
    let message = check(&report, target)["error"]["message"].as_str().unwrap();
    assert!(message.contains("answers in TLS, not HTTP"), "{report:#}");
}

#[test]
fn an_interrupted_check_says_it_was_stopped_and_in_which_phase() {
    // Interrupted in the TLS phase: its ClientHello goes unanswered.
    let (code, stdout, _, target) =
        crate::support::signalled_while_waiting(&["--format", "json", "--timeout", "30s"], "-INT");
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_failure(
        &report,
        &target,
        &Expect {
            kind: "deadline",
            phase: "tls",
            hint_has: &["stopped before this check finished"],
            hint_lacks: &["--deadline passed"],
        },
    );
}

#[test]
fn a_udp_check_this_host_blocks_names_this_hosts_rules() {
    if !namespace_ready("udp block test", &["nft", "ip"]) {
        return;
    }
    let rules = "
table inet preflight_test {
    chain output {
        type filter hook output priority 0; policy accept;
        udp dport 5353 reject with icmpx type admin-prohibited
        udp dport 5354 drop
    }
}
";
    let out =
        crate::support::world::in_namespace(rules, Path::new(env!("CARGO_BIN_EXE_preflight")))
            .args([
                "check",
                "--format",
                "json",
                "--timeout",
                "1s",
                "udp://127.0.0.1:5354",
            ])
            .output()
            .unwrap();
    let (_, stdout, stderr) = split(out);
    let report: Value = serde_json::from_str(&stdout).expect(&stderr);
    let error = &check(&report, "udp://127.0.0.1:5354")["error"];
    assert_eq!(error["phase"], "udp", "{report:#}");
    let hint = error["hint"].as_str().unwrap();
    assert!(hint.contains("This host's own firewall"), "{hint}");
    assert!(hint.contains("UDP port 5354"), "{hint}");
    assert!(!hint.contains("TCP"), "{hint}");
}

#[test]
fn shared_mode_against_another_certificate_names_both_modes() {
    let world = World::new();
    let dir = world.dir.path();
    let (_, crt, key) = crate::support::world::shared_cluster_cert(dir);
    // The control plane holds a certificate of its own, not the node's.
    let other = world.serve_any(Behaviour::Tls(crate::support::world::self_signed_server(
        &["kong_clustering"],
    )));
    let conf = format!(
        "role = data_plane\ncluster_control_plane = {other}\ncluster_telemetry_endpoint = \n\
         cluster_cert = {}\ncluster_cert_key = {}\nproxy_listen = off\nstream_listen = off\n",
        crt.display(),
        key.display()
    );
    let path = dir.join("kong.conf");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(conf.as_bytes())
        .unwrap();
    let (_, report) = check_json(&["--kong-conf", path.to_str().unwrap()]);
    assert_failure(
        &report,
        "kong.conf.control-plane",
        &Expect {
            kind: "cert_untrusted",
            phase: "tls",
            hint_has: &["cluster_mtls = pki", "cluster_cert_key"],
            hint_lacks: &["--ca-file"],
        },
    );
}
