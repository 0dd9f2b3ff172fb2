//! The kong.conf reader: any text is a configuration or an error naming a line; a
//! configuration that reads plans its checks (or says what is wrong) without panicking.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use preflight::kongconf::{self, KongConf};

fuzz_target!(|text: &str| {
    if let Ok(conf) = KongConf::from_text(text, Path::new("kong.conf"), |_| None) {
        let _ = kongconf::plan(&conf, None);
    }
});
