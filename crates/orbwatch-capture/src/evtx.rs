//! EVTX files.
use crate::{Coverage, Emitted};
/// Read an EVTX file.
pub fn read_evtx<R: std::io::Read>(_input: R, _sink: &mut dyn FnMut(Emitted)) -> Coverage {
    let mut c = Coverage::new("evtx");
    c.fatal = Some("this decoder is not written yet".into());
    c
}
