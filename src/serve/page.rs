//! The status page: one row per endpoint with its status (a colour and a text mark), since
//! when, the last failure's message and hint, and the certificate's expiry; rendered on the
//! server, refreshing itself, with no script.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::Scoreboard;
use crate::render::escape;
use crate::render::marks::{STYLE, mark};

fn when(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The page of the last round.
pub fn render(state: &Scoreboard, interval: Duration) -> String {
    let refresh = interval.as_secs().max(5);
    let title = match state.report.as_ref().map(|r| r.node.as_str()) {
        Some(node) if !node.is_empty() => format!("preflight on {}", escape(node)),
        _ => "preflight".to_string(),
    };
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{refresh}\"><title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>"
    );
    let Some(report) = &state.report else {
        html.push_str("<p id=\"round\">No round has finished yet.</p></body></html>");
        return html;
    };
    let s = &report.summary;
    let _ = write!(
        html,
        "<p id=\"round\">Round {} ended {} and took {}: {} ok, {} warn, {} failed, {} skipped.</p>",
        state.rounds,
        state.ended.map(when).unwrap_or_default(),
        crate::render::ms(report.duration_ms),
        s.ok,
        s.warn,
        s.fail,
        s.skipped
    );
    html.push_str("<table><thead><tr><th>status</th><th>check</th><th>target</th><th>since</th><th>last failure</th><th>certificate expires</th></tr></thead><tbody>");
    for check in &report.checks {
        let id = &check.endpoint.id;
        let (text, class) = mark(check.path.status);
        let since = state
            .since
            .get(id)
            .map(|(_, t)| when(*t))
            .unwrap_or_default();
        let failure = match state.last_failure.get(id) {
            Some((f, at)) => format!(
                "{}: {}<br><small>fix: {}</small><br><small>at {}</small>",
                escape(f.kind.as_str()),
                escape(&f.message),
                escape(&f.hint),
                when(*at)
            ),
            None => String::new(),
        };
        let expiry = check
            .path
            .tls
            .as_ref()
            .map(|t| format!("{} ({} days)", escape(&t.not_after), t.days_left))
            .unwrap_or_default();
        let _ = write!(
            html,
            "<tr class=\"{class}\" data-check=\"{}\" data-status=\"{class}\"><td>{text}</td><td>{}</td><td>{}</td><td>{since}</td><td>{failure}</td><td>{expiry}</td></tr>",
            escape(id),
            escape(id),
            escape(&check.endpoint.target)
        );
    }
    html.push_str("</tbody></table></body></html>");
    html
}
