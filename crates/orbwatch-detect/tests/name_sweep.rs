//! A live pipeline gives back the account names, host names and IPv6
//! addresses nothing holds (`Tables::forget_unheld`, with the holders'
//! `mark_held`). A holder that forgot to mark its ids would, after the
//! sweep, hold ids that mean other values: these tests hand every id
//! given back to junk at once, so such a holder shows a junk account or
//! address, or counts one, and its findings differ from a run that never
//! gives ids back.
//!
//! Also here: the limits that bound a daemon's memory under a flood
//! (`max_records`, `max_accounts`) are counted and said when reached.

use std::net::IpAddr;

use orbwatch_detect::behaviour::observe::{Forgotten, Obs, ObsKind, Tables, is_account_kind};
use orbwatch_detect::behaviour::simulator::{SprayScenario, simulate};
use orbwatch_detect::behaviour::{BehaviourConfig, LiveDetectors};
use orbwatch_detect::enrich::Enricher;
use orbwatch_detect::finding::Finding;

/// Where an observation comes from, as the decoder would give it before
/// interning: kept as it is (an IPv4 address is its own id), or an IPv6
/// address or a host name, interned when it arrives.
#[derive(Clone)]
enum From {
    AsIs,
    V6(IpAddr),
    Host(String),
}

/// Observations with their account and source as values (as they come
/// from the decoder: interned into the tables when they arrive).
struct Named {
    o: Obs,
    account: Option<String>,
    src: From,
}

const STEP: usize = 200;

/// Junk given the ids given back at once: shown, it gives the holder away.
const JUNK_NAME: &str = "junk-";
const JUNK_NET: [u16; 4] = [0x2001, 0xdb8, 0xffff, 0xffff];

/// Run `obs` through the live detectors; with `sweep`, give back every
/// unheld id after every observation and hand each to junk at once.
/// Returns every finding as JSON, sorted, and the ids given back.
fn run(
    cfg: &BehaviourConfig,
    base: &Tables,
    obs: &[Named],
    sweep: bool,
) -> (Vec<String>, Forgotten) {
    let enricher = Enricher::none();
    let mut t = base.clone();
    let mut d = LiveDetectors::new(cfg, &enricher);
    let mut found: Vec<Finding> = Vec::new();
    let mut given_back = Forgotten::default();
    let mut junk = 0u32;
    for (i, n) in obs.iter().enumerate() {
        let mut o = n.o;
        if let Some(a) = &n.account {
            o.aux = u64::from(t.names.intern_str(a));
        }
        match &n.src {
            From::AsIs => {}
            From::V6(ip) => o.src = t.ip_id(*ip),
            From::Host(h) => o.src = t.host_id(h),
        }
        d.observe(&o, &t);
        if i % STEP == STEP - 1 {
            d.advance(o.time, &t);
            found.extend(d.take_drafts().into_iter().map(|d| d.finding));
        }
        // After every observation: an id held for one observation's time
        // (the account of a source's last failure, which starts its next
        // brute-force episode) is given back if unmarked.
        if sweep {
            let mut keep = t.held_ids();
            d.mark_held(&mut keep);
            let freed = t.forget_unheld(&keep);
            given_back.names += freed.names;
            given_back.addresses += freed.addresses;
            // Every id given back now means junk.
            for _ in 0..freed.names {
                junk += 1;
                t.names.intern_str(&format!("{JUNK_NAME}{junk}"));
            }
            for _ in 0..freed.addresses {
                junk += 1;
                let [a, b, c, e] = JUNK_NET;
                let ip = IpAddr::from([a, b, c, e, 0, 0, (junk >> 16) as u16, junk as u16]);
                t.ip_id(ip);
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

/// A simulated fortnight of a spray campaign, scanners and users, with
/// explicit-credential logons beside every fifth source's failures, and
/// a brute forcer and an explicit-credential sprayer that try a new name
/// with every attempt. Returns the tables of services alone (accounts
/// are interned as they come) and the observations in time order.
fn spray_fortnight() -> (Tables, Vec<Named>) {
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
    let named = |o: Obs, account| Named {
        o,
        account,
        src: From::AsIs,
    };
    let mut obs: Vec<Named> = Vec::new();
    for o in &buffer.obs {
        let account = is_account_kind(o.kind).then(|| t.name(o.aux as u32).to_string());
        obs.push(named(*o, account));
        if o.kind == ObsKind::AuthFailure && o.src % 5 == 0 {
            let mut x = *o;
            x.kind = ObsKind::AuthAttempt;
            let account = Some(t.name(o.aux as u32).to_string());
            obs.push(named(x, account));
        }
    }
    // The unique-name attackers, in bursts two hours apart (past the
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
                obs.push(named(x, Some(format!("once-{unique}"))));
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
    (base, obs)
}

/// The settings both tests run with: fewer accounts than the spray
/// tries, so the detector forgets some and the sources' own records are
/// then the only holders of their names.
fn config() -> BehaviourConfig {
    let mut cfg = BehaviourConfig::default();
    cfg.distributed.idle_secs = 2 * 86_400;
    cfg.distributed.max_accounts = 100;
    cfg
}

/// The kinds among findings shown as JSON, joined.
fn kinds(v: &[String]) -> String {
    let mut k: Vec<&str> = v
        .iter()
        .filter_map(|s| s.split("\"kind\":\"").nth(1))
        .filter_map(|s| s.split('"').next())
        .collect();
    k.sort();
    k.dedup();
    k.join(",")
}

#[test]
fn names_given_back_mid_run_change_no_finding() {
    let (base, obs) = spray_fortnight();
    let cfg = config();
    let (kept, none) = run(&cfg, &base, &obs, false);
    let (swept, given_back) = run(&cfg, &base, &obs, true);
    assert_eq!(none, Forgotten::default());
    assert!(given_back.names > 100, "names given back: {given_back:?}");
    for kind in ["brute_force", "distributed_bruteforce", "password_spray"] {
        assert!(kinds(&kept).contains(kind), "{kind} among {}", kinds(&kept));
    }
    assert!(
        kept.iter()
            .any(|f| f.contains("\"method\":\"explicit_credentials\"")),
        "an explicit-credential spray found"
    );
    assert!(
        !swept.iter().any(|f| f.contains(JUNK_NAME)),
        "a junk name shown"
    );
    assert_eq!(kept, swept);
}

/// The same fortnight with its sources as IPv6 addresses (each /24 a
/// /64) and every seventh as a host name (a logon with no address):
/// every holder of a source id must mark it, or a junk address takes its
/// id and shows, or merges with it.
#[test]
fn addresses_and_host_names_given_back_mid_run_change_no_finding() {
    let (base, mut obs) = spray_fortnight();
    for n in &mut obs {
        let v4 = n.o.src as u32;
        let [a, b, c, d] = v4.to_be_bytes();
        n.src = if v4.is_multiple_of(7) {
            From::Host(format!("ws-{a}-{b}-{c}-{d}.corp.example"))
        } else {
            let ip = [
                0x2001,
                0xdb8,
                u16::from(a) << 8 | u16::from(b),
                u16::from(c),
                0,
                0,
                0,
                u16::from(d),
            ];
            From::V6(IpAddr::from(ip))
        };
    }
    let cfg = config();
    let (kept, none) = run(&cfg, &base, &obs, false);
    let (swept, given_back) = run(&cfg, &base, &obs, true);
    assert_eq!(none, Forgotten::default());
    assert!(given_back.addresses > 100, "ids given back: {given_back:?}");
    assert!(given_back.names > 100, "ids given back: {given_back:?}");
    for kind in ["brute_force", "distributed_bruteforce", "password_spray"] {
        assert!(kinds(&kept).contains(kind), "{kind} among {}", kinds(&kept));
    }
    assert!(kept.iter().any(|f| f.contains("\"src_ip\":\"2001:db8:")));
    assert!(kept.iter().any(|f| f.contains(".corp.example")));
    let [a, b, c, e] = JUNK_NET;
    let junk_net = format!("{a:x}:{b:x}:{c:x}:{e:x}:");
    assert!(
        !swept
            .iter()
            .any(|f| f.contains(JUNK_NAME) || f.contains(&junk_net)),
        "junk shown"
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

/// A daemon forgets the flags of brute forcers no record or run holds
/// any more (they serve only the judgement at the end of input), and
/// keeps those of sources still active.
#[test]
fn flags_of_brute_forcers_long_gone_are_dropped() {
    let mut cfg = BehaviourConfig::default();
    cfg.distributed.idle_secs = 3 * 3600;
    let enricher = Enricher::none();
    let mut t = Tables::new();
    let svc = t.service_id(Some("sshd"));
    let mut d = LiveDetectors::new(&cfg, &enricher);
    let failure = |time: i64, src: u64, user: u32| Obs {
        time,
        aux: u64::from(user),
        evidence: time as u64,
        src,
        dst: orbwatch_detect::behaviour::observe::NONE,
        dst_port: 22,
        svc,
        kind: ObsKind::AuthFailure,
        flags: 0,
    };
    let start = 1_700_000_000_000i64;
    let mut brute_forces = std::collections::BTreeSet::new();
    let root = t.names.intern_str("root");
    // 50 brute forcers, one every two hours, 30 failures in 150 s each.
    for i in 0..50u64 {
        let src = 0xcb00_7100 + i;
        let at = start + i as i64 * 7_200_000;
        for k in 0..30 {
            d.observe(&failure(at + k * 5_000, src, root), &t);
        }
        // Past the brute-force detector's hour of idleness: the episode
        // is judged and its source flagged.
        d.advance(at + 3_800_000, &t);
        for x in d.take_drafts() {
            if x.finding.kind.to_string() == "brute_force" {
                brute_forces.insert(x.finding.src_ip);
            }
        }
    }
    assert_eq!(brute_forces.len(), 50);
    let (flagged, dropped) = d.flags();
    assert_eq!((flagged, dropped), (50, 0));
    d.prune_flagged();
    // A record lives three hours after its source's last failure: the
    // last brute forcer's still does (63 minutes after its failures),
    // the one before it ended 55 s ago, the others long ago.
    let (flagged, dropped) = d.flags();
    assert_eq!((flagged, dropped), (1, 49));
    // Pruning again changes nothing.
    d.prune_flagged();
    assert_eq!(d.flags(), (1, 49));
}
