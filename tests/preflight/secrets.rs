//! What a user typed or a peer sent, shown safely: no credential in any message or report, no
//! escape sequence from a certificate or a proxy reaching a terminal or a Markdown table, and
//! hostile answers named for what they are.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, DnValue};

use crate::support::raw::{raw_server, read_some};
use crate::support::world::{Behaviour, World, check, check_json, preflight, run, split};

const PASSWORD: &str = "S3cretPw";

/// Every way a credential-bearing URL is mistyped or holds characters that end a URL's parts.
fn leaky_urls() -> Vec<String> {
    [
        "http://alice:S3cretPw/x@proxy.test:3128",
        "http://alice:S3cretPw#x@proxy.test:3128",
        "http://alice:S3cretPw?x@proxy.test:3128",
        "http:/alice:S3cretPw@proxy.test:3128",
        "http//alice:S3cretPw@proxy.test:3128",
        "ftp://alice:S3cretPw@proxy.test:21",
    ]
    .map(String::from)
    .to_vec()
}

fn assert_clean(what: &str, code: i32, stdout: &str, stderr: &str) {
    assert_eq!(code, 2, "{what}: {stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    for secret in [PASSWORD, "alice"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{what} leaks {secret}: {stdout}{stderr}"
        );
    }
}

#[test]
fn no_place_that_echoes_input_shows_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("kong.conf");
    for url in leaky_urls() {
        // --proxy, for check and allowlist.
        for command in ["check", "allowlist"] {
            let (code, stdout, stderr) = run(&[command, "--proxy", &url, "tcp://127.0.0.1:9"]);
            assert_clean(&format!("{command} --proxy {url}"), code, &stdout, &stderr);
        }
        // The proxy variables.
        for variable in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "http_proxy"] {
            let out = preflight()
                .args(["check", "tls://127.0.0.1:9"])
                .env(variable, &url)
                .output()
                .unwrap();
            let (code, stdout, stderr) = split(out);
            assert_clean(&format!("{variable}={url}"), code, &stdout, &stderr);
        }
        // kong.conf's proxy_server, in the file and from KONG_PROXY_SERVER.
        let base = "role = data_plane\ncluster_control_plane = cp.test:443\ncluster_mtls = pki\ncluster_use_proxy = on\n";
        std::fs::write(&conf, format!("{base}proxy_server = {url}\n")).unwrap();
        let (code, stdout, stderr) = run(&["check", "--kong-conf", conf.to_str().unwrap()]);
        assert_clean(&format!("kong.conf {url}"), code, &stdout, &stderr);
        std::fs::write(&conf, base).unwrap();
        let out = preflight()
            .args(["check", "--kong-conf", conf.to_str().unwrap()])
            .env("KONG_PROXY_SERVER", &url)
            .output()
            .unwrap();
        let (code, stdout, stderr) = split(out);
        assert_clean(&format!("KONG_PROXY_SERVER={url}"), code, &stdout, &stderr);
    }
    // Targets with userinfo, on the command line and in a targets file.
    let targets = dir.path().join("targets.txt");
    for target in [
        "https://alice:S3cretPw/x@h.test/",
        "https://alice:S3cretPw@h.test/",
        "wss://alice:S3cretPw#x@h.test/",
    ] {
        let (code, stdout, stderr) = run(&["check", target]);
        assert_clean(target, code, &stdout, &stderr);
        std::fs::write(&targets, format!("{target}\n")).unwrap();
        let (code, stdout, stderr) = run(&["check", "--targets-file", targets.to_str().unwrap()]);
        assert_clean(&format!("targets file {target}"), code, &stdout, &stderr);
    }
}

/// A proxy that quotes the Proxy-Authorization it was sent back in its answer's headers,
/// with `status`.
fn echoing_proxy(status: &'static str) -> std::net::SocketAddr {
    raw_server(move |mut stream| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let sent = head
            .lines()
            .find_map(|l| l.strip_prefix("Proxy-Authorization: "))
            .unwrap_or("")
            .to_string();
        let token = sent.strip_prefix("Basic ").unwrap_or("");
        let answer = format!(
            "HTTP/1.1 {status}\r\nProxy-Authenticate: Basic realm=\"you sent {sent}\"\r\nX-Squid-Error: ERR_{token} alice:{PASSWORD}\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = stream.write_all(answer.as_bytes());
        std::thread::sleep(Duration::from_millis(200));
    })
}

#[test]
fn a_proxy_that_echoes_the_credentials_does_not_put_them_in_any_report() {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}"));
    for status in ["407 Proxy Authentication Required", "502 Bad Gateway"] {
        let proxy = echoing_proxy(status);
        let url = format!("http://alice:{PASSWORD}@{proxy}");
        for format in ["json", "human", "markdown", "junit"] {
            let (code, stdout, stderr) = run(&[
                "check",
                "--format",
                format,
                "--proxy",
                &url,
                "tls://cp.test:443",
            ]);
            assert_eq!(code, 1, "{stdout}{stderr}");
            for secret in [PASSWORD, token.as_str()] {
                assert!(
                    !stdout.contains(secret) && !stderr.contains(secret),
                    "{status} as {format} leaks {secret}: {stdout}"
                );
            }
        }
    }
}

#[test]
fn a_certificate_cannot_drive_the_terminal_or_break_the_markdown_table() {
    let world = World::new();
    let mut params = CertificateParams::new(vec!["cp.test".to_string()]).unwrap();
    let hostile = "Evil\x1b]0;owned\x07\x1b[2J\r\n  [ ok ] forged | cell";
    params.distinguished_name.push(DnType::CommonName, hostile);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Org\r\n| x | y |");
    let server = world.serve_any(Behaviour::Tls(crate::support::world::self_signed_from(
        params,
    )));
    let target = format!("tls://{server}");
    let (code, human, _) = run(&["check", "--color", "never", &target]);
    assert_eq!(code, 1, "{human}");
    assert!(human.contains("Evil\\x1b]0;owned\\x07"), "{human}");
    assert!(
        !human.contains('\x1b') && !human.contains('\r'),
        "{human:?}"
    );
    assert!(!human.contains("\n  [ ok ] forged"), "{human}");
    let (_, markdown, _) = run(&["check", "--format", "markdown", &target]);
    assert!(
        !markdown.contains('\x1b') && !markdown.contains('\r'),
        "{markdown:?}"
    );
    // Every table row still has its five cells: no pipe or line break from the peer counts.
    for row in markdown.lines().filter(|l| l.starts_with("| ")) {
        let cells = row.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 6, "{row}");
    }
    // JSON keeps the text as it is, escaped by JSON itself.
    let (_, report) = check_json(&[&target]);
    let issuer = check(&report, &target)["tls"]["issuer"].as_str().unwrap();
    assert!(issuer.contains('\x1b'), "{issuer:?}");
}

#[test]
fn a_name_in_an_old_string_type_is_shown_and_a_long_name_list_is_cut() {
    let world = World::new();
    let mut params = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        DnValue::TeletexString(rcgen::string::TeletexString::try_from("Old CA").unwrap()),
    );
    let old = world.serve_any(Behaviour::Tls(crate::support::world::self_signed_from(
        params,
    )));
    let names: Vec<String> = (0..3_000).map(|i| format!("n{i}.test")).collect();
    let many = world.serve_any(Behaviour::Tls(crate::support::world::self_signed_from(
        CertificateParams::new(names).unwrap(),
    )));
    let ca = world.dir.path().join("many.pem");
    // Trust each server's own certificate, so that the name is what fails.
    let pem = |addr: std::net::SocketAddr| {
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-showcerts"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let start = text.find("-----BEGIN CERTIFICATE-----").unwrap();
        let end = text.find("-----END CERTIFICATE-----").unwrap() + 25;
        format!("{}\n", &text[start..end])
    };
    std::fs::write(&ca, pem(many)).unwrap();
    let (_, report) = check_json(&[&format!("tls://{old}")]);
    let issuer = check(&report, &format!("tls://{old}"))["tls"]["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(issuer, "CN=Old CA");
    let target = format!("tls://elsewhere.test:{}", many.port());
    let (code, report) = check_json(&[
        "--ca-file",
        ca.to_str().unwrap(),
        "--resolve",
        &format!("elsewhere.test:{}:127.0.0.1", many.port()),
        &target,
    ]);
    assert_eq!(code, 1);
    let error = &check(&report, &target)["error"];
    assert_eq!(error["kind"], "cert_name_mismatch", "{error:#}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("and 2990 more"), "{message}");
    assert!(message.len() < 1_000, "{} bytes", message.len());
}

#[test]
fn hostile_proxies_are_named_for_what_they_do() {
    // A SOCKS5 proxy whose reply code SOCKS5 does not define.
    let socks = raw_server(|mut stream| {
        let mut greeting = [0u8; 3];
        let _ = stream.read_exact(&mut greeting);
        let _ = stream.write_all(&[5, 0]);
        read_some(&mut stream);
        let _ = stream.write_all(&[5, 0x42, 0, 1, 0, 0, 0, 0, 0, 0]);
        std::thread::sleep(Duration::from_millis(200));
    });
    // An HTTP proxy that answers CONNECT with interim responses for ever.
    let continues = raw_server(|mut stream: TcpStream| {
        read_some(&mut stream);
        while stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (_, report) = check_json(&[
        "--proxy",
        &format!("socks5h://{socks}"),
        "tcp://cp.test:443",
    ]);
    let message = check(&report, "tcp://cp.test:443")["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("a code SOCKS5 does not define"),
        "{message}"
    );
    assert!(!message.contains("Unknown auth method"), "{message}");
    let (_, report) = check_json(&[
        "--timeout",
        "1s",
        "--proxy",
        &format!("http://{continues}"),
        "tcp://cp.test:443",
    ]);
    let error = &check(&report, "tcp://cp.test:443")["error"];
    assert_eq!(error["kind"], "proxy_error", "{error:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("interim responses"),
        "{error:#}"
    );
}

#[test]
fn a_handshake_message_too_large_to_buffer_is_the_peers_fault() {
    // A ServerHello of almost 64 KB (within what TLS allows), sent in one-byte records: more
    // than rustls buffers while it joins them.
    let server = raw_server(|mut stream| {
        read_some(&mut stream);
        let mut message = vec![2u8, 0x00, 0xff, 0xf0];
        message.extend(std::iter::repeat_n(0u8, 0xfff0));
        for byte in message {
            if stream
                .write_all(&[0x16, 0x03, 0x03, 0x00, 0x01, byte])
                .is_err()
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    });
    let target = format!("tls://{server}");
    let (_, report) = check_json(&["--timeout", "5s", &target]);
    let error = &check(&report, &target)["error"];
    assert_eq!(error["kind"], "tls_handshake", "{error:#}");
    assert!(
        !error["hint"].as_str().unwrap().contains("ulimit"),
        "{error:#}"
    );
}
