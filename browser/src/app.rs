//! The browser's event loop: one winit `ApplicationHandler` that owns the windows and the tab model, and turns every input into a tab verb.
//!
//! Other threads never touch this state. Renderer readers, the control socket, the single-instance
//! socket, the shortcut grabber, the signal thread and the reaper each push into a channel of their
//! own and wake the loop with one coalesced user event ([`UserEvent::Wake`]); the loop drains every
//! channel, each renderer with a cap per wake so a flooding renderer cannot starve the window.
//!
//! Everything a user can do to a tab — from the chrome, a shortcut, the tab menu, the Task Manager
//! or the control socket — becomes a [`Verb`] for [`Tabs`], which answers with effects the windows
//! act on. The loop itself only routes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{unbounded, Receiver, Sender};
use nix::sys::wait::WaitStatus;
use warren_browser::cli::Options;
use warren_browser::clipboard::{Broker, BrokerEvent, NestedAddress};
use warren_browser::control::{self, ControlServer};
use warren_browser::host::{self, Displays, HostLauncher, OnDisplay, Waker};
use warren_browser::nested::{Isolation, Nested, NestedDisplay};
use warren_browser::procs::sampler::{self, Sampler, Watch};
use warren_browser::profile::{self, Acquired, Profile};
use warren_browser::protocol::{
    self, Command, DiscardResult, EvalResult, NewTabResult, Reply, TabInfo, VersionInfo,
};
use warren_browser::sandbox::Sandbox;
use warren_browser::session::{self, SessionWriter};
use warren_browser::tabs::{self, Answer, Effect, Outcome, TabState, Tabs, Ticket, Verb};
use warren_browser::{memory, policy, procs, spare, url_input};
use warren_ipc::{TabId, NEW_TAB_URL};
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::window::WindowId;

use crate::chrome::Action;
use crate::keys::{self, Shortcut};
use crate::menu::{MenuEvent, TabMenu};
use crate::task_window::TaskManagerWindow;
use crate::taskman::TaskAction;
use crate::window::{BrowserWindow, WindowOutcome};

/// How often timers (pings, the lifecycle policy, the Task Manager, session saves) run.
const TICK: Duration = Duration::from_secs(1);

/// The renderers' events are handled at most this often. Each batch is coalesced (of a run of
/// title or URL changes only the last is applied) and costs one repaint, so a renderer that
/// sends a message every millisecond costs the UI thread 40 batches a second, not a thousand
/// updates and repaints; its messages wait in its bounded queue meanwhile (and its reader stops
/// reading when that is full). A person does not see 25 ms.
const RENDERER_POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How long the browser waits, when it quits, for the tabs' states to save them.
const SHUTDOWN_CAPTURE: Duration = Duration::from_secs(1);

/// Which window an egui repaint request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Browser,
    TaskManager,
    Menu,
}

#[derive(Debug)]
pub enum UserEvent {
    /// Some channel has input.
    Wake,
    /// A window's egui asked to be repainted after this delay.
    Repaint(Surface, Duration),
}

/// Inputs from the browser's helper threads.
struct Inbox {
    control: Receiver<control::Request>,
    open_urls: Receiver<Vec<String>>,
    shortcuts: Receiver<Shortcut>,
    /// Tabs whose page the user pressed a mouse button on (from the clipboard broker).
    pages_pressed: Receiver<TabId>,
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

/// Everything that exists once the browser window does.
struct Running {
    window: BrowserWindow,
    tabs: Tabs,
    /// Brokers the clipboard and PRIMARY between pages' nested displays and the user's.
    broker: Option<Arc<Broker>>,
    /// The renderer (by the id it was started with) the broker was last told the user sees.
    broker_active: Option<TabId>,
    /// Whether spare renderers can be started here (not when pages cannot be shown at all).
    spares: bool,
}

struct App {
    options: Options,
    profile: Profile,
    /// How renderers are started; also holds the web processes' headless display.
    sandbox: Arc<Sandbox>,
    /// Where renderers' views live, until the launcher takes it.
    displays: Option<Displays>,
    /// Holds every renderer's private runtime directory; removed when the browser exits.
    _runtime_root: tempfile::TempDir,
    runtime_dir: PathBuf,
    waker: Waker,
    wake_pending: Arc<AtomicBool>,
    proxy: EventLoopProxy<UserEvent>,
    inbox: Inbox,
    shortcut_tx: Option<Sender<Shortcut>>,
    page_pressed_tx: Sender<TabId>,
    running: Option<Running>,
    task_manager: Option<TaskManagerWindow>,
    menu: Option<TabMenu>,
    /// Measures the process tree off the UI thread, for `task_manager` requests, the Task
    /// Manager window and `--memory-budget`; started when first needed.
    sampler: Option<Sampler>,
    /// Control requests waiting for a late answer (an `eval`, a `discard`).
    waiting: HashMap<Ticket, Sender<Reply>>,
    next_ticket: u64,
    session: Option<SessionWriter>,
    saved_generation: Option<u64>,
    repaint_at: Option<Instant>,
    next_tick: Instant,
    /// Whether the machine was idle since the last tick (for the spare renderer).
    idle_gauge: spare::IdleGauge,
    /// When the renderers' events were last handled ([`RENDERER_POLL_INTERVAL`]).
    renderers_polled_at: Instant,
    /// Events arrived before the interval was over: they are handled at this time.
    renderer_poll_at: Option<Instant>,
    /// Set when the browser is quitting: it waits until the tabs' states arrived or this passes.
    quit_deadline: Option<Instant>,
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

    // Before the reaper starts: the check runs bubblewrap once and waits for it itself.
    let private = [
        Some(options.profile.clone()),
        options.control_socket.clone(),
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
    ];
    let sandbox = Arc::new(Sandbox::detect(
        options.sandbox,
        private.into_iter().flatten().collect(),
    ));
    let displays = match options.display_isolation {
        Isolation::None => {
            log::warn!(
                "--display-isolation=none: pages' renderers are clients of your display; one a \
                 page takes over can read and type into every window of your desktop"
            );
            Displays::User
        }
        Isolation::Nested => match Nested::detect(sandbox.bwrap(), sandbox.filter()) {
            Ok(nested) => Displays::Nested(Arc::new(nested)),
            Err(why) => {
                log::error!("no page can be shown: {why}");
                Displays::Unavailable(why)
            }
        },
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
    let (page_pressed_tx, page_pressed_rx) = unbounded();
    let mut app = App {
        options,
        profile,
        sandbox,
        displays: Some(displays),
        _runtime_root: runtime_root,
        runtime_dir,
        waker,
        wake_pending,
        proxy,
        inbox: Inbox {
            control: control_rx,
            open_urls: open_rx,
            shortcuts: shortcut_rx,
            pages_pressed: page_pressed_rx,
            reaped: reaped_rx,
            quit: quit_rx,
        },
        shortcut_tx: Some(shortcut_tx),
        page_pressed_tx,
        running: None,
        task_manager: None,
        menu: None,
        sampler: None,
        waiting: HashMap::new(),
        next_ticket: 1,
        session: None,
        saved_generation: None,
        repaint_at: None,
        next_tick: Instant::now() + TICK,
        idle_gauge: spare::IdleGauge::default(),
        renderers_polled_at: Instant::now(),
        renderer_poll_at: None,
        quit_deadline: None,
    };
    let result = event_loop
        .run_app(&mut app)
        .map_err(|e| format!("event loop failed: {e}"));
    app.shut_down();
    drop(instance);
    result
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
            // Renderers controlled what is in there: removed without recursion, off this thread.
            warren_browser::sandbox::cleanup::remove_in_background(entry.path());
        }
    }
}

impl ApplicationHandler<UserEvent> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.running.is_some() {
            return;
        }
        let window =
            match BrowserWindow::create(event_loop, self.repaint_callback(Surface::Browser)) {
                Ok(window) => window,
                Err(e) => {
                    log::error!("{e}");
                    event_loop.exit();
                    return;
                }
            };
        if let Some(tx) = self.shortcut_tx.take() {
            let waker = self.waker.clone();
            if let Err(e) = keys::start(window.x11_window(), move |s| {
                let _ = tx.send(s);
                waker();
            }) {
                log::warn!("browser shortcuts are unavailable while a page has focus: {e}");
            }
        }
        let displays = self.displays.take().unwrap_or(Displays::User);
        let spares = self.options.spare_renderer && !matches!(displays, Displays::Unavailable(_));
        let broker = match &displays {
            Displays::Nested(_) => {
                let tx = self.page_pressed_tx.clone();
                let waker = self.waker.clone();
                match Broker::start(None, move |event| match event {
                    BrokerEvent::PagePressed { tab } => {
                        let _ = tx.send(tab);
                        waker();
                    }
                }) {
                    Ok(broker) => Some(Arc::new(broker)),
                    Err(e) => {
                        log::warn!("copy and paste between pages and other applications will not work: {e}");
                        None
                    }
                }
            }
            _ => None,
        };
        let on_display: Option<OnDisplay> = broker.as_ref().map(|b| {
            let broker = Arc::clone(b);
            Box::new(move |display: &mut NestedDisplay| {
                let (socket, cookie) = display.address();
                let tab = display.tab();
                broker.add_display(tab, NestedAddress { socket, cookie }, display.host_window());
                let broker = Arc::clone(&broker);
                display.on_end(Box::new(move || broker.remove_display(tab)));
            }) as OnDisplay
        });
        let launcher = HostLauncher {
            renderer: self.options.renderer.clone(),
            runtime_root: self.runtime_dir.clone(),
            parent_window: window.x11_window(),
            website_data_dir: self.profile.website_data_dir.clone(),
            cookie_file: self.profile.cookie_file.clone(),
            waker: self.waker.clone(),
            sandbox: Arc::clone(&self.sandbox),
            displays,
            on_display,
        };
        let now = Instant::now();
        let mut tabs = Tabs::new(Box::new(launcher), now);
        tabs.set_bounds(window.content_bounds());
        self.running = Some(Running {
            window,
            tabs,
            broker,
            broker_active: None,
            spares,
        });
        self.open_first_tabs(now);
        self.after_change();
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, id: WindowId, event: WindowEvent) {
        let now = Instant::now();
        if self.menu.as_ref().is_some_and(|m| m.id() == id) {
            self.menu_event(&event, now);
            return;
        }
        if self.task_manager.as_ref().is_some_and(|tm| tm.id() == id) {
            self.task_manager_event(&event, now);
            return;
        }
        let Some(running) = self.running.as_mut() else {
            return;
        };
        if !running.window.owns(id) {
            return;
        }
        match running.window.handle_event(id, &event) {
            WindowOutcome::None => {}
            WindowOutcome::CloseRequested => self.quit(now),
            WindowOutcome::RedrawRequested => self.redraw(event_loop, now),
            WindowOutcome::Clicked => {
                running.tabs.blur_page();
                self.close_menu();
            }
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: UserEvent) {
        match event {
            UserEvent::Wake => {
                self.wake_pending.store(false, Ordering::Release);
                self.drain_inputs(event_loop);
            }
            UserEvent::Repaint(surface, delay) => match surface {
                Surface::Browser if !delay.is_zero() => {
                    let at = Instant::now() + delay;
                    if self.repaint_at.is_none_or(|t| at < t) {
                        self.repaint_at = Some(at);
                    }
                }
                Surface::Browser => self.request_redraw(),
                Surface::TaskManager => {
                    if let Some(tm) = &self.task_manager {
                        tm.request_redraw();
                    }
                }
                Surface::Menu => {
                    if let Some(menu) = &self.menu {
                        menu.request_redraw();
                    }
                }
            },
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.tick(now);
        }
        if let Some(running) = self.running.as_mut() {
            // Deadlines of discards and closed renderers.
            if running.tabs.next_deadline().is_some_and(|t| now >= t) {
                running.tabs.tick(now);
            }
        }
        self.after_change();
        if self.repaint_at.is_some_and(|t| now >= t) {
            self.repaint_at = None;
            self.request_redraw();
        }
        if self.renderer_poll_at.is_some_and(|t| now >= t) {
            // Renderer events held back: the next drain handles them.
            self.renderer_poll_at = None;
            (self.waker)();
        }
        if let Some(deadline) = self.quit_deadline {
            let capturing = self.running.as_ref().is_some_and(|r| r.tabs.capturing());
            if !capturing || now >= deadline {
                event_loop.exit();
                return;
            }
        }
        let mut wake_at = self.next_tick;
        for t in [
            self.repaint_at,
            self.renderer_poll_at,
            self.quit_deadline,
            self.running.as_ref().and_then(|r| r.tabs.next_deadline()),
        ]
        .into_iter()
        .flatten()
        {
            wake_at = wake_at.min(t);
        }
        event_loop.set_control_flow(ControlFlow::WaitUntil(wake_at));
    }

    fn exiting(&mut self, _event_loop: &ActiveEventLoop) {
        self.close_menu();
        self.close_task_manager();
        if let Some(running) = self.running.as_mut() {
            running.window.destroy();
        }
    }
}

impl App {
    fn repaint_callback(&self, surface: Surface) -> impl Fn(Duration) + Send + Sync + 'static {
        let proxy = self.proxy.clone();
        move |delay| {
            let _ = proxy.send_event(UserEvent::Repaint(surface, delay));
        }
    }

    fn request_redraw(&self) {
        if let Some(running) = &self.running {
            running.window.request_redraw();
        }
    }

    /// The first tabs: the saved session (unless `--no-restore`), then the command line's URLs;
    /// the new-tab page when there is neither.
    fn open_first_tabs(&mut self, now: Instant) {
        let urls = std::mem::take(&mut self.options.urls);
        let mut save = true;
        let saved = if self.options.restore {
            match session::load(&self.profile.dir) {
                Ok(saved) => saved,
                Err(e @ session::SessionError::MovedAside { .. }) => {
                    log::warn!("{e}");
                    None
                }
                Err(e) => {
                    // A file that could not be read (or moved aside) is still the user's last
                    // session: this run must not replace it.
                    log::warn!("{e}; this session will not be saved");
                    save = false;
                    None
                }
            }
        } else {
            None
        };
        if save {
            self.session = Some(SessionWriter::start(self.profile.dir.clone()));
        }
        let Some(running) = self.running.as_mut() else {
            return;
        };
        if let Some(saved) = saved.filter(|s| !s.tabs.is_empty()) {
            log::info!("restoring {} tabs of the last session", saved.tabs.len());
            running
                .tabs
                .restore_session(saved, urls.is_empty(), SystemTime::now(), now);
        }
        if urls.is_empty() && running.tabs.is_empty() {
            self.apply(Verb::Open {
                url: NEW_TAB_URL.to_owned(),
                background: false,
            });
        }
        for (i, url) in urls.into_iter().enumerate() {
            self.apply(Verb::Open {
                url,
                background: i > 0,
            });
        }
    }

    /// Carries out a verb from the chrome, a shortcut, a menu or the Task Manager: errors are
    /// logged (the control socket reports them instead, see [`App::control`]).
    fn apply(&mut self, verb: Verb) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        if let Err(e) = running.tabs.apply(verb, None, Instant::now()) {
            log::info!("{e}");
        }
    }

    fn active(&self) -> Option<TabId> {
        self.running.as_ref().and_then(|r| r.tabs.active())
    }

    /// Acts on what the tab model asked for, until it asks nothing more.
    fn after_change(&mut self) {
        loop {
            let Some(running) = self.running.as_mut() else {
                return;
            };
            let effects = running.tabs.take_effects();
            if effects.is_empty() {
                break;
            }
            let mut redraw_task_manager = false;
            for effect in effects {
                match effect {
                    Effect::Redraw => {
                        running.window.request_redraw();
                        redraw_task_manager = true;
                    }
                    Effect::AddressChanged => {
                        running.window.chrome.address_error = None;
                        running.window.request_redraw();
                    }
                    Effect::FocusPage => running.window.blur_address_bar(),
                    Effect::FocusAddressBar => {
                        running.tabs.blur_page();
                        running.window.focus_address_bar();
                    }
                    Effect::PageReady(id) => {
                        if !running.window.chrome.editing && running.tabs.active() == Some(id) {
                            running.tabs.focus_page(id);
                        }
                    }
                    Effect::Answer(ticket, answer) => {
                        if let Some(reply) = self.waiting.remove(&ticket) {
                            let _ = reply.send(answer.map(|a| match a {
                                Answer::Value(value) => {
                                    protocol::Answer::from(EvalResult { value })
                                }
                                Answer::Discarded { freed_kb } => {
                                    protocol::Answer::from(DiscardResult { freed_kb })
                                }
                            }));
                        }
                    }
                    Effect::Quit => self.quit_deadline = Some(Instant::now()),
                }
            }
            if redraw_task_manager {
                if let Some(tm) = &self.task_manager {
                    tm.request_redraw();
                }
            }
            self.tell_broker_active();
            // A menu whose tab was closed has nothing left to act on.
            let menu_tab_gone = self.menu.as_ref().is_some_and(|m| {
                self.running
                    .as_ref()
                    .is_some_and(|r| r.tabs.get(m.tab()).is_none())
            });
            if menu_tab_gone {
                self.close_menu();
            }
        }
    }

    /// Tells the clipboard broker which tab's page the user sees: only that page may take the
    /// user's clipboard (on a paste the user made) or set it. The broker knows displays by the id
    /// their renderer was started with, which differs from the tab's when a spare took over.
    fn tell_broker_active(&mut self) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let active = running.tabs.active_channel();
        if let (Some(broker), true) = (&running.broker, running.broker_active != active) {
            broker.set_active(active);
            running.broker_active = active;
        }
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop, now: Instant) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let actions = running.window.paint(&running.tabs, now);
        running.tabs.set_bounds(running.window.content_bounds());
        for action in actions {
            self.chrome_action(action, event_loop, now);
        }
        self.after_change();
    }

    fn chrome_action(&mut self, action: Action, event_loop: &ActiveEventLoop, now: Instant) {
        match action {
            Action::Verb(verb) => self.apply(verb),
            Action::NewTab => self.apply(Verb::Open {
                url: NEW_TAB_URL.to_owned(),
                background: false,
            }),
            Action::OpenTaskManager => self.open_task_manager(event_loop, now),
            Action::TabMenu { tab, at } => self.open_menu(event_loop, tab, at),
            Action::Navigate(input) => {
                let Some(running) = self.running.as_mut() else {
                    return;
                };
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
                match url_input::fixup(&input, &cwd) {
                    Ok(url) => {
                        running.window.chrome.address_error = None;
                        running.window.chrome.address = url_input::display(&url);
                        let verb = match running.tabs.active() {
                            Some(tab) => Verb::Navigate { tab, url },
                            None => Verb::Open {
                                url,
                                background: false,
                            },
                        };
                        self.apply(verb);
                    }
                    Err(e) => {
                        running.window.chrome.address_error = Some(e.to_string());
                        running.window.chrome.focus_address = true;
                        running.window.request_redraw();
                    }
                }
            }
        }
    }

    fn shortcut(&mut self, shortcut: Shortcut, event_loop: &ActiveEventLoop) {
        let now = Instant::now();
        let active = self.active();
        let strip = self.running.as_ref().map(|r| r.tabs.strip());
        let verb = match shortcut {
            Shortcut::NewTab => Some(Verb::Open {
                url: NEW_TAB_URL.to_owned(),
                background: false,
            }),
            Shortcut::CloseTab => active.map(Verb::Close),
            Shortcut::NextTab => strip.and_then(|s| s.cycle(1)).map(Verb::Activate),
            Shortcut::PreviousTab => strip.and_then(|s| s.cycle(-1)).map(Verb::Activate),
            Shortcut::SelectTab(n) => strip
                .and_then(|s| s.nth_for_shortcut(n))
                .map(Verb::Activate),
            Shortcut::Reload => active.map(Verb::Reload),
            Shortcut::Back => active.map(Verb::Back),
            Shortcut::Forward => active.map(Verb::Forward),
            Shortcut::FocusAddressBar => {
                if let Some(running) = self.running.as_mut() {
                    running.tabs.blur_page();
                    running.window.focus_address_bar();
                }
                None
            }
            Shortcut::Quit => {
                self.quit(now);
                None
            }
            Shortcut::TaskManager => {
                self.open_task_manager(event_loop, now);
                None
            }
        };
        if let Some(verb) = verb {
            self.apply(verb);
        }
    }

    // ----- control socket -----

    fn control(&mut self, request: control::Request, now: Instant) {
        let control::Request { command, reply } = request;
        let ticket = self.ticket();
        let Some(running) = self.running.as_mut() else {
            let _ = reply.send(Err("the browser window is not open yet".into()));
            return;
        };
        let verb = match command {
            Command::Version => {
                let _ = reply.send(Ok(VersionInfo::current().into()));
                return;
            }
            Command::Tabs => {
                let tabs = tab_infos(&running.tabs, now);
                let _ = reply.send(Ok(tabs.into()));
                return;
            }
            Command::TaskManager => {
                self.task_manager_request(reply);
                return;
            }
            Command::Shutdown => {
                let _ = reply.send(Ok(protocol::Answer::Done));
                self.quit(now);
                return;
            }
            Command::Eval { tab_id, js } => {
                match running.tabs.eval(tab_id, js, ticket) {
                    Ok(()) => {
                        self.waiting.insert(ticket, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
                return;
            }
            Command::NewTab { url, background } => Verb::Open {
                url: url.unwrap_or_else(|| NEW_TAB_URL.to_owned()),
                background,
            },
            Command::Navigate { tab_id, url } => Verb::Navigate { tab: tab_id, url },
            Command::Activate { tab_id } => Verb::Activate(tab_id),
            Command::Close { tab_id } => Verb::Close(tab_id),
            Command::Reload { tab_id } => Verb::Reload(tab_id),
            Command::Back { tab_id } => Verb::Back(tab_id),
            Command::Forward { tab_id } => Verb::Forward(tab_id),
            Command::EndProcess { tab_id } => Verb::EndProcess(tab_id),
            Command::Discard { tab_id } => Verb::Discard(tab_id),
            Command::Freeze { tab_id } => Verb::Freeze(tab_id),
            Command::Unfreeze { tab_id } => Verb::Unfreeze(tab_id),
            Command::Pin { tab_id } => Verb::Pin(tab_id),
            Command::Unpin { tab_id } => Verb::Unpin(tab_id),
        };
        let answer = match running.tabs.apply(verb, Some(ticket), now) {
            Ok(Outcome::Pending) => {
                self.waiting.insert(ticket, reply);
                return;
            }
            Ok(Outcome::Done) => Ok(protocol::Answer::Done),
            Ok(Outcome::Opened(tab_id)) => Ok(NewTabResult { tab_id }.into()),
            Ok(Outcome::Discarded { freed_kb }) => Ok(DiscardResult { freed_kb }.into()),
            Err(e) => Err(e.to_string()),
        };
        let _ = reply.send(answer);
    }

    fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
    }

    /// The process sampler, started on first use.
    fn sampler(&mut self) -> Result<&Sampler, String> {
        let sampler = match self.sampler.take() {
            Some(sampler) => sampler,
            None => {
                let monitor = procs::Monitor::new().map_err(|e| e.to_string())?;
                let waker = self.waker.clone();
                Sampler::start(monitor, std::process::id(), move || waker())
                    .map_err(|e| format!("cannot start the process sampler thread: {e}"))?
            }
        };
        Ok(self.sampler.insert(sampler))
    }

    /// Answers `task_manager` with a fresh measurement (with PSS), made and sent on the sampler's
    /// thread: the UI thread never waits for it.
    fn task_manager_request(&mut self, reply: crossbeam_channel::Sender<Reply>) {
        let Some(running) = self.running.as_ref() else {
            let _ = reply.send(Err("the browser window is not open yet".into()));
            return;
        };
        let renderers = running.tabs.renderers();
        let displays = running.tabs.displays();
        let landlocked = running.tabs.landlocked();
        let spares = spare_pids(&running.tabs);
        let titles: HashMap<TabId, String> = running
            .tabs
            .iter()
            .map(|t| (t.id, t.label().to_owned()))
            .collect();
        match self.sampler() {
            Ok(sampler) => sampler.request(
                renderers,
                displays,
                landlocked,
                spares,
                Box::new(move |sample| {
                    let answer = sample.map(|s| {
                        s.snapshot
                            .to_task_manager(|id| titles.get(&id).cloned())
                            .into()
                    });
                    let _ = reply.send(answer);
                }),
            ),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Tells the sampler which renderers exist and what to measure every
    /// [`procs::sampler::INTERVAL`]: the Task Manager window's figures while it is open, the tabs'
    /// footprints for `--memory-budget`.
    fn update_sampler(&mut self) {
        let window = self.task_manager.as_ref().map(TaskManagerWindow::watch);
        let budget = self.options.lifecycle.memory_budget_kb.is_some();
        let watch = Watch {
            periodic: window.is_some() || budget,
            pss: window.is_some_and(|w| w.pss),
        };
        if !watch.periodic && self.sampler.is_none() {
            return;
        }
        let (renderers, displays, landlocked, spares) = self
            .running
            .as_ref()
            .map(|r| {
                (
                    r.tabs.renderers(),
                    r.tabs.displays(),
                    r.tabs.landlocked(),
                    spare_pids(&r.tabs),
                )
            })
            .unwrap_or_default();
        match self.sampler() {
            Ok(sampler) => {
                sampler.set_renderers(renderers);
                sampler.set_displays(displays);
                sampler.set_landlocked(landlocked);
                sampler.set_spares(spares);
                sampler.watch(watch);
            }
            Err(e) => log::warn!("cannot measure processes: {e}"),
        }
    }

    /// Shows the sampler's latest reading in the Task Manager window, if it is new.
    fn show_latest_sample(&mut self, now: Instant) {
        let (Some(tm), Some(running), Some(sampler)) = (
            self.task_manager.as_mut(),
            self.running.as_ref(),
            self.sampler.as_ref(),
        ) else {
            return;
        };
        if let Some(sample) = sampler.latest() {
            tm.show(&sample, &running.tabs, now);
        }
    }

    // ----- inputs and timers -----

    fn drain_inputs(&mut self, event_loop: &ActiveEventLoop) {
        let now = Instant::now();
        // Exits first: a renderer whose socket closed is then known to be reaped, and its pid
        // (which may be reused from now on) is not signalled when its tab is marked crashed.
        while let Ok((pid, status)) = self.inbox.reaped.try_recv() {
            if let (Some(running), Some(how)) = (self.running.as_mut(), host::describe_exit(status))
            {
                running.tabs.reaped(pid, &how);
            }
        }
        let more = self.poll_renderers(now);
        while let Ok(shortcut) = self.inbox.shortcuts.try_recv() {
            self.shortcut(shortcut, event_loop);
        }
        while let Ok(channel) = self.inbox.pages_pressed.try_recv() {
            // A click on the page: the page takes the keyboard (the nested display's window
            // cannot take it on the user's display itself).
            if let Some(running) = self.running.as_mut() {
                let tab = running.tabs.tab_of_channel(channel);
                if let Some(tab) = tab.filter(|&t| running.tabs.active() == Some(t)) {
                    running.window.blur_address_bar();
                    running.tabs.focus_page(tab);
                }
            }
        }
        while let Ok(urls) = self.inbox.open_urls.try_recv() {
            if urls.is_empty() {
                self.apply(Verb::Open {
                    url: NEW_TAB_URL.to_owned(),
                    background: false,
                });
            }
            for url in urls {
                self.apply(Verb::Open {
                    url,
                    background: false,
                });
            }
        }
        while let Ok(request) = self.inbox.control.try_recv() {
            self.control(request, now);
        }
        if let Ok(signal) = self.inbox.quit.try_recv() {
            log::info!("{signal}: shutting down");
            self.quit(now);
        }
        self.show_latest_sample(now);
        self.after_change();
        if more {
            (self.waker)();
        }
    }

    /// Handles the renderers' events, unless they were handled less than
    /// [`RENDERER_POLL_INTERVAL`] ago: then they are handled when it is over. Returns whether
    /// events are left.
    fn poll_renderers(&mut self, now: Instant) -> bool {
        let due = self.renderers_polled_at + RENDERER_POLL_INTERVAL;
        if now < due {
            self.renderer_poll_at = Some(due);
            return false;
        }
        self.renderer_poll_at = None;
        self.renderers_polled_at = now;
        self.running
            .as_mut()
            .is_some_and(|r| r.tabs.poll_renderers(now))
    }

    fn tick(&mut self, now: Instant) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        running.tabs.tick(now);
        if self.quit_deadline.is_none() {
            // One reading of the system's memory for both (a few small /proc files).
            let readings = memory::read();
            self.run_policy(&readings, now);
            self.save_session(now);
            self.keep_spare(&readings, now);
        }
        self.update_sampler();
        self.show_latest_sample(now);
    }

    /// Starts a spare renderer when there is none and the machine is idle (see [`spare`]); ends
    /// it when memory is short.
    fn keep_spare(&mut self, readings: &policy::Readings, now: Instant) {
        // Looked at every tick, so each look covers the last second.
        let idle = self.idle_gauge.idle_since_last();
        let Some(running) = self.running.as_mut().filter(|r| r.spares) else {
            return;
        };
        let short = policy::under_pressure(&self.options.lifecycle, readings);
        if short {
            running.tabs.drop_spare("memory is short");
            return;
        }
        let busy = running.tabs.iter().any(|t| t.loading);
        if idle && !busy && !running.tabs.has_spare() {
            running.tabs.prewarm(now);
        }
    }

    /// Runs the lifecycle policy over the tabs and carries out its plan.
    fn run_policy(&mut self, readings: &policy::Readings, now: Instant) {
        let memory = if self.options.lifecycle.memory_budget_kb.is_some() {
            self.tab_footprints()
        } else {
            HashMap::new()
        };
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let facts = running.tabs.facts(now, &memory);
        let plan = policy::decide(&self.options.lifecycle, &facts, readings, now);
        running.tabs.enforce(plan, now);
    }

    /// Every tab's renderer tree footprint, for the memory budget, from the sampler's latest
    /// reading (at most about two intervals old: the sampler measures every
    /// [`procs::sampler::INTERVAL`] while a budget is set). A tab whose renderer is newer than the reading has no figure yet.
    fn tab_footprints(&mut self) -> HashMap<TabId, u64> {
        self.update_sampler();
        let (Some(running), Some(sampler)) = (self.running.as_ref(), self.sampler.as_ref()) else {
            return HashMap::new();
        };
        let Some(sample) = sampler
            .latest()
            .filter(|s| s.started.elapsed() < sampler::INTERVAL * 5)
        else {
            return HashMap::new();
        };
        running
            .tabs
            .renderers()
            .into_iter()
            .filter_map(|(id, pid)| {
                let tab = sample.snapshot.tab(id)?;
                (tab.renderer_pid == pid).then_some((id, tab.sum.memory_kb))
            })
            .collect()
    }

    /// Hands the session to the writer thread when it changed (at most once per tick).
    fn save_session(&mut self, now: Instant) {
        let (Some(running), Some(writer)) = (self.running.as_ref(), self.session.as_ref()) else {
            return;
        };
        let generation = running.tabs.generation();
        if self.saved_generation != Some(generation) {
            self.saved_generation = Some(generation);
            writer.submit(running.tabs.session(SystemTime::now(), now));
        }
    }

    /// Starts quitting: the tabs report their states, then the loop exits (see `about_to_wait`).
    fn quit(&mut self, now: Instant) {
        if self.quit_deadline.is_some() {
            return;
        }
        if let Some(running) = self.running.as_mut() {
            running.tabs.capture_all(now);
        }
        self.quit_deadline = Some(now + SHUTDOWN_CAPTURE);
    }

    /// After the loop: saves the session one last time, asks every renderer to exit, waits
    /// briefly, then kills what is left.
    fn shut_down(&mut self) {
        for (_, reply) in self.waiting.drain() {
            let _ = reply.send(Err("the browser is shutting down".into()));
        }
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let now = Instant::now();
        if let Some(writer) = self.session.take() {
            writer.submit(running.tabs.session(SystemTime::now(), now));
            writer.finish();
        }
        running.tabs.close_renderers(now);
        let deadline = now + tabs::CLOSE_GRACE;
        while Instant::now() < deadline && running.tabs.retiring() {
            while let Ok((pid, status)) = self.inbox.reaped.recv_timeout(Duration::from_millis(50))
            {
                if let Some(how) = host::describe_exit(status) {
                    running.tabs.reaped(pid, &how);
                }
            }
        }
        running.tabs.kill_all();
    }

    // ----- the tab menu -----

    fn open_menu(&mut self, event_loop: &ActiveEventLoop, tab: TabId, at: egui::Pos2) {
        self.close_menu();
        let Some(running) = self.running.as_ref() else {
            return;
        };
        let origin = running.window.winit().inner_position().unwrap_or_default();
        let screen = winit::dpi::PhysicalPosition::new(
            origin.x + at.x.round() as i32,
            origin.y + at.y.round() as i32,
        );
        let repaint = self.repaint_callback(Surface::Menu);
        let Some(running) = self.running.as_mut() else {
            return;
        };
        match TabMenu::open(event_loop, repaint, tab, screen) {
            Ok(menu) => {
                running.tabs.blur_page();
                running.window.focus_window(menu.x11_window());
                self.menu = Some(menu);
            }
            Err(e) => log::warn!("cannot open the tab menu: {e}"),
        }
    }

    fn menu_event(&mut self, event: &WindowEvent, _now: Instant) {
        let Some(menu) = self.menu.as_mut() else {
            return;
        };
        if matches!(event, WindowEvent::RedrawRequested) {
            if let Some(running) = &self.running {
                menu.redraw(&running.tabs);
            }
            return;
        }
        // Losing the focus dismisses the menu; whoever took it keeps it. Otherwise (a choice,
        // Escape) the keyboard goes back to where it was before the menu took it.
        let focus_taken = matches!(event, WindowEvent::Focused(false));
        match menu.on_event(event) {
            MenuEvent::None => {}
            MenuEvent::Dismissed => {
                self.close_menu();
                if !focus_taken {
                    self.refocus();
                }
            }
            MenuEvent::Chose(verb) => {
                self.close_menu();
                self.apply(verb);
                self.refocus();
                self.after_change();
            }
        }
    }

    /// Gives the keyboard back to the active page, or to the chrome when the page has no view.
    fn refocus(&mut self) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        match running.tabs.active_tab().filter(|t| t.has_view()) {
            Some(tab) => {
                let id = tab.id;
                running.tabs.focus_page(id);
            }
            None => running.window.focus_chrome(),
        }
    }

    fn close_menu(&mut self) {
        if let Some(mut menu) = self.menu.take() {
            menu.destroy();
        }
    }

    // ----- the Task Manager -----

    /// Opens the Task Manager window, or raises it if it is open.
    fn open_task_manager(&mut self, event_loop: &ActiveEventLoop, now: Instant) {
        let Some(running) = self.running.as_ref() else {
            return;
        };
        if let Some(tm) = &self.task_manager {
            running.window.focus_window(tm.x11_window());
            tm.raise();
            return;
        }
        // A recent reading is shown at once; the sampler measures for the window from now on.
        let latest = self
            .sampler
            .as_ref()
            .and_then(Sampler::latest)
            .filter(|s| s.started.elapsed() < sampler::INTERVAL * 2);
        match TaskManagerWindow::open(
            event_loop,
            self.repaint_callback(Surface::TaskManager),
            latest.as_deref(),
            &running.tabs,
            now,
        ) {
            Ok(tm) => {
                running.window.focus_window(tm.x11_window());
                self.task_manager = Some(tm);
            }
            Err(e) => log::error!("cannot open the Task Manager: {e}"),
        }
        self.update_sampler();
    }

    fn close_task_manager(&mut self) {
        if let Some(mut tm) = self.task_manager.take() {
            tm.destroy();
        }
        self.update_sampler();
    }

    fn task_manager_event(&mut self, event: &WindowEvent, now: Instant) {
        let Some(tm) = self.task_manager.as_mut() else {
            return;
        };
        match tm.handle_event(event) {
            WindowOutcome::None => {}
            WindowOutcome::CloseRequested => self.close_task_manager(),
            WindowOutcome::Clicked => {
                if let Some(running) = &self.running {
                    running.window.focus_window(tm.x11_window());
                }
            }
            WindowOutcome::RedrawRequested => {
                let Some(running) = self.running.as_ref() else {
                    return;
                };
                let actions = tm.paint(&running.tabs, now);
                let acted = !actions.is_empty();
                for action in actions {
                    let verb = match action {
                        TaskAction::EndProcess(id) => Verb::EndProcess(id),
                        TaskAction::Freeze(id) => Verb::Freeze(id),
                        TaskAction::Unfreeze(id) => Verb::Unfreeze(id),
                        TaskAction::Discard(id) => Verb::Discard(id),
                        TaskAction::Activate(id) => {
                            if let Some(running) = &self.running {
                                running.window.focus_window(running.window.x11_window());
                            }
                            Verb::Activate(id)
                        }
                    };
                    self.apply(verb);
                }
                if acted {
                    self.after_change();
                    // A new reading shows the result (a tree ended, a tab frozen) without waiting
                    // for the next second.
                    if let Some(tm) = self.task_manager.as_mut() {
                        tm.force_next();
                    }
                    if let Some(sampler) = &self.sampler {
                        sampler.refresh_soon();
                    }
                }
                // The PSS column may have been switched on or off.
                self.update_sampler();
            }
        }
    }
}

/// The `tabs` reply: every tab in strip order.
/// The processes the browser started for its spare renderer: its sandbox and its display's.
fn spare_pids(tabs: &Tabs) -> Vec<u32> {
    tabs.spare_pids()
        .map(|(root, display)| std::iter::once(root).chain(display).collect())
        .unwrap_or_default()
}

fn tab_infos(tabs: &Tabs, now: Instant) -> Vec<TabInfo> {
    let wall = SystemTime::now();
    let active = tabs.active();
    tabs.iter()
        .enumerate()
        .map(|(index, tab)| TabInfo {
            tab_id: tab.id,
            index,
            url: tab.url.clone(),
            title: tab.title.clone(),
            state: tabs.state(tab.id).unwrap_or(TabState::Background),
            loading: tab.loading,
            responsive: tab.responsive,
            pinned: tab.pinned,
            renderer_pid: tab.renderer_pid(),
            protected: tabs.protection(tab.id, now).map(|p| p.as_str().to_owned()),
            last_active_ms: tabs::last_active_ms(tab, active == Some(tab.id), wall, now),
        })
        .collect()
}
