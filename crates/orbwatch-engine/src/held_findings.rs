//! IOC findings held while the behaviour detectors replay.
//!
//! A hunt makes its IOC findings when the sweep ends and hands them to the
//! sink only after the detectors have replayed every observation, because
//! ORB likelihood joins both views. Held in memory through the replay,
//! they made peak memory grow with the input (one finding per indicator,
//! peer and hour-apart session: 38,663 for 1 GB of the sshd bench corpus,
//! 115,995 for 3 GB). Beyond a count they wait in an anonymous temporary
//! file as JSON lines, and are read back one at a time for the sink, in
//! the same order. The file disappears with the process, even on `kill -9`.

use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use orbwatch_detect::Finding;

use crate::EngineError;

/// IOC findings, in output order, in memory or in a temporary file.
pub(crate) enum HeldFindings {
    Memory(Vec<Finding>),
    Disk { file: std::fs::File, count: usize },
}

impl HeldFindings {
    /// Keep `findings` in memory if there are at most `in_memory`, else
    /// write them to a temporary file in `dir`. If the file cannot be
    /// written (a full disk), they stay in memory and the returned note
    /// says so: holding them costs memory, losing them would cost
    /// findings.
    pub(crate) fn hold(
        findings: Vec<Finding>,
        in_memory: usize,
        dir: Option<&Path>,
    ) -> (Self, Option<String>) {
        if findings.len() <= in_memory {
            return (Self::Memory(findings), None);
        }
        match write_out(&findings, dir) {
            Ok(file) => {
                tracing::info!(
                    "{} IOC findings wait on disk during the behaviour replay",
                    findings.len()
                );
                (
                    Self::Disk {
                        file,
                        count: findings.len(),
                    },
                    None,
                )
            }
            Err(e) => {
                let where_ = dir.map_or_else(
                    || std::env::temp_dir().display().to_string(),
                    |d| d.display().to_string(),
                );
                let note = format!(
                    "{} IOC findings were kept in memory during the behaviour replay: writing them to a temporary file in {where_} failed ({e})",
                    findings.len()
                );
                tracing::warn!("{note}");
                (Self::Memory(findings), Some(note))
            }
        }
    }

    /// How many findings are held.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Memory(v) => v.len(),
            Self::Disk { count, .. } => *count,
        }
    }

    /// The findings, in the order they were held.
    pub(crate) fn into_iter(
        self,
    ) -> Result<Box<dyn Iterator<Item = Result<Finding, EngineError>>>, EngineError> {
        match self {
            Self::Memory(v) => Ok(Box::new(v.into_iter().map(Ok))),
            Self::Disk { mut file, count } => {
                file.seek(SeekFrom::Start(0)).map_err(|e| read_error(&e))?;
                // One line at a time into a reused buffer, then parsed from
                // the slice: serde_json's reader interface goes byte by
                // byte through `Read` and took 0.47 s for the 35,668
                // findings (46 MB) of the 1 GB bench hunt, on one thread
                // while the other core waited.
                let mut reader = BufReader::with_capacity(256 * 1024, file);
                let mut line = Vec::new();
                let mut read = 0usize;
                let mut failed = false;
                Ok(Box::new(std::iter::from_fn(move || {
                    if failed || read == count {
                        return None;
                    }
                    line.clear();
                    let parsed = match reader.read_until(b'\n', &mut line) {
                        Ok(0) => Err("the file ends early".to_string()),
                        Ok(_) => {
                            serde_json::from_slice::<Finding>(&line).map_err(|e| e.to_string())
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    read += 1;
                    match parsed {
                        Ok(f) => Some(Ok(f)),
                        Err(e) => {
                            failed = true;
                            Some(Err(EngineError::Spill(format!(
                                "reading back IOC finding {read} of {count} from the hunt's temporary file failed: {e}"
                            ))))
                        }
                    }
                })))
            }
        }
    }
}

fn write_out(findings: &[Finding], dir: Option<&Path>) -> std::io::Result<std::fs::File> {
    let file = match dir {
        Some(d) => tempfile::tempfile_in(d)?,
        None => tempfile::tempfile()?,
    };
    let mut w = BufWriter::with_capacity(256 * 1024, file);
    for f in findings {
        serde_json::to_writer(&mut w, f)?;
        w.write_all(b"\n")?;
    }
    w.into_inner().map_err(|e| e.into_error())
}

fn read_error(e: &std::io::Error) -> EngineError {
    EngineError::Spill(format!(
        "reading back the IOC findings from the hunt's temporary file failed: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(i: u64) -> Finding {
        let mut f: Finding = serde_json::from_value(serde_json::json!({
            "id": format!("f{i}"),
            "kind": "ioc_match",
            "first_seen": "2021-03-02T00:00:00.123456789Z",
            "last_seen": null,
            "count": i,
            "src_ip": "192.0.2.1",
            "dst_ip": null,
            "evidence": [],
            "evidence_total": 0,
        }))
        .unwrap();
        f.details = Some(serde_json::json!({"n": i, "x": 0.1}));
        f
    }

    #[test]
    fn findings_come_back_from_disk_in_order_and_unchanged() {
        let v: Vec<Finding> = (0..50).map(finding).collect();
        let (held, note) = HeldFindings::hold(v.clone(), 10, None);
        assert!(note.is_none());
        assert!(matches!(held, HeldFindings::Disk { count: 50, .. }));
        let back: Vec<Finding> = held.into_iter().unwrap().map(Result::unwrap).collect();
        assert_eq!(back, v);
    }

    /// A temporary file cut short (a full disk that lied, another
    /// process) is an error that says which finding, never a quiet end.
    #[test]
    fn a_file_cut_short_is_an_error_after_the_findings_it_holds() {
        let v: Vec<Finding> = (0..50).map(finding).collect();
        let whole: Vec<u8> = v
            .iter()
            .flat_map(|f| {
                let mut l = serde_json::to_vec(f).unwrap();
                l.push(b'\n');
                l
            })
            .collect();
        let after_20_lines = whole
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(19)
            .unwrap()
            .0 as u64
            + 1;
        // Mid-line, and exactly at a line's end (where a reader that
        // stops at the end of the file would see nothing wrong).
        for cut in [whole.len() as u64 / 2 + 3, after_20_lines] {
            let (held, _) = HeldFindings::hold(v.clone(), 10, None);
            let HeldFindings::Disk { file, count } = held else {
                panic!("not on disk")
            };
            assert_eq!(file.metadata().unwrap().len(), whole.len() as u64);
            file.set_len(cut).unwrap();
            let back: Vec<Result<Finding, EngineError>> = HeldFindings::Disk { file, count }
                .into_iter()
                .unwrap()
                .collect();
            let ok: Vec<&Finding> = back.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert!(!ok.is_empty() && ok.len() < 50, "{} read", ok.len());
            assert_eq!(ok, v.iter().take(ok.len()).collect::<Vec<_>>());
            assert_eq!(back.len(), ok.len() + 1, "one error, then the end");
            let err = back.last().unwrap().as_ref().unwrap_err().to_string();
            assert!(
                err.contains(&format!("IOC finding {} of 50", ok.len() + 1)),
                "{err}"
            );
        }
    }

    #[test]
    fn few_findings_stay_in_memory() {
        let v: Vec<Finding> = (0..3).map(finding).collect();
        let (held, _) = HeldFindings::hold(v, 3, None);
        assert!(matches!(held, HeldFindings::Memory(_)));
    }

    #[test]
    fn an_unwritable_directory_keeps_them_in_memory_and_says_so() {
        let v: Vec<Finding> = (0..5).map(finding).collect();
        let (held, note) =
            HeldFindings::hold(v.clone(), 0, Some(Path::new("/nonexistent/orbwatch")));
        assert!(note.unwrap().contains("/nonexistent/orbwatch"));
        let back: Vec<Finding> = held.into_iter().unwrap().map(Result::unwrap).collect();
        assert_eq!(back, v);
    }
}
