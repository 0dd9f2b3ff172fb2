//! Input errors: everything that stops a run before anything is probed (exit code 2).

use std::path::PathBuf;

/// A problem with what the user asked for. Displayed as one line naming the flag, file, line
/// or variable to change.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{flag} {value}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("{flag}: {reason}")]
    Usage { flag: &'static str, reason: String },
    #[error("target `{target}`: {reason}")]
    Target { target: String, reason: String },
    #[error(
        "unknown profile `{name}` (built-in profiles: {known}); a path to a profile file must end in .toml or contain a /"
    )]
    UnknownProfile { name: String, known: String },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path}, line {line}: {reason}")]
    FileLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("profile {profile}: {reason}")]
    Variable { profile: String, reason: String },
    #[error(
        "nothing to check: give a target (tcp://HOST:PORT, tls://HOST:PORT, dns://HOST), --profile NAME or --kong-conf FILE"
    )]
    NothingToCheck,
    /// Profiles and a kong.conf were given, but none of their endpoints is left to run.
    #[error("nothing to check: {0}")]
    NothingSelected(String),
}

impl InputError {
    pub fn flag(flag: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        InputError::Flag {
            flag,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// An `io::Error` as a person reads it: without Rust's ` (os error 13)` tail.
pub fn io_text(err: &std::io::Error) -> String {
    without_os_error(&err.to_string())
}

/// `text` without a trailing ` (os error N)`.
pub fn without_os_error(text: &str) -> String {
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text.to_string(),
    }
}
