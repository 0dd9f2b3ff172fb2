//! Mistakes caught before anything is probed (issue 16): each is one line on stderr naming the
//! problem and the way to write it, and exit 2.

use crate::support::world::{World, run};

#[test]
fn each_mistake_is_one_line_and_exit_2() {
    let world = World::new();
    let conf = |name: &str, text: &str| {
        let path = world.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let dataplane = conf("dataplane.conf", "role = dataplane\n");
    let url = conf(
        "url.conf",
        "role = data_plane\ncluster_control_plane = https://abc.us.cp0.konghq.com\n",
    );
    let konnect = [
        "--profile",
        "konnect",
        "--set",
        "region=us",
        "--set",
        "cp_prefix=x",
    ];
    let with = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["check".into()];
        args.extend(konnect.iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let rows: Vec<(Vec<String>, &str)> = vec![
        (
            with(&["--only", "mesh"]),
            "nothing to check: --only mesh keeps none of the endpoints; the roles here are: api, control-plane",
        ),
        (
            vec![
                "check".into(),
                "--profile".into(),
                "konnect".into(),
                "--set".into(),
                "regoin=us".into(),
                "--set".into(),
                "cp_prefix=x".into(),
            ],
            "unknown variable `regoin` for profile konnect (did you mean `region`?)",
        ),
        (
            vec!["check".into(), "tcp://::1:443".into()],
            "put an IPv6 address in brackets: tcp://[::1]:443",
        ),
        (
            vec![
                "check".into(),
                "--dns-server".into(),
                "::1:53".into(),
                "dns://a.test".into(),
            ],
            "put an IPv6 address in brackets: [::1]:53 for that port, or [::1:53] for port 53",
        ),
        (
            vec![
                "check".into(),
                "--resolve".into(),
                "https://a.test:443:127.0.0.1".into(),
                "tcp://a.test:443".into(),
            ],
            "this is a URL: give HOST:PORT:ADDR (a.test:443:127.0.0.1)",
        ),
        (
            vec!["check".into(), "tcp://https://a.test:443".into()],
            "this is a URL: give HOST:PORT (a.test:443)",
        ),
        (
            vec!["check".into(), "--kong-conf".into(), dataplane.clone()],
            "line 1: role = dataplane: expected traditional, data_plane or control_plane",
        ),
        (
            vec!["check".into(), "--kong-conf".into(), url.clone()],
            "this is a URL: give HOST:PORT (abc.us.cp0.konghq.com:443)",
        ),
        (
            vec![
                "check".into(),
                "--concurrency".into(),
                "0".into(),
                "tcp://127.0.0.1:9".into(),
            ],
            "--concurrency <N>': must be 1 or more",
        ),
    ];
    for (args, expected) in rows {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}:\n{stderr}\nwants: {expected}"
        );
    }
}

/// A number out of range, in any subcommand's flag: one line in words, never Rust's range
/// syntax (`0..=4294967295`), exit 2.
#[test]
fn numbers_out_of_range_are_refused_in_words() {
    for args in [
        &[
            "check",
            "--cert-warn-days",
            "99999999999",
            "tcp://127.0.0.1:1",
        ][..],
        &["check", "--concurrency", "0", "tcp://127.0.0.1:1"][..],
        &["listen", "--tcp", "70000"][..],
        &["listen", "--udp", "-1"][..],
    ] {
        let (code, stdout, stderr) = crate::support::world::run(args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        crate::support::words::assert_plain_text(&stderr);
    }
}
