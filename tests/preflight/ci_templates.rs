//! The CI smoke step, as pipelines run it: the GitHub Action (deploy/github-action/action.yml)
//! and the GitLab CI template (deploy/gitlab/preflight.gitlab-ci.yml), each read from its file
//! and its script run here with the inputs and variables a pipeline gives (GitHub's
//! `${{ … }}` expressions filled in as the runner fills them).

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// A target that passes and one that is refused.
fn targets() -> (TcpListener, String, String) {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ok = format!("tcp://{}", open.local_addr().unwrap());
    (open, ok, format!("tcp://{dead}"))
}

/// GitHub's expression `${{ … }}` as the runner evaluates the few the action uses.
fn evaluate(text: &str, inputs: &HashMap<&str, String>, github: &HashMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${{") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("}}").unwrap() + at;
        let expression = rest[at + 3..end].trim();
        let value = expression
            .split("||")
            .map(|alternative| {
                let name = alternative.trim();
                match name.split_once('.') {
                    Some(("inputs", key)) => inputs.get(key).cloned().unwrap_or_default(),
                    Some(("github", key)) => github.get(key).cloned().unwrap_or_default(),
                    _ => panic!("an expression this test does not know: {name}"),
                }
            })
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs the action's step in `work` with `given` inputs (the rest at their defaults); returns
/// the exit code, the job summary, the step's outputs and stderr.
fn run_action(
    work: &Path,
    given: &[(&'static str, String)],
    path: &str,
) -> (i32, String, String, String) {
    let dir = repo().join("deploy/github-action");
    let action = yaml(&dir.join("action.yml"));
    let mut inputs: HashMap<&str, String> = HashMap::new();
    for (name, spec) in action["inputs"].as_hash().unwrap() {
        let name: &'static str = Box::leak(name.as_str().unwrap().to_string().into_boxed_str());
        inputs.insert(
            name,
            spec["default"].as_str().unwrap_or_default().to_string(),
        );
    }
    for (name, value) in given {
        assert!(inputs.contains_key(name), "the action has no input {name}");
        inputs.insert(name, value.clone());
    }
    let summary = work.join("summary.md");
    let outputs = work.join("outputs");
    let github: HashMap<&str, String> = [
        ("action_ref", "v0.0.0".to_string()),
        ("action_repository", "example/preflight".to_string()),
        ("step_summary", summary.display().to_string()),
    ]
    .into();
    let step = &action["runs"]["steps"][0];
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    let mut command = Command::new(step["shell"].as_str().unwrap());
    command
        .arg("-c")
        .arg(step["run"].as_str().unwrap())
        .current_dir(work)
        .env_clear()
        .env("PATH", path)
        .env("HOME", work)
        .env("GITHUB_ACTION_PATH", &dir)
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary);
    for (name, value) in step["env"].as_hash().unwrap() {
        let value = evaluate(value.as_str().unwrap(), &inputs, &github);
        command.env(name.as_str().unwrap(), value);
    }
    let out = command.output().unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        read(&summary),
        read(&outputs),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_github_action_runs_one_check_fills_the_summary_and_fails_the_job() {
    let (_open, ok, dead) = targets();
    let work = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_preflight").to_string();
    let given = [
        ("profile", String::new()),
        ("args", format!("--timeout 2s {ok} {dead}")),
        ("binary", bin),
    ];
    let (code, summary, outputs, stderr) = run_action(work.path(), &given, "/usr/bin:/bin");
    assert_eq!(code, 1, "{stderr}");
    assert!(outputs.contains("exit-code=1"), "{outputs}");
    // The Markdown report, then what to ask for, in the job summary.
    assert!(summary.contains("refused"), "{summary}");
    assert!(
        summary.contains("What to ask the network team for"),
        "{summary}"
    );
    let report = work.path().join("preflight-report");
    let xml = std::fs::read_to_string(report.join("preflight.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(doc.root_element().attribute("failures"), Some("1"));
    assert!(report.join("preflight.json").exists());
}

/// No binary given or on PATH: the release is downloaded, its checksum verified first; a
/// tarball that does not match SHA256SUMS is not run.
#[test]
fn the_github_action_downloads_the_release_and_verifies_its_checksum() {
    let (_open, ok, _) = targets();
    let work = tempfile::tempdir().unwrap();
    let releases = work.path().join("releases");
    let version = releases.join("v0.0.0");
    let name = format!(
        "preflight-0.0.0-{}-unknown-linux-musl",
        std::env::consts::ARCH
    );
    let stage = work.path().join("stage").join(&name);
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::create_dir_all(&version).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_preflight"), stage.join("preflight")).unwrap();
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(version.join(format!("{name}.tar.gz")))
        .arg("-C")
        .arg(work.path().join("stage"))
        .arg(&name)
        .status()
        .unwrap();
    assert!(tar.success());
    let sums = Command::new("sh")
        .arg("-c")
        .arg("sha256sum -- *.tar.gz > SHA256SUMS")
        .current_dir(&version)
        .status()
        .unwrap();
    assert!(sums.success());
    let run = |dir: &Path| {
        std::fs::create_dir_all(dir).unwrap();
        let url = format!("file://{}", releases.display());
        let given = [("profile", String::new()), ("args", ok.clone())];
        // The runner's PATH has no preflight: the action must fetch it.
        run_action_with_url(dir, &given, "/usr/bin:/bin", &url)
    };
    let (code, _, outputs, stderr) = run(&work.path().join("first"));
    assert_eq!(code, 0, "{stderr}");
    assert!(outputs.contains("exit-code=0"), "{outputs}");
    // A tampered tarball: refused, exit 2, nothing run.
    let tarball = version.join(format!("{name}.tar.gz"));
    let mut bytes = std::fs::read(&tarball).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&tarball, bytes).unwrap();
    let (code, _, _, stderr) = run(&work.path().join("second"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("does not match its SHA256SUMS"), "{stderr}");
}

/// `run_action` with the releases' URL in place of GitHub's.
fn run_action_with_url(
    work: &Path,
    given: &[(&'static str, String)],
    path: &str,
    url: &str,
) -> (i32, String, String, String) {
    // The action builds its URL from github.action_repository (GitHub's releases); a wrapper
    // around the step's `bash` points the variable the script reads at the local releases.
    let shim = work.join("shim");
    std::fs::create_dir_all(&shim).unwrap();
    let bash = shim.join("bash");
    std::fs::write(
        &bash,
        format!("#!/bin/sh\nPREFLIGHT_URL='{url}' exec /bin/bash \"$@\"\n"),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&bash).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&bash, perms).unwrap();
    let path = format!("{}:{path}", shim.display());
    run_action(work, given, &path)
}

#[test]
fn the_gitlab_template_runs_its_script_with_the_pipelines_variables() {
    let (_open, ok, dead) = targets();
    let work = tempfile::tempdir().unwrap();
    let template = yaml(&repo().join("deploy/gitlab/preflight.gitlab-ci.yml"));
    let job = &template[".preflight"];
    assert_eq!(
        template["preflight"]["extends"].as_str(),
        Some(".preflight")
    );
    let report = work.path().join("report");
    // The image's PATH holds preflight (a symlink to the binary under test).
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_preflight"), bin.join("preflight")).unwrap();
    let mut script = String::from("set -e\n");
    for line in job["script"].as_vec().unwrap() {
        script.push_str(line.as_str().unwrap());
        script.push('\n');
    }
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&script)
        .current_dir(repo())
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", work.path());
    for (name, value) in job["variables"].as_hash().unwrap() {
        command.env(name.as_str().unwrap(), value.as_str().unwrap());
    }
    // What the pipeline sets over the template's defaults.
    command
        .env("PREFLIGHT_PROFILE", "")
        .env("PREFLIGHT_ARGS", format!("--timeout 2s {ok} {dead}"))
        .env("PREFLIGHT_OUT", &report);
    let out = command.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The JUnit report where the template's artifacts:reports:junit says.
    let junit = job["artifacts"]["reports"]["junit"].as_str().unwrap();
    let junit = junit.replace("preflight-report", &report.display().to_string());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(roxmltree::Document::parse(&xml).is_ok());
    assert!(report.join("blocked.md").exists());
}
