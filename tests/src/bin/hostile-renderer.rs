//! A deliberately hostile renderer for the end-to-end tests: it breaks the up-channel contract in the way `WARREN_HOSTILE_MODE` asks, so the tests can prove the browser survives it.
//!
//! The browser starts it exactly like the real renderer (`--renderer PATH`): up socket on fd 3,
//! `WARREN_TAB_ID`, a private `TMPDIR`. `WARREN_HOSTILE_MODE` is either one mode name, or
//! `queue:DIR`: then each renderer claims the first file `DIR/NN-MODE` (by renaming it into
//! `DIR/claimed/TAB-NN-MODE`, which is atomic), so one browser can host a different mode per tab.
//! An empty queue means `silent`.
//!
//! Modes:
//! * `garbage`: random bytes (small random length prefixes with random payloads, then raw noise).
//! * `oversize`: the length prefix 0xFFFF_FFFF, then bytes.
//! * `fds`: a valid Hello frame sent with SCM_RIGHTS carrying open descriptors.
//! * `flood`: a valid handshake, then `TitleChanged` frames as fast as the socket takes them.
//! * `silent`: nothing at all.
//! * `wrong-tab`: a valid handshake, then a frame carrying another tab's id.
//! * `bad-server-name`: Hello naming a live one-shot server outside `$TMPDIR`.
//! * `bad-server-name-dotdot`: the same, named as `$TMPDIR/../…`.
//! * `bad-server-name-symlink`: the same, reached through a symlink inside `$TMPDIR`.
//! * `bad-scheme`: a valid handshake, then `UrlChanged` to `javascript:alert(1)`.
//! * `forge-state`: a valid handshake, then claims to show `file:///etc/passwd` (`UrlChanged`,
//!   a `HistoryState` with it as the current entry and made-up WebKit state bytes, and the same in
//!   every `StateCaptured` it is asked for), and keeps answering pings. It prints the URL and the
//!   restore it was launched with (`hostile-renderer: tab N launched with url=… restore=…`), so a
//!   test can check what the browser gave the renderer that brought the tab back.
//!
//! Whenever the browser wrongly goes along (connects to an outside server), this program prints
//! a line containing `HOSTILE-RENDERER-UNCAUGHT`, which the test looks for in the browser log.

use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipc_channel::ipc::IpcOneShotServer;
use nix::sys::signal::Signal;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use rand::Rng;
use warren_ipc::{
    frame, BrowserToRenderer, HistoryEntry, Launch, PageState, RendererToBrowser, SessionHistory,
    TabId, UpFrame, ENV_TAB_ID, UP_FD,
};

/// The local file `forge-state` claims its tab shows.
const FORGED_URL: &str = "file:///etc/passwd";

fn main() {
    let parent = nix::unistd::getppid();
    // Never outlive the browser, even if it forgets to kill us.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(1);
    }
    if nix::fcntl::fcntl(
        unsafe { std::os::fd::BorrowedFd::borrow_raw(UP_FD) },
        nix::fcntl::FcntlArg::F_GETFD,
    )
    .is_err()
    {
        eprintln!("hostile-renderer: no up socket on fd {UP_FD}; start me through the browser's --renderer");
        std::process::exit(2);
    }
    // SAFETY: fd 3 is the inherited up socket (checked open above) and nothing else owns it.
    let up = unsafe { UnixStream::from_raw_fd(UP_FD) };
    let tab = TabId(
        std::env::var(ENV_TAB_ID)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let mode = choose_mode(tab);
    eprintln!(
        "hostile-renderer: tab {tab} pid {} mode {mode}",
        std::process::id()
    );
    let mut h = Hostile { up, tab };
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
        other => eprintln!("hostile-renderer: unknown mode {other:?}; staying silent"),
    }
    sleep_forever();
}

/// The mode from `WARREN_HOSTILE_MODE` (a name, or a claim from a `queue:DIR`).
fn choose_mode(tab: TabId) -> String {
    let spec = std::env::var("WARREN_HOSTILE_MODE").unwrap_or_else(|_| "silent".into());
    let Some(dir) = spec.strip_prefix("queue:") else {
        return spec;
    };
    let dir = Path::new(dir);
    let claimed = dir.join("claimed");
    let _ = std::fs::create_dir_all(&claimed);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for name in names {
        // rename is atomic: exactly one renderer wins each entry.
        if std::fs::rename(dir.join(&name), claimed.join(format!("{tab}-{name}"))).is_ok() {
            return name
                .split_once('-')
                .map(|(_, m)| m.to_string())
                .unwrap_or(name);
        }
    }
    "silent".into()
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
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
}

impl Hostile {
    /// Sends one well-formed frame; write errors (the browser hung up) end the program.
    fn send(&mut self, tab: TabId, msg: RendererToBrowser) {
        let bytes = frame::encode(&UpFrame { tab_id: tab, msg }).expect("encodable frame");
        if self.up.write_all(&bytes).is_err() {
            eprintln!("hostile-renderer: tab {} up socket closed", self.tab);
            std::process::exit(0);
        }
    }

    /// A correct handshake: own one-shot server in $TMPDIR, Hello, accept the Launch, Ready.
    fn handshake(&mut self) -> Launch {
        let (server, name) = IpcOneShotServer::<Launch>::new().expect("one-shot server in $TMPDIR");
        self.send(self.tab, RendererToBrowser::Hello { server_name: name });
        let (_receiver, launch) = match server.accept() {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("hostile-renderer: the browser never sent a Launch: {e:?}");
                sleep_forever();
            }
        };
        // Keep the down channel open for as long as we live.
        std::mem::forget(_receiver);
        self.send(self.tab, RendererToBrowser::Ready);
        launch
    }

    /// See the `forge-state` mode in the module docs.
    fn forge_state(&mut self) {
        let (server, name) = IpcOneShotServer::<Launch>::new().expect("one-shot server in $TMPDIR");
        self.send(self.tab, RendererToBrowser::Hello { server_name: name });
        let Ok((_server_receiver, launch)) = server.accept() else {
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
        self.send(self.tab, RendererToBrowser::Ready);
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
        loop {
            match launch.receiver.recv() {
                Ok(BrowserToRenderer::CaptureState { request }) => self.send(
                    self.tab,
                    RendererToBrowser::StateCaptured {
                        request,
                        history: history.clone(),
                        page: PageState {
                            url: FORGED_URL.into(),
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
                Ok(BrowserToRenderer::Shutdown) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
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
        let (_server, name) =
            IpcOneShotServer::<Launch>::new().expect("one-shot server in $TMPDIR");
        let bytes = frame::encode(&UpFrame {
            tab_id: self.tab,
            msg: RendererToBrowser::Hello { server_name: name },
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
        // Keep the server alive; if the browser wrongly goes on, it connects and we notice.
        if _server.accept().is_ok() {
            eprintln!("hostile-renderer: HOSTILE-RENDERER-UNCAUGHT tab {}: the browser accepted a Hello that carried descriptors", self.tab);
        }
        sleep_forever();
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

    /// Announces a live one-shot server that lies outside `$TMPDIR`. If the browser connects to
    /// it, it has failed to check the name.
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
        self.send(
            self.tab,
            RendererToBrowser::Hello {
                server_name: name.clone(),
            },
        );
        if let Some((server, _)) = server {
            if let Ok((receiver, launch)) = server.accept() {
                eprintln!(
                    "hostile-renderer: HOSTILE-RENDERER-UNCAUGHT tab {}: the browser connected to the outside server {name}",
                    self.tab
                );
                std::mem::forget(receiver);
                self.send(launch.tab_id, RendererToBrowser::Ready);
            }
        }
    }
}
