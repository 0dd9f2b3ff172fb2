//! `preflight explain`: Kong's error.log read for the data plane's clustering errors. Each is
//! grouped, counted, read as the failure kind a check would report with its hint, and given the
//! `preflight check` command that tests the path. Errors it does not know are counted, not
//! guessed.
//!
//! The lines and words come from Kong's source (github.com/Kong/kong) and from the WebSocket
//! client Kong builds in (github.com/Kong/lua-resty-websocket, lib/resty/websocket/client.lua);
//! each recognizer names the file its line comes from.

use std::collections::HashMap;

use serde::Serialize;

use crate::failure::{Failure, FailureKind, Peer};
use crate::sanitize;

/// Kong's default kong.conf, named in commands when `--kong-conf` is not given.
pub const DEFAULT_KONG_CONF: &str = "/etc/kong/kong.conf";

/// One error of the log: where it went, how often and when, and what it means.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// The connection: `control plane` (/v1/outlet), `control plane RPC` (/v2/outlet), or
    /// `control plane's log` for a line the control plane writes about a data plane.
    pub connection: &'static str,
    /// `HOST:PORT` the node dialled, when the line names it.
    pub address: Option<String>,
    /// The error as Kong logged it.
    pub error: String,
    /// How many lines carry the error.
    pub count: usize,
    /// The log's timestamps of the first and last line (as written: the node's local time).
    pub first: Option<String>,
    /// The log's timestamp of the last line (the node's local time).
    pub last: Option<String>,
    /// The failure kind a check meeting this error reports; `None` for errors past what a
    /// check sees (or not known).
    pub kind: Option<FailureKind>,
    /// What the error means; `None` when preflight does not know the error.
    pub meaning: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
    /// The command that tests the path, safe to paste into a shell; `None` when no check can.
    pub command: Option<String>,
    /// Why the command leaves out the address the log names (it is not a host name or address
    /// with a numeric port: a log holds text any client can write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_note: Option<String>,
    /// The file of Kong's source that writes the line.
    pub source: &'static str,
}

/// What `explain` found in a log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Explanation {
    /// The distinct errors, in the order the log first shows them.
    pub errors: Vec<Explained>,
    /// Clustering lines (warnings and errors) whose error preflight does not know, listed
    /// among `errors` without a meaning.
    pub unknown: usize,
    /// Clustering warnings and errors of a shape preflight does not read at all.
    pub unread: usize,
    /// Lines read.
    pub lines: usize,
    /// Lines with bytes that are not UTF-8, read with those bytes replaced (U+FFFD).
    pub not_utf8_lines: usize,
    /// Lines longer than `MAX_LINE` bytes, read up to that length.
    pub long_lines: usize,
    /// Lines of distinct errors past the first `MAX_ERRORS`, counted, not listed.
    pub past_limit: usize,
}

/// The longest line read whole; the rest of a longer line is skipped (nginx cuts its own
/// error lines at 4 KiB, so a longer one is not Kong's).
pub const MAX_LINE: usize = 64 * 1024;
/// The distinct errors listed; lines of further ones are counted in `past_limit`.
pub const MAX_ERRORS: usize = 1000;

/// A clustering line taken apart.
struct Line {
    connection: &'static str,
    address: Option<String>,
    error: String,
    /// How to read the error: the WebSocket client's words, or a fixed reading.
    reading: Reading,
    source: &'static str,
}

/// What an error means, what to do, and which check tests it.
#[derive(Clone)]
enum Reading {
    /// Read from the words of the error.
    Words,
    /// The connection was up, then broke: a check (which closes at once) cannot see it, but
    /// `--watch` shows a path that comes and goes.
    Broken(&'static str, &'static str),
    /// The control plane refused the node's Kong version after the upgrade.
    Version,
    /// A line of Kong's TLS helpers, read from the table `CERTIFICATE_LINES`.
    Certificate(&'static CertificateLine),
}

/// A line about the node's certificate, from Kong's TLS helpers (kong/clustering/tls.lua),
/// which the control plane logs when it refuses a data plane's certificate (then closing the
/// connection unanswered, kong/clustering/init.lua) and the data plane when it cannot read its
/// own files at start.
struct CertificateLine {
    words: &'static str,
    /// The log it appears in: `control plane's log` or `data plane`.
    connection: &'static str,
    kind: FailureKind,
    meaning: &'static str,
    hint: &'static str,
    /// The check that tests it: the node's files alone (`--only local`) or its handshake.
    local: bool,
}

const CERTIFICATE_LINES: [CertificateLine; 7] = [
    CertificateLine {
        words: "data plane presented incorrect client certificate during handshake",
        connection: "control plane's log",
        kind: FailureKind::HttpError,
        meaning: "the control plane refused the data plane's certificate and closed the connection unanswered: in shared mode the data plane must present the control plane's own cluster_cert",
        hint: "Give the data plane the control plane's cluster_cert and cluster_cert_key (shared mode), or switch both to cluster_mtls = pki with certificates from one CA. On the data plane, preflight's control-plane check names such a close.",
        local: false,
    },
    CertificateLine {
        words: "data plane failed to present client certificate during handshake",
        connection: "control plane's log",
        kind: FailureKind::ClientCertRejected,
        meaning: "the data plane's connection arrived without a client certificate: the node has none set, or a proxy between terminates TLS",
        hint: "Set cluster_cert and cluster_cert_key on the data plane; if they are set, ask whether a proxy or load balancer in front of the control plane terminates TLS, and have it pass the cluster port through (layer 4).",
        local: false,
    },
    CertificateLine {
        words: "data plane client certificate was revoked",
        connection: "control plane's log",
        kind: FailureKind::ClientCertRejected,
        meaning: "the control plane's OCSP check (cluster_ocsp) says the data plane's certificate is revoked",
        hint: "Issue the data plane a new certificate from the cluster CA and point cluster_cert and cluster_cert_key at it.",
        local: false,
    },
    CertificateLine {
        words: "failed reading the cluster certificate file",
        connection: "data plane",
        kind: FailureKind::FileUnreadable,
        meaning: "Kong could not read cluster_cert at start",
        hint: "Check that the file cluster_cert names exists and that the user Kong runs as may read it.",
        local: true,
    },
    CertificateLine {
        words: "failed parsing the cluster certificate PEM data",
        connection: "data plane",
        kind: FailureKind::FileInvalid,
        meaning: "cluster_cert holds no PEM certificate Kong can parse",
        hint: "Point cluster_cert at the node's certificate in PEM (-----BEGIN CERTIFICATE-----).",
        local: true,
    },
    CertificateLine {
        words: "failed reading the cluster certificate private key file",
        connection: "data plane",
        kind: FailureKind::FileUnreadable,
        meaning: "Kong could not read cluster_cert_key at start",
        hint: "Check that the file cluster_cert_key names exists and that the user Kong runs as may read it.",
        local: true,
    },
    CertificateLine {
        words: "failed parsing the cluster certificate private key PEM data",
        connection: "data plane",
        kind: FailureKind::FileInvalid,
        meaning: "cluster_cert_key holds no private key Kong can parse (an encrypted key is not one)",
        hint: "Point cluster_cert_key at the node's unencrypted private key in PEM.",
        local: true,
    },
];

/// Opens the log at `path` (`-`: standard input) for `explain_from`; a FIFO or a device is
/// refused, as for every input file.
pub fn open(path: &std::path::Path) -> Result<impl std::io::BufRead, crate::error::InputError> {
    let file = crate::files::open(crate::files::stdin_or(path)).map_err(|e| {
        crate::error::InputError::File {
            path: path.to_path_buf(),
            reason: format!("cannot read the log: {e}"),
        }
    })?;
    Ok(std::io::BufReader::with_capacity(64 * 1024, file))
}

/// Reads `log` (Kong's error.log, or lines pasted from it); `kong_conf` is the node's file,
/// named in the commands.
pub fn explain(log: &str, kong_conf: Option<&str>) -> Explanation {
    // Reading from memory cannot fail.
    explain_from(log.as_bytes(), kong_conf).unwrap_or_default()
}

/// Reads a log of any size as a stream, a line at a time: memory holds one line (at most
/// `MAX_LINE` bytes) and the distinct errors (at most `MAX_ERRORS`), never the log.
pub fn explain_from(
    log: impl std::io::BufRead,
    kong_conf: Option<&str>,
) -> std::io::Result<Explanation> {
    explain_with(log, kong_conf, None)
}

/// `explain_from`, with the node's proxy (`HOST:PORT` of kong.conf's `proxy_server`, no
/// credentials) for the words of the proxy's own refusals.
pub fn explain_with(
    mut log: impl std::io::BufRead,
    kong_conf: Option<&str>,
    proxy: Option<&str>,
) -> std::io::Result<Explanation> {
    let mut found = Explanation::default();
    let mut groups: HashMap<(&'static str, Option<String>, String), usize> = HashMap::new();
    let mut seen: Vec<Seen> = Vec::new();
    // The control plane's address while every line that names one names the same.
    let mut cluster = Cluster::None;
    let mut bytes = Vec::new();
    while let Some(cut) = next_line(&mut log, &mut bytes)? {
        found.lines += 1;
        found.long_lines += usize::from(cut);
        let text = String::from_utf8_lossy(&bytes);
        if let std::borrow::Cow::Owned(_) = text {
            found.not_utf8_lines += 1;
        }
        let text = text.trim_end_matches(['\n', '\r']);
        let Some(line) = clustering_line(text, None) else {
            if is_clustering_problem(text) {
                found.unread += 1;
            }
            continue;
        };
        cluster.saw(line.address.as_deref());
        let at = timestamp(text);
        // Grouped through an index, so that a log of many distinct errors stays linear.
        let group = (line.connection, line.address.clone(), line.error.clone());
        let index = match groups.get(&group) {
            Some(&index) => index,
            None if seen.len() >= MAX_ERRORS => {
                found.past_limit += 1;
                continue;
            }
            None => {
                groups.insert(group, seen.len());
                seen.push(Seen {
                    line,
                    count: 0,
                    first: None,
                    last: None,
                });
                seen.len() - 1
            }
        };
        let entry = &mut seen[index];
        entry.count += 1;
        if at.is_some() {
            entry.first = entry.first.take().or_else(|| at.clone());
            entry.last = at;
        }
    }
    let cluster = match cluster {
        Cluster::One(address) => Some(address),
        _ => None,
    };
    for mut group in seen {
        // The RPC lines name no address: the one every other line names is theirs.
        if group.line.address.is_none() && group.line.connection == "control plane RPC" {
            group.line.address.clone_from(&cluster);
        }
        let mut entry = entry(group.line, kong_conf, proxy);
        entry.count = group.count;
        entry.first = group.first;
        entry.last = group.last;
        if entry.meaning.is_none() {
            found.unknown += entry.count;
        }
        found.errors.push(entry);
    }
    Ok(found)
}

/// A distinct error while the log is read.
struct Seen {
    line: Line,
    count: usize,
    first: Option<String>,
    last: Option<String>,
}

/// The addresses the log's lines name: none yet, one, or several.
enum Cluster {
    None,
    One(String),
    Several,
}

impl Cluster {
    fn saw(&mut self, address: Option<&str>) {
        let Some(address) = address else {
            return;
        };
        *self = match std::mem::replace(self, Cluster::Several) {
            Cluster::None => Cluster::One(address.to_string()),
            Cluster::One(one) if one == address => Cluster::One(one),
            _ => Cluster::Several,
        };
    }
}

/// Reads the next line into `line` (with its newline), keeping at most `MAX_LINE` bytes and
/// skipping the rest; `None` at the end of the log, else whether the line was cut.
fn next_line(log: &mut impl std::io::BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut cut = false;
    let mut any = false;
    loop {
        let buffer = match log.fill_buf() {
            Ok(buffer) => buffer,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buffer.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (taken, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(&buffer[..taken.min(room)]);
        cut |= taken > room;
        log.consume(taken);
        if done {
            return Ok(Some(cut));
        }
    }
}

/// Whether a line that no recognizer reads is a clustering warning or error (counted).
fn is_clustering_problem(text: &str) -> bool {
    let clustering = text.contains("[clustering]") || text.contains("[rpc]");
    let level = ["[warn]", "[error]", "[crit]", "[alert]", "[emerg]"];
    clustering && level.iter().any(|l| text.contains(l))
}

/// The error of a line, without nginx's `, client: …` and `, context: …` and Kong's ` [HOST]`.
fn trimmed(error: &str) -> (&str, Option<&str>) {
    let error = [", client: ", ", context: "]
        .iter()
        .fold(error, |e, cut| e.split(cut).next().unwrap_or(e))
        .trim();
    match error.rsplit_once(" [") {
        Some((head, tail)) if tail.ends_with(']') => {
            (head.trim(), Some(tail.trim_end_matches(']')))
        }
        _ => (error, None),
    }
}

/// The clustering line `text` holds, when it is one preflight reads; `cluster` is the control
/// plane's address when the log names only one (the RPC lines name none).
fn clustering_line(text: &str, cluster: Option<&str>) -> Option<Line> {
    const READERS: [Reader; 8] = [
        broken,
        receive_error,
        pong_missing,
        rpc_connect,
        rpc_refused,
        sync_fallback,
        version_refused,
        certificate,
    ];
    READERS.iter().find_map(|read| read(text, cluster))
}

/// A reader of one shape of line: the line, and the control plane's address when known.
type Reader = fn(&str, Option<&str>) -> Option<Line>;

const DATA_PLANE: &str = "kong/clustering/data_plane.lua";

/// data_plane.lua: `connection to control plane URI broken: ERR (retrying after N seconds) [CP]`.
fn broken(text: &str, _: Option<&str>) -> Option<Line> {
    let (_, rest) = text.split_once("connection to control plane ")?;
    let (uri, error) = rest.split_once(" broken: ")?;
    let error = error.split(" (retrying after").next().unwrap_or(error);
    // The list of DNS tries differs from line to line.
    let error = error.split(". Tried: ").next().unwrap_or(error);
    let (error, _) = trimmed(error);
    let target = uri.split_once("://").map_or(uri, |(_, t)| t);
    let address = target.split(['/', '?']).next().unwrap_or(target);
    Some(Line {
        connection: "control plane",
        address: Some(sanitize::message(address)),
        error: sanitize::message(error),
        reading: Reading::Words,
        source: DATA_PLANE,
    })
}

/// data_plane.lua: `error while receiving frame from control plane: ERR [CP]`.
fn receive_error(text: &str, _: Option<&str>) -> Option<Line> {
    let (_, error) = text.split_once("error while receiving frame from control plane: ")?;
    let (error, address) = trimmed(error);
    Some(Line {
        connection: "control plane",
        address: address.map(sanitize::message),
        error: sanitize::message(error),
        reading: Reading::Broken(
            "the connection was open, then broke: the control plane or a device between (a proxy, firewall or load balancer) ended it",
            "A device that ends connections it thinks idle needs a timeout above Kong's 30-second ping; run the check with --watch 10s to see whether the path itself comes and goes.",
        ),
        source: DATA_PLANE,
    })
}

/// data_plane.lua: `did not receive pong frame from control plane within N seconds [CP]`.
fn pong_missing(text: &str, _: Option<&str>) -> Option<Line> {
    let (_, rest) = text.split_once("did not receive pong frame from control plane")?;
    let (within, address) = trimmed(rest);
    let error = format!("did not receive pong frame from control plane {within}");
    Some(Line {
        connection: "control plane",
        address: address.map(sanitize::message),
        error: sanitize::message(&error),
        reading: Reading::Broken(
            "the connection stayed open but the control plane's answers to the node's pings stopped arriving: packets are dropped on an established connection, or a device between stopped forwarding it",
            "Ask whether a firewall or proxy between drops long-lived connections or their idle packets (its idle timeout must exceed Kong's 30-second ping); run the check with --watch 10s to see whether the path comes and goes.",
        ),
        source: DATA_PLANE,
    })
}

/// kong/clustering/rpc/manager.lua: `[rpc] unable to connect to peer: ERR`, with no address.
fn rpc_connect(text: &str, cluster: Option<&str>) -> Option<Line> {
    let (_, error) = text.split_once("[rpc] unable to connect to peer: ")?;
    let error = error.split(". Tried: ").next().unwrap_or(error);
    let error = [", client: ", ", context: "]
        .iter()
        .fold(error, |e, cut| e.split(cut).next().unwrap_or(e));
    Some(Line {
        connection: "control plane RPC",
        address: cluster.map(str::to_string),
        error: sanitize::message(error),
        reading: Reading::Words,
        source: "kong/clustering/rpc/manager.lua",
    })
}

/// The RPC lines of kong/clustering/rpc/manager.lua (`connect`) after its connection is made:
/// (words, meaning, hint).
const RPC_LINES: [(&str, &str, &str); 4] = [
    (
        "peer did not provide sec_websocket_protocol",
        "the control plane (or an edge in front of it) accepted /v2/outlet without the WebSocket protocol kong.meta.v1: it has no RPC, or a proxy strips the Sec-WebSocket-Protocol header",
        "Upgrade the control plane to a version with RPC, or have the proxy or load balancer pass Sec-WebSocket-Protocol; otherwise set cluster_rpc = off (and cluster_rpc_sync = off) so the node uses /v1/outlet alone.",
    ),
    (
        "did not support protocol :",
        "the control plane answered /v2/outlet with a WebSocket protocol other than kong.meta.v1: the two sides' Kong versions do not share an RPC protocol",
        "Run data plane and control plane versions that share RPC (the same major, the data plane's minor no newer), or set cluster_rpc = off on the node.",
    ),
    (
        "unable to handshake with server",
        "the RPC connection was made, but the control plane did not complete RPC's first exchange (kong.meta.v1) within 5 seconds, or refused it",
        "Look in the control plane's log at the same time for the RPC error it names; run preflight check --kong-conf with cluster_rpc on to check /v2/outlet itself.",
    ),
    (
        "broken, err:",
        "the RPC connection was open, then broke: the control plane or a device between (a proxy, firewall or load balancer) ended it",
        "A device that ends connections it thinks idle needs a timeout above Kong's 30-second ping; run the check with --watch 10s to see whether the path itself comes and goes.",
    ),
];

/// kong/clustering/rpc/manager.lua: the `[rpc]` lines of `RPC_LINES`.
fn rpc_refused(text: &str, cluster: Option<&str>) -> Option<Line> {
    let (_, said) = text.split_once("[rpc] ")?;
    let &(_, meaning, hint) = RPC_LINES.iter().find(|(w, _, _)| said.contains(w))?;
    let (error, _) = trimmed(said);
    // The seconds to the next try (and an error's node id) differ from line to line.
    let error = error.split(", reconnecting in").next().unwrap_or(error);
    let error = error.split(", node_id:").next().unwrap_or(error);
    Some(Line {
        connection: "control plane RPC",
        address: cluster.map(str::to_string),
        error: sanitize::message(error.trim_end_matches([',', ' '])),
        reading: Reading::Broken(meaning, hint),
        source: "kong/clustering/rpc/manager.lua",
    })
}

/// kong/clustering/data_plane.lua: `sync v1 is enabled due to rpc sync can not work.`, logged
/// when RPC is connected but the control plane offers no incremental sync (`kong.sync.v2`).
fn sync_fallback(text: &str, cluster: Option<&str>) -> Option<Line> {
    const WORDS: &str = "sync v1 is enabled due to rpc sync can not work";
    text.contains(WORDS).then(|| Line {
        connection: "control plane RPC",
        address: cluster.map(str::to_string),
        error: WORDS.to_string(),
        reading: Reading::Broken(
            "the node fell back to /v1/outlet for its configuration: RPC is connected, but the control plane offers no incremental sync (kong.sync.v2), so cluster_rpc_sync = on takes no effect; the node works",
            "Nothing is broken: to use incremental sync, upgrade the control plane to a version that offers it; to silence the line, set cluster_rpc_sync = off.",
        ),
        source: DATA_PLANE,
    })
}

/// kong/clustering/compat/init.lua, in the control plane's log: `data plane version X is
/// incompatible with [older] control plane version Y …`.
fn version_refused(text: &str, _: Option<&str>) -> Option<Line> {
    let start = text.find("[clustering] data plane ")? + "[clustering] ".len();
    let said = &text[start..];
    if !(said.contains(" is incompatible with ") && said.contains("control plane version")) {
        return None;
    }
    let (error, _) = trimmed(said);
    Some(Line {
        connection: "control plane's log",
        address: None,
        error: sanitize::message(error),
        reading: Reading::Version,
        source: "kong/clustering/compat/init.lua",
    })
}

/// kong/clustering/tls.lua: the lines of `CERTIFICATE_LINES`.
fn certificate(text: &str, _: Option<&str>) -> Option<Line> {
    let known = CERTIFICATE_LINES.iter().find(|c| text.contains(c.words))?;
    let start = text.find(known.words)?;
    let (error, _) = trimmed(&text[start..]);
    Some(Line {
        connection: known.connection,
        address: None,
        error: sanitize::message(error),
        reading: Reading::Certificate(known),
        source: "kong/clustering/tls.lua",
    })
}

/// An entry for the first line of its error.
fn entry(line: Line, kong_conf: Option<&str>, proxy: Option<&str>) -> Explained {
    let address = line.address.clone();
    // A hint names the host only when it is one: a log holds text any client can write.
    let (host, port) = match address.as_deref().and_then(crate::target::split_port) {
        Some((host, port)) if crate::target::Host::parse(host).is_ok() => {
            (host.to_string(), port.parse().ok())
        }
        Some(_) => ("the control plane".to_string(), None),
        None => (
            address
                .clone()
                .unwrap_or_else(|| "of cluster_control_plane".into()),
            None,
        ),
    };
    let peer = Peer {
        host: &host,
        port,
        ip: None,
    };
    let authority = address.as_deref().unwrap_or("the control plane");
    let conf = sanitize::shell(kong_conf.unwrap_or(DEFAULT_KONG_CONF)).into_owned();
    let conf_command = format!("preflight check --kong-conf {conf} --only control-plane");
    // Only a host that parses as a name or an address, and a port that parses as a number,
    // become part of a command: anything else the log says could be a shell's syntax.
    let tcp_target = address.as_deref().map(|a| {
        let (host, port) = crate::target::split_port(a).ok_or(())?;
        let host = crate::target::Host::parse(host).map_err(|_| ())?;
        let port = crate::target::parse_port(port).map_err(|_| ())?;
        Ok::<_, ()>(format!("tcp://{host}:{port}"))
    });
    let mut command_note = None;
    let (kind, meaning, hint, command) = match line.reading {
        Reading::Words => match read_words(&line.error, authority, peer, proxy) {
            Some((kind, meaning, hint)) => {
                // DNS and TCP are the host's and port's alone; past them only the node's
                // kong.conf knows the server name, certificate, CA and proxy Kong uses.
                let command = match (kind.phases()[0], &tcp_target, kong_conf) {
                    (crate::failure::Phase::Dns | crate::failure::Phase::Tcp, Some(t), None) => {
                        match t {
                            Ok(target) => format!("preflight check {}", sanitize::shell(target)),
                            Err(()) => {
                                command_note = Some("the address in the log is not a host name or IP address with a numeric port, so the command checks the control plane kong.conf names instead".to_string());
                                conf_command
                            }
                        }
                    }
                    _ => conf_command,
                };
                (Some(kind), Some(meaning), Some(hint), Some(command))
            }
            None => (None, None, None, Some(conf_command)),
        },
        Reading::Broken(meaning, hint) => (
            None,
            Some(meaning.to_string()),
            Some(hint.to_string()),
            Some(format!("{conf_command} --watch 10s")),
        ),
        Reading::Certificate(known) => {
            let command = match known.local {
                true => format!("preflight check --kong-conf {conf} --only local"),
                false => conf_command,
            };
            (
                Some(known.kind),
                Some(known.meaning.to_string()),
                Some(known.hint.to_string()),
                Some(command),
            )
        }
        Reading::Version => (
            None,
            Some("the control plane accepted the connection, then refused the data plane's Kong version: not a network problem".to_string()),
            Some(version_hint(&line.error)),
            None,
        ),
    };
    Explained {
        connection: line.connection,
        address,
        error: line.error,
        count: 0,
        first: None,
        last: None,
        kind,
        meaning,
        hint,
        command,
        command_note,
        source: line.source,
    }
}

/// Which side to upgrade, from the versions a compatibility line names (kong/clustering/compat/
/// init.lua: the same major is required, and a data plane's minor no newer than the control
/// plane's).
fn version_hint(error: &str) -> String {
    const GENERAL: &str = "Run data planes of the control plane's major version and a minor version no newer than the control plane's (the line names both versions); a check cannot test this, as preflight sends no node information.";
    let version_after = |words: &str| {
        let (_, rest) = error.split_once(words)?;
        let word = rest.split_whitespace().next()?;
        let mut parts = word.split('.').map(|p| p.parse::<u32>().ok());
        Some((word.to_string(), parts.next()??, parts.next()??))
    };
    let dp = version_after("data plane version ");
    let cp = version_after("control plane version ");
    let (Some((dp, dp_major, dp_minor)), Some((cp, cp_major, cp_minor))) = (dp, cp) else {
        return GENERAL.to_string();
    };
    if (dp_major, dp_minor) > (cp_major, cp_minor) {
        format!(
            "The data plane ({dp}) is newer than its control plane ({cp}): upgrade the control plane to {dp_major}.{dp_minor} or later, or run the data plane at {cp_major}.{cp_minor} or older (of major version {cp_major})."
        )
    } else if dp_major < cp_major {
        format!(
            "The data plane ({dp}) is of an older major version than its control plane ({cp}): upgrade the data plane to {cp_major}.x, no newer than {cp}."
        )
    } else {
        GENERAL.to_string()
    }
}

/// The kind, meaning and hint of the WebSocket client's error (lua-resty-websocket's
/// client.lua as Kong builds it: `failed to connect: …`, `ssl handshake failed: …`,
/// `failed to receive response header: …`, `unexpected HTTP response code: …`, `error
/// establishing a connection to the proxy server, got status …`), with nginx's and Kong's DNS
/// client's words inside (kong/globalpatches.lua: `[cosocket] DNS resolution failed: …`;
/// kong/resty/dns/client.lua: `dns server error: 3 name error`, `empty record received`).
fn read_words(
    error: &str,
    authority: &str,
    peer: Peer<'_>,
    proxy: Option<&str>,
) -> Option<(FailureKind, String, String)> {
    let e = error.to_ascii_lowercase();
    let standard = |kind: FailureKind| {
        let mut hint = Failure::new(kind, kind.phases()[0], "", peer).hint;
        if kind == FailureKind::CertUntrusted {
            // The check's hint names --ca-file; the node trusts what kong.conf lists.
            hint.push_str(" The data plane itself trusts the files of lua_ssl_trusted_certificate (with cluster_mtls = pki, cluster_ca_cert).");
        }
        (kind, kind.meaning().replace('`', ""), hint)
    };
    let status = |after: &str| {
        e.split_once(after)
            .and_then(|(_, rest)| rest.trim().get(..3))
            .and_then(|s| s.parse::<u16>().ok())
    };
    if let Some(kind) = dns_kind(&e) {
        return Some(standard(kind));
    }
    if let Some(code) = status("connection to the proxy server, got status") {
        let kind = match code {
            407 => FailureKind::ProxyAuth,
            403 => FailureKind::ProxyDenied,
            502..=504 => FailureKind::ProxyUpstream,
            _ => FailureKind::ProxyError,
        };
        if kind == FailureKind::ProxyAuth {
            // The proxy's refusal: its words name the proxy, never the control plane.
            let meaning = "the node's proxy answered 407: it wants credentials Kong did not send, or refused those it sent (Kong sends Basic credentials only, from proxy_server)".to_string();
            let hint = match proxy {
                Some(proxy) => format!(
                    "Put the proxy account in kong.conf's proxy_server (http://USER:PASSWORD@{proxy}, percent-encoded), and check it with the proxy team; a proxy that takes only NTLM or Negotiate (Kerberos) needs an exception for the node's address, as Kong cannot answer either."
                ),
                None => "Put the proxy account in kong.conf's proxy_server (http://USER:PASSWORD@PROXY:PORT, percent-encoded), and check it with the proxy team; a proxy that takes only NTLM or Negotiate (Kerberos) needs an exception for the node's address, as Kong cannot answer either.".to_string(),
            };
            return Some((kind, meaning, hint));
        }
        return Some(standard(kind));
    }
    if let Some(code) = status("unexpected http response code:") {
        let meaning = format!(
            "the control plane (or an edge in front of it) completed TLS but answered the data plane's upgrade with {code}"
        );
        return Some((
            FailureKind::UpgradeRefused,
            meaning,
            Failure::new(
                FailureKind::UpgradeRefused,
                crate::failure::Phase::Http,
                "",
                peer,
            )
            .because(
                crate::failure::Cause::of_upgrade_status(code),
                peer,
                Default::default(),
            )
            .hint,
        ));
    }
    if e.starts_with("ssl handshake failed") {
        return Some(standard(handshake_kind(&e)));
    }
    if e.starts_with("failed to receive response header")
        && (e.ends_with("closed") || e.contains("reset"))
    {
        return Some((
            FailureKind::HttpError,
            "the control plane closed the connection after the TLS handshake without answering the upgrade".into(),
            crate::failure::silent_close_hint(authority),
        ));
    }
    if e.starts_with("failed to receive response header") && e.contains("timeout") {
        return Some(standard(FailureKind::HttpTimeout));
    }
    if e.starts_with("bad http response status line") {
        return Some(standard(FailureKind::HttpError));
    }
    connect_kind(&e).map(standard)
}

/// The kind of a name Kong's DNS client (or nginx's resolver) could not resolve.
fn dns_kind(e: &str) -> Option<FailureKind> {
    if !(e.contains("dns resolution failed") || e.contains("could not be resolved")) {
        return None;
    }
    Some(
        if e.contains("name error") || e.contains("host not found") {
            FailureKind::Nxdomain
        } else if e.contains("empty record") {
            FailureKind::NoRecords
        } else if e.contains("timeout") || e.contains("timed out") {
            FailureKind::DnsTimeout
        } else {
            FailureKind::DnsError
        },
    )
}

/// The kind of `failed to connect: ERR` with the socket's words.
fn connect_kind(e: &str) -> Option<FailureKind> {
    if !e.starts_with("failed to connect") {
        return None;
    }
    Some(if e.contains("connection refused") {
        FailureKind::Refused
    } else if e.contains("timeout") || e.contains("timed out") {
        FailureKind::Timeout
    } else if e.contains("no route to host")
        || e.contains("network is unreachable")
        || e.contains("host is unreachable")
    {
        FailureKind::Unreachable
    } else if e.contains("reset by peer") {
        FailureKind::Reset
    } else {
        return None;
    })
}

/// The kind of `ssl handshake failed: ERR`: OpenSSL's verification words (`20: unable to get
/// local issuer certificate`, `10: certificate has expired`), lua-nginx-module's `certificate
/// host mismatch`, or the alert by which the control plane refused the node's certificate.
fn handshake_kind(e: &str) -> FailureKind {
    if e.contains("certificate has expired") {
        FailureKind::CertExpired
    } else if e.contains("not yet valid") {
        FailureKind::CertNotYetValid
    } else if e.contains("host mismatch") || e.contains("hostname mismatch") {
        FailureKind::CertNameMismatch
    } else if e.contains("alert bad certificate")
        || e.contains("certificate required")
        || e.contains("alert unknown ca")
        || e.contains("alert certificate")
    {
        FailureKind::ClientCertRejected
    } else if e.contains("local issuer")
        || e.contains("self signed")
        || e.contains("self-signed")
        || e.contains("unable to get issuer")
        || e.contains("unable to verify the first certificate")
    {
        FailureKind::CertUntrusted
    } else if e.contains("timeout") || e.contains("timed out") {
        FailureKind::TlsTimeout
    } else {
        FailureKind::TlsHandshake
    }
}

/// The timestamp nginx puts at the start of a line (`2026/11/26 10:00:00`), also after a
/// prefix such as `kubectl logs --timestamps` adds.
fn timestamp(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    let shape = |at: usize| {
        let stamp = bytes.get(at..at + 19)?;
        let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
        let ok = digits.iter().all(|&i| stamp[i].is_ascii_digit())
            && stamp[4] == b'/'
            && stamp[7] == b'/'
            && stamp[10] == b' '
            && stamp[13] == b':'
            && stamp[16] == b':';
        ok.then(|| line[at..at + 19].to_string())
    };
    (0..line.len().min(64)).find_map(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_gives_its_address_and_error() {
        let line = "2026/11/26 10:00:00 [warn] 1234#0: *5 [clustering] connection to control plane wss://cp.example:443/v1/outlet?node_id=a&node_hostname=b&node_version=3.9.1 broken: failed to connect: connection refused (retrying after 7 seconds) [cp.example:443], context: ngx.timer";
        let found = explain(&format!("{line}\n{line}\n"), None);
        assert_eq!(found.errors.len(), 1);
        let e = &found.errors[0];
        assert_eq!(e.address.as_deref(), Some("cp.example:443"));
        assert_eq!(e.error, "failed to connect: connection refused");
        assert_eq!((e.count, e.kind), (2, Some(FailureKind::Refused)));
        assert_eq!(e.first.as_deref(), Some("2026/11/26 10:00:00"));
        assert_eq!(
            e.command.as_deref(),
            Some("preflight check tcp://cp.example:443")
        );
    }

    #[test]
    fn handshake_words_are_read_as_kinds() {
        let peer = Peer {
            host: "cp.example",
            port: Some(443),
            ip: None,
        };
        let kind = |e: &str| read_words(e, "cp.example:443", peer, None).map(|r| r.0);
        for (error, expected) in [
            (
                "ssl handshake failed: 20: unable to get local issuer certificate",
                FailureKind::CertUntrusted,
            ),
            (
                "ssl handshake failed: 10: certificate has expired",
                FailureKind::CertExpired,
            ),
            (
                "ssl handshake failed: certificate host mismatch",
                FailureKind::CertNameMismatch,
            ),
            (
                "ssl handshake failed: handshake failed",
                FailureKind::TlsHandshake,
            ),
            (
                "failed to connect: [cosocket] DNS resolution failed: dns server error: 3 name error. Tried: [[\"cp.example:A\",\"dns server error: 3 name error\"]]",
                FailureKind::Nxdomain,
            ),
            ("failed to connect: timeout", FailureKind::Timeout),
            (
                "error establishing a connection to the proxy server, got status 407",
                FailureKind::ProxyAuth,
            ),
            (
                "unexpected HTTP response code: 403",
                FailureKind::UpgradeRefused,
            ),
        ] {
            assert_eq!(kind(error), Some(expected), "{error}");
        }
        assert_eq!(kind("something new"), None);
    }

    #[test]
    fn credentials_in_a_line_are_not_repeated() {
        let line = "2026/11/26 10:00:00 [warn] 1#0: *1 [clustering] connection to control plane wss://cp.example:443/v1/outlet broken: failed to connect to http://alice:S3cretPw@proxy.example:3128 (retrying after 5 seconds) [cp.example:443]";
        let found = explain(line, None);
        let json = serde_json::to_string(&found).unwrap();
        assert!(
            !json.contains("S3cretPw") && !json.contains("alice"),
            "{json}"
        );
        assert_eq!(found.errors.len(), 1);
    }

    #[test]
    fn timestamps_are_found_after_a_prefix() {
        assert_eq!(
            timestamp("2026-11-26T10:00:00.1Z 2026/11/26 10:00:00 [warn] x").as_deref(),
            Some("2026/11/26 10:00:00")
        );
        assert_eq!(timestamp("no time here"), None);
    }
}
