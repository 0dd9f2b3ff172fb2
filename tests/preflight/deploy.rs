//! The Kubernetes manifests: valid YAML, the fields a Job and a DaemonSet need, resource limits,
//! no privileges, and arguments this version of preflight accepts.

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

fn manifest(name: &str) -> Yaml {
    let path = format!("{}/deploy/kubernetes/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}: one document");
    docs.remove(0)
}

fn text<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {yaml:?}"))
}

/// The pod template's one container: limited, unprivileged, non-root, and running arguments
/// that parse and plan (profile variables included) without touching the network.
fn container_is_sound(pod: &Yaml) -> Vec<String> {
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    for forbidden in ["hostPID", "hostIPC", "hostNetwork"] {
        assert!(pod[forbidden].is_badvalue(), "{forbidden} is set");
    }
    let pod_security = &pod["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod_security["runAsUser"].as_i64(), Some(65532));
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(text(&c["name"], "name"), "preflight");
    assert!(!text(&c["image"], "image").is_empty());
    for (kind, amount) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "cpu"),
        ("limits", "memory"),
    ] {
        assert!(
            c["resources"][kind][amount].as_str().is_some(),
            "resources.{kind}.{amount}"
        );
    }
    let security = &c["securityContext"];
    assert_eq!(security["privileged"].as_bool(), Some(false));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(
        security["capabilities"]["drop"].as_vec().unwrap(),
        &vec![Yaml::String("ALL".into())]
    );
    let args: Vec<String> = c["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| text(a, "args").to_string())
        .collect();
    let cli = preflight::cli::Cli::try_parse_from(
        std::iter::once("preflight".to_string()).chain(args.iter().cloned()),
    )
    .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let check = match &cli.command {
        preflight::cli::Command::Check(check) => check,
        preflight::cli::Command::Serve(serve) => &serve.check,
        _ => panic!("{args:?} is neither check nor serve"),
    };
    preflight::settings::Settings::from_args(check).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    args
}

#[test]
fn the_job_runs_a_profile_once_with_the_json_report_in_its_log() {
    let job = manifest("job.yaml");
    assert_eq!(text(&job["apiVersion"], "apiVersion"), "batch/v1");
    assert_eq!(text(&job["kind"], "kind"), "Job");
    assert!(!text(&job["metadata"]["name"], "name").is_empty());
    assert_eq!(job["spec"]["backoffLimit"].as_i64(), Some(0));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(text(&pod["restartPolicy"], "restartPolicy"), "Never");
    let args = container_is_sound(pod);
    assert!(
        args.windows(2).any(|w| w == ["--format", "json"]),
        "{args:?}"
    );
    assert!(args.iter().any(|a| a == "--profile"), "{args:?}");
}

#[test]
fn the_daemonset_serves_every_nodes_verdict_to_prometheus() {
    let ds = manifest("daemonset.yaml");
    assert_eq!(text(&ds["apiVersion"], "apiVersion"), "apps/v1");
    assert_eq!(text(&ds["kind"], "kind"), "DaemonSet");
    let spec = &ds["spec"];
    let selector = spec["selector"]["matchLabels"].as_hash().unwrap();
    let labels = spec["template"]["metadata"]["labels"].as_hash().unwrap();
    for (key, value) in selector {
        assert_eq!(
            labels.get(key),
            Some(value),
            "the selector matches the pods"
        );
    }
    let pod = &spec["template"]["spec"];
    // A DaemonSet's pods must keep running.
    assert!(matches!(
        pod["restartPolicy"].as_str(),
        None | Some("Always")
    ));
    assert_eq!(
        text(&pod["tolerations"][0]["operator"], "operator"),
        "Exists"
    );
    let args = container_is_sound(pod);
    assert_eq!(args[0], "serve", "{args:?}");
    let after = |flag: &str| {
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag}: {args:?}"));
        args[at + 1].clone()
    };
    let container = &pod["containers"][0];
    let port = &container["ports"][0];
    assert_eq!(text(&port["name"], "port name"), "metrics");
    assert_eq!(
        after("--listen"),
        format!("0.0.0.0:{}", port["containerPort"].as_i64().unwrap()),
        "serve listens on the port the pod declares"
    );
    // The report names the node, from the downward API.
    assert_eq!(after("--node"), "$(NODE_NAME)");
    let env = &container["env"][0];
    assert_eq!(text(&env["name"], "env"), "NODE_NAME");
    assert_eq!(
        text(&env["valueFrom"]["fieldRef"]["fieldPath"], "fieldPath"),
        "spec.nodeName"
    );
    // /healthz is 503 while an endpoint is down: a probe on it would restart the pod, or take it
    // out of the Service, exactly when it has something to say.
    assert!(container["readinessProbe"].is_badvalue());
    assert!(container["livenessProbe"]["httpGet"].is_badvalue());
    assert_eq!(
        text(&container["livenessProbe"]["tcpSocket"]["port"], "liveness"),
        "metrics"
    );
}

#[test]
fn the_service_and_servicemonitor_reach_every_pod_with_its_node() {
    let ds = manifest("daemonset.yaml");
    let pods = &ds["spec"]["template"]["metadata"]["labels"];
    let service = manifest("service.yaml");
    assert_eq!(text(&service["kind"], "kind"), "Service");
    assert_eq!(
        text(&service["spec"]["clusterIP"], "clusterIP"),
        "None",
        "headless"
    );
    for (key, value) in service["spec"]["selector"].as_hash().unwrap() {
        assert_eq!(
            pods.as_hash().unwrap().get(key),
            Some(value),
            "the Service selects the pods"
        );
    }
    let port = &service["spec"]["ports"][0];
    assert_eq!(text(&port["targetPort"], "targetPort"), "metrics");
    let monitor = manifest("servicemonitor.yaml");
    assert_eq!(
        text(&monitor["apiVersion"], "apiVersion"),
        "monitoring.coreos.com/v1"
    );
    assert_eq!(text(&monitor["kind"], "kind"), "ServiceMonitor");
    let labels = service["metadata"]["labels"].as_hash().unwrap();
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_hash()
        .unwrap()
    {
        assert_eq!(
            labels.get(key),
            Some(value),
            "the ServiceMonitor selects the Service"
        );
    }
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], port["name"]);
    assert_eq!(text(&endpoint["path"], "path"), "/metrics");
    let relabel = &endpoint["relabelings"][0];
    assert_eq!(text(&relabel["targetLabel"], "targetLabel"), "node");
    assert_eq!(
        text(&relabel["sourceLabels"][0], "sourceLabels"),
        "__meta_kubernetes_pod_node_name"
    );
}

/// The alerts as a rule file (the PrometheusRule's `spec`), in `dir`.
fn rule_file(dir: &std::path::Path) -> (std::path::PathBuf, Yaml) {
    let rule = manifest("prometheusrule.yaml");
    assert_eq!(
        text(&rule["apiVersion"], "apiVersion"),
        "monitoring.coreos.com/v1"
    );
    assert_eq!(text(&rule["kind"], "kind"), "PrometheusRule");
    let spec = rule["spec"].clone();
    let mut yaml = String::new();
    yaml_rust2::YamlEmitter::new(&mut yaml).dump(&spec).unwrap();
    let path = dir.join("rules.yaml");
    std::fs::write(&path, yaml).unwrap();
    (path, spec)
}

fn promtool(args: &[&str]) -> String {
    let out = std::process::Command::new("promtool")
        .args(args)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {said}");
    said
}

/// One expected alert: its name and labels; its annotations are the rule's, with the labels
/// put in.
fn expected(spec: &Yaml, alert: &str, labels: &[(&str, &str)]) -> serde_json::Value {
    let rule = spec["groups"][0]["rules"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|r| r["alert"].as_str() == Some(alert))
        .unwrap_or_else(|| panic!("no alert {alert}"));
    let mut all: Vec<(&str, &str)> = labels.to_vec();
    all.push(("severity", text(&rule["labels"]["severity"], "severity")));
    let annotations: serde_json::Map<String, serde_json::Value> = rule["annotations"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let mut said = text(v, "annotation").to_string();
            for (name, value) in &all {
                said = said.replace(&format!("{{{{ $labels.{name} }}}}"), value);
            }
            assert!(!said.contains("{{"), "{alert}: a template left: {said}");
            (text(k, "annotation").to_string(), said.into())
        })
        .collect();
    let labels: serde_json::Map<String, serde_json::Value> = all
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    serde_json::json!({"exp_labels": labels, "exp_annotations": annotations})
}

#[test]
fn the_alerts_pass_promtool_and_fire_for_what_they_name() {
    let Ok(_) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        crate::support::skip("needs promtool (apt-get install prometheus)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (rules, spec) = rule_file(dir.path());
    let rules_text = rules.display().to_string();
    let checked = promtool(&["check", "rules", &rules_text]);
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    // Every series the alerts read is one that serve exports.
    let metrics = include_str!("../../src/serve/metrics.rs");
    let text_of_rules = std::fs::read_to_string(&rules).unwrap();
    for word in text_of_rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("probe_") || word.starts_with("preflight_") {
            assert!(
                metrics.contains(&format!("\"{word}\"")),
                "serve exports no {word}"
            );
        }
    }

    // Three nodes. konnect.cp is down on n2 only; konnect.telemetry on n1 and n2 (most nodes);
    // an optional check is down on n1. The cp certificate expires in 10 days, telemetry's in 30;
    // n3's TLS to telemetry is intercepted; n1's client certificate expires in 10 days; n2's
    // rounds stopped and its scrapes fail.
    let job = "preflight-fleet";
    let cp = [("check", "konnect.cp"), ("target", "tls://cp.example:443")];
    let tel = [
        ("check", "konnect.telemetry"),
        ("target", "tls://tel.example:443"),
    ];
    let series = |name: &str, labels: &[(&str, &str)], values: &str| {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        serde_json::json!({
            "series": format!("{name}{{job=\"{job}\",{}}}", labels.join(",")),
            "values": values,
        })
    };
    let with = |base: &[(&'static str, &'static str)], more: &[(&'static str, &'static str)]| {
        [base, more].concat()
    };
    let mut input = Vec::new();
    for (node, cp_up, tel_up) in [
        ("n1", "1x30", "0x30"),
        ("n2", "0x30", "0x30"),
        ("n3", "1x30", "1x30"),
    ] {
        input.push(series(
            "probe_success",
            &with(&cp, &[("required", "true"), ("node", node)]),
            cp_up,
        ));
        input.push(series(
            "probe_success",
            &with(&tel, &[("required", "true"), ("node", node)]),
            tel_up,
        ));
        input.push(series(
            "probe_ssl_earliest_cert_expiry",
            &with(&cp, &[("node", node)]),
            "864000x30",
        ));
        input.push(series(
            "probe_ssl_earliest_cert_expiry",
            &with(&tel, &[("node", node)]),
            "2592000x30",
        ));
    }
    input.push(series(
        "probe_success",
        &[
            ("check", "opt"),
            ("target", "tcp://opt.example:1"),
            ("required", "false"),
            ("node", "n1"),
        ],
        "0x30",
    ));
    input.push(series(
        "preflight_tls_intercepted",
        &with(&tel, &[("node", "n3"), ("issuer", "Corp Inspection CA")]),
        "1x30",
    ));
    input.push(series(
        "preflight_client_cert_expiry_timestamp_seconds",
        &[("node", "n1")],
        "864000x30",
    ));
    input.push(series(
        "preflight_client_cert_expiry_timestamp_seconds",
        &[("node", "n2")],
        "2592000x30",
    ));
    input.push(series(
        "preflight_round_timestamp_seconds",
        &[("node", "n1")],
        "0+60x30",
    ));
    input.push(series(
        "preflight_round_timestamp_seconds",
        &[("node", "n2")],
        "0x30",
    ));
    input.push(series("up", &[("node", "n1")], "1x30"));
    input.push(series("up", &[("node", "n2")], "0x30"));

    let node_down = |check: &[(&'static str, &'static str)], node: &'static str| {
        expected(
            &spec,
            "PreflightRequiredEndpointDown",
            &with(
                &with(&[("job", job)], check),
                &[("required", "true"), ("node", node)],
            ),
        )
    };
    let cases = [
        (
            "PreflightRequiredEndpointDown",
            vec![
                node_down(&cp, "n2"),
                node_down(&tel, "n1"),
                node_down(&tel, "n2"),
            ],
        ),
        (
            "PreflightEndpointDownOnMostNodes",
            vec![expected(
                &spec,
                "PreflightEndpointDownOnMostNodes",
                &with(&[("job", job)], &tel),
            )],
        ),
        (
            "PreflightCertificateExpiringSoon",
            vec![expected(
                &spec,
                "PreflightCertificateExpiringSoon",
                &with(&[("job", job)], &cp),
            )],
        ),
        (
            "PreflightTLSIntercepted",
            vec![expected(
                &spec,
                "PreflightTLSIntercepted",
                &with(
                    &with(&[("job", job), ("node", "n3")], &tel),
                    &[("issuer", "Corp Inspection CA")],
                ),
            )],
        ),
        (
            "PreflightClientCertificateExpiringSoon",
            vec![expected(
                &spec,
                "PreflightClientCertificateExpiringSoon",
                &[("job", job), ("node", "n1")],
            )],
        ),
        (
            "PreflightRoundsStalled",
            vec![expected(
                &spec,
                "PreflightRoundsStalled",
                &[("job", job), ("node", "n2")],
            )],
        ),
        (
            "PreflightNotScraped",
            vec![expected(
                &spec,
                "PreflightNotScraped",
                &[("job", job), ("node", "n2")],
            )],
        ),
    ];
    let mut alerts: Vec<serde_json::Value> = cases
        .into_iter()
        .map(|(name, exp)| serde_json::json!({"eval_time": "20m", "alertname": name, "exp_alerts": exp}))
        .collect();
    // Not before its five minutes.
    alerts.push(serde_json::json!({"eval_time": "3m", "alertname": "PreflightRequiredEndpointDown", "exp_alerts": []}));
    let tests = serde_json::json!({
        "rule_files": [rules_text],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input, "alert_rule_test": alerts}],
    });
    let test_file = dir.path().join("rules_test.yaml");
    std::fs::write(&test_file, tests.to_string()).unwrap();
    let tested = promtool(&["test", "rules", test_file.to_str().unwrap()]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}
