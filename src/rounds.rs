//! Rounds: a plan run again every interval, the one loop `check --watch` and `serve` share. It
//! decides when the next round starts (an interval after the last one started, or at once when
//! a round took longer or a new plan arrives), and that an interrupt ends the round under way
//! and the loop; what is done with each round's report is the caller's.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::plan::Plan;
use crate::report::Report;
use crate::runner::{self, RunConfig, StepLog};

/// What a round runs: a plan, settled, and the engine's configuration.
pub trait Runnable: Send + Sync {
    /// The plan to run.
    fn plan(&self) -> &Plan;
    /// What the engine runs it with.
    fn config(&self) -> &RunConfig;
}

impl Runnable for (Plan, RunConfig) {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn config(&self) -> &RunConfig {
        &self.1
    }
}

/// Completes once `stop` turns true (never when its sender is gone without saying so).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|&s| s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs what `active` holds every `interval` until `stop` turns true, a round is interrupted,
/// or `observe` breaks. A new value in `active` (a reload) starts a round at once. Each
/// round's report goes to `observe`, an interrupted one too (its `interrupted` is set), after
/// which the loop ends.
pub async fn repeat<R: Runnable + ?Sized>(
    mut active: watch::Receiver<Arc<R>>,
    interval: Duration,
    stop: watch::Receiver<bool>,
    trace: Option<StepLog>,
    mut observe: impl FnMut(Report) -> ControlFlow<()>,
) {
    let mut ticks = tokio::time::interval(interval);
    // A round longer than the interval delays the next one rather than bunching them.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stopped(stop.clone()) => return,
            _ = ticks.tick() => {}
            Ok(()) = active.changed() => ticks.reset(),
        }
        let current = active.borrow_and_update().clone();
        let report = runner::round(
            current.plan(),
            current.config(),
            (None, trace.clone()),
            stopped(stop.clone()),
        )
        .await;
        let interrupted = report.interrupted;
        if observe(report).is_break() || interrupted {
            return;
        }
    }
}
