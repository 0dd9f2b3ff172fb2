//! Second opinions (issue 18), in a lab of routers: the hop that drops or rejects, a path-MTU
//! black hole, a firewall that resets TLS by server name; and none at all on a healthy path.

use serde_json::Value;

use crate::support::lab::{
    Lab, ROUTER1, ROUTER1_6, ROUTER2, ROUTER2_6, SERVER, SERVER6, big_certificate,
};
use crate::support::world::{World, check, split};

/// `preflight check --format json ARGS` in the lab's client, parsed.
fn run(lab: &Lab, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = split(lab.preflight(&all));
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}\n{stdout}"));
    crate::support::words::assert_plain_words(&report);
    (code, report)
}

const DROP_AND_REJECT: &str = "
table inet lab {
    chain forward {
        type filter hook forward priority 0; policy accept;
        tcp dport 443 drop
        tcp dport 444 reject with icmp type admin-prohibited
        tcp dport 3128 drop
    }
}
";

#[test]
fn the_hop_that_drops_and_the_router_that_rejects_are_named() {
    let Some(lab) = Lab::new(DROP_AND_REJECT, 1500) else {
        return;
    };
    let dropped = format!("tcp://{SERVER}:443");
    let rejected = format!("tcp://{SERVER}:444");
    let (code, report) = run(&lab, &["--timeout", "2s", &dropped, &rejected]);
    assert_eq!(code, 1, "{report:#}");

    let c = check(&report, &dropped);
    assert_eq!(c["error"]["kind"], "timeout", "{c:#}");
    let hops: Vec<(u64, &str)> = c["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["ttl"].as_u64().unwrap(), h["addr"].as_str().unwrap()))
        .collect();
    assert_eq!(hops, [(1, ROUTER1), (2, ROUTER2)], "{c:#}");
    let opinion = &c["second_opinion"];
    assert_eq!(opinion["kind"], "trace");
    assert_eq!(
        opinion["conclusion"],
        format!(
            "the SYN is dropped after hop 2 ({ROUTER2}): the firewall there or just beyond filters TCP 443 to {SERVER}"
        )
    );
    assert!(
        c["error"]["hint"]
            .as_str()
            .unwrap()
            .starts_with("The SYN is dropped after hop 2")
    );
    // Within one extra timeout (2 s), all hops at once.
    assert!(opinion["ms"].as_f64().unwrap() < 2500.0, "{opinion:#}");
    // A firewall that allows by source must name the client's address: the failure says it.
    assert_eq!(c["error"]["source_address"], "192.0.2.1", "{c:#}");
    for field in ["message", "hint"] {
        let text = c["error"][field].as_str().unwrap();
        assert!(text.contains("192.0.2.1"), "{field}: {text}");
    }
    // And so does the list of what to allow.
    let list = tempfile::NamedTempFile::with_suffix(".json").unwrap();
    let path = list.path().to_str().unwrap();
    let (_, _) = run(
        &lab,
        &[
            "--timeout",
            "2s",
            "--no-trace",
            "--allowlist-failed",
            path,
            &dropped,
        ],
    );
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(list["entries"][0]["source"], "192.0.2.1", "{list:#}");
    assert!(
        list["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("NAT gateway")),
        "{list:#}"
    );

    // The same over IPv6 (hop limits, ICMPv6 time exceeded).
    let dropped6 = format!("tcp://[{SERVER6}]:443");
    let (_, report6) = run(&lab, &["--timeout", "2s", &dropped6]);
    let c6 = check(&report6, &dropped6);
    let hops6: Vec<(u64, &str)> = c6["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["ttl"].as_u64().unwrap(), h["addr"].as_str().unwrap()))
        .collect();
    assert_eq!(hops6, [(1, ROUTER1_6), (2, ROUTER2_6)], "{c6:#}");

    let c = check(&report, &rejected);
    assert_eq!(c["error"]["kind"], "unreachable", "{c:#}");
    assert_eq!(
        c["second_opinion"]["conclusion"],
        format!(
            "an ICMP unreachable: administratively prohibited from hop 2 ({ROUTER2}): the router there rejects TCP 444 to {SERVER}"
        )
    );

    // The human report says it in a line, and -v shows each hop.
    let (_, stdout, stderr) = split(lab.preflight(&["check", "-v", "--timeout", "1s", &dropped]));
    let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!("): the SYN is dropped after hop 2 ({ROUTER2})"))
            && words.contains("second opinion ("),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("hop 2 {ROUTER2} time exceeded")),
        "{stderr}"
    );
    // A proxy that does not answer is traced too: the check's own name goes to the proxy.
    let proxy = format!("http://{SERVER}:3128");
    let (_, report) = run(
        &lab,
        &[
            "--timeout",
            "2s",
            "--proxy",
            &proxy,
            "tls://cp.example.test:443",
        ],
    );
    let c = check(&report, "tls://cp.example.test:443");
    assert_eq!(c["error"]["kind"], "proxy_unreachable", "{c:#}");
    assert_eq!(
        c["second_opinion"]["conclusion"],
        format!(
            "the SYN is dropped after hop 2 ({ROUTER2}): the firewall there or just beyond filters TCP 3128 to {SERVER}"
        )
    );
    // --no-trace takes none.
    let (_, report) = run(&lab, &["--timeout", "1s", "--no-trace", &dropped]);
    let c = check(&report, &dropped);
    assert!(
        c["second_opinion"].is_null() && c["trace"].is_null(),
        "{c:#}"
    );
}

/// A link of 1280 bytes whose ICMP "fragmentation needed" router 2 never sends out.
const BLACK_HOLE: &str = "
table inet lab {
    chain output {
        type filter hook output priority 0; policy accept;
        icmp type destination-unreachable icmp code frag-needed drop
    }
}
";

#[test]
fn a_path_mtu_black_hole_is_found_with_smaller_segments() {
    let world = World::new();
    let dir = world.dir.path();
    let (ca, crt, key) = big_certificate(dir, &["big.test"]);
    let resolve = format!("big.test:443:{SERVER}");
    for (mtu, hole) in [(1280, true), (1500, false)] {
        let Some(mut lab) = Lab::new(BLACK_HOLE, mtu) else {
            return;
        };
        lab.spawn(
            "s",
            dir,
            &[
                "openssl", "s_server", "-quiet", "-www", "-accept", "443", "-cert", &crt, "-key",
                &key,
            ],
        );
        lab.wait_listening(443);
        let (code, report) = run(
            &lab,
            &[
                "--timeout",
                "2s",
                "--ca-file",
                &ca,
                "--resolve",
                &resolve,
                "tls://big.test:443",
            ],
        );
        let c = check(&report, "tls://big.test:443");
        if !hole {
            // The same server over a clean path: ok, and nothing more was tried.
            assert_eq!((code, c["status"].as_str()), (0, Some("ok")), "{c:#}");
            assert!(c["second_opinion"].is_null(), "{c:#}");
            continue;
        }
        assert_eq!(code, 1, "{report:#}");
        assert_eq!(c["error"]["kind"], "path_mtu", "{c:#}");
        let message = c["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "with an MSS of 1200 it completed: packets above about 1240 bytes are lost"
            ),
            "{message}"
        );
        assert!(
            c["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("ICMP type 3 code 4")
        );
        let attempts = c["second_opinion"]["attempts"].as_array().unwrap();
        let mss1200 = attempts.iter().find(|a| a["tried"] == "MSS 1200").unwrap();
        assert_eq!(mss1200["result"], "completed", "{attempts:?}");
        // The attempt that completed shows the certificate.
        assert_eq!(c["tls"]["subject"], "CN=big.test");
    }
}

#[test]
fn a_firewall_that_resets_one_server_name_is_named_and_a_healthy_check_costs_one_connection() {
    let world = World::new();
    let dir = world.dir.path();
    let (ca, crt, key) = big_certificate(dir, &["blocked.test", "allowed.test"]);
    let Some(mut lab) = Lab::new("", 1500) else {
        return;
    };
    lab.spawn(
        "s",
        dir,
        &[
            "openssl",
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            "127.0.0.1:8443",
            "-cert",
            &crt,
            "-key",
            &key,
        ],
    );
    lab.wait_listening(8443);
    let accepted = lab.sni_filter(443, 8443, "blocked.test");
    let resolve = |name: &str| format!("{name}:443:{SERVER}");
    let (allowed, blocked) = (resolve("allowed.test"), resolve("blocked.test"));

    let (code, report) = run(
        &lab,
        &[
            "--ca-file",
            &ca,
            "--resolve",
            &allowed,
            "tls://allowed.test:443",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert!(check(&report, "tls://allowed.test:443")["second_opinion"].is_null());
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a healthy check opened more than one connection"
    );

    let (code, report) = run(
        &lab,
        &[
            "--ca-file",
            &ca,
            "--resolve",
            &blocked,
            "tls://blocked.test:443",
        ],
    );
    assert_eq!(code, 1);
    let c = check(&report, "tls://blocked.test:443");
    assert_eq!(c["error"]["kind"], "sni_filtered", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "a firewall between here and {SERVER}:443 refuses TLS to the server name blocked.test"
        )),
        "{message}"
    );
    assert!(
        c["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("allow blocked.test")
    );
    assert_eq!(
        c["second_opinion"]["attempts"][0]["tried"],
        "no server name"
    );
}
