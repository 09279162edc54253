//! Plays the browser for one real `renderer` binary: a parent X window to embed into, the up socket on descriptor 3, the launch channel on descriptor 4, and down messages.
//!
//! Used by tests that check a renderer's messages exactly (no browser in between): every up
//! frame is decoded with the same codec the browser uses and kept, so a failing test can print
//! what the renderer said. The renderer runs without the browser's sandbox (these tests are about
//! what it says, not where it runs); the handshake is the browser's: the launch channel is created
//! here and its receiver inherited as [`warren_ipc::DOWN_FD`], the renderer says `Hello`, the
//! `Launch` goes down that channel. The renderer leads its own process group; dropping a [`Renderer`]
//! kills that group (WebKit's helpers included) and reaps the renderer.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipc_channel::ipc::{self, IpcSender};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use warren_ipc::frame::FrameDecoder;
use warren_ipc::{
    Bounds, BrowserToRenderer, Launch, PageState, RendererToBrowser, SessionHistory, TabId,
    TabSnapshot, ViewSetup,
};
use x11_dl::xlib;

use crate::Xvfb;

/// The size of the parent window and of the view inside it.
pub const VIEW_WIDTH: u32 = 1024;
pub const VIEW_HEIGHT: u32 = 768;

/// A plain top-level X window on a test's Xvfb, standing in for the browser's window. Destroyed
/// with its connection on drop.
pub struct ParentWindow {
    xlib: xlib::Xlib,
    display: *mut xlib::Display,
    window: xlib::Window,
}

impl ParentWindow {
    /// Creates and maps a [`VIEW_WIDTH`]x[`VIEW_HEIGHT`] window at the screen's top-left corner.
    pub fn create(x: &Xvfb) -> ParentWindow {
        ParentWindow::create_on(&x.display_env())
    }

    /// Like [`ParentWindow::create`], on a display given by name (such as `":50"`), for callers
    /// that run on a display they did not start through [`Xvfb`] (the benchmarks).
    pub fn create_on(display_name: &str) -> ParentWindow {
        let xlib = xlib::Xlib::open().expect("load libX11 (install libx11-6)");
        let name = std::ffi::CString::new(display_name).expect("no NUL in a display name");
        // SAFETY: plain Xlib calls on a connection opened here; it stays open (and the window
        // with it) until drop.
        unsafe {
            let display = (xlib.XOpenDisplay)(name.as_ptr());
            assert!(!display.is_null(), "cannot open display {display_name}");
            let screen = (xlib.XDefaultScreen)(display);
            let root = (xlib.XRootWindow)(display, screen);
            let white = (xlib.XWhitePixel)(display, screen);
            let window = (xlib.XCreateSimpleWindow)(
                display,
                root,
                0,
                0,
                VIEW_WIDTH,
                VIEW_HEIGHT,
                0,
                white,
                white,
            );
            (xlib.XMapWindow)(display, window);
            (xlib.XSync)(display, xlib::False);
            ParentWindow {
                xlib,
                display,
                window,
            }
        }
    }

    /// The window's X id, for `ViewSetup::parent_window`.
    pub fn id(&self) -> u64 {
        self.window
    }
}

impl Drop for ParentWindow {
    fn drop(&mut self) {
        // SAFETY: the connection and window were created in `create` and are used nowhere else.
        unsafe {
            (self.xlib.XDestroyWindow)(self.display, self.window);
            (self.xlib.XCloseDisplay)(self.display);
        }
    }
}

/// The renderer binary, checked to exist and to be newer than its sources. (`crate::bin_path`
/// checks the browser binary too, which these tests do not need.)
pub fn renderer_path() -> PathBuf {
    let dir = crate::bin_dir();
    if let Err(why) = crate::check_binaries(&dir, &["renderer"]) {
        panic!("{why}");
    }
    dir.join("renderer")
}

/// What one up read produced.
enum Up {
    Frame(Box<warren_ipc::UpFrame>),
    Closed(String),
}

/// A running renderer, launched like the browser launches one.
pub struct Renderer {
    child: Child,
    tab_id: TabId,
    down: IpcSender<BrowserToRenderer>,
    up: mpsc::Receiver<Up>,
    /// Every message received so far, in order.
    seen: Vec<RendererToBrowser>,
    closed: Option<String>,
    next_request: u64,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// How to launch a renderer.
#[derive(Clone, Debug)]
pub struct Launched {
    pub url: String,
    pub restore: Option<TabSnapshot>,
}

impl Renderer {
    /// Starts the renderer binary embedded in `parent` and completes the handshake: reads
    /// `Hello` and sends the `Launch` on the channel it inherited.
    pub fn start(x: &Xvfb, parent: &ParentWindow, launched: Launched) -> Renderer {
        Renderer::start_on(&x.display_env(), parent, launched)
    }

    /// Like [`Renderer::start`], on a display given by name (such as `":50"`).
    pub fn start_on(display: &str, parent: &ParentWindow, launched: Launched) -> Renderer {
        // WebKit's helpers outlive a killed renderer for a moment; as a subreaper this process
        // inherits them and reaps them in `kill` (PID 1 on these machines does not).
        nix::sys::prctl::set_child_subreaper(true).expect("become a child subreaper");
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = dir.path().join("rt");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&runtime)
            .expect("runtime dir");
        let log = dir.path().join("renderer.log");
        let tab_id = TabId(7);
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let theirs: OwnedFd = theirs.into();
        let raw = theirs.as_raw_fd();
        let (launch, launch_rx) = ipc::channel::<Launch>().expect("launch channel");
        let launch_rx = OwnedFd::from(launch_rx);
        let raw_down = launch_rx.as_raw_fd();
        let mut cmd = Command::new(renderer_path());
        cmd.env(warren_ipc::ENV_TAB_ID, tab_id.to_string())
            .env("DISPLAY", display)
            .env("GDK_BACKEND", "x11")
            .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
            // As the browser does: no session bus and no accessibility bridge. Otherwise, on a
            // machine without a session bus, GTK autolaunches `dbus-daemon` and the
            // accessibility bus through `dbus-launch`, and they outlive the test.
            .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
            .env("NO_AT_BRIDGE", "1")
            .env("TMPDIR", &runtime)
            .env("RUST_LOG", "renderer=debug,warn")
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("renderer log file"))
            .process_group(0);
        // SAFETY: only fcntl and dup2 run between fork and exec, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || place_descriptors(raw, raw_down));
        }
        let child = cmd.spawn().expect("start the renderer");
        drop(theirs);
        drop(launch_rx);
        let up = spawn_reader(ours);
        let (down, receiver) = ipc::channel().expect("down channel");
        let mut renderer = Renderer {
            child,
            tab_id,
            down,
            up,
            seen: Vec::new(),
            closed: None,
            next_request: 1,
            log,
            _dir: dir,
        };
        renderer.wait_for("Hello", Duration::from_secs(20), |m| {
            matches!(m, RendererToBrowser::Hello).then_some(())
        });
        launch
            .send(Launch {
                tab_id,
                view: ViewSetup {
                    parent_window: Some(parent.id()),
                    bounds: Bounds {
                        x: 0,
                        y: 0,
                        width: VIEW_WIDTH,
                        height: VIEW_HEIGHT,
                    },
                    visible: true,
                    url: launched.url,
                    website_data_dir: renderer._dir.path().join("website-data"),
                    cookie_file: renderer._dir.path().join("cookies.sqlite"),
                    restore: launched.restore,
                    spare: false,
                },
                receiver,
            })
            .expect("send Launch");
        renderer
    }

    /// The renderer's pid (also its process group).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends one down message.
    pub fn send(&self, msg: BrowserToRenderer) {
        self.down.send(msg).expect("send to the renderer");
    }

    /// Why the up channel ended (the renderer closed its socket or sent a bad frame), once
    /// [`Renderer::next`] has seen it end; `None` while it is open.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Every message received so far, in order.
    pub fn seen(&self) -> &[RendererToBrowser] {
        &self.seen
    }

    /// Takes the next message, waiting at most `timeout`; `None` on timeout or once the renderer
    /// closed its socket.
    pub fn next(&mut self, timeout: Duration) -> Option<RendererToBrowser> {
        if self.closed.is_some() {
            return None;
        }
        match self.up.recv_timeout(timeout) {
            Ok(Up::Frame(frame)) => {
                assert_eq!(
                    frame.tab_id, self.tab_id,
                    "a frame for another tab: {frame:?}"
                );
                self.seen.push(frame.msg.clone());
                Some(frame.msg)
            }
            Ok(Up::Closed(why)) => {
                self.closed = Some(why);
                None
            }
            Err(_) => None,
        }
    }

    /// Takes messages until `f` picks one, and returns what it made of it. Panics after
    /// `timeout` with everything the renderer said and its log.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&RendererToBrowser) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.closed.is_some() {
                panic!(
                    "no {what} within {timeout:?}{}\n{}",
                    self.closed
                        .as_deref()
                        .map(|c| format!(" (the renderer closed its socket: {c})"))
                        .unwrap_or_default(),
                    self.report()
                );
            }
            if let Some(msg) = self.next(left.min(Duration::from_millis(200))) {
                if let Some(v) = f(&msg) {
                    return v;
                }
            }
        }
    }

    /// Like [`Renderer::wait_for`], but a message already received counts too.
    pub fn wait_seen(
        &mut self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&RendererToBrowser) -> bool,
    ) {
        if self.seen.iter().any(&mut f) {
            return;
        }
        self.wait_for(what, timeout, |m| f(m).then_some(()));
    }

    /// Waits until the tab reports `url` and then `Loading(false)`.
    pub fn wait_loaded(&mut self, url: &str, timeout: Duration) {
        let mut at_url = false;
        self.wait_for(&format!("a finished load of {url}"), timeout, |m| match m {
            RendererToBrowser::UrlChanged { url: u } => {
                at_url = u == url;
                None
            }
            RendererToBrowser::Loading(false) if at_url => Some(()),
            _ => None,
        });
    }

    /// Evaluates `js` in the page and returns its value (JSON) or its error.
    pub fn eval(&mut self, js: &str) -> Result<serde_json::Value, String> {
        let request = self.next_request;
        self.next_request += 1;
        self.send(BrowserToRenderer::Eval {
            request,
            js: js.to_owned(),
        });
        let result = self.wait_for(
            &format!("EvalResult {request}"),
            Duration::from_secs(20),
            |m| match m {
                RendererToBrowser::EvalResult { request: r, result } if *r == request => {
                    Some(result.clone())
                }
                _ => None,
            },
        );
        result.map(|json| serde_json::from_str(&json).expect("EvalResult carries JSON"))
    }

    /// Asks for the tab's state and returns the answer.
    pub fn capture(&mut self) -> (SessionHistory, PageState) {
        let request = self.next_request;
        self.next_request += 1;
        self.send(BrowserToRenderer::CaptureState { request });
        self.wait_for(
            &format!("StateCaptured {request}"),
            Duration::from_secs(20),
            |m| match m {
                RendererToBrowser::StateCaptured {
                    request: r,
                    history,
                    page,
                } if *r == request => Some((history.clone(), page.clone())),
                _ => None,
            },
        )
    }

    /// What the renderer said (message kinds) and its log, for a failure message.
    pub fn report(&self) -> String {
        let kinds: Vec<String> = self
            .seen
            .iter()
            .map(|m| match m {
                RendererToBrowser::UrlChanged { url } => format!("UrlChanged({url})"),
                RendererToBrowser::Loading(l) => format!("Loading({l})"),
                RendererToBrowser::FormEdited(e) => format!("FormEdited({e})"),
                RendererToBrowser::HistoryState(h) => format!(
                    "HistoryState({} entries, current {}, {} state bytes)",
                    h.entries.len(),
                    h.current,
                    h.webkit_state.len()
                ),
                other => other.kind().to_owned(),
            })
            .collect();
        format!(
            "messages: {}\nrenderer log:\n{}",
            kinds.join(", "),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// Kills the renderer's process group now (as `Drop` does) and reaps the renderer and the
    /// WebKit helpers it leaves behind.
    pub fn kill(&mut self) {
        let group = Pid::from_raw(self.pid());
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match waitpid(Pid::from_raw(-group.as_raw()), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(20)),
                Ok(_) => {}
                // No child of this group is left.
                Err(_) => break,
            }
        }
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- renderer {} ---\n{}", self.pid(), self.report());
        }
        self.kill();
    }
}

/// Runs in the forked child: puts the up socket on [`warren_ipc::UP_FD`] and the launch channel's
/// receiver on [`warren_ipc::DOWN_FD`], both inheritable. Each is first moved above both target
/// numbers, so that neither `dup2` clobbers the other source. Async-signal-safe.
pub fn place_descriptors(up: RawFd, down: RawFd) -> std::io::Result<()> {
    let check = |ret: libc::c_int| {
        if ret < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    };
    // SAFETY: plain system calls on descriptors this (forked) process owns.
    unsafe {
        let up = check(libc::fcntl(up, libc::F_DUPFD_CLOEXEC, 10))?;
        let down = check(libc::fcntl(down, libc::F_DUPFD_CLOEXEC, 10))?;
        // dup2 clears close-on-exec on the new descriptor.
        check(libc::dup2(up, warren_ipc::UP_FD))?;
        check(libc::dup2(down, warren_ipc::DOWN_FD))?;
    }
    Ok(())
}

/// Reads the up socket on its own thread and hands each frame over, in order.
fn spawn_reader(mut socket: UnixStream) -> mpsc::Receiver<Up> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("renderer-up".into())
        .spawn(move || {
            let mut decoder = FrameDecoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                loop {
                    match decoder.next_frame() {
                        Ok(Some(frame)) => {
                            if tx.send(Up::Frame(Box::new(frame))).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.send(Up::Closed(format!("bad frame: {e}")));
                            return;
                        }
                    }
                }
                match socket.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Up::Closed("end of stream".into()));
                        return;
                    }
                    Ok(n) => decoder.push(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Up::Closed(format!("read: {e}")));
                        return;
                    }
                }
            }
        })
        .expect("spawn the up reader");
    rx
}
