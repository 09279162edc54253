//! A nested X display per renderer, so that no renderer is a client of the user's display.
//!
//! On X11 every client of a display can read, type into and cover every other client's windows.
//! A renderer on the user's display would own the browser window, every other tab and the rest of
//! the desktop. Chromium and Firefox give content processes no display at all; GTK needs one, so
//! each live renderer gets its own: an `Xephyr` server that draws into a *host window* the
//! browser owns (a child of the browser window over the content area, mapped only for the active
//! tab). The renderer's view is a full-screen window of that nested display; the renderer's
//! sandbox view holds that display's socket and cookie and nothing of the user's display.
//!
//! Xephyr itself is trusted code (it is a client of the user's display) but its input is the
//! renderer's X protocol, so it runs in a bubblewrap sandbox of its own when namespaces work
//! ([`crate::sandbox::bwrap::xephyr_args`]): its own PID and network namespaces (its abstract
//! socket is invisible outside it), the system read-only, a private `/tmp`, and only two sockets:
//! the user's display and its own listening socket, which it creates in a directory of the
//! browser's that the renderer's view shows as `/tmp/.X11-unix`. That directory exists before
//! either process starts, so the renderer and its display start side by side: the renderer waits
//! for the socket to appear.
//!
//! The browser moves, resizes, maps and focuses the host window and Xephyr's window inside it
//! over a connection of its own ([`Outer`]); the renderer resizes its own window when told the
//! new bounds. Keyboard layout: Xephyr loads the user's keymap from the outer display at start.
//! The clipboard is brokered by [`crate::clipboard`].

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;
use warren_ipc::{Bounds, TabId};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, InputFocus, WindowClass,
};
use x11rb::rust_connection::RustConnection;

use crate::sandbox::display::Address;
use crate::sandbox::pidfd::Pidfd;
use crate::sandbox::{bwrap, hygiene, seccomp};

/// Whether renderers get nested displays (`--display-isolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// A nested X server per renderer (the default).
    Nested,
    /// Renderers are clients of the user's display (their views are child windows of the
    /// browser's): any renderer can read and type into every window of the desktop.
    None,
}

/// The name Xephyr is looked up by (in `PATH`).
const XEPHYR: &str = "Xephyr";

/// How to get Xephyr, said when it is missing.
pub const INSTALL_HINT: &str =
    "install Xephyr (Debian/Ubuntu: apt install xserver-xephyr; Fedora: dnf install xorg-x11-server-Xephyr), \
     or start the browser with --display-isolation=none to let pages' renderers use your display";

/// The browser's connection to the user's display for host windows, shared by every tab.
struct Outer {
    conn: RustConnection,
    root: u32,
    root_depth: u8,
    root_visual: u32,
    colormap: u32,
    background: u32,
}

impl Outer {
    /// Drops the events and errors queued on the connection: it selects no events, so only the
    /// errors of requests on windows that vanished (Xephyr's, when it exits) arrive here.
    fn drain(&self) {
        while let Ok(Some(_)) = self.conn.poll_for_event() {}
    }
}

/// What the browser found at start-up; `None` of these means renderers must not start.
pub struct Nested {
    outer: Arc<Outer>,
    xephyr: PathBuf,
    /// The user's display (Xephyr's host).
    user: Address,
    /// The display number every sandboxed nested server uses inside its own view: one no process
    /// of the host listens on (a renderer's libxcb tries the abstract socket of that name in the
    /// host's network namespace first).
    sandboxed_number: u32,
    /// Holds that number's abstract socket name on the host (see [`claim_display_number`]).
    _claim: std::os::fd::OwnedFd,
    /// bubblewrap for Xephyr, when namespaces work; otherwise Xephyr runs unsandboxed on a free
    /// display number of the host.
    bwrap: Option<PathBuf>,
    filter: Option<&'static seccomp::Filter>,
    /// Numbers handed to unsandboxed servers that still run.
    taken: Arc<Mutex<Vec<u32>>>,
    /// Starts the servers: a long-lived thread (a child's death signal fires when the thread
    /// that spawned it exits).
    spawner: crossbeam_channel::Sender<SpawnJob>,
}

/// A server's process, once its spawner started it.
#[derive(Default)]
struct Root {
    pidfd: Option<Pidfd>,
    /// The display ended before its server was started: end the server at once.
    ended: bool,
}

/// A server to start, where its pidfd goes, and the connection its host window was made on.
type SpawnJob = (Command, Arc<Mutex<Root>>, Arc<Outer>);

/// The spawner thread: starts each server and hands its pidfd to its display.
fn spawn_servers(jobs: crossbeam_channel::Receiver<SpawnJob>) {
    for (command, root, outer) in jobs {
        if let Err(e) = outer.conn.get_input_focus().map(|c| c.reply()) {
            log::warn!("the display connection failed before a tab's display started: {e}");
        }
        let pidfd = match crate::host::spawn_held(command) {
            Ok((_child, pidfd)) => pidfd,
            Err(e) => {
                log::error!("cannot start a tab's display (Xephyr): {e}");
                continue;
            }
        };
        let mut root = root.lock().unwrap_or_else(|e| e.into_inner());
        if root.ended {
            let _ = pidfd.signal(Signal::SIGKILL);
        }
        root.pidfd = Some(pidfd);
    }
}

impl Nested {
    /// The user's display's root window (the self-test's probe display lives in it, unmapped).
    pub fn root_window(&self) -> u32 {
        self.outer.root
    }

    /// Checks that nested displays can work here: Xephyr is installed and the user's display is
    /// reachable. `bwrap`: bubblewrap when the renderer sandbox uses namespaces.
    pub fn detect(
        bwrap: Option<PathBuf>,
        filter: Option<&'static seccomp::Filter>,
    ) -> Result<Nested, String> {
        let xephyr = find_in_path(XEPHYR)
            .ok_or_else(|| format!("Xephyr is not installed: {INSTALL_HINT}"))?;
        let user = Address::from_env().ok_or_else(|| {
            "$DISPLAY is not a local X display; nested displays need one".to_owned()
        })?;
        let (conn, screen) = x11rb::connect(Some(&user.name))
            .map_err(|e| format!("cannot connect to the display {}: {e}", user.name))?;
        let screen = &conn.setup().roots[screen];
        let outer = Outer {
            root: screen.root,
            root_depth: screen.root_depth,
            root_visual: screen.root_visual,
            colormap: screen.default_colormap,
            background: screen.white_pixel,
            conn,
        };
        let (sandboxed_number, claim) = claim_display_number(user.number)?;
        let (spawner, jobs) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("displays".into())
            .spawn(move || spawn_servers(jobs))
            .map_err(|e| format!("cannot start the display spawner thread: {e}"))?;
        Ok(Nested {
            outer: Arc::new(outer),
            xephyr,
            user,
            sandboxed_number,
            _claim: claim,
            bwrap,
            filter,
            taken: Arc::new(Mutex::new(Vec::new())),
            spawner,
        })
    }

    /// Starts a nested display for `tab` inside `parent` (the browser window) at `bounds`, with
    /// its files in `dir` (created here, mode 0700; removed when the display ends). Returns once
    /// the server process exists; it listens a moment later.
    pub fn start(
        &self,
        tab: TabId,
        parent: u32,
        bounds: Bounds,
        visible: bool,
        dir: PathBuf,
    ) -> io::Result<NestedDisplay> {
        let cookie = random_cookie()?;
        let (number, sandboxed) = match &self.bwrap {
            Some(_) => (self.sandboxed_number, true),
            None => {
                let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
                let mut avoid = taken.clone();
                avoid.push(self.user.number);
                let n = free_display_number(100, &avoid)
                    .ok_or_else(|| io::Error::other("no free X display number"))?;
                taken.push(n);
                (n, false)
            }
        };
        // From here on a failure gives the number back and removes the directory: dropping
        // `display` does.
        let mut display = NestedDisplay {
            outer: Arc::clone(&self.outer),
            tab,
            host_window: 0,
            xephyr_window: None,
            root: Arc::default(),
            number,
            sandboxed,
            sockets: dir.join("sockets"),
            dir,
            cookie,
            bounds,
            visible,
            taken: (!sandboxed).then(|| Arc::clone(&self.taken)),
            on_end: None,
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&display.dir)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&display.sockets)?;
        let xauthority = display.dir.join("xauthority");
        write_xauthority(&xauthority, &display.cookie)?;
        display.host_window = self.create_host_window(parent, bounds, visible)?;
        let log = std::fs::File::create(display.dir.join("xephyr.log"))?;
        let mut server = server_args(number, display.host_window, &xauthority);
        let mut command = match (&self.bwrap, sandboxed) {
            (Some(bwrap), true) => {
                let mut c = Command::new(bwrap);
                c.args(bwrap::xephyr_args(&bwrap::XephyrView {
                    sockets: &display.sockets,
                    xauthority: &xauthority,
                    user_display: self.user.number,
                    user_xauthority: self.user.xauthority.as_deref(),
                }));
                c.arg("--").arg(&self.xephyr);
                c
            }
            _ => Command::new(&self.xephyr),
        };
        command.args(server.drain(..));
        command.env_clear();
        command.env("DISPLAY", &self.user.name);
        command.env("PATH", "/usr/local/bin:/usr/bin:/bin");
        if let Some(xauth) = &self.user.xauthority {
            command.env("XAUTHORITY", xauth);
        }
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let setup = hygiene::ChildSetup::without_channels(self.filter);
        // SAFETY: `ChildSetup::run` only makes async-signal-safe calls.
        unsafe {
            command.pre_exec(move || setup.run());
        }
        // Forking the browser twice per new tab (the renderer, its server) on the UI thread made
        // the browser slow to answer while many tabs open at once: the server is spawned by a
        // thread of its own.
        self.spawner
            .send((command, Arc::clone(&display.root), Arc::clone(&self.outer)))
            .map_err(|_| io::Error::other("the display spawner thread is gone"))?;
        Ok(display)
    }

    fn create_host_window(&self, parent: u32, bounds: Bounds, visible: bool) -> io::Result<u32> {
        let outer = &self.outer;
        let conn = &outer.conn;
        let window = conn.generate_id().map_err(io::Error::other)?;
        conn.create_window(
            outer.root_depth,
            window,
            parent,
            clamp_i16(bounds.x),
            clamp_i16(bounds.y),
            clamp_u16(bounds.width),
            clamp_u16(bounds.height),
            0,
            WindowClass::INPUT_OUTPUT,
            // Xephyr needs the root visual; the browser window has GLX's, so the colormap and
            // border must be given too.
            outer.root_visual,
            &CreateWindowAux::new()
                .background_pixel(outer.background)
                .border_pixel(0)
                .colormap(outer.colormap),
        )
        .map_err(io::Error::other)?;
        if visible {
            conn.map_window(window).map_err(io::Error::other)?;
        }
        // The window must exist before Xephyr is told about it: the spawner thread makes a round
        // trip first (not the UI thread: the server may be busy with other tabs' servers).
        conn.flush().map_err(io::Error::other)?;
        outer.drain();
        Ok(window)
    }
}

/// One renderer's nested display: the host window, the Xephyr process and its files.
pub struct NestedDisplay {
    outer: Arc<Outer>,
    tab: TabId,
    host_window: u32,
    /// Xephyr's own window inside the host window, once found.
    xephyr_window: Option<u32>,
    /// bubblewrap around Xephyr, or Xephyr itself.
    root: Arc<Mutex<Root>>,
    number: u32,
    sandboxed: bool,
    /// The directory Xephyr's socket appears in (its `/tmp/.X11-unix` when sandboxed).
    sockets: PathBuf,
    /// This display's files: the sockets directory, the cookie, Xephyr's log.
    dir: PathBuf,
    cookie: [u8; 16],
    bounds: Bounds,
    visible: bool,
    /// For an unsandboxed server: the numbers in use, to give this one back.
    taken: Option<Arc<Mutex<Vec<u32>>>>,
    /// Called once when the display ends (the clipboard broker forgets it).
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

/// Where a renderer finds its nested display.
pub struct RendererView<'a> {
    /// The directory shown to the renderer as `/tmp/.X11-unix` (sandboxed servers only).
    pub sockets: Option<&'a Path>,
    /// The cookie file (shown read-only at the same path).
    pub xauthority: PathBuf,
    /// `DISPLAY` for the renderer.
    pub display: String,
}

impl NestedDisplay {
    pub fn tab(&self) -> TabId {
        self.tab
    }

    /// The process the browser started (bubblewrap or Xephyr), for the Task Manager.
    pub fn root_pid(&self) -> Option<u32> {
        let root = self.root.lock().unwrap_or_else(|e| e.into_inner());
        root.pidfd.as_ref().map(Pidfd::pid)
    }

    /// The browser's window on the user's display that shows this display.
    pub fn host_window(&self) -> u32 {
        self.host_window
    }

    /// Where the renderer finds this display.
    pub fn renderer_view(&self) -> RendererView<'_> {
        RendererView {
            sockets: self.sandboxed.then_some(self.sockets.as_path()),
            xauthority: self.dir.join("xauthority"),
            display: format!(":{}", self.number),
        }
    }

    /// The server's socket as the browser reaches it, and its cookie (for the clipboard broker).
    pub fn address(&self) -> (PathBuf, [u8; 16]) {
        let socket = if self.sandboxed {
            self.sockets.join(format!("X{}", self.number))
        } else {
            PathBuf::from(format!("/tmp/.X11-unix/X{}", self.number))
        };
        (socket, self.cookie)
    }

    /// Xephyr's window, looked up once it exists.
    fn xephyr_window(&mut self) -> Option<u32> {
        if self.xephyr_window.is_none() {
            let tree = self
                .outer
                .conn
                .query_tree(self.host_window)
                .ok()
                .and_then(|c| c.reply().ok());
            self.xephyr_window = tree.and_then(|t| t.children.first().copied());
            if let Some(w) = self.xephyr_window {
                // Xephyr took the host window's size when it started; it may have changed since.
                let _ = self.outer.conn.configure_window(
                    w,
                    &ConfigureWindowAux::new()
                        .x(0)
                        .y(0)
                        .width(u32::from(clamp_u16(self.bounds.width)))
                        .height(u32::from(clamp_u16(self.bounds.height))),
                );
            }
        }
        self.xephyr_window
    }

    /// The renderer connected (its display is up): find Xephyr's window and bring it in line.
    pub fn renderer_ready(&mut self) {
        self.xephyr_window();
        self.flush();
    }

    /// Moves and resizes the host window and the nested screen with it.
    pub fn set_bounds(&mut self, bounds: Bounds) {
        self.bounds = bounds;
        let conn = &self.outer.conn;
        let _ = conn.configure_window(
            self.host_window,
            &ConfigureWindowAux::new()
                .x(i32::from(clamp_i16(bounds.x)))
                .y(i32::from(clamp_i16(bounds.y)))
                .width(u32::from(clamp_u16(bounds.width)))
                .height(u32::from(clamp_u16(bounds.height))),
        );
        if let Some(w) = self.xephyr_window() {
            let _ = self.outer.conn.configure_window(
                w,
                &ConfigureWindowAux::new()
                    .width(u32::from(clamp_u16(bounds.width)))
                    .height(u32::from(clamp_u16(bounds.height))),
            );
        }
        self.flush();
    }

    /// Maps (the active tab) or unmaps the host window.
    pub fn set_visible(&mut self, visible: bool) {
        self.visible = visible;
        let conn = &self.outer.conn;
        let _ = if visible {
            conn.map_window(self.host_window)
        } else {
            conn.unmap_window(self.host_window)
        };
        self.flush();
    }

    /// Gives the page the user's keyboard: X input focus on Xephyr's window.
    pub fn focus(&mut self) {
        if !self.visible {
            return;
        }
        if let Some(w) = self.xephyr_window() {
            let _ = self
                .outer
                .conn
                .set_input_focus(InputFocus::PARENT, w, x11rb::CURRENT_TIME);
            self.flush();
        }
    }

    fn flush(&self) {
        let _ = self.outer.conn.flush();
        self.outer.drain();
    }

    /// Sets what to do when the display ends.
    pub fn on_end(&mut self, f: Box<dyn FnOnce() + Send>) {
        self.on_end = Some(f);
    }

    /// Ends the server (and its sandbox).
    pub fn kill(&mut self) {
        let mut root = self.root.lock().unwrap_or_else(|e| e.into_inner());
        root.ended = true;
        if let Some(pidfd) = &root.pidfd {
            let _ = pidfd.signal(Signal::SIGKILL);
        }
    }
}

impl Drop for NestedDisplay {
    fn drop(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end();
        }
        if self.xephyr_window.is_none() {
            // The renderer never came up on this display: what the server said is the clue.
            let log = std::fs::read(self.dir.join("xephyr.log")).unwrap_or_default();
            let tail = String::from_utf8_lossy(&log[log.len().saturating_sub(2048)..]).into_owned();
            if !tail.trim().is_empty() {
                log::warn!(
                    "tab {}'s display ended before its page showed; Xephyr said:\n{}",
                    self.tab,
                    tail.trim()
                );
            }
        }
        self.kill();
        if self.host_window != 0 {
            let _ = self.outer.conn.destroy_window(self.host_window);
            self.flush();
        }
        crate::sandbox::cleanup::remove_in_background(std::mem::take(&mut self.dir));
        if let Some(taken) = &self.taken {
            let number = self.number;
            taken
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|n| *n != number);
        }
    }
}

/// Xephyr's arguments for display `:number` drawn into `host_window`, accepting only the
/// cookie in `xauthority`.
fn server_args(number: u32, host_window: u32, xauthority: &Path) -> Vec<OsString> {
    vec![
        OsString::from(format!(":{number}")),
        "-parent".into(),
        host_window.to_string().into(),
        "-auth".into(),
        xauthority.into(),
        // Only the Unix socket; no XTEST (nothing inside needs to fake input).
        "-nolisten".into(),
        "tcp".into(),
        "-tst".into(),
        // The renderer is in an IPC namespace of its own: shared-memory images would fail
        // (BadAccess, fatal to GDK). Also less for a renderer to attack.
        "-extension".into(),
        "MIT-SHM".into(),
        // No GLX: nothing inside draws with OpenGL on this display (the renderer's GTK only
        // probes it; WebKit's web process draws elsewhere). With GLX, the server loads Mesa's
        // software driver and with it LLVM, whose relocated data cost 10.5 MiB of private
        // memory in every Xephyr (issue 9), and GTK in the renderer loads it again to probe.
        "-extension".into(),
        "GLX".into(),
        // Xephyr would grab the user's keyboard and mouse on Ctrl+Shift.
        "-no-host-grab".into(),
        // Follows its window's size (the browser resizes it with the content area).
        "-resizeable".into(),
        // The renderer is its only client that matters; never reset under it.
        "-noreset".into(),
    ]
}

fn clamp_i16(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// X sizes are 1..=32767 (a zero size is BadValue).
fn clamp_u16(v: u32) -> u16 {
    v.clamp(1, 32767) as u16
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
}

/// The first display number from `from` that no X server of this machine uses: no socket file,
/// no lock file, no abstract socket of that name (read from `/proc/net/unix`), not in `avoid`.
pub fn free_display_number(from: u32, avoid: &[u32]) -> Option<u32> {
    let abstract_names = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let used = |n: u32| {
        avoid.contains(&n)
            || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            || Path::new(&format!("/tmp/.X{n}-lock")).exists()
            || abstract_names
                .lines()
                .any(|l| l.ends_with(&format!(" @/tmp/.X11-unix/X{n}")))
    };
    (from..from + 1000).find(|&n| !used(n))
}

/// A display number for the sandboxed servers, with its abstract socket name bound (not listening)
/// by the browser for as long as it runs. Each sandboxed server listens in a network namespace of
/// its own, so nothing on the host would otherwise hold the name, and an X server started later
/// on the host (another browser's unsandboxed one, any program's) could take it: renderers, whose
/// libxcb tries that abstract name before their own path socket, would then connect there. Bound
/// but not listening, the name refuses connections (`ECONNREFUSED`), and libxcb falls back to the
/// path socket, which in a renderer's view is its own display's.
fn claim_display_number(user: u32) -> Result<(u32, std::os::fd::OwnedFd), String> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let mut avoid = vec![user];
    for _ in 0..100 {
        let n = free_display_number(100, &avoid).ok_or("no free X display number")?;
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| format!("cannot create a socket: {e}"))?;
        let name = UnixAddr::new_abstract(format!("/tmp/.X11-unix/X{n}").as_bytes())
            .map_err(|e| format!("bad socket name: {e}"))?;
        match bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &name) {
            Ok(()) => return Ok((n, fd)),
            // Taken since it was checked: try the next one.
            Err(_) => avoid.push(n),
        }
    }
    Err("no free X display number".into())
}

fn random_cookie() -> io::Result<[u8; 16]> {
    let mut cookie = [0u8; 16];
    // SAFETY: getrandom(2) fills the buffer it is given.
    let n = unsafe { libc::getrandom(cookie.as_mut_ptr().cast(), cookie.len(), 0) };
    if n != cookie.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

/// The Xauthority entry that holds `cookie` for any host and display (family "wild"), as both
/// Xephyr (`-auth`) and the renderer's libxcb (`XAUTHORITY`) read it.
pub fn xauthority_entry(cookie: &[u8; 16]) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0xffffu16.to_be_bytes());
    field(&mut out, b"");
    field(&mut out, b"");
    field(&mut out, b"MIT-MAGIC-COOKIE-1");
    field(&mut out, cookie);
    out
}

fn write_xauthority(path: &Path, cookie: &[u8; 16]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(&xauthority_entry(cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nested_server_offers_neither_shared_memory_nor_glx() {
        let args = server_args(7, 42, Path::new("/x/xauthority"));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(&args[..3], [":7", "-parent", "42"]);
        let disabled: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "-extension")
            .map(|w| w[1])
            .collect();
        assert_eq!(disabled, ["MIT-SHM", "GLX"]);
        assert!(args.windows(2).any(|w| w == ["-auth", "/x/xauthority"]));
    }

    #[test]
    fn the_cookie_file_is_one_wild_entry() {
        let entry = xauthority_entry(&[7; 16]);
        assert_eq!(&entry[..2], &[0xff, 0xff]);
        // Empty address and display number.
        assert_eq!(&entry[2..6], &[0, 0, 0, 0]);
        assert_eq!(&entry[6..8], &[0, 18]);
        assert_eq!(&entry[8..26], b"MIT-MAGIC-COOKIE-1");
        assert_eq!(&entry[26..28], &[0, 16]);
        assert_eq!(&entry[28..], &[7; 16]);
    }

    #[test]
    fn free_numbers_skip_the_avoided_ones() {
        let n = free_display_number(100, &[100, 101]).expect("a free number");
        assert!(n >= 102);
    }

    #[test]
    fn sizes_are_clamped_to_what_x_takes() {
        assert_eq!(clamp_u16(0), 1);
        assert_eq!(clamp_u16(100_000), 32767);
        assert_eq!(clamp_i16(-100_000), i16::MIN);
    }
}
