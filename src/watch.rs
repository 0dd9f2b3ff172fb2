//! Watch mode: the same checks round after round. This module keeps the score (who went down,
//! who came back, for how long) from each round's report; it never prints or probes.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::failure::Failure;
use crate::report::{CheckResult, Report, Status};

/// An endpoint going down or coming back.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    /// A check that was up (ok or warn) failed.
    Down {
        /// The check's id.
        id: String,
        /// Its target.
        target: String,
        /// RFC 3339.
        at: String,
        /// Why it failed.
        error: Option<Failure>,
    },
    /// A check that was down is reached again.
    Up {
        /// The check's id.
        id: String,
        /// Its target.
        target: String,
        /// RFC 3339.
        at: String,
        /// How long it was down, in seconds.
        outage_s: f64,
    },
}

/// One endpoint's record over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointSummary {
    /// The check's id.
    pub id: String,
    /// Its target.
    pub target: String,
    /// Whether it is required.
    pub required: bool,
    /// Rounds in which the check ran.
    pub rounds: u32,
    /// Rounds it passed (ok or warn).
    pub ok: u32,
    /// Rounds it failed in.
    pub failures: u32,
    /// Times it went down after having been up.
    pub flaps: u32,
    /// The longest time down, in seconds (up to the end of the watch if still down).
    pub longest_outage_s: f64,
    /// Down when the watch ended.
    pub down: bool,
    /// Its last failure.
    pub last_error: Option<Failure>,
}

#[derive(Debug, Clone)]
struct Track {
    summary: EndpointSummary,
    /// `Some(up?)` once the endpoint has been seen.
    up: Option<bool>,
    down_since: Option<SystemTime>,
    longest: Duration,
}

/// The score of a watch.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    tracks: Vec<Track>,
    rounds: u32,
}

/// Seconds, to the millisecond.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

impl Watch {
    /// A watch with no round yet.
    pub fn new() -> Watch {
        Watch::default()
    }

    /// Rounds seen.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Scores one round's report, taken at `at`; returns what changed. In the first round,
    /// every endpoint that is down is a change.
    pub fn observe(&mut self, report: &Report, at: SystemTime) -> Vec<Change> {
        self.rounds += 1;
        let mut changes = Vec::new();
        for check in report
            .checks
            .iter()
            .filter(|c| c.path.status != Status::Skipped)
        {
            let track = self.track(check);
            let up = check.path.status != Status::Fail;
            track.summary.rounds += 1;
            if up {
                track.summary.ok += 1;
            } else {
                track.summary.failures += 1;
                track.summary.last_error = check.path.error.clone();
            }
            match (track.up, up) {
                (previous, false) if previous != Some(false) => {
                    // Down after having been up; down from the start is no flap.
                    if previous == Some(true) {
                        track.summary.flaps += 1;
                    }
                    track.down_since = Some(at);
                    changes.push(Change::Down {
                        id: check.endpoint.id.clone(),
                        target: check.endpoint.target.clone(),
                        at: rfc3339(at),
                        error: check.path.error.clone(),
                    });
                }
                (Some(false), true) => {
                    let outage = track
                        .down_since
                        .take()
                        .and_then(|since| at.duration_since(since).ok())
                        .unwrap_or_default();
                    track.longest = track.longest.max(outage);
                    changes.push(Change::Up {
                        id: check.endpoint.id.clone(),
                        target: check.endpoint.target.clone(),
                        at: rfc3339(at),
                        outage_s: seconds(outage),
                    });
                }
                _ => {}
            }
            track.up = Some(up);
        }
        changes
    }

    /// The record of `check`'s endpoint, new if it was not seen before.
    fn track(&mut self, check: &CheckResult) -> &mut Track {
        let id = &check.endpoint.id;
        let index = match self.tracks.iter().position(|t| &t.summary.id == id) {
            Some(i) => i,
            None => {
                self.tracks.push(Track {
                    summary: EndpointSummary {
                        id: id.clone(),
                        target: check.endpoint.target.clone(),
                        required: check.endpoint.required,
                        rounds: 0,
                        ok: 0,
                        failures: 0,
                        flaps: 0,
                        longest_outage_s: 0.0,
                        down: false,
                        last_error: None,
                    },
                    up: None,
                    down_since: None,
                    longest: Duration::ZERO,
                });
                self.tracks.len() - 1
            }
        };
        &mut self.tracks[index]
    }

    /// Each endpoint's record, as of `now` (an endpoint still down counts its outage so far).
    pub fn summary(&self, now: SystemTime) -> Vec<EndpointSummary> {
        self.tracks
            .iter()
            .map(|t| {
                let ongoing = t
                    .down_since
                    .and_then(|since| now.duration_since(since).ok())
                    .unwrap_or_default();
                EndpointSummary {
                    longest_outage_s: seconds(t.longest.max(ongoing)),
                    down: t.up == Some(false),
                    ..t.summary.clone()
                }
            })
            .collect()
    }

    /// 1 when a required endpoint failed in any round, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(
            self.tracks
                .iter()
                .any(|t| t.summary.required && t.summary.failures > 0),
        )
    }
}

/// One JSON line of a watch: the round's number, its changes and its whole report.
#[derive(Debug, Serialize)]
pub struct RoundLine<'a> {
    /// The round's number, from 1.
    pub round: u32,
    /// What changed since the round before.
    pub changes: &'a [Change],
    /// The round's whole report.
    #[serde(flatten)]
    pub report: &'a Report,
}

/// The last JSON line of a watch.
#[derive(Debug, Serialize)]
pub struct SummaryLine<'a> {
    /// The summary of every endpoint over the watch.
    pub watch_summary: WatchSummary<'a>,
}

/// The summary of a watch: how many rounds, and each endpoint's.
#[derive(Debug, Serialize)]
pub struct WatchSummary<'a> {
    /// Rounds run.
    pub rounds: u32,
    /// Each endpoint's summary.
    pub endpoints: &'a [EndpointSummary],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckSpec;
    use crate::failure::{FailureKind, Peer, Phase};
    use crate::profile::Role;
    use crate::report::{CheckResult, PathResult};
    use crate::target::Probe;

    fn report(up: bool) -> Report {
        let error = (!up).then(|| {
            let peer = Peer {
                host: "h",
                port: Some(1),
                ip: None,
            };
            Failure::new(FailureKind::Refused, Phase::Tcp, "refused", peer)
        });
        let mut spec = CheckSpec::new(
            "tcp://h:1".into(),
            "TCP connect".into(),
            Role::Target,
            Probe::Tcp,
        );
        spec.endpoint.host = "h".into();
        spec.endpoint.port = Some(1);
        spec.endpoint.target = "tcp://h:1".into();
        let status = if up { Status::Ok } else { Status::Fail };
        let check = CheckResult::of(
            &spec,
            PathResult {
                error,
                ..PathResult::new(status)
            },
        );
        Report::new(String::new(), 0.0, Vec::new(), vec![check])
    }

    #[test]
    fn scores_a_down_and_up() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut watch = Watch::new();
        assert!(watch.observe(&report(true), at(0)).is_empty());
        let down = watch.observe(&report(false), at(10));
        assert!(matches!(&down[..], [Change::Down { at, .. }] if at == "2023-11-14T22:13:30Z"));
        assert!(watch.observe(&report(false), at(20)).is_empty());
        let up = watch.observe(&report(true), at(30));
        assert!(matches!(&up[..], [Change::Up { outage_s, .. }] if *outage_s == 20.0));
        watch.observe(&report(false), at(40));
        let summary = watch.summary(at(45));
        let s = &summary[0];
        assert_eq!((s.rounds, s.ok, s.failures, s.flaps), (5, 2, 3, 2));
        assert_eq!(s.longest_outage_s, 20.0);
        assert!(s.down);
        assert_eq!(s.last_error.as_ref().unwrap().kind, FailureKind::Refused);
        assert_eq!(watch.exit_code(), 1);
    }

    #[test]
    fn down_from_the_start_is_a_change_but_not_a_flap() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut watch = Watch::new();
        assert_eq!(watch.observe(&report(false), t0).len(), 1);
        watch.observe(&report(true), t0 + Duration::from_secs(5));
        let s = &watch.summary(t0 + Duration::from_secs(6))[0];
        assert_eq!(s.flaps, 0);
        assert_eq!(s.longest_outage_s, 5.0);
        assert!(!s.down);
    }
}
