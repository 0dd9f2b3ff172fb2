//! `preflight listen`: the responder, and its log on stdout.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::SystemTime;

use super::Failure;
use super::runtime::{CHECKS_STARTED, Stop};

pub(crate) fn listen(
    args: &preflight::cli::ListenArgs,
    runtime: &tokio::runtime::Runtime,
    stop: &Stop,
) -> Result<u8, Failure> {
    let log = Log::start();
    runtime.block_on(async {
        let responder = preflight::listen::bind(args.bind, &args.tcp, &args.udp).await?;
        CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
        let limit = args.for_;
        let stop = async move {
            match limit {
                Some(d) => tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = stop.wait() => {}
                },
                None => stop.wait().await,
            }
        };
        responder.serve(stop, move |event| log.line(event)).await;
        Ok(0)
    })
}

/// The responder's log: lines go to stdout from a thread of their own through a bounded
/// queue, so a stdout nobody reads never holds up an answer or the shutdown. When the queue
/// is full, lines are dropped and counted, and the count is logged once stdout moves again.
#[derive(Clone)]
pub(crate) struct Log {
    queue: std::sync::mpsc::SyncSender<String>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Log {
    /// Lines held while stdout is slow; beyond that they are dropped.
    const QUEUE: usize = 4096;

    pub(crate) fn start() -> Log {
        use std::sync::atomic::Ordering;
        let (queue, lines) = std::sync::mpsc::sync_channel::<String>(Self::QUEUE);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::spawn(move || {
            for line in lines {
                let mut out = io::stdout().lock();
                let lost = counted.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let _ = writeln!(
                        out,
                        "{lost} log lines dropped: standard output was not read"
                    );
                }
                // A closed stdout must not stop the responder.
                let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
            }
        });
        Log { queue, dropped }
    }

    pub(crate) fn line(&self, event: preflight::listen::Event) {
        let now = humantime::format_rfc3339_seconds(SystemTime::now());
        if self.queue.try_send(format!("{now} {event}\n")).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
