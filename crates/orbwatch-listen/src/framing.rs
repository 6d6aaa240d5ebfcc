//! RFC 6587 framing of syslog messages on a byte stream (TCP, TLS).
//!
//! Why a pure state machine apart from the sockets: a TCP read can end
//! anywhere (inside an octet count, inside a message, between CR and LF),
//! and the framing must give the same messages however the bytes were cut.
//! Kept free of I/O, it is tested on every cut (a property test) and
//! fuzzed (`fuzz/fuzz_targets/syslog_framing.rs`).
//!
//! Both framings of RFC 6587 are accepted on one connection, chosen per
//! frame as rsyslog's `imtcp` does: a frame that starts with a digit is
//! octet-counted (`LEN SP MSG`, §3.4.1), anything else is non-transparent
//! (`MSG LF`, §3.4.2; a syslog message starts with `<`).
//!
//! Bounds, so that no input can grow memory:
//! - a message longer than [`FramingLimits::max_message`] is cut to it and
//!   flagged `truncated`; the rest of the frame is read and thrown away,
//!   so an octet-counted stream stays in step;
//! - an octet count above [`FramingLimits::max_frame`] (or one that is 0,
//!   or not followed by a space) is not trusted: it is reported as
//!   [`FramingError`] and the frame is read as a non-transparent one up to
//!   the next LF, keeping the digits as the start of the message (rsyslog
//!   does the same: "change to octet stuffing"). The connection is not
//!   closed; it resynchronises at the next LF.
//!
//! Line endings: trailing LF, CR and NUL bytes are removed from every
//! message (senders end messages with `\n`, `\r\n`, `\0` or `\0\n`);
//! bytes inside a message, NUL and LF in an octet-counted one included,
//! are kept. Empty messages (blank lines, `\r\n` alone) are skipped.

use memchr::memchr;

/// Bounds of one stream's framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingLimits {
    /// Longest message kept; longer ones are cut to it (default 64 KiB, the
    /// largest syslog message relays commonly send).
    pub max_message: usize,
    /// Largest octet count taken as a count (default 1 MiB). Above it the
    /// count is treated as garbage, not as a promise of that many bytes,
    /// so a corrupt header cannot make the connection swallow gigabytes.
    pub max_frame: usize,
}

impl Default for FramingLimits {
    fn default() -> Self {
        Self {
            max_message: 64 * 1024,
            max_frame: 1024 * 1024,
        }
    }
}

/// Largest `max_frame` honoured: keeps the digit accumulator far from
/// overflow (and no syslog message is a terabyte).
const MAX_FRAME_CAP: usize = 1 << 40;

/// How a message was framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `LEN SP MSG` (RFC 6587 §3.4.1).
    OctetCounted,
    /// `MSG LF` (RFC 6587 §3.4.2).
    NonTransparent,
}

/// What went wrong with a frame. The frame's bytes are not lost: they are
/// read as a non-transparent message (or, at the end of the stream, as
/// what there is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// Digits at the start of a frame followed by something other than a
    /// space (`123abc`): not an octet count.
    CountNotFollowedBySpace,
    /// An octet count of 0.
    ZeroCount,
    /// An octet count above `max_frame`.
    CountTooLarge { max_frame: usize },
    /// The stream ended inside an octet-counted message; the bytes that
    /// came are delivered.
    IncompleteAtEnd { missing: u64 },
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FramingError::CountNotFollowedBySpace => f.write_str(
                "a frame starts with digits not followed by a space: not an RFC 6587 octet count; read up to the next LF instead",
            ),
            FramingError::ZeroCount => {
                f.write_str("octet count 0; read up to the next LF instead")
            }
            FramingError::CountTooLarge { max_frame } => write!(
                f,
                "octet count above the {max_frame}-byte frame limit; read up to the next LF instead"
            ),
            FramingError::IncompleteAtEnd { missing } => write!(
                f,
                "the connection ended {missing} bytes before the end of an octet-counted message; the part received is kept"
            ),
        }
    }
}

/// One message taken out of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The message, framing and trailing LF/CR/NUL removed, at most
    /// `max_message` bytes.
    pub bytes: &'a [u8],
    /// Offset of the frame's first byte (its octet count, if any) in the
    /// stream.
    pub offset: u64,
    /// Which framing the frame used.
    pub framing: Framing,
    /// The message was longer than `max_message` and was cut.
    pub truncated: bool,
}

/// What [`Framer::push`] and [`Framer::finish`] report, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed<'a> {
    Message(Message<'a>),
    /// A framing error at `offset`; the frame's bytes follow as a message.
    Malformed {
        offset: u64,
        error: FramingError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames.
    Start,
    /// Reading the digits of an octet count (also kept in `buf`).
    Count { value: u64 },
    /// Reading an octet-counted message: `remaining` bytes to go.
    Counted { remaining: u64 },
    /// Reading a non-transparent message up to LF.
    Line,
}

/// RFC 6587 framer for one stream. Feed it bytes as they come with
/// [`push`](Self::push), and call [`finish`](Self::finish) at the end of
/// the stream. Memory: one buffer of at most `max_message` bytes.
#[derive(Debug)]
pub struct Framer {
    limits: FramingLimits,
    state: State,
    /// The message being assembled when it spans reads.
    buf: Vec<u8>,
    truncated: bool,
    /// Offset of the current frame's first byte.
    frame_start: u64,
    /// Offset of the next byte pushed.
    pos: u64,
}

impl Framer {
    /// A framer at the start of a stream. `max_message` is at least 1 and
    /// `max_frame` at least `max_message` (raised if given lower).
    pub fn new(limits: FramingLimits) -> Self {
        let max_message = limits.max_message.max(1);
        let limits = FramingLimits {
            max_message,
            max_frame: limits
                .max_frame
                .clamp(max_message.min(MAX_FRAME_CAP), MAX_FRAME_CAP),
        };
        Self {
            limits,
            state: State::Start,
            buf: Vec::new(),
            truncated: false,
            frame_start: 0,
            pos: 0,
        }
    }

    /// The limits in force (`max_frame` is at least `max_message`).
    pub fn limits(&self) -> FramingLimits {
        self.limits
    }

    /// Bytes pushed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Bytes held for a message not yet complete (at most `max_message`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Frame `data`, the next bytes of the stream, calling `emit` for each
    /// message completed and each framing error, in order.
    pub fn push(&mut self, mut data: &[u8], emit: &mut dyn FnMut(Framed<'_>)) {
        while !data.is_empty() {
            match self.state {
                State::Start => {
                    self.frame_start = self.pos;
                    self.buf.clear();
                    self.truncated = false;
                    let b = data[0];
                    if b.is_ascii_digit() {
                        self.state = State::Count {
                            value: u64::from(b - b'0'),
                        };
                        self.keep(&[b]);
                        self.advance(&mut data, 1);
                    } else {
                        // The byte is the message's first: Line reads it.
                        self.state = State::Line;
                    }
                }
                State::Count { value } => {
                    let b = data[0];
                    if b.is_ascii_digit() {
                        let value = value * 10 + u64::from(b - b'0');
                        self.keep(&[b]);
                        self.advance(&mut data, 1);
                        if value > self.limits.max_frame as u64 {
                            self.fall_back(
                                FramingError::CountTooLarge {
                                    max_frame: self.limits.max_frame,
                                },
                                emit,
                            );
                        } else {
                            self.state = State::Count { value };
                        }
                    } else if b == b' ' && value > 0 {
                        self.advance(&mut data, 1);
                        self.buf.clear();
                        self.truncated = false;
                        self.state = State::Counted { remaining: value };
                    } else if b == b' ' {
                        // "0 ": keep the digits and the space as text.
                        self.keep(&[b]);
                        self.advance(&mut data, 1);
                        self.fall_back(FramingError::ZeroCount, emit);
                    } else {
                        // Not consumed: the Line state reads it (an LF
                        // right after digits ends the line "123").
                        self.fall_back(FramingError::CountNotFollowedBySpace, emit);
                    }
                }
                State::Counted { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    let chunk = &data[..n];
                    let remaining = remaining - n as u64;
                    if remaining == 0 && self.buf.is_empty() && n <= self.limits.max_message {
                        // The whole message is in this read: no copy.
                        emit_message(chunk, self.frame_start, Framing::OctetCounted, false, emit);
                        self.state = State::Start;
                    } else {
                        self.keep(chunk);
                        if remaining == 0 {
                            self.emit_buf(Framing::OctetCounted, emit);
                            self.state = State::Start;
                        } else {
                            self.state = State::Counted { remaining };
                        }
                    }
                    self.advance(&mut data, n);
                }
                State::Line => match memchr(b'\n', data) {
                    Some(i) => {
                        if self.buf.is_empty() && i <= self.limits.max_message {
                            emit_message(
                                &data[..i],
                                self.frame_start,
                                Framing::NonTransparent,
                                false,
                                emit,
                            );
                        } else {
                            self.keep(&data[..i]);
                            self.emit_buf(Framing::NonTransparent, emit);
                        }
                        self.state = State::Start;
                        self.advance(&mut data, i + 1);
                    }
                    None => {
                        self.keep(data);
                        let n = data.len();
                        self.advance(&mut data, n);
                    }
                },
            }
        }
    }

    /// The stream has ended: deliver what is held (a last line without LF,
    /// the part of an octet-counted message that came) and start afresh.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Framed<'_>)) {
        match self.state {
            State::Start => {}
            // Digits alone at the end: a last line such as "42".
            State::Count { .. } | State::Line => self.emit_buf(Framing::NonTransparent, emit),
            State::Counted { remaining } => {
                emit(Framed::Malformed {
                    offset: self.frame_start,
                    error: FramingError::IncompleteAtEnd { missing: remaining },
                });
                self.emit_buf(Framing::OctetCounted, emit);
            }
        }
        self.state = State::Start;
        self.buf.clear();
        self.truncated = false;
    }

    fn advance(&mut self, data: &mut &[u8], n: usize) {
        *data = &data[n..];
        self.pos += n as u64;
    }

    /// The frame's start was not a usable octet count: report it and read
    /// the frame (digits kept in `buf`) as a line.
    fn fall_back(&mut self, error: FramingError, emit: &mut dyn FnMut(Framed<'_>)) {
        emit(Framed::Malformed {
            offset: self.frame_start,
            error,
        });
        self.state = State::Line;
    }

    /// Append to the message being assembled, up to `max_message`.
    fn keep(&mut self, chunk: &[u8]) {
        let room = self.limits.max_message.saturating_sub(self.buf.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn emit_buf(&mut self, framing: Framing, emit: &mut dyn FnMut(Framed<'_>)) {
        emit_message(&self.buf, self.frame_start, framing, self.truncated, emit);
        self.buf.clear();
        self.truncated = false;
    }
}

/// `bytes` without its trailing LF, CR and NUL bytes.
pub fn trim_line_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | 0))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

fn emit_message(
    bytes: &[u8],
    offset: u64,
    framing: Framing,
    truncated: bool,
    emit: &mut dyn FnMut(Framed<'_>),
) {
    let bytes = trim_line_end(bytes);
    if bytes.is_empty() {
        return;
    }
    emit(Framed::Message(Message {
        bytes,
        offset,
        framing,
        truncated,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owned copy of what the framer reported.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Out {
        Msg {
            bytes: Vec<u8>,
            offset: u64,
            framing: Framing,
            truncated: bool,
        },
        Bad(u64, FramingError),
    }

    fn frame_chunks(limits: FramingLimits, chunks: &[&[u8]]) -> (Vec<Out>, usize) {
        let mut f = Framer::new(limits);
        let mut out = Vec::new();
        let mut peak = 0;
        let mut sink = |x: Framed<'_>| {
            out.push(match x {
                Framed::Message(m) => Out::Msg {
                    bytes: m.bytes.to_vec(),
                    offset: m.offset,
                    framing: m.framing,
                    truncated: m.truncated,
                },
                Framed::Malformed { offset, error } => Out::Bad(offset, error),
            })
        };
        for c in chunks {
            f.push(c, &mut sink);
            peak = peak.max(f.buffered());
        }
        f.finish(&mut sink);
        (out, peak)
    }

    fn frame(data: &[u8]) -> Vec<Out> {
        frame_chunks(FramingLimits::default(), &[data]).0
    }

    fn msg(bytes: &[u8], offset: u64, framing: Framing) -> Out {
        Out::Msg {
            bytes: bytes.to_vec(),
            offset,
            framing,
            truncated: false,
        }
    }

    use Framing::{NonTransparent as Lf, OctetCounted as Oc};

    #[test]
    fn both_framings_on_one_stream_are_told_apart_per_frame() {
        // The LF inside the counted message is kept; the LF after it is
        // an empty line, skipped.
        let data = b"<13>a\n9 <13>b\nc d\n<14>e\r\n";
        assert_eq!(
            frame(data),
            vec![
                msg(b"<13>a", 0, Lf),
                msg(b"<13>b\nc d", 6, Oc),
                msg(b"<14>e", 18, Lf)
            ]
        );
    }

    #[test]
    fn an_octet_count_split_across_reads_is_joined() {
        let data: &[u8] = b"12 <13>hello 1\n7 <13>bye";
        let (whole, _) = frame_chunks(FramingLimits::default(), &[data]);
        let (split, _) = frame_chunks(
            FramingLimits::default(),
            &[b"1", b"2", b" <13>hel", b"lo 1", b"\n7 <1", b"3>bye"],
        );
        assert_eq!(whole, split);
        assert_eq!(
            whole,
            vec![msg(b"<13>hello 1", 0, Oc), msg(b"<13>bye", 15, Oc)]
        );
    }

    #[test]
    fn digits_without_a_space_are_malformed_and_kept_as_a_line() {
        assert_eq!(
            frame(b"2024-01-01 host sshd: x\n<13>next\n"),
            vec![
                Out::Bad(0, FramingError::CountNotFollowedBySpace),
                msg(b"2024-01-01 host sshd: x", 0, Lf),
                msg(b"<13>next", 24, Lf),
            ]
        );
        // Digits then LF: the line "42".
        assert_eq!(
            frame(b"42\n"),
            vec![
                Out::Bad(0, FramingError::CountNotFollowedBySpace),
                msg(b"42", 0, Lf)
            ]
        );
    }

    #[test]
    fn a_zero_or_huge_count_resyncs_at_the_next_lf() {
        assert_eq!(
            frame(b"0 <13>x\n5 <13>y"),
            vec![
                Out::Bad(0, FramingError::ZeroCount),
                msg(b"0 <13>x", 0, Lf),
                msg(b"<13>y", 8, Oc),
            ]
        );
        let huge = b"99999999999999999999999999 <13>junk\n3 abc";
        assert_eq!(
            frame(huge),
            vec![
                Out::Bad(
                    0,
                    FramingError::CountTooLarge {
                        max_frame: 1024 * 1024
                    }
                ),
                msg(b"99999999999999999999999999 <13>junk", 0, Lf),
                msg(b"abc", 36, Oc),
            ]
        );
    }

    #[test]
    fn a_count_above_max_message_is_honoured_cut_and_stays_in_step() {
        let limits = FramingLimits {
            max_message: 4,
            max_frame: 100,
        };
        let (out, peak) = frame_chunks(limits, &[b"10 0123456789", b"3 abc"]);
        assert_eq!(
            out,
            vec![
                Out::Msg {
                    bytes: b"0123".to_vec(),
                    offset: 0,
                    framing: Oc,
                    truncated: true
                },
                msg(b"abc", 13, Oc),
            ]
        );
        assert!(peak <= 4);
    }

    #[test]
    fn empty_lines_crlf_and_nul_endings() {
        assert_eq!(
            frame(b"\n\r\n\0\n<13>a\0\n<13>b\r\n<13>c\0d\n"),
            vec![
                msg(b"<13>a", 5, Lf),
                msg(b"<13>b", 12, Lf),
                msg(b"<13>c\0d", 19, Lf),
            ]
        );
    }

    #[test]
    fn a_megabyte_line_without_newline_is_cut_with_bounded_memory() {
        let limits = FramingLimits::default();
        let big = vec![b'x'; 1 << 20];
        let chunks: Vec<&[u8]> = big.chunks(8192).collect();
        let (out, peak) = frame_chunks(limits, &chunks);
        assert!(peak <= limits.max_message, "peak {peak}");
        assert_eq!(out.len(), 1);
        match &out[0] {
            Out::Msg {
                bytes, truncated, ..
            } => {
                assert_eq!(bytes.len(), limits.max_message);
                assert!(truncated);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_end_of_the_stream_delivers_what_came() {
        assert_eq!(
            frame(b"20 <13>short"),
            vec![
                Out::Bad(0, FramingError::IncompleteAtEnd { missing: 11 }),
                msg(b"<13>short", 0, Oc),
            ]
        );
        assert_eq!(frame(b"<13>last"), vec![msg(b"<13>last", 0, Lf)]);
        assert_eq!(frame(b"17"), vec![msg(b"17", 0, Lf)]);
        assert_eq!(frame(b""), vec![]);
    }

    proptest! {
        /// However the stream is cut into reads, the messages are the same,
        /// none is longer than the bound, and memory stays within it.
        #[test]
        fn framing_does_not_depend_on_how_reads_are_cut(
            data in proptest::collection::vec(
                prop_oneof![
                    Just(b'\n'), Just(b' '), Just(b'0'), Just(b'3'), Just(b'9'),
                    Just(b'<'), Just(b'\r'), Just(0u8), any::<u8>()
                ],
                0..400,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..20),
            max_message in 1usize..40,
            max_frame in 1usize..200,
        ) {
            let limits = FramingLimits { max_message, max_frame };
            let (whole, _) = frame_chunks(limits, &[&data]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for c in cuts {
                chunks.push(&data[last..c]);
                last = c;
            }
            chunks.push(&data[last..]);
            let (split, peak) = frame_chunks(limits, &chunks);
            prop_assert_eq!(&whole, &split);
            prop_assert!(peak <= max_message);
            for o in &whole {
                if let Out::Msg { bytes, .. } = o {
                    prop_assert!(bytes.len() <= max_message);
                    prop_assert!(!bytes.is_empty());
                }
            }
        }
    }
}
