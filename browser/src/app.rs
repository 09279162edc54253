//! The browser's event loop: one winit `ApplicationHandler` that owns the window, the tab model
//! and every renderer host.
//!
//! Other threads never touch this state. Renderer readers, the control socket, the single-instance
//! socket, the shortcut grabber and the reaper each push into a channel of their own and wake the
//! loop with one coalesced user event ([`UserEvent::Wake`]); the loop drains every channel, each
//! with a cap per wake so a flooding renderer cannot starve the window.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use nix::sys::wait::WaitStatus;
use serde_json::{json, Value};
use warren_browser::control::{self, Command, ControlServer, Reply};
use warren_browser::host::{self, HostEvent, PingTracker, RendererHost, Waker};
use warren_browser::procs;
use warren_browser::profile::{self, Acquired, Profile};
use warren_browser::tabs::TabStrip;
use warren_browser::{url_input, validate};
use warren_ipc::{Bounds, BrowserToRenderer, RendererToBrowser, TabId, ViewSetup, NEW_TAB_URL};
use winit::application::ApplicationHandler;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::window::{Window, WindowId};

use crate::chrome::{self, Action, ChromeState};
use crate::gl::GlWindow;
use crate::keys::{self, Shortcut};
use crate::taskman::{self, RowKey, TaskAction, TaskRow, TaskView};
use crate::Options;

/// Events a renderer may deliver per wake before the loop yields to the window.
const EVENTS_PER_WAKE: usize = 256;

/// How long a closing renderer gets to exit on its own before its tree is killed.
const CLOSE_GRACE: Duration = Duration::from_millis(800);

/// The crash notice of a renderer whose socket closed, until the reaper says how it ended.
const UNEXPECTED_EXIT: &str = "The renderer process ended unexpectedly.";

/// How often timers (pings, grace periods) are checked.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub enum UserEvent {
    /// Some channel has input.
    Wake,
    /// The chrome's egui asked to be repainted after this delay.
    Repaint(Duration),
    /// The Task Manager's egui asked to be repainted.
    RepaintTaskManager,
}

/// Inputs from the browser's helper threads.
struct Inbox {
    control: Receiver<control::Request>,
    open_urls: Receiver<Vec<String>>,
    shortcuts: Receiver<Shortcut>,
    reaped: Receiver<(u32, WaitStatus)>,
    quit: Receiver<nix::sys::signal::Signal>,
}

/// SIGTERM, SIGINT and SIGHUP: each makes the browser shut down cleanly.
pub fn termination_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

/// A tab's live renderer.
struct Live {
    host: RendererHost,
    /// The view exists (its `Ready` arrived), so it covers the content area when active.
    ready: bool,
    popups: validate::PopupLimiter,
    pings: PingTracker,
    evals: HashMap<u64, Sender<Reply>>,
}

/// A renderer being closed: asked to exit, killed at the deadline.
struct Dying {
    host: RendererHost,
    deadline: Instant,
}

/// The browser window. Fields drop in declaration order: the proxy, a child of the window, first.
struct Gui {
    /// A 1×1 child window out of sight that holds X focus for the chrome (see [`keys::Focus`]).
    focus_proxy: Option<Window>,
    egui: egui_glow::EguiGlow,
    window: GlWindow,
    x11_window: u64,
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
    // the same `Gui`, the proxy dropped first).
    let attributes = unsafe { attributes.with_parent_window(Some(parent_handle)) };
    let proxy = event_loop
        .create_window(attributes)
        .map_err(|e| log::warn!("cannot create the focus proxy: {e}"))
        .ok()?;
    let xid = crate::gl::x11_window_id(&proxy)?;
    Some((proxy, xid))
}

/// Which reader a process measurement is for (see [`App::monitors`]).
#[derive(Clone, Copy)]
enum Reader {
    Window,
    Control,
}

#[derive(Default)]
struct Monitors {
    window: Option<procs::Monitor>,
    control: Option<procs::Monitor>,
}

/// The Task Manager's own top-level window.
struct TaskManagerWindow {
    window: GlWindow,
    egui: egui_glow::EguiGlow,
    x11_window: u64,
    view: TaskView,
}

struct App {
    options: Options,
    profile: Profile,
    /// Holds every renderer's private runtime directory; removed when the browser exits.
    _runtime_root: tempfile::TempDir,
    runtime_dir: PathBuf,
    waker: Waker,
    wake_pending: Arc<AtomicBool>,
    proxy: EventLoopProxy<UserEvent>,
    inbox: Inbox,
    shortcut_tx: Option<Sender<Shortcut>>,
    gui: Option<Gui>,
    focus: Option<keys::Focus>,
    tabs: TabStrip,
    live: HashMap<TabId, Live>,
    dying: Vec<Dying>,
    /// Pids of renderers that disconnected, until the reaper says how they ended.
    awaiting_reap: HashMap<u32, TabId>,
    chrome: ChromeState,
    task_manager: Option<TaskManagerWindow>,
    /// Measure the process tree for the Task Manager window and for `task_manager`; made on
    /// first use. Two monitors, because CPU % is over the interval since the same reader's
    /// previous reading: the window's once-a-second refresh must not shorten a client's interval.
    monitors: Monitors,
    /// The budget of tabs that all pages together may open.
    popups: validate::PopupLimiter,
    content: Bounds,
    next_eval: u64,
    repaint_at: Option<Instant>,
    next_tick: Instant,
    quitting: bool,
}

/// Runs the browser until the window closes or `shutdown` is requested.
pub fn run(options: Options) -> Result<(), String> {
    let (profile, listener) =
        match profile::acquire(&options.profile, &options.urls).map_err(|e| e.to_string())? {
            Acquired::Secondary => {
                log::info!(
                    "a browser already runs with profile {}; handed over the URLs",
                    options.profile.display()
                );
                return Ok(());
            }
            Acquired::Primary(profile, listener) => (profile, listener),
        };

    let event_loop = EventLoop::<UserEvent>::with_user_event()
        .build()
        .map_err(|e| format!("cannot open the display (is $DISPLAY set?): {e}"))?;
    let proxy = event_loop.create_proxy();
    let wake_pending = Arc::new(AtomicBool::new(false));
    let waker: Waker = {
        let proxy = proxy.clone();
        let pending = wake_pending.clone();
        Arc::new(move || {
            if !pending.swap(true, Ordering::AcqRel) {
                let _ = proxy.send_event(UserEvent::Wake);
            }
        })
    };

    let (reaped_tx, reaped_rx) = unbounded();
    {
        let waker = waker.clone();
        host::start_reaper(move |pid, status| {
            let _ = reaped_tx.send((pid, status));
            waker();
        })
        .map_err(|e| format!("cannot start the reaper thread: {e}"))?;
    }

    let (quit_tx, quit_rx) = unbounded();
    {
        let waker = waker.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                if let Ok(signal) = termination_signals().wait() {
                    let _ = quit_tx.send(signal);
                    waker();
                }
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    }

    let (open_tx, open_rx) = unbounded();
    let instance = {
        let waker = waker.clone();
        listener
            .start(Box::new(move |urls| {
                let _ = open_tx.send(urls);
                waker();
            }))
            .map_err(|e| e.to_string())?
    };

    let (control_tx, control_rx) = unbounded();
    let _control = match &options.control_socket {
        Some(path) => {
            let waker = waker.clone();
            Some(
                ControlServer::start(
                    path,
                    Box::new(move |request| {
                        let _ = control_tx.send(request);
                        waker();
                    }),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        None => None,
    };

    let runtime_base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    remove_stale_runtime_dirs(&runtime_base);
    let runtime_root = tempfile::Builder::new()
        .prefix(&format!("warren-{}-", std::process::id()))
        .tempdir_in(&runtime_base)
        .map_err(|e| {
            format!(
                "cannot create a runtime directory in {}: {e}",
                runtime_base.display()
            )
        })?;
    let runtime_dir = std::fs::canonicalize(runtime_root.path()).map_err(|e| e.to_string())?;

    let (shortcut_tx, shortcut_rx) = unbounded();
    let mut app = App {
        options,
        profile,
        _runtime_root: runtime_root,
        runtime_dir,
        waker,
        wake_pending,
        proxy,
        inbox: Inbox {
            control: control_rx,
            open_urls: open_rx,
            shortcuts: shortcut_rx,
            reaped: reaped_rx,
            quit: quit_rx,
        },
        shortcut_tx: Some(shortcut_tx),
        gui: None,
        focus: None,
        tabs: TabStrip::new(),
        live: HashMap::new(),
        dying: Vec::new(),
        awaiting_reap: HashMap::new(),
        chrome: ChromeState::default(),
        task_manager: None,
        monitors: Monitors::default(),
        popups: validate::PopupLimiter::with_budget(
            validate::ALL_POPUPS_BURST,
            validate::ALL_POPUPS_INTERVAL,
            Instant::now(),
        ),
        content: Bounds::default(),
        next_eval: 1,
        repaint_at: None,
        next_tick: Instant::now() + TICK,
        quitting: false,
    };
    let result = event_loop
        .run_app(&mut app)
        .map_err(|e| format!("event loop failed: {e}"));
    app.shut_down_renderers();
    drop(instance);
    result
}

/// A renderer's string made safe to show: control characters (newlines, tabs, escapes) become
/// spaces.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Removes runtime directories left by browsers that were killed (`warren-PID-*` whose PID is
/// gone); a clean exit removes its own.
fn remove_stale_runtime_dirs(base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("warren-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        let ours = entry
            .metadata()
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == nix::unistd::getuid().as_raw());
        if !alive && ours.unwrap_or(false) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl ApplicationHandler<UserEvent> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gui.is_some() {
            return;
        }
        let attributes = Window::default_attributes()
            .with_title("Warren")
            .with_inner_size(winit::dpi::LogicalSize::new(1024.0, 768.0))
            .with_position(winit::dpi::PhysicalPosition::new(0, 0))
            .with_visible(false);
        let window = match GlWindow::new(event_loop, attributes) {
            Ok(w) => w,
            Err(e) => {
                log::error!("{e}");
                event_loop.exit();
                return;
            }
        };
        let Some(x11_window) = window.x11_window() else {
            log::error!("Warren needs an X11 window; this display is not X11");
            event_loop.exit();
            return;
        };
        let egui = egui_glow::EguiGlow::new(event_loop, window.gl.clone(), None, None, true);
        egui.egui_ctx.set_theme(egui::Theme::Light);
        {
            let proxy = self.proxy.clone();
            egui.egui_ctx.set_request_repaint_callback(move |info| {
                let _ = proxy.send_event(UserEvent::Repaint(info.delay));
            });
        }
        window.window.set_visible(true);
        if let Some(tx) = self.shortcut_tx.take() {
            let waker = self.waker.clone();
            if let Err(e) = keys::start(x11_window, move |s| {
                let _ = tx.send(s);
                waker();
            }) {
                log::warn!("browser shortcuts are unavailable while a page has focus: {e}");
            }
        }
        let focus_proxy = create_focus_proxy(event_loop, &window.window);
        self.focus = focus_proxy
            .as_ref()
            .ok_or_else(|| "no focus proxy window".to_owned())
            .and_then(|(_, xid)| keys::Focus::new(x11_window, *xid))
            .map_err(|e| log::warn!("the chrome cannot take the keyboard back from pages: {e}"))
            .ok();
        self.gui = Some(Gui {
            window,
            egui,
            x11_window,
            focus_proxy: focus_proxy.map(|(w, _)| w),
        });
        self.update_content_bounds(None);

        let urls = std::mem::take(&mut self.options.urls);
        if urls.is_empty() {
            self.open_tab(NEW_TAB_URL.to_owned(), false);
        } else {
            for (i, url) in urls.into_iter().enumerate() {
                self.open_tab(url, i > 0);
            }
        }
        self.request_redraw();
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, id: WindowId, event: WindowEvent) {
        if self
            .task_manager
            .as_ref()
            .is_some_and(|tm| tm.window.window.id() == id)
        {
            self.task_manager_event(event);
            return;
        }
        let Some(gui) = self.gui.as_mut() else { return };
        if gui.focus_proxy.as_ref().is_some_and(|p| p.id() == id) {
            // The proxy only relays the keyboard to the chrome.
            if matches!(
                event,
                WindowEvent::KeyboardInput { .. }
                    | WindowEvent::ModifiersChanged(_)
                    | WindowEvent::Ime(_)
            ) {
                let response = gui.egui.on_window_event(&gui.window.window, &event);
                if response.repaint {
                    gui.window.window.request_redraw();
                }
            }
            return;
        }
        match &event {
            WindowEvent::CloseRequested => {
                event_loop.exit();
                return;
            }
            WindowEvent::RedrawRequested => {
                self.redraw(event_loop);
                return;
            }
            WindowEvent::Resized(size) => {
                gui.window.resize(size.width, size.height);
            }
            WindowEvent::Focused(false)
                if self.focus.as_ref().is_some_and(|f| f.browser_has_focus()) =>
            {
                // Focus moved to the browser's own focus proxy: the chrome still has the keyboard.
                return;
            }
            WindowEvent::MouseInput {
                state: ElementState::Pressed,
                ..
            } => {
                // A click on the chrome: take keyboard focus back from the page.
                if let Some(focus) = &self.focus {
                    focus.focus_browser();
                }
            }
            _ => {}
        }
        let response = gui.egui.on_window_event(&gui.window.window, &event);
        if response.repaint {
            gui.window.window.request_redraw();
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: UserEvent) {
        match event {
            UserEvent::Wake => {
                self.wake_pending.store(false, Ordering::Release);
                self.drain_inputs(event_loop);
            }
            UserEvent::RepaintTaskManager => {
                if let Some(tm) = &self.task_manager {
                    tm.window.window.request_redraw();
                }
            }
            UserEvent::Repaint(delay) => {
                let at = Instant::now() + delay;
                if delay.is_zero() {
                    self.request_redraw();
                } else if self.repaint_at.is_none_or(|t| at < t) {
                    self.repaint_at = Some(at);
                }
            }
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.tick(now);
        }
        // Closed tabs' renderers that did not exit within their grace period: dropping the host
        // kills the tree.
        self.dying.retain(|d| now < d.deadline);
        if self.repaint_at.is_some_and(|t| now >= t) {
            self.repaint_at = None;
            self.request_redraw();
        }
        if self.quitting {
            event_loop.exit();
            return;
        }
        let mut wake_at = self.next_tick;
        if let Some(t) = self.repaint_at {
            wake_at = wake_at.min(t);
        }
        for d in &self.dying {
            wake_at = wake_at.min(d.deadline);
        }
        event_loop.set_control_flow(ControlFlow::WaitUntil(wake_at));
    }

    fn exiting(&mut self, _event_loop: &ActiveEventLoop) {
        self.close_task_manager();
        if let Some(gui) = self.gui.as_mut() {
            gui.window.make_current();
            gui.egui.destroy();
        }
    }
}

impl App {
    fn request_redraw(&self) {
        if let Some(gui) = &self.gui {
            gui.window.window.request_redraw();
        }
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop) {
        let Some(gui) = self.gui.as_mut() else { return };
        if !self.chrome.editing {
            let shown = self
                .tabs
                .active_tab()
                .map(|t| url_input::display(&t.url))
                .unwrap_or_default();
            if self.chrome.address_error.is_none() {
                self.chrome.address = shown;
            }
        }
        gui.window.make_current();
        let mut actions = Vec::new();
        let tabs = &self.tabs;
        let chrome_state = &mut self.chrome;
        let covered = self
            .tabs
            .active()
            .and_then(|id| self.live.get(&id))
            .is_some_and(|l| l.ready);
        gui.egui.run(&gui.window.window, |ui| {
            actions = chrome::draw(ui, tabs, chrome_state, covered);
        });
        let pixels_per_point = gui.egui.egui_ctx.pixels_per_point();
        let size = gui.window.window.inner_size();
        let chrome_height = self.content.y.clamp(0, size.height as i32);
        unsafe {
            use egui_glow::glow::{self, HasContext};
            // SAFETY: the GL context is current on this thread.
            let gl = &gui.window.gl;
            gl.clear_color(0.94, 0.94, 0.94, 1.0);
            if covered {
                // Only the chrome is visible; GL's origin is the bottom left.
                gl.enable(glow::SCISSOR_TEST);
                gl.scissor(
                    0,
                    size.height as i32 - chrome_height,
                    size.width as i32,
                    chrome_height,
                );
            }
            gl.clear(glow::COLOR_BUFFER_BIT);
            gl.disable(glow::SCISSOR_TEST);
        }
        gui.egui.paint(&gui.window.window);
        gui.window.swap_buffers();
        let title = match self.tabs.active_tab() {
            Some(tab) => format!("{} — Warren", tab.label()),
            None => "Warren".to_owned(),
        };
        gui.window.window.set_title(&title);
        self.update_content_bounds(Some(pixels_per_point));
        for action in actions {
            self.handle_action(action, event_loop);
        }
    }

    /// Recomputes the content area in physical pixels and tells every renderer when it moved.
    fn update_content_bounds(&mut self, pixels_per_point: Option<f32>) {
        let Some(gui) = &self.gui else { return };
        let size = gui.window.window.inner_size();
        let scale = pixels_per_point.unwrap_or(gui.window.window.scale_factor() as f32);
        let top = match self.chrome.content_rect {
            Some(rect) => (rect.top() * scale).round() as i32,
            None => ((chrome::TAB_STRIP_HEIGHT + chrome::TOOLBAR_HEIGHT) * scale).round() as i32,
        };
        let bounds = Bounds {
            x: 0,
            y: top,
            width: size.width.max(1),
            height: size.height.saturating_sub(top.max(0) as u32).max(1),
        };
        if bounds != self.content {
            self.content = bounds;
            let ids: Vec<TabId> = self.live.keys().copied().collect();
            for id in ids {
                self.send(id, BrowserToRenderer::SetBounds(bounds));
            }
        }
    }

    // ----- tabs -----

    /// Adds a tab at the end of the strip and starts its renderer.
    fn open_tab(&mut self, url: String, background: bool) -> TabId {
        let previous = self.tabs.active();
        let id = self.tabs.add(url, background);
        if self.tabs.active() == Some(id) {
            if let Some(prev) = previous {
                self.send(prev, BrowserToRenderer::SetVisible(false));
            }
            self.chrome.address_error = None;
            if self.tabs.get(id).is_some_and(|t| t.url == NEW_TAB_URL) {
                self.focus_address_bar();
            } else {
                // The page gets the keyboard once its renderer is ready (see `Ready`).
                self.chrome.editing = false;
                self.chrome.blur_address = true;
            }
        }
        self.start_renderer(id);
        self.request_redraw();
        id
    }

    fn start_renderer(&mut self, id: TabId) {
        let (Some(gui), Some(tab)) = (&self.gui, self.tabs.get(id)) else {
            return;
        };
        let view = ViewSetup {
            parent_window: gui.x11_window,
            bounds: self.content,
            visible: self.tabs.active() == Some(id),
            url: tab.url.clone(),
            website_data_dir: self.profile.website_data_dir.clone(),
            cookie_file: self.profile.cookie_file.clone(),
        };
        match RendererHost::spawn(
            &self.options.renderer,
            &self.runtime_dir,
            id,
            view,
            self.waker.clone(),
        ) {
            Ok(host) => {
                log::info!("tab {id}: renderer pid {}", host.pid());
                if let Some(tab) = self.tabs.get_mut(id) {
                    tab.crash = None;
                    tab.loading = true;
                    tab.responsive = true;
                }
                self.live.insert(
                    id,
                    Live {
                        host,
                        ready: false,
                        popups: validate::PopupLimiter::with_budget(
                            validate::POPUP_BURST,
                            validate::POPUP_INTERVAL,
                            Instant::now(),
                        ),
                        pings: PingTracker::new(Instant::now()),
                        evals: HashMap::new(),
                    },
                );
            }
            Err(e) => self.mark_crashed(id, format!("The renderer could not be started: {e}")),
        }
    }

    fn activate(&mut self, id: TabId) {
        let previous = self.tabs.active();
        if previous == Some(id) || !self.tabs.activate(id) {
            return;
        }
        if let Some(prev) = previous {
            self.send(prev, BrowserToRenderer::SetVisible(false));
        }
        self.chrome.address_error = None;
        self.send(id, BrowserToRenderer::SetVisible(true));
        if self.tabs.get(id).is_some_and(|t| t.url == NEW_TAB_URL) {
            self.focus_address_bar();
        } else {
            self.focus_page(id);
        }
        self.request_redraw();
    }

    /// Closes a tab; closing the last one quits, as in other browsers.
    fn close_tab(&mut self, id: TabId) -> bool {
        if self.tabs.remove(id).is_none() {
            return false;
        }
        if let Some(live) = self.live.remove(&id) {
            self.retire(live);
        }
        if let Some(active) = self.tabs.active() {
            self.send(active, BrowserToRenderer::SetVisible(true));
            self.focus_page(active);
        } else {
            self.quitting = true;
        }
        self.request_redraw();
        true
    }

    /// Asks a renderer to exit and schedules the kill of its tree.
    fn retire(&mut self, live: Live) {
        for (_, reply) in live.evals {
            let _ = reply.send(Err("the tab was closed".into()));
        }
        live.host.request_shutdown();
        self.dying.push(Dying {
            host: live.host,
            deadline: Instant::now() + CLOSE_GRACE,
        });
    }

    /// Ends a tab's renderer tree and shows the crash notice.
    fn mark_crashed(&mut self, id: TabId, reason: String) {
        if let Some(mut live) = self.live.remove(&id) {
            live.host.kill();
            for (_, reply) in live.evals.drain() {
                let _ = reply.send(Err(format!("tab {id} crashed: {reason}")));
            }
        }
        if let Some(tab) = self.tabs.get_mut(id) {
            log::warn!("tab {id} crashed: {reason}");
            tab.crash = Some(reason);
            tab.loading = false;
            tab.responsive = true;
        }
        self.request_redraw();
    }

    fn reload(&mut self, id: TabId) {
        if self.live.contains_key(&id) {
            self.send(id, BrowserToRenderer::Reload);
        } else if self.tabs.get(id).is_some() {
            self.start_renderer(id);
            if self.tabs.active() == Some(id) {
                self.focus_page(id);
            }
        }
        self.request_redraw();
    }

    fn navigate(&mut self, id: TabId, url: String) {
        if self.live.contains_key(&id) {
            self.send(id, BrowserToRenderer::Navigate { url });
            if self.tabs.active() == Some(id) {
                self.focus_page(id);
            }
        } else if let Some(tab) = self.tabs.get_mut(id) {
            tab.url = url;
            self.start_renderer(id);
        }
        self.request_redraw();
    }

    /// Gives the keyboard to a tab's page: X focus to its view, egui focus off the address bar.
    fn focus_page(&mut self, id: TabId) {
        self.chrome.editing = false;
        self.chrome.blur_address = true;
        self.send(id, BrowserToRenderer::Focus);
    }

    fn focus_address_bar(&mut self) {
        if let Some(focus) = &self.focus {
            focus.focus_browser();
        }
        self.chrome.focus_address = true;
        self.request_redraw();
    }

    /// Queues a message for a tab's renderer; a renderer that stopped reading is ended.
    fn send(&mut self, id: TabId, msg: BrowserToRenderer) {
        let Some(live) = self.live.get(&id) else {
            return;
        };
        if let Err(why) = live.host.send(msg) {
            self.mark_crashed(id, format!("The renderer {why}."));
        }
    }

    // ----- inputs -----

    fn drain_inputs(&mut self, event_loop: &ActiveEventLoop) {
        let mut more = false;
        let ids: Vec<TabId> = self.live.keys().copied().collect();
        for id in ids {
            for _ in 0..EVENTS_PER_WAKE {
                let Some(event) = self.live.get(&id).and_then(|l| l.host.try_recv()) else {
                    break;
                };
                self.renderer_event(id, event);
            }
            more |= self.live.get(&id).is_some_and(|l| l.host.has_events());
        }
        while let Ok((pid, status)) = self.inbox.reaped.try_recv() {
            self.reaped(pid, status);
        }
        while let Ok(shortcut) = self.inbox.shortcuts.try_recv() {
            self.shortcut(shortcut, event_loop);
        }
        while let Ok(urls) = self.inbox.open_urls.try_recv() {
            if urls.is_empty() {
                self.open_tab(NEW_TAB_URL.to_owned(), false);
            }
            for url in urls {
                self.open_tab(url, false);
            }
        }
        while let Ok(request) = self.inbox.control.try_recv() {
            self.control(request);
        }
        if let Ok(signal) = self.inbox.quit.try_recv() {
            log::info!("{signal}: shutting down");
            self.quitting = true;
        }
        if more {
            (self.waker)();
        }
        if self.quitting {
            event_loop.exit();
        }
    }

    fn renderer_event(&mut self, id: TabId, event: HostEvent) {
        match event {
            HostEvent::Message(msg) => self.renderer_message(id, msg),
            HostEvent::Violation(why) => {
                self.mark_crashed(id, format!("The renderer was ended because it {why}."));
            }
            HostEvent::Disconnected => {
                let pid = self.live.get(&id).map(|l| l.host.pid());
                self.mark_crashed(id, UNEXPECTED_EXIT.into());
                if let Some(pid) = pid {
                    self.awaiting_reap.insert(pid, id);
                }
            }
        }
    }

    fn renderer_message(&mut self, id: TabId, msg: RendererToBrowser) {
        if !matches!(
            msg,
            RendererToBrowser::Pong { .. } | RendererToBrowser::EvalResult { .. }
        ) {
            // Everything else may change what the chrome shows.
            self.request_redraw();
        }
        let active = self.tabs.active() == Some(id);
        let Some(tab) = self.tabs.get_mut(id) else {
            return;
        };
        match msg {
            RendererToBrowser::Hello { .. } => {}
            RendererToBrowser::Ready => {
                if let Some(live) = self.live.get_mut(&id) {
                    live.ready = true;
                }
                if active && tab.url != NEW_TAB_URL && !self.chrome.editing {
                    self.send(id, BrowserToRenderer::Focus);
                }
            }
            RendererToBrowser::UrlChanged { url } => {
                tab.url = printable(&url);
                if active {
                    self.chrome.address_error = None;
                }
            }
            RendererToBrowser::TitleChanged { title } => tab.title = printable(&title),
            RendererToBrowser::Loading(loading) => tab.loading = loading,
            RendererToBrowser::HistoryChanged {
                can_go_back,
                can_go_forward,
            } => {
                tab.can_go_back = can_go_back;
                tab.can_go_forward = can_go_forward;
            }
            RendererToBrowser::OpenTab { url } => {
                let allowed = validate::check_open_tab(&url, &tab.url);
                let now = Instant::now();
                // Each renderer has a budget, and all renderers together another: tabs opened by
                // pages can open tabs too.
                let within_limit = self.live.get_mut(&id).is_some_and(|l| l.popups.allow(now))
                    && self.popups.allow(now);
                match allowed {
                    Ok(()) if within_limit => {
                        self.open_tab(url, false);
                    }
                    Ok(()) => log::warn!("tab {id}: too many new tabs requested; dropped one"),
                    Err(e) => log::warn!("tab {id}: refused to open a tab: {e}"),
                }
            }
            RendererToBrowser::EvalResult { request, result } => {
                let Some(reply) = self
                    .live
                    .get_mut(&id)
                    .and_then(|l| l.evals.remove(&request))
                else {
                    return;
                };
                let answer = match result {
                    Ok(text) => serde_json::from_str::<Value>(&text)
                        .map(|value| json!({ "value": value }))
                        .map_err(|e| {
                            format!("the renderer returned a value that is not JSON: {e}")
                        }),
                    Err(e) => Err(format!("script error: {e}")),
                };
                let _ = reply.send(answer);
            }
            RendererToBrowser::Pong { seq } => {
                if let Some(live) = self.live.get_mut(&id) {
                    live.pings.pong(seq);
                    let responsive = live.pings.responsive(Instant::now());
                    if let Some(tab) = self.tabs.get_mut(id) {
                        tab.responsive = responsive;
                    }
                }
            }
            RendererToBrowser::WebProcessCrashed { reason } => {
                self.mark_crashed(
                    id,
                    format!("The page's web process ended: {}.", printable(&reason)),
                );
            }
        }
    }

    fn reaped(&mut self, pid: u32, status: WaitStatus) {
        let how = match status {
            WaitStatus::Exited(_, 0) => "exited".to_owned(),
            WaitStatus::Exited(_, code) => format!("exited with status {code}"),
            WaitStatus::Signaled(_, signal, _) => format!("was killed by {signal}"),
            _ => return,
        };
        if self.reap_dying(pid) {
            return;
        }
        if let Some((id, live)) = self.live.iter_mut().find(|(_, l)| l.host.pid() == pid) {
            let id = *id;
            live.host.mark_reaped();
            self.mark_crashed(id, format!("The renderer process {how}."));
        } else if let Some(id) = self.awaiting_reap.remove(&pid) {
            if let Some(tab) = self.tabs.get_mut(id) {
                if tab.crash.as_deref() == Some(UNEXPECTED_EXIT) {
                    tab.crash = Some(format!("The renderer process {how}."));
                    self.request_redraw();
                }
            }
        }
    }

    /// A closed tab's renderer exited: end what is left of its group now. False if `pid` is not
    /// one of them.
    fn reap_dying(&mut self, pid: u32) -> bool {
        let Some(index) = self.dying.iter().position(|d| d.host.pid() == pid) else {
            return false;
        };
        let mut dying = self.dying.swap_remove(index);
        dying.host.mark_reaped();
        true
    }

    fn tick(&mut self, now: Instant) {
        let ids: Vec<TabId> = self.live.keys().copied().collect();
        for id in ids {
            let Some(live) = self.live.get_mut(&id) else {
                continue;
            };
            let ping = live.pings.due(now);
            let responsive = live.pings.responsive(now);
            if let Some(tab) = self.tabs.get_mut(id) {
                if tab.responsive != responsive {
                    if !responsive {
                        log::warn!("tab {id}: renderer is not responding");
                    }
                    tab.responsive = responsive;
                    self.request_redraw();
                }
            }
            if let Some(ping) = ping {
                self.send(id, ping);
            }
        }
        self.refresh_task_manager(false);
    }

    // ----- task manager -----

    /// Opens the Task Manager window, or raises it if it is open.
    fn open_task_manager(&mut self, event_loop: &ActiveEventLoop) {
        if let Some(tm) = &self.task_manager {
            if let Some(focus) = &self.focus {
                focus.focus_window(tm.x11_window);
            }
            tm.window.window.focus_window();
            return;
        }
        let attributes = Window::default_attributes()
            .with_title("Task Manager")
            .with_inner_size(winit::dpi::LogicalSize::new(760.0, 460.0))
            .with_position(winit::dpi::PhysicalPosition::new(120, 120));
        let window = match GlWindow::new(event_loop, attributes) {
            Ok(w) => w,
            Err(e) => {
                log::error!("cannot open the Task Manager: {e}");
                return;
            }
        };
        let Some(x11_window) = window.x11_window() else {
            return;
        };
        let egui = egui_glow::EguiGlow::new(event_loop, window.gl.clone(), None, None, true);
        egui.egui_ctx.set_theme(egui::Theme::Light);
        {
            let proxy = self.proxy.clone();
            egui.egui_ctx.set_request_repaint_callback(move |_| {
                let _ = proxy.send_event(UserEvent::RepaintTaskManager);
            });
        }
        let mut tm = TaskManagerWindow {
            window,
            egui,
            x11_window,
            view: TaskView::default(),
        };
        tm.view.update(self.task_rows(false), Instant::now());
        if let Some(focus) = &self.focus {
            focus.focus_window(x11_window);
        }
        tm.window.window.request_redraw();
        self.task_manager = Some(tm);
    }

    fn close_task_manager(&mut self) {
        self.monitors.window = None;
        if let Some(mut tm) = self.task_manager.take() {
            tm.window.make_current();
            tm.egui.destroy();
        }
        if let Some(gui) = &self.gui {
            gui.window.make_current();
        }
    }

    fn task_manager_event(&mut self, event: WindowEvent) {
        let Some(tm) = self.task_manager.as_mut() else {
            return;
        };
        match &event {
            WindowEvent::CloseRequested | WindowEvent::Destroyed => {
                self.close_task_manager();
                return;
            }
            WindowEvent::RedrawRequested => {
                self.redraw_task_manager();
                return;
            }
            WindowEvent::Resized(size) => tm.window.resize(size.width, size.height),
            WindowEvent::MouseInput {
                state: ElementState::Pressed,
                ..
            } => {
                if let Some(focus) = &self.focus {
                    focus.focus_window(tm.x11_window);
                }
            }
            _ => {}
        }
        if tm.egui.on_window_event(&tm.window.window, &event).repaint {
            tm.window.window.request_redraw();
        }
    }

    fn redraw_task_manager(&mut self) {
        let Some(tm) = self.task_manager.as_mut() else {
            return;
        };
        tm.window.make_current();
        let now = Instant::now();
        let mut actions = Vec::new();
        let view = &mut tm.view;
        tm.egui
            .run(&tm.window.window, |ui| actions = view.draw(ui, now));
        unsafe {
            use egui_glow::glow::HasContext;
            // SAFETY: the Task Manager's GL context was made current above.
            tm.window.gl.clear_color(1.0, 1.0, 1.0, 1.0);
            tm.window.gl.clear(egui_glow::glow::COLOR_BUFFER_BIT);
        }
        tm.egui.paint(&tm.window.window);
        tm.window.swap_buffers();
        if let Some(gui) = &self.gui {
            gui.window.make_current();
        }
        for action in actions {
            match action {
                TaskAction::EndProcess(id) => {
                    if self.live.contains_key(&id) {
                        self.mark_crashed(
                            id,
                            "The renderer was ended from the task manager.".into(),
                        );
                    }
                }
                TaskAction::Activate(id) => {
                    self.activate(id);
                    if let (Some(focus), Some(gui)) = (&self.focus, &self.gui) {
                        focus.focus_window(gui.x11_window);
                    }
                }
            }
            self.refresh_task_manager(true);
        }
    }

    /// Measures the browser's process tree now.
    fn snapshot(&mut self, reader: Reader, pss: bool) -> Result<procs::Snapshot, String> {
        let renderers: Vec<(TabId, u32)> = self
            .live
            .iter()
            .map(|(id, l)| (*id, l.host.pid()))
            .collect();
        let slot = match reader {
            Reader::Window => &mut self.monitors.window,
            Reader::Control => &mut self.monitors.control,
        };
        let monitor = match slot {
            Some(monitor) => monitor,
            None => slot.insert(procs::Monitor::new().map_err(|e| e.to_string())?),
        };
        let query = procs::Query {
            browser_pid: std::process::id(),
            renderers: &renderers,
            spares: &[],
            pss,
        };
        monitor.refresh(&query).map_err(|e| e.to_string())
    }

    /// The Task Manager's rows: the browser, every tab in strip order (its tree summed), and any
    /// stray process of the browser's tree.
    fn task_rows(&mut self, pss: bool) -> Vec<TaskRow> {
        let snapshot = match self.snapshot(Reader::Window, pss) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                log::warn!("cannot measure processes: {e}");
                return Vec::new();
            }
        };
        let process = |row: &procs::ProcessRow| taskman::ProcessRow {
            pid: row.pid,
            kind: row.kind.as_str(),
            memory_kb: row.memory_kb,
            pss_kb: row.pss_kb,
            cpu_percent: Some(row.cpu_percent),
            uptime: Some(row.uptime),
        };
        let mut rows = Vec::new();
        for row in snapshot.processes.iter().filter(|r| r.tab_id.is_none()) {
            let browser = row.kind == procs::Kind::Browser;
            rows.push(TaskRow {
                key: if browser {
                    RowKey::Browser
                } else {
                    RowKey::Other(row.pid)
                },
                title: if browser {
                    "Browser".to_owned()
                } else {
                    row.name.clone()
                },
                state: if browser {
                    String::new()
                } else {
                    row.kind.as_str().to_owned()
                },
                pid: Some(row.pid),
                memory_kb: row.memory_kb,
                pss_kb: row.pss_kb,
                cpu_percent: Some(row.cpu_percent),
                uptime: Some(row.uptime),
                processes: vec![process(row)],
            });
        }
        for tab in self.tabs.iter() {
            let totals = snapshot.tab(tab.id);
            rows.push(TaskRow {
                key: RowKey::Tab(tab.id),
                title: tab.label().to_owned(),
                state: self
                    .tabs
                    .state(tab.id)
                    .map(|s| s.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                pid: totals.map(|t| t.renderer_pid),
                memory_kb: totals.map(|t| t.sum.memory_kb),
                pss_kb: totals.and_then(|t| t.sum.pss_kb),
                cpu_percent: totals.map(|t| t.sum.cpu_percent),
                uptime: totals.map(|t| t.uptime),
                processes: snapshot.tab_rows(tab.id).map(process).collect(),
            });
        }
        rows
    }

    /// Takes a new reading for the Task Manager (once a second, and after an action).
    fn refresh_task_manager(&mut self, force: bool) {
        let Some(paused) = self.task_manager.as_ref().map(|tm| tm.view.paused) else {
            return;
        };
        if paused && !force {
            return;
        }
        let with_pss = self
            .task_manager
            .as_ref()
            .is_some_and(|tm| tm.view.show_pss);
        let rows = self.task_rows(with_pss);
        if let Some(tm) = self.task_manager.as_mut() {
            tm.view.update(rows, Instant::now());
            tm.window.window.request_redraw();
        }
    }

    fn shortcut(&mut self, shortcut: Shortcut, event_loop: &ActiveEventLoop) {
        let active = self.tabs.active();
        match shortcut {
            Shortcut::NewTab => {
                self.open_tab(NEW_TAB_URL.to_owned(), false);
            }
            Shortcut::CloseTab => {
                if let Some(id) = active {
                    self.close_tab(id);
                }
            }
            Shortcut::NextTab | Shortcut::PreviousTab => {
                let offset = if shortcut == Shortcut::NextTab { 1 } else { -1 };
                if let Some(id) = self.tabs.cycle(offset) {
                    self.activate(id);
                }
            }
            Shortcut::SelectTab(n) => {
                if let Some(id) = self.tabs.nth_for_shortcut(n) {
                    self.activate(id);
                }
            }
            Shortcut::FocusAddressBar => self.focus_address_bar(),
            Shortcut::Reload => {
                if let Some(id) = active {
                    self.reload(id);
                }
            }
            Shortcut::Back => {
                if let Some(id) = active {
                    self.send(id, BrowserToRenderer::GoBack);
                }
            }
            Shortcut::Forward => {
                if let Some(id) = active {
                    self.send(id, BrowserToRenderer::GoForward);
                }
            }
            Shortcut::Quit => event_loop.exit(),
            Shortcut::TaskManager => self.open_task_manager(event_loop),
        }
    }

    fn handle_action(&mut self, action: Action, event_loop: &ActiveEventLoop) {
        let active = self.tabs.active();
        match action {
            Action::Activate(id) => self.activate(id),
            Action::Close(id) => {
                self.close_tab(id);
            }
            Action::NewTab => {
                self.open_tab(NEW_TAB_URL.to_owned(), false);
            }
            Action::Back | Action::Forward | Action::Stop => {
                let msg = match action {
                    Action::Back => BrowserToRenderer::GoBack,
                    Action::Forward => BrowserToRenderer::GoForward,
                    _ => BrowserToRenderer::Stop,
                };
                if let Some(id) = active {
                    self.send(id, msg);
                }
            }
            Action::Reload => {
                if let Some(id) = active {
                    self.reload(id);
                }
            }
            Action::OpenTaskManager => self.open_task_manager(event_loop),
            Action::Navigate(input) => {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
                match url_input::fixup(&input, &cwd) {
                    Ok(url) => {
                        self.chrome.address_error = None;
                        self.chrome.address = url_input::display(&url);
                        match active {
                            Some(id) => self.navigate(id, url),
                            None => {
                                self.open_tab(url, false);
                            }
                        }
                    }
                    Err(e) => {
                        self.chrome.address_error = Some(e.to_string());
                        self.chrome.focus_address = true;
                    }
                }
                self.request_redraw();
            }
        }
    }

    // ----- control socket -----

    fn control(&mut self, request: control::Request) {
        let control::Request { command, reply } = request;
        if let Command::Eval { tab_id, js } = command {
            self.eval(tab_id, js, reply);
            return;
        }
        let answer = self.command(command);
        let _ = reply.send(answer);
    }

    fn eval(&mut self, id: TabId, js: String, reply: Sender<Reply>) {
        if self.tabs.get(id).is_none() {
            let _ = reply.send(Err(format!("no tab {id}")));
            return;
        }
        let request = self.next_eval;
        self.next_eval += 1;
        let Some(live) = self.live.get_mut(&id) else {
            let _ = reply.send(Err(format!(
                "tab {id} has no live renderer (it is crashed)"
            )));
            return;
        };
        live.evals.insert(request, reply);
        self.send(id, BrowserToRenderer::Eval { request, js });
    }

    fn command(&mut self, command: Command) -> Reply {
        let known = |app: &Self, id: TabId| {
            app.tabs
                .get(id)
                .map(|_| ())
                .ok_or_else(|| format!("no tab {id}"))
        };
        match command {
            Command::Version => Ok(json!({
                "name": "warren",
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
            })),
            Command::Tabs => Ok(Value::Array(self.tabs_json())),
            Command::NewTab { url, background } => {
                // `control` has already checked and normalised the URL (`url_input::fixup`).
                let id = self.open_tab(url.unwrap_or_else(|| NEW_TAB_URL.to_owned()), background);
                Ok(json!({ "tab_id": id.0 }))
            }
            Command::Navigate { tab_id, url } => {
                known(self, tab_id)?;
                self.navigate(tab_id, url);
                Ok(json!({}))
            }
            Command::Activate(id) => {
                known(self, id)?;
                self.activate(id);
                Ok(json!({}))
            }
            Command::Close(id) => {
                known(self, id)?;
                self.close_tab(id);
                Ok(json!({}))
            }
            Command::Reload(id) => {
                known(self, id)?;
                self.reload(id);
                Ok(json!({}))
            }
            Command::Back(id) | Command::Forward(id) => {
                known(self, id)?;
                if !self.live.contains_key(&id) {
                    return Err(format!("tab {id} has no live renderer"));
                }
                let msg = if matches!(command, Command::Back(_)) {
                    BrowserToRenderer::GoBack
                } else {
                    BrowserToRenderer::GoForward
                };
                self.send(id, msg);
                Ok(json!({}))
            }
            Command::EndProcess(id) => {
                known(self, id)?;
                if !self.live.contains_key(&id) {
                    return Err(format!("tab {id} has no renderer process"));
                }
                self.mark_crashed(id, "The renderer was ended from the task manager.".into());
                Ok(json!({}))
            }
            Command::Shutdown => {
                self.quitting = true;
                Ok(json!({}))
            }
            Command::Eval { .. } => unreachable!("eval is answered asynchronously"),
            Command::TaskManager => {
                let snapshot = self.snapshot(Reader::Control, true)?;
                let tabs = &self.tabs;
                Ok(snapshot.to_json(|id| tabs.get(id).map(|t| t.label().to_owned())))
            }
            Command::Discard(_)
            | Command::Freeze(_)
            | Command::Unfreeze(_)
            | Command::Pin(_)
            | Command::Unpin(_) => {
                Err("this command is not supported by this version of Warren yet".into())
            }
        }
    }

    fn tabs_json(&self) -> Vec<Value> {
        self.tabs
            .iter()
            .enumerate()
            .map(|(index, tab)| {
                let state = self
                    .tabs
                    .state(tab.id)
                    .map(|s| s.as_str())
                    .unwrap_or("background");
                json!({
                    "tab_id": tab.id.0,
                    "index": index,
                    "url": tab.url,
                    "title": tab.title,
                    "state": state,
                    "loading": tab.loading,
                    "responsive": tab.responsive,
                    "pinned": tab.pinned,
                    "renderer_pid": self.live.get(&tab.id).map(|l| l.host.pid()),
                })
            })
            .collect()
    }

    /// Asks every renderer to exit, waits briefly, then kills what is left.
    fn shut_down_renderers(&mut self) {
        let live: Vec<Live> = self.live.drain().map(|(_, l)| l).collect();
        for l in live {
            self.retire(l);
        }
        let deadline = Instant::now() + CLOSE_GRACE;
        while Instant::now() < deadline && !self.dying.is_empty() {
            while let Ok((pid, _)) = self.inbox.reaped.recv_timeout(Duration::from_millis(50)) {
                self.reap_dying(pid);
            }
        }
        // Dropping the hosts kills whatever did not exit in time.
        self.dying.clear();
    }
}
