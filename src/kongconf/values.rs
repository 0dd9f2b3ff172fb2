//! A node configured by the `kong` Helm chart, without a kong.conf: its values file's `env:` map
//! is what the chart makes the pod's `KONG_*` variables (Kong/charts, charts/kong/templates/
//! _helpers.tpl: each `env` key upper-cased and prefixed `KONG_`), and each of its
//! `secretVolumes` is mounted at `/etc/secrets/NAME` (the chart's deployment template), where
//! the cluster certificate settings usually point.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::{KongConf, Origin, Setting, comment_cuts, strip_comment};
use crate::error::InputError;

/// Where the chart mounts a secret volume.
const SECRETS: &str = "/etc/secrets";

/// The most YAML nodes a values file may stand for once its aliases are expanded: a real one
/// has hundreds; an alias bomb (nine aliases of nine aliases …) stands for billions, and the
/// loader would expand every one of them.
const MAX_NODES: u64 = 1_000_000;

/// Counts the nodes a document stands for with its aliases expanded, from the parser's events,
/// before any node is built.
#[derive(Default)]
struct Expanded {
    nodes: u64,
    /// Each anchor's size in nodes, by anchor id.
    anchors: std::collections::HashMap<usize, u64>,
    /// The open collections: their anchor id and the count when they opened.
    open: Vec<(usize, u64)>,
}

impl yaml_rust2::parser::EventReceiver for Expanded {
    fn on_event(&mut self, event: yaml_rust2::parser::Event) {
        use yaml_rust2::parser::Event;
        match event {
            Event::Scalar(_, _, anchor, _) => {
                self.nodes = self.nodes.saturating_add(1);
                if anchor > 0 {
                    self.anchors.insert(anchor, 1);
                }
            }
            Event::Alias(anchor) => {
                let size = self.anchors.get(&anchor).copied().unwrap_or(1);
                self.nodes = self.nodes.saturating_add(size);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.nodes = self.nodes.saturating_add(1);
                self.open.push((anchor, self.nodes));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, start)) = self.open.pop()
                    && anchor > 0
                {
                    self.anchors.insert(anchor, self.nodes - start + 1);
                }
            }
            _ => {}
        }
    }
}

impl KongConf {
    /// Reads a Helm values file at `path`, then applies `KONG_*` variables from `env` over it
    /// (as the variables of a kong.conf's node do). Settings whose value comes from a secret
    /// or config map (`valueFrom`) cannot be read here: each gets a note, and a `KONG_`
    /// variable in the shell can give it.
    pub fn from_values(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<KongConf, InputError> {
        let text = crate::files::read_text(path, "the --kong-values file")?;
        let bad = |reason: String| InputError::File {
            path: path.to_path_buf(),
            reason,
        };
        let mut expanded = Expanded::default();
        yaml_rust2::parser::Parser::new_from_str(&text)
            .load(&mut expanded, true)
            .map_err(|e| bad(format!("not YAML: {e}")))?;
        if expanded.nodes > MAX_NODES {
            return Err(bad(format!(
                "its aliases stand for more than {MAX_NODES} YAML nodes: not a values file preflight reads"
            )));
        }
        let docs = YamlLoader::load_from_str(&text).map_err(|e| bad(format!("not YAML: {e}")))?;
        let root = docs.into_iter().next().unwrap_or(Yaml::Null);
        let env_map = match &root["env"] {
            Yaml::Hash(map) => map.clone(),
            Yaml::BadValue | Yaml::Null => {
                return Err(bad(
                    "has no `env:` map: the kong chart sets Kong's settings there (env: {role: data_plane, cluster_control_plane: …})".into(),
                ));
            }
            _ => return Err(bad("`env:` is not a map of settings".into())),
        };
        let mut conf = KongConf {
            path: path.to_path_buf(),
            settings: Default::default(),
            notes: Vec::new(),
        };
        for (key, value) in env_map {
            let Some(key) = key.as_str().map(str::to_ascii_lowercase) else {
                continue;
            };
            let text = match &value {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(n) => n.to_string(),
                Yaml::Real(r) => r.clone(),
                Yaml::Boolean(b) => b.to_string(),
                Yaml::Hash(_) => {
                    conf.notes.push(format!(
                        "env.{key} in {} comes from a secret or config map (valueFrom), which cannot be read here: give it as KONG_{} in this shell",
                        path.display(),
                        key.to_ascii_uppercase()
                    ));
                    continue;
                }
                _ => continue,
            };
            let setting = Setting {
                cut: comment_cuts(&text),
                value: strip_comment(&text),
                origin: Origin::Values(format!("env.{key}")),
            };
            conf.settings.insert(key, setting);
        }
        conf.apply_env(env);
        let mounted: Vec<String> = match &root["secretVolumes"] {
            Yaml::Array(names) => names
                .iter()
                .filter_map(Yaml::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        conf.mounted_notes(&mounted);
        Ok(conf)
    }

    /// A note for each file setting that points into a secret volume the chart mounts, and is
    /// not on this host: the pod has it, this host does not.
    fn mounted_notes(&mut self, mounted: &[String]) {
        let keys = [
            "cluster_cert",
            "cluster_cert_key",
            "cluster_ca_cert",
            "lua_ssl_trusted_certificate",
        ];
        for key in keys {
            let Some(setting) = self.given(key).cloned() else {
                continue;
            };
            for file in setting.value.split(',').map(str::trim) {
                let Some(secret) = file
                    .strip_prefix(SECRETS)
                    .and_then(|rest| rest.trim_start_matches('/').split('/').next())
                else {
                    continue;
                };
                if Path::new(file).exists() {
                    continue;
                }
                let from = match mounted.iter().any(|m| m == secret) {
                    true => format!("the secret volume {secret} (secretVolumes)"),
                    false => format!("a secret {secret} the values do not list in secretVolumes"),
                };
                self.notes.push(format!(
                    "{key} {file} is mounted in the pod from {from}, and is not on this host: copy it here (kubectl get secret {secret} -o jsonpath='{{.data}}') and pass it with --client-cert/--client-key or --ca-file, or run preflight in the pod"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<KongConf, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("values.yaml");
        std::fs::write(&path, text).unwrap();
        let env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KongConf::from_values(&path, |name| env.get(name).cloned())
    }

    const VALUES: &str = r#"
image:
  repository: kong/kong-gateway
  tag: "3.9"
secretVolumes:
  - kong-cluster-cert
env:
  role: data_plane
  database: "off"
  cluster_mtls: pki
  cluster_control_plane: abc123.us.cp0.konghq.com:443
  cluster_server_name: abc123.us.cp0.konghq.com
  cluster_telemetry_endpoint: abc123.us.tp0.konghq.com:443
  cluster_telemetry_server_name: abc123.us.tp0.konghq.com
  cluster_cert: /etc/secrets/kong-cluster-cert/tls.crt
  cluster_cert_key: /etc/secrets/kong-cluster-cert/tls.key
  lua_ssl_trusted_certificate: system
  konnect_mode: "on"
  proxy_server:
    valueFrom:
      secretKeyRef:
        name: proxy
        key: url
"#;

    #[test]
    fn the_charts_env_map_is_the_nodes_configuration() {
        let conf = load(VALUES, &[]).unwrap();
        assert_eq!(conf.get("role").value, "data_plane");
        let cp = conf.get("cluster_control_plane");
        assert_eq!(cp.value, "abc123.us.cp0.konghq.com:443");
        assert!(
            conf.whence(&cp)
                .ends_with("values.yaml env.cluster_control_plane")
        );
        assert!(
            conf.notes
                .iter()
                .any(|n| n.starts_with("env.proxy_server in")
                    && n.contains("give it as KONG_PROXY_SERVER")),
            "{:?}",
            conf.notes
        );
        assert!(
            conf.notes.iter().any(|n| n.starts_with(
                "cluster_cert /etc/secrets/kong-cluster-cert/tls.crt is mounted in the pod from the secret volume kong-cluster-cert"
            )),
            "{:?}",
            conf.notes
        );
        // A KONG_ variable in the shell gives what the values cannot.
        let conf = load(VALUES, &[("KONG_PROXY_SERVER", "http://proxy.corp:3128")]).unwrap();
        assert_eq!(conf.get("proxy_server").value, "http://proxy.corp:3128");
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_is_expanded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        text.push_str("env:\n  role: data_plane\n  x: *a9\n");
        let err = load(&text, &[]).unwrap_err().to_string();
        assert!(err.contains("aliases stand for more than"), "{err}");
        // A few aliases, as real values files use them, are fine.
        let small = "base: &base data_plane\nenv:\n  role: *base\n";
        assert_eq!(load(small, &[]).unwrap().get("role").value, "data_plane");
    }

    #[test]
    fn a_values_file_without_env_or_not_yaml_is_one_line() {
        let err = load("image:\n  tag: 3.9\n", &[]).unwrap_err().to_string();
        assert!(err.contains("has no `env:` map"), "{err}");
        let err = load("env: [a, b\n", &[]).unwrap_err().to_string();
        assert!(err.contains("not YAML"), "{err}");
    }
}
