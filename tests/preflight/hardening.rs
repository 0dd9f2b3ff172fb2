//! Safe to run as root: report files that never replace a device or follow a planted link,
//! honest exits (early signals, closed pipes, interrupted watches), and limits on what an
//! input or a low process limit can make the tool do. The device and link cases run in
//! private mount namespaces with a /dev of their own, never against the host's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::world::{World, check, check_json, preflight, run, split};

const BIN: &str = env!("CARGO_BIN_EXE_preflight");

/// A listening port on loopback and its `tcp://` target: a check of it is ok while the
/// listener lives.
fn open_port() -> (TcpListener, String) {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", open.local_addr().unwrap());
    (open, target)
}

/// Whether this machine lets a test make private mount namespaces (root and unshare).
fn mounts_ready(what: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        crate::support::skip(&format!(
            "{what} needs root and unshare for a private mount namespace"
        ));
    }
    ok
}

/// Runs `script` with `sh` in a private mount namespace whose /dev is a fresh tmpfs holding
/// only null, full and stdout (a link to the descriptor, as on a real system). `$P` is the
/// binary.
fn with_own_dev(script: &str) -> (i32, String, String) {
    let setup = "mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 && \
                 mknod -m 666 /dev/full c 1 7 && ln -s /proc/self/fd/1 /dev/stdout && ";
    split(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{setup}{script}"))
            .env("P", BIN)
            .output()
            .unwrap(),
    )
}

#[test]
fn output_to_a_device_writes_into_it_and_leaves_it_a_device() {
    if !mounts_ready("the /dev output test") {
        return;
    }
    let (_open, target) = open_port();
    let (code, stdout, stderr) = with_own_dev(&format!(
        r#"
        "$P" check -q -o /dev/null {target} >/dev/null; echo "null: $? $(stat -c %F /dev/null)"
        "$P" check -q --allowlist-failed /dev/null {target} >/dev/null; echo "list: $? $(stat -c %F /dev/null)"
        "$P" check -q --format json -o /dev/stdout {target} > /tmp/preflight-devtest.out
        echo "stdout: $? $(stat -c %F /dev/stdout) $(head -c 1 /tmp/preflight-devtest.out)"
        rm -f /tmp/preflight-devtest.out
        "#
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("null: 0 character special file"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("list: 0 character special file"),
        "{stdout}{stderr}"
    );
    // The JSON went through the link to the descriptor, and the link is still a link.
    assert!(
        stdout.contains("stdout: 0 symbolic link {"),
        "{stdout}{stderr}"
    );
}

#[test]
fn a_report_that_cannot_be_written_at_the_end_is_printed_instead() {
    if !mounts_ready("the /dev/full output test") {
        return;
    }
    let (_open, target) = open_port();
    let (code, stdout, stderr) = with_own_dev(&format!(
        r#""$P" check -q --format json -o /dev/full {target}; echo "code: $? $(stat -c %F /dev/full)""#
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("code: 2 character special file"),
        "{stdout}{stderr}"
    );
    // The JSON report reached stdout, and stderr says why in one line.
    let json = &stdout[stdout.find('{').unwrap()..stdout.rfind('}').unwrap() + 1];
    let report: Value = serde_json::from_str(json).unwrap();
    assert_eq!(report["summary"]["ok"], 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/dev/full") && stderr.contains("standard output"),
        "{stderr}"
    );
}

#[test]
fn an_unwritable_destination_is_refused_before_anything_is_probed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = format!("tcp://{}", listener.local_addr().unwrap());
    // /proc takes no new files, even from root.
    for flag in ["-o", "--allowlist-failed"] {
        let (code, stdout, stderr) = run(&["check", flag, "/proc/preflight-report.json", &target]);
        assert_eq!(code, 2, "{stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("cannot be written"), "{stderr}");
    }
    let (code, _, stderr) = run(&["check", "-o", "/", &target]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is a directory"), "{stderr}");
    // Nothing connected.
    assert_eq!(
        listener.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock)
    );
}

#[test]
fn a_replaced_report_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_open, target) = open_port();
    let (code, _, stderr) = run(&["check", "-q", "-o", path.to_str().unwrap(), &target]);
    assert_eq!(code, 0, "{stderr}");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&path).unwrap().contains("1 ok"));
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A shared sticky directory (as /tmp) with a victim file beside it that only root may write.
struct SharedDir {
    _root: tempfile::TempDir,
    shared: std::path::PathBuf,
    victim: std::path::PathBuf,
}

/// `None` (having said why) where the test cannot act as a second user.
fn shared_dir(what: &str) -> Option<SharedDir> {
    let as_nobody = Command::new("runuser")
        .args(["-u", "nobody", "--", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !as_nobody {
        crate::support::skip(&format!(
            "{what} needs root and runuser to act as the user nobody"
        ));
        return None;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = root.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    Some(SharedDir {
        _root: root,
        shared,
        victim,
    })
}

#[test]
fn a_link_another_user_planted_in_a_shared_directory_is_not_followed() {
    let Some(dir) = shared_dir("the planted-link test") else {
        return;
    };
    let report = dir.shared.join("report.json");
    let planted = Command::new("runuser")
        .args(["-u", "nobody", "--", "ln", "-s"])
        .arg(&dir.victim)
        .arg(&report)
        .status()
        .unwrap();
    assert!(planted.success());
    let (_open, target) = open_port();
    let (code, stdout, stderr) = run(&["check", "-o", report.to_str().unwrap(), &target]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("owned by another user"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&dir.victim).unwrap(), "precious\n");
}

#[test]
fn the_temporary_file_cannot_be_planted() {
    let Some(dir) = shared_dir("the temporary-file race test") else {
        return;
    };
    let report = dir.shared.join("report.json");
    let (_open, target) = open_port();
    // Another user plants a link at the name the temporary file would have if it were
    // predictable (the process ID is the shell's, kept across exec), then root runs preflight.
    let script = r#"runuser -u nobody -- ln -s "$VICTIM" "$DIR/.report.json.$$.tmp" && exec "$P" check -q -o "$DIR/report.json" "$T""#;
    let (code, stdout, stderr) = split(
        Command::new("sh")
            .args(["-c", script])
            .env("P", BIN)
            .env("VICTIM", &dir.victim)
            .env("DIR", &dir.shared)
            .env("T", &target)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(std::fs::read_to_string(&dir.victim).unwrap(), "precious\n");
    assert!(std::fs::read_to_string(&report).unwrap().contains("1 ok"));
}

#[test]
fn a_signal_before_the_run_starts_still_ends_in_a_report() {
    // The targets come from a standard input the test holds open, so the signal is sure to
    // arrive while the input is being read, before any check starts.
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}\n", open.local_addr().unwrap());
    for signal in ["-INT", "-TERM"] {
        let mut child = preflight()
            .args(["check", "--format", "json", "--targets-file", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The point is the window before the run, not exec: wait (at most 10 s) until the
        // process has started, which shows as its handlers in /proc (none while it reads its
        // input, before the fix).
        catching_signals(child.id());
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        // Before the fix the signal kills the process at once; with it, the signal is noted
        // while the input is still awaited (the runtime takes it in well within this).
        std::thread::sleep(Duration::from_millis(200));
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(target.as_bytes());
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let (code, stdout, stderr) = split(out);
        assert_eq!(code, 1, "{signal}: {stdout}{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["interrupted"], true, "{signal}");
    }
}

/// Waits up to 10 s until process `pid` catches SIGINT and SIGTERM (its SigCgt mask).
fn catching_signals(pid: u32) {
    let wanted = (1u64 << (2 - 1)) | (1u64 << (15 - 1));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        if caught & wanted == wanted {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_closed_stdout_keeps_the_verdict() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut child = preflight()
        .args(["check", &target])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away at once, as `| true` does.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn a_watch_stopped_in_its_first_round_exits_as_check_would() {
    let (code, stdout, stderr, _) = crate::support::signalled_while_waiting(
        &["--watch", "10s", "--format", "json", "--timeout", "5s"],
        "-INT",
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["checks"][0]["error"]["kind"], "deadline");
}

#[test]
fn a_targets_file_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("targets");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let mut child = preflight()
        .args(["check", "--targets-file"])
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let (code, _, stderr) = split(child.wait_with_output().unwrap());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("named pipe (FIFO), not a regular file"),
        "{stderr}"
    );
}

#[test]
fn an_oversized_udp_payload_is_refused_before_probing() {
    let payload = "x".repeat(65_508);
    let (code, stdout, stderr) = run(&["check", "--udp-payload", &payload, "udp://127.0.0.1:9"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("at most 65,507 bytes"), "{stderr}");
    assert!(stderr.len() < 200, "the payload is not echoed: {stderr}");
    let payload = "x".repeat(65_507);
    let (code, _, stderr) = run(&[
        "check",
        "-q",
        "--udp-payload",
        &payload,
        "udp://127.0.0.1:9",
    ]);
    assert_ne!(code, 2, "{stderr}");
}

#[test]
fn too_low_process_limits_are_one_line_and_exit_2() {
    // Eight descriptors: too few for the runtime and its signal handling.
    let (code, stdout, stderr) = split(
        Command::new("sh")
            .args([
                "-c",
                r#"ulimit -n 8 && exec "$0" check tcp://127.0.0.1:9"#,
                BIN,
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("ulimit -n"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // One process for the user: no worker thread can start. Root is exempt, so as nobody.
    let nproc = Command::new("runuser")
        .args(["-u", "nobody", "--", "prlimit", "--nproc=1", BIN, "check"])
        .arg("tcp://127.0.0.1:9")
        .output();
    match nproc {
        Ok(out) if !out.stderr.starts_with(b"runuser") => {
            let (code, stdout, stderr) = split(out);
            assert_eq!(code, 2, "{stdout}{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("thread"), "{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
        _ => crate::support::skip("the thread-limit case needs root, runuser and prlimit"),
    }
}

#[test]
fn a_profile_is_bounded_by_its_size_and_what_it_declares() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = |i: usize| {
        format!(
            "[[endpoints]]\nkey = \"e{i}\"\nname = \"E\"\nrole = \"target\"\nhost = \"h{i}.example\"\nport = 443\nprobe = \"tcp\"\nnote = \"n\"\n"
        )
    };
    let head = "name = \"big\"\ndescription = \"d\"\n";
    // Many endpoints in few bytes.
    let many: String = (0..2_001).map(endpoint).collect();
    let path = dir.path().join("many.toml");
    std::fs::write(&path, format!("{head}{many}")).unwrap();
    // And a file of 15 MB, which the TOML parser alone would turn into a gigabyte.
    let huge = dir.path().join("huge.toml");
    let filler = format!("# {}\n", "x".repeat(1000)).repeat(15_000);
    std::fs::write(&huge, format!("{head}{filler}{}", endpoint(0))).unwrap();
    for (path, says) in [(&path, "2001 endpoints"), (&huge, "larger than 1 MiB")] {
        let (code, stdout, stderr) = split(
            Command::new("sh")
                .args(["-c", r#"ulimit -v 1048576 && exec "$0" "$@""#, BIN])
                .args(["check", "--profile", path.to_str().unwrap()])
                .output()
                .unwrap(),
        );
        assert_eq!(code, 2, "{stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[test]
fn low_open_file_limit_still_runs_checks_side_by_side_and_says_so() {
    if !crate::support::world::namespace_ready("the low open-file limit test", &["nft", "ip"]) {
        return;
    }
    let rules = "table inet preflight_test {\n chain input {\n type filter hook input priority 0; policy accept;\n tcp dport 4001 drop\n }\n}\n";
    // More checks than 64 descriptors allow at once.
    let targets: Vec<String> = (1..=30)
        .map(|i| format!("tcp://127.0.0.{i}:4001"))
        .collect();
    let out = crate::support::world::in_namespace(rules, Path::new("/bin/sh"))
        .args(["-c", r#"ulimit -n 64 && exec "$0" "$@""#, BIN])
        // No hop traces: this is about the checks themselves taking turns.
        .args(["check", "--format", "json", "--timeout", "1s", "--no-trace"])
        .args(&targets)
        .output()
        .unwrap();
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 1, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    for target in &targets {
        assert_eq!(check(&report, target)["error"]["kind"], "timeout");
    }
    // Thirty 1-second timeouts in two or three turns, not one after another (30 s).
    let took = report["duration_ms"].as_f64().unwrap();
    assert!(took < 8_000.0, "took {took} ms");
    // 64 descriptors hold fewer than the default 512 connections: said on stderr and in the
    // notes, with the number chosen.
    assert!(stderr.contains("ulimit -n 64"), "{stderr}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("ulimit -n 64"), "{notes}");
}

#[test]
fn a_name_with_thousands_of_addresses_costs_at_most_sixteen_attempts_per_family() {
    let world = World::new();
    // 2,000 loopback addresses with nothing listening (each attempt is refused at once); the
    // answer is too large for UDP, so it comes over TCP.
    let names: Vec<(String, IpAddr)> = (0..2_000u32)
        .map(|i| {
            let ip = std::net::Ipv4Addr::from(u32::from_be_bytes([127, 77, 0, 1]) + i);
            ("many.test".to_string(), IpAddr::V4(ip))
        })
        .collect();
    let records: Vec<(&str, IpAddr)> = names.iter().map(|(n, ip)| (n.as_str(), *ip)).collect();
    let dns = world.dns(&["test"], &records, &[], &[]);
    let (code, report) = check_json(&["--dns-server", &dns.to_string(), "-4", "tcp://many.test:9"]);
    assert_eq!(code, 1);
    let c = check(&report, "tcp://many.test:9");
    assert_eq!(c["addresses"].as_array().unwrap().len(), 16, "{c:#}");
    assert_eq!(c["addresses_not_tried"], 1_984);
    let (_, stdout, _) = run(&[
        "check",
        "--dns-server",
        &dns.to_string(),
        "-4",
        "tcp://many.test:9",
    ]);
    assert!(
        stdout.contains("1984 more addresses of the name not tried"),
        "{stdout}"
    );
}

/// Starts `preflight listen --bind 127.0.0.1 ARGS`; returns it, the port it took, and its log
/// (kept open, and read no further).
fn responder(
    args: &[&str],
) -> (
    std::process::Child,
    String,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = preflight()
        .args(["listen", "--bind", "127.0.0.1"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    log.read_line(&mut first).unwrap();
    let port = first.trim().rsplit(':').next().unwrap().to_string();
    (child, port, log)
}

#[test]
fn the_responder_keeps_answering_when_its_log_is_not_read_and_stops_on_sigterm() {
    let (mut child, port, _log) = responder(&["--tcp", "0"]);
    // The log is never read again: the pipe fills after about 900 lines.
    for i in 0..2_000 {
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .unwrap_or_else(|e| panic!("peer {i} got no answer: {e}"));
        assert!(
            answer.starts_with("preflight listen:"),
            "peer {i}: {answer}"
        );
    }
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    while child.try_wait().unwrap().is_none() && stopped.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    assert!(exited.is_some(), "still running 5 s after SIGTERM");
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "{:?}",
        stopped.elapsed()
    );
}

#[test]
fn the_responder_answers_a_flood_from_one_source_only_a_few_times() {
    let (mut child, port, _log) = responder(&["--udp", "0", "--for", "20s"]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(format!("127.0.0.1:{port}")).unwrap();
    for _ in 0..100 {
        socket.send(b"x").unwrap();
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut answers = 0;
    let mut buf = [0u8; 512];
    while socket.recv(&mut buf).is_ok() {
        answers += 1;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        (1..=12).contains(&answers),
        "{answers} answers to 100 datagrams"
    );
}

#[test]
fn small_input_mistakes_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // A value with a newline (through the environment) stays on one line.
    let conf = dir.path().join("kong.conf");
    std::fs::write(&conf, "role = data_plane\n").unwrap();
    let (code, _, stderr) = split(
        preflight()
            .args(["check", "--kong-conf", conf.to_str().unwrap()])
            .env("KONG_CLUSTER_CONTROL_PLANE", "cp.example:443\nforged line")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // An escape sequence in a target is shown, not played.
    let (code, _, stderr) = run(&["check", "tcp://evil\x1b]0;owned\x07host:99999"]);
    assert_eq!(code, 2);
    assert!(
        !stderr.contains('\x1b') && stderr.contains("\\x1b"),
        "{stderr}"
    );
    // A byte-order mark is accepted in every file preflight reads.
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let targets = dir.path().join("targets.txt");
    std::fs::write(
        &targets,
        format!("\u{feff}tcp://{}\n", open.local_addr().unwrap()),
    )
    .unwrap();
    let (code, _, stderr) = run(&["check", "-q", "--targets-file", targets.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let conf = dir.path().join("bom.conf");
    std::fs::write(
        &conf,
        format!(
            "\u{feff}role = data_plane\ncluster_control_plane = {}\ncluster_mtls = pki\n",
            open.local_addr().unwrap()
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["check", "--kong-conf", conf.to_str().unwrap()]);
    assert_ne!(code, 2, "{stdout}{stderr}");
    // The same port twice is a mistake on the command line, not a port in use.
    let (code, _, stderr) = run(&["listen", "--tcp", "7001", "--tcp", "7001", "--for", "1s"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--tcp 7001: is given twice"), "{stderr}");
}
