//! Reading the tab's state out of the web view and putting a snapshot back into a fresh one: the WebKit side of discarding and restoring a tab.
//!
//! The rules (limits, fallbacks, frame sizes) are in [`crate::session`] and
//! [`crate::webkit_state`]; this module only talks to WebKit.

use warren_ipc::{HistoryEntry, SessionHistory, TabSnapshot};
use webkit2gtk::{BackForwardListExt, BackForwardListItem, BackForwardListItemExt, WebViewExt};

use crate::session::{self, BuiltHistory, ListEntry};
use crate::up::truncate_on_char_boundary;
use crate::webkit_state;

/// The view's back/forward list, oldest first, and the index of the current item. Empty when
/// nothing has been committed yet.
///
/// Items are read one by one relative to the current item (`nth_item`), which says plainly which
/// is which. WebKit's `get_back_list` and `get_forward_list` both return their items newest
/// first — the back list nearest first, but the forward list farthest first — so only their
/// lengths are used here.
fn read_list(view: &webkit2gtk::WebView) -> (Vec<BackForwardListItem>, usize) {
    let Some(list) = view.back_forward_list() else {
        return (Vec::new(), 0);
    };
    if list.current_item().is_none() {
        return (Vec::new(), 0);
    }
    let back = list.back_list().len();
    let forward = list.forward_list().len();
    let mut items = Vec::with_capacity(back + 1 + forward);
    for relative in -(back as i64)..=(forward as i64) {
        match i32::try_from(relative).ok().and_then(|r| list.nth_item(r)) {
            Some(item) => items.push(item),
            None => {
                log::warn!(target: "renderer", "the back/forward list has no item at {relative} though it reports {back} back and {forward} forward");
                return (Vec::new(), 0);
            }
        }
    }
    (items, back)
}

/// The URL and title of a list item.
fn list_entry(item: &BackForwardListItem) -> ListEntry {
    ListEntry {
        url: item.uri().map(|u| u.to_string()).unwrap_or_default(),
        title: item.title().map(|t| t.to_string()).unwrap_or_default(),
    }
}

/// WebKit's serialized session state of the view, if the browser may have it: a state whose
/// items carry a form POST body (which may hold a password), or that does not list exactly
/// `entries`, gives an empty one.
fn sendable_webkit_state(
    view: &webkit2gtk::WebView,
    entries: &[ListEntry],
    current: usize,
) -> Vec<u8> {
    let Some(bytes) = view.session_state().and_then(|s| s.serialize()) else {
        return Vec::new();
    };
    let bytes = bytes.to_vec();
    let history: Vec<HistoryEntry> = entries
        .iter()
        .map(|e| HistoryEntry {
            url: e.url.clone(),
            title: String::new(),
        })
        .collect();
    match webkit_state::check(&bytes, &history, current as u32) {
        Ok(()) => webkit_state::sanitize(&bytes).unwrap_or_default(),
        Err(problem) => {
            log::info!(target: "renderer", "not reporting WebKit's session state: {problem}");
            Vec::new()
        }
    }
}

/// The tab's history as the browser gets it (see [`session::build_history`]).
pub fn capture_history(view: &webkit2gtk::WebView, fallback_url: &str) -> BuiltHistory {
    let (items, current) = read_list(view);
    let entries: Vec<ListEntry> = items.iter().map(list_entry).collect();
    let webkit_state = if entries.is_empty() {
        Vec::new()
    } else {
        sendable_webkit_state(view, &entries, current)
    };
    session::build_history(&entries, current, webkit_state, fallback_url)
}

/// Why the view's list after a restore is not the snapshot's.
fn mismatch(
    view: &webkit2gtk::WebView,
    history: &SessionHistory,
) -> Result<BackForwardListItem, String> {
    let (items, current) = read_list(view);
    if items.len() != history.entries.len() {
        return Err(format!(
            "WebKit restored {} entries, the snapshot lists {}",
            items.len(),
            history.entries.len()
        ));
    }
    for (index, (item, entry)) in items.iter().zip(&history.entries).enumerate() {
        if item.uri().as_deref() != Some(entry.url.as_str()) {
            return Err(format!("WebKit restored another URL at entry {index}"));
        }
    }
    if current != history.current as usize {
        return Err(format!(
            "WebKit made entry {current} current, the snapshot entry {}",
            history.current
        ));
    }
    Ok(items[current].clone())
}

/// Gives the view the session state `bytes` and checks that its back/forward list is then
/// exactly `history`'s URLs with the current item at `history.current`. Returns the current item
/// to go to.
fn restore_and_verify(
    view: &webkit2gtk::WebView,
    bytes: &[u8],
    history: &SessionHistory,
) -> Result<BackForwardListItem, String> {
    let data = glib::Bytes::from(bytes);
    // SAFETY: `data` is a valid GBytes for the call; the function returns a new reference or
    // NULL (for data it cannot decode), which is checked before it is wrapped. The safe binding
    // would wrap a NULL.
    let state = unsafe {
        use glib::translate::{from_glib_full, ToGlibPtr};
        let raw = webkit2gtk::ffi::webkit_web_view_session_state_new(data.to_glib_none().0);
        if raw.is_null() {
            return Err("WebKit cannot decode the session state".to_owned());
        }
        from_glib_full::<_, webkit2gtk::WebViewSessionState>(raw)
    };
    view.restore_session_state(&state);
    mismatch(view, history)
}

/// What a restore did, for the tab to finish it.
pub struct Restore {
    /// The page state to apply when the first load finishes on its URL.
    pub page: Option<warren_ipc::PageState>,
}

/// Brings a snapshot back into a fresh view, instead of a plain load of `url`.
///
/// The history comes back as a WebKit session state: the snapshot's own if it passes
/// [`webkit_state::check`] against the entries the browser checked, else one built from those
/// entries alone ([`webkit_state::synthesize`]) when the snapshot's state is only unusable
/// (empty, unreadable, carrying a POST body). A state that contradicts the entries (another URL,
/// another current entry) is refused and the tab loads `url` afresh. After restoring, the view's
/// list is compared with the entries once more — WebKit's own decoding is what counts — and the
/// view goes to the current item. The zoom is set at once; the scroll offset goes into the
/// current item (WebKit scrolls there itself) and, with the form fields, waits for the load
/// ([`Restore::page`]).
pub fn restore(view: &webkit2gtk::WebView, snapshot: &TabSnapshot, url: &str) -> Restore {
    let page = snapshot.page.clone();
    if let Some(zoom) = page.as_ref().and_then(|p| session::sane_zoom(p.zoom)) {
        view.set_zoom_level(zoom);
    }
    let history = &snapshot.history;
    let current_url = history.current_entry().map(|e| e.url.as_str());
    if current_url != Some(url) {
        log::warn!(target: "renderer", "not restoring the tab's history: its current entry is not the launch URL; loading {}", shown(url));
        view.load_uri(url);
        return Restore { page };
    }
    let bytes = if history.webkit_state.is_empty() {
        log::info!(target: "renderer", "the snapshot has no WebKit state: restoring its {} URLs alone", history.entries.len());
        webkit_state::synthesize(&history.entries, history.current)
    } else {
        match webkit_state::check(&history.webkit_state, &history.entries, history.current)
            .map(|()| webkit_state::sanitize(&history.webkit_state))
        {
            Ok(Some(sanitized)) => sanitized,
            Ok(None) => webkit_state::synthesize(&history.entries, history.current),
            Err(problem) if problem.contradicts_history() => {
                log::warn!(target: "renderer", "not restoring the snapshot's WebKit state: {problem}; loading {} afresh", shown(url));
                view.load_uri(url);
                return Restore { page };
            }
            Err(problem) => {
                log::info!(target: "renderer", "not using the snapshot's WebKit state ({problem}): restoring its {} URLs alone", history.entries.len());
                webkit_state::synthesize(&history.entries, history.current)
            }
        }
    };
    let bytes = match &page {
        Some(page) if Some(page.url.as_str()) == current_url => with_page_scroll(bytes, page),
        _ => bytes,
    };
    match restore_and_verify(view, &bytes, history) {
        Ok(item) => {
            log::info!(target: "renderer", "restored {} history entries; loading entry {}", history.entries.len(), history.current);
            view.go_to_back_forward_list_item(&item);
        }
        Err(why) => {
            log::warn!(target: "renderer", "the restored history is not the snapshot's ({why}); loading {} afresh", shown(url));
            reset(view, url);
        }
    }
    Restore { page }
}

/// The state with the page's scroll offset as its current item's scroll position, so that WebKit,
/// which scrolls a page it goes to from the back/forward list to its item's position after the
/// load, takes it where the restore script does (not back to the top).
fn with_page_scroll(bytes: Vec<u8>, page: &warren_ipc::PageState) -> Vec<u8> {
    // WebKit keeps scroll positions in CSS pixels times the page zoom.
    let zoom = session::sane_zoom(page.zoom).unwrap_or(1.0);
    let to_webkit = |offset: f64| (session::sane_scroll(offset) * zoom).round() as i32;
    match webkit_state::with_current_scroll(
        &bytes,
        to_webkit(page.scroll_x),
        to_webkit(page.scroll_y),
    ) {
        Some(moved) => moved,
        None => {
            log::warn!(target: "renderer", "cannot put the scroll offset into the restored state; WebKit may scroll the page to the top");
            bytes
        }
    }
}

/// Replaces whatever the view's list holds with `url` alone and loads it: the way out of a
/// restore WebKit decoded differently than checked, which must not leave its entries behind.
fn reset(view: &webkit2gtk::WebView, url: &str) {
    let only = SessionHistory {
        entries: vec![HistoryEntry {
            url: url.to_owned(),
            title: String::new(),
        }],
        current: 0,
        webkit_state: Vec::new(),
    };
    match restore_and_verify(view, &webkit_state::synthesize(&only.entries, 0), &only) {
        Ok(item) => view.go_to_back_forward_list_item(&item),
        Err(why) => {
            log::error!(target: "renderer", "cannot clear the restored history ({why}); loading {} on top of it", shown(url));
            view.load_uri(url);
        }
    }
}

/// A URL cut short for a log line.
fn shown(url: &str) -> &str {
    truncate_on_char_boundary(url, 200)
}
