//! The progress bar on stderr while checks run: checks done of total, and the one that has
//! been running longest. Drawn only on a terminal; the report on stdout is written after the
//! bar is cleared. The only module that knows indicatif.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

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
                    let text = format!("waiting on {id} ({:.1} s)", since.elapsed().as_secs_f64());
                    // Half the line at most: the bar keeps the rest.
                    let room = usize::from(Stderr.width()) / 2;
                    let _ = match text.chars().count() > room {
                        true => write!(
                            out,
                            "{}…",
                            text.chars()
                                .take(room.saturating_sub(1))
                                .collect::<String>()
                        ),
                        false => out.write_str(&text),
                    };
                }
            }
        };
        let style =
            ProgressStyle::with_template("{spinner} {pos}/{len} checks {wide_bar} {slowest}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .progress_chars("=> ")
                .with_key("slowest", slowest);
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            ProgressDrawTarget::term_like(Box::new(Stderr)),
        )
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

/// Standard error as the bar's terminal, as wide as `COLUMNS` says or else as the terminal
/// is now (asked at each redraw, so a resized window is followed), 80 when neither is known.
#[derive(Debug)]
struct Stderr;

impl Stderr {
    fn write(&self, text: &str) -> io::Result<()> {
        io::stderr().lock().write_all(text.as_bytes())
    }

    /// Moves the cursor `n` places in `direction` (ECMA-48's CUU, CUD, CUF, CUB: `A` to `D`).
    fn cursor(&self, n: usize, direction: char) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.write(&format!("\x1b[{n}{direction}")),
        }
    }
}

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|&c| c > 0)
            .or_else(|| {
                rustix::termios::tcgetwinsize(io::stderr())
                    .ok()
                    .map(|size| size.ws_col)
                    .filter(|&c| c > 0)
            })
            .unwrap_or(80)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}
