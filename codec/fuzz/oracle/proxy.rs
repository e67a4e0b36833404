// Bytes → proxy::parse, whole and grown one byte at a time: never panics; the growing feed's first
// definite answer is the whole feed's; a header is reported when its last byte is in and does not
// depend on the bytes after it; starts_like_proxy agrees with parse; the consumed length and the
// header match the bytes (HAProxy's spec, v1 and v2).
//
// Not asserted: that two errors give the same reason (the connection is closed either way, the
// reason is only logged); that a v1 TCP6 address is written canonically (it is compared by value,
// since "::1" and "0::1" are the same address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use httpkit_codec::proxy::{parse, starts_like_proxy, ProxyError, ProxyHeader, V1_MAX, V2_SIGNATURE};

type Answer = Result<Option<(usize, ProxyHeader)>, ProxyError>;

const V1_SIGNATURE: &[u8] = b"PROXY ";

/// The v2 header's fixed part: signature, version/command, family, 16-bit length.
const V2_FIXED: usize = 16;

/// What `starts_like_proxy` promises (its doc): `Some(true)` once a whole signature is in, `None`
/// while the bytes are still the start of one (too few to tell), `Some(false)` otherwise.
fn expected_start(buf: &[u8]) -> Option<bool> {
    if buf.starts_with(V1_SIGNATURE) || buf.starts_with(V2_SIGNATURE) {
        Some(true)
    } else if V1_SIGNATURE.starts_with(buf) || V2_SIGNATURE.starts_with(buf) {
        None
    } else {
        Some(false)
    }
}

/// `starts_like_proxy` and `parse` on the same bytes (the reactor asks the first, then the second).
fn check_agree(buf: &[u8], r: &Answer) {
    let start = starts_like_proxy(buf);
    assert_eq!(start, expected_start(buf), "starts_like_proxy({buf:?})");
    match start {
        // Not a PROXY header: parse may neither wait for more nor accept it.
        Some(false) => assert!(r.is_err(), "starts_like_proxy said no, parse gave {r:?} for {buf:?}"),
        // Too few bytes to tell: parse can neither accept nor reject yet.
        None => assert_eq!(*r, Ok(None), "starts_like_proxy said too few bytes for {buf:?}"),
        Some(true) => {}
    }
    // So an accepted header is one starts_like_proxy said yes to (no other case is left).
    if let Ok(Some(_)) = r {
        assert_eq!(start, Some(true), "parse accepted {buf:?}");
    }
}

/// `parse` said `Ok(None)`: it may wait only while the header can still end within its limits
/// (a v1 line is at most V1_MAX bytes, a v2 header ends at 16 + its length field).
fn check_wait(buf: &[u8]) {
    if buf.starts_with(V1_SIGNATURE) {
        assert!(buf.len() < V1_MAX, "still waiting for a v1 line after {} bytes", buf.len());
    } else if buf.starts_with(V2_SIGNATURE) && buf.len() >= V2_FIXED {
        let total = V2_FIXED + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        assert!(buf.len() < total, "still waiting for a v2 header of {total} bytes with {} in", buf.len());
    }
}

/// A v1 header `head` (the consumed bytes) read as `h`.
fn check_v1(head: &[u8], h: &ProxyHeader) {
    assert!(head.len() <= V1_MAX, "v1 header of {} bytes", head.len());
    assert!(head.ends_with(b"\r\n"), "v1 header does not end with CRLF: {head:?}");
    // The header is the first line: no LF before its end.
    assert!(!head[..head.len() - 1].contains(&b'\n'), "v1 header ran past its first line: {head:?}");
    let line = String::from_utf8_lossy(&head[..head.len() - 2]);
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.first(), Some(&"PROXY"), "{line:?}");
    match h {
        ProxyHeader::Local => assert_eq!(parts.get(1), Some(&"UNKNOWN"), "{line:?} read as Local"),
        ProxyHeader::Proxied { source, destination } => {
            assert_eq!(parts.len(), 6, "{line:?} read as {h:?}");
            assert_eq!(source.is_ipv4(), destination.is_ipv4(), "{line:?} read as {h:?}");
            let fam = if source.is_ipv4() { "TCP4" } else { "TCP6" };
            assert_eq!(parts[1], fam, "{line:?} read as {h:?}");
            assert_eq!(parts[2].parse::<IpAddr>().ok(), Some(source.ip()), "{line:?} read as {h:?}");
            assert_eq!(parts[3].parse::<IpAddr>().ok(), Some(destination.ip()), "{line:?} read as {h:?}");
            // Ports are plain decimal without leading zeros (proxy.rs rejects "01"), so their
            // text is exactly the number's.
            assert_eq!(parts[4], source.port().to_string(), "{line:?} read as {h:?}");
            assert_eq!(parts[5], destination.port().to_string(), "{line:?} read as {h:?}");
        }
    }
}

/// A v2 header `head` (the consumed bytes) read as `h`.
fn check_v2(head: &[u8], h: &ProxyHeader) {
    assert!(head.len() >= V2_FIXED, "v2 header of {} bytes", head.len());
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    assert_eq!(head.len(), V2_FIXED + len, "v2 header consumed other than 16 + its length field");
    let (ver_cmd, fam, body) = (head[12], head[13], &head[V2_FIXED..]);
    assert_eq!(ver_cmd >> 4, 2, "v2 header of version {} accepted", ver_cmd >> 4);
    let cmd = ver_cmd & 0x0f;
    assert!(cmd <= 1, "v2 command {cmd} accepted (only LOCAL 0 and PROXY 1 exist)");
    match h {
        // LOCAL ignores the address block; PROXY over a non-IP family (AF_UNSPEC 0, AF_UNIX 3)
        // has no address to give.
        ProxyHeader::Local => {
            assert!(cmd == 0 || matches!(fam >> 4, 0 | 3), "v2 PROXY of family {fam:#04x} read as Local");
        }
        ProxyHeader::Proxied { source, destination } => {
            assert_eq!(cmd, 1, "v2 LOCAL read as {h:?}");
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            let want = match fam >> 4 {
                1 if body.len() >= 12 => Some((
                    SocketAddr::new(Ipv4Addr::new(body[0], body[1], body[2], body[3]).into(), port(8)),
                    SocketAddr::new(Ipv4Addr::new(body[4], body[5], body[6], body[7]).into(), port(10)),
                )),
                2 if body.len() >= 36 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&body[..16]);
                    let mut b = [0u8; 16];
                    b.copy_from_slice(&body[16..32]);
                    Some((
                        SocketAddr::new(Ipv6Addr::from(a).into(), port(32)),
                        SocketAddr::new(Ipv6Addr::from(b).into(), port(34)),
                    ))
                }
                _ => None,
            };
            assert_eq!(want, Some((*source, *destination)), "v2 family {fam:#04x} body {body:?} read as {h:?}");
        }
    }
}

/// The fuzz oracle: runs one input; panics on a failure. The input is the bytes as they arrive
/// (no control byte: every split point is tried by growing the input one byte at a time).
pub fn check(data: &[u8]) {
    let whole = parse(data);
    check_agree(data, &whole);
    if whole == Ok(None) {
        check_wait(data);
    }

    // Delivered one byte at a time: parse the growing buffer until the first definite answer.
    let mut first = None;
    for k in 0..=data.len() {
        let buf = &data[..k];
        let r = parse(buf);
        check_agree(buf, &r);
        if r == Ok(None) {
            check_wait(buf);
        } else {
            first = Some((k, r));
            break;
        }
    }
    // None: every prefix, the whole input included, was Ok(None).
    if let Some((k, r)) = first {
        match (&r, &whole) {
            (Err(_), Err(_)) => {}
            _ => assert_eq!(r, whole, "answer with {k} bytes in differs from the whole input's ({} bytes)", data.len()),
        }
        if let Ok(Some((n, _))) = r {
            // Not before its last byte (n <= k, checked below), nor later.
            assert_eq!(k, n, "a {n}-byte header was reported only once {k} bytes were in");
        }
    }

    if let Ok(Some((n, h))) = whole {
        assert!(n > 0 && n <= data.len(), "consumed {n} of {} bytes", data.len());
        // The header does not depend on the bytes after it.
        assert_eq!(parse(&data[..n]), Ok(Some((n, h))), "the header alone reads differently");
        if data.starts_with(V1_SIGNATURE) {
            check_v1(&data[..n], &h);
        } else {
            assert!(data.starts_with(V2_SIGNATURE), "accepted without a signature: {data:?}");
            check_v2(&data[..n], &h);
        }
    }
}
