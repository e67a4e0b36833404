//! Fast downloads of a large file through loopback: a client that reads as fast as it can,
//! timed. Uses only the public API of every httpkit version, so the same file builds against an
//! older checkout for a before/after comparison.
//!
//! Run: `cargo bench --bench file_download -- [MIB] [RUNS]` (default 1024 MiB, 3 runs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use httpkit::{Body, Options, Request, Response};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let mib: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let len = mib << 20;
    let path = std::env::temp_dir().join(format!("httpkit-download-{mib}.bin"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(len) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        for _ in 0..mib {
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    let p2 = path.clone();
    let server = httpkit::run_server(
        move |_req: Request| match Body::from_path(&p2) {
            Ok(b) => Response::ok(b),
            Err(_) => Response::status_code(500),
        },
        Options::default().ip("127.0.0.1").port(0),
    )?;
    let addr = server.local_addr().ok_or_else(|| std::io::Error::other("no address"))?;
    let mut rates = Vec::new();
    // One untimed run warms the page cache.
    for run in 0..=runs {
        let mut c = TcpStream::connect(addr)?;
        c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let t = Instant::now();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = c.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        if got < len {
            return Err(std::io::Error::other(format!("short download: {got} of {len}")));
        }
        if run > 0 {
            rates.push(len as f64 / secs / (1 << 20) as f64);
        }
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "file download {mib} MiB: median {:.0} MiB/s (runs: {})",
        rates[rates.len() / 2],
        rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
    );
    server.stop();
    Ok(())
}
