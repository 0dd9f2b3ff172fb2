//! How a status is marked where colour may not show (the status page, the merged page, the
//! fleet's matrix): a symbol and a word beside the colour, and the pages' shared style.

use crate::report::Status;

/// The mark and class of a status: readable without colour.
pub fn mark(status: Status) -> (String, &'static str) {
    (
        format!("{} {}", symbol(status), status.as_str()),
        status.as_str(),
    )
}

/// The symbol that marks a status without colour.
pub fn symbol(status: Status) -> &'static str {
    match status {
        Status::Ok => "✔",
        Status::Warn => "⚠",
        Status::Fail => "✖",
        Status::Skipped => "–",
    }
}

/// The page's style: a colour per status, and the text mark beside it.
pub const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}.ok{background:#e3f6e3}.warn{background:#fff4d6}.fail{background:#fde2e2}.skipped{background:#eee;color:#555}small{color:#555}";
