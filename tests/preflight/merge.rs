//! `preflight merge` (issue 19): three nodes' real reports, one node failing alone and one
//! endpoint failing on all, merged into the fleet's matrix in every format; the HTML page as
//! headless Chromium renders it.

use std::net::TcpListener;
use std::path::Path;

use serde_json::Value;

use crate::support::world::{check_json, run};

/// Runs a check of `targets` as node `node` and writes its JSON report to `dir/node.json`.
fn report(dir: &Path, node: &str, targets: &[&str]) -> String {
    let mut args = vec!["--node", node, "--timeout", "2s"];
    args.extend_from_slice(targets);
    let (_, report) = check_json(&args);
    assert_eq!(report["node"], node);
    let path = dir.join(format!("{node}.json"));
    std::fs::write(&path, report.to_string()).unwrap();
    path.display().to_string()
}

/// Three reports: `shared` refused on every node, `own` reached by node-a and node-c but not by
/// node-b (its server gone when node-b checks), `fine` reached by all.
fn three_reports(dir: &Path) -> (Vec<String>, [String; 3]) {
    let fine = TcpListener::bind("127.0.0.1:0").unwrap();
    let own = TcpListener::bind("127.0.0.1:0").unwrap();
    // A port that was free a moment ago: refused.
    let shared = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let targets = [
        format!("tcp://{}", fine.local_addr().unwrap()),
        format!("tcp://{}", own.local_addr().unwrap()),
        format!("tcp://{shared}"),
    ];
    let t: Vec<&str> = targets.iter().map(String::as_str).collect();
    let a = report(dir, "node-a", &t);
    let c = report(dir, "node-c", &t);
    drop(own);
    let b = report(dir, "node-b", &t);
    (vec![a, b, c], targets)
}

#[test]
fn merge_names_the_endpoint_failing_everywhere_and_the_node_failing_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (files, [fine, own, shared]) = three_reports(dir.path());
    let files: Vec<&str> = files.iter().map(String::as_str).collect();

    let (code, text, stderr) = run(&[&["merge"], &files[..]].concat());
    assert_eq!(code, 1, "a required endpoint failed: {text}{stderr}");
    let everywhere = text.find("Failing on every node").expect(&text);
    let some = text.find("Failing on some nodes only").expect(&text);
    assert!(
        text[everywhere..some].contains(&format!("{shared}: refused on all 3 nodes")),
        "{text}"
    );
    assert!(
        text[some..].contains(&format!("{own}: refused on node-b (1 of 3)")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "node-b fails 1 endpoint that every other node reaches: {own}"
        )),
        "{text}"
    );
    // The matrix: the endpoint's row, a cell per node in the order given.
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with(&own))
        .unwrap();
    let cells: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells, [own.as_str(), "✔ ok", "✖ refused", "✔ ok"], "{text}");
    assert!(
        !text.contains(&format!("{fine}:")),
        "{fine} fails nowhere: {text}"
    );

    let (_, json, _) = run(&[&["merge", "--format", "json"], &files[..]].concat());
    let fleet: Value = serde_json::from_str(&json).unwrap();
    let nodes: Vec<&str> = fleet["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["node-a", "node-b", "node-c"]);
    let pattern = |target: &str| {
        let row = fleet["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == target)
            .unwrap();
        row["pattern"].as_str().unwrap().to_string()
    };
    assert_eq!(
        [pattern(&fine), pattern(&own), pattern(&shared)],
        ["none", "some_nodes", "everywhere"]
    );
    assert_eq!(fleet["alone"][0]["node"], "node-b");
    assert!(
        fleet["nodes"][0]["source_addresses"][0] == "127.0.0.1",
        "{fleet:#}"
    );

    let (_, md, _) = run(&[&["merge", "--format", "markdown"], &files[..]].concat());
    assert!(
        md.contains("| endpoint | target | node-a | node-b | node-c |"),
        "{md}"
    );
    assert!(
        md.contains(&format!("| {own} | {own} | ✔ ok | ✖ refused | ✔ ok |")),
        "{md}"
    );
}

#[test]
fn the_merged_page_loads_in_a_browser_with_a_cell_per_node() {
    if !crate::serve::installed("chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (files, [_, own, shared]) = three_reports(dir.path());
    let page = dir.path().join("fleet.html");
    let page_text = page.display().to_string();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, _, stderr) =
        run(&[&["merge", "--format", "html", "-o", &page_text], &files[..]].concat());
    assert_eq!(code, 1, "{stderr}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("src=") && !html.contains("href="),
        "self-contained"
    );

    let dom = crate::serve::chromium_dom(&format!("file://{page_text}"));
    let cell = |check: &str, node: &str| {
        let row = dom
            .find(&format!("data-check=\"{check}\""))
            .unwrap_or_else(|| panic!("no row {check}: {dom}"));
        let end = row + dom[row..].find("</tr>").unwrap();
        let at = dom[row..end]
            .find(&format!("data-node=\"{node}\""))
            .unwrap_or_else(|| panic!("no cell {node} in {check}"));
        let tag = &dom[row + at..end];
        let status = tag
            .split("data-status=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        status.to_string()
    };
    assert_eq!(
        [
            cell(&own, "node-a"),
            cell(&own, "node-b"),
            cell(&own, "node-c")
        ],
        ["ok", "fail", "ok"]
    );
    assert_eq!(cell(&shared, "node-b"), "fail");
    let section = |id: &str| {
        let at = dom
            .find(&format!("<section id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id}: {dom}"));
        dom[at..at + dom[at..].find("</section>").unwrap()].to_string()
    };
    assert!(section("everywhere").contains(&shared), "{dom}");
    assert!(section("some-nodes").contains(&own), "{dom}");
    assert!(section("alone").contains("node-b"), "{dom}");
}

#[test]
fn what_is_not_a_report_is_one_line_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let out = dir.path().join("fleet.html");
    let (code, stdout, stderr) = run(&[
        "merge",
        "--format",
        "html",
        "-o",
        out.to_str().unwrap(),
        junk.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("junk.json") && stderr.contains("not a preflight JSON report"),
        "{stderr}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    let (code, _, stderr) = run(&["merge", "/nonexistent/r.json"]);
    assert_eq!(code, 2, "{stderr}");
}

/// merge's sentences fit `COLUMNS` (or the terminal), and are not wrapped when piped.
#[test]
fn merge_wraps_to_the_width_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = three_reports(dir.path());
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    let piped = crate::support::world::preflight()
        .args(&args)
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let piped = String::from_utf8_lossy(&piped.stdout).into_owned();
    assert!(piped.lines().any(|l| l.chars().count() > 80), "{piped}");
    let narrow = crate::support::world::preflight()
        .args(&args)
        .env("COLUMNS", "50")
        .output()
        .unwrap();
    let narrow = String::from_utf8_lossy(&narrow.stdout).into_owned();
    // The sentences under the matrix (the matrix is a table, as wide as its columns).
    // The header, a blank line, the matrix, a blank line, then the sentences.
    let sentences: Vec<&str> = narrow.split("\n\n").skip(2).flat_map(str::lines).collect();
    assert!(!sentences.is_empty(), "{narrow}");
    for line in sentences {
        assert!(line.chars().count() <= 50, "{line}\n{narrow}");
    }
}

/// Today's output, kept: five reports whose every endpoint two nodes or more checked (names
/// given twice, a name already given as a renaming, a node with no name, a control character
/// in a name; every pattern) merge to the very bytes the merge made before node-own endpoints
/// were kept apart, in every format. So does a single report.
#[test]
fn a_fleet_whose_nodes_share_their_endpoints_merges_as_it_always_has() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/preflight/golden/merge");
    let files: Vec<String> = (1..=5).map(|i| format!("node-{i}.json")).collect();
    for format in ["human", "markdown", "json", "html"] {
        let out = crate::support::world::preflight()
            .current_dir(&golden)
            .args(["merge", "--format", format])
            .args(&files)
            .env_remove("COLUMNS")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let today = std::fs::read(golden.join(format!("today.{format}"))).unwrap();
        assert!(
            out.stdout == today,
            "{format}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = crate::support::world::preflight()
        .current_dir(&golden)
        .args(["merge", "--format", "json", "node-1.json"])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        std::fs::read(golden.join("one-node.json")).unwrap()
    );
}

/// A DaemonSet's nodes each check their own node's address beside the shared endpoints: the
/// matrix keeps the shared endpoints only, and each node's own endpoints are listed apart in
/// every format; a required own endpoint that failed fails the merge.
#[test]
fn endpoints_only_one_node_checked_are_listed_apart_from_the_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = format!("tcp://{}", open.local_addr().unwrap());
    let closed = || {
        let port = TcpListener::bind("127.0.0.2:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("tcp://127.0.0.2:{port}")
    };
    let own_a_listener = TcpListener::bind("127.0.0.3:0").unwrap();
    let own_a = format!("tcp://{}", own_a_listener.local_addr().unwrap());
    let own_b = closed();
    let a = report(dir.path(), "node-a", &[&open, &own_a]);
    let b = report(dir.path(), "node-b", &[&open, &own_b]);
    let (code, text, _) = run(&["merge", &a, &b]);
    assert_eq!(code, 1, "node-b's own endpoint failed: {text}");
    let matrix: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Checked by"))
        .collect();
    assert!(matrix.iter().any(|l| l.contains(&open)), "{text}");
    assert!(
        !matrix
            .iter()
            .any(|l| l.contains(&own_a) || l.contains(&own_b)),
        "{text}"
    );
    assert!(text.contains(&format!("node-a: {own_a} ✔ ok")), "{text}");
    assert!(
        text.contains(&format!("node-b: {own_b} ✖ refused")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{own_b}: refused on node-b (1 of 2)")),
        "{text}"
    );

    let (_, json, _) = run(&["merge", "--format", "json", &a, &b]);
    let fleet: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(fleet["endpoints"].as_array().unwrap().len(), 1, "{fleet:#}");
    assert_eq!(fleet["endpoints"][0]["cells"].as_array().unwrap().len(), 2);
    let own = fleet["own_endpoints"].as_array().unwrap();
    assert_eq!(own.len(), 2, "{fleet:#}");
    assert_eq!(own[1]["node"], "node-b");
    assert_eq!(own[1]["endpoints"][0]["target"], own_b.as_str());
    assert_eq!(own[1]["endpoints"][0]["status"], "fail");
    assert_eq!(own[1]["endpoints"][0]["pattern"], "one_node");
    assert_eq!(own[0]["endpoints"][0]["pattern"], "none");

    let (_, markdown, _) = run(&["merge", "--format", "markdown", &a, &b]);
    assert!(
        markdown.contains(&format!("| node-b | {own_b} | {own_b} | ✖ refused |")),
        "{markdown}"
    );
    let (_, html, _) = run(&["merge", "--format", "html", &a, &b]);
    assert!(html.contains("<section id=\"own\">"), "{html}");
    assert!(
        html.contains(&format!("data-node=\"node-b\" data-check=\"{own_b}\"")),
        "{html}"
    );
}

/// Many reports of one host name (CI runners, one host's daily reports): each after the
/// first is renamed in order, `#2`, `#3` …, skipping a name a report gives itself.
#[test]
fn many_reports_of_one_name_are_numbered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let one = report(dir.path(), "runner", &["dns://localhost"]);
    let text = std::fs::read_to_string(&one).unwrap();
    let mut files = Vec::new();
    for i in 0..300 {
        let path = dir.path().join(format!("r{i:03}.json"));
        // The 5th report calls itself "runner #3" outright.
        let named = match i {
            4 => text.replace("\"node\":\"runner\"", "\"node\":\"runner #3\""),
            _ => text.clone(),
        };
        std::fs::write(&path, named).unwrap();
        files.push(path.display().to_string());
    }
    let mut args = vec!["merge", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let (_, json, _) = run(&args);
    let fleet: Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = fleet["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(
        &names[..6],
        [
            "runner",
            "runner #2",
            "runner #3",
            "runner #4",
            "runner #3 #2",
            "runner #5"
        ]
    );
    assert_eq!(names[299], "runner #299");
    let unique: std::collections::HashSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), 300);
}
