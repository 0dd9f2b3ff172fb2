//! No error about a proxy URL or a target shows the password in it, whatever the rest of the
//! text holds (a `/`, `#`, `?` or `@` in the password, a mistyped scheme): every place that
//! parses such a value is fed one with a marked password, and every error, as `main` prints
//! it, is searched for the mark.
#![no_main]

use std::path::Path;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use preflight::kongconf::{self, KongConf};
use preflight::route::{ProxyConfig, ProxyFlags};
use preflight::sanitize;
use preflight::settings::target_of;

const MARK: &str = "Pw7Secret";

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    scheme: &'a str,
    user: &'a str,
    before: &'a str,
    after: &'a str,
    host: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let parts = [input.scheme, input.user, input.before, input.after, input.host];
    if parts.iter().any(|p| p.contains('\n')) {
        return;
    }
    let text = format!(
        "{}{}:{}{MARK}{}@{}",
        input.scheme, input.user, input.before, input.after, input.host
    );
    // The mark must be the password's alone, not formed again across the parts.
    if text.matches(MARK).count() != 1 {
        return;
    }
    let mut errors = Vec::new();
    let flags = ProxyFlags {
        proxy: Some(&text),
        ..ProxyFlags::default()
    };
    errors.extend(ProxyConfig::new(flags, |_| None).err());
    let env = |name: &str| (name == "https_proxy").then(|| text.clone());
    errors.extend(ProxyConfig::new(ProxyFlags::default(), env).err());
    errors.extend(target_of(&text).err());
    let conf = format!("role = data_plane\ncluster_use_proxy = on\nproxy_server = {text}\n");
    if let Ok(conf) = KongConf::from_text(&conf, Path::new("kong.conf"), |_| None) {
        errors.extend(kongconf::plan(&conf, None).err());
    }
    for error in errors {
        let shown = sanitize::message(&error.to_string());
        assert!(!shown.contains(MARK), "{text:?} -> {shown}");
    }
});
