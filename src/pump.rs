//! Response bodies that move as the client reads them: a file, a reader or a stream is produced
//! piece by piece only while its connection has room. When it has none, the job ends and the
//! rest of the body waits, parked on the connection, for the reactor's "drained" event
//! (`Dispatch::on_drained`), which schedules the next pieces: a file's on the server's I/O
//! threads (disk reads never run on the reactor thread), a reader's or a stream's (user code) on
//! the worker pool. No thread ever waits for a slow client, and every connection holds at most
//! the write high-water mark plus one piece, whatever the pool (`Inline` included).

use std::fs::File;
use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use crossbeam_channel::Sender;
use httpkit_codec::h1::BodyEncoder;

use crate::exchange::{Exchange, PIECE};
use crate::logging::panic_message;
use crate::pool::{Job, Task};
use crate::response::ChunkIter;

/// Piece size for files: large, so a fast client costs few reads and hand-offs.
const FILE_PIECE: usize = 256 * 1024;

/// What a pumped body is read from.
pub(crate) enum Source {
    /// A file and the bytes of it still to send (its `Content-Length` was announced).
    File { file: File, left: u64 },
    /// A reader of unknown length.
    Reader(Box<dyn Read + Send>),
    /// An iterator of chunks.
    Stream(ChunkIter),
}

impl Source {
    fn is_file(&self) -> bool {
        matches!(self, Source::File { .. })
    }

    /// The next piece; `None` at the end.
    fn next_piece(&mut self) -> io::Result<Option<Bytes>> {
        match self {
            Source::File { file, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                // Sized to what is left and read whole: a file that shrank is an error (its
                // length was promised). Read into spare capacity: never zeroed first.
                let want = (*left).min(FILE_PIECE as u64);
                let mut buf = Vec::with_capacity(want as usize);
                Read::take(&mut *file, want).read_to_end(&mut buf)?;
                if (buf.len() as u64) < want {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file is shorter than announced"));
                }
                *left -= want;
                Ok(Some(Bytes::from(buf)))
            }
            Source::Reader(r) => loop {
                let mut buf = vec![0u8; PIECE];
                match r.read(&mut buf) {
                    Ok(0) => return Ok(None),
                    Ok(n) => {
                        buf.truncate(n);
                        return Ok(Some(Bytes::from(buf)));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
            Source::Stream(it) => loop {
                match it.next() {
                    None => return Ok(None),
                    Some(Ok(b)) if b.is_empty() => {}
                    Some(item) => return item.map(Some),
                }
            },
        }
    }
}

/// The rest of one response body, and where it goes.
pub(crate) struct Pump {
    ex: Exchange,
    enc: BodyEncoder,
    /// The connection closes after the body.
    close: bool,
    source: Source,
}

/// What became of a pump's turn.
enum Turn {
    /// The body is complete, failed, or its connection is gone.
    Over,
    /// The connection is full: the pump waits, parked on the connection, for its drain.
    Parked,
    /// The connection drained while the pump was being parked: go on.
    Again(Box<Pump>),
}

impl Pump {
    /// Sends the body from `source` after a head already written: produces what fits now (a
    /// file only off the reactor thread), then leaves the rest to the connection's drain.
    pub(crate) fn start(ex: &Exchange, enc: BodyEncoder, close: bool, source: Source) {
        let pump = Box::new(Pump { ex: ex.clone(), enc, close, source });
        if pump.source.is_file() && httpkit_reactor::on_reactor_thread() {
            // The `Inline` pool: disk reads never stall the loop.
            let io = pump.ex.server.io.clone();
            io.submit(IoJob::Body(pump));
        } else {
            pump.drive();
        }
    }

    /// Sends pieces while the connection has room.
    fn drive(self: Box<Self>) {
        let mut pump = self;
        loop {
            match pump.turn() {
                Turn::Over | Turn::Parked => return,
                Turn::Again(p) => pump = p,
            }
        }
    }

    /// One turn: wait for this body's turn among the connection's, or send pieces until the
    /// connection is full (park) or the body ends.
    fn turn(self: Box<Self>) -> Turn {
        if !self.ex.conn.is_front(self.ex.seq) {
            return self.wait_turn();
        }
        self.produce()
    }

    /// Pipelined answers' bodies go one at a time, in request order: the bytes of a later one
    /// wait in memory until the earlier answers are written, and would count against the
    /// earlier one's room (each would wait for the other to drain). Waits, parked, until every
    /// earlier answer is complete (the reactor then says "drained").
    fn wait_turn(self: Box<Self>) -> Turn {
        let seq = self.ex.seq;
        self.park_until(move |conn| conn.is_front(seq))
    }

    fn produce(mut self: Box<Self>) -> Turn {
        let high_water = self.ex.server.write_high_water;
        loop {
            if self.ex.conn.is_closed() {
                return Turn::Over;
            }
            if self.ex.conn.queued_bytes() > high_water {
                return self.park();
            }
            // Readers and streams are user code: a panic there ends this answer, not the thread.
            let piece = match catch_unwind(AssertUnwindSafe(|| self.source.next_piece())) {
                Ok(p) => p,
                Err(panic) => {
                    self.ex.server.loggers.error(&format!(
                        "response body panicked on {}: {}",
                        self.ex.method,
                        panic_message(&*panic)
                    ));
                    self.ex.fail(true);
                    return Turn::Over;
                }
            };
            match piece {
                Ok(Some(b)) => {
                    if !self.ex.write_piece(self.enc, b) {
                        return Turn::Over;
                    }
                }
                Ok(None) => {
                    self.ex.finish(self.enc, self.close);
                    return Turn::Over;
                }
                Err(e) => {
                    self.ex.server.loggers.error(&format!("reading a response body failed: {e}"));
                    self.ex.conn.abort();
                    return Turn::Over;
                }
            }
        }
    }

    /// Waits, parked on the connection, for its write queue to drain.
    fn park(self: Box<Self>) -> Turn {
        let low_water = self.ex.server.write_high_water / 4;
        self.park_until(move |conn| conn.queued_bytes() <= low_water)
    }

    /// Parks until the connection's next "drained" event, unless `ready` already holds once
    /// parked (the event may have passed meanwhile).
    fn park_until(self: Box<Self>, ready: impl Fn(&crate::attachment::ConnHandle) -> bool) -> Turn {
        let conn = self.ex.conn.clone();
        let seq = self.ex.seq;
        conn.attachment().park_body(self);
        conn.notify_when_drained();
        // The reactor marks a connection closed before `on_close` takes what is parked (under
        // the same lock), and looks at `drained_wanted` only as the queue shrinks: whatever
        // happened meanwhile, either it takes the pump or this does.
        if conn.is_closed() {
            drop(conn.attachment().unpark_all());
            return Turn::Over;
        }
        if ready(&conn) {
            if let Some(p) = conn.attachment().unpark_body(seq) {
                return Turn::Again(p);
            }
        }
        Turn::Parked
    }

    /// The request whose answer this is.
    pub(crate) fn seq(&self) -> u64 {
        self.ex.seq
    }

    /// The connection drained (reactor thread): the next pieces, off this thread.
    pub(crate) fn resume(self: Box<Self>) {
        if self.source.is_file() {
            let io = self.ex.server.io.clone();
            io.submit(IoJob::Body(self));
            return;
        }
        let pool = self.ex.server.pool.clone();
        if let Err(job) = pool.execute(Job::new(self)) {
            // A full (or stopped) pool must not stall an answer already begun.
            job.reject();
        }
    }
}

impl Task for Pump {
    fn run(self: Box<Self>) {
        self.drive();
    }

    /// The pool is full: the next pieces go to the I/O threads instead (rare; a reader that
    /// blocks then delays the files behind it there, never the loop).
    fn reject(self: Box<Self>) {
        let io = self.ex.server.io.clone();
        io.submit(IoJob::Body(self));
    }
}

/// Work for the I/O threads.
pub(crate) enum IoJob {
    /// The next pieces of a response body.
    Body(Box<Pump>),
    /// A piece of a spooled request body, and where it goes in the file.
    Spool(Arc<crate::spool::Spool>, Bytes, u64),
}

impl IoJob {
    fn run(self) {
        match self {
            IoJob::Body(p) => p.drive(),
            IoJob::Spool(s, piece, offset) => s.write_piece(&piece, offset),
        }
    }

    /// No I/O thread can take the job.
    fn fail(self) {
        match self {
            IoJob::Body(p) => p.ex.conn.abort(),
            IoJob::Spool(s, piece, offset) => {
                // Written here rather than lost (the reactor thread: only if threads cannot start).
                s.write_piece(&piece, offset);
            }
        }
    }
}

/// The threads that read file bodies and write spooled request bodies (and take a reader's turn
/// when the pool is full), so that disk I/O never runs on the reactor thread: a read from a cold
/// page cache, or a write under dirty-page pressure, can take milliseconds. Started at first use.
#[derive(Default)]
pub(crate) struct IoThreads {
    tx: OnceLock<Option<Sender<IoJob>>>,
    name: String,
}

impl std::fmt::Debug for IoThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoThreads").field("name", &self.name).finish_non_exhaustive()
    }
}

/// How many I/O threads a server starts.
const IO_THREADS: usize = 2;

impl IoThreads {
    /// Threads named `name` then a number.
    pub(crate) fn new(name: String) -> Arc<Self> {
        Arc::new(Self { tx: OnceLock::new(), name })
    }

    /// Queues `job` (the queue is bounded: a connection has a body parked per answer in
    /// flight, at most its pipelining depth, and at most four spool pieces in flight).
    pub(crate) fn submit(&self, job: IoJob) {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = crossbeam_channel::unbounded::<IoJob>();
            let mut started = 0;
            for i in 0..IO_THREADS {
                let rx = rx.clone();
                let b = std::thread::Builder::new().name(format!("{}{i}", self.name));
                // Ends when the server (which holds the sender) is gone.
                if b.spawn(move || rx.iter().for_each(IoJob::run)).is_ok() {
                    started += 1;
                }
            }
            (started > 0).then_some(tx)
        });
        match tx {
            Some(tx) => {
                if let Err(e) = tx.send(job) {
                    e.0.fail();
                }
            }
            None => {
                log::error!("httpkit: no I/O thread could be started");
                job.fail();
            }
        }
    }
}
