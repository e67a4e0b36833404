//! The hello app on a chosen executor, for benchmarks: `bench_pools PORT default|per-task|inline`.

use httpkit::{run_server, Inline, Options, Request, Response, ThreadPerTask};

fn app(_req: Request) -> Response {
    Response::ok("hello HTTP!").header("content-type", "text/html")
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let opts = Options::default().port(port);
    let opts = match args.next().as_deref() {
        Some("per-task") => opts.worker_pool(ThreadPerTask::new()),
        Some("inline") => opts.worker_pool(Inline),
        _ => opts,
    };
    let server = run_server(app, opts)?;
    server.join();
    Ok(())
}
