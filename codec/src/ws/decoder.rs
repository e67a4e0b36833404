//! The frame decoder, server role (RFC 6455 §5): masked frames in, whole messages out.
//!
//! Usage: feed the bytes received so far; each call returns how many bytes were consumed and at
//! most one [`WsEvent`]. `Ok((0, None))` means "need more bytes". After an error or a
//! [`WsEvent::Close`], stop feeding.
//!
//! Glossary: a *frame* is one header + payload on the wire; a *message* is one text or binary
//! frame, or a first frame plus continuation frames up to the one with FIN. Control frames
//! (ping, pong, close) may arrive between the frames of a message and are delivered in place.

use super::close::{is_valid_close_code, CloseFrame};
use super::deflate::{DeflateParams, Inflater};
use super::encoder::OpCode;
use super::mask::apply_mask;
use super::ProtocolError;

/// What the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete text message.
    Text(String),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A ping with its payload.
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// A close frame: `None` when it carried no status code (report as 1005).
    Close(Option<CloseFrame>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Payload,
    Failed,
}

/// Streaming decoder of client frames. See the module docs.
#[derive(Debug)]
pub struct FrameDecoder {
    max_message: usize,
    state: State,
    hdr: [u8; 14],
    hdr_len: usize,
    fin: bool,
    op: OpCode,
    key: [u8; 4],
    remaining: u64,
    offset: usize,
    /// Opcode of the data message being assembled (Text or Binary), if any.
    msg_op: Option<OpCode>,
    msg: Vec<u8>,
    utf8_checked: usize,
    ctrl: Vec<u8>,
    /// permessage-deflate, when agreed: RSV1 on a message's first frame means compressed.
    inflate: Option<Box<Inflater>>,
    /// The message being assembled is compressed (checked for UTF-8 once inflated).
    compressed: bool,
}

impl FrameDecoder {
    /// A decoder rejecting messages larger than `max_message` bytes (1009).
    pub fn new(max_message: usize) -> Self {
        Self::with_deflate(max_message, None)
    }

    /// A decoder that also reads messages compressed with the agreed permessage-deflate
    /// `params`; `max_message` bounds a message once inflated (and on the wire).
    pub fn with_deflate(max_message: usize, params: Option<&DeflateParams>) -> Self {
        Self {
            inflate: params.map(|p| Box::new(Inflater::new(p))),
            compressed: false,
            max_message,
            state: State::Header,
            hdr: [0; 14],
            hdr_len: 0,
            fin: false,
            op: OpCode::Binary,
            key: [0; 4],
            remaining: 0,
            offset: 0,
            msg_op: None,
            msg: Vec::new(),
            utf8_checked: 0,
            ctrl: Vec::new(),
        }
    }

    /// Whether a fragmented message is partly received, or a frame is half read.
    pub fn is_mid_message(&self) -> bool {
        self.msg_op.is_some() || self.hdr_len > 0 || self.state == State::Payload
    }

    /// Bytes held for the message being assembled.
    pub fn buffered(&self) -> usize {
        self.msg.len()
    }

    /// Decodes from `input`. See the module docs.
    ///
    /// # Errors
    /// A [`ProtocolError`] naming the close code to send; the decoder then stays failed.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<WsEvent>), ProtocolError> {
        let res = self.decode_inner(input);
        if res.is_err() {
            self.state = State::Failed;
        }
        res
    }

    fn header_needed(&self) -> usize {
        if self.hdr_len < 2 {
            return 2;
        }
        let ext = match self.hdr[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.hdr[1] & 0x80 != 0 { 4 } else { 0 }
    }

    fn decode_inner(&mut self, input: &[u8]) -> Result<(usize, Option<WsEvent>), ProtocolError> {
        let mut off = 0;
        loop {
            match self.state {
                State::Failed => return Ok((off, None)),
                State::Header => {
                    loop {
                        let need = self.header_needed();
                        if self.hdr_len >= need {
                            break;
                        }
                        if off == input.len() {
                            return Ok((off, None));
                        }
                        let take = (need - self.hdr_len).min(input.len() - off);
                        self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&input[off..off + take]);
                        self.hdr_len += take;
                        off += take;
                        if self.hdr_len == 2 {
                            self.check_first_two()?;
                        }
                    }
                    self.start_frame()?;
                    if self.remaining == 0 {
                        if let Some(ev) = self.finish_frame()? {
                            return Ok((off, Some(ev)));
                        }
                    }
                }
                State::Payload => {
                    let take = self.remaining.min((input.len() - off) as u64) as usize;
                    if take == 0 {
                        return Ok((off, None));
                    }
                    let chunk = &input[off..off + take];
                    let control = self.op.is_control();
                    let dst = if control { &mut self.ctrl } else { &mut self.msg };
                    let start = dst.len();
                    dst.extend_from_slice(chunk);
                    apply_mask(&mut dst[start..], self.key, self.offset);
                    self.offset += take;
                    self.remaining -= take as u64;
                    off += take;
                    if !control && !self.compressed && self.msg_op == Some(OpCode::Text) {
                        self.check_utf8(false)?;
                    }
                    if self.remaining == 0 {
                        if let Some(ev) = self.finish_frame()? {
                            return Ok((off, Some(ev)));
                        }
                    }
                }
            }
        }
    }

    /// Checks what the first two header bytes alone decide.
    fn check_first_two(&self) -> Result<(), ProtocolError> {
        let (b0, b1) = (self.hdr[0], self.hdr[1]);
        let op = OpCode::from_bits(b0 & 0x0f).ok_or(ProtocolError::ReservedOpcode)?;
        // RSV1 marks a compressed message, on its first frame only (RFC 7692 §6.1).
        let rsv1_ok = self.inflate.is_some() && matches!(op, OpCode::Text | OpCode::Binary);
        if b0 & 0x30 != 0 || (b0 & 0x40 != 0 && !rsv1_ok) {
            return Err(ProtocolError::ReservedBits);
        }
        if op.is_control() && (b0 & 0x80 == 0 || (b1 & 0x7f) > 125) {
            return Err(ProtocolError::InvalidControlFrame);
        }
        if b1 & 0x80 == 0 {
            return Err(ProtocolError::UnmaskedFrame);
        }
        Ok(())
    }

    fn start_frame(&mut self) -> Result<(), ProtocolError> {
        let (b0, b1) = (self.hdr[0], self.hdr[1]);
        self.fin = b0 & 0x80 != 0;
        self.op = OpCode::from_bits(b0 & 0x0f).ok_or(ProtocolError::ReservedOpcode)?;
        let (len, key_at) = match b1 & 0x7f {
            126 => {
                let l = u16::from_be_bytes([self.hdr[2], self.hdr[3]]) as u64;
                if l < 126 {
                    return Err(ProtocolError::InvalidLength);
                }
                (l, 4)
            }
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.hdr[2..10]);
                let l = u64::from_be_bytes(b);
                if l >> 63 != 0 || l < 0x1_0000 {
                    return Err(ProtocolError::InvalidLength);
                }
                (l, 10)
            }
            l => (u64::from(l), 2),
        };
        self.key.copy_from_slice(&self.hdr[key_at..key_at + 4]);
        self.hdr_len = 0;
        self.remaining = len;
        self.offset = 0;
        match self.op {
            OpCode::Continuation if self.msg_op.is_none() => return Err(ProtocolError::UnexpectedContinuation),
            OpCode::Text | OpCode::Binary if self.msg_op.is_some() => return Err(ProtocolError::ExpectedContinuation),
            OpCode::Text | OpCode::Binary => {
                self.msg_op = Some(self.op);
                self.utf8_checked = 0;
                self.compressed = b0 & 0x40 != 0;
            }
            _ => {}
        }
        if self.op.is_control() {
            self.ctrl.clear();
        } else {
            let total = (self.msg.len() as u64).saturating_add(len);
            if total > self.max_message as u64 {
                return Err(ProtocolError::MessageTooBig);
            }
            self.msg.reserve((len as usize).min(1 << 20));
        }
        self.state = State::Payload;
        Ok(())
    }

    fn check_utf8(&mut self, last: bool) -> Result<(), ProtocolError> {
        match std::str::from_utf8(&self.msg[self.utf8_checked..]) {
            Ok(_) => self.utf8_checked = self.msg.len(),
            Err(e) => {
                if e.error_len().is_some() || last {
                    return Err(ProtocolError::InvalidUtf8);
                }
                self.utf8_checked += e.valid_up_to();
            }
        }
        Ok(())
    }

    fn finish_frame(&mut self) -> Result<Option<WsEvent>, ProtocolError> {
        self.state = State::Header;
        match self.op {
            OpCode::Ping => Ok(Some(WsEvent::Ping(std::mem::take(&mut self.ctrl)))),
            OpCode::Pong => Ok(Some(WsEvent::Pong(std::mem::take(&mut self.ctrl)))),
            OpCode::Close => {
                let p = std::mem::take(&mut self.ctrl);
                match p.len() {
                    0 => Ok(Some(WsEvent::Close(None))),
                    1 => Err(ProtocolError::InvalidClosePayload),
                    _ => {
                        let code = u16::from_be_bytes([p[0], p[1]]);
                        if !is_valid_close_code(code) {
                            return Err(ProtocolError::InvalidCloseCode);
                        }
                        let reason = String::from_utf8(p[2..].to_vec()).map_err(|_| ProtocolError::InvalidUtf8)?;
                        Ok(Some(WsEvent::Close(Some(CloseFrame { code, reason }))))
                    }
                }
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !self.fin {
                    return Ok(None);
                }
                let op = self.msg_op.take().unwrap_or(OpCode::Binary);
                let mut data = std::mem::take(&mut self.msg);
                if std::mem::take(&mut self.compressed) {
                    if let Some(inflater) = &mut self.inflate {
                        data = inflater.inflate(&data, self.max_message)?;
                    }
                }
                if op == OpCode::Text {
                    let s = String::from_utf8(data).map_err(|_| ProtocolError::InvalidUtf8)?;
                    Ok(Some(WsEvent::Text(s)))
                } else {
                    Ok(Some(WsEvent::Binary(data)))
                }
            }
        }
    }
}
