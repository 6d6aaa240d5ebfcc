//! Probes told from a flow record's cumulative TCP flags.
//!
//! NetFlow v5/v9 and IPFIX records carry the OR of the TCP flags of every
//! packet of the flow in one direction. A unidirectional record cannot say
//! whether the peer answered, but the initiator's own flags can: a
//! connection that was set up has an ACK from the initiator, so a record
//! with SYN and no ACK never completed the handshake (a SYN scan, or a SYN
//! nobody answered), and SYN with RST and no ACK is the half-open probe of
//! masscan/nmap `-sS` (the scanner resets after the SYN-ACK). The decoders
//! write these flags as `conn_state` `flags:SAFRPU` (see
//! `orbwatch-capture`'s NetFlow reader).

/// Most packets a SYN+RST record may hold and still be a probe: a SYN, its
/// retransmission and the reset. A longer flow with a reset is a
/// connection that was used and then aborted.
pub const MAX_PROBE_PACKETS: u64 = 3;

/// Is a flow with these cumulative flag letters (`S`, `A`, `F`, `R`, `P`,
/// `U`) and this packet count (both directions where known) a probe?
pub fn is_probe(letters: &str, packets: Option<u64>) -> bool {
    let has = |c: char| letters.contains(c);
    if !has('S') || has('A') {
        return false;
    }
    // SYN alone (or with FIN/URG probes' bits): never answered or never
    // completed. SYN with RST: a half-open probe, if it stayed short.
    if has('R') {
        return packets.is_none_or(|p| p <= MAX_PROBE_PACKETS);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert!(is_probe("S", Some(1)));
        assert!(is_probe("S", None));
        assert!(is_probe("SR", Some(2)));
        assert!(!is_probe("SR", Some(40)));
        assert!(!is_probe("SAF", Some(10)));
        assert!(!is_probe("SAPF", Some(3)));
        assert!(!is_probe("AR", Some(1)));
        assert!(!is_probe("-", Some(1)));
        assert!(!is_probe("", None));
    }
}
