//! Who the client is and which scheme it used, when trusted proxies stand in front: the
//! forwarding header chosen with `Options::forwarded_header`, read only from a trusted peer and
//! walked from the right past every trusted proxy; a PROXY v2 header's TLS flag.

use std::net::{IpAddr, SocketAddr};

use httpkit_codec::h1::RequestHead;
use ipnet::IpNet;

use crate::attachment::ConnHandle;
use crate::ForwardedHeader;

/// The client's address (port 0 when it comes from a header) and whether it used TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) https: bool,
}

fn trusted_ip(trusted: &[IpNet], ip: IpAddr) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// Walks a forwarding chain (oldest hop first) from the right: every address a trusted proxy
/// added is skipped; the first that is not trusted is the client (with its index). When every
/// hop is trusted, the first one. `None` at an entry that is not an address (`unknown`, an
/// obfuscated name, garbage): nothing to the left of it can be believed.
fn walk(chain: &[Option<IpAddr>], trusted: &[IpNet]) -> Option<(usize, IpAddr)> {
    let mut last = None;
    for (i, entry) in chain.iter().enumerate().rev() {
        let ip = (*entry)?;
        if !trusted_ip(trusted, ip) {
            return Some((i, ip));
        }
        last = Some((i, ip));
    }
    last
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`.
fn parse_node(v: &str) -> Option<IpAddr> {
    let v = v.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.parse()
        .ok()
        .or_else(|| v.rsplit_once(':').and_then(|(ip, _)| ip.parse::<std::net::Ipv4Addr>().ok()).map(IpAddr::V4))
}

/// `X-Forwarded-Proto` (its first value: the scheme the first proxy saw) says `https`.
fn forwarded_proto_https(head: &RequestHead) -> bool {
    head.headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// The elements of RFC 7239 `Forwarded` lines, oldest first: (`for=` address, `proto=`).
fn forwarded_elements(head: &RequestHead) -> Vec<(Option<IpAddr>, Option<String>)> {
    let mut out = Vec::new();
    for line in head.headers().get_all("forwarded").iter().filter_map(|v| v.to_str().ok()) {
        for element in line.split(',') {
            let (mut node, mut proto) = (None, None);
            for pair in element.split(';') {
                let Some((k, v)) = pair.split_once('=') else { continue };
                match k.trim().to_ascii_lowercase().as_str() {
                    "for" => node = parse_node(v),
                    "proto" => proto = Some(v.trim().trim_matches('"').to_ascii_lowercase()),
                    _ => {}
                }
            }
            out.push((node, proto));
        }
    }
    out
}

/// Where the request comes from (see the module docs).
pub(crate) fn origin(head: &RequestHead, conn: &ConnHandle, trusted: &[IpNet], header: ForwardedHeader) -> Origin {
    let peer = conn.peer_addr();
    let direct = Origin { addr: peer, https: conn.proxied_tls() };
    if trusted.is_empty() || conn.is_proxied() {
        return direct;
    }
    let trusted_peer = match peer {
        Some(p) => trusted_ip(trusted, p.ip()),
        // A Unix domain socket: trusted when the loopback is.
        None => trusted_ip(trusted, IpAddr::from([127, 0, 0, 1])) || trusted_ip(trusted, IpAddr::from([0u16; 8])),
    };
    if !trusted_peer {
        return direct;
    }
    let (ip, https) = match header {
        ForwardedHeader::XForwardedFor => {
            let chain: Vec<Option<IpAddr>> = head
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(parse_node)
                .collect();
            (walk(&chain, trusted).map(|(_, ip)| ip), forwarded_proto_https(head))
        }
        ForwardedHeader::XRealIp => (
            head.headers().get("x-real-ip").and_then(|v| v.to_str().ok()).and_then(parse_node),
            forwarded_proto_https(head),
        ),
        ForwardedHeader::Forwarded => {
            let elements = forwarded_elements(head);
            let chain: Vec<Option<IpAddr>> = elements.iter().map(|(ip, _)| *ip).collect();
            match walk(&chain, trusted) {
                Some((i, ip)) => (Some(ip), elements[i].1.as_deref() == Some("https")),
                None => (None, false),
            }
        }
    };
    Origin { addr: ip.map(|ip| SocketAddr::new(ip, 0)).or(peer), https: https || direct.https }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn the_chain_is_walked_from_the_right_past_trusted_proxies() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let trusted = nets(&["10.0.0.0/8", "192.168.1.7/32"]);
        // client, first proxy, second proxy (as the last one appended them)
        let chain = [ip("6.6.6.6"), ip("203.0.113.9"), ip("10.1.2.3"), ip("192.168.1.7")];
        assert_eq!(walk(&chain, &trusted), Some((1, "203.0.113.9".parse().unwrap())));
        assert_eq!(walk(&chain[2..], &trusted).map(|(i, _)| i), Some(0), "all trusted: the first");
        assert_eq!(walk(&[ip("6.6.6.6"), None, ip("10.0.0.1")], &trusted), None, "garbage stops the walk");
    }

    #[test]
    fn nodes_as_proxies_write_them() {
        for (v, want) in [
            ("1.2.3.4", "1.2.3.4"),
            (" 1.2.3.4:80", "1.2.3.4"),
            ("\"[2001:db8::17]:4711\"", "2001:db8::17"),
            ("::1", "::1"),
            ("[::1]", "::1"),
        ] {
            assert_eq!(parse_node(v), Some(want.parse().unwrap()), "{v}");
        }
        assert_eq!(parse_node("unknown"), None);
        assert_eq!(parse_node("_hidden"), None);
    }
}
