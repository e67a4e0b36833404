//! The chunked transfer coding (RFC 9112 §7.1):
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! Limits: a chunk size fits in 64 bits (16 hex digits, no overflow); extensions are bounded by
//! `max_line`; the running total of chunk sizes by `max_body` (413); the trailer section by
//! `max_header_bytes` (431). Extensions are skipped; trailers are parsed with `httparse`.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Limits, ParseError};

/// Trailer fields a sender must not put in trailers (RFC 9110 §6.5.1); they are rejected.
const FORBIDDEN_TRAILERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "trailer",
    "upgrade",
    "expect",
    "te",
    "authorization",
    "proxy-authorization",
    "cookie",
];

/// Position in the chunked grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkedState {
    /// Reading hex digits of the chunk size.
    Size,
    /// Whitespace after the size, before `;` or CR.
    SizeWs,
    /// Inside a chunk extension, until CR.
    Extension,
    /// After the CR of the size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data, expecting CR.
    DataCr,
    /// Expecting LF after the data's CR.
    DataLf,
    /// Inside the trailer section (ends with an empty line).
    Trailer,
}

#[derive(Debug)]
pub(super) enum Chunk<'a> {
    Data(&'a [u8]),
    End(Option<HeaderMap>),
    NeedMore,
}

#[derive(Debug)]
pub(super) struct ChunkedDecoder {
    state: ChunkedState,
    size: u64,
    digits: u8,
    ext_len: usize,
    total: u64,
    limits: Limits,
    trailer: Vec<u8>,
    trailer_line_start: usize,
}

impl ChunkedDecoder {
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            state: ChunkedState::Size,
            size: 0,
            digits: 0,
            ext_len: 0,
            total: 0,
            limits,
            trailer: Vec::new(),
            trailer_line_start: 0,
        }
    }

    /// Consumes framing bytes until data, the end, or the end of `input`.
    pub(super) fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Chunk<'a>), ParseError> {
        use ChunkedState::*;
        let mut i = 0;
        while i < input.len() {
            if self.state == Data {
                let n = (self.size).min((input.len() - i) as u64) as usize;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = DataCr;
                }
                return Ok((i + n, Chunk::Data(&input[i..i + n])));
            }
            let b = input[i];
            i += 1;
            match self.state {
                Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.digits += 1;
                        if self.digits > 16 {
                            return Err(ParseError::ChunkSize);
                        }
                        self.size =
                            self.size.checked_mul(16).and_then(|s| s.checked_add(d)).ok_or(ParseError::ChunkSize)?;
                    }
                    _ if self.digits == 0 => return Err(ParseError::ChunkSize),
                    b' ' | b'\t' => self.state = SizeWs,
                    b';' => self.state = Extension,
                    b'\r' => self.state = SizeLf,
                    _ => return Err(ParseError::ChunkSize),
                },
                SizeWs => match b {
                    b' ' | b'\t' => {}
                    b';' => self.state = Extension,
                    b'\r' => self.state = SizeLf,
                    _ => return Err(ParseError::ChunkSize),
                },
                Extension => match b {
                    b'\r' => self.state = SizeLf,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => {
                        self.ext_len += 1;
                        if self.ext_len > self.limits.max_line {
                            return Err(ParseError::ChunkExtensionsTooLarge);
                        }
                    }
                    _ => return Err(ParseError::ChunkFraming),
                },
                SizeLf => {
                    if b != b'\n' {
                        return Err(ParseError::ChunkFraming);
                    }
                    self.ext_len = 0;
                    self.digits = 0;
                    if self.size == 0 {
                        self.state = Trailer;
                    } else {
                        self.total = self
                            .total
                            .checked_add(self.size)
                            .filter(|t| *t <= self.limits.max_body)
                            .ok_or(ParseError::BodyTooLarge)?;
                        self.state = Data;
                    }
                }
                Data => {}
                DataCr => {
                    if b != b'\r' {
                        return Err(ParseError::ChunkFraming);
                    }
                    self.state = DataLf;
                }
                DataLf => {
                    if b != b'\n' {
                        return Err(ParseError::ChunkFraming);
                    }
                    self.state = Size;
                }
                Trailer => {
                    self.trailer.push(b);
                    if self.trailer.len() > self.limits.max_header_bytes {
                        return Err(ParseError::TrailersTooLarge);
                    }
                    if b == b'\n' {
                        let line = &self.trailer[self.trailer_line_start..];
                        if line == b"\r\n" {
                            let trailers = self.parse_trailers()?;
                            return Ok((i, Chunk::End(trailers)));
                        }
                        if line.len() > self.limits.max_line {
                            return Err(ParseError::TrailersTooLarge);
                        }
                        self.trailer_line_start = self.trailer.len();
                    }
                }
            }
        }
        Ok((i, Chunk::NeedMore))
    }

    fn parse_trailers(&mut self) -> Result<Option<HeaderMap>, ParseError> {
        if self.trailer.len() == 2 {
            return Ok(None);
        }
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let parsed = match httparse::parse_headers(&self.trailer, &mut slots) {
            Ok(httparse::Status::Complete((_, h))) => h,
            Ok(httparse::Status::Partial) => return Err(ParseError::Trailer),
            Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TrailersTooLarge),
            Err(_) => return Err(ParseError::Trailer),
        };
        let mut map = HeaderMap::with_capacity(parsed.len());
        for h in parsed {
            if FORBIDDEN_TRAILERS.iter().any(|f| h.name.eq_ignore_ascii_case(f)) {
                return Err(ParseError::Trailer);
            }
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| ParseError::Trailer)?;
            let value = HeaderValue::from_bytes(h.value).map_err(|_| ParseError::Trailer)?;
            map.append(name, value);
        }
        Ok(Some(map))
    }
}
