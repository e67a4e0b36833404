//! The opening handshake, server side (RFC 6455 §4.2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{header, HeaderMap, Method, Version};
use sha1::{Digest, Sha1};

use super::HandshakeError;
use crate::h1::RequestHead;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
///
/// ```
/// assert_eq!(httpkit_codec::ws::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    STANDARD.encode(h.finalize())
}

/// A valid handshake request, ready to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The `Sec-WebSocket-Accept` value to answer with.
    pub accept: String,
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| v.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
}

/// Validates an upgrade request: GET, HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`,
/// `Sec-WebSocket-Version: 13`, and a `Sec-WebSocket-Key` that is base64 of 16 bytes.
///
/// # Errors
/// The first rule broken, naming the status to answer (400, or 426 for the version).
pub fn check_handshake(head: &RequestHead) -> Result<Handshake, HandshakeError> {
    if head.method != Method::GET {
        return Err(HandshakeError::Method);
    }
    if head.version != Version::HTTP_11 {
        return Err(HandshakeError::HttpVersion);
    }
    if !has_token(head.headers(), header::UPGRADE, "websocket") {
        return Err(HandshakeError::Upgrade);
    }
    if !has_token(head.headers(), header::CONNECTION, "upgrade") {
        return Err(HandshakeError::Connection);
    }
    let versions: Vec<_> = head.headers().get_all(header::SEC_WEBSOCKET_VERSION).iter().collect();
    if versions.len() != 1 || versions[0].as_bytes().trim_ascii() != b"13" {
        return Err(HandshakeError::Version);
    }
    let mut keys = head.headers().get_all(header::SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::Key);
    };
    let key = key.as_bytes().trim_ascii();
    match STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(Handshake { accept: accept_key(key) }),
        _ => Err(HandshakeError::Key),
    }
}

/// The subprotocols the client offers in `Sec-WebSocket-Protocol`, in its order of preference.
pub fn requested_protocols(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Writes the `101 Switching Protocols` response, with `protocol` as `Sec-WebSocket-Protocol` and
/// `extensions` as `Sec-WebSocket-Extensions` if given, and `extra` headers (e.g. `Set-Cookie`),
/// into `dst`. Values with CR/LF are skipped, and so is an `extra` extensions header (only
/// what the server negotiated may be claimed).
pub fn encode_handshake_response(
    accept: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
    extra: &HeaderMap,
    date: &[u8],
    dst: &mut Vec<u8>,
) {
    dst.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ",
    );
    dst.extend_from_slice(accept.as_bytes());
    dst.extend_from_slice(b"\r\n");
    if let Some(p) = protocol {
        if !p.bytes().any(|b| b == b'\r' || b == b'\n') {
            dst.extend_from_slice(b"sec-websocket-protocol: ");
            dst.extend_from_slice(p.as_bytes());
            dst.extend_from_slice(b"\r\n");
        }
    }
    if let Some(e) = extensions {
        if !e.bytes().any(|b| b == b'\r' || b == b'\n') {
            dst.extend_from_slice(b"sec-websocket-extensions: ");
            dst.extend_from_slice(e.as_bytes());
            dst.extend_from_slice(b"\r\n");
        }
    }
    for (name, value) in extra {
        let skip = [
            header::SEC_WEBSOCKET_EXTENSIONS,
            header::UPGRADE,
            header::CONNECTION,
            header::SEC_WEBSOCKET_ACCEPT,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ];
        if skip.contains(name) || value.as_bytes().iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
            continue;
        }
        dst.extend_from_slice(name.as_str().as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"date: ");
    dst.extend_from_slice(date);
    dst.extend_from_slice(b"\r\n\r\n");
}
