//! Every message that crosses a Warren process boundary, the launch handshake and the frame limits.
//!
//! This crate is the contract between the trusted `browser` and the untrusted `renderer`. It depends
//! on nothing of ours, so neither side has to depend on the other.
//!
//! # The two directions
//!
//! * **Up** (renderer → browser) is hostile input. It travels over a Unix stream socket that the
//!   browser creates and hands to the renderer as descriptor [`UP_FD`], as length-prefixed frames
//!   ([`frame`]) carrying a postcard-encoded [`UpFrame`]. The browser never runs an ipc-channel
//!   receive on renderer bytes: ipc-channel's Unix receiver trusts its peer.
//! * **Down** (browser → renderer) is ipc-channel. The browser creates a channel and hands its
//!   receiver to the renderer as descriptor [`DOWN_FD`] at `exec`; the first message on it is one
//!   [`Launch`], which carries the receiver of every later [`BrowserToRenderer`] message. Nothing
//!   is reached through a name, so a renderer cannot point the browser at another process's
//!   socket.

pub mod frame;
pub mod probe;

use std::fmt;
use std::path::PathBuf;

use ipc_channel::ipc::IpcReceiver;
use serde::{Deserialize, Serialize};

/// The descriptor number on which a renderer finds its end of the up socket.
pub const UP_FD: i32 = 3;

/// The descriptor number on which a renderer finds the receiver of its [`Launch`]: an ipc-channel
/// the browser created and handed over at `exec`, so no socket is ever found by name.
pub const DOWN_FD: i32 = 4;

/// Environment variable that tells a renderer which tab it is launched for.
pub const ENV_TAB_ID: &str = "WARREN_TAB_ID";

/// Environment variable the browser sets when it started the renderer inside its sandbox: the
/// layers the browser applied, comma-separated (`namespaces,seccomp`).
pub const ENV_SANDBOX: &str = "WARREN_SANDBOX";

/// Environment variable naming the X display WebKit's web processes are to see (a headless one
/// the browser started), never the user's. The renderer points `DISPLAY` at it once its own view's
/// connection exists.
pub const ENV_WEB_DISPLAY: &str = "WARREN_WEB_DISPLAY";

/// The largest up frame payload the browser accepts, in bytes. A longer length prefix ends the
/// renderer.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// The longest URL either side accepts, in bytes.
pub const MAX_URL_LEN: usize = 64 * 1024;

/// The longest page title the browser accepts, in bytes.
pub const MAX_TITLE_LEN: usize = 4096;

/// The longest script result (JSON text) the browser accepts, in bytes.
pub const MAX_EVAL_RESULT_LEN: usize = 512 * 1024;

/// The most back/forward entries a [`SessionHistory`] may list.
pub const MAX_HISTORY_ENTRIES: usize = 200;

/// The largest serialized WebKit session state ([`SessionHistory::webkit_state`]), in bytes. A
/// renderer whose state is larger sends an empty one (the entries alone still restore the URLs).
pub const MAX_WEBKIT_STATE_LEN: usize = 512 * 1024;

/// The most edited form fields a [`PageState`] may carry.
pub const MAX_FORM_FIELDS: usize = 500;

/// The longest form field value, id or name, in bytes.
pub const MAX_FIELD_VALUE_LEN: usize = 64 * 1024;

/// The most selected options one `<select>` field may report.
pub const MAX_SELECTED_OPTIONS: usize = 1024;

/// The scheme of Warren's internal pages (`warren://newtab/`), served by the renderer from the
/// project's `resources/`.
pub const INTERNAL_SCHEME: &str = "warren";

/// The URL schemes a tab may show. The renderer refuses navigations to any other scheme, and the
/// browser ends a renderer that reports one.
pub const SHOWABLE_SCHEMES: &[&str] = &[
    "http",
    "https",
    "file",
    "data",
    "about",
    "blob",
    INTERNAL_SCHEME,
];

/// The new-tab page.
pub const NEW_TAB_URL: &str = "warren://newtab/";

/// Cuts `text` to at most `max` bytes without splitting a character: how both sides keep strings
/// inside the limits above.
pub fn truncate_str(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Identifies a tab for the lifetime of the browser process. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TabId(pub u64);

impl fmt::Display for TabId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A rectangle in physical pixels, relative to the browser window's client area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

/// How a renderer's view starts: where it sits, what it loads, where the profile keeps its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewSetup {
    /// The browser window's X11 window id, which the web view becomes a child window of
    /// (`--display-isolation none`); `None`: the view is a full-screen window of the renderer's
    /// own nested display (`$DISPLAY`).
    pub parent_window: Option<u64>,
    /// Where the web view sits inside the parent window (on a nested display: its size).
    pub bounds: Bounds,
    /// Whether the web view starts mapped (only the active tab's view is).
    pub visible: bool,
    /// The first URL to load (empty for a spare).
    pub url: String,
    /// The profile's persistent website-data directory, shared by all tabs of the profile.
    pub website_data_dir: PathBuf,
    /// The profile's SQLite cookie database.
    pub cookie_file: PathBuf,
    /// A discarded (or crashed, or session-restored) tab's state to bring back instead of a plain
    /// load of `url`. The browser has checked every URL in it; `url` is its current entry's URL.
    pub restore: Option<TabSnapshot>,
    /// A prewarmed spare: build the view (and with it WebKit's processes) now, load nothing, and
    /// wait for [`BrowserToRenderer::Start`], which gives it its tab's first page. `url` and
    /// `restore` are unused.
    pub spare: bool,
}

/// A tab's state as the browser keeps it while the tab has no renderer (discarded, crashed,
/// restored from the saved session), and what a renderer restores when it brings the tab back:
/// its history, then its page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TabSnapshot {
    pub history: SessionHistory,
    /// The current page's scroll offset, zoom and edited form fields, if they were captured.
    pub page: Option<PageState>,
}

/// One entry of a tab's back/forward list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub url: String,
    pub title: String,
}

/// A tab's back/forward list: the entries the browser can check, and WebKit's own serialized
/// session state (`webkit_web_view_session_state_serialize`), which also holds each entry's
/// scroll position and form state. The browser never decodes `webkit_state`; a restoring renderer
/// uses it only when the list it restores from it has exactly the URLs of `entries`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHistory {
    /// Oldest first; at most [`MAX_HISTORY_ENTRIES`].
    pub entries: Vec<HistoryEntry>,
    /// The index of the current entry in `entries`.
    pub current: u32,
    /// At most [`MAX_WEBKIT_STATE_LEN`] bytes; empty when unknown.
    pub webkit_state: Vec<u8>,
}

impl SessionHistory {
    /// The current entry, if `current` is in range.
    pub fn current_entry(&self) -> Option<&HistoryEntry> {
        self.entries.get(self.current as usize)
    }
}

/// What the current page shows beyond its URL: where it is scrolled, its zoom, and the values of
/// the form fields the user edited (never password fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageState {
    /// The page this state belongs to; a restoring renderer applies it only to this URL.
    pub url: String,
    /// `window.scrollX` and `window.scrollY`, in CSS pixels.
    pub scroll_x: f64,
    pub scroll_y: f64,
    /// The view's zoom level (1.0 is 100%).
    pub zoom: f64,
    /// At most [`MAX_FORM_FIELDS`].
    pub fields: Vec<FormField>,
}

/// One edited form field of the current page's main document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormField {
    /// The field's position among the document's `input`, `textarea` and `select` elements, in
    /// tree order.
    pub index: u32,
    /// The element's `id` and `name` attributes, to find it again when the index moved.
    pub id: String,
    pub name: String,
    pub value: FieldValue,
}

/// The value of a [`FormField`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldValue {
    /// A text-like `input` or a `textarea`.
    Text(String),
    /// A checkbox or a radio button.
    Checked(bool),
    /// A `select`: the indices of its selected options.
    Selected(Vec<u32>),
}

/// Everything a renderer needs to start hosting its tab: the one message on the channel the
/// renderer finds at [`DOWN_FD`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Launch {
    /// The tab this renderer hosts; every up frame must carry it.
    pub tab_id: TabId,
    pub view: ViewSetup,
    /// Every later message from the browser.
    pub receiver: IpcReceiver<BrowserToRenderer>,
}

/// Messages from the browser to a renderer. The renderer trusts these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BrowserToRenderer {
    /// A spare renderer ([`ViewSetup::spare`]) now serves a tab: load its first page, or restore
    /// its snapshot (the browser has checked every URL in it; `url` is its current entry's URL),
    /// in a view shown at once if `visible` (the tab is the active one). Sent once, first; a
    /// renderer that is not a spare ignores it.
    Start {
        url: String,
        restore: Option<TabSnapshot>,
        visible: bool,
    },
    /// Load this URL in the tab.
    Navigate { url: String },
    /// Reload the current page.
    Reload,
    /// Stop loading the current page.
    Stop,
    /// Go one step back in the tab's history.
    GoBack,
    /// Go one step forward in the tab's history.
    GoForward,
    /// Move or resize the web view (physical pixels).
    SetBounds(Bounds),
    /// Map (true) or unmap (false) the web view; only the active tab's view is mapped.
    SetVisible(bool),
    /// Give the web view X keyboard focus.
    Focus,
    /// The browser's chrome took the keyboard: the page loses focus (on a nested display the
    /// renderer cannot see the user's focus move).
    Blur,
    /// Evaluate a JavaScript expression and answer with [`RendererToBrowser::EvalResult`].
    Eval { request: u64, js: String },
    /// Liveness check; answer with [`RendererToBrowser::Pong`] carrying the same sequence number.
    Ping { seq: u64 },
    /// Report the tab's whole state with [`RendererToBrowser::StateCaptured`]: the browser is
    /// about to discard the tab (or to shut down) and keeps it to restore the tab later.
    CaptureState { request: u64 },
    /// Exit cleanly.
    Shutdown,
}

/// One up frame: the sender's tab and its message. The browser checks that `tab_id` is the tab of
/// the channel it arrived on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpFrame {
    pub tab_id: TabId,
    pub msg: RendererToBrowser,
}

/// Messages from a renderer to the browser. Hostile input: the browser validates every one, and an
/// invalid one ends the renderer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RendererToBrowser {
    /// First frame of every renderer: it took its descriptors and waits for its [`Launch`].
    Hello,
    /// The web view exists and is loading its first URL. `landlock`: the renderer's Landlock
    /// scoping (no abstract Unix socket and no signal outside its sandbox) was in force before
    /// the view was built. The renderer says so itself: no other process can read a Landlock
    /// domain, and once in force a renderer cannot leave it, so a lie can only come from a
    /// renderer that never had it.
    Ready { landlock: bool },
    /// The tab's URL changed (navigation committed, same-document navigation, redirect).
    UrlChanged { url: String },
    /// The page's title changed.
    TitleChanged { title: String },
    /// Loading started (true) or finished (false).
    Loading(bool),
    /// Whether the tab can go back and forward in its history.
    HistoryChanged {
        can_go_back: bool,
        can_go_forward: bool,
    },
    /// The page asked for a new window (`window.open`, `target=_blank`): the browser decides
    /// whether it becomes a new tab.
    OpenTab { url: String },
    /// The result of [`BrowserToRenderer::Eval`]: the expression's value as JSON text, or an error.
    EvalResult {
        request: u64,
        result: Result<String, String>,
    },
    /// Answer to [`BrowserToRenderer::Ping`].
    Pong { seq: u64 },
    /// WebKit's web process for this tab ended abnormally; the renderer is about to exit.
    WebProcessCrashed { reason: String },
    /// The tab's back/forward list changed (a load finished, history moved): sent unasked, at most
    /// about once a second, so the browser's copy survives a crash of either process.
    HistoryState(SessionHistory),
    /// The answer to [`BrowserToRenderer::CaptureState`]: the history and the current page.
    StateCaptured {
        request: u64,
        history: SessionHistory,
        page: PageState,
    },
    /// The user edited a form field of the page and has not submitted it (true), or the page with
    /// the edits is gone: submitted, navigated away, reloaded (false). Sent on changes only.
    FormEdited(bool),
    /// The page started (true) or stopped (false) playing audio. Sent on changes only.
    PlayingAudio(bool),
}

impl RendererToBrowser {
    /// A short name of the variant, for logs and crash notices.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello => "Hello",
            Self::Ready { .. } => "Ready",
            Self::UrlChanged { .. } => "UrlChanged",
            Self::TitleChanged { .. } => "TitleChanged",
            Self::Loading(_) => "Loading",
            Self::HistoryChanged { .. } => "HistoryChanged",
            Self::OpenTab { .. } => "OpenTab",
            Self::EvalResult { .. } => "EvalResult",
            Self::Pong { .. } => "Pong",
            Self::WebProcessCrashed { .. } => "WebProcessCrashed",
            Self::HistoryState(_) => "HistoryState",
            Self::StateCaptured { .. } => "StateCaptured",
            Self::FormEdited(_) => "FormEdited",
            Self::PlayingAudio(_) => "PlayingAudio",
        }
    }
}
