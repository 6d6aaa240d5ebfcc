//! The tail on real files in a temporary folder: growth, rotation by
//! rename and copytruncate (by hand and by the real `logrotate`), globs,
//! restart from stored offsets, inode reuse, rotated compressed files,
//! partial and huge lines, empty, deleted and unreadable files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orbwatch_live::{LiveRecord, RecordReceiver, SourceStats, channel};
use orbwatch_store::Store;
use orbwatch_tail::{StartAt, TailConfig, TailHandle, TailOffset, offsets_from_checkpoints, spawn};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(30);

fn cfg(paths: &[&Path], start_at: StartAt) -> TailConfig {
    TailConfig {
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        start_at,
        poll_interval: Duration::from_millis(20),
        rescan_interval: Duration::from_millis(60),
        rotate_wait: Duration::from_millis(300),
        ..TailConfig::default()
    }
}

struct Run {
    handle: TailHandle,
    rx: RecordReceiver,
    stats: Arc<SourceStats>,
}

fn start(cfg: TailConfig, initial: Vec<TailOffset>) -> Run {
    let (tx, rx) = channel(64);
    let stats = Arc::new(SourceStats::default());
    let handle = spawn(cfg, initial, tx, stats.clone()).expect("tail starts");
    Run { handle, rx, stats }
}

impl Run {
    /// Exactly `n` records (fails after [`WAIT`]).
    fn take(&self, n: usize) -> Vec<LiveRecord> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(r) => got.push(r),
                Err(_) => panic!(
                    "{} of {n} records after {WAIT:?}; last: {:?}; problems: {:?}",
                    got.len(),
                    got.last().map(text),
                    self.handle.problems()
                ),
            }
        }
        got
    }

    /// Records that arrive within `d` (expected: none).
    fn none_within(&self, d: Duration) {
        if let Ok(r) = self.rx.recv_timeout(d) {
            panic!(
                "unexpected record {} #{}: {:?}",
                r.stream,
                r.number,
                text(&r)
            );
        }
    }
}

fn text(r: &LiveRecord) -> String {
    String::from_utf8_lossy(&r.bytes).into_owned()
}

fn texts(rs: &[LiveRecord]) -> Vec<String> {
    rs.iter().map(text).collect()
}

fn append(path: &Path, s: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

fn lines(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix} {i:05}\n")).collect()
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The offset a file would have after its first `n_lines` lines, as the
/// tail would store it.
fn offset_after(path: &Path, key: &str, n_lines: u64) -> TailOffset {
    let data = std::fs::read(path).unwrap();
    let md = std::fs::metadata(path).unwrap();
    let mut pos = 0;
    for _ in 0..n_lines {
        pos += data[pos..].iter().position(|b| *b == b'\n').unwrap() + 1;
    }
    let head = &data[..data.len().min(1024)];
    TailOffset {
        path: key.to_string(),
        device: md.dev(),
        inode: md.ino(),
        position: pos as u64,
        head_hash: hex(head),
        head_len: head.len() as u64,
        lines: n_lines,
    }
}

#[test]
fn a_growing_file_is_read_line_by_line_and_a_partial_line_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "one\ntwo\nthree\n");
    let run = start(cfg(&[&log], StartAt::Beginning), vec![]);
    let got = run.take(3);
    assert_eq!(texts(&got), ["one", "two", "three"]);
    assert_eq!(
        got.iter().map(|r| (r.number, r.offset)).collect::<Vec<_>>(),
        [(1, 0), (2, 4), (3, 8)]
    );
    let cp = got[2].checkpoint.clone().unwrap();
    assert_eq!(&*cp.source, log.to_str().unwrap());
    assert_eq!(cp.position, 14);
    assert_eq!(&*got[2].stream, log.to_str().unwrap());

    append(&log, "four\r\nfi");
    let got = run.take(1);
    assert_eq!(text(&got[0]), "four");
    run.none_within(Duration::from_millis(500));
    append(&log, "ve and more\n");
    let got = run.take(1);
    assert_eq!(text(&got[0]), "five and more");
    assert_eq!((got[0].number, got[0].offset), (5, 20));
    assert_eq!(got[0].checkpoint.as_ref().unwrap().position, 34);
    let s = run.stats.snapshot();
    assert_eq!((s.records, s.bytes, s.truncated), (5, 34, 0));
    run.handle.stop().unwrap();
}

#[test]
fn an_empty_file_gives_nothing_until_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("empty.log");
    File::create(&log).unwrap();
    let run = start(cfg(&[&log], StartAt::End), vec![]);
    run.none_within(Duration::from_millis(300));
    append(&log, "first\n");
    let got = run.take(1);
    assert_eq!((text(&got[0]).as_str(), got[0].number), ("first", 1));
    assert_eq!(run.handle.counters().files, 1);
}

#[test]
fn start_at_end_skips_what_is_there_but_reads_a_line_being_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("old.log");
    append(&log, &lines("old", 0..100));
    append(&log, "half-writ");
    let run = start(cfg(&[&log], StartAt::End), vec![]);
    run.none_within(Duration::from_millis(300));
    append(&log, "ten line\nnew\n");
    let got = run.take(2);
    assert_eq!(texts(&got), ["half-written line", "new"]);
    assert_eq!(got[0].number, 101);
}

#[test]
fn a_huge_line_is_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    let mut c = cfg(&[&log], StartAt::Beginning);
    c.max_line = 1000;
    let run = start(c, vec![]);
    // Written in pieces, so that the cut happens across reads.
    append(&log, &"x".repeat(3000));
    std::thread::sleep(Duration::from_millis(100));
    append(&log, &format!("{}\nafter\n", "y".repeat(2000)));
    let got = run.take(2);
    assert_eq!(got[0].bytes.len(), 1000);
    assert!(got[0].bytes.iter().all(|b| *b == b'x'));
    assert_eq!(text(&got[1]), "after");
    assert_eq!((got[1].number, got[1].offset), (2, 5001));
    assert_eq!(got[0].checkpoint.as_ref().unwrap().position, 5001);
    assert_eq!(run.stats.snapshot().truncated, 1);
}

/// A writer thread writing `total` numbered lines to `log`, renaming the
/// file `rotations` times at even intervals and writing one more line to
/// the renamed file after each rename (as a daemon does until it
/// reopens); `pause` between rotations.
fn rotating_writer(
    log: PathBuf,
    total: usize,
    rotations: usize,
    pause: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let every = total / (rotations + 1);
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        for i in 0..total {
            if i > 0 && i % every == 0 && i / every <= rotations {
                let rotated = log.with_extension(format!("log.{}", i / every));
                std::fs::rename(&log, &rotated).unwrap();
                writeln!(f, "line {i:05}").unwrap();
                f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                std::thread::sleep(pause);
                continue;
            }
            writeln!(f, "line {i:05}").unwrap();
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

/// 10,000 lines, 5 renames while writing, the path followed alone: every
/// line arrives once, in order, under the one stream.
#[test]
fn rename_rotation_while_writing_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    File::create(&log).unwrap();
    let run = start(cfg(&[&log], StartAt::Beginning), vec![]);
    // Rotations further apart than a poll plus the rotate wait: a plain
    // path sees each of them.
    let writer = rotating_writer(log.clone(), 10_000, 5, Duration::from_millis(700));
    let got = run.take(10_000);
    writer.join().unwrap();
    let want: Vec<String> = (0..10_000).map(|i| format!("line {i:05}")).collect();
    assert_eq!(texts(&got), want);
    // Line numbers start again at 1 in each of the 6 files.
    assert_eq!(got.iter().filter(|r| r.number == 1).count(), 6);
    let ids: std::collections::HashSet<String> = got
        .iter()
        .map(|r| {
            let id = &r.checkpoint.as_ref().unwrap().identity;
            id.split(':').take(2).collect::<Vec<_>>().join(":")
        })
        .collect();
    assert_eq!(ids.len(), 6, "six files, six inodes");
    assert!(got.iter().all(|r| &*r.stream == log.to_str().unwrap()));
    run.none_within(Duration::from_millis(500));
    assert_eq!(run.handle.counters().rotations, 5);
}

/// The same 10,000 lines with the 5 renames as fast as the writer can:
/// the path alone cannot see files that lived there between two polls,
/// but a glob that also matches the rotated names does — every line
/// arrives exactly once (in order within each file).
#[test]
fn fast_rename_rotations_with_a_glob_over_rotated_names_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    File::create(&log).unwrap();
    let glob = dir.path().join("app.log*");
    let run = start(cfg(&[&glob], StartAt::Beginning), vec![]);
    let writer = rotating_writer(log.clone(), 10_000, 5, Duration::ZERO);
    let got = run.take(10_000);
    writer.join().unwrap();
    run.none_within(Duration::from_millis(1000));
    let mut all = texts(&got);
    all.sort();
    let want: Vec<String> = (0..10_000).map(|i| format!("line {i:05}")).collect();
    assert_eq!(all, want);
    let mut by_stream: std::collections::BTreeMap<String, Vec<&LiveRecord>> = Default::default();
    for r in &got {
        by_stream.entry(r.stream.to_string()).or_default().push(r);
    }
    for (stream, rs) in by_stream {
        let t: Vec<String> = rs.iter().map(|r| text(r)).collect();
        let mut sorted = t.clone();
        sorted.sort();
        assert_eq!(t, sorted, "{stream} out of order");
    }
}

#[test]
fn copytruncate_by_hand_reads_the_new_lines_and_not_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &lines("before", 0..100));
    let glob = dir.path().join("app.log*");
    let run = start(cfg(&[&glob], StartAt::Beginning), vec![]);
    assert_eq!(run.take(100).len(), 100);
    // logrotate copytruncate: copy, then truncate in place.
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    append(&log, &lines("after", 0..50));
    let got = run.take(50);
    assert_eq!(texts(&got)[0], "after 00000");
    assert_eq!(got[0].number, 1);
    assert_eq!(got[49].number, 50);
    run.none_within(Duration::from_millis(600));
    assert_eq!(run.handle.counters().copytruncates, 1);
}

/// A writer without O_APPEND goes on writing at its old offset after the
/// truncation: the hole reads as NUL bytes, skipped and counted.
#[test]
fn copytruncate_with_a_writer_that_keeps_its_offset_skips_the_nul_hole() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut w = File::create(&log).unwrap();
    w.write_all(lines("before", 0..100).as_bytes()).unwrap();
    let hole = std::fs::metadata(&log).unwrap().len();
    let run = start(cfg(&[&log], StartAt::Beginning), vec![]);
    assert_eq!(run.take(100).len(), 100);
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    w.write_all(lines("after", 0..10).as_bytes()).unwrap();
    let got = run.take(10);
    assert_eq!(texts(&got)[0], "after 00000");
    assert_eq!(got[0].offset, hole);
    assert_eq!(run.handle.counters().nul_bytes, hole);
    assert_eq!(run.handle.counters().copytruncates, 1);
}

#[test]
fn a_glob_picks_up_new_files_from_their_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    append(&a, "a old\n");
    let glob = dir.path().join("*.log");
    let run = start(cfg(&[&glob], StartAt::End), vec![]);
    run.none_within(Duration::from_millis(300));
    append(&dir.path().join("b.log"), "b one\nb two\n");
    append(&dir.path().join("c.txt"), "not matched\n");
    let got = run.take(2);
    assert_eq!(texts(&got), ["b one", "b two"]);
    assert!(got[0].stream.ends_with("b.log"));
    append(&a, "a new\n");
    let got = run.take(1);
    assert_eq!((text(&got[0]).as_str(), got[0].number), ("a new", 2));
    run.none_within(Duration::from_millis(300));
}

/// Stop, save the committed offsets in a real store, append (completing a
/// line that was half written at the stop), restart: exactly the new
/// lines, numbered on.
#[test]
fn a_restart_resumes_exactly_at_the_saved_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let db = dir.path().join("store.db");
    append(&log, &lines("first", 0..100));
    let run = start(cfg(&[&log], StartAt::Beginning), vec![]);
    let got = run.take(100);
    append(&log, "half of a ");
    std::thread::sleep(Duration::from_millis(200));
    let Run { handle, rx, .. } = run;
    handle.stop().unwrap();
    assert!(
        rx.try_recv().is_err(),
        "the half line is not handed out at the stop"
    );
    // The engine committed every record: save their checkpoints.
    let cps: Vec<_> = got.iter().filter_map(|r| r.checkpoint.clone()).collect();
    let offsets = offsets_from_checkpoints(&cps);
    assert_eq!(offsets.len(), 1);
    assert_eq!(offsets[0].lines, 100);
    let mut store = Store::open(&db).unwrap();
    store.save_tail_offsets(&offsets).unwrap();
    drop(store);

    append(&log, "line\n");
    append(&log, &lines("second", 0..19));
    let initial = Store::open(&db).unwrap().load_tail_offsets().unwrap();
    let run = start(cfg(&[&log], StartAt::End), initial);
    let got = run.take(20);
    assert_eq!(text(&got[0]), "half of a line");
    assert_eq!(got[0].number, 101);
    assert_eq!(text(&got[19]), "second 00018");
    assert_eq!(got[19].number, 120);
    run.none_within(Duration::from_millis(400));
}

#[test]
fn a_reused_inode_with_another_head_is_read_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &lines("new file", 0..10));
    let mut stale = offset_after(&log, log.to_str().unwrap(), 5);
    // Same device and inode, but another file's first bytes.
    stale.head_hash = hex(b"the file that had this inode before\n");
    stale.head_len = 37;
    let run = start(cfg(&[&log], StartAt::End), vec![stale]);
    let got = run.take(10);
    assert_eq!(
        (text(&got[0]).as_str(), got[0].number),
        ("new file 00000", 1)
    );
    run.none_within(Duration::from_millis(300));
    drop(run);

    // The matching identity resumes after line 5.
    let good = offset_after(&log, log.to_str().unwrap(), 5);
    let run = start(cfg(&[&log], StartAt::End), vec![good]);
    let got = run.take(5);
    assert_eq!(
        (text(&got[0]).as_str(), got[0].number),
        ("new file 00005", 6)
    );
    run.none_within(Duration::from_millis(300));
}

fn gzip_file(from: &Path, to: &Path) {
    let data = std::fs::read(from).unwrap();
    let mut e =
        flate2::write::GzEncoder::new(File::create(to).unwrap(), flate2::Compression::fast());
    e.write_all(&data).unwrap();
    e.finish().unwrap();
}

/// The stored file was rotated and compressed while orbwatch was stopped:
/// the rest of it is read from the `.gz`, then the new file from its
/// start; a `.gz` already finished gives nothing.
#[test]
fn an_unfinished_rotated_gz_is_completed_before_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    append(&log, &lines("old", 0..100));
    let row = offset_after(&log, log.to_str().unwrap(), 60);
    gzip_file(&log, &dir.path().join("auth.log.1.gz"));
    std::fs::remove_file(&log).unwrap();
    append(&log, &lines("new", 0..10));

    let run = start(cfg(&[&log], StartAt::End), vec![row]);
    let got = run.take(50);
    assert_eq!(text(&got[0]), "old 00060");
    assert_eq!(got[0].number, 61);
    assert_eq!(text(&got[39]), "old 00099");
    assert_eq!(got[39].number, 100);
    assert!(
        got[..40]
            .iter()
            .all(|r| &*r.stream == log.to_str().unwrap())
    );
    assert_eq!(text(&got[40]), "new 00000");
    assert_eq!(got[40].number, 1);
    assert_eq!(got[49].number, 10);
    run.none_within(Duration::from_millis(400));
    assert_eq!(run.handle.counters().compressed_read, 1);
    drop(run);

    // Finished: the stored position is the old file's end. Also with a
    // glob that matches the .gz itself, nothing of it is read again.
    let dir2 = tempfile::tempdir().unwrap();
    let log2 = dir2.path().join("auth.log");
    append(&log2, &lines("old", 0..100));
    let row = offset_after(&log2, log2.to_str().unwrap(), 100);
    gzip_file(&log2, &dir2.path().join("auth.log.1.gz"));
    std::fs::remove_file(&log2).unwrap();
    append(&log2, &lines("new", 0..3));
    let glob = dir2.path().join("auth.log*");
    let run = start(cfg(&[&glob], StartAt::Beginning), vec![row]);
    let got = run.take(3);
    assert_eq!(texts(&got), ["new 00000", "new 00001", "new 00002"]);
    run.none_within(Duration::from_millis(600));
}

/// Two rotations while orbwatch was stopped: the stored file is now
/// `auth.log.2.gz`, a whole file was written and rotated to `auth.log.1`,
/// and `auth.log` is new. The rest of the stored file, then `auth.log.1`,
/// then `auth.log` are read, in that order, under the followed path; an
/// older `auth.log.3.gz` read in an earlier run (no offset of its own) is
/// not read again, even with a glob over the rotated names and
/// `start_at = beginning`.
#[test]
fn files_rotated_after_the_stored_one_are_read_in_order_and_older_ones_not_again() {
    for use_glob in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, &lines("older", 0..30));
        gzip_file(&log, &dir.path().join("auth.log.3.gz"));
        std::fs::remove_file(&log).unwrap();
        append(&log, &lines("x", 0..100));
        let row = offset_after(&log, log.to_str().unwrap(), 60);
        gzip_file(&log, &dir.path().join("auth.log.2.gz"));
        std::fs::remove_file(&log).unwrap();
        append(&log, &lines("y", 0..20));
        std::fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
        append(&log, &lines("z", 0..5));

        let glob = dir.path().join("auth.log*");
        let c = if use_glob {
            cfg(&[&glob], StartAt::Beginning)
        } else {
            cfg(&[&log], StartAt::End)
        };
        let run = start(c, vec![row]);
        let got = run.take(65);
        let want: Vec<String> = (60..100)
            .map(|i| format!("x {i:05}"))
            .chain((0..20).map(|i| format!("y {i:05}")))
            .chain((0..5).map(|i| format!("z {i:05}")))
            .collect();
        assert_eq!(texts(&got), want, "glob: {use_glob}");
        assert!(got.iter().all(|r| &*r.stream == log.to_str().unwrap()));
        assert_eq!((got[0].number, got[40].number, got[60].number), (61, 1, 1));
        run.none_within(Duration::from_millis(800));
    }
}

#[test]
fn a_deleted_file_is_read_to_its_end_then_dropped_and_a_new_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut w = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    w.write_all(b"one\n").unwrap();
    let run = start(cfg(&[&log], StartAt::Beginning), vec![]);
    assert_eq!(run.take(1).len(), 1);
    std::fs::remove_file(&log).unwrap();
    // The writer still has it open.
    w.write_all(b"two\nthree without newline").unwrap();
    let got = run.take(2);
    assert_eq!(texts(&got), ["two", "three without newline"]);
    let deadline = Instant::now() + WAIT;
    while run.handle.counters().files != 0 {
        assert!(
            Instant::now() < deadline,
            "the deleted file is still followed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    append(&log, "again\n");
    let got = run.take(1);
    assert_eq!((text(&got[0]).as_str(), got[0].number), ("again", 1));
}

#[test]
fn a_directory_or_unreadable_path_is_a_named_problem_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("x.log")).unwrap();
    // A symbolic link to itself cannot be opened (ELOOP), even by root.
    std::os::unix::fs::symlink("loop.log", dir.path().join("loop.log")).unwrap();
    let locked = dir.path().join("locked.log");
    append(&locked, "secret\n");
    let mut perms = std::fs::metadata(&locked).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o000);
    std::fs::set_permissions(&locked, perms).unwrap();
    let root = File::open(&locked).is_ok();
    let good = dir.path().join("good.log");
    append(&good, "fine\n");
    let glob = dir.path().join("*.log");
    let run = start(cfg(&[&glob], StartAt::Beginning), vec![]);
    let mut got = run.take(if root { 2 } else { 1 });
    got.sort_by_key(|r| r.stream.to_string());
    assert_eq!(text(&got[0]), "fine");
    let problems = run.handle.problems();
    let find = |name: &str| {
        problems
            .iter()
            .find(|p| p.path.ends_with(name))
            .map(|p| p.message.clone())
    };
    let x = find("x.log").expect("the directory is reported");
    assert!(x.contains("is a directory"), "{x}");
    let l = find("loop.log").expect("the symlink loop is reported");
    assert!(l.contains("loop.log"), "{l}");
    if root {
        println!("locked.log: skipped (running as root, permissions do not stop reading)");
    } else {
        let m = find("locked.log").expect("the unreadable file is reported");
        assert!(m.contains("read access"), "{m}");
    }
    let expected = if root { 2 } else { 3 };
    assert_eq!(run.handle.counters().errors, expected);
    // Problems are logged once, not at every rescan.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(run.handle.counters().errors, expected);
    append(&good, "still\n");
    assert_eq!(text(&run.take(1)[0]), "still");
}

fn logrotate() -> Option<PathBuf> {
    [
        "/usr/sbin/logrotate",
        "/sbin/logrotate",
        "/usr/bin/logrotate",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn run_logrotate(bin: &Path, dir: &Path, conf_body: &str) {
    let conf = dir.join("logrotate.conf");
    std::fs::write(&conf, conf_body).unwrap();
    let out = std::process::Command::new(bin)
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real logrotate, twice: `copytruncate` (the copy is matched by the
/// glob and not read again), then rename with `create` and `compress`
/// (no `delaycompress`: the renamed file is compressed at once and
/// deleted while the tail still reads it).
#[test]
fn the_real_logrotate_in_copytruncate_and_compress_modes() {
    let Some(bin) = logrotate() else {
        println!("skipped: logrotate is not installed (.ci/install-tools installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &lines("a", 0..200));
    let glob = dir.path().join("app.log*");
    let run = start(cfg(&[&glob], StartAt::Beginning), vec![]);
    assert_eq!(run.take(200).len(), 200);
    run_logrotate(
        &bin,
        dir.path(),
        &format!("{} {{\n  copytruncate\n  rotate 5\n}}\n", log.display()),
    );
    assert!(dir.path().join("app.log.1").exists());
    append(&log, &lines("b", 0..30));
    let got = run.take(30);
    assert_eq!((text(&got[0]).as_str(), got[0].number), ("b 00000", 1));
    run.none_within(Duration::from_millis(800));
    assert_eq!(run.handle.counters().copytruncates, 1);

    // Rename + compress: app.log → app.log.1 → app.log.1.gz at once
    // (the older app.log.1 becomes app.log.2.gz).
    append(&log, &lines("c", 0..20));
    assert_eq!(run.take(20).len(), 20);
    run_logrotate(
        &bin,
        dir.path(),
        &format!(
            "{} {{\n  create\n  compress\n  rotate 5\n}}\n",
            log.display()
        ),
    );
    assert!(dir.path().join("app.log.1.gz").exists());
    append(&log, &lines("d", 0..10));
    let got = run.take(10);
    assert_eq!(texts(&got)[0], "d 00000");
    assert_eq!(got[0].number, 1);
    run.none_within(Duration::from_millis(1000));
}

// ------------------------------------------------------------ real data

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/logs-zeek-zat")
        .join(name)
}

/// Lines of `bytes` as `hunt` reads them (`orbwatch_source::LineReader`).
fn batch_lines(bytes: &[u8]) -> Vec<String> {
    let mut r = orbwatch_source::LineReader::new(std::io::Cursor::new(bytes.to_vec()));
    let mut out = Vec::new();
    while let Some(l) = r.next_line().unwrap() {
        out.push(String::from_utf8_lossy(l.bytes).into_owned());
    }
    out
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(File::open(path).unwrap()),
        &mut out,
    )
    .unwrap();
    out
}

/// A real Zeek http.log (zat, MIT) followed up to line 40, then rotated
/// and compressed (the real `.gz`) while orbwatch was stopped, and a real
/// dns.log written at the path: the rest of the http.log comes from the
/// `.gz`, then the whole dns.log — whose first 68 bytes are the same Zeek
/// header, which must not make it look like a file already read.
#[test]
fn real_zeek_log_rotated_to_gz_while_stopped_is_completed_then_the_new_log() {
    let http = gunzip(&data("zat_http.log.gz"));
    let dns = std::fs::read(data("zat_dns.log")).unwrap();
    assert_eq!(
        &http[..68],
        &dns[..68],
        "the test relies on the shared Zeek header"
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("http.log");
    std::fs::write(&log, &http).unwrap();
    let row = offset_after(&log, log.to_str().unwrap(), 40);
    std::fs::remove_file(&log).unwrap();
    std::fs::copy(data("zat_http.log.gz"), dir.path().join("http.log.1.gz")).unwrap();
    std::fs::write(&log, &dns).unwrap();

    let run = start(cfg(&[&log], StartAt::End), vec![row]);
    let want_http = batch_lines(&http);
    let want_dns = batch_lines(&dns);
    assert_eq!(want_http.len(), 159);
    let got = run.take(want_http.len() - 40 + want_dns.len());
    assert_eq!(texts(&got[..119]), want_http[40..]);
    assert_eq!(got[0].number, 41);
    assert_eq!(texts(&got[119..]), want_dns);
    assert_eq!(got[119].number, 1);
    run.none_within(Duration::from_millis(400));
    drop(run);

    // A glob that finds the dns.log as a new file next to a followed
    // http.log reads all of it.
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("http.log");
    std::fs::write(&h, &http).unwrap();
    let run = start(cfg(&[&dir.path().join("*.log")], StartAt::End), vec![]);
    run.none_within(Duration::from_millis(300));
    std::fs::write(dir.path().join("dns.log"), &dns).unwrap();
    let got = run.take(want_dns.len());
    assert_eq!(texts(&got), want_dns);
    run.none_within(Duration::from_millis(300));
}

/// The stored file was rotated into a damaged archive (the real zat
/// `.corrupt.gz`, cut short): what decompresses is read, the cut line is
/// not handed out, the damage is a named problem, and the new file
/// follows.
#[test]
fn a_damaged_rotated_archive_is_read_as_far_as_it_goes_and_named() {
    let http = gunzip(&data("zat_http.log.gz"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("http.log");
    std::fs::write(&log, &http).unwrap();
    let row = offset_after(&log, log.to_str().unwrap(), 40);
    std::fs::remove_file(&log).unwrap();
    let gz = dir.path().join("http.log.1.gz");
    std::fs::copy(data("zat_http.log.corrupt.gz"), &gz).unwrap();
    // What a reader gets out of the damaged archive before its error.
    let mut readable = Vec::new();
    let _ = std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(File::open(&gz).unwrap()),
        &mut readable,
    );
    let complete = readable.iter().filter(|b| **b == b'\n').count();
    assert!(complete > 40 && complete < 159, "{complete}");
    append(&log, "new line\n");

    let run = start(cfg(&[&log], StartAt::End), vec![row]);
    let got = run.take(complete - 40 + 1);
    let want = batch_lines(&http);
    assert_eq!(texts(&got[..complete - 40]), want[40..complete]);
    assert_eq!(text(&got[complete - 40]), "new line");
    run.none_within(Duration::from_millis(400));
    let problems = run.handle.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].path.ends_with("http.log.1.gz"));
    assert!(
        problems[0].message.contains("gzip -t"),
        "{}",
        problems[0].message
    );
}

/// A real sshd log (fail2ban's test log, GPL-2, read from the shared
/// corpus) written to a followed file in pieces of uneven sizes, cut
/// anywhere, with a rename rotation half way: the lines are exactly those
/// `hunt` reads from the file.
#[test]
fn a_real_sshd_log_written_in_uneven_pieces_gives_the_batch_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/auth-ssh/fail2ban_sshd.log");
    let Ok(bytes) = std::fs::read(&src) else {
        println!("skipped: {} is absent", src.display());
        return;
    };
    let want = batch_lines(&bytes);
    assert_eq!(want.len(), 417);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    File::create(&log).unwrap();
    let run = start(cfg(&[&log], StartAt::Beginning), vec![]);
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    let mut at = 0usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rotated = false;
    while at < bytes.len() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 700) as usize + 1;
        let end = (at + n).min(bytes.len());
        f.write_all(&bytes[at..end]).unwrap();
        at = end;
        if !rotated && at > bytes.len() / 2 && bytes[at - 1] == b'\n' {
            std::fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
            f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            rotated = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(rotated);
    let got = run.take(want.len());
    assert_eq!(texts(&got), want);
    run.none_within(Duration::from_millis(500));
}

/// What a `kill -9` leaves: the tail had handed out every line, but the
/// engine had committed only the first 437. After a restart from the
/// committed offsets, each line is committed exactly once over the two
/// runs (counted per line).
#[test]
fn after_a_crash_only_the_uncommitted_lines_are_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &lines("l", 0..1000));
    let run = start(cfg(&[&log], StartAt::Beginning), vec![]);
    let got = run.take(1000);
    let committed: Vec<_> = got[..437]
        .iter()
        .filter_map(|r| r.checkpoint.clone())
        .collect();
    let saved = offsets_from_checkpoints(&committed);
    drop(run);
    append(&log, &lines("l", 1000..1100));
    let run = start(cfg(&[&log], StartAt::End), saved);
    let again = run.take(1100 - 437);
    run.none_within(Duration::from_millis(400));
    let mut count = std::collections::HashMap::<String, u32>::new();
    for r in got[..437].iter().chain(&again) {
        *count.entry(text(r)).or_default() += 1;
    }
    assert_eq!(count.len(), 1100);
    assert!(count.values().all(|c| *c == 1));
    assert_eq!(
        (text(&again[0]).as_str(), again[0].number),
        ("l 00437", 438)
    );
}

/// Rotated by rename (not compressed yet: logrotate's `delaycompress`)
/// while orbwatch was stopped: the stored file is found as `app.log.1` by
/// its inode and finished, then the new `app.log` is read.
#[test]
fn a_file_renamed_while_stopped_is_found_by_inode_and_finished() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &lines("old", 0..100));
    let row = offset_after(&log, log.to_str().unwrap(), 60);
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, &lines("new", 0..3));
    let run = start(cfg(&[&log], StartAt::End), vec![row]);
    let got = run.take(43);
    assert_eq!((text(&got[0]).as_str(), got[0].number), ("old 00060", 61));
    assert_eq!(
        (text(&got[39]).as_str(), got[39].number),
        ("old 00099", 100)
    );
    assert_eq!((text(&got[40]).as_str(), got[40].number), ("new 00000", 1));
    run.none_within(Duration::from_millis(500));
}
