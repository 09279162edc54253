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
//! * Each renderer has a **writer** thread that waits for the renderer's Hello, connects to its
//!   one-shot server, sends the [`Launch`], then drains the outbound queue into ipc-channel (whose
//!   sends block while a frozen renderer does not read).
//! * One **reaper** thread for the whole browser blocks in `waitpid(-1)`: the browser is a child
//!   subreaper, so it also reaps the WebKit helpers orphaned when their renderer dies.
//!
//! Renderers are spawned from the UI (main) thread, which lives as long as the browser, because
//! `PR_SET_PDEATHSIG` fires when the spawning *thread* exits.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

use crate::validate::{self, ServerSocket, Validator};

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

/// One running renderer process and its two channels.
pub struct RendererHost {
    pid: Pid,
    outbound: Sender<BrowserToRenderer>,
    events: Receiver<HostEvent>,
    /// The browser's end of the up socket, kept to shut it down so the reader wakes and exits.
    socket: UnixStream,
    runtime_dir: PathBuf,
    killed: bool,
    reaped: bool,
    /// The tree was stopped (SIGSTOP) and not continued since.
    stopped: bool,
    /// Eval requests sent and not answered yet; the reader refuses any other `EvalResult`.
    evals: Arc<Mutex<HashSet<u64>>>,
}

impl RendererHost {
    /// Starts `renderer` for `tab_id` in a fresh private runtime directory under `runtime_root`
    /// (which must be canonical). Returns once the process exists; the handshake continues on the
    /// host's threads.
    pub fn spawn(
        renderer: &Path,
        runtime_root: &Path,
        tab_id: TabId,
        view: ViewSetup,
        waker: Waker,
    ) -> io::Result<Self> {
        let runtime_dir = runtime_root.join(format!("tab-{tab_id}-{}", unique_suffix()));
        std::fs::DirBuilder::new()
            .mode_0700()
            .create(&runtime_dir)?;

        let (browser_end, renderer_end) = UnixStream::pair()?;
        let child_fd = renderer_end.as_raw_fd();
        let mut command = Command::new(renderer);
        command
            .env(warren_ipc::ENV_TAB_ID, tab_id.to_string())
            .env("GDK_BACKEND", "x11")
            .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
            .env("TMPDIR", &runtime_dir)
            .stdin(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (dup2, fcntl, setpgid, prctl).
        unsafe {
            command.pre_exec(move || child_setup(child_fd));
        }
        // Held while std forks and, if exec fails, reaps the child itself: the reaper must not
        // take that child's status first (std would panic).
        let spawned = {
            let _guard = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            command.spawn()
        };
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                remove_in_background(runtime_dir);
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot start the renderer {}: {e}", renderer.display()),
                ));
            }
        };
        drop(renderer_end);
        let pid = Pid::from_raw(child.id() as i32);
        // The reaper thread owns reaping; std's handle is not used again.
        drop(child);
        reaper_nudge();

        let (outbound_tx, outbound_rx) = bounded(OUTBOUND_CAPACITY);
        let (events_tx, events_rx) = bounded(EVENTS_CAPACITY);
        let (hello_tx, hello_rx) = bounded::<ServerSocket>(1);

        let evals = Arc::new(Mutex::new(HashSet::new()));
        let reader_socket = browser_end.try_clone()?;
        {
            let events_tx = events_tx.clone();
            let waker = waker.clone();
            let runtime_dir = runtime_dir.clone();
            let evals = Arc::clone(&evals);
            thread::Builder::new()
                .name(format!("tab{tab_id}-reader"))
                .spawn(move || {
                    let reason = read_loop(
                        reader_socket,
                        tab_id,
                        &runtime_dir,
                        &evals,
                        &events_tx,
                        &hello_tx,
                        &waker,
                    );
                    let _ = events_tx.send(reason);
                    waker();
                })?;
        }
        thread::Builder::new()
            .name(format!("tab{tab_id}-writer"))
            .spawn(move || {
                if let Err(reason) = write_loop(tab_id, view, &hello_rx, &outbound_rx) {
                    let _ = events_tx.send(HostEvent::Violation(reason));
                    waker();
                }
            })?;

        Ok(Self {
            pid,
            outbound: outbound_tx,
            events: events_rx,
            socket: browser_end,
            runtime_dir,
            killed: false,
            reaped: false,
            stopped: false,
            evals,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Queues a message without blocking. `Err` means the renderer is not reading (its queue is
    /// full) or already gone; the caller should end it.
    pub fn send(&self, msg: BrowserToRenderer) -> Result<(), &'static str> {
        if let BrowserToRenderer::Eval { request, .. } = &msg {
            self.evals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(*request);
        }
        match self.outbound.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err("stopped reading messages from the browser"),
            Err(TrySendError::Disconnected(_)) => Err("its channel is closed"),
        }
    }

    /// The next event, if any.
    pub fn try_recv(&self) -> Option<HostEvent> {
        self.events.try_recv().ok()
    }

    /// Whether events are waiting.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Records that the reaper collected this renderer's exit status: its pid may now be reused,
    /// so [`RendererHost::kill`] no longer signals it by pid.
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
        if self.reaped {
            // The leader is gone but its group id stays reserved while WebKit's helpers are in it.
            let _ = killpg(self.pid, Signal::SIGKILL);
        } else {
            let tree = crate::procs::descendants(self.pid.as_raw() as u32);
            let _ = killpg(self.pid, Signal::SIGKILL);
            let _ = kill(self.pid, Signal::SIGKILL);
            for pid in tree {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
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
        if self.reaped {
            return killpg(self.pid, signal);
        }
        let group = killpg(self.pid, signal);
        for pid in crate::procs::descendants(self.pid.as_raw() as u32) {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
        group
    }
}

impl crate::tabs::Renderer for RendererHost {
    fn pid(&self) -> u32 {
        RendererHost::pid(self)
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

    fn footprint_kb(&self) -> Option<u64> {
        if self.reaped || self.killed {
            return None;
        }
        crate::procs::tree_footprint_kb(self.pid())
    }
}

/// Starts real renderer processes for the tab model: everything a [`ViewSetup`] needs beyond
/// what the model decides per tab.
pub struct HostLauncher {
    /// The renderer executable.
    pub renderer: PathBuf,
    /// The canonical directory that holds every renderer's private runtime directory.
    pub runtime_root: PathBuf,
    /// The browser window's X11 id, which views embed into.
    pub parent_window: u64,
    pub website_data_dir: PathBuf,
    pub cookie_file: PathBuf,
    pub waker: Waker,
}

impl crate::tabs::Launcher for HostLauncher {
    fn launch(
        &mut self,
        id: TabId,
        start: crate::tabs::Start,
    ) -> Result<Box<dyn crate::tabs::Renderer>, String> {
        let view = ViewSetup {
            parent_window: self.parent_window,
            bounds: start.bounds,
            visible: start.visible,
            url: start.url,
            website_data_dir: self.website_data_dir.clone(),
            cookie_file: self.cookie_file.clone(),
            restore: start.restore,
        };
        RendererHost::spawn(
            &self.renderer,
            &self.runtime_root,
            id,
            view,
            self.waker.clone(),
        )
        .map(|host| Box::new(host) as Box<dyn crate::tabs::Renderer>)
        .map_err(|e| e.to_string())
    }
}

/// How a reaped child ended, as the crash notice says it ("exited with status 1"); `None` for
/// statuses that are not an exit (stopped, continued).
pub fn describe_exit(status: WaitStatus) -> Option<String> {
    match status {
        WaitStatus::Exited(_, 0) => Some("exited".to_owned()),
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

/// Removes a renderer's runtime directory off the UI thread: the renderer controls what is in it
/// (it could hold millions of files).
fn remove_in_background(dir: PathBuf) {
    if dir.as_os_str().is_empty() {
        return;
    }
    let spawned = thread::Builder::new()
        .name("cleanup".into())
        .spawn(move || {
            let _ = std::fs::remove_dir_all(&dir);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a cleanup thread: {e}");
    }
}

/// Runs in the forked child: put the up socket on [`warren_ipc::UP_FD`] (inheritable), make the
/// renderer the leader of its own process group, and tie its life to the browser.
fn child_setup(child_fd: RawFd) -> io::Result<()> {
    let up = warren_ipc::UP_FD;
    // SAFETY: plain syscalls on descriptors this process owns; async-signal-safe.
    unsafe {
        if child_fd == up {
            let flags = libc::fcntl(up, libc::F_GETFD);
            if flags < 0 || libc::fcntl(up, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(child_fd, up) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setpgid(0, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
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
    runtime_dir: &Path,
    evals: &Mutex<HashSet<u64>>,
    events: &Sender<HostEvent>,
    hello: &Sender<ServerSocket>,
    waker: &Waker,
) -> HostEvent {
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
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return violation(format!("sent a bad frame: {e}")),
            };
            if let Err(e) = validator.check(&frame, Instant::now()) {
                return violation(format!("sent an invalid message: {e}"));
            }
            match frame.msg {
                RendererToBrowser::Hello { server_name } => {
                    let server = match validate::check_server_name(&server_name, runtime_dir) {
                        Ok(server) => server,
                        Err(e) => return violation(format!("sent an invalid message: {e}")),
                    };
                    greeted = true;
                    if socket.set_read_timeout(None).is_err() || hello.send(server).is_err() {
                        return HostEvent::Disconnected;
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

/// Waits for the renderer's validated one-shot server, sends the launch, then forwards the
/// outbound queue. Returns `Err` with a reason when the renderer's server misbehaves.
fn write_loop(
    tab_id: TabId,
    view: ViewSetup,
    hello: &Receiver<ServerSocket>,
    outbound: &Receiver<BrowserToRenderer>,
) -> Result<(), String> {
    let Ok(server) = hello.recv() else {
        return Ok(());
    };
    let launcher = IpcSender::<Launch>::connect(server.connect_name())
        .map_err(|e| format!("its one-shot server refused the connection: {e}"))?;
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
