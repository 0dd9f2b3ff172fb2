//! The README's sample output is what a run prints: the command it shows, run against the
//! tests' Konnect world, compared with the README's block word by word (a longer figure may wrap a line
//! elsewhere), with the figures that
//! change from run to run masked (times, addresses, dates, days). With
//! `PREFLIGHT_BLESS_README=1` the test writes the run's output into the README instead.

use crate::support::konnect::{cluster_cert, konnect_args, konnect_world};
use crate::support::world::{World, preflight, split};

const START: &str = "<!-- sample:konnect -->";
const END: &str = "<!-- /sample -->";

/// `text` with what changes between runs replaced by `#`.
fn masked(text: &str) -> String {
    let rules = [
        // Dates and times of day (certificates' expiry).
        (r"\d{4}-\d{2}-\d{2}(T[0-9:]+Z)?", "#date"),
        (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "#addr"),
        (r"\b\d+(\.\d+)? ?(ms|s)\b", "#time"),
        (r"\(\d[\d,]* days", "(# days"),
    ];
    let mut text = text.to_string();
    for (pattern, with) in rules {
        text = regex_lite::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    // Words, not lines: a longer figure may wrap a line elsewhere.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_readme_sample_is_what_the_run_prints() {
    let world = World::new();
    let Some((dns, _)) = konnect_world(&world) else {
        return;
    };
    let dns = dns.to_string();
    let cert = cluster_cert(&world);
    let mut args = vec!["check"];
    args.extend(konnect_args(&dns, world.ca_file(), &cert));
    let out = preflight()
        .args(&args)
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let (code, stdout, stderr) = split(out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (before, rest) = readme.split_once(START).expect("the README's sample block");
    let (block, after) = rest
        .split_once(END)
        .expect("the end of the README's sample");
    let command = block
        .lines()
        .find(|l| l.starts_with("$ preflight"))
        .expect("the sample's command line")
        .to_string();
    let shown: String = block
        .lines()
        .skip_while(|l| !l.starts_with("$ preflight"))
        .skip(1)
        .take_while(|l| *l != "```")
        .collect::<Vec<_>>()
        .join("\n");
    if std::env::var_os("PREFLIGHT_BLESS_README").is_some() {
        let fresh = format!("{START}\n```\n{command}\n{}\n```\n{END}", stdout.trim_end());
        std::fs::write(path, format!("{before}{fresh}{after}")).unwrap();
        return;
    }
    assert_eq!(
        masked(&shown),
        masked(stdout.trim_end()),
        "the README's sample differs from what the run prints; PREFLIGHT_BLESS_README=1 cargo test readme writes it"
    );
}
