//! Any reports `merge` reads (any JSON, any text in any field) are shown as data: the matrix
//! on a terminal holds no control character but its line ends; the Markdown holds no `<`
//! (every one is an entity, so no job summary renders a tag); the page holds only its own tags.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use preflight::merge::Fleet;

/// The tags the merged page is made of.
const PAGE_TAGS: [&str; 19] = [
    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "p", "table", "thead",
    "tbody", "tr", "th", "td", "section", "ul", "li", "span",
];

fuzz_target!(|data: &[u8]| {
    // Two reports: the input split at its first NUL (or the input and an empty one).
    let (a, b) = match data.iter().position(|&byte| byte == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let readers = vec![(PathBuf::from("a.json"), a), (PathBuf::from("b.json"), b)];
    let readers: Vec<(PathBuf, &[u8])> = readers.into_iter().filter(|(_, r)| !r.is_empty()).collect();
    let Ok(fleet) = Fleet::from_readers(readers) else {
        return;
    };
    let mut human = Vec::new();
    preflight::render::merge::human(&fleet, 80, &mut human).unwrap();
    let human = String::from_utf8(human).unwrap();
    assert!(!human.chars().any(|c| c.is_control() && c != '\n'), "{human:?}");

    let mut markdown = Vec::new();
    preflight::render::merge::markdown(&fleet, &mut markdown).unwrap();
    let markdown = String::from_utf8(markdown).unwrap();
    assert!(!markdown.contains('<'), "{markdown}");
    assert!(!markdown.chars().any(|c| c.is_control() && c != '\n'), "{markdown:?}");

    let mut page = Vec::new();
    preflight::render::merge::html(&fleet, &mut page).unwrap();
    let page = String::from_utf8(page).unwrap();
    for tag in page.split('<').skip(1) {
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        assert!(PAGE_TAGS.contains(&name.as_str()), "<{name} in {page}");
    }
});
