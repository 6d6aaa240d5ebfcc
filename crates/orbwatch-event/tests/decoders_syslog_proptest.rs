//! Property tests: the syslog, CEF and LEEF decoders never panic, whatever
//! the bytes (random, or real lines with bytes replaced, cut or repeated).

use orbwatch_event::decoders::{DecoderConfig, by_name};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "Jun 21 16:47:48 host sshd[13709]: error: PAM: Authentication failure for x from 192.030.0.6",
    "<38>1 2019-07-08T17:40:17.954167-04:00 h sshd 55555 - [a b=\"[c]\"][d@1 e=\"\\\"\"] Failed unknown for invalid user r from 192.0.2.2 port 55555 ssh2",
    "Nov 11 08:04:52 r sshd[2737]: Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 127.0.0.1 port 58946 ssh2",
    "Jul 17 23:04:01 srv sshd[1300]: Connection closed by authenticating user test 127.0.0.1 port 12345 192.0.2.11 port 46039 [preauth]",
    "Sep 30 10:09:23 h kernel: [19955416.516358] [UFW BLOCK] IN=ens2 OUT= MAC=de:1c SRC=62.34.17.168 DST=10.73.140.49 LEN=44 PROTO=TCP SPT=52220 DPT=80 SYN URGP=0",
    "Sep 28 10:38:09 pfSense filterlog: 53,,,1000000301,em0,match,block,in,4,0x0,,64,420,0,none,6,tcp,460,10.0.2.2,10.0.2.15,53742,22,420,PA,29633380:29633800,3617062173,65535,,",
    "2023-03-18T20:36:59.594792+01:00 10.120.127.1 firewall,info drop-tcp input: in:ether1-WAN out:(unknown 0), src-mac 00:17:10:88:bc:02, proto TCP (SYN), [2001:db8::1]:59388->80.82.202.145:23, NAT (1.2.3.4:1->5.6.7.8:2)->9.9.9.9:3, len 40",
    "%ASA-6-302013: Built outbound TCP connection 9 for outside:10.1.2.1/22 (10.1.2.1/22) to inside:10.1.1.2/53496 (10.1.1.2/53496)",
    "%ASA-6-106100: access-list x denied tcp outside/1.2.3.4(1) -> inside/5.6.7.8(2) hit-cnt 1",
    "Sep 23 13:54:55 192.168.1.1 junos-flow: 2017-09-23T13:54:54.803Z s RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.39 source-address=\"192.168.1.1\" source-port=\"1080\"]",
    "date=2024-10-14 time=13:46:40 eventtime=1728938800841267391 tz=\"-0700\" logid=\"1\" type=\"event\" subtype=\"vpn\" action=\"ssl-login-fail\" remip=192.168.0.1 user=\"N/A\"",
    "id=firewall sn=1 time=\"2019-02-15 09:45:17 UTC\" fw=2.228.169.242 msg=\"x\" srcV6=fe80::1 src=:49702:X0 dstV6=ff02::1:3 dst=:5355 proto=udp/5355",
    "1 2019-05-15T16:25:50Z HOSTNAME CheckPoint 19710 - [action:\"Drop\"; ike::\"a\\]\"; src:\"11.22.33.77\"; s_port:\"55036\"; ]",
    "2023-07-06T08:11:40+02:00 pa 1,2023/07/06 08:11:40,016401002737,THREAT,vulnerability,2561,2023/07/06 08:11:40,1.2.3.2,1.2.3.3,1.2.3.2,2.2.2.3,R,,,ssh,v,U,D,a,b,c,2023/07/06 08:11:40,1,23,47094,22,47094,22,0x0,tcp,reset-both,\"u,v\",SSH(40015)",
    "type=USER_AUTH msg=audit(1373129280.000:9): pid=1 msg='op=pubkey acct=28756E6B6E6F776E207573657229 addr=194.228.20.113 res=failed'",
    "Sep 24 10:04:52 host2 smb[2725]: Auth: [SMB2,(null)] user []\\[toto] at [Fri, 24 Sep 2021 10:04:52.030937 UTC] status [NT_STATUS_NO_SUCH_USER] remote host [ipv4:1.2.3.4:62419] local host [ipv4:10.1.1.1:445]",
    "Oct 26 20:01:31 Express-7 CEF:0|Ubiquiti|UniFi\\|Net|10.0.140|201|Threat|7|proto=TCP src=198.51.100.10 spt=46621 c6a2=2001:db8::1 c6a2Label=Source rt=Oct 26 2025 19:59:41 msg=a\\=b",
    "LEEF:2.0|Acme|VPN|2.0|LoginFailure|x5E|src=198.51.100.7^usrName=bob^devTime=2021-07-20T10:00:00.000+0200^devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    "130324  0:04:00 [Warning] Access denied for user 'root'@'192.168.1.35' (using password: NO)",
    "2020-02-24 16:31:26.01 Logon       Login failed for user 'O'Leary'. Reason: x [CLIENT: 192.0.2.4]",
    "0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 +0200 policy DROP: IN=vmbr0.94 SRC=10.3.94.11 DST=10.3.94.12 PROTO=UDP SPT=49152 DPT=3784",
];

fn run_all(bytes: &[u8]) {
    for name in ["syslog", "cef", "leef"] {
        let info = by_name(name).expect("registered");
        let mut d = (info.make)(&DecoderConfig {
            year: Some(2021),
            map: vec![],
            ..Default::default()
        });
        let _ = d.decode(bytes);
        let mut f = d.fork();
        let _ = f.decode(bytes);
    }
    let lines: Vec<&[u8]> = vec![bytes];
    let _ = orbwatch_event::decoders::detect(&lines);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        run_all(&bytes);
    }

    #[test]
    fn mutated_real_lines_never_panic(
        seed in 0..SEEDS.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
        dup in 0usize..3,
    ) {
        let mut b = SEEDS[seed].as_bytes().to_vec();
        for (pos, byte) in edits {
            if !b.is_empty() {
                let i = pos % b.len();
                b[i] = byte;
            }
        }
        let n = if b.is_empty() { 0 } else { cut % (b.len() + 1) };
        b.truncate(n.max(b.len() / 2));
        let copy = b.clone();
        for _ in 0..dup {
            b.extend_from_slice(&copy);
        }
        run_all(&b);
    }

    #[test]
    fn ascii_soup_never_panics(s in "[ a-zA-Z0-9:.\\[\\]<>=|\",;'/()%#-]{0,300}") {
        run_all(s.as_bytes());
    }
}
