//! Files the user or a kong.conf names, round three (issue 25): no path can hang a run (a FIFO
//! with no writer anywhere a file is read, a list of 2,000 devices), every signal ends a run
//! within a second whatever it is waiting on, a file that cannot be read says why, and inputs of
//! real size (a log over 16 MiB with bytes that are not UTF-8, a report over 16 MiB) are read.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::world::{World, preflight, run, split};

/// The most a run that must not hang may take here.
const LIMIT: Duration = Duration::from_secs(15);

/// A FIFO that nobody writes, in `dir`.
fn fifo(dir: &Path) -> PathBuf {
    let path = dir.join("fifo.pem");
    let made = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    path
}

/// Runs `command` to its end or for `LIMIT` (then kills it): exit code, stdout, stderr and
/// whether it ended by itself. Its output is read as it comes, so a large report cannot block.
fn bounded(mut command: Command) -> (i32, String, String, bool) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let (ended, out) = match outcome.recv_timeout(LIMIT) {
        Ok(out) => (true, out),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            (false, outcome.recv().unwrap())
        }
    };
    let (code, stdout, stderr) = split(out.unwrap());
    (code, stdout, stderr, ended)
}

/// A pki-mode data plane kong.conf in `dir` whose control plane is a closed loopback port,
/// with `extra` lines; its path.
fn kong_conf(world: &World, extra: &str) -> PathBuf {
    let (crt, key) = crate::support::konnect::cluster_cert(world);
    let text = format!(
        "role = data_plane\n\
         database = off\n\
         cluster_mtls = pki\n\
         cluster_control_plane = 127.0.0.1:1\n\
         cluster_telemetry_endpoint = 127.0.0.1:1\n\
         cluster_cert = {crt}\n\
         cluster_cert_key = {key}\n\
         {extra}\n"
    );
    let path = world.dir.path().join("kong.conf");
    std::fs::write(&path, text).unwrap();
    path
}

/// `check --format json --timeout 1s --kong-conf CONF`.
fn conf_check(conf: &Path) -> Command {
    let mut command = preflight();
    command
        .args([
            "check",
            "--format",
            "json",
            "--timeout",
            "1s",
            "--kong-conf",
        ])
        .arg(conf);
    command
}

#[test]
fn a_fifo_with_no_writer_is_refused_at_once_wherever_it_is_named() {
    let world = World::new();
    let fifo = fifo(world.dir.path());
    let f = fifo.to_str().unwrap();
    let ca = world.ca_file();
    // Flags: the run stops before anything is probed, saying what the path is.
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tls://{}", listen.local_addr().unwrap());
    for args in [
        vec!["check", "--ca-file", f, &target],
        vec!["check", "--client-cert", f, "--client-key", ca, &target],
        vec!["check", "--client-cert", ca, "--client-key", f, &target],
        vec!["check", "--kong-conf", f],
        vec!["check", "--profile", f],
        vec!["serve", "--listen", "127.0.0.1:0", "--ca-file", f, &target],
        vec!["explain", f],
        vec!["merge", f],
    ] {
        let mut command = preflight();
        command.args(&args);
        let (code, _, stderr, ended) = bounded(command);
        assert!(ended, "{args:?} hung");
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("named pipe (FIFO), not a regular file") && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
    // A kong.conf naming it, in the file or in a KONG_ variable: the file's check says so.
    for (extra, env) in [
        (format!("cluster_ca_cert = {f}"), None),
        (format!("lua_ssl_trusted_certificate = {f}"), None),
        (String::new(), Some(("KONG_CLUSTER_CA_CERT", f))),
    ] {
        let mut command = conf_check(&kong_conf(&world, &extra));
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let (_, stdout, stderr, ended) = bounded(command);
        assert!(ended, "{extra} {env:?} hung");
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
        let unreadable: Vec<&Value> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["error"]["kind"] == "file_unreadable")
            .collect();
        assert_eq!(unreadable.len(), 1, "{report:#}");
        let message = unreadable[0]["error"]["message"].as_str().unwrap();
        assert!(message.contains("named pipe (FIFO)"), "{message}");
    }
}

#[test]
fn a_signal_ends_a_run_within_a_second_while_it_waits_on_standard_input() {
    for (signal, name) in [("TERM", "SIGTERM"), ("INT", "Ctrl-C"), ("HUP", "SIGHUP")] {
        // A writer that holds the pipe open and never writes: the targets never come.
        let mut child = preflight()
            .args(["check", "--targets-file", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Ready when its handlers are in place; it then waits on the pipe.
        let pid = child.id();
        crate::support::wait_until("the handlers", Duration::from_secs(10), || {
            crate::support::catches(pid, 15)
        });
        let sent = Instant::now();
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        while child.try_wait().unwrap().is_none() && sent.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = sent.elapsed();
        let _ = child.kill();
        let (code, _, stderr) = split(child.wait_with_output().unwrap());
        assert!(
            took < Duration::from_secs(2),
            "{name}: still running after {took:?}"
        );
        assert_eq!(code, 1, "{name}: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!("preflight: stopped by {name} before any check ran; nothing was probed")
        );
    }
}

#[test]
fn hangup_ends_a_check_with_its_report_as_sigterm_does() {
    let (code, stdout, stderr, _) =
        crate::support::signalled_while_waiting(&["--format", "json", "--timeout", "20s"], "-HUP");
    assert_eq!(code, 1, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(report["interrupted"], true, "{report:#}");
}

#[test]
fn a_file_that_cannot_be_read_says_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tls://{}", listen.local_addr().unwrap());
    let why = |path: &Path| {
        let (code, _, stderr) = run(&["check", "--ca-file", path.to_str().unwrap(), &target]);
        assert_eq!(code, 2, "{stderr}");
        stderr
    };
    // A loop of links is not a missing file.
    let a = dir.path().join("a.pem");
    std::os::unix::fs::symlink(dir.path().join("b.pem"), &a).unwrap();
    std::os::unix::fs::symlink(&a, dir.path().join("b.pem")).unwrap();
    assert!(why(&a).contains("a loop of symbolic links"), "{}", why(&a));
    assert!(why(dir.path()).contains("is a directory"));
    let gone = dir.path().join("gone/ca.pem");
    assert!(why(&gone).contains("does not exist (nor does its directory"));

    // A file in a directory only root may enter, read as the user nobody: denied, not missing.
    let as_nobody = Command::new("runuser")
        .args(["-u", "nobody", "--", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !as_nobody {
        crate::support::skip("the permission case needs root and runuser");
        return;
    }
    let closed = dir.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::write(closed.join("ca.pem"), "x").unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret = dir.path().join("secret.pem");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let program = env!("CARGO_BIN_EXE_preflight");
    for (path, expected) in [
        (
            closed.join("ca.pem"),
            format!(
                "permission denied: user nobody (uid 65534) may not enter the directory {}",
                closed.display()
            ),
        ),
        (
            secret.clone(),
            "permission denied: user nobody (uid 65534) may not read it".to_string(),
        ),
    ] {
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--", program, "check", "--ca-file"])
            .arg(&path)
            .arg(&target)
            .output()
            .unwrap();
        let (code, _, stderr) = split(out);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(!stderr.contains("does not exist"), "{stderr}");
    }
    // A kong.conf's cluster_ca_cert the user may not reach is said so, not read as PEM text.
    let world = World::new();
    std::fs::set_permissions(world.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = kong_conf(&world, &format!("cluster_ca_cert = {}", secret.display()));
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", program, "check", "--format", "json"])
        .args(["--timeout", "1s", "--only", "local", "--kong-conf"])
        .arg(&conf)
        .output()
        .unwrap();
    let (_, stdout, stderr) = split(out);
    assert!(
        stdout.contains("may not read it") && !stdout.contains("does not exist"),
        "{stdout}{stderr}"
    );
}

#[test]
fn a_trust_list_of_two_thousand_devices_costs_seconds_not_a_minute() {
    let world = World::new();
    let many = vec!["/dev/zero"; 2000].join(",");
    let conf = kong_conf(
        &world,
        &format!("lua_ssl_trusted_certificate = system,{many}"),
    );
    let command = conf_check(&conf);
    let started = Instant::now();
    let (_, stdout, stderr, ended) = bounded(command);
    assert!(
        ended && started.elapsed() < Duration::from_secs(10),
        "{stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    let checks = report["checks"].as_array().unwrap();
    let limit = checks
        .iter()
        .find(|c| c["id"] == "kong.conf.trusted-certificate-limit")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(limit["status"], "warn");
    assert!(
        limit["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read the first 64 files and not the other 1936"),
        "{limit:#}"
    );
    // A value of 15 MB in an error line is cut to a readable length.
    let huge = format!("cluster_mtls = {}", "x".repeat(15 * 1024 * 1024));
    let path = world.dir.path().join("huge.conf");
    std::fs::write(&path, format!("role = data_plane\n{huge}\n")).unwrap();
    let (code, _, stderr) = run(&["check", "--kong-conf", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{}", &stderr[..stderr.len().min(500)]);
    assert!(stderr.len() < 1000, "{} bytes", stderr.len());
    assert!(stderr.contains("more characters"), "{stderr}");
}

#[test]
fn explain_reads_a_log_of_any_size_and_any_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    let noise = "2026/12/04 10:00:00 [info] 1#0: *1 client closed connection while waiting for request, client: 10.0.0.1\n";
    // 17 MiB of noise (past the old 16 MiB limit), a line with a byte that is not UTF-8, a 100 KB line, and the error.
    for _ in 0..(17 * 1024 * 1024 / noise.len()) {
        file.write_all(noise.as_bytes()).unwrap();
    }
    file.write_all(b"2026/12/04 10:00:01 [warn] 1#0: caf\xe9 ol\xe9\n")
        .unwrap();
    file.write_all(&[b'y'; 100_000]).unwrap();
    file.write_all(b"\n").unwrap();
    file.write_all(b"2026/12/04 10:00:02 [warn] 1#0: *9 [clustering] connection to control plane wss://cp.example.com:443/v1/outlet broken: failed to connect: connection refused (retrying after 5 seconds) [cp.example.com:443], context: ngx.timer\n").unwrap();
    drop(file);
    let (code, stdout, stderr) = run(&["explain", "--format", "json", log.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let found: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(found["errors"][0]["kind"], "refused", "{found:#}");
    assert_eq!(found["not_utf8_lines"], 1);
    assert_eq!(found["long_lines"], 1);
    let (_, human, _) = run(&["explain", log.to_str().unwrap()]);
    assert!(
        human.contains("1 lines held bytes that are not UTF-8"),
        "{human}"
    );
    // Standard input, too.
    let out = preflight()
        .args(["explain", "-"])
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    let (code, human, stderr) = split(out);
    assert_eq!(code, 0, "{stderr}");
    assert!(human.contains("connection refused"), "{human}");
}

#[test]
fn merge_reads_a_report_larger_than_any_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    // 12,000 failed checks with long words: over 17 MiB, more than the old limit allowed.
    let check = |i: usize| {
        json!({
            "id": format!("tcp://10.1.{}.{}:443", i / 250, i % 250),
            "name": "TCP connect",
            "target": format!("tcp://10.1.{}.{}:443", i / 250, i % 250),
            "required": true,
            "status": "fail",
            "error": json!({"kind": "timeout", "message": "x".repeat(1000), "hint": "y".repeat(500)}),
            "timings_ms": {"dns": 0.1, "tcp": 0.2, "total": 0.3},
        })
    };
    let checks: Vec<Value> = (0..12_000).map(check).collect();
    let report = json!({
        "schema_version": 1, "started_at": "2026-12-04T10:00:00Z", "node": "big", "checks": checks
    });
    let path = dir.path().join("big.json");
    std::fs::write(&path, report.to_string()).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 17 * 1024 * 1024);
    let (code, stdout, stderr) = run(&["merge", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let fleet: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(fleet["endpoints"].as_array().unwrap().len(), 12_000);
}

#[test]
fn a_list_that_cannot_be_written_follows_on_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("a.json");
    std::fs::write(
        &report,
        json!({"schema_version": 1, "started_at": "t", "node": "a", "checks": []}).to_string(),
    )
    .unwrap();
    for args in [
        vec![
            "allowlist",
            "--no-resolve",
            "-o",
            "/dev/full",
            "tcp://cp.example.com:443",
        ],
        vec!["merge", "-o", "/dev/full", report.to_str().unwrap()],
    ] {
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("it follows on standard output"), "{stderr}");
        assert!(!stdout.is_empty(), "{args:?}");
    }
}
