//! The sweep over files: plan inputs into units of work (whole inputs, or
//! line-aligned chunks of large plain files), read every unit on a thread
//! pool, and merge what the units found in a fixed order so that the
//! answer never depends on which thread finished first.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use jiff::Timestamp;
use orbwatch_detect::aggregate::{SessionRun, finish_merged};
use orbwatch_detect::behaviour::observe::ObsBuffer;
use orbwatch_detect::behaviour::orb_likelihood::OrbLikelihood;
use orbwatch_detect::behaviour::runs::RunCollector;
use orbwatch_detect::coverage::feed_note;
use orbwatch_detect::{Aggregator, Coverage, FeedCoverage, InputCoverage, IocEngine, MatchScratch};
use orbwatch_event::decoders::{self, DecoderConfig};
use orbwatch_event::{DecodeError, Decoded, Decoder, Origin};
use orbwatch_source::{Input, InputProblem, Line, LineReader};
use rayon::prelude::*;

use crate::held_findings::{HeldFindings, Holding};
use crate::held_sessions::{HeldSessions, WrittenRun};
use crate::record_source::RecordSource;
use crate::sink::FindingsSink;
use crate::{Engine, EngineError, HuntSummary, binary};

/// Bytes peeked at the start of an input for format detection.
const PEEK: usize = 64 * 1024;
/// Lines of the peek used for detection.
const SNIFF_LINES: usize = 50;

/// The engine as the workers of one hunt see it.
type RunCtx = Engine;

/// One piece of work: a whole input, or a byte range of a plain file.
struct Unit {
    input: usize,
    chunk: usize,
    range: Option<(u64, u64)>,
    /// For chunks after the first: a decoder carrying the file's header state.
    decoder: Option<Box<dyn Decoder>>,
    format: Option<&'static str>,
}

/// What one unit found.
struct UnitResult {
    input: usize,
    chunk: usize,
    start: u64,
    newlines: u64,
    coverage: InputCoverage,
    agg: Aggregator,
    /// Its IOC sessions written out of memory (see `held_sessions`).
    written: Vec<WrittenRun>,
    fatal: bool,
}

impl Engine {
    /// Hunt `inputs` (and report `problems`, inputs that could not even be
    /// listed, in the coverage): sweep them in parallel, run the behaviour
    /// detectors, and hand every finding to `sink`, most serious first
    /// within the order of [`Aggregator::finish`], then the coverage.
    pub fn hunt(
        &self,
        inputs: &[Input],
        problems: &[InputProblem],
        sink: &mut dyn FindingsSink,
    ) -> Result<HuntSummary, EngineError> {
        let started = Timestamp::now();
        let ctx = self;
        let threads = self.threads();
        let units = plan_units(inputs, threads, ctx);
        self.progress_start(inputs, units.len());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| EngineError::Threads(e.to_string()))?;
        let sweep_clock = std::time::Instant::now();
        let sweep_cpu = process_cpu_seconds();
        let collector = self.behaviour.as_ref().map(|b| b.collector(threads));
        let runs = collector.as_ref();
        let sessions = HeldSessions::new(
            self.options.ioc_sessions_in_memory,
            threads,
            self.options.spill_dir.clone().or_else(|| {
                self.behaviour
                    .as_ref()
                    .and_then(|b| b.spill_dir().map(Path::to_path_buf))
            }),
        );
        let results: Vec<UnitResult> = pool.install(|| {
            units
                .into_par_iter()
                .map(|u| process_unit(u, inputs, ctx, runs, &sessions))
                .collect()
        });
        let sweep_secs = sweep_clock.elapsed().as_secs_f64();
        let swept: u64 = results.iter().map(|r| r.coverage.bytes).sum();
        let cpu = match (sweep_cpu, process_cpu_seconds()) {
            (Some(a), Some(b)) => format!(", {:.2} CPU s", b - a),
            _ => String::new(),
        };
        tracing::info!(
            "swept {swept} bytes in {sweep_secs:.3} s ({:.0} MB/s) on {threads} threads{cpu}",
            swept as f64 / 1e6 / sweep_secs.max(1e-9)
        );
        self.progress_finish();

        // Reassemble per input, in chunk order, fixing chunk-relative positions.
        let mut per_input: BTreeMap<usize, Vec<UnitResult>> = BTreeMap::new();
        for r in results {
            per_input.entry(r.input).or_default().push(r);
        }
        let mut coverage = Coverage {
            started: Some(started),
            ..Default::default()
        };
        let mut agg = Aggregator::with_evidence_cap(self.options.evidence_limit);
        let mut line_bases: BTreeMap<(usize, usize), u64> = BTreeMap::new();
        let mut session_runs: Vec<SessionRun> = Vec::new();
        let (sessions_written, runs_written, sessions_note) = sessions.summary();
        let runs_file = sessions.into_file();
        let mut formats = BTreeMap::new();
        let mut input_errors = 0usize;
        for p in problems {
            let mut c = InputCoverage::new(&p.path);
            if p.error {
                input_errors += 1;
                c.error = Some(p.reason.clone());
            } else {
                c.notes.push(p.reason.clone());
            }
            coverage.inputs.push(c);
        }
        for (input, mut parts) in per_input {
            parts.sort_by_key(|p| p.chunk);
            let mut lines_before = 0u64;
            let mut cov: Option<InputCoverage> = None;
            let mut fatal = false;
            for mut p in parts {
                p.agg.rebase(lines_before, p.start);
                if let Some(f) = &runs_file {
                    session_runs.extend(
                        p.written
                            .iter()
                            .map(|w| f.read_back(w, lines_before, p.start)),
                    );
                }
                p.coverage.rebase(lines_before);
                line_bases.insert((input, p.chunk), lines_before);
                lines_before += p.newlines;
                agg.merge(p.agg);
                fatal |= p.fatal;
                match &mut cov {
                    None => cov = Some(p.coverage),
                    Some(c) => c.merge(p.coverage),
                }
            }
            if let Some(c) = cov {
                formats.insert(input, c.format.clone());
                if fatal || c.error.is_some() {
                    input_errors += 1;
                }
                coverage.inputs.push(c);
            }
        }

        if runs_written > 0 {
            tracing::info!(
                "{sessions_written} IOC sessions were written out of memory in {runs_written} sorted runs (over {} held at once) and merged back",
                self.options.ioc_sessions_in_memory
            );
        }
        coverage.sightings = agg.sightings();
        // With behaviour on, IOC findings wait (on disk past a count) while
        // the detectors replay; ORB likelihood observes every finding in
        // output order (IOC findings, then behaviour) and annotates them
        // as they go to the sink. Making the IOC findings, writing them
        // out one at a time and reading them back in output order for ORB
        // likelihood runs on a thread of its own beside the start of the
        // replay (see `held_findings`).
        let (held, behaviour, scores) = if let (Some(b), Some(c)) = (&self.behaviour, collector) {
            std::thread::scope(|scope| -> Result<_, EngineError> {
                let holding = scope.spawn(|| {
                    let mut holding = Holding::new(
                        b.ioc_findings_in_memory(),
                        self.options.spill_dir.as_deref().or(b.spill_dir()),
                    );
                    let merged = finish_merged(agg, session_runs, &self.ioc, |f| holding.push(f))
                        .map_err(EngineError::Spill);
                    let (held, note) = holding.finish();
                    let mut orb = OrbLikelihood::default();
                    let read = merged.and_then(|()| held.for_each(|f| orb.observe(f, &b.internal)));
                    (orb, held, note, read)
                });
                let runs =
                    c.finish(|input, chunk| line_bases.get(&(input, chunk)).copied().unwrap_or(0));
                crate::memory::give_back_freed_heap();
                let found = b.finish(runs, self.threads(), &mut coverage);
                let (mut orb, held, note, read) = holding
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                read?;
                coverage.notes.extend(note.into_iter().chain(sessions_note));
                for f in &found.findings {
                    orb.observe(f, &b.internal);
                }
                let scores = b.orb_scores(orb, &found.backdoor);
                Ok((held, Some((b, found)), Some(scores)))
            })?
        } else if session_runs.is_empty() {
            // (None were written out, perhaps because they could not be.)
            coverage.notes.extend(sessions_note);
            (HeldFindings::Memory(agg.finish(&self.ioc)), None, None)
        } else {
            // Sessions were many enough to be written out: their findings
            // wait on disk too, rather than all in memory at once.
            let mut holding = Holding::new(
                crate::behaviour::IOC_FINDINGS_IN_MEMORY,
                self.options.spill_dir.as_deref(),
            );
            finish_merged(agg, session_runs, &self.ioc, |f| holding.push(f))
                .map_err(EngineError::Spill)?;
            let (held, note) = holding.finish();
            coverage.notes.extend(note.into_iter().chain(sessions_note));
            (held, None, None)
        };
        coverage.findings =
            (held.len() + behaviour.as_ref().map_or(0, |(_, f)| f.findings.len())) as u64;
        let range = coverage.time_range();
        for f in self.ioc.feeds() {
            coverage.feeds.push(FeedCoverage {
                note: feed_note(f.from, f.until, range),
                feed: f.feed.clone(),
                indicators: f.indicators,
                search_from: f.from,
                search_until: f.until,
            });
        }
        let mut sending = true;
        let (mut in_window, mut out_of_window) = (0u64, 0u64);
        let mut send = |f: &mut orbwatch_detect::Finding| -> Result<(), EngineError> {
            match f.ioc.as_ref().map(|i| i.in_validity_window) {
                Some(true) => in_window += 1,
                Some(false) => out_of_window += 1,
                None => {}
            }
            if let Some(s) = &scores {
                s.annotate(f);
            }
            // A sink that wants no more (`--max-findings`) still lets the
            // counts above be made.
            if sending && !sink.finding(f).map_err(EngineError::Sink)? {
                sending = false;
            }
            Ok(())
        };
        // The behaviour findings' evidence is read back from the logs on a
        // thread of its own while the IOC findings, which come first, go
        // to the sink: both are serial and each took about 0.5 s of the
        // 1 GB bench hunt.
        std::thread::scope(|scope| -> Result<(), EngineError> {
            let reading = behaviour.map(|(b, found)| {
                let formats = &formats;
                scope.spawn(move || {
                    let mut findings = found.findings;
                    found
                        .evidence
                        .read_back(&mut findings, inputs, formats, b.binary);
                    findings
                })
            });
            for f in held.into_iter() {
                send(&mut f?)?;
            }
            if let Some(reading) = reading {
                let findings = reading
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                for mut f in findings {
                    send(&mut f)?;
                }
            }
            Ok(())
        })?;
        coverage.findings_in_window = in_window;
        coverage.findings_out_of_window = out_of_window;
        coverage.finished = Some(Timestamp::now());
        sink.coverage(&coverage).map_err(EngineError::Sink)?;
        sink.finish().map_err(EngineError::Sink)?;
        Ok(HuntSummary {
            coverage,
            input_errors,
        })
    }
}

/// Split inputs into units of work. Large plain files are cut into
/// line-aligned chunks so that both cores work on one big file.
fn plan_units(inputs: &[Input], threads: usize, ctx: &RunCtx) -> Vec<Unit> {
    let mut units = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let whole = Unit {
            input: i,
            chunk: 0,
            range: None,
            decoder: None,
            format: None,
        };
        let chunk_bytes = ctx.options.chunk_bytes.max(2);
        let splittable = threads > 1 && input.path.is_some() && input.size > chunk_bytes;
        if !splittable {
            units.push(whole);
            continue;
        }
        match plan_chunks(i, input, threads, ctx) {
            Some(mut chunks) => units.append(&mut chunks),
            None => units.push(whole),
        }
    }
    units
}

fn plan_chunks(i: usize, input: &Input, threads: usize, ctx: &RunCtx) -> Option<Vec<Unit>> {
    let path = input.path.as_ref()?;
    let (compression, reader) = orbwatch_source::open(input).ok()?;
    if compression != orbwatch_source::Compression::None {
        return None;
    }
    let (head, _) = orbwatch_source::peek_lines(reader, PEEK).ok()?;
    if (orbwatch_source::looks_binary(&head) && ctx.forced.is_none())
        || binary::route(ctx.binary, &head).is_some()
    {
        return None;
    }
    let lines = head_lines(&head);
    let info = ctx.forced.unwrap_or_else(|| decoders::detect(&lines));
    let cfg = decoder_config(ctx, input);
    // A template decoder that has seen the header lines.
    let mut template = (info.make)(&cfg);
    for l in &lines {
        if matches!(template.decode(l), Ok(Decoded::Event(_))) {
            break;
        }
    }
    let chunks =
        orbwatch_source::line_aligned_chunks(path, threads * 2, ctx.options.chunk_bytes.max(2) / 2)
            .ok()?;
    Some(
        chunks
            .into_iter()
            .enumerate()
            .map(|(k, r)| Unit {
                input: i,
                chunk: k,
                range: Some(r),
                decoder: (k > 0).then(|| template.fork()),
                format: Some(info.name),
            })
            .collect(),
    )
}

/// Complete lines of a peeked head, at most [`SNIFF_LINES`].
fn head_lines(head: &[u8]) -> Vec<&[u8]> {
    let complete = match memchr::memrchr(b'\n', head) {
        Some(i) if head.len() >= PEEK => &head[..i],
        _ => head,
    };
    complete
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        // NUL padding before a line (see `LineReader`) is not part of it.
        .map(|l| &l[l.iter().position(|b| *b != 0).unwrap_or(l.len())..])
        .filter(|l| !l.is_empty())
        .take(SNIFF_LINES)
        .collect()
}

fn decoder_config(ctx: &RunCtx, input: &Input) -> DecoderConfig {
    DecoderConfig {
        year: ctx.options.year.or_else(|| mtime_year(input)),
        map: ctx.options.map.clone(),
        timezone: ctx.options.timezone.clone(),
    }
}

fn mtime_year(input: &Input) -> Option<i16> {
    let t = Timestamp::try_from(input.modified?).ok()?;
    Some(t.to_zoned_datetime(jiff::tz::TimeZone::UTC).year())
}

fn year_note(ctx: &RunCtx, input: &Input, cfg: &DecoderConfig) -> Option<String> {
    let y = cfg.year?;
    Some(if ctx.options.year.is_some() {
        format!("syslog lines without a year were dated {y} (from --year)")
    } else if mtime_year(input).is_some() {
        format!(
            "syslog lines without a year were dated {y} (from the file's modification time; use --year to change)"
        )
    } else {
        format!("syslog lines without a year were dated {y}")
    })
}

fn process_unit(
    unit: Unit,
    inputs: &[Input],
    ctx: &RunCtx,
    runs: Option<&RunCollector>,
    sessions: &HeldSessions,
) -> UnitResult {
    let input = &inputs[unit.input];
    let mut cov = InputCoverage::new(&input.display);
    let mut agg = Aggregator::with_evidence_cap(ctx.options.evidence_limit);
    let mut obs = ObsBuffer::new();
    let start = unit.range.map_or(0, |r| r.0);
    let (input_no, chunk_no) = (unit.input, unit.chunk);
    let mut written = Vec::new();
    let result = |cov, mut agg, mut obs: ObsBuffer, newlines, fatal, mut written| {
        if let Some(r) = runs {
            r.add(input_no, chunk_no, &mut obs, true);
        }
        sessions.unit_done(&mut agg, &mut written);
        UnitResult {
            input: input_no,
            chunk: chunk_no,
            start,
            newlines,
            coverage: cov,
            agg,
            written,
            fatal,
        }
    };
    let cfg = decoder_config(ctx, input);

    // Open, decompress, detect.
    let (reader, mut decoder): (Box<dyn BufRead + Send>, Box<dyn Decoder>) = match unit.range {
        Some((s, e)) => {
            cov.compression = "none".into();
            let reader = match orbwatch_source::open_range(input, s, e) {
                Ok(r) => r,
                Err(err) => {
                    cov.error = Some(format!("cannot read it: {err}"));
                    return result(cov, agg, obs, 0, true, written);
                }
            };
            if let Some(r) = runs {
                r.reserve_run(&mut obs, Some(e.saturating_sub(s)));
            }
            let decoder = match unit.decoder {
                Some(d) => d,
                None => {
                    let info = unit
                        .format
                        .and_then(decoders::by_name)
                        .unwrap_or_else(|| decoders::detect(&[]));
                    (info.make)(&cfg)
                }
            };
            (reader, decoder)
        }
        None => {
            let (compression, reader) = match orbwatch_source::open(input) {
                Ok(x) => x,
                Err(err) => {
                    cov.error = Some(format!("cannot read it: {err}"));
                    return result(cov, agg, obs, 0, true, written);
                }
            };
            cov.compression = compression.as_str().into();
            if let Some(r) = runs {
                // A compressed file's size says little of its lines, and
                // standard input has none.
                let plain = compression == orbwatch_source::Compression::None;
                let sized = plain && input.path.is_some();
                r.reserve_run(&mut obs, sized.then_some(input.size));
            }
            let (head, reader) = match orbwatch_source::peek_lines(reader, PEEK) {
                Ok(x) => x,
                Err(err) => {
                    cov.error = Some(describe_read_error(compression.as_str(), &err, 0));
                    return result(cov, agg, obs, 0, true, written);
                }
            };
            if let Some(route) = binary::route(ctx.binary, &head) {
                let bctx = binary::BinaryCtx {
                    engine: &ctx.ioc,
                    since: ctx.options.since,
                    until: ctx.options.until,
                    behaviour: ctx.behaviour.as_deref(),
                    runs,
                    input: unit.input,
                    sessions,
                };
                let fatal = binary::hunt(
                    reader,
                    route,
                    &input.display,
                    &bctx,
                    &mut cov,
                    (&mut agg, &mut written),
                    &mut obs,
                );
                if let Some(pb) = &ctx.progress {
                    pb.inc(cov.bytes);
                }
                return result(cov, agg, obs, 0, fatal, written);
            }
            if ctx.forced.is_none() && orbwatch_source::looks_binary(&head) {
                cov.error = Some(
                    "binary data, not a text log nor a pcap, pcapng, NetFlow/IPFIX or EVTX file; skipped (if it is a log, pass --input-format FORMAT to read it as one)"
                        .into(),
                );
                return result(cov, agg, obs, 0, true, written);
            }
            let info = ctx
                .forced
                .unwrap_or_else(|| decoders::detect(&head_lines(&head)));
            // Files are opened again rather than read through the peek
            // buffer: chaining the peek in front costs a copy of every byte.
            let reader = match (&input.path, head.len() >= PEEK) {
                (Some(_), true) => match orbwatch_source::open(input) {
                    Ok((_, r)) => r,
                    Err(_) => reader,
                },
                _ => reader,
            };
            (reader, (info.make)(&cfg))
        }
    };
    cov.format = decoder.name().to_string();

    let file: Arc<str> = Arc::from(input.display.as_str());
    let format = decoder.name();
    let engine = &ctx.ioc;
    let names_or_hashes = engine.index().has_names() || engine.index().has_hashes();
    let mut lr = LineReader::new(reader);
    let mut sink = RecordSink {
        ctx,
        decoder: &mut *decoder,
        cov: &mut cov,
        agg: &mut agg,
        obs: &mut obs,
        runs,
        chunk: unit.chunk,
        input: unit.input,
        scratch: MatchScratch::default(),
        file: &file,
        format,
        names_or_hashes,
    };
    let fatal = sweep_records(&mut lr, &mut sink, Some((sessions, &mut written)));
    cov.bytes = lr.position();
    // How the year of year-less lines was chosen, only when some line had
    // none (ISO 8601 and RFC 5424 stamps carry it: nothing to explain).
    if decoder.assumed_years() > 0 {
        cov.year_note = year_note(ctx, input, &cfg);
    }
    if let Some(pb) = &ctx.progress {
        let done = ctx.units_done.fetch_add(1, Ordering::Relaxed) + 1;
        let seen = ctx.sightings.fetch_add(agg.sightings(), Ordering::Relaxed) + agg.sightings();
        pb.set_message(format!(
            "{done}/{} files or chunks, {seen} sightings",
            ctx.units_total.load(Ordering::Relaxed)
        ));
    }
    let newlines = cov.records;
    result(cov, agg, obs, newlines, fatal, written)
}

/// Read every record of `source` through `sink` (decode, match, observe).
/// Returns true when the source failed before its end (the records before
/// the failure were handled and count).
fn sweep_records(
    source: &mut dyn RecordSource,
    sink: &mut RecordSink<'_>,
    mut sessions: Option<(&HeldSessions, &mut Vec<WrittenRun>)>,
) -> bool {
    let ctx = sink.ctx;
    let engine = &ctx.ioc;
    let names_or_hashes = sink.names_or_hashes;
    let mut last_progress = 0u64;
    let mut fatal = false;
    // With a large IPv4 index and nothing but addresses to look for, the
    // lookups of successive records overlap in a pipeline (below).
    let pipelined = ctx.lazy()
        && !names_or_hashes
        && !engine.index().has_ipv6()
        && engine.index().stats().ipv4 > 65_536;
    // A three-stage software pipeline with STAGE records per stage: when a
    // record is read, the /24 filter words of its addresses are
    // prefetched; STAGE records later the filter is tested and the table
    // slots of addresses that pass are prefetched; STAGE records after
    // that the record is checked and handled. Each stage then finds its
    // data in cache instead of waiting on memory.
    const STAGE: usize = 16;
    const RING: usize = 2 * STAGE + 1;
    let mut ring: Vec<Pending> = if pipelined {
        (0..RING).map(|_| Pending::default()).collect()
    } else {
        Vec::new()
    };
    let mut queued = 0usize;
    let mut nul_free: Vec<u8> = Vec::new();
    loop {
        let line = match source.next_record() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(err) => {
                sink.cov.error = Some(describe_read_error(
                    &sink.cov.compression,
                    &err,
                    sink.cov.records,
                ));
                fatal = true;
                break;
            }
        };
        sink.cov.records += 1;
        if line.truncated {
            sink.cov.truncated_lines += 1;
        }
        // NULs inside a line (a run that did not start at a line start):
        // dropped and counted, the text around them decoded.
        let line = if memchr::memchr(0, line.bytes).is_some() {
            nul_free.clear();
            nul_free.extend(line.bytes.iter().copied().filter(|b| *b != 0));
            sink.cov.nul_bytes += (line.bytes.len() - nul_free.len()) as u64;
            Line {
                bytes: &nul_free,
                ..line
            }
        } else {
            line
        };
        if pipelined {
            let p = &mut ring[queued % RING];
            p.keys.clear();
            orbwatch_event::ipscan::for_each_ipv4(line.bytes, |ip, _, _| {
                p.keys.push(u32::from(ip))
            });
            for k in &p.keys {
                engine.index().prefetch_ipv4_filter(*k);
            }
            p.bytes.clear();
            p.bytes.extend_from_slice(line.bytes);
            p.number = line.number;
            p.offset = line.offset;
            if queued >= STAGE {
                for k in &ring[(queued - STAGE) % RING].keys {
                    engine.index().prefetch_ipv4(*k);
                }
            }
            if queued >= 2 * STAGE {
                let p = &ring[(queued - 2 * STAGE) % RING];
                sink.handle(p.number, p.offset, &p.bytes, p.hit(engine));
            }
            queued += 1;
        } else {
            let hit = engine.raw_may_match(line.bytes);
            sink.handle(line.number, line.offset, line.bytes, hit);
        }
        if let Some(pb) = &ctx.progress {
            let pos = source.position();
            if pos - last_progress > 4 << 20 {
                pb.inc(pos - last_progress);
                last_progress = pos;
            }
        }
        if let Some((held, written)) = &mut sessions {
            held.while_reading(sink.agg, written);
        }
    }
    // Drain the pipeline: the records of the last two stages, in order.
    for n in queued.saturating_sub(2 * STAGE)..queued {
        let p = &ring[n % RING];
        sink.handle(p.number, p.offset, &p.bytes, p.hit(engine));
    }
    if let Some(pb) = &ctx.progress {
        pb.inc(source.position().saturating_sub(last_progress));
    }
    sink.cov.nul_bytes += source.nul_bytes();
    fatal
}

/// A record held back in the batched sweep (see `process_unit`): its
/// bytes, position and the IPv4 keys it names.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    keys: Vec<u32>,
    number: u64,
    offset: u64,
}

impl Pending {
    /// Does the record name an indicator address?
    fn hit(&self, engine: &IocEngine) -> bool {
        self.keys.iter().any(|k| {
            engine
                .index()
                .contains_ip(std::net::IpAddr::V4((*k).into()))
        })
    }
}

/// Everything needed to decode and match one record of an input: the one
/// place where a record becomes an event, observations and sightings, for
/// a hunt's units and for the live pipeline alike.
pub(crate) struct RecordSink<'a> {
    pub(crate) ctx: &'a RunCtx,
    pub(crate) decoder: &'a mut dyn Decoder,
    pub(crate) cov: &'a mut InputCoverage,
    pub(crate) agg: &'a mut Aggregator,
    pub(crate) obs: &'a mut ObsBuffer,
    /// Where full observation buffers go (None: no behaviour detectors,
    /// or a live pipeline, which takes them after every record).
    pub(crate) runs: Option<&'a RunCollector>,
    pub(crate) chunk: usize,
    pub(crate) input: usize,
    pub(crate) scratch: MatchScratch,
    /// Borrowed, not another handle: a live pipeline makes a sink per
    /// record (the saving, two atomic counts a record, is below what the
    /// benchmark can see).
    pub(crate) file: &'a Arc<str>,
    pub(crate) format: &'static str,
    pub(crate) names_or_hashes: bool,
}

/// What is known of a record's match before [`RecordSink`] decodes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prematched {
    /// Its raw text names an indicator address (with `addresses_tested`,
    /// or its decoded event does).
    pub ip_hit: bool,
    /// `ip_hit` already covers the decoded event's addresses (tested on a
    /// source's thread): they need not be tested again.
    pub addresses_tested: bool,
}

impl RecordSink<'_> {
    /// Handle one record. `ip_hit` says whether its raw text names an
    /// indicator address.
    pub(crate) fn handle(&mut self, number: u64, offset: u64, raw: &[u8], ip_hit: bool) {
        let pre = Prematched {
            ip_hit,
            addresses_tested: false,
        };
        self.handle_decoded(number, offset, raw, pre, None);
    }

    /// As [`handle`](Self::handle), with the record already decoded
    /// (`decoded`) by another instance of this sink's decoder, on a
    /// source's thread (see `live::SourceDecoding`): the decoder here is
    /// then not asked.
    pub(crate) fn handle_decoded(
        &mut self,
        number: u64,
        offset: u64,
        raw: &[u8],
        pre: Prematched,
        decoded: Option<Result<Decoded, DecodeError>>,
    ) {
        let Prematched {
            ip_hit,
            addresses_tested,
        } = pre;
        let engine = &self.ctx.ioc;
        let decoder = &mut *self.decoder;
        if self.ctx.lazy() && !ip_hit && !(self.names_or_hashes && engine.raw_may_name(raw)) {
            // IOC sweep without behaviour detectors: a record that names no
            // indicator needs only its time, for coverage.
            self.cov.undecoded += 1;
            if let Some(t) = std::panic::catch_unwind(AssertUnwindSafe(|| decoder.time_of(raw)))
                .ok()
                .flatten()
            {
                self.cov.see_time(t);
            }
            return;
        }
        let decoded = decoded.unwrap_or_else(|| decode_guarded(decoder, raw));
        let event = match decoded {
            Ok(Decoded::Event(e)) => {
                self.cov.parsed += 1;
                Some(e)
            }
            Ok(Decoded::Skip) => {
                self.cov.skipped += 1;
                return;
            }
            Err(e) => {
                self.cov.reject(number, &e.0, raw);
                None
            }
        };
        if let Some(t) = event.as_ref().and_then(|e| e.time) {
            if self.ctx.options.since.is_some_and(|s| t < s)
                || self.ctx.options.until.is_some_and(|u| t > u)
            {
                self.cov.outside_time_filter += 1;
                return;
            }
            self.cov.see_time(t);
        }
        if let (Some(b), Some(e)) = (&self.ctx.behaviour, &event) {
            b.observe(self.obs, e, self.input, number);
            if let Some(r) = self.runs {
                r.add_if_full(self.input, self.chunk, self.obs);
            }
        }
        let candidate = ip_hit
            || (!addresses_tested
                && event
                    .as_ref()
                    .is_some_and(|e| e.addresses().any(|(ip, _)| engine.index().contains_ip(ip))))
            || (self.names_or_hashes
                && event.as_ref().is_some_and(|e| {
                    e.domain.is_some()
                        || !e.other_domains.is_empty()
                        || e.url.is_some()
                        || !e.hashes.is_empty()
                }));
        if candidate {
            let origin = Origin {
                file: self.file.clone(),
                line: number,
                offset,
                format: self.format,
            };
            if engine.match_record(
                raw,
                true,
                event.as_deref(),
                &origin,
                &mut self.scratch,
                self.agg,
            ) > 0
            {
                self.cov.matched_records += 1;
            }
        }
    }
}

/// Decode one record; a panic in the decoder becomes the record's
/// rejection (counted and reported with its line), never the process's
/// end.
pub(crate) fn decode_guarded(
    decoder: &mut dyn Decoder,
    raw: &[u8],
) -> Result<Decoded, DecodeError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| decoder.decode(raw))).unwrap_or_else(|_| {
        Err(DecodeError::new(
            "the decoder failed on this record (a bug: please report it with the line)",
        ))
    })
}

/// CPU time (user + system) the process has used so far, from
/// `/proc/self/stat`, for the `-v` sweep figures: on a busy machine CPU
/// time says more about the sweep's cost than wall time. `None` off Linux.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line, in clock ticks (100 Hz on
    // Linux for this interface).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ').skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Turn a read error into words that name what went wrong.
fn describe_read_error(compression: &str, err: &io::Error, records: u64) -> String {
    let what = if compression.is_empty() || compression == "none" {
        "read failed".to_string()
    } else {
        format!("{compression} data is corrupt or truncated")
    };
    format!("{what} after {records} records: {err}; the records before it were hunted")
}
