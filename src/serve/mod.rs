//! `preflight serve`: the plan run every `--interval`, one round at a time, and the last round
//! served over HTTP for Prometheus and people: `/metrics` (the text exposition format),
//! `/healthz`, `/` (a status page), and `/probe` (one check now, as blackbox_exporter's
//! endpoint, only with `--allow-probe`).

mod connections;
pub mod log;
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
use tokio::net::TcpListener;

use crate::failure::Failure;
use crate::plan::Plan;
use crate::report::{Report, Status};
use crate::route::HostList;
use crate::settings::Settings;

/// The longest request line accepted (path and query).
const MAX_URI: usize = 2048;
/// The longest a reload may take to read its files.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How `serve` answers, beside the plan it runs.
pub struct Options {
    /// Time between the start of one round and the next.
    pub interval: Duration,
    /// `--allow-probe`, with `--probe-allow`'s list when given.
    pub probe: Option<Option<HostList>>,
    /// Reads the configuration again (profiles, kong.conf, targets file, certificates) on
    /// SIGHUP; `None`: SIGHUP is ignored.
    pub reload: Option<Reload>,
    /// Where serve's own events (a reload, a refused one) are written: a line each.
    pub log: Box<dyn Fn(&str) + Send + Sync>,
    /// Where each round's and transition's line is written (`--log-format`, `--log-rounds`).
    pub round_log: Box<dyn Fn(&str) + Send + Sync>,
    /// How those lines are written.
    pub log_format: log::LogFormat,
    /// Which rounds are logged.
    pub log_rounds: log::LogRounds,
}

/// What the rounds and `/probe` run: replaced whole by a reload.
pub struct Configuration {
    /// The plan the rounds run.
    pub plan: Plan,
    /// The settings it runs with (the engine's, `--strict` …).
    pub settings: Settings,
    /// Makes the plan of one `/probe` (the target as on the command line), settled as the
    /// serve's own plan is.
    pub planner: Planner,
}

/// Makes the plan of one `/probe` target, or says why it cannot.
pub type Planner = Box<dyn Fn(&crate::settings::ProbeQuery) -> Result<Plan, String> + Send + Sync>;

impl crate::rounds::Runnable for Configuration {
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn config(&self) -> &crate::runner::RunConfig {
        &self.settings.run
    }
}

/// Builds the configuration anew from the command line and the files it names.
pub type Reload = Box<dyn Fn() -> Result<Configuration, String> + Send + Sync>;

/// What the rounds have shown, as serve serves it: the last report, since when each check
/// has its status, its last failure, its flaps, and the rendered responses.
#[derive(Default)]
pub struct Scoreboard {
    /// The last round's report.
    pub report: Option<Arc<Report>>,
    /// When the last round ended.
    pub ended: Option<SystemTime>,
    /// Rounds run since serve started.
    pub rounds: u64,
    /// Per check: its status and since when.
    pub since: HashMap<String, (Status, SystemTime)>,
    /// Per check: its last failure, kept after it recovers, for the page.
    pub last_failure: HashMap<String, (Failure, SystemTime)>,
    /// Per check: how often it went down (ok or warn to fail) and up.
    pub transitions: HashMap<String, (u64, u64)>,
    /// The expiry of the client certificate the checks offer (seconds since the epoch).
    pub client_cert_expiry: Option<f64>,
    /// `/metrics` of the last round, in the text format and in OpenMetrics, rendered as the
    /// round ends (`expose`) and then served to every scraper from the same bytes.
    exposed: [Option<Bytes>; 2],
    /// The expositions scrapers have asked for: rendered as each round ends.
    asked: [bool; 2],
    /// The last round's report as JSON, for `/healthz`, likewise.
    report_json: Option<Bytes>,
}

impl Scoreboard {
    /// Takes in a round's report; returns the checks whose status changed.
    fn observe(&mut self, report: Report, now: SystemTime) -> Vec<log::Transition> {
        let mut changed = Vec::new();
        for check in &report.checks {
            let id = &check.endpoint.id;
            let status = check.path.status;
            let before = self.since.get(id).map(|(s, _)| *s);
            if before != Some(status) {
                self.since.insert(id.clone(), (status, now));
                // The first round's statuses are a round's line, not transitions.
                if let Some(before) = before {
                    changed.push(log::Transition {
                        id: id.clone(),
                        target: check.endpoint.target.clone(),
                        from: log::status_word(before),
                        to: log::status_word(status),
                        kind: check.path.error.as_ref().map(|e| e.kind.to_string()),
                        cause: check.path.error.as_ref().map(|e| e.cause.to_string()),
                    });
                }
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
        self.report = Some(Arc::new(report));
        self.ended = Some(now);
        self.rounds += 1;
        self.exposed = [None, None];
        self.report_json = None;
        changed
    }

    /// The metrics of the last round in `exposition`: rendered once per round as it ends
    /// (`expose`), here only after a reload or before the first round.
    fn exposition(&mut self, exposition: metrics::Exposition) -> Bytes {
        let at = usize::from(exposition == metrics::Exposition::OpenMetrics);
        self.asked[at] = true;
        if let Some(bytes) = &self.exposed[at] {
            return bytes.clone();
        }
        let bytes = Bytes::from(metrics::render(&self.snapshot(), exposition));
        self.exposed[at] = Some(bytes.clone());
        bytes
    }

    /// What the metrics show of the last round, taken under the lock and rendered without it.
    fn snapshot(&self) -> metrics::Snapshot {
        let transitions = self.report.as_ref().map_or_else(Vec::new, |report| {
            report
                .checks
                .iter()
                .map(|c| {
                    self.transitions
                        .get(&c.endpoint.id)
                        .copied()
                        .unwrap_or_default()
                })
                .collect()
        });
        metrics::Snapshot {
            report: self.report.clone(),
            transitions,
            rounds: self.rounds,
            ended: self.ended,
            client_cert_expiry: self.client_cert_expiry,
        }
    }
}

/// Renders the expositions scrapers ask for (the text format, OpenMetrics) of the round that
/// just ended, outside the lock, so that every scrape of the round sends the same bytes and
/// none pays for their making; a newer round or a reload that came in the meantime keeps its
/// own.
fn expose(state: &SharedScoreboard) {
    let (snapshot, asked) = {
        let state = state.lock().unwrap_or_else(|e| e.into_inner());
        (state.snapshot(), state.asked)
    };
    let mut rendered = [None, None];
    for (at, exposition) in [metrics::Exposition::Text, metrics::Exposition::OpenMetrics]
        .into_iter()
        .enumerate()
    {
        if asked[at] {
            rendered[at] = Some(Bytes::from(metrics::render(&snapshot, exposition)));
        }
    }
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    if state.rounds == snapshot.rounds && state.client_cert_expiry == snapshot.client_cert_expiry {
        state.exposed = rendered;
    }
}

type SharedScoreboard = Arc<Mutex<Scoreboard>>;

/// Serves until `stop` turns true (SIGTERM, Ctrl-C): the rounds in one task, the HTTP
/// connections in others; SIGHUP reloads the configuration.
pub async fn serve(
    listener: TcpListener,
    configuration: Configuration,
    options: Options,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let state: SharedScoreboard = Arc::default();
    let expiry = client_cert_expiry(&configuration.settings);
    state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .client_cert_expiry = expiry;
    let (replace, active) = tokio::sync::watch::channel(Arc::new(configuration));
    let options = Arc::new(options);
    let rounds = tokio::spawn({
        let (state, options) = (state.clone(), options.clone());
        crate::rounds::repeat(
            active.clone(),
            options.interval,
            stop.clone(),
            None,
            move |report| {
                let (format, rounds) = (options.log_format, options.log_rounds);
                let (round, changed) = {
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    let round = log::round_line(&report, state.rounds + 1, format, rounds);
                    (round, state.observe(report, SystemTime::now()))
                };
                expose(&state);
                let lines = log::transition_lines(&changed, format, rounds);
                for line in round.iter().chain(&lines) {
                    (options.round_log)(line);
                }
                std::ops::ControlFlow::Continue(())
            },
        )
    });
    let reloads = tokio::spawn(reloads(replace, state.clone(), options.clone()));
    let open = connections::Open::default();
    let accepting = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors: let a held connection end before trying again.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (state, active, options) = (state.clone(), active.clone(), options.clone());
            open.serve(stream, move |request, busy| {
                let (state, active, options) = (state.clone(), active.clone(), options.clone());
                async move {
                    let configuration = active.borrow().clone();
                    let response = answer(request, state, configuration, options).await;
                    response.map(|r| r.map(|body| connections::Tracked::new(body, busy)))
                }
            });
        }
    };
    tokio::select! {
        () = accepting => {}
        () = crate::rounds::stopped(stop) => {}
    }
    rounds.abort();
    reloads.abort();
}

/// The expiry of the client certificate `settings` offer, for its gauge.
fn client_cert_expiry(settings: &Settings) -> Option<f64> {
    settings
        .run
        .tls
        .identity
        .as_deref()
        .and_then(crate::probe::tls::client_cert_not_after)
}

/// Reloads on every SIGHUP: the files are read again off the runtime's workers; a
/// configuration that cannot be built is logged and the one in use kept.
async fn reloads(
    replace: tokio::sync::watch::Sender<Arc<Configuration>>,
    state: SharedScoreboard,
    options: Arc<Options>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(_) = &options.reload else {
        return;
    };
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangup.recv().await.is_some() {
        let reloading = options.clone();
        let built = tokio::task::spawn_blocking(move || match &reloading.reload {
            Some(reload) => reload(),
            None => Err("reloading is off".into()),
        });
        let outcome = match tokio::time::timeout(RELOAD_TIMEOUT, built).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err("the reload stopped unexpectedly".into()),
            Err(_) => Err(format!(
                "reading the files took longer than {} s",
                RELOAD_TIMEOUT.as_secs()
            )),
        };
        match outcome {
            Ok(configuration) => {
                let checks = configuration.plan.checks.len();
                let expiry = client_cert_expiry(&configuration.settings);
                {
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    state.client_cert_expiry = expiry;
                    state.exposed = [None, None];
                }
                replace.send_replace(Arc::new(configuration));
                (options.log)(&format!(
                    "reloaded on SIGHUP: {checks} checks, from the next round"
                ));
            }
            Err(why) => (options.log)(&format!(
                "reload on SIGHUP refused, the configuration in use is kept: {}",
                crate::sanitize::message(&why)
            )),
        }
    }
}

/// The answer to one request.
async fn answer(
    request: Request<Incoming>,
    state: SharedScoreboard,
    configuration: Arc<Configuration>,
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
    let settings = &configuration.settings;
    let response = match uri.path() {
        "/metrics" => {
            let bytes = state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .exposition(exposition);
            with_type(StatusCode::OK, exposition.content_type(), bytes)
        }
        "/healthz" => {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            healthz(&mut state, settings.strict)
        }
        "/" => {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            let html = page::render(&state, options.interval);
            with_type(StatusCode::OK, "text/html; charset=utf-8", html)
        }
        "/probe" => {
            let query = uri.query().unwrap_or("");
            probe(query, exposition, &configuration, &options).await
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, / and /probe are served\n",
        ),
    };
    Ok(response)
}

/// 200 when every required check passed in the last round, 503 otherwise (also before the
/// first round ends), with the report as JSON.
fn healthz(state: &mut Scoreboard, strict: bool) -> Response<Full<Bytes>> {
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
    let body = state
        .report_json
        .get_or_insert_with(|| {
            Bytes::from(serde_json::to_string_pretty(report.as_ref()).unwrap_or_default())
        })
        .clone();
    with_type(status, "application/json", body)
}

/// One probe now, as blackbox_exporter's `/probe?target=&module=`: `module` is the probe
/// (`tcp`, `tls`, `https`, `dns`, `wss` …) and `target` what follows `://`; or `module` is a
/// built-in profile and the other parameters its variables.
async fn probe(
    query_text: &str,
    exposition: metrics::Exposition,
    configuration: &Configuration,
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
    let plan = match (configuration.planner)(&query) {
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
    let settings = &configuration.settings;
    let report =
        crate::runner::round(&plan, &settings.run, (None, None), std::future::pending()).await;
    with_type(
        StatusCode::OK,
        exposition.content_type(),
        metrics::render_probe(report, exposition),
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

fn with_type(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
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
