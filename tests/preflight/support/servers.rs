//! Real TLS servers where users meet them: nginx and OpenSSL's `s_server`, each started on a
//! free port of 127.0.0.1 with files from the test's directory, and stopped when dropped.
//! Where one is not installed, the test says so and skips.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Waits until something accepts on `addr`, failing if `child` exits first.
pub(crate) fn wait_for(addr: SocketAddr, child: &mut Child, what: &str) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before it listened on {addr}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `program` can be run; says so on stderr when not.
fn installed(program: &str, probe: &[&str]) -> bool {
    let found = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        super::skip(&format!(
            "{program} is not installed (apt-get install {program})"
        ));
    }
    found
}

/// An nginx serving HTTPS on 127.0.0.1 with the `server` block's TLS settings.
pub(crate) struct Nginx {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx in `dir` with `tls` (directives inside the server block: certificates,
    /// protocols, client verification); `location /` answers 200 "ok".
    pub(crate) fn start(dir: &Path, tls: &str) -> Option<Nginx> {
        if !installed("nginx", &["-v"]) {
            return None;
        }
        let port = free_port();
        let d = dir.display();
        for sub in ["client", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join(format!("nginx-{sub}"))).unwrap();
        }
        let conf = format!(
            "daemon off;
master_process off;
worker_processes 1;
error_log {d}/nginx-error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/nginx-client;
    proxy_temp_path {d}/nginx-proxy;
    fastcgi_temp_path {d}/nginx-fastcgi;
    uwsgi_temp_path {d}/nginx-uwsgi;
    scgi_temp_path {d}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        {tls}
        location / {{ return 200 \"ok\\n\"; }}
    }}
}}
"
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let mut child = Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for(addr, &mut child, "nginx");
        Some(Nginx { child, addr })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// OpenSSL's `s_server` on 127.0.0.1 with `args` (`-cert`, `-key`, `-Verify` …).
pub(crate) struct SServer {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl SServer {
    pub(crate) fn start(args: &[&str]) -> Option<SServer> {
        if !installed("openssl", &["version"]) {
            return None;
        }
        let port = free_port();
        let mut child = Command::new("openssl")
            .args(["s_server", "-quiet", "-naccept", "1000", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for(addr, &mut child, "openssl s_server");
        Some(SServer { child, addr })
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `openssl ARGS` in `dir` and panics with its words if it fails.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate made by `openssl req -x509` (a CA certificate, as that
/// command makes), with `extra` arguments, written to `dir/NAME.crt` and `dir/NAME.key`.
pub(crate) fn openssl_self_signed(dir: &Path, name: &str, subject: &str, extra: &[&str]) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &crt,
        "-subj",
        subject,
        "-days",
        "30",
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
}
