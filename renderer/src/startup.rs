//! Renderer start-up: tie the process's life to the browser, take the up socket, and run the launch handshake.

use std::os::fd::{BorrowedFd, FromRawFd};
use std::os::unix::net::UnixStream;

use ipc_channel::ipc::IpcOneShotServer;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::stat::{fstat, SFlag};
use nix::unistd::getppid;
use warren_ipc::{Launch, RendererToBrowser, TabId, ENV_TAB_ID, MAX_SERVER_NAME_LEN, UP_FD};

/// Why the renderer could not start. Each message says what the launcher got wrong.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot ask the kernel to kill this renderer when the browser exits: {0}")]
    DeathSignal(nix::Error),
    #[error("the browser that started this renderer has already exited")]
    ParentGone,
    #[error("{ENV_TAB_ID} is not set; the renderer is started by the browser, not by hand")]
    NoTabId,
    #[error("{ENV_TAB_ID}={0:?} is not a tab id (an unsigned integer)")]
    BadTabId(String),
    #[error("descriptor {UP_FD} (the up socket) is not open; the browser must pass its socketpair end as fd {UP_FD}: {0}")]
    NoUpSocket(nix::Error),
    #[error("descriptor {UP_FD} is not a socket; the browser must pass its socketpair end as fd {UP_FD}")]
    UpNotSocket,
    #[error("cannot mark descriptor {UP_FD} close-on-exec: {0}")]
    Cloexec(nix::Error),
    #[error("the runtime directory {0} ($TMPDIR) is not a directory; the browser must create it before starting the renderer")]
    NoRuntimeDir(std::path::PathBuf),
    #[error("cannot create the launch server (check that $TMPDIR is writable): {0}")]
    Server(String),
    #[error(
        "the launch server name is {0} bytes long, over the browser's limit; use a shorter $TMPDIR"
    )]
    ServerNameTooLong(usize),
    #[error("cannot send Hello to the browser: {0}")]
    Hello(String),
    #[error("the browser did not complete the launch handshake: {0}")]
    Accept(ipc_channel::IpcError),
    #[error("the browser launched tab {got} on the channel of tab {expected}")]
    WrongTab { expected: TabId, got: TabId },
}

/// Arranges to die with the parent. Must run first, before any other thread exists.
pub fn die_with_parent() -> Result<(), StartupError> {
    let parent = getppid();
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(StartupError::DeathSignal)?;
    // The parent may have exited before the death signal was armed; then nobody will send it.
    let now = getppid();
    if now != parent || now.as_raw() == 1 {
        return Err(StartupError::ParentGone);
    }
    Ok(())
}

/// Reads the tab id the browser put in the environment.
pub fn tab_id_from_env() -> Result<TabId, StartupError> {
    let raw = std::env::var(ENV_TAB_ID).map_err(|_| StartupError::NoTabId)?;
    raw.trim()
        .parse::<u64>()
        .map(TabId)
        .map_err(|_| StartupError::BadTabId(raw))
}

/// Takes ownership of the up socket on [`UP_FD`] and keeps it out of WebKit's child processes.
pub fn take_up_socket() -> Result<UnixStream, StartupError> {
    // SAFETY: UP_FD is only borrowed for these checks; nothing else in this process uses it yet.
    let fd = unsafe { BorrowedFd::borrow_raw(UP_FD) };
    fcntl(fd, FcntlArg::F_GETFD).map_err(StartupError::NoUpSocket)?;
    let stat = fstat(fd).map_err(StartupError::NoUpSocket)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(StartupError::UpNotSocket);
    }
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(StartupError::Cloexec)?;
    // SAFETY: the descriptor is open, is a socket, and from here on is owned by this stream alone.
    Ok(unsafe { UnixStream::from_raw_fd(UP_FD) })
}

/// Creates the one-shot server, announces it with `send_hello`, and waits for the browser's
/// [`Launch`].
pub fn handshake(
    tab_id: TabId,
    send_hello: impl FnOnce(RendererToBrowser) -> Result<(), String>,
) -> Result<Launch, StartupError> {
    // ipc-channel puts its socket in a fresh directory under $TMPDIR, and panics instead of
    // returning an error when it cannot create it.
    let runtime_dir = std::env::temp_dir();
    if !runtime_dir.is_dir() {
        return Err(StartupError::NoRuntimeDir(runtime_dir));
    }
    let (server, server_name) = std::panic::catch_unwind(IpcOneShotServer::<Launch>::new)
        .map_err(|_| StartupError::Server("ipc-channel panicked".to_owned()))?
        .map_err(|e| StartupError::Server(e.to_string()))?;
    if server_name.len() > MAX_SERVER_NAME_LEN {
        return Err(StartupError::ServerNameTooLong(server_name.len()));
    }
    send_hello(RendererToBrowser::Hello { server_name }).map_err(StartupError::Hello)?;
    let (_receiver, launch) = server.accept().map_err(StartupError::Accept)?;
    if launch.tab_id != tab_id {
        return Err(StartupError::WrongTab {
            expected: tab_id,
            got: launch.tab_id,
        });
    }
    Ok(launch)
}
