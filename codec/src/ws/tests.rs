#![allow(clippy::unwrap_used, clippy::panic)]

use proptest::prelude::*;

use super::*;
use crate::h1::{Limits, RequestDecoder, RequestEvent};

/// A client frame: masked with `key`.
fn client_frame(op: u8, fin: bool, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | op];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let mut p = payload.to_vec();
    apply_mask(&mut p, key, 0);
    out.extend_from_slice(&p);
    out
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Feeds pieces as the reactor would; stops at the first error.
fn feed(dec: &mut FrameDecoder, pieces: &[&[u8]]) -> Vec<Result<WsEvent, ProtocolError>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for p in pieces {
        buf.extend_from_slice(p);
        loop {
            match dec.decode(&buf) {
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
                Ok((0, None)) => break,
                Ok((n, ev)) => {
                    buf.drain(..n);
                    if let Some(ev) = ev {
                        out.push(Ok(ev));
                    }
                }
            }
        }
    }
    out
}

fn run(input: &[u8]) -> Vec<Result<WsEvent, ProtocolError>> {
    let whole = feed(&mut FrameDecoder::new(1 << 20), &[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(feed(&mut FrameDecoder::new(1 << 20), &bytes), whole, "byte at a time");
    for i in 0..input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(feed(&mut FrameDecoder::new(1 << 20), &[a, b]), whole, "split at {i}");
    }
    whole
}

fn err(input: &[u8]) -> ProtocolError {
    match run(input).pop() {
        Some(Err(e)) => e,
        other => panic!("expected error, got {other:?}"),
    }
}

#[test]
fn rfc6455_5_7_examples() {
    // A single-frame masked text message ("Hello").
    let masked = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(run(&masked), vec![Ok(WsEvent::Text("Hello".into()))]);
    // The same unmasked, as a server sends it.
    let mut out = Vec::new();
    encode_frame(OpCode::Text, true, b"Hello", &mut out);
    assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    // ... which a server must refuse from a client.
    assert_eq!(err(&out), ProtocolError::UnmaskedFrame);
    // A fragmented unmasked text message, as a server sends it.
    let mut out = Vec::new();
    encode_frame(OpCode::Text, false, b"Hel", &mut out);
    encode_frame(OpCode::Continuation, true, b"lo", &mut out);
    assert_eq!(out, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
    // Unmasked ping, masked pong.
    let mut out = Vec::new();
    encode_frame(OpCode::Ping, true, b"Hello", &mut out);
    assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(run(&pong), vec![Ok(WsEvent::Pong(b"Hello".to_vec()))]);
    // 256 bytes and 64 KiB binary messages: length encodings.
    let mut out = Vec::new();
    encode_frame(OpCode::Binary, true, &[0u8; 256], &mut out);
    assert_eq!(&out[..4], &[0x82, 0x7e, 0x01, 0x00]);
    let mut out = Vec::new();
    encode_frame(OpCode::Binary, true, &vec![0u8; 65536], &mut out);
    assert_eq!(&out[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn fragmented_message_with_interleaved_control_frames() {
    let mut input = client_frame(0x1, false, b"Hel", KEY);
    input.extend(client_frame(0x9, true, b"p", KEY));
    input.extend(client_frame(0x0, false, b"l", KEY));
    input.extend(client_frame(0xA, true, b"", KEY));
    input.extend(client_frame(0x0, true, b"o", KEY));
    assert_eq!(
        run(&input),
        vec![Ok(WsEvent::Ping(b"p".to_vec())), Ok(WsEvent::Pong(vec![])), Ok(WsEvent::Text("Hello".into()))]
    );
}

#[test]
fn large_lengths_decode() {
    let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let input = client_frame(0x2, true, &payload, KEY);
    let got = feed(&mut FrameDecoder::new(1 << 20), &[&input]);
    assert_eq!(got, vec![Ok(WsEvent::Binary(payload.clone()))]);
    let pieces: Vec<&[u8]> = input.chunks(997).collect();
    assert_eq!(feed(&mut FrameDecoder::new(1 << 20), &pieces), got);
}

#[test]
fn protocol_errors() {
    assert_eq!(err(&[0xC1, 0x80, 1, 2, 3, 4]), ProtocolError::ReservedBits);
    assert_eq!(err(&[0x83, 0x80, 1, 2, 3, 4]), ProtocolError::ReservedOpcode);
    assert_eq!(err(&[0x8B, 0x80, 1, 2, 3, 4]), ProtocolError::ReservedOpcode);
    assert_eq!(err(&client_frame(0x9, false, b"x", KEY)), ProtocolError::InvalidControlFrame);
    assert_eq!(err(&client_frame(0x9, true, &[0; 126], KEY)), ProtocolError::InvalidControlFrame);
    assert_eq!(err(&client_frame(0x0, true, b"x", KEY)), ProtocolError::UnexpectedContinuation);
    let mut two = client_frame(0x1, false, b"a", KEY);
    two.extend(client_frame(0x1, true, b"b", KEY));
    assert_eq!(err(&two), ProtocolError::ExpectedContinuation);
    assert_eq!(err(&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]), ProtocolError::InvalidLength);
    assert_eq!(err(&[0x82, 0xFE, 0, 5, 1, 2, 3, 4]), ProtocolError::InvalidLength, "non-minimal 16-bit length");
    assert_eq!(err(&[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4]), ProtocolError::InvalidLength);
    assert_eq!(err(&client_frame(0x8, true, &[3], KEY)), ProtocolError::InvalidClosePayload);
    for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_eq!(err(&client_frame(0x8, true, &bad.to_be_bytes(), KEY)), ProtocolError::InvalidCloseCode, "{bad}");
    }
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(&[0xff, 0xfe]);
    assert_eq!(err(&client_frame(0x8, true, &close, KEY)), ProtocolError::InvalidUtf8);
    assert_eq!(ProtocolError::InvalidUtf8.close_code(), 1007);
    assert_eq!(ProtocolError::MessageTooBig.close_code(), 1009);
    assert_eq!(ProtocolError::ReservedBits.close_code(), 1002);
}

#[test]
fn close_codes() {
    for ok in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
        let mut p = ok.to_be_bytes().to_vec();
        p.extend_from_slice("bye ✓".as_bytes());
        assert_eq!(
            run(&client_frame(0x8, true, &p, KEY)),
            vec![Ok(WsEvent::Close(Some(CloseFrame { code: ok, reason: "bye ✓".into() })))]
        );
    }
    assert_eq!(run(&client_frame(0x8, true, b"", KEY)), vec![Ok(WsEvent::Close(None))]);
    let mut out = Vec::new();
    encode_close(4000, "bye", &mut out);
    assert_eq!(out, [0x88, 5, 0x0f, 0xa0, b'b', b'y', b'e']);
}

#[test]
fn utf8_is_validated_incrementally_and_fails_fast() {
    // Invalid byte in the first fragment of a message that never finishes: fail at once.
    let first = client_frame(0x1, false, &[b'a', 0xff], KEY);
    assert_eq!(feed(&mut FrameDecoder::new(100), &[&first]), vec![Err(ProtocolError::InvalidUtf8)]);
    // A code point split across fragments is fine.
    let snow = "☃".as_bytes();
    let mut input = client_frame(0x1, false, &snow[..1], KEY);
    input.extend(client_frame(0x0, false, &snow[1..2], KEY));
    input.extend(client_frame(0x0, true, &snow[2..], KEY));
    assert_eq!(run(&input), vec![Ok(WsEvent::Text("☃".into()))]);
    // An incomplete sequence at the end of the message is invalid.
    assert_eq!(err(&client_frame(0x1, true, &snow[..2], KEY)), ProtocolError::InvalidUtf8);
    // Beyond U+10FFFF is caught at the second byte.
    let bad = client_frame(0x1, false, &[0xf4, 0x90], KEY);
    assert_eq!(feed(&mut FrameDecoder::new(100), &[&bad]), vec![Err(ProtocolError::InvalidUtf8)]);
}

#[test]
fn message_size_limit_counts_all_fragments() {
    let mut input = client_frame(0x2, false, &[1; 60], KEY);
    input.extend(client_frame(0x0, true, &[1; 50], KEY));
    assert_eq!(feed(&mut FrameDecoder::new(100), &[&input]), vec![Err(ProtocolError::MessageTooBig)]);
    // A single frame header announcing too much fails before any payload arrives.
    let input = [0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4];
    assert_eq!(feed(&mut FrameDecoder::new(100), &[&input]), vec![Err(ProtocolError::MessageTooBig)]);
    // Control frames are exempt.
    assert_eq!(feed(&mut FrameDecoder::new(10), &[&client_frame(0x9, true, &[0; 100], KEY)]).len(), 1);
}

#[test]
fn encode_message_fragments() {
    let mut out = Vec::new();
    encode_message(OpCode::Text, b"abcdefg", 3, &mut out);
    assert_eq!(out, [0x01, 3, b'a', b'b', b'c', 0x00, 3, b'd', b'e', b'f', 0x80, 1, b'g']);
}

fn head(raw: &[u8]) -> crate::h1::RequestHead {
    let mut d = RequestDecoder::new(Limits::default());
    match d.decode(raw).unwrap().1 {
        Some(RequestEvent::Head(h)) => h,
        other => panic!("{other:?}"),
    }
}

const GOOD: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn handshake_rfc_example() {
    assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let h = head(GOOD);
    assert_eq!(check_handshake(&h).unwrap().accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(requested_protocols(h.headers()), ["chat", "superchat"]);
    let mut out = Vec::new();
    encode_handshake_response(
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        Some("chat"),
        None,
        &http::HeaderMap::new(),
        b"D",
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nsec-websocket-protocol: chat\r\ndate: D\r\n\r\n"
    );
}

#[test]
fn handshake_rejections() {
    let swap = |from: &str, to: &str| head(String::from_utf8_lossy(GOOD).replace(from, to).as_bytes());
    assert_eq!(check_handshake(&swap("GET /chat", "POST /chat")), Err(HandshakeError::Method));
    assert_eq!(check_handshake(&swap("Upgrade: websocket", "Upgrade: h2c")), Err(HandshakeError::Upgrade));
    assert_eq!(check_handshake(&swap("keep-alive, Upgrade", "keep-alive")), Err(HandshakeError::Connection));
    let v = swap("Version: 13", "Version: 8");
    assert_eq!(check_handshake(&v), Err(HandshakeError::Version));
    assert_eq!(HandshakeError::Version.status(), 426);
    assert_eq!(check_handshake(&swap("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==")), Err(HandshakeError::Key));
    assert_eq!(check_handshake(&swap("dGhlIHNhbXBsZSBub25jZQ==", "!!!")), Err(HandshakeError::Key));
    assert_eq!(HandshakeError::Key.status(), 400);
    let h10 = head(&String::from_utf8_lossy(GOOD).replace("HTTP/1.1", "HTTP/1.0").into_bytes());
    assert_eq!(check_handshake(&h10), Err(HandshakeError::HttpVersion));
}

fn arb_frames() -> impl Strategy<Value = Vec<(u8, bool, Vec<u8>)>> {
    // Well-formed sequences: messages of 1–3 fragments with pings/pongs in between.
    proptest::collection::vec(
        (any::<bool>(), proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..4), any::<bool>()),
        1..5,
    )
    .prop_map(|msgs| {
        let mut frames = Vec::new();
        for (text, parts, ping) in msgs {
            let n = parts.len();
            for (i, mut p) in parts.into_iter().enumerate() {
                if text {
                    p = String::from_utf8_lossy(&p).into_owned().into_bytes();
                }
                let op = if i == 0 {
                    if text {
                        0x1
                    } else {
                        0x2
                    }
                } else {
                    0x0
                };
                frames.push((op, i + 1 == n, p));
                if ping && i + 1 < n {
                    frames.push((0x9, true, b"ping".to_vec()));
                }
            }
        }
        frames
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn frames_split_anywhere_decode_the_same(frames in arb_frames(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10), key in any::<[u8; 4]>()) {
        let mut input = Vec::new();
        for (op, fin, p) in &frames {
            input.extend(client_frame(*op, *fin, p, key));
        }
        let whole = feed(&mut FrameDecoder::new(1 << 20), &[&input]);
        prop_assert!(whole.iter().all(Result::is_ok));
        let pieces = crate::test_util::cut_at(&input, &cuts);
        prop_assert_eq!(feed(&mut FrameDecoder::new(1 << 20), &pieces), whole);
    }

    #[test]
    fn encode_then_decode_is_identity(payload in proptest::collection::vec(any::<u8>(), 0..70_000), frag in 0usize..5000) {
        // Server encoder output, masked as a client would send it, decodes to the same message.
        let mut enc = Vec::new();
        encode_message(OpCode::Binary, &payload, frag, &mut enc);
        let mut input = Vec::new();
        let mut rest = &enc[..];
        while !rest.is_empty() {
            let b0 = rest[0];
            let (len, hl) = match rest[1] & 0x7f {
                126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
                127 => (u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize, 10),
                l => (l as usize, 2),
            };
            input.extend(client_frame(b0 & 0x0f, b0 & 0x80 != 0, &rest[hl..hl + len], [9, 8, 7, 6]));
            rest = &rest[hl + len..];
        }
        prop_assert_eq!(feed(&mut FrameDecoder::new(1 << 20), &[&input]), vec![Ok(WsEvent::Binary(payload))]);
    }

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..500)) {
        let _ = feed(&mut FrameDecoder::new(1000), &[&input]);
        let pieces: Vec<&[u8]> = input.chunks(3).collect();
        let _ = feed(&mut FrameDecoder::new(1000), &pieces);
    }
}

fn deflate_params(offer: &str) -> DeflateParams {
    let mut h = http::HeaderMap::new();
    h.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, offer.parse().unwrap());
    negotiate_deflate(&h, &DeflateConfig::default()).unwrap()
}

/// Client frames of messages compressed as a client would (context kept across them),
/// the first cut into three fragments with a ping between, RSV1 on its first frame only.
fn compressed_frames(msgs: &[&[u8]], params: &DeflateParams) -> Vec<u8> {
    // The server's compressor is a valid client compressor too (same format, context kept).
    let mut client = *params;
    client.server_no_context_takeover = params.client_no_context_takeover;
    let mut d = Deflater::new(&client, 6);
    let mut input = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let mut wire = Vec::new();
        d.compress(m, &mut wire);
        if i == 0 && wire.len() >= 3 {
            let third = wire.len() / 3;
            input.extend(client_frame(0x41, false, &wire[..third], KEY));
            input.extend(client_frame(0x9, true, b"p", KEY));
            input.extend(client_frame(0x0, false, &wire[third..2 * third], KEY));
            input.extend(client_frame(0x0, true, &wire[2 * third..], KEY));
        } else {
            input.extend(client_frame(0x42, true, &wire, KEY));
        }
    }
    input
}

#[test]
fn compressed_messages_inflate_with_context_kept() {
    let params = deflate_params("permessage-deflate");
    let a = "héllo wörld, ".repeat(50);
    let b = "héllo wörld, again ".repeat(30);
    let input = compressed_frames(&[a.as_bytes(), b.as_bytes()], &params);
    let got = feed(&mut FrameDecoder::with_deflate(1 << 20, Some(&params)), &[&input]);
    assert_eq!(got, vec![Ok(WsEvent::Ping(b"p".to_vec())), Ok(WsEvent::Text(a)), Ok(WsEvent::Binary(b.into_bytes()))]);
}

#[test]
fn rsv1_is_refused_where_deflate_does_not_allow_it() {
    let params = deflate_params("permessage-deflate; client_no_context_takeover");
    let with = |input: &[u8]| feed(&mut FrameDecoder::with_deflate(1 << 20, Some(&params)), &[input]);
    // RSV1 without the extension.
    assert_eq!(
        feed(&mut FrameDecoder::new(1 << 20), &[&client_frame(0x41, true, b"x", KEY)]),
        vec![Err(ProtocolError::ReservedBits)]
    );
    // RSV1 on a control frame, on a continuation; RSV2 and RSV3 stay reserved.
    assert_eq!(with(&client_frame(0x49, true, b"", KEY)), vec![Err(ProtocolError::ReservedBits)]);
    let mut cont = client_frame(0x01, false, b"a", KEY);
    cont.extend(client_frame(0x40, true, b"b", KEY));
    assert_eq!(with(&cont), vec![Err(ProtocolError::ReservedBits)]);
    assert_eq!(with(&client_frame(0x21, true, b"x", KEY)), vec![Err(ProtocolError::ReservedBits)]);
    // Compressed text that inflates to invalid UTF-8; garbage that does not inflate.
    let mut wire = Vec::new();
    Deflater::new(&params, 6).compress(&[0xff, 0xfe, 0x80], &mut wire);
    assert_eq!(with(&client_frame(0x41, true, &wire, KEY)), vec![Err(ProtocolError::InvalidUtf8)]);
    assert_eq!(with(&client_frame(0x42, true, &[0xff; 20], KEY)), vec![Err(ProtocolError::BadCompressedData)]);
    // Uncompressed messages still pass beside compressed ones.
    assert_eq!(with(&client_frame(0x81, true, b"plain", KEY)), vec![Ok(WsEvent::Text("plain".into()))]);
}

#[test]
fn inflated_size_counts_against_the_limit() {
    let params = deflate_params("permessage-deflate; client_no_context_takeover");
    let mut wire = Vec::new();
    Deflater::new(&params, 9).compress(&vec![b'a'; 1 << 20], &mut wire);
    let input = client_frame(0x42, true, &wire, KEY);
    assert_eq!(
        feed(&mut FrameDecoder::with_deflate(64 << 10, Some(&params)), &[&input]),
        vec![Err(ProtocolError::MessageTooBig)]
    );
    assert_eq!(ProtocolError::MessageTooBig.close_code(), 1009);
}

proptest! {
    #[test]
    fn compressed_frames_split_anywhere_decode_the_same(
        texts in proptest::collection::vec("[a-cé ]{0,300}", 1..4),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        nct in any::<bool>(),
    ) {
        let params = deflate_params(if nct { "permessage-deflate; client_no_context_takeover" } else { "permessage-deflate" });
        let msgs: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        let input = compressed_frames(&msgs, &params);
        let whole = feed(&mut FrameDecoder::with_deflate(1 << 20, Some(&params)), &[&input]);
        prop_assert!(whole.iter().all(Result::is_ok), "{:?}", whole);
        let pieces = crate::test_util::cut_at(&input, &cuts);
        prop_assert_eq!(feed(&mut FrameDecoder::with_deflate(1 << 20, Some(&params)), &pieces), whole);
    }
}
