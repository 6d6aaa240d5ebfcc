//! Syslog over TCP on loopback: util-linux `logger` as the sender in both
//! RFC 6587 framings, raw sockets for the framing edge cases, and the
//! limits (connection flood, idle clients, back-pressure, stop).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown as NetShutdown, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::*;
use orbwatch_listen::{FramingLimits, ListenerConfig, SyslogTcpConfig};
use orbwatch_live::Payload;

fn tcp(cfg: SyslogTcpConfig, capacity: usize) -> Running {
    start(ListenerConfig::SyslogTcp(cfg), capacity)
}

/// Lines `line 1` … `line n` in a file for `logger -f`.
fn lines_file(n: usize) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for i in 1..=n {
        writeln!(f, "line {i} from logger").unwrap();
    }
    f.flush().unwrap();
    f
}

fn logger(port: u16, args: &[&str], file: &std::path::Path) {
    let st = Command::new("logger")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .args(["-t", "orbtest", "-f"])
        .arg(file)
        .status()
        .unwrap();
    assert!(st.success(), "logger failed: {st}");
}

#[test]
fn logger_octet_counted_rfc5424_arrives_whole_and_in_order() {
    if !have_logger() {
        return;
    }
    let run = tcp(SyslogTcpConfig::new(loopback()), 1024);
    let n = 500;
    let f = lines_file(n);
    logger(
        run.addr().port(),
        &["--tcp", "--octet-count", "--rfc5424"],
        f.path(),
    );
    let recs = run.take(n, Duration::from_secs(10));
    assert_eq!(recs.len(), n);
    let mut wire = 0u64;
    for (i, r) in recs.iter().enumerate() {
        let t = text(r);
        assert!(t.starts_with("<13>1 "), "{t}");
        assert!(t.ends_with(&format!(" line {} from logger", i + 1)), "{t}");
        assert_eq!(r.number, i as u64 + 1);
        assert_eq!(r.payload, Payload::Syslog);
        assert_eq!(r.offset, wire);
        assert!(
            r.stream
                .starts_with(&format!("syslog-tcp {} from 127.0.0.1:", run.addr())),
            "{}",
            r.stream
        );
        // `LEN SP MSG`, no line ending.
        wire += (r.bytes.len().to_string().len() + 1 + r.bytes.len()) as u64;
    }
    assert!(wait_for(Duration::from_secs(2), || run.snap().bytes == wire));
    let s = run.settled(|s| s.records == n as u64);
    assert_eq!(s.connections, 1);
    assert_eq!((s.malformed, s.truncated, s.refused), (0, 0, 0));
}

#[test]
fn logger_newline_framed_rfc3164_arrives_whole() {
    if !have_logger() {
        return;
    }
    let run = tcp(SyslogTcpConfig::new(loopback()), 1024);
    let n = 300;
    let f = lines_file(n);
    logger(run.addr().port(), &["--tcp", "--rfc3164"], f.path());
    let recs = run.take(n, Duration::from_secs(10));
    assert_eq!(recs.len(), n);
    let mut wire = 0u64;
    for (i, r) in recs.iter().enumerate() {
        let t = text(r);
        assert!(t.starts_with("<13>"), "{t}");
        assert!(
            t.ends_with(&format!("orbtest: line {} from logger", i + 1)),
            "{t}"
        );
        assert!(!t.contains('\n'));
        wire += r.bytes.len() as u64 + 1;
    }
    assert!(wait_for(Duration::from_secs(2), || run.snap().bytes == wire));
    assert_eq!(run.settled(|s| s.records == n as u64).malformed, 0);
}

/// Write pieces with pauses so that they arrive in separate reads.
fn send_slowly(s: &mut TcpStream, pieces: &[&[u8]]) {
    for p in pieces {
        s.write_all(p).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
}

#[test]
fn framing_edge_cases_over_a_real_socket() {
    let run = tcp(SyslogTcpConfig::new(loopback()), 1024);
    let mut s = TcpStream::connect(run.addr()).unwrap();
    send_slowly(
        &mut s,
        &[
            // An octet count split across reads, then its message in two.
            b"2",
            b"5 <13>split count and bo",
            b"dy\n",
            // LF inside an octet-counted message is kept.
            b"18 <13>two\nlines here",
            // Empty lines, CRLF, NUL.
            b"\n\n\r\n<14>crlf\r\n<15>nul\0inside\0\n",
            // A non-digit after digits: malformed, kept as a line.
            b"12x <13>not a count\n",
            // A huge count: malformed, resync at the next LF.
            b"99999999999 <13>huge\n",
            b"<13>after\n",
        ],
    );
    s.shutdown(NetShutdown::Write).unwrap();
    let recs = run.take(7, Duration::from_secs(5));
    let got: Vec<String> = recs.iter().map(text).collect();
    assert_eq!(
        got,
        vec![
            "<13>split count and body",
            "<13>two\nlines here",
            "<14>crlf",
            "<15>nul\0inside",
            "12x <13>not a count",
            "99999999999 <13>huge",
            "<13>after",
        ]
    );
    assert!(wait_for(Duration::from_secs(2), || run.snap().malformed == 2));
    assert_eq!(run.settled(|s| s.records == 7).truncated, 0);
}

#[test]
fn a_megabyte_line_without_newline_is_cut_and_counted() {
    let limits = FramingLimits::default();
    let run = tcp(SyslogTcpConfig::new(loopback()), 16);
    let mut s = TcpStream::connect(run.addr()).unwrap();
    let big = vec![b'A'; 1 << 20];
    s.write_all(b"<13>").unwrap();
    s.write_all(&big).unwrap();
    // Still no newline: the message comes at the next LF.
    s.write_all(b"\n<13>next\n").unwrap();
    s.shutdown(NetShutdown::Write).unwrap();
    let recs = run.take(2, Duration::from_secs(5));
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].bytes.len(), limits.max_message);
    assert!(recs[0].bytes.starts_with(b"<13>AAAA"));
    assert_eq!(text(&recs[1]), "<13>next");
    assert!(wait_for(Duration::from_secs(2), || run.snap().truncated == 1));
    assert_eq!(run.snap().bytes, 4 + (1 << 20) + 1 + 9);
}

#[test]
fn a_flood_of_connections_is_refused_while_an_open_one_keeps_delivering() {
    let mut cfg = SyslogTcpConfig::new(loopback());
    cfg.max_connections = 4;
    let run = tcp(cfg, 1024);
    let mut open: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(run.addr()).unwrap())
        .collect();
    assert!(wait_for(Duration::from_secs(2), || run.snap().connections == 4));
    open[0].write_all(b"<13>before the flood\n").unwrap();
    assert_eq!(
        text(&run.take(1, Duration::from_secs(2))[0]),
        "<13>before the flood"
    );

    let flood: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(run.addr()).unwrap())
        .collect();
    assert!(
        wait_for(Duration::from_secs(5), || run.snap().refused == 50),
        "{:?}",
        run.snap()
    );
    // A refused client finds its connection closed.
    for mut c in flood {
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 1];
        let r = c.read(&mut b);
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
    open[0].write_all(b"<13>during and after\n").unwrap();
    assert_eq!(
        text(&run.take(1, Duration::from_secs(2))[0]),
        "<13>during and after"
    );

    // A closed connection frees its place.
    drop(open.pop());
    std::thread::sleep(Duration::from_millis(300));
    let mut again = TcpStream::connect(run.addr()).unwrap();
    again.write_all(b"<13>new one\n").unwrap();
    assert_eq!(text(&run.take(1, Duration::from_secs(2))[0]), "<13>new one");
    let s = run.settled(|s| s.records == 3);
    assert_eq!((s.connections, s.refused), (5, 50));
}

#[test]
fn idle_and_stuck_clients_are_closed_and_a_slow_one_blocks_no_other() {
    let mut cfg = SyslogTcpConfig::new(loopback());
    cfg.idle_timeout = Duration::from_millis(400);
    let run = tcp(cfg, 1024);
    // One connects and says nothing; one stops in the middle of an
    // octet-counted message.
    let mut silent = TcpStream::connect(run.addr()).unwrap();
    let mut stuck = TcpStream::connect(run.addr()).unwrap();
    stuck.write_all(b"40 <13>half a mess").unwrap();
    // Meanwhile another delivers at once.
    let mut busy = TcpStream::connect(run.addr()).unwrap();
    for i in 0..5 {
        busy.write_all(format!("<13>busy {i}\n").as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = run.take(5, Duration::from_secs(2));
    assert_eq!(first.len(), 5, "the busy client was held up");
    // Busy has paused ~50 ms only; silent and stuck pass the timeout.
    assert!(wait_for(Duration::from_secs(3), || run.snap().idle_closed >= 2));
    // What the stuck one sent is delivered, and its end is malformed.
    let rest = run.take(1, Duration::from_secs(2));
    assert_eq!(rest.len(), 1);
    assert_eq!(text(&rest[0]), "<13>half a mess");
    assert_eq!(run.snap().malformed, 1);
    for c in [&mut silent, &mut stuck] {
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 1];
        assert!(matches!(c.read(&mut b), Ok(0) | Err(_)));
    }
    // Busy, quiet since, is closed too once its own timeout passes.
    assert!(wait_for(Duration::from_secs(3), || run.snap().idle_closed == 3));
}

#[test]
fn a_full_pipeline_makes_tcp_wait_and_nothing_is_lost() {
    // Room for one record: the connection waits on every message.
    let run = tcp(SyslogTcpConfig::new(loopback()), 1);
    let n = 2000;
    let writer = {
        let addr = run.addr();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            for i in 0..n {
                let m = format!("<13>message {i}");
                s.write_all(format!("{} {m}", m.len()).as_bytes()).unwrap();
            }
        })
    };
    let mut got = 0;
    let mut next = 0;
    while got < n {
        let r = run.take(1, Duration::from_secs(10));
        assert_eq!(r.len(), 1, "stalled after {got}");
        assert_eq!(text(&r[0]), format!("<13>message {next}"));
        next += 1;
        got += 1;
        if got % 200 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    writer.join().unwrap();
    let s = run.settled(|s| s.records == n as u64);
    assert_eq!(s.dropped_full, 0);
}

/// Thousands of short messages in each read: the connection hands them
/// over in batches, cut inside a read (512 messages at most in one), and
/// every message arrives once, in order, numbered in order, with a queue
/// smaller than one read's messages.
#[test]
fn many_messages_in_one_read_arrive_whole_in_order_across_batches() {
    let run = tcp(SyslogTcpConfig::new(loopback()), 700);
    let n = 20_000;
    let mut all = Vec::new();
    for i in 0..n {
        let m = format!("<13>m{i}");
        all.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
    }
    let writer = {
        let addr = run.addr();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&all).unwrap();
        })
    };
    let got = run.take(n, Duration::from_secs(30));
    writer.join().unwrap();
    assert_eq!(got.len(), n);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(text(r), format!("<13>m{i}"));
        assert_eq!(r.number, i as u64 + 1);
    }
    let s = run.settled(|s| s.records == n as u64);
    assert_eq!((s.dropped_full, s.malformed), (0, 0));
}

#[test]
fn stop_reads_what_was_sent_then_refuses_connections() {
    let run = tcp(SyslogTcpConfig::new(loopback()), 1024);
    let addr = run.addr();
    let mut s = TcpStream::connect(addr).unwrap();
    for i in 0..100 {
        s.write_all(format!("<13>m{i}\n").as_bytes()).unwrap();
    }
    // A last line without LF: delivered at the end of the connection.
    s.write_all(b"<13>unterminated").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let Running { handle, rx, .. } = run;
    handle.stop();
    let recs: Vec<_> = rx.try_iter().collect();
    assert_eq!(recs.len(), 101);
    assert_eq!(text(&recs[100]), "<13>unterminated");
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn the_shared_shutdown_stops_the_listener() {
    let run = tcp(SyslogTcpConfig::new(loopback()), 16);
    let _client = TcpStream::connect(run.addr()).unwrap();
    run.shutdown.trigger();
    assert!(wait_for(Duration::from_secs(3), || run
        .handle
        .is_finished()));
}

#[test]
fn a_port_in_use_is_reported_with_what_to_do() {
    let first = tcp(SyslogTcpConfig::new(loopback()), 16);
    let (tx, _rx) = orbwatch_live::channel(1);
    let err = orbwatch_listen::spawn(
        ListenerConfig::SyslogTcp(SyslogTcpConfig::new(first.addr())),
        tx,
        Default::default(),
        Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(&format!(
            "cannot listen on {} (syslog-tcp): address already in use",
            first.addr()
        )),
        "{err}"
    );
}

#[test]
fn a_dual_stack_listener_names_ipv4_peers_as_ipv4() {
    let (tx, rx) = orbwatch_live::channel(16);
    let any6: std::net::SocketAddr = "[::]:0".parse().unwrap();
    let handle = match orbwatch_listen::spawn(
        ListenerConfig::SyslogTcp(SyslogTcpConfig::new(any6)),
        tx,
        Default::default(),
        Default::default(),
    ) {
        Ok(h) => h,
        Err(e) => {
            println!("skipped: no IPv6 here ({e})");
            return;
        }
    };
    let port = handle.local_addr().port();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"<13>v4 to v6\n").unwrap();
    let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let from = c.local_addr().unwrap();
    assert_eq!(&*r.stream, format!("syslog-tcp [::]:{port} from {from}"));
    drop(c);
    handle.stop();
}
