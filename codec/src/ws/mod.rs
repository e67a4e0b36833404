//! WebSocket (RFC 6455): the opening handshake (§4.2), the frame decoder (§5, server role:
//! masked frames in) with message assembly and incremental UTF-8 validation (§5.4, §8.1), close
//! codes (§7.4), the frame encoder (server frames, never masked), and permessage-deflate
//! (RFC 7692).

mod close;
mod decoder;
mod deflate;
mod encoder;
mod error;
mod handshake;
mod mask;

pub use close::{is_valid_close_code, CloseCode, CloseFrame};
pub use decoder::{FrameDecoder, WsEvent};
pub use deflate::{compress_shared, negotiate as negotiate_deflate, DeflateConfig, DeflateParams, Deflater};
pub use encoder::{encode_close, encode_frame, encode_frame_head, encode_frame_head_rsv1, encode_message, OpCode};
pub use error::{HandshakeError, ProtocolError};
pub use handshake::{accept_key, check_handshake, encode_handshake_response, requested_protocols, Handshake};
pub use mask::apply_mask;

#[cfg(test)]
mod tests;
