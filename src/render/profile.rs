//! `preflight profiles show NAME`: a profile's variables, with their rules, and its endpoints.

use std::io::{self, Write};

use super::human::paragraph;
use crate::profile::Profile;

/// Writes a profile, `width` columns wide: its variables and its endpoints.
pub fn render(profile: &Profile, width: usize, out: &mut dyn Write) -> io::Result<()> {
    paragraph(
        out,
        &format!("{}: ", profile.name),
        &profile.description,
        width,
    )?;
    for source in &profile.source {
        paragraph(out, "  source: ", source, width)?;
    }
    writeln!(out, "\nvariables (--set NAME=VALUE):")?;
    if profile.variables.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for var in &profile.variables {
        let mut rules = Vec::new();
        if var.required {
            rules.push("required".to_string());
        } else if let Some(default) = &var.default {
            rules.push(format!("default {default}"));
        } else {
            rules.push("optional".to_string());
        }
        if !var.allowed.is_empty() {
            rules.push(format!("allowed: {}", var.allowed.join(", ")));
        }
        if let Some(pattern) = &var.pattern {
            rules.push(format!("pattern: {pattern}"));
        }
        writeln!(out, "  {}  [{}]", var.name, rules.join("; "))?;
        paragraph(out, "      ", &var.help, width)?;
    }
    writeln!(out, "\nendpoints:")?;
    let key_width = profile
        .endpoints
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(0);
    for ep in &profile.endpoints {
        let port = ep.port.map_or_else(String::new, |p| format!(":{p}"));
        let weight = if ep.required { "required" } else { "optional" };
        writeln!(
            out,
            "  {:key_width$}  {:13}  {}://{}{port}  ({weight})",
            ep.key,
            ep.role.as_str(),
            ep.probe,
            ep.host.as_str(),
        )?;
        let under = format!("  {:key_width$}  ", "");
        paragraph(out, &under, &ep.name, width)?;
        paragraph(out, &under, &ep.note, width)?;
    }
    Ok(())
}
