//! A deterministic simulator of a low-and-slow password spray spread over
//! thousands of relay routers, mixed with ordinary background, to measure
//! `distributed_bruteforce` where no labelled real capture exists.
//!
//! Everything comes from one seed (SplitMix64), so a test and a benchmark
//! see the same month. The month holds, against one VPN portal:
//! - **users**: 300 of the 400 accounts log in from a home address most
//!   days; 3 % of logins start with one or two typos;
//! - **background scanners**: 40 new addresses a day try default names
//!   (`root`, `admin`…) in a burst of 1–30 attempts; a fifth come back
//!   once on a later day;
//! - **persistent scanners** (hard negatives): `persistent_scanners`
//!   addresses (default 60) that come back on 5–20 days with one or two
//!   default-name guesses each time — low-rate and persistent, but not the
//!   campaign;
//! - **the campaign**: `campaign_sources` routers (default 2,000) in a few
//!   hundred /24s of sixty /16s, each active for 7–30 days and, on 70 % of
//!   those days, trying 1 or 2 accounts (80 % real account names, 20 %
//!   guesses), hours apart: at most 2 attempts a day.
//!
//! Events go through [`ObsBuffer::observe`], the path decoded logs take.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use jiff::Timestamp;
use orbwatch_event::{AuthOutcome, Event, EventKind};

use super::observe::{ObsBuffer, evidence_ref};
use crate::direction::InternalNets;

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct SprayScenario {
    pub seed: u64,
    pub days: u32,
    pub campaign_sources: u32,
    pub accounts: u32,
    pub users: u32,
    pub scanners_per_day: u32,
    pub persistent_scanners: u32,
}

impl Default for SprayScenario {
    fn default() -> Self {
        Self {
            seed: 0x0b5e_55ed,
            days: 30,
            campaign_sources: 2000,
            accounts: 400,
            users: 300,
            scanners_per_day: 40,
            persistent_scanners: 60,
        }
    }
}

/// The simulated month.
pub struct SprayMonth {
    pub buffer: ObsBuffer,
    /// The campaign's sources (the ground truth).
    pub campaign: BTreeSet<IpAddr>,
    /// Auth events generated, by role.
    pub user_events: u64,
    pub scanner_events: u64,
    pub campaign_events: u64,
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// A routable-looking public IPv4 address.
    fn public_ip(&mut self) -> Ipv4Addr {
        loop {
            let a = (self.next() >> 32) as u32;
            let o = a.to_be_bytes();
            if matches!(
                o[0],
                0 | 10 | 127 | 100 | 169 | 172 | 192 | 198 | 203 | 224..=255
            ) {
                continue;
            }
            return Ipv4Addr::from(a);
        }
    }
}

const DEFAULT_NAMES: [&str; 12] = [
    "root",
    "admin",
    "test",
    "guest",
    "user",
    "vpn",
    "support",
    "oracle",
    "ftp",
    "administrator",
    "ubuntu",
    "info",
];

fn auth(t: i64, src: IpAddr, user: &str, ok: bool) -> Event {
    let mut ev = Event::new(EventKind::Auth);
    ev.time = Timestamp::from_second(t).ok();
    ev.src_ip = Some(src);
    ev.user = Some(user.to_string());
    ev.service = Some("vpn".to_string());
    ev.auth = Some(if ok {
        AuthOutcome::Success
    } else {
        AuthOutcome::Failure
    });
    ev
}

/// Generate the month described by `s`.
pub fn simulate(s: &SprayScenario) -> SprayMonth {
    let mut rng = Rng(s.seed);
    let t0: i64 = 1_709_251_200; // 2024-03-01T00:00:00Z
    let internal = InternalNets::default();
    let mut events: Vec<(i64, Event)> = Vec::new();
    let accounts: Vec<String> = (0..s.accounts).map(|i| format!("user{i:04}")).collect();
    let mut used: BTreeSet<IpAddr> = BTreeSet::new();
    let fresh = |rng: &mut Rng, used: &mut BTreeSet<IpAddr>| loop {
        let ip = IpAddr::V4(rng.public_ip());
        if used.insert(ip) {
            return ip;
        }
    };
    let (mut user_events, mut scanner_events, mut campaign_events) = (0u64, 0u64, 0u64);

    // Users.
    let homes: Vec<IpAddr> = (0..s.users).map(|_| fresh(&mut rng, &mut used)).collect();
    for day in 0..i64::from(s.days) {
        for (u, home) in homes.iter().enumerate() {
            if !rng.chance(0.75) {
                continue;
            }
            let logins = 1 + rng.below(3);
            for _ in 0..logins {
                let mut t = t0 + day * 86_400 + 7 * 3600 + rng.below(12 * 3600) as i64;
                if rng.chance(0.03) {
                    for _ in 0..1 + rng.below(2) {
                        events.push((t, auth(t, *home, &accounts[u], false)));
                        user_events += 1;
                        t += 5 + rng.below(20) as i64;
                    }
                }
                events.push((t, auth(t, *home, &accounts[u], true)));
                user_events += 1;
            }
        }
    }
    // Background scanners.
    let mut returning: Vec<(i64, IpAddr)> = Vec::new();
    for day in 0..i64::from(s.days) {
        let mut today: Vec<IpAddr> = (0..s.scanners_per_day)
            .map(|_| fresh(&mut rng, &mut used))
            .collect();
        today.extend(
            returning
                .iter()
                .filter(|(d, _)| *d == day)
                .map(|(_, ip)| *ip),
        );
        for ip in today {
            let n = 1 + rng.below(30);
            let mut t = t0 + day * 86_400 + rng.below(86_000) as i64;
            for _ in 0..n {
                let name = DEFAULT_NAMES[rng.below(DEFAULT_NAMES.len() as u64) as usize];
                events.push((t, auth(t, ip, name, false)));
                scanner_events += 1;
                t += 1 + rng.below(20) as i64;
            }
            if rng.chance(0.2) {
                returning.push((day + 1 + rng.below(10) as i64, ip));
            }
        }
    }
    // Persistent default-name scanners.
    for _ in 0..s.persistent_scanners {
        let ip = fresh(&mut rng, &mut used);
        let active = 5 + rng.below(16);
        for _ in 0..active {
            let day = rng.below(u64::from(s.days)) as i64;
            let mut t = t0 + day * 86_400 + rng.below(20 * 3600) as i64;
            for _ in 0..1 + rng.below(2) {
                let name = DEFAULT_NAMES[rng.below(DEFAULT_NAMES.len() as u64) as usize];
                events.push((t, auth(t, ip, name, false)));
                scanner_events += 1;
                t += 60 + rng.below(3000) as i64;
            }
        }
    }
    // The campaign: routers clustered in ISP /16s and /24s.
    let sixteens: Vec<[u8; 2]> = (0..60)
        .map(|_| {
            let o = rng.public_ip().octets();
            [o[0], o[1]]
        })
        .collect();
    let mut campaign = BTreeSet::new();
    while campaign.len() < s.campaign_sources as usize {
        let p = sixteens[rng.below(sixteens.len() as u64) as usize];
        // A few hundred /24s overall: each /16 uses 8 of its /24s.
        let c = (rng.below(8) * 29) as u8;
        let ip = IpAddr::V4(Ipv4Addr::new(p[0], p[1], c, 1 + rng.below(254) as u8));
        if used.insert(ip) {
            campaign.insert(ip);
        }
    }
    for ip in &campaign {
        let len = 7 + rng.below(24) as i64;
        let start = rng.below((i64::from(s.days) - len).max(1) as u64) as i64;
        for day in start..(start + len).min(i64::from(s.days)) {
            if !rng.chance(0.7) {
                continue;
            }
            let tries = 1 + rng.below(2);
            let mut t = t0 + day * 86_400 + rng.below(6 * 3600) as i64;
            for _ in 0..tries {
                let name = if rng.chance(0.8) {
                    accounts[rng.below(accounts.len() as u64) as usize].clone()
                } else {
                    format!("guess{:03}", rng.below(200))
                };
                events.push((t, auth(t, *ip, &name, false)));
                campaign_events += 1;
                t += 3 * 3600 + rng.below(8 * 3600) as i64;
            }
        }
    }
    events.sort_by_key(|(t, _)| *t);
    let mut buffer = ObsBuffer::new();
    for (i, (_, ev)) in events.iter().enumerate() {
        buffer.observe(ev, evidence_ref(0, i as u64 + 1), &internal, &[]);
    }
    SprayMonth {
        buffer,
        campaign,
        user_events,
        scanner_events,
        campaign_events,
    }
}
