//! Errors of the HTTP/1.1 codec, each naming the status the peer must get.

use std::fmt;

/// Why a request could not be decoded. After any of these the connection must be closed once the
/// error response ([`ParseError::status`]) has been written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not an HTTP request (bad method token, bad request line, bare garbage). 400.
    Malformed,
    /// Invalid request-target. 400.
    Target,
    /// The request line is longer than [`Limits::max_line`](super::Limits). 414.
    UriTooLong,
    /// An `HTTP/x.y` version other than 1.0 and 1.1. 505.
    UnsupportedVersion,
    /// Invalid header name, including whitespace before the colon and obs-fold lines. 400.
    HeaderName,
    /// Invalid header value (control characters). 400.
    HeaderValue,
    /// More header fields than [`Limits::max_headers`](super::Limits). 431.
    TooManyHeaders,
    /// A header line or the header block exceeds its limit. 431.
    HeadersTooLarge,
    /// HTTP/1.1 request without a `Host` header, with several, or with an invalid or empty one
    /// (bad characters, a port that is not digits up to 65535). 400.
    Host,
    /// Non-numeric, signed or overflowing `Content-Length`, or several different values. 400.
    ContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`, or `Transfer-Encoding` on HTTP/1.0. 400.
    AmbiguousFraming,
    /// A transfer coding other than `chunked`. 501.
    UnsupportedTransferEncoding,
    /// Invalid chunk size line (not hex, overflow, missing digits). 400.
    ChunkSize,
    /// Missing CRLF after a chunk or in the chunk framing. 400.
    ChunkFraming,
    /// A chunk extension longer than the line limit. 400.
    ChunkExtensionsTooLarge,
    /// Trailer section too large. 431.
    TrailersTooLarge,
    /// Invalid or forbidden trailer field. 400.
    Trailer,
    /// The body exceeds [`Limits::max_body`](super::Limits). 413.
    BodyTooLarge,
}

impl ParseError {
    /// The HTTP status code to answer with before closing the connection.
    pub fn status(self) -> u16 {
        match self {
            Self::UriTooLong => 414,
            Self::UnsupportedVersion => 505,
            Self::TooManyHeaders | Self::HeadersTooLarge | Self::TrailersTooLarge => 431,
            Self::UnsupportedTransferEncoding => 501,
            Self::BodyTooLarge => 413,
            _ => 400,
        }
    }

    /// A short, fixed description suitable for an error response body.
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "malformed request",
            Self::Target => "invalid request target",
            Self::UriTooLong => "request line too long",
            Self::UnsupportedVersion => "unsupported HTTP version",
            Self::HeaderName => "invalid header name",
            Self::HeaderValue => "invalid header value",
            Self::TooManyHeaders => "too many header fields",
            Self::HeadersTooLarge => "request header fields too large",
            Self::Host => "missing, duplicate or invalid Host header",
            Self::ContentLength => "invalid Content-Length",
            Self::AmbiguousFraming => "ambiguous message framing",
            Self::UnsupportedTransferEncoding => "unsupported Transfer-Encoding",
            Self::ChunkSize => "invalid chunk size",
            Self::ChunkFraming => "invalid chunk framing",
            Self::ChunkExtensionsTooLarge => "chunk extension too large",
            Self::TrailersTooLarge => "trailer section too large",
            Self::Trailer => "invalid trailer field",
            Self::BodyTooLarge => "request body too large",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.status())
    }
}

impl std::error::Error for ParseError {}

/// Why a response head could not be encoded. The server answers 500 instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A header value contains CR, LF or NUL (header injection).
    InvalidHeaderValue,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidHeaderValue => f.write_str("header value contains CR, LF or NUL"),
        }
    }
}

impl std::error::Error for EncodeError {}
