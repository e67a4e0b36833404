//! WebSocket errors, each naming the close code or HTTP status the peer must get.

use super::close::CloseCode;

use std::fmt;

/// A violation of RFC 6455 by the peer. The connection is closed with [`ProtocolError::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client frame without a mask. 1002.
    UnmaskedFrame,
    /// RSV1–3 set without a negotiated extension (or RSV1 where permessage-deflate forbids it). 1002.
    ReservedBits,
    /// A reserved opcode. 1002.
    ReservedOpcode,
    /// A control frame with a payload over 125 bytes, or fragmented. 1002.
    InvalidControlFrame,
    /// A continuation frame without a message started. 1002.
    UnexpectedContinuation,
    /// A new text/binary frame while a fragmented message is unfinished. 1002.
    ExpectedContinuation,
    /// A 64-bit length with the top bit set, or a length not minimally encoded. 1002.
    InvalidLength,
    /// A close payload of 1 byte. 1002.
    InvalidClosePayload,
    /// A close code that may not be sent on the wire. 1002.
    InvalidCloseCode,
    /// Text (or a close reason) that is not UTF-8. 1007.
    InvalidUtf8,
    /// A message larger than the configured limit (after inflating, when compressed). 1009.
    MessageTooBig,
    /// A compressed message that does not inflate (permessage-deflate). 1007.
    BadCompressedData,
}

impl ProtocolError {
    /// The close code to send before closing.
    pub fn close_code(self) -> u16 {
        match self {
            Self::InvalidUtf8 | Self::BadCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
        .as_u16()
    }

    /// A short description, usable as the close reason.
    pub fn description(self) -> &'static str {
        match self {
            Self::UnmaskedFrame => "client frame not masked",
            Self::ReservedBits => "reserved bits set",
            Self::ReservedOpcode => "reserved opcode",
            Self::InvalidControlFrame => "invalid control frame",
            Self::UnexpectedContinuation => "continuation without a message",
            Self::ExpectedContinuation => "expected a continuation frame",
            Self::InvalidLength => "invalid payload length",
            Self::InvalidClosePayload => "invalid close payload",
            Self::InvalidCloseCode => "invalid close code",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::MessageTooBig => "message too big",
            Self::BadCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (close {})", self.description(), self.close_code())
    }
}

impl std::error::Error for ProtocolError {}

/// Why an upgrade request is not a valid WebSocket handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Not a GET request. 400.
    Method,
    /// Not HTTP/1.1. 400.
    HttpVersion,
    /// No `Upgrade: websocket`. 400.
    Upgrade,
    /// No `upgrade` token in `Connection`. 400.
    Connection,
    /// `Sec-WebSocket-Version` is not 13. 426 with `Sec-WebSocket-Version: 13`.
    Version,
    /// `Sec-WebSocket-Key` missing or not base64 of 16 bytes. 400.
    Key,
}

impl HandshakeError {
    /// The HTTP status to answer with.
    pub fn status(self) -> u16 {
        match self {
            Self::Version => 426,
            _ => 400,
        }
    }

    /// A short description for the response body.
    pub fn description(self) -> &'static str {
        match self {
            Self::Method => "WebSocket handshake must be a GET",
            Self::HttpVersion => "WebSocket handshake must be HTTP/1.1",
            Self::Upgrade => "missing Upgrade: websocket",
            Self::Connection => "missing Connection: upgrade",
            Self::Version => "unsupported Sec-WebSocket-Version (13 is supported)",
            Self::Key => "Bad Sec-WebSocket-Key header",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.status())
    }
}

impl std::error::Error for HandshakeError {}
