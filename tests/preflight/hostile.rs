//! Hostile and broken peers, each a loopback server: every one ends within the phase timeout
//! with a named failure, and with memory bounded (the binary runs under a 1 GiB address-space
//! limit, so a peer that made it buffer without end would crash it).

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

use crate::support::raw::{raw_server, read_some};
use crate::support::world::{Behaviour, World, check, kind, preflight, split};

/// The phase timeout of these runs, and the most any may take: the timeout, plus start-up.
const TIMEOUT: &str = "1s";
const WITHIN: Duration = Duration::from_secs(4);

/// Runs `check --format json --timeout 1s ARGS` under a 1 GiB address-space limit: the exit
/// code, the report, and how long it took.
fn bounded(args: &[&str]) -> (i32, Value, Duration) {
    let program = preflight().get_program().to_owned();
    let started = Instant::now();
    let (code, stdout, stderr) = split(
        Command::new("sh")
            .args(["-c", r#"ulimit -v 1048576 && exec "$@""#, "sh"])
            .arg(program)
            .args(["check", "--format", "json", "--timeout", TIMEOUT])
            .args(args)
            .output()
            .unwrap(),
    );
    let took = started.elapsed();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("exit {code}, {e}: {stdout}{stderr}"));
    crate::support::words::assert_plain_words(&report);
    (code, report, took)
}

/// Writes `bytes` one a second until the client goes away.
fn trickle(stream: &mut TcpStream, bytes: &[u8]) {
    for byte in bytes.iter().cycle() {
        if stream.write_all(&[*byte]).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Writes `line` over and over until the client goes away.
fn flood(stream: &mut TcpStream, head: &[u8], line: &[u8]) {
    if stream.write_all(head).is_err() {
        return;
    }
    let lines = line.repeat(1024);
    while stream.write_all(&lines).is_ok() {}
}

#[test]
fn a_tls_server_trickling_its_handshake_is_a_tls_timeout() {
    let addr = raw_server(|mut s| {
        read_some(&mut s);
        // A handshake record header, one byte a second.
        trickle(&mut s, &[0x16, 0x03, 0x03, 0x40, 0x00, 0x02]);
    });
    let target = format!("tls://{addr}");
    let (code, report, took) = bounded(&[&target]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, &target), "tls_timeout");
    assert!(took < WITHIN, "{took:?}");
}

#[test]
fn an_http_server_trickling_its_headers_is_an_http_timeout() {
    let addr = raw_server(|mut s| {
        read_some(&mut s);
        trickle(&mut s, b"HTTP/1.1 200 OK\r\nX-Slow: ");
    });
    let target = format!("http://{addr}");
    let (code, report, took) = bounded(&[&target]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, &target), "http_timeout");
    assert!(took < WITHIN, "{took:?}");
}

#[test]
fn an_http_server_that_never_ends_its_headers_is_an_http_error() {
    let addr = raw_server(|mut s| {
        read_some(&mut s);
        flood(
            &mut s,
            b"HTTP/1.1 200 OK\r\n",
            b"X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    });
    let target = format!("http://{addr}");
    let (code, report, took) = bounded(&[&target]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, &target), "http_error");
    assert!(took < WITHIN, "{took:?}");
}

#[test]
fn a_proxy_answering_connect_with_an_endless_header_is_a_proxy_error() {
    let proxy = raw_server(|mut s| {
        read_some(&mut s);
        flood(
            &mut s,
            b"HTTP/1.1 200 Connection established\r\n",
            b"Via: 1.1 an-endless-proxy-header-line\r\n",
        );
    });
    let target = "tls://service.example.test:443";
    let (code, report, took) = bounded(&["--proxy", &format!("http://{proxy}"), target]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, target), "proxy_error");
    assert!(took < WITHIN, "{took:?}");
}

#[test]
fn a_multi_megabyte_certificate_chain_is_refused_not_buffered() {
    // A 60 KB certificate (an opaque extension), sent 64 times: a 3.8 MB chain.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["big.test".to_string()]).unwrap();
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 99999, 1],
            vec![0x41; 60_000],
        ));
    let cert = params.self_signed(&key).unwrap();
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(); 64];
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                chain,
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
    let world = World::new();
    let addr = world.serve_any(Behaviour::Tls(Arc::new(config)));
    let target = format!("tls://big.test:{}", addr.port());
    let pin = format!("big.test:{}:127.0.0.1", addr.port());
    let (code, report, took) = bounded(&["--resolve", &pin, &target]);
    assert_eq!(code, 1);
    assert_eq!(
        kind(&report, &target),
        "tls_handshake",
        "{}",
        check(&report, &target)
    );
    assert!(took < WITHIN, "{took:?}");
}

/// A DNS server on 127.0.0.1 that answers every query with `answer(query)`.
fn raw_dns(answer: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&answer(&buf[..n]), from);
        }
    });
    addr
}

#[test]
fn a_dns_server_answering_garbage_or_truncated_packets_is_a_named_dns_failure() {
    let garbage = raw_dns(|_| (0..512).map(|i| (i * 7 + 13) as u8).collect());
    // The query's ID, then the header cut short.
    let truncated = raw_dns(|query| query[..query.len().min(5)].to_vec());
    for server in [garbage, truncated] {
        let (code, report, took) = bounded(&[
            "--dns-server",
            &server.to_string(),
            "dns://name.example.test",
        ]);
        assert_eq!(code, 1);
        let kind = kind(&report, "dns://name.example.test");
        assert!(
            matches!(kind, "dns_timeout" | "dns_error"),
            "{server}: {kind}"
        );
        assert!(took < WITHIN, "{took:?}");
    }
}
