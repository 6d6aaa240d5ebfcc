//! Syslog RFC 3164/5424 with per-program message parsers (stub: TODO implement).
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};

pub const INFO: DecoderInfo = DecoderInfo {
    name: "syslog",
    description: "Syslog RFC 3164/5424 with per-program message parsers",
    sniff: |_lines| 0,
    make: |_cfg: &DecoderConfig| Box::new(Stub),
};

#[derive(Clone)]
struct Stub;

impl Decoder for Stub {
    fn name(&self) -> &'static str {
        "syslog"
    }
    fn decode(&mut self, _record: &[u8]) -> Result<Decoded, DecodeError> {
        Err(DecodeError::new("decoder not implemented yet"))
    }
    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}
