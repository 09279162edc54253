//! Which renderer messages are valid: the browser's policy for hostile input, with no I/O but the
//! one path check, so unit tests drive it directly.
//!
//! A renderer is an attacker's process. Every frame it sends passes [`Validator::check`] before
//! the browser acts on it; the first violation ends that renderer and its crash notice shows why.

use std::path::{Component, Path};
use std::time::{Duration, Instant};

use warren_ipc::{RendererToBrowser, TabId, UpFrame};

use crate::tabs::snapshot;

/// Why a renderer was ended.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Violation {
    #[error("message for tab {got} on the channel of tab {expected}")]
    WrongTab { expected: TabId, got: TabId },
    #[error("first message was {0}, not Hello")]
    NoHello(&'static str),
    #[error("second Hello")]
    RepeatedHello,
    #[error("one-shot server name {0:?} is not inside the renderer's runtime directory")]
    ServerOutsideRuntimeDir(String),
    #[error("{what} of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("URL {0:?} is not a valid URL")]
    BadUrl(String),
    #[error("URL scheme {0:?} is not allowed here")]
    BadScheme(String),
    #[error("more than {0} messages per second")]
    Flood(u32),
    #[error("bad tab state: {0}")]
    BadState(#[from] crate::tabs::snapshot::SnapshotError),
}

/// Schemes a tab may show (reported by `UrlChanged`).
const SHOWN_SCHEMES: &[&str] = warren_ipc::SHOWABLE_SCHEMES;

/// Schemes a page may open a new tab with.
const OPENABLE_SCHEMES: &[&str] = &["http", "https", "about"];

/// Sustained message rate a renderer may keep up, and the burst above it.
pub const RATE_PER_SECOND: u32 = 1000;
const BURST: f64 = 5000.0;

/// Per-renderer validation state: the handshake phase and the message-rate budget.
#[derive(Debug)]
pub struct Validator {
    tab_id: TabId,
    hello_seen: bool,
    tokens: f64,
    last: Instant,
}

impl Validator {
    pub fn new(tab_id: TabId, now: Instant) -> Self {
        Self {
            tab_id,
            hello_seen: false,
            tokens: BURST,
            last: now,
        }
    }

    /// Checks one decoded frame received at `now`. URLs of `OpenTab` are checked against the
    /// opener's scheme separately by [`check_open_tab`], since only the UI knows the opener's URL.
    pub fn check(&mut self, frame: &UpFrame, now: Instant) -> Result<(), Violation> {
        self.spend(now)?;
        if frame.tab_id != self.tab_id {
            return Err(Violation::WrongTab {
                expected: self.tab_id,
                got: frame.tab_id,
            });
        }
        match (&frame.msg, self.hello_seen) {
            (RendererToBrowser::Hello { .. }, false) => self.hello_seen = true,
            (RendererToBrowser::Hello { .. }, true) => return Err(Violation::RepeatedHello),
            (other, false) => return Err(Violation::NoHello(other.kind())),
            _ => {}
        }
        match &frame.msg {
            RendererToBrowser::Hello { server_name } => limit(
                "server name",
                server_name.len(),
                warren_ipc::MAX_SERVER_NAME_LEN,
            )?,
            RendererToBrowser::UrlChanged { url } => {
                check_url(url, SHOWN_SCHEMES)?;
            }
            RendererToBrowser::OpenTab { url } => limit("URL", url.len(), warren_ipc::MAX_URL_LEN)?,
            RendererToBrowser::TitleChanged { title } => {
                limit("title", title.len(), warren_ipc::MAX_TITLE_LEN)?
            }
            RendererToBrowser::EvalResult { result, .. } => {
                let len = match result {
                    Ok(s) | Err(s) => s.len(),
                };
                limit("script result", len, warren_ipc::MAX_EVAL_RESULT_LEN)?
            }
            RendererToBrowser::WebProcessCrashed { reason } => {
                limit("crash reason", reason.len(), warren_ipc::MAX_TITLE_LEN)?
            }
            RendererToBrowser::HistoryState(history) => check_history(history)?,
            RendererToBrowser::StateCaptured { history, page, .. } => {
                check_history(history)?;
                snapshot::check_page_limits(page)?;
                check_url(&page.url, SHOWN_SCHEMES)?;
            }
            RendererToBrowser::Ready
            | RendererToBrowser::Loading(_)
            | RendererToBrowser::HistoryChanged { .. }
            | RendererToBrowser::Pong { .. }
            | RendererToBrowser::FormEdited(_)
            | RendererToBrowser::PlayingAudio(_) => {}
        }
        Ok(())
    }

    /// Token bucket: `RATE_PER_SECOND` sustained, `BURST` at once.
    fn spend(&mut self, now: Instant) -> Result<(), Violation> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * f64::from(RATE_PER_SECOND)).min(BURST);
        if self.tokens < 1.0 {
            return Err(Violation::Flood(RATE_PER_SECOND));
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

/// A reported history: within its limits, and every entry a URL a tab may show. Whether this tab
/// may be restored to them is decided when it is restored ([`snapshot::check_snapshot`]).
fn check_history(history: &warren_ipc::SessionHistory) -> Result<(), Violation> {
    snapshot::check_history_limits(history)?;
    for entry in &history.entries {
        check_url(&entry.url, SHOWN_SCHEMES)?;
    }
    Ok(())
}

fn limit(what: &'static str, len: usize, max: usize) -> Result<(), Violation> {
    if len > max {
        Err(Violation::TooLong { what, len, max })
    } else {
        Ok(())
    }
}

fn check_url(url: &str, schemes: &[&str]) -> Result<url::Url, Violation> {
    limit("URL", url.len(), warren_ipc::MAX_URL_LEN)?;
    let parsed = url::Url::parse(url).map_err(|_| Violation::BadUrl(truncated(url)))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(Violation::BadScheme(parsed.scheme().to_owned()));
    }
    Ok(parsed)
}

/// Whether a page showing `opener_url` may open `url` in a new tab. Web pages may open web pages;
/// a `file://` page may also open files, as browsers let local documents link to each other.
pub fn check_open_tab(url: &str, opener_url: &str) -> Result<(), Violation> {
    let opener_is_file = opener_url.starts_with("file:");
    let schemes: &[&str] = if opener_is_file {
        &["http", "https", "about", "file"]
    } else {
        OPENABLE_SCHEMES
    };
    let parsed = check_url(url, schemes)?;
    if parsed.scheme() == "about" && parsed.as_str() != "about:blank" {
        return Err(Violation::BadUrl(truncated(url)));
    }
    Ok(())
}

/// A renderer's one-shot server, held open by descriptor so that what was checked is what the
/// browser connects to.
#[derive(Debug)]
pub struct ServerSocket(std::os::fd::OwnedFd);

impl ServerSocket {
    /// The name to connect to: the checked socket file through this process's descriptor, never
    /// the renderer's path again (its directory could have changed since), and short enough for
    /// `sun_path` (ipc-channel silently cuts longer names, so a long name could be made to reach
    /// a different socket than the one checked).
    pub fn connect_name(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", self.0.as_raw_fd())
    }
}

/// Checks that a one-shot server name lies inside `runtime_dir` (which must be canonical) and
/// names a socket there, and opens it (`O_PATH`) for [`ServerSocket::connect_name`].
///
/// The name is checked lexically first (absolute, under the directory, no `..`), then the file is
/// opened without following a final symbolic link and checked again through the descriptor: its
/// real path must still lie in the directory, and it must be a socket. The renderer owns the
/// directory's contents and could plant links to another process's socket or swap files around.
pub fn check_server_name(name: &str, runtime_dir: &Path) -> Result<ServerSocket, Violation> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;
    let outside = || Violation::ServerOutsideRuntimeDir(truncated(name));
    let path = Path::new(name);
    let relative = path.strip_prefix(runtime_dir).map_err(|_| outside())?;
    if relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(outside());
    }
    let c_path = std::ffi::CString::new(name).map_err(|_| outside())?;
    // SAFETY: a plain open(2) of a NUL-terminated path; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(outside());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let real =
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|_| outside())?;
    if !real.starts_with(runtime_dir) || real == runtime_dir {
        return Err(outside());
    }
    let file = std::fs::File::from(fd);
    match file.metadata() {
        Ok(m) if m.file_type().is_socket() => Ok(ServerSocket(file.into())),
        _ => Err(outside()),
    }
}

/// Text for a crash notice: renderer strings are shown only in part.
fn truncated(s: &str) -> String {
    const MAX: usize = 80;
    let cut = warren_ipc::truncate_str(s, MAX);
    if cut.len() == s.len() {
        s.to_owned()
    } else {
        format!("{cut}…")
    }
}

/// Limits how many tabs pages may open: a burst, then one per interval. The browser keeps one
/// per renderer ([`POPUP_BURST`], [`POPUP_INTERVAL`]) and one for all renderers together
/// ([`ALL_POPUPS_BURST`], [`ALL_POPUPS_INTERVAL`]), since the tabs a page opens can open tabs
/// in turn. Requests beyond it are dropped, not treated as violations, since an ordinary page can
/// call `window.open` in a loop; but renderers cannot fork-bomb the machine with tabs (each costs
/// three processes).
#[derive(Debug)]
pub struct PopupLimiter {
    burst: f64,
    interval: Duration,
    tokens: f64,
    last: Instant,
}

pub const POPUP_BURST: u32 = 5;
pub const POPUP_INTERVAL: Duration = Duration::from_secs(2);
pub const ALL_POPUPS_BURST: u32 = 20;
pub const ALL_POPUPS_INTERVAL: Duration = Duration::from_secs(3);

impl PopupLimiter {
    pub fn with_budget(burst: u32, interval: Duration, now: Instant) -> Self {
        let burst = f64::from(burst);
        Self {
            burst,
            interval,
            tokens: burst,
            last: now,
        }
    }

    /// Whether a tab may be opened now.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed / self.interval.as_secs_f64()).min(self.burst);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// How long a renderer may take to say Hello before it is ended.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a renderer may leave a ping unanswered before its tab is marked unresponsive.
pub const PING_TIMEOUT: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tab: u64, msg: RendererToBrowser) -> UpFrame {
        UpFrame {
            tab_id: TabId(tab),
            msg,
        }
    }

    fn hello() -> RendererToBrowser {
        RendererToBrowser::Hello {
            server_name: "/run/x/socket".into(),
        }
    }

    fn ready_validator(now: Instant) -> Validator {
        let mut v = Validator::new(TabId(1), now);
        v.check(&frame(1, hello()), now).unwrap();
        v
    }

    #[test]
    fn hello_must_come_first_and_once() {
        let now = Instant::now();
        let mut v = Validator::new(TabId(1), now);
        assert_eq!(
            v.check(&frame(1, RendererToBrowser::Ready), now),
            Err(Violation::NoHello("Ready"))
        );
        let mut v = ready_validator(now);
        assert_eq!(
            v.check(&frame(1, hello()), now),
            Err(Violation::RepeatedHello)
        );
    }

    #[test]
    fn wrong_tab_is_refused() {
        let now = Instant::now();
        let mut v = ready_validator(now);
        assert_eq!(
            v.check(&frame(2, RendererToBrowser::Ready), now),
            Err(Violation::WrongTab {
                expected: TabId(1),
                got: TabId(2)
            })
        );
    }

    #[test]
    fn url_schemes() {
        let now = Instant::now();
        let mut v = ready_validator(now);
        for ok in [
            "https://example.org/",
            "http://127.0.0.1:8000/x",
            "file:///tmp/a.html",
            "about:blank",
            "warren://newtab/",
            "data:text/html,hi",
        ] {
            assert_eq!(
                v.check(
                    &frame(1, RendererToBrowser::UrlChanged { url: ok.into() }),
                    now
                ),
                Ok(()),
                "{ok}"
            );
        }
        for bad in ["javascript:alert(1)", "chrome://settings", "not a url", ""] {
            assert!(
                v.check(
                    &frame(1, RendererToBrowser::UrlChanged { url: bad.into() }),
                    now
                )
                .is_err(),
                "{bad}"
            );
        }
        let long = format!(
            "https://example.org/{}",
            "a".repeat(warren_ipc::MAX_URL_LEN)
        );
        assert!(matches!(
            v.check(&frame(1, RendererToBrowser::UrlChanged { url: long }), now),
            Err(Violation::TooLong { .. })
        ));
    }

    #[test]
    fn open_tab_schemes_depend_on_opener() {
        assert!(check_open_tab("https://a.example/", "https://b.example/").is_ok());
        assert!(check_open_tab("about:blank", "https://b.example/").is_ok());
        assert!(check_open_tab("about:config", "https://b.example/").is_err());
        assert!(check_open_tab("file:///etc/passwd", "https://b.example/").is_err());
        assert!(check_open_tab("file:///tmp/b.html", "file:///tmp/a.html").is_ok());
        assert!(check_open_tab("javascript:1", "file:///tmp/a.html").is_err());
        assert!(check_open_tab("warren://newtab/", "https://b.example/").is_err());
    }

    #[test]
    fn oversized_title_and_result() {
        let now = Instant::now();
        let mut v = ready_validator(now);
        let title = "é".repeat(warren_ipc::MAX_TITLE_LEN);
        assert!(v
            .check(&frame(1, RendererToBrowser::TitleChanged { title }), now)
            .is_err());
        let result = Err("x".repeat(warren_ipc::MAX_EVAL_RESULT_LEN + 1));
        assert!(v
            .check(
                &frame(1, RendererToBrowser::EvalResult { request: 1, result }),
                now
            )
            .is_err());
    }

    #[test]
    fn reported_state_is_bounded_and_uses_showable_urls() {
        use warren_ipc::{HistoryEntry, PageState, SessionHistory};
        let now = Instant::now();
        let mut v = ready_validator(now);
        let history = |urls: &[&str]| SessionHistory {
            entries: urls
                .iter()
                .map(|u| HistoryEntry {
                    url: (*u).to_owned(),
                    title: "t".into(),
                })
                .collect(),
            current: 0,
            webkit_state: vec![0; 16],
        };
        let ok = history(&["https://a.example/", "file:///tmp/a.html"]);
        assert_eq!(
            v.check(&frame(1, RendererToBrowser::HistoryState(ok.clone())), now),
            Ok(())
        );
        let bad = history(&["https://a.example/", "javascript:alert(1)"]);
        assert!(v
            .check(&frame(1, RendererToBrowser::HistoryState(bad)), now)
            .is_err());
        let mut out_of_range = ok.clone();
        out_of_range.current = 5;
        assert!(v
            .check(
                &frame(1, RendererToBrowser::HistoryState(out_of_range)),
                now
            )
            .is_err());
        let page = PageState {
            url: "https://a.example/".into(),
            scroll_x: 0.0,
            scroll_y: f64::NAN,
            zoom: 1.0,
            fields: Vec::new(),
        };
        assert!(matches!(
            v.check(
                &frame(
                    1,
                    RendererToBrowser::StateCaptured {
                        request: 1,
                        history: ok,
                        page
                    }
                ),
                now
            ),
            Err(Violation::BadState(_))
        ));
        assert_eq!(
            v.check(&frame(1, RendererToBrowser::FormEdited(true)), now),
            Ok(())
        );
    }

    #[test]
    fn flood_is_cut_off_but_steady_traffic_is_not() {
        let start = Instant::now();
        let mut v = ready_validator(start);
        // A steady 500 messages per second for 20 seconds passes.
        for i in 0..10_000u64 {
            let now = start + Duration::from_millis(i * 2);
            v.check(&frame(1, RendererToBrowser::Pong { seq: i }), now)
                .unwrap();
        }
        // Thousands in the same instant do not.
        let now = start + Duration::from_secs(30);
        let err = (0..10_000)
            .map(|i| v.check(&frame(1, RendererToBrowser::Pong { seq: i }), now))
            .find(Result::is_err);
        assert_eq!(err, Some(Err(Violation::Flood(RATE_PER_SECOND))));
    }

    #[test]
    fn popups_are_limited_to_a_burst_then_a_trickle() {
        let t0 = Instant::now();
        let mut p = PopupLimiter::with_budget(POPUP_BURST, POPUP_INTERVAL, t0);
        let allowed = (0..100).filter(|_| p.allow(t0)).count();
        assert_eq!(allowed, POPUP_BURST as usize);
        assert!(!p.allow(t0 + POPUP_INTERVAL / 2));
        assert!(p.allow(t0 + POPUP_INTERVAL * 2));
    }

    #[test]
    fn server_name_must_be_a_socket_inside_the_runtime_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(root.path()).unwrap().join("r1");
        std::fs::create_dir(&dir).unwrap();
        let inner = dir.join(".tmpabc");
        std::fs::create_dir(&inner).unwrap();
        let sock = inner.join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = check_server_name(sock.to_str().unwrap(), &dir).unwrap();
        // The browser connects through its own descriptor, and reaches the checked socket.
        let name = server.connect_name();
        assert!(name.starts_with("/proc/self/fd/"), "{name}");
        std::os::unix::net::UnixStream::connect(&name).unwrap();

        let outside_dir = std::fs::canonicalize(root.path()).unwrap().join("r2");
        std::fs::create_dir(&outside_dir).unwrap();
        let other = outside_dir.join("socket");
        let _other_listener = std::os::unix::net::UnixListener::bind(&other).unwrap();
        let dotdot = format!("{}/../r2/socket", dir.display());
        assert!(check_server_name(&dotdot, &dir).is_err());
        assert!(check_server_name(other.to_str().unwrap(), &dir).is_err());
        assert!(check_server_name("relative/socket", &dir).is_err());
        assert!(check_server_name(dir.to_str().unwrap(), &dir).is_err());

        // A symbolic link planted inside the directory, pointing at another renderer's socket.
        let link = dir.join("link");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        assert!(check_server_name(link.to_str().unwrap(), &dir).is_err());

        // A regular file is not a server.
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_server_name(file.to_str().unwrap(), &dir).is_err());
    }
}
