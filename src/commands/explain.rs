//! `preflight explain`: Kong's log, read for its clustering errors.

use std::io::{self, Write};

use preflight::cli::ExplainFormat;
use preflight::error::{InputError, io_text};
use preflight::render;

use super::{Failure, stdout};

/// Explains the clustering errors of Kong's log.
pub(crate) fn explain(args: &preflight::cli::ExplainArgs) -> Result<u8, Failure> {
    let log = preflight::explain::open(&args.file)?;
    let proxy = match &args.kong_conf {
        Some(conf) => preflight::kongconf::KongConf::load(conf, |_| None)?.proxy_address(),
        None => None,
    };
    let conf = args.kong_conf.as_ref().map(|p| p.display().to_string());
    let found = preflight::explain::explain_with(log, conf.as_deref(), proxy.as_deref()).map_err(
        |err| InputError::File {
            path: args.file.clone(),
            reason: format!("cannot read the log: {}", io_text(&err)),
        },
    )?;
    let mut out = stdout();
    match args.format {
        ExplainFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &found).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        ExplainFormat::Human => render::explain(&found, super::terminal_width(), &mut out)?,
    }
    out.flush()?;
    Ok(0)
}
