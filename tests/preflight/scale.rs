//! Large target sets: `--targets-file` (a file or standard input, `#` comments, port ranges),
//! and 10,000 endpoints under a 1,024 open-file limit with every result right.

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::world::{preflight, split};

#[test]
fn ten_thousand_endpoints_under_a_1024_file_limit_all_come_out_right() {
    // 1,000 listeners; 9,000 ports of a range below the ephemeral ones, where nothing listens.
    let open: Vec<TcpListener> = (0..1000)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let open_ports: HashSet<u16> = open
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    let mut text = String::from("# every node's view of the fleet\n");
    for port in &open_ports {
        text.push_str(&format!("tcp://127.0.0.1:{port}\n"));
    }
    text.push_str("\ntcp://127.0.0.1:20000-28999   # nothing listens here\n");
    std::fs::write(&file, text).unwrap();

    // The soft and hard limits both 1,024, as on a default Linux host without raised limits.
    let program = preflight().get_program().to_owned();
    let (code, stdout, stderr) = split(
        Command::new("sh")
            .args(["-c", r#"ulimit -n 1024 && exec "$@""#, "sh"])
            .arg(program)
            .args([
                "check",
                "--format",
                "json",
                "--timeout",
                "5s",
                "--targets-file",
            ])
            .arg(&file)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["summary"]["total"], 10_000);
    assert_eq!(report["summary"]["ok"], 1_000);
    assert_eq!(report["summary"]["fail"], 9_000);
    for check in report["checks"].as_array().unwrap() {
        let port = check["port"].as_u64().unwrap() as u16;
        if open_ports.contains(&port) {
            assert_eq!(check["status"], "ok", "{check}");
        } else {
            // Refused by the kernel, not a local error such as "too many open files".
            assert_eq!(check["error"]["kind"], "refused", "{check}");
        }
    }
    drop(open);
}

#[test]
fn targets_come_from_standard_input_too() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = preflight()
        .args(["check", "--format", "json", "--targets-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(
        child.stdin.take().unwrap(),
        "# from a CMDB export\n127.0.0.1:{port}\ntls://127.0.0.1:{port}-{port}"
    )
    .unwrap();
    let (code, stdout, stderr) = split(child.wait_with_output().unwrap());
    assert_eq!(code, 1, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let targets: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            format!("tcp://127.0.0.1:{port}"),
            format!("tls://127.0.0.1:{port}")
        ]
    );
}

#[test]
fn a_bad_line_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(
        &file,
        "# ok\ntcp://127.0.0.1:1\ntcp://127.0.0.1:9100-9000\n",
    )
    .unwrap();
    let (code, stdout, stderr) = split(
        preflight()
            .args(["check", "--targets-file"])
            .arg(&file)
            .output()
            .unwrap(),
    );
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr.trim(),
        format!(
            "preflight: {}, line 3: target `tcp://127.0.0.1:9100-9000`: the port range 9100-9000 runs backwards: write FIRST-LAST",
            file.display()
        )
    );
}
