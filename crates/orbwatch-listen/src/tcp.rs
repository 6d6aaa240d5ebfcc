//! TCP and TLS syslog receivers: an accept thread and one thread per
//! connection, each with its own RFC 6587 [`Framer`].
//!
//! Limits, so that one client cannot hurt the others:
//! - at most `max_connections` open at once: more are accepted and closed
//!   at once (counted `refused`), so a flood costs a socket for a moment;
//! - a connection silent for `idle_timeout` (stuck, half open, or never
//!   finishing its TLS handshake) is closed (counted `idle_closed`);
//! - each connection has its own thread, so a slow one (or one blocked on
//!   a full pipeline) holds up no other;
//! - messages are bounded by the framer, so no input grows memory beyond
//!   one message buffer and one read buffer per connection.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_live::{LiveRecord, Payload, RecordSender, SourceStats, StreamSlot};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use socket2::{Domain, Protocol, Socket, Type};

use crate::framing::{Framed, Framer};
use crate::{ListenError, ListenerKind, Stop, SyslogTcpConfig, Throttle};

/// How long a blocking call waits before the thread looks at the stop
/// signal and its idle deadline.
const TICK: Duration = Duration::from_millis(200);
/// Bytes read at once from a connection.
const READ_BUF: usize = 64 * 1024;
/// Longest a stopping connection keeps reading what is already there.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// Stack of a connection thread (framing and rustls need little).
const CONN_STACK: usize = 512 * 1024;

/// Everything the accept thread and the connections share.
pub(crate) struct Ctx {
    pub(crate) kind: ListenerKind,
    pub(crate) local: SocketAddr,
    pub(crate) cfg: SyslogTcpConfig,
    pub(crate) tls: Option<Arc<ServerConfig>>,
    pub(crate) sender: RecordSender,
    pub(crate) stats: Arc<orbwatch_live::SourceStats>,
    pub(crate) stop: Stop,
}

/// Create and bind the listening socket.
pub(crate) fn bind(
    kind: ListenerKind,
    addr: SocketAddr,
) -> Result<(Socket, SocketAddr), ListenError> {
    let sock_err = |what: &'static str| {
        move |source: io::Error| ListenError::Socket {
            kind,
            addr,
            what,
            source,
        }
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(sock_err("cannot create a TCP socket"))?;
    // A restarted daemon can bind again while old connections linger in
    // TIME_WAIT.
    socket
        .set_reuse_address(true)
        .map_err(sock_err("cannot set SO_REUSEADDR"))?;
    socket
        .bind(&addr.into())
        .map_err(|e| ListenError::bind(kind, addr, e))?;
    socket
        .listen(1024)
        .map_err(|e| ListenError::bind(kind, addr, e))?;
    // On Linux, accept() honours SO_RCVTIMEO: the accept loop wakes up
    // every tick to look at the stop signal.
    socket
        .set_read_timeout(Some(TICK))
        .map_err(sock_err("cannot set an accept timeout"))?;
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    Ok((socket, local))
}

/// Decrements the count of open connections when a connection ends.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The accept loop; returns when stopped, after every connection ended.
pub(crate) fn run(listener: Socket, ctx: Ctx) {
    let ctx = Arc::new(ctx);
    let name = format!("{} {}", ctx.kind, ctx.local);
    let open = Arc::new(AtomicUsize::new(0));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    let mut refused_log = Throttle::new(Duration::from_secs(10));
    let mut err_log = Throttle::new(Duration::from_secs(10));
    let max = ctx.cfg.max_connections.max(1);
    while !ctx.stop.is_set() {
        let (sock, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                if let Some(more) = err_log.ready() {
                    tracing::warn!(
                        "{name}: accept failed: {e} ({more} more since the last warning; out of file descriptors? raise LimitNOFILE)"
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        conns.retain(|h| !h.is_finished());
        let peer = match peer.as_socket() {
            // A v4 client of a dual-stack socket: named as v4.
            Some(SocketAddr::V6(a)) if a.ip().to_ipv4_mapped().is_some() => {
                SocketAddr::new(a.ip().to_canonical(), a.port())
            }
            Some(a) => a,
            None => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        if open.load(Ordering::SeqCst) >= max {
            SourceStats::add(&ctx.stats.refused, 1);
            if let Some(more) = refused_log.ready() {
                tracing::warn!(
                    "{name}: connection from {peer} refused: {max} connections already open ({more} more refused since the last warning; raise the connection limit if these are real senders)"
                );
            }
            // Reset rather than a graceful close: nothing to flush.
            let _ = sock.set_linger(Some(Duration::ZERO));
            drop(sock);
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let guard = Open(open.clone());
        // Counted before the thread runs, so that a record is never seen
        // before the connection that brought it.
        SourceStats::add(&ctx.stats.connections, 1);
        let c = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{} conn", ctx.kind))
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _guard = guard;
                connection(sock, peer, &c);
            });
        match spawned {
            Ok(h) => conns.push(h),
            Err(e) => {
                // The closure (socket and guard) was dropped with the error.
                ctx.stats.connections.fetch_sub(1, Ordering::Relaxed);
                SourceStats::add(&ctx.stats.refused, 1);
                tracing::warn!(
                    "{name}: connection from {peer} refused: cannot start a thread: {e}"
                );
            }
        }
    }
    // Stop accepting: the kernel refuses new connections from here on.
    drop(listener);
    for h in conns {
        if h.join().is_err() {
            tracing::error!("{name}: a connection thread panicked (a bug: please report it)");
        }
    }
}

/// A connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        }
    }

    fn handshaking(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => s.conn.is_handshaking(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

/// Read one connection until it ends, is idle too long, or the listener
/// stops; then deliver what the framer still holds.
fn connection(sock: Socket, peer: SocketAddr, ctx: &Ctx) {
    let stats = &ctx.stats;
    let stream_name: Arc<str> = Arc::from(format!("{} {} from {peer}", ctx.kind, ctx.local));
    let idle = ctx.cfg.idle_timeout.max(Duration::from_millis(1));
    let tcp: TcpStream = sock.into();
    let setup = tcp
        .set_read_timeout(Some(idle.min(TICK)))
        .and_then(|()| tcp.set_write_timeout(Some(idle.max(Duration::from_secs(1)))))
        .and_then(|()| tcp.set_nodelay(true));
    if let Err(e) = setup {
        tracing::debug!("{stream_name}: cannot set socket options: {e}");
    }
    let mut conn = match &ctx.tls {
        None => Conn::Plain(tcp),
        Some(cfg) => match ServerConnection::new(cfg.clone()) {
            Ok(c) => Conn::Tls(Box::new(StreamOwned::new(c, tcp))),
            Err(e) => {
                SourceStats::add(&stats.malformed, 1);
                tracing::warn!("{stream_name}: cannot start TLS: {e}");
                return;
            }
        },
    };
    tracing::debug!("{stream_name}: connected");
    let mut framer = Framer::new(ctx.cfg.framing);
    let mut out = Deliver {
        ctx,
        stream: stream_name.clone(),
        number: 0,
        pipeline_closed: false,
        malformed_logged: false,
        slot: StreamSlot::default(),
        received: Timestamp::now(),
        batch: Vec::with_capacity(BATCH_MAX),
    };
    let mut buf = vec![0u8; READ_BUF];
    let mut last_data = Instant::now();
    let mut draining: Option<Instant> = None;
    let mut tls_failed = false;
    loop {
        match draining {
            None if ctx.stop.is_set() => {
                // Read what the kernel already holds, without waiting.
                draining = Some(Instant::now());
                if conn.tcp().set_nonblocking(true).is_err() {
                    break;
                }
            }
            // A client that keeps sending cannot hold the stop up.
            Some(t) if t.elapsed() >= DRAIN_LIMIT => break,
            _ => {}
        }
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                SourceStats::add(&stats.bytes, n as u64);
                last_data = Instant::now();
                out.received = Timestamp::now();
                framer.push(&buf[..n], &mut |f| out.take(f));
                out.hand_over();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if draining.is_some() {
                    break;
                }
                if last_data.elapsed() >= idle {
                    SourceStats::add(&stats.idle_closed, 1);
                    let during = if conn.handshaking() {
                        " during the TLS handshake"
                    } else {
                        ""
                    };
                    tracing::info!(
                        "{stream_name}: closed: nothing received{during} for {} s",
                        idle.as_secs_f64()
                    );
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A TLS peer that closes without close_notify: an end like any.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == io::ErrorKind::InvalidData && ctx.tls.is_some() => {
                SourceStats::add(&stats.malformed, 1);
                tls_failed = true;
                let what = if conn.handshaking() {
                    "TLS handshake failed"
                } else {
                    "TLS error"
                };
                tracing::warn!("{stream_name}: {what}: {e}; connection closed");
                break;
            }
            Err(e) => {
                tracing::debug!("{stream_name}: read failed: {e}; connection closed");
                break;
            }
        }
        if out.pipeline_closed {
            break;
        }
    }
    framer.finish(&mut |f| out.take(f));
    out.hand_over();
    if let Conn::Tls(t) = &mut conn {
        // Say goodbye properly (close_notify), or send the alert rustls
        // queued after a TLS error, so the client learns why; best effort.
        if !tls_failed {
            t.conn.send_close_notify();
        }
        let _ = t.get_ref().set_nonblocking(false);
        while t.conn.wants_write() {
            if t.conn.write_tls(&mut t.sock).is_err() {
                break;
            }
        }
    }
    tracing::debug!("{stream_name}: disconnected after {} messages", out.number);
}

/// Hands a connection's messages to the pipeline and counts framing errors.
struct Deliver<'a> {
    ctx: &'a Ctx,
    stream: Arc<str>,
    /// Messages on this connection so far.
    number: u64,
    pipeline_closed: bool,
    malformed_logged: bool,
    /// The connection is one stream read by this thread: the engine may
    /// have its messages decoded here ([`RecordSender::send_in`]), so
    /// that connections decode in parallel and the pipeline's one thread
    /// does not.
    slot: StreamSlot,
    /// When the bytes being framed were read: every message of one read
    /// arrived at once, and reading the clock for each one was 3 % of a
    /// connection's thread at 550,000 messages a second.
    received: Timestamp,
    /// The messages framed since the last [`hand_over`](Self::hand_over),
    /// ready for the pipeline: one read's messages go in one channel
    /// message (see `orbwatch_live`'s doc on batches).
    batch: Vec<LiveRecord>,
}

/// At most this many messages wait in a [`Deliver`]'s batch: a read of
/// tiny messages is handed over in parts, so a batch never holds more
/// than a small share of the pipeline's queue.
const BATCH_MAX: usize = 512;

impl Deliver<'_> {
    /// Hand the batch to the pipeline (waiting while it is full: TCP
    /// back-pressure) and add its messages to the source's count, once
    /// per read instead of an atomic add per message.
    fn hand_over(&mut self) {
        let n = self.batch.len() as u64;
        if n == 0 {
            return;
        }
        if self.ctx.sender.send_batch(&mut self.batch).is_ok() {
            SourceStats::add(&self.ctx.stats.records, n);
            // The next batch's records share a name of their own: each
            // record holds a reference to its stream's name, and one
            // count bumped here while the pipeline drops the last
            // batch's references was 92 % of this thread's hand-over
            // (the counter's cache line went back and forth for every
            // record). Another copy of the name costs one small
            // allocation per read.
            self.stream = Arc::from(&*self.stream);
        } else {
            self.pipeline_closed = true;
            self.batch.clear();
        }
    }

    fn take(&mut self, f: Framed<'_>) {
        let stats = &self.ctx.stats;
        match f {
            Framed::Message(m) => {
                if self.pipeline_closed {
                    return;
                }
                self.number += 1;
                if m.truncated {
                    SourceStats::add(&stats.truncated, 1);
                }
                let record = LiveRecord {
                    prefiltered: None,
                    prework: Default::default(),
                    stream: self.stream.clone(),
                    number: self.number,
                    offset: m.offset,
                    payload: Payload::Syslog,
                    bytes: m.bytes.to_vec(),
                    received: self.received,
                    checkpoint: None,
                };
                let record = self.ctx.sender.prepare_in(&mut self.slot, record);
                self.batch.push(record);
                if self.batch.len() >= BATCH_MAX {
                    self.hand_over();
                }
            }
            Framed::Malformed { offset, error } => {
                SourceStats::add(&stats.malformed, 1);
                if !self.malformed_logged {
                    self.malformed_logged = true;
                    tracing::warn!(
                        "{}: framing error at byte {offset}: {error} (further errors on this connection are counted, not logged)",
                        self.stream
                    );
                }
            }
        }
    }
}
