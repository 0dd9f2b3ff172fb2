//! Verdicts named for their real cause (issue 15): DNS servers that cannot be used, DNS filter
//! blocks, TLS peers that are not what they should be, and mutual TLS judged by real servers
//! (nginx, OpenSSL's s_server). Every failure these runs produce is also checked for words
//! that belong to a library rather than to the user.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::konnect::cluster_cert;
use crate::support::raw::{raw_server, read_some};
use crate::support::servers::{Nginx, SServer, openssl, openssl_self_signed};
use crate::support::words::assert_plain_words;
use crate::support::world::{Ca, World, check, check_json};

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

/// nginx requiring a client certificate signed by the world's CA (`ssl_verify_client on`), in
/// TLS `version` ("TLSv1.2" or "TLSv1.3"); the targets `tls://` and `https://` at it, with the
/// `--resolve` pin and the `--ca-file` for the server's certificate.
struct MutualNginx {
    _nginx: Nginx,
    pin: String,
    tls: String,
    https: String,
}

impl MutualNginx {
    fn start(world: &World, version: &str, client_ca: &Path) -> Option<MutualNginx> {
        let dir = world.dir.path();
        let (crt, key) = world.ca.server_files(dir, "nginx-server", &["mtls.test"]);
        let conf = format!(
            "ssl_certificate {}; ssl_certificate_key {}; ssl_protocols {version}; \
             ssl_client_certificate {}; ssl_verify_client on;",
            crt.display(),
            key.display(),
            client_ca.display()
        );
        let nginx = Nginx::start(dir, &conf)?;
        let port = nginx.addr.port();
        Some(MutualNginx {
            _nginx: nginx,
            pin: format!("mtls.test:{port}:127.0.0.1"),
            tls: format!("tls://mtls.test:{port}"),
            https: format!("https://mtls.test:{port}"),
        })
    }

    fn run(&self, world: &World, extra: &[&str]) -> Value {
        let mut args = vec![
            "--ca-file",
            world.ca_file(),
            "--resolve",
            &self.pin,
            "--timeout",
            "3s",
        ];
        args.extend_from_slice(extra);
        args.extend([self.tls.as_str(), self.https.as_str()]);
        run(&args).1
    }
}

#[test]
fn nginx_asking_for_a_certificate_is_named_on_every_tls_check() {
    for version in ["TLSv1.3", "TLSv1.2"] {
        let world = World::new();
        let Some(nginx) = MutualNginx::start(&world, version, &world.ca.pem) else {
            return;
        };
        let report = nginx.run(&world, &[]);
        // The handshake completes without a certificate: a warning, not silence.
        let tls = check(&report, &nginx.tls);
        assert_eq!(tls["status"], "warn", "{version}: {report:#}");
        assert_eq!(tls["error"]["kind"], "client_cert_requested", "{version}");
        assert_eq!(tls["tls"]["client_cert_requested"], true);
        // The HTTP answer is the refusal: not ok because it is below 500.
        let https = check(&report, &nginx.https);
        assert_eq!(https["status"], "fail", "{version}: {report:#}");
        assert_eq!(https["error"]["kind"], "client_cert_rejected", "{version}");
        assert_eq!(https["http_status"], 400);
        let message = https["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("400 (\"400 No required SSL certificate was sent\")"),
            "{message}"
        );
    }
}

#[test]
fn an_accepted_client_certificate_is_judged_without_waiting() {
    for version in ["TLSv1.3", "TLSv1.2"] {
        let world = World::new();
        let Some(nginx) = MutualNginx::start(&world, version, &world.ca.pem) else {
            return;
        };
        let (crt, key) = cluster_cert(&world);
        let report = nginx.run(&world, &["--client-cert", &crt, "--client-key", &key]);
        for target in [&nginx.tls, &nginx.https] {
            let c = check(&report, target);
            assert_eq!(c["status"], "ok", "{version} {target}: {report:#}");
            assert_eq!(c["tls"]["version"], version);
        }
        let waited = &check(&report, &nginx.tls)["timings_ms"]["tls_verdict"];
        if version == "TLSv1.3" {
            // nginx's session ticket ends the wait, long before its 500 ms bound.
            let ms = waited.as_f64().expect("the verdict wait is reported");
            assert!(ms < 400.0, "{ms} ms: {report:#}");
        } else {
            // TLS 1.2 judges the certificate inside the handshake: no wait at all.
            assert!(waited.is_null(), "{report:#}");
        }
        // An HTTP check learns the verdict from its answer, without a wait.
        assert!(check(&report, &nginx.https)["timings_ms"]["tls_verdict"].is_null());
    }
}

#[test]
fn a_client_certificate_nginx_refuses_is_named() {
    for version in ["TLSv1.3", "TLSv1.2"] {
        let world = World::new();
        let Some(nginx) = MutualNginx::start(&world, version, &world.ca.pem) else {
            return;
        };
        let other = Ca::named(world.dir.path(), "other CA", "elsewhere", "other.pem");
        let (crt, key) = other.client(world.dir.path(), "stranger", &rcgen::PKCS_ECDSA_P256_SHA256);
        let (crt, key) = (crt.display().to_string(), key.display().to_string());
        let report = nginx.run(&world, &["--client-cert", &crt, "--client-key", &key]);
        // nginx completes every handshake and judges the certificate per request: the HTTP
        // answer is where the refusal shows.
        let c = check(&report, &nginx.https);
        assert_eq!(c["status"], "fail", "{version}: {report:#}");
        assert_eq!(c["error"]["kind"], "client_cert_rejected", "{version}");
        let message = c["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("(\"400 The SSL certificate error\"): the server refused the client certificate given"),
            "{message}"
        );
    }
}

#[test]
fn a_version_1_client_certificate_is_accepted() {
    let world = World::new();
    let dir = world.dir.path();
    // What `openssl x509 -req` makes without extensions: an X.509 version 1 certificate.
    openssl_self_signed(dir, "v1-ca", "/CN=v1 test CA", &[]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
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
    let Some(nginx) = MutualNginx::start(&world, "TLSv1.3", &dir.join("v1-ca.crt")) else {
        return;
    };
    let (crt, key) = (dir.join("node.crt"), dir.join("node.key"));
    let (crt, key) = (crt.to_str().unwrap(), key.to_str().unwrap());
    let report = nginx.run(&world, &["--client-cert", crt, "--client-key", key]);
    for target in [&nginx.tls, &nginx.https] {
        assert_eq!(
            check(&report, target)["status"],
            "ok",
            "{target}: {report:#}"
        );
    }
    // The same key encrypted: named as such, with the way out.
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            "node.key",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "locked.key",
        ],
    );
    let locked = dir.join("locked.key");
    let (code, _, stderr) = crate::support::world::run(&[
        "check",
        "--client-cert",
        crt,
        "--client-key",
        locked.to_str().unwrap(),
        &nginx.tls,
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("is encrypted with a passphrase") && stderr.contains("openssl pkey"),
        "{stderr}"
    );
}

#[test]
fn kong_shared_mode_accepts_a_version_1_cluster_certificate() {
    let world = World::new();
    let dir = world.dir.path();
    // As `kong hybrid gen_cert` makes it: self-signed, version 1, P-384, CN kong_clustering.
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "cluster.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "cluster.key",
            "-subj",
            "/CN=kong_clustering",
            "-out",
            "cluster.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "cluster.csr",
            "-signkey",
            "cluster.key",
            "-out",
            "cluster.crt",
            "-days",
            "1095",
        ],
    );
    // The control plane presents the same certificate and requires it of the node.
    let Some(cp) = SServer::start(&[
        "-cert",
        dir.join("cluster.crt").to_str().unwrap(),
        "-key",
        dir.join("cluster.key").to_str().unwrap(),
        "-Verify",
        "1",
        "-CAfile",
        dir.join("cluster.crt").to_str().unwrap(),
        "-tls1_3",
    ]) else {
        return;
    };
    let conf = format!(
        "role = data_plane\ncluster_control_plane = {}\ncluster_telemetry_endpoint = \n\
         cluster_cert = {}\ncluster_cert_key = {}\nproxy_listen = off\nstream_listen = off\n",
        cp.addr,
        dir.join("cluster.crt").display(),
        dir.join("cluster.key").display()
    );
    let path = dir.join("kong.conf");
    std::fs::write(&path, conf).unwrap();
    let (code, report) = run(&[
        "--kong-conf",
        path.to_str().unwrap(),
        "--timeout",
        "3s",
        "--no-upgrade",
    ]);
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["status"], "ok", "{report:#}");
    assert_eq!(c["tls"]["trust"], "custom");
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn s_server_requiring_a_certificate_refuses_a_client_without_one() {
    let world = World::new();
    let dir = world.dir.path();
    let (crt, key) = world.ca.server_files(dir, "s-server", &["verify.test"]);
    let Some(server) = SServer::start(&[
        "-cert",
        crt.to_str().unwrap(),
        "-key",
        key.to_str().unwrap(),
        "-Verify",
        "1",
        "-CAfile",
        world.ca_file(),
        "-verify_return_error",
        "-tls1_3",
    ]) else {
        return;
    };
    let pin = format!("verify.test:{}:127.0.0.1", server.addr.port());
    let target = format!("tls://verify.test:{}", server.addr.port());
    let (code, report) = run(&["--ca-file", world.ca_file(), "--resolve", &pin, &target]);
    assert_eq!(code, 1);
    let error = &check(&report, &target)["error"];
    assert_eq!(error["kind"], "client_cert_rejected", "{report:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("requires a client certificate and none was given"),
        "{message}"
    );
    assert!(message.contains("certificate_required"), "{message}");
    // A certificate from another CA: its alert comes after the TLS 1.3 handshake, and ends
    // the wait for the verdict.
    let other = Ca::named(dir, "other CA", "elsewhere", "other.pem");
    let (crt, key) = other.client(dir, "stranger", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (crt, key) = (crt.display().to_string(), key.display().to_string());
    let (_, report) = run(&[
        "--ca-file",
        world.ca_file(),
        "--resolve",
        &pin,
        "--client-cert",
        &crt,
        "--client-key",
        &key,
        &target,
    ]);
    let error = &check(&report, &target)["error"];
    assert_eq!(error["kind"], "client_cert_rejected", "{report:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("refused the client certificate given"),
        "{message}"
    );
}

#[test]
fn a_self_signed_server_is_named_and_trusted_through_the_ca_file() {
    let world = World::new();
    let dir = world.dir.path();
    // `openssl req -x509`: self-signed, and a CA certificate (basicConstraints CA:TRUE).
    openssl_self_signed(
        dir,
        "self",
        "/CN=self.test",
        &["-addext", "subjectAltName=DNS:self.test"],
    );
    let crt = dir.join("self.crt");
    let Some(server) = SServer::start(&[
        "-cert",
        crt.to_str().unwrap(),
        "-key",
        dir.join("self.key").to_str().unwrap(),
    ]) else {
        return;
    };
    let pin = format!("self.test:{}:127.0.0.1", server.addr.port());
    let target = format!("tls://self.test:{}", server.addr.port());
    let (_, report) = run(&["--resolve", &pin, &target]);
    let error = &check(&report, &target)["error"];
    assert_eq!(error["kind"], "cert_untrusted", "{report:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("is self-signed"),
        "{report:#}"
    );
    assert!(error["hint"].as_str().unwrap().contains("--ca-file"));
    // Given with --ca-file, as curl --cacert takes it: trusted.
    let (code, report) = run(&[
        "--resolve",
        &pin,
        "--ca-file",
        crt.to_str().unwrap(),
        &target,
    ]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(check(&report, &target)["tls"]["trust"], "custom");
    // …for its own name only.
    let wrong = format!("other.test:{}:127.0.0.1", server.addr.port());
    let other = format!("tls://other.test:{}", server.addr.port());
    let (_, report) = run(&[
        "--resolve",
        &wrong,
        "--ca-file",
        crt.to_str().unwrap(),
        &other,
    ]);
    assert_eq!(
        check(&report, &other)["error"]["kind"],
        "cert_name_mismatch",
        "{report:#}"
    );
}

#[test]
fn a_server_that_sends_no_intermediate_is_told_to() {
    let world = World::new();
    let dir = world.dir.path();
    let intermediate = world
        .ca
        .intermediate(dir, "preflight test intermediate", "inter.pem");
    let (crt, key) = intermediate.server_files(dir, "leaf-only", &["leaf.test"]);
    let Some(server) = SServer::start(&[
        "-cert",
        crt.to_str().unwrap(),
        "-key",
        key.to_str().unwrap(),
    ]) else {
        return;
    };
    let pin = format!("leaf.test:{}:127.0.0.1", server.addr.port());
    let target = format!("tls://leaf.test:{}", server.addr.port());
    // The root is trusted; the intermediate is not sent.
    let (_, report) = run(&["--ca-file", world.ca_file(), "--resolve", &pin, &target]);
    let error = &check(&report, &target)["error"];
    assert_eq!(error["kind"], "cert_untrusted", "{report:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("the server does not send the intermediate certificate"),
        "{message}"
    );
    assert!(
        message.contains("CN=preflight test intermediate"),
        "{message}"
    );
    assert!(error["hint"].as_str().unwrap().contains("full chain"));
}

#[test]
fn plain_http_on_a_tls_port_is_quoted() {
    let portal = raw_server(|mut stream| {
        read_some(&mut stream);
        let _ = stream.write_all(
            b"HTTP/1.1 302 Found\r\nLocation: http://portal.example/login\r\nContent-Length: 0\r\n\r\n",
        );
    });
    let target = format!("tls://{portal}");
    let (_, report) = run(&[&target]);
    let error = &check(&report, &target)["error"];
    assert_eq!(error["kind"], "tls_handshake", "{report:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("answered in plain HTTP (\"HTTP/1.1 302 Found\"): a captive portal"),
        "{message}"
    );
}

#[test]
fn an_expired_client_certificate_is_said_before_the_run_and_on_each_check() {
    let world = World::new();
    let Some(nginx) = MutualNginx::start(&world, "TLSv1.3", &world.ca.pem) else {
        return;
    };
    let (crt, key) = world.ca.client_dated(
        world.dir.path(),
        "expired",
        rcgen::date_time_ymd(2020, 1, 1),
        rcgen::date_time_ymd(2021, 1, 1),
    );
    let (crt, key) = (crt.to_str().unwrap(), key.to_str().unwrap());
    let mut command = crate::support::world::preflight();
    command.args([
        "check",
        "--format",
        "json",
        "--ca-file",
        world.ca_file(),
        "--resolve",
        &nginx.pin,
    ]);
    command.args([
        "--client-cert",
        crt,
        "--client-key",
        key,
        &nginx.tls,
        &nginx.https,
    ]);
    let (_, stdout, stderr) = crate::support::world::split(command.output().unwrap());
    // Before any connection, on stderr and in the report's notes.
    assert!(stderr.contains("expired on 2021-01-01"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_plain_words(&report);
    assert!(
        report["notes"]
            .to_string()
            .contains("expired on 2021-01-01"),
        "{report:#}"
    );
    // nginx completes the handshake: the TLS check warns that the certificate it took is
    // expired; the HTTP answer is nginx's refusal.
    let tls = check(&report, &nginx.tls);
    assert_eq!(tls["status"], "warn", "{report:#}");
    assert_eq!(tls["error"]["kind"], "client_cert_expired");
    let https = check(&report, &nginx.https);
    assert_eq!(https["error"]["kind"], "client_cert_rejected", "{report:#}");
}

#[test]
fn an_alias_and_the_source_address_are_in_the_report() {
    let world = World::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    world
        .aliases
        .lock()
        .unwrap()
        .push(("www.test".into(), "edge.test".into()));
    let dns = world
        .dns(
            &["test"],
            &[("edge.test", IpAddr::V4(Ipv4Addr::LOCALHOST))],
            &[],
            &[],
        )
        .to_string();
    let target = format!("tcp://www.test:{port}");
    let (code, report) = run(&["--dns-server", &dns, &target]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, &target);
    assert_eq!(c["cnames"], serde_json::json!(["edge.test"]), "{report:#}");
    let local = c["addresses"][0]["local"].as_str().unwrap();
    assert!(local.starts_with("127.0.0.1:"), "{local}");
    drop(listener);
}
