//! Verdicts named for their real cause (issue 15): DNS servers that cannot be used, DNS filter
//! blocks, TLS peers that are not what they should be, and mutual TLS judged by real servers
//! (nginx, OpenSSL's s_server). Every failure these runs produce is also checked for words
//! that belong to a library rather than to the user.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::words::assert_plain_words;
use crate::support::world::{World, check, check_json};

fn run(args: &[&str]) -> (i32, Value) {
    let (code, report) = check_json(args);
    assert_plain_words(&report);
    (code, report)
}

#[test]
fn a_dns_server_where_nothing_listens_is_named_at_once() {
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = closed.local_addr().unwrap();
    drop(closed);
    let server = server.to_string();
    let started = Instant::now();
    let (code, report) = run(&[
        "--dns-server",
        &server,
        "--timeout",
        "5s",
        "dns://cp.example.test",
    ]);
    assert_eq!(code, 1);
    let error = &check(&report, "dns://cp.example.test")["error"];
    assert_eq!(error["kind"], "dns_error", "{report:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{server} (--dns-server) refuses queries")),
        "{message}"
    );
    // Not the 5 s timeout: the refusal is the answer.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_silent_dns_server_is_named_as_silent() {
    // Reads queries and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let (_, report) = run(&[
        "--dns-server",
        &server,
        "--timeout",
        "1s",
        "dns://cp.example.test",
    ]);
    let error = &check(&report, "dns://cp.example.test")["error"];
    assert_eq!(error["kind"], "dns_timeout", "{report:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{server} (--dns-server) does not answer")),
        "{message}"
    );
    drop(silent);
}

#[test]
fn a_dns_filters_block_answer_is_a_dns_block() {
    let world = World::new();
    let dns = world
        .dns(
            &["test"],
            &[
                ("blocked.test", IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                ("blocked.test", IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
                ("fine.test", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ],
            &[],
            &[],
        )
        .to_string();
    let (code, report) = run(&[
        "--dns-server",
        &dns,
        "tls://blocked.test:443",
        "dns://fine.test",
    ]);
    assert_eq!(code, 1);
    let error = &check(&report, "tls://blocked.test:443")["error"];
    assert_eq!(error["kind"], "dns_blocked", "{report:#}");
    assert_eq!(error["phase"], "dns");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("0.0.0.0 and ::"), "{message}");
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("allow blocked.test")
    );
    // No connection was tried to the block address.
    assert!(
        check(&report, "tls://blocked.test:443")["addresses"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(check(&report, "dns://fine.test")["status"], "ok");
}
