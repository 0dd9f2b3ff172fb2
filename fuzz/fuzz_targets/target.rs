//! The target parser: never a panic, and a parsed target prints as text that parses back to
//! the same target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preflight::target::Target;

fuzz_target!(|text: &str| {
    if let Ok(targets) = Target::expand(text) {
        for target in targets.iter().take(4) {
            let again = Target::parse(&target.to_string())
                .unwrap_or_else(|e| panic!("{text:?} -> {target} does not parse: {e}"));
            assert_eq!(&again, target, "{text:?}");
        }
    }
});
