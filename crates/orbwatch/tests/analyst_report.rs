//! Issue 17, "a report that shows the point", through the built binary:
//! the report covers the whole case (every hunt in the store) and says
//! which hunts; `--hunt N` reports one. Its HTML has a table of contents,
//! one timeline lane per feed and behaviour kind, folded findings with the
//! most serious open, the fields of Windows events, and feed sightings
//! counted apart from behaviour records. With chromium and pdftoppm
//! installed, screenshots (desktop width, and the printed PDF rasterised)
//! are saved under target/analyst-report/ to be looked at.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orbwatch"));
    c.env_remove("ORBWATCH_DB")
        .env_remove("ORBWATCH_LOG")
        .env("XDG_DATA_HOME", "/nonexistent")
        .env("XDG_CACHE_HOME", "/nonexistent")
        .env("TZ", "UTC");
    c
}

#[track_caller]
fn ok(args: &[&str]) -> Output {
    let o = bin().args(args).output().expect("run orbwatch");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A Windows brute force (4625 events) from the shared corpus, when present.
fn evtx() -> Option<PathBuf> {
    let p = repo().join("../shared/corpus/evtx/e2m_ID4625-OpenSSH_brutforce_with_valid_users.evtx");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipped (Windows part): {} is absent", p.display());
        None
    }
}

#[test]
fn the_report_covers_the_case_and_shows_the_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("case.db");
    let feed = repo().join("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    // Hunt #1: the sample with the CERT-FR list (4 feed findings, 9 records).
    ok(&[
        "--db",
        s(&db),
        "hunt",
        "--year",
        "2021",
        "--feed",
        s(&feed),
        s(&repo().join("examples/logs/demo-auth.log")),
    ]);
    // Hunt #2: behaviour, from an sshd brute force and Windows events.
    let mut second: Vec<PathBuf> = vec![repo().join("tests/data/logs-syslog/crowdsec_ssh-bf.log")];
    second.retain(|p| p.is_file());
    let win = evtx();
    second.extend(win.clone());
    if second.is_empty() {
        eprintln!("skipped: no behaviour input for a second hunt");
        return;
    }
    let mut args = vec!["--db", s(&db), "hunt", "--year", "2021", "--feed", s(&feed)];
    args.extend(second.iter().map(|p| s(p)));
    ok(&args);

    let html_path = dir.path().join("case.html");
    let o = ok(&["--db", s(&db), "report", "--html", s(&html_path)]);
    let _ = o;
    let html = std::fs::read_to_string(&html_path).expect("report written");
    // Which hunts.
    assert!(
        html.contains("all 2 hunts (#1, #2)"),
        "the report names its hunts"
    );
    // Contents with anchors to the sections that exist.
    for id in [
        "verdict", "summary", "timeline", "coverage", "findings", "method",
    ] {
        assert!(
            html.contains(&format!("<a href=\"#{id}\">")),
            "toc lacks {id}"
        );
        assert!(html.contains(&format!("id=\"{id}\"")), "no section {id}");
    }
    // Findings folded, exactly one open: the first, the most serious.
    let cards: Vec<&str> = html.split("<details class=\"finding\"").skip(1).collect();
    assert!(cards.len() >= 5, "{} cards", cards.len());
    let open: Vec<usize> = cards
        .iter()
        .enumerate()
        .filter(|(_, c)| c[..c.find('>').unwrap_or(0)].contains(" open"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(open, [0]);
    // The sample's successful login from a listed address is critical:
    // nothing outranks it, so it is the open one.
    assert!(
        cards[0].contains("94.59.209.77"),
        "{}",
        &cards[0][..300.min(cards[0].len())]
    );
    // One lane per series, each labelled with its own count.
    let tl = &html[html.find("id=\"timeline-chart\"").expect("timeline")..];
    let tl = &tl[..tl.find("</svg>").expect("svg end")];
    assert!(tl.contains("CERTFR-2021-IOC-003-IOC <tspan"), "{tl}");
    assert!(tl.contains("· 9 records"), "{tl}");
    // Feed sightings and behaviour records are separate figures.
    assert!(
        html.contains(r#"<div class="n">9</div><div class="l">feed sightings (records)</div>"#)
    );
    assert!(html.contains("behaviour records</div>"));
    if win.is_some() {
        assert!(html.contains("4625 (logon failed)"), "Windows fields shown");
        assert!(html.contains("<dt>account</dt>"));
    }

    // One hunt only.
    let one = dir.path().join("one.html");
    ok(&["--db", s(&db), "report", "--hunt", "1", "--html", s(&one)]);
    let h1 = std::fs::read_to_string(&one).expect("report written");
    assert!(h1.contains("hunt #1 in the store"));
    assert_eq!(h1.matches("<details class=\"finding\"").count(), 4);

    screenshots(&html_path);
}

/// Desktop screenshot and the printed PDF, rasterised, under
/// target/analyst-report/ (skipped without chromium or pdftoppm).
fn screenshots(page: &Path) {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        println!("skipped: chromium not installed (screenshots)");
        return;
    };
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("analyst-report");
    // Fresh each run: no page of an earlier, longer report stays behind.
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("mkdir target/analyst-report");
    let profile = tempfile::tempdir().expect("tempdir");
    let run = |extra: &[String]| {
        let o = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--no-pdf-header-footer",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("run chromium");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let png = out_dir.join("report-desktop.png");
    run(&[
        format!("--screenshot={}", png.display()),
        "--window-size=1440,4200".into(),
    ]);
    assert!(
        std::fs::read(&png)
            .expect("screenshot")
            .starts_with(b"\x89PNG")
    );
    let pdf = out_dir.join("report.pdf");
    run(&[format!("--print-to-pdf={}", pdf.display())]);
    assert!(std::fs::read(&pdf).expect("pdf").starts_with(b"%PDF"));
    println!("screenshot: {}\npdf: {}", png.display(), pdf.display());
    // On paper every finding is unfolded: its evidence is printed.
    if let Some(pdftotext) = ["/usr/bin/pdftotext"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    {
        let o = Command::new(pdftotext)
            .arg(&pdf)
            .arg("-")
            .output()
            .expect("run pdftotext");
        let text = String::from_utf8_lossy(&o.stdout);
        let cards = std::fs::read_to_string(page)
            .expect("page")
            .matches("<details class=\"finding\"")
            .count();
        assert_eq!(text.matches("Evidence (").count(), cards, "{text}");
    }
    let Some(pdftoppm) = ["/usr/bin/pdftoppm"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        println!("skipped: pdftoppm not installed (poppler-utils)");
        return;
    };
    let o = Command::new(pdftoppm)
        .args(["-png", "-r", "60"])
        .arg(&pdf)
        .arg(out_dir.join("report-pdf"))
        .output()
        .expect("run pdftoppm");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pages = std::fs::read_dir(&out_dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("report-pdf"))
        .count();
    assert!(pages >= 2, "the PDF has {pages} page(s)");
    println!("pdf pages rasterised: {pages} in {}", out_dir.display());
}

#[test]
fn shared_reports_carry_tlp_and_keep_internal_addresses_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("case.db");
    // A list naming one internal address (the sample's own deploy host)
    // and one external relay.
    let feed = dir.path().join("relays.txt");
    std::fs::write(&feed, "192.168.10.20\n94.59.209.77\n").expect("write feed");
    ok(&[
        "--db",
        s(&db),
        "hunt",
        "--year",
        "2021",
        "--no-behaviour",
        "--feed",
        s(&feed),
        s(&repo().join("examples/logs/demo-auth.log")),
    ]);
    let report = |extra: &[&str]| -> (serde_json::Value, serde_json::Value, String) {
        let stix = dir.path().join("b.json");
        let misp = dir.path().join("e.json");
        let mut args = vec![
            "--db",
            s(&db),
            "report",
            "--force",
            "--stix",
            s(&stix),
            "--misp-event",
            s(&misp),
        ];
        args.extend_from_slice(extra);
        let o = ok(&args);
        let read = |p: &Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(p).expect("written")).expect("JSON")
        };
        (
            read(&stix),
            read(&misp),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (stix, misp, err) = report(&[]);
    let text = stix.to_string();
    assert!(!text.contains("192.168.10.20"), "internal address shared");
    assert!(text.contains("94.59.209.77"));
    assert!(
        err.contains("1 finding(s) about internal or special-purpose addresses are not shared"),
        "{err}"
    );
    // TLP: none in a plain list, so amber, on every object but the identity.
    let objects = stix["objects"].as_array().expect("objects");
    let amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";
    assert_eq!(objects[1]["id"], amber);
    assert_eq!(objects[1]["name"], "TLP:AMBER");
    for o in &objects[2..] {
        assert_eq!(o["object_marking_refs"][0], amber, "{o}");
    }
    let ev = &misp["Event"];
    assert_eq!(
        ev["info"],
        "orbwatch hunt for relay (ORB) infrastructure: 1 feed sighting, 0 behaviour findings (reported by orbwatch user)"
    );
    assert!(
        ev["Tag"]
            .as_array()
            .expect("tags")
            .iter()
            .any(|t| t["name"] == "tlp:amber")
    );
    let values: Vec<&str> = ev["Attribute"]
        .as_array()
        .expect("attributes")
        .iter()
        .filter_map(|a| a["value"].as_str())
        .collect();
    assert_eq!(values, ["94.59.209.77"]);

    // --include-internal shares it, with a warning.
    let (stix, misp, err) = report(&["--include-internal"]);
    assert!(stix.to_string().contains("192.168.10.20"));
    assert_eq!(misp["Event"]["Attribute"].as_array().map(Vec::len), Some(2));
    assert!(
        err.contains("warning: --include-internal: 1 finding(s)"),
        "{err}"
    );
}

#[test]
fn zeek_intel_blocklist_keeps_feed_and_actor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("feeds.db");
    let certfr = repo().join("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    ok(&[
        "--db",
        s(&db),
        "feed",
        "add",
        s(&certfr),
        "--name",
        "certfr-apt31",
    ]);
    // A second feed listing one of the same addresses, with no actor.
    let mine = dir.path().join("mine.txt");
    std::fs::write(&mine, "94.59.209.77\n").expect("write");
    ok(&["--db", s(&db), "feed", "add", s(&mine), "--name", "mine"]);
    let o = ok(&[
        "--db",
        s(&db),
        "export",
        "blocklist",
        "--target",
        "zeek-intel",
        "--at",
        "2021-06-01",
    ]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 161);
    assert!(rows.iter().all(|r| r.len() == 4), "{text}");
    let shared = rows
        .iter()
        .find(|r| r[0] == "94.59.209.77")
        .expect("listed");
    assert_eq!(shared[2], "certfr-apt31,mine");
    assert_eq!(shared[3], "orbwatch blocklist; actor APT31");
    let only = rows.iter().find(|r| r[0] == "2.50.208.83").expect("listed");
    assert_eq!(only[2], "certfr-apt31");
    assert!(only[3].contains("actor APT31"));
}
