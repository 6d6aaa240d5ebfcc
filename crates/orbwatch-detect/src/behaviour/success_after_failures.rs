//! `success_after_failures`: a login that worked, from a source — or from
//! the /24 of sources — that failed before. It may be the moment a guess
//! came right, so it is reported as high severity.
//!
//! State: per (/24 or IPv6 /64, service) the failures within
//! `lookback_secs`; a source's own recent failures are read from the
//! shared per-key record of [`distributed`](super::distributed). One or two
//! failures then a success is a typo and says nothing (`min_failures` 3).

use std::net::IpAddr;

use super::key_table::KeyTable;
use super::{
    Draft, Obs, ObsKind, SuccessConfig, Tables, human_span, ms_of, new_finding, secs, severity_of,
};
use crate::finding::FindingKind;

/// Failures within the lookback; times in seconds since 2000.
#[derive(Debug, Clone, Copy, Default)]
struct Fails {
    first: u32,
    last: u32,
    count: u32,
}

impl Fails {
    fn add(&mut self, t: i64, lookback: i64) {
        if self.count == 0 || t - ms_of(self.last) > lookback {
            *self = Fails {
                first: secs(t),
                last: secs(t),
                count: 0,
            };
        }
        self.last = self.last.max(secs(t));
        self.count = self.count.saturating_add(1);
    }
    fn live(&self, t: i64, lookback: i64) -> u32 {
        if t - ms_of(self.last) > lookback {
            0
        } else {
            self.count
        }
    }
}

/// Bytes per tracked cluster (key and state).
pub const STATE_BYTES: usize = std::mem::size_of::<(u64, Fails)>();

/// A cluster key and a service in 64 bits: an IPv4 /24 takes 24 bits
/// exactly; an IPv6 /64 is hashed to 47 bits (collisions about 1 in
/// 10^14) and marked by the top bit. `u64::MAX` (the table's empty slot;
/// a hashed /64 on service id 65535) is one more such collision.
fn pack(cluster: u64, svc: u16) -> u64 {
    let c = if cluster >> 32 == 0 {
        cluster >> 8
    } else {
        (super::mix(cluster) & ((1 << 47) - 1)) | 1 << 47
    };
    (c << 16 | u64::from(svc)).min(u64::MAX - 1)
}

/// A cluster as a 64-bit key: the /24 for IPv4, the /64 (top bit set)
/// for IPv6.
pub fn cluster_key(ip: IpAddr) -> u64 {
    let c = cluster_of(ip);
    if c >> 64 == 0 {
        c as u64
    } else {
        ((c >> 64) as u64) | 1 << 63
    }
}

/// The cluster a source belongs to: its /24, or /64 for IPv6.
pub fn cluster_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4) & 0xffff_ff00),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4) & 0xffff_ff00),
            None => (u128::from(v6) & !0u128 << 64) | 1,
        },
    }
}

/// Display a cluster key as a prefix.
pub fn cluster_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The success-after-failures detector.
pub struct SuccessAfterFailures<'a> {
    cfg: &'a SuccessConfig,
    /// Keyed by cluster and service packed in 64 bits (see `pack`).
    by_cluster: KeyTable<Fails>,
    next_sweep: i64,
    /// Clusters forgotten over `max_clusters`.
    forgotten: u64,
}

impl<'a> SuccessAfterFailures<'a> {
    /// A detector with no state yet.
    pub fn new(cfg: &'a SuccessConfig) -> Self {
        Self {
            cfg,
            by_cluster: KeyTable::with_capacity(1 << 14),
            next_sweep: i64::MIN,
            forgotten: 0,
        }
    }

    /// (cluster, service) failure counts forgotten over `max_clusters`.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// A new cluster is about to be kept with `max_clusters` kept: the
    /// quarter whose last failure is oldest (then by key: the cluster's
    /// address bits and the service) is forgotten, counted and logged
    /// once. A success from one of them is then judged on its source's
    /// own failures only, as after `lookback_secs`.
    fn forget_oldest(&mut self) {
        let excess = super::excess_over_cap(
            self.by_cluster.len(),
            self.cfg.max_clusters,
            &mut self.forgotten,
            |cap, excess| {
                format!(
                    "more than {cap} (/24 or /64, service) failure counts at once (success_after_failures.max_clusters): the {excess} whose last failure is oldest are forgotten now instead of after success_after_failures.lookback_secs, and so on each time the limit is passed"
                )
            },
        );
        self.by_cluster
            .remove_least_ranked(excess, |k, f| (f.last, k));
    }

    /// Start loading the record of `o`'s cluster into cache (a hint).
    #[inline]
    pub fn prefetch(&self, o: &Obs, t: &Tables) {
        if let Some(ip) = t.ip(o.src) {
            self.by_cluster.prefetch(pack(cluster_key(ip), o.svc));
        }
    }

    /// Feed one auth observation. `own` is the source's failures within
    /// the lookback and the first of them (from the shared per-key record
    /// of `distributed`). Returns whether a finding was made (the caller
    /// then forgets those failures).
    pub fn observe(&mut self, o: &Obs, own: (u32, i64), t: &Tables, out: &mut Vec<Draft>) -> bool {
        let lookback = self.cfg.lookback_secs * 1000;
        if o.time >= self.next_sweep {
            let before = secs(o.time - lookback);
            self.by_cluster.retain(|f| f.last >= before);
            self.next_sweep = o.time + lookback;
        }
        let Some(ip) = t.ip(o.src) else {
            return false;
        };
        let ck = pack(cluster_key(ip), o.svc);
        if o.kind == ObsKind::AuthFailure {
            if super::at_cap(self.by_cluster.len(), self.cfg.max_clusters)
                && self.by_cluster.get(ck).is_none()
            {
                self.forget_oldest();
            }
            self.by_cluster
                .get_or_insert_with(ck, Fails::default)
                .add(o.time, lookback);
            return false;
        }
        let (own_n, own_first) = own;
        let cl = self.by_cluster.get(ck).copied().unwrap_or_default();
        let others = cl.live(o.time, lookback).saturating_sub(own_n);
        let by_self = own_n >= self.cfg.min_failures;
        let by_cluster = !by_self && others >= self.cfg.min_cluster_failures;
        if !by_self && !by_cluster {
            return false;
        }
        let service = t.service(o.svc);
        let user = t.name(o.aux as u32);
        let ip_s = ip.to_string();
        let first = if by_self { own_first } else { ms_of(cl.first) };
        let mut f = new_finding(
            FindingKind::SuccessAfterFailures,
            &[&ip_s, service, &o.time.to_string()],
            first,
            o.time,
            u64::from(own_n) + 1,
            Some(ip),
        );
        let acct = if user.is_empty() {
            String::new()
        } else {
            format!(" as {user}")
        };
        let svc_words = if service.is_empty() {
            String::new()
        } else {
            format!(" on {service}")
        };
        if by_self {
            f.reasons.push(format!(
                "successful login{acct}{svc_words} after {own_n} failed logins from the same address in {}",
                human_span(o.time - first)
            ));
        } else {
            f.reasons.push(format!(
                "successful login{acct}{svc_words} from {}, whose other addresses failed {others} times in the {} before",
                cluster_name(ip),
                human_span(o.time - first)
            ));
        }
        f.reasons
            .push("a guess may have succeeded: check this session".to_string());
        let score: u8 = if by_self { 80 } else { 70 };
        f.score = Some(score);
        f.severity = Some(severity_of(score));
        if !user.is_empty() {
            f.accounts = vec![user.to_string()];
        }
        if !service.is_empty() {
            f.targets = vec![service.to_string()];
        }
        f.details = Some(serde_json::json!({
            "service": service,
            "own_failures": own_n,
            "cluster": cluster_name(ip),
            "cluster_failures_by_others": others,
        }));
        out.push(Draft {
            finding: f,
            srcs: vec![o.src],
            kinds: vec![ObsKind::AuthFailure, ObsKind::AuthSuccess],
            svc: Some(o.svc),
            from: first,
            to: o.time,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::observe::NodeId;

    /// 2021-01-01 in ms.
    const BASE: i64 = 1_609_459_200_000;

    fn auth(kind: ObsKind, secs: i64, src: NodeId) -> Obs {
        Obs {
            svc: 1,
            dst_port: 22,
            ..Obs::test(kind, BASE + secs * 1000, src)
        }
    }

    /// Before the floods below: six addresses of 12.0.0.0/24 fail once
    /// each at the start, enough for a success from that /24 to be
    /// suspicious all day.
    fn fail_from_twelve(saf: &mut SuccessAfterFailures<'_>, t: &Tables, out: &mut Vec<Draft>) {
        for n in 1..=6 {
            saf.observe(
                &auth(ObsKind::AuthFailure, 0, 0x0c00_0000 | n),
                (0, 0),
                t,
                out,
            );
        }
    }

    /// Over `max_clusters`, the clusters whose last failure is oldest are
    /// forgotten: a flood of failures each from a new /24 keeps the table
    /// at the bound, and a /24 failing all along still makes its
    /// success suspicious.
    #[test]
    fn a_flood_of_new_clusters_keeps_the_failure_counts_bounded() {
        let cfg = SuccessConfig {
            max_clusters: 16,
            ..SuccessConfig::default()
        };
        let t = Tables::new();
        let mut saf = SuccessAfterFailures::new(&cfg);
        let mut out = Vec::new();
        let sprayers: [NodeId; 3] = [0x0a00_0001, 0x0a00_0002, 0x0a00_0003];
        fail_from_twelve(&mut saf, &t, &mut out);
        for i in 0..400i64 {
            // A new /24 each second, all well within the day's lookback.
            let flood = 0x0b00_0000 + ((i as NodeId) << 8);
            saf.observe(&auth(ObsKind::AuthFailure, i, flood), (0, 0), &t, &mut out);
            if i % 5 == 0 {
                let s = sprayers[(i / 5) as usize % 3];
                saf.observe(&auth(ObsKind::AuthFailure, i, s), (0, 0), &t, &mut out);
            }
            assert!(
                saf.by_cluster.len() <= 16,
                "at {i}: {}",
                saf.by_cluster.len()
            );
        }
        assert!(saf.forgotten() > 350, "{}", saf.forgotten());
        assert!(out.is_empty(), "failures alone say nothing: {out:?}");

        // A fourth address of the sprayers' /24 logs in: the others
        // failed 80 times, which the flood did not make it forget.
        let success = auth(ObsKind::AuthSuccess, 401, 0x0a00_0004);
        assert!(saf.observe(&success, (0, 0), &t, &mut out));
        assert_eq!(out.len(), 1, "{out:?}");
        let details = out[0].finding.details.as_ref().expect("details");
        assert_eq!(details["cluster"], "10.0.0.0/24");
        assert_eq!(details["cluster_failures_by_others"], 80);

        // 12.0.0.0/24 failed longest ago: forgotten, its success is
        // judged on its own failures only (none), and says nothing.
        let forgotten = auth(ObsKind::AuthSuccess, 402, 0x0c00_0007);
        assert!(!saf.observe(&forgotten, (0, 0), &t, &mut out));
    }

    /// Below the bound nothing is forgotten before the lookback, and the
    /// /24 that failed before the flood still counts.
    #[test]
    fn below_the_bound_no_cluster_is_forgotten() {
        let cfg = SuccessConfig::default();
        let t = Tables::new();
        let mut saf = SuccessAfterFailures::new(&cfg);
        let mut out = Vec::new();
        fail_from_twelve(&mut saf, &t, &mut out);
        for i in 0..400i64 {
            let src = 0x0b00_0000 + ((i as NodeId) << 8);
            saf.observe(&auth(ObsKind::AuthFailure, i, src), (0, 0), &t, &mut out);
        }
        assert_eq!(saf.by_cluster.len(), 401);
        assert_eq!(saf.forgotten(), 0);
        // The same success as in the flood above is suspicious here.
        let success = auth(ObsKind::AuthSuccess, 402, 0x0c00_0007);
        assert!(saf.observe(&success, (0, 0), &t, &mut out));
    }
}
