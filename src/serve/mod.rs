//! `preflight serve`: the plan run every `--interval`, one round at a time, and the last round
//! served over HTTP for Prometheus and people: `/metrics` (the text exposition format),
//! `/healthz`, `/` (a status page), and `/probe` (one check now, as blackbox_exporter's
//! endpoint, only with `--allow-probe`).

mod metrics;
pub mod page;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::failure::Failure;
use crate::plan::Plan;
use crate::report::{Report, Status};
use crate::route::HostList;
use crate::settings::Settings;

/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 64;
/// The longest a connection may take to send its request head, and to be served.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request line accepted (path and query).
const MAX_URI: usize = 2048;

/// How `serve` answers, beside the plan it runs.
pub struct Options {
    pub interval: Duration,
    /// `--allow-probe`, with `--probe-allow`'s list when given.
    pub probe: Option<Option<HostList>>,
    /// Makes the plan of one `/probe` (the target as on the command line), settled as the
    /// serve's own plan is.
    pub planner: Planner,
}

/// Makes the plan of one `/probe` target, or says why it cannot.
pub type Planner = Box<dyn Fn(&crate::settings::ProbeQuery) -> Result<Plan, String> + Send + Sync>;

/// What the rounds have shown.
#[derive(Default)]
pub struct State {
    /// The last round's report.
    pub report: Option<Report>,
    /// When the last round ended.
    pub ended: Option<SystemTime>,
    pub rounds: u64,
    /// Per check: its status and since when.
    pub since: HashMap<String, (Status, SystemTime)>,
    /// Per check: its last failure, kept after it recovers, for the page.
    pub last_failure: HashMap<String, (Failure, SystemTime)>,
    /// Per check: how often it went down (ok or warn to fail) and up.
    pub transitions: HashMap<String, (u64, u64)>,
    /// The expiry of the client certificate the checks offer (seconds since the epoch).
    pub client_cert_expiry: Option<f64>,
}

impl State {
    /// Takes in a round's report.
    fn observe(&mut self, report: Report, now: SystemTime) {
        for check in &report.checks {
            let id = &check.endpoint.id;
            let status = check.path.status;
            let before = self.since.get(id).map(|(s, _)| *s);
            if before != Some(status) {
                self.since.insert(id.clone(), (status, now));
            }
            let flips = self.transitions.entry(id.clone()).or_default();
            match (before, status) {
                (Some(Status::Ok | Status::Warn), Status::Fail) => flips.0 += 1,
                (Some(Status::Fail), Status::Ok | Status::Warn) => flips.1 += 1,
                _ => {}
            }
            if let (Status::Fail, Some(error)) = (status, &check.path.error) {
                self.last_failure.insert(id.clone(), (error.clone(), now));
            }
        }
        // Checks no longer in the plan are forgotten: the maps stay as large as the plan.
        let ids: std::collections::HashSet<&String> =
            report.checks.iter().map(|c| &c.endpoint.id).collect();
        self.since.retain(|id, _| ids.contains(id));
        self.last_failure.retain(|id, _| ids.contains(id));
        self.transitions.retain(|id, _| ids.contains(id));
        self.report = Some(report);
        self.ended = Some(now);
        self.rounds += 1;
    }
}

type Shared = Arc<Mutex<State>>;

/// Completes once `stop` says so (never when its sender is gone without saying it).
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|&s| s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Serves until `stop` turns true (SIGTERM, Ctrl-C): the rounds in one task, the HTTP
/// connections in others.
pub async fn serve(
    listener: TcpListener,
    plan: Plan,
    settings: Settings,
    options: Options,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let state: Shared = Arc::default();
    if let Some(identity) = settings.tls.identity.as_deref() {
        let expiry = crate::probe::tls::client_cert_not_after(identity);
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .client_cert_expiry = expiry;
    }
    let settings = Arc::new(settings);
    let options = Arc::new(options);
    let rounds = tokio::spawn(rounds(
        plan,
        settings.clone(),
        options.interval,
        state.clone(),
        stop.clone(),
    ));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let accepting = async {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (state, settings, options) = (state.clone(), settings.clone(), options.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    answer(request, state.clone(), settings.clone(), options.clone())
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(REQUEST_TIMEOUT)
                    .max_buf_size(16 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(REQUEST_TIMEOUT * 3, connection).await;
                drop(permit);
            });
        }
    };
    tokio::select! {
        () = accepting => {}
        () = stopped(stop) => {}
    }
    rounds.abort();
}

/// One round at a time, each starting `interval` after the one before started (or at once
/// when a round took longer), until `stop`.
async fn rounds(
    plan: Plan,
    settings: Arc<Settings>,
    interval: Duration,
    state: Shared,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let start = tokio::time::Instant::now();
        let report =
            crate::runner::round(&plan, &settings, (None, None), stopped(stop.clone())).await;
        let interrupted = report.interrupted;
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(report, SystemTime::now());
        if interrupted {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(start + interval) => {}
            () = stopped(stop.clone()) => return,
        }
    }
}

/// The answer to one request.
async fn answer(
    request: Request<Incoming>,
    state: Shared,
    settings: Arc<Settings>,
    options: Arc<Options>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
        return Ok(plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served\n",
        ));
    }
    let uri = request.uri();
    let exposition = metrics::Exposition::of(
        request
            .headers()
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    if uri.to_string().len() > MAX_URI {
        return Ok(plain(StatusCode::URI_TOO_LONG, "the request is too long\n"));
    }
    let response = match uri.path() {
        "/metrics" => {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            let text = metrics::render(&state, exposition);
            with_type(StatusCode::OK, exposition.content_type(), text)
        }
        "/healthz" => {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            healthz(&state, settings.strict)
        }
        "/" => {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            let html = page::render(&state, options.interval);
            with_type(StatusCode::OK, "text/html; charset=utf-8", html)
        }
        "/probe" => probe(uri.query().unwrap_or(""), exposition, &settings, &options).await,
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, / and /probe are served\n",
        ),
    };
    Ok(response)
}

/// 200 when every required check passed in the last round, 503 otherwise (also before the
/// first round ends), with the report as JSON.
fn healthz(state: &State, strict: bool) -> Response<Full<Bytes>> {
    let Some(report) = &state.report else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "no round has finished yet\n",
        );
    };
    let status = match report.exit_code(strict) {
        0 => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::to_string_pretty(report).unwrap_or_default();
    with_type(status, "application/json", body)
}

/// One probe now, as blackbox_exporter's `/probe?target=&module=`: `module` is the probe
/// (`tcp`, `tls`, `https`, `dns`, `wss` …) and `target` what follows `://`; or `module` is a
/// built-in profile and the other parameters its variables.
async fn probe(
    query_text: &str,
    exposition: metrics::Exposition,
    settings: &Settings,
    options: &Options,
) -> Response<Full<Bytes>> {
    let Some(allowed) = &options.probe else {
        return plain(
            StatusCode::FORBIDDEN,
            "/probe is off: start serve with --allow-probe to let callers choose targets\n",
        );
    };
    let mut query = crate::settings::ProbeQuery::default();
    for (key, value) in form_urlencoded(query_text) {
        match key.as_str() {
            "target" => query.target = Some(value),
            "module" => query.module = value,
            _ => query.variables.push((key, value)),
        }
    }
    if query.module.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            "give target and module: /probe?target=HOST:PORT&module=tls, or a profile: /probe?module=konnect&region=us\n",
        );
    }
    let plan = match (options.planner)(&query) {
        Ok(plan) => plan,
        Err(why) => return plain(StatusCode::BAD_REQUEST, &format!("{why}\n")),
    };
    if let Some(list) = allowed {
        let refused = plan
            .checks
            .iter()
            .any(|c| !list.allows(c.host(), c.ip, c.port()));
        if refused {
            return plain(
                StatusCode::FORBIDDEN,
                "the target is not on --probe-allow's list\n",
            );
        }
    }
    let report = crate::runner::round(&plan, settings, (None, None), std::future::pending()).await;
    with_type(
        StatusCode::OK,
        exposition.content_type(),
        metrics::render_probe(&report, exposition),
    )
}

/// The pairs of a query string, decoded.
fn form_urlencoded(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(16)
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(key), decode(value))
        })
        .collect()
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", text.to_string())
}

fn with_type(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Binds the listening socket (before anything runs, so that a taken port is exit 2).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
