//! Checks against loopback servers: a whole Konnect world that passes, and every failure kind
//! a loopback peer can produce, named right in the JSON.

use crate::support::konnect::{KONNECT, cluster_cert, konnect_args, konnect_world};
use crate::support::world::{Behaviour, Validity, World, check, check_json, kind, lo, run};

#[test]
fn konnect_profile_passes_against_a_loopback_world_in_json() {
    let world = World::new();
    let Some((dns, block)) = konnect_world(&world) else {
        return;
    };
    let dns = dns.to_string();
    let cert = cluster_cert(&world);
    let (code, report) = check_json(&konnect_args(&dns, world.ca_file(), &cert));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["tool"], "preflight");
    assert_eq!(report["profiles"], serde_json::json!(["konnect"]));
    assert_eq!(
        report["summary"],
        serde_json::json!({"total": 11, "ok": 11, "warn": 0, "fail": 0, "skipped": 0})
    );
    for (i, (key, host)) in KONNECT.iter().enumerate() {
        let c = check(&report, &format!("konnect.{key}"));
        assert_eq!(c["status"], "ok", "{c:#}");
        // With the node's certificate, the control plane gets the data plane's own handshake.
        let scheme = match *key {
            "control-plane" | "control-plane-today" => "kong-cluster",
            _ => "tls",
        };
        assert_eq!(c["target"], format!("{scheme}://{host}:443"));
        assert_eq!(c["addresses"][0]["ip"], lo(block, i as u8 + 1).to_string());
        assert_eq!(c["tls"]["version"], "TLSv1.3");
        assert_eq!(c["tls"]["trust"], "custom");
        assert_eq!(c["tls"]["san"], serde_json::json!([host]));
        assert!(c["timings_ms"]["dns"].as_f64().is_some(), "{c:#}");
        assert!(c["timings_ms"]["tls"].as_f64().is_some(), "{c:#}");
    }
    assert_eq!(check(&report, "konnect.control-plane")["http_status"], 101);
    let audit = check(&report, "konnect.audit-log");
    assert_eq!(audit["status"], "ok");
    assert_eq!(audit["target"], "tcp://x.us.cp0.konghq.com:8071");
    assert!(audit["tls"].is_null());
    let audit = check(&report, "konnect.audit-log-20010");
    assert_eq!(audit["status"], "ok");
    assert_eq!(audit["target"], "tcp://x.us.cp0.konghq.com:20010");

    // cp0 serves two endpoints (443 and 8071) but is looked up once: one A and one AAAA query.
    let queries = world.dns_queries.lock().unwrap();
    assert_eq!(queries.get("x.us.cp0.konghq.com"), Some(&2), "{queries:?}");
}

#[test]
fn konnect_profile_passes_against_a_loopback_world_in_human_form() {
    let world = World::new();
    let Some((dns, _)) = konnect_world(&world) else {
        return;
    };
    let dns = dns.to_string();
    let cert = cluster_cert(&world);
    let mut args = vec!["check"];
    args.extend(konnect_args(&dns, world.ca_file(), &cert));
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("11 ok, 0 warn, 0 failed (0 required), 0 skipped"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    for role in ["platform", "api", "portal", "control-plane", "telemetry"] {
        assert!(
            stdout.lines().any(|l| l == role),
            "no {role} group in\n{stdout}"
        );
    }
    // The check's row, and the detail under it when the row would pass 80 columns.
    let cp: String = stdout
        .lines()
        .skip_while(|l| !l.contains("Control plane (configuration)"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        cp.contains("[ ok ]") && cp.contains("kong-cluster://x.us.cp0.konghq.com:443"),
        "{cp}"
    );
    assert!(cp.contains("TLSv1.3"), "{cp}");
    // Not a terminal: no colour codes.
    assert!(!stdout.contains('\x1b'), "{stdout}");
}

#[test]
fn each_failure_kind_is_named_and_all_fail_within_one_timeout() {
    let world = World::new();
    let dns = world.dns(&["test"], &[], &["txt.test"], &["slow.test"]);
    let tls = |names: &[&str], validity| Behaviour::Tls(world.ca.server(names, validity));
    let servers = [
        (
            "untrusted.test",
            Behaviour::Tls(crate::support::world::self_signed_server(&[
                "untrusted.test",
            ])),
        ),
        ("expired.test", tls(&["expired.test"], Validity::Expired)),
        ("future.test", tls(&["future.test"], Validity::NotYetValid)),
        (
            "mismatch.test",
            tls(&["somewhere-else.test"], Validity::Current),
        ),
        ("silent.test", Behaviour::Silent),
        ("ssh.test", Behaviour::NotTls),
        ("reset.test", Behaviour::Reset),
    ];
    let mut args = vec![
        "--timeout".to_string(),
        "1s".to_string(),
        "--dns-server".to_string(),
        dns.to_string(),
        "--ca-file".to_string(),
        world.ca_file().to_string(),
        "dns://missing.test".to_string(),
        "dns://txt.test".to_string(),
        "dns://outside.example".to_string(),
        "dns://slow.test".to_string(),
        format!("tls://127.0.0.1:{}", crate::support::free_port()),
    ];
    let mut expected = vec![
        ("dns://missing.test".to_string(), "nxdomain", "dns"),
        ("dns://txt.test".to_string(), "no_records", "dns"),
        ("dns://outside.example".to_string(), "dns_error", "dns"),
        ("dns://slow.test".to_string(), "dns_timeout", "dns"),
        (args[10].clone(), "refused", "tcp"),
    ];
    let kinds = [
        "cert_untrusted",
        "cert_expired",
        "cert_not_yet_valid",
        "cert_name_mismatch",
        "tls_timeout",
        "tls_handshake",
        "reset",
    ];
    for ((host, behaviour), kind) in servers.into_iter().zip(kinds) {
        let addr = world.serve_any(behaviour);
        args.push("--resolve".into());
        args.push(format!("{host}:{}:127.0.0.1", addr.port()));
        let target = format!("tls://{host}:{}", addr.port());
        args.push(target.clone());
        expected.push((target, kind, "tls"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, report) = check_json(&args);
    assert_eq!(code, 1);
    for (id, expected_kind, phase) in &expected {
        let c = check(&report, id);
        assert_eq!(c["status"], "fail", "{c:#}");
        assert_eq!(kind(&report, id), *expected_kind, "{c:#}");
        assert_eq!(c["error"]["phase"], *phase, "{c:#}");
        assert!(!c["error"]["hint"].as_str().unwrap().is_empty());
        assert!(!c["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(report["summary"]["fail"], expected.len());
    let slow = &expected.iter().find(|e| e.1 == "tls_timeout").unwrap().0;
    let message = check(&report, slow)["error"]["message"].as_str().unwrap();
    assert!(message.ends_with("within 1 s"), "{message}");
    // Twelve checks, two of which wait out the 1 s timeout: run at once, about one timeout,
    // and one more for the second opinion the stalled handshake draws (smaller segments, no
    // server name), taken at once.
    let took = report["duration_ms"].as_f64().unwrap();
    assert!(took < 3000.0, "took {took} ms");
}

#[test]
fn deadline_ends_checks_that_are_still_running() {
    let world = World::new();
    let silent = world.serve_any(Behaviour::Silent);
    let target = format!("tls://{silent}");
    let (code, report) = check_json(&["--timeout", "10s", "--deadline", "1s", &target]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, &target), "deadline");
    assert_eq!(check(&report, &target)["error"]["phase"], "tls");
    let message = check(&report, &target)["error"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.ends_with("before the run's --deadline"),
        "{message}"
    );
    assert!(report["duration_ms"].as_f64().unwrap() < 5000.0);
}

#[test]
fn an_address_family_that_fails_is_shown_while_the_other_works() {
    let world = World::new();
    let up = world.serve_any(Behaviour::Accept);
    let pin = format!("dual.test:{}:127.0.0.1,[::1]", up.port());
    let target = format!("tcp://dual.test:{}", up.port());
    let (code, report) = check_json(&["--resolve", &pin, &target]);
    assert_eq!(code, 0, "{report:#}");
    let c = check(&report, &target);
    assert_eq!(c["status"], "ok");
    let addrs = c["addresses"].as_array().unwrap();
    assert_eq!(addrs.len(), 2, "{c:#}");
    assert_eq!(addrs[0]["ip"], "127.0.0.1");
    assert_eq!(addrs[0]["status"], "ok");
    assert_eq!(addrs[1]["ip"], "::1");
    assert_eq!(addrs[1]["status"], "fail");
    assert!(addrs[1]["error"]["kind"].is_string());

    let (code, stdout, _) = run(&["check", "--resolve", &pin, &target]);
    assert_eq!(code, 0);
    assert!(stdout.contains("but ::1:"), "{stdout}");

    // --ipv4 leaves the IPv6 address out.
    let (_, report) = check_json(&["--ipv4", "--resolve", &pin, &target]);
    assert_eq!(
        check(&report, &target)["addresses"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn optional_endpoints_fail_without_failing_the_run_and_unset_ones_are_skipped() {
    let world = World::new();
    let up = world.serve_any(Behaviour::Accept);
    let profile = world.dir.path().join("site.toml");
    std::fs::write(
        &profile,
        format!(
            r#"name = "site"
description = "a site's own endpoints"
[[variables]]
name = "extra"
help = "an optional host"
[[endpoints]]
key = "up"
name = "Up"
role = "internal"
host = "127.0.0.1"
port = {up}
probe = "tcp"
note = "listens"
[[endpoints]]
key = "down"
name = "Down"
role = "external"
host = "127.0.0.1"
port = {down}
probe = "tcp"
required = false
note = "nothing listens"
[[endpoints]]
key = "extra"
name = "Extra"
role = "external"
host = "{{extra}}"
port = 1
probe = "tcp"
note = "only with --set extra"
"#,
            up = up.port(),
            down = crate::support::free_port()
        ),
    )
    .unwrap();
    let path = profile.to_str().unwrap();
    let (code, report) = check_json(&["--profile", path]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["summary"],
        serde_json::json!({"total": 3, "ok": 1, "warn": 0, "fail": 1, "skipped": 1})
    );
    assert_eq!(kind(&report, "site.down"), "refused");
    assert_eq!(check(&report, "site.down")["required"], false);
    let extra = check(&report, "site.extra");
    assert_eq!(extra["status"], "skipped");
    assert!(
        extra["reason"].as_str().unwrap().contains("--set extra="),
        "{extra:#}"
    );

    // --only keeps the roles asked for.
    let (_, report) = check_json(&["--profile", path, "--only", "internal"]);
    assert_eq!(report["summary"]["total"], 1);
    assert_eq!(report["checks"][0]["id"], "site.up");
}

#[test]
fn output_file_gets_the_report_and_the_terminal_the_summary() {
    let world = World::new();
    let up = world.serve_any(Behaviour::Accept);
    let out = world.dir.path().join("report.json");
    let target = format!("tcp://{up}");
    let (code, stdout, _) = run(&[
        "check",
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
        &target,
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("1 ok, 0 warn, 0 failed"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(check(&report, &target)["status"], "ok");
    let leftovers: Vec<_> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// An `--output` that cannot be written is one line and exit 2, and leaves no temporary file
/// behind (the report is written beside the target, then renamed).
#[test]
fn an_output_that_cannot_be_written_leaves_nothing_behind() {
    let world = World::new();
    let up = world.serve_any(Behaviour::Accept);
    // A directory where the report should go: the rename fails after the write.
    let taken = world.dir.path().join("report.json");
    std::fs::create_dir(&taken).unwrap();
    let target = format!("tcp://{up}");
    let (code, stdout, stderr) = run(&["check", "--output", taken.to_str().unwrap(), &target]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "preflight: {}: --output cannot be written:",
            taken.display()
        )) && stderr.lines().count() == 1,
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(taken.is_dir());
}
