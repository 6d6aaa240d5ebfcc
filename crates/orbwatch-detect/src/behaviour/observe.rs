//! Observations: the few facts of an event that behaviour detectors use,
//! packed into 40 bytes so a hunt can keep every one of them and replay
//! them in event-time order after the parallel sweep.
//!
//! Decoding runs on many threads over files and chunks in any order; the
//! detectors need one stream sorted by event time. Each unit of work turns
//! its events into [`Obs`] with its own [`Tables`] (interned addresses and
//! names); [`ObsBuffer::merge`] remaps them into one set of tables, and
//! [`ObsBuffer::sort`] orders them by (time, input, line), a key that does
//! not depend on which thread finished first.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use hashbrown::HashMap;
use orbwatch_event::{Action, AuthOutcome, Event, EventKind, Proto};

use crate::direction::InternalNets;

/// What an observation records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ObsKind {
    /// A failed login (`aux` = account id, 0 when unknown).
    AuthFailure = 0,
    /// A successful login (`aux` = account id).
    AuthSuccess = 1,
    /// A connection attempt that was denied or never answered: a firewall
    /// deny, Zeek `S0`/`REJ`/`RSTOS0`…, an EVE TCP flow left `new` with
    /// nothing back, a logged bare SYN.
    Probe = 2,
    /// Bytes sent from an internal host to an external one (`aux` = bytes).
    /// Summed per (source, destination, hour) inside a unit of work.
    Outbound = 3,
    /// Traffic to or from a port router backdoors listen on.
    BackdoorPort = 4,
    /// Connections of one source that were answered or allowed, counted
    /// per hour inside a unit of work (`aux` = count; time = the hour's
    /// last millisecond). Lets `port_scan` tell a scanner from a busy
    /// client whose few failures are lost among its successes.
    Answered = 5,
    /// A logon attempt whose outcome the record does not give (Windows
    /// 4648, explicit credentials; `aux` = target account id).
    AuthAttempt = 6,
    /// An IDS verdict naming a scan or a brute force (Suricata alert
    /// signature, Zeek notice; `svc` = signature id, `aux` = class, see
    /// [`ids_verdict`](super::ids_verdict)).
    IdsVerdict = 7,
    /// A connection that was answered, to a login service whose outcome
    /// the network cannot see (SSH, RDP, SMB, VNC, Telnet; `svc` = service
    /// id). See [`login_flood`](super::login_flood).
    LoginConnection = 8,
}

impl ObsKind {
    /// The kind of a stored discriminant (spilled runs).
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::AuthFailure,
            1 => Self::AuthSuccess,
            2 => Self::Probe,
            3 => Self::Outbound,
            4 => Self::BackdoorPort,
            5 => Self::Answered,
            6 => Self::AuthAttempt,
            7 => Self::IdsVerdict,
            8 => Self::LoginConnection,
            _ => return None,
        })
    }
}

/// `flags` bit: the account does not exist (`Invalid user`, 0xC0000064).
pub const FLAG_INVALID_USER: u8 = 1;
/// `flags` bit: the probe's destination is internal.
pub const FLAG_DST_INTERNAL: u8 = 2;
/// `flags` bit: the source is internal.
pub const FLAG_SRC_INTERNAL: u8 = 4;

/// A source or destination of an observation: an IPv4 address held in
/// the id itself, an interned IPv6 address, or a named host.
///
/// IPv4 addresses are not interned, so a hunt over months of logs from
/// millions of distinct sources keeps no table that grows with them, and
/// ids are the same in every unit of work (no remapping when units are
/// merged, spilled or streamed). Layout:
/// - below 2^32: the IPv4 address;
/// - [`V6_SOURCE`] set: index into the IPv6 table;
/// - [`NAMED_SOURCE`] set: index into the name table;
/// - [`NONE`]: no address.
pub type NodeId = u64;

/// No address / no name.
pub const NONE: NodeId = u64::MAX;

/// Source ids with this bit set name a host, not an address: an auth
/// event with no source address (a local Windows logon, 4776 NTLM
/// validation) is keyed by the host that logged it, so a local brute
/// force is still seen. The rest of the id indexes the name table.
pub const NAMED_SOURCE: NodeId = 1 << 63;

/// Ids with this bit set (and not [`NAMED_SOURCE`]) index the IPv6 table.
pub const V6_SOURCE: NodeId = 1 << 62;

/// One observation (48 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obs {
    /// Event time, milliseconds since the Unix epoch.
    pub time: i64,
    /// Account id for auth observations, bytes for `Outbound`.
    pub aux: u64,
    /// Where the record is: `input << 40 | line`. See [`evidence_ref`].
    pub evidence: u64,
    /// Source address or host (see [`NodeId`]).
    pub src: NodeId,
    /// Destination address, or [`NONE`].
    pub dst: NodeId,
    pub dst_port: u16,
    /// Interned service name (see [`Tables::service`]), 0 = none.
    pub svc: u16,
    pub kind: ObsKind,
    pub flags: u8,
}

#[cfg(test)]
impl Obs {
    /// A test's observation of `kind` at `time` from `src` to 192.168.0.1,
    /// with no port, service, account, evidence or flags: the detectors'
    /// tests set only the fields they are about.
    pub(crate) fn test(kind: ObsKind, time: i64, src: NodeId) -> Obs {
        Obs {
            time,
            aux: 0,
            evidence: 0,
            src,
            dst: 0xc0a8_0001,
            dst_port: 0,
            svc: 0,
            kind,
            flags: 0,
        }
    }
}

/// Lines above 2^40 (a trillion) are clamped; inputs above 2^24 are too.
pub fn evidence_ref(input: usize, line: u64) -> u64 {
    let input = (input as u64).min((1 << 24) - 1);
    input << 40 | line.min((1 << 40) - 1)
}

/// The (input, line) of an evidence reference.
pub fn evidence_parts(r: u64) -> (usize, u64) {
    ((r >> 40) as usize, r & ((1 << 40) - 1))
}

/// What an interned value is known by apart from its id: ids depend on
/// the order in which the units' buffers were merged, so detectors that
/// hash a value hash this key (see [`Tables::ip_key`]).
pub trait InternKey {
    fn intern_key(&self) -> u64;
}

impl InternKey for Box<str> {
    fn intern_key(&self) -> u64 {
        crate::finding::fnv1a_64(self.bytes())
    }
}

/// The value a given-back id holds until it is handed out again: one
/// that is never interned into its table (the empty name is id 0 and
/// never given back; the IPv6 table holds no IPv4 address).
pub trait Vacant {
    fn vacant() -> Self;
    fn is_vacant(&self) -> bool;
}

impl Vacant for Box<str> {
    fn vacant() -> Self {
        Box::from("")
    }
    fn is_vacant(&self) -> bool {
        self.is_empty()
    }
}

impl Vacant for IpAddr {
    fn vacant() -> Self {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
    fn is_vacant(&self) -> bool {
        self.is_ipv4()
    }
}

impl InternKey for IpAddr {
    fn intern_key(&self) -> u64 {
        match self {
            IpAddr::V4(a) => u64::from(u32::from(*a)),
            IpAddr::V6(a) => {
                let v = u128::from(*a);
                (v as u64) ^ ((v >> 64) as u64).rotate_left(29)
            }
        }
    }
}

/// Interned values: addresses and names referred to by id, each with its
/// [`InternKey`], computed once when the value is added. (The
/// detectors asked for a name's key several times per failed login, and
/// hashed the name each time.)
///
/// Each value is held once: the lookup table holds ids and compares
/// through the values. (It held a second copy of each value as its key:
/// for names, a second allocation for every distinct account name a
/// spray of random names brings, which a daemon keeps while it runs.)
///
/// Ids given back ([`Interner::forget_unmarked`]) are handed out again,
/// so the table is as large as the most values held at once, not as all
/// the values ever seen.
#[derive(Debug, Clone)]
pub struct Interner<T: Eq + Hash + Clone + InternKey> {
    values: Vec<T>,
    keys: Vec<u64>,
    ids: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    /// Ids given back, to hand out again (last given back, first out).
    free: Vec<u32>,
}

impl<T: Eq + Hash + Clone + InternKey> Default for Interner<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            keys: Vec::new(),
            ids: hashbrown::HashTable::new(),
            hasher: Default::default(),
            free: Vec::new(),
        }
    }
}

impl<T: Eq + Hash + Clone + InternKey> Interner<T> {
    /// The id of `v` if it is interned (looked up as `Q`, a form `T`
    /// borrows as: a name as `&str`, with no allocation).
    fn id_of<Q>(&self, v: &Q, hash: u64) -> Option<u32>
    where
        T: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let values = &self.values;
        self.ids
            .find(hash, |&id| values[id as usize].borrow() == v)
            .copied()
    }

    /// Add `v`, known not to be interned, whose hash is `hash`: in an id
    /// given back if there is one.
    fn add(&mut self, v: T, hash: u64) -> u32 {
        let id = match self.free.pop() {
            Some(id) => {
                self.keys[id as usize] = v.intern_key();
                self.values[id as usize] = v;
                id
            }
            None => {
                self.keys.push(v.intern_key());
                self.values.push(v);
                (self.values.len() - 1) as u32
            }
        };
        let Self {
            values,
            ids,
            hasher,
            ..
        } = self;
        ids.insert_unique(hash, id, |&i| hasher.hash_one(&values[i as usize]));
        id
    }

    /// The id of `v`, adding it if new.
    pub fn intern(&mut self, v: &T) -> u32 {
        let hash = self.hasher.hash_one(v);
        match self.id_of(v, hash) {
            Some(id) => id,
            None => self.add(v.clone(), hash),
        }
    }
    pub fn get(&self, id: u32) -> Option<&T> {
        self.values.get(id as usize)
    }
    /// The [`InternKey`] of the value of `id`.
    pub fn key(&self, id: u32) -> Option<u64> {
        self.keys.get(id as usize).copied()
    }
    /// Ids handed out: values held now and ids given back (ids are
    /// below this).
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// Values held now (ids handed out and not given back).
    pub fn kept(&self) -> usize {
        self.values.len() - self.free.len()
    }
    /// Approximate heap bytes (not counting what the values own).
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<T>()
            + self.keys.capacity() * std::mem::size_of::<u64>()
            + self.ids.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}

impl Interner<Box<str>> {
    /// The id of name `s`, adding it if new. Looks `s` up as it is: a
    /// name already interned (almost every account and service name of
    /// a hunt) costs no allocation.
    pub fn intern_str(&mut self, s: &str) -> u32 {
        // `Box<str>` hashes as the `str` it holds.
        let hash = self.hasher.hash_one(s);
        match self.id_of(s, hash) {
            Some(id) => id,
            None => self.add(Box::from(s), hash),
        }
    }

    /// The id of name `s` if it is interned.
    pub fn id(&self, s: &str) -> Option<u32> {
        self.id_of(s, self.hasher.hash_one(s))
    }
}

impl<T: Eq + Hash + Clone + InternKey + Vacant> Interner<T> {
    /// Give back the id of every value not marked in `keep` (but id 0 of
    /// the names, the empty name): its value is dropped and the id handed
    /// out again to the next new value. Returns how many were given
    /// back.
    ///
    /// Only for tables whose every holder marked its ids: an id given
    /// back that someone still holds would come to mean another value.
    pub fn forget_unmarked(&mut self, keep: &IdBits) -> usize {
        let before = self.free.len();
        for id in 0..self.values.len() as u32 {
            let i = id as usize;
            // A free id holds the vacant value, which no held id has.
            if keep.contains(id) || self.values[i].is_vacant() {
                continue;
            }
            let hash = self.hasher.hash_one(&self.values[i]);
            if let Ok(slot) = self.ids.find_entry(hash, |&x| x == id) {
                slot.remove();
            }
            self.values[i] = T::vacant();
            self.keys[i] = 0;
            self.free.push(id);
        }
        // Handed out again lowest first, as they were first handed out.
        self.free[before..].reverse();
        self.free.len() - before
    }
}

/// One bit per id of an interned table: the ids still held.
#[derive(Debug, Default, Clone)]
pub struct IdBits {
    bits: Vec<u64>,
}

impl IdBits {
    /// Bits for a table of `len` ids, none set.
    pub fn new(len: usize) -> Self {
        Self {
            bits: vec![0; len.div_ceil(64)],
        }
    }
    /// Set `id` (ids past the table are ignored: none exist).
    #[inline]
    pub fn set(&mut self, id: u32) {
        if let Some(w) = self.bits.get_mut(id as usize / 64) {
            *w |= 1 << (id % 64);
        }
    }
    pub fn contains(&self, id: u32) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// The name and IPv6 ids still held, marked before the tables give back
/// the others ([`Tables::forget_unheld`]): each holder marks its own
/// (`mark_held` on the detectors and on what waits for them).
#[derive(Debug, Default, Clone)]
pub struct HeldIds {
    /// Account names, and host names of named sources.
    names: IdBits,
    /// IPv6 addresses.
    v6: IdBits,
}

impl HeldIds {
    /// Mark account (or host) name `id` as held.
    #[inline]
    pub fn mark_name(&mut self, id: u32) {
        self.names.set(id);
    }
    /// Mark the address or host name behind a source or destination id
    /// (an IPv4 address, or [`NONE`], holds nothing).
    #[inline]
    pub fn mark_node(&mut self, id: NodeId) {
        if id == NONE {
            return;
        }
        if id & NAMED_SOURCE != 0 {
            self.names.set((id & !NAMED_SOURCE) as u32);
        } else if id & V6_SOURCE != 0 {
            self.v6.set((id & !V6_SOURCE) as u32);
        }
    }
    /// Mark what an observation holds: its source, its destination, and
    /// the name of its account if it has one.
    #[inline]
    pub fn mark_obs(&mut self, o: &Obs) {
        if is_account_kind(o.kind) {
            self.mark_name(o.aux as u32);
        }
        self.mark_node(o.src);
        self.mark_node(o.dst);
    }
    /// Is the address or host behind node `id` marked (an IPv4 address
    /// always is: it holds no table entry)?
    pub fn has_node(&self, id: NodeId) -> bool {
        if id == NONE {
            true
        } else if id & NAMED_SOURCE != 0 {
            self.names.contains((id & !NAMED_SOURCE) as u32)
        } else if id & V6_SOURCE != 0 {
            self.v6.contains((id & !V6_SOURCE) as u32)
        } else {
            true
        }
    }
}

/// How many ids a sweep ([`Tables::forget_unheld`]) gave back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    /// Account and host names.
    pub names: usize,
    /// IPv6 addresses.
    pub addresses: usize,
}

/// Do observations of this kind name an account in `aux`?
pub fn is_account_kind(k: ObsKind) -> bool {
    matches!(
        k,
        ObsKind::AuthFailure | ObsKind::AuthSuccess | ObsKind::AuthAttempt
    )
}

/// The service id of every service past the first 65,534 (see
/// [`Tables::service_id`]).
pub const SERVICE_OTHER: u16 = u16::MAX;

/// The tables observations refer to.
///
/// A hunt's tables live as long as the hunt, but a live pipeline's live
/// as long as the daemon, which meets a new account name with nearly
/// every failure of a spray of random names, and a new IPv6 address (or
/// host name) with every source of a flood. So a live pipeline gives
/// back the ids nobody holds ([`Tables::forget_unheld`]): every holder
/// marks its own first ([`HeldIds`]), and an id given back means another
/// value once handed out again.
///
/// The holders: account ids (`Obs::aux` of auth observations) are held by
/// `brute_force`' and `explicit_spray`'s per-source account sets (their
/// first few ids), `distributed`'s `Source::accounts` and `last_account`,
/// its idle summaries in the runs, its `CrossEvent::Auth` between stages
/// and `Campaigns::accounts`, and the live reorder window's observations.
/// Source and destination ids (IPv6 addresses, [`V6_SOURCE`]; host names,
/// [`NAMED_SOURCE`]) by the keys of every per-source table, the drafts
/// and findings waiting to be handed on, the hourly sums not yet made
/// observations, the evidence cache, and the observations waiting.
#[derive(Debug, Default, Clone)]
pub struct Tables {
    /// IPv6 addresses (IPv4 ones live in their ids).
    pub ips: Interner<IpAddr>,
    /// Account and host names. Id 0 is the empty name.
    pub names: Interner<Box<str>>,
    /// Service names (and IDS signatures), apart from the names: an
    /// observation holds its service in 16 bits.
    ///
    /// Why apart: they shared the name table once, so a service first
    /// seen after 65,535 account names (a spray with random names, then
    /// a new log; or a later unit of a hunt, whose tables are merged in
    /// input order) got an id past 16 bits, clamped to 65,535: it was
    /// shown, and counted, as whichever account had that id.
    services: Interner<Box<str>>,
}

impl Tables {
    pub fn new() -> Self {
        let mut t = Self::default();
        t.names.intern(&Box::from(""));
        t.services.intern(&Box::from(""));
        t
    }

    /// The source id of host name `h` (interned if new).
    pub fn host_id(&mut self, h: &str) -> NodeId {
        let id = if h.is_empty() {
            0
        } else {
            self.names.intern_str(h)
        };
        NAMED_SOURCE | NodeId::from(id)
    }

    /// Give back the ids of the names and IPv6 addresses not marked in
    /// `keep`; returns how many of each.
    ///
    /// Why: a daemon meets a new account name with nearly every failed
    /// login of a spray of random names, and a new address with every
    /// source of a flood from spoofed IPv6 addresses, and its tables grew
    /// by each one for as long as it ran. `keep` must hold every id still
    /// held anywhere: in the detectors (their `mark_held`) and in
    /// whatever has not reached them yet.
    pub fn forget_unheld(&mut self, keep: &HeldIds) -> Forgotten {
        Forgotten {
            names: self.names.forget_unmarked(&keep.names),
            addresses: self.ips.forget_unmarked(&keep.v6),
        }
    }

    /// When to sweep next: once the names, or the addresses, kept are
    /// twice what they are now, and not below `floor` (0: at once, as
    /// tests ask). Returns (names, addresses).
    pub fn next_sweep_at(&self, floor: usize) -> (usize, usize) {
        let at = |kept: usize| {
            if floor == 0 {
                0
            } else {
                kept.saturating_mul(2).max(floor)
            }
        };
        (at(self.names.kept()), at(self.ips.kept()))
    }

    /// Marks for every name and address id of these tables, none marked
    /// yet.
    pub fn held_ids(&self) -> HeldIds {
        HeldIds {
            names: IdBits::new(self.names.len()),
            v6: IdBits::new(self.ips.len()),
        }
    }

    /// The id of service `s` (0 for none), added if new. Past 65,534
    /// services the rest share [`SERVICE_OTHER`], shown as such: a
    /// record may name any service (a signature's text), and an id must
    /// never stand for another one.
    pub fn service_id(&mut self, s: Option<&str>) -> u16 {
        let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
            return 0;
        };
        if self.services.is_empty() {
            // Id 0 is no service, also in tables made by `default`.
            self.services.intern(&Box::from(""));
        }
        if let Some(id) = self.services.id(s) {
            return id as u16;
        }
        if self.services.len() >= usize::from(SERVICE_OTHER) {
            return SERVICE_OTHER;
        }
        self.services.intern_str(s) as u16
    }

    /// The name of service id `id` (empty for none or unknown).
    pub fn service(&self, id: u16) -> &str {
        if id == SERVICE_OTHER {
            return "(other services)";
        }
        self.services.get(u32::from(id)).map_or("", |s| s)
    }

    /// Approximate heap bytes of the tables.
    pub fn heap_bytes(&self) -> usize {
        self.ips.heap_bytes() + self.names.heap_bytes() + self.services.heap_bytes()
    }
    /// The address of a source or destination id (`None` for a named
    /// source or [`NONE`]).
    pub fn ip(&self, id: NodeId) -> Option<IpAddr> {
        if id == NONE || id & NAMED_SOURCE != 0 {
            return None;
        }
        if id & V6_SOURCE != 0 {
            return self.ips.get((id & !V6_SOURCE) as u32).copied();
        }
        Some(IpAddr::V4(std::net::Ipv4Addr::from(id as u32)))
    }

    /// The id of an address (IPv6 ones are interned here).
    pub fn ip_id(&mut self, ip: IpAddr) -> NodeId {
        match ip {
            IpAddr::V4(a) => NodeId::from(u32::from(a)),
            IpAddr::V6(_) => V6_SOURCE | NodeId::from(self.ips.intern(&ip)),
        }
    }

    /// How a source is shown: its address, or `host NAME`.
    pub fn source_label(&self, id: NodeId) -> String {
        match self.ip(id) {
            Some(ip) => ip.to_string(),
            None if id != NONE && id & NAMED_SOURCE != 0 => {
                format!("host {}", self.name((id & !NAMED_SOURCE) as u32))
            }
            None => String::new(),
        }
    }
    /// The name of an id (empty when unknown).
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id).map_or("", |s| s)
    }

    /// A key for the address (or host name) behind a source or
    /// destination id that does not depend on the id. Ids depend on the
    /// order in which the units' buffers were merged, so detectors that
    /// hash must hash this, or their collisions (and so their counts)
    /// would change with thread timing.
    pub fn ip_key(&self, id: NodeId) -> u64 {
        if id != NONE && id & (NAMED_SOURCE | V6_SOURCE) == V6_SOURCE {
            // Kept when the address was interned.
            if let Some(k) = self.ips.key((id & !V6_SOURCE) as u32) {
                return k;
            }
        }
        match self.ip(id) {
            Some(ip) => ip.intern_key(),
            None => self.name_key((id & !NAMED_SOURCE) as u32) ^ u64::from(id == NONE),
        }
    }

    /// A key for the name behind a name id that does not depend on the id
    /// (see [`Tables::ip_key`]); an unknown id has the empty name's.
    pub fn name_key(&self, id: u32) -> u64 {
        self.names
            .key(id)
            .unwrap_or_else(|| crate::finding::fnv1a_64(std::iter::empty()))
    }
}

/// Ports router backdoors and relay implants are known to listen on
/// (7777: the Quad7/7777 botnet on TP-Link routers; 11288: its
/// Xlogin/Asus variant; 63256 and 63260: the same family).
pub const DEFAULT_BACKDOOR_PORTS: [u16; 4] = [7777, 11288, 63256, 63260];

/// Observations of one unit of work, or of a whole hunt after merging.
#[derive(Debug, Default)]
pub struct ObsBuffer {
    pub obs: Vec<Obs>,
    pub tables: Tables,
    /// Events without a time (cannot be placed in event time).
    pub untimed: u64,
    /// Outbound bytes summed per (src, dst, hour) before becoming obs.
    outbound: HashMap<(NodeId, NodeId, i64), (u64, u64, u16)>,
    /// Answered connections counted per (src, hour) before becoming obs.
    answered: HashMap<(NodeId, i64), (u64, u64)>,
    /// The oldest hour with a sum in `outbound` or `answered` (`None`
    /// when there is none): a live pipeline asks at every release whether
    /// an hour is over (see [`ObsBuffer::take_sums_before`]).
    oldest_sum_hour: Option<i64>,
    /// The time of the last event counted into a sum since
    /// [`ObsBuffer::take_sum_touch`] (a live pipeline moves its clock by
    /// such records too, see there).
    sum_touch: Option<i64>,
    /// The last event counted into an outbound sum since
    /// [`ObsBuffer::take_outbound_touch`], as an observation of its own
    /// bytes (a live pipeline keeps its record as evidence).
    outbound_touch: Option<Obs>,
}

/// Does this connection event look like an unanswered or refused attempt?
pub fn is_probe(ev: &Event) -> bool {
    if matches!(
        ev.action,
        Some(Action::Deny | Action::Drop | Action::Reject)
    ) {
        return ev.kind != EventKind::Auth;
    }
    if ev.action == Some(Action::Allow) || ev.action == Some(Action::Alert) {
        return false;
    }
    let Some(state) = ev.conn_state.as_deref() else {
        return false;
    };
    match state {
        // Zeek conn_state: no reply, rejected, or reset before any reply.
        "S0" | "REJ" | "RSTOS0" | "RSTRH" | "SH" | "SHR" => true,
        // A logged bare SYN (netfilter/pf LOG rules log what they drop).
        "SYN" => ev.kind == EventKind::Connection,
        // Suricata EVE: a TCP flow still `new` with nothing sent back.
        "new" => ev.proto == Some(Proto::Tcp) && ev.bytes_in == Some(0),
        // NetFlow/IPFIX cumulative TCP flags (`flags:S`, `flags:SR`).
        s if s.starts_with("flags:") => super::flow_flags::is_probe(&s[6..], ev.packets),
        _ => false,
    }
}

/// An hour's sum (answered connections, or bytes sent out of an
/// internal source) as an observation, dated at the hour's last
/// millisecond: the sum is complete only once the hour is over.
fn hourly_sum(
    kind: ObsKind,
    hour: i64,
    src: NodeId,
    dst: NodeId,
    dst_port: u16,
    aux: u64,
    evidence: u64,
) -> Obs {
    Obs {
        time: hour.saturating_mul(3_600_000).saturating_add(3_599_999),
        aux,
        evidence,
        src,
        dst,
        dst_port,
        svc: 0,
        kind,
        flags: if kind == ObsKind::Outbound {
            FLAG_SRC_INTERNAL
        } else {
            0
        },
    }
}

/// The answered connections of `src` in `hour`, as an observation.
fn answered_sum(hour: i64, src: NodeId, count: u64, evidence: u64) -> Obs {
    hourly_sum(ObsKind::Answered, hour, src, NONE, 0, count, evidence)
}

impl ObsBuffer {
    pub fn new() -> Self {
        Self {
            tables: Tables::new(),
            ..Default::default()
        }
    }

    /// Number of observations held.
    pub fn len(&self) -> usize {
        self.obs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.obs.is_empty()
    }

    /// Approximate heap bytes (observations and tables).
    pub fn heap_bytes(&self) -> usize {
        self.obs.capacity() * std::mem::size_of::<Obs>() + self.tables.heap_bytes()
    }

    /// Mark the ids its observations and its hourly sums not yet made
    /// observations hold (see [`Tables::forget_unheld`]).
    pub fn mark_held(&self, m: &mut HeldIds) {
        self.obs.iter().for_each(|o| m.mark_obs(o));
        for &(src, dst, _) in self.outbound.keys() {
            m.mark_node(src);
            m.mark_node(dst);
        }
        self.answered.keys().for_each(|&(src, _)| m.mark_node(src));
        if let Some(o) = &self.outbound_touch {
            m.mark_obs(o);
        }
    }

    fn name_id(&mut self, s: Option<&str>) -> u32 {
        match s.map(str::trim).filter(|s| !s.is_empty()) {
            None => 0,
            Some(s) => self.tables.names.intern_str(s),
        }
    }

    /// Turn one event into observations; returns how many.
    pub fn observe(
        &mut self,
        ev: &Event,
        evidence: u64,
        internal: &InternalNets,
        backdoor_ports: &[u16],
    ) -> usize {
        let extra = super::attack_obs::extra_kind(ev);
        let relevant = ev.auth.is_some()
            || extra.is_some()
            || (ev.kind == EventKind::Connection && ev.dst_ip.is_some())
            || (ev.kind != EventKind::Auth && (is_probe(ev) || ev.bytes_out.is_some()))
            || ev
                .dst_port
                .is_some_and(|p| backdoor_ports.contains(&p) && ev.src_ip.is_some());
        if !relevant {
            return 0;
        }
        let Some(t) = ev.time else {
            self.untimed += 1;
            return 0;
        };
        let auth_like = ev.auth.is_some() || matches!(extra, Some((ObsKind::AuthAttempt, ..)));
        let named = match (ev.src_ip, auth_like, ev.host.as_deref()) {
            (Some(_), _, _) => None,
            (None, true, Some(h)) if !h.trim().is_empty() && !h.contains('\0') => Some(h),
            _ => return 0,
        };
        // Detector state keeps seconds since 2000 in 32 bits (see
        // `secs`): a time outside 2000–2136 (a misparsed stamp) is held at
        // the nearest end, so the exact time and the stored one never
        // disagree about order.
        let time = t
            .as_millisecond()
            .clamp(super::EPOCH_2000_MS, super::ms_of(u32::MAX) + 999);
        let (src, src_ip) = match (ev.src_ip, named) {
            (Some(ip), _) => (self.tables.ip_id(ip), Some(ip)),
            (None, h) => (self.tables.host_id(h.map_or("", str::trim)), None),
        };
        let dst = ev.dst_ip.map_or(NONE, |d| self.tables.ip_id(d));
        let src_int = src_ip.is_some_and(|ip| internal.contains(ip));
        let dst_int = ev.dst_ip.map(|d| internal.contains(d));
        let mut flags = 0;
        if src_int {
            flags |= FLAG_SRC_INTERNAL;
        }
        if dst_int == Some(true) {
            flags |= FLAG_DST_INTERNAL;
        }
        let mut n = 0;
        let base = Obs {
            time,
            aux: 0,
            evidence,
            src,
            dst,
            dst_port: ev.dst_port.unwrap_or(0),
            svc: 0,
            kind: ObsKind::Probe,
            flags,
        };
        if let Some((kind, svc, aux)) = extra {
            let svc = self.tables.service_id(Some(&svc));
            let aux = match aux {
                super::attack_obs::ExtraAux::Name(a) => u64::from(self.name_id(Some(&a))),
                super::attack_obs::ExtraAux::Value(v) => v,
            };
            self.obs.push(Obs {
                kind,
                svc,
                aux,
                ..base
            });
            n += 1;
        }
        if let Some(outcome) = ev.auth {
            let svc = self.tables.service_id(ev.service.as_deref());
            let user = self.name_id(ev.user.as_deref().map(|u| u.trim_matches('"')));
            let (kind, extra) = match outcome {
                AuthOutcome::Success => (ObsKind::AuthSuccess, 0),
                AuthOutcome::Failure => (ObsKind::AuthFailure, 0),
                AuthOutcome::InvalidUser => (ObsKind::AuthFailure, FLAG_INVALID_USER),
            };
            // "message repeated 5 times", "5 more authentication
            // failures": one record standing for several attempts.
            let times = if kind == ObsKind::AuthFailure {
                ev.count.clamp(1, 100)
            } else {
                1
            };
            for _ in 0..times {
                self.obs.push(Obs {
                    kind,
                    svc,
                    aux: u64::from(user),
                    flags: flags | extra,
                    ..base
                });
                n += 1;
            }
        } else if is_probe(ev) {
            self.obs.push(base);
            n += 1;
        } else if ev.kind == EventKind::Connection && dst != NONE {
            let hour = time.div_euclid(3_600_000);
            self.note_sum_hour(hour, time);
            let e = self.answered.entry((src, hour)).or_insert((0, evidence));
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.min(evidence);
        }
        if ev.auth.is_none()
            && !is_probe(ev)
            && let (Some(bytes), Some(false), true) = (ev.bytes_out, dst_int, src_int)
            && bytes > 0
            && dst != NONE
        {
            let hour = time.div_euclid(3_600_000);
            self.note_sum_hour(hour, time);
            let e = self.outbound.entry((src, dst, hour)).or_insert((
                0,
                evidence,
                ev.dst_port.unwrap_or(0),
            ));
            e.0 = e.0.saturating_add(bytes);
            e.1 = e.1.min(evidence);
            self.outbound_touch = Some(Obs {
                time,
                aux: bytes,
                evidence,
                src,
                dst,
                dst_port: ev.dst_port.unwrap_or(0),
                svc: 0,
                kind: ObsKind::Outbound,
                flags: FLAG_SRC_INTERNAL,
            });
        }
        let src_port = ev.src_port.unwrap_or(0);
        let port = ev.dst_port.unwrap_or(0);
        let bd = if backdoor_ports.contains(&port) {
            Some(port)
        } else if backdoor_ports.contains(&src_port) {
            Some(src_port)
        } else {
            None
        };
        if let Some(p) = bd {
            self.obs.push(Obs {
                kind: ObsKind::BackdoorPort,
                dst_port: p,
                ..base
            });
            n += 1;
        }
        n
    }

    fn note_sum_hour(&mut self, hour: i64, time: i64) {
        self.oldest_sum_hour = Some(self.oldest_sum_hour.map_or(hour, |h| h.min(hour)));
        self.sum_touch = Some(self.sum_touch.map_or(time, |t| t.max(time)));
    }

    /// The newest time (ms) of the events counted into an hourly sum
    /// since the last call. Why: a record that only adds to a sum (a
    /// Zeek `conn` record of a connection that was answered) makes no
    /// observation, so without this a log of such records would never
    /// move a live pipeline's clock, and its sums would wait for ever.
    pub fn take_sum_touch(&mut self) -> Option<i64> {
        self.sum_touch.take()
    }

    /// The last event counted into an outbound sum since the last call,
    /// as an observation of its own bytes at its own time: a live
    /// pipeline keeps its record as the evidence of an exfiltration
    /// finding (a hunt reads the records back from the file instead).
    pub fn take_outbound_touch(&mut self) -> Option<Obs> {
        self.outbound_touch.take()
    }

    /// Hourly sums kept now, not yet observations (both maps).
    pub fn sums_kept(&self) -> usize {
        self.answered.len() + self.outbound.len()
    }

    /// Is either map of hourly sums (answered connections, outbound
    /// bytes) holding more than `cap` sums?
    pub fn sums_over(&self, cap: usize) -> bool {
        let cap = cap.max(16);
        self.answered.len() > cap || self.outbound.len() > cap
    }

    /// Live, a map of hourly sums holding more than `cap`: its smallest
    /// quarter (fewest connections, fewest bytes; ties by address key,
    /// never by id) leaves now, as observations appended to `out` dated
    /// at their hour's last millisecond, as [`take_sums_before`] makes
    /// them (the caller dates them earlier: their hour is not over).
    /// Returns how many left.
    ///
    /// Why: every client with an answered connection, and every
    /// (internal host, external address) pair with outbound bytes, keeps
    /// a sum until its hour is over, and a connection log of a flood of
    /// clients, each new, grew them without a bound for that hour
    /// (8,000,000 connection records took 6.7 GB). A sum that left early
    /// and grows again leaves again: the parts add up to the hour's
    /// counts for the port-scan detector and for a host's exfiltration
    /// baseline, but an exfiltration judged on one (source,
    /// destination) part may stay under its bar.
    ///
    /// [`take_sums_before`]: ObsBuffer::take_sums_before
    pub fn take_smallest_sums(&mut self, cap: usize, out: &mut Vec<Obs>) -> u64 {
        /// Over `cap`, the map's smallest quarter (by `rank`) leaves as
        /// observations (`to_obs`), in rank order.
        fn leave<K, V, R>(
            map: &mut HashMap<K, V>,
            cap: usize,
            rank: impl Fn(&K, &V) -> R,
            to_obs: impl Fn(K, V) -> Obs,
            out: &mut Vec<Obs>,
        ) -> u64
        where
            K: Copy + Eq + std::hash::Hash,
            R: Ord,
        {
            if map.len() <= cap {
                return 0;
            }
            let excess = map.len() - (cap - cap / 4);
            let gone = super::remove_least_ranked(map, excess, rank);
            let left = gone.len() as u64;
            out.extend(gone.into_iter().map(|(k, v)| to_obs(k, v)));
            left
        }
        let cap = cap.max(16);
        let t = &self.tables;
        leave(
            &mut self.answered,
            cap,
            |&(src, h), &(count, _)| (count, t.ip_key(src), h),
            |(src, h), (count, evidence)| answered_sum(h, src, count, evidence),
            out,
        ) + leave(
            &mut self.outbound,
            cap,
            |&(src, dst, h), &(bytes, _, _)| (bytes, t.ip_key(src), t.ip_key(dst), h),
            |(src, dst, h), (bytes, evidence, port)| {
                hourly_sum(ObsKind::Outbound, h, src, dst, port, bytes, evidence)
            },
            out,
        )
    }

    /// The oldest hour (since the epoch) that has a sum not yet turned
    /// into an observation.
    pub fn oldest_sum_hour(&self) -> Option<i64> {
        self.oldest_sum_hour
    }

    /// Turn the per-hour outbound sums and answered counts into
    /// observations.
    fn flush_outbound(&mut self) {
        let mut obs = std::mem::take(&mut self.obs);
        self.take_sums_before(i64::MAX, &mut obs);
        self.obs = obs;
    }

    /// Live: the sums of the hours before `hour` (since the epoch) as
    /// observations, appended to `out`, each at its hour's last
    /// millisecond (both kinds: an hour's sum is complete only once the
    /// hour is over, so a live pipeline can hand it on only then, and an
    /// observation dated at the hour's start would by then be an hour
    /// behind its clock, late).
    ///
    /// Why: a hunt turns the sums into observations at the end of each
    /// unit of work, but a live pipeline's unit never ends, so the sums
    /// were never handed on: live, exfiltration was never reported, a
    /// busy client's answered connections never reached the port-scan
    /// detector, and the sums of every hour stayed in memory.
    pub fn take_sums_before(&mut self, hour: i64, out: &mut Vec<Obs>) {
        if self.oldest_sum_hour.is_none_or(|h| h >= hour) {
            return;
        }
        let mut left = None::<i64>;
        let mut keep_oldest = |h: i64| left = Some(left.map_or(h, |l: i64| l.min(h)));
        let before = out.len();
        self.answered.retain(|&(src, h), &mut (count, evidence)| {
            if h >= hour {
                keep_oldest(h);
                return true;
            }
            out.push(answered_sum(h, src, count, evidence));
            false
        });
        self.outbound
            .retain(|&(src, dst, h), &mut (bytes, evidence, port)| {
                if h >= hour {
                    keep_oldest(h);
                    return true;
                }
                out.push(hourly_sum(
                    ObsKind::Outbound,
                    h,
                    src,
                    dst,
                    port,
                    bytes,
                    evidence,
                ));
                false
            });
        // The maps' order is not the input's: the same sums come out in
        // the same order whatever the hash seed.
        out[before..].sort_unstable_by_key(order_key);
        self.oldest_sum_hour = left;
    }

    /// Move `other`'s observations into this buffer, remapping its ids.
    pub fn merge(&mut self, mut other: ObsBuffer) {
        other.flush_outbound();
        let map = Remap::new(&other.tables, &mut self.tables);
        self.obs.reserve(other.obs.len());
        self.obs.extend(other.obs.into_iter().map(|o| map.apply(o)));
        self.untimed += other.untimed;
    }

    /// Sort the observations gathered so far into replay order where they
    /// are (the caller copies the run out and clears the buffer, which
    /// keeps its memory). With `last`, the per-hour sums are flushed into
    /// the run first: the unit of work is over.
    pub fn sort_in_place(&mut self, last: bool) {
        if last {
            self.flush_outbound();
        }
        sort_obs(&mut self.obs);
    }

    /// Order by event time; ties by input and line, then kind, so the order
    /// never depends on which worker finished first.
    pub fn sort(&mut self) {
        self.flush_outbound();
        sort_obs(&mut self.obs);
    }
}

/// The replay order: event time; ties by input and line, then kind, so
/// the order never depends on which worker finished first.
pub fn order_key(o: &Obs) -> (i64, u64, ObsKind, NodeId, NodeId, u16) {
    (o.time, o.evidence, o.kind, o.src, o.dst, o.dst_port)
}

/// Sort observations into replay order.
pub fn sort_obs(obs: &mut [Obs]) {
    obs.sort_unstable_by_key(order_key);
}

/// Maps the ids of one set of tables onto another: IPv6 and name ids are
/// re-interned, IPv4 ids are addresses and stay as they are.
#[derive(Debug, Default)]
pub(crate) struct Remap {
    v6: Vec<u32>,
    names: Vec<u32>,
    services: Vec<u16>,
}

impl Remap {
    pub(crate) fn new(from: &Tables, to: &mut Tables) -> Self {
        let names: Vec<u32> = from
            .names
            .values
            .iter()
            .map(|n| to.names.intern(n))
            .collect();
        Self {
            // A given-back id (vacant: an IPv4 address) maps to none.
            v6: from
                .ips
                .values
                .iter()
                .map(|ip| {
                    if ip.is_vacant() {
                        u32::MAX
                    } else {
                        to.ips.intern(ip)
                    }
                })
                .collect(),
            names,
            services: from
                .services
                .values
                .iter()
                .map(|n| to.service_id(Some(n)))
                .collect(),
        }
    }

    fn node(&self, id: NodeId) -> NodeId {
        if id == NONE {
            NONE
        } else if id & NAMED_SOURCE != 0 {
            let i = (id & !NAMED_SOURCE) as usize;
            NAMED_SOURCE | NodeId::from(self.names.get(i).copied().unwrap_or(0))
        } else if id & V6_SOURCE != 0 {
            let i = (id & !V6_SOURCE) as usize;
            self.v6
                .get(i)
                .filter(|&&g| g != u32::MAX)
                .map_or(NONE, |g| V6_SOURCE | NodeId::from(*g))
        } else {
            id
        }
    }

    fn name(&self, id: u32) -> u32 {
        self.names.get(id as usize).copied().unwrap_or(0)
    }

    pub(crate) fn apply(&self, mut o: Obs) -> Obs {
        o.src = self.node(o.src);
        o.dst = self.node(o.dst);
        o.svc = match o.svc {
            SERVICE_OTHER => SERVICE_OTHER,
            svc => self.services.get(usize::from(svc)).copied().unwrap_or(0),
        };
        if is_account_kind(o.kind) {
            o.aux = u64::from(self.name(o.aux as u32));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through growth, each value keeps the id it got first, whether
    /// asked as `&str` or as the owned value, and an id gives its value
    /// back; `id` finds without adding.
    #[test]
    fn an_interned_value_keeps_its_id_through_growth() {
        let mut t: Interner<Box<str>> = Interner::default();
        let names: Vec<String> = (0..50_000).map(|i| format!("user{i:05}")).collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.intern_str(n), i as u32);
        }
        for (i, n) in names.iter().enumerate().rev() {
            assert_eq!(t.intern_str(n), i as u32);
            assert_eq!(t.intern(&Box::from(n.as_str())), i as u32);
            assert_eq!(t.id(n), Some(i as u32));
            assert_eq!(t.get(i as u32).map(|b| &**b), Some(n.as_str()));
        }
        assert_eq!(t.len(), names.len());
        assert_eq!(t.id("nobody"), None);
        assert_eq!(t.len(), names.len());
        let mut ips: Interner<IpAddr> = Interner::default();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!((ips.intern(&a), ips.intern(&b), ips.intern(&a)), (0, 1, 0));
    }

    /// Names not marked are given back (host names and the empty name
    /// never are): they are no longer found, their ids go to the next
    /// new names, and a name given back and met again is a new name.
    #[test]
    fn names_not_marked_are_given_back_and_their_ids_reused() {
        let mut t = Tables::new();
        let host = t.host_id("gateway.example");
        let users: Vec<u32> = (0..100)
            .map(|i| t.names.intern_str(&format!("u{i}")))
            .collect();
        let kept_before = t.names.kept();
        let mut keep = t.held_ids();
        // Keep every tenth account, and the host (held as a source).
        users.iter().step_by(10).for_each(|&id| keep.mark_name(id));
        keep.mark_node(host);
        assert_eq!(
            t.forget_unheld(&keep),
            Forgotten {
                names: 90,
                addresses: 0
            }
        );
        assert_eq!(t.names.kept(), kept_before - 90);
        assert_eq!(t.source_label(host), "host gateway.example");
        assert_eq!(t.name(0), "");
        for (i, &id) in users.iter().enumerate() {
            let n = format!("u{i}");
            if i % 10 == 0 {
                assert_eq!(t.names.id(&n), Some(id));
                assert_eq!(t.name(id), n);
                assert_eq!(t.name_key(id), Box::<str>::from(n.as_str()).intern_key());
            } else {
                assert_eq!(t.names.id(&n), None, "{n} given back");
            }
        }
        // New names take the ids given back, lowest first; the table
        // does not grow.
        let len = t.names.len();
        let given_back: Vec<u32> = users
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 10 != 0)
            .map(|(_, &id)| id)
            .collect();
        for (k, &old) in given_back.iter().enumerate() {
            let n = format!("new{k}");
            assert_eq!(t.names.intern_str(&n), old);
            assert_eq!(t.name(old), n);
            assert_eq!(t.name_key(old), Box::<str>::from(n.as_str()).intern_key());
        }
        assert_eq!(t.names.len(), len);
        assert_eq!(t.names.intern_str("one more"), len as u32);
        // "u1" met again is a new name, with an id of its own.
        let again = t.names.intern_str("u1");
        assert_eq!(t.name(again), "u1");
        assert_eq!(t.names.intern_str("u1"), again);
        // A sweep with nothing marked keeps only the empty name: the
        // host's name goes too once no source holds it.
        let swept = t.forget_unheld(&t.held_ids());
        assert_eq!(swept.names, t.names.len() - 1);
        assert_eq!(t.names.kept(), 1);
        assert_eq!(t.name(0), "");
        assert_eq!(t.names.id("gateway.example"), None);
    }

    /// IPv6 addresses no one holds are given back as names are, and a
    /// merge of tables skips the ids given back.
    #[test]
    fn addresses_not_marked_are_given_back_and_their_ids_reused() {
        let mut t = Tables::new();
        let v6 = |i: u16| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]);
        let ids: Vec<NodeId> = (0..50).map(|i| t.ip_id(v6(i))).collect();
        let v4 = t.ip_id("192.0.2.1".parse().unwrap());
        let mut keep = t.held_ids();
        ids.iter().step_by(5).for_each(|&id| keep.mark_node(id));
        // IPv4 ids hold no entry; marking one changes nothing.
        keep.mark_node(v4);
        assert!(keep.has_node(v4) && keep.has_node(NONE));
        assert!(keep.has_node(ids[0]) && !keep.has_node(ids[1]));
        assert_eq!(t.forget_unheld(&keep).addresses, 40);
        assert_eq!(t.ips.kept(), 10);
        for (i, &id) in ids.iter().enumerate() {
            if i % 5 == 0 {
                assert_eq!(t.ip(id), Some(v6(i as u16)));
                assert_eq!(t.ip_key(id), v6(i as u16).intern_key());
            }
        }
        // A new address takes the lowest id given back, with its own key.
        let new = t.ip_id(v6(1000));
        assert_eq!(new, ids[1]);
        assert_eq!(t.ip(new), Some(v6(1000)));
        assert_eq!(t.ip_key(new), v6(1000).intern_key());
        assert_eq!(t.ips.len(), 50);
        // Sweeping again with the same marks does not give back twice.
        let mut keep = t.held_ids();
        ids.iter().step_by(5).for_each(|&id| keep.mark_node(id));
        keep.mark_node(new);
        assert_eq!(t.forget_unheld(&keep).addresses, 0);
        // Merged into other tables: the held addresses come over, the
        // ids given back do not (none of them is interned there).
        let mut other = ObsBuffer::new();
        let mut from = ObsBuffer::new();
        from.tables = t.clone();
        from.obs.push(Obs {
            time: 0,
            aux: 0,
            evidence: 0,
            src: new,
            dst: NONE,
            dst_port: 0,
            svc: 0,
            kind: ObsKind::Probe,
            flags: 0,
        });
        other.merge(from);
        assert_eq!(other.tables.ips.kept(), 11);
        assert_eq!(other.tables.ip(other.obs[0].src), Some(v6(1000)));
    }

    /// A name's and an address's key is the hash of the value whatever
    /// the order they were interned in, through a merge of tables too;
    /// an unknown id has the empty name's key.
    #[test]
    fn keys_follow_the_value_not_the_id() {
        let fnv = |s: &str| crate::finding::fnv1a_64(s.bytes());
        let mut a = Tables::new();
        let mut b = Tables::new();
        let names = ["root", "admin", "", "ünïcode", "pi"];
        for n in names {
            a.names.intern_str(n);
        }
        for n in names.iter().rev() {
            b.names.intern_str(n);
        }
        for n in names {
            let (ia, ib) = (a.names.intern_str(n), b.names.intern_str(n));
            assert_eq!(a.name_key(ia), fnv(n), "{n}");
            assert_eq!(b.name_key(ib), fnv(n), "{n}");
            let named = NAMED_SOURCE | NodeId::from(ia);
            assert_eq!(a.ip_key(named), fnv(n), "{n}");
        }
        assert_eq!(a.name_key(999), fnv(""));
        assert_eq!(a.ip_key(NONE), fnv("") ^ 1);
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        let v4: IpAddr = "192.0.2.9".parse().unwrap();
        let (i6, i4) = (b.ip_id(v6), b.ip_id(v4));
        let u = u128::from(match v6 {
            IpAddr::V6(x) => x,
            IpAddr::V4(_) => unreachable!(),
        });
        assert_eq!(
            b.ip_key(i6),
            (u as u64) ^ ((u >> 64) as u64).rotate_left(29)
        );
        assert_eq!(b.ip_key(i4), 0xc000_0209);
        // Merged into a table that holds other names first.
        let mut merged = Tables::new();
        merged.names.intern_str("zzz");
        let remap = Remap::new(&b, &mut merged);
        for n in names {
            let id = remap.name(b.names.intern_str(n));
            assert_eq!(merged.name_key(id), fnv(n), "{n}");
        }
    }

    fn failed_login(service: &str, user: &str, second: i64) -> Event {
        Event {
            kind: EventKind::Auth,
            time: Some(jiff::Timestamp::from_second(1_614_556_800 + second).unwrap()),
            src_ip: Some("192.0.2.7".parse().unwrap()),
            auth: Some(AuthOutcome::Failure),
            service: Some(service.into()),
            user: Some(user.into()),
            ..Default::default()
        }
    }

    /// A service first seen after more than 65,535 account names (a
    /// spray with random names, then a new log) keeps its own name: it
    /// once shared the 16-bit id space with accounts, was clamped to id
    /// 65,535 and was shown, and counted, as that account. The same
    /// through the merge of a hunt's units, whose tables are merged in
    /// input order.
    #[test]
    fn services_keep_their_names_after_many_accounts() {
        let internal = InternalNets::default();
        let mut sprayed = ObsBuffer::new();
        for i in 0..70_000 {
            let ev = failed_login("sshd", &format!("user{i}"), i);
            assert_eq!(sprayed.observe(&ev, 0, &internal, &[]), 1);
        }
        let mut later = ObsBuffer::new();
        for (n, service) in ["dovecot", "postfix"].into_iter().enumerate() {
            let ev = failed_login(service, "root", 70_000 + n as i64);
            sprayed.observe(&ev, 0, &internal, &[]);
            later.observe(&ev, 0, &internal, &[]);
        }
        let services = |b: &ObsBuffer| -> Vec<String> {
            b.obs[b.obs.len() - 2..]
                .iter()
                .map(|o| b.tables.service(o.svc).to_string())
                .collect()
        };
        assert_eq!(services(&sprayed), ["dovecot", "postfix"]);
        assert_eq!(sprayed.tables.service(sprayed.obs[0].svc), "sshd");
        let users = sprayed.obs[..70_000]
            .iter()
            .map(|o| sprayed.tables.name(o.aux as u32))
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(users.len(), 70_000);

        let mut merged = ObsBuffer::new();
        let mut first = ObsBuffer::new();
        for i in 0..70_000 {
            first.observe(
                &failed_login("sshd", &format!("user{i}"), i),
                0,
                &internal,
                &[],
            );
        }
        merged.merge(first);
        merged.merge(later);
        assert_eq!(services(&merged), ["dovecot", "postfix"]);
        assert_eq!(merged.tables.service(merged.obs[0].svc), "sshd");
        assert_ne!(merged.obs[70_000].svc, merged.obs[70_001].svc);
    }

    /// Past 65,535 distinct services (IDS signature names are services
    /// too) the rest share one id, shown as such, never another name.
    #[test]
    fn services_beyond_the_id_space_share_one_shown_as_other() {
        let mut t = Tables::new();
        let mut last = 0;
        for i in 0..70_000 {
            last = t.service_id(Some(&format!("svc{i}")));
        }
        assert_eq!(last, SERVICE_OTHER);
        assert_eq!(t.service(SERVICE_OTHER), "(other services)");
        let seven = t.service_id(Some("svc7"));
        assert_eq!(t.service(seven), "svc7");
        assert_eq!(t.service_id(None), 0);
        assert_eq!(t.service(0), "");
    }

    #[test]
    fn obs_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Obs>(), 48);
    }

    #[test]
    fn evidence_refs_round_trip() {
        assert_eq!(evidence_parts(evidence_ref(3, 12345)), (3, 12345));
    }
}
