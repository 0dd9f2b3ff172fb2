//! The host's own rules for a name, as glibc's getaddrinfo follows them (and Kong's resolver,
//! which reads the same files: kong/resty/dns/client.lua): `/etc/nsswitch.conf`'s `hosts:`
//! line says whether `/etc/hosts` is read before DNS (nsswitch.conf(5); without the file,
//! glibc's default is `files dns`), and a name in `/etc/hosts` is answered from it, every
//! family at once, with no DNS query at all (hosts(5)). The search list and `ndots` of
//! `/etc/resolv.conf` (resolv.conf(5)) are hickory's to follow; `ndots` is read here only to
//! name an expansion.

use std::collections::HashMap;
use std::net::IpAddr;

/// Where the rules are read from.
const HOSTS: &str = "/etc/hosts";
const NSSWITCH: &str = "/etc/nsswitch.conf";
/// The most of a hosts file read: ad-blocking hosts files run to a few megabytes.
const MAX_HOSTS_BYTES: u64 = 16 << 20;

/// A name's line(s) in `/etc/hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostsEntry {
    /// Every address the file gives the name, in file order.
    pub(crate) addrs: Vec<IpAddr>,
    /// The first line that names it (from 1).
    pub(crate) line: usize,
}

/// The host's rules, read once per run.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostRules {
    /// Names (lower case, no trailing dot) to their addresses in `/etc/hosts`.
    hosts: HashMap<String, HostsEntry>,
    /// Whether `/etc/hosts` is read before DNS (`files` before `dns` on the `hosts:` line).
    pub(crate) files_first: bool,
    /// Whether `/etc/hosts` is read at all.
    pub(crate) files: bool,
    /// `/etc/resolv.conf`'s `ndots`, to name an expansion.
    pub(crate) ndots: usize,
}

impl HostRules {
    /// The rules of this host; a file that cannot be read counts as empty (as glibc does).
    pub(crate) fn read() -> HostRules {
        let nsswitch = std::fs::read_to_string(NSSWITCH).unwrap_or_default();
        let (files, files_first) = order(&nsswitch);
        let hosts = match files {
            true => read_capped(HOSTS).map(|text| parse_hosts(&text)),
            false => None,
        };
        let ndots =
            hickory_resolver::system_conf::read_system_conf().map_or(1, |(_, opts)| opts.ndots);
        HostRules {
            hosts: hosts.unwrap_or_default(),
            files_first,
            files,
            ndots,
        }
    }

    /// The name's entry in `/etc/hosts`, if it has one.
    pub(crate) fn pinned(&self, host: &str) -> Option<&HostsEntry> {
        if !self.files {
            return None;
        }
        self.hosts.get(&key(host))
    }

    /// The search domain that `answered` adds to `host`, when the answer came from the search
    /// list rather than the name as given.
    pub(crate) fn expansion<'a>(&self, host: &str, answered: &'a str) -> Option<&'a str> {
        let (host, answered_key) = (key(host), key(answered));
        if answered_key == host {
            return None;
        }
        let suffix = answered_key.strip_prefix(&host)?.strip_prefix('.')?;
        let answered = answered.trim_end_matches('.');
        // Lower-casing ASCII keeps every byte where it was.
        Some(&answered[answered.len() - suffix.len()..])
    }
}

/// A name as hosts(5) compares it: case-insensitive, without a trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn read_capped(path: &str) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_HOSTS_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Whether the `hosts:` line reads `files`, and whether before `dns`. No line (or no file) is
/// glibc's default, `files dns`.
fn order(nsswitch: &str) -> (bool, bool) {
    let line = nsswitch.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("").trim();
        line.strip_prefix("hosts:").map(str::to_string)
    });
    let Some(line) = line else {
        return (true, true);
    };
    // The sources, without their `[STATUS=action]` items.
    let sources: Vec<&str> = line
        .split_whitespace()
        .filter(|word| !word.starts_with('[') && !word.ends_with(']'))
        .collect();
    let files = sources.iter().position(|s| *s == "files");
    let dns = sources.iter().position(|s| *s == "dns" || *s == "resolve");
    match (files, dns) {
        (Some(f), Some(d)) => (true, f < d),
        (Some(_), None) => (true, true),
        (None, _) => (false, false),
    }
}

/// `ADDRESS NAME [ALIAS…]` lines; comments and malformed lines are skipped, as glibc does.
fn parse_hosts(text: &str) -> HashMap<String, HostsEntry> {
    let mut hosts: HashMap<String, HostsEntry> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(Ok(addr)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        for name in words {
            let entry = hosts.entry(key(name)).or_insert_with(|| HostsEntry {
                addrs: Vec::new(),
                line: index + 1,
            });
            if !entry.addrs.contains(&addr) {
                entry.addrs.push(addr);
            }
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_line_says_whether_the_file_comes_first() {
        assert_eq!(order(""), (true, true));
        assert_eq!(order("hosts: files dns\n"), (true, true));
        assert_eq!(
            order("hosts:          files mdns4_minimal [NOTFOUND=return] dns myhostname\n"),
            (true, true)
        );
        assert_eq!(order("hosts: dns files\n"), (true, false));
        assert_eq!(order("hosts: dns\n"), (false, false));
        assert_eq!(order("# hosts: dns\nhosts: files resolve\n"), (true, true));
    }

    #[test]
    fn every_line_of_a_name_counts_from_its_first() {
        let hosts = parse_hosts(
            "127.0.0.1 localhost\n# 10.0.0.1 cp.example.com\n192.0.2.7 CP.example.com. cp # pinned\n2001:db8::7 cp.example.com\nnot-an-address cp.example.com\n",
        );
        let entry = &hosts["cp.example.com"];
        assert_eq!(entry.line, 3);
        assert_eq!(
            entry.addrs,
            vec![
                "192.0.2.7".parse::<IpAddr>().unwrap(),
                "2001:db8::7".parse().unwrap()
            ]
        );
        assert_eq!(hosts["cp"].line, 3);
    }

    #[test]
    fn an_answer_for_a_longer_name_is_a_search_expansion() {
        let rules = HostRules::default();
        assert_eq!(
            rules.expansion("cloud.konghq.com", "cloud.konghq.com.corp.example."),
            Some("corp.example")
        );
        assert_eq!(
            rules.expansion("cloud.konghq.com", "Cloud.Konghq.com."),
            None
        );
        assert_eq!(rules.expansion("cloud.konghq.com", "other.example."), None);
    }
}
