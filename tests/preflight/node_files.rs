//! The node's own files, judged before any connection (issue 17, part 2): kong.conf's
//! certificate, key, CAs and proxy setting are checks of probe `file` and role `local`, each
//! naming its file and line; a control plane's clock and certificate names are judged after
//! the handshake. The loopback control plane records every connection, so "before any
//! connection" is seen, not assumed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::cluster_upgrade::{control_plane, control_plane_dated};
use crate::support::konnect::cluster_cert;
use crate::support::servers::{openssl, openssl_self_signed};
use crate::support::world::{World, check, check_json, run};

/// A pki-mode kong.conf for the control plane at `cp` with this certificate and key, and
/// `extra` lines after them. Lines: 4 cluster_server_name, 6 cluster_ca_cert, 7 cluster_cert,
/// 8 cluster_cert_key.
fn conf(world: &World, cp: SocketAddr, (crt, key): (&str, &str), extra: &str) -> String {
    let text = format!(
        "role = data_plane\ncluster_mtls = pki\ncluster_control_plane = {cp}\ncluster_server_name = cp.test\n\
         cluster_telemetry_endpoint = \ncluster_ca_cert = {}\ncluster_cert = {crt}\ncluster_cert_key = {key}\n\
         proxy_listen = off\nstream_listen = off\n{extra}",
        world.ca_file()
    );
    let path = world
        .dir
        .path()
        .join(format!("kong-{}-{}.conf", cp.port(), rand_suffix()));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The failure of a finding, asserting where it comes from.
fn finding<'a>(report: &'a Value, id: &str) -> &'a Value {
    let c = check(report, id);
    assert_eq!(
        (c["probe"].as_str(), c["role"].as_str()),
        (Some("file"), Some("local")),
        "{c:#}"
    );
    c
}

fn message(c: &Value) -> &str {
    c["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn an_expired_certificate_is_found_in_the_file_before_any_connection() {
    let world = World::new();
    let (cp, seen) = control_plane(&world, 101);
    let day = |d: i64| OffsetDateTime::now_utc() + Duration::days(d);
    let (crt, key) = world
        .ca
        .client_dated(world.dir.path(), "old", day(-400), day(-35));
    let (crt, key) = (crt.to_str().unwrap(), key.to_str().unwrap());
    let path = conf(&world, cp, (crt, key), "");
    let (code, report) = check_json(&["--kong-conf", &path, "--only", "local"]);
    assert_eq!(code, 1, "{report:#}");
    let c = finding(&report, "kong.conf.cluster-cert");
    assert_eq!(
        (c["status"].as_str(), c["error"]["kind"].as_str()),
        (Some("fail"), Some("cert_expired"))
    );
    assert_eq!(c["target"], format!("file://{crt}"));
    let said = message(c);
    assert!(
        said.starts_with(&format!(
            "cluster_cert {crt} ({path} line 7): CN=old expired on "
        )),
        "{said}"
    );
    assert!(
        said.ends_with("35 days ago: the control plane refuses this node"),
        "{said}"
    );
    assert!(
        c["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("new data plane certificate")
    );
    // The key matches: its own finding passes.
    assert_eq!(
        finding(&report, "kong.conf.cluster-cert-key")["status"],
        "ok"
    );
    // Nothing was sent anywhere.
    assert!(seen.lock().unwrap().is_empty());
    // Every format says the file and the line.
    for format in ["human", "junit", "markdown"] {
        let (_, stdout, _) = run(&[
            "check",
            "--kong-conf",
            &path,
            "--only",
            "local",
            "--format",
            format,
        ]);
        // The human report wraps its lines: read it with the wrapping undone.
        let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains(&format!("{path} line 7")),
            "{format}: {stdout}"
        );
    }
}

#[test]
fn a_key_that_is_not_the_certificates_stops_the_cluster_checks() {
    let world = World::new();
    let (cp, seen) = control_plane(&world, 101);
    let (crt, _) = cluster_cert(&world);
    let (_, other) = world
        .ca
        .client(world.dir.path(), "other", &rcgen::PKCS_ECDSA_P256_SHA256);
    let path = conf(&world, cp, (&crt, other.to_str().unwrap()), "");
    let (code, report) = check_json(&["--kong-conf", &path]);
    assert_eq!(code, 1, "{report:#}");
    let c = finding(&report, "kong.conf.cluster-cert-key");
    assert_eq!(c["error"]["kind"], "key_mismatch", "{c:#}");
    assert!(
        message(c).starts_with(&format!(
            "cluster_cert_key {} ({path} line 8) is not the private key of cluster_cert {crt}",
            other.display()
        )),
        "{c:#}"
    );
    let cp_check = check(&report, "kong.conf.control-plane");
    assert_eq!(cp_check["status"], "skipped", "{cp_check:#}");
    assert!(
        cp_check["reason"]
            .as_str()
            .unwrap()
            .contains("--client-cert")
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the control plane was contacted"
    );
    // Another pair given on the command line lifts it.
    let (crt2, key2) = cluster_cert(&world);
    let (code, report) = check_json(&[
        "--kong-conf",
        &path,
        "--client-cert",
        &crt2,
        "--client-key",
        &key2,
    ]);
    assert_eq!(
        check(&report, "kong.conf.control-plane")["status"],
        "ok",
        "{report:#}"
    );
    assert_eq!(code, 1, "the file's finding still fails the run");
}

#[test]
fn a_version_1_certificate_and_its_key_pass() {
    if Command::new("openssl").arg("version").output().is_err() {
        crate::support::skip("the version 1 certificate needs openssl (apt-get install openssl)");
        return;
    }
    let world = World::new();
    let dir = world.dir.path();
    // `openssl x509 -req` without extensions makes version 1, as `kong hybrid gen_cert` does.
    openssl_self_signed(dir, "v1-ca", "/CN=v1 test CA", &[]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "node.key",
            "-out",
            "node.csr",
            "-subj",
            "/CN=node",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "node.csr",
            "-CA",
            "v1-ca.crt",
            "-CAkey",
            "v1-ca.key",
            "-CAcreateserial",
            "-out",
            "node.crt",
            "-days",
            "30",
        ],
    );
    let (cp, _) = control_plane(&world, 101);
    let (crt, key) = (dir.join("node.crt"), dir.join("node.key"));
    let path = conf(
        &world,
        cp,
        (crt.to_str().unwrap(), key.to_str().unwrap()),
        "",
    );
    let (code, report) = check_json(&["--kong-conf", &path, "--only", "local"]);
    assert_eq!(code, 0, "{report:#}");
    let c = finding(&report, "kong.conf.cluster-cert");
    assert_eq!(c["status"], "ok");
    let note = c["note"].as_str().unwrap();
    assert!(
        note.contains("CN=node, valid until") && note.contains("days left)"),
        "{note}"
    );
    let k = finding(&report, "kong.conf.cluster-cert-key");
    assert_eq!(k["status"], "ok", "{k:#}");
    assert!(k["note"].as_str().unwrap().contains("the private key of"));
}

#[test]
fn kong_refuses_a_socks_proxy_and_a_missing_one() {
    let world = World::new();
    let (cp, seen) = control_plane(&world, 101);
    let (crt, key) = cluster_cert(&world);
    let socks = conf(
        &world,
        cp,
        (&crt, &key),
        "cluster_use_proxy = on\nproxy_server = socks5://proxy.test:1080\n",
    );
    let (code, report) = check_json(&["--kong-conf", &socks]);
    assert_eq!(code, 1, "{report:#}");
    let c = finding(&report, "kong.conf.proxy-server");
    assert_eq!(c["error"]["kind"], "conf_invalid");
    assert_eq!(
        message(c),
        format!(
            "proxy_server = socks5://proxy.test:1080 ({socks} line 12): Kong does not start with it (\"proxy_server only supports \"http\" and \"https\", got socks5\"); preflight could go through such a proxy, Kong cannot"
        )
    );
    assert_eq!(
        check(&report, "kong.conf.control-plane")["status"],
        "skipped"
    );

    let missing = conf(&world, cp, (&crt, &key), "cluster_use_proxy = on\n");
    let (code, report) = check_json(&["--kong-conf", &missing]);
    assert_eq!(code, 1, "{report:#}");
    let c = finding(&report, "kong.conf.proxy-server");
    assert_eq!(c["error"]["kind"], "conf_invalid");
    assert!(
        message(c).starts_with(&format!(
            "cluster_use_proxy is on ({missing} line 11) but proxy_server is not set"
        )),
        "{c:#}"
    );
    assert_eq!(
        check(&report, "kong.conf.control-plane")["status"],
        "skipped"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the control plane was contacted"
    );
}

/// A self-signed certificate whose extended key usage is server authentication only.
fn server_only_cert(dir: &Path) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["node.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "server only");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key).unwrap();
    let (crt, pem) = (dir.join("server-only.crt"), dir.join("server-only.key"));
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    (crt.display().to_string(), pem.display().to_string())
}

#[test]
fn a_certificate_not_for_clients_and_one_about_to_expire_are_named() {
    let world = World::new();
    let (cp, _) = control_plane(&world, 101);
    let (crt, key) = server_only_cert(world.dir.path());
    let path = conf(&world, cp, (&crt, &key), "");
    let (_, report) = check_json(&["--kong-conf", &path, "--only", "local"]);
    let c = finding(&report, "kong.conf.cluster-cert");
    assert_eq!(c["error"]["kind"], "cert_usage", "{c:#}");
    assert!(message(c).contains(
        "CN=server only has an extended key usage without TLS client authentication (clientAuth)"
    ));

    let day = |d: i64| OffsetDateTime::now_utc() + Duration::days(d);
    let (crt, key) = world.ca.client_dated(
        world.dir.path(),
        "soon",
        day(-30),
        day(5) + Duration::hours(1),
    );
    let path = conf(
        &world,
        cp,
        (crt.to_str().unwrap(), key.to_str().unwrap()),
        "",
    );
    let (code, report) = check_json(&["--kong-conf", &path, "--only", "local"]);
    assert_eq!(code, 0, "a warning does not fail the run: {report:#}");
    let c = finding(&report, "kong.conf.cluster-cert");
    assert_eq!(
        (c["status"].as_str(), c["error"]["kind"].as_str()),
        (Some("warn"), Some("cert_expiring"))
    );
    assert!(message(c).ends_with("in 5 days"), "{c:#}");
    // --cert-warn-days decides.
    let (_, report) = check_json(&[
        "--kong-conf",
        &path,
        "--only",
        "local",
        "--cert-warn-days",
        "3",
    ]);
    assert_eq!(finding(&report, "kong.conf.cluster-cert")["status"], "ok");
}

#[test]
fn the_ca_files_are_read_and_dated() {
    let world = World::new();
    let (cp, _) = control_plane(&world, 101);
    let (crt, key) = cluster_cert(&world);
    // An expired CA, and a trusted-certificate file that is not there.
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "old CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let old = world.dir.path().join("old-ca.pem");
    std::fs::write(&old, params.self_signed(&ca_key).unwrap().pem()).unwrap();
    let absent = world.dir.path().join("nowhere").join("ca.pem");
    let path = conf(
        &world,
        cp,
        (&crt, &key),
        &format!(
            "lua_ssl_trusted_certificate = system, {}, {}\n",
            old.display(),
            absent.display()
        ),
    );
    let (code, report) = check_json(&["--kong-conf", &path, "--only", "local"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        finding(&report, "kong.conf.cluster-ca-cert")["status"],
        "ok"
    );
    let expired = finding(&report, "kong.conf.trusted-certificate-1");
    assert_eq!(expired["error"]["kind"], "cert_expired", "{expired:#}");
    assert!(
        message(expired)
            .contains("every certificate in it has expired (CN=old CA, on 2021-01-01T00:00:00Z)")
    );
    let gone = finding(&report, "kong.conf.trusted-certificate-2");
    assert_eq!(gone["error"]["kind"], "file_unreadable");
    assert_eq!(
        message(gone),
        format!(
            "lua_ssl_trusted_certificate {} ({path} line 11): does not exist (nor does its directory)",
            absent.display()
        )
    );
}

#[test]
fn the_control_planes_clock_and_names_are_judged_after_the_handshake() {
    let world = World::new();
    let (crt, key) = cluster_cert(&world);
    // A control plane three hours ahead of this host.
    let ahead = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3 * 3600),
    );
    let (cp, _) = control_plane_dated(&world, ahead.clone());
    let path = conf(&world, cp, (&crt, &key), "");
    let (code, report) = check_json(&["--kong-conf", &path]);
    assert_eq!(code, 0, "a warning: {report:#}");
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(
        (c["status"].as_str(), c["error"]["kind"].as_str()),
        (Some("warn"), Some("clock_skew")),
        "{c:#}"
    );
    assert_eq!(
        message(c),
        format!("the clock of {cp} is 3 hours ahead of this host's (its Date header: {ahead})")
    );
    // cluster_server_name against the names the control plane's certificate carries.
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "cluster_server_name = cp.test",
        "cluster_server_name = other.test",
    );
    std::fs::write(&path, text).unwrap();
    let (code, report) = check_json(&["--kong-conf", &path]);
    assert_eq!(code, 1);
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["error"]["kind"], "cert_name_mismatch", "{c:#}");
    assert!(
        message(c).ends_with("is not valid for other.test: it names cp.test"),
        "{c:#}"
    );
    assert!(
        c["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("kong.conf's cluster_server_name): set it to a name the certificate carries"),
        "{c:#}"
    );
}

#[test]
fn a_certificate_not_yet_valid_and_files_without_pem_are_named() {
    let world = World::new();
    let (cp, seen) = control_plane(&world, 101);
    let day = |d: i64| OffsetDateTime::now_utc() + Duration::days(d);
    let (crt, key) = world
        .ca
        .client_dated(world.dir.path(), "future", day(10), day(400));
    let path = conf(
        &world,
        cp,
        (crt.to_str().unwrap(), key.to_str().unwrap()),
        "",
    );
    let (_, report) = check_json(&["--kong-conf", &path, "--only", "local"]);
    let c = finding(&report, "kong.conf.cluster-cert");
    assert_eq!(c["error"]["kind"], "cert_not_yet_valid", "{c:#}");
    assert!(
        message(c).contains("CN=future is not valid before")
            && message(c).contains("this host's clock reads")
    );
    // A certificate file that holds a key, and a CA file of text.
    let text = world.dir.path().join("notes.txt");
    std::fs::write(&text, "not a certificate\n").unwrap();
    let path = conf(
        &world,
        cp,
        (key.to_str().unwrap(), key.to_str().unwrap()),
        &format!("lua_ssl_trusted_certificate = {}\n", text.display()),
    );
    let (code, report) = check_json(&["--kong-conf", &path, "--only", "local"]);
    assert_eq!(code, 1);
    let c = finding(&report, "kong.conf.cluster-cert");
    assert_eq!(c["error"]["kind"], "file_invalid", "{c:#}");
    assert_eq!(
        message(c),
        format!(
            "cluster_cert {} ({path} line 7): holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            key.display()
        )
    );
    assert_eq!(
        finding(&report, "kong.conf.trusted-certificate-1")["error"]["kind"],
        "file_invalid"
    );
    assert!(seen.lock().unwrap().is_empty());
}
