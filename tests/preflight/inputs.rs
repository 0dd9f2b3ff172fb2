//! Bad input: one clear line on stderr naming the problem, exit code 2, nothing probed.

use std::net::TcpListener;

use crate::support::world::run;

#[test]
fn every_bad_input_exits_2_with_one_line_naming_it_and_probes_nothing() {
    // Every case also names this listener as a target: it must see no connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = format!("tcp://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(
        &bad_toml,
        "name = \"bad\"\ndescription = \"x\"\n[[endpoints]]\nkey = \n",
    )
    .unwrap();
    let bad_toml = bad_toml.to_str().unwrap().to_string();
    let empty_pem = dir.path().join("empty.pem");
    std::fs::write(&empty_pem, "not a certificate\n").unwrap();
    let empty_pem = empty_pem.to_str().unwrap().to_string();

    let cases: &[(&[&str], &str)] = &[
        (
            &["--profile", "kong-classic"],
            "unknown profile `kong-classic`",
        ),
        (
            &["--profile", "konnect", "--set", "cp_prefix=x"],
            "`region` is required",
        ),
        (
            &[
                "--profile",
                "konnect",
                "--set",
                "region=mars",
                "--set",
                "cp_prefix=x",
            ],
            "--set region=mars is not allowed (allowed: au, eu, me, in, sg, us)",
        ),
        (
            &["--profile", "konnect", "--set", "region"],
            "--set region: expected KEY=VALUE",
        ),
        (
            &["--set", "region=us"],
            "--set region: no profile has this variable",
        ),
        (&["--profile", &bad_toml], "bad.toml, line 4"),
        (
            &["--profile", "/nonexistent/site.toml"],
            "/nonexistent/site.toml: cannot read",
        ),
        (&["tcp://example.test"], "missing port"),
        (&["tcp://example.test:70000"], "port 70000 is out of range"),
        (&["sctp://example.test:53"], "unknown scheme"),
        (&["bind://localhost:8000"], "not a name"),
        (
            &["--watch", "10s", "--format", "junit", "tcp://127.0.0.1:9"],
            "--watch: a watch prints changes as text, or JSON Lines",
        ),
        (&["--timeout", "5x"], "'--timeout <DURATION>'"),
        (&["--deadline", "soon"], "'--deadline <DURATION>'"),
        (&["--concurrency", "0"], "'--concurrency <N>'"),
        (
            &["--resolve", "example.test:443"],
            "--resolve example.test:443: expected HOST:PORT:ADDR",
        ),
        (
            &["--resolve", "example.test:443:nowhere"],
            "`nowhere` is not an IP address",
        ),
        (&["--dns-server", "dns.example"], "--dns-server dns.example"),
        (
            &["--ca-file", "/nonexistent/ca.pem"],
            "/nonexistent/ca.pem: --ca-file cannot read it",
        ),
        (&["--ca-file", &empty_pem], "holds no PEM certificate"),
        (
            &["--ca-file", "/dev/zero"],
            "a character device, not a regular file",
        ),
        (
            &["--profile", "/dev/zero"],
            "a character device, not a regular file",
        ),
        (&["--timeout", "100000y"], "must be at most 24h"),
        (
            &["--only", "web", "--profile", "konnect"],
            "--only web: unknown role",
        ),
        (&["--ipv4", "--ipv6"], "cannot be used with"),
        (&["--format", "xml"], "'--format <FORMAT>'"),
        (
            &["--proxy", "socks4://proxy.example:1080"],
            "--proxy socks4://proxy.example:1080: unsupported proxy scheme",
        ),
        (
            &["--proxy", "http://proxy.example:3128/path"],
            "a proxy URL has no path",
        ),
        (
            &["--proxy", "http://proxy.example", "--proxy-user", "alice"],
            "--proxy-user ***: expected USER:PASSWORD",
        ),
        (
            &["--compare-direct"],
            "--compare-direct: no proxy is configured",
        ),
        (
            &["https://alice:secret@api.example.test/"],
            "target `https://***@api.example.test/`: credentials in a target URL",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        all.push(&target);
        let (code, stdout, stderr) = run(&all);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("preflight: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected `{expected}` in {stderr}"
        );
    }
    assert!(
        listener.accept().is_err(),
        "a bad input still probed the target"
    );

    let (code, _, stderr) = run(&["check"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nothing to check"), "{stderr}");
}

#[test]
fn completions_and_man_page_come_from_the_flags() {
    let (code, bash, _) = crate::support::world::run(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        bash.contains("_preflight()") && bash.contains("--kong-conf"),
        "{bash}"
    );
    let (code, zsh, _) = crate::support::world::run(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(zsh.starts_with("#compdef preflight"), "{zsh}");
    let (code, man, _) = crate::support::world::run(&["man"]);
    assert_eq!(code, 0);
    assert!(man.contains(".TH preflight"), "{man}");
    let (code, _, stderr) = crate::support::world::run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("tcsh"), "{stderr}");
}

/// What serve cannot do (a report file, a one-off discovery) is refused by name, with exit 2,
/// before anything listens.
#[test]
fn serve_refuses_what_only_a_check_does() {
    for flag in [
        &["--discover-proxy"][..],
        &["--json", "/tmp/never-written.json"],
        &["--junit", "/tmp/never-written.xml"],
    ] {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(flag);
        args.push("tcp://127.0.0.1:9");
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{flag:?}: {stderr}");
        assert!(stderr.contains(flag[0]), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}
