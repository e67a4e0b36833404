//! Large request bodies spooled to disk, as nginx does: a body larger than
//! `Options::body_buffer_size` goes, piece by piece as it arrives, to an anonymous temporary
//! file. The writes run on the server's I/O threads (never the reactor thread); the reactor stops
//! reading the connection while too many bytes wait to be written. The handler runs once every
//! byte is on disk, and reads the body like a file (`Request::body_reader`). A server-wide disk
//! budget bounds what all spooled bodies hold; the file (and its share of the budget) is gone as
//! soon as the upload is aborted or the request is dropped.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use httpkit_reactor::{BodySpool, SpoolRefusal};

use crate::attachment::ConnHandle;
use crate::exchange::ServerShared;

/// Bytes of one body waiting to be written above which the connection is not read.
const IN_FLIGHT_HIGH: usize = 4 * httpkit_reactor::SPOOL_PIECE;
/// ... and below which reading resumes.
const IN_FLIGHT_LOW: usize = httpkit_reactor::SPOOL_PIECE;

/// Where spooled bodies go, and how much of the disk they may hold.
#[derive(Debug)]
pub(crate) struct SpoolConfig {
    /// The directory of the temporary files (the system's temporary directory when `None`).
    pub(crate) dir: Option<PathBuf>,
    /// Most bytes all spooled bodies may hold at once.
    pub(crate) budget: u64,
    /// Bytes they hold (reserved) now.
    pub(crate) used: AtomicU64,
}

impl SpoolConfig {
    /// Reserves `n` bytes of the budget; `false` if it cannot hold them.
    fn reserve(&self, n: u64) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = cur.checked_add(n).filter(|&v| v <= self.budget) else {
                return false;
            };
            match self.used.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

const BUSY: SpoolRefusal = SpoolRefusal { status: 503, reason: "server busy: too many request bodies spooled" };
const TOO_LARGE: SpoolRefusal = SpoolRefusal { status: 413, reason: "request body larger than the server spools" };
const FAILED: SpoolRefusal = SpoolRefusal { status: 500, reason: "the request body could not be stored" };

/// One body being spooled (and, once complete, the request's body).
pub(crate) struct Spool {
    server: Arc<ServerShared>,
    conn: ConnHandle,
    /// The temporary file, made by the first write (on an I/O thread).
    file: OnceLock<io::Result<File>>,
    state: Mutex<State>,
}

type OnFlushed = Box<dyn FnOnce(bool) + Send>;

struct State {
    /// Where the next piece goes in the file (pieces are written at their offset, so the I/O
    /// threads may write them in any order).
    len: u64,
    /// Bytes of the budget this body holds.
    reserved: u64,
    in_flight: usize,
    failed: bool,
    /// The reactor stopped reading for this spool: resume it once the writes catch up.
    paused: bool,
    /// The body is complete: what to do once its last write is done.
    on_flushed: Option<OnFlushed>,
    ended: bool,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("len", &self.lock().len).finish_non_exhaustive()
    }
}

impl Spool {
    /// A spool for a body of `declared` bytes (`None`: chunked, reserved as it arrives).
    pub(crate) fn open(
        server: &Arc<ServerShared>,
        conn: &ConnHandle,
        declared: Option<u64>,
    ) -> Result<Arc<Self>, SpoolRefusal> {
        let reserved = declared.unwrap_or(0);
        if reserved > server.spool.budget {
            // It would never fit: no use retrying.
            return Err(TOO_LARGE);
        }
        if !server.spool.reserve(reserved) {
            return Err(BUSY);
        }
        Ok(Arc::new(Self {
            server: server.clone(),
            conn: conn.clone(),
            file: OnceLock::new(),
            state: Mutex::new(State {
                len: 0,
                reserved,
                in_flight: 0,
                failed: false,
                paused: false,
                on_flushed: None,
                ended: false,
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one piece at `offset` (an I/O thread).
    pub(crate) fn write_piece(self: &Arc<Self>, piece: &Bytes, offset: u64) {
        let file = self.file.get_or_init(|| match &self.server.spool.dir {
            Some(dir) => tempfile::tempfile_in(dir),
            None => tempfile::tempfile(),
        });
        let result = match file {
            Ok(f) => f.write_all_at(piece, offset),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        if let Err(e) = &result {
            self.server.loggers.error(&format!("spooling a request body failed: {e}"));
        }
        let mut st = self.lock();
        st.in_flight -= piece.len();
        st.failed |= result.is_err();
        if st.paused && (st.in_flight <= IN_FLIGHT_LOW || st.failed) {
            st.paused = false;
            // A failure is reported at the next piece (or at the end).
            self.conn.resume_body();
        }
        let done = if st.ended && st.in_flight == 0 { st.on_flushed.take().map(|f| (f, !st.failed)) } else { None };
        drop(st);
        if let Some((f, ok)) = done {
            f(ok);
        }
    }

    /// The whole body arrived: `then(ok)` runs once it is on disk (here if it already is, or
    /// on the I/O thread that writes its last piece); `ok` is `false` if a write failed.
    pub(crate) fn when_flushed(&self, then: impl FnOnce(bool) + Send + 'static) {
        let mut st = self.lock();
        st.ended = true;
        if st.in_flight == 0 {
            let ok = !st.failed;
            drop(st);
            then(ok);
        } else {
            st.on_flushed = Some(Box::new(then));
        }
    }

    /// The body's length.
    pub(crate) fn len(&self) -> u64 {
        self.lock().len
    }

    /// The file (once flushed).
    pub(crate) fn file(&self) -> Option<&File> {
        self.file.get()?.as_ref().ok()
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // The file itself has no name: it is gone with its last handle, here.
        let reserved = self.state.get_mut().map_or_else(|e| e.into_inner().reserved, |s| s.reserved);
        self.server.spool.release(reserved);
    }
}

impl BodySpool for Spool {
    /// On the reactor thread: the piece goes to an I/O thread.
    fn write(self: Arc<Self>, piece: Bytes) -> Result<bool, SpoolRefusal> {
        let n = piece.len();
        let mut st = self.lock();
        if st.failed {
            return Err(FAILED);
        }
        // A chunked body reserves its share of the budget as it grows.
        let end = st.len + n as u64;
        if end > st.reserved {
            if !self.server.spool.reserve(end - st.reserved) {
                return Err(BUSY);
            }
            st.reserved = end;
        }
        let offset = st.len;
        st.len = end;
        st.in_flight += n;
        let room = st.in_flight < IN_FLIGHT_HIGH;
        st.paused |= !room;
        drop(st);
        let io = self.server.io.clone();
        io.submit(crate::pump::IoJob::Spool(self, piece, offset));
        Ok(room)
    }

    fn pending(&self) -> usize {
        self.lock().in_flight
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}
