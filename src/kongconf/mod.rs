//! A Kong data plane's own configuration: `kong.conf` read the way Kong reads it, `KONG_*`
//! environment variables over it, and the checks it implies (the cluster connections to the
//! control plane and telemetry, and the ports the node will listen on).

mod checks;
mod files;
mod values;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::InputError;

pub use checks::{KongPlan, plan};
pub use files::{Blocked, Inspect, Material};

/// The `profile` of the checks built from a kong.conf.
pub const SOURCE: &str = "kong.conf";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the file (1-based).
    Line(usize),
    /// A `KONG_*` environment variable.
    Env(String),
    /// Kong's built-in default.
    Default,
    /// A key of a Helm values file (`env.cluster_control_plane`).
    Values(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Env(name) => f.write_str(name),
            Origin::Default => f.write_str("Kong's default"),
            Origin::Values(key) => f.write_str(key),
        }
    }
}

/// One setting's value and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value, as Kong reads it (a trailing comment cut).
    pub value: String,
    /// Where the value came from: a line of the file, a `KONG_` variable, or Kong's default.
    pub origin: Origin,
    /// A `#` ended the value early (Kong reads the rest as a comment): a password holding a
    /// `#` is cut there, so what is left must not be shown as if it were the whole value.
    pub cut: bool,
}

/// Every setting of a kong.conf, with the environment applied.
#[derive(Debug, Clone)]
pub struct KongConf {
    /// The file read.
    pub path: PathBuf,
    settings: HashMap<String, Setting>,
    /// What the user should know of the file itself (a Helm values file's settings that
    /// cannot be read here).
    pub notes: Vec<String>,
}

/// The settings preflight reads; `KONG_*` variables are looked up for each, as Kong does for
/// every setting it knows.
const KEYS: &[&str] = &[
    "role",
    "cluster_control_plane",
    "cluster_server_name",
    "cluster_telemetry_endpoint",
    "cluster_telemetry_server_name",
    "cluster_mtls",
    "cluster_cert",
    "cluster_cert_key",
    "cluster_ca_cert",
    "lua_ssl_trusted_certificate",
    "cluster_use_proxy",
    "proxy_server",
    "proxy_server_ssl_verify",
    "proxy_listen",
    "stream_listen",
    "cluster_listen",
    "cluster_telemetry_listen",
    "admin_listen",
    "status_listen",
    "dns_order",
    "new_dns_client",
    "resolver_family",
    "cluster_rpc",
    "cluster_rpc_sync",
    "cluster_incremental_sync",
    "dns_resolver",
    "dns_hostsfile",
    "resolver_address",
    "resolver_hosts_file",
];

/// The cluster settings: a data plane's file sets at least one.
const CLUSTER_KEYS: &[&str] = &[
    "cluster_control_plane",
    "cluster_telemetry_endpoint",
    "cluster_cert",
    "cluster_cert_key",
    "cluster_mtls",
];

/// Kong's defaults for the settings that have one (kong/templates/kong_defaults.lua).
fn default(key: &str) -> Option<&'static str> {
    Some(match key {
        "role" => "traditional",
        "cluster_control_plane" => "127.0.0.1:8005",
        "cluster_mtls" => "shared",
        "lua_ssl_trusted_certificate" => "system",
        "cluster_use_proxy" => "off",
        "proxy_server_ssl_verify" => "on",
        "proxy_listen" => {
            "0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384"
        }
        "stream_listen" => "off",
        "cluster_listen" => "0.0.0.0:8005",
        "cluster_telemetry_listen" => "0.0.0.0:8006",
        "admin_listen" => {
            "127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 http2 ssl reuseport backlog=16384"
        }
        "status_listen" => "off",
        "dns_order" => "LAST,SRV,A,CNAME",
        "new_dns_client" => "off",
        "resolver_family" => "A,SRV",
        "cluster_rpc" => "off",
        "cluster_rpc_sync" => "off",
        "cluster_incremental_sync" => "off",
        "dns_resolver" | "resolver_address" => "NONE",
        "dns_hostsfile" | "resolver_hosts_file" => "/etc/hosts",
        _ => return None,
    })
}

/// Strips a comment as Kong does: a `#` not escaped as `\#` ends the value, and `\#` is a `#`.
fn strip_comment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
            }
            '#' => break,
            _ => out.push(c),
        }
    }
    out.trim().to_string()
}

/// Whether a `#` that Kong reads as a comment ends `value` early, with text after it.
fn comment_cuts(value: &str) -> bool {
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            '#' if !escaped => return !value[i + 1..].trim().is_empty(),
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
    }
    false
}

/// One `key = value` line: (line number, key, value).
pub type Entry = (usize, String, String);

/// Parses kong.conf text: `key = value` lines, blank lines and `#` comments; a later line
/// overrides an earlier one. `Err` is (line, reason).
pub fn parse(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = index + 1;
        let Some((key, value)) = line.split_once('=') else {
            return Err((
                number,
                format!(
                    "`{}` is not a setting: write KEY = VALUE",
                    strip_comment(line)
                ),
            ));
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err((
                number,
                format!("`{key}` is not a setting name (lower-case letters, digits and _)"),
            ));
        }
        entries.push((number, key.to_string(), strip_comment(value)));
    }
    Ok(entries)
}

impl KongConf {
    /// Reads `path`, then applies `KONG_*` variables from `env`.
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<KongConf, InputError> {
        let text = crate::files::read_text(path, "the --kong-conf file")?;
        KongConf::from_text(&text, path, env)
    }

    /// Parses `text` as the file at `path`, then applies `KONG_*` variables from `env`.
    pub fn from_text(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<KongConf, InputError> {
        let entries = parse(text).map_err(|(line, reason)| InputError::FileLine {
            path: path.to_path_buf(),
            line,
            reason,
        })?;
        let lines: Vec<&str> = text.lines().collect();
        let mut settings = HashMap::new();
        for (line, key, value) in entries {
            let raw = lines
                .get(line - 1)
                .and_then(|l| l.split_once('='))
                .map_or("", |(_, v)| v);
            let setting = Setting {
                cut: comment_cuts(raw),
                value,
                origin: Origin::Line(line),
            };
            settings.insert(key, setting);
        }
        let mut conf = KongConf {
            path: path.to_path_buf(),
            settings,
            notes: Vec::new(),
        };
        conf.apply_env(env);
        Ok(conf)
    }

    /// `KONG_*` variables from `env` over the settings, as Kong applies them.
    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        for key in KEYS {
            let name = format!("KONG_{}", key.to_ascii_uppercase());
            if let Some(value) = env(&name) {
                let setting = Setting {
                    cut: comment_cuts(&value),
                    value: strip_comment(&value),
                    origin: Origin::Env(name),
                };
                self.settings.insert(key.to_string(), setting);
            }
        }
    }

    /// The setting as given in the file or environment, without defaults.
    pub fn given(&self, key: &str) -> Option<&Setting> {
        self.settings.get(key).filter(|s| !s.value.is_empty())
    }

    /// The setting, or Kong's default (an empty value where Kong has none).
    pub fn get(&self, key: &str) -> Setting {
        self.given(key).cloned().unwrap_or_else(|| Setting {
            value: default(key).unwrap_or_default().to_string(),
            origin: Origin::Default,
            cut: false,
        })
    }

    /// An error about `key`'s value, naming the file and line or the variable.
    fn bad(&self, key: &str, setting: &Setting, reason: impl fmt::Display) -> InputError {
        match &setting.origin {
            Origin::Line(line) => InputError::FileLine {
                path: self.path.clone(),
                line: *line,
                reason: format!(
                    "{key} = {}: {reason}",
                    crate::sanitize::shorten(&setting.value)
                ),
            },
            Origin::Env(name) => InputError::Usage {
                flag: "--kong-conf",
                reason: format!(
                    "{name}={}: {reason}",
                    crate::sanitize::shorten(&setting.value)
                ),
            },
            Origin::Default => InputError::File {
                path: self.path.clone(),
                reason: format!("{key}: {reason}"),
            },
            Origin::Values(at) => InputError::File {
                path: self.path.clone(),
                reason: format!(
                    "{at} = {}: {reason}",
                    crate::sanitize::shorten(&setting.value)
                ),
            },
        }
    }

    /// A boolean setting: `on`/`off` or `true`/`false`, in any case.
    fn flag(&self, key: &str) -> Result<(bool, Setting), InputError> {
        let setting = self.get(key);
        let on = match setting.value.to_ascii_lowercase().as_str() {
            "on" | "true" => true,
            "" | "off" | "false" => false,
            _ => return Err(self.bad(key, &setting, "expected on or off (or true, false)")),
        };
        Ok((on, setting))
    }

    /// Where `key` came from, for notes: `/etc/kong/kong.conf line 4` or `KONG_ROLE`.
    fn whence(&self, setting: &Setting) -> String {
        match &setting.origin {
            Origin::Line(_) | Origin::Values(_) => {
                format!("{} {}", self.path.display(), setting.origin)
            }
            other => other.to_string(),
        }
    }
}

/// A check of the kong.conf, ids `kong.conf.KEY`.
fn spec(
    key: &str,
    name: String,
    role: crate::profile::Role,
    probe: crate::target::Probe,
    note: String,
) -> crate::check::CheckSpec {
    let mut spec = crate::check::CheckSpec::new(format!("{SOURCE}.{key}"), name, role, probe);
    spec.endpoint.profile = Some(SOURCE.to_string());
    spec.endpoint.note = Some(note);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckSpec;
    use crate::profile::Role;
    use crate::target::Probe;

    /// A Konnect data plane's kong.conf, as the Gateway Manager writes it, with the comments
    /// and spacing people add.
    const KONNECT: &str = r#"
# Konnect data plane node
role = data_plane
database = off   # DB-less
  cluster_mtls=pki
cluster_control_plane = abc.us.cp0.konghq.com:443
cluster_server_name = abc.us.cp0.konghq.com
cluster_telemetry_endpoint = abc.us.tp0.konghq.com:443 # telemetry
cluster_telemetry_server_name = abc.us.tp0.konghq.com
cluster_cert = /etc/kong/cluster.crt
cluster_cert_key = /etc/kong/cluster.key
lua_ssl_trusted_certificate = system, /etc/kong/ca.pem
konnect_mode = on
vitals = off
proxy_listen = 0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<KongConf, InputError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KongConf::from_text(text, Path::new("/etc/kong/kong.conf"), |name| {
            env.get(name).cloned()
        })
    }

    /// The plan with the files judged.
    fn plan_judged(text: &str) -> KongPlan {
        let how = Inspect {
            warn_days: 14,
            now: time::OffsetDateTime::now_utc(),
        };
        plan(&load(text, &[]).unwrap(), Some(how)).unwrap()
    }

    fn built(text: &str, env: &[(&str, &str)]) -> KongPlan {
        plan(&load(text, env).unwrap(), None).unwrap()
    }

    fn by_id<'a>(plan: &'a KongPlan, key: &str) -> &'a CheckSpec {
        let id = format!("kong.conf.{key}");
        plan.checks
            .iter()
            .find(|c| c.endpoint.id == id)
            .unwrap_or_else(|| panic!("no {id} in {:#?}", plan.checks))
    }

    #[test]
    fn reads_values_the_way_kong_does() {
        let entries = parse(
            "a = 1\n  b=two words  # comment\nc = x\\#y#z\n#d = 4\n\ne =\nf = \"quoted\"\na = 5\n",
        )
        .unwrap();
        let flat: Vec<(usize, &str, &str)> = entries
            .iter()
            .map(|(n, k, v)| (*n, k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            flat,
            [
                (1, "a", "1"),
                (2, "b", "two words"),
                (3, "c", "x#y"),
                (6, "e", ""),
                (7, "f", "\"quoted\""),
                (8, "a", "5"),
            ]
        );
        // The last line wins, as in Kong.
        let conf = load("a = 1\na = 5\n", &[]).unwrap();
        assert_eq!(conf.given("a").unwrap().value, "5");
    }

    #[test]
    fn a_role_has_one_name_in_kong_conf_checks_and_in_every_profile() {
        let plan = built(KONNECT, &[]);
        let profiles = crate::profile::builtins().unwrap();
        for (id, key) in [("control-plane", "cluster"), ("telemetry", "telemetry")] {
            let name = &by_id(&plan, id).endpoint.name;
            let named: Vec<_> = profiles
                .iter()
                .flat_map(|p| &p.endpoints)
                .filter(|e| e.key == id || (e.key == key && id != key))
                .map(|e| &e.name)
                .collect();
            assert!(!named.is_empty());
            assert!(
                named.iter().all(|n| *n == name),
                "{id}: {name} vs {named:?}"
            );
        }
    }

    #[test]
    fn a_konnect_data_plane_checks_its_control_plane_and_telemetry() {
        let plan = built(KONNECT, &[]);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        let cp = by_id(&plan, "control-plane");
        assert_eq!(cp.target(), "kong-cluster://abc.us.cp0.konghq.com:443");
        assert_eq!(cp.tls.server_name.as_deref(), Some("abc.us.cp0.konghq.com"));
        assert!(cp.tls.client_cert_expected && !cp.tls.pinned);
        assert_eq!(
            cp.endpoint.note.as_deref(),
            Some(
                "cluster_control_plane (/etc/kong/kong.conf line 6); cluster_server_name abc.us.cp0.konghq.com (/etc/kong/kong.conf line 7)"
            )
        );
        let tp = by_id(&plan, "telemetry");
        assert_eq!(tp.target(), "tls://abc.us.tp0.konghq.com:443");
        assert_eq!(tp.tls.server_name.as_deref(), Some("abc.us.tp0.konghq.com"));
        assert_eq!(tp.endpoint.role, Role::Telemetry);
        // Judged, the files come first, each naming its file and line (none exists here).
        let judged = plan_judged(KONNECT);
        let files: Vec<_> = judged
            .checks
            .iter()
            .take_while(|c| c.endpoint.probe == Probe::File)
            .map(|c| {
                let failure = c.finding.as_ref().unwrap().failure.as_ref().unwrap();
                (
                    c.id(),
                    c.host(),
                    failure.kind.as_str(),
                    failure.message.clone(),
                )
            })
            .collect();
        let ids: Vec<_> = files.iter().map(|f| (f.0, f.1, f.2)).collect();
        assert_eq!(
            ids,
            [
                (
                    "kong.conf.cluster-cert",
                    "/etc/kong/cluster.crt",
                    "file_unreadable"
                ),
                (
                    "kong.conf.cluster-cert-key",
                    "/etc/kong/cluster.key",
                    "file_unreadable"
                ),
                (
                    "kong.conf.trusted-certificate-1",
                    "/etc/kong/ca.pem",
                    "file_unreadable"
                ),
            ]
        );
        assert_eq!(
            files[0].3,
            "cluster_cert /etc/kong/cluster.crt (/etc/kong/kong.conf line 10): does not exist (nor does its directory)"
        );
        assert!(judged.material.identity.is_none() && !judged.blocked.is_empty());
        let listens: Vec<_> = plan
            .checks
            .iter()
            .filter(|c| c.endpoint.probe == Probe::Bind)
            .map(|c| c.target())
            .collect();
        assert_eq!(listens, ["bind://0.0.0.0:8000", "bind://0.0.0.0:8443"]);
        // Kong's cluster connections go direct unless cluster_use_proxy is on.
        assert_eq!(cp.fixed_route.as_ref().unwrap().proxy, None);
    }

    #[test]
    fn kong_variables_override_the_file() {
        let plan = built(
            KONNECT,
            &[
                ("KONG_CLUSTER_CONTROL_PLANE", "other.eu.cp0.konghq.com:443"),
                ("KONG_CLUSTER_SERVER_NAME", "other.eu.cp0.konghq.com # note"),
                ("KONG_PROXY_LISTEN", "off"),
                // Not a setting preflight reads: ignored.
                ("KONG_SOMETHING", "x"),
            ],
        );
        let cp = by_id(&plan, "control-plane");
        assert_eq!(cp.endpoint.host, "other.eu.cp0.konghq.com");
        assert_eq!(
            cp.tls.server_name.as_deref(),
            Some("other.eu.cp0.konghq.com")
        );
        assert!(
            cp.endpoint
                .note
                .as_deref()
                .unwrap()
                .contains("(KONG_CLUSTER_CONTROL_PLANE)"),
            "{cp:?}"
        );
        assert!(plan.checks.iter().all(|c| c.endpoint.probe != Probe::Bind));
    }

    #[test]
    fn shared_mode_pins_the_cluster_certificate_and_sends_kong_clustering() {
        let plan = built(
            "role = data_plane\ncluster_control_plane = cp.internal:8005\ncluster_telemetry_endpoint = cp.internal:8006\ncluster_cert = c.crt\ncluster_cert_key = c.key\ncluster_server_name = ignored.example\n",
            &[],
        );
        let cp = by_id(&plan, "control-plane");
        assert_eq!(cp.tls.server_name.as_deref(), Some("kong_clustering"));
        assert!(cp.tls.pinned);
        assert_eq!(by_id(&plan, "telemetry").endpoint.port, Some(8006));
    }

    #[test]
    fn missing_settings_get_notes() {
        let plan = built("log_level = debug\n", &[]);
        assert!(
            plan.notes[0]
                .starts_with("role = traditional (Kong's default): this node is not a data plane"),
            "{:?}",
            plan.notes
        );
        assert!(plan.checks.iter().all(|c| c.endpoint.probe == Probe::Bind));
        let plan = built("role = data_plane\n", &[]);
        assert!(
            plan.notes[0].contains("sets none of the cluster settings"),
            "{:?}",
            plan.notes
        );
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("cluster_cert and cluster_cert_key"))
        );
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("cluster_telemetry_endpoint is not set"))
        );
        assert_eq!(
            by_id(&plan, "control-plane").target(),
            "kong-cluster://127.0.0.1:8005"
        );
        let plan = built("role = control_plane\n", &[]);
        assert!(plan.notes[0].contains("role = control_plane (/etc/kong/kong.conf line 1)"));
    }

    #[test]
    fn the_proxy_is_used_only_with_cluster_use_proxy() {
        let text = "role = data_plane\ncluster_control_plane = cp.example:443\ncluster_use_proxy = ON\nproxy_server = http://user:secret@proxy.example:3128\n";
        let plan = built(text, &[]);
        let route = by_id(&plan, "control-plane").fixed_route.clone().unwrap();
        assert_eq!(
            route.proxy.unwrap().to_string(),
            "http://proxy.example:3128"
        );
        assert_eq!(
            route.reason.as_deref(),
            Some("kong.conf proxy_server (/etc/kong/kong.conf line 4)")
        );
        // Without proxy_server Kong does not start: judged, a finding blocks the cluster checks.
        let judged = plan_judged("role = data_plane\ncluster_use_proxy = on\n");
        let finding = by_id(&judged, "proxy-server").finding.clone().unwrap();
        let failure = finding.failure.unwrap();
        assert_eq!(failure.kind, crate::failure::FailureKind::ConfInvalid);
        assert!(
            failure.message.contains("proxy_server is not set"),
            "{failure:?}"
        );
        assert!(
            judged
                .blocked
                .iter()
                .any(|b| matches!(b, Blocked::Proxy(_)))
        );
    }

    #[test]
    fn a_role_kong_does_not_know_is_refused_and_a_control_plane_checks_its_own_listeners() {
        let err = plan_err("role = dataplane\n");
        assert!(
            err.contains("line 1")
                && err.contains("expected traditional, data_plane or control_plane"),
            "{err}"
        );
        let plan = built("role = control_plane\nadmin_listen = 127.0.0.1:8001\n", &[]);
        let listeners: Vec<String> = plan
            .checks
            .iter()
            .map(|c| format!("{} {}", c.endpoint.name, c.target()))
            .collect();
        assert_eq!(
            listeners,
            [
                "Cluster listener 8005 bind://0.0.0.0:8005",
                "Cluster telemetry listener 8006 bind://0.0.0.0:8006",
                "Admin API listener 8001 bind://127.0.0.1:8001",
            ]
        );
    }

    #[test]
    fn the_control_plane_is_dialed_as_kong_builds_its_url() {
        let settle = |text: &str| {
            let mut plan = crate::plan::Plan {
                checks: built(text, &[]).checks,
                ..Default::default()
            };
            let overrides = crate::plan::Overrides {
                cluster_path: "/v1/outlet?node_id=x".into(),
                ..Default::default()
            };
            plan.settle(&overrides, &crate::route::ProxyConfig::default());
            plan.checks
        };
        // A path (Konnect's PrivateLink) goes before the outlet; no port is 443.
        let checks = settle(
            "role = data_plane\ncluster_mtls = pki\ncluster_control_plane = us.svc.konghq.com/cp/abc123/\n",
        );
        let cp = &checks[0];
        assert_eq!(
            (cp.endpoint.host.as_str(), cp.endpoint.port),
            ("us.svc.konghq.com", Some(443))
        );
        assert_eq!(cp.path.as_deref(), Some("/cp/abc123/v1/outlet?node_id=x"));
        // cluster_rpc adds /v2/outlet, required only when the configuration comes over RPC.
        let rpc = |extra: &str| {
            let checks = settle(&format!(
                "role = data_plane\ncluster_mtls = pki\ncluster_control_plane = cp.example:8005\ncluster_telemetry_endpoint =\nproxy_listen = off\n{extra}"
            ));
            checks
                .iter()
                .map(|c| (c.id().to_string(), c.path.clone(), c.endpoint.required))
                .collect::<Vec<_>>()
        };
        assert_eq!(rpc("").len(), 1);
        let with = rpc("cluster_rpc = on\n");
        assert_eq!(
            with[1],
            (
                "kong.conf.control-plane-rpc".into(),
                Some("/v2/outlet".into()),
                false
            )
        );
        assert!(rpc("cluster_rpc = on\ncluster_rpc_sync = on\n")[1].2);
        // Kong's resolver asks for A records only, unless dns_order lists AAAA.
        let asked = built(
            "role = data_plane\ncluster_control_plane = cp.example:8005\n",
            &[],
        );
        let families = asked.checks[0].asked_families.clone().unwrap();
        assert!(families.v4 && !families.v6, "{families:?}");
        assert!(
            families
                .setting
                .starts_with("dns_order = LAST,SRV,A,CNAME (Kong's default)")
        );
        let both = built(
            "role = data_plane\ncluster_control_plane = cp.example:8005\ndns_order = LAST,A,AAAA\n",
            &[],
        );
        assert!(both.checks[0].asked_families.is_none());
    }

    #[test]
    fn proxy_server_without_a_port_is_port_443_as_kong_dials_it() {
        let plan = built(
            "role = data_plane\ncluster_control_plane = cp.example:443\ncluster_use_proxy = on\nproxy_server = http://proxy.corp\n",
            &[],
        );
        let route = plan.checks[0].fixed_route.as_ref().unwrap();
        assert_eq!(
            route.proxy.as_ref().unwrap().to_string(),
            "http://proxy.corp:443"
        );
        // Unused while cluster_use_proxy is off: the what-if that names the setting.
        let plan = built(
            "role = data_plane\ncluster_control_plane = cp.example:443\nproxy_server = http://proxy.corp:3128\n",
            &[],
        );
        let what_if = plan.checks[0].what_if.as_ref().unwrap();
        assert_eq!(what_if.proxy.to_string(), "http://proxy.corp:3128");
        assert!(
            what_if.fix.starts_with("set cluster_use_proxy = on"),
            "{}",
            what_if.fix
        );
    }

    fn plan_err(text: &str) -> String {
        match load(text, &[]).and_then(|c| plan(&c, None)) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        for (text, expected) in [
            (
                "role = data_plane\njust words\n",
                "/etc/kong/kong.conf, line 2: `just words` is not a setting",
            ),
            (
                "Role = data_plane\n",
                "line 1: `Role` is not a setting name",
            ),
            (
                "role = data_plane\ncluster_use_proxy = maybe\n",
                "line 2: cluster_use_proxy = maybe: expected on or off",
            ),
            (
                "role = data_plane\ncluster_control_plane = cp.example/cp?x=1\n",
                "line 2: cluster_control_plane = cp.example/cp?x=1: expected HOST[:PORT][/PATH]",
            ),
            (
                "role = data_plane\ncluster_mtls = tls\n",
                "line 2: cluster_mtls = tls: expected shared, pki",
            ),
            (
                "proxy_listen = localhost:8000\n",
                "line 1: proxy_listen = localhost:8000: `localhost` is not an IP address",
            ),
            (
                "role = data_plane\ncluster_use_proxy = on\nproxy_server = ftp://u:pw@p:21\n",
                "line 3: proxy_server = ftp://***@p:21",
            ),
        ] {
            let err = plan_err(text);
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
        let err = match load("", &[("KONG_CLUSTER_MTLS", "bogus")]).and_then(|c| {
            plan(
                &KongConf {
                    settings: {
                        let mut s = c.settings.clone();
                        s.insert(
                            "role".into(),
                            Setting {
                                value: "data_plane".into(),
                                origin: Origin::Line(1),
                                cut: false,
                            },
                        );
                        s
                    },
                    ..c
                },
                None,
            )
        }) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.starts_with("--kong-conf: KONG_CLUSTER_MTLS=bogus: expected"),
            "{err}"
        );
    }
}
