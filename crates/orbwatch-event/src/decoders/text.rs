//! Last resort: every IPv4/IPv6 token, no direction (stub: TODO implement).
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};

pub const INFO: DecoderInfo = DecoderInfo {
    name: "text",
    description: "Last resort: every IPv4/IPv6 token, no direction",
    sniff: |_lines| 0,
    make: |_cfg: &DecoderConfig| Box::new(Stub),
};

#[derive(Clone)]
struct Stub;

impl Decoder for Stub {
    fn name(&self) -> &'static str {
        "text"
    }
    fn decode(&mut self, _record: &[u8]) -> Result<Decoded, DecodeError> {
        Err(DecodeError::new("decoder not implemented yet"))
    }
    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}
