//! What one record says happened with an indicator.
//!
//! A successful login from a listed relay and a SYN the firewall dropped
//! must not read alike, so each sighting is classified from the decoded
//! [`Event`] into one [`Outcome`]. The order of the tests is the order of
//! [`Outcome::ALL`]: what the record proves most directly wins (an auth
//! verdict over the connection that carried it, a block over a direction).
//! Probes are recognised by the behaviour detectors' own rule
//! ([`is_probe`]), so "blocked" here and a port scan's "refused or
//! unanswered" there never disagree.

use orbwatch_event::{Action, AddrRole, AuthOutcome, Event, EventKind};

use crate::behaviour::observe::is_probe;
use crate::finding::{Direction, Outcome};

/// Where the indicator sat in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicatorSide {
    /// An address in the given role.
    Address(AddrRole),
    /// A domain, URL or hash named by the record.
    Name,
}

/// Zeek `conn_state`s in which the responder answered (a SYN-ACK or data
/// came back): `SF` normal close, `S1` established, `S2`/`S3` closed by one
/// side, `RSTO`/`RSTR` reset after establishment.
const ANSWERED_STATES: [&str; 6] = ["SF", "S1", "S2", "S3", "RSTO", "RSTR"];

/// Did the other end answer? Only what the record says: an explicit
/// allow, a Zeek state with a reply, or bytes or packets coming back.
fn answered(ev: &Event) -> bool {
    if ev.action == Some(Action::Allow) {
        return true;
    }
    if ev
        .conn_state
        .as_deref()
        .is_some_and(|s| ANSWERED_STATES.contains(&s))
    {
        return true;
    }
    ev.bytes_in.is_some_and(|b| b > 0) || ev.packets_in.is_some_and(|p| p > 0)
}

/// The outcome of one record for an indicator at `side`; `direction` is
/// the record's direction as `--internal` sees it.
pub fn classify(ev: Option<&Event>, side: IndicatorSide, direction: Direction) -> Outcome {
    let Some(ev) = ev else {
        return Outcome::Unknown;
    };
    match ev.auth {
        Some(AuthOutcome::Success) => return Outcome::AuthSuccess,
        Some(AuthOutcome::Failure | AuthOutcome::InvalidUser) => return Outcome::AuthFailure,
        None => {}
    }
    if is_probe(ev) {
        return Outcome::Blocked;
    }
    match ev.kind {
        EventKind::Dns => return Outcome::Dns,
        EventKind::Http => return Outcome::Http,
        _ => {}
    }
    let towards_indicator = matches!(
        side,
        IndicatorSide::Address(AddrRole::Dst) | IndicatorSide::Name
    );
    if direction == Direction::Outbound && towards_indicator {
        return Outcome::Outbound;
    }
    if answered(ev) || ev.kind == EventKind::Tls {
        return Outcome::Allowed;
    }
    Outcome::Unknown
}

/// Bytes an internal host sent to the indicator in this record: the
/// originator's bytes when an internal host opened the connection to it,
/// the responder's when it connected in and an internal host answered.
/// `None` when the record counts no bytes, the traffic was blocked, or the
/// roles are not known.
pub fn bytes_to_indicator(
    ev: Option<&Event>,
    side: IndicatorSide,
    direction: Direction,
    outcome: Outcome,
) -> Option<u64> {
    let ev = ev?;
    if outcome == Outcome::Blocked {
        return None;
    }
    match (direction, side) {
        (Direction::Outbound, IndicatorSide::Address(AddrRole::Dst) | IndicatorSide::Name) => {
            ev.bytes_out
        }
        (Direction::Inbound, IndicatorSide::Address(AddrRole::Src)) => ev.bytes_in,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(state: &str) -> Event {
        let mut e = Event::new(EventKind::Connection);
        e.conn_state = Some(state.into());
        e
    }

    #[test]
    fn each_outcome_from_its_record() {
        let src = IndicatorSide::Address(AddrRole::Src);
        let dst = IndicatorSide::Address(AddrRole::Dst);
        let mut auth = Event::new(EventKind::Auth);
        auth.auth = Some(AuthOutcome::Success);
        assert_eq!(
            classify(Some(&auth), src, Direction::Inbound),
            Outcome::AuthSuccess
        );
        auth.auth = Some(AuthOutcome::InvalidUser);
        assert_eq!(
            classify(Some(&auth), src, Direction::Inbound),
            Outcome::AuthFailure
        );
        assert_eq!(
            classify(Some(&conn("REJ")), src, Direction::Inbound),
            Outcome::Blocked
        );
        assert_eq!(
            classify(Some(&conn("S0")), dst, Direction::Outbound),
            Outcome::Blocked
        );
        assert_eq!(
            classify(Some(&conn("SF")), dst, Direction::Outbound),
            Outcome::Outbound
        );
        assert_eq!(
            classify(Some(&conn("SF")), src, Direction::Inbound),
            Outcome::Allowed
        );
        assert_eq!(
            classify(Some(&conn("OTH")), src, Direction::Inbound),
            Outcome::Unknown
        );
        let mut deny = Event::new(EventKind::Connection);
        deny.action = Some(Action::Drop);
        assert_eq!(
            classify(Some(&deny), dst, Direction::Outbound),
            Outcome::Blocked
        );
        assert_eq!(
            classify(
                Some(&Event::new(EventKind::Dns)),
                IndicatorSide::Name,
                Direction::Unknown
            ),
            Outcome::Dns
        );
        assert_eq!(classify(None, src, Direction::Inbound), Outcome::Unknown);
    }

    #[test]
    fn bytes_counted_only_towards_the_indicator() {
        let mut e = conn("SF");
        e.bytes_out = Some(1000);
        e.bytes_in = Some(50);
        let dst = IndicatorSide::Address(AddrRole::Dst);
        let src = IndicatorSide::Address(AddrRole::Src);
        assert_eq!(
            bytes_to_indicator(Some(&e), dst, Direction::Outbound, Outcome::Outbound),
            Some(1000)
        );
        assert_eq!(
            bytes_to_indicator(Some(&e), src, Direction::Inbound, Outcome::Allowed),
            Some(50)
        );
        assert_eq!(
            bytes_to_indicator(Some(&e), src, Direction::Outbound, Outcome::Allowed),
            None
        );
        assert_eq!(
            bytes_to_indicator(Some(&e), dst, Direction::Outbound, Outcome::Blocked),
            None
        );
    }
}
