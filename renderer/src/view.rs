//! The tab's web view: built with wry as a full-screen window of the tab's nested display (or a child of the browser's X window with `--display-isolation none`), its WebKit signals mapped to up messages, and the browser's commands applied to it.

use std::cell::{Cell, RefCell};
use std::ffi::c_ulong;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use gtk::prelude::*;
use javascriptcore::{ContextExt, ExceptionExt, ValueExt};
use raw_window_handle::{
    HandleError, HasWindowHandle, RawWindowHandle, WindowHandle, XlibWindowHandle,
};
use webkit2gtk::{
    CookieManagerExt, CookiePersistentStorage, LoadEvent, WebProcessTerminationReason, WebViewExt,
    WebsiteDataManagerExt,
};
use wry::dpi::{PhysicalPosition, PhysicalSize};
use wry::{
    NewWindowResponse, Rect, WebContext, WebViewBuilder, WebViewBuilderExtUnix, WebViewExtUnix,
};
use x11_dl::xlib;

use warren_ipc::{
    Bounds, BrowserToRenderer, PageState, RendererToBrowser, SessionHistory, ViewSetup,
    INTERNAL_SCHEME, MAX_EVAL_RESULT_LEN, SHOWABLE_SCHEMES,
};

use crate::focus::XFocus;
use crate::session::{self, CaptureError, Throttle, ThrottleStep, HISTORY_INTERVAL};
use crate::up::{truncate_on_char_boundary, Up};
use crate::{protocol, request_exit, scripts, state, ExitReason};

/// The longest script error message passed on to the browser, in bytes.
const MAX_EVAL_ERROR_LEN: usize = 4096;

/// How long a restored tab waits, after loading stopped, for load-changed Finished (which
/// applies the page state) before it gives the page state up.
const RESTORE_FINISH_GRACE: Duration = Duration::from_secs(1);

/// Why the web view could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("the default GDK display is not an X11 display; start the renderer with GDK_BACKEND=x11 and DISPLAY set")]
    NotX11,
    #[error("cannot load libX11 (install libx11-6): {0}")]
    Xlib(#[from] x11_dl::error::OpenError),
    #[error(
        "the browser window {0:#x} does not exist on this X display (is DISPLAY the browser's?)"
    )]
    NoParentWindow(u64),
    #[error("cannot create the web view: {0}")]
    Wry(#[from] wry::Error),
    #[error(transparent)]
    Focus(#[from] crate::focus::FocusError),
}

/// The browser's X window, as a window handle wry can embed into.
struct ParentWindow(c_ulong);

impl HasWindowHandle for ParentWindow {
    fn window_handle(&self) -> Result<WindowHandle<'_>, HandleError> {
        let raw = RawWindowHandle::Xlib(XlibWindowHandle::new(self.0));
        // SAFETY: the handle carries only an X window id (checked to exist before building), no
        // borrowed memory, so any lifetime is sound.
        Ok(unsafe { WindowHandle::borrow_raw(raw) })
    }
}

/// Wry's bounds from the browser's, in physical pixels (wry would scale logical ones by DPI).
fn wry_rect(bounds: Bounds) -> Rect {
    Rect {
        position: PhysicalPosition::new(bounds.x, bounds.y).into(),
        size: PhysicalSize::new(bounds.width.max(1), bounds.height.max(1)).into(),
    }
}

/// A physical size from the browser as GTK's logical one for `window`'s screen.
fn logical_size(window: &gtk::Window, bounds: Bounds) -> (i32, i32) {
    let scale = window.scale_factor().max(1);
    let logical = |v: u32| (i32::try_from(v).unwrap_or(i32::MAX) / scale).max(1);
    (logical(bounds.width), logical(bounds.height))
}

/// Whether the browser's window exists; checked before wry creates a child of it, as a missing parent
/// would otherwise end the process in GDK's X error handler with a less helpful message.
fn parent_window_exists(parent: c_ulong) -> Result<bool, ViewError> {
    let display = gdk::Display::default().ok_or(ViewError::NotX11)?;
    let x11_display = display
        .downcast::<gdkx11::X11Display>()
        .map_err(|_| ViewError::NotX11)?;
    let xlib = xlib::Xlib::open()?;
    // SAFETY: the display pointer belongs to GDK's open connection; `attrs` is plain data that
    // XGetWindowAttributes fills in. X errors are trapped.
    let ok = unsafe {
        use glib::translate::ToGlibPtr;
        let xdisplay = gdkx11::ffi::gdk_x11_display_get_xdisplay(x11_display.to_glib_none().0)
            as *mut xlib::Display;
        let mut attrs: xlib::XWindowAttributes = std::mem::zeroed();
        x11_display.error_trap_push();
        let status = (xlib.XGetWindowAttributes)(xdisplay, parent, &mut attrs);
        let error = x11_display.error_trap_pop();
        status != 0 && error == 0
    };
    Ok(ok)
}

/// The script result the browser gets: the value as JSON text, or the error message.
fn eval_result(result: Result<javascriptcore::Value, glib::Error>) -> Result<String, String> {
    let value = result
        .map_err(|e| truncate_on_char_boundary(e.message(), MAX_EVAL_ERROR_LEN).to_owned())?;
    let json = if value.is_undefined() {
        "null".to_owned()
    } else {
        match value.to_json(0) {
            Some(json) => json.to_string(),
            None => {
                // JSON.stringify gives undefined for functions and symbols (null is the closest
                // JSON), and throws for cycles and BigInts (an error).
                if let Some(exception) = value.context().and_then(|c| c.exception()) {
                    let message = exception
                        .message()
                        .map(|m| m.to_string())
                        .unwrap_or_default();
                    return Err(truncate_on_char_boundary(&message, MAX_EVAL_ERROR_LEN).to_owned());
                }
                "null".to_owned()
            }
        }
    };
    if json.len() > MAX_EVAL_RESULT_LEN {
        return Err(format!(
            "result too large: {} bytes of JSON, limit {MAX_EVAL_RESULT_LEN}",
            json.len()
        ));
    }
    Ok(json)
}

/// Human-readable reason for a web process's end.
fn termination_reason(reason: WebProcessTerminationReason) -> String {
    match reason {
        WebProcessTerminationReason::Crashed => "the web process crashed".to_owned(),
        WebProcessTerminationReason::ExceededMemoryLimit => {
            "the web process exceeded its memory limit".to_owned()
        }
        WebProcessTerminationReason::TerminatedByApi => "the web process was terminated".to_owned(),
        other => format!("the web process ended ({other:?})"),
    }
}

/// What a spare's warm-up view loads.
const WARM_UP_URL: &str = "about:blank";

/// A spare renderer's head start ([`ViewSetup::spare`]): its web context, and a hidden view that
/// has loaded about:blank, so WebKit's web process is running. WebKit starts a web process (inside
/// its own bubblewrap, beside a D-Bus proxy) only for a view's first load, and that is most of a
/// new tab's wait. The tab's view, built when the tab arrives, is related to this one and so shares
/// its web process; the warm-up view itself leaves no entry in the tab's back/forward list.
pub struct Warm {
    context: WebContext,
    view: WarmView,
}

/// The warm-up view, in a window that is never shown (wry builds views only into a container).
struct WarmView {
    webview: wry::WebView,
    _window: gtk::Window,
}

impl Warm {
    pub fn start(setup: &ViewSetup) -> Result<Self, ViewError> {
        let mut context = WebContext::new(Some(setup.website_data_dir.clone()));
        let window = gtk::Window::new(gtk::WindowType::Toplevel);
        let webview = WebViewBuilder::new_with_web_context(&mut context)
            .with_url(WARM_UP_URL)
            .with_visible(false)
            .build_gtk(&window)?;
        Ok(Self {
            context,
            view: WarmView {
                webview,
                _window: window,
            },
        })
    }
}

/// One tab's web view and what it needs to live.
pub struct Tab {
    up: Rc<Up>,
    focus: Rc<XFocus>,
    /// The webkit2gtk view inside `webview`, for what wry lacks.
    view: webkit2gtk::WebView,
    /// Owns the child X window and the GTK window around the view.
    webview: wry::WebView,
    /// On a nested display of its own: the full-screen toplevel window that holds the view.
    window: Option<gtk::Window>,
    /// Must outlive the view.
    _context: WebContext,
    /// A spare's warm-up view: it keeps the shared web process until the tab's first load is
    /// under way, then goes.
    warm_view: RefCell<Option<WarmView>>,
    /// The URL the tab was launched with: the history's entry while nothing is committed yet.
    launch_url: String,
    /// Keeps unasked `HistoryState` messages to about one a second.
    history_throttle: RefCell<Throttle>,
    /// The last `HistoryState` sent, so an unchanged history is not sent again.
    last_history: RefCell<Option<SessionHistory>>,
    /// A restored page's scroll offset and fields, waiting for the restore's first load to finish.
    pending_page: RefCell<Option<PageState>>,
    /// Counts loads that started, so a script result that arrives after the page it ran in was
    /// left is recognised.
    load_generation: Cell<u64>,
}

impl Tab {
    /// Builds the web view inside the browser's window (or on the tab's nested display),
    /// connects its signals, reports `Ready` and starts loading the launch URL (or restoring the
    /// snapshot). A spare passes its head start, `warm`.
    pub fn build(
        setup: &ViewSetup,
        up: Rc<Up>,
        landlock: bool,
        warm: Option<Warm>,
    ) -> Result<Rc<Self>, ViewError> {
        let parent = match setup.parent_window {
            Some(xid) => {
                let parent = c_ulong::try_from(xid).map_err(|_| ViewError::NoParentWindow(xid))?;
                if !parent_window_exists(parent)? {
                    return Err(ViewError::NoParentWindow(xid));
                }
                Some(parent)
            }
            None => None,
        };
        let focus = Rc::new(XFocus::open()?);

        let (mut context, warm_view) = match warm {
            Some(Warm { context, view }) => (context, Some(view)),
            None => (WebContext::new(Some(setup.website_data_dir.clone())), None),
        };
        let opener_up = Rc::clone(&up);
        let mut builder = WebViewBuilder::new_with_web_context(&mut context);
        if let Some(warm_view) = &warm_view {
            builder = builder.with_related_view(warm_view.webview.webview());
        }
        let builder = builder
            .with_bounds(wry_rect(setup.bounds))
            .with_visible(setup.visible)
            .with_focused(false)
            .with_custom_protocol(INTERNAL_SCHEME.to_owned(), |_id, request| {
                protocol::handle(&request)
            })
            .with_navigation_handler(|url| {
                // Refused here, a page cannot take its tab to a scheme the browser does not
                // show (the browser would end the renderer for reporting it).
                let allowed = url
                    .split_once(':')
                    .is_some_and(|(scheme, _)| SHOWABLE_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()));
                if !allowed {
                    log::info!(target: "renderer", "refused navigation to {}", truncate_on_char_boundary(&url, 200));
                }
                allowed
            })
            .with_new_window_req_handler(move |url, _features| {
                // Allow would open a GTK window of our own (and panics in this embedding): the
                // browser decides whether the request becomes a tab.
                opener_up.open_tab(&url);
                NewWindowResponse::Deny
            });
        let (webview, window) = match parent {
            Some(parent) => (builder.build_as_child(&ParentWindow(parent))?, None),
            None => {
                // The nested display is this renderer's alone: the view fills its screen, with
                // no window manager and no decoration.
                let window = gtk::Window::new(gtk::WindowType::Toplevel);
                window.set_decorated(false);
                window.move_(0, 0);
                let (width, height) = logical_size(&window, setup.bounds);
                window.set_default_size(width, height);
                let webview = builder.build_gtk(&window)?;
                if setup.visible {
                    window.show_all();
                } else {
                    // Realized but unmapped: WebKit sees a hidden page until the tab is shown.
                    window.realize();
                    webview.webview().realize();
                }
                (webview, Some(window))
            }
        };
        let view = webview.webview();
        if !setup.visible && window.is_none() {
            // wry 0.57 maps the GTK window (and with it the child X window) while building and
            // hides only the inner widget: the child window would stay mapped, an opaque black
            // rectangle over the active tab. Now that the view exists, hiding unmaps it.
            webview.set_visible(false)?;
        }

        // wry keeps cookies in a text file inside the data directory; Warren keeps them in the
        // profile's SQLite database, which every renderer of the profile opens, so a cookie set
        // in one tab is seen by tabs opened later.
        match view.website_data_manager().and_then(|m| m.cookie_manager()) {
            Some(cookies) => cookies.set_persistent_storage(
                &setup.cookie_file.to_string_lossy(),
                CookiePersistentStorage::Sqlite,
            ),
            None => {
                log::warn!(target: "renderer", "no cookie manager: cookies will not be shared with other tabs")
            }
        }

        focus.prepare(&view);
        let tab = Rc::new(Self {
            up,
            focus,
            view,
            webview,
            window,
            _context: context,
            warm_view: RefCell::new(warm_view),
            launch_url: setup.url.clone(),
            history_throttle: RefCell::new(Throttle::default()),
            last_history: RefCell::new(None),
            pending_page: RefCell::new(None),
            load_generation: Cell::new(0),
        });
        tab.connect_signals();
        let form_up = Rc::clone(&tab.up);
        scripts::install_form_watch(&tab.view, move |edited| form_up.form_edited(edited));
        tab.up.send(RendererToBrowser::Ready { landlock });
        tab.report_history();
        match &setup.restore {
            Some(snapshot) => {
                let restore = state::restore(&tab.view, snapshot, &setup.url);
                *tab.pending_page.borrow_mut() = restore.page;
            }
            None => tab.view.load_uri(&setup.url),
        }
        Ok(tab)
    }

    fn report_history(&self) {
        self.up
            .history(self.view.can_go_back(), self.view.can_go_forward());
    }

    fn connect_signals(self: &Rc<Self>) {
        let up = Rc::clone(&self.up);
        self.view.connect_uri_notify(move |view| {
            // After a failed first load WebKit has no committed address and reports "": there is
            // no new URL to tell (the browser keeps the one it asked for, and would refuse "").
            if let Some(uri) = view.uri().filter(|u| !u.is_empty()) {
                up.url_changed(&uri);
            }
            up.history(view.can_go_back(), view.can_go_forward());
        });

        let up = Rc::clone(&self.up);
        self.view.connect_title_notify(move |view| {
            up.title_changed(view.title().as_deref().unwrap_or_default());
        });

        let weak = Rc::downgrade(self);
        self.view.connect_load_changed(move |view, event| {
            let Some(tab) = weak.upgrade() else { return };
            match event {
                LoadEvent::Started => {
                    tab.load_generation.set(tab.load_generation.get() + 1);
                    // The page with the edits is on its way out (navigation, reload).
                    tab.up.form_edited(false);
                    tab.up.loading(true);
                }
                LoadEvent::Committed => {
                    // Edits made while the new page was pending went with the old page.
                    tab.up.form_edited(false);
                }
                LoadEvent::Finished => {
                    // The tab's page holds the web process now: the warm-up view goes, from the
                    // main loop, not from inside WebKit's signal.
                    if let Some(warm) = tab.warm_view.borrow_mut().take() {
                        glib::idle_add_local_once(move || drop(warm));
                    }
                    // The restore script is queued before Loading(false): a script the browser
                    // sends after Loading(false) runs after it (WebKit runs them in order).
                    tab.finish_restore();
                    tab.up.loading(false);
                    tab.history_changed();
                }
                _ => {}
            }
            tab.up.history(view.can_go_back(), view.can_go_forward());
        });

        let weak = Rc::downgrade(self);
        self.view.connect_is_loading_notify(move |view| {
            // load-changed Finished follows every failure too; this catches any path where
            // WebKit stops loading without it.
            if !view.is_loading() {
                if let Some(tab) = weak.upgrade() {
                    tab.loading_stopped();
                }
            }
        });

        let up = Rc::clone(&self.up);
        self.view.connect_is_playing_audio_notify(move |view| {
            up.playing_audio(view.is_playing_audio());
        });

        self.view.connect_load_failed(|_view, _event, uri, error| {
            log::info!(target: "renderer", "load of {} failed: {error}", truncate_on_char_boundary(uri, 200));
            // Let WebKit show its error page.
            false
        });

        if let Some(list) = self.view.back_forward_list() {
            let weak = Rc::downgrade(self);
            list.connect_local("changed", false, move |_| {
                if let Some(tab) = weak.upgrade() {
                    tab.report_history();
                    tab.history_changed();
                }
                None
            });
        }

        let up = Rc::clone(&self.up);
        self.view
            .connect_web_process_terminated(move |_view, reason| {
                if crate::exiting() {
                    return;
                }
                let reason = termination_reason(reason);
                log::error!(target: "renderer", "{reason}");
                up.send(RendererToBrowser::WebProcessCrashed {
                    reason: reason.clone(),
                });
                request_exit(ExitReason::WebProcessCrashed(reason));
            });

        let focus = Rc::clone(&self.focus);
        self.view.connect_button_press_event(move |view, _event| {
            focus.focus(view);
            glib::Propagation::Proceed
        });
    }

    /// Applies one message from the browser.
    pub fn handle(self: &Rc<Self>, msg: BrowserToRenderer) {
        match msg {
            BrowserToRenderer::Start { .. } => {
                log::warn!(target: "renderer", "Start for a renderer that already serves a tab: ignored");
            }
            BrowserToRenderer::Navigate { url } => self.view.load_uri(&url),
            BrowserToRenderer::Reload => self.view.reload(),
            BrowserToRenderer::Stop => self.view.stop_loading(),
            BrowserToRenderer::GoBack => self.view.go_back(),
            BrowserToRenderer::GoForward => self.view.go_forward(),
            BrowserToRenderer::SetBounds(bounds) => match &self.window {
                // The browser resized the nested screen to the content area; fill it.
                Some(window) => {
                    let (width, height) = logical_size(window, bounds);
                    window.move_(0, 0);
                    window.resize(width, height);
                }
                None => {
                    if let Err(e) = self.webview.set_bounds(wry_rect(bounds)) {
                        log::warn!(target: "renderer", "cannot move the web view to {bounds:?}: {e}");
                    }
                }
            },
            BrowserToRenderer::SetVisible(visible) => match &self.window {
                Some(window) if visible => {
                    window.show_all();
                    self.focus.focus(&self.view);
                }
                Some(window) => window.hide(),
                None => {
                    if let Err(e) = self.webview.set_visible(visible) {
                        log::warn!(target: "renderer", "cannot {} the web view: {e}", if visible { "show" } else { "hide" });
                    }
                }
            },
            BrowserToRenderer::Focus => self.focus.focus(&self.view),
            BrowserToRenderer::Blur => self.focus.blur(&self.view),
            BrowserToRenderer::Eval { request, js } => self.eval(request, &js),
            BrowserToRenderer::Ping { seq } => self.up.send(RendererToBrowser::Pong { seq }),
            BrowserToRenderer::CaptureState { request } => self.capture_state(request),
            BrowserToRenderer::Shutdown => request_exit(ExitReason::Shutdown),
        }
    }

    /// Loading stopped. WebKit reports this just before load-changed Finished (and on any path
    /// that ends without it). While a restored page waits for its first load, Loading(false) must
    /// follow the restore script, which Finished queues; so it is left to Finished, and only if
    /// Finished has not come [`RESTORE_FINISH_GRACE`] later is the restore dropped and the load
    /// reported over.
    fn loading_stopped(self: &Rc<Self>) {
        if self.pending_page.borrow().is_none() {
            self.up.loading(false);
            return;
        }
        let weak = Rc::downgrade(self);
        glib::timeout_add_local_once(RESTORE_FINISH_GRACE, move || {
            let Some(tab) = weak.upgrade() else { return };
            if tab.view.is_loading() {
                return;
            }
            if tab.pending_page.borrow_mut().take().is_some() {
                log::info!(target: "renderer", "the restore's first load stopped without finishing; its scroll offset and fields are not applied");
            }
            tab.up.loading(false);
        });
    }

    /// On the restore's first finished load: puts the page's fields back and scrolls it, if the
    /// committed page is the one the state belongs to.
    fn finish_restore(self: &Rc<Self>) {
        let Some(page) = self.pending_page.borrow_mut().take() else {
            return;
        };
        if self.view.uri().as_deref() != Some(page.url.as_str()) {
            log::info!(target: "renderer", "the restored tab finished loading another page than its state's; scroll offset and fields are not applied");
            return;
        }
        let Some(plan) = session::restore_plan_json(&page) else {
            return;
        };
        let generation = self.load_generation.get();
        let weak = Rc::downgrade(self);
        self.view.evaluate_javascript(
            &scripts::restore_script(&plan),
            Some(scripts::WORLD),
            None,
            None::<&gtk::gio::Cancellable>,
            move |result| {
                let Some(tab) = weak.upgrade() else { return };
                let restored = match result {
                    Ok(value) if value.is_string() => {
                        session::restored_field_count(&value.to_str())
                    }
                    Ok(_) => 0,
                    Err(e) => {
                        log::warn!(target: "renderer", "the page restore script failed: {}", truncate_on_char_boundary(e.message(), 500));
                        0
                    }
                };
                log::debug!(target: "renderer", "restored {restored} form fields");
                // The restored page holds input its user never submitted, unless it was left
                // before the script's answer came back.
                if restored > 0 && tab.load_generation.get() == generation {
                    tab.up.form_edited(true);
                }
            },
        );
    }

    /// The back/forward list may have changed: sends `HistoryState` now, or once the throttle
    /// allows, with the state as it is then.
    fn history_changed(self: &Rc<Self>) {
        let step = self
            .history_throttle
            .borrow_mut()
            .offer(Instant::now(), HISTORY_INTERVAL);
        match step {
            ThrottleStep::SendNow => self.push_history(),
            ThrottleStep::Wait => {}
            ThrottleStep::Schedule(delay) => {
                let weak: Weak<Self> = Rc::downgrade(self);
                glib::timeout_add_local_once(delay, move || {
                    if let Some(tab) = weak.upgrade() {
                        tab.history_throttle.borrow_mut().fired(Instant::now());
                        tab.push_history();
                    }
                });
            }
        }
    }

    /// Sends the history unless nothing is committed yet, or it is what the browser already has.
    fn push_history(&self) {
        if crate::exiting() {
            return;
        }
        let built = state::capture_history(&self.view, &self.launch_url);
        if built.fell_back {
            return;
        }
        if self.last_history.borrow().as_ref() == Some(&built.history) {
            return;
        }
        *self.last_history.borrow_mut() = Some(built.history.clone());
        let (msg, shrunk) = session::fit_history_state(self.up.tab_id(), built.history);
        if shrunk.any() {
            log::info!(target: "renderer", "history state cut to fit one frame: {shrunk:?}");
        }
        self.up.send(msg);
    }

    /// Answers `CaptureState`: runs the capture script in the page, then reads the history and
    /// sends both. A page that never runs the script gets no answer (the browser has a deadline);
    /// the main loop is not held up meanwhile.
    fn capture_state(self: &Rc<Self>, request: u64) {
        let weak = Rc::downgrade(self);
        self.view.evaluate_javascript(
            scripts::capture_script(),
            Some(scripts::WORLD),
            None,
            None::<&gtk::gio::Cancellable>,
            move |result| {
                let Some(tab) = weak.upgrade() else { return };
                let json = match result {
                    Ok(value) if value.is_string() => Ok(value.to_str().to_string()),
                    Ok(_) => Err(CaptureError::Script("its value is not text".to_owned())),
                    Err(e) => Err(CaptureError::Script(
                        truncate_on_char_boundary(e.message(), 500).to_owned(),
                    )),
                };
                let history = state::capture_history(&tab.view, &tab.launch_url).history;
                let url = history
                    .current_entry()
                    .map(|e| e.url.clone())
                    .unwrap_or_default();
                let zoom = tab.view.zoom_level();
                // A restore whose page state is not applied yet still has it: the document now
                // shown is not scrolled or filled in, but the tab's state is the snapshot's.
                let pending = tab.pending_page.borrow().clone();
                let page = match (pending, json) {
                    (Some(pending), _) if pending.url == url => pending,
                    (_, Ok(ref text)) => session::page_state(Ok(text), &url, zoom),
                    (_, Err(e)) => session::page_state(Err(e), &url, zoom),
                };
                let (msg, shrunk) =
                    session::fit_state_captured(tab.up.tab_id(), request, history, page);
                if shrunk.any() {
                    log::info!(target: "renderer", "captured state cut to fit one frame: {shrunk:?}");
                }
                tab.up.send(msg);
            },
        );
    }

    fn eval(&self, request: u64, js: &str) {
        let up = Rc::clone(&self.up);
        self.view.evaluate_javascript(
            js,
            None,
            None,
            None::<&gtk::gio::Cancellable>,
            move |result| {
                up.send(RendererToBrowser::EvalResult {
                    request,
                    result: eval_result(result),
                });
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_in_jsc(code: &str) -> Result<String, String> {
        let context = javascriptcore::Context::new();
        let value = context.evaluate(code).expect("JSC returns a value");
        eval_result(Ok(value))
    }

    #[test]
    fn values_become_json() {
        assert_eq!(eval_in_jsc("undefined"), Ok("null".to_owned()));
        assert_eq!(eval_in_jsc("null"), Ok("null".to_owned()));
        assert_eq!(
            eval_in_jsc("({a: [1, 'x', true]})"),
            Ok(r#"{"a":[1,"x",true]}"#.to_owned())
        );
        assert_eq!(eval_in_jsc("'Grüße'"), Ok("\"Grüße\"".to_owned()));
        assert_eq!(eval_in_jsc("(function () {})"), Ok("null".to_owned()));
    }

    #[test]
    fn unserializable_and_oversized_values_are_errors() {
        let cyclic = eval_in_jsc("(() => { const a = {}; a.a = a; return a; })()");
        assert!(
            matches!(&cyclic, Err(m) if m.contains("cyclic")),
            "{cyclic:?}"
        );
        let big = eval_in_jsc(&format!("'x'.repeat({})", MAX_EVAL_RESULT_LEN));
        assert!(
            matches!(&big, Err(m) if m.starts_with("result too large")),
            "{:?}",
            big.map(|s| s.len())
        );
        let fits = eval_in_jsc(&format!("'x'.repeat({})", MAX_EVAL_RESULT_LEN - 2));
        assert_eq!(fits.map(|s| s.len()), Ok(MAX_EVAL_RESULT_LEN));
    }

    #[test]
    fn script_errors_are_passed_on_and_capped() {
        let error = glib::Error::new(
            webkit2gtk::JavascriptError::ScriptFailed,
            &"e".repeat(10_000),
        );
        let result = eval_result(Err(error));
        assert!(
            matches!(&result, Err(m) if m.len() == MAX_EVAL_ERROR_LEN),
            "{:?}",
            result.map_err(|m| m.len())
        );
    }
}
