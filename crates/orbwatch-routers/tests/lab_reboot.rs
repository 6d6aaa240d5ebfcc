//! `routers reboot` against the lab: verified reboots, the sorting of
//! findings into cleared-by-reboot and persistent, the fleet limit checked
//! from the lab's own log, and a router that never comes back.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Lab, LabSpec, Plant};
use orbwatch_detect::Severity;
use orbwatch_routers::checks::check_of;
use orbwatch_routers::reboot::{RebootOptions, Step, reboot_fleet};
use orbwatch_routers::{AuditOptions, Inventory, Ssh};

fn opts(max_parallel: usize, timeout: u64) -> RebootOptions {
    RebootOptions {
        max_parallel,
        dry_run: false,
        ignore_window: true,
        timeout: Duration::from_secs(timeout),
        poll: Duration::from_millis(500),
        stagger: Duration::ZERO,
    }
}

fn checks(fs: &[orbwatch_detect::Finding]) -> Vec<&str> {
    let mut v: Vec<&str> = fs.iter().map(check_of).collect();
    v.sort();
    v
}

/// Keeps `steps` in a new store `name` in `dir` as `routers reboot` does,
/// reads them back, and checks that every step's detail is of the type
/// its writer used (none falls back to raw JSON) and reads as the JSON
/// that was written. The step kinds seen, in order of name.
fn kept_typed(dir: &Path, name: &str, steps: &[Step]) -> Vec<String> {
    let mut store = orbwatch_store::Store::open(dir.join(name)).unwrap();
    let tx = store.write_transaction().unwrap();
    orbwatch_routers::reboot::record_history(&tx, "reboot", steps, None).unwrap();
    tx.commit().unwrap();
    let kept = store.router_history(None, None, 1000).unwrap();
    assert_eq!(kept.len(), steps.len());
    for (k, s) in kept.iter().zip(steps) {
        assert_eq!((&k.router, &k.step), (&s.router, &s.step));
        // As the JSON a reader of the stored text got before the typed
        // detail (serde_json parses a float such as 2.4379465160000002
        // to the nearest short one, 2.437946516, typed or not).
        let written: serde_json::Value = serde_json::from_str(&s.detail.to_string()).unwrap();
        assert_eq!(k.detail.to_json(), written, "{} {}", s.router, s.step);
        assert!(
            !matches!(k.detail, orbwatch_store::RouterStepDetail::Other(_)),
            "{} {}: {}",
            s.router,
            s.step,
            k.detail
        );
    }
    let kinds: std::collections::BTreeSet<String> = kept.into_iter().map(|k| k.step).collect();
    kinds.into_iter().collect()
}

#[test]
fn reboot_clears_the_memory_implant_and_marks_the_persistent_one() {
    let Some(lab) = Lab::start(&[
        LabSpec::new("clean", Plant::Clean),
        LabSpec::new("memory", Plant::MemoryImplant),
        LabSpec::new("persistent", Plant::PersistentImplant),
        LabSpec::new("dns", Plant::HijackedDns),
    ]) else {
        return;
    };
    let p = lab.dir.path().join("routers.toml");
    std::fs::write(&p, lab.inventory(|_| String::new())).unwrap();
    let inv = Inventory::load(&p).unwrap();
    let ssh = Ssh::new(&lab.dir.path().join("known_hosts")).unwrap();
    let audit = AuditOptions {
        hash_indicators: HashMap::from([(lab.persistent_sha256.clone(), "lab-feed".to_string())]),
        vulnerable: orbwatch_routers::vulnerable::load(&[] as &[&Path]).unwrap(),
        ..Default::default()
    };
    let all: Vec<_> = inv.routers.iter().collect();
    let mut steps = 0;
    let res = reboot_fleet(&ssh, &inv, &all, &opts(1, 30), &audit, &mut |_| steps += 1);
    assert_eq!(res.halted, None);
    let by: HashMap<&str, _> = res
        .outcomes
        .iter()
        .map(|o| (o.router.as_str(), o))
        .collect();
    for o in &res.outcomes {
        assert_eq!(o.outcome, "rebooted", "{}: {:?}", o.router, o.reason);
        // Proof: the uptime went back (3-day offset before, none after).
        assert!(
            o.uptime_after.unwrap() < o.uptime_before.unwrap(),
            "{}",
            o.router
        );
        assert!(o.health.iter().all(|h| h.ok), "{:?}", o.health);
    }
    assert!(
        by["clean"].cleared.is_empty()
            && by["clean"].persistent.is_empty()
            && by["clean"].new.is_empty()
    );
    assert_eq!(
        checks(&by["memory"].cleared),
        ["listening_port", "process_writable_path"]
    );
    assert!(by["memory"].persistent.is_empty());
    assert!(by["memory"].new.is_empty());
    // The cron entry and the binary on disk survive; the running process
    // comes back only at cron's next minute, so its port may or may not
    // be seen again by the re-audit.
    let pers = checks(&by["persistent"].persistent);
    assert!(
        pers.contains(&"hash_indicator") && pers.contains(&"persistence"),
        "{pers:?}"
    );
    for f in &by["persistent"].persistent {
        assert_eq!(f.severity, Some(Severity::Critical), "raised: {f:?}");
        assert!(f.reasons.iter().any(|r| r.starts_with("persistent")));
    }
    assert_eq!(checks(&by["dns"].persistent), ["dns"]);
    assert_eq!(
        by["dns"].persistent[0].severity,
        Some(Severity::Critical),
        "high raised one step"
    );
    // --max-parallel 1: never two down at once, from the lab's own log;
    // and each router really went down and came back once.
    assert_eq!(lab.max_down_at_once(), 1);
    let downs = lab.events().iter().filter(|(_, _, e)| e == "down").count();
    assert_eq!(downs, 4);
    assert_eq!(res.steps.len(), steps);
    assert_eq!(
        kept_typed(lab.dir.path(), "a.db", &res.steps),
        ["health", "precheck", "proof", "reaudit", "returned", "sent"]
    );
    // Each router ran: audit, reboot, uptime polls, audit; nothing else.
    for (i, r) in inv.routers.iter().enumerate() {
        for c in lab.commands(i) {
            assert!(r.profile.allows(&c) || c == "reboot", "{}: {c:?}", r.name);
        }
        assert_eq!(lab.commands(i).iter().filter(|c| *c == "reboot").count(), 1);
    }
}

#[test]
fn two_at_a_time_overlap_and_a_lost_router_stops_the_rest() {
    let Some(lab) = Lab::start(&[
        LabSpec::new("a", Plant::Clean),
        LabSpec::new("b", Plant::Clean),
        LabSpec::new("c", Plant::Clean),
        LabSpec::new("d", Plant::Clean),
    ]) else {
        return;
    };
    let p = lab.dir.path().join("routers.toml");
    std::fs::write(&p, lab.inventory(|_| String::new())).unwrap();
    let inv = Inventory::load(&p).unwrap();
    let ssh = Ssh::new(&lab.dir.path().join("known_hosts")).unwrap();
    let audit = AuditOptions::default();
    let all: Vec<_> = inv.routers.iter().collect();
    // a and b together: both down at once is allowed (2 of 4 = 50%).
    let res = reboot_fleet(&ssh, &inv, &all[..2], &opts(2, 30), &audit, &mut |_| {});
    assert!(
        res.outcomes.iter().all(|o| o.outcome == "rebooted"),
        "{:?}",
        res.outcomes
    );
    assert_eq!(
        lab.max_down_at_once(),
        2,
        "the log shows the overlap the limit allowed"
    );
    // c never comes back: d must not be rebooted.
    lab.routers[2].never_return.store(true, Ordering::SeqCst);
    let res = reboot_fleet(&ssh, &inv, &all[2..], &opts(1, 6), &audit, &mut |_| {});
    assert_eq!(res.outcomes[0].outcome, "never_returned");
    assert_eq!(res.outcomes[1].outcome, "not_started");
    assert!(res.halted.as_deref().unwrap().contains("did not come back"));
    assert!(
        !lab.commands(3).iter().any(|c| c == "reboot"),
        "d was not rebooted"
    );
    assert!(lab.commands(3).is_empty(), "not even pre-checked");
    assert_eq!(
        kept_typed(lab.dir.path(), "lost.db", &res.steps),
        ["never_returned", "not_started", "precheck", "sent"]
    );
}

#[test]
fn fleet_limit_refuses_before_touching_anything() {
    // No lab needed: the plan is refused before any connection.
    let mut t = String::from("[policy]\nmax_down_share = 0.5\n");
    for i in 0..4 {
        t.push_str(&format!(
            "[[router]]\nname='r{i}'\nhost='192.0.2.{}'\nuser='root'\nprofile='openwrt'\n",
            i + 1
        ));
    }
    let inv = Inventory::parse(&t, Path::new("t.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ssh = Ssh::new(&dir.path().join("kh")).unwrap();
    let all: Vec<_> = inv.routers.iter().collect();
    let res = reboot_fleet(
        &ssh,
        &inv,
        &all,
        &opts(3, 1),
        &AuditOptions::default(),
        &mut |_| {},
    );
    assert!(res.outcomes.iter().all(|o| o.outcome == "refused"));
    assert!(res.halted.unwrap().contains("75%"));
    assert_eq!(
        kept_typed(dir.path(), "refused.db", &res.steps),
        ["refused"]
    );
    assert!(
        !dir.path().join("kh").exists()
            || std::fs::read_to_string(dir.path().join("kh"))
                .unwrap()
                .is_empty()
    );
    // A profile routers reboot cannot reboot yet: refused, no connection.
    let ros = t.replace("profile='openwrt'", "profile='mikrotik'");
    let inv_ros = Inventory::parse(&ros, Path::new("t.toml")).unwrap();
    let all_ros: Vec<_> = inv_ros.routers.iter().take(1).collect();
    let res = reboot_fleet(
        &ssh,
        &inv_ros,
        &all_ros,
        &opts(1, 1),
        &AuditOptions::default(),
        &mut |_| {},
    );
    assert_eq!(res.outcomes[0].outcome, "refused");
    assert!(
        res.outcomes[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("does not support profile mikrotik"),
        "{:?}",
        res.outcomes[0].reason
    );
    // Outside the window: refused too, also without a connection.
    let t2 = t.replace(
        "profile='openwrt'\n",
        "profile='openwrt'\nreboot_window='Sun 02:00-02:01 UTC'\n",
    );
    let inv = Inventory::parse(&t2, Path::new("t.toml")).unwrap();
    let all: Vec<_> = inv.routers.iter().collect();
    let mut o = opts(1, 1);
    o.ignore_window = false;
    let now = jiff::Timestamp::now();
    if !inv.routers[0].reboot_window.as_ref().unwrap().contains(now) {
        let res = reboot_fleet(&ssh, &inv, &all, &o, &AuditOptions::default(), &mut |_| {});
        assert!(
            res.outcomes
                .iter()
                .all(|x| x.outcome == "refused"
                    && x.reason.as_deref().unwrap().starts_with("outside"))
        );
    }
}

#[test]
fn health_checks_before_and_after_reboot_and_an_unhealthy_router_stops_the_rest() {
    let mut healthy = LabSpec::new("healthy", Plant::Clean);
    healthy.dns_server = true;
    let mut dnsdies = LabSpec::new("dnsdies", Plant::Clean);
    dnsdies.dns_until_reboot = true;
    let Some(lab) = Lab::start(&[
        healthy,
        LabSpec::new("offline", Plant::Clean),
        dnsdies,
        LabSpec::new("after", Plant::Clean),
    ]) else {
        return;
    };
    // healthy: its WAN gateway is the lab host's end of its link, its DNS
    // server answers and comes back after a reboot. offline: no route to
    // its gateway or its DNS server, before the reboot already. dnsdies:
    // healthy until its DNS server does not come back after the reboot.
    let gateway = |i: usize| lab.routers[i].host_addr;
    let p = lab.dir.path().join("routers.toml");
    std::fs::write(
        &p,
        lab.inventory(|i| match i {
            0 | 2 => format!(
                "health_ping = \"{}\"\nhealth_dns_name = \"lab.example\"",
                gateway(i)
            ),
            1 => "health_ping = \"192.0.2.1\"\nhealth_dns_name = \"lab.example\"".into(),
            _ => String::new(),
        }),
    )
    .unwrap();
    let inv = Inventory::load(&p).unwrap();
    let ssh = Ssh::new(&lab.dir.path().join("known_hosts")).unwrap();
    let all: Vec<_> = inv.routers.iter().collect();
    let res = reboot_fleet(
        &ssh,
        &inv,
        &all,
        &opts(1, 30),
        &AuditOptions::default(),
        &mut |_| {},
    );
    let h = &res.outcomes[0];
    assert_eq!(h.outcome, "rebooted", "{:?}", h);
    let g0 = format!("wan_ping {}", gateway(0));
    let checks: Vec<(&str, bool)> = h.health.iter().map(|c| (c.check.as_str(), c.ok)).collect();
    assert_eq!(
        checks,
        [
            ("ssh", true),
            ("listening 22", true),
            (g0.as_str(), true),
            ("dns lab.example @192.0.2.53", true),
        ],
        "{:?}",
        h.health
    );
    assert!(
        h.health[3].detail.contains("192.0.2.80"),
        "{:?}",
        h.health[3]
    );
    // offline: refused by the pre-check, never rebooted.
    let o = &res.outcomes[1];
    assert_eq!(o.outcome, "refused", "{o:?}");
    assert!(
        o.reason
            .as_deref()
            .unwrap()
            .contains("wan_ping 192.0.2.1, dns lab.example @192.0.2.53"),
        "{:?}",
        o.reason
    );
    assert!(!lab.commands(1).iter().any(|c| c == "reboot"));
    // dnsdies: rebooted and proven, but unhealthy; the rest is not started.
    let d = &res.outcomes[2];
    assert_eq!(d.outcome, "unhealthy", "{d:?}");
    assert!(
        d.uptime_after.unwrap() < d.uptime_before.unwrap(),
        "still proven"
    );
    let failed: Vec<&str> = d
        .health
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.check.as_str())
        .collect();
    assert_eq!(failed, ["dns lab.example @192.0.2.53"]);
    assert_eq!(res.outcomes[3].outcome, "not_started");
    assert!(
        res.halted.as_deref().unwrap().contains("dnsdies"),
        "{:?}",
        res.halted
    );
    assert!(lab.commands(3).is_empty(), "the last was not touched");
    // The routers' logs: audit commands, the reboot, and the health
    // commands built from the inventory: before and after a reboot, only
    // before for the refused one.
    for (i, times) in [(0, 2), (1, 1), (2, 2)] {
        let r = &inv.routers[i];
        let health: Vec<String> = r.health_commands().into_iter().map(|h| h.command).collect();
        assert_eq!(health.len(), 2);
        let cmds = lab.commands(i);
        for c in &cmds {
            assert!(
                r.profile.allows(c) || c == "reboot" || health.contains(c),
                "{}: {c:?}",
                r.name
            );
        }
        for hc in &health {
            assert_eq!(
                cmds.iter().filter(|c| *c == hc).count(),
                times,
                "{}: {hc}",
                r.name
            );
        }
    }
}
