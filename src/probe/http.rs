//! HTTP/1.1 requests and WebSocket upgrades (hyper) over a connection the earlier phases
//! checked: the status, the time to the first byte, and for WebSocket the upgrade handshake.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST, HeaderValue, PROXY_AUTHORIZATION, UPGRADE, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::Budget;
use super::proxy::Forwarded;
use crate::failure::{Failure, FailureKind, Peer, Phase};

/// Which statuses count as reachable (`--expect-status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expect {
    /// Any status below 500: the service answered.
    #[default]
    Below500,
    /// These inclusive ranges.
    Ranges(Vec<(u16, u16)>),
}

impl Expect {
    /// Parses `200`, `200,204`, `200-299` or `2xx`, comma-separated.
    pub fn parse(text: &str) -> Result<Expect, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let status = |s: &str| match s.parse::<u16>() {
                Ok(n @ 100..=599) => Ok(n),
                _ => Err(format!("`{s}` is not an HTTP status (100 to 599)")),
            };
            let range =
                if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                    let lo = status(&format!("{class}00"))?;
                    (lo, lo + 99)
                } else if let Some((lo, hi)) = part.split_once('-') {
                    let (lo, hi) = (status(lo)?, status(hi)?);
                    if lo > hi {
                        return Err(format!("`{part}` is an empty range"));
                    }
                    (lo, hi)
                } else {
                    let n = status(part)?;
                    (n, n)
                };
            ranges.push(range);
        }
        Ok(Expect::Ranges(ranges))
    }

    fn allows(&self, status: u16) -> bool {
        match self {
            Expect::Below500 => status < 500,
            Expect::Ranges(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Expect::Below500 => "any status below 500".into(),
            Expect::Ranges(ranges) => ranges
                .iter()
                .map(|(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// One HTTP exchange to make.
#[derive(Debug, Clone)]
pub(crate) struct HttpRequest {
    /// The Host header: the name, with the port when it is not the scheme's default.
    pub authority: String,
    pub path: String,
    pub websocket: bool,
    pub expect: Expect,
    /// Sent to a proxy that forwards it: the request target is the absolute URL.
    pub forwarded: Option<Forwarded>,
    /// Set when the TLS handshake before it was asked for a client certificate: whether one
    /// was given. The answer then tells the server's verdict on it.
    pub client_cert: Option<bool>,
    /// The upgrade is a Kong data plane's to its control plane: another answer than 101 is
    /// `upgrade_refused`, explained by its status.
    pub kong_cluster: bool,
    /// The WebSocket protocol asked for, which the answer must echo (Kong's RPC).
    pub subprotocol: Option<&'static str>,
}

/// The WebSocket protocol of Kong's RPC on `/v2/outlet`: a data plane asks for it and
/// requires the control plane to echo it (kong/clustering/rpc/manager.lua, `RPC_META_V1`).
pub(crate) const KONG_RPC_PROTOCOL: &str = "kong.meta.v1";

/// How long a control plane's close frame is awaited after its 101 (bounded by the check's
/// deadline): one that refuses a data plane sends it at once.
const CLOSE_WAIT: Duration = Duration::from_millis(300);

/// A WebSocket ended by the server right after its 101.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Closed {
    /// The close frame's status code and reason; `None` when the connection ended without one.
    frame: Option<(u16, String)>,
}

/// What the exchange showed; `failure` is set when it is not reachable as expected.
#[derive(Debug, Clone)]
pub(crate) struct HttpOutcome {
    pub status: Option<u16>,
    pub ttfb: Option<Duration>,
    pub failure: Option<Failure>,
    /// A warning of an answer that passed: the server's clock far from this host's.
    pub warning: Option<Failure>,
}

/// The GUID of RFC 6455 that the server's Sec-WebSocket-Accept hashes with the key.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Sends the request over `stream` and reads the response head.
pub(crate) async fn exchange<S>(
    stream: S,
    request: &HttpRequest,
    peer: Peer<'_>,
    budget: Budget,
) -> HttpOutcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let key = websocket_key();
    match send(stream, request, &key, peer, budget).await {
        Ok((response, ttfb, page, closed)) => {
            let answer = Answer {
                response: &response,
                ttfb,
                title: page.as_deref().and_then(page_title),
                page: page.as_deref(),
                closed,
            };
            judge(request, &key, &answer, peer)
        }
        Err(failure) => HttpOutcome {
            status: None,
            ttfb: None,
            failure: Some(failure),
            warning: None,
        },
    }
}

/// The answer to the request: its head, the time to it, and the title of the page of an
/// answer that may be a refused client certificate.
struct Answer<'a> {
    response: &'a hyper::Response<hyper::body::Incoming>,
    ttfb: Duration,
    title: Option<String>,
    /// The start of the page, when it was read.
    page: Option<&'a str>,
    /// A Kong cluster upgrade's WebSocket, ended by the server right after its 101.
    closed: Option<Closed>,
}

/// The statuses by which servers refuse a client certificate after the handshake: nginx's
/// 495 (an error in the client certificate's verification) and 496 (no certificate sent),
/// which it answers as 400 with those words in the page's title unless an error_page maps them
/// (https://nginx.org/en/docs/http/ngx_http_ssl_module.html#errors, "Error processing").
const CERT_STATUSES: [u16; 3] = [400, 495, 496];

/// An HTTP/1.1 connection over `stream`, the request, and the response head (with the page's
/// title for the statuses of `CERT_STATUSES`).
async fn send<S>(
    stream: S,
    request: &HttpRequest,
    key: &str,
    peer: Peer<'_>,
    budget: Budget,
) -> Result<
    (
        hyper::Response<hyper::body::Incoming>,
        Duration,
        Option<String>,
        Option<Closed>,
    ),
    Failure,
>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let error = |message: String| Failure::new(FailureKind::HttpError, Phase::Http, message, peer);
    let (mut sender, conn) = budget
        .limit(hyper::client::conn::http1::handshake(TokioIo::new(stream)))
        .await
        .map_err(|elapsed| elapsed.failure(Phase::Http, "no HTTP/1.1 connection", peer))?
        .map_err(|e| error(format!("HTTP/1.1 setup failed: {e}")))?;
    let driver = tokio::spawn(conn.with_upgrades());
    let Ok(built) = build_request(request, key) else {
        driver.abort();
        return Err(error(format!(
            "cannot build a request for {}{}",
            request.authority, request.path
        )));
    };
    let start = Instant::now();
    let response = budget.limit(sender.send_request(built)).await;
    let ttfb = start.elapsed();
    let mut response = match response {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            driver.abort();
            return Err(refused_certificate(&e, request, peer).unwrap_or_else(|| {
                let failure = error(format!(
                    "no valid HTTP response from {}: {}",
                    request.authority,
                    words(&e)
                ));
                match request.kong_cluster && closed_early(&e) {
                    true => failure.because(
                        crate::failure::Cause::ClosedWithoutAnswer,
                        peer,
                        Default::default(),
                    ),
                    false => failure,
                }
            }));
        }
        Err(elapsed) => {
            driver.abort();
            let what = format!("no HTTP response from {}", request.authority);
            return Err(elapsed.failure(Phase::Http, &what, peer));
        }
    };
    let status = response.status().as_u16();
    let wanted = CERT_STATUSES.contains(&status) || (request.kong_cluster && status != 101);
    let page = match wanted {
        true => budget.limit(page_start(response.body_mut())).await.ok(),
        false => None,
    };
    let closed = match request.kong_cluster && status == 101 {
        true => budget
            .limit(closed_after_upgrade(&mut response))
            .await
            .ok()
            .flatten(),
        false => None,
    };
    driver.abort();
    Ok((response, ttfb, page, closed))
}

/// Waits `CLOSE_WAIT` after a control plane's 101 for what it sends first: a close frame (its
/// code and reason), or the end of the connection, is a refusal; anything else, or nothing, is
/// not. Nothing is sent.
async fn closed_after_upgrade(
    response: &mut hyper::Response<hyper::body::Incoming>,
) -> Option<Closed> {
    use tokio::io::AsyncReadExt;
    let wait = async {
        let upgraded = hyper::upgrade::on(response).await.ok()?;
        let mut io = TokioIo::new(upgraded);
        let mut frame = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    return Some(Closed {
                        frame: close_frame(&frame).flatten(),
                    });
                }
                Ok(n) => frame.extend_from_slice(&buf[..n]),
            }
            match close_frame(&frame) {
                // Not yet a whole frame's head and payload.
                None if frame.len() < 2 + 8 + 4 + 125 => continue,
                None => return None,
                Some(None) => return None,
                Some(Some(close)) => return Some(Closed { frame: Some(close) }),
            }
        }
    };
    tokio::time::timeout(CLOSE_WAIT, wait).await.ok().flatten()
}

/// A server's first WebSocket frame (RFC 6455, 5.2), when `bytes` hold it whole:
/// `Some(Some((code, reason)))` for a close frame, `Some(None)` for another frame; `None`
/// while it is incomplete.
fn close_frame(bytes: &[u8]) -> Option<Option<(u16, String)>> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    if first & 0x0f != 0x8 {
        return Some(None);
    }
    // A control frame's payload is at most 125 bytes, so its length is in the second byte.
    let len = usize::from(second & 0x7f);
    let masked = second & 0x80 != 0;
    let start = 2 + if masked { 4 } else { 0 };
    let mut payload = bytes.get(start..start + len)?.to_vec();
    if masked {
        let key = &bytes[2..6];
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= key[i % 4];
        }
    }
    let code = match payload.get(..2) {
        Some(code) => u16::from_be_bytes([code[0], code[1]]),
        // A close frame without a body has no status (1005, "no status received").
        None => 1005,
    };
    let reason: String = String::from_utf8_lossy(payload.get(2..).unwrap_or_default())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some(Some((code, reason.trim().to_string())))
}

/// What to do about a control plane's close right after its 101, by its code.
fn close_fix(code: Option<u16>) -> &'static str {
    match code {
        Some(1008) => {
            "it refuses this data plane by policy: the reason says why (a version: run a data plane of the control plane's major version, no newer than it; a certificate, a license or a limit: fix what it names)"
        }
        Some(1011) => {
            "it failed while accepting the node: look in the control plane's log at this time, and run the check with --watch 10s to see whether it passes later"
        }
        Some(1001 | 1012 | 1013) => {
            "it is restarting or shedding load: run the check again in a minute (--watch 10s shows when it accepts)"
        }
        Some(1002 | 1003 | 1007 | 1009) => {
            "it found the WebSocket unacceptable: a device between (a TLS-inspecting proxy, a WAF) may alter the stream; check the path with --compare-direct or from another host"
        }
        _ => {
            "it ended the WebSocket without a reason: look in the control plane's log at this time for the node's refusal, and check that no load balancer or proxy in front of it closes upgraded connections"
        }
    }
}

/// The name RFC 6455 (7.4.1) gives a close code.
fn close_code_name(code: u16) -> &'static str {
    match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status",
        1007 => "invalid data",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "extension required",
        1011 => "internal error",
        1012 => "service restart",
        1013 => "try again later",
        _ => "unregistered code",
    }
}

/// The first 4 KiB of a page, as text.
async fn page_start(body: &mut hyper::body::Incoming) -> String {
    use http_body_util::BodyExt;
    let mut page = Vec::new();
    while page.len() < 4096 {
        let Some(Ok(frame)) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            page.extend_from_slice(&data);
        }
    }
    String::from_utf8_lossy(&page).into_owned()
}

/// A page's `<title>`, printable and at most 100 characters.
fn page_title(page: &str) -> Option<String> {
    let lower = page.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    let title: String = page[start..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(100)
        .collect();
    Some(title.trim().to_string())
}

/// A page's text in a line: its title, else its first printable characters (at most 120).
fn excerpt(page: &str) -> String {
    if let Some(title) = page_title(page) {
        return title;
    }
    let text: String = page
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = text.split_whitespace().collect();
    words.join(" ").chars().take(120).collect()
}

/// The server's refusal of the client certificate, when the request failed on a TLS alert
/// about it (a TLS 1.3 server judges the certificate after the handshake).
fn refused_certificate(
    err: &hyper::Error,
    request: &HttpRequest,
    peer: Peer<'_>,
) -> Option<Failure> {
    let given = request.client_cert?;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        let alert = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .or_else(|| e.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::AlertReceived(alert)) = alert
            && super::tls::is_client_cert_alert(*alert)
        {
            let what = match given {
                true => "refused the client certificate given",
                false => "requires a client certificate and none was given",
            };
            return Some(Failure::new(
                FailureKind::ClientCertRejected,
                Phase::Tls,
                format!(
                    "{} {what} (TLS alert {}, after the handshake)",
                    request.authority,
                    super::tls::alert_name(*alert)
                ),
                peer,
            ));
        }
        source = e.source();
    }
    None
}

/// Whether the connection ended before a response: closed (with or without TLS close_notify)
/// or reset.
fn closed_early(err: &hyper::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
            )
        {
            return true;
        }
        source = e.source();
    }
    err.is_incomplete_message()
}

/// hyper's error in words, without the names of its inner types.
fn words(err: &hyper::Error) -> String {
    if closed_early(err) {
        "the connection closed before a whole response".into()
    } else if err.is_parse() {
        "the answer is not HTTP/1.1".into()
    } else if err.is_timeout() {
        "it timed out".into()
    } else {
        err.to_string()
    }
}

/// Whether the response is the one expected: not the proxy's own refusal, not a refused
/// client certificate, a WebSocket upgrade with the right accept, or a status
/// `--expect-status` allows.
fn judge(request: &HttpRequest, key: &str, answer: &Answer<'_>, peer: Peer<'_>) -> HttpOutcome {
    let response = answer.response;
    let status = response.status();
    let outcome = |failure| HttpOutcome {
        status: Some(status.as_u16()),
        ttfb: Some(answer.ttfb),
        failure,
        warning: None,
    };
    let fail =
        |kind, message: String| outcome(Some(Failure::new(kind, Phase::Http, message, peer)));
    if let Some(failure) = request
        .forwarded
        .as_ref()
        .and_then(|f| f.judge(status, response.headers()))
    {
        return outcome(Some(failure));
    }
    if let Some(refusal) = certificate_refusal(request, status.as_u16(), answer.title.as_deref()) {
        return fail(FailureKind::ClientCertRejected, refusal);
    }
    let outlet = request.path.split('?').next().unwrap_or_default();
    if request.kong_cluster && status != StatusCode::SWITCHING_PROTOCOLS {
        let page = answer.page.map(excerpt).filter(|e| !e.is_empty());
        let said = page.map_or_else(String::new, |e| format!(" (\"{e}\")"));
        // Mutual only when the handshake asked for the node's certificate and got it.
        let handshake = match request.client_cert {
            Some(true) => "completed mutual TLS",
            Some(false) => "completed TLS without the node's certificate",
            None => "completed TLS without asking for the node's certificate",
        };
        let failure = Failure::new(
            FailureKind::UpgradeRefused,
            Phase::Http,
            format!(
                "the control plane at {} {handshake} but answered the data plane's upgrade on {outlet} with {status}{said}",
                request.authority
            ),
            peer,
        );
        let cause = match (request.subprotocol, status.as_u16()) {
            // No RPC outlet: a control plane without RPC (or a path an edge does not pass).
            (Some(_), 404 | 400 | 426) => crate::failure::Cause::NoRpc,
            (_, code) => crate::failure::Cause::of_upgrade_status(code),
        };
        return outcome(Some(failure.because(cause, peer, Default::default())));
    }
    if let Some(wanted) = request.subprotocol
        && status == StatusCode::SWITCHING_PROTOCOLS
    {
        let echoed = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if echoed != Some(wanted) {
            let said = match echoed {
                Some(other) => format!(
                    "answered with the protocol {}",
                    crate::sanitize::shorten(other)
                ),
                None => "named no WebSocket protocol".to_string(),
            };
            let failure = Failure::new(
                FailureKind::UpgradeRefused,
                Phase::Http,
                format!(
                    "the control plane at {} accepted the upgrade on {outlet} but {said}, not {wanted}: the node's Kong closes such a connection",
                    request.authority
                ),
                peer,
            );
            let cause = crate::failure::Cause::NoRpc;
            return outcome(Some(failure.because(cause, peer, Default::default())));
        }
    }
    if let Some(closed) = &answer.closed {
        let how = match &closed.frame {
            Some((code, reason)) if reason.is_empty() => {
                format!(
                    "a close frame {code} ({}) without a reason",
                    close_code_name(*code)
                )
            }
            Some((code, reason)) => format!(
                "a close frame {code} ({}): \"{}\"",
                close_code_name(*code),
                crate::sanitize::shorten(reason)
            ),
            None => "no close frame: it ended the connection".to_string(),
        };
        let failure = Failure::new(
            FailureKind::UpgradeRefused,
            Phase::Http,
            format!(
                "the control plane at {} accepted the upgrade on {outlet} (101), then at once closed the WebSocket with {how}",
                request.authority
            ),
            peer,
        );
        let cause = crate::failure::Cause::ClosedAfterUpgrade;
        let fix = close_fix(closed.frame.as_ref().map(|(code, _)| *code));
        let facts = crate::failure::Facts {
            fix: Some(fix),
            ..Default::default()
        };
        return outcome(Some(failure.because(cause, peer, facts)));
    }
    if request.websocket {
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return fail(
                FailureKind::HttpStatus,
                format!(
                    "the WebSocket upgrade to {}{} was answered {status}, not 101 Switching Protocols",
                    request.authority, request.path
                ),
            );
        }
        let accept = response.headers().get("sec-websocket-accept");
        if accept.map(HeaderValue::as_bytes) != Some(expected_accept(key).as_bytes()) {
            return fail(
                FailureKind::HttpError,
                "the server switched protocols but its Sec-WebSocket-Accept does not match the key sent: not a WebSocket server".into(),
            );
        }
    } else if !request.expect.allows(status.as_u16()) {
        return fail(
            FailureKind::HttpStatus,
            format!(
                "{}{} answered {status}; expected {}",
                request.authority,
                request.path,
                request.expect.describe()
            ),
        );
    }
    HttpOutcome {
        warning: clock_skew(request, response.headers(), SystemTime::now(), peer),
        ..outcome(None)
    }
}

/// How far apart this host's clock and the server's may be before it is said.
const CLOCK_SKEW_LIMIT: Duration = Duration::from_secs(60);

/// A warning when the `Date` of an answer over TLS lies more than a minute from `now`:
/// certificates' dates and Kong's own checks depend on the clock.
fn clock_skew(
    request: &HttpRequest,
    headers: &hyper::HeaderMap,
    now: SystemTime,
    peer: Peer<'_>,
) -> Option<Failure> {
    let date = headers.get(hyper::header::DATE)?.to_str().ok()?;
    let theirs = httpdate::parse_http_date(date).ok()?;
    let (apart, ahead) = match now.duration_since(theirs) {
        Ok(behind) => (behind, "behind"),
        Err(e) => (e.duration(), "ahead of"),
    };
    if apart <= CLOCK_SKEW_LIMIT {
        return None;
    }
    // Rounded to the nearest unit: the Date header has whole seconds.
    let words = match apart.as_secs() {
        s if s >= 2 * 86_400 => format!("{} days", (s + 43_200) / 86_400),
        s if s >= 2 * 3600 => format!("{} hours", (s + 1800) / 3600),
        s if s >= 120 => format!("{} minutes", (s + 30) / 60),
        s => format!("{s} seconds"),
    };
    Some(Failure::new(
        FailureKind::ClockSkew,
        Phase::Http,
        format!(
            "the clock of {} is {words} {ahead} this host's (its Date header: {date})",
            request.authority
        ),
        peer,
    ))
}

/// The words of an answer that refuses the client certificate: 495 and 496, or a 400 whose
/// page speaks of the SSL certificate (nginx's "No required SSL certificate was sent", "The
/// SSL certificate error").
fn certificate_refusal(request: &HttpRequest, status: u16, title: Option<&str>) -> Option<String> {
    let speaks = title.is_some_and(|t| t.to_ascii_lowercase().contains("ssl certificate"));
    if !(matches!(status, 495 | 496) || (status == 400 && speaks)) {
        return None;
    }
    let what = match request.client_cert {
        Some(true) => "the server refused the client certificate given",
        _ => "the server requires a client certificate and none was given",
    };
    let page = title.map_or_else(String::new, |t| format!(" (\"{t}\")"));
    Some(format!(
        "{}{} answered {status}{page}: {what}",
        request.authority, request.path
    ))
}

fn build_request(
    request: &HttpRequest,
    key: &str,
) -> Result<Request<Empty<Bytes>>, hyper::http::Error> {
    let uri = match &request.forwarded {
        Some(_) => format!("http://{}{}", request.authority, request.path),
        None => request.path.clone(),
    };
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(HOST, &request.authority)
        .header(USER_AGENT, concat!("preflight/", env!("CARGO_PKG_VERSION")));
    if let Some(authorization) = request
        .forwarded
        .as_ref()
        .and_then(Forwarded::authorization)
    {
        builder = builder.header(PROXY_AUTHORIZATION, authorization);
    }
    if request.websocket {
        builder = builder
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key);
        if let Some(protocol) = request.subprotocol {
            builder = builder.header("sec-websocket-protocol", protocol);
        }
    } else {
        builder = builder.header(CONNECTION, "close");
    }
    builder.body(Empty::new())
}

/// A fresh random Sec-WebSocket-Key.
fn websocket_key() -> String {
    let mut nonce = [0u8; 16];
    // A predictable key only weakens a cache-poisoning defence; a check can live with it.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
    BASE64.encode(nonce)
}

/// The Sec-WebSocket-Accept a real WebSocket server answers `key` with (RFC 6455, 4.2.2).
pub(crate) fn expected_accept(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{WEBSOCKET_GUID}").as_bytes(),
    );
    BASE64.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(client_cert: Option<bool>) -> HttpRequest {
        HttpRequest {
            authority: "cp.example".into(),
            path: "/".into(),
            websocket: false,
            expect: Expect::default(),
            forwarded: None,
            client_cert,
            kong_cluster: false,
            subprotocol: None,
        }
    }

    #[test]
    fn a_server_clock_more_than_a_minute_away_is_said() {
        let peer = Peer {
            host: "cp.example",
            port: Some(443),
            ip: None,
        };
        let now = httpdate::parse_http_date("Thu, 26 Nov 2026 12:00:00 GMT").unwrap();
        let skew = |date: &str| {
            let mut headers = hyper::HeaderMap::new();
            headers.insert(hyper::header::DATE, date.parse().unwrap());
            clock_skew(&request(None), &headers, now, peer).map(|f| f.message)
        };
        assert_eq!(skew("Thu, 26 Nov 2026 12:00:59 GMT"), None);
        assert_eq!(skew("Thu, 26 Nov 2026 11:59:01 GMT"), None);
        assert_eq!(
            skew("Thu, 26 Nov 2026 14:00:00 GMT").as_deref(),
            Some(
                "the clock of cp.example is 2 hours ahead of this host's (its Date header: Thu, 26 Nov 2026 14:00:00 GMT)"
            )
        );
        assert_eq!(
            skew("Thu, 26 Nov 2026 11:55:00 GMT").as_deref(),
            Some(
                "the clock of cp.example is 5 minutes behind this host's (its Date header: Thu, 26 Nov 2026 11:55:00 GMT)"
            )
        );
        // A Date that is not an HTTP date says nothing.
        assert_eq!(skew("yesterday"), None);
    }

    #[test]
    fn a_page_that_refuses_the_client_certificate_is_read_as_such() {
        let none = certificate_refusal(
            &request(Some(false)),
            400,
            Some("400 No required SSL certificate was sent"),
        )
        .unwrap();
        assert!(
            none.ends_with("answered 400 (\"400 No required SSL certificate was sent\"): the server requires a client certificate and none was given"),
            "{none}"
        );
        let refused = certificate_refusal(
            &request(Some(true)),
            400,
            Some("400 The SSL certificate error"),
        )
        .unwrap();
        assert!(
            refused.ends_with("the server refused the client certificate given"),
            "{refused}"
        );
        assert!(certificate_refusal(&request(None), 496, None).is_some());
        assert!(certificate_refusal(&request(None), 495, None).is_some());
        // Another 400, or a success, is not about the certificate.
        assert!(certificate_refusal(&request(Some(false)), 400, Some("400 Bad Request")).is_none());
        assert!(certificate_refusal(&request(Some(false)), 400, None).is_none());
        assert!(certificate_refusal(&request(Some(false)), 200, None).is_none());
    }

    #[test]
    fn websocket_accept_matches_rfc_6455_example() {
        assert_eq!(
            expected_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn expect_status_forms() {
        assert!(Expect::Below500.allows(404) && !Expect::Below500.allows(502));
        let e = Expect::parse("200,204,300-399").unwrap();
        assert!(e.allows(204) && e.allows(302) && !e.allows(201));
        let e = Expect::parse("2xx").unwrap();
        assert!(e.allows(200) && e.allows(299) && !e.allows(301));
        for bad in ["", "abc", "99", "600", "300-200", "7xx"] {
            assert!(Expect::parse(bad).is_err(), "{bad}");
        }
    }
}
