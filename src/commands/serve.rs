//! `preflight serve`: the plan every `--interval`, served; SIGHUP reloads it.

use std::sync::Arc;

use preflight::error::{InputError, io_text};
use preflight::settings::Settings;

use super::Failure;
use super::runtime::{CHECKS_STARTED, Stop};

/// Runs the checks every `--interval` and serves the last round until SIGTERM or Ctrl-C;
/// SIGHUP reads the configuration again.
pub(crate) fn serve(
    args: preflight::cli::ServeArgs,
    runtime: &tokio::runtime::Runtime,
    stop: &Stop,
) -> Result<u8, Failure> {
    let check = &args.check;
    for (given, flag) in [
        (check.watch.is_some(), "--watch"),
        (check.output.is_some(), "--output"),
        (check.allowlist_failed.is_some(), "--allowlist-failed"),
        (check.json_file.is_some(), "--json"),
        (check.junit_file.is_some(), "--junit"),
        (check.markdown_file.is_some(), "--markdown"),
        (check.discover_proxy, "--discover-proxy"),
    ] {
        if given {
            return Err(InputError::Usage {
                flag,
                reason: "serve runs rounds of its own and serves them; use check for this".into(),
            }
            .into());
        }
    }
    let configuration = serve_configuration(check)?;
    for note in &configuration.settings.warnings {
        eprintln!("preflight: note: {note}");
    }
    let check = Arc::new(args.check);
    let options = preflight::serve::Options {
        interval: args.interval,
        probe: args.allow_probe.then(|| {
            args.probe_allow
                .as_deref()
                .map(preflight::route::HostList::parse)
        }),
        reload: Some(Box::new(move || {
            serve_configuration(&check).map_err(|err| err.to_string())
        })),
        log: Box::new(|line| eprintln!("preflight: {line}")),
        round_log: Box::new(|line| eprintln!("{line}")),
        log_format: args.log_format,
        log_rounds: args.log_rounds,
    };
    let addr = args.listen.unwrap_or_else(|| {
        std::net::SocketAddr::from(([127, 0, 0, 1], preflight::cli::SERVE_PORT))
    });
    let listener = runtime
        .block_on(preflight::serve::bind(addr))
        .map_err(|err| InputError::Usage {
            flag: "--listen",
            reason: format!("cannot listen on {addr}: {}", io_text(&err)),
        })?;
    eprintln!("preflight: serving on http://{addr}/ (metrics on /metrics, health on /healthz)");
    CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    runtime.block_on(preflight::serve::serve(
        listener,
        configuration,
        options,
        stop.0.clone(),
    ));
    Ok(0)
}

/// serve's plan, settings and `/probe` planner, from the command line and the files it names.
pub(crate) fn serve_configuration(
    check: &preflight::cli::CheckArgs,
) -> Result<preflight::serve::Configuration, InputError> {
    let (mut settings, plan) = Settings::from_args(check)?;
    // serve writes its report as metrics and /healthz, never as a one-off JSON report.
    settings.run.json_pieces = false;
    let planner = preflight::settings::probe_planner(check)?;
    Ok(preflight::serve::Configuration {
        plan,
        settings,
        planner: Box::new(planner),
    })
}
