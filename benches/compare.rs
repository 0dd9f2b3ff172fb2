//! preflight side by side with nmap, ncat, nc and curl, on loopback only. Prints a Markdown
//! report; BENCHMARKS.md records one run and says how to rerun it:
//!
//!     cargo bench --bench compare            # as root, for the firewall measurement
//!     cargo bench --bench compare -- mutual-tls   # measurement 6 alone
//!     cargo bench --bench compare -- second-opinions   # measurement 7 alone (root)
//!     cargo bench --bench compare -- serve-rounds   # measurement 8 alone
//!     cargo bench --bench compare -- fan-out   # measurement 1 alone
//!     cargo bench --bench compare -- ten-thousand   # measurement 5 alone
//!     cargo bench --bench compare -- far-region   # measurement 3b alone
//!     cargo bench --bench compare -- many-tls   # measurement 4b alone
//!
//! Needs nmap, ncat, nc (netcat-openbsd), curl and /usr/bin/time; the firewall measurement also
//! needs unshare and nft, the mutual-TLS one nginx and openssl. Wall times are the best of several runs (spawn to exit); peak RSS is
//! GNU time's maximum resident set size.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The tests' lab of routers (client, two routers, server: network namespaces).
#[path = "../tests/preflight/support/lab.rs"]
#[allow(dead_code)]
mod lab;

/// What the lab calls when it cannot be built: a benchmark says so and goes on without it.
fn skip(why: &str) {
    eprintln!("skipping: {why}");
}

/// The binary measured: this build's, or `PREFLIGHT_BIN` (another build, for a before and
/// after in the same harness).
static PREFLIGHT_PATH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("PREFLIGHT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_preflight").to_string())
});
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Ports where nothing listens: below Linux's ephemeral range (32768 and up), where the open
/// listeners of this harness get their ports.
const REFUSED_FROM: u16 = 20_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut report = String::new();
    writeln!(report, "{}", machine()).unwrap();

    // `cargo bench --bench compare -- mutual-tls` runs that measurement alone.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if only.iter().any(|a| a == "second-opinions") {
        second_opinions(&mut report, dir.path());
        print!("{report}");
        return;
    }
    if only.iter().any(|a| a == "many-tls") {
        let tls = runtime.block_on(TlsPeers::start(dir.path(), 500));
        many_tls(&mut report, &tls);
        print!("{report}");
        return;
    }
    if only.iter().any(|a| a == "far-region") {
        far_region(&mut report, dir.path(), &runtime);
        print!("{report}");
        return;
    }
    if only.iter().any(|a| a == "ten-thousand") {
        let open = runtime.block_on(open_ports(1000));
        ten_thousand(&mut report, dir.path(), &open);
        print!("{report}");
        return;
    }
    if only.iter().any(|a| a == "fan-out") {
        let open = runtime.block_on(open_ports(1000));
        scan(&mut report, dir.path(), &open);
        print!("{report}");
        return;
    }
    if only.iter().any(|a| a == "serve-rounds") {
        let tls = runtime.block_on(TlsPeers::start(dir.path(), 1));
        let open = runtime.block_on(open_ports(1));
        serve_rounds(&mut report, dir.path(), &tls, open[0]);
        print!("{report}");
        return;
    }
    if only.iter().any(|a| a == "mutual-tls") {
        mutual_tls(&mut report, dir.path());
        print!("{report}");
        return;
    }
    let open = runtime.block_on(open_ports(1000));
    scan(&mut report, dir.path(), &open);
    firewall(&mut report);
    let tls = runtime.block_on(TlsPeers::start(dir.path(), 7));
    profile(&mut report, &tls);
    far_region(&mut report, dir.path(), &runtime);
    let many = runtime.block_on(TlsPeers::start(dir.path(), 500));
    many_tls(&mut report, &many);
    single(&mut report, &open, &tls);
    ten_thousand(&mut report, dir.path(), &open);
    mutual_tls(&mut report, dir.path());
    second_opinions(&mut report, dir.path());
    serve_rounds(&mut report, dir.path(), &tls, open[0]);
    print!("{report}");
}

/// Listeners that accept and close, on free ports of 127.0.0.1.
async fn open_ports(n: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    for _ in 0..n {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        ports.push(listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
    }
    ports
}

/// Seven TLS servers for names under konnect.bench, with one CA; each answers an HTTP request
/// with 200 (for curl).
struct TlsPeers {
    ca: PathBuf,
    endpoints: Vec<(String, SocketAddr)>,
}

impl TlsPeers {
    async fn start(dir: &Path, n: usize) -> TlsPeers {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "preflight bench CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let mut endpoints = Vec::new();
        for i in 0..n {
            let name = format!("endpoint-{i}.konnect.bench");
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![name.clone()])
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
            let config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                chain,
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
            endpoints.push((name, listener.local_addr().unwrap()));
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let mut buf = [0u8; 2048];
                        if matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {
                            let _ = tls
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .await;
                        }
                        let _ = tls.shutdown().await;
                    });
                }
            });
        }
        TlsPeers {
            ca: ca_path,
            endpoints,
        }
    }

    /// preflight's arguments for all of them: `--ca-file`, a `--resolve` per name, the targets.
    fn preflight_args(&self) -> Vec<String> {
        let mut args = vec!["--ca-file".to_string(), self.ca.display().to_string()];
        for (name, addr) in &self.endpoints {
            args.push("--resolve".into());
            args.push(format!("{name}:{}:127.0.0.1", addr.port()));
        }
        for (name, addr) in &self.endpoints {
            args.push(format!("tls://{name}:{}", addr.port()));
        }
        args
    }
}

/// A command line, as run.
fn command(args: &[String]) -> Command {
    let mut command = Command::new(&args[0]);
    command.args(&args[1..]).stdin(Stdio::null());
    command
}

/// The best wall time of `runs` runs, and the output of the last.
fn best_of(runs: usize, args: &[String]) -> (Duration, Output) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let output = command(args)
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        best = best.min(started.elapsed());
        last = Some(output);
    }
    (best, last.unwrap())
}

/// The CPU time (user and system) of the children waited for so far.
fn children_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    time(usage.user_time()) + time(usage.system_time())
}

/// One run: its wall time, CPU time and output.
fn timed(args: &[String]) -> (Duration, Duration, Output) {
    let cpu = children_cpu();
    let started = Instant::now();
    let output = command(args)
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    (started.elapsed(), children_cpu() - cpu, output)
}

/// `runs` paired runs of `a` and `b`, alternating which goes first: the medians of each one's
/// wall and CPU time, and each one's last output.
fn paired(runs: usize, a: &[String], b: &[String]) -> [(Duration, Duration, Output); 2] {
    let mut times: [Vec<(Duration, Duration)>; 2] = [Vec::new(), Vec::new()];
    let mut last: [Option<Output>; 2] = [None, None];
    for i in 0..runs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let (wall, cpu, output) = timed(if which == 0 { a } else { b });
            times[which].push((wall, cpu));
            last[which] = Some(output);
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let [ta, tb] = times;
    let [la, lb] = last;
    let of = |t: Vec<(Duration, Duration)>, out: Option<Output>| {
        let walls = t.iter().map(|p| p.0).collect();
        let cpus = t.iter().map(|p| p.1).collect();
        (median(walls), median(cpus), out.unwrap())
    };
    [of(ta, la), of(tb, lb)]
}

/// Peak RSS in MB of one run, from GNU time.
fn peak_rss(args: &[String]) -> f64 {
    let mut timed = vec![
        "/usr/bin/time".to_string(),
        "-f".into(),
        "%M".into(),
        "-o".into(),
        "/dev/stderr".into(),
    ];
    timed.extend(args.iter().cloned());
    let output = command(&timed).stdout(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kb: f64 = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS from GNU time: {stderr}"));
    kb / 1024.0
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = String::from_utf8_lossy(&Command::new("uname").arg("-r").output().unwrap().stdout)
        .trim()
        .to_string();
    let nmap = String::from_utf8_lossy(
        &Command::new("nmap")
            .arg("--version")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_else(|_| b"nmap not installed".to_vec()),
    )
    .lines()
    .next()
    .unwrap_or_default()
    .to_string();
    let limit = String::from_utf8_lossy(
        &Command::new("sh")
            .args(["-c", "ulimit -n"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    format!(
        "Machine: {cpu}, {cores} cores, Linux {kernel}; {nmap}; preflight {} (release); open-file limit {limit}.\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Measurement 1: 2,000 TCP endpoints (1,000 open, 1,000 refused): preflight, nmap's connect scan, ncat.
fn scan(report: &mut String, dir: &Path, open: &[u16]) {
    let refused: Vec<u16> = (REFUSED_FROM..REFUSED_FROM + 1000).collect();
    let all: Vec<u16> = open.iter().chain(&refused).copied().collect();
    let file = dir.join("scan.txt");
    let lines: String = all
        .iter()
        .map(|p| format!("tcp://127.0.0.1:{p}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let preflight = vec![
        PREFLIGHT_PATH.as_str().to_string(),
        "check".into(),
        "--format".into(),
        "json".into(),
        "--targets-file".into(),
        file.display().to_string(),
    ];
    let ports: Vec<String> = all.iter().map(ToString::to_string).collect();
    let nmap = strings(&[
        "nmap",
        "-sT",
        "-n",
        "-Pn",
        "-T5",
        "-oG",
        "-",
        "-p",
        &ports.join(","),
        "127.0.0.1",
    ]);
    // ncat takes tens of milliseconds a port: 100 of them (50 open, 50 refused) stand for all.
    let sample: Vec<String> = open[..50]
        .iter()
        .chain(&refused[..50])
        .map(ToString::to_string)
        .collect();
    let ncat_loop = vec![
        "sh".to_string(),
        "-c".into(),
        format!(
            "for p in {}; do ncat -z 127.0.0.1 $p; done; true",
            sample.join(" ")
        ),
    ];

    let [(p_wall, p_cpu, p_out), (n_wall, n_cpu, n_out)] = paired(21, &preflight, &nmap);
    let summary = &json(&p_out)["summary"];
    assert_eq!(
        (summary["ok"].as_u64(), summary["fail"].as_u64()),
        (Some(1000), Some(1000))
    );
    let n_open = String::from_utf8_lossy(&n_out.stdout)
        .matches("/open/")
        .count();
    assert_eq!(n_open, 1000, "nmap found {n_open} open ports");
    let (c_wall, _) = best_of(1, &ncat_loop);
    let (p_rss, n_rss) = (peak_rss(&preflight), peak_rss(&nmap));
    writeln!(
        report,
        "\n## 1. 2,000 TCP endpoints (1,000 open, 1,000 refused), 21 paired runs, medians\n"
    )
    .unwrap();
    writeln!(
        report,
        "| tool | wall | CPU (user + system) | peak RSS | result |\n| --- | ---: | ---: | ---: | --- |"
    )
    .unwrap();
    writeln!(
        report,
        "| `preflight check --targets-file` | {} | {} | {p_rss:.1} MB | 1,000 ok, 1,000 refused |",
        ms(p_wall),
        ms(p_cpu)
    )
    .unwrap();
    writeln!(
        report,
        "| `nmap -sT -n -Pn -T5` | {} | {} | {n_rss:.1} MB | 1,000 open |",
        ms(n_wall),
        ms(n_cpu)
    )
    .unwrap();
    writeln!(
        report,
        "| `ncat -z` in a loop (100 of the ports, 1 run) | {} | | 2,000 ports: about {:.0} s |",
        ms(c_wall),
        c_wall.as_secs_f64() * 20.0
    )
    .unwrap();
    writeln!(
        report,
        "\npreflight / nmap: wall {:.2}, CPU {:.2}.",
        p_wall.as_secs_f64() / n_wall.as_secs_f64(),
        p_cpu.as_secs_f64() / n_cpu.as_secs_f64()
    )
    .unwrap();
}

/// Measurement 2: 300 endpoints whose packets a firewall drops, `--timeout 1s`, in a private network
/// namespace; the floor is one timeout.
fn firewall(report: &mut String) {
    writeln!(
        report,
        "\n## 2. 300 endpoints behind a dropping firewall, `--timeout 1s`, best of 3\n"
    )
    .unwrap();
    let rules = "table inet bench { chain input { type filter hook input priority 0; tcp dport 40001-40300 drop; }; }";
    let in_namespace = |tool: &[&str]| {
        let mut args = strings(&[
            "unshare",
            "--net",
            "sh",
            "-c",
            r#"ip link set lo up && printf '%s\n' "$0" | nft -f - && exec "$@""#,
            rules,
        ]);
        args.extend(tool.iter().map(|s| s.to_string()));
        args
    };
    let ready = command(&in_namespace(&["true"]))
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        writeln!(report, "Not measured: needs root, unshare and nft.").unwrap();
        return;
    }
    let preflight = in_namespace(&[
        PREFLIGHT_PATH.as_str(),
        "check",
        "--format",
        "json",
        "--timeout",
        "1s",
        "tcp://127.0.0.1:40001-40300",
    ]);
    let nmap = in_namespace(&[
        "nmap",
        "-sT",
        "-n",
        "-Pn",
        "-T5",
        "-p",
        "40001-40300",
        "127.0.0.1",
    ]);
    let empty = in_namespace(&["true"]);
    let (p_wall, p_out) = best_of(3, &preflight);
    let report_json = json(&p_out);
    let timeouts = report_json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["error"]["kind"] == "timeout")
        .count();
    assert_eq!(timeouts, 300);
    let (n_wall, _) = best_of(3, &nmap);
    let (setup, _) = best_of(3, &empty);
    writeln!(report, "| tool | wall | result |\n| --- | ---: | --- |").unwrap();
    writeln!(
        report,
        "| `preflight check --timeout 1s` | {} | 300 `timeout` |",
        ms(p_wall)
    )
    .unwrap();
    writeln!(
        report,
        "| `nmap -sT -n -Pn -T5` | {} | 300 filtered |",
        ms(n_wall)
    )
    .unwrap();
    writeln!(
        report,
        "| the namespace and firewall alone | {} | |",
        ms(setup)
    )
    .unwrap();
}

/// Measurement 3: A konnect-shaped profile: 7 TLS endpoints; the floor is the slowest endpoint's own
/// connect and handshake, from the same run's report.
fn profile(report: &mut String, tls: &TlsPeers) {
    let mut args = strings(&[PREFLIGHT_PATH.as_str(), "check", "--format", "json"]);
    args.extend(tls.preflight_args());
    let mut best: Option<(Duration, f64)> = None;
    for _ in 0..10 {
        let started = Instant::now();
        let output = command(&args).output().unwrap();
        let wall = started.elapsed();
        let r = json(&output);
        assert_eq!(r["summary"]["ok"], 7, "{r}");
        let floor = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["timings_ms"]["total"].as_f64())
            .fold(0.0, f64::max);
        if best.is_none_or(|(w, _)| wall < w) {
            best = Some((wall, floor));
        }
    }
    let (wall, floor) = best.unwrap();
    writeln!(
        report,
        "\n## 3. Seven TLS endpoints (a konnect-shaped run), best of 10\n"
    )
    .unwrap();
    writeln!(report, "| wall (process start to exit) | slowest endpoint (connect + TLS) | overhead |\n| ---: | ---: | ---: |").unwrap();
    writeln!(
        report,
        "| {} | {floor:.1} ms | {:.1} ms |",
        ms(wall),
        wall.as_secs_f64() * 1000.0 - floor
    )
    .unwrap();
}

/// Measurement 4: One check, process start to exit: TCP against nc and ncat, TLS against curl.
fn single(report: &mut String, open: &[u16], tls: &TlsPeers) {
    let port = open[0].to_string();
    let (name, addr) = &tls.endpoints[0];
    let pin = format!("{name}:{}:127.0.0.1", addr.port());
    let ca = tls.ca.display().to_string();
    let rows: Vec<(&str, Vec<String>)> = vec![
        (
            "`preflight check tcp://…`",
            strings(&[
                PREFLIGHT_PATH.as_str(),
                "check",
                &format!("tcp://127.0.0.1:{port}"),
            ]),
        ),
        ("`nc -z`", strings(&["nc", "-z", "127.0.0.1", &port])),
        ("`ncat -z`", strings(&["ncat", "-z", "127.0.0.1", &port])),
        (
            "`preflight check tls://…`",
            strings(&[
                PREFLIGHT_PATH.as_str(),
                "check",
                "--ca-file",
                &ca,
                "--resolve",
                &pin,
                &format!("tls://{name}:{}", addr.port()),
            ]),
        ),
        (
            "`curl https://…`",
            strings(&[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "--cacert",
                &ca,
                "--resolve",
                &pin,
                &format!("https://{name}:{}/", addr.port()),
            ]),
        ),
    ];
    writeln!(
        report,
        "\n## 4. One check, process start to exit, best of 20\n"
    )
    .unwrap();
    writeln!(report, "| tool | wall | peak RSS |\n| --- | ---: | ---: |").unwrap();
    for (label, args) in rows {
        let (wall, output) = best_of(20, &args);
        assert!(
            output.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        writeln!(
            report,
            "| {label} | {} | {:.1} MB |",
            ms(wall),
            peak_rss(&args)
        )
        .unwrap();
    }
}

/// Measurement 5: 10,000 endpoints (1,000 open, 9,000 refused) under a 1,024 open-file limit: every
/// result right, wall time and peak RSS; the static (musl) build too when it was built.
fn ten_thousand(report: &mut String, dir: &Path, open: &[u16]) {
    let file = dir.join("ten-thousand.txt");
    let mut lines: String = open
        .iter()
        .map(|p| format!("tcp://127.0.0.1:{p}\n"))
        .collect();
    lines.push_str(&format!(
        "tcp://127.0.0.1:{}-{}\n",
        REFUSED_FROM,
        REFUSED_FROM + 8999
    ));
    std::fs::write(&file, lines).unwrap();
    let open: HashSet<u64> = open.iter().map(|p| u64::from(*p)).collect();
    writeln!(
        report,
        "\n## 5. 10,000 endpoints (1,000 open, 9,000 refused), open-file limit 1,024, 11 paired runs, medians\n"
    )
    .unwrap();
    writeln!(
        report,
        "| binary | wall | CPU | peak RSS | results right |\n| --- | ---: | ---: | ---: | ---: |"
    )
    .unwrap();
    let static_build = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/preflight-static");
    let mut binaries = vec![("release (glibc)", PREFLIGHT_PATH.as_str().to_string())];
    if static_build.exists() {
        binaries.push((
            "static (musl, the image's)",
            static_build.display().to_string(),
        ));
    }
    let args: Vec<Vec<String>> = binaries
        .iter()
        .map(|(_, binary)| {
            let mut args = strings(&["sh", "-c", r#"ulimit -n 1024 && exec "$@""#, "sh"]);
            args.push(binary.clone());
            args.extend(strings(&["check", "--format", "json", "--targets-file"]));
            args.push(file.display().to_string());
            args
        })
        .collect();
    let runs = match args.as_slice() {
        [glibc, musl] => paired(11, glibc, musl).into_iter().collect(),
        [glibc] => vec![paired(11, glibc, glibc).into_iter().next().unwrap()],
        _ => unreachable!("one or two binaries"),
    };
    let mut walls = Vec::new();
    for (((label, _), args), (wall, cpu, output)) in binaries.iter().zip(&args).zip(runs) {
        let r = json(&output);
        let checks = r["checks"].as_array().unwrap();
        let right = checks
            .iter()
            .filter(|c| match open.contains(&c["port"].as_u64().unwrap()) {
                true => c["status"] == "ok",
                false => c["error"]["kind"] == "refused",
            })
            .count();
        assert_eq!((checks.len(), right), (10_000, 10_000));
        let rss = (0..3).map(|_| peak_rss(args)).fold(0.0, f64::max);
        writeln!(
            report,
            "| {label} | {} | {} | {rss:.1} MB | {right} of {} |",
            ms(wall),
            ms(cpu),
            checks.len()
        )
        .unwrap();
        walls.push(wall);
    }
    if let [glibc, musl] = walls.as_slice() {
        writeln!(
            report,
            "\nstatic / glibc wall: {:.2}.",
            musl.as_secs_f64() / glibc.as_secs_f64()
        )
        .unwrap();
    }
}

/// Runs `openssl ARGS` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

/// Measurement 6: a mutual-TLS check in TLS 1.3 against nginx (`ssl_verify_client on`) with a
/// certificate it accepts: the check's total against its own connect + handshake, the floor
/// no check can beat. The wait for the server's verdict on the certificate is what lies
/// between (it ends at nginx's session ticket).
fn mutual_tls(report: &mut String, dir: &Path) {
    writeln!(
        report,
        "\n## 6. Mutual TLS 1.3 against nginx, an accepted certificate, best of 10\n"
    )
    .unwrap();
    if Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        writeln!(report, "nginx is not installed: not measured.").unwrap();
        return;
    }
    let d = dir.join("mtls");
    std::fs::create_dir_all(&d).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=bench CA",
        "-days",
        "30",
    ]);
    openssl(&d, &ca);
    for (name, san) in [
        ("server", "subjectAltName=DNS:mtls.bench"),
        ("client", "subjectAltName=DNS:node"),
    ] {
        let mut req = vec!["req", "-new"];
        req.extend(ec);
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subj = format!("/CN={name}");
        req.extend([
            "-keyout", &key, "-out", &csr, "-subj", &subj, "-addext", san,
        ]);
        openssl(&d, &req);
        let crt = format!("{name}.crt");
        openssl(
            &d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-copy_extensions",
                "copy",
                "-out",
                &crt,
                "-days",
                "30",
            ],
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = d.display();
    for sub in ["client", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let conf = format!(
        "daemon off; master_process off; error_log {p}/error.log; pid {p}/nginx.pid;
events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {p}/client; proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fastcgi; uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;
  server {{ listen 127.0.0.1:{port} ssl; ssl_protocols TLSv1.3;
    ssl_certificate {p}/server.crt; ssl_certificate_key {p}/server.key;
    ssl_client_certificate {p}/ca.crt; ssl_verify_client on;
    location / {{ return 200 \"ok\\n\"; }} }} }}
"
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let mut nginx = Command::new("nginx")
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .arg("-p")
        .arg(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let file = |name: &str| d.join(name).display().to_string();
    let pin = format!("mtls.bench:{port}:127.0.0.1");
    let args = strings(&[
        PREFLIGHT_PATH.as_str(),
        "check",
        "--format",
        "json",
        "--ca-file",
        &file("ca.crt"),
        "--client-cert",
        &file("client.crt"),
        "--client-key",
        &file("client.key"),
        "--resolve",
        &pin,
        &format!("tls://mtls.bench:{port}"),
    ]);
    // (total, connect + TLS, verdict wait, wall) of the run with the best total.
    let mut best: Option<(f64, f64, f64, Duration)> = None;
    for _ in 0..10 {
        let started = Instant::now();
        let output = command(&args).output().unwrap();
        let wall = started.elapsed();
        let r = json(&output);
        let c = &r["checks"][0];
        assert_eq!(c["status"], "ok", "{r}");
        let t = &c["timings_ms"];
        let total = t["total"].as_f64().unwrap();
        let floor = t["connect"].as_f64().unwrap_or(0.0) + t["tls"].as_f64().unwrap_or(0.0);
        let verdict = t["tls_verdict"].as_f64().unwrap_or(0.0);
        if best.is_none_or(|(b, ..)| total < b) {
            best = Some((total, floor, verdict, wall));
        }
    }
    let _ = nginx.kill();
    let _ = nginx.wait();
    let (total, floor, verdict, wall) = best.unwrap();
    writeln!(report, "| check total | connect + handshake | verdict wait | over the floor | wall |\n| ---: | ---: | ---: | ---: | ---: |").unwrap();
    writeln!(
        report,
        "| {total:.1} ms | {floor:.1} ms | {verdict:.1} ms | {:.1} ms | {} |",
        total - floor,
        ms(wall)
    )
    .unwrap();
}

/// One failing check in the lab, best of 3: its wall time, what its second opinion took (from
/// its JSON), and its kind.
fn lab_check(lab: &lab::Lab, args: &[&str]) -> (Duration, f64, String) {
    let mut all = strings(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("c"),
        PREFLIGHT_PATH.as_str(),
        "check",
        "--format",
        "json",
    ]);
    all.extend(args.iter().map(|a| a.to_string()));
    let (wall, output) = best_of(3, &all);
    let report = json(&output);
    let check = &report["checks"][0];
    let second = check["second_opinion"]["ms"].as_f64().unwrap_or(0.0);
    let kind = check["error"]["kind"].as_str().unwrap_or("ok").to_string();
    (wall, second, kind)
}

/// What each second opinion adds to a failing check, in the tests' lab of routers, beside
/// traceroute's TCP method for the trace.
fn second_opinions(report: &mut String, dir: &Path) {
    writeln!(
        report,
        "\n## 7. Second opinions in the lab of routers, `--timeout 2s`, best of 3\n"
    )
    .unwrap();
    let server = lab::SERVER;
    let drop = "table inet lab { chain forward { type filter hook forward priority 0; tcp dport 443 drop; }; }";
    let Some(dropping) = lab::Lab::new(drop, 1500) else {
        writeln!(report, "Not measured: needs root, ip netns and nft.").unwrap();
        return;
    };
    writeln!(report, "| failure | second opinion | check wall | the second opinion | the check without it | peer |").unwrap();
    writeln!(report, "| --- | --- | ---: | ---: | ---: | --- |").unwrap();
    let target = format!("tcp://{server}:443");
    let (wall, second, kind) = lab_check(&dropping, &["--timeout", "2s", &target]);
    let (bare, _, _) = lab_check(&dropping, &["--timeout", "2s", "--no-trace", &target]);
    let traceroute = strings(&[
        "ip",
        "netns",
        "exec",
        &dropping.ns("c"),
        "traceroute",
        "-T",
        "-n",
        "-q",
        "1",
        "-w",
        "2",
        "-m",
        "30",
        "-p",
        "443",
        server,
    ]);
    let peer = match command(&traceroute).output() {
        Ok(o) if o.status.success() || !o.stdout.is_empty() => {
            let (took, _) = best_of(3, &traceroute);
            format!("`traceroute -T -q 1 -w 2` {}", ms(took))
        }
        _ => "traceroute not installed".to_string(),
    };
    writeln!(report, "| `{kind}`, SYN dropped at router 2 | hops, TTL 1-30 at once | {} | {} | {} (`--no-trace`) | {peer} |", ms(wall), ms(Duration::from_secs_f64(second / 1000.0)), ms(bare)).unwrap();
    drop_lab(dropping);

    let (ca, crt, key) = lab::big_certificate(dir, &["big.test", "other.test"]);
    let black_hole = "table inet lab { chain output { type filter hook output priority 0; icmp type destination-unreachable icmp code frag-needed drop; }; }";
    for (mtu, label) in [
        (1280, "MTU 1280, no ICMP back"),
        (1500, "clean path (healthy)"),
    ] {
        let Some(mut hole) = lab::Lab::new(black_hole, mtu) else {
            return;
        };
        hole.spawn(
            "s",
            dir,
            &[
                "openssl", "s_server", "-quiet", "-www", "-accept", "443", "-cert", &crt, "-key",
                &key,
            ],
        );
        hole.wait_listening(443);
        let resolve = format!("big.test:443:{server}");
        let (wall, second, kind) = lab_check(
            &hole,
            &[
                "--timeout",
                "2s",
                "--ca-file",
                &ca,
                "--resolve",
                &resolve,
                "tls://big.test:443",
            ],
        );
        let opinion = match mtu {
            1280 => "MSS 1200 and 536, no server name, at once",
            _ => "none taken",
        };
        writeln!(
            report,
            "| `{kind}`, {label} | {opinion} | {} | {} | | |",
            ms(wall),
            ms(Duration::from_secs_f64(second / 1000.0))
        )
        .unwrap();
    }

    let Some(mut filtered) = lab::Lab::new("", 1500) else {
        return;
    };
    filtered.spawn(
        "s",
        dir,
        &[
            "openssl",
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            "127.0.0.1:8443",
            "-cert",
            &crt,
            "-key",
            &key,
        ],
    );
    filtered.wait_listening(8443);
    filtered.sni_filter(443, 8443, "other.test");
    let resolve = format!("other.test:443:{server}");
    let (wall, second, kind) = lab_check(
        &filtered,
        &[
            "--timeout",
            "2s",
            "--ca-file",
            &ca,
            "--resolve",
            &resolve,
            "tls://other.test:443",
        ],
    );
    writeln!(
        report,
        "| `{kind}`, reset for one server name | no server name | {} | {} | | |",
        ms(wall),
        ms(Duration::from_secs_f64(second / 1000.0))
    )
    .unwrap();
}

/// Removes a lab now rather than at the end.
fn drop_lab(lab: lab::Lab) {
    drop(lab);
}

/// The body of `GET path` from `addr` (HTTP/1.1, the connection closed after it).
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// A process's resident set (MB) and open file descriptors, from /proc.
fn footprint(pid: u32) -> (f64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (kb / 1024.0, fds)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// (round, RSS in MB, open descriptors) at each of `ROUNDS_READ`.
type Readings = Vec<(u64, f64, usize)>;

/// The rounds at which measurement 8 reads RSS and open descriptors.
const ROUNDS_READ: [u64; 5] = [100, 1_000, 2_500, 5_000, 10_000];

/// Measurement 8: `preflight serve --interval 10ms` over 10,000 rounds of three checks (TCP
/// open, TCP refused, TLS), scraped every 50 ms; beside it blackbox_exporter probing the same
/// three targets 10,000 times each through /probe. RSS and open descriptors at rounds 100 to
/// 10,000.
fn serve_rounds(report: &mut String, dir: &Path, tls: &TlsPeers, open_port: u16) {
    let open_addr = SocketAddr::from((LOCALHOST, open_port));
    let refused = SocketAddr::from((LOCALHOST, REFUSED_FROM + 1));
    let (name, tls_addr) = tls.endpoints[0].clone();
    let listen = SocketAddr::from((LOCALHOST, free_port()));
    let mut args = strings(&[
        PREFLIGHT_PATH.as_str(),
        "serve",
        "--listen",
        &listen.to_string(),
        "--interval",
        "10ms",
    ]);
    args.extend([
        "--ca-file".to_string(),
        tls.ca.display().to_string(),
        "--resolve".into(),
        format!("{name}:{}:127.0.0.1", tls_addr.port()),
        format!("tls://{name}:{}", tls_addr.port()),
    ]);
    args.push(format!("tcp://{open_addr}"));
    args.push(format!("tcp://{refused}"));
    let mut child = command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut ours = Vec::new();
    let rounds = |body: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix("preflight_rounds_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    };
    for want in ROUNDS_READ {
        loop {
            let done = http_get(listen, "/metrics")
                .as_deref()
                .and_then(rounds)
                .unwrap_or(0);
            if done >= want {
                let (rss, fds) = footprint(child.id());
                ours.push((done, rss, fds));
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(900),
                "serve stalled at round {done}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let wall = started.elapsed();
    let health = http_get(listen, "/healthz").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let last: serde_json::Value = serde_json::from_str(&health).unwrap_or_default();
    let right = last["summary"]["ok"] == 2 && last["summary"]["fail"] == 1;

    let theirs = blackbox_rounds(dir, tls, &name, tls_addr, open_addr, refused);
    writeln!(report, "\n### 8. `serve --interval 10ms`: 10,000 rounds of three checks, beside blackbox_exporter\n").unwrap();
    writeln!(
        report,
        "preflight serve: 10,000 rounds in {:.1} s, scraped every 50 ms; the last round right (2 ok, 1 refused): {right}.",
        wall.as_secs_f64()
    )
    .unwrap();
    if let Some((_, bb_wall)) = &theirs {
        writeln!(report, "blackbox_exporter: the same three probes 10,000 times each, one after another, in {:.1} s.", bb_wall.as_secs_f64()).unwrap();
    }
    writeln!(report, "\n| round | preflight RSS | preflight open fds | blackbox_exporter RSS | blackbox_exporter open fds |").unwrap();
    writeln!(report, "| ---: | ---: | ---: | ---: | ---: |").unwrap();
    for (i, (round, rss, fds)) in ours.iter().enumerate() {
        let peer = theirs
            .as_ref()
            .map(|(readings, _)| format!("{:.1} MB | {}", readings[i].1, readings[i].2))
            .unwrap_or_else(|| "not installed | ".into());
        writeln!(report, "| {round} | {rss:.1} MB | {fds} | {peer} |").unwrap();
    }
}

/// blackbox_exporter probing the three targets 10,000 times each through /probe, read at the
/// same rounds; `None` when it is not installed.
fn blackbox_rounds(
    dir: &Path,
    tls: &TlsPeers,
    name: &str,
    tls_addr: SocketAddr,
    open: SocketAddr,
    refused: SocketAddr,
) -> Option<(Readings, Duration)> {
    let config = dir.join("blackbox.yml");
    std::fs::write(
        &config,
        format!(
            "modules:\n  tcp:\n    prober: tcp\n    timeout: 5s\n  tls:\n    prober: tcp\n    timeout: 5s\n    tcp:\n      tls: true\n      tls_config:\n        ca_file: {}\n        server_name: {name}\n",
            tls.ca.display()
        ),
    )
    .unwrap();
    let listen = SocketAddr::from((LOCALHOST, free_port()));
    let mut child = Command::new("prometheus-blackbox-exporter")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    while http_get(listen, "/metrics").is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let probes = [
        ("tcp", open, "1"),
        ("tcp", refused, "0"),
        ("tls", tls_addr, "1"),
    ];
    let started = Instant::now();
    let mut readings = Vec::new();
    for round in 1..=ROUNDS_READ[ROUNDS_READ.len() - 1] {
        for (module, target, success) in probes {
            let body = http_get(listen, &format!("/probe?module={module}&target={target}"))
                .unwrap_or_default();
            assert!(
                body.contains(&format!("\nprobe_success {success}")),
                "{module} {target}: {body}"
            );
        }
        if ROUNDS_READ.contains(&round) {
            let (rss, fds) = footprint(child.id());
            readings.push((round, rss, fds));
        }
    }
    let wall = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    Some((readings, wall))
}

/// How long the relays of measurement 3b hold each chunk, each way.
const HOLD: Duration = Duration::from_millis(25);

/// A relay on a free port of 127.0.0.1 to `upstream` that holds every chunk for `HOLD` in each
/// direction, as a far region's path does (a round trip through it costs 50 ms).
async fn delaying_relay(upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::join!(
                    held(client_read, server_write),
                    held(server_read, client_write)
                );
            });
        }
    });
    addr
}

/// Copies `from` to `to`, each chunk written `HOLD` after it was read (chunks still flow while
/// earlier ones wait).
async fn held(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reading = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || tx
                    .send((tokio::time::Instant::now() + HOLD, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    };
    let writing = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}

/// The far path of measurement 3b: seven TLS servers of one CA (the first requires a client
/// certificate), each behind a delaying relay, and a DNS server for their names behind a
/// delaying UDP relay.
struct FarPath {
    ca: String,
    client_cert: String,
    client_key: String,
    /// Name, the relay's address, and whether the server requires a client certificate.
    endpoints: Vec<(String, SocketAddr, bool)>,
    dns: SocketAddr,
}

impl FarPath {
    fn start(dir: &Path, runtime: &tokio::runtime::Runtime) -> FarPath {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "preflight far CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let file = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(vec!["dp.far.bench".to_string()]).unwrap();
        client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &issuer).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let roots = Arc::new(roots);
        let (endpoints, dns) = runtime.block_on(async {
            let mut endpoints = Vec::new();
            for i in 0..7 {
                let name = format!("endpoint-{i}.far.bench");
                let config = far_server(&name, &issuer, (i == 0).then(|| roots.clone()));
                let server = serve_tls(config).await;
                endpoints.push((name, delaying_relay(server).await, i == 0));
            }
            let names: Vec<String> = endpoints.iter().map(|(n, _, _)| n.clone()).collect();
            let dns = delaying_udp_relay(far_dns("far.bench", &names).await).await;
            (endpoints, dns)
        });
        FarPath {
            ca: file("far-ca.pem", ca_cert.pem()),
            client_cert: file("far-client.pem", client_cert.pem()),
            client_key: file("far-client.key", client_key.serialize_pem()),
            endpoints,
            dns,
        }
    }

    /// dig's query time through the DNS relay (the median of 5).
    fn lookup(&self) -> Duration {
        let mut lookups: Vec<Duration> = (0..5)
            .map(|_| {
                let out = Command::new("dig")
                    .args(["+tries=1", "+time=2", "-p", &self.dns.port().to_string()])
                    .arg(format!("@{}", self.dns.ip()))
                    .args([self.endpoints[0].0.as_str(), "A"])
                    .output()
                    .expect("dig (apt-get install dnsutils)");
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                let msec: u64 = text
                    .lines()
                    .find_map(|l| l.strip_prefix(";; Query time: "))
                    .and_then(|t| t.split_whitespace().next()?.parse().ok())
                    .unwrap_or_else(|| panic!("dig: {text}"));
                Duration::from_millis(msec)
            })
            .collect();
        lookups.sort();
        lookups[2]
    }

    /// curl's slowest endpoint through the relays, the address given (the median of 5 runs per
    /// endpoint): `time_appconnect`, and for the mutual-TLS endpoint `time_starttransfer`, one
    /// round trip after the handshake, in which a TLS 1.3 server gives its verdict.
    fn slowest_handshake(&self) -> (Duration, String) {
        let mut slowest = (Duration::ZERO, String::new());
        for (name, addr, mutual) in &self.endpoints {
            let mut args = strings(&["curl", "-s", "-o", "/dev/null", "--cacert", &self.ca]);
            args.extend([
                "--resolve".into(),
                format!("{name}:{}:127.0.0.1", addr.port()),
            ]);
            if *mutual {
                args.extend(strings(&[
                    "--cert",
                    &self.client_cert,
                    "--key",
                    &self.client_key,
                ]));
            }
            args.extend(strings(&["-w", "%{time_appconnect} %{time_starttransfer}"]));
            args.push(format!("https://{name}:{}/", addr.port()));
            let mut times: Vec<Duration> = (0..5)
                .map(|_| {
                    let out = command(&args).output().unwrap();
                    let text = String::from_utf8_lossy(&out.stdout).to_string();
                    let parts: Vec<f64> = text.split(' ').filter_map(|t| t.parse().ok()).collect();
                    assert_eq!(parts.len(), 2, "curl: {text}");
                    Duration::from_secs_f64(if *mutual { parts[1] } else { parts[0] })
                })
                .collect();
            times.sort();
            if times[2] > slowest.0 {
                slowest = (times[2], name.clone());
            }
        }
        slowest
    }

    /// preflight's run of every endpoint, names through the DNS relay (the medians of 5): the
    /// run as its report times it, and process start to exit.
    fn preflight(&self) -> (Duration, Duration) {
        let mut args = strings(&[
            PREFLIGHT_PATH.as_str(),
            "check",
            "--format",
            "json",
            "--ca-file",
            &self.ca,
        ]);
        args.extend(strings(&["--client-cert", &self.client_cert]));
        args.extend(strings(&["--client-key", &self.client_key]));
        args.extend(["--dns-server".into(), self.dns.to_string()]);
        for (name, addr, _) in &self.endpoints {
            args.push(format!("tls://{name}:{}", addr.port()));
        }
        let mut walls = Vec::new();
        let mut reported = Vec::new();
        for _ in 0..5 {
            let (wall, _, output) = timed(&args);
            let r = json(&output);
            assert_eq!(r["summary"]["ok"], 7, "{r:#}");
            assert_eq!(r["checks"][0]["tls"]["client_cert_requested"], true);
            walls.push(wall);
            let ms = r["duration_ms"].as_f64().unwrap();
            reported.push(Duration::from_secs_f64(ms / 1000.0));
        }
        walls.sort();
        reported.sort();
        (reported[2], walls[2])
    }
}

/// A TLS server's configuration for `name`, signed by `issuer`; requiring a client certificate
/// of `client_roots` when given.
fn far_server(
    name: &str,
    issuer: &Issuer<'_, KeyPair>,
    client_roots: Option<Arc<rustls::RootCertStore>>,
) -> Arc<ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_roots {
        Some(roots) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .unwrap(),
        ),
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Arc::new(
        builder
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap(),
    )
}

/// Measurement 3b: the konnect-shaped run (seven TLS endpoints, one of them mutual TLS with a
/// client certificate) on the far path, against its floor: dig's lookup and curl's slowest
/// handshake through the same relays.
fn far_region(report: &mut String, dir: &Path, runtime: &tokio::runtime::Runtime) {
    let far = FarPath::start(dir, runtime);
    let lookup = far.lookup();
    let (handshake, slowest) = far.slowest_handshake();
    let floor = lookup + handshake;
    let (run, wall) = far.preflight();
    let rows = [
        ("dig's lookup through the DNS relay".to_string(), lookup),
        (
            format!(
                "curl's slowest endpoint ({slowest}) with the address given, `time_appconnect`, or `time_starttransfer` for the mutual-TLS one"
            ),
            handshake,
        ),
        ("the floor: the two together".to_string(), floor),
        (
            "preflight, the run as its report times it (`duration_ms`)".to_string(),
            run,
        ),
        ("preflight, process start to exit".to_string(), wall),
    ];
    writeln!(report, "\n## 3b. Seven TLS endpoints and their DNS behind relays holding each chunk 25 ms each way (one mutual TLS), medians of 5\n").unwrap();
    writeln!(report, "| | time |\n| --- | ---: |").unwrap();
    for (what, time) in rows {
        writeln!(report, "| {what} | {} |", ms(time)).unwrap();
    }
    let over = (run.as_secs_f64() - floor.as_secs_f64()) * 1000.0;
    writeln!(report, "\npreflight's run over the floor: {over:.1} ms.").unwrap();
}

/// A TLS server of `config` on a free port of 127.0.0.1 that answers a request with 200.
async fn serve_tls(config: Arc<ServerConfig>) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = [0u8; 2048];
                if matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// Measurement 4b: 500 TLS endpoints on loopback, handshakes per CPU-second: preflight beside
/// curl's `--parallel` (100 at once, as preflight's default keeps hundreds in flight), the
/// median of 5 runs each.
fn many_tls(report: &mut String, tls: &TlsPeers) {
    let mut ours = strings(&[PREFLIGHT_PATH.as_str(), "check", "--format", "json"]);
    ours.extend(tls.preflight_args());
    let mut curl = strings(&[
        "curl",
        "-s",
        "--parallel",
        "--parallel-max",
        "100",
        "--cacert",
    ]);
    curl.push(tls.ca.display().to_string());
    for (name, addr) in &tls.endpoints {
        curl.push("--resolve".into());
        curl.push(format!("{name}:{}:127.0.0.1", addr.port()));
    }
    for (name, addr) in &tls.endpoints {
        curl.extend(strings(&["-o", "/dev/null", "-w", "%{http_code}\n"]));
        curl.push(format!("https://{name}:{}/", addr.port()));
    }
    let n = tls.endpoints.len();
    let [(p_wall, p_cpu, p_out), (c_wall, c_cpu, c_out)] = paired(5, &ours, &curl);
    assert_eq!(json(&p_out)["summary"]["ok"].as_u64(), Some(n as u64));
    let answered = String::from_utf8_lossy(&c_out.stdout)
        .matches("200")
        .count();
    assert_eq!(answered, n, "curl's answers");
    let rate = |cpu: Duration| n as f64 / cpu.as_secs_f64();
    writeln!(
        report,
        "\n## 4b. {n} TLS endpoints on loopback, 5 paired runs, medians\n"
    )
    .unwrap();
    writeln!(
        report,
        "| tool | wall | CPU | handshakes per CPU-second |\n| --- | ---: | ---: | ---: |"
    )
    .unwrap();
    writeln!(
        report,
        "| `preflight check` (TLS handshake, certificate verified) | {} | {} | {:.0} |",
        ms(p_wall),
        ms(p_cpu),
        rate(p_cpu)
    )
    .unwrap();
    writeln!(
        report,
        "| `curl --parallel --parallel-max 100` (handshake and a request) | {} | {} | {:.0} |",
        ms(c_wall),
        ms(c_cpu),
        rate(c_cpu)
    )
    .unwrap();
    if let Some(top) = cpu_profile(&ours) {
        writeln!(
            report,
            "\nWhere preflight's CPU goes (`perf record`, the symbols over 1%):\n\n```\n{top}```"
        )
        .unwrap();
    }
}

/// The symbols above 1% of a `perf record` of one run of `args`, when perf is installed.
fn cpu_profile(args: &[String]) -> Option<String> {
    let data = std::env::temp_dir().join(format!("preflight-bench-{}.perf", std::process::id()));
    let mut record = strings(&["perf", "record", "-q", "-F", "20000", "-o"]);
    record.push(data.display().to_string());
    record.push("--".into());
    record.extend(args.iter().cloned());
    // perf exits with the command's code; what matters is whether it wrote its data.
    command(&record)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let out = Command::new("perf")
        .args(["report", "--no-children", "--sort", "dso,sym", "--stdio"])
        .args(["--percent-limit", "1", "-i"])
        .arg(&data)
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&data);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: String = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    (!lines.is_empty()).then_some(lines)
}

/// An authoritative DNS server for `zone` on a free UDP port of 127.0.0.1: each of `names` has
/// an A record for 127.0.0.1 (and no AAAA).
async fn far_dns(zone: &str, names: &[String]) -> SocketAddr {
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{LowerName, Name, RData, Record};
    use hickory_server::store::in_memory::InMemoryZoneHandler;
    use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
    use std::str::FromStr;
    let origin = Name::from_str(&format!("{zone}.")).unwrap();
    let mut handler =
        InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
    let soa = SOA::new(
        Name::from_str(&format!("ns.{zone}.")).unwrap(),
        Name::from_str(&format!("admin.{zone}.")).unwrap(),
        1,
        3600,
        600,
        86400,
        60,
    );
    handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    for name in names {
        let name = Name::from_str(&format!("{name}.")).unwrap();
        handler.upsert_mut(
            Record::from_rdata(name, 60, RData::A(A(Ipv4Addr::LOCALHOST))),
            1,
        );
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);
    let socket = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let mut server = hickory_server::Server::new(catalog);
    server.register_socket(socket);
    tokio::spawn(async move {
        let _ = server.block_until_done().await;
    });
    addr
}

/// A UDP relay on a free port of 127.0.0.1 to `upstream` that holds each datagram `HOLD` each
/// way: a DNS round trip through it costs 50 ms.
async fn delaying_udp_relay(upstream: SocketAddr) -> SocketAddr {
    let facing = Arc::new(tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap());
    let addr = facing.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, client)) = facing.recv_from(&mut buf).await {
            let query = buf[..n].to_vec();
            let facing = facing.clone();
            tokio::spawn(async move {
                tokio::time::sleep(HOLD).await;
                let Ok(up) = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await else {
                    return;
                };
                let _ = up.send_to(&query, upstream).await;
                let mut answer = vec![0u8; 4096];
                let got = tokio::time::timeout(Duration::from_secs(2), up.recv(&mut answer)).await;
                if let Ok(Ok(n)) = got {
                    tokio::time::sleep(HOLD).await;
                    let _ = facing.send_to(&answer[..n], client).await;
                }
            });
        }
    });
    addr
}
