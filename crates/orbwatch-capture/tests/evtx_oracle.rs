//! EVTX files against the PyPI `evtx` package: records per event id agree
//! exactly with `tests/oracle/evtx_counts.json`, made by
//! `tests/oracle/evtx_counts.py` over `../shared/corpus/evtx`. The CC0
//! files (EVTX-to-MITRE-Attack) are copied in `tests/data/captures`; the
//! GPL ones (EVTX-ATTACK-SAMPLES) are read from the corpus when present.
//! When python3 with `evtx` is installed, the oracle is also recomputed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orbwatch_capture::evtx::read_evtx;
use orbwatch_event::{AuthOutcome, EventKind};

fn oracle() -> BTreeMap<String, BTreeMap<String, u64>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/evtx_counts.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/captures")
}

fn read(path: &Path) -> (Vec<orbwatch_capture::Emitted>, orbwatch_capture::Coverage) {
    let f = std::fs::File::open(path).unwrap();
    common::collect(|s| read_evtx(f, s))
}

/// Event ids the mapping turns into events (see `evtx_xml`).
const MAPPED: &[&str] = &[
    "4624", "4625", "4648", "4768", "4771", "4776", "18456", "131",
];

#[test]
fn records_per_event_id_match_python_evtx() {
    let oracle = oracle();
    let corpus = common::corpus();
    let mut files = 0;
    for (name, want) in &oracle {
        let local = data_dir().join(name);
        let path = if local.exists() {
            local
        } else if let Some(c) = &corpus {
            c.join("evtx").join(name)
        } else {
            continue;
        };
        let (events, cov) = read(&path);
        assert_eq!(cov.errors, 0, "{name}: {:?}", cov.reasons);
        assert_eq!(&cov.record_types, want, "{name}");
        let mapped: u64 = want
            .iter()
            .filter(|(id, _)| MAPPED.contains(&id.as_str()))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(events.len() as u64, mapped, "{name}");
        files += 1;
    }
    assert!(files >= 7);
}

#[test]
fn oracle_is_reproducible_with_python_evtx() {
    let Some(c) = common::corpus() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/evtx_counts.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(c.join("evtx"))
        .output();
    let ok = matches!(&out, Ok(o) if o.status.success());
    if !ok {
        if std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("python3 with the evtx package is required: {out:?}");
        }
        println!("skipped: python evtx not installed");
        return;
    }
    let fresh: BTreeMap<String, BTreeMap<String, u64>> =
        serde_json::from_slice(&out.unwrap().stdout).unwrap();
    assert_eq!(fresh, oracle());
}

#[test]
fn logon_fields_are_mapped() {
    let (ev, _) = read(&data_dir().join("e2m_ID4768-4771-Kerberos_user_enumeration_Kerbrute.evtx"));
    let k4771: Vec<_> = ev
        .iter()
        .filter(|e| e.raw().contains("<EventID>4771</EventID>"))
        .collect();
    assert_eq!(k4771.len(), 22);
    let e = &k4771[0].event;
    assert_eq!(e.kind, EventKind::Auth);
    assert_eq!(e.service.as_deref(), Some("kerberos"));
    assert_eq!(e.src_ip, Some("10.23.123.11".parse().unwrap()));
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    assert!(k4771[0].raw().contains("<Channel>Security</Channel>"));
    assert!(k4771[0].record > 0);

    let (ev, _) =
        read(&data_dir().join("e2m_ID4625-OpenSSH_brutforce_with_non_existing_users.evtx"));
    let f: Vec<_> = ev
        .iter()
        .filter(|e| e.raw().contains("<EventID>4625</EventID>"))
        .collect();
    assert_eq!(f.len(), 5);
    assert!(
        f.iter()
            .all(|e| e.event.auth == Some(AuthOutcome::InvalidUser))
    );

    let (ev, _) = read(
        &data_dir().join("e2m_ID18456-SQL_Server_failed_login_because_only_Windows_auth.evtx"),
    );
    assert_eq!(ev.len(), 6);
    assert!(
        ev.iter()
            .all(|e| e.event.service.as_deref() == Some("mssql")
                && e.event.auth == Some(AuthOutcome::Failure)
                && e.event.user.is_some())
    );
}

/// The binary reader and the XML-per-line text decoder give the same
/// events for the same records.
#[test]
fn binary_and_xml_text_agree() {
    let (ev, _) = read(&data_dir().join("e2m_ID4771-Kerberos_brutforce_with_valid_user.evtx"));
    assert_eq!(ev.len(), 54);
    let info = orbwatch_event::decoders::by_name("evtx-xml").unwrap();
    let mut dec = (info.make)(&Default::default());
    for e in &ev {
        match dec.decode(e.raw().as_bytes()).unwrap() {
            orbwatch_event::Decoded::Event(t) => assert_eq!(*t, e.event),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn truncated_evtx_keeps_earlier_records() {
    let full = std::fs::read(data_dir().join("e2m_ID4771-Kerberos_brutforce_with_valid_user.evtx"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.evtx");
    std::fs::write(&p, &full[..4096 + 12000]).unwrap();
    let (ev, cov) = read(&p);
    // The cut itself, and each of the 54 records the chunk header counts
    // that was not read (21 read, 33 lost).
    assert_eq!(cov.errors, 34, "{:?}", cov.reasons);
    assert_eq!(cov.records, 54);
    assert!(
        cov.reasons
            .contains_key("truncated EVTX file (last chunk cut short)")
    );
    assert!(cov.fatal.as_deref().unwrap().contains("truncated EVTX"));
    println!("{} of 54 events kept", ev.len());
    assert!(!ev.is_empty() && ev.len() < 54, "{}", ev.len());
    // Every kept event is one of the first records, in order.
    let (all, _) = read(&data_dir().join("e2m_ID4771-Kerberos_brutforce_with_valid_user.evtx"));
    for (a, b) in ev.iter().zip(&all) {
        assert_eq!(a.event, b.event);
    }
}
