//! The tab's state as the browser keeps it: the back/forward list and the current page, kept inside the browser's limits and made to fit one up frame.
//!
//! Nothing here touches GTK or WebKit: the view's list arrives as plain [`ListEntry`] values and
//! the page as the JSON text of the capture script, so every rule is tested directly. The
//! browser ends a renderer that breaks its rules (a URL of a scheme a tab may not show, a field
//! over its limit, a frame over [`MAX_FRAME_LEN`](warren_ipc::MAX_FRAME_LEN)), so these functions cut, drop or fall back
//! rather than fail: a capture always has an answer.

use std::ops::Range;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use warren_ipc::{
    frame, FieldValue, FormField, HistoryEntry, PageState, RendererToBrowser, SessionHistory,
    TabId, UpFrame, MAX_FIELD_VALUE_LEN, MAX_FORM_FIELDS, MAX_HISTORY_ENTRIES,
    MAX_SELECTED_OPTIONS, MAX_TITLE_LEN, MAX_URL_LEN, MAX_WEBKIT_STATE_LEN, SHOWABLE_SCHEMES,
};

use crate::up::truncate_on_char_boundary;

/// The page a history falls back to when not even its current entry may be reported.
pub const BLANK_URL: &str = "about:blank";

/// The shortest interval between two unasked `HistoryState` messages.
pub const HISTORY_INTERVAL: Duration = Duration::from_secs(1);

/// The largest scroll offset the browser accepts, in CSS pixels.
const MAX_SCROLL: f64 = 1.0e8;

/// The largest zoom level the browser accepts.
const MAX_ZOOM: f64 = 100.0;

/// One entry of the view's back/forward list, as WebKit reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub url: String,
    pub title: String,
}

/// Whether the browser accepts `url` in a history or a page state: it is short enough, parses,
/// and names a scheme a tab may show (the browser's own check, so a renderer never reports what
/// would end it).
pub fn reportable_url(url: &str) -> bool {
    url.len() <= MAX_URL_LEN
        && url::Url::parse(url).is_ok_and(|parsed| SHOWABLE_SCHEMES.contains(&parsed.scheme()))
}

/// The part of a list of `len` entries, whose current entry is `current`, that keeps at most
/// `max` entries (at least one) around the current one. Back entries are worth more than
/// forward ones (Back is pressed far more often), so forward entries get at most a quarter of
/// the room unless the back list leaves some over.
pub fn history_window(len: usize, current: usize, max: usize) -> Range<usize> {
    if len == 0 {
        return 0..0;
    }
    let current = current.min(len - 1);
    let room = max.max(1) - 1;
    let back = current;
    let forward = len - 1 - current;
    let forward_keep = forward.min(room / 4);
    let back_keep = back.min(room - forward_keep);
    let forward_keep = forward.min(room - back_keep);
    current - back_keep..current + forward_keep + 1
}

/// A history for the browser, and whether it had to fall back to a URL that is not in the view's
/// list (the list was empty, or its current entry may not be reported).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltHistory {
    pub history: SessionHistory,
    pub fell_back: bool,
}

/// Builds the history the browser is sent from the view's back/forward list (oldest first, the
/// current entry at `current`) and WebKit's serialized session state.
///
/// * An empty list (nothing committed yet) gives one entry: `fallback_url`, or `about:blank`
///   if even that may not be reported.
/// * If any entry may not be reported (scheme, length), only the current entry is sent, and no
///   WebKit state (it would restore the entries the browser was not told about).
/// * Over [`MAX_HISTORY_ENTRIES`], a window around the current entry is kept
///   ([`history_window`]), again without WebKit state, whose list would no longer match.
/// * A WebKit state over [`MAX_WEBKIT_STATE_LEN`] is dropped.
/// * Titles are cut to [`MAX_TITLE_LEN`].
pub fn build_history(
    list: &[ListEntry],
    current: usize,
    webkit_state: Vec<u8>,
    fallback_url: &str,
) -> BuiltHistory {
    let single = |url: &str, title: &str| SessionHistory {
        entries: vec![HistoryEntry {
            url: url.to_owned(),
            title: truncate_on_char_boundary(title, MAX_TITLE_LEN).to_owned(),
        }],
        current: 0,
        webkit_state: Vec::new(),
    };
    let fallback = || {
        let url = if reportable_url(fallback_url) {
            fallback_url
        } else {
            BLANK_URL
        };
        BuiltHistory {
            history: single(url, ""),
            fell_back: true,
        }
    };
    let Some(current_entry) = list.get(current) else {
        return fallback();
    };
    if let Some(bad) = list.iter().position(|e| !reportable_url(&e.url)) {
        log::info!(
            target: "renderer",
            "history entry {bad} has a URL the browser does not keep ({} bytes, {}); reporting the current entry only",
            list[bad].url.len(),
            scheme_of(&list[bad].url)
        );
        if !reportable_url(&current_entry.url) {
            return fallback();
        }
        return BuiltHistory {
            history: single(&current_entry.url, &current_entry.title),
            fell_back: false,
        };
    }
    let window = history_window(list.len(), current, MAX_HISTORY_ENTRIES);
    let trimmed = window.len() < list.len();
    let keep_state = !trimmed && webkit_state.len() <= MAX_WEBKIT_STATE_LEN;
    if !keep_state && !webkit_state.is_empty() {
        log::info!(
            target: "renderer",
            "not reporting WebKit's session state ({} bytes{}): the tab restores from its URLs",
            webkit_state.len(),
            if trimmed { ", history trimmed" } else { "" }
        );
    }
    BuiltHistory {
        history: SessionHistory {
            entries: list[window.clone()]
                .iter()
                .map(|e| HistoryEntry {
                    url: e.url.clone(),
                    title: truncate_on_char_boundary(&e.title, MAX_TITLE_LEN).to_owned(),
                })
                .collect(),
            current: (current - window.start) as u32,
            webkit_state: if keep_state { webkit_state } else { Vec::new() },
        },
        fell_back: false,
    }
}

/// The scheme of a URL for a log line, never the URL itself (it may be huge or private).
fn scheme_of(url: &str) -> &str {
    url.split_once(':')
        .map(|(scheme, _)| truncate_on_char_boundary(scheme, 20))
        .unwrap_or("no scheme")
}

/// Whether a message fits in one up frame; the message comes back either way.
fn fits(tab_id: TabId, msg: RendererToBrowser) -> (bool, RendererToBrowser) {
    let frame = UpFrame { tab_id, msg };
    (frame::encode(&frame).is_ok(), frame.msg)
}

/// Keeps half the entries of a history (at least the current one), around the current entry.
fn halve(history: &mut SessionHistory) {
    let len = history.entries.len();
    let window = history_window(len, history.current as usize, len / 2);
    history.current -= window.start as u32;
    history.entries.truncate(window.end);
    history.entries.drain(..window.start);
}

/// What was left out of a message to make it fit one frame, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shrunk {
    pub webkit_state: bool,
    pub fields: bool,
    pub entries: usize,
}

impl Shrunk {
    /// Whether anything was left out.
    pub fn any(&self) -> bool {
        self.webkit_state || self.fields || self.entries > 0
    }
}

/// Makes a `StateCaptured` answer fit one up frame (under [`MAX_FRAME_LEN`](warren_ipc::MAX_FRAME_LEN)): drops WebKit's
/// state first, then the form fields, then history entries (half at a time, around the current
/// entry). One entry and a page URL always fit, so there is always an answer.
pub fn fit_state_captured(
    tab_id: TabId,
    request: u64,
    mut history: SessionHistory,
    mut page: PageState,
) -> (RendererToBrowser, Shrunk) {
    let mut shrunk = Shrunk::default();
    loop {
        let (ok, msg) = fits(
            tab_id,
            RendererToBrowser::StateCaptured {
                request,
                history,
                page,
            },
        );
        let RendererToBrowser::StateCaptured {
            history: h,
            page: p,
            ..
        } = msg
        else {
            return (msg, shrunk);
        };
        (history, page) = (h, p);
        if ok || !shrink_history(&mut history, &mut shrunk, &mut page.fields) {
            return (
                RendererToBrowser::StateCaptured {
                    request,
                    history,
                    page,
                },
                shrunk,
            );
        }
    }
}

/// Makes an unasked `HistoryState` fit one up frame: drops WebKit's state first, then history
/// entries, as [`fit_state_captured`] does.
pub fn fit_history_state(
    tab_id: TabId,
    mut history: SessionHistory,
) -> (RendererToBrowser, Shrunk) {
    let mut shrunk = Shrunk::default();
    loop {
        let (ok, msg) = fits(tab_id, RendererToBrowser::HistoryState(history));
        let RendererToBrowser::HistoryState(h) = msg else {
            return (msg, shrunk);
        };
        history = h;
        if ok || !shrink_history(&mut history, &mut shrunk, &mut Vec::new()) {
            return (RendererToBrowser::HistoryState(history), shrunk);
        }
    }
}

/// One step of shrinking: WebKit's state, else the fields, else half the entries. False when
/// nothing is left to drop.
fn shrink_history(
    history: &mut SessionHistory,
    shrunk: &mut Shrunk,
    fields: &mut Vec<FormField>,
) -> bool {
    if !history.webkit_state.is_empty() {
        history.webkit_state = Vec::new();
        shrunk.webkit_state = true;
    } else if !fields.is_empty() {
        fields.clear();
        shrunk.fields = true;
    } else if history.entries.len() > 1 {
        let before = history.entries.len();
        halve(history);
        shrunk.entries += before - history.entries.len();
    } else {
        return false;
    }
    true
}

/// A scroll offset the browser accepts: finite and within [`MAX_SCROLL`], else 0.
pub fn sane_scroll(offset: f64) -> f64 {
    if offset.is_finite() && offset.abs() <= MAX_SCROLL {
        offset
    } else {
        0.0
    }
}

/// A zoom level the browser accepts (finite, above 0, at most [`MAX_ZOOM`]), or `None`.
pub fn sane_zoom(zoom: f64) -> Option<f64> {
    (zoom.is_finite() && zoom > 0.0 && zoom <= MAX_ZOOM).then_some(zoom)
}

/// Why the capture script's result was not used. The page still gets an answer, without scroll
/// offset and fields.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("the capture script failed: {0}")]
    Script(String),
    #[error("the capture script's result is not JSON (a bug in capture.js): {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "the capture script's result lacks url, scrollX, scrollY or fields (a bug in capture.js)"
    )]
    Shape,
    #[error("the captured document is not the history's current entry (a navigation was under way); its scroll offset and fields are left out")]
    OtherPage,
}

/// The page state of the history's current entry `url`: the view's `zoom`, and the scroll offset
/// and edited fields from the capture script's JSON (`capture.js`) if it ran in that page.
/// Whatever is wrong with the result (it comes from a page's DOM) is dropped, never a panic:
/// numbers out of range become 0, fields over the limits are left out, at most
/// [`MAX_FORM_FIELDS`] are kept.
pub fn page_state(captured: Result<&str, CaptureError>, url: &str, zoom: f64) -> PageState {
    let mut page = PageState {
        url: url.to_owned(),
        scroll_x: 0.0,
        scroll_y: 0.0,
        zoom: sane_zoom(zoom).unwrap_or(1.0),
        fields: Vec::new(),
    };
    match captured.and_then(|json| parse_capture(json, url)) {
        Ok((scroll_x, scroll_y, fields)) => {
            page.scroll_x = scroll_x;
            page.scroll_y = scroll_y;
            page.fields = fields;
        }
        Err(e) => {
            log::info!(target: "renderer", "page state without scroll offset and fields: {e}")
        }
    }
    page
}

fn parse_capture(json: &str, url: &str) -> Result<(f64, f64, Vec<FormField>), CaptureError> {
    let value: Value = serde_json::from_str(json)?;
    let (Some(captured_url), Some(scroll_x), Some(scroll_y), Some(fields)) = (
        value.get("url").and_then(Value::as_str),
        value.get("scrollX").and_then(Value::as_f64),
        value.get("scrollY").and_then(Value::as_f64),
        value.get("fields").and_then(Value::as_array),
    ) else {
        return Err(CaptureError::Shape);
    };
    if captured_url != url {
        return Err(CaptureError::OtherPage);
    }
    let fields = fields
        .iter()
        .filter_map(form_field)
        .take(MAX_FORM_FIELDS)
        .collect();
    Ok((sane_scroll(scroll_x), sane_scroll(scroll_y), fields))
}

/// One field of the capture script's result: `{index, id, name}` and exactly one of `text`,
/// `checked` or `selected`. `None` for anything else, or a value over its limit.
fn form_field(value: &Value) -> Option<FormField> {
    let index = u32::try_from(value.get("index")?.as_u64()?).ok()?;
    let attribute = |key: &str| {
        let text = value.get(key).and_then(Value::as_str).unwrap_or_default();
        truncate_on_char_boundary(text, MAX_FIELD_VALUE_LEN).to_owned()
    };
    let field_value = match (
        value.get("text"),
        value.get("checked"),
        value.get("selected"),
    ) {
        (Some(Value::String(text)), None, None) if text.len() <= MAX_FIELD_VALUE_LEN => {
            FieldValue::Text(text.clone())
        }
        (None, Some(Value::Bool(checked)), None) => FieldValue::Checked(*checked),
        (None, None, Some(Value::Array(options))) if options.len() <= MAX_SELECTED_OPTIONS => {
            FieldValue::Selected(
                options
                    .iter()
                    .map(|o| o.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect::<Option<Vec<u32>>>()?,
            )
        }
        _ => return None,
    };
    Some(FormField {
        index,
        id: attribute("id"),
        name: attribute("name"),
        value: field_value,
    })
}

/// What `restore.js` gets: the scroll offset and the fields to put back.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RestorePlan<'a> {
    scroll_x: f64,
    scroll_y: f64,
    fields: Vec<RestoreField<'a>>,
}

#[derive(Serialize)]
struct RestoreField<'a> {
    index: u32,
    id: &'a str,
    name: &'a str,
    /// The control kind the field must be (`warrenControlKind` in `form_rules.js`), so a value is
    /// never put into another kind of control (a password field that took its place).
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selected: Option<&'a [u32]>,
}

/// The JSON object `restore.js` reads for `page`, or `None` when there is nothing to restore
/// (no fields, scrolled to the origin).
pub fn restore_plan_json(page: &PageState) -> Option<String> {
    let (scroll_x, scroll_y) = (sane_scroll(page.scroll_x), sane_scroll(page.scroll_y));
    if page.fields.is_empty() && scroll_x == 0.0 && scroll_y == 0.0 {
        return None;
    }
    let fields = page
        .fields
        .iter()
        .take(MAX_FORM_FIELDS)
        .map(|f| {
            let mut field = RestoreField {
                index: f.index,
                id: &f.id,
                name: &f.name,
                kind: "text",
                text: None,
                checked: None,
                selected: None,
            };
            match &f.value {
                FieldValue::Text(text) => field.text = Some(text),
                FieldValue::Checked(checked) => {
                    field.kind = "checked";
                    field.checked = Some(*checked);
                }
                FieldValue::Selected(options) => {
                    field.kind = "select";
                    field.selected = Some(options);
                }
            }
            field
        })
        .collect();
    serde_json::to_string(&RestorePlan {
        scroll_x,
        scroll_y,
        fields,
    })
    .ok()
}

/// How many fields `restore.js` put back, from its JSON result (0 if it is unreadable).
pub fn restored_field_count(json: &str) -> u64 {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v.get("restored").and_then(Value::as_u64))
        .unwrap_or(0)
}

/// Keeps unasked messages at most one per interval, with a trailing send: the state is read when
/// the message goes out, so the latest one always arrives.
#[derive(Debug, Default)]
pub struct Throttle {
    last_sent: Option<Instant>,
    scheduled: bool,
}

/// What to do after a change.
#[derive(Debug, PartialEq, Eq)]
pub enum ThrottleStep {
    /// Send now.
    SendNow,
    /// Send when this delay has passed, then call [`Throttle::fired`].
    Schedule(Duration),
    /// A send is already scheduled; it will carry this change.
    Wait,
}

impl Throttle {
    /// Notes a change at `now`.
    pub fn offer(&mut self, now: Instant, interval: Duration) -> ThrottleStep {
        if self.scheduled {
            return ThrottleStep::Wait;
        }
        match self.last_sent {
            Some(sent) if now.saturating_duration_since(sent) < interval => {
                self.scheduled = true;
                ThrottleStep::Schedule(interval - now.saturating_duration_since(sent))
            }
            _ => {
                self.last_sent = Some(now);
                ThrottleStep::SendNow
            }
        }
    }

    /// The scheduled send happened at `now`.
    pub fn fired(&mut self, now: Instant) {
        self.scheduled = false;
        self.last_sent = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(urls: &[&str]) -> Vec<ListEntry> {
        urls.iter()
            .map(|u| ListEntry {
                url: (*u).to_owned(),
                title: format!("title {u}"),
            })
            .collect()
    }

    fn numbered(n: usize) -> Vec<ListEntry> {
        (0..n)
            .map(|i| ListEntry {
                url: format!("https://e.example/{i}"),
                title: String::new(),
            })
            .collect()
    }

    fn urls(history: &SessionHistory) -> Vec<&str> {
        history.entries.iter().map(|e| e.url.as_str()).collect()
    }

    #[test]
    fn urls_are_reported_only_when_the_browser_accepts_them() {
        for ok in [
            "https://a.example/",
            "http://127.0.0.1:8000/x?y#z",
            "file:///tmp/a.html",
            "about:blank",
            "data:text/html,hi",
            "warren://newtab/",
        ] {
            assert!(reportable_url(ok), "{ok}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_LEN));
        for bad in [
            "javascript:alert(1)",
            "ftp://a.example/",
            "not a url",
            "",
            &long,
        ] {
            assert!(
                !reportable_url(bad),
                "{}",
                truncate_on_char_boundary(bad, 40)
            );
        }
    }

    #[test]
    fn the_window_keeps_the_current_entry_and_favours_the_back_list() {
        assert_eq!(history_window(0, 0, 200), 0..0);
        assert_eq!(history_window(3, 2, 200), 0..3);
        assert_eq!(history_window(1, 0, 1), 0..1);
        assert_eq!(history_window(10, 9, 1), 9..10);
        assert_eq!(history_window(10, 0, 1), 0..1);
        // 300 back, 300 forward, room for 200: 49 forward (a quarter of 199), 150 back.
        assert_eq!(history_window(601, 300, 200), 150..350);
        // Little forward history: the back list gets the rest of the room.
        assert_eq!(history_window(400, 398, 200), 200..400);
        // Little back history: the forward list gets the rest.
        assert_eq!(history_window(400, 2, 200), 0..200);
        for (len, current, max) in [(7, 3, 4), (500, 499, 200), (500, 0, 200), (5, 2, 0)] {
            let w = history_window(len, current, max);
            assert!(w.contains(&current), "{len} {current} {max}: {w:?}");
            assert!(w.len() <= max.max(1), "{len} {current} {max}: {w:?}");
        }
    }

    #[test]
    fn a_long_history_is_trimmed_around_the_current_entry_without_webkit_state() {
        let built = build_history(&numbered(300), 250, vec![1; 100], "https://f.example/");
        let history = built.history;
        assert!(!built.fell_back);
        assert_eq!(history.entries.len(), MAX_HISTORY_ENTRIES);
        assert_eq!(
            history.current_entry().map(|e| e.url.as_str()),
            Some("https://e.example/250")
        );
        assert_eq!(history.entries[0].url, "https://e.example/100");
        assert_eq!(history.current, 150);
        assert!(
            history.webkit_state.is_empty(),
            "WebKit's state lists all 300 entries"
        );
        let short = build_history(&numbered(3), 1, vec![1; 100], "https://f.example/");
        assert_eq!(short.history.webkit_state, vec![1; 100]);
        assert_eq!(short.history.current, 1);
    }

    #[test]
    fn an_oversized_webkit_state_is_dropped_and_titles_are_cut() {
        let mut entries = list(&["https://a.example/"]);
        entries[0].title = "é".repeat(MAX_TITLE_LEN);
        let built = build_history(
            &entries,
            0,
            vec![0; MAX_WEBKIT_STATE_LEN + 1],
            "https://f.example/",
        );
        assert!(built.history.webkit_state.is_empty());
        assert_eq!(built.history.entries[0].title.len(), MAX_TITLE_LEN);
        let fits = build_history(
            &entries,
            0,
            vec![0; MAX_WEBKIT_STATE_LEN],
            "https://f.example/",
        );
        assert_eq!(fits.history.webkit_state.len(), MAX_WEBKIT_STATE_LEN);
    }

    #[test]
    fn an_unreportable_entry_leaves_only_the_current_one() {
        let entries = list(&[
            "https://a.example/",
            "javascript:void(0)",
            "https://c.example/",
        ]);
        let built = build_history(&entries, 2, vec![1, 2, 3], "https://f.example/");
        assert!(!built.fell_back);
        assert_eq!(urls(&built.history), vec!["https://c.example/"]);
        assert_eq!(built.history.current, 0);
        assert_eq!(built.history.entries[0].title, "title https://c.example/");
        assert!(built.history.webkit_state.is_empty());

        // The current entry itself cannot be reported: the launch URL stands in.
        let huge = format!("data:text/html,{}", "x".repeat(MAX_URL_LEN));
        let entries = list(&["https://a.example/", &huge]);
        let built = build_history(&entries, 1, vec![1], "https://f.example/");
        assert!(built.fell_back);
        assert_eq!(urls(&built.history), vec!["https://f.example/"]);
        let built = build_history(&entries, 1, vec![1], "gopher://f.example/");
        assert_eq!(urls(&built.history), vec![BLANK_URL]);
    }

    #[test]
    fn an_empty_list_falls_back_to_the_launch_url() {
        let built = build_history(&[], 0, Vec::new(), "https://f.example/");
        assert!(built.fell_back);
        assert_eq!(urls(&built.history), vec!["https://f.example/"]);
        assert_eq!(built.history.current, 0);
        // A current index past the end is treated the same way.
        let built = build_history(
            &list(&["https://a.example/"]),
            5,
            Vec::new(),
            "https://f.example/",
        );
        assert!(built.fell_back);
    }

    fn page(url: &str, fields: Vec<FormField>) -> PageState {
        PageState {
            url: url.to_owned(),
            scroll_x: 0.0,
            scroll_y: 3210.0,
            zoom: 1.0,
            fields,
        }
    }

    fn text_field(index: u32, len: usize) -> FormField {
        FormField {
            index,
            id: format!("f{index}"),
            name: String::new(),
            value: FieldValue::Text("v".repeat(len)),
        }
    }

    fn frame_len(msg: &RendererToBrowser) -> usize {
        frame::encode(&UpFrame {
            tab_id: TabId(1),
            msg: msg.clone(),
        })
        .map(|b| b.len())
        .unwrap_or(usize::MAX)
    }

    #[test]
    fn a_capture_that_fits_is_sent_whole() {
        let history = build_history(&numbered(3), 2, vec![9; 1000], "x").history;
        let (msg, shrunk) = fit_state_captured(
            TabId(1),
            5,
            history.clone(),
            page("https://e.example/2", vec![text_field(0, 10)]),
        );
        assert!(!shrunk.any());
        let RendererToBrowser::StateCaptured {
            request,
            history: h,
            page: p,
        } = msg
        else {
            panic!("wrong message");
        };
        assert_eq!((request, h, p.fields.len()), (5, history, 1));
    }

    #[test]
    fn an_oversized_capture_drops_webkit_state_then_fields() {
        let history = build_history(&numbered(3), 2, vec![9; MAX_WEBKIT_STATE_LEN], "x").history;
        // 20 fields of 60 KiB: 1.2 MB, over the frame limit even without WebKit's state.
        let fields = (0..20).map(|i| text_field(i, 60 * 1024)).collect();
        let (msg, shrunk) =
            fit_state_captured(TabId(1), 5, history, page("https://e.example/2", fields));
        assert_eq!(
            shrunk,
            Shrunk {
                webkit_state: true,
                fields: true,
                entries: 0
            }
        );
        assert!(frame_len(&msg) <= MAX_FRAME_LEN_FOR_TESTS);
        let RendererToBrowser::StateCaptured {
            history: h,
            page: p,
            ..
        } = msg
        else {
            panic!("wrong message");
        };
        assert_eq!(h.entries.len(), 3);
        assert_eq!(p.scroll_y, 3210.0, "the scroll offset always stays");

        // WebKit's state alone is dropped when that is enough.
        let history = build_history(&numbered(3), 2, vec![9; MAX_WEBKIT_STATE_LEN], "x").history;
        let fields = (0..10).map(|i| text_field(i, 60 * 1024)).collect();
        let (msg, shrunk) =
            fit_state_captured(TabId(1), 5, history, page("https://e.example/2", fields));
        assert_eq!(
            shrunk,
            Shrunk {
                webkit_state: true,
                fields: false,
                entries: 0
            }
        );
        assert!(frame_len(&msg) <= MAX_FRAME_LEN_FOR_TESTS);
    }

    #[test]
    fn huge_histories_are_halved_around_the_current_entry_until_they_fit() {
        // 200 entries with 60 KiB URLs: 12 MB of history.
        let entries: Vec<ListEntry> = (0..200)
            .map(|i| ListEntry {
                url: format!("https://e.example/{i:03}/{}", "u".repeat(60 * 1024)),
                title: "t".repeat(MAX_TITLE_LEN),
            })
            .collect();
        let current_url = entries[120].url.clone();
        let history = build_history(&entries, 120, Vec::new(), "x").history;
        let (msg, shrunk) =
            fit_state_captured(TabId(1), 1, history.clone(), page(&current_url, vec![]));
        assert!(shrunk.entries > 180, "{shrunk:?}");
        assert!(frame_len(&msg) <= MAX_FRAME_LEN_FOR_TESTS);
        let RendererToBrowser::StateCaptured {
            history: h,
            page: p,
            ..
        } = msg
        else {
            panic!("wrong message");
        };
        assert_eq!(h.current_entry().map(|e| &e.url), Some(&p.url));

        let (msg, shrunk) = fit_history_state(TabId(1), history);
        assert!(shrunk.entries > 180);
        assert!(frame_len(&msg) <= MAX_FRAME_LEN_FOR_TESTS);
        let RendererToBrowser::HistoryState(h) = msg else {
            panic!("wrong message");
        };
        assert_eq!(h.current_entry().map(|e| &e.url), Some(&current_url));
    }

    /// The frame limit including the length prefix.
    const MAX_FRAME_LEN_FOR_TESTS: usize = warren_ipc::MAX_FRAME_LEN + frame::PREFIX_LEN;

    const URL: &str = "https://a.example/page";

    fn parse(json: &str) -> PageState {
        page_state(Ok(json), URL, 1.25)
    }

    #[test]
    fn a_capture_result_becomes_a_page_state() {
        let page = parse(
            r#"{"url": "https://a.example/page", "scrollX": 0, "scrollY": 3210.5, "fields": [
                {"index": 0, "id": "q", "name": "q", "text": "hello"},
                {"index": 3, "id": "", "name": "c", "checked": true},
                {"index": 4, "id": "", "name": "s", "selected": [0, 2]}
            ]}"#,
        );
        assert_eq!(
            (page.scroll_x, page.scroll_y, page.zoom),
            (0.0, 3210.5, 1.25)
        );
        assert_eq!(page.url, URL);
        assert_eq!(
            page.fields,
            vec![
                FormField {
                    index: 0,
                    id: "q".into(),
                    name: "q".into(),
                    value: FieldValue::Text("hello".into())
                },
                FormField {
                    index: 3,
                    id: String::new(),
                    name: "c".into(),
                    value: FieldValue::Checked(true)
                },
                FormField {
                    index: 4,
                    id: String::new(),
                    name: "s".into(),
                    value: FieldValue::Selected(vec![0, 2])
                },
            ]
        );
    }

    #[test]
    fn malformed_capture_results_give_a_bare_page_state() {
        let long = "x".repeat(100_000);
        for json in [
            "",
            "null",
            "[]",
            "{",
            "\"text\"",
            "{\"url\": 5}",
            r#"{"url": "https://a.example/page", "scrollX": null, "scrollY": 0, "fields": []}"#,
            r#"{"url": "https://a.example/page", "scrollX": 0, "scrollY": 0, "fields": {}}"#,
            r#"{"url": "https://other.example/", "scrollX": 1, "scrollY": 2, "fields": []}"#,
            &long,
            &format!("{{\"url\": \"{long}"),
        ] {
            let page = parse(json);
            assert_eq!(
                (
                    page.scroll_x,
                    page.scroll_y,
                    page.fields.len(),
                    page.url.as_str()
                ),
                (0.0, 0.0, 0, URL),
                "{}",
                truncate_on_char_boundary(json, 80)
            );
        }
        let page = page_state(Err(CaptureError::Script("timeout".into())), URL, f64::NAN);
        assert_eq!((page.scroll_y, page.zoom), (0.0, 1.0));
    }

    #[test]
    fn bad_fields_are_left_out_and_good_ones_kept() {
        let big = "v".repeat(MAX_FIELD_VALUE_LEN + 1);
        let many: Vec<String> = (0..=MAX_SELECTED_OPTIONS).map(|i| i.to_string()).collect();
        let json = format!(
            r#"{{"url": "{URL}", "scrollX": 1e300, "scrollY": -5, "fields": [
                {{"index": -1, "text": "negative index"}},
                {{"index": 4294967296, "text": "index over u32"}},
                {{"index": 1, "text": "two values", "checked": true}},
                {{"index": 2}},
                {{"index": 3, "text": 7}},
                {{"index": 4, "checked": "yes"}},
                {{"index": 5, "selected": [1, -2]}},
                {{"index": 6, "selected": [{many}]}},
                {{"index": 7, "text": "{big}"}},
                "not an object",
                {{"index": 8, "id": "{big}", "text": "kept, id cut"}}
            ]}}"#,
            many = many.join(",")
        );
        let page = parse(&json);
        assert_eq!((page.scroll_x, page.scroll_y), (0.0, -5.0));
        assert_eq!(
            page.fields.len(),
            1,
            "{:?}",
            page.fields.iter().map(|f| f.index).collect::<Vec<_>>()
        );
        assert_eq!(page.fields[0].index, 8);
        assert_eq!(page.fields[0].id.len(), MAX_FIELD_VALUE_LEN);
    }

    #[test]
    fn at_most_the_field_limit_is_kept() {
        let fields: Vec<String> = (0..MAX_FORM_FIELDS + 20)
            .map(|i| format!(r#"{{"index": {i}, "checked": true}}"#))
            .collect();
        let json = format!(
            r#"{{"url": "{URL}", "scrollX": 0, "scrollY": 0, "fields": [{}]}}"#,
            fields.join(",")
        );
        assert_eq!(parse(&json).fields.len(), MAX_FORM_FIELDS);
    }

    #[test]
    fn restore_plans_name_each_fields_kind() {
        let mut p = page(URL, vec![text_field(0, 3)]);
        p.fields.push(FormField {
            index: 1,
            id: String::new(),
            name: "c".into(),
            value: FieldValue::Checked(false),
        });
        p.fields.push(FormField {
            index: 2,
            id: String::new(),
            name: "s".into(),
            value: FieldValue::Selected(vec![1]),
        });
        let plan: Value = serde_json::from_str(&restore_plan_json(&p).unwrap()).unwrap();
        assert_eq!(
            plan,
            serde_json::json!({
                "scrollX": 0.0, "scrollY": 3210.0, "fields": [
                    {"index": 0, "id": "f0", "name": "", "kind": "text", "text": "vvv"},
                    {"index": 1, "id": "", "name": "c", "kind": "checked", "checked": false},
                    {"index": 2, "id": "", "name": "s", "kind": "select", "selected": [1]},
                ]
            })
        );
        let mut nothing = page(URL, vec![]);
        nothing.scroll_y = 0.0;
        assert_eq!(restore_plan_json(&nothing), None);
        nothing.scroll_x = f64::INFINITY;
        assert_eq!(
            restore_plan_json(&nothing),
            None,
            "an unusable offset is no offset"
        );
    }

    #[test]
    fn restore_results_are_read_leniently() {
        assert_eq!(
            restored_field_count(r#"{"restored": 3, "scrolled": true}"#),
            3
        );
        assert_eq!(restored_field_count("garbage"), 0);
        assert_eq!(restored_field_count(r#"{"restored": -1}"#), 0);
    }

    #[test]
    fn zoom_and_scroll_are_kept_in_range() {
        assert_eq!(sane_zoom(1.5), Some(1.5));
        for bad in [0.0, -1.0, 101.0, f64::NAN, f64::INFINITY] {
            assert_eq!(sane_zoom(bad), None, "{bad}");
        }
        assert_eq!(sane_scroll(-20.0), -20.0);
        assert_eq!(sane_scroll(2.0e8), 0.0);
        assert_eq!(sane_scroll(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn the_throttle_sends_at_once_then_once_per_interval() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(t.offer(t0, second), ThrottleStep::SendNow);
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(
            t.offer(t1, second),
            ThrottleStep::Schedule(Duration::from_millis(700))
        );
        assert_eq!(t.offer(t1, second), ThrottleStep::Wait);
        assert_eq!(
            t.offer(t0 + Duration::from_millis(900), second),
            ThrottleStep::Wait
        );
        t.fired(t0 + second);
        assert_eq!(
            t.offer(t0 + Duration::from_millis(1500), second),
            ThrottleStep::Schedule(Duration::from_millis(500))
        );
        t.fired(t0 + Duration::from_secs(2));
        assert_eq!(
            t.offer(t0 + Duration::from_secs(4), second),
            ThrottleStep::SendNow
        );
    }
}
