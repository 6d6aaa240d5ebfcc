//! Expanding what the user named (files, directories, `-`) into an ordered
//! list of inputs.
//!
//! Directories are walked recursively with `--include`/`--exclude` globs.
//! Rotated sets (`auth.log`, `auth.log.1`, `auth.log.2.gz`) are ordered
//! oldest first, so that time flows forward through a set and syslog lines
//! without a year are dated consistently.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// `None` for standard input.
    pub path: Option<PathBuf>,
    /// How the input is named in output: the path as given, or `-`.
    pub display: String,
    /// Size on disk (compressed), 0 for stdin.
    pub size: u64,
    /// Modification time, used to infer the year of syslog lines.
    pub modified: Option<SystemTime>,
}

/// A path that could not be used, with the reason; reported, not fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub path: String,
    pub reason: String,
    /// `true`: the path could not be read (an input error, exit 2).
    /// `false`: it was deliberately not read — a FIFO, socket or device
    /// found while walking a directory, which reading could block on or
    /// never finish — and is named in the coverage so that it is not a
    /// silent skip.
    pub error: bool,
}

/// Glob filters applied to files found inside directories (files named
/// explicitly are always read).
#[derive(Debug, Default)]
pub struct Filters {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Filters {
    /// Build filters; a glob matches the file name or the path relative to
    /// the directory walked (`*.gz`, `**/zeek/*.log`).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        fn set(globs: &[String]) -> Result<Option<GlobSet>, String> {
            if globs.is_empty() {
                return Ok(None);
            }
            let mut b = GlobSetBuilder::new();
            for g in globs {
                b.add(Glob::new(g).map_err(|e| format!("bad glob `{g}`: {e}"))?);
            }
            b.build().map(Some).map_err(|e| e.to_string())
        }
        Ok(Self {
            include: set(include)?,
            exclude: set(exclude)?,
        })
    }

    fn accepts(&self, rel: &Path) -> bool {
        let name = rel.file_name().map(Path::new).unwrap_or(rel);
        let hit = |s: &GlobSet| s.is_match(rel) || s.is_match(name);
        if let Some(ex) = &self.exclude
            && hit(ex)
        {
            return false;
        }
        self.include.as_ref().is_none_or(hit)
    }
}

/// Expand `paths` into inputs. Unreadable paths become problems; the rest
/// is still returned.
pub fn expand(paths: &[String], filters: &Filters) -> (Vec<Input>, Vec<InputProblem>) {
    let mut inputs = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p == "-" {
            inputs.push(Input {
                path: None,
                display: "-".into(),
                size: 0,
                modified: None,
            });
            continue;
        }
        let path = Path::new(p);
        match std::fs::metadata(path) {
            Err(e) => problems.push(InputProblem {
                path: p.clone(),
                reason: format!("cannot read it: {e}"),
                error: true,
            }),
            Ok(md) if md.is_dir() => {
                let mut found = Vec::new();
                for entry in walkdir::WalkDir::new(path).follow_links(true) {
                    match entry {
                        Err(e) => problems.push(InputProblem {
                            path: e
                                .path()
                                .map_or_else(|| p.clone(), |q| q.display().to_string()),
                            reason: format!("cannot read it: {e}"),
                            error: true,
                        }),
                        Ok(ent) if ent.file_type().is_file() => {
                            let rel = ent.path().strip_prefix(path).unwrap_or(ent.path());
                            if filters.accepts(rel) {
                                let md = ent.metadata().ok();
                                found.push(Input {
                                    path: Some(ent.path().to_path_buf()),
                                    display: ent.path().display().to_string(),
                                    size: md.as_ref().map_or(0, |m| m.len()),
                                    modified: md.and_then(|m| m.modified().ok()),
                                });
                            }
                        }
                        Ok(ent) if !ent.file_type().is_dir() => {
                            let rel = ent.path().strip_prefix(path).unwrap_or(ent.path());
                            if filters.accepts(rel) {
                                problems.push(InputProblem {
                                    path: ent.path().display().to_string(),
                                    reason: format!(
                                        "{}, not a regular file: skipped while walking {p}; name it on the command line to read it",
                                        special_kind(&ent.file_type())
                                    ),
                                    error: false,
                                });
                            }
                        }
                        Ok(_) => {}
                    }
                }
                sort_rotated(&mut found);
                inputs.extend(found);
            }
            Ok(md) => inputs.push(Input {
                path: Some(path.to_path_buf()),
                display: p.clone(),
                size: md.len(),
                modified: md.modified().ok(),
            }),
        }
    }
    (inputs, problems)
}

/// What a file that is neither regular nor a directory is.
fn special_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    let _ = t;
    "a special file"
}

/// Strip compression suffixes and a rotation number: `auth.log.2.gz` →
/// (`auth.log`, 2); `auth.log` → (`auth.log`, 0).
pub fn rotation_key(name: &str) -> (String, u32) {
    let mut base = name;
    for ext in [".gz", ".zst", ".bz2", ".xz", ".lz4"] {
        if let Some(b) = base.strip_suffix(ext) {
            base = b;
            break;
        }
    }
    if let Some((b, n)) = base.rsplit_once('.')
        && !n.is_empty()
        && n.len() <= 4
        && n.bytes().all(|c| c.is_ascii_digit())
    {
        return (b.to_string(), n.parse().unwrap_or(0));
    }
    // logrotate's dateext: `auth.log-20210720`.
    if let Some((b, d)) = base.rsplit_once('-')
        && d.len() == 8
        && d.bytes().all(|c| c.is_ascii_digit())
    {
        // Dates sort ascending = oldest first; invert so that the generic
        // "higher number = older" rule below still holds.
        let n: u32 = d.parse().unwrap_or(0);
        return (b.to_string(), u32::MAX - n);
    }
    (base.to_string(), 0)
}

/// Order inputs by directory and base name, and within a rotated set from
/// the oldest (highest number) to the live file.
pub fn sort_rotated(inputs: &mut [Input]) {
    inputs.sort_by(|a, b| {
        let key = |i: &Input| {
            let p = i.path.as_deref().unwrap_or(Path::new("-"));
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (base, n) = rotation_key(&name);
            (dir, base, std::cmp::Reverse(n), name)
        };
        key(a).cmp(&key(b))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keys() {
        assert_eq!(rotation_key("auth.log"), ("auth.log".into(), 0));
        assert_eq!(rotation_key("auth.log.1"), ("auth.log".into(), 1));
        assert_eq!(rotation_key("auth.log.2.gz"), ("auth.log".into(), 2));
        assert_eq!(rotation_key("conn.log.zst"), ("conn.log".into(), 0));
    }

    #[test]
    fn rotated_set_oldest_first() {
        let mk = |n: &str| Input {
            path: Some(PathBuf::from(format!("/var/log/{n}"))),
            display: n.into(),
            size: 0,
            modified: None,
        };
        let mut v = vec![
            mk("auth.log"),
            mk("auth.log.1"),
            mk("auth.log.10.gz"),
            mk("auth.log.2.gz"),
            mk("syslog"),
        ];
        sort_rotated(&mut v);
        let names: Vec<_> = v.iter().map(|i| i.display.as_str()).collect();
        assert_eq!(
            names,
            [
                "auth.log.10.gz",
                "auth.log.2.gz",
                "auth.log.1",
                "auth.log",
                "syslog"
            ]
        );
    }

    #[test]
    fn walks_directories_with_globs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        for n in ["a.log", "b.txt", "sub/c.log", "sub/d.log.1.gz"] {
            std::fs::write(d.path().join(n), "x").unwrap();
        }
        let f = Filters::new(&["*.log*".into()], &["d.*".into()]).unwrap();
        let (inputs, problems) = expand(
            &[d.path().display().to_string(), "/nonexistent/x".into()],
            &f,
        );
        let mut names: Vec<_> = inputs
            .iter()
            .map(|i| {
                i.path
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        assert_eq!(names, ["a.log", "c.log"]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].reason.contains("cannot read"));
    }
}
