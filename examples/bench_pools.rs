//! The hello app on a chosen executor, for benchmarks:
//! `bench_pools PORT default|per-task|inline [REACTORS]` (default 1 reactor).
//! SIGINT (Ctrl-C) or SIGTERM stops it gracefully.

mod common;

use std::time::Duration;

use httpkit::{run_server, Inline, Options, Request, Response, ThreadPerTask};

fn app(_req: Request) -> Response {
    Response::ok("hello HTTP!").header("content-type", "text/html")
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let pool = args.next().unwrap_or_else(|| "default".to_owned());
    let reactors = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let opts = Options::default().port(port).reactors(reactors);
    let opts = match pool.as_str() {
        "per-task" => opts.worker_pool(ThreadPerTask::new()),
        "inline" => opts.worker_pool(Inline),
        _ => opts,
    };
    let signals = common::Signals::install()?;
    let server = run_server(app, opts)?;
    println!(
        "bench_pools: listening on http://127.0.0.1:{}/ ({pool}, {reactors} reactors)",
        server.port().unwrap_or(port)
    );
    common::serve_until_signal(&signals, &server, Duration::from_millis(100));
    Ok(())
}
