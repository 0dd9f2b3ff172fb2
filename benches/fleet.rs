//! The fleet at scale (issue 31): `merge` over thousands of reports, and `serve`'s scrape
//! beside its round. Everything runs on this machine: reports are written by the harness,
//! serve's 2,000 checks go to listeners on 127.0.0.1 and to ports where nothing listens.
//!
//! ```sh
//! cargo bench --bench fleet                 # both
//! cargo bench --bench fleet -- merge        # merge alone
//! cargo bench --bench fleet -- serve-scrape # serve alone
//! ```
//!
//! Each comparison is a paired run: the two sides alternate, each going first half the time,
//! and the medians of CPU time (user + system, GNU time) and peak RSS are compared.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary measured: this build's, or `PREFLIGHT_BIN` (another build, for a before and
/// after in the same harness).
fn preflight() -> String {
    std::env::var("PREFLIGHT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_preflight").to_string())
}

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| only.is_empty() || only.iter().any(|a| a == name);
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("skipping: GNU time (apt-get install time) measures CPU and peak RSS");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut report = String::new();
    if wants("merge") {
        merge(&mut report, dir.path());
    }
    if wants("serve-scrape") {
        serve_scrape(&mut report, dir.path());
    }
    print!("{report}");
}

/// How a fleet's reports name their nodes and what they check.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Each node its own name, the same five endpoints.
    Distinct,
    /// One name for every report (CI runners, one host's daily reports).
    OneName,
    /// Each node checks the five shared endpoints and two of its own address (a DaemonSet).
    NodeOwn,
}

/// A check as a report (schema 1) holds it.
fn check(id: &str, target: &str, fail: bool) -> Value {
    json!({
        "id": id, "name": id, "target": target, "required": true,
        "status": if fail { "fail" } else { "ok" },
        "error": fail.then(|| json!({
            "kind": "timeout",
            "message": format!("no answer from {target} within 5 s"),
            "hint": "Packets get no answer: a firewall silently drops them. Ask the network team to allow it."
        })),
    })
}

/// Writes `n` reports of `shape` into a directory of their own; returns their paths.
fn fleet(dir: &Path, shape: Shape, n: usize) -> Vec<PathBuf> {
    let tag = match shape {
        Shape::Distinct => "distinct",
        Shape::OneName => "one-name",
        Shape::NodeOwn => "node-own",
    };
    let dir = dir.join(format!("{tag}-{n}"));
    if dir.exists() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        return paths;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let shared = [
        (
            "konnect.control-plane",
            "kong-cluster://abc.us.cp0.konghq.com:443",
        ),
        ("konnect.telemetry", "tls://abc.us.tp0.konghq.com:443"),
        ("konnect.api", "tls://us.api.konghq.com:443"),
        ("konnect.platform", "tls://cloud.konghq.com:443"),
        ("konnect.portal", "tls://p1.us.portal.konghq.com:443"),
    ];
    (0..n)
        .map(|k| {
            let node = match shape {
                Shape::OneName => "ci-runner".to_string(),
                _ => format!("node-{k:05}"),
            };
            let mut checks: Vec<Value> = shared
                .iter()
                .map(|(id, target)| check(id, target, *id == "konnect.telemetry" && k % 7 == 0))
                .collect();
            if shape == Shape::NodeOwn {
                let ip = format!("10.{}.{}.{}", k >> 16 & 255, k >> 8 & 255, k & 255);
                checks.push(check("kubelet", &format!("tcp://{ip}:10250"), k % 5 == 0));
                checks.push(check("node-exporter", &format!("tcp://{ip}:9100"), false));
            }
            let report = json!({
                "schema_version": 1, "tool": "preflight", "version": "0.1.0",
                "started_at": "2026-12-04T10:00:00.000Z", "node": node,
                "source_addresses": ["192.0.2.10"], "duration_ms": 40.0,
                "checks": checks,
            });
            let path = dir.join(format!("r{k:05}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
            path
        })
        .collect()
}

/// The CPU time (user and system) of the children waited for so far, to the microsecond.
fn children_cpu() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    seconds(usage.user_time()) + seconds(usage.system_time())
}

/// One run under GNU time: (CPU seconds, from the kernel's count of the children waited for;
/// peak RSS in MB, from GNU time).
fn measured(args: &[String]) -> (f64, f64) {
    let before = children_cpu();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", "/dev/stderr", &preflight()])
        .args(args)
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let cpu = children_cpu() - before;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kb: f64 = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from GNU time: {stderr}"));
    (cpu, kb / 1024.0)
}

/// `runs` paired runs of `a` and `b`: the medians of (CPU seconds, peak RSS MB) of each.
fn paired(runs: usize, a: &[String], b: &[String]) -> [(f64, f64); 2] {
    let mut seen: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for i in 0..runs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            seen[which].push(measured(if which == 0 { a } else { b }));
        }
    }
    seen.map(|runs| {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        (
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
        )
    })
}

fn merge_args(paths: &[PathBuf], format: &str, out: &Path) -> Vec<String> {
    let mut args = vec![
        "merge".to_string(),
        "--format".into(),
        format.into(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    args
}

/// Measurement 10: merge at 1,000, 4,000 and 10,000 reports of three shapes, as paired runs
/// against the same fleet at 1,000 reports (or of distinct names), and one report of 150,000
/// checks.
fn merge(report: &mut String, dir: &Path) {
    let out = dir.join("merged.json");
    let runs = 5;
    writeln!(
        report,
        "\n### 10. merge at scale ({runs} paired runs, medians; JSON output)\n"
    )
    .unwrap();
    writeln!(
        report,
        "| fleet | reports | CPU | peak RSS | against | its CPU | its peak RSS | CPU ratio | RSS ratio |"
    )
    .unwrap();
    writeln!(
        report,
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
    )
    .unwrap();
    let mut row = |what: &str, a: (Shape, usize), b: (Shape, usize), against: &str| {
        let (pa, pb) = (fleet(dir, a.0, a.1), fleet(dir, b.0, b.1));
        let [(ca, ra), (cb, rb)] = paired(
            runs,
            &merge_args(&pa, "json", &out),
            &merge_args(&pb, "json", &out),
        );
        writeln!(
            report,
            "| {what} | {} | {:.1} ms | {ra:.1} MB | {against} | {:.1} ms | {rb:.1} MB | {:.2} | {:.2} |",
            a.1,
            ca * 1000.0,
            cb * 1000.0,
            ca / cb.max(0.001),
            ra / rb
        )
        .unwrap();
    };
    use Shape::*;
    for n in [4_000, 10_000] {
        row(
            "distinct names",
            (Distinct, n),
            (Distinct, 1_000),
            "the same, 1,000 reports",
        );
    }
    for n in [1_000, 4_000, 10_000] {
        row(
            "one name",
            (OneName, n),
            (Distinct, n),
            "distinct names, as many",
        );
    }
    for n in [2_000, 4_000, 10_000] {
        row(
            "node-own endpoints",
            (NodeOwn, n),
            (NodeOwn, 1_000),
            "the same, 1,000 reports",
        );
    }
    // One report of 150,000 checks.
    let big = dir.join("big.json");
    let checks: Vec<Value> = (0..150_000)
        .map(|i| {
            check(
                &format!("t{i}"),
                &format!("tcp://198.51.100.{}:{}", i % 250, 1000 + i % 60_000),
                i % 3 == 0,
            )
        })
        .collect();
    let one = json!({
        "schema_version": 1, "tool": "preflight", "version": "0.1.0",
        "started_at": "2026-12-04T10:00:00.000Z", "node": "one",
        "source_addresses": [], "duration_ms": 40.0, "checks": checks,
    });
    std::fs::write(&big, serde_json::to_vec(&one).unwrap()).unwrap();
    for format in ["json", "human"] {
        let started = Instant::now();
        let (cpu, rss) = measured(&merge_args(std::slice::from_ref(&big), format, &out));
        writeln!(
            report,
            "\nOne report of 150,000 checks, `--format {format}`: {:.2} s wall, {:.2} s CPU, {rss:.0} MB peak RSS.",
            started.elapsed().as_secs_f64(),
            cpu
        )
        .unwrap();
    }
}

/// The CPU time of every thread of `pid`, from the scheduler's own count (nanoseconds).
fn cpu_of(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let ns: u64 = tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// `GET /metrics` with `accept`; the answer's length, checked to be in the exposition asked.
fn scrape(addr: std::net::SocketAddr, accept: &str) -> usize {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    stream.read_to_end(&mut body).unwrap();
    let open_metrics = body.ends_with(b"# EOF\n");
    assert_eq!(
        open_metrics,
        accept.starts_with("application/openmetrics-text")
    );
    body.len()
}

/// Measurement 11: `serve` with 2,000 TCP checks (1,000 open, 1,000 refused): the CPU of a
/// round with nobody scraping, against the CPU of one scrape after each round, in the text
/// format (curl) and in OpenMetrics (Prometheus's own scrapes).
fn serve_scrape(report: &mut String, dir: &Path) {
    let _ = rlimit_raise();
    let open: Vec<TcpListener> = (0..1_000)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut targets = String::new();
    for l in &open {
        writeln!(targets, "tcp://{}", l.local_addr().unwrap()).unwrap();
    }
    for port in 20_000..21_000 {
        writeln!(targets, "tcp://127.0.0.1:{port}").unwrap();
    }
    let file = dir.join("targets.txt");
    std::fs::write(&file, targets).unwrap();
    let listen = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let interval = Duration::from_secs(2);
    let mut child = Command::new(preflight())
        .args(["serve", "--listen", &listen.to_string(), "--interval", "2s"])
        .args(["--log-rounds", "none", "--targets-file"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = "text/plain;version=0.0.4";
    let open_metrics = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    // Ask once for each exposition, so that serve renders both as each round ends.
    std::thread::sleep(interval + Duration::from_millis(500));
    let size = (scrape(listen, text), scrape(listen, open_metrics));
    std::thread::sleep(interval);
    let rounds = 5;
    let before = cpu_of(pid);
    std::thread::sleep(interval * rounds);
    let per_round = (cpu_of(pid) - before) / rounds;
    let mut scrapes = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        std::thread::sleep(interval);
        for (i, accept) in [text, open_metrics].into_iter().enumerate() {
            let before = cpu_of(pid);
            scrape(listen, accept);
            scrapes[i].push(cpu_of(pid) - before);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let [t, o] = scrapes.map(median);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    writeln!(
        report,
        "\n### 11. serve: a scrape beside its round, 2,000 checks\n"
    )
    .unwrap();
    writeln!(
        report,
        "| | CPU | bytes | of a round |\n| --- | ---: | ---: | ---: |"
    )
    .unwrap();
    writeln!(
        report,
        "| a round (both expositions rendered as it ends), mean of {rounds} | {:.1} ms | | 1.00 |",
        ms(per_round)
    )
    .unwrap();
    writeln!(
        report,
        "| a scrape, text format, median of {rounds} | {:.2} ms | {} | {:.3} |",
        ms(t),
        size.0,
        ms(t) / ms(per_round)
    )
    .unwrap();
    writeln!(
        report,
        "| a scrape, OpenMetrics, median of {rounds} | {:.2} ms | {} | {:.3} |",
        ms(o),
        size.1,
        ms(o) / ms(per_round)
    )
    .unwrap();
    drop(open);
}

/// Raises the open-file limit for the 1,000 listeners.
fn rlimit_raise() -> std::io::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)
}
