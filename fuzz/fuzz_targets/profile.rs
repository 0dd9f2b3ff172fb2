//! The profile loader: any text is a profile or an error naming a line, never a panic; a
//! profile that loads plans (with no variables set) without panicking either.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use preflight::probe::Family;
use preflight::profile::{self, Assignments};

fuzz_target!(|text: &str| {
    if let Ok(profile) = profile::parse(text, Path::new("fuzz.toml")) {
        let _ = preflight::plan::build(
            &[profile],
            &Assignments::default(),
            &[],
            &[],
            Family::Any,
            &[],
        );
    }
});
