//! The clipboard broker: shares CLIPBOARD and PRIMARY between the user's display and each tab's
//! nested X server, on a thread of its own.
//!
//! A nested server belongs to its renderer, which is untrusted, so the broker is a security
//! boundary. Only the page the user sees may set the user's selections; a page may read them only
//! right after the user made a paste gesture into it, seen on the outer display, which renderers
//! cannot reach (`policy` holds these rules). Every nested connection is treated as hostile: sizes
//! and times are bounded and a failing display is dropped alone (`endpoint`, `stream`).

mod content;
mod endpoint;
mod policy;
mod stream;
mod thread;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use warren_ipc::TabId;
use x11rb::errors::{ConnectError, ConnectionError, ReplyError, ReplyOrIdError};

pub use policy::{GESTURE_WINDOW, REQUEST_GRACE};

use thread::{Command, State};

/// Where a tab's nested display listens, and the cookie it accepts.
#[derive(Clone, Debug)]
pub struct NestedAddress {
    /// The display's Unix socket, e.g. `/tmp/.X11-unix/X12`.
    pub socket: PathBuf,
    /// MIT-MAGIC-COOKIE-1 data.
    pub cookie: [u8; 16],
}

/// What the broker tells the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerEvent {
    /// The user pressed a mouse button (not the wheel) over `tab`'s page on the outer display.
    /// Xephyr holds the button selection on its own window, so the browser learns of it only here.
    PagePressed { tab: TabId },
}

#[derive(Debug, thiserror::Error)]
pub enum ClipboardError {
    #[error("clipboard sharing: cannot connect to the display {0}: {1}")]
    Connect(String, ConnectError),
    #[error("clipboard sharing: the display {0} lacks the {1} extension")]
    MissingExtension(String, &'static str),
    #[error("clipboard sharing: cannot set up on the display: {0}")]
    Setup(ReplyOrIdError),
    #[error("clipboard sharing: the display failed: {0}")]
    X(ConnectionError),
    #[error("clipboard sharing: the display refused a request: {0}")]
    Reply(ReplyError),
    #[error("clipboard sharing: cannot start its thread: {0}")]
    Thread(std::io::Error),
    #[error("clipboard sharing: cannot create its wake pipe: {0}")]
    Pipe(nix::Error),
}

/// Handle to the broker thread; dropping it stops the thread.
pub struct Broker {
    commands: Sender<Command>,
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Broker {
    /// Connects to the outer display (`None`: `$DISPLAY`, with `$XAUTHORITY` as usual) and starts
    /// the thread. Without XInput 2.2 on that display the broker still publishes pages' copies,
    /// but no paste gesture can be seen, so pages cannot read the user's selections.
    pub fn start(
        display: Option<&str>,
        on_event: impl Fn(BrokerEvent) + Send + 'static,
    ) -> Result<Broker, ClipboardError> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(ClipboardError::Pipe)?;
        let (commands, receiver) = crossbeam_channel::unbounded();
        let state = State::new(display, Box::new(on_event), receiver, read)?;
        let thread = std::thread::Builder::new()
            .name("clipboard".into())
            .spawn(move || {
                if let Err(e) = state.run() {
                    log::error!(
                        "clipboard sharing stopped: the display failed: {e}; copy and paste \
                         between pages and other applications no longer work"
                    );
                }
            })
            .map_err(ClipboardError::Thread)?;
        Ok(Broker {
            commands,
            wake: write,
            thread: Some(thread),
        })
    }

    /// A tab's nested display exists. It may still be starting; the broker keeps trying to connect
    /// for a while, quietly. `host_window` is the browser's window on the outer display that the
    /// nested server's window is a child of.
    pub fn add_display(&self, tab: TabId, address: NestedAddress, host_window: u32) {
        self.send(Command::Add(tab, address, host_window));
    }

    pub fn remove_display(&self, tab: TabId) {
        self.send(Command::Remove(tab));
    }

    /// The tab whose page the user sees (`None`: no page is shown).
    pub fn set_active(&self, tab: Option<TabId>) {
        self.send(Command::Active(tab));
    }

    fn send(&self, command: Command) {
        // A stopped thread has logged why; commands to it are moot.
        if self.commands.send(command).is_ok() {
            let _ = nix::unistd::write(&self.wake, &[1]);
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
