//! The browser window: the egui chrome (tab strip, toolbar, browser-drawn screens) over the content area where the active tab's view sits.

use std::time::{Duration, Instant};

use warren_browser::tabs::Tabs;
use warren_browser::url_input;
use warren_ipc::Bounds;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::ActiveEventLoop;
use winit::window::{Window, WindowId};

use crate::chrome::{self, Action, ChromeState};
use crate::gl::EguiWindow;
use crate::keys;

/// What a window event means for the rest of the browser.
#[derive(Debug, PartialEq, Eq)]
pub enum WindowOutcome {
    /// Nothing beyond the window itself.
    None,
    /// The user asked to close the window: quit.
    CloseRequested,
    /// The window must be painted now.
    RedrawRequested,
    /// The user clicked the chrome (an open tab menu closes).
    Clicked,
}

/// The browser window. Fields drop in declaration order: the focus proxy, a child of the window,
/// goes first.
pub struct BrowserWindow {
    /// A 1×1 child window out of sight that holds X focus for the chrome (see [`keys::Focus`]).
    focus_proxy: Option<Window>,
    /// Moves X keyboard focus between the chrome, pages and the browser's other windows.
    pub focus: Option<keys::Focus>,
    window: EguiWindow,
    pub chrome: ChromeState,
    /// The content area in physical pixels, as last laid out.
    content: Bounds,
    /// The window title last set (setting it writes an X property: only on change).
    title: String,
}

impl BrowserWindow {
    /// Creates the window (shown once created) and its focus proxy. `on_repaint` is called when
    /// egui wants a repaint after a delay.
    pub fn create(
        event_loop: &ActiveEventLoop,
        on_repaint: impl Fn(Duration) + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let attributes = Window::default_attributes()
            .with_title("Warren")
            .with_inner_size(winit::dpi::LogicalSize::new(1024.0, 768.0))
            .with_position(winit::dpi::PhysicalPosition::new(0, 0))
            .with_visible(false);
        let window = EguiWindow::new(event_loop, attributes, on_repaint)?;
        window.window().set_visible(true);
        let focus_proxy = create_focus_proxy(event_loop, window.window());
        let focus = focus_proxy
            .as_ref()
            .ok_or_else(|| "no focus proxy window".to_owned())
            .and_then(|(_, xid)| keys::Focus::new(window.x11_window, *xid))
            .map_err(|e| log::warn!("the chrome cannot take the keyboard back from pages: {e}"))
            .ok();
        let mut this = Self {
            focus_proxy: focus_proxy.map(|(w, _)| w),
            focus,
            window,
            chrome: ChromeState::default(),
            content: Bounds::default(),
            title: String::new(),
        };
        this.update_content_bounds(None);
        Ok(this)
    }

    pub fn id(&self) -> WindowId {
        self.window.window().id()
    }

    /// Whether `id` is this window or its focus proxy.
    pub fn owns(&self, id: WindowId) -> bool {
        self.id() == id || self.focus_proxy.as_ref().is_some_and(|p| p.id() == id)
    }

    /// The X11 id of the window, which renderers embed their views into.
    pub fn x11_window(&self) -> u64 {
        self.window.x11_window
    }

    pub fn winit(&self) -> &Window {
        self.window.window()
    }

    pub fn request_redraw(&self) {
        self.window.window().request_redraw();
    }

    /// The content area in physical pixels.
    pub fn content_bounds(&self) -> Bounds {
        self.content
    }

    /// Handles an event of the window or its focus proxy.
    pub fn handle_event(&mut self, id: WindowId, event: &WindowEvent) -> WindowOutcome {
        if id != self.id() {
            // The proxy only relays the keyboard to the chrome.
            if matches!(
                event,
                WindowEvent::KeyboardInput { .. }
                    | WindowEvent::ModifiersChanged(_)
                    | WindowEvent::Ime(_)
            ) && self.window.on_event(event)
            {
                self.request_redraw();
            }
            return WindowOutcome::None;
        }
        let mut outcome = WindowOutcome::None;
        match event {
            WindowEvent::CloseRequested => return WindowOutcome::CloseRequested,
            WindowEvent::RedrawRequested => return WindowOutcome::RedrawRequested,
            WindowEvent::Focused(false)
                if self.focus.as_ref().is_some_and(|f| f.browser_has_focus()) =>
            {
                // Focus moved to the browser's own focus proxy: the chrome still has the keyboard.
                return WindowOutcome::None;
            }
            WindowEvent::MouseInput {
                state: ElementState::Pressed,
                ..
            } => {
                // A click on the chrome: take keyboard focus back from the page.
                if let Some(focus) = &self.focus {
                    focus.focus_browser();
                }
                outcome = WindowOutcome::Clicked;
            }
            _ => {}
        }
        if self.window.on_event(event) {
            self.request_redraw();
        }
        outcome
    }

    /// Paints the chrome for the tabs as they are and returns what the user did. Only the chrome
    /// strip is cleared while the active tab's view covers the content area.
    pub fn paint(&mut self, tabs: &Tabs, now: Instant) -> Vec<Action> {
        if !self.chrome.editing && self.chrome.address_error.is_none() {
            self.chrome.address = tabs
                .active_tab()
                .map(|t| url_input::display(&t.url))
                .unwrap_or_default();
        }
        let covered = tabs.view_covers_content();
        let chrome_rows = u32::try_from(self.content.y.max(0)).unwrap_or(0);
        let mut actions = Vec::new();
        let state = &mut self.chrome;
        self.window.paint(
            [0.94, 0.94, 0.94, 1.0],
            covered.then_some(chrome_rows),
            |ui| actions = chrome::draw(ui, tabs, state, now),
        );
        let title = match tabs.active_tab() {
            Some(tab) => format!("{} — Warren", tab.label()),
            None => "Warren".to_owned(),
        };
        if title != self.title {
            self.window.window().set_title(&title);
            self.title = title;
        }
        let scale = self.window.pixels_per_point();
        self.update_content_bounds(Some(scale));
        actions
    }

    /// Recomputes the content area in physical pixels from the last layout.
    fn update_content_bounds(&mut self, pixels_per_point: Option<f32>) {
        let window = self.window.window();
        let size = window.inner_size();
        let scale = pixels_per_point.unwrap_or(window.scale_factor() as f32);
        let top = match self.chrome.content_rect {
            Some(rect) => (rect.top() * scale).round() as i32,
            None => ((chrome::TAB_STRIP_HEIGHT + chrome::TOOLBAR_HEIGHT) * scale).round() as i32,
        };
        self.content = Bounds {
            x: 0,
            y: top,
            width: size.width.max(1),
            height: size.height.saturating_sub(top.max(0) as u32).max(1),
        };
    }

    /// The page is about to get the keyboard: the address bar lets go of it.
    pub fn blur_address_bar(&mut self) {
        self.chrome.editing = false;
        self.chrome.blur_address = true;
        self.request_redraw();
    }

    /// The address bar takes the keyboard, its text selected.
    pub fn focus_address_bar(&mut self) {
        if let Some(focus) = &self.focus {
            focus.focus_browser();
        }
        self.chrome.focus_address = true;
        self.request_redraw();
    }

    /// Gives the keyboard to the chrome (without selecting the address bar).
    pub fn focus_chrome(&self) {
        if let Some(focus) = &self.focus {
            focus.focus_browser();
        }
    }

    /// Gives the keyboard to another top-level window of the browser.
    pub fn focus_window(&self, x11_window: u64) {
        if let Some(focus) = &self.focus {
            focus.focus_window(x11_window);
        }
    }

    /// Frees egui's GL objects; call before dropping.
    pub fn destroy(&mut self) {
        self.window.destroy();
    }
}

/// Creates the focus proxy: a winit child of the browser window, positioned outside it.
fn create_focus_proxy(event_loop: &ActiveEventLoop, parent: &Window) -> Option<(Window, u64)> {
    use raw_window_handle::HasWindowHandle;
    let parent_handle = parent.window_handle().ok()?.as_raw();
    let attributes = Window::default_attributes()
        .with_inner_size(winit::dpi::PhysicalSize::new(1, 1))
        .with_position(winit::dpi::PhysicalPosition::new(-16, -16))
        .with_decorations(false);
    // SAFETY: the parent is the live browser window, which outlives the proxy (both are owned by
    // the same `BrowserWindow`, the proxy dropped first).
    let attributes = unsafe { attributes.with_parent_window(Some(parent_handle)) };
    let proxy = event_loop
        .create_window(attributes)
        .map_err(|e| log::warn!("cannot create the focus proxy: {e}"))
        .ok()?;
    let xid = crate::gl::x11_window_id(&proxy)?;
    Some((proxy, xid))
}
