//! Server frames (RFC 6455 §5.2): never masked, minimal length encoding.

/// Frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continuation,
    /// A text message (UTF-8).
    Text,
    /// A binary message.
    Binary,
    /// Close.
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

impl OpCode {
    pub(crate) fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    pub(crate) fn from_bits(b: u8) -> Option<Self> {
        Some(match b {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// Whether this is a control opcode (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// Appends one frame. Control payloads longer than 125 bytes are truncated to 125 (the
/// protocol forbids more).
pub fn encode_frame(op: OpCode, fin: bool, payload: &[u8], dst: &mut Vec<u8>) {
    let payload = if op.is_control() { &payload[..payload.len().min(125)] } else { payload };
    dst.reserve(payload.len() + 10);
    encode_frame_head(op, fin, payload.len(), dst);
    dst.extend_from_slice(payload);
}

/// Appends only the header of a server frame whose payload of `len` bytes is sent separately
/// (so a large payload need not be copied next to its header).
pub fn encode_frame_head(op: OpCode, fin: bool, len: usize, dst: &mut Vec<u8>) {
    encode_head(op, fin, false, len, dst);
}

/// Like [`encode_frame_head`] with RSV1 set: the first frame of a message compressed with
/// permessage-deflate.
pub fn encode_frame_head_rsv1(op: OpCode, fin: bool, len: usize, dst: &mut Vec<u8>) {
    encode_head(op, fin, true, len, dst);
}

fn encode_head(op: OpCode, fin: bool, rsv1: bool, len: usize, dst: &mut Vec<u8>) {
    dst.push(if fin { 0x80 } else { 0 } | if rsv1 { 0x40 } else { 0 } | op.bits());
    if len < 126 {
        dst.push(len as u8);
    } else if len <= 0xffff {
        dst.push(126);
        dst.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        dst.push(127);
        dst.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends a whole message, fragmented into frames of at most `max_frame` payload bytes
/// (`0` = one frame).
pub fn encode_message(op: OpCode, payload: &[u8], max_frame: usize, dst: &mut Vec<u8>) {
    if max_frame == 0 || payload.len() <= max_frame {
        return encode_frame(op, true, payload, dst);
    }
    let mut chunks = payload.chunks(max_frame).peekable();
    let mut first = true;
    while let Some(c) = chunks.next() {
        let fin = chunks.peek().is_none();
        encode_frame(if first { op } else { OpCode::Continuation }, fin, c, dst);
        first = false;
    }
}

/// Appends a close frame with `code` and `reason` (cut to 123 bytes on a character boundary).
pub fn encode_close(code: u16, reason: &str, dst: &mut Vec<u8>) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut p = Vec::with_capacity(2 + end);
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(&reason.as_bytes()[..end]);
    encode_frame(OpCode::Close, true, &p, dst);
}
