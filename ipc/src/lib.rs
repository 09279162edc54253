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
//! * **Down** (browser → renderer) is ipc-channel. The renderer creates an
//!   [`ipc_channel::ipc::IpcOneShotServer`], reports its name in [`RendererToBrowser::Hello`], and
//!   the browser connects and sends one [`Launch`] that carries the receiver of every later
//!   [`BrowserToRenderer`] message.

pub mod frame;

use std::fmt;
use std::path::PathBuf;

use ipc_channel::ipc::IpcReceiver;
use serde::{Deserialize, Serialize};

/// The descriptor number on which a renderer finds its end of the up socket.
pub const UP_FD: i32 = 3;

/// Environment variable that tells a renderer which tab it is launched for.
pub const ENV_TAB_ID: &str = "WARREN_TAB_ID";

/// The largest up frame payload the browser accepts, in bytes. A longer length prefix ends the
/// renderer.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// The longest URL either side accepts, in bytes.
pub const MAX_URL_LEN: usize = 64 * 1024;

/// The longest page title the browser accepts, in bytes.
pub const MAX_TITLE_LEN: usize = 4096;

/// The longest script result (JSON text) the browser accepts, in bytes.
pub const MAX_EVAL_RESULT_LEN: usize = 512 * 1024;

/// The longest one-shot server name the browser accepts, in bytes.
pub const MAX_SERVER_NAME_LEN: usize = 4096;

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
    /// The browser window's X11 window id; the web view becomes a child window of it.
    pub parent_window: u64,
    /// Where the web view sits inside the parent window.
    pub bounds: Bounds,
    /// Whether the web view starts mapped (only the active tab's view is).
    pub visible: bool,
    /// The first URL to load.
    pub url: String,
    /// The profile's persistent website-data directory, shared by all tabs of the profile.
    pub website_data_dir: PathBuf,
    /// The profile's SQLite cookie database.
    pub cookie_file: PathBuf,
}

/// Everything a renderer needs to start hosting its tab, sent once by the browser right after it
/// connects to the renderer's one-shot server.
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
    /// Evaluate a JavaScript expression and answer with [`RendererToBrowser::EvalResult`].
    Eval { request: u64, js: String },
    /// Liveness check; answer with [`RendererToBrowser::Pong`] carrying the same sequence number.
    Ping { seq: u64 },
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
    /// First frame of every renderer: the name of its one-shot server, which must lie inside the
    /// renderer's private runtime directory.
    Hello { server_name: String },
    /// The web view exists and is loading its first URL.
    Ready,
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
}

impl RendererToBrowser {
    /// A short name of the variant, for logs and crash notices.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "Hello",
            Self::Ready => "Ready",
            Self::UrlChanged { .. } => "UrlChanged",
            Self::TitleChanged { .. } => "TitleChanged",
            Self::Loading(_) => "Loading",
            Self::HistoryChanged { .. } => "HistoryChanged",
            Self::OpenTab { .. } => "OpenTab",
            Self::EvalResult { .. } => "EvalResult",
            Self::Pong { .. } => "Pong",
            Self::WebProcessCrashed { .. } => "WebProcessCrashed",
        }
    }
}
