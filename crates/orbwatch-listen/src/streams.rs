//! Stream names and message numbers per sender of a UDP listener.
//!
//! Why per sender: the pipeline keeps decoder state per stream (a syslog
//! decoder's guessed year and zone, NetFlow templates per exporter), and
//! two routers interleaving datagrams on one port must not share it. Why
//! bounded: UDP source addresses cost nothing to forge, so the table has a
//! cap; when it is full, the half least recently heard from is forgotten
//! (a forgotten sender that comes back starts again at number 1).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

/// Per-sender stream names and counters.
pub(crate) struct Streams<K> {
    /// `"syslog-udp 0.0.0.0:514 from "`: the name is the prefix and the key.
    prefix: String,
    /// Name of the stream, messages numbered so far, last use (a tick).
    map: HashMap<K, (Arc<str>, u64, u64)>,
    cap: usize,
    tick: u64,
    /// Senders forgotten to keep the table within its cap.
    pub(crate) evicted: u64,
}

impl<K: Hash + Eq + Copy + std::fmt::Display> Streams<K> {
    pub(crate) fn new(prefix: String, cap: usize) -> Self {
        Self {
            prefix,
            map: HashMap::new(),
            cap: cap.max(1),
            tick: 0,
            evicted: 0,
        }
    }

    /// The stream of `key` and the number of its next message (from 1).
    pub(crate) fn next(&mut self, key: K) -> (Arc<str>, u64) {
        self.tick += 1;
        let tick = self.tick;
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.evict_half();
        }
        let prefix = &self.prefix;
        let e = self
            .map
            .entry(key)
            .or_insert_with(|| (Arc::from(format!("{prefix}{key}")), 0, tick));
        e.1 += 1;
        e.2 = tick;
        (e.0.clone(), e.1)
    }

    fn evict_half(&mut self) {
        let mut ticks: Vec<u64> = self.map.values().map(|v| v.2).collect();
        let mid = ticks.len() / 2;
        let (_, cut, _) = ticks.select_nth_unstable(mid);
        let cut = *cut;
        let before = self.map.len();
        self.map.retain(|_, v| v.2 > cut);
        self.evicted += (before - self.map.len()) as u64;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn each_sender_is_numbered_apart_and_the_table_stays_bounded() {
        let mut s: Streams<IpAddr> = Streams::new("syslog-udp 0.0.0.0:514 from ".into(), 4);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            s.next(a),
            (Arc::from("syslog-udp 0.0.0.0:514 from 192.0.2.1"), 1)
        );
        assert_eq!(s.next(b).1, 1);
        assert_eq!(s.next(a).1, 2);
        for i in 10..1000u32 {
            s.next(IpAddr::from(i.to_be_bytes()));
            assert!(s.len() <= 4);
        }
        assert!(s.evicted >= 990);
    }
}
