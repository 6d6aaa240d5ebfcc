//! The distributed spray simulator at default thresholds: the campaign of
//! 2,000 sources (each at most 2 attempts a day for a month) must be found
//! with recall ≥ 95 % and ≤ 1 % false sources.

use orbwatch_detect::FindingKind;
use orbwatch_detect::behaviour::simulator::{SprayScenario, simulate};
use orbwatch_detect::behaviour::{BehaviourConfig, Engine};
use orbwatch_detect::enrich::Enricher;

#[test]
fn campaign_is_found_with_high_precision_and_recall() {
    let mut month = simulate(&SprayScenario::default());
    println!(
        "events: users {}, scanners {}, campaign {} ({} sources)",
        month.user_events,
        month.scanner_events,
        month.campaign_events,
        month.campaign.len()
    );
    let cfg = BehaviourConfig::default();
    let enricher = Enricher::none();
    let engine = Engine {
        cfg: &cfg,
        enricher: &enricher,
        partitions: 2,
    };
    let findings = engine.run(&mut month.buffer);
    let dist: Vec<_> = findings
        .iter()
        .filter(|f| f.finding.kind == FindingKind::DistributedBruteforce)
        .collect();
    assert_eq!(dist.len(), 1, "one campaign finding");
    let members = &dist[0].finding.sources;
    let tp = members
        .iter()
        .filter(|s| month.campaign.contains(s))
        .count();
    let fp = members.len() - tp;
    let recall = tp as f64 / month.campaign.len() as f64;
    let false_share = fp as f64 / members.len().max(1) as f64;
    println!(
        "distributed_bruteforce: {} members, {tp} true, {fp} false; recall {:.2} %, precision {:.2} %",
        members.len(),
        recall * 100.0,
        (1.0 - false_share) * 100.0
    );
    for r in &dist[0].finding.reasons {
        println!("  - {r}");
    }
    let other: Vec<String> = findings
        .iter()
        .filter(|f| f.finding.kind != FindingKind::DistributedBruteforce)
        .map(|f| f.finding.kind.to_string())
        .collect();
    println!(
        "other findings: {} ({:?}…)",
        other.len(),
        other.iter().take(5).collect::<Vec<_>>()
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(false_share <= 0.01, "false sources {false_share}");
}

#[test]
fn simulator_is_deterministic() {
    let a = simulate(&SprayScenario::default());
    let b = simulate(&SprayScenario::default());
    assert_eq!(a.buffer.obs, b.buffer.obs);
    assert_eq!(a.campaign, b.campaign);
}
