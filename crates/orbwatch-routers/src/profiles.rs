//! Router profiles and their command allowlists.
//!
//! Why fixed strings: an audit of a device that may be compromised must not
//! change it. Every command an audit can send is a constant here, read-only
//! by construction (reads of `/proc` and of configuration files, `find`
//! with `sha256sum`), and the transport refuses anything else
//! ([`Profile::allows`]). Nothing from the inventory or from the router's
//! own output is ever pasted into a command. The single state-changing
//! command, the reboot, lives apart ([`Profile::reboot_command`]) and is
//! only sent by `routers reboot`.
//!
//! The commands are POSIX shell that busybox (OpenWrt, most SOHO
//! firmware) and a full Linux both understand.

use std::fmt;

/// One read-only command of an audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// What it reads (`uptime`, `listening`…): the checks look output up
    /// by this id.
    pub id: &'static str,
    pub command: &'static str,
}

/// The platforms orbwatch knows how to audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Busybox,
    Openwrt,
    GenericLinux,
    /// DD-WRT: a busybox shell, plus its settings in nvram.
    Ddwrt,
    /// Ubiquiti EdgeOS: a Linux shell (vbash), its configuration in
    /// `/config/config.boot`.
    Edgeos,
    /// VyOS: the same layout as EdgeOS.
    Vyos,
    /// MikroTik RouterOS: no shell, only its console commands.
    Mikrotik,
}

/// Every profile, in the order `parse` lists them.
pub const ALL: [Profile; 7] = [
    Profile::Busybox,
    Profile::Openwrt,
    Profile::GenericLinux,
    Profile::Ddwrt,
    Profile::Edgeos,
    Profile::Vyos,
    Profile::Mikrotik,
];

pub const UPTIME: Probe = Probe {
    id: "uptime",
    command: "cat /proc/uptime",
};
pub const BOOT_ID: Probe = Probe {
    id: "boot_id",
    command: "cat /proc/sys/kernel/random/boot_id",
};
pub const VERSION: Probe = Probe {
    id: "version",
    command: "uname -srm; cat /etc/openwrt_release /etc/os-release /etc/version 2>/dev/null",
};
pub const LISTENING: Probe = Probe {
    id: "listening",
    command: "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null",
};
pub const PROCESSES: Probe = Probe {
    id: "processes",
    command: "for p in /proc/[0-9]*; do printf '%s\\t%s\\t%s\\t' \"${p#/proc/}\" \"$(readlink $p/exe 2>/dev/null)\" \"$(cat $p/comm 2>/dev/null)\"; tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done",
};
pub const HASHES: Probe = Probe {
    id: "hashes",
    command: "find /tmp /var /var/run /dev/shm /etc /root /overlay /jffs /data -xdev -type f -perm -100 -exec sha256sum {} + 2>/dev/null; sha256sum /proc/[0-9]*/exe 2>/dev/null",
};
pub const PERSISTENCE: Probe = Probe {
    id: "persistence",
    command: "grep -H '' /etc/crontabs/* /var/spool/cron/crontabs/* /etc/crontab /etc/cron.d/* /etc/rc.local /etc/init.d/* /etc/rc.d/* /etc/hotplug.d/*/* 2>/dev/null",
};
pub const DNS: Probe = Probe {
    id: "dns",
    command: "grep -H '' /etc/resolv.conf /tmp/resolv.conf /tmp/resolv.conf.auto /tmp/resolv.conf.d/resolv.conf.auto 2>/dev/null",
};
pub const AUTHORIZED_KEYS: Probe = Probe {
    id: "authorized_keys",
    command: "grep -H '' /root/.ssh/authorized_keys /etc/dropbear/authorized_keys /home/*/.ssh/authorized_keys 2>/dev/null",
};
pub const ACCOUNTS: Probe = Probe {
    id: "accounts",
    command: "cat /etc/passwd",
};
pub const UCI_DNS: Probe = Probe {
    id: "uci_dns",
    command: "uci -q show dhcp; uci -q show network",
};
/// UDP sockets: a connected UDP socket names its peer (an implant's
/// beacon or DNS tunnel), which `/proc/net/tcp` never shows.
pub const UDP: Probe = Probe {
    id: "udp",
    command: "cat /proc/net/udp /proc/net/udp6 2>/dev/null",
};
/// The connection-tracking table: every flow the router has seen lately,
/// its own and the ones it forwards or NATs, including flows whose socket
/// has already closed (a TCP connection stays in TIME_WAIT for two
/// minutes, a UDP exchange for 30 s or more). The `/proc` file where the
/// kernel has it, else `conntrack -L` (conntrack-tools); both only read.
pub const CONNTRACK: Probe = Probe {
    id: "conntrack",
    command: "cat /proc/net/nf_conntrack 2>/dev/null || conntrack -L 2>/dev/null",
};
/// Port forwards and NAT redirects, as iptables (legacy or nft back end)
/// and nftables see them. `iptables-save` without `-t` dumps only the
/// tables that exist (`-t nat` would make a legacy kernel load and create
/// the table: a change, however small).
pub const NAT: Probe = Probe {
    id: "nat",
    command: "iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; nft list ruleset 2>/dev/null",
};
/// OpenWrt's firewall configuration: `redirect` sections are its port
/// forwards (fw3 and fw4 turn them into the DNAT rules the `nat` probe
/// reads, but a forward configured and not yet applied is only here).
pub const UCI_FIREWALL: Probe = Probe {
    id: "uci_firewall",
    command: "uci -q show firewall",
};

/// OpenWrt's package file lists: every file an installed package put on
/// the device (`opkg` keeps one `.list` per package, for the packages of
/// the firmware image too).
pub const OPKG_FILES: Probe = Probe {
    id: "opkg_files",
    command: "cat /usr/lib/opkg/info/*.list 2>/dev/null",
};
/// apk's database of installed packages (OpenWrt 25 and later install
/// with apk instead of opkg): for each package a `P:` name, then each
/// folder (`F:`) followed by the files (`R:`) the package put there.
pub const APK_INSTALLED: Probe = Probe {
    id: "apk_installed",
    command: "cat /lib/apk/db/installed 2>/dev/null",
};
/// apk's own integrity check of every file packages installed (outside
/// the configuration files): a line per change, a letter and the path
/// (`U` contents modified, `X` deleted, `M` owner or mode changed…; see
/// apk-audit(8)). Read-only. Nothing on a device without apk.
pub const APK_AUDIT: Probe = Probe {
    id: "apk_audit",
    command: "apk audit --system 2>/dev/null",
};
/// The programs in the system's program folders, with their SHA-256
/// (symlinks, such as busybox's applets, are not files and are left out).
pub const SYSTEM_EXECUTABLES: Probe = Probe {
    id: "system_executables",
    command: "find /bin /sbin /usr/bin /usr/sbin /usr/libexec -xdev -type f -perm -100 -exec sha256sum {} + 2>/dev/null",
};

/// DD-WRT's settings that matter to an audit: DNS servers, port
/// forwards, and the startup and firewall scripts (a classic place for
/// persistence), as `name=value` (a value may run over several lines).
/// `nvram get` only reads; `nvram show` is not used because it prints
/// every password too.
pub const NVRAM: Probe = Probe {
    id: "nvram",
    command: "for k in wan_dns forward_spec forward_port rc_startup rc_firewall rc_custom; do printf '%s=' $k; nvram get $k; done",
};
/// EdgeOS's and VyOS's saved configuration (DNS, port forwards and NAT,
/// the task scheduler).
pub const CONFIG_BOOT: Probe = Probe {
    id: "config_boot",
    command: "cat /config/config.boot",
};
/// RouterOS: uptime, version and board.
pub const ROS_RESOURCE: Probe = Probe {
    id: "ros_resource",
    command: "/system resource print",
};
pub const ROS_DNS: Probe = Probe {
    id: "ros_dns",
    command: "/ip dns print",
};
pub const ROS_NAT: Probe = Probe {
    id: "ros_nat",
    command: "/ip firewall nat print detail without-paging",
};
/// RouterOS persistence: the scheduler and the scripts (Microsoft's
/// RouterOS forensics tool reads the same).
pub const ROS_SCHEDULER: Probe = Probe {
    id: "ros_scheduler",
    command: "/system scheduler print detail without-paging",
};
pub const ROS_SCRIPT: Probe = Probe {
    id: "ros_script",
    command: "/system script print detail without-paging",
};

const COMMON: [Probe; 12] = [
    UPTIME,
    BOOT_ID,
    VERSION,
    LISTENING,
    PROCESSES,
    HASHES,
    PERSISTENCE,
    DNS,
    AUTHORIZED_KEYS,
    UDP,
    CONNTRACK,
    NAT,
];

impl Profile {
    /// Parse an inventory's `profile`; a planned but unsupported one says
    /// so.
    pub fn parse(s: &str) -> Result<Profile, String> {
        match s {
            "busybox" => Ok(Profile::Busybox),
            "openwrt" => Ok(Profile::Openwrt),
            "generic-linux" => Ok(Profile::GenericLinux),
            "ddwrt" => Ok(Profile::Ddwrt),
            "edgeos" => Ok(Profile::Edgeos),
            "vyos" => Ok(Profile::Vyos),
            "mikrotik" => Ok(Profile::Mikrotik),
            other => Err(format!(
                "unknown profile {other:?}; use busybox, openwrt, generic-linux, ddwrt, edgeos, vyos or mikrotik"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Busybox => "busybox",
            Profile::Openwrt => "openwrt",
            Profile::GenericLinux => "generic-linux",
            Profile::Ddwrt => "ddwrt",
            Profile::Edgeos => "edgeos",
            Profile::Vyos => "vyos",
            Profile::Mikrotik => "mikrotik",
        }
    }

    /// The read-only commands of an audit, in the order they run.
    pub fn probes(self) -> Vec<Probe> {
        if self == Profile::Mikrotik {
            return vec![ROS_RESOURCE, ROS_DNS, ROS_NAT, ROS_SCHEDULER, ROS_SCRIPT];
        }
        let mut v: Vec<Probe> = COMMON.to_vec();
        v.push(ACCOUNTS);
        match self {
            Profile::Ddwrt => v.push(NVRAM),
            Profile::Edgeos | Profile::Vyos => v.push(CONFIG_BOOT),
            _ => {}
        }
        if self == Profile::Openwrt {
            v.push(UCI_DNS);
            v.push(UCI_FIREWALL);
            v.push(OPKG_FILES);
            v.push(APK_INSTALLED);
            v.push(APK_AUDIT);
            v.push(SYSTEM_EXECUTABLES);
        }
        v
    }

    /// Is `command` one of this profile's audit commands?
    pub fn allows(self, command: &str) -> bool {
        self.probes().iter().any(|p| p.command == command)
    }

    /// The probe whose output gives the uptime (the proof of a reboot).
    pub fn uptime_probe(self) -> Probe {
        match self {
            Profile::Mikrotik => ROS_RESOURCE,
            _ => UPTIME,
        }
    }

    /// The command that reboots the device (sent only by `routers reboot`).
    pub fn reboot_command(self) -> &'static str {
        "reboot"
    }

    /// Can `routers reboot` reboot this platform? Not yet for RouterOS
    /// (`/system reboot` asks for a confirmation a non-interactive session
    /// cannot give) nor EdgeOS/VyOS (their SSH user is not root; the
    /// reboot goes through their own CLI): those are audited only, and a
    /// reboot of one is refused before anything is sent.
    pub fn reboot_supported(self) -> bool {
        matches!(
            self,
            Profile::Busybox | Profile::Openwrt | Profile::GenericLinux | Profile::Ddwrt
        )
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_are_read_only_and_distinct() {
        for p in ALL {
            assert_eq!(Profile::parse(p.as_str()), Ok(p));
            assert!(p.allows(p.uptime_probe().command));
            let probes = p.probes();
            for pr in &probes {
                assert!(p.allows(pr.command));
                for bad in [
                    "reboot",
                    " rm ",
                    "kill",
                    "> /",
                    ">>",
                    "wget",
                    "curl",
                    "chmod",
                    "uci set",
                    "uci commit",
                    "nvram set",
                    "nvram commit",
                    "nvram show",
                    " set ",
                    " remove",
                    " add ",
                    "/system reboot",
                    "/import",
                ] {
                    assert!(!pr.command.contains(bad), "{} contains {bad}", pr.id);
                }
            }
            let mut ids: Vec<_> = probes.iter().map(|p| p.id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), probes.len());
            assert!(!p.allows("reboot"));
            assert!(!p.allows("cat /proc/uptime; reboot"));
        }
    }
}
