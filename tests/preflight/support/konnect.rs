//! A whole Konnect world on loopback: every Konnect host served with TLS on its own loopback
//! address, a DNS server for konghq.com, and the node's cluster certificate.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};

use super::world::{Behaviour, ServerOptions, Validity, World, lo, loopback_block};

/// The Konnect endpoints for region `us`, cp_prefix `x`, portal_id `p1`: (check key, host).
pub(crate) const KONNECT: [(&str, &str); 9] = [
    ("platform", "cloud.konghq.com"),
    ("global-api", "global.api.konghq.com"),
    ("regional-api", "us.api.konghq.com"),
    ("portal", "p1.us.portal.konghq.com"),
    ("control-plane", "x.us.cp0.konghq.com"),
    ("telemetry", "x.us.tp0.konghq.com"),
    ("portal-today", "p1.us.kongportals.com"),
    ("control-plane-today", "x.us.cp.konghq.com"),
    ("telemetry-today", "x.us.tp.konghq.com"),
];

/// Serves every Konnect host with TLS on port 443 of its own loopback address (plus the
/// audit-log ports 8071 and 20010 on the cp0 address) and a DNS server for konghq.com and
/// kongportals.com. `None`, with a
/// note on stderr, where binding port 443 is not allowed (not root). A block of addresses that
/// another test process holds is passed over for the next.
pub(crate) fn konnect_world(world: &World) -> Option<(SocketAddr, u8)> {
    for _ in 0..64 {
        let block = loopback_block();
        match konnect_hosts(world, block) {
            Ok(records) => {
                return Some((
                    world.dns(&["konghq.com", "kongportals.com"], &records, &[], &[]),
                    block,
                ));
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                super::skip(&format!(
                    "the Konnect world: binding port 443 needs root ({e})"
                ));
                return None;
            }
            Err(e) => panic!("cannot bind the Konnect world: {e}"),
        }
    }
    panic!("no free block of loopback addresses for the Konnect world");
}

fn konnect_hosts(world: &World, block: u8) -> std::io::Result<Vec<(&'static str, IpAddr)>> {
    let mut records = Vec::new();
    for (i, (key, host)) in KONNECT.iter().enumerate() {
        let ip = lo(block, i as u8 + 1);
        // The control plane's configuration and telemetry endpoints require mutual TLS.
        let options = ServerOptions {
            client_auth: matches!(
                *key,
                "control-plane" | "telemetry" | "control-plane-today" | "telemetry-today"
            ),
            ..ServerOptions::default()
        };
        let config = world.ca.server_with(&[host], Validity::Current, options);
        // The control plane answers the data plane's WebSocket upgrade on /v1/outlet.
        let behaviour = match *key {
            "control-plane" | "control-plane-today" => Behaviour::Web(Some(config)),
            _ => Behaviour::Tls(config),
        };
        world.serve(SocketAddr::new(ip, 443), behaviour)?;
        records.push((*host, ip));
    }
    world.serve(SocketAddr::new(lo(block, 5), 8071), Behaviour::Accept)?;
    world.serve(SocketAddr::new(lo(block, 5), 20010), Behaviour::Accept)?;
    Ok(records)
}

/// The node's cluster certificate and key, signed by the world's CA.
pub(crate) fn cluster_cert(world: &World) -> (String, String) {
    let (crt, key) = world
        .ca
        .client(world.dir.path(), "node", &rcgen::PKCS_ECDSA_P256_SHA256);
    (crt.display().to_string(), key.display().to_string())
}

/// The world's certificates come from a private CA, so `--allow-private-ca` (a lab control
/// plane); without it they look exactly like interception (see the tls tests).
pub(crate) fn konnect_args<'a>(
    dns: &'a str,
    ca: &'a str,
    cert: &'a (String, String),
) -> Vec<&'a str> {
    vec![
        "--profile",
        "konnect",
        "--set",
        "region=us",
        "--set",
        "cp_prefix=x",
        "--set",
        "portal_id=p1",
        "--dns-server",
        dns,
        "--ca-file",
        ca,
        "--timeout",
        "3s",
        "--allow-private-ca",
        "--client-cert",
        &cert.0,
        "--client-key",
        &cert.1,
    ]
}
