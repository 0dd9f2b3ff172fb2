//! `--ip-list FILE`: the addresses a firewall team allowlists instead of names. Konnect
//! publishes its own (the networking page, Kong/developer.konghq.com
//! app/konnect-platform/network.md: `ip-addresses.json`, whose `ingressIPs` hold the ingress
//! addresses per geo); a team hands back a plain list. Each listed address is checked on the
//! checked names' ports with the name's server name (as `--resolve` does by hand), and the
//! addresses DNS gives that the list lacks are named: an allowlist made from a stale list drops
//! them.

use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use crate::check::CheckSpec;
use crate::error::InputError;
use crate::target::Probe;

/// The geos of Konnect's hosts (`NAME.REGION.cp0.konghq.com`).
const GEOS: [&str; 7] = ["au", "eu", "me", "in", "sg", "us", "global"];

/// The most listed addresses checked for one endpoint: a list of thousands must not make
/// thousands of checks of each.
pub const MAX_PER_ENDPOINT: usize = 32;

/// One listed address or range, and the geo it is listed under (JSON only).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    ip: IpAddr,
    prefix: u8,
    geo: Option<String>,
}

impl Entry {
    fn is_address(&self) -> bool {
        self.prefix == full_length(&self.ip)
    }

    fn covers(&self, ip: &IpAddr) -> bool {
        match (self.ip, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            _ => false,
        }
    }
}

fn full_length(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ADDR` or `ADDR/PREFIX`.
fn parse_entry(text: &str, geo: Option<String>) -> Option<Entry> {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (text, None),
    };
    let ip: IpAddr = ip.trim().trim_matches(['[', ']']).parse().ok()?;
    let prefix = match prefix {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= full_length(&ip))?,
        None => full_length(&ip),
    };
    Some(Entry { ip, prefix, geo })
}

/// An allowlist of addresses.
#[derive(Debug, Clone, Default)]
pub struct IpList {
    entries: Vec<Entry>,
    /// The file, for the words.
    pub path: String,
}

impl IpList {
    /// Reads `path`: JSON (Konnect's `ip-addresses.json`: every address or range in it, only
    /// those under `ingressIPs` when it has that key, each with the geo its path names; unknown
    /// fields are fine) or a plain list, an address or CIDR range a line, `#` comments.
    pub fn load(path: &Path) -> Result<IpList, InputError> {
        let text = crate::files::read_text(path, "the --ip-list file")?;
        let bad = |reason: String| InputError::File {
            path: path.to_path_buf(),
            reason,
        };
        let trimmed = text.trim_start();
        let entries = if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let json: Value =
                serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
            let mut found = Vec::new();
            walk(&json, &mut Vec::new(), &mut found);
            let ingress: Vec<Entry> = found
                .iter()
                .filter(|(_, under)| *under)
                .map(|(e, _)| e.clone())
                .collect();
            match ingress.is_empty() {
                true => found.into_iter().map(|(e, _)| e).collect(),
                false => ingress,
            }
        } else {
            let mut entries = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if line.is_empty() {
                    continue;
                }
                let entry = parse_entry(line, None).ok_or_else(|| {
                    bad(format!(
                        "line {}: `{}` is not an IP address or CIDR range",
                        n + 1,
                        crate::sanitize::shorten(line)
                    ))
                })?;
                entries.push(entry);
            }
            entries
        };
        if entries.is_empty() {
            return Err(bad("holds no IP address or CIDR range".into()));
        }
        Ok(IpList {
            entries,
            path: path.display().to_string(),
        })
    }

    /// The listed single addresses that may serve `host`: those of its geo (a label of the
    /// name, `abc.us.cp0.konghq.com`) or of none; every one for a name that names no geo.
    /// Ranges are not dialed, only compared.
    fn addresses_for(&self, host: &str) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for entry in self.serving(host).filter(|e| e.is_address()) {
            if !out.contains(&entry.ip) {
                out.push(entry.ip);
            }
        }
        out
    }

    /// The listed addresses and ranges that may serve `host` (see `addresses_for`).
    fn serving<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let labels: Vec<&str> = host.split('.').collect();
        let names_a_geo = labels.iter().any(|l| *l != "global" && GEOS.contains(l));
        self.entries.iter().filter(move |entry| {
            !names_a_geo
                || entry
                    .geo
                    .as_deref()
                    .is_none_or(|geo| geo == "global" || labels.contains(&geo))
        })
    }

    /// The address rules for `host`: each listed address (`192.0.2.10`) or range
    /// (`198.51.100.0/28`) that may serve it, once.
    pub fn rules_for(&self, host: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for entry in self.serving(host) {
            let rule = match entry.is_address() {
                true => entry.ip.to_string(),
                false => format!("{}/{}", entry.ip, entry.prefix),
            };
            if !out.contains(&rule) {
                out.push(rule);
            }
        }
        out
    }

    /// Whether an address or range of the list holds `ip`.
    pub fn covers(&self, ip: &IpAddr) -> bool {
        self.entries.iter().any(|e| e.covers(ip))
    }

    /// A check of each listed address for each endpoint checked by name on a port (TLS with the
    /// name's server name), optional, `ID@ADDR`; and notes.
    pub fn checks(&self, specs: &[CheckSpec]) -> (Vec<CheckSpec>, Vec<String>) {
        let mut added = Vec::new();
        let mut notes = Vec::new();
        for spec in specs {
            let dialed = matches!(
                spec.probe(),
                Probe::Tcp | Probe::Tls | Probe::Https | Probe::Wss | Probe::KongCluster
            );
            if !dialed || spec.ip.is_some() || spec.port().is_none() || spec.skip.is_some() {
                continue;
            }
            let addresses = self.addresses_for(spec.host());
            if addresses.len() > MAX_PER_ENDPOINT {
                notes.push(format!(
                    "--ip-list gives {} addresses for {}: the first {MAX_PER_ENDPOINT} are checked",
                    addresses.len(),
                    spec.host()
                ));
            }
            for ip in addresses.into_iter().take(MAX_PER_ENDPOINT) {
                let mut check = spec.clone();
                check.endpoint.id = format!("{}@{ip}", spec.id());
                check.endpoint.name = format!("{} at listed {ip}", spec.endpoint.name);
                check.endpoint.required = false;
                check.ip = Some(ip);
                let note = format!("an address of --ip-list {}", self.path);
                check.endpoint.note = Some(match &spec.endpoint.note {
                    Some(n) => format!("{n}; {note}"),
                    None => note,
                });
                check.endpoint.target = check.target();
                added.push(check);
            }
        }
        (added, notes)
    }
}

/// Collects every address or range in `value`, with the geo its path names and whether it is
/// under `ingressIPs`.
fn walk(value: &Value, path: &mut Vec<String>, found: &mut Vec<(Entry, bool)>) {
    match value {
        Value::String(text) => {
            let geo = path
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .find(|k| GEOS.contains(&k.as_str()));
            let under = path.iter().any(|k| k.eq_ignore_ascii_case("ingressips"));
            if let Some(entry) = parse_entry(text, geo) {
                found.push((entry, under));
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, path, found)),
        Value::Object(map) => {
            for (key, item) in map {
                path.push(key.clone());
                walk(item, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The addresses DNS gave for the report's checks by name that `list` does not hold: an
/// allowlist made from it drops them. A note per name.
pub fn stale(report: &crate::report::Report, list: &IpList) -> Vec<String> {
    let mut notes = Vec::new();
    for check in report
        .checks
        .iter()
        .filter(|c| !c.endpoint.id.contains('@'))
    {
        let lacking: Vec<String> = check
            .path
            .addresses
            .iter()
            .map(|a| a.ip)
            .filter(|ip| !list.covers(ip))
            .map(|ip| ip.to_string())
            .collect();
        if lacking.is_empty() {
            continue;
        }
        let note = format!(
            "{} resolves to {}, which --ip-list {} does not hold: a firewall allowlist made from that list drops {}; fetch the list again, or allow the name",
            check.endpoint.host,
            lacking.join(", "),
            list.path,
            if lacking.len() == 1 { "it" } else { "them" }
        );
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    notes
}

/// Adds to `list`, after each name's entry, an entry for each listed address or range that may
/// serve it (same port, protocol, direction and route), and a note for each name that resolves
/// now to an address the list lacks.
pub fn extend_allowlist(list: &mut crate::allowlist::Allowlist, ips: &IpList) {
    let mut entries = Vec::with_capacity(list.entries.len());
    for entry in list.entries.drain(..) {
        let by_name = entry.host.parse::<IpAddr>().is_err() && entry.port.is_some();
        let lacking: Vec<String> = entry
            .addresses_now
            .iter()
            .filter(|ip| !ips.covers(ip))
            .map(IpAddr::to_string)
            .collect();
        if by_name && !lacking.is_empty() {
            let note = format!(
                "{} resolves to {}, which --ip-list {} does not hold: allow the name, or fetch the list again",
                entry.host,
                lacking.join(", "),
                ips.path
            );
            if !list.notes.contains(&note) {
                list.notes.push(note);
            }
        }
        let rules = match by_name {
            true => ips.rules_for(&entry.host),
            false => Vec::new(),
        };
        let name = entry.host.clone();
        entries.push(entry.clone());
        for rule in rules {
            let mut address = entry.clone();
            address.purpose = format!("{} (--ip-list address of {name})", entry.purpose);
            address.host = rule;
            address.addresses_now = Vec::new();
            address.addresses_error = None;
            entries.push(address);
        }
    }
    list.entries = entries;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, text: &str) -> Result<IpList, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        IpList::load(&path)
    }

    #[test]
    fn konnects_json_gives_the_ingress_addresses_of_each_geo() {
        let list = load(
            "ip-addresses.json",
            r#"{"updated": "2026-11-30", "ingressIPs": {"us": {"all": ["192.0.2.10", "192.0.2.11/32"], "cp": ["198.51.100.0/28"]}, "eu": {"all": ["203.0.113.5"]}}, "egressIPs": {"us": ["192.0.2.99"]}}"#,
        )
        .unwrap();
        let us: Vec<String> = list
            .addresses_for("abc.us.cp0.konghq.com")
            .iter()
            .map(IpAddr::to_string)
            .collect();
        assert_eq!(us, ["192.0.2.10", "192.0.2.11"]);
        assert!(list.covers(&"198.51.100.7".parse().unwrap()));
        assert!(
            !list.covers(&"192.0.2.99".parse().unwrap()),
            "egress is not ingress"
        );
    }

    #[test]
    fn a_plain_list_and_its_mistakes() {
        let list = load(
            "list.txt",
            "# from the firewall team\n192.0.2.10\n2001:db8::/32  # v6\n",
        )
        .unwrap();
        assert!(list.covers(&"2001:db8::5".parse().unwrap()));
        assert_eq!(list.addresses_for("any.example").len(), 1);
        let err = load("list.txt", "192.0.2.10\nnot-an-ip\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2: `not-an-ip` is not an IP address"),
            "{err}"
        );
        let err = load("x.json", "{\"a\": [1, 2]}").unwrap_err().to_string();
        assert!(err.contains("holds no IP address"), "{err}");
        let err = load("x.json", "{\"a\": ").unwrap_err().to_string();
        assert!(err.contains("not JSON"), "{err}");
    }
}
