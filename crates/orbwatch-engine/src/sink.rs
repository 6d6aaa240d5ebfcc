//! The seam between the engine and where findings go.
//!
//! The engine pushes: it calls [`FindingsSink::finding`] for every finding,
//! most serious and earliest first for a hunt (as a hunt's findings are
//! complete only at its end), as they close for a live run. Only
//! `finding` is required; `coverage` and `finish` have no-op defaults. A
//! sink returns `Ok(false)` to stop receiving findings (a closed pipe, a
//! limit reached); the engine then stops calling it, which is not an
//! error.

use std::io::{self, Write};

use orbwatch_detect::{Coverage, Finding};

/// Receives findings from the engine.
pub trait FindingsSink {
    /// One finding. `Ok(false)` asks for no more.
    fn finding(&mut self, finding: &Finding) -> io::Result<bool>;

    /// The run's coverage, once, after the last finding of a hunt.
    fn coverage(&mut self, _coverage: &Coverage) -> io::Result<()> {
        Ok(())
    }

    /// The run is over: flush what is buffered.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FindingsSink for Vec<Finding> {
    fn finding(&mut self, finding: &Finding) -> io::Result<bool> {
        self.push(finding.clone());
        Ok(true)
    }
}

impl<S: FindingsSink + ?Sized> FindingsSink for &mut S {
    fn finding(&mut self, finding: &Finding) -> io::Result<bool> {
        (**self).finding(finding)
    }
    fn coverage(&mut self, coverage: &Coverage) -> io::Result<()> {
        (**self).coverage(coverage)
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

/// Findings as JSON lines (the `--format jsonl` contract), one object per
/// line, to any writer. A closed pipe stops the sink quietly.
pub struct JsonLinesSink<W: Write> {
    out: W,
}

impl<W: Write> JsonLinesSink<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// The writer back (for a caller that flushes or renames it).
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> FindingsSink for JsonLinesSink<W> {
    fn finding(&mut self, finding: &Finding) -> io::Result<bool> {
        let r = serde_json::to_writer(&mut self.out, finding)
            .map_err(io::Error::other)
            .and_then(|_| self.out.write_all(b"\n"));
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            r => r.map(|_| true),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        match self.out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            r => r,
        }
    }
}
