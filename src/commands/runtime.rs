//! The runtime and the signals: SIGINT, SIGTERM and (but for `serve`) SIGHUP end a run, and a
//! process still alive a second later ends with one line.

use std::io;

use preflight::error::{io_text, without_os_error};

/// The runtime and the signal handlers. Failures here (too few file descriptors or threads
/// allowed) are one line and exit 2, not a panic: tokio panics when it cannot spawn a worker,
/// so that is caught too, with the panic's own message kept quiet.
pub(crate) fn start_runtime(hangup_stops: bool) -> Result<(tokio::runtime::Runtime, Stop), String> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let built = std::panic::catch_unwind(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let stop = Stop::install(&runtime, hangup_stops)?;
        Ok::<_, io::Error>((runtime, stop))
    });
    std::panic::set_hook(quiet);
    match built {
        Ok(Ok(started)) => Ok(started),
        Ok(Err(err)) => Err(limits_hint(&io_text(&err))),
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(limits_hint(&without_os_error(&text)))
        }
    }
}

pub(crate) fn limits_hint(cause: &str) -> String {
    format!(
        "{cause}; the process limits are too low (raise ulimit -n to at least 64 and ulimit -u above the processes this user already runs)"
    )
}

/// Set once SIGINT or SIGTERM (or, but for `serve`, SIGHUP) arrives. Installed before
/// anything else, so that an early signal is kept and the run it interrupts still writes its
/// report. A process still alive a second after the signal (its setup waiting on standard
/// input, or its report on a reader that does not read) says so in one line and exits.
#[derive(Clone)]
pub(crate) struct Stop(pub(crate) tokio::sync::watch::Receiver<bool>);

/// Whether the work (checks, a responder, serving) has started: what the line of a forced
/// exit says.
pub(crate) static CHECKS_STARTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// How long a process may take to end after SIGTERM or Ctrl-C.
pub(crate) const GRACE: std::time::Duration = std::time::Duration::from_secs(1);

impl Stop {
    /// `hangup_stops`: SIGHUP ends the run as SIGTERM does (every subcommand but `serve`,
    /// which reloads on it).
    pub(crate) fn install(
        runtime: &tokio::runtime::Runtime,
        hangup_stops: bool,
    ) -> io::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        let _inside = runtime.enter();
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        // Registered for serve too, from the start: its reloads listen for it, and a SIGHUP
        // before they do must not end the process (tokio keeps a handler once registered).
        let hangup = signal(SignalKind::hangup())?;
        let mut hangup = hangup_stops.then_some(hangup);
        let (tell, heard) = tokio::sync::watch::channel(false);
        runtime.spawn(async move {
            let hung_up = async {
                match &mut hangup {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            };
            let name = tokio::select! {
                _ = interrupt.recv() => "Ctrl-C",
                _ = terminate.recv() => "SIGTERM",
                _ = hung_up => "SIGHUP",
            };
            let _ = tell.send(true);
            tokio::time::sleep(GRACE).await;
            let when = match CHECKS_STARTED.load(std::sync::atomic::Ordering::Relaxed) {
                true => "before it could finish",
                false => "before any check ran; nothing was probed",
            };
            eprintln!("preflight: stopped by {name} {when}");
            std::process::exit(1);
        });
        Ok(Stop(heard))
    }

    /// Completes once a signal has arrived (at once if one already has).
    pub(crate) async fn wait(&self) {
        let mut heard = self.0.clone();
        if heard.wait_for(|&stop| stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
