//! `preflight profiles`: the built-in profiles, listed or shown.

use std::io::Write;

use preflight::cli::ProfilesAction;
use preflight::profile;

use super::{Failure, stdout};

pub(crate) fn profiles(action: Option<ProfilesAction>) -> Result<u8, Failure> {
    let mut out = stdout();
    match action {
        None => {
            let all = profile::builtins()?;
            let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in all {
                writeln!(out, "{:width$}  {}", p.name, p.description)?;
            }
        }
        Some(ProfilesAction::Show { name }) => {
            let p = profile::load(&name)?;
            preflight::render::profile(&p, &mut out)?;
        }
    }
    out.flush()?;
    Ok(0)
}
