//! The up channel: frames to the browser on descriptor 3, with the limits, de-duplication and rate limits the browser expects.
//!
//! The browser treats this channel as hostile input and ends a renderer that breaks its rules, so
//! this module keeps every message inside them: titles are cut to [`MAX_TITLE_LEN`] on a character
//! boundary, URLs longer than [`MAX_URL_LEN`] are never sent, bursts of title and URL changes
//! (a page can change `document.title` in a loop) are coalesced, `Loading`, `HistoryChanged`,
//! `FormEdited` and `PlayingAudio` are sent only when they change, and new-tab requests are rate
//! limited.
//!
//! All writes happen on the GTK main thread (the `Hello` frame is written before the main loop
//! exists, on the same thread). A write that fails means the browser is gone; the writer then
//! reports it once through the callback given to [`Up::new`] and drops every later message.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use warren_ipc::frame;
use warren_ipc::{RendererToBrowser, TabId, UpFrame, MAX_TITLE_LEN, MAX_URL_LEN};

/// The shortest interval between two `TitleChanged` (or two `UrlChanged`) frames; changes that
/// arrive faster are merged and the latest value is sent when the interval has passed.
pub const COALESCE_INTERVAL: Duration = Duration::from_millis(50);

/// How many `OpenTab` requests a page may make per [`OPEN_TAB_WINDOW`]; more are dropped.
pub const OPEN_TAB_BURST: usize = 5;

/// The window over which [`OPEN_TAB_BURST`] is counted.
pub const OPEN_TAB_WINDOW: Duration = Duration::from_secs(1);

/// Cuts `title` to at most [`MAX_TITLE_LEN`] bytes without splitting a character.
pub fn truncate_title(title: &str) -> &str {
    truncate_on_char_boundary(title, MAX_TITLE_LEN)
}

/// Cuts `text` to at most `max` bytes without splitting a character.
pub use warren_ipc::truncate_str as truncate_on_char_boundary;

/// Whether a URL may be sent up at all.
pub fn url_fits(url: &str) -> bool {
    url.len() <= MAX_URL_LEN
}

/// One kind of message whose bursts are merged: the last value sent, when, and the newest value
/// still waiting for its turn.
#[derive(Default)]
struct Coalesced {
    last_value: Option<String>,
    last_sent: Option<Instant>,
    pending: Option<String>,
    flush_scheduled: bool,
}

/// What to do with a new value of a coalesced kind.
#[derive(Debug, PartialEq, Eq)]
enum CoalesceStep {
    /// The value equals what the browser already has.
    Unchanged,
    /// Send it now.
    SendNow,
    /// Keep it; a flush is already scheduled.
    Wait,
    /// Keep it and schedule a flush after this delay.
    ScheduleFlush(Duration),
}

impl Coalesced {
    fn offer(&mut self, value: String, now: Instant) -> CoalesceStep {
        if self.pending.is_none() && self.last_value.as_deref() == Some(value.as_str()) {
            return CoalesceStep::Unchanged;
        }
        let since = self.last_sent.map(|t| now.saturating_duration_since(t));
        match since {
            Some(since) if since < COALESCE_INTERVAL => {
                self.pending = Some(value);
                if self.flush_scheduled {
                    CoalesceStep::Wait
                } else {
                    self.flush_scheduled = true;
                    CoalesceStep::ScheduleFlush(COALESCE_INTERVAL - since)
                }
            }
            _ => {
                self.pending = None;
                self.last_value = Some(value);
                self.last_sent = Some(now);
                CoalesceStep::SendNow
            }
        }
    }

    /// Takes the pending value if it differs from what was last sent.
    fn take_pending(&mut self, now: Instant) -> Option<String> {
        let value = self.pending.take()?;
        if self.last_value.as_deref() == Some(value.as_str()) {
            return None;
        }
        self.last_value = Some(value.clone());
        self.last_sent = Some(now);
        Some(value)
    }
}

/// Counts recent events in a sliding window.
#[derive(Default)]
struct RateLimit {
    recent: Vec<Instant>,
}

impl RateLimit {
    fn allow(&mut self, now: Instant, burst: usize, window: Duration) -> bool {
        self.recent
            .retain(|t| now.saturating_duration_since(*t) < window);
        if self.recent.len() >= burst {
            return false;
        }
        self.recent.push(now);
        true
    }
}

struct Inner {
    stream: Option<UnixStream>,
    title: Coalesced,
    url: Coalesced,
    loading: Option<bool>,
    history: Option<(bool, bool)>,
    /// What the browser was last told; it assumes false until told otherwise.
    form_edited: bool,
    playing_audio: bool,
    open_tab: RateLimit,
}

/// The writer of up frames. Cheap to share: clone the `Rc`.
pub struct Up {
    tab_id: TabId,
    inner: RefCell<Inner>,
    on_gone: Box<dyn Fn(&str)>,
    gone: Cell<bool>,
}

impl Up {
    /// Wraps the up socket. `on_gone` runs once, on the first failed write, with the reason.
    pub fn new(tab_id: TabId, stream: UnixStream, on_gone: Box<dyn Fn(&str)>) -> Rc<Self> {
        Rc::new(Self {
            tab_id,
            inner: RefCell::new(Inner {
                stream: Some(stream),
                title: Coalesced::default(),
                url: Coalesced::default(),
                loading: None,
                history: None,
                form_edited: false,
                playing_audio: false,
                open_tab: RateLimit::default(),
            }),
            on_gone,
            gone: Cell::new(false),
        })
    }

    /// The tab every frame carries.
    pub fn tab_id(&self) -> TabId {
        self.tab_id
    }

    /// Whether a write has failed (the browser is gone).
    #[cfg(test)]
    pub fn is_gone(&self) -> bool {
        self.gone.get()
    }

    /// Sends a message now, after any coalesced title or URL still waiting, so the browser sees
    /// changes in the order they happened.
    pub fn send(self: &Rc<Self>, msg: RendererToBrowser) {
        self.flush_pending();
        self.write(&msg);
    }

    /// Reports the page title; bursts are merged.
    pub fn title_changed(self: &Rc<Self>, title: &str) {
        let title = truncate_title(title).to_owned();
        let step = self
            .inner
            .borrow_mut()
            .title
            .offer(title.clone(), Instant::now());
        self.apply(step, RendererToBrowser::TitleChanged { title });
    }

    /// Reports the tab's URL; bursts are merged and over-long URLs are not sent.
    pub fn url_changed(self: &Rc<Self>, url: &str) {
        if !url_fits(url) {
            log::warn!(target: "renderer", "not reporting a URL of {} bytes (limit {MAX_URL_LEN})", url.len());
            return;
        }
        let step = self
            .inner
            .borrow_mut()
            .url
            .offer(url.to_owned(), Instant::now());
        self.apply(
            step,
            RendererToBrowser::UrlChanged {
                url: url.to_owned(),
            },
        );
    }

    /// Sends `msg` unless the field `slot` picks already holds `value`, and records `value` there.
    fn send_on_change<T: PartialEq>(
        self: &Rc<Self>,
        slot: impl FnOnce(&mut Inner) -> &mut T,
        value: T,
        msg: RendererToBrowser,
    ) {
        let changed = {
            let mut inner = self.inner.borrow_mut();
            let field = slot(&mut inner);
            let changed = *field != value;
            *field = value;
            changed
        };
        if changed {
            self.send(msg);
        }
    }

    /// Reports whether the page is loading, once per change.
    pub fn loading(self: &Rc<Self>, loading: bool) {
        self.send_on_change(
            |i| &mut i.loading,
            Some(loading),
            RendererToBrowser::Loading(loading),
        );
    }

    /// Reports the history buttons' state, once per change.
    pub fn history(self: &Rc<Self>, can_go_back: bool, can_go_forward: bool) {
        self.send_on_change(
            |i| &mut i.history,
            Some((can_go_back, can_go_forward)),
            RendererToBrowser::HistoryChanged {
                can_go_back,
                can_go_forward,
            },
        );
    }

    /// Reports whether the page holds unsubmitted form edits, once per change.
    pub fn form_edited(self: &Rc<Self>, edited: bool) {
        self.send_on_change(
            |i| &mut i.form_edited,
            edited,
            RendererToBrowser::FormEdited(edited),
        );
    }

    /// Reports whether the page plays audio, once per change.
    pub fn playing_audio(self: &Rc<Self>, playing: bool) {
        self.send_on_change(
            |i| &mut i.playing_audio,
            playing,
            RendererToBrowser::PlayingAudio(playing),
        );
    }

    /// Asks the browser for a new tab, unless the URL is too long or the page asked too often.
    pub fn open_tab(self: &Rc<Self>, url: &str) {
        if !url_fits(url) {
            log::warn!(target: "renderer", "dropping a new-window request with a URL of {} bytes", url.len());
            return;
        }
        let allowed =
            self.inner
                .borrow_mut()
                .open_tab
                .allow(Instant::now(), OPEN_TAB_BURST, OPEN_TAB_WINDOW);
        if !allowed {
            log::warn!(target: "renderer", "dropping a new-window request: more than {OPEN_TAB_BURST} per second");
            return;
        }
        self.send(RendererToBrowser::OpenTab {
            url: url.to_owned(),
        });
    }

    fn apply(self: &Rc<Self>, step: CoalesceStep, msg: RendererToBrowser) {
        match step {
            CoalesceStep::Unchanged | CoalesceStep::Wait => {}
            CoalesceStep::SendNow => self.send(msg),
            CoalesceStep::ScheduleFlush(delay) => {
                let up = Rc::clone(self);
                glib::timeout_add_local_once(delay, move || up.flush_pending());
            }
        }
    }

    /// Sends the waiting URL, then the waiting title, if any.
    fn flush_pending(&self) {
        let now = Instant::now();
        let (url, title) = {
            let mut inner = self.inner.borrow_mut();
            inner.url.flush_scheduled = false;
            inner.title.flush_scheduled = false;
            (inner.url.take_pending(now), inner.title.take_pending(now))
        };
        if let Some(url) = url {
            self.write(&RendererToBrowser::UrlChanged { url });
        }
        if let Some(title) = title {
            self.write(&RendererToBrowser::TitleChanged { title });
        }
    }

    fn write(&self, msg: &RendererToBrowser) {
        let bytes = match frame::encode(&UpFrame {
            tab_id: self.tab_id,
            msg: msg.clone(),
        }) {
            Ok(bytes) => bytes,
            Err(e) => {
                log::error!(target: "renderer", "not sending {}: {e}", msg.kind());
                return;
            }
        };
        let result = {
            let mut inner = self.inner.borrow_mut();
            match inner.stream.as_mut() {
                Some(stream) => stream.write_all(&bytes),
                None => return,
            }
        };
        if let Err(e) = result {
            self.inner.borrow_mut().stream = None;
            if !self.gone.replace(true) {
                (self.on_gone)(&format!(
                    "writing {} to the browser failed: {e}",
                    msg.kind()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cut_on_a_char_boundary() {
        let title = "é".repeat(MAX_TITLE_LEN);
        let cut = truncate_title(&title);
        assert!(cut.len() <= MAX_TITLE_LEN);
        assert_eq!(
            cut.len(),
            MAX_TITLE_LEN,
            "two-byte characters fill the limit exactly"
        );
        let odd = format!("a{}", "é".repeat(MAX_TITLE_LEN));
        let cut = truncate_title(&odd);
        assert_eq!(
            cut.len(),
            MAX_TITLE_LEN - 1,
            "a split character is dropped whole"
        );
        assert_eq!(truncate_title("short"), "short");
    }

    #[test]
    fn coalescing_sends_first_merges_burst_and_skips_repeats() {
        let mut c = Coalesced::default();
        let t0 = Instant::now();
        assert_eq!(c.offer("a".into(), t0), CoalesceStep::SendNow);
        assert_eq!(c.offer("a".into(), t0), CoalesceStep::Unchanged);
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(
            c.offer("b".into(), t1),
            CoalesceStep::ScheduleFlush(Duration::from_millis(40))
        );
        assert_eq!(c.offer("c".into(), t1), CoalesceStep::Wait);
        assert_eq!(c.take_pending(t0 + COALESCE_INTERVAL), Some("c".into()));
        assert_eq!(c.take_pending(t0 + COALESCE_INTERVAL), None);
        let t2 = t0 + Duration::from_secs(1);
        assert_eq!(c.offer("d".into(), t2), CoalesceStep::SendNow);
    }

    #[test]
    fn a_burst_that_returns_to_the_sent_value_sends_nothing() {
        let mut c = Coalesced::default();
        let t0 = Instant::now();
        assert_eq!(c.offer("a".into(), t0), CoalesceStep::SendNow);
        assert!(matches!(
            c.offer("b".into(), t0),
            CoalesceStep::ScheduleFlush(_)
        ));
        c.flush_scheduled = false;
        assert!(matches!(
            c.offer("a".into(), t0),
            CoalesceStep::ScheduleFlush(_)
        ));
        assert_eq!(c.take_pending(t0 + COALESCE_INTERVAL), None);
    }

    #[test]
    fn open_tab_rate_limit() {
        let mut r = RateLimit::default();
        let t0 = Instant::now();
        for _ in 0..OPEN_TAB_BURST {
            assert!(r.allow(t0, OPEN_TAB_BURST, OPEN_TAB_WINDOW));
        }
        assert!(!r.allow(t0, OPEN_TAB_BURST, OPEN_TAB_WINDOW));
        assert!(r.allow(t0 + OPEN_TAB_WINDOW, OPEN_TAB_BURST, OPEN_TAB_WINDOW));
    }

    #[test]
    fn form_and_audio_states_are_sent_on_changes_only() {
        use std::io::Read;
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let up = Up::new(TabId(4), ours, Box::new(|_| {}));
        // The browser assumes false: a first false says nothing new.
        up.form_edited(false);
        up.playing_audio(false);
        up.form_edited(true);
        up.form_edited(true);
        up.playing_audio(true);
        up.form_edited(false);
        up.playing_audio(true);
        drop(up);
        let mut bytes = Vec::new();
        theirs.read_to_end(&mut bytes).unwrap();
        let mut d = frame::FrameDecoder::new();
        d.push(&bytes);
        let mut msgs = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            msgs.push(f.msg);
        }
        assert_eq!(
            msgs,
            vec![
                RendererToBrowser::FormEdited(true),
                RendererToBrowser::PlayingAudio(true),
                RendererToBrowser::FormEdited(false),
            ]
        );
    }

    #[test]
    fn frames_reach_the_peer_and_a_closed_peer_is_reported_once() {
        use std::io::Read;
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let reasons = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&reasons);
        let up = Up::new(
            TabId(4),
            ours,
            Box::new(move |r| sink.borrow_mut().push(r.to_owned())),
        );
        up.loading(true);
        up.loading(true);
        up.history(false, false);
        let mut buf = vec![0u8; 256];
        let n = theirs.read(&mut buf).unwrap();
        let mut d = frame::FrameDecoder::new();
        d.push(&buf[..n]);
        let first = d.next_frame().unwrap().unwrap();
        assert_eq!(
            first,
            UpFrame {
                tab_id: TabId(4),
                msg: RendererToBrowser::Loading(true)
            }
        );
        let second = d.next_frame().unwrap().unwrap();
        assert_eq!(
            second.msg,
            RendererToBrowser::HistoryChanged {
                can_go_back: false,
                can_go_forward: false
            }
        );
        assert_eq!(
            d.next_frame().unwrap(),
            None,
            "the repeated Loading(true) was not sent"
        );
        drop(theirs);
        up.send(RendererToBrowser::Pong { seq: 1 });
        up.send(RendererToBrowser::Pong { seq: 2 });
        assert!(up.is_gone());
        assert_eq!(reasons.borrow().len(), 1);
    }
}
