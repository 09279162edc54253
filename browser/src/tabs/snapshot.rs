//! What a tab may be brought back to: the URLs the user opened in it, and the check every snapshot
//! passes before a renderer restores it.
//!
//! A snapshot comes from a renderer (or from the session file, which holds what renderers sent),
//! so it is hostile input. Web pages can take a tab to any `http`, `https` or `blob` URL and to
//! `about:blank`, so those are always allowed. `file:` pages, `data:` URLs and Warren's internal
//! pages (`warren:`) are allowed only in a tab where the user opened such a URL (address bar,
//! command line, control socket, a local page opening another): a renderer cannot make a restore
//! load a local file the user never opened in that tab.

use serde::{Deserialize, Serialize};
use warren_ipc::{
    FieldValue, SessionHistory, TabSnapshot, INTERNAL_SCHEME, MAX_FIELD_VALUE_LEN, MAX_FORM_FIELDS,
    MAX_HISTORY_ENTRIES, MAX_SELECTED_OPTIONS, MAX_TITLE_LEN, MAX_URL_LEN, MAX_WEBKIT_STATE_LEN,
};

/// The kinds of URL beyond the web that the user opened in a tab.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// The user opened a `file:` URL: local pages may link to each other.
    #[serde(default)]
    pub file: bool,
    /// The user opened a `data:` URL.
    #[serde(default)]
    pub data: bool,
    /// The user opened an internal page (`warren://newtab/`).
    #[serde(default)]
    pub internal: bool,
}

impl Grants {
    /// What the user opening `url` grants the tab.
    pub fn for_user_url(url: &str) -> Grants {
        let mut grants = Grants::default();
        grants.add_user_url(url);
        grants
    }

    /// Records that the user opened `url` in the tab.
    pub fn add_user_url(&mut self, url: &str) {
        match scheme(url).as_deref() {
            Some("file") => self.file = true,
            Some("data") => self.data = true,
            Some(s) if s == INTERNAL_SCHEME => self.internal = true,
            _ => {}
        }
    }

    /// Whether a tab with these grants may load `url`.
    pub fn allows(&self, url: &str) -> bool {
        if url.len() > MAX_URL_LEN || url.chars().any(char::is_control) {
            return false;
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return false;
        };
        match parsed.scheme() {
            "http" | "https" | "blob" => true,
            "about" => parsed.as_str() == "about:blank",
            "file" => self.file,
            "data" => self.data,
            s if s == INTERNAL_SCHEME => self.internal,
            _ => false,
        }
    }
}

/// The local path of a `file:` URL the user opened, if it is one.
pub fn opened_file(url: &str) -> Option<std::path::PathBuf> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed.scheme() != "file" {
        return None;
    }
    parsed.to_file_path().ok()
}

fn scheme(url: &str) -> Option<String> {
    url::Url::parse(url).ok().map(|u| u.scheme().to_owned())
}

/// Why a snapshot may not be restored as it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("history entry {index} ({}) is not a URL this tab may load", shown(.url))]
    ForbiddenUrl { index: usize, url: String },
    #[error("the current entry {current} is outside the {len} history entries")]
    CurrentOutOfRange { current: u32, len: usize },
    #[error("the history is empty")]
    EmptyHistory,
    #[error("{what} exceeds its limit")]
    TooLarge { what: &'static str },
    #[error("the page state is for {} but the current entry is {}", shown(.page), shown(.current))]
    PageForAnotherUrl { page: String, current: String },
    #[error("the page state has a scroll offset or zoom that is not a finite number in range")]
    BadNumber,
}

/// A URL cut for an error message or a log line: at most 120 bytes, with an ellipsis when it was
/// longer, control characters (a terminal's escape sequences) replaced by spaces.
pub(crate) fn shown(url: &str) -> String {
    let cut = warren_ipc::truncate_str(url, 120);
    let printable: String = cut
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cut.len() < url.len() {
        format!("{printable}…")
    } else {
        printable
    }
}

/// Checks the structure and limits of a history, as every message that carries one must pass.
/// Which URLs the tab may load is [`check_snapshot`]'s business.
pub fn check_history_limits(history: &SessionHistory) -> Result<(), SnapshotError> {
    if history.entries.len() > MAX_HISTORY_ENTRIES {
        return Err(SnapshotError::TooLarge {
            what: "the number of history entries",
        });
    }
    if history.webkit_state.len() > MAX_WEBKIT_STATE_LEN {
        return Err(SnapshotError::TooLarge {
            what: "the WebKit session state",
        });
    }
    for entry in &history.entries {
        if entry.url.len() > MAX_URL_LEN || entry.title.len() > MAX_TITLE_LEN {
            return Err(SnapshotError::TooLarge {
                what: "a history entry",
            });
        }
    }
    if history.entries.is_empty() {
        return Err(SnapshotError::EmptyHistory);
    }
    if history.current_entry().is_none() {
        return Err(SnapshotError::CurrentOutOfRange {
            current: history.current,
            len: history.entries.len(),
        });
    }
    Ok(())
}

/// Checks the limits of a page state.
pub fn check_page_limits(page: &warren_ipc::PageState) -> Result<(), SnapshotError> {
    // Pages are at most a few million pixels tall; zoom levels are a small positive factor.
    let in_range = |v: f64| v.is_finite() && v.abs() <= 1.0e8;
    let zoom_ok = page.zoom.is_finite() && page.zoom > 0.0 && page.zoom <= 100.0;
    if !in_range(page.scroll_x) || !in_range(page.scroll_y) || !zoom_ok {
        return Err(SnapshotError::BadNumber);
    }
    if page.url.len() > MAX_URL_LEN {
        return Err(SnapshotError::TooLarge {
            what: "the page URL",
        });
    }
    if page.fields.len() > MAX_FORM_FIELDS {
        return Err(SnapshotError::TooLarge {
            what: "the number of form fields",
        });
    }
    for field in &page.fields {
        let too_long = field.id.len() > MAX_FIELD_VALUE_LEN
            || field.name.len() > MAX_FIELD_VALUE_LEN
            || match &field.value {
                FieldValue::Text(text) => text.len() > MAX_FIELD_VALUE_LEN,
                FieldValue::Checked(_) => false,
                FieldValue::Selected(options) => options.len() > MAX_SELECTED_OPTIONS,
            };
        if too_long {
            return Err(SnapshotError::TooLarge {
                what: "a form field",
            });
        }
    }
    Ok(())
}

/// Checks a whole snapshot for a tab with `grants`: limits, and that every URL in it is one the
/// tab may load. A snapshot that fails must not be restored as it is (see [`restorable`]).
pub fn check_snapshot(snapshot: &TabSnapshot, grants: Grants) -> Result<(), SnapshotError> {
    check_history_limits(&snapshot.history)?;
    for (index, entry) in snapshot.history.entries.iter().enumerate() {
        if !grants.allows(&entry.url) {
            return Err(SnapshotError::ForbiddenUrl {
                index,
                url: entry.url.clone(),
            });
        }
    }
    if let Some(page) = &snapshot.page {
        check_page_limits(page)?;
        let current = snapshot
            .history
            .current_entry()
            .map(|e| e.url.as_str())
            .unwrap_or_default();
        if page.url != current {
            return Err(SnapshotError::PageForAnotherUrl {
                page: page.url.clone(),
                current: current.to_owned(),
            });
        }
    }
    Ok(())
}

/// The snapshot to hand a renderer for a tab with `grants`, or `None` when it fails
/// [`check_snapshot`] (the tab then loads its URL afresh, and the reason is logged).
pub fn restorable(snapshot: &TabSnapshot, grants: Grants) -> Option<TabSnapshot> {
    match check_snapshot(snapshot, grants) {
        Ok(()) => Some(snapshot.clone()),
        Err(e) => {
            log::warn!("a tab's saved state is not restored: {e}");
            None
        }
    }
}

/// A snapshot that only knows one URL: what a tab has before any renderer reported its history.
pub fn single_entry(url: &str, title: &str) -> TabSnapshot {
    TabSnapshot {
        history: SessionHistory {
            entries: vec![warren_ipc::HistoryEntry {
                url: url.to_owned(),
                title: title.to_owned(),
            }],
            current: 0,
            webkit_state: Vec::new(),
        },
        page: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_ipc::{FormField, HistoryEntry, PageState};

    fn history(urls: &[&str], current: u32) -> SessionHistory {
        SessionHistory {
            entries: urls
                .iter()
                .map(|u| HistoryEntry {
                    url: (*u).to_owned(),
                    title: String::new(),
                })
                .collect(),
            current,
            webkit_state: vec![1, 2, 3],
        }
    }

    fn page(url: &str) -> PageState {
        PageState {
            url: url.to_owned(),
            scroll_x: 0.0,
            scroll_y: 3210.0,
            zoom: 1.0,
            fields: vec![FormField {
                index: 0,
                id: "q".into(),
                name: String::new(),
                value: FieldValue::Text("hello".into()),
            }],
        }
    }

    #[test]
    fn web_urls_are_always_allowed_local_ones_only_when_granted() {
        let none = Grants::default();
        for url in [
            "https://example.org/",
            "http://localhost:8000/a",
            "about:blank",
            "blob:https://example.org/0b3c",
        ] {
            assert!(none.allows(url), "{url}");
        }
        for url in [
            "file:///etc/passwd",
            "data:text/html,hi",
            "warren://newtab/",
            "about:config",
            "javascript:alert(1)",
            "ftp://example.org/",
            "not a url",
        ] {
            assert!(!none.allows(url), "{url}");
        }
        let files = Grants::for_user_url("file:///home/u/a.html");
        assert!(files.allows("file:///etc/passwd"));
        assert!(!files.allows("data:text/html,hi"));
        let newtab = Grants::for_user_url(warren_ipc::NEW_TAB_URL);
        assert!(newtab.allows(warren_ipc::NEW_TAB_URL));
        assert!(!newtab.allows("file:///"));
        assert!(Grants::for_user_url("data:,x").allows("data:text/plain,y"));
        assert_eq!(
            Grants::for_user_url("https://a.example/"),
            Grants::default()
        );
    }

    #[test]
    fn snapshot_with_a_forbidden_entry_is_refused() {
        let snapshot = TabSnapshot {
            history: history(&["https://a.example/", "file:///etc/passwd"], 0),
            page: None,
        };
        assert_eq!(
            check_snapshot(&snapshot, Grants::default()),
            Err(SnapshotError::ForbiddenUrl {
                index: 1,
                url: "file:///etc/passwd".into()
            })
        );
        assert!(restorable(&snapshot, Grants::default()).is_none());
        let granted = Grants {
            file: true,
            ..Grants::default()
        };
        assert_eq!(restorable(&snapshot, granted), Some(snapshot));
    }

    #[test]
    fn structure_is_checked() {
        let empty = TabSnapshot::default();
        assert_eq!(
            check_snapshot(&empty, Grants::default()),
            Err(SnapshotError::EmptyHistory)
        );
        let out_of_range = TabSnapshot {
            history: history(&["https://a.example/"], 1),
            page: None,
        };
        assert!(matches!(
            check_snapshot(&out_of_range, Grants::default()),
            Err(SnapshotError::CurrentOutOfRange { .. })
        ));
        let urls: Vec<String> = (0..=MAX_HISTORY_ENTRIES)
            .map(|i| format!("https://e.example/{i}"))
            .collect();
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let long = TabSnapshot {
            history: history(&refs, 0),
            page: None,
        };
        assert!(matches!(
            check_snapshot(&long, Grants::default()),
            Err(SnapshotError::TooLarge { .. })
        ));
        let mut big_state = history(&["https://a.example/"], 0);
        big_state.webkit_state = vec![0; MAX_WEBKIT_STATE_LEN + 1];
        assert!(check_history_limits(&big_state).is_err());
    }

    #[test]
    fn page_state_must_match_the_current_entry_and_be_sane() {
        let mut snapshot = TabSnapshot {
            history: history(&["https://a.example/", "https://b.example/"], 1),
            page: Some(page("https://b.example/")),
        };
        assert_eq!(check_snapshot(&snapshot, Grants::default()), Ok(()));
        snapshot.page = Some(page("https://a.example/"));
        assert!(matches!(
            check_snapshot(&snapshot, Grants::default()),
            Err(SnapshotError::PageForAnotherUrl { .. })
        ));
        for bad in [f64::NAN, f64::INFINITY, 1.0e9] {
            let mut p = page("https://b.example/");
            p.scroll_y = bad;
            snapshot.page = Some(p);
            assert_eq!(
                check_snapshot(&snapshot, Grants::default()),
                Err(SnapshotError::BadNumber)
            );
        }
        let mut p = page("https://b.example/");
        p.zoom = 0.0;
        snapshot.page = Some(p);
        assert_eq!(
            check_snapshot(&snapshot, Grants::default()),
            Err(SnapshotError::BadNumber)
        );
        let mut p = page("https://b.example/");
        p.fields[0].value = FieldValue::Text("x".repeat(MAX_FIELD_VALUE_LEN + 1));
        snapshot.page = Some(p);
        assert!(matches!(
            check_snapshot(&snapshot, Grants::default()),
            Err(SnapshotError::TooLarge { .. })
        ));
    }

    #[test]
    fn single_entry_snapshot() {
        let s = single_entry("https://a.example/", "A");
        assert_eq!(check_snapshot(&s, Grants::default()), Ok(()));
        assert_eq!(s.history.current_entry().unwrap().title, "A");
    }
}
