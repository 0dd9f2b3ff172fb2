//! The progress bar: on stderr, only when stderr is a terminal and not with --quiet; never in
//! stdout. A terminal is `script`'s pseudo-terminal.

use std::net::{SocketAddr, TcpListener};
use std::process::Command;

use crate::support::world::{preflight, run};

/// A peer that accepts and never says a word: a TLS check waits for its timeout.
fn silent_peer() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
    });
    addr
}

/// Runs preflight under a pseudo-terminal with stdout sent to a file: returns what the
/// terminal showed (stderr) and the file (stdout).
fn on_a_terminal(args: &str) -> (String, String) {
    on_a_terminal_of("", args)
}

/// As `on_a_terminal`, with `env` (`NAME=VALUE ...`) set for preflight.
fn on_a_terminal_of(env: &str, args: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let stdout = dir.path().join("stdout");
    let program = preflight().get_program().to_str().unwrap().to_string();
    let command = format!("env {env} {program} {args} > {}", stdout.display());
    let shown = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script(1) from util-linux");
    (
        String::from_utf8_lossy(&shown.stdout).into_owned(),
        std::fs::read_to_string(&stdout).unwrap(),
    )
}

#[test]
fn a_terminal_shows_checks_done_and_the_one_still_running() {
    let peer = silent_peer();
    let (terminal, stdout) =
        on_a_terminal(&format!("check --timeout 1s tls://{peer} tcp://{peer}"));
    assert!(terminal.contains("1/2 checks"), "{terminal:?}");
    assert!(
        terminal.contains(&format!("waiting on tls://{peer}")),
        "{terminal:?}"
    );
    assert!(stdout.contains("tls_timeout"), "{stdout}");
    assert!(
        !stdout.contains("checks  waiting") && !stdout.contains('\u{1b}'),
        "{stdout:?}"
    );
}

/// The bar is as wide as the terminal says (`COLUMNS` here): it fills the line and never
/// passes it, however long the name of the check it waits on.
#[test]
fn the_progress_bar_follows_the_width() {
    let peer = silent_peer();
    let long = format!("tls://localhost:{}", peer.port());
    for columns in [44_usize, 120] {
        let (terminal, _) = on_a_terminal_of(
            &format!("COLUMNS={columns}"),
            &format!("check --timeout 1s tls://{peer} {long}"),
        );
        // What each redraw left on the line: split at carriage returns, line feeds and the
        // cursor's escape sequences.
        let drawn: Vec<&str> = terminal
            .split(['\r', '\n'])
            .flat_map(|part| part.split('\u{1b}'))
            .map(|part| part.trim_start_matches(|c: char| c == '[' || c.is_ascii_digit()))
            .map(|part| part.trim_start_matches(['A', 'B', 'C', 'D', 'K']))
            .filter(|part| part.contains(" checks"))
            .collect();
        assert!(!drawn.is_empty(), "{terminal:?}");
        for line in &drawn {
            let width = line.chars().count();
            assert!(
                width <= columns && width + 2 >= columns,
                "{columns} columns: {width}: {line:?}"
            );
        }
    }
}

#[test]
fn quiet_draws_nothing_on_a_terminal() {
    let peer = silent_peer();
    let (terminal, stdout) = on_a_terminal(&format!("check --quiet --timeout 500ms tls://{peer}"));
    assert_eq!(terminal, "");
    assert!(stdout.contains("tls_timeout"), "{stdout}");
}

#[test]
fn no_progress_when_stderr_is_not_a_terminal() {
    let peer = silent_peer();
    let (code, stdout, stderr) = run(&["check", "--timeout", "500ms", &format!("tls://{peer}")]);
    assert_eq!(code, 1);
    assert_eq!(stderr, "");
    assert!(!stdout.contains("checks  waiting"), "{stdout}");
}

/// Piped to a file, `less` or a CI log, nothing is wrapped; with `COLUMNS` (or on a
/// terminal) lines fit it, and a number is never split from its unit at a wrap.
#[test]
fn output_wraps_only_for_a_width_and_never_between_a_number_and_its_unit() {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = format!("tcp://{dead}");
    let piped = preflight()
        .args(["check", "--timeout", "1s", &target])
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let piped = String::from_utf8_lossy(&piped.stdout).into_owned();
    assert!(
        piped.lines().any(|l| l.chars().count() > 80),
        "a piped report keeps its long lines whole:\n{piped}"
    );
    for columns in ["40", "52", "61"] {
        let out = preflight()
            .args(["check", "--timeout", "1s", &target])
            .env("COLUMNS", columns)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let width: usize = columns.parse().unwrap();
        // The wrapped lines: a check's detail and hint, under it.
        for line in text.lines().filter(|l| l.starts_with("   ")) {
            assert!(line.chars().count() <= width, "{columns}: {line}");
            for unit in ["ms", "s"] {
                assert!(
                    !line.trim_start().starts_with(&format!("{unit} "))
                        && line.trim_start() != unit,
                    "a unit alone at the start of a line ({columns}):\n{text}"
                );
            }
        }
    }
}

/// "What to do" groups the endpoints one cause covers; a group says "(required)" or
/// "(optional)", and holds only what its title says.
#[test]
fn a_causes_group_holds_only_what_its_title_says() {
    let dead = |_: u8| {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("mixed.toml");
    let endpoint = |key: &str, port: u16, required: bool| {
        format!(
            "[[endpoints]]\nkey = \"{key}\"\nname = \"{key}\"\nrole = \"api\"\nhost = \"127.0.0.1\"\nport = {port}\nprobe = \"tcp\"\nrequired = {required}\nnote = \"n\"\n"
        )
    };
    std::fs::write(
        &profile,
        format!(
            "name = \"mixed\"\ndescription = \"d\"\n{}{}{}",
            endpoint("need-a", dead(1), true),
            endpoint("need-b", dead(2), true),
            endpoint("nice", dead(3), false)
        ),
    )
    .unwrap();
    let out = preflight()
        .args(["check", "--timeout", "1s", "--profile"])
        .arg(&profile)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let heads: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("in the tcp phase"))
        .collect();
    assert_eq!(heads.len(), 2, "{text}");
    let required = heads.iter().find(|l| l.contains(", required:")).unwrap();
    assert!(
        required.contains("mixed.need-a")
            && required.contains("mixed.need-b")
            && !required.contains("nice"),
        "{text}"
    );
    let optional = heads.iter().find(|l| l.contains(", optional)")).unwrap();
    assert!(optional.contains("mixed.nice"), "{text}");
    // Each check is called by the name the list gives it, its id beside.
    assert!(text.contains("[FAIL] nice"), "{text}");
    assert!(optional.contains("nice (mixed.nice, optional)"), "{text}");
    assert!(required.contains("need-a (mixed.need-a)"), "{text}");
}

/// `profiles`, `profiles show`, `allowlist` and `explain` fit `COLUMNS` as the check report
/// does (a row of the allowlist becomes a block of its own when the table would not fit),
/// and keep each line whole when piped.
#[test]
fn every_subcommand_fits_the_width() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    std::fs::write(
        &log,
        "2026/11/26 10:00:01 [warn] 1297#0: *3 [clustering] connection to control plane wss://127.0.0.1:1/v1/outlet?node_id=5f2c1e0a broken: failed to connect: connection refused (retrying after 7 seconds) [127.0.0.1:1], context: ngx.timer\n",
    )
    .unwrap();
    let log = log.to_str().unwrap();
    let runs: [&[&str]; 4] = [
        &["profiles"],
        &["profiles", "show", "kong-hybrid"],
        &[
            "allowlist",
            "--timeout",
            "1s",
            "tcp://127.0.0.1:8443",
            "tls://localhost:9443",
        ],
        &["explain", "--kong-conf", "/dev/null", log],
    ];
    for args in runs {
        let out = |columns: Option<&str>| {
            let mut command = preflight();
            command.args(args).env_remove("COLUMNS");
            if let Some(columns) = columns {
                command.env("COLUMNS", columns);
            }
            let out = command.output().unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let piped = out(None);
        assert!(
            piped.lines().any(|l| l.chars().count() > 60),
            "{args:?} piped keeps its lines whole:\n{piped}"
        );
        let narrow = out(Some("60"));
        // A command to copy ("test it: ...") and a URL (a source, an endpoint's template)
        // are never cut.
        for line in narrow
            .lines()
            .filter(|l| !l.contains("test it:") && !l.contains("://"))
        {
            assert!(line.chars().count() <= 60, "{args:?}: {line:?}\n{narrow}");
        }
    }
}
