//! The tab model: the strip's order, which tab is active, and what the browser knows of each tab.
//!
//! Plain data, no processes and no UI: the renderer host and the window read and update it.

use warren_ipc::TabId;

/// A tab's lifecycle state as the control protocol names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TabState {
    Active,
    Background,
    Frozen,
    Discarded,
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

/// What the browser knows of one tab. Everything here that came from a renderer was validated first.
#[derive(Clone, Debug)]
pub struct Tab {
    pub id: TabId,
    /// The last committed URL, or the URL being opened before the first commit.
    pub url: String,
    pub title: String,
    pub loading: bool,
    pub can_go_back: bool,
    pub can_go_forward: bool,
    /// False once the renderer has missed its ping deadline.
    pub responsive: bool,
    pub pinned: bool,
    /// Why the tab's renderer ended, while the tab shows the crash notice.
    pub crash: Option<String>,
}

impl Tab {
    fn new(id: TabId, url: String) -> Self {
        Self {
            id,
            url,
            title: String::new(),
            loading: true,
            can_go_back: false,
            can_go_forward: false,
            responsive: true,
            pinned: false,
            crash: None,
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
}

/// The tabs of the window, in strip order, and which one is active.
#[derive(Debug, Default)]
pub struct TabStrip {
    tabs: Vec<Tab>,
    active: Option<TabId>,
    next_id: u64,
}

impl TabStrip {
    pub fn new() -> Self {
        Self {
            tabs: Vec::new(),
            active: None,
            next_id: 1,
        }
    }

    /// Appends a tab; it becomes active unless `background` is set (or there was no active tab).
    pub fn add(&mut self, url: String, background: bool) -> TabId {
        let id = TabId(self.next_id);
        self.next_id += 1;
        self.tabs.push(Tab::new(id, url));
        if !background || self.active.is_none() {
            self.active = Some(id);
        }
        id
    }

    /// Removes a tab. When it was active, its right neighbour becomes active, else its left one.
    pub fn remove(&mut self, id: TabId) -> Option<Tab> {
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
    pub fn activate(&mut self, id: TabId) -> bool {
        if self.index_of(id).is_some() {
            self.active = Some(id);
            true
        } else {
            false
        }
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

    pub fn get_mut(&mut self, id: TabId) -> Option<&mut Tab> {
        self.tabs.iter_mut().find(|t| t.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tab> {
        self.tabs.iter()
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

    /// The control protocol's state of a tab with a live (or no) renderer.
    pub fn state(&self, id: TabId) -> Option<TabState> {
        let tab = self.get(id)?;
        Some(if tab.crash.is_some() {
            TabState::Crashed
        } else if self.active == Some(id) {
            TabState::Active
        } else {
            TabState::Background
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(n: usize) -> (TabStrip, Vec<TabId>) {
        let mut s = TabStrip::new();
        let ids = (0..n)
            .map(|i| s.add(format!("https://t{i}.example/"), false))
            .collect();
        (s, ids)
    }

    #[test]
    fn new_tabs_become_active_unless_background() {
        let (mut s, ids) = strip(2);
        assert_eq!(s.active(), Some(ids[1]));
        let bg = s.add("https://bg.example/".into(), true);
        assert_eq!(s.active(), Some(ids[1]));
        assert_eq!(s.state(bg), Some(TabState::Background));
        assert_eq!(s.state(ids[1]), Some(TabState::Active));
    }

    #[test]
    fn first_tab_is_active_even_in_background() {
        let mut s = TabStrip::new();
        let id = s.add("https://a.example/".into(), true);
        assert_eq!(s.active(), Some(id));
    }

    #[test]
    fn closing_active_tab_activates_right_then_left_neighbour() {
        let (mut s, ids) = strip(3);
        s.activate(ids[1]);
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
        s.remove(ids[0]);
        assert_eq!(s.active(), Some(ids[2]));
    }

    #[test]
    fn cycle_wraps_both_ways() {
        let (mut s, ids) = strip(3);
        assert_eq!(s.cycle(1), Some(ids[0]));
        s.activate(ids[0]);
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
        let new = s.add("https://n.example/".into(), false);
        assert!(!ids.contains(&new));
    }

    #[test]
    fn crashed_state_wins() {
        let (mut s, ids) = strip(1);
        s.get_mut(ids[0]).unwrap().crash = Some("killed".into());
        assert_eq!(s.state(ids[0]), Some(TabState::Crashed));
    }

    #[test]
    fn label_falls_back_to_url() {
        let (mut s, ids) = strip(1);
        assert_eq!(s.get(ids[0]).unwrap().label(), "https://t0.example/");
        s.get_mut(ids[0]).unwrap().title = "Grüße".into();
        assert_eq!(s.get(ids[0]).unwrap().label(), "Grüße");
        let nt = s.add(warren_ipc::NEW_TAB_URL.into(), false);
        assert_eq!(s.get(nt).unwrap().label(), "New Tab");
    }
}
