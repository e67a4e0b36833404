//! Writing a handler's [`Response`]: in memory, a file or a reader in pieces, a stream of
//! chunks, or a takeover (a channel, a WebSocket) that answers in its own way.

use bytes::Bytes;
use httpkit_codec::h1::BodyLength;

use crate::exchange::Exchange;
use crate::logging::events;
use crate::pump::{Pump, Source};
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
            BodyKind::File(file, len) => {
                let Some((enc, close)) = self.start(status, &headers, BodyLength::Known(len)) else {
                    return;
                };
                let left = if enc.has_body() { len } else { 0 };
                Pump::start(self, enc, close, Source::File { file, left });
            }
            BodyKind::Reader(r) => self.start_pumped(status, &headers, Source::Reader(r)),
            BodyKind::Stream(iter) => self.start_pumped(status, &headers, Source::Stream(iter)),
        }
        crate::response::recycle_headers(headers);
    }

    /// A body of unknown length (chunked), produced as the client reads (see `pump.rs`).
    fn start_pumped(&self, status: http::StatusCode, headers: &http::HeaderMap, source: Source) {
        let Some((enc, close)) = self.start(status, headers, BodyLength::Streamed) else {
            return;
        };
        if enc.has_body() {
            Pump::start(self, enc, close, source);
        } else {
            // HEAD, 204, 304: the body is never produced.
            self.finish(enc, close);
        }
    }
}
