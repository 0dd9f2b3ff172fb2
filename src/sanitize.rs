//! Text from outside made safe to show: credentials cut out of what the user typed, the
//! credentials we sent cut out of what a peer says back, and control characters escaped so
//! that no certificate, status line or value can move the cursor, clear the screen or forge
//! a line of the report.

use std::borrow::Cow;

/// `text` with anything that looks like userinfo (`user:password@`) shown as `***@`: from
/// after the scheme and its slashes, however mistyped (`http:/`, `http//`, none at all), up to
/// the last `@`, since a password may itself hold `/`, `#`, `?` or `@`.
pub fn redact(text: &str) -> String {
    let Some(at) = text.rfind('@') else {
        return text.to_string();
    };
    let start = authority_start(text);
    format!("{}***{}", &text[..start], &text[at..])
}

/// Where the authority begins: after `scheme:` or `scheme` and one or more slashes; else 0.
fn authority_start(text: &str) -> usize {
    if !text.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return 0;
    }
    let scheme = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
        .unwrap_or(text.len());
    let after = &text[scheme..];
    let after = after.strip_prefix(':').unwrap_or(after);
    let rest = after.trim_start_matches(['/', '\\']);
    match rest.len() < after.len() {
        true => text.len() - rest.len(),
        false => 0,
    }
}

/// A message for one line on a terminal: every word holding an `@` redacted, control
/// characters escaped (a newline in a value cannot make it two lines).
pub fn message(text: &str) -> String {
    let words: Vec<Cow<'_, str>> = text
        .split(' ')
        .map(|word| match word.contains('@') {
            true => {
                // Keep the quote or bracket a value is shown in.
                let lead = word.len()
                    - word
                        .trim_start_matches(['`', '"', '\'', '(', '<', '['])
                        .len();
                Cow::Owned(format!("{}{}", &word[..lead], redact(&word[lead..])))
            }
            false => Cow::Borrowed(word),
        })
        .collect();
    terminal(&words.join(" ")).into_owned()
}

/// `text` with control characters (C0, DEL, C1) and the bidirectional overrides shown
/// escaped (`\x1b`, `\u{202e}`), so that a peer's text cannot drive a terminal.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !needs_escape(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) <= 0xff => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every one of `secrets` replaced by `***`: for what a peer sends back, which may
/// quote the credentials it was given.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    // Longest first, so that a password inside `user:password` does not leave the user.
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_whatever_it_holds_and_however_the_scheme_is_typed() {
        for (text, shown) in [
            ("http://alice:S3cret/Pw@proxy:3128", "http://***@proxy:3128"),
            ("http://alice:S3c#ret?@proxy:3128", "http://***@proxy:3128"),
            ("http://alice:p@ss@proxy:3128", "http://***@proxy:3128"),
            ("http:/alice:S3cret@proxy", "http:/***@proxy"),
            ("http//alice:S3cret@proxy", "http//***@proxy"),
            ("http:alice:S3cret@proxy", "***@proxy"),
            ("alice:S3cret@proxy:3128", "***@proxy:3128"),
            ("https://alice:S3cret/Pw@h/", "https://***@h/"),
            ("ftp://u:pw@p:21", "ftp://***@p:21"),
            ("http://proxy:3128", "http://proxy:3128"),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
    }

    #[test]
    fn messages_are_one_line_without_credentials_or_escapes() {
        let text = "--proxy `http://alice:S3cret/Pw@proxy:3128`: bad\nline \x1b[2J";
        assert_eq!(
            message(text),
            "--proxy `http://***@proxy:3128`: bad\\nline \\x1b[2J"
        );
    }

    #[test]
    fn control_characters_and_overrides_are_escaped() {
        assert_eq!(terminal("plain text"), "plain text");
        assert_eq!(
            terminal("a\x1b]0;title\x07b\r\n[ ok ]\u{9b}\u{202e}"),
            "a\\x1b]0;title\\x07b\\r\\n[ ok ]\\x9b\\u{202e}"
        );
    }

    #[test]
    fn secrets_are_scrubbed_longest_first() {
        let secrets = ["alice:S3cret".to_string(), "S3cret".to_string()];
        assert_eq!(
            scrub("got alice:S3cret and S3cret", &secrets),
            "got *** and ***"
        );
    }
}
