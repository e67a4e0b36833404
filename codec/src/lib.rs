//! Sans-IO HTTP/1.1 and WebSocket codecs for httpkit.
//!
//! **Stability:** a building block of `httpkit`, with a less stable API: it follows what
//! `httpkit` needs and may change in any minor release. Depend on `httpkit` for a stable API.
//!
//! This crate never touches a socket, a thread or a clock: callers feed it bytes and it returns
//! events (decoders), or it writes bytes into a caller-owned `Vec<u8>` (encoders). That makes every
//! state machine here testable byte by byte, and fuzzable.
//!
//! * [`h1`]: the HTTP/1.1 request decoder ([`h1::RequestDecoder`]) and response encoder
//!   ([`h1::encode_head`]).
//! * [`ws`]: the RFC 6455 handshake, frame decoder and frame encoder.
//! * [`date`]: formats an IMF-fixdate from a number of seconds the caller read from its clock.
//!
//! Errors are values: every error knows what the peer must be told (an HTTP status for
//! [`h1::ParseError`], a close code for [`ws::ProtocolError`]).
#![deny(missing_docs)]

pub mod date;
pub mod h1;
pub mod proxy;
pub mod ws;

#[cfg(test)]
pub(crate) mod test_util;
