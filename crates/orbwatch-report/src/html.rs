//! The HTML report: one self-contained file for management and incident
//! responders.
//!
//! No script, no network fetch: CSS is inline and charts are inline SVG
//! drawn here. Every piece of text that comes from logs, feeds or the
//! analyst goes through [`esc`] — evidence is attacker-controlled text.
//! The page prints cleanly (`@media print`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use orbwatch_detect::{Coverage, Direction, Finding, Severity, most_serious_first};
use orbwatch_store::RouterStepDetail;
use orbwatch_store::router_detail::HealthCheck;

use crate::coverage_gaps::{Gap, gaps, ranges_by_format};
use crate::model::{ReportFinding, ReportInput, STATUS_CONFIRMED, kind_label};

/// Findings shown in full (with evidence); the rest are counted.
pub const DETAIL_LIMIT: usize = 200;
/// Evidence records shown per finding.
pub const EVIDENCE_SHOWN: usize = 5;
/// Characters of one evidence record shown.
pub const EVIDENCE_CHARS: usize = 400;
/// Rows of the "top" tables.
pub const TOP: usize = 10;
/// Rows of the internal hosts table.
pub const HOSTS_SHOWN: usize = 50;

const PALETTE: [&str; 10] = [
    "#1f5fa8", "#d9822b", "#2e8b57", "#b03a5b", "#6a4c93", "#8c6d1f", "#138d90", "#c0392b",
    "#5d6d7e", "#7d3c98",
];

/// Escape text for HTML element content and attribute values. Control
/// characters (other than tab and newline) become U+FFFD so that a hostile
/// record cannot hide text or break the layout.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            // Bidirectional overrides can make text read differently
            // from what it is.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn day(t: Timestamp) -> Date {
    t.to_zoned_datetime(TimeZone::UTC).date()
}

fn fmt_day(t: Option<Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "—".into())
}

/// A time as HTML: kept on one line (a date broken at its hyphens is
/// hard to read in a narrow column).
fn fmt_time(t: Option<Timestamp>) -> String {
    t.map(|t| {
        format!(
            r#"<span class="t">{}</span> <span class="t">{}</span>"#,
            t.strftime("%Y-%m-%d"),
            t.strftime("%H:%M UTC")
        )
    })
    .unwrap_or_else(|| "—".into())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The internal end of an IOC match's traffic, when the record names it.
fn internal_hosts(f: &Finding) -> Vec<(IpAddr, Direction)> {
    let Some(ioc) = &f.ioc else {
        return Vec::new();
    };
    match ioc.direction {
        Direction::Inbound => f
            .dst_ip
            .or(ioc.peer)
            .map(|h| vec![(h, Direction::Inbound)])
            .unwrap_or_default(),
        Direction::Outbound => f
            .src_ip
            .or(ioc.peer)
            .map(|h| vec![(h, Direction::Outbound)])
            .unwrap_or_default(),
        Direction::Internal => [f.src_ip, f.dst_ip]
            .into_iter()
            .flatten()
            .map(|h| (h, Direction::Internal))
            .collect(),
        Direction::Unknown => Vec::new(),
    }
}

/// Sightings per UTC day of one finding. Evidence records carry their own
/// time; when the kept evidence does not account for every sighting, the
/// rest are dated by the last sighting (and counted in the second value).
fn sightings_per_day(f: &Finding) -> (Vec<(Date, u64)>, u64) {
    let mut days: BTreeMap<Date, u64> = BTreeMap::new();
    let mut dated = 0u64;
    for e in f.evidence.iter().filter(|e| !e.context) {
        if let Some(t) = e.time {
            *days.entry(day(t)).or_default() += 1;
            dated += 1;
        }
    }
    let rest = f.count.saturating_sub(dated);
    let mut approx = 0;
    if rest > 0
        && let Some(t) = f.last_seen.or(f.first_seen)
    {
        *days.entry(day(t)).or_default() += rest;
        approx = rest;
    }
    (days.into_iter().collect(), approx)
}

fn series_of(f: &Finding) -> String {
    match &f.ioc {
        Some(i) => format!("feed {}", i.feed),
        None => kind_label(f.kind).to_string(),
    }
}

fn sev_class(s: Option<Severity>) -> &'static str {
    // By name, so that a severity added to the model needs no change here.
    match s.map(Severity::as_str) {
        Some("critical" | "high") => "bad",
        Some("medium") => "warn",
        Some(_) => "info",
        None => "muted",
    }
}

fn status_badge(rf: &ReportFinding) -> String {
    let s = rf.status();
    let class = match s {
        "confirmed" => "bad",
        "false-positive" | "benign" => "ok",
        _ => "muted",
    };
    let inherited = rf
        .triage
        .as_ref()
        .and_then(|t| t.inherited_from.as_ref())
        .map(|id| format!(r#" <span class="small">(decided on {})</span>"#, esc(id)))
        .unwrap_or_default();
    format!(
        r#"<span class="badge {class}">{}</span>{inherited}"#,
        esc(s)
    )
}

const CSS: &str = r#"
:root{--ink:#1b2430;--muted:#5b6673;--line:#d8dde3;--bg:#f6f7f9;--accent:#1f5fa8;
--bad:#b3261e;--badbg:#fbe9e7;--warn:#9a5b00;--warnbg:#fff4e0;--ok:#1e6b3a;--okbg:#e6f4ea;}
*{box-sizing:border-box}
body{margin:0;font-family:"Segoe UI",system-ui,-apple-system,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:var(--bg);font-size:15px;line-height:1.5}
main{max-width:1100px;margin:0 auto;padding:32px 40px 64px;background:#fff;min-height:100vh}
header.top{border-bottom:3px solid var(--ink);padding-bottom:12px;margin-bottom:24px}
header.top .kicker{font-size:12px;letter-spacing:.12em;text-transform:uppercase;color:var(--muted)}
h1{font-size:28px;margin:4px 0 6px;font-weight:650}
h2{font-size:20px;margin:40px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line);font-weight:600}
h3{font-size:16px;margin:20px 0 8px;font-weight:600}
.meta{color:var(--muted);font-size:13px}
.verdict{border-radius:6px;padding:18px 22px;margin:8px 0 20px;border-left:8px solid}
.verdict h2{border:0;margin:0 0 4px;padding:0;font-size:22px}
.verdict p{margin:4px 0}
.verdict.bad{background:var(--badbg);border-color:var(--bad)} .verdict.bad h2{color:var(--bad)}
.verdict.warn{background:var(--warnbg);border-color:#d9822b} .verdict.warn h2{color:var(--warn)}
.verdict.ok{background:var(--okbg);border-color:var(--ok)} .verdict.ok h2{color:var(--ok)}
.verdict.none{background:#eef1f4;border-color:var(--muted)} .verdict.none h2{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(7,1fr);gap:12px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 14px}
.card .n{font-size:26px;font-weight:650;line-height:1.2}
.card .l{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:13.5px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top;
overflow-wrap:break-word}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600;
border-bottom:2px solid var(--line)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:"SFMono-Regular",Consolas,"Liberation Mono",Menlo,monospace;font-size:12.5px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
background:#eef1f4;color:var(--muted);white-space:nowrap}
.badge.bad{background:var(--badbg);color:var(--bad)} .badge.warn{background:var(--warnbg);color:var(--warn)}
.badge.ok{background:var(--okbg);color:var(--ok)} .badge.info{background:#e8f0fa;color:var(--accent)}
.bar{height:8px;background:var(--accent);border-radius:2px;min-width:2px}
.small{font-size:12px;color:var(--muted)}
td .small{overflow-wrap:anywhere}
.t{white-space:nowrap}
.finding{border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:12px 0;break-inside:avoid}
.finding .head{display:flex;flex-wrap:wrap;gap:8px;align-items:baseline;justify-content:space-between;cursor:pointer}
details.finding>summary{list-style:none} details.finding>summary::before{content:"▸";color:var(--muted);margin-right:6px}
details.finding[open]>summary::before{content:"▾"}
nav#toc{border:1px solid var(--line);border-radius:6px;padding:8px 14px;margin:12px 0;font-size:13.5px}
nav#toc ol{margin:0;padding-left:20px;columns:2}
td,th{overflow-wrap:anywhere}
.finding .title{font-weight:600}
.finding dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0;font-size:13.5px}
.finding dt{color:var(--muted)} .finding dd{margin:0}
.finding dl.fields{font-size:12.5px;margin:4px 0 2px;background:#f8f9fb;padding:4px 10px;border-radius:4px}
pre.ev{background:#f3f4f6;border:1px solid var(--line);border-radius:4px;padding:8px 10px;margin:6px 0;
white-space:pre-wrap;word-break:break-all;font-size:12px;max-height:none}
.chart{width:100%;height:auto;display:block;margin:8px 0}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12.5px;margin:4px 0 8px}
.legend span.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.note{background:#f3f6fa;border-left:4px solid var(--accent);padding:10px 14px;margin:12px 0;font-size:14px}
.gap{color:var(--bad);font-weight:500}
ul.reasons{margin:4px 0;padding-left:20px}
ul.confirmed{margin:8px 0 0;padding-left:20px} ul.confirmed a{color:inherit}
footer{margin-top:48px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:10px}
@media (max-width:900px){main{padding:20px} .cards{grid-template-columns:repeat(3,1fr)}}
@media print{
 @page{size:A4;margin:14mm 12mm}
 body{background:#fff;font-size:11pt}
 main{max-width:none;padding:0;min-height:0}
 h2,h3{break-after:avoid;page-break-after:avoid} figure,.finding,.verdict,.cards{break-inside:avoid}
 table{width:100%;max-width:100%} td,th{overflow-wrap:anywhere}
 nav#toc{display:none}
 details::details-content{content-visibility:visible;display:block}
 details.finding>summary::before,details.finding[open]>summary::before{content:none}
 tr{break-inside:avoid}
 .cards{grid-template-columns:repeat(3,1fr)}
 table{font-size:9pt}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 a{color:inherit;text-decoration:none}
}
"#;

/// Render the report.
pub fn render(input: &ReportInput) -> String {
    let r = Report::new(input);
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // No fetch of any kind: images, fonts, scripts and frames are refused.
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
    let _ = writeln!(
        h,
        "<title>ORB hunt report — {} — {}</title>",
        esc(&input.org),
        input.generated.strftime("%Y-%m-%d")
    );
    let _ = writeln!(h, "<style>{CSS}</style>\n</head>\n<body>\n<main>");
    r.header(&mut h);
    r.toc(&mut h);
    r.verdict(&mut h);
    r.summary(&mut h);
    if !r.active.is_empty() {
        r.timeline(&mut h);
        r.top_tables(&mut h);
        r.hosts(&mut h);
    }
    r.behaviour(&mut h);
    r.routers(&mut h);
    r.coverage(&mut h);
    r.details(&mut h);
    r.dismissed(&mut h);
    r.method(&mut h);
    let _ = writeln!(
        h,
        "<footer>Generated by orbwatch {} on {} from {}. Findings are leads, not proof: see “Method”.</footer>",
        env!("CARGO_PKG_VERSION"),
        fmt_time(Some(input.generated)),
        esc(&input.source)
    );
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

struct Report<'a> {
    input: &'a ReportInput,
    /// Findings not dismissed by triage.
    active: Vec<&'a ReportFinding>,
    dismissed: Vec<&'a ReportFinding>,
}

impl<'a> Report<'a> {
    fn new(input: &'a ReportInput) -> Self {
        let (dismissed, active) = input.findings.iter().partition(|f| f.dismissed());
        Report {
            input,
            active,
            dismissed,
        }
    }

    fn cov(&self) -> Option<&Coverage> {
        self.input.coverage.as_ref()
    }

    fn iocs(&self) -> impl Iterator<Item = &'a ReportFinding> + '_ {
        self.active
            .iter()
            .copied()
            .filter(|f| f.finding.ioc.is_some())
    }

    fn behaviours(&self) -> impl Iterator<Item = &'a ReportFinding> + '_ {
        self.active
            .iter()
            .copied()
            .filter(|f| f.finding.ioc.is_none())
    }

    fn header(&self, h: &mut String) {
        let _ = write!(
            h,
            r#"<header class="top"><div class="kicker">Threat hunt report · ORB / relay networks</div>
<h1>Hunt for known relay infrastructure — {}</h1>
<div class="meta">Prepared {} · logs examined: {} · source: {}</div></header>
"#,
            esc(&self.input.org),
            fmt_time(Some(self.input.generated)),
            self.cov()
                .map(|c| c.time_range())
                .filter(|r| r.0.is_some())
                .map(|(a, b)| format!("{} to {}", fmt_day(a), fmt_day(b)))
                .unwrap_or_else(|| "unknown period".into()),
            esc(&self.input.source)
        );
    }

    /// A table of contents: a link to each section this report has.
    fn toc(&self, h: &mut String) {
        let mut items: Vec<(&str, &str)> = vec![("verdict", "Verdict"), ("summary", "Summary")];
        if !self.active.is_empty() {
            items.extend([
                ("timeline", "Timeline"),
                ("top", "Top indicators and sources"),
                ("hosts", "Internal hosts"),
            ]);
        }
        items.push(("behaviour", "Behaviour findings"));
        if !self.input.routers.is_empty() {
            items.push(("routers", "Your routers"));
        }
        items.extend([
            ("coverage", "Coverage"),
            ("findings", "Findings and evidence"),
        ]);
        if !self.dismissed.is_empty() {
            items.push(("dismissed", "Dismissed by triage"));
        }
        items.push(("method", "Method"));
        h.push_str("<nav id=\"toc\" aria-label=\"Contents\"><ol>");
        for (id, label) in items {
            let _ = write!(h, r##"<li><a href="#{id}">{label}</a></li>"##);
        }
        h.push_str("</ol></nav>\n");
    }

    fn verdict(&self, h: &mut String) {
        let in_window: Vec<_> = self
            .iocs()
            .filter(|f| f.finding.ioc.as_ref().is_some_and(|i| i.in_validity_window))
            .collect();
        let confirmed = self
            .active
            .iter()
            .filter(|f| f.status() == STATUS_CONFIRMED)
            .count() as u64;
        let serious_beh = self
            .behaviours()
            .filter(|f| {
                matches!(
                    f.finding.severity,
                    Some(Severity::High) | Some(Severity::Critical)
                )
            })
            .count() as u64;
        // IOC matches whose records show a login or data sent (severity
        // high or critical), not only a listing.
        let serious_ioc = self
            .iocs()
            .filter(|f| {
                matches!(
                    f.finding.severity,
                    Some(Severity::High) | Some(Severity::Critical)
                )
            })
            .count() as u64;
        let hosts = self.host_table().len() as u64;
        let (class, title, text) = if self.input.findings.is_empty() && self.cov().is_none() {
            (
                "none",
                "Nothing to report".to_string(),
                format!(
                    "There are no findings to report from {}. This says nothing about compromise: no hunt results were available.",
                    esc(&self.input.source)
                ),
            )
        } else if self.input.findings.is_empty() {
            (
                "ok",
                "No sighting of the hunted indicators".to_string(),
                "None of the indicators hunted for appear in the logs examined, and no suspicious behaviour was found. This holds only for the period and the log sources listed under “Coverage”.".to_string(),
            )
        } else if confirmed > 0 {
            (
                "bad",
                format!(
                    "Compromise activity confirmed: {}",
                    plural(confirmed, "finding", "findings")
                ),
                format!(
                    "Analysts confirmed {} as real. Incident response should treat the hosts involved as compromised or targeted, and report to the national CERT.{}",
                    plural(confirmed, "finding", "findings"),
                    match self.active.len() as u64 - confirmed {
                        0 => String::new(),
                        1 => " 1 more finding awaits triage.".to_string(),
                        n => format!(" {n} more findings await triage."),
                    }
                ),
            )
        } else if !in_window.is_empty() || serious_beh > 0 || serious_ioc > 0 {
            let mut parts = Vec::new();
            if serious_ioc > 0 {
                parts.push(plural(
                    serious_ioc,
                    "indicator match of high or critical severity (a login, or traffic an internal host sent)",
                    "indicator matches of high or critical severity (logins, or traffic internal hosts sent)",
                ));
            }
            if !in_window.is_empty() {
                let inds: BTreeSet<&str> = in_window
                    .iter()
                    .filter_map(|f| f.finding.ioc.as_ref().map(|i| i.indicator.as_str()))
                    .collect();
                let records: u64 = in_window.iter().map(|f| f.finding.count).sum();
                parts.push(format!(
                    "{} of known relay infrastructure seen while valid ({})",
                    plural(inds.len() as u64, "address", "addresses"),
                    plural(records, "record", "records")
                ));
            }
            if serious_beh > 0 {
                parts.push(plural(
                    serious_beh,
                    "high-severity behaviour",
                    "high-severity behaviours",
                ));
            }
            (
                "bad",
                format!("Leads to investigate: {}", parts.join(" and ")),
                format!(
                    "These are leads, not proof of compromise. {}. Each needs an analyst's review (triage) before conclusions are drawn.",
                    if hosts > 0 {
                        format!(
                            "{} {} involved",
                            plural(hosts, "internal host", "internal hosts"),
                            if hosts == 1 { "is" } else { "are" }
                        )
                    } else {
                        "The records do not name internal hosts; the systems that wrote the logs are the ones involved".to_string()
                    }
                ),
            )
        } else if !self.active.is_empty() {
            (
                "warn",
                format!(
                    "Weak leads: {}",
                    plural(self.active.len() as u64, "finding", "findings")
                ),
                "The matches fall outside the indicators' validity windows, or the behaviours found are of low severity. Review them, but they are unlikely to show current relay activity.".to_string(),
            )
        } else {
            (
                "ok",
                "All findings were reviewed and dismissed".to_string(),
                format!(
                    "Analysts marked all {} as false positives or benign.",
                    plural(self.dismissed.len() as u64, "finding", "findings")
                ),
            )
        };
        // The confirmed findings, named, with the analyst's note.
        let mut named = String::new();
        let confirmed_list: Vec<_> = self
            .active
            .iter()
            .filter(|f| f.status() == STATUS_CONFIRMED)
            .collect();
        if !confirmed_list.is_empty() {
            named.push_str("<ul class=\"confirmed\">");
            for rf in confirmed_list.iter().take(5) {
                let f = &rf.finding;
                let what = match &f.ioc {
                    Some(i) => format!("{} ({}, {})", i.indicator, i.feed, i.direction.as_str()),
                    None => format!(
                        "{} from {}",
                        kind_label(f.kind),
                        f.src_ip.map_or("several sources".into(), |i| i.to_string())
                    ),
                };
                let note = rf
                    .triage
                    .as_ref()
                    .and_then(|t| t.note.as_deref())
                    .map(|n| format!(" — “{}”", esc(n)))
                    .unwrap_or_default();
                let _ = write!(
                    named,
                    r##"<li><a href="#f-{}">{}</a>, last seen {}{note}</li>"##,
                    esc(&f.id),
                    esc(&what),
                    fmt_time(f.last_seen)
                );
            }
            if confirmed_list.len() > 5 {
                let _ = write!(named, "<li>… and {} more</li>", confirmed_list.len() - 5);
            }
            named.push_str("</ul>");
        }
        let _ = writeln!(
            h,
            r#"<section class="verdict {class}" id="verdict"><h2>{title}</h2><p>{text}</p>{named}</section>"#,
            title = esc(&title)
        );
        // Key figures.
        // Feed sightings and behaviour records are different things (a
        // listed address named in a log line, and the records behind a
        // scan or brute force): counted apart.
        let sightings: u64 = self.iocs().map(|f| f.finding.count).sum();
        let behaviour_records: u64 = self.behaviours().map(|f| f.finding.count).sum();
        let indicators: BTreeSet<&str> = self
            .iocs()
            .filter_map(|f| f.finding.ioc.as_ref().map(|i| i.indicator.as_str()))
            .collect();
        let cards = [
            (self.active.len().to_string(), "open findings"),
            (in_window.len().to_string(), "in validity window"),
            (indicators.len().to_string(), "indicators seen"),
            (sightings.to_string(), "feed sightings (records)"),
            (behaviour_records.to_string(), "behaviour records"),
            (hosts.to_string(), "internal hosts named"),
            (self.dismissed.len().to_string(), "dismissed by triage"),
        ];
        h.push_str(r#"<div class="cards" id="figures">"#);
        for (n, l) in cards {
            let _ = write!(
                h,
                r#"<div class="card"><div class="n">{n}</div><div class="l">{l}</div></div>"#
            );
        }
        h.push_str("</div>\n");
    }

    fn summary(&self, h: &mut String) {
        h.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
        let mut p: Vec<String> = Vec::new();
        if let Some(c) = self.cov() {
            let records: u64 = c.inputs.iter().map(|i| i.records).sum();
            let files = c.inputs.len() as u64;
            let feeds: Vec<String> = c
                .feeds
                .iter()
                .map(|f| format!("{} ({} indicators)", esc(&f.feed), f.indicators))
                .collect();
            let (a, b) = c.time_range();
            p.push(format!(
                "The hunt read {} ({} records) covering {} to {}, looking for the indicators of {}.",
                plural(files, "log file", "log files"),
                records,
                fmt_day(a),
                fmt_day(b),
                if feeds.is_empty() {
                    "the feeds loaded".to_string()
                } else {
                    feeds.join(", ")
                }
            ));
        }
        let iocs: Vec<_> = self.iocs().collect();
        if iocs.is_empty() {
            p.push(if self.dismissed.is_empty() {
                "No hunted indicator appears in the logs examined.".into()
            } else {
                "No hunted indicator was seen apart from the findings dismissed by triage.".into()
            });
        } else {
            let inw = iocs
                .iter()
                .filter(|f| f.finding.ioc.as_ref().is_some_and(|i| i.in_validity_window))
                .count() as u64;
            let ind: BTreeSet<&str> = iocs
                .iter()
                .filter_map(|f| f.finding.ioc.as_ref().map(|i| i.indicator.as_str()))
                .collect();
            let first = iocs.iter().filter_map(|f| f.finding.first_seen).min();
            let last = iocs.iter().filter_map(|f| f.finding.last_seen).max();
            let mut dirs: BTreeMap<&str, u64> = BTreeMap::new();
            for f in &iocs {
                if let Some(i) = &f.finding.ioc {
                    *dirs.entry(i.direction.as_str()).or_default() += f.finding.count;
                }
            }
            let dirs: Vec<String> = dirs.iter().map(|(d, n)| format!("{n} {d}")).collect();
            p.push(format!(
                "{} of the feeds {} in the logs between {} and {}, in {} ({} inside the indicators' validity window). By direction: {} records.",
                plural(ind.len() as u64, "indicator", "indicators"),
                if ind.len() == 1 { "appears" } else { "appear" },
                fmt_day(first),
                fmt_day(last),
                plural(iocs.len() as u64, "finding", "findings"),
                inw,
                dirs.join(", ")
            ));
        }
        let beh: Vec<_> = self.behaviours().collect();
        if !beh.is_empty() {
            let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
            for f in &beh {
                *kinds.entry(kind_label(f.finding.kind)).or_default() += 1;
            }
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            p.push(format!(
                "Behaviour detectors flagged {}: {}.",
                plural(beh.len() as u64, "activity", "activities"),
                kinds.join(", ")
            ));
        }
        let gaps = self.cov().map(gaps).unwrap_or_default();
        if !gaps.is_empty() {
            p.push(format!(
                "The logs have {}: see “Coverage”. Nothing can be said about those periods.",
                plural(gaps.len() as u64, "gap", "gaps")
            ));
        }
        if !self.dismissed.is_empty() {
            p.push(format!(
                "{} dismissed by analysts (false positive or benign) {} listed at the end and not counted above.",
                plural(self.dismissed.len() as u64, "finding", "findings"),
                if self.dismissed.len() == 1 { "is" } else { "are" }
            ));
        }
        let untriaged = self
            .active
            .iter()
            .filter(|f| f.triage.is_none() || f.status() == "new")
            .count() as u64;
        if untriaged > 0 {
            p.push(format!(
                "{} not been triaged yet.",
                plural(untriaged, "finding has", "findings have")
            ));
        }
        for s in p {
            let _ = writeln!(h, "<p>{s}</p>");
        }
        h.push_str("</section>\n");
    }

    fn timeline(&self, h: &mut String) {
        // series -> day -> sightings
        let mut per: BTreeMap<String, BTreeMap<Date, u64>> = BTreeMap::new();
        let mut approx = 0u64;
        for f in &self.active {
            let (days, a) = sightings_per_day(&f.finding);
            approx += a;
            let s = per.entry(series_of(&f.finding)).or_default();
            for (d, n) in days {
                *s.entry(d).or_default() += n;
            }
        }
        let all_days: BTreeSet<Date> = per.values().flat_map(|m| m.keys().copied()).collect();
        let (Some(&d0), Some(&d1)) = (all_days.first(), all_days.last()) else {
            h.push_str("<section id=\"timeline\"><h2>Timeline</h2><p>The findings carry no time.</p></section>\n");
            return;
        };
        // Pad one day on each side so single-day bars are not on the edge.
        let start = d0.yesterday().unwrap_or(d0);
        let end = d1.tomorrow().unwrap_or(d1);
        let ndays = (end - start).get_days().max(0) as f64 + 1.0;
        let series: Vec<&String> = per.keys().collect();
        // One lane per feed and per behaviour kind, each on its own scale
        // (its busiest day fills the lane): 9 feed sightings stay visible
        // next to a 2,000-record scan. The axis spans the active days only.
        let lane = 44.0;
        let (w, left, right, top, bottom) = (1000.0, 12.0, 12.0, 4.0, 36.0);
        let ht = top + lane * series.len() as f64 + bottom;
        let pw = w - left - right;
        let ph = lane * series.len() as f64;
        let bw = (pw / ndays).max(3.0);
        let x_of = |d: Date| left + (d - start).get_days() as f64 / ndays * pw;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg class="chart" id="timeline-chart" viewBox="0 0 {w} {ht}" role="img" aria-label="Records per day, one lane per feed and behaviour kind" xmlns="http://www.w3.org/2000/svg" font-family="system-ui,Arial,sans-serif" font-size="11">"#
        );
        for (k, s) in series.iter().enumerate() {
            let lane_top = top + lane * k as f64;
            let base = lane_top + lane - 4.0;
            let room = lane - 18.0;
            let lane_max = per[*s].values().copied().max().unwrap_or(1).max(1);
            let lane_total: u64 = per[*s].values().sum();
            let _ = write!(
                svg,
                r##"<line x1="{left}" x2="{}" y1="{base:.1}" y2="{base:.1}" stroke="#e3e6ea"/><text x="{left}" y="{:.1}" fill="#1f2933">{} <tspan fill="#5b6673">· {} records, busiest day {}</tspan></text>"##,
                w - right,
                lane_top + 11.0,
                esc(s),
                lane_total,
                lane_max
            );
            for (d, n) in &per[*s] {
                let hgt = (*n as f64 / lane_max as f64 * room).max(1.5);
                let _ = write!(
                    svg,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{hgt:.1}" fill="{}"><title>{} · {}: {n}</title></rect>"#,
                    x_of(*d),
                    base - hgt,
                    (bw - 0.5).max(1.0),
                    PALETTE[k % PALETTE.len()],
                    d,
                    esc(s)
                );
            }
        }
        // X axis and ticks.
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{}" y2="{}" stroke="#5b6673"/>"##,
            w - right,
            top + ph,
            top + ph
        );
        let ticks = 6.min(ndays as i64).max(1);
        for i in 0..=ticks {
            let offset = ((ndays - 1.0) * i as f64 / ticks as f64).round() as i64;
            let d = start
                .checked_add(jiff::Span::new().days(offset))
                .unwrap_or(start);
            let x = x_of(d) + bw / 2.0;
            let anchor = tick_anchor(i, ticks);
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#5b6673"/><text x="{x:.1}" y="{}" text-anchor="{anchor}" fill="#5b6673">{d}</text>"##,
                top + ph,
                top + ph + 4.0,
                top + ph + 18.0
            );
        }
        svg.push_str("</svg>");
        h.push_str("<section id=\"timeline\"><h2>Timeline of sightings</h2>\n");
        let _ = writeln!(
            h,
            "<p class=\"small\">Records per UTC day, {} to {} (the days with findings), one lane per feed and per kind of behaviour, each lane on its own scale: compare the shape within a lane, and read the counts in the lane's label (findings dismissed by triage excluded).</p>",
            d0, d1
        );
        h.push_str("<figure style=\"margin:0\">");
        h.push_str(&svg);
        h.push_str("<div class=\"legend\">");
        for (k, s) in series.iter().enumerate() {
            let total: u64 = per[*s].values().sum();
            let _ = write!(
                h,
                r#"<span><span class="sw" style="background:{}"></span>{} ({total})</span>"#,
                PALETTE[k % PALETTE.len()],
                esc(s)
            );
        }
        h.push_str("</div></figure>\n");
        if approx > 0 {
            let _ = writeln!(
                h,
                "<p class=\"small\">{} beyond the evidence kept with the findings are dated by the finding's last sighting.</p>",
                plural(approx, "sighting", "sightings")
            );
        }
        h.push_str("</section>\n");
    }

    fn top_tables(&self, h: &mut String) {
        struct Ind<'b> {
            feed: BTreeSet<&'b str>,
            sightings: u64,
            findings: u64,
            first: Option<Timestamp>,
            last: Option<Timestamp>,
            in_window: bool,
            actors: BTreeSet<&'b str>,
        }
        let mut inds: BTreeMap<&str, Ind> = BTreeMap::new();
        for rf in self.iocs() {
            let f = &rf.finding;
            let Some(i) = &f.ioc else { continue };
            let e = inds.entry(i.indicator.as_str()).or_insert(Ind {
                feed: BTreeSet::new(),
                sightings: 0,
                findings: 0,
                first: None,
                last: None,
                in_window: false,
                actors: BTreeSet::new(),
            });
            e.feed.insert(&i.feed);
            e.sightings += f.count;
            e.findings += 1;
            e.first = e.first.min(f.first_seen).or(f.first_seen.or(e.first));
            e.last = e.last.max(f.last_seen);
            e.in_window |= i.in_validity_window;
            e.actors.extend(i.tags.actors.iter().map(String::as_str));
        }
        let mut inds: Vec<_> = inds.into_iter().collect();
        inds.sort_by(|a, b| b.1.sightings.cmp(&a.1.sightings).then(a.0.cmp(b.0)));
        h.push_str("<section id=\"top\"><h2>Top indicators and sources</h2>\n");
        if !inds.is_empty() {
            let max = inds[0].1.sightings.max(1);
            h.push_str("<h3>Indicators seen</h3><table id=\"top-indicators\"><thead><tr><th>indicator</th><th>feed</th><th>actor</th><th class=\"num\">sightings</th><th style=\"width:12%\"></th><th>first seen</th><th>last seen</th><th>window</th></tr></thead><tbody>\n");
            for (ind, e) in inds.iter().take(TOP) {
                let _ = writeln!(
                    h,
                    r#"<tr><td class="mono">{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td><div class="bar" style="width:{:.0}%"></div></td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                    short(ind),
                    esc(&e.feed.iter().copied().collect::<Vec<_>>().join(", ")),
                    esc(&e.actors.iter().copied().collect::<Vec<_>>().join(", ")),
                    e.sightings,
                    e.sightings as f64 / max as f64 * 100.0,
                    fmt_time(e.first),
                    fmt_time(e.last),
                    if e.in_window {
                        r#"<span class="badge bad">inside</span>"#
                    } else {
                        r#"<span class="badge">outside</span>"#
                    }
                );
            }
            h.push_str("</tbody></table>\n");
            if inds.len() > TOP {
                let _ = writeln!(
                    h,
                    "<p class=\"small\">… and {} more indicators (see the findings below).</p>",
                    inds.len() - TOP
                );
            }
        }
        // Sources: the source address of every open finding.
        let mut srcs: BTreeMap<IpAddr, (u64, BTreeSet<&str>)> = BTreeMap::new();
        for rf in &self.active {
            let f = &rf.finding;
            let mut all: BTreeSet<IpAddr> = f.sources.iter().copied().collect();
            if let Some(s) = f.src_ip {
                all.insert(s);
            }
            for s in all {
                let e = srcs.entry(s).or_default();
                e.0 += f.count;
                e.1.insert(kind_label(f.kind));
            }
        }
        let mut srcs: Vec<_> = srcs.into_iter().collect();
        srcs.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
        if !srcs.is_empty() {
            let max = srcs[0].1.0.max(1);
            h.push_str("<h3>Sources</h3><table id=\"top-sources\"><thead><tr><th>source address</th><th>seen in</th><th class=\"num\">records</th><th style=\"width:30%\"></th></tr></thead><tbody>\n");
            for (ip, (n, kinds)) in srcs.iter().take(TOP) {
                let _ = writeln!(
                    h,
                    r#"<tr><td class="mono">{}</td><td>{}</td><td class="num">{n}</td><td><div class="bar" style="width:{:.0}%"></div></td></tr>"#,
                    esc(&ip.to_string()),
                    esc(&kinds.iter().copied().collect::<Vec<_>>().join(", ")),
                    *n as f64 / max as f64 * 100.0
                );
            }
            h.push_str("</tbody></table>\n");
        }
        h.push_str("</section>\n");
    }

    /// Internal host -> (inbound, outbound, internal records, indicators, first, last).
    #[allow(clippy::type_complexity)]
    fn host_table(
        &self,
    ) -> BTreeMap<
        IpAddr,
        (
            [u64; 3],
            BTreeSet<&'a str>,
            Option<Timestamp>,
            Option<Timestamp>,
        ),
    > {
        let mut hosts: BTreeMap<
            IpAddr,
            (
                [u64; 3],
                BTreeSet<&str>,
                Option<Timestamp>,
                Option<Timestamp>,
            ),
        > = BTreeMap::new();
        for rf in self.active.iter().copied() {
            let f = &rf.finding;
            for (host, dir) in internal_hosts(f) {
                let e = hosts.entry(host).or_default();
                let k = match dir {
                    Direction::Inbound => 0,
                    Direction::Outbound => 1,
                    _ => 2,
                };
                e.0[k] += f.count;
                if let Some(i) = &f.ioc {
                    e.1.insert(i.indicator.as_str());
                }
                e.2 = match (e.2, f.first_seen) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                e.3 = e.3.max(f.last_seen);
            }
        }
        hosts
    }

    fn hosts(&self, h: &mut String) {
        h.push_str("<section id=\"hosts\"><h2>Internal hosts involved</h2>\n");
        let hosts = self.host_table();
        if hosts.is_empty() {
            h.push_str(
                "<p>No record names an internal address at the other end of the traffic.</p>\n",
            );
        } else {
            h.push_str("<p class=\"small\">Internal end of the traffic with hunted indicators. <b>Inbound</b>: the indicator reached the host; <b>outbound</b>: the host reached the indicator — the more serious direction, as it may mean the host is controlled from outside.</p>\n");
            h.push_str("<table id=\"hosts-table\"><thead><tr><th>host</th><th class=\"num\">inbound</th><th class=\"num\">outbound</th><th class=\"num\">internal</th><th>indicators</th><th>first seen</th><th>last seen</th></tr></thead><tbody>\n");
            for (ip, (n, inds, a, b)) in hosts.iter().take(HOSTS_SHOWN) {
                let _ = writeln!(
                    h,
                    r#"<tr><td class="mono">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="mono">{}</td><td>{}</td><td>{}</td></tr>"#,
                    esc(&ip.to_string()),
                    n[0],
                    if n[1] > 0 {
                        format!(r#"<span class="badge bad">{}</span>"#, n[1])
                    } else {
                        "0".into()
                    },
                    n[2],
                    inds.iter().map(|i| short(i)).collect::<Vec<_>>().join(", "),
                    fmt_time(*a),
                    fmt_time(*b)
                );
            }
            h.push_str("</tbody></table>\n");
            if hosts.len() > HOSTS_SHOWN {
                let _ = writeln!(
                    h,
                    "<p class=\"small\">… and {} more hosts (the CSV export lists every finding).</p>",
                    hosts.len() - HOSTS_SHOWN
                );
            }
        }
        // Findings whose records name no internal end: say which logs they
        // come from (the host that wrote the log is then the one involved).
        let mut unnamed: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for rf in self.iocs() {
            if internal_hosts(&rf.finding).is_empty() {
                let dir = rf
                    .finding
                    .ioc
                    .as_ref()
                    .map_or("unknown", |i| i.direction.as_str());
                for e in rf.finding.evidence.iter().take(1) {
                    *unnamed.entry((e.file.as_str(), dir)).or_default() += rf.finding.count;
                }
            }
        }
        if !unnamed.is_empty() {
            h.push_str("<p>Some records name only the outside address (for example a gateway's own sshd log): the system that wrote the log is then the host involved.</p>\n<table id=\"hosts-by-log\"><thead><tr><th>log</th><th>direction</th><th class=\"num\">records</th></tr></thead><tbody>\n");
            for ((file, dir), n) in &unnamed {
                let _ = writeln!(
                    h,
                    r#"<tr><td class="mono">{}</td><td>{}</td><td class="num">{n}</td></tr>"#,
                    esc(file),
                    esc(dir)
                );
            }
            h.push_str("</tbody></table>\n");
        }
        h.push_str("</section>\n");
    }

    fn behaviour(&self, h: &mut String) {
        let mut beh: Vec<_> = self.behaviours().collect();
        h.push_str("<section id=\"behaviour\"><h2>Behaviour findings</h2>\n");
        if beh.is_empty() {
            h.push_str("<p>No behaviour finding (scan, brute force, password spraying…) in this hunt, or none left after triage. A hunt run with <code>--no-behaviour</code> does not look for them.</p></section>\n");
            return;
        }
        beh.sort_by(|a, b| most_serious_first(&a.finding, &b.finding));
        h.push_str("<table id=\"behaviour-table\"><thead><tr><th>kind</th><th>source</th><th>severity</th><th class=\"num\">score</th><th>why</th><th>when</th><th>status</th></tr></thead><tbody>\n");
        for rf in beh {
            let f = &rf.finding;
            let src = match (f.src_ip, f.sources.len()) {
                (Some(s), n) if n > 1 => format!("{s} + {} more", n - 1),
                (Some(s), _) => s.to_string(),
                (None, n) if n > 0 => plural(n as u64, "source", "sources"),
                _ => "—".into(),
            };
            let mut why = String::new();
            if !f.reasons.is_empty() {
                why.push_str("<ul class=\"reasons\">");
                for r in &f.reasons {
                    let _ = write!(why, "<li>{}</li>", esc(r));
                }
                why.push_str("</ul>");
            }
            if !f.targets.is_empty() {
                let _ = write!(
                    why,
                    "<div class=\"small\">targets: {}</div>",
                    esc(&list_cut(&f.targets, 8))
                );
            }
            if !f.accounts.is_empty() {
                let _ = write!(
                    why,
                    "<div class=\"small\">accounts: {}</div>",
                    esc(&list_cut(&f.accounts, 8))
                );
            }
            if let Some(d) = &f.details {
                let _ = write!(why, "<div class=\"small\">{}</div>", esc(&details_text(d)));
            }
            let _ = writeln!(
                h,
                r#"<tr><td>{}</td><td class="mono">{}</td><td><span class="badge {}">{}</span></td><td class="num">{}</td><td>{why}</td><td>{}<br><span class="small">to {}</span></td><td>{}</td></tr>"#,
                kind_label(f.kind),
                esc(&src),
                sev_class(f.severity),
                f.severity.map_or("—", |s| s.as_str()),
                f.score.map(|s| s.to_string()).unwrap_or_else(|| "—".into()),
                fmt_time(f.first_seen),
                fmt_time(f.last_seen),
                status_badge(rf)
            );
        }
        h.push_str("</tbody></table></section>\n");
    }

    /// The organisation's own routers (`orbwatch routers`): where each
    /// stands, then its latest steps, so that a reader sees which reboot
    /// cleared an implant and which finding survived it.
    fn routers(&self, h: &mut String) {
        let routers = &self.input.routers;
        if routers.is_empty() {
            return;
        }
        h.push_str("<section id=\"routers\"><h2>Your routers</h2>\n<p>Audits and reboots of the organisation's own routers (<code>orbwatch routers</code>). A reboot clears an implant that lives only in memory; a finding still there after the reboot is <b>persistent</b>: re-flash or replace the device. Their audit findings are listed with the others below.</p>\n");
        h.push_str("<table id=\"routers-table\"><thead><tr><th>router</th><th>last audit</th><th>last reboot</th><th class=\"num\">steps</th><th class=\"num\">failed</th><th>latest step</th></tr></thead><tbody>\n");
        for r in routers {
            let s = &r.standing;
            let _ = writeln!(
                h,
                r#"<tr><td class="mono">{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{} {} {}</td></tr>"#,
                esc(&s.router),
                fmt_time(s.last_audit),
                fmt_time(s.last_reboot),
                s.steps,
                s.failed_steps,
                esc(&s.last.action),
                esc(&s.last.step),
                step_badge(s.last.ok),
            );
        }
        h.push_str("</tbody></table>\n");
        for r in routers {
            let _ = writeln!(
                h,
                r#"<details class="router" id="router-{}"><summary>{}: latest {}</summary><table><thead><tr><th>when</th><th>action</th><th>step</th><th>result</th><th>detail</th></tr></thead><tbody>"#,
                esc(&r.standing.router),
                esc(&r.standing.router),
                plural(r.recent.len() as u64, "step", "steps"),
            );
            for st in &r.recent {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"small\">{}</td></tr>",
                    fmt_time(Some(st.at)),
                    esc(&st.action),
                    esc(&st.step),
                    step_badge(st.ok),
                    esc(&router_step_text(&st.detail)),
                );
            }
            h.push_str("</tbody></table></details>\n");
        }
        h.push_str("</section>\n");
    }

    fn coverage(&self, h: &mut String) {
        h.push_str("<section id=\"coverage\"><h2>Coverage</h2>\n");
        let Some(c) = self.cov() else {
            h.push_str("<p class=\"note\">The coverage of this hunt is not known (the findings were read from a file without <code>--coverage</code>). Without it, this report cannot say which periods and log sources were examined: absence of findings proves nothing.</p></section>\n");
            return;
        };
        let gaps = gaps(c);
        self.coverage_chart(h, c, &gaps);
        if gaps.is_empty() {
            h.push_str("<p>No gap between log files of the same format was found (gaps inside one file cannot be seen from per-file time ranges).</p>\n");
        } else {
            // One line per log type, then every period in a table.
            let mut per: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
            for g in &gaps {
                let e = per.entry(g.format.as_str()).or_default();
                e.0 += 1;
                e.1 += g.until.duration_since(g.from).as_hours() / 24;
            }
            h.push_str("<h3>Gaps</h3><ul id=\"gaps\">\n");
            for (fmt, (n, days)) in &per {
                let _ = writeln!(
                    h,
                    r#"<li class="gap">{}: {}, {} uncovered</li>"#,
                    esc(fmt),
                    plural(*n, "period", "periods"),
                    plural(u64::try_from(*days).unwrap_or(0), "day", "days")
                );
            }
            h.push_str("</ul>\n<details><summary>Every period without logs</summary><table id=\"gaps-table\"><thead><tr><th>log type</th><th>from</th><th>until</th><th class=\"num\">days</th></tr></thead><tbody>\n");
            for g in &gaps {
                let _ = writeln!(
                    h,
                    r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td></tr>"#,
                    esc(&g.format),
                    fmt_day(Some(g.from)),
                    fmt_day(Some(g.until)),
                    g.until.duration_since(g.from).as_hours() / 24
                );
            }
            h.push_str("</tbody></table></details>\n");
        }
        if !c.feeds.is_empty() {
            h.push_str("<h3>Feeds and their validity windows</h3><table id=\"feeds-table\"><thead><tr><th>feed</th><th class=\"num\">indicators</th><th>search from</th><th>search until</th><th>compared with the logs</th></tr></thead><tbody>\n");
            for f in &c.feeds {
                let _ = writeln!(
                    h,
                    r#"<tr><td>{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                    esc(&f.feed),
                    f.indicators,
                    f.search_from
                        .map_or("open (some indicators have no start)".into(), |t| fmt_day(
                            Some(t)
                        )),
                    f.search_until
                        .map_or("open (still valid)".into(), |t| fmt_day(Some(t))),
                    esc(&f.note)
                );
            }
            h.push_str("</tbody></table>\n");
        }
        h.push_str("<h3>Inputs</h3><table id=\"inputs-table\"><thead><tr><th>file</th><th>format</th><th class=\"num\">records</th><th class=\"num\">parsed</th><th class=\"num\">rejected</th><th class=\"num\">matched</th><th>first record</th><th>last record</th></tr></thead><tbody>\n");
        for i in &c.inputs {
            let mut notes = Vec::new();
            if let Some(e) = &i.error {
                notes.push(format!(r#"<div class="gap">{}</div>"#, esc(e)));
            }
            if let Some(y) = &i.year_note {
                notes.push(format!(r#"<div class="small">{}</div>"#, esc(y)));
            }
            if i.undecoded > 0 {
                notes.push(format!(
                    r#"<div class="small">{} records named no indicator and were not decoded</div>"#,
                    i.undecoded
                ));
            }
            for (reason, s) in i.reasons.iter().take(3) {
                notes.push(format!(
                    r#"<div class="small">rejected {}×: {}</div>"#,
                    s.count,
                    esc(reason)
                ));
            }
            let _ = writeln!(
                h,
                r#"<tr><td class="mono">{}{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(&i.file),
                notes.join(""),
                esc(if i.format.is_empty() { "?" } else { &i.format }),
                i.records,
                i.parsed,
                i.rejected,
                i.matched_records,
                fmt_time(i.first_time),
                fmt_time(i.last_time)
            );
        }
        h.push_str("</tbody></table></section>\n");
    }

    /// A Gantt-like chart: each feed's validity window, the time ranges of
    /// each log format with gaps shaded, and the sightings as ticks.
    fn coverage_chart(&self, h: &mut String, c: &Coverage, gaps: &[Gap]) {
        let by_format = ranges_by_format(c);
        let (lf, ll) = c.time_range();
        let mut lo: Vec<Timestamp> = Vec::new();
        lo.extend(lf);
        lo.extend(ll);
        for f in &c.feeds {
            lo.extend(f.search_from);
            lo.extend(f.search_until);
        }
        for rf in &self.active {
            lo.extend(rf.finding.first_seen);
            lo.extend(rf.finding.last_seen);
        }
        let (Some(&t0), Some(&t1)) = (lo.iter().min(), lo.iter().max()) else {
            h.push_str("<p>No time range is known for the logs.</p>\n");
            return;
        };
        let span = t1.duration_since(t0).as_secs_f64().max(86_400.0);
        let t0f = t0.as_second() as f64 - span * 0.02;
        let span = span * 1.04;
        let (w, left, right, row) = (1000.0, 210.0, 16.0, 26.0);
        let pw = w - left - right;
        let x = |t: Timestamp| left + (t.as_second() as f64 - t0f) / span * pw;
        let rows = c.feeds.len() + by_format.len() + 1;
        let ht = 20.0 + rows as f64 * row + 30.0;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg class="chart" id="coverage-chart" viewBox="0 0 {w} {ht}" role="img" aria-label="Coverage of the logs against the feeds' validity windows" xmlns="http://www.w3.org/2000/svg" font-family="system-ui,Arial,sans-serif" font-size="11">"#
        );
        s.push_str(r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fbe9e7"/><line x1="0" y1="0" x2="0" y2="6" stroke="#b3261e" stroke-width="2"/></pattern></defs>"##);
        let mut y = 14.0;
        let label = |s: &mut String, y: f64, text: &str| {
            let _ = write!(
                s,
                r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#1b2430">{}</text>"##,
                left - 8.0,
                y + 13.0,
                esc(&cut(text, 32))
            );
        };
        for f in &c.feeds {
            label(&mut s, y, &format!("feed {}", f.feed));
            let a = f.search_from.map_or(left, x);
            let b = f.search_until.map_or(w - right, x);
            let _ = write!(
                s,
                r##"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="14" fill="#d9822b" opacity="0.35" stroke="#d9822b"><title>validity: {} to {}</title></rect>"##,
                y + 3.0,
                (b - a).max(2.0),
                f.search_from.map_or("open".into(), |t| fmt_day(Some(t))),
                f.search_until.map_or("open".into(), |t| fmt_day(Some(t)))
            );
            if f.search_from.is_none() {
                let _ = write!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" fill="#9a5b00">◀ open</text>"##,
                    left + 4.0,
                    y + 14.0
                );
            }
            if f.search_until.is_none() {
                let _ = write!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#9a5b00">open ▶</text>"##,
                    w - right - 4.0,
                    y + 14.0
                );
            }
            y += row;
        }
        for (k, (format, ranges)) in by_format.iter().enumerate() {
            label(&mut s, y, &format!("{format} logs"));
            for g in gaps.iter().filter(|g| &g.format == format) {
                let _ = write!(
                    s,
                    r##"<rect class="gap" x="{:.1}" y="{:.1}" width="{:.1}" height="14" fill="url(#hatch)"><title>no {} logs {} to {}</title></rect>"##,
                    x(g.from),
                    y + 3.0,
                    (x(g.until) - x(g.from)).max(1.0),
                    esc(format),
                    fmt_day(Some(g.from)),
                    fmt_day(Some(g.until))
                );
            }
            for (a, b) in ranges {
                let _ = write!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="14" fill="{}"><title>{} logs {} to {}</title></rect>"#,
                    x(*a),
                    y + 3.0,
                    (x(*b) - x(*a)).max(2.0),
                    PALETTE[k % PALETTE.len()],
                    esc(format),
                    fmt_day(Some(*a)),
                    fmt_day(Some(*b))
                );
            }
            y += row;
        }
        label(&mut s, y, "sightings");
        // One tick per pixel column at most, however many findings.
        let mut ticks: BTreeSet<i64> = BTreeSet::new();
        for rf in &self.active {
            for t in [rf.finding.first_seen, rf.finding.last_seen]
                .into_iter()
                .flatten()
            {
                ticks.insert(x(t).round() as i64);
            }
        }
        {
            for xt in ticks {
                let xt = xt as f64;
                let _ = write!(
                    s,
                    r##"<line x1="{xt:.1}" x2="{xt:.1}" y1="{:.1}" y2="{:.1}" stroke="#b3261e" stroke-width="2"/>"##,
                    y + 3.0,
                    y + 17.0
                );
            }
        }
        y += row;
        // Axis with about six date labels.
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#5b6673"/>"##,
            w - right
        );
        for i in 0..=5 {
            let secs = t0f + span * i as f64 / 5.0;
            if let Ok(t) = Timestamp::from_second(secs as i64) {
                let xx = x(t);
                let anchor = tick_anchor(i, 5);
                let _ = write!(
                    s,
                    r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{y:.1}" y2="{:.1}" stroke="#5b6673"/><text x="{xx:.1}" y="{:.1}" text-anchor="{anchor}" fill="#5b6673">{}</text>"##,
                    y + 4.0,
                    y + 17.0,
                    fmt_day(Some(t))
                );
            }
        }
        s.push_str("</svg>");
        h.push_str("<p class=\"small\">Orange: the period each feed asks to search (its indicators' validity windows). Coloured bars: the period covered by the logs of each format. Hatched red: no logs of that format. Red ticks: first and last sighting of each open finding.</p>\n<figure style=\"margin:0\">");
        h.push_str(&s);
        h.push_str("</figure>\n");
    }

    fn details(&self, h: &mut String) {
        h.push_str("<section id=\"findings\"><h2>Findings and evidence</h2>\n");
        if self.active.is_empty() {
            h.push_str("<p>No open finding.</p></section>\n");
            return;
        }
        let mut list = self.active.clone();
        // Confirmed first, then the most serious (severity, score), as
        // every list of findings is ordered.
        list.sort_by(|a, b| {
            (b.status() == STATUS_CONFIRMED)
                .cmp(&(a.status() == STATUS_CONFIRMED))
                .then_with(|| most_serious_first(&a.finding, &b.finding))
        });
        // Each finding folds (<details>); the first, the most serious,
        // is open.
        for (n, rf) in list.iter().take(DETAIL_LIMIT).enumerate() {
            finding_card(h, rf, n == 0);
        }
        if list.len() > DETAIL_LIMIT {
            let _ = writeln!(
                h,
                "<p class=\"note\">{} more findings are not shown in full here; the CSV and STIX exports hold all of them.</p>",
                list.len() - DETAIL_LIMIT
            );
        }
        h.push_str("</section>\n");
    }

    fn dismissed(&self, h: &mut String) {
        if self.dismissed.is_empty() {
            return;
        }
        h.push_str("<section id=\"dismissed\"><h2>Dismissed by triage</h2>\n<p class=\"small\">Marked false positive or benign by an analyst. The same indicator and peer (or behaviour and source) is dismissed in later hunts too.</p>\n<table id=\"dismissed-table\"><thead><tr><th>finding</th><th>what</th><th class=\"num\">records</th><th>status</th><th>by</th><th>note</th></tr></thead><tbody>\n");
        for rf in self.dismissed.iter().take(DETAIL_LIMIT) {
            let f = &rf.finding;
            let what = match &f.ioc {
                Some(i) => format!("{} ({})", i.indicator, i.feed),
                None => format!(
                    "{} from {}",
                    kind_label(f.kind),
                    f.src_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "?".into())
                ),
            };
            let t = rf.triage.as_ref();
            let _ = writeln!(
                h,
                r#"<tr><td class="mono">{}</td><td>{}</td><td class="num">{}</td><td>{}</td><td>{}<br><span class="small">{}</span></td><td>{}</td></tr>"#,
                esc(&f.id),
                esc(&what),
                f.count,
                status_badge(rf),
                esc(t.and_then(|t| t.author.as_deref()).unwrap_or("—")),
                fmt_time(t.and_then(|t| t.at)),
                esc(t.and_then(|t| t.note.as_deref()).unwrap_or(""))
            );
        }
        h.push_str("</tbody></table>\n");
        if self.dismissed.len() > DETAIL_LIMIT {
            let _ = writeln!(
                h,
                "<p class=\"small\">… and {} more dismissed findings (`orbwatch findings --show-suppressed` lists them).</p>",
                self.dismissed.len() - DETAIL_LIMIT
            );
        }
        h.push_str("</section>\n");
    }

    fn method(&self, h: &mut String) {
        let feeds = self
            .cov()
            .map(|c| {
                c.feeds
                    .iter()
                    .map(|f| esc(&f.feed))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "the feeds loaded for the hunt".into());
        let _ = write!(
            h,
            r#"<section id="method"><h2>Method</h2>
<p><b>What was searched.</b> orbwatch read the log files listed under “Coverage”, decoded each record (the format is detected from the content), and looked for the indicators of {feeds}: IP addresses and networks of relay routers (ORB networks), and where the feeds list them, domains, URLs and file hashes. Behaviour detectors, when enabled, look for scans, brute force and password spraying from the same records.</p>
<p><b>How matching works.</b> An address matches when it appears as the source or destination of a record (or anywhere in a record that could not be decoded). Each match is checked against the indicator's validity window: relay routers are compromised devices of ordinary subscribers, and an address that was malicious in March may belong to an innocent user in July. Matches outside the window are reported apart and weigh less. Sightings of the same indicator with the same peer are grouped into one finding; the evidence shown is an excerpt of the records, with file and line, so every claim can be checked in the original logs.</p>
<p><b>A match is a lead, not a proof.</b> As ANSSI stresses in its advisories on these campaigns, the presence of an indicator in logs does not prove compromise: shared addresses, scanners and reassigned IP addresses give false positives. Each finding must be triaged by an analyst — confirmed, or marked false positive or benign, with a note — and confirmed compromises should be reported to the national CERT (in France, CERT-FR).</p>
<p><b>Limits.</b> Only the periods and log sources shown under “Coverage” were examined; periods without logs (“gaps”) say nothing either way. Gaps are computed from the first and last record of each file, so holes inside one file are not shown. Times are in UTC; syslog lines without a year were dated as noted for each input.</p>
</section>
"#
        );
    }
}

fn finding_card(h: &mut String, rf: &ReportFinding, open: bool) {
    let f = &rf.finding;
    let title = match &f.ioc {
        Some(i) => format!(
            "{} — {} indicator from {}",
            i.indicator, i.indicator_type, i.feed
        ),
        None => format!(
            "{} from {}",
            kind_label(f.kind),
            f.src_ip
                .map(|i| i.to_string())
                .unwrap_or_else(|| "several sources".into())
        ),
    };
    let _ = write!(
        h,
        r#"<details class="finding" id="f-{}"{}><summary class="head"><span class="title">{} <span class="badge {}">{}</span></span><span>{}</span></summary><dl>"#,
        esc(&f.id),
        if open { " open" } else { "" },
        esc(&title),
        sev_class(f.severity),
        f.severity.map_or("-", |s| s.as_str()),
        status_badge(rf)
    );
    let mut row = |k: &str, v: String| {
        let _ = write!(h, "<dt>{k}</dt><dd>{v}</dd>");
    };
    row(
        "finding",
        format!(r#"<span class="mono">{}</span>"#, esc(&f.id)),
    );
    row(
        "seen",
        format!(
            "{} → {} · {}",
            fmt_time(f.first_seen),
            fmt_time(f.last_seen),
            plural(f.count, "record", "records")
        ),
    );
    let ends = match (f.src_ip, f.dst_ip) {
        (Some(a), Some(b)) => format!("{a} → {b}"),
        (Some(a), None) => format!("{a} → (not in the record)"),
        (None, Some(b)) => format!("? → {b}"),
        (None, None) => "—".into(),
    };
    row(
        "traffic",
        format!(r#"<span class="mono">{}</span>"#, esc(&ends)),
    );
    if let Some(i) = &f.ioc {
        row(
            "match",
            format!(
                "{} <span class=\"small\">in {}</span> · direction {} · {}{}",
                esc(&i.matched_value),
                esc(&i.matched_field),
                esc(i.direction.as_str()),
                if i.in_validity_window {
                    r#"<span class="badge bad">inside validity window</span>"#
                } else {
                    r#"<span class="badge">outside validity window</span>"#
                },
                i.confidence
                    .map(|c| format!(" · confidence {c}"))
                    .unwrap_or_default()
            ),
        );
        if let Some(o) = &i.outcomes {
            let mut what: Vec<String> = o
                .present()
                .map(|(k, n)| format!("{} {n}", k.as_str().replace('_', " ")))
                .collect();
            if let Some(b) = i.bytes_to_indicator {
                what.push(format!("{b} bytes sent to it by internal hosts"));
            }
            if !what.is_empty() {
                row("what happened", esc(&what.join(" · ")));
            }
        }
        let mut ctx = Vec::new();
        if !i.tags.actors.is_empty() {
            ctx.push(format!("actor {}", i.tags.actors.join(", ")));
        }
        if !i.tags.campaigns.is_empty() {
            ctx.push(format!("campaign {}", i.tags.campaigns.join(", ")));
        }
        if let Some(t) = &i.tags.tlp {
            ctx.push(format!("TLP:{}", t.to_uppercase()));
        }
        if let Some(r) = &i.indicator_ref {
            ctx.push(format!("feed id {r}"));
        }
        if !ctx.is_empty() {
            row("intel", esc(&ctx.join(" · ")));
        }
    }
    if f.severity.is_some() || f.score.is_some() {
        row(
            "severity",
            format!(
                r#"<span class="badge {}">{}</span>{}"#,
                sev_class(f.severity),
                f.severity.map_or("—", |s| s.as_str()),
                f.score
                    .map(|s| format!(" · score {s}/100"))
                    .unwrap_or_default()
            ),
        );
    }
    if !f.reasons.is_empty() {
        row(
            "why",
            f.reasons
                .iter()
                .map(|r| esc(r))
                .collect::<Vec<_>>()
                .join("<br>"),
        );
    }
    if let Some(t) = &rf.triage {
        let mut v = format!(
            "{} by {} on {}",
            esc(&t.status),
            esc(t.author.as_deref().unwrap_or("?")),
            fmt_time(t.at)
        );
        if let Some(n) = &t.note {
            let _ = write!(v, ": “{}”", esc(n));
        }
        row("triage", v);
    }
    h.push_str("</dl>");
    let shown = f.evidence.len().min(EVIDENCE_SHOWN);
    if shown > 0 {
        let _ = write!(
            h,
            r#"<div class="small">Evidence ({shown} of {} records):</div>"#,
            f.evidence_total.max(f.evidence.len() as u64)
        );
        for e in f.evidence.iter().take(EVIDENCE_SHOWN) {
            let pos = match (e.line, e.offset) {
                (Some(l), _) => format!("{}:{l}", e.file),
                (None, Some(o)) => format!("{} @{o}", e.file),
                _ => e.file.clone(),
            };
            // A structured record is shown by its fields, with the raw
            // record folded under them; a text line as it is.
            let fields = record_fields(&e.raw);
            let label = format!(
                "{}{} · {}",
                esc(&pos),
                if e.context { " (context)" } else { "" },
                esc(&e.format)
            );
            if fields.is_empty() {
                let _ = write!(
                    h,
                    r#"<pre class="ev"><span class="small">{label}</span>
{}</pre>"#,
                    esc(&cut(&e.raw, EVIDENCE_CHARS))
                );
            } else {
                let _ = write!(h, r#"<div class="small">{label}</div><dl class="fields">"#);
                for (k, v) in &fields {
                    let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
                }
                let _ = write!(
                    h,
                    r#"</dl><details class="raw"><summary class="small">raw record</summary><pre class="ev">{}</pre></details>"#,
                    esc(&cut(&e.raw, EVIDENCE_CHARS))
                );
            }
        }
    }
    h.push_str("</details>\n");
}

/// The fields of a structured record worth reading, in order: for a
/// Windows event (XML), the event, its outcome and the `<Data>` that say
/// who logged on from where and how; for a JSON record (Suricata EVE, Zeek
/// JSON), its scalar top-level fields. Empty for text lines, which are
/// read as they are.
fn record_fields(raw: &str) -> Vec<(String, String)> {
    let t = raw.trim_start();
    if t.starts_with("<Event") || t.contains("<EventID") {
        return windows_fields(t);
    }
    if t.starts_with('{')
        && let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(t)
    {
        return m
            .iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                serde_json::Value::Bool(b) => Some((k.clone(), b.to_string())),
                _ => None,
            })
            .take(14)
            .collect();
    }
    Vec::new()
}

/// The text between `<tag ...>` and `</tag>` (first one), if any.
fn xml_element<'s>(x: &'s str, tag: &str) -> Option<&'s str> {
    let open = x.find(&format!("<{tag}"))?;
    let rest = &x[open + tag.len() + 1..];
    if rest.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return None;
    }
    let gt = rest.find('>')?;
    if rest[..gt].ends_with('/') {
        return Some("");
    }
    let body = &rest[gt + 1..];
    let end = body.find(&format!("</{tag}>"))?;
    Some(&body[..end])
}

/// `<Data Name="name">value</Data>` of a Windows event.
fn xml_data<'s>(x: &'s str, name: &str) -> Option<&'s str> {
    for q in ['"', '\''] {
        let key = format!("<Data Name={q}{name}{q}");
        if let Some(at) = x.find(&key) {
            let rest = &x[at + key.len()..];
            let gt = rest.find('>')?;
            if rest[..gt].ends_with('/') {
                return Some("");
            }
            let body = &rest[gt + 1..];
            return body.find("</Data>").map(|e| &body[..e]);
        }
    }
    None
}

/// Undo the five XML entities (the values are escaped again for HTML).
fn xml_text(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn windows_fields(x: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let id = xml_element(x, "EventID").map(|v| xml_text(v).trim().to_string());
    if let Some(id) = &id {
        let what = match id.as_str() {
            "4624" => " (logon succeeded)",
            "4625" => " (logon failed)",
            "4648" => " (logon with explicit credentials)",
            "4634" | "4647" => " (logoff)",
            "4740" => " (account locked out)",
            "4771" => " (Kerberos pre-authentication failed)",
            "4776" => " (NTLM credential validation)",
            "1149" => " (RDP authentication succeeded)",
            _ => "",
        };
        out.push(("event".into(), format!("{id}{what}")));
    }
    if let Some(c) = xml_element(x, "Computer") {
        out.push(("computer".into(), xml_text(c)));
    }
    for (name, label) in [
        ("TargetUserName", "account"),
        ("TargetDomainName", "domain"),
        ("IpAddress", "source address"),
        ("IpPort", "source port"),
        ("WorkstationName", "workstation"),
        ("LogonType", "logon type"),
        ("AuthenticationPackageName", "authentication"),
        ("Status", "status"),
        ("SubStatus", "sub-status"),
        ("FailureReason", "failure reason"),
        ("ProcessName", "process"),
    ] {
        if let Some(v) = xml_data(x, name) {
            let v = xml_text(v).trim().to_string();
            if !v.is_empty() && v != "-" {
                out.push((label.into(), v));
            }
        }
    }
    out
}

/// A long value (a hash, a URL) shortened for a table cell, in HTML: its
/// start and end, the full value as a tooltip. Short values are only
/// escaped.
fn short(s: &str) -> String {
    let n = s.chars().count();
    if n <= 28 {
        return esc(s);
    }
    let head: String = s.chars().take(14).collect();
    let tail: String = s.chars().skip(n - 10).collect();
    format!(
        r#"<span title="{}">{}…{}</span>"#,
        esc(s),
        esc(&head),
        esc(&tail)
    )
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

fn step_badge(ok: bool) -> &'static str {
    if ok {
        r#"<span class="badge ok">ok</span>"#
    } else {
        r#"<span class="badge bad">FAILED</span>"#
    }
}

/// A router step's detail in words: the re-audit's cleared and persistent
/// checks, each health check, the proof's uptimes, a refusal's reason;
/// a detail this build does not know (an older or newer writer's) as its
/// JSON, so that it still shows.
fn router_step_text(d: &RouterStepDetail) -> String {
    let names = |v: &[String]| -> String {
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    };
    let health = |checks: &[HealthCheck]| -> String {
        checks
            .iter()
            .map(|c| {
                format!(
                    "{} {} ({})",
                    c.check,
                    if c.ok { "ok" } else { "FAILED" },
                    c.detail
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    // Seconds as the JSON has them (`86400.0`, not `86400`).
    let secs = |s: f64| format!("{s:?}");
    match d {
        RouterStepDetail::Reaudit(r) => format!(
            "cleared by the reboot: {}; persistent: {}; new: {}",
            names(&r.cleared),
            names(&r.persistent),
            names(&r.new)
        ),
        RouterStepDetail::Health(checks) => health(checks),
        RouterStepDetail::Proof(p) => {
            let mut t = format!(
                "uptime {} s before, {} s after",
                secs(p.uptime_before),
                secs(p.uptime_after)
            );
            match p.boot_id_changed {
                Some(true) => t.push_str("; boot id changed"),
                Some(false) => t.push_str("; boot id UNCHANGED"),
                None => {}
            }
            t
        }
        RouterStepDetail::Audit(a) => {
            let mut t = match &a.error {
                Some(e) => format!("not audited: {e}"),
                None => plural(a.findings as u64, "finding", "findings"),
            };
            if let Some(up) = a.uptime_secs {
                let _ = write!(t, "; up {} s", secs(up));
            }
            if a.host_key_changed {
                t.push_str("; SSH HOST KEY CHANGED");
            }
            t
        }
        RouterStepDetail::PrecheckPassed(p) => {
            let mut t = format!(
                "up {} s, {}",
                secs(p.uptime_secs),
                plural(p.findings as u64, "finding", "findings")
            );
            if !p.health.is_empty() {
                let _ = write!(t, "; {}", health(&p.health));
            }
            t
        }
        RouterStepDetail::PrecheckUnhealthy(p) => {
            format!("up {} s; {}", secs(p.uptime_secs), health(&p.health))
        }
        RouterStepDetail::Sent(s) => format!("ran `{}`", s.command),
        RouterStepDetail::DryRun(s) => format!("would run `{}`", s.would_run),
        RouterStepDetail::Returned(r) => match r.after_secs {
            Some(s) => format!("answered again after {s:.0} s"),
            None => "answered again".into(),
        },
        RouterStepDetail::Reason(r) => r.reason.clone(),
        RouterStepDetail::Failed(f) => f.error.clone(),
        RouterStepDetail::Other(v) if v.as_object().is_some_and(|o| o.is_empty()) => String::new(),
        RouterStepDetail::Other(v) => v.to_string(),
    }
}

fn list_cut(v: &[String], n: usize) -> String {
    let mut s = v.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if v.len() > n {
        let _ = write!(s, " … (+{})", v.len() - n);
    }
    s
}

/// Detector details as `key: value` pairs on one line.
fn details_text(d: &serde_json::Value) -> String {
    match d {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let v = plain_value(v);
                format!("{}: {}", k.replace('_', " "), cut(&v, 120))
            })
            .collect::<Vec<_>>()
            .join(" · "),
        other => cut(&other.to_string(), 300),
    }
}

/// A detail value as a reader would write it: lists with ", " between
/// items (so long lists wrap instead of widening the table), nested
/// objects as `key value` pairs, text without quotes.
fn plain_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            items.iter().map(plain_value).collect::<Vec<_>>().join(", ")
        }
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), plain_value(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Axis labels at the ends are anchored inwards so they are not clipped.
fn tick_anchor(i: i64, last: i64) -> &'static str {
    if i == 0 {
        "start"
    } else if i == last {
        "end"
    } else {
        "middle"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("a\u{1b}[31mb\u{202e}c"), "a\u{fffd}[31mb\u{fffd}c");
    }

    proptest::proptest! {
        /// Whatever the text, its escaped form holds no markup character
        /// and decodes back to the text (control characters aside).
        #[test]
        fn escaped_text_is_inert(s in "\\PC*|[<>&\"'\u{0}-\u{1f}\u{202e}a-z]{0,40}") {
            let e = esc(&s);
            proptest::prop_assert!(!e.contains(['<', '>', '"', '\'']));
            let back = e
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            let expected: String = s
                .chars()
                .map(|c| match c {
                    '\t' | '\n' => c,
                    c if c.is_control()
                        || ('\u{202a}'..='\u{202e}').contains(&c)
                        || ('\u{2066}'..='\u{2069}').contains(&c) => '\u{fffd}',
                    c => c,
                })
                .collect();
            proptest::prop_assert_eq!(back, expected);
        }
    }

    #[test]
    fn windows_events_show_their_fields() {
        let x = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><EventID>4625</EventID><Computer>DC01.corp.local</Computer></System><EventData><Data Name="TargetUserName">admin&amp;co</Data><Data Name="IpAddress">203.0.113.9</Data><Data Name="LogonType">3</Data><Data Name="WorkstationName">-</Data><Data Name="Status">0xc000006d</Data></EventData></Event>"#;
        let f = record_fields(x);
        let get = |k: &str| f.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("event"), Some("4625 (logon failed)"));
        assert_eq!(get("computer"), Some("DC01.corp.local"));
        assert_eq!(get("account"), Some("admin&co"));
        assert_eq!(get("source address"), Some("203.0.113.9"));
        assert_eq!(get("logon type"), Some("3"));
        assert_eq!(get("status"), Some("0xc000006d"));
        // "-" says nothing and is left out.
        assert_eq!(get("workstation"), None);
        // JSON records: scalar fields; text lines: none.
        let j =
            record_fields(r#"{"src_ip":"203.0.113.9","dest_port":22,"alert":{"signature":"x"}}"#);
        assert_eq!(j.len(), 2);
        assert!(record_fields("Mar  2 03:11:07 gw sshd[1]: Failed password").is_empty());
        // Broken XML gives what it can and never panics.
        let _ = record_fields("<Event><EventID>4624");
        let _ = record_fields("<Event><Data Name=\"IpAddress\"");
    }
}
