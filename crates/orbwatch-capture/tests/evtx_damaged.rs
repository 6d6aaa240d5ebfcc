//! A damaged EVTX chunk loses records; they are counted as rejected (from
//! the chunk header, or from the neighbouring chunks' record ids when the
//! header itself is damaged) and the file is marked as not read completely
//! (`fatal`, exit 2 in `hunt`), instead of "2 rejected" and exit 0.

mod common;

use std::path::Path;

use orbwatch_capture::evtx::read_evtx;

const HEADER: usize = 4096;
const CHUNK: usize = 65536;

/// Overwrite `len` bytes at `at` with a fixed pseudo-random pattern.
fn damage(buf: &mut [u8], at: usize, len: usize) {
    let mut x: u32 = 0x9e37_79b9;
    for b in &mut buf[at..at + len] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
}

fn read(buf: Vec<u8>) -> (usize, orbwatch_capture::Coverage) {
    let (events, cov) = common::collect(|s| read_evtx(std::io::Cursor::new(buf), s));
    (events.len(), cov)
}

fn lost(cov: &orbwatch_capture::Coverage) -> u64 {
    cov.reasons
        .iter()
        .filter(|(r, _)| r.starts_with("records lost"))
        .map(|(_, s)| s.count)
        .sum()
}

/// CC0 file (54 Kerberos 4771 records in one chunk): 8 KB overwritten in
/// the middle of its records.
#[test]
fn records_lost_in_a_damaged_chunk_are_rejected() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/captures/e2m_ID4771-Kerberos_brutforce_with_valid_user.evtx");
    let clean = std::fs::read(&path).unwrap();
    let (events, cov) = read(clean.clone());
    assert_eq!((events, cov.records, cov.errors), (54, 54, 0));
    assert!(cov.fatal.is_none());

    let mut buf = clean;
    damage(&mut buf, HEADER + 20_000, 8_000);
    let (events, cov) = read(buf);
    // Every record of the chunk is accounted for: read, or rejected.
    assert_eq!(cov.records, 54, "{:?}", cov.reasons);
    assert_eq!(events as u64 + cov.errors, 54, "{:?}", cov.reasons);
    // 37 read; 2 unreadable records reported by the parser, and 15 more
    // that the header counts but the parser never reached.
    assert_eq!(events, 37, "{:?}", cov.reasons);
    assert_eq!(cov.errors, 17, "{:?}", cov.reasons);
    assert_eq!(lost(&cov), 15);
    let fatal = cov.fatal.expect("a damaged chunk is an input error");
    assert!(fatal.contains("chunk 0"), "{fatal}");
}

/// The GPL multi-chunk file (733 records in 7 chunks), read from the
/// corpus: a chunk damaged in the middle, and one whose header is
/// overwritten (its count then comes from its neighbours: ids 356..=476).
#[test]
fn a_damaged_chunk_of_a_multi_chunk_file() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let path = corpus.join("evtx/evtxattack_rdpcorets_148_mst120_bluekeep_rpdscan_full.evtx");
    let Ok(clean) = std::fs::read(&path) else {
        println!("skipped: {} not found", path.display());
        return;
    };
    let (_, cov) = read(clean.clone());
    assert_eq!((cov.records, cov.errors), (733, 0));

    let mut body = clean.clone();
    damage(&mut body, HEADER + 3 * CHUNK + 20_000, 8_000);
    let (_, cov) = read(body);
    assert_eq!(cov.records, 733, "{:?}", cov.reasons);
    // 2 unreadable records reported by the parser, 14 the header counts
    // that it never reached (before: 719 records, "2 rejected", exit 0).
    assert_eq!((cov.errors, lost(&cov)), (16, 14), "{:?}", cov.reasons);
    assert!(cov.fatal.as_deref().unwrap_or("").contains("chunk 3"));

    let mut header = clean;
    damage(&mut header, HEADER + 3 * CHUNK, 512);
    let (_, cov) = read(header);
    assert_eq!(cov.records, 733, "{:?}", cov.reasons);
    // 121 records (ids 356..=476): one counted as the unreadable chunk,
    // 120 as lost.
    assert_eq!(cov.errors, 121, "{:?}", cov.reasons);
    assert_eq!(lost(&cov), 120);
    assert!(cov.fatal.is_some());
}
