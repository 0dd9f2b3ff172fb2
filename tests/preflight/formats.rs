//! Report formats for CI and tickets: JUnit XML and Markdown agree with the JSON report.

use std::net::{TcpListener, UdpSocket};

use crate::support::world::{check_json, run};

/// A run with a failure, a pass, a warning and a skip, each outcome fixed: (arguments, the
/// refused target).
fn mixed_run() -> (Vec<String>, String) {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Bound and never read: silence, a warning. Leaked so it lives through both runs.
    let quiet = Box::leak(Box::new(UdpSocket::bind("127.0.0.1:0").unwrap()));
    let refused = format!("tcp://{dead}");
    let args = vec![
        "--timeout".to_string(),
        "300ms".into(),
        // Only the portal, whose variable is unset: skipped, never resolved.
        "--profile".into(),
        "konnect".into(),
        "--set".into(),
        "region=us".into(),
        "--set".into(),
        "cp_prefix=x".into(),
        "--only".into(),
        "portal".into(),
        refused.clone(),
        format!("bind://{free}"),
        format!("udp://{}", quiet.local_addr().unwrap()),
    ];
    (args, refused)
}

#[test]
fn junit_agrees_with_the_json_report() {
    let (args, refused) = mixed_run();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (json_code, report) = check_json(&args);
    let mut junit_args = vec!["check", "--format", "junit"];
    junit_args.extend(&args);
    let (code, xml, stderr) = run(&junit_args);
    assert_eq!((code, json_code), (1, 1), "{stderr}");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let summary = &report["summary"];
    assert_eq!(
        root.attribute("tests"),
        Some(summary["total"].to_string().as_str())
    );
    assert_eq!(
        root.attribute("failures"),
        Some(summary["fail"].to_string().as_str())
    );
    assert_eq!(
        root.attribute("skipped"),
        Some(summary["skipped"].to_string().as_str())
    );
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let names: Vec<_> = suites.iter().filter_map(|s| s.attribute("name")).collect();
    assert_eq!(names, ["konnect", "targets"]);
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), report["checks"].as_array().unwrap().len());
    for check in report["checks"].as_array().unwrap() {
        let id = check["id"].as_str().unwrap();
        let case = cases
            .iter()
            .find(|c| c.attribute("name").unwrap().starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no testcase for {id}"));
        let child = |tag: &str| case.children().find(|n| n.has_tag_name(tag));
        match check["status"].as_str().unwrap() {
            "fail" => {
                let failure = child("failure").expect("a failure element");
                assert_eq!(failure.attribute("type"), check["error"]["kind"].as_str());
                assert_eq!(
                    failure.attribute("message"),
                    check["error"]["message"].as_str()
                );
                let text = failure.text().unwrap();
                assert!(
                    text.contains(check["error"]["hint"].as_str().unwrap()),
                    "{text}"
                );
            }
            "skipped" => assert!(child("skipped").is_some(), "{id}"),
            "warn" => {
                let out = child("system-out")
                    .expect("warnings in system-out")
                    .text()
                    .unwrap();
                assert!(out.starts_with("warning udp_no_reply: "), "{out}");
            }
            _ => assert_eq!(
                case.children().filter(|n| n.is_element()).count(),
                0,
                "{id}"
            ),
        }
        let time: f64 = case.attribute("time").unwrap().parse().unwrap();
        assert!(time >= 0.0);
    }
    assert!(
        xml.contains(&format!("name=\"{refused} {refused}\"")),
        "{xml}"
    );
}

#[test]
fn markdown_has_a_table_per_role_and_what_to_do() {
    let (args, refused) = mixed_run();
    let mut all = vec!["check", "--format", "markdown"];
    all.extend(args.iter().map(String::as_str));
    let (code, markdown, _) = run(&all);
    assert_eq!(code, 1);
    // Times and addresses vary; the layout is the point.
    let times = regex_lite::Regex::new(r"\| \d+\.\d ms \|").unwrap();
    let ports = regex_lite::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let duration = regex_lite::Regex::new(r"in \d+\.\d\d s\.").unwrap();
    let markdown = times.replace_all(&markdown, "| T ms |");
    let markdown = ports.replace_all(&markdown, "127.0.0.1:P");
    let markdown = duration.replace_all(&markdown, "in S s.");
    let expected = "\
## preflight (konnect)

5 checks: 1 ok, 1 warn, 1 failed (1 required), 2 skipped, in S s.

### portal

| endpoint | address | result | time | reason |
| --- | --- | --- | ---: | --- |
| Dev Portal `tls://{portal_id}.us.portal.konghq.com:443` |  | ⏭️ skipped |  | \\`portal\\_id\\` is not set (add --set portal\\_id=VALUE to check it) |
| Dev Portal (kongportals.com) `tls://{portal_id}.us.kongportals.com:443` |  | ⏭️ skipped |  | \\`portal\\_id\\` is not set (add --set portal\\_id=VALUE to check it) |

### target

| endpoint | address | result | time | reason |
| --- | --- | --- | ---: | --- |
| TCP connect `tcp://127.0.0.1:P` | 127.0.0.1 | ❌ fail | T ms | `refused`: connection refused: 127.0.0.1:P |
| Local port `bind://127.0.0.1:P` | 127.0.0.1 | ✅ ok | T ms |  |
| UDP datagram `udp://127.0.0.1:P` | 127.0.0.1 | ⚠️ warn | T ms | `udp_no_reply`: no reply from 127.0.0.1:P within 300 ms: open or filtered (UDP cannot prove reachability without a reply) |

### What to do

";
    assert!(markdown.starts_with(expected), "{markdown}");
    let refused = ports.replace_all(&refused, "127.0.0.1:P");
    assert!(
        markdown.contains(&format!(
            "- **TCP connect** (`{refused}`, required, `refused`): Something at"
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "- **UDP datagram** (`udp://127.0.0.1:P`, required, `udp_no_reply`): UDP cannot prove"
        ),
        "{markdown}"
    );
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = format!("tcp://{dead}");
    let painted = |args: &[&str], no_color: bool| {
        let mut command = crate::support::world::preflight();
        command.arg("check").args(args).arg(&target);
        if no_color {
            command.env("NO_COLOR", "1");
        } else {
            command.env_remove("NO_COLOR");
        }
        let out = command.output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\x1b[")
    };
    // stdout is a pipe here: auto means no colour.
    assert!(!painted(&[], false));
    assert!(painted(&["--color", "always"], false));
    // An explicit flag is the user's choice over NO_COLOR.
    assert!(painted(&["--color", "always"], true));
    assert!(!painted(&["--color", "never"], false));
}

/// One run, every format a CI job wants: JSON, JUnit and Markdown files beside the human
/// report on standard output, all from the same results (pytest's --junitxml, goss's formats).
/// A file that cannot be written is refused before anything is probed.
#[test]
fn one_run_writes_json_junit_and_markdown_files_beside_the_human_report() {
    let (args, refused) = mixed_run();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).display().to_string();
    let (json, junit, markdown) = (file("r.json"), file("r.xml"), file("r.md"));
    let mut all = vec![
        "check",
        "--json",
        &json,
        "--junit",
        &junit,
        "--markdown",
        &markdown,
    ];
    all.extend(args.iter().map(String::as_str));
    let (code, stdout, stderr) = run(&all);
    assert_eq!(code, 1, "{stderr}");
    // The human report on standard output.
    assert!(stdout.contains("failed"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let failed = crate::support::world::check(&report, &refused);
    assert_eq!(failed["status"], "fail");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(
        doc.root_element().attribute("tests"),
        Some(report["summary"]["total"].to_string().as_str())
    );
    // The whole's time is the run's wall time, not the sum of checks that ran at once.
    let wall = report["duration_ms"].as_f64().unwrap() / 1000.0;
    assert_eq!(
        doc.root_element().attribute("time"),
        Some(format!("{wall:.3}").as_str())
    );
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(failure.attribute("type"), failed["error"]["kind"].as_str());
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("| ") && md.contains("refused"), "{md}");

    // An unwritable destination: exit 2, naming the flag, and nothing probed or written.
    let bad = dir.path().join("no/such/dir/r.xml").display().to_string();
    let (code, _, stderr) = run(&["check", "--json", &json, "--junit", &bad, &refused]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--junit"), "{stderr}");
}
