#![allow(clippy::unwrap_used, clippy::panic)]

use http::{HeaderMap, Method, StatusCode, Version};
use proptest::prelude::*;

use super::*;
use crate::test_util::{assert_split_invariant, feed, Ev};

fn dec() -> RequestDecoder {
    RequestDecoder::new(Limits::default())
}

fn dec_with(l: Limits) -> impl Fn() -> RequestDecoder {
    move || RequestDecoder::new(l)
}

fn run(input: &[u8]) -> Vec<Ev> {
    assert_split_invariant(&dec, input).0
}

fn head(ev: &Ev) -> &RequestHead {
    match ev {
        Ev::Head(h) => h,
        other => panic!("expected head, got {other:?}"),
    }
}

fn err(input: &[u8]) -> ParseError {
    match run(input).last() {
        Some(Ev::Err(e)) => *e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn simple_get() {
    let evs = run(b"GET /hello?x=1&y HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    assert_eq!(evs.len(), 2);
    let h = head(&evs[0]);
    assert_eq!(h.method, Method::GET);
    assert_eq!(h.path(), "/hello");
    assert_eq!(h.query(), Some("x=1&y"));
    assert_eq!(h.target(), "/hello?x=1&y");
    assert_eq!(h.version, Version::HTTP_11);
    assert!(h.keep_alive);
    assert!(!h.expect_continue);
    assert_eq!(h.body, BodyKind::Empty);
    assert_eq!(h.headers()["host"], "example.com");
    assert_eq!(h.headers()["ACCEPT"], "*/*");
    assert_eq!(evs[1], Ev::End);
}

#[test]
fn query_edge_cases() {
    let h = run(b"GET /a? HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head(&h[0]).query(), Some(""));
    let h = run(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head(&h[0]).query(), None);
}

#[test]
fn absolute_form_target() {
    let h = run(b"GET http://example.com/ra?q=2 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head(&h[0]).path(), "/ra");
    assert_eq!(head(&h[0]).query(), Some("q=2"));
    let h = run(b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head(&h[0]).path(), "/");
    let h = run(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head(&h[0]).path(), "*");
}

#[test]
fn keep_alive_rules() {
    let ka = |input: &[u8]| head(&run(input)[0]).keep_alive;
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n"));
}

#[test]
fn http10_without_host_is_fine() {
    let evs = run(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(head(&evs[0]).version, Version::HTTP_10);
    assert_eq!(evs[1], Ev::End);
}

#[test]
fn content_length_body() {
    let evs = run(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(head(&evs[0]).body, BodyKind::Length(5));
    assert_eq!(evs[1], Ev::Body(b"hello".to_vec()));
    assert_eq!(evs[2], Ev::End);
}

#[test]
fn content_length_zero_and_repeated_equal_values() {
    let evs = run(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(head(&evs[0]).body, BodyKind::Empty);
    let evs = run(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc");
    assert_eq!(evs[1], Ev::Body(b"abc".to_vec()));
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let input = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5;name=val\r\nhello\r\nA \r\n0123456789\r\na\r\nabcdefghij\r\n0\r\nX-Sum: 7\r\n\r\n";
    let mut d = dec();
    let (evs, left) = feed(&mut d, &[input]);
    assert_eq!(left, 0);
    assert_eq!(head(&evs[0]).body, BodyKind::Chunked);
    assert_eq!(evs[1], Ev::Body(b"hello0123456789abcdefghij".to_vec()));
    assert_eq!(evs[2], Ev::End);
    assert_eq!(d.take_trailers().unwrap()["x-sum"], "7");
    assert_eq!(run(input), evs);
}

#[test]
fn chunked_errors() {
    let pre = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let with = |s: &[u8]| {
        let mut v = pre.clone();
        v.extend_from_slice(s);
        err(&v)
    };
    assert_eq!(with(b"zz\r\n"), ParseError::ChunkSize);
    assert_eq!(with(b"\r\n"), ParseError::ChunkSize);
    assert_eq!(with(b"-1\r\n"), ParseError::ChunkSize);
    assert_eq!(with(b"1ffffffffffffffff\r\n"), ParseError::ChunkSize);
    assert_eq!(with(b"3\r\nabcX\r\n"), ParseError::ChunkFraming);
    assert_eq!(with(b"3\nabc\r\n"), ParseError::ChunkSize);
    assert_eq!(with(b"0\r\nContent-Length: 5\r\n\r\n"), ParseError::Trailer);
    assert_eq!(with(b"800001\r\n"), ParseError::BodyTooLarge);
}

#[test]
fn chunk_extension_is_bounded() {
    let l = Limits { max_line: 64, ..Limits::default() };
    let mut input = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    input.extend(std::iter::repeat_n(b'a', 100));
    let (evs, _) = feed(&mut RequestDecoder::new(l), &[&input]);
    assert_eq!(evs.last(), Some(&Ev::Err(ParseError::ChunkExtensionsTooLarge)));
}

#[test]
fn pipelined_requests_leave_nothing_behind() {
    let input = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok\
                  GET /3 HTTP/1.1\r\nHost: x\r\n\r\nGET /4 HTTP/1.1\r\nHost: x\r\n";
    let (evs, left) = assert_split_invariant(&dec, input);
    let paths: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::Head(h) => Some(h.path().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(paths, ["/1", "/2", "/3"]);
    assert_eq!(left, b"GET /4 HTTP/1.1\r\nHost: x\r\n".len());
}

#[test]
fn leading_empty_lines_are_ignored() {
    let evs = run(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head(&evs[0]).path(), "/");
}

#[test]
fn expect_continue_is_flagged() {
    let evs = run(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\na");
    assert!(head(&evs[0]).expect_continue);
    let evs = run(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
    assert!(!head(&evs[0]).expect_continue, "no body, nothing to continue");
}

#[test]
fn upgrade_and_websocket_detection() {
    let evs = run(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n");
    assert!(head(&evs[0]).upgrade);
    assert!(head(&evs[0]).is_websocket());
}

#[test]
fn header_values_are_bytes() {
    let evs = run(b"GET / HTTP/1.1\r\nHost: x\r\nX-Bin: caf\xe9\r\n\r\n");
    assert_eq!(head(&evs[0]).headers()["x-bin"].as_bytes(), b"caf\xe9");
}

#[test]
fn framing_rejections() {
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ParseError::AmbiguousFraming
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
        ParseError::ContentLength
    );
    assert_eq!(err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n"), ParseError::ContentLength);
    assert_eq!(err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n"), ParseError::ContentLength);
    assert_eq!(err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"), ParseError::ContentLength);
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        ParseError::ContentLength
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ParseError::UnsupportedTransferEncoding
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        ParseError::UnsupportedTransferEncoding
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
        ParseError::AmbiguousFraming
    );
    assert_eq!(err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), ParseError::AmbiguousFraming);
    assert_eq!(ParseError::UnsupportedTransferEncoding.status(), 501);
    assert_eq!(ParseError::AmbiguousFraming.status(), 400);
}

#[test]
fn header_syntax_rejections() {
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n"), ParseError::HeaderName);
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"), ParseError::HeaderName);
    assert_eq!(err(b"GET / HTTP/1.1\r\nAccept: x\r\n\r\n"), ParseError::Host);
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), ParseError::Host);
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n"), ParseError::HeaderValue);
    assert_eq!(ParseError::Host.status(), 400);
}

#[test]
fn host_values() {
    let req = |host: &str| format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
    for ok in [
        "localhost",
        "localhost:4347",
        "localhost:",
        "[::ffff:a9fe:a9fe]",
        "[::1]:80",
        "a-b.c_d~e",
        "x:65535",
        "a%2Eb",
        "a%2Eb:8080",
        "x.",
        "x:0",
    ] {
        let evs = run(&req(ok));
        assert!(matches!(evs.first(), Some(Ev::Head(_))), "{ok:?} should be accepted: {evs:?}");
    }
    for bad in [
        "",
        "localhost:es",
        "localhost:()",
        "x:99999",
        "x:65536",
        "x:+80",
        "a b",
        "a/b",
        "u@h",
        "a\\b",
        "[::1",
        "[]",
        "[::1]x",
        "x:1:2",
        "%zz",
        "a%",
        "a%4",
        ":80",
        "x:123456",
    ] {
        assert_eq!(err(&req(bad)), ParseError::Host, "{bad:?} should be refused");
    }
    // HTTP/1.0 may omit Host, but one that is sent must be valid.
    assert!(matches!(run(b"GET / HTTP/1.0\r\n\r\n").first(), Some(Ev::Head(_))));
    assert_eq!(err(b"GET / HTTP/1.0\r\nHost: a/b\r\n\r\n"), ParseError::Host);
}

#[test]
fn version_and_garbage() {
    assert_eq!(err(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), ParseError::UnsupportedVersion);
    assert_eq!(err(b"GET / HTTP/3.0\r\nHost: x\r\n\r\n"), ParseError::UnsupportedVersion);
    assert_eq!(ParseError::UnsupportedVersion.status(), 505);
    // RFC 9110 §2.5: a higher minor version of HTTP/1 is served as HTTP/1.1 (whole or in pieces).
    for v in ["HTTP/1.2", "HTTP/1.9"] {
        let raw = format!("GET /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y {v}\r\nHost: x\r\n\r\n");
        let evs = run(raw.as_bytes());
        let heads: Vec<_> = evs.iter().filter(|e| matches!(e, Ev::Head(_))).map(head).collect();
        assert_eq!(heads.len(), 2, "{v}");
        assert_eq!(heads[1].version, http::Version::HTTP_11);
        assert_eq!(heads[1].path(), "/y");
        assert!(heads[1].keep_alive);
    }
    assert_eq!(err(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), ParseError::Malformed);
    assert_eq!(err(b"GET / FOO\r\n\r\n"), ParseError::Malformed);
    assert_eq!(ParseError::Malformed.status(), 400);
}

#[test]
fn request_line_limit_is_414() {
    let l = Limits { max_line: 64, ..Limits::default() };
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 100));
    // incomplete line: detected before the line ends
    let (evs, _) = feed(&mut RequestDecoder::new(l), &[&long]);
    assert_eq!(evs, vec![Ev::Err(ParseError::UriTooLong)]);
    long.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    let (evs, _) = assert_split_invariant(&dec_with(l), &long);
    assert_eq!(evs, vec![Ev::Err(ParseError::UriTooLong)]);
    assert_eq!(ParseError::UriTooLong.status(), 414);
}

#[test]
fn line_limits_are_exact_whether_the_head_comes_whole_or_in_pieces() {
    let l = Limits { max_line: 64, ..Limits::default() };
    // "GET " + target + " HTTP/1.1\r\n" is 64 bytes (CRLF included): accepted; one more: 414.
    for (target_len, ok) in [(49, true), (50, false)] {
        let target = format!("/{}", "a".repeat(target_len - 1));
        let input = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(input.find('\n').unwrap() + 1, 12 + 3 + target_len);
        let (evs, _) = assert_split_invariant(&dec_with(l), input.as_bytes());
        assert_eq!(matches!(evs.first(), Some(Ev::Head(_))), ok, "target of {target_len}: {evs:?}");
    }
    // A header line of 64 bytes with its CRLF: accepted; one more: 431 — however much white
    // space surrounds the value.
    for (sep, value_len, ok) in [(" ", 56, true), (" ", 57, false), ("", 57, true), ("  ", 56, false), ("\t", 56, true)]
    {
        let input = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Ab:{sep}{}\r\n\r\n", "v".repeat(value_len));
        let (evs, _) = assert_split_invariant(&dec_with(l), input.as_bytes());
        assert_eq!(matches!(evs.first(), Some(Ev::Head(_))), ok, "{sep:?} + value of {value_len}: {evs:?}");
    }
}

#[test]
fn header_block_limits_are_431() {
    let l = Limits { max_header_bytes: 256, ..Limits::default() };
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..20 {
        req.extend_from_slice(format!("X-Header-{i}: some value\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let (evs, _) = assert_split_invariant(&dec_with(l), &req);
    assert_eq!(evs, vec![Ev::Err(ParseError::HeadersTooLarge)]);

    let l = Limits { max_headers: 5, ..Limits::default() };
    let (evs, _) = assert_split_invariant(&dec_with(l), &req);
    assert_eq!(evs, vec![Ev::Err(ParseError::TooManyHeaders)]);
    assert_eq!(ParseError::TooManyHeaders.status(), 431);

    let l = Limits { max_line: 40, ..Limits::default() };
    let (evs, _) = assert_split_invariant(
        &dec_with(l),
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
    );
    assert_eq!(evs, vec![Ev::Err(ParseError::HeadersTooLarge)]);
}

#[test]
fn body_limit_is_checked_before_reading() {
    let l = Limits { max_body: 10, ..Limits::default() };
    let (evs, _) = feed(&mut RequestDecoder::new(l), &[b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"]);
    assert_eq!(evs, vec![Ev::Err(ParseError::BodyTooLarge)]);
    assert_eq!(ParseError::BodyTooLarge.status(), 413);
    let (evs, _) = feed(
        &mut RequestDecoder::new(l),
        &[b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n"],
    );
    assert_eq!(evs.last(), Some(&Ev::Err(ParseError::BodyTooLarge)));
}

fn ctx<'a>(method: &'a Method, version: Version, keep_alive: bool) -> ResponseContext<'a> {
    ResponseContext { method, version, keep_alive, date: b"Sun, 06 Nov 1994 08:49:37 GMT", server: Some(b"httpkit") }
}

const DATE: &str = "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

#[test]
fn encode_known_length() {
    let mut out = Vec::new();
    let mut h = HeaderMap::new();
    h.insert("content-type", "text/html".parse().unwrap());
    h.insert("content-length", "999".parse().unwrap());
    h.insert("transfer-encoding", "chunked".parse().unwrap());
    let f =
        encode_head(StatusCode::OK, &h, BodyLength::Known(11), &ctx(&Method::GET, Version::HTTP_11, true), &mut out)
            .unwrap();
    assert_eq!(f, ResponseFraming { body: BodyEncoder::Length(11), keep_alive: true });
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 11\r\nserver: httpkit\r\n{DATE}\r\n")
    );
}

#[test]
fn encode_status_lines_and_lengths() {
    let get = Method::GET;
    for (code, len, line, cl) in [
        (200, 0, "HTTP/1.1 200 OK", "0"),
        (404, 9, "HTTP/1.1 404 Not Found", "9"),
        (599, 12345, "HTTP/1.1 599 Unknown", "12345"),
        (200, u64::MAX, "HTTP/1.1 200 OK", "18446744073709551615"),
    ] {
        let mut out = b"before".to_vec();
        let status = StatusCode::from_u16(code).unwrap();
        encode_head(status, &HeaderMap::new(), BodyLength::Known(len), &ctx(&get, Version::HTTP_11, true), &mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("before{line}\r\ncontent-length: {cl}\r\nserver: httpkit\r\n{DATE}\r\n")
        );
    }
}

#[test]
fn encode_streamed_and_close() {
    let mut out = Vec::new();
    let f = encode_head(
        StatusCode::OK,
        &HeaderMap::new(),
        BodyLength::Streamed,
        &ctx(&Method::GET, Version::HTTP_11, false),
        &mut out,
    )
    .unwrap();
    assert_eq!(f, ResponseFraming { body: BodyEncoder::Chunked, keep_alive: false });
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        format!("HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\nserver: httpkit\r\n{DATE}\r\n")
    );
    out.clear();
    f.body.chunk_header(26, &mut out);
    f.body.chunk_trailer(&mut out);
    f.body.finish(&mut out);
    assert_eq!(out, b"1a\r\n\r\n0\r\n\r\n");

    out.clear();
    let f = encode_head(
        StatusCode::OK,
        &HeaderMap::new(),
        BodyLength::Streamed,
        &ctx(&Method::GET, Version::HTTP_10, true),
        &mut out,
    )
    .unwrap();
    assert_eq!(f, ResponseFraming { body: BodyEncoder::CloseDelimited, keep_alive: false });
    assert_eq!(String::from_utf8(out).unwrap(), format!("HTTP/1.1 200 OK\r\nserver: httpkit\r\n{DATE}\r\n"));
}

#[test]
fn encode_http10_keep_alive_and_handler_close() {
    let mut out = Vec::new();
    let f = encode_head(
        StatusCode::OK,
        &HeaderMap::new(),
        BodyLength::Known(0),
        &ctx(&Method::GET, Version::HTTP_10, true),
        &mut out,
    )
    .unwrap();
    assert!(f.keep_alive);
    assert!(String::from_utf8_lossy(&out).contains("connection: keep-alive\r\n"));
    let mut h = HeaderMap::new();
    h.insert("connection", "close".parse().unwrap());
    out.clear();
    let f = encode_head(StatusCode::OK, &h, BodyLength::Known(0), &ctx(&Method::GET, Version::HTTP_11, true), &mut out)
        .unwrap();
    assert!(!f.keep_alive);
    assert_eq!(String::from_utf8_lossy(&out).matches("connection").count(), 1);
    // Any of several `Connection` headers may say close (the server writes its own, once).
    let mut h = HeaderMap::new();
    h.append("connection", "keep-alive".parse().unwrap());
    h.append("connection", "foo, Close".parse().unwrap());
    out.clear();
    let f = encode_head(StatusCode::OK, &h, BodyLength::Known(0), &ctx(&Method::GET, Version::HTTP_11, true), &mut out)
        .unwrap();
    assert!(!f.keep_alive);
    assert_eq!(String::from_utf8_lossy(&out).matches("connection").count(), 1);
    assert!(String::from_utf8_lossy(&out).contains("connection: close\r\n"));
}

#[test]
fn encode_no_body_cases() {
    for (method, status, expect_cl) in [
        (Method::HEAD, StatusCode::OK, Some("content-length: 5\r\n")),
        (Method::GET, StatusCode::NO_CONTENT, None),
        (Method::GET, StatusCode::NOT_MODIFIED, None),
        (Method::GET, StatusCode::CONTINUE, None),
    ] {
        let mut out = Vec::new();
        let f = encode_head(
            status,
            &HeaderMap::new(),
            BodyLength::Known(5),
            &ctx(&method, Version::HTTP_11, true),
            &mut out,
        )
        .unwrap();
        assert_eq!(f.body, BodyEncoder::None, "{method} {status}");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.contains("content-length"), expect_cl.is_some(), "{s}");
        if let Some(cl) = expect_cl {
            assert!(s.contains(cl));
        }
    }
}

#[test]
fn head_with_an_empty_body_keeps_the_handlers_content_length() {
    let enc = |method: &Method, cl: &[&str], len: u64| {
        let mut h = HeaderMap::new();
        for v in cl {
            h.append("content-length", v.parse().unwrap());
        }
        let mut out = Vec::new();
        encode_head(StatusCode::OK, &h, BodyLength::Known(len), &ctx(method, Version::HTTP_11, true), &mut out)
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.matches("content-length").count(), 1, "{s}");
        s
    };
    assert!(enc(&Method::HEAD, &["1234"], 0).contains("content-length: 1234\r\n"));
    // A body of its own wins; a GET never takes the handler's value; bad values are ignored.
    assert!(enc(&Method::HEAD, &["1234"], 5).contains("content-length: 5\r\n"));
    assert!(enc(&Method::GET, &["1234"], 0).contains("content-length: 0\r\n"));
    assert!(enc(&Method::HEAD, &["+12"], 0).contains("content-length: 0\r\n"));
    assert!(enc(&Method::HEAD, &["1", "2"], 0).contains("content-length: 0\r\n"));
    assert!(enc(&Method::HEAD, &["99999999999999999999"], 0).contains("content-length: 0\r\n"));
}

#[test]
fn encode_keeps_user_server_and_date_and_none_server() {
    let mut h = HeaderMap::new();
    h.insert("server", "mine".parse().unwrap());
    h.insert("date", "yesterday".parse().unwrap());
    let mut out = Vec::new();
    encode_head(StatusCode::OK, &h, BodyLength::Known(0), &ctx(&Method::GET, Version::HTTP_11, true), &mut out)
        .unwrap();
    let s = String::from_utf8(out).unwrap();
    assert_eq!(s.matches("server").count(), 1);
    assert_eq!(s.matches("date").count(), 1);
    let mut c = ctx(&Method::GET, Version::HTTP_11, true);
    c.server = None;
    let mut out = Vec::new();
    encode_head(StatusCode::NOT_FOUND, &HeaderMap::new(), BodyLength::Known(0), &c, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), format!("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n{DATE}\r\n"));
}

#[test]
fn encode_refuses_header_injection() {
    let mut h = HeaderMap::new();
    // HeaderValue refuses CR/LF itself; an obs-text value with NUL cannot be built either, so the
    // encoder's own guard is exercised with the unchecked constructor-free path: a value with a
    // raw byte 0x7f is allowed by neither. Check the guard directly on a valid map first.
    h.insert("x-ok", "fine".parse().unwrap());
    let mut out = b"prefix".to_vec();
    assert!(encode_head(
        StatusCode::OK,
        &h,
        BodyLength::Known(0),
        &ctx(&Method::GET, Version::HTTP_11, true),
        &mut out
    )
    .is_ok());
    assert!(http::HeaderValue::from_bytes(b"a\r\nb").is_err());
}

#[test]
fn encode_205_drops_the_body() {
    let mut out = Vec::new();
    let f = encode_head(
        StatusCode::RESET_CONTENT,
        &HeaderMap::new(),
        BodyLength::Known(5),
        &ctx(&Method::GET, Version::HTTP_11, true),
        &mut out,
    )
    .unwrap();
    assert_eq!(f.body, BodyEncoder::None);
    assert!(String::from_utf8(out).unwrap().contains("content-length: 0\r\n"));
}

#[test]
fn encode_unknown_status() {
    let mut out = Vec::new();
    encode_head(
        StatusCode::from_u16(599).unwrap(),
        &HeaderMap::new(),
        BodyLength::Known(0),
        &ctx(&Method::GET, Version::HTTP_11, true),
        &mut out,
    )
    .unwrap();
    assert!(out.starts_with(b"HTTP/1.1 599 Unknown\r\n"));
}

fn arb_request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("PATCH")];
    let path = "/[a-z0-9/]{0,20}(\\?[a-z0-9=&]{0,10})?";
    let headers = proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,12}", "[ -~]{0,30}"), 0..8);
    let body = proptest::collection::vec(any::<u8>(), 0..300);
    let chunked = any::<bool>();
    let chunk_sizes = proptest::collection::vec(1usize..50, 1..6);
    (method, path, headers, body, chunked, chunk_sizes).prop_map(|(m, p, hs, body, chunked, sizes)| {
        let mut r = format!("{m} {p} HTTP/1.1\r\nHost: h\r\n").into_bytes();
        for (n, v) in hs {
            let lower = n.to_ascii_lowercase();
            if ["host", "content-length", "transfer-encoding", "connection", "expect", "upgrade"]
                .contains(&lower.as_str())
            {
                continue;
            }
            r.extend_from_slice(format!("X-{n}: {}\r\n", v.trim()).as_bytes());
        }
        if chunked {
            r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut rest = &body[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes[i % sizes.len()].min(rest.len());
                r.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                r.extend_from_slice(&rest[..n]);
                r.extend_from_slice(b"\r\n");
                rest = &rest[n..];
                i += 1;
            }
            r.extend_from_slice(b"0\r\n\r\n");
        } else {
            r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            r.extend_from_slice(&body);
        }
        r
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn pipeline_split_anywhere_decodes_the_same(
        reqs in proptest::collection::vec(arb_request(), 1..4),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let input: Vec<u8> = reqs.concat();
        let whole = feed(&mut dec(), &[&input]);
        prop_assert_eq!(whole.1, 0);
        prop_assert_eq!(whole.0.iter().filter(|e| **e == Ev::End).count(), reqs.len());
        prop_assert!(!whole.0.iter().any(|e| matches!(e, Ev::Err(_))));
        let pieces = crate::test_util::cut_at(&input, &cuts);
        prop_assert_eq!(feed(&mut dec(), &pieces), whole);
    }

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = feed(&mut dec(), &[&input]);
        let pieces: Vec<&[u8]> = input.chunks(7).collect();
        let _ = feed(&mut dec(), &pieces);
    }

    #[test]
    fn random_bytes_after_a_valid_head_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut input = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(&tail);
        let _ = feed(&mut dec(), &[&input]);
    }
}

/// Found by the h1_request fuzz target: a `?` before `://` made target splitting slice out of
/// order and panic.
#[test]
fn regression_query_before_scheme_separator() {
    assert_eq!(err(b"PT-T q///?//:///qqq/a?b HTTP/1.1\r\nHost: x\r\n\r\n"), ParseError::Target);
    let h = run(b"GET /a?x=http://b/c HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head(&h[0]).path(), "/a");
    assert_eq!(head(&h[0]).query(), Some("x=http://b/c"));
}
