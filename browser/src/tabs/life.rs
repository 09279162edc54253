//! A tab's renderer life: one enum with a variant per state, and the two small traits behind which
//! the real renderer host (or a test's fake) starts and drives renderer processes.

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use warren_ipc::{Bounds, BrowserToRenderer, TabId, TabSnapshot};

use crate::host::{HostEvent, PingTracker};
use crate::validate::{PopupLimiter, POPUP_BURST, POPUP_INTERVAL};

/// One running renderer process, as the tab model drives it. [`crate::host::RendererHost`] is the
/// real one; unit tests use a fake.
pub trait Renderer {
    /// The renderer's process id (the leader of its process group).
    fn pid(&self) -> u32;
    /// The process the browser started for the tab (bubblewrap around the renderer, or the
    /// renderer itself): every process of the tab descends from it.
    fn root_pid(&self) -> u32 {
        self.pid()
    }
    /// Queues a message without blocking; `Err` says why the renderer cannot take it (it stopped
    /// reading, or is gone), and the caller ends it.
    fn send(&self, msg: BrowserToRenderer) -> Result<(), &'static str>;
    /// The next validated event from the renderer, if any.
    fn try_recv(&self) -> Option<HostEvent>;
    /// Whether events are waiting.
    fn has_events(&self) -> bool;
    /// Asks the renderer to exit on its own.
    fn request_shutdown(&self);
    /// Kills the renderer's whole process tree. Idempotent.
    fn kill(&mut self);
    /// The reaper collected the renderer's exit status: its pid may be reused from now on.
    fn mark_reaped(&mut self);
    /// Stops the whole process tree (SIGSTOP), WebKit's helpers included.
    fn stop(&mut self) -> Result<(), String>;
    /// Continues a stopped process tree (SIGCONT).
    fn resume(&mut self);
    /// The private memory (RssAnon + VmSwap) of the whole process tree now, in KiB.
    fn footprint_kb(&self) -> Option<u64>;
    /// The process of the tab's nested display (bubblewrap or Xephyr), if it has one.
    fn display_pid(&self) -> Option<u32> {
        None
    }
}

/// Starts renderer processes for tabs.
pub trait Launcher {
    /// Starts a renderer for tab `id`. Returns once the process exists; the handshake continues
    /// in the background.
    fn launch(&mut self, id: TabId, start: Start) -> Result<Box<dyn Renderer>, String>;

    /// Whether renderers see only the files they were started with ([`Start::files`]): then a
    /// tab whose user opens a file its renderer cannot see gets a fresh renderer. False without
    /// the sandbox's namespaces, where every renderer sees every file.
    fn file_views(&self) -> bool {
        true
    }
}

/// What a new renderer starts with.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    /// The URL to load (the current entry's URL when restoring).
    pub url: String,
    /// Whether its view starts mapped (only the active tab's is).
    pub visible: bool,
    /// Where the view sits in the browser window.
    pub bounds: Bounds,
    /// A checked snapshot to restore instead of a plain load.
    pub restore: Option<TabSnapshot>,
    /// The files the user opened in the tab: the renderer's sandbox shows them (read-only), and
    /// nothing else of the user's files.
    pub files: Vec<std::path::PathBuf>,
    /// A prewarmed spare with no tab yet: it builds its view, loads nothing and waits for
    /// [`BrowserToRenderer::Start`]. Hidden, no files; `url` is empty.
    pub spare: bool,
}

impl Start {
    /// What a spare renderer starts with: a hidden view of the content area's size.
    pub fn spare(bounds: Bounds) -> Self {
        Self {
            url: String::new(),
            visible: false,
            bounds,
            restore: None,
            files: Vec::new(),
            spare: true,
        }
    }
}

/// A prewarmed renderer waiting for a tab, as Chromium keeps one: a new tab (or the restore of a
/// discarded one) then costs a navigation, not a process start (bubblewrap, GTK, the nested
/// display, WebKit's web and network processes).
pub struct Spare {
    /// The id it was started with: a tab id reserved for it, which the next new tab takes.
    pub(super) id: TabId,
    pub(super) renderer: Box<dyn Renderer>,
}

/// An answer the app is waiting for (a control-socket request), given back in
/// [`super::Effect::Answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A live renderer and the browser's bookkeeping for it.
pub struct Live {
    pub(super) renderer: Box<dyn Renderer>,
    pub(super) pings: PingTracker,
    /// Tabs this renderer's pages may still open.
    pub(super) popups: PopupLimiter,
    /// Scripts sent and not answered yet, and who waits for each answer.
    pub(super) evals: HashMap<u64, Ticket>,
    /// `CaptureState` requests sent outside a discard (at shutdown, or by a discard that was
    /// cancelled) and not answered yet; their answers are welcome, any other is a violation.
    pub(super) captures: Vec<u64>,
    /// When the renderer started or was last thawed: the idle timers count from here too.
    pub(super) since: Instant,
    /// The renderer reported its Landlock scoping in force (in `Ready`).
    pub(super) landlock: bool,
    /// The id the renderer was started with: its frames carry it, and its nested display and
    /// the clipboard broker know it by it. The tab's own id, except for a spare that took over
    /// an existing tab (a restore).
    pub(super) channel: TabId,
    /// A spare took the tab: if it dies before its view is up (`Ready`), the tab gets a fresh
    /// renderer instead of a crash notice (a spare can die between the last look and the
    /// adoption).
    pub(super) adopted: bool,
}

impl Live {
    pub(super) fn new(renderer: Box<dyn Renderer>, channel: TabId, now: Instant) -> Self {
        Self {
            channel,
            adopted: false,
            renderer,
            pings: PingTracker::new(now),
            popups: PopupLimiter::with_budget(POPUP_BURST, POPUP_INTERVAL, now),
            evals: HashMap::new(),
            captures: Vec::new(),
            since: now,
            landlock: false,
        }
    }
}

/// Why a tab's renderer is gone and the tab shows the crash notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrashCause {
    /// The up socket closed; the reaper has not said yet how the process it waits for (the
    /// started process: bubblewrap around the renderer, or the renderer) ended.
    Disconnected { pid: u32 },
    /// Everything known, as the crash notice says it.
    Known(String),
}

impl CrashCause {
    /// The crash notice's sentence.
    pub fn describe(&self) -> &str {
        match self {
            Self::Disconnected { .. } => "The renderer process ended unexpectedly.",
            Self::Known(reason) => reason,
        }
    }
}

/// A tab's renderer life. Every state the control protocol reports is one variant (plus whether
/// the tab is the active one), so no impossible combination can be written down.
pub enum Life {
    /// The renderer process runs; its view is not built yet (no `Ready`).
    Starting(Live),
    /// The renderer's view exists: it covers the content area while the tab is active.
    Live(Live),
    /// The renderer's whole process tree is stopped (SIGSTOP). Exempt from the hang detector.
    Frozen(Live),
    /// The renderer was asked for the tab's state before a discard; it is ended when the state
    /// arrives or at `deadline`, and the tickets are answered.
    Discarding {
        live: Live,
        request: u64,
        deadline: Instant,
        tickets: Vec<Ticket>,
    },
    /// No process: the tab's snapshot brings it back on activation.
    Discarded {
        /// The memory its renderer tree held when it was ended (unknown after a session restore).
        freed_kb: Option<u64>,
    },
    /// The renderer died or was ended; the browser draws the crash notice.
    Crashed(CrashCause),
}

impl Life {
    /// The live renderer, in every state that has one.
    pub(super) fn live(&self) -> Option<&Live> {
        match self {
            Self::Starting(live) | Self::Live(live) | Self::Frozen(live) => Some(live),
            Self::Discarding { live, .. } => Some(live),
            Self::Discarded { .. } | Self::Crashed(_) => None,
        }
    }

    pub(super) fn live_mut(&mut self) -> Option<&mut Live> {
        match self {
            Self::Starting(live) | Self::Live(live) | Self::Frozen(live) => Some(live),
            Self::Discarding { live, .. } => Some(live),
            Self::Discarded { .. } | Self::Crashed(_) => None,
        }
    }

    /// Whether the tab has a renderer process (running, stopped or being discarded).
    pub(super) fn has_renderer(&self) -> bool {
        matches!(
            self,
            Self::Starting(_) | Self::Live(_) | Self::Frozen(_) | Self::Discarding { .. }
        )
    }

    /// A renderer that runs and reads its messages (not stopped, not on its way out).
    pub(super) fn running_mut(&mut self) -> Option<&mut Live> {
        match self {
            Self::Starting(live) | Self::Live(live) => Some(live),
            _ => None,
        }
    }

    /// Takes the live renderer out, leaving `replacement`.
    pub(super) fn take_live(&mut self, replacement: Life) -> Option<Live> {
        match std::mem::replace(self, replacement) {
            Self::Starting(live) | Self::Live(live) | Self::Frozen(live) => Some(live),
            Self::Discarding { live, .. } => Some(live),
            other => {
                *self = other;
                None
            }
        }
    }

    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Starting(_) => "starting",
            Self::Live(_) => "live",
            Self::Frozen(_) => "frozen",
            Self::Discarding { .. } => "being discarded",
            Self::Discarded { .. } => "discarded",
            Self::Crashed(_) => "crashed",
        }
    }
}

impl fmt::Debug for Life {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Starting(l) | Self::Live(l) | Self::Frozen(l) => {
                write!(f, "{}(pid {})", self.name(), l.renderer.pid())
            }
            Self::Discarding { live, request, .. } => {
                write!(
                    f,
                    "discarding(pid {}, request {request})",
                    live.renderer.pid()
                )
            }
            Self::Discarded { freed_kb } => write!(f, "discarded(freed {freed_kb:?} KiB)"),
            Self::Crashed(cause) => write!(f, "crashed({})", cause.describe()),
        }
    }
}
