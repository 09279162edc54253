//! Which renderer messages are valid: the browser's policy for hostile input, with no I/O but the
//! one path check, so unit tests drive it directly.
//!
//! A renderer is an attacker's process. Every frame it sends passes [`Validator::check`] before
//! the browser acts on it; the first violation ends that renderer and its crash notice shows why.
//!
//! # Budgets
//!
//! Besides the shape of each message, a renderer is held to two token buckets, and going over
//! either ends it like any other invalid message:
//!
//! * **Messages**: [`RATE_PER_SECOND`] sustained, [`BURST`] at once. A real renderer sends a few
//!   messages per page load, a title or URL change now and then, a pong every 5 s.
//! * **Bytes** (each frame's size on the wire): [`BYTES_PER_SECOND`] sustained,
//!   [`BYTE_BURST`] at once. Within the message budget a renderer could still send a thousand
//!   64 KiB URLs a second (64 MB/s), every one of them parsed, copied and drawn by the UI thread.
//!   The numbers come from what a real renderer sends: its largest messages are `HistoryState`
//!   (at most about once a second, after a load or a move in the history) and `StateCaptured`
//!   (only when the browser asks, before a discard and at shutdown), each at most
//!   [`warren_ipc::MAX_FRAME_LEN`] = 1 MiB, and in practice far less (WebKit's session state is
//!   capped at 512 KiB). So 2 MiB/s sustains a maximum-size history report every second with as
//!   much again for titles and URLs, and the 8 MiB burst takes a restore's or a shutdown's flurry
//!   (a history, a captured state and a few long URLs back to back) several times over. A flood
//!   of 64 KiB frames at 900 a second (56 MiB/s) empties the burst in about 0.15 s.
//!   `EvalResult` is not counted in bytes: the reader accepts one only for a script the browser
//!   asked for and has not had the answer to, so their volume is the asker's (a control client),
//!   not the renderer's.
//!
//! Tabs that pages open, and tabs as a whole, have budgets of their own ([`TokenBucket`],
//! [`SPAWN_BURST`]): not violations, since an honest page may call `window.open` in a loop.

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
    #[error("more than {} KiB per second", .0 / 1024)]
    ByteFlood(u32),
    #[error("bad tab state: {0}")]
    BadState(#[from] crate::tabs::snapshot::SnapshotError),
}

/// Schemes a tab may show (reported by `UrlChanged`).
const SHOWN_SCHEMES: &[&str] = warren_ipc::SHOWABLE_SCHEMES;

/// Schemes a page may open a new tab with.
const OPENABLE_SCHEMES: &[&str] = &["http", "https", "about"];

/// Sustained message rate a renderer may keep up, and the burst above it.
pub const RATE_PER_SECOND: u32 = 1000;
pub const BURST: u32 = 5000;

/// Sustained byte rate a renderer may keep up, and the burst above it (see "Budgets" above).
pub const BYTES_PER_SECOND: u32 = 2 * 1024 * 1024;
pub const BYTE_BURST: u32 = 8 * 1024 * 1024;

/// Per-renderer validation state: the handshake phase and the message and byte budgets.
#[derive(Debug)]
pub struct Validator {
    tab_id: TabId,
    hello_seen: bool,
    messages: TokenBucket,
    bytes: TokenBucket,
}

impl Validator {
    pub fn new(tab_id: TabId, now: Instant) -> Self {
        Self {
            tab_id,
            hello_seen: false,
            messages: TokenBucket::new(BURST.into(), RATE_PER_SECOND.into(), now),
            bytes: TokenBucket::new(BYTE_BURST.into(), BYTES_PER_SECOND.into(), now),
        }
    }

    /// Checks one decoded frame received at `now`; `wire_len` is its size on the wire, length
    /// prefix included. URLs of `OpenTab` are checked against the opener's scheme separately by
    /// [`check_open_tab`], since only the UI knows the opener's URL.
    pub fn check(
        &mut self,
        frame: &UpFrame,
        wire_len: usize,
        now: Instant,
    ) -> Result<(), Violation> {
        if !self.messages.take(1.0, now) {
            return Err(Violation::Flood(RATE_PER_SECOND));
        }
        let counted = !matches!(frame.msg, RendererToBrowser::EvalResult { .. });
        if counted && !self.bytes.take(wire_len as f64, now) {
            return Err(Violation::ByteFlood(BYTES_PER_SECOND));
        }
        if frame.tab_id != self.tab_id {
            return Err(Violation::WrongTab {
                expected: self.tab_id,
                got: frame.tab_id,
            });
        }
        match (&frame.msg, self.hello_seen) {
            (RendererToBrowser::Hello, false) => self.hello_seen = true,
            (RendererToBrowser::Hello, true) => return Err(Violation::RepeatedHello),
            (other, false) => return Err(Violation::NoHello(other.kind())),
            _ => {}
        }
        match &frame.msg {
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
            RendererToBrowser::Hello
            | RendererToBrowser::Ready { .. }
            | RendererToBrowser::Loading(_)
            | RendererToBrowser::HistoryChanged { .. }
            | RendererToBrowser::Pong { .. }
            | RendererToBrowser::FormEdited(_)
            | RendererToBrowser::PlayingAudio(_) => {}
        }
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
    // The URL parser strips or tolerates some control characters (a NUL, a trailing newline), but
    // the raw string is what the browser keeps, shows and hands to the next renderer.
    if url.chars().any(char::is_control) {
        return Err(Violation::BadUrl(truncated(url)));
    }
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

/// A token bucket: up to `burst` at once, refilled at `per_second`. The browser's budgets are all
/// one of these: a renderer's messages and bytes ([`Validator`]), the tabs pages may open, the
/// tabs that may be opened at all, and the URLs a second launch may hand over.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: f64, per_second: f64, now: Instant) -> Self {
        Self {
            burst,
            per_second,
            tokens: burst,
            last: now,
        }
    }

    /// A bucket of `burst` tokens that gains one every `interval`.
    pub fn with_budget(burst: u32, interval: Duration, now: Instant) -> Self {
        Self::new(f64::from(burst), 1.0 / interval.as_secs_f64(), now)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
    }

    /// Takes `n` tokens if there are that many; otherwise takes none.
    pub fn take(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens < n {
            return false;
        }
        self.tokens -= n;
        true
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        self.take(1.0, now)
    }

    /// How long until `n` tokens are there (zero if they are now; `None` if `n` is more than the
    /// bucket holds, so waiting would not help).
    pub fn wait_for(&mut self, n: f64, now: Instant) -> Option<Duration> {
        if n > self.burst {
            return None;
        }
        self.refill(now);
        let missing = (n - self.tokens).max(0.0);
        Some(Duration::from_secs_f64(missing / self.per_second))
    }
}

/// Limits how many tabs pages may open: a burst, then one per interval. The browser keeps one
/// per renderer ([`POPUP_BURST`], [`POPUP_INTERVAL`]) and one for all renderers together
/// ([`ALL_POPUPS_BURST`], [`ALL_POPUPS_INTERVAL`]), since the tabs a page opens can open tabs
/// in turn. Requests beyond it are dropped, not treated as violations, since an ordinary page can
/// call `window.open` in a loop; but renderers cannot fork-bomb the machine with tabs (each costs
/// three processes).
pub type PopupLimiter = TokenBucket;

pub const POPUP_BURST: u32 = 5;
pub const POPUP_INTERVAL: Duration = Duration::from_secs(2);
pub const ALL_POPUPS_BURST: u32 = 20;
pub const ALL_POPUPS_INTERVAL: Duration = Duration::from_secs(3);

/// The browser-wide budget of new tabs, whoever asks (the control socket's `new_tab`, a second
/// launch's hand-over, Ctrl+T, the chrome's + button, pages): [`SPAWN_BURST`] at once, then one
/// every [`SPAWN_INTERVAL`]. Every new tab starts a renderer, and with it WebKit's web and
/// network processes; 227 of them at once left the browser unable to answer its control socket.
/// Starting a renderer also costs the UI thread a few tens of milliseconds (fork, exec, the
/// sandbox), so the burst also bounds how long one batch of requests can hold it. A person
/// holding Ctrl+T down gets 12 tabs at once, then two a second; the tests' and the benchmarks'
/// scripted sessions open at most ten in a row. Tabs that already exist are not counted when they
/// get a renderer again (activating a discarded tab, reloading a crashed one): there are no more
/// of those than there are tabs.
pub const SPAWN_BURST: u32 = 12;
pub const SPAWN_INTERVAL: Duration = Duration::from_millis(500);

/// How long a renderer may take to say Hello before it is ended.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a renderer may leave a ping unanswered before its tab is marked unresponsive.
pub const PING_TIMEOUT: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Validator::check`] with the frame's real size on the wire.
    trait CheckAt {
        fn check_at(&mut self, frame: &UpFrame, now: Instant) -> Result<(), Violation>;
    }

    impl CheckAt for Validator {
        fn check_at(&mut self, frame: &UpFrame, now: Instant) -> Result<(), Violation> {
            let len =
                warren_ipc::frame::encode(frame).map_or(warren_ipc::MAX_FRAME_LEN, |b| b.len());
            self.check(frame, len, now)
        }
    }

    fn frame(tab: u64, msg: RendererToBrowser) -> UpFrame {
        UpFrame {
            tab_id: TabId(tab),
            msg,
        }
    }

    fn hello() -> RendererToBrowser {
        RendererToBrowser::Hello
    }

    fn ready_validator(now: Instant) -> Validator {
        let mut v = Validator::new(TabId(1), now);
        v.check_at(&frame(1, hello()), now).unwrap();
        v
    }

    #[test]
    fn hello_must_come_first_and_once() {
        let now = Instant::now();
        let mut v = Validator::new(TabId(1), now);
        assert_eq!(
            v.check_at(&frame(1, RendererToBrowser::Ready { landlock: true }), now),
            Err(Violation::NoHello("Ready"))
        );
        let mut v = ready_validator(now);
        assert_eq!(
            v.check_at(&frame(1, hello()), now),
            Err(Violation::RepeatedHello)
        );
    }

    #[test]
    fn wrong_tab_is_refused() {
        let now = Instant::now();
        let mut v = ready_validator(now);
        assert_eq!(
            v.check_at(&frame(2, RendererToBrowser::Ready { landlock: true }), now),
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
                v.check_at(
                    &frame(1, RendererToBrowser::UrlChanged { url: ok.into() }),
                    now
                ),
                Ok(()),
                "{ok}"
            );
        }
        for bad in ["javascript:alert(1)", "chrome://settings", "not a url", ""] {
            assert!(
                v.check_at(
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
            v.check_at(&frame(1, RendererToBrowser::UrlChanged { url: long }), now),
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
            .check_at(&frame(1, RendererToBrowser::TitleChanged { title }), now)
            .is_err());
        let result = Err("x".repeat(warren_ipc::MAX_EVAL_RESULT_LEN + 1));
        assert!(v
            .check_at(
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
            v.check_at(&frame(1, RendererToBrowser::HistoryState(ok.clone())), now),
            Ok(())
        );
        let bad = history(&["https://a.example/", "javascript:alert(1)"]);
        assert!(v
            .check_at(&frame(1, RendererToBrowser::HistoryState(bad)), now)
            .is_err());
        let mut out_of_range = ok.clone();
        out_of_range.current = 5;
        assert!(v
            .check_at(
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
            v.check_at(
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
            v.check_at(&frame(1, RendererToBrowser::FormEdited(true)), now),
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
            v.check_at(&frame(1, RendererToBrowser::Pong { seq: i }), now)
                .unwrap();
        }
        // Thousands in the same instant do not.
        let now = start + Duration::from_secs(30);
        let err = (0..10_000)
            .map(|i| v.check_at(&frame(1, RendererToBrowser::Pong { seq: i }), now))
            .find(Result::is_err);
        assert_eq!(err, Some(Err(Violation::Flood(RATE_PER_SECOND))));
    }

    /// A history report of about `kib` KiB on the wire: WebKit's state plus entries.
    fn history_of(kib: usize) -> warren_ipc::SessionHistory {
        use warren_ipc::{HistoryEntry, SessionHistory};
        let state = (kib * 1024).min(warren_ipc::MAX_WEBKIT_STATE_LEN);
        let rest = kib * 1024 - state;
        let entries = (rest / 8192).clamp(1, warren_ipc::MAX_HISTORY_ENTRIES);
        SessionHistory {
            entries: (0..entries)
                .map(|i| HistoryEntry {
                    url: format!("https://a.example/{i}?{}", "q".repeat(8000)),
                    title: format!("page {i}"),
                })
                .collect(),
            current: 0,
            webkit_state: vec![7; state],
        }
    }

    fn long_url(len: usize) -> String {
        let base = "https://a.example/";
        format!("{base}{}", "a".repeat(len - base.len()))
    }

    fn wire(f: &UpFrame) -> usize {
        warren_ipc::frame::encode(f).unwrap().len()
    }

    #[test]
    fn the_heaviest_honest_renderer_stays_inside_the_byte_budget() {
        let start = Instant::now();
        let mut v = ready_validator(start);
        // A restore's flurry at once: a maximum-size history, a captured state of the same size,
        // and four 64 KiB URLs (data: URLs are that long).
        let history = history_of(1000);
        let big = frame(1, RendererToBrowser::HistoryState(history.clone()));
        assert!(wire(&big) > 900 * 1024, "{}", wire(&big));
        let captured = frame(
            1,
            RendererToBrowser::StateCaptured {
                request: 1,
                history: history.clone(),
                page: warren_ipc::PageState {
                    url: "https://a.example/0".into(),
                    scroll_x: 0.0,
                    scroll_y: 10.0,
                    zoom: 1.0,
                    fields: Vec::new(),
                },
            },
        );
        v.check_at(&big, start).unwrap();
        v.check_at(&captured, start).unwrap();
        for _ in 0..4 {
            let url = long_url(warren_ipc::MAX_URL_LEN);
            v.check_at(&frame(1, RendererToBrowser::UrlChanged { url }), start)
                .unwrap();
        }
        // Then two minutes of the worst steady traffic: a maximum-size history every second, and
        // 30 title changes, 10 URL changes of 8 KiB and a pong per second.
        let mut sent = 0usize;
        for second in 1..=120u64 {
            let at = |ms: u64| start + Duration::from_millis(second * 1000 + ms);
            v.check_at(&big, at(0)).unwrap();
            sent += wire(&big);
            for i in 0..30u64 {
                let title = format!("tick {second}.{i} {}", "t".repeat(100));
                v.check_at(
                    &frame(1, RendererToBrowser::TitleChanged { title }),
                    at(i * 33),
                )
                .unwrap();
            }
            for i in 0..10u64 {
                let url = long_url(8 * 1024);
                v.check_at(
                    &frame(1, RendererToBrowser::UrlChanged { url }),
                    at(i * 100 + 5),
                )
                .unwrap();
            }
            v.check_at(&frame(1, RendererToBrowser::Pong { seq: second }), at(500))
                .unwrap();
        }
        assert!(sent > 100 * 1024 * 1024, "{sent}");
    }

    #[test]
    fn a_byte_flood_within_the_message_budget_is_cut_off_within_a_second() {
        let start = Instant::now();
        let mut v = ready_validator(start);
        // 900 frames of 64 KiB a second: under the message budget, 56 MiB/s of bytes.
        let url = long_url(warren_ipc::MAX_URL_LEN);
        let flood = frame(1, RendererToBrowser::UrlChanged { url });
        assert!(wire(&flood) >= 64 * 1024);
        let mut cut = None;
        for i in 0..(900 * 10u64) {
            let now = start + Duration::from_micros(i * 1_000_000 / 900);
            if let Err(e) = v.check_at(&flood, now) {
                cut = Some((now - start, e));
                break;
            }
        }
        let (after, e) = cut.expect("the flood was never cut off");
        assert_eq!(e, Violation::ByteFlood(BYTES_PER_SECOND));
        assert!(
            after < Duration::from_secs(1),
            "cut off only after {after:?}"
        );
        assert!(e.to_string().contains("2048 KiB per second"), "{e}");
        // The same number of small messages would have passed the message budget.
        let mut w = ready_validator(start);
        for i in 0..(900 * 10u64) {
            let now = start + Duration::from_micros(i * 1_000_000 / 900);
            w.check_at(&frame(1, RendererToBrowser::Pong { seq: i }), now)
                .unwrap();
        }
    }

    #[test]
    fn script_results_are_not_counted_in_bytes() {
        let now = Instant::now();
        let mut v = ready_validator(now);
        // Forty answers of 512 KiB (20 MiB) at once: each was asked for (the reader checks).
        for request in 0..40 {
            let result = Ok("r".repeat(warren_ipc::MAX_EVAL_RESULT_LEN));
            v.check_at(
                &frame(1, RendererToBrowser::EvalResult { request, result }),
                now,
            )
            .unwrap();
        }
        // Unsolicited bytes still are.
        let url = long_url(warren_ipc::MAX_URL_LEN);
        let refused = (0..1000)
            .map(|_| {
                v.check_at(
                    &frame(1, RendererToBrowser::UrlChanged { url: url.clone() }),
                    now,
                )
            })
            .position(|r| r.is_err());
        assert_eq!(
            refused,
            Some((BYTE_BURST as usize) / wire(&frame(1, RendererToBrowser::UrlChanged { url })))
        );
    }

    #[test]
    fn spawn_budget_is_a_burst_then_a_steady_rate_and_says_when_to_retry() {
        let t0 = Instant::now();
        let mut b = TokenBucket::with_budget(SPAWN_BURST, SPAWN_INTERVAL, t0);
        // Ctrl+T held down (auto-repeat, 25 a second): the first SPAWN_BURST open at once...
        let mut opened = Vec::new();
        for i in 0..250u64 {
            let now = t0 + Duration::from_millis(i * 40);
            if b.allow(now) {
                opened.push(now - t0);
            }
        }
        assert!(opened[..SPAWN_BURST as usize]
            .iter()
            .all(|at| *at < Duration::from_secs(1)));
        // ... then about two a second: 10 s of it add about 19 more (the burst's own second
        // refilled two).
        assert!(
            (SPAWN_BURST as usize + 17..=SPAWN_BURST as usize + 22).contains(&opened.len()),
            "{}",
            opened.len()
        );
        let now = t0 + Duration::from_secs(10);
        let wait = b.wait_for(1.0, now).unwrap();
        assert!(wait <= SPAWN_INTERVAL, "{wait:?}");
        assert!(!b.allow(now) || wait.is_zero());
        assert!(b.allow(now + SPAWN_INTERVAL));
        assert_eq!(b.wait_for(f64::from(SPAWN_BURST) + 1.0, now), None);
        // A clock that goes backwards adds nothing.
        let mut c =
            TokenBucket::with_budget(1, Duration::from_secs(1), t0 + Duration::from_secs(5));
        assert!(c.allow(t0 + Duration::from_secs(5)));
        assert!(!c.allow(t0));
        assert!(!c.allow(t0 + Duration::from_millis(5500)));
        assert!(c.allow(t0 + Duration::from_secs(6)));
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
}
