//! The duration parser (`--timeout`, `--deadline`, `--watch`): never a panic; anything it
//! accepts is longer than zero and at most a day.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(d) = preflight::cli::parse_duration(text) {
        assert!(
            !d.is_zero() && d <= Duration::from_secs(24 * 3600),
            "{text:?}: {d:?}"
        );
    }
});
