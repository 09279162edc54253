//! The tab strip: the tabs in order (pinned ones first), which one is active, and what the browser
//! knows of each tab.

use std::sync::Arc;
use std::time::Instant;

use warren_ipc::{TabId, TabSnapshot};

use super::life::Life;
use super::snapshot::Grants;

/// A tab's state as the control protocol names it (serialized in lowercase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TabState {
    /// The tab the window shows.
    Active,
    /// A tab with a running renderer in the background.
    Background,
    /// A background tab whose renderer tree is stopped.
    Frozen,
    /// A tab without a renderer, kept as a snapshot until it is shown again.
    Discarded,
    /// A tab whose renderer died or was ended; it shows the crash notice.
    Crashed,
}

impl TabState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Background => "background",
            Self::Frozen => "frozen",
            Self::Discarded => "discarded",
            Self::Crashed => "crashed",
        }
    }
}

/// The most files a tab remembers as opened by the user (each one is a mount in its sandbox).
pub const MAX_OPENED_FILES: usize = 32;

/// What the browser knows of one tab. Everything here that came from a renderer was validated
/// first; strings were made printable.
#[derive(Debug)]
pub struct Tab {
    pub id: TabId,
    /// The last URL the renderer committed, or the URL being opened before the first commit.
    pub url: String,
    pub title: String,
    pub loading: bool,
    pub can_go_back: bool,
    pub can_go_forward: bool,
    /// False once the renderer has missed its ping deadline.
    pub responsive: bool,
    pub pinned: bool,
    /// The page has edited form input that was not submitted.
    pub form_input: bool,
    pub playing_audio: bool,
    /// Which non-web URLs the user opened in this tab (what a restore may load).
    pub grants: Grants,
    /// The URL the user (or the page that opened the tab) last asked for: what the tab falls back
    /// to when neither its snapshot nor its committed URL may be restored.
    pub requested_url: String,
    /// The latest state the renderer reported: history, and the page when it was captured.
    pub snapshot: Option<Arc<TabSnapshot>>,
    /// When the tab was last the active one (for the active tab: when it became active).
    pub last_active: Instant,
    /// When the user last brought the tab back from discarded.
    pub restored_at: Option<Instant>,
    pub(super) life: Life,
    /// The files the user opened in this tab (`file:` URLs from the address bar, the command
    /// line, the control socket or the saved session), oldest first, at most
    /// [`MAX_OPENED_FILES`]. Never a path a renderer named.
    pub files: Vec<std::path::PathBuf>,
    /// How many of `files` the running renderer's sandbox shows (it was started with them).
    pub(super) mounted: usize,
}

impl Tab {
    pub(super) fn new(id: TabId, url: String, grants: Grants, life: Life, now: Instant) -> Self {
        Self {
            id,
            requested_url: url.clone(),
            url,
            title: String::new(),
            loading: false,
            can_go_back: false,
            can_go_forward: false,
            responsive: true,
            pinned: false,
            form_input: false,
            playing_audio: false,
            grants,
            snapshot: None,
            last_active: now,
            restored_at: None,
            life,
            files: Vec::new(),
            mounted: 0,
        }
    }

    /// Records a file the user opened; the oldest is forgotten beyond [`MAX_OPENED_FILES`].
    pub(super) fn add_file(&mut self, path: std::path::PathBuf) {
        self.files.retain(|f| *f != path);
        self.files.push(path);
        if self.files.len() > MAX_OPENED_FILES {
            let extra = self.files.len() - MAX_OPENED_FILES;
            self.files.drain(..extra);
            self.mounted = self.mounted.saturating_sub(extra);
        }
    }

    /// The text the tab strip shows: the title, else the URL.
    pub fn label(&self) -> &str {
        if self.title.trim().is_empty() {
            if self.url == warren_ipc::NEW_TAB_URL {
                "New Tab"
            } else {
                &self.url
            }
        } else {
            &self.title
        }
    }

    /// The tab's renderer life.
    pub fn life(&self) -> &Life {
        &self.life
    }

    /// The renderer's pid, while the tab has a renderer process.
    pub fn renderer_pid(&self) -> Option<u32> {
        self.life.live().map(|l| l.renderer.pid())
    }

    /// The pid of the process the browser started for the tab (bubblewrap, or the renderer
    /// without namespaces), while the tab has a renderer process.
    pub fn root_pid(&self) -> Option<u32> {
        self.life.live().map(|l| l.renderer.root_pid())
    }

    /// The pid of the process of the tab's nested display, while it has one.
    pub fn display_pid(&self) -> Option<u32> {
        self.life.live().and_then(|l| l.renderer.display_pid())
    }

    /// Why the renderer is gone, while the tab shows the crash notice.
    pub fn crash(&self) -> Option<&str> {
        match &self.life {
            Life::Crashed(cause) => Some(cause.describe()),
            _ => None,
        }
    }

    /// The memory the tab's discard freed, while it is discarded (if known).
    pub fn freed_kb(&self) -> Option<u64> {
        match self.life {
            Life::Discarded { freed_kb } => freed_kb,
            _ => None,
        }
    }

    /// Whether the tab's renderer has a view (which covers the content area while it is active).
    pub fn has_view(&self) -> bool {
        matches!(self.life, Life::Live(_) | Life::Discarding { .. })
    }
}

/// The tabs of the window, in strip order (pinned tabs first), and which one is active.
#[derive(Debug)]
pub struct TabStrip {
    tabs: Vec<Tab>,
    active: Option<TabId>,
    next_id: u64,
}

impl Default for TabStrip {
    fn default() -> Self {
        Self::new()
    }
}

impl TabStrip {
    pub fn new() -> Self {
        Self {
            tabs: Vec::new(),
            active: None,
            next_id: 1,
        }
    }

    /// The id the next tab gets. Ids are never reused.
    pub(super) fn next_id(&mut self) -> TabId {
        let id = TabId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Appends a tab (after the pinned ones if it is pinned); it becomes active when there is no
    /// active tab yet. Returns its index.
    pub(super) fn push(&mut self, tab: Tab) -> usize {
        let id = tab.id;
        let index = if tab.pinned {
            self.pinned_count()
        } else {
            self.tabs.len()
        };
        self.tabs.insert(index, tab);
        if self.active.is_none() {
            self.active = Some(id);
        }
        index
    }

    /// Removes a tab. When it was active, its right neighbour becomes active, else its left one.
    pub(super) fn remove(&mut self, id: TabId) -> Option<Tab> {
        let index = self.index_of(id)?;
        let tab = self.tabs.remove(index);
        if self.active == Some(id) {
            self.active = self
                .tabs
                .get(index)
                .or_else(|| index.checked_sub(1).and_then(|i| self.tabs.get(i)))
                .map(|t| t.id);
        }
        Some(tab)
    }

    /// Makes a tab active; false if there is no such tab.
    pub(super) fn set_active(&mut self, id: TabId) -> bool {
        if self.index_of(id).is_some() {
            self.active = Some(id);
            true
        } else {
            false
        }
    }

    /// Leaves the strip without an active tab (until the next [`TabStrip::push`] or
    /// [`TabStrip::set_active`]).
    pub(super) fn clear_active(&mut self) {
        self.active = None;
    }

    /// Pins or unpins a tab: a pinned tab moves to the end of the pinned ones, an unpinned one to
    /// the start of the others. False if there is no such tab.
    pub(super) fn set_pinned(&mut self, id: TabId, pinned: bool) -> bool {
        let Some(index) = self.index_of(id) else {
            return false;
        };
        if self.tabs[index].pinned == pinned {
            return true;
        }
        let mut tab = self.tabs.remove(index);
        tab.pinned = pinned;
        let to = self.pinned_count();
        self.tabs.insert(to, tab);
        true
    }

    fn pinned_count(&self) -> usize {
        self.tabs.iter().take_while(|t| t.pinned).count()
    }

    pub fn active(&self) -> Option<TabId> {
        self.active
    }

    pub fn active_tab(&self) -> Option<&Tab> {
        self.active.and_then(|id| self.get(id))
    }

    pub fn index_of(&self, id: TabId) -> Option<usize> {
        self.tabs.iter().position(|t| t.id == id)
    }

    pub fn get(&self, id: TabId) -> Option<&Tab> {
        self.tabs.iter().find(|t| t.id == id)
    }

    pub(super) fn get_mut(&mut self, id: TabId) -> Option<&mut Tab> {
        self.tabs.iter_mut().find(|t| t.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tab> {
        self.tabs.iter()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Tab> {
        self.tabs.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.tabs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tabs.is_empty()
    }

    /// The tab `offset` places from the active one, wrapping around (Ctrl+Tab is +1).
    pub fn cycle(&self, offset: isize) -> Option<TabId> {
        let n = self.tabs.len() as isize;
        let current = self.active.and_then(|id| self.index_of(id))? as isize;
        let index = (current + offset).rem_euclid(n);
        Some(self.tabs[index as usize].id)
    }

    /// The tab for Ctrl+1..Ctrl+9: 1..8 by position, 9 the last tab.
    pub fn nth_for_shortcut(&self, digit: u8) -> Option<TabId> {
        match digit {
            9 => self.tabs.last(),
            1..=8 => self.tabs.get(usize::from(digit) - 1),
            _ => None,
        }
        .map(|t| t.id)
    }

    /// The control protocol's state of a tab.
    pub fn state(&self, id: TabId) -> Option<TabState> {
        let tab = self.get(id)?;
        Some(match tab.life {
            Life::Crashed(_) => TabState::Crashed,
            Life::Discarded { .. } => TabState::Discarded,
            Life::Frozen(_) => TabState::Frozen,
            _ if self.active == Some(id) => TabState::Active,
            _ => TabState::Background,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(n: usize) -> (TabStrip, Vec<TabId>) {
        let mut s = TabStrip::new();
        let now = Instant::now();
        let ids = (0..n)
            .map(|i| {
                let id = s.next_id();
                s.push(Tab::new(
                    id,
                    format!("https://t{i}.example/"),
                    Grants::default(),
                    Life::Discarded { freed_kb: None },
                    now,
                ));
                id
            })
            .collect();
        (s, ids)
    }

    fn order(s: &TabStrip) -> Vec<TabId> {
        s.iter().map(|t| t.id).collect()
    }

    #[test]
    fn first_tab_becomes_active() {
        let (s, ids) = strip(2);
        assert_eq!(s.active(), Some(ids[0]));
    }

    #[test]
    fn closing_active_tab_activates_right_then_left_neighbour() {
        let (mut s, ids) = strip(3);
        s.set_active(ids[1]);
        s.remove(ids[1]);
        assert_eq!(s.active(), Some(ids[2]));
        s.remove(ids[2]);
        assert_eq!(s.active(), Some(ids[0]));
        s.remove(ids[0]);
        assert_eq!(s.active(), None);
        assert!(s.is_empty());
        assert!(s.remove(ids[0]).is_none());
    }

    #[test]
    fn closing_background_tab_keeps_active() {
        let (mut s, ids) = strip(3);
        s.set_active(ids[2]);
        s.remove(ids[0]);
        assert_eq!(s.active(), Some(ids[2]));
    }

    #[test]
    fn cycle_wraps_both_ways() {
        let (mut s, ids) = strip(3);
        s.set_active(ids[2]);
        assert_eq!(s.cycle(1), Some(ids[0]));
        s.set_active(ids[0]);
        assert_eq!(s.cycle(-1), Some(ids[2]));
        assert_eq!(s.cycle(0), Some(ids[0]));
    }

    #[test]
    fn digit_shortcuts() {
        let (s, ids) = strip(3);
        assert_eq!(s.nth_for_shortcut(1), Some(ids[0]));
        assert_eq!(s.nth_for_shortcut(3), Some(ids[2]));
        assert_eq!(s.nth_for_shortcut(4), None);
        assert_eq!(s.nth_for_shortcut(9), Some(ids[2]));
        assert_eq!(s.nth_for_shortcut(0), None);
    }

    #[test]
    fn ids_are_never_reused() {
        let (mut s, ids) = strip(2);
        s.remove(ids[1]);
        assert!(!ids.contains(&s.next_id()));
    }

    #[test]
    fn pinned_tabs_come_first_in_pin_order() {
        let (mut s, ids) = strip(4);
        assert!(s.set_pinned(ids[2], true));
        assert_eq!(order(&s), vec![ids[2], ids[0], ids[1], ids[3]]);
        assert!(s.set_pinned(ids[3], true));
        assert_eq!(order(&s), vec![ids[2], ids[3], ids[0], ids[1]]);
        // Pinning twice changes nothing.
        assert!(s.set_pinned(ids[3], true));
        assert_eq!(order(&s), vec![ids[2], ids[3], ids[0], ids[1]]);
        // An unpinned tab goes to the start of the others.
        assert!(s.set_pinned(ids[2], false));
        assert_eq!(order(&s), vec![ids[3], ids[2], ids[0], ids[1]]);
        assert!(!s.set_pinned(TabId(99), true));
        // A new pinned tab goes after the pinned ones.
        let id = s.next_id();
        let mut tab = Tab::new(
            id,
            "https://p.example/".into(),
            Grants::default(),
            Life::Discarded { freed_kb: None },
            Instant::now(),
        );
        tab.pinned = true;
        assert_eq!(s.push(tab), 1);
    }

    #[test]
    fn states() {
        let (mut s, ids) = strip(2);
        assert_eq!(s.state(ids[0]), Some(TabState::Discarded));
        s.get_mut(ids[1]).unwrap().life =
            Life::Crashed(super::super::life::CrashCause::Known("killed".into()));
        assert_eq!(s.state(ids[1]), Some(TabState::Crashed));
        assert_eq!(s.get(ids[1]).unwrap().crash(), Some("killed"));
        assert_eq!(s.state(TabId(42)), None);
    }

    #[test]
    fn label_falls_back_to_url() {
        let (mut s, ids) = strip(1);
        assert_eq!(s.get(ids[0]).unwrap().label(), "https://t0.example/");
        s.get_mut(ids[0]).unwrap().title = "Grüße".into();
        assert_eq!(s.get(ids[0]).unwrap().label(), "Grüße");
        s.get_mut(ids[0]).unwrap().title = String::new();
        s.get_mut(ids[0]).unwrap().url = warren_ipc::NEW_TAB_URL.into();
        assert_eq!(s.get(ids[0]).unwrap().label(), "New Tab");
    }
}
