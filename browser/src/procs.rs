//! The task manager's measurement core: walks `/proc`, builds the browser's process tree, attributes every process to a tab and reports what each costs.
//!
//! This module has no UI and no winit: the control socket's `task_manager` command, the Task
//! Manager window and the memory budget all read a [`Snapshot`] made by a [`Monitor`], which runs
//! on the [`sampler`]'s thread, never on the UI thread (reading `smaps_rollup` of a few hundred
//! large processes takes seconds).
//!
//! # What one refresh reads
//!
//! * The `/proc` directory is listed once, and `/proc/PID/stat` is read for every process that
//!   is new since the previous refresh or in the browser's tree (the parent pid and the CPU
//!   counters are only known from there). Zombies (state `Z`) and dead tasks (`X`) are skipped.
//!   A process that was outside the browser's tree stays outside for life (reparenting only moves
//!   a process to a subreaper among its ancestors, or to init), so its `stat` is not read again
//!   while its `/proc/PID` entry keeps the same inode number: procfs gives each process's
//!   directory a fresh inode, so a reused pid shows up as a new entry. Every
//!   [`FULL_SCAN_EVERY`]th refresh reads every `stat` anyway, which bounds the damage should a
//!   kernel ever keep inode numbers across pid reuse, or should the browser run as a namespace's
//!   init (which adopts every orphan).
//! * The process tree is built from those parent pids, rooted at the browser. An edge
//!   child → parent only counts when the parent started no later than the child (field 22 of
//!   `stat`, the start time in clock ticks since boot), so a parent pid that was reused by a newer,
//!   unrelated process never adopts the old process's children.
//! * Only for processes in the browser's tree: `status` (RssAnon, VmSwap, NoNewPrivs, Seccomp),
//!   the number of open descriptors (the size of the `fd` directory on Linux 6.2+, else a count of
//!   its entries), `smaps_rollup` (PSS) only when [`Query::pss`] asks for it (the kernel walks
//!   every page table entry of every mapping: about 10 ms for a process that maps 4 GiB) and
//!   only until the refresh's deadline ([`Monitor::refresh_until`]; later rows have no PSS and
//!   [`Snapshot::pss_skipped`] counts them), `exe` and `cmdline` only the first time a process
//!   is seen, and the `ns/pid` and `ns/net` links then and every [`NAMESPACES_EVERY`]th refresh
//!   (names and namespaces are cached per pid, start time and `comm`, so an `exec` is noticed).
//! * Within one refresh, the files of one pid are taken to be of one process: the kernel hands
//!   out pids cyclically, so a pid is reused only after `pid_max` (32768 or more) others were
//!   allocated, which does not happen in the milliseconds one refresh takes. Across refreshes,
//!   every cache is keyed by the start time (or the entry's inode) as well as the pid.
//!
//! # Attribution
//!
//! * The browser pid is the root (kind `browser`, no tab).
//! * A pid the caller lists as a tab's renderer counts when it is in the browser's tree; it is
//!   kind `renderer`, and the **child of the browser it descends from** holds the tab: that child
//!   and everything below it belong to the tab. The holder is the renderer itself, or the sandbox
//!   the browser started it in (bubblewrap, and the init of the tab's PID namespace: kind `other`,
//!   counted with the tab). Should two listed renderers lead to the same child (a pid reused
//!   in the instant between a renderer's death and the caller's next list), the first listed keeps
//!   it. A spare renderer ([`Query::spares`]) is a direct child of the browser, kind `spare`, and
//!   it and its descendants have no tab.
//! * A tab's nested display ([`Query::displays`]) is a second tree under the browser, started
//!   beside the renderer: bubblewrap → bubblewrap → `Xephyr`, or `Xephyr` alone without
//!   namespaces. The browser's child it descends from holds it for the tab too, so the tab's
//!   totals count what its display costs; its rows come after the renderer's. In it, the process
//!   whose executable is `Xephyr` is kind `display` and everything else (bubblewrap, the
//!   `xkbcomp` Xephyr runs to load a keymap) `other`: never `renderer`, `web` or `network`,
//!   whatever it is named, and the tab's [`TabTotals::renderer_pid`] stays its renderer's. A
//!   display counts for its tab only while the tab's renderer is found and holds another child
//!   of the browser; otherwise it is a stray (`other`, no tab), as any process of a tab whose
//!   renderer is gone would be.
//! * In a tab or a spare, a process is `web` when its executable's file name is
//!   `WebKitWebProcess`, `network` for `WebKitNetworkProcess`, else `other`. Names come from the
//!   `exe` link (`comm` is cut to 15 characters: `WebKitWebProces`), else `cmdline`'s argv\[0\],
//!   else `comm`.
//! * Any other child of the browser, such as a WebKit helper orphaned when its renderer died
//!   (the browser is a child subreaper, so orphans land on it), and everything below it, is
//!   `other` with no tab.
//! * A process that vanishes between the listing and its reads is left out (its descendants keep
//!   the tab they were walked under, which is theirs); a process whose files are unreadable stays,
//!   with the unreadable fields `None`. Nothing here panics on what `/proc` says.
//!
//! # CPU
//!
//! `cpu_percent` is the process's user + system time over the wall time since the previous
//! refresh, as a percentage of one core (a busy thread reads about 100, as in `top`). The kernel
//! counts CPU time in clock ticks (10 ms), so an interval shorter than [`MIN_CPU_INTERVAL`] is
//! not measured: such a refresh repeats the last value and the interval grows until the next one.
//! For a process without a measured interval yet (new, or every process on the first refresh),
//! it is the average since the process started, as `ps` reports it. Samples are keyed by pid
//! *and* start time, so a reused pid never produces a delta against another process's counters.
//!
//! # Sandbox
//!
//! [`Sandbox`] holds each sandbox layer seen: NoNewPrivs and seccomp in filter mode
//! (`Seccomp: 2`) from `/proc/PID/status`, the tab's own PID namespace from `/proc/PID/ns/pid`,
//! Landlock from what the tab's renderer reported (no process can read another's Landlock
//! domain), and WebKit's sandbox from the web processes' network namespaces. Which layers a
//! process should have depends on what it runs ([`Scope`]): web content (the renderer and
//! WebKit's helpers) all four; a tab's nested display two, namespaces and seccomp, because
//! Landlock is applied by the renderer to itself and WebKit's sandbox is around the page only.
//! `sandboxed` is true only when every layer of its scope is active, so a display in its own
//! namespace under seccomp is not reported as unprotected, nor as "all 4".

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use thiserror::Error;
use warren_ipc::TabId;

use crate::protocol::{ProcessInfo, TaskManagerResult};

pub mod sampler;

/// The executable name of WebKit's web (JavaScript) process.
pub const WEB_PROCESS_NAME: &str = "WebKitWebProcess";
/// The executable name of WebKit's network process.
pub const NETWORK_PROCESS_NAME: &str = "WebKitNetworkProcess";
/// The executable name of a tab's nested display server.
pub const DISPLAY_SERVER_NAME: &str = "Xephyr";

/// The largest `/proc` file this module reads; a longer one counts as unreadable.
const MAX_FILE_LEN: usize = 1 << 20;

/// CPU use is measured over at least this long (`stat` counts in ticks of 10 ms); a refresh
/// sooner than this after the last measured one repeats the last value.
pub const MIN_CPU_INTERVAL: Duration = Duration::from_millis(500);

/// Every this many refreshes, the `stat` of every process is read, even of those known to be
/// outside the browser's tree.
pub const FULL_SCAN_EVERY: u64 = 16;

/// A process's namespaces are read again after this many refreshes, and after an `exec`.
///
/// Two `readlink`s per process and refresh were a tenth of the sampler's time with the Task
/// Manager open. A process's PID namespace is fixed for its life; its network namespace changes
/// only by `unshare` or `setns`, which the sandboxes do as they start the process (bubblewrap
/// creates the namespaces with the child, then `exec`s), and which a process inside a sandbox
/// cannot use to leave it. So a sandbox layer that appears later is shown at most this many
/// refreshes late, and none is ever shown after it was left.
pub const NAMESPACES_EVERY: u64 = 8;

/// What can stop a whole refresh. Single processes never do: they are dropped or marked.
#[derive(Debug, Error)]
pub enum ProcsError {
    #[error("cannot read the process list in {path}: {source}; is /proc mounted and readable?")]
    List { path: PathBuf, source: io::Error },
    #[error("the browser process {pid} is not in {path}; pass the pid of this browser process")]
    NoBrowser { pid: u32, path: PathBuf },
}

/// What a process is, for the task manager (serialized in lowercase, as the protocol names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The browser process itself.
    Browser,
    /// A tab's renderer.
    Renderer,
    /// A `WebKitWebProcess` below a renderer or spare.
    Web,
    /// A `WebKitNetworkProcess` below a renderer or spare.
    Network,
    /// A prewarmed renderer with no tab yet.
    Spare,
    /// A tab's nested display server (`Xephyr`), which the browser started for the tab's
    /// renderer to draw on.
    Display,
    /// Anything else in the browser's tree, including orphaned WebKit helpers.
    Other,
}

impl Kind {
    /// The protocol's name for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Renderer => "renderer",
            Self::Web => "web",
            Self::Network => "network",
            Self::Spare => "spare",
            Self::Display => "display",
            Self::Other => "other",
        }
    }
}

/// Which sandbox layers apply to a process, by what it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Web content and what holds it (the renderer, WebKit's helpers, their sandbox): all four
    /// layers.
    #[default]
    Content,
    /// A tab's nested display and its sandbox: namespaces and seccomp only. Landlock is the
    /// renderer's own (it scopes itself after connecting to its display) and WebKit's sandbox is
    /// around the page; neither is meant for the display server, so their absence is no gap.
    Display,
}

impl Scope {
    /// The protocol's names of the layers that apply, in the order [`Sandbox::layers`] lists them.
    pub fn layers(self) -> &'static [&'static str] {
        match self {
            Self::Content => &["namespaces", "seccomp", "landlock", "webkit"],
            Self::Display => &["namespaces", "seccomp"],
        }
    }
}

/// The sandbox layers a process has, as far as they can be seen from outside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Which layers apply (see [`Scope`]).
    pub scope: Scope,
    /// `NoNewPrivs: 1`: execve can't grant privileges (setuid, file capabilities).
    pub no_new_privs: bool,
    /// `Seccomp: 2`: a seccomp filter restricts the system calls.
    pub seccomp_filter: bool,
    /// In a PID namespace other than the browser's (`/proc/PID/ns/pid`): the tab's own
    /// namespaces and mount view (bubblewrap).
    pub namespaces: bool,
    /// Landlock scoping of abstract sockets and signals: the tab's renderer reported it in force,
    /// and this process is the renderer or one WebKit started after it (Landlock domains are
    /// inherited; no process can read another's).
    pub landlock: bool,
    /// WebKit's own sandbox is around the tab's page: every web process of the tab is in a
    /// network namespace of its own (`/proc/PID/ns/net`).
    pub webkit: bool,
}

impl Sandbox {
    /// True only when every layer of its [`Scope`] is active.
    pub fn is_complete(&self) -> bool {
        let base = self.no_new_privs && self.seccomp_filter && self.namespaces;
        match self.scope {
            Scope::Content => base && self.landlock && self.webkit,
            Scope::Display => base,
        }
    }

    /// The protocol's names of the layers of its [`Scope`] that are not active.
    pub fn missing(&self) -> Vec<&'static str> {
        let have = self.layers();
        self.scope
            .layers()
            .iter()
            .copied()
            .filter(|l| !have.contains(l))
            .collect()
    }

    /// The protocol's names of the layers present (`seccomp` counts with `NoNewPrivs`).
    pub fn layers(&self) -> Vec<&'static str> {
        let mut layers = Vec::new();
        if self.namespaces {
            layers.push("namespaces");
        }
        if self.no_new_privs && self.seccomp_filter {
            layers.push("seccomp");
        }
        if self.landlock {
            layers.push("landlock");
        }
        if self.webkit {
            layers.push("webkit");
        }
        layers
    }
}

/// What the caller knows about the browser's processes.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// The browser process (normally `std::process::id()`).
    pub browser_pid: u32,
    /// Each live tab with its renderer's pid.
    pub renderers: &'a [(TabId, u32)],
    /// Each live tab with the pid of its nested display's process the browser started
    /// (bubblewrap, or `Xephyr` without namespaces): a child of the browser beside the renderer.
    pub displays: &'a [(TabId, u32)],
    /// Tabs whose renderer reported its Landlock scoping in force.
    pub landlocked: &'a [TabId],
    /// Prewarmed renderers with no tab yet.
    pub spares: &'a [u32],
    /// Whether to read PSS (`smaps_rollup`): costly, so only when shown or asked for.
    pub pss: bool,
}

/// One process of the browser's tree.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessRow {
    pub pid: u32,
    pub parent_pid: u32,
    pub kind: Kind,
    /// The tab whose renderer this process is or descends from.
    pub tab_id: Option<TabId>,
    /// The executable's file name (see the module documentation).
    pub name: String,
    /// Depth in the tree: 0 for the browser, 1 for its children.
    pub depth: usize,
    /// Private footprint, RssAnon + VmSwap, in KiB; `None` when `status` is unreadable.
    pub memory_kb: Option<u64>,
    /// Proportional set size in KiB; `None` unless asked for, or when unreadable.
    pub pss_kb: Option<u64>,
    /// Percentage of one core (see the module documentation).
    pub cpu_percent: f64,
    pub threads: u32,
    /// Open file descriptors; `None` when unreadable.
    pub fds: Option<u32>,
    /// Time since the process started.
    pub uptime: Duration,
    /// The layers seen; all false when `status` is unreadable.
    pub sandbox: Sandbox,
    /// `sandbox.is_complete()`.
    pub sandboxed: bool,
}

/// Sums over a set of processes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub processes: usize,
    /// Sum of the known private footprints, in KiB.
    pub memory_kb: u64,
    /// Sum of the known PSS values; `None` when PSS was not asked for.
    pub pss_kb: Option<u64>,
    pub cpu_percent: f64,
    pub threads: u64,
    /// Sum of the known descriptor counts.
    pub fds: u64,
}

impl Totals {
    fn empty(pss: bool) -> Self {
        Self {
            pss_kb: pss.then_some(0),
            ..Self::default()
        }
    }

    fn add(&mut self, row: &ProcessRow) {
        self.processes += 1;
        self.memory_kb += row.memory_kb.unwrap_or(0);
        if let (Some(sum), Some(pss)) = (self.pss_kb.as_mut(), row.pss_kb) {
            *sum += pss;
        }
        self.cpu_percent += row.cpu_percent;
        self.threads += u64::from(row.threads);
        self.fds += u64::from(row.fds.unwrap_or(0));
    }
}

/// One tab's whole process tree, summed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TabTotals {
    pub tab_id: TabId,
    pub renderer_pid: u32,
    /// The renderer's uptime.
    pub uptime: Duration,
    pub sum: Totals,
}

/// The result of one refresh.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// In tree order: the browser, then each tab's renderer followed by its descendants and then
    /// by its display's tree (tabs by id), then spares, then other children of the browser;
    /// children by pid.
    pub processes: Vec<ProcessRow>,
    /// One entry per tab whose renderer was found, by tab id.
    pub tabs: Vec<TabTotals>,
    /// Every row summed.
    pub total: Totals,
    /// Time since the previous refresh; `None` on the first one.
    pub interval: Option<Duration>,
    /// Whether PSS was read.
    pub pss: bool,
    /// Rows whose PSS was not read because the refresh's deadline had passed.
    pub pss_skipped: usize,
    /// What the refresh read.
    pub scan: ScanStats,
}

/// How much of `/proc` one refresh read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Processes listed in `/proc`.
    pub listed: usize,
    /// `stat` files read (the others were known to be outside the browser's tree).
    pub stat_reads: usize,
}

impl Snapshot {
    /// The totals of one tab, if its renderer was found.
    pub fn tab(&self, tab_id: TabId) -> Option<&TabTotals> {
        self.tabs.iter().find(|t| t.tab_id == tab_id)
    }

    /// The rows of one tab, in tree order.
    pub fn tab_rows(&self, tab_id: TabId) -> impl Iterator<Item = &ProcessRow> {
        self.processes
            .iter()
            .filter(move |r| r.tab_id == Some(tab_id))
    }

    /// The row of a pid.
    pub fn process(&self, pid: u32) -> Option<&ProcessRow> {
        self.processes.iter().find(|r| r.pid == pid)
    }

    /// The control protocol's `task_manager` result: one [`ProcessInfo`] per row, in tree order,
    /// CPU and uptime rounded to one decimal. `title_of` gives a tab's title; the browser row is
    /// titled "Browser", spare rows "Spare renderer", other rows by their process name.
    pub fn to_task_manager(&self, title_of: impl Fn(TabId) -> Option<String>) -> TaskManagerResult {
        let processes = self
            .processes
            .iter()
            .map(|row| {
                let title = match (row.kind, row.tab_id) {
                    (Kind::Browser, _) => "Browser".to_owned(),
                    (_, Some(tab)) => title_of(tab).unwrap_or_else(|| format!("Tab {tab}")),
                    (Kind::Spare, None) => "Spare renderer".to_owned(),
                    (_, None) => row.name.clone(),
                };
                ProcessInfo {
                    pid: row.pid,
                    parent_pid: row.parent_pid,
                    kind: row.kind,
                    tab_id: row.tab_id,
                    title,
                    memory_kb: row.memory_kb,
                    pss_kb: row.pss_kb,
                    cpu_percent: (row.cpu_percent * 10.0).round() / 10.0,
                    sandboxed: row.sandboxed,
                    sandbox: row
                        .sandbox
                        .layers()
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    name: row.name.clone(),
                    threads: row.threads,
                    fds: row.fds,
                    uptime_s: (row.uptime.as_secs_f64() * 10.0).round() / 10.0,
                }
            })
            .collect();
        TaskManagerResult { processes }
    }
}

/// Measures the browser's process tree; keeps the previous sample of each process to compute CPU
/// use. Create one and call [`Monitor::refresh`] periodically.
pub struct Monitor {
    proc: ProcDir,
    ticks_per_second: u64,
    /// Whether `stat` of `/proc/PID/fd` gives the descriptor count (procfs on Linux 6.2+).
    fd_count_by_size: bool,
    scratch: Scratch,
    /// Per pid: the sample of the previous refresh.
    previous: HashMap<u32, CpuSample>,
    next_previous: HashMap<u32, CpuSample>,
    names: HashMap<u32, NameEntry>,
    next_names: HashMap<u32, NameEntry>,
    /// Per pid: the inode of its `/proc` entry, for processes outside the tree at the last
    /// refresh.
    foreign: HashMap<u32, u64>,
    next_foreign: HashMap<u32, u64>,
    refreshes: u64,
    last_refresh: Option<Duration>,
}

/// Buffers reused from one refresh to the next.
#[derive(Default)]
struct Scratch {
    entries: Vec<Entry>,
    by_parent: Vec<(u32, u32, usize)>,
    visited: Vec<bool>,
    tree: Vec<Node>,
    stack: Vec<(usize, Option<usize>, usize)>,
    file: FileBuf,
    path: String,
}

/// The CPU counters of a process at a refresh: the baseline of the next interval.
#[derive(Clone, Copy)]
struct CpuSample {
    start_ticks: u64,
    cpu_ticks: u64,
    at: Duration,
    /// The value computed over the interval that ended with this sample, if there was one.
    percent: Option<f64>,
}

/// What is cached of a process across refreshes, valid while its start time and `comm` stay
/// the same (a new `comm` means an `exec`).
struct NameEntry {
    start_ticks: u64,
    comm: Comm,
    name: String,
    /// Its PID and network namespaces, and the refresh they were read in (see
    /// [`NAMESPACES_EVERY`]).
    namespaces: (Option<u64>, Option<u64>),
    namespaces_read: u64,
}

impl Monitor {
    /// A monitor of the real `/proc`.
    pub fn new() -> Result<Self, ProcsError> {
        Self::with_root("/proc", ticks_per_second())
    }

    /// A monitor of a `/proc`-like tree at `root` (tests build one in a temporary directory),
    /// whose `stat` times count `ticks_per_second`.
    pub fn with_root(root: impl Into<PathBuf>, ticks_per_second: u64) -> Result<Self, ProcsError> {
        let proc = ProcDir::open(root.into())?;
        let fd_count_by_size = proc.is_procfs()
            && fstatat(proc.fd.as_fd(), "self/fd", AtFlags::empty()).is_ok_and(|st| st.st_size > 0);
        Ok(Self {
            proc,
            ticks_per_second: ticks_per_second.max(1),
            fd_count_by_size,
            scratch: Scratch::default(),
            previous: HashMap::new(),
            next_previous: HashMap::new(),
            names: HashMap::new(),
            next_names: HashMap::new(),
            foreign: HashMap::new(),
            next_foreign: HashMap::new(),
            refreshes: 0,
            last_refresh: None,
        })
    }

    /// Measures now (the clock is `CLOCK_BOOTTIME`, the clock of process start times).
    pub fn refresh(&mut self, query: &Query<'_>) -> Result<Snapshot, ProcsError> {
        self.refresh_at(query, boot_time())
    }

    /// Measures now, reading PSS only until `deadline`: the processes reached later get no PSS
    /// (counted in [`Snapshot::pss_skipped`]), so one refresh never takes much longer than that,
    /// however many large processes there are. Everything else is read for every process.
    pub fn refresh_until(
        &mut self,
        query: &Query<'_>,
        deadline: Instant,
    ) -> Result<Snapshot, ProcsError> {
        let mut s = std::mem::take(&mut self.scratch);
        let result = self.refresh_with(&mut s, query, boot_time(), Some(deadline));
        self.scratch = s;
        result
    }

    /// Measures with `now` given as the time since boot (tests pass a fake clock). `now` should
    /// not go backwards between calls; if it does, CPU use reads 0 for that interval.
    pub fn refresh_at(&mut self, query: &Query<'_>, now: Duration) -> Result<Snapshot, ProcsError> {
        let mut s = std::mem::take(&mut self.scratch);
        let result = self.refresh_with(&mut s, query, now, None);
        self.scratch = s;
        result
    }

    fn refresh_with(
        &mut self,
        s: &mut Scratch,
        query: &Query<'_>,
        now: Duration,
        deadline: Option<Instant>,
    ) -> Result<Snapshot, ProcsError> {
        if self.refreshes.is_multiple_of(FULL_SCAN_EVERY) {
            self.foreign.clear();
        }
        self.refreshes += 1;
        let (foreign, next_foreign) = (&mut self.foreign, &mut self.next_foreign);
        next_foreign.clear();
        let scanned = self
            .proc
            .scan(&mut s.entries, &mut s.file, &mut s.path, &mut |pid, ino| {
                let known = foreign.get(&pid) == Some(&ino);
                if known {
                    next_foreign.insert(pid, ino);
                }
                known
            });
        let root = scanned.and_then(|stats| {
            let root = s.entries.iter().position(|e| e.pid == query.browser_pid);
            root.map(|root| (root, stats))
                .ok_or_else(|| ProcsError::NoBrowser {
                    pid: query.browser_pid,
                    path: self.proc.path.clone(),
                })
        });
        let (root, scan) = match root {
            Ok(found) => found,
            Err(e) => {
                self.foreign.clear();
                return Err(e);
            }
        };
        build_tree(s, root);
        for (entry, _) in s.entries.iter().zip(&s.visited).filter(|(_, v)| !**v) {
            self.next_foreign.insert(entry.pid, entry.ino);
        }
        std::mem::swap(&mut self.foreign, &mut self.next_foreign);

        // Who each tree node is, from the scan alone: contexts flow from parent to child, and the
        // tree is in preorder, so a node's parent was decided before it.
        let mut contexts: Vec<Context> = Vec::with_capacity(s.tree.len());
        let mut rows: Vec<(Context, ProcessRow)> = Vec::with_capacity(s.tree.len());
        // Each row's (PID namespace, network namespace) inodes, in `rows` order.
        let mut namespaces: Vec<(Option<u64>, Option<u64>)> = Vec::with_capacity(s.tree.len());
        let tps = self.ticks_per_second;
        let mut pss_skipped = 0;
        let holders = tab_holders(s, query.renderers, &[]);
        // A display counts for a tab whose renderer was found, never in the renderer's tree.
        let displays: Vec<(TabId, u32)> = query
            .displays
            .iter()
            .copied()
            .filter(|(tab, _)| holders.iter().any(|(_, t)| t == tab))
            .collect();
        let display_holders = tab_holders(s, &displays, &holders);
        for i in 0..s.tree.len() {
            let node = s.tree[i];
            let entry = s.entries[node.entry];
            let context = match node.parent.map(|p| contexts[p]) {
                None => Context::Browser,
                Some(Context::Browser) => {
                    if let Some(&(_, tab)) = holders.iter().find(|(holder, _)| *holder == i) {
                        Context::Tab(tab)
                    } else if let Some(&(_, tab)) =
                        display_holders.iter().find(|(holder, _)| *holder == i)
                    {
                        Context::Display(tab)
                    } else if query.spares.contains(&entry.pid) {
                        Context::Spare
                    } else {
                        Context::Orphan
                    }
                }
                Some(inherited) => inherited,
            };
            contexts.push(context);
            let late = query.pss && deadline.is_some_and(|d| Instant::now() >= d);
            let Some(measured) = self.measure(s, &entry, query.pss && !late) else {
                continue;
            };
            pss_skipped += usize::from(late);
            let parent_is_browser = node.parent == Some(0);
            let is_renderer = |tab: TabId| query.renderers.contains(&(tab, entry.pid));
            let kind = match context {
                Context::Browser => Kind::Browser,
                Context::Tab(tab) if is_renderer(tab) => Kind::Renderer,
                Context::Spare if parent_is_browser => Kind::Spare,
                Context::Tab(_) | Context::Spare => match measured.name.as_str() {
                    WEB_PROCESS_NAME => Kind::Web,
                    NETWORK_PROCESS_NAME => Kind::Network,
                    _ => Kind::Other,
                },
                Context::Display(_) if measured.name == DISPLAY_SERVER_NAME => Kind::Display,
                Context::Display(_) | Context::Orphan => Kind::Other,
            };
            let sandbox = Sandbox {
                scope: match context {
                    Context::Display(_) => Scope::Display,
                    _ => Scope::Content,
                },
                ..measured.sandbox
            };
            let start = Duration::from_secs_f64(entry.start_ticks as f64 / tps as f64);
            let (cpu_percent, sample) = self.cpu_percent(&entry, now);
            self.next_previous.insert(entry.pid, sample);
            namespaces.push((measured.pid_ns, measured.net_ns));
            rows.push((
                context,
                ProcessRow {
                    pid: entry.pid,
                    parent_pid: entry.ppid,
                    kind,
                    tab_id: match context {
                        Context::Tab(tab) | Context::Display(tab) => Some(tab),
                        _ => None,
                    },
                    name: measured.name,
                    depth: node.depth,
                    memory_kb: measured.memory_kb,
                    pss_kb: measured.pss_kb,
                    cpu_percent,
                    threads: entry.threads,
                    fds: measured.fds,
                    uptime: now.saturating_sub(start),
                    sandbox,
                    sandboxed: sandbox.is_complete(),
                },
            ));
        }
        mark_layers(&mut rows, &namespaces, query.landlocked);
        std::mem::swap(&mut self.previous, &mut self.next_previous);
        self.next_previous.clear();
        std::mem::swap(&mut self.names, &mut self.next_names);
        self.next_names.clear();

        // Group: the browser, tabs by id (each the renderer's tree, then the display's), spares,
        // others; the sort is stable, so each group keeps tree order.
        rows.sort_by_key(|(context, _)| match context {
            Context::Browser => (0, 0, 0),
            Context::Tab(tab) => (1, tab.0, 0),
            Context::Display(tab) => (1, tab.0, 1),
            Context::Spare => (2, 0, 0),
            Context::Orphan => (3, 0, 0),
        });
        let processes: Vec<ProcessRow> = rows.into_iter().map(|(_, row)| row).collect();

        // Rows are grouped by tab, so a tab's totals are the last entry while its rows pass.
        let mut tabs: Vec<TabTotals> = Vec::new();
        let mut total = Totals::empty(query.pss);
        for row in &processes {
            total.add(row);
            let Some(tab_id) = row.tab_id else { continue };
            if tabs.last().is_none_or(|t| t.tab_id != tab_id) {
                let renderer_pid = query
                    .renderers
                    .iter()
                    .find(|(t, _)| *t == tab_id)
                    .map_or(row.pid, |(_, pid)| *pid);
                tabs.push(TabTotals {
                    tab_id,
                    renderer_pid,
                    uptime: Duration::ZERO,
                    sum: Totals::empty(query.pss),
                });
            }
            if let Some(t) = tabs.last_mut() {
                if row.kind == Kind::Renderer {
                    t.uptime = row.uptime;
                }
                t.sum.add(row);
            }
        }

        let interval = self.last_refresh.map(|last| now.saturating_sub(last));
        self.last_refresh = Some(now);
        Ok(Snapshot {
            processes,
            tabs,
            total,
            interval,
            pss: query.pss,
            pss_skipped,
            scan,
        })
    }

    /// The CPU use of a process and the sample to keep as its next baseline.
    fn cpu_percent(&self, entry: &Entry, now: Duration) -> (f64, CpuSample) {
        let tps = self.ticks_per_second as f64;
        let sample = CpuSample {
            start_ticks: entry.start_ticks,
            cpu_ticks: entry.cpu_ticks,
            at: now,
            percent: None,
        };
        // The average since the start, for a process without a full interval yet.
        let lifetime = || {
            let start = Duration::from_secs_f64(entry.start_ticks as f64 / tps);
            percent(entry.cpu_ticks, now.saturating_sub(start), tps)
        };
        match self.previous.get(&entry.pid) {
            // Same process (a reused pid has another start time).
            Some(base) if base.start_ticks == entry.start_ticks => {
                let wall = now.saturating_sub(base.at);
                if wall >= MIN_CPU_INTERVAL {
                    let used = entry.cpu_ticks.saturating_sub(base.cpu_ticks);
                    let value = percent(used, wall, tps);
                    (
                        value,
                        CpuSample {
                            percent: Some(value),
                            ..sample
                        },
                    )
                } else {
                    // Too short to measure in clock ticks: repeat the last value and keep the
                    // baseline.
                    (base.percent.unwrap_or_else(lifetime), *base)
                }
            }
            _ => (lifetime(), sample),
        }
    }

    /// Reads one tree member's files; `None` when it has gone.
    fn measure(&mut self, s: &mut Scratch, entry: &Entry, pss: bool) -> Option<Measured> {
        let proc = self.proc.fd.as_fd();
        let pid = entry.pid;
        let path = &mut s.path;

        let status = match read_at(proc, pid_file(path, pid, "status"), &mut s.file) {
            Ok(()) => parse_status(s.file.bytes()),
            Err(e) if gone(&e) => return None,
            Err(_) => Status::default(),
        };
        let pss_kb = if pss {
            match read_at(proc, pid_file(path, pid, "smaps_rollup"), &mut s.file) {
                Ok(()) => parse_kb_field(s.file.bytes(), b"Pss:"),
                Err(e) if gone(&e) => return None,
                Err(_) => None,
            }
        } else {
            None
        };
        let fds = if self.fd_count_by_size {
            fstatat(proc, pid_file(path, pid, "fd"), AtFlags::empty())
                .ok()
                .and_then(|st| u32::try_from(st.st_size).ok())
        } else {
            count_entries(&self.proc.path.join(pid_file(path, pid, "fd")))
        };
        let cached = self
            .names
            .remove(&entry.pid)
            .filter(|c| c.start_ticks == entry.start_ticks && c.comm == entry.comm);
        let refresh = self.refreshes;
        let (name, namespaces, namespaces_read) = match cached {
            Some(c) if refresh.saturating_sub(c.namespaces_read) < NAMESPACES_EVERY => {
                (c.name, c.namespaces, c.namespaces_read)
            }
            cached => {
                let name = match cached {
                    Some(c) => c.name,
                    None => resolve_name(proc, pid, &entry.comm, &mut s.file, path),
                };
                let namespaces = (
                    namespace(proc, pid, "pid", path),
                    namespace(proc, pid, "net", path),
                );
                (name, namespaces, refresh)
            }
        };
        self.next_names.insert(
            entry.pid,
            NameEntry {
                start_ticks: entry.start_ticks,
                comm: entry.comm,
                name: name.clone(),
                namespaces,
                namespaces_read,
            },
        );
        Some(Measured {
            name,
            memory_kb: status
                .rss_anon_kb
                .map(|anon| anon + status.swap_kb.unwrap_or(0)),
            pss_kb,
            fds,
            sandbox: Sandbox {
                no_new_privs: status.no_new_privs,
                seccomp_filter: status.seccomp_mode == Some(2),
                ..Sandbox::default()
            },
            pid_ns: namespaces.0,
            net_ns: namespaces.1,
        })
    }
}

/// For each listed process found in the tree (a tab's renderer or display), the index (in
/// `s.tree`) of the browser's child it descends from, and its tab; a child claimed twice stays
/// with the first (see the module docs), and one in `taken` is never claimed.
fn tab_holders(
    s: &Scratch,
    renderers: &[(TabId, u32)],
    taken: &[(usize, TabId)],
) -> Vec<(usize, TabId)> {
    if renderers.is_empty() {
        return Vec::new();
    }
    let by_pid: HashMap<u32, usize> = s
        .tree
        .iter()
        .enumerate()
        .map(|(i, node)| (s.entries[node.entry].pid, i))
        .collect();
    let mut holders: Vec<(usize, TabId)> = Vec::new();
    for &(tab, pid) in renderers {
        let Some(&found) = by_pid.get(&pid) else {
            continue;
        };
        // Up the tree (which has no cycles) to the browser's child.
        let mut at = found;
        let holder = loop {
            match s.tree[at].parent {
                Some(0) => break Some(at),
                Some(parent) => at = parent,
                None => break None,
            }
        };
        let claimed = |h: &usize| holders.iter().chain(taken).any(|(other, _)| other == h);
        if let Some(holder) = holder.filter(|h| !claimed(h)) {
            holders.push((holder, tab));
        }
    }
    holders
}

/// Where a tree node's process belongs, decided by its ancestors.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Context {
    Browser,
    /// The tree the tab's renderer is in.
    Tab(TabId),
    /// The tree of the tab's nested display.
    Display(TabId),
    Spare,
    Orphan,
}

struct Measured {
    name: String,
    memory_kb: Option<u64>,
    pss_kb: Option<u64>,
    fds: Option<u32>,
    sandbox: Sandbox,
    /// The inodes of the process's PID and network namespaces, when readable.
    pid_ns: Option<u64>,
    net_ns: Option<u64>,
}

/// Every live descendant of `root` in the real `/proc`, parents before their children, with the
/// same pid-reuse checks as the [`Monitor`]. Empty when `root` does not exist.
pub fn descendants(root: u32) -> Vec<u32> {
    let Ok(proc) = ProcDir::open(PathBuf::from("/proc")) else {
        return Vec::new();
    };
    let mut s = Scratch::default();
    if proc
        .scan(&mut s.entries, &mut s.file, &mut s.path, &mut |_, _| false)
        .is_err()
    {
        return Vec::new();
    }
    let Some(root) = s.entries.iter().position(|e| e.pid == root) else {
        return Vec::new();
    };
    build_tree(&mut s, root);
    s.tree
        .iter()
        .skip(1)
        .map(|node| s.entries[node.entry].pid)
        .collect()
}

/// The private footprint (RssAnon + VmSwap, in KiB) of `root` and every live descendant in the
/// real `/proc`: what ending that tree frees. `None` when `root` is gone.
pub fn tree_footprint_kb(root: u32) -> Option<u64> {
    let footprint = |pid: u32| {
        let text = std::fs::read(format!("/proc/{pid}/status")).ok()?;
        let status = parse_status(&text);
        Some(status.rss_anon_kb? + status.swap_kb.unwrap_or(0))
    };
    let mut total = footprint(root)?;
    for pid in descendants(root) {
        total += footprint(pid).unwrap_or(0);
    }
    Some(total)
}

/// An open `/proc`-like directory.
struct ProcDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl ProcDir {
    fn open(path: PathBuf) -> Result<Self, ProcsError> {
        let fd = openat(
            nix::fcntl::AT_FDCWD,
            path.as_path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ProcsError::List {
            path: path.clone(),
            source: e.into(),
        })?;
        Ok(Self { path, fd })
    }

    fn is_procfs(&self) -> bool {
        nix::sys::statfs::fstatfs(&self.fd)
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
    }

    /// Lists the processes once and reads the `stat` of each one that `skip(pid, inode)` does
    /// not rule out; leaves out zombies and processes that vanish or can't be read.
    fn scan(
        &self,
        entries: &mut Vec<Entry>,
        file: &mut FileBuf,
        path: &mut String,
        skip: &mut dyn FnMut(u32, u64) -> bool,
    ) -> Result<ScanStats, ProcsError> {
        entries.clear();
        let mut stats = ScanStats::default();
        let list = std::fs::read_dir(&self.path).map_err(|e| ProcsError::List {
            path: self.path.clone(),
            source: e,
        })?;
        for dirent in list.flatten() {
            let Some(pid) = parse_pid(dirent.file_name().as_bytes()) else {
                continue;
            };
            stats.listed += 1;
            let ino = dirent.ino();
            if skip(pid, ino) {
                continue;
            }
            stats.stat_reads += 1;
            if read_at(self.fd.as_fd(), pid_file(path, pid, "stat"), file).is_err() {
                continue;
            }
            let Some(stat) = parse_stat(file.bytes()) else {
                continue;
            };
            if is_dead(stat.state) {
                continue;
            }
            entries.push(Entry {
                pid,
                ino,
                ppid: stat.ppid,
                start_ticks: stat.start_ticks,
                cpu_ticks: stat.cpu_ticks,
                threads: stat.threads,
                comm: stat.comm,
            });
        }
        Ok(stats)
    }
}

/// One live process as the listing saw it.
#[derive(Clone, Copy)]
struct Entry {
    pid: u32,
    /// The inode of the `/proc/PID` entry: new for every process, even under a reused pid.
    ino: u64,
    ppid: u32,
    start_ticks: u64,
    /// User + system time of all its threads, in clock ticks.
    cpu_ticks: u64,
    threads: u32,
    comm: Comm,
}

/// A node of the browser's tree, in preorder; `parent` indexes the tree.
#[derive(Clone, Copy)]
struct Node {
    entry: usize,
    parent: Option<usize>,
    depth: usize,
}

/// Fills `s.tree` with the tree under `s.entries[root]` in preorder, children by pid. A child
/// counts only if its parent started no later than it did (otherwise the parent pid was reused).
fn build_tree(s: &mut Scratch, root: usize) {
    let entries = &s.entries;
    s.by_parent.clear();
    s.by_parent
        .extend(entries.iter().enumerate().map(|(i, e)| (e.ppid, e.pid, i)));
    s.by_parent.sort_unstable();
    s.visited.clear();
    s.visited.resize(entries.len(), false);
    s.tree.clear();
    s.stack.clear();
    s.stack.push((root, None, 0));
    while let Some((index, parent, depth)) = s.stack.pop() {
        if std::mem::replace(&mut s.visited[index], true) {
            continue;
        }
        let me = s.tree.len();
        s.tree.push(Node {
            entry: index,
            parent,
            depth,
        });
        let this = entries[index];
        let first = s.by_parent.partition_point(|&(ppid, _, _)| ppid < this.pid);
        let end = s
            .by_parent
            .partition_point(|&(ppid, _, _)| ppid <= this.pid);
        // Pushed in reverse so that the smallest pid is walked first.
        for &(_, _, child) in s.by_parent[first..end].iter().rev() {
            let c = &entries[child];
            if c.pid != this.pid && c.start_ticks >= this.start_ticks && !s.visited[child] {
                s.stack.push((child, Some(me), depth + 1));
            }
        }
    }
}

/// `comm` as `stat` shows it (at most 15 bytes from the kernel; longer fake names are cut).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Comm {
    bytes: [u8; 32],
    len: u8,
}

impl Comm {
    fn new(raw: &[u8]) -> Self {
        let mut bytes = [0u8; 32];
        let len = raw.len().min(bytes.len());
        bytes[..len].copy_from_slice(&raw[..len]);
        Self {
            bytes,
            len: len as u8,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The fields of `/proc/PID/stat` this module uses.
struct Stat {
    comm: Comm,
    state: u8,
    ppid: u32,
    cpu_ticks: u64,
    threads: u32,
    start_ticks: u64,
}

/// Parses `/proc/PID/stat`. The name (field 2) is in parentheses and may itself hold spaces and
/// parentheses, so it ends at the *last* `)`.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let mut fields = text[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    // Field 3 onwards: state, ppid, then pgrp .. cmajflt (fields 5-13), utime (14), stime (15),
    // cutime, cstime, priority, nice (16-19), num_threads (20), itrealvalue (21), starttime (22).
    let state = *fields.next()?.first()?;
    let ppid = parse_u64(fields.next()?)?;
    let mut fields = fields.skip(9);
    let utime = parse_u64(fields.next()?)?;
    let stime = parse_u64(fields.next()?)?;
    let mut fields = fields.skip(4);
    let threads = parse_u64(fields.next()?)?;
    let start_ticks = parse_u64(fields.nth(1)?)?;
    Some(Stat {
        comm: Comm::new(&text[open + 1..close]),
        state,
        ppid: u32::try_from(ppid).ok()?,
        cpu_ticks: utime.saturating_add(stime),
        threads: u32::try_from(threads).unwrap_or(u32::MAX),
        start_ticks,
    })
}

fn is_dead(state: u8) -> bool {
    matches!(state, b'Z' | b'X' | b'x')
}

/// The fields of `/proc/PID/status` this module uses.
#[derive(Default)]
struct Status {
    rss_anon_kb: Option<u64>,
    swap_kb: Option<u64>,
    no_new_privs: bool,
    seccomp_mode: Option<u64>,
}

fn parse_status(text: &[u8]) -> Status {
    let mut status = Status::default();
    for line in text.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"RssAnon:") {
            status.rss_anon_kb = leading_number(rest);
        } else if let Some(rest) = line.strip_prefix(b"VmSwap:") {
            status.swap_kb = leading_number(rest);
        } else if let Some(rest) = line.strip_prefix(b"NoNewPrivs:") {
            status.no_new_privs = leading_number(rest) == Some(1);
        } else if let Some(rest) = line.strip_prefix(b"Seccomp:") {
            status.seccomp_mode = leading_number(rest);
            // The kernel prints Seccomp after the other fields used here.
            break;
        }
    }
    status
}

/// The number after `key` on the line that starts with it (`Pss:    123 kB`).
fn parse_kb_field(text: &[u8], key: &[u8]) -> Option<u64> {
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(key))
        .and_then(leading_number)
}

/// The first run of digits after leading blanks.
fn leading_number(text: &[u8]) -> Option<u64> {
    let start = text.iter().position(|b| !matches!(b, b' ' | b'\t'))?;
    let digits = text[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    parse_u64(&text[start..start + digits])
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_pid(name: &[u8]) -> Option<u32> {
    u32::try_from(parse_u64(name)?).ok().filter(|&pid| pid > 0)
}

/// The executable's file name from the `exe` link, else argv\[0\] from `cmdline`, else `comm`.
fn resolve_name(
    proc: BorrowedFd<'_>,
    pid: u32,
    comm: &Comm,
    file: &mut FileBuf,
    path: &mut String,
) -> String {
    if let Ok(target) = readlinkat(proc, pid_file(path, pid, "exe")) {
        // A replaced binary shows as "/path/name (deleted)".
        let target = target.as_bytes();
        let target = target.strip_suffix(b" (deleted)").unwrap_or(target);
        if let Some(name) = base_name(target) {
            return name;
        }
    }
    if read_at(proc, pid_file(path, pid, "cmdline"), file).is_ok() {
        let argv0 = file.bytes().split(|&b| b == 0).next().unwrap_or_default();
        if let Some(name) = base_name(argv0) {
            return name;
        }
    }
    String::from_utf8_lossy(comm.as_bytes()).into_owned()
}

fn base_name(path: &[u8]) -> Option<String> {
    let name = path.rsplit(|&b| b == b'/').next()?;
    (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
}

/// `PID/name` in `path`, relative to the `/proc` directory.
fn pid_file<'a>(path: &'a mut String, pid: u32, name: &str) -> &'a str {
    path.clear();
    let _ = write!(path, "{pid}/{name}");
    path.as_str()
}

/// Counts a directory's entries (the fallback for descriptor counts).
fn count_entries(path: &Path) -> Option<u32> {
    let count = std::fs::read_dir(path).ok()?.flatten().count();
    u32::try_from(count).ok()
}

/// The inode of a process's namespace of `kind` (`pid`, `net`): `/proc/PID/ns/KIND` reads
/// `pid:[4026531836]`.
fn namespace(proc: BorrowedFd<'_>, pid: u32, kind: &str, path: &mut String) -> Option<u64> {
    let link = nix::fcntl::readlinkat(proc, pid_file(path, pid, &format!("ns/{kind}"))).ok()?;
    let text = link.to_str()?;
    text.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Fills in the layers only a whole tree shows: namespaces (a PID namespace other than the
/// browser's, whose row comes first), Landlock (reported per tab, held by the renderer and what
/// WebKit started under it) and WebKit's sandbox (every web process of the tab in a network
/// namespace other than the browser's). Neither of the last two is marked on a display's rows,
/// which are outside their [`Scope`].
fn mark_layers(
    rows: &mut [(Context, ProcessRow)],
    namespaces: &[(Option<u64>, Option<u64>)],
    landlocked: &[TabId],
) {
    let browser = rows
        .iter()
        .position(|(c, _)| matches!(c, Context::Browser))
        .map(|i| namespaces[i]);
    let (Some((Some(browser_pid_ns), browser_net_ns)), true) = (browser, !rows.is_empty()) else {
        return;
    };
    let mut webkit_tabs: HashMap<TabId, bool> = HashMap::new();
    for ((_, row), &(_, net)) in rows.iter().zip(namespaces) {
        if let (Some(tab), Kind::Web) = (row.tab_id, row.kind) {
            let own_net = net.is_some() && net != browser_net_ns;
            let entry = webkit_tabs.entry(tab).or_insert(true);
            *entry &= own_net;
        }
    }
    for ((_, row), &(pid_ns, _)) in rows.iter_mut().zip(namespaces) {
        row.sandbox.namespaces = pid_ns.is_some_and(|ns| ns != browser_pid_ns);
        let in_tab = matches!(row.kind, Kind::Renderer | Kind::Web | Kind::Network);
        if let (Some(tab), true) = (row.tab_id, in_tab) {
            row.sandbox.landlock = landlocked.contains(&tab);
            row.sandbox.webkit = webkit_tabs.get(&tab).copied().unwrap_or(false);
        }
        row.sandboxed = row.sandbox.is_complete();
    }
}

/// Whether a read failed because the process is gone.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::ENOENT | Errno::ESRCH)
    )
}

/// A reusable read buffer.
struct FileBuf {
    data: Vec<u8>,
    len: usize,
}

impl Default for FileBuf {
    fn default() -> Self {
        Self {
            data: vec![0; 4096],
            len: 0,
        }
    }
}

impl FileBuf {
    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// `ticks` of CPU time over `wall`, as a percentage of one core; 0 for an empty interval.
fn percent(ticks: u64, wall: Duration, ticks_per_second: f64) -> f64 {
    let wall = wall.as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    ticks as f64 / ticks_per_second / wall * 100.0
}

/// Reads a whole small file relative to `dir` into `buf`. `/proc` files are generated on each
/// read and a short read means the end, so a file that fits takes one `read`.
fn read_at(dir: BorrowedFd<'_>, path: &str, buf: &mut FileBuf) -> io::Result<()> {
    buf.len = 0;
    let fd = openat(
        dir,
        path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )?;
    let mut file = File::from(fd);
    loop {
        if buf.len == buf.data.len() {
            let bigger = buf.data.len() * 2;
            if bigger > MAX_FILE_LEN {
                return Err(io::Error::other("the file is too large"));
            }
            buf.data.resize(bigger, 0);
        }
        let room = buf.data.len() - buf.len;
        match file.read(&mut buf.data[buf.len..]) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                buf.len += n;
                if n < room {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Clock ticks per second of `stat`'s time fields.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// `CLOCK_BOOTTIME`: the clock `stat`'s start times count from.
fn boot_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given, which lives on this stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    const TPS: u64 = 100;

    /// One process of a fake `/proc` tree.
    #[derive(Clone)]
    pub(super) struct Fake {
        pid: u32,
        ppid: u32,
        comm: String,
        state: char,
        start_ticks: u64,
        utime: u64,
        stime: u64,
        threads: u32,
        rss_anon_kb: u64,
        swap_kb: u64,
        no_new_privs: bool,
        seccomp: u8,
        exe: Option<String>,
        cmdline: Option<String>,
        fds: u32,
        pss_kb: u64,
        /// The inodes of its PID and network namespaces (`ns/pid`, `ns/net`), when linked.
        pid_ns: Option<u64>,
        net_ns: Option<u64>,
    }

    pub(super) fn fake(pid: u32, ppid: u32, exe: &str) -> Fake {
        let name = exe.rsplit('/').next().unwrap();
        Fake {
            pid,
            ppid,
            comm: name.chars().take(15).collect(),
            state: 'S',
            start_ticks: 1000 + u64::from(pid),
            utime: 0,
            stime: 0,
            threads: 1,
            rss_anon_kb: u64::from(pid) * 10,
            swap_kb: 0,
            no_new_privs: false,
            seccomp: 0,
            exe: Some(exe.to_owned()),
            cmdline: Some(format!("{exe}\0--flag\0")),
            fds: 3,
            pss_kb: u64::from(pid) * 20,
            pid_ns: None,
            net_ns: None,
        }
    }

    /// A `/proc`-like tree in a temporary directory.
    pub(super) struct FakeProc {
        dir: tempfile::TempDir,
    }

    impl FakeProc {
        pub(super) fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn path(&self, pid: u32) -> PathBuf {
            self.dir.path().join(pid.to_string())
        }

        pub(super) fn add(&self, p: &Fake) {
            let dir = self.path(p.pid);
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("fd")).unwrap();
            fs::write(
                dir.join("stat"),
                format!(
                    "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194560 120 0 0 0 {ut} {st} 0 0 \
                     20 0 {threads} 0 {start} 20000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 \
                     17 1 0 0 0 0 0\n",
                    pid = p.pid,
                    comm = p.comm,
                    state = p.state,
                    ppid = p.ppid,
                    ut = p.utime,
                    st = p.stime,
                    threads = p.threads,
                    start = p.start_ticks,
                ),
            )
            .unwrap();
            fs::write(
                dir.join("status"),
                format!(
                    "Name:\t{comm}\nUmask:\t0022\nState:\t{state} (sleeping)\nPid:\t{pid}\nPPid:\t{ppid}\n\
                     VmRSS:\t   99999 kB\nRssAnon:\t{anon:>8} kB\nRssFile:\t    1584 kB\n\
                     VmSwap:\t{swap:>8} kB\nThreads:\t{threads}\nNoNewPrivs:\t{nnp}\nSeccomp:\t{sec}\n\
                     Seccomp_filters:\t1\nCpus_allowed_list:\t0-1\n",
                    comm = p.comm,
                    state = p.state,
                    pid = p.pid,
                    ppid = p.ppid,
                    anon = p.rss_anon_kb,
                    swap = p.swap_kb,
                    threads = p.threads,
                    nnp = u8::from(p.no_new_privs),
                    sec = p.seccomp,
                ),
            )
            .unwrap();
            fs::write(
                dir.join("smaps_rollup"),
                format!(
                    "55d0-7ffc ---p 00000000 00:00 0   [rollup]\nRss:  {rss} kB\nPss:  {pss} kB\n\
                     Pss_Anon:  1 kB\nPss_File:  2 kB\n",
                    rss = p.pss_kb * 2,
                    pss = p.pss_kb,
                ),
            )
            .unwrap();
            for fd in 0..p.fds {
                fs::write(dir.join("fd").join(fd.to_string()), "").unwrap();
            }
            if let Some(exe) = &p.exe {
                symlink(exe, dir.join("exe")).unwrap();
            }
            if let Some(cmdline) = &p.cmdline {
                fs::write(dir.join("cmdline"), cmdline).unwrap();
            }
            for (kind, ns) in [("pid", p.pid_ns), ("net", p.net_ns)] {
                if let Some(ns) = ns {
                    fs::create_dir_all(dir.join("ns")).unwrap();
                    symlink(format!("{kind}:[{ns}]"), dir.join("ns").join(kind)).unwrap();
                }
            }
        }

        pub(super) fn monitor(&self) -> Monitor {
            Monitor::with_root(self.dir.path(), TPS).unwrap()
        }
    }

    pub(super) const BROWSER: u32 = 100;

    /// The browser (100); tab 1's renderer 200 with its web (201) and network (202) processes;
    /// tab 2's renderer 300 with a web process 301 that has a child 302; a spare 400 with its web
    /// process 401; an orphaned web process 500 under the browser; unrelated processes 600, 601.
    pub(super) fn standard_tree(fp: &FakeProc) {
        let web = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitWebProcess";
        let net = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitNetworkProcess";
        fp.add(&fake(1, 0, "/sbin/init"));
        fp.add(&fake(BROWSER, 1, "/opt/warren/browser"));
        fp.add(&fake(200, BROWSER, "/opt/warren/renderer"));
        fp.add(&fake(201, 200, web));
        fp.add(&fake(202, 200, net));
        fp.add(&fake(300, BROWSER, "/opt/warren/renderer"));
        fp.add(&fake(301, 300, web));
        fp.add(&fake(302, 301, "/usr/bin/gst-plugin-scanner"));
        fp.add(&fake(400, BROWSER, "/opt/warren/renderer"));
        fp.add(&fake(401, 400, web));
        fp.add(&fake(500, BROWSER, web));
        fp.add(&fake(600, 1, "/usr/bin/bash"));
        fp.add(&fake(601, 600, web));
        // Not a process: ignored.
        fs::create_dir_all(fp.dir.path().join("sys")).unwrap();
        fs::write(fp.dir.path().join("uptime"), "1.0 1.0\n").unwrap();
    }

    pub(super) const RENDERERS: &[(TabId, u32)] = &[(TabId(1), 200), (TabId(2), 300)];

    fn query(pss: bool) -> Query<'static> {
        Query {
            browser_pid: BROWSER,
            renderers: RENDERERS,
            displays: &[],
            landlocked: &[],
            spares: &[400],
            pss,
        }
    }

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn summary(snap: &Snapshot) -> Vec<(u32, Kind, Option<u64>)> {
        snap.processes
            .iter()
            .map(|r| (r.pid, r.kind, r.tab_id.map(|t| t.0)))
            .collect()
    }

    #[test]
    fn attributes_by_ancestry() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let snap = fp.monitor().refresh_at(&query(false), at(100)).unwrap();
        assert_eq!(
            summary(&snap),
            vec![
                (100, Kind::Browser, None),
                (200, Kind::Renderer, Some(1)),
                (201, Kind::Web, Some(1)),
                (202, Kind::Network, Some(1)),
                (300, Kind::Renderer, Some(2)),
                (301, Kind::Web, Some(2)),
                (302, Kind::Other, Some(2)),
                (400, Kind::Spare, None),
                (401, Kind::Web, None),
                (500, Kind::Other, None),
            ]
        );
        let web = snap.process(201).unwrap();
        assert_eq!(web.name, "WebKitWebProcess");
        assert_eq!(web.parent_pid, 200);
        assert_eq!(web.depth, 2);
        assert_eq!(web.memory_kb, Some(2010));
        assert_eq!(web.pss_kb, None);
        assert_eq!(web.threads, 1);
        assert_eq!(web.fds, Some(3));
        // Started at tick 1201 = 12.01 s after boot.
        assert_eq!(web.uptime, at(100) - Duration::from_millis(12_010));
        assert_eq!(snap.process(302).unwrap().depth, 3);
        assert_eq!(snap.interval, None);

        let tab1 = snap.tab(TabId(1)).unwrap();
        assert_eq!(tab1.renderer_pid, 200);
        assert_eq!(tab1.sum.processes, 3);
        assert_eq!(tab1.sum.memory_kb, 2000 + 2010 + 2020);
        assert_eq!(tab1.sum.pss_kb, None);
        assert_eq!(tab1.sum.fds, 9);
        assert_eq!(snap.tab(TabId(2)).unwrap().sum.processes, 3);
        assert_eq!(snap.tabs.len(), 2);
        assert_eq!(snap.total.processes, 10);
        assert_eq!(snap.tab_rows(TabId(2)).count(), 3);
    }

    #[test]
    fn a_sandboxed_tab_holds_the_sandbox_it_runs_in() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        // Tab 3 runs in bubblewrap: browser → bwrap 700 → bwrap 701 (PID namespace init) →
        // renderer 702 → (WebKit's own sandbox) bwrap 703 → web 704, and network 705.
        let web = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitWebProcess";
        let net = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitNetworkProcess";
        fp.add(&fake(700, BROWSER, "/usr/bin/bwrap"));
        fp.add(&fake(701, 700, "/usr/bin/bwrap"));
        fp.add(&fake(702, 701, "/opt/warren/renderer"));
        fp.add(&fake(703, 702, "/usr/bin/bwrap"));
        fp.add(&fake(704, 703, web));
        fp.add(&fake(705, 702, net));
        // A pid listed for tab 4 that is some process inside tab 3's sandbox (a stale list):
        // tab 3, listed first, keeps its tree.
        let renderers = [(TabId(1), 200), (TabId(3), 702), (TabId(4), 703)];
        let q = Query {
            browser_pid: BROWSER,
            renderers: &renderers,
            displays: &[],
            landlocked: &[],
            spares: &[],
            pss: false,
        };
        let snap = fp.monitor().refresh_at(&q, at(100)).unwrap();
        let tab3: Vec<(u32, Kind, Option<u64>)> = summary(&snap)
            .into_iter()
            .filter(|(pid, _, _)| (700..=705).contains(pid))
            .collect();
        assert_eq!(
            tab3,
            vec![
                (700, Kind::Other, Some(3)),
                (701, Kind::Other, Some(3)),
                (702, Kind::Renderer, Some(3)),
                (703, Kind::Other, Some(3)),
                (704, Kind::Web, Some(3)),
                (705, Kind::Network, Some(3)),
            ]
        );
        let totals = snap.tab(TabId(3)).unwrap();
        assert_eq!(totals.renderer_pid, 702);
        assert_eq!(totals.sum.processes, 6);
        assert_eq!(
            totals.sum.memory_kb,
            (700..=705).map(|p| p * 10).sum::<u64>()
        );
        // The renderer's uptime is the tab's: started at tick 1702.
        assert_eq!(totals.uptime, at(100) - Duration::from_millis(17_020));
        assert!(snap.tab(TabId(4)).is_none());
        // Tabs are still in id order, each with its own renderer.
        let ids: Vec<u64> = snap.tabs.iter().map(|t| t.tab_id.0).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(snap.tab(TabId(1)).unwrap().sum.processes, 3);
    }

    /// Tab 3 as it runs with namespaces and a nested display: its renderer's sandbox (bwrap 700 →
    /// bwrap 701 → renderer 702 → bwrap 703 → web 704, network 705) and, started just before it,
    /// its display's (bwrap 690 → bwrap 691 → Xephyr 692 → xkbcomp 693, and 694, a process in
    /// there that happens to be named like WebKit's web process). The namespaced processes are
    /// in PID namespaces of their own and under seccomp; the web process also in a network
    /// namespace of its own. Tab 1's display (no namespaces) is Xephyr 210 alone.
    pub(super) fn tree_with_displays(fp: &FakeProc) {
        standard_tree(fp);
        let web = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitWebProcess";
        let net = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitNetworkProcess";
        let mut browser = fake(BROWSER, 1, "/opt/warren/browser");
        browser.pid_ns = Some(1);
        browser.net_ns = Some(2);
        fp.add(&browser);
        let add = |pid: u32, ppid: u32, exe: &str, pid_ns: u64, net_ns: u64| {
            let mut p = fake(pid, ppid, exe);
            p.no_new_privs = true;
            p.seccomp = 2;
            p.pid_ns = Some(pid_ns);
            p.net_ns = Some(net_ns);
            fp.add(&p);
        };
        add(690, BROWSER, "/usr/bin/bwrap", 1, 2);
        add(691, 690, "/usr/bin/bwrap", 20, 21);
        add(692, 691, "/usr/bin/Xephyr", 20, 21);
        add(693, 692, "/usr/bin/xkbcomp", 20, 21);
        add(694, 691, web, 20, 21);
        add(700, BROWSER, "/usr/bin/bwrap", 1, 2);
        add(701, 700, "/usr/bin/bwrap", 10, 2);
        add(702, 701, "/opt/warren/renderer", 10, 2);
        add(703, 702, "/usr/bin/bwrap", 10, 2);
        add(704, 703, web, 11, 12);
        add(705, 702, net, 10, 2);
        fp.add(&fake(210, BROWSER, "/usr/bin/Xephyr"));
    }

    #[test]
    fn a_tab_holds_its_nested_display() {
        let fp = FakeProc::new();
        tree_with_displays(&fp);
        // Tab 2's listed display is a process of its renderer's tree (a stale list): the tree
        // stays the renderer's. Tab 5 has a display but no renderer: a stray.
        fp.add(&fake(720, BROWSER, "/usr/bin/Xephyr"));
        let renderers = [(TabId(1), 200), (TabId(2), 300), (TabId(3), 702)];
        let displays = [
            (TabId(3), 690),
            (TabId(1), 210),
            (TabId(2), 302),
            (TabId(5), 720),
        ];
        let q = Query {
            browser_pid: BROWSER,
            renderers: &renderers,
            displays: &displays,
            landlocked: &[TabId(3)],
            spares: &[],
            pss: true,
        };
        let snap = fp.monitor().refresh_at(&q, at(100)).unwrap();
        let of_tab = |tab: u64| -> Vec<(u32, Kind)> {
            snap.tab_rows(TabId(tab)).map(|r| (r.pid, r.kind)).collect()
        };
        // The renderer's tree first, then the display's, though the display started first.
        assert_eq!(
            of_tab(3),
            vec![
                (700, Kind::Other),
                (701, Kind::Other),
                (702, Kind::Renderer),
                (703, Kind::Other),
                (704, Kind::Web),
                (705, Kind::Network),
                (690, Kind::Other),
                (691, Kind::Other),
                (692, Kind::Display),
                (693, Kind::Other),
                (694, Kind::Other),
            ]
        );
        assert_eq!(
            of_tab(1),
            vec![
                (200, Kind::Renderer),
                (201, Kind::Web),
                (202, Kind::Network),
                (210, Kind::Display),
            ]
        );
        assert_eq!(
            of_tab(2),
            vec![(300, Kind::Renderer), (301, Kind::Web), (302, Kind::Other)]
        );
        let stray = snap.process(720).unwrap();
        assert_eq!((stray.kind, stray.tab_id), (Kind::Other, None));
        assert!(snap.tab(TabId(5)).is_none());

        // The totals count the display; the renderer is still the renderer.
        let tab3 = snap.tab(TabId(3)).unwrap();
        assert_eq!(tab3.renderer_pid, 702);
        assert_eq!(tab3.uptime, at(100) - Duration::from_millis(17_020));
        assert_eq!(tab3.sum.processes, 11);
        let pids = (690..=694).chain(700..=705);
        assert_eq!(
            tab3.sum.memory_kb,
            pids.clone().map(|p| p * 10).sum::<u64>()
        );
        assert_eq!(tab3.sum.pss_kb, Some(pids.map(|p| p * 20).sum::<u64>()));
        let tab1 = snap.tab(TabId(1)).unwrap();
        assert_eq!((tab1.renderer_pid, tab1.sum.processes), (200, 4));
        assert_eq!(tab1.sum.memory_kb, 2000 + 2010 + 2020 + 2100);
        assert_eq!(snap.process(692).unwrap().name, "Xephyr");
        assert_eq!(snap.process(692).unwrap().depth, 3);

        // The protocol names the kind "display" and titles the rows with the tab.
        let result = snap.to_task_manager(|tab| (tab == TabId(3)).then(|| "Three".to_owned()));
        let json = serde_json::to_value(&result).unwrap();
        let row = json["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["pid"] == 692)
            .unwrap();
        assert_eq!(row["kind"], "display");
        assert_eq!(row["tab_id"], 3);
        assert_eq!(row["title"], "Three");
        assert_eq!(Kind::Display.as_str(), "display");
    }

    #[test]
    fn a_display_is_sandboxed_with_namespaces_and_seccomp() {
        let fp = FakeProc::new();
        tree_with_displays(&fp);
        let renderers = [(TabId(1), 200), (TabId(3), 702)];
        let displays = [(TabId(3), 690), (TabId(1), 210)];
        let q = Query {
            browser_pid: BROWSER,
            renderers: &renderers,
            displays: &displays,
            landlocked: &[TabId(1), TabId(3)],
            spares: &[],
            pss: false,
        };
        let snap = fp.monitor().refresh_at(&q, at(100)).unwrap();
        let row = |pid: u32| snap.process(pid).unwrap();

        // Xephyr in its own namespace under seccomp: every layer of its scope, none of the
        // renderer's, though the tab reported Landlock.
        let xephyr = row(692);
        assert_eq!(xephyr.sandbox.scope, Scope::Display);
        assert_eq!(xephyr.sandbox.layers(), ["namespaces", "seccomp"]);
        assert!(xephyr.sandbox.missing().is_empty());
        assert!(xephyr.sandboxed);
        // The bubblewrap that started it is outside the namespace: honestly not sandboxed.
        let outer = row(690);
        assert_eq!(outer.sandbox.scope, Scope::Display);
        assert_eq!(outer.sandbox.missing(), ["namespaces"]);
        assert!(!outer.sandboxed);
        // A WebKit-named process in the display's tree gets nothing of WebKit's layers.
        assert!(!row(694).sandbox.webkit && !row(694).sandbox.landlock);

        // The renderer's tree keeps its four layers and its scope.
        let renderer = row(702);
        assert_eq!(renderer.sandbox.scope, Scope::Content);
        assert_eq!(
            renderer.sandbox.layers(),
            ["namespaces", "seccomp", "landlock", "webkit"]
        );
        assert!(renderer.sandboxed);
        assert!(row(704).sandboxed && row(705).sandboxed);

        // Without namespaces or seccomp (tab 1): a display with no layer at all.
        let plain = row(210);
        assert_eq!(plain.sandbox.scope, Scope::Display);
        assert_eq!(plain.sandbox.missing(), ["namespaces", "seccomp"]);
        assert!(!plain.sandboxed);

        // The scope alone never makes a row complete.
        let display_scope = Sandbox {
            scope: Scope::Display,
            ..Sandbox::default()
        };
        assert!(!display_scope.is_complete());
        let seccomp_only = Sandbox {
            no_new_privs: true,
            seccomp_filter: true,
            ..display_scope
        };
        assert!(!seccomp_only.is_complete());
        assert!(Sandbox {
            namespaces: true,
            ..seccomp_only
        }
        .is_complete());
        assert!(!Sandbox {
            scope: Scope::Content,
            namespaces: true,
            ..seccomp_only
        }
        .is_complete());
    }

    #[test]
    fn pss_only_when_asked() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut monitor = fp.monitor();
        let snap = monitor.refresh_at(&query(true), at(100)).unwrap();
        assert_eq!(snap.process(202).unwrap().pss_kb, Some(4040));
        assert_eq!(
            snap.tab(TabId(1)).unwrap().sum.pss_kb,
            Some(4000 + 4020 + 4040)
        );
        assert!(snap.pss);
        let snap = monitor.refresh_at(&query(false), at(101)).unwrap();
        assert!(snap.processes.iter().all(|r| r.pss_kb.is_none()));
        assert_eq!(snap.total.pss_kb, None);
    }

    #[test]
    fn task_manager_rows_have_the_protocol_fields() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let snap = fp.monitor().refresh_at(&query(false), at(100)).unwrap();
        let result = snap.to_task_manager(|tab| (tab == TabId(1)).then(|| "Example".to_owned()));
        let rows = &result.processes;
        assert_eq!(rows.len(), 10);
        assert_eq!(
            rows.iter().map(|r| r.pid).collect::<Vec<_>>(),
            snap.processes.iter().map(|r| r.pid).collect::<Vec<_>>()
        );
        assert_eq!((rows[0].kind, rows[0].tab_id), (Kind::Browser, None));
        assert_eq!(rows[0].title, "Browser");
        assert_eq!(
            rows[2],
            ProcessInfo {
                pid: 201,
                parent_pid: 200,
                kind: Kind::Web,
                tab_id: Some(TabId(1)),
                title: "Example".to_owned(),
                memory_kb: Some(2010),
                pss_kb: None,
                cpu_percent: 0.0,
                sandboxed: false,
                sandbox: Vec::new(),
                name: "WebKitWebProcess".to_owned(),
                threads: 1,
                fds: Some(3),
                uptime_s: 88.0,
            }
        );
        assert_eq!(rows[1].title, "Example");
        assert_eq!(rows[4].title, "Tab 2");
        assert_eq!(
            (rows[7].kind, rows[7].title.as_str()),
            (Kind::Spare, "Spare renderer")
        );
        assert_eq!(rows[9].title, "WebKitWebProcess");
        assert_eq!((rows[9].kind, rows[9].tab_id), (Kind::Other, None));

        // On the wire: exactly the protocol's fields, kinds in lowercase, nulls kept.
        let json = serde_json::to_value(&result).unwrap();
        let row = json["processes"][2].as_object().unwrap();
        let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "cpu_percent",
                "fds",
                "kind",
                "memory_kb",
                "name",
                "parent_pid",
                "pid",
                "pss_kb",
                "sandbox",
                "sandboxed",
                "tab_id",
                "threads",
                "title",
                "uptime_s",
            ]
        );
        assert_eq!(row["kind"], "web");
        assert_eq!(row["tab_id"], 1);
        assert_eq!(row["pss_kb"], serde_json::Value::Null);
        assert_eq!(json["processes"][0]["tab_id"], serde_json::Value::Null);
    }

    #[test]
    fn task_manager_rounds_cpu_and_uptime() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut monitor = fp.monitor();
        monitor.refresh_at(&query(false), at(100)).unwrap();
        // 37 ticks of 10 ms over 3 s: 12.333...%.
        let mut busy = fake(200, BROWSER, "/opt/warren/renderer");
        busy.utime = 30;
        busy.stime = 7;
        fp.add(&busy);
        let snap = monitor.refresh_at(&query(false), at(103)).unwrap();
        let raw = snap.process(200).unwrap();
        assert!(
            (raw.cpu_percent - 37.0 / 3.0).abs() < 1e-9,
            "{}",
            raw.cpu_percent
        );
        let rows = snap.to_task_manager(|_| None).processes;
        let row = rows.iter().find(|r| r.pid == 200).unwrap();
        assert_eq!(row.cpu_percent, 12.3);
        assert_eq!(
            row.uptime_s,
            (raw.uptime.as_secs_f64() * 10.0).round() / 10.0
        );
        assert_eq!(row.uptime_s, 91.0);
    }

    #[test]
    fn process_that_exits_mid_walk() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        // 201 was listed and its stat read, then it exited: its other files are gone. Its child
        // 203 is still there, and belongs to tab 1 by the chain the walk saw.
        let mut child = fake(203, 201, "/usr/bin/helper");
        child.start_ticks = 5000;
        fp.add(&child);
        for file in ["status", "smaps_rollup", "cmdline", "exe"] {
            let _ = fs::remove_file(fp.path(201).join(file));
        }
        fs::remove_dir_all(fp.path(201).join("fd")).unwrap();
        // 300's directory vanished entirely: its children's parent is unknown, so they drop out.
        fs::remove_dir_all(fp.path(300)).unwrap();
        // 202 is listed but its stat is gone.
        fs::remove_file(fp.path(202).join("stat")).unwrap();

        let snap = fp.monitor().refresh_at(&query(true), at(100)).unwrap();
        assert_eq!(
            summary(&snap),
            vec![
                (100, Kind::Browser, None),
                (200, Kind::Renderer, Some(1)),
                (203, Kind::Other, Some(1)),
                (400, Kind::Spare, None),
                (401, Kind::Web, None),
                (500, Kind::Other, None),
            ]
        );
        assert_eq!(snap.tab(TabId(2)), None);
        assert_eq!(snap.tab(TabId(1)).unwrap().sum.processes, 2);
    }

    #[test]
    fn reused_pids_are_not_attributed() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        // Tab 3's renderer pid 700 exited and was reused by a process outside the browser.
        fp.add(&fake(700, 600, "/opt/warren/renderer"));
        fp.add(&fake(701, 700, "/usr/lib/WebKitWebProcess"));
        // Tab 4 names pid 302, which lives deep in tab 2's tree: not a child of the browser.
        // 203 claims parent 200 but started before it: its real parent died and 200 was reused.
        let mut old = fake(203, 200, "/usr/lib/WebKitWebProcess");
        old.start_ticks = 10;
        fp.add(&old);
        let renderers = [
            (TabId(1), 200),
            (TabId(2), 300),
            (TabId(3), 700),
            (TabId(4), 302),
        ];
        let q = Query {
            browser_pid: BROWSER,
            renderers: &renderers,
            displays: &[],
            landlocked: &[],
            spares: &[],
            pss: false,
        };
        let snap = fp.monitor().refresh_at(&q, at(100)).unwrap();
        assert!(snap.process(700).is_none());
        assert!(snap.process(701).is_none());
        assert!(snap.process(203).is_none());
        assert_eq!(snap.tab(TabId(3)), None);
        assert_eq!(snap.tab(TabId(4)), None);
        let deep = snap.process(302).unwrap();
        assert_eq!((deep.kind, deep.tab_id), (Kind::Other, Some(TabId(2))));
        // Without the spare listed, 400 is just another child of the browser.
        let spare = snap.process(400).unwrap();
        assert_eq!((spare.kind, spare.tab_id), (Kind::Other, None));
        assert_eq!(snap.process(401).unwrap().kind, Kind::Other);
    }

    #[test]
    fn foreign_processes_are_read_once_until_their_pid_is_reused() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut monitor = fp.monitor();
        let first = monitor.refresh_at(&query(false), at(100)).unwrap();
        assert_eq!(first.scan.listed, 13);
        assert_eq!(first.scan.stat_reads, 13);
        // Only the tree is read again: 1, 600 and 601 are known to be outside it.
        let second = monitor.refresh_at(&query(false), at(101)).unwrap();
        assert_eq!(second.scan.stat_reads, 10);
        assert_eq!(summary(&second), summary(&first));

        // 601 exits and a new web process of tab 1 gets its pid: a new /proc entry (inode), so
        // it is read and found. (The old directory is removed only after the new one exists, as
        // some file systems would hand its inode number straight to the next directory.)
        let old = fp.dir.path().join("exited");
        fs::rename(fp.path(601), &old).unwrap();
        let mut reused = fake(601, 200, "/usr/lib/WebKitWebProcess");
        reused.start_ticks = 9000;
        fp.add(&reused);
        fs::remove_dir_all(old).unwrap();
        let third = monitor.refresh_at(&query(false), at(102)).unwrap();
        assert_eq!(third.scan.stat_reads, 11);
        let row = third.process(601).unwrap();
        assert_eq!((row.kind, row.tab_id), (Kind::Web, Some(TabId(1))));

        // Every FULL_SCAN_EVERY refreshes, everything is read.
        let reads: Vec<usize> = (0..FULL_SCAN_EVERY)
            .map(|i| {
                let snap = monitor.refresh_at(&query(false), at(103 + i)).unwrap();
                snap.scan.stat_reads
            })
            .collect();
        assert_eq!(reads.iter().filter(|&&n| n == 13).count(), 1, "{reads:?}");
        assert!(reads.iter().all(|&n| n == 11 || n == 13), "{reads:?}");
    }

    #[test]
    fn unreadable_files_are_marked() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        // Tests may run as root, where permissions don't stop reads: make the files unreadable
        // by type instead (reading a directory, readlink of a regular file, listing a file).
        let dir = fp.path(201);
        fs::remove_file(dir.join("status")).unwrap();
        fs::create_dir(dir.join("status")).unwrap();
        fs::remove_file(dir.join("smaps_rollup")).unwrap();
        fs::create_dir(dir.join("smaps_rollup")).unwrap();
        fs::remove_dir_all(dir.join("fd")).unwrap();
        fs::write(dir.join("fd"), "").unwrap();
        fs::remove_file(dir.join("exe")).unwrap();
        fs::write(dir.join("exe"), "").unwrap();
        // 202: no exe link and no cmdline (a kernel-thread-like process): named by comm.
        let dir = fp.path(202);
        fs::remove_file(dir.join("exe")).unwrap();
        fs::remove_file(dir.join("cmdline")).unwrap();
        fs::create_dir(dir.join("cmdline")).unwrap();
        // Garbage in 301's status and in 500's stat.
        fs::write(fp.path(301).join("status"), b"\xff\xfe RssAnon: lots\n\0\0").unwrap();
        fs::write(fp.path(500).join("stat"), b"500 (x").unwrap();

        let snap = fp.monitor().refresh_at(&query(true), at(100)).unwrap();
        let web = snap.process(201).unwrap();
        assert_eq!(web.memory_kb, None);
        assert_eq!(web.pss_kb, None);
        assert_eq!(web.fds, None);
        assert!(!web.sandboxed);
        // exe unreadable: argv[0] from cmdline still classifies it.
        assert_eq!(
            (web.kind, web.name.as_str()),
            (Kind::Web, "WebKitWebProcess")
        );
        let net = snap.process(202).unwrap();
        assert_eq!(
            (net.kind, net.name.as_str()),
            (Kind::Other, "WebKitNetworkPr")
        );
        assert_eq!(snap.process(301).unwrap().memory_kb, None);
        assert!(snap.process(500).is_none());
        // The unknown figures count as zero in the sums.
        assert_eq!(snap.tab(TabId(1)).unwrap().sum.memory_kb, 2000 + 2020);
    }

    #[test]
    fn zombies_are_skipped() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut zombie = fake(204, 200, "/usr/lib/WebKitWebProcess");
        zombie.state = 'Z';
        fp.add(&zombie);
        let mut dead = fake(205, 200, "/usr/lib/WebKitWebProcess");
        dead.state = 'X';
        fp.add(&dead);
        let snap = fp.monitor().refresh_at(&query(false), at(100)).unwrap();
        assert!(snap.process(204).is_none());
        assert!(snap.process(205).is_none());
        assert_eq!(snap.tab(TabId(1)).unwrap().sum.processes, 3);
    }

    #[test]
    fn cpu_percent_over_the_interval() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut browser = fake(BROWSER, 1, "/opt/warren/browser");
        browser.start_ticks = 100;
        fp.add(&browser);
        let mut renderer = fake(200, BROWSER, "/opt/warren/renderer");
        renderer.start_ticks = 500;
        renderer.utime = 1200;
        renderer.stime = 700;
        fp.add(&renderer);
        let mut monitor = fp.monitor();

        // First sample: the average since the start (19 s of CPU over 95 s).
        let snap = monitor.refresh_at(&query(false), at(100)).unwrap();
        let row = snap.process(200).unwrap();
        assert!((row.cpu_percent - 20.0).abs() < 1e-9, "{}", row.cpu_percent);
        assert_eq!(snap.process(201).unwrap().cpu_percent, 0.0);

        // 1.5 s of CPU in 2 s.
        renderer.utime += 100;
        renderer.stime += 50;
        fp.add(&renderer);
        let mut web = fake(201, 200, "/usr/lib/WebKitWebProcess");
        web.utime = 400;
        fp.add(&web);
        let snap = monitor.refresh_at(&query(false), at(102)).unwrap();
        assert_eq!(snap.interval, Some(at(2)));
        let row = snap.process(200).unwrap();
        assert!((row.cpu_percent - 75.0).abs() < 1e-9, "{}", row.cpu_percent);
        // Several busy threads: more than one core.
        assert!((snap.process(201).unwrap().cpu_percent - 200.0).abs() < 1e-9);
        let tab = snap.tab(TabId(1)).unwrap();
        assert!((tab.sum.cpu_percent - 275.0).abs() < 1e-9);

        // 200 ms later: too short to measure in ticks, so the last values repeat; the new ticks
        // count in the next interval, which still starts at 102 s.
        let short = Duration::from_millis(102_200);
        renderer.utime += 100;
        fp.add(&renderer);
        let snap = monitor.refresh_at(&query(false), short).unwrap();
        assert!((snap.process(200).unwrap().cpu_percent - 75.0).abs() < 1e-9);
        let snap = monitor.refresh_at(&query(false), at(103)).unwrap();
        let row = snap.process(200).unwrap();
        assert!(
            (row.cpu_percent - 100.0).abs() < 1e-9,
            "{}",
            row.cpu_percent
        );
        assert_eq!(snap.process(201).unwrap().cpu_percent, 0.0);

        // The pid is reused by a new process (started at 103 s, 0.5 s of CPU): no delta against
        // the old counters, which were larger. The old process's children started before the new
        // one, so they are no longer its children.
        let mut reused = fake(200, BROWSER, "/opt/warren/renderer");
        reused.start_ticks = 10_300;
        reused.utime = 50;
        fp.add(&reused);
        let snap = monitor.refresh_at(&query(false), at(104)).unwrap();
        let row = snap.process(200).unwrap();
        assert!((row.cpu_percent - 50.0).abs() < 1e-9, "{}", row.cpu_percent);
        assert!(snap.process(201).is_none() && snap.process(202).is_none());
        // No time passed: the last values, not a division by zero.
        let snap = monitor.refresh_at(&query(false), at(104)).unwrap();
        assert!((snap.process(200).unwrap().cpu_percent - 50.0).abs() < 1e-9);
        assert_eq!(snap.process(BROWSER).unwrap().cpu_percent, 0.0);
        // The clock went backwards: no panic, no negative values.
        let snap = monitor.refresh_at(&query(false), at(50)).unwrap();
        assert!(snap.processes.iter().all(|r| r.cpu_percent >= 0.0));
    }

    #[test]
    fn names_with_spaces_and_parentheses() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut odd = fake(206, 200, "/tmp/x/WebKitWebProcess");
        odd.comm = ") (x y) ((".to_owned();
        odd.threads = 7;
        odd.start_ticks = 4242;
        fp.add(&odd);
        let stat = fs::read(fp.path(206).join("stat")).unwrap();
        let parsed = parse_stat(&stat).unwrap();
        assert_eq!(parsed.comm.as_bytes(), b") (x y) ((");
        assert_eq!(
            (
                parsed.ppid,
                parsed.threads,
                parsed.start_ticks,
                parsed.state
            ),
            (200, 7, 4242, b'S')
        );
        let snap = fp.monitor().refresh_at(&query(false), at(100)).unwrap();
        let row = snap.process(206).unwrap();
        assert_eq!(
            (row.kind, row.tab_id, row.threads),
            (Kind::Web, Some(TabId(1)), 7)
        );
        assert!(parse_stat(b"1 (no close paren S 0").is_none());
        assert!(parse_stat(b"1 ) ( S 0 0 0").is_none());
        assert!(parse_stat(b"").is_none());
    }

    #[test]
    fn exec_is_noticed_and_deleted_binaries_named() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut monitor = fp.monitor();
        // 203 was forked by the renderer and has not exec'd yet.
        let mut child = fake(203, 200, "/opt/warren/renderer");
        child.start_ticks = 3000;
        fp.add(&child);
        let snap = monitor.refresh_at(&query(false), at(100)).unwrap();
        assert_eq!(snap.process(203).unwrap().kind, Kind::Other);
        // Now it has: same pid and start time, new comm and exe (since replaced on disk).
        child.exe = Some("/usr/lib/WebKitNetworkProcess (deleted)".to_owned());
        child.comm = "WebKitNetworkPr".to_owned();
        fp.add(&child);
        let snap = monitor.refresh_at(&query(false), at(101)).unwrap();
        let row = snap.process(203).unwrap();
        assert_eq!(
            (row.kind, row.name.as_str()),
            (Kind::Network, "WebKitNetworkProcess")
        );
    }

    #[test]
    fn sandbox_needs_every_layer() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut full = fake(200, BROWSER, "/opt/warren/renderer");
        full.no_new_privs = true;
        full.seccomp = 2;
        fp.add(&full);
        let mut strict = fake(201, 200, "/usr/lib/WebKitWebProcess");
        strict.no_new_privs = true;
        strict.seccomp = 1;
        fp.add(&strict);
        let mut no_nnp = fake(202, 200, "/usr/lib/WebKitNetworkProcess");
        no_nnp.seccomp = 2;
        fp.add(&no_nnp);
        let snap = fp.monitor().refresh_at(&query(false), at(100)).unwrap();
        let renderer = snap.process(200).unwrap();
        // The fake /proc has no namespace links and no tab reported Landlock: seccomp alone is
        // not "sandboxed".
        assert_eq!(
            renderer.sandbox,
            Sandbox {
                no_new_privs: true,
                seccomp_filter: true,
                ..Sandbox::default()
            }
        );
        assert_eq!(renderer.sandbox.layers(), ["seccomp"]);
        assert!(!renderer.sandboxed);
        assert!(snap.process(201).unwrap().sandbox.layers().is_empty());
        assert!(snap.process(202).unwrap().sandbox.layers().is_empty());
    }

    #[test]
    fn layers_come_from_the_whole_tree() {
        let row = |pid: u32, kind: Kind, tab: Option<u64>| {
            let context = match tab {
                Some(t) => Context::Tab(TabId(t)),
                None => Context::Browser,
            };
            let mut r = ProcessRow {
                pid,
                parent_pid: 1,
                kind,
                tab_id: tab.map(TabId),
                name: String::new(),
                depth: 0,
                memory_kb: None,
                pss_kb: None,
                cpu_percent: 0.0,
                threads: 1,
                fds: None,
                uptime: Duration::ZERO,
                sandbox: Sandbox::default(),
                sandboxed: false,
            };
            r.sandbox.no_new_privs = kind != Kind::Browser;
            r.sandbox.seccomp_filter = kind != Kind::Browser;
            (context, r)
        };
        let mut rows = vec![
            row(1, Kind::Browser, None),
            row(10, Kind::Other, Some(1)), // bubblewrap, outside the tab's namespace
            row(11, Kind::Renderer, Some(1)),
            row(12, Kind::Web, Some(1)),
            row(13, Kind::Network, Some(1)),
            row(20, Kind::Renderer, Some(2)),
            row(21, Kind::Web, Some(2)),
        ];
        let ns = [
            (Some(100), Some(500)),
            (Some(100), Some(500)),
            (Some(101), Some(500)),
            (Some(102), Some(501)), // WebKit's sandbox: a network namespace of its own
            (Some(101), Some(500)),
            (Some(103), Some(500)),
            (Some(104), Some(500)), // tab 2's web process shares the network namespace
        ];
        mark_layers(&mut rows, &ns, &[TabId(1)]);
        let layers = |i: usize| rows[i].1.sandbox.layers();
        assert!(layers(0).is_empty());
        assert_eq!(layers(1), ["seccomp"]);
        for (i, (_, row)) in rows.iter().enumerate().take(5).skip(2) {
            assert_eq!(layers(i), ["namespaces", "seccomp", "landlock", "webkit"]);
            assert!(row.sandboxed);
        }
        assert_eq!(layers(5), ["namespaces", "seccomp"]);
        assert!(!rows[5].1.sandboxed && !rows[6].1.sandboxed);
    }

    #[test]
    fn errors_without_proc_or_browser() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Monitor::with_root(dir.path().join("missing"), TPS),
            Err(ProcsError::List { .. })
        ));
        let fp = FakeProc::new();
        standard_tree(&fp);
        let q = Query {
            browser_pid: 4321,
            ..query(false)
        };
        let err = fp.monitor().refresh_at(&q, at(1)).unwrap_err();
        assert!(err.to_string().contains("4321"), "{err}");
    }

    #[test]
    fn a_cycle_in_a_torn_listing_terminates() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        // Two processes naming each other as parent, with the same start time.
        let mut a = fake(800, 801, "/bin/a");
        let mut b = fake(801, 800, "/bin/b");
        a.start_ticks = 7;
        b.start_ticks = 7;
        fp.add(&a);
        fp.add(&b);
        let q = Query {
            browser_pid: 800,
            ..query(false)
        };
        let snap = fp.monitor().refresh_at(&q, at(1)).unwrap();
        assert_eq!(snap.processes.len(), 2);
    }

    #[test]
    fn measures_this_process_in_the_real_proc() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let child_pid = child.id();
        let renderers = [(TabId(9), child_pid)];
        let q = Query {
            browser_pid: me,
            renderers: &renderers,
            displays: &[],
            landlocked: &[],
            spares: &[],
            pss: true,
        };
        let mut monitor = Monitor::new().unwrap();
        let first = monitor.refresh(&q);
        let snap = monitor.refresh(&q);
        let found = descendants(me);
        let _ = child.kill();
        let _ = child.wait();
        let (first, snap) = (first.unwrap(), snap.unwrap());
        assert!(first.interval.is_none());
        assert!(snap.interval.is_some());

        let browser = &snap.processes[0];
        assert_eq!((browser.pid, browser.kind), (me, Kind::Browser));
        assert!(browser.threads >= 1);
        assert!(browser.fds.is_some_and(|n| n >= 3), "{:?}", browser.fds);
        assert!(browser.pss_kb.is_some_and(|kb| kb > 0));
        assert!(browser.uptime < Duration::from_secs(3600));
        let status = fs::read_to_string(format!("/proc/{me}/status")).unwrap();
        let independent = parse_status(status.as_bytes());
        let expected = independent.rss_anon_kb.unwrap() + independent.swap_kb.unwrap_or(0);
        let measured = browser.memory_kb.unwrap();
        assert!(
            measured.abs_diff(expected) * 10 <= expected,
            "{measured} vs {expected}"
        );

        let renderer = snap.process(child_pid).unwrap();
        assert_eq!(renderer.kind, Kind::Renderer);
        assert_eq!(renderer.tab_id, Some(TabId(9)));
        assert_eq!(renderer.parent_pid, me);
        assert_eq!(renderer.name, "sleep");
        assert!(renderer.cpu_percent.is_finite() && renderer.cpu_percent >= 0.0);
        assert!(renderer.memory_kb.is_some());
        assert_eq!(snap.tab(TabId(9)).unwrap().sum.processes, 1);

        assert!(found.contains(&child_pid), "{found:?}");
    }
}
