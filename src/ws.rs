//! The WebSocket core under both APIs (the channel API and the Ring-style listener): the
//! message type, the one rule for what a message becomes on the wire, the one builder of the
//! close frames the application asks for, and the one "buffer full" error.

use std::fmt;
use std::io::{self, Read};

use bytes::Bytes;
use httpkit_codec::ws::{encode_close, CloseCode, OpCode};
use httpkit_reactor::WsClose;

use crate::response::{Body, BodyKind};
use crate::Response;

/// A message sent or received on a channel.
#[derive(Debug)]
#[non_exhaustive]
pub enum Message {
    /// Text (a WebSocket text frame).
    Text(String),
    /// Bytes (a WebSocket binary frame).
    Binary(Bytes),
    /// A full response (HTTP channels: status, headers, body; WebSocket: its body is sent).
    /// A file, reader or stream body is read whole (at most [`MAX_WHOLE_BODY`] bytes) when the
    /// message becomes one WebSocket frame or one chunk of a streamed HTTP response; as a
    /// channel's whole HTTP answer (the first send, with close) it is streamed with bounded
    /// memory, whatever its size.
    Response(Box<Response>),
}

impl Message {
    /// The message as text (binary data converted lossily, a response's in-memory body).
    pub fn to_text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            Self::Response(r) => String::from_utf8_lossy(r.body.as_bytes().unwrap_or(&[])).into_owned(),
        }
    }

    /// The message's bytes (text as UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(s) => s.as_bytes(),
            Self::Binary(b) => b,
            Self::Response(r) => r.body.as_bytes().unwrap_or(&[]),
        }
    }

    /// Whether it is text.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}
impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}
impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b.into())
    }
}
impl From<&[u8]> for Message {
    fn from(b: &[u8]) -> Self {
        Self::Binary(Bytes::copy_from_slice(b))
    }
}
impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}
impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Self::Response(Box::new(r))
    }
}

/// Why a send failed; the message comes back (unless its body could not be read).
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The channel is closed.
    Closed(T),
    /// The connection's write buffer is over its limit ([`Options::write_buffer`](crate::Options::write_buffer)):
    /// the client is not reading fast enough. Try again later or drop the message.
    Full(T),
    /// The message's body (a file, reader or stream) failed while it was read; nothing was sent.
    Body(io::Error),
}

impl<T: fmt::Debug> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str("channel closed"),
            Self::Full(_) => f.write_str("channel write buffer full"),
            Self::Body(e) => write!(f, "message body could not be read: {e}"),
        }
    }
}

/// The largest file, reader or stream body read whole into one message (see [`Message`]).
pub const MAX_WHOLE_BODY: usize = 64 << 20;

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "message body over 64 MiB (MAX_WHOLE_BODY)")
}

/// A message whose body is a file, reader or stream, read whole: a message goes out as one
/// WebSocket frame or one HTTP chunk. (A channel's first HTTP send with close keeps its body as
/// it is: that is a whole response, streamed with bounded memory.)
pub(crate) fn read_body_whole(msg: Message) -> io::Result<Message> {
    let Message::Response(mut r) = msg else {
        return Ok(msg);
    };
    if r.takeover.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a channel or WebSocket response cannot be sent as a message",
        ));
    }
    let kind = std::mem::replace(&mut r.body.kind, BodyKind::Empty);
    let bytes = match kind {
        BodyKind::Empty | BodyKind::Bytes(_) => {
            r.body.kind = kind;
            return Ok(Message::Response(r));
        }
        BodyKind::File(f, len) => {
            if len > MAX_WHOLE_BODY as u64 {
                return Err(too_large());
            }
            let mut v = Vec::with_capacity(len as usize);
            f.take(len).read_to_end(&mut v)?;
            if v.len() as u64 != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than when it was opened",
                ));
            }
            v
        }
        BodyKind::Reader(rd) => {
            let mut v = Vec::new();
            rd.take(MAX_WHOLE_BODY as u64 + 1).read_to_end(&mut v)?;
            if v.len() > MAX_WHOLE_BODY {
                return Err(too_large());
            }
            v
        }
        BodyKind::Stream(chunks) => {
            let mut v = Vec::new();
            for c in chunks {
                v.extend_from_slice(&c?);
                if v.len() > MAX_WHOLE_BODY {
                    return Err(too_large());
                }
            }
            v
        }
    };
    r.body = Body::from(bytes);
    Ok(Message::Response(r))
}

impl<T: fmt::Debug> std::error::Error for SendError<T> {}

impl<T> From<SendError<T>> for io::Error {
    /// `NotConnected` for a closed channel, `WouldBlock` for a full buffer, the body's error.
    fn from(e: SendError<T>) -> io::Error {
        match e {
            SendError::Closed(_) => io::Error::new(io::ErrorKind::NotConnected, "websocket is closed"),
            SendError::Full(_) => {
                io::Error::new(io::ErrorKind::WouldBlock, "websocket write buffer full: the client is slow")
            }
            SendError::Body(e) => e,
        }
    }
}

/// What a message becomes on the wire, in both APIs: one frame's opcode and payload (a
/// `Binary`'s bytes not copied; see [`crate::deflate::send_message`] for the frame). `Text` is a
/// text frame and `Binary` a binary frame. A [`Response`]'s body (read
/// whole first, see [`Message`]) is a text frame when the response says it is text — a
/// `Content-Type` of `text/*`, `application/json`, or with `charset=utf-8` — and the body is
/// valid UTF-8; otherwise a binary frame.
pub(crate) fn message_payload(msg: &Message) -> (OpCode, Payload<'_>) {
    match msg {
        Message::Text(s) => (OpCode::Text, Payload::Str(s)),
        Message::Binary(b) => (OpCode::Binary, Payload::Shared(b.clone())),
        Message::Response(r) => {
            let body = match &r.body.kind {
                BodyKind::Bytes(b) => b.clone(),
                _ => Bytes::new(),
            };
            let text = says_text(r) && std::str::from_utf8(&body).is_ok();
            (if text { OpCode::Text } else { OpCode::Binary }, Payload::Shared(body))
        }
    }
}

/// A message's payload: borrowed text (copied once, into its frame), or shared bytes (not
/// copied when large).
#[derive(Debug)]
pub(crate) enum Payload<'a> {
    Str(&'a str),
    Shared(Bytes),
}

impl Payload<'_> {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Str(s) => s.as_bytes(),
            Self::Shared(b) => b,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// As shared bytes (text is copied).
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Self::Str(s) => Bytes::copy_from_slice(s.as_bytes()),
            Self::Shared(b) => b,
        }
    }
}

fn says_text(r: &Response) -> bool {
    let Some(ct) = r.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ct = ct.to_ascii_lowercase().replace(['"', ' '], "");
    ct.starts_with("text/") || ct.starts_with("application/json") || ct.contains("charset=utf-8")
}

/// Why a close the application asked for cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseError {
    /// The code may not be sent (only 1000–1003, 1007–1014 and 3000–4999 may).
    InvalidCode(u16),
    /// The reason is longer than the 123 bytes a close frame holds.
    ReasonTooLong(usize),
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidCode(c) => write!(f, "invalid close code {c}"),
            Self::ReasonTooLong(n) => write!(f, "close reason of {n} bytes (at most 123)"),
        }
    }
}

impl std::error::Error for CloseError {}

impl From<CloseError> for io::Error {
    fn from(e: CloseError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
    }
}

/// The close frame the application asks for (both APIs): checked, then encoded, with what the
/// reactor reports in `on_close`.
pub(crate) fn close_frame(code: u16, reason: &str) -> Result<(Bytes, WsClose), CloseError> {
    if !CloseCode(code).is_sendable() {
        return Err(CloseError::InvalidCode(code));
    }
    if reason.len() > 123 {
        return Err(CloseError::ReasonTooLong(reason.len()));
    }
    let mut out = Vec::with_capacity(4 + reason.len());
    encode_close(code, reason, &mut out);
    Ok((Bytes::from(out), WsClose { code, reason: reason.to_owned(), by_peer: false }))
}

/// A close frame the server chooses itself (a fault, a stop): a named code, a short reason.
pub(crate) fn server_close_frame(code: CloseCode, reason: &'static str) -> (Bytes, WsClose) {
    let mut out = Vec::with_capacity(4 + reason.len());
    encode_close(code.as_u16(), reason, &mut out);
    (Bytes::from(out), WsClose { code: code.as_u16(), reason: reason.to_owned(), by_peer: false })
}
