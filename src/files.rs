//! Reading files the user or a kong.conf names (profiles, CA bundles, keys, kong.conf, target
//! lists, logs, reports): opened without blocking, refused unless they are regular files (or
//! standard input), read with a size cap, and when they cannot be read, the reason said as a
//! person would check it: missing, not allowed for this user, a loop of links, a directory, a
//! named pipe. So no path (a FIFO with no writer, /dev/zero, /dev/tty) can hang a run.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::error::io_text;
use rustix::io::Errno;

/// The largest input file read whole: far above any profile, kong.conf or CA bundle.
pub(crate) const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Why a file could not be read, in words that say what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Nothing at the path; `parent` when its directory is missing too.
    Missing {
        parent: Option<PathBuf>,
    },
    /// This user may not read it, or may not enter `directory` on the way to it.
    Denied {
        user: String,
        directory: Option<PathBuf>,
    },
    /// A loop of symbolic links (or too many in a row).
    Loop,
    Directory,
    /// A named pipe, socket or device: reading it could wait for ever or never end.
    NotAFile(&'static str),
    TooLarge(u64),
    /// Anything else the system said.
    Other(String),
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::Missing { parent: None } => f.write_str("it does not exist"),
            Unreadable::Missing {
                parent: Some(parent),
            } => write!(
                f,
                "it does not exist (nor does its directory {})",
                parent.display()
            ),
            Unreadable::Denied {
                user,
                directory: None,
            } => write!(f, "permission denied: {user} may not read it"),
            Unreadable::Denied {
                user,
                directory: Some(directory),
            } => write!(
                f,
                "permission denied: {user} may not enter the directory {}",
                directory.display()
            ),
            Unreadable::Loop => f.write_str("it is a loop of symbolic links"),
            Unreadable::Directory => f.write_str("it is a directory, not a file"),
            Unreadable::NotAFile(what) => write!(
                f,
                "it is {what}, not a regular file (to read standard input, give -)"
            ),
            Unreadable::TooLarge(limit) => write!(f, "it is larger than {} MiB", limit >> 20),
            Unreadable::Other(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for Unreadable {}

/// Opens `path` for reading without waiting on it (`O_NONBLOCK`: a FIFO with no writer opens
/// at once) and refuses anything but a regular file or `/dev/null`, or, when the path names
/// standard input or another descriptor already open (`/dev/stdin`, `/dev/fd/N`), a pipe or
/// a terminal. The file returned blocks again, as a file read whole should.
pub(crate) fn open(path: &Path) -> Result<File, Unreadable> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| why(path, e))?;
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| Unreadable::Other(io_text(&e)))?;
    let kind = meta.file_type();
    let inherited = names_a_descriptor(path);
    let allowed = kind.is_file()
        || (kind.is_char_device() && is_dev_null(&meta))
        || (inherited && (kind.is_fifo() || kind.is_char_device()));
    if !allowed {
        return Err(match kind {
            k if k.is_dir() => Unreadable::Directory,
            k if k.is_fifo() => Unreadable::NotAFile("a named pipe (FIFO)"),
            k if k.is_socket() => Unreadable::NotAFile("a socket"),
            k if k.is_block_device() => Unreadable::NotAFile("a block device"),
            _ => Unreadable::NotAFile("a character device"),
        });
    }
    rustix::fs::fcntl_setfl(&file, OFlags::empty())
        .map_err(|e| Unreadable::Other(io_text(&e.into())))?;
    Ok(file)
}

/// Reads `path` whole, refusing anything larger than `MAX_INPUT_BYTES`.
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>, Unreadable> {
    let mut bytes = Vec::new();
    open(path)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Unreadable::Other(io_text(&e)))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Unreadable::TooLarge(MAX_INPUT_BYTES));
    }
    Ok(bytes)
}

/// Reads `path` as UTF-8 text; errors name the file and say that `what` (`the profile`,
/// `--kong-conf`) could not be read.
pub(crate) fn read_text(path: &Path, what: &str) -> Result<String, crate::error::InputError> {
    let bad = |reason: String| crate::error::InputError::File {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = read_capped(path).map_err(|e| bad(format!("cannot read {what}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| bad(format!("{what} is not UTF-8 text")))?;
    // Editors on Windows start UTF-8 files with a byte-order mark; it is not part of the text.
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// `-` as the path of standard input's device.
pub(crate) fn stdin_or(path: &Path) -> &Path {
    match path.as_os_str() == "-" {
        true => Path::new("/dev/stdin"),
        false => path,
    }
}

/// Whether `path` names a descriptor the process already holds (standard input, or a shell's
/// process substitution `<(…)`), which may be a pipe: a FIFO in the file system may not.
fn names_a_descriptor(path: &Path) -> bool {
    let text = path.as_os_str().as_encoded_bytes();
    text == b"/dev/stdin" || text.starts_with(b"/dev/fd/") || text.starts_with(b"/proc/self/fd/")
}

fn is_dev_null(meta: &std::fs::Metadata) -> bool {
    // /dev/null is the character device 1:3 on Linux.
    let rdev = meta.rdev();
    rustix::fs::major(rdev) == 1 && rustix::fs::minor(rdev) == 3
}

/// The reason an open failed.
fn why(path: &Path, errno: Errno) -> Unreadable {
    match errno {
        Errno::NOENT | Errno::NOTDIR => Unreadable::Missing {
            parent: path
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && !d.exists())
                .map(Path::to_path_buf),
        },
        Errno::ACCESS | Errno::PERM => Unreadable::Denied {
            user: user(),
            directory: closed_directory(path),
        },
        Errno::LOOP => Unreadable::Loop,
        Errno::ISDIR => Unreadable::Directory,
        // A UNIX socket cannot be opened.
        Errno::NXIO => Unreadable::NotAFile("a socket"),
        other => Unreadable::Other(io_text(&other.into())),
    }
}

/// The first directory on the way to `path` that this user may not enter, if any.
fn closed_directory(path: &Path) -> Option<PathBuf> {
    let absolute = match path.is_absolute() {
        true => path.to_path_buf(),
        false => std::env::current_dir().ok()?.join(path),
    };
    let mut ancestors: Vec<&Path> = absolute.ancestors().skip(1).collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .find(|dir| rustix::fs::access(*dir, rustix::fs::Access::EXEC_OK).is_err())
        .map(Path::to_path_buf)
}

/// The user this process reads files as: `user kong (uid 999)`.
fn user() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid).ok().flatten() {
        Some(user) => format!("user {} (uid {uid})", user.name),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_a_device_and_a_directory_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::RUSR | Mode::WUSR).unwrap();
        assert_eq!(
            read_capped(&fifo).unwrap_err(),
            Unreadable::NotAFile("a named pipe (FIFO)")
        );
        assert_eq!(
            read_capped(Path::new("/dev/zero")).unwrap_err(),
            Unreadable::NotAFile("a character device")
        );
        assert_eq!(read_capped(dir.path()).unwrap_err(), Unreadable::Directory);
        assert_eq!(read_capped(Path::new("/dev/null")).unwrap(), b"");
    }

    #[test]
    fn a_missing_file_and_a_link_loop_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::os::unix::fs::symlink(dir.path().join("b"), &a).unwrap();
        std::os::unix::fs::symlink(&a, dir.path().join("b")).unwrap();
        assert_eq!(read_capped(&a).unwrap_err(), Unreadable::Loop);
        let gone = dir.path().join("nowhere/ca.pem");
        assert_eq!(
            read_capped(&gone).unwrap_err().to_string(),
            format!(
                "it does not exist (nor does its directory {})",
                dir.path().join("nowhere").display()
            )
        );
    }

    #[test]
    fn a_file_over_the_cap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_INPUT_BYTES + 1)
            .unwrap();
        assert_eq!(
            read_capped(&big).unwrap_err(),
            Unreadable::TooLarge(MAX_INPUT_BYTES)
        );
    }
}
