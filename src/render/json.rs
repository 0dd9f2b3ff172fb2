//! The JSON report (schema_version 1), pretty-printed, one document.

use std::io::{self, Write};

use crate::report::Report;

/// Writes the report as pretty JSON (schema 1): from the pieces its checks were made into as
/// they finished, when the run made them; the same bytes either way.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if let Some(pieces) = &report.pieces
        && pieces.len() == report.checks.len()
        && !pieces.is_empty()
    {
        return assemble(report, pieces, out);
    }
    let mut pieces = Pieces {
        buffer: Vec::with_capacity(Pieces::CAPACITY),
        out,
    };
    serde_json::to_writer_pretty(&mut pieces, report)?;
    pieces.write_all(b"\n")?;
    pieces.flush()
}

/// The report with its checks written from `pieces`: the rest of it as serde_json prints it
/// with no checks (`"checks": []` last), the array opened there, each piece on its line.
fn assemble(report: &Report, pieces: &[Vec<u8>], out: &mut dyn Write) -> io::Result<()> {
    const NO_CHECKS: &[u8] = b"[]\n}";
    let mut head = serde_json::to_vec_pretty(&report.without_checks())?;
    if !head.ends_with(NO_CHECKS) {
        return Err(io::Error::other(
            "the report's checks are not its last field",
        ));
    }
    head.truncate(head.len() - NO_CHECKS.len());
    head.push(b'[');
    out.write_all(&head)?;
    for (i, piece) in pieces.iter().enumerate() {
        out.write_all(if i == 0 {
            &b"\n    "[..]
        } else {
            &b",\n    "[..]
        })?;
        out.write_all(piece)?;
    }
    out.write_all(b"\n  ]\n}\n")?;
    out.flush()
}

/// A buffer for the thousands of pieces of a few bytes that serde_json writes a document in:
/// a piece of up to 16 bytes is copied byte by byte, not with a call to memcpy (with musl's
/// memcpy, such calls were a sixth of a 10,000-check run's time), and `out` gets the buffer
/// 64 KiB at a time.
struct Pieces<'a> {
    buffer: Vec<u8>,
    out: &'a mut dyn Write,
}

impl Pieces<'_> {
    const CAPACITY: usize = 64 * 1024;
}

impl Write for Pieces<'_> {
    fn write(&mut self, piece: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + piece.len() > Self::CAPACITY {
            self.out.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        match piece.len() {
            0..=16 => piece.iter().for_each(|&b| self.buffer.push(b)),
            _ => self.buffer.extend_from_slice(piece),
        }
        Ok(piece.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `n` bytes a call, as a pipe may.
    struct Trickle(Vec<u8>, usize);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_report_is_serde_jsons_own_document_byte_for_byte() {
        let mut report = crate::render::sample();
        // Enough checks that the buffer fills and empties many times over.
        let one = report.checks[0].clone();
        report.checks.extend(std::iter::repeat_n(one, 400));
        let expected = serde_json::to_string_pretty(&report).unwrap() + "\n";
        assert!(expected.len() > 3 * Pieces::CAPACITY, "{}", expected.len());
        let mut out = Trickle(Vec::new(), 1000);
        render(&report, &mut out).unwrap();
        assert_eq!(String::from_utf8(out.0).unwrap(), expected);
    }

    #[test]
    fn a_report_written_from_its_checks_pieces_is_the_same_document() {
        let mut report = crate::render::sample();
        // A message with a line break, a quote and a tab: escaped inside the pieces.
        if let Some(error) = report.checks[1].path.error.as_mut() {
            error.message = "line one\nline \"two\"\tend".into();
        }
        let expected = serde_json::to_string_pretty(&report).unwrap() + "\n";
        let pieces: Vec<Vec<u8>> = report
            .checks
            .iter()
            .map(crate::report::json_piece)
            .collect();
        report.pieces = Some(pieces.into());
        let mut out = Trickle(Vec::new(), 1000);
        render(&report, &mut out).unwrap();
        assert_eq!(String::from_utf8(out.0).unwrap(), expected);
        // Pieces that do not match the checks are not used.
        report.pieces = Some(Vec::new().into());
        let mut out = Vec::new();
        render(&report, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
