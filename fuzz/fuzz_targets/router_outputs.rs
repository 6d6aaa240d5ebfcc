//! Fuzz the router audit's reading of what a router answers. The audit
//! runs its read-only commands on routers that may be an attacker's, so
//! every answer is hostile input: it must give findings or nothing, never
//! a panic.
//!
//! The input: the first byte picks the inventory profile; the rest is the
//! output of each of that profile's commands in turn, separated by a line
//! holding only the ASCII record separator (0x1e). Each output is also
//! given to every command, so that one odd text reaches every reader.
#![no_main]
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use orbwatch_routers::checks::{CheckContext, Outputs, run_all};
use orbwatch_routers::{Inventory, SshOutput};

const PROFILES: [&str; 7] = [
    "busybox",
    "openwrt",
    "generic-linux",
    "ddwrt",
    "edgeos",
    "vyos",
    "mikrotik",
];

fn audit(profile: &str, texts: &[&str]) {
    let inventory = format!(
        "[[router]]\nname='r'\nhost='192.0.2.10'\nuser='root'\nprofile='{profile}'\nexpected_dns=['192.0.2.53']\nmax_uptime_days=30\n"
    );
    let Ok(mut inv) = Inventory::parse(&inventory, Path::new("fuzz.toml")) else {
        return;
    };
    let router = inv.routers.remove(0);
    let probes = router.profile.probes();
    let hashes = HashMap::new();
    let ctx = CheckContext {
        router: &router,
        hash_indicators: &hashes,
        ip_indicators: &[],
        vulnerable: &[],
        own_keys: &[],
        now: jiff::Timestamp::UNIX_EPOCH,
    };
    let mut outputs = Outputs::new();
    for (i, probe) in probes.iter().enumerate() {
        let text = if texts.len() == 1 { texts[0] } else { texts.get(i).copied().unwrap_or("") };
        outputs.insert(
            probe.id,
            SshOutput {
                command: probe.command.to_string(),
                status: Some(0),
                stdout: text.to_string(),
                stderr: String::new(),
            },
        );
    }
    let _ = run_all(&ctx, &outputs, &BTreeMap::new());
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let texts: Vec<&str> = text.split("\n\u{1e}\n").collect();
    audit(PROFILES[usize::from(pick) % PROFILES.len()], &texts);
    // The whole text as every command's answer.
    audit(PROFILES[usize::from(pick) % PROFILES.len()], &[&text]);
});
