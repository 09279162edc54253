//! The renderer host: starts a tab's renderer process, carries its messages both ways, and ends it.
//!
//! The browser is the kernel here and the renderer an untrusted client (Chromium's stance). What
//! may block on what:
//!
//! * The UI thread never blocks on a renderer. It only `try_send`s into a bounded outbound queue
//!   ([`RendererHost::send`]; a full queue means the renderer stopped reading, and the caller ends
//!   it) and `try_recv`s validated events ([`RendererHost::try_recv`]).
//! * Each renderer has a **reader** thread that blocks on the up socket, decodes and validates
//!   every frame ([`crate::validate`]), and forwards valid messages through a bounded channel; when
//!   that channel is full the reader stops reading, so a fast renderer is slowed down, never
//!   buffered without bound. File descriptors sent along are closed and end the renderer.
//! * Each renderer has a **writer** thread that sends the [`Launch`] on the channel the renderer
//!   inherited as descriptor [`warren_ipc::DOWN_FD`] (no socket is ever reached by a name a
//!   renderer chose), then drains the outbound queue into ipc-channel (whose sends block while a
//!   frozen renderer does not read).
//! * One **reaper** thread for the whole browser blocks in `waitpid(-1)`: the browser is a child
//!   subreaper, so it also reaps the WebKit helpers orphaned when their renderer dies.
//!
//! Renderers are spawned from the UI (main) thread, which lives as long as the browser, because
//! `PR_SET_PDEATHSIG` fires when the spawning *thread* exits. How a renderer is started (its
//! sandbox, environment and descriptors) is [`crate::sandbox`]'s business; the host holds the
//! started process by a pidfd, and a guard ends it if anything fails before the host exists.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use ipc_channel::ipc::{self, IpcSender};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use warren_ipc::frame::FrameDecoder;
use warren_ipc::{BrowserToRenderer, Launch, RendererToBrowser, TabId, ViewSetup};

use crate::nested::{Nested, NestedDisplay};
use crate::sandbox::cleanup::remove_in_background;
use crate::sandbox::pidfd::Pidfd;
use crate::sandbox::{Sandbox, Spec};
use crate::validate::{self, Validator};

/// Wakes the UI loop; called after events were queued. Must not block.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Messages the UI may have queued for one renderer before it counts as not reading.
const OUTBOUND_CAPACITY: usize = 256;

/// Validated events a reader may queue before it stops reading.
const EVENTS_CAPACITY: usize = 256;

/// What the host reports about a renderer, in order.
#[derive(Debug)]
pub enum HostEvent {
    /// A validated message (never `Hello`: the host consumes it).
    Message(RendererToBrowser),
    /// The renderer broke the protocol; the caller must end it. The text says how.
    Violation(String),
    /// The up socket closed: the renderer exited or closed it.
    Disconnected,
}

/// What one renderer shows: its view, the files the user opened in the tab, and its own nested
/// display (`None`: the user's).
pub struct TabView<'a> {
    pub view: ViewSetup,
    pub files: &'a [PathBuf],
    pub display: Option<NestedDisplay>,
}

/// Told about each nested display that starts, before its renderer does.
pub type OnDisplay = Box<dyn Fn(&mut NestedDisplay)>;

/// One running renderer process and its two channels.
pub struct RendererHost {
    /// The process the browser started: bubblewrap (the sandbox's root) or, without namespaces,
    /// the renderer itself. Ending it ends the tab.
    root: Pidfd,
    /// The renderer's own pid once known (inside the sandbox it is a descendant of `root`); 0
    /// until the renderer's Hello.
    renderer_pid: Arc<AtomicU32>,
    /// Whether `root` is bubblewrap: its PID namespace holds every process of the tab.
    namespaces: bool,
    outbound: Sender<BrowserToRenderer>,
    events: Receiver<HostEvent>,
    /// The browser's end of the up socket, kept to shut it down so the reader wakes and exits.
    socket: UnixStream,
    /// The private runtime directory of a renderer without namespaces (empty otherwise).
    runtime_dir: PathBuf,
    killed: bool,
    reaped: bool,
    /// The tree was stopped (SIGSTOP) and not continued since.
    stopped: bool,
    /// Eval requests sent and not answered yet; the reader refuses any other `EvalResult`.
    evals: Arc<Mutex<HashSet<u64>>>,
    /// The renderer's own nested display (`--display-isolation nested`); it ends with the host.
    display: Option<Mutex<NestedDisplay>>,
}

impl RendererHost {
    /// Starts a renderer for `tab_id` through `sandbox`. `runtime_root` (canonical) holds the
    /// private runtime directory of a renderer that runs without namespaces; `files` are the
    /// files the user opened in the tab. Returns once the process exists; the handshake goes on
    /// on the host's threads.
    pub fn spawn(
        sandbox: &Sandbox,
        renderer: &Path,
        runtime_root: &Path,
        tab_id: TabId,
        tab: TabView<'_>,
        waker: Waker,
    ) -> io::Result<Self> {
        let TabView {
            view,
            files,
            display,
        } = tab;
        let namespaces = sandbox.uses_namespaces();
        let runtime_dir = if namespaces {
            PathBuf::new()
        } else {
            let dir = runtime_root.join(format!("tab-{tab_id}-{}", unique_suffix()));
            std::fs::DirBuilder::new().mode_0700().create(&dir)?;
            dir
        };
        // From here on a failure removes the directory (and, once it exists, ends the process).
        let mut cleanup = Cleanup {
            runtime_dir: runtime_dir.clone(),
            root: None,
        };

        let (browser_end, renderer_end) = UnixStream::pair()?;
        let (launch_tx, launch_rx) = ipc::channel::<Launch>()?;
        let renderer_view = display.as_ref().map(NestedDisplay::renderer_view);
        let command = sandbox.command(Spec {
            renderer,
            tab_id,
            up: OwnedFd::from(renderer_end),
            down: OwnedFd::from(launch_rx),
            website_data_dir: &view.website_data_dir,
            files,
            runtime_dir: &runtime_dir,
            probe: None,
            display: renderer_view.as_ref(),
        });
        drop(renderer_view);
        let (child, root) = spawn_held(command).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start the renderer {}: {e}", renderer.display()),
            )
        })?;
        // The reaper thread owns reaping; std's handle is not used again.
        drop(child);
        cleanup.root = Some(root);

        let (outbound_tx, outbound_rx) = bounded(OUTBOUND_CAPACITY);
        let (events_tx, events_rx) = bounded(EVENTS_CAPACITY);
        let evals = Arc::new(Mutex::new(HashSet::new()));
        let renderer_pid = Arc::new(AtomicU32::new(0));
        let reader_socket = browser_end.try_clone()?;
        {
            let events_tx = events_tx.clone();
            let waker = waker.clone();
            let evals = Arc::clone(&evals);
            let found = Arc::clone(&renderer_pid);
            let root_pid = cleanup.root.as_ref().map_or(0, Pidfd::pid);
            let renderer = renderer.to_path_buf();
            thread::Builder::new()
                .name(format!("tab{tab_id}-reader"))
                .spawn(move || {
                    let on_hello = || {
                        let pid = if namespaces {
                            find_renderer(root_pid, &renderer).unwrap_or(root_pid)
                        } else {
                            root_pid
                        };
                        found.store(pid, Ordering::Release);
                    };
                    let reason =
                        read_loop(reader_socket, tab_id, &evals, &events_tx, on_hello, &waker);
                    let _ = events_tx.send(reason);
                    waker();
                })?;
        }
        thread::Builder::new()
            .name(format!("tab{tab_id}-writer"))
            .spawn(move || {
                if let Err(reason) = write_loop(tab_id, view, launch_tx, &outbound_rx) {
                    let _ = events_tx.send(HostEvent::Violation(reason));
                    waker();
                }
            })?;

        let root = cleanup.root.take().expect("set above");
        let runtime_dir = std::mem::take(&mut cleanup.runtime_dir);
        Ok(Self {
            root,
            renderer_pid,
            namespaces,
            outbound: outbound_tx,
            events: events_rx,
            socket: browser_end,
            runtime_dir,
            killed: false,
            reaped: false,
            stopped: false,
            evals,
            display: display.map(Mutex::new),
        })
    }

    fn with_display(&self, f: impl FnOnce(&mut NestedDisplay)) {
        if let Some(display) = &self.display {
            f(&mut display.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// The process that runs this tab's nested display (bubblewrap or Xephyr), if it has one.
    pub fn display_pid(&self) -> Option<u32> {
        self.display
            .as_ref()
            .and_then(|d| d.lock().unwrap_or_else(|e| e.into_inner()).root_pid())
    }

    /// The renderer's pid: the renderer process itself once it said Hello (inside the sandbox
    /// it is a descendant of bubblewrap), the started process before that.
    pub fn pid(&self) -> u32 {
        match self.renderer_pid.load(Ordering::Acquire) {
            0 => self.root.pid(),
            pid => pid,
        }
    }

    /// The process the browser started (bubblewrap, or the renderer without namespaces).
    pub fn root_pid(&self) -> u32 {
        self.root.pid()
    }

    /// Queues a message without blocking. `Err` means the renderer is not reading (its queue is
    /// full) or already gone; the caller should end it.
    pub fn send(&self, msg: BrowserToRenderer) -> Result<(), &'static str> {
        match &msg {
            BrowserToRenderer::Eval { request, .. } => {
                self.evals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(*request);
            }
            // The view's place, visibility and the user's keyboard are the browser's to set on
            // the user's display: the host window and Xephyr's window in it. The renderer is
            // told too, to size its window and to let WebKit know whether the page is seen.
            BrowserToRenderer::SetBounds(bounds) => self.with_display(|d| d.set_bounds(*bounds)),
            BrowserToRenderer::SetVisible(visible) => {
                self.with_display(|d| d.set_visible(*visible))
            }
            BrowserToRenderer::Focus => self.with_display(NestedDisplay::focus),
            _ => {}
        }
        match self.outbound.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err("stopped reading messages from the browser"),
            Err(TrySendError::Disconnected(_)) => Err("its channel is closed"),
        }
    }

    /// The next event, if any.
    pub fn try_recv(&self) -> Option<HostEvent> {
        let event = self.events.try_recv().ok()?;
        if let HostEvent::Message(RendererToBrowser::Ready { .. }) = &event {
            // The renderer is connected to its display, so the display is up.
            self.with_display(NestedDisplay::renderer_ready);
        }
        Some(event)
    }

    /// Whether events are waiting.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Records that the reaper collected the started process's exit status: its pid may now be
    /// reused, so [`RendererHost::kill`] no longer signals its descendants by pid.
    pub fn mark_reaped(&mut self) {
        self.reaped = true;
    }

    /// Kills the renderer's whole process tree (its process group and every descendant) and stops
    /// its threads. Idempotent.
    pub fn kill(&mut self) {
        if self.killed {
            return;
        }
        self.killed = true;
        let group = Pid::from_raw(self.root.pid() as i32);
        if self.namespaces {
            // bubblewrap's init in the tab's PID namespace dies with it (`--die-with-parent`),
            // and the kernel then kills every process of the namespace, escaped grandchildren
            // included.
            let _ = self.root.signal(Signal::SIGKILL);
        } else if self.reaped {
            // The leader is gone but its group id stays reserved while WebKit's helpers are in it.
            let _ = killpg(group, Signal::SIGKILL);
        } else {
            let tree = crate::procs::descendants(self.root.pid());
            let _ = killpg(group, Signal::SIGKILL);
            let _ = self.root.signal(Signal::SIGKILL);
            for pid in tree {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.with_display(NestedDisplay::kill);
    }

    /// Asks the renderer to exit; call [`RendererHost::kill`] after a grace period.
    pub fn request_shutdown(&self) {
        let _ = self.outbound.try_send(BrowserToRenderer::Shutdown);
    }
}

impl RendererHost {
    /// Sends `signal` to the renderer's whole tree: its process group, and every descendant that
    /// left the group. Once the leader is reaped only the group is signalled (its pid may be reused).
    fn signal_tree(&self, signal: Signal) -> nix::Result<()> {
        let group = Pid::from_raw(self.root.pid() as i32);
        if self.reaped {
            return killpg(group, signal);
        }
        // Inside the sandbox the processes are in sessions of their own: signal each one.
        let first = if self.namespaces {
            self.root
                .signal(signal)
                .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::ESRCH)))
        } else {
            killpg(group, signal)
        };
        for pid in crate::procs::descendants(self.root.pid()) {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
        first
    }
}

impl crate::tabs::Renderer for RendererHost {
    fn pid(&self) -> u32 {
        RendererHost::pid(self)
    }

    fn root_pid(&self) -> u32 {
        RendererHost::root_pid(self)
    }

    fn send(&self, msg: BrowserToRenderer) -> Result<(), &'static str> {
        RendererHost::send(self, msg)
    }

    fn try_recv(&self) -> Option<HostEvent> {
        RendererHost::try_recv(self)
    }

    fn has_events(&self) -> bool {
        RendererHost::has_events(self)
    }

    fn request_shutdown(&self) {
        RendererHost::request_shutdown(self)
    }

    fn kill(&mut self) {
        RendererHost::kill(self)
    }

    fn mark_reaped(&mut self) {
        RendererHost::mark_reaped(self)
    }

    fn stop(&mut self) -> Result<(), String> {
        if self.killed {
            return Err("its renderer was ended".into());
        }
        self.signal_tree(Signal::SIGSTOP)
            .map_err(|e| format!("cannot stop its renderer: {e}"))?;
        self.stopped = true;
        Ok(())
    }

    fn resume(&mut self) {
        if self.stopped && !self.killed {
            let _ = self.signal_tree(Signal::SIGCONT);
        }
        self.stopped = false;
    }

    fn display_pid(&self) -> Option<u32> {
        RendererHost::display_pid(self)
    }

    fn footprint_kb(&self) -> Option<u64> {
        if self.reaped || self.killed {
            return None;
        }
        let display = self
            .display_pid()
            .and_then(crate::procs::tree_footprint_kb)
            .unwrap_or(0);
        crate::procs::tree_footprint_kb(self.root.pid()).map(|kb| kb + display)
    }
}

/// Starts real renderer processes for the tab model: everything a [`ViewSetup`] needs beyond
/// what the model decides per tab.
pub struct HostLauncher {
    /// The renderer executable.
    pub renderer: PathBuf,
    /// The canonical directory that holds every renderer's private runtime directory.
    pub runtime_root: PathBuf,
    /// The browser window's X11 id, which views (or their nested displays) live in.
    pub parent_window: u64,
    pub website_data_dir: PathBuf,
    pub cookie_file: PathBuf,
    pub waker: Waker,
    /// How renderers are started (their sandbox).
    pub sandbox: Arc<Sandbox>,
    /// Where renderers' views live (`--display-isolation`).
    pub displays: Displays,
    /// Told about each nested display that starts (the clipboard broker).
    pub on_display: Option<OnDisplay>,
}

/// Where renderers' views live.
pub enum Displays {
    /// Each renderer on a nested display of its own.
    Nested(Arc<Nested>),
    /// Nested displays were asked for and cannot work here: renderers are not started (a
    /// renderer on the user's display could read and type into every window).
    Unavailable(String),
    /// On the user's display, as child windows of the browser's (`--display-isolation none`).
    User,
}

impl crate::tabs::Launcher for HostLauncher {
    fn launch(
        &mut self,
        id: TabId,
        start: crate::tabs::Start,
    ) -> Result<Box<dyn crate::tabs::Renderer>, String> {
        let display = match &self.displays {
            Displays::User => None,
            Displays::Unavailable(why) => {
                return Err(format!(
                    "pages cannot be shown on a display of their own: {why}"
                ))
            }
            Displays::Nested(nested) => {
                let parent = u32::try_from(self.parent_window)
                    .map_err(|_| "the browser window has no X11 id".to_owned())?;
                let dir = self
                    .runtime_root
                    .join(format!("display-{id}-{}", unique_suffix()));
                let mut display = nested
                    .start(id, parent, start.bounds, start.visible, dir)
                    .map_err(|e| format!("cannot start the tab's display (Xephyr): {e}"))?;
                if let Some(on_display) = &self.on_display {
                    on_display(&mut display);
                }
                Some(display)
            }
        };
        let view = ViewSetup {
            parent_window: display.is_none().then_some(self.parent_window),
            bounds: start.bounds,
            visible: start.visible,
            url: start.url,
            website_data_dir: self.website_data_dir.clone(),
            cookie_file: self.cookie_file.clone(),
            restore: start.restore,
            spare: start.spare,
        };
        RendererHost::spawn(
            &self.sandbox,
            &self.renderer,
            &self.runtime_root,
            id,
            TabView {
                view,
                files: &start.files,
                display,
            },
            self.waker.clone(),
        )
        .map(|host| Box::new(host) as Box<dyn crate::tabs::Renderer>)
        .map_err(|e| e.to_string())
    }

    fn file_views(&self) -> bool {
        self.sandbox.uses_namespaces()
    }
}

/// How a reaped child ended, as the crash notice says it ("exited with status 1"); `None` for
/// statuses that are not an exit (stopped, continued).
pub fn describe_exit(status: WaitStatus) -> Option<String> {
    match status {
        WaitStatus::Exited(_, 0) => Some("exited".to_owned()),
        // bubblewrap (the sandbox's first process) reports a renderer killed by signal N as exit
        // status 128 + N; the renderer itself never exits with such a status.
        WaitStatus::Exited(_, code) if (129..=192).contains(&code) => {
            match Signal::try_from(code - 128) {
                Ok(signal) => Some(format!("was killed by {signal}")),
                Err(_) => Some(format!("exited with status {code}")),
            }
        }
        WaitStatus::Exited(_, code) => Some(format!("exited with status {code}")),
        WaitStatus::Signaled(_, signal, _) => Some(format!("was killed by {signal}")),
        _ => None,
    }
}

impl Drop for RendererHost {
    fn drop(&mut self) {
        self.kill();
        remove_in_background(std::mem::take(&mut self.runtime_dir));
    }
}

/// Undoes a half-done spawn: ends the started process and removes its runtime directory, unless
/// the host took them over.
struct Cleanup {
    runtime_dir: PathBuf,
    root: Option<Pidfd>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(root) = &self.root {
            // A renderer without a host would run on unseen; end it (and, through its namespace
            // or group, what it started).
            let _ = root.signal(Signal::SIGKILL);
            let _ = killpg(Pid::from_raw(root.pid() as i32), Signal::SIGKILL);
        }
        remove_in_background(std::mem::take(&mut self.runtime_dir));
    }
}

/// Spawns `command` under the spawn lock and opens a pidfd for it before the reaper can collect
/// it (so the pidfd names this child, never a later process with its pid).
pub(crate) fn spawn_held(mut command: Command) -> io::Result<(Child, Pidfd)> {
    let _guard = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let child = command.spawn()?;
    let pidfd = match Pidfd::open(child.id()) {
        Ok(pidfd) => pidfd,
        Err(e) => {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            return Err(e);
        }
    };
    drop(_guard);
    reaper_nudge();
    Ok((child, pidfd))
}

/// Spawns a helper process of the browser's own (the web processes' headless display) under the
/// spawn lock, which [`start_reaper`] needs.
pub fn spawn_locked(command: &mut Command) -> io::Result<Child> {
    let child = {
        let _guard = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        command.spawn()?
    };
    reaper_nudge();
    Ok(child)
}

/// The renderer process inside a sandbox rooted at `root`: the first descendant whose executable
/// is the renderer's file (same device and inode, as bind mounts keep them).
fn find_renderer(root: u32, renderer: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(renderer).ok()?;
    crate::procs::descendants(root).into_iter().find(|pid| {
        std::fs::metadata(format!("/proc/{pid}/exe"))
            .is_ok_and(|m| m.dev() == want.dev() && m.ino() == want.ino())
    })
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

trait DirBuilderExt0700 {
    fn mode_0700(&mut self) -> &mut Self;
}

impl DirBuilderExt0700 for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

/// Reads, decodes and validates up frames until the socket closes or the renderer misbehaves;
/// returns the final event.
fn read_loop(
    socket: UnixStream,
    tab_id: TabId,
    evals: &Mutex<HashSet<u64>>,
    events: &Sender<HostEvent>,
    on_hello: impl FnOnce(),
    waker: &Waker,
) -> HostEvent {
    let mut on_hello = Some(on_hello);
    let violation = |what: String| HostEvent::Violation(what);
    // The deadline holds for the whole handshake, not for each read: a byte every few seconds
    // does not keep a silent renderer alive.
    let handshake_deadline = Instant::now() + validate::HANDSHAKE_TIMEOUT;
    let mut validator = Validator::new(tab_id, Instant::now());
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut greeted = false;
    loop {
        if !greeted {
            let left = handshake_deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                return violation(format!(
                    "did not complete the handshake within {} s",
                    validate::HANDSHAKE_TIMEOUT.as_secs()
                ));
            }
        }
        let n = match recv_refusing_fds(socket.as_raw_fd(), &mut buf) {
            Ok(0) => return HostEvent::Disconnected,
            Ok(n) => n,
            Err(RecvError::Descriptors) => return violation("sent file descriptors".into()),
            Err(RecvError::Io(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR)) => continue,
            Err(RecvError::Io(_)) => return HostEvent::Disconnected,
        };
        decoder.push(&buf[..n]);
        loop {
            let buffered = decoder.buffered();
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return violation(format!("sent a bad frame: {e}")),
            };
            // The frame's size on the wire, for the byte budget.
            let wire_len = buffered.saturating_sub(decoder.buffered());
            if let Err(e) = validator.check(&frame, wire_len, Instant::now()) {
                return violation(format!("sent an invalid message: {e}"));
            }
            match frame.msg {
                RendererToBrowser::Hello => {
                    greeted = true;
                    if socket.set_read_timeout(None).is_err() {
                        return HostEvent::Disconnected;
                    }
                    if let Some(f) = on_hello.take() {
                        f();
                    }
                }
                msg => {
                    if let RendererToBrowser::EvalResult { request, .. } = &msg {
                        let asked = evals
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(request);
                        if !asked {
                            return violation(format!(
                                "sent an invalid message: a result for script {request}, which was not asked for"
                            ));
                        }
                    }
                    // Blocks while the UI has not drained the queue: backpressure on the renderer.
                    if events.send(HostEvent::Message(msg)).is_err() {
                        return HostEvent::Disconnected;
                    }
                    waker();
                }
            }
        }
    }
}

/// The reader thread's loop on `socket`, for property tests of the up channel (descriptors,
/// bytes, frames): every valid message goes to `events`, the final event is returned.
#[doc(hidden)]
pub fn read_up_channel(socket: UnixStream, tab_id: TabId, events: &Sender<HostEvent>) -> HostEvent {
    let waker: Waker = Arc::new(|| {});
    read_loop(
        socket,
        tab_id,
        &Mutex::new(HashSet::new()),
        events,
        || {},
        &waker,
    )
}

enum RecvError {
    Descriptors,
    Io(nix::errno::Errno),
}

/// Receives bytes; any ancillary data (descriptors, credentials) is closed and refused.
fn recv_refusing_fds(fd: RawFd, buf: &mut [u8]) -> Result<usize, RecvError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [io::IoSliceMut::new(buf)];
    // Room for as many descriptors as the kernel passes in one message (SCM_MAX_FD is 253): with
    // less, the kernel installs what fits, sets MSG_CTRUNC, and nix cannot list them to close.
    let mut cmsg = nix::cmsg_space!([RawFd; 253]);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(RecvError::Io)?;
    let mut refused = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    match msg.cmsgs() {
        Ok(cmsgs) => {
            for c in cmsgs {
                refused = true;
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for fd in fds {
                        let _ = nix::unistd::close(fd);
                    }
                }
            }
        }
        Err(_) => refused = true,
    }
    if refused {
        Err(RecvError::Descriptors)
    } else {
        Ok(msg.bytes)
    }
}

/// Sends the launch on the channel the renderer inherited, then forwards the outbound queue.
/// Returns `Err` with a reason when the launch cannot be sent.
fn write_loop(
    tab_id: TabId,
    view: ViewSetup,
    launcher: IpcSender<Launch>,
    outbound: &Receiver<BrowserToRenderer>,
) -> Result<(), String> {
    let (sender, receiver) = ipc::channel::<BrowserToRenderer>()
        .map_err(|e| format!("the browser could not create its channel: {e}"))?;
    launcher
        .send(Launch {
            tab_id,
            view,
            receiver,
        })
        .map_err(|e| format!("could not be sent its launch message: {e}"))?;
    drop(launcher);
    while let Ok(first) = outbound.recv() {
        let mut batch = vec![first];
        batch.extend(outbound.try_iter());
        for msg in coalesce(batch) {
            if sender.send(msg).is_err() {
                // The renderer is gone; the reader reports it.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Drops every `SetBounds` that a later one in the same batch supersedes.
fn coalesce(batch: Vec<BrowserToRenderer>) -> Vec<BrowserToRenderer> {
    let last_bounds = batch
        .iter()
        .rposition(|m| matches!(m, BrowserToRenderer::SetBounds(_)));
    batch
        .into_iter()
        .enumerate()
        .filter(|(i, m)| !matches!(m, BrowserToRenderer::SetBounds(_)) || Some(*i) == last_bounds)
        .map(|(_, m)| m)
        .collect()
}

/// Starts the browser-wide reaper. `on_exit` is called with every reaped child's pid and status,
/// renderers and orphaned WebKit helpers alike. Call once, early, from the main thread.
pub fn start_reaper(on_exit: impl Fn(u32, WaitStatus) + Send + 'static) -> io::Result<()> {
    // Orphaned grandchildren (WebKit helpers of a killed renderer) become our children, so they
    // are reaped here instead of lingering as zombies where PID 1 does not reap.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let handle = thread::Builder::new()
        .name("reaper".into())
        .spawn(move || loop {
            // Wait for an exited child without collecting it, then collect that one child under
            // the spawn lock: std's `spawn` collects a child whose exec failed itself, and panics
            // if somebody else got to it first.
            match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(peeked) => {
                    let Some(pid) = peeked.pid() else { continue };
                    let _guard = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) | Err(_) => {}
                        Ok(status) => on_exit(pid.as_raw() as u32, status),
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                // No children right now: wait to be nudged by a spawn (or poll slowly).
                Err(_) => thread::park_timeout(Duration::from_millis(500)),
            }
        })?;
    let _ = REAPER.set(handle.thread().clone());
    Ok(())
}

static REAPER: std::sync::OnceLock<thread::Thread> = std::sync::OnceLock::new();

/// Held around `Command::spawn` and around the reaper's collection of a child (see
/// [`start_reaper`]).
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

fn reaper_nudge() {
    if let Some(t) = REAPER.get() {
        t.unpark();
    }
}

/// Tracks one renderer's answers to pings: the browser pings every [`PING_INTERVAL`], and a ping
/// left unanswered for [`validate::PING_TIMEOUT`] makes the tab unresponsive until it answers.
#[derive(Debug)]
pub struct PingTracker {
    next_seq: u64,
    outstanding: Option<(u64, Instant)>,
    last_sent: Instant,
}

/// How often a live renderer is pinged.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

impl PingTracker {
    pub fn new(now: Instant) -> Self {
        Self {
            next_seq: 1,
            outstanding: None,
            last_sent: now,
        }
    }

    /// A ping to send now, if one is due.
    pub fn due(&mut self, now: Instant) -> Option<BrowserToRenderer> {
        if self.outstanding.is_some()
            || now.saturating_duration_since(self.last_sent) < PING_INTERVAL
        {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outstanding = Some((seq, now));
        self.last_sent = now;
        Some(BrowserToRenderer::Ping { seq })
    }

    /// Records a pong; stale or unknown sequence numbers are ignored.
    pub fn pong(&mut self, seq: u64) {
        if self.outstanding.is_some_and(|(s, _)| s == seq) {
            self.outstanding = None;
        }
    }

    /// False once the outstanding ping is older than the timeout.
    pub fn responsive(&self, now: Instant) -> bool {
        self.outstanding
            .is_none_or(|(_, sent)| now.saturating_duration_since(sent) < validate::PING_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_ipc::Bounds;

    #[test]
    fn coalesce_keeps_only_last_bounds_and_order() {
        let b = |w| {
            BrowserToRenderer::SetBounds(Bounds {
                x: 0,
                y: 0,
                width: w,
                height: 1,
            })
        };
        let batch = vec![
            b(1),
            BrowserToRenderer::Reload,
            b(2),
            BrowserToRenderer::Focus,
            b(3),
        ];
        assert_eq!(
            coalesce(batch),
            vec![BrowserToRenderer::Reload, BrowserToRenderer::Focus, b(3)]
        );
        assert_eq!(
            coalesce(vec![BrowserToRenderer::Stop]),
            vec![BrowserToRenderer::Stop]
        );
    }

    #[test]
    fn exits_are_described_as_the_crash_notice_says_them() {
        let pid = Pid::from_raw(1);
        let say = |s| describe_exit(s).unwrap();
        assert_eq!(say(WaitStatus::Exited(pid, 0)), "exited");
        assert_eq!(say(WaitStatus::Exited(pid, 3)), "exited with status 3");
        assert_eq!(
            say(WaitStatus::Signaled(pid, Signal::SIGSEGV, false)),
            "was killed by SIGSEGV"
        );
        // bubblewrap's way of saying its renderer was killed by SIGKILL.
        assert_eq!(say(WaitStatus::Exited(pid, 137)), "was killed by SIGKILL");
        assert_eq!(describe_exit(WaitStatus::StillAlive), None);
    }

    #[test]
    fn ping_tracker_marks_unresponsive_and_recovers() {
        let t0 = Instant::now();
        let mut p = PingTracker::new(t0);
        assert_eq!(p.due(t0), None);
        let ping = p.due(t0 + PING_INTERVAL).unwrap();
        let BrowserToRenderer::Ping { seq } = ping else {
            panic!("not a ping")
        };
        // No second ping while one is outstanding.
        assert_eq!(p.due(t0 + PING_INTERVAL * 2), None);
        assert!(p.responsive(t0 + PING_INTERVAL + Duration::from_secs(14)));
        assert!(!p.responsive(t0 + PING_INTERVAL + Duration::from_secs(16)));
        p.pong(seq + 100);
        assert!(!p.responsive(t0 + PING_INTERVAL + Duration::from_secs(16)));
        p.pong(seq);
        assert!(p.responsive(t0 + PING_INTERVAL + Duration::from_secs(16)));
    }
}
