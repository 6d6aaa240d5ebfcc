//! The router lab: N small "routers" built by the tests, each in its own
//! network, mount, PID and time namespaces, with a busybox-static root file
//! system and dropbear. Every command an SSH client runs is logged by the
//! router's login shell (`/bin/logsh`, NUL-separated, in
//! `/var/log/commands` of its root), and the lab keeps its own log of
//! starts, "up" (SSH answers) and "down" (the router's init ended) with
//! millisecond times.
//!
//! A reboot (the `reboot` command over SSH, or [`Lab::hard_restart`]) ends
//! the router's init; its PID namespace dies with everything in it, and the
//! lab's supervisor thread starts it again after `reboot_delay`, in a fresh
//! time namespace (uptime back near 0) and a fresh mount namespace
//! (its `/tmp` is a new tmpfs, so what lived only in memory is gone).
//!
//! [`Lab`] always cleans up (Drop kills every process in each namespace and
//! deletes the namespaces); names carry the test process id and a counter so
//! parallel tests never collide.
#![allow(dead_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What is planted on a lab router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    Clean,
    /// A static binary copied to `/tmp/.xl` and run: listens on 7777 and
    /// greets with `xlogin:`. Nothing on disk; gone after a reboot.
    MemoryImplant,
    /// A binary at `/etc/.xl/xl-agent` (its hash goes in a test feed),
    /// started by an `@reboot` crontab entry, listening on 63256.
    PersistentImplant,
    /// `/etc/resolv.conf` names 203.0.113.53 instead of 192.0.2.53.
    HijackedDns,
    /// Traffic with "C2" addresses, all inside the router's own network
    /// namespace (the addresses sit on its loopback, nothing leaves it):
    /// a TCP connection to [`C2_TCP`]:4444, a UDP socket connected to
    /// [`C2_UDP`]:53, and one datagram to [`C2_GONE`]:123 from a socket
    /// closed at once, which only the connection-tracking table remembers.
    /// Conntrack is switched on by an iptables rule that uses it.
    C2Connections,
    /// NAT rules planted with iptables: a port forward of TCP 8443 to
    /// 203.0.113.7:11288 (an outside host, a Quad7 SOCKS port) and a
    /// redirect of TCP 2323 to the router's own port 7777.
    NatRedirect,
    /// An OpenWrt-like router (opkg file lists that own every program of
    /// its image) with one program no package owns: `/usr/sbin/xl-relay`,
    /// a copy of the implant binary, not running.
    UnownedExecutable,
    /// The same on an OpenWrt 25-like router, whose packages are apk's:
    /// the programs' owner is apk's database (`/lib/apk/db/installed`),
    /// and there are no opkg lists. (The lab's root has no `apk` program,
    /// so `apk audit` finds nothing to say.)
    UnownedExecutableApk,
}

/// The lab's stand-in C2 addresses (documentation ranges).
pub const C2_TCP: &str = "203.0.113.77";
pub const C2_UDP: &str = "198.51.100.99";
pub const C2_GONE: &str = "198.51.100.123";

#[derive(Debug, Clone)]
pub struct LabSpec {
    pub name: String,
    pub plant: Plant,
    /// Uptime offset of the first boot, in days (later boots start at 0).
    pub boottime_days: u64,
    pub reboot_delay: Duration,
    /// The inventory's profile: `busybox`, or `openwrt` (the root then
    /// has `/etc/openwrt_release` and opkg file lists for its programs).
    pub profile: &'static str,
    /// Run a DNS server for the health checks on 192.0.2.53 (the lab's
    /// expected DNS, on the router's own loopback) from `/etc/rc.local`,
    /// so that it is back after every reboot.
    pub dns_server: bool,
    /// Run the same DNS server once, started by the lab: gone after the
    /// first reboot (a service that does not come back).
    pub dns_until_reboot: bool,
    /// Root logs in with [`LAB_PASSWORD`] (no key is installed), and the
    /// inventory names [`LAB_PASSWORD_ENV`] instead of a key: a device
    /// that accepts nothing else.
    pub password: bool,
}

/// The password of a [`LabSpec::password`] router.
pub const LAB_PASSWORD: &str = "lab-router-pass";
/// The variable the inventory names for it.
pub const LAB_PASSWORD_ENV: &str = "ORBWATCH_LAB_ROUTER_PASSWORD";
/// `openssl passwd -6 -salt orbwatchlab lab-router-pass`.
const LAB_PASSWORD_HASH: &str = "$6$orbwatchlab$ARRpFp63vpYc5g4dNhfpCGMN2E3tT4rjmOqVV4ahHSoqBqqDO1BHgONFKGoDqCyf1/T6gM3VbdJohEKS.1mhX/";

impl LabSpec {
    pub fn new(name: &str, plant: Plant) -> LabSpec {
        LabSpec {
            name: name.into(),
            plant,
            boottime_days: 3,
            reboot_delay: Duration::from_millis(1500),
            profile: if matches!(
                plant,
                Plant::UnownedExecutable | Plant::UnownedExecutableApk
            ) {
                "openwrt"
            } else {
                "busybox"
            },
            dns_server: false,
            dns_until_reboot: false,
            password: false,
        }
    }
}

pub struct LabRouter {
    pub spec: LabSpec,
    pub netns: String,
    pub host_if: String,
    pub host_addr: Ipv4Addr,
    pub addr: Ipv4Addr,
    pub root: PathBuf,
    /// Once set, the router stays down after its next shutdown.
    pub never_return: AtomicBool,
    pub boots: AtomicU32,
}

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub routers: Vec<Arc<LabRouter>>,
    /// The client key the routers accept.
    pub key: PathBuf,
    pub log: PathBuf,
    /// SHA-256 of the persistent implant binary (for a test feed).
    pub persistent_sha256: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    memory_implant: PathBuf,
    c2: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn require_tools() -> bool {
    std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1")
}

fn skip(why: &str) -> Option<()> {
    if require_tools() {
        panic!("router lab unavailable and ORBWATCH_REQUIRE_TOOLS=1: {why}");
    }
    println!("skipped: router lab unavailable: {why}");
    None
}

fn which(name: &str) -> Option<PathBuf> {
    for d in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ] {
        let p = Path::new(d).join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// Can this machine build the lab? Prints the skip line (or panics under
/// ORBWATCH_REQUIRE_TOOLS=1) when not.
pub fn lab_available() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("not running as root (network namespaces need it)").is_some();
    }
    for t in [
        "ip",
        "unshare",
        "nsenter",
        "dropbear",
        "dropbearkey",
        "busybox",
        "ssh",
        "ssh-keygen",
        "gcc",
        "ldd",
        "nft",
        "xtables-nft-multi",
        "iptables",
    ] {
        if which(t).is_none() {
            return skip(&format!(
                "{t} not installed (apt-get install iproute2 util-linux dropbear-bin busybox-static openssh-client gcc nftables iptables)"
            ))
            .is_some();
        }
    }
    let bb = which("busybox").unwrap_or_default();
    let out = Command::new("ldd").arg(&bb).output();
    if let Ok(o) = out
        && String::from_utf8_lossy(&o.stdout).contains("=>")
    {
        return skip("busybox is not static (apt-get install busybox-static)").is_some();
    }
    true
}

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn log_event(log: &Path, router: &str, event: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{} {router} {event}", now_ms());
    }
}

const IMPLANT_C: &str = r#"
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static const char tag[] = TAG;
int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7777;
    const char *banner = argc > 2 ? argv[2] : "xlogin:";
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = INADDR_ANY;
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 8)) return 1;
    if (fork() > 0) return 0;
    setsid();
    signal(SIGPIPE, SIG_IGN);
    if (argc > 99 && write(1, tag, sizeof tag) < 0) return 2;
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        if (write(c, banner, strlen(banner)) < 0 || write(c, " ", 1) < 0) {}
        close(c);
    }
}
"#;

/// The C2 traffic of [`Plant::C2Connections`]: a listener and a client on
/// [`C2_TCP`], a connected UDP socket, a one-shot datagram; then it stays
/// in the background holding the sockets.
const C2_C: &str = r#"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static struct sockaddr_in at(const char *ip, int port) {
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_port = htons(port); inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}
int main(void) {
    struct sockaddr_in t = at(C2_TCP, 4444), u = at(C2_UDP, 53), g = at(C2_GONE, 123);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&t, sizeof t) || listen(l, 1)) return 1;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&t, sizeof t)) return 2;
    if (accept(l, 0, 0) < 0) return 3;
    int d = socket(AF_INET, SOCK_DGRAM, 0);
    if (connect(d, (struct sockaddr *)&u, sizeof u) || send(d, "x", 1, 0) != 1) return 4;
    int o = socket(AF_INET, SOCK_DGRAM, 0);
    if (sendto(o, "x", 1, 0, (struct sockaddr *)&g, sizeof g) != 1) return 5;
    close(o);
    if (fork() > 0) return 0;
    setsid();
    for (;;) pause();
}
"#;

/// A DNS server for the health checks: answers every A question with
/// 192.0.2.80 and every other question with no answer (NOERROR).
const DNS_C: &str = r#"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_port = htons(53); inet_pton(AF_INET, "192.0.2.53", &a.sin_addr);
    if (bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
    if (fork() > 0) return 0;
    setsid();
    for (;;) {
        unsigned char b[600]; struct sockaddr_in p; socklen_t pl = sizeof p;
        int n = recvfrom(s, b, 512, 0, (struct sockaddr *)&p, &pl);
        if (n < 12) continue;
        int i = 12;
        while (i < n && b[i]) i += b[i] + 1;
        i += 5;
        if (i > n) continue;
        int qtype = (b[i - 4] << 8) | b[i - 3];
        b[2] = 0x81; b[3] = 0x80; b[6] = 0; b[7] = qtype == 1; b[8] = b[9] = b[10] = b[11] = 0;
        if (qtype == 1) {
            unsigned char ans[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 80};
            memcpy(b + i, ans, sizeof ans); i += sizeof ans;
        }
        sendto(s, b, i, 0, (struct sockaddr *)&p, pl);
    }
}
"#;

const LOGSH: &str = r#"#!/bin/busybox sh
# The router's login shell: it logs every command an SSH client runs.
# crond runs root's jobs through this shell too (the persistent implant's
# watchdog entry, every minute); dropbear sets SSH_CONNECTION and crond
# does not, so only SSH clients' commands reach the log.
[ -n "$SSH_CONNECTION" ] || exec /bin/sh "$@"
if [ "$1" = "-c" ]; then printf '%s\0' "$2" >> /var/log/commands; exec /bin/sh -c "$2"; fi
printf '%s\0' "<interactive>" >> /var/log/commands
exec /bin/sh "$@"
"#;

const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t tmpfs tmpfs /tmp
mkdir -p /var/run /dev/shm
mount -t tmpfs tmpfs /var/run
mount -t tmpfs tmpfs /dev/shm
ip link set lo up
[ -x /etc/rc.local ] && /etc/rc.local
[ -d /etc/crontabs ] && crond -c /etc/crontabs
/sbin/dropbear -R -E -p 22 -r /etc/dropbear/dropbear_ed25519_host_key -P /var/run/dropbear.pid 2>>/var/log/dropbear.log
trap 'exit 0' TERM INT HUP
while :; do sleep 1 & wait; done
"#;

impl Lab {
    /// Build and start the routers; `None` (after the skip line) when the
    /// machine cannot.
    pub fn start(specs: &[LabSpec]) -> Option<Lab> {
        if !lab_available() {
            return None;
        }
        // The namespaces (and routers) of labs whose test process was
        // killed outright: `Drop` below did not run for them.
        orbwatch_testns::remove_stale("owlab-");
        let dir = tempfile::Builder::new()
            .prefix("orbwatch-lab")
            .tempdir()
            .expect("tempdir");
        let key = dir.path().join("id_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "orbwatch-lab", "-f"])
            .arg(&key));
        let pubkey = std::fs::read_to_string(key.with_extension("pub")).expect("pub key");
        // The stand-in implants: static, so they run in a busybox root.
        let src = dir.path().join("implant.c");
        std::fs::write(&src, IMPLANT_C).expect("write implant.c");
        let memory_implant = dir.path().join("implant-mem");
        let persistent = dir.path().join("implant-persist");
        for (out, tag) in [
            (&memory_implant, "\"mem\""),
            (&persistent, "\"persistent agent\""),
        ] {
            run(Command::new("gcc")
                .args(["-static", "-O1", "-o"])
                .arg(out)
                .arg(format!("-DTAG={tag}"))
                .arg(&src));
        }
        let persistent_sha256 = sha256_file(&persistent);
        let c2_src = dir.path().join("c2.c");
        std::fs::write(&c2_src, C2_C).expect("write c2.c");
        let c2 = dir.path().join("lab-c2");
        run(Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(&c2)
            .arg(format!("-DC2_TCP=\"{C2_TCP}\""))
            .arg(format!("-DC2_UDP=\"{C2_UDP}\""))
            .arg(format!("-DC2_GONE=\"{C2_GONE}\""))
            .arg(&c2_src));
        let dns_src = dir.path().join("dns.c");
        std::fs::write(&dns_src, DNS_C).expect("write dns.c");
        let dns = dir.path().join("lab-dns");
        run(Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(&dns)
            .arg(&dns_src));
        let log = dir.path().join("lab.log");
        let pid = std::process::id();
        let stop = Arc::new(AtomicBool::new(false));
        let mut lab = Lab {
            routers: Vec::new(),
            key,
            log,
            persistent_sha256,
            stop,
            threads: Vec::new(),
            memory_implant,
            c2,
            dir,
        };
        for spec in specs {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let a = 100 + (pid % 100) as u8;
            let (b, c) = ((n / 64) as u8, ((n % 64) * 4) as u8);
            let root = lab.dir.path().join(&spec.name);
            let r = Arc::new(LabRouter {
                spec: spec.clone(),
                netns: format!("owlab-{pid}-{n}"),
                host_if: format!("ow{:x}h{n}", pid & 0xff_ffff),
                host_addr: Ipv4Addr::new(10, a, b, c + 1),
                addr: Ipv4Addr::new(10, a, b, c + 2),
                root,
                never_return: AtomicBool::new(false),
                boots: AtomicU32::new(0),
            });
            // Push first, so Drop tears down whatever was created.
            lab.routers.push(r.clone());
            build_root(&r, &pubkey, &persistent, &dns);
            network(&r);
            lab.threads
                .push(supervise(r, lab.stop.clone(), lab.log.clone()));
        }
        for i in 0..lab.routers.len() {
            assert!(
                lab.wait_up(i, Duration::from_secs(20)),
                "lab router {i} did not come up"
            );
        }
        for i in 0..lab.routers.len() {
            let r = lab.routers[i].clone();
            match r.spec.plant {
                Plant::MemoryImplant => lab.plant_memory_implant(i),
                Plant::PersistentImplant => {
                    lab.run_inside(
                        i,
                        "/etc/.xl/xl-agent 63256 login: </dev/null >/dev/null 2>&1",
                        None,
                    );
                    assert!(
                        wait_port(r.addr, 63256, Duration::from_secs(20)),
                        "the persistent implant of {} did not start from cron",
                        r.spec.name
                    );
                }
                Plant::C2Connections => lab.plant_c2(i),
                Plant::NatRedirect => {
                    for rule in [
                        "-t nat -A PREROUTING -p tcp --dport 8443 -j DNAT --to-destination 203.0.113.7:11288",
                        "-t nat -A PREROUTING -p tcp --dport 2323 -j REDIRECT --to-ports 7777",
                    ] {
                        run(Command::new("ip")
                            .args(["netns", "exec", &r.netns, "iptables"])
                            .args(rule.split(' ')));
                    }
                }
                _ => {}
            }
            if r.spec.dns_until_reboot {
                lab.run_inside(i, "/usr/sbin/lab-dns </dev/null >/dev/null 2>&1", None);
            }
        }
        Some(lab)
    }

    /// The address of router `i`.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.routers[i].addr
    }

    /// The PID (on the host) of router `i`'s init, if it runs.
    pub fn init_pid(&self, i: usize) -> Option<u32> {
        let pids = ns_pids(&self.routers[i].netns);
        // The init is the child of `unshare`.
        let exe = |p: u32| std::fs::read_link(format!("/proc/{p}/exe")).unwrap_or_default();
        let ppid = |p: u32| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
        };
        pids.iter().copied().find(|p| {
            exe(*p).ends_with("busybox") && ppid(*p).is_some_and(|pp| exe(pp).ends_with("unshare"))
        })
    }

    /// Run a shell command inside router `i` (its namespaces and root),
    /// as the lab, not through SSH (so it is not in the command log).
    pub fn run_inside(&self, i: usize, script: &str, stdin: Option<&Path>) {
        let pid = self.init_pid(i).expect("router init running");
        let input = match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).expect("stdin file")),
            None => Stdio::null(),
        };
        let st = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "-p", "-n", "-r", "-w"])
            .args(["/bin/sh", "-c", script])
            .stdin(input)
            .status()
            .expect("nsenter");
        assert!(st.success(), "{script} on {}", self.routers[i].spec.name);
    }

    /// Copy the memory-only implant into the router's `/tmp` and run it.
    pub fn plant_memory_implant(&self, i: usize) {
        self.run_inside(
            i,
            "cat > /tmp/.xl && chmod 755 /tmp/.xl && /tmp/.xl 7777 xlogin: </dev/null >/dev/null 2>&1",
            Some(&self.memory_implant),
        );
        assert!(
            wait_port(self.routers[i].addr, 7777, Duration::from_secs(10)),
            "memory implant not listening"
        );
    }

    /// Plant [`Plant::C2Connections`] on router `i` (see there).
    pub fn plant_c2(&self, i: usize) {
        let ns = self.routers[i].netns.clone();
        for a in [C2_TCP, C2_UDP, C2_GONE] {
            run(Command::new("ip").args([
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                "lo",
            ]));
        }
        // Conntrack runs in a namespace only once a rule needs it; a router
        // always has such rules. UDP flows are kept 10 minutes (30 s by
        // default) so that a slow test still sees the one-shot datagram.
        run(Command::new("ip").args([
            "netns",
            "exec",
            &ns,
            "iptables",
            "-A",
            "OUTPUT",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ]));
        run(Command::new("ip").args([
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.netfilter.nf_conntrack_udp_timeout=600",
        ]));
        self.run_inside(
            i,
            "cat > /usr/sbin/lab-c2 && chmod 755 /usr/sbin/lab-c2 && /usr/sbin/lab-c2 </dev/null >/dev/null 2>&1",
            Some(&self.c2),
        );
    }

    /// Wait until router `i` answers on port 22.
    pub fn wait_up(&self, i: usize, timeout: Duration) -> bool {
        wait_port(self.routers[i].addr, 22, timeout)
    }

    /// Kill everything in router `i` (a power cut); the supervisor starts
    /// it again.
    pub fn hard_restart(&self, i: usize) {
        for p in ns_pids(&self.routers[i].netns) {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
    }

    /// Give router `i` a new SSH host key and restart it.
    pub fn change_host_key(&self, i: usize) {
        let k = self.routers[i]
            .root
            .join("etc/dropbear/dropbear_ed25519_host_key");
        let _ = std::fs::remove_file(&k);
        run(Command::new("dropbearkey")
            .args(["-t", "ed25519", "-f"])
            .arg(&k));
        let boots = self.routers[i].boots.load(Ordering::SeqCst);
        self.hard_restart(i);
        let t = Instant::now();
        while self.routers[i].boots.load(Ordering::SeqCst) == boots
            && t.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(self.wait_up(i, Duration::from_secs(20)));
    }

    /// The commands SSH clients ran on router `i`, in order.
    pub fn commands(&self, i: usize) -> Vec<String> {
        let b = std::fs::read(self.routers[i].root.join("var/log/commands")).unwrap_or_default();
        b.split(|c| *c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    /// The lab's log: (ms, router, event).
    pub fn events(&self) -> Vec<(u128, String, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split(' ');
                Some((
                    w.next()?.parse().ok()?,
                    w.next()?.to_string(),
                    w.next()?.to_string(),
                ))
            })
            .collect()
    }

    /// The largest number of routers down at once, from the lab's log.
    pub fn max_down_at_once(&self) -> usize {
        let mut down = std::collections::BTreeSet::new();
        let mut max = 0;
        for (_, r, e) in self.events() {
            match e.as_str() {
                "down" => {
                    down.insert(r);
                }
                "up" => {
                    down.remove(&r);
                }
                _ => {}
            }
            max = max.max(down.len());
        }
        max
    }

    /// An inventory for the lab; `extra(i)` adds keys to router `i`.
    pub fn inventory(&self, extra: impl Fn(usize) -> String) -> String {
        let mut s = String::from("[policy]\nmax_uptime_days = 30\nreboot_timeout_secs = 20\n\n");
        for (i, r) in self.routers.iter().enumerate() {
            let login = if r.spec.password {
                format!("password_env = \"{LAB_PASSWORD_ENV}\"")
            } else {
                format!("identity = \"{}\"", self.key.display())
            };
            s.push_str(&format!(
                "[[router]]\nname = \"{}\"\nhost = \"{}\"\nuser = \"root\"\n{login}\nprofile = \"{}\"\nexpected_dns = [\"192.0.2.53\"]\nexpected_listeners = [22]\n{}\n\n",
                r.spec.name,
                r.addr,
                r.spec.profile,
                extra(i)
            ));
        }
        s
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for r in &self.routers {
            for p in ns_pids(&r.netns) {
                // SAFETY: kill has no memory preconditions.
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for r in &self.routers {
            let _ = Command::new("ip")
                .args(["netns", "del", &r.netns])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("ip")
                .args(["link", "del", &r.host_if])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The processes running inside namespace `ns`.
fn ns_pids(ns: &str) -> Vec<u32> {
    orbwatch_testns::namespace_pids(ns)
}

pub fn wait_port(addr: Ipv4Addr, port: u16, timeout: Duration) -> bool {
    let t = Instant::now();
    let sa = SocketAddr::from((addr, port));
    while t.elapsed() < timeout {
        if TcpStream::connect_timeout(&sa, Duration::from_millis(300)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub fn sha256_file(p: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

fn build_root(r: &LabRouter, pubkey: &str, persistent: &Path, dns_server: &Path) {
    let root = &r.root;
    for d in [
        "bin",
        "sbin",
        "etc/dropbear",
        "root/.ssh",
        "tmp",
        "proc",
        "dev",
        "var/log",
        "var/run",
        "lib64",
        "usr/sbin",
        "usr/bin",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let bb = which("busybox").expect("busybox");
    std::fs::copy(&bb, root.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for a in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        let p = root.join("bin").join(a);
        if !p.exists() {
            let _ = std::os::unix::fs::symlink("busybox", p);
        }
    }
    // dropbear, nft and iptables-save (the nft back end's multi-call
    // binary, named as the command) with the libraries they link, and the
    // xtables extensions iptables-save loads to print matches.
    for (tool, dst) in [
        ("dropbear", "sbin/dropbear"),
        ("nft", "usr/sbin/nft"),
        ("xtables-nft-multi", "usr/sbin/iptables-save"),
    ] {
        let bin = which(tool).expect(tool);
        std::fs::copy(&bin, root.join(dst)).unwrap_or_else(|e| panic!("copy {tool}: {e}"));
        copy_libs(root, &bin);
    }
    copy_tree(Path::new("/usr/lib/x86_64-linux-gnu/xtables"), root);
    let w = |rel: &str, text: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let p = root.join(rel);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    w("bin/logsh", LOGSH, 0o755);
    w("sbin/lab-init", INIT, 0o755);
    let hash = if r.spec.password {
        LAB_PASSWORD_HASH
    } else {
        "x"
    };
    w(
        "etc/passwd",
        &format!("root:{hash}:0:0:root:/root:/bin/logsh\n"),
        0o644,
    );
    w("etc/group", "root:x:0:\n", 0o644);
    w("etc/shells", "/bin/logsh\n/bin/sh\n", 0o644);
    w(
        "etc/os-release",
        "NAME=\"Orbwatch lab\"\nID=orblab\nVERSION_ID=1.0\nPRETTY_NAME=\"Orbwatch lab router 1.0\"\n",
        0o644,
    );
    let dns = if r.spec.plant == Plant::HijackedDns {
        "203.0.113.53"
    } else {
        "192.0.2.53"
    };
    w("etc/resolv.conf", &format!("nameserver {dns}\n"), 0o644);
    // A password router has no key installed: the password is the only
    // way in.
    if !r.spec.password {
        w("root/.ssh/authorized_keys", pubkey, 0o600);
    }
    {
        use std::os::unix::fs::PermissionsExt;
        for d in ["root", "root/.ssh"] {
            std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o700))
                .expect("chmod");
        }
    }
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let p = root.join("dev").join(name);
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid C string; mknod has no other preconditions.
        let rc = unsafe {
            libc::mknod(
                c.as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(major, minor),
            )
        };
        assert_eq!(rc, 0, "mknod {}", p.display());
        // mknod honours the umask.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).expect("chmod dev");
    }
    run(Command::new("dropbearkey")
        .args(["-t", "ed25519", "-f"])
        .arg(root.join("etc/dropbear/dropbear_ed25519_host_key"))
        .stdout(Stdio::null()));
    if r.spec.profile == "openwrt" {
        openwrt_lists(root, r.spec.plant == Plant::UnownedExecutableApk);
    }
    if r.spec.dns_server || r.spec.dns_until_reboot {
        std::fs::copy(dns_server, root.join("usr/sbin/lab-dns")).expect("copy lab-dns");
    }
    if r.spec.dns_server {
        w("etc/rc.local", "#!/bin/sh\n/usr/sbin/lab-dns\n", 0o755);
    }
    if matches!(
        r.spec.plant,
        Plant::UnownedExecutable | Plant::UnownedExecutableApk
    ) {
        std::fs::copy(persistent, root.join("usr/sbin/xl-relay")).expect("copy implant");
    }
    if r.spec.plant == Plant::PersistentImplant {
        std::fs::create_dir_all(root.join("etc/.xl")).expect("mkdir");
        std::fs::copy(persistent, root.join("etc/.xl/xl-agent")).expect("copy implant");
        std::fs::create_dir_all(root.join("etc/crontabs")).expect("mkdir");
        // Busybox crond runs `@reboot` only at its first minute tick, so a
        // watchdog entry is as quick; the lab starts the first instance.
        w(
            "etc/crontabs/root",
            "* * * * * /etc/.xl/xl-agent 63256 login:\n",
            0o600,
        );
    }
}

/// Make the root look like OpenWrt's to the audit: `/etc/openwrt_release`
/// and the package manager's record of every file now in the program
/// folders (as the firmware image's packages would have): one opkg file
/// list per program (OpenWrt 23.05), or with `apk` one package per
/// program in apk's installed database (OpenWrt 25.12).
fn openwrt_lists(root: &Path, apk: bool) {
    let release = if apk { "25.12.0" } else { "23.05.5" };
    std::fs::write(
        root.join("etc/openwrt_release"),
        format!("DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='{release}'\nDISTRIB_REVISION='r24106-10cc5fcd00'\nDISTRIB_TARGET='x86/64'\nDISTRIB_DESCRIPTION='OpenWrt {release} r24106-10cc5fcd00'\n"),
    )
    .expect("write openwrt_release");
    let info = root.join("usr/lib/opkg/info");
    let mut installed = String::new();
    for dir in ["bin", "sbin", "usr/bin", "usr/sbin"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let ft = e.file_type().expect("file type");
            let name = e.file_name().to_string_lossy().into_owned();
            if !ft.is_file() {
                continue;
            }
            if apk {
                installed.push_str(&format!(
                    "P:{name}\nV:1.0-r1\nA:x86_64\nF:{dir}\nR:{name}\na:0:0:755\n\n"
                ));
            } else {
                std::fs::create_dir_all(&info).expect("mkdir opkg info");
                std::fs::write(
                    info.join(format!("{name}.list")),
                    format!("/{dir}/{name}\n"),
                )
                .expect("write list");
            }
        }
    }
    if apk {
        std::fs::create_dir_all(root.join("lib/apk/db")).expect("mkdir apk db");
        std::fs::write(root.join("lib/apk/db/installed"), installed).expect("write apk db");
    }
}

/// Copy the shared libraries `bin` links into `root`, at the same paths.
fn copy_libs(root: &Path, bin: &Path) {
    let ldd = Command::new("ldd").arg(bin).output().expect("ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let lib = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(lib) = lib {
            let dst = root.join(lib.trim_start_matches('/'));
            if dst.exists() {
                continue;
            }
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent).expect("mkdir lib");
            }
            std::fs::copy(lib, &dst).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
        }
    }
}

/// Copy the files of folder `src` (not recursive; symlinks followed) into
/// `root` at the same path, when it exists (the xtables extensions'
/// folder depends on the architecture; without it iptables-save prints
/// matches less fully). They link only libraries already copied.
fn copy_tree(src: &Path, root: &Path) {
    let Ok(rd) = std::fs::read_dir(src) else {
        return;
    };
    let dst = root.join(src.strip_prefix("/").unwrap_or(src));
    std::fs::create_dir_all(&dst).expect("mkdir");
    for e in rd.flatten() {
        let p = e.path();
        if p.is_file() {
            let _ = std::fs::copy(&p, dst.join(e.file_name()));
        }
    }
}

fn network(r: &LabRouter) {
    run(Command::new("ip").args(["netns", "add", &r.netns]));
    run(Command::new("ip").args([
        "link", "add", &r.host_if, "type", "veth", "peer", "name", "eth0", "netns", &r.netns,
    ]));
    run(Command::new("ip").args([
        "addr",
        "add",
        &format!("{}/30", r.host_addr),
        "dev",
        &r.host_if,
    ]));
    run(Command::new("ip").args(["link", "set", &r.host_if, "up"]));
    run(Command::new("ip").args([
        "-n",
        &r.netns,
        "addr",
        "add",
        &format!("{}/30", r.addr),
        "dev",
        "eth0",
    ]));
    run(Command::new("ip").args(["-n", &r.netns, "link", "set", "eth0", "up"]));
    run(Command::new("ip").args(["-n", &r.netns, "link", "set", "lo", "up"]));
    if r.spec.dns_server || r.spec.dns_until_reboot {
        run(Command::new("ip").args(["-n", &r.netns, "addr", "add", "192.0.2.53/32", "dev", "lo"]));
    }
}

fn start_router(r: &LabRouter, first: bool) -> Child {
    let offset = if first {
        r.spec.boottime_days * 86_400
    } else {
        0
    };
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &r.netns,
            "unshare",
            "--pid",
            "--mount",
            "--time",
            "--boottime",
        ])
        .arg(offset.to_string())
        .args(["--fork", "chroot"])
        .arg(&r.root)
        .arg("/sbin/lab-init")
        // A router boots with an empty environment, not the test's: crond
        // runs jobs through `$SHELL` when set (the host's /bin/bash, absent
        // in the root), else through root's login shell.
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lab router")
}

/// Run router `r`, restart it when it ends, log every transition.
fn supervise(r: Arc<LabRouter>, stop: Arc<AtomicBool>, log: PathBuf) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut first = true;
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            log_event(&log, &r.spec.name, "start");
            let mut child = start_router(&r, first);
            first = false;
            r.boots.fetch_add(1, Ordering::SeqCst);
            let mut up = false;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if stop.load(Ordering::SeqCst) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                if !up && wait_port(r.addr, 22, Duration::from_millis(200)) {
                    up = true;
                    log_event(&log, &r.spec.name, "up");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            log_event(&log, &r.spec.name, "down");
            if stop.load(Ordering::SeqCst) || r.never_return.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(r.spec.reboot_delay);
        }
    })
}
