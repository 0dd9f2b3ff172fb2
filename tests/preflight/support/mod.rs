//! What the tests share: the loopback world (certificates, servers, a DNS server, the binary),
//! the forward proxies, a whole Konnect world, and raw TCP servers.

pub(crate) mod konnect;
pub(crate) mod lab;
pub(crate) mod proxies;
pub(crate) mod raw;
pub(crate) mod servers;
pub(crate) mod words;
pub(crate) mod world;

/// Says on stderr why a test cannot build its world (it then returns without asserting); with
/// `PREFLIGHT_REQUIRE_LAB=1`, as `.ci/run` sets, the test fails instead, so that CI cannot
/// pass by skipping.
pub(crate) fn skip(why: &str) {
    if std::env::var_os("PREFLIGHT_REQUIRE_LAB").is_some_and(|v| v == "1") {
        panic!("PREFLIGHT_REQUIRE_LAB=1, but {why}");
    }
    eprintln!("skipping: {why}");
}
