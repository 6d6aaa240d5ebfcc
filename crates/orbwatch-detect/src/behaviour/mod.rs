//! Behaviour detectors: catch relays by what they do, not by their address.
//!
//! Relay networks rotate addresses within weeks, so a list of yesterday's
//! relays misses most of today's traffic. These detectors recognise the
//! activity itself: scans, brute force, password spraying, spraying spread
//! over thousands of sources, a success after failures, and unusual
//! outbound volume.
//!
//! Design:
//! - Detectors consume [`Obs`] (40-byte observations, see [`observe`]) in
//!   event-time order, never wall-clock time, so the same code serves a
//!   `hunt` over old logs and a live `watch`.
//! - State is kept per key (a source, a source and service, an account)
//!   in fixed-size records of at most 224 bytes (tested in
//!   `state_sizes_are_bounded`), and keys idle longer than their detector's
//!   window are evicted, emitting any finding they hold.
//! - Every threshold has a documented default in [`BehaviourConfig`] and
//!   can be changed with a TOML file (`--behaviour-config`).
//! - [`Engine::run_runs`] feeds the merged, sorted runs of a hunt (see
//!   [`runs`]: spilled to disk beyond a memory budget) to every detector
//!   and attaches a capped sample of evidence references to each finding
//!   in a second pass; [`Engine::run`] does the same for one in-memory
//!   [`ObsBuffer`].

pub mod attack_obs;
pub mod brute_force;
pub mod distributed;
pub mod exfiltration;
pub mod explicit_spray;
pub mod flow_flags;
pub mod ids_verdict;
pub mod key_table;
pub mod login_flood;
pub mod observe;
pub mod orb_likelihood;
pub mod port_scan;
pub mod runs;
pub mod simulator;
pub mod success_after_failures;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::enrich::Enricher;
use crate::finding::{Finding, FindingKind, Severity};
pub use distributed::{Campaigns, CrossEvent, IdleSummary};
pub use observe::{NodeId, Obs, ObsBuffer, ObsKind, Tables};

/// Thresholds of every detector. The defaults are the documented ones
/// (README "Behaviour detectors"); a TOML file may override any subset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BehaviourConfig {
    pub port_scan: PortScanConfig,
    pub brute_force: BruteForceConfig,
    pub distributed: DistributedConfig,
    pub success_after_failures: SuccessConfig,
    pub exfiltration: ExfilConfig,
    pub orb: OrbConfig,
    pub login_flood: login_flood::LoginFloodConfig,
    pub explicit_spray: explicit_spray::ExplicitSprayConfig,
    pub ids_verdict: ids_verdict::IdsVerdictConfig,
    /// Spill threshold, not a cap on findings: the most observations kept
    /// in memory in finished runs (48 bytes each; the default 4 million is
    /// about 192 MB). Beyond it, sorted runs are written to a temporary
    /// directory (`--spill-dir`) and merged back: the findings are the
    /// same, nothing is dropped. On top of it, each worker thread buffers
    /// up to an eighth of it (1,024 to 1,048,576 observations: 500,000,
    /// about 24 MB, by default) before handing a run over, and the merge
    /// reads each spilled run through a 64 KiB buffer: observation memory
    /// is about `max_observations × 48 × (1 + threads / 8)` bytes (with
    /// the default, 2 threads: about 240 MB), and the replay's cross
    /// events waiting for the cross-source stage take up to half as
    /// much again (see `cross_batches_in_flight`). 0 keeps everything in
    /// memory.
    pub max_observations: u64,
    /// Evidence references kept per finding.
    pub evidence_per_finding: usize,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        Self {
            port_scan: PortScanConfig::default(),
            brute_force: BruteForceConfig::default(),
            distributed: DistributedConfig::default(),
            success_after_failures: SuccessConfig::default(),
            exfiltration: ExfilConfig::default(),
            orb: OrbConfig::default(),
            login_flood: Default::default(),
            explicit_spray: Default::default(),
            ids_verdict: Default::default(),
            max_observations: 4_000_000,
            evidence_per_finding: 10,
        }
    }
}

/// Error reading a behaviour configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid behaviour configuration: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
}

impl BehaviourConfig {
    /// Read a TOML file; keys left out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source: Box::new(source),
        })
    }

    /// Parse TOML text; keys left out keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

/// `port_scan`: many refused or unanswered attempts from one source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PortScanConfig {
    /// Vertical scan: distinct ports probed on one host (default 15; nmap's
    /// fastest profile probes 100, a legitimate client retries one or two).
    pub min_ports: u32,
    /// Horizontal scan: distinct hosts probed (default 20).
    pub min_hosts: u32,
    /// A short burst also counts as a vertical scan: at least this many
    /// distinct ports refused or unanswered (default 5) when the whole
    /// episode lasts at most `burst_secs` (default 60). A client that
    /// mistypes a port does not get five refusals on five ports of one
    /// host within a minute; a quick targeted scan (web, SMB, RDP and
    /// its neighbours) does.
    pub burst_ports: u32,
    pub burst_secs: i64,
    /// An episode ends after this many seconds without a probe (default
    /// 3600, so a scan at one probe a minute is still one episode).
    pub idle_secs: i64,
    /// Not a scan when the source had more than this many answered
    /// connections per probe in the same hours (default 4: a proxy or NAT
    /// whose few failures are lost among its successes).
    pub max_answered_ratio: f64,
    /// Sources tracked at once in each of the detector's two tiers (one
    /// probe so far; several), per partition (default 1,000,000: about
    /// 50 MB and 200 MB). Beyond it the least recently active quarter
    /// of the tier ends at once, as if idle (an episode is judged then),
    /// counted and logged: a flood of probes from spoofed addresses, each
    /// new, no longer grows memory for the hour of `idle_secs`.
    pub max_sources: u64,
}

impl Default for PortScanConfig {
    fn default() -> Self {
        Self {
            min_ports: 15,
            min_hosts: 20,
            burst_ports: 5,
            burst_secs: 60,
            idle_secs: 3600,
            max_answered_ratio: 4.0,
            max_sources: 1_000_000,
        }
    }
}

/// `brute_force` and `password_spray`: one source, one service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForceConfig {
    /// Failures that trigger within `window_secs` (default 5 in 600 s:
    /// fail2ban's maxretry and findtime), over a sliding window. At most
    /// 16 (the window keeps that many times per key).
    pub max_failures: u32,
    pub window_secs: i64,
    /// Failures over a whole episode that trigger even when slower than the
    /// bucket (default 20: a slow brute force).
    pub slow_failures: u32,
    /// An episode ends after this many seconds without a failure (3600).
    pub idle_secs: i64,
    /// `password_spray` instead of `brute_force` when at least this many
    /// accounts were tried (default 5)…
    pub spray_min_accounts: u32,
    /// …with at most this many failures per account on average (3).
    pub spray_max_per_account: f64,
    /// Episodes (a source's second failure on a service onwards) open at
    /// once, per partition (default 500,000: about 100 MB). Beyond it
    /// the least recently active quarter ends at once, as if idle (one
    /// that triggered is reported then), counted and logged: failed
    /// logins from a flood of addresses, each failing twice, no longer
    /// grow memory for the hour of `idle_secs` (8,000,000 of them took
    /// 4.9 GB).
    pub max_open: u64,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 600,
            slow_failures: 20,
            idle_secs: 3600,
            spray_min_accounts: 5,
            spray_max_per_account: 3.0,
            max_open: 500_000,
        }
    }
}

/// `distributed_bruteforce`: many sources, each below the per-source
/// thresholds, against one service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DistributedConfig {
    /// Members needed for a finding (default 5).
    pub min_sources: u32,
    /// A source is low-rate when it never fails more than this many times
    /// in a UTC day (default 5) and never triggers `brute_force`.
    pub max_daily_failures: u32,
    /// Days with failures that make a low-rate source persistent (3).
    pub persistent_days: u32,
    /// An account is shared when this many low-rate sources failed on it
    /// (default 3).
    pub shared_account_sources: u32,
    /// A /24 is a cluster when it holds this many low-rate sources (3).
    pub cluster_sources: u32,
    /// Evidence points a source needs to join (persistent, shared accounts,
    /// valid accounts, cluster; default 2 of 4).
    pub min_points: u32,
    /// Sources idle this long are decided and evicted (default 14 days).
    pub idle_secs: i64,
    /// Idle low-rate sources kept for a campaign that has not paused
    /// (default 1,000,000, about 64 MB). Beyond it the members so far are
    /// judged as one part and reported, and the campaign goes on: memory
    /// stays bounded over months of logs, at the price of one finding per
    /// part instead of one per campaign.
    pub max_idle_sources: u64,
    /// Accounts kept (per service, with their counts) while their
    /// campaign goes on (default 250,000: about 25 MB with their names).
    /// Beyond it a quarter are forgotten, those no one logged in to and
    /// tried by the fewest sources first (an account counts toward a
    /// campaign only once several sources tried it), then the oldest;
    /// counted and logged. A spray of random names then no longer grows
    /// memory without end.
    pub max_accounts: u64,
    /// (source, service) records kept, per partition (a hunt's thread;
    /// a daemon has one), default 1,000,000: about 150 MB. A record lives
    /// `idle_secs` after its source's last failure; beyond this many,
    /// the least recently active sixteenth end at once, as if idle
    /// (counted and logged). A flood of failed logins each from a new
    /// address then no longer grows memory for 14 days.
    pub max_records: u64,
    /// Members listed in a campaign's `sources` (and read for evidence),
    /// the most active first (default 10,000; 0 = all). `details.members`
    /// always counts them all, and a reason says how many are not listed.
    pub max_listed_sources: u64,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        Self {
            min_sources: 5,
            max_daily_failures: 5,
            persistent_days: 3,
            shared_account_sources: 3,
            cluster_sources: 3,
            min_points: 2,
            idle_secs: 14 * 86_400,
            max_idle_sources: 1_000_000,
            max_accounts: 250_000,
            max_records: 1_000_000,
            max_listed_sources: 10_000,
        }
    }
}

/// `success_after_failures`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SuccessConfig {
    /// Failures of the same source before the success (default 3; one or
    /// two is a typo).
    pub min_failures: u32,
    /// Failures of other sources of the same /24 on the same service that
    /// make a success suspicious (default 5).
    pub min_cluster_failures: u32,
    /// How far back failures count (default 86400 s).
    pub lookback_secs: i64,
    /// (cluster, service) failure counts kept at once per partition
    /// (default 1,000,000, about 32 MB). Beyond, the quarter whose last
    /// failure is oldest is forgotten, counted and logged: a flood of
    /// failures from forged IPv6 /64s must not grow the daemon for a day.
    pub max_clusters: u64,
}

impl Default for SuccessConfig {
    fn default() -> Self {
        Self {
            min_failures: 3,
            min_cluster_failures: 5,
            lookback_secs: 86_400,
            max_clusters: 1_000_000,
        }
    }
}

/// `exfiltration`: outbound volume to one external address far above the
/// internal host's baseline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExfilConfig {
    /// Bytes in one hour to one destination below which nothing is said
    /// (default 100 MB).
    pub min_bytes: u64,
    /// How many times the host's hourly baseline (mean of its earlier
    /// hourly totals) the hour must reach (default 10).
    pub baseline_factor: f64,
    /// Hours of history a host needs before it has a baseline (default 6).
    /// Without one, `min_bytes × baseline_factor` is the bar.
    pub min_history_hours: u32,
    /// Internal hosts whose baseline is kept, per partition (default
    /// 1,000,000: about 50 MB). Beyond it the quarter that sent nothing
    /// for the longest is forgotten (counted and logged): such a host
    /// starts again with no history, held to the bar for new hosts.
    /// Flow records from a flood of internal addresses (forged NetFlow,
    /// or an internal IPv6 range) no longer keep one each for ever.
    pub max_hosts: u64,
}

impl Default for ExfilConfig {
    fn default() -> Self {
        Self {
            min_bytes: 100_000_000,
            baseline_factor: 10.0,
            min_history_hours: 6,
            max_hosts: 1_000_000,
        }
    }
}

/// ORB likelihood per external source (see [`orb_likelihood`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OrbConfig {
    /// Ports router backdoors listen on.
    pub backdoor_ports: Vec<u16>,
    /// Sources scoring below this get no likelihood section (default 30).
    pub min_score: u8,
}

impl Default for OrbConfig {
    fn default() -> Self {
        Self {
            backdoor_ports: observe::DEFAULT_BACKDOOR_PORTS.to_vec(),
            min_score: 30,
        }
    }
}

/// What a detector hands back: a finding without evidence yet, and how to
/// find its observations.
#[derive(Debug, Clone)]
pub struct Draft {
    pub finding: Finding,
    /// Sources (interned ids) whose observations are evidence.
    pub srcs: Vec<NodeId>,
    pub kinds: Vec<ObsKind>,
    /// Only observations of this service (interned id), if set.
    pub svc: Option<u16>,
    pub from: i64,
    pub to: i64,
}

impl Draft {
    /// Mark the sources it holds.
    pub fn mark_held(&self, m: &mut observe::HeldIds) {
        self.srcs.iter().for_each(|&s| m.mark_node(s));
    }
}

/// A finding with references to the records behind it.
#[derive(Debug, Clone)]
pub struct BehaviourFinding {
    pub finding: Finding,
    /// Up to `evidence_per_finding` (input, line, time in ms) references,
    /// earliest first.
    pub evidence: Vec<(usize, u64, i64)>,
    pub evidence_total: u64,
}

/// Runs every detector over a sorted observation stream, split into
/// partitions of sources that run on their own threads.
///
/// ```text
///  observations (event-time order)
///        │ split by a hash of the source's /24 (IPv4), /64 (IPv6) or id
///        ▼
///  partition 0 … partition N-1      per-source detectors: port_scan,
///        │             │            brute_force, success_after_failures
///        │             │            (per /24), login_flood, exfiltration,
///        │             │            explicit_spray, ids_verdict, and the
///        │             │            per-source records of distributed
///        └──── CrossEvents ────┐    (compact: one per auth event, one per
///                              ▼     idle low-rate source)
///              merged in one total order (CrossEvent::key)
///                              ▼
///                  Campaigns: accounts, runs, distributed_bruteforce
/// ```
///
/// Every per-source detector decides from its own key's events only, and
/// the merged order of the cross events does not depend on the split,
/// so the findings are the same for any number of partitions (a property
/// test checks it). This is the keyed split that Kafka partitions give
/// the distributed workers.
pub struct Engine<'a> {
    pub cfg: &'a BehaviourConfig,
    pub enricher: &'a Enricher,
    /// Partitions of sources, each on its own thread (1: one thread for
    /// the per-source detectors beside the cross-source stage).
    pub partitions: usize,
}

/// One of `count` partitions of the sources. Sources of one /24 (IPv4)
/// or /64 (IPv6) share a partition, because `success_after_failures`
/// counts the failures of a source's neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub index: usize,
    pub count: usize,
}

impl Part {
    /// Everything in one partition.
    pub const ALL: Part = Part { index: 0, count: 1 };

    /// Does this partition own `src`?
    pub fn owns(&self, src: NodeId, t: &Tables) -> bool {
        self.count <= 1 || self.of(src, t) == self.index
    }

    /// The partition of `src`.
    pub fn of(&self, src: NodeId, t: &Tables) -> usize {
        if self.count <= 1 {
            return 0;
        }
        let key = match t.ip(src) {
            Some(ip) => success_after_failures::cluster_key(ip),
            // A host name (or no source) by the name, not its id: ids
            // are final only once the units' tables are merged, and runs
            // are split by partition as each unit hands them over.
            None => t.ip_key(src),
        };
        (mix(key) % self.count as u64) as usize
    }
}

/// Cross events per message between a partition and the cross-source
/// stage.
const CROSS_BATCH: usize = 4096;

/// Batches of cross events each partition may have waiting for the
/// cross-source stage: as many as hold half of `max_observations` over
/// all partitions (cross events are about the size of observations), at
/// least 8 and at most 256 (`max_observations` 0, no bound, takes 256).
///
/// Why: the stage takes the partitions' events in time order, and the
/// partitions drift apart in event time as they go. With 8 batches the
/// one ahead waited on its full channel while the stage waited for the
/// one behind, and the replay kept about 1.6 of the 2 cores busy. With
/// 256 (the default budget gives 244), the 1 GB hunt's replay took 3.3
/// to 3.5 s instead of 3.7 to 4.5 s (four pairs in one run), for about
/// 120 MB more at its peak.
fn cross_batches_in_flight(max_observations: u64, partitions: usize) -> usize {
    if max_observations == 0 {
        return 256;
    }
    let per_partition = max_observations / 2 / (CROSS_BATCH as u64 * partitions.max(1) as u64);
    per_partition.clamp(8, 256) as usize
}

/// Observations a partition reads ahead of the one it handles (see
/// `detect_part`).
const LOOKAHEAD: usize = 16;

/// What a partition hands back when its stream ends.
struct PartOutcome {
    drafts: Vec<Draft>,
    /// Sources with a brute-force or spray finding.
    flagged: hashbrown::HashSet<NodeId>,
    backdoor: Vec<Obs>,
    /// The bounds it reached (every count but the cross-source
    /// stage's `accounts_forgotten`).
    limits: ReplayLimits,
}

/// Limits a replay reached, which change findings (counted, never
/// silent; a hunt says them in its coverage).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReplayLimits {
    /// (source, service) records of the distributed-spray detector ended
    /// before `idle_secs`, over `max_records` (in any partition).
    pub records_ended_early: u64,
    /// Accounts forgotten over `max_accounts`.
    pub accounts_forgotten: u64,
    /// Port-scan sources ended before `idle_secs`, over `max_sources`.
    pub scan_sources_ended_early: u64,
    /// Brute-force episodes ended before `idle_secs`, over `max_open`.
    pub brute_force_ended_early: u64,
    /// Login-flood episodes ended before `idle_secs`, over `max_open`.
    pub login_floods_ended_early: u64,
    /// Internal hosts whose exfiltration baseline was forgotten, over
    /// `max_hosts`.
    pub exfil_hosts_forgotten: u64,
    /// (source, IDS verdict class) pairs judged early, over
    /// `ids_verdict.max_keys`.
    pub ids_keys_ended_early: u64,
    /// Explicit-credential episodes ended early, over
    /// `explicit_spray.max_open`.
    pub explicit_sprays_ended_early: u64,
    /// (cluster, service) failure counts of `success_after_failures`
    /// forgotten, over `success_after_failures.max_clusters`.
    pub failure_clusters_forgotten: u64,
}

impl ReplayLimits {
    /// Add `o`'s counts to these (partitions, or a worker's pipelines).
    pub fn add(&mut self, o: &ReplayLimits) {
        self.records_ended_early += o.records_ended_early;
        self.accounts_forgotten += o.accounts_forgotten;
        self.scan_sources_ended_early += o.scan_sources_ended_early;
        self.brute_force_ended_early += o.brute_force_ended_early;
        self.login_floods_ended_early += o.login_floods_ended_early;
        self.exfil_hosts_forgotten += o.exfil_hosts_forgotten;
        self.ids_keys_ended_early += o.ids_keys_ended_early;
        self.explicit_sprays_ended_early += o.explicit_sprays_ended_early;
        self.failure_clusters_forgotten += o.failure_clusters_forgotten;
    }

    /// Every bound a replay can reach, with what it is called and what
    /// reaching it means. The coverage notes, the daemon's `/metrics` and
    /// its status line all read this one table, so a new bound is added
    /// here once and shows everywhere.
    pub fn entries(&self, behaviour: &BehaviourConfig) -> [LimitReached; 9] {
        let dist = &behaviour.distributed;
        let least_recent = "and the least recently active ended early";
        [
            LimitReached {
                name: "records_ended_early",
                help: "Distributed-spray (source, service) records ended before behaviour.distributed.idle_secs, over behaviour.distributed.max_records.",
                count: self.records_ended_early,
                what: "(source, service) records of the distributed-spray detector ended before distributed.idle_secs",
                bound: "distributed.max_records",
                cap: dist.max_records,
                over: format!("were open in one partition, {least_recent} (a campaign's members may be judged in more parts)"),
            },
            LimitReached {
                name: "accounts_forgotten",
                help: "Accounts the distributed-spray detector forgot over behaviour.distributed.max_accounts.",
                count: self.accounts_forgotten,
                what: "accounts were forgotten by the distributed-spray detector",
                bound: "distributed.max_accounts",
                cap: dist.max_accounts,
                over: "were tried while a campaign went on, and those tried by the fewest sources went first (a source that tried one again counted it from nothing)".into(),
            },
            LimitReached {
                name: "scan_sources_ended_early",
                help: "Port-scan sources ended before behaviour.port_scan.idle_secs, over behaviour.port_scan.max_sources.",
                count: self.scan_sources_ended_early,
                what: "probing sources ended before port_scan.idle_secs",
                bound: "port_scan.max_sources",
                cap: behaviour.port_scan.max_sources,
                over: format!("were tracked at once in one partition, {least_recent} (a scan may be reported in parts, or missed if its probes were spread thin)"),
            },
            LimitReached {
                name: "brute_force_ended_early",
                help: "Brute-force episodes ended before behaviour.brute_force.idle_secs, over behaviour.brute_force.max_open.",
                count: self.brute_force_ended_early,
                what: "brute-force episodes ended before brute_force.idle_secs",
                bound: "brute_force.max_open",
                cap: behaviour.brute_force.max_open,
                over: format!("were open at once in one partition, {least_recent} (a slow brute force may be reported in parts, or missed)"),
            },
            LimitReached {
                name: "login_floods_ended_early",
                help: "Login-flood episodes ended before behaviour.login_flood.idle_secs, over behaviour.login_flood.max_open.",
                count: self.login_floods_ended_early,
                what: "login-flood episodes ended before login_flood.idle_secs",
                bound: "login_flood.max_open",
                cap: behaviour.login_flood.max_open,
                over: format!("were open at once in one partition, {least_recent} (a flood may be reported in parts)"),
            },
            LimitReached {
                name: "exfil_hosts_forgotten",
                help: "Internal hosts whose exfiltration baseline was forgotten, over behaviour.exfiltration.max_hosts.",
                count: self.exfil_hosts_forgotten,
                what: "internal hosts' exfiltration baselines were forgotten",
                bound: "exfiltration.max_hosts",
                cap: behaviour.exfiltration.max_hosts,
                over: "were kept at once in one partition, and those idle longest went (each starts again with no history)".into(),
            },
            LimitReached {
                name: "ids_keys_ended_early",
                help: "(source, IDS verdict class) pairs judged before their idle time, over behaviour.ids_verdict.max_keys.",
                count: self.ids_keys_ended_early,
                what: "(source, IDS verdict class) pairs were judged before the end",
                bound: "ids_verdict.max_keys",
                cap: behaviour.ids_verdict.max_keys,
                over: "were kept at once in one partition, and the least recently active went first (a finding made later for the same source was not strengthened by them; each verdict stands as a finding of its own)".into(),
            },
            LimitReached {
                name: "explicit_sprays_ended_early",
                help: "Explicit-credential (Windows 4648) episodes ended before behaviour.explicit_spray.window_secs, over behaviour.explicit_spray.max_open.",
                count: self.explicit_sprays_ended_early,
                what: "explicit-credential episodes ended before explicit_spray.window_secs",
                bound: "explicit_spray.max_open",
                cap: behaviour.explicit_spray.max_open,
                over: format!("were open at once in one partition, {least_recent} (a slow spray may be reported in parts, or missed)"),
            },
            LimitReached {
                name: "failure_clusters_forgotten",
                help: "(/24 or /64, service) failure counts success_after_failures forgot before behaviour.success_after_failures.lookback_secs, over behaviour.success_after_failures.max_clusters.",
                count: self.failure_clusters_forgotten,
                what: "(/24 or /64, service) failure counts of success_after_failures were forgotten before success_after_failures.lookback_secs",
                bound: "success_after_failures.max_clusters",
                cap: behaviour.success_after_failures.max_clusters,
                over: "were kept at once in one partition, and those whose last failure was oldest went (a success from such a cluster was judged on its source's own failures only)".into(),
            },
        ]
    }

    /// What the limits reached mean, in words (empty when none was).
    pub fn notes(&self, behaviour: &BehaviourConfig) -> Vec<String> {
        self.entries(behaviour)
            .iter()
            .filter(|e| e.count > 0)
            .map(LimitReached::note)
            .collect()
    }
}

/// One bound of a replay and how often it was reached
/// ([`ReplayLimits::entries`]).
#[derive(Debug, Clone)]
pub struct LimitReached {
    /// Snake-case name; `/metrics` calls its counter `<name>_total`.
    pub name: &'static str,
    /// One line for the metric's `# HELP`.
    pub help: &'static str,
    /// How many times the bound was reached.
    pub count: u64,
    /// What happened, said after the count.
    what: &'static str,
    /// The configuration key of the bound.
    bound: &'static str,
    /// Its value in this run.
    cap: u64,
    /// What went over it, how it was shed and what that costs.
    over: String,
}

impl LimitReached {
    /// The coverage sentence: what happened, the bound, and what it costs.
    pub fn note(&self) -> String {
        format!(
            "{} {}: more than {} ({}) {}",
            self.count, self.what, self.bound, self.cap, self.over
        )
    }
}

/// Evidence picked in one partition: per draft, the references (earliest
/// first, at most the cap) and how many matched.
type PartEvidence = Vec<(Vec<(usize, u64, i64)>, u64)>;

impl Engine<'_> {
    /// Sort `buf`, replay it through every detector, pick evidence.
    pub fn run(&self, buf: &mut ObsBuffer) -> Vec<BehaviourFinding> {
        buf.sort();
        let obs = &buf.obs;
        let t = &buf.tables;
        let part = |p: Part| obs.iter().copied().filter(move |o| p.owns(o.src, t));
        self.replay(t, part, part).0
    }

    /// As [`Engine::run`], with the limits the replay reached.
    pub fn run_with_limits(&self, buf: &mut ObsBuffer) -> (Vec<BehaviourFinding>, ReplayLimits) {
        buf.sort();
        let obs = &buf.obs;
        let t = &buf.tables;
        let part = |p: Part| obs.iter().copied().filter(move |o| p.owns(o.src, t));
        let (found, _, limits) = self.replay(t, part, part);
        (found, limits)
    }

    /// Replay the merged runs of a hunt through every detector, pick
    /// evidence in a second merge. Also returns the addresses seen on
    /// router backdoor ports (for ORB likelihood), gathered on the way.
    pub fn run_runs(
        &self,
        runs: &runs::ObsRuns,
    ) -> (
        Vec<BehaviourFinding>,
        BTreeMap<IpAddr, BTreeSet<u16>>,
        ReplayLimits,
    ) {
        self.replay(
            &runs.tables,
            |p| runs.stream_part(p),
            |p| runs.unordered_part(p),
        )
    }

    /// Replay the ordered stream of each partition through every
    /// detector, then pick evidence from each partition's observations
    /// in any order (`unordered`: evidence is sorted by time afterwards).
    fn replay<I: Iterator<Item = Obs>, U: Iterator<Item = Obs>>(
        &self,
        t: &Tables,
        stream: impl Fn(Part) -> I + Sync,
        unordered: impl Fn(Part) -> U + Sync,
    ) -> (
        Vec<BehaviourFinding>,
        BTreeMap<IpAddr, BTreeSet<u16>>,
        ReplayLimits,
    ) {
        let count = self.partitions.max(1);
        let parts: Vec<Part> = (0..count).map(|index| Part { index, count }).collect();
        let (mut drafts, outcomes) = std::thread::scope(|scope| {
            let mut receivers = Vec::with_capacity(count);
            let mut handles = Vec::with_capacity(count);
            for p in &parts {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<CrossEvent>>(
                    cross_batches_in_flight(self.cfg.max_observations, count),
                );
                let (back, spare) = std::sync::mpsc::sync_channel::<Vec<CrossEvent>>(SPARE_BATCHES);
                receivers.push((rx, Some(back)));
                let stream = &stream;
                let p = *p;
                handles.push(scope.spawn(move || self.detect_part(t, stream(p), tx, spare)));
            }
            let mut campaigns = distributed::Campaigns::new(&self.cfg.distributed);
            merge_cross(receivers, |e| campaigns.event(e, t, self.enricher));
            let outcomes: Vec<PartOutcome> = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect();
            let flagged: hashbrown::HashSet<NodeId> = outcomes
                .iter()
                .flat_map(|o| o.flagged.iter().copied())
                .collect();
            let forgotten = campaigns.accounts_forgotten();
            let drafts = campaigns.finish(t, &flagged, self.enricher);
            (drafts, (outcomes, forgotten))
        });
        let (outcomes, accounts_forgotten) = outcomes;
        let mut limits = ReplayLimits {
            accounts_forgotten,
            ..ReplayLimits::default()
        };
        let mut backdoor = Vec::new();
        for o in outcomes {
            drafts.extend(o.drafts);
            backdoor.extend(o.backdoor);
            limits.add(&o.limits);
        }
        let backdoor = orb_likelihood::backdoor_sources(t, backdoor.into_iter());
        let cap = self.cfg.evidence_per_finding;
        let picked: Vec<PartEvidence> = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .iter()
                .map(|p| {
                    let (unordered, drafts) = (&unordered, &drafts);
                    let p = *p;
                    scope.spawn(move || pick_evidence(unordered(p), drafts, p, t, cap))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut findings: Vec<BehaviourFinding> = drafts
            .into_iter()
            .map(|d| BehaviourFinding {
                finding: d.finding,
                evidence: Vec::new(),
                evidence_total: 0,
            })
            .collect();
        for part in picked {
            for (f, (ev, total)) in findings.iter_mut().zip(part) {
                f.evidence.extend(ev);
                f.evidence_total += total;
            }
        }
        for f in &mut findings {
            // Earliest first, as one stream would have met them.
            f.evidence
                .sort_by_key(|(input, line, time)| (*time, *input, *line));
            if cap > 0 {
                f.evidence.truncate(cap);
            }
            enrich_finding(&mut f.finding, self.enricher);
        }
        findings.sort_by(|a, b| {
            let (a, b) = (&a.finding, &b.finding);
            (a.first_seen, a.kind, &a.id, a.last_seen, a.count, a.src_ip).cmp(&(
                b.first_seen,
                b.kind,
                &b.id,
                b.last_seen,
                b.count,
                b.src_ip,
            ))
        });
        (findings, backdoor, limits)
    }

    /// The per-source detectors over one partition's stream. Auth events
    /// and idle sources go to the cross-source stage through `tx` in
    /// batches; emptied batches come back through `spare` for reuse.
    fn detect_part(
        &self,
        t: &Tables,
        stream: impl Iterator<Item = Obs>,
        tx: std::sync::mpsc::SyncSender<Vec<CrossEvent>>,
        spare: std::sync::mpsc::Receiver<Vec<CrossEvent>>,
    ) -> PartOutcome {
        let mut detectors = PartitionDetectors::new(self.cfg);
        let mut cross = Vec::with_capacity(CROSS_BATCH);
        // A closed channel means the cross-source stage is gone (it
        // panicked); the partition still finishes its own findings.
        let send = |cross: &mut Vec<CrossEvent>| {
            let next = spare
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CROSS_BATCH));
            let batch = std::mem::replace(cross, next);
            let _ = tx.send(batch);
        };
        // Observations wait LOOKAHEAD places before they are handled, so
        // that the records they will touch are asked for (prefetched)
        // while the ones before them are handled: most failed logins of
        // a large hunt come from an address not seen for days, whose
        // record is not in cache. The order of handling is unchanged.
        let mut ahead: std::collections::VecDeque<Obs> =
            std::collections::VecDeque::with_capacity(LOOKAHEAD + 1);
        for o in stream {
            detectors.prefetch(&o, t);
            ahead.push_back(o);
            if ahead.len() > LOOKAHEAD
                && let Some(o) = ahead.pop_front()
            {
                detectors.observe(&o, t, &mut cross);
                if cross.len() >= CROSS_BATCH {
                    send(&mut cross);
                }
            }
        }
        for o in ahead {
            detectors.observe(&o, t, &mut cross);
            if cross.len() >= CROSS_BATCH {
                send(&mut cross);
            }
        }
        let outcome = detectors.finish(t, &mut cross);
        send(&mut cross);
        outcome
    }
}

/// The per-source detectors of one partition: what a hunt's replay thread
/// runs over its stream, and what a live pipeline feeds as events pass
/// its watermark, calling [`advance`](Self::advance) as event time passes
/// without events and [`take_drafts`](Self::take_drafts) to hand findings
/// on as they are made.
pub struct PartitionDetectors<'a> {
    cfg: &'a BehaviourConfig,
    /// Live: report brute force and spraying while it goes on (see
    /// `BruteForce::ongoing`); a hunt reports each episode once, at its
    /// end.
    ongoing: bool,
    ongoing_drafts: Vec<Draft>,
    scan: port_scan::PortScan<'a>,
    bf: brute_force::BruteForce<'a>,
    saf: success_after_failures::SuccessAfterFailures<'a>,
    auth: distributed::AuthRecords<'a>,
    exfil: exfiltration::Exfiltration<'a>,
    flood: login_flood::LoginFlood<'a>,
    xspray: explicit_spray::ExplicitSpray<'a>,
    ids: ids_verdict::IdsVerdicts,
    backdoor: Vec<Obs>,
    floods: Vec<Draft>,
    drafts: Vec<Draft>,
}

impl<'a> PartitionDetectors<'a> {
    pub fn new(cfg: &'a BehaviourConfig) -> Self {
        Self {
            cfg,
            ongoing: false,
            ongoing_drafts: Vec::new(),
            scan: port_scan::PortScan::new(&cfg.port_scan),
            bf: brute_force::BruteForce::new(&cfg.brute_force),
            saf: success_after_failures::SuccessAfterFailures::new(&cfg.success_after_failures),
            auth: distributed::AuthRecords::new(
                &cfg.distributed,
                cfg.success_after_failures.lookback_secs,
            ),
            exfil: exfiltration::Exfiltration::new(&cfg.exfiltration),
            flood: login_flood::LoginFlood::new(&cfg.login_flood),
            xspray: explicit_spray::ExplicitSpray::new(&cfg.explicit_spray),
            ids: ids_verdict::IdsVerdicts::new(&cfg.ids_verdict),
            backdoor: Vec::new(),
            floods: Vec::new(),
            drafts: Vec::new(),
        }
    }

    /// Feed one observation (in event-time order); what the cross-source
    /// stage needs is appended to `cross`.
    pub fn observe(&mut self, o: &Obs, t: &Tables, cross: &mut Vec<CrossEvent>) {
        let drafts = &mut self.drafts;
        match o.kind {
            ObsKind::Probe => self.scan.observe(o, t, drafts),
            ObsKind::AuthFailure | ObsKind::AuthSuccess => {
                // One record per (source, service), kept by `AuthRecords`,
                // also serves the first tier of `brute_force` and the own
                // failures of `success_after_failures`. Records idle by now
                // end first, so what they say never depends on whether
                // another source's event happened to end them earlier.
                self.auth.advance(o.time, cross);
                let prev = self.auth.previous_failure(o.src, o.svc);
                let triggered = self.bf.observe(o, prev, t, drafts);
                if self.ongoing
                    && triggered
                    && let Some(d) = self.bf.ongoing(o.src, o.svc, t)
                {
                    self.bf.reported_ongoing(o.src, o.svc);
                    self.ongoing_drafts.push(d);
                }
                let own = self.auth.recent_failures(o.src, o.svc, o.time);
                let reported = self.saf.observe(o, own, t, drafts);
                self.auth.observe(o, triggered, t, cross);
                if reported {
                    self.auth.reset_recent(o.src, o.svc);
                }
            }
            ObsKind::Outbound => self.exfil.observe(o, t, drafts),
            ObsKind::Answered => self.scan.answered(o),
            ObsKind::BackdoorPort => self.backdoor.push(*o),
            ObsKind::LoginConnection => self.flood.observe(o, t, &mut self.floods),
            ObsKind::AuthAttempt => self.xspray.observe(o, t, drafts),
            ObsKind::IdsVerdict => self.ids.observe(o, t, &mut self.drafts),
        }
    }

    /// Start loading the state `o` will touch into cache (a hint: no
    /// state changes). Called some observations before `o` is observed.
    #[inline]
    pub fn prefetch(&self, o: &Obs, t: &Tables) {
        if matches!(o.kind, ObsKind::AuthFailure | ObsKind::AuthSuccess) {
            self.auth.prefetch(o.src, o.svc);
            self.saf.prefetch(o, t);
        }
    }

    /// Event time has reached `now` (ms) with no event: end and judge the
    /// episodes idle by then, as an event at `now` would.
    pub fn advance(&mut self, now: i64, t: &Tables, cross: &mut Vec<CrossEvent>) {
        self.scan.advance(now, t, &mut self.drafts);
        self.bf.advance(now, t, &mut self.drafts);
        self.flood.advance(now, t, &mut self.floods);
        self.xspray.advance(now, t, &mut self.drafts);
        self.auth.advance(now, cross);
    }

    /// Findings made so far (a login flood by a source that also has a
    /// brute-force finding among them is folded into it).
    pub fn take_drafts(&mut self) -> Vec<Draft> {
        let floods = std::mem::take(&mut self.floods);
        login_flood::merge(&mut self.drafts, floods);
        std::mem::take(&mut self.drafts)
    }

    /// Keys tracked now by the per-source detectors (for metrics).
    pub fn tracked(&self) -> usize {
        self.scan.tracked() + self.bf.tracked() + self.auth.tracked() + self.flood.tracked()
    }

    /// The bounds its detectors reached so far (all but the cross-source
    /// stage's `accounts_forgotten`, which is not theirs).
    pub fn limits(&self) -> ReplayLimits {
        ReplayLimits {
            records_ended_early: self.auth.ended_early(),
            accounts_forgotten: 0,
            scan_sources_ended_early: self.scan.ended_early(),
            brute_force_ended_early: self.bf.ended_early(),
            login_floods_ended_early: self.flood.ended_early(),
            exfil_hosts_forgotten: self.exfil.forgotten(),
            ids_keys_ended_early: self.ids.ended_early(),
            explicit_sprays_ended_early: self.xspray.ended_early(),
            failure_clusters_forgotten: self.saf.forgotten(),
        }
    }

    /// Mark every account name and source its detectors hold, and
    /// those of the drafts not taken yet (see [`Tables::forget_unheld`]).
    /// `success_after_failures` holds neither (it is keyed by cluster,
    /// and reads the name only when it reports).
    pub fn mark_held(&self, m: &mut observe::HeldIds) {
        self.scan.mark_held(m);
        self.bf.mark_held(m);
        self.auth.mark_held(m);
        self.exfil.mark_held(m);
        self.flood.mark_held(m);
        self.xspray.mark_held(m);
        self.ids.mark_held(m);
        self.backdoor.iter().for_each(|o| m.mark_obs(o));
        for d in [&self.ongoing_drafts, &self.floods, &self.drafts] {
            d.iter().for_each(|d| d.mark_held(m));
        }
    }

    /// End of input: judge everything still open.
    fn finish(mut self, t: &Tables, cross: &mut Vec<CrossEvent>) -> PartOutcome {
        self.auth.finish(cross);
        self.scan.finish(t, &mut self.drafts);
        self.bf.finish(t, &mut self.drafts);
        let flagged = self.bf.flagged_sources();
        self.flood.finish(t, &mut self.floods);
        let mut drafts = self.take_drafts();
        self.xspray.finish(t, &mut drafts);
        let limits = self.limits();
        self.ids.finish(t, &mut drafts);
        PartOutcome {
            drafts,
            flagged,
            backdoor: self.backdoor,
            limits,
        }
    }
}

/// Every detector on one thread, fed observation by observation in
/// event-time order: what a live pipeline runs behind its reorder window.
/// The per-source detectors and the cross-source stage are the same as in
/// a hunt's replay; with one partition the cross events are already in
/// the order the stage needs.
pub struct LiveDetectors<'a> {
    part: PartitionDetectors<'a>,
    campaigns: distributed::Campaigns<'a>,
    enricher: &'a Enricher,
    cross: Vec<CrossEvent>,
    /// Sources seen on router backdoor ports (for ORB likelihood), at
    /// most [`LIVE_BACKDOOR_CAP`].
    backdoor: BTreeMap<IpAddr, BTreeSet<u16>>,
    /// The last report of each attack still going on, by (source,
    /// service): when its final finding comes with another id (a brute
    /// force that turned out to be a spray), the report is marked as
    /// superseded rather than left beside it.
    ongoing: hashbrown::HashMap<(NodeId, Option<u16>), Finding>,
    /// Final scan and brute-force findings handed on lately, by source:
    /// an IDS verdict judged after them strengthens them, and they are
    /// handed on again (same id, so the new state replaces the old).
    /// Kept for [`LiveDetectors::recent_ms`] of event time after they end.
    recent: hashbrown::HashMap<NodeId, Vec<Draft>>,
    /// Strengthened findings to hand on again.
    reissued: Vec<Draft>,
    /// IDS verdicts of a (source, class) are judged when none came for
    /// this long (ms): the longest idle time of the per-source detectors,
    /// so the episode orbwatch itself saw has been judged by then.
    verdict_idle_ms: i64,
    /// Stage 2 of a split topology: a copy of every cross event, for the
    /// cross-source stage of another process (see
    /// [`LiveDetectors::export_cross`]).
    exported: Option<Vec<CrossEvent>>,
    /// The flagged sources are pruned when this many are flagged (see
    /// [`LiveDetectors::prune_flagged`]).
    flagged_prune_at: usize,
    /// Flagged sources dropped so far, their records and runs gone.
    flags_dropped: u64,
}

/// The flagged sources kept before a live pipeline first prunes them.
const FLAGGED_PRUNE_FLOOR: usize = 1 << 16;

/// What [`LiveDetectors::finish_parts`] hands back.
pub struct LiveFinish {
    pub drafts: Vec<Draft>,
    /// The cross events of the end of input (records still open), when
    /// they are exported.
    pub cross: Vec<CrossEvent>,
    /// Sources with a brute-force or spray finding: a campaign judged at
    /// the end of input leaves them out (they are explained already).
    pub flagged: Vec<NodeId>,
}

/// Sources on backdoor ports a live pipeline remembers.
const LIVE_BACKDOOR_CAP: usize = 100_000;

/// Kinds of finding an IDS verdict can strengthen.
fn verdict_may_strengthen(k: FindingKind) -> bool {
    matches!(
        k,
        FindingKind::PortScan | FindingKind::BruteForce | FindingKind::PasswordSpray
    )
}

impl<'a> LiveDetectors<'a> {
    pub fn new(cfg: &'a BehaviourConfig, enricher: &'a Enricher) -> Self {
        let mut part = PartitionDetectors::new(cfg);
        part.ongoing = true;
        let verdict_idle_secs = [
            cfg.port_scan.idle_secs,
            cfg.brute_force.idle_secs,
            cfg.login_flood.idle_secs,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        Self {
            part,
            campaigns: distributed::Campaigns::new(&cfg.distributed),
            enricher,
            cross: Vec::new(),
            backdoor: BTreeMap::new(),
            ongoing: hashbrown::HashMap::new(),
            recent: hashbrown::HashMap::new(),
            reissued: Vec::new(),
            verdict_idle_ms: verdict_idle_secs.saturating_mul(1000),
            exported: None,
            flagged_prune_at: FLAGGED_PRUNE_FLOOR,
            flags_dropped: 0,
        }
    }

    /// Keep a copy of every cross event from now on, taken with
    /// [`take_exported`](Self::take_exported): stage 2 of a split
    /// topology sends them to the one cross-source stage, which sees
    /// every partition's sources.
    pub fn export_cross(&mut self) {
        self.exported.get_or_insert_with(Vec::new);
    }

    /// Mark every account name and source its detectors hold, and
    /// those of cross events and drafts not taken yet (see
    /// [`Tables::forget_unheld`]).
    pub fn mark_held(&self, m: &mut observe::HeldIds) {
        self.part.mark_held(m);
        self.campaigns.mark_held(m);
        self.cross.iter().for_each(|e| e.mark_held(m));
        if let Some(x) = &self.exported {
            x.iter().for_each(|e| e.mark_held(m));
        }
        self.ongoing.keys().for_each(|&(src, _)| m.mark_node(src));
        for (&src, drafts) in &self.recent {
            m.mark_node(src);
            drafts.iter().for_each(|d| d.mark_held(m));
        }
        self.reissued.iter().for_each(|d| d.mark_held(m));
    }

    /// Accounts the cross-source stage forgot over `max_accounts`.
    pub fn accounts_forgotten(&self) -> u64 {
        self.campaigns.accounts_forgotten()
    }

    /// The bounds its detectors reached so far.
    pub fn limits(&self) -> ReplayLimits {
        ReplayLimits {
            accounts_forgotten: self.campaigns.accounts_forgotten(),
            ..self.part.limits()
        }
    }

    /// How many cross events wait for [`take_exported`](Self::take_exported).
    pub fn exported_len(&self) -> usize {
        self.exported.as_ref().map_or(0, Vec::len)
    }

    /// The cross events made since the last call (in key order), when
    /// exported.
    pub fn take_exported(&mut self) -> Vec<CrossEvent> {
        self.exported
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// How long (event time, ms) a final scan or brute force is kept
    /// after it ends, for verdicts judged later.
    fn recent_ms(&self) -> i64 {
        self.verdict_idle_ms.saturating_add(3_600_000)
    }

    /// Judge the verdicts of `key` against the recent findings of its
    /// source and against `pending` (findings not handed on yet): the
    /// recent ones it strengthens are handed on again; a verdict that
    /// strengthens nothing becomes a finding of its own in `pending`.
    fn judge_verdicts(
        &mut self,
        (src, class): (NodeId, u64),
        v: ids_verdict::Verdicts,
        t: &Tables,
        pending: &mut Vec<Draft>,
    ) {
        let mut drafts: Vec<Draft> = self.recent.get(&src).cloned().unwrap_or_default();
        let before: Vec<usize> = drafts.iter().map(|d| d.finding.reasons.len()).collect();
        let n = drafts.len();
        drafts.append(pending);
        ids_verdict::judge(src, class, v, t, &mut drafts);
        pending.extend(drafts.drain(n..));
        for (d, len) in drafts.into_iter().zip(before) {
            if d.finding.reasons.len() == len {
                continue;
            }
            if let Some(list) = self.recent.get_mut(&src)
                && let Some(slot) = list.iter_mut().find(|r| r.finding.id == d.finding.id)
            {
                *slot = d.clone();
            }
            self.reissued.push(d);
        }
    }

    /// Remember final findings an IDS verdict may still strengthen.
    fn remember(&mut self, finals: &[Draft]) {
        for d in finals
            .iter()
            .filter(|d| verdict_may_strengthen(d.finding.kind))
        {
            let Some(&src) = d.srcs.first() else { continue };
            let list = self.recent.entry(src).or_default();
            match list.iter_mut().find(|r| r.finding.id == d.finding.id) {
                Some(slot) => *slot = d.clone(),
                None => list.push(d.clone()),
            }
        }
    }

    /// Start loading the per-source state `o` will touch into cache (a
    /// hint: no state changes). A live pipeline calls it when `o` enters
    /// its reorder window and again a few observations before it leaves:
    /// most failed logins of a spray come from an address not seen for
    /// days, whose records are not in cache.
    #[inline]
    pub fn prefetch(&self, o: &Obs, t: &Tables) {
        self.part.prefetch(o, t);
    }

    /// One observation, in event-time order.
    pub fn observe(&mut self, o: &Obs, t: &Tables) {
        self.part.observe(o, t, &mut self.cross);
        self.pass_cross(t);
    }

    /// Event time has reached `now` (ms, the watermark): judge what went
    /// idle by then.
    pub fn advance(&mut self, now: i64, t: &Tables) {
        self.part.advance(now, t, &mut self.cross);
        self.pass_cross(t);
        self.campaigns.advance(now, t, self.enricher);
        let idle = self
            .part
            .ids
            .take_idle(now.saturating_sub(self.verdict_idle_ms));
        if !idle.is_empty() {
            let mut pending = std::mem::take(&mut self.part.drafts);
            for (key, v) in idle {
                self.judge_verdicts(key, v, t, &mut pending);
            }
            self.part.drafts = pending;
        }
        let keep_from = now.saturating_sub(self.recent_ms());
        self.recent.retain(|_, list| {
            list.retain(|d| d.to >= keep_from);
            !list.is_empty()
        });
        if self.part.bf.flagged_count() >= self.flagged_prune_at {
            self.prune_flagged();
        }
    }

    /// Forget the flagged sources (those with a brute-force or spray
    /// finding) that neither a distributed-spray record nor a run waiting
    /// to be judged holds any more. Runs when those flagged have doubled
    /// since the last pruning, and not below 65,536.
    ///
    /// Why: the flags serve one purpose, to leave a brute forcer out of a
    /// campaign judged at the end of input, and only a source with a
    /// record or in a run can be judged then. A daemon kept every source
    /// it ever flagged (an sshd on the internet meets thousands of brute
    /// forcers a day). The one difference from a hunt, which keeps them
    /// all: a source flagged, then idle past `distributed.idle_secs` and
    /// gone from every run, and back at a low rate when the daemon stops,
    /// may count as a member of a campaign judged at that stop.
    pub fn prune_flagged(&mut self) {
        let mut held: hashbrown::HashSet<NodeId> = hashbrown::HashSet::new();
        let bf = &self.part.bf;
        let mut hold = |src: NodeId| {
            if bf.is_flagged(src) {
                held.insert(src);
            }
        };
        self.part.auth.each_source(&mut hold);
        self.campaigns.each_waiting_source(&mut hold);
        let dropped = self.part.bf.retain_flagged(&held);
        self.flags_dropped += dropped as u64;
        tracing::debug!(
            "brute-force flags of {dropped} sources no record or run holds dropped, {} kept",
            held.len()
        );
        self.flagged_prune_at = self
            .part
            .bf
            .flagged_count()
            .saturating_mul(2)
            .max(FLAGGED_PRUNE_FLOOR);
    }

    /// Sources flagged now, and flags dropped so far (see
    /// [`LiveDetectors::prune_flagged`]).
    pub fn flags(&self) -> (usize, u64) {
        (self.part.bf.flagged_count(), self.flags_dropped)
    }

    fn pass_cross(&mut self, t: &Tables) {
        if let Some(x) = &mut self.exported {
            x.extend_from_slice(&self.cross);
        }
        for e in self.cross.drain(..) {
            self.campaigns.event(&e, t, self.enricher);
        }
        if !self.part.backdoor.is_empty() {
            let seen = orb_likelihood::backdoor_sources(t, self.part.backdoor.drain(..));
            for (ip, ports) in seen {
                if self.backdoor.len() < LIVE_BACKDOOR_CAP || self.backdoor.contains_key(&ip) {
                    self.backdoor.entry(ip).or_default().extend(ports);
                }
            }
        }
    }

    /// Are there findings to take? (Cheap: a live pipeline asks after
    /// every record.)
    pub fn has_drafts(&self) -> bool {
        !(self.part.drafts.is_empty()
            && self.part.floods.is_empty()
            && self.part.ongoing_drafts.is_empty()
            && self.reissued.is_empty()
            && self.campaigns.is_empty())
    }

    /// Findings made so far (enriched), taken out: reports of attacks
    /// still going on, then final findings, then earlier reports that a
    /// final finding of another id replaces.
    pub fn take_drafts(&mut self) -> Vec<Draft> {
        let mut drafts = std::mem::take(&mut self.part.ongoing_drafts);
        for d in &drafts {
            if let Some(&src) = d.srcs.first() {
                self.ongoing.insert((src, d.svc), d.finding.clone());
            }
        }
        let finals = self.part.take_drafts();
        let superseded = self.supersede(&finals);
        self.remember(&finals);
        drafts.extend(finals);
        drafts.extend(self.campaigns.take_drafts());
        drafts.extend(superseded);
        drafts.append(&mut self.reissued);
        for d in &mut drafts {
            enrich_finding(&mut d.finding, self.enricher);
        }
        drafts
    }

    /// Earlier reports of the attacks that `finals` end, marked as
    /// replaced when the final finding has another id.
    fn supersede(&mut self, finals: &[Draft]) -> Vec<Draft> {
        let mut out = Vec::new();
        if self.ongoing.is_empty() {
            return out;
        }
        for d in finals {
            let Some(&src) = d.srcs.first() else { continue };
            let Some(mut old) = self.ongoing.remove(&(src, d.svc)) else {
                continue;
            };
            if old.id == d.finding.id {
                continue;
            }
            old.reasons.push(format!(
                "superseded by finding {} ({}): the attack was reported while it went on, and judged again when it ended",
                d.finding.id, d.finding.kind
            ));
            old.severity = Some(Severity::Info);
            old.score = Some(0);
            let mut details = old.details.take().unwrap_or_else(|| serde_json::json!({}));
            if let Some(obj) = details.as_object_mut() {
                obj.insert("superseded_by".into(), d.finding.id.clone().into());
            }
            old.details = Some(details);
            out.push(Draft {
                finding: old,
                srcs: d.srcs.clone(),
                kinds: d.kinds.clone(),
                svc: d.svc,
                from: d.from,
                to: d.to,
            });
        }
        out
    }

    /// Shutdown: judge everything still open and return every finding
    /// not taken yet.
    pub fn finish(self, t: &Tables) -> Vec<Draft> {
        self.finish_parts(t).drafts
    }

    /// Shutdown, as [`finish`](Self::finish), also handing back what the
    /// cross-source stage of another process needs to judge the end of
    /// input as this one does.
    pub fn finish_parts(mut self, t: &Tables) -> LiveFinish {
        let cfg = self.part.cfg;
        // The verdicts still open are judged against the episodes still
        // open (ended now) and the recent findings alike.
        let verdicts = self.part.ids.take_idle(i64::MAX);
        let mut outcome = std::mem::replace(&mut self.part, PartitionDetectors::new(cfg))
            .finish(t, &mut self.cross);
        self.pass_cross(t);
        for (key, v) in verdicts {
            self.judge_verdicts(key, v, t, &mut outcome.drafts);
        }
        let superseded = self.supersede(&outcome.drafts);
        let mut drafts = outcome.drafts;
        drafts.extend(self.campaigns.finish(t, &outcome.flagged, self.enricher));
        drafts.extend(superseded);
        drafts.append(&mut self.reissued);
        for d in &mut drafts {
            enrich_finding(&mut d.finding, self.enricher);
        }
        let mut flagged: Vec<NodeId> = outcome.flagged.into_iter().collect();
        flagged.sort_unstable();
        LiveFinish {
            drafts,
            cross: self.take_exported(),
            flagged,
        }
    }

    /// Sources seen on router backdoor ports so far.
    pub fn backdoor(&self) -> &BTreeMap<IpAddr, BTreeSet<u16>> {
        &self.backdoor
    }

    /// Keys the per-source detectors track now (for the status line).
    pub fn tracked(&self) -> usize {
        self.part.tracked() + self.part.ids.tracked()
    }
}

/// The cross-source stage on its own: [`Campaigns`] fed the cross events
/// of every partition (stage 3 of a split Kafka topology, which receives
/// them from the stage-2 workers), its findings enriched as a
/// [`LiveDetectors`]' are.
pub struct CrossDetectors<'a> {
    campaigns: distributed::Campaigns<'a>,
    enricher: &'a Enricher,
}

impl<'a> CrossDetectors<'a> {
    pub fn new(cfg: &'a BehaviourConfig, enricher: &'a Enricher) -> Self {
        Self {
            campaigns: distributed::Campaigns::new(&cfg.distributed),
            enricher,
        }
    }

    /// One cross event; they must come in [`CrossEvent::key`] order.
    pub fn event(&mut self, e: &CrossEvent, t: &Tables) {
        self.campaigns.event(e, t, self.enricher);
    }

    /// Mark every account name and source it holds (see
    /// [`Tables::forget_unheld`]).
    pub fn mark_held(&self, m: &mut observe::HeldIds) {
        self.campaigns.mark_held(m);
    }

    /// Accounts forgotten over `max_accounts`.
    pub fn accounts_forgotten(&self) -> u64 {
        self.campaigns.accounts_forgotten()
    }

    /// Every partition's events up to `now` (ms) have been given: judge
    /// the runs quiet by then.
    pub fn advance(&mut self, now: i64, t: &Tables) {
        self.campaigns.advance(now, t, self.enricher);
    }

    /// Campaigns judged so far (enriched), taken out.
    pub fn take_drafts(&mut self) -> Vec<Draft> {
        let mut drafts = self.campaigns.take_drafts();
        for d in &mut drafts {
            enrich_finding(&mut d.finding, self.enricher);
        }
        drafts
    }

    /// End of input: judge every run; `flagged` (sources with a
    /// brute-force or spray finding in any partition) are left out.
    pub fn finish(mut self, t: &Tables, flagged: &hashbrown::HashSet<NodeId>) -> Vec<Draft> {
        let mut drafts = self.campaigns.finish(t, flagged, self.enricher);
        for d in &mut drafts {
            enrich_finding(&mut d.finding, self.enricher);
        }
        drafts
    }
}

/// Emptied cross-event batches a partition keeps for reuse: without
/// them each batch was a new vector, written into fresh pages on the
/// partition's thread and freed on the merging one (a tenth of a 1 GB
/// hunt's page faults).
const SPARE_BATCHES: usize = 8;

/// A partition's channel of cross-event batches, and where the merge
/// gives the batches it has read back (`None`: it does not).
type CrossReceiver = (
    std::sync::mpsc::Receiver<Vec<CrossEvent>>,
    Option<std::sync::mpsc::SyncSender<Vec<CrossEvent>>>,
);

/// Merge the partitions' cross events (each channel in key order) into
/// one key order, handing each to `take`; equal keys go in partition
/// order. Ends when every channel is closed and drained.
///
/// Events are handed on where they lie in their batch, and a partition
/// runs on while its events stay below the least of the others' heads
/// (one key comparison per event). That least head is found by a linear
/// scan for up to [`LINEAR_HEADS`] partitions (a hunt has one per
/// thread) and kept in a heap beyond. A binary heap entry per event and a
/// moved copy of every event were a fifth of the merging thread's time,
/// and that thread bounds the replay.
fn merge_cross(receivers: Vec<CrossReceiver>, mut take: impl FnMut(&CrossEvent)) {
    use std::cmp::Reverse;
    type Key = (i64, u8, u64, u64, u64);
    /// One partition's current batch and the key of its next event.
    struct Head {
        rx: std::sync::mpsc::Receiver<Vec<CrossEvent>>,
        back: Option<std::sync::mpsc::SyncSender<Vec<CrossEvent>>>,
        batch: Vec<CrossEvent>,
        at: usize,
        key: Key,
        done: bool,
    }
    impl Head {
        /// Make `batch[at]` the next event, receiving batches as needed
        /// (and giving each one read back to its partition, emptied);
        /// false (and done) when the channel is closed and drained.
        fn ready(&mut self) -> bool {
            while self.at >= self.batch.len() {
                match self.rx.recv() {
                    Ok(b) => {
                        let mut read = std::mem::replace(&mut self.batch, b);
                        if let Some(back) = &self.back
                            && read.capacity() > 0
                        {
                            read.clear();
                            // Full (the partition has spares enough) or
                            // closed (it has finished): dropped here.
                            let _ = back.try_send(read);
                        }
                        self.at = 0;
                    }
                    Err(_) => {
                        self.done = true;
                        return false;
                    }
                }
            }
            self.key = self.batch[self.at].key();
            true
        }
    }
    // Indexed by partition, which breaks ties.
    let mut heads: Vec<Head> = receivers
        .into_iter()
        .map(|(rx, back)| Head {
            rx,
            back,
            batch: Vec::new(),
            at: 0,
            key: (0, 0, 0, 0, 0),
            done: false,
        })
        .collect();
    for h in &mut heads {
        h.ready();
    }
    // The heads waiting, for many partitions: every live one but the
    // one running.
    let use_heap = heads.len() > LINEAR_HEADS;
    let mut waiting: std::collections::BinaryHeap<Reverse<(Key, usize)>> = if use_heap {
        heads
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.done)
            .map(|(j, h)| Reverse((h.key, j)))
            .collect()
    } else {
        std::collections::BinaryHeap::new()
    };
    loop {
        // The least head, and the least of the others: partition `i`
        // runs on until it passes that.
        let (i, bound) = if use_heap {
            let Some(Reverse((_, i))) = waiting.pop() else {
                break;
            };
            (i, waiting.peek().map(|r| r.0))
        } else {
            let least = |skip: Option<usize>| {
                (0..heads.len())
                    .filter(|&j| Some(j) != skip && !heads[j].done)
                    .map(|j| (heads[j].key, j))
                    .min()
            };
            let Some((_, i)) = least(None) else { break };
            (i, least(Some(i)))
        };
        let h = &mut heads[i];
        loop {
            take(&h.batch[h.at]);
            h.at += 1;
            if !h.ready() {
                break;
            }
            if let Some(b) = bound
                && (h.key, i) > b
            {
                if use_heap {
                    waiting.push(Reverse((h.key, i)));
                }
                break;
            }
        }
    }
}

/// Up to this many partitions, [`merge_cross`] finds the least head by a
/// linear scan; beyond, in a heap.
const LINEAR_HEADS: usize = 8;

/// Add the source's ASN/country to a finding's details and reasons.
fn enrich_finding(f: &mut Finding, e: &Enricher) {
    let Some(ip) = f.src_ip else { return };
    let Some(info) = e.lookup(ip) else { return };
    let mut details = f.details.take().unwrap_or_else(|| serde_json::json!({}));
    if let Some(obj) = details.as_object_mut() {
        obj.insert(
            "enrichment".into(),
            serde_json::to_value(&info).unwrap_or_default(),
        );
    }
    f.details = Some(details);
    if let Some(r) = info.reason() {
        f.reasons.push(r);
    }
}

/// Pick the earliest `cap` evidence references for every draft from one
/// partition's observations, in any order, in one pass: only the draft
/// sources the partition owns are looked for. The partitions' picks are
/// merged by the caller.
fn pick_evidence(
    stream: impl Iterator<Item = Obs>,
    drafts: &[Draft],
    part: Part,
    t: &Tables,
    cap: usize,
) -> PartEvidence {
    // Drafts of each source as linked lists in one vector (a campaign can
    // have a million sources: no allocation per source).
    const END: u32 = u32::MAX;
    let mut head: hashbrown::HashMap<NodeId, u32> = hashbrown::HashMap::new();
    let mut links: Vec<(u32, u32)> = Vec::new();
    for (i, d) in drafts.iter().enumerate() {
        for s in d.srcs.iter().filter(|s| part.owns(**s, t)) {
            let next = head.insert(*s, links.len() as u32).unwrap_or(END);
            links.push((i as u32, next));
        }
    }
    let mut out: PartEvidence = vec![(Vec::new(), 0); drafts.len()];
    if head.is_empty() {
        return out;
    }
    for o in stream {
        let Some(&first) = head.get(&o.src) else {
            continue;
        };
        let mut at = first;
        while at != END {
            let (i, next) = links[at as usize];
            at = next;
            let d = &drafts[i as usize];
            if o.time < d.from
                || o.time > d.to
                || !d.kinds.contains(&o.kind)
                || d.svc.is_some_and(|s| s != o.svc)
            {
                continue;
            }
            let (ev, total) = &mut out[i as usize];
            *total += 1;
            let (input, line) = observe::evidence_parts(o.evidence);
            ev.push((input, line, o.time));
            // Keep the earliest `cap` (by time, then place in the input),
            // trimming in batches.
            if cap > 0 && ev.len() >= 2 * cap.max(8) {
                ev.sort_unstable_by_key(|(input, line, time)| (*time, *input, *line));
                ev.truncate(cap);
            }
        }
    }
    out
}

/// 2000-01-01T00:00:00Z in Unix milliseconds: the epoch of the compact
/// second counters that keep per-key state small.
const EPOCH_2000_MS: i64 = 946_684_800_000;

/// Event time (ms) as whole seconds since 2000 (clamped to `u32`).
pub(crate) fn secs(ms: i64) -> u32 {
    ((ms - EPOCH_2000_MS).div_euclid(1000)).clamp(0, i64::from(u32::MAX)) as u32
}

/// Back from [`secs`] to milliseconds (start of that second).
pub(crate) fn ms_of(secs: u32) -> i64 {
    EPOCH_2000_MS + i64::from(secs) * 1000
}

/// Millisecond time to a timestamp.
pub(crate) fn ts(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(ms).ok()
}

/// "4 minutes", "3 hours", "12 days".
pub(crate) fn human_span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (n, unit) = if s < 120 {
        (s, "second")
    } else if s < 2 * 3600 {
        (s / 60, "minute")
    } else if s < 2 * 86_400 {
        (s / 3600, "hour")
    } else {
        (s / 86_400, "day")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// A behaviour finding with the fields every detector fills.
pub(crate) fn new_finding(
    kind: FindingKind,
    id_parts: &[&str],
    first: i64,
    last: i64,
    count: u64,
    src: Option<IpAddr>,
) -> Finding {
    let mut parts = vec![kind.as_str()];
    parts.extend_from_slice(id_parts);
    Finding {
        id: crate::finding::fnv1a(&parts),
        kind,
        first_seen: ts(first),
        last_seen: ts(last),
        count,
        src_ip: src,
        dst_ip: None,
        ioc: None,
        targets: Vec::new(),
        accounts: Vec::new(),
        severity: Some(Severity::Medium),
        score: Some(50),
        reasons: Vec::new(),
        sources: Vec::new(),
        details: None,
        evidence: Vec::new(),
        evidence_total: 0,
    }
}

/// Severity from a 0–100 score.
pub(crate) fn severity_of(score: u8) -> Severity {
    match score {
        0..=29 => Severity::Low,
        30..=59 => Severity::Medium,
        60..=84 => Severity::High,
        _ => Severity::Critical,
    }
}

/// Small sorted, de-duplicated list of strings (at most `cap`).
pub(crate) fn capped(names: impl IntoIterator<Item = String>, cap: usize) -> Vec<String> {
    names
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(cap)
        .collect()
}

/// Is a detector's table of `len` entries at its bound `cap` (at least
/// 16), so that a new key must first make room (see [`shed_for_new_key`])?
/// Cheap, so that the hot path asks it before looking the key up.
pub(crate) fn at_cap(len: usize, cap: u64) -> bool {
    len >= cap.max(16) as usize
}

/// Remove from `map` its `excess` lowest ranked entries and return them
/// in rank order. The rank is what decides (the last time active, a
/// sum's size), then what tells entries apart without ids (an address's
/// key), so the same entries go whatever ids the partitioning or a merge
/// gave them.
pub(crate) fn remove_least_ranked<K, V, R>(
    map: &mut hashbrown::HashMap<K, V>,
    excess: usize,
    rank: impl Fn(&K, &V) -> R,
) -> Vec<(K, V)>
where
    K: Copy + Eq + std::hash::Hash,
    R: Ord,
{
    let ranked = map.iter().map(|(k, v)| (rank(k, v), *k)).collect();
    lowest_ranked(ranked, excess)
        .into_iter()
        .filter_map(|k| map.remove(&k).map(|v| (k, v)))
        .collect()
}

/// The keys of the `n` lowest ranks of `ranked`, lowest first (a
/// partial selection, then a sort of those only).
pub(crate) fn lowest_ranked<R: Ord, K>(mut ranked: Vec<(R, K)>, n: usize) -> Vec<K> {
    let n = n.min(ranked.len());
    if n == 0 {
        return Vec::new();
    }
    ranked.select_nth_unstable_by(n - 1, |a, b| a.0.cmp(&b.0));
    ranked.truncate(n);
    ranked.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    ranked.into_iter().map(|(_, k)| k).collect()
}

/// A new `key` is about to enter `map`: at its bound `cap` (see
/// [`at_cap`]) and without `key` already, its lowest ranked quarter
/// leaves now, returned in rank order for the caller to judge as if
/// idle, or to forget; otherwise nothing leaves. Counted in `shed` and
/// logged the first time, with `warning(cap, excess)`, so that a bound
/// reached is never silent.
///
/// Why a quarter: ranking the table costs a pass over it, and a flood
/// of new keys would pay it at every key if only one left. Why here: it
/// is the guard every bounded table asks before an insert, held once;
/// the length is compared before the key is looked up, so below the
/// bound an insert pays no lookup for it.
pub(crate) fn shed_for_new_key<K, V, R>(
    map: &mut hashbrown::HashMap<K, V>,
    key: &K,
    cap: u64,
    rank: impl Fn(&K, &V) -> R,
    shed: &mut u64,
    warning: impl FnOnce(usize, usize) -> String,
) -> Vec<(K, V)>
where
    K: Copy + Eq + std::hash::Hash,
    R: Ord,
{
    if !at_cap(map.len(), cap) || map.contains_key(key) {
        return Vec::new();
    }
    let excess = excess_over_cap(map.len(), cap, shed, warning);
    remove_least_ranked(map, excess, rank)
}

/// How many of `len` entries must leave for a table at its bound `cap`
/// to keep three quarters of it (0 below the bound), counted in `shed`
/// and logged the first time: the part of [`shed_for_new_key`] that does
/// not depend on the table's kind (a key table sheds with
/// [`key_table::KeyTable::remove_least_ranked`]).
pub(crate) fn excess_over_cap(
    len: usize,
    cap: u64,
    shed: &mut u64,
    warning: impl FnOnce(usize, usize) -> String,
) -> usize {
    if !at_cap(len, cap) {
        return 0;
    }
    let cap = cap.max(16) as usize;
    let excess = len - (cap - cap / 4);
    if *shed == 0 {
        tracing::warn!("{}", warning(cap, excess));
    }
    *shed += excess as u64;
    excess
}

/// A new (source, service) episode `key` is about to open with `cap`
/// open in `open`: the least recently active quarter leaves now (by
/// `last` time, then the address's key and the service, never an id),
/// for the caller to judge as if idle. See [`shed_for_new_key`];
/// `detector` names the configuration section in the warning. Shared by
/// `brute_force` and `login_flood`, whose episodes are keyed
/// `source << 16 | service`.
pub(crate) fn end_least_recent_episodes<E>(
    open: &mut hashbrown::HashMap<u128, E>,
    key: u128,
    cap: u64,
    last: impl Fn(&E) -> i64,
    t: &Tables,
    ended_early: &mut u64,
    detector: &str,
) -> Vec<(u128, E)> {
    shed_for_new_key(
        open,
        &key,
        cap,
        |&k, e| (last(e), t.ip_key((k >> 16) as NodeId), k as u16),
        ended_early,
        |cap, excess| {
            format!(
                "more than {cap} {detector} episodes open at once ({detector}.max_open): the {excess} least recently active end now instead of after {detector}.idle_secs, and so on each time the limit is passed"
            )
        },
    )
}

/// Remove from `map` the entries `done` says are finished (idle past the
/// window, or everything at the end of input) and return them in key
/// order, so that detectors judge them, and report, in the same order on
/// every run.
pub(crate) fn take_where<K, V>(
    map: &mut hashbrown::HashMap<K, V>,
    done: impl Fn(&V) -> bool,
) -> Vec<(K, V)>
where
    K: Copy + Ord + std::hash::Hash,
{
    let mut keys: Vec<K> = map
        .iter()
        .filter(|(_, v)| done(v))
        .map(|(k, _)| *k)
        .collect();
    keys.sort_unstable();
    keys.into_iter()
        .filter_map(|k| map.remove(&k).map(|v| (k, v)))
        .collect()
}

pub(crate) fn mix(x: u64) -> u64 {
    let mut h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^ (h >> 32)
}

/// A linear-counting sketch of distinct values in `64 × W` bits (W = 4:
/// 32 bytes, ±10 % up to about 500 values). It only counts beyond the
/// exact part of [`SmallDistinct`], which covers every default threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistinctBits<const W: usize>([u64; W]);

impl<const W: usize> Default for DistinctBits<W> {
    fn default() -> Self {
        Self([0; W])
    }
}

/// The 256-bit sketch.
pub type Distinct256 = DistinctBits<4>;

/// Distinct values counted exactly up to `N`, then by a [`Distinct256`]
/// sketch: exact at every default threshold, bounded beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmallDistinct<T: Copy + Eq + Default + Into<u64>, const N: usize, const W: usize = 4> {
    exact: [T; N],
    len: u8,
    sketch: DistinctBits<W>,
}

impl<T: Copy + Eq + Default + Into<u64>, const N: usize, const W: usize> Default
    for SmallDistinct<T, N, W>
{
    fn default() -> Self {
        Self {
            exact: [T::default(); N],
            len: 0,
            sketch: DistinctBits::default(),
        }
    }
}

impl<T: Copy + Eq + Default + Into<u64>, const N: usize, const W: usize> SmallDistinct<T, N, W> {
    pub fn insert(&mut self, v: T) {
        self.insert_keyed(v, v.into());
    }
    /// Insert `v`, counted in the sketch by `key`: for interned names, a
    /// hash of the name, because ids depend on the order in which units
    /// were merged and the estimate must not.
    pub fn insert_keyed(&mut self, v: T, key: u64) {
        self.sketch.insert(key);
        let n = self.len as usize;
        if n < N && !self.exact[..n].contains(&v) {
            self.exact[n] = v;
            self.len += 1;
        }
    }
    /// The first values seen (up to `N`).
    pub fn first(&self) -> &[T] {
        &self.exact[..self.len as usize]
    }
    pub fn contains_exact(&self, v: T) -> bool {
        self.first().contains(&v)
    }
    /// Is [`count`](Self::count) exact (fewer than `N` distinct values)?
    pub fn is_exact(&self) -> bool {
        (self.len as usize) < N
    }
    /// "17", or "about 1000" once the sketch is in use.
    pub fn words(&self) -> String {
        if self.is_exact() {
            self.count().to_string()
        } else {
            format!("about {}", self.count())
        }
    }
    /// Distinct values seen: exact below `N`, estimated beyond.
    pub fn count(&self) -> u32 {
        let n = self.len as u32;
        if (n as usize) < N {
            n
        } else {
            self.sketch.estimate().max(n)
        }
    }
}

impl<const W: usize> DistinctBits<W> {
    pub fn insert(&mut self, v: u64) -> bool {
        let h = mix(v) as usize % (64 * W);
        let (w, b) = (h >> 6, 1u64 << (h & 63));
        let new = self.0[w] & b == 0;
        self.0[w] |= b;
        new
    }
    /// Linear-counting estimate of the distinct values inserted.
    pub fn estimate(&self) -> u32 {
        let set: u32 = self.0.iter().map(|w| w.count_ones()).sum();
        let m = (64 * W) as f64;
        if f64::from(set) >= m {
            return (m * m.ln()).round() as u32; // saturated
        }
        (m * (m / (m - f64::from(set))).ln()).round() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every counter of `ReplayLimits` has one entry, under its own name,
    /// and a note that says its count, its configuration key and the value
    /// in force; a counter at zero says nothing.
    #[test]
    fn every_limit_reached_is_named_once_and_said_with_its_bound() {
        let mut cfg = BehaviourConfig::default();
        cfg.ids_verdict.max_keys = 77;
        let limits = ReplayLimits {
            records_ended_early: 1,
            accounts_forgotten: 2,
            scan_sources_ended_early: 3,
            brute_force_ended_early: 4,
            login_floods_ended_early: 5,
            exfil_hosts_forgotten: 6,
            ids_keys_ended_early: 7,
            explicit_sprays_ended_early: 0,
            failure_clusters_forgotten: 8,
        };
        let entries = limits.entries(&cfg);
        let serialized = serde_json::to_value(limits).expect("json");
        let fields = serialized.as_object().expect("an object");
        assert_eq!(fields.len(), entries.len(), "one entry per counter");
        for e in &entries {
            assert_eq!(
                fields.get(e.name).and_then(|v| v.as_u64()),
                Some(e.count),
                "{} reads its own counter",
                e.name
            );
            assert!(e.help.ends_with('.'), "{}", e.help);
        }
        let notes = limits.notes(&cfg);
        assert_eq!(notes.len(), 8, "the counter at zero says nothing");
        for (note, n) in notes.iter().zip([1, 2, 3, 4, 5, 6, 7, 8]) {
            assert!(note.starts_with(&format!("{n} ")), "{note}");
        }
        assert!(
            notes[6].contains("more than ids_verdict.max_keys (77) were kept"),
            "{}",
            notes[6]
        );
        assert!(notes[0].contains("more than distributed.max_records ("));
    }

    proptest::proptest! {
        /// The merge hands on every event once, in key order, equal keys
        /// in partition order, whatever the batch sizes and however many
        /// partitions (some empty) there are: up to `LINEAR_HEADS` and
        /// beyond.
        #[test]
        fn cross_events_merge_in_key_then_partition_order(
            parts in proptest::collection::vec(
                (proptest::collection::vec((0i64..6, 0u64..4, proptest::bool::ANY), 0..40), 1usize..7),
                1..12,
            ),
        ) {
            let mut expected = Vec::new();
            let mut receivers = Vec::new();
            let mut senders = Vec::new();
            let mut spares = Vec::new();
            for (p, (events, batch)) in parts.iter().enumerate() {
                let mut events: Vec<CrossEvent> = events
                    .iter()
                    .map(|&(time, src, idle)| {
                        if idle {
                            CrossEvent::Idle { at: time, src, svc: p as u16, source: Default::default() }
                        } else {
                            CrossEvent::Auth {
                                time,
                                evidence: src,
                                kind: ObsKind::AuthFailure,
                                src,
                                svc: 0,
                                user: p as u32,
                                brute: false,
                                first_try: false,
                            }
                        }
                    })
                    .collect();
                events.sort_by_key(CrossEvent::key);
                for e in &events {
                    expected.push((e.key(), p));
                }
                let (tx, rx) = std::sync::mpsc::channel();
                for chunk in events.chunks(*batch) {
                    tx.send(chunk.to_vec()).unwrap();
                }
                // An empty batch on the way must not end the partition.
                tx.send(Vec::new()).unwrap();
                // Every other partition takes its read batches back, as a
                // hunt's do.
                let back = if p % 2 == 0 {
                    let (back, spare) = std::sync::mpsc::sync_channel(SPARE_BATCHES);
                    spares.push((p, events.chunks(*batch).count(), spare));
                    Some(back)
                } else {
                    None
                };
                receivers.push((rx, back));
                senders.push(tx);
            }
            drop(senders);
            expected.sort();
            let mut got = Vec::new();
            merge_cross(receivers, |e| {
                let p = match *e {
                    CrossEvent::Idle { svc, .. } => usize::from(svc),
                    CrossEvent::Auth { user, .. } => user as usize,
                };
                got.push((e.key(), p));
            });
            proptest::prop_assert_eq!(got, expected);
            // Each batch read comes back emptied, with its memory, once
            // the next one arrives (here the empty batch at the end, which
            // has no memory to give back), up to the spares a partition
            // keeps.
            for (p, batches, spare) in spares {
                let back: Vec<Vec<CrossEvent>> = spare.try_iter().collect();
                proptest::prop_assert!(back.iter().all(|b| b.is_empty() && b.capacity() > 0));
                proptest::prop_assert_eq!(back.len(), batches.min(SPARE_BATCHES), "partition {}", p);
            }
        }
    }

    /// Half the observation budget in flight, between 8 and 256 batches
    /// per partition; no budget takes the most.
    #[test]
    fn cross_batches_follow_the_observation_budget() {
        assert_eq!(cross_batches_in_flight(4_000_000, 2), 244);
        assert_eq!(cross_batches_in_flight(4_000_000, 1), 256);
        assert_eq!(cross_batches_in_flight(1_000_000, 2), 61);
        assert_eq!(cross_batches_in_flight(10_000, 2), 8);
        assert_eq!(cross_batches_in_flight(0, 2), 256);
        assert_eq!(cross_batches_in_flight(4_000_000, 0), 256);
    }

    #[test]
    fn state_sizes_are_bounded() {
        // Key + value of every per-key map must stay within 224 bytes
        // (200 before ids became 8-byte addresses, see `NodeId`).
        for (name, size) in [
            ("port_scan", port_scan::STATE_BYTES),
            ("port_scan (first tier)", port_scan::SINGLE_BYTES),
            ("brute_force", brute_force::STATE_BYTES),
            (
                "success_after_failures",
                success_after_failures::STATE_BYTES,
            ),
            ("distributed", distributed::STATE_BYTES),
            ("exfiltration", exfiltration::STATE_BYTES),
            ("login_flood", login_flood::STATE_BYTES),
            ("login_flood (per host)", login_flood::HOST_BYTES),
            ("explicit_spray", explicit_spray::STATE_BYTES),
        ] {
            assert!(size <= 224, "{name} state is {size} bytes");
        }
    }

    #[test]
    fn distinct_sketch_is_close() {
        let mut d = Distinct256::default();
        for i in 0..100 {
            d.insert(i);
        }
        let e = d.estimate();
        assert!((85..=115).contains(&e), "{e}");
        let mut d = Distinct256::default();
        for i in 0..15 {
            d.insert(i * 7919);
        }
        assert!((14..=16).contains(&d.estimate()));
    }

    #[test]
    fn config_overrides_part() {
        let c = BehaviourConfig::from_toml("[port_scan]\nmin_ports = 50\n").unwrap();
        assert_eq!(c.port_scan.min_ports, 50);
        assert_eq!(c.brute_force, BruteForceConfig::default());
        assert!(BehaviourConfig::from_toml("[port_scan]\nmin_prots = 5\n").is_err());
    }
}
