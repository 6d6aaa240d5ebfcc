//! The router inventory: one TOML file naming the routers orbwatch may
//! audit and reboot.
//!
//! Why strict: a misspelt key (`expected_dsn`) silently ignored would turn
//! a check off without anyone noticing, so unknown keys are errors that
//! name the file and the key. Credentials are keys or the SSH agent; a
//! password never sits in the file, only the name of the environment
//! variable that holds it (`password_env`) for devices that accept nothing
//! else.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::profiles::Profile;

/// What can be wrong with an inventory.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read the inventory {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("inventory {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("inventory {path}, router {router:?}: {message}")]
    Router {
        path: PathBuf,
        router: String,
        message: String,
    },
}

/// Fleet-wide policy (`[policy]`), every key optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Longest uptime, in days, before the audit says a reboot is due.
    pub max_uptime_days: u64,
    /// Share of the fleet (0–1) that may be down at once during `reboot`;
    /// `reboot` refuses a plan that would exceed it.
    pub max_down_share: f64,
    /// Seconds a router has to answer SSH again after its reboot.
    pub reboot_timeout_secs: u64,
    /// Seconds between two reboots (staggering).
    pub stagger_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_uptime_days: 30,
            max_down_share: 0.5,
            reboot_timeout_secs: 300,
            stagger_secs: 0,
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    policy: Policy,
    /// orbwatch's own known-hosts file; default next to the store.
    #[serde(default)]
    known_hosts: Option<String>,
    /// Extra known-vulnerable lists (TOML, same shape as the shipped one).
    #[serde(default)]
    vulnerable: Vec<String>,
    #[serde(default)]
    router: Vec<RouterFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterFile {
    name: String,
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    user: String,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
    profile: String,
    #[serde(default)]
    reboot_window: Option<String>,
    #[serde(default)]
    expected_dns: Vec<IpAddr>,
    #[serde(default)]
    max_uptime_days: Option<u64>,
    #[serde(default)]
    authorized_keys: Vec<String>,
    #[serde(default)]
    wan_address: Option<IpAddr>,
    #[serde(default)]
    expected_listeners: Vec<u16>,
    #[serde(default)]
    expected_forwards: Vec<String>,
    #[serde(default)]
    health_ping: Option<IpAddr>,
    #[serde(default)]
    health_dns_name: Option<String>,
}

fn default_port() -> u16 {
    22
}

/// One router, checked.
#[derive(Debug, Clone)]
pub struct Router {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key file (`~` expanded); `None` means the SSH agent.
    pub identity: Option<PathBuf>,
    /// Name of the environment variable holding a password, for devices
    /// that accept nothing else.
    pub password_env: Option<String>,
    pub profile: Profile,
    pub reboot_window: Option<RebootWindow>,
    /// DNS servers the router should use; empty skips the DNS check.
    pub expected_dns: Vec<IpAddr>,
    pub max_uptime_days: u64,
    /// `authorized_keys` entries that are expected (the key type and
    /// base64 are compared; comments are ignored). The public half of
    /// `identity` is always expected.
    pub authorized_keys: Vec<String>,
    /// The router's WAN-side address: management services listening on it
    /// (or on every address) are findings.
    pub wan_address: Option<IpAddr>,
    /// TCP ports that must listen after a reboot (health check).
    pub expected_listeners: Vec<u16>,
    /// Port forwards the organisation set up on purpose, by destination
    /// (`"192.168.1.10:22"`, `"192.168.1.10"`, `":53"` for a redirect to
    /// the router's own port 53); other forwards to internal hosts are
    /// findings. Forwards to relay-implant ports or to outside hosts are
    /// findings whatever this says.
    pub expected_forwards: Vec<String>,
    /// Health check after a reboot, "WAN reachable": an address the
    /// router must reach (its upstream gateway, or an address past it).
    pub health_ping: Option<IpAddr>,
    /// Health check after a reboot, "DNS resolves": a name each of
    /// `expected_dns` must resolve, asked from the router.
    pub health_dns_name: Option<String>,
}

/// One health check a router runs on itself after a reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCommand {
    /// `wan_ping 192.0.2.1`, `dns example.org @192.0.2.53`.
    pub check: String,
    pub command: String,
}

impl Router {
    /// The health checks of this router, built from typed inventory values
    /// only (an address that parsed, a name checked to be a host name), so
    /// nothing but those reaches the command line. These commands are the
    /// router's health allowlist ([`crate::Ssh::run_health`]).
    pub fn health_commands(&self) -> Vec<HealthCommand> {
        let mut v = Vec::new();
        if let Some(ip) = self.health_ping {
            v.push(HealthCommand {
                check: format!("wan_ping {ip}"),
                command: format!("ping -c 1 -W 2 {ip}"),
            });
        }
        if let Some(name) = &self.health_dns_name {
            for s in &self.expected_dns {
                v.push(HealthCommand {
                    check: format!("dns {name} @{s}"),
                    command: format!("nslookup {name} {s}"),
                });
            }
        }
        v
    }
}

/// Is `s` a DNS name (letters, digits, '-', '.'; labels of 1-63, not
/// starting or ending with '-')? It goes on a command line.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The whole inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    pub policy: Policy,
    pub known_hosts: Option<PathBuf>,
    pub vulnerable: Vec<PathBuf>,
    pub routers: Vec<Router>,
}

impl Inventory {
    /// Read and check an inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Inventory::parse(&text, path)
    }

    /// Parse inventory text; `path` names it in errors and anchors
    /// relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
        let file: InventoryFile = toml::from_str(text).map_err(|e| InventoryError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let policy = file.policy;
        if !(0.0..=1.0).contains(&policy.max_down_share) {
            return Err(InventoryError::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "policy.max_down_share = {} must be between 0 and 1",
                    policy.max_down_share
                ),
            });
        }
        let mut names = BTreeSet::new();
        let mut routers = Vec::with_capacity(file.router.len());
        for r in file.router {
            let err = |message: String| InventoryError::Router {
                path: path.to_path_buf(),
                router: r.name.clone(),
                message,
            };
            if r.name.is_empty()
                || !r
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(err(
                    "name must be non-empty letters, digits, '-', '_' or '.'".into(),
                ));
            }
            if !names.insert(r.name.clone()) {
                return Err(err("this name is used twice; names must be unique".into()));
            }
            if r.host.is_empty() || r.host.starts_with('-') || r.host.contains(char::is_whitespace)
            {
                return Err(err(format!(
                    "host {:?} is not a host name or address",
                    r.host
                )));
            }
            if r.user.is_empty() || r.user.starts_with('-') || r.user.contains(['@', ' ']) {
                return Err(err(format!("user {:?} is not a user name", r.user)));
            }
            let profile = Profile::parse(&r.profile).map_err(err)?;
            if let Some(var) = &r.password_env
                && (var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(err(format!(
                    "password_env {var:?} must name an environment variable (letters, digits, '_'); the password itself never goes in the file"
                )));
            }
            let reboot_window = match &r.reboot_window {
                Some(w) => {
                    Some(RebootWindow::parse(w).map_err(|m| err(format!("reboot_window: {m}")))?)
                }
                None => None,
            };
            if let Some(n) = &r.health_dns_name {
                if !is_host_name(n) {
                    return Err(err(format!(
                        "health_dns_name {n:?} is not a DNS name (letters, digits, '-' and '.')"
                    )));
                }
                if r.expected_dns.is_empty() {
                    return Err(err(
                        "health_dns_name needs expected_dns: the servers that must resolve it"
                            .into(),
                    ));
                }
            }
            let identity = r.identity.as_deref().map(|p| expand_path(p, base));
            routers.push(Router {
                name: r.name.clone(),
                host: r.host.clone(),
                port: r.port,
                user: r.user.clone(),
                identity,
                password_env: r.password_env.clone(),
                profile,
                reboot_window,
                expected_dns: r.expected_dns.clone(),
                max_uptime_days: r.max_uptime_days.unwrap_or(policy.max_uptime_days),
                authorized_keys: r.authorized_keys.clone(),
                wan_address: r.wan_address,
                expected_listeners: r.expected_listeners.clone(),
                expected_forwards: r.expected_forwards.clone(),
                health_ping: r.health_ping,
                health_dns_name: r.health_dns_name.clone(),
            });
        }
        Ok(Inventory {
            path: path.to_path_buf(),
            policy,
            known_hosts: file.known_hosts.as_deref().map(|p| expand_path(p, base)),
            vulnerable: file
                .vulnerable
                .iter()
                .map(|p| expand_path(p, base))
                .collect(),
            routers,
        })
    }

    /// The routers named in `only` (all when empty); an unknown name is an
    /// error so that a typo never means "no router".
    pub fn select(&self, only: &[String]) -> Result<Vec<&Router>, InventoryError> {
        if only.is_empty() {
            return Ok(self.routers.iter().collect());
        }
        only.iter()
            .map(|n| {
                self.routers
                    .iter()
                    .find(|r| &r.name == n)
                    .ok_or_else(|| InventoryError::Parse {
                        path: self.path.clone(),
                        message: format!(
                            "no router named {n:?}; the inventory has: {}",
                            self.routers
                                .iter()
                                .map(|r| r.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            })
            .collect()
    }
}

/// `~/x` from `$HOME`, relative paths from the inventory's folder.
fn expand_path(p: &str, base: &Path) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let pb = PathBuf::from(p);
    if pb.is_absolute() { pb } else { base.join(pb) }
}

/// When a router may be rebooted: days of the week, a local time range and
/// a zone (`"Sun 02:00-04:00 Europe/Paris"`, `"Mon-Fri 01:00-05:00 UTC"`,
/// `"daily 23:00-01:00 Europe/Berlin"`). A range past midnight belongs to
/// the day it starts on.
#[derive(Debug, Clone)]
pub struct RebootWindow {
    pub days: BTreeSet<u8>,
    pub start: Time,
    pub end: Time,
    pub zone: TimeZone,
    pub text: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(s: &str) -> Option<u8> {
    let s = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| s.starts_with(d) && d.len() <= s.len())
        .map(|i| i as u8)
}

impl RebootWindow {
    pub fn parse(text: &str) -> Result<RebootWindow, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days, range, zone] = parts[..] else {
            return Err(format!(
                "{text:?} must read DAYS HH:MM-HH:MM ZONE, e.g. \"Sun 02:00-04:00 Europe/Paris\""
            ));
        };
        let mut set = BTreeSet::new();
        if days.eq_ignore_ascii_case("daily") || days == "*" {
            set.extend(0..7);
        } else {
            for item in days.split(',') {
                match item.split_once('-') {
                    Some((a, b)) => {
                        let (Some(a), Some(b)) = (day_index(a), day_index(b)) else {
                            return Err(format!("{item:?} is not a range of days like Mon-Fri"));
                        };
                        let mut d = a;
                        loop {
                            set.insert(d);
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => {
                        set.insert(
                            day_index(item)
                                .ok_or_else(|| format!("{item:?} is not a day (Mon…Sun, daily)"))?,
                        );
                    }
                }
            }
        }
        let (a, b) = range
            .split_once('-')
            .ok_or_else(|| format!("{range:?} is not a time range like 02:00-04:00"))?;
        let t = |s: &str| -> Result<Time, String> {
            Time::strptime("%H:%M", s).map_err(|_| format!("{s:?} is not a time HH:MM"))
        };
        let (start, end) = (t(a)?, t(b)?);
        if start == end {
            return Err(format!("{range:?} is empty"));
        }
        let zone = TimeZone::get(zone).map_err(|e| format!("unknown time zone {zone:?}: {e}"))?;
        Ok(RebootWindow {
            days: set,
            start,
            end,
            zone,
            text: text.to_string(),
        })
    }

    /// How long the window lasts.
    pub fn length_secs(&self) -> i64 {
        let secs = |t: Time| i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60;
        (secs(self.end) - secs(self.start)).rem_euclid(86_400)
    }

    /// Is `at` inside the window?
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = self.zone.to_datetime(at);
        let t = local.time();
        let day = weekday_index(local.weekday());
        if self.start < self.end {
            self.days.contains(&day) && t >= self.start && t < self.end
        } else if t >= self.start {
            self.days.contains(&day)
        } else if t < self.end {
            self.days.contains(&((day + 6) % 7))
        } else {
            false
        }
    }
}

fn weekday_index(w: Weekday) -> u8 {
    (w.to_monday_zero_offset()) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[policy]
max_uptime_days = 14

[[router]]
name = "branch-lyon"
host = "192.0.2.10"
user = "admin"
identity = "/keys/id"
profile = "openwrt"
reboot_window = "Sun 02:00-04:00 Europe/Paris"
expected_dns = ["192.0.2.53"]
"#;

    #[test]
    fn reads_the_example_shape() {
        let inv = Inventory::parse(GOOD, Path::new("/x/routers.toml")).unwrap();
        assert_eq!(inv.routers.len(), 1);
        let r = &inv.routers[0];
        assert_eq!(r.port, 22);
        assert_eq!(r.max_uptime_days, 14);
        assert_eq!(r.profile, Profile::Openwrt);
        assert_eq!(
            r.expected_dns,
            vec!["192.0.2.53".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let bad = GOOD.replace("expected_dns", "expected_dsn");
        let e = Inventory::parse(&bad, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected_dsn"), "{e}");
        assert!(e.contains("r.toml"), "{e}");
    }

    #[test]
    fn a_password_in_the_file_is_refused() {
        let bad = GOOD.replace("profile =", "password = \"hunter2\"\nprofile =");
        let e = Inventory::parse(&bad, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("password"), "{e}");
        let env = GOOD.replace("profile =", "password_env = \"LYON PASS\"\nprofile =");
        assert!(Inventory::parse(&env, Path::new("r.toml")).is_err());
        let env = GOOD.replace("profile =", "password_env = \"LYON_PASS\"\nprofile =");
        let inv = Inventory::parse(&env, Path::new("r.toml")).unwrap();
        assert_eq!(inv.routers[0].password_env.as_deref(), Some("LYON_PASS"));
    }

    #[test]
    fn duplicate_names_and_unsupported_profiles_are_errors() {
        let twice = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[router]]").unwrap()..]);
        assert!(
            Inventory::parse(&twice, Path::new("r"))
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let e = Inventory::parse(&GOOD.replace("openwrt", "cisco-ios"), Path::new("r"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown profile \"cisco-ios\""), "{e}");
        let m = Inventory::parse(&GOOD.replace("openwrt", "mikrotik"), Path::new("r")).unwrap();
        assert_eq!(m.routers[0].profile, Profile::Mikrotik);
        assert!(
            Inventory::parse(&GOOD.replace("admin", "-oProxyCommand=x"), Path::new("r")).is_err()
        );
        assert!(
            Inventory::parse(
                &GOOD.replace("192.0.2.10", "-oProxyCommand=x"),
                Path::new("r")
            )
            .is_err()
        );
    }

    #[test]
    fn health_names_are_checked() {
        let base = "[[router]]\nname='r'\nhost='192.0.2.1'\nuser='root'\nprofile='busybox'\n";
        for bad in ["'x; reboot'", "'-x'", "'a..b'", "''"] {
            let t = format!("{base}expected_dns=['192.0.2.53']\nhealth_dns_name={bad}\n");
            let e = Inventory::parse(&t, Path::new("i.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("health_dns_name"), "{bad}: {e}");
        }
        let e = Inventory::parse(
            &format!("{base}health_dns_name='example.org'\n"),
            Path::new("i.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs expected_dns"), "{e}");
        let t = format!(
            "{base}expected_dns=['192.0.2.53','2001:db8::53']\nhealth_dns_name='example.org.'\nhealth_ping='2001:db8::1'\n"
        );
        let r = &Inventory::parse(&t, Path::new("i.toml")).unwrap().routers[0];
        assert_eq!(
            r.health_commands()
                .iter()
                .map(|h| h.command.as_str())
                .collect::<Vec<_>>(),
            [
                "ping -c 1 -W 2 2001:db8::1",
                "nslookup example.org. 192.0.2.53",
                "nslookup example.org. 2001:db8::53"
            ]
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for t in [
            "",
            "[[router]]",
            "router = 3",
            "\u{0}\u{1}",
            "[[router]]\nname=1",
            "[policy]\nmax_down_share = 7.0",
        ] {
            let _ = Inventory::parse(t, Path::new("r"));
        }
        assert!(Inventory::parse("[policy]\nmax_down_share = 7.0", Path::new("r")).is_err());
    }

    #[test]
    fn windows() {
        let w = RebootWindow::parse("Sun 02:00-04:00 Europe/Paris").unwrap();
        // 2026-12-06 is a Sunday; 02:30 Paris is 01:30 UTC.
        assert!(w.contains("2026-12-06T01:30:00Z".parse().unwrap()));
        assert!(!w.contains("2026-12-06T03:30:00Z".parse().unwrap()));
        assert!(!w.contains("2026-12-05T01:30:00Z".parse().unwrap()));
        let night = RebootWindow::parse("Sat 23:00-01:00 UTC").unwrap();
        assert!(night.contains("2026-12-05T23:30:00Z".parse().unwrap()));
        assert!(night.contains("2026-12-06T00:30:00Z".parse().unwrap()));
        assert!(!night.contains("2026-12-07T00:30:00Z".parse().unwrap()));
        assert_eq!(w.length_secs(), 7200);
        assert_eq!(night.length_secs(), 7200);
        let wk = RebootWindow::parse("Mon-Fri 01:00-05:00 UTC").unwrap();
        assert_eq!(wk.days.len(), 5);
        for bad in [
            "Sun",
            "Funday 02:00-03:00 UTC",
            "Sun 2-3 UTC",
            "Sun 02:00-02:00 UTC",
            "Sun 02:00-03:00 Mars/Olympus",
        ] {
            assert!(RebootWindow::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The shipped example must stay valid.
    #[test]
    fn the_example_inventory_loads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/routers.toml");
        let inv = Inventory::load(&p).unwrap();
        assert_eq!(inv.routers.len(), 2);
        assert_eq!(inv.policy.stagger_secs, 60);
        assert_eq!(inv.routers[1].max_uptime_days, 14);
        assert_eq!(inv.routers[0].expected_listeners, [22, 53]);
        assert_eq!(inv.routers[0].expected_forwards, ["192.168.1.10:22"]);
        assert_eq!(
            inv.routers[0]
                .health_commands()
                .iter()
                .map(|h| h.command.as_str())
                .collect::<Vec<_>>(),
            [
                "ping -c 1 -W 2 192.0.2.1",
                "nslookup openwrt.org 192.0.2.53"
            ]
        );
        assert!(inv.routers[1].health_commands().is_empty());
        assert!(inv.routers[0].reboot_window.is_some());
    }
}
