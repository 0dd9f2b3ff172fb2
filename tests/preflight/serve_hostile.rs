//! `preflight serve` under hostile clients, and the promises of issue 25: many raw sockets that
//! connect and say nothing, or say a byte at a time, or ask and never read; SIGHUP reloading
//! the configuration; `/probe`'s `kong-cluster` module against a loopback control plane.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve::{Running, get, serve, wait_for};
use crate::support::free_port;
use crate::support::world::{World, preflight};

/// `GET /metrics` on a new connection: its status and how long the answer took.
fn timed_scrape(addr: SocketAddr) -> (u16, Duration) {
    let started = Instant::now();
    let (status, body) = get(addr, "/metrics").expect("no answer");
    assert!(body.contains("probe_success"), "{body}");
    (status, started.elapsed())
}

/// The resident memory of process `pid`, in MiB.
fn resident_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

#[test]
fn a_scrape_is_answered_within_a_second_while_400_idle_or_slow_clients_hold_connections() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", closed.local_addr().unwrap());
    let (_serve, addr) = serve(&["--interval", "200ms", &target]);
    wait_for(addr, "/healthz", |_, body| body.contains("schema_version"));
    // 200 that connect and say nothing; 200 that send a request head a byte at a time.
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let mut scrapes = 0;
    // Past the 5 s deadline for a request head, so that the held connections turn over.
    while started.elapsed() < Duration::from_secs(7) {
        for s in &mut slow {
            let _ = s.write_all(b"X");
        }
        let (status, took) = timed_scrape(addr);
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_secs(1),
            "a scrape took {took:?} with 400 clients holding connections (after {:?})",
            started.elapsed()
        );
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(scrapes >= 6);
    // The clients that sent no whole request head were let go (5 s for the head).
    let mut buf = [0u8; 1];
    for s in idle.iter_mut().chain(slow.iter_mut()).take(400) {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(_) => {} // an error status before the close
            Err(e) => assert!(
                e.kind() == std::io::ErrorKind::ConnectionReset,
                "a connection that never sent a request head is still open: {e}"
            ),
        }
    }
}

/// serve over TCP checks of `ports` (a range) on loopback, where nothing listens, with one
/// round an hour: the targets file's directory, serve, its address, and its first /metrics.
fn serve_closed_ports(ports: &str) -> (tempfile::TempDir, Running, SocketAddr, String) {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets");
    std::fs::write(&list, format!("tcp://127.0.0.1:{ports}\n")).unwrap();
    let (serve, addr) = serve(&[
        "--interval",
        "1h",
        "--timeout",
        "2s",
        "--targets-file",
        list.to_str().unwrap(),
    ]);
    let (_, body) = wait_for(addr, "/metrics", |_, body| {
        body.contains("preflight_round_duration_seconds")
    });
    (dir, serve, addr, body)
}

#[test]
fn scrapers_that_never_read_share_one_copy_of_a_large_exposition() {
    // 5,000 closed ports on loopback: a /metrics of several megabytes.
    let (_dir, serve, addr, body) = serve_closed_ports("40000-44999");
    let size = body.len();
    assert!(size > 4 * 1024 * 1024, "{size} bytes");
    let before = resident_mib(serve.0.id());
    // 64 scrapers that ask and never read, with small receive buffers.
    let stuck: Vec<TcpStream> = (0..64)
        .map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.connect(&addr.into()).unwrap();
            let mut s: TcpStream = s.into();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let during = resident_mib(serve.0.id());
    // A new scraper is still answered, and in full.
    let (status, took) = timed_scrape(addr);
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        during < before + 64,
        "64 scrapers that do not read a {size}-byte exposition took the resident set from {before} MiB to {during} MiB"
    );
    drop(stuck);
}

/// `serve` with stderr written to a file, for its log lines.
fn serve_logged(dir: &std::path::Path, args: &[&str]) -> (Running, SocketAddr, std::path::PathBuf) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = dir.join("serve.log");
    let child = preflight()
        .args(["serve", "--listen", &addr.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_for(addr, "/healthz", |_, _| true);
    (running, addr, log)
}

/// The number of checks in the last round /healthz reports.
fn checks_served(addr: SocketAddr) -> usize {
    let (_, body) = get(addr, "/healthz").unwrap();
    let report: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    report["checks"].as_array().map_or(0, Vec::len)
}

fn hang_up(serve: &Running) {
    let sent = Command::new("kill")
        .args(["-HUP", &serve.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn sighup_reloads_serve_and_a_bad_configuration_is_logged_and_not_taken() {
    let dir = tempfile::tempdir().unwrap();
    let one = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let two = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let list = dir.path().join("targets");
    std::fs::write(&list, format!("tcp://{}\n", one.local_addr().unwrap())).unwrap();
    let (mut serve, addr, log) = serve_logged(
        dir.path(),
        &["--interval", "1h", "--targets-file", list.to_str().unwrap()],
    );
    wait_for(addr, "/healthz", |s, _| s == 200);
    assert_eq!(checks_served(addr), 1);

    std::fs::write(
        &list,
        format!(
            "tcp://{}\ntcp://{}\n",
            one.local_addr().unwrap(),
            two.local_addr().unwrap()
        ),
    )
    .unwrap();
    hang_up(&serve);
    // The new plan runs at once, without waiting for the hour.
    let started = Instant::now();
    while checks_served(addr) != 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "not reloaded");
        std::thread::sleep(Duration::from_millis(50));
    }

    std::fs::write(&list, "tcp://[not a target\n").unwrap();
    hang_up(&serve);
    let started = Instant::now();
    loop {
        let logged = std::fs::read_to_string(&log).unwrap();
        if logged.contains("reload on SIGHUP refused") {
            assert!(
                logged.contains("the configuration in use is kept"),
                "{logged}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{logged}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(serve.0.try_wait().unwrap().is_none(), "serve ended");
    assert_eq!(checks_served(addr), 2);
    assert_eq!(get(addr, "/healthz").unwrap().0, 200);
}

#[test]
fn probe_takes_the_kong_cluster_module_and_replays_the_data_planes_handshake() {
    let world = World::new();
    let (cp, seen) = crate::cluster_upgrade::control_plane(&world, 101);
    let (crt, key) = crate::support::konnect::cluster_cert(&world);
    let resolve = format!("cp.test:{}:127.0.0.1", cp.port());
    let (_serve, addr) = serve(&[
        "--interval",
        "1h",
        "--allow-probe",
        "--ca-file",
        world.ca_file(),
        "--client-cert",
        &crt,
        "--client-key",
        &key,
        "--resolve",
        &resolve,
        &format!("tcp://{cp}"),
    ]);
    let (status, body) = get(
        addr,
        &format!("/probe?module=kong-cluster&target=cp.test:{}", cp.port()),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let success = body
        .lines()
        .find(|l| l.starts_with("probe_success{"))
        .unwrap_or_else(|| panic!("{body}"));
    assert!(success.ends_with(" 1.0"), "{body}");
    let target = format!("kong-cluster://cp.test:{}", cp.port());
    assert!(
        success.contains(&format!("check=\"{target}\""))
            && success.contains(&format!("target=\"{target}\"")),
        "{success}"
    );
    // The control plane records a connection once it has seen whether a frame follows.
    let started = Instant::now();
    loop {
        let seen = seen.lock().unwrap().clone();
        if seen
            .iter()
            .any(|s| format!("{s:?}").contains("GET /v1/outlet?node_id="))
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every scrape of a round gets the same bytes, in each exposition, made when the round
/// ended; each family lists the checks in the plan's order (a scrape can be diffed with the
/// next one).
#[test]
fn every_scrape_of_a_round_gets_the_same_exposition_in_the_plans_order() {
    let (_dir, _serve, addr, first) = serve_closed_ports("41000-41029");
    let scrape = |accept: &str| {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.split_once("\r\n\r\n").unwrap().1.to_string()
    };
    let open_metrics = "application/openmetrics-text;version=1.0.0";
    let (text, om) = (scrape("text/plain"), scrape(open_metrics));
    assert_eq!(text, first);
    assert_eq!(scrape("text/plain"), text);
    assert_eq!(scrape(open_metrics), om);
    assert!(om.ends_with("# EOF\n") && !text.contains("# EOF"));
    for body in [&text, &om] {
        let order: Vec<u16> = body
            .lines()
            .filter(|l| l.starts_with("probe_success{"))
            .map(|l| {
                let at = l.find("port=\"").unwrap() + 6;
                l[at..].split('"').next().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(order, (41000..41030).collect::<Vec<u16>>(), "{body}");
    }
}
