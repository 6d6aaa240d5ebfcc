//! Syslog over UDP on loopback: `logger --udp` as the sender, trimming and
//! cutting of datagrams, one stream per sender, a full pipeline (counted
//! `dropped_full`) and a full kernel buffer (counted `kernel_drops`).

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::*;
use orbwatch_listen::{KernelDropSource, ListenerConfig, SyslogUdpConfig};
use orbwatch_live::Payload;

fn udp(cfg: SyslogUdpConfig, capacity: usize) -> Running {
    start(ListenerConfig::SyslogUdp(cfg), capacity)
}

#[test]
fn logger_udp_messages_arrive_one_per_datagram() {
    if !have_logger() {
        return;
    }
    let run = udp(SyslogUdpConfig::new(loopback()), 4096);
    let rb = run.handle.recv_buffer().unwrap();
    assert_eq!(rb.asked, 8 * 1024 * 1024);
    assert!(rb.granted > 0);
    let n = 200;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for i in 1..=n {
        writeln!(f, "udp line {i}").unwrap();
    }
    f.flush().unwrap();
    let st = Command::new("logger")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(run.addr().port().to_string())
        .args(["--udp", "--rfc3164", "-t", "orbtest", "-f"])
        .arg(f.path())
        .status()
        .unwrap();
    assert!(st.success());
    let recs = run.take(n, Duration::from_secs(10));
    assert_eq!(recs.len(), n);
    let mut bytes = 0;
    for (i, r) in recs.iter().enumerate() {
        let t = text(r);
        assert!(t.starts_with("<13>"), "{t}");
        assert!(t.ends_with(&format!("orbtest: udp line {}", i + 1)), "{t}");
        assert_eq!(r.number, i as u64 + 1);
        assert_eq!(r.payload, Payload::Syslog);
        assert_eq!(
            &*r.stream,
            format!("syslog-udp {} from 127.0.0.1", run.addr())
        );
        // logger sends no line ending over UDP.
        bytes += r.bytes.len() as u64;
    }
    let s = run.settled(|s| s.records == n as u64);
    assert_eq!(s.bytes, bytes);
    assert_eq!((s.dropped_full, s.kernel_drops, s.truncated), (0, 0, 0));
}

#[test]
fn endings_are_trimmed_long_datagrams_cut_and_senders_kept_apart() {
    let mut cfg = SyslogUdpConfig::new(loopback());
    cfg.max_message = 100;
    let run = udp(cfg, 64);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.2:0").unwrap();
    a.send_to(b"<13>one\n", run.addr()).unwrap();
    a.send_to(b"<13>two\0", run.addr()).unwrap();
    a.send_to(b"\n", run.addr()).unwrap(); // empty: skipped
    b.send_to(b"<13>from b\r\n", run.addr()).unwrap();
    let long = [b"<13>".as_slice(), &[b'x'; 5000]].concat();
    a.send_to(&long, run.addr()).unwrap();
    let recs = run.take(4, Duration::from_secs(5));
    let got: Vec<(String, u64, String)> = recs
        .iter()
        .map(|r| (r.stream.to_string(), r.number, text(r)))
        .collect();
    let sa = format!("syslog-udp {} from 127.0.0.1", run.addr());
    let sb = format!("syslog-udp {} from 127.0.0.2", run.addr());
    assert_eq!(
        got,
        vec![
            (sa.clone(), 1, "<13>one".into()),
            (sa.clone(), 2, "<13>two".into()),
            (sb, 1, "<13>from b".into()),
            (sa, 3, format!("<13>{}", "x".repeat(96))),
        ]
    );
    let s = run.settled(|s| s.records == 4);
    assert_eq!(s.truncated, 1);
    assert_eq!(s.bytes, 8 + 8 + 1 + 12 + 5004);
}

#[test]
fn a_full_pipeline_drops_and_counts() {
    // Room for one record, and the test does not read until the end.
    let run = udp(SyslogUdpConfig::new(loopback()), 1);
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50 {
        c.send_to(format!("<13>m{i}").as_bytes(), run.addr())
            .unwrap();
    }
    assert!(
        wait_for(Duration::from_secs(5), || {
            let s = run.snap();
            s.records + s.dropped_full == 50
        }),
        "{:?}",
        run.snap()
    );
    let s = run.snap();
    assert_eq!((s.records, s.dropped_full, s.kernel_drops), (1, 49, 0));
    let r = run.take(1, Duration::from_secs(1));
    assert_eq!((text(&r[0]), r[0].number), ("<13>m0".to_string(), 1));
}

/// The receiver stops reading, a sender floods a socket whose buffer is
/// the kernel's smallest, and the kernel's drops are counted.
#[test]
fn kernel_drops_of_a_full_receive_buffer_are_counted() {
    let mut cfg = SyslogUdpConfig::new(loopback());
    cfg.recv_buffer = 1; // the kernel rounds it up to its minimum
    let run = udp(cfg, 100_000);
    let source = run.handle.kernel_drop_source().unwrap();
    println!(
        "kernel drops from: {source}; receive buffer {:?}",
        run.handle.recv_buffer()
    );
    assert!(run.handle.recv_buffer().unwrap().granted < 64 * 1024);
    run.handle.set_paused(true);
    std::thread::sleep(Duration::from_millis(50));
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    let flood = 500u64;
    let payload = [b"<13>".as_slice(), &[b'f'; 1000]].concat();
    for _ in 0..flood {
        c.send_to(&payload, run.addr()).unwrap();
    }
    run.handle.set_paused(false);
    // With SO_RXQ_OVFL the count rides on the next datagram read: send one
    // once the buffer is drained.
    let quiet = run.drain(Duration::from_millis(300));
    c.send_to(b"<13>marker", run.addr()).unwrap();
    let marker = run.take(1, Duration::from_secs(5));
    assert_eq!(marker.len(), 1);
    match source {
        KernelDropSource::SoRxqOvfl => {
            // Exact for this socket: every datagram was read or dropped.
            let s = run.settled(|s| s.records == quiet.len() as u64 + 1);
            assert!(s.kernel_drops > 0, "{s:?}");
            assert_eq!(s.records + s.kernel_drops, flood + 1, "{s:?}");
            assert_eq!(quiet.len() as u64 + 1, s.records);
        }
        KernelDropSource::ProcNetSnmp => {
            // Machine-wide: at least ours.
            assert!(wait_for(Duration::from_secs(3), || {
                let s = run.snap();
                s.kernel_drops + s.records > flood
            }));
        }
        KernelDropSource::Unavailable => {
            println!("skipped: this kernel gives neither SO_RXQ_OVFL nor /proc/net/snmp")
        }
    }
    assert_eq!(run.snap().dropped_full, 0);
}

/// On a dual-stack `[::]` socket, IPv4 senders are named as IPv4, so the
/// same router has the same stream whichever socket it reaches.
#[test]
fn a_dual_stack_listener_names_ipv4_senders_as_ipv4() {
    let (tx, rx) = orbwatch_live::channel(16);
    let any6: std::net::SocketAddr = "[::]:0".parse().unwrap();
    let handle = match orbwatch_listen::spawn(
        ListenerConfig::SyslogUdp(SyslogUdpConfig::new(any6)),
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
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(b"<13>v4 to v6", ("127.0.0.1", port)).unwrap();
    let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(&*r.stream, format!("syslog-udp [::]:{port} from 127.0.0.1"));
    handle.stop();
}

/// Datagrams waiting in the kernel when the listener stops are read and
/// handed over before it ends (even while paused).
#[test]
fn stop_reads_the_datagrams_already_queued() {
    let run = udp(SyslogUdpConfig::new(loopback()), 1024);
    run.handle.set_paused(true);
    std::thread::sleep(Duration::from_millis(50));
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20 {
        c.send_to(format!("<13>queued {i}").as_bytes(), run.addr())
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(run.rx.is_empty());
    let Running {
        handle, rx, stats, ..
    } = run;
    handle.stop();
    let got: Vec<String> = rx.try_iter().map(|r| text(&r)).collect();
    let want: Vec<String> = (0..20).map(|i| format!("<13>queued {i}")).collect();
    assert_eq!(got, want);
    assert_eq!(stats.snapshot().records, 20);
}
