//! A deliberately hostile renderer for the end-to-end tests: it breaks the renderer's contract in the way `WARREN_HOSTILE_MODE` asks, so the tests can prove the browser survives it and keeps it inside its tab.
//!
//! The browser starts it exactly like the real renderer (`--renderer PATH`): through the sandbox
//! (or not, with `--no-sandbox`), up socket on fd 3, the launch channel's receiver on fd 4,
//! `WARREN_TAB_ID`, a private `TMPDIR`, and a clean environment: the tests start the browser with
//! `WARREN_RENDERER_PASSENV` naming the `WARREN_HOSTILE_*` variables, so they reach it.
//!
//! `WARREN_HOSTILE_MODE` is one mode name (every tab), or `by-tab:1=flood,2=silent,*=normal`: the
//! mode of the tab whose id is `WARREN_TAB_ID`, else the `*` mode (else `silent`). Tab ids are
//! the browser's own, so one browser hosts a different mode per tab without any shared file (a
//! sandboxed renderer sees no directory outside its own).
//!
//! Modes breaking the up channel:
//! * `garbage`: random bytes (small random length prefixes with random payloads, then raw noise).
//! * `oversize`: the length prefix 0xFFFF_FFFF, then bytes.
//! * `fds`: a valid Hello frame sent with SCM_RIGHTS carrying open descriptors.
//! * `flood`: a valid handshake, then `TitleChanged` frames as fast as the socket takes them.
//! * `silent`: nothing at all.
//! * `wrong-tab`: a valid handshake, then a frame carrying another tab's id.
//! * `bad-scheme`: a valid handshake, then `UrlChanged` to `javascript:alert(1)`.
//! * `forge-state`: a valid handshake, then claims to show `file:///etc/passwd` (`UrlChanged`,
//!   a `HistoryState` with it as the current entry and made-up WebKit state bytes, and the same in
//!   every `StateCaptured` it is asked for), and keeps answering pings. It prints the URL and the
//!   restore it was launched with (`hostile-renderer: tab N launched with url=… restore=…`), so a
//!   test can check what the browser gave the renderer that brought the tab back.
//! * `normal`: a well-behaved renderer without a view: handshake, `UrlChanged` to the launch URL,
//!   `Loading(false)`, answers pings and state requests, exits on `Shutdown`.
//!
//! Modes that name a socket for the browser to connect to, in an *old-style* `Hello`: the
//! handshake before issue 7 was `Hello { server_name }`, and the browser connected to that name
//! and sent the tab's `Launch` there. The frame is written by hand ([`old_style_hello`]): the
//! postcard encoding of that old variant, which today's decoder refuses (a unit `Hello` followed
//! by trailing bytes).
//! * `bad-server-name`: names a live one-shot server outside `$TMPDIR`;
//!   `bad-server-name-dotdot`: the same, named as `$TMPDIR/../…`; `bad-server-name-symlink`: the
//!   same, reached through a symlink inside `$TMPDIR`.
//! * `hardlink` (issue 7, defect 2): hard-links another process's SEQPACKET socket
//!   (`WARREN_HOSTILE_VICTIM`) into `$TMPDIR` — where the sandbox lets it see the socket at all —
//!   and names the link (or, if it could not link, the victim's own path).
//! * `stream-hello` (defect 5): names a `SOCK_STREAM` socket it listens on in `$TMPDIR`; ipc-channel
//!   0.23.1's `connect` leaked one descriptor per such name.
//!
//! Modes reaching past the tab's processes and files:
//! * `escape` (defect 3): a valid handshake, then a double-forked, `setsid` grandchild that ignores
//!   SIGHUP/SIGTERM/SIGINT and has no death signal; its `comm` and its arguments carry
//!   `WARREN_HOSTILE_MARKER`, so a test finds it in `/proc`. The renderer then answers pings but
//!   ignores `Shutdown` (it must be killed).
//! * `no-pdeathsig` (defect 3): like `escape`, and the renderer also clears its own
//!   `PR_SET_PDEATHSIG` and stays alive when the browser is gone.
//! * `deep-dir` (defect 4): a valid handshake, then a chain of `WARREN_HOSTILE_DEPTH` (default
//!   15,000) nested directories in `$TMPDIR`, then it exits with status 1 (the tab crashes and the
//!   browser cleans up after it).
//!
//! Modes that cost the browser time (issue 7, defects 7 and 8), each after a valid handshake:
//! * `byte-flood`: `UrlChanged` frames of 64 KiB, 900 a second: inside the message budget, far
//!   over the byte budget.
//! * `title-flood`: `TitleChanged` frames, 900 a second: inside both budgets, so it is never
//!   ended; the browser must coalesce them.
//! * `heavy`: a private mapping of `WARREN_HOSTILE_HEAVY_MIB` MiB (default 4096) whose page table
//!   entries all point at the zero page (it costs page tables, not memory), then
//!   `WARREN_HOSTILE_CHILDREN` (default 15) children that inherit it; reading `smaps_rollup` of
//!   each takes the kernel about 10 ms per 4 GiB. Then it behaves like `normal`.
//!
//! Modes for the display isolation (issue 8):
//! * `x11-attack`: behaves like `normal` (a live tab), and meanwhile, on a thread of its own, acts
//!   as a page that took over its renderer after start-up: it connects to `$DISPLAY` (waiting up
//!   to 10 s for its socket: a nested server may still be starting), applies the Landlock scoping
//!   the real renderer applies, then in `WARREN_HOSTILE_X11_ROUNDS` rounds (default 5), 2 s apart,
//!   puts a 240x240 window named `hostile-tab-N` of a colour of its own on its display (the bait
//!   another tab must not see), lists the windows of its display with their names (QueryTree), reads its root window
//!   (GetImage: size and most common colours), types Ctrl+T, "evil", Return with XTEST and sends
//!   Ctrl+T key events (SendEvent) to the input focus and every top-level window; then tries the
//!   user's display `WARREN_HOSTILE_OUTER_DISPLAY` (`:N`) through its path socket and its abstract
//!   socket and, if either connects, does the same there; and lists `/tmp/.X11-unix` and the
//!   displays its Xauthority files name. Each attempt is one line
//!   `hostile-renderer: x11 WHAT ok|denied|error tab=N round=R DETAIL`, then
//!   `hostile-renderer: x11 done tab=N` (`warren_tests::x11::attack_report` reads them).
//! * `exec-real`: becomes the real renderer (`exec` of `WARREN_HOSTILE_REAL_RENDERER`, a copy the
//!   test put where the sandbox shows it), so one browser mixes real pages and hostile tabs.
//!
//! Whenever the browser wrongly goes along (connects to a socket named in a `Hello`), this program
//! prints a line containing `HOSTILE-RENDERER-UNCAUGHT`, which the test looks for in the browser
//! log; a victim socket outside notices by itself.

use std::ffi::CString;
use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use rand::Rng;
use warren_ipc::{
    frame, BrowserToRenderer, HistoryEntry, Launch, PageState, RendererToBrowser, SessionHistory,
    TabId, UpFrame, DOWN_FD, ENV_TAB_ID, UP_FD,
};

/// The local file `forge-state` claims its tab shows.
const FORGED_URL: &str = "file:///etc/passwd";

/// The first argument of the process an `escape` renderer starts, which double-forks.
pub const ESCAPEE_ARG: &str = "--escapee";
/// The first argument of the escaped grandchild itself; the second is the marker.
pub const ESCAPED_ARG: &str = "--escaped";

/// The depth of the `deep-dir` chain, unless `WARREN_HOSTILE_DEPTH` says otherwise.
const DEFAULT_DEPTH: usize = 15_000;

/// How long a renderer waits for its `Launch` after Hello (as the real one does).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(ESCAPEE_ARG) => escapee(args.get(2).map_or("wescapee", String::as_str)),
        Some(ESCAPED_ARG) => escaped(args.get(2).map_or("wescapee", String::as_str)),
        _ => {}
    }
    let parent = nix::unistd::getppid();
    // Never outlive the browser, even if it forgets to kill us (the modes that mean to outlive it
    // undo this themselves).
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(1);
    }
    let tab = TabId(
        std::env::var(ENV_TAB_ID)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let mode = choose_mode(
        tab,
        &std::env::var("WARREN_HOSTILE_MODE").unwrap_or_default(),
    );
    eprintln!(
        "hostile-renderer: tab {tab} pid {} mode {mode}",
        std::process::id()
    );
    if mode == "exec-real" {
        // Before `take_fd`: the channels on fds 3 and 4 must survive the exec.
        exec_real(tab, &args);
    }
    let Some(up) = take_fd(UP_FD) else {
        eprintln!("hostile-renderer: no up socket on fd {UP_FD}; start me through the browser's --renderer");
        std::process::exit(2);
    };
    let up = UnixStream::from(up);
    let launch = take_fd(DOWN_FD).map(IpcReceiver::<Launch>::from);
    let mut h = Hostile { up, tab, launch };
    match mode.as_str() {
        "garbage" => h.garbage(),
        "oversize" => h.oversize(),
        "fds" => h.fds(),
        "flood" => h.flood(),
        "silent" => {}
        "wrong-tab" => h.wrong_tab(),
        "bad-server-name" => h.bad_server_name(Outside::Absolute),
        "bad-server-name-dotdot" => h.bad_server_name(Outside::DotDot),
        "bad-server-name-symlink" => h.bad_server_name(Outside::Symlink),
        "bad-scheme" => h.bad_scheme(),
        "forge-state" => h.forge_state(),
        "normal" => h.normal(),
        "hardlink" => h.hardlink(),
        "stream-hello" => h.stream_hello(),
        "escape" => h.escape(),
        "no-pdeathsig" => h.no_pdeathsig(),
        "deep-dir" => h.deep_dir(),
        // Issue 7, defects 7 and 8 (see the block "Budgets" below).
        "byte-flood" => h.byte_flood(),
        "title-flood" => h.title_flood(),
        "heavy" => h.heavy(),
        // Issue 8 (see the block "X11" below).
        "x11-attack" => h.x11_attack(),
        other => eprintln!("hostile-renderer: unknown mode {other:?}; staying silent"),
    }
    sleep_forever();
}

/// Takes an inherited descriptor if it is open, marked close-on-exec so that nothing this program
/// starts inherits it.
fn take_fd(fd: i32) -> Option<OwnedFd> {
    // SAFETY: only borrowed for the check; nothing else in this process uses the number yet.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).ok()?;
    // SAFETY: the descriptor is open (checked above) and owned by the result alone from here on.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The mode for `tab` from a `WARREN_HOSTILE_MODE` value (see the module docs).
pub fn choose_mode(tab: TabId, spec: &str) -> String {
    if spec.is_empty() {
        return "silent".into();
    }
    let Some(rules) = spec.strip_prefix("by-tab:") else {
        return spec.to_owned();
    };
    let mut fallback = "silent";
    for rule in rules.split(',') {
        let Some((who, mode)) = rule.split_once('=') else {
            continue;
        };
        match who.trim() {
            "*" => fallback = mode.trim(),
            id if id.parse() == Ok(tab.0) => return mode.trim().to_owned(),
            _ => {}
        }
    }
    fallback.to_owned()
}

/// The bytes of an old-style `Hello { server_name }` up frame for `tab`, prefix included: postcard
/// writes the tab id and the string length as LEB128 varints and the variant index (0, `Hello`)
/// as one byte.
pub fn old_style_hello(tab: TabId, server_name: &str) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut payload = Vec::new();
    varint(tab.0, &mut payload);
    payload.push(0);
    varint(server_name.len() as u64, &mut payload);
    payload.extend_from_slice(server_name.as_bytes());
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend(payload);
    out
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The marker an escaped process carries (`WARREN_HOSTILE_MARKER`, cut to the 15 bytes of `comm`).
fn marker() -> String {
    let mut m = std::env::var("WARREN_HOSTILE_MARKER").unwrap_or_else(|_| "wescapee".into());
    m.truncate(15);
    m
}

/// First process of the double fork: a new session, the grandchild, then exit so that the
/// grandchild is orphaned.
fn escapee(marker: &str) -> ! {
    let _ = nix::unistd::setsid();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let spawned = Command::new(exe)
        .args([ESCAPED_ARG, marker])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => eprintln!(
            "hostile-renderer: escaped grandchild pid {} (marker {marker})",
            child.id()
        ),
        Err(e) => eprintln!("hostile-renderer: cannot start the escaped grandchild: {e}"),
    }
    std::process::exit(0);
}

/// The escaped grandchild: named after the marker, deaf to the polite signals, no death signal,
/// alive until killed.
fn escaped(marker: &str) -> ! {
    if let Ok(name) = CString::new(marker) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    let _ = nix::sys::prctl::set_pdeathsig(None);
    for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(s, SigHandler::SigIgn) };
    }
    sleep_forever();
}

/// How a one-shot server name points outside the renderer's runtime directory.
enum Outside {
    Absolute,
    DotDot,
    Symlink,
}

struct Hostile {
    up: UnixStream,
    tab: TabId,
    /// The launch channel inherited on fd 4 (`None` if the browser passed none).
    launch: Option<IpcReceiver<Launch>>,
}

impl Hostile {
    /// Sends one well-formed frame; write errors (the browser hung up) end the program.
    fn send(&mut self, tab: TabId, msg: RendererToBrowser) {
        let bytes = frame::encode(&UpFrame { tab_id: tab, msg }).expect("encodable frame");
        self.send_raw(&bytes);
    }

    /// Sends bytes as they are; write errors (the browser hung up) end the program.
    fn send_raw(&mut self, bytes: &[u8]) {
        if self.up.write_all(bytes).is_err() {
            eprintln!("hostile-renderer: tab {} up socket closed", self.tab);
            std::process::exit(0);
        }
    }

    /// A correct handshake: Hello, the `Launch` from the inherited channel, Ready.
    fn handshake(&mut self) -> Launch {
        self.send(self.tab, RendererToBrowser::Hello);
        let Some(receiver) = self.launch.take() else {
            eprintln!(
                "hostile-renderer: tab {}: no launch channel on fd {DOWN_FD}",
                self.tab
            );
            sleep_forever();
        };
        let launch = match receiver.try_recv_timeout(LAUNCH_TIMEOUT) {
            Ok(launch) => launch,
            Err(e) => {
                eprintln!("hostile-renderer: the browser never sent a Launch: {e:?}");
                sleep_forever();
            }
        };
        self.send(self.tab, RendererToBrowser::Ready { landlock: false });
        launch
    }

    /// Answers the browser like a renderer whose page is `url` until the down channel closes
    /// (returns) or `Shutdown` arrives (exits, unless `obey_shutdown` is false).
    fn serve(&mut self, launch: &Launch, history: &SessionHistory, obey_shutdown: bool) {
        let url = history
            .current_entry()
            .map_or_else(|| launch.view.url.clone(), |e| e.url.clone());
        loop {
            match launch.receiver.recv() {
                Ok(BrowserToRenderer::CaptureState { request }) => self.send(
                    self.tab,
                    RendererToBrowser::StateCaptured {
                        request,
                        history: history.clone(),
                        page: PageState {
                            url: url.clone(),
                            scroll_x: 0.0,
                            scroll_y: 0.0,
                            zoom: 1.0,
                            fields: Vec::new(),
                        },
                    },
                ),
                Ok(BrowserToRenderer::Ping { seq }) => {
                    self.send(self.tab, RendererToBrowser::Pong { seq })
                }
                Ok(BrowserToRenderer::Shutdown) if obey_shutdown => std::process::exit(0),
                Ok(BrowserToRenderer::Shutdown) => {
                    eprintln!("hostile-renderer: tab {} ignores Shutdown", self.tab)
                }
                Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// A handshake and the messages of a finished load of the launch URL; returns the launch and
    /// the one-entry history it reports.
    fn load(&mut self) -> (Launch, SessionHistory) {
        let launch = self.handshake();
        let url = launch.view.url.clone();
        self.send(self.tab, RendererToBrowser::UrlChanged { url: url.clone() });
        self.send(self.tab, RendererToBrowser::Loading(false));
        let history = SessionHistory {
            entries: vec![HistoryEntry {
                url,
                title: String::new(),
            }],
            current: 0,
            webkit_state: Vec::new(),
        };
        (launch, history)
    }

    /// See the `normal` mode in the module docs.
    fn normal(&mut self) {
        let (launch, history) = self.load();
        self.serve(&launch, &history, true);
        std::process::exit(0);
    }

    /// See the `forge-state` mode in the module docs.
    fn forge_state(&mut self) {
        self.send(self.tab, RendererToBrowser::Hello);
        let Some(launch) = self
            .launch
            .take()
            .and_then(|r| r.try_recv_timeout(LAUNCH_TIMEOUT).ok())
        else {
            eprintln!("hostile-renderer: the browser never sent a Launch");
            sleep_forever();
        };
        let restore = match &launch.view.restore {
            Some(snapshot) => format!(
                "[{}]",
                snapshot
                    .history
                    .entries
                    .iter()
                    .map(|e| e.url.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => "none".to_owned(),
        };
        eprintln!(
            "hostile-renderer: tab {} launched with url={} restore={restore}",
            self.tab, launch.view.url
        );
        self.send(self.tab, RendererToBrowser::Ready { landlock: false });
        let history = SessionHistory {
            entries: vec![
                HistoryEntry {
                    url: launch.view.url.clone(),
                    title: "start".into(),
                },
                HistoryEntry {
                    url: FORGED_URL.into(),
                    title: "passwd".into(),
                },
            ],
            current: 1,
            webkit_state: vec![0xde; 64],
        };
        self.send(
            self.tab,
            RendererToBrowser::UrlChanged {
                url: FORGED_URL.into(),
            },
        );
        self.send(self.tab, RendererToBrowser::HistoryState(history.clone()));
        self.send(self.tab, RendererToBrowser::Loading(false));
        self.serve(&launch, &history, true);
        std::process::exit(0);
    }

    fn garbage(&mut self) {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let len = rng.random_range(1..=512u32);
            let mut chunk = len.to_le_bytes().to_vec();
            let mut payload = vec![0u8; len as usize];
            rng.fill(&mut payload[..]);
            chunk.extend_from_slice(&payload);
            if self.up.write_all(&chunk).is_err() {
                return;
            }
        }
        let mut noise = vec![0u8; 64 * 1024];
        rng.fill(&mut noise[..]);
        let _ = self.up.write_all(&noise);
    }

    fn oversize(&mut self) {
        let mut bytes = 0xFFFF_FFFFu32.to_le_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(b'A', 256 * 1024));
        let _ = self.up.write_all(&bytes);
    }

    fn fds(&mut self) {
        let bytes = frame::encode(&UpFrame {
            tab_id: self.tab,
            msg: RendererToBrowser::Hello,
        })
        .expect("encodable frame");
        // More descriptors than fit a small control buffer: the kernel then installs the ones
        // that fit in the receiver and truncates the rest, and a receiver that sized its buffer
        // for a few would leak them. The browser's test counts its /dev/null descriptors.
        let devnull = std::fs::File::open("/dev/null").expect("open /dev/null");
        let passed = [devnull.as_raw_fd(); 64];
        let sent = sendmsg::<UnixAddr>(
            self.up.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&passed)],
            MsgFlags::empty(),
            None,
        );
        eprintln!(
            "hostile-renderer: tab {} sent Hello with {} descriptors: {sent:?}",
            self.tab,
            passed.len()
        );
    }

    fn flood(&mut self) {
        let launch = self.handshake();
        let mut n: u64 = 0;
        loop {
            n += 1;
            self.send(
                launch.tab_id,
                RendererToBrowser::TitleChanged {
                    title: format!("flood {n}"),
                },
            );
        }
    }

    fn wrong_tab(&mut self) {
        let launch = self.handshake();
        let other = TabId(launch.tab_id.0.wrapping_add(1000));
        self.send(
            other,
            RendererToBrowser::TitleChanged {
                title: "not my tab".into(),
            },
        );
    }

    fn bad_scheme(&mut self) {
        let launch = self.handshake();
        self.send(
            launch.tab_id,
            RendererToBrowser::UrlChanged {
                url: "javascript:alert(1)".into(),
            },
        );
    }

    /// Announces, in an old-style Hello, a live one-shot server that lies outside `$TMPDIR`. If
    /// the browser connects to it, it went along.
    fn bad_server_name(&mut self, how: Outside) {
        let tmp = std::env::temp_dir();
        let pid = std::process::id();
        let outside_base = std::env::var_os("WARREN_HOSTILE_OUTSIDE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let (server_dir, shown_dir) = match how {
            Outside::Absolute => {
                let d = outside_base.join(format!("hostile-{pid}-abs"));
                (d.clone(), d)
            }
            Outside::DotDot => {
                let d = tmp.join("..").join(format!("hostile-{pid}-dotdot"));
                (d.clone(), d)
            }
            Outside::Symlink => {
                let target = outside_base.join(format!("hostile-{pid}-target"));
                let link = tmp.join("link");
                let _ = std::fs::create_dir_all(&target);
                if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
                    eprintln!(
                        "hostile-renderer: cannot make symlink {}: {e}",
                        link.display()
                    );
                }
                (target, link)
            }
        };
        let server = std::fs::create_dir_all(&server_dir).ok().and_then(|_| {
            // The one-shot server's directory comes from TMPDIR; point it outside for a moment.
            // This program is single-threaded here, so changing the environment is sound.
            std::env::set_var("TMPDIR", &server_dir);
            let server = IpcOneShotServer::<Launch>::new().ok();
            std::env::set_var("TMPDIR", &tmp);
            server
        });
        let name = match &server {
            Some((_, real)) => {
                // Rewrite the real path to the form this mode wants the browser to see.
                let rest = Path::new(real)
                    .strip_prefix(&server_dir)
                    .map(Path::to_path_buf);
                match rest {
                    Ok(rest) => shown_dir.join(rest).to_string_lossy().into_owned(),
                    Err(_) => real.clone(),
                }
            }
            None => {
                eprintln!(
                    "hostile-renderer: could not create an outside server in {}",
                    server_dir.display()
                );
                shown_dir.join("socket").to_string_lossy().into_owned()
            }
        };
        eprintln!(
            "hostile-renderer: tab {} announces server name {name}",
            self.tab
        );
        let hello = old_style_hello(self.tab, &name);
        self.send_raw(&hello);
        if let Some((server, _)) = server {
            if server.accept().is_ok() {
                eprintln!(
                    "hostile-renderer: HOSTILE-RENDERER-UNCAUGHT tab {}: the browser connected to the outside server {name}",
                    self.tab
                );
            }
        }
    }

    /// See the `hardlink` mode in the module docs.
    fn hardlink(&mut self) {
        let Some(victim) = std::env::var_os("WARREN_HOSTILE_VICTIM").map(PathBuf::from) else {
            eprintln!("hostile-renderer: hardlink needs WARREN_HOSTILE_VICTIM");
            return;
        };
        let link = std::env::temp_dir().join("victim.sock");
        let name = match std::fs::hard_link(&victim, &link) {
            Ok(()) => {
                eprintln!(
                    "hostile-renderer: tab {} hard-linked {} as {}",
                    self.tab,
                    victim.display(),
                    link.display()
                );
                link
            }
            Err(e) => {
                eprintln!(
                    "hostile-renderer: tab {} cannot hard-link {} into its TMPDIR ({e}); naming it directly",
                    self.tab,
                    victim.display()
                );
                victim
            }
        };
        let hello = old_style_hello(self.tab, &name.to_string_lossy());
        self.send_raw(&hello);
    }

    /// See the `stream-hello` mode in the module docs.
    fn stream_hello(&mut self) {
        let path = std::env::temp_dir().join(format!("stream-{}.sock", std::process::id()));
        let listener = match UnixListener::bind(&path) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("hostile-renderer: cannot listen on {}: {e}", path.display());
                None
            }
        };
        let hello = old_style_hello(self.tab, &path.to_string_lossy());
        self.send_raw(&hello);
        // Keep the listener open for as long as the browser lets us live.
        std::mem::forget(listener);
    }

    /// Starts the double fork that leaves a `setsid` grandchild behind (see `escape`).
    fn start_escapee(&self) {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        match Command::new(exe)
            .args([ESCAPEE_ARG, &marker()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
        {
            Ok(status) => eprintln!(
                "hostile-renderer: tab {} started an escapee ({status})",
                self.tab
            ),
            Err(e) => eprintln!("hostile-renderer: cannot start the escapee: {e}"),
        }
    }

    /// See the `escape` mode in the module docs.
    fn escape(&mut self) {
        let (launch, history) = self.load();
        self.start_escapee();
        self.serve(&launch, &history, false);
    }

    /// See the `no-pdeathsig` mode in the module docs.
    fn no_pdeathsig(&mut self) {
        match nix::sys::prctl::set_pdeathsig(None) {
            Ok(()) => eprintln!(
                "hostile-renderer: tab {} cleared its death signal",
                self.tab
            ),
            Err(e) => eprintln!("hostile-renderer: cannot clear the death signal: {e}"),
        }
        for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
            // SAFETY: SIG_IGN installs no handler code.
            let _ = unsafe { signal(s, SigHandler::SigIgn) };
        }
        let (launch, history) = self.load();
        self.start_escapee();
        // Returns when the browser is gone; the caller then sleeps forever.
        self.serve(&launch, &history, false);
        eprintln!("hostile-renderer: tab {} outlives its browser", self.tab);
    }

    /// See the `deep-dir` mode in the module docs.
    fn deep_dir(&mut self) {
        let _launch = self.handshake();
        let depth = std::env::var("WARREN_HOSTILE_DEPTH")
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(DEFAULT_DEPTH);
        match deep_chain(&std::env::temp_dir().join("deep"), depth) {
            Ok(()) => eprintln!(
                "hostile-renderer: tab {} made a chain of {depth} directories in {}",
                self.tab,
                std::env::temp_dir().display()
            ),
            Err(e) => eprintln!("hostile-renderer: deep chain failed: {e}"),
        }
        std::process::exit(1);
    }
}

/// Creates `depth` nested directories `d/d/d/…` under `top`, each relative to the descriptor of
/// its parent (the whole path is far longer than `PATH_MAX`).
fn deep_chain(top: &Path, depth: usize) -> nix::Result<()> {
    use nix::fcntl::{open, openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    let _ = std::fs::create_dir(top);
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let mut dir = open(top, flags, Mode::empty())?;
    for _ in 0..depth {
        mkdirat(&dir, "d", Mode::from_bits_truncate(0o700))?;
        dir = openat(&dir, "d", flags, Mode::empty())?;
    }
    Ok(())
}

// ----- Budgets (issue 7, defects 7 and 8): modes that cost the browser time -----

/// How many frames a second the flood modes send: under the browser's message budget (1000).
const FLOOD_RATE: u32 = 900;

impl Hostile {
    /// Sends `frame` [`FLOOD_RATE`] times a second (paced, not as fast as the socket takes it),
    /// until the browser hangs up.
    fn paced(&mut self, mut frame: impl FnMut(u64) -> RendererToBrowser) -> ! {
        let start = std::time::Instant::now();
        let mut sent: u64 = 0;
        loop {
            let due = start + Duration::from_secs(sent) / FLOOD_RATE;
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            let msg = frame(sent);
            self.send(self.tab, msg);
            sent += 1;
            if sent.is_multiple_of(u64::from(FLOOD_RATE)) {
                eprintln!(
                    "hostile-renderer: tab {} sent {sent} flood frames",
                    self.tab
                );
            }
        }
    }

    /// See the `byte-flood` mode in the module docs.
    fn byte_flood(&mut self) {
        // Kept: the down channel stays open while the flood runs.
        let _launch = self.load();
        let pad = "a".repeat(warren_ipc::MAX_URL_LEN - 64);
        self.paced(|n| RendererToBrowser::UrlChanged {
            url: format!("https://flood.example/{n}/{pad}"),
        });
    }

    /// See the `title-flood` mode in the module docs.
    fn title_flood(&mut self) {
        let _launch = self.load();
        self.paced(|n| RendererToBrowser::TitleChanged {
            title: format!("title flood {n}"),
        });
    }

    /// See the `heavy` mode in the module docs.
    fn heavy(&mut self) {
        let (launch, history) = self.load();
        let number = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let mib = number("WARREN_HOSTILE_HEAVY_MIB", 4096);
        let children = number("WARREN_HOSTILE_CHILDREN", 15);
        match zero_page_mapping(mib << 20) {
            Ok(()) => {}
            Err(e) => eprintln!("hostile-renderer: tab {}: no heavy mapping: {e}", self.tab),
        }
        let mut forked = 0;
        for _ in 0..children {
            // SAFETY: the child only makes async-signal-safe calls (prctl, pause) until it is
            // killed; this program has no other threads that could hold a lock.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    // SAFETY: plain system calls.
                    unsafe {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                        loop {
                            libc::pause();
                        }
                    }
                }
                Ok(nix::unistd::ForkResult::Parent { .. }) => forked += 1,
                Err(e) => {
                    eprintln!("hostile-renderer: tab {}: fork failed: {e}", self.tab);
                    break;
                }
            }
        }
        eprintln!(
            "hostile-renderer: tab {} is heavy: {mib} MiB of page tables' worth in {} processes",
            self.tab,
            forked + 1
        );
        self.serve(&launch, &history, true);
        std::process::exit(0);
    }
}

/// Maps `len` bytes privately and makes every page table entry point at the kernel's zero page:
/// one written page gives the mapping an anonymous-memory owner, so `fork` copies the entries
/// (instead of leaving the child to fault them in), and reading the rest maps the zero page,
/// which costs no memory. The mapping is leaked: it lives as long as the process.
fn zero_page_mapping(len: usize) -> std::io::Result<()> {
    // SAFETY: a fresh anonymous mapping that nothing else refers to; it is only touched through
    // the pointer below, within its length.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        addr.cast::<u8>().write_volatile(1);
        if libc::madvise(addr, len, libc::MADV_POPULATE_READ) != 0 {
            // Before Linux 5.14: fault the pages in by reading one byte of each.
            let page = 4096;
            let mut sum = 0u8;
            for offset in (page..len).step_by(page) {
                sum = sum.wrapping_add(addr.cast::<u8>().add(offset).read_volatile());
            }
            std::hint::black_box(sum);
        }
    }
    Ok(())
}

// ----- X11 (issue 8): a renderer taken over by its page, reaching past its tab through X -----

/// The renderer the `exec-real` mode becomes: a copy the test put where the sandbox shows it
/// (the profile's website-data directory; the real `renderer` next to this program is not in the
/// sandbox's view).
const REAL_RENDERER_ENV: &str = "WARREN_HOSTILE_REAL_RENDERER";

/// The user's display (`:N`), which `x11-attack` is told so it does not have to guess.
const OUTER_DISPLAY_ENV: &str = "WARREN_HOSTILE_OUTER_DISPLAY";

/// How many rounds `x11-attack` makes (`WARREN_HOSTILE_X11_ROUNDS`), 2 s apart.
const X11_ROUNDS_ENV: &str = "WARREN_HOSTILE_X11_ROUNDS";
const X11_ROUNDS: u32 = 5;
const X11_ROUND_GAP: Duration = Duration::from_secs(2);

/// How long the renderer's display socket may take to appear (a nested server still starting).
const DISPLAY_WAIT: Duration = Duration::from_secs(10);

/// At most this many windows are listed per display (the tree is the server's to make long).
const MAX_WINDOWS: usize = 512;

/// See the `exec-real` mode in the module docs. Never returns.
fn exec_real(tab: TabId, args: &[String]) -> ! {
    use std::os::unix::process::CommandExt;
    let Some(real) = std::env::var_os(REAL_RENDERER_ENV) else {
        eprintln!("hostile-renderer: tab {tab}: exec-real needs {REAL_RENDERER_ENV}");
        std::process::exit(2);
    };
    let err = Command::new(&real).args(args.iter().skip(1)).exec();
    eprintln!(
        "hostile-renderer: tab {tab}: cannot exec {}: {err}",
        Path::new(&real).display()
    );
    std::process::exit(2);
}

impl Hostile {
    /// See the `x11-attack` mode in the module docs.
    fn x11_attack(&mut self) {
        let (launch, history) = self.load();
        let tab = self.tab;
        if let Err(e) = std::thread::Builder::new()
            .name("x11-attack".into())
            .spawn(move || x11::attack(tab))
        {
            eprintln!("hostile-renderer: x11 thread error tab={tab} {e}");
        }
        self.serve(&launch, &history, true);
        std::process::exit(0);
    }
}

/// The attacks of `x11-attack`, each reported as one line on stderr:
/// `hostile-renderer: x11 WHAT ok|denied|error tab=N round=R DETAIL` (`DETAIL` is JSON where it
/// has structure), and `hostile-renderer: x11 done tab=N` at the end. `warren_tests::x11` reads
/// them back.
mod x11 {
    use std::collections::HashMap;
    use std::fmt::Display;
    use std::io::ErrorKind;
    use std::os::unix::net::UnixStream;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use serde_json::json;
    use warren_ipc::TabId;
    use x11rb::connection::{Connection, RequestConnection};
    use x11rb::errors::{ConnectionError, ReplyError};
    use x11rb::protocol::xproto::{
        self, AtomEnum, ConnectionExt as _, EventMask, ImageFormat, ImageOrder, KeyButMask,
        KeyPressEvent, Window,
    };
    use x11rb::protocol::xtest::{self, ConnectionExt as _};
    use x11rb::rust_connection::{DefaultStream, RustConnection};
    use x11rb::wrapper::ConnectionExt as _;
    use x11rb::NONE;

    use super::{
        DISPLAY_WAIT, MAX_WINDOWS, OUTER_DISPLAY_ENV, X11_ROUNDS, X11_ROUNDS_ENV, X11_ROUND_GAP,
    };

    /// SendEvent's destination "whatever window has the input focus".
    const INPUT_FOCUS: Window = 1;

    /// Keysyms the attack types besides the letters: Control_L and Return.
    const CONTROL_L: u32 = 0xffe3;
    const RETURN: u32 = 0xff0d;

    /// Where the report lines go; carries the tab and round so that two attacking tabs in one log
    /// stay apart.
    struct Report {
        tab: TabId,
        round: u32,
    }

    impl Report {
        fn line(&self, what: &str, status: &str, detail: impl Display) {
            eprintln!(
                "hostile-renderer: x11 {what} {status} tab={} round={} {detail}",
                self.tab, self.round
            );
        }

        /// Reports a failed request: `denied` for the errors a server's access control answers
        /// with, `error` for anything else.
        fn failed(&self, what: &str, e: &ReplyError) {
            let status = match e {
                ReplyError::X11Error(x) if denial(x.error_kind) => "denied",
                _ => "error",
            };
            self.line(what, status, json!(format!("{e:?}")));
        }
    }

    fn denial(kind: x11rb::protocol::ErrorKind) -> bool {
        use x11rb::protocol::ErrorKind as K;
        matches!(kind, K::Access | K::Window | K::Drawable | K::Match)
    }

    pub fn attack(tab: TabId) {
        let mut r = Report { tab, round: 0 };
        let own = connect_own(&r);
        if let Some((conn, screen)) = &own {
            bait_window(conn, *screen, &r);
        }
        landlock(&r);
        let rounds = std::env::var(X11_ROUNDS_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(X11_ROUNDS);
        let outer = std::env::var(OUTER_DISPLAY_ENV).ok();
        for round in 1..=rounds {
            r.round = round;
            r.line("round", "ok", round);
            if let Some((conn, screen)) = &own {
                against(conn, *screen, "own", &r);
            }
            match outer.as_deref().and_then(display_number) {
                Some(n) => reach_outer(n, &r),
                None => r.line(
                    "outer",
                    "error",
                    json!(format!(
                        "{OUTER_DISPLAY_ENV} is not a display (:N): {outer:?}"
                    )),
                ),
            }
            socket_dir(&r);
            xauthority(&r);
            if round < rounds {
                std::thread::sleep(X11_ROUND_GAP);
            }
        }
        eprintln!("hostile-renderer: x11 done tab={tab}");
    }

    /// The colour of tab `tab`'s bait window: distinct per tab, unlike any test page's.
    pub fn bait_colour(tab: TabId) -> [u8; 3] {
        let t = (tab.0 % 16) as u8;
        [0x11 + t * 0x0e, 0xe4 - t * 0x0c, 0x5a]
    }

    /// Puts a window of this tab's own on its display, 240x240 at a spot that depends on the tab,
    /// named `hostile-tab-N` and filled with [`bait_colour`]: what another tab must not see.
    fn bait_window(conn: &RustConnection, screen: usize, r: &Report) {
        let s = &conn.setup().roots[screen];
        let [red, green, blue] = bait_colour(r.tab);
        let name = format!("hostile-tab-{}", r.tab);
        let made = (|| -> Result<(), ReplyError> {
            let pixel = conn
                .alloc_color(
                    s.default_colormap,
                    u16::from(red) * 257,
                    u16::from(green) * 257,
                    u16::from(blue) * 257,
                )?
                .reply()?
                .pixel;
            let w = conn.generate_id().map_err(|e| {
                ReplyError::ConnectionError(ConnectionError::IoError(std::io::Error::other(
                    e.to_string(),
                )))
            })?;
            let x = 40 + 260 * (r.tab.0 % 4) as i16;
            conn.create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                w,
                s.root,
                x,
                (s.height_in_pixels as i16 - 300).max(0),
                240,
                240,
                0,
                xproto::WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &xproto::CreateWindowAux::new()
                    .background_pixel(pixel)
                    .override_redirect(1),
            )?
            .check()?;
            conn.change_property8(
                xproto::PropMode::REPLACE,
                w,
                AtomEnum::WM_NAME,
                AtomEnum::STRING,
                name.as_bytes(),
            )?
            .check()?;
            conn.map_window(w)?.check()?;
            Ok(())
        })();
        match made {
            Ok(()) => r.line(
                "own-window",
                "ok",
                json!({ "name": name, "colour": format!("#{red:02x}{green:02x}{blue:02x}") }),
            ),
            Err(e) => r.failed("own-window", &e),
        }
    }

    /// `:N` or `:N.S` → N.
    fn display_number(display: &str) -> Option<u16> {
        let rest = display.strip_prefix(':')?;
        rest.split('.').next()?.parse().ok()
    }

    /// Connects to `$DISPLAY` the way the real renderer does (libxcb and x11rb both try the
    /// abstract socket, then the path one), once its socket exists.
    fn connect_own(r: &Report) -> Option<(RustConnection, usize)> {
        let display = std::env::var("DISPLAY").unwrap_or_default();
        r.line(
            "own-env",
            "ok",
            json!({
                "DISPLAY": display,
                "XAUTHORITY": std::env::var("XAUTHORITY").ok(),
            }),
        );
        let n = display_number(&display)?;
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let start = Instant::now();
        while !socket.exists() && start.elapsed() < DISPLAY_WAIT {
            std::thread::sleep(Duration::from_millis(100));
        }
        match RustConnection::connect(None) {
            Ok((conn, screen)) => {
                r.line(
                    "own-connect",
                    "ok",
                    json!({ "display": display, "after_ms": start.elapsed().as_millis() as u64 }),
                );
                Some((conn, screen))
            }
            Err(e) => {
                r.line(
                    "own-connect",
                    "error",
                    json!(format!(
                        "{display}: {e} (socket exists: {})",
                        socket.exists()
                    )),
                );
                None
            }
        }
    }

    /// Applies the Landlock scoping the real renderer applies once its X connection exists (when
    /// the browser asks for it in `WARREN_SANDBOX`): the attack runs as a page that took over a
    /// renderer after start-up would.
    fn landlock(r: &Report) {
        let layers = std::env::var(warren_ipc::ENV_SANDBOX).unwrap_or_default();
        if !layers.split(',').any(|l| l == "landlock") {
            r.line(
                "landlock",
                "ok",
                json!(format!(
                    "not asked for ({}={layers:?})",
                    warren_ipc::ENV_SANDBOX
                )),
            );
            return;
        }
        #[repr(C)]
        struct RulesetAttr {
            handled_access_fs: u64,
            handled_access_net: u64,
            scoped: u64,
        }
        // LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL (Landlock ABI 6).
        let attr = RulesetAttr {
            handled_access_fs: 0,
            handled_access_net: 0,
            scoped: 0b11,
        };
        // SAFETY: plain system calls with a fully initialised attribute struct of the size given.
        let result = unsafe {
            let fd = libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            );
            if fd < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let done = libc::syscall(libc::SYS_landlock_restrict_self, fd as i32, 0u32);
                let err = std::io::Error::last_os_error();
                libc::close(fd as i32);
                if done == 0 {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        };
        match result {
            Ok(()) => r.line("landlock", "ok", json!("abstract-unix-socket,signal")),
            Err(e) => r.line("landlock", "error", json!(e.to_string())),
        }
    }

    /// `ENOENT` for an errno, for the report.
    fn errno_name(e: &std::io::Error) -> String {
        match e.raw_os_error() {
            Some(code) => format!("{:?}", nix::errno::Errno::from_raw(code)),
            None => format!("{:?}", e.kind()),
        }
    }

    fn connect_status(e: &std::io::Error) -> &'static str {
        match e.kind() {
            ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::ConnectionRefused => {
                "denied"
            }
            _ if e.raw_os_error() == Some(libc::EPERM) => "denied",
            _ => "error",
        }
    }

    /// Tries the user's display `:n` through its path socket and its abstract socket; attacks it
    /// through whichever connects.
    fn reach_outer(n: u16, r: &Report) {
        let name = format!("/tmp/.X11-unix/X{n}");
        let path = UnixStream::connect(&name);
        let abstract_ = {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| UnixStream::connect_addr(&addr))
        };
        let mut streams = Vec::new();
        for (what, result) in [
            ("outer-path-connect", path),
            ("outer-abstract-connect", abstract_),
        ] {
            match result {
                Ok(s) => {
                    r.line(what, "ok", json!(name));
                    streams.push((what, s));
                }
                Err(e) => r.line(
                    what,
                    connect_status(&e),
                    json!({ "errno": errno_name(&e), "message": e.to_string() }),
                ),
            }
        }
        let Some((via, stream)) = streams.into_iter().next() else {
            return;
        };
        let (auth_name, auth_data) = cookie_for(n).unwrap_or_default();
        let conn = DefaultStream::from_unix_stream(stream).map_err(ConnectionError::from);
        let conn = conn.and_then(|(s, _)| {
            RustConnection::connect_to_stream_with_auth_info(s, 0, auth_name, auth_data)
                .map_err(|e| ConnectionError::IoError(std::io::Error::other(e.to_string())))
        });
        match conn {
            Ok(conn) => {
                r.line("outer-setup", "ok", json!({ "via": via }));
                against(&conn, 0, "outer", r);
            }
            Err(e) => r.line("outer-setup", "denied", json!(e.to_string())),
        }
    }

    /// Every attack against one display: list its windows, read its pixels, type into it (XTEST)
    /// and send key events to its windows.
    fn against(conn: &RustConnection, screen: usize, scope: &str, r: &Report) {
        let Some(root) = conn.setup().roots.get(screen).map(|s| s.root) else {
            r.line(&format!("{scope}-screen"), "error", json!("no such screen"));
            return;
        };
        let top_level = query_tree(conn, root, scope, r);
        get_image(conn, screen, scope, r);
        xtest_keys(conn, root, scope, r);
        send_keys(conn, root, &top_level, scope, r);
    }

    /// Lists the windows below the root (breadth first, at most [`MAX_WINDOWS`]) with their
    /// names; returns the top-level ones.
    fn query_tree(conn: &RustConnection, root: Window, scope: &str, r: &Report) -> Vec<Window> {
        let what = format!("{scope}-query-tree");
        let top = match conn
            .query_tree(root)
            .map_err(ReplyError::from)
            .and_then(|c| c.reply())
        {
            Ok(reply) => reply.children,
            Err(e) => {
                r.failed(&what, &e);
                return Vec::new();
            }
        };
        let net_wm_name = conn
            .intern_atom(false, b"_NET_WM_NAME")
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|a| a.atom);
        let mut names = Vec::new();
        let mut count = 0usize;
        let mut queue: std::collections::VecDeque<Window> = top.iter().copied().collect();
        while let Some(w) = queue.pop_front() {
            if count >= MAX_WINDOWS {
                break;
            }
            count += 1;
            for atom in [Some(u32::from(AtomEnum::WM_NAME)), net_wm_name]
                .into_iter()
                .flatten()
            {
                let name = conn
                    .get_property(false, w, atom, AtomEnum::ANY, 0, 64)
                    .ok()
                    .and_then(|c| c.reply().ok())
                    .filter(|p| !p.value.is_empty())
                    .map(|p| String::from_utf8_lossy(&p.value).into_owned());
                if let Some(name) = name {
                    if !names.contains(&name) && names.len() < 64 {
                        names.push(name);
                    }
                }
            }
            if let Ok(children) = conn
                .query_tree(w)
                .map_err(ReplyError::from)
                .and_then(|c| c.reply())
            {
                queue.extend(children.children);
            }
        }
        r.line(
            &what,
            "ok",
            json!({ "top_level": top.len(), "count": count, "names": names }),
        );
        top
    }

    /// Reads the whole root window and reports its size and most common colours.
    fn get_image(conn: &RustConnection, screen: usize, scope: &str, r: &Report) {
        let what = format!("{scope}-get-image");
        let s = &conn.setup().roots[screen];
        let (w, h) = (s.width_in_pixels, s.height_in_pixels);
        let reply = conn
            .get_image(ImageFormat::Z_PIXMAP, s.root, 0, 0, w, h, !0)
            .map_err(ReplyError::from)
            .and_then(|c| c.reply());
        let image = match reply {
            Ok(image) => image,
            Err(e) => return r.failed(&what, &e),
        };
        let visual = s
            .allowed_depths
            .iter()
            .flat_map(|d| &d.visuals)
            .find(|v| v.visual_id == image.visual);
        let bpp = conn
            .setup()
            .pixmap_formats
            .iter()
            .find(|f| f.depth == image.depth)
            .map(|f| f.bits_per_pixel);
        let (Some(visual), Some(32)) = (visual, bpp) else {
            return r.line(
                &what,
                "ok",
                json!({ "width": w, "height": h, "depth": image.depth, "bytes": image.data.len(),
                        "colours": [], "note": "pixel format not decoded" }),
            );
        };
        let big = conn.setup().image_byte_order == ImageOrder::MSB_FIRST;
        let mut counts: HashMap<[u8; 3], u64> = HashMap::new();
        for px in image.data.chunks_exact(4) {
            let bytes = [px[0], px[1], px[2], px[3]];
            let v = if big {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            };
            let channel = |mask: u32| {
                if mask == 0 {
                    return 0;
                }
                ((v & mask) >> mask.trailing_zeros()) as u8
            };
            *counts
                .entry([
                    channel(visual.red_mask),
                    channel(visual.green_mask),
                    channel(visual.blue_mask),
                ])
                .or_default() += 1;
        }
        let mut common: Vec<([u8; 3], u64)> = counts.iter().map(|(c, n)| (*c, *n)).collect();
        common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let colours: Vec<_> = common
            .iter()
            .take(8)
            .map(|([r, g, b], n)| json!([format!("#{r:02x}{g:02x}{b:02x}"), n]))
            .collect();
        r.line(
            &what,
            "ok",
            json!({ "width": w, "height": h, "depth": image.depth, "distinct": counts.len(),
                    "colours": colours }),
        );
    }

    /// The first keycode that produces `keysym` without modifiers.
    fn keycode(conn: &RustConnection, keysym: u32) -> Option<u8> {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = conn
            .get_keyboard_mapping(min, max - min + 1)
            .ok()?
            .reply()
            .ok()?;
        let per = usize::from(map.keysyms_per_keycode).max(1);
        map.keysyms
            .chunks(per)
            .position(|syms| syms.first() == Some(&keysym))
            .and_then(|i| u8::try_from(usize::from(min) + i).ok())
    }

    /// XTEST: Ctrl+T, then "evil" and Return, as if typed on the display's keyboard.
    fn xtest_keys(conn: &RustConnection, root: Window, scope: &str, r: &Report) {
        let what = format!("{scope}-xtest");
        if conn
            .extension_information(xtest::X11_EXTENSION_NAME)
            .ok()
            .flatten()
            .is_none()
        {
            return r.line(&what, "error", json!("the XTEST extension is absent"));
        }
        let keys: Vec<u32> = "tevil".chars().map(u32::from).collect();
        let codes: Option<Vec<u8>> = std::iter::once(CONTROL_L)
            .chain(keys)
            .chain(std::iter::once(RETURN))
            .map(|k| keycode(conn, k))
            .collect();
        let Some(codes) = codes else {
            return r.line(
                &what,
                "error",
                json!("no keycode for Control_L, t, e, v, i, l or Return"),
            );
        };
        let (ctrl, t, typed) = (codes[0], codes[1], &codes[2..]);
        let fake = |kind: u8, code: u8| -> Result<(), ReplyError> {
            conn.xtest_fake_input(kind, code, 0, root, 0, 0, 0)?.check()
        };
        let press = xproto::KEY_PRESS_EVENT;
        let release = xproto::KEY_RELEASE_EVENT;
        let mut sent = 0;
        let mut result = (|| {
            fake(press, ctrl)?;
            fake(press, t)?;
            fake(release, t)?;
            fake(release, ctrl)?;
            sent += 4;
            Ok(())
        })();
        if result.is_ok() {
            // The new tab's address bar takes the keyboard after a moment.
            std::thread::sleep(Duration::from_millis(500));
            result = typed.iter().try_for_each(|&code| {
                fake(press, code)?;
                fake(release, code)?;
                sent += 2;
                Ok(())
            });
        }
        match result {
            Ok(()) => r.line(&what, "ok", json!({ "events": sent })),
            Err(e) => r.failed(&what, &e),
        }
    }

    /// SendEvent: Ctrl+T key presses to the input focus and to every top-level window.
    fn send_keys(conn: &RustConnection, root: Window, top: &[Window], scope: &str, r: &Report) {
        let what = format!("{scope}-send-event");
        let Some(t) = keycode(conn, u32::from('t')) else {
            return r.line(&what, "error", json!("no keycode for t"));
        };
        let focus = conn
            .get_input_focus()
            .map_err(ReplyError::from)
            .and_then(|c| c.reply())
            .map(|f| f.focus);
        // PointerRoot (1) and None (0) are not windows: send to "the input focus" instead.
        let focus = match focus {
            Ok(f) if f > 1 => f,
            _ => INPUT_FOCUS,
        };
        let mut targets = vec![focus];
        targets.extend(top.iter().copied().filter(|w| *w != focus));
        let (mut ok, mut refused) = (0, Vec::new());
        for window in targets {
            let event = |response_type| KeyPressEvent {
                response_type,
                detail: t,
                sequence: 0,
                time: x11rb::CURRENT_TIME,
                root,
                event: window,
                child: NONE,
                root_x: 1,
                root_y: 1,
                event_x: 1,
                event_y: 1,
                state: KeyButMask::CONTROL,
                same_screen: true,
            };
            let sent = [xproto::KEY_PRESS_EVENT, xproto::KEY_RELEASE_EVENT]
                .into_iter()
                .try_for_each(|kind| {
                    conn.send_event(
                        true,
                        window,
                        EventMask::KEY_PRESS | EventMask::KEY_RELEASE,
                        event(kind),
                    )?
                    .check()
                });
            match sent {
                Ok(()) => ok += 1,
                Err(e) => refused.push(format!("{window:#x}: {e:?}")),
            }
        }
        let status = if ok > 0 { "ok" } else { "denied" };
        r.line(
            &what,
            status,
            json!({ "focus": format!("{focus:#x}"), "sent_to": ok, "refused": refused }),
        );
    }

    /// What kind of file a directory entry is, for the report.
    fn file_kind(t: std::fs::FileType) -> &'static str {
        use std::os::unix::fs::FileTypeExt;
        if t.is_socket() {
            "socket"
        } else if t.is_file() {
            "file"
        } else if t.is_dir() {
            "dir"
        } else if t.is_symlink() {
            "symlink"
        } else {
            "other"
        }
    }

    /// Lists `/tmp/.X11-unix/` with each entry's kind: which displays' sockets this process can
    /// see at all.
    fn socket_dir(r: &Report) {
        match std::fs::read_dir("/tmp/.X11-unix") {
            Ok(entries) => {
                let mut found: Vec<(String, &str)> = entries
                    .flatten()
                    .map(|e| {
                        let kind = e.file_type().map_or("unknown", file_kind);
                        (e.file_name().to_string_lossy().into_owned(), kind)
                    })
                    .collect();
                found.sort();
                let listed: Vec<_> = found
                    .iter()
                    .map(|(name, kind)| json!({ "name": name, "type": kind }))
                    .collect();
                r.line("socket-dir", "ok", json!(listed));
            }
            Err(e) => r.line("socket-dir", connect_status(&e), json!(errno_name(&e))),
        }
    }

    /// Reports which displays the Xauthority files this process can read hold cookies for.
    fn xauthority(r: &Report) {
        let mut files = Vec::new();
        if let Some(x) = std::env::var_os("XAUTHORITY") {
            files.push(PathBuf::from(x));
        }
        if let Some(home) = std::env::var_os("HOME") {
            files.push(Path::new(&home).join(".Xauthority"));
        }
        for file in files {
            let what = "xauthority";
            match std::fs::read(&file) {
                Ok(bytes) => {
                    let displays: Vec<String> = cookies(&bytes)
                        .into_iter()
                        .map(|c| String::from_utf8_lossy(&c.number).into_owned())
                        .collect();
                    r.line(what, "ok", json!({ "path": file, "displays": displays }));
                }
                Err(e) => r.line(
                    what,
                    connect_status(&e),
                    json!({ "path": file, "errno": errno_name(&e) }),
                ),
            }
        }
    }

    /// One Xauthority entry.
    struct Cookie {
        number: Vec<u8>,
        name: Vec<u8>,
        data: Vec<u8>,
    }

    /// Parses an Xauthority file: entries of a big-endian u16 family, then address, display
    /// number, auth name and auth data, each a big-endian u16 length and bytes. Stops at the
    /// first malformed entry.
    fn cookies(bytes: &[u8]) -> Vec<Cookie> {
        fn field<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
            let len = usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?]));
            let out = b.get(2..2 + len)?;
            *b = &b[2 + len..];
            Some(out)
        }
        let mut b = bytes;
        let mut out = Vec::new();
        while b.len() >= 2 {
            b = &b[2..];
            let (Some(_address), Some(number), Some(name), Some(data)) =
                (field(&mut b), field(&mut b), field(&mut b), field(&mut b))
            else {
                break;
            };
            out.push(Cookie {
                number: number.to_vec(),
                name: name.to_vec(),
                data: data.to_vec(),
            });
        }
        out
    }

    /// The first cookie for display `n` in any Xauthority file this process can read.
    fn cookie_for(n: u16) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut files = Vec::new();
        if let Some(x) = std::env::var_os("XAUTHORITY") {
            files.push(PathBuf::from(x));
        }
        if let Some(home) = std::env::var_os("HOME") {
            files.push(Path::new(&home).join(".Xauthority"));
        }
        let number = n.to_string().into_bytes();
        files.iter().find_map(|f| {
            let bytes = std::fs::read(f).ok()?;
            cookies(&bytes)
                .into_iter()
                .find(|c| c.number == number)
                .map(|c| (c.name, c.data))
        })
    }
}
