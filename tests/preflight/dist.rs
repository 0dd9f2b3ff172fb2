//! The release artifacts of `.ci/dist`: the tarballs' contents, static binaries for x86_64 and
//! aarch64 (the aarch64 one run under qemu-user), `.deb` packages that dpkg installs and whose
//! binary runs, the container image as OCI archives, the SBOM, and SHA256SUMS over all of them. `.ci/run` builds them once, before
//! the tests, and names the directory in `PREFLIGHT_DIST`; without it the test runs `.ci/dist`
//! itself (two release builds: minutes).

use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const TARGETS: [(&str, &str, &str); 2] = [
    ("x86_64-unknown-linux-musl", "amd64", "x86_64"),
    ("aarch64-unknown-linux-musl", "arm64", "aarch64"),
];

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The artifacts of this revision: `PREFLIGHT_DIST`, else built now into a temporary
/// directory (kept in the returned guard).
fn artifacts() -> Option<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = std::env::var_os("PREFLIGHT_DIST") {
        return Some((PathBuf::from(dir), None));
    }
    for tool in [
        "aarch64-linux-gnu-gcc",
        "musl-gcc",
        "qemu-aarch64",
        "dpkg-deb",
    ] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map_or(true, |o| !o.status.success())
        {
            crate::support::skip(&format!(
                "the release artifacts need {tool} (apt-get install musl-tools gcc-aarch64-linux-gnu qemu-user umoci)"
            ));
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    sh(repo, &format!(".ci/dist '{}'", dist.display()));
    Some((dist, Some(dir)))
}

#[test]
fn the_release_artifacts_are_complete_static_installable_and_summed() {
    let Some((dist, _keep)) = artifacts() else {
        return;
    };
    // Every artifact is summed, and every sum verifies.
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    listed.sort_unstable();
    let mut present: Vec<String> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    present.sort();
    assert_eq!(listed, present, "SHA256SUMS lists every artifact");
    sh(&dist, "sha256sum --quiet -c SHA256SUMS");

    // The SBOM: CycloneDX, from the lockfile.
    let sbom = dist.join(format!("preflight-{VERSION}.cdx.json"));
    let sbom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sbom).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let components = sbom["components"].to_string();
    for name in ["\"rustls\"", "\"tokio\"", "\"hickory-resolver\""] {
        assert!(components.contains(name), "no {name} in the SBOM");
    }

    let work = tempfile::tempdir().unwrap();
    for (target, arch, machine) in TARGETS {
        let name = format!("preflight-{VERSION}-{target}");
        sh(
            work.path(),
            &format!(
                "tar -xzf '{}'",
                dist.join(format!("{name}.tar.gz")).display()
            ),
        );
        let root = work.path().join(&name);
        for file in [
            "preflight",
            "preflight.1",
            "completions/preflight.bash",
            "completions/_preflight",
            "completions/preflight.fish",
            "README.md",
            "LICENSE",
            "CHANGELOG.md",
            "docs/failures.md",
        ] {
            assert!(root.join(file).is_file(), "{name} has no {file}");
        }
        let binary = root.join("preflight").display().to_string();
        // Static: no program interpreter, no shared library.
        let headers = sh(work.path(), &format!("readelf -lh '{binary}'"));
        assert!(
            !headers.contains("INTERP"),
            "{target} asks for a dynamic loader"
        );
        let dynamic = sh(work.path(), &format!("readelf -d '{binary}'"));
        assert!(
            !dynamic.contains("NEEDED"),
            "{target} needs a shared library: {dynamic}"
        );
        let run = match machine == std::env::consts::ARCH {
            true => format!("'{binary}' --version"),
            false => format!("qemu-{machine} '{binary}' --version"),
        };
        let version = sh(work.path(), &run);
        assert!(
            version.starts_with(&format!("preflight {VERSION} ({target}, git ")),
            "{version}"
        );

        // The package: dpkg installs it (into a root of its own), with the binary, the man
        // page and the completions in their Debian places; the binary runs.
        let deb = dist.join(format!("preflight_{VERSION}_{arch}.deb"));
        let root = work.path().join(format!("root-{arch}"));
        sh(
            work.path(),
            &format!(
                "mkdir -p '{r}/var/lib/dpkg/info' '{r}/var/lib/dpkg/updates' && touch '{r}/var/lib/dpkg/status' && dpkg --root='{r}' --force-architecture --force-script-chrootless -i '{d}' >/dev/null && dpkg --root='{r}' -L preflight",
                r = root.display(),
                d = deb.display()
            ),
        );
        for file in [
            "usr/bin/preflight",
            "usr/share/man/man1/preflight.1.gz",
            "usr/share/bash-completion/completions/preflight",
            "usr/share/zsh/vendor-completions/_preflight",
            "usr/share/fish/vendor_completions.d/preflight.fish",
        ] {
            assert!(root.join(file).is_file(), "{arch}.deb installs no {file}");
        }
        // The container image, as an OCI archive: the same binary as the entrypoint, run as
        // the nonroot user, for this architecture; unpacked, its binary runs.
        let oci = dist.join(format!("preflight-{VERSION}-oci-{arch}.tar"));
        let layout = work.path().join(format!("oci-{arch}"));
        std::fs::create_dir_all(&layout).unwrap();
        sh(&layout, &format!("tar -xf '{}'", oci.display()));
        let blob = |digest: &str| {
            let path = layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"));
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(path).unwrap()).unwrap()
        };
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap())
                .unwrap();
        let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
        let config = blob(manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], arch, "{config:#}");
        assert_eq!(config["config"]["User"], "65532:65532", "{config:#}");
        assert_eq!(config["config"]["Entrypoint"][0], "preflight", "{config:#}");
        let bundle = work.path().join(format!("bundle-{arch}"));
        sh(
            work.path(),
            &format!(
                "umoci unpack --image '{}:{VERSION}' '{}' >/dev/null",
                layout.display(),
                bundle.display()
            ),
        );
        let in_image = bundle
            .join("rootfs/usr/local/bin/preflight")
            .display()
            .to_string();
        let run = match machine == std::env::consts::ARCH {
            true => format!("'{in_image}' --version"),
            false => format!("qemu-{machine} '{in_image}' --version"),
        };
        assert!(sh(work.path(), &run).contains(target));
        assert!(
            bundle
                .join("rootfs/etc/ssl/certs/ca-certificates.crt")
                .is_file()
        );

        let installed = root.join("usr/bin/preflight").display().to_string();
        let run = match machine == std::env::consts::ARCH {
            true => format!("'{installed}' --version"),
            false => format!("qemu-{machine} '{installed}' --version"),
        };
        assert!(sh(work.path(), &run).contains(target));
    }
}
