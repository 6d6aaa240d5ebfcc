//! Generic CSV with --map field=column (stub: TODO implement).
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};

pub const CSV_INFO: DecoderInfo = DecoderInfo {
    name: "csv",
    description: "Generic CSV with --map field=column",
    sniff: |_lines| 0,
    make: |_cfg: &DecoderConfig| Box::new(Stub),
};

#[derive(Clone)]
struct Stub;

impl Decoder for Stub {
    fn name(&self) -> &'static str {
        "csv"
    }
    fn decode(&mut self, _record: &[u8]) -> Result<Decoded, DecodeError> {
        Err(DecodeError::new("decoder not implemented yet"))
    }
    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

pub const JSON_INFO: DecoderInfo = DecoderInfo {
    name: "json",
    description: "Generic JSON lines with --map field=path",
    sniff: |_lines| 0,
    make: |_cfg: &DecoderConfig| Box::new(Stub),
};
