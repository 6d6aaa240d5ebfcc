//! Windows 4648 (a logon attempted with explicit credentials) read from
//! binary EVTX carries what the spray detector needs: the target account,
//! and the source address or the server named. Counts per file are the
//! PyPI `evtx` oracle's (`tests/oracle/evtx_counts.json`); the files are
//! the CC0 EVTX-to-MITRE-Attack samples copied in `tests/data/captures`.

mod common;

use std::path::Path;

use orbwatch_capture::evtx::read_evtx;
use orbwatch_event::EventKind;

#[test]
fn explicit_credential_events_carry_account_and_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/captures");
    for (file, want) in [
        (
            "e2m_ID4625-OpenSSH_brutforce_with_non_existing_users.evtx",
            1,
        ),
        ("e2m_ID4625-OpenSSH_brutforce_with_valid_users.evtx", 2),
    ] {
        let f = std::fs::File::open(dir.join(file)).expect("open sample");
        let (events, _) = common::collect(|s| read_evtx(f, s));
        let x: Vec<_> = events
            .iter()
            .map(|e| &e.event)
            .filter(|e| e.service.as_deref() == Some("explicit-credentials"))
            .collect();
        for e in &x {
            println!(
                "{file}: {:?} {:?} {:?} {:?}",
                e.user, e.src_ip, e.host, e.time
            );
            assert_eq!(e.kind, EventKind::Auth);
            assert_eq!(e.auth, None, "4648 gives no outcome");
            assert!(e.user.as_deref().is_some_and(|u| !u.is_empty()));
            assert!(e.src_ip.is_some() || e.host.is_some());
            assert!(e.time.is_some());
        }
        assert_eq!(x.len(), want, "{file}");
    }
}
