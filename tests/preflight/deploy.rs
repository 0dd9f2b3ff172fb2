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
    let preflight::cli::Command::Check(check) = cli.command else {
        panic!("{args:?} is not a check");
    };
    preflight::settings::Settings::from_args(&check).unwrap_or_else(|e| panic!("{args:?}: {e}"));
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
fn the_daemonset_watches_from_every_node() {
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
    assert!(args.iter().any(|a| a == "--watch"), "{args:?}");
    assert!(
        args.windows(2).any(|w| w == ["--format", "json"]),
        "{args:?}"
    );
}
