//! Network sources of `orbwatch watch`: syslog over UDP, TCP and TLS, and
//! a NetFlow v5/v9/IPFIX collector.
//!
//! Each listener receives bytes and hands them to the live pipeline as
//! [`LiveRecord`](orbwatch_live::LiveRecord)s through the bounded
//! [`RecordSender`]; it never decodes. Syslog messages leave here as
//! `Payload::Syslog` with their framing removed, NetFlow datagrams as
//! `Payload::NetflowDatagram`; the engine decodes them with the same
//! decoders `hunt` uses. What a listener does is counted in its
//! [`SourceStats`].
//!
//! Streams (each keeps its own decoder state in the pipeline):
//! - `syslog-udp <listen> from <sender ip>`: one per sender address;
//! - `syslog-tcp <listen> from <peer ip:port>` and `syslog-tls …`: one per
//!   connection;
//! - `netflow <exporter ip:port>`: one per exporter.
//!
//! `number` counts messages on a stream from 1 (a UDP message dropped
//! because the pipeline was full keeps its number, so the gap shows).
//!
//! # Threads, not an async runtime
//!
//! Every listener runs on plain threads: one per UDP socket, one accept
//! thread per TCP/TLS socket and one thread per connection (up to
//! [`SyslogTcpConfig::max_connections`]). Why: the seam to the pipeline is
//! a blocking, bounded channel whose `send` *is* the back-pressure of TCP
//! (a connection waits, so nothing is lost). In a thread that wait is
//! free and touches no other connection; inside an async runtime every
//! wait would need `block_in_place` or a hand-off, and one full pipeline
//! could stall the runtime's workers and with them the timers that close
//! idle clients. A syslog daemon has tens of senders (relays, routers),
//! not tens of thousands, so a thread each (small stacks) costs little;
//! TLS is rustls driven synchronously (`rustls::StreamOwned`), so no
//! runtime is pulled in at all. Sockets read with a short timeout, which is
//! when a thread checks the shutdown signal and its idle deadline.
//!
//! # Losing nothing, or saying so
//!
//! TCP and TLS wait for the pipeline (`RecordSender::send`). UDP cannot
//! wait: a full pipeline drops the datagram and counts it in
//! `dropped_full`, and datagrams the kernel dropped because the socket's
//! receive buffer was full are counted in `kernel_drops`, from the socket's
//! own counter (`SO_RXQ_OVFL`) where the kernel gives it, otherwise from
//! the machine-wide UDP `RcvbufErrors` of `/proc/net/snmp` (which also
//! counts other programs' sockets). [`ListenerHandle::kernel_drop_source`]
//! says which. UDP syslog is best-effort by nature: use TCP or TLS where
//! every message matters.

pub mod framing;
mod streams;
mod tcp;
mod tls;
mod udp;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use orbwatch_live::{RecordSender, SourceStats};

pub use framing::{Framed, Framer, Framing, FramingError, FramingLimits, Message};
pub use tls::server_config as tls_server_config;
pub use udp::{parse_proc_net_snmp, parse_proc_net_snmp6};

/// Default size asked for a UDP socket's receive buffer: 8 MiB holds about
/// a second of 50,000 syslog messages of 150 bytes while the reader is
/// descheduled.
pub const DEFAULT_RECV_BUFFER: usize = 8 * 1024 * 1024;

/// `--syslog-udp ADDR`: one datagram is one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogUdpConfig {
    pub addr: SocketAddr,
    /// Receive buffer asked of the kernel (`SO_RCVBUF`, then
    /// `SO_RCVBUFFORCE` when running with CAP_NET_ADMIN); what it granted
    /// is in [`ListenerHandle::recv_buffer`].
    pub recv_buffer: usize,
    /// Longest message kept; longer ones are cut and counted `truncated`.
    pub max_message: usize,
    /// Most senders kept apart as streams at once (see the crate doc).
    pub max_senders: usize,
}

impl SyslogUdpConfig {
    /// Defaults: 8 MiB buffer, 64 KiB messages, 10,000 senders.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            recv_buffer: DEFAULT_RECV_BUFFER,
            max_message: FramingLimits::default().max_message,
            max_senders: 10_000,
        }
    }
}

/// `--netflow ADDR`: one datagram is one NetFlow/IPFIX export packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetflowConfig {
    pub addr: SocketAddr,
    /// As for [`SyslogUdpConfig::recv_buffer`].
    pub recv_buffer: usize,
    /// Most exporters kept apart as streams at once.
    pub max_exporters: usize,
}

impl NetflowConfig {
    /// Defaults: 8 MiB buffer, 10,000 exporters.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            recv_buffer: DEFAULT_RECV_BUFFER,
            max_exporters: 10_000,
        }
    }
}

/// `--syslog-tcp ADDR`, or `--syslog-tls ADDR` when `tls` is set: RFC 6587
/// framing (octet counting and LF, detected per frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTcpConfig {
    pub addr: SocketAddr,
    /// Message and octet-count bounds (see [`framing`]).
    pub framing: FramingLimits,
    /// Connections open at once; more are accepted and closed at once,
    /// counted in `refused`.
    pub max_connections: usize,
    /// A connection that sends nothing for this long (stuck, half-open,
    /// or never finishing its TLS handshake) is closed and counted in
    /// `idle_closed`. Senders such as rsyslog and syslog-ng reconnect.
    pub idle_timeout: Duration,
    pub tls: Option<TlsConfig>,
}

impl SyslogTcpConfig {
    /// Defaults: 64 KiB messages, 1 MiB octet counts, 256 connections,
    /// 5 minutes idle.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            framing: FramingLimits::default(),
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            tls: None,
        }
    }
}

/// `--tls-cert`, `--tls-key` and, to require client certificates,
/// `--tls-client-ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, server certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates: when set, a client must present a certificate
    /// signed by one of them, and one that does not is refused (counted in
    /// `malformed`).
    pub client_ca: Option<PathBuf>,
}

/// One listener to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerConfig {
    SyslogUdp(SyslogUdpConfig),
    /// TCP, or TLS when its `tls` is set.
    SyslogTcp(SyslogTcpConfig),
    Netflow(NetflowConfig),
}

impl ListenerConfig {
    /// What the listener receives (TCP with `tls` set is `SyslogTls`).
    pub fn kind(&self) -> ListenerKind {
        match self {
            ListenerConfig::SyslogUdp(_) => ListenerKind::SyslogUdp,
            ListenerConfig::SyslogTcp(c) if c.tls.is_some() => ListenerKind::SyslogTls,
            ListenerConfig::SyslogTcp(_) => ListenerKind::SyslogTcp,
            ListenerConfig::Netflow(_) => ListenerKind::Netflow,
        }
    }

    /// The address to listen on, as configured.
    pub fn addr(&self) -> SocketAddr {
        match self {
            ListenerConfig::SyslogUdp(c) => c.addr,
            ListenerConfig::SyslogTcp(c) => c.addr,
            ListenerConfig::Netflow(c) => c.addr,
        }
    }
}

/// What a listener receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    SyslogUdp,
    SyslogTcp,
    SyslogTls,
    Netflow,
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenerKind::SyslogUdp => "syslog-udp",
            ListenerKind::SyslogTcp => "syslog-tcp",
            ListenerKind::SyslogTls => "syslog-tls",
            ListenerKind::Netflow => "netflow",
        })
    }
}

/// Where a UDP listener's `kernel_drops` come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelDropSource {
    /// The socket's own drop counter, delivered with each datagram
    /// (`SO_RXQ_OVFL`). Exact for this socket; a drop is seen when the next
    /// datagram is read.
    SoRxqOvfl,
    /// The machine-wide UDP `RcvbufErrors` counter of `/proc/net/snmp`
    /// (`snmp6` for IPv6), read every second: counts every UDP socket of
    /// the machine (network namespace), not only this one.
    ProcNetSnmp,
    /// Neither is available: kernel drops are not counted.
    Unavailable,
}

impl fmt::Display for KernelDropSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelDropSource::SoRxqOvfl => "SO_RXQ_OVFL (this socket)",
            KernelDropSource::ProcNetSnmp => {
                "/proc/net/snmp RcvbufErrors (all UDP sockets of the machine)"
            }
            KernelDropSource::Unavailable => "not available",
        })
    }
}

/// A UDP socket's receive buffer: asked and granted, in bytes of payload
/// room (the kernel reserves twice as much, half for its bookkeeping, and
/// `getsockopt` shows the doubled figure; this is half of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvBuffer {
    pub asked: usize,
    pub granted: usize,
}

/// Asks listeners to stop. Clone it into every listener; [`trigger`]
/// (on SIGTERM) makes each stop accepting, read what the kernel already
/// holds, hand it over and end.
///
/// [`trigger`]: Shutdown::trigger
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every listener holding a clone to stop.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Has [`trigger`](Self::trigger) been called?
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The shared shutdown or this listener's own stop.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    shared: Shutdown,
    own: Arc<AtomicBool>,
}

impl Stop {
    pub(crate) fn is_set(&self) -> bool {
        self.shared.is_triggered() || self.own.load(Ordering::SeqCst)
    }
}

/// Why a listener could not start. Messages name the address or file and
/// say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr} ({kind}): {reason}")]
    Bind {
        kind: ListenerKind,
        addr: SocketAddr,
        reason: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot set up the {kind} socket for {addr}: {what}: {source}")]
    Socket {
        kind: ListenerKind,
        addr: SocketAddr,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the TLS {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("TLS {what} {path}: {problem}")]
    TlsContent {
        what: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("cannot start a thread for {what}: {source}")]
    Thread {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl ListenError {
    /// A bind failure, with the usual causes spelled out.
    pub(crate) fn bind(kind: ListenerKind, addr: SocketAddr, source: io::Error) -> Self {
        let reason = match source.kind() {
            io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
                "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".to_string()
            }
            io::ErrorKind::AddrInUse => format!(
                "address already in use (another program listens there; `ss -lntup | grep :{}` shows which)",
                addr.port()
            ),
            io::ErrorKind::AddrNotAvailable => {
                "this machine has no such address (use one of its own, 0.0.0.0 or [::])".to_string()
            }
            _ => source.to_string(),
        };
        ListenError::Bind {
            kind,
            addr,
            reason,
            source,
        }
    }
}

/// A running listener.
#[derive(Debug)]
pub struct ListenerHandle {
    kind: ListenerKind,
    local_addr: SocketAddr,
    recv_buffer: Option<RecvBuffer>,
    drop_source: Option<KernelDropSource>,
    stats: Arc<SourceStats>,
    own_stop: Arc<AtomicBool>,
    paused: Arc<Pause>,
    thread: JoinHandle<()>,
}

/// A pause asked of a UDP reader, and whether it has taken effect.
#[derive(Debug, Default)]
pub(crate) struct Pause {
    pub(crate) asked: AtomicBool,
    pub(crate) in_effect: AtomicBool,
}

impl ListenerHandle {
    /// What the listener receives.
    pub fn kind(&self) -> ListenerKind {
        self.kind
    }

    /// The address actually bound (the port the kernel chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `syslog-tcp 127.0.0.1:5514`, for logs and the status line.
    pub fn name(&self) -> String {
        format!("{} {}", self.kind, self.local_addr)
    }

    /// UDP: the receive buffer asked and granted.
    pub fn recv_buffer(&self) -> Option<RecvBuffer> {
        self.recv_buffer
    }

    /// UDP: where `kernel_drops` come from.
    pub fn kernel_drop_source(&self) -> Option<KernelDropSource> {
        self.drop_source
    }

    /// The counters given to [`spawn`].
    pub fn stats(&self) -> &Arc<SourceStats> {
        &self.stats
    }

    /// UDP only: stop or resume reading the socket. While paused, datagrams
    /// wait in the kernel's buffer and, once it is full, the kernel drops
    /// them (counted in `kernel_drops`). Pausing returns once the reader
    /// has stopped (within a read timeout, 200 ms). Meant for tests of drop
    /// reporting; TCP and TLS listeners ignore it.
    pub fn set_paused(&self, paused: bool) {
        self.paused.asked.store(paused, Ordering::SeqCst);
        if self.drop_source.is_none() {
            return;
        }
        let end = Instant::now() + Duration::from_secs(2);
        while self.paused.in_effect.load(Ordering::SeqCst) != paused
            && !self.thread.is_finished()
            && Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Has the listener ended (shutdown, or the pipeline has stopped)?
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stop this listener: stop accepting, read what the kernel already
    /// holds (UDP datagrams queued, bytes of open connections; at most 2 s
    /// of it, so a sender that keeps sending cannot hold the stop up),
    /// hand it to the pipeline, and return once every thread has ended.
    /// Waits while the pipeline is full, so the pipeline must keep taking
    /// records until its sources are stopped.
    pub fn stop(self) {
        self.own_stop.store(true, Ordering::SeqCst);
        self.join();
    }

    /// Wait until the listener ends (after the [`Shutdown`] given to
    /// [`spawn`] is triggered, or the pipeline has stopped).
    pub fn join(self) {
        let name = format!("{} {}", self.kind, self.local_addr);
        if self.thread.join().is_err() {
            tracing::error!("{name}: the listener thread panicked (a bug: please report it)");
        }
    }
}

/// Bind the socket of `cfg` and start receiving on it. Binding and TLS
/// file errors are returned here, before any thread starts. Records go to
/// `sender`, counts to `stats`; `shutdown` stops it (as does
/// [`ListenerHandle::stop`]).
pub fn spawn(
    cfg: ListenerConfig,
    sender: RecordSender,
    stats: Arc<SourceStats>,
    shutdown: Shutdown,
) -> Result<ListenerHandle, ListenError> {
    let kind = cfg.kind();
    let own_stop = Arc::new(AtomicBool::new(false));
    let stop = Stop {
        shared: shutdown,
        own: own_stop.clone(),
    };
    let paused = Arc::new(Pause::default());
    let thread_name = format!("{kind} {}", cfg.addr());
    let spawn_thread = |f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(f)
            .map_err(|source| ListenError::Thread {
                what: thread_name.clone(),
                source,
            })
    };
    // One UDP reader for syslog and NetFlow: only what a datagram is differs.
    enum Transport {
        Udp(SocketAddr, usize, udp::Mode),
        Tcp(SyslogTcpConfig),
    }
    let transport = match cfg {
        ListenerConfig::SyslogUdp(c) => Transport::Udp(
            c.addr,
            c.recv_buffer,
            udp::Mode::Syslog {
                max_message: c.max_message.max(1),
                max_senders: c.max_senders,
            },
        ),
        ListenerConfig::Netflow(c) => Transport::Udp(
            c.addr,
            c.recv_buffer,
            udp::Mode::Netflow {
                max_exporters: c.max_exporters,
            },
        ),
        ListenerConfig::SyslogTcp(c) => Transport::Tcp(c),
    };
    match transport {
        Transport::Udp(addr, recv_buffer, mode) => {
            let setup = udp::bind(kind, addr, recv_buffer)?;
            let (local_addr, recv_buffer, drop_source) =
                (setup.local, setup.recv_buffer, setup.drops);
            let (st, p) = (stats.clone(), paused.clone());
            let thread =
                spawn_thread(Box::new(move || udp::run(setup, mode, sender, st, stop, p)))?;
            Ok(ListenerHandle {
                kind,
                local_addr,
                recv_buffer: Some(recv_buffer),
                drop_source: Some(drop_source),
                stats,
                own_stop,
                paused,
                thread,
            })
        }
        Transport::Tcp(c) => {
            let tls = match &c.tls {
                Some(t) => Some(tls::server_config(t)?),
                None => None,
            };
            let (listener, local_addr) = tcp::bind(kind, c.addr)?;
            let ctx = tcp::Ctx {
                kind,
                local: local_addr,
                cfg: c,
                tls,
                sender,
                stats: stats.clone(),
                stop,
            };
            let thread = spawn_thread(Box::new(move || tcp::run(listener, ctx)))?;
            Ok(ListenerHandle {
                kind,
                local_addr,
                recv_buffer: None,
                drop_source: None,
                stats,
                own_stop,
                paused,
                thread,
            })
        }
    }
}

/// Logs a repeated warning at most once per period, with how many times
/// it happened meanwhile (a flood must not flood the log).
pub(crate) struct Throttle {
    period: Duration,
    last: Option<Instant>,
    pub(crate) suppressed: u64,
}

impl Throttle {
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when it is time to log (n: occurrences not logged since);
    /// `None` to stay quiet.
    pub(crate) fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_say_what_to_do() {
        let e = |kind, addr: &str, err| {
            ListenError::bind(kind, addr.parse().unwrap(), io::Error::from(err)).to_string()
        };
        assert_eq!(
            e(
                ListenerKind::SyslogUdp,
                "0.0.0.0:514",
                io::ErrorKind::PermissionDenied
            ),
            "cannot listen on 0.0.0.0:514 (syslog-udp): permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        );
        assert_eq!(
            e(
                ListenerKind::SyslogTls,
                "[::]:6514",
                io::ErrorKind::AddrInUse
            ),
            "cannot listen on [::]:6514 (syslog-tls): address already in use (another program listens there; `ss -lntup | grep :6514` shows which)"
        );
        assert_eq!(
            e(
                ListenerKind::Netflow,
                "192.0.2.7:2055",
                io::ErrorKind::AddrNotAvailable
            ),
            "cannot listen on 192.0.2.7:2055 (netflow): this machine has no such address (use one of its own, 0.0.0.0 or [::])"
        );
    }

    #[test]
    fn a_listener_kind_follows_its_config() {
        let a: SocketAddr = "127.0.0.1:514".parse().unwrap();
        let mut tcp = SyslogTcpConfig::new(a);
        assert_eq!(
            ListenerConfig::SyslogTcp(tcp.clone()).kind(),
            ListenerKind::SyslogTcp
        );
        tcp.tls = Some(TlsConfig {
            cert: "c.pem".into(),
            key: "k.pem".into(),
            client_ca: None,
        });
        assert_eq!(
            ListenerConfig::SyslogTcp(tcp).kind(),
            ListenerKind::SyslogTls
        );
        assert_eq!(
            ListenerConfig::Netflow(NetflowConfig::new(a))
                .kind()
                .to_string(),
            "netflow"
        );
    }
}
