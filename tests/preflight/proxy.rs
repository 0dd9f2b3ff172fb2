//! Checks through forward proxies: a real squid (open, with Basic authentication, with a
//! CONNECT port list), an in-process SOCKS5 server, an HTTPS proxy, and a proxy that re-signs
//! TLS. The Konnect tests run in a private network namespace where direct traffic to the
//! targets is dropped, so a pass proves the path went through the proxy.

use std::net::SocketAddr;

use serde_json::Value;

use crate::support::konnect::{KONNECT, cluster_cert, konnect_args, konnect_world};
use crate::support::proxies::{SocksOptions, Squid, SquidOptions, isolated, socks5};
use crate::support::world::{
    Behaviour, Ca, PROXY_VARIABLES, Validity, World, check, kind, lo, preflight, split,
};

const USER: &str = "alice";
/// A password with the characters that must be percent-encoded in a URL.
const PASSWORD: &str = "p@ss:w/rd%1";
const PASSWORD_IN_URL: &str = "p%40ss%3Aw%2Frd%251";

/// The name under which this module's tests are known to the test harness.
fn test_name(name: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}

/// Runs `preflight check --format json ARGS` with `env` set; returns the exit code, the report
/// and stderr.
fn check_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut command = preflight();
    command.args(["check", "--format", "json"]).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let (code, stdout, stderr) = split(command.output().unwrap());
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {stderr}\n{stdout}"));
    crate::support::words::assert_plain_words(&report);
    (code, report, stderr)
}

fn ids(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn konnect_passes_only_through_the_proxy() {
    if !isolated(&test_name("konnect_passes_only_through_the_proxy")) {
        return;
    }
    let world = World::new();
    let (_, block) = konnect_world(&world).expect("root in the namespace");
    let hosts = KONNECT
        .iter()
        .enumerate()
        .map(|(i, (_, host))| (host.to_string(), lo(block, i as u8 + 1)))
        .collect();
    let squid = Squid::start(&SquidOptions {
        hosts,
        ..SquidOptions::default()
    })
    .unwrap();
    // A DNS server that knows none of the names: through a proxy they are the proxy's to
    // resolve.
    let nxdomain = world
        .dns(&["konghq.com", "kongportals.com"], &[], &[], &[])
        .to_string();
    let cert = cluster_cert(&world);
    let base = konnect_args(&nxdomain, world.ca_file(), &cert);
    let proxy = squid.url(None);

    // Through --proxy: every endpoint passes, although direct packets are dropped and this
    // host's DNS knows none of the names.
    let mut args = base.clone();
    args.extend(["--proxy", &proxy]);
    let (code, report, stderr) = check_with_env(&args, &[]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["ok"], 11, "{report:#}");
    for id in ids(&report) {
        let c = check(&report, &id);
        assert_eq!(c["proxy"], format!("http://{}", squid.addr), "{c:#}");
        assert_eq!(c["proxy_reason"], "--proxy");
        assert_eq!(c["local_dns"]["error"]["kind"], "nxdomain", "{c:#}");
        assert!(c["timings_ms"]["proxy"].as_f64().is_some(), "{c:#}");
    }
    let cp = check(&report, "konnect.control-plane");
    assert_eq!(cp["tls"]["san"], serde_json::json!(["x.us.cp0.konghq.com"]));
    assert!(
        squid.logged("CONNECT x.us.cp0.konghq.com:443"),
        "{}",
        squid.log("access.log")
    );

    // Through HTTPS_PROXY: the TLS endpoints pass; the audit-log port is plain TCP, which
    // takes all_proxy, so it goes direct and is dropped.
    let (code, report, stderr) = check_with_env(&base, &[("HTTPS_PROXY", &proxy)]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let cp = check(&report, "konnect.control-plane");
    assert_eq!(cp["status"], "ok", "{cp:#}");
    assert_eq!(cp["proxy_reason"], "HTTPS_PROXY");
    let audit = check(&report, "konnect.audit-log");
    assert!(audit["proxy"].is_null(), "{audit:#}");
    assert_eq!(kind(&report, "konnect.audit-log"), "nxdomain");

    // NO_PROXY exempts the hosts: every required endpoint goes direct and fails.
    let mut args = base.clone();
    let pinned: Vec<String> = KONNECT
        .iter()
        .enumerate()
        .map(|(i, (_, host))| format!("{host}:443:{}", lo(block, i as u8 + 1)))
        .collect();
    for pin in &pinned {
        args.extend(["--resolve", pin]);
    }
    let (code, report, stderr) = check_with_env(
        &args,
        &[("HTTPS_PROXY", &proxy), ("NO_PROXY", ".konghq.com")],
    );
    assert_eq!(code, 1, "{stderr}\n{report:#}");
    let cp = check(&report, "konnect.control-plane");
    assert!(cp["proxy"].is_null(), "{cp:#}");
    assert_eq!(cp["proxy_reason"], "NO_PROXY=.konghq.com");
    assert_eq!(kind(&report, "konnect.control-plane"), "timeout", "{cp:#}");

    // --compare-direct: both paths side by side.
    let mut args = args.clone();
    args.extend(["--proxy", &proxy, "--compare-direct"]);
    let (code, report, stderr) = check_with_env(&args, &[]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let cp = check(&report, "konnect.control-plane");
    assert_eq!(cp["status"], "ok", "{cp:#}");
    assert_eq!(cp["direct"]["status"], "fail", "{cp:#}");
    assert_eq!(cp["direct"]["error"]["kind"], "timeout", "{cp:#}");
    let mut human = preflight();
    human.arg("check").args(&args);
    let (_, stdout, _) = split(human.output().unwrap());
    // Long lines wrap at 80 columns: the words, not the line breaks, are the point.
    let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!("via {proxy} (--proxy)")) && words.contains("direct: timeout"),
        "{stdout}"
    );
}

/// A TLS service on loopback and a squid with Basic authentication that may CONNECT to it
/// (and to `refused`, where nothing listens) but to no other port.
struct AuthWorld {
    world: World,
    squid: Squid,
    tls: SocketAddr,
    refused: SocketAddr,
    other: SocketAddr,
    /// A plain HTTP server (not a port squid may CONNECT to).
    web: SocketAddr,
    nxdomain: String,
}

impl AuthWorld {
    fn start() -> Option<AuthWorld> {
        let world = World::new();
        let tls = world.serve_any(Behaviour::Tls(
            world.ca.server(&["svc.test"], Validity::Current),
        ));
        let other = world.serve_any(Behaviour::Accept);
        let web = world.serve_any(Behaviour::Web(None));
        // A port that was free a moment ago: nothing listens there.
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let squid = Squid::start(&SquidOptions {
            auth: Some((USER, PASSWORD)),
            connect_ports: vec![tls.port(), refused.port()],
            hosts: vec![("svc.test".into(), tls.ip()), ("web.test".into(), web.ip())],
            ..SquidOptions::default()
        })?;
        let nxdomain = world.dns(&["test"], &[], &[], &[]).to_string();
        Some(AuthWorld {
            world,
            squid,
            tls,
            refused,
            other,
            web,
            nxdomain,
        })
    }

    fn run(&self, extra: &[&str]) -> (i32, Value, String) {
        let target = format!("tls://svc.test:{}", self.tls.port());
        let mut args = vec![
            "--ca-file",
            self.world.ca_file(),
            "--dns-server",
            &self.nxdomain,
            "--timeout",
            "3s",
            &target,
        ];
        args.extend_from_slice(extra);
        check_with_env(&args, &[])
    }
}

#[test]
fn squid_with_basic_auth_passes_with_the_right_credentials() {
    let Some(w) = AuthWorld::start() else { return };
    let target = format!("tls://svc.test:{}", w.tls.port());
    let url = w.squid.url(Some(&format!("{USER}:{PASSWORD_IN_URL}")));
    let (code, report, stderr) = w.run(&["--proxy", &url]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let c = check(&report, &target);
    assert_eq!(c["tls"]["san"], serde_json::json!(["svc.test"]));
    // The report names the proxy without the credentials.
    assert_eq!(c["proxy"], w.squid.url(None));
    // --proxy-user gives the same credentials in the clear (the password holds a colon).
    let user = format!("{USER}:{PASSWORD}");
    let (code, report, stderr) = w.run(&["--proxy", &w.squid.url(None), "--proxy-user", &user]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let logged = format!("CONNECT svc.test:{} {USER}", w.tls.port());
    assert!(w.squid.logged(&logged), "{}", w.squid.log("access.log"));
}

#[test]
fn squid_names_what_it_refused() {
    let Some(w) = AuthWorld::start() else { return };
    let target = format!("tls://svc.test:{}", w.tls.port());
    let good = w.squid.url(Some(&format!("{USER}:{PASSWORD_IN_URL}")));
    let wrong = w.squid.url(Some(&format!("{USER}:nope")));

    for (proxy, expect) in [
        (&wrong, "refused the credentials given"),
        (&w.squid.url(None), "requires credentials"),
    ] {
        let (code, report, _) = w.run(&["--proxy", proxy]);
        assert_eq!(code, 1);
        let c = check(&report, &target);
        assert_eq!(kind(&report, &target), "proxy_auth", "{c:#}");
        assert_eq!(c["error"]["phase"], "proxy");
        let message = c["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(expect) && message.contains("407"),
            "{message}"
        );
    }

    let denied = format!("tcp://127.0.0.1:{}", w.other.port());
    let upstream = format!("tcp://127.0.0.1:{}", w.refused.port());
    let (code, report, _) = w.run(&["--proxy", &good, &denied, &upstream]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, &target), "");
    assert_eq!(kind(&report, &denied), "proxy_denied", "{report:#}");
    assert!(
        check(&report, &denied)["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("CONNECT")
    );
    assert_eq!(kind(&report, &upstream), "proxy_upstream", "{report:#}");
    let message = check(&report, &upstream)["error"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("503") && message.contains("refused"),
        "{message}"
    );
    // Squid's X-Squid-Error says what its own connection met: a cause of its own.
    assert_eq!(
        check(&report, &upstream)["error"]["cause"],
        "proxy_target_refused",
        "{report:#}"
    );

    // A dead proxy, and a proxy whose name does not resolve.
    let dead = format!("http://127.0.0.1:{}", w.refused.port());
    let (_, report, _) = w.run(&["--proxy", &dead]);
    assert_eq!(kind(&report, &target), "proxy_unreachable", "{report:#}");
    let (_, report, _) = w.run(&["--proxy", "http://proxy.test:3128"]);
    assert_eq!(kind(&report, &target), "proxy_unreachable", "{report:#}");
    let message = check(&report, &target)["error"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("does not resolve"), "{message}");
}

/// A plain `http://` URL goes to an HTTP proxy whole (`GET http://…`), as curl sends it: no
/// CONNECT, so the proxy's CONNECT port list does not apply; the proxy's own error pages are
/// told apart from the target's answers.
#[test]
fn plain_http_is_forwarded_not_tunnelled() {
    let Some(w) = AuthWorld::start() else { return };
    let good = w.squid.url(Some(&format!("{USER}:{PASSWORD_IN_URL}")));
    let ok = format!("http://web.test:{}", w.web.port());
    let down = format!("http://web.test:{}/down", w.web.port());
    let gone = format!("http://web.test:{}", w.refused.port());
    let (code, report, stderr) = w.run(&["--proxy", &good, &ok, &down, &gone]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(check(&report, &ok)["status"], "ok", "{report:#}");
    assert_eq!(check(&report, &ok)["http_status"], 200);
    assert!(
        w.squid
            .logged(&format!("GET http://web.test:{}/ {USER}", w.web.port()))
    );
    // The target's own 503 is the target's; the proxy's 503 (nothing listens) is upstream.
    assert_eq!(kind(&report, &down), "http_status", "{report:#}");
    assert_eq!(kind(&report, &gone), "proxy_upstream", "{report:#}");
    let wrong = w.squid.url(Some(&format!("{USER}:nope")));
    let (_, report, _) = w.run(&["--proxy", &wrong, &ok]);
    assert_eq!(kind(&report, &ok), "proxy_auth", "{report:#}");
}

/// No output of any format, nor any error, shows the password, encoded or not.
#[test]
fn credentials_never_appear_in_any_output() {
    let Some(w) = AuthWorld::start() else { return };
    let target = format!("tls://svc.test:{}", w.tls.port());
    let good = w.squid.url(Some(&format!("{USER}:{PASSWORD_IN_URL}")));
    let wrong = w.squid.url(Some(&format!("{USER}:{PASSWORD_IN_URL}x")));
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    };
    let user = format!("{USER}:{PASSWORD}");
    let runs: Vec<Vec<String>> = vec![
        vec!["--proxy".into(), good.clone()],
        vec!["--proxy".into(), wrong.clone()],
        vec!["--proxy".into(), good.clone(), "--compare-direct".into()],
        vec![
            "--proxy".into(),
            w.squid.url(None),
            "--proxy-user".into(),
            user.clone(),
        ],
        vec![
            "--proxy".into(),
            "http://127.0.0.1:1".into(),
            "--proxy-user".into(),
            user.clone(),
        ],
        // Bad input: the error names the flag, not the password.
        vec![
            "--proxy".into(),
            format!("ftp://{USER}:{PASSWORD_IN_URL}@proxy:21"),
        ],
        vec![
            "--proxy".into(),
            format!("http://{USER}:{PASSWORD_IN_URL}@proxy:99999"),
        ],
        vec![
            "--proxy-user".into(),
            PASSWORD.into(),
            "--proxy".into(),
            good.clone(),
        ],
    ];
    let secrets = [PASSWORD, PASSWORD_IN_URL, basic.as_str()];
    let mut exits = Vec::new();
    for extra in &runs {
        for format in ["human", "json"] {
            let mut command = preflight();
            command
                .args(["check", "--format", format, "--timeout", "2s"])
                .args(["--ca-file", w.world.ca_file(), "--dns-server", &w.nxdomain])
                .arg(&target)
                .args(extra);
            let (code, stdout, stderr) = split(command.output().unwrap());
            exits.push(code);
            for secret in secrets {
                assert!(
                    !stdout.contains(secret) && !stderr.contains(secret),
                    "{extra:?} --format {format} shows a secret:\n{stdout}\n{stderr}"
                );
            }
        }
    }
    // The runs cover success, failure and bad input.
    assert!(
        exits.contains(&0) && exits.contains(&1) && exits.contains(&2),
        "{exits:?}"
    );
    // The same through the environment.
    for name in PROXY_VARIABLES
        .iter()
        .filter(|n| n.ends_with("proxy") || n.ends_with("PROXY"))
    {
        if name.contains("no_") || name.contains("NO_") {
            continue;
        }
        let mut command = preflight();
        command
            .args([
                "check",
                "--timeout",
                "2s",
                "--ca-file",
                w.world.ca_file(),
                "--dns-server",
                &w.nxdomain,
            ])
            .arg(&target)
            .env(name, &wrong);
        let (_, stdout, stderr) = split(command.output().unwrap());
        for secret in secrets {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{name}: {stdout}\n{stderr}"
            );
        }
    }
}

#[test]
fn socks5_and_socks5h_through_an_in_process_proxy() {
    let world = World::new();
    let tls = world.serve_any(Behaviour::Tls(
        world.ca.server(&["svc.test"], Validity::Current),
    ));
    let (socks, asked) = socks5(
        &world,
        SocksOptions {
            auth: Some((USER.into(), PASSWORD.into())),
            hosts: vec![("svc.test".into(), tls.ip())],
            denied_ports: vec![23],
        },
    );
    let nxdomain = world.dns(&["test"], &[], &[], &[]).to_string();
    let target = format!("tls://svc.test:{}", tls.port());
    let pin = format!("svc.test:{}:127.0.0.1", tls.port());
    let run = |proxy: &str, extra: &[&str]| {
        let mut args = vec![
            "--ca-file",
            world.ca_file(),
            "--dns-server",
            &nxdomain,
            "--timeout",
            "2s",
            "--proxy",
            proxy,
        ];
        args.extend_from_slice(extra);
        check_with_env(&args, &[])
    };
    let remote = format!("socks5h://{USER}:{PASSWORD_IN_URL}@{socks}");
    let (code, report, stderr) = run(&remote, &[&target]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    // socks5h: the proxy got the name; this host's DNS did not know it.
    assert_eq!(
        asked.lock().unwrap().last().unwrap(),
        &format!("svc.test:{}", tls.port())
    );
    assert_eq!(
        check(&report, &target)["local_dns"]["error"]["kind"],
        "nxdomain"
    );

    // socks5: this host resolves (here by --resolve) and the proxy gets the address.
    let local = format!("socks5://{USER}:{PASSWORD_IN_URL}@{socks}");
    let (code, report, stderr) = run(&local, &["--resolve", &pin, &target]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(
        asked.lock().unwrap().last().unwrap(),
        &format!("127.0.0.1:{}", tls.port())
    );
    assert_eq!(check(&report, &target)["addresses"][0]["ip"], "127.0.0.1");
    // …and without an answer from local DNS, socks5 cannot go on.
    let (_, report, _) = run(&local, &[&target]);
    assert_eq!(kind(&report, &target), "nxdomain");

    let wrong = format!("socks5h://{USER}:nope@{socks}");
    let (_, report, _) = run(&wrong, &[&target]);
    assert_eq!(kind(&report, &target), "proxy_auth", "{report:#}");
    let anonymous = format!("socks5h://{socks}");
    let (_, report, _) = run(&anonymous, &[&target]);
    assert_eq!(kind(&report, &target), "proxy_auth", "{report:#}");
    let (_, report, _) = run(&remote, &["tcp://svc.test:23", "tcp://elsewhere.test:443"]);
    assert_eq!(
        kind(&report, "tcp://svc.test:23"),
        "proxy_denied",
        "{report:#}"
    );
    assert_eq!(
        kind(&report, "tcp://elsewhere.test:443"),
        "proxy_upstream",
        "{report:#}"
    );
}

#[test]
fn https_proxy_is_reached_over_tls_and_its_certificate_checked() {
    let Some(w) = AuthWorld::start() else { return };
    let target = format!("tls://svc.test:{}", w.tls.port());
    let front = w.world.serve_any(Behaviour::TlsRelay(
        w.world.ca.server(&["proxy.test"], Validity::Current),
        w.squid.addr,
    ));
    let pin = format!("proxy.test:{}:127.0.0.1", front.port());
    let url = format!(
        "https://{USER}:{PASSWORD_IN_URL}@proxy.test:{}",
        front.port()
    );
    let (code, report, stderr) = w.run(&["--proxy", &url, "--resolve", &pin]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(
        check(&report, &target)["proxy"],
        format!("https://proxy.test:{}", front.port())
    );

    // A proxy certificate nobody vouches for: the proxy hop fails, and says why.
    let untrusted = w.world.serve_any(Behaviour::TlsRelay(
        crate::support::world::self_signed_server(&["proxy.test"]),
        w.squid.addr,
    ));
    let pin = format!("proxy.test:{}:127.0.0.1", untrusted.port());
    let url = format!(
        "https://{USER}:{PASSWORD_IN_URL}@proxy.test:{}",
        untrusted.port()
    );
    let (_, report, _) = w.run(&["--proxy", &url, "--resolve", &pin]);
    assert_eq!(kind(&report, &target), "proxy_error", "{report:#}");
    let message = check(&report, &target)["error"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("TLS to the proxy") && message.contains("cert_untrusted"),
        "{message}"
    );
}

#[test]
fn a_proxy_that_re_signs_tls_is_named() {
    let world = World::new();
    let inspection = Ca::named(
        world.dir.path(),
        "Zscaler Intermediate Root CA (zscaler.net)",
        "Zscaler Inc.",
        "zscaler.pem",
    );
    let bump = world.serve_any(Behaviour::Bump(
        inspection.server(&["x.us.cp0.konghq.com"], Validity::Current),
    ));
    let nxdomain = world
        .dns(&["konghq.com", "kongportals.com"], &[], &[], &[])
        .to_string();
    let (code, report, stderr) = check_with_env(
        &[
            "--ca-file",
            inspection.pem.to_str().unwrap(),
            "--dns-server",
            &nxdomain,
            "--timeout",
            "2s",
            "tls://x.us.cp0.konghq.com:443",
        ],
        &[("https_proxy", &format!("http://{bump}"))],
    );
    assert_eq!(code, 1, "{stderr}");
    let id = "tls://x.us.cp0.konghq.com:443";
    assert_eq!(kind(&report, id), "tls_intercepted", "{report:#}");
    assert_eq!(check(&report, id)["proxy_reason"], "https_proxy");
    assert!(
        check(&report, id)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Zscaler")
    );
}

#[test]
fn verbose_traces_dns_the_proxy_exchange_the_chain_and_tls() {
    let world = World::new();
    let tls = world.serve_any(Behaviour::Tls(
        world.ca.server(&["svc.test"], Validity::Current),
    ));
    let Some(squid) = Squid::start(&SquidOptions {
        auth: Some((USER, PASSWORD)),
        connect_ports: vec![tls.port()],
        hosts: vec![("svc.test".into(), tls.ip())],
        ..SquidOptions::default()
    }) else {
        return;
    };
    let dns = world
        .dns(&["test"], &[("svc.test", tls.ip())], &[], &[])
        .to_string();
    let target = format!("tls://svc.test:{}", tls.port());
    let proxy = squid.url(Some(&format!("{USER}:{PASSWORD_IN_URL}")));
    let mut command = preflight();
    command.args([
        "check",
        "-v",
        "--ca-file",
        world.ca_file(),
        "--dns-server",
        &dns,
    ]);
    command.args(["--proxy", &proxy, &target, "dns://svc.test"]);
    let (code, _, stderr) = split(command.output().unwrap());
    assert_eq!(code, 0, "{stderr}");
    for line in [
        format!(
            "[dns://svc.test] dns svc.test asked {dns} (--dns-server): {} (TTL 60 s)",
            tls.ip()
        ),
        format!("[{target}] connected 127.0.0.1:"),
        format!("-> the proxy http://{}", squid.addr),
        format!(
            "[{target}] proxy > CONNECT svc.test:{} HTTP/1.1",
            tls.port()
        ),
        format!("[{target}] proxy > Proxy-Authorization: Basic ***"),
        format!("[{target}] proxy < HTTP/1.1 200"),
        format!(
            "[{target}] certificate 0: subject CN=preflight test server; issuer CN=preflight test CA"
        ),
        "; SHA-256 ".to_string(),
        format!("[{target}] TLSv1.3 TLS13_"),
    ] {
        assert!(stderr.contains(&line), "no `{line}` in:\n{stderr}");
    }
    // The credentials stay out of the trace.
    assert!(
        !stderr.contains(PASSWORD) && !stderr.contains(PASSWORD_IN_URL),
        "{stderr}"
    );
}

/// A proxy of an Active Directory site: it offers Negotiate only, so neither the Basic
/// credentials preflight (and Kong) send nor none at all will do; the cause says so, and the
/// hint says what does. Missing and refused Basic credentials have causes of their own.
#[test]
fn a_proxy_that_offers_only_negotiate_is_named_and_basic_problems_apart() {
    let world = World::new();
    let tls = world.serve_any(Behaviour::Tls(
        world.ca.server(&["svc.test"], Validity::Current),
    ));
    let Some(squid) = Squid::start(&SquidOptions {
        hosts: vec![("svc.test".into(), tls.ip())],
        negotiate_only: true,
        ..SquidOptions::default()
    }) else {
        return;
    };
    let target = format!("tls://svc.test:{}", tls.port());
    let run = |proxy: &str| {
        let mut command = preflight();
        command.args([
            "check",
            "--format",
            "json",
            "--timeout",
            "3s",
            "--ca-file",
            world.ca_file(),
            "--proxy",
            proxy,
            &target,
        ]);
        let (code, stdout, stderr) = split(command.output().unwrap());
        let report: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
        crate::support::words::assert_plain_words(&report);
        (code, report)
    };
    for proxy in [squid.url(None), squid.url(Some("alice:S3cret-pw"))] {
        let (code, report) = run(&proxy);
        assert_eq!(code, 1, "{report:#}");
        let c = check(&report, &target);
        assert_eq!(c["error"]["kind"], "proxy_auth", "{c:#}");
        assert_eq!(c["error"]["cause"], "proxy_basic_not_offered", "{c:#}");
        assert!(
            c["error"]["message"]
                .as_str()
                .unwrap()
                .contains("it offers Negotiate"),
            "{c:#}"
        );
        let hint = c["error"]["hint"].as_str().unwrap();
        assert!(
            hint.contains("accepts only Negotiate sign-in")
                && hint.contains("exception")
                && hint.contains("relay"),
            "{hint}"
        );
        assert!(!report.to_string().contains("S3cret-pw"));
    }
    // The Basic proxy of the other tests: missing and refused credentials are apart.
    let Some(w) = AuthWorld::start() else { return };
    let target = format!("tls://svc.test:{}", w.tls.port());
    for (proxy, cause) in [
        (w.squid.url(None), "proxy_credentials_missing"),
        (
            w.squid.url(Some(&format!("{USER}:nope"))),
            "proxy_credentials_refused",
        ),
    ] {
        let (_, report, _) = w.run(&["--proxy", &proxy]);
        assert_eq!(
            check(&report, &target)["error"]["cause"],
            cause,
            "{report:#}"
        );
    }
}

/// A site's proxy that filters TLS by server name (squid built with OpenSSL: `ssl_bump peek`,
/// then `terminate` for one name): CONNECT is answered 200, the ClientHello read, and the
/// tunnel closed. The second opinion tunnels to the address without the name and reaches the
/// server, so the cause is the proxy's policy, with the name it filtered; another name
/// through the same proxy passes.
#[test]
fn a_proxy_that_filters_by_server_name_is_named() {
    let world = World::new();
    let tls = world.serve_any(Behaviour::Tls(
        world
            .ca
            .server(&["blocked.test", "open.test"], Validity::Current),
    ));
    let Some(squid) = Squid::start(&SquidOptions {
        hosts: vec![
            ("blocked.test".into(), tls.ip()),
            ("open.test".into(), tls.ip()),
        ],
        sni_blocked: Some("blocked.test"),
        ..SquidOptions::default()
    }) else {
        return;
    };
    let port = tls.port();
    let (blocked, open) = (
        format!("tls://blocked.test:{port}"),
        format!("tls://open.test:{port}"),
    );
    let pin = |name: &str| format!("{name}:{port}:{}", tls.ip());
    let out = preflight()
        .args([
            "check",
            "--format",
            "json",
            "--timeout",
            "3s",
            "--ca-file",
            world.ca_file(),
        ])
        .args([
            "--resolve",
            &pin("blocked.test"),
            "--resolve",
            &pin("open.test"),
        ])
        .args(["--proxy", &squid.url(None), &blocked, &open])
        .output()
        .unwrap();
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    crate::support::words::assert_plain_words(&report);
    assert_eq!(check(&report, &open)["status"], "ok");
    let c = check(&report, &blocked);
    assert_eq!(c["error"]["kind"], "sni_filtered", "{c:#}");
    assert_eq!(c["error"]["cause"], "proxy_filters_server_name", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("blocked.test") && message.contains("proxy"),
        "{message}"
    );
    let hint = c["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains(&squid.url(None)) && hint.contains("blocked.test"),
        "{hint}"
    );
}

/// An older appliance that speaks HTTP/1.0: its `200 Connection established` opens a tunnel
/// that works, and its own `504 Gateway Timeout` page (no squid header) is the proxy's wait
/// for the target running out, named as such.
#[test]
fn an_http_1_0_appliance_tunnels_and_its_504_is_named() {
    use std::io::Write;
    let world = World::new();
    let tls = world.serve_any(Behaviour::Tls(
        world.ca.server(&["svc.test"], Validity::Current),
    ));
    let upstream = tls.port();
    let appliance = crate::support::raw::raw_server(move |mut client| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match std::io::Read::read(&mut client, &mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        if String::from_utf8_lossy(&head).contains("slow.test") {
            let _ = client.write_all(
                b"HTTP/1.0 504 Gateway Timeout\r\nContent-Type: text/html\r\n\r\n<html><title>Gateway Timeout</title></html>",
            );
            return;
        }
        let Ok(mut server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        let _ = client.write_all(b"HTTP/1.0 200 Connection established\r\n\r\n");
        let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut s2, &mut c2);
        });
        let _ = std::io::copy(&mut client, &mut server);
    });
    let (ok, slow) = (
        format!("tls://svc.test:{upstream}"),
        format!("tls://slow.test:{upstream}"),
    );
    let out = preflight()
        .args([
            "check",
            "--format",
            "json",
            "--timeout",
            "3s",
            "--ca-file",
            world.ca_file(),
        ])
        .args(["--proxy", &format!("http://{appliance}"), &ok, &slow])
        .output()
        .unwrap();
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    crate::support::words::assert_plain_words(&report);
    assert_eq!(check(&report, &ok)["status"], "ok", "{report:#}");
    let c = check(&report, &slow);
    assert_eq!(c["error"]["kind"], "proxy_upstream", "{c:#}");
    assert_eq!(c["error"]["cause"], "proxy_target_silent", "{c:#}");
    assert!(
        c["error"]["message"].as_str().unwrap().contains("504"),
        "{c:#}"
    );
}

/// curl's names for the same things: `--cacert`, `-x` and `--noproxy` are `--ca-file`,
/// `--proxy` and `--no-proxy`.
#[test]
fn curls_names_for_the_ca_file_the_proxy_and_its_exceptions_are_accepted() {
    let world = World::new();
    let tls = world.serve_any(Behaviour::Tls(
        world.ca.server(&["localhost"], Validity::Current),
    ));
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = format!("tls://localhost:{}", tls.port());
    let proxy = format!("http://{dead}");
    let run = |extra: &[&str]| {
        let out = preflight()
            .args([
                "check",
                "--format",
                "json",
                "--timeout",
                "2s",
                "--cacert",
                world.ca_file(),
            ])
            .args(extra)
            .arg(&target)
            .output()
            .unwrap();
        let (code, stdout, stderr) = split(out);
        let report: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
        (code, check(&report, &target).clone())
    };
    let (code, c) = run(&[]);
    assert_eq!(code, 0, "{c:#}");
    let (code, c) = run(&["-x", &proxy]);
    assert_eq!(code, 1);
    assert_eq!(c["error"]["kind"], "proxy_unreachable", "{c:#}");
    let (code, c) = run(&["-x", &proxy, "--noproxy", "localhost"]);
    assert_eq!(code, 0, "{c:#}");
}
