//! The seam between where records come from and the engine.
//!
//! The engine pulls: it asks a [`RecordSource`] for the next record and
//! decodes, matches and observes it before asking again, so a slow
//! consumer (detectors, a findings sink) slows the source down instead of
//! buffering without bound. Files and line-aligned chunks of files are
//! sources today ([`LineReader`] over any `BufRead`); a followed file, a
//! syslog socket or a Kafka partition are sources that block in
//! `next_record` until a record arrives, and end with `Ok(None)`.

use std::io::{self, BufRead};

use orbwatch_source::{Line, LineReader};

/// Records, one at a time, with where each one is.
///
/// Only `next_record` is required. A record's `number` is its line (or
/// record) number in the input, counted from 1, and `offset` its byte
/// offset: both end up in the evidence of findings.
pub trait RecordSource {
    /// The next record, `Ok(None)` at the end of the input. An error ends
    /// the input; the records before it have been handled and count.
    fn next_record(&mut self) -> io::Result<Option<Line<'_>>>;

    /// Bytes consumed so far (for progress and coverage). Sources that do
    /// not count bytes may leave it at 0.
    fn position(&self) -> u64 {
        0
    }

    /// NUL bytes the source skipped between records (padding). Sources
    /// without padding leave it at 0.
    fn nul_bytes(&self) -> u64 {
        0
    }
}

impl<R: BufRead> RecordSource for LineReader<R> {
    fn next_record(&mut self) -> io::Result<Option<Line<'_>>> {
        self.next_line()
    }

    fn position(&self) -> u64 {
        LineReader::position(self)
    }

    fn nul_bytes(&self) -> u64 {
        LineReader::nul_bytes(self)
    }
}

impl<S: RecordSource + ?Sized> RecordSource for &mut S {
    fn next_record(&mut self) -> io::Result<Option<Line<'_>>> {
        (**self).next_record()
    }

    fn position(&self) -> u64 {
        (**self).position()
    }

    fn nul_bytes(&self) -> u64 {
        (**self).nul_bytes()
    }
}
