//! What `preflight --version` says beyond the crate's version, as a node's support ticket
//! needs: the target the binary was built for, and the git revision and commit date it was
//! built from ("unknown" outside a git checkout, as in a source tarball). The commit's date,
//! not the clock's, so that the same commit builds the same words.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PREFLIGHT_TARGET={target}");
    println!("cargo:rustc-env=PREFLIGHT_GIT_REV={rev}");
    println!("cargo:rustc-env=PREFLIGHT_COMMIT_DATE={date}");
    // A new commit or checkout changes HEAD or the ref it names.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
