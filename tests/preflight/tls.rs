//! TLS in depth against loopback servers: certificate facts and trust, expiry warnings, mutual
//! TLS (TLS 1.3 and 1.2), interception, server name and ALPN, HTTPS and WebSocket.

use crate::support::konnect::{cluster_cert, konnect_args, konnect_world};
use crate::support::world::{
    Behaviour, Ca, ServerOptions, Validity, World, check, check_json, kind, run, self_signed_server,
};

/// Serves `behaviour` and returns (`--resolve` pin, target) for `scheme://host:port/path`.
fn serve(
    world: &World,
    host: &str,
    scheme: &str,
    path: &str,
    behaviour: Behaviour,
) -> (String, String) {
    let addr = world.serve_any(behaviour);
    (
        format!("{host}:{}:127.0.0.1", addr.port()),
        format!("{scheme}://{host}:{}{path}", addr.port()),
    )
}

fn tls_server(
    world: &World,
    host: &str,
    validity: Validity,
    options: ServerOptions,
) -> (String, String) {
    let config = world.ca.server_with(&[host], validity, options);
    serve(world, host, "tls", "", Behaviour::Tls(config))
}

#[test]
fn certificate_facts_are_reported_right() {
    let world = World::new();
    let (pin, target) = tls_server(
        &world,
        "facts.test",
        Validity::Current,
        ServerOptions::default(),
    );
    let (code, report) = check_json(&["--ca-file", world.ca_file(), "--resolve", &pin, &target]);
    assert_eq!(code, 0, "{report:#}");
    let tls = &check(&report, &target)["tls"];
    assert_eq!(tls["version"], "TLSv1.3");
    assert!(
        tls["cipher"].as_str().unwrap().starts_with("TLS13_"),
        "{tls:#}"
    );
    assert!(tls["alpn"].is_null());
    assert_eq!(tls["subject"], "CN=preflight test server");
    assert_eq!(tls["issuer"], "CN=preflight test CA, O=preflight tests");
    assert_eq!(tls["san"], serde_json::json!(["facts.test"]));
    assert_eq!(tls["not_before"], "2020-01-01T00:00:00Z");
    assert_eq!(tls["not_after"], "2090-01-01T00:00:00Z");
    let until_2090 = (time::macros::datetime!(2090-01-01 0:00 UTC)
        - time::OffsetDateTime::now_utc())
    .whole_days();
    assert_eq!(tls["days_left"], until_2090);
    assert_eq!(tls["chain_len"], 1);
    assert_eq!(tls["trust"], "custom");

    let (_, stdout, _) = run(&[
        "check",
        "--ca-file",
        world.ca_file(),
        "--resolve",
        &pin,
        &target,
    ]);
    // The lines under the check's row (its detail, then the certificate's).
    let under: String = stdout
        .lines()
        .skip_while(|l| !l.contains(&target))
        .skip(1)
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let under = under.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(under.contains("issuer CN=preflight test CA"), "{stdout}");
    assert!(
        under.contains("expires 2090-01-01") && under.contains("trust custom"),
        "{stdout}"
    );
}

#[test]
fn an_untrusted_chain_still_shows_who_issued_it() {
    let world = World::new();
    let (pin, target) = serve(
        &world,
        "self.test",
        "tls",
        "",
        Behaviour::Tls(self_signed_server(&["self.test"])),
    );
    let (_, report) = check_json(&["--resolve", &pin, &target]);
    assert_eq!(kind(&report, &target), "cert_untrusted");
    let c = check(&report, &target);
    assert_eq!(c["tls"]["trust"], "none");
    assert_eq!(c["tls"]["issuer"], "CN=preflight test server");
    assert!(
        c["error"]["message"]
            .as_str()
            .unwrap()
            .contains("issued by CN=preflight test server")
    );
}

#[test]
fn expiring_certificate_warns_and_strict_fails() {
    let world = World::new();
    let (pin, target) = tls_server(
        &world,
        "soon.test",
        Validity::ExpiresInDays(5),
        ServerOptions::default(),
    );
    let base = ["--ca-file", world.ca_file(), "--resolve", &pin, &target];
    let (code, report) = check_json(&base);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, &target);
    assert_eq!(c["status"], "warn");
    assert_eq!(kind(&report, &target), "cert_expiring");
    assert_eq!(c["tls"]["days_left"], 5);
    assert_eq!(report["summary"]["warn"], 1);

    let mut strict = base.to_vec();
    strict.push("--strict");
    assert_eq!(check_json(&strict).0, 1);

    let mut relaxed = base.to_vec();
    relaxed.extend(["--cert-warn-days", "3"]);
    let (code, report) = check_json(&relaxed);
    assert_eq!(
        (code, check(&report, &target)["status"].as_str()),
        (0, Some("ok"))
    );
}

fn mutual_tls(tls12_only: bool) {
    let world = World::new();
    let options = ServerOptions {
        client_auth: true,
        tls12_only,
        ..ServerOptions::default()
    };
    let (pin, target) = tls_server(&world, "cp.test", Validity::Current, options);
    let version = if tls12_only { "TLSv1.2" } else { "TLSv1.3" };
    let base = vec!["--ca-file", world.ca_file(), "--resolve", &pin, &target];

    // No client certificate: refused.
    let (code, report) = check_json(&base);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kind(&report, &target), "client_cert_rejected", "{report:#}");

    // The right one: accepted.
    let (crt, key) = cluster_cert(&world);
    let mut right = base.clone();
    right.extend(["--client-cert", &crt, "--client-key", &key]);
    let (code, report) = check_json(&right);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(check(&report, &target)["tls"]["version"], version);

    // One from another CA: refused.
    let other = Ca::named(world.dir.path(), "other CA", "elsewhere", "other.pem");
    let (crt, key) = other.client(world.dir.path(), "stranger", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (crt, key) = (crt.display().to_string(), key.display().to_string());
    let mut wrong = base.clone();
    wrong.extend(["--client-cert", &crt, "--client-key", &key]);
    let (code, report) = check_json(&wrong);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kind(&report, &target), "client_cert_rejected", "{report:#}");
    assert!(
        check(&report, &target)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused the client certificate")
    );
}

#[test]
fn mutual_tls_1_3_is_judged_after_the_handshake() {
    mutual_tls(false);
}

#[test]
fn mutual_tls_1_2_is_judged_in_the_handshake() {
    mutual_tls(true);
}

#[test]
fn every_supported_client_key_type_is_used() {
    let world = World::new();
    let options = ServerOptions {
        client_auth: true,
        ..ServerOptions::default()
    };
    let (pin, target) = tls_server(&world, "keys.test", Validity::Current, options);
    for (name, alg) in [
        ("p256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("p384", &rcgen::PKCS_ECDSA_P384_SHA384),
        ("ed25519", &rcgen::PKCS_ED25519),
    ] {
        let (crt, key) = world.ca.client(world.dir.path(), name, alg);
        let (code, report) = check_with_identity(&world, &pin, &target, &crt, &key);
        assert_eq!(code, 0, "{name}: {report:#}");
    }
    // The same P-256 key in SEC1 form ("BEGIN EC PRIVATE KEY").
    let (crt, key) = world
        .ca
        .client(world.dir.path(), "sec1", &rcgen::PKCS_ECDSA_P256_SHA256);
    let sec1 = world.dir.path().join("sec1-ec.key");
    std::fs::write(
        &sec1,
        crate::support::world::pkcs8_to_sec1_pem(&std::fs::read_to_string(&key).unwrap()),
    )
    .unwrap();
    let (code, report) = check_with_identity(&world, &pin, &target, &crt, &sec1);
    assert_eq!(code, 0, "sec1: {report:#}");
}

/// Checks `target` (pinned by `pin`) with the world's CA and this client certificate and key.
fn check_with_identity(
    world: &World,
    pin: &str,
    target: &str,
    crt: &std::path::Path,
    key: &std::path::Path,
) -> (i32, serde_json::Value) {
    let (crt, key) = (crt.display().to_string(), key.display().to_string());
    check_json(&[
        "--ca-file",
        world.ca_file(),
        "--resolve",
        pin,
        "--client-cert",
        &crt,
        "--client-key",
        &key,
        target,
    ])
}

#[test]
fn a_required_client_certificate_not_given_is_a_warning_with_a_hint() {
    let world = World::new();
    let options = ServerOptions {
        client_auth: true,
        ..ServerOptions::default()
    };
    let addr = world.serve_any(Behaviour::Tls(world.ca.server_with(
        &["cp.test"],
        Validity::Current,
        options,
    )));
    let profile = world.dir.path().join("mtls.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"mtls\"\ndescription = \"d\"\n[[endpoints]]\nkey = \"cp\"\nname = \"CP\"\nrole = \"control-plane\"\nhost = \"cp.test\"\nport = {}\nprobe = \"tls\"\nclient_cert = true\nnote = \"n\"\n",
            addr.port()
        ),
    )
    .unwrap();
    let pin = format!("cp.test:{}:127.0.0.1", addr.port());
    let (code, report) = check_json(&[
        "--profile",
        profile.to_str().unwrap(),
        "--ca-file",
        world.ca_file(),
        "--resolve",
        &pin,
    ]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, "mtls.cp");
    assert_eq!(c["status"], "warn");
    assert_eq!(c["error"]["kind"], "client_cert_missing");
    assert!(
        c["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--client-cert"),
        "{c:#}"
    );
}

#[test]
fn bad_client_keys_exit_2_naming_the_file_and_never_the_key() {
    let world = World::new();
    let (crt, key) = cluster_cert(&world);
    let (_, other_key) = world
        .ca
        .client(world.dir.path(), "other", &rcgen::PKCS_ECDSA_P256_SHA256);
    let other_key = other_key.display().to_string();
    let garbage = world.dir.path().join("garbage.key");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let garbage = garbage.display().to_string();
    let secret = std::fs::read_to_string(&other_key).unwrap();
    let secret_line = secret.lines().nth(1).unwrap();
    for (args, expected) in [
        (
            vec!["--client-cert", &crt, "--client-key", &other_key],
            "does not match the certificate",
        ),
        (
            vec!["--client-cert", &crt, "--client-key", &garbage],
            "holds no PEM private key",
        ),
        (
            vec!["--client-cert", &crt, "--client-key", "/nonexistent.key"],
            "/nonexistent.key: --client-key cannot read it",
        ),
        (
            vec!["--client-cert", &key, "--client-key", &key],
            "--client-cert holds no PEM certificate",
        ),
        (vec!["--client-cert", &crt], "--client-key"),
    ] {
        let mut all = vec!["check"];
        all.extend(args.iter().copied());
        all.push("tcp://127.0.0.1:9");
        let (code, stdout, stderr) = run(&all);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains(secret_line) && !stderr.contains("PRIVATE KEY"),
            "{stderr}"
        );
    }
}

#[test]
fn a_chain_from_an_inspection_product_is_named() {
    let world = World::new();
    let zscaler = Ca::named(
        world.dir.path(),
        "Zscaler Intermediate Root CA (zscaler.net)",
        "Zscaler Inc.",
        "zscaler.pem",
    );
    let config = zscaler.server(&["cloud.konghq.com"], Validity::Current);
    let (pin, target) = serve(
        &world,
        "cloud.konghq.com",
        "tls",
        "",
        Behaviour::Tls(config),
    );
    // Untrusted, as on a host without the proxy's root …
    let (code, report) = check_json(&["--resolve", &pin, &target]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, &target), "tls_intercepted", "{report:#}");
    let error = &check(&report, &target)["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Zscaler Intermediate Root CA"),
        "{error:#}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("exempt cloud.konghq.com"),
        "{error:#}"
    );
    // … and trusted, as on a host where IT installed it.
    let pem = zscaler.pem.display().to_string();
    let (_, report) = check_json(&["--ca-file", &pem, "--resolve", &pin, &target]);
    assert_eq!(kind(&report, &target), "tls_intercepted");
    assert_eq!(check(&report, &target)["tls"]["trust"], "custom");
}

#[test]
fn publicly_certified_endpoints_signed_by_a_private_ca_are_interception() {
    let world = World::new();
    let Some((dns, _)) = konnect_world(&world) else {
        return;
    };
    let dns = dns.to_string();
    let cert = cluster_cert(&world);
    let args: Vec<&str> = konnect_args(&dns, world.ca_file(), &cert)
        .into_iter()
        .filter(|a| *a != "--allow-private-ca")
        .collect();
    let (code, report) = check_json(&args);
    assert_eq!(code, 1);
    for key in [
        "platform",
        "global-api",
        "regional-api",
        "portal",
        "control-plane",
        "telemetry",
    ] {
        let id = format!("konnect.{key}");
        assert_eq!(kind(&report, &id), "tls_intercepted", "{id}");
        let message = check(&report, &id)["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains("CN=preflight test CA") && message.contains("--ca-file"),
            "{message}"
        );
    }
    assert_eq!(check(&report, "konnect.audit-log")["status"], "ok");
}

#[test]
fn server_name_sets_sni_and_the_name_verified() {
    let world = World::new();
    let config = world.ca.server(&["real.test"], Validity::Current);
    let addr = world.serve_any(Behaviour::Tls(config));
    let target = format!("tls://127.0.0.1:{}", addr.port());
    let (_, report) = check_json(&["--ca-file", world.ca_file(), &target]);
    assert_eq!(kind(&report, &target), "cert_name_mismatch");
    let (code, report) = check_json(&[
        "--ca-file",
        world.ca_file(),
        "--server-name",
        "real.test",
        &target,
    ]);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn alpn_is_negotiated_reported_or_refused() {
    let world = World::new();
    let h2 = ServerOptions {
        alpn: vec!["h2"],
        ..ServerOptions::default()
    };
    let (pin, target) = tls_server(&world, "alpn.test", Validity::Current, h2);
    let ca = world.ca_file();
    let (code, report) = check_json(&[
        "--ca-file",
        ca,
        "--resolve",
        &pin,
        "--alpn",
        "h2,http/1.1",
        &target,
    ]);
    assert_eq!(code, 0);
    assert_eq!(check(&report, &target)["tls"]["alpn"], "h2");
    let (code, report) = check_json(&[
        "--ca-file",
        ca,
        "--resolve",
        &pin,
        "--alpn",
        "http/1.1",
        &target,
    ]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, &target), "alpn_rejected");
    let (pin, target) = tls_server(
        &world,
        "plain.test",
        Validity::Current,
        ServerOptions::default(),
    );
    let (code, report) = check_json(&["--ca-file", ca, "--resolve", &pin, "--alpn", "h2", &target]);
    assert_eq!(code, 0);
    assert_eq!(check(&report, &target)["status"], "warn");
    assert_eq!(kind(&report, &target), "alpn_not_negotiated");
}

#[test]
fn https_and_websocket_targets_report_their_statuses() {
    let world = World::new();
    let tls = world.ca.server(&["web.test"], Validity::Current);
    let addr = world.serve_any(Behaviour::Web(Some(tls)));
    let port = addr.port();
    let pin = format!("web.test:{port}:127.0.0.1");
    let url = |scheme: &str, path: &str| format!("{scheme}://web.test:{port}{path}");
    let plain = world.serve_any(Behaviour::Web(None));
    let plain_url = format!("http://127.0.0.1:{}", plain.port());
    let ws_plain = format!("ws://127.0.0.1:{}/ws", plain.port());
    let ssh = world.serve_any(Behaviour::NotTls);
    let not_http = format!("http://127.0.0.1:{}", ssh.port());
    let targets = [
        url("https", ""),
        url("https", "/down"),
        url("https", "/slow"),
        url("wss", "/ws"),
        url("wss", ""),
        plain_url.clone(),
        ws_plain.clone(),
        not_http.clone(),
    ];
    let mut args = vec![
        "--ca-file",
        world.ca_file(),
        "--resolve",
        &pin,
        "--timeout",
        "1s",
    ];
    args.extend(targets.iter().map(String::as_str));
    let (code, report) = check_json(&args);
    assert_eq!(code, 1);
    let expect = [
        (&targets[0], "ok", Some(200), ""),
        (&targets[1], "fail", Some(503), "http_status"),
        (&targets[2], "fail", None, "http_timeout"),
        (&targets[3], "ok", Some(101), ""),
        (&targets[4], "fail", Some(200), "http_status"),
        (&targets[5], "ok", Some(200), ""),
        (&targets[6], "ok", Some(101), ""),
        (&targets[7], "fail", None, "http_error"),
    ];
    for (id, status, http, failure) in expect {
        let c = check(&report, id);
        assert_eq!(c["status"], status, "{c:#}");
        assert_eq!(
            c["http_status"].as_u64(),
            http.map(|s: u16| u64::from(s)),
            "{c:#}"
        );
        assert_eq!(kind(&report, id), failure, "{c:#}");
    }
    assert!(
        check(&report, &targets[0])["timings_ms"]["http"]
            .as_f64()
            .is_some()
    );
    assert_eq!(check(&report, &targets[0])["tls"]["version"], "TLSv1.3");

    // --expect-status narrows (or widens) what counts as reachable.
    let down = url("https", "/down");
    let (code, _) = check_json(&[
        "--ca-file",
        world.ca_file(),
        "--resolve",
        &pin,
        "--expect-status",
        "503",
        &down,
    ]);
    assert_eq!(code, 0);
    let (code, report) = check_json(&["--expect-status", "2xx,301", &plain_url]);
    assert_eq!(code, 0, "{report:#}");
    let (code, _) = check_json(&["--expect-status", "204", &plain_url]);
    assert_eq!(code, 1);
}
