//! Size limits enforced while decoding, with http-kit's defaults.

/// Limits the request decoder enforces. Every limit maps to the status the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line, CRLF included. Default 8192 (http-kit's `:max-line`). Exceeded → 414.
    /// Also bounds each header line, chunk-size line and chunk extension (→ 431 / 400).
    pub max_line: usize,
    /// Largest header block (request line, fields, final CRLF) and trailer section.
    /// Default 64 KiB. Exceeded → 431.
    pub max_header_bytes: usize,
    /// Most header fields in one request (at most [`Limits::HEADERS_CAP`]). Default 100.
    /// Exceeded → 431.
    pub max_headers: usize,
    /// Largest request body, checked against `Content-Length` before any body byte is read and
    /// against the running total of chunk sizes. Default 8 MiB (`:max-body`). Exceeded → 413.
    pub max_body: u64,
}

impl Limits {
    /// The largest accepted value of [`Limits::max_headers`].
    pub const HEADERS_CAP: usize = 256;
    /// The defaults (http-kit's for the line and body): request and header lines of 8192
    /// bytes, a 64 KiB header block, 100 header fields, an 8 MiB body. The one home of these
    /// numbers: the reactor's config and `httpkit`'s `Options` refer to it.
    pub const DEFAULT: Limits =
        Limits { max_line: 8192, max_header_bytes: 64 * 1024, max_headers: 100, max_body: 8 * 1024 * 1024 };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
