//! The seed's "custom request queues": a pool with a 20480-job queue, 4 to 8 threads named
//! `worker-N`, injected into the server, and its queue length printed once a second — the
//! analogue of `(.size (:queue my-http-kit-pool))`.
//!
//! `cargo run --release --example custom_pool [PORT]` (default 8080). SIGINT (Ctrl-C) or SIGTERM
//! stops it gracefully.

mod common;

use std::time::Duration;

use httpkit::{run_server, Options, Request, Response, ThreadPool};

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let pool =
        ThreadPool::builder().queue_capacity(20480).min_threads(4).max_threads(8).name_prefix("worker-").build()?;

    let signals = common::Signals::install()?;
    let server =
        run_server(|_req: Request| Response::ok("hello"), Options::default().port(port).worker_pool(pool.clone()))?;
    println!("custom_pool: listening on http://127.0.0.1:{}/", server.port().unwrap_or(port));
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        println!(
            "queue size {} | threads {} (active {}) | completed {} | rejected {}",
            pool.queue_len(),
            pool.threads(),
            pool.active(),
            pool.completed(),
            pool.rejected()
        );
    });
    common::serve_until_signal(&signals, &server, Duration::from_millis(100));
    Ok(())
}
