//! The progress bar on stderr while checks run: checks done of total, and the one that has
//! been running longest. Drawn only on a terminal; the report on stdout is written after the
//! bar is cleared. The only module that knows indicatif.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::runner::Progress;

/// How often the bar (and the running check's time) is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// The checks running now, by index: (id, started).
type Running = Arc<Mutex<BTreeMap<usize, (String, Instant)>>>;

/// The progress bar on a terminal: checks done, the one still running.
pub struct Bar {
    bar: ProgressBar,
    running: Running,
}

impl Bar {
    /// A bar for `total` checks, when stderr is a terminal and the user did not ask for quiet.
    pub fn for_terminal(total: usize, quiet: bool) -> Option<Arc<Bar>> {
        (!quiet && std::io::stderr().is_terminal()).then(|| Bar::new(total))
    }

    fn new(total: usize) -> Arc<Bar> {
        let running: Running = Arc::default();
        let slowest = {
            let running = running.clone();
            move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                let running = running.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((id, since)) = running.values().min_by_key(|(_, since)| *since) {
                    let _ = write!(
                        out,
                        "waiting on {id} ({:.1} s)",
                        since.elapsed().as_secs_f64()
                    );
                }
            }
        };
        let style = ProgressStyle::with_template("{spinner} {pos}/{len} checks  {slowest}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key("slowest", slowest);
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
            .with_style(style);
        bar.enable_steady_tick(TICK);
        Arc::new(Bar { bar, running })
    }

    /// Erases the bar: call before writing the report.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn started(&self, index: usize, id: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(index, (id.to_string(), Instant::now()));
    }

    fn finished(&self, index: usize) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&index);
        self.bar.inc(1);
    }
}
