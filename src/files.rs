//! Reading files the user names (profiles, CA bundles) with a size cap, so that a wrong path
//! such as /dev/zero is an error, not a hang.

use std::io::{self, Read};
use std::path::Path;

/// The largest input file read: far above any profile or CA bundle.
pub(crate) const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads `path` whole, refusing anything larger than `MAX_INPUT_BYTES`.
pub(crate) fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_INPUT_BYTES >> 20),
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_input_is_refused() {
        let err = read_capped(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
