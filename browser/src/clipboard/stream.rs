//! A connection stream whose every wait is bounded, so no X server stalls the broker thread.
//!
//! x11rb waits for replies with an unbounded `poll`. A client of a nested display can grab that
//! server, and a tab's tree may be stopped; either would hang a round trip forever. This stream
//! turns a wait longer than its timeout into an error, and the broker drops that connection.

use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use x11rb::reexports::x11rb_protocol::parse_display::parse_display;
use x11rb::reexports::x11rb_protocol::xauth::get_auth;
use x11rb::rust_connection::{ConnectError, DefaultStream, PollMode, RustConnection, Stream};
use x11rb::utils::RawFdContainer;

/// A [`DefaultStream`] whose waits end with `TimedOut` after `timeout`.
#[derive(Debug)]
pub struct BoundedStream {
    inner: DefaultStream,
    timeout: Duration,
}

pub type BoundedConnection = RustConnection<BoundedStream>;

impl AsFd for BoundedStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl Stream for BoundedStream {
    fn poll(&self, mode: PollMode) -> io::Result<()> {
        let mut flags = PollFlags::empty();
        if mode.readable() {
            flags |= PollFlags::POLLIN;
        }
        if mode.writable() {
            flags |= PollFlags::POLLOUT;
        }
        let timeout = PollTimeout::try_from(self.timeout).unwrap_or(PollTimeout::MAX);
        loop {
            let mut fds = [PollFd::new(self.inner.as_fd(), flags)];
            match nix::poll::poll(&mut fds, timeout) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the X server did not answer in time",
                    ))
                }
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn read(&self, buf: &mut [u8], fd_storage: &mut Vec<RawFdContainer>) -> io::Result<usize> {
        self.inner.read(buf, fd_storage)
    }

    fn write(&self, buf: &[u8], fds: &mut Vec<RawFdContainer>) -> io::Result<usize> {
        self.inner.write(buf, fds)
    }

    fn write_vectored(
        &self,
        bufs: &[IoSlice<'_>],
        fds: &mut Vec<RawFdContainer>,
    ) -> io::Result<usize> {
        self.inner.write_vectored(bufs, fds)
    }
}

/// Connects to a nested display's socket with its MIT-MAGIC-COOKIE-1.
pub fn connect_unix(
    socket: &Path,
    cookie: &[u8; 16],
    timeout: Duration,
) -> Result<BoundedConnection, ConnectError> {
    let stream = UnixStream::connect(socket)?;
    let (inner, _) = DefaultStream::from_unix_stream(stream)?;
    RustConnection::connect_to_stream_with_auth_info(
        BoundedStream { inner, timeout },
        0,
        b"MIT-MAGIC-COOKIE-1".to_vec(),
        cookie.to_vec(),
    )
}

/// Connects to a display by name as Xlib would (`None`: `$DISPLAY`, auth from `$XAUTHORITY`).
/// Returns the connection and its screen number.
pub fn connect_display(
    name: Option<&str>,
    timeout: Duration,
) -> Result<(BoundedConnection, usize), ConnectError> {
    let parsed = parse_display(name)?;
    let screen = usize::from(parsed.screen);
    let mut last = None;
    for addr in parsed.connect_instruction() {
        match DefaultStream::connect(&addr) {
            Ok((inner, (family, address))) => {
                let (auth_name, auth_data) = get_auth(family, &address, parsed.display)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let conn = RustConnection::connect_to_stream_with_auth_info(
                    BoundedStream { inner, timeout },
                    screen,
                    auth_name,
                    auth_data,
                )?;
                return Ok((conn, screen));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => ConnectError::IoError(e),
        None => ConnectError::DisplayParsingError(x11rb::errors::DisplayParsingError::Unknown),
    })
}
