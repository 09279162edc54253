//! The browsers Warren is measured against (issue 9): Epiphany and surf (WebKitGTK, like Warren's
//! renderer) and Chromium (the multi-process reference), started on a test display with a fresh
//! temporary profile, measured like Warren (whole process-tree PSS, new tab to pixels), and
//! stopped (`scripts/install-peers.sh` installs them from Debian's packages).
//!
//! Each run gives the peer what a desktop would: its own HOME and XDG directories in a temporary
//! directory (removed afterwards) and a private D-Bus session bus (Epiphany is a GApplication
//! and needs one; surf and Chromium would otherwise autolaunch one through `dbus-launch`). Every
//! process a run starts carries a marker variable in its environment, so processes that leave the
//! peer's tree (D-Bus activated services such as dconf and the accessibility bus, Chromium's
//! crash handlers) are found too: they are listed in the notes with their PSS but not counted
//! (they are shared desktop services, or, for the crash handlers, not part of browsing), and
//! killed with the rest. Everything is stopped by pid and process group, never by name.
//!
//! A figure never comes from a broken run: memory is taken only once every tab has its own web
//! content process (Epiphany: a WebKitWebProcess per tab; surf: a process with its
//! WebKitWebProcess per URL; Chromium: at least one renderer per tab) and the tree's PSS has been
//! stable within 2% over 2 s.

use std::collections::BTreeSet;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::procs::{self, Proc};

/// The window size Warren opens with, given to the peers so that pages cost the same.
pub const WINDOW_WIDTH: u32 = 1024;
pub const WINDOW_HEIGHT: u32 = 768;

/// How long a peer may take to open all its tabs.
const OPEN_TIMEOUT: Duration = Duration::from_secs(90);

/// How long the tree's PSS may take to settle.
const STEADY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one new tab may take to show its colour.
const NEW_TAB_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that marks every process of one run.
const MARKER: &str = "WARREN_PEER_RUN";

/// Which browser a [`Peer`] is; decides how it is started and driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// GNOME Web: one UI process, a WebKitWebProcess per tab, one network process; a URL given
    /// to a second `epiphany` with the same HOME and session bus opens as a new tab of the
    /// running one.
    Epiphany,
    /// suckless surf: one process (and WebKitWebProcess) per window; a new tab is a new `surf`.
    Surf,
    /// Chromium: a URL given to a second `chromium` with the same user data directory opens as a
    /// new tab of the running one.
    Chromium,
}

/// One installed peer browser.
#[derive(Clone, Debug)]
pub struct Peer {
    name: &'static str,
    binary: PathBuf,
    kind: Kind,
}

/// The peers found on this machine (`epiphany`, `surf`, `chromium` on `PATH`), in that order.
pub fn installed() -> Vec<Peer> {
    [
        ("epiphany", "epiphany", Kind::Epiphany),
        ("surf", "surf", Kind::Surf),
        ("chromium", "chromium", Kind::Chromium),
    ]
    .into_iter()
    .filter_map(|(name, command, kind)| {
        Some(Peer {
            name,
            binary: find_on_path(command)?,
            kind,
        })
    })
    .collect()
}

fn find_on_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

impl Peer {
    /// `epiphany`, `surf` or `chromium`.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Which browser this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The binary that is run.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The version the browser reports (`Web 43.1`, `surf-2.1`, `Chromium 120.0…`), or why it
    /// could not be read.
    pub fn version(&self) -> String {
        let flag = match self.kind {
            Kind::Surf => "-v",
            Kind::Epiphany | Kind::Chromium => "--version",
        };
        let out = Command::new(&self.binary)
            .arg(flag)
            .stdin(Stdio::null())
            .env_remove("DISPLAY")
            .output();
        match out {
            Ok(out) => {
                // Debian's chromium wrapper script may print shell noise on stderr; the version
                // is on stdout (surf prints it on stderr).
                let text = String::from_utf8_lossy(if out.stdout.is_empty() {
                    &out.stderr
                } else {
                    &out.stdout
                })
                .into_owned();
                let line = text.lines().map(str::trim).find(|l| !l.is_empty());
                let line = line.unwrap_or("(no version printed)");
                // surf: "surf-2.1, see LICENSE for © details".
                line.split(", see LICENSE")
                    .next()
                    .unwrap_or(line)
                    .to_owned()
            }
            Err(e) => format!("(cannot run {}: {e})", self.binary.display()),
        }
    }
}

/// The memory of a peer with some tabs open.
#[derive(Debug, Clone)]
pub struct PeerMemory {
    /// How many tabs (URLs) were open.
    pub tabs: usize,
    /// PSS of the peer's whole process tree (every root it was started as, and all their
    /// descendants), in KiB.
    pub pss_kb: u64,
    /// How many processes that tree had.
    pub processes: usize,
    /// The command lines, what was not counted and why, and anything else a reader of the figure
    /// should know.
    pub notes: Vec<String>,
}

/// Starts `peer` on `display` (such as `":50"`) with a fresh profile and every URL of `urls` open
/// as a tab (surf: a window per URL), waits until every tab has its web process and the tree's
/// PSS is steady, measures the tree's PSS, and stops everything it started.
pub fn memory(peer: &Peer, display: &str, urls: &[String]) -> Result<PeerMemory, String> {
    if urls.is_empty() {
        return Err("memory needs at least one URL".into());
    }
    let mut run = Run::start(peer, display)?;
    let result = run.measure_memory(urls);
    run.stop();
    result
}

/// Starts `peer` on `display` with a fresh profile and a blank page, then for each run `i` of
/// `runs` asks it for a new tab with `url_of_run(i).0` the way it allows (Epiphany: `epiphany
/// URL` with the same HOME and session bus, handed to the running instance over D-Bus;
/// Chromium: `chromium --user-data-dir=SAME URL`, handed over through its singleton socket; surf:
/// a new `surf URL` process, ended after its run so windows do not pile up) and times the request
/// (the spawn of that command) to the page's colour `url_of_run(i).1` covering a 200x200 block of
/// the screen. Each run's colour must not be on screen before its request, and the command must
/// hand over and exit (not become a second instance). Stops everything afterwards.
pub fn new_tab(
    peer: &Peer,
    display: &str,
    url_of_run: &dyn Fn(usize) -> (String, [u8; 3]),
    runs: usize,
) -> Result<Vec<Duration>, String> {
    new_tab_with(peer, display, url_of_run, runs, Handover::Launcher)
}

/// How a new tab is asked of a running peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handover {
    /// The browser's own launcher, as a user's desktop runs it: a second `epiphany URL` or
    /// `chromium --user-data-dir=SAME URL` process, whose start-up (GTK, or Chromium's wrapper
    /// script and start, 0.1 to 1.5 s on a loaded 2-core machine) is counted; surf: `surf URL`.
    Launcher,
    /// The running instance's own interface, as Warren's control socket is for Warren: Chromium:
    /// DevTools' `PUT /json/new?URL`, from this process. Epiphany has none (it does not take
    /// `org.gtk.Application.Open`; its launcher passes URLs in a private format in `Activate`'s
    /// platform data) and surf has no other way than a new `surf URL`: both use their launcher.
    Direct,
}

/// [`new_tab`] with a choice of how the tab is asked for.
pub fn new_tab_with(
    peer: &Peer,
    display: &str,
    url_of_run: &dyn Fn(usize) -> (String, [u8; 3]),
    runs: usize,
    how: Handover,
) -> Result<Vec<Duration>, String> {
    let mut run = Run::start(peer, display)?;
    let result = run.time_new_tabs(url_of_run, runs, how);
    run.stop();
    result
}

/// One started peer: its scratch directory, its session bus and its processes.
struct Run {
    peer: Peer,
    display: String,
    marker: String,
    scratch: tempfile::TempDir,
    bus_address: String,
    bus: Option<Child>,
    /// The processes started as the browser (one for Epiphany and Chromium, one per window for
    /// surf); memory is the PSS of their trees.
    roots: Vec<Child>,
    notes: Vec<String>,
}

impl Run {
    /// Makes the scratch directories and starts the private session bus.
    fn start(peer: &Peer, display: &str) -> Result<Run, String> {
        // Services that double-fork (D-Bus activation, Chromium's crash handler) are re-parented
        // to this process instead of PID 1, so they are reaped when killed.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| format!("become a child subreaper: {e}"))?;
        let scratch = tempfile::Builder::new()
            // The marker is this directory's name: the peer and this process's pid (so one
            // process can tell its runs from another's) and a random part.
            .prefix(&format!(
                "warren-peer-{}-{}-",
                peer.name,
                std::process::id()
            ))
            .tempdir()
            .map_err(|e| format!("temporary profile directory: {e}"))?;
        for dir in ["home", "profile", "runtime"] {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(scratch.path().join(dir))
                .map_err(|e| format!("create {dir} in {}: {e}", scratch.path().display()))?;
        }
        let marker = scratch
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let socket = scratch.path().join("runtime").join("bus");
        let bus_address = format!("unix:path={}", socket.display());
        let mut run = Run {
            peer: peer.clone(),
            display: display.to_owned(),
            marker,
            bus_address,
            bus: None,
            roots: Vec::new(),
            notes: Vec::new(),
            scratch,
        };
        let mut cmd = Command::new("dbus-daemon");
        cmd.args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={}", run.bus_address));
        run.env(&mut cmd);
        let bus = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start dbus-daemon (install dbus): {e}"))?;
        run.bus = Some(bus);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() >= deadline {
                run.stop();
                return Err("the private dbus-daemon did not create its socket in 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(run)
    }

    fn home(&self) -> PathBuf {
        self.scratch.path().join("home")
    }

    fn profile(&self) -> PathBuf {
        self.scratch.path().join("profile")
    }

    /// The environment of every process of the run: nothing inherited but `PATH` and the locale.
    fn env(&self, cmd: &mut Command) {
        let home = self.home();
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("LANG", "C.UTF-8")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", self.scratch.path().join("runtime"))
            .env("DISPLAY", &self.display)
            .env("GDK_BACKEND", "x11")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .env(MARKER, &self.marker);
    }

    /// The arguments that start the browser (surf: one window) with `urls`.
    fn browser_args(&self, urls: &[String]) -> Vec<String> {
        let mut args: Vec<String> = match self.peer.kind {
            // No --profile: Epiphany makes that a private, non-unique instance, to which a
            // second `epiphany URL` cannot hand a tab over. Its default profile lives in the
            // run's temporary XDG_DATA_HOME, so it is fresh anyway.
            Kind::Epiphany => Vec::new(),
            Kind::Surf => Vec::new(),
            Kind::Chromium => vec![
                // Chromium refuses to run as root with its sandbox on.
                "--no-sandbox".into(),
                format!("--user-data-dir={}", self.profile().display()),
                "--no-first-run".into(),
                "--no-default-browser-check".into(),
                "--disable-features=Translate".into(),
                "--password-store=basic".into(),
                format!("--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}"),
                "--window-position=0,0".into(),
                // Only to list the open tabs and their URLs (`/json/list`): renderer processes
                // cannot tell tabs from Chromium's spare and helper renderers. Port 0: Chromium
                // picks one and writes it to DevToolsActivePort.
                "--remote-debugging-address=127.0.0.1".into(),
                "--remote-debugging-port=0".into(),
            ],
        };
        args.extend(urls.iter().cloned());
        args
    }

    /// Starts one browser process (a root) with `urls`.
    fn spawn_root(&mut self, urls: &[String]) -> Result<(), String> {
        let args = self.browser_args(urls);
        let line = format!("{} {}", self.peer.binary.display(), args.join(" "));
        if !self.notes.iter().any(|n| n.ends_with(&line)) {
            self.notes.push(format!("command: {line}"));
        }
        let child = self.spawn(&args)?;
        self.roots.push(child);
        Ok(())
    }

    fn spawn(&self, args: &[String]) -> Result<Child, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.path().join("browser.log"))
            .map_err(|e| format!("log file: {e}"))?;
        let mut cmd = Command::new(&self.peer.binary);
        cmd.args(args);
        self.env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.peer.binary.display()))
    }

    /// Every process of the browser: the roots and their live descendants.
    fn tree(&self) -> Vec<Proc> {
        self.roots
            .iter()
            .flat_map(|c| procs::process_tree(c.id() as i32))
            .collect()
    }

    /// Every live process that carries this run's marker or belongs to the tree.
    fn everything(&self) -> Vec<Proc> {
        let needle = format!("{MARKER}={}", self.marker);
        let mut all: Vec<Proc> = procs::all_processes()
            .into_iter()
            .filter(|p| p.state != 'Z' && p.state != 'X')
            .filter(|p| {
                std::fs::read(format!("/proc/{}/environ", p.pid))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
            })
            .collect();
        let known: BTreeSet<i32> = all.iter().map(|p| p.pid).collect();
        all.extend(self.tree().into_iter().filter(|p| !known.contains(&p.pid)));
        all
    }

    /// The processes of the run outside the browser's tree (the session bus, services it
    /// activated, re-parented helpers).
    fn outside(&self) -> Vec<Proc> {
        let tree: BTreeSet<i32> = self.tree().iter().map(|p| p.pid).collect();
        self.everything()
            .into_iter()
            .filter(|p| !tree.contains(&p.pid))
            .collect()
    }

    /// How many tabs have their own web content process now, and a description of what counts.
    fn open_tabs(&self) -> usize {
        match self.peer.kind {
            Kind::Epiphany => self
                .tree()
                .iter()
                .filter(|p| p.is_webkit_web_process())
                .count(),
            Kind::Surf => self
                .roots
                .iter()
                .filter(|c| {
                    procs::descendants(c.id() as i32)
                        .iter()
                        .any(Proc::is_webkit_web_process)
                })
                .count(),
            Kind::Chromium => self
                .tree()
                .iter()
                .filter(|p| {
                    let args = cmdline(p.pid);
                    args.iter().any(|a| a == "--type=renderer")
                        && !args.iter().any(|a| a == "--extension-process")
                })
                .count(),
        }
    }

    /// The browser tree's PSS in KiB and its process count.
    fn tree_pss(&self) -> (u64, usize) {
        let tree = self.tree();
        let pss = tree.iter().filter_map(|p| procs::pss_kb(p.pid)).sum();
        (pss, tree.len())
    }

    /// Waits until the tree's PSS is stable within 2% over 2 s (three samples a second apart).
    /// Returns the last sample; after [`STEADY_TIMEOUT`] returns the last one with a note.
    fn steady_pss(&mut self) -> (u64, usize) {
        let deadline = Instant::now() + STEADY_TIMEOUT;
        let mut samples: Vec<u64> = Vec::new();
        loop {
            let (pss, count) = self.tree_pss();
            samples.push(pss);
            if let [.., a, b, c] = samples[..] {
                let (lo, hi) = (a.min(b).min(c), a.max(b).max(c));
                if hi as f64 <= lo as f64 * 1.02 {
                    return (pss, count);
                }
            }
            if Instant::now() >= deadline {
                self.notes.push(format!(
                    "PSS did not settle within 2% in {STEADY_TIMEOUT:?}; last samples (KiB): {:?}",
                    &samples[samples.len().saturating_sub(5)..]
                ));
                return (pss, count);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Waits until `tabs` tabs have their web process; errors with the tree otherwise.
    fn wait_tabs(&self, tabs: usize, timeout: Duration) -> Result<(), String> {
        let found = crate::wait_until(timeout, || (self.open_tabs() >= tabs).then_some(()));
        found.ok_or_else(|| {
            format!(
                "{} did not open {tabs} tabs in {timeout:?} ({} with a web process); its \
                 processes:\n{}\nits log:\n{}",
                self.peer.name,
                self.open_tabs(),
                procs::describe(&self.tree()),
                self.log_tail()
            )
        })
    }

    /// Waits until Chromium's DevTools list holds a loaded page (one with a title) for every URL
    /// of `urls` (each as many times as it was given).
    fn wait_chromium_pages(&mut self, urls: &[String]) -> Result<(), String> {
        let mut last = String::new();
        let found = crate::wait_until(OPEN_TIMEOUT, || {
            let pages = match self.chromium_pages() {
                Ok(pages) => pages,
                Err(e) => {
                    last = e;
                    return None;
                }
            };
            let mut left: Vec<&(String, String)> = pages.iter().collect();
            for url in urls {
                // A loaded page has a title (its URL when it sets none); an empty one is still
                // loading.
                let i = left
                    .iter()
                    .position(|(u, title)| u == url && !title.is_empty())?;
                left.remove(i);
            }
            Some(pages)
        });
        match found {
            Some(pages) => {
                self.notes.push(format!(
                    "Chromium's tabs (DevTools /json/list, remote debugging on 127.0.0.1 for this check only): {}",
                    pages
                        .iter()
                        .map(|(u, t)| format!("{t:?} {u}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                Ok(())
            }
            None => Err(format!(
                "Chromium's DevTools list never held every URL of {urls:?} ({last})"
            )),
        }
    }

    /// The (URL, title) of every page Chromium's DevTools endpoint lists.
    fn chromium_pages(&self) -> Result<Vec<(String, String)>, String> {
        let body = self.devtools("GET", "/json/list")?;
        let list: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("DevTools' list: {e}"))?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "page")
            .map(|t| {
                (
                    t["url"].as_str().unwrap_or("").to_owned(),
                    t["title"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect())
    }

    /// One request to Chromium's DevTools HTTP endpoint; the answer's body.
    fn devtools(&self, method: &str, path: &str) -> Result<String, String> {
        use std::io::{Read, Write};
        let active = std::fs::read_to_string(self.profile().join("DevToolsActivePort"))
            .map_err(|e| format!("DevToolsActivePort: {e}"))?;
        let port: u16 = active
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("DevToolsActivePort holds {active:?}"))?;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("connect to DevTools on {port}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| format!("ask DevTools: {e}"))?;
        // DevTools keeps the connection open: read up to the length its header gives.
        let mut reply = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = stream
                .read(&mut buf)
                .map_err(|e| format!("read DevTools' answer: {e}"))?;
            if n == 0 {
                return Err("DevTools closed the connection mid-answer".into());
            }
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                continue;
            };
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .ok_or("DevTools' answer has no Content-Length")?;
            if body.len() >= length {
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(format!(
                        "DevTools answered {method} {path} with {:?}",
                        head.lines().next().unwrap_or("")
                    ));
                }
                break Ok(body.to_owned());
            }
        }
    }

    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.scratch.path().join("browser.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Resizes surf's windows (800x600 by default; no option sets it) to Warren's window size.
    fn size_windows(&mut self) {
        if self.peer.kind != Kind::Surf {
            return;
        }
        for root in &self.roots {
            let out = Command::new("xdotool")
                .args(["search", "--onlyvisible", "--pid", &root.id().to_string()])
                .env("DISPLAY", &self.display)
                .stdin(Stdio::null())
                .output();
            let ids = out
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for id in ids.split_whitespace() {
                let _ = Command::new("xdotool")
                    .args([
                        "windowsize",
                        id,
                        &WINDOW_WIDTH.to_string(),
                        &WINDOW_HEIGHT.to_string(),
                    ])
                    .env("DISPLAY", &self.display)
                    .stdin(Stdio::null())
                    .output();
            }
        }
        self.notes.push(format!(
            "surf's windows were resized to {WINDOW_WIDTH}x{WINDOW_HEIGHT} with xdotool"
        ));
    }

    fn measure_memory(&mut self, urls: &[String]) -> Result<PeerMemory, String> {
        match self.peer.kind {
            Kind::Surf => {
                for url in urls {
                    self.spawn_root(std::slice::from_ref(url))?;
                }
            }
            Kind::Epiphany | Kind::Chromium => self.spawn_root(urls)?,
        }
        self.wait_tabs(urls.len(), OPEN_TIMEOUT)?;
        if self.peer.kind == Kind::Chromium {
            self.wait_chromium_pages(urls)?;
        }
        // Wait until each surf window is mapped, then give it Warren's size.
        if self.peer.kind == Kind::Surf {
            std::thread::sleep(Duration::from_millis(500));
            self.size_windows();
        }
        let (pss_kb, processes) = self.steady_pss();
        // Checked again at the end: a tab whose web process died is not a tab.
        let open = self.open_tabs();
        if open < urls.len() {
            return Err(format!(
                "{} had only {open} tab processes for {} URLs when measured:\n{}",
                self.peer.name,
                urls.len(),
                procs::describe(&self.tree())
            ));
        }
        self.notes.push(format!(
            "{open} web content processes for {} tabs{}",
            urls.len(),
            match self.peer.kind {
                Kind::Chromium =>
                    " (renderers, extension renderers excluded; Chromium may \
                                   also keep a spare renderer, which is counted)",
                Kind::Epiphany => " (WebKitWebProcess below the UI process)",
                Kind::Surf => " (one surf and its WebKitWebProcess per URL)",
            }
        ));
        self.note_peer_specifics();
        self.note_sharers();
        self.note_outside();
        self.note_titles();
        Ok(PeerMemory {
            tabs: urls.len(),
            pss_kb,
            processes,
            notes: std::mem::take(&mut self.notes),
        })
    }

    fn note_peer_specifics(&mut self) {
        match self.peer.kind {
            Kind::Chromium => self.notes.push(
                "Chromium runs with --no-sandbox: as root it refuses its sandbox; its zygotes \
                 and renderers are otherwise the same processes"
                    .into(),
            ),
            Kind::Epiphany => self.notes.push(
                "Epiphany's WebKit sandbox (bubblewrap, xdg-dbus-proxy per web process) is on \
                 and counted"
                    .into(),
            ),
            Kind::Surf => {}
        }
        self.notes.push(format!(
            "a private dbus-daemon session bus; HOME, XDG directories and profile in a fresh \
             temporary directory; display {}",
            self.display
        ));
    }

    /// Notes other processes running the same executables as the tree (another run of the same
    /// browser, another WebKitGTK program): PSS splits shared pages among every process that
    /// maps them, so the figure is then lower than the browser alone would show.
    fn note_sharers(&mut self) {
        let everything: BTreeSet<i32> = self.everything().iter().map(|p| p.pid).collect();
        let exes: BTreeSet<PathBuf> = self.tree().into_iter().filter_map(|p| p.exe).collect();
        let others: Vec<Proc> = procs::all_processes()
            .into_iter()
            .filter(|p| p.state != 'Z' && !everything.contains(&p.pid))
            .filter(|p| p.exe.as_ref().is_some_and(|e| exes.contains(e)))
            .collect();
        if !others.is_empty() {
            let names: BTreeSet<String> = others.iter().map(Proc::name).collect();
            self.notes.push(format!(
                "{} other processes run the same executables ({}): shared pages are split with \
                 them, so this PSS is lower than the browser alone would show",
                others.len(),
                names.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }

    /// Notes the processes of the run outside the browser's tree, with their PSS.
    fn note_outside(&mut self) {
        let outside: Vec<String> = self
            .outside()
            .iter()
            .map(|p| {
                let what = cmdline(p.pid).first().cloned().unwrap_or_else(|| p.name());
                format!(
                    "{} (pid {}, {} KiB)",
                    what,
                    p.pid,
                    procs::pss_kb(p.pid).unwrap_or(0)
                )
            })
            .collect();
        if !outside.is_empty() {
            self.notes.push(format!(
                "not counted (outside the browser's process tree: the session bus and what it \
                 activated, crash handlers): {}",
                outside.join(", ")
            ));
        }
    }

    /// Notes the browser's window titles, as evidence of what it showed.
    fn note_titles(&mut self) {
        let Ok(n) = self.display.trim_start_matches(':').parse::<u32>() else {
            return;
        };
        let titles: Vec<String> = crate::xvfb::windows(n)
            .into_iter()
            .filter(|w| w.depth == 1 && w.width >= 200 && w.height >= 200)
            .filter_map(|w| {
                w.name
                    .map(|name| format!("{name:?} {}x{}", w.width, w.height))
            })
            .collect();
        self.notes
            .push(format!("top-level windows: {}", titles.join(", ")));
    }

    fn time_new_tabs(
        &mut self,
        url_of_run: &dyn Fn(usize) -> (String, [u8; 3]),
        runs: usize,
        how: Handover,
    ) -> Result<Vec<Duration>, String> {
        // Epiphany and Chromium run first with a blank page; surf has nothing to run before.
        if self.peer.kind != Kind::Surf {
            self.spawn_root(&["about:blank".to_owned()])?;
            self.wait_tabs(1, OPEN_TIMEOUT)?;
            // Let the start-up finish (first paint, profile writes) before timing anything.
            self.steady_pss();
        }
        let mut times = Vec::with_capacity(runs);
        for i in 0..runs {
            let (url, colour) = url_of_run(i);
            if crate::pixels::shows_colour(&self.display, colour)? {
                return Err(format!(
                    "run {i}: {} is on screen before its tab was asked for; give each run its \
                     own colour",
                    crate::x11::hex(colour)
                ));
            }
            let requested = Instant::now();
            let seen = match self.peer.kind {
                Kind::Surf => {
                    self.spawn_root(std::slice::from_ref(&url))?;
                    let seen = crate::pixels::wait_for_colour(
                        &self.display,
                        colour,
                        requested + NEW_TAB_TIMEOUT,
                    );
                    // One window at a time: a surf per run would pile up 140 MB each.
                    if let Some(mut child) = self.roots.pop() {
                        kill_tree(&mut child);
                    }
                    seen
                }
                Kind::Chromium if how == Handover::Direct => {
                    let path = format!("/json/new?{url}");
                    self.devtools("PUT", &path)
                        .map_err(|e| format!("run {i}: DevTools PUT {path}: {e}"))?;
                    crate::pixels::wait_for_colour(
                        &self.display,
                        colour,
                        requested + NEW_TAB_TIMEOUT,
                    )
                }
                Kind::Epiphany | Kind::Chromium => {
                    let args = self.new_tab_args(&url);
                    if i == 0 {
                        self.notes.push(format!(
                            "new tab command: {} {}",
                            self.peer.binary.display(),
                            args.join(" ")
                        ));
                    }
                    let mut handover = self.spawn(&args)?;
                    let seen = crate::pixels::wait_for_colour(
                        &self.display,
                        colour,
                        requested + NEW_TAB_TIMEOUT,
                    );
                    // The second process hands the URL over and exits; one that stays is a
                    // second instance, and its window would be timed instead of a tab.
                    wait_exit(&mut handover, Duration::from_secs(10)).map_err(|e| {
                        format!(
                            "run {i}: `{} {}` did not hand the URL over to the running \
                             instance: {e}",
                            self.peer.binary.display(),
                            args.join(" ")
                        )
                    })?;
                    seen
                }
            };
            let seen = seen.map_err(|e| {
                format!(
                    "run {i}: {} did not show {url}: {e}\nits log:\n{}",
                    self.peer.name,
                    self.log_tail()
                )
            })?;
            times.push(seen.saturating_duration_since(requested));
        }
        Ok(times)
    }

    /// The command line that hands `url` to the running instance as a new tab.
    fn new_tab_args(&self, url: &str) -> Vec<String> {
        match self.peer.kind {
            Kind::Epiphany | Kind::Surf => vec![url.into()],
            Kind::Chromium => vec![
                "--no-sandbox".into(),
                format!("--user-data-dir={}", self.profile().display()),
                url.into(),
            ],
        }
    }

    /// Kills every process of the run (the browser's trees, everything carrying the marker, the
    /// session bus), reaps what is ours, and leaves the scratch directory to be removed on drop.
    fn stop(&mut self) {
        for _ in 0..3 {
            let everything = self.everything();
            if everything.is_empty() {
                break;
            }
            procs::kill_all(&everything);
            for p in &everything {
                let _ = waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for child in &mut self.roots {
            kill_tree(child);
        }
        if let Some(mut bus) = self.bus.take() {
            kill_tree(&mut bus);
        }
        // Re-parented helpers killed above are children of this process now: reap them.
        for p in procs::all_processes() {
            if p.ppid == std::process::id() as i32 && p.state == 'Z' {
                let _ = waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG));
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
        let _ = crate::remove_tree(self.scratch.path());
    }
}

/// Kills a child's process group and the child, and reaps it.
fn kill_tree(child: &mut Child) {
    let pid = child.id() as i32;
    procs::kill_all(&procs::process_tree(pid));
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = child.wait();
}

/// Waits up to `timeout` for a child to exit; kills it after that.
fn wait_exit(child: &mut Child, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                kill_tree(child);
                return Err(format!("pid {} did not exit in {timeout:?}", child.id()));
            }
        }
    }
}

/// A process's arguments, split at NULs and spaces: Chromium rewrites its processes' titles so
/// that /proc shows one space-separated string (the flags looked for hold no spaces).
fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0 || *b == b' ')
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{solid_page, HttpServer, Xvfb};

    /// Distinct colours for the test pages.
    fn colour(i: usize) -> [u8; 3] {
        [
            0x20 + (i as u8 % 8) * 0x18,
            0x90 - (i as u8 / 8) * 0x10,
            0x5a,
        ]
    }

    fn pages(server: &HttpServer, count: usize) -> Vec<(String, [u8; 3])> {
        (0..count)
            .map(|i| {
                let c = colour(i);
                let url = server.html(
                    &format!("/p{i}.html"),
                    &solid_page(&format!("page {i}"), &crate::x11::hex(c)),
                );
                (url, c)
            })
            .collect()
    }

    #[test]
    fn finds_the_installed_peers_and_their_versions() {
        for peer in installed() {
            let v = peer.version();
            assert!(!v.starts_with('('), "{}: {v}", peer.name());
            assert!(
                v.chars().any(|c| c.is_ascii_digit()),
                "{}: {v}",
                peer.name()
            );
        }
    }

    /// Every installed peer with 1 and 5 tabs, then 5 new tabs; prints the figures. Each run
    /// must leave no process with its marker behind.
    #[test]
    #[ignore = "runs the installed peer browsers for minutes; run with --ignored"]
    fn measures_every_installed_peer() {
        let x = Xvfb::start_in(crate::pixels::TEST_DISPLAYS);
        let display = x.display_env();
        let server = HttpServer::start();
        let pages = pages(&server, 12);
        let only = std::env::var("WARREN_PEERS").unwrap_or_default();
        for peer in installed() {
            if !only.is_empty() && !only.split(',').any(|n| n == peer.name()) {
                continue;
            }
            eprintln!("== {} {}", peer.name(), peer.version());
            for tabs in [1, 5] {
                let urls: Vec<String> = pages[..tabs].iter().map(|p| p.0.clone()).collect();
                let m = memory(&peer, &display, &urls).unwrap_or_else(|e| panic!("{e}"));
                eprintln!(
                    "{} {tabs} tabs: {:.1} MiB in {} processes\n  {}",
                    peer.name(),
                    m.pss_kb as f64 / 1024.0,
                    m.processes,
                    m.notes.join("\n  ")
                );
                assert_eq!(m.tabs, tabs);
                assert!(m.pss_kb > 20 * 1024 && m.processes > tabs, "{m:?}");
                let left = leftovers(peer.name());
                assert!(left.is_empty(), "left behind:\n{}", procs::describe(&left));
            }
            let runs = 5;
            let times = new_tab(&peer, &display, &|i| pages[5 + i].clone(), runs)
                .unwrap_or_else(|e| panic!("{e}"));
            eprintln!("{} new tab: {times:?}", peer.name());
            assert_eq!(times.len(), runs);
            assert!(times.iter().all(|t| *t > Duration::from_millis(1)));
            let left = leftovers(peer.name());
            assert!(left.is_empty(), "left behind:\n{}", procs::describe(&left));
            let direct = new_tab_with(
                &peer,
                &display,
                &|i| pages[5 + i].clone(),
                runs,
                Handover::Direct,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            eprintln!("{} new tab, direct: {direct:?}", peer.name());
            assert_eq!(direct.len(), runs);
            let left = leftovers(peer.name());
            assert!(left.is_empty(), "left behind:\n{}", procs::describe(&left));
        }
    }

    /// Live processes still carrying a marker of this peer's runs in this process.
    fn leftovers(name: &str) -> Vec<Proc> {
        let prefix = format!("{MARKER}=warren-peer-{name}-{}-", std::process::id());
        procs::all_processes()
            .into_iter()
            .filter(|p| p.state != 'Z' && p.state != 'X')
            .filter(|p| {
                std::fs::read(format!("/proc/{}/environ", p.pid)).is_ok_and(|env| {
                    env.split(|b| *b == 0)
                        .any(|v| v.starts_with(prefix.as_bytes()))
                })
            })
            .collect()
    }
}
