//! Firewall behaviour that only a real packet filter produces: a drop that makes a connect time
//! out, an ICMP reject, a TCP reset. Each test runs the binary inside a private network
//! namespace (`unshare --net`) with its own nftables rules, and skips, saying why, where it
//! cannot make one (not root, no nft). `.ci/run` installs nftables so CI always runs them.

use std::path::Path;

use crate::support::world::{namespace_ready, split};

const RULES: &str = "
table inet preflight_test {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 4001 drop
        tcp dport 4002 reject with icmpx type host-unreachable
        tcp dport 4003 reject with tcp reset
    }
}
";

/// Runs `preflight ARGS` in a new network namespace with `RULES` loaded; `None` if it can't.
fn in_namespace(args: &[&str]) -> Option<(i32, String, String)> {
    if !namespace_ready("firewall test", &["nft", "ip"]) {
        return None;
    }
    let out =
        crate::support::world::in_namespace(RULES, Path::new(env!("CARGO_BIN_EXE_preflight")))
            .args(args)
            .output()
            .expect("run unshare");
    Some(split(out))
}

#[test]
fn drop_times_out_reject_is_unreachable_reset_is_refused() {
    let Some((code, stdout, stderr)) = in_namespace(&[
        "check",
        "--format",
        "json",
        // Longer than the first SYN retransmit (1 s): an ICMP reject that reaches the socket
        // while connect() still holds its lock is a soft error until the retransmit's reject.
        "--timeout",
        "3s",
        // The kinds and their time alone: no hop traces (tests/preflight/second.rs has them).
        "--no-trace",
        "tcp://127.0.0.1:4001",
        "tls://127.0.0.1:4001",
        "tcp://127.0.0.1:4002",
        "tcp://[::1]:4002",
        "tcp://127.0.0.1:4003",
    ]) else {
        return;
    };
    assert_eq!(code, 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stderr);
    crate::support::words::assert_plain_words(&report);
    let expect = [
        ("tcp://127.0.0.1:4001", "timeout"),
        ("tls://127.0.0.1:4001", "timeout"),
        ("tcp://127.0.0.1:4002", "unreachable"),
        ("tcp://[::1]:4002", "unreachable"),
        ("tcp://127.0.0.1:4003", "refused"),
    ];
    for (id, kind) in expect {
        assert_eq!(
            crate::support::world::kind(&report, id),
            kind,
            "{id}: {report:#}"
        );
        assert_eq!(
            crate::support::world::check(&report, id)["error"]["phase"],
            "tcp"
        );
    }
    // Every check ran at once: the two drops cost one timeout (3 s), not two.
    let took = report["duration_ms"].as_f64().unwrap();
    assert!(took < 5000.0, "took {took} ms");
    let hint = crate::support::world::check(&report, "tcp://127.0.0.1:4001")["error"]["hint"]
        .as_str()
        .unwrap();
    assert!(
        hint.contains("drops") && hint.contains("TCP port 4001"),
        "{hint}"
    );
}

#[test]
fn deadline_cuts_a_dropped_connect_short() {
    let Some((code, stdout, stderr)) = in_namespace(&[
        "check",
        "--format",
        "json",
        "--timeout",
        "10s",
        "--deadline",
        "1s",
        "tcp://127.0.0.1:4001",
    ]) else {
        return;
    };
    assert_eq!(code, 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stderr);
    crate::support::words::assert_plain_words(&report);
    assert_eq!(
        crate::support::world::kind(&report, "tcp://127.0.0.1:4001"),
        "deadline"
    );
}
