//! Run the distributed spray simulator at default thresholds and print
//! precision, recall, replay time and peak RSS.
//!
//! `cargo run --release -p orbwatch-detect --example spray_simulation [SOURCES] [DAYS] [SEED]`

use std::time::Instant;

use orbwatch_detect::FindingKind;
use orbwatch_detect::behaviour::simulator::{SprayScenario, simulate};
use orbwatch_detect::behaviour::{BehaviourConfig, Engine};
use orbwatch_detect::enrich::Enricher;

fn main() {
    let arg = |i: usize| std::env::args().nth(i).and_then(|a| a.parse::<u64>().ok());
    let mut s = SprayScenario::default();
    if let Some(n) = arg(1) {
        s.campaign_sources = n as u32;
    }
    if let Some(d) = arg(2) {
        s.days = d as u32;
    }
    if let Some(seed) = arg(3) {
        s.seed = seed;
    }
    let t = Instant::now();
    let mut m = simulate(&s);
    let gen_time = t.elapsed();
    // Every member listed (the default lists the 10,000 most active), so
    // recall is measured over all of them.
    let mut cfg = BehaviourConfig::default();
    cfg.distributed.max_listed_sources = 0;
    let e = Enricher::none();
    let t = Instant::now();
    let f = Engine {
        cfg: &cfg,
        enricher: &e,
        partitions: 2,
    }
    .run(&mut m.buffer);
    let run_time = t.elapsed();
    let members: Vec<_> = f
        .iter()
        .filter(|x| x.finding.kind == FindingKind::DistributedBruteforce)
        .flat_map(|x| x.finding.sources.iter().copied())
        .collect();
    let tp = members.iter().filter(|s| m.campaign.contains(s)).count();
    println!(
        "scenario: {} campaign sources, {} days, seed {:#x}; events: users {}, scanners {}, campaign {}",
        s.campaign_sources, s.days, s.seed, m.user_events, m.scanner_events, m.campaign_events
    );
    println!(
        "members {}, true {tp}, false {}; recall {:.2} %, precision {:.2} %",
        members.len(),
        members.len() - tp,
        100.0 * tp as f64 / m.campaign.len().max(1) as f64,
        100.0 * tp as f64 / members.len().max(1) as f64
    );
    println!("generate {gen_time:.2?}, detect {run_time:.2?}");
}
