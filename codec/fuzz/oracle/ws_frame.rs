// Bytes → FrameDecoder (server role): never panics; a split feed gives the same events.

use httpkit_codec::ws::{FrameDecoder, ProtocolError, WsEvent};

fn run(pieces: &[&[u8]]) -> Vec<Result<WsEvent, ProtocolError>> {
    let mut dec = FrameDecoder::new(4096);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for p in pieces {
        buf.extend_from_slice(p);
        loop {
            match dec.decode(&buf) {
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
                Ok((0, None)) => break,
                Ok((n, ev)) => {
                    buf.drain(..n);
                    if let Some(ev) = ev {
                        out.push(Ok(ev));
                    }
                }
            }
        }
    }
    out
}

/// The fuzz oracle: runs one input; panics on a failure.
pub fn check(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let cut = (data[0] as usize).min(data.len() - 1);
    let data = &data[1..];
    let cut = cut.min(data.len());
    let whole = run(&[data]);
    let split = run(&[&data[..cut], &data[cut..]]);
    // UTF-8 fail-fast may report an error earlier with less input; compare what both saw.
    let n = whole.len().min(split.len());
    assert_eq!(whole[..n.saturating_sub(1)], split[..n.saturating_sub(1)]);
}
