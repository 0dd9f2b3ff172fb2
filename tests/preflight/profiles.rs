//! `preflight profiles` and `preflight profiles show NAME`.

use crate::support::world::run;

const BUILTIN: [&str; 7] = [
    "konnect",
    "konnect-kic",
    "konnect-mesh",
    "kong-hybrid",
    "kgateway",
    "apigee-hybrid",
    "kong-dataplane",
];

#[test]
fn lists_every_builtin_profile_one_line_each() {
    let (code, stdout, _) = run(&["profiles"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, BUILTIN);
}

#[test]
fn show_gives_variables_with_allowed_values_and_endpoints() {
    for name in BUILTIN {
        let (code, stdout, stderr) = run(&["profiles", "show", name]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stdout.starts_with(&format!("{name}: ")), "{stdout}");
        assert!(
            stdout.contains("\nvariables (--set NAME=VALUE):\n"),
            "{stdout}"
        );
        assert!(stdout.contains("\nendpoints:\n"), "{stdout}");
        assert!(stdout.contains("source: https://"), "{stdout}");
    }
    let (_, konnect, _) = run(&["profiles", "show", "konnect"]);
    assert!(
        konnect.contains("region  [required; allowed: au, eu, me, in, sg, us]"),
        "{konnect}"
    );
    for line in [
        "tls://cloud.konghq.com:443",
        "tls://global.api.konghq.com:443",
        "tls://{region}.api.konghq.com:443",
        "tls://{portal_id}.{region}.portal.konghq.com:443  (optional)",
        "tls://{cp_prefix}.{region}.cp0.konghq.com:443  (required)",
        "tls://{cp_prefix}.{region}.tp0.konghq.com:443  (required)",
        "tcp://{cp_prefix}.{region}.cp0.konghq.com:8071  (optional)",
    ] {
        assert!(konnect.contains(line), "no {line} in\n{konnect}");
    }
    let (_, mesh, _) = run(&["profiles", "show", "konnect-mesh"]);
    assert!(mesh.contains("allowed: au, eu, us, global"), "{mesh}");
    assert!(
        mesh.contains("tls://{geo}.mesh.sync.konghq.com:443"),
        "{mesh}"
    );
    let (_, kong, _) = run(&["profiles", "show", "kong-hybrid"]);
    assert!(
        kong.contains("{cp_host}:8005") && kong.contains("{telemetry_host|cp_host}:8006"),
        "{kong}"
    );
    let (_, kgw, _) = run(&["profiles", "show", "kgateway"]);
    for port in [
        ":443", ":9976", ":9977", ":9988", ":9979", ":9966", ":8080", ":8443", ":19000", ":8083",
    ] {
        assert!(kgw.contains(port), "kgateway lacks {port}");
    }
    assert!(kgw.contains("namespace  [default gloo-system"), "{kgw}");
    let (_, apigee, _) = run(&["profiles", "show", "apigee-hybrid"]);
    for port in [
        ":9042", ":7001", ":7000", ":8443", ":20001", ":7070", ":8843",
    ] {
        assert!(apigee.contains(port), "apigee-hybrid lacks {port}");
    }
    assert!(
        apigee.contains("tls://apigee.googleapis.com:443"),
        "{apigee}"
    );
}

#[test]
fn show_of_an_unknown_profile_exits_2() {
    let (code, stdout, stderr) = run(&["profiles", "show", "kong-classic"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("unknown profile `kong-classic`"),
        "{stderr}"
    );
}
