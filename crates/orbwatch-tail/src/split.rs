//! Cutting the bytes of a followed file into lines as they arrive, in
//! pieces of any size, with bounded memory.
//!
//! Why not `orbwatch_source::LineReader`: it reads a stream to its end and
//! hands out a last line without a newline as complete. A followed file's
//! last line may still be being written, so here a line is only complete
//! at its `\n`; the rest is held (at most `max_line` bytes of it) until the
//! newline comes or the file is finished ([`LineSplitter::finish`]). The
//! other rules are `LineReader`'s: NUL bytes at the start of a line (the
//! padding a copytruncate rotation or a crash leaves) are skipped and
//! counted, a trailing `\r` is removed, and a line longer than the bound
//! is cut, flagged, and the rest of it skipped up to its newline.

/// One complete line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitLine {
    /// Line number in the file, from 1.
    pub number: u64,
    /// Byte offset of the line's first byte (after skipped NULs).
    pub offset: u64,
    /// Offset just after the line's `\n` (or the file's end for a last
    /// line flushed by [`LineSplitter::finish`]): where reading resumes.
    pub end: u64,
    /// Bytes consumed since the previous line's end (NULs and newline
    /// included).
    pub consumed: u64,
    pub bytes: Vec<u8>,
    /// Longer than the bound, cut to it.
    pub truncated: bool,
}

/// Line state of one file.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max_line: usize,
    /// Bytes fed so far: the file offset the next byte has.
    pos: u64,
    /// End of the last complete line: where a restart resumes.
    line_end: u64,
    /// Lines completed so far.
    lines: u64,
    /// The current line's bytes (at most `max_line`).
    partial: Vec<u8>,
    /// The current line has bytes (or NULs were skipped before it).
    started: bool,
    /// Offset of the current line's first byte after NULs.
    line_start: Option<u64>,
    /// The current line passed the bound: its rest is dropped.
    cut: bool,
    /// The current line began before reading started (a start at the
    /// end of a file in the middle of a line): it is consumed and counted
    /// but not handed out, since its start was never read.
    discard: bool,
    /// NUL bytes skipped so far.
    pub nul_bytes: u64,
}

impl LineSplitter {
    /// Start at `pos` (a line start), with `lines` lines before it.
    pub fn new(max_line: usize, pos: u64, lines: u64) -> Self {
        Self {
            max_line: max_line.max(1),
            pos,
            line_end: pos,
            lines,
            partial: Vec::new(),
            started: false,
            line_start: None,
            cut: false,
            discard: false,
            nul_bytes: 0,
        }
    }

    /// Start at `pos` in the middle of a line whose start is not read:
    /// the rest of that line is skipped.
    pub fn new_mid_line(max_line: usize, pos: u64, lines: u64) -> Self {
        let mut s = Self::new(max_line, pos, lines);
        s.discard = true;
        s.started = true;
        s.line_start = Some(pos);
        s
    }

    /// Bytes fed so far (the file offset of the next byte).
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Lines completed so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Is a line begun but not completed?
    #[cfg(test)]
    pub fn has_partial(&self) -> bool {
        self.started
    }

    /// Feed the next bytes of the file; complete lines are appended to
    /// `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SplitLine>) {
        while !chunk.is_empty() {
            if self.line_start.is_none() {
                let nuls = chunk.iter().take_while(|b| **b == 0).count();
                if nuls > 0 {
                    self.nul_bytes += nuls as u64;
                    self.pos += nuls as u64;
                    self.started = true;
                    chunk = &chunk[nuls..];
                    continue;
                }
                self.line_start = Some(self.pos);
                self.started = true;
            }
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    self.take(&chunk[..i]);
                    self.pos += (i + 1) as u64;
                    self.complete(out);
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.take(chunk);
                    self.pos += chunk.len() as u64;
                    chunk = &[];
                }
            }
        }
    }

    /// The file is finished (rotated away and quiet, deleted, or the end
    /// of a compressed file): a last line without newline is complete.
    pub fn finish(&mut self, out: &mut Vec<SplitLine>) {
        if self.started && (self.line_start.is_some() || !self.partial.is_empty()) {
            self.complete(out);
        } else {
            // Only NULs: nothing to hand out, but they are consumed.
            self.started = false;
            self.line_end = self.pos;
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        let room = self.max_line.saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.cut = true;
        }
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn complete(&mut self, out: &mut Vec<SplitLine>) {
        let mut bytes = std::mem::take(&mut self.partial);
        if bytes.last() == Some(&b'\r') && !self.cut {
            bytes.pop();
        }
        self.lines += 1;
        if std::mem::take(&mut self.discard) {
            self.line_end = self.pos;
            self.line_start = None;
            self.started = false;
            self.cut = false;
            return;
        }
        out.push(SplitLine {
            number: self.lines,
            offset: self.line_start.unwrap_or(self.pos),
            end: self.pos,
            consumed: self.pos - self.line_end,
            bytes,
            truncated: self.cut,
        });
        self.line_end = self.pos;
        self.line_start = None;
        self.started = false;
        self.cut = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Just;

    fn all(split: &mut LineSplitter, pieces: &[&[u8]]) -> Vec<SplitLine> {
        let mut out = Vec::new();
        for p in pieces {
            split.feed(p, &mut out);
        }
        out
    }

    #[test]
    fn lines_split_anywhere_are_the_same_lines() {
        let text = b"alpha\r\nbeta\n\ngamma delta\n";
        let whole = all(&mut LineSplitter::new(100, 0, 0), &[text]);
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].bytes, b"alpha");
        assert_eq!((whole[0].offset, whole[0].end), (0, 7));
        assert_eq!(whole[2].bytes, b"");
        assert_eq!((whole[3].number, whole[3].end), (4, text.len() as u64));
        for cut in 0..text.len() {
            let got = all(
                &mut LineSplitter::new(100, 0, 0),
                &[&text[..cut], &text[cut..]],
            );
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_partial_line_is_held_until_its_newline_or_the_end() {
        let mut s = LineSplitter::new(100, 10, 3);
        let got = all(&mut s, &[b"one\ntw"]);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].number, got[0].offset, got[0].end), (4, 10, 14));
        assert!(s.has_partial());
        let got = all(&mut s, &[b"o\n"]);
        assert_eq!(got[0].bytes, b"two");
        assert_eq!((got[0].offset, got[0].end), (14, 18));
        let mut out = Vec::new();
        s.feed(b"last", &mut out);
        assert!(out.is_empty());
        s.finish(&mut out);
        assert_eq!(out[0].bytes, b"last");
        assert_eq!(out[0].end, 22);
        assert!(!s.has_partial());
    }

    #[test]
    fn long_lines_are_cut_and_nul_padding_skipped() {
        let mut s = LineSplitter::new(4, 0, 0);
        let got = all(&mut s, &[b"abcdefgh", b"ij\n", b"\0\0\0ok\n\0\0"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].bytes, b"abcd");
        assert!(got[0].truncated);
        assert_eq!(got[0].end, 11);
        assert_eq!(got[1].bytes, b"ok");
        assert_eq!((got[1].offset, got[1].end, got[1].consumed), (14, 17, 6));
        assert_eq!(s.nul_bytes, 5);
        let mut out = Vec::new();
        s.finish(&mut out);
        assert!(out.is_empty(), "trailing NULs are not a line");
        assert_eq!(s.pos(), 19);
    }

    proptest::proptest! {
        /// Fed in any pieces and finished, the splitter gives the lines
        /// `hunt`'s `LineReader` reads from the same bytes (numbers,
        /// offsets, bytes), for lines within the bound.
        #[test]
        fn same_lines_as_the_batch_reader(
            data in proptest::collection::vec(
                proptest::prop_oneof![
                    Just(b'\n'), Just(b'\r'), Just(0u8), Just(b'a'), Just(b'z'), proptest::num::u8::ANY
                ],
                0..400,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let mut want = Vec::new();
            let mut r = orbwatch_source::LineReader::new(std::io::Cursor::new(data.clone()));
            while let Some(l) = r.next_line().unwrap() {
                want.push((l.number, l.offset, l.bytes.to_vec()));
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let mut s = LineSplitter::new(1 << 20, 0, 0);
            let mut out = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                s.feed(&data[at..c], &mut out);
                at = c;
            }
            s.finish(&mut out);
            let got: Vec<_> = out.into_iter().map(|l| (l.number, l.offset, l.bytes)).collect();
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(s.pos(), data.len() as u64);
        }
    }
}
