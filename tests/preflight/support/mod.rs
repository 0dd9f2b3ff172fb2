//! What the tests share: the loopback world (certificates, servers, a DNS server, the binary),
//! the forward proxies, a whole Konnect world, and raw TCP servers.

pub(crate) mod chains;
pub(crate) mod host;
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

/// Waits (at most `limit`) until `ready` holds, polling: a test synchronises on what it can
/// observe, not on a guess of how long something takes. Panics naming `what` past the limit.
pub(crate) fn wait_until(what: &str, limit: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether process `pid` has a handler installed for `signal` (its number): `SigCgt` in
/// /proc/PID/status.
pub(crate) fn catches(pid: u32, signal: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// A port on 127.0.0.1 that was free a moment ago (nothing listens on it now): the one
/// free-port helper of the tests.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `preflight check ARGS tls://SILENT` against a port that accepts and never answers, and
/// sends `signal` (`-INT`, `-TERM`, `-HUP`) once the check's ClientHello has arrived (it is then
/// waiting on the handshake): the exit code, stdout, stderr and the target.
pub(crate) fn signalled_while_waiting(
    args: &[&str],
    signal: &str,
) -> (i32, String, String, String) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tls://{}", silent.local_addr().unwrap());
    let child = world::preflight()
        .arg("check")
        .args(args)
        .arg(&target)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut held, _) = silent.accept().unwrap();
    // The ClientHello's first byte: the check is in its TLS phase (the accept alone can come
    // before the client has seen its connect complete).
    held.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut held, &mut first).unwrap();
    let sent = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let (code, stdout, stderr) = world::split(child.wait_with_output().unwrap());
    (code, stdout, stderr, target)
}

/// Runs `command` with `input` on its standard input: what it wrote and how it ended.
pub(crate) fn piped(mut command: std::process::Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
