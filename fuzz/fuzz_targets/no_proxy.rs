//! The NO_PROXY matcher: the first line is the list, the second a host, the third a port;
//! never a panic, and the route is either the proxy or direct because of an entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preflight::route::{ProxyConfig, ProxyFlags};
use preflight::target::Probe;

fuzz_target!(|text: &str| {
    let mut lines = text.splitn(3, '\n');
    let (list, host) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let port = lines.next().and_then(|p| p.trim().parse::<u16>().ok());
    let flags = ProxyFlags {
        proxy: Some("http://proxy.fuzz.test:3128"),
        proxy_user: None,
        no_proxy: Some(list),
    };
    let Ok(proxies) = ProxyConfig::new(flags, |_| None) else {
        return;
    };
    let ip = host.trim_matches(['[', ']']).parse().ok();
    let route = proxies.route(Probe::Tls, host, ip, port);
    assert!(route.proxy.is_some() || route.reason.is_some_and(|r| r.starts_with("--no-proxy=")));
});
