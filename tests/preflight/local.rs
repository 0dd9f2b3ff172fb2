//! On the node: local port checks (`bind://`) and UDP, each against sockets the test holds.

use std::net::{TcpListener, UdpSocket};
use std::process::Command;

use crate::support::world::{check, check_json, kind, namespace_ready, split};

/// A port of 127.0.0.1 that was free a moment ago.
fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn bind_reports_a_free_port_ok_and_a_held_one_with_its_holder() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    let free_port = free_tcp_port();
    let held_target = format!("bind://127.0.0.1:{held_port}");
    let free_target = format!("bind://127.0.0.1:{free_port}");
    // The wildcard address conflicts with a listener on any address.
    let wildcard_target = format!("bind://0.0.0.0:{held_port}");
    let (code, report) = check_json(&[&held_target, &free_target, &wildcard_target]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(check(&report, &free_target)["status"], "ok");
    for target in [&held_target, &wildcard_target] {
        let c = check(&report, target);
        assert_eq!(c["status"], "fail");
        assert_eq!(kind(&report, target), "port_in_use");
        assert_eq!(c["error"]["phase"], "bind");
        let message = c["error"]["message"].as_str().unwrap();
        // The holder is this test process.
        assert!(
            message.contains(&format!("by pid {} (", std::process::id())),
            "{message}"
        );
    }
    // Nothing stays bound: the free port can be taken right after the check.
    TcpListener::bind(("127.0.0.1", free_port)).expect("the checked port is free again");
    drop(held);
}

#[test]
fn bind_of_a_privileged_port_without_the_right_is_denied() {
    if !namespace_ready("the bind_denied test", &["setpriv", "sysctl"]) {
        return;
    }
    // In a namespace of its own, so that the sysctl and port 80 are the test's.
    let out = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "sysctl -qw net.ipv4.ip_unprivileged_port_start=1024 && ip link set lo up && \
             exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$0\" check --format json bind://127.0.0.1:80",
            env!("CARGO_BIN_EXE_preflight"),
        ])
        .output()
        .unwrap();
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(kind(&report, "bind://127.0.0.1:80"), "bind_denied");
    let hint = check(&report, "bind://127.0.0.1:80")["error"]["hint"]
        .as_str()
        .unwrap();
    assert!(hint.contains("CAP_NET_BIND_SERVICE"), "{hint}");
}

#[test]
fn udp_tells_a_reply_from_an_icmp_unreachable_from_silence() {
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], from);
        }
    });
    // Bound and never read: datagrams are queued, nothing answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let closed_port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let reply = format!("udp://127.0.0.1:{echo_port}");
    let quiet = format!("udp://127.0.0.1:{silent_port}");
    let closed = format!("udp://127.0.0.1:{closed_port}");
    let (code, report) = check_json(&["--timeout", "1s", &reply, &quiet, &closed]);
    assert_eq!(code, 1, "{report:#}");
    let c = check(&report, &reply);
    assert_eq!(c["status"], "ok", "{c:#}");
    assert!(c["timings_ms"]["connect"].as_f64().is_some(), "{c:#}");
    assert_eq!(check(&report, &closed)["status"], "fail");
    assert_eq!(kind(&report, &closed), "udp_refused");
    let c = check(&report, &quiet);
    assert_eq!(c["status"], "warn", "{c:#}");
    assert_eq!(kind(&report, &quiet), "udp_no_reply");
    assert!(
        c["error"]["message"]
            .as_str()
            .unwrap()
            .contains("open or filtered"),
        "{c:#}"
    );
    // Silence alone does not fail the run, unless warnings are failures.
    let (code, _) = check_json(&["--timeout", "500ms", &quiet]);
    assert_eq!(code, 0);
    let (code, _) = check_json(&["--timeout", "500ms", "--strict", &quiet]);
    assert_eq!(code, 1);
    drop(silent);
}

#[test]
fn udp_payload_is_what_the_peer_receives() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = peer.local_addr().unwrap().port();
    let got = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        peer.send_to(b"pong", from).unwrap();
        buf[..n].to_vec()
    });
    let target = format!("udp://127.0.0.1:{port}");
    let (code, report) = check_json(&["--udp-payload", "ping", &target]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(got.join().unwrap(), b"ping");
}

/// A running `preflight` whose stdout is read line by line, killed when dropped.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = crate::support::world::preflight()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Default::default(),
        }
    }

    /// The first line, printed so far or within 10 s, containing `needle`.
    fn wait_for(&self, needle: &str) -> String {
        self.wait_until(needle, |l| l.contains(needle))
    }

    /// The first line, printed so far or within 10 s, that `wanted` accepts.
    fn wait_until(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(line) = self.seen.borrow().iter().find(|l| wanted(l)) {
                return line.clone();
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.borrow_mut().push(line),
                Err(e) => panic!("no line with `{what}` in {:?}: {e}", self.seen),
            }
        }
    }

    /// The port of the `listening on TRANSPORT ADDR:PORT` line.
    fn port(&self, transport: &str) -> u16 {
        let line = self.wait_for(&format!("listening on {transport} "));
        line.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn listen_is_reported_ok_by_check_and_logs_each_peer() {
    let listener = Running::start(&["listen", "--tcp", "0", "--udp", "0", "--bind", "127.0.0.1"]);
    let tcp = listener.port("tcp");
    let udp = listener.port("udp");
    let tcp_target = format!("tcp://127.0.0.1:{tcp}");
    let udp_target = format!("udp://127.0.0.1:{udp}");
    let (code, report) = check_json(&[&tcp_target, &udp_target]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(check(&report, &tcp_target)["status"], "ok");
    // A reply, not mere silence: the responder answers datagrams.
    assert_eq!(check(&report, &udp_target)["status"], "ok", "{report:#}");
    listener.wait_for(&format!("tcp 127.0.0.1:{tcp} reached from 127.0.0.1:"));
    listener.wait_for(&format!("udp 127.0.0.1:{udp} reached from 127.0.0.1:"));
    // The TCP answer names the host and the port reached.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(
        answer.starts_with("preflight listen: ")
            && answer.ends_with(&format!(" tcp 127.0.0.1:{tcp}\n")),
        "{answer:?}"
    );
}

#[test]
fn listen_refuses_a_port_in_use_and_stops_when_for_runs_out() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let out = crate::support::world::preflight()
        .args(["listen", "--bind", "127.0.0.1", "--tcp", &port])
        .output()
        .unwrap();
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--tcp {port}: 127.0.0.1:{port} is already in use by pid {}",
            std::process::id()
        )),
        "{stderr}"
    );
    let start = std::time::Instant::now();
    let out = crate::support::world::preflight()
        .args([
            "listen",
            "--bind",
            "127.0.0.1",
            "--tcp",
            "0",
            "--for",
            "300ms",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    drop(held);
}

/// Whether `line` starts with an RFC 3339 UTC time to the second.
fn stamped(line: &str) -> bool {
    let at = line.split_whitespace().next().unwrap_or_default();
    at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T'
}

#[test]
fn watch_reports_a_server_going_down_and_coming_back_then_a_summary() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let target = format!("tcp://{addr}");
    let watch = Running::start(&["check", &target, "--watch", "200ms", "--timeout", "1s"]);
    let first = watch.wait_for("round 1:");
    assert!(first.ends_with("round 1: 1 up, 0 down"), "{first}");
    drop(server);
    let down = watch.wait_for("  DOWN  ");
    assert!(stamped(&down), "{down}");
    assert!(
        down.contains(&format!("DOWN  {target}  refused: ")),
        "{down}"
    );
    // The same port again (the standard library sets SO_REUSEADDR).
    let server = TcpListener::bind(addr).unwrap();
    let up = watch.wait_for("  UP    ");
    assert!(stamped(&up), "{up}");
    assert!(up.contains(&format!("UP    {target}  after ")), "{up}");
    // Ctrl-C ends the watch with the summary.
    let status = Command::new("kill")
        .args(["-INT", &watch.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let row = format!("  {target} ");
    let summary = watch.wait_until(&row, |l| l.starts_with(&row));
    let fields: Vec<&str> = summary.split_whitespace().collect();
    // endpoint, ok/rounds, failures, flaps, longest outage, last error…
    let (ok, rounds) = fields[1].split_once('/').unwrap();
    let (ok, rounds): (u32, u32) = (ok.parse().unwrap(), rounds.parse().unwrap());
    let failures: u32 = fields[2].parse().unwrap();
    assert!(
        failures >= 1 && ok >= 2 && ok + failures == rounds,
        "{summary}"
    );
    assert_eq!(fields[3], "1", "one flap: {summary}");
    assert!(fields[4].ends_with('s'), "{summary}");
    assert_eq!(fields[5], "refused:", "{summary}");
    let mut watch = watch;
    let code = watch.child.wait().unwrap().code();
    // A required endpoint failed in some round.
    assert_eq!(code, Some(1));
    drop(server);
}

#[test]
fn watch_in_json_is_one_line_per_round_and_a_summary_line() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", server.local_addr().unwrap());
    let out = crate::support::world::preflight()
        .args([
            "check", &target, "--watch", "100ms", "--count", "3", "--format", "json",
        ])
        .output()
        .unwrap();
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for (i, line) in lines[..3].iter().enumerate() {
        assert_eq!(line["round"], i as u64 + 1);
        assert_eq!(line["changes"], serde_json::json!([]));
        assert_eq!(check(line, &target)["status"], "ok");
    }
    let summary = &lines[3]["watch_summary"];
    assert_eq!(summary["rounds"], 3);
    assert_eq!(summary["endpoints"][0]["ok"], 3);
    assert_eq!(summary["endpoints"][0]["flaps"], 0);
    drop(server);
}

/// Ctrl-C (SIGINT) or SIGTERM in the middle of a run: the report so far is written (to the
/// terminal and to `--output`), the check still waiting is `deadline`, and the exit code is 1.
#[test]
fn an_interrupted_run_still_writes_its_report() {
    for signal in ["-INT", "-TERM"] {
        interrupted_by(signal);
    }
}

fn interrupted_by(signal: &str) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let waiting = format!("tls://{}", silent.local_addr().unwrap());
    let refused = {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://{}", dead.local_addr().unwrap())
    };
    let (accepted, connected) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept() {
            held.push(stream);
            let _ = accepted.send(());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("report.json");
    let running = Running::start(&[
        "check",
        "--timeout",
        "20s",
        "--format",
        "json",
        "--output",
        output.to_str().unwrap(),
        &waiting,
        &refused,
    ]);
    // The TLS check is under way: its TCP connection was accepted. The refused check, a
    // loopback connect, is given ample time to be done even on a loaded machine.
    connected
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = running.child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    running.wait_for("0 ok, 0 warn, 2 failed");
    let mut running = running;
    let status = running.child.wait().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(status.code(), Some(1));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_eq!(report["interrupted"], true);
    assert_eq!(kind(&report, &refused), "refused");
    assert_eq!(kind(&report, &waiting), "deadline");
    assert!(
        check(&report, &waiting)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
}
