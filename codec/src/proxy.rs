//! The PROXY protocol header (HAProxy's spec, versions 1 and 2) that a load balancer puts before
//! the first byte of a connection to pass on the client's address.
//!
//! ```
//! use httpkit_codec::proxy::{parse, ProxyHeader};
//! let (n, h) = parse(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /").unwrap().unwrap();
//! assert_eq!(n, 45);
//! assert_eq!(h, ProxyHeader::Proxied { source: "192.0.2.1:56324".parse().unwrap(), destination: "198.51.100.2:443".parse().unwrap() });
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included.
pub const V1_MAX: usize = 107;

/// A parsed PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The connection was proxied for this client.
    Proxied {
        /// The original client.
        source: SocketAddr,
        /// The address the client connected to.
        destination: SocketAddr,
    },
    /// The proxy speaks for itself (v1 `UNKNOWN`, v2 `LOCAL`, or a non-IP family): use the
    /// socket's own peer address.
    Local,
}

/// An invalid PROXY header: the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyError(&'static str);

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PROXY header: {}", self.0)
    }
}

impl std::error::Error for ProxyError {}

/// Whether `buf` starts like a PROXY header (or could, with more bytes): `None` when too few
/// bytes have arrived to tell.
pub fn starts_like_proxy(buf: &[u8]) -> Option<bool> {
    const V1: &[u8] = b"PROXY ";
    if buf.len() >= V1.len() {
        if buf.starts_with(V1) {
            return Some(true);
        }
    } else if !buf.is_empty() && V1.starts_with(buf) {
        return None;
    }
    if buf.len() >= V2_SIGNATURE.len() {
        if buf.starts_with(V2_SIGNATURE) {
            return Some(true);
        }
    } else if V2_SIGNATURE.starts_with(buf) {
        return None;
    }
    Some(false)
}

/// Parses a PROXY header at the start of `buf`: `Ok(None)` when more bytes are needed,
/// `Ok(Some((consumed, header)))` when complete.
///
/// # Errors
/// [`ProxyError`] when the bytes are not a valid v1 or v2 header.
pub fn parse(buf: &[u8]) -> Result<Option<(usize, ProxyHeader)>, ProxyError> {
    if buf.starts_with(b"PROXY ") || (buf.len() < 6 && b"PROXY ".starts_with(buf)) {
        return parse_v1(buf);
    }
    let m = buf.len().min(12);
    if buf[..m] == V2_SIGNATURE[..m] {
        return parse_v2(buf);
    }
    Err(ProxyError("no PROXY signature"))
}

fn parse_v1(buf: &[u8]) -> Result<Option<(usize, ProxyHeader)>, ProxyError> {
    let Some(nl) = buf.iter().take(V1_MAX).position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX { Err(ProxyError("v1 line too long")) } else { Ok(None) };
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return Err(ProxyError("v1 line must end with CRLF"));
    }
    let line = std::str::from_utf8(&buf[..nl - 1]).map_err(|_| ProxyError("v1 line not ASCII"))?;
    let parts: Vec<&str> = line.split(' ').collect();
    let header = match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => ProxyHeader::Local,
        ["PROXY", fam @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip: IpAddr = s.parse().map_err(|_| ProxyError("bad address"))?;
                match (*fam, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(ProxyError("address family mismatch")),
                }
            };
            let port = |s: &str| -> Result<u16, ProxyError> {
                if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ProxyError("bad port"));
                }
                s.parse().map_err(|_| ProxyError("bad port"))
            };
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            }
        }
        _ => return Err(ProxyError("malformed v1 line")),
    };
    Ok(Some((nl + 1, header)))
}

/// Whether a complete PROXY v2 header (`header`, as [`parse`] consumed it) says the client's
/// own connection used TLS: a `PP2_TYPE_SSL` TLV (0x20) with the `PP2_CLIENT_SSL` bit. `false` for
/// v1 headers, headers without that TLV, and malformed TLVs.
pub fn v2_client_used_tls(header: &[u8]) -> bool {
    if header.len() < 16 || !header.starts_with(V2_SIGNATURE) {
        return false;
    }
    let addresses = match header[13] {
        0x11 | 0x12 => 12,
        0x21 | 0x22 => 36,
        0x31 | 0x32 => 216,
        _ => 0,
    };
    let len = u16::from_be_bytes([header[14], header[15]]) as usize;
    let Some(mut tlvs) = header.get(16 + addresses..16 + len) else {
        return false;
    };
    while tlvs.len() >= 3 {
        let (kind, n) = (tlvs[0], u16::from_be_bytes([tlvs[1], tlvs[2]]) as usize);
        let Some(value) = tlvs.get(3..3 + n) else {
            return false;
        };
        if kind == 0x20 {
            return value.first().is_some_and(|client| client & 0x01 != 0);
        }
        tlvs = &tlvs[3 + n..];
    }
    false
}

fn parse_v2(buf: &[u8]) -> Result<Option<(usize, ProxyHeader)>, ProxyError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError("v2 version must be 2"));
    }
    let fam = buf[13];
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if buf.len() < 16 + len {
        return Ok(None);
    }
    let body = &buf[16..16 + len];
    let total = 16 + len;
    match ver_cmd & 0x0f {
        0 => return Ok(Some((total, ProxyHeader::Local))),
        1 => {}
        _ => return Err(ProxyError("v2 command must be LOCAL or PROXY")),
    }
    let header = match fam {
        0x11 | 0x12 => {
            if body.len() < 12 {
                return Err(ProxyError("v2 IPv4 block too short"));
            }
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            ProxyHeader::Proxied {
                source: SocketAddr::new(src.into(), u16::from_be_bytes([body[8], body[9]])),
                destination: SocketAddr::new(dst.into(), u16::from_be_bytes([body[10], body[11]])),
            }
        }
        0x21 | 0x22 => {
            if body.len() < 36 {
                return Err(ProxyError("v2 IPv6 block too short"));
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&body[..16]);
            let mut b = [0u8; 16];
            b.copy_from_slice(&body[16..32]);
            ProxyHeader::Proxied {
                source: SocketAddr::new(Ipv6Addr::from(a).into(), u16::from_be_bytes([body[32], body[33]])),
                destination: SocketAddr::new(Ipv6Addr::from(b).into(), u16::from_be_bytes([body[34], body[35]])),
            }
        }
        0x00 | 0x31 | 0x32 => ProxyHeader::Local,
        _ => return Err(ProxyError("v2 unknown address family")),
    };
    Ok(Some((total, header)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let (n, h) = parse(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\nrest").unwrap().unwrap();
        assert_eq!(n, 36);
        assert_eq!(
            h,
            ProxyHeader::Proxied {
                source: "[2001:db8::1]:1".parse().unwrap(),
                destination: "[::1]:65535".parse().unwrap()
            }
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap(), Some((15, ProxyHeader::Local)));
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2").unwrap(), None, "incomplete");
        assert_eq!(parse(b"PRO").unwrap(), None);
    }

    #[test]
    fn v1_errors() {
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"[..],
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let long = [b'P', b'R', b'O', b'X', b'Y', b' ']
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'1', 120))
            .collect::<Vec<_>>();
        assert!(parse(&long).is_err());
    }

    #[test]
    fn v2_ipv4_ipv6_local_and_tlvs() {
        let body = [10, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0x00, 0x50, 0xAA, 0xBB];
        let buf = v2(1, 0x11, &body);
        assert_eq!(
            parse(&buf).unwrap(),
            Some((
                buf.len(),
                ProxyHeader::Proxied {
                    source: "10.0.0.1:8080".parse().unwrap(),
                    destination: "10.0.0.2:80".parse().unwrap()
                }
            ))
        );
        let mut b6 = vec![0u8; 36];
        b6[15] = 1;
        b6[31] = 2;
        b6[33] = 7;
        b6[35] = 9;
        let buf = v2(1, 0x21, &b6);
        assert_eq!(
            parse(&buf).unwrap().unwrap().1,
            ProxyHeader::Proxied { source: "[::1]:7".parse().unwrap(), destination: "[::2]:9".parse().unwrap() }
        );
        assert_eq!(parse(&v2(0, 0x00, &[])).unwrap(), Some((16, ProxyHeader::Local)));
        assert_eq!(parse(&buf[..20]).unwrap(), None);
        assert!(parse(&v2(2, 0x11, &body)).is_err());
        assert!(parse(&v2(1, 0x11, &body[..5])).is_err());
        let mut badver = v2(1, 0x11, &body);
        badver[12] = 0x11;
        assert!(parse(&badver).is_err());
    }

    #[test]
    fn detection() {
        assert_eq!(starts_like_proxy(b"GET / HTTP/1.1"), Some(false));
        assert_eq!(starts_like_proxy(b"PROXY TCP4"), Some(true));
        assert_eq!(starts_like_proxy(b"PRO"), None);
        assert_eq!(starts_like_proxy(b"\r\n\r\n"), None);
        assert_eq!(starts_like_proxy(V2_SIGNATURE), Some(true));
        assert_eq!(starts_like_proxy(b"\r\n\r\nX"), Some(false));
        assert_eq!(starts_like_proxy(b""), None);
    }

    #[test]
    fn a_v2_ssl_tlv_says_the_client_used_tls() {
        let mut v = V2_SIGNATURE.to_vec();
        v.extend_from_slice(&[0x21, 0x11]);
        let tlv = [0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0];
        v.extend_from_slice(&((12 + tlv.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 2, 0x1f, 0x90, 0x01, 0xbb]);
        v.extend_from_slice(&tlv);
        let (n, h) = parse(&v).unwrap().unwrap();
        assert!(matches!(h, ProxyHeader::Proxied { .. }));
        assert!(v2_client_used_tls(&v[..n]));
        // Without the TLV, or with the client bit clear: no.
        let mut plain = v.clone();
        plain[16 + 12 + 3] = 0;
        assert!(!v2_client_used_tls(&plain));
        assert!(!v2_client_used_tls(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
    }
}
