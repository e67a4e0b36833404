//! A reactor paused at the connection limit sleeps (no busy loop). Alone in its own test
//! binary: it measures the CPU time of the threads named `httpkit-reactor`, which other tests'
//! servers running beside it would add to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::net::TcpStream;
use std::time::Duration;

use util::*;

/// CPU time (clock ticks) of this process's thread named `name`.
fn thread_ticks(name: &str) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let rest = stat.rsplit(')').next().unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

#[test]
fn a_reactor_at_the_connection_limit_with_no_room_sleeps() {
    // Two WebSockets (never evicted) fill the limit; a third client waits. The reactor looks
    // again now and then, but does not spin meanwhile.
    let s = start(
        |req: httpkit::Request| httpkit::as_channel(&req, httpkit::ChannelHandlers::new()),
        opts().max_connections(2),
    );
    let (_a, _) = ws_connect(addr(&s), "/", "");
    let (_b, _) = ws_connect(addr(&s), "/", "");
    let _waiting = TcpStream::connect(addr(&s)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = thread_ticks(httpkit_reactor_name());
    std::thread::sleep(Duration::from_secs(1));
    let used = thread_ticks(httpkit_reactor_name()) - before;
    // A busy loop takes most of the second (100 ticks); sleeping takes next to none.
    assert!(used < 50, "the paused reactor used {used} ticks of CPU in one second");
}

/// The reactor threads' name as the kernel keeps it (15 bytes: `httpkit-reactor-0` and `-1`
/// with several reactors show so too, and are summed).
fn httpkit_reactor_name() -> &'static str {
    "httpkit-reactor"
}
