//! The clipboard broker's rules, free of X I/O so they can be tested with a fake clock.
//!
//! A renderer controls everything on its nested display, so nothing seen there may open the
//! user's clipboard: only a gesture on the outer display (read here as keysyms and buttons) into
//! the page the user sees lets that page read, and only for a moment.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use warren_ipc::TabId;

/// How long after a paste gesture the page it went to may read the user's selection. Long enough
/// for a page to ask for TARGETS and then one or two formats; short enough that a script polling
/// the clipboard from a timer gets nothing useful.
pub const GESTURE_WINDOW: Duration = Duration::from_secs(1);

/// How long a page's request may wait for the gesture that caused it: the page sees the key on
/// its own display and may ask before the broker has read the same key on the outer display.
pub const REQUEST_GRACE: Duration = Duration::from_millis(300);

/// The two selections the broker shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Selection {
    Clipboard,
    Primary,
}

/// The modifier keys held on the outer keyboard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Modifiers {
    pub control: bool,
    pub shift: bool,
    pub alt: bool,
}

mod keysym {
    pub const V_LOWER: u32 = 0x0076;
    pub const V_UPPER: u32 = 0x0056;
    pub const INSERT: u32 = 0xff63;
    pub const KP_INSERT: u32 = 0xff9e;
    pub const SHIFT_L: u32 = 0xffe1;
    pub const SHIFT_R: u32 = 0xffe2;
    pub const CONTROL_L: u32 = 0xffe3;
    pub const CONTROL_R: u32 = 0xffe4;
    pub const META_L: u32 = 0xffe7;
    pub const META_R: u32 = 0xffe8;
    pub const ALT_L: u32 = 0xffe9;
    pub const ALT_R: u32 = 0xffea;
}

/// Which selection a key press asks to paste: Ctrl+V and Ctrl+Shift+V paste CLIPBOARD, and so
/// does Shift+Insert. `keysym` is the key's unshifted keysym.
pub fn paste_gesture_for_key(keysym: u32, mods: Modifiers) -> Option<Selection> {
    match keysym {
        keysym::V_LOWER | keysym::V_UPPER if mods.control && !mods.alt => {
            Some(Selection::Clipboard)
        }
        keysym::INSERT | keysym::KP_INSERT if mods.shift && !mods.control && !mods.alt => {
            Some(Selection::Clipboard)
        }
        _ => None,
    }
}

/// Which selection a button press asks to paste: the middle button pastes PRIMARY, nothing else.
pub fn paste_gesture_for_button(button: u32) -> Option<Selection> {
    (button == 2).then_some(Selection::Primary)
}

/// Tracks which modifier keys are held from raw key events, in event order: asking the server for
/// its modifier state when the V arrives would race with the release of Control.
#[derive(Debug, Default)]
pub struct ModifierTracker {
    held: HashSet<u32>,
}

impl ModifierTracker {
    /// A key went down or up; `keysym` is its unshifted keysym.
    pub fn key(&mut self, keycode: u32, keysym: u32, pressed: bool) {
        if modifier_of(keysym).is_none() {
            return;
        }
        if pressed {
            self.held.insert(keycode);
        } else {
            self.held.remove(&keycode);
        }
    }

    /// The modifiers held now, given each held keycode's keysym.
    pub fn modifiers(&self, keysym_of: impl Fn(u32) -> u32) -> Modifiers {
        let mut mods = Modifiers::default();
        for &code in &self.held {
            match modifier_of(keysym_of(code)) {
                Some(Modifier::Control) => mods.control = true,
                Some(Modifier::Shift) => mods.shift = true,
                Some(Modifier::Alt) => mods.alt = true,
                None => {}
            }
        }
        mods
    }
}

enum Modifier {
    Control,
    Shift,
    Alt,
}

fn modifier_of(keysym: u32) -> Option<Modifier> {
    match keysym {
        keysym::CONTROL_L | keysym::CONTROL_R => Some(Modifier::Control),
        keysym::SHIFT_L | keysym::SHIFT_R => Some(Modifier::Shift),
        keysym::ALT_L | keysym::ALT_R | keysym::META_L | keysym::META_R => Some(Modifier::Alt),
        _ => None,
    }
}

/// A paste gesture the user made on the outer display into a tab's page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gesture {
    pub tab: TabId,
    pub selection: Selection,
    pub at: Instant,
}

/// What to do with a page's request to read a selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadDecision {
    /// Serve the user's selection; the gesture allowing it is given.
    Allow(Gesture),
    /// No gesture yet: keep the request until this instant, then refuse.
    Wait(Instant),
    Refuse,
}

/// Decides a read of `selection` by the page of tab `requester`, asked at `asked`.
/// `gesture` is the last paste gesture for that selection.
pub fn decide_read(
    requester: TabId,
    selection: Selection,
    active: Option<TabId>,
    gesture: Option<Gesture>,
    asked: Instant,
    now: Instant,
) -> ReadDecision {
    if active != Some(requester) {
        return ReadDecision::Refuse;
    }
    if let Some(g) = gesture {
        let fresh = now.saturating_duration_since(g.at) <= GESTURE_WINDOW;
        if g.tab == requester && g.selection == selection && fresh {
            return ReadDecision::Allow(g);
        }
    }
    let until = asked + REQUEST_GRACE;
    if now < until {
        ReadDecision::Wait(until)
    } else {
        ReadDecision::Refuse
    }
}

/// Whether a tab's page taking a selection on its display may set the user's selection: only the
/// page the user sees may, so a background tab cannot replace what the user copied.
pub fn may_publish(tab: TabId, active: Option<TabId>) -> bool {
    active == Some(tab)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTRL: Modifiers = Modifiers {
        control: true,
        shift: false,
        alt: false,
    };
    const SHIFT: Modifiers = Modifiers {
        control: false,
        shift: true,
        alt: false,
    };

    #[test]
    fn paste_keys() {
        assert_eq!(
            paste_gesture_for_key(keysym::V_LOWER, CTRL),
            Some(Selection::Clipboard)
        );
        let ctrl_shift = Modifiers {
            shift: true,
            ..CTRL
        };
        assert_eq!(
            paste_gesture_for_key(keysym::V_LOWER, ctrl_shift),
            Some(Selection::Clipboard)
        );
        assert_eq!(
            paste_gesture_for_key(keysym::INSERT, SHIFT),
            Some(Selection::Clipboard)
        );
        assert_eq!(
            paste_gesture_for_key(keysym::KP_INSERT, SHIFT),
            Some(Selection::Clipboard)
        );
        // Not pastes.
        assert_eq!(
            paste_gesture_for_key(keysym::V_LOWER, Modifiers::default()),
            None
        );
        assert_eq!(paste_gesture_for_key(keysym::V_LOWER, SHIFT), None);
        assert_eq!(paste_gesture_for_key(keysym::INSERT, CTRL), None);
        assert_eq!(
            paste_gesture_for_key(keysym::INSERT, Modifiers::default()),
            None
        );
        let ctrl_alt = Modifiers { alt: true, ..CTRL };
        assert_eq!(paste_gesture_for_key(keysym::V_LOWER, ctrl_alt), None);
        assert_eq!(paste_gesture_for_key(0x0063 /* c */, CTRL), None);
    }

    #[test]
    fn only_the_middle_button_pastes_primary() {
        assert_eq!(paste_gesture_for_button(2), Some(Selection::Primary));
        for b in [1, 3, 4, 5, 8] {
            assert_eq!(paste_gesture_for_button(b), None);
        }
    }

    #[test]
    fn modifiers_follow_raw_events() {
        let keymap = |code: u32| match code {
            37 => keysym::CONTROL_L,
            50 => keysym::SHIFT_L,
            64 => keysym::ALT_L,
            55 => keysym::V_LOWER,
            _ => 0,
        };
        let mut t = ModifierTracker::default();
        t.key(37, keymap(37), true);
        t.key(55, keymap(55), true);
        assert_eq!(t.modifiers(keymap), CTRL);
        t.key(50, keymap(50), true);
        assert!(t.modifiers(keymap).shift);
        t.key(37, keymap(37), false);
        t.key(50, keymap(50), false);
        assert_eq!(t.modifiers(keymap), Modifiers::default());
        t.key(64, keymap(64), true);
        assert!(t.modifiers(keymap).alt);
    }

    fn gesture(tab: u64, selection: Selection, at: Instant) -> Gesture {
        Gesture {
            tab: TabId(tab),
            selection,
            at,
        }
    }

    #[test]
    fn reads_need_the_active_tab_and_a_fresh_gesture() {
        let t0 = Instant::now();
        let g = gesture(1, Selection::Clipboard, t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        // The gesture, then the request.
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                Some(TabId(1)),
                Some(g),
                at(50),
                at(50)
            ),
            ReadDecision::Allow(g)
        );
        // A background tab, even with the gesture aimed at it.
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                Some(TabId(2)),
                Some(g),
                at(50),
                at(50)
            ),
            ReadDecision::Refuse
        );
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                None,
                Some(g),
                at(50),
                at(50)
            ),
            ReadDecision::Refuse
        );
        // A gesture into another tab, or for the other selection.
        let other = gesture(2, Selection::Clipboard, t0);
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                Some(TabId(1)),
                Some(other),
                at(0),
                at(400)
            ),
            ReadDecision::Refuse
        );
        let middle = gesture(1, Selection::Primary, t0);
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                Some(TabId(1)),
                Some(middle),
                at(10),
                at(10)
            ),
            ReadDecision::Wait(at(10) + REQUEST_GRACE)
        );
        // A stale gesture: the page reads from a timer.
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                Some(TabId(1)),
                Some(g),
                at(1500),
                at(1900)
            ),
            ReadDecision::Refuse
        );
    }

    #[test]
    fn a_request_waits_briefly_for_its_gesture() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                Some(TabId(1)),
                None,
                t0,
                at(10)
            ),
            ReadDecision::Wait(t0 + REQUEST_GRACE)
        );
        // The gesture arrives while the request waits.
        let g = gesture(1, Selection::Clipboard, at(100));
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                Some(TabId(1)),
                Some(g),
                t0,
                at(100)
            ),
            ReadDecision::Allow(g)
        );
        // It never does.
        assert_eq!(
            decide_read(
                TabId(1),
                Selection::Clipboard,
                Some(TabId(1)),
                None,
                t0,
                at(300)
            ),
            ReadDecision::Refuse
        );
    }

    #[test]
    fn only_the_active_tab_publishes() {
        assert!(may_publish(TabId(3), Some(TabId(3))));
        assert!(!may_publish(TabId(3), Some(TabId(4))));
        assert!(!may_publish(TabId(3), None));
    }
}
