//! Text from outside, round three (issue 25): a log line any client can write, a certificate's
//! issuer, a report's failure kind and node name reach a shell, a job summary and a terminal
//! only as data. Real components where users meet them: nginx writes the error log a hostile
//! `Referer` lands in, nginx serves the certificate, and cmark-gfm (GitHub's Markdown) renders
//! the summaries.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::free_port;
use crate::support::servers::Nginx;
use crate::support::world::{Ca, run};

/// Whether `program` runs; says so when not (`.ci/run` installs it).
fn installed(program: &str) -> bool {
    crate::serve::installed(program)
}

/// GitHub-flavoured Markdown as HTML, as a job summary renders it: cmark-gfm with GitHub's
/// extensions (tables, autolinks, strikethrough; tagfilter left out, so that any tag the
/// Markdown carries would show).
fn gfm(markdown: &str) -> String {
    let mut command = Command::new("cmark-gfm");
    command.args([
        "-e",
        "table",
        "-e",
        "autolink",
        "-e",
        "strikethrough",
        "--unsafe",
    ]);
    let out = crate::support::piped(command, markdown);
    String::from_utf8(out.stdout).unwrap()
}

/// The tags of `html` that are not the ones a Markdown table, list and text make.
fn foreign_tags(html: &str) -> Vec<String> {
    const OURS: [&str; 16] = [
        "h2",
        "h3",
        "p",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "ul",
        "li",
        "code",
        "strong",
        "blockquote",
        "em",
        "del",
    ];
    html.split('<')
        .skip(1)
        .filter_map(|tag| {
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            (!OURS.contains(&name.to_ascii_lowercase().as_str())).then(|| tag.to_string())
        })
        .collect()
}

/// An nginx serving plain HTTP from an empty directory, logging errors (with the request's
/// `Referer`) to `dir/error.log`.
struct LoggingNginx(std::process::Child);

impl Drop for LoggingNginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn logging_nginx(dir: &Path) -> (LoggingNginx, SocketAddr) {
    let port = free_port();
    let d = dir.display();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let conf = format!(
        "daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log error;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d};
    proxy_temp_path {d};
    fastcgi_temp_path {d};
    uwsgi_temp_path {d};
    scgi_temp_path {d};
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
    }}
}}
"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut child = Command::new("nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    crate::support::servers::wait_for(addr, &mut child, "nginx");
    (LoggingNginx(child), addr)
}

/// Asks nginx for a missing page with `referer`: nginx logs the error with it.
fn request_with_referer(addr: SocketAddr, referer: &str) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /missing HTTP/1.1\r\nHost: x\r\nReferer: {referer}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
}

#[test]
fn a_command_explain_suggests_runs_nothing_a_log_line_carries() {
    if !installed("nginx") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, addr) = logging_nginx(dir.path());
    // What any client of any server in front of the node can do: a Referer shaped like Kong's
    // line, naming a "host" that is a shell command.
    for payload in [
        "$(touch${IFS}pwned)",
        "`touch${IFS}pwned`",
        "cp.example;touch${IFS}pwned;",
    ] {
        request_with_referer(
            addr,
            &format!(
                "[clustering] connection to control plane wss://{payload}:443/v1/outlet broken: failed to connect: connection refused (retrying after 5 seconds)"
            ),
        );
    }
    // And a genuine line, whose command keeps its address.
    request_with_referer(
        addr,
        "[clustering] connection to control plane wss://cp.example.com:8005/v1/outlet broken: failed to connect: timeout (retrying after 5 seconds)",
    );
    let log = dir.path().join("error.log");
    let (code, json, stderr) = run(&["explain", "--format", "json", log.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let found: Value = serde_json::from_str(&json).unwrap();
    let errors = found["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 4, "{found:#}");
    let (_, human, _) = run(&["explain", log.to_str().unwrap()]);
    let mut commands: Vec<String> = errors
        .iter()
        .map(|e| e["command"].as_str().unwrap().to_string())
        .collect();
    commands.extend(
        human
            .lines()
            .filter_map(|l| l.trim().strip_prefix("test it: "))
            .map(str::to_string),
    );
    assert_eq!(commands.len(), 8, "{human}");
    // Pasted into a shell (with preflight a function that does nothing), no command runs
    // anything the log said.
    for command in &commands {
        let status = Command::new("sh")
            .args(["-c", &format!("preflight() {{ :; }}; {command}")])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "{command}");
        assert!(!dir.path().join("pwned").exists(), "pasting ran: {command}");
    }
    for e in &errors[..3] {
        assert_eq!(
            e["command"], "preflight check --kong-conf /etc/kong/kong.conf --only control-plane",
            "{e:#}"
        );
        assert!(
            e["command_note"]
                .as_str()
                .unwrap()
                .contains("not a host name")
        );
        assert!(!e["hint"].as_str().unwrap().contains("touch"), "{e:#}");
    }
    assert_eq!(
        errors[3]["command"], "preflight check tcp://cp.example.com:8005",
        "{found:#}"
    );
    assert!(human.contains("not a host name or IP address"), "{human}");
}

#[test]
fn a_certificate_issuer_renders_no_tag_or_link_in_a_job_summary() {
    if !installed("nginx") || !installed("cmark-gfm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let issuer = r#"<a href="https://evil.example/fix">Click to fix</a> [docs](https://evil.example) <img src=x onerror=alert(1)>"#;
    let ca = Ca::named(dir.path(), "Corp CA", issuer, "ca.pem");
    let (cert, key) = ca.server_files(dir.path(), "server", &["localhost"]);
    let tls = format!(
        "ssl_certificate {};\n        ssl_certificate_key {};",
        cert.display(),
        key.display()
    );
    let Some(nginx) = Nginx::start(dir.path(), &tls) else {
        return;
    };
    let target = format!("tls://localhost:{}", nginx.addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", nginx.addr.port());
    let (code, markdown, stderr) = run(&[
        "check",
        "--format",
        "markdown",
        "--resolve",
        &resolve,
        &target,
    ]);
    assert_eq!(code, 1, "{stderr}{markdown}");
    assert!(markdown.contains("Click to fix"), "{markdown}");
    let html = gfm(&markdown);
    assert_eq!(foreign_tags(&html), Vec::<String>::new(), "{html}");
    // The text is shown as it came, escaped, not dropped.
    assert!(html.contains("&lt;a href="), "{html}");
}

/// A report of one node with `node` as its name and one failed check of `kind`.
fn report(node: &str, kind: &str, message: &str) -> Value {
    json!({
        "schema_version": 1,
        "started_at": "2026-12-04T10:00:00Z",
        "node": node,
        "checks": [{
            "id": "konnect.control-plane",
            "name": "Control plane",
            "target": "tls://eu.cp.konghq.com:443",
            "required": true,
            "status": "fail",
            "error": {"kind": kind, "message": message, "hint": "<b>fix</b> [here](https://evil.example)"}
        }]
    })
}

#[test]
fn merge_shows_what_a_report_says_as_text_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let nasty_kind = "refused\u{1b}[2K\r[ ok ] all reached\u{7}\u{1b}]0;owned\u{7}";
    let nasty_node = "<img src=x onerror=alert(1)>node-a";
    let files: Vec<String> = [
        report(nasty_node, nasty_kind, "<script>x</script>"),
        report("node-b", "refused", "connection refused"),
    ]
    .iter()
    .enumerate()
    .map(|(i, r)| {
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, r.to_string()).unwrap();
        path.display().to_string()
    })
    .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();

    // The terminal: no control character at all (run() asserts plain text, too).
    let (code, human, _) = run(&[&["merge"], &files[..]].concat());
    assert_eq!(code, 1);
    assert!(
        !human.chars().any(|c| c.is_control() && c != '\n'),
        "{human:?}"
    );
    assert!(human.contains("\\x1b[2K\\r[ ok ]"), "{human}");

    // The job summary: no tag, link or image.
    let (_, markdown, _) = run(&[&["merge", "--format", "markdown"], &files[..]].concat());
    if installed("cmark-gfm") {
        let html = gfm(&markdown);
        assert_eq!(foreign_tags(&html), Vec::<String>::new(), "{html}");
        assert!(html.contains("&lt;img src=x"), "{html}");
    }

    // The page: escaped markup only.
    let (_, page, _) = run(&[&["merge", "--format", "html"], &files[..]].concat());
    assert!(!page.contains("<img") && !page.contains("<script") && !page.contains("<b>"));
    assert!(page.contains("&lt;img src=x"), "{page}");
}
