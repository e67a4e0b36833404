//! HTTP/1.1 (RFC 9112) request decoding and response encoding.
//!
//! | file | RFC 9112 section |
//! |---|---|
//! | `request.rs` | §2–§5 message, request line, fields; §6 body length; §9.3 persistence |
//! | `chunked.rs` | §7.1 chunked transfer coding, §7.1.2 trailers |
//! | `response.rs` | §4 status line, §6 framing of what we send |

mod chunked;
mod error;
mod limits;
mod request;
mod response;

pub use error::{EncodeError, ParseError};
pub use limits::Limits;
pub use request::{BodyKind, RequestDecoder, RequestEvent, RequestHead};
pub use response::{encode_head, BodyEncoder, BodyLength, ResponseContext, ResponseFraming};

#[cfg(test)]
mod tests;
