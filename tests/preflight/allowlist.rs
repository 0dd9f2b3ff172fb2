//! The firewall handoff: `preflight allowlist` in each format over the konnect profile, through
//! a proxy and from a kong.conf, and `check --allowlist-failed`.

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};

use serde_json::Value;

use crate::support::world::{World, lo, loopback_block, run};

/// The konnect endpoints a `region=eu, cp_prefix=x` run lists, from the profile file itself:
/// (host, port, protocol, name). The portal needs `portal_id`, so it is not among them.
fn konnect_endpoints() -> Vec<(String, u16, &'static str, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/konnect.toml"
    ))
    .unwrap();
    let profile: toml::Table = toml::from_str(&text).unwrap();
    profile["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let host = e["host"].as_str().unwrap();
            if host.contains("{portal_id}") {
                return None;
            }
            let host = host.replace("{region}", "eu").replace("{cp_prefix}", "x");
            let protocol = match e["probe"].as_str().unwrap() {
                "tls" | "https" | "wss" => "TLS",
                "udp" => "UDP",
                "dns" => "DNS",
                _ => "TCP",
            };
            let port = e["port"].as_integer().unwrap() as u16;
            Some((
                host,
                port,
                protocol,
                e["name"].as_str().unwrap().to_string(),
            ))
        })
        .collect()
}

/// Rows of CSV (RFC 4180: quoted fields may hold commas and doubled quotes) as maps by column.
fn parse_csv(text: &str) -> Vec<HashMap<String, String>> {
    let mut rows = text.split("\r\n").filter(|l| !l.is_empty()).map(|line| {
        let mut fields = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    fields.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(String::new()),
                (c, _) => fields.last_mut().unwrap().push(c),
            }
        }
        fields
    });
    let header = rows.next().expect("a header row");
    rows.map(|row| {
        assert_eq!(row.len(), header.len(), "{row:?}");
        header.iter().cloned().zip(row).collect()
    })
    .collect()
}

/// A DNS server for konghq.com that knows two of the names; the rest are NXDOMAIN.
fn konghq_dns(world: &World) -> (String, IpAddr, IpAddr) {
    let block = loopback_block();
    let (cloud, cp) = (lo(block, 1), lo(block, 2));
    let dns = world.dns(
        &["konghq.com"],
        &[("cloud.konghq.com", cloud), ("x.eu.cp0.konghq.com", cp)],
        &[],
        &[],
    );
    (dns.to_string(), cloud, cp)
}

fn allowlist(args: &[&str]) -> (i32, String, String) {
    let mut all = vec![
        "allowlist",
        "--profile",
        "konnect",
        "--set",
        "region=eu",
        "--set",
        "cp_prefix=X",
    ];
    all.extend(args);
    run(&all)
}

#[test]
fn csv_lists_every_konnect_endpoint_with_port_protocol_and_purpose() {
    let world = World::new();
    let (dns, cloud, cp) = konghq_dns(&world);
    let (code, csv, stderr) = allowlist(&["--format", "csv", "--dns-server", &dns]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        csv.starts_with(
            "host,port,protocol,direction,purpose,role,required,proxy,addresses_now,failure,source\r\n"
        ),
        "{csv}"
    );
    let rows = parse_csv(&csv);
    let expected = konnect_endpoints();
    // Every endpoint, and the DNS server the names need.
    assert_eq!(rows.len(), expected.len() + 1, "{csv}");
    let (server, port) = dns.rsplit_once(':').unwrap();
    let resolver = rows
        .iter()
        .find(|r| r["protocol"] == "DNS")
        .unwrap_or_else(|| panic!("no DNS server row in\n{csv}"));
    assert_eq!(
        (resolver["host"].as_str(), resolver["port"].as_str()),
        (server, port)
    );
    assert!(resolver["purpose"].contains("--dns-server"), "{resolver:?}");
    // This host's address toward each resolved destination: the source of the rule.
    let cloud_row = rows
        .iter()
        .find(|r| r["host"] == "cloud.konghq.com")
        .unwrap();
    assert_eq!(cloud_row["source"], "127.0.0.1", "{cloud_row:?}");
    for (host, port, protocol, name) in &expected {
        let row = rows
            .iter()
            .find(|r| r["host"] == *host && r["port"] == port.to_string())
            .unwrap_or_else(|| panic!("{host}:{port} missing from\n{csv}"));
        assert_eq!(row["protocol"], *protocol, "{row:?}");
        assert_eq!(row["direction"], "outbound");
        assert!(row["purpose"].contains(name.as_str()), "{row:?}");
        assert_eq!(row["proxy"], "");
    }
    let addresses = |host: &str| {
        rows.iter()
            .find(|r| r["host"] == host)
            .map(|r| r["addresses_now"].clone())
            .unwrap()
    };
    assert_eq!(addresses("cloud.konghq.com"), cloud.to_string());
    assert_eq!(addresses("x.eu.cp0.konghq.com"), cp.to_string());
    assert_eq!(addresses("global.api.konghq.com"), "(nxdomain)");
    // The skipped portal is named where CSV has no room for it.
    assert!(stderr.contains("not listed: konnect.portal"), "{stderr}");
}

#[test]
fn table_json_and_markdown_list_the_same_entries() {
    let world = World::new();
    let (dns, cloud, _) = konghq_dns(&world);
    let (_, csv, _) = allowlist(&["--format", "csv", "--dns-server", &dns]);
    let rows = parse_csv(&csv);

    let (code, json, stderr) = allowlist(&["--format", "json", "--dns-server", &dns]);
    assert_eq!(code, 0, "{stderr}");
    let list: Value = serde_json::from_str(&json).unwrap();
    let entries = list["entries"].as_array().unwrap();
    assert_eq!(entries.len(), rows.len());
    for (entry, row) in entries.iter().zip(&rows) {
        assert_eq!(entry["host"], row["host"].as_str());
        assert_eq!(entry["port"].to_string(), row["port"]);
        assert_eq!(entry["protocol"], row["protocol"].as_str());
    }
    let platform = &entries[0];
    assert_eq!(platform["host"], "cloud.konghq.com");
    assert_eq!(platform["addresses_now"][0], cloud.to_string());
    assert_eq!(platform["direction"], "outbound");
    assert_eq!(platform["role"], "platform");
    assert!(
        list["notes"][0]
            .as_str()
            .unwrap()
            .contains("not listed: konnect.portal")
    );

    let (code, table, _) = allowlist(&["--dns-server", &dns]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("HOST") && lines[0].contains("ADDRESSES (NOW)"));
    for row in &rows {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&row["host"]) && l.contains(&format!(" {} ", row["port"]))),
            "{table}"
        );
    }
    assert!(table.contains("Allow the host names"), "{table}");

    let (code, markdown, _) = allowlist(&["--format", "markdown", "--dns-server", &dns]);
    assert_eq!(code, 0);
    let table_rows = markdown
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| host") && !l.starts_with("| ---"))
        .count();
    assert_eq!(table_rows, rows.len(), "{markdown}");
    assert!(markdown.contains("| cloud.konghq.com | 443 | TLS | outbound |"));
}

#[test]
fn proxied_endpoints_name_the_proxy_and_the_proxy_is_listed_without_its_password() {
    let (code, csv, stderr) = allowlist(&[
        "--format",
        "csv",
        "--no-resolve",
        "--proxy",
        "http://ops:s3cret@127.0.0.1:3128",
        "--no-proxy",
        "global.api.konghq.com",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!csv.contains("s3cret") && !stderr.contains("s3cret"));
    let rows = parse_csv(&csv);
    let row = |host: &str| rows.iter().find(|r| r["host"] == host).unwrap();
    assert_eq!(row("cloud.konghq.com")["proxy"], "http://127.0.0.1:3128");
    assert_eq!(row("global.api.konghq.com")["proxy"], "");
    assert_eq!(
        row("cloud.konghq.com")["addresses_now"],
        "(not looked up: --no-resolve)"
    );
    let proxy = rows.last().unwrap();
    assert_eq!(
        (proxy["host"].as_str(), proxy["port"].as_str()),
        ("127.0.0.1", "3128")
    );
    assert_eq!(proxy["role"], "proxy");
    assert_eq!(proxy["purpose"], "Forward proxy (--proxy)");
    assert_eq!(proxy["addresses_now"], "127.0.0.1");
}

#[test]
fn a_kong_conf_lists_its_control_plane_and_inbound_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("kong.conf");
    std::fs::write(
        &conf,
        "role = data_plane\n\
         cluster_mtls = pki\n\
         cluster_control_plane = cp.example.internal:8005\n\
         cluster_telemetry_endpoint = tp.example.internal:8006\n\
         proxy_listen = 0.0.0.0:8000\n",
    )
    .unwrap();
    let (code, csv, stderr) = run(&[
        "allowlist",
        "--kong-conf",
        conf.to_str().unwrap(),
        "--format",
        "csv",
        "--no-resolve",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let rows = parse_csv(&csv);
    let cp = rows
        .iter()
        .find(|r| r["host"] == "cp.example.internal")
        .unwrap();
    assert_eq!(
        (cp["port"].as_str(), cp["protocol"].as_str()),
        ("8005", "TLS")
    );
    assert!(rows.iter().any(|r| r["host"] == "tp.example.internal"));
    let listener = rows.iter().find(|r| r["port"] == "8000").unwrap();
    assert_eq!(listener["direction"], "inbound");
    assert_eq!(listener["protocol"], "TCP");
}

#[test]
fn allowlist_failed_writes_only_the_failed_endpoints() {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("failed.csv");
    let json_path = dir.path().join("failed.json");
    for path in [&csv_path, &json_path] {
        let (code, _, stderr) = run(&[
            "check",
            "--timeout",
            "2s",
            "--allowlist-failed",
            path.to_str().unwrap(),
            &format!("tcp://{}", open.local_addr().unwrap()),
            &format!("tcp://{dead}"),
        ]);
        assert_eq!(code, 1, "{stderr}");
    }
    let rows = parse_csv(&std::fs::read_to_string(&csv_path).unwrap());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["port"], dead.port().to_string());
    assert_eq!(rows[0]["failure"], "refused");
    assert_eq!(rows[0]["addresses_now"], "127.0.0.1");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(list["entries"].as_array().unwrap().len(), 1);
    assert_eq!(list["entries"][0]["failure"], "refused");

    // Nothing failed: the file is written, with nothing to allow.
    let (code, _, stderr) = run(&[
        "check",
        "--allowlist-failed",
        csv_path.to_str().unwrap(),
        &format!("tcp://{}", open.local_addr().unwrap()),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        parse_csv(&std::fs::read_to_string(&csv_path).unwrap()).len(),
        0
    );
}

/// `--ip-list`: a firewall that allows addresses only gets, beside each name, the listed
/// addresses and ranges of the name's geo (Konnect's ip-addresses.json, its ingressIPs), and a
/// note for a name that resolves now to an address the list lacks.
#[test]
fn an_ip_list_adds_the_address_rules_of_each_names_geo() {
    let world = World::new();
    let (dns, cloud, cp) = konghq_dns(&world);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ip-addresses.json");
    std::fs::write(
        &list,
        format!(
            "{{\"ingressIPs\": {{\"eu\": [\"{cp}\", \"198.51.100.0/28\"], \"us\": [\"192.0.2.77\"], \"global\": [\"{cloud}\"]}}}}"
        ),
    )
    .unwrap();
    let (code, csv, stderr) = allowlist(&[
        "--format",
        "csv",
        "--dns-server",
        &dns,
        "--ip-list",
        list.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let rows = parse_csv(&csv);
    let for_cp: Vec<&str> = rows
        .iter()
        .filter(|r| {
            r["purpose"].contains("--ip-list address of x.eu.cp0.konghq.com") && r["port"] == "443"
        })
        .map(|r| r["host"].as_str())
        .collect();
    let cp_text = cp.to_string();
    assert_eq!(
        for_cp,
        [cp_text.as_str(), "198.51.100.0/28", &cloud.to_string()],
        "{csv}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r["host"] == "192.0.2.77" && r["purpose"].contains("of x.eu.cp0.konghq.com")),
        "another geo's address: {csv}"
    );
    // A list without the address the control plane's name resolves to now: stale, and said.
    std::fs::write(&list, "198.51.100.0/28\n").unwrap();
    let (code, text, stderr) = allowlist(&[
        "--format",
        "json",
        "--dns-server",
        &dns,
        "--ip-list",
        list.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let notes = json["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "x.eu.cp0.konghq.com resolves to {cp}, which --ip-list"
        )),
        "{notes}"
    );
}
