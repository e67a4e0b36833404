//! Listeners and proxies: Unix domain sockets, listeners built by the caller, the PROXY
//! protocol, trusted forwarding headers, and a real nginx in front (skipped with a notice when
//! nginx is not installed; `.ci/run` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use httpkit::{
    as_channel, serve, ChannelHandlers, ForwardedHeader, Message, Options, ProxyProtocol, Request, Response,
};
use util::*;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("httpkit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn whoami(req: Request) -> Response {
    if req.is_websocket() {
        let h = ChannelHandlers::new().on_receive(|ch, m| {
            if let Message::Text(t) = m {
                ch.send(format!("echo {t}"));
            }
        });
        return as_channel(&req, h);
    }
    Response::ok(format!("{:?}", req.remote_addr()))
}

fn uds_get(path: &Path) -> String {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn unix_socket_serves_replaces_stale_file_and_cleans_up() {
    let dir = tmpdir("uds");
    let path = dir.join("s.sock");
    // A stale socket file: bound, then its listener dropped (nobody accepts on it).
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let s = start(whoami, Options::default().unix_socket(&path));
    assert_eq!(s.unix_path(), Some(path.as_path()));
    assert_eq!(s.port(), None);
    let out = uds_get(&path);
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.ends_with("None"), "UDS requests have no remote address: {out}");
    // A second server on a live socket fails instead of stealing it.
    let e = httpkit::run_server(whoami, Options::default().unix_socket(&path)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    s.stop();
    assert!(!path.exists(), "socket file removed on stop");
    // A path that is not a socket is never removed.
    std::fs::write(&path, b"precious").unwrap();
    assert!(httpkit::run_server(whoami, Options::default().unix_socket(&path)).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn caller_built_listeners() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let s = serve(whoami, Options::default(), l).unwrap();
    assert_eq!(s.local_addr(), Some(a));
    assert_eq!(request(a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);

    let dir = tmpdir("uds-own");
    let path = dir.join("own.sock");
    let ul = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let s2 = serve(whoami, Options::default(), ul).unwrap();
    assert!(uds_get(&path).starts_with("HTTP/1.1 200"));
    s2.stop();
    assert!(path.exists(), "a caller's socket file stays");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

fn get_with_prefix(a: SocketAddr, prefix: &[u8]) -> Option<Resp> {
    let mut c = Client::connect(a);
    let mut req = prefix.to_vec();
    req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send(&req);
    c.read_response().ok()
}

fn v2(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v.extend_from_slice(&[0x21, 0x11, 0, 12]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&[127, 0, 0, 1]);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&80u16.to_be_bytes());
    v
}

#[test]
fn proxy_protocol_required() {
    let s = start(whoami, opts().proxy_protocol(ProxyProtocol::Required));
    let a = addr(&s);
    let r = get_with_prefix(a, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n").unwrap();
    assert_eq!(r.text(), "Some(203.0.113.7:5555)");
    let r = get_with_prefix(a, b"PROXY TCP6 2001:db8::9 ::1 6000 80\r\n").unwrap();
    assert_eq!(r.text(), "Some([2001:db8::9]:6000)");
    let r = get_with_prefix(a, &v2([198, 51, 100, 4], 4444)).unwrap();
    assert_eq!(r.text(), "Some(198.51.100.4:4444)");
    // UNKNOWN: the socket peer.
    let r = get_with_prefix(a, b"PROXY UNKNOWN\r\n").unwrap();
    assert!(r.text().contains("127.0.0.1"));
    // Missing or invalid: the connection is closed without a response.
    assert!(get_with_prefix(a, b"").is_none());
    assert!(get_with_prefix(a, b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n").is_none());
    let mut bad = v2([1, 2, 3, 4], 1);
    bad[12] = 0x31; // version 3
    assert!(get_with_prefix(a, &bad).is_none());
    // The address holds for every request on the connection.
    let mut c = Client::connect(a);
    c.send(b"PROXY TCP4 192.0.2.200 127.0.0.1 7 80\r\n");
    assert_eq!(c.get("/").text(), "Some(192.0.2.200:7)");
    assert_eq!(c.get("/").text(), "Some(192.0.2.200:7)");
}

#[test]
fn proxy_protocol_optional_and_split_header() {
    let s = start(whoami, opts().proxy_protocol(ProxyProtocol::Optional));
    let a = addr(&s);
    assert!(get_with_prefix(a, b"").unwrap().text().contains("127.0.0.1"));
    assert_eq!(get_with_prefix(a, b"PROXY TCP4 10.1.2.3 127.0.0.1 9 80\r\n").unwrap().text(), "Some(10.1.2.3:9)");
    assert!(get_with_prefix(a, b"PROXY garbage\r\n").is_none(), "invalid header closes");
    // The header may arrive a byte at a time.
    let mut c = Client::connect(a);
    for b in b"PROXY TCP4 10.9.9.9 127.0.0.1 1 2\r\n" {
        c.send(&[*b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(c.get("/").text(), "Some(10.9.9.9:1)");
    // Off: a PROXY line is just a bad request.
    let s = start(whoami, opts());
    assert_eq!(get_with_prefix(addr(&s), b"PROXY TCP4 10.1.2.3 127.0.0.1 9 80\r\n").unwrap().status, 400);
}

#[test]
fn forwarded_headers_only_from_trusted_proxies() {
    let hdrs = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6, 10.0.0.8\r\n\r\n";
    let s = start(whoami, opts());
    assert!(request(addr(&s), hdrs).text().contains("127.0.0.1"), "untrusted by default");
    let s = start(whoami, opts().trusted_proxies(["127.0.0.1".parse().unwrap()]));
    assert_eq!(request(addr(&s), hdrs).text(), "Some(10.0.0.8:0)", "the entry the proxy added");
    // Only the chosen header counts: the other one a proxy passes through from the client.
    let both = b"GET / HTTP/1.1\r\nHost: x\r\nX-Real-IP: 10.0.0.9\r\nX-Forwarded-For: 6.6.6.6, 10.0.0.8\r\n\r\n";
    assert_eq!(request(addr(&s), both).text(), "Some(10.0.0.8:0)");
    let real_only = b"GET / HTTP/1.1\r\nHost: x\r\nX-Real-IP: 10.0.0.9\r\n\r\n";
    assert!(request(addr(&s), real_only).text().contains("127.0.0.1"), "X-Real-IP is not read by default");
    let s = start(
        whoami,
        opts().trusted_proxies(["127.0.0.1".parse().unwrap()]).forwarded_header(httpkit::ForwardedHeader::XRealIp),
    );
    assert_eq!(request(addr(&s), both).text(), "Some(10.0.0.9:0)");
    assert!(request(addr(&s), hdrs).text().contains("127.0.0.1"), "X-Forwarded-For is not read then");
    let s = start(whoami, opts().trusted_proxies(["10.9.9.9".parse().unwrap()]));
    assert!(request(addr(&s), hdrs).text().contains("127.0.0.1"), "peer not in the trusted list");
}

// ---- nginx ----

struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// Starts nginx on a free loopback port in front of `upstream` (`127.0.0.1:P` or `unix:/path`),
/// with the seed's sample configuration (keep-alive upstream, forwarding and WebSocket headers).
fn start_nginx(name: &str, upstream: &str) -> Option<Nginx> {
    start_nginx_with(name, upstream, "")
}

/// [`start_nginx`] with more directives in its `location` (e.g. `proxy_bind`).
fn start_nginx_with(name: &str, upstream: &str, extra: &str) -> Option<Nginx> {
    let Some(bin) = nginx_binary() else {
        eprintln!("NOTICE: nginx is not installed; skipping the nginx test {name} (apt-get install -y nginx-light)");
        return None;
    };
    let dir = tmpdir(&format!("nginx-{name}"));
    // Each nginx gets a loopback address of its own, so no port-0 server of another test can
    // take the port between picking it here and nginx binding it.
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    let ip = format!("127.0.1.{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    let port = std::net::TcpListener::bind(format!("{ip}:0")).unwrap().local_addr().unwrap().port();
    let d = dir.display();
    let conf = format!(
        r#"
user root;
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream my-pool {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen {ip}:{port};
        location / {{
            proxy_http_version                 1.1;
            proxy_pass                         http://my-pool;
            proxy_pass_request_headers         on;
            proxy_set_header Host              $host;
            proxy_set_header X-Real-IP         $remote_addr;
            proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade           $http_upgrade;
            proxy_set_header Connection        $connection_upgrade;
            {extra}
        }}
    }}
}}
"#
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let a: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let mut ng = Nginx { child, addr: a, dir };
    let t = std::time::Instant::now();
    while t.elapsed() < IO_TIMEOUT {
        if TcpStream::connect(a).is_ok() {
            return Some(ng);
        }
        if let Ok(Some(status)) = ng.child.try_wait() {
            let log = std::fs::read_to_string(ng.dir.join("error.log")).unwrap_or_default();
            panic!("nginx exited ({status}): {log}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let log = std::fs::read_to_string(ng.dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not start: {log}");
}

fn nginx_addr(n: &Nginx) -> SocketAddr {
    n.addr
}

/// Connects to `to` from the loopback address `from` (so nginx sees a distinct client).
fn connect_from(from: &str, to: SocketAddr) -> Client {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into()).unwrap();
    sock.connect(&to.into()).unwrap();
    Client::from_stream(sock.into())
}

#[test]
fn nginx_keeps_upstream_connections_alive() {
    let s = start(whoami, opts());
    let Some(ng) = start_nginx("keepalive", &addr(&s).to_string()) else {
        return;
    };
    for i in 0..60 {
        // New client connections to nginx each time; nginx reuses its upstream connections.
        let r =
            request(nginx_addr(&ng), format!("GET /{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
        assert_eq!(r.status, 200);
    }
    let accepted = s.connections_accepted();
    assert!(accepted <= 3, "60 requests through nginx opened {accepted} upstream connections");
}

#[test]
fn nginx_forwarded_address_reaches_the_handler_when_trusted() {
    let s = start(whoami, opts().trusted_proxies(["127.0.0.1".parse().unwrap()]));
    let Some(ng) = start_nginx("forwarded", &addr(&s).to_string()) else {
        return;
    };
    let mut c = connect_from("127.0.0.5", nginx_addr(&ng));
    assert_eq!(c.get("/").text(), "Some(127.0.0.5:0)");
    // A client's own X-Forwarded-For is not believed.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
    assert_eq!(c.read_response().unwrap().text(), "Some(127.0.0.5:0)");
    // Untrusted: the socket peer (nginx).
    let s2 = start(whoami, opts());
    let Some(ng2) = start_nginx("untrusted", &addr(&s2).to_string()) else {
        return;
    };
    let mut c = connect_from("127.0.0.5", nginx_addr(&ng2));
    assert!(c.get("/").text().starts_with("Some(127.0.0.1:"));
}

#[test]
fn nginx_proxies_websockets() {
    let s = start(whoami, opts());
    let Some(ng) = start_nginx("ws", &addr(&s).to_string()) else {
        return;
    };
    let (mut ws, resp) = tungstenite::connect(format!("ws://{}/ws", nginx_addr(&ng))).expect("ws via nginx");
    assert_eq!(resp.status(), 101);
    ws.send(tungstenite::Message::text("through nginx")).unwrap();
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text("echo through nginx"));
    ws.close(None).unwrap();
}

#[test]
fn nginx_to_a_unix_socket() {
    let dir = tmpdir("nginx-uds-upstream");
    let path = dir.join("app.sock");
    let s = start(whoami, Options::default().unix_socket(&path).trusted_proxies(["127.0.0.1".parse().unwrap()]));
    // nginx workers may run as another user: let them reach the socket.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let Some(ng) = start_nginx("uds", &format!("unix:{}", path.display())) else {
        return;
    };
    let mut c = connect_from("127.0.0.6", nginx_addr(&ng));
    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Some(127.0.0.6:0)", "nginx's address for the client, trusted over the local socket");
    drop(ng);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The client's address and scheme, as the handler sees them.
fn origin(req: Request) -> Response {
    Response::ok(format!("{} {}", req.remote_addr().map_or("-".to_owned(), |a| a.ip().to_string()), req.scheme()))
}

fn get_with(a: SocketAddr, headers: &str) -> String {
    request(a, format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes()).text()
}

#[test]
fn proxies_done_right_ranges_chains_schemes_and_forwarded() {
    // A trusted range; the chain is walked from the right past every trusted proxy.
    let s = start(origin, opts().trusted_networks(["127.0.0.0/8".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]));
    let a = addr(&s);
    assert_eq!(get_with(a, "X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.1.2.3\r\n"), "203.0.113.9 http");
    assert_eq!(get_with(a, "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 10.0.0.1\r\n"), "6.6.6.6 http");
    assert_eq!(get_with(a, "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"), "203.0.113.9 https");
    assert_eq!(get_with(a, "X-Forwarded-For: garbage, 10.0.0.1\r\n"), "127.0.0.1 http", "garbage is not believed");
    // Untrusted peer: neither the address nor the scheme is believed.
    let s2 = start(origin, opts().trusted_networks(["10.0.0.0/8".parse().unwrap()]));
    assert_eq!(get_with(addr(&s2), "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"), "127.0.0.1 http");
    // RFC 7239 Forwarded.
    let s3 = start(
        origin,
        opts().trusted_networks(["127.0.0.0/8".parse().unwrap()]).forwarded_header(ForwardedHeader::Forwarded),
    );
    let fwd = "Forwarded: for=6.6.6.6;proto=http, for=\"[2001:db8::17]:4711\";proto=https, for=127.0.0.9\r\n";
    assert_eq!(get_with(addr(&s3), fwd), "2001:db8::17 https");
    assert_eq!(get_with(addr(&s3), "Forwarded: for=unknown;proto=https\r\n"), "127.0.0.1 http");
    // PROXY v2 with the SSL TLV (client bit): https.
    let s4 = start(origin, opts().proxy_protocol(ProxyProtocol::Required));
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    let tlv = [0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0];
    v.extend_from_slice(&[0x21, 0x11]);
    v.extend_from_slice(&((12 + tlv.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[198, 51, 100, 4, 127, 0, 0, 1, 0x11, 0x5c, 0, 80]);
    v.extend_from_slice(&tlv);
    assert_eq!(get_with_prefix(addr(&s4), &v).unwrap().text(), "198.51.100.4 https");
    assert_eq!(get_with_prefix(addr(&s4), &v2([198, 51, 100, 4], 1)).unwrap().text(), "198.51.100.4 http");
}

#[test]
fn two_nginx_hops_find_the_client_past_both() {
    // client (127.0.0.5) → nginx A → (from 127.0.2.1) nginx B → (from 127.0.2.2) httpkit, which
    // trusts 127.0.2.0/24: the client is the first address from the right that is not a proxy,
    // not the last entry (which is A), nor what the client itself claims.
    let s = start(origin, opts().trusted_networks(["127.0.2.0/24".parse().unwrap()]));
    let Some(b) = start_nginx_with("hop-b", &addr(&s).to_string(), "proxy_bind 127.0.2.2;") else {
        return;
    };
    let Some(a) = start_nginx_with("hop-a", &nginx_addr(&b).to_string(), "proxy_bind 127.0.2.1;") else {
        return;
    };
    let mut c = connect_from("127.0.0.5", nginx_addr(&a));
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
    assert_eq!(c.read_response().unwrap().text(), "127.0.0.5 http");
}
