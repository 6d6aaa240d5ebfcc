//! `orbwatch routers` end to end against the router lab of
//! orbwatch-routers (tests/common there): a feed with the persistent
//! implant's hash is loaded with `feed add`, then `routers audit`,
//! `reboot --dry-run`, `history`, `schedule`, and a changed host key.

#[path = "../../orbwatch-routers/tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::{Lab, LabSpec, Plant};

fn orbwatch(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run orbwatch")
}

#[test]
fn routers_audit_reboot_dry_run_history_schedule_and_host_key() {
    let Some(lab) = Lab::start(&[
        LabSpec::new("clean", Plant::Clean),
        LabSpec::new("memory", Plant::MemoryImplant),
        LabSpec::new("persistent", Plant::PersistentImplant),
        LabSpec::new("dns", Plant::HijackedDns),
    ]) else {
        return;
    };
    let dir = lab.dir.path();
    let db = dir.join("store.db");
    let inv = dir.join("routers.toml");
    std::fs::write(&inv, lab.inventory(|_| String::new())).unwrap();
    let inv_s = inv.to_str().unwrap();
    let feed = dir.join("lab-implants.txt");
    std::fs::write(
        &feed,
        format!(
            "# test feed: the lab's persistent implant\n{}\n",
            lab.persistent_sha256
        ),
    )
    .unwrap();
    let o = orbwatch(
        &db,
        &["feed", "add", feed.to_str().unwrap(), "--format", "plain"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let o = orbwatch(
        &db,
        &[
            "routers",
            "audit",
            "--inventory",
            inv_s,
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |r: &str| lines.iter().filter(|f| f["targets"][0] == r).count();
    assert_eq!(
        (
            count("clean"),
            count("memory"),
            count("persistent"),
            count("dns")
        ),
        (0, 2, 3, 1)
    );
    assert!(
        lines
            .iter()
            .all(|f| f["kind"] == "router_audit" && f["id"].is_string())
    );
    let hash = lines
        .iter()
        .find(|f| f["details"]["check"] == "hash_indicator")
        .unwrap();
    assert_eq!(hash["details"]["feed"], "lab-implants");
    assert_eq!(hash["severity"], "critical");

    let o = orbwatch(
        &db,
        &[
            "routers",
            "audit",
            "--inventory",
            inv_s,
            "--fail-on",
            "critical",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(table.lines().count(), 7, "header + 6 findings:\n{table}");

    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM findings WHERE kind = 'router_audit'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 12, "two audits of 6 findings");
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM router_history WHERE action = 'audit' AND step = 'audited'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 8);

    let o = orbwatch(
        &db,
        &[
            "routers",
            "reboot",
            "--inventory",
            inv_s,
            "--only",
            "memory",
            "--dry-run",
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["outcome"], "dry_run");
    assert!(!lab.commands(1).iter().any(|c| c == "reboot"));

    let o = orbwatch(&db, &["routers", "history", "--router", "memory"]);
    let h = String::from_utf8_lossy(&o.stdout);
    assert_eq!(h.lines().count(), 4, "2 audits, precheck, dry_run:\n{h}");
    assert!(
        h.lines()
            .nth(3)
            .unwrap()
            .contains(" memory reboot dry_run ok "),
        "{h}"
    );
    let o = orbwatch(
        &db,
        &[
            "routers", "history", "--router", "memory", "--format", "jsonl",
        ],
    );
    let jsonl = String::from_utf8_lossy(&o.stdout).to_string();
    let steps: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each line carries the stored detail JSON byte for byte (the typed
    // detail writes back what it read).
    let stored: Vec<String> = conn
        .prepare("SELECT detail_json FROM router_history WHERE router = 'memory' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored.len(), 4);
    for (line, detail) in jsonl.lines().zip(&stored) {
        assert!(
            line.ends_with(&format!("\"detail\":{detail}}}")),
            "{line} / {detail}"
        );
    }
    assert_eq!(
        steps.iter().map(|s| s["step"].clone()).collect::<Vec<_>>(),
        ["audited", "audited", "precheck", "dry_run"]
    );
    assert!(steps.iter().all(|s| s["router"] == "memory"));
    assert!(
        steps
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );

    // The HTML report shows each router's standing and latest steps.
    let html_path = db.with_extension("html");
    let o = orbwatch(
        &db,
        &["report", "--html", html_path.to_str().unwrap(), "--force"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.contains("<section id=\"routers\">"),
        "no routers section"
    );
    for name in ["clean", "memory", "persistent", "dns"] {
        assert!(
            html.contains(&format!("<details class=\"router\" id=\"router-{name}\">")),
            "router {name} missing from the report"
        );
    }
    assert!(
        html.contains("memory: latest 4 steps"),
        "the memory router's steps"
    );
    // The steps' details in words, from the typed detail: none is left
    // as raw JSON.
    assert!(html.contains("would run `reboot`"), "the dry run in words");
    assert!(!html.contains("{&quot;"), "a detail shown as raw JSON");

    let o = orbwatch(&db, &["routers", "schedule", "--inventory", inv_s]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("OnCalendar=Sun *-*-* 02:15:00"), "{s}");
    assert!(s.contains("routers reboot --inventory"), "{s}");
    let o = orbwatch(
        &db,
        &[
            "routers",
            "schedule",
            "--inventory",
            inv_s,
            "--format",
            "cron",
        ],
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("15 2 * * 0 "));

    // The user's own known-vulnerable list, named in the inventory.
    std::fs::write(
        dir.join("vuln.toml"),
        "[[entry]]\nid = \"orblab-old\"\nos = \"orblab\"\nbelow = \"1.1\"\nseverity = \"high\"\nsources = [\"https://example.org/advisory\"]\n",
    )
    .unwrap();
    let vinv = dir.join("routers-vuln.toml");
    std::fs::write(
        &vinv,
        format!(
            "vulnerable = [\"vuln.toml\"]\n{}",
            lab.inventory(|_| String::new())
        ),
    )
    .unwrap();
    let o = orbwatch(
        &db,
        &[
            "routers",
            "audit",
            "--inventory",
            vinv.to_str().unwrap(),
            "--only",
            "clean",
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["details"]["check"], "firmware");
    assert_eq!(f["details"]["entry"], "orblab-old");
    assert!(
        f["details"]["list"]
            .as_str()
            .unwrap()
            .ends_with("vuln.toml")
    );

    // A changed host key: loud error, exit 2, a critical finding, no command.
    let before = lab.commands(0).len();
    lab.change_host_key(0);
    let o = orbwatch(
        &db,
        &[
            "routers",
            "audit",
            "--inventory",
            inv_s,
            "--only",
            "clean",
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HOST KEY CHANGED for router clean"));
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["details"]["check"], "host_key_changed");
    assert_eq!(lab.commands(0).len(), before);

    // Bad inventory: a clear error naming the key, exit 2.
    std::fs::write(
        &inv,
        "[[router]]\nname='x'\nhost='h'\nuser='u'\nprofile='busybox'\npassword='p'\n",
    )
    .unwrap();
    let o = orbwatch(&db, &["routers", "audit", "--inventory", inv_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("password"));
}
