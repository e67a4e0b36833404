//! permessage-deflate (RFC 7692): the negotiation of its parameters, and the per-message
//! compression and decompression (raw DEFLATE, each message ending with an empty sync block
//! whose `00 00 ff ff` tail is removed on the wire).
//!
//! What the server honours:
//! - `server_no_context_takeover`: accepted when offered; the server may also drop its
//!   compression context between messages without saying so (a peer's inflater with history
//!   reads a message made without it).
//! - `server_max_window_bits=N` for N in 9–15. N = 8 is declined (that offer is skipped):
//!   zlib cannot make a raw DEFLATE stream with a 256-byte window.
//! - `client_no_context_takeover`: accepted when offered, and asked for when the server is
//!   configured to (then one inflater per thread serves every such connection).
//! - `client_max_window_bits`: accepted, with no value sent back: the server's inflater always
//!   has the largest window (15), which reads any smaller one.
//!
//! An offer with an unknown parameter, a duplicate, or a bad value is declined; the next offer is
//! tried. No offer acceptable: no extension, and the connection works uncompressed.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::{header, HeaderMap};

use super::ProtocolError;

/// The tail a sync flush leaves, removed from every message on the wire (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// What the server wants from the negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Drop the server's compression context after each message (saves its memory per
    /// connection: one compressor per thread serves all such connections).
    pub server_no_context_takeover: bool,
    /// Ask clients to drop theirs (saves the server's inflater per connection).
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with (9–15).
    pub server_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self { server_no_context_takeover: true, client_no_context_takeover: false, server_max_window_bits: 15 }
    }
}

/// The parameters agreed with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server compresses each message on its own.
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own.
    pub client_no_context_takeover: bool,
    /// The server's window (9–15).
    pub server_max_window_bits: u8,
    /// Whether the client asked for `server_max_window_bits`, which the answer must then name.
    server_window_offered: bool,
    /// Whether the client offered `server_no_context_takeover`.
    server_nct_offered: bool,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value that accepts these parameters.
    pub fn response_header(&self) -> String {
        let mut s = String::from("permessage-deflate");
        if self.server_nct_offered {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_window_offered {
            s.push_str("; server_max_window_bits=");
            s.push_str(&self.server_max_window_bits.to_string());
        }
        s
    }
}

/// Picks the first `permessage-deflate` offer in the request's `Sec-WebSocket-Extensions` that
/// the server can honour (see the module docs); `None` when there is none.
pub fn negotiate(headers: &HeaderMap, cfg: &DeflateConfig) -> Option<DeflateParams> {
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_outside_quotes)
        .find_map(|offer| accept_offer(offer, cfg))
}

/// Splits a header value at commas that are not inside a quoted string.
fn split_outside_quotes(v: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&v[start..]);
    parts.into_iter()
}

fn window_bits(value: Option<&str>) -> Option<u8> {
    let v = value?.trim().trim_matches('"');
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| (8..=15).contains(n))
}

fn accept_offer(offer: &str, cfg: &DeflateConfig) -> Option<DeflateParams> {
    let mut params = offer.split(';').map(str::trim);
    if !params.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut agreed = DeflateParams {
        server_no_context_takeover: cfg.server_no_context_takeover,
        client_no_context_takeover: cfg.client_no_context_takeover,
        server_max_window_bits: cfg.server_max_window_bits.clamp(9, 15),
        server_window_offered: false,
        server_nct_offered: false,
    };
    let mut seen = [false; 4];
    for p in params {
        if p.is_empty() {
            return None;
        }
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p, None),
        };
        let which = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => {
                agreed.server_no_context_takeover = true;
                agreed.server_nct_offered = true;
                0
            }
            "client_no_context_takeover" if value.is_none() => {
                agreed.client_no_context_takeover = true;
                1
            }
            "server_max_window_bits" => {
                let n = window_bits(value)?;
                if n == 8 {
                    // zlib cannot honour a 256-byte window for raw DEFLATE: decline.
                    return None;
                }
                agreed.server_max_window_bits = agreed.server_max_window_bits.min(n);
                agreed.server_window_offered = true;
                2
            }
            "client_max_window_bits" => {
                if value.is_some() {
                    window_bits(value)?;
                }
                3
            }
            _ => return None,
        };
        if std::mem::replace(&mut seen[which], true) {
            return None;
        }
    }
    Some(agreed)
}

thread_local! {
    /// The compressors of connections without server context takeover, one per window size,
    /// shared by every such connection on this thread (reset after each message).
    static SHARED_DEFLATE: RefCell<Vec<(u8, u32, Compress)>> = const { RefCell::new(Vec::new()) };
    /// The inflater of connections whose client drops its context, shared likewise.
    static SHARED_INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// The compressing side of one connection (the server's frames).
#[derive(Debug)]
pub struct Deflater {
    level: u32,
    window_bits: u8,
    /// The context kept between messages (context takeover), made at the first message.
    own: Option<Box<Compress>>,
    takeover: bool,
}

impl Deflater {
    /// A compressor for the agreed `params` at `level` (0–9).
    pub fn new(params: &DeflateParams, level: u32) -> Self {
        Self {
            level: level.min(9),
            window_bits: params.server_max_window_bits,
            own: None,
            takeover: !params.server_no_context_takeover,
        }
    }

    /// Whether messages are compressed on their own (so one encoding serves every connection
    /// with the same [`Deflater::wire_form`]).
    pub fn is_shared(&self) -> bool {
        !self.takeover
    }

    /// What decides the bytes of a message compressed without context: the window and level.
    pub fn wire_form(&self) -> (u8, u32) {
        (self.window_bits, self.level)
    }

    /// Appends `input` compressed as one message (tail removed) to `out`.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.takeover {
            let (level, bits) = (self.level, self.window_bits);
            let z = self
                .own
                .get_or_insert_with(|| Box::new(Compress::new_with_window_bits(Compression::new(level), false, bits)));
            deflate_message(z, input, out);
        } else {
            compress_shared(self.window_bits, self.level, input, out);
        }
    }
}

/// Compresses one message with no context (the thread's shared compressor for this form).
pub fn compress_shared(window_bits: u8, level: u32, input: &[u8], out: &mut Vec<u8>) {
    SHARED_DEFLATE.with(|cell| {
        let mut shared = cell.borrow_mut();
        let at = match shared.iter().position(|(b, l, _)| *b == window_bits && *l == level) {
            Some(i) => i,
            None => {
                let z = Compress::new_with_window_bits(Compression::new(level), false, window_bits);
                shared.push((window_bits, level, z));
                shared.len() - 1
            }
        };
        let z = &mut shared[at].2;
        deflate_message(z, input, out);
        z.reset();
    });
}

fn deflate_message(z: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(input.len() / 2 + 64);
    let mut pos = 0;
    loop {
        let before = z.total_in();
        // Cannot fail: the stream is ours and well-formed.
        let _ = z.compress_vec(&input[pos..], out, FlushCompress::Sync);
        pos += (z.total_in() - before) as usize;
        if pos == input.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve((out.capacity() - start).max(64));
    }
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if out.len() == start {
        // An empty message: one empty stored block's first byte (RFC 7692 §7.2.3.6).
        out.push(0);
    }
}

/// The decompressing side of one connection (the client's frames).
#[derive(Debug)]
pub(crate) struct Inflater {
    /// The client keeps its context: so must we (made at the first compressed message).
    own: Option<Decompress>,
    takeover: bool,
}

impl Inflater {
    pub(crate) fn new(params: &DeflateParams) -> Self {
        Self { own: None, takeover: !params.client_no_context_takeover }
    }

    /// Inflates one message's payload (tail removed) into a new buffer of at most `max` bytes.
    pub(crate) fn inflate(&mut self, input: &[u8], max: usize) -> Result<Vec<u8>, ProtocolError> {
        if self.takeover {
            let z = self.own.get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
            let res = inflate_message(z, input, max);
            if res.is_err() {
                z.reset(false);
            }
            res
        } else {
            SHARED_INFLATE.with(|cell| {
                let mut shared = cell.borrow_mut();
                let z = shared.get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
                let res = inflate_message(z, input, max);
                z.reset(false);
                res
            })
        }
    }
}

fn inflate_message(z: &mut Decompress, input: &[u8], max: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut out: Vec<u8> = Vec::new();
    for (is_tail, part) in [(false, input), (true, &TAIL[..])] {
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() > max {
                    return Err(ProtocolError::MessageTooBig);
                }
                // Grow geometrically, never past one byte over the limit (which shows a bomb).
                let want = (out.len().max(input.len() * 2).max(256)).min(max + 1 - out.len());
                out.reserve_exact(want.max(1));
            }
            let (in0, out0) = (z.total_in(), out.len());
            let status = z
                .decompress_vec(&part[pos..], &mut out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::BadCompressedData)?;
            pos += (z.total_in() - in0) as usize;
            if out.len() > max {
                return Err(ProtocolError::MessageTooBig);
            }
            if status == Status::StreamEnd {
                // A final block: the message ends here (bytes of it after the block are not
                // DEFLATE); the next message starts a new stream.
                z.reset(false);
                if !is_tail && pos < part.len() {
                    return Err(ProtocolError::BadCompressedData);
                }
                return Ok(out);
            }
            if pos == part.len() && out.len() < out.capacity() {
                break;
            }
            if z.total_in() == in0 && out.len() == out0 && out.len() < out.capacity() {
                // Input left, room left, and no progress: the stream is broken.
                return Err(ProtocolError::BadCompressedData);
            }
        }
    }
    if out.len() > max {
        return Err(ProtocolError::MessageTooBig);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(v: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for x in v {
            h.append(header::SEC_WEBSOCKET_EXTENSIONS, x.parse().unwrap());
        }
        h
    }

    #[test]
    fn negotiates_the_first_acceptable_offer() {
        let cfg = DeflateConfig::default();
        let p = negotiate(&headers(&["permessage-deflate; client_max_window_bits"]), &cfg).unwrap();
        assert_eq!(p.response_header(), "permessage-deflate");
        assert!(p.server_no_context_takeover && !p.client_no_context_takeover);
        let p = negotiate(
            &headers(&["permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10; server_no_context_takeover; client_no_context_takeover"]),
            &cfg,
        )
        .unwrap();
        assert_eq!(p.server_max_window_bits, 10);
        assert_eq!(
            p.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
        let quoted = negotiate(&headers(&["x-foo, permessage-deflate; server_max_window_bits=\"9\""]), &cfg).unwrap();
        assert_eq!(quoted.server_max_window_bits, 9);
        let asks = DeflateConfig { client_no_context_takeover: true, ..cfg };
        assert_eq!(
            negotiate(&headers(&["permessage-deflate"]), &asks).unwrap().response_header(),
            "permessage-deflate; client_no_context_takeover"
        );
    }

    #[test]
    fn declines_what_it_cannot_honour() {
        let cfg = DeflateConfig::default();
        for bad in [
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; foo",
            "permessage-deflate;",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(negotiate(&headers(&[bad]), &cfg), None, "{bad}");
        }
        assert_eq!(negotiate(&HeaderMap::new(), &cfg), None);
    }

    fn params(server_nct: bool, client_nct: bool, bits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: bits,
            server_window_offered: false,
            server_nct_offered: false,
        }
    }

    #[test]
    fn round_trips_with_and_without_context() {
        let text = b"{\"user\":\"ann\",\"text\":\"hello hello hello hello\"}".repeat(20);
        for (nct, bits) in [(false, 15), (true, 15), (false, 9), (true, 9)] {
            let p = params(nct, nct, bits);
            let (mut d, mut i) = (Deflater::new(&p, 6), Inflater::new(&p));
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let mut wire = Vec::new();
                d.compress(&text, &mut wire);
                assert!(!wire.ends_with(&TAIL));
                sizes.push(wire.len());
                assert_eq!(i.inflate(&wire, 1 << 20).unwrap(), text);
            }
            assert!(sizes[0] < text.len() / 4, "{sizes:?}");
            if !nct {
                // The second message refers back to the first.
                assert!(sizes[1] < sizes[0], "{sizes:?}");
            } else {
                assert_eq!(sizes[1], sizes[0]);
            }
        }
        let p = params(true, true, 15);
        let mut wire = Vec::new();
        Deflater::new(&p, 6).compress(b"", &mut wire);
        assert_eq!(Inflater::new(&p).inflate(&wire, 10).unwrap(), b"");
    }

    #[test]
    fn a_bomb_is_too_big_and_garbage_is_bad_data() {
        let p = params(true, true, 15);
        let mut wire = Vec::new();
        Deflater::new(&p, 9).compress(&vec![0u8; 10 << 20], &mut wire);
        assert!(wire.len() < 20_000);
        assert_eq!(Inflater::new(&p).inflate(&wire, 1 << 20), Err(ProtocolError::MessageTooBig));
        assert_eq!(Inflater::new(&p).inflate(&wire, 10 << 20).unwrap().len(), 10 << 20);
        assert_eq!(Inflater::new(&p).inflate(&[0xff; 32], 1 << 20), Err(ProtocolError::BadCompressedData));
    }

    #[test]
    fn a_final_block_ends_the_message_and_bytes_after_it_are_refused() {
        let p = params(false, false, 15);
        let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
        let mut wire = Vec::with_capacity(256);
        c.compress_vec(b"hello hello hello", &mut wire, FlushCompress::Finish).unwrap();
        let mut i = Inflater::new(&p);
        assert_eq!(i.inflate(&wire, 1 << 10).unwrap(), b"hello hello hello");
        // The stream was reset: the next message inflates on its own.
        assert_eq!(i.inflate(&wire, 1 << 10).unwrap(), b"hello hello hello");
        let mut junk = wire.clone();
        junk.extend_from_slice(b"junk");
        assert_eq!(i.inflate(&junk, 1 << 10), Err(ProtocolError::BadCompressedData));
    }
}
