//! Chains as they are (issue 28): the certificate at fault is named (the server's own, an
//! intermediate, a root), with its subject and date, and a hint its operator can act on; every
//! key type real servers use verifies (P-521 included). Chains made by `openssl ca`, served by
//! OpenSSL's `s_server`.

use serde_json::Value;

use crate::support::chains::{Authority, Made, P256, P521, RSA1024, serve};
use crate::support::world::{check, preflight, split};

/// `check --format json --ca-file CA TARGET`, its exit code and the check.
fn run(ca: &str, target: &str) -> (i32, Value) {
    let (code, report) = run_with(ca, target, &[]);
    (code, check(&report, target).clone())
}

/// The same with more arguments (a client certificate); the whole report, its words checked.
fn run_with(ca: &str, target: &str, more: &[&str]) -> (i32, Value) {
    let out = preflight()
        .args([
            "check",
            "--format",
            "json",
            "--timeout",
            "3s",
            "--ca-file",
            ca,
        ])
        .args(more)
        .arg(target)
        .output()
        .unwrap();
    let (code, stdout, stderr) = split(out);
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    crate::support::words::assert_plain_words(&report);
    (code, report)
}

fn target(addr: std::net::SocketAddr) -> String {
    format!("tls://localhost:{}", addr.port())
}

/// An intermediate that expired in 2021 in front of a server certificate that is in date: the
/// intermediate is named with its own date (not the server's, which is in the future).
#[test]
fn an_expired_intermediate_is_named_with_its_own_date() {
    let dir = tempfile::tempdir().unwrap();
    let root = Authority::root(dir.path(), "Chains Root", Made::default());
    let old = Made {
        dates: Some(("20200101000000Z", "20210101000000Z")),
        ..Made::default()
    };
    let inter = root.intermediate("Chains Old Intermediate", old);
    let (crt, key) = inter.server("leaf", "DNS:localhost", Made::default());
    let Some(server) = serve(&crt, &key, &[&inter.crt()]) else {
        return crate::support::skip("openssl is not installed");
    };
    let (code, c) = run(&root.crt(), &target(server.addr));
    assert_eq!(code, 1);
    assert_eq!(c["error"]["kind"], "cert_expired", "{c:#}");
    assert_eq!(c["error"]["cause"], "intermediate_expired", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("intermediate")
            && message.contains("Chains Old Intermediate")
            && message.contains("expired on 2021-01-01"),
        "{message}"
    );
}

/// The server sends another CA's intermediate instead of its issuer's; the root is in
/// --ca-file: named as the wrong intermediate, with the CA whose certificate is missing.
#[test]
fn a_wrong_intermediate_is_named_though_the_root_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let root = Authority::root(dir.path(), "Chains Root", Made::default());
    let right = root.intermediate("Chains Issuing CA", Made::default());
    let other = root.intermediate("Chains Retired CA", Made::default());
    let (crt, key) = right.server("leaf", "DNS:localhost", Made::default());
    let Some(server) = serve(&crt, &key, &[&other.crt()]) else {
        return crate::support::skip("openssl is not installed");
    };
    let (code, c) = run(&root.crt(), &target(server.addr));
    assert_eq!(code, 1);
    assert_eq!(c["error"]["cause"], "wrong_intermediate", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Chains Retired CA") && message.contains("Chains Issuing CA"),
        "{message}"
    );
    assert!(
        c["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("Chains Issuing CA")
    );
    // Sending the right one passes: the hint's fix.
    let Some(fixed) = serve(&crt, &key, &[&right.crt()]) else {
        return;
    };
    assert_eq!(run(&root.crt(), &target(fixed.addr)).0, 0);
}

/// A server certificate signed with SHA-1, and one with a 1024-bit RSA key: each named by
/// its weakness and the certificate that has it, not as an untrusted issuer or a bad
/// signature.
#[test]
fn sha1_signatures_and_short_rsa_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = Authority::root(dir.path(), "Chains Root", Made::default());
    let inter = root.intermediate("Chains Issuing CA", Made::default());
    let sha1 = Made {
        digest: "sha1",
        ..Made::default()
    };
    let (crt, key) = inter.server("sha1-leaf", "DNS:localhost", sha1);
    let Some(server) = serve(&crt, &key, &[&inter.crt()]) else {
        return crate::support::skip("openssl is not installed");
    };
    let (_, c) = run(&root.crt(), &target(server.addr));
    assert_eq!(c["error"]["cause"], "weak_signature", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("SHA-1") && message.contains("sha1-leaf"),
        "{message}"
    );
    assert!(c["error"]["hint"].as_str().unwrap().contains("SHA-256"));

    let short = Made {
        key: RSA1024,
        ..Made::default()
    };
    let (crt, key) = inter.server("rsa-leaf", "DNS:localhost", short);
    let Some(server) = serve(&crt, &key, &[&inter.crt()]) else {
        return;
    };
    let (_, c) = run(&root.crt(), &target(server.addr));
    assert_eq!(c["error"]["cause"], "weak_key", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(message.contains("1024-bit RSA"), "{message}");
}

/// P-521 everywhere (root, intermediate, server key: TLS 1.3's ecdsa_secp521r1_sha512): it
/// verifies, as in every other TLS client.
#[test]
fn a_p521_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let p521 = Made {
        key: P521,
        digest: "sha512",
        ..Made::default()
    };
    let root = Authority::root(dir.path(), "Chains P-521 Root", p521);
    let inter = root.intermediate("Chains P-521 CA", p521);
    let (crt, key) = inter.server("p521-leaf", "DNS:localhost", p521);
    let Some(server) = serve(&crt, &key, &[&inter.crt()]) else {
        return crate::support::skip("openssl is not installed");
    };
    let (code, c) = run(&root.crt(), &target(server.addr));
    assert_eq!(code, 0, "{c:#}");
    assert_eq!(c["status"], "ok", "{c:#}");
    let _ = P256;
}

/// A certificate that writes 127.0.0.1 as a DNS name, reached by that address: the message
/// says why it does not match (an address is compared with IP entries only), not that the
/// certificate "names 127.0.0.1" and does not match it.
#[test]
fn an_ip_written_as_a_dns_name_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = Authority::root(dir.path(), "Chains Root", Made::default());
    let (crt, key) = root.server("ip-leaf", "DNS:127.0.0.1", Made::default());
    let Some(server) = serve(&crt, &key, &[]) else {
        return crate::support::skip("openssl is not installed");
    };
    let target = format!("tls://127.0.0.1:{}", server.addr.port());
    let (_, c) = run(&root.crt(), &target);
    assert_eq!(c["error"]["kind"], "cert_name_mismatch", "{c:#}");
    assert_eq!(c["error"]["cause"], "ip_as_dns_name", "{c:#}");
    assert!(
        c["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("IP:127.0.0.1"),
        "{c:#}"
    );
}

/// A client certificate made for a server (extendedKeyUsage = serverAuth only), given to a
/// server that asks for one and checks its purpose (OpenSSL's s_server, as nginx and a Kong
/// control plane in pki mode do): said before any connection, and the refusal's cause names it.
#[test]
fn a_client_certificate_made_for_servers_is_named_before_and_after_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let root = Authority::root(dir.path(), "Chains Root", Made::default());
    let (crt, key) = root.server("leaf", "DNS:localhost", Made::default());
    let (client_crt, client_key) = root.server("node", "DNS:node.example", Made::default());
    let root_crt = root.crt();
    let Some(server) = crate::support::servers::SServer::start(&[
        "-cert",
        &crt,
        "-key",
        &key,
        "-Verify",
        "1",
        "-verify_return_error",
        "-CAfile",
        &root_crt,
    ]) else {
        return crate::support::skip("openssl is not installed");
    };
    let target = target(server.addr);
    let identity = ["--client-cert", &client_crt, "--client-key", &client_key];
    let (code, report) = run_with(&root_crt, &target, &identity);
    assert_eq!(code, 1, "{report:#}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("not made for clients"), "{notes}");
    let c = check(&report, &target);
    assert_eq!(c["error"]["kind"], "client_cert_rejected", "{c:#}");
    assert_eq!(c["error"]["cause"], "client_cert_not_for_clients", "{c:#}");
    assert!(
        c["error"]["hint"].as_str().unwrap().contains("clientAuth"),
        "{c:#}"
    );

    // nginx answers the same certificate with its 400 page after the handshake: the same cause.
    let tls = format!(
        "ssl_certificate \"{crt}\";\n        ssl_certificate_key \"{key}\";\n        ssl_verify_client on;\n        ssl_client_certificate \"{root_crt}\";"
    );
    let Some(nginx) = crate::support::servers::Nginx::start(dir.path(), &tls) else {
        return crate::support::skip("nginx is not installed");
    };
    let target = format!("https://localhost:{}", nginx.addr.port());
    let identity = ["--client-cert", &client_crt, "--client-key", &client_key];
    let (code, report) = run_with(&root_crt, &target, &identity);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, &target);
    assert_eq!(c["error"]["cause"], "client_cert_not_for_clients", "{c:#}");
}
