//! The files the user names for a report (`--output`, `--allowlist-failed`): opened before
//! anything is probed, so a destination that cannot be written is exit 2 with nothing probed.
//!
//! A regular file (or a new one) is replaced atomically: the report goes into a temporary file
//! beside it, created with `O_CREAT|O_EXCL` under an unpredictable name, which is renamed over
//! the target and keeps the mode and owner of the file it replaces. Anything else that exists
//! (`/dev/null`, `/dev/stdout`, a FIFO, a socket) is written in place: preflight never renames
//! over what is not a regular file, so running as root cannot turn `/dev/null` into a file.
//! A symbolic link is written through to the file it points to, unless it stands in a shared
//! sticky directory (`/tmp`) and belongs to another user: that is how a symlink attack looks,
//! and the kernel's own `fs.protected_symlinks` refuses the same.

use std::fs::{self, File, Metadata, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{InputError, io_text};

/// Where a report goes, checked and opened.
#[derive(Debug)]
pub struct Destination {
    flag: &'static str,
    /// The path as the user gave it: errors name it.
    path: PathBuf,
    how: How,
}

#[derive(Debug)]
enum How {
    /// Replace (or create) the regular file `target` by renaming `temp` over it.
    Replace {
        target: PathBuf,
        temp: tempfile::NamedTempFile,
        /// The file being replaced: its mode and owner carry over.
        replaced: Option<Box<Metadata>>,
    },
    /// Write into what is there: a device, a FIFO, a socket.
    InPlace(File),
}

impl Destination {
    /// Checks that `path` can take the report and opens it (or a temporary file beside it).
    pub fn open(path: &Path, flag: &'static str) -> Result<Destination, InputError> {
        let bad = |reason: String| InputError::File {
            path: path.to_path_buf(),
            reason: format!("{flag} cannot be written: {reason}"),
        };
        let (target, found) = match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                refuse_foreign_link(path, &meta).map_err(bad)?;
                let dangling = || bad("it is a symbolic link to a file that does not exist".into());
                // The kernel follows the link (and /proc's magic links such as /dev/stdout's);
                // a regular file is then replaced where it really is.
                let meta = fs::metadata(path).map_err(|_| dangling())?;
                let target = match meta.is_file() {
                    true => fs::canonicalize(path).map_err(|_| dangling())?,
                    false => path.to_path_buf(),
                };
                (target, Some(meta))
            }
            Ok(meta) => (path.to_path_buf(), Some(meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (path.to_path_buf(), None),
            Err(e) => return Err(bad(io_text(&e))),
        };
        let how = match found {
            Some(meta) if meta.is_dir() => return Err(bad("it is a directory".into())),
            Some(meta) if !meta.is_file() => How::InPlace(open_in_place(&target).map_err(bad)?),
            replaced => {
                let replaced = replaced.map(Box::new);
                let dir = target
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                // A new file gets 0666 less the umask, as any file the shell creates; a
                // replaced one its old mode once written.
                let temp = tempfile::Builder::new()
                    .prefix(".preflight-")
                    .suffix(".tmp")
                    .permissions(Permissions::from_mode(0o666))
                    .tempfile_in(dir)
                    .map_err(|e| bad(io_text(&e)))?;
                How::Replace {
                    target,
                    temp,
                    replaced,
                }
            }
        };
        Ok(Destination {
            flag,
            path: path.to_path_buf(),
            how,
        })
    }

    /// Writes `bytes` whole: into the temporary file, then renamed over the target; or in place.
    pub fn write(self, bytes: &[u8]) -> Result<(), InputError> {
        self.stream(|out| out.write_all(bytes))
    }

    /// Writes what `produce` writes, as it writes it (through a 64 KiB buffer): into the
    /// temporary file, renamed over the target once `produce` is done; or in place.
    pub fn stream(
        self,
        produce: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), InputError> {
        let bad = |reason: String| InputError::File {
            path: self.path.clone(),
            reason: format!("{} cannot be written: {reason}", self.flag),
        };
        match self.how {
            How::InPlace(file) => {
                let mut out = io::BufWriter::with_capacity(64 << 10, file);
                produce(&mut out)
                    .and_then(|()| out.flush())
                    .map_err(|e| bad(io_text(&e)))
            }
            How::Replace {
                target,
                mut temp,
                replaced,
            } => {
                {
                    let mut out = io::BufWriter::with_capacity(64 << 10, temp.as_file_mut());
                    produce(&mut out)
                        .and_then(|()| out.flush())
                        .map_err(|e| bad(io_text(&e)))?;
                }
                temp.as_file().sync_all().map_err(|e| bad(io_text(&e)))?;
                if let Some(old) = &replaced {
                    keep_owner_and_mode(temp.as_file(), old).map_err(|e| bad(io_text(&e)))?;
                }
                // On failure the temporary file is removed when `persist`'s error drops.
                temp.persist(&target).map_err(|e| bad(io_text(&e.error)))?;
                Ok(())
            }
        }
    }
}

/// Refuses a link that another user planted in a shared sticky directory (the rule of the
/// kernel's `fs.protected_symlinks`: follow only links owned by us or by the directory's owner).
fn refuse_foreign_link(path: &Path, link: &Metadata) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(dir) = fs::metadata(dir) else {
        return Ok(());
    };
    let shared = dir.mode() & 0o1002 == 0o1002;
    let me = rustix::process::geteuid().as_raw();
    if shared && link.uid() != me && link.uid() != dir.uid() {
        return Err(format!(
            "it is a symbolic link owned by another user (uid {}) in a shared directory; preflight does not follow it",
            link.uid()
        ));
    }
    Ok(())
}

/// Opens an existing non-regular file for writing. A FIFO is opened without blocking, so one
/// that nobody reads is an error now rather than a hang, then set back to blocking writes.
fn open_in_place(path: &Path) -> Result<File, String> {
    let file = fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::NXIO.raw_os_error() => {
                "it is a FIFO that no process is reading".to_string()
            }
            _ => io_text(&e),
        })?;
    rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty()).map_err(|e| e.to_string())?;
    Ok(file)
}

/// Gives the new file the replaced file's mode, and its owner when we may (as root).
fn keep_owner_and_mode(file: &File, old: &Metadata) -> io::Result<()> {
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()))?;
    }
    file.set_permissions(Permissions::from_mode(old.mode() & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_regular_file_is_replaced_keeping_its_mode_and_no_temporary_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        Destination::open(&path, "--output")
            .unwrap()
            .write(b"new")
            .unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        Destination::open(&link, "--output")
            .unwrap()
            .write(b"new")
            .unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn a_dangling_link_and_a_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        let err = Destination::open(&link, "--output")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("symbolic link to a file that does not exist"),
            "{err}"
        );
        let err = Destination::open(dir.path(), "--output")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
    }
}
