//! The forgotten proxy: a run that used no proxy, whose every check of a public address failed
//! to connect (timeouts, refusals, unreachable) while DNS answered, is what a host that must go
//! through a proxy shows. The places where the host keeps its proxy settings are then read
//! (never used: no traffic goes to a proxy found here), and the run's notes say what was found
//! and the flag to try:
//! - `/etc/environment` (pam_env: `NAME=value`);
//! - apt's `Acquire::http::Proxy` and `Acquire::https::Proxy` (/etc/apt/apt.conf and
//!   /etc/apt/apt.conf.d/);
//! - systemd's `DefaultEnvironment=` (/etc/systemd/system.conf) and the `Environment=` of the
//!   docker and kong units' drop-ins and unit files (/etc/systemd/system/);
//! - Docker's client configuration (`proxies.default` in ~/.docker/config.json).

pub mod wpad;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::failure::FailureKind;
use crate::report::{Report, Status};
use crate::target::Probe;

/// The most bytes read of one settings file.
const MAX_BYTES: u64 = 256 << 10;
/// The most files of one drop-in directory read.
const MAX_FILES: usize = 64;

/// A proxy setting found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where: the file and line.
    pub place: String,
    /// The variable or setting that holds it.
    pub setting: String,
    /// The proxy's URL, credentials cut.
    pub url: String,
}

/// Whether `report` fails the way a host that must go through a proxy does: no proxy was
/// used; at least one check connects to a public address (a dns check connects nowhere);
/// every such check failed to connect (timeout, refused, unreachable) after DNS answered.
pub fn looks_like_a_missing_proxy(report: &Report) -> bool {
    if report.checks.iter().any(|c| c.proxy.is_some()) {
        return false;
    }
    let public: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.path.status != Status::Skipped && c.endpoint.probe != Probe::Dns)
        .filter(|c| !c.path.addresses.is_empty() && c.path.addresses.iter().all(|a| public(a.ip)))
        .collect();
    !public.is_empty()
        && public.iter().all(|c| {
            c.path.status == Status::Fail
                && c.path.error.as_ref().is_some_and(|e| {
                    matches!(
                        e.kind,
                        FailureKind::Timeout | FailureKind::Refused | FailureKind::Unreachable
                    )
                })
        })
}

/// Not loopback, private, link-local or unspecified: an address beyond the site.
fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The proxy settings this host keeps, in the places above (`home` for Docker's).
pub fn places(home: Option<&Path>) -> Vec<Found> {
    let mut found = Vec::new();
    environment(Path::new("/etc/environment"), &mut found);
    apt(Path::new("/etc/apt/apt.conf"), &mut found);
    for file in dir_files(Path::new("/etc/apt/apt.conf.d"), |_| true) {
        apt(&file, &mut found);
    }
    systemd(
        Path::new("/etc/systemd/system.conf"),
        "DefaultEnvironment",
        &mut found,
    );
    let units = |name: &str| name.starts_with("docker") || name.starts_with("kong");
    for entry in dir_files(Path::new("/etc/systemd/system"), |name| units(name)) {
        systemd(&entry, "Environment", &mut found);
    }
    for dir in dir_entries(Path::new("/etc/systemd/system"))
        .into_iter()
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| units(&n.to_string_lossy())))
    {
        for file in dir_files(&dir, |name| name.ends_with(".conf")) {
            systemd(&file, "Environment", &mut found);
        }
    }
    if let Some(home) = home {
        docker(&home.join(".docker/config.json"), &mut found);
    }
    found.dedup();
    found
}

/// The run's note for `found`, or that nothing was found.
pub fn note(found: &[Found], failed: bool) -> String {
    let why = match failed {
        true => {
            "every check of a public address failed to connect while DNS answered, and no proxy was used"
        }
        false => "--discover-proxy",
    };
    let Some(first) = found.first() else {
        return format!(
            "{why}: if this host must go through a proxy, give it with --proxy (for a Kong node, proxy_server in kong.conf with cluster_use_proxy = on); no proxy setting was found in /etc/environment, apt's, systemd's or Docker's configuration"
        );
    };
    let places: Vec<String> = found
        .iter()
        .take(4)
        .map(|f| format!("{} sets {} = {}", f.place, f.setting, f.url))
        .collect();
    let set_up = match failed {
        true => ", but this host is set up for one",
        false => ": this host is set up for a proxy",
    };
    format!(
        "{why}{set_up}: {}. Try --proxy {} (for a Kong node: proxy_server = {} and cluster_use_proxy = on in kong.conf)",
        places.join("; "),
        first.url,
        first.url
    )
}

const VARIABLES: [&str; 6] = [
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

fn read(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).take(512).collect();
    paths.sort();
    paths
}

fn dir_files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    dir_entries(dir)
        .into_iter()
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| keep(&n.to_string_lossy())))
        .take(MAX_FILES)
        .collect()
}

/// A URL as the note shows it: credentials cut, and only if it parses as a proxy URL.
fn shown(url: &str) -> Option<String> {
    let url = url.trim().trim_matches(|c| c == '"' || c == '\'');
    crate::route::ProxyUrl::parse(url)
        .ok()
        .map(|p| p.to_string())
}

fn push(found: &mut Vec<Found>, path: &Path, line: usize, setting: &str, value: &str) {
    if let Some(url) = shown(value) {
        found.push(Found {
            place: format!("{} (line {line})", path.display()),
            setting: setting.to_string(),
            url,
        });
    }
}

/// `NAME=value` pairs, one per line (`export` allowed).
fn environment(path: &Path, found: &mut Vec<Found>) {
    let Some(text) = read(path) else { return };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((name, value)) = line.split_once('=')
            && VARIABLES.contains(&name.trim())
        {
            push(found, path, i + 1, name.trim(), value);
        }
    }
}

/// `Acquire::http::Proxy "URL";` (apt.conf(5)).
fn apt(path: &Path, found: &mut Vec<Found>) {
    let Some(text) = read(path) else { return };
    let pattern = regex_lite::Regex::new(r#"Acquire::(https?)::Proxy\s+"([^"]+)""#).unwrap();
    for (i, line) in text.lines().enumerate() {
        if let Some(caps) = pattern.captures(line) {
            let setting = format!("Acquire::{}::Proxy", &caps[1]);
            push(found, path, i + 1, &setting, &caps[2]);
        }
    }
}

/// `KEY=NAME=value NAME="value"` or `KEY="NAME=value"` (systemd.exec(5), systemd-system.conf(5)).
fn systemd(path: &Path, key: &str, found: &mut Vec<Found>) {
    let Some(text) = read(path) else { return };
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line
            .trim()
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
        else {
            continue;
        };
        for word in rest.split_whitespace() {
            let word = word.trim_matches('"');
            if let Some((name, value)) = word.split_once('=')
                && VARIABLES.contains(&name)
            {
                push(found, path, i + 1, name, value);
            }
        }
    }
}

/// Docker's client configuration: `proxies.default.httpsProxy` and `httpProxy`.
fn docker(path: &Path, found: &mut Vec<Found>) {
    let Some(text) = read(path) else { return };
    let Ok(config) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    for setting in ["httpsProxy", "httpProxy"] {
        if let Some(value) = config["proxies"]["default"][setting].as_str() {
            push(found, path, 0, &format!("proxies.default.{setting}"), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_place_is_read_in_its_own_syntax_and_credentials_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let mut found = Vec::new();
        environment(
            &file(
                "environment",
                "PATH=/usr/bin\nexport https_proxy=\"http://user:secret@proxy.corp.example:3128\"\n",
            ),
            &mut found,
        );
        apt(
            &file(
                "apt",
                "Acquire::http::Proxy \"http://apt-proxy.corp.example:3142\";\n",
            ),
            &mut found,
        );
        systemd(
            &file(
                "system.conf",
                "[Manager]\nDefaultEnvironment=LANG=C HTTPS_PROXY=http://sd.corp.example:8080\n",
            ),
            "DefaultEnvironment",
            &mut found,
        );
        systemd(
            &file(
                "docker.conf",
                "[Service]\nEnvironment=\"HTTP_PROXY=http://docker.corp.example:3128\"\n",
            ),
            "Environment",
            &mut found,
        );
        let urls: Vec<&str> = found.iter().map(|f| f.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://proxy.corp.example:3128",
                "http://apt-proxy.corp.example:3142",
                "http://sd.corp.example:8080",
                "http://docker.corp.example:3128"
            ]
        );
        assert!(found[0].place.ends_with("(line 2)"));
        assert!(!note(&found, true).contains("secret"));
    }
}
