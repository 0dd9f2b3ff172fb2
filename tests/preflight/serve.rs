//! `preflight serve` (issue 19) with the components a fleet runs: a real Prometheus scraping
//! it, Prometheus's blackbox_exporter probing the same loopback targets, promtool checking the
//! exposition, and headless Chromium rendering the status page. Each skips, saying why, when
//! its component is not installed (`.ci/run` installs them).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::free_port;
use crate::support::world::{Behaviour, Validity, World, preflight};

/// A child process killed on drop.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` from `addr`: the status and the body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    get_with(addr, path, "").map(|(status, _, body)| (status, body))
}

/// `GET path` from `addr` with `headers` (each ending in CRLF): the status, the head and the
/// body.
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    Some((status, head.to_ascii_lowercase(), body.to_string()))
}

/// Waits (at most 20 s) until `ready` holds for what `addr` answers on `path`.
pub(crate) fn wait_for(
    addr: SocketAddr,
    path: &str,
    ready: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let start = Instant::now();
    loop {
        if let Some((status, body)) = get(addr, path)
            && ready(status, &body)
        {
            return (status, body);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{addr}{path} never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `preflight serve` on a free port with `args`.
pub(crate) fn serve(args: &[&str]) -> (Running, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = preflight()
        .args(["serve", "--listen", &addr.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_for(addr, "/healthz", |_, _| true);
    (running, addr)
}

pub(crate) fn installed(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        crate::support::skip(&format!("needs {program} (.ci/run installs it)"));
    }
    found
}

#[test]
fn health_follows_the_last_round_and_probe_is_off_unless_allowed() {
    let world = World::new();
    let tls = world.serve_any(Behaviour::Tls(
        world.ca.server(&["localhost"], Validity::Current),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = listener.local_addr().unwrap();
    let (tcp_target, tls_target) = (
        format!("tcp://{tcp}"),
        format!("tls://localhost:{}", tls.port()),
    );
    let resolve = format!("localhost:{}:127.0.0.1", tls.port());
    let (_serve, addr) = serve(&[
        "--interval",
        "200ms",
        "--ca-file",
        world.ca_file(),
        "--resolve",
        &resolve,
        &tcp_target,
        &tls_target,
    ]);
    let (status, body) = wait_for(addr, "/healthz", |s, _| s == 200);
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["summary"]["ok"], 2, "{report:#}");
    // The metrics pass promtool.
    let (_, metrics) = get(addr, "/metrics").unwrap();
    assert!(
        metrics.contains(&format!("probe_success{{check=\"{tcp_target}\"")),
        "{metrics}"
    );
    if installed("promtool") {
        let mut promtool = Command::new("promtool");
        promtool.args(["check", "metrics"]);
        let out = crate::support::piped(promtool, &metrics);
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The TCP server goes away: the next round fails it, and health says so.
    drop(listener);
    let (_, body) = wait_for(addr, "/healthz", |s, _| s == 503);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["summary"]["fail"], 1);
    let (_, metrics) = get(addr, "/metrics").unwrap();
    assert!(metrics.contains("kind=\"refused\""), "{metrics}");
    let went_down = metrics.lines().any(|l| {
        l.starts_with("preflight_check_transitions_total{")
            && l.contains(&format!("check=\"{tcp_target}\""))
            && l.contains("direction=\"down\"")
            && l.ends_with(" 1")
    });
    assert!(went_down, "{metrics}");
    // OpenMetrics for a scraper that asks for it, as Prometheus does.
    let accept = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";
    let (_, head, open) = get_with(addr, "/metrics", accept).unwrap();
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(
        open.contains("# TYPE preflight_check_transitions counter"),
        "{open}"
    );
    let (_, head, _) = get_with(addr, "/metrics", "Accept: text/plain\r\n").unwrap();
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    // /probe is off by default.
    let (status, body) = get(addr, &format!("/probe?target={tcp}&module=tcp")).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-probe"));

    // On with --allow-probe; --probe-allow limits it.
    let (_serve, addr) = serve(&[
        "--interval",
        "1h",
        "--allow-probe",
        "--probe-allow",
        &tls.to_string(),
        &tcp_target,
    ]);
    let (status, body) = get(addr, &format!("/probe?target={tls}&module=tcp")).unwrap();
    assert_eq!(status, 200, "{body}");
    let success = body
        .lines()
        .find(|l| l.starts_with(&format!("probe_success{{check=\"tcp://{tls}\"")))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(success, Some(1.0), "{body}");
    let (status, _) = get(addr, &format!("/probe?target={tcp}&module=tcp")).unwrap();
    assert_eq!(status, 403);
}

/// A Prometheus on a free port with `config`, its data in `dir`.
fn prometheus(dir: &Path, config: &str) -> (Running, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Running(child), addr)
}

/// Prometheus's answer to an instant query, as (labels, value) pairs, once it has any.
fn query(prom: SocketAddr, promql: &str, wanted: usize) -> Vec<(Value, String)> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (_, body) = wait_for(
        prom,
        &format!("/api/v1/query?query={encoded}"),
        |s, body| {
            s == 200
                && serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v["data"]["result"].as_array().map(|r| r.len() >= wanted))
                    .unwrap_or(false)
        },
    );
    let answer: Value = serde_json::from_str(&body).unwrap();
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn prometheus_scrapes_serve_and_gets_what_blackbox_exporter_says() {
    if !installed("prometheus") || !installed("prometheus-blackbox-exporter") {
        return;
    }
    let world = World::new();
    let dir = world.dir.path();
    let tls = world.serve_any(Behaviour::Tls(
        world.ca.server(&["127.0.0.1"], Validity::Current),
    ));
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_addr = open.local_addr().unwrap();
    let refused = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let targets = [("tcp", open_addr), ("tcp", refused), ("tls", tls)];
    let plan: Vec<String> = targets.iter().map(|(m, a)| format!("{m}://{a}")).collect();
    let mut args = vec![
        "--interval",
        "500ms",
        "--ca-file",
        world.ca_file(),
        "--allow-probe",
    ];
    args.extend(plan.iter().map(String::as_str));
    let (_serve, serve_addr) = serve(&args);

    // blackbox_exporter with the same two kinds of probe.
    let bb_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let bb_config = dir.join("blackbox.yml");
    std::fs::write(
        &bb_config,
        format!(
            "modules:\n  tcp:\n    prober: tcp\n    timeout: 5s\n  tls:\n    prober: tcp\n    timeout: 5s\n    tcp:\n      tls: true\n      tls_config:\n        ca_file: {}\n",
            world.ca_file()
        ),
    )
    .unwrap();
    let _bb = Running(
        Command::new("prometheus-blackbox-exporter")
            .arg(format!("--config.file={}", bb_config.display()))
            .arg(format!("--web.listen-address={bb_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // One scrape job for serve, and the same blackbox-style job (relabelling __param_target)
    // pointed once at blackbox_exporter and once at serve's /probe.
    let probe_job = |job: &str, at: SocketAddr, module: &str, list: &[String]| {
        format!(
            "  - job_name: {job}\n    metrics_path: /probe\n    params:\n      module: [{module}]\n    static_configs:\n      - targets: [{}]\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n      - source_labels: [__param_target]\n        target_label: instance\n      - target_label: __address__\n        replacement: {at}\n",
            list.join(", ")
        )
    };
    let tcp_list: Vec<String> = [open_addr, refused]
        .iter()
        .map(|a| format!("'{a}'"))
        .collect();
    let tls_list = vec![format!("'{tls}'")];
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: preflight\n    static_configs:\n      - targets: ['{serve_addr}']\n{}{}{}{}",
        probe_job("blackbox-tcp", bb_addr, "tcp", &tcp_list),
        probe_job("blackbox-tls", bb_addr, "tls", &tls_list),
        probe_job("preflight-probe-tcp", serve_addr, "tcp", &tcp_list),
        probe_job("preflight-probe-tls", serve_addr, "tls", &tls_list),
    );
    let (_prom, prom) = prometheus(dir, &config);

    // serve's own rounds, as Prometheus stored them.
    let own = query(prom, "probe_success{job=\"preflight\"}", 3);
    let value_of = |rows: &[(Value, String)], label: &str, want: &str| {
        rows.iter()
            .find(|(m, _)| m[label].as_str() == Some(want))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {label}={want} in {rows:?}"))
    };
    let blackbox = query(prom, "probe_success{job=~\"blackbox-.*\"}", 3);
    let via_probe = query(prom, "probe_success{job=~\"preflight-probe-.*\"}", 3);
    for (module, addr) in targets {
        let theirs = value_of(&blackbox, "instance", &addr.to_string());
        assert_eq!(
            value_of(&own, "check", &format!("{module}://{addr}")),
            theirs,
            "{module}://{addr}"
        );
        assert_eq!(
            value_of(&via_probe, "instance", &addr.to_string()),
            theirs,
            "{module}://{addr} by /probe"
        );
    }
    assert_eq!(value_of(&blackbox, "instance", &refused.to_string()), "0");
    assert_eq!(value_of(&blackbox, "instance", &open_addr.to_string()), "1");
    assert_eq!(value_of(&blackbox, "instance", &tls.to_string()), "1");
    let failures = query(prom, "preflight_check_failure_info{job=\"preflight\"}", 1);
    let refused_check = format!("tcp://{refused}");
    let failure = failures
        .iter()
        .find(|(m, _)| m["check"].as_str() == Some(refused_check.as_str()))
        .unwrap();
    assert_eq!(
        (failure.0["kind"].as_str(), failure.0["phase"].as_str()),
        (Some("refused"), Some("tcp"))
    );
    drop(open);
}

#[test]
fn the_status_page_renders_in_a_browser() {
    if !installed("chromium") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ok = listener.local_addr().unwrap();
    let refused = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (ok_target, refused_target) = (format!("tcp://{ok}"), format!("tcp://{refused}"));
    let (_serve, addr) = serve(&[
        "--interval",
        "1h",
        "--node",
        "edge-<7>",
        &ok_target,
        &refused_target,
    ]);
    wait_for(addr, "/healthz", |s, _| s == 503);
    let dom = chromium_dom(&format!("http://{addr}/"));
    assert!(
        dom.contains("<h1>preflight on edge-&lt;7&gt;</h1>"),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("data-check=\"{ok_target}\" data-status=\"ok\"")),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "data-check=\"{refused_target}\" data-status=\"fail\""
        )),
        "{dom}"
    );
    assert!(dom.contains("✖ fail") && dom.contains("✔ ok"), "{dom}");
    assert!(dom.contains("refused: connection refused"), "{dom}");
    drop(listener);
}

/// The DOM headless Chromium renders for `url`.
pub(crate) fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The count of rounds serve has run, from its metrics.
fn rounds(addr: SocketAddr) -> u64 {
    let (_, metrics) = get(addr, "/metrics").unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("preflight_rounds_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no preflight_rounds_total: {metrics}")) as u64
}

#[test]
fn scrapes_start_no_rounds_requests_are_bounded_and_sigterm_ends_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", listener.local_addr().unwrap());
    let (mut running, addr) = serve(&["--interval", "1h", &target]);
    // A client that connects and never sends its request.
    let mut silent = TcpStream::connect(addr).unwrap();
    let opened = Instant::now();
    wait_for(addr, "/healthz", |s, _| s == 200);
    assert_eq!(rounds(addr), 1);
    // 200 scrapes, 8 at a time, of every page: still the one round.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for path in ["/metrics", "/healthz", "/", "/metrics"]
                    .iter()
                    .cycle()
                    .take(25)
                {
                    assert!(get(addr, path).is_some(), "{path}");
                }
            });
        }
    });
    assert_eq!(rounds(addr), 1, "a scrape started a round");
    // Only GET and HEAD, and a bounded request line.
    let long = format!("/metrics?{}", "a".repeat(3000));
    assert_eq!(get(addr, &long).unwrap().0, 414);
    let mut post = TcpStream::connect(addr).unwrap();
    post.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        post,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = post.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    // The silent client is let go after the 10 s allowed for a request head.
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 512];
    let _ = silent.read(&mut buf);
    let held = opened.elapsed();
    assert!(
        held < Duration::from_secs(15),
        "a silent client held its connection for {held:?}"
    );
    // SIGTERM: it stops at once, with exit code 0.
    let pid = running.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "serve ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after SIGTERM"
    );
}

#[test]
fn a_profile_is_a_probe_module_with_its_variables_as_parameters() {
    // kong-hybrid's cluster and telemetry listeners (8005, 8006) on an address of loopback no
    // other test uses: 8005 answers with something that is not TLS, 8006 refuses.
    let cp = "127.0.0.77";
    let cluster = TcpListener::bind((cp, 8005)).unwrap();
    std::thread::spawn(move || {
        for stream in cluster.incoming().take(4) {
            let _ = stream.and_then(|mut s| s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n"));
        }
    });
    let (_serve, addr) = serve(&[
        "--interval",
        "1h",
        "--timeout",
        "2s",
        "--allow-probe",
        "--probe-allow",
        cp,
        "tcp://127.0.0.77:8005",
    ]);
    let (status, body) = get(addr, &format!("/probe?module=kong-hybrid&cp_host={cp}")).unwrap();
    assert_eq!(status, 200, "{body}");
    let series = |name: &str, check: &str| {
        body.lines()
            .find(|l| l.starts_with(&format!("{name}{{check=\"{check}\"")))
            .unwrap_or_else(|| panic!("no {name} for {check}: {body}"))
            .to_string()
    };
    let value = |line: String| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    assert_eq!(value(series("probe_success", "kong-hybrid.cluster")), 0.0);
    assert_eq!(value(series("probe_success", "kong-hybrid.telemetry")), 0.0);
    assert!(
        series("preflight_check_failure_info", "kong-hybrid.telemetry")
            .contains("kind=\"refused\"")
    );
    assert!(
        series("probe_success", "kong-hybrid.cluster")
            .contains(&format!("target=\"tls://{cp}:8005\""))
    );
    // A variable the profile needs, missing; a target beside a profile; a host off the list.
    let (status, body) = get(addr, "/probe?module=kong-hybrid").unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("cp_host"), "{body}");
    let (status, body) = get(
        addr,
        "/probe?module=kong-hybrid&cp_host=127.0.0.77&target=x:1",
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("not target"), "{body}");
    let (status, _) = get(addr, "/probe?module=kong-hybrid&cp_host=127.0.0.1").unwrap();
    assert_eq!(status, 403);
}

#[test]
fn no_page_shows_the_proxy_password() {
    // The proxy refuses; this host's own lookup of the name goes to a DNS server on loopback
    // that is not there: nothing leaves the machine.
    let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (_serve, addr) = serve(&[
        "--interval",
        "1h",
        "--allow-probe",
        "--dns-server",
        &dns.to_string(),
        "--proxy",
        &format!("http://bob:Pw7Secret@{proxy}"),
        "--proxy-user",
        "carol:Pw7Other",
        "https://example.invalid/",
    ]);
    wait_for(addr, "/healthz", |s, _| s == 503);
    for path in [
        "/metrics",
        "/healthz",
        "/",
        "/probe?module=tls&target=example.invalid:443",
    ] {
        let (_, body) = get(addr, path).unwrap();
        assert!(body.contains("example.invalid"), "{path}: {body}");
        assert!(!body.contains("Pw7"), "{path} shows a password: {body}");
    }
}

/// An operator tailing the pod's log: a line per round (its number, checks, failures by
/// kind, duration) and one per change of a check's status (from, to, kind, cause), as logfmt
/// by default and as JSON lines with --log-format json; --log-rounds changes keeps only the
/// changes.
#[test]
fn serve_logs_each_round_and_each_change() {
    use std::io::BufRead;
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_addr = open.local_addr().unwrap();
    // Accepted and closed, round after round (a backlog never read fills up).
    std::thread::spawn(move || for _ in open.incoming() {});
    let open_target = format!("tcp://{open_addr}");
    for format in ["logfmt", "json"] {
        let going = TcpListener::bind("127.0.0.1:0").unwrap();
        let going_target = format!("tcp://{}", going.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepting = {
            let stop = stop.clone();
            going.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = going.accept();
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = preflight()
            .args([
                "serve",
                "--listen",
                &addr.to_string(),
                "--interval",
                "300ms",
            ])
            .args([
                "--log-format",
                format,
                "--timeout",
                "1s",
                &open_target,
                &going_target,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut running = Running(child);
        let mut lines = std::io::BufReader::new(running.0.stderr.take().unwrap()).lines();
        // The log's lines (serve also says where it listens, in words).
        let mut next = || loop {
            let line = lines.next().unwrap().unwrap();
            if line.contains("msg") {
                return line;
            }
        };
        let first = next();
        let fields = |line: &str| -> std::collections::HashMap<String, String> {
            match format {
                "json" => serde_json::from_str::<serde_json::Map<String, Value>>(line)
                    .unwrap_or_else(|e| panic!("{e}: {line}"))
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect(),
                _ => line
                    .split(' ')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                    .collect(),
            }
        };
        let round = fields(&first);
        assert_eq!(round["msg"], "round", "{first}");
        assert_eq!(round["round"], "1", "{first}");
        assert_eq!(round["checks"], "2", "{first}");
        assert!(round["ts"].ends_with('Z'), "{first}");
        // The second endpoint goes away: its change is logged, with kind and cause.
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        accepting.join().unwrap();
        let (change, failed_round) = loop {
            let line = next();
            let f = fields(&line);
            if f["msg"] == "transition" {
                let round = loop {
                    let l = next();
                    if fields(&l)["msg"] == "round" {
                        break fields(&l);
                    }
                };
                break (f, round);
            }
        };
        assert_eq!(change["id"], going_target, "{change:?}");
        assert_eq!(
            (change["from"].as_str(), change["to"].as_str()),
            ("ok", "fail")
        );
        assert_eq!(change["kind"], "refused", "{change:?}");
        assert_eq!(failed_round["failures"], "refused:1", "{failed_round:?}");
    }
}
