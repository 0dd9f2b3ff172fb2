//! Verdicts in the messy real network (issue 28, the parts done so far): a host without a
//! route of the name's family, named as this host's, not a router's.

use serde_json::Value;

use crate::support::world::{check, in_namespace, namespace_ready, split};

/// The JSON report of a run that must exit 1, its words checked.
fn failed_run(out: std::process::Output) -> Value {
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    crate::support::words::assert_plain_words(&report);
    report
}

/// An IPv6-only name on a host without IPv6 connectivity (a private namespace with loopback
/// only): the connect fails at once with no route, and the failure is this host's, named
/// without the OS's error number, with no hop trace blaming a router.
#[test]
fn a_family_this_host_cannot_route_is_named_as_this_hosts() {
    if !namespace_ready("a host without routes", &["ip", "nft"]) {
        return;
    }
    let out = in_namespace(
        "table inet empty {}\n",
        env!("CARGO_BIN_EXE_preflight").as_ref(),
    )
    .args([
        "check",
        "--format",
        "json",
        "--timeout",
        "2s",
        "--resolve",
        "cp6.example.test:443:2001:db8::1",
        "tls://cp6.example.test:443",
    ])
    .output()
    .unwrap();
    let report = failed_run(out);
    let c = check(&report, "tls://cp6.example.test:443");
    assert_eq!(c["error"]["kind"], "unreachable", "{c:#}");
    assert_eq!(c["error"]["cause"], "no_route_on_this_host", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(message.contains("no IPv6 route"), "{message}");
    let hint = c["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("over IPv4") && !hint.contains("router"),
        "{hint}"
    );
    // Nothing left the host: no trace of hops.
    assert!(
        c["trace"].is_null() && c["second_opinion"].is_null(),
        "{c:#}"
    );
}

/// An nginx that terminates TLS in front of a mutual-TLS control plane (as a load balancer
/// does): it never asks for the node's certificate, and its own connection to the control
/// plane carries none, so the upgrade fails at the edge. The cause says the certificate never
/// reaches Kong, not that none was given.
#[test]
fn tls_terminated_in_front_of_the_control_plane_is_named() {
    let world = crate::support::world::World::new();
    let (cp, _) = crate::cluster_upgrade::control_plane(&world, 101);
    let (crt, key) = world
        .ca
        .server_files(world.dir.path(), "edge", &["cp.test"]);
    let tls = format!(
        "ssl_certificate {};\n        ssl_certificate_key {};\n        location /v1/outlet {{ proxy_pass https://{cp}; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade; }}",
        crt.display(),
        key.display()
    );
    let Some(edge) = crate::support::servers::Nginx::start(world.dir.path(), &tls) else {
        crate::support::skip("nginx is not installed (apt-get install nginx)");
        return;
    };
    let conf = crate::cluster_upgrade::kong_conf(&world, edge.addr);
    let out = crate::support::world::preflight()
        .args([
            "check",
            "--format",
            "json",
            "--timeout",
            "3s",
            "--kong-conf",
            &conf,
        ])
        .output()
        .unwrap();
    let report = failed_run(out);
    let c = check(&report, "kong.conf.control-plane");
    assert_eq!(c["tls"]["client_cert_requested"], false, "{c:#}");
    assert_eq!(c["error"]["cause"], "client_cert_not_asked", "{c:#}");
    let hint = c["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("pass TLS through"), "{hint}");
    assert!(
        !c["error"]["message"]
            .as_str()
            .unwrap()
            .contains("none was given"),
        "{c:#}"
    );
}

/// The JSON report of a run on `host` that must exit `code`, its words checked.
fn host_run(host: &crate::support::host::Host, code: i32, args: &[&str]) -> Value {
    let mut all = vec!["check", "--format", "json", "--timeout", "2s"];
    all.extend_from_slice(args);
    let (got, stdout, stderr) = split(host.preflight(&all));
    assert_eq!(got, code, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    crate::support::words::assert_plain_words(&report);
    report
}

/// The company's zone answers every name under it (a wildcard), and the host's search list
/// with `ndots:5` asks `cp.example.net.corp.example` before `cp.example.net`: the check fails
/// on the wildcard's address, and the cause names the expansion and the ndots that fixes it.
/// A pin in /etc/hosts wins over the search list (glibc and Kong read it first): no false
/// alarm; and with the ndots the hint gives, the name as given is asked first and passes.
#[test]
fn a_search_list_expansion_is_named_and_a_hosts_pin_wins_over_it() {
    let Some(mut host) = crate::support::host::Host::new(
        "",
        &[
            "--host-record=cp.example.net,127.0.0.2",
            "--address=/corp.example/127.0.0.9",
        ],
    ) else {
        return;
    };
    host.listen("127.0.0.2:8443");
    let target = "tcp://cp.example.net:8443";
    let resolv = "nameserver 127.0.0.1\nsearch corp.example\noptions ndots:5\n";
    host.files(resolv, "127.0.0.1 localhost\n", "hosts: files dns\n");
    let report = host_run(&host, 1, &[target]);
    let c = check(&report, target);
    assert_eq!(c["error"]["kind"], "refused", "{c:#}");
    assert_eq!(c["error"]["cause"], "search_list_expansion", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cp.example.net.corp.example") && message.contains("127.0.0.2"),
        "{message}"
    );
    let hint = c["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("ndots:2"), "{hint}");

    // The pin in /etc/hosts is read before DNS: the search list never runs.
    host.files(
        resolv,
        "127.0.0.1 localhost\n127.0.0.2 cp.example.net\n",
        "hosts: files dns\n",
    );
    host_run(&host, 0, &[target]);
    // The hint's fix: the name as given is asked first.
    host.files(
        "nameserver 127.0.0.1\nsearch corp.example\noptions ndots:2\n",
        "127.0.0.1 localhost\n",
        "hosts: files dns\n",
    );
    host_run(&host, 0, &[target]);
}

/// /etc/hosts pins the name to an address where nothing answers any more, while DNS gives the
/// one that works: the pin is named as stale, with its line and the address to put there.
/// With nsswitch.conf reading DNS first, the same files pass.
#[test]
fn a_stale_hosts_pin_is_named_with_its_line() {
    let Some(mut host) =
        crate::support::host::Host::new("", &["--host-record=cp.example.net,127.0.0.2"])
    else {
        return;
    };
    host.listen("127.0.0.2:8443");
    let target = "tcp://cp.example.net:8443";
    let hosts = "127.0.0.1 localhost\n# the control plane\n127.0.0.7 cp.example.net\n";
    host.files("nameserver 127.0.0.1\n", hosts, "hosts: files dns\n");
    let report = host_run(&host, 1, &[target]);
    let c = check(&report, target);
    assert_eq!(c["error"]["kind"], "refused", "{c:#}");
    assert_eq!(c["error"]["cause"], "stale_hosts_pin", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(message.contains("/etc/hosts (line 3)"), "{message}");
    let hint = c["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("line 3 of /etc/hosts to 127.0.0.2"), "{hint}");
    host.files("nameserver 127.0.0.1\n", hosts, "hosts: dns files\n");
    host_run(&host, 0, &[target]);
}

/// An air-gapped node pins its control plane in /etc/hosts with an IPv4 address only, and no
/// DNS server answers: getaddrinfo answers from the file for every family, and so does
/// preflight (no AAAA query to wait for). A name that is not pinned still fails on the DNS.
#[test]
fn an_ipv4_pin_in_hosts_answers_while_no_dns_server_does() {
    let silent = "table inet t { chain o { type filter hook output priority 0; udp dport 53 drop; tcp dport 53 drop; }; }\n";
    // A server that drops every query, and one where nothing listens (refused at once).
    for (rules, server) in [(silent, "127.0.0.1"), ("", "127.0.0.53")] {
        let Some(mut host) = crate::support::host::Host::new(rules, &[]) else {
            return;
        };
        host.listen("127.0.0.2:8443");
        host.files(
            &format!("nameserver {server}\n"),
            "127.0.0.1 localhost\n127.0.0.2 cp.example.net\n",
            "hosts: files dns\n",
        );
        let report = host_run(
            &host,
            1,
            &["tcp://cp.example.net:8443", "tcp://other.example.net:8443"],
        );
        let pinned = check(&report, "tcp://cp.example.net:8443");
        assert_eq!(pinned["status"], "ok", "{server}: {pinned:#}");
        let other = check(&report, "tcp://other.example.net:8443");
        assert_eq!(other["error"]["phase"], "dns", "{other:#}");
        // With DNS first (`hosts: dns files`), a DNS that cannot be asked goes on to the file.
        host.files(
            &format!("nameserver {server}\n"),
            "127.0.0.1 localhost\n127.0.0.2 cp.example.net\n",
            "hosts: dns files\n",
        );
        let report = host_run(&host, 0, &["tcp://cp.example.net:8443"]);
        assert_eq!(check(&report, "tcp://cp.example.net:8443")["status"], "ok");
    }
}

/// A name whose answer does not fit in UDP (dnsmasq truncates it) on a host whose firewall
/// lets only UDP port 53 out: named as the truncation and the closed TCP port, not a timeout.
#[test]
fn a_truncated_answer_with_tcp_53_blocked_is_named() {
    let records: Vec<String> = (1..=40)
        .map(|i| format!("--host-record=big.example.net,127.0.1.{i}"))
        .collect();
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    let blocked =
        "table inet t { chain o { type filter hook output priority 0; tcp dport 53 drop; }; }\n";
    let Some(host) = crate::support::host::Host::new(blocked, &records) else {
        return;
    };
    let report = host_run(&host, 1, &["tcp://big.example.net:8443"]);
    let c = check(&report, "tcp://big.example.net:8443");
    assert_eq!(c["error"]["cause"], "dns_tcp_blocked", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("truncated") && message.contains("127.0.0.1:53"),
        "{message}"
    );
    let hint = c["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("TCP port 53"), "{hint}");
}

/// A load balancer (nginx) terminates TLS in front of a service the profile says requires
/// mutual TLS; the node's certificate is given and never asked for. A plain `tls` check has
/// no upgrade to fail, so this is a warning of its own, not a pass in silence.
#[test]
fn tls_terminated_in_front_of_a_mutual_tls_service_warns() {
    let world = crate::support::world::World::new();
    let dir = world.dir.path();
    let (crt, key) = world.ca.server_files(dir, "edge", &["svc.test"]);
    let tls = format!(
        "ssl_certificate {};\n        ssl_certificate_key {};",
        crt.display(),
        key.display()
    );
    let Some(edge) = crate::support::servers::Nginx::start(dir, &tls) else {
        crate::support::skip("nginx is not installed (apt-get install nginx)");
        return;
    };
    let (client_crt, client_key) = world.ca.client(dir, "node", &rcgen::PKCS_ECDSA_P256_SHA256);
    let profile = dir.join("mtls.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"mtls\"\ndescription = \"d\"\n[[endpoints]]\nkey = \"svc\"\nname = \"Service\"\nrole = \"telemetry\"\nhost = \"svc.test\"\nport = {}\nprobe = \"tls\"\nclient_cert = true\nnote = \"n\"\n",
            edge.addr.port()
        ),
    )
    .unwrap();
    let pin = format!("svc.test:{}:127.0.0.1", edge.addr.port());
    let run = || {
        crate::support::world::preflight()
            .args(["check", "--format", "json", "--profile"])
            .arg(&profile)
            .args(["--ca-file", world.ca_file(), "--resolve", &pin])
            .arg("--client-cert")
            .arg(&client_crt)
            .arg("--client-key")
            .arg(&client_key)
            .output()
            .unwrap()
    };
    let out = run();
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    crate::support::words::assert_plain_words(&report);
    let c = check(&report, "mtls.svc");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert_eq!(c["error"]["kind"], "client_cert_not_requested", "{c:#}");
    assert!(
        c["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("pass TLS through"),
        "{c:#}"
    );

    // The same edge in front of what the profile calls a control plane: the node's own
    // upgrade follows and fails, and nothing says that mutual TLS was completed.
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(&profile, text.replace("\"telemetry\"", "\"control-plane\"")).unwrap();
    let out = run();
    let report = failed_run(out);
    let c = check(&report, "mtls.svc");
    assert_eq!(c["error"]["cause"], "client_cert_not_asked", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(!message.contains("mutual"), "{message}");
}

/// A host set up for a proxy (in /etc/environment and apt's configuration) that the run did
/// not use: every public address times out while DNS answers. The notes name each place, with
/// the credentials cut, and the flag to try; no traffic goes to the proxy found.
#[test]
fn the_proxy_this_host_is_set_up_for_is_named_when_every_public_address_times_out() {
    let Some(host) =
        crate::support::host::Host::new("", &["--host-record=cp.example.net,203.0.113.10"])
    else {
        return;
    };
    host.route_to_nowhere();
    host.etc(
        "environment",
        "PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin\"\nhttps_proxy=http://node:s3cret@proxy.corp.example:3128\n",
    );
    host.etc(
        "apt/apt.conf.d/95proxy",
        "Acquire::http::Proxy \"http://proxy.corp.example:3128\";\n",
    );
    let report = host_run(
        &host,
        1,
        &[
            "--no-trace",
            "tcp://cp.example.net:443",
            "dns://cp.example.net",
        ],
    );
    let c = check(&report, "tcp://cp.example.net:443");
    assert_eq!(c["error"]["kind"], "timeout", "{c:#}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains(
            "/etc/environment (line 2) sets https_proxy = http://proxy.corp.example:3128"
        ),
        "{notes}"
    );
    assert!(
        notes.contains("/etc/apt/apt.conf.d/95proxy (line 1)"),
        "{notes}"
    );
    assert!(
        notes.contains("--proxy http://proxy.corp.example:3128"),
        "{notes}"
    );
    assert!(!notes.contains("s3cret"), "{notes}");
    // A run that connects to no public address says nothing of it.
    let quiet = host_run(&host, 0, &["dns://cp.example.net"]);
    assert!(
        !quiet["notes"].to_string().contains("set up for one"),
        "{quiet:#}"
    );
}

/// The network announces its proxy by WPAD: the host's search domain is a branch of the
/// company's, whose `wpad` name serves a proxy auto-config file (nginx, as sites serve it).
/// `--discover-proxy` asks the branch's name, then its parent's, fetches the file once and
/// names the proxies it gives; without the flag nothing is fetched, and nothing is ever sent
/// to a proxy found.
#[test]
fn discover_proxy_names_the_proxies_of_the_networks_wpad_file() {
    let Some(mut host) = crate::support::host::Host::new(
        "",
        &[
            "--host-record=cp.example.net,203.0.113.10",
            "--host-record=wpad.example.org,192.0.2.1",
            "--local=/example.org/",
        ],
    ) else {
        return;
    };
    host.route_to_nowhere();
    host.files(
        "search branch.example.org\nnameserver 127.0.0.1\n",
        "127.0.0.1 localhost\n",
        "hosts: files dns\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // A PAC file as sites write one: direct for the company's names, the proxy for the rest.
    std::fs::write(
        dir.path().join("wpad.dat"),
        "function FindProxyForURL(url, host) {\n  // \"PROXY old.example.org:9\" is retired\n  if (isPlainHostName(host) || dnsDomainIs(host, \".example.org\")) return \"DIRECT\";\n  if (shExpMatch(host, \"*.example.net\")) return \"PROXY proxy.example.org:3128; DIRECT\";\n  return \"PROXY fallback.example.org:8080\";\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{ worker_connections 16; }}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  types {{ application/x-ns-proxy-autoconfig dat; }}\n  server {{\n    listen 192.0.2.1:80;\n    root {d};\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let conf = format!("{d}/nginx.conf");
    host.serve(&["nginx", "-p", &d.to_string(), "-c", &conf]);
    crate::support::wait_until("nginx listens", std::time::Duration::from_secs(10), || {
        host.listening(80)
    });
    let fetched = || {
        std::fs::read_to_string(dir.path().join("access.log"))
            .unwrap_or_default()
            .matches("GET /wpad.dat")
            .count()
    };
    // Without the flag: the places a host keeps its proxy, nothing fetched.
    let report = host_run(&host, 1, &["--no-trace", "tcp://cp.example.net:443"]);
    assert!(!report["notes"].to_string().contains("WPAD"), "{report:#}");
    assert_eq!(fetched(), 0);

    let report = host_run(
        &host,
        1,
        &["--no-trace", "--discover-proxy", "tcp://cp.example.net:443"],
    );
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("WPAD: http://wpad.example.org/wpad.dat serves a proxy auto-config file"),
        "{notes}"
    );
    assert!(
        notes.contains("proxy.example.org:3128, fallback.example.org:8080"),
        "{notes}"
    );
    assert!(!notes.contains("old.example.org"), "{notes}");
    assert!(
        notes.contains("Try --proxy http://proxy.example.org:3128"),
        "{notes}"
    );
    assert_eq!(fetched(), 1);

    // A network with no wpad name: the names asked are said.
    host.files(
        "search branch.example.com\nnameserver 127.0.0.1\n",
        "127.0.0.1 localhost\n",
        "hosts: files dns\n",
    );
    let report = host_run(
        &host,
        1,
        &["--no-trace", "--discover-proxy", "tcp://cp.example.net:443"],
    );
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("none of wpad.branch.example.com, wpad.example.com resolves"),
        "{notes}"
    );
}

/// curl's `--connect-timeout`, in its plain seconds: the connect gives up then, while the
/// other phases keep `--timeout`.
#[test]
fn connect_timeout_in_curls_seconds_bounds_the_connect_alone() {
    let Some(host) = crate::support::host::Host::new("", &[]) else {
        return;
    };
    host.route_to_nowhere();
    let target = "tcp://203.0.113.10:443";
    let mut args = vec!["check", "--format", "json", "--timeout", "10s"];
    args.extend(["--connect-timeout", "0.5", "--no-trace", target]);
    let (code, stdout, stderr) = split(host.preflight(&args));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let c = check(&report, target);
    assert_eq!(c["error"]["kind"], "timeout", "{c:#}");
    let message = c["error"]["message"].as_str().unwrap();
    assert!(message.contains("within 500 ms"), "{message}");
    assert!(
        report["duration_ms"].as_f64().unwrap() < 5000.0,
        "{report:#}"
    );
}
