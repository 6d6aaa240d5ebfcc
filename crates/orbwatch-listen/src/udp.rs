//! UDP receivers: syslog (one datagram, one message) and NetFlow/IPFIX
//! (one datagram, one export packet), with the receive buffer sized and
//! kernel drops counted.
//!
//! Datagrams are read with `recvmsg` so that the kernel's per-socket drop
//! counter (`SO_RXQ_OVFL`, a control message on each datagram) comes with
//! them; std and socket2 have no call that returns control messages, hence
//! the small amount of `unsafe` here, each block with its reason.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_live::{LiveRecord, Payload, RecordSender, SourceStats};
use socket2::{Domain, Protocol, Socket, Type};

use crate::framing::trim_line_end;
use crate::streams::Streams;
use crate::{KernelDropSource, ListenError, ListenerKind, Pause, RecvBuffer, Stop, Throttle};

/// How long a read waits before the thread looks at the stop signal.
const READ_TICK: Duration = Duration::from_millis(200);
/// How often `/proc/net/snmp` is read when it is the drop counter.
const SNMP_POLL: Duration = Duration::from_secs(1);
/// Largest UDP payload (IPv6 without jumbograms: 65,535 − 8).
const MAX_DATAGRAM: usize = 65_536;

/// A bound UDP socket, ready to read.
pub(crate) struct Setup {
    socket: Socket,
    kind: ListenerKind,
    pub(crate) local: SocketAddr,
    pub(crate) recv_buffer: RecvBuffer,
    pub(crate) drops: KernelDropSource,
}

/// What the datagrams are.
pub(crate) enum Mode {
    Syslog {
        max_message: usize,
        max_senders: usize,
    },
    Netflow {
        max_exporters: usize,
    },
}

/// Create, size and bind the socket.
pub(crate) fn bind(
    kind: ListenerKind,
    addr: SocketAddr,
    asked: usize,
) -> Result<Setup, ListenError> {
    let sock_err = |what: &'static str| {
        move |source: io::Error| ListenError::Socket {
            kind,
            addr,
            what,
            source,
        }
    };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(sock_err("cannot create a UDP socket"))?;
    let recv_buffer = size_recv_buffer(&socket, asked);
    if recv_buffer.granted < recv_buffer.asked {
        tracing::warn!(
            "{kind} {addr}: receive buffer {} bytes asked, {} granted: bursts beyond it are dropped by the kernel (raise net.core.rmem_max with sysctl, or run with CAP_NET_ADMIN)",
            recv_buffer.asked,
            recv_buffer.granted
        );
    } else {
        tracing::info!(
            "{kind} {addr}: receive buffer {} bytes granted",
            recv_buffer.granted
        );
    }
    let drops = if set_int_opt(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1).is_ok() {
        KernelDropSource::SoRxqOvfl
    } else if udp_rcvbuf_errors(addr.is_ipv6()).is_some() {
        KernelDropSource::ProcNetSnmp
    } else {
        KernelDropSource::Unavailable
    };
    tracing::info!("{kind} {addr}: kernel drops counted from {drops}");
    socket
        .bind(&addr.into())
        .map_err(|e| ListenError::bind(kind, addr, e))?;
    socket
        .set_read_timeout(Some(READ_TICK))
        .map_err(sock_err("cannot set a read timeout"))?;
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    Ok(Setup {
        socket,
        kind,
        local,
        recv_buffer,
        drops,
    })
}

/// Ask for `asked` bytes of receive buffer; past `net.core.rmem_max`, try
/// `SO_RCVBUFFORCE` (allowed with CAP_NET_ADMIN).
fn size_recv_buffer(socket: &Socket, asked: usize) -> RecvBuffer {
    // The kernel reports twice what it grants (bookkeeping); halve it.
    let granted = |s: &Socket| s.recv_buffer_size().map(|n| n / 2).unwrap_or(0);
    let _ = socket.set_recv_buffer_size(asked);
    let mut got = granted(socket);
    if got < asked {
        let want = i32::try_from(asked).unwrap_or(i32::MAX);
        if set_int_opt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            want,
        )
        .is_ok()
        {
            got = granted(socket);
        }
    }
    RecvBuffer {
        asked,
        granted: got,
    }
}

fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `fd` is an open socket owned by the caller; the option value
    // is a plain int whose address and size are passed together.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One datagram read.
struct Datagram {
    len: usize,
    peer: Option<SocketAddr>,
    /// The socket's drop counter (`SO_RXQ_OVFL`), when the kernel attached it.
    dropped_so_far: Option<u32>,
    /// Longer than the buffer (`MSG_TRUNC`).
    cut: bool,
}

/// Room for the control messages `recvmsg` may return (one `SO_RXQ_OVFL`
/// u32; aligned as `cmsghdr`).
type ControlBuf = [u64; 8];

fn recv(
    fd: RawFd,
    buf: &mut [u8],
    control: &mut ControlBuf,
    dont_wait: bool,
) -> io::Result<Datagram> {
    // SAFETY: all-zero is a valid `sockaddr_storage` and `msghdr`.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of::<ControlBuf>() as _;
    let flags = if dont_wait { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: every pointer in `msg` points to a live buffer of the length
    // given with it, for the duration of the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut dropped_so_far = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel just
    // filled, within `msg_controllen`; the data of an SO_RXQ_OVFL message
    // is one u32, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                dropped_so_far = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>()));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Datagram {
        len: (n as usize).min(buf.len()),
        peer: sockaddr_to_std(&name, msg.msg_namelen),
        dropped_so_far,
        cut: msg.msg_flags & libc::MSG_TRUNC != 0,
    })
}

fn sockaddr_to_std(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(ss.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            // A v4 sender on a dual-stack socket: name it as v4.
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )),
            })
        }
        _ => None,
    }
}

/// Read datagrams until stopped, then read what the kernel still holds.
pub(crate) fn run(
    setup: Setup,
    mode: Mode,
    sender: RecordSender,
    stats: Arc<SourceStats>,
    stop: Stop,
    paused: Arc<Pause>,
) {
    let name = format!("{} {}", setup.kind, setup.local);
    let fd = setup.socket.as_raw_fd();
    let ipv6 = setup.local.is_ipv6();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut control: ControlBuf = [0; 8];
    let mut syslog_streams: Streams<IpAddr> = Streams::new(
        format!("{name} from "),
        match mode {
            Mode::Syslog { max_senders, .. } => max_senders,
            Mode::Netflow { .. } => 1,
        },
    );
    let mut exporters: Streams<SocketAddr> = Streams::new(
        "netflow ".to_string(),
        match mode {
            Mode::Netflow { max_exporters } => max_exporters,
            Mode::Syslog { .. } => 1,
        },
    );
    let unknown_peer = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut last_ovfl: u32 = 0;
    let mut snmp_last = match setup.drops {
        KernelDropSource::ProcNetSnmp => udp_rcvbuf_errors(ipv6),
        _ => None,
    };
    let mut snmp_polled = Instant::now();
    let mut drop_log = Throttle::new(Duration::from_secs(10));
    let mut full_log = Throttle::new(Duration::from_secs(10));
    let mut err_log = Throttle::new(Duration::from_secs(10));
    let mut kernel_drops_total = 0u64;
    let mut count_kernel_drops = |n: u64, log: &mut Throttle| {
        if n == 0 {
            return;
        }
        SourceStats::add(&stats.kernel_drops, n);
        kernel_drops_total += n;
        if log.ready().is_some() {
            tracing::warn!(
                "{name}: the kernel dropped {kernel_drops_total} datagrams so far (receive buffer full: the reader or the pipeline is too slow, or the buffer too small)"
            );
        }
    };
    let mut stopping_since: Option<Instant> = None;
    loop {
        let stopping = stop.is_set();
        if stopping {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            // A sender that keeps sending cannot hold the stop up.
            if since.elapsed() >= crate::tcp::DRAIN_LIMIT {
                break;
            }
        }
        if !stopping && paused.asked.load(Ordering::SeqCst) {
            paused.in_effect.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        paused.in_effect.store(false, Ordering::SeqCst);
        if let Some(prev) = snmp_last
            && snmp_polled.elapsed() >= SNMP_POLL
        {
            snmp_polled = Instant::now();
            if let Some(now) = udp_rcvbuf_errors(ipv6) {
                count_kernel_drops(now.saturating_sub(prev), &mut drop_log);
                snmp_last = Some(now);
            }
        }
        let d = match recv(fd, &mut buf, &mut control, stopping) {
            Ok(d) => d,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stopping {
                    break;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if err_log.ready().is_some() {
                    tracing::warn!("{name}: read failed: {e}");
                }
                if stopping {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if let Some(v) = d.dropped_so_far {
            // A cumulative u32 that may wrap.
            let delta = v.wrapping_sub(last_ovfl);
            last_ovfl = v;
            count_kernel_drops(u64::from(delta), &mut drop_log);
        }
        SourceStats::add(&stats.bytes, d.len as u64);
        let peer = d.peer.unwrap_or(unknown_peer);
        let received = Timestamp::now();
        let record = match mode {
            Mode::Syslog { max_message, .. } => {
                let msg = trim_line_end(&buf[..d.len]);
                if msg.is_empty() {
                    continue;
                }
                if d.cut || msg.len() > max_message {
                    SourceStats::add(&stats.truncated, 1);
                }
                let msg = &msg[..msg.len().min(max_message)];
                let (stream, number) = syslog_streams.next(peer.ip());
                LiveRecord {
                    prefiltered: None,
                    prework: Default::default(),
                    stream,
                    number,
                    offset: 0,
                    payload: Payload::Syslog,
                    bytes: msg.to_vec(),
                    received,
                    checkpoint: None,
                }
            }
            Mode::Netflow { .. } => {
                if d.len == 0 {
                    continue;
                }
                if d.cut {
                    SourceStats::add(&stats.truncated, 1);
                }
                let (stream, number) = exporters.next(peer);
                LiveRecord {
                    prefiltered: None,
                    prework: Default::default(),
                    stream,
                    number,
                    offset: 0,
                    payload: Payload::NetflowDatagram { exporter: peer },
                    bytes: buf[..d.len].to_vec(),
                    received,
                    checkpoint: None,
                }
            }
        };
        match sender.try_send(record) {
            Ok(true) => SourceStats::add(&stats.records, 1),
            Ok(false) => {
                SourceStats::add(&stats.dropped_full, 1);
                if let Some(more) = full_log.ready() {
                    tracing::warn!(
                        "{name}: the pipeline is full: datagram dropped ({more} more since the last warning); UDP cannot wait, use TCP where nothing may be lost"
                    );
                }
            }
            Err(_) => {
                tracing::info!("{name}: the pipeline has stopped; the listener stops");
                break;
            }
        }
    }
    if let Some(prev) = snmp_last
        && let Some(now) = udp_rcvbuf_errors(ipv6)
    {
        count_kernel_drops(now.saturating_sub(prev), &mut drop_log);
    }
    let evicted = syslog_streams.evicted + exporters.evicted;
    if evicted > 0 {
        tracing::info!(
            "{name}: {evicted} senders were forgotten to stay within the sender limit (their numbering restarted)"
        );
    }
}

/// The machine's UDP receive-buffer drop counter (`RcvbufErrors`) from
/// `/proc/net/snmp`, or `Udp6RcvbufErrors` from `/proc/net/snmp6`.
fn udp_rcvbuf_errors(ipv6: bool) -> Option<u64> {
    if ipv6 {
        let text = std::fs::read_to_string("/proc/net/snmp6").ok()?;
        parse_proc_net_snmp6(&text)
    } else {
        let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
        parse_proc_net_snmp(&text)
    }
}

/// `RcvbufErrors` of the `Udp:` lines of `/proc/net/snmp` (a header line of
/// names, then a line of values); `InErrors` on kernels too old to have it.
pub fn parse_proc_net_snmp(text: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let at = names
        .iter()
        .position(|n| *n == "RcvbufErrors")
        .or_else(|| names.iter().position(|n| *n == "InErrors"))?;
    values.get(at)?.parse().ok()
}

/// `Udp6RcvbufErrors` of `/proc/net/snmp6` (one `name value` per line).
pub fn parse_proc_net_snmp6(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == "Udp6RcvbufErrors").then_some(())?;
        it.next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_counters_are_read_by_name() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\nUdp: 3180 0 201 3382 199 0 2 0 0\nUdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdpLite: 0 0 0 0 7\n";
        assert_eq!(parse_proc_net_snmp(snmp), Some(199));
        let old = "Udp: InDatagrams NoPorts InErrors OutDatagrams\nUdp: 1 2 3 4\n";
        assert_eq!(parse_proc_net_snmp(old), Some(3));
        assert_eq!(parse_proc_net_snmp("Udp: InDatagrams\n"), None);
        assert_eq!(parse_proc_net_snmp(""), None);
        let snmp6 = "Udp6InErrors                    \t5\nUdp6RcvbufErrors                \t42\n";
        assert_eq!(parse_proc_net_snmp6(snmp6), Some(42));
        assert_eq!(parse_proc_net_snmp6("Udp6RcvbufErrors x\n"), None);
    }

    #[test]
    fn this_machine_has_a_readable_udp_counter() {
        // The real files: the fallback must work where SO_RXQ_OVFL does not.
        match std::fs::read_to_string("/proc/net/snmp") {
            Ok(text) => assert!(parse_proc_net_snmp(&text).is_some(), "{text}"),
            Err(_) => println!("skipped: no /proc/net/snmp on this machine"),
        }
    }
}
