//! Verdicts in the messy real network (issue 28, the parts done so far): a host without a
//! route of the name's family, named as this host's, not a router's.

use serde_json::Value;

use crate::support::world::{check, in_namespace, namespace_ready, split};

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
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    crate::support::words::assert_plain_words(&report);
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
