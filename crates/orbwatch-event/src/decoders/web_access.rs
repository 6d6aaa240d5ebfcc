//! Apache/Nginx access logs, common and combined (stub: TODO implement).
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};

pub const INFO: DecoderInfo = DecoderInfo {
    name: "web-access",
    description: "Apache/Nginx access logs, common and combined",
    sniff: |_lines| 0,
    make: |_cfg: &DecoderConfig| Box::new(Stub),
};

#[derive(Clone)]
struct Stub;

impl Decoder for Stub {
    fn name(&self) -> &'static str {
        "web-access"
    }
    fn decode(&mut self, _record: &[u8]) -> Result<Decoded, DecodeError> {
        Err(DecodeError::new("decoder not implemented yet"))
    }
    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}
