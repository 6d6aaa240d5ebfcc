//! NUL padding in text logs (issue 19): a run of NULs of any length before
//! a line is skipped and counted without buffering, so the line after it is
//! read whole; scattered NULs and control bytes still mean binary.

use orbwatch_source::{LineReader, MAX_LINE, looks_binary};

#[test]
fn a_nul_run_longer_than_a_line_is_skipped_not_cut() {
    let mut data = b"first line\n".to_vec();
    data.extend(std::iter::repeat_n(0u8, 2 * MAX_LINE + 7));
    data.extend_from_slice(b"after the padding\n\0\0\0last\n");
    let mut r = LineReader::new(std::io::BufReader::with_capacity(4096, &data[..]));
    let mut lines = Vec::new();
    while let Some(l) = r.next_line().unwrap() {
        assert!(!l.truncated);
        lines.push((
            l.number,
            l.offset,
            String::from_utf8(l.bytes.to_vec()).unwrap(),
        ));
    }
    let pad = (2 * MAX_LINE + 7) as u64;
    assert_eq!(
        lines,
        vec![
            (1, 0, "first line".to_string()),
            (2, 11 + pad, "after the padding".to_string()),
            (3, 11 + pad + 18 + 3, "last".to_string()),
        ]
    );
    assert_eq!(r.nul_bytes(), pad + 3);
    assert_eq!(r.position(), data.len() as u64);
}

#[test]
fn padding_is_text_scattered_nuls_are_binary() {
    let log = b"Feb 12 14:10:21 sd-126005 sshd[16378]: Invalid user pascal from 35.188.49.176 port 53502\n";
    let mut padded = vec![0u8; 8192];
    padded.extend_from_slice(log);
    assert!(!looks_binary(&padded), "NUL run before text");
    assert!(!looks_binary(&vec![0u8; 8192]), "only padding so far");
    let mut mid = log.repeat(20);
    mid.splice(500..500, std::iter::repeat_n(0u8, 300));
    assert!(!looks_binary(&mid), "NUL run inside text");
    // UTF-16 or binary structures: NULs between the other bytes.
    let utf16: Vec<u8> = log.iter().flat_map(|b| [*b, 0]).collect();
    assert!(looks_binary(&utf16));
    let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(looks_binary(&elf[..8192]));
}
