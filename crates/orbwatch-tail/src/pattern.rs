//! `PATH_OR_GLOB`s: a plain path is followed as it is (it may not exist
//! yet); a glob (`/var/log/*.log`, `/srv/**/access.log`) is expanded again
//! at every rescan so that files created later are picked up.
//!
//! `*` and `?` do not cross `/` (as in a shell); `**` does. Only the part of
//! the tree below the glob's literal prefix is walked, to the depth the
//! glob can reach.

use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

/// One pattern, ready to expand.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    Literal(PathBuf),
    Glob {
        text: String,
        base: PathBuf,
        /// How deep below `base` matches can be (`None`: any depth).
        depth: Option<usize>,
        matcher: GlobMatcher,
    },
}

/// What a rescan found for a pattern: a path and whether it is a
/// directory (an error the caller reports), or a walk error.
pub(crate) enum Found {
    File(PathBuf),
    Directory(PathBuf),
    Error(PathBuf, String),
}

fn is_glob(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'*' | b'?' | b'[' | b'{'))
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an empty path".into());
        }
        if !is_glob(text) {
            return Ok(Pattern::Literal(PathBuf::from(text)));
        }
        let matcher = GlobBuilder::new(text)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("not a valid glob: {e}"))?
            .compile_matcher();
        let path = Path::new(text);
        let mut base = PathBuf::new();
        let mut rest = Vec::new();
        for c in path.components() {
            let s = c.as_os_str().to_string_lossy();
            if rest.is_empty() && !(matches!(c, Component::Normal(_)) && is_glob(&s)) {
                base.push(c.as_os_str());
            } else {
                rest.push(s.into_owned());
            }
        }
        if base.as_os_str().is_empty() {
            base = PathBuf::from(".");
        }
        let depth = if rest.iter().any(|r| r.contains("**")) {
            None
        } else {
            Some(rest.len())
        };
        Ok(Pattern::Glob {
            text: text.to_string(),
            base,
            depth,
            matcher,
        })
    }

    /// Expand against the file system now.
    pub fn expand(&self, out: &mut Vec<Found>) {
        match self {
            Pattern::Literal(p) => match std::fs::metadata(p) {
                Ok(md) if md.is_dir() => out.push(Found::Directory(p.clone())),
                Ok(_) => out.push(Found::File(p.clone())),
                // Not there (yet): followed once it appears.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => out.push(Found::Error(p.clone(), e.to_string())),
            },
            Pattern::Glob {
                text,
                base,
                depth,
                matcher,
            } => {
                if !base.exists() {
                    return;
                }
                let mut walk = walkdir::WalkDir::new(base).min_depth(1).follow_links(false);
                if let Some(d) = depth {
                    walk = walk.max_depth(*d);
                }
                let base_is_dot = base == Path::new(".") && !text.starts_with("./");
                for entry in walk {
                    let entry = match entry {
                        Ok(e) => e,
                        Err(e) => {
                            let p = e
                                .path()
                                .map(Path::to_path_buf)
                                .unwrap_or_else(|| base.clone());
                            out.push(Found::Error(p, e.to_string()));
                            continue;
                        }
                    };
                    let path = if base_is_dot {
                        entry.path().strip_prefix(".").unwrap_or(entry.path())
                    } else {
                        entry.path()
                    };
                    if !matcher.is_match(path) {
                        continue;
                    }
                    // Follow a symlink to what it points at.
                    match std::fs::metadata(entry.path()) {
                        Ok(md) if md.is_dir() => out.push(Found::Directory(path.to_path_buf())),
                        Ok(_) => out.push(Found::File(path.to_path_buf())),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => out.push(Found::Error(path.to_path_buf(), e.to_string())),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(p: &Pattern) -> Vec<String> {
        let mut out = Vec::new();
        p.expand(&mut out);
        let mut v: Vec<String> = out
            .into_iter()
            .map(|f| match f {
                Found::File(p) => format!("f {}", p.display()),
                Found::Directory(p) => format!("d {}", p.display()),
                Found::Error(p, e) => format!("e {} {e}", p.display()),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn globs_expand_at_their_depth_and_name_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(d.join("x.log")).unwrap();
        for f in ["a.log", "b.txt", "sub/c.log", "sub/deeper/e.log"] {
            std::fs::write(d.join(f), "x\n").unwrap();
        }
        let g = |s: &str| Pattern::parse(&format!("{}/{s}", d.display())).unwrap();
        let shown = |s: &str| format!("{}/{s}", d.display());
        assert_eq!(
            files(&g("*.log")),
            vec![
                format!("d {}", shown("x.log")),
                format!("f {}", shown("a.log"))
            ]
        );
        assert_eq!(
            files(&g("*/*.log")),
            vec![format!("f {}", shown("sub/c.log"))]
        );
        assert_eq!(
            files(&g("**/*.log")),
            vec![
                format!("d {}", shown("x.log")),
                format!("f {}", shown("a.log")),
                format!("f {}", shown("sub/c.log")),
                format!("f {}", shown("sub/deeper/e.log")),
            ]
        );
        assert!(files(&g("nothing/*.log")).is_empty());
        assert!(files(&Pattern::parse(&shown("missing.log")).unwrap()).is_empty());
        assert!(Pattern::parse(&shown("[bad")).is_err());
    }
}
