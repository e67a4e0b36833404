// Bytes → FrameDecoder (server role): never panics; a split feed gives the same events. The
// first byte's top bit turns permessage-deflate on (RSV1 frames are inflated, bounded by the
// same 4 KiB limit), its other bits say where to split.

use httpkit_codec::ws::{negotiate_deflate, DeflateConfig, DeflateParams, FrameDecoder, ProtocolError, WsEvent};

fn params() -> Option<DeflateParams> {
    let mut h = http::HeaderMap::new();
    h.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, http::HeaderValue::from_static("permessage-deflate"));
    negotiate_deflate(&h, &DeflateConfig::default())
}

fn run(pieces: &[&[u8]], deflate: bool) -> Vec<Result<WsEvent, ProtocolError>> {
    let p = if deflate { params() } else { None };
    let mut dec = FrameDecoder::with_deflate(4096, p.as_ref());
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
    let deflate = data[0] & 0x80 != 0;
    let cut = ((data[0] & 0x7f) as usize).min(data.len() - 1);
    let data = &data[1..];
    let cut = cut.min(data.len());
    let whole = run(&[data], deflate);
    let split = run(&[&data[..cut], &data[cut..]], deflate);
    // UTF-8 fail-fast may report an error earlier with less input; compare what both saw.
    let n = whole.len().min(split.len());
    assert_eq!(whole[..n.saturating_sub(1)], split[..n.saturating_sub(1)]);
}
