//! The serving examples stop gracefully on SIGTERM (what `docker stop`, systemd and Kubernetes
//! send) and SIGINT (Ctrl-C): the echo example, signalled while a `/stream` answer is in flight,
//! finishes that answer and exits with status 0.
//!
//! Runs the example binary that `cargo test` builds beside the test binaries
//! (`target/<profile>/examples/echo`); skipped with a notice when it is missing or older than
//! its sources (`cargo test --test signals` alone builds no example).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use util::{Client, IO_TIMEOUT};

/// How long the example may take to announce its port, and to exit after the signal.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// The example binary `name`, if it is built and not older than its sources.
fn example_binary(name: &str) -> Option<PathBuf> {
    // This test runs as `target/<profile>/deps/signals-<hash>`; examples are in
    // `target/<profile>/examples/`.
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.ends_with("deps") {
        dir = dir.parent()?;
    }
    let bin = dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let Ok(built) = std::fs::metadata(&bin).and_then(|m| m.modified()) else {
        eprintln!(
            "NOTICE: {} not found; skipping (`cargo test` builds the examples; `--test signals` alone does not)",
            bin.display()
        );
        return None;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in [format!("examples/{name}.rs"), "examples/common/mod.rs".to_owned()] {
        if std::fs::metadata(root.join(&src)).and_then(|m| m.modified()).is_ok_and(|changed| changed > built) {
            eprintln!(
                "NOTICE: {} is older than {src}; skipping (rebuild it: `cargo build --example {name}`)",
                bin.display()
            );
            return None;
        }
    }
    Some(bin)
}

/// The port in a line such as `echo: listening on http://127.0.0.1:PORT/`.
fn listening_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("listening on")?;
    let rest = rest.trim_start();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let host_port = rest.split(|c: char| c == '/' || c.is_whitespace()).next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

/// A running example; killed if the test ends before it exited.
struct Example {
    child: Child,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Example {
    /// Starts `bin 0`: the example on a free port.
    fn start(bin: &Path) -> Self {
        let mut child = Command::new(bin)
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, stdout) = mpsc::channel();
        // Reads every line (also after the test stopped listening), so the example never blocks
        // on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(err).read_to_string(&mut s);
            s
        });
        Self { child, stdout, stderr: Some(stderr) }
    }

    /// Waits for the `listening on …` line; the address to connect to.
    fn addr(&mut self) -> SocketAddr {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            match self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(port) = listening_port(&line) {
                        return SocketAddr::from(([127, 0, 0, 1], port));
                    }
                }
                Err(e) => self.fail(&format!("no `listening on` line from the example ({e})")),
            }
        }
    }

    /// Sends `signal` (`TERM`, `INT`) with the `kill` command (no `unsafe` here, so no libc).
    fn signal(&mut self, signal: &str) {
        let pid = self.child.id().to_string();
        let flag = format!("-{signal}");
        let status = match Command::new("kill").arg(&flag).arg(&pid).status() {
            // No `kill` program (e.g. a slim image without procps): the shell's builtin.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Command::new("sh").arg("-c").arg("kill \"$0\" \"$1\"").arg(&flag).arg(&pid).status()
            }
            other => other,
        };
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => self.fail(&format!("kill {flag} {pid} failed: {s}")),
            Err(e) => self.fail(&format!("could not run kill: {e}")),
        }
    }

    /// Waits for the example to exit; its status and stderr.
    fn wait_exit(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the example") {
                return (status, self.stderr());
            }
            if Instant::now() >= deadline {
                self.fail(&format!("the example did not exit within {PROCESS_TIMEOUT:?} of the signal"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the example wrote to stderr (once it has exited, or been killed).
    fn stderr(&mut self) -> String {
        self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }

    /// Kills the example and fails the test, showing the example's stderr.
    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("{what}\n--- the example's stderr:\n{}", self.stderr());
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        // Does nothing if it has exited (and was waited for) already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the response head and its first chunk have arrived, leaving them unread.
fn wait_for_first_chunk(stream: &TcpStream) {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = [0u8; 4096];
    loop {
        // Blocks until something is readable (up to the client's read timeout).
        let n = stream.peek(&mut buf).expect("the head and first chunk of /stream");
        assert!(n > 0, "the connection closed before the first chunk");
        let seen = &buf[..n];
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            // The chunk's size line and its data line, each ending in CRLF.
            if seen[end + 4..].windows(2).filter(|w| w == b"\r\n").count() >= 2 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no first chunk in {IO_TIMEOUT:?}: {:?}", String::from_utf8_lossy(seen));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts the echo example, asks for `/stream` (five chunks, 100 ms apart), sends `signal`
/// once the first chunk arrived, and checks that the answer is complete and the example exits
/// with status 0.
fn echo_stops_gracefully_on(signal: &str) {
    let Some(bin) = example_binary("echo") else {
        return;
    };
    let mut echo = Example::start(&bin);
    let addr = echo.addr();
    let mut client = Client::connect(addr);
    client.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_for_first_chunk(&client.stream);

    echo.signal(signal);

    let resp = match client.read_response() {
        Ok(r) => r,
        Err(e) => echo.fail(&format!("the /stream answer was cut off after SIG{signal}: {e}")),
    };
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")),
        "a chunked answer: {:?}",
        resp.headers
    );
    // `read_response` returns only after the terminating `0\r\n\r\n`.
    assert_eq!(resp.text(), "abcde", "every chunk arrived ({} chunks)", resp.chunks);

    let (status, stderr) = echo.wait_exit();
    assert!(status.success(), "the example exits with status 0 after SIG{signal}, not {status}; stderr:\n{stderr}");
    assert!(stderr.contains("stopping gracefully"), "the example says it stops gracefully; stderr:\n{stderr}");
}

#[test]
fn echo_finishes_a_stream_and_exits_0_on_sigterm() {
    echo_stops_gracefully_on("TERM");
}

#[test]
fn echo_finishes_a_stream_and_exits_0_on_sigint() {
    echo_stops_gracefully_on("INT");
}

#[test]
fn listening_lines_are_parsed() {
    assert_eq!(listening_port("echo: listening on http://127.0.0.1:8080/"), Some(8080));
    assert_eq!(listening_port("hello: listening on http://127.0.0.1:41234/ (Ctrl-C to stop)"), Some(41234));
    assert_eq!(listening_port("x: listening on [::1]:9000"), Some(9000));
    assert_eq!(listening_port("queue size 0"), None);
}

#[test]
fn the_router_example_routes_with_parameters_404_and_405() {
    let Some(bin) = example_binary("router") else { return };
    let mut ex = Example::start(&bin);
    let addr = ex.addr();
    let mut c = Client::connect(addr);
    let r = c.get("/users/42");
    assert_eq!((r.status, r.text()), (200, "user 42".to_owned()));
    assert_eq!(c.get("/nowhere").status, 404);
    c.send(b"DELETE /users/42 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, POST")));
    let body = "name=Ada%20L.";
    c.send(
        format!(
            "POST /users/7 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.read_response().unwrap().text(), "renamed 7 to Ada L.");
    assert_eq!(c.get("/search?q=rust+http%21").text(), "q=rust http!");
    drop(c);
    ex.signal("TERM");
    let (status, err) = ex.wait_exit();
    assert!(status.success(), "{status}: {err}");
}

#[test]
fn the_sse_example_streams_events_and_resumes_after_the_last_id() {
    let Some(bin) = example_binary("sse") else { return };
    let mut ex = Example::start(&bin);
    let addr = ex.addr();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    std::io::Write::write_all(&mut c, b"GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 6\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("data: 7\n\n") {
        let n = std::io::Read::read(&mut c, &mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("event: tick\nid: 7\ndata: 7\n\n"), "{text}");
    drop(c);
    ex.signal("TERM");
    let (status, err) = ex.wait_exit();
    assert!(status.success(), "{status}: {err}");
}
