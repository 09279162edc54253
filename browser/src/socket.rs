//! Socket plumbing shared by the control socket, its `ctl` client and the profile's instance socket: private listening sockets, their accept thread, capped line reading and signal-free sending.
//!
//! # Socket creation
//!
//! A socket must never be reachable with looser permissions than 0600. `bind(2)` creates the
//! file with the process umask, and `fchmod` on a socket descriptor does not change the file, so
//! [`bind_private`] binds inside a fresh 0700 directory (mkdtemp) next to the target, chmod-s the
//! socket to 0600 there (nobody else can reach it yet), then moves it into place with
//! `rename(2)`, which is atomic, keeps the inode the listener is bound to, and replaces a stale
//! socket. The umask is process-wide and other threads create files, so changing it is not an
//! option.
//!
//! # Threads
//!
//! An [`Acceptor`] owns one thread that waits (poll) on the listening socket and on a wake pipe
//! that its `Drop` closes; it hands each connection to a callback on that thread.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::MsgFlags;
use thiserror::Error;

/// The longest path `bind(2)` takes (`sun_path` is 108 bytes, including the final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Why a socket (the control socket, or a profile's instance socket) could not be created.
#[derive(Debug, Error)]
pub enum SocketError {
    /// `sun_path` is short, and Warren binds in a temporary directory next to the target first.
    #[error(
        "the socket path {} is too long for a Unix socket (Warren needs it under {} bytes); choose a shorter path",
        .0.display(),
        MAX_SOCKET_PATH - TMP_OVERHEAD
    )]
    PathTooLong(PathBuf),
    /// Someone answers on the socket already.
    #[error(
        "another process is already listening on {}; stop it or choose another path",
        .0.display()
    )]
    InUse(PathBuf),
    /// Something that is not a socket is in the way; it is never replaced.
    #[error("{} exists and is not a socket; remove it or choose another path", .0.display())]
    NotASocket(PathBuf),
    /// The path ends in `..` or `/`.
    #[error("{} does not name a file; give a path such as /tmp/warren.sock", .0.display())]
    NoFileName(PathBuf),
    /// A system call failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SocketError + 'a {
    move |source| SocketError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Writes all of `buf` with `MSG_NOSIGNAL`, so a vanished peer is an error, never a SIGPIPE.
pub(crate) fn send_all(stream: &UnixStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match nix::sys::socket::send(stream.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What [`LineReader::next_line`] found.
pub(crate) enum LineEvent<'a> {
    /// A complete line, without its newline.
    Line(&'a [u8]),
    /// A line longer than the cap; the rest of it is skipped, unbuffered, by the next call.
    TooLong,
    /// The peer closed (or half-closed) its side; an unterminated last line is dropped.
    Eof,
}

/// Reads newline-terminated lines with a hard cap on what it buffers.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    cap: usize,
    buf: Vec<u8>,
    skipping: bool,
}

impl<R: Read> LineReader<R> {
    pub(crate) fn new(inner: R, cap: usize) -> Self {
        LineReader {
            inner: BufReader::new(inner),
            cap,
            buf: Vec::new(),
            skipping: false,
        }
    }

    pub(crate) fn next_line(&mut self) -> io::Result<LineEvent<'_>> {
        self.buf.clear();
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(LineEvent::Eof);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            let consumed = newline.map_or(available.len(), |i| i + 1);
            if self.skipping {
                self.inner.consume(consumed);
                if newline.is_some() {
                    self.skipping = false;
                }
                continue;
            }
            if self.buf.len() + chunk.len() > self.cap {
                self.buf.clear();
                self.inner.consume(consumed);
                self.skipping = newline.is_none();
                return Ok(LineEvent::TooLong);
            }
            self.buf.extend_from_slice(chunk);
            self.inner.consume(consumed);
            if newline.is_some() {
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                return Ok(LineEvent::Line(&self.buf));
            }
        }
    }
}

/// A Unix socket bound with mode 0600, and the identity (device, inode) of its file. Dropping it
/// removes the file if it is still this socket.
pub(crate) struct PrivateSocket {
    listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

/// Room the temporary bind location needs beyond the target's directory: "/.warren-XXXXXX/s".
const TMP_OVERHEAD: usize = "/.warren-XXXXXX/s".len();

/// Creates a listening socket at `path` with mode 0600 and no moment of looser permissions; a
/// stale socket (nobody listening) is replaced, a live one or a non-socket is an error.
pub(crate) fn bind_private(path: &Path) -> Result<PrivateSocket, SocketError> {
    if path.file_name().is_none() {
        return Err(SocketError::NoFileName(path.to_owned()));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if parent.as_os_str().len() + TMP_OVERHEAD > MAX_SOCKET_PATH
        || path.as_os_str().len() > MAX_SOCKET_PATH
    {
        return Err(SocketError::PathTooLong(path.to_owned()));
    }

    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(SocketError::NotASocket(path.to_owned()));
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(SocketError::InUse(path.to_owned())),
            // Nobody listens: a stale socket of a process that died. `rename` replaces it.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("check the existing socket", path)(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", path)(e)),
    }

    let mut template = parent.as_os_str().to_owned();
    template.push("/.warren-XXXXXX");
    let tmp_dir = nix::unistd::mkdtemp(Path::new(&template))
        .map_err(|e| io_err("create a temporary directory in", &parent)(e.into()))?;
    let tmp_dir = TmpDir(tmp_dir);
    let tmp_sock = tmp_dir.0.join("s");

    let listener = UnixListener::bind(&tmp_sock).map_err(io_err("bind", &tmp_sock))?;
    fs::set_permissions(&tmp_sock, fs::Permissions::from_mode(0o600))
        .map_err(io_err("set the permissions of", &tmp_sock))?;
    let meta = fs::symlink_metadata(&tmp_sock).map_err(io_err("inspect", &tmp_sock))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("configure", &tmp_sock))?;
    // Atomic: the path never lacks a socket, nor shows one with other permissions; a stale
    // socket is replaced. The listener stays bound to the same inode under its new name.
    fs::rename(&tmp_sock, path).map_err(io_err("move the new socket to", path))?;
    log::debug!(target: "socket", "listening on {}", path.display());
    Ok(PrivateSocket {
        listener,
        path: path.to_owned(),
        identity: (meta.dev(), meta.ino()),
    })
}

/// Removes the temporary bind directory (and a socket left in it on failure).
struct TmpDir(PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0.join("s"));
        let _ = fs::remove_dir(&self.0);
    }
}

impl Drop for PrivateSocket {
    fn drop(&mut self) {
        // Remove the file unless another process has put its own socket at the path meanwhile.
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The accept thread of a [`PrivateSocket`]. Dropping it stops the thread and removes the socket
/// file (see [`PrivateSocket`]'s `Drop`).
pub(crate) struct Acceptor {
    wake: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    /// Held for its `Drop`, which runs after `Drop::drop` below has joined the thread.
    _socket: PrivateSocket,
}

impl Acceptor {
    /// Starts accepting; `on_conn` gets each new connection (in blocking mode) on the accept
    /// thread, so it must hand slow work to another thread.
    pub(crate) fn spawn(
        socket: PrivateSocket,
        name: &str,
        mut on_conn: impl FnMut(UnixStream) + Send + 'static,
    ) -> Result<Acceptor, SocketError> {
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| io_err("create a wake-up pipe for", &socket.path)(e.into()))?;
        let listener = socket
            .listener
            .try_clone()
            .map_err(io_err("duplicate the descriptor of", &socket.path))?;
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || accept_loop(&listener, &wake_read, &mut on_conn))
            .map_err(io_err("start the accept thread of", &socket.path))?;
        Ok(Acceptor {
            wake: Some(wake_write),
            thread: Some(thread),
            _socket: socket,
        })
    }
}

fn accept_loop(listener: &UnixListener, wake: &OwnedFd, on_conn: &mut dyn FnMut(UnixStream)) {
    loop {
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                log::error!(target: "socket", "poll on a listening socket failed: {e}");
                return;
            }
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            // The write end was closed: we are being dropped.
            return;
        }
        if fds[0].revents().is_none_or(|r| r.is_empty()) {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(false).is_ok() {
                    on_conn(stream);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                // Out of descriptors, most likely: wait instead of spinning on a ready socket.
                log::warn!(target: "socket", "accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn line_reader_caps_and_skips() {
        let input: &[u8] = b"short\r\n0123456789abc\nnext\n\nunterm";
        let mut reader = LineReader::new(input, 10);
        let mut events = Vec::new();
        loop {
            match reader.next_line().unwrap() {
                LineEvent::Line(l) => events.push(String::from_utf8(l.to_vec()).unwrap()),
                LineEvent::TooLong => events.push("<too long>".into()),
                LineEvent::Eof => break,
            }
        }
        assert_eq!(events, ["short", "<too long>", "next", ""]);

        // A line far longer than the reader's buffer is skipped without being kept.
        let mut big = vec![b'x'; 100_000];
        big.extend_from_slice(b"\nafter\n");
        let mut reader = LineReader::new(big.as_slice(), 1000);
        assert!(matches!(reader.next_line().unwrap(), LineEvent::TooLong));
        assert!(reader.buf.capacity() <= 1000 + 8192);
        assert!(matches!(
            reader.next_line().unwrap(),
            LineEvent::Line(b"after")
        ));
        assert!(matches!(reader.next_line().unwrap(), LineEvent::Eof));
    }

    #[test]
    fn private_socket_permissions_and_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let socket = bind_private(&path).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing but the socket is left in the directory: the bind directory is gone.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // The listener is bound to the file that was moved into place.
        assert!(UnixStream::connect(&path).is_ok());

        // A live socket is not taken over.
        match bind_private(&path) {
            Err(SocketError::InUse(p)) => assert_eq!(p, path),
            other => panic!("{:?}", other.err()),
        }
        drop(socket);
        assert!(!path.exists(), "Drop removes the socket");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        // A stale socket is replaced.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let socket = bind_private(&path).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        drop(socket);

        // Something that is not a socket is never replaced.
        fs::write(&path, "precious").unwrap();
        assert!(matches!(
            bind_private(&path),
            Err(SocketError::NotASocket(_))
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
        fs::remove_file(&path).unwrap();

        // A socket someone else put at the path after us is left alone by our Drop.
        let socket = bind_private(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(socket);
        assert!(path.exists());
        drop(other);
    }

    #[test]
    fn refuses_unusable_paths() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("x".repeat(120));
        let err = bind_private(&long).err().unwrap();
        assert!(matches!(err, SocketError::PathTooLong(_)), "{err}");
        assert!(err.to_string().contains("choose a shorter path"), "{err}");
        let missing_parent = dir.path().join("no/such/dir/s");
        let err = bind_private(&missing_parent).err().unwrap();
        assert!(matches!(err, SocketError::Io { .. }), "{err}");
        assert!(matches!(
            bind_private(Path::new("/")),
            Err(SocketError::NoFileName(_))
        ));
        assert!(matches!(
            bind_private(&dir.path().join("..")),
            Err(SocketError::NoFileName(_))
        ));
    }

    #[test]
    fn acceptor_serves_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let (tx, rx) = mpsc::channel();
        let acceptor = Acceptor::spawn(bind_private(&path).unwrap(), "test-accept", move |s| {
            // Connections arrive in blocking mode.
            let _ = send_all(&s, b"hello\n");
            let _ = tx.send(());
        })
        .unwrap();
        for _ in 0..3 {
            let stream = UnixStream::connect(&path).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut lines = LineReader::new(&stream, 100);
            assert!(matches!(
                lines.next_line().unwrap(),
                LineEvent::Line(b"hello")
            ));
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        // Dropping joins the accept thread (which owns the callback) and removes the socket.
        drop(acceptor);
        assert!(rx.recv_timeout(Duration::from_secs(1)).is_err());
        assert!(!path.exists());
        assert!(UnixStream::connect(&path).is_err());
    }

    #[test]
    fn send_all_to_a_closed_peer_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        send_all(&a, b"fits in the buffer").unwrap();
        drop(b);
        let err = send_all(&a, b"nobody reads this").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        // A large write is sent whole across short sends.
        let (mut a, b) = UnixStream::pair().unwrap();
        let payload = vec![7u8; 4 << 20];
        let writer = {
            let payload = payload.clone();
            thread::spawn(move || send_all(&b, &payload))
        };
        let mut received = Vec::new();
        io::copy(&mut (&mut a).take(payload.len() as u64), &mut received).unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(received, payload);
    }
}
