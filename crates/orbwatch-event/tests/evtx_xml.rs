//! The XML-per-line Windows event decoder on CrowdSec's windows-bf test
//! input (six 4625 events from 192.168.9.212 for a non-existent user,
//! which the hub's `windows-bf` scenario bans).

use orbwatch_event::decoders::{self, DecoderConfig};
use orbwatch_event::{AuthOutcome, Decoded, EventKind};

#[test]
fn crowdsec_windows_bf_is_detected_and_mapped() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/captures/crowdsec_windows-bf.log"
    );
    let text = std::fs::read(path).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 6);
    let info = decoders::detect(&lines);
    assert_eq!(info.name, "evtx-xml");
    let mut d = (info.make)(&DecoderConfig::default());
    let mut ids = Vec::new();
    for l in &lines {
        let Decoded::Event(e) = d.decode(l).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(e.kind, EventKind::Auth);
        assert_eq!(e.auth, Some(AuthOutcome::InvalidUser));
        assert_eq!(e.user.as_deref(), Some("asdfasdf"));
        assert_eq!(e.src_ip, Some("192.168.9.212".parse().unwrap()));
        assert_eq!(e.host.as_deref(), Some("DESKTOP-7QD9TN3"));
        assert_eq!(e.service.as_deref(), Some("logon-type-3"));
        let l = std::str::from_utf8(l).unwrap();
        let id = l.split("<EventRecordID>").nth(1).unwrap();
        ids.push(id[..id.find('<').unwrap()].to_string());
    }
    assert_eq!(ids, ["2559", "2560", "2561", "2562", "2563", "2563"]);
}

#[test]
fn unmapped_events_are_skipped_not_rejected() {
    let info = decoders::by_name("evtx-xml").unwrap();
    let mut d = (info.make)(&DecoderConfig::default());
    let x = br#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><Provider Name="Microsoft-Windows-Security-Auditing"/><EventID>4688</EventID><TimeCreated SystemTime="2021-05-21T20:43:07.1Z"/><Channel>Security</Channel></System><EventData><Data Name="NewProcessName">C:\x.exe</Data></EventData></Event>"#;
    assert_eq!(d.decode(x).unwrap(), Decoded::Skip);
}
