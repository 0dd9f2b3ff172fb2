//! `preflight profiles`: the built-in profiles, listed or shown.

use std::io::Write;

use preflight::cli::ProfilesAction;
use preflight::profile;

use super::{Failure, stdout, terminal_width};

pub(crate) fn profiles(action: Option<ProfilesAction>) -> Result<u8, Failure> {
    let mut out = stdout();
    match action {
        None => {
            let all = profile::builtins()?;
            let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in all {
                let name = format!("{:width$}  ", p.name);
                preflight::render::paragraph(&mut out, &name, &p.description, terminal_width())?;
            }
        }
        Some(ProfilesAction::Show { name }) => {
            let p = profile::load(&name)?;
            preflight::render::profile(&p, terminal_width(), &mut out)?;
        }
    }
    out.flush()?;
    Ok(0)
}
