//! `orbwatch feed subscribe | update | schedule | unsubscribe` end to end,
//! against Python's own `http.server` on 127.0.0.1 (a real peer: it
//! answers `If-Modified-Since` with 304), serving the CERT-FR APT31 list.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

struct PyServer(Child, u16);

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_server(dir: &Path) -> Option<PyServer> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let s = PyServer(child, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(s)
}

fn run(db: &PathBuf, args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("ORBWATCH_DB")
        .output()
        .expect("run orbwatch");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn set_mtime(p: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn subscribe_update_schedule_unsubscribe() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let list = www.join("CERTFR-2021-IOC-003-IOC.csv");
    let certfr = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    std::fs::copy(&certfr, &list).unwrap();
    set_mtime(&list, 1_626_825_600); // 2021-07-21
    let Some(server) = python_server(&www) else {
        assert!(
            std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "python3 -m http.server could not start"
        );
        eprintln!("skipped: python3 -m http.server could not start");
        return;
    };
    let db = dir.path().join("s.db");
    let url = format!("http://127.0.0.1:{}/CERTFR-2021-IOC-003-IOC.csv", server.1);

    // A literal credential is refused before anything is stored.
    let (_, err, code) = run(
        &db,
        &[
            "feed",
            "subscribe",
            "certfr",
            &url,
            "--header",
            "Authorization: Bearer abc",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would be stored in clear"), "{err}");

    let (out, err, code) = run(
        &db,
        &[
            "feed",
            "subscribe",
            "certfr",
            &url,
            "--every",
            "12h",
            "--retries",
            "0",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("subscribed `certfr` to"), "{out}");
    assert!(
        out.contains("feed `certfr` version 1: 161 indicators (161 added, 0 removed, 0 unchanged)"),
        "{out}"
    );

    // Unchanged file: http.server answers If-Modified-Since with 304.
    let (out, err, code) = run(&db, &["feed", "update", "certfr"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("unchanged") && out.contains("304") && out.contains("still version 1"),
        "{out}"
    );

    // The publisher drops the last two rows.
    let text = std::fs::read_to_string(&certfr).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&list, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    set_mtime(&list, 1_627_430_400); // a week later
    let (out, err, code) = run(&db, &["feed", "update", "--all"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("feed `certfr` version 2: 159 indicators (0 added, 2 removed, 159 unchanged)"),
        "{out}"
    );

    // Not due yet (every 12h).
    let (_, err, code) = run(&db, &["feed", "update", "--due"]);
    assert_eq!(code, 0);
    assert!(err.contains("no subscription is due"), "{err}");

    // The server goes away: the update fails, version 2 stays.
    drop(server);
    let (_, err, code) = run(&db, &["feed", "update", "certfr"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("update failed") && err.contains("kept version 2"),
        "{err}"
    );
    let (out, _, _) = run(&db, &["feed", "show", "certfr"]);
    assert!(out.contains("indicators  159"), "{out}");
    assert!(out.contains("last error"), "{out}");

    let (out, _, code) = run(&db, &["feed", "schedule", "--cron"]);
    assert_eq!(code, 0);
    let line = out.lines().find(|l| !l.starts_with('#')).unwrap();
    assert!(line.starts_with("0 */12 * * * "), "{line}");
    assert!(line.ends_with("feed update --due"), "{line}");
    assert!(line.contains(&db.display().to_string()), "{line}");
    let (out, _, code) = run(&db, &["feed", "schedule"]);
    assert_eq!(code, 0);
    assert!(out.contains("OnUnitActiveSec=43200s"), "{out}");
    assert!(
        out.contains("[Timer]") && out.contains("Type=oneshot"),
        "{out}"
    );

    let (out, _, code) = run(&db, &["feed", "unsubscribe", "certfr"]);
    assert_eq!(code, 0);
    assert!(out.contains("its 2 versions stay"), "{out}");
    let (_, err, code) = run(&db, &["feed", "update", "certfr"]);
    assert_eq!(code, 2);
    assert!(err.contains("no subscription named `certfr`"), "{err}");
}
