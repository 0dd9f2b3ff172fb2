//! Probes: DNS, TCP, UDP, proxies, TLS, HTTP and local binds, each bounded by a timeout per phase and by the
//! run's deadline. A failed probe is data (`Failure`), never an error that ends the run.

pub(crate) mod bind;
pub(crate) mod dns;
pub(crate) mod first_words;
pub(crate) mod http;
pub(crate) mod intercept;
pub(crate) mod proxy;
pub(crate) mod tcp;
pub(crate) mod tls;
pub mod trace;
pub(crate) mod udp;

pub use dns::{DnsConfig, Family, Pin};
pub use http::Expect;
pub use tls::{TlsInfo, TlsRequest, TlsSettings, Trust};

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::failure::{Failure, FailureKind, Peer, Phase};

/// A connection the later phases run over: a TCP stream, or a tunnel through a proxy.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// A connection as the steps see it: TCP, a tunnel through a proxy, or TLS over either.
pub type BoxStream = Box<dyn Stream>;

/// What a connection reached, for messages: an address (`192.0.2.7:443`), or a name through a
/// proxy (`cp.example:443 through http://proxy:3128`).
#[derive(Debug, Clone)]
pub struct Dialed {
    /// The port the endpoint listens on.
    pub port: u16,
    /// The address, when this host chose it (not when a proxy resolves the name).
    pub ip: Option<IpAddr>,
    /// How the host is named in messages.
    pub label: String,
}

/// The time limits of one check: each phase gets `timeout`, and none goes past `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Each phase's limit (`--timeout`).
    pub timeout: Duration,
    /// When the run must end (`--deadline`).
    pub deadline: Instant,
    /// The TCP connect's own limit (`--connect-timeout`, curl's); `timeout` when `None`.
    pub connect: Option<Duration>,
}

/// Why a bounded wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elapsed {
    /// The phase's own timeout, of this length, ran out.
    Timeout(Duration),
    /// The run's deadline came first.
    Deadline,
}

impl Elapsed {
    /// The failure kind for `phase` running out of time this way.
    pub fn kind(self, phase: Phase) -> FailureKind {
        match self {
            Elapsed::Timeout(_) => phase.timeout_kind(),
            Elapsed::Deadline => FailureKind::Deadline,
        }
    }

    /// The failure of `phase` running out of time while `what` (e.g. "no answer from …").
    pub fn failure(self, phase: Phase, what: &str, peer: Peer<'_>) -> Failure {
        let when = match self {
            Elapsed::Timeout(limit) => format!("within {}", duration_text(limit)),
            Elapsed::Deadline => "before the run's --deadline".to_string(),
        };
        Failure::new(self.kind(phase), phase, format!("{what} {when}"), peer)
    }
}

impl Budget {
    /// The budget of a TCP connect: `--connect-timeout` when given.
    pub fn for_connect(self) -> Budget {
        Budget {
            timeout: self.connect.unwrap_or(self.timeout),
            ..self
        }
    }

    /// Runs `fut` for at most this phase's timeout, and not past the deadline.
    pub async fn limit<F: Future>(&self, fut: F) -> Result<F::Output, Elapsed> {
        let phase_end = Instant::now() + self.timeout;
        let (end, why) = if self.deadline < phase_end {
            (self.deadline, Elapsed::Deadline)
        } else {
            (phase_end, Elapsed::Timeout(self.timeout))
        };
        tokio::time::timeout_at(end, fut).await.map_err(|_| why)
    }
}

/// A duration as people write it, its number never far from its unit: `500 ms`, `4.8 s`,
/// `2 min`, `1 h 30 min`.
pub fn duration_text(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        return format!("{} ms", trimmed(ms, 1));
    }
    let seconds = d.as_secs_f64();
    if seconds < 60.0 {
        return format!("{} s", trimmed(seconds, 1));
    }
    let minutes = d.as_secs() / 60;
    let (hours, minutes, rest) = (minutes / 60, minutes % 60, d.as_secs() % 60);
    match (hours, minutes, rest) {
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// `value` with at most `decimals` decimals, without trailing zeros.
fn trimmed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

/// Milliseconds, rounded to a hundredth, for reports.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let text = |ms: u64| duration_text(Duration::from_millis(ms));
        assert_eq!(text(25), "25 ms");
        assert_eq!(text(500), "500 ms");
        assert_eq!(text(4800), "4.8 s");
        assert_eq!(text(2000), "2 s");
        assert_eq!(text(120_000), "2 min");
        assert_eq!(text(90_000), "1 min 30 s");
        assert_eq!(text(5_400_000), "1 h 30 min");
        assert_eq!(duration_text(Duration::from_micros(1500)), "1.5 ms");
    }
}
