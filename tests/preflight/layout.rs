//! The human report fits the terminal (issue 16): at 80 columns no line is longer, a long run
//! of one result is a few lines, repeated causes are one entry; JUnit's verdict matches the
//! exit code.

use std::net::TcpListener;

use crate::support::world::{World, check_json, preflight, run, split};

/// 101 ports where nothing listens: below Linux's ephemeral range (32768 and up), where every
/// test's own listeners get their ports, so no other test can hold one of them.
fn closed_range() -> (u16, u16) {
    let first = 20_000;
    let last = first + 100;
    for port in first..=last {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is in use on this host: the test needs 20000-20100 free"
        );
    }
    (first, last)
}

#[test]
fn a_profile_run_with_failures_fits_80_columns() {
    let world = World::new();
    // Every konghq.com name is unknown to this DNS server: every check fails.
    let dns = world.dns(&["konghq.com"], &[], &[], &[]).to_string();
    let out = preflight()
        .args([
            "check",
            "--profile",
            "konnect",
            "--set",
            "region=us",
            "--set",
            "cp_prefix=abc",
        ])
        .args(["--dns-server", &dns, "--timeout", "2s"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let (code, stdout, _) = split(out);
    assert_eq!(code, 1);
    for line in stdout.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}\n{stdout}",
            line.chars().count()
        );
    }
    // One cause, one entry: every endpoint failed the same way.
    let entries = stdout
        .lines()
        .filter(|l| l.contains("in the dns phase"))
        .count();
    assert!(entries <= 2, "{stdout}");
}

#[test]
fn a_refused_port_range_is_a_screen_and_the_json_keeps_every_check() {
    let (first, last) = closed_range();
    let range = format!("tcp://127.0.0.1:{first}-{last}");
    let out = preflight()
        .args(["check", "--timeout", "2s", &range])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let (_, stdout, _) = split(out);
    let lines = stdout.lines().count();
    assert!(lines < 30, "{lines} lines:\n{stdout}");
    assert!(stdout.contains("101 checks in"), "{stdout}");
    assert!(
        stdout.contains("… and 98 more failed: refused (tcp)"),
        "{stdout}"
    );
    assert!(stdout.contains("101 endpoints, required:"), "{stdout}");
    // The name once, with the ids it covers.
    assert_eq!(stdout.matches("TCP connect (").count(), 1, "{stdout}");
    let (_, report) = check_json(&["--timeout", "2s", &range]);
    assert_eq!(report["checks"].as_array().unwrap().len(), 101);
    // One check is "1 check".
    let (_, stdout, _) = run(&["check", &format!("tcp://127.0.0.1:{first}")]);
    assert!(stdout.contains(": 1 check in "), "{stdout}");
}

#[test]
fn junit_fails_only_what_fails_the_run() {
    let (first, _) = closed_range();
    let target = format!("tcp://127.0.0.1:{first}");
    // An optional failure (a profile endpoint marked optional) is not a <failure>: the run
    // exits 0. Command-line targets are required, so a custom profile makes one optional.
    let world = World::new();
    let profile = world.dir.path().join("optional.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"optional\"\ndescription = \"one optional endpoint\"\n\n[[endpoints]]\nkey = \"db\"\nname = \"Database\"\nrole = \"internal\"\nhost = \"127.0.0.1\"\nport = {first}\nprobe = \"tcp\"\nrequired = false\nnote = \"\"\n"
        ),
    )
    .unwrap();
    let (code, xml, stderr) = run(&[
        "check",
        "--format",
        "junit",
        "--profile",
        profile.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(
        xml.contains("<system-out>optional, failed refused"),
        "{xml}"
    );
    assert!(xml.contains(r#"failures="0""#), "{xml}");
    // A required failure is one, counted in both elements.
    let (code, xml, _) = run(&["check", "--format", "junit", &target]);
    assert_eq!(code, 1);
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert_eq!(xml.matches(r#"failures="1""#).count(), 2, "{xml}");
    // The whole's time is the sum of the suites'.
    let times: Vec<f64> = regex_lite::Regex::new(r#"<testsuites? [^>]*time="([0-9.]+)""#)
        .unwrap()
        .captures_iter(&xml)
        .map(|c| c[1].parse().unwrap())
        .collect();
    let (whole, suites) = times.split_first().unwrap();
    assert!((whole - suites.iter().sum::<f64>()).abs() < 0.002, "{xml}");
}
