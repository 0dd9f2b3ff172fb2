//! One connection attempt (to one address, or one tunnel to a name through a proxy) as a
//! pipeline of steps: a connection slot → connect (direct, through a tunnel, or to a proxy
//! that forwards plain HTTP) → [TLS] → [HTTP or WebSocket]; or a UDP datagram. Each step
//! takes what the one before produced and returns `Result<_, Failure>`, noting its time and
//! what it saw in the attempt's `Outcome`. A new step is one function and one line in `steps`.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::RunContext;
use crate::check::CheckSpec;
use crate::failure::{Cause, Failure, FailureKind, Peer, Phase, Severity};
use crate::probe::http::{self, HttpRequest};
use crate::probe::proxy::{Dest, Forwarded, Via};
use crate::probe::tls::{TlsFailure, TlsInfo};
use crate::probe::{BoxStream, Dialed, millis, tcp, udp};
use crate::report::ms_text;
use crate::report::{AddressResult, AddressStatus, SecondOpinion, StepTimes};
use crate::route::ProxyUrl;
use crate::target::Probe;

/// A duration in a trace line.
fn ms(d: std::time::Duration) -> String {
    ms_text(millis(d))
}

/// What one attempt came to: its failure, or the warnings of an attempt that worked, with
/// what each step measured and saw.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    /// The address tried, unless a proxy resolved the name.
    pub(super) ip: Option<IpAddr>,
    /// This host's end of the connection, once made.
    pub(super) local: Option<std::net::SocketAddr>,
    pub(super) error: Option<Failure>,
    pub(super) times: StepTimes,
    pub(super) tls: Option<TlsInfo>,
    pub(super) http_status: Option<u16>,
    /// Reasons to warn although the attempt worked.
    pub(super) warnings: Vec<Failure>,
    /// What was tried after the failure to find where or why the path breaks.
    pub(super) second: Option<SecondOpinion>,
    /// The hops that answered the trace.
    pub(super) hops: Option<Vec<crate::probe::trace::Hop>>,
}

impl Outcome {
    pub(super) fn new(ip: Option<IpAddr>) -> Outcome {
        Outcome {
            ip,
            local: None,
            error: None,
            times: StepTimes::default(),
            tls: None,
            http_status: None,
            warnings: Vec::new(),
            second: None,
            hops: None,
        }
    }

    pub(super) fn failed(ip: Option<IpAddr>, failure: Failure) -> Outcome {
        Outcome {
            error: Some(failure),
            ..Outcome::new(ip)
        }
    }

    /// The report's line for the address tried, if this host chose one.
    pub(super) fn address(&self) -> Option<AddressResult> {
        Some(AddressResult {
            ip: self.ip?,
            status: match self.error {
                None => AddressStatus::Ok,
                Some(_) => AddressStatus::Fail,
            },
            error: self.error.clone(),
            local: self.local,
            timings: self.times,
        })
    }
}

/// What the steps of one attempt share.
struct Attempt<'a> {
    spec: &'a CheckSpec,
    dest: Dest,
    via: Option<Arc<ProxyUrl>>,
    shared: &'a RunContext,
    /// The segment size to announce (a second opinion's retry), else the system's.
    mss: Option<u32>,
}

/// A connection the next steps run over, and what it reached.
struct Connection {
    stream: BoxStream,
    dialed: Dialed,
    /// Set when a proxy takes plain HTTP requests whole: the request goes to it in absolute
    /// form, with no tunnel and no TLS.
    forwarded: Option<Forwarded>,
}

/// One attempt, announcing `mss` when given.
pub(super) async fn run_with(
    spec: &CheckSpec,
    dest: Dest,
    via: Option<Arc<ProxyUrl>>,
    shared: &RunContext,
    mss: Option<u32>,
) -> Outcome {
    let mut outcome = Outcome::new(dest.ip());
    let attempt = Attempt {
        spec,
        dest,
        via,
        shared,
        mss,
    };
    if let Err(mut failure) = attempt.steps(&mut outcome).await {
        // A refused certificate that is not made for clients: whether the refusal came as a
        // TLS alert or as the server's HTTP answer, that is why.
        if failure.kind == FailureKind::ClientCertRejected
            && failure.cause == Cause::General(failure.kind)
            && let Some(usage) = shared.tls.identity_usage()
        {
            failure.message = format!("{}; {usage}", failure.message);
            failure = failure.because(
                Cause::ClientCertNotForClients,
                attempt.peer(),
                Default::default(),
            );
        }
        attempt.log_step(|| {
            format!(
                "{} in the {} phase: {}",
                failure.kind, failure.phase, failure.message
            )
        });
        outcome.error = Some(failure);
    }
    outcome
}

impl Attempt<'_> {
    /// A `--verbose` line about this check.
    fn log_step(&self, line: impl FnOnce() -> String) {
        self.shared.log_step(self.spec.id(), line);
    }

    /// The pipeline. Each step is boxed where it is large, so that a plain TCP check's future
    /// (and the task that holds it) stays small.
    async fn steps(&self, outcome: &mut Outcome) -> Result<(), Failure> {
        let _slot = self.slot().await?;
        let probe = self.spec.probe();
        if probe == Probe::Udp {
            super::reached(Phase::Udp);
            return Box::pin(self.datagram(outcome)).await;
        }
        super::reached(match self.via {
            Some(_) => Phase::Proxy,
            None => Phase::Tcp,
        });
        if let (Probe::Tcp, Dest::Addr(addr), None) = (probe, &self.dest, &self.via) {
            // A TCP check ends at the connect: its connection is closed unregistered.
            self.dial(*addr, outcome).await?;
            return Ok(());
        }
        let connection = self.connect(outcome).await?;
        let stream = match (probe.uses_tls(), &connection.forwarded) {
            (true, None) => {
                super::reached(Phase::Tls);
                Box::pin(self.tls(connection.stream, &connection.dialed, outcome)).await?
            }
            _ => connection.stream,
        };
        if probe.uses_http() {
            super::reached(Phase::Http);
            Box::pin(self.http(stream, connection.forwarded, outcome)).await?;
        }
        Ok(())
    }

    fn peer(&self) -> Peer<'_> {
        Peer {
            host: self.spec.host(),
            port: Some(self.dest.port()),
            ip: self.dest.ip(),
        }
    }

    /// A connection slot (`--concurrency`): one socket. Waiting for one is bounded by the
    /// deadline only.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, Failure> {
        let slots = self.shared.slots.clone();
        match tokio::time::timeout_at(self.shared.budget.deadline, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Failure::new(
                FailureKind::Deadline,
                Phase::Queued,
                "the run's deadline passed while the check waited for a connection slot",
                self.peer(),
            )),
        }
    }

    /// A UDP datagram and its reply. Silence proves nothing either way: a warning, not a
    /// failure.
    async fn datagram(&self, outcome: &mut Outcome) -> Result<(), Failure> {
        let Dest::Addr(addr) = &self.dest else {
            return Ok(());
        };
        let payload = self
            .spec
            .payload
            .as_deref()
            .map_or(udp::DEFAULT_PAYLOAD, str::as_bytes);
        match udp::probe(self.spec.host(), *addr, payload, self.shared.budget).await {
            Ok(reply) => outcome.times.connect_ms = Some(millis(reply)),
            Err(failure) if failure.severity() == Severity::Warn => {
                outcome.warnings.push(failure);
            }
            Err(failure) => return Err(failure),
        }
        Ok(())
    }

    /// TCP to the address; or a tunnel through the proxy; or, as curl does for plain HTTP
    /// through an HTTP proxy, a connection to the proxy that takes the request whole.
    /// TCP straight to `addr`, noted in the outcome; the connection is not yet registered with
    /// the runtime, which a TCP check never needs.
    async fn dial(
        &self,
        addr: std::net::SocketAddr,
        outcome: &mut Outcome,
    ) -> Result<tcp::Connected, Failure> {
        let host = self.spec.host();
        let (connected, took) = tcp::connect(host, addr, self.mss, self.shared.budget).await?;
        outcome.times.connect_ms = Some(millis(took));
        outcome.local = connected.local_addr().ok();
        self.log_step(|| match outcome.local {
            Some(local) => format!("connected {local} -> {addr} in {}", ms(took)),
            None => format!("connected to {addr} in {}", ms(took)),
        });
        Ok(connected)
    }

    async fn connect(&self, outcome: &mut Outcome) -> Result<Connection, Failure> {
        let host = self.spec.host();
        let budget = self.shared.budget;
        let via = |proxy| Via {
            proxy,
            dns: &self.shared.dns,
            tls: &self.shared.tls,
        };
        match (&self.dest, self.via.as_deref()) {
            (Dest::Addr(addr), None) => {
                let stream = self
                    .dial(*addr, outcome)
                    .await?
                    .into_stream()
                    .map_err(|err| tcp::classify(&err, *addr, self.peer()))?;
                Ok(Connection {
                    stream: Box::new(stream),
                    dialed: Dialed {
                        port: addr.port(),
                        ip: Some(addr.ip()),
                        label: addr.to_string(),
                    },
                    forwarded: None,
                })
            }
            (dest, Some(proxy))
                if self.spec.probe() == Probe::Http && proxy.scheme.forwards_http() =>
            {
                let (tunnel, forwarded) =
                    Box::pin(via(proxy).forwarder(host, dest, budget)).await?;
                Ok(self.through_tunnel(proxy, tunnel, Some(forwarded), outcome))
            }
            (dest, Some(proxy)) => {
                let tunnel = Box::pin(via(proxy).open(host, dest, budget)).await?;
                Ok(self.through_tunnel(proxy, tunnel, None, outcome))
            }
            (Dest::Name(..), None) => Err(Failure::new(
                FailureKind::LocalError,
                Phase::Tcp,
                "a name must be resolved before a direct connection",
                self.peer(),
            )),
        }
    }

    /// The connection a tunnel through `proxy` gives, with its times and this host's end noted.
    fn through_tunnel(
        &self,
        proxy: &ProxyUrl,
        tunnel: crate::probe::proxy::Tunnel,
        forwarded: Option<Forwarded>,
        outcome: &mut Outcome,
    ) -> Connection {
        outcome.local = tunnel.local;
        self.log_tunnel(proxy, &tunnel);
        outcome.times.connect_ms = Some(millis(tunnel.connect));
        outcome.times.proxy_ms = Some(millis(tunnel.handshake));
        Connection {
            stream: tunnel.stream,
            dialed: self.through(proxy),
            forwarded,
        }
    }

    /// The connection to the proxy and what was said with it.
    fn log_tunnel(&self, proxy: &ProxyUrl, tunnel: &crate::probe::proxy::Tunnel) {
        self.log_step(|| match tunnel.local {
            Some(local) => format!(
                "connected {local} -> the proxy {proxy} in {}",
                ms(tunnel.connect)
            ),
            None => format!("connected to the proxy {proxy} in {}", ms(tunnel.connect)),
        });
        for line in &tunnel.exchange {
            self.log_step(|| format!("proxy {line}"));
        }
    }

    /// What a tunnel through `proxy` reaches, for messages.
    fn through(&self, proxy: &ProxyUrl) -> Dialed {
        Dialed {
            port: self.dest.port(),
            ip: self.dest.ip(),
            label: format!("{} through {proxy}", self.dest.authority()),
        }
    }

    /// The TLS handshake, judged; what it showed of the certificate is kept even when it
    /// fails.
    async fn tls(
        &self,
        stream: BoxStream,
        dialed: &Dialed,
        outcome: &mut Outcome,
    ) -> Result<BoxStream, Failure> {
        let handshake = self.shared.tls.handshake(
            stream,
            self.spec.host(),
            dialed,
            &self.spec.tls,
            self.shared.budget,
        );
        match handshake.await {
            Ok(handshake) => {
                self.log_chain(&handshake.chain);
                self.log_step(|| {
                    let info = &handshake.info;
                    format!(
                        "{} {} ALPN {} in {}",
                        info.version,
                        info.cipher,
                        info.alpn.as_deref().unwrap_or("none"),
                        ms(handshake.took)
                    )
                });
                outcome.times.tls_ms = Some(millis(handshake.took));
                outcome.times.tls_verdict_ms = handshake.verdict.map(millis);
                outcome.tls = Some(handshake.info);
                outcome.warnings = handshake.warnings;
                Ok(handshake.stream)
            }
            Err(TlsFailure {
                failure,
                info,
                chain,
            }) => {
                self.log_chain(&chain);
                outcome.tls = info;
                Err(failure)
            }
        }
    }

    /// The certificates the server presented.
    fn log_chain(&self, chain: &[String]) {
        for (i, line) in chain.iter().enumerate() {
            self.log_step(|| format!("certificate {i}: {line}"));
        }
    }

    /// The HTTP request or WebSocket upgrade, and the status it drew.
    async fn http(
        &self,
        stream: BoxStream,
        forwarded: Option<Forwarded>,
        outcome: &mut Outcome,
    ) -> Result<(), Failure> {
        let spec = self.spec;
        let host = match spec.ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => spec.host().to_string(),
        };
        let authority = match self.dest.port() {
            port if Some(port) == spec.probe().default_port() => host,
            port => format!("{host}:{port}"),
        };
        let request = HttpRequest {
            authority,
            path: spec.path.clone().unwrap_or_else(|| "/".into()),
            websocket: spec.probe().is_websocket(),
            expect: spec.expect.clone(),
            forwarded,
            client_cert: outcome
                .tls
                .as_ref()
                .filter(|tls| tls.client_cert_requested)
                .map(|_| self.shared.tls.has_identity()),
            kong_cluster: spec.probe() == Probe::KongCluster,
            subprotocol: (spec.probe() == Probe::KongCluster && spec.outlet.rpc)
                .then_some(http::KONG_RPC_PROTOCOL),
        };
        let exchange = http::exchange(stream, &request, self.peer(), self.shared.budget).await;
        outcome.times.http_ms = exchange.ttfb.map(millis);
        outcome.http_status = exchange.status;
        if let Some(status) = exchange.status {
            self.log_step(|| {
                let reason = hyper::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or_default();
                format!("> GET {}  < HTTP/1.1 {status} {reason}", request.path)
            });
        }
        outcome.warnings.extend(exchange.warning);
        let not_asked = spec.probe() == Probe::KongCluster
            && self.shared.tls.has_identity()
            && outcome
                .tls
                .as_ref()
                .is_some_and(|tls| !tls.client_cert_requested);
        match exchange.failure {
            // A Kong control plane always asks for the node's certificate: a handshake that did
            // not, then an upgrade that failed, is something in front of it that completes TLS
            // itself, so the certificate never reaches Kong.
            Some(failure) if not_asked && Cause::ClientCertNotAsked.refines(failure.kind) => {
                Err(failure.because(Cause::ClientCertNotAsked, self.peer(), Default::default()))
            }
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}
