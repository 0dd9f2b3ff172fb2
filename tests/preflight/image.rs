//! The container image's binary: built by the script the Dockerfile runs (`.ci/build-static`),
//! then run from a root directory that holds nothing but it, as the image's non-root user. It
//! must need nothing from the host: no libc, no loader, no /etc.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::world::{Behaviour, Validity, World, check, kind, lo, loopback_block, split};

/// The image's user (distroless `nonroot`).
const IMAGE_USER: &str = "65532:65532";

/// Root (for chroot), the musl target and musl-gcc; says on stderr what is missing.
fn ready() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let arch = std::env::consts::ARCH;
    let target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).contains(&format!("{arch}-unknown-linux-musl"))
        });
    let gcc = Command::new("sh")
        .args(["-c", "command -v musl-gcc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && target && gcc) {
        crate::support::skip(&format!(
            "the static-binary test needs root, `rustup target add {arch}-unknown-linux-musl` and musl-gcc (apt-get install musl-tools); .ci/run installs them"
        ));
    }
    root && target && gcc
}

/// `/preflight check --format json ARGS` in `root`, as the image's user: the exit code and
/// the report.
fn check_in(root: &Path, args: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = split(
        Command::new("chroot")
            .arg(format!("--userspec={IMAGE_USER}"))
            .arg(root)
            .args(["/preflight", "check", "--format", "json"])
            .args(args)
            .output()
            .unwrap(),
    );
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    crate::support::words::assert_plain_words(&report);
    (code, report)
}

#[test]
fn the_static_binary_runs_from_an_empty_root() {
    if !ready() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // The image's user must be able to enter the root.
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let binary = root.path().join("preflight");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // CI built the release artifacts with the same script before the tests: their x86_64
    // binary is the image's.
    if let Some(dist) = std::env::var_os("PREFLIGHT_DIST") {
        let name = format!(
            "preflight-{}-{}-unknown-linux-musl",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        );
        let tarball = Path::new(&dist).join(format!("{name}.tar.gz"));
        let out = Command::new("tar")
            .arg("-xzOf")
            .arg(&tarball)
            .arg(format!("{name}/preflight"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", tarball.display());
        std::fs::write(&binary, out.stdout).unwrap();
        std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        return from_an_empty_root(root.path(), &binary);
    }
    // As a person runs it: without the variables `cargo test` sets for this process, which
    // would make cargo rebuild from scratch.
    let mut build = Command::new(manifest.join(".ci/build-static"));
    build.env_clear();
    for (name, value) in std::env::vars_os() {
        let keep = [
            "PATH",
            "HOME",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
            "CARGO_TARGET_DIR",
        ];
        if keep.iter().any(|k| name == *k) {
            build.env(name, value);
        }
    }
    // Unoptimised (the same static link as the image's release build, in a third of its time):
    // what is tested is that the binary needs nothing from the root.
    let built = build.arg(&binary).arg("--quick").output().unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    from_an_empty_root(root.path(), &binary);
}

/// Runs `binary`, the only file in `root`, from that root as the image's user.
fn from_an_empty_root(root: &Path, binary: &Path) {
    let entries: Vec<_> = std::fs::read_dir(root).unwrap().collect();
    assert_eq!(entries.len(), 1, "the root holds only the binary");
    assert!(binary.starts_with(root));

    // A TCP service, and a TLS server whose name only a DNS server on loopback knows.
    let world = World::new();
    let ip = lo(loopback_block(), 1);
    let tcp = world.serve_any(Behaviour::Accept);
    let tls = world
        .serve(
            (ip, 0).into(),
            Behaviour::Tls(world.ca.server(&["cp.image.test"], Validity::Current)),
        )
        .unwrap();
    let dns = world.dns(&["image.test"], &[("cp.image.test", ip)], &[], &[]);
    let tls_target = format!("tls://cp.image.test:{}", tls.port());
    let tcp_target = format!("tcp://{tcp}");

    let (code, report) = check_in(
        root,
        &[
            "--timeout",
            "3s",
            "--dns-server",
            &dns.to_string(),
            &tcp_target,
            &tls_target,
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(check(&report, &tcp_target)["status"], "ok");
    // Resolved through the DNS server, handshake done; no CA roots in the empty root (and the
    // test CA is in no built-in list), so the chain is untrusted, and its issuer is named.
    let tls_check = check(&report, &tls_target);
    assert_eq!(tls_check["addresses"][0]["ip"], ip.to_string());
    assert_eq!(kind(&report, &tls_target), "cert_untrusted");
    assert!(
        tls_check["tls"]["issuer"]
            .as_str()
            .unwrap()
            .starts_with("CN=preflight test CA")
    );

    // No /etc/resolv.conf: the system resolver's failure is named, nothing panics.
    let (code, report) = check_in(root, &["dns://cp.image.test"]);
    assert_eq!(code, 1);
    assert_eq!(kind(&report, "dns://cp.image.test"), "dns_error");
    assert!(
        check(&report, "dns://cp.image.test")["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read the system's DNS configuration")
    );
}
