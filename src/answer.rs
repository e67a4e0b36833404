//! Writing a handler's [`Response`]: in memory, a file or a reader in pieces, a stream of
//! chunks, or a takeover (a channel, a WebSocket) that answers in its own way.

use std::io::Read;

use bytes::Bytes;
use httpkit_codec::h1::BodyLength;

use crate::exchange::{Exchange, PIECE};
use crate::logging::events;
use crate::response::BodyKind;
use crate::Response;

impl Exchange {
    /// Writes the handler's `resp`, whatever its body, unless the exchange was already answered
    /// (e.g. through a channel).
    pub(crate) fn send_response(&self, mut resp: Response) {
        if let Some(t) = resp.takeover.take() {
            t.take_over(self, &resp.headers);
            return;
        }
        if !self.claim_idle() {
            self.server.loggers.warn("a handler returned a response after its channel had answered; ignored");
            return;
        }
        self.write_response(resp);
        self.close_orphan_channel();
    }

    /// Writes `resp` (the caller has claimed the exchange).
    pub(crate) fn write_response(&self, resp: Response) {
        if resp.takeover.is_some() {
            // A channel handed over as a piece of another answer: not an HTTP body.
            self.write_error(500, "Internal Server Error");
            return;
        }
        if let Some(why) = &resp.invalid {
            self.server.loggers.error(&format!("invalid response to {} request: {why}", self.method));
            self.write_error(500, "Internal Server Error");
            return;
        }
        if resp.status.is_informational() {
            // A 1xx is never a final answer; the client would wait for one forever.
            self.server.loggers.error(&format!("a handler answered {} with status {}", self.method, resp.status));
            self.write_error(500, "Internal Server Error");
            return;
        }
        if self.server.loggers.has_event() {
            self.server.loggers.event(&format!("{}{}", events::STATUS_PROCESSED, resp.status.as_u16()));
        }
        let Response { status, headers, body, .. } = resp;
        match body.kind {
            BodyKind::Empty => {
                self.write_simple(status, &headers, Bytes::new());
            }
            BodyKind::Bytes(b) => {
                self.write_simple(status, &headers, b);
            }
            BodyKind::File(mut f, len) => {
                let Some((enc, close)) = self.start(status, &headers, BodyLength::Known(len)) else {
                    return;
                };
                let mut left = if enc.has_body() { len } else { 0 };
                while left > 0 {
                    // Pieces sized to what is left, read whole (a file that shrinks is an error).
                    let mut buf = vec![0u8; left.min(PIECE as u64) as usize];
                    if let Err(e) = f.read_exact(&mut buf) {
                        self.server.loggers.error(&format!("reading a file body failed: {e}"));
                        self.conn.abort();
                        return;
                    }
                    left -= buf.len() as u64;
                    if !self.wait_room() || !self.write_piece(enc, Bytes::from(buf)) {
                        return;
                    }
                }
                self.finish(enc, close);
            }
            BodyKind::Reader(mut r) => {
                let Some((enc, close)) = self.start(status, &headers, BodyLength::Streamed) else {
                    return;
                };
                if enc.has_body() && !self.pump(enc, |buf| r.read(buf)) {
                    return;
                }
                self.finish(enc, close);
            }
            BodyKind::Stream(iter) => {
                let Some((enc, close)) = self.start(status, &headers, BodyLength::Streamed) else {
                    return;
                };
                if enc.has_body() {
                    for item in iter {
                        match item {
                            Ok(b) if b.is_empty() => {}
                            Ok(b) => {
                                if !self.wait_room() || !self.write_piece(enc, b) {
                                    return;
                                }
                            }
                            Err(e) => {
                                self.server.loggers.error(&format!("response stream failed: {e}"));
                                self.conn.abort();
                                return;
                            }
                        }
                    }
                }
                self.finish(enc, close);
            }
        }
    }
}
