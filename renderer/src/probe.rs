//! The renderer's probe mode (`renderer --probe JSON`), the inside half of
//! `browser --sandbox-self-test`: it starts exactly as a tab's renderer does, then plays a
//! compromised renderer and tries each thing its sandbox must deny and each thing a tab needs.
//!
//! Why a mode of the real renderer and not a separate test program: the sandbox is only proven for
//! what actually runs in it. The browser starts the probe through its one production launch path
//! (`Sandbox::command`: bubblewrap, the clean environment, the pre-`exec` hygiene and seccomp), and
//! the probe runs the renderer's own start-up steps ([`crate::startup::die_with_parent`], taking
//! the up socket, `gtk::init`, [`crate::sandbox::enter`]) before it tries anything. No handshake
//! with the browser follows: the descriptors are there as in production, but nothing is sent.
//!
//! Every row is a real attempt, never a hard-coded answer, and the probe does not judge its rows
//! against what they should be: it prints what happened, one JSON line per row on stdout
//! (`{"id":…,"result":"allowed"|"denied"|"skipped","detail":…,"evidence":…}`), then
//! `{"done":true}`. Where only the outside can tell what really happened — whether a file
//! appeared outside the sandbox, whether the bytes read were the browser's, whether a process
//! outlived the tab — the row carries the probe's `evidence` and the browser decides.
//!
//! The targets (the browser's pid, a canary file in `$HOME`, a control-like socket, the session
//! bus, a TCP listener…) are prepared by the browser outside the sandbox and passed as the JSON
//! argument ([`Targets`]).

use std::cell::RefCell;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSliceMut, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gtk::prelude::*;
use javascriptcore::ValueExt;
use nix::libc;
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;
use serde::Serialize;
use webkit2gtk::{LoadEvent, WebContextExt, WebViewExt, WebsiteDataManager};

/// Exit status when the probe could not start (bad argument, no display).
const EXIT_PROBE_FAILED: u8 = 1;

/// How long WebKit may take to start its processes and load a small page (cold start, 2 shared
/// cores).
const WEBKIT_TIMEOUT: Duration = Duration::from_secs(45);

/// Evidence is cut to this many bytes: enough to compare, never a flood on the pipe.
const MAX_EVIDENCE: usize = 256;

/// The name WebKit's web process has in `/proc/PID/comm` (the kernel cuts names to 15 bytes).
const WEB_PROCESS_COMM: &str = "WebKitWebProces";

pub use warren_ipc::probe::{Targets, UnixAddress};

/// What one attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Allowed,
    Denied,
    Skipped,
}

/// One row of the probe's output.
#[derive(Debug, Serialize)]
struct Row {
    id: &'static str,
    result: Outcome,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<String>,
}

impl Row {
    fn allowed(id: &'static str, detail: impl Into<String>) -> Row {
        Row {
            id,
            result: Outcome::Allowed,
            detail: detail.into(),
            evidence: None,
        }
    }
    fn denied(id: &'static str, detail: impl Into<String>) -> Row {
        Row {
            id,
            result: Outcome::Denied,
            detail: detail.into(),
            evidence: None,
        }
    }
    fn skipped(id: &'static str, detail: impl Into<String>) -> Row {
        Row {
            id,
            result: Outcome::Skipped,
            detail: detail.into(),
            evidence: None,
        }
    }
    fn with_evidence(mut self, evidence: impl Into<String>) -> Row {
        let mut evidence: String = evidence.into();
        truncate(&mut evidence, MAX_EVIDENCE);
        self.evidence = Some(evidence);
        self
    }
}

/// The argument of `--probe`, if the renderer was started in probe mode.
pub fn requested() -> Option<String> {
    let mut args = std::env::args();
    while let Some(arg) = args.next() {
        if arg == "--probe" {
            return Some(args.next().unwrap_or_default());
        }
    }
    None
}

/// Runs the probe: the production start-up, then every row. `die_with_parent` already ran (it is
/// the first thing `main` does, in both modes).
pub fn run(arg: &str) -> ExitCode {
    let targets: Targets = match serde_json::from_str(arg) {
        Ok(t) => t,
        Err(e) => {
            log::error!(target: "renderer", "--probe needs the self-test's JSON targets: {e}");
            return ExitCode::from(EXIT_PROBE_FAILED);
        }
    };
    // The production start-up, minus the handshake: take the up socket (close-on-exec, so
    // WebKit's helpers do not inherit it) and keep the launch channel out of them too.
    let _up = match crate::startup::take_up_socket() {
        Ok(up) => up,
        Err(e) => {
            log::error!(target: "renderer", "{e}");
            return ExitCode::from(EXIT_PROBE_FAILED);
        }
    };
    // SAFETY: DOWN_FD is only borrowed to mark it close-on-exec.
    let down = unsafe { BorrowedFd::borrow_raw(warren_ipc::DOWN_FD) };
    let _ = nix::fcntl::fcntl(
        down,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    // A nested display starts beside the probe, as beside a tab's renderer.
    if let Err(e @ crate::startup::StartupError::NoDisplay(..)) =
        crate::startup::wait_for_display(crate::DISPLAY_START_TIMEOUT)
    {
        log::error!(target: "renderer", "{e}");
        return ExitCode::from(EXIT_PROBE_FAILED);
    }
    if let Err(e) = gtk::init() {
        log::error!(target: "renderer", "cannot initialize GTK (is DISPLAY set?): {e}");
        return ExitCode::from(EXIT_PROBE_FAILED);
    }
    let landlock = crate::sandbox::enter();

    // Everything below runs on the main thread, the one `sandbox::enter` restricted.
    let out = Output;
    out.row(leave_process(&targets.marker));
    out.row(read_home(&targets));
    out.row(create_file("write-home", targets.home_write.as_deref()));
    out.row(create_file("write-profile", Some(&targets.profile_write)));
    out.row(create_file(
        "write-website-data",
        Some(&targets.website_data_write),
    ));
    out.row(ptrace_attach(targets.browser_pid));
    out.row(kill_browser(&targets));
    out.row(see_browser(targets.browser_pid));
    out.row(read_browser_memory(&targets));
    out.row(bpf());
    out.row(perf_event_open());
    out.row(connect_path("control-socket", &targets.control_socket));
    out.row(session_bus(targets.session_bus.as_ref()));
    out.row(match &targets.x_abstract {
        Some(name) => connect_abstract("x-abstract", name),
        None => Row::skipped("x-abstract", "the display has no abstract socket"),
    });
    out.row(match &targets.x_path {
        Some(path) => connect_path("x-path", path),
        None => Row::skipped("x-path", "the display has no socket file"),
    });
    out.row(open_font(targets.font.as_deref()));
    out.row(network(targets.tcp_port));
    out.row(memfd());
    out.row(status_row(
        "no-new-privs",
        "NoNewPrivs",
        |v| v == "1",
        "NoNewPrivs: 1",
    ));
    out.row(status_row(
        "seccomp",
        "Seccomp",
        |v| v == "2",
        "Seccomp: 2 (filter)",
    ));
    out.row(pid_namespace(&targets.browser_pid_ns));
    out.row(if landlock {
        Row::denied("landlock", "Landlock scoping is in force (sandbox::enter)")
    } else {
        Row::allowed(
            "landlock",
            "Landlock scoping is not in force (sandbox::enter)",
        )
    });
    for row in webkit(&targets.website_data_dir) {
        out.row(row);
    }
    out.done();
    ExitCode::SUCCESS
}

/// Prints rows as JSON lines, flushed one by one so the browser sees progress even if a later
/// row hangs.
struct Output;

impl Output {
    fn row(&self, row: Row) {
        log::debug!(target: "renderer", "probe: {row:?}");
        self.line(&serde_json::to_string(&row).expect("rows serialize"));
    }

    fn done(&self) {
        self.line(r#"{"done":true}"#);
    }

    fn line(&self, line: &str) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Double-forks a `setsid` grandchild that names itself `marker` and sleeps: the escape of
/// issue 7's defect 3. Whether it outlives the tab only the browser can see.
fn leave_process(marker: &str) -> Row {
    const ID: &str = "leave-process";
    let Ok(name) = CString::new(marker) else {
        return Row::skipped(ID, "the marker holds a NUL byte");
    };
    // SAFETY: the children only make async-signal-safe system calls on data prepared before the
    // fork (this process has GTK's threads), and end with `_exit`.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Row::denied(ID, format!("fork: {}", io::Error::last_os_error()));
    }
    if child == 0 {
        // SAFETY: see above; this is the forked child.
        unsafe {
            libc::setsid();
            let grandchild = libc::fork();
            if grandchild != 0 {
                libc::_exit(if grandchild < 0 { 1 } else { 0 });
            }
            libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);
            // No descriptor of ours: the browser reads our stdout to its end.
            libc::syscall(libc::SYS_close_range, 0, libc::c_uint::MAX, 0);
            // Sleeps long enough to be seen, not forever if nobody ends it.
            let nap = libc::timespec {
                tv_sec: 300,
                tv_nsec: 0,
            };
            libc::nanosleep(&nap, std::ptr::null_mut());
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let waited = unsafe { libc::waitpid(child, &mut status, 0) };
    if waited != child || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Row::denied(ID, "the second fork failed");
    }
    Row::allowed(
        ID,
        format!("double-forked a setsid grandchild named {marker:?}"),
    )
}

fn read_home(targets: &Targets) -> Row {
    const ID: &str = "read-home";
    let Some(path) = &targets.home_canary else {
        return Row::skipped(ID, "no usable $HOME");
    };
    match std::fs::read(path) {
        Ok(bytes) => Row::allowed(
            ID,
            format!("read {} bytes of {}", bytes.len(), path.display()),
        )
        .with_evidence(String::from_utf8_lossy(&bytes)),
        Err(e) => Row::denied(ID, format!("{}: {e}", path.display())),
    }
}

/// Tries to create a new file; the browser checks from outside whether it appeared where it
/// should (inside a private `/tmp` the same path may work and reach nothing).
fn create_file(id: &'static str, path: Option<&Path>) -> Row {
    let Some(path) = path else {
        return Row::skipped(id, "no usable $HOME");
    };
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(b"written by the sandbox probe\n"));
    match created {
        Ok(()) => Row::allowed(id, format!("created {}", path.display())),
        Err(e) => Row::denied(id, format!("{}: {e}", path.display())),
    }
}

fn ptrace_attach(pid: i32) -> Row {
    const ID: &str = "ptrace";
    let null = std::ptr::null_mut::<libc::c_void>();
    // SAFETY: PTRACE_ATTACH takes no pointers.
    if unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, null, null) } < 0 {
        return Row::denied(
            ID,
            format!("PTRACE_ATTACH {pid}: {}", io::Error::last_os_error()),
        );
    }
    // Attached: the tracee stops with SIGSTOP. Wait for that stop and let it go at once, without
    // the signal, so the browser runs on unharmed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut status = 0;
        // SAFETY: waits for a tracee of ours.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG) };
        if got == pid || got < 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: PTRACE_DETACH with signal 0 takes no pointers.
    let detached = unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, null, null) } == 0;
    if !detached {
        // A stop that was never reported: continue the process whatever state it is in.
        // SAFETY: kill takes no pointers.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    Row::allowed(ID, format!("attached to pid {pid} (and detached)"))
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn kill_browser(targets: &Targets) -> Row {
    const ID: &str = "kill";
    let pid = targets.browser_pid;
    // SAFETY: signal 0 only checks whether the signal could be sent.
    if unsafe { libc::kill(pid, 0) } < 0 {
        return Row::denied(
            ID,
            format!("kill({pid}, 0): {}", io::Error::last_os_error()),
        );
    }
    match start_time(pid) {
        Some(t) if t != targets.browser_start_time => Row::denied(
            ID,
            format!(
                "kill({pid}, 0) reached pid {pid} of this sandbox's own PID namespace, another \
                 process than the browser"
            ),
        ),
        _ => Row::allowed(ID, format!("kill({pid}, 0) succeeded")),
    }
}

fn see_browser(pid: i32) -> Row {
    const ID: &str = "proc";
    let path = format!("/proc/{pid}/cmdline");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let cmdline: Vec<u8> = bytes
                .iter()
                .map(|&b| if b == 0 { b' ' } else { b })
                .collect();
            let cmdline = String::from_utf8_lossy(&cmdline).trim_end().to_owned();
            Row::allowed(ID, format!("{path} is readable")).with_evidence(cmdline)
        }
        Err(e) => Row::denied(ID, format!("{path}: {e}")),
    }
}

fn read_browser_memory(targets: &Targets) -> Row {
    const ID: &str = "process-vm-readv";
    let mut buf = vec![0u8; targets.secret_len.min(MAX_EVIDENCE / 2)];
    let remote = [RemoteIoVec {
        base: targets.secret_addr as usize,
        len: buf.len(),
    }];
    let pid = targets.browser_pid;
    match process_vm_readv(
        Pid::from_raw(pid),
        &mut [IoSliceMut::new(&mut buf)],
        &remote,
    ) {
        Ok(n) => {
            Row::allowed(ID, format!("read {n} bytes of pid {pid}")).with_evidence(hex(&buf[..n]))
        }
        Err(e) => Row::denied(ID, format!("process_vm_readv({pid}): {e}")),
    }
}

/// `bpf(BPF_MAP_CREATE)` of a one-entry array map: the least a loader of eBPF programs does.
fn bpf() -> Row {
    const ID: &str = "bpf";
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    // map_type, key_size, value_size, max_entries, map_flags: the head of `union bpf_attr`; the
    // kernel zeroes the rest.
    let attr: [u32; 5] = [BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0];
    // SAFETY: bpf(2) reads `size_of_val(&attr)` bytes of `attr`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Row::denied(
            ID,
            format!("bpf(BPF_MAP_CREATE): {}", io::Error::last_os_error()),
        );
    }
    // SAFETY: the call returned a new descriptor that nothing else owns.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    Row::allowed(ID, "bpf(BPF_MAP_CREATE) made a map")
}

/// `perf_event_open` of a software CPU clock on this process: the least a profiler does.
fn perf_event_open() -> Row {
    const ID: &str = "perf-event-open";
    const PERF_TYPE_SOFTWARE: u64 = 1;
    const PERF_ATTR_SIZE_VER0: u64 = 64;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    // struct perf_event_attr, version 0: type (u32) and size (u32), config, sample period,
    // sample type, read format, then the flag bits: disabled (0), exclude_kernel (5),
    // exclude_hv (6), so that even a strict perf_event_paranoid allows it outside a sandbox.
    let mut attr = [0u64; 8];
    attr[0] = PERF_TYPE_SOFTWARE | (PERF_ATTR_SIZE_VER0 << 32);
    attr[5] = 1 | (1 << 5) | (1 << 6);
    // SAFETY: perf_event_open(2) reads the 64-byte attribute structure.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            0 as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Row::denied(
            ID,
            format!("perf_event_open: {}", io::Error::last_os_error()),
        );
    }
    // SAFETY: a new descriptor that nothing else owns.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    Row::allowed(ID, "perf_event_open opened a counter")
}

fn connect_path(id: &'static str, path: &Path) -> Row {
    match UnixStream::connect(path) {
        Ok(_) => Row::allowed(id, format!("connected to {}", path.display())),
        Err(e) => Row::denied(id, format!("{}: {e}", path.display())),
    }
}

fn connect_abstract(id: &'static str, name: &str) -> Row {
    let connected = SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| UnixStream::connect_addr(&addr));
    match connected {
        Ok(_) => Row::allowed(id, format!("connected to @{name}")),
        Err(e) => Row::denied(id, format!("@{name}: {e}")),
    }
}

/// Connects to the session bus and, when that works, starts its authentication to show that a
/// bus answered.
fn session_bus(address: Option<&UnixAddress>) -> Row {
    const ID: &str = "session-bus";
    let (stream, shown) = match address {
        None => return Row::skipped(ID, "the browser has no session bus"),
        Some(UnixAddress::Path(path)) => (UnixStream::connect(path), path.display().to_string()),
        Some(UnixAddress::Abstract(name)) => (
            SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| UnixStream::connect_addr(&addr)),
            format!("@{name}"),
        ),
    };
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => return Row::denied(ID, format!("{shown}: {e}")),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0u8; 128];
    let answer = stream
        .write_all(b"\0AUTH\r\n")
        .and_then(|()| stream.read(&mut reply));
    let answer = match answer {
        Ok(n) => String::from_utf8_lossy(&reply[..n]).trim().to_owned(),
        Err(e) => format!("no answer to AUTH: {e}"),
    };
    Row::allowed(ID, format!("connected to {shown}; the bus said {answer:?}"))
}

fn open_font(path: Option<&Path>) -> Row {
    const ID: &str = "font";
    let Some(path) = path else {
        return Row::skipped(ID, "the browser found no system font file");
    };
    let mut head = [0u8; 4];
    match File::open(path).and_then(|mut f| f.read_exact(&mut head)) {
        Ok(()) => Row::allowed(ID, format!("opened {}", path.display())).with_evidence(hex(&head)),
        Err(e) => Row::denied(ID, format!("{}: {e}", path.display())),
    }
}

fn network(port: u16) -> Row {
    const ID: &str = "network";
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    match TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5)) {
        Ok(_) => Row::allowed(ID, format!("connected to {addr}")),
        Err(e) => Row::denied(ID, format!("{addr}: {e}")),
    }
}

fn memfd() -> Row {
    const ID: &str = "memfd";
    // SAFETY: memfd_create reads a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"warren-probe".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Row::denied(ID, format!("memfd_create: {}", io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut back = [0u8; 5];
    let used = file
        .write_all(b"probe")
        .and_then(|()| std::io::Seek::rewind(&mut file))
        .and_then(|()| file.read_exact(&mut back));
    match used {
        Ok(()) if &back == b"probe" => Row::allowed(ID, "memfd_create, write and read back"),
        Ok(()) => Row::denied(ID, "memfd_create worked but read back other bytes"),
        Err(e) => Row::denied(ID, format!("memfd_create worked, using it failed: {e}")),
    }
}

/// A field of `/proc/PID/status` (`pid` may be `self`).
fn status_field(pid: &str, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim().to_owned())
    })
}

/// A layer row: "running without X" is denied when `/proc/self/status` shows X.
fn status_row(id: &'static str, field: &str, in_force: fn(&str) -> bool, what: &str) -> Row {
    match status_field("self", field) {
        Some(v) if in_force(&v) => Row::denied(id, format!("/proc/self/status: {field}: {v}")),
        Some(v) => Row::allowed(id, format!("/proc/self/status: {field}: {v}, not {what}")),
        None => Row::allowed(id, format!("/proc/self/status has no {field} line")),
    }
}

fn pid_namespace(browser_ns: &str) -> Row {
    const ID: &str = "pid-ns";
    match std::fs::read_link("/proc/self/ns/pid") {
        Ok(ns) if ns.as_os_str() != browser_ns => Row::denied(
            ID,
            format!(
                "own PID namespace {} (the browser's: {browser_ns})",
                ns.display()
            ),
        ),
        Ok(ns) => Row::allowed(ID, format!("the browser's PID namespace {}", ns.display())),
        Err(e) => Row::allowed(ID, format!("cannot read /proc/self/ns/pid: {e}")),
    }
}

/// Loads WebKit as a tab does (a web view on the profile's website data, in an offscreen window),
/// evaluates `6*7`, then looks at the web process WebKit started: its network namespace and its
/// seccomp filters against this process's.
fn webkit(website_data_dir: &Path) -> Vec<Row> {
    const LOAD: &str = "webkit";
    const NET: &str = "web-net-ns";
    const SECCOMP: &str = "web-seccomp";
    let dir = website_data_dir.to_string_lossy();
    let manager = WebsiteDataManager::builder()
        .base_data_directory(dir.as_ref())
        .base_cache_directory(dir.as_ref())
        .build();
    let context = webkit2gtk::WebContext::builder()
        .website_data_manager(&manager)
        .build();
    context.set_automation_allowed(false);
    let view = webkit2gtk::WebView::with_context(&context);
    let window = gtk::OffscreenWindow::new();
    window.set_default_size(320, 240);
    window.add(&view);
    window.show_all();

    let state: Rc<RefCell<Option<Result<(), String>>>> = Rc::new(RefCell::new(None));
    {
        let state = Rc::clone(&state);
        view.connect_load_changed(move |_, event| {
            if event == LoadEvent::Finished {
                state.borrow_mut().get_or_insert(Ok(()));
            }
        });
    }
    {
        let state = Rc::clone(&state);
        view.connect_load_failed(move |_, _, uri, error| {
            *state.borrow_mut() = Some(Err(format!("loading {uri} failed: {error}")));
            false
        });
    }
    {
        let state = Rc::clone(&state);
        view.connect_web_process_terminated(move |_, reason| {
            *state.borrow_mut() = Some(Err(format!("the web process ended: {reason:?}")));
        });
    }
    let started = Instant::now();
    view.load_html(
        "<!doctype html><title>probe</title><p>Warren sandbox probe</p>",
        None,
    );
    let deadline = started + WEBKIT_TIMEOUT;
    run_until(deadline, || state.borrow().is_some());
    let loaded = state.borrow_mut().take();
    let load_row = match loaded {
        None => Row::denied(LOAD, format!("no load-finished after {WEBKIT_TIMEOUT:?}")),
        Some(Err(e)) => Row::denied(LOAD, e),
        Some(Ok(())) => {
            let answer: Rc<RefCell<Option<Result<String, String>>>> = Rc::new(RefCell::new(None));
            {
                let answer = Rc::clone(&answer);
                view.evaluate_javascript(
                    "6*7",
                    None,
                    None,
                    None::<&gtk::gio::Cancellable>,
                    move |result| {
                        *answer.borrow_mut() = Some(match result {
                            Ok(v) if v.is_number() => Ok(format!("{}", v.to_double())),
                            Ok(v) => Err(format!("not a number: {}", v.to_str())),
                            Err(e) => Err(e.to_string()),
                        });
                    },
                );
            }
            run_until(deadline, || answer.borrow().is_some());
            let answer = answer.borrow_mut().take();
            match answer {
                Some(Ok(v)) if v == "42" => Row::allowed(
                    LOAD,
                    format!(
                        "loaded a page and evaluated 6*7 = 42 in {} ms",
                        started.elapsed().as_millis()
                    ),
                ),
                Some(Ok(v)) => Row::denied(LOAD, format!("6*7 evaluated to {v}")),
                Some(Err(e)) => Row::denied(LOAD, format!("evaluating 6*7 failed: {e}")),
                None => Row::denied(LOAD, format!("no answer to 6*7 after {WEBKIT_TIMEOUT:?}")),
            }
        }
    };
    let mut rows = vec![load_row];
    let web = web_processes();
    if web.is_empty() {
        let why = "no WebKitWebProcess below this process";
        rows.push(Row::skipped(NET, why));
        rows.push(Row::skipped(SECCOMP, why));
    } else {
        rows.push(web_net_ns(NET, &web));
        rows.push(web_seccomp(SECCOMP, &web));
    }
    // Torn down by the process's exit, as a tab's view is.
    std::mem::forget(view);
    std::mem::forget(window);
    rows
}

/// Runs the GTK main context until `done` or `deadline`.
fn run_until(deadline: Instant, done: impl Fn() -> bool) {
    let context = glib::MainContext::default();
    // A tick so that `iteration` never sleeps past the deadline.
    let tick = glib::timeout_add_local(Duration::from_millis(50), || glib::ControlFlow::Continue);
    while !done() && Instant::now() < deadline {
        context.iteration(true);
    }
    tick.remove();
}

/// WebKit's web processes among this process's descendants (in this PID namespace's numbers).
fn web_processes() -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = status_field(&pid.to_string(), "PPid").and_then(|p| p.parse().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut tree = vec![std::process::id() as i32];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree.into_iter()
        .skip(1)
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() == WEB_PROCESS_COMM)
        })
        .collect()
}

fn web_net_ns(id: &'static str, web: &[i32]) -> Row {
    let own = match std::fs::read_link("/proc/self/ns/net") {
        Ok(ns) => ns,
        Err(e) => return Row::skipped(id, format!("cannot read /proc/self/ns/net: {e}")),
    };
    for pid in web {
        match std::fs::read_link(format!("/proc/{pid}/ns/net")) {
            Ok(ns) if ns == own => {
                return Row::allowed(
                    id,
                    format!(
                        "web process {pid} shares this process's network namespace {}",
                        own.display()
                    ),
                )
            }
            Ok(_) => {}
            Err(e) => {
                return Row::skipped(id, format!("cannot read /proc/{pid}/ns/net: {e}"));
            }
        }
    }
    Row::denied(
        id,
        format!(
            "web process {web:?} has its own network namespace (this process: {})",
            own.display()
        ),
    )
}

fn web_seccomp(id: &'static str, web: &[i32]) -> Row {
    let filters = |pid: &str| -> Option<u32> { status_field(pid, "Seccomp_filters")?.parse().ok() };
    let own = filters("self").unwrap_or(0);
    for pid in web {
        let pid_s = pid.to_string();
        let mode = status_field(&pid_s, "Seccomp").unwrap_or_default();
        let theirs = filters(&pid_s).unwrap_or(0);
        if mode != "2" || theirs <= own {
            return Row::allowed(
                id,
                format!(
                    "web process {pid}: Seccomp: {mode}, {theirs} filter(s), no filter of its own \
                     beyond this process's {own}"
                ),
            );
        }
    }
    Row::denied(
        id,
        format!("web process {web:?}: Seccomp: 2 with a filter of WebKit's own beyond this process's {own}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_refuse_unknown_fields_and_parse_both_bus_kinds() {
        let base = serde_json::json!({
            "browser_pid": 1, "browser_start_time": 2, "browser_pid_ns": "pid:[1]",
            "home_canary": null, "home_write": null, "profile_write": "/p/x",
            "website_data_write": "/p/w/x", "website_data_dir": "/p/w",
            "secret_addr": 4096, "secret_len": 16, "control_socket": "/run/c.sock",
            "session_bus": {"abstract": "/tmp/dbus-x"}, "x_abstract": "/tmp/.X11-unix/X0",
            "tcp_port": 80, "font": null, "marker": "wprobe-1"
        });
        let t: Targets = serde_json::from_value(base.clone()).unwrap();
        assert!(matches!(t.session_bus, Some(UnixAddress::Abstract(ref n)) if n == "/tmp/dbus-x"));
        let mut path = base.clone();
        path["session_bus"] = serde_json::json!({"path": "/run/bus"});
        let t: Targets = serde_json::from_value(path).unwrap();
        assert!(matches!(t.session_bus, Some(UnixAddress::Path(_))));
        let mut extra = base;
        extra["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Targets>(extra).is_err());
    }

    #[test]
    fn start_time_of_this_process_is_read() {
        let t = start_time(std::process::id() as i32);
        assert!(t.is_some_and(|t| t > 0), "{t:?}");
    }

    #[test]
    fn evidence_is_cut_on_a_character_boundary() {
        let row = Row::allowed("x", "").with_evidence("é".repeat(MAX_EVIDENCE));
        let evidence = row.evidence.unwrap();
        assert!(evidence.len() <= MAX_EVIDENCE);
        assert!(evidence.chars().all(|c| c == 'é'));
    }
}
