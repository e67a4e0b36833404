//! Slow clients hold no worker (issue 15): `wrk` on `GET /` alone, then beside 200 slow
//! downloaders of a large file (each reading about 64 KiB/s through a small receive buffer),
//! in interleaved rounds. Reports `GET /` req/s and p99 for both, the worker pool's busy time
//! (sampled every millisecond: the main figure, near zero from the downloads), the reactor
//! loop's longest turn, and the process's RSS; then the loop's longest turn during fast
//! downloads of a large file.
//!
//! Run: `ulimit -n 20000; cargo bench --bench slow_downloads -- [SECS] [DOWNLOADERS] [ROUNDS]`
//! (default 8 s, 200 downloaders, 3 rounds; needs `wrk`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use httpkit::{Body, Options, Request, Response, ThreadPool};

const FILE_MIB: u64 = 256;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Clients reading `/big` at about 64 KiB/s each, from one thread.
struct Downloaders {
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Downloaders {
    fn start(addr: SocketAddr, n: usize) -> std::io::Result<Self> {
        let mut socks = Vec::with_capacity(n);
        for _ in 0..n {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            s.set_recv_buffer_size(64 << 10)?;
            s.connect(&addr.into())?;
            let mut s: TcpStream = s.into();
            s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")?;
            s.set_nonblocking(true)?;
            socks.push(s);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(AtomicU64::new(0));
        let (st, rd) = (stop.clone(), read.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 6554];
            while !st.load(Ordering::Relaxed) {
                let tick = Instant::now();
                for s in &mut socks {
                    if let Ok(k) = s.read(&mut buf) {
                        rd.fetch_add(k as u64, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(100).saturating_sub(tick.elapsed()));
            }
        });
        Ok(Self { stop, read, thread: Some(thread) })
    }
}

impl Drop for Downloaders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Samples the pool's busy count every millisecond.
struct Busy {
    sum: AtomicU64,
    samples: AtomicU64,
}

fn wrk(addr: SocketAddr, secs: u64) -> (f64, f64) {
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{secs}s"), "--latency", &format!("http://{addr}/")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let rps =
        out.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0);
    let p99 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| {
            let v = v.trim();
            let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
            let num: f64 = num.parse().unwrap_or(0.0);
            match unit {
                "us" => num / 1000.0,
                "s" => num * 1000.0,
                _ => num,
            }
        })
        .unwrap_or(0.0);
    (rps, p99)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let secs: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let path = std::env::temp_dir().join(format!("httpkit-slow-{FILE_MIB}.bin"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(FILE_MIB << 20) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        for _ in 0..FILE_MIB {
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    let pool = Arc::new(ThreadPool::builder().threads(4).build()?);
    let p2 = path.clone();
    let server = httpkit::run_server(
        move |req: Request| match req.uri() {
            "/big" => Body::from_path(&p2).map_or_else(|_| Response::status_code(500), Response::ok),
            _ => Response::ok("hello HTTP!"),
        },
        Options::default().ip("127.0.0.1").port(0).worker_pool(pool.clone()).max_connections(n + 1000),
    )?;
    let addr = server.local_addr().ok_or_else(|| std::io::Error::other("no address"))?;
    let busy = Arc::new(Busy { sum: AtomicU64::new(0), samples: AtomicU64::new(0) });
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (busy, done, pool) = (busy.clone(), done.clone(), pool.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                busy.sum.fetch_add(pool.active() as u64, Ordering::Relaxed);
                busy.samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let reset = |b: &Busy| {
        b.sum.store(0, Ordering::Relaxed);
        b.samples.store(0, Ordering::Relaxed);
        server.take_longest_loop_turn();
    };
    // Busy workers (mean of the samples) and the loop's longest turn since `reset`.
    let read_out = |b: &Busy| {
        let s = b.samples.load(Ordering::Relaxed).max(1) as f64;
        (b.sum.load(Ordering::Relaxed) as f64 / s, server.take_longest_loop_turn())
    };

    // The downloads alone: what they cost the workers and the loop.
    let dl = Downloaders::start(addr, n)?;
    std::thread::sleep(Duration::from_secs(2));
    reset(&busy);
    let before = dl.read.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(secs));
    let rate = (dl.read.load(Ordering::Relaxed) - before) as f64 / secs as f64 / 1024.0;
    let (alone_busy, alone_turn) = read_out(&busy);
    let alone_rss = rss_mib();
    drop(dl);
    println!(
        "{n} slow downloads alone: {rate:.0} KiB/s in all ({:.0} KiB/s each), workers busy {:.4} of 4, \
         longest loop turn {:?}, RSS {alone_rss:.0} MiB",
        rate / n as f64,
        alone_busy,
        alone_turn
    );

    // Per phase: req/s, p99 ms, workers busy, longest turn, RSS MiB.
    type Row = (f64, f64, f64, Duration, f64);
    let mut rows: [Vec<Row>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (k, with) in [false, true].into_iter().enumerate() {
            let dl = if with { Some(Downloaders::start(addr, n)?) } else { None };
            if with {
                std::thread::sleep(Duration::from_secs(2));
            }
            reset(&busy);
            let (rps, p99) = wrk(addr, secs);
            let (b, turn) = read_out(&busy);
            let rss = rss_mib();
            println!(
                "round {round} {:>16}: {rps:>9.0} req/s  p99 {p99:>6.2} ms  workers busy {b:.2}  longest turn {turn:?}  RSS {rss:.0} MiB",
                if with { "with downloaders" } else { "GET / alone" }
            );
            rows[k].push((rps, p99, b, turn, rss));
            drop(dl);
        }
    }
    println!("\n| `GET /` with wrk -t2 -c64 | req/s | p99 ms | workers busy (of 4) | longest loop turn | RSS MiB |");
    println!("|---|---|---|---|---|---|");
    for (k, name) in ["alone", &format!("beside {n} slow downloads")].iter().enumerate() {
        let r = &rows[k];
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.1} ms | {:.0} |",
            median(r.iter().map(|x| x.0).collect()),
            median(r.iter().map(|x| x.1).collect()),
            median(r.iter().map(|x| x.2).collect()),
            median(r.iter().map(|x| x.3.as_secs_f64() * 1000.0).collect()),
            median(r.iter().map(|x| x.4).collect()),
        );
    }

    // Fast downloads: how long can one turn of the loop take while a client reads a large
    // file as fast as it can (the reads are on the I/O threads, the loop only writes)?
    reset(&busy);
    let t = Instant::now();
    let mut total = 0u64;
    for _ in 0..3 {
        let mut c = TcpStream::connect(addr)?;
        c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = c.read(&mut buf)?;
            if k == 0 {
                break;
            }
            total += k as u64;
        }
    }
    let (b, turn) = read_out(&busy);
    println!(
        "\n3 fast downloads of {FILE_MIB} MiB: {:.0} MiB/s, longest loop turn {turn:?}, workers busy {b:.3}",
        total as f64 / t.elapsed().as_secs_f64() / (1 << 20) as f64
    );
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    server.stop();
    Ok(())
}
