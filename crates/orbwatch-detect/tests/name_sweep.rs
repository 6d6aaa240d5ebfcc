//! A live pipeline gives back the account names no detector holds
//! (`Tables::forget_names`, with the holders' `mark_names`). A holder
//! that forgot to mark its names would, after the sweep, hold ids that
//! mean other names: this test hands every id given back to a junk name
//! at once, so such a holder shows a junk account, or counts one, and
//! its findings differ from a run that never gives names back.
//!
//! Also here: the limits that bound a daemon's memory under a flood
//! (`max_records`, `max_accounts`) are counted and said when reached.

use orbwatch_detect::behaviour::observe::{ObsKind, Tables, is_account_kind};
use orbwatch_detect::behaviour::simulator::{SprayScenario, simulate};
use orbwatch_detect::behaviour::{BehaviourConfig, LiveDetectors};
use orbwatch_detect::enrich::Enricher;
use orbwatch_detect::finding::Finding;

/// Observations with their account as a name (as they come from the
/// decoder: interned into the tables when they arrive).
struct Named {
    o: orbwatch_detect::behaviour::observe::Obs,
    account: Option<String>,
}

const STEP: usize = 200;

fn run(cfg: &BehaviourConfig, base: &Tables, obs: &[Named], sweep: bool) -> (Vec<String>, u64) {
    let enricher = Enricher::none();
    let mut t = base.clone();
    let mut d = LiveDetectors::new(cfg, &enricher);
    let mut found: Vec<Finding> = Vec::new();
    let mut given_back = 0u64;
    let mut junk = 0u64;
    for (i, n) in obs.iter().enumerate() {
        let mut o = n.o;
        if let Some(a) = &n.account {
            o.aux = u64::from(t.names.intern_str(a));
        }
        d.observe(&o, &t);
        if i % STEP == STEP - 1 {
            d.advance(o.time, &t);
            found.extend(d.take_drafts().into_iter().map(|d| d.finding));
        }
        // After every observation: a name held for one observation's
        // time (the account of a source's last failure, which starts its
        // next brute-force episode) is given back if unmarked.
        {
            if sweep {
                let mut keep = t.name_marks();
                d.mark_names(&mut keep);
                let freed = t.forget_names(keep);
                given_back += freed as u64;
                // Every id given back now means a junk name.
                for _ in 0..freed {
                    junk += 1;
                    t.names.intern_str(&format!("junk-{junk}"));
                }
            }
        }
    }
    found.extend(d.take_drafts().into_iter().map(|d| d.finding));
    found.extend(d.finish(&t).into_iter().map(|d| d.finding));
    let mut shown: Vec<String> = found
        .iter()
        .map(|f| serde_json::to_string(f).expect("a finding serializes"))
        .collect();
    shown.sort();
    (shown, given_back)
}

#[test]
fn names_given_back_mid_run_change_no_finding() {
    let month = simulate(&SprayScenario {
        days: 10,
        campaign_sources: 300,
        accounts: 150,
        users: 60,
        scanners_per_day: 12,
        persistent_scanners: 15,
        ..Default::default()
    });
    let mut buffer = month.buffer;
    buffer.sort();
    let t = &buffer.tables;
    // Explicit-credential logons (Windows 4648) beside the failures of
    // every fifth source, for the explicit-spray detector's accounts.
    let mut obs: Vec<Named> = Vec::new();
    for o in &buffer.obs {
        let account = is_account_kind(o.kind).then(|| t.name(o.aux as u32).to_string());
        obs.push(Named { o: *o, account });
        if o.kind == ObsKind::AuthFailure && o.src % 5 == 0 {
            let mut x = *o;
            x.kind = ObsKind::AuthAttempt;
            let account = Some(t.name(o.aux as u32).to_string());
            obs.push(Named { o: x, account });
        }
    }
    // A brute forcer and an explicit-credential sprayer that try a new
    // name with every attempt, in bursts two hours apart (past the
    // brute-force detector's hour of idleness): their episodes are then
    // the only holders of most of their names (the distributed detector
    // forgets names tried once, over `max_accounts`), and each new
    // episode starts from the previous burst's last name.
    let template = buffer
        .obs
        .iter()
        .find(|o| o.kind == ObsKind::AuthFailure)
        .copied()
        .expect("the simulator makes failures");
    let start = buffer.obs[0].time;
    let mut unique = 0u64;
    for burst in 0..20i64 {
        for k in 0..12i64 {
            for (src, kind) in [
                (0xc633_6409u64, ObsKind::AuthFailure),
                (0xc633_640a, ObsKind::AuthAttempt),
            ] {
                unique += 1;
                let mut x = template;
                x.time = start + burst * 7_200_000 + k * 30_000;
                x.src = src;
                x.kind = kind;
                x.flags = 0;
                x.evidence = 1 << 60 | unique;
                obs.push(Named {
                    o: x,
                    account: Some(format!("once-{unique}")),
                });
            }
        }
    }
    obs.sort_by_key(|n| n.o.time);
    // The tables hold no account yet: they are interned as they come,
    // so the sweeps have names to give back.
    let mut base = Tables::new();
    for svc in 1..=u16::MAX {
        let name = t.service(svc);
        if name.is_empty() {
            break;
        }
        base.service_id(Some(name));
    }
    let mut cfg = BehaviourConfig::default();
    cfg.distributed.idle_secs = 2 * 86_400;
    // Fewer accounts than the spray tries: the detector forgets some, and
    // the sources' own records are then the only holders of their names.
    cfg.distributed.max_accounts = 100;
    let (kept, none) = run(&cfg, &base, &obs, false);
    let (swept, given_back) = run(&cfg, &base, &obs, true);
    assert_eq!(none, 0);
    assert!(given_back > 100, "names given back: {given_back}");
    let kinds = |v: &[String]| {
        let mut k: Vec<&str> = v
            .iter()
            .filter_map(|s| s.split("\"kind\":\"").nth(1))
            .filter_map(|s| s.split('"').next())
            .collect();
        k.sort();
        k.dedup();
        k.join(",")
    };
    for kind in ["brute_force", "distributed_bruteforce", "password_spray"] {
        assert!(kinds(&kept).contains(kind), "{kind} among {}", kinds(&kept));
    }
    assert!(
        kept.iter()
            .any(|f| f.contains("\"method\":\"explicit_credentials\"")),
        "an explicit-credential spray found"
    );
    assert!(
        !swept.iter().any(|f| f.contains("junk-")),
        "a junk name shown"
    );
    assert_eq!(kept, swept);
}

/// A hunt over more accounts and records than the limits allow says so
/// in its coverage, with the counts; under the limits it says nothing.
#[test]
fn limits_reached_in_a_replay_are_counted_and_said() {
    use orbwatch_detect::behaviour::Engine;
    let scenario = SprayScenario {
        days: 6,
        campaign_sources: 200,
        accounts: 100,
        users: 40,
        scanners_per_day: 8,
        persistent_scanners: 10,
        ..Default::default()
    };
    let enricher = Enricher::none();
    let mut cfg = BehaviourConfig::default();
    let run = |cfg: &BehaviourConfig, partitions| {
        let mut month = simulate(&scenario);
        Engine {
            cfg,
            enricher: &enricher,
            partitions,
        }
        .run_with_limits(&mut month.buffer)
        .1
    };
    let none = run(&cfg, 2);
    assert_eq!(none, Default::default());
    assert!(none.notes(&cfg).is_empty());
    cfg.distributed.max_records = 16;
    cfg.distributed.max_accounts = 16;
    let limits = run(&cfg, 2);
    assert!(limits.records_ended_early > 0, "{limits:?}");
    assert!(limits.accounts_forgotten > 0, "{limits:?}");
    let notes = limits.notes(&cfg);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with(&limits.records_ended_early.to_string()));
    assert!(notes[1].starts_with(&limits.accounts_forgotten.to_string()));
}
