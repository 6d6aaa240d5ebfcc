//! `hunt` over binary inputs: packet captures, NetFlow/IPFIX exports and
//! EVTX files.
//!
//! The binary decoders of `orbwatch-capture` turn each input into events
//! (flows, DNS/TLS/HTTP messages, NetFlow records, Windows logon events),
//! each with a short text rendering. Those go through the same IOC matching
//! as text records and into the same coverage. A binary input is one unit
//! of work: it is not split into chunks. The `count` of a finding is the
//! number of flow records or events that mention the indicator.

use std::io::BufRead;
use std::sync::Arc;

use jiff::Timestamp;
use orbwatch_capture::pcap::NetflowInPcap;
use orbwatch_capture::{BinaryFormat, Coverage, ReadOptions};
use orbwatch_detect::behaviour::observe::ObsBuffer;
use orbwatch_detect::{Aggregator, InputCoverage, IocEngine, MatchScratch};
use orbwatch_event::Origin;

/// What `--input-format` asked for, when it names a binary format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedBinary {
    /// `pcap`/`pcapng`: a capture, decoded as packets.
    Capture,
    /// `netflow`/`ipfix`: export datagrams, either raw (`.dat`) or inside
    /// a capture of exporter traffic.
    NetFlow,
    /// `evtx`.
    Evtx,
}

/// Names `--input-format` accepts for binary inputs.
pub const NAMES: &[&str] = &["pcap", "pcapng", "netflow", "ipfix", "evtx"];

/// The binary format an `--input-format` value names, if any.
pub fn forced(name: &str) -> Option<ForcedBinary> {
    match name.to_ascii_lowercase().as_str() {
        "pcap" | "pcapng" => Some(ForcedBinary::Capture),
        "netflow" | "ipfix" => Some(ForcedBinary::NetFlow),
        "evtx" => Some(ForcedBinary::Evtx),
        _ => None,
    }
}

/// How to read one input: the format and, for a capture, whether it is
/// NetFlow exporter traffic.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    format: BinaryFormat,
    netflow_only: bool,
}

impl Route {
    /// How `orbwatch-capture` reads an input routed this way.
    fn read_options(&self) -> ReadOptions {
        let mut opts = ReadOptions {
            format: Some(self.format),
            ..Default::default()
        };
        if self.netflow_only {
            opts.pcap.netflow = NetflowInPcap::Only;
        }
        opts
    }
}

/// Decide from the peeked head (after decompression) whether an input is
/// binary evidence, and how to read it. `None`: a text log.
pub fn route(forced: Option<ForcedBinary>, head: &[u8]) -> Option<Route> {
    let detected = orbwatch_capture::detect(head);
    let capture = matches!(detected, Some(BinaryFormat::Pcap | BinaryFormat::Pcapng));
    match forced {
        None => detected.map(|format| Route {
            format,
            netflow_only: capture && orbwatch_capture::exporter::is_exporter_capture(head),
        }),
        Some(ForcedBinary::Capture) => Some(Route {
            format: detected.filter(|_| capture).unwrap_or(BinaryFormat::Pcap),
            netflow_only: false,
        }),
        Some(ForcedBinary::NetFlow) => Some(Route {
            format: if capture {
                detected.unwrap_or(BinaryFormat::Pcap)
            } else {
                BinaryFormat::NetFlow
            },
            netflow_only: capture,
        }),
        Some(ForcedBinary::Evtx) => Some(Route {
            format: BinaryFormat::Evtx,
            netflow_only: false,
        }),
    }
}

/// What the matching of a binary input needs from the run.
pub struct BinaryCtx<'a> {
    pub engine: &'a IocEngine,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// The behaviour detectors, unless `--no-behaviour`.
    pub behaviour: Option<&'a crate::behaviour::Behaviour>,
    /// Where full observation buffers go.
    pub runs: Option<&'a orbwatch_detect::behaviour::runs::RunCollector>,
    /// This input's number in the hunt (for behaviour evidence).
    pub input: usize,
    /// The bound on the hunt's IOC sessions in memory: a capture is one
    /// unit however large, so it writes its sessions out as it reads.
    pub(crate) sessions: &'a crate::held_sessions::HeldSessions,
}

/// Decode one binary input and match every event it gives. Returns true
/// when the input could not be read to its end (the events before the
/// problem are still matched). Sessions written out of memory go to
/// `written`.
pub(crate) fn hunt(
    reader: Box<dyn BufRead + Send>,
    route: Route,
    file: &str,
    ctx: &BinaryCtx<'_>,
    cov: &mut InputCoverage,
    (agg, written): (&mut Aggregator, &mut Vec<crate::held_sessions::WrittenRun>),
    obs: &mut ObsBuffer,
) -> bool {
    let file: Arc<str> = Arc::from(file);
    let opts = route.read_options();
    let engine = ctx.engine;
    let mut scratch = MatchScratch::default();
    let mut format: &'static str = route.format.name();
    let mut matched = 0u64;
    let mut outside = 0u64;
    let mut times: (Option<Timestamp>, Option<Timestamp>) = (None, None);
    let bc = orbwatch_capture::read_any(reader, &opts, &mut |e| {
        let ev = &e.event;
        if let Some(t) = ev.time {
            if ctx.since.is_some_and(|s| ev.end_time.unwrap_or(t) < s)
                || ctx.until.is_some_and(|u| t > u)
            {
                outside += 1;
                return;
            }
            times.0 = Some(times.0.map_or(t, |f| f.min(t)));
            let last = ev.end_time.unwrap_or(t);
            times.1 = Some(times.1.map_or(last, |l| l.max(last)));
        }
        if let Some(b) = ctx.behaviour {
            b.observe(obs, ev, ctx.input, e.record);
            if let Some(r) = ctx.runs {
                r.add_if_full(ctx.input, 0, obs);
            }
        }
        if ev.kind == orbwatch_event::EventKind::Connection && route.netflow_only {
            format = "netflow";
        }
        if match_emitted(engine, &e, &file, format, &mut scratch, agg) {
            matched += 1;
            ctx.sessions.while_reading(agg, written);
        }
    });
    fill_coverage(cov, &bc, route);
    cov.matched_records += matched;
    cov.outside_time_filter += outside;
    if let Some(t) = times.0 {
        cov.see_time(t);
    }
    if let Some(t) = times.1 {
        cov.see_time(t);
    }
    bc.fatal.is_some()
}

/// Match one decoded binary record (a flow, a NetFlow record, an EVTX
/// event) against the indicators; true when it named one. Shared by the
/// hunt over binary files and the live NetFlow collector.
pub(crate) fn match_emitted(
    engine: &IocEngine,
    e: &orbwatch_capture::Emitted,
    file: &Arc<str>,
    format: &'static str,
    scratch: &mut MatchScratch,
    agg: &mut Aggregator,
) -> bool {
    let ev = &e.event;
    let names_or_hashes = engine.index().has_names() || engine.index().has_hashes();
    let candidate = ev.addresses().any(|(ip, _)| engine.index().contains_ip(ip))
        || (names_or_hashes
            && (ev.domain.is_some()
                || !ev.other_domains.is_empty()
                || ev.url.is_some()
                || !ev.hashes.is_empty()));
    if !candidate {
        return false;
    }
    let origin = Origin {
        file: file.clone(),
        line: e.record,
        offset: e.offset,
        format,
    };
    engine.match_record(e.raw().as_bytes(), true, Some(ev), &origin, scratch, agg) > 0
}

/// The text renderings of records `wanted` (record numbers as the hunt
/// saw them) of a binary input, for the evidence of behaviour findings,
/// which is read back after the sweep. `None` when the input is not
/// binary evidence (a text log: read it back by line).
pub fn read_back(
    input: &orbwatch_source::Input,
    forced: Option<ForcedBinary>,
    wanted: &std::collections::BTreeSet<u64>,
) -> Option<std::collections::BTreeMap<u64, (Option<u64>, String)>> {
    let (_, reader) = orbwatch_source::open(input).ok()?;
    let (head, reader) = orbwatch_source::peek_lines(reader, 64 * 1024).ok()?;
    let route = route(forced, &head)?;
    // Read again from the start: the peek consumed the head.
    let reader = if input.path.is_some() {
        orbwatch_source::open(input).ok()?.1
    } else {
        reader
    };
    let opts = route.read_options();
    let mut out = std::collections::BTreeMap::new();
    let _ = orbwatch_capture::read_any(reader, &opts, &mut |e| {
        if wanted.contains(&e.record) && !out.contains_key(&e.record) {
            out.insert(e.record, (Some(e.offset), e.raw().into_owned()));
        }
    });
    Some(out)
}

/// Carry a binary decoder's coverage into the hunt's.
fn fill_coverage(cov: &mut InputCoverage, bc: &Coverage, route: Route) {
    cov.format = if route.netflow_only {
        format!("{} (NetFlow/IPFIX exporter traffic)", bc.format)
    } else {
        bc.format.clone()
    };
    cov.bytes = bc.bytes;
    cov.records = bc.records;
    cov.parsed = bc.events;
    cov.skipped = bc.non_ip;
    for (reason, stat) in &bc.reasons {
        cov.reject(0, reason, stat.first.as_bytes());
        let more = stat.count.saturating_sub(1);
        cov.rejected += more;
        if let Some(s) = cov.reasons.get_mut(reason.as_str()) {
            s.count += more;
        }
    }
    let unit = match route.format {
        BinaryFormat::Pcap | BinaryFormat::Pcapng => "packets",
        BinaryFormat::NetFlow => "datagrams",
        BinaryFormat::Evtx => "records",
    };
    cov.notes.push(format!(
        "{} {unit} read, {} events ({} flows)",
        bc.records, bc.events, bc.flows
    ));
    if bc.non_ip > 0 {
        cov.notes.push(format!(
            "{} packets were not IP (ARP, STP…): counted as skipped",
            bc.non_ip
        ));
    }
    if bc.fragments > 0 {
        cov.notes.push(format!(
            "{} IP fragments counted (not reassembled)",
            bc.fragments
        ));
    }
    for (lt, n) in &bc.unknown_link_types {
        cov.notes.push(format!(
            "{n} packets on link type {lt}, which orbwatch does not decode"
        ));
    }
    if bc.waiting_for_template > 0 || bc.never_decoded > 0 {
        cov.notes.push(format!(
            "{} NetFlow/IPFIX data sets arrived before their template ({} never decoded: template not in this input)",
            bc.waiting_for_template, bc.never_decoded
        ));
    }
    if let Some(f) = &bc.fatal {
        cov.error = Some(f.clone());
    }
}
