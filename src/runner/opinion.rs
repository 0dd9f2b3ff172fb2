//! Second opinions, taken after a failure only (a healthy check costs nothing extra), each
//! within one more `--timeout`:
//! - a connect that timed out, or that an ICMP unreachable refused: the hops to the address
//!   (TCP connects with TTL 1 to 30), to say where the SYN is dropped or who rejects it;
//! - a TLS handshake (or HTTP response) that timed out after the connect: the same again with
//!   the segment size clamped (MSS 1200 and 536), which completes across a path-MTU black hole;
//! - a connection reset, closed or stalled right after the ClientHello: the same again without
//!   the server name, which a firewall filtering by name lets through.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::RunContext;
use super::attempt::{Outcome, run_with};
use crate::check::CheckSpec;
use crate::failure::{Failure, FailureKind, Peer, Phase};
use crate::probe::millis;
use crate::probe::proxy::Dest;
use crate::probe::trace::{self, MAX_HOPS};
use crate::report::{OpinionKind, SecondOpinion, Tried};
use crate::route::ProxyUrl;

/// Runs the steps of one attempt at `dest` (through `via`, if given), then, when it failed in
/// a way a second opinion can explain, takes that.
pub(super) async fn attempt(
    spec: &CheckSpec,
    dest: Dest,
    via: Option<Arc<ProxyUrl>>,
    shared: &RunContext,
) -> Outcome {
    let direct = match (&dest, &via) {
        (Dest::Addr(addr), None) => Some(*addr),
        _ => None,
    };
    let mut outcome = run_with(spec, dest, via.clone(), shared, None).await;
    // Boxed: the opinions' state (a trace of 30 hops, retries with their own attempts) is
    // allocated only after a failure, not carried by every check's task.
    if outcome.error.is_some() {
        match (direct, via) {
            (None, Some(proxy)) => Box::pin(through_proxy(spec, proxy, shared, &mut outcome)).await,
            _ => Box::pin(opinion(spec, direct, shared, &mut outcome)).await,
        }
    }
    outcome
}

/// Whether `failure` is a connection closed or reset in the TLS handshake: what a filter on
/// the server name does.
fn closed_in_handshake(failure: &Failure) -> bool {
    failure.phase == Phase::Tls
        && (failure.kind == FailureKind::Reset
            || (failure.kind == FailureKind::TlsHandshake
                && failure.cause == crate::failure::Cause::ClosedDuringHandshake))
}

/// The second opinion of a proxied attempt: a trace to a proxy that did not answer; a tunnel
/// closed after the ClientHello, the same tunnel to the address without the server name.
async fn through_proxy(
    spec: &CheckSpec,
    proxy: Arc<ProxyUrl>,
    shared: &RunContext,
    outcome: &mut Outcome,
) {
    let Some(failure) = outcome.error.clone() else {
        return;
    };
    if !closed_in_handshake(&failure) || !proxy.scheme.resolves_remotely() {
        return opinion(spec, None, shared, outcome).await;
    }
    let start = Instant::now();
    let filtered = proxy_filter(spec, &proxy, shared).await;
    let ms = millis(start.elapsed());
    if let Some(found) = filtered {
        record(
            outcome,
            found.explained,
            found.conclusion,
            ms,
            found.attempts,
            None,
        );
    }
}

/// A tunnel the proxy opened (CONNECT 200) and closed after the ClientHello, tried again to
/// the address this host resolves, without the server name: when the server then answers, the
/// proxy filters by the name (an SNI or URL-category policy). `None` when there is no name, or
/// no address here to tunnel to.
async fn proxy_filter(
    spec: &CheckSpec,
    proxy: &Arc<ProxyUrl>,
    shared: &RunContext,
) -> Option<Retried> {
    let name = spec
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| spec.host().to_string());
    let port = spec.port()?;
    if name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let ip = *shared
        .dns
        .resolve(spec.host(), Some(port), shared.budget)
        .await
        .addrs
        .ok()?
        .first()?;
    shared.log_step(spec.id(), || {
        format!("second opinion: the same tunnel to {ip} without the server name {name}")
    });
    let mut other = spec.clone();
    other.tls.server_name = Some(ip.to_string());
    let addr = SocketAddr::new(ip, port);
    let (retry, ms) = timed(run_with(
        &other,
        Dest::Addr(addr),
        Some(proxy.clone()),
        shared,
        None,
    ))
    .await;
    let attempts = vec![Tried {
        tried: format!("CONNECT {addr} through the proxy, no server name"),
        result: result_of(&retry),
        ms,
    }];
    let answered = match &retry.error {
        None => true,
        Some(f) => {
            f.phase == Phase::Tls && !closed_in_handshake(f) && f.kind != FailureKind::TlsTimeout
        }
    };
    if !answered {
        return Some(Retried {
            explained: None,
            conclusion: "through the proxy to the address without the server name it failed too: not a filter on the name".into(),
            attempts,
            retry: None,
        });
    }
    let shown = proxy.to_string();
    let peer = Peer {
        host: &name,
        port: Some(port),
        ip: None,
    };
    let failure = Failure::new(
        FailureKind::SniFiltered,
        Phase::Tls,
        format!(
            "the proxy {shown} opened the tunnel to {}:{port}, read the ClientHello for {name} and closed it; the same tunnel to {addr} without the server name reached the server ({}): the proxy (or a firewall beyond it) filters TLS by server name",
            spec.host(),
            attempts[0].result
        ),
        peer,
    );
    let facts = crate::failure::Facts {
        proxy: Some(&shown),
        ..Default::default()
    };
    Some(Retried {
        explained: Some(failure.because(crate::failure::Cause::ProxyFiltersName, peer, facts)),
        conclusion: format!(
            "without the server name {name} the tunnel reached the server: the proxy filters by that name"
        ),
        attempts,
        retry: None,
    })
}

/// The most addresses one run traces: each trace is up to 30 sockets for one timeout, and many
/// addresses timing out behind one firewall tell the same story.
const MAX_TRACES: usize = 4;

/// The segment sizes the path-MTU retry announces: under a 1280-byte tunnel, and the
/// smallest any IPv4 path must carry (576 bytes).
const SMALL_MSS: [u32; 2] = [1200, 536];

/// Takes the second opinion `outcome`'s failure calls for, if any, and records it. `direct`
/// is the address of a direct attempt; a proxied one gets a trace to its proxy only, when the
/// proxy did not answer.
pub(super) async fn opinion(
    spec: &CheckSpec,
    direct: Option<SocketAddr>,
    shared: &RunContext,
    outcome: &mut Outcome,
) {
    let Some(failure) = outcome.error.clone() else {
        return;
    };
    if let (FailureKind::ProxyUnreachable, Some(proxy)) = (failure.kind, failure.timed_out_at) {
        if !shared.no_hop_trace && !proxy.ip().is_loopback() {
            hops(spec, proxy, shared, outcome).await;
        }
        return;
    }
    let Some(addr) = direct else {
        return;
    };
    let in_tls = failure.phase == Phase::Tls;
    let closed = failure.kind == FailureKind::Reset
        || (failure.kind == FailureKind::TlsHandshake
            && failure.cause == crate::failure::Cause::ClosedDuringHandshake);
    match failure.kind {
        // Loopback has no hops to find.
        // Nothing left the host when it has no route: no hops to find.
        FailureKind::Timeout | FailureKind::Unreachable
            if failure.phase == Phase::Tcp
                && !shared.no_hop_trace
                && !addr.ip().is_loopback()
                && failure.cause != crate::failure::Cause::NoRouteHere =>
        {
            hops(spec, addr, shared, outcome).await;
        }
        FailureKind::TlsTimeout => stalled(spec, addr, shared, outcome).await,
        FailureKind::HttpTimeout => {
            let start = Instant::now();
            let mtu = small_segments(spec, addr, shared).await;
            let ms = millis(start.elapsed());
            record(
                outcome,
                mtu.explained,
                mtu.conclusion,
                ms,
                mtu.attempts,
                mtu.retry,
            );
        }
        _ if in_tls && closed => {
            let start = Instant::now();
            let name = without_name(spec, addr, shared).await;
            let ms = millis(start.elapsed());
            record(
                outcome,
                name.explained,
                name.conclusion,
                ms,
                name.attempts,
                None,
            );
        }
        _ => {}
    }
}

/// A handshake that stalled: smaller segments and no server name, at once; the one that
/// explains it speaks.
async fn stalled(spec: &CheckSpec, addr: SocketAddr, shared: &RunContext, outcome: &mut Outcome) {
    let start = Instant::now();
    let (mtu, name) = tokio::join!(
        small_segments(spec, addr, shared),
        without_name(spec, addr, shared)
    );
    let ms = millis(start.elapsed());
    let explained = mtu.explained.is_some() || name.explained.is_some();
    let (first, second) = match name.explained.is_some() && mtu.explained.is_none() {
        true => (name, mtu),
        false => (mtu, name),
    };
    let conclusion = match explained {
        true => first.conclusion.clone(),
        false => format!("{} {}", first.conclusion, second.conclusion),
    };
    let mut attempts = first.attempts;
    attempts.extend(second.attempts);
    record(
        outcome,
        first.explained,
        conclusion,
        ms,
        attempts,
        first.retry,
    );
}

/// What a retry found: the failure that replaces the check's when it explains it.
struct Retried {
    explained: Option<Failure>,
    conclusion: String,
    attempts: Vec<Tried>,
    /// The retry that completed, whose TLS facts the check then shows.
    retry: Option<Outcome>,
}

/// Puts a retry's finding in the outcome: the new failure (with the old one's words kept in
/// the conclusion), and what was tried.
fn record(
    outcome: &mut Outcome,
    explained: Option<Failure>,
    conclusion: String,
    ms: f64,
    attempts: Vec<Tried>,
    retry: Option<Outcome>,
) {
    if let Some(failure) = explained {
        outcome.error = Some(failure);
        if let Some(retry) = retry {
            outcome.tls = retry.tls.or(outcome.tls.take());
        }
    }
    outcome.second = Some(SecondOpinion {
        kind: OpinionKind::Retry,
        conclusion,
        ms,
        attempts,
    });
}

/// The failure's words, or that it completed.
fn result_of(outcome: &Outcome) -> String {
    match &outcome.error {
        None => "completed".to_string(),
        Some(f) => format!("{}: {}", f.kind, f.message),
    }
}

/// A trace's result, made once per address and port.
pub(super) type Traced =
    tokio::sync::OnceCell<(Result<(Vec<trace::Hop>, trace::Conclusion), String>, f64)>;

/// The trace: which hop answered last, or which rejected. Its probes take connection slots
/// (`--concurrency`), as many as there are hops; checks failing toward the same address and
/// port share one trace.
async fn hops(spec: &CheckSpec, addr: SocketAddr, shared: &RunContext, outcome: &mut Outcome) {
    let cell = {
        let mut traces = shared.hop_traces.lock().unwrap_or_else(|e| e.into_inner());
        if !traces.contains_key(&addr) && traces.len() >= MAX_TRACES {
            return;
        }
        traces.entry(addr).or_default().clone()
    };
    let (traced, ms) = cell
        .get_or_init(|| async {
            let start = Instant::now();
            shared.log_step(spec.id(), || {
                format!("second opinion: TCP connects to {addr} with TTL 1 to {MAX_HOPS}")
            });
            let traced = trace_with_slots(addr, shared).await;
            (traced, millis(start.elapsed()))
        })
        .await
        .clone();
    let tried = format!("TCP connects to {addr} with TTL 1 to {MAX_HOPS}, at once");
    let (conclusion, result) = match traced {
        Ok((hops, conclusion)) => {
            for hop in &hops {
                shared.log_step(spec.id(), || {
                    format!(
                        "hop {} {} {} in {:.1} ms",
                        hop.ttl, hop.addr, hop.answer, hop.rtt_ms
                    )
                });
            }
            let words = trace::words(&conclusion, addr);
            let result = format!("{} hops answered", hops.len());
            outcome.hops = Some(hops);
            if let Some(failure) = outcome.error.as_mut() {
                failure.hint = format!("{}. {}", capital(&words), failure.hint);
            }
            (words, result)
        }
        Err(why) => (format!("the trace was not possible: {why}"), why),
    };
    shared.log_step(spec.id(), || format!("second opinion: {conclusion}"));
    outcome.second = Some(SecondOpinion {
        kind: OpinionKind::Trace,
        conclusion,
        ms,
        attempts: vec![Tried { tried, result, ms }],
    });
}

/// The trace, holding a connection slot for each of its probes while it runs.
async fn trace_with_slots(
    addr: SocketAddr,
    shared: &RunContext,
) -> Result<(Vec<trace::Hop>, trace::Conclusion), String> {
    // As many hops as there are slots, up to MAX_HOPS: never more sockets than --concurrency.
    let hops = u32::try_from(shared.concurrency)
        .unwrap_or(u32::MAX)
        .min(u32::from(MAX_HOPS));
    let slots = shared.slots.clone();
    let permits = match shared.budget.limit(slots.acquire_many_owned(hops)).await {
        Ok(Ok(permits)) => permits,
        _ => {
            return Err(format!(
                "no {hops} connection slots came free within the timeout (--concurrency)"
            ));
        }
    };
    let traced = trace::trace(addr, hops as u8, shared.budget).await;
    drop(permits);
    traced
}

/// `text` with its first letter in capitals.
fn capital(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

/// The same attempt with the segment size clamped, each size at once: when one completes, the
/// path loses full-size packets and the ICMP that would say so.
async fn small_segments(spec: &CheckSpec, addr: SocketAddr, shared: &RunContext) -> Retried {
    shared.log_step(spec.id(), || {
        format!("second opinion: the same with an MSS of {SMALL_MSS:?}")
    });
    let dest = Dest::Addr(addr);
    let (big, small) = tokio::join!(
        timed(run_with(
            spec,
            dest.clone(),
            None,
            shared,
            Some(SMALL_MSS[0])
        )),
        timed(run_with(spec, dest, None, shared, Some(SMALL_MSS[1])))
    );
    let attempts: Vec<Tried> = [(&big, SMALL_MSS[0]), (&small, SMALL_MSS[1])]
        .iter()
        .map(|((outcome, ms), mss)| Tried {
            tried: format!("MSS {mss}"),
            result: result_of(outcome),
            ms: *ms,
        })
        .collect();
    let worked = [(big.0, SMALL_MSS[0]), (small.0, SMALL_MSS[1])]
        .into_iter()
        .find(|(o, _)| o.error.is_none());
    let Some((retry, mss)) = worked else {
        return Retried {
            explained: None,
            conclusion: "with smaller segments it failed the same way: not a path-MTU black hole."
                .into(),
            attempts,
            retry: None,
        };
    };
    let (failure, conclusion) = path_mtu(spec, addr, mss);
    Retried {
        explained: Some(failure),
        conclusion,
        attempts,
        retry: Some(retry),
    }
}

/// The `path_mtu` failure, and the conclusion, when an MSS of `mss` completed.
fn path_mtu(spec: &CheckSpec, addr: SocketAddr, mss: u32) -> (Failure, String) {
    let ip = addr.ip();
    // The largest packet that passed: the segment, with the IP and TCP headers.
    let header = if ip.is_ipv4() { 40 } else { 60 };
    let size = mss + header;
    let conclusion = format!(
        "with an MSS of {mss} it completed: packets of full size are lost between here and {ip} while {size}-byte ones pass, and the ICMP that would say so does not come back"
    );
    let peer = Peer {
        host: spec.host(),
        port: Some(addr.port()),
        ip: Some(ip),
    };
    let failure = Failure::new(
        FailureKind::PathMtu,
        Phase::Tls,
        format!(
            "the connection to {addr} opened but stalled with full-size packets; with an MSS of {mss} it completed: packets above about {size} bytes are lost between here and {ip}, and the ICMP \"fragmentation needed\" message does not come back"
        ),
        peer,
    );
    (failure, conclusion)
}

/// An attempt and how long it took.
async fn timed(attempt: impl std::future::Future<Output = Outcome>) -> (Outcome, f64) {
    let start = Instant::now();
    let outcome = attempt.await;
    (outcome, millis(start.elapsed()))
}

/// The same attempt without a server name (the address in its place, which TLS does not
/// send): when the server then answers at all, something between filters by the name.
async fn without_name(spec: &CheckSpec, addr: SocketAddr, shared: &RunContext) -> Retried {
    let name = spec
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| spec.host().to_string());
    let nothing = Retried {
        explained: None,
        conclusion: String::new(),
        attempts: Vec::new(),
        retry: None,
    };
    if name.parse::<std::net::IpAddr>().is_ok() {
        // No server name was sent: there is none to leave out.
        return nothing;
    }
    shared.log_step(spec.id(), || {
        format!("second opinion: the same without the server name {name}")
    });
    let mut other = spec.clone();
    other.tls.server_name = Some(addr.ip().to_string());
    let (retry, ms) = timed(run_with(&other, Dest::Addr(addr), None, shared, None)).await;
    let attempts = vec![Tried {
        tried: "no server name".into(),
        result: result_of(&retry),
        ms,
    }];
    let answered = match &retry.error {
        None => true,
        Some(f) => {
            f.phase != Phase::Tcp
                && !matches!(f.kind, FailureKind::Reset | FailureKind::TlsTimeout)
                && f.cause != crate::failure::Cause::ClosedDuringHandshake
        }
    };
    if !answered {
        return Retried {
            conclusion: "without the server name it failed the same way: not a filter on the name."
                .into(),
            attempts,
            ..nothing
        };
    }
    let failure = sni_filtered(addr, &name, &attempts[0].result);
    Retried {
        explained: Some(failure),
        conclusion: format!(
            "without the server name {name} the server answered: a firewall filters TLS by that name"
        ),
        attempts,
        retry: None,
    }
}

/// The `sni_filtered` failure: `name` got no answer, no name got `said`.
fn sni_filtered(addr: SocketAddr, name: &str, said: &str) -> Failure {
    let port = addr.port();
    Failure::new(
        FailureKind::SniFiltered,
        Phase::Tls,
        format!(
            "a firewall between here and {addr} refuses TLS to the server name {name} (a URL or SNI filtering policy): with {name} the handshake got no answer, without a server name the server answered ({})",
            said
        ),
        Peer {
            host: name,
            port: Some(port),
            ip: Some(addr.ip()),
        },
    )
}
