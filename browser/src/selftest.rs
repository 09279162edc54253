//! `browser --sandbox-self-test [--json]`: proves the renderer sandbox on this machine, the way
//! Chromium's `chrome://sandbox` does, by starting one renderer through the real launch path and
//! having it try what a compromised tab would.
//!
//! Why the real launch path: a sandbox is only proven for what actually runs in it. The probe is
//! the production `renderer` binary in its probe mode (`renderer/src/probe.rs`), started by
//! [`Sandbox::command`] — bubblewrap, the clean environment, the pre-`exec` hygiene and seccomp,
//! exactly as a tab's renderer — and it runs the renderer's own start-up (Landlock scoping, the
//! web processes' display) before it tries anything.
//!
//! The self-test (outside the sandbox):
//! 1. prepares targets a renderer must not reach — a canary file with random content in `$HOME`,
//!    paths to create in `$HOME` and in the profile outside its website data, random bytes in its
//!    own memory, a socket where the control socket would be, the session bus (a private
//!    `dbus-daemon` when the browser has none, so the row is never skipped on a desktop-like
//!    machine), the display's abstract X socket — and things a tab needs: a TCP listener on
//!    127.0.0.1, a system font file;
//! 2. passes them to the probe as one JSON argument and reads one JSON line per attempt from the
//!    probe's stdout (hostile input: lines and their number are capped);
//! 3. judges the rows only the outside can judge: whether a file appeared outside, whether what
//!    the probe read was really the canary, the browser's command line or its memory (a private
//!    `/tmp` or another process with the browser's pid number inside the sandbox must not count),
//!    and whether a `setsid` grandchild of the probe is still alive once the probe and its
//!    sandbox have ended;
//! 4. removes and kills everything it made, by path and by pid.
//!
//! Every row has an expectation: forbidden things and missing layers `denied`, needed things
//! `allowed`. The exit status is 0 when the probe finished and every row is as expected (a row
//! whose target does not exist on this machine is `skipped` and does not count), 1 otherwise. With
//! `--no-sandbox` the forbidden rows flip to `allowed` and the status is 1: that is what shows the
//! probe really probes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
pub use warren_ipc::probe::{Targets, UnixAddress};
use warren_ipc::{Bounds, Launch, TabId};

use crate::cli::Options;
use crate::nested::{Isolation, Nested};
use crate::sandbox::display;
use crate::sandbox::pidfd::Pidfd;
use crate::sandbox::{Layer, Sandbox, Spec};
use crate::socket::{self, PrivateSocket};

/// How long the probe may take from its start to its last row (a cold WebKit start on 2 shared
/// cores takes seconds; the probe's own WebKit timeout is 45 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the probe (and its sandbox) may take to exit after its last row.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long an escaped process is given to disappear once the sandbox ended (the kernel kills a
/// PID namespace's processes as its first process exits).
const ESCAPE_GRACE: Duration = Duration::from_secs(1);

/// The longest line the probe may print, and the most lines it may print: its rows fit in a
/// fraction of both.
const MAX_LINE: u64 = 16 * 1024;
const MAX_LINES: usize = 256;

/// Cut of the probe's evidence (the probe cuts to the same length: `renderer/src/probe.rs`).
const MAX_EVIDENCE: usize = 256;

/// How long a private session bus may take to say its address.
const BUS_TIMEOUT: Duration = Duration::from_secs(10);

/// What an attempt did, or must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Denied,
    /// The target does not exist here (no `$HOME`, a display without an abstract socket…).
    Skipped,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Skipped => "skipped",
        }
    }
}

/// What kind of row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Something a compromised renderer would do; the sandbox must deny it.
    Forbidden,
    /// Something a tab needs; the sandbox must allow it.
    Needed,
    /// A sandbox layer read back from `/proc`, as "running without it": must be denied.
    Layer,
}

/// One row of the test: what is tried and what must happen.
#[derive(Clone, Copy, Debug)]
pub struct Check {
    pub id: &'static str,
    pub group: Group,
    pub name: &'static str,
    pub expected: Verdict,
}

const fn forbidden(id: &'static str, name: &'static str) -> Check {
    Check {
        id,
        group: Group::Forbidden,
        name,
        expected: Verdict::Denied,
    }
}

const fn needed(id: &'static str, name: &'static str) -> Check {
    Check {
        id,
        group: Group::Needed,
        name,
        expected: Verdict::Allowed,
    }
}

const fn layer(id: &'static str, name: &'static str) -> Check {
    Check {
        id,
        group: Group::Layer,
        name,
        expected: Verdict::Denied,
    }
}

/// Every row, in the order shown. The ids are the probe's (`renderer/src/probe.rs`).
pub const CHECKS: &[Check] = &[
    forbidden("read-home", "read a file in $HOME outside the profile"),
    forbidden("write-home", "create a file in $HOME"),
    forbidden(
        "write-profile",
        "create a file in the profile outside website data",
    ),
    forbidden("ptrace", "ptrace(PTRACE_ATTACH) the browser"),
    forbidden("kill", "kill(browser, 0)"),
    forbidden("proc", "see the browser in /proc"),
    forbidden("process-vm-readv", "process_vm_readv the browser's memory"),
    forbidden("bpf", "bpf(BPF_MAP_CREATE)"),
    forbidden("perf-event-open", "perf_event_open"),
    forbidden("control-socket", "connect to the control socket"),
    forbidden("session-bus", "connect to the session bus"),
    forbidden("x-abstract", "connect to the display's abstract X socket"),
    forbidden("x-path", "connect to the display's X socket file"),
    forbidden(
        "leave-process",
        "leave a process behind (setsid double fork)",
    ),
    needed("font", "open a system font"),
    needed("webkit", "load WebKit and run JavaScript (6*7 = 42)"),
    needed("network", "connect to 127.0.0.1 (the network)"),
    needed("memfd", "memfd_create"),
    needed(
        "write-website-data",
        "create a file in the profile's website data",
    ),
    layer("no-new-privs", "run without NoNewPrivs"),
    layer("seccomp", "run without a seccomp filter"),
    layer("pid-ns", "share the browser's PID namespace"),
    layer("landlock", "run without Landlock scoping"),
    layer(
        "web-net-ns",
        "web process shares the renderer's network namespace",
    ),
    layer(
        "web-seccomp",
        "web process runs without a seccomp filter of WebKit's",
    ),
];

/// One line of the probe's output.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ProbeLine {
    Row(ProbeRow),
    /// `{"done":true}`: the probe's last line.
    Done {
        done: bool,
    },
}

/// One attempt as the probe reported it.
#[derive(Clone, Debug, Deserialize)]
struct ProbeRow {
    id: String,
    result: Verdict,
    detail: String,
    #[serde(default)]
    evidence: Option<String>,
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub id: &'static str,
    pub group: Group,
    pub name: &'static str,
    pub expected: Verdict,
    pub result: Verdict,
    pub detail: String,
}

impl Row {
    /// As expected, or skipped (the target does not exist here).
    pub fn ok(&self) -> bool {
        self.result == self.expected || self.result == Verdict::Skipped
    }
}

/// Processes the self-test started, so a test can check that none outlives it.
#[derive(Debug, Default, Serialize)]
pub struct Started {
    /// The probe's first process (bubblewrap, or the renderer without namespaces).
    pub probe: Option<u32>,
    /// The private session bus, when the browser had none.
    pub session_bus: Option<u32>,
    /// The marker the escaping grandchild took as its name.
    pub marker: String,
}

/// The whole result.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Whether the probe finished and every row is as expected.
    pub ok: bool,
    /// False with `--no-sandbox`.
    pub sandbox: bool,
    /// The layers the rows show in force.
    pub layers: Vec<Layer>,
    /// The layers the browser meant to apply, and why the others are missing.
    pub planned_layers: Vec<Layer>,
    pub missing: BTreeMap<&'static str, String>,
    /// Whether the probe printed its last line.
    pub completed: bool,
    /// What went wrong when the probe could not run or finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub rows: Vec<Row>,
    pub started: Started,
}

/// Runs the self-test and prints the report; returns the exit status.
pub fn main(options: &Options, json: bool) -> u8 {
    let report = run(options);
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("the report serializes")
        );
    } else {
        print!("{}", table(&report, &options.renderer));
    }
    if report.ok {
        0
    } else {
        1
    }
}

/// Everything outside the sandbox the probe aims at; removes and ends it all on drop.
struct Fixture {
    /// Files the self-test made, or that the probe may have made: removed on drop.
    files: Vec<PathBuf>,
    /// The canary file in `$HOME` and its random content.
    canary: Option<(PathBuf, String)>,
    home_write: Option<PathBuf>,
    profile: tempfile::TempDir,
    runtime: tempfile::TempDir,
    /// Held for its `Drop`, which removes the socket file.
    _control: PrivateSocket,
    control_path: PathBuf,
    tcp: TcpListener,
    /// Random bytes the probe must not read.
    secret: Box<[u8; 32]>,
    bus: Option<UnixAddress>,
    /// Why there is no session bus to try, when there is none.
    no_bus: Option<String>,
    private_bus: Option<Child>,
    /// Holds the private bus's configuration and socket.
    _scratch: tempfile::TempDir,
    x_abstract: Option<String>,
    x_path: Option<PathBuf>,
    font: Option<(PathBuf, String)>,
    marker: String,
}

impl Fixture {
    fn profile_write(&self) -> PathBuf {
        self.profile.path().join("written-by-renderer")
    }

    fn website_data_dir(&self) -> PathBuf {
        self.profile.path().join("website-data")
    }

    fn website_data_write(&self) -> PathBuf {
        self.website_data_dir().join("written-by-renderer")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        if let Some(bus) = &mut self.private_bus {
            let _ = bus.kill();
            let _ = bus.wait();
        }
        // The profile and runtime directories and the control socket go with their own drops.
    }
}

fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex(&buf))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Cuts `s` to at most `max` bytes on a character boundary (as the probe cuts its evidence).
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `$HOME`, when it is a directory this process can write to.
fn usable_home() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let meta = std::fs::metadata(&home).ok()?;
    meta.is_dir().then_some(home)
}

/// Where the browser keeps its runtime files (sockets): `$XDG_RUNTIME_DIR`, else the temporary
/// directory — as the browser itself chooses.
fn runtime_base() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

fn prepare() -> Result<Fixture, String> {
    let tag = random_hex(6).map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let home = usable_home();
    let mut files = Vec::new();

    // The canary: random content, directly in $HOME, readable only by its owner.
    let (canary, home_write) = match &home {
        Some(home) => {
            let path = home.join(format!(".warren-self-test-canary-{tag}"));
            let content = random_hex(16).map_err(|e| e.to_string())?;
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| io::Write::write_all(&mut f, content.as_bytes()));
            match written {
                Ok(()) => {
                    files.push(path.clone());
                    let write = home.join(format!(".warren-self-test-written-{tag}"));
                    files.push(write.clone());
                    (Some((path, content)), Some(write))
                }
                Err(e) => {
                    log::warn!("cannot write a canary file in {}: {e}", home.display());
                    (None, None)
                }
            }
        }
        None => (None, None),
    };

    // A profile where profiles live (under $HOME), with its website-data directory.
    let profile = match &home {
        Some(h) => tempfile::Builder::new()
            .prefix(".warren-self-test-profile-")
            .tempdir_in(h),
        None => tempfile::Builder::new()
            .prefix("warren-self-test-profile-")
            .tempdir(),
    }
    .map_err(|e| format!("cannot create a temporary profile: {e}"))?;
    std::fs::create_dir(profile.path().join("website-data"))
        .map_err(|e| format!("cannot create the profile's website-data directory: {e}"))?;

    let base = runtime_base();
    let runtime = tempfile::Builder::new()
        .prefix("warren-self-test-")
        .tempdir_in(&base)
        .map_err(|e| {
            format!(
                "cannot create a runtime directory in {}: {e}",
                base.display()
            )
        })?;
    // Where the control socket would be: the runtime base, not the renderer's directory.
    let control_path = base.join(format!(
        "warren-self-test-{}-{tag}.sock",
        std::process::id()
    ));
    let control = socket::bind_private(&control_path)
        .map_err(|e| format!("cannot listen on {}: {e}", control_path.display()))?;

    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;

    let mut secret = Box::new([0u8; 32]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret[..]))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;

    let scratch = tempfile::Builder::new()
        .prefix("warren-self-test-bus-")
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?;
    let (bus, no_bus, private_bus) = session_bus(scratch.path());

    let x_abstract = display::Address::from_env()
        .map(|d| format!("/tmp/.X11-unix/X{}", d.number))
        .filter(|name| connect_abstract(name).is_ok());
    let x_path = display::Address::from_env()
        .map(|d| PathBuf::from(format!("/tmp/.X11-unix/X{}", d.number)))
        .filter(|path| UnixStream::connect(path).is_ok());

    let font = find_font().and_then(|path| {
        let mut head = [0u8; 4];
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_exact(&mut head))
            .ok()
            .map(|()| (path, hex(&head)))
    });

    Ok(Fixture {
        files,
        canary,
        home_write,
        profile,
        runtime,
        _control: control,
        control_path,
        tcp,
        secret,
        bus,
        no_bus,
        private_bus,
        _scratch: scratch,
        x_abstract,
        x_path,
        font,
        marker: format!("wprobe-{}", &tag[..8]),
    })
}

fn connect_abstract(name: &str) -> io::Result<UnixStream> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    UnixStream::connect_addr(&addr)
}

/// The browser's session bus; when it has none, a private `dbus-daemon` started for the test in
/// `dir` (its address is then put in this process's environment, where an unsandboxed renderer
/// finds it, as it would find a desktop's). Returns the address, why there is none, and the
/// daemon.
fn session_bus(dir: &Path) -> (Option<UnixAddress>, Option<String>, Option<Child>) {
    if let Some(address) = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .filter(|a| a != crate::sandbox::NO_SESSION_BUS)
    {
        return match parse_bus_address(&address) {
            Some(a) => (Some(a), None, None),
            None => (
                None,
                Some(format!(
                    "the session bus address {address:?} has no Unix socket this test can try"
                )),
                None,
            ),
        };
    }
    match start_private_bus(dir) {
        Ok((address, child)) => match parse_bus_address(&address) {
            Some(a) => {
                // Before any thread of ours reads the environment (Sandbox::command does).
                std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);
                (Some(a), None, Some(child))
            }
            None => {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                (
                    None,
                    Some(format!(
                        "dbus-daemon gave an address without a Unix socket: {address}"
                    )),
                    None,
                )
            }
        },
        Err(why) => (None, Some(why), None),
    }
}

/// Starts a session `dbus-daemon` listening in `dir`, in the foreground (so it stays this
/// process's child, killed by pid when the test ends), and reads the address it prints.
///
/// Its configuration has no service directories: a bus that can activate services would start
/// processes of its own (the accessibility bus, for an unsandboxed renderer) that outlive it.
fn start_private_bus(dir: &Path) -> Result<(String, Child), String> {
    let listen = xml_escape(&dir.to_string_lossy());
    let config = format!(
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n          \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
         <busconfig>\n  <type>session</type>\n  <listen>unix:dir={listen}</listen>\n  \
         <auth>EXTERNAL</auth>\n  <policy context=\"default\">\n    \
         <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n    \
         <allow own=\"*\"/>\n  </policy>\n</busconfig>\n"
    );
    let config_path = dir.join("bus.conf");
    std::fs::write(&config_path, config)
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    let mut command = Command::new("dbus-daemon");
    command
        .arg(format!("--config-file={}", config_path.display()))
        .args(["--nofork", "--nopidfile", "--print-address=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe; the daemon dies with this process however it ends.
    unsafe {
        command.pre_exec(crate::sandbox::hygiene::die_with_parent);
    }
    let mut child = command.spawn().map_err(|e| {
        format!("the browser has no session bus and cannot start dbus-daemon ({e}); install it (Debian: dbus-daemon)")
    })?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = bounded(1);
    std::thread::Builder::new()
        .name("dbus-address".into())
        .spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout.take(4096)).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    match rx.recv_timeout(BUS_TIMEOUT) {
        Ok(Ok(line)) if !line.trim().is_empty() => Ok((line.trim().to_owned(), child)),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("dbus-daemon did not print its address: {other:?}"))
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The first Unix socket of a D-Bus address list (`unix:path=…` or `unix:abstract=…`, with
/// D-Bus's `%xx` escapes).
pub fn parse_bus_address(address: &str) -> Option<UnixAddress> {
    for one in address.split(';') {
        let Some(params) = one.trim().strip_prefix("unix:") else {
            continue;
        };
        for param in params.split(',') {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let Some(value) = unescape(value) else {
                continue;
            };
            match key {
                "path" => return Some(UnixAddress::Path(PathBuf::from(value))),
                "abstract" => return Some(UnixAddress::Abstract(value)),
                _ => {}
            }
        }
    }
    None
}

/// D-Bus address values escape bytes as `%xx`.
fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A font file fontconfig lists, under `/usr` (which every renderer sees); else the first font
/// file found under `/usr/share/fonts`.
fn find_font() -> Option<PathBuf> {
    let listed = Command::new("fc-list")
        .args(["--format", "%{file}\n"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut listed: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("/usr/") && Path::new(l).is_file())
        .collect();
    listed.sort_unstable();
    if let Some(first) = listed.first() {
        return Some(PathBuf::from(first));
    }
    let mut dirs = vec![PathBuf::from("/usr/share/fonts")];
    let mut seen = 0;
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            seen += 1;
            if seen > 10_000 {
                return None;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file()
                && ["ttf", "otf", "ttc", "pfb", "gz", "woff", "woff2"]
                    .iter()
                    .any(|ext| path.extension().is_some_and(|e| e == *ext))
            {
                return Some(path);
            }
        }
    }
    None
}

/// This process as the probe must not see it.
struct Me {
    pid: i32,
    start_time: u64,
    pid_ns: String,
    /// `/proc/self/cmdline` with NULs as spaces, cut as the probe cuts evidence.
    cmdline: String,
}

fn me() -> Result<Me, String> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("cannot read /proc/self/stat: {e}"))?;
    let start_time = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(19))
        .and_then(|t| t.parse().ok())
        .ok_or("cannot parse /proc/self/stat")?;
    let pid_ns = std::fs::read_link("/proc/self/ns/pid")
        .map_err(|e| format!("cannot read /proc/self/ns/pid: {e}"))?
        .to_string_lossy()
        .into_owned();
    let cmdline = std::fs::read("/proc/self/cmdline")
        .map_err(|e| format!("cannot read /proc/self/cmdline: {e}"))?;
    let cmdline: Vec<u8> = cmdline
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    let cmdline = String::from_utf8_lossy(&cmdline).trim_end().to_owned();
    Ok(Me {
        pid: std::process::id() as i32,
        start_time,
        pid_ns,
        cmdline: truncate(cmdline, MAX_EVIDENCE),
    })
}

/// What the outside found after the probe ended.
struct Outside<'a> {
    fixture: &'a Fixture,
    me: &'a Me,
    /// Live processes named with the marker once the probe and its sandbox ended.
    escaped: Vec<u32>,
}

/// Runs the whole test; never panics on what the probe prints.
pub fn run(options: &Options) -> Report {
    let mut report = Report {
        ok: false,
        sandbox: options.sandbox,
        layers: Vec::new(),
        planned_layers: Vec::new(),
        missing: BTreeMap::new(),
        completed: false,
        error: None,
        rows: Vec::new(),
        started: Started::default(),
    };
    // Orphans of the probe (an unsandboxed renderer's escaped grandchild, WebKit's helpers)
    // become this process's children, as they would become the browser's.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let fixture = match prepare() {
        Ok(f) => f,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report.started.session_bus = fixture.private_bus.as_ref().map(Child::id);
    report.started.marker = fixture.marker.clone();
    let me = match me() {
        Ok(m) => m,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let interrupted = watch_termination_signals();

    let sandbox = Sandbox::detect(options.sandbox, vec![options.profile.clone()]);
    report.planned_layers = sandbox.planned_layers();
    for layer in Layer::ALL {
        if let Some(why) = sandbox.missing(layer) {
            report.missing.insert(layer.name(), why);
        }
    }

    let probe_rows = match probe(&sandbox, options, &fixture, &me, &interrupted, &mut report) {
        Ok(rows) => rows,
        Err(e) => {
            report.error = Some(e);
            Vec::new()
        }
    };
    let escaped = find_escaped(&fixture.marker);
    for pid in &escaped {
        end_escaped(*pid);
    }
    let outside = Outside {
        fixture: &fixture,
        me: &me,
        escaped,
    };
    report.rows = judge(&probe_rows, &outside);
    report.layers = layers_in_force(&report.rows);
    report.ok = report.completed && report.rows.iter().all(Row::ok);
    drop(fixture);
    drop(sandbox);
    reap_children();
    report
}

/// Blocks SIGTERM, SIGINT and SIGHUP in this thread (and the threads it starts) and returns a
/// flag a signal thread sets when one arrives, so an interrupted test still cleans up.
fn watch_termination_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut set = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(signal);
    }
    if set.thread_block().is_ok() {
        let raised = Arc::clone(&flag);
        let _ = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if set.wait().is_ok() {
                    raised.store(true, Ordering::Release);
                }
            });
    }
    flag
}

/// Starts the probe through [`Sandbox::command`], collects its rows, and waits until it and its
/// sandbox have ended (killing them at the deadline).
fn probe(
    sandbox: &Sandbox,
    options: &Options,
    fixture: &Fixture,
    me: &Me,
    interrupted: &AtomicBool,
    report: &mut Report,
) -> Result<Vec<ProbeRow>, String> {
    let targets = Targets {
        browser_pid: me.pid,
        browser_start_time: me.start_time,
        browser_pid_ns: me.pid_ns.clone(),
        home_canary: fixture.canary.as_ref().map(|(path, _)| path.clone()),
        home_write: fixture.home_write.clone(),
        profile_write: fixture.profile_write(),
        website_data_write: fixture.website_data_write(),
        website_data_dir: fixture.website_data_dir(),
        secret_addr: fixture.secret.as_ptr() as u64,
        secret_len: fixture.secret.len(),
        control_socket: fixture.control_path.clone(),
        session_bus: fixture.bus.clone(),
        x_abstract: fixture.x_abstract.clone(),
        x_path: fixture.x_path.clone(),
        tcp_port: fixture
            .tcp
            .local_addr()
            .map_err(|e| format!("cannot read the TCP listener's port: {e}"))?
            .port(),
        font: fixture.font.as_ref().map(|(p, _)| p.clone()),
        marker: fixture.marker.clone(),
    };
    let argument = serde_json::to_string(&targets).expect("targets serialize");

    // The descriptors a renderer gets in production: the up socket and the launch channel. The
    // probe sends nothing on them; the browser's ends are held until it has ended.
    let (_up, renderer_up) =
        UnixStream::pair().map_err(|e| format!("cannot create the up socket: {e}"))?;
    let (_launch_tx, launch_rx) = ipc_channel::ipc::channel::<Launch>()
        .map_err(|e| format!("cannot create the launch channel: {e}"))?;
    let website_data_dir = fixture.website_data_dir();
    // The probe's view of X is a tab's: its own nested display, unless the user asked for none.
    let nested = match options.display_isolation {
        Isolation::Nested => {
            let nested = Nested::detect(sandbox.bwrap(), sandbox.filter())?;
            let display = nested
                .start(
                    TabId(1),
                    nested.root_window(),
                    Bounds {
                        x: 0,
                        y: 0,
                        width: 800,
                        height: 600,
                    },
                    false,
                    fixture.runtime.path().join("display"),
                )
                .map_err(|e| format!("cannot start a nested display for the probe: {e}"))?;
            Some((display, nested))
        }
        Isolation::None => None,
    };
    let renderer_view = nested.as_ref().map(|(display, _)| display.renderer_view());
    let mut command = sandbox.command(Spec {
        renderer: &options.renderer,
        tab_id: TabId(1),
        up: OwnedFd::from(renderer_up),
        down: OwnedFd::from(launch_rx),
        website_data_dir: &website_data_dir,
        files: &[],
        runtime_dir: fixture.runtime.path(),
        probe: Some(&argument),
        display: renderer_view.as_ref(),
    });
    command.stdout(Stdio::piped());
    let mut child = command.spawn().map_err(|e| {
        format!(
            "cannot start the renderer {}: {e}",
            options.renderer.display()
        )
    })?;
    report.started.probe = Some(child.id());
    // No reaper runs in the self-test: the child cannot have been collected yet.
    let pidfd = Pidfd::open(child.id()).ok();
    let stdout = child.stdout.take().expect("piped");
    let lines = read_lines(stdout);

    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut rows = Vec::new();
    let outcome: Result<(), String> = loop {
        if interrupted.load(Ordering::Acquire) {
            break Err("interrupted by a signal".into());
        }
        let now = Instant::now();
        if now >= deadline {
            break Err(format!(
                "the probe did not finish within {PROBE_TIMEOUT:?} ({} rows reported)",
                rows.len()
            ));
        }
        match lines.recv_timeout((deadline - now).min(Duration::from_millis(200))) {
            Ok(line) => match serde_json::from_str::<ProbeLine>(&line) {
                Ok(ProbeLine::Row(row)) => rows.push(row),
                Ok(ProbeLine::Done { done: true }) => {
                    report.completed = true;
                    break Ok(());
                }
                // GTK, WebKit or a library may print on stdout too.
                Ok(ProbeLine::Done { done: false }) | Err(_) => {
                    log::debug!("probe printed: {}", truncate(line, 200))
                }
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break Err(format!(
                    "the probe ended its output before its last row ({} rows reported); see its \
                     log above",
                    rows.len()
                ))
            }
        }
    };

    // The probe exits after its last row; its sandbox ends with it.
    let exit_deadline = Instant::now()
        + if outcome.is_ok() {
            EXIT_TIMEOUT
        } else {
            Duration::ZERO
        };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < exit_deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => break None,
        }
    };
    let status = match status {
        Some(s) => s,
        None => {
            if let Some(pidfd) = &pidfd {
                let _ = pidfd.signal(Signal::SIGKILL);
            }
            // The renderer leads its own process group (without namespaces, WebKit's helpers
            // are in it too).
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            child
                .wait()
                .map_err(|e| format!("cannot wait for the probe: {e}"))?
        }
    };
    log::debug!("the probe ended: {status}");
    match outcome {
        Ok(()) => Ok(rows),
        Err(e) if rows.is_empty() => Err(e),
        // The rows it did report still say something; the missing ones are shown as such.
        Err(e) => {
            report.error = Some(e);
            Ok(rows)
        }
    }
}

/// Reads the probe's stdout on a thread, line by line, each line capped at [`MAX_LINE`] bytes
/// and at most [`MAX_LINES`] lines: the renderer is not trusted to print sensibly.
fn read_lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = bounded(MAX_LINES);
    let spawned = std::thread::Builder::new()
        .name("probe-stdout".into())
        .spawn(move || {
            let mut reader = BufReader::new(stdout);
            for _ in 0..MAX_LINES {
                let mut line = Vec::new();
                match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line.last() != Some(&b'\n') {
                    // Longer than the cap: skip the rest of it.
                    let mut rest = Vec::new();
                    let _ = reader.read_until(b'\n', &mut rest);
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                if tx.send(text).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the thread that reads the probe: {e}");
    }
    rx
}

/// Live (not zombie) processes whose name is `marker`.
fn find_escaped(marker: &str) -> Vec<u32> {
    let scan = || -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                    return false;
                };
                let state = stat[close + 1..].split_whitespace().next();
                stat[open + 1..close] == *marker && state != Some("Z") && state != Some("X")
            })
            .collect()
    };
    let deadline = Instant::now() + ESCAPE_GRACE;
    loop {
        let found = scan();
        if found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills an escaped process by a pidfd (so a reused pid is never hit) and collects it if it
/// became this process's child.
fn end_escaped(pid: u32) {
    match Pidfd::open(pid) {
        Ok(pidfd) => {
            let _ = pidfd.signal(Signal::SIGKILL);
        }
        Err(e) => log::debug!("cannot open the escaped process {pid}: {e}"),
    }
    let _ = nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None);
}

/// Collects every child left (orphans that became ours as subreaper), for at most a second.
fn reap_children() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The report's rows: the probe's results, with the verdicts only the outside can give.
fn judge(probe: &[ProbeRow], outside: &Outside<'_>) -> Vec<Row> {
    CHECKS
        .iter()
        .map(|check| {
            let (result, detail) = match probe.iter().find(|r| r.id == check.id) {
                None => (
                    Verdict::Skipped,
                    "not reported by the probe (it did not finish)".to_owned(),
                ),
                Some(row) => judge_one(check.id, row, outside),
            };
            Row {
                id: check.id,
                group: check.group,
                name: check.name,
                expected: check.expected,
                result,
                detail,
            }
        })
        .collect()
}

fn judge_one(id: &str, row: &ProbeRow, outside: &Outside<'_>) -> (Verdict, String) {
    let f = outside.fixture;
    let same =
        |expected: Option<&str>| row.evidence.as_deref().is_some_and(|e| Some(e) == expected);
    let detail = row.detail.clone();
    if id == "session-bus" && f.bus.is_none() {
        return (
            Verdict::Skipped,
            f.no_bus.clone().unwrap_or_else(|| detail.clone()),
        );
    }
    if row.result == Verdict::Skipped {
        return (Verdict::Skipped, detail);
    }
    match id {
        "read-home" if row.result == Verdict::Allowed => {
            if same(f.canary.as_ref().map(|(_, content)| content.as_str())) {
                (Verdict::Allowed, format!("{detail}: the canary's content"))
            } else {
                (
                    Verdict::Denied,
                    format!("{detail}, but not the canary (another file there)"),
                )
            }
        }
        "write-home" | "write-profile" | "write-website-data" => {
            let path = match id {
                "write-home" => f.home_write.clone(),
                "write-profile" => Some(f.profile_write()),
                _ => Some(f.website_data_write()),
            };
            let appeared = path.as_deref().is_some_and(|p| p.is_file());
            if appeared {
                (
                    Verdict::Allowed,
                    format!("{detail}; it appeared outside the sandbox"),
                )
            } else if row.result == Verdict::Allowed {
                (
                    Verdict::Denied,
                    format!("{detail} in its private view; nothing appeared outside the sandbox"),
                )
            } else {
                (
                    Verdict::Denied,
                    format!("{detail}; nothing appeared outside the sandbox"),
                )
            }
        }
        "proc" if row.result == Verdict::Allowed => {
            if same(Some(&outside.me.cmdline)) {
                (
                    Verdict::Allowed,
                    format!("{detail}: the browser's command line"),
                )
            } else {
                (
                    Verdict::Denied,
                    format!(
                        "{detail}, but it is another process of the sandbox's own PID namespace"
                    ),
                )
            }
        }
        "process-vm-readv" if row.result == Verdict::Allowed => {
            if same(Some(&hex(&f.secret[..]))) {
                (
                    Verdict::Allowed,
                    format!("{detail}: the browser's secret bytes"),
                )
            } else {
                (
                    Verdict::Denied,
                    format!("{detail}, but not the browser's bytes"),
                )
            }
        }
        "font" if row.result == Verdict::Allowed => {
            if same(f.font.as_ref().map(|(_, head)| head.as_str())) {
                (Verdict::Allowed, detail)
            } else {
                (
                    Verdict::Denied,
                    format!("{detail}, but its bytes differ from the system's file"),
                )
            }
        }
        "leave-process" if row.result == Verdict::Allowed => {
            if outside.escaped.is_empty() {
                (
                    Verdict::Denied,
                    format!("{detail}; it was gone once the probe's sandbox ended"),
                )
            } else {
                (
                    Verdict::Allowed,
                    format!(
                        "{detail}; it outlived the probe as pid {:?} (now killed)",
                        outside.escaped
                    ),
                )
            }
        }
        _ => (row.result, detail),
    }
}

/// The layers whose rows show them in force.
pub fn layers_in_force(rows: &[Row]) -> Vec<Layer> {
    let denied = |id: &str| {
        rows.iter()
            .any(|r| r.id == id && r.result == Verdict::Denied)
    };
    let mut layers = Vec::new();
    if denied("pid-ns") {
        layers.push(Layer::Namespaces);
    }
    if denied("seccomp") && denied("no-new-privs") {
        layers.push(Layer::Seccomp);
    }
    if denied("landlock") {
        layers.push(Layer::Landlock);
    }
    if denied("web-net-ns") && denied("web-seccomp") {
        layers.push(Layer::Webkit);
    }
    layers
}

/// `s` with control characters shown as `?`: details hold what the renderer printed, which must
/// not drive the user's terminal.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The report as a table, like `chrome://sandbox`.
pub fn table(report: &Report, renderer: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Warren sandbox self-test: {} ({})",
        renderer.display(),
        if report.sandbox {
            "sandbox on"
        } else {
            "--no-sandbox"
        }
    );
    let names = |layers: &[Layer]| -> String {
        if layers.is_empty() {
            "none".to_owned()
        } else {
            layers
                .iter()
                .map(|l| l.name())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(out, "Layers in force: {}", names(&report.layers));
    for (layer, why) in &report.missing {
        let _ = writeln!(out, "  {layer} missing: {why}");
    }
    let width = CHECKS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut group = None;
    for row in &report.rows {
        if group != Some(row.group) {
            group = Some(row.group);
            let title = match row.group {
                Group::Forbidden => "Must be denied",
                Group::Needed => "Must be allowed",
                Group::Layer => "Layers (read back from /proc)",
            };
            let _ = writeln!(out, "\n{title}:");
        }
        let mark = match (row.ok(), row.result) {
            (true, Verdict::Skipped) => "skip",
            (true, _) => " ok ",
            (false, _) => "FAIL",
        };
        let _ = writeln!(
            out,
            "  [{mark}] {:<width$}  {:<7}  {}",
            row.name,
            row.result.name(),
            printable(&row.detail)
        );
    }
    let failed = report.rows.iter().filter(|r| !r.ok()).count();
    let skipped = report
        .rows
        .iter()
        .filter(|r| r.result == Verdict::Skipped)
        .count();
    let _ = writeln!(out);
    if let Some(error) = &report.error {
        let _ = writeln!(out, "Error: {}", printable(error));
    }
    if report.ok {
        let _ = writeln!(
            out,
            "All {} rows as expected ({skipped} skipped).",
            report.rows.len()
        );
    } else {
        let _ = writeln!(
            out,
            "{failed} of {} rows not as expected{}.",
            report.rows.len(),
            if report.completed {
                ""
            } else {
                "; the probe did not finish"
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_addresses_of_both_kinds_and_escapes() {
        assert_eq!(
            parse_bus_address("unix:path=/run/user/1000/bus"),
            Some(UnixAddress::Path("/run/user/1000/bus".into()))
        );
        assert_eq!(
            parse_bus_address("unix:abstract=/tmp/dbus-AbC,guid=0123"),
            Some(UnixAddress::Abstract("/tmp/dbus-AbC".into()))
        );
        assert_eq!(
            parse_bus_address("tcp:host=x,port=1;unix:guid=9,path=/tmp/a%20b"),
            Some(UnixAddress::Path("/tmp/a b".into()))
        );
        assert_eq!(parse_bus_address("tcp:host=localhost,port=4"), None);
        assert_eq!(parse_bus_address("unix:path=/x%2"), None);
        assert_eq!(parse_bus_address(""), None);
    }

    fn row(id: &'static str, result: Verdict) -> Row {
        let check = CHECKS.iter().find(|c| c.id == id).unwrap();
        Row {
            id,
            group: check.group,
            name: check.name,
            expected: check.expected,
            result,
            detail: String::new(),
        }
    }

    #[test]
    fn layers_need_every_row_that_shows_them() {
        let all: Vec<Row> = [
            "pid-ns",
            "seccomp",
            "no-new-privs",
            "landlock",
            "web-net-ns",
            "web-seccomp",
        ]
        .into_iter()
        .map(|id| row(id, Verdict::Denied))
        .collect();
        assert_eq!(layers_in_force(&all), Layer::ALL.to_vec());
        let mut some = all.clone();
        some[1].result = Verdict::Allowed; // seccomp
        some[5].result = Verdict::Skipped; // web-seccomp
        assert_eq!(
            layers_in_force(&some),
            vec![Layer::Namespaces, Layer::Landlock]
        );
    }

    #[test]
    fn a_row_is_ok_when_as_expected_or_skipped() {
        assert!(row("kill", Verdict::Denied).ok());
        assert!(!row("kill", Verdict::Allowed).ok());
        assert!(row("kill", Verdict::Skipped).ok());
        assert!(row("webkit", Verdict::Allowed).ok());
        assert!(!row("webkit", Verdict::Denied).ok());
    }

    #[test]
    fn every_check_has_a_unique_id() {
        let mut ids: Vec<_> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
    }

    #[test]
    fn probe_lines_parse_and_garbage_does_not() {
        let r: ProbeLine =
            serde_json::from_str(r#"{"id":"kill","result":"denied","detail":"ESRCH"}"#).unwrap();
        assert!(matches!(r, ProbeLine::Row(ref row) if row.result == Verdict::Denied));
        assert!(matches!(
            serde_json::from_str::<ProbeLine>(r#"{"done":true}"#),
            Ok(ProbeLine::Done { done: true })
        ));
        assert!(
            serde_json::from_str::<ProbeLine>(r#"{"id":"kill","result":"maybe","detail":""}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<ProbeLine>("Gtk-WARNING: cannot open display").is_err());
    }

    #[test]
    fn the_table_shows_no_control_characters() {
        let mut bad = row("kill", Verdict::Allowed);
        bad.detail = "kill\u{1b}]0;owned\u{7}\nnext".into();
        let report = Report {
            ok: false,
            sandbox: true,
            layers: Vec::new(),
            planned_layers: Vec::new(),
            missing: BTreeMap::new(),
            completed: true,
            error: Some("bad\u{1b}[2J".into()),
            rows: vec![bad, row("webkit", Verdict::Allowed)],
            started: Started::default(),
        };
        let text = table(&report, Path::new("/r"));
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.contains("[FAIL] kill(browser, 0)"), "{text}");
        assert!(text.contains("1 of 2 rows not as expected"), "{text}");
    }

    #[test]
    fn evidence_is_cut_like_the_probe_cuts_it() {
        assert_eq!(truncate("é".repeat(200), MAX_EVIDENCE).len(), MAX_EVIDENCE);
        assert_eq!(truncate("abc".into(), MAX_EVIDENCE), "abc");
    }
}
