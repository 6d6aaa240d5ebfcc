//! The fallback for programs no parser claims: an event of kind `Other`
//! holding every address of the message in `other_ips` (found by
//! [`crate::ipscan`]), so that IOC matching still sees them.

use super::Ctx;
use super::fields::nonempty;
use crate::model::{Event, EventKind};

/// Keep every address of an unclaimed syslog message.
pub(crate) fn parse(c: &Ctx) -> Event {
    let mut ev = Event::new(EventKind::Other);
    ev.service = nonempty(c.app);
    add_ips(&mut ev, c.body);
    ev
}

/// Append every address in `text` to `other_ips` (IPv4-mapped IPv6 folded
/// to IPv4, duplicates dropped).
pub(crate) fn add_ips(ev: &mut Event, text: &str) {
    crate::ipscan::for_each_ip(text.as_bytes(), |ip, _, _| {
        let ip = ip.to_canonical();
        if super::fields::is_placeholder(ip) {
            return;
        }
        if !ev.other_ips.contains(&ip) {
            ev.other_ips.push(ip);
        }
    });
}
