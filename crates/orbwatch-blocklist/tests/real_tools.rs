//! Every generated file loaded into the real tool: nft, ipset and
//! iptables/ip6tables inside a network namespace the test creates (and
//! always deletes), Suricata in test mode with a minimal configuration.
//! The fixture and an empty selection are both loaded.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use orbwatch_blocklist::{Blocklist, RenderOptions, Target, render};
use orbwatch_testns::TestNetns;

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `tool args` inside `ns`, with `stdin` written to it.
fn exec(ns: &TestNetns, tool: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    ns.output(tool, args, stdin)
        .unwrap_or_else(|e| panic!("running {} in {}: {e}", tool.display(), ns.name()))
}

fn file(r: &orbwatch_blocklist::Rendered, suffix: &str) -> Vec<u8> {
    r.files
        .iter()
        .find(|f| f.suffix == suffix)
        .unwrap_or_else(|| panic!("no file with suffix {suffix:?}"))
        .bytes
        .clone()
}

/// An entry valid until 2500: timeouts beyond what nft and ipset take
/// must be capped, not refused by the kernel.
fn far() -> Blocklist {
    let mut ind = orbwatch_intel::Indicator::new(
        orbwatch_intel::IndicatorValue::Ip("45.2.3.4".parse().unwrap()),
        Default::default(),
    );
    ind.valid_until = Some(ts("2500-01-01"));
    let mut sel = orbwatch_blocklist::Selection::new(select_opts(fixture_at()), None);
    sel.add_indicator(&ind, "far");
    orbwatch_blocklist::build(&sel, &default_guard(), &build_opts(fixture_at())).unwrap()
}

fn lists() -> [(&'static str, Blocklist); 3] {
    [("fixture", fixture()), ("empty", empty()), ("far", far())]
}

#[test]
fn nft_accepts_and_loads_the_nftables_output() {
    let Some(nft) = tool("nft") else { return };
    let Some(ns) = TestNetns::new("blocklist") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (what, list) in lists() {
        let bytes = file(
            &render(Target::Nftables, &list, &RenderOptions::default()),
            "",
        );
        let path = dir.path().join(format!("{what}.nft"));
        std::fs::write(&path, &bytes).unwrap();
        let p = path.to_str().unwrap();
        let o = exec(&ns, &nft, &["-c", "-f", p], None);
        assert!(o.status.success(), "nft -c -f {what}: {}", text(&o));
        // Load it for real, twice (the file replaces its own table).
        for _ in 0..2 {
            let o = exec(&ns, &nft, &["-f", p], None);
            assert!(o.status.success(), "nft -f {what}: {}", text(&o));
        }
        let o = exec(
            &ns,
            &nft,
            &["list", "set", "inet", "orbwatch", "blocklist_v4"],
            None,
        );
        assert!(o.status.success(), "{}", text(&o));
        let listed = String::from_utf8_lossy(&o.stdout).into_owned();
        if what == "fixture" {
            assert!(
                listed.contains("45.33.10.10 timeout 1d expires"),
                "{listed}"
            );
            assert!(listed.contains("198.100.6.0/23"), "{listed}");
        } else if what == "far" {
            assert!(
                listed.contains("45.2.3.4 timeout 3650d expires"),
                "{listed}"
            );
        } else {
            assert!(!listed.contains("elements"), "{listed}");
        }
    }
}

/// The timeout `ipset list` shows for a member.
fn timeout_of(listing: &str, member: &str) -> u64 {
    listing
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{member} timeout ")))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("{member} with a timeout not in:\n{listing}"))
}

#[test]
fn ipset_restore_accepts_the_ipset_output_and_lists_timeouts() {
    let Some(ipset) = tool("ipset") else { return };
    let Some(ns) = TestNetns::new("blocklist") else {
        return;
    };
    for (what, list) in lists() {
        let bytes = file(&render(Target::Ipset, &list, &RenderOptions::default()), "");
        // Twice: the scratch-set swap makes a reload replace the list.
        for _ in 0..2 {
            let o = exec(&ns, &ipset, &["restore"], Some(&bytes));
            assert!(o.status.success(), "ipset restore {what}: {}", text(&o));
        }
        let o = exec(&ns, &ipset, &["list", "orbwatch-v4"], None);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let o6 = exec(&ns, &ipset, &["list", "orbwatch-v6"], None);
        let out6 = String::from_utf8_lossy(&o6.stdout).into_owned();
        if what == "fixture" {
            assert!(out.contains("Number of entries: 11"), "{out}");
            assert!(out6.contains("Number of entries: 1"), "{out6}");
            assert!(!out.contains("45.2.3.4"));
            // A timeout counts down from 86400 as soon as it is loaded.
            let t = timeout_of(&out, "45.33.10.10");
            assert!((86_300..=86_400).contains(&t), "{out}");
            // Longer validity is capped at ipset's maximum, 2147483 s.
            let t = timeout_of(&out, "203.0.114.1");
            assert!((2_147_383..=2_147_483).contains(&t), "{out}");
            assert!(out.contains("198.100.6.0/23 timeout 0"), "{out}");
            let t = timeout_of(&out6, "2a03:2880:f12f::/48");
            assert!((2_147_383..=2_147_483).contains(&t), "{out6}");
        } else if what == "far" {
            assert_eq!(timeout_of(&out, "45.2.3.4") / 1000, 2147, "{out}");
        } else {
            assert!(out.contains("Number of entries: 0"), "{out}");
            assert!(out6.contains("Number of entries: 0"), "{out6}");
        }
        assert!(!out.contains("orbwatch-v4-new"));
    }
}

#[test]
fn iptables_restore_accepts_the_iptables_output() {
    let Some(ipt) = tool("iptables-restore") else {
        return;
    };
    let Some(ip6t) = tool("ip6tables-restore") else {
        return;
    };
    let Some(iptables) = tool("iptables") else {
        return;
    };
    let Some(ns) = TestNetns::new("blocklist") else {
        return;
    };
    for (what, list) in lists() {
        let r = render(Target::Iptables, &list, &RenderOptions::default());
        for (bin, bytes) in [(&ipt, file(&r, "")), (&ip6t, file(&r, ".v6"))] {
            let o = exec(&ns, bin, &["--test", "--noflush"], Some(&bytes));
            assert!(
                o.status.success(),
                "{} --test {what}: {}",
                bin.display(),
                text(&o)
            );
            let o = exec(&ns, bin, &["--noflush"], Some(&bytes));
            assert!(o.status.success(), "{} {what}: {}", bin.display(), text(&o));
        }
        let o = exec(&ns, &iptables, &["-S", "ORBWATCH"], None);
        let rules = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.ends_with("-j DROP"))
            .count();
        // A source and a destination rule per IPv4 entry.
        assert_eq!(rules, 2 * list.v4().count(), "{}", text(&o));
    }
}

#[test]
fn suricata_loads_iprep_dataset_and_rules() {
    let Some(suricata) = tool("suricata") else {
        return;
    };
    for (what, list) in lists() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let opts = RenderOptions {
            dataset_file: "orbwatch.rules.lst".into(),
            ..RenderOptions::default()
        };
        let iprep = render(Target::SuricataIprep, &list, &opts);
        std::fs::write(d.join("orbwatch.categories"), file(&iprep, ".categories")).unwrap();
        std::fs::write(d.join("orbwatch.list"), file(&iprep, ".list")).unwrap();
        let rules = render(Target::SuricataRules, &list, &opts);
        std::fs::write(d.join("orbwatch.rules"), file(&rules, "")).unwrap();
        std::fs::write(d.join("orbwatch.rules.lst"), file(&rules, ".lst")).unwrap();
        // The stand-alone dataset target writes the same bytes as the
        // rules' companion file.
        assert_eq!(
            file(&render(Target::SuricataDataset, &list, &opts), ""),
            file(&rules, ".lst")
        );
        let dp = d.display();
        let conf = format!(
            "%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: \"[10.0.0.0/8]\"\n    EXTERNAL_NET: \"!$HOME_NET\"\n\
             default-log-dir: {dp}\ndefault-rule-path: {dp}\nrule-files:\n  - orbwatch.rules\n\
             reputation-categories-file: {dp}/orbwatch.categories\ndefault-reputation-path: {dp}\n\
             reputation-files:\n  - orbwatch.list\noutputs: []\n\
             logging:\n  default-log-level: info\n  outputs:\n    - console:\n        enabled: yes\n"
        );
        let conf_path = d.join("suricata.yaml");
        std::fs::write(&conf_path, conf).unwrap();
        let o = run(
            Command::new(&suricata).args([
                "-T",
                "-c",
                conf_path.to_str().unwrap(),
                "-l",
                d.to_str().unwrap(),
            ]),
            None,
        );
        let out = text(&o);
        assert!(o.status.success(), "suricata -T {what}: {out}");
        // Suricata reports a bad reputation line as an error but still
        // exits 0: look at what it said.
        assert!(!out.contains("Error"), "suricata -T {what}: {out}");
        assert!(out.contains("Loading reputation file"), "{out}");
        assert!(
            out.contains("2 rules successfully loaded, 0 rules failed"),
            "{out}"
        );
    }
}
