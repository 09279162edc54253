//! Browser shortcuts that work while a page has keyboard focus, and moving X input focus.
//!
//! A renderer's web view is a child X window owned by another client, so keys typed into a page
//! go to the renderer, not to winit. Like suckless tabbed, the browser puts passive grabs
//! (`XGrabKey`) for its shortcuts on its own top-level window: a passive grab on an ancestor of
//! the focus window wins over the focused client, so a page can neither see nor swallow them. The
//! grabs live on a connection of their own, read by one thread.

use std::ffi::c_int;
use std::ptr;
use std::sync::OnceLock;

use x11_dl::keysym;
use x11_dl::xlib;

/// A browser command bound to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    NewTab,
    CloseTab,
    NextTab,
    PreviousTab,
    /// Ctrl+1..Ctrl+9.
    SelectTab(u8),
    FocusAddressBar,
    Reload,
    Back,
    Forward,
    Quit,
    TaskManager,
}

const CTRL: u32 = xlib::ControlMask;
const SHIFT: u32 = xlib::ShiftMask;
const ALT: u32 = xlib::Mod1Mask;

/// The key table: keysym, modifiers, command.
fn bindings() -> Vec<(u32, u32, Shortcut)> {
    let mut table = vec![
        (keysym::XK_t, CTRL, Shortcut::NewTab),
        (keysym::XK_w, CTRL, Shortcut::CloseTab),
        (keysym::XK_Tab, CTRL, Shortcut::NextTab),
        (keysym::XK_Tab, CTRL | SHIFT, Shortcut::PreviousTab),
        (keysym::XK_Page_Down, CTRL, Shortcut::NextTab),
        (keysym::XK_Page_Up, CTRL, Shortcut::PreviousTab),
        (keysym::XK_l, CTRL, Shortcut::FocusAddressBar),
        (keysym::XK_r, CTRL, Shortcut::Reload),
        (keysym::XK_F5, 0, Shortcut::Reload),
        (keysym::XK_Left, ALT, Shortcut::Back),
        (keysym::XK_Right, ALT, Shortcut::Forward),
        (keysym::XK_q, CTRL, Shortcut::Quit),
        (keysym::XK_Escape, SHIFT, Shortcut::TaskManager),
    ];
    for digit in 1..=9u8 {
        table.push((
            keysym::XK_0 + u32::from(digit),
            CTRL,
            Shortcut::SelectTab(digit),
        ));
    }
    table
}

static XLIB: OnceLock<Option<xlib::Xlib>> = OnceLock::new();

fn xlib() -> Result<&'static xlib::Xlib, String> {
    XLIB.get_or_init(|| xlib::Xlib::open().ok())
        .as_ref()
        .ok_or_else(|| "cannot load libX11".to_owned())
}

/// The previous Xlib error handler (winit's), called for errors on connections that are not ours.
static PREVIOUS_HANDLER: OnceLock<
    Option<unsafe extern "C" fn(*mut xlib::Display, *mut xlib::XErrorEvent) -> c_int>,
> = OnceLock::new();
static OUR_DISPLAYS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

unsafe extern "C" fn error_handler(
    display: *mut xlib::Display,
    event: *mut xlib::XErrorEvent,
) -> c_int {
    let ours = OUR_DISPLAYS
        .lock()
        .map(|d| d.contains(&(display as usize)))
        .unwrap_or(false);
    if ours {
        // SAFETY: Xlib passes a valid event.
        let code = unsafe { (*event).error_code };
        log::warn!(target: "keys", "X error {code} on the browser's key/focus connection (ignored)");
        return 0;
    }
    match PREVIOUS_HANDLER.get().copied().flatten() {
        // SAFETY: forwarding to the handler that was installed before ours, with Xlib's arguments.
        Some(previous) => unsafe { previous(display, event) },
        None => 0,
    }
}

/// Opens a connection of ours and makes sure X errors on it never abort the process.
fn open_display() -> Result<(&'static xlib::Xlib, *mut xlib::Display), String> {
    let x = xlib()?;
    // SAFETY: plain Xlib calls; a null name means $DISPLAY.
    let display = unsafe { (x.XOpenDisplay)(ptr::null()) };
    if display.is_null() {
        return Err("cannot open the X display (is $DISPLAY set?)".into());
    }
    OUR_DISPLAYS
        .lock()
        .map_err(|e| e.to_string())?
        .push(display as usize);
    PREVIOUS_HANDLER.get_or_init(|| {
        // SAFETY: installs a process-wide handler that chains to the previous one.
        unsafe { (x.XSetErrorHandler)(Some(error_handler)) }
    });
    Ok((x, display))
}

/// Grabs the shortcut keys on `window` and calls `on_shortcut` from a thread of its own for each
/// press. Fails only if X cannot be reached.
pub fn start(window: u64, on_shortcut: impl Fn(Shortcut) + Send + 'static) -> Result<(), String> {
    let (x, display) = open_display()?;
    let mut table = Vec::new();
    for (sym, mods, shortcut) in bindings() {
        // SAFETY: `display` is open; keysyms are plain numbers.
        let keycode = unsafe { (x.XKeysymToKeycode)(display, u64::from(sym)) };
        if keycode == 0 {
            continue;
        }
        // Grab with and without Caps Lock and Num Lock, which would otherwise defeat the grab.
        for extra in [
            0,
            xlib::LockMask,
            xlib::Mod2Mask,
            xlib::LockMask | xlib::Mod2Mask,
        ] {
            // SAFETY: valid display and window; errors go to our handler.
            unsafe {
                (x.XGrabKey)(
                    display,
                    c_int::from(keycode),
                    mods | extra,
                    window,
                    xlib::False,
                    xlib::GrabModeAsync,
                    xlib::GrabModeAsync,
                );
            }
        }
        table.push((u32::from(keycode), mods, shortcut));
    }
    // SAFETY: valid display.
    unsafe { (x.XSync)(display, xlib::False) };
    let display = display as usize;
    std::thread::Builder::new()
        .name("shortcuts".into())
        .spawn(move || {
            let display = display as *mut xlib::Display;
            let mut event: xlib::XEvent = unsafe { std::mem::zeroed() };
            loop {
                // SAFETY: this thread is the only user of this connection.
                unsafe { (x.XNextEvent)(display, &mut event) };
                if event.get_type() != xlib::KeyPress {
                    continue;
                }
                // SAFETY: the event is a KeyPress, so the `key` member is the valid one.
                let key = unsafe { event.key };
                let mods = key.state & (CTRL | SHIFT | ALT);
                if let Some(&(_, _, shortcut)) = table
                    .iter()
                    .find(|(code, m, _)| *code == key.keycode && *m == mods)
                {
                    on_shortcut(shortcut);
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Moves X keyboard focus. There is no window manager to do it under a bare X server, and the
/// browser must take focus back from a renderer when the user clicks its chrome.
///
/// Focus cannot simply go to the browser's top-level window: when the focus window is an ancestor
/// of the window under the pointer, X delivers keys to the window under the pointer, which is a
/// renderer's view whenever the pointer rests on the page. So the browser focuses a 1×1 child
/// window placed outside its parent's visible area (a focus proxy, as GTK and Qt use). The proxy
/// is a winit window, so winit tracks its focus and reports its keys; the browser hands those to
/// the chrome.
pub struct Focus {
    x: &'static xlib::Xlib,
    display: *mut xlib::Display,
    proxy: xlib::Window,
    browser_window: xlib::Window,
}

impl Focus {
    pub fn new(browser_window: u64, proxy: u64) -> Result<Self, String> {
        let (x, display) = open_display()?;
        Ok(Self {
            x,
            display,
            proxy,
            browser_window,
        })
    }

    /// Whether the keyboard is with the browser's own windows (its proxy or itself), as opposed
    /// to a renderer's view or another program.
    pub fn browser_has_focus(&self) -> bool {
        let mut window: xlib::Window = 0;
        let mut revert: c_int = 0;
        // SAFETY: valid display and out-pointers.
        unsafe { (self.x.XGetInputFocus)(self.display, &mut window, &mut revert) };
        window == self.proxy || window == self.browser_window
    }

    /// Gives the keyboard to another top-level window of the browser (the Task Manager), which
    /// has no renderer views inside.
    pub fn focus_window(&self, window: u64) {
        // SAFETY: valid display; errors go to our handler.
        unsafe {
            (self.x.XSetInputFocus)(
                self.display,
                window,
                xlib::RevertToParent,
                xlib::CurrentTime,
            );
            (self.x.XFlush)(self.display);
        }
    }

    /// Gives the keyboard to the browser's chrome.
    pub fn focus_browser(&self) {
        // SAFETY: valid display; errors go to our handler.
        unsafe {
            (self.x.XSetInputFocus)(
                self.display,
                self.proxy,
                xlib::RevertToParent,
                xlib::CurrentTime,
            );
            (self.x.XFlush)(self.display);
        }
    }
}
