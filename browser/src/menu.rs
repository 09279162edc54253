//! The tab context menu: which items a tab's menu offers, and the native popup window that shows them above the page.
//!
//! The active tab's view is a child X window of another client over the browser's content area,
//! so a menu drawn inside the browser window would be hidden under it. The menu is therefore a
//! window of its own: override-redirect (placed exactly where asked, no window manager frame),
//! typed as a popup menu, painted with egui like the browser's other windows.
//!
//! What the menu offers ([`items`]) is a plain function of the tab, so it is tested without a
//! window; the Task Manager asks the same functions ([`freeze_item`], [`discard_item`]) whether
//! its buttons apply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::text::{LayoutJob, TextFormat, TextWrapping};
use egui::{Color32, FontId, Pos2, Rect, Stroke, Vec2};
use warren_browser::tabs::{Life, Tab, TabState, Tabs, Verb};
use warren_ipc::TabId;
use winit::dpi::{LogicalSize, PhysicalPosition};
use winit::event::{ElementState, MouseButton, WindowEvent};
use winit::event_loop::ActiveEventLoop;
use winit::keyboard::{Key, NamedKey};
use winit::platform::x11::{WindowAttributesExtX11, WindowType};
use winit::window::{Window, WindowId};

use crate::gl::EguiWindow;

/// The menu's width, in points.
const WIDTH: f32 = 248.0;
/// Margin around the menu's contents, in points.
const PAD: f32 = 4.0;
/// Height of the header that names the tab.
const HEADER: f32 = 26.0;
/// Height of one item.
const ITEM: f32 = 26.0;
/// Height of a separator between groups of items.
const SEPARATOR: f32 = 7.0;
/// Height of the footer that explains the selected item (two lines of small text).
const FOOTER: f32 = 40.0;
/// How many items a tab's menu has (see [`items`]).
const ITEMS: usize = 5;
/// The menu's height, in points: the header, the items in four groups, the footer.
const HEIGHT: f32 = PAD + HEADER + 4.0 * SEPARATOR + ITEMS as f32 * ITEM + SEPARATOR + FOOTER + PAD;

/// One entry of a tab's menu.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub label: &'static str,
    /// What choosing the item does.
    pub verb: Verb,
    /// Why the item does not apply to the tab now; `None` when it does.
    pub disabled: Option<&'static str>,
    /// What the item does, in one sentence.
    pub help: &'static str,
}

impl Item {
    pub fn enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// The sentence shown for the item: why it is disabled, else what it does.
    pub fn note(&self) -> &'static str {
        self.disabled.unwrap_or(self.help)
    }
}

/// The menu of a tab, in order: Reload; Pin or Unpin; Freeze or Unfreeze, Discard; Close. Empty
/// when there is no such tab.
pub fn items(tabs: &Tabs, id: TabId) -> Vec<Item> {
    let Some(tab) = tabs.get(id) else {
        return Vec::new();
    };
    let active = tabs.active() == Some(id);
    let reload = Item {
        label: "Reload",
        verb: Verb::Reload(id),
        disabled: None,
        help: match tab.life() {
            Life::Discarded { .. } | Life::Crashed(_) => "Starts the tab again.",
            _ => "Loads the page again.",
        },
    };
    let pin = if tab.pinned {
        Item {
            label: "Unpin",
            verb: Verb::Unpin(id),
            disabled: None,
            help: "Moves the tab back among the others; it may be discarded or frozen again.",
        }
    } else {
        Item {
            label: "Pin",
            verb: Verb::Pin(id),
            disabled: None,
            help: "Keeps the tab first in the strip, never discarded or frozen automatically.",
        }
    };
    let close = Item {
        label: "Close",
        verb: Verb::Close(id),
        disabled: None,
        help: "Closes the tab and ends its processes.",
    };
    vec![
        reload,
        pin,
        freeze_item(tab, active),
        discard_item(tab, active),
        close,
    ]
}

/// Freeze, or Unfreeze for a frozen tab; only a live background tab can be frozen.
pub fn freeze_item(tab: &Tab, active: bool) -> Item {
    let id = tab.id;
    if matches!(tab.life(), Life::Frozen(_)) {
        return Item {
            label: "Unfreeze",
            verb: Verb::Unfreeze(id),
            disabled: None,
            help: "Lets the tab's page run again in the background.",
        };
    }
    let disabled = if active {
        Some("The active tab cannot be frozen: switch to another tab first.")
    } else {
        match tab.life() {
            Life::Live(_) | Life::Frozen(_) => None,
            Life::Starting(_) => Some("The tab is still starting: freeze it once it has loaded."),
            Life::Discarding { .. } => Some("The tab is being discarded."),
            Life::Discarded { .. } => Some("A discarded tab has no process to freeze."),
            Life::Crashed(_) => Some("A crashed tab has no process to freeze."),
        }
    };
    Item {
        label: "Freeze",
        verb: Verb::Freeze(id),
        disabled,
        help: "Pauses the tab's processes until you return to it.",
    }
}

/// Discard: only a background tab with a process can be discarded.
pub fn discard_item(tab: &Tab, active: bool) -> Item {
    let disabled = if active {
        Some("The active tab cannot be discarded: switch to another tab first.")
    } else {
        match tab.life() {
            Life::Starting(_) | Life::Live(_) | Life::Frozen(_) => None,
            Life::Discarding { .. } => Some("The tab is already being discarded."),
            Life::Discarded { .. } => Some("The tab is already discarded."),
            Life::Crashed(_) => Some("A crashed tab has no process to discard."),
        }
    };
    Item {
        label: "Discard",
        verb: Verb::Discard(tab.id),
        disabled,
        help: "Ends the tab's processes to free memory; the page comes back when you return to it.",
    }
}

/// A rounded memory figure for notes ("52 MiB").
pub fn mib_rounded(kb: u64) -> String {
    format!("{} MiB", (kb + 512) / 1024)
}

/// The sentence that says a tab is discarded, with what its discard freed when known.
pub fn discarded_note(freed_kb: Option<u64>) -> String {
    match freed_kb {
        Some(kb) if kb > 0 => format!(
            "Discarded to save memory (freed {}). Click to restore.",
            mib_rounded(kb)
        ),
        _ => "Discarded to save memory. Click to restore.".to_owned(),
    }
}

/// One line about the tab's state, shown in the footer while no item is selected.
fn summary(tabs: &Tabs, id: TabId, now: Instant) -> String {
    let Some(tab) = tabs.get(id) else {
        return "This tab was closed.".to_owned();
    };
    let state = match tabs.state(id) {
        Some(TabState::Active) => "Active tab.".to_owned(),
        Some(TabState::Frozen) => "Frozen: paused until you return to it.".to_owned(),
        Some(TabState::Discarded) => match tab.freed_kb() {
            Some(kb) if kb > 0 => format!("Discarded (freed {}).", mib_rounded(kb)),
            _ => "Discarded.".to_owned(),
        },
        Some(TabState::Crashed) => "Crashed.".to_owned(),
        Some(TabState::Background) | None => "Background tab.".to_owned(),
    };
    match tabs.protection(id, now) {
        Some(p) if tabs.state(id) != Some(TabState::Active) => {
            format!("{state} Kept in memory: {}.", p.as_str())
        }
        _ => state,
    }
}

/// What the menu asks of the app after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MenuEvent {
    None,
    /// The user chose an item: close the menu and apply the verb.
    Chose(Verb),
    /// The user dismissed the menu (Escape, focus elsewhere): close it.
    Dismissed,
}

/// A menu key (winit's keys, translated so the logic is tested without a window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MenuKey {
    Up,
    Down,
    Enter,
    Escape,
}

/// The rectangle of item `index`, in points from the window's top left. The items come in four
/// groups (Reload | Pin | Freeze, Discard | Close) with a separator after the header and between
/// groups.
fn item_rect(index: usize) -> Rect {
    let separators = 1 + match index {
        0 => 0,
        1 => 1,
        2 | 3 => 2,
        _ => 3,
    };
    let top = PAD + HEADER + separators as f32 * SEPARATOR + index as f32 * ITEM;
    Rect::from_min_size(Pos2::new(PAD, top), Vec2::new(WIDTH - 2.0 * PAD, ITEM))
}

/// The separators' vertical centres, in points.
fn separator_ys() -> [f32; 5] {
    let after_header = PAD + HEADER + SEPARATOR / 2.0;
    [
        after_header,
        item_rect(0).bottom() + SEPARATOR / 2.0,
        item_rect(1).bottom() + SEPARATOR / 2.0,
        item_rect(3).bottom() + SEPARATOR / 2.0,
        item_rect(4).bottom() + SEPARATOR / 2.0,
    ]
}

/// The menu's input state, apart from its window.
#[derive(Default)]
struct MenuState {
    /// The items as last painted.
    items: Vec<Item>,
    /// The highlighted item (under the pointer, or chosen with the arrow keys).
    selected: Option<usize>,
    /// A button was pressed inside the menu and not released yet.
    pressed: bool,
    /// The menu has had the keyboard focus: losing it now dismisses the menu.
    had_focus: bool,
    /// Something shown changed: the menu must be repainted.
    dirty: bool,
}

impl MenuState {
    fn set_items(&mut self, items: Vec<Item>) {
        if self.selected.is_some_and(|i| i >= items.len()) {
            self.selected = None;
        }
        self.items = items;
    }

    fn select(&mut self, selected: Option<usize>) {
        if self.selected != selected {
            self.selected = selected;
            self.dirty = true;
        }
    }

    fn key(&mut self, key: MenuKey) -> MenuEvent {
        match key {
            MenuKey::Escape => MenuEvent::Dismissed,
            MenuKey::Enter => match self.selected.and_then(|i| self.items.get(i)) {
                Some(item) if item.enabled() => MenuEvent::Chose(item.verb.clone()),
                _ => MenuEvent::None,
            },
            MenuKey::Up | MenuKey::Down => {
                // The arrows skip disabled items and wrap around, as in native menus.
                let n = self.items.len();
                let step = if key == MenuKey::Down {
                    1
                } else {
                    n.saturating_sub(1)
                };
                let start = match (self.selected, key) {
                    (Some(i), _) => i,
                    (None, MenuKey::Down) => n.saturating_sub(1),
                    (None, _) => 0,
                };
                let next = (1..=n)
                    .map(|k| (start + k * step) % n)
                    .find(|&i| self.items[i].enabled());
                if next.is_some() {
                    self.select(next);
                }
                MenuEvent::None
            }
        }
    }

    fn item_at(&self, pos: Pos2) -> Option<usize> {
        (0..self.items.len()).find(|&i| item_rect(i).contains(pos))
    }

    fn pointer_moved(&mut self, pos: Pos2) {
        let over = self.item_at(pos);
        // Leaving the items for the header or footer keeps a keyboard selection.
        if over.is_some() {
            self.select(over);
        }
    }

    fn press(&mut self) {
        self.pressed = true;
    }

    /// A button was released at `pos`: an enabled item under it is chosen, if the press began in
    /// the menu (so the release of the click that opened it chooses nothing).
    fn release(&mut self, pos: Option<Pos2>) -> MenuEvent {
        let pressed = std::mem::take(&mut self.pressed);
        match pos.and_then(|p| self.item_at(p)).map(|i| &self.items[i]) {
            Some(item) if pressed && item.enabled() => MenuEvent::Chose(item.verb.clone()),
            _ => MenuEvent::None,
        }
    }

    fn focus(&mut self, focused: bool) -> MenuEvent {
        if focused {
            self.had_focus = true;
            MenuEvent::None
        } else if self.had_focus {
            MenuEvent::Dismissed
        } else {
            MenuEvent::None
        }
    }
}

/// Where a menu of `size` goes for a click at `at`, inside `screen` (all in physical pixels): at
/// the click, moved left when it would leave the right edge, and above the click when it would
/// leave the bottom.
fn place(
    at: PhysicalPosition<i32>,
    size: (i32, i32),
    screen: (PhysicalPosition<i32>, (i32, i32)),
) -> PhysicalPosition<i32> {
    let (origin, (sw, sh)) = screen;
    let (w, h) = size;
    let mut x = at.x;
    let mut y = at.y;
    if x + w > origin.x + sw {
        x = origin.x + sw - w;
    }
    if y + h > origin.y + sh {
        y = at.y - h;
    }
    PhysicalPosition::new(x.max(origin.x), y.max(origin.y))
}

/// A tab's context menu in its own popup window. The app owns it while it is open, routes the
/// window's events to [`TabMenu::on_event`], paints it with [`TabMenu::redraw`] on
/// `RedrawRequested`, and calls [`TabMenu::destroy`] before dropping it.
pub struct TabMenu {
    window: EguiWindow,
    tab: TabId,
    state: MenuState,
    /// The pointer, in points from the window's top left.
    pointer: Option<Pos2>,
}

impl TabMenu {
    /// Opens the menu of tab `tab` with its top left corner at `at`, in screen coordinates
    /// (physical pixels), moved to stay on the screen. The window is mapped when this returns, so
    /// the app can give it the keyboard focus at once (`keys::Focus::focus_window`); it then
    /// closes itself when it loses the focus. `on_repaint` is called when egui wants a repaint.
    pub fn open(
        event_loop: &ActiveEventLoop,
        on_repaint: impl Fn(Duration) + Send + Sync + 'static,
        tab: TabId,
        at: PhysicalPosition<i32>,
    ) -> Result<Self, String> {
        let monitor = event_loop
            .available_monitors()
            .find(|m| {
                let p = m.position();
                let s = m.size();
                at.x >= p.x
                    && at.y >= p.y
                    && at.x < p.x + s.width as i32
                    && at.y < p.y + s.height as i32
            })
            .or_else(|| event_loop.primary_monitor());
        let scale = monitor.as_ref().map_or(1.0, |m| m.scale_factor());
        let size = (
            (f64::from(WIDTH) * scale).round() as i32,
            (f64::from(HEIGHT) * scale).round() as i32,
        );
        let position = match &monitor {
            Some(m) => {
                let s = m.size();
                place(at, size, (m.position(), (s.width as i32, s.height as i32)))
            }
            None => at,
        };
        let attributes = Window::default_attributes()
            .with_title("Tab menu")
            .with_decorations(false)
            .with_resizable(false)
            .with_inner_size(LogicalSize::new(WIDTH, HEIGHT))
            .with_position(position)
            .with_override_redirect(true)
            .with_x11_window_type(vec![WindowType::PopupMenu]);
        let window = EguiWindow::new(event_loop, attributes, on_repaint)?;
        window.window().request_redraw();
        Ok(Self {
            window,
            tab,
            state: MenuState::default(),
            pointer: None,
        })
    }

    pub fn id(&self) -> WindowId {
        self.window.window().id()
    }

    /// The tab the menu is for.
    pub fn tab(&self) -> TabId {
        self.tab
    }

    /// The X11 id of the menu window, to give it the keyboard focus.
    pub fn x11_window(&self) -> u64 {
        self.window.x11_window
    }

    pub fn request_redraw(&self) {
        self.window.window().request_redraw();
    }

    /// Handles one of the menu window's events (all but `RedrawRequested`, which is
    /// [`TabMenu::redraw`]'s).
    pub fn on_event(&mut self, event: &WindowEvent) -> MenuEvent {
        let egui_repaint = self.window.on_event(event);
        let scale = self.window.pixels_per_point().max(0.1);
        let outcome = match event {
            WindowEvent::CloseRequested | WindowEvent::Destroyed => MenuEvent::Dismissed,
            WindowEvent::Focused(focused) => self.state.focus(*focused),
            WindowEvent::KeyboardInput { event, .. } if event.state == ElementState::Pressed => {
                let key = match &event.logical_key {
                    Key::Named(NamedKey::ArrowUp) => Some(MenuKey::Up),
                    Key::Named(NamedKey::ArrowDown) => Some(MenuKey::Down),
                    Key::Named(NamedKey::Enter | NamedKey::Space) => Some(MenuKey::Enter),
                    Key::Named(NamedKey::Escape) => Some(MenuKey::Escape),
                    _ => None,
                };
                key.map_or(MenuEvent::None, |k| self.state.key(k))
            }
            WindowEvent::CursorMoved { position, .. } => {
                let pos = Pos2::new(position.x as f32 / scale, position.y as f32 / scale);
                self.pointer = Some(pos);
                self.state.pointer_moved(pos);
                MenuEvent::None
            }
            WindowEvent::CursorLeft { .. } => {
                self.pointer = None;
                MenuEvent::None
            }
            WindowEvent::MouseInput {
                state: ElementState::Pressed,
                ..
            } => {
                self.state.press();
                MenuEvent::None
            }
            WindowEvent::MouseInput {
                state: ElementState::Released,
                button: MouseButton::Left | MouseButton::Right,
                ..
            } => self.state.release(self.pointer),
            _ => MenuEvent::None,
        };
        if egui_repaint || std::mem::take(&mut self.state.dirty) {
            self.request_redraw();
        }
        outcome
    }

    /// Paints the menu for the tab as it is now.
    pub fn redraw(&mut self, tabs: &Tabs) {
        self.state.set_items(items(tabs, self.tab));
        self.state.dirty = false;
        let title = tabs
            .get(self.tab)
            .map_or_else(String::new, |t| t.label().to_owned());
        let footer = match self.state.selected.and_then(|i| self.state.items.get(i)) {
            Some(item) => item.note().to_owned(),
            None => summary(tabs, self.tab, Instant::now()),
        };
        let state = &self.state;
        self.window.paint([0.99, 0.99, 0.99, 1.0], None, |ui| {
            paint_menu(ui, state, &title, &footer)
        });
    }

    /// Frees the window's GL objects; call before dropping.
    pub fn destroy(&mut self) {
        self.window.destroy();
    }
}

/// `text` laid out on one line no wider than `width`, cut with an ellipsis.
fn one_line(
    painter: &egui::Painter,
    text: &str,
    font: FontId,
    color: Color32,
    width: f32,
) -> Arc<egui::Galley> {
    let mut job = LayoutJob::single_section(text.to_owned(), TextFormat::simple(font, color));
    job.wrap = TextWrapping::truncate_at_width(width);
    painter.layout_job(job)
}

fn paint_menu(ui: &mut egui::Ui, state: &MenuState, title: &str, footer: &str) {
    let painter = ui.painter();
    let whole = Rect::from_min_size(Pos2::ZERO, Vec2::new(WIDTH, HEIGHT));
    painter.rect_stroke(
        whole,
        0.0,
        Stroke::new(1.0, Color32::from_gray(170)),
        egui::StrokeKind::Inside,
    );
    let inner = WIDTH - 2.0 * PAD - 16.0;
    let header = one_line(
        painter,
        title,
        FontId::proportional(12.0),
        Color32::from_gray(110),
        inner,
    );
    painter.galley(
        Pos2::new(PAD + 8.0, PAD + (HEADER - header.size().y) / 2.0),
        header,
        Color32::from_gray(110),
    );
    for y in separator_ys() {
        painter.hline(
            (PAD + 4.0)..=(WIDTH - PAD - 4.0),
            y,
            Stroke::new(1.0, Color32::from_gray(222)),
        );
    }
    for (i, item) in state.items.iter().enumerate() {
        let rect = item_rect(i);
        let selected = state.selected == Some(i);
        if selected {
            let fill = if item.enabled() {
                Color32::from_rgb(214, 228, 248)
            } else {
                Color32::from_gray(238)
            };
            painter.rect_filled(rect, 4.0, fill);
        }
        let color = if item.enabled() {
            Color32::from_gray(30)
        } else {
            Color32::from_gray(165)
        };
        painter.text(
            rect.left_center() + Vec2::new(12.0, 0.0),
            egui::Align2::LEFT_CENTER,
            item.label,
            FontId::proportional(14.0),
            color,
        );
    }
    let top = item_rect(ITEMS - 1).bottom() + SEPARATOR;
    let mut job = LayoutJob::single_section(
        footer.to_owned(),
        TextFormat::simple(FontId::proportional(11.5), Color32::from_gray(90)),
    );
    job.wrap = TextWrapping {
        max_width: inner,
        max_rows: 2,
        break_anywhere: false,
        overflow_character: Some('…'),
    };
    let galley = painter.layout_job(job);
    painter.galley(
        Pos2::new(PAD + 8.0, top + 3.0),
        galley,
        Color32::from_gray(90),
    );
}

/// A fake renderer and launcher for the browser binary's tests: [`Tabs`] runs on them without
/// processes, and a test moves tabs through their states with [`fake::World`].
#[cfg(test)]
pub(crate) mod fake {
    use std::cell::RefCell;
    use std::collections::{HashMap, VecDeque};
    use std::rc::Rc;
    use std::time::Instant;

    use warren_browser::host::HostEvent;
    use warren_browser::tabs::{Launcher, Outcome, Renderer, Start, Tabs, Verb};
    use warren_ipc::{BrowserToRenderer, RendererToBrowser, TabId};

    /// Every fake renderer's pending events, by pid.
    #[derive(Default)]
    pub struct Queues {
        next_pid: u32,
        events: HashMap<u32, VecDeque<HostEvent>>,
    }

    type Shared = Rc<RefCell<Queues>>;

    /// What a fake renderer's tree holds when it is discarded: 52 MiB.
    pub const FOOTPRINT_KB: u64 = 52 * 1024;

    struct FakeRenderer {
        pid: u32,
        queues: Shared,
    }

    impl Renderer for FakeRenderer {
        fn pid(&self) -> u32 {
            self.pid
        }
        fn send(&self, _msg: BrowserToRenderer) -> Result<(), &'static str> {
            Ok(())
        }
        fn try_recv(&self) -> Option<HostEvent> {
            self.queues
                .borrow_mut()
                .events
                .get_mut(&self.pid)
                .and_then(VecDeque::pop_front)
        }
        fn has_events(&self) -> bool {
            self.queues
                .borrow()
                .events
                .get(&self.pid)
                .is_some_and(|q| !q.is_empty())
        }
        fn request_shutdown(&self) {}
        fn kill(&mut self) {}
        fn mark_reaped(&mut self) {}
        fn stop(&mut self) -> Result<(), String> {
            Ok(())
        }
        fn resume(&mut self) {}
        fn footprint_kb(&self) -> Option<u64> {
            Some(FOOTPRINT_KB)
        }
    }

    struct FakeLauncher(Shared);

    impl Launcher for FakeLauncher {
        fn launch(&mut self, _id: TabId, _start: Start) -> Result<Box<dyn Renderer>, String> {
            let mut q = self.0.borrow_mut();
            q.next_pid += 1;
            Ok(Box::new(FakeRenderer {
                pid: 4000 + q.next_pid,
                queues: Rc::clone(&self.0),
            }))
        }
    }

    /// A tab model on fake renderers, and the means to move its tabs between states.
    pub struct World {
        pub tabs: Tabs,
        pub now: Instant,
        queues: Shared,
    }

    impl World {
        pub fn new() -> Self {
            let queues: Shared = Rc::default();
            let now = Instant::now();
            Self {
                tabs: Tabs::new(Box::new(FakeLauncher(Rc::clone(&queues))), now),
                now,
                queues,
            }
        }

        /// Opens a tab in the background (the first one becomes active); it is starting.
        pub fn open(&mut self, url: &str) -> TabId {
            let verb = Verb::Open {
                url: url.to_owned(),
                background: true,
            };
            match self.tabs.apply(verb, None, self.now) {
                Ok(Outcome::Opened(id)) => id,
                other => panic!("opening {url} gave {other:?}"),
            }
        }

        /// Delivers a renderer message to a tab with a process.
        pub fn message(&mut self, id: TabId, msg: RendererToBrowser) {
            let pid = self
                .tabs
                .get(id)
                .and_then(|t| t.renderer_pid())
                .expect("the tab has a renderer");
            self.queues
                .borrow_mut()
                .events
                .entry(pid)
                .or_default()
                .push_back(HostEvent::Message(msg));
            self.tabs.poll_renderers(self.now);
        }

        /// Opens a tab whose view is built and whose page has loaded.
        pub fn open_live(&mut self, url: &str) -> TabId {
            let id = self.open(url);
            self.message(id, RendererToBrowser::Ready { landlock: true });
            self.message(id, RendererToBrowser::Loading(false));
            id
        }

        pub fn apply(&mut self, verb: Verb) {
            if let Err(e) = self.tabs.apply(verb.clone(), None, self.now) {
                panic!("{verb:?} failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::World;
    use super::*;

    fn labels(items: &[Item]) -> Vec<(&'static str, bool)> {
        items.iter().map(|i| (i.label, i.enabled())).collect()
    }

    #[test]
    fn active_tab_can_be_neither_frozen_nor_discarded() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let items = items(&w.tabs, a);
        assert_eq!(
            labels(&items),
            vec![
                ("Reload", true),
                ("Pin", true),
                ("Freeze", false),
                ("Discard", false),
                ("Close", true)
            ]
        );
        assert!(items[2].note().contains("active tab"));
        assert!(items[3].note().contains("active tab"));
        assert_eq!(items[4].verb, Verb::Close(a));
    }

    #[test]
    fn background_live_tab_can_be_frozen_and_discarded() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open_live("https://b.example/");
        let items = items(&w.tabs, b);
        assert_eq!(items[2].verb, Verb::Freeze(b));
        assert!(items[2].enabled());
        assert_eq!(items[3].verb, Verb::Discard(b));
        assert!(items[3].enabled());
    }

    #[test]
    fn frozen_tab_offers_unfreeze_and_discard() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open_live("https://b.example/");
        w.apply(Verb::Freeze(b));
        let items = items(&w.tabs, b);
        assert_eq!(
            (items[2].label, items[2].verb.clone(), items[2].enabled()),
            ("Unfreeze", Verb::Unfreeze(b), true)
        );
        assert!(items[3].enabled());
    }

    #[test]
    fn starting_tab_can_be_discarded_but_not_frozen() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open("https://b.example/");
        let items = items(&w.tabs, b);
        assert!(!items[2].enabled());
        assert!(items[2].note().contains("starting"));
        assert!(items[3].enabled());
    }

    #[test]
    fn discarded_and_crashed_tabs_have_nothing_to_freeze_or_discard() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open("https://b.example/");
        let c = w.open_live("https://c.example/");
        w.apply(Verb::Discard(b));
        w.apply(Verb::EndProcess(c));
        let discarded = items(&w.tabs, b);
        assert_eq!(
            labels(&discarded)[2..4],
            [("Freeze", false), ("Discard", false)]
        );
        assert!(discarded[3].note().contains("already discarded"));
        assert_eq!(discarded[0].help, "Starts the tab again.");
        let crashed = items(&w.tabs, c);
        assert_eq!(
            labels(&crashed)[2..4],
            [("Freeze", false), ("Discard", false)]
        );
        assert!(crashed[2].note().contains("crashed"));
        // Reload, Pin and Close always apply.
        for items in [&discarded, &crashed] {
            assert!(items[0].enabled() && items[1].enabled() && items[4].enabled());
        }
    }

    #[test]
    fn pinned_tab_offers_unpin() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        w.apply(Verb::Pin(a));
        let items = items(&w.tabs, a);
        assert_eq!(
            (items[1].label, items[1].verb.clone()),
            ("Unpin", Verb::Unpin(a))
        );
    }

    #[test]
    fn a_closed_tab_has_no_items() {
        let w = World::new();
        assert!(items(&w.tabs, TabId(7)).is_empty());
        assert_eq!(summary(&w.tabs, TabId(7), w.now), "This tab was closed.");
    }

    #[test]
    fn summary_names_the_state_and_the_protection() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open_live("https://b.example/");
        let c = w.open("https://c.example/");
        w.message(b, warren_ipc::RendererToBrowser::FormEdited(true));
        w.apply(Verb::Discard(c));
        assert_eq!(
            summary(&w.tabs, b, w.now),
            "Background tab. Kept in memory: form input."
        );
        assert_eq!(summary(&w.tabs, c, w.now), "Discarded (freed 52 MiB).");
    }

    #[test]
    fn discarded_note_says_what_was_freed_when_known() {
        assert_eq!(
            discarded_note(Some(52 * 1024 + 100)),
            "Discarded to save memory (freed 52 MiB). Click to restore."
        );
        assert_eq!(
            discarded_note(None),
            "Discarded to save memory. Click to restore."
        );
        assert_eq!(discarded_note(Some(0)), discarded_note(None));
    }

    fn state_for(w: &World, id: TabId) -> MenuState {
        let mut state = MenuState::default();
        state.set_items(items(&w.tabs, id));
        state
    }

    #[test]
    fn arrows_skip_disabled_items_and_wrap() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let mut s = state_for(&w, a);
        // Freeze and Discard are disabled on the active tab.
        s.key(MenuKey::Down);
        assert_eq!(s.selected, Some(0));
        s.key(MenuKey::Down);
        assert_eq!(s.selected, Some(1));
        s.key(MenuKey::Down);
        assert_eq!(s.selected, Some(4));
        s.key(MenuKey::Down);
        assert_eq!(s.selected, Some(0));
        s.key(MenuKey::Up);
        assert_eq!(s.selected, Some(4));
        assert_eq!(s.key(MenuKey::Enter), MenuEvent::Chose(Verb::Close(a)));
        assert_eq!(s.key(MenuKey::Escape), MenuEvent::Dismissed);
    }

    #[test]
    fn up_from_nothing_selects_the_last_enabled_item() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let mut s = state_for(&w, a);
        assert_eq!(s.key(MenuKey::Enter), MenuEvent::None);
        s.key(MenuKey::Up);
        assert_eq!(s.selected, Some(4));
    }

    #[test]
    fn a_click_chooses_an_enabled_item_only() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let mut s = state_for(&w, a);
        let reload = item_rect(0).center();
        let freeze = item_rect(2).center();
        // A release without a press in the menu (the click that opened it) chooses nothing.
        s.pointer_moved(reload);
        assert_eq!(s.release(Some(reload)), MenuEvent::None);
        s.press();
        assert_eq!(s.release(Some(reload)), MenuEvent::Chose(Verb::Reload(a)));
        // A disabled item is highlighted (its reason shows) but cannot be chosen.
        s.pointer_moved(freeze);
        assert_eq!(s.selected, Some(2));
        s.press();
        assert_eq!(s.release(Some(freeze)), MenuEvent::None);
        // The header is no item.
        s.press();
        assert_eq!(s.release(Some(Pos2::new(20.0, PAD + 4.0))), MenuEvent::None);
    }

    #[test]
    fn losing_focus_dismisses_only_after_having_had_it() {
        let mut s = MenuState::default();
        assert_eq!(s.focus(false), MenuEvent::None);
        assert_eq!(s.focus(true), MenuEvent::None);
        assert_eq!(s.focus(false), MenuEvent::Dismissed);
    }

    #[test]
    fn items_fit_inside_the_window_without_overlapping() {
        for i in 0..ITEMS {
            let r = item_rect(i);
            assert!(r.top() >= PAD + HEADER && r.bottom() <= HEIGHT - PAD - FOOTER);
            if i + 1 < ITEMS {
                assert!(r.bottom() <= item_rect(i + 1).top());
            }
        }
    }

    #[test]
    fn placement_keeps_the_menu_on_screen() {
        let screen = (PhysicalPosition::new(0, 0), (1024, 768));
        let size = (248, 239);
        assert_eq!(
            place(PhysicalPosition::new(100, 30), size, screen),
            PhysicalPosition::new(100, 30)
        );
        // Too far right: moved left to the edge.
        assert_eq!(
            place(PhysicalPosition::new(900, 30), size, screen),
            PhysicalPosition::new(1024 - 248, 30)
        );
        // Too low: opened above the click.
        assert_eq!(
            place(PhysicalPosition::new(100, 700), size, screen),
            PhysicalPosition::new(100, 700 - 239)
        );
    }
}
