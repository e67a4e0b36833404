//! The two kinds of sockets the reactor serves, behind one type.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::event::Source;
use mio::{Interest, Registry, Token};

#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
        }
    }

    pub(crate) fn shutdown_write(&self) {
        let _ = match self {
            Self::Tcp(s) => s.shutdown(Shutdown::Write),
            Self::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

// Through a shared reference: the reactor reads and writes, and a worker holding a direct-write
// grant writes (see `ConnHandle::try_write_direct`), never at the same time as the reactor.
impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write_vectored(bufs),
            Stream::Unix(s) => (&*s).write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Up to this many bytes, two pieces are copied together and written with one `write` rather
/// than a `writev` of two: the kernel's single-buffer path is the cheaper one, and a small
/// answer (a head and a body of a kilobyte or so, a WebSocket frame head and its payload)
/// costs less to copy than to describe (on loopback, 0.3–0.4 µs less per call up to about
/// 1 KiB, about even at 4 KiB).
const JOIN_MAX: usize = 2048;

thread_local! {
    /// Where two pieces are joined (per thread: no zeroing per call, and no lock).
    static JOINED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes `a` then `b` with one system call (one `write` for small or single pieces, else a
/// `writev`): what it returns is how much of `a ++ b` went out.
pub(crate) fn write_pair(stream: &Stream, a: &[u8], b: &[u8]) -> io::Result<usize> {
    let mut w = stream;
    if b.is_empty() {
        return w.write(a);
    }
    if a.is_empty() {
        return w.write(b);
    }
    if a.len() + b.len() <= JOIN_MAX {
        let joined = JOINED.try_with(|j| {
            let Ok(mut buf) = j.try_borrow_mut() else {
                return None;
            };
            buf.clear();
            buf.reserve(JOIN_MAX);
            buf.extend_from_slice(a);
            buf.extend_from_slice(b);
            Some(w.write(&buf))
        });
        if let Ok(Some(res)) = joined {
            return res;
        }
    }
    w.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
}

/// `mio::event::Source` for an enum of a TCP and a Unix variant: delegate to the variant.
macro_rules! delegate_source {
    ($t:ty) => {
        impl Source for $t {
            fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                match self {
                    Self::Tcp(s) => s.register(r, t, i),
                    Self::Unix(s) => s.register(r, t, i),
                }
            }
            fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                match self {
                    Self::Tcp(s) => s.reregister(r, t, i),
                    Self::Unix(s) => s.reregister(r, t, i),
                }
            }
            fn deregister(&mut self, r: &Registry) -> io::Result<()> {
                match self {
                    Self::Tcp(s) => s.deregister(r),
                    Self::Unix(s) => s.deregister(r),
                }
            }
        }
    };
}

#[derive(Debug)]
pub(crate) enum MioListener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

impl MioListener {
    pub(crate) fn accept(&self) -> io::Result<(Stream, Option<SocketAddr>, Option<SocketAddr>)> {
        match self {
            Self::Tcp(l) => {
                let (s, peer) = l.accept()?;
                let _ = s.set_nodelay(true);
                let local = s.local_addr().ok();
                Ok((Stream::Tcp(s), Some(peer), local))
            }
            Self::Unix(l) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), None, None))
            }
        }
    }
}

delegate_source!(MioListener);
