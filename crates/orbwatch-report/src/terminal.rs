//! Text for people's terminals: control characters escaped.
//!
//! Why: log lines, file names and feed values are written by whoever
//! controls the logs. Printed as they are, an ESC, BEL or NUL (or a C1
//! control such as U+009B) lets a log move the cursor, retitle the window
//! or hide text in the analyst's terminal. Everything made for a terminal
//! (the coverage summary, the findings table) goes through
//! [`TerminalSafe`], which writes each control character as a visible
//! escape (`\x1b`, `\u{9b}`) and keeps newlines and tabs.

use std::borrow::Cow;
use std::io::{self, Write};

/// `s` with control characters other than newline and tab written as
/// `\xNN` (C0 and DEL) or `\u{NN}` (C1).
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            let n = c as u32;
            if n < 0x80 {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// A writer that escapes control characters (see [`escape_controls`]) in
/// what passes through it. Bytes that are not UTF-8 are written as `\xNN`.
pub struct TerminalSafe<W>(pub W);

impl<W: Write> Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        for chunk in buf.utf8_chunks() {
            self.0
                .write_all(escape_controls(chunk.valid()).as_bytes())?;
            for b in chunk.invalid() {
                write!(self.0, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_text_is_kept() {
        assert_eq!(escape_controls("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            escape_controls("a\u{1b}[31mred\u{7}\0\r\u{9b}2J é"),
            "a\\x1b[31mred\\x07\\x00\\x0d\\u{9b}2J é"
        );
        let mut out = Vec::new();
        TerminalSafe(&mut out)
            .write_all(b"x\x1b]0;title\x07 \xff\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "x\\x1b]0;title\\x07 \\xff\n"
        );
    }
}
