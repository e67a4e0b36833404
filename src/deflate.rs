//! permessage-deflate (RFC 7692) for both WebSocket APIs: the option, and what a message
//! becomes on the wire when the connection agreed to compress.
//!
//! Ordering: with context takeover, each compressed message refers to the ones before it, so
//! the order they are compressed in must be the order they are written in. The connection's
//! compressor is locked from compressing a message until its frame is queued to the reactor
//! (a channel send, not I/O); without context takeover there is nothing to keep in order, and
//! one compressor per thread serves every connection.

use std::sync::Mutex;

use bytes::Bytes;
use httpkit_codec::ws::{
    compress_shared, encode_frame_head, encode_frame_head_rsv1, DeflateConfig, DeflateParams, Deflater, OpCode,
};

use crate::ws::{message_payload, Message, Payload};

/// permessage-deflate settings ([`Options::ws_compression`](crate::Options::ws_compression)).
///
/// The defaults keep memory per connection low: the server compresses each message on its own
/// (no context takeover: one compressor per worker thread serves every connection), and inflates
/// what clients send with an inflater kept per connection (made at the first compressed
/// message) unless [`WsCompression::client_no_context_takeover`] asks clients to drop their
/// context too. Messages under [`WsCompression::min_size`] bytes go out uncompressed.
///
/// Measured (`benches/ws_deflate_memory.rs`, RSS growth per WebSocket after one 2.6 KB JSON
/// message each way, 2000 connections): compression off 2.2 KB; the defaults 22 KB (the
/// inflater; up to about 40 KB once large messages fill its 32 KiB window); with
/// `client_no_context_takeover(true)` 2.0 KB (nothing per connection); with
/// `context_takeover(true)` 311 KB (zlib's window and hash tables for the compressor, plus the
/// inflater).
///
/// A compressed message may inflate to [`Options::max_ws`](crate::Options::max_ws) bytes from a
/// thousand times fewer on the wire (4 KiB of zeros make 4 MiB): with compression on, keep
/// `max_ws` to what your messages need.
///
/// ```
/// use httpkit::{Options, WsCompression};
/// let opts = Options::default().ws_compression(WsCompression::default().context_takeover(true));
/// # drop(opts);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsCompression {
    pub(crate) cfg: DeflateConfig,
    pub(crate) level: u32,
    pub(crate) min_size: usize,
}

impl Default for WsCompression {
    fn default() -> Self {
        Self { cfg: DeflateConfig::default(), level: 6, min_size: 64 }
    }
}

impl WsCompression {
    /// Keep the server's compression context between messages: better ratios for many small
    /// similar messages (chat, JSON updates), at about 290 KB per connection that has sent a
    /// compressed message (zlib's window and hash tables). Off by default.
    pub fn context_takeover(mut self, on: bool) -> Self {
        self.cfg.server_no_context_takeover = !on;
        self
    }

    /// Ask clients to compress each message on its own (`client_no_context_takeover`), so the
    /// server keeps no inflater per connection (one per reactor thread serves them all). Off by
    /// default: browsers then compress better.
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.cfg.client_no_context_takeover = on;
        self
    }

    /// The largest window the server compresses with, 9–15 (default 15; clamped). A client may
    /// ask for less (`server_max_window_bits`); it gets what it asks for down to 9 (an offer of 8
    /// is declined: zlib cannot make raw DEFLATE with a 256-byte window).
    pub fn max_window_bits(mut self, bits: u8) -> Self {
        self.cfg.server_max_window_bits = bits.clamp(9, 15);
        self
    }

    /// The compression level, 0–9 (default 6; clamped).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Messages shorter than this go out uncompressed (default 64 bytes: below that, DEFLATE
    /// rarely saves a byte and always costs time).
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }
}

/// The compressing side of one connection that agreed to permessage-deflate.
#[derive(Debug)]
pub(crate) struct WsDeflate {
    /// With context takeover: the connection's own compressor (see the module docs).
    own: Option<Mutex<Deflater>>,
    /// Without: the thread's compressor for this window and level.
    form: (u8, u32),
    min_size: usize,
}

impl WsDeflate {
    pub(crate) fn new(params: &DeflateParams, opts: &WsCompression) -> Self {
        let d = Deflater::new(params, opts.level);
        let form = d.wire_form();
        Self { own: (!d.is_shared()).then(|| Mutex::new(d)), form, min_size: opts.min_size }
    }
}

/// The length of a server frame's head for a payload of `len` bytes. Buffers are made exactly
/// this size (plus the payload): `Bytes::from` a vector with spare room costs another allocation.
fn head_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    }
}

fn head(op: OpCode, compressed: bool, len: usize) -> Bytes {
    let mut h = Vec::with_capacity(head_len(len));
    if compressed {
        encode_frame_head_rsv1(op, true, len, &mut h);
    } else {
        encode_frame_head(op, true, len, &mut h);
    }
    Bytes::from(h)
}

fn shared_frame(form: (u8, u32), op: OpCode, payload: &[u8]) -> (Bytes, Bytes) {
    let mut out = Vec::new();
    compress_shared(form.0, form.1, payload, &mut out);
    (head(op, true, out.len()), Bytes::from(out))
}

/// Encodes `msg` as this connection agreed (compressed when it agreed and the message is large
/// enough) and hands its frame (head, payload) to `send`; returns what `send` returns. With the
/// connection's own compressor, `send` runs under its lock, so that the wire order is the
/// order of compression.
pub(crate) fn send_message(z: Option<&WsDeflate>, msg: &Message, send: impl FnOnce(Bytes, Bytes) -> bool) -> bool {
    let (op, payload) = message_payload(msg);
    let Some(z) = z.filter(|z| payload.len() >= z.min_size) else {
        let (h, p) = plain_frame(op, payload);
        return send(h, p);
    };
    match &z.own {
        None => {
            let (h, p) = shared_frame(z.form, op, payload.as_bytes());
            send(h, p)
        }
        Some(own) => {
            let mut d = own.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::new();
            d.compress(payload.as_bytes(), &mut out);
            send(head(op, true, out.len()), Bytes::from(out))
        }
    }
}

/// Sends `msg` on `conn` as [`send_message`] encodes it: written from this thread when `direct`
/// (the connection's own callback replying, see `Serial::is_running_here`), else queued to the
/// reactor.
pub(crate) fn send_on(
    conn: &crate::attachment::ConnHandle,
    z: Option<&WsDeflate>,
    msg: &Message,
    direct: bool,
) -> bool {
    send_message(
        z,
        msg,
        |head, payload| {
            if direct {
                conn.send_frame(head, payload, None)
            } else {
                conn.queue_frame(head, payload)
            }
        },
    )
}

/// Shared payloads up to this size are copied next to their frame head (one buffer, one
/// allocation); larger ones are sent as they are, the head apart.
const INLINE_MAX: usize = 1024;

/// An uncompressed frame: text, and small shared payloads, in one buffer with the head.
fn plain_frame(op: OpCode, payload: Payload<'_>) -> (Bytes, Bytes) {
    match payload {
        Payload::Shared(b) if b.len() > INLINE_MAX => (head(op, false, b.len()), b),
        p => {
            let bytes = p.as_bytes();
            let mut v = Vec::with_capacity(head_len(bytes.len()) + bytes.len());
            encode_frame_head(op, true, bytes.len(), &mut v);
            v.extend_from_slice(bytes);
            (Bytes::from(v), Bytes::new())
        }
    }
}

/// The frames of one broadcast, each made once per wire form: uncompressed, and compressed
/// without context per (window, level). A member with its own context is encoded on its own.
#[derive(Debug, Default)]
pub(crate) struct FrameCache {
    payload: Option<(OpCode, Bytes)>,
    plain: Option<(Bytes, Bytes)>,
    deflated: Vec<((u8, u32), (Bytes, Bytes))>,
}

impl FrameCache {
    /// The frame for a connection whose compression is `z`; `None` when the connection keeps
    /// its own context (send it with [`send_message`]).
    pub(crate) fn frame(&mut self, z: Option<&WsDeflate>, msg: &Message) -> Option<(Bytes, Bytes)> {
        let (op, payload) = self
            .payload
            .get_or_insert_with(|| {
                let (op, p) = message_payload(msg);
                (op, p.into_bytes())
            })
            .clone();
        match z.filter(|z| payload.len() >= z.min_size) {
            None => Some(self.plain.get_or_insert_with(|| (head(op, false, payload.len()), payload)).clone()),
            Some(z) if z.own.is_some() => None,
            Some(z) => {
                if let Some((_, f)) = self.deflated.iter().find(|(form, _)| *form == z.form) {
                    return Some(f.clone());
                }
                let f = shared_frame(z.form, op, &payload);
                self.deflated.push((z.form, f.clone()));
                Some(f)
            }
        }
    }
}
