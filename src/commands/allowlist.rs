//! `preflight allowlist`: what the network team must allow.

use std::time::SystemTime;

use preflight::allowlist::Allowlist;
use preflight::output::Destination;
use preflight::render::{self, ListFormat};

use super::runtime::CHECKS_STARTED;
use super::{Failure, deliver};

/// Lists what the network team must allow, with the addresses the names resolve to now.
pub(crate) fn allowlist(
    args: &preflight::cli::AllowlistArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let (plan, dns) = preflight::settings::allowlist_inputs(args)?;
    let ips = args
        .ip_list
        .as_deref()
        .map(preflight::ip_list::IpList::load)
        .transpose()?;
    let destination = args
        .output
        .as_deref()
        .map(|path| Destination::open(path, "--output"))
        .transpose()?;
    let dns = (!args.no_resolve).then_some(dns);
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    CHECKS_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut list = runtime.block_on(Allowlist::of_plan(&plan, dns, now));
    if let Some(ips) = &ips {
        preflight::ip_list::extend_allowlist(&mut list, ips);
    }
    let mut buffer = Vec::new();
    render::allowlist(&list, args.format, super::terminal_width(), &mut buffer)?;
    if args.format == ListFormat::Csv {
        // CSV has no place for them.
        for note in &list.notes {
            eprintln!("preflight: note: {note}");
        }
    }
    deliver(destination, &buffer, 0)
}
