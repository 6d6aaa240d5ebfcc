//! The README's tour (`examples/tour.sh`) runs as written: every command
//! line is run in order from the repository's root, with the built
//! `orbwatch` first on PATH and a scratch `$OUT`, and must exit with the
//! code its `# exit N` comment gives (0 without one). Lines that read the
//! shared corpus are skipped, and say so, when it is absent.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_readme_tour_runs_as_written() {
    let root = repo();
    let tour = std::fs::read_to_string(root.join("examples/tour.sh")).expect("examples/tour.sh");
    let out = tempfile::tempdir().expect("tempdir");
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_orbwatch"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let corpus = root.join("../shared/corpus").is_dir();
    // `export` lines set the environment of the lines after them.
    let mut exports = String::new();
    let mut ran = 0;
    for (n, line) in tour.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with("export ") {
            exports.push_str(t);
            exports.push('\n');
            continue;
        }
        assert!(
            t.starts_with("orbwatch "),
            "line {}: not a command: {t}",
            n + 1
        );
        if t.contains("../shared/corpus") && !corpus {
            println!("skipped: line {} needs ../shared/corpus: {t}", n + 1);
            continue;
        }
        let want: i32 = t
            .rsplit_once("# exit ")
            .and_then(|(_, c)| c.trim().parse().ok())
            .unwrap_or(0);
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("{exports}{t}"))
            .current_dir(&root)
            .env("PATH", &path)
            .env("OUT", out.path())
            .env("TZ", "UTC")
            .env("XDG_DATA_HOME", out.path().join("xdg"))
            .env("XDG_CACHE_HOME", out.path().join("cache"))
            .env("USER", "analyst")
            .env_remove("ORBWATCH_LOG")
            .output()
            .expect("run sh");
        assert_eq!(
            o.status.code(),
            Some(want),
            "line {}: {t}\nstdout:\n{}\nstderr:\n{}",
            n + 1,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} commands ran");
    // What the tour wrote is there.
    for f in [
        "apt31.intel",
        "findings.jsonl",
        "coverage.json",
        "report.html",
        "bundle.json",
        "event.json",
        "orbwatch.nft",
        "orbwatch.1",
    ] {
        let p = out.path().join(f);
        assert!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 0),
            "{f} not written"
        );
    }
}
