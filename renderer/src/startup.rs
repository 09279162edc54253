//! Renderer start-up: tie the process's life to the browser, take the up socket, and run the launch handshake.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ipc_channel::ipc::IpcReceiver;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::stat::{fstat, SFlag};
use nix::unistd::getppid;
use warren_ipc::{Launch, RendererToBrowser, TabId, DOWN_FD, ENV_TAB_ID, UP_FD};

/// How long the renderer waits for its [`Launch`] after saying Hello.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

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
    #[error("descriptor {DOWN_FD} (the launch channel) is not an open socket; the browser must pass the receiver of its launch channel as fd {DOWN_FD}: {0}")]
    NoDownChannel(String),
    #[error("cannot send Hello to the browser: {0}")]
    Hello(String),
    #[error("the browser did not send the launch message: {0}")]
    Launch(String),
    #[error("the browser launched tab {got} on the channel of tab {expected}")]
    WrongTab { expected: TabId, got: TabId },
    #[error("DISPLAY={0:?} is not a local X display (:N)")]
    BadDisplay(String),
    #[error("the tab's display {0} did not start within {1:?} (see the browser's log)")]
    NoDisplay(String, std::time::Duration),
}

/// Waits until the X socket of `$DISPLAY` exists: the tab's nested display is started by the
/// browser at the same time as the renderer, and libxcb does not retry a missing socket.
pub fn wait_for_display(timeout: std::time::Duration) -> Result<(), StartupError> {
    use std::os::unix::fs::FileTypeExt;
    let name = std::env::var("DISPLAY").unwrap_or_default();
    let number: u32 = name
        .strip_prefix(':')
        .and_then(|rest| rest.split('.').next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StartupError::BadDisplay(name.clone()))?;
    let socket = format!("/tmp/.X11-unix/X{number}");
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if std::fs::metadata(&socket).is_ok_and(|m| m.file_type().is_socket()) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(StartupError::NoDisplay(name, timeout));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Arranges to die with the parent. Must run first, before any other thread exists.
pub fn die_with_parent() -> Result<(), StartupError> {
    let parent = getppid();
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(StartupError::DeathSignal)?;
    // The parent may have exited before the death signal was armed; then nobody will send it.
    let now = getppid();
    // Inside the sandbox's PID namespace the parent is bubblewrap's init, pid 1, which dies with
    // the browser (`--die-with-parent`).
    let in_namespace = std::env::var(warren_ipc::ENV_SANDBOX)
        .is_ok_and(|layers| layers.split(',').any(|l| l == "namespaces"));
    if now != parent || (now.as_raw() == 1 && !in_namespace) {
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

/// Takes the launch channel on [`DOWN_FD`], says Hello with `send_hello`, and waits for the
/// browser's [`Launch`]. No socket is reached by name: the browser made the channel and handed it
/// over at `exec`.
pub fn handshake(
    tab_id: TabId,
    send_hello: impl FnOnce(RendererToBrowser) -> Result<(), String>,
) -> Result<Launch, StartupError> {
    // SAFETY: DOWN_FD is only borrowed for the checks.
    let fd = unsafe { BorrowedFd::borrow_raw(DOWN_FD) };
    let stat = fstat(fd).map_err(|e| StartupError::NoDownChannel(e.to_string()))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(StartupError::NoDownChannel("not a socket".into()));
    }
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| StartupError::NoDownChannel(e.to_string()))?;
    // SAFETY: open, a socket, and owned by this receiver alone from here on.
    let receiver = IpcReceiver::<Launch>::from(unsafe { OwnedFd::from_raw_fd(DOWN_FD) });
    send_hello(RendererToBrowser::Hello).map_err(StartupError::Hello)?;
    let launch = receiver
        .try_recv_timeout(LAUNCH_TIMEOUT)
        .map_err(|e| StartupError::Launch(format!("{e:?}")))?;
    if launch.tab_id != tab_id {
        return Err(StartupError::WrongTab {
            expected: tab_id,
            got: launch.tab_id,
        });
    }
    Ok(launch)
}
