//! Input errors: everything that stops a run before anything is probed (exit code 2).

use std::path::PathBuf;

/// A problem with what the user asked for. Displayed as one line naming the flag, file, line
/// or variable to change.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A flag's value is wrong.
    #[error("{flag} {value}: {reason}")]
    Flag {
        /// The flag (`--timeout`).
        flag: &'static str,
        /// The value given (credentials cut).
        value: String,
        /// Why it is wrong, and what it takes.
        reason: String,
    },
    /// A flag cannot be used as given (with another, or by this subcommand).
    #[error("{flag}: {reason}")]
    Usage {
        /// The flag.
        flag: &'static str,
        /// Why not, and what to do instead.
        reason: String,
    },
    /// A target cannot be parsed.
    #[error("target `{target}`: {reason}")]
    Target {
        /// The target as given (credentials cut).
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No built-in profile has this name, and it is not a path.
    #[error(
        "unknown profile `{name}` (built-in profiles: {known}); a path to a profile file must end in .toml or contain a /"
    )]
    UnknownProfile {
        /// The name given.
        name: String,
        /// The built-in profiles, comma-separated.
        known: String,
    },
    /// A file cannot be read or used.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why, as a person would check it.
        reason: String,
    },
    /// A line of a file is wrong.
    #[error("{path}, line {line}: {reason}")]
    FileLine {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong on it.
        reason: String,
    },
    /// A profile's variables are not all given, or not allowed.
    #[error("profile {profile}: {reason}")]
    Variable {
        /// The profile.
        profile: String,
        /// Which variable, and what it takes.
        reason: String,
    },
    /// No target, profile or kong.conf was given.
    #[error(
        "nothing to check: give a target (tcp://HOST:PORT, tls://HOST:PORT, dns://HOST), --profile NAME or --kong-conf FILE"
    )]
    NothingToCheck,
    /// Profiles and a kong.conf were given, but none of their endpoints is left to run.
    #[error("nothing to check: {0}")]
    NothingSelected(String),
}

impl InputError {
    /// A wrong flag value, and why.
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
