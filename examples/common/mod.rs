//! What every serving example shares: a graceful stop on SIGINT (Ctrl-C) and SIGTERM (`kill`,
//! `docker stop`, systemd, Kubernetes), and on SIGHUP.
//!
//! Not an example of its own (cargo builds `examples/*.rs` and `examples/*/main.rs` as
//! examples, not this file); each example includes it with `mod common;`.
//!
//! ```ignore
//! let signals = common::Signals::install()?; // before the server is announced
//! let server = run_server(app, Options::default().port(port))?;
//! println!("app: listening on http://127.0.0.1:{}/", server.port().unwrap_or(port));
//! common::serve_until_signal(&signals, &server, Duration::from_secs(1));
//! Ok(())
//! ```

use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use httpkit::Server;

/// The stop signals, caught from [`Signals::install`] on.
#[derive(Debug)]
pub struct Signals(Receiver<()>);

impl Signals {
    /// Installs the handler: `ctrlc` with its `termination` feature, so SIGINT, SIGTERM and
    /// SIGHUP all end up here instead of killing the process. Call it before the server's
    /// address is printed, so that nobody who learnt the address can signal the process before
    /// the handler is in place.
    ///
    /// # Errors
    /// The handler could not be installed (e.g. one is installed already).
    pub fn install() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = tx.send(());
        })
        .map_err(std::io::Error::other)?;
        Ok(Self(rx))
    }

    /// Blocks until a stop signal arrives (or arrived since [`Signals::install`]).
    pub fn wait(&self) {
        // The sender lives in the handler for the rest of the process: `recv` only returns
        // with a signal.
        let _ = self.0.recv();
    }
}

/// Serves until a stop signal arrives, then stops `server` gracefully: no new connections,
/// requests in progress (a streaming answer included) finish for up to `grace`. Returns once
/// the server has stopped; `main` then returns `Ok(())`, so the process exits with status 0.
#[allow(dead_code)] // `stop.rs` waits with `Signals::wait` and stops its own way
pub fn serve_until_signal(signals: &Signals, server: &Server, grace: Duration) {
    signals.wait();
    eprintln!("stopping gracefully (up to {grace:?})");
    server.stop_graceful(grace);
}
