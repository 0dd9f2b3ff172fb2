//! Words for people: no failure a test produces may carry a library's internal names or a
//! UNIX timestamp. Every report the helpers parse is checked.

use serde_json::Value;

/// Words from inside the libraries, which tell a user nothing: none may reach a message or a
/// hint.
pub(crate) const INTERNAL: [&str; 17] = [
    "UnknownIssuer",
    "CaUsedAsEndEntity",
    "InvalidContentType",
    "DnsName(",
    "no connections available",
    "OtherError",
    "InvalidCertificate(",
    "AlertReceived",
    "io::Error",
    "IpAddress(",
    "NotValidForName",
    "(UNIX)",
    "..=",
    // The OS's error number (`(os error 111)`): its words are what a person reads.
    "os error",
    // The libraries' own names: a user acts on what happened, not on what reported it.
    "rustls",
    "webpki",
    "hickory",
];

/// Every failure of `report` (a check's, an address's, local DNS's, the direct path's).
fn failures(report: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for c in report["checks"].as_array().into_iter().flatten() {
        let paths = [c, &c["direct"]];
        for path in paths {
            all.extend(path.get("error").filter(|e| !e.is_null()));
            for a in path["addresses"].as_array().into_iter().flatten() {
                all.extend(a.get("error").filter(|e| !e.is_null()));
            }
        }
        all.extend(c["local_dns"].get("error").filter(|e| !e.is_null()));
    }
    all
}

/// Fails the test when `text` (a human report, an error line) holds a library's internal
/// words, Rust range syntax, a negative day count or a UNIX timestamp.
pub(crate) fn assert_plain_text(text: &str) {
    for word in INTERNAL {
        assert!(!text.contains(word), "`{word}` in: {text}");
    }
    let negative_days = text.match_indices("(-").any(|(at, _)| {
        text[at + 2..]
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == ',')
            .starts_with(" days")
    });
    assert!(!negative_days, "a negative day count in: {text}");
    assert_nothing_expires_later(text);
}

/// Fails the test when a message or hint of `report` holds a library's internal words or a
/// UNIX timestamp.
pub(crate) fn assert_plain_words(report: &Value) {
    for failure in failures(report) {
        for field in ["message", "hint"] {
            let text = failure[field].as_str().unwrap_or_default();
            for word in INTERNAL {
                assert!(!text.contains(word), "`{word}` in a {field}: {text}");
            }
            let digits = text
                .split(|c: char| !c.is_ascii_digit())
                .any(|run| run.len() == 10 && run.starts_with('1'));
            assert!(!digits, "a UNIX timestamp in a {field}: {text}");
            assert_nothing_expires_later(text);
        }
    }
}

/// Fails the test when `text` says something "expired on" a date after today: the date of
/// another certificate than the one that expired.
pub(crate) fn assert_nothing_expires_later(text: &str) {
    let now = time::OffsetDateTime::now_utc().date();
    let today = format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    for (at, said) in text.match_indices("expired on ") {
        let date: String = text[at + said.len()..].chars().take(10).collect();
        if date.len() == 10 && date.as_bytes()[4] == b'-' {
            assert!(date <= today, "expired on a later date ({date}) in: {text}");
        }
    }
}
